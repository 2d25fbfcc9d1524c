/*  sluice_buffer.c - the bounded stream buffer actor: its queue, its one serving routine, and
    acknowledged delivery. Sockets, parking, deadlines and vanished peers are the engine's
    (src/sluice_engine.h); this file is the buffer's own logic.

    Blocking is done by deferring replies: every WRITE and READ joins its FIFO of waiters, and
    one routine, s_settle, serves waiters from the heads of those FIFOs while the queue allows
    it. A request that can be served at once is served by the same path a parked one is, so a
    newcomer can never overtake an older waiter (the seed's stolen-wakeup question, answered by
    design). Invariant after every s_settle: writers wait only while the queue leaves no room
    for the oldest writer's batch, readers only while the queue is empty (or, for the oldest
    acknowledging reader, while readers hold a capacity's worth unacknowledged).

    Capacity bounds the queue, as in the seed: a chunk a reader took is no longer in it, so a
    reader working on its batch never holds writers back. Chunks handed out to acknowledging
    readers and not yet acknowledged (they may still come back) are bounded on their own, by
    the capacity too: unacked <= capacity, queued + unacked <= 2 x capacity, however readers
    vanish (requeued chunks move from one count to the other; the ring is sized for both). And
    end of stream is given only once nothing can come back: closed, queue empty, nothing
    unacknowledged.

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

//  A received frame that holds chunks: one (a plain WRITE's frame) or many (a packed WRITE's).
//  Chunks refer to it by offset, so no chunk is copied on its way in or while queued; it is
//  freed when its last chunk goes. Only the actor's thread touches it.
typedef struct s_segment_t s_segment_t;
struct s_segment_t {
    zmq_msg_t frame;
    size_t refs;
    s_segment_t *next_spare;
};

//  16 bytes: the queue's own cost per chunk (chunks are at most INT32_MAX bytes, packed frames
//  at most UINT32_MAX)
typedef struct {
    s_segment_t *segment;
    uint32_t offset;
    uint32_t size : 31;
    uint32_t is_final : 1;
} s_chunk_t;

//  Acknowledged delivery: a READ reply not yet acknowledged, kept with its reader's peer. A
//  reader's deliveries form a ring, oldest first; the peer's data is the oldest (NULL: none),
//  so a reader with nothing unacknowledged costs nothing and its peer can be forgotten.
typedef struct s_delivery_t s_delivery_t;
struct s_delivery_t {
    uint64_t reply_id;            //  the READ reply these chunks went out in
    size_t count;
    size_t room;                  //  chunks the record has room for
    s_delivery_t *prev, *next;    //  in the reader's ring; next also links spare records
    s_chunk_t chunks [];          //  the chunks themselves (their segments stay referenced)
};

#define S_SPARE_SEGMENTS    1024
//  Records of small replies are kept for reuse: the synchronous reader's one chunk a READ
//  then costs no malloc
#define S_SPARE_DELIVERIES  64
#define S_DELIVERY_ROOM     16

typedef struct {
    sluice_engine_t *engine;
    sluice_buffer_opts_t opts;
    //  The queue: a ring of 2 x capacity slots. Requeued chunks come from `unacked`, so queued
    //  + unacked stays within it; the ring grows only for a journal written with a larger
    //  capacity
    s_chunk_t *ring;
    size_t ring_size;
    size_t head;
    size_t queued;
    size_t unacked;               //  chunks held in deliveries
    sluice_fifo_t writers;        //  waiters, oldest first
    sluice_fifo_t readers;
    s_chunk_t *batch;             //  scratch: the chunks of one READ reply
    s_chunk_t *admitting;         //  scratch: the chunks of the WRITE being admitted
    zmq_msg_t *frames;            //  scratch: a plain READ reply's frames
    s_segment_t *spare;           //  segments kept for reuse (no malloc per plain WRITE)
    size_t spare_count;
    s_delivery_t *spare_deliveries;   //  records of room S_DELIVERY_ROOM kept for reuse
    size_t spare_delivery_count;
    bool closed;
    uint64_t written;
    uint64_t read;
    sluice_journal_t *journal;    //  NULL unless journaled: told what enters and leaves
    struct iovec *journaled;      //  scratch: a WRITE's chunks, for the journal
} s_buffer_t;

// ---------------------------------------------------------------------------------------------
//  Segments and chunks

static s_segment_t *
s_segment_new (s_buffer_t *self, zmq_msg_t *frame)
{
    s_segment_t *segment = self->spare;
    if (segment) {
        self->spare = segment->next_spare;
        self->spare_count--;
    }
    else
    if (!(segment = (s_segment_t *) malloc (sizeof *segment)))
        return NULL;
    zmq_msg_init (&segment->frame);
    zmq_msg_move (&segment->frame, frame);
    segment->refs = 0;
    return segment;
}

static void
s_chunk_release (s_buffer_t *self, s_chunk_t *chunk)
{
    s_segment_t *segment = chunk->segment;
    chunk->segment = NULL;
    if (!segment || --segment->refs > 0)
        return;
    zmq_msg_close (&segment->frame);
    if (self->spare_count < S_SPARE_SEGMENTS) {
        segment->next_spare = self->spare;
        self->spare = segment;
        self->spare_count++;
    }
    else
        free (segment);
}

static const uint8_t *
s_chunk_data (const s_chunk_t *chunk)
{
    return (const uint8_t *) zmq_msg_data (&chunk->segment->frame) + chunk->offset;
}

// ---------------------------------------------------------------------------------------------
//  Queue

static bool
s_ring_reserve (s_buffer_t *self)
{
    if (self->queued < self->ring_size)
        return true;
    size_t size = self->ring_size * 2;
    s_chunk_t *ring = (s_chunk_t *) calloc (size, sizeof *ring);
    if (!ring)
        return false;
    for (size_t index = 0; index < self->queued; index++)
        ring [index] = self->ring [(self->head + index) % self->ring_size];
    free (self->ring);
    self->ring = ring;
    self->ring_size = size;
    self->head = 0;
    return true;
}

static void
s_push_tail (s_buffer_t *self, const s_chunk_t *chunk)
{
    self->ring [(self->head + self->queued) % self->ring_size] = *chunk;
    self->queued++;
}

//  Only a journal replayed into a smaller capacity can take the ring past its size; when it
//  cannot grow, chunks are lost, and said so: there is no memory left to keep them in.
static void
s_push_head (s_buffer_t *self, s_chunk_t *chunk)
{
    if (!s_ring_reserve (self)) {
        SLUICE_ERROR ("sluice buffer: out of memory: a requeued chunk is lost");
        s_chunk_release (self, chunk);
        return;
    }
    self->head = (self->head + self->ring_size - 1) % self->ring_size;
    self->ring [self->head] = *chunk;
    self->queued++;
}

static s_chunk_t
s_pop_head (s_buffer_t *self)
{
    s_chunk_t chunk = self->ring [self->head];
    self->head = (self->head + 1) % self->ring_size;
    self->queued--;
    return chunk;
}

//  Put chunks back at the head of the queue, in their order (a reply that could not go, a
//  delivery never acknowledged).
static void
s_requeue (s_buffer_t *self, s_chunk_t *chunks, size_t count)
{
    for (size_t index = count; index > 0; index--)
        s_push_head (self, &chunks [index - 1]);
}

// ---------------------------------------------------------------------------------------------
//  Acknowledged delivery. A reader that asks for it (READ with FLAG_ACK) names, in each READ,
//  the last reply it received. Chunks of replies it acknowledges are released; chunks of any
//  later reply it did not receive (abandoned after a client-side timeout, or lost with the
//  connection) go back to the head of the queue, as do all its chunks once it has vanished.

static void
s_delivery_free (s_buffer_t *self, s_delivery_t *delivery)
{
    for (size_t index = 0; index < delivery->count; index++)
        s_chunk_release (self, &delivery->chunks [index]);
    if (delivery->room == S_DELIVERY_ROOM
    &&  self->spare_delivery_count < S_SPARE_DELIVERIES) {
        delivery->next = self->spare_deliveries;
        self->spare_deliveries = delivery;
        self->spare_delivery_count++;
    }
    else
        free (delivery);
}

//  peer_free: the peer's data is its oldest delivery
static void
s_reader_free (void *self, void *data)
{
    s_delivery_t *oldest = (s_delivery_t *) data;
    oldest->prev->next = NULL;          //  open the ring
    while (oldest) {
        s_delivery_t *next = oldest->next;
        s_delivery_free ((s_buffer_t *) self, oldest);
        oldest = next;
    }
}

//  Keep a copy of the reply's chunk records (the chunks themselves stay where they are) until
//  the reader acknowledges them. Returns the copy (the delivery's key for the journal), or
//  NULL when out of memory.
static const void *
s_record_delivery (s_buffer_t *self, sluice_peer_t *peer, uint64_t reply_id, size_t count)
{
    s_delivery_t *delivery = NULL;
    if (count <= S_DELIVERY_ROOM && (delivery = self->spare_deliveries)) {
        self->spare_deliveries = delivery->next;
        self->spare_delivery_count--;
    }
    else {
        size_t room = count > S_DELIVERY_ROOM ? count : S_DELIVERY_ROOM;
        delivery = (s_delivery_t *) malloc (sizeof *delivery + room * sizeof (s_chunk_t));
        if (!delivery)
            return NULL;
        delivery->room = room;
    }
    memcpy (delivery->chunks, self->batch, count * sizeof (s_chunk_t));
    delivery->reply_id = reply_id;
    delivery->count = count;
    s_delivery_t *oldest = (s_delivery_t *) sluice_peer_data (peer);
    if (oldest) {
        delivery->prev = oldest->prev;
        delivery->next = oldest;
        oldest->prev->next = delivery;
        oldest->prev = delivery;
    }
    else {
        delivery->prev = delivery->next = delivery;
        sluice_peer_set_data (peer, delivery);
    }
    self->unacked += count;
    return delivery->chunks;
}

//  Release the delivery the reader acknowledged (reply id ack_id) and requeue the rest; when
//  the reader has vanished, requeue everything. Newest first, so the oldest ends at the head.
static void
s_settle_deliveries (s_buffer_t *self, sluice_peer_t *peer, uint64_t ack_id, bool vanished)
{
    s_delivery_t *oldest = (s_delivery_t *) sluice_peer_data (peer);
    if (!oldest)
        return;
    //  Nothing is left to watch for after this: the engine forgets an idle peer at its next
    //  sweep
    sluice_peer_set_data (peer, NULL);
    s_delivery_t *delivery = oldest->prev;
    while (true) {
        //  Only the reply the reader names was received: it sends its next READ after that
        //  reply arrived or was abandoned, so any other reply still held never reached it
        //  (ids are not ordered across incarnations of a client that reuse a routing id)
        bool acknowledged = !vanished && delivery->reply_id == ack_id;
        size_t count = delivery->count;
        if (self->journal)
            sluice_journal_settled (self->journal, delivery->chunks, acknowledged);
        if (!acknowledged) {
            s_requeue (self, delivery->chunks, count);
            delivery->count = 0;        //  the queue holds them now
            self->read -= count;
            SLUICE_DEBUG ("sluice buffer: %zu unacknowledged chunk(s) back to the head of the "
                          "queue", count);
        }
        self->unacked -= count;
        s_delivery_t *newer = delivery;
        delivery = delivery->prev;
        s_delivery_free (self, newer);
        if (newer == oldest)
            break;
    }
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

//  How many chunks a WRITE carries.
static size_t
s_write_chunks (const sluice_header_t *header, const sluice_frames_t *frames)
{
    return header->flags & SLUICE_FLAG_PACKED ? header->count : frames->count;
}

//  Make the chunk records of a writer's request, each referring to its frame (a plain WRITE's
//  frames are a chunk each, a packed WRITE's frame holds them all; FINAL marks the last chunk)
//  into self->admitting. False (nothing taken) when out of memory.
static bool
s_take_write (s_buffer_t *self, sluice_held_t *writer, size_t chunks)
{
    bool is_final = writer->header.flags & SLUICE_FLAG_FINAL;
    if (writer->header.flags & SLUICE_FLAG_PACKED) {
        s_segment_t *segment = s_segment_new (self, &writer->frames.items [0]);
        if (!segment)
            return false;
        const uint8_t *base = (const uint8_t *) zmq_msg_data (&segment->frame);
        sluice_unpacker_t walk = { base, base + zmq_msg_size (&segment->frame) };
        const uint8_t *data;
        size_t size;
        for (size_t index = 0; index < chunks && sluice_packed_next (&walk, &data, &size); index++) {
            self->admitting [index] = (s_chunk_t) { segment, (uint32_t) (data - base),
                                                    (uint32_t) size, is_final && index + 1 == chunks };
            segment->refs++;
        }
        return true;
    }
    for (size_t index = 0; index < chunks; index++) {
        s_segment_t *segment = s_segment_new (self, &writer->frames.items [index]);
        if (!segment) {
            //  Give the frames taken so far back to the request, as they were
            while (index-- > 0) {
                zmq_msg_move (&writer->frames.items [index], &self->admitting [index].segment->frame);
                s_chunk_release (self, &self->admitting [index]);
            }
            return false;
        }
        segment->refs = 1;
        self->admitting [index] = (s_chunk_t) { segment, 0, (uint32_t) zmq_msg_size (&segment->frame),
                                                is_final && index + 1 == chunks };
    }
    return true;
}

//  Append a writer's chunks to the journal: 0, or -1 with why filled.
static int
s_journal_write (s_buffer_t *self, sluice_held_t *writer, size_t chunks, char *why,
                 size_t why_size)
{
    if (writer->header.flags & SLUICE_FLAG_PACKED) {
        zmq_msg_t *frame = &writer->frames.items [0];
        sluice_unpacker_t walk = { (const uint8_t *) zmq_msg_data (frame),
                                   (const uint8_t *) zmq_msg_data (frame) + zmq_msg_size (frame) };
        const uint8_t *data;
        size_t size;
        for (size_t index = 0; index < chunks && sluice_packed_next (&walk, &data, &size); index++)
            self->journaled [index] = (struct iovec) { (void *) data, size };
    }
    else
        for (size_t index = 0; index < chunks; index++)
            self->journaled [index] = (struct iovec) { zmq_msg_data (&writer->frames.items [index]),
                                                       zmq_msg_size (&writer->frames.items [index]) };
    return sluice_journal_append (self->journal, self->journaled, chunks,
                                  writer->header.flags & SLUICE_FLAG_FINAL, why, why_size);
}

//  Admit the oldest writer. Its chunks are enqueued only once its OK is on the way, so a writer
//  that vanished while parked never leaves a chunk it was not told about; and its OK goes only
//  once its chunks are ready to be enqueued (and journaled), so an OK is never a lost chunk.
static void
s_admit_writer (s_buffer_t *self)
{
    sluice_held_t *writer = sluice_fifo_head (&self->writers);
    sluice_engine_unwait (self->engine, writer);
    size_t chunks = s_write_chunks (&writer->header, &writer->frames);
    //  Journaled: the OK only once the chunks are in the journal
    char why [SLUICE_TEXT_SIZE];
    if (self->journal && s_journal_write (self, writer, chunks, why, sizeof why) == -1) {
        sluice_engine_answer_error (self->engine, writer, SLUICE_EBUSY, why);
        return;
    }
    if (!s_take_write (self, writer, chunks)) {
        if (self->journal)
            sluice_journal_unappend (self->journal);
        sluice_engine_answer_error (self->engine, writer, SLUICE_EBUSY,
                                    "out of memory: write refused, not enqueued");
        return;
    }
    if (sluice_engine_answer (self->engine, writer, SLUICE_OK, 0, NULL, 0) == 0) {
        for (size_t index = 0; index < chunks; index++)
            s_push_tail (self, &self->admitting [index]);
        self->written += chunks;
    }
    else {
        SLUICE_DEBUG ("sluice buffer: writer gone before admission (%s): %zu chunk(s) dropped, "
                    "never acknowledged", zmq_strerror (errno), chunks);
        for (size_t index = 0; index < chunks; index++)
            s_chunk_release (self, &self->admitting [index]);
        if (self->journal)
            sluice_journal_unappend (self->journal);
    }
    sluice_engine_release (self->engine, &writer);
}

//  A reply that could not be made (out of memory), as opposed to -1: one that could not be sent
#define S_NO_MEMORY  (-2)

//  The reply of a packed READ: the chunks copied into one frame, which the reader walks in
//  place.
static int
s_answer_packed (s_buffer_t *self, sluice_held_t *reader, size_t count, bool is_final)
{
    size_t total = 0;
    for (size_t index = 0; index < count; index++)
        total += self->batch [index].size + SLUICE_PACKED_OVERHEAD;
    zmq_msg_t packed;
    if (zmq_msg_init_size (&packed, total) == -1)
        return S_NO_MEMORY;
    uint8_t *at = (uint8_t *) zmq_msg_data (&packed);
    for (size_t index = 0; index < count; index++)
        at += sluice_packed_put (at, s_chunk_data (&self->batch [index]), self->batch [index].size);
    int rc = sluice_engine_answer_packed (self->engine, reader, is_final ? SLUICE_FLAG_FINAL : 0,
                                          &packed, (uint32_t) count);
    zmq_msg_close (&packed);
    return rc;
}

//  The reply of a plain READ: a frame per chunk. A chunk that is its segment's whole frame
//  shares its data (ZeroMQ counts references: no bytes are copied); a chunk of a packed
//  segment is copied out.
static int
s_answer_frames (s_buffer_t *self, sluice_held_t *reader, size_t count, bool is_final)
{
    size_t made = 0;
    int rc = 0;
    for (; made < count && rc == 0; made++) {
        s_chunk_t *chunk = &self->batch [made];
        zmq_msg_t *frame = &self->frames [made];
        zmq_msg_init (frame);
        if (chunk->offset == 0 && chunk->size == zmq_msg_size (&chunk->segment->frame))
            rc = zmq_msg_copy (frame, &chunk->segment->frame);
        else
        if ((rc = zmq_msg_init_size (frame, chunk->size)) == 0 && chunk->size)
            memcpy (zmq_msg_data (frame), s_chunk_data (chunk), chunk->size);
    }
    if (rc == 0)
        rc = sluice_engine_answer (self->engine, reader, SLUICE_OK,
                                   is_final ? SLUICE_FLAG_FINAL : 0, self->frames, count);
    else {
        made--;         //  the frame that failed was not made
        rc = S_NO_MEMORY;
    }
    for (size_t index = 0; index < made; index++)
        zmq_msg_close (&self->frames [index]);
    return rc;
}

//  How many chunks the oldest reader may take now: acknowledging readers hold at most a
//  capacity's worth unacknowledged in all.
static size_t
s_reader_room (s_buffer_t *self, sluice_held_t *reader)
{
    size_t room = reader->header.count < self->queued ? reader->header.count : self->queued;
    if (reader->header.flags & SLUICE_FLAG_ACK) {
        size_t unheld = self->unacked < self->opts.capacity ? self->opts.capacity - self->unacked : 0;
        room = room < unheld ? room : unheld;
    }
    return room;
}

//  Serve the oldest reader from the queue: up to its room, stopping after a final chunk.
//  If the reader has vanished the chunks go back to the head of the queue, in order.
static void
s_serve_reader (s_buffer_t *self, size_t room)
{
    sluice_held_t *reader = sluice_fifo_head (&self->readers);
    sluice_engine_unwait (self->engine, reader);
    //  A packed reply stops before it would pass what a client takes in one frame over tcp
    bool packed = reader->header.flags & SLUICE_FLAG_PACKED;
    size_t count = 0, bytes = 0;
    bool is_final = false;
    while (count < room && !is_final) {
        size_t next = self->ring [self->head].size + SLUICE_PACKED_OVERHEAD;
        if (packed && count && bytes + next > SLUICE_PACKED_MAX_BYTES)
            break;
        bytes += next;
        self->batch [count] = s_pop_head (self);
        is_final = self->batch [count++].is_final;
    }
    //  Acknowledged delivery keeps the chunks until the reader acknowledges them
    bool acknowledged = reader->header.flags & SLUICE_FLAG_ACK;
    sluice_peer_t *peer = acknowledged ? sluice_engine_peer (self->engine, &reader->identity, true)
                                       : NULL;
    if (acknowledged && !peer) {
        //  Out of memory: nothing is handed out that could not be kept for requeueing
        s_requeue (self, self->batch, count);
        sluice_engine_answer_error (self->engine, reader, SLUICE_EBUSY,
                                    "out of memory: read refused, try again later");
        return;
    }
    uint64_t reply_id = reader->header.request_id;
    int rc = packed ? s_answer_packed (self, reader, count, is_final)
                    : s_answer_frames (self, reader, count, is_final);
    if (rc == S_NO_MEMORY) {
        s_requeue (self, self->batch, count);
        sluice_engine_answer_error (self->engine, reader, SLUICE_EBUSY,
                                    "out of memory: read refused, try again later");
        return;
    }
    if (rc == 0) {
        self->read += count;
        const void *held = acknowledged ? s_record_delivery (self, peer, reply_id, count) : NULL;
        if (acknowledged && !held)
            SLUICE_ERROR ("sluice buffer: out of memory: %zu delivered chunk(s) are not kept for "
                        "acknowledgement", count);
        for (size_t index = 0; !held && index < count; index++)
            s_chunk_release (self, &self->batch [index]);
        //  Held chunks are known by their records until acknowledged; the rest left for good
        if (self->journal)
            sluice_journal_taken (self->journal, count, held);
    }
    else {
        SLUICE_DEBUG ("sluice buffer: reader gone (%s): %zu chunk(s) back to the head of the queue",
                    zmq_strerror (errno), count);
        s_requeue (self, self->batch, count);
    }
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
        //  A batch goes in whole, when there is room for all of it beside what is queued
        sluice_held_t *writer, *reader;
        while ((writer = sluice_fifo_head (&self->writers)) && !self->closed
           &&  self->queued + s_write_chunks (&writer->header, &writer->frames)
               <= self->opts.capacity) {
            s_admit_writer (self);
            progress = true;
        }
        size_t room;
        while ((reader = sluice_fifo_head (&self->readers)) && (room = s_reader_room (self, reader))) {
            s_serve_reader (self, room);
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
    bool packed = req->header.flags & SLUICE_FLAG_PACKED;
    if ((packed ? req->header.count : req->frames.count) > self->opts.capacity) {
        sluice_engine_refuse (self->engine, req, SLUICE_EPROTO,
                              "WRITE batch larger than the buffer's capacity: it could never fit",
                              true);
        return;
    }
    //  The command table checked a packed frame's form; its chunks stay where they are
    size_t largest = 0;
    if (packed)
        sluice_packed_check (zmq_msg_data (&req->frames.items [0]),
                             zmq_msg_size (&req->frames.items [0]), req->header.count, &largest);
    for (size_t index = 0; !packed && index < req->frames.count; index++)
        if (zmq_msg_size (&req->frames.items [index]) > largest)
            largest = zmq_msg_size (&req->frames.items [index]);
    if (largest > self->opts.max_chunk_size
    ||  (packed && zmq_msg_size (&req->frames.items [0]) > UINT32_MAX)) {
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
    //  A reader waits on an empty queue, or (chunks queued) behind the unacknowledged limit
    sluice_engine_answer_error (self->engine, held, SLUICE_ETIMEOUT,
                                held->header.command == SLUICE_CMD_WRITE
                                ? "timed out: buffer full, chunk not written"
                                : self->queued == 0 ? "timed out: buffer empty"
                                : "timed out: readers hold the capacity unacknowledged");
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
    s_segment_t *segment = s_ring_reserve (self) ? s_segment_new (self, data) : NULL;
    if (!segment)
        return false;
    segment->refs = 1;
    s_chunk_t chunk = { segment, 0, (uint32_t) zmq_msg_size (&segment->frame), is_final };
    s_push_tail (self, &chunk);
    return true;
}

static void
s_buffer_free (s_buffer_t *self)
{
    sluice_journal_destroy (&self->journal);
    while (self->queued) {
        s_chunk_t chunk = s_pop_head (self);
        s_chunk_release (self, &chunk);
    }
    //  Readers' deliveries went with the engine's peers (peer_free): the spares are all left
    while (self->spare) {
        s_segment_t *segment = self->spare;
        self->spare = segment->next_spare;
        free (segment);
    }
    while (self->spare_deliveries) {
        s_delivery_t *delivery = self->spare_deliveries;
        self->spare_deliveries = delivery->next;
        free (delivery);
    }
    free (self->ring);
    free (self->batch);
    free (self->admitting);
    free (self->frames);
    free (self->journaled);
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
    if (opts->max_chunk_size > SLUICE_BUFFER_MAX_CHUNK) {
        sluice_set_last_error ("a buffer's max_chunk_size is at most %d bytes",
                               SLUICE_BUFFER_MAX_CHUNK);
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
        self->ring_size = 2 * opts.capacity;
        self->ring = (s_chunk_t *) calloc (self->ring_size, sizeof *self->ring);
        self->batch = (s_chunk_t *) calloc (SLUICE_MAX_BATCH, sizeof *self->batch);
        self->admitting = (s_chunk_t *) calloc (SLUICE_MAX_BATCH, sizeof *self->admitting);
        self->frames = (zmq_msg_t *) calloc (SLUICE_MAX_BATCH, sizeof *self->frames);
        self->journaled = (struct iovec *) calloc (SLUICE_MAX_BATCH, sizeof *self->journaled);
    }
    sluice_engine_opts_t engine_opts = {
        .name = "buffer",
        //  A close answers every parked request at once: one client's replies must all fit
        .sndhwm = opts.max_parked + 1000,
        //  A chunk a little over the maximum gets ETOOBIG; a huge one is not even received. A
        //  packed frame may hold SLUICE_PACKED_MAX_BYTES of small chunks
        .maxmsgsize = (int64_t) (opts.max_chunk_size > SLUICE_PACKED_MAX_BYTES
                                 ? opts.max_chunk_size : SLUICE_PACKED_MAX_BYTES) + 4096,
        .curve = opts.curve,
        .max_parked = opts.max_parked,
        .peer_max_parked = opts.peer_max_parked,
        .max_parked_bytes = opts.max_parked_bytes,
        .peer_max_parked_bytes = opts.peer_max_parked_bytes,
        .probe_ms = opts.probe_ms,
    };
    sluice_engine_t *engine = self && self->ring && self->batch && self->admitting && self->frames
                           && self->journaled
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
        //  A full queue plus a capacity unacknowledged is what a crash can leave (2 x capacity)
        if (self->queued > 2 * opts.capacity)
            SLUICE_ERROR ("sluice buffer: the journal holds %zu chunks, more than twice the "
                          "capacity (%zu): writers wait until readers take them below it",
                          self->queued, opts.capacity);
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
