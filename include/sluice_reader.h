/*  sluice_reader.h - an actor that consumes a buffer into a sink.

    The seed's "TTS processor": it iterates the stream at `endpoint` (sluice_stream_next) and
    hands each chunk's text to `on_chunk` (or writes it to stdout, one line per chunk, when
    on_chunk is NULL), then spends `process_ms` on it (simulated processing), until the end of
    its stream.

    The handle is for the thread that created it. Callbacks run on the actor's thread.
*/
#ifndef SLUICE_READER_H_INCLUDED
#define SLUICE_READER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "sluice_export.h"
#include "sluice_error.h"
#include "sluice_curve.h"

#ifdef __cplusplus
extern "C" {
#endif

//  The sink: one chunk (text is NUL-terminated; binary chunks may contain NULs). Returns false
//  when it failed (e.g. its output is gone): the reader then ends with SLUICE_ETRANSPORT, and
//  the chunk counts as not consumed.
typedef bool (sluice_reader_fn) (void *user, size_t index, const char *text, size_t size);

typedef struct {
    const char *endpoint;            //  buffer endpoint (required)
    int process_ms;                  //  simulated processing time per chunk
    sluice_reader_fn *on_chunk;      //  optional sink; NULL = stdout
    void *user;
    const sluice_curve_t *curve;     //  CURVE client settings (sluice_curve.h), NULL: plaintext.
                                     //  Read during sluice_reader_new only
} sluice_reader_opts_t;

typedef struct sluice_reader_t sluice_reader_t;

SLUICE_EXPORT sluice_reader_t *
    sluice_reader_new (const sluice_reader_opts_t *opts, sluice_err_t *err);

//  Wait until the reader reached the end of its stream (SLUICE_OK), failed (that error), or
//  timeout_ms passed (SLUICE_ETIMEOUT).
SLUICE_EXPORT sluice_err_t
    sluice_reader_wait (sluice_reader_t *self, int timeout_ms);

//  Chunks handed to the sink so far.
SLUICE_EXPORT size_t
    sluice_reader_consumed (sluice_reader_t *self);

//  Stop the reader's job now; it then reports SLUICE_EINTR to sluice_reader_wait (chunks it
//  received and did not hand to its sink go back to the buffer). Returns once the reader has
//  taken the order.
SLUICE_EXPORT sluice_err_t
    sluice_reader_stop (sluice_reader_t *self);

//  Once sluice_reader_wait has returned the result: the reason for an error ("" when none).
//  Owned by the reader.
SLUICE_EXPORT const char *
    sluice_reader_error_text (sluice_reader_t *self);

//  The underlying zactor_t, e.g. for zpoller: readable once the reader has finished.
SLUICE_EXPORT void *
    sluice_reader_actor_handle (sluice_reader_t *self);

SLUICE_EXPORT void
    sluice_reader_destroy (sluice_reader_t **self_p);

#ifdef __cplusplus
}
#endif
#endif
