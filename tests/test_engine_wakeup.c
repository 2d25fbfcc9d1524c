/*  test_engine_wakeup.c - the engine's poll(2) wait must not miss a request left in the
    ROUTER.

    A peer sends a burst of requests that get no reply at once (READs on an empty buffer park)
    followed by a PING. The engine drains at most S_DRAIN_BATCH (1024) requests per wake-up;
    whatever is left must be served without waiting for an unrelated event. The probe period is
    made long (60 s) so that the sweep's probe (a send on the ROUTER) cannot hide a missed
    wake-up: the PING must be answered within a few seconds.
*/
#include "common.h"

#define W_BURST    3000       //  below the default per-connection parking limit (4096)
#define W_WAIT_MS  5000

TestSuite (engine_wakeup, .init = t_fx_init, .fini = t_fx_fini, .timeout = 60);

static zsock_t *w_raw;

static void
w_cleanup (void)
{
    zsock_destroy (&w_raw);
}

static void
w_send (zsock_t *raw, uint8_t command, uint64_t id, uint32_t count)
{
    uint8_t header [SLUICE_HEADER_SIZE];
    sluice_header_encode (&(sluice_header_t) {
        .version = SLUICE_PROTOCOL_VERSION, .command = command,
        .timeout_ms = SLUICE_WAIT_FOREVER, .request_id = id, .count = count }, header);
    cr_assert_eq (zmq_send (zsock_resolve (raw), header, sizeof header, 0), (int) sizeof header,
                  "send: %s", zmq_strerror (zmq_errno ()));
}

//  Waits for the reply to request `id` (probes skipped); fails after W_WAIT_MS.
static void
w_reply (zsock_t *raw, uint64_t id, const char *what)
{
    int64_t start = zclock_mono ();
    while (true) {
        zmsg_t *reply = zmsg_recv (raw);
        cr_assert_not_null (reply, "%s: no reply within %d ms (a missed wake-up?)", what,
                            W_WAIT_MS);
        sluice_header_t h;
        zframe_t *frame = zmsg_first (reply);
        cr_assert_eq (sluice_header_decode (zframe_data (frame), zframe_size (frame), &h),
                      SLUICE_OK);
        zmsg_destroy (&reply);
        if (h.request_id == id)
            break;
        cr_assert_lt (zclock_mono () - start, W_WAIT_MS, "%s: no reply in time", what);
    }
}

static void
w_burst (bool tcp)
{
    t_fx.tcp = tcp;
    t_fx.cleanup = w_cleanup;
    char endpoint [256];
    t_bind_endpoint (endpoint, sizeof endpoint, "wakeup");
    sluice_buffer_opts_t opts = { .endpoint = endpoint, .capacity = 4, .probe_ms = 60000 };
    t_start_with (&opts);
    for (int round = 0; round < 3; round++) {
        w_raw = zsock_new (ZMQ_DEALER);
        cr_assert_not_null (w_raw);
        zsock_set_sndhwm (w_raw, 0);
        zsock_set_rcvtimeo (w_raw, W_WAIT_MS);
        zsock_set_sndtimeo (w_raw, W_WAIT_MS);
        cr_assert_eq (zsock_connect (w_raw, "%s", t_fx.endpoint), 0);
        //  A round trip first: the engine has then found the ROUTER empty and sleeps
        w_send (w_raw, SLUICE_CMD_PING, 1, 0);
        w_reply (w_raw, 1, "first PING");
        for (uint64_t id = 2; id < 2 + W_BURST; id++)
            w_send (w_raw, SLUICE_CMD_READ, id, 1);
        w_send (w_raw, SLUICE_CMD_PING, 2 + W_BURST, 0);
        int64_t start = zclock_mono ();
        w_reply (w_raw, 2 + W_BURST, "PING after the burst of READs");
        int64_t took = zclock_mono () - start;
        cr_log_info ("round %d: PING answered after %" PRId64 " ms", round, took);
        zsock_destroy (&w_raw);     //  its parked READs go with it (or at the sweep)
    }
}

T_TEST (engine_wakeup, burst_inproc)
{
    w_burst (false);
}

T_TEST (engine_wakeup, burst_tcp)
{
    w_burst (true);
}
