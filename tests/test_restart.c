/*  test_restart.c - a buffer that restarts under its clients (crash, new process on the same
    endpoint) must not look like the same buffer: its queue lived in memory only.

    A buffer on tcp is destroyed and a new one bound on the same port; the clients reconnect by
    themselves (ZeroMQ), and the first reply from the new incarnation fails their call with
    SLUICE_ERESTARTED, once. Waiting is on replies; the rebind retries only while the port is
    still being released.
*/
#include "common.h"

TestSuite (restart, .init = t_fx_init, .fini = t_fx_fini, .timeout = T_SUITE_TIMEOUT);

//  A buffer on exactly this endpoint (the port of one that was just destroyed).
static sluice_buffer_t *
s_rebind (const char *endpoint)
{
    int64_t deadline = zclock_mono () + T_WAIT_MS;
    while (true) {
        sluice_err_t err;
        sluice_buffer_t *buffer = sluice_buffer_new (&(sluice_buffer_opts_t) {
            .endpoint = endpoint, .capacity = 4 }, &err);
        if (buffer)
            return buffer;
        cr_assert (zclock_mono () < deadline, "cannot bind %s again: %s", endpoint,
                   sluice_last_error_text ());
        zmq_poll (NULL, 0, 20);     //  the kernel releases the port on its own schedule
    }
}

static uint64_t
s_incarnation (sluice_stream_t *stream)
{
    sluice_buffer_status_t st;
    cr_assert_eq (sluice_stream_status (stream, &st), SLUICE_OK);
    cr_assert_neq (st.incarnation, 0, "STATUS has no incarnation");
    return st.incarnation;
}

T_TEST (restart, clients_of_a_restarted_buffer_are_told_once)
{
    sluice_err_t err;
    sluice_buffer_t *first = sluice_buffer_new (&(sluice_buffer_opts_t) {
        .endpoint = "tcp://127.0.0.1:0", .capacity = 4 }, &err);
    cr_assert_not_null (first);
    char endpoint [256];
    snprintf (endpoint, sizeof endpoint, "%s", sluice_buffer_endpoint (first));
    sluice_stream_t *writer = sluice_stream_new (endpoint);
    sluice_stream_t *reader = sluice_stream_new (endpoint);
    cr_assert (writer && reader);
    t_fx.streams [t_fx.nstreams++] = writer;
    t_fx.streams [t_fx.nstreams++] = reader;
    T_WRITE (writer, "a");
    T_WRITE (writer, "b");
    T_EXPECT_CHUNK (reader, "a");
    uint64_t before = s_incarnation (reader);

    //  The buffer goes, with "b" and the unacknowledged "a"; a new one takes its port
    sluice_buffer_destroy (&first);
    t_fx.buf = s_rebind (endpoint);
    sluice_stream_t *probe = sluice_stream_new (endpoint);
    cr_assert_not_null (probe);
    t_fx.streams [t_fx.nstreams++] = probe;
    uint64_t after = s_incarnation (probe);
    cr_expect_neq (before, after, "the new buffer has the old one's incarnation");

    //  The writer's next write reaches the new buffer, which takes it; the call says the
    //  buffer restarted, and says it once
    sluice_err_t rc = sluice_stream_write_timeout (writer, "c", 1, false, T_WAIT_MS);
    cr_expect_eq (rc, SLUICE_ERESTARTED, "write after the restart: %s (%s)",
                  sluice_strerror (rc), sluice_stream_error_text (writer));
    cr_expect (strstr (sluice_stream_error_text (writer), "restarted"), "error text: %s",
               sluice_stream_error_text (writer));
    T_WRITE (writer, "d");

    //  The reader too; the chunk in the reply it refused is not lost: it comes again
    sluice_chunk_t chunk;
    rc = sluice_stream_read_timeout (reader, &chunk, T_WAIT_MS);
    cr_expect_eq (rc, SLUICE_ERESTARTED, "read after the restart: %s (%s)",
                  sluice_strerror (rc), sluice_stream_error_text (reader));
    T_EXPECT_CHUNK (reader, "c");
    T_EXPECT_CHUNK (reader, "d");
}
