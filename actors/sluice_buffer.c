/*  sluice_buffer.c - the bounded stream buffer actor.

    The actor owns the queue. Blocking is done by deferring replies: every WRITE and READ is
    appended to its FIFO of waiters, and one routine, s_settle, serves waiters from the heads
    of those FIFOs while the queue allows it. A request that can be served at once is served
    by the same path a parked one is, so a newcomer can never overtake an older waiter (the
    seed's stolen-wakeup question, answered by design). Invariant after every s_settle: writers
    wait only while the queue is full, readers only while it is empty.

    Each waiter may carry a deadline (the request's timeout_ms, counted from its arrival); the
    actor answers SLUICE_ETIMEOUT itself when it passes, so a timed-out write is never enqueued.
*/
#include "sluice_internal.h"
#include <errno.h>
#include <string.h>

#define SLUICE_BUFFER_MAX_CAPACITY  (1u << 24)
#define S_DRAIN_BATCH               1024    //  requests handled per wake-up before re-polling

#define S_SPARE_WAITERS             1024    //  freed waiters kept for reuse

typedef struct s_waiter_t s_waiter_t;
struct s_waiter_t {
    zmq_msg_t identity;           //  who to answer
    sluice_header_t request;      //  the request as it arrived
    zmq_msg_t chunk;              //  writers: the (first) chunk to enqueue
    zmq_msg_t *more;              //  and the rest of a batch: more_count chunks. The array is
    size_t more_count;            //  swapped with the request's, and kept while the waiter
    size_t more_capacity;         //  is spare: no allocation per request
    int64_t deadline;             //  zclock_mono ms, INT64_MAX = none
    s_waiter_t *prev, *next;      //  in its FIFO (intrusive: no allocation per request)
    void *deadline_handle;        //  in self->deadlines, or NULL
    bool parked;                  //  was deferred at least once (SLUICE_FLAG_PARKED)
};

typedef struct {
    s_waiter_t *head, *tail;
    size_t size;
} s_fifo_t;

typedef struct {
    zmq_msg_t data;
    bool is_final;
} s_slot_t;

typedef struct {
    zsock_t *pipe;
    zsock_t *router;
    sluice_publisher_t *events;
    sluice_buffer_opts_t opts;
    //  The queue: a ring. It holds capacity chunks, and grows past that only when chunks of a
    //  vanished reader come back (they go first, and writers wait until it is below capacity)
    s_slot_t *ring;
    size_t ring_size;
    size_t head;
    size_t queued;
    //  Acknowledged delivery: READ replies not yet acknowledged, by reader identity
    zhashx_t *deliveries;         //  identity key -> s_reader_t
    size_t unacked;               //  chunks held in them
    int64_t next_sweep;           //  when to probe for vanished peers (INT64_MAX = idle)
    //  Waiters, oldest first
    s_fifo_t writers;
    s_fifo_t readers;
    s_waiter_t *spare;            //  freed waiters for reuse, linked by next
    size_t spare_count;
    zlistx_t *deadlines;          //  timed waiters, soonest first
    zmq_msg_t *batch;             //  scratch frames for one READ reply
    bool closed;
    uint64_t written;
    uint64_t read;
    s_waiter_t *arriving;         //  the request s_park is settling, until it is freed
    bool drain_watch;             //  the owner waits for closed-and-empty
    bool secured;                 //  CURVE applied: holds the process's authenticator
    bool terminated;
} s_buffer_t;

#define S_SWEEP_MS  1000     //  probe interval for vanished peers while any request waits

typedef struct {
    uint64_t reply_id;            //  the READ reply these chunks went out in
    zmq_msg_t *chunks;            //  copies (ZeroMQ shares the data: no bytes are copied)
    size_t count;
    bool last_final;
} s_delivery_t;

typedef struct {
    zmq_msg_t identity;
    zlistx_t *deliveries;         //  s_delivery_t, oldest first
} s_reader_t;

// ---------------------------------------------------------------------------------------------
//  Queue

static void
s_ring_reserve (s_buffer_t *self)
{
    if (self->queued < self->ring_size)
        return;
    size_t size = self->ring_size * 2;
    s_slot_t *ring = (s_slot_t *) calloc (size, sizeof *ring);
    assert (ring);
    for (size_t index = 0; index < self->queued; index++) {
        s_slot_t *from = &self->ring [(self->head + index) % self->ring_size];
        zmq_msg_init (&ring [index].data);
        zmq_msg_move (&ring [index].data, &from->data);
        zmq_msg_close (&from->data);
        ring [index].is_final = from->is_final;
    }
    free (self->ring);
    self->ring = ring;
    self->ring_size = size;
    self->head = 0;
}

static void
s_push_tail (s_buffer_t *self, zmq_msg_t *data, bool is_final)
{
    s_ring_reserve (self);
    s_slot_t *slot = &self->ring [(self->head + self->queued) % self->ring_size];
    zmq_msg_init (&slot->data);
    zmq_msg_move (&slot->data, data);
    slot->is_final = is_final;
    self->queued++;
}

static void
s_push_head (s_buffer_t *self, zmq_msg_t *data, bool is_final)
{
    s_ring_reserve (self);
    self->head = (self->head + self->ring_size - 1) % self->ring_size;
    s_slot_t *slot = &self->ring [self->head];
    zmq_msg_init (&slot->data);
    zmq_msg_move (&slot->data, data);
    slot->is_final = is_final;
    self->queued++;
}

static bool
s_pop_head (s_buffer_t *self, zmq_msg_t *data)
{
    s_slot_t *slot = &self->ring [self->head];
    zmq_msg_init (data);
    zmq_msg_move (data, &slot->data);
    zmq_msg_close (&slot->data);
    self->head = (self->head + 1) % self->ring_size;
    self->queued--;
    return slot->is_final;
}

// ---------------------------------------------------------------------------------------------
//  Waiters

static int
s_compare_deadline (const void *item1, const void *item2)
{
    int64_t a = ((const s_waiter_t *) item1)->deadline;
    int64_t b = ((const s_waiter_t *) item2)->deadline;
    return a < b ? -1 : a > b ? 1 : 0;
}

static void
s_fifo_push (s_fifo_t *fifo, s_waiter_t *waiter)
{
    waiter->prev = fifo->tail;
    waiter->next = NULL;
    if (fifo->tail)
        fifo->tail->next = waiter;
    else
        fifo->head = waiter;
    fifo->tail = waiter;
    fifo->size++;
}

static void
s_fifo_remove (s_fifo_t *fifo, s_waiter_t *waiter)
{
    if (waiter->prev)
        waiter->prev->next = waiter->next;
    else
        fifo->head = waiter->next;
    if (waiter->next)
        waiter->next->prev = waiter->prev;
    else
        fifo->tail = waiter->prev;
    waiter->prev = waiter->next = NULL;
    fifo->size--;
}

static s_fifo_t *
s_fifo_of (s_buffer_t *self, s_waiter_t *waiter)
{
    return waiter->request.command == SLUICE_CMD_WRITE ? &self->writers : &self->readers;
}

static s_waiter_t *
s_waiter_new (s_buffer_t *self)
{
    s_waiter_t *waiter = self->spare;
    if (waiter) {
        self->spare = waiter->next;
        self->spare_count--;
        zmq_msg_t *more = waiter->more;
        size_t more_capacity = waiter->more_capacity;
        memset (waiter, 0, sizeof *waiter);
        waiter->more = more;
        waiter->more_capacity = more_capacity;
    }
    else
        waiter = (s_waiter_t *) zmalloc (sizeof *waiter);
    zmq_msg_init (&waiter->identity);
    zmq_msg_init (&waiter->chunk);
    return waiter;
}

static void
s_waiter_free (s_buffer_t *self, s_waiter_t **waiter_p)
{
    s_waiter_t *waiter = *waiter_p;
    if (self->arriving == waiter)
        self->arriving = NULL;
    zmq_msg_close (&waiter->identity);
    zmq_msg_close (&waiter->chunk);
    for (size_t index = 0; index < waiter->more_count; index++)
        zmq_msg_close (&waiter->more [index]);
    waiter->more_count = 0;
    if (self->spare_count < S_SPARE_WAITERS) {
        waiter->next = self->spare;
        self->spare = waiter;
        self->spare_count++;
    }
    else {
        free (waiter->more);
        free (waiter);
    }
    *waiter_p = NULL;
}

//  Take a waiter out of its FIFO and the deadline list; the caller answers and frees it.
static void
s_waiter_remove (s_buffer_t *self, s_waiter_t *waiter)
{
    s_fifo_remove (s_fifo_of (self, waiter), waiter);
    if (waiter->deadline_handle)
        zlistx_detach (self->deadlines, waiter->deadline_handle);
    waiter->deadline_handle = NULL;
}

static uint8_t
s_parked_flag (s_waiter_t *waiter)
{
    return waiter->parked ? SLUICE_FLAG_PARKED : 0;
}

static void
s_answer_error (s_buffer_t *self, s_waiter_t *waiter, sluice_err_t status, const char *reason)
{
    s_waiter_remove (self, waiter);
    sluice_reply_error (zsock_resolve (self->router), &waiter->identity, &waiter->request,
                        s_parked_flag (waiter), status, reason);
    s_waiter_free (self, &waiter);
}

// ---------------------------------------------------------------------------------------------
//  Acknowledged delivery. A reader that asks for it (READ with FLAG_ACK) names, in each READ,
//  the last reply it received. Chunks of replies it acknowledges are released; chunks of any
//  later reply it did not receive (abandoned after a client-side timeout, or lost with the
//  connection) go back to the head of the queue, as do all its chunks once it has vanished.


static void
s_delivery_destroy (void **item)
{
    s_delivery_t *delivery = (s_delivery_t *) *item;
    for (size_t index = 0; index < delivery->count; index++)
        zmq_msg_close (&delivery->chunks [index]);
    free (delivery->chunks);
    free (delivery);
    *item = NULL;
}

static void
s_reader_destroy (void **item)
{
    s_reader_t *reader = (s_reader_t *) *item;
    zlistx_destroy (&reader->deliveries);
    zmq_msg_close (&reader->identity);
    free (reader);
    *item = NULL;
}

static void
s_record_delivery (s_buffer_t *self, zmq_msg_t *identity, uint64_t reply_id,
                   zmq_msg_t *copies, size_t count, bool last_final)
{
    char key [512];
    sluice_identity_key (identity, key);
    s_reader_t *reader = (s_reader_t *) zhashx_lookup (self->deliveries, key);
    if (!reader) {
        reader = (s_reader_t *) zmalloc (sizeof *reader);
        zmq_msg_init (&reader->identity);
        zmq_msg_copy (&reader->identity, identity);
        reader->deliveries = zlistx_new ();
        zlistx_set_destructor (reader->deliveries, s_delivery_destroy);
        zhashx_insert (self->deliveries, key, reader);
    }
    s_delivery_t *delivery = (s_delivery_t *) zmalloc (sizeof *delivery);
    delivery->reply_id = reply_id;
    delivery->chunks = copies;
    delivery->count = count;
    delivery->last_final = last_final;
    zlistx_add_end (reader->deliveries, delivery);
    self->unacked += count;
}

//  Release the delivery the reader acknowledged (reply id ack_id) and requeue the rest; when
//  the reader has vanished, requeue everything. Newest first, so the oldest ends at the head.
static void
s_settle_deliveries (s_buffer_t *self, const char *key, uint64_t ack_id, bool vanished)
{
    s_reader_t *reader = (s_reader_t *) zhashx_lookup (self->deliveries, key);
    if (!reader)
        return;
    s_delivery_t *delivery;
    while ((delivery = (s_delivery_t *) zlistx_last (reader->deliveries))) {
        //  Only the reply the reader names was received: it sends its next READ after that
        //  reply arrived or was abandoned, so any other reply still held never reached it
        //  (ids are not ordered across incarnations of a client that reuse a routing id)
        bool acknowledged = !vanished && delivery->reply_id == ack_id;
        if (!acknowledged) {
            for (size_t index = delivery->count; index > 0; index--)
                s_push_head (self, &delivery->chunks [index - 1],
                             delivery->last_final && index == delivery->count);
            self->read -= delivery->count;
            zsys_debug ("sluice buffer: %zu unacknowledged chunk(s) back to the head of the queue",
                        delivery->count);
        }
        self->unacked -= delivery->count;
        zlistx_delete (reader->deliveries, zlistx_cursor (reader->deliveries));
    }
    //  A live reader keeps its (now empty) record for its next READ; the sweep drops empty
    //  records, so readers that leave cost nothing for long
    if (vanished)
        zhashx_delete (self->deliveries, key);
}

// ---------------------------------------------------------------------------------------------
//  The one serving routine

//  Chunks a writer brings: one, or a batch
static size_t
s_chunks_of (s_waiter_t *writer)
{
    return 1 + writer->more_count;
}

//  Admit the oldest writer. Its chunks are enqueued only once its OK is on the way, so a writer
//  that vanished while parked never leaves a chunk it was not told about.
static void
s_admit_writer (s_buffer_t *self)
{
    s_waiter_t *writer = self->writers.head;
    s_waiter_remove (self, writer);
    sluice_header_t reply = writer->request;
    reply.flags = s_parked_flag (writer);
    reply.timeout_ms = 0;
    reply.status = SLUICE_OK;
    if (sluice_reply_send (zsock_resolve (self->router), &writer->identity, &reply, NULL, 0) == 0) {
        //  FINAL marks the last chunk of a batch
        bool is_final = writer->request.flags & SLUICE_FLAG_FINAL;
        s_push_tail (self, &writer->chunk, is_final && writer->more_count == 0);
        for (size_t index = 0; index < writer->more_count; index++)
            s_push_tail (self, &writer->more [index], is_final && index + 1 == writer->more_count);
        self->written += s_chunks_of (writer);
        writer->more_count = 0;
    }
    else
        zsys_debug ("sluice buffer: writer gone before admission (%s): %zu chunk(s) dropped, never acknowledged",
                    zmq_strerror (errno), s_chunks_of (writer));
    s_waiter_free (self, &writer);
}

//  Serve the oldest reader from the queue: up to its count, stopping after a final chunk.
//  If the reader has vanished the chunks go back to the head of the queue, in order.
static void
s_serve_reader (s_buffer_t *self)
{
    s_waiter_t *reader = self->readers.head;
    s_waiter_remove (self, reader);
    size_t count = 0;
    bool is_final = false;
    while (count < reader->request.count && self->queued > 0 && !is_final)
        is_final = s_pop_head (self, &self->batch [count++]);

    sluice_header_t reply = reader->request;
    reply.flags = s_parked_flag (reader) | (is_final ? SLUICE_FLAG_FINAL : 0);
    reply.timeout_ms = 0;
    reply.status = SLUICE_OK;
    bool acknowledged = reader->request.flags & SLUICE_FLAG_ACK;
    zmq_msg_t *copies = NULL;
    if (acknowledged) {
        copies = (zmq_msg_t *) calloc (count, sizeof *copies);
        assert (copies);
        for (size_t index = 0; index < count; index++) {
            zmq_msg_init (&copies [index]);
            zmq_msg_copy (&copies [index], &self->batch [index]);
        }
    }
    zmq_msg_t identity;         //  kept for the delivery record
    zmq_msg_init (&identity);
    if (acknowledged)
        zmq_msg_copy (&identity, &reader->identity);
    if (sluice_reply_send (zsock_resolve (self->router), &reader->identity, &reply,
                           self->batch, count) == 0) {
        self->read += count;
        if (acknowledged)
            s_record_delivery (self, &identity, reply.request_id, copies, count, is_final);
        copies = NULL;
    }
    else {
        zsys_debug ("sluice buffer: reader gone (%s): %zu chunk(s) back to the head of the queue",
                    zmq_strerror (errno), count);
        for (size_t index = count; index > 0; index--) {
            bool final = is_final && index == count;
            s_push_head (self, &self->batch [index - 1], final);
        }
    }
    if (copies) {
        for (size_t index = 0; index < count; index++)
            zmq_msg_close (&copies [index]);
        free (copies);
    }
    zmq_msg_close (&identity);
    for (size_t index = 0; index < count; index++)
        zmq_msg_close (&self->batch [index]);
    s_waiter_free (self, &reader);
}

static void
s_answer_end_of_stream (s_buffer_t *self, s_waiter_t *reader)
{
    s_waiter_remove (self, reader);
    sluice_header_t reply = reader->request;
    reply.flags = s_parked_flag (reader) | SLUICE_FLAG_FINAL | SLUICE_FLAG_EOS;
    reply.timeout_ms = 0;
    reply.status = SLUICE_OK;
    zmq_msg_t empty;
    zmq_msg_init (&empty);
    if (sluice_reply_send (zsock_resolve (self->router), &reader->identity, &reply, &empty, 1) == -1)
        zsys_debug ("sluice buffer: end of stream undeliverable: %s", zmq_strerror (errno));
    zmq_msg_close (&empty);
    s_waiter_free (self, &reader);
}

static void
s_settle (s_buffer_t *self)
{
    bool progress = true;
    while (progress) {
        progress = false;
        //  A batch goes in whole, when there is room for all of it
        while (self->writers.size && !self->closed
           &&  self->queued + s_chunks_of (self->writers.head) <= self->opts.capacity) {
            s_admit_writer (self);
            progress = true;
        }
        while (self->queued > 0 && self->readers.size) {
            s_serve_reader (self);
            progress = true;
        }
    }
    if (self->closed) {
        s_waiter_t *waiter;
        while ((waiter = self->writers.head))
            s_answer_error (self, waiter, SLUICE_ECLOSED, "buffer is closed: write refused");
        if (self->queued == 0)
            while ((waiter = self->readers.head))
                s_answer_end_of_stream (self, waiter);
    }
}

static void
s_answer_timeout (s_buffer_t *self, s_waiter_t *waiter)
{
    s_answer_error (self, waiter, SLUICE_ETIMEOUT,
                    waiter->request.command == SLUICE_CMD_WRITE
                    ? "timed out: buffer full, chunk not written" : "timed out: buffer empty");
}

static void
s_expire (s_buffer_t *self, int64_t now)
{
    s_waiter_t *waiter;
    while ((waiter = (s_waiter_t *) zlistx_first (self->deadlines)) && waiter->deadline <= now)
        s_answer_timeout (self, waiter);
}

// ---------------------------------------------------------------------------------------------
//  Requests

static void
s_send_status (s_buffer_t *self, sluice_request_t *req)
{
    char text [512];
    int size = snprintf (text, sizeof text,
        "capacity=%zu\nqueued=%zu\nparked_writers=%zu\nparked_readers=%zu\nclosed=%d\n"
        "written=%" PRIu64 "\nread=%" PRIu64 "\nunacked=%zu\nmax_chunk_size=%zu\nmax_parked=%zu\n",
        self->opts.capacity, self->queued, self->writers.size,
        self->readers.size, self->closed ? 1 : 0, self->written, self->read,
        self->unacked, self->opts.max_chunk_size, self->opts.max_parked);
    if (sluice_reply_text (zsock_resolve (self->router), &req->identity, &req->header, 0,
                           text, (size_t) size) == -1)
        zsys_debug ("sluice buffer: status reply undeliverable: %s", zmq_strerror (errno));
}

static void
s_close (s_buffer_t *self)
{
    if (!self->closed) {
        self->closed = true;
        if (self->events)
            sluice_publisher_send (self->events, SLUICE_EVENT_CLOSED, "");
    }
    s_settle (self);
}

//  Validate a request; returns NULL when it is acceptable, else the reason to refuse it.
static const char *
s_check (s_buffer_t *self, sluice_request_t *req, sluice_err_t *status)
{
    *status = req->error;
    if (req->error != SLUICE_OK)
        return req->reason;
    const sluice_header_t *header = &req->header;
    *status = SLUICE_EPROTO;
    switch (header->command) {
        case SLUICE_CMD_WRITE: {
            if (!req->has_body)
                return "WRITE needs one chunk frame after the header";
            if (header->flags & ~SLUICE_FLAG_FINAL)
                return "WRITE accepts only the FINAL flag";
            size_t chunks = 1 + req->more_count;
            if ((chunks > 1 || header->count > 1) && header->count != chunks)
                return "WRITE count must equal the number of chunk frames";
            if (chunks > self->opts.capacity)
                return "WRITE batch larger than the buffer's capacity: it could never fit";
            bool too_big = zmq_msg_size (&req->body) > self->opts.max_chunk_size;
            for (size_t index = 0; index < req->more_count && !too_big; index++)
                too_big = zmq_msg_size (&req->more [index]) > self->opts.max_chunk_size;
            if (too_big) {
                *status = SLUICE_ETOOBIG;
                return "chunk larger than the buffer's max_chunk_size";
            }
            return NULL;
        }
        case SLUICE_CMD_READ:
            if (header->flags & ~SLUICE_FLAG_ACK)
                return "READ accepts only the ACK flag";
            if ((header->flags & SLUICE_FLAG_ACK) && (!req->has_body || zmq_msg_size (&req->body) != 8))
                return "READ with the ACK flag needs an 8-byte body: the last reply id received";
            if (!(header->flags & SLUICE_FLAG_ACK) && req->has_body)
                return "READ without the ACK flag takes no body frame";
            if (req->more_count)
                return "READ takes at most one body frame";
            if (header->count < 1 || header->count > SLUICE_MAX_BATCH)
                return "READ count must be 1..1024";
            return NULL;
        case SLUICE_CMD_ACK:
            if (!req->has_body || req->more_count || zmq_msg_size (&req->body) != 8)
                return "ACK needs an 8-byte body: the last reply id received";
            return NULL;
        case SLUICE_CMD_CLOSE:
        case SLUICE_CMD_STATUS:
        case SLUICE_CMD_PING:
            if (req->has_body)
                return "this command takes no body frame";
            return NULL;
        default:
            *status = SLUICE_ECOMMAND;
            return "unknown command: the buffer serves WRITE, READ, CLOSE, STATUS, ACK and PING";
    }
}

static void
s_park (s_buffer_t *self, sluice_request_t *req)
{
    s_waiter_t *waiter = s_waiter_new (self);
    zmq_msg_move (&waiter->identity, &req->identity);
    if (req->header.command == SLUICE_CMD_WRITE) {
        zmq_msg_move (&waiter->chunk, &req->body);
        //  A batch: trade frame arrays with the request (the waiter's is empty)
        zmq_msg_t *more = waiter->more;
        size_t more_capacity = waiter->more_capacity;
        waiter->more = req->more;
        waiter->more_count = req->more_count;
        waiter->more_capacity = req->more_capacity;
        req->more = more;
        req->more_count = 0;
        req->more_capacity = more_capacity;
    }
    waiter->request = req->header;
    s_fifo_push (s_fifo_of (self, waiter), waiter);
    if (req->header.timeout_ms != SLUICE_WAIT_FOREVER) {
        waiter->deadline = zclock_mono () + req->header.timeout_ms;
        waiter->deadline_handle = zlistx_insert (self->deadlines, waiter, false);
    }
    else
        waiter->deadline = INT64_MAX;

    self->arriving = waiter;
    s_settle (self);
    if (!self->arriving)
        return;      //  served (and freed) by s_settle
    self->arriving = NULL;
    //  Still waiting. Timeout 0 means "now or never": answer before any later message could
    //  serve it
    if (waiter->request.timeout_ms == 0) {
        s_answer_timeout (self, waiter);
        return;
    }
    //  Deferred from here on, unless there are too many waiters
    waiter->parked = true;
    size_t parked = self->writers.size + self->readers.size;
    if (parked > self->opts.max_parked)
        s_answer_error (self, waiter, SLUICE_EBUSY, "too many parked requests: try again later");
}

static uint64_t
s_get64 (const uint8_t *bytes)
{
    uint64_t value = 0;
    for (int index = 0; index < 8; index++)
        value = (value << 8) | bytes [index];
    return value;
}

static void
s_acknowledge (s_buffer_t *self, sluice_request_t *req)
{
    if (zhashx_size (self->deliveries) == 0)
        return;
    char key [512];
    sluice_identity_key (&req->identity, key);
    s_settle_deliveries (self, key, s_get64 ((const uint8_t *) zmq_msg_data (&req->body)), false);
}

//  Does the buffer hold a parked request of this peer? A scan, but only for pings, which a
//  client sends after 5 s without a word.
static bool
s_holds (s_buffer_t *self, sluice_request_t *req)
{
    for (s_waiter_t *waiter = self->writers.head; waiter; waiter = waiter->next)
        if (sluice_identity_eq (&waiter->identity, &req->identity))
            return true;
    for (s_waiter_t *waiter = self->readers.head; waiter; waiter = waiter->next)
        if (sluice_identity_eq (&waiter->identity, &req->identity))
            return true;
    return false;
}

static void
s_handle_request (s_buffer_t *self, sluice_request_t *req)
{
    void *router = zsock_resolve (self->router);
    sluice_err_t status;
    const char *reason = s_check (self, req, &status);
    if (reason)
        sluice_reply_error (router, &req->identity, &req->header, 0, status, reason);
    else
    switch (req->header.command) {
        case SLUICE_CMD_WRITE:
            if (self->closed)
                sluice_reply_error (router, &req->identity, &req->header, 0, SLUICE_ECLOSED,
                                    "buffer is closed: write refused");
            else
                s_park (self, req);
            break;
        case SLUICE_CMD_READ:
            if (req->header.flags & SLUICE_FLAG_ACK)
                s_acknowledge (self, req);
            s_park (self, req);
            break;
        case SLUICE_CMD_ACK:
            s_acknowledge (self, req);
            s_settle (self);
            break;          //  no reply: the reader may be gone already
        case SLUICE_CMD_PING:
            if (sluice_reply_ping (router, &req->identity, &req->header, s_holds (self, req)) == -1)
                zsys_debug ("sluice buffer: ping reply undeliverable: %s", zmq_strerror (errno));
            break;
        case SLUICE_CMD_CLOSE: {
            s_close (self);
            sluice_header_t reply = req->header;
            reply.flags = 0;
            reply.timeout_ms = 0;
            if (sluice_reply_send (router, &req->identity, &reply, NULL, 0) == -1)
                zsys_debug ("sluice buffer: close reply undeliverable: %s", zmq_strerror (errno));
            break;
        }
        case SLUICE_CMD_STATUS:
            s_send_status (self, req);
            break;
    }
    sluice_request_fini (req);
}

// ---------------------------------------------------------------------------------------------
//  Actor

static sluice_err_t
s_bind (s_buffer_t *self, const char *endpoint, const char *events_endpoint,
        char **bound, char **bound_events)
{
    sluice_router_opts_t router_opts = {
        //  A close answers every parked request at once: one client's replies must all fit
        .sndhwm = self->opts.max_parked + 1000,
        //  A chunk a little over the maximum gets ETOOBIG; a huge one is not even received
        .maxmsgsize = (int64_t) self->opts.max_chunk_size + 4096,
        .curve = self->opts.curve,
    };
    sluice_err_t rc;
    self->router = sluice_router_new (endpoint, &router_opts, &rc, &self->secured);
    self->opts.curve = NULL;        //  the caller's settings live only during sluice_buffer_new
    if (!self->router)
        return rc;
    *bound = sluice_bound_endpoint (self->router, endpoint);
    if (events_endpoint && *events_endpoint) {
        self->events = sluice_publisher_new (events_endpoint);
        if (!self->events) {
            zsys_error ("sluice buffer: cannot bind events %s: %s", events_endpoint,
                        zmq_strerror (errno));
            return SLUICE_ETRANSPORT;
        }
        *bound_events = strdup (sluice_publisher_endpoint (self->events));
        sluice_publisher_send (self->events, SLUICE_EVENT_OPEN, "");
    }
    return SLUICE_OK;
}

static void
s_handle_pipe (s_buffer_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    if (!msg) {
        self->terminated = true;
        return;
    }
    char *command = zmsg_popstr (msg);
    if (command && streq (command, "$TERM"))
        self->terminated = true;
    else
    if (command && streq (command, "BIND")) {
        char *endpoint = zmsg_popstr (msg);
        char *events = zmsg_popstr (msg);
        char *bound = NULL, *bound_events = NULL;
        sluice_err_t rc = self->router ? SLUICE_EINVAL
                        : s_bind (self, endpoint, events, &bound, &bound_events);
        zsock_send (self->pipe, "iss", (int) rc, bound ? bound : "", bound_events ? bound_events : "");
        zstr_free (&endpoint);
        zstr_free (&events);
        zstr_free (&bound);
        zstr_free (&bound_events);
    }
    else
    if (command && streq (command, "CLOSE")) {
        s_close (self);
        zstr_send (self->pipe, "CLOSED");
    }
    else
    if (command && streq (command, "DRAINED"))
        self->drain_watch = true;       //  answered by s_check_drained
    else
        zsys_error ("sluice buffer: invalid pipe command '%s'", command ? command : "");
    zstr_free (&command);
    zmsg_destroy (&msg);
}

static void
s_sweep_list (s_buffer_t *self, s_fifo_t *fifo, zhashx_t *verdicts)
{
    char key [512];
    s_waiter_t *waiter = fifo->head;
    while (waiter) {
        s_waiter_t *next = waiter->next;
        sluice_identity_key (&waiter->identity, key);
        if (!sluice_peer_alive (zsock_resolve (self->router), &waiter->identity, verdicts, key)) {
            s_waiter_remove (self, waiter);
            s_waiter_free (self, &waiter);
        }
        waiter = next;
    }
}

//  Remove the parked requests of peers that have gone (heartbeats disconnect dead and hung
//  tcp peers) and requeue the unacknowledged chunks of vanished readers.
static void
s_sweep (s_buffer_t *self)
{
    zhashx_t *verdicts = zhashx_new ();
    zhashx_set_key_duplicator (verdicts, (zhashx_duplicator_fn *) strdup);
    s_sweep_list (self, &self->writers, verdicts);
    s_sweep_list (self, &self->readers, verdicts);
    zlistx_t *gone = zlistx_new ();
    zlistx_set_destructor (gone, (zlistx_destructor_fn *) zstr_free);
    zlistx_t *idle = zlistx_new ();
    zlistx_set_destructor (idle, (zlistx_destructor_fn *) zstr_free);
    s_reader_t *reader = (s_reader_t *) zhashx_first (self->deliveries);
    while (reader) {
        const char *key = (const char *) zhashx_cursor (self->deliveries);
        if (zlistx_size (reader->deliveries) == 0)
            zlistx_add_end (idle, strdup (key));
        else
        if (!sluice_peer_alive (zsock_resolve (self->router), &reader->identity, verdicts, key))
            zlistx_add_end (gone, strdup (key));
        reader = (s_reader_t *) zhashx_next (self->deliveries);
    }
    for (char *key = (char *) zlistx_first (gone); key; key = (char *) zlistx_next (gone))
        s_settle_deliveries (self, key, 0, true);
    for (char *key = (char *) zlistx_first (idle); key; key = (char *) zlistx_next (idle))
        zhashx_delete (self->deliveries, key);
    zlistx_destroy (&idle);
    zlistx_destroy (&gone);
    zhashx_destroy (&verdicts);
    s_settle (self);
}

static void
s_schedule_sweep (s_buffer_t *self, int64_t now)
{
    bool waiting = self->writers.size || self->readers.size
                || zhashx_size (self->deliveries);
    if (!waiting)
        self->next_sweep = INT64_MAX;
    else
    if (self->next_sweep == INT64_MAX)
        self->next_sweep = now + S_SWEEP_MS;
    else
    if (now >= self->next_sweep) {
        s_sweep (self);
        self->next_sweep = now + S_SWEEP_MS;
    }
}

static void
s_check_drained (s_buffer_t *self)
{
    //  Drained means every chunk reached a reader for good: none queued, none unacknowledged
    if (self->drain_watch && self->closed && self->queued == 0 && self->unacked == 0) {
        self->drain_watch = false;
        zstr_send (self->pipe, "DRAINED");
    }
}

static void
s_buffer_run (s_buffer_t *self)
{
    sluice_request_t req = { 0 };
    while (!self->terminated) {
        zmq_pollitem_t items [3] = {
            { zsock_resolve (self->pipe), 0, ZMQ_POLLIN, 0 },
        };
        int count = 1;
        if (self->router)
            items [count++] = (zmq_pollitem_t) { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 };
        if (self->events)
            items [count++] = (zmq_pollitem_t) { sluice_publisher_socket (self->events), 0, ZMQ_POLLIN, 0 };
        s_waiter_t *soonest = (s_waiter_t *) zlistx_first (self->deadlines);
        int64_t wake = soonest ? soonest->deadline : INT64_MAX;
        if (self->next_sweep < wake)
            wake = self->next_sweep;
        long timeout = sluice_poll_timeout (wake);
        if (zmq_poll (items, count, timeout) == -1) {
            if (zmq_errno () == EINTR)
                continue;
            break;          //  context terminated
        }
        if (items [0].revents & ZMQ_POLLIN)
            s_handle_pipe (self);
        if (self->router && (items [1].revents & ZMQ_POLLIN)) {
            //  Drain what has arrived, without a poll per message
            for (int handled = 0; handled < S_DRAIN_BATCH; handled++) {
                int rc = sluice_request_recv (zsock_resolve (self->router), &req, SLUICE_MAX_BATCH);
                if (rc <= 0) {
                    if (rc == -1 && zmq_errno () == ETERM)
                        self->terminated = true;
                    break;
                }
                s_handle_request (self, &req);
            }
        }
        if (self->events && (items [count - 1].revents & ZMQ_POLLIN))
            sluice_publisher_handle (self->events);
        //  Timers only when something waits: no clock read on an idle path
        if (zlistx_size (self->deadlines) || self->next_sweep != INT64_MAX
        ||  self->writers.size || self->readers.size || zhashx_size (self->deliveries)) {
            int64_t now = zclock_mono ();
            s_expire (self, now);
            s_schedule_sweep (self, now);
        }
        s_check_drained (self);
    }
    sluice_request_release (&req);
}

static void
s_buffer_destroy (s_buffer_t *self)
{
    s_waiter_t *waiter;
    while ((waiter = self->writers.head)) {
        s_waiter_remove (self, waiter);
        s_waiter_free (self, &waiter);
    }
    while ((waiter = self->readers.head)) {
        s_waiter_remove (self, waiter);
        s_waiter_free (self, &waiter);
    }
    while ((waiter = self->spare)) {
        self->spare = waiter->next;
        free (waiter->more);
        free (waiter);
    }
    zlistx_destroy (&self->deadlines);
    zhashx_destroy (&self->deliveries);
    while (self->queued) {
        zmq_msg_t data;
        s_pop_head (self, &data);
        zmq_msg_close (&data);
    }
    free (self->ring);
    free (self->batch);
    sluice_publisher_destroy (&self->events);
    zsock_destroy (&self->router);
    if (self->secured)
        sluice_curve_release ();
}

void
sluice_buffer_actor (zsock_t *pipe, void *args)
{
    s_buffer_t self;
    memset (&self, 0, sizeof self);
    self.pipe = pipe;
    self.opts = *(const sluice_buffer_opts_t *) args;
    //  The endpoints are given again with BIND; the caller's strings die after the signal
    self.opts.endpoint = self.opts.events_endpoint = NULL;
    self.ring_size = self.opts.capacity;
    self.ring = (s_slot_t *) calloc (self.ring_size, sizeof *self.ring);
    self.deliveries = zhashx_new ();
    zhashx_set_destructor (self.deliveries, s_reader_destroy);
    self.next_sweep = INT64_MAX;
    self.batch = (zmq_msg_t *) calloc (SLUICE_MAX_BATCH, sizeof *self.batch);
    self.deadlines = zlistx_new ();
    zlistx_set_comparator (self.deadlines, s_compare_deadline);
    zsock_signal (self.pipe, 0);
    s_buffer_run (&self);
    s_buffer_destroy (&self);
}

// ---------------------------------------------------------------------------------------------
//  Handle

struct sluice_buffer_t {
    sluice_server_t server;
    bool drain_asked;       //  a DRAINED request is pending in the actor
    bool drained;
};

//  Read the actor's pipe until `expected` arrives or the deadline passes; a DRAINED notice
//  met on the way is remembered.
static sluice_err_t
s_pipe_expect (sluice_buffer_t *self, const char *expected, int timeout_ms)
{
    zmq_pollitem_t item = { zsock_resolve (self->server.actor), 0, ZMQ_POLLIN, 0 };
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms;
    while (true) {
        int rc = zmq_poll (&item, 1, sluice_poll_timeout (deadline));
        if (rc == 0)
            return SLUICE_ETIMEOUT;
        if (rc == -1)
            return zmq_errno () == EINTR ? SLUICE_EINTR : SLUICE_ETRANSPORT;
        char *word = zstr_recv (self->server.actor);
        if (!word)
            return SLUICE_ETRANSPORT;
        bool found = streq (word, expected);
        if (streq (word, "DRAINED")) {
            self->drained = true;
            self->drain_asked = false;
        }
        zstr_free (&word);
        if (found)
            return SLUICE_OK;
    }
}

sluice_buffer_t *
sluice_buffer_new (const sluice_buffer_opts_t *opts, sluice_err_t *err)
{
    sluice_err_t dummy;
    if (!err)
        err = &dummy;
    if (!opts || !opts->endpoint || !*opts->endpoint || opts->capacity < 1
    ||  opts->capacity > SLUICE_BUFFER_MAX_CAPACITY) {
        *err = SLUICE_EINVAL;
        return NULL;
    }
    sluice_buffer_opts_t config = *opts;
    if (config.max_chunk_size == 0)
        config.max_chunk_size = SLUICE_BUFFER_DEFAULT_MAX_CHUNK;
    if (config.max_parked == 0)
        config.max_parked = SLUICE_BUFFER_DEFAULT_MAX_PARKED;

    sluice_buffer_t *self = (sluice_buffer_t *) zmalloc (sizeof *self);
    *err = sluice_server_start (&self->server, sluice_buffer_actor, &config, opts->endpoint,
                                opts->events_endpoint);
    if (*err != SLUICE_OK) {
        free (self);
        return NULL;
    }
    return self;
}

void
sluice_buffer_destroy (sluice_buffer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sluice_buffer_t *self = *self_p;
    sluice_server_stop (&self->server);
    free (self);
    *self_p = NULL;
}

const char *
sluice_buffer_endpoint (sluice_buffer_t *self)
{
    return self->server.endpoint;
}

const char *
sluice_buffer_events_endpoint (sluice_buffer_t *self)
{
    return self->server.events_endpoint;
}

sluice_err_t
sluice_buffer_close (sluice_buffer_t *self)
{
    if (zstr_send (self->server.actor, "CLOSE") == -1)
        return SLUICE_ETRANSPORT;
    return s_pipe_expect (self, "CLOSED", SLUICE_FOREVER);
}

sluice_err_t
sluice_buffer_wait_drained (sluice_buffer_t *self, int timeout_ms)
{
    if (self->drained)
        return SLUICE_OK;
    if (!self->drain_asked) {
        if (zstr_send (self->server.actor, "DRAINED") == -1)
            return SLUICE_ETRANSPORT;
        self->drain_asked = true;
    }
    return s_pipe_expect (self, "DRAINED", timeout_ms);
}

void *
sluice_buffer_actor_handle (sluice_buffer_t *self)
{
    return self->server.actor;
}
