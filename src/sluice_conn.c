/*  sluice_conn.c - the request/reply core every sluice client is built on.

    One DEALER per client. Each request carries a fresh request id; a reply whose id is not the
    one awaited belongs to a request the caller gave up on and is discarded, so it can never
    be taken for another request's reply.
*/
#include "sluice_conn.h"
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <string.h>

#define SLUICE_DEFAULT_GRACE_MS 2000
//  Retry policy: pings to a silent actor, 100 ms apart at first, doubling up to 2 s
#define S_BACKOFF_MIN_MS 100
#define S_BACKOFF_MAX_MS 2000

//  ZeroMQ connects in the background and retries forever, so a host name that does not resolve
//  or an inproc endpoint nobody bound would only show as a timeout much later. Both are known
//  now: say so at once. 0 when the endpoint may be reached, -1 with why filled.
static int
s_check_peer (const char *endpoint, char *why, size_t why_size)
{
    if (strncmp (endpoint, "inproc://", 9) == 0) {
        //  Bound in this process's context? Binding it ourselves fails exactly when it is.
        //  (The endpoint is held only between bind and unbind, both synchronous for inproc.)
        zsock_t *probe = zsock_new (ZMQ_PAIR);
        if (!probe)
            return 0;       //  cannot tell: let the connect decide
        int rc = zsock_bind (probe, "%s", endpoint);
        if (rc == 0)
            zsock_unbind (probe, "%s", endpoint);
        zsock_destroy (&probe);
        if (rc == 0) {
            snprintf (why, why_size, "no actor is bound at %s in this process (inproc endpoints "
                      "exist only inside one process; start the actor first, or use tcp:// "
                      "or ipc:// across processes)", endpoint);
            return -1;
        }
        return 0;
    }
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return 0;
    //  tcp://[source;]host:port, host possibly [IPv6]
    const char *address = endpoint + 6;
    const char *source_end = strchr (address, ';');
    if (source_end)
        address = source_end + 1;
    const char *colon = strrchr (address, ':');
    if (!colon || colon == address)
        return 0;           //  malformed: zmq_connect reports it
    char host [256];
    size_t length = (size_t) (colon - address);
    if (*address == '[' && colon [-1] == ']') {
        address++;
        length -= 2;
    }
    if (length == 0 || length >= sizeof host)
        return 0;
    memcpy (host, address, length);
    host [length] = 0;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *found = NULL;
    int rc = getaddrinfo (host, NULL, &hints, &found);
    if (found)
        freeaddrinfo (found);
    if (rc != 0) {
        snprintf (why, why_size, "cannot resolve host '%.160s': %s", host, gai_strerror (rc));
        return -1;
    }
    return 0;
}

sluice_err_t
sluice_conn_init (sluice_conn_t *conn, const char *endpoint, const sluice_curve_t *curve)
{
    memset (conn, 0, sizeof *conn);
    conn->grace_ms = SLUICE_DEFAULT_GRACE_MS;
    conn->liveness_ms = SLUICE_LIVENESS_MS;
    conn->sndtimeo = -2;
    conn->rcvtimeo = -2;
    //  Ids start at a random point so that a new incarnation of a client that reuses a
    //  routing id cannot match replies meant for the old one.
    conn->next_id = ((uint64_t) randof (0x7fffffff) << 32) | 1;
    if (!endpoint || !*endpoint)
        return sluice_conn_fail (conn, SLUICE_EINVAL, "no endpoint given");
    conn->dealer = zsock_new (ZMQ_DEALER);
    if (!conn->dealer)
        return sluice_conn_fail (conn, SLUICE_ETRANSPORT, "cannot create a socket: %s",
                                 zmq_strerror (errno));
    conn->dealer_raw = zsock_resolve (conn->dealer);
    sluice_socket_heartbeat (conn->dealer, SLUICE_HEARTBEAT_MS);
    char why [256];
    if (sluice_curve_client (conn->dealer, curve, why, sizeof why) == -1) {
        zsock_destroy (&conn->dealer);
        return sluice_conn_fail (conn, SLUICE_EINVAL, "cannot connect to %s: %s", endpoint, why);
    }
    if (s_check_peer (endpoint, why, sizeof why) == -1) {
        zsock_destroy (&conn->dealer);
        return sluice_conn_fail (conn, SLUICE_EINVAL, "cannot connect to %s: %s", endpoint, why);
    }
    if (zsock_connect (conn->dealer, "%s", endpoint) == -1) {
        int saved = errno;
        zsock_destroy (&conn->dealer);
        return sluice_conn_fail (conn, SLUICE_EINVAL, "cannot connect to %s: %s", endpoint,
                                 zmq_strerror (saved));
    }
    return SLUICE_OK;
}

void *
sluice_conn_client_new (size_t size, const char *endpoint, const sluice_curve_t *curve)
{
    sluice_conn_t *conn = (sluice_conn_t *) calloc (1, size);
    if (!conn) {
        sluice_set_last_error ("out of memory");
        return NULL;
    }
    if (sluice_conn_init (conn, endpoint, curve) != SLUICE_OK) {
        sluice_set_last_error ("%s", conn->error_text);
        sluice_conn_fini (conn);
        free (conn);
        return NULL;
    }
    return conn;
}

void
sluice_conn_fini (sluice_conn_t *conn)
{
    sluice_frames_release (&conn->frames);
    zsock_destroy (&conn->dealer);
    conn->dealer_raw = NULL;
}

sluice_err_t
sluice_conn_text (sluice_conn_t *conn, const char **text, size_t *size)
{
    if (conn->frames.count != 1)
        return sluice_conn_fail (conn, SLUICE_EPROTO, "reply carried %zu frames, expected 1",
                                 conn->frames.count);
    *text = (const char *) zmq_msg_data (&conn->frames.items [0]);
    *size = zmq_msg_size (&conn->frames.items [0]);
    return SLUICE_OK;
}

sluice_err_t
sluice_conn_fail (sluice_conn_t *conn, sluice_err_t err, const char *format, ...)
{
    conn->error = err;
    conn->error_text [0] = 0;
    if (format) {
        va_list args;
        va_start (args, format);
        vsnprintf (conn->error_text, sizeof conn->error_text, format, args);
        va_end (args);
    }
    return err;
}

//  Send a request: the header and, when body is not NULL, its one body frame. A body of up to
//  SLUICE_INLINE_MAX bytes goes inline (revision 1.3): one frame instead of two, and a reply
//  with a small body comes back the same way.
static sluice_err_t
s_send (sluice_conn_t *conn, const sluice_header_t *header, const void *body, size_t size)
{
    void *dealer = conn->dealer_raw;
    //  A DEALER with no connected peer blocks on send; that wait is bounded by the caller's
    //  deadline through ZMQ_SNDTIMEO (s_request). Once the first frame is accepted the rest
    //  follows whole.
    int rc;
    if (body && size <= SLUICE_INLINE_MAX) {
        zmq_msg_t frame;
        if (sluice_inline_frame (&frame, header, body, size) == -1)
            return sluice_conn_fail (conn, SLUICE_ENOMEM, "out of memory");
        rc = zmq_msg_send (&frame, dealer, 0);
        zmq_msg_close (&frame);
    }
    else {
        uint8_t bytes [SLUICE_HEADER_SIZE];
        sluice_header_encode (header, bytes);
        rc = zmq_send (dealer, bytes, sizeof bytes, body ? ZMQ_SNDMORE : 0);
        if (rc != -1 && body)
            rc = sluice_send_more (dealer, body, size, 0);
    }
    if (rc == -1) {
        int err = zmq_errno ();
        if (err == EINTR)
            return sluice_conn_fail (conn, SLUICE_EINTR, "interrupted while sending");
        if (err == EAGAIN)
            return sluice_conn_fail (conn, SLUICE_ETRANSPORT, "no peer to send to (is the actor running?)");
        return sluice_conn_fail (conn, SLUICE_ETRANSPORT, "send failed: %s", zmq_strerror (err));
    }
    return SLUICE_OK;
}

//  Returned by s_take_reply for a message that is not the awaited reply
#define S_NOT_OURS ((sluice_err_t) -1)

//  Every message of an actor carries its incarnation (docs/PROTOCOL.md); a change means it
//  restarted since this client last heard from it.
static void
s_note_incarnation (sluice_conn_t *conn, uint32_t incarnation)
{
    if (!incarnation || incarnation == conn->incarnation)
        return;
    if (conn->incarnation && conn->strict_incarnation && !conn->restarted_from)
        conn->restarted_from = conn->incarnation;
    conn->incarnation = incarnation;
}

//  Report a restart noticed (once): the call that learns of it fails.
static sluice_err_t
s_restarted (sluice_conn_t *conn, const char *what)
{
    uint32_t from = conn->restarted_from;
    conn->restarted_from = 0;
    return sluice_conn_fail (conn, SLUICE_ERESTARTED, "the actor restarted (incarnation %08x, "
                             "now %08x): what it held for this client is gone; %s", from,
                             conn->incarnation, what);
}

//  The awaited request (ids low_id..high_id) got no reply: a WRITE among them may or may not
//  have been enqueued (SLUICE_EUNKNOWN); anything else failed (ETRANSPORT). ZeroMQ queues a
//  request even with no connection, so only a client that has heard from the actor knows
//  a connection was made; one that never has (nothing listening, a refused CURVE key) sent
//  nothing the actor could take: its write failed.
static sluice_err_t
s_no_reply (sluice_conn_t *conn, uint64_t low_id, uint64_t high_id, const char *why)
{
    bool write = conn->incarnation && conn->last_write_id >= low_id
              && conn->last_write_id <= high_id;
    return sluice_conn_fail (conn, write ? SLUICE_EUNKNOWN : SLUICE_ETRANSPORT, "%s", why);
}

//  The pings of one wait: ids first..last (each unanswered one was followed by another), so
//  a late answer to an earlier one counts too.
typedef struct {
    uint64_t first, last;         //  last = 0: none outstanding
    int64_t due;                  //  when the last is given up on
    int64_t quiet_until;          //  when to ping next if the actor stays silent
} s_pings_t;

//  Take the rest of the message whose header frame is `header_msg` (consumed) and judge it.
static sluice_err_t
s_take_reply (sluice_conn_t *conn, zmq_msg_t *header_msg, uint64_t low_id, uint64_t high_id,
              s_pings_t *pings)
{
    void *dealer = conn->dealer_raw;
    sluice_frames_clear (&conn->frames);
    sluice_err_t decoded = sluice_header_decode (zmq_msg_data (header_msg),
                                                 zmq_msg_size (header_msg), &conn->reply);
    bool more = zmq_msg_more (header_msg);
    bool inlined = decoded == SLUICE_OK && (conn->reply.flags & SLUICE_FLAG_INLINE);
    int taken = inlined ? sluice_frames_take_inline (&conn->frames, header_msg) : 0;
    zmq_msg_close (header_msg);
    if (taken == -1)
        return sluice_conn_fail (conn, SLUICE_ENOMEM, "out of memory");
    if (inlined && more)
        decoded = SLUICE_EPROTO;        //  frames after an inline body: not a reply we know
    while (more) {
        int rc = sluice_frames_recv (&conn->frames, dealer);
        if (rc == -1 && errno == ENOMEM)
            return sluice_conn_fail (conn, SLUICE_ENOMEM, "out of memory");
        if (rc == -1)
            return sluice_conn_fail (conn, SLUICE_ETRANSPORT, "receive failed: %s", zmq_strerror (zmq_errno ()));
        more = rc == 1;
    }
    if (decoded == SLUICE_OK)
        s_note_incarnation (conn, conn->reply.timeout_ms);
    if (pings->last && decoded == SLUICE_OK && conn->reply.request_id >= pings->first
    &&  conn->reply.request_id <= pings->last) {
        //  The actor is alive; does it still hold our request? Replies on one connection keep
        //  their order, so if ours had been sent on it we would have it by now
        if (conn->restarted_from)
            return s_restarted (conn, "the request waiting for a reply was lost with it");
        if (conn->reply.status == SLUICE_OK && !(conn->reply.flags & SLUICE_FLAG_PARKED)) {
            conn->lost = true;
            return s_no_reply (conn, low_id, high_id, "the actor answers but no longer holds "
                               "the request: it or its reply was lost with an earlier "
                               "connection");
        }
        pings->last = 0;
        pings->quiet_until = conn->liveness_ms > 0 ? zclock_mono () + conn->liveness_ms : INT64_MAX;
        return S_NOT_OURS;
    }
    if (decoded != SLUICE_OK || conn->reply.request_id < low_id
    ||  conn->reply.request_id > high_id)
        return S_NOT_OURS;  //  a late reply to an abandoned request, a probe, or garbage
    //  A packed reply's count is its chunks, checked by whoever unpacks it
    if (conn->reply.count != conn->frames.count && !(conn->reply.flags & SLUICE_FLAG_PACKED))
        return sluice_conn_fail (conn, SLUICE_EPROTO, "reply announced %u frames, carried %zu",
                                 conn->reply.count, conn->frames.count);
    if (conn->restarted_from)
        return s_restarted (conn, "this request was answered by the new one");
    if (conn->reply.status != SLUICE_OK) {
        const char *text = conn->frames.count ? (const char *) zmq_msg_data (&conn->frames.items [0]) : "";
        size_t size = conn->frames.count ? zmq_msg_size (&conn->frames.items [0]) : 0;
        int status = conn->reply.status < SLUICE_ERR_COUNT_ ? conn->reply.status : SLUICE_EPROTO;
        return sluice_conn_fail (conn, (sluice_err_t) status, "%.*s", (int) size, text);
    }
    return sluice_conn_fail (conn, SLUICE_OK, NULL);
}

//  Bound the DEALER's blocking receive; set only when it changes (a getsockopt-free path)
static void
s_set_rcvtimeo (sluice_conn_t *conn, int rcvtimeo)
{
    if (rcvtimeo != conn->rcvtimeo
    &&  zmq_setsockopt (conn->dealer_raw, ZMQ_RCVTIMEO, &rcvtimeo, sizeof rcvtimeo) == 0)
        conn->rcvtimeo = rcvtimeo;      //  cached only once the socket took it
}

//  A wait in ms as an int socket option: a wait longer than INT_MAX ms (a timeout near
//  INT_MAX plus the grace) is cut to INT_MAX, never wrapped to a negative value
static int
s_option_ms (long wait_ms)
{
    return wait_ms > INT_MAX ? INT_MAX : (int) wait_ms;
}

//  Send a PING (queued even while disconnected: the DEALER keeps its pipe; never blocks).
static uint64_t
s_ping (sluice_conn_t *conn)
{
    uint8_t bytes [SLUICE_HEADER_SIZE];
    sluice_header_t ping = { .version = SLUICE_PROTOCOL_VERSION,
                             .command = SLUICE_CMD_PING, .request_id = conn->next_id++ };
    sluice_header_encode (&ping, bytes);
    zmq_send (conn->dealer_raw, bytes, sizeof bytes, ZMQ_DONTWAIT);
    return ping.request_id;
}

//  look: first look for a reply already there. Right after its request a call's reply is not
//  there yet, and a look that finds nothing costs as much as the wait: sluice_conn_call waits.
static sluice_err_t
s_receive (sluice_conn_t *conn, uint64_t low_id, uint64_t high_id, int64_t deadline, bool look)
{
    void *dealer = conn->dealer_raw;
    conn->lost = false;
    //  A long wait is a parked request; make sure the actor is still there to answer it
    s_pings_t pings = { 0, 0, INT64_MAX,
                        conn->liveness_ms > 0 ? zclock_mono () + conn->liveness_ms : INT64_MAX };
    //  Retrying: the actor went silent at outage_start; give up at outage_end
    int64_t outage_start = 0, outage_end = 0;
    int backoff_ms = S_BACKOFF_MIN_MS;
    for (; true; look = true) {
        int64_t check = pings.last ? pings.due : pings.quiet_until;
        long wait_ms = sluice_poll_timeout (check < deadline ? check : deadline);
        //  With the DEALER the only socket to watch, a blocking receive (bounded by
        //  ZMQ_RCVTIMEO) both takes a reply already there and waits for one: far cheaper than
        //  zmq_poll, which looks at every socket twice and polls twice. With an interrupt
        //  socket: a reply may be there already (pipelined acknowledgements arrive in
        //  bursts), so look without a poll and poll only when there is nothing to read.
        int recv_flags = ZMQ_DONTWAIT;
        if (!conn->interrupt) {
            s_set_rcvtimeo (conn, s_option_ms (wait_ms));
            recv_flags = 0;
            look = true;
        }
        if (look) {
            zmq_msg_t header_msg;
            zmq_msg_init (&header_msg);
            if (zmq_msg_recv (&header_msg, dealer, recv_flags) != -1) {
                sluice_err_t rc = s_take_reply (conn, &header_msg, low_id, high_id, &pings);
                if (outage_start && (rc != S_NOT_OURS || !pings.last)) {
                    //  Whatever it said, the actor is back (or the reply was late)
                    SLUICE_ERROR ("sluice: the actor answers again after %" PRId64 " ms of "
                                  "silence", zclock_mono () - outage_start);
                    outage_start = outage_end = 0;
                    backoff_ms = S_BACKOFF_MIN_MS;
                }
                if (rc == S_NOT_OURS)
                    continue;
                return rc;
            }
            zmq_msg_close (&header_msg);
            if (zmq_errno () == EINTR)
                return sluice_conn_fail (conn, SLUICE_EINTR, "interrupted while waiting for a reply");
            if (zmq_errno () != EAGAIN)
                return sluice_conn_fail (conn, SLUICE_ETRANSPORT, "receive failed: %s",
                                         zmq_strerror (zmq_errno ()));
        }

        if (conn->interrupt) {
            zmq_pollitem_t items [2] = {
                { dealer, 0, ZMQ_POLLIN, 0 },
                { conn->interrupt, 0, ZMQ_POLLIN, 0 },
            };
            int rc = zmq_poll (items, 2, wait_ms);
            if (rc > 0 && !(items [0].revents & ZMQ_POLLIN))
                return sluice_conn_fail (conn, SLUICE_EINTR, "interrupted by the owning actor");
            if (rc == -1) {
                if (zmq_errno () == EINTR)
                    return sluice_conn_fail (conn, SLUICE_EINTR, "interrupted while waiting for a reply");
                return sluice_conn_fail (conn, SLUICE_ETRANSPORT, "poll failed: %s", zmq_strerror (zmq_errno ()));
            }
            if (rc > 0)
                continue;       //  readable: loop to take it
        }
        int64_t now = zclock_mono ();
        bool overdue = now >= deadline;
        if (overdue || (pings.last && now >= pings.due)) {
            const char *why = overdue ? "no reply from the actor in time"
                                      : "the actor does not answer a ping: gone or hung";
            if (conn->retry_for_ms == 0)
                return s_no_reply (conn, low_id, high_id, why);
            if (!outage_start) {
                //  ZeroMQ reconnects by itself: ping again, backing off, until one is answered
                outage_start = now;
                outage_end = conn->retry_for_ms < 0 ? INT64_MAX : now + conn->retry_for_ms;
                if (conn->retry_for_ms < 0)
                    SLUICE_ERROR ("sluice: %s; retrying without a time limit", why);
                else
                    SLUICE_ERROR ("sluice: %s; retrying for up to %d ms", why, conn->retry_for_ms);
            }
            else
            if (now >= outage_end) {
                char text [160];
                snprintf (text, sizeof text, "%s, and still silent after %" PRId64 " ms of "
                          "retrying", why, now - outage_start);
                return s_no_reply (conn, low_id, high_id, text);
            }
            //  The retry policy bounds the wait from here: the actor, once back, answers
            //  this request (ETIMEOUT if need be) or says it no longer holds it
            deadline = INT64_MAX;
            if (!pings.last)
                pings.first = 0;
            uint64_t id = s_ping (conn);
            pings.first = pings.first ? pings.first : id;
            pings.last = id;
            pings.due = now + backoff_ms < outage_end ? now + backoff_ms : outage_end;
            backoff_ms = backoff_ms * 2 < S_BACKOFF_MAX_MS ? backoff_ms * 2 : S_BACKOFF_MAX_MS;
            continue;
        }
        if (!pings.last && now >= pings.quiet_until) {
            pings.first = pings.last = s_ping (conn);
            pings.due = now + conn->grace_ms;
        }
    }
}

sluice_err_t
sluice_conn_receive (sluice_conn_t *conn, uint64_t low_id, uint64_t high_id, int64_t deadline)
{
    return s_receive (conn, low_id, high_id, deadline, true);
}

void
sluice_conn_interrupt_on (sluice_conn_t *conn, void *socket)
{
    conn->interrupt = socket;
}

int64_t
sluice_conn_deadline (sluice_conn_t *conn, int timeout_ms)
{
    return timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms + conn->grace_ms;
}

static sluice_header_t
s_request (sluice_conn_t *conn, uint8_t command, uint8_t flags, int timeout_ms, uint32_t count)
{
    sluice_header_t header = {
        .version = SLUICE_PROTOCOL_VERSION,
        .command = command,
        .flags = flags,
        .timeout_ms = timeout_ms < 0 ? SLUICE_WAIT_FOREVER : (uint32_t) timeout_ms,
        .request_id = conn->next_id++,
        .count = count,
    };
    if (command == SLUICE_CMD_WRITE)
        conn->last_write_id = header.request_id;
    //  Bound a send that waits for a peer; set only when it changes (a getsockopt-free path)
    int sndtimeo = s_option_ms (sluice_poll_timeout (sluice_conn_deadline (conn, timeout_ms)));
    if (sndtimeo != conn->sndtimeo
    &&  zmq_setsockopt (conn->dealer_raw, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo) == 0)
        conn->sndtimeo = sndtimeo;
    return header;
}

sluice_err_t
sluice_conn_send (sluice_conn_t *conn, uint8_t command, uint8_t flags, int timeout_ms,
                  uint32_t count, const void *body, size_t size, uint64_t *id)
{
    if (!conn->dealer)
        return sluice_conn_fail (conn, SLUICE_EINVAL, "not connected");
    sluice_header_t header = s_request (conn, command, flags, timeout_ms, count);
    *id = header.request_id;
    return s_send (conn, &header, body, size);
}

sluice_err_t
sluice_conn_call (sluice_conn_t *conn, uint8_t command, uint8_t flags, int timeout_ms,
                  uint32_t count, const void *body, size_t size)
{
    sluice_frames_clear (&conn->frames);
    int64_t deadline = sluice_conn_deadline (conn, timeout_ms);
    while (true) {
        uint64_t id = 0;
        sluice_err_t rc = sluice_conn_send (conn, command, flags, timeout_ms, count, body, size, &id);
        if (rc != SLUICE_OK)
            return rc;
        rc = s_receive (conn, id, id, deadline, false);
        //  The DEALER reconnected and the actor no longer holds the request: send it again,
        //  unless it is a WRITE (its first copy may have been enqueued: SLUICE_EUNKNOWN)
        if (!(rc == SLUICE_ETRANSPORT && conn->lost)
        ||  (zclock_mono () >= deadline && conn->retry_for_ms == 0))
            return rc;
        SLUICE_DEBUG ("sluice: request %" PRIu64 " lost with its connection, sending it again", id);
        if (timeout_ms > 0) {
            int64_t left = deadline - conn->grace_ms - zclock_mono ();
            timeout_ms = left > 0 ? (int) left : 0;
        }
    }
}
