/*  sluice_conn.h - the request/reply core every sluice client is built on: one DEALER and its
    request ids, deadlines and liveness pings. Internal; uses the codec and socket layers.
*/
#ifndef SLUICE_CONN_H_INCLUDED
#define SLUICE_CONN_H_INCLUDED

#include "sluice_socket.h"
#include "sluice_stream.h"
#include "sluice_model.h"

typedef struct {
    zsock_t *dealer;
    void *dealer_raw;          //  resolved once: not on the hot path
    uint64_t next_id;
    int grace_ms;
    sluice_header_t reply;     //  header of the last reply
    sluice_frames_t frames;    //  its body frames, owned until the next call
    sluice_err_t error;        //  result of the last call
    char error_text [512];     //  the actor's reason for it, or ours
    void *interrupt;           //  raw socket whose input ends a wait (SLUICE_EINTR), or NULL
    int liveness_ms;           //  while waiting, ping the actor after this long without a word
    int sndtimeo;              //  the DEALER's send timeout as last set (-2: not yet)
    int rcvtimeo;              //  the DEALER's receive timeout as last set (-2: not yet)
    bool lost;                 //  the last receive learned the request was lost (ETRANSPORT;
                               //  SLUICE_EUNKNOWN for a WRITE, which is never sent again)
    uint64_t last_write_id;    //  request id of the newest WRITE sent (0: none)
    //  Retry policy: an actor that goes silent is pinged again, backing off, for this long
    //  before the wait fails (0: fail at once, as liveness + grace say; -1: no limit)
    int retry_for_ms;
    //  The actor's incarnation (every reply carries it): a client of an actor that keeps
    //  state for it (a buffer's stream) must learn when that state is gone
    uint32_t incarnation;      //  as last seen (0: no reply yet)
    bool strict_incarnation;   //  a new one is reported as SLUICE_ERESTARTED, once
    uint32_t restarted_from;   //  nonzero: a new incarnation seen, not reported yet
} sluice_conn_t;

//  Connect; curve may be NULL (plaintext). SLUICE_EINVAL on a bad endpoint or curve setting
//  (error_text says why).
sluice_err_t
    sluice_conn_init (sluice_conn_t *conn, const char *endpoint, const sluice_curve_t *curve);
void
    sluice_conn_fini (sluice_conn_t *conn);

//  A client object of `size` bytes whose first member is its sluice_conn_t, zeroed and
//  connected. NULL when out of memory or the connection cannot be made (then
//  sluice_last_error_text says why).
void *
    sluice_conn_client_new (size_t size, const char *endpoint, const sluice_curve_t *curve);

//  Send one request and wait for its reply (replies to earlier, abandoned requests are
//  discarded by request id). A non-NULL body is the request's one body frame (inline in the
//  header frame when it is at most SLUICE_INLINE_MAX bytes); NULL: the request has none.
//  timeout_ms < 0 waits without deadline; the client waits
//  timeout_ms + grace_ms for the reply before giving up with SLUICE_ETRANSPORT, or
//  SLUICE_EUNKNOWN for a WRITE (sent: it may have been enqueued). With retry_for_ms, the
//  silence of the actor is ridden out that long (sluice_conn_receive). A request the actor
//  answers but no longer holds is sent again, a WRITE excepted (SLUICE_EUNKNOWN).
//  Returns the reply's status (and sets conn->error, conn->error_text).
sluice_err_t
    sluice_conn_call (sluice_conn_t *conn, uint8_t command, uint8_t flags, int timeout_ms,
                      uint32_t count, const void *body, size_t size);

//  The same in two steps, for pipelining. send assigns the request id; receive takes the next
//  reply whose id is in [low_id, high_id] (others are discarded), waiting until `deadline`
//  (zclock_mono ms, INT64_MAX = none); conn->reply and conn->frames then hold it. Silence
//  past the deadline, or past liveness_ms + grace_ms, fails the wait (SLUICE_ETRANSPORT, or
//  SLUICE_EUNKNOWN when a WRITE is awaited) unless retry_for_ms is set: then the actor is
//  pinged again, every 100 ms doubling to 2 s, until it answers or retry_for_ms has passed.
sluice_err_t
    sluice_conn_send (sluice_conn_t *conn, uint8_t command, uint8_t flags, int timeout_ms,
                      uint32_t count, const void *body, size_t size, uint64_t *id);
sluice_err_t
    sluice_conn_receive (sluice_conn_t *conn, uint64_t low_id, uint64_t high_id, int64_t deadline);
//  Deadline for the reply to a request with this timeout: timeout + grace, or INT64_MAX.
int64_t
    sluice_conn_deadline (sluice_conn_t *conn, int timeout_ms);

//  Record a caller-side error with a formatted reason; returns err.
sluice_err_t
    sluice_conn_fail (sluice_conn_t *conn, sluice_err_t err, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  While a call waits for its reply it also watches `socket` (an actor's pipe); input there
//  ends the wait with SLUICE_EINTR without consuming it.
void
    sluice_conn_interrupt_on (sluice_conn_t *conn, void *socket);
void
    sluice_stream_interrupt_on (sluice_stream_t *stream, void *socket);
void
    sluice_model_client_interrupt_on (sluice_model_client_t *client, void *socket);

//  The reply's single text frame (status, error texts, model responses), or EPROTO.
sluice_err_t
    sluice_conn_text (sluice_conn_t *conn, const char **text, size_t *size);

#endif
