/*  sluice_model_server.c - the model-server actor: requests wait for the model, then go.

    Three kinds of threads, each a czmq actor, talking only over their pipes:
    - the server actor (s_server_*) owns the ROUTER, the events XPUB and every request;
    - one loader runs iface.load once and reports "DONE", so the server loop never blocks on it;
    - a pool of workers run iface.infer, one request each at a time.
    A job pointer travels server -> worker ("JOB") -> server ("DONE"); while a worker has it,
    the server does not touch it.

    A REQUEST job is in exactly one place: `parked` (waiting for the load to end), `queue`
    (accepted, waiting for a free worker), or a worker slot (in flight). A WAIT job is in
    `waiters`. Every waiting job with a deadline is also in `deadlines`, soonest first, so the
    poll timeout is the head's deadline and expiry is O(expired). The end of the load is the
    broadcast: one message from the loader releases every parked request at once, in arrival
    order (the seed's asyncio.Event, with the failure reason carried to every waiter).
*/
#include "sluice_internal.h"
#include <errno.h>
#include <limits.h>
#include <string.h>

#define S_DRAIN_BATCH    1024     //  requests handled per wake-up before re-polling
#define S_MAX_WORKERS    256      //  poll items are rebuilt each loop: keep the set small
#define S_REASON_SIZE    256
#define S_SWEEP_MS       1000     //  probe interval for vanished peers while requests wait
#define S_SHUTDOWN_TEXT  "Server is shutting down"

// ---------------------------------------------------------------------------------------------
//  Model context: how a load or inference waits without blocking the server's destruction

struct sluice_model_ctx_t {
    zsock_t *pipe;          //  the loader's or worker's pipe
    bool cancelled;         //  CANCEL (shutdown during load) or $TERM arrived
    bool terminated;        //  $TERM arrived: the thread ends without reporting
};

//  Read what arrived on the pipe while a model function waits: the only commands a busy
//  loader or worker can get are CANCEL and $TERM.
static void
s_ctx_read_pipe (sluice_model_ctx_t *ctx)
{
    while (!ctx->terminated && (zsock_events (ctx->pipe) & ZMQ_POLLIN)) {
        zmsg_t *msg = zmsg_recv (ctx->pipe);
        char *command = msg ? zmsg_popstr (msg) : NULL;
        if (!command || streq (command, "$TERM"))
            ctx->cancelled = ctx->terminated = true;
        else
        if (streq (command, "CANCEL"))
            ctx->cancelled = true;
        zstr_free (&command);
        zmsg_destroy (&msg);
    }
}

int
sluice_model_wait (sluice_model_ctx_t *ctx, int fd, int timeout_ms)
{
    if (ctx && ctx->cancelled)
        return -1;
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms;
    while (true) {
        zmq_pollitem_t items [2];
        int count = 0, fd_at = -1;
        if (ctx)
            items [count++] = (zmq_pollitem_t) { zsock_resolve (ctx->pipe), 0, ZMQ_POLLIN, 0 };
        if (fd >= 0) {
            fd_at = count;
            items [count++] = (zmq_pollitem_t) { NULL, fd, ZMQ_POLLIN, 0 };
        }
        long timeout = sluice_poll_timeout (deadline);
        if (count == 0) {
            //  Outside a server, nothing to watch: a plain sleep (forever makes no sense)
            if (timeout > 0)
                zclock_sleep ((int) timeout);
            return timeout < 0 ? -1 : 0;
        }
        int rc = zmq_poll (items, count, timeout);
        if (rc == -1) {
            if (zmq_errno () == EINTR)
                continue;
            if (ctx)
                ctx->cancelled = ctx->terminated = true;    //  the context is going away
            return -1;
        }
        if (ctx && (items [0].revents & ZMQ_POLLIN)) {
            s_ctx_read_pipe (ctx);
            if (ctx->cancelled)
                return -1;
        }
        //  A hung-up or failed fd counts as readable: the caller's read will tell
        if (fd_at >= 0 && (items [fd_at].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
            return 1;
        if (rc == 0)
            return 0;
    }
}

bool
sluice_model_sleep (sluice_model_ctx_t *ctx, int ms)
{
    if (ms <= 0)
        return !sluice_model_cancelled (ctx);
    return sluice_model_wait (ctx, -1, ms) == 0;
}

bool
sluice_model_cancelled (sluice_model_ctx_t *ctx)
{
    return ctx && ctx->cancelled;
}

// ---------------------------------------------------------------------------------------------
//  The simulated model

sluice_err_t
sluice_model_sim_load (sluice_model_ctx_t *ctx, void *config, void **model,
                       char *reason, size_t reason_size)
{
    const sluice_model_sim_t *sim = (const sluice_model_sim_t *) config;
    if (!sluice_model_sleep (ctx, sim->load_ms)) {
        snprintf (reason, reason_size, "load cancelled");
        return SLUICE_ESHUTDOWN;
    }
    if (sim->fail_reason) {
        snprintf (reason, reason_size, "%s", sim->fail_reason);
        return SLUICE_ELOADFAIL;
    }
    *model = strdup (sim->name ? sim->name : SLUICE_MODEL_SIM_DEFAULT_NAME);
    if (!*model) {
        snprintf (reason, reason_size, "out of memory");
        return SLUICE_ENOMEM;
    }
    return SLUICE_OK;
}

sluice_err_t
sluice_model_sim_infer (sluice_model_ctx_t *ctx, void *config, void *model,
                        const void *payload, size_t size, char **response, size_t *response_size)
{
    const sluice_model_sim_t *sim = (const sluice_model_sim_t *) config;
    if (!sluice_model_sleep (ctx, sim->infer_ms)) {
        *response = strdup ("inference cancelled");
        *response_size = *response ? strlen (*response) : 0;
        return SLUICE_ESHUTDOWN;
    }
    char *text = zsys_sprintf ("Response %.*s from %s", (int) size, (const char *) payload,
                               (const char *) model);
    if (!text)
        return SLUICE_ENOMEM;
    //  zsys_sprintf's buffer is plain malloc memory: the server frees it with free()
    *response = text;
    *response_size = strlen (text);
    return SLUICE_OK;
}

void
sluice_model_sim_unload (void *config, void *model)
{
    free (model);
}

// ---------------------------------------------------------------------------------------------
//  Jobs, loader and workers

typedef struct {
    sluice_model_iface_t iface;   //  the server's copy
    void *model;                  //  set once the load succeeded, before any job is sent
} s_model_t;

typedef struct {
    zmq_msg_t identity;           //  who to answer
    sluice_header_t request;      //  the request as it arrived
    zmq_msg_t payload;            //  REQUEST: the body
    int64_t deadline;             //  zclock_mono ms, INT64_MAX = none
    zlistx_t *list;               //  parked, queue or waiters; NULL when in flight
    void *list_handle;
    void *deadline_handle;        //  in deadlines, or NULL
    bool parked;                  //  was deferred (SLUICE_FLAG_PARKED on the reply)
    //  Written by the worker
    sluice_err_t result;
    char *response;
    size_t response_size;
} s_job_t;

static s_job_t *
s_job_new (sluice_request_t *req)
{
    s_job_t *job = (s_job_t *) zmalloc (sizeof *job);
    zmq_msg_init (&job->identity);
    zmq_msg_init (&job->payload);
    zmq_msg_move (&job->identity, &req->identity);
    if (req->has_body)
        zmq_msg_move (&job->payload, &req->body);
    job->request = req->header;
    job->deadline = INT64_MAX;
    return job;
}

static void
s_job_free (s_job_t **job_p)
{
    s_job_t *job = *job_p;
    if (job) {
        zmq_msg_close (&job->identity);
        zmq_msg_close (&job->payload);
        free (job->response);
        free (job);
        *job_p = NULL;
    }
}

static int
s_send_ptr (void *dest, const char *command, void *pointer)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, command);
    zmsg_addmem (msg, &pointer, sizeof pointer);
    return zmsg_send (&msg, dest);
}

//  Receive "COMMAND" + pointer; returns the command (caller frees) and sets *pointer.
static char *
s_recv_ptr (void *source, void **pointer)
{
    *pointer = NULL;
    zmsg_t *msg = zmsg_recv (source);
    if (!msg)
        return NULL;
    char *command = zmsg_popstr (msg);
    zframe_t *frame = zmsg_first (msg);
    if (frame && zframe_size (frame) == sizeof *pointer)
        memcpy (pointer, zframe_data (frame), sizeof *pointer);
    zmsg_destroy (&msg);
    return command;
}

typedef struct {
    const sluice_model_iface_t *iface;
    sluice_err_t result;
    void *model;
    char reason [S_REASON_SIZE];
} s_load_t;

static void
s_loader_actor (zsock_t *pipe, void *args)
{
    s_load_t *load = (s_load_t *) args;
    sluice_model_ctx_t ctx = { .pipe = pipe };
    zsock_signal (pipe, 0);
    load->model = NULL;
    load->reason [0] = 0;
    load->result = load->iface->load (&ctx, load->iface->config, &load->model,
                                      load->reason, sizeof load->reason);
    load->reason [sizeof load->reason - 1] = 0;
    if (load->result != SLUICE_OK && !load->reason [0])
        snprintf (load->reason, sizeof load->reason, "%s", sluice_strerror (load->result));
    if (ctx.terminated)
        return;             //  the server is being destroyed and reads `load` when we end
    zstr_send (pipe, "DONE");
    //  An actor must not return before $TERM (zactor_destroy waits for our exit signal)
    while (true) {
        char *command = zstr_recv (pipe);
        bool term = !command || streq (command, "$TERM");
        zstr_free (&command);
        if (term)
            break;
    }
}

static void
s_job_run (sluice_model_ctx_t *ctx, s_model_t *model, s_job_t *job)
{
    //  Give the model a NUL-terminated payload, so text requests can be used as strings
    size_t size = zmq_msg_size (&job->payload);
    char *payload = (char *) malloc (size + 1);
    if (!payload) {
        job->result = SLUICE_ENOMEM;
        return;
    }
    if (size)
        memcpy (payload, zmq_msg_data (&job->payload), size);
    payload [size] = 0;
    char *response = NULL;
    size_t response_size = 0;
    sluice_err_t rc = model->iface.infer (ctx, model->iface.config, model->model, payload, size,
                                          &response, &response_size);
    free (payload);
    if (rc >= SLUICE_ERR_COUNT_)
        rc = SLUICE_EINTERNAL;
    job->result = rc;
    job->response = response;
    job->response_size = response ? response_size : 0;
}

static void
s_worker_actor (zsock_t *pipe, void *args)
{
    s_model_t *model = (s_model_t *) args;
    sluice_model_ctx_t ctx = { .pipe = pipe };
    zsock_signal (pipe, 0);
    while (!ctx.terminated) {
        void *pointer;
        char *command = s_recv_ptr (pipe, &pointer);
        if (!command || streq (command, "$TERM"))
            ctx.terminated = true;
        else
        if (streq (command, "JOB") && pointer) {
            s_job_t *job = (s_job_t *) pointer;
            s_job_run (&ctx, model, job);
            //  When terminated the server frees the job itself once we have ended
            if (!ctx.terminated)
                s_send_ptr (pipe, "DONE", job);
            ctx.cancelled = false;
        }
        zstr_free (&command);
    }
}

// ---------------------------------------------------------------------------------------------
//  Server actor

typedef struct {
    zactor_t *actor;
    s_job_t *job;                 //  in flight on this worker, or NULL
} s_worker_t;

typedef struct {
    zsock_t *pipe;
    zsock_t *router;
    sluice_publisher_t *events;
    s_model_t model;
    char *name;                   //  model name (one line)
    sluice_model_sim_t sim;       //  the simulated model's config, when it is the model
    size_t worker_count;
    size_t max_pending;
    size_t max_payload;
    const sluice_curve_t *curve;    //  caller's CURVE settings, only until the bind
    bool secured;                   //  CURVE applied: holds the process's authenticator

    sluice_model_state_t state;
    char reason [S_REASON_SIZE];  //  load failure reason (one line)
    zactor_t *loader;             //  while loading
    s_load_t load;
    bool model_loaded;            //  model.model must be unloaded at the end

    s_worker_t *workers;
    size_t *idle;                 //  stack of idle worker indexes
    size_t idle_count;
    size_t inflight;
    zlistx_t *parked;             //  REQUEST jobs waiting for the load, oldest first
    zlistx_t *queue;              //  accepted REQUEST jobs waiting for a worker, oldest first
    zlistx_t *waiters;            //  WAIT jobs
    zlistx_t *deadlines;          //  timed jobs of the three lists above, soonest first
    zmq_pollitem_t *items;
    int64_t next_sweep;           //  zclock_mono ms; INT64_MAX while nothing waits

    uint64_t served;
    uint64_t failed;
    uint64_t malformed;
    uint64_t lost;                //  replies the ROUTER could not deliver (peer gone)
    uint64_t abandoned;           //  waiting requests dropped because their peer vanished
    bool terminated;
} s_server_t;

//  Copy text into out as one line (status text and events are line-based)
static void
s_copy_line (char *out, size_t size, const char *text)
{
    snprintf (out, size, "%s", text ? text : "");
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

static int
s_compare_deadline (const void *item1, const void *item2)
{
    int64_t a = ((const s_job_t *) item1)->deadline;
    int64_t b = ((const s_job_t *) item2)->deadline;
    return a < b ? -1 : a > b ? 1 : 0;
}

static size_t
s_pending (s_server_t *self)
{
    return zlistx_size (self->parked) + zlistx_size (self->queue)
         + zlistx_size (self->waiters) + self->inflight;
}

static void
s_publish (s_server_t *self, const char *event, const char *detail)
{
    if (self->events)
        sluice_publisher_send (self->events, event, detail);
}

static void
s_count (s_server_t *self, uint8_t command, sluice_err_t status)
{
    if (command != SLUICE_CMD_REQUEST)
        return;
    if (status == SLUICE_OK)
        self->served++;
    else
        self->failed++;
}

//  Answer a job (parked or done) and free it.
static void
s_answer (s_server_t *self, s_job_t **job_p, sluice_err_t status, const char *text, size_t size)
{
    s_job_t *job = *job_p;
    sluice_header_t header = job->request;
    header.flags = job->parked ? SLUICE_FLAG_PARKED : 0;
    header.status = (uint8_t) status;
    header.timeout_ms = 0;
    zmq_msg_t body;
    zmq_msg_init_size (&body, size);
    if (size)
        memcpy (zmq_msg_data (&body), text, size);
    if (sluice_reply_send (zsock_resolve (self->router), &job->identity, &header, &body, 1)
        == -1) {
        //  The client gave up or went away: nobody is left to tell
        self->lost++;
        zsys_debug ("sluice model server: reply to request %llu lost: %s",
                    (unsigned long long) job->request.request_id, zmq_strerror (errno));
    }
    zmq_msg_close (&body);
    s_count (self, job->request.command, status);
    s_job_free (job_p);
}

static void
s_answer_str (s_server_t *self, s_job_t **job_p, sluice_err_t status, const char *text)
{
    s_answer (self, job_p, status, text, strlen (text));
}

//  Answer a request that is not kept (refusals, malformed input).
static void
s_refuse (s_server_t *self, sluice_request_t *req, sluice_err_t status, const char *reason)
{
    if (sluice_reply_error (zsock_resolve (self->router), &req->identity, &req->header,
                            0, status, reason) == -1)
        self->lost++;
    s_count (self, req->header.command, status);
}

static void
s_malformed (s_server_t *self, sluice_request_t *req, sluice_err_t status, const char *reason)
{
    self->malformed++;
    if (sluice_reply_error (zsock_resolve (self->router), &req->identity, &req->header,
                            0, status, reason) == -1)
        self->lost++;
}

static void
s_job_unlist (s_server_t *self, s_job_t *job)
{
    if (job->list) {
        zlistx_detach (job->list, job->list_handle);
        job->list = NULL;
        job->list_handle = NULL;
    }
    if (job->deadline_handle) {
        zlistx_detach (self->deadlines, job->deadline_handle);
        job->deadline_handle = NULL;
    }
}

static void
s_job_list (s_server_t *self, s_job_t *job, zlistx_t *list)
{
    job->list = list;
    job->list_handle = zlistx_add_end (list, job);
}

//  Hand a job to an idle worker.
static void
s_dispatch (s_server_t *self, s_job_t *job)
{
    assert (self->idle_count > 0);
    size_t index = self->idle [--self->idle_count];
    if (s_send_ptr (self->workers [index].actor, "JOB", job) == -1) {
        self->idle [self->idle_count++] = index;
        s_answer_str (self, &job, SLUICE_EINTERNAL, "cannot reach an inference worker");
        return;
    }
    self->workers [index].job = job;
    self->inflight++;
}

//  Dispatch queued jobs, oldest first, while workers are idle.
static void
s_pump (s_server_t *self)
{
    while (self->idle_count > 0 && zlistx_size (self->queue) > 0) {
        s_job_t *job = (s_job_t *) zlistx_first (self->queue);
        s_job_unlist (self, job);
        s_dispatch (self, job);
    }
}

static void
s_check_stopped (s_server_t *self)
{
    if (self->state == SLUICE_MODEL_DRAINING && !self->loader && self->inflight == 0
    &&  zlistx_size (self->queue) == 0) {
        self->state = SLUICE_MODEL_STOPPED;
        s_publish (self, SLUICE_EVENT_STOPPED, "");
    }
}

//  Answer every job of a list with the same error.
static void
s_answer_all (s_server_t *self, zlistx_t *list, sluice_err_t status, const char *text)
{
    s_job_t *job;
    while ((job = (s_job_t *) zlistx_first (list))) {
        s_job_unlist (self, job);
        s_answer_str (self, &job, status, text);
    }
}

static void
s_shutdown (s_server_t *self)
{
    if (self->state == SLUICE_MODEL_DRAINING || self->state == SLUICE_MODEL_STOPPED)
        return;
    self->state = SLUICE_MODEL_DRAINING;
    s_publish (self, SLUICE_EVENT_DRAINING, "");
    //  Requests that never got past the readiness check are refused; accepted ones (queued
    //  for a worker or in flight) complete normally.
    s_answer_all (self, self->parked, SLUICE_ESHUTDOWN, S_SHUTDOWN_TEXT);
    s_answer_all (self, self->waiters, SLUICE_ESHUTDOWN, S_SHUTDOWN_TEXT);
    if (self->loader)
        zstr_send (self->loader, "CANCEL");     //  the load ends early; we wait for its DONE
    s_check_stopped (self);
}

//  The loader reported: the one-shot broadcast to everything parked.
static void
s_handle_loader (s_server_t *self)
{
    char *command = zstr_recv (self->loader);
    bool done = command && streq (command, "DONE");
    zstr_free (&command);
    if (!done)
        return;
    zactor_destroy (&self->loader);     //  the loader has ended: self->load is final
    if (self->load.result == SLUICE_OK) {
        self->model.model = self->load.model;
        self->model_loaded = true;
    }
    if (self->state != SLUICE_MODEL_LOADING) {
        s_check_stopped (self);         //  shut down during the load
        return;
    }
    if (self->model_loaded) {
        self->state = SLUICE_MODEL_READY;
        s_publish (self, SLUICE_EVENT_READY, self->name);
        s_answer_all (self, self->waiters, SLUICE_OK, self->name);
        //  Every parked request goes at once: to the workers, the rest queued behind them
        s_job_t *job;
        while ((job = (s_job_t *) zlistx_first (self->parked))) {
            zlistx_detach (self->parked, job->list_handle);
            s_job_list (self, job, self->queue);
        }
        s_pump (self);
    }
    else {
        self->state = SLUICE_MODEL_FAILED;
        s_copy_line (self->reason, sizeof self->reason, self->load.reason);
        s_publish (self, SLUICE_EVENT_FAILED, self->reason);
        s_answer_all (self, self->parked, SLUICE_ELOADFAIL, self->reason);
        s_answer_all (self, self->waiters, SLUICE_ELOADFAIL, self->reason);
    }
}

static void
s_handle_worker (s_server_t *self, size_t index)
{
    s_worker_t *worker = &self->workers [index];
    void *pointer;
    char *command = s_recv_ptr (worker->actor, &pointer);
    bool done = command && streq (command, "DONE") && pointer && pointer == worker->job;
    zstr_free (&command);
    if (!done)
        return;
    s_job_t *job = worker->job;
    worker->job = NULL;
    self->idle [self->idle_count++] = index;
    self->inflight--;
    if (job->result == SLUICE_OK)
        s_answer (self, &job, SLUICE_OK, job->response ? job->response : "", job->response_size);
    else
    if (job->response && job->response_size)
        s_answer (self, &job, job->result, job->response, job->response_size);
    else
        s_answer_str (self, &job, job->result, "inference failed");
    s_pump (self);
    s_check_stopped (self);
}

static void
s_expire (s_server_t *self)
{
    int64_t now = zclock_mono ();
    s_job_t *job;
    while ((job = (s_job_t *) zlistx_first (self->deadlines)) && job->deadline <= now) {
        const char *reason = job->request.command == SLUICE_CMD_WAIT
                           ? "timed out waiting for the model to load"
                           : job->list == self->parked
                           ? "timed out: the model is still loading"
                           : "timed out waiting for a free worker";
        s_job_unlist (self, job);
        s_answer_str (self, &job, SLUICE_ETIMEOUT, reason);
    }
}

//  Keep a request that cannot be served now in `list` (FIFO), with its deadline.
static void
s_park (s_server_t *self, sluice_request_t *req, zlistx_t *list)
{
    s_job_t *job = s_job_new (req);
    job->parked = true;
    s_job_list (self, job, list);
    if (req->header.timeout_ms != SLUICE_WAIT_FOREVER) {
        job->deadline = zclock_mono () + req->header.timeout_ms;
        //  Searching from the end: deadlines mostly arrive in order, so this is O(1)
        job->deadline_handle = zlistx_insert (self->deadlines, job, false);
    }
}

//  Refuse a well-formed request the current state cannot take; false when it can.
static bool
s_refused_by_state (s_server_t *self, sluice_request_t *req)
{
    switch (self->state) {
        case SLUICE_MODEL_FAILED:
            s_refuse (self, req, SLUICE_ELOADFAIL, self->reason);
            return true;
        case SLUICE_MODEL_DRAINING:
        case SLUICE_MODEL_STOPPED:
            s_refuse (self, req, SLUICE_ESHUTDOWN, S_SHUTDOWN_TEXT);
            return true;
        default:
            break;
    }
    if (s_pending (self) >= self->max_pending) {
        char reason [128];
        snprintf (reason, sizeof reason, "server busy: %zu requests pending (max_pending=%zu)",
                  s_pending (self), self->max_pending);
        s_refuse (self, req, SLUICE_EBUSY, reason);
        return true;
    }
    return false;
}

static void
s_on_request (s_server_t *self, sluice_request_t *req)
{
    if (!req->has_body) {
        s_malformed (self, req, SLUICE_EPROTO, "REQUEST needs exactly one payload frame after the header");
        return;
    }
    if (zmq_msg_size (&req->body) > self->max_payload) {
        char reason [128];
        snprintf (reason, sizeof reason, "payload of %zu bytes exceeds the maximum of %zu",
                  zmq_msg_size (&req->body), self->max_payload);
        s_malformed (self, req, SLUICE_ETOOBIG, reason);
        return;
    }
    if (s_refused_by_state (self, req))
        return;
    bool loading = self->state == SLUICE_MODEL_LOADING;
    if (!loading && self->idle_count > 0 && zlistx_size (self->queue) == 0)
        s_dispatch (self, s_job_new (req));
    else
    if (req->header.timeout_ms == 0)
        s_refuse (self, req, SLUICE_ETIMEOUT, loading ? "timed out: the model is still loading"
                                                      : "timed out waiting for a free worker");
    else
        s_park (self, req, loading ? self->parked : self->queue);
}

static void
s_on_wait (s_server_t *self, sluice_request_t *req)
{
    if (req->has_body) {
        s_malformed (self, req, SLUICE_EPROTO, "WAIT takes no body frame");
        return;
    }
    if (self->state == SLUICE_MODEL_READY) {
        if (sluice_reply_text (zsock_resolve (self->router), &req->identity, &req->header, 0,
                               self->name, strlen (self->name)) == -1)
            self->lost++;
        return;
    }
    if (s_refused_by_state (self, req))
        return;
    if (req->header.timeout_ms == 0)
        s_refuse (self, req, SLUICE_ETIMEOUT, "timed out waiting for the model to load");
    else
        s_park (self, req, self->waiters);
}

static void
s_on_status (s_server_t *self, sluice_request_t *req)
{
    if (req->has_body) {
        s_malformed (self, req, SLUICE_EPROTO, "STATUS takes no body frame");
        return;
    }
    char *text = zsys_sprintf (
        "state=%s\nmodel=%s\nreason=%s\nparked=%zu\nqueued=%zu\ninflight=%zu\nwaiting=%zu\n"
        "served=%llu\nfailed=%llu\nmalformed=%llu\nlost=%llu\nabandoned=%llu\nmax_pending=%zu\n"
        "max_payload=%zu\nworkers=%zu\n",
        sluice_model_state_name (self->state), self->name, self->reason,
        zlistx_size (self->parked), zlistx_size (self->queue), self->inflight,
        zlistx_size (self->waiters), (unsigned long long) self->served,
        (unsigned long long) self->failed, (unsigned long long) self->malformed,
        (unsigned long long) self->lost, (unsigned long long) self->abandoned,
        self->max_pending, self->max_payload,
        self->worker_count);
    if (!text) {
        s_refuse (self, req, SLUICE_ENOMEM, "out of memory");
        return;
    }
    if (sluice_reply_text (zsock_resolve (self->router), &req->identity, &req->header, 0,
                           text, strlen (text)) == -1)
        self->lost++;
    zstr_free (&text);
}

static void
s_on_shutdown (s_server_t *self, sluice_request_t *req)
{
    if (req->has_body) {
        s_malformed (self, req, SLUICE_EPROTO, "SHUTDOWN takes no body frame");
        return;
    }
    s_shutdown (self);
    const char *state = sluice_model_state_name (self->state);
    if (sluice_reply_text (zsock_resolve (self->router), &req->identity, &req->header, 0,
                           state, strlen (state)) == -1)
        self->lost++;
}

static bool
s_list_holds (zlistx_t *list, zmq_msg_t *identity)
{
    for (s_job_t *job = (s_job_t *) zlistx_first (list); job; job = (s_job_t *) zlistx_next (list))
        if (sluice_identity_eq (&job->identity, identity))
            return true;
    return false;
}

//  Does the server hold a request of this peer (parked, queued, waiting or in flight)? A scan,
//  but only for pings, which a client sends after 5 s without a word.
static bool
s_holds (s_server_t *self, zmq_msg_t *identity)
{
    for (size_t index = 0; self->workers && index < self->worker_count; index++)
        if (self->workers [index].job && sluice_identity_eq (&self->workers [index].job->identity, identity))
            return true;
    return s_list_holds (self->parked, identity) || s_list_holds (self->queue, identity)
        || s_list_holds (self->waiters, identity);
}

static void
s_on_ping (s_server_t *self, sluice_request_t *req)
{
    if (req->has_body) {
        s_malformed (self, req, SLUICE_EPROTO, "PING takes no body frame");
        return;
    }
    if (sluice_reply_ping (zsock_resolve (self->router), &req->identity, &req->header,
                           s_holds (self, &req->identity)) == -1)
        self->lost++;
}

// ---------------------------------------------------------------------------------------------
//  Vanished peers: a parked request whose client has gone would hold an admission slot until
//  the load ends. Once a second, while requests wait, probe their peers (a header with the
//  reserved request id 0, which clients ignore); ROUTER_MANDATORY fails at once for a peer
//  that is gone (tcp heartbeats disconnect dead and hung ones).

static void
s_sweep_list (s_server_t *self, zlistx_t *list, zhashx_t *verdicts)
{
    s_job_t *job = (s_job_t *) zlistx_first (list);
    while (job) {
        s_job_t *next = (s_job_t *) zlistx_next (list);
        if (!sluice_peer_alive (zsock_resolve (self->router), &job->identity, verdicts, NULL)) {
            //  Detaching this node leaves the list's cursor on `next`: iteration stays valid
            s_job_unlist (self, job);
            s_job_free (&job);
            self->abandoned++;
        }
        job = next;
    }
}

static void
s_sweep (s_server_t *self)
{
    bool waiting = zlistx_size (self->parked) || zlistx_size (self->queue)
                || zlistx_size (self->waiters);
    int64_t now = zclock_mono ();
    if (!waiting)
        self->next_sweep = INT64_MAX;
    else
    if (self->next_sweep == INT64_MAX)
        self->next_sweep = now + S_SWEEP_MS;
    else
    if (now >= self->next_sweep) {
        zhashx_t *verdicts = zhashx_new ();
        zhashx_set_key_duplicator (verdicts, (zhashx_duplicator_fn *) strdup);
        zhashx_set_key_destructor (verdicts, (zhashx_destructor_fn *) zstr_free);
        s_sweep_list (self, self->parked, verdicts);
        s_sweep_list (self, self->queue, verdicts);
        s_sweep_list (self, self->waiters, verdicts);
        zhashx_destroy (&verdicts);
        self->next_sweep = now + S_SWEEP_MS;
        s_check_stopped (self);     //  draining may have waited only for abandoned requests
    }
}

static void
s_handle_request (s_server_t *self, sluice_request_t *req)
{
    const char *name = sluice_command_name (req->header.command);
    bool ours = req->header.command >= SLUICE_CMD_STATUS && req->header.command <= SLUICE_CMD_WAIT;
    ours = ours || req->header.command == SLUICE_CMD_PING;
    if (req->error != SLUICE_OK)
        s_malformed (self, req, req->error, req->reason);
    else
    if (ours && req->header.flags) {
        char reason [64];
        snprintf (reason, sizeof reason, "%s takes no flags", name);
        s_malformed (self, req, SLUICE_EPROTO, reason);
    }
    else
    switch (req->header.command) {
        case SLUICE_CMD_REQUEST:  s_on_request (self, req);  break;
        case SLUICE_CMD_WAIT:     s_on_wait (self, req);     break;
        case SLUICE_CMD_STATUS:   s_on_status (self, req);   break;
        case SLUICE_CMD_SHUTDOWN: s_on_shutdown (self, req); break;
        case SLUICE_CMD_PING:     s_on_ping (self, req);     break;
        default: {
            char reason [160];
            snprintf (reason, sizeof reason, "unknown command %u%s%s%s: a model server takes "
                      "REQUEST, STATUS, SHUTDOWN, WAIT and PING", req->header.command,
                      name ? " (" : "", name ? name : "", name ? ")" : "");
            s_malformed (self, req, SLUICE_ECOMMAND, reason);
        }
    }
    sluice_request_fini (req);
}

//  Bind the sockets, start the workers and the load. Returns SLUICE_OK or why not.
static sluice_err_t
s_bind (s_server_t *self, const char *endpoint, const char *events_endpoint,
        char **bound, char **bound_events)
{
    sluice_router_opts_t router_opts = {
        //  Every parked request may be answered in one burst when the load ends
        .sndhwm = self->max_pending + 1000,
        .maxmsgsize = (int64_t) self->max_payload + 4096,
        .curve = self->curve,
    };
    sluice_err_t rc;
    self->router = sluice_router_new (endpoint, &router_opts, &rc, &self->secured);
    self->curve = NULL;             //  the caller's settings live only during _new
    if (!self->router)
        return rc;
    *bound = sluice_bound_endpoint (self->router, endpoint);
    if (events_endpoint && *events_endpoint) {
        self->events = sluice_publisher_new (events_endpoint);
        if (!self->events) {
            zsys_error ("sluice model server: cannot bind events %s: %s", events_endpoint,
                        zmq_strerror (errno));
            return SLUICE_ETRANSPORT;
        }
        *bound_events = strdup (sluice_publisher_endpoint (self->events));
    }
    self->workers = (s_worker_t *) zmalloc (self->worker_count * sizeof *self->workers);
    self->idle = (size_t *) zmalloc (self->worker_count * sizeof *self->idle);
    for (size_t index = 0; index < self->worker_count; index++) {
        self->workers [index].actor = zactor_new (s_worker_actor, &self->model);
        if (!self->workers [index].actor)
            return SLUICE_ENOMEM;
        //  Pushed in reverse so that worker 0 is handed the first job
        self->idle [self->idle_count++] = self->worker_count - 1 - index;
    }
    self->state = SLUICE_MODEL_LOADING;
    s_publish (self, SLUICE_EVENT_LOADING, self->name);
    self->load.iface = &self->model.iface;
    self->loader = zactor_new (s_loader_actor, &self->load);
    return self->loader ? SLUICE_OK : SLUICE_ENOMEM;
}

static void
s_close_router (s_server_t *self)
{
    zsock_destroy (&self->router);
    if (self->secured)
        sluice_curve_release ();
    self->secured = false;
}

//  Undo a failed s_bind.
static void
s_unbind (s_server_t *self)
{
    zactor_destroy (&self->loader);
    for (size_t index = 0; self->workers && index < self->worker_count; index++)
        zactor_destroy (&self->workers [index].actor);
    free (self->workers);
    self->workers = NULL;
    free (self->idle);
    self->idle = NULL;
    self->idle_count = 0;
    sluice_publisher_destroy (&self->events);
    s_close_router (self);
}

static void
s_handle_pipe (s_server_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    char *command = msg ? zmsg_popstr (msg) : NULL;
    if (!command || streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "BIND")) {
        char *endpoint = zmsg_popstr (msg);
        char *events = zmsg_popstr (msg);
        char *bound = NULL, *bound_events = NULL;
        sluice_err_t rc = self->router || !endpoint
                        ? SLUICE_EINVAL
                        : s_bind (self, endpoint, events, &bound, &bound_events);
        if (rc != SLUICE_OK)
            s_unbind (self);        //  the owner destroys us next: poll only the pipe until then
        zsock_send (self->pipe, "iss", (int) rc, bound ? bound : "",
                    bound_events ? bound_events : "");
        zstr_free (&endpoint);
        zstr_free (&events);
        zstr_free (&bound);
        zstr_free (&bound_events);
    }
    else
    if (streq (command, "SHUTDOWN")) {
        s_shutdown (self);
        zsock_signal (self->pipe, 0);
    }
    else
        zsys_error ("sluice model server: invalid pipe command '%s'", command);
    zstr_free (&command);
    zmsg_destroy (&msg);
}

static void
s_server_run (s_server_t *self)
{
    sluice_request_t req = { 0 };
    zmq_pollitem_t *items = self->items;
    while (!self->terminated) {
        int count = 0, router_at = -1, events_at = -1, loader_at = -1, workers_at = -1;
        items [count++] = (zmq_pollitem_t) { zsock_resolve (self->pipe), 0, ZMQ_POLLIN, 0 };
        if (self->router) {
            router_at = count;
            items [count++] = (zmq_pollitem_t) { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 };
        }
        if (self->events) {
            events_at = count;
            items [count++] = (zmq_pollitem_t) { sluice_publisher_socket (self->events), 0, ZMQ_POLLIN, 0 };
        }
        if (self->loader) {
            loader_at = count;
            items [count++] = (zmq_pollitem_t) { zsock_resolve (self->loader), 0, ZMQ_POLLIN, 0 };
        }
        if (self->workers) {
            workers_at = count;
            for (size_t index = 0; index < self->worker_count; index++)
                items [count++] = (zmq_pollitem_t) {
                    zsock_resolve (self->workers [index].actor), 0, ZMQ_POLLIN, 0 };
        }
        s_job_t *soonest = (s_job_t *) zlistx_first (self->deadlines);
        int64_t wake = soonest ? soonest->deadline : INT64_MAX;
        long timeout = sluice_poll_timeout (wake < self->next_sweep ? wake : self->next_sweep);
        if (zmq_poll (items, count, timeout) == -1) {
            if (zmq_errno () == EINTR)
                continue;
            break;          //  context terminated
        }
        if (items [0].revents & ZMQ_POLLIN) {
            while (!self->terminated && (zsock_events (self->pipe) & ZMQ_POLLIN))
                s_handle_pipe (self);
            if (self->terminated)
                break;
        }
        if (loader_at >= 0 && self->loader && (items [loader_at].revents & ZMQ_POLLIN))
            s_handle_loader (self);
        //  Finished inferences first: they free workers for the requests read below
        if (workers_at >= 0)
            for (size_t index = 0; index < self->worker_count; index++)
                if (items [workers_at + (int) index].revents & ZMQ_POLLIN)
                    while (zsock_events (zactor_sock (self->workers [index].actor)) & ZMQ_POLLIN)
                        s_handle_worker (self, index);
        if (router_at >= 0 && (items [router_at].revents & ZMQ_POLLIN)) {
            //  Drain what has arrived, without a poll per message
            for (int handled = 0; handled < S_DRAIN_BATCH; handled++) {
                int rc = sluice_request_recv (zsock_resolve (self->router), &req, 1);
                if (rc <= 0) {
                    if (rc == -1 && zmq_errno () == ETERM)
                        self->terminated = true;
                    break;
                }
                s_handle_request (self, &req);
            }
        }
        if (events_at >= 0 && (items [events_at].revents & ZMQ_POLLIN))
            sluice_publisher_handle (self->events);
        s_expire (self);
        s_sweep (self);
    }
    sluice_request_release (&req);
}

static void
s_free_list (zlistx_t **list_p)
{
    if (*list_p) {
        s_job_t *job;
        while ((job = (s_job_t *) zlistx_detach (*list_p, NULL)))
            s_job_free (&job);
        zlistx_destroy (list_p);
    }
}

static void
s_server_destroy (s_server_t *self)
{
    //  Stop the threads first (a running load or inference is cancelled): after that this
    //  thread alone touches the jobs and the model.
    if (self->loader) {
        zactor_destroy (&self->loader);
        if (self->load.result == SLUICE_OK && !self->model_loaded) {
            self->model.model = self->load.model;
            self->model_loaded = true;
        }
    }
    for (size_t index = 0; self->workers && index < self->worker_count; index++) {
        zactor_destroy (&self->workers [index].actor);
        s_job_free (&self->workers [index].job);
    }
    zlistx_destroy (&self->deadlines);      //  does not own its jobs
    s_free_list (&self->parked);
    s_free_list (&self->queue);
    s_free_list (&self->waiters);
    if (self->model_loaded && self->model.iface.unload)
        self->model.iface.unload (self->model.iface.config, self->model.model);
    sluice_publisher_destroy (&self->events);
    s_close_router (self);
    free (self->workers);
    free (self->idle);
    free (self->items);
    zstr_free (&self->name);
    free ((char *) self->sim.name);
    free ((char *) self->sim.fail_reason);
}

void
sluice_model_server_actor (zsock_t *pipe, void *args)
{
    const sluice_model_server_opts_t *opts = (const sluice_model_server_opts_t *) args;
    s_server_t self;
    memset (&self, 0, sizeof self);
    self.pipe = pipe;
    //  Copy everything the caller's options point at: they die after the signal
    if (opts->model)
        self.model.iface = *opts->model;
    else {
        self.sim.name = strdup (opts->sim.name ? opts->sim.name : SLUICE_MODEL_SIM_DEFAULT_NAME);
        self.sim.fail_reason = opts->sim.fail_reason ? strdup (opts->sim.fail_reason) : NULL;
        self.sim.load_ms = opts->sim.load_ms;
        self.sim.infer_ms = opts->sim.infer_ms;
        self.model.iface = (sluice_model_iface_t) {
            .name = self.sim.name,
            .config = &self.sim,
            .load = sluice_model_sim_load,
            .infer = sluice_model_sim_infer,
            .unload = sluice_model_sim_unload,
        };
    }
    char name [128];
    s_copy_line (name, sizeof name, self.model.iface.name);
    self.name = strdup (name);
    self.model.iface.name = self.name;
    self.worker_count = opts->workers ? opts->workers : SLUICE_MODEL_DEFAULT_WORKERS;
    self.max_pending = opts->max_pending ? opts->max_pending : SLUICE_MODEL_DEFAULT_MAX_PENDING;
    self.max_payload = opts->max_payload ? opts->max_payload : SLUICE_MODEL_DEFAULT_MAX_PAYLOAD;
    self.curve = opts->curve;
    self.state = SLUICE_MODEL_LOADING;
    self.next_sweep = INT64_MAX;
    self.parked = zlistx_new ();
    self.queue = zlistx_new ();
    self.waiters = zlistx_new ();
    self.deadlines = zlistx_new ();
    zlistx_set_comparator (self.deadlines, s_compare_deadline);
    self.items = (zmq_pollitem_t *) zmalloc ((4 + self.worker_count) * sizeof *self.items);
    zsock_signal (self.pipe, 0);
    s_server_run (&self);
    s_server_destroy (&self);
}

const char *
sluice_model_state_name (sluice_model_state_t state)
{
    switch (state) {
        case SLUICE_MODEL_LOADING:  return "loading";
        case SLUICE_MODEL_READY:    return "ready";
        case SLUICE_MODEL_FAILED:   return "failed";
        case SLUICE_MODEL_DRAINING: return "draining";
        case SLUICE_MODEL_STOPPED:  return "stopped";
        default:                    return "unknown";
    }
}

// ---------------------------------------------------------------------------------------------
//  Handle

struct sluice_model_server_t {
    sluice_server_t server;
};

sluice_model_server_t *
sluice_model_server_new (const sluice_model_server_opts_t *opts, sluice_err_t *err)
{
    sluice_err_t dummy;
    if (!err)
        err = &dummy;
    bool valid = opts && opts->endpoint && *opts->endpoint && opts->workers <= S_MAX_WORKERS;
    if (valid && opts->model)
        valid = opts->model->name && *opts->model->name && opts->model->load
             && opts->model->infer;
    else
    if (valid)
        valid = opts->sim.load_ms >= 0 && opts->sim.infer_ms >= 0;
    if (!valid) {
        *err = SLUICE_EINVAL;
        return NULL;
    }
    sluice_model_server_t *self = (sluice_model_server_t *) zmalloc (sizeof *self);
    *err = sluice_server_start (&self->server, sluice_model_server_actor, (void *) opts,
                                opts->endpoint, opts->events_endpoint);
    if (*err != SLUICE_OK) {
        free (self);
        return NULL;
    }
    return self;
}

void
sluice_model_server_destroy (sluice_model_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sluice_model_server_t *self = *self_p;
    sluice_server_stop (&self->server);
    free (self);
    *self_p = NULL;
}

const char *
sluice_model_server_endpoint (sluice_model_server_t *self)
{
    return self->server.endpoint;
}

const char *
sluice_model_server_events_endpoint (sluice_model_server_t *self)
{
    return self->server.events_endpoint;
}

sluice_err_t
sluice_model_server_shutdown (sluice_model_server_t *self)
{
    if (zstr_send (self->server.actor, "SHUTDOWN") == -1 || zsock_wait (self->server.actor) == -1)
        return SLUICE_ETRANSPORT;
    return SLUICE_OK;
}
