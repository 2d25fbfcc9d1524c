/*  fuzz_peers.c - several peers that write, read with acknowledgement, vanish and close,
    scripted by the fuzz input, against a fresh buffer actor per input.

    Each input byte is one step: bits 0-2 the operation, bits 3-4 the peer (of 4), bits 5-7
    an argument. Peers follow the client contract that acknowledged delivery relies on (one
    READ outstanding at a time; each READ acknowledges the last reply received), but nothing
    else: they pipeline writes, read with timeout 0, vanish with requests parked and chunks
    unacknowledged, and close the buffer whenever they like. The odd-numbered peers send their
    bodies inline in the header frame (protocol revision 1.3), the others as frames.

    A model of what was promised is kept: a WRITE answered OK is accepted; a READ reply's
    chunks are delivered once acknowledged (by the peer's next READ or ACK); a reply that is
    never acknowledged (its peer vanished) may come again. Checked:
    - after every STATUS: unacknowledged chunks within the capacity, queued +
      unacknowledged within twice it;
    - whenever a peer gets end of stream: every accepted chunk was delivered before it;
    - at the end of the input (the peers acknowledge and vanish, a clean reader closes the
      buffer and drains it to end of stream): every accepted chunk was delivered, and none
      was delivered twice.
*/
#include "sluice_conn.h"
#include "sluice.h"
#include "fuzz_frames.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F_CAPACITY   4
#define F_PEERS      4
#define F_CHUNKS     256          //  chunk values per input ("c<n>"): more writes are skipped
#define F_WAIT_MS    10000        //  anything awaited comes within this, or the actor is stuck

typedef struct {
    zsock_t *dealer;              //  NULL: not connected (vanished, or never used)
    bool reading;                 //  a READ is outstanding
    uint64_t read_id;             //  its request id
    uint64_t last_reply;          //  id of the last READ reply received (0: none)
    int held [1024];              //  its chunks, delivered once acknowledged
    size_t held_count;
} f_peer_t;

static sluice_buffer_t *s_buffer;
static char s_endpoint [64];
static f_peer_t s_peers [F_PEERS + 1];    //  the last one is the clean reader at the end
static uint64_t s_next_id;
static int s_next_chunk;
static bool s_accepted [F_CHUNKS];
static int s_delivered [F_CHUNKS];
static unsigned s_input;

static void
s_fail (const char *what, int chunk)
{
    if (chunk >= 0)
        fprintf (stderr, "fuzz_peers: %s (chunk c%d)\n", what, chunk);
    else
        fprintf (stderr, "fuzz_peers: %s\n", what);
    abort ();
}

//  Send a request: header and body (NULL: none) as two frames, or, from the odd-numbered peers,
//  the body inline in the header frame (revision 1.3), as the C client sends it.
static void
s_send_request (f_peer_t *peer, sluice_header_t header, const void *body, size_t size)
{
    uint8_t bytes [SLUICE_HEADER_SIZE + 64];
    bool inlined = body && (peer - s_peers) % 2 == 1 && size <= 64;
    if (inlined)
        header.flags |= SLUICE_FLAG_INLINE;
    sluice_header_encode (&header, bytes);
    if (inlined)
        memcpy (bytes + SLUICE_HEADER_SIZE, body, size);
    fuzz_frames_t frames = { .data = { bytes, body },
                             .size = { SLUICE_HEADER_SIZE + (inlined ? size : 0), size },
                             .count = body && !inlined ? 2 : 1 };
    if (!fuzz_send (zsock_resolve (peer->dealer), &frames))
        s_fail ("send failed", -1);
}

static void
s_send (f_peer_t *peer, uint8_t command, uint8_t flags, uint32_t timeout_ms, uint32_t count,
        const void *body, size_t size, uint64_t *id_p)
{
    uint64_t id = s_next_id++;
    sluice_header_t header = { .version = SLUICE_PROTOCOL_VERSION, .command = command,
                               .flags = flags, .timeout_ms = timeout_ms, .request_id = id,
                               .count = count };
    s_send_request (peer, header, body, size);
    if (id_p)
        *id_p = id;
}

static f_peer_t *
s_connect (size_t index)
{
    f_peer_t *peer = &s_peers [index];
    if (!peer->dealer) {
        memset (peer, 0, sizeof *peer);
        peer->dealer = zsock_new_dealer (s_endpoint);
        if (!peer->dealer)
            s_fail ("cannot connect a peer", -1);
    }
    return peer;
}

//  A chunk's number from its text "c<n>", or -1.
static int
s_chunk_number (const uint8_t *data, size_t size)
{
    char text [16];
    if (size < 2 || size >= sizeof text || data [0] != 'c')
        return -1;
    memcpy (text, data, size);
    text [size] = 0;
    int number = atoi (text + 1);
    return number >= 0 && number < F_CHUNKS ? number : -1;
}

static void
s_deliver (int chunk)
{
    if (++s_delivered [chunk] > 1)
        s_fail ("a chunk was delivered twice, both times acknowledged", chunk);
}

//  The peer acknowledges its last reply (with its next READ or an ACK): its chunks are
//  delivered.
static void
s_acknowledged (f_peer_t *peer)
{
    for (size_t index = 0; index < peer->held_count; index++)
        s_deliver (peer->held [index]);
    peer->held_count = 0;
}

static void s_pump_all (void);

//  Every accepted chunk was delivered (at end of stream, after what was sent before it).
static void
s_check_all_delivered (const char *when)
{
    for (int chunk = 0; chunk < s_next_chunk; chunk++)
        if (s_accepted [chunk] && !s_delivered [chunk])
            s_fail (when, chunk);
}

//  Take one reply on this peer.
static void
s_take (f_peer_t *peer, zmsg_t *reply)
{
    zframe_t *frame = zmsg_first (reply);
    sluice_header_t header;
    if (!frame || sluice_header_decode (zframe_data (frame), zframe_size (frame), &header) != SLUICE_OK)
        s_fail ("the actor sent a malformed reply header", -1);
    if (header.request_id == SLUICE_PROBE_ID)
        return;
    if (header.command == SLUICE_CMD_READ && header.request_id == peer->read_id) {
        peer->reading = false;
        if (header.status != SLUICE_OK)
            return;
        bool eos = header.flags & SLUICE_FLAG_EOS;
        peer->last_reply = header.request_id;
        //  A packed reply: one frame of count chunks, walked in place
        sluice_unpacker_t walk = { NULL, NULL };
        if (header.flags & SLUICE_FLAG_PACKED) {
            size_t largest;
            frame = zmsg_next (reply);
            if (eos || !frame || zmsg_next (reply)
            ||  sluice_packed_check (zframe_data (frame), zframe_size (frame), header.count, &largest))
                s_fail ("a malformed packed READ reply", -1);
            walk.at = zframe_data (frame);
            walk.end = walk.at + zframe_size (frame);
        }
        const uint8_t *data;
        size_t data_size;
        for (frame = walk.at ? NULL : zmsg_next (reply); !eos; frame = zmsg_next (reply)) {
            if (walk.at) {
                if (!sluice_packed_next (&walk, &data, &data_size))
                    break;
            }
            else
            if (frame) {
                data = zframe_data (frame);
                data_size = zframe_size (frame);
            }
            else
                break;
            int chunk = s_chunk_number (data, data_size);
            if (chunk < 0)
                s_fail ("a READ reply carries a chunk nobody wrote", -1);
            if (peer == &s_peers [F_PEERS])
                s_deliver (chunk);      //  the clean reader reads without acknowledgement
            else
                peer->held [peer->held_count++] = chunk;
        }
        if (eos) {
            //  What was sent before the end of stream is visible on the other peers now
            s_pump_all ();
            s_check_all_delivered ("end of stream before an accepted chunk was delivered");
        }
    }
}

//  A WRITE's reply carries the chunk number in its request id's low bits: see s_write.
static void
s_take_write (zmsg_t *reply)
{
    zframe_t *frame = zmsg_first (reply);
    sluice_header_t header;
    if (sluice_header_decode (zframe_data (frame), zframe_size (frame), &header) != SLUICE_OK)
        return;
    if (header.command == SLUICE_CMD_WRITE && header.status == SLUICE_OK
    &&  (header.request_id >> 16) == 0xF00D)
        s_accepted [header.request_id & 0xFFFF] = true;
}

//  Take every reply already there for this peer.
static void
s_pump (f_peer_t *peer)
{
    if (!peer->dealer)
        return;
    while (zsock_events (peer->dealer) & ZMQ_POLLIN) {
        zmsg_t *reply = zmsg_recv (peer->dealer);
        if (!reply)
            s_fail ("receive failed", -1);
        zframe_t *first = zmsg_first (reply);
        if (first && zframe_size (first) >= SLUICE_HEADER_SIZE
        &&  zframe_data (first) [2] & SLUICE_FLAG_INLINE) {
            //  An inline reply (only to an inline request) is one frame: split it
            if (zmsg_size (reply) != 1 || (peer - s_peers) % 2 == 0)
                s_fail ("an inline reply with more frames, or to a peer that never inlines", -1);
            zframe_t *whole = zmsg_pop (reply);
            zmsg_addmem (reply, zframe_data (whole), SLUICE_HEADER_SIZE);
            zmsg_addmem (reply, zframe_data (whole) + SLUICE_HEADER_SIZE,
                         zframe_size (whole) - SLUICE_HEADER_SIZE);
            zframe_destroy (&whole);
        }
        s_take_write (reply);
        s_take (peer, reply);
        zmsg_destroy (&reply);
    }
}

static void
s_pump_all (void)
{
    for (size_t index = 0; index <= F_PEERS; index++)
        s_pump (&s_peers [index]);
}

static void
s_write (f_peer_t *peer, bool now_or_never, bool packed)
{
    if (s_next_chunk >= F_CHUNKS)
        return;
    int chunk = s_next_chunk++;
    char text [16];
    int size = snprintf (text, sizeof text, "c%d", chunk);
    //  The request id tells the reply's chunk (ids are otherwise only for matching)
    uint64_t id = (0xF00Dull << 16) | (uint64_t) chunk;
    sluice_header_t header = { .version = SLUICE_PROTOCOL_VERSION, .command = SLUICE_CMD_WRITE,
                               .timeout_ms = now_or_never ? 0 : SLUICE_WAIT_FOREVER,
                               .request_id = id, .count = 1,
                               .flags = packed ? SLUICE_FLAG_PACKED : 0 };
    uint8_t body [16 + SLUICE_PACKED_OVERHEAD];
    size_t body_size = packed ? sluice_packed_put (body, text, (size_t) size) : (size_t) size;
    s_send_request (peer, header, packed ? body : (const uint8_t *) text, body_size);
}

//  READ with acknowledgement of the last reply (one READ outstanding at a time).
static void
s_read (f_peer_t *peer, uint32_t count, bool now_or_never, bool packed)
{
    if (peer->reading) {
        s_pump (peer);
        return;
    }
    uint8_t body [8];
    for (int index = 0; index < 8; index++)
        body [index] = (uint8_t) (peer->last_reply >> (56 - 8 * index));
    s_acknowledged (peer);
    s_send (peer, SLUICE_CMD_READ, SLUICE_FLAG_ACK | (packed ? SLUICE_FLAG_PACKED : 0), now_or_never ? 0 : SLUICE_WAIT_FOREVER,
            count, body, sizeof body, &peer->read_id);
    peer->reading = true;
}

static void
s_ack (f_peer_t *peer)
{
    if (peer->reading || !peer->last_reply)
        return;
    uint8_t body [8];
    for (int index = 0; index < 8; index++)
        body [index] = (uint8_t) (peer->last_reply >> (56 - 8 * index));
    s_acknowledged (peer);
    s_send (peer, SLUICE_CMD_ACK, 0, 0, 0, body, sizeof body, NULL);
}

//  Gone without a word: what it held unacknowledged comes back to the queue.
static void
s_vanish (f_peer_t *peer)
{
    if (!peer->dealer)
        return;
    s_pump (peer);
    //  Lingering lets an ACK already sent reach the actor before the pipe goes
    zsock_set_linger (peer->dealer, 1000);
    zsock_destroy (&peer->dealer);
    peer->held_count = 0;
    peer->reading = false;
}

static uint64_t
s_status (const char *key)
{
    f_peer_t *peer = s_connect (F_PEERS);
    uint64_t id;
    s_send (peer, SLUICE_CMD_STATUS, 0, 0, 0, NULL, 0, &id);
    while (true) {
        if (!fuzz_wait_input (zsock_resolve (peer->dealer), F_WAIT_MS))
            s_fail ("no STATUS reply: the actor stopped serving", -1);
        zmsg_t *reply = zmsg_recv (peer->dealer);
        zframe_t *frame = reply ? zmsg_first (reply) : NULL;
        sluice_header_t header;
        if (frame && sluice_header_decode (zframe_data (frame), zframe_size (frame), &header)
                     == SLUICE_OK && header.request_id == id) {
            zframe_t *text = zmsg_next (reply);
            if (!text)
                s_fail ("STATUS without a body", -1);
            const char *data = (const char *) zframe_data (text);
            size_t size = zframe_size (text);
            uint64_t queued = sluice_status_u64 (data, size, "queued", UINT64_MAX);
            uint64_t unacked = sluice_status_u64 (data, size, "unacked", UINT64_MAX);
            uint64_t value = sluice_status_u64 (data, size, key, UINT64_MAX);
            zmsg_destroy (&reply);
            if (queued == UINT64_MAX || unacked == UINT64_MAX)
                s_fail ("STATUS lacks queued= or unacked=", -1);
            if (unacked > F_CAPACITY)
                s_fail ("unacknowledged chunks beyond the capacity", -1);
            if (queued + unacked > 2 * F_CAPACITY)
                s_fail ("queued + unacknowledged chunks beyond twice the capacity", -1);
            return value;
        }
        if (reply)
            s_take (peer, reply);
        zmsg_destroy (&reply);
    }
}

//  The end of an input: the peers acknowledge what they hold and vanish; a clean reader
//  closes the buffer and reads it to the end.
static void
s_finish (void)
{
    s_pump_all ();
    for (size_t index = 0; index < F_PEERS; index++) {
        f_peer_t *peer = &s_peers [index];
        if (peer->dealer && !peer->reading)
            s_ack (peer);
        s_vanish (peer);
    }
    f_peer_t *reader = s_connect (F_PEERS);
    s_send (reader, SLUICE_CMD_CLOSE, 0, 0, 0, NULL, 0, NULL);
    bool eos = false;
    while (!eos) {
        if (!reader->reading)
            s_send (reader, SLUICE_CMD_READ, 0, SLUICE_WAIT_FOREVER, 1024, NULL, 0,
                    &reader->read_id), reader->reading = true;
        if (!fuzz_wait_input (zsock_resolve (reader->dealer), F_WAIT_MS))
            s_fail ("no end of stream after close: the drain is stuck", -1);
        zmsg_t *reply = zmsg_recv (reader->dealer);
        zframe_t *frame = reply ? zmsg_first (reply) : NULL;
        sluice_header_t header;
        eos = frame && sluice_header_decode (zframe_data (frame), zframe_size (frame), &header)
                       == SLUICE_OK && header.request_id == reader->read_id
              && header.status == SLUICE_OK && (header.flags & SLUICE_FLAG_EOS);
        if (reply)
            s_take (reader, reply);
        zmsg_destroy (&reply);
    }
    s_check_all_delivered ("an accepted chunk was never delivered");
    zsock_destroy (&reader->dealer);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *input, size_t size)
{
    snprintf (s_endpoint, sizeof s_endpoint, "inproc://fuzz-peers-%u", s_input++);
    sluice_err_t err;
    //  A short probe interval: vanished peers' chunks come back within milliseconds
    s_buffer = sluice_buffer_new (&(sluice_buffer_opts_t) {
        .endpoint = s_endpoint, .capacity = F_CAPACITY, .max_chunk_size = 64,
        .probe_ms = 5 }, &err);
    if (!s_buffer) {
        fprintf (stderr, "fuzz_peers: %s\n", sluice_last_error_text ());
        s_fail ("cannot start the buffer actor", -1);
    }
    memset (s_peers, 0, sizeof s_peers);
    memset (s_accepted, 0, sizeof s_accepted);
    memset (s_delivered, 0, sizeof s_delivered);
    s_next_chunk = 0;
    s_next_id = 1;
    for (size_t at = 0; at < size && at < 512; at++) {
        uint8_t step = input [at];
        f_peer_t *peer = s_connect ((step >> 3) & 3);
        uint32_t argument = step >> 5;
        switch (step & 7) {
            //  Odd arguments: packed bodies (docs/PROTOCOL.md, "Packed")
            case 0: s_write (peer, false, argument & 1); break;
            case 1: s_write (peer, true, argument & 1); break;
            case 2: s_read (peer, 1 + argument, false, argument & 1); break;
            case 3: s_read (peer, 1 + argument, true, argument & 1); break;
            case 4: s_ack (peer); break;
            case 5: s_vanish (peer); break;
            case 6: s_pump_all (); break;
            case 7:
                if (argument == 7)
                    s_send (peer, SLUICE_CMD_CLOSE, 0, 0, 0, NULL, 0, NULL);
                else
                    s_status ("queued");
                break;
        }
    }
    s_finish ();
    for (size_t index = 0; index <= F_PEERS; index++)
        zsock_destroy (&s_peers [index].dealer);
    sluice_buffer_destroy (&s_buffer);
    return 0;
}
