/*  fuzz_actor.c - a whole buffer actor fed arbitrary multipart messages through its ROUTER.

    After every input a well-formed STATUS request must still be answered, with counters that
    obey the buffer's invariants. Parked fuzz requests are answered (or not) later; their
    replies are read and discarded while waiting for ours.
*/
#include "sluice_conn.h"
#include "sluice.h"
#include "fuzz_frames.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CAPACITY 8

static sluice_buffer_t *s_buffer;
static zsock_t *s_dealer;
static uint64_t s_next_id = 1ull << 40;      //  far from ids a fuzz input is likely to pick

//  A finding must say which check failed: libFuzzer only reports "deadly signal"
static void
s_fail (const char *what)
{
    fprintf (stderr, "fuzz_actor: %s\n", what);
    abort ();
}

//  Stop the actor before czmq's own exit handler tears the context down under it
static void
s_cleanup (void)
{
    zsock_destroy (&s_dealer);
    sluice_buffer_destroy (&s_buffer);
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    atexit (s_cleanup);
    sluice_err_t err;
    s_buffer = sluice_buffer_new (&(sluice_buffer_opts_t) {
        .endpoint = "inproc://fuzz-actor", .capacity = FUZZ_CAPACITY,
        .max_chunk_size = 4096, .max_parked = 256 }, &err);
    s_dealer = zsock_new_dealer ("inproc://fuzz-actor");
    if (!s_buffer || !s_dealer)
        s_fail ("cannot start the buffer actor");
    return 0;
}

//  Send STATUS and wait for its reply (other replies are skipped); abort if it never comes.
static void
s_check_alive (void)
{
    void *dealer = zsock_resolve (s_dealer);
    uint64_t id = s_next_id++;
    sluice_header_t status = { .version = SLUICE_PROTOCOL_VERSION, .command = SLUICE_CMD_STATUS,
                               .request_id = id };
    uint8_t bytes [SLUICE_HEADER_SIZE];
    sluice_header_encode (&status, bytes);
    fuzz_frames_t request = { .data = { bytes }, .size = { sizeof bytes }, .count = 1 };
    if (!fuzz_send (dealer, &request))
        s_fail ("cannot send STATUS");
    while (true) {
        //  Replies arrive in order: our STATUS reply comes within 10 s or the actor is stuck
        if (!fuzz_wait_input (dealer, 10000))
            s_fail ("no STATUS reply within 10 s: the actor stopped serving");
        zmsg_t *reply = zmsg_recv (s_dealer);
        if (!reply)
            s_fail ("reply receive failed");
        zframe_t *header_frame = zmsg_first (reply);
        sluice_header_t header;
        if (sluice_header_decode (zframe_data (header_frame), zframe_size (header_frame),
                                  &header) != SLUICE_OK)
            s_fail ("the actor sent a malformed reply header");
        if (header.request_id == id) {
            zframe_t *text = zmsg_next (reply);
            if (header.status != SLUICE_OK || !text)
                s_fail ("STATUS was refused or has no body");
            const char *data = (const char *) zframe_data (text);
            size_t size = zframe_size (text);
            uint64_t queued = sluice_status_u64 (data, size, "queued", UINT64_MAX);
            uint64_t writers = sluice_status_u64 (data, size, "parked_writers", UINT64_MAX);
            uint64_t readers = sluice_status_u64 (data, size, "parked_readers", UINT64_MAX);
            uint64_t unacked = sluice_status_u64 (data, size, "unacked", UINT64_MAX);
            //  Writers wait only while the queue has no room, readers only while it is
            //  empty or readers hold a capacity unacknowledged; unacknowledged chunks never
            //  exceed the capacity, queued + unacknowledged never twice it
            if (queued == UINT64_MAX || unacked == UINT64_MAX)
                s_fail ("STATUS body lacks queued= or unacked=");
            //  (a batch waits for room for all of it, but any batch fits an empty queue)
            if (writers && queued == 0)
                s_fail ("writers parked on an empty queue");
            if (readers && queued && unacked < FUZZ_CAPACITY)
                s_fail ("readers parked on a queue that has chunks");
            if (unacked > FUZZ_CAPACITY)
                s_fail ("unacknowledged chunks beyond the capacity");
            if (queued + unacked > 2 * FUZZ_CAPACITY)
                s_fail ("queued + unacknowledged chunks beyond twice the capacity");
            zmsg_destroy (&reply);
            return;
        }
        zmsg_destroy (&reply);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *input, size_t size)
{
    fuzz_frames_t frames;
    fuzz_split (input, size, &frames);
    if (!fuzz_send (zsock_resolve (s_dealer), &frames))
        s_fail ("cannot send the fuzz input");
    s_check_alive ();
    return 0;
}
