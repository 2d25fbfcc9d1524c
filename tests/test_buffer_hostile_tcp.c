/*  test_buffer_hostile_tcp.c - bad input over tcp, from raw sockets.

    Over tcp a peer can also break the transport itself: random bytes instead of a ZMTP
    greeting, a frame far over the size limit (ZeroMQ drops that connection: ZMQ_MAXMSGSIZE),
    or a connection that goes away mid-message. Each case is followed by the same checks: the
    buffer's counters and queued chunks are as before, and a legitimate client is served.
*/
#define T_TCP 1
#include "common.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define H_MAX_CHUNK 1024

TestSuite (hostile_tcp, .init = t_fx_init, .fini = t_fx_fini, .timeout = T_SUITE_TIMEOUT);

static void
h_header (uint8_t *h, uint8_t version, uint8_t command, uint64_t id, uint32_t count)
{
    memset (h, 0, SLUICE_HEADER_SIZE);
    h [0] = version;
    h [1] = command;
    for (int i = 0; i < 8; i++)
        h [8 + i] = (uint8_t) (id >> (56 - 8 * i));
    h [16] = (uint8_t) (count >> 24); h [17] = (uint8_t) (count >> 16);
    h [18] = (uint8_t) (count >> 8);  h [19] = (uint8_t) count;
}

//  Start a buffer holding "kept", and return its status for later comparison.
static sluice_buffer_status_t
h_start (void)
{
    t_start_opts (4, H_MAX_CHUNK, 0, false);
    T_WRITE (t_fx.cli, "kept");
    return t_status ();
}

static void
h_assert_intact (sluice_buffer_status_t before)
{
    sluice_buffer_status_t after = t_status ();
    cr_assert_eq (after.queued, before.queued, "queued changed: %zu -> %zu", before.queued, after.queued);
    cr_assert_eq (after.written, before.written);
    cr_assert_eq (after.read, before.read);
    cr_assert_eq (after.closed, before.closed);
    T_EXPECT_CHUNK (t_fx.cli, "kept");
    T_WRITE (t_fx.cli, "still serving");
    T_EXPECT_CHUNK (t_fx.cli, "still serving");
}

//  Send frames from a raw DEALER and return the status byte of the reply to request `id`.
static int
h_exchange (zsock_t *raw, uint64_t id, zmsg_t *request)
{
    cr_assert_eq (zmsg_send (&request, raw), 0);
    while (true) {
        zmsg_t *reply = zmsg_recv (raw);
        cr_assert_not_null (reply, "no error reply");
        zframe_t *header = zmsg_first (reply);
        cr_assert_eq (zframe_size (header), SLUICE_HEADER_SIZE);
        const uint8_t *data = zframe_data (header);
        uint64_t got = 0;
        for (int i = 0; i < 8; i++)
            got = (got << 8) | data [8 + i];
        if (got == SLUICE_PROBE_ID) {       //  a liveness probe, not our reply
            zmsg_destroy (&reply);
            continue;
        }
        cr_assert_eq (got, id);
        int status = data [3];
        if (status != SLUICE_OK) {
            zframe_t *text = zmsg_next (reply);
            cr_assert (text && zframe_size (text) > 0, "an error reply must name the problem");
        }
        zmsg_destroy (&reply);
        return status;
    }
}

static zsock_t *
h_raw (void)
{
    zsock_t *raw = zsock_new_dealer (t_fx.endpoint);
    cr_assert_not_null (raw);
    zsock_set_rcvtimeo (raw, T_WAIT_MS);
    return raw;
}

Test (hostile_tcp, each_class_of_bad_request_gets_its_error_and_changes_nothing)
{
    sluice_buffer_status_t before = h_start ();
    zsock_t *raw = h_raw ();
    uint8_t h [SLUICE_HEADER_SIZE];
    zmsg_t *msg;

    //  wrong frame count: a WRITE with two chunk frames
    msg = zmsg_new ();
    h_header (h, 1, SLUICE_CMD_WRITE, 11, 0);
    zmsg_addmem (msg, h, sizeof h); zmsg_addstr (msg, "a"); zmsg_addstr (msg, "b");
    cr_assert_eq (h_exchange (raw, 11, msg), SLUICE_EPROTO);
    //  unknown command
    msg = zmsg_new ();
    h_header (h, 1, 200, 12, 0);
    zmsg_addmem (msg, h, sizeof h);
    cr_assert_eq (h_exchange (raw, 12, msg), SLUICE_ECOMMAND);
    //  bad version
    msg = zmsg_new ();
    h_header (h, 9, SLUICE_CMD_STATUS, 13, 0);
    zmsg_addmem (msg, h, sizeof h);
    cr_assert_eq (h_exchange (raw, 13, msg), SLUICE_EVERSION);
    //  huge size field: READ asking for 4 billion chunks
    msg = zmsg_new ();
    h_header (h, 1, SLUICE_CMD_READ, 14, 0xFFFFFFFFu);
    zmsg_addmem (msg, h, sizeof h);
    cr_assert_eq (h_exchange (raw, 14, msg), SLUICE_EPROTO);
    //  truncated header (16 bytes: the id is still there)
    msg = zmsg_new ();
    h_header (h, 1, SLUICE_CMD_STATUS, 15, 0);
    zmsg_addmem (msg, h, 16);
    cr_assert_eq (h_exchange (raw, 15, msg), SLUICE_EPROTO);
    //  a chunk just over the maximum: a proper ETOOBIG
    char big [H_MAX_CHUNK + 1];
    memset (big, 'x', sizeof big);
    msg = zmsg_new ();
    h_header (h, 1, SLUICE_CMD_WRITE, 16, 0);
    zmsg_addmem (msg, h, sizeof h); zmsg_addmem (msg, big, sizeof big);
    cr_assert_eq (h_exchange (raw, 16, msg), SLUICE_ETOOBIG);

    zsock_destroy (&raw);
    h_assert_intact (before);
}

Test (hostile_tcp, a_frame_far_over_the_limit_drops_only_that_peer)
{
    sluice_buffer_status_t before = h_start ();
    zsock_t *raw = h_raw ();
    //  Watch the raw client's connection: the drop is the event this test waits for
    zactor_t *monitor = zactor_new (zmonitor, raw);
    cr_assert_not_null (monitor);
    zstr_sendx (monitor, "LISTEN", "DISCONNECTED", NULL);
    zstr_send (monitor, "START");
    cr_assert_eq (zsock_wait (monitor), 0);
    uint8_t h [SLUICE_HEADER_SIZE];
    h_header (h, 1, SLUICE_CMD_WRITE, 21, 0);
    size_t size = 4 * 1024 * 1024;          //  far over max_chunk + 4096: never held in memory
    char *huge = (char *) malloc (size);
    memset (huge, 'y', size);
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, h, sizeof h);
    zmsg_addmem (msg, huge, size);
    free (huge);
    cr_assert_eq (zmsg_send (&msg, raw), 0);
    //  The buffer's side drops the connection (ZMQ_MAXMSGSIZE) ...
    zsock_set_rcvtimeo (monitor, T_WAIT_MS);
    char *event = zstr_recv (monitor);
    cr_assert (event && streq (event, "DISCONNECTED"), "the oversized peer was not dropped");
    zstr_free (&event);
    zactor_destroy (&monitor);
    //  ... and goes on as before for everyone else
    h_assert_intact (before);
    zsock_destroy (&raw);
}

Test (hostile_tcp, random_bytes_before_the_handshake_and_half_messages_change_nothing)
{
    sluice_buffer_status_t before = h_start ();
    int port = 0;
    cr_assert_eq (sscanf (strrchr (t_fx.endpoint, ':') + 1, "%d", &port), 1);
    for (int round = 0; round < 8; round++) {
        int fd = socket (AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
        inet_pton (AF_INET, "127.0.0.1", &address.sin_addr);
        cr_assert_eq (connect (fd, (struct sockaddr *) &address, sizeof address), 0);
        unsigned char junk [512];
        t_pattern (junk, sizeof junk, (unsigned) round);
        if (round % 2)
            memcpy (junk, "\xff\0\0\0\0\0\0\0\x01\x7f", 10);   //  a greeting's start, then junk
        cr_assert_eq (write (fd, junk, sizeof junk), (ssize_t) sizeof junk);
        close (fd);
    }
    h_assert_intact (before);
}
