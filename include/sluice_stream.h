/*  sluice_stream.h - a client connection to a buffer actor.

    A sluice_stream_t owns one DEALER socket connected to a buffer endpoint. Calls block until
    the buffer replies; the _timeout variants hand the buffer a deadline, and the buffer itself
    answers SLUICE_ETIMEOUT when it passes, so a write that timed out is never enqueued later
    and may be retried without creating a duplicate.

    NOT thread-safe: use one sluice_stream_t per thread. Any number of streams may talk to one
    buffer at the same time, from any process that can reach its endpoint.

    Protocol: this client speaks revision 1.3 of docs/PROTOCOL.md (a small body travels in its
    request's header frame): it needs a buffer of that revision or later; an earlier one
    refuses its writes and reads with SLUICE_EPROTO ("header frame must be exactly 20 bytes").
*/
#ifndef SLUICE_STREAM_H_INCLUDED
#define SLUICE_STREAM_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "sluice_export.h"
#include "sluice_error.h"
#include "sluice_curve.h"
#include "sluice_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sluice_stream_t sluice_stream_t;

//  One chunk as read. `text` points at `size` bytes followed by a NUL byte (so text chunks
//  can be printed directly; binary chunks may contain NULs: use size). Owned by the stream,
//  valid until the next call on it.
typedef struct {
    const char *text;
    size_t size;
    bool is_final;     //  the writer marked it final, or it is the end-of-stream sentinel
    bool is_eos;       //  end-of-stream sentinel: the buffer is closed and drained
} sluice_chunk_t;

//  Connect to a buffer. Returns NULL when the endpoint is invalid, names a tcp host that does
//  not resolve, or is an inproc endpoint no actor of this process has bound (inproc exists only
//  inside one process: start the buffer first); sluice_last_error_text says why. Otherwise
//  connecting is asynchronous (as in ZeroMQ): a tcp or ipc buffer that is not there yet is
//  waited for by each call's timeout. The caller owns the result.
SLUICE_EXPORT sluice_stream_t *
    sluice_stream_new (const char *endpoint);

//  Same, over CURVE (sluice_curve.h: server_key, and cert when the server authenticates).
//  Returns NULL when the endpoint or the security settings are invalid (logged).
SLUICE_EXPORT sluice_stream_t *
    sluice_stream_new_secure (const char *endpoint, const sluice_curve_t *curve);

//  Disconnect and free. Sets *self_p to NULL.
SLUICE_EXPORT void
    sluice_stream_destroy (sluice_stream_t **self_p);

//  Write one chunk; blocks while the buffer is full. SLUICE_ECLOSED once the buffer is closed.
SLUICE_EXPORT sluice_err_t
    sluice_stream_write (sluice_stream_t *self, const void *data, size_t size, bool is_final);

//  Same, giving up after timeout_ms (SLUICE_FOREVER = no limit; 0 = only if there is room now).
SLUICE_EXPORT sluice_err_t
    sluice_stream_write_timeout (sluice_stream_t *self, const void *data, size_t size,
                                 bool is_final, int timeout_ms);

//  Convenience: write a NUL-terminated string as one non-final chunk.
SLUICE_EXPORT sluice_err_t
    sluice_stream_write_str (sluice_stream_t *self, const char *text);

//  Read the next chunk; blocks while the buffer is empty and open. Once the buffer is closed
//  and drained, returns SLUICE_OK with the end-of-stream sentinel (empty, is_final, is_eos).
SLUICE_EXPORT sluice_err_t
    sluice_stream_read (sluice_stream_t *self, sluice_chunk_t *chunk);

//  Same, giving up after timeout_ms (SLUICE_FOREVER = no limit; 0 = only if a chunk is there).
SLUICE_EXPORT sluice_err_t
    sluice_stream_read_timeout (sluice_stream_t *self, sluice_chunk_t *chunk, int timeout_ms);

//  Iterate the stream's text, like `async for text in buffer.stream()`: returns true with the
//  next chunk, false at the end of this reader's stream (the end-of-stream sentinel, or after a
//  chunk written with is_final, whose non-empty text is returned first) or on error; then
//  sluice_stream_error tells which (SLUICE_OK at a clean end).
//      sluice_chunk_t chunk;
//      while (sluice_stream_next (stream, &chunk))
//          printf ("%s\n", chunk.text);
SLUICE_EXPORT bool
    sluice_stream_next (sluice_stream_t *self, sluice_chunk_t *chunk);

//  Acknowledge the chunks read so far (reads use acknowledged delivery): the buffer holds a
//  copy of each chunk it handed out until the reader acknowledges it - which the next read
//  does, and sluice_stream_destroy - and hands out at most its capacity of chunks
//  unacknowledged to all readers. Call this when a reader is done with what it read but will
//  not read again soon, so that other readers are not held up.
//  Chunks of a batch not yet handed out by sluice_stream_read are not acknowledged (nothing
//  is sent then). No reply is awaited.
SLUICE_EXPORT sluice_err_t
    sluice_stream_ack (sluice_stream_t *self);

//  Close the buffer (idempotent): parked writers get SLUICE_ECLOSED, readers drain the queue
//  and then get the end-of-stream sentinel.
SLUICE_EXPORT sluice_err_t
    sluice_stream_close (sluice_stream_t *self);

//  Ask the buffer for its counters.
SLUICE_EXPORT sluice_err_t
    sluice_stream_status (sluice_stream_t *self, sluice_buffer_status_t *status);

//  The error of the last call, and the text the actor sent with it ("" when none). The text
//  is owned by the stream and valid until the next call.
SLUICE_EXPORT sluice_err_t
    sluice_stream_error (sluice_stream_t *self);
SLUICE_EXPORT const char *
    sluice_stream_error_text (sluice_stream_t *self);

//  True when the last request was deferred by the actor before it was served (a write that
//  met a full buffer: backpressure; a read that met an empty one).
SLUICE_EXPORT bool
    sluice_stream_was_parked (sluice_stream_t *self);

//  Pipelined writes: let up to `window` writes be in flight before a write waits for the
//  oldest acknowledgement (default 1: every write waits for its own reply, as in the seed).
//  The buffer still admits each chunk only when there is room, so its bound holds; a window
//  only saves the round trip. An error on a write in flight (closed, timed out) is returned by
//  the next write, sluice_stream_flush, or any other call, and then that call did not run.
//  Any call other than a write first waits for the writes in flight.
SLUICE_EXPORT sluice_err_t
    sluice_stream_set_window (sluice_stream_t *self, size_t window);

//  Batched writes: let one WRITE carry up to `batch` chunks (default 1, at most
//  SLUICE_MAX_BATCH and at most the buffer's capacity, which refuses a larger batch with
//  SLUICE_EPROTO), packed into one frame (docs/PROTOCOL.md, "Packed bodies"). A write
//  (without a timeout: SLUICE_FOREVER) copies its chunk into the pending batch. When no write
//  is in flight the batch is sent at once (the writer looks for replies at a batch's first
//  chunk, then every 16 chunks or every millisecond, at most every 50 microseconds), so a
//  trickle of chunks is never held back; while
//  writes are in flight, chunks gather until the batch is full, a chunk is final, or the
//  replies have all come back (the window then bounds how many full batches are in flight).
//  So batches form whenever the writer outpaces the round trip: a request carries many
//  chunks. The buffer admits a batch whole, when there is room for all of it. Pending chunks
//  go out with the next call or sluice_stream_flush: flush before a pause in writing and
//  before destroying the stream (destroy drops them). A write that returns an error did not
//  add its chunk. Writes with a timeout are never batched. Batches (and batched reads, below)
//  use protocol revision 1.1 (the client as a whole needs 1.3: see the top of this file).
SLUICE_EXPORT sluice_err_t
    sluice_stream_set_write_batch (sluice_stream_t *self, size_t batch);

//  Send the pending batch and wait until every write in flight is acknowledged; returns the
//  first error among them.
SLUICE_EXPORT sluice_err_t
    sluice_stream_flush (sluice_stream_t *self);

//  Batched reads: one READ request takes up to `batch` queued chunks (default 1, at most
//  SLUICE_MAX_BATCH), in one packed reply; later reads return them from the stream without a
//  round trip, in place (a chunk's text points into the reply: nothing is copied). Chunks
//  held this way count as read: they left the buffer's queue, so writers go on while a
//  reader works through its batch (the buffer keeps a copy until the next READ acknowledges
//  them; all readers together hold at most its capacity this way).
SLUICE_EXPORT sluice_err_t
    sluice_stream_set_batch (sluice_stream_t *self, size_t batch);

//  How long a call waits for a reply beyond its own timeout before deciding the actor is gone
//  (SLUICE_ETRANSPORT). Default 2000 ms.
SLUICE_EXPORT void
    sluice_stream_set_grace (sluice_stream_t *self, int grace_ms);

//  A call that waits longer than liveness_ms (default 5000) pings the actor, and fails with
//  SLUICE_ETRANSPORT if it does not answer within the grace period: a buffer that died or
//  hangs never blocks a caller forever, even without a timeout (noticed within about
//  liveness + grace = 7 s by default). 0 turns the check off. A write that was sent fails
//  with SLUICE_EUNKNOWN instead: it may or may not have been enqueued.
SLUICE_EXPORT void
    sluice_stream_set_liveness (sluice_stream_t *self, int liveness_ms);

//  Retry policy for outages (default 0: none). When the buffer goes silent (no reply by the
//  deadline, or no answer to the liveness ping within the grace), a call keeps waiting for up
//  to retry_for_ms more (SLUICE_FOREVER: no limit), pinging the buffer again every 100 ms,
//  doubling to 2 s, while ZeroMQ reconnects; so a buffer that was hung or partitioned away
//  and comes back is ridden out. What the call then returns follows what the buffer says:
//  - its reply came, late: that reply;
//  - it answers with a new incarnation (it restarted, its queue is gone): SLUICE_ERESTARTED;
//  - it answers but no longer holds the request (lost with a connection): a READ (with its
//    acknowledgement, so nothing is skipped), CLOSE or STATUS is sent again; a WRITE fails
//    with SLUICE_EUNKNOWN, since its first copy may have been enqueued and resending could
//    duplicate it;
//  - still silent after retry_for_ms: SLUICE_EUNKNOWN for a WRITE, else SLUICE_ETRANSPORT.
//  A WRITE the buffer answered SLUICE_ETIMEOUT was not enqueued: the caller may write it
//  again. Each outage is logged (stderr) when it starts and when the buffer answers again.
//  Applies to the calls after it; the stream's thread only, like every call on it.
SLUICE_EXPORT void
    sluice_stream_set_retry (sluice_stream_t *self, int retry_for_ms);

#ifdef __cplusplus
}
#endif
#endif
