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
#include "sluice_error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (sluice_reader_fn) (void *user, size_t index, const char *text, size_t size);

typedef struct {
    const char *endpoint;            //  buffer endpoint (required)
    int process_ms;                  //  simulated processing time per chunk
    sluice_reader_fn *on_chunk;      //  optional sink; NULL = stdout
    void *user;
} sluice_reader_opts_t;

typedef struct sluice_reader_t sluice_reader_t;

sluice_reader_t *
    sluice_reader_new (const sluice_reader_opts_t *opts, sluice_err_t *err);

//  Wait until the reader reached the end of its stream (SLUICE_OK), failed (that error), or
//  timeout_ms passed (SLUICE_ETIMEOUT).
sluice_err_t
    sluice_reader_wait (sluice_reader_t *self, int timeout_ms);

//  Chunks handed to the sink so far.
size_t
    sluice_reader_consumed (sluice_reader_t *self);

void
    sluice_reader_destroy (sluice_reader_t **self_p);

#ifdef __cplusplus
}
#endif
#endif
