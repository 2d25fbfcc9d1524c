/*  fuzz_actor.c - a whole buffer actor fed arbitrary multipart messages through its ROUTER.

    After every input a well-formed STATUS request must still be answered, with counters that
    obey the buffer's invariants. Parked fuzz requests are answered (or not) later; their
    replies are read and discarded while waiting for ours.
*/
#include "sluice_internal.h"
#include "fuzz_frames.h"
#include <stdlib.h>
#include <string.h>

#define FUZZ_CAPACITY 8

static sluice_buffer_t *s_buffer;
static zsock_t *s_dealer;
static uint64_t s_next_id = 1ull << 40;      //  far from ids a fuzz input is likely to pick

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
        abort ();
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
    if (zmq_send (dealer, bytes, sizeof bytes, 0) == -1)
        abort ();
    int64_t deadline = zclock_mono () + 10000;
    while (true) {
        zmq_pollitem_t item = { dealer, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, sluice_poll_timeout (deadline)) != 1)
            abort ();                   //  the actor stopped serving
        zmsg_t *reply = zmsg_recv (s_dealer);
        if (!reply)
            abort ();
        zframe_t *header_frame = zmsg_first (reply);
        sluice_header_t header;
        if (sluice_header_decode (zframe_data (header_frame), zframe_size (header_frame),
                                  &header) != SLUICE_OK)
            abort ();                   //  the actor itself sent a malformed reply
        if (header.request_id == id) {
            zframe_t *text = zmsg_next (reply);
            if (header.status != SLUICE_OK || !text)
                abort ();
            const char *data = (const char *) zframe_data (text);
            size_t size = zframe_size (text);
            uint64_t queued = sluice_status_u64 (data, size, "queued", UINT64_MAX);
            uint64_t writers = sluice_status_u64 (data, size, "parked_writers", UINT64_MAX);
            uint64_t readers = sluice_status_u64 (data, size, "parked_readers", UINT64_MAX);
            //  Writers wait only on a full queue, readers only on an empty one
            if (queued == UINT64_MAX || (writers && queued < FUZZ_CAPACITY) || (readers && queued))
                abort ();
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
    void *dealer = zsock_resolve (s_dealer);
    for (size_t index = 0; index < frames.count; index++)
        if (zmq_send (dealer, frames.data [index], frames.size [index],
                      index + 1 < frames.count ? ZMQ_SNDMORE : 0) == -1)
            abort ();
    s_check_alive ();
    return 0;
}
