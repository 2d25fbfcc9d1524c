/*  sluice_protocol.c - the wire codec shared by every actor and client.

    Hot path: actors receive with ZMQ_DONTWAIT until the socket is empty (no poll per message)
    and move zmq_msg_t frames instead of copying them.
*/
#include "sluice_internal.h"
#include <errno.h>
#include <limits.h>
#include <string.h>

const char *
sluice_command_name (int command)
{
    switch (command) {
        case SLUICE_CMD_WRITE:    return "WRITE";
        case SLUICE_CMD_READ:     return "READ";
        case SLUICE_CMD_CLOSE:    return "CLOSE";
        case SLUICE_CMD_STATUS:   return "STATUS";
        case SLUICE_CMD_REQUEST:  return "REQUEST";
        case SLUICE_CMD_SHUTDOWN: return "SHUTDOWN";
        case SLUICE_CMD_WAIT:     return "WAIT";
        case SLUICE_CMD_ACK:      return "ACK";
        case SLUICE_CMD_PING:     return "PING";
        default:                  return NULL;
    }
}

static void
s_put32 (uint8_t *p, uint32_t v)
{
    p [0] = (uint8_t) (v >> 24); p [1] = (uint8_t) (v >> 16);
    p [2] = (uint8_t) (v >> 8);  p [3] = (uint8_t) v;
}

static uint32_t
s_get32 (const uint8_t *p)
{
    return ((uint32_t) p [0] << 24) | ((uint32_t) p [1] << 16)
         | ((uint32_t) p [2] << 8) | (uint32_t) p [3];
}

void
sluice_header_encode (const sluice_header_t *header, uint8_t *out)
{
    out [0] = header->version;
    out [1] = header->command;
    out [2] = header->flags;
    out [3] = header->status;
    s_put32 (out + 4, header->timeout_ms);
    s_put32 (out + 8, (uint32_t) (header->request_id >> 32));
    s_put32 (out + 12, (uint32_t) header->request_id);
    s_put32 (out + 16, header->count);
}

sluice_err_t
sluice_header_decode (const void *data, size_t size, sluice_header_t *header)
{
    const uint8_t *p = (const uint8_t *) data;
    memset (header, 0, sizeof *header);
    //  Decode what is there, so a truncated request still gets its id echoed when possible
    if (size >= 1) header->version = p [0];
    if (size >= 2) header->command = p [1];
    if (size >= 3) header->flags = p [2];
    if (size >= 4) header->status = p [3];
    if (size >= 8) header->timeout_ms = s_get32 (p + 4);
    if (size >= 16) header->request_id = ((uint64_t) s_get32 (p + 8) << 32) | s_get32 (p + 12);
    if (size >= 20) header->count = s_get32 (p + 16);
    if (size >= 1 && header->version != SLUICE_PROTOCOL_VERSION)
        return SLUICE_EVERSION;
    if (size != SLUICE_HEADER_SIZE)
        return SLUICE_EPROTO;
    return SLUICE_OK;
}

int
sluice_recv_more (zmq_msg_t *msg, void *socket)
{
    int rc;
    while ((rc = zmq_msg_recv (msg, socket, 0)) == -1 && zmq_errno () == EINTR)
        ;
    return rc;
}

int
sluice_send_more (void *socket, const void *data, size_t size, int flags)
{
    int rc;
    while ((rc = zmq_send (socket, data, size, flags)) == -1 && zmq_errno () == EINTR)
        ;
    return rc;
}

int
sluice_recv_append (void *socket, zmq_msg_t **frames, size_t *count, size_t *capacity)
{
    if (*count == *capacity) {
        size_t grown = *capacity ? *capacity * 2 : 16;
        zmq_msg_t *array = (zmq_msg_t *) realloc (*frames, grown * sizeof *array);
        if (!array) {
            errno = ENOMEM;
            return -1;
        }
        *frames = array;
        *capacity = grown;
    }
    zmq_msg_t *frame = &(*frames) [*count];
    zmq_msg_init (frame);
    if (sluice_recv_more (frame, socket) == -1) {
        zmq_msg_close (frame);
        return -1;
    }
    (*count)++;
    return zmq_msg_more (frame) ? 1 : 0;
}

int
sluice_msg_send_more (zmq_msg_t *msg, void *socket, int flags)
{
    int rc;
    while ((rc = zmq_msg_send (msg, socket, flags)) == -1 && zmq_errno () == EINTR)
        ;
    return rc;
}

static void
s_drain_rest (void *socket)
{
    int more = 1;
    zmq_msg_t junk;
    zmq_msg_init (&junk);
    while (more) {
        if (sluice_recv_more (&junk, socket) == -1)
            break;
        more = zmq_msg_more (&junk);
    }
    zmq_msg_close (&junk);
}

static int
s_flag (sluice_request_t *req, sluice_err_t error, const char *reason)
{
    if (req->error == SLUICE_OK) {
        req->error = error;
        req->reason = reason;
    }
    return 1;
}

//  Take the body frames after the first into req->more (the array is kept for the next
//  request). Past max_bodies, or out of memory, the rest is drained and the request refused.
static void
s_recv_more_bodies (void *router, sluice_request_t *req, size_t max_bodies)
{
    while (true) {
        if (1 + req->more_count == max_bodies) {
            s_drain_rest (router);
            s_flag (req, SLUICE_EPROTO, max_bodies == 1
                    ? "too many frames: a request has a header and at most one body frame"
                    : "too many frames: a request has a header and at most 1024 body frames");
            return;
        }
        int rc = sluice_recv_append (router, &req->more, &req->more_count, &req->more_capacity);
        if (rc == -1 && errno == ENOMEM) {
            s_drain_rest (router);
            s_flag (req, SLUICE_EBUSY, "out of memory: request refused");
        }
        if (rc != 1)
            return;         //  the last frame, or a socket error (only when terminating)
    }
}

int
sluice_request_recv (void *router, sluice_request_t *req, size_t max_bodies)
{
    req->has_body = false;
    req->more_count = 0;
    req->error = SLUICE_OK;
    req->reason = NULL;
    zmq_msg_init (&req->identity);
    zmq_msg_init (&req->body);
    memset (&req->header, 0, sizeof req->header);

    if (zmq_msg_recv (&req->identity, router, ZMQ_DONTWAIT) == -1) {
        int saved = errno;
        zmq_msg_close (&req->identity);
        zmq_msg_init (&req->identity);
        errno = saved;
        return saved == EAGAIN ? 0 : -1;
    }
    //  A multipart message arrives whole, so the remaining frames never block
    if (!zmq_msg_more (&req->identity))
        return s_flag (req, SLUICE_EPROTO, "empty message: expected a 20-byte header frame");

    zmq_msg_t header;
    zmq_msg_init (&header);
    if (sluice_recv_more (&header, router) == -1) {
        zmq_msg_close (&header);
        return -1;
    }
    sluice_err_t rc = sluice_header_decode (zmq_msg_data (&header), zmq_msg_size (&header),
                                            &req->header);
    bool more = zmq_msg_more (&header);
    zmq_msg_close (&header);
    if (rc == SLUICE_EVERSION)
        s_flag (req, rc, "unsupported protocol version: this actor speaks version 1");
    else
    if (rc != SLUICE_OK)
        s_flag (req, rc, "header frame must be exactly 20 bytes");
    else
    if (req->header.status != 0)
        s_flag (req, SLUICE_EPROTO, "status byte of a request must be 0");

    if (more) {
        if (sluice_recv_more (&req->body, router) == -1)
            return -1;
        req->has_body = true;
        if (zmq_msg_more (&req->body))
            s_recv_more_bodies (router, req, max_bodies < 1 ? 1 : max_bodies);
    }
    return 1;
}

void
sluice_request_fini (sluice_request_t *req)
{
    zmq_msg_close (&req->identity);
    zmq_msg_close (&req->body);
    zmq_msg_init (&req->identity);
    zmq_msg_init (&req->body);
    for (size_t index = 0; index < req->more_count; index++)
        zmq_msg_close (&req->more [index]);
    req->more_count = 0;
    req->has_body = false;
}

void
sluice_request_release (sluice_request_t *req)
{
    sluice_request_fini (req);
    free (req->more);
    req->more = NULL;
    req->more_capacity = 0;
}

int
sluice_reply_send (void *router, zmq_msg_t *identity, const sluice_header_t *header,
                   zmq_msg_t *frames, size_t count)
{
    //  With ROUTER_MANDATORY the routing frame is where an unroutable peer (EHOSTUNREACH) or a
    //  full pipe (EAGAIN) is reported; once it is accepted the rest of the message is queued
    //  whole. Send a copy first so that a failure leaves the caller's identity intact.
    zmq_msg_t routing;
    zmq_msg_init (&routing);
    zmq_msg_copy (&routing, identity);
    if (zmq_msg_send (&routing, router, ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1) {
        int saved = errno;
        zmq_msg_close (&routing);
        errno = saved;
        return -1;
    }
    uint8_t bytes [SLUICE_HEADER_SIZE];
    sluice_header_t reply = *header;
    reply.version = SLUICE_PROTOCOL_VERSION;
    reply.count = (uint32_t) count;
    sluice_header_encode (&reply, bytes);
    int rc = sluice_send_more (router, bytes, sizeof bytes, (count ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
    for (size_t index = 0; rc != -1 && index < count; index++)
        rc = sluice_msg_send_more (&frames [index], router,
                                   (index + 1 < count ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
    if (rc == -1) {
        //  Only possible when the context is terminating (EINTR is retried): nothing to recover
        zsys_error ("sluice: reply lost after routing frame: %s", zmq_strerror (errno));
        return -1;
    }
    zmq_msg_close (identity);
    zmq_msg_init (identity);
    return 0;
}

int
sluice_reply_text (void *router, zmq_msg_t *identity, const sluice_header_t *request,
                   uint8_t flags, const char *text, size_t size)
{
    sluice_header_t header = *request;
    header.flags = flags;
    header.timeout_ms = 0;
    header.status = SLUICE_OK;
    zmq_msg_t body;
    zmq_msg_init_size (&body, size);
    if (size)
        memcpy (zmq_msg_data (&body), text, size);
    int rc = sluice_reply_send (router, identity, &header, &body, 1);
    zmq_msg_close (&body);
    return rc;
}

int
sluice_reply_error (void *router, zmq_msg_t *identity, const sluice_header_t *request,
                    uint8_t flags, sluice_err_t status, const char *reason)
{
    sluice_header_t header = *request;
    header.flags = flags;
    header.timeout_ms = 0;
    header.status = (uint8_t) status;
    if (!reason)
        reason = sluice_strerror (status);
    zmq_msg_t body;
    size_t size = strlen (reason);
    zmq_msg_init_size (&body, size);
    memcpy (zmq_msg_data (&body), reason, size);
    int rc = sluice_reply_send (router, identity, &header, &body, 1);
    zmq_msg_close (&body);
    if (rc == -1)
        zsys_debug ("sluice: error reply (%s) undeliverable: %s",
                    sluice_strerror (status), zmq_strerror (errno));
    return rc;
}

void
sluice_socket_heartbeat (zsock_t *sock, int interval_ms)
{
    zsock_set_heartbeat_ivl (sock, interval_ms);
    zsock_set_heartbeat_timeout (sock, interval_ms * 3);
    zsock_set_heartbeat_ttl (sock, interval_ms * 3);
}

zsock_t *
sluice_router_new (const char *endpoint, const sluice_router_opts_t *opts, sluice_err_t *err,
                   bool *secured)
{
    *secured = false;
    *err = SLUICE_ETRANSPORT;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    if (!router)
        return NULL;
    //  Never drop a reply silently: an unroutable peer is an error we act on
    zsock_set_router_mandatory (router, 1);
    //  Dead or hung tcp peers are disconnected, so their parked requests can be swept
    sluice_socket_heartbeat (router, SLUICE_HEARTBEAT_MS);
    //  Many clients connecting at once (the default backlog of 100 serialises them)
    zsock_set_backlog (router, SLUICE_BACKLOG);
    //  Replies sent just before the actor stops (a close, a shutdown) still leave over tcp
    zsock_set_linger (router, 1000);
    zsock_set_sndhwm (router, opts->sndhwm > INT_MAX ? INT_MAX : (int) opts->sndhwm);
    if (opts->maxmsgsize > 0)
        zsock_set_maxmsgsize (router, (int) (opts->maxmsgsize > INT_MAX ? INT_MAX : opts->maxmsgsize));
    char why [256];
    int curve = sluice_curve_server (router, opts->curve, why, sizeof why);
    if (curve == -1) {
        zsys_error ("sluice: refusing to start %s: %s", endpoint, why);
        zsock_destroy (&router);
        *err = SLUICE_EINVAL;
        return NULL;
    }
    if (zsock_bind (router, "%s", endpoint) == -1) {
        int saved = errno;
        zsys_error ("sluice: cannot bind %s: %s", endpoint, zmq_strerror (saved));
        zsock_destroy (&router);
        if (curve == 1)
            sluice_curve_release ();
        errno = saved;
        return NULL;
    }
    *secured = curve == 1;
    *err = SLUICE_OK;
    return router;
}

char *
sluice_bound_endpoint (zsock_t *sock, const char *requested)
{
    char *last = zsock_last_endpoint (sock);
    if (last && *last)
        return last;
    zstr_free (&last);
    return strdup (requested);
}

long
sluice_poll_timeout (int64_t deadline)
{
    if (deadline == INT64_MAX)
        return -1;
    int64_t wait = deadline - zclock_mono ();
    return wait > 0 ? (long) wait : 0;
}

static const char *
s_find_value (const char *text, size_t size, const char *key, size_t *value_size)
{
    size_t key_size = strlen (key);
    const char *end = text + size;
    const char *line = text;
    while (line < end) {
        const char *eol = memchr (line, '\n', (size_t) (end - line));
        if (!eol)
            eol = end;
        if ((size_t) (eol - line) > key_size && memcmp (line, key, key_size) == 0
        &&  line [key_size] == '=') {
            *value_size = (size_t) (eol - line) - key_size - 1;
            return line + key_size + 1;
        }
        line = eol + 1;
    }
    return NULL;
}

uint64_t
sluice_status_u64 (const char *text, size_t size, const char *key, uint64_t fallback)
{
    size_t value_size;
    const char *value = s_find_value (text, size, key, &value_size);
    if (!value || value_size == 0 || value_size > 20)
        return fallback;
    uint64_t result = 0;
    for (size_t index = 0; index < value_size; index++) {
        if (value [index] < '0' || value [index] > '9')
            return fallback;
        result = result * 10 + (uint64_t) (value [index] - '0');
    }
    return result;
}

bool
sluice_status_str (const char *text, size_t size, const char *key, char *out, size_t out_size)
{
    size_t value_size;
    const char *value = s_find_value (text, size, key, &value_size);
    if (!value || out_size == 0)
        return false;
    if (value_size >= out_size)
        value_size = out_size - 1;
    memcpy (out, value, value_size);
    out [value_size] = 0;
    return true;
}

void
sluice_identity_key (zmq_msg_t *identity, char *key)
{
    static const char hex [] = "0123456789abcdef";
    const uint8_t *bytes = (const uint8_t *) zmq_msg_data (identity);
    size_t size = zmq_msg_size (identity) < 255 ? zmq_msg_size (identity) : 255;
    for (size_t index = 0; index < size; index++) {
        key [index * 2] = hex [bytes [index] >> 4];
        key [index * 2 + 1] = hex [bytes [index] & 15];
    }
    key [size * 2] = 0;
}

bool
sluice_identity_eq (zmq_msg_t *first, zmq_msg_t *second)
{
    size_t size = zmq_msg_size (first);
    return size == zmq_msg_size (second)
        && memcmp (zmq_msg_data (first), zmq_msg_data (second), size) == 0;
}

int
sluice_reply_ping (void *router, zmq_msg_t *identity, const sluice_header_t *request, bool holds)
{
    sluice_header_t reply = *request;
    reply.flags = holds ? SLUICE_FLAG_PARKED : 0;
    reply.timeout_ms = 0;
    reply.status = SLUICE_OK;
    return sluice_reply_send (router, identity, &reply, NULL, 0);
}

bool
sluice_peer_alive (void *router, zmq_msg_t *identity, zhashx_t *verdicts, const char *key)
{
    char own_key [512];
    if (!key) {
        sluice_identity_key (identity, own_key);
        key = own_key;
    }
    void *known = zhashx_lookup (verdicts, key);
    if (known)
        return known == (void *) 1;
    sluice_header_t probe = { .command = SLUICE_CMD_PING, .request_id = SLUICE_PROBE_ID };
    zmq_msg_t routing;
    zmq_msg_init (&routing);
    zmq_msg_copy (&routing, identity);
    //  A peer whose queue is full (EAGAIN) is alive, only busy
    bool alive = sluice_reply_send (router, &routing, &probe, NULL, 0) == 0 || errno != EHOSTUNREACH;
    zmq_msg_close (&routing);
    zhashx_insert (verdicts, key, alive ? (void *) 1 : (void *) 2);
    return alive;
}
