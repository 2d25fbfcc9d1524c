/*  test_model_server.c - the model-server actor, its client and its wire protocol.

    The model is a test implementation of sluice_model_iface_t whose load and inference wait on
    gates (pipes the test writes to), so a test decides when loading ends and can hold
    inferences in flight; it records each inference's interval to prove concurrency. Nothing
    sleeps: tests wait on replies, on events, on the gates' "started" pipe, or ask the actor
    (a STATUS round trip) until it reports the expected state, bounded by T_WAIT_MS - a
    liveness limit, never a timing assertion.

    Raw DEALERs pipeline many requests without a thread each; a STATUS sent after them on the
    same DEALER is answered after they were all handled (one pipe keeps its order), so its
    reply proves they are parked. The core tests run again over tcp://127.0.0.1 (suite
    model_tcp).
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

#define T_SUITE_TIMEOUT  60        //  seconds, every suite
#define T_WAIT_MS        15000     //  liveness bound for anything a test waits on
#define T_MODEL_NAME     "test-model"
#define T_MAX_THREADS    64
#define T_MAX_DEALERS    32
#define T_MAX_INTERVALS  64

// ---------------------------------------------------------------------------------------------
//  The test model

typedef struct {
    bool gate_load;                //  load waits for t_open_load ()
    bool gate_infer;               //  inference waits for t_open_infer ()
    const char *fail_reason;       //  load fails with it (after the gate)
    int barrier;                   //  > 0: the barrier-th inference to start opens the gate
    int load_gate [2];
    int infer_gate [2];
    int started [2];               //  one byte per inference started
    pthread_mutex_t lock;
    int started_count;
    int active, max_active;
    struct { int64_t start, end; } intervals [T_MAX_INTERVALS];
    size_t interval_count;
    char order [T_MAX_INTERVALS][16];   //  payloads in the order inference started
    atomic_int loads, unloads;
    atomic_bool load_cancelled;
    atomic_int bad_calls;          //  infer saw a wrong model handle or payload (checked in fini)
} t_model_t;

static t_model_t t_model;

static sluice_err_t
t_load (sluice_model_ctx_t *ctx, void *config, void **model, char *reason, size_t reason_size)
{
    t_model_t *self = (t_model_t *) config;
    atomic_fetch_add (&self->loads, 1);
    if (self->gate_load) {
        int rc = sluice_model_wait (ctx, self->load_gate [0], T_WAIT_MS);
        if (rc == -1) {
            atomic_store (&self->load_cancelled, true);
            snprintf (reason, reason_size, "load cancelled");
            return SLUICE_ESHUTDOWN;
        }
        if (rc == 0) {
            snprintf (reason, reason_size, "the test never opened the load gate");
            return SLUICE_ETIMEOUT;
        }
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
    t_model_t *self = (t_model_t *) config;
    //  No cr_assert off the test's thread: record, and check in t_fini
    if (model != self || ((const char *) payload) [size] != '\0')
        atomic_fetch_add (&self->bad_calls, 1);
    int64_t start = zclock_usecs ();
    pthread_mutex_lock (&self->lock);
    size_t slot = self->interval_count < T_MAX_INTERVALS ? self->interval_count++ : T_MAX_INTERVALS;
    if (slot < T_MAX_INTERVALS) {
        self->intervals [slot].start = start;
        snprintf (self->order [slot], sizeof self->order [slot], "%s", (const char *) payload);
    }
    if (++self->active > self->max_active)
        self->max_active = self->active;
    bool open_gate = self->barrier > 0 && ++self->started_count == self->barrier;
    pthread_mutex_unlock (&self->lock);
    t_write_byte (self->started [1]);
    if (open_gate)
        t_write_byte (self->infer_gate [1]);

    sluice_err_t result = SLUICE_OK;
    if (self->gate_infer && sluice_model_wait (ctx, self->infer_gate [0], T_WAIT_MS) != 1)
        result = SLUICE_ETIMEOUT;

    pthread_mutex_lock (&self->lock);
    self->active--;
    if (slot < T_MAX_INTERVALS)
        self->intervals [slot].end = zclock_usecs ();
    pthread_mutex_unlock (&self->lock);

    if (result == SLUICE_OK && streq ((const char *) payload, "explode")) {
        *response = strdup ("the model exploded");
        *response_size = strlen (*response);
        return SLUICE_EINTERNAL;
    }
    *response = zsys_sprintf ("Response %s from %s", (const char *) payload, T_MODEL_NAME);
    *response_size = strlen (*response);
    return result;
}

static void
t_unload (void *config, void *model)
{
    atomic_fetch_add (&((t_model_t *) config)->unloads, 1);
}

static void
t_open_load (void)
{
    t_write_byte (t_model.load_gate [1]);
}

static void
t_open_infer (void)
{
    t_write_byte (t_model.infer_gate [1]);
}

//  Wait until n more inferences have started.
static void
t_wait_started (int n)
{
    for (int i = 0; i < n; i++) {
        zmq_pollitem_t item = { NULL, t_model.started [0], ZMQ_POLLIN, 0 };
        cr_assert_eq (zmq_poll (&item, 1, T_WAIT_MS), 1, "inference %d of %d never started", i, n);
        char byte;
        cr_assert_eq (read (t_model.started [0], &byte, 1), 1);
    }
}

// ---------------------------------------------------------------------------------------------
//  Fixture

typedef struct {
    bool tcp;
    sluice_model_server_t *server;
    char endpoint [256];
    char events [256];
    sluice_model_client_t *cli;            //  the main thread's client
    pthread_t threads [T_MAX_THREADS];
    size_t nthreads;
    zsock_t *dealers [T_MAX_DEALERS];
    size_t ndealers;
    unsigned serial;
} t_fixture_t;

static t_fixture_t t_fx;

static void
t_init (void)
{
    memset (&t_fx, 0, sizeof t_fx);
    memset (&t_model, 0, sizeof t_model);
    zsys_set_max_sockets (4096);
    cr_assert_eq (pipe (t_model.load_gate), 0);
    cr_assert_eq (pipe (t_model.infer_gate), 0);
    cr_assert_eq (pipe (t_model.started), 0);
    pthread_mutex_init (&t_model.lock, NULL);
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
    //  A clean end even when a test failed half way: open every gate so that blocked threads
    //  and workers finish, shut down so parked requests are answered, then join and destroy.
    t_open_load ();
    t_open_infer ();
    if (t_fx.server)
        sluice_model_server_shutdown (t_fx.server);
    for (size_t i = 0; i < t_fx.nthreads; i++)
        pthread_join (t_fx.threads [i], NULL);
    for (size_t i = 0; i < t_fx.ndealers; i++)
        zsock_destroy (&t_fx.dealers [i]);
    sluice_model_client_destroy (&t_fx.cli);
    sluice_model_server_destroy (&t_fx.server);
    if (atomic_load (&t_model.loads) > 0 && !t_model.fail_reason
    &&  !atomic_load (&t_model.load_cancelled))
        cr_expect_eq (atomic_load (&t_model.unloads), 1, "a loaded model is unloaded once");
    cr_expect_eq (atomic_load (&t_model.bad_calls), 0, "infer got a wrong model or payload");
    for (int i = 0; i < 2; i++) {
        close (t_model.load_gate [i]);
        close (t_model.infer_gate [i]);
        close (t_model.started [i]);
    }
    pthread_mutex_destroy (&t_model.lock);
}

static void
t_bind_endpoint (char *out, size_t size, const char *what)
{
    if (t_fx.tcp)
        snprintf (out, size, "tcp://127.0.0.1:0");
    else
        snprintf (out, size, "inproc://model-%s-%s-%s-%u",
                  criterion_current_suite ? criterion_current_suite->name : "suite",
                  criterion_current_test ? criterion_current_test->name : "test",
                  what, t_fx.serial++);
}

typedef struct {
    size_t workers;
    size_t max_pending;
    size_t peer_max_pending;
    size_t max_payload;
    bool gate_load;
    bool gate_infer;
    const char *fail;
    int barrier;
} t_cfg_t;

static sluice_model_iface_t t_iface = {
    .name = T_MODEL_NAME, .config = &t_model,
    .load = t_load, .infer = t_infer, .unload = t_unload,
};

static void
t_start (t_cfg_t cfg)
{
    t_model.gate_load = cfg.gate_load;
    t_model.gate_infer = cfg.gate_infer || cfg.barrier > 0;
    t_model.fail_reason = cfg.fail;
    t_model.barrier = cfg.barrier;
    char ep [256], ev [256];
    t_bind_endpoint (ep, sizeof ep, "router");
    t_bind_endpoint (ev, sizeof ev, "events");
    sluice_model_server_opts_t opts = {
        .endpoint = ep, .events_endpoint = ev, .model = &t_iface,
        .workers = cfg.workers, .max_pending = cfg.max_pending, .max_payload = cfg.max_payload,
        .peer_max_pending = cfg.peer_max_pending,
    };
    sluice_err_t err = SLUICE_EINTERNAL;
    t_fx.server = sluice_model_server_new (&opts, &err);
    cr_assert_not_null (t_fx.server, "sluice_model_server_new (%s): %s", ep, sluice_strerror (err));
    cr_assert_eq (err, SLUICE_OK);
    const char *bound = sluice_model_server_endpoint (t_fx.server);
    const char *events = sluice_model_server_events_endpoint (t_fx.server);
    cr_assert_not_null (bound);
    cr_assert_not_null (events);
    if (t_fx.tcp) {
        cr_assert (strncmp (bound, "tcp://127.0.0.1:", 16) == 0, "endpoint is %s", bound);
        cr_assert (!strchr (bound, '*') && !strchr (events, '*'), "wildcard port not resolved");
    }
    snprintf (t_fx.endpoint, sizeof t_fx.endpoint, "%s", bound);
    snprintf (t_fx.events, sizeof t_fx.events, "%s", events);
    t_fx.cli = sluice_model_client_new (t_fx.endpoint);
    cr_assert_not_null (t_fx.cli);
}

static sluice_model_status_t
t_status (void)
{
    sluice_model_status_t st;
    sluice_err_t rc = sluice_model_client_status (t_fx.cli, &st);
    cr_assert_eq (rc, SLUICE_OK, "status: %s (%s)", sluice_strerror (rc),
                  sluice_model_client_error_text (t_fx.cli));
    return st;
}

//  Ask the actor (each call waits on its reply) until `cond` holds on `st`; fail after T_WAIT_MS.
#define T_WAIT_STATUS(st, cond) do {                                                         \
    int64_t t_deadline_ = zclock_mono () + T_WAIT_MS;                                        \
    for (;;) {                                                                               \
        st = t_status ();                                                                    \
        if (cond) break;                                                                     \
        cr_assert (zclock_mono () < t_deadline_, "gave up waiting for %s: state %s parked "  \
                   "%llu queued %llu inflight %llu", #cond, sluice_model_state_name (st.state), \
                   (unsigned long long) st.parked, (unsigned long long) st.queued,           \
                   (unsigned long long) st.inflight);                                        \
    }                                                                                        \
} while (0)

static void
t_wait_event (const char *event, const char *detail)
{
    const char *names [] = { event, NULL };
    char name [64] = "", got [256] = "";
    sluice_err_t rc = sluice_events_wait (t_fx.events, names, T_WAIT_MS, name, sizeof name,
                                          got, sizeof got);
    cr_assert_eq (rc, SLUICE_OK, "event %s: %s", event, sluice_strerror (rc));
    cr_assert_str_eq (name, event);
    if (detail)
        cr_assert_str_eq (got, detail, "event %s detail", event);
}

// ---------------------------------------------------------------------------------------------
//  Raw DEALERs

typedef struct {
    sluice_header_t header;
    size_t frames;                 //  body frames
    char body [512];               //  first body frame, NUL-terminated
    size_t size;
} t_reply_t;

static zsock_t *
t_dealer (void)
{
    cr_assert_lt (t_fx.ndealers, T_MAX_DEALERS);
    zsock_t *dealer = zsock_new_dealer (t_fx.endpoint);
    cr_assert_not_null (dealer);
    t_fx.dealers [t_fx.ndealers++] = dealer;
    return dealer;
}

//  Send frames as given: a header (built here unless raw_header) and body frames.
static void
t_send_header (zsock_t *dealer, const sluice_header_t *header, size_t header_size,
               const char *const *bodies, size_t body_count)
{
    uint8_t bytes [SLUICE_HEADER_SIZE];
    sluice_header_encode (header, bytes);
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, bytes, header_size);
    for (size_t i = 0; i < body_count; i++)
        zmsg_addstr (msg, bodies [i]);
    cr_assert_eq (zmsg_send (&msg, dealer), 0);
}

static sluice_header_t
t_header (uint8_t command, uint32_t timeout_ms, uint64_t id)
{
    return (sluice_header_t) {
        .version = SLUICE_PROTOCOL_VERSION, .command = command,
        .timeout_ms = timeout_ms, .request_id = id,
    };
}

//  A well-formed command: body NULL for none.
static void
t_send (zsock_t *dealer, uint8_t command, uint32_t timeout_ms, uint64_t id, const char *body)
{
    sluice_header_t header = t_header (command, timeout_ms, id);
    t_send_header (dealer, &header, SLUICE_HEADER_SIZE, &body, body ? 1 : 0);
}

//  Receive the next reply, skipping the actor's liveness probes (request id 0), as clients must.
static void
t_recv (zsock_t *dealer, t_reply_t *reply)
{
    zmsg_t *msg = NULL;
    do {
        zmsg_destroy (&msg);
        memset (reply, 0, sizeof *reply);
        zmq_pollitem_t item = { zsock_resolve (dealer), 0, ZMQ_POLLIN, 0 };
        cr_assert_eq (zmq_poll (&item, 1, T_WAIT_MS), 1, "no reply within %d ms", T_WAIT_MS);
        msg = zmsg_recv (dealer);
        cr_assert_not_null (msg);
        zframe_t *header = zmsg_pop (msg);
        cr_assert_not_null (header);
        cr_assert_eq (sluice_header_decode (zframe_data (header), zframe_size (header),
                                            &reply->header), SLUICE_OK, "reply header malformed");
        zframe_destroy (&header);
    } while (reply->header.request_id == SLUICE_PROBE_ID
          && reply->header.command == SLUICE_CMD_PING);
    reply->frames = zmsg_size (msg);
    cr_assert_eq (reply->header.count, reply->frames, "count field disagrees with frames");
    zframe_t *body = zmsg_first (msg);
    if (body) {
        reply->size = zframe_size (body);
        snprintf (reply->body, sizeof reply->body, "%.*s", (int) reply->size,
                  (const char *) zframe_data (body));
    }
    zmsg_destroy (&msg);
}

//  Receive the reply to STATUS request `id` (which must be the next reply) and return a field.
static uint64_t
t_recv_status (zsock_t *dealer, uint64_t id, const char *key)
{
    t_reply_t reply;
    t_recv (dealer, &reply);
    cr_assert_eq (reply.header.command, SLUICE_CMD_STATUS,
                  "expected the STATUS reply first, got a reply to command %u status %u: %s",
                  reply.header.command, reply.header.status, reply.body);
    cr_assert_eq (reply.header.request_id, id);
    cr_assert_eq (reply.header.status, SLUICE_OK);
    uint64_t value = sluice_status_u64 (reply.body, reply.size, key, UINT64_MAX);
    cr_assert_neq (value, UINT64_MAX, "status has no %s: %s", key, reply.body);
    return value;
}

//  The "lost" counter (replies the ROUTER could not queue), which the client API does not show.
static uint64_t
t_status_lost (void)
{
    zsock_t *dealer = zsock_new_dealer (t_fx.endpoint);
    cr_assert_not_null (dealer);
    t_send (dealer, SLUICE_CMD_STATUS, 0, 1, NULL);
    uint64_t lost = t_recv_status (dealer, 1, "lost");
    zsock_destroy (&dealer);
    return lost;
}

// ---------------------------------------------------------------------------------------------
//  Client threads: one blocking request each, with its own client

typedef struct {
    int index;
    uint8_t command;               //  SLUICE_CMD_REQUEST or SLUICE_CMD_WAIT
    int timeout_ms;
    sluice_err_t rc;
    char response [256];
    char error [256];
    bool parked;
} t_call_t;

static void *
t_call_thread (void *arg)
{
    t_call_t *call = (t_call_t *) arg;
    sluice_model_client_t *client = sluice_model_client_new (t_fx.endpoint);
    if (!client) {
        call->rc = SLUICE_EINTERNAL;
        return NULL;
    }
    if (call->command == SLUICE_CMD_WAIT)
        call->rc = sluice_model_client_wait_ready (client, call->timeout_ms);
    else {
        char payload [32], *response = NULL;
        snprintf (payload, sizeof payload, "c%d", call->index);
        call->rc = sluice_model_client_request_timeout (client, payload, strlen (payload),
                                                        call->timeout_ms, &response);
        if (response)
            snprintf (call->response, sizeof call->response, "%s", response);
        free (response);
    }
    snprintf (call->error, sizeof call->error, "%s", sluice_model_client_error_text (client));
    call->parked = sluice_model_client_was_parked (client);
    sluice_model_client_destroy (&client);
    return NULL;
}

static void
t_spawn (t_call_t *call, int index, uint8_t command)
{
    cr_assert_lt (t_fx.nthreads, T_MAX_THREADS);
    *call = (t_call_t) { .index = index, .command = command, .timeout_ms = T_WAIT_MS,
                         .rc = SLUICE_EINTERNAL };
    cr_assert_eq (pthread_create (&t_fx.threads [t_fx.nthreads++], NULL, t_call_thread, call), 0);
}

static void
t_join_all (void)
{
    for (size_t i = 0; i < t_fx.nthreads; i++)
        pthread_join (t_fx.threads [i], NULL);
    t_fx.nthreads = 0;
}

//  One request on the main thread's client; expects OK and returns whether it was parked.
static bool
t_request_ok (const char *payload)
{
    char *response = NULL;
    sluice_err_t rc = sluice_model_client_request_timeout (t_fx.cli, payload, strlen (payload),
                                                           T_WAIT_MS, &response);
    cr_assert_eq (rc, SLUICE_OK, "request %s: %s (%s)", payload, sluice_strerror (rc),
                  sluice_model_client_error_text (t_fx.cli));
    char expected [256];
    snprintf (expected, sizeof expected, "Response %s from %s", payload, T_MODEL_NAME);
    cr_assert_str_eq (response, expected);
    free (response);
    return sluice_model_client_was_parked (t_fx.cli);
}

static void
t_request_fails (const char *payload, sluice_err_t expected, const char *text)
{
    char *response = (char *) "untouched";
    sluice_err_t rc = sluice_model_client_request_timeout (t_fx.cli, payload, strlen (payload),
                                                           T_WAIT_MS, &response);
    cr_assert_eq (rc, expected, "request %s: got %s (%s), expected %s", payload,
                  sluice_strerror (rc), sluice_model_client_error_text (t_fx.cli),
                  sluice_strerror (expected));
    cr_assert_null (response, "no response on error");
    if (text)
        cr_assert_str_eq (sluice_model_client_error_text (t_fx.cli), text);
}

// ---------------------------------------------------------------------------------------------
//  Core scenarios (run over inproc and over tcp)

//  1000 requests arrive while the model loads: 10 DEALERs pipelining 99 each, and 10 client
//  threads with one blocking request each. All park; once ready, all are answered.
static void
t_scenario_parked_all_answered (void)
{
    enum { DEALERS = 10, PER_DEALER = 99, THREADS = 10 };
    t_start ((t_cfg_t) { .workers = 8, .gate_load = true });
    zsock_t *dealer [DEALERS];
    uint64_t id = 1;
    for (int d = 0; d < DEALERS; d++) {
        dealer [d] = t_dealer ();
        for (int i = 0; i < PER_DEALER; i++) {
            char payload [32];
            snprintf (payload, sizeof payload, "%d", d * PER_DEALER + i);
            t_send (dealer [d], SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, id++, payload);
        }
        //  Answered after the requests ahead of it on this pipe: proves they are parked
        uint64_t status_id = id++;
        t_send (dealer [d], SLUICE_CMD_STATUS, 0, status_id, NULL);
        cr_assert_eq (t_recv_status (dealer [d], status_id, "parked"),
                      (uint64_t) (d + 1) * PER_DEALER);
    }
    t_call_t calls [THREADS];
    for (int t = 0; t < THREADS; t++)
        t_spawn (&calls [t], t, SLUICE_CMD_REQUEST);
    sluice_model_status_t st;
    T_WAIT_STATUS (st, st.parked == DEALERS * PER_DEALER + THREADS);
    cr_assert_eq (st.state, SLUICE_MODEL_LOADING);
    cr_assert_eq (st.served, 0);

    t_open_load ();
    bool seen [DEALERS * PER_DEALER] = { false };
    for (int d = 0; d < DEALERS; d++)
        for (int i = 0; i < PER_DEALER; i++) {
            t_reply_t reply;
            t_recv (dealer [d], &reply);
            cr_assert_eq (reply.header.status, SLUICE_OK, "reply %d/%d: %s", d, i, reply.body);
            cr_assert_eq (reply.header.command, SLUICE_CMD_REQUEST);
            cr_assert (reply.header.flags & SLUICE_FLAG_PARKED, "a parked reply says so");
            cr_assert_eq (reply.frames, 1);
            int n = -1;
            cr_assert_eq (sscanf (reply.body, "Response %d from " T_MODEL_NAME, &n), 1,
                          "body: %s", reply.body);
            cr_assert (n >= d * PER_DEALER && n < (d + 1) * PER_DEALER, "reply %d on dealer %d", n, d);
            cr_assert_eq (reply.header.request_id, (uint64_t) (d * (PER_DEALER + 1) + (n - d * PER_DEALER) + 1),
                          "request id echoed");
            cr_assert (!seen [n], "request %d answered twice", n);
            seen [n] = true;
        }
    t_join_all ();
    for (int t = 0; t < THREADS; t++) {
        cr_assert_eq (calls [t].rc, SLUICE_OK, "thread %d: %s (%s)", t,
                      sluice_strerror (calls [t].rc), calls [t].error);
        char expected [64];
        snprintf (expected, sizeof expected, "Response c%d from %s", t, T_MODEL_NAME);
        cr_assert_str_eq (calls [t].response, expected);
        cr_assert (calls [t].parked, "thread %d's request was parked", t);
    }
    st = t_status ();
    cr_assert_eq (st.state, SLUICE_MODEL_READY);
    cr_assert_eq (st.served, DEALERS * PER_DEALER + THREADS);
    cr_assert_eq (st.parked + st.queued + st.inflight, 0);
    cr_assert_eq (st.failed, 0);
}

//  Once ready, a request is dispatched on arrival: its reply is not flagged parked.
static void
t_scenario_after_ready (void)
{
    t_start ((t_cfg_t) { .workers = 2 });
    //  (this WAIT itself may or may not have been parked: the load is instant but concurrent)
    cr_assert_eq (sluice_model_client_wait_ready (t_fx.cli, T_WAIT_MS), SLUICE_OK,
                  "%s", sluice_model_client_error_text (t_fx.cli));
    cr_assert_not (t_request_ok ("after"), "a request after ready is not parked");
    cr_assert_not (t_request_ok ("again"));
    //  A WAIT once ready is answered at once with the model name
    zsock_t *dealer = t_dealer ();
    t_send (dealer, SLUICE_CMD_WAIT, SLUICE_WAIT_FOREVER, 7, NULL);
    t_reply_t reply;
    t_recv (dealer, &reply);
    cr_assert_eq (reply.header.status, SLUICE_OK);
    cr_assert_eq (reply.header.request_id, 7);
    cr_assert_eq (reply.header.flags & SLUICE_FLAG_PARKED, 0);
    cr_assert_str_eq (reply.body, T_MODEL_NAME);
    sluice_model_status_t st = t_status ();
    cr_assert_eq (st.state, SLUICE_MODEL_READY);
    cr_assert_str_eq (st.model, T_MODEL_NAME);
    cr_assert_eq (st.served, 2);
    cr_assert_eq (st.workers, 2);
}

//  A failed load reaches every parked request and WAIT, and every later one, with the reason.
static void
t_scenario_load_failure (void)
{
    const char *reason = "out of GPU memory: needed 80 GB, found 24 GB";
    t_start ((t_cfg_t) { .gate_load = true, .fail = reason });
    zsock_t *dealer = t_dealer ();
    for (uint64_t id = 1; id <= 20; id++)
        t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, id, "doomed");
    t_send (dealer, SLUICE_CMD_WAIT, SLUICE_WAIT_FOREVER, 21, NULL);
    t_send (dealer, SLUICE_CMD_WAIT, SLUICE_WAIT_FOREVER, 22, NULL);
    t_send (dealer, SLUICE_CMD_STATUS, 0, 23, NULL);
    cr_assert_eq (t_recv_status (dealer, 23, "parked"), 20);
    t_call_t waiter, request;
    t_spawn (&waiter, 0, SLUICE_CMD_WAIT);
    t_spawn (&request, 1, SLUICE_CMD_REQUEST);
    sluice_model_status_t st;
    T_WAIT_STATUS (st, st.parked == 21 && st.waiting == 3);

    t_open_load ();
    for (uint64_t n = 1; n <= 22; n++) {
        t_reply_t reply;
        t_recv (dealer, &reply);
        cr_assert_eq (reply.header.status, SLUICE_ELOADFAIL, "reply %llu: %s",
                      (unsigned long long) reply.header.request_id, reply.body);
        cr_assert_str_eq (reply.body, reason);
        cr_assert (reply.header.flags & SLUICE_FLAG_PARKED);
    }
    t_join_all ();
    cr_assert_eq (waiter.rc, SLUICE_ELOADFAIL);
    cr_assert_str_eq (waiter.error, reason);
    cr_assert_eq (request.rc, SLUICE_ELOADFAIL);
    cr_assert_str_eq (request.error, reason);
    //  Later callers learn it at once
    t_request_fails ("late", SLUICE_ELOADFAIL, reason);
    cr_assert_eq (sluice_model_client_wait_ready (t_fx.cli, T_WAIT_MS), SLUICE_ELOADFAIL);
    cr_assert_str_eq (sluice_model_client_error_text (t_fx.cli), reason);
    st = t_status ();
    cr_assert_eq (st.state, SLUICE_MODEL_FAILED);
    cr_assert_str_eq (st.reason, reason);
    cr_assert_eq (st.failed, 22);
    t_wait_event (SLUICE_EVENT_FAILED, reason);
}

//  Shutdown: new requests are refused while the in-flight and queued ones complete; then the
//  server reports stopped.
static void
t_scenario_shutdown (void)
{
    t_start ((t_cfg_t) { .workers = 2, .gate_infer = true });
    cr_assert_eq (sluice_model_client_wait_ready (t_fx.cli, T_WAIT_MS), SLUICE_OK);
    zsock_t *dealer = t_dealer ();
    t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, 1, "one");
    t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, 2, "two");
    t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, 3, "three");   //  queued
    t_wait_started (2);
    t_send (dealer, SLUICE_CMD_STATUS, 0, 4, NULL);
    cr_assert_eq (t_recv_status (dealer, 4, "queued"), 1);

    cr_assert_eq (sluice_model_client_shutdown (t_fx.cli), SLUICE_OK);
    t_request_fails ("refused", SLUICE_ESHUTDOWN, "Server is shutting down");
    cr_assert_eq (sluice_model_client_wait_ready (t_fx.cli, T_WAIT_MS), SLUICE_ESHUTDOWN);
    sluice_model_status_t st = t_status ();
    cr_assert_eq (st.state, SLUICE_MODEL_DRAINING);
    cr_assert_eq (st.inflight, 2);
    cr_assert_eq (st.queued, 1);
    t_wait_event (SLUICE_EVENT_DRAINING, "");
    cr_assert_eq (sluice_model_client_shutdown (t_fx.cli), SLUICE_OK, "shutdown is idempotent");

    t_open_infer ();
    const char *expected [] = { NULL, "one", "two", "three" };
    for (int n = 0; n < 3; n++) {
        t_reply_t reply;
        t_recv (dealer, &reply);
        cr_assert_eq (reply.header.status, SLUICE_OK, "%s", reply.body);
        uint64_t id = reply.header.request_id;
        cr_assert (id >= 1 && id <= 3);
        char text [64];
        snprintf (text, sizeof text, "Response %s from %s", expected [id], T_MODEL_NAME);
        cr_assert_str_eq (reply.body, text);
    }
    t_wait_event (SLUICE_EVENT_STOPPED, "");
    st = t_status ();
    cr_assert_eq (st.state, SLUICE_MODEL_STOPPED);
    cr_assert_eq (st.served, 3);
    cr_assert_eq (st.failed, 1);
    t_request_fails ("after stop", SLUICE_ESHUTDOWN, "Server is shutting down");
}

//  A subscriber that connects after READY was published learns it at once (replay).
static void
t_scenario_late_subscriber (void)
{
    t_start ((t_cfg_t) { .gate_load = true });
    t_wait_event (SLUICE_EVENT_LOADING, T_MODEL_NAME);
    t_open_load ();
    //  The server publishes READY before it answers WAIT: READY is in the past now
    cr_assert_eq (sluice_model_client_wait_ready (t_fx.cli, T_WAIT_MS), SLUICE_OK);
    t_wait_event (SLUICE_EVENT_READY, T_MODEL_NAME);
    t_wait_event (SLUICE_EVENT_READY, T_MODEL_NAME);       //  and to every later one
}

static void
t_scenario_malformed (void)
{
    t_start ((t_cfg_t) { .max_payload = 16 });
    cr_assert_eq (sluice_model_client_wait_ready (t_fx.cli, T_WAIT_MS), SLUICE_OK);
    zsock_t *dealer = t_dealer ();
    t_reply_t reply;
    struct {
        const char *what;
        sluice_header_t header;
        size_t header_size;
        const char *bodies [3];
        size_t body_count;
        sluice_err_t expected;
    } cases [] = {
        { "short header",    t_header (SLUICE_CMD_REQUEST, 0, 101), 10, { "x" }, 1, SLUICE_EPROTO },
        { "long header",     t_header (SLUICE_CMD_REQUEST, 0, 102), 20, { "x" }, 1, SLUICE_OK },
        { "bad version",     t_header (SLUICE_CMD_REQUEST, 0, 103), 20, { "x" }, 1, SLUICE_EVERSION },
        { "unknown command", t_header (99, 0, 104), 20, { NULL }, 0, SLUICE_ECOMMAND },
        { "buffer command",  t_header (SLUICE_CMD_WRITE, 0, 105), 20, { "x" }, 1, SLUICE_ECOMMAND },
        { "missing payload", t_header (SLUICE_CMD_REQUEST, 0, 106), 20, { NULL }, 0, SLUICE_EPROTO },
        { "extra frames",    t_header (SLUICE_CMD_REQUEST, 0, 107), 20, { "a", "b", "c" }, 3, SLUICE_EPROTO },
        { "status body",     t_header (SLUICE_CMD_STATUS, 0, 108), 20, { "x" }, 1, SLUICE_EPROTO },
        { "too big",         t_header (SLUICE_CMD_REQUEST, 0, 109), 20, { "0123456789abcdefX" }, 1, SLUICE_ETOOBIG },
        { "status byte set", t_header (SLUICE_CMD_REQUEST, 0, 110), 20, { "x" }, 1, SLUICE_EPROTO },
        { "flags set",       t_header (SLUICE_CMD_REQUEST, 0, 111), 20, { "x" }, 1, SLUICE_EPROTO },
        { "wait with body",  t_header (SLUICE_CMD_WAIT, 0, 112), 20, { "x" }, 1, SLUICE_EPROTO },
        { "ping with body",  t_header (SLUICE_CMD_PING, 0, 113), 20, { "x" }, 1, SLUICE_EPROTO },
        { "shutdown body",   t_header (SLUICE_CMD_SHUTDOWN, 0, 114), 20, { "x" }, 1, SLUICE_EPROTO },
    };
    cases [1].header_size = SLUICE_HEADER_SIZE;    //  (a control case: well-formed)
    cases [2].header.version = 2;
    cases [9].header.status = SLUICE_EBUSY;
    cases [10].header.flags = SLUICE_FLAG_FINAL;
    size_t malformed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        if (i == 1) {
            //  A 21-byte header is as wrong as a 10-byte one
            uint8_t bytes [SLUICE_HEADER_SIZE + 1] = { 0 };
            sluice_header_encode (&cases [i].header, bytes);
            zmsg_t *msg = zmsg_new ();
            zmsg_addmem (msg, bytes, sizeof bytes);
            zmsg_addstr (msg, "x");
            cr_assert_eq (zmsg_send (&msg, dealer), 0);
            cases [i].expected = SLUICE_EPROTO;
        }
        else
            t_send_header (dealer, &cases [i].header, cases [i].header_size, cases [i].bodies,
                           cases [i].body_count);
        t_recv (dealer, &reply);
        cr_assert_eq (reply.header.status, cases [i].expected, "%s: got %s (%s)", cases [i].what,
                      sluice_strerror (reply.header.status), reply.body);
        cr_assert_eq (reply.frames, 1, "%s: an error reply carries its reason", cases [i].what);
        cr_assert_gt (reply.size, 0, "%s: the reason is not empty", cases [i].what);
        if (cases [i].header_size >= 16)
            cr_assert_eq (reply.header.request_id, cases [i].header.request_id,
                          "%s: request id echoed", cases [i].what);
        malformed++;
    }
    //  An empty message (no header frame at all)
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, "", 0);
    cr_assert_eq (zmsg_send (&msg, dealer), 0);
    t_recv (dealer, &reply);
    cr_assert_eq (reply.header.status, SLUICE_EPROTO);
    malformed++;

    //  ... and the server still serves, with its state intact
    cr_assert_not (t_request_ok ("fine"));
    t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, 200, "raw");
    t_recv (dealer, &reply);
    cr_assert_eq (reply.header.status, SLUICE_OK);
    cr_assert_str_eq (reply.body, "Response raw from " T_MODEL_NAME);
    t_send (dealer, SLUICE_CMD_STATUS, 0, 201, NULL);
    cr_assert_eq (t_recv_status (dealer, 201, "malformed"), malformed);
    sluice_model_status_t st = t_status ();
    cr_assert_eq (st.state, SLUICE_MODEL_READY);
    cr_assert_eq (st.served, 2);
    cr_assert_eq (st.failed, 0);
}

// ---------------------------------------------------------------------------------------------
//  inproc

TestSuite (model, .init = t_init, .fini = t_fini, .timeout = T_SUITE_TIMEOUT);

Test (model, parked_requests_all_answered_once_ready)
{
    t_scenario_parked_all_answered ();
}

Test (model, request_after_ready_is_not_parked)
{
    t_scenario_after_ready ();
}

Test (model, load_failure_reaches_every_waiter)
{
    t_scenario_load_failure ();
}

Test (model, shutdown_refuses_new_requests_while_accepted_ones_complete)
{
    t_scenario_shutdown ();
}

Test (model, late_subscriber_learns_ready)
{
    t_scenario_late_subscriber ();
}

Test (model, malformed_requests_get_errors_and_server_keeps_serving)
{
    t_scenario_malformed ();
}

//  Concurrency from overlapping intervals: each inference waits until all four have started
//  (a barrier in the model). Served one at a time, the barrier would never open.
Test (model, inferences_run_concurrently)
{
    enum { N = 4 };
    t_start ((t_cfg_t) { .workers = N, .gate_load = true, .barrier = N });
    zsock_t *dealer = t_dealer ();
    for (uint64_t id = 1; id <= N; id++)
        t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, id, "overlap");
    t_send (dealer, SLUICE_CMD_STATUS, 0, 99, NULL);
    cr_assert_eq (t_recv_status (dealer, 99, "parked"), N);
    t_open_load ();
    for (int n = 0; n < N; n++) {
        t_reply_t reply;
        t_recv (dealer, &reply);
        cr_assert_eq (reply.header.status, SLUICE_OK, "%s", reply.body);
    }
    cr_assert_eq (t_model.interval_count, N);
    int64_t last_start = 0, first_end = INT64_MAX;
    for (size_t i = 0; i < t_model.interval_count; i++) {
        if (t_model.intervals [i].start > last_start)
            last_start = t_model.intervals [i].start;
        if (t_model.intervals [i].end < first_end)
            first_end = t_model.intervals [i].end;
    }
    cr_assert_lt (last_start, first_end, "every inference started before any ended");
    cr_assert_eq (t_model.max_active, N);
}

//  With one worker, requests queue inside the actor and run in arrival order.
Test (model, queued_requests_run_in_fifo_order)
{
    enum { N = 12 };
    t_start ((t_cfg_t) { .workers = 1, .gate_load = true });
    zsock_t *dealer = t_dealer ();
    for (int i = 0; i < N; i++) {
        char payload [16];
        snprintf (payload, sizeof payload, "%d", i);
        t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, (uint64_t) i + 1, payload);
    }
    t_send (dealer, SLUICE_CMD_STATUS, 0, 99, NULL);
    cr_assert_eq (t_recv_status (dealer, 99, "parked"), N);
    t_open_load ();
    for (int i = 0; i < N; i++) {
        t_reply_t reply;
        t_recv (dealer, &reply);
        cr_assert_eq (reply.header.status, SLUICE_OK);
        cr_assert_eq (reply.header.request_id, (uint64_t) i + 1, "replies in order");
    }
    for (int i = 0; i < N; i++) {
        char payload [16];
        snprintf (payload, sizeof payload, "%d", i);
        cr_assert_str_eq (t_model.order [i], payload, "inference %d ran out of order", i);
    }
    cr_assert_eq (t_model.max_active, 1);
    sluice_model_status_t st = t_status ();
    cr_assert_eq (st.served, N);
}

Test (model, admission_limit_answers_busy)
{
    t_start ((t_cfg_t) { .gate_load = true, .max_pending = 3 });
    zsock_t *dealer = t_dealer ();
    t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, 1, "a");
    t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, 2, "b");
    t_send (dealer, SLUICE_CMD_WAIT, SLUICE_WAIT_FOREVER, 3, NULL);
    t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, 4, "d");
    t_send (dealer, SLUICE_CMD_WAIT, SLUICE_WAIT_FOREVER, 5, NULL);
    t_reply_t reply;
    for (uint64_t id = 4; id <= 5; id++) {
        t_recv (dealer, &reply);
        cr_assert_eq (reply.header.request_id, id);
        cr_assert_eq (reply.header.status, SLUICE_EBUSY, "%s", reply.body);
        cr_assert_eq (reply.header.flags, 0, "refused on arrival: never parked");
        cr_assert (strstr (reply.body, "busy"), "%s", reply.body);
    }
    t_request_fails ("e", SLUICE_EBUSY, NULL);
    sluice_model_status_t st = t_status ();
    cr_assert_eq (st.parked, 2);
    cr_assert_eq (st.waiting, 1);
    cr_assert_eq (st.max_pending, 3);
    cr_assert_eq (st.failed, 2);
    t_open_load ();
    for (int n = 0; n < 3; n++) {
        t_recv (dealer, &reply);
        cr_assert_eq (reply.header.status, SLUICE_OK, "%s", reply.body);
    }
    //  Room again
    t_request_ok ("f");
}

//  One client floods past max_pending while another sends one request: the flooder alone is
//  refused beyond its connection's limit (the text names it), so the other is served.
Test (model, a_flooding_client_is_held_to_its_own_limit_and_the_others_are_served)
{
    enum { LIMIT = 10, MAX = 50, FLOOD = 60 };
    t_start ((t_cfg_t) { .gate_load = true, .max_pending = MAX, .peer_max_pending = LIMIT });
    zsock_t *flooder = t_dealer ();
    zsock_t *polite = t_dealer ();
    for (uint64_t id = 1; id <= FLOOD; id++)
        t_send (flooder, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, id, "flood");
    t_send (flooder, SLUICE_CMD_STATUS, 0, FLOOD + 1, NULL);
    t_reply_t reply;
    for (uint64_t id = LIMIT + 1; id <= FLOOD; id++) {
        t_recv (flooder, &reply);
        cr_assert_eq (reply.header.request_id, id);
        cr_assert_eq (reply.header.status, SLUICE_EBUSY, "%s", reply.body);
        cr_assert_eq (reply.header.flags & SLUICE_FLAG_PARKED, 0, "refused on arrival");
        cr_assert (strstr (reply.body, "peer-max-pending=10"), "EBUSY text: %s", reply.body);
    }
    cr_assert_eq (t_recv_status (flooder, FLOOD + 1, "parked"), LIMIT);

    //  The other client has room, and keeps it while the flood goes on
    t_send (polite, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, 1, "polite");
    t_send (flooder, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, FLOOD + 2, "more");
    t_recv (flooder, &reply);
    cr_assert_eq (reply.header.request_id, FLOOD + 2);
    cr_assert_eq (reply.header.status, SLUICE_EBUSY, "%s", reply.body);
    t_send (polite, SLUICE_CMD_STATUS, 0, 2, NULL);
    cr_assert_eq (t_recv_status (polite, 2, "parked"), LIMIT + 1);
    t_open_load ();
    t_recv (polite, &reply);
    cr_assert_eq (reply.header.request_id, 1);
    cr_assert_eq (reply.header.status, SLUICE_OK, "%s", reply.body);
    bool answered [LIMIT + 1] = { false };
    for (int n = 0; n < LIMIT; n++) {
        t_recv (flooder, &reply);      //  workers finish in any order
        uint64_t id = reply.header.request_id;
        cr_assert (id >= 1 && id <= LIMIT && !answered [id], "reply to request %" PRIu64, id);
        answered [id] = true;
        cr_assert_eq (reply.header.status, SLUICE_OK, "%s", reply.body);
    }
    //  Its own requests answered, the flooder has room again
    t_send (flooder, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, FLOOD + 3, "again");
    t_recv (flooder, &reply);
    cr_assert_eq (reply.header.request_id, FLOOD + 3);
    cr_assert_eq (reply.header.status, SLUICE_OK, "%s", reply.body);
}

Test (model, deadlines_are_answered_by_the_actor)
{
    t_start ((t_cfg_t) { .workers = 1, .gate_load = true, .gate_infer = true });
    char *response = NULL;
    //  While loading: parked, then answered SLUICE_ETIMEOUT by the actor at the deadline
    sluice_err_t rc = sluice_model_client_request_timeout (t_fx.cli, "x", 1, 50, &response);
    cr_assert_eq (rc, SLUICE_ETIMEOUT, "%s", sluice_strerror (rc));
    cr_assert_null (response);
    cr_assert_str_eq (sluice_model_client_error_text (t_fx.cli),
                      "timed out: the model is still loading");
    cr_assert (sluice_model_client_was_parked (t_fx.cli));
    rc = sluice_model_client_request_timeout (t_fx.cli, "y", 1, 0, &response);
    cr_assert_eq (rc, SLUICE_ETIMEOUT, "timeout 0 never parks");
    cr_assert_not (sluice_model_client_was_parked (t_fx.cli));
    cr_assert_eq (sluice_model_client_wait_ready (t_fx.cli, 50), SLUICE_ETIMEOUT);
    cr_assert_str_eq (sluice_model_client_error_text (t_fx.cli),
                      "timed out waiting for the model to load");
    //  A timed-out request is gone; one without a deadline stays
    zsock_t *dealer = t_dealer ();
    t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, 1, "kept");
    t_send (dealer, SLUICE_CMD_REQUEST, 30, 2, "dropped");
    t_reply_t reply;
    t_recv (dealer, &reply);
    cr_assert_eq (reply.header.request_id, 2);
    cr_assert_eq (reply.header.status, SLUICE_ETIMEOUT);
    cr_assert (reply.header.flags & SLUICE_FLAG_PARKED);
    sluice_model_status_t st = t_status ();
    cr_assert_eq (st.parked, 1);
    cr_assert_eq (st.waiting, 0);
    //  Ready, the one worker busy: a request queued behind it times out the same way
    t_open_load ();
    t_wait_started (1);
    rc = sluice_model_client_request_timeout (t_fx.cli, "z", 1, 30, &response);
    cr_assert_eq (rc, SLUICE_ETIMEOUT);
    cr_assert_str_eq (sluice_model_client_error_text (t_fx.cli),
                      "timed out waiting for a free worker");
    t_open_infer ();
    t_recv (dealer, &reply);
    cr_assert_eq (reply.header.request_id, 1);
    cr_assert_eq (reply.header.status, SLUICE_OK);
    cr_assert_str_eq (reply.body, "Response kept from " T_MODEL_NAME);
    st = t_status ();
    cr_assert_eq (st.parked + st.queued + st.inflight + st.waiting, 0);
    cr_assert_eq (st.served, 1);
    cr_assert_eq (st.failed, 4);
    cr_assert_eq (t_model.interval_count, 1, "timed-out requests never ran");
}

Test (model, shutdown_during_load_refuses_parked_requests)
{
    t_start ((t_cfg_t) { .gate_load = true });
    zsock_t *dealer = t_dealer ();
    for (uint64_t id = 1; id <= 3; id++)
        t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, id, "parked");
    t_send (dealer, SLUICE_CMD_WAIT, SLUICE_WAIT_FOREVER, 4, NULL);
    t_send (dealer, SLUICE_CMD_STATUS, 0, 5, NULL);
    cr_assert_eq (t_recv_status (dealer, 5, "parked"), 3);
    cr_assert_eq (sluice_model_client_shutdown (t_fx.cli), SLUICE_OK);
    for (uint64_t n = 1; n <= 4; n++) {
        t_reply_t reply;
        t_recv (dealer, &reply);
        cr_assert_eq (reply.header.request_id, n);
        cr_assert_eq (reply.header.status, SLUICE_ESHUTDOWN);
        cr_assert_str_eq (reply.body, "Server is shutting down");
        cr_assert (reply.header.flags & SLUICE_FLAG_PARKED);
    }
    //  The load is cancelled (the model's wait returns -1), and nothing is left in flight
    t_wait_event (SLUICE_EVENT_STOPPED, "");
    cr_assert (atomic_load (&t_model.load_cancelled));
    sluice_model_status_t st = t_status ();
    cr_assert_eq (st.state, SLUICE_MODEL_STOPPED);
    cr_assert_eq (st.failed, 3);
}

//  More parked requests from one client than a ZeroMQ pipe holds by default (1000 messages
//  each side): a failed load answers them all in one burst, and every reply must be queued for
//  the client, none dropped. A WAIT on a second DEALER is answered after that burst, so once it
//  arrives the burst is complete whether or not the first DEALER has been reading.
Test (model, one_client_with_3000_parked_requests_gets_every_reply)
{
    enum { N = 3000 };
    //  (beyond the default per-connection limit: this client is allowed them all)
    t_start ((t_cfg_t) { .gate_load = true, .fail = "no room", .peer_max_pending = N });
    zsock_t *dealer = t_dealer ();
    zsock_t *watcher = t_dealer ();
    for (uint64_t id = 1; id <= N; id++)
        t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, id, "bulk");
    t_send (dealer, SLUICE_CMD_STATUS, 0, N + 1, NULL);
    cr_assert_eq (t_recv_status (dealer, N + 1, "parked"), N);
    t_send (watcher, SLUICE_CMD_WAIT, SLUICE_WAIT_FOREVER, 1, NULL);
    t_send (watcher, SLUICE_CMD_STATUS, 0, 2, NULL);
    cr_assert_eq (t_recv_status (watcher, 2, "waiting"), 1);
    t_open_load ();
    t_reply_t reply;
    t_recv (watcher, &reply);
    cr_assert_eq (reply.header.status, SLUICE_ELOADFAIL);
    cr_assert_eq (t_status_lost (), 0, "replies dropped");
    for (uint64_t id = 1; id <= N; id++) {
        t_recv (dealer, &reply);
        cr_assert_eq (reply.header.request_id, id);
        cr_assert_eq (reply.header.status, SLUICE_ELOADFAIL, "%s", reply.body);
    }
}

Test (model, ping_is_answered_at_once_in_any_state)
{
    t_start ((t_cfg_t) { .gate_load = true });
    zsock_t *dealer = t_dealer ();
    t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, 1, "parked");
    t_send (dealer, SLUICE_CMD_PING, 0, 2, NULL);
    t_reply_t reply;
    t_recv (dealer, &reply);
    cr_assert_eq (reply.header.request_id, 2, "the ping overtakes the parked request");
    cr_assert_eq (reply.header.command, SLUICE_CMD_PING);
    cr_assert_eq (reply.header.status, SLUICE_OK);
    cr_assert_eq (reply.frames, 0);
    t_open_load ();
    t_recv (dealer, &reply);
    cr_assert_eq (reply.header.request_id, 1);
    cr_assert_eq (reply.header.status, SLUICE_OK);
}

//  A client that vanishes while its requests are parked does not hold admission slots: the
//  actor probes the peers of waiting requests and drops those that are gone.
Test (model, requests_of_vanished_clients_are_dropped)
{
    t_start ((t_cfg_t) { .gate_load = true, .max_pending = 4 });
    zsock_t *dealer = t_dealer ();
    for (uint64_t id = 1; id <= 3; id++)
        t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, id, "orphan");
    t_send (dealer, SLUICE_CMD_WAIT, SLUICE_WAIT_FOREVER, 4, NULL);
    t_send (dealer, SLUICE_CMD_STATUS, 0, 5, NULL);
    cr_assert_eq (t_recv_status (dealer, 5, "parked"), 3);
    t_request_fails ("full", SLUICE_EBUSY, NULL);
    zsock_destroy (&t_fx.dealers [--t_fx.ndealers]);
    sluice_model_status_t st;
    T_WAIT_STATUS (st, st.abandoned == 4);
    cr_assert_eq (st.parked + st.waiting, 0);
    t_open_load ();
    t_request_ok ("room again");
    cr_assert_eq (t_model.interval_count, 1, "the orphans never ran");
}

//  Request id 0 is the actors' probe, which clients ignore: refused, counted as malformed.
Test (model, request_id_zero_is_refused)
{
    t_start ((t_cfg_t) { 0 });
    zsock_t *dealer = t_dealer ();
    t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, 0, "zero");
    t_reply_t reply;
    t_recv (dealer, &reply);
    cr_assert_eq (reply.header.command, SLUICE_CMD_REQUEST);
    cr_assert_eq (reply.header.request_id, 0);
    cr_assert_eq (reply.header.status, SLUICE_EPROTO, "%s", reply.body);
    cr_assert_eq (reply.header.flags, 0);
    t_request_ok ("after");
    sluice_model_status_t st = t_status ();
    cr_assert_eq (st.malformed, 1);
    cr_assert_eq (st.served, 1);
    cr_assert_eq (st.failed, 0);
}

//  Every REQUEST is counted once: served or failed when its reply was sent, lost when its
//  client had gone (whichever the connection's end decided, never two of them).
Test (model, a_request_whose_client_vanished_is_counted_once)
{
    t_start ((t_cfg_t) { .gate_infer = true });
    zsock_t *dealer = t_dealer ();
    t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, 1, "gone");
    t_wait_started (1);
    zsock_destroy (&t_fx.dealers [--t_fx.ndealers]);
    t_open_infer ();
    sluice_model_status_t st;
    T_WAIT_STATUS (st, st.inflight == 0 && st.served + st.failed + st.lost >= 1);
    cr_assert_eq (st.served + st.failed + st.lost, 1, "served %llu failed %llu lost %llu",
                  (unsigned long long) st.served, (unsigned long long) st.failed,
                  (unsigned long long) st.lost);
    cr_assert_eq (st.failed, 0);
}

//  SHUTDOWN's own reply comes after the ESHUTDOWN replies to the requests it refused (on one
//  connection, in that order), each of those with PARKED.
Test (model, shutdown_replies_after_refusing_the_parked)
{
    t_start ((t_cfg_t) { .gate_load = true });
    zsock_t *dealer = t_dealer ();
    t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, 1, "parked");
    t_send (dealer, SLUICE_CMD_WAIT, SLUICE_WAIT_FOREVER, 2, NULL);
    t_send (dealer, SLUICE_CMD_SHUTDOWN, 0, 3, NULL);
    t_reply_t reply;
    for (uint64_t id = 1; id <= 2; id++) {
        t_recv (dealer, &reply);
        cr_assert_eq (reply.header.request_id, id);
        cr_assert_eq (reply.header.status, SLUICE_ESHUTDOWN);
        cr_assert_eq (reply.header.flags, SLUICE_FLAG_PARKED);
    }
    t_recv (dealer, &reply);
    cr_assert_eq (reply.header.request_id, 3);
    cr_assert_eq (reply.header.status, SLUICE_OK);
    t_open_load ();
}

Test (model, inference_failure_is_reported_and_server_keeps_serving)
{
    t_start ((t_cfg_t) { 0 });
    t_request_fails ("explode", SLUICE_EINTERNAL, "the model exploded");
    cr_assert_not (t_request_ok (""), "an empty payload is a valid request");
    sluice_model_status_t st = t_status ();
    cr_assert_eq (st.served, 1);
    cr_assert_eq (st.failed, 1);
}

Test (model, destroy_cancels_a_running_load)
{
    t_start ((t_cfg_t) { .gate_load = true });
    zsock_t *dealer = t_dealer ();
    for (uint64_t id = 1; id <= 5; id++)
        t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, id, "never");
    t_send (dealer, SLUICE_CMD_STATUS, 0, 6, NULL);
    cr_assert_eq (t_recv_status (dealer, 6, "parked"), 5);
    sluice_model_server_destroy (&t_fx.server);      //  returns: the load's wait is cancelled
    cr_assert_null (t_fx.server);
    cr_assert (atomic_load (&t_model.load_cancelled));
    cr_assert_eq (atomic_load (&t_model.unloads), 0);
    sluice_model_server_destroy (&t_fx.server);      //  NULL: nothing to do
}

Test (model, destroy_cancels_running_inference_and_unloads)
{
    t_start ((t_cfg_t) { .gate_infer = true });
    zsock_t *dealer = t_dealer ();
    t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, 1, "stuck");
    t_send (dealer, SLUICE_CMD_REQUEST, SLUICE_WAIT_FOREVER, 2, "stuck too");
    t_wait_started (2);
    sluice_model_server_destroy (&t_fx.server);
    cr_assert_eq (atomic_load (&t_model.unloads), 1);
}

Test (model, bind_failure_and_bad_options)
{
    t_start ((t_cfg_t) { 0 });
    sluice_err_t err = SLUICE_OK;
    sluice_model_server_opts_t opts = { .endpoint = t_fx.endpoint, .model = &t_iface };
    cr_assert_null (sluice_model_server_new (&opts, &err), "endpoint already bound");
    cr_assert_eq (err, SLUICE_ETRANSPORT);
    opts.endpoint = "bogus://nowhere";
    cr_assert_null (sluice_model_server_new (&opts, &err));
    cr_assert_eq (err, SLUICE_ETRANSPORT);
    cr_assert_null (sluice_model_server_new (NULL, &err));
    cr_assert_eq (err, SLUICE_EINVAL);
    opts.endpoint = NULL;
    cr_assert_null (sluice_model_server_new (&opts, &err));
    cr_assert_eq (err, SLUICE_EINVAL);
    opts.endpoint = "inproc://model-bad-options";
    sluice_model_iface_t no_infer = t_iface;
    no_infer.infer = NULL;
    opts.model = &no_infer;
    cr_assert_null (sluice_model_server_new (&opts, &err));
    cr_assert_eq (err, SLUICE_EINVAL);
    opts.model = &t_iface;
    opts.workers = 100000;
    cr_assert_null (sluice_model_server_new (&opts, &err));
    cr_assert_eq (err, SLUICE_EINVAL);
    opts.model = NULL;
    opts.workers = 0;
    opts.sim.load_ms = -1;
    cr_assert_null (sluice_model_server_new (&opts, &err));
    cr_assert_eq (err, SLUICE_EINVAL);
    cr_assert_null (sluice_model_client_new ("bogus://nowhere"));
    cr_assert_null (sluice_model_client_new (NULL));
    //  The first server is unharmed
    t_request_ok ("still here");
}

//  The default model: the seed's simulated one.
static sluice_model_server_t *
t_start_sim (const sluice_model_sim_t *sim, const char *endpoint)
{
    sluice_model_server_opts_t opts = { .endpoint = endpoint, .sim = *sim, .workers = 2 };
    sluice_err_t err;
    sluice_model_server_t *server = sluice_model_server_new (&opts, &err);
    cr_assert_not_null (server, "%s", sluice_strerror (err));
    return server;
}

Test (model, simulated_model)
{
    sluice_model_sim_t sim = { .name = "llm-7b", .load_ms = 20, .infer_ms = 5 };
    t_fx.server = t_start_sim (&sim, "inproc://model-sim");
    t_fx.cli = sluice_model_client_new (sluice_model_server_endpoint (t_fx.server));
    char *response = NULL;
    cr_assert_eq (sluice_model_client_request (t_fx.cli, "0", 1, &response), SLUICE_OK);
    cr_assert_str_eq (response, "Response 0 from llm-7b");
    free (response);
    cr_assert_eq (sluice_model_client_wait_ready (t_fx.cli, T_WAIT_MS), SLUICE_OK);
    sluice_model_status_t st = t_status ();
    cr_assert_str_eq (st.model, "llm-7b");
    cr_assert_null (sluice_model_server_events_endpoint (t_fx.server));
    sluice_model_client_destroy (&t_fx.cli);
    sluice_model_server_destroy (&t_fx.server);

    sluice_model_sim_t unnamed = { .load_ms = 0 };
    t_fx.server = t_start_sim (&unnamed, "inproc://model-sim-unnamed");
    t_fx.cli = sluice_model_client_new (sluice_model_server_endpoint (t_fx.server));
    cr_assert_eq (sluice_model_client_request (t_fx.cli, "hi", 2, &response), SLUICE_OK);
    cr_assert_str_eq (response, "Response hi from " SLUICE_MODEL_SIM_DEFAULT_NAME);
    free (response);
}

Test (model, simulated_model_failure)
{
    sluice_model_sim_t sim = { .load_ms = 10, .fail_reason = "weights file corrupt" };
    t_fx.server = t_start_sim (&sim, "inproc://model-sim-fail");
    t_fx.cli = sluice_model_client_new (sluice_model_server_endpoint (t_fx.server));
    cr_assert_eq (sluice_model_client_wait_ready (t_fx.cli, T_WAIT_MS), SLUICE_ELOADFAIL);
    cr_assert_str_eq (sluice_model_client_error_text (t_fx.cli), "weights file corrupt");
    t_request_fails ("0", SLUICE_ELOADFAIL, "weights file corrupt");
}

Test (model, model_context_outside_a_server)
{
    //  The simulated model's functions work without a server (ctx NULL: plain waits)
    cr_assert (sluice_model_sleep (NULL, 1));
    cr_assert_not (sluice_model_cancelled (NULL));
    cr_assert_eq (sluice_model_wait (NULL, -1, 0), 0);
    t_open_load ();
    cr_assert_eq (sluice_model_wait (NULL, t_model.load_gate [0], T_WAIT_MS), 1);
    cr_assert_str_eq (sluice_model_state_name (SLUICE_MODEL_DRAINING), "draining");
    cr_assert_str_eq (sluice_model_state_name ((sluice_model_state_t) 42), "unknown");
}

// ---------------------------------------------------------------------------------------------
//  The core tests again over tcp://127.0.0.1 (wildcard port, real endpoint read back)

TestSuite (model_tcp, .init = t_init_tcp, .fini = t_fini, .timeout = T_SUITE_TIMEOUT);

Test (model_tcp, parked_requests_all_answered_once_ready)
{
    t_scenario_parked_all_answered ();
}

Test (model_tcp, request_after_ready_is_not_parked)
{
    t_scenario_after_ready ();
}

Test (model_tcp, load_failure_reaches_every_waiter)
{
    t_scenario_load_failure ();
}

Test (model_tcp, shutdown_refuses_new_requests_while_accepted_ones_complete)
{
    t_scenario_shutdown ();
}

Test (model_tcp, late_subscriber_learns_ready)
{
    t_scenario_late_subscriber ();
}

Test (model_tcp, malformed_requests_get_errors_and_server_keeps_serving)
{
    t_scenario_malformed ();
}
