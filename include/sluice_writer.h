/*  sluice_writer.h - an actor that drives a stream of chunks into a buffer.

    The seed's "LLM stream reader": it writes each chunk of its source into the buffer at
    `endpoint` (blocking while the buffer is full: backpressure), waits `delay_ms` after each
    one, and closes the buffer at the end when `close_at_end` is set.
    The source is a model server's streamed answer to a prompt (model_endpoint: its tokens
    are written as they come; a full buffer stops the pulls, so the model's generator pauses;
    a buffer closed under the writer cancels the generation), a list of tokens, or a FILE (a
    file, a pipe, stdin) split into lines
    (the newline removed) or into chunk_bytes pieces. The file is read through its descriptor
    (sluice_input.h), not through stdio: whatever stdio buffered already is not seen. A writer
    waiting for input still obeys stop and destroy at once.

    The handle is for the thread that created it. Callbacks run on the actor's thread.
*/
#ifndef SLUICE_WRITER_H_INCLUDED
#define SLUICE_WRITER_H_INCLUDED

#include <stdio.h>
#include <stdbool.h>
#include <stddef.h>
#include "sluice_export.h"
#include "sluice_error.h"
#include "sluice_curve.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Called after each accepted write: its index, text (NUL-terminated, valid for the call),
//  whether the buffer deferred it (backpressure), and how long the write call took.
typedef void (sluice_writer_fn) (void *user, size_t index, const char *text, size_t size,
                                 bool was_parked, double waited_ms);

typedef struct {
    const char *endpoint;            //  buffer endpoint (required)
    const char *model_endpoint;      //  a model server's endpoint: its streamed answer to
    const void *prompt;              //  prompt (prompt_size bytes) is the source ...
    size_t prompt_size;
    const char *const *tokens;       //  ... or a list: token_count strings, copied at start ...
    size_t token_count;
    FILE *input;                     //  ... or a file (not closed by the writer)
    size_t chunk_bytes;              //  file source: 0 = lines, else pieces of this many bytes
    int delay_ms;                    //  pause after each write (the seed's token arrival rate)
    bool final;                      //  at the end, write an empty chunk marked final: readers
                                     //  stop there while the buffer stays open
    bool close_at_end;               //  close the buffer once the source is done
    const sluice_curve_t *curve;     //  CURVE client settings (sluice_curve.h), NULL: plaintext.
                                     //  Read during sluice_writer_new only
    sluice_writer_fn *on_write;      //  optional
    void *user;
} sluice_writer_opts_t;

typedef struct sluice_writer_t sluice_writer_t;

//  Start the writer. Returns NULL (and sets *err) on bad options. The caller owns the result.
SLUICE_EXPORT sluice_writer_t *
    sluice_writer_new (const sluice_writer_opts_t *opts, sluice_err_t *err);

//  Wait until the writer has finished (timeout_ms, SLUICE_FOREVER for no limit). Returns the
//  writer's result: SLUICE_OK, the first write error, or SLUICE_ETIMEOUT if still running.
SLUICE_EXPORT sluice_err_t
    sluice_writer_wait (sluice_writer_t *self, int timeout_ms);

//  Number of chunks the buffer accepted.
SLUICE_EXPORT size_t
    sluice_writer_written (sluice_writer_t *self);

//  Stop the writer's job now (an interrupted write is not retried); it then reports
//  SLUICE_EINTR to sluice_writer_wait. Returns once the writer has taken the order.
SLUICE_EXPORT sluice_err_t
    sluice_writer_stop (sluice_writer_t *self);

//  Once sluice_writer_wait has returned the result: the reason for an error ("" when none).
//  Owned by the writer.
SLUICE_EXPORT const char *
    sluice_writer_error_text (sluice_writer_t *self);

//  The underlying zactor_t, e.g. for zpoller: readable once the writer has finished.
SLUICE_EXPORT void *
    sluice_writer_actor_handle (sluice_writer_t *self);

//  Stop the writer (interrupting a blocked write) and free it. Sets *self_p to NULL.
SLUICE_EXPORT void
    sluice_writer_destroy (sluice_writer_t **self_p);

#ifdef __cplusplus
}
#endif
#endif
