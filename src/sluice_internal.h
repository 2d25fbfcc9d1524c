/*  sluice_internal.h - helpers shared by the actors and the clients; not installed.

    The codec speaks raw zmq_msg_t so that a chunk travels from a writer's request into the
    queue and out in a reader's reply without being copied.
*/
#ifndef SLUICE_INTERNAL_H_INCLUDED
#define SLUICE_INTERNAL_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include "sluice.h"

// ---------------------------------------------------------------------------------------------
//  Header codec

typedef struct {
    uint8_t version;
    uint8_t command;
    uint8_t flags;
    uint8_t status;
    uint32_t timeout_ms;
    uint64_t request_id;
    uint32_t count;
} sluice_header_t;

void
    sluice_header_encode (const sluice_header_t *header, uint8_t *out);
//  Decodes exactly SLUICE_HEADER_SIZE bytes; SLUICE_EPROTO on a wrong size (the fields are
//  filled as far as the bytes go, so a request id can still be echoed), SLUICE_EVERSION on a
//  version other than ours.
sluice_err_t
    sluice_header_decode (const void *data, size_t size, sluice_header_t *header);

// ---------------------------------------------------------------------------------------------
//  Server side: one request off a ROUTER

typedef struct {
    zmq_msg_t identity;        //  routing id, moved into the reply
    sluice_header_t header;
    zmq_msg_t body;            //  the first body frame (empty message when has_body is false)
    bool has_body;
    zmq_msg_t *more;           //  the body frames after the first (a WRITE batch): more_count
    size_t more_count;         //  of them. The array is kept from one request to the next;
    size_t more_capacity;      //  sluice_request_release frees it
    sluice_err_t error;        //  SLUICE_OK, or why the request is malformed
    const char *reason;        //  static text naming the problem when error is set
} sluice_request_t;

//  Receive one whole request without blocking into `req` (zero it before the first use).
//  Returns 1 when a request was taken (check req->error: a malformed one still has identity
//  and, when decodable, request_id), 0 when none is waiting, -1 on a socket error (errno set;
//  ETERM on shutdown). A message with more than max_bodies body frames is consumed and the
//  request flagged SLUICE_EPROTO.
int
    sluice_request_recv (void *router, sluice_request_t *req, size_t max_bodies);

//  Receive or send a frame that continues a multipart message. libzmq may fail any call with
//  EINTR when a signal arrives, even mid-message (it checks its command mailbox first); giving
//  up there would leave the rest of the message to be taken for a new one, so these retry.
//  Otherwise as zmq_msg_recv (flags 0), zmq_send and zmq_msg_send.
int
    sluice_recv_more (zmq_msg_t *msg, void *socket);
int
    sluice_send_more (void *socket, const void *data, size_t size, int flags);
int
    sluice_msg_send_more (zmq_msg_t *msg, void *socket, int flags);
//  Receive the next frame of a message onto the end of a growable array (*frames, *count of
//  *capacity). Returns 1 when more frames follow, 0 after the last, -1 on error (errno ENOMEM
//  when the array could not grow; then the frame was not taken).
int
    sluice_recv_append (void *socket, zmq_msg_t **frames, size_t *count, size_t *capacity);

//  Release what the request still holds (identity, body frames); the array stays for reuse.
void
    sluice_request_fini (sluice_request_t *req);
//  Same, and free the array: when the request struct is no longer used.
void
    sluice_request_release (sluice_request_t *req);

//  Send a reply [identity][header][frames...] on a ROUTER with ZMQ_ROUTER_MANDATORY, never
//  blocking. On success the identity and frames are consumed (left empty) and 0 is returned.
//  On failure nothing is consumed and -1 is returned with errno EHOSTUNREACH (peer gone) or
//  EAGAIN (peer not reading: its queue is full).
int
    sluice_reply_send (void *router, zmq_msg_t *identity, const sluice_header_t *header,
                       zmq_msg_t *frames, size_t count);

//  Reply to `req` with an error status and a text frame naming the problem; the identity is
//  consumed. flags: SLUICE_FLAG_PARKED when the request had been deferred, else 0. Returns as
//  sluice_reply_send (a failure here is logged and otherwise ignored: there is no one left
//  to tell).
int
    sluice_reply_error (void *router, zmq_msg_t *identity, const sluice_header_t *request,
                        uint8_t flags, sluice_err_t status, const char *reason);

//  Reply with one text body frame (status replies, model responses).
int
    sluice_reply_text (void *router, zmq_msg_t *identity, const sluice_header_t *request,
                       uint8_t flags, const char *text, size_t size);

//  How an actor's ROUTER is set up; every option must be set before the bind (an endpoint
//  copies the socket's options when it is bound).
typedef struct {
    size_t sndhwm;                //  replies one peer may have queued: an actor that can release
                                  //  N parked requests at once needs N plus room
    int64_t maxmsgsize;           //  larger inbound frames disconnect the peer (tcp); 0 = none
    const sluice_curve_t *curve;  //  CURVE server settings, or NULL
} sluice_router_opts_t;

//  Routing ids: a printable hash key (hex, up to 511 chars + NUL) and byte equality.
void
    sluice_identity_key (zmq_msg_t *identity, char *key);
bool
    sluice_identity_eq (zmq_msg_t *first, zmq_msg_t *second);

//  Is the peer still connected? Sends it a probe (a header with the reserved request id 0,
//  which clients ignore): with ROUTER_MANDATORY an unroutable peer fails at once. Verdicts are
//  cached in `verdicts` (keys: sluice_identity_key, computed when key is NULL) for one sweep.
bool
    sluice_peer_alive (void *router, zmq_msg_t *identity, zhashx_t *verdicts, const char *key);

//  Answer a PING; `holds` (SLUICE_FLAG_PARKED on the reply) says the actor still holds a
//  request of this peer: a client that waits for a reply and gets a PING reply without it
//  knows its request was lost with an earlier connection. The identity is consumed.
int
    sluice_reply_ping (void *router, zmq_msg_t *identity, const sluice_header_t *request,
                       bool holds);

//  New ROUTER bound at endpoint with ROUTER_MANDATORY, tcp heartbeats and a large listen
//  backlog. NULL on failure, with *err SLUICE_EINVAL (security settings refused, logged) or
//  SLUICE_ETRANSPORT (bind failed, errno kept). *secured tells whether CURVE was applied
//  (then call sluice_curve_release when the socket is gone).
zsock_t *
    sluice_router_new (const char *endpoint, const sluice_router_opts_t *opts,
                       sluice_err_t *err, bool *secured);

//  The endpoint a socket is bound to, with a tcp wildcard port resolved; freshly allocated.
char *
    sluice_bound_endpoint (zsock_t *sock, const char *requested);

//  CURVE (sluice_curve.h). Apply to a socket before bind / connect: 0 when curve asks for
//  nothing, 1 when applied, -1 when refused (why says why). A server that applied it holds
//  the process's authenticator until sluice_curve_release.
int
    sluice_curve_server (zsock_t *sock, const sluice_curve_t *curve, char *why, size_t why_size);
int
    sluice_curve_client (zsock_t *sock, const sluice_curve_t *curve, char *why, size_t why_size);
void
    sluice_curve_release (void);

//  ms until the next deadline for zmq_poll: -1 when there is none (INT64_MAX).
long
    sluice_poll_timeout (int64_t deadline);

// ---------------------------------------------------------------------------------------------
//  Events: XPUB with last-value replay (see sluice_events.h)

typedef struct sluice_publisher_t sluice_publisher_t;

sluice_publisher_t *
    sluice_publisher_new (const char *endpoint);        //  NULL when the bind fails
void
    sluice_publisher_destroy (sluice_publisher_t **self_p);
void *
    sluice_publisher_socket (sluice_publisher_t *self);  //  raw handle, for zmq_poll
const char *
    sluice_publisher_endpoint (sluice_publisher_t *self);
//  Remember and broadcast a new state.
void
    sluice_publisher_send (sluice_publisher_t *self, const char *event, const char *detail);
//  Drain pending subscriptions; each new subscription gets the last state again.
void
    sluice_publisher_handle (sluice_publisher_t *self);

// ---------------------------------------------------------------------------------------------
//  Client side: one DEALER and its request/reply bookkeeping

typedef struct {
    zsock_t *dealer;
    uint64_t next_id;
    int grace_ms;
    sluice_header_t reply;     //  header of the last reply
    zmq_msg_t *frames;         //  its body frames, owned until the next call
    size_t frame_count;
    size_t frame_capacity;
    sluice_err_t error;        //  result of the last call
    char error_text[512];      //  the actor's reason for it, or ours
    void *interrupt;           //  raw socket whose input ends a wait (SLUICE_EINTR), or NULL
    int liveness_ms;           //  while waiting, ping the actor after this long without a word
    bool lost;                 //  the last receive learned the request was lost (ETRANSPORT)
} sluice_conn_t;

//  Liveness on tcp: ZeroMQ heartbeats every interval, a peer silent for 3 intervals is
//  disconnected. Clients also ping an actor that has been silent for SLUICE_LIVENESS_MS while
//  they wait, and give up after the grace period without an answer.
#define SLUICE_HEARTBEAT_MS   1000
#define SLUICE_LIVENESS_MS    5000
#define SLUICE_BACKLOG        1024

//  Set heartbeats on a tcp socket (no effect on inproc).
void
    sluice_socket_heartbeat (zsock_t *sock, int interval_ms);

//  Connect; curve may be NULL (plaintext). SLUICE_EINVAL on a bad endpoint or curve setting.
sluice_err_t
    sluice_conn_init_secure (sluice_conn_t *conn, const char *endpoint, const sluice_curve_t *curve);
//  Same, plaintext.
sluice_err_t
    sluice_conn_init (sluice_conn_t *conn, const char *endpoint);
void
    sluice_conn_fini (sluice_conn_t *conn);

//  Send one request and wait for its reply (replies to earlier, abandoned requests are
//  discarded by request id). timeout_ms < 0 waits without deadline; the client waits
//  timeout_ms + grace_ms for the reply before giving up with SLUICE_ETRANSPORT.
//  Returns the reply's status (and sets conn->error, conn->error_text).
sluice_err_t
    sluice_conn_call (sluice_conn_t *conn, uint8_t command, uint8_t flags, int timeout_ms,
                      uint32_t count, const void *body, size_t size);

//  The same in two steps, for pipelining. send assigns the request id; receive takes the next
//  reply whose id is in [low_id, high_id] (others are discarded), waiting until `deadline`
//  (zclock_mono ms, INT64_MAX = none); conn->reply and conn->frames then hold it.
sluice_err_t
    sluice_conn_send (sluice_conn_t *conn, uint8_t command, uint8_t flags, int timeout_ms,
                      uint32_t count, const void *body, size_t size, uint64_t *id);
//  Send a request whose body is `count` frames (count goes into the header); on success the
//  frames are consumed.
sluice_err_t
    sluice_conn_send_frames (sluice_conn_t *conn, uint8_t command, uint8_t flags, int timeout_ms,
                             zmq_msg_t *frames, size_t count, uint64_t *id);
sluice_err_t
    sluice_conn_receive (sluice_conn_t *conn, uint64_t low_id, uint64_t high_id, int64_t deadline);
//  Deadline for the reply to a request with this timeout: timeout + grace, or INT64_MAX.
int64_t
    sluice_conn_deadline (sluice_conn_t *conn, int timeout_ms);
//  Close the frames of the last reply.
void
    sluice_conn_release_frames (sluice_conn_t *conn);

//  Record a caller-side error with a formatted reason; returns err.
sluice_err_t
    sluice_conn_fail (sluice_conn_t *conn, sluice_err_t err, const char *format, ...);

//  Parse "key=value" lines of a status reply body: returns the value of key as uint64, or
//  `fallback` when absent. `text` need not be NUL-terminated.
uint64_t
    sluice_status_u64 (const char *text, size_t size, const char *key, uint64_t fallback);
//  Copy the string value of key into out (NUL-terminated); false when absent.
bool
    sluice_status_str (const char *text, size_t size, const char *key, char *out, size_t out_size);


// ---------------------------------------------------------------------------------------------
//  Interruptible clients: while a call waits for its reply it also watches `socket` (an
//  actor's pipe); input there ends the wait with SLUICE_EINTR without consuming it.

void
    sluice_conn_interrupt_on (sluice_conn_t *conn, void *socket);
void
    sluice_stream_interrupt_on (sluice_stream_t *stream, void *socket);

// ---------------------------------------------------------------------------------------------
//  Server handles: an actor that binds a ROUTER (and an optional events XPUB) through the
//  synchronous "BIND endpoint events" pipe command, answered "iss": status, bound endpoint,
//  bound events endpoint (zactor_new cannot report a failed bind).

typedef struct {
    zactor_t *actor;
    char *endpoint;            //  as bound (tcp wildcard ports resolved)
    char *events_endpoint;     //  NULL when none
} sluice_server_t;

//  Start the actor and bind; on failure everything is released and the error returned.
sluice_err_t
    sluice_server_start (sluice_server_t *server, zactor_fn *fn, void *args,
                         const char *endpoint, const char *events_endpoint);
void
    sluice_server_stop (sluice_server_t *server);

// ---------------------------------------------------------------------------------------------
//  Tasks: actors that do one job (writer, reader) and report its result once

typedef struct {
    zactor_t *actor;
    bool done;
    sluice_err_t result;
} sluice_task_t;

//  Start `fn` as an actor; args must stay valid until the actor signals (zactor_new returns).
sluice_err_t
    sluice_task_start (sluice_task_t *task, zactor_fn *fn, void *args);
//  Wait for the task's result (timeout_ms < 0: no limit); SLUICE_ETIMEOUT while it runs.
sluice_err_t
    sluice_task_wait (sluice_task_t *task, int timeout_ms);
//  Stop the actor ($TERM) and wait for it to end.
void
    sluice_task_stop (sluice_task_t *task);

//  Actor side. Pause ms while staying responsive: false when $TERM arrived (stop now).
bool
    sluice_task_pause (zsock_t *pipe, int ms);
//  Report the result, then wait for $TERM (an actor must not return before it).
void
    sluice_task_finish (zsock_t *pipe, sluice_err_t result, bool terminated);

#endif
