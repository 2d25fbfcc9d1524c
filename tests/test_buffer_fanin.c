/*  test_buffer_fanin.c - 1000+ clients on one buffer over tcp.

    The ZeroMQ context allows 1023 sockets by default and tcp's listen backlog is 100; sluice
    raises both (zsys_set_max_sockets here, in the client process; ZMQ_BACKLOG 1024 on every
    actor's ROUTER). Each tcp client costs this process about three file descriptors, so the
    soft descriptor limit is raised to the hard one first.
*/
#include "common.h"
#include <sys/resource.h>

#define CLIENTS 1200

static void
s_raise_fd_limit (void)
{
    struct rlimit limit;
    cr_assert_eq (getrlimit (RLIMIT_NOFILE, &limit), 0);
    limit.rlim_cur = limit.rlim_max;
    cr_assert_eq (setrlimit (RLIMIT_NOFILE, &limit), 0);
    if (limit.rlim_cur < CLIENTS * 4)
        cr_skip_test ("needs %d file descriptors, the hard limit is %llu", CLIENTS * 4,
                      (unsigned long long) limit.rlim_cur);
}

static void
s_init (void)
{
    t_fx_init ();
    t_fx.tcp = true;
}

TestSuite (fanin, .init = s_init, .fini = t_fx_fini, .timeout = 120);

Test (fanin, twelve_hundred_parked_readers_all_get_end_of_stream_on_close)
{
    s_raise_fd_limit ();
    zsys_set_max_sockets (CLIENTS + 512);
    t_start (4);
    static zsock_t *clients [CLIENTS];
    uint8_t header [SLUICE_HEADER_SIZE] = { SLUICE_PROTOCOL_VERSION, SLUICE_CMD_READ };
    header [4] = header [5] = header [6] = header [7] = 0xFF;     //  no deadline
    header [19] = 1;                                                //  count 1
    for (int index = 0; index < CLIENTS; index++) {
        clients [index] = zsock_new_dealer (t_fx.endpoint);
        cr_assert_not_null (clients [index], "client %d: %s", index, zmq_strerror (zmq_errno ()));
        //  Request id index + 1: id 0 is reserved for the actors' probe
        header [15] = (uint8_t) ((index + 1) & 0xFF);
        header [14] = (uint8_t) ((index + 1) >> 8);
        cr_assert_eq (zmq_send (zsock_resolve (clients [index]), header, sizeof header, 0),
                      SLUICE_HEADER_SIZE);
    }
    T_WAIT_PARKED_READERS (CLIENTS);
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    for (int index = 0; index < CLIENTS; index++) {
        zsock_set_rcvtimeo (clients [index], T_WAIT_MS);
        zmsg_t *reply = NULL;
        //  Skip liveness probes (request id 0) until the reply to our READ
        while (true) {
            reply = zmsg_recv (clients [index]);
            cr_assert_not_null (reply, "client %d got no reply", index);
            const uint8_t *data = zframe_data (zmsg_first (reply));
            uint64_t id = ((uint64_t) data [14] << 8) | data [15];
            if (data [1] == SLUICE_CMD_READ && id == (uint64_t) index + 1)
                break;
            zmsg_destroy (&reply);
        }
        const uint8_t *data = zframe_data (zmsg_first (reply));
        cr_assert_eq (data [3], SLUICE_OK);
        cr_assert (data [2] & SLUICE_FLAG_EOS, "client %d: not end of stream", index);
        zmsg_destroy (&reply);
        zsock_destroy (&clients [index]);
    }
}
