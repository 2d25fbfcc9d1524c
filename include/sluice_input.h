/*  sluice_input.h - a file descriptor split into chunks: lines, or fixed-size pieces.

    What a writer reads from a file, a pipe or stdin. It reads with read(2) into one growing
    buffer and hands chunks out in place, so a slow consumer (a write held back by a full
    buffer) simply stops the reads: backpressure reaches whoever writes into the descriptor.
    A wait for input can watch a ZeroMQ socket too (an actor's pipe), so that an order to stop
    is never stuck behind a read that may never return.

    Not thread-safe: one sluice_input_t per thread. The descriptor is the caller's.
*/
#ifndef SLUICE_INPUT_H_INCLUDED
#define SLUICE_INPUT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "sluice_export.h"
#include "sluice_error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sluice_input_t sluice_input_t;

//  Chunks of `fd`: lines (newline removed) when chunk_bytes is 0, else pieces of chunk_bytes
//  bytes (the last one may be shorter). NULL when out of memory. The caller owns the result.
SLUICE_EXPORT sluice_input_t *
    sluice_input_new (int fd, size_t chunk_bytes);

//  What sluice_input_next says.
typedef enum {
    SLUICE_INPUT_CHUNK = 1,       //  a chunk is in (*data, *size)
    SLUICE_INPUT_END = 0,         //  end of input (a last line without a newline was a chunk)
    SLUICE_INPUT_ERROR = -1,      //  a read failed or memory ran out: errno says why
    SLUICE_INPUT_INTERRUPTED = -2 //  `interrupt` became readable before the next chunk did
} sluice_input_result_t;

//  The next chunk. `interrupt` is a ZeroMQ socket (zsock_t or void *) to watch while waiting,
//  or NULL. The chunk stays valid until the next call and is followed by a NUL byte, so text
//  can be used as a string (binary input may contain NULs).
SLUICE_EXPORT sluice_input_result_t
    sluice_input_next (sluice_input_t *self, void *interrupt, const char **data, size_t *size);

//  True when the next sluice_input_next will not wait for the descriptor: a whole chunk was
//  read already, or the input has ended. A writer that batches can send what it holds before
//  it waits for more input (sluice write does). Ends the validity of the last chunk.
SLUICE_EXPORT bool
    sluice_input_ready (sluice_input_t *self);

//  Free it (the descriptor is not closed). Sets *self_p to NULL.
SLUICE_EXPORT void
    sluice_input_destroy (sluice_input_t **self_p);

#ifdef __cplusplus
}
#endif
#endif
