/*  sluice_stage.h - a transform stage: reads one buffer, writes another.

    A sluice_stage_t is an actor (its own thread) with two clients: it reads the buffer at
    `input` chunk by chunk, hands each chunk to a user function, and writes what the function
    produced into the buffer at `output`. Both ends block as usual: a slow output holds the
    stage back, and the stage holds its input back in turn, so backpressure crosses stages.
    Stages are how pipelines compose: writer -> buffer -> stage -> buffer -> ... -> reader.

    The stream ends where a reader's stream ends (sluice_stream_next): at the end-of-stream
    sentinel (input closed and drained), or after a chunk marked final. A final chunk is
    written out final too (as an empty final chunk when the function drops it), so the end
    travels downstream. Then the stage closes its output, unless keep_output_open is set
    (several stages feeding one buffer). It closes it also when it fails, so that downstream
    readers always see an end; sluice_stage_wait says whether the stage ended cleanly.

    The handle is for the thread that created it. The function runs on the stage's thread.
*/
#ifndef SLUICE_STAGE_H_INCLUDED
#define SLUICE_STAGE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "sluice_export.h"
#include "sluice_error.h"
#include "sluice_curve.h"

#ifdef __cplusplus
extern "C" {
#endif

//  What the function decided for one chunk.
typedef enum {
    SLUICE_STAGE_FAIL = -1,    //  stop the stage with SLUICE_EINTERNAL (e.g. out of memory)
    SLUICE_STAGE_DROP = 0,     //  write nothing for this chunk
    SLUICE_STAGE_KEEP = 1,     //  write the output bytes (an empty output is an empty chunk)
    SLUICE_STAGE_PASS = 2      //  write the input chunk unchanged (the output is ignored)
} sluice_stage_verdict_t;

//  The output of one call: empty when the function is called; it appends to it.
typedef struct sluice_stage_out_t sluice_stage_out_t;

//  Append size bytes. Returns false when out of memory.
SLUICE_EXPORT bool
    sluice_stage_out_append (sluice_stage_out_t *out, const void *data, size_t size);

//  Append size bytes for the caller to fill in; returns where they start, NULL when out of
//  memory. Valid until the next call on `out`.
SLUICE_EXPORT char *
    sluice_stage_out_reserve (sluice_stage_out_t *out, size_t size);

//  The transform. `in` is the chunk (in_size bytes, followed by a NUL byte so that text can be
//  used as a string; binary chunks may contain NULs). Called for every chunk, empty ones too,
//  but not for the end-of-stream sentinel.
typedef sluice_stage_verdict_t (sluice_stage_fn) (void *user, const char *in, size_t in_size,
                                                   sluice_stage_out_t *out);

typedef struct {
    const char *input;            //  endpoint of the buffer read (required)
    const char *output;           //  endpoint of the buffer written (required)
    sluice_stage_fn *transform;   //  required
    void *user;                   //  handed to transform
    bool keep_output_open;        //  do not close the output at the end of the input
    const sluice_curve_t *input_curve;    //  CURVE client settings for the input connection
    const sluice_curve_t *output_curve;   //  and the output one (sluice_curve.h); NULL:
                                          //  plaintext. Read during sluice_stage_new only
} sluice_stage_opts_t;

typedef struct sluice_stage_t sluice_stage_t;

//  Start the stage. Returns NULL (and sets *err: SLUICE_EINVAL for bad options) on failure.
//  The endpoints are copied. The caller owns the result.
SLUICE_EXPORT sluice_stage_t *
    sluice_stage_new (const sluice_stage_opts_t *opts, sluice_err_t *err);

//  Wait until the stage has finished (timeout_ms, SLUICE_FOREVER for no limit). Returns its
//  result: SLUICE_OK at a clean end, the first error otherwise (e.g. SLUICE_ECLOSED when the
//  output was closed under it), or SLUICE_ETIMEOUT while it still runs.
SLUICE_EXPORT sluice_err_t
    sluice_stage_wait (sluice_stage_t *self, int timeout_ms);

//  Stop the stage's job now (the output is not closed); it then reports SLUICE_EINTR to
//  sluice_stage_wait. Returns once the stage has taken the order.
SLUICE_EXPORT sluice_err_t
    sluice_stage_stop (sluice_stage_t *self);

//  Once sluice_stage_wait has returned the result: the actor's reason for an error ("" when
//  none). Owned by the stage.
SLUICE_EXPORT const char *
    sluice_stage_error_text (sluice_stage_t *self);

//  Chunks read from the input (the end-of-stream sentinel not counted), and written out.
SLUICE_EXPORT size_t
    sluice_stage_consumed (sluice_stage_t *self);
SLUICE_EXPORT size_t
    sluice_stage_produced (sluice_stage_t *self);

//  The underlying zactor_t, e.g. for zpoller/zmq_poll together with other sockets: it becomes
//  readable when the stage has finished; then sluice_stage_wait (self, 0) returns the result.
SLUICE_EXPORT void *
    sluice_stage_actor_handle (sluice_stage_t *self);

//  Stop the stage (interrupting a blocked read or write; the output is not closed) and free
//  it. Sets *self_p to NULL; does nothing when it already is NULL.
SLUICE_EXPORT void
    sluice_stage_destroy (sluice_stage_t **self_p);

// ---------------------------------------------------------------------------------------------
//  Ready-made transforms

//  ASCII upper / lower case; other bytes unchanged. `user` is ignored.
SLUICE_EXPORT sluice_stage_verdict_t
    sluice_stage_upper (void *user, const char *in, size_t in_size, sluice_stage_out_t *out);
SLUICE_EXPORT sluice_stage_verdict_t
    sluice_stage_lower (void *user, const char *in, size_t in_size, sluice_stage_out_t *out);

//  Every chunk unchanged. `user` is ignored.
SLUICE_EXPORT sluice_stage_verdict_t
    sluice_stage_identity (void *user, const char *in, size_t in_size, sluice_stage_out_t *out);

//  A safety filter: every whole word of the chunk that matches one of the words of `user`
//  (a NULL-terminated array of strings; ASCII case-insensitive) is replaced by as many '*'.
//  A word is a run of ASCII letters, digits and bytes >= 0x80 (UTF-8); the match is per
//  chunk, so a word split across two chunks is not seen.
SLUICE_EXPORT sluice_stage_verdict_t
    sluice_stage_mask (void *user, const char *in, size_t in_size, sluice_stage_out_t *out);

//  The ready-made transforms by name, for command lines and pipeline files.
typedef struct {
    const char *name;           //  "upper", "lower", "mask", "identity"
    sluice_stage_fn *fn;
    bool takes_words;           //  its user is a NULL-terminated list of words
    const char *help;           //  one line
} sluice_stage_transform_t;

//  The transform called `name`, or NULL when there is none.
SLUICE_EXPORT const sluice_stage_transform_t *
    sluice_stage_transform_find (const char *name);

//  Their names, for messages: "upper, lower, mask, identity".
SLUICE_EXPORT const char *
    sluice_stage_transform_names (void);

#ifdef __cplusplus
}
#endif
#endif
