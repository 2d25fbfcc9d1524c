/*  test_model_stream.c - streaming inference: tokens out of the model server, backpressure into
    the generator, cancellation (docs/PROTOCOL.md, "Streams").

    The test model's stream function emits "<prefix>-<i>" tokens through sluice_model_emit and
    counts each one the server accepted (`emitted`); it writes a byte to the `ended` pipe when
    it returns, so a test waits on that (bounded by T_WAIT_MS, a liveness limit) to know the
    generator stopped. The window bound is asserted with counters: after the client received
    k tokens (and has no PULL outstanding) the model can have emitted at most k + window.
    Nothing sleeps. The core tests run again over tcp (suite stream_tcp).
*/
#include <criterion/criterion.h>
#include <czmq.h>
#include "pipe_byte.h"
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "sluice_conn.h"
#include "sluice.h"

#define T_SUITE_TIMEOUT  60
#define T_WAIT_MS        15000
#define T_WINDOW         4

// ---------------------------------------------------------------------------------------------
//  The test model

typedef struct {
    int load_gate [2];
    int ended [2];                 //  a byte each time a stream function returns
    bool gate_load;
    const char *fail_reason;
    atomic_long emitted;           //  tokens the server accepted, all streams
    atomic_int cancelled_seen;     //  emits that returned SLUICE_ECLOSED
    atomic_int bad_calls;
} t_model_t;

static t_model_t t_model;

static sluice_err_t
t_load (sluice_model_ctx_t *ctx, void *config, void **model, char *reason, size_t reason_size)
{
    t_model_t *self = (t_model_t *) config;
    if (self->gate_load && sluice_model_wait (ctx, self->load_gate [0], T_WAIT_MS) != 1) {
        snprintf (reason, reason_size, "load cancelled");
        return SLUICE_ESHUTDOWN;
    }
    if (self->fail_reason) {
        snprintf (reason, reason_size, "%s", self->fail_reason);
        return SLUICE_ELOADFAIL;
    }
    *model = self;
    return SLUICE_OK;
}

static sluice_err_t
t_infer (sluice_model_ctx_t *ctx, void *config, void *model, const void *payload, size_t size,
         char **response, size_t *response_size)
{
    //  Outside a stream there is nothing to emit to
    if (sluice_model_emit (ctx, "x", 1) != SLUICE_EINVAL)
        atomic_fetch_add (&((t_model_t *) config)->bad_calls, 1);
    *response = zsys_sprintf ("Response %s", (const char *) payload);
    *response_size = strlen (*response);
    return SLUICE_OK;
}

//  Payload "PREFIX COUNT [fail]": COUNT tokens "PREFIX-i" (COUNT 0: until cancelled), then the
//  end, or EINTERNAL "boom" with "fail".
static sluice_err_t
t_stream (sluice_model_ctx_t *ctx, void *config, void *model, const void *payload, size_t size,
          char **reason)
{
    t_model_t *self = (t_model_t *) config;
    char prefix [32] = "";
    long count = 0;
    char fail [8] = "";
    sscanf ((const char *) payload, "%31s %ld %7s", prefix, &count, fail);
    sluice_err_t rc = SLUICE_OK;
    for (long index = 0; count == 0 || index < count; index++) {
        char token [64];
        snprintf (token, sizeof token, "%s-%ld", prefix, index);
        rc = sluice_model_emit (ctx, token, strlen (token));
        if (rc != SLUICE_OK) {
            if (rc == SLUICE_ECLOSED)
                atomic_fetch_add (&self->cancelled_seen, 1);
            break;
        }
        atomic_fetch_add (&self->emitted, 1);
    }
    if (rc == SLUICE_OK && streq (fail, "fail")) {
        *reason = strdup ("boom");
        rc = SLUICE_EINTERNAL;
    }
    t_write_byte (self->ended [1]);
    return rc;
}

static sluice_model_iface_t t_iface = {
    .name = "stream-model", .config = &t_model,
    .load = t_load, .infer = t_infer, .stream = t_stream,
};

//  Wait until a stream function has returned
static void
t_wait_ended (void)
{
    zmq_pollitem_t item = { NULL, t_model.ended [0], ZMQ_POLLIN, 0 };
    cr_assert_eq (zmq_poll (&item, 1, T_WAIT_MS), 1, "the generator never stopped");
    char byte;
    cr_assert_eq (read (t_model.ended [0], &byte, 1), 1);
}

// ---------------------------------------------------------------------------------------------
//  Fixture

static struct {
    bool tcp;
    sluice_model_server_t *server;
    char endpoint [256];
    sluice_model_client_t *cli;
    unsigned serial;
} t_fx;

static void
t_init (void)
{
    memset (&t_fx, 0, sizeof t_fx);
    memset (&t_model, 0, sizeof t_model);
    cr_assert_eq (pipe (t_model.load_gate), 0);
    cr_assert_eq (pipe (t_model.ended), 0);
}

static void
t_init_tcp (void)
{
    t_init ();
    t_fx.tcp = true;
}

static void
t_fini (void)
{
    t_write_byte (t_model.load_gate [1]);
    sluice_model_client_destroy (&t_fx.cli);
    sluice_model_server_destroy (&t_fx.server);
    cr_expect_eq (atomic_load (&t_model.bad_calls), 0);
    for (int i = 0; i < 2; i++) {
        close (t_model.load_gate [i]);
        close (t_model.ended [i]);
    }
}

static sluice_model_client_t *
t_client (void)
{
    sluice_model_client_t *client = sluice_model_client_new (t_fx.endpoint);
    cr_assert_not_null (client);
    return client;
}

static size_t t_max_pending;     //  0: the default

static sluice_model_exec_t t_exec;
static sluice_model_iface_t t_exec_iface = {
    .name = "exec-model", .config = &t_exec,
    .load = sluice_model_exec_load, .infer = sluice_model_exec_infer,
    .stream = sluice_model_exec_stream,
};

//  A server with the test model (sim NULL), the simulated one, or the exec model
static void
t_start_model (size_t workers, const sluice_model_sim_t *sim, const sluice_model_iface_t *model)
{
    char ep [256];
    if (t_fx.tcp)
        snprintf (ep, sizeof ep, "tcp://127.0.0.1:0");
    else
        snprintf (ep, sizeof ep, "inproc://stream-%s-%u",
                  criterion_current_test ? criterion_current_test->name : "test", t_fx.serial++);
    sluice_model_server_opts_t opts = {
        .endpoint = ep, .model = sim ? NULL : model ? model : &t_iface, .workers = workers,
        .window = T_WINDOW, .max_pending = t_max_pending,
    };
    if (sim)
        opts.sim = *sim;
    sluice_err_t err = SLUICE_EINTERNAL;
    t_fx.server = sluice_model_server_new (&opts, &err);
    cr_assert_not_null (t_fx.server, "server: %s", sluice_strerror (err));
    snprintf (t_fx.endpoint, sizeof t_fx.endpoint, "%s", sluice_model_server_endpoint (t_fx.server));
    t_fx.cli = t_client ();
}

static void
t_start_with (size_t workers, const sluice_model_sim_t *sim)
{
    t_start_model (workers, sim, NULL);
}

static void
t_start (size_t workers)
{
    t_start_with (workers, NULL);
}

static void
t_start_exec (const char *command, const char *load_command)
{
    t_exec = (sluice_model_exec_t) { .command = command, .load_command = load_command };
    t_start_model (1, NULL, &t_exec_iface);
}

//  Take a stream to its end; returns its tokens concatenated (malloc'd) and its last status
static char *
t_drain (uint64_t id, sluice_err_t *status)
{
    size_t held = 0, capacity = 1024;
    char *text = (char *) malloc (capacity);
    cr_assert_not_null (text);
    bool end = false;
    sluice_err_t rc = SLUICE_OK;
    while (!end && rc == SLUICE_OK) {
        size_t count = 0;
        rc = sluice_model_client_next (t_fx.cli, id, 16, SLUICE_FOREVER, &count, &end);
        for (size_t i = 0; rc == SLUICE_OK && i < count; i++) {
            size_t size;
            const char *data = (const char *) sluice_model_client_token (t_fx.cli, i, &size);
            while (held + size + 1 > capacity)
                cr_assert_not_null (text = (char *) realloc (text, capacity *= 2));
            memcpy (text + held, data, size);
            held += size;
        }
    }
    text [held] = 0;
    *status = rc;
    return text;
}

static sluice_model_status_t
t_status (void)
{
    sluice_model_status_t st;
    cr_assert_eq (sluice_model_client_status (t_fx.cli, &st), SLUICE_OK);
    return st;
}

#define T_WAIT_STATUS(st, cond) do {                                                         \
    int64_t t_deadline_ = zclock_mono () + T_WAIT_MS;                                        \
    for (;;) {                                                                               \
        st = t_status ();                                                                    \
        if (cond) break;                                                                     \
        cr_assert (zclock_mono () < t_deadline_, "gave up waiting for %s", #cond);           \
    }                                                                                        \
} while (0)

static uint64_t
t_stream_start (sluice_model_client_t *client, const char *payload)
{
    uint64_t id = 0;
    sluice_err_t rc = sluice_model_client_stream (client, payload, strlen (payload),
                                                  SLUICE_FOREVER, &id);
    cr_assert_eq (rc, SLUICE_OK, "stream: %s (%s)", sluice_strerror (rc),
                  sluice_model_client_error_text (client));
    cr_assert_neq (id, 0);
    return id;
}

//  Take up to max tokens; checks each is the next one of `prefix` (*next counts them).
//  Returns true at the end of the stream.
static bool
t_take (sluice_model_client_t *client, uint64_t id, size_t max, const char *prefix, long *next)
{
    size_t count = 0;
    bool end = false;
    sluice_err_t rc = sluice_model_client_next (client, id, max, SLUICE_FOREVER, &count, &end);
    cr_assert_eq (rc, SLUICE_OK, "next: %s (%s)", sluice_strerror (rc),
                  sluice_model_client_error_text (client));
    cr_assert (count <= max);
    cr_assert (count > 0 || end, "a reply without a token is the end");
    for (size_t index = 0; index < count; index++) {
        size_t size = 0;
        const char *data = (const char *) sluice_model_client_token (client, index, &size);
        char expected [64];
        snprintf (expected, sizeof expected, "%s-%ld", prefix, (*next)++);
        cr_assert_eq (size, strlen (expected));
        cr_assert (memcmp (data, expected, size) == 0, "token %.*s, expected %s",
                   (int) size, data, expected);
    }
    return end;
}

// ---------------------------------------------------------------------------------------------
//  Tests (run on inproc and tcp)

static void
t_tokens_in_order_exactly_once (void)
{
    t_start (2);
    const char *prefixes [3] = { "a", "b", "c" };
    uint64_t ids [3];
    long next [3] = { 0, 0, 0 };
    bool ended [3] = { false, false, false };
    char payload [64];
    for (int s = 0; s < 3; s++) {
        snprintf (payload, sizeof payload, "%s 50", prefixes [s]);
        ids [s] = t_stream_start (t_fx.cli, payload);
    }
    //  Three streams on two workers: the third waits for a worker, so it can only start once
    //  one of the first two was taken to its end; pulls of varying sizes
    for (int turn = 0; !(ended [0] && ended [1] && ended [2]); turn++)
        for (int s = 0; s < 3; s++)
            if (!ended [s] && (s < 2 || ended [0] || ended [1]))
                ended [s] = t_take (t_fx.cli, ids [s], (size_t) (turn % 7) + 1, prefixes [s],
                                    &next [s]);
    for (int s = 0; s < 3; s++)
        cr_assert_eq (next [s], 50, "stream %s delivered %ld tokens", prefixes [s], next [s]);
    //  The stream is gone once its end was delivered
    size_t count;
    bool end;
    cr_assert_eq (sluice_model_client_next (t_fx.cli, ids [0], 1, 0, &count, &end), SLUICE_ECLOSED);
    sluice_model_status_t st = t_status ();
    cr_assert_eq (st.generated, 150);
    cr_assert_eq (st.delivered, 150);
    cr_assert_eq (st.streams, 0);
    cr_assert_eq (st.window, T_WINDOW);
}

static void
t_slow_reader_pauses_the_generator (void)
{
    t_start (1);
    uint64_t id = t_stream_start (t_fx.cli, "s 200");
    //  The generator fills the window, then must wait for us
    sluice_model_status_t st;
    T_WAIT_STATUS (st, st.generated == T_WINDOW);
    long received = 0;
    bool end = false;
    while (!end) {
        end = t_take (t_fx.cli, id, 1, "s", &received);
        //  No PULL outstanding: the server has sent exactly `received` tokens
        long emitted = atomic_load (&t_model.emitted);
        cr_assert_leq (emitted - received, T_WINDOW, "emitted %ld, received %ld", emitted, received);
        st = t_status ();
        cr_assert_leq (st.generated - st.delivered, T_WINDOW);
    }
    cr_assert_eq (received, 200);
    cr_assert_eq (atomic_load (&t_model.emitted), 200);
}

static void
t_cancel_stops_the_generator_and_frees_its_worker (void)
{
    t_start (1);
    uint64_t id = t_stream_start (t_fx.cli, "f 0");       //  endless
    long received = 0;
    for (int i = 0; i < 10; i++)
        t_take (t_fx.cli, id, 3, "f", &received);
    cr_assert_eq (sluice_model_client_cancel (t_fx.cli, id), SLUICE_OK);
    t_wait_ended ();
    cr_assert_eq (atomic_load (&t_model.cancelled_seen), 1);
    cr_assert_leq (atomic_load (&t_model.emitted) - received, T_WINDOW);
    //  Gone for the client; the one worker serves again
    size_t count;
    bool end;
    cr_assert_eq (sluice_model_client_next (t_fx.cli, id, 1, 0, &count, &end), SLUICE_ECLOSED);
    cr_assert_eq (sluice_model_client_cancel (t_fx.cli, id), SLUICE_ECLOSED);
    char *response = NULL;
    cr_assert_eq (sluice_model_client_request (t_fx.cli, "x", 1, &response), SLUICE_OK);
    cr_assert_str_eq (response, "Response x");
    free (response);
    sluice_model_status_t st = t_status ();
    cr_assert_eq (st.cancelled, 1);
    cr_assert_eq (st.streams, 0);
    cr_assert_eq (st.inflight, 0);
}

static void
t_vanished_client_cancels_its_streams (void)
{
    t_start (1);
    sluice_model_client_t *other = t_client ();
    uint64_t id = t_stream_start (other, "v 0");
    long received = 0;
    t_take (other, id, 1, "v", &received);
    sluice_model_client_destroy (&other);
    //  The engine's sweep finds the client gone and cancels its stream
    t_wait_ended ();
    cr_assert_eq (atomic_load (&t_model.cancelled_seen), 1);
    sluice_model_status_t st;
    T_WAIT_STATUS (st, st.cancelled == 1 && st.streams == 0 && st.inflight == 0);
    char *response = NULL;
    cr_assert_eq (sluice_model_client_request (t_fx.cli, "y", 1, &response), SLUICE_OK);
    free (response);
}

typedef struct {
    const char *endpoint;
    const char *payload;
    sluice_err_t rc;
    uint64_t id;
    bool parked;
    char text [128];
} t_call_t;

static void *
t_stream_thread (void *args)
{
    t_call_t *call = (t_call_t *) args;
    sluice_model_client_t *client = sluice_model_client_new (call->endpoint);
    if (!client)
        return NULL;
    call->rc = sluice_model_client_stream (client, call->payload, strlen (call->payload),
                                           SLUICE_FOREVER, &call->id);
    call->parked = sluice_model_client_was_parked (client);
    snprintf (call->text, sizeof call->text, "%s", sluice_model_client_error_text (client));
    //  Take the stream to its end on this connection (it is this client's)
    size_t count;
    bool end = false;
    while (call->rc == SLUICE_OK && !end
       &&  sluice_model_client_next (client, call->id, 16, T_WAIT_MS, &count, &end) == SLUICE_OK)
        ;
    sluice_model_client_destroy (&client);
    return NULL;
}

//  Two streaming requests parked during the load; then `how` ends the load
static void
t_parked_streams (const char *how, sluice_err_t expected, const char *text)
{
    t_model.gate_load = true;
    t_model.fail_reason = streq (how, "fail") ? "out of GPU memory" : NULL;
    t_start (2);
    t_call_t calls [2] = {
        { .endpoint = t_fx.endpoint, .payload = "p 5", .rc = SLUICE_EINTERNAL },
        { .endpoint = t_fx.endpoint, .payload = "q 5", .rc = SLUICE_EINTERNAL },
    };
    pthread_t threads [2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq (pthread_create (&threads [i], NULL, t_stream_thread, &calls [i]), 0);
    sluice_model_status_t st;
    T_WAIT_STATUS (st, st.parked == 2);
    if (streq (how, "shutdown"))
        cr_assert_eq (sluice_model_client_shutdown (t_fx.cli), SLUICE_OK);
    else
        t_write_byte (t_model.load_gate [1]);
    for (int i = 0; i < 2; i++) {
        pthread_join (threads [i], NULL);
        cr_assert_eq (calls [i].rc, expected, "stream %d: %s (%s)", i,
                      sluice_strerror (calls [i].rc), calls [i].text);
        cr_assert (calls [i].parked, "released from parking");
        if (text)
            cr_assert_str_eq (calls [i].text, text);
    }
    if (expected == SLUICE_OK) {
        cr_assert_neq (calls [0].id, calls [1].id);
        T_WAIT_STATUS (st, st.delivered == 10 && st.streams == 0);
    }
}

static void
t_parked_streams_released_together (void)
{
    t_parked_streams ("ready", SLUICE_OK, NULL);
}

static void
t_load_failure_reaches_stream_waiters (void)
{
    t_parked_streams ("fail", SLUICE_ELOADFAIL, "out of GPU memory");
}

static void
t_shutdown_reaches_stream_waiters (void)
{
    t_parked_streams ("shutdown", SLUICE_ESHUTDOWN, "Server is shutting down");
}

//  A raw call on the client's connection: status, and the reply text in text
static sluice_err_t
t_raw (sluice_conn_t *conn, uint8_t command, uint8_t flags, uint32_t count, const void *body,
       size_t size)
{
    return sluice_conn_call (conn, command, flags, 0, count, body, size);
}

static void
t_malformed_streaming_requests_get_errors (void)
{
    t_start (1);
    uint64_t id = t_stream_start (t_fx.cli, "m 20");
    long received = 0;
    t_take (t_fx.cli, id, 2, "m", &received);
    sluice_conn_t conn;
    cr_assert_eq (sluice_conn_init (&conn, t_fx.endpoint, NULL), SLUICE_OK);
    uint8_t good [8], unknown [8];
    sluice_put64 (good, id);
    sluice_put64 (unknown, id + 1000);
    struct { uint8_t command, flags; uint32_t count; const void *body; size_t size;
             sluice_err_t rc; const char *text; } cases [] = {
        { SLUICE_CMD_PULL, 0, 1, NULL, 0, SLUICE_EPROTO, "PULL needs exactly one stream id frame after the header" },
        { SLUICE_CMD_PULL, 0, 1, good, 7, SLUICE_EPROTO, "PULL needs a 8-byte stream id frame" },
        { SLUICE_CMD_PULL, 0, 0, good, 8, SLUICE_EPROTO, "PULL count must be 1..1024" },
        { SLUICE_CMD_PULL, 0, 1025, good, 8, SLUICE_EPROTO, "PULL count must be 1..1024" },
        { SLUICE_CMD_PULL, SLUICE_FLAG_STREAM, 1, good, 8, SLUICE_EPROTO, "PULL takes no flags" },
        { SLUICE_CMD_PULL, 0, 1, unknown, 8, SLUICE_ECLOSED, "no such stream: it ended, was cancelled or never started" },
        { SLUICE_CMD_CANCEL, 0, 0, NULL, 0, SLUICE_EPROTO, "CANCEL needs exactly one stream id frame after the header" },
        { SLUICE_CMD_CANCEL, 0, 0, "x", 1, SLUICE_EPROTO, "CANCEL needs a 8-byte stream id frame" },
        { SLUICE_CMD_CANCEL, 0, 0, unknown, 8, SLUICE_ECLOSED, "no such stream: it ended, was cancelled or never started" },
        { SLUICE_CMD_REQUEST, 0x20, 0, "x", 1, SLUICE_EPROTO, "REQUEST accepts only the STREAM flag" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        sluice_err_t rc = t_raw (&conn, cases [i].command, cases [i].flags, cases [i].count,
                                 cases [i].body, cases [i].size);
        cr_assert_eq (rc, cases [i].rc, "case %zu: %s (%s)", i, sluice_strerror (rc), conn.error_text);
        cr_assert_str_eq (conn.error_text, cases [i].text, "case %zu", i);
    }
    sluice_conn_fini (&conn);
    //  State intact: the stream goes on to its end, exactly once
    while (!t_take (t_fx.cli, id, 5, "m", &received))
        ;
    cr_assert_eq (received, 20);
}

static void
t_model_failure_ends_the_stream (void)
{
    t_start (1);
    uint64_t id = t_stream_start (t_fx.cli, "e 3 fail");
    long received = 0;
    while (received < 3)
        cr_assert_not (t_take (t_fx.cli, id, 10, "e", &received));
    size_t count;
    bool end = false;
    cr_assert_eq (sluice_model_client_next (t_fx.cli, id, 10, SLUICE_FOREVER, &count, &end),
                  SLUICE_EINTERNAL);
    cr_assert (end);
    cr_assert_str_eq (sluice_model_client_error_text (t_fx.cli), "boom");
    cr_assert_eq (sluice_model_client_next (t_fx.cli, id, 1, 0, &count, &end), SLUICE_ECLOSED);
}

// ---------------------------------------------------------------------------------------------

TestSuite (stream, .init = t_init, .fini = t_fini, .timeout = T_SUITE_TIMEOUT);

Test (stream, tokens_in_order_exactly_once) { t_tokens_in_order_exactly_once (); }
Test (stream, slow_reader_pauses_the_generator) { t_slow_reader_pauses_the_generator (); }
Test (stream, cancel_stops_the_generator_and_frees_its_worker) { t_cancel_stops_the_generator_and_frees_its_worker (); }
Test (stream, vanished_client_cancels_its_streams) { t_vanished_client_cancels_its_streams (); }
Test (stream, parked_streams_released_together) { t_parked_streams_released_together (); }
Test (stream, load_failure_reaches_stream_waiters) { t_load_failure_reaches_stream_waiters (); }
Test (stream, shutdown_reaches_stream_waiters) { t_shutdown_reaches_stream_waiters (); }
Test (stream, malformed_streaming_requests_get_errors) { t_malformed_streaming_requests_get_errors (); }
Test (stream, model_failure_ends_the_stream) { t_model_failure_ends_the_stream (); }

Test (stream, pull_with_nothing_ready_times_out)
{
    t_model.gate_load = true;
    t_start (1);
    //  Timeout 0 while loading: the streaming request cannot wait
    uint64_t id = 0;
    cr_assert_eq (sluice_model_client_stream (t_fx.cli, "t 1", 3, 0, &id), SLUICE_ETIMEOUT);
    t_write_byte (t_model.load_gate [1]);
    cr_assert_eq (sluice_model_client_wait_ready (t_fx.cli, T_WAIT_MS), SLUICE_OK);
    id = t_stream_start (t_fx.cli, "t 0");
    //  An endless stream whose window is full and not taken: a PULL with timeout 0 gets tokens
    sluice_model_status_t st;
    T_WAIT_STATUS (st, st.generated == T_WINDOW);
    size_t count;
    bool end;
    cr_assert_eq (sluice_model_client_next (t_fx.cli, id, 10, 0, &count, &end), SLUICE_OK);
    cr_assert_eq (count, T_WINDOW);
    cr_assert_eq (sluice_model_client_cancel (t_fx.cli, id), SLUICE_OK);
    t_wait_ended ();
}

Test (stream, ended_streams_not_taken_count_against_max_pending)
{
    t_max_pending = 2;
    t_start (2);
    uint64_t first = t_stream_start (t_fx.cli, "a 1");
    t_stream_start (t_fx.cli, "b 1");
    //  Both generators have ended; their tokens wait for their clients, and take room
    sluice_model_status_t st;
    T_WAIT_STATUS (st, st.generated == 2 && st.inflight == 0);
    uint64_t id = 0;
    cr_assert_eq (sluice_model_client_stream (t_fx.cli, "c 1", 3, SLUICE_FOREVER, &id), SLUICE_EBUSY);
    long received = 0;
    while (!t_take (t_fx.cli, first, 4, "a", &received))
        ;
    t_stream_start (t_fx.cli, "c 1");
}

Test (stream, shutdown_completes_accepted_streams)
{
    t_start (1);
    uint64_t id = t_stream_start (t_fx.cli, "d 30");
    cr_assert_eq (sluice_model_client_shutdown (t_fx.cli), SLUICE_OK);
    uint64_t refused = 0;
    cr_assert_eq (sluice_model_client_stream (t_fx.cli, "n 1", 3, SLUICE_FOREVER, &refused),
                  SLUICE_ESHUTDOWN);
    cr_assert_eq (sluice_model_server_wait (t_fx.server, 0), SLUICE_ETIMEOUT,
                  "stopped with a stream not drained");
    long received = 0;
    while (!t_take (t_fx.cli, id, 7, "d", &received))
        ;
    cr_assert_eq (received, 30);
    cr_assert_eq (sluice_model_server_wait (t_fx.server, T_WAIT_MS), SLUICE_OK);
}

Test (stream, simulated_model_streams_its_text)
{
    sluice_model_sim_t sim = { .text = "one two  three", .token_ms = 1 };
    t_start_with (1, &sim);
    uint64_t id = t_stream_start (t_fx.cli, "ignored");
    const char *expected [] = { "one ", "two  ", "three" };
    size_t taken = 0;
    bool end = false;
    while (!end) {
        size_t count;
        cr_assert_eq (sluice_model_client_next (t_fx.cli, id, 1, SLUICE_FOREVER, &count, &end),
                      SLUICE_OK);
        for (size_t i = 0; i < count; i++, taken++) {
            size_t size;
            const char *data = (const char *) sluice_model_client_token (t_fx.cli, i, &size);
            cr_assert_lt (taken, 3);
            cr_assert_eq (size, strlen (expected [taken]));
            cr_assert (memcmp (data, expected [taken], size) == 0);
        }
    }
    cr_assert_eq (taken, 3);
}

Test (stream, a_model_without_a_token_loop_streams_its_response)
{
    t_iface.stream = NULL;
    t_start (1);
    t_iface.stream = t_stream;
    uint64_t id = t_stream_start (t_fx.cli, "whole");
    size_t count;
    bool end = false;
    cr_assert_eq (sluice_model_client_next (t_fx.cli, id, 5, SLUICE_FOREVER, &count, &end), SLUICE_OK);
    if (!end) {
        //  The end may come in a reply of its own
        cr_assert_eq (count, 1);
        size_t size;
        const char *data = (const char *) sluice_model_client_token (t_fx.cli, 0, &size);
        cr_assert (size == 14 && memcmp (data, "Response whole", 14) == 0);
        cr_assert_eq (sluice_model_client_next (t_fx.cli, id, 5, SLUICE_FOREVER, &count, &end), SLUICE_OK);
        cr_assert (end && count == 0);
    }
}

TestSuite (stream_tcp, .init = t_init_tcp, .fini = t_fini, .timeout = T_SUITE_TIMEOUT);

Test (stream_tcp, tokens_in_order_exactly_once) { t_tokens_in_order_exactly_once (); }
Test (stream_tcp, slow_reader_pauses_the_generator) { t_slow_reader_pauses_the_generator (); }
Test (stream_tcp, cancel_stops_the_generator_and_frees_its_worker) { t_cancel_stops_the_generator_and_frees_its_worker (); }
Test (stream_tcp, vanished_client_cancels_its_streams) { t_vanished_client_cancels_its_streams (); }
Test (stream_tcp, parked_streams_released_together) { t_parked_streams_released_together (); }
Test (stream_tcp, load_failure_reaches_stream_waiters) { t_load_failure_reaches_stream_waiters (); }
Test (stream_tcp, shutdown_reaches_stream_waiters) { t_shutdown_reaches_stream_waiters (); }
Test (stream_tcp, malformed_streaming_requests_get_errors) { t_malformed_streaming_requests_get_errors (); }
Test (stream_tcp, model_failure_ends_the_stream) { t_model_failure_ends_the_stream (); }

// ---------------------------------------------------------------------------------------------
//  The exec model: an external program

TestSuite (stream_exec, .init = t_init, .fini = t_fini, .timeout = T_SUITE_TIMEOUT);

Test (stream_exec, stdout_is_streamed_and_the_payload_is_its_stdin)
{
    t_start_exec ("tr a-z A-Z; echo ' done'", NULL);
    uint64_t id = t_stream_start (t_fx.cli, "hello world");
    sluice_err_t rc;
    char *text = t_drain (id, &rc);
    cr_assert_eq (rc, SLUICE_OK, "%s", sluice_model_client_error_text (t_fx.cli));
    cr_assert_str_eq (text, "HELLO WORLD done\n");
    free (text);
    //  A plain request gets the whole output
    char *response = NULL;
    cr_assert_eq (sluice_model_client_request (t_fx.cli, "abc", 3, &response), SLUICE_OK);
    cr_assert_str_eq (response, "ABC done\n");
    free (response);
}

Test (stream_exec, backpressure_through_its_pipe_and_cancel_kills_it)
{
    //  Far more output than the pipes hold: the program must block writing it
    t_start_exec ("read n; seq 1 \"$n\"", NULL);
    uint64_t id = t_stream_start (t_fx.cli, "10000000");
    sluice_model_status_t st;
    T_WAIT_STATUS (st, st.generated == T_WINDOW);
    for (int i = 0; i < 20; i++) {
        size_t count;
        bool end;
        cr_assert_eq (sluice_model_client_next (t_fx.cli, id, 1, SLUICE_FOREVER, &count, &end),
                      SLUICE_OK);
        cr_assert_not (end);
        st = t_status ();
        cr_assert_leq (st.generated - st.delivered, T_WINDOW);
    }
    cr_assert_eq (sluice_model_client_cancel (t_fx.cli, id), SLUICE_OK);
    //  Killed, and its one worker serves the next request
    char *response = NULL;
    cr_assert_eq (sluice_model_client_request (t_fx.cli, "3", 1, &response), SLUICE_OK);
    cr_assert_str_eq (response, "1\n2\n3\n");
    free (response);
}

Test (stream_exec, a_failing_command_fails_the_stream_with_its_stderr)
{
    t_start_exec ("printf partial; echo 'no GPU' >&2; exit 3", NULL);
    uint64_t id = t_stream_start (t_fx.cli, "x");
    sluice_err_t rc;
    char *text = t_drain (id, &rc);
    cr_assert_str_eq (text, "partial");
    free (text);
    cr_assert_eq (rc, SLUICE_EINTERNAL);
    cr_assert_str_eq (sluice_model_client_error_text (t_fx.cli),
                      "the command exited with status 3: no GPU");
}

Test (stream_exec, a_command_that_exits_early_ends_its_stream)
{
    //  It reads 5 bytes of a payload larger than a pipe holds, then exits: no SIGPIPE for us
    t_start_exec ("head -c 5", NULL);
    size_t size = 1024 * 1024;
    char *payload = (char *) malloc (size + 1);
    cr_assert_not_null (payload);
    memset (payload, 'a', size);
    payload [size] = 0;
    uint64_t id = t_stream_start (t_fx.cli, payload);
    free (payload);
    sluice_err_t rc;
    char *text = t_drain (id, &rc);
    cr_assert_eq (rc, SLUICE_OK, "%s", sluice_model_client_error_text (t_fx.cli));
    cr_assert_str_eq (text, "aaaaa");
    free (text);
}

Test (stream_exec, the_load_command_decides_readiness)
{
    t_start_exec ("cat", "echo 'weights not found' >&2; exit 1");
    cr_assert_eq (sluice_model_client_wait_ready (t_fx.cli, T_WAIT_MS), SLUICE_ELOADFAIL);
    cr_assert_str_eq (sluice_model_client_error_text (t_fx.cli),
                      "load command: the command exited with status 1: weights not found");
    uint64_t id = 0;
    cr_assert_eq (sluice_model_client_stream (t_fx.cli, "x", 1, SLUICE_FOREVER, &id),
                  SLUICE_ELOADFAIL);
}

Test (stream_exec, a_load_command_that_succeeds_makes_it_ready)
{
    t_start_exec ("cat", "true");
    cr_assert_eq (sluice_model_client_wait_ready (t_fx.cli, T_WAIT_MS), SLUICE_OK);
    uint64_t id = t_stream_start (t_fx.cli, "echo");
    sluice_err_t rc;
    char *text = t_drain (id, &rc);
    cr_assert_eq (rc, SLUICE_OK);
    cr_assert_str_eq (text, "echo");
    free (text);
}
