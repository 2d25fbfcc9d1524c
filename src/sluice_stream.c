/*  sluice_stream.c - client of the buffer actor (see sluice_stream.h). */
#include "sluice_conn.h"
#include "sluice_stream.h"
#include <string.h>

struct sluice_stream_t {
    sluice_conn_t conn;
    char *text;                 //  NUL-terminated copy of the last chunk read
    size_t text_capacity;
    bool was_parked;
    bool ended;                 //  sluice_stream_next reached the end of this reader's stream
    //  Pipelined writes
    size_t window;              //  writes allowed in flight (1 = synchronous)
    size_t in_flight;
    uint64_t first_in_flight;   //  request id of the oldest write in flight
    uint64_t last_in_flight;    //  and of the newest
    int64_t flight_deadline;    //  when the last reply in flight is due (INT64_MAX = never)
    sluice_err_t deferred;      //  first error among acknowledged writes, not yet reported
    char deferred_text [512];
    //  Batched writes: chunks written while a write was in flight, packed (sluice_packed_put)
    //  into one buffer that goes out as the one frame of a packed WRITE
    size_t write_batch;         //  most chunks per WRITE (1 = no batching)
    uint8_t *pack;
    size_t pack_size;
    size_t pack_capacity;
    size_t pending_count;
    bool pending_final;         //  the last pending chunk was written with is_final
    int64_t looked_us;          //  when the writer last looked for replies (zclock_usecs)
    //  Batched reads: chunks of the last READ reply not yet handed out. A packed reply is
    //  kept whole and its chunks are handed out in place; another reply's frames are kept
    size_t batch;
    sluice_frames_t held;       //  the reply's frames; those before held_next are closed
    size_t held_next;
    zmq_msg_t packed;           //  the packed reply (its chunks are NUL-terminated in place)
    sluice_unpacker_t walk;
    size_t packed_left;         //  its chunks not handed out yet
    uint8_t held_flags;         //  flags of that reply (FINAL applies to its last chunk)
    //  Acknowledged delivery: the id of the last READ reply received, sent with the next READ
    uint64_t last_read_id;
    bool unacknowledged;        //  a READ reply has been received and not acknowledged yet
};

sluice_stream_t *
sluice_stream_new (const char *endpoint)
{
    return sluice_stream_new_secure (endpoint, NULL);
}

sluice_stream_t *
sluice_stream_new_secure (const char *endpoint, const sluice_curve_t *curve)
{
    sluice_stream_t *self = (sluice_stream_t *) sluice_conn_client_new (sizeof *self, endpoint, curve);
    if (self) {
        //  The buffer holds this client's chunks and parked requests: losing them is an error
        self->conn.strict_incarnation = true;
        self->window = 1;
        self->batch = 1;
        self->write_batch = 1;
        zmq_msg_init (&self->packed);
    }
    return self;
}

//  Acknowledge the last READ reply once every chunk of it was handed out (ACK has no reply).
static sluice_err_t
s_ack (sluice_stream_t *self)
{
    if (!self->unacknowledged || self->held_next != self->held.count || self->packed_left
    ||  !self->conn.dealer)
        return SLUICE_OK;
    uint8_t ack [8];
    sluice_put64 (ack, self->last_read_id);
    uint64_t id;
    sluice_err_t rc = sluice_conn_send (&self->conn, SLUICE_CMD_ACK, 0, 0, 0, ack, sizeof ack, &id);
    if (rc == SLUICE_OK)
        self->unacknowledged = false;
    return rc;
}

sluice_err_t
sluice_stream_ack (sluice_stream_t *self)
{
    sluice_err_t rc = s_ack (self);
    return rc == SLUICE_OK ? sluice_conn_fail (&self->conn, SLUICE_OK, NULL) : rc;
}

void
sluice_stream_destroy (sluice_stream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sluice_stream_t *self = *self_p;
    //  Everything received was handed out: say so, or the buffer would requeue it when it
    //  notices we are gone. Linger so the ACK leaves before the socket closes.
    if (self->conn.dealer)
        zsock_set_linger (self->conn.dealer, 500);
    s_ack (self);
    for (size_t index = self->held_next; index < self->held.count; index++)
        zmq_msg_close (&self->held.items [index]);
    free (self->held.items);
    zmq_msg_close (&self->packed);
    free (self->pack);
    sluice_conn_fini (&self->conn);
    free (self->text);
    free (self);
    *self_p = NULL;
}

//  A call fails with the error (and its text) a call below it already recorded.
static sluice_err_t
s_failed (sluice_stream_t *self, sluice_err_t rc)
{
    self->conn.error = rc;
    return rc;
}

//  Take one acknowledgement of a write in flight; keeps the first error for later.
static sluice_err_t
s_reap_one (sluice_stream_t *self)
{
    //  Replies may come out of order (a write timing out ahead of admitted ones): take any id
    //  in the range; ids below first_in_flight were answered already.
    sluice_err_t rc = sluice_conn_receive (&self->conn, self->first_in_flight,
                                           self->last_in_flight, self->flight_deadline);
    if (rc == SLUICE_EINTR || rc == SLUICE_ETRANSPORT || rc == SLUICE_EUNKNOWN
    ||  rc == SLUICE_ENOMEM)
        return rc;      //  nothing was received: the writes are still in flight
    self->in_flight--;
    if (self->conn.reply.request_id == self->first_in_flight)
        self->first_in_flight++;
    if (self->in_flight == 0)
        self->flight_deadline = INT64_MIN;
    self->was_parked = self->was_parked || (self->conn.reply.flags & SLUICE_FLAG_PARKED);
    if (rc != SLUICE_OK && self->deferred == SLUICE_OK) {
        self->deferred = rc;
        snprintf (self->deferred_text, sizeof self->deferred_text, "%s", self->conn.error_text);
    }
    return SLUICE_OK;
}

//  Report (once) the first error of the writes acknowledged so far.
static sluice_err_t
s_report_deferred (sluice_stream_t *self)
{
    sluice_err_t rc = self->deferred;
    if (rc != SLUICE_OK) {
        self->deferred = SLUICE_OK;
        sluice_conn_fail (&self->conn, rc, "%s", self->deferred_text);
    }
    return rc;
}

//  Count a request just sent as in flight until its reply.
static void
s_take_off (sluice_stream_t *self, uint64_t id, int timeout_ms)
{
    self->last_in_flight = id;
    if (self->in_flight++ == 0) {
        self->first_in_flight = id;
        self->flight_deadline = INT64_MIN;
    }
    int64_t deadline = sluice_conn_deadline (&self->conn, timeout_ms);
    if (deadline > self->flight_deadline)
        self->flight_deadline = deadline;
}

//  Wait for window room, then send the pending chunks as one WRITE.
static sluice_err_t
s_send_pending (sluice_stream_t *self)
{
    while (self->in_flight >= self->window) {
        sluice_err_t rc = s_reap_one (self);
        if (rc != SLUICE_OK)
            return s_failed (self, rc);
    }
    uint64_t id;
    sluice_err_t rc = sluice_conn_send (&self->conn, SLUICE_CMD_WRITE,
                                        SLUICE_FLAG_PACKED
                                        | (self->pending_final ? SLUICE_FLAG_FINAL : 0),
                                        SLUICE_FOREVER, (uint32_t) self->pending_count,
                                        self->pack, self->pack_size, &id);
    if (rc != SLUICE_OK)
        return rc;          //  still pending: a later flush tries again
    self->pack_size = 0;
    self->pending_count = 0;
    self->pending_final = false;
    s_take_off (self, id, SLUICE_FOREVER);
    return SLUICE_OK;
}

sluice_err_t
sluice_stream_flush (sluice_stream_t *self)
{
    if (self->pending_count) {
        sluice_err_t rc = s_send_pending (self);
        if (rc != SLUICE_OK)
            return rc;
    }
    while (self->in_flight) {
        sluice_err_t rc = s_reap_one (self);
        if (rc != SLUICE_OK)
            return s_failed (self, rc);
    }
    if (s_report_deferred (self) != SLUICE_OK)
        return self->conn.error;
    return sluice_conn_fail (&self->conn, SLUICE_OK, NULL);
}

static sluice_err_t
s_call (sluice_stream_t *self, uint8_t command, uint8_t flags, int timeout_ms, uint32_t count,
        const void *body, size_t size)
{
    if (self->in_flight || self->deferred || self->pending_count) {
        sluice_err_t rc = sluice_stream_flush (self);
        if (rc != SLUICE_OK)
            return rc;
    }
    self->was_parked = false;
    sluice_err_t rc = sluice_conn_call (&self->conn, command, flags, timeout_ms, count, body, size);
    self->was_parked = (self->conn.reply.flags & SLUICE_FLAG_PARKED) != 0;
    return rc;
}

#define S_LOOK_US  50
#define S_LOOK_CHUNKS  16
#define S_LOOK_LATE_US  1000
#define S_PACK_BYTES  (SLUICE_PACKED_MAX_BYTES / 4)

//  Batched: the chunk joins the pending batch. A write with nothing in flight sends it at once
//  (acknowledgements already received are taken without waiting first), so a trickle of chunks
//  is never held back; while writes are in flight, chunks gather until the batch is full, the
//  chunk is final, or a reply frees the pipe: batches form whenever the writer outpaces the
//  round trip, and a request carries many chunks.
static sluice_err_t
s_write_batched (sluice_stream_t *self, const void *data, size_t size, bool is_final)
{
    if (s_report_deferred (self) != SLUICE_OK)
        return self->conn.error;
    if (size > INT32_MAX)
        return sluice_conn_fail (&self->conn, SLUICE_ETOOBIG, "a chunk is at most %d bytes",
                                 INT32_MAX);
    //  A batch is full at write_batch chunks, or before its frame would pass a quarter of
    //  what an actor takes in one packed frame
    if (self->pending_count >= self->write_batch
    || (self->pending_count && self->pack_size + size + SLUICE_PACKED_OVERHEAD > S_PACK_BYTES)) {
        sluice_err_t rc = s_send_pending (self);
        if (rc != SLUICE_OK)
            return rc;
    }
    size_t needed = self->pack_size + size + SLUICE_PACKED_OVERHEAD;
    if (needed > self->pack_capacity) {
        size_t capacity = self->pack_capacity ? self->pack_capacity : 4096;
        while (capacity < needed)
            capacity *= 2;
        uint8_t *pack = (uint8_t *) realloc (self->pack, capacity);
        if (!pack)
            return sluice_conn_fail (&self->conn, SLUICE_ENOMEM, "out of memory");
        self->pack = pack;
        self->pack_capacity = capacity;
    }
    size_t before = self->pack_size;
    self->pack_size += sluice_packed_put (self->pack + before, data, size);
    self->pending_count++;
    self->pending_final = is_final;

    //  Look for replies that arrived (a look costs ~560 instructions, and system calls when
    //  there are none) at the first chunk of a batch, then every S_LOOK_CHUNKS chunks or
    //  S_LOOK_LATE_US, never more often than S_LOOK_US: a trickle still goes out at once, a
    //  pending chunk waits at most 16 writes or a millisecond once its replies are back, and a
    //  writer that outpaces the round trip fills its batches instead of paying for looks. The
    //  count bounds looks by work as well as by time, for a writer slowed down (under load,
    //  under valgrind) as much as for a fast one.
    sluice_err_t rc = SLUICE_OK;
    int events;
    bool look = false;
    if (self->in_flight) {
        int64_t now = zclock_usecs ();
        look = self->pending_count == 1
            || (now - self->looked_us >= S_LOOK_US
                && (self->pending_count % S_LOOK_CHUNKS == 1 || now - self->looked_us >= S_LOOK_LATE_US));
        if (look)
            self->looked_us = now;
    }
    while (rc == SLUICE_OK && look && self->in_flight
       &&  (events = zsock_events (self->conn.dealer)) > 0 && (events & ZMQ_POLLIN))
        rc = s_reap_one (self);
    if (rc == SLUICE_OK
    && (self->in_flight == 0 || self->pending_count >= self->write_batch || is_final))
        rc = s_send_pending (self);
    if (rc != SLUICE_OK) {
        //  This call did not run: the chunk leaves the batch again
        self->pack_size = before;
        self->pending_count--;
        self->pending_final = false;
        return s_failed (self, rc);
    }
    return sluice_conn_fail (&self->conn, SLUICE_OK, NULL);
}

sluice_err_t
sluice_stream_write_timeout (sluice_stream_t *self, const void *data, size_t size,
                             bool is_final, int timeout_ms)
{
    if (!data && size)
        return sluice_conn_fail (&self->conn, SLUICE_EINVAL, "data is NULL");
    uint8_t flags = is_final ? SLUICE_FLAG_FINAL : 0;
    //  A body pointer is what marks the chunk frame as present, even for an empty chunk
    if (!data)
        data = "";
    if (self->window <= 1 && self->write_batch <= 1)
        return s_call (self, SLUICE_CMD_WRITE, flags, timeout_ms, 0, data, size);
    self->was_parked = false;
    if (self->write_batch > 1 && timeout_ms == SLUICE_FOREVER)
        return s_write_batched (self, data, size, is_final);

    //  Pipelined, one chunk per WRITE (chunks batched earlier go first): wait only while the
    //  window is full
    if (self->pending_count) {
        sluice_err_t rc = s_send_pending (self);
        if (rc != SLUICE_OK)
            return rc;
    }
    while (self->in_flight >= self->window) {
        sluice_err_t rc = s_reap_one (self);
        if (rc != SLUICE_OK)
            return s_failed (self, rc);
    }
    if (s_report_deferred (self) != SLUICE_OK)
        return self->conn.error;
    uint64_t id;
    sluice_err_t rc = sluice_conn_send (&self->conn, SLUICE_CMD_WRITE, flags, timeout_ms, 0,
                                        data, size, &id);
    if (rc != SLUICE_OK)
        return rc;
    s_take_off (self, id, timeout_ms);
    return sluice_conn_fail (&self->conn, SLUICE_OK, NULL);
}

sluice_err_t
sluice_stream_write (sluice_stream_t *self, const void *data, size_t size, bool is_final)
{
    return sluice_stream_write_timeout (self, data, size, is_final, SLUICE_FOREVER);
}

sluice_err_t
sluice_stream_write_str (sluice_stream_t *self, const char *text)
{
    if (!text)
        return sluice_conn_fail (&self->conn, SLUICE_EINVAL, "text is NULL");
    return sluice_stream_write (self, text, strlen (text), false);
}

static void
s_chunk_set (sluice_chunk_t *chunk, const char *text, size_t size, uint8_t flags)
{
    chunk->text = text;
    chunk->size = size;
    chunk->is_final = (flags & SLUICE_FLAG_FINAL) != 0;
    chunk->is_eos = (flags & SLUICE_FLAG_EOS) != 0;
}

static sluice_err_t
s_take_chunk (sluice_stream_t *self, const zmq_msg_t *frame, uint8_t flags, sluice_chunk_t *chunk)
{
    size_t size = zmq_msg_size ((zmq_msg_t *) frame);
    if (size + 1 > self->text_capacity) {
        char *text = (char *) realloc (self->text, size + 1);
        if (!text)
            return sluice_conn_fail (&self->conn, SLUICE_ENOMEM, "out of memory");
        self->text = text;
        self->text_capacity = size + 1;
    }
    if (size)
        memcpy (self->text, zmq_msg_data ((zmq_msg_t *) frame), size);
    self->text [size] = 0;
    s_chunk_set (chunk, self->text, size, flags);
    return SLUICE_OK;
}

//  Keep the reply just received for the reads that hand its chunks out: a packed one whole
//  (checked here: its chunks are then read in place), another one's frames.
static sluice_err_t
s_hold_reply (sluice_stream_t *self)
{
    sluice_frames_t *frames = &self->conn.frames;
    uint32_t chunks = self->conn.reply.count;
    self->held_flags = self->conn.reply.flags;
    if (self->conn.reply.flags & SLUICE_FLAG_PACKED) {
        size_t largest;
        const char *why = frames->count != 1 ? "a packed READ reply needs one frame"
                        : chunks < 1 || chunks > self->batch ? "READ reply chunk count out of range"
                        : sluice_packed_check (zmq_msg_data (&frames->items [0]),
                                               zmq_msg_size (&frames->items [0]), chunks, &largest);
        if (why)
            return sluice_conn_fail (&self->conn, SLUICE_EPROTO, "%s", why);
        zmq_msg_move (&self->packed, &frames->items [0]);
        sluice_frames_clear (frames);
        self->walk.at = (const uint8_t *) zmq_msg_data (&self->packed);
        self->walk.end = self->walk.at + zmq_msg_size (&self->packed);
        self->packed_left = chunks;
        return SLUICE_OK;
    }
    if (frames->count < 1 || frames->count > self->batch)
        return sluice_conn_fail (&self->conn, SLUICE_EPROTO,
                                 "READ reply with %zu chunks, asked for 1..%zu",
                                 frames->count, self->batch);
    //  Keep the reply's frames: swap arrays with the connection, nothing is copied
    sluice_frames_swap (&self->held, frames);
    self->held_next = 0;
    return SLUICE_OK;
}

sluice_err_t
sluice_stream_read_timeout (sluice_stream_t *self, sluice_chunk_t *chunk, int timeout_ms)
{
    if (!chunk)
        return sluice_conn_fail (&self->conn, SLUICE_EINVAL, "chunk is NULL");
    memset (chunk, 0, sizeof *chunk);
    if (self->held_next == self->held.count && self->packed_left == 0) {
        //  The chunks handed out from the last packed reply are no longer needed
        zmq_msg_close (&self->packed);
        zmq_msg_init (&self->packed);
        uint8_t ack [8];
        sluice_put64 (ack, self->last_read_id);
        uint8_t flags = SLUICE_FLAG_ACK | (self->batch > 1 ? SLUICE_FLAG_PACKED : 0);
        sluice_err_t rc = s_call (self, SLUICE_CMD_READ, flags, timeout_ms,
                                  (uint32_t) self->batch, ack, sizeof ack);
        if (rc != SLUICE_OK)
            return rc;
        //  A reply that cannot be taken is not acknowledged: the buffer delivers it again
        if (s_hold_reply (self) != SLUICE_OK)
            return self->conn.error;
        self->last_read_id = self->conn.reply.request_id;
        self->unacknowledged = true;
    }
    else
        sluice_conn_fail (&self->conn, SLUICE_OK, NULL);
    if (self->packed_left) {
        const uint8_t *text;
        size_t size;
        sluice_packed_next (&self->walk, &text, &size);
        bool last = --self->packed_left == 0;
        s_chunk_set (chunk, (const char *) text, size,
                     last ? self->held_flags : (self->held_flags & SLUICE_FLAG_PARKED));
        return SLUICE_OK;
    }
    zmq_msg_t *frame = &self->held.items [self->held_next++];
    bool last = self->held_next == self->held.count;
    uint8_t flags = last ? self->held_flags : (self->held_flags & SLUICE_FLAG_PARKED);
    sluice_err_t rc = s_take_chunk (self, frame, flags, chunk);
    zmq_msg_close (frame);
    if (last)
        self->held.count = self->held_next = 0;     //  all closed: the array is empty again
    return rc;
}

sluice_err_t
sluice_stream_read (sluice_stream_t *self, sluice_chunk_t *chunk)
{
    return sluice_stream_read_timeout (self, chunk, SLUICE_FOREVER);
}

bool
sluice_stream_next (sluice_stream_t *self, sluice_chunk_t *chunk)
{
    if (self->ended) {
        sluice_conn_fail (&self->conn, SLUICE_OK, NULL);
        return false;
    }
    if (sluice_stream_read (self, chunk) != SLUICE_OK)
        return false;
    if (chunk->is_final) {
        //  A final chunk ends this reader's stream; its own text, if any, is still delivered
        self->ended = true;
        return chunk->size > 0 && !chunk->is_eos;
    }
    return true;
}

sluice_err_t
sluice_stream_close (sluice_stream_t *self)
{
    return s_call (self, SLUICE_CMD_CLOSE, 0, SLUICE_FOREVER, 0, NULL, 0);
}

sluice_err_t
sluice_stream_status (sluice_stream_t *self, sluice_buffer_status_t *status)
{
    if (!status)
        return sluice_conn_fail (&self->conn, SLUICE_EINVAL, "status is NULL");
    sluice_err_t rc = s_call (self, SLUICE_CMD_STATUS, 0, SLUICE_FOREVER, 0, NULL, 0);
    if (rc != SLUICE_OK)
        return rc;
    const char *text;
    size_t size;
    if (sluice_conn_text (&self->conn, &text, &size) != SLUICE_OK)
        return self->conn.error;
    sluice_status_t parsed;
    if (sluice_status_parse (text, size, &parsed) != SLUICE_OK
    ||  parsed.actor != SLUICE_ACTOR_BUFFER)
        return sluice_conn_fail (&self->conn, SLUICE_EPROTO, "the actor is not a buffer");
    *status = parsed.buffer;
    return SLUICE_OK;
}

sluice_err_t
sluice_stream_error (sluice_stream_t *self)
{
    return self->conn.error;
}

const char *
sluice_stream_error_text (sluice_stream_t *self)
{
    return self->conn.error_text;
}

bool
sluice_stream_was_parked (sluice_stream_t *self)
{
    return self->was_parked;
}

sluice_err_t
sluice_stream_set_window (sluice_stream_t *self, size_t window)
{
    if (window < 1)
        return sluice_conn_fail (&self->conn, SLUICE_EINVAL, "window must be at least 1");
    //  A smaller window takes effect as writes in flight are acknowledged
    self->window = window;
    return SLUICE_OK;
}

sluice_err_t
sluice_stream_set_write_batch (sluice_stream_t *self, size_t batch)
{
    if (batch < 1 || batch > SLUICE_MAX_BATCH)
        return sluice_conn_fail (&self->conn, SLUICE_EINVAL, "batch must be 1..%d", SLUICE_MAX_BATCH);
    self->write_batch = batch;
    return SLUICE_OK;
}

sluice_err_t
sluice_stream_set_batch (sluice_stream_t *self, size_t batch)
{
    if (batch < 1 || batch > SLUICE_MAX_BATCH)
        return sluice_conn_fail (&self->conn, SLUICE_EINVAL, "batch must be 1..%d", SLUICE_MAX_BATCH);
    self->batch = batch;
    return SLUICE_OK;
}

void
sluice_stream_set_grace (sluice_stream_t *self, int grace_ms)
{
    self->conn.grace_ms = grace_ms < 0 ? 0 : grace_ms;
}

void
sluice_stream_set_liveness (sluice_stream_t *self, int liveness_ms)
{
    self->conn.liveness_ms = liveness_ms < 0 ? 0 : liveness_ms;
}

void
sluice_stream_set_retry (sluice_stream_t *self, int retry_for_ms)
{
    self->conn.retry_for_ms = retry_for_ms < 0 ? SLUICE_FOREVER : retry_for_ms;
}

void
sluice_stream_interrupt_on (sluice_stream_t *self, void *socket)
{
    sluice_conn_interrupt_on (&self->conn, socket);
}
