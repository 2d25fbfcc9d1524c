/*  sluice_codec.c - header, frames, requests off a ROUTER, the command table, replies.

    Hot path: actors receive with ZMQ_DONTWAIT until the socket is empty (no poll per message)
    and move zmq_msg_t frames instead of copying them.
*/
#include "sluice_codec.h"
#include <errno.h>
#include <string.h>


// ---------------------------------------------------------------------------------------------
//  Header

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
sluice_put64 (uint8_t *bytes, uint64_t value)
{
    s_put32 (bytes, (uint32_t) (value >> 32));
    s_put32 (bytes + 4, (uint32_t) value);
}

uint64_t
sluice_get64 (const uint8_t *bytes)
{
    return ((uint64_t) s_get32 (bytes) << 32) | s_get32 (bytes + 4);
}

void
sluice_header_encode (const sluice_header_t *header, uint8_t *out)
{
    out [0] = header->version;
    out [1] = header->command;
    out [2] = header->flags;
    out [3] = header->status;
    s_put32 (out + 4, header->timeout_ms);
    sluice_put64 (out + 8, header->request_id);
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
    if (size >= 16) header->request_id = sluice_get64 (p + 8);
    if (size >= 20) header->count = s_get32 (p + 16);
    if (size >= 1 && header->version != SLUICE_PROTOCOL_VERSION)
        return SLUICE_EVERSION;
    //  More than the header only with INLINE: the rest is the body
    if (size < SLUICE_HEADER_SIZE
    || (size > SLUICE_HEADER_SIZE && !(header->flags & SLUICE_FLAG_INLINE)))
        return SLUICE_EPROTO;
    return SLUICE_OK;
}

const char *
sluice_actor_kind_name (sluice_actor_kind_t kind)
{
    switch (kind) {
        case SLUICE_ACTOR_BUFFER:       return "buffer";
        case SLUICE_ACTOR_MODEL_SERVER: return "model-server";
        default:                        return NULL;
    }
}

// ---------------------------------------------------------------------------------------------
//  The command table

// ---------------------------------------------------------------------------------------------
//  Packed bodies

size_t
sluice_packed_put (uint8_t *out, const void *chunk, size_t size)
{
    s_put32 (out, (uint32_t) size);
    if (size)
        memcpy (out + 4, chunk, size);
    out [4 + size] = 0;
    return size + SLUICE_PACKED_OVERHEAD;
}

bool
sluice_packed_next (sluice_unpacker_t *walk, const uint8_t **chunk, size_t *size)
{
    if ((size_t) (walk->end - walk->at) < SLUICE_PACKED_OVERHEAD)
        return false;
    size_t length = s_get32 (walk->at);
    if (length > (size_t) (walk->end - walk->at) - SLUICE_PACKED_OVERHEAD)
        return false;
    *chunk = walk->at + 4;
    *size = length;
    walk->at += length + SLUICE_PACKED_OVERHEAD;
    return true;
}

const char *
sluice_packed_check (const void *data, size_t size, uint32_t count, size_t *largest)
{
    sluice_unpacker_t walk = { (const uint8_t *) data, (const uint8_t *) data + size };
    const uint8_t *chunk;
    size_t chunk_size;
    uint32_t seen = 0;
    *largest = 0;
    while (seen < count && sluice_packed_next (&walk, &chunk, &chunk_size)) {
        if (chunk [chunk_size] != 0)
            return "packed chunk not followed by its 0 byte";
        if (chunk_size > *largest)
            *largest = chunk_size;
        seen++;
    }
    if (seen < count || walk.at != walk.end)
        return "packed body does not hold exactly count chunks (4-byte size, bytes, 0 byte each)";
    return NULL;
}

// ---------------------------------------------------------------------------------------------
//  The command table

static const char *
s_check_write (const sluice_request_t *req)
{
    if (req->header.flags & SLUICE_FLAG_PACKED) {
        //  count chunks in one frame; the actor checks their sizes against its own limit
        size_t largest;
        if (req->frames.count != 1 || req->header.count < 1 || req->header.count > SLUICE_MAX_BATCH)
            return "packed WRITE needs one body frame and count 1..1024";
        const zmq_msg_t *body = &req->frames.items [0];
        return sluice_packed_check (zmq_msg_data ((zmq_msg_t *) body),
                                    zmq_msg_size ((zmq_msg_t *) body), req->header.count, &largest);
    }
    //  count says how many chunk frames follow; 0 is also accepted for a single chunk
    size_t chunks = req->frames.count;
    if (req->header.count != chunks && !(req->header.count == 0 && chunks == 1))
        return "WRITE count must equal the number of chunk frames";
    return NULL;
}

static const char *
s_check_read (const sluice_request_t *req)
{
    bool ack = req->header.flags & SLUICE_FLAG_ACK;
    if (ack && (req->frames.count != 1 || zmq_msg_size (&req->frames.items [0]) != 8))
        return "READ with the ACK flag needs an 8-byte body: the last reply id received";
    if (!ack && req->frames.count)
        return "READ without the ACK flag takes no body frame";
    return NULL;
}

#define S_BUFFER  SLUICE_ACTOR_BUFFER
#define S_MODEL   SLUICE_ACTOR_MODEL_SERVER

//  docs/PROTOCOL.md, "Commands", is this table in prose.
static const sluice_command_t s_commands [] = {
    //  code              name        actors             flags              frames     frame      count            size  check
    { SLUICE_CMD_WRITE,    "WRITE",    S_BUFFER,          SLUICE_FLAG_FINAL | SLUICE_FLAG_PACKED, 1, SLUICE_MAX_BATCH, "chunk", 0, 0, 0, s_check_write },
    { SLUICE_CMD_READ,     "READ",     S_BUFFER,          SLUICE_FLAG_ACK | SLUICE_FLAG_PACKED, 0, 1, "reply id", 1, SLUICE_MAX_BATCH, 0, s_check_read },
    { SLUICE_CMD_CLOSE,    "CLOSE",    S_BUFFER,          0,                 0, 0,  NULL,        0, 0, 0, NULL },
    { SLUICE_CMD_STATUS,   "STATUS",   S_BUFFER | S_MODEL, 0,                0, 0,  NULL,        0, 0, 0, NULL },
    { SLUICE_CMD_REQUEST,  "REQUEST",  S_MODEL,           SLUICE_FLAG_STREAM, 1, 1, "payload",   0, 0, 0, NULL },
    { SLUICE_CMD_SHUTDOWN, "SHUTDOWN", S_MODEL,           0,                 0, 0,  NULL,        0, 0, 0, NULL },
    { SLUICE_CMD_WAIT,     "WAIT",     S_MODEL,           0,                 0, 0,  NULL,        0, 0, 0, NULL },
    { SLUICE_CMD_ACK,      "ACK",      S_BUFFER,          0,                 1, 1,  "reply id",  0, 0, 8, NULL },
    { SLUICE_CMD_PING,     "PING",     S_BUFFER | S_MODEL, 0,                0, 0,  NULL,        0, 0, 0, NULL },
    { SLUICE_CMD_PULL,     "PULL",     S_MODEL,           0,                 1, 1,  "stream id", 1, SLUICE_MAX_BATCH, 8, NULL },
    { SLUICE_CMD_CANCEL,   "CANCEL",   S_MODEL,           0,                 1, 1,  "stream id", 0, 0, 8, NULL },
};
#define S_COMMANDS (sizeof s_commands / sizeof s_commands [0])

const sluice_command_t *
sluice_command_find (int code)
{
    for (size_t index = 0; index < S_COMMANDS; index++)
        if (s_commands [index].code == code)
            return &s_commands [index];
    return NULL;
}

const char *
sluice_command_name (int command)
{
    const sluice_command_t *row = sluice_command_find (command);
    return row ? row->name : NULL;
}

size_t
sluice_command_max_frames (unsigned actors)
{
    size_t most = 0;
    for (size_t index = 0; index < S_COMMANDS; index++)
        if ((s_commands [index].actors & actors) && s_commands [index].frames_max > most)
            most = s_commands [index].frames_max;
    return most;
}

const char *
sluice_command_list (unsigned actors, char *out, size_t size)
{
    size_t total = 0, seen = 0, used = 0;
    for (size_t index = 0; index < S_COMMANDS; index++)
        total += (s_commands [index].actors & actors) != 0;
    out [0] = 0;
    for (size_t index = 0; index < S_COMMANDS && used < size; index++) {
        if (!(s_commands [index].actors & actors))
            continue;
        seen++;
        const char *glue = seen == 1 ? "" : seen == total ? " and " : ", ";
        int rc = snprintf (out + used, size - used, "%s%s", glue, s_commands [index].name);
        used += rc > 0 ? (size_t) rc : 0;
    }
    return out;
}

//  "ACK and PACKED": the names of the flags set in `flags`, for error texts.
static const char *
s_flag_names (uint8_t flags, char *out, size_t size)
{
    static const char *names [8] = { "FINAL", "EOS", "PARKED", "ACK", "STREAM", "PACKED", "INLINE", "?" };
    size_t used = 0;
    *out = 0;
    for (int bit = 0; bit < 8 && used < size; bit++) {
        if (!(flags & (1u << bit)))
            continue;
        flags &= (uint8_t) ~(1u << bit);
        int rc = snprintf (out + used, size - used, "%s%s", used ? (flags ? ", " : " and ") : "",
                           names [bit]);
        used += rc > 0 ? (size_t) rc : 0;
    }
    return out;
}

static sluice_err_t
s_refuse (sluice_request_t *req, sluice_err_t error, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (req->reason_text, sizeof req->reason_text, format, args);
    va_end (args);
    req->error = error;
    req->reason = req->reason_text;
    return error;
}

sluice_err_t
sluice_request_validate (sluice_request_t *req, sluice_actor_kind_t actor)
{
    if (req->error != SLUICE_OK)
        return req->error;
    //  Id 0 is the actors' own probe, which clients ignore: a reply to it would never be read
    if (req->header.request_id == SLUICE_PROBE_ID)
        return s_refuse (req, SLUICE_EPROTO, "request id 0 is reserved (the actors' probe)");
    const sluice_command_t *row = sluice_command_find (req->header.command);
    if (!row || !(row->actors & (unsigned) actor)) {
        char served [128];
        const char *actor_name = sluice_actor_kind_name (actor);
        return s_refuse (req, SLUICE_ECOMMAND, "unknown command %u%s%s%s: a %s serves %s",
                         req->header.command, row ? " (" : "", row ? row->name : "",
                         row ? ")" : "", actor_name ? actor_name : "actor",
                         sluice_command_list ((unsigned) actor, served, sizeof served));
    }
    const sluice_header_t *header = &req->header;
    size_t frames = req->frames.count;
    //  INLINE says how the frames travel, not what the command does: any request may have it
    if (header->flags & ~(row->flags | SLUICE_FLAG_INLINE)) {
        if (row->flags == 0)
            return s_refuse (req, SLUICE_EPROTO, "%s takes no flags", row->name);
        char names [64];
        return s_refuse (req, SLUICE_EPROTO, "%s accepts only the %s flag%s", row->name,
                         s_flag_names (row->flags, names, sizeof names),
                         row->flags & (row->flags - 1) ? "s" : "");
    }
    if (frames < row->frames_min || frames > row->frames_max) {
        if (row->frames_max == 0)
            return s_refuse (req, SLUICE_EPROTO, "%s takes no body frame", row->name);
        if (row->frames_min == row->frames_max)
            return s_refuse (req, SLUICE_EPROTO, "%s needs exactly one %s frame after the header",
                             row->name, row->frame_name);
        if (row->frames_min > 0)
            return s_refuse (req, SLUICE_EPROTO, "%s needs %u to %u %s frames after the header",
                             row->name, row->frames_min, row->frames_max, row->frame_name);
        return s_refuse (req, SLUICE_EPROTO, "%s takes at most %u body frame(s)",
                         row->name, row->frames_max);
    }
    if (row->count_max && (header->count < row->count_min || header->count > row->count_max))
        return s_refuse (req, SLUICE_EPROTO, "%s count must be %u..%u", row->name,
                         row->count_min, row->count_max);
    for (size_t index = 0; row->frame_size && index < frames; index++)
        if (zmq_msg_size (&req->frames.items [index]) != row->frame_size)
            return s_refuse (req, SLUICE_EPROTO, "%s needs a %zu-byte %s frame", row->name,
                             row->frame_size, row->frame_name);
    const char *reason = row->check ? row->check (req) : NULL;
    if (reason) {
        req->error = SLUICE_EPROTO;
        req->reason = reason;
        return req->error;
    }
    req->command = row;
    return SLUICE_OK;
}

// ---------------------------------------------------------------------------------------------
//  Frames

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
sluice_msg_send_more (zmq_msg_t *msg, void *socket, int flags)
{
    int rc;
    while ((rc = zmq_msg_send (msg, socket, flags)) == -1 && zmq_errno () == EINTR)
        ;
    return rc;
}

static int
s_frames_reserve (sluice_frames_t *frames, size_t wanted)
{
    if (wanted <= frames->capacity)
        return 0;
    size_t grown = frames->capacity ? frames->capacity * 2 : 16;
    while (grown < wanted)
        grown *= 2;
    zmq_msg_t *items = (zmq_msg_t *) realloc (frames->items, grown * sizeof *items);
    if (!items) {
        errno = ENOMEM;
        return -1;
    }
    frames->items = items;
    frames->capacity = grown;
    return 0;
}

int
sluice_frames_recv (sluice_frames_t *frames, void *socket)
{
    if (s_frames_reserve (frames, frames->count + 1) == -1)
        return -1;
    zmq_msg_t *frame = &frames->items [frames->count];
    zmq_msg_init (frame);
    if (sluice_recv_more (frame, socket) == -1) {
        zmq_msg_close (frame);
        return -1;
    }
    frames->count++;
    return zmq_msg_more (frame) ? 1 : 0;
}

int
sluice_frames_take_inline (sluice_frames_t *frames, zmq_msg_t *header_frame)
{
    size_t size = zmq_msg_size (header_frame) - SLUICE_HEADER_SIZE;
    if (s_frames_reserve (frames, frames->count + 1) == -1)
        return -1;
    zmq_msg_t *frame = &frames->items [frames->count];
    if (zmq_msg_init_size (frame, size) == -1) {
        errno = ENOMEM;
        return -1;
    }
    if (size)
        memcpy (zmq_msg_data (frame), (uint8_t *) zmq_msg_data (header_frame) + SLUICE_HEADER_SIZE,
                size);
    frames->count++;
    return 0;
}

int
sluice_inline_frame (zmq_msg_t *out, const sluice_header_t *header, const void *body, size_t size)
{
    if (zmq_msg_init_size (out, SLUICE_HEADER_SIZE + size) == -1) {
        zmq_msg_init (out);
        errno = ENOMEM;
        return -1;
    }
    sluice_header_t inlined = *header;
    inlined.flags |= SLUICE_FLAG_INLINE;
    uint8_t *bytes = (uint8_t *) zmq_msg_data (out);
    sluice_header_encode (&inlined, bytes);
    if (size)
        memcpy (bytes + SLUICE_HEADER_SIZE, body, size);
    return 0;
}

void
sluice_frames_clear (sluice_frames_t *frames)
{
    for (size_t index = 0; index < frames->count; index++)
        zmq_msg_close (&frames->items [index]);
    frames->count = 0;
}

void
sluice_frames_release (sluice_frames_t *frames)
{
    sluice_frames_clear (frames);
    free (frames->items);
    frames->items = NULL;
    frames->capacity = 0;
}

void
sluice_frames_swap (sluice_frames_t *first, sluice_frames_t *second)
{
    sluice_frames_t saved = *first;
    *first = *second;
    *second = saved;
}

size_t
sluice_frames_bytes (const sluice_frames_t *frames)
{
    size_t bytes = 0;
    for (size_t index = 0; index < frames->count; index++)
        bytes += zmq_msg_size (&frames->items [index]);
    return bytes;
}

// ---------------------------------------------------------------------------------------------
//  Requests

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

int
sluice_request_recv (void *router, sluice_request_t *req, size_t max_frames)
{
    req->frames.count = 0;
    req->command = NULL;
    req->error = SLUICE_OK;
    req->reason = NULL;
    zmq_msg_init (&req->identity);
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
    if (rc != SLUICE_OK)
        req->header.flags &= (uint8_t) ~SLUICE_FLAG_INLINE;   //  not answered in a form it may not know
    if (rc == SLUICE_EVERSION)
        s_flag (req, rc, "unsupported protocol version: this actor speaks version 1");
    else
    if (rc != SLUICE_OK)
        s_flag (req, rc, "header frame must be 20 bytes (longer only with INLINE: the body follows "
                         "the header in it)");
    else
    if (req->header.status != 0)
        s_flag (req, SLUICE_EPROTO, "status byte of a request must be 0");

    if (req->header.flags & SLUICE_FLAG_INLINE) {
        //  The body is in the header frame: one frame, nothing may follow it
        if (more) {
            zmq_msg_close (&header);
            s_drain_rest (router);
            return s_flag (req, SLUICE_EPROTO, "frames after an INLINE header frame: with INLINE "
                                               "the body is in the header frame");
        }
        int taken = max_frames ? sluice_frames_take_inline (&req->frames, &header) : 0;
        zmq_msg_close (&header);
        if (max_frames == 0)
            return s_flag (req, SLUICE_EPROTO, "too many frames: a request has a header and no "
                                               "body");
        if (taken == -1)
            return s_flag (req, SLUICE_EBUSY, "out of memory: request refused");
        return 1;
    }
    zmq_msg_close (&header);

    while (more) {
        if (req->frames.count == max_frames) {
            s_drain_rest (router);
            snprintf (req->reason_text, sizeof req->reason_text,
                      "too many frames: a request has a header and at most %zu body frame%s",
                      max_frames, max_frames == 1 ? "" : "s");
            return s_flag (req, SLUICE_EPROTO, req->reason_text);
        }
        int got = sluice_frames_recv (&req->frames, router);
        if (got == -1 && errno == ENOMEM) {
            s_drain_rest (router);
            return s_flag (req, SLUICE_EBUSY, "out of memory: request refused");
        }
        if (got == -1)
            return -1;      //  only when the context terminates
        more = got == 1;
    }
    return 1;
}

void
sluice_request_fini (sluice_request_t *req)
{
    zmq_msg_close (&req->identity);
    zmq_msg_init (&req->identity);
    sluice_frames_clear (&req->frames);
}

void
sluice_request_release (sluice_request_t *req)
{
    sluice_request_fini (req);
    sluice_frames_release (&req->frames);
}

// ---------------------------------------------------------------------------------------------
//  Replies

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
    //  A packed body's count is its chunks (the caller's), not its one frame
    if (!(header->flags & SLUICE_FLAG_PACKED))
        reply.count = (uint32_t) count;
    //  A peer that may be answered inline is, when the body is one small frame
    zmq_msg_t inlined;
    bool inline_body = (header->flags & SLUICE_FLAG_INLINE) && count == 1
                    && zmq_msg_size (&frames [0]) <= SLUICE_INLINE_MAX
                    && sluice_inline_frame (&inlined, &reply, zmq_msg_data (&frames [0]),
                                            zmq_msg_size (&frames [0])) == 0;
    int rc;
    if (inline_body) {
        rc = sluice_msg_send_more (&inlined, router, ZMQ_DONTWAIT);
        zmq_msg_close (&inlined);
        if (rc != -1) {
            zmq_msg_close (&frames [0]);
            zmq_msg_init (&frames [0]);
        }
    }
    else {
        reply.flags &= (uint8_t) ~SLUICE_FLAG_INLINE;
        sluice_header_encode (&reply, bytes);
        rc = sluice_send_more (router, bytes, sizeof bytes, (count ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
        for (size_t index = 0; rc != -1 && index < count; index++)
            rc = sluice_msg_send_more (&frames [index], router,
                                       (index + 1 < count ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
    }
    if (rc == -1) {
        //  Only possible when the context is terminating (EINTR is retried): nothing to recover
        SLUICE_ERROR ("sluice: reply lost after routing frame: %s", zmq_strerror (errno));
        return -1;
    }
    zmq_msg_close (identity);
    zmq_msg_init (identity);
    return 0;
}

