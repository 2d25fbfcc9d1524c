/*  sluice_buffer.c - the bounded stream buffer actor: its queue, its one serving routine, and
    acknowledged delivery. Sockets, parking, deadlines and vanished peers are the engine's
    (src/sluice_engine.h); this file is the buffer's own logic.

    Blocking is done by deferring replies: every WRITE and READ joins its FIFO of waiters, and
    one routine, s_settle, serves waiters from the heads of those FIFOs while the queue allows
    it. A request that can be served at once is served by the same path a parked one is, so a
    newcomer can never overtake an older waiter (the seed's stolen-wakeup question, answered by
    design). Invariant after every s_settle: writers wait only while the queue and the chunks
    handed out but not yet acknowledged leave no room for the oldest writer's batch, readers
    only while the queue is empty.

    Capacity bounds what the buffer holds: queued chunks plus chunks handed out to acknowledging
    readers and not yet acknowledged (they may still come back). So queued + unacked never
    exceeds the capacity, however readers vanish. And end of stream is given only once nothing
    can come back: closed, queue empty, nothing unacknowledged.

    Each waiter may carry a deadline (the request's timeout_ms, counted from its arrival); the
    engine has the buffer answer SLUICE_ETIMEOUT itself when it passes, so a timed-out write is
    never enqueued.
*/
#include "sluice_engine.h"
#include "sluice_buffer.h"
#include "sluice_events.h"
#include "sluice_journal.h"
#include <errno.h>
#include <string.h>

#define SLUICE_BUFFER_MAX_CAPACITY  (1u << 24)

typedef struct {
    zmq_msg_t data;
    bool is_final;
} s_slot_t;

//  Acknowledged delivery: a READ reply not yet acknowledged, kept with its reader's peer
typedef struct s_delivery_t s_delivery_t;
struct s_delivery_t {
    uint64_t reply_id;            //  the READ reply these chunks went out in
    zmq_msg_t *chunks;            //  copies (ZeroMQ shares the data: no bytes are copied)
    size_t count;
    bool last_final;
    s_delivery_t *prev, *next;
};

typedef struct {
    s_delivery_t *head, *tail;    //  oldest first
} s_reader_t;

typedef struct {
    sluice_engine_t *engine;
    sluice_buffer_opts_t opts;
    //  The queue: a ring of capacity slots. Requeued chunks come from `unacked`, so queued +
    //  unacked stays within the capacity; the ring grows only if that were ever violated
    s_slot_t *ring;
    size_t ring_size;
    size_t head;
    size_t queued;
    size_t unacked;               //  chunks held in deliveries
    sluice_fifo_t writers;        //  waiters, oldest first
    sluice_fifo_t readers;
    zmq_msg_t *batch;             //  scratch frames for one READ reply
    bool closed;
    uint64_t written;
    uint64_t read;
    sluice_journal_t *journal;    //  NULL unless journaled: told what enters and leaves
} s_buffer_t;

// ---------------------------------------------------------------------------------------------
//  Queue

static bool
s_ring_reserve (s_buffer_t *self)
{
    if (self->queued < self->ring_size)
        return true;
    size_t size = self->ring_size * 2;
    s_slot_t *ring = (s_slot_t *) calloc (size, sizeof *ring);
    if (!ring)
        return false;
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
    return true;
}

//  Only requeued chunks can take the ring past its capacity; when it cannot grow, they are
//  lost, and said so: there is no memory left to keep them in.
static bool
s_ring_room (s_buffer_t *self)
{
    if (s_ring_reserve (self))
        return true;
    SLUICE_ERROR ("sluice buffer: out of memory: a requeued chunk is lost");
    return false;
}

static void
s_push_tail (s_buffer_t *self, zmq_msg_t *data, bool is_final)
{
    s_slot_t *slot = &self->ring [(self->head + self->queued) % self->ring_size];
    zmq_msg_init (&slot->data);
    zmq_msg_move (&slot->data, data);
    slot->is_final = is_final;
    self->queued++;
}

static void
s_push_head (s_buffer_t *self, zmq_msg_t *data, bool is_final)
{
    if (!s_ring_room (self)) {
        zmq_msg_close (data);
        return;
    }
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
//  Acknowledged delivery. A reader that asks for it (READ with FLAG_ACK) names, in each READ,
//  the last reply it received. Chunks of replies it acknowledges are released; chunks of any
//  later reply it did not receive (abandoned after a client-side timeout, or lost with the
//  connection) go back to the head of the queue, as do all its chunks once it has vanished.

static void
s_delivery_free (s_delivery_t *delivery)
{
    for (size_t index = 0; index < delivery->count; index++)
        zmq_msg_close (&delivery->chunks [index]);
    free (delivery->chunks);
    free (delivery);
}

static void
s_reader_free (void *self, void *data)
{
    s_reader_t *reader = (s_reader_t *) data;
    while (reader->head) {
        s_delivery_t *delivery = reader->head;
        reader->head = delivery->next;
        s_delivery_free (delivery);
    }
    free (reader);
}

static bool
s_record_delivery (s_buffer_t *self, sluice_peer_t *peer, uint64_t reply_id, zmq_msg_t *copies,
                   size_t count, bool last_final)
{
    s_reader_t *reader = (s_reader_t *) sluice_peer_data (peer);
    if (!reader) {
        reader = (s_reader_t *) calloc (1, sizeof *reader);
        if (!reader)
            return false;
        sluice_peer_set_data (peer, reader);
    }
    s_delivery_t *delivery = (s_delivery_t *) calloc (1, sizeof *delivery);
    if (!delivery)
        return false;
    delivery->reply_id = reply_id;
    delivery->chunks = copies;
    delivery->count = count;
    delivery->last_final = last_final;
    delivery->prev = reader->tail;
    if (reader->tail)
        reader->tail->next = delivery;
    else
        reader->head = delivery;
    reader->tail = delivery;
    self->unacked += count;
    return true;
}

//  Release the delivery the reader acknowledged (reply id ack_id) and requeue the rest; when
//  the reader has vanished, requeue everything. Newest first, so the oldest ends at the head.
static void
s_settle_deliveries (s_buffer_t *self, sluice_peer_t *peer, uint64_t ack_id, bool vanished)
{
    s_reader_t *reader = (s_reader_t *) sluice_peer_data (peer);
    if (!reader)
        return;
    s_delivery_t *delivery;
    while ((delivery = reader->tail)) {
        //  Only the reply the reader names was received: it sends its next READ after that
        //  reply arrived or was abandoned, so any other reply still held never reached it
        //  (ids are not ordered across incarnations of a client that reuse a routing id)
        bool acknowledged = !vanished && delivery->reply_id == ack_id;
        if (self->journal)
            sluice_journal_settled (self->journal, delivery->chunks, acknowledged);
        if (!acknowledged) {
            for (size_t index = delivery->count; index > 0; index--)
                s_push_head (self, &delivery->chunks [index - 1],
                             delivery->last_final && index == delivery->count);
            self->read -= delivery->count;
            SLUICE_DEBUG ("sluice buffer: %zu unacknowledged chunk(s) back to the head of the queue",
                        delivery->count);
        }
        self->unacked -= delivery->count;
        reader->tail = delivery->prev;
        s_delivery_free (delivery);
    }
    //  Nothing left to watch for: the engine forgets an idle peer at its next sweep
    free (reader);
    sluice_peer_set_data (peer, NULL);
}

static void
s_acknowledge (s_buffer_t *self, sluice_request_t *req)
{
    if (self->unacked == 0)
        return;
    sluice_peer_t *peer = sluice_engine_peer (self->engine, &req->identity, false);
    if (peer)
        s_settle_deliveries (self, peer,
                             sluice_get64 ((const uint8_t *) zmq_msg_data (&req->frames.items [0])),
                             false);
}

// ---------------------------------------------------------------------------------------------
//  The one serving routine

//  Admit the oldest writer. Its chunks are enqueued only once its OK is on the way, so a writer
//  that vanished while parked never leaves a chunk it was not told about.
static void
s_admit_writer (s_buffer_t *self)
{
    sluice_held_t *writer = sluice_fifo_head (&self->writers);
    sluice_engine_unwait (self->engine, writer);
    size_t chunks = writer->frames.count;
    //  Journaled: the OK only once the chunks are in the journal
    char why [SLUICE_TEXT_SIZE];
    if (self->journal
    &&  sluice_journal_append (self->journal, writer->frames.items, chunks,
                               writer->header.flags & SLUICE_FLAG_FINAL, why, sizeof why) == -1) {
        sluice_engine_answer_error (self->engine, writer, SLUICE_EBUSY, why);
        return;
    }
    if (sluice_engine_answer (self->engine, writer, SLUICE_OK, 0, NULL, 0) == 0) {
        //  FINAL marks the last chunk of a batch
        bool is_final = writer->header.flags & SLUICE_FLAG_FINAL;
        for (size_t index = 0; index < chunks; index++)
            s_push_tail (self, &writer->frames.items [index], is_final && index + 1 == chunks);
        writer->frames.count = 0;
        self->written += chunks;
    }
    else {
        SLUICE_DEBUG ("sluice buffer: writer gone before admission (%s): %zu chunk(s) dropped, "
                    "never acknowledged", zmq_strerror (errno), chunks);
        if (self->journal)
            sluice_journal_unappend (self->journal);
    }
    sluice_engine_release (self->engine, &writer);
}

//  Serve the oldest reader from the queue: up to its count, stopping after a final chunk.
//  If the reader has vanished the chunks go back to the head of the queue, in order.
static void
s_serve_reader (s_buffer_t *self)
{
    sluice_held_t *reader = sluice_fifo_head (&self->readers);
    sluice_engine_unwait (self->engine, reader);
    size_t count = 0;
    bool is_final = false;
    while (count < reader->header.count && self->queued > 0 && !is_final)
        is_final = s_pop_head (self, &self->batch [count++]);

    //  Acknowledged delivery keeps copies (shared data) until the reader acknowledges them
    bool acknowledged = reader->header.flags & SLUICE_FLAG_ACK;
    sluice_peer_t *peer = NULL;
    zmq_msg_t *copies = NULL;
    if (acknowledged) {
        peer = sluice_engine_peer (self->engine, &reader->identity, true);
        copies = (zmq_msg_t *) calloc (count, sizeof *copies);
        if (!peer || !copies) {
            //  Out of memory: nothing is handed out that could not be kept for requeueing
            free (copies);
            for (size_t index = count; index > 0; index--)
                s_push_head (self, &self->batch [index - 1], is_final && index == count);
            sluice_engine_answer_error (self->engine, reader, SLUICE_EBUSY,
                                        "out of memory: read refused, try again later");
            return;
        }
        for (size_t index = 0; index < count; index++) {
            zmq_msg_init (&copies [index]);
            zmq_msg_copy (&copies [index], &self->batch [index]);
        }
    }
    uint64_t reply_id = reader->header.request_id;
    if (sluice_engine_answer (self->engine, reader, SLUICE_OK, is_final ? SLUICE_FLAG_FINAL : 0,
                              self->batch, count) == 0) {
        self->read += count;
        if (acknowledged && !s_record_delivery (self, peer, reply_id, copies, count, is_final)) {
            SLUICE_ERROR ("sluice buffer: out of memory: %zu delivered chunk(s) are not kept for "
                        "acknowledgement", count);
            for (size_t index = 0; index < count; index++)
                zmq_msg_close (&copies [index]);
            free (copies);
            copies = NULL;
        }
        //  Held chunks are known by their copies until acknowledged; the rest left for good
        if (self->journal)
            sluice_journal_taken (self->journal, count, copies);
    }
    else {
        SLUICE_DEBUG ("sluice buffer: reader gone (%s): %zu chunk(s) back to the head of the queue",
                    zmq_strerror (errno), count);
        for (size_t index = count; index > 0; index--)
            s_push_head (self, &self->batch [index - 1], is_final && index == count);
        for (size_t index = 0; copies && index < count; index++)
            zmq_msg_close (&copies [index]);
        free (copies);
    }
    for (size_t index = 0; index < count; index++)
        zmq_msg_close (&self->batch [index]);
    sluice_engine_release (self->engine, &reader);
}

static void
s_answer_end_of_stream (s_buffer_t *self, sluice_held_t *reader)
{
    sluice_engine_unwait (self->engine, reader);
    zmq_msg_t empty;
    zmq_msg_init (&empty);
    sluice_engine_answer (self->engine, reader, SLUICE_OK, SLUICE_FLAG_FINAL | SLUICE_FLAG_EOS,
                          &empty, 1);
    zmq_msg_close (&empty);
    sluice_engine_release (self->engine, &reader);
}

static void
s_settle (void *self_)
{
    s_buffer_t *self = (s_buffer_t *) self_;
    bool progress = true;
    while (progress) {
        progress = false;
        //  A batch goes in whole, when there is room for all of it beside what is queued and
        //  what readers hold unacknowledged
        sluice_held_t *writer;
        while ((writer = sluice_fifo_head (&self->writers)) && !self->closed
           &&  self->queued + self->unacked + writer->frames.count <= self->opts.capacity) {
            s_admit_writer (self);
            progress = true;
        }
        while (self->queued > 0 && sluice_fifo_size (&self->readers)) {
            s_serve_reader (self);
            progress = true;
        }
    }
    if (self->closed) {
        sluice_held_t *waiter;
        while ((waiter = sluice_fifo_head (&self->writers)))
            sluice_engine_answer_error (self->engine, waiter, SLUICE_ECLOSED,
                                        "buffer is closed: write refused");
        //  End of stream only when no unacknowledged chunk can come back to the queue
        if (self->queued == 0 && self->unacked == 0)
            while ((waiter = sluice_fifo_head (&self->readers)))
                s_answer_end_of_stream (self, waiter);
    }
}

static void
s_close (void *self_)
{
    s_buffer_t *self = (s_buffer_t *) self_;
    if (!self->closed) {
        self->closed = true;
        if (self->journal)
            sluice_journal_closed (self->journal);
        sluice_engine_publish (self->engine, SLUICE_EVENT_CLOSED, "");
    }
    s_settle (self);
}

// ---------------------------------------------------------------------------------------------
//  Commands (the command table has checked flags, frames and count)

//  Keep a WRITE or READ in its FIFO and serve what can be served.
static void
s_wait (s_buffer_t *self, sluice_request_t *req, sluice_fifo_t *fifo)
{
    sluice_held_t *held = sluice_engine_hold (self->engine, req);
    if (!held) {
        sluice_engine_refuse (self->engine, req, SLUICE_EBUSY,
                              "out of memory: request refused, try again later", false);
        return;
    }
    sluice_engine_wait_in (self->engine, held, fifo);
    s_settle (self);
}

static void
s_on_write (void *self_, sluice_request_t *req)
{
    s_buffer_t *self = (s_buffer_t *) self_;
    if (req->frames.count > self->opts.capacity) {
        sluice_engine_refuse (self->engine, req, SLUICE_EPROTO,
                              "WRITE batch larger than the buffer's capacity: it could never fit",
                              true);
        return;
    }
    for (size_t index = 0; index < req->frames.count; index++)
        if (zmq_msg_size (&req->frames.items [index]) > self->opts.max_chunk_size) {
            sluice_engine_refuse (self->engine, req, SLUICE_ETOOBIG,
                                  "chunk larger than the buffer's max_chunk_size", true);
            return;
        }
    if (self->closed)
        sluice_engine_refuse (self->engine, req, SLUICE_ECLOSED,
                              "buffer is closed: write refused", false);
    else
        s_wait (self, req, &self->writers);
}

static void
s_on_read (void *self_, sluice_request_t *req)
{
    s_buffer_t *self = (s_buffer_t *) self_;
    if (req->header.flags & SLUICE_FLAG_ACK)
        s_acknowledge (self, req);
    s_wait (self, req, &self->readers);
}

static void
s_on_ack (void *self_, sluice_request_t *req)
{
    //  No reply: the reader may be gone already
    s_acknowledge ((s_buffer_t *) self_, req);
    s_settle (self_);
}

static void
s_on_close (void *self_, sluice_request_t *req)
{
    s_buffer_t *self = (s_buffer_t *) self_;
    s_close (self);
    //  Answered after every wake-up the close caused
    sluice_engine_reply (self->engine, req, SLUICE_OK, 0, NULL, 0);
}

static const sluice_handler_t s_handlers [] = {
    { SLUICE_CMD_WRITE, s_on_write },
    { SLUICE_CMD_READ,  s_on_read },
    { SLUICE_CMD_ACK,   s_on_ack },
    { SLUICE_CMD_CLOSE, s_on_close },
    { 0, NULL }
};

// ---------------------------------------------------------------------------------------------
//  Class callbacks

static void
s_expire (void *self_, sluice_held_t *held)
{
    s_buffer_t *self = (s_buffer_t *) self_;
    sluice_engine_answer_error (self->engine, held, SLUICE_ETIMEOUT,
                                held->header.command == SLUICE_CMD_WRITE
                                ? "timed out: buffer full, chunk not written"
                                : "timed out: buffer empty");
}

static void
s_peer_gone (void *self_, sluice_peer_t *peer)
{
    s_settle_deliveries ((s_buffer_t *) self_, peer, 0, true);
}

static void
s_status (void *self_, sluice_status_t *status)
{
    s_buffer_t *self = (s_buffer_t *) self_;
    status->buffer = (sluice_buffer_status_t) {
        .capacity = self->opts.capacity,
        .queued = self->queued,
        .parked_writers = sluice_fifo_size (&self->writers),
        .parked_readers = sluice_fifo_size (&self->readers),
        .closed = self->closed,
        .written = self->written,
        .read = self->read,
        .unacked = self->unacked,
        .max_chunk_size = self->opts.max_chunk_size,
        .max_parked = self->opts.max_parked,
        .incarnation = sluice_engine_incarnation (self->engine),
    };
}

static sluice_err_t
s_bound (void *self_, char *why, size_t why_size)
{
    s_buffer_t *self = (s_buffer_t *) self_;
    sluice_engine_publish (self->engine, SLUICE_EVENT_OPEN, "");
    return SLUICE_OK;
}

//  Drained: every chunk reached a reader for good, none queued, none unacknowledged
static bool
s_ended (void *self_)
{
    s_buffer_t *self = (s_buffer_t *) self_;
    return self->closed && self->queued == 0 && self->unacked == 0;
}

static const sluice_actor_class_t s_class = {
    .kind = SLUICE_ACTOR_BUFFER,
    .handlers = s_handlers,
    .status = s_status,
    .bound = s_bound,
    .stop = s_close,
    .ended = s_ended,
    .expire = s_expire,
    .peer_gone = s_peer_gone,
    .peer_free = s_reader_free,
    .settle = s_settle,
};

// ---------------------------------------------------------------------------------------------
//  Actor

//  A chunk of the journal, at the tail (there may be more than the capacity)
static bool
s_replay (void *self_, zmq_msg_t *data, bool is_final)
{
    s_buffer_t *self = (s_buffer_t *) self_;
    if (!s_ring_reserve (self))
        return false;
    s_push_tail (self, data, is_final);
    return true;
}

static void
s_buffer_free (s_buffer_t *self)
{
    sluice_journal_destroy (&self->journal);
    while (self->queued) {
        zmq_msg_t data;
        s_pop_head (self, &data);
        zmq_msg_close (&data);
    }
    free (self->ring);
    free (self->batch);
    free (self);
}

//  Options with defaults filled in; false when they cannot make a buffer.
static bool
s_buffer_config (const sluice_buffer_opts_t *opts, sluice_buffer_opts_t *config)
{
    if (!opts || opts->capacity < 1 || opts->capacity > SLUICE_BUFFER_MAX_CAPACITY) {
        sluice_set_last_error ("a buffer needs an endpoint and a capacity of 1..%u",
                               SLUICE_BUFFER_MAX_CAPACITY);
        return false;
    }
    *config = *opts;
    if (config->max_chunk_size == 0)
        config->max_chunk_size = SLUICE_BUFFER_DEFAULT_MAX_CHUNK;
    if (config->max_parked == 0)
        config->max_parked = SLUICE_BUFFER_DEFAULT_MAX_PARKED;
    if (config->peer_max_parked == 0)
        config->peer_max_parked = SLUICE_BUFFER_DEFAULT_PEER_MAX_PARKED;
    if (config->max_parked_bytes == 0)
        config->max_parked_bytes = SLUICE_BUFFER_DEFAULT_MAX_PARKED_BYTES;
    if (config->peer_max_parked_bytes == 0)
        config->peer_max_parked_bytes = SLUICE_BUFFER_DEFAULT_PEER_MAX_PARKED_BYTES;
    return true;
}

void
sluice_buffer_actor (zsock_t *pipe, void *args)
{
    sluice_buffer_opts_t opts;
    if (!s_buffer_config ((const sluice_buffer_opts_t *) args, &opts)) {
        sluice_actor_refuse (pipe, SLUICE_EINVAL, sluice_last_error_text ());
        return;
    }
    s_buffer_t *self = (s_buffer_t *) calloc (1, sizeof *self);
    if (self) {
        self->opts = opts;
        //  The endpoints are given again with BIND; the caller's strings die after the signal
        self->opts.endpoint = self->opts.events_endpoint = NULL;
        self->opts.curve = NULL;
        self->opts.journal = NULL;
        self->ring_size = opts.capacity;
        self->ring = (s_slot_t *) calloc (self->ring_size, sizeof *self->ring);
        self->batch = (zmq_msg_t *) calloc (SLUICE_MAX_BATCH, sizeof *self->batch);
    }
    sluice_engine_opts_t engine_opts = {
        .name = "buffer",
        //  A close answers every parked request at once: one client's replies must all fit
        .sndhwm = opts.max_parked + 1000,
        //  A chunk a little over the maximum gets ETOOBIG; a huge one is not even received
        .maxmsgsize = (int64_t) opts.max_chunk_size + 4096,
        .curve = opts.curve,
        .max_parked = opts.max_parked,
        .peer_max_parked = opts.peer_max_parked,
        .max_parked_bytes = opts.max_parked_bytes,
        .peer_max_parked_bytes = opts.peer_max_parked_bytes,
        .probe_ms = opts.probe_ms,
    };
    sluice_engine_t *engine = self && self->ring && self->batch
                            ? sluice_engine_new (pipe, &s_class, self, &engine_opts) : NULL;
    if (!engine) {
        if (self)
            s_buffer_free (self);
        sluice_actor_refuse (pipe, SLUICE_ENOMEM, "out of memory");
        return;
    }
    self->engine = engine;
    if (opts.journal) {
        //  What the journal holds is queued again, under the incarnation it was accepted by
        char why [SLUICE_TEXT_SIZE];
        uint32_t incarnation = sluice_engine_incarnation (engine);
        self->journal = sluice_journal_open (opts.journal, opts.journal_fsync != SLUICE_FSYNC_NEVER,
                                             &incarnation, &self->closed, s_replay, self, why,
                                             sizeof why);
        if (!self->journal) {
            sluice_engine_destroy (&engine);
            s_buffer_free (self);
            sluice_actor_refuse (pipe, SLUICE_EINVAL, why);
            return;
        }
        sluice_engine_set_incarnation (engine, incarnation);
        if (self->queued > opts.capacity)
            SLUICE_ERROR ("sluice buffer: the journal holds %zu chunks, more than the capacity "
                          "(%zu): writers wait until readers take them below it", self->queued,
                          opts.capacity);
    }
    sluice_engine_run (engine);
    sluice_engine_destroy (&engine);
    s_buffer_free (self);
}

// ---------------------------------------------------------------------------------------------
//  Handle

struct sluice_buffer_t {
    sluice_handle_t handle;
};

sluice_buffer_t *
sluice_buffer_new (const sluice_buffer_opts_t *opts, sluice_err_t *err)
{
    sluice_err_t dummy;
    if (!err)
        err = &dummy;
    sluice_buffer_opts_t config;
    if (!opts || !opts->endpoint || !*opts->endpoint || !s_buffer_config (opts, &config)) {
        sluice_set_last_error ("a buffer needs an endpoint and a capacity of 1..%u",
                               SLUICE_BUFFER_MAX_CAPACITY);
        *err = SLUICE_EINVAL;
        return NULL;
    }
    sluice_buffer_t *self = (sluice_buffer_t *) calloc (1, sizeof *self);
    if (!self) {
        *err = SLUICE_ENOMEM;
        return NULL;
    }
    *err = sluice_handle_start (&self->handle, sluice_buffer_actor, &config, opts->endpoint,
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
    sluice_handle_destroy (&self->handle);
    free (self);
    *self_p = NULL;
}

const char *
sluice_buffer_endpoint (sluice_buffer_t *self)
{
    return self->handle.endpoint;
}

const char *
sluice_buffer_events_endpoint (sluice_buffer_t *self)
{
    return self->handle.events_endpoint;
}

sluice_err_t
sluice_buffer_close (sluice_buffer_t *self)
{
    return sluice_handle_stop (&self->handle);
}

sluice_err_t
sluice_buffer_wait (sluice_buffer_t *self, int timeout_ms)
{
    return sluice_handle_wait (&self->handle, timeout_ms);
}

sluice_err_t
sluice_buffer_wait_drained (sluice_buffer_t *self, int timeout_ms)
{
    return sluice_buffer_wait (self, timeout_ms);
}

const char *
sluice_buffer_error_text (sluice_buffer_t *self)
{
    return sluice_handle_error_text (&self->handle);
}

void *
sluice_buffer_actor_handle (sluice_buffer_t *self)
{
    return self->handle.actor;
}
