/*  sluice_buffer.h - the bounded stream buffer actor.

    A sluice_buffer_t is a czmq actor (its own thread) owning a ROUTER socket at `endpoint` and,
    optionally, a PUB socket at `events_endpoint`. It holds a FIFO queue of at most `capacity`
    chunks (plus at most `capacity` handed out to readers and not yet acknowledged; chunks of
    vanished readers go back ahead of the queue) and answers the WRITE/READ/CLOSE/STATUS commands of docs/PROTOCOL.md. Blocking is
    done by deferring replies: a write into a full buffer, or a read from an empty one, is
    answered only when it can be served, when the buffer closes, or when its deadline passes.

    Use sluice_stream_t (sluice_stream.h) to talk to it, from this process or another one.
    The handle itself is for the thread that created it; the actor serves any number of clients.
*/
#ifndef SLUICE_BUFFER_H_INCLUDED
#define SLUICE_BUFFER_H_INCLUDED

#include <stddef.h>
#include <stdbool.h>
#include "sluice_export.h"
#include "sluice_error.h"
#include "sluice_curve.h"
#include "sluice_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_BUFFER_DEFAULT_MAX_CHUNK  (1024 * 1024)   //  bytes
#define SLUICE_BUFFER_MAX_CHUNK  INT32_MAX               //  the largest max_chunk_size
#define SLUICE_BUFFER_DEFAULT_MAX_PARKED 100000          //  parked writers + readers
#define SLUICE_BUFFER_DEFAULT_PEER_MAX_PARKED 4096       //  ... of one connection
#define SLUICE_BUFFER_DEFAULT_MAX_PARKED_BYTES (256u * 1024 * 1024)  //  parked chunk bytes
#define SLUICE_BUFFER_DEFAULT_PEER_MAX_PARKED_BYTES (64u * 1024 * 1024)  //  ... of one

//  When a journaled buffer's appends reach the disk (docs/PROTOCOL.md, "Journal")
typedef enum {
    SLUICE_FSYNC_ALWAYS = 0,      //  before each WRITE's OK (and the close): survives power loss
    SLUICE_FSYNC_NEVER  = 1,      //  left to the kernel: survives a crash of the process only
} sluice_fsync_t;

typedef struct {
    const char *endpoint;         //  where the ROUTER binds: inproc://, tcp://, ipc:// (required)
    const char *events_endpoint;  //  where the event PUB binds, or NULL for none
    size_t capacity;              //  chunks the queue holds, >= 1 (required)
    size_t max_chunk_size;        //  largest chunk accepted; 0 = SLUICE_BUFFER_DEFAULT_MAX_CHUNK
    //  Parking limits: a request parked beyond one gets SLUICE_EBUSY naming it; 0 = default.
    //  Per connection, so that one peer cannot take the room every other peer needs; in
    //  bytes, so that parked writes have a memory bound (docs/PROTOCOL.md, "Limits")
    size_t max_parked;            //  parked requests in all
    size_t peer_max_parked;       //  parked requests of one connection
    size_t max_parked_bytes;      //  chunk bytes of parked writes in all
    size_t peer_max_parked_bytes; //  chunk bytes of one connection's parked writes
    int probe_ms;                 //  how often the peers it holds requests or unacknowledged
                                  //  chunks for are probed (a vanished one's chunks are then
                                  //  requeued), ms; 0 = 1000
    const sluice_curve_t *curve;  //  CURVE on the request endpoint, or NULL (read during _new)
    //  Journal: a directory (made when missing) where the buffer keeps every chunk it accepted
    //  and has not yet given away for good, so that a buffer started again on it after a
    //  crash holds them again, under the same incarnation; NULL = memory only. A WRITE is
    //  answered OK only once its chunks are in the journal (docs/PROTOCOL.md, "Journal")
    const char *journal;
    sluice_fsync_t journal_fsync;
} sluice_buffer_opts_t;

typedef struct sluice_buffer_t sluice_buffer_t;
struct _zsock_t;      //  czmq socket (zsock_t)

//  Start a buffer actor and bind its sockets. Returns NULL on failure and, when err is not
//  NULL, sets *err (SLUICE_EINVAL for bad options, refused CURVE settings or a journal that
//  cannot be used: a directory not writable or in use by another buffer, a corrupt journal;
//  SLUICE_ETRANSPORT when a bind fails); sluice_last_error_text says why ("cannot bind
//  tcp://...: Address already in use", "journal ... is corrupt: ..."). A journal is replayed
//  before this returns. The caller owns the result and destroys it with sluice_buffer_destroy.
SLUICE_EXPORT sluice_buffer_t *
    sluice_buffer_new (const sluice_buffer_opts_t *opts, sluice_err_t *err);

//  Stop the actor (parked requests get no reply: close it first for a clean end) and free it.
//  Sets *self_p to NULL; does nothing when it already is NULL.
SLUICE_EXPORT void
    sluice_buffer_destroy (sluice_buffer_t **self_p);

//  The endpoint the ROUTER is bound to, with any tcp wildcard port resolved (tcp://127.0.0.1:*
//  gives the real port). Owned by the buffer; valid until it is destroyed.
SLUICE_EXPORT const char *
    sluice_buffer_endpoint (sluice_buffer_t *self);

//  Same for the events PUB; NULL when there is none.
SLUICE_EXPORT const char *
    sluice_buffer_events_endpoint (sluice_buffer_t *self);

//  Stop accepting writes: close the buffer from the owning thread (as a CLOSE command would).
//  Returns once the close took effect. Idempotent.
SLUICE_EXPORT sluice_err_t
    sluice_buffer_close (sluice_buffer_t *self);

//  Wait until the buffer's job is done: it is closed, its queue is empty and every chunk
//  handed out has been acknowledged by its reader (readers that ask for acknowledged
//  delivery, as sluice_stream does). SLUICE_OK then; SLUICE_ETIMEOUT while it is not after
//  timeout_ms (SLUICE_FOREVER = no limit). For a clean shutdown: sluice_buffer_close, then
//  sluice_buffer_wait, then sluice_buffer_destroy.
SLUICE_EXPORT sluice_err_t
    sluice_buffer_wait (sluice_buffer_t *self, int timeout_ms);

//  The same (its older name).
SLUICE_EXPORT sluice_err_t
    sluice_buffer_wait_drained (sluice_buffer_t *self, int timeout_ms);

//  Why the buffer ended as it did ("" when it drained cleanly). Owned by the buffer.
SLUICE_EXPORT const char *
    sluice_buffer_error_text (sluice_buffer_t *self);

//  The underlying zactor_t (a zsock-compatible handle), e.g. for zpoller: it becomes
//  readable when the buffer has drained (then sluice_buffer_wait returns at once). Owned by
//  the buffer.
SLUICE_EXPORT void *
    sluice_buffer_actor_handle (sluice_buffer_t *self);

//  The actor function itself, for callers that compose with zactor_new directly. args is a
//  const sluice_buffer_opts_t *, copied before the actor signals; binding is then done with
//  the "BIND" command (src/sluice_actor.h).
SLUICE_EXPORT void
    sluice_buffer_actor (struct _zsock_t *pipe, void *args);

#ifdef __cplusplus
}
#endif
#endif
