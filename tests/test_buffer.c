/*  test_buffer.c - the buffer actor and its client over inproc://.

    The core suite (every command, every error, close waking everyone, drain, FIFO among
    waiters, racing writers, timeouts, iteration, events) is in buffer_cases.h and also runs
    over tcp in test_buffer_tcp.c. This file adds what only makes sense once: option checks,
    bind failures, the error and command tables, handles and destruction.
*/
#define CASES_SUITE buffer
#include "buffer_cases.h"

TestSuite (buffer_api, .init = t_fx_init, .fini = t_fx_fini, .timeout = T_SUITE_TIMEOUT);

T_TEST (buffer_api, new_rejects_invalid_options)
{
    char ep [256];
    t_bind_endpoint (ep, sizeof ep, "bad");
    sluice_err_t err = SLUICE_OK;
    sluice_buffer_opts_t opts = { .endpoint = ep, .capacity = 0 };
    sluice_buffer_t *b = sluice_buffer_new (&opts, &err);
    cr_expect_null (b, "capacity 0 accepted");
    cr_expect_eq (err, SLUICE_EINVAL, "capacity 0: %s", sluice_strerror (err));
    sluice_buffer_destroy (&b);

    err = SLUICE_OK;
    opts = (sluice_buffer_opts_t) { .endpoint = NULL, .capacity = 3 };
    b = sluice_buffer_new (&opts, &err);
    cr_expect_null (b, "NULL endpoint accepted");
    cr_expect_eq (err, SLUICE_EINVAL, "NULL endpoint: %s", sluice_strerror (err));
    sluice_buffer_destroy (&b);

    err = SLUICE_OK;
    b = sluice_buffer_new (NULL, &err);
    cr_expect_null (b, "NULL options accepted");
    cr_expect_eq (err, SLUICE_EINVAL);
    sluice_buffer_destroy (&b);

    //  err may be NULL
    b = sluice_buffer_new (NULL, NULL);
    cr_expect_null (b);
}

T_TEST (buffer_api, new_reports_a_failed_bind)
{
    sluice_err_t err = SLUICE_OK;
    sluice_buffer_opts_t opts = { .endpoint = "nosuchtransport://x", .capacity = 1 };
    sluice_buffer_t *b = sluice_buffer_new (&opts, &err);
    cr_expect_null (b, "bind to a bogus endpoint succeeded");
    cr_expect_eq (err, SLUICE_ETRANSPORT, "bogus endpoint: %s", sluice_strerror (err));
    sluice_buffer_destroy (&b);

    //  the same inproc endpoint twice: the second bind fails, the first buffer still serves
    t_start (1);
    err = SLUICE_OK;
    opts = (sluice_buffer_opts_t) { .endpoint = t_fx.endpoint, .capacity = 1 };
    b = sluice_buffer_new (&opts, &err);
    cr_expect_null (b, "two buffers bound at %s", t_fx.endpoint);
    cr_expect_eq (err, SLUICE_ETRANSPORT, "second bind: %s", sluice_strerror (err));
    sluice_buffer_destroy (&b);
    T_WRITE (t_fx.cli, "first-still-works");
    T_EXPECT_CHUNK (t_fx.cli, "first-still-works");

    //  a bad events endpoint fails the whole start
    char ep [256];
    t_bind_endpoint (ep, sizeof ep, "ok");
    err = SLUICE_OK;
    opts = (sluice_buffer_opts_t) { .endpoint = ep, .events_endpoint = "nosuchtransport://y",
                                    .capacity = 1 };
    b = sluice_buffer_new (&opts, &err);
    cr_expect_null (b, "bind of a bogus events endpoint succeeded");
    cr_expect_eq (err, SLUICE_ETRANSPORT, "bogus events endpoint: %s", sluice_strerror (err));
    sluice_buffer_destroy (&b);
}

T_TEST (buffer_api, endpoints_and_handle)
{
    char ep [256], ev [256];
    t_bind_endpoint (ep, sizeof ep, "router");
    t_bind_endpoint (ev, sizeof ev, "events");
    sluice_buffer_opts_t opts = { .endpoint = ep, .events_endpoint = ev, .capacity = 2 };
    sluice_err_t err = SLUICE_EINTERNAL;
    t_fx.buf = sluice_buffer_new (&opts, &err);
    cr_assert_not_null (t_fx.buf, "%s", sluice_strerror (err));
    cr_expect_str_eq (sluice_buffer_endpoint (t_fx.buf), ep);
    cr_expect_str_eq (sluice_buffer_events_endpoint (t_fx.buf), ev);
    cr_expect_not_null (sluice_buffer_actor_handle (t_fx.buf));
}

T_TEST (buffer_api, stream_new_rejects_an_invalid_endpoint)
{
    sluice_stream_t *s = sluice_stream_new ("not an endpoint");
    cr_expect_null (s);
    sluice_stream_destroy (&s);
    s = sluice_stream_new (NULL);
    cr_expect_null (s);
    sluice_stream_destroy (&s);
}

T_TEST (buffer_api, destroy_of_null_is_harmless)
{
    sluice_buffer_t *b = NULL;
    sluice_buffer_destroy (&b);
    cr_expect_null (b);
    sluice_stream_t *s = NULL;
    sluice_stream_destroy (&s);
    cr_expect_null (s);
}

T_TEST (buffer_api, destroy_sets_the_handle_to_null)
{
    t_start (1);
    sluice_buffer_destroy (&t_fx.buf);
    cr_expect_null (t_fx.buf);
    sluice_stream_destroy (&t_fx.streams [0]);
    cr_expect_null (t_fx.streams [0]);
    t_fx.cli = NULL;
}

T_TEST (buffer_api, calls_after_the_buffer_is_destroyed_fail_with_etransport)
{
    t_start (1);
    T_WRITE (t_fx.cli, "x");
    sluice_buffer_destroy (&t_fx.buf);
    sluice_stream_set_grace (t_fx.cli, 200);
    sluice_chunk_t c;
    sluice_err_t rc = sluice_stream_read_timeout (t_fx.cli, &c, 0);
    cr_assert_eq (rc, SLUICE_ETRANSPORT, "read from a destroyed buffer: %s",
                  sluice_strerror (rc));
    cr_expect_neq (sluice_stream_error_text (t_fx.cli) [0], '\0');
}

T_TEST (buffer_api, destroy_with_parked_clients_returns)
{
    t_start (1);
    static t_op_t r;
    t_op_read (&r, 300);
    t_park_op (&r, 1);
    sluice_buffer_destroy (&t_fx.buf);       //  must not wait for the parked read
    t_join_all ();
    //  the read got no reply from the actor: the client gave up on its own
    cr_expect_eq (r.rc, SLUICE_ETRANSPORT, "got %s", sluice_strerror (r.rc));
}

T_TEST (buffer_api, strerror_names_every_code)
{
    for (int i = 0; i < SLUICE_ERR_COUNT_; i++) {
        const char *text = sluice_strerror (i);
        cr_assert_not_null (text, "code %d", i);
        cr_assert_neq (text [0], '\0', "code %d has an empty description", i);
        for (int j = 0; j < i; j++)
            cr_expect_str_neq (text, sluice_strerror (j), "codes %d and %d share a text", i, j);
    }
    cr_expect_not_null (sluice_strerror (-1));
    cr_expect_not_null (sluice_strerror (SLUICE_ERR_COUNT_));
    cr_expect_not_null (sluice_strerror (9999));
}

T_TEST (buffer_api, command_names)
{
    cr_expect_str_eq (sluice_command_name (SLUICE_CMD_WRITE), "WRITE");
    cr_expect_str_eq (sluice_command_name (SLUICE_CMD_READ), "READ");
    cr_expect_str_eq (sluice_command_name (SLUICE_CMD_CLOSE), "CLOSE");
    cr_expect_str_eq (sluice_command_name (SLUICE_CMD_STATUS), "STATUS");
    cr_expect_null (sluice_command_name (0));
    cr_expect_null (sluice_command_name (200));
    cr_expect_null (sluice_command_name (-1));
}

T_TEST (buffer_api, two_buffers_in_one_process_are_independent)
{
    t_start (1);
    char ep [256];
    t_bind_endpoint (ep, sizeof ep, "second");
    sluice_buffer_opts_t opts = { .endpoint = ep, .capacity = 1 };
    sluice_buffer_t *b2 = sluice_buffer_new (&opts, NULL);
    cr_assert_not_null (b2);
    sluice_stream_t *s2 = sluice_stream_new (ep);
    cr_assert_not_null (s2);
    T_WRITE (t_fx.cli, "one");
    sluice_err_t rc = sluice_stream_write_str (s2, "two");
    sluice_err_t rc_close = sluice_stream_close (s2);
    sluice_chunk_t c;
    sluice_err_t rc_read = sluice_stream_read_timeout (s2, &c, T_WAIT_MS);
    bool got_two = rc_read == SLUICE_OK && c.size == 3 && memcmp (c.text, "two", 3) == 0;
    sluice_stream_destroy (&s2);
    sluice_buffer_destroy (&b2);
    cr_assert_eq (rc, SLUICE_OK);
    cr_assert_eq (rc_close, SLUICE_OK);
    cr_assert (got_two);
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.closed, false, "closing one buffer closed the other");
    cr_expect_eq (st.queued, 1);
    T_EXPECT_CHUNK (t_fx.cli, "one");
}

T_TEST (buffer_api, client_calls_reject_invalid_arguments)
{
    t_start (2);
    sluice_stream_t *s = t_fx.cli;
    cr_expect_eq (sluice_stream_read (s, NULL), SLUICE_EINVAL);
    cr_expect_eq (sluice_stream_error (s), SLUICE_EINVAL);
    cr_expect_eq (sluice_stream_read_timeout (s, NULL, 0), SLUICE_EINVAL);
    cr_expect_eq (sluice_stream_write (s, NULL, 3, false), SLUICE_EINVAL);
    cr_expect_eq (sluice_stream_write_str (s, NULL), SLUICE_EINVAL);
    cr_expect_eq (sluice_stream_status (s, NULL), SLUICE_EINVAL);
    //  nothing reached the buffer, and the client still works
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.written, 0);
    cr_expect_eq (st.parked_readers, 0);
    cr_expect_eq (sluice_stream_error (s), SLUICE_OK);
    T_WRITE (s, "ok");
    T_EXPECT_CHUNK (s, "ok");
}
