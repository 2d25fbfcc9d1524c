/*  sluice_model_server.c - the model-server actor: requests wait for the model, then go.

    Three kinds of threads, each a czmq actor, talking only over their pipes:
    - the server actor owns every request; its sockets, parking, deadlines and vanished peers
      are the engine's (src/sluice_engine.h), this file is the model server's own logic;
    - one loader runs iface.load once and reports "DONE", so the server loop never blocks on it;
    - a pool of workers run iface.infer, one request each at a time.
    A job pointer travels server -> worker ("JOB") -> server ("DONE"); while a worker has it,
    the server does not touch it or the request it belongs to.

    A REQUEST is in exactly one place: `parked` (waiting for the load to end), `queue`
    (accepted, waiting for a free worker), or a worker (in flight). A WAIT is in `waiters`.
    The end of the load is the broadcast: one message from the loader releases every parked
    request at once, in arrival order (the seed's asyncio.Event, with the failure reason
    carried to every waiter).
*/
#include "sluice_engine.h"
#include "sluice_model_ctx.h"
#include "sluice_model.h"
#include "sluice_events.h"
#include <errno.h>
#include <limits.h>
#include <string.h>

#define S_MAX_WORKERS    256
#define S_REASON_SIZE    256
#define S_SHUTDOWN_TEXT  "Server is shutting down"

// ---------------------------------------------------------------------------------------------
//  Model context: how a load or inference waits without blocking the server's destruction

struct sluice_model_ctx_t {
    zsock_t *pipe;          //  the loader's or worker's pipe
    bool cancelled;         //  CANCEL (shutdown during load, a cancelled stream) or $TERM
    bool terminated;        //  $TERM arrived: the thread ends without reporting
    void *job;              //  the streaming inference running, or NULL
    size_t credit;          //  tokens it may emit before the server returns credit
};

//  Read what arrived on the pipe while a model function waits: the only commands a busy
//  loader or worker can get are CANCEL, CREDIT (a stream's tokens were taken) and $TERM.
//  A CREDIT or CANCEL meant for a job that has ended is read by the worker's loop (and
//  ignored) before its next JOB: the server sends them only while the job runs.
static void
s_ctx_read_pipe (sluice_model_ctx_t *ctx)
{
    while (!ctx->terminated && (zsock_events (ctx->pipe) & ZMQ_POLLIN)) {
        zmsg_t *msg = sluice_pipe_recv (ctx->pipe);
        char *command = msg ? zmsg_popstr (msg) : NULL;
        if (!command || streq (command, "$TERM"))
            ctx->cancelled = ctx->terminated = true;
        else
        if (streq (command, "CANCEL"))
            ctx->cancelled = true;
        else
        if (streq (command, "CREDIT")) {
            char *tokens = zmsg_popstr (msg);
            ctx->credit += tokens ? (size_t) atol (tokens) : 0;
            zstr_free (&tokens);
        }
        zstr_free (&command);
        zmsg_destroy (&msg);
    }
}

//  Most items a model polls besides the pipe (the exec model: stdin, stdout, stderr)
#define S_MAX_POLL  8

int
sluice_model_ctx_poll (sluice_model_ctx_t *ctx, zmq_pollitem_t *items, int count,
                       long timeout_ms)
{
    if (ctx && ctx->cancelled)
        return -1;
    assert (count >= 0 && count <= S_MAX_POLL);
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms;
    while (true) {
        zmq_pollitem_t all [S_MAX_POLL + 1];
        int first = 0;
        if (ctx)
            all [first++] = (zmq_pollitem_t) { zsock_resolve (ctx->pipe), 0, ZMQ_POLLIN, 0 };
        if (count)
            memcpy (all + first, items, (size_t) count * sizeof *items);
        long timeout = sluice_poll_timeout (deadline);
        if (first + count == 0) {
            //  Outside a server, nothing to watch: a plain sleep (forever makes no sense)
            if (timeout > 0)
                zclock_sleep ((int) timeout);
            return timeout < 0 ? -1 : 0;
        }
        int rc = zmq_poll (all, first + count, timeout);
        if (rc == -1) {
            if (zmq_errno () == EINTR)
                continue;
            if (ctx)
                ctx->cancelled = ctx->terminated = true;    //  the context is going away
            return -1;
        }
        if (ctx && (all [0].revents & ZMQ_POLLIN)) {
            s_ctx_read_pipe (ctx);
            if (ctx->cancelled)
                return -1;
            rc--;                   //  a CREDIT: nothing the caller waits for
        }
        if (rc > 0 || zclock_mono () >= deadline) {
            for (int index = 0; index < count; index++)
                items [index].revents = all [first + index].revents;
            return rc;
        }
    }
}

int
sluice_model_wait (sluice_model_ctx_t *ctx, int fd, int timeout_ms)
{
    zmq_pollitem_t item = { NULL, fd, ZMQ_POLLIN, 0 };
    int rc = sluice_model_ctx_poll (ctx, &item, fd >= 0 ? 1 : 0, timeout_ms);
    //  A hung-up or failed fd counts as readable: the caller's read will tell
    return rc < 0 ? -1 : rc > 0 ? 1 : 0;
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

sluice_err_t
sluice_model_emit (sluice_model_ctx_t *ctx, const void *data, size_t size)
{
    if (!ctx || !ctx->job || (!data && size))
        return SLUICE_EINVAL;
    s_ctx_read_pipe (ctx);          //  a CANCEL stops the generator even while it has credit
    //  No credit: the window is full. Wait for the server to say tokens were taken, so the
    //  generator itself is paused (not its output queued somewhere)
    while (!ctx->cancelled && ctx->credit == 0) {
        zmq_pollitem_t item = { zsock_resolve (ctx->pipe), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, -1) == -1 && zmq_errno () != EINTR)
            ctx->cancelled = ctx->terminated = true;
        else
            s_ctx_read_pipe (ctx);
    }
    if (ctx->cancelled)
        return SLUICE_ECLOSED;
    zmsg_t *msg = zmsg_new ();
    if (!msg)
        return SLUICE_ENOMEM;
    zmsg_addstr (msg, "TOKEN");
    zmsg_addmem (msg, &ctx->job, sizeof ctx->job);
    zmsg_addmem (msg, data, size);
    if (zmsg_send (&msg, ctx->pipe) == -1) {
        zmsg_destroy (&msg);
        ctx->cancelled = true;      //  the server is going away
        return SLUICE_ECLOSED;
    }
    ctx->credit--;
    return SLUICE_OK;
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

sluice_err_t
sluice_model_sim_stream (sluice_model_ctx_t *ctx, void *config, void *model,
                         const void *payload, size_t size, char **reason)
{
    const sluice_model_sim_t *sim = (const sluice_model_sim_t *) config;
    char *text = sim->text ? strdup (sim->text)
                           : zsys_sprintf ("Response %.*s from %s", (int) size,
                                           (const char *) payload, (const char *) model);
    if (!text)
        return SLUICE_ENOMEM;
    //  One token per word, with the spaces after it: the tokens concatenate to the text
    sluice_err_t rc = SLUICE_OK;
    const char *word = text;
    while (*word && rc == SLUICE_OK) {
        const char *end = word;
        while (*end && *end != ' ')
            end++;
        while (*end == ' ')
            end++;
        if (word != text && !sluice_model_sleep (ctx, sim->token_ms))
            rc = SLUICE_ECLOSED;
        else
            rc = sluice_model_emit (ctx, word, (size_t) (end - word));
        word = end;
    }
    free (text);
    return rc;
}

// ---------------------------------------------------------------------------------------------
//  Jobs, loader and workers

typedef struct {
    sluice_model_iface_t iface;   //  the server's copy
    void *model;                  //  set once the load succeeded, before any job is sent
} s_model_t;

typedef struct s_stream_t s_stream_t;

//  An inference: the REQUEST it answers and, once the worker is done, its outcome. A
//  streaming one belongs to its stream and reports tokens as they come ("TOKEN").
typedef struct {
    sluice_held_t *request;
    s_stream_t *stream;           //  NULL: one response
    size_t window;                //  a stream's initial credit
    sluice_err_t result;
    char *response;               //  the response; a failure's reason
    size_t response_size;
} s_job_t;

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
    zmsg_t *msg = sluice_pipe_recv (source);
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
        char *command = sluice_pipe_recv_command (pipe);
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
    zmq_msg_t *frame = &job->request->frames.items [0];
    size_t size = zmq_msg_size (frame);
    char *payload = (char *) malloc (size + 1);
    if (!payload) {
        job->result = SLUICE_ENOMEM;
        return;
    }
    if (size)
        memcpy (payload, zmq_msg_data (frame), size);
    payload [size] = 0;
    char *response = NULL;
    size_t response_size = 0;
    sluice_err_t rc;
    if (job->stream && model->iface.stream) {
        ctx->job = job;
        ctx->credit = job->window;
        rc = model->iface.stream (ctx, model->iface.config, model->model, payload, size,
                                  &response);
        response_size = response ? strlen (response) : 0;
        ctx->job = NULL;
    }
    else
    if (job->stream) {
        //  A model without a token loop streams its whole response as one token
        rc = model->iface.infer (ctx, model->iface.config, model->model, payload, size,
                                 &response, &response_size);
        if (rc == SLUICE_OK) {
            ctx->job = job;
            ctx->credit = job->window;
            rc = sluice_model_emit (ctx, response ? response : "", response ? response_size : 0);
            ctx->job = NULL;
            free (response);
            response = NULL;
            response_size = 0;
        }
    }
    else
        rc = model->iface.infer (ctx, model->iface.config, model->model, payload, size,
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
//  Server state

typedef struct {
    zactor_t *actor;
    s_job_t *job;                 //  in flight on this worker, or NULL
} s_worker_t;

typedef struct {
    sluice_engine_t *engine;
    s_model_t model;
    char *name;                   //  model name (one line)
    sluice_model_sim_t sim;       //  the simulated model's config, when it is the model
    size_t worker_count;
    size_t max_pending;
    size_t peer_max_pending;      //  the engine's peer_max_parked: one connection's waiting
    size_t max_payload;

    sluice_model_state_t state;
    char reason [S_REASON_SIZE];  //  load failure reason (one line)
    zactor_t *loader;             //  while loading
    s_load_t load;
    bool model_loaded;            //  model.model must be unloaded at the end

    s_worker_t *workers;
    size_t *idle;                 //  stack of idle worker indexes
    size_t idle_count;
    size_t inflight;
    sluice_fifo_t parked;         //  REQUESTs waiting for the load, oldest first
    sluice_fifo_t queue;          //  accepted REQUESTs waiting for a worker, oldest first
    sluice_fifo_t waiters;        //  WAITs

    uint64_t served;
    uint64_t failed;
    uint64_t abandoned;           //  waiting requests dropped because their peer vanished

    size_t window;                //  tokens a stream may buffer
    s_stream_t *streams;          //  every stream a client can still PULL or CANCEL
    size_t stream_count;
    size_t streams_ended;         //  of them, those whose generator returned (they hold
                                  //  tokens or an end not yet taken)
    uint64_t last_stream_id;
    uint64_t generated, delivered, cancelled;
} s_server_t;

//  A streaming REQUEST, from its acceptance (its id answered) until its end was delivered or
//  it was cancelled. Its REQUEST stays held as its `ticket` (in `queue`, then in flight) until
//  the generator returns, so the queue and the workers serve requests and streams alike. The
//  tokens wait in a ring of `window` slots: the worker emits only with credit, which comes
//  back as PULL replies take tokens, so the ring never overflows.
struct s_stream_t {
    uint64_t id;
    sluice_held_t *ticket;        //  its REQUEST while queued or generating, else NULL
    s_job_t *job;                 //  on a worker, else NULL
    sluice_peer_t *peer;          //  its client: a vanished client cancels its streams
    s_stream_t *peer_prev, *peer_next;
    s_stream_t *prev, *next;      //  in self->streams (not once cancelled)
    zmq_msg_t *tokens;            //  ring of `window` tokens
    size_t head, count;
    sluice_fifo_t pulls;          //  PULLs waiting for tokens, oldest first
    bool done;                    //  the generator has returned: `result`, `reason`
    bool cancelled;
    sluice_err_t result;
    char *reason;
};

//  Copy text into out as one line (status text and events are line-based)
static void
s_copy_line (char *out, size_t size, const char *text)
{
    snprintf (out, size, "%s", text ? text : "");
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

//  Parked, queued (streams queued for a worker among them) and in flight, waiting PULLs and
//  WAITs, and streams whose generator ended: each holds memory until its client acts
static size_t
s_pending (s_server_t *self)
{
    return sluice_engine_parked (self->engine) + self->inflight + self->streams_ended;
}

//  Every REQUEST answered counts once: served or failed when its reply was sent, else only in
//  the engine's lost (the client had gone: it was served for nobody).
static void
s_count (s_server_t *self, uint8_t command, sluice_err_t status, int sent)
{
    if (command != SLUICE_CMD_REQUEST || sent == -1)
        return;
    if (status == SLUICE_OK)
        self->served++;
    else
        self->failed++;
}

//  Answer a held request (parked, queued, waiting or done) and release it.
static void
s_answer (s_server_t *self, sluice_held_t *held, sluice_err_t status, const char *text,
          size_t size)
{
    uint8_t command = held->header.command;     //  held is released by the answer
    int sent = sluice_engine_answer_text (self->engine, held, status, text, size);
    s_count (self, command, status, sent);
}

static void
s_answer_str (s_server_t *self, sluice_held_t *held, sluice_err_t status, const char *text)
{
    s_answer (self, held, status, text, strlen (text));
}

//  Answer a request that is not kept (a refusal by state or limit).
static void
s_refuse (s_server_t *self, sluice_request_t *req, sluice_err_t status, const char *reason)
{
    s_count (self, req->header.command, status,
             sluice_engine_refuse (self->engine, req, status, reason, false));
}

//  Answer every request of a FIFO with the same error.
static void
s_answer_all (s_server_t *self, sluice_fifo_t *fifo, sluice_err_t status, const char *text)
{
    sluice_held_t *held;
    while ((held = sluice_fifo_head (fifo)))
        s_answer_str (self, held, status, text);
}

// ---------------------------------------------------------------------------------------------
//  Streams

//  The stream a held REQUEST is the ticket of, or NULL (a plain REQUEST, or a streaming one
//  still parked for the load: no stream yet)
static s_stream_t *
s_ticket_stream (sluice_held_t *held)
{
    return held->header.command == SLUICE_CMD_REQUEST
        && (held->header.flags & SLUICE_FLAG_STREAM) ? (s_stream_t *) held->data : NULL;
}

static s_stream_t *
s_stream_find (s_server_t *self, const zmq_msg_t *id_frame)
{
    uint64_t id = sluice_get64 ((const uint8_t *) zmq_msg_data ((zmq_msg_t *) id_frame));
    //  A linear search: streams are bounded by the workers and max_pending, and this is far
    //  cheaper than the round trip that asks
    s_stream_t *stream = self->streams;
    while (stream && stream->id != id)
        stream = stream->next;
    return stream;
}

static void
s_stream_drop_tokens (s_stream_t *stream, size_t window)
{
    while (stream->count) {
        zmq_msg_close (&stream->tokens [stream->head]);
        stream->head = (stream->head + 1) % window;
        stream->count--;
    }
}

static void
s_stream_free (s_server_t *self, s_stream_t **stream_p)
{
    s_stream_t *stream = *stream_p;
    if (!stream)
        return;
    *stream_p = NULL;
    s_stream_drop_tokens (stream, self->window);
    free (stream->tokens);
    free (stream->reason);
    free (stream);
}

//  No longer findable, nor its client's: from here only its job (if any) knows it
static void
s_stream_unlink (s_server_t *self, s_stream_t *stream)
{
    if (stream->prev)
        stream->prev->next = stream->next;
    else
    if (self->streams == stream)
        self->streams = stream->next;
    if (stream->next)
        stream->next->prev = stream->prev;
    if (stream->peer) {
        if (stream->peer_prev)
            stream->peer_prev->peer_next = stream->peer_next;
        else
            sluice_peer_set_data (stream->peer, stream->peer_next);
        if (stream->peer_next)
            stream->peer_next->peer_prev = stream->peer_prev;
    }
    stream->prev = stream->next = stream->peer_prev = stream->peer_next = NULL;
    stream->peer = NULL;
    self->stream_count--;
    if (stream->done)
        self->streams_ended--;
}

//  Tell the worker generating the stream (a CANCEL, or CREDIT for tokens taken)
static void
s_stream_tell (s_server_t *self, s_stream_t *stream, const char *command, size_t tokens)
{
    for (size_t index = 0; index < self->worker_count; index++)
        if (self->workers [index].job == stream->job) {
            zmsg_t *msg = zmsg_new ();
            zmsg_addstr (msg, command);
            if (tokens)
                zmsg_addstrf (msg, "%zu", tokens);
            if (zmsg_send (&msg, self->workers [index].actor) == -1) {
                zmsg_destroy (&msg);
                SLUICE_ERROR ("sluice model server: cannot reach an inference worker");
            }
            return;
        }
}

//  Cancel a stream: its waiting PULLs get ECLOSED, its tokens are dropped, its generator is
//  told to stop; it is freed now, or when its worker reports (see s_on_worker).
static void
s_stream_cancel (s_server_t *self, s_stream_t *stream)
{
    s_stream_unlink (self, stream);
    stream->cancelled = true;
    self->cancelled++;
    s_stream_drop_tokens (stream, self->window);
    s_answer_all (self, &stream->pulls, SLUICE_ECLOSED, "stream cancelled");
    if (stream->job)
        s_stream_tell (self, stream, "CANCEL", 0);
    else {
        //  Still queued for a worker: it never runs
        if (stream->ticket) {
            stream->ticket->data = NULL;
            sluice_engine_release (self->engine, &stream->ticket);
        }
        s_stream_free (self, &stream);
    }
}

//  Answer the stream's waiting PULLs, oldest first, with what it has: tokens (several per
//  reply), or its end. A stream whose end was answered is gone.
static void
s_stream_serve (s_server_t *self, s_stream_t *stream)
{
    sluice_held_t *pull;
    while ((pull = sluice_fifo_head (&stream->pulls))) {
        if (stream->count == 0 && !stream->done)
            return;                 //  wait for the generator
        if (stream->count == 0) {
            //  The end: after the last token, OK with no token, or the model's failure
            int sent;
            if (stream->result == SLUICE_OK)
                sent = sluice_engine_answer (self->engine, pull, SLUICE_OK,
                                             SLUICE_FLAG_FINAL | SLUICE_FLAG_EOS, NULL, 0);
            else {
                const char *text = stream->reason && *stream->reason ? stream->reason
                                                                     : "inference failed";
                zmq_msg_t frame;
                zmq_msg_init_size (&frame, strlen (text));
                memcpy (zmq_msg_data (&frame), text, strlen (text));
                sent = sluice_engine_answer (self->engine, pull, stream->result,
                                             SLUICE_FLAG_EOS, &frame, 1);
                zmq_msg_close (&frame);
            }
            sluice_engine_release (self->engine, &pull);
            if (sent == 0) {
                s_stream_unlink (self, stream);
                s_stream_free (self, &stream);
                return;
            }
            continue;               //  not delivered: a later PULL gets the end again
        }
        size_t tokens = pull->header.count < stream->count ? pull->header.count : stream->count;
        zmq_msg_t frames [SLUICE_MODEL_MAX_WINDOW];
        for (size_t index = 0; index < tokens; index++) {
            zmq_msg_init (&frames [index]);
            zmq_msg_copy (&frames [index], &stream->tokens [(stream->head + index) % self->window]);
        }
        bool end = stream->done && stream->result == SLUICE_OK && tokens == stream->count;
        uint8_t flags = end ? SLUICE_FLAG_FINAL | SLUICE_FLAG_EOS : 0;
        int sent = sluice_engine_answer (self->engine, pull, SLUICE_OK, flags, frames, tokens);
        for (size_t index = 0; index < tokens; index++)
            zmq_msg_close (&frames [index]);
        sluice_engine_release (self->engine, &pull);
        if (sent == -1)
            continue;               //  not delivered: the tokens stay for the next PULL
        for (size_t index = 0; index < tokens; index++) {
            zmq_msg_close (&stream->tokens [stream->head]);
            stream->head = (stream->head + 1) % self->window;
        }
        stream->count -= tokens;
        self->delivered += tokens;
        if (stream->job)
            s_stream_tell (self, stream, "CREDIT", tokens);
        if (end) {
            s_stream_unlink (self, stream);
            s_stream_free (self, &stream);
            return;
        }
    }
}

//  A token arrived from the stream's worker
static void
s_stream_token (s_server_t *self, s_stream_t *stream, zframe_t *frame)
{
    self->generated++;
    if (stream->cancelled)
        return;                     //  emitted before the worker saw the CANCEL
    if (stream->count == self->window) {
        //  Cannot happen: the worker emits only with credit
        SLUICE_ERROR ("sluice model server: a stream's worker emitted beyond its window");
        return;
    }
    zmq_msg_t *slot = &stream->tokens [(stream->head + stream->count) % self->window];
    size_t size = frame ? zframe_size (frame) : 0;
    if (zmq_msg_init_size (slot, size) == -1) {
        SLUICE_ERROR ("sluice model server: out of memory: a token is dropped");
        return;
    }
    if (size)
        memcpy (zmq_msg_data (slot), zframe_data (frame), size);
    stream->count++;
    s_stream_serve (self, stream);
}

//  The generator has returned: the stream's end is known; its worker is free
static void
s_stream_done (s_server_t *self, s_stream_t *stream, sluice_err_t result, char *reason)
{
    stream->job = NULL;
    if (stream->ticket) {
        stream->ticket->data = NULL;
        sluice_engine_release (self->engine, &stream->ticket);
    }
    if (stream->cancelled) {
        free (reason);
        s_stream_free (self, &stream);
        return;
    }
    stream->done = true;
    self->streams_ended++;
    stream->result = result;
    stream->reason = reason;
    s_stream_serve (self, stream);
}

//  Accept a streaming REQUEST: make its stream and answer its id. The request stays held as
//  the stream's ticket, with no deadline left (it was answered): the caller queues or
//  dispatches it. False when it was answered with an error, or lost, and released.
static bool
s_stream_accept (s_server_t *self, sluice_held_t *held)
{
    s_stream_t *stream = (s_stream_t *) calloc (1, sizeof *stream);
    if (stream)
        stream->tokens = (zmq_msg_t *) calloc (self->window, sizeof *stream->tokens);
    sluice_peer_t *peer = stream && stream->tokens
                        ? sluice_engine_peer (self->engine, &held->identity, true) : NULL;
    if (!peer) {
        if (stream)
            free (stream->tokens);
        free (stream);
        s_answer_str (self, held, SLUICE_EBUSY, "out of memory: request refused, try again later");
        return false;
    }
    stream->id = ++self->last_stream_id;
    uint8_t id [8];
    sluice_put64 (id, stream->id);
    zmq_msg_t frame;
    zmq_msg_init_size (&frame, sizeof id);
    memcpy (zmq_msg_data (&frame), id, sizeof id);
    int sent = sluice_engine_answer (self->engine, held, SLUICE_OK, 0, &frame, 1);
    zmq_msg_close (&frame);
    s_count (self, SLUICE_CMD_REQUEST, SLUICE_OK, sent);
    if (sent == -1) {
        sluice_engine_release (self->engine, &held);
        free (stream->tokens);
        free (stream);
        return false;
    }
    sluice_engine_unwait (self->engine, held);      //  out of `parked`, and of the deadlines
    held->deadline = INT64_MAX;
    held->header.timeout_ms = SLUICE_WAIT_FOREVER;
    held->data = stream;
    stream->ticket = held;
    stream->peer = peer;
    stream->peer_next = (s_stream_t *) sluice_peer_data (peer);
    if (stream->peer_next)
        stream->peer_next->peer_prev = stream;
    sluice_peer_set_data (peer, stream);
    stream->next = self->streams;
    if (self->streams)
        self->streams->prev = stream;
    self->streams = stream;
    self->stream_count++;
    return true;
}

//  Hand a request (or a stream's ticket) to an idle worker.
static void
s_dispatch (s_server_t *self, sluice_held_t *held)
{
    assert (self->idle_count > 0);
    s_job_t *job = (s_job_t *) calloc (1, sizeof *job);
    size_t index = self->idle [--self->idle_count];
    s_stream_t *stream = s_ticket_stream (held);
    if (job) {
        job->request = held;        //  before the worker sees the job
        job->stream = stream;
        job->window = self->window;
    }
    if (!job || s_send_ptr (self->workers [index].actor, "JOB", job) == -1) {
        self->idle [self->idle_count++] = index;
        free (job);
        if (stream)
            s_stream_done (self, stream, SLUICE_EINTERNAL,
                           strdup ("cannot reach an inference worker"));
        else
            s_answer_str (self, held, SLUICE_EINTERNAL, "cannot reach an inference worker");
        return;
    }
    if (stream)
        stream->job = job;
    else
        held->data = job;
    self->workers [index].job = job;
    self->inflight++;
}

//  Dispatch queued requests, oldest first, while workers are idle.
static void
s_pump (s_server_t *self)
{
    sluice_held_t *held;
    while (self->idle_count > 0 && (held = sluice_fifo_head (&self->queue))) {
        sluice_engine_unwait (self->engine, held);
        s_dispatch (self, held);
    }
}

static void
s_check_stopped (s_server_t *self)
{
    if (self->state == SLUICE_MODEL_DRAINING && !self->loader && self->inflight == 0
    &&  sluice_fifo_size (&self->queue) == 0 && self->stream_count == 0) {
        self->state = SLUICE_MODEL_STOPPED;
        sluice_engine_publish (self->engine, SLUICE_EVENT_STOPPED, "");
    }
}

static void
s_shutdown (void *self_)
{
    s_server_t *self = (s_server_t *) self_;
    if (self->state == SLUICE_MODEL_DRAINING || self->state == SLUICE_MODEL_STOPPED)
        return;
    self->state = SLUICE_MODEL_DRAINING;
    sluice_engine_publish (self->engine, SLUICE_EVENT_DRAINING, "");
    //  Requests that never got past the readiness check are refused; accepted ones (queued
    //  for a worker or in flight) complete normally.
    s_answer_all (self, &self->parked, SLUICE_ESHUTDOWN, S_SHUTDOWN_TEXT);
    s_answer_all (self, &self->waiters, SLUICE_ESHUTDOWN, S_SHUTDOWN_TEXT);
    if (self->loader)
        zstr_send (self->loader, "CANCEL");     //  the load ends early; we wait for its DONE
    s_check_stopped (self);
}

// ---------------------------------------------------------------------------------------------
//  The loader and the workers report

//  The loader reported: the one-shot broadcast to everything parked.
static void
s_on_loader (void *self_, void *socket)
{
    s_server_t *self = (s_server_t *) self_;
    char *command = sluice_pipe_recv_command (self->loader);
    bool done = command && streq (command, "DONE");
    zstr_free (&command);
    if (!done)
        return;
    sluice_engine_unwatch (self->engine, self->loader);
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
        sluice_engine_publish (self->engine, SLUICE_EVENT_READY, self->name);
        s_answer_all (self, &self->waiters, SLUICE_OK, self->name);
        //  Every parked request goes at once: to the workers, the rest queued behind them;
        //  a streaming one is told its stream id first
        sluice_held_t *held;
        while ((held = sluice_fifo_head (&self->parked))) {
            sluice_engine_unwait (self->engine, held);
            if (!(held->header.flags & SLUICE_FLAG_STREAM) || s_stream_accept (self, held))
                sluice_engine_wait_in (self->engine, held, &self->queue);
        }
        s_pump (self);
    }
    else {
        self->state = SLUICE_MODEL_FAILED;
        s_copy_line (self->reason, sizeof self->reason, self->load.reason);
        sluice_engine_publish (self->engine, SLUICE_EVENT_FAILED, self->reason);
        s_answer_all (self, &self->parked, SLUICE_ELOADFAIL, self->reason);
        s_answer_all (self, &self->waiters, SLUICE_ELOADFAIL, self->reason);
    }
}

static void
s_on_worker (void *self_, void *socket)
{
    s_server_t *self = (s_server_t *) self_;
    size_t index = 0;
    while (index < self->worker_count && (void *) self->workers [index].actor != socket)
        index++;
    assert (index < self->worker_count);
    s_worker_t *worker = &self->workers [index];
    while (zsock_events (zactor_sock (worker->actor)) & ZMQ_POLLIN) {
        zmsg_t *msg = sluice_pipe_recv (worker->actor);
        char *command = msg ? zmsg_popstr (msg) : NULL;
        zframe_t *frame = msg ? zmsg_pop (msg) : NULL;
        void *pointer = NULL;
        if (frame && zframe_size (frame) == sizeof pointer)
            memcpy (&pointer, zframe_data (frame), sizeof pointer);
        zframe_destroy (&frame);
        bool ours = command && pointer && pointer == worker->job;
        bool token = ours && streq (command, "TOKEN") && worker->job->stream;
        bool done = ours && streq (command, "DONE");
        zstr_free (&command);
        if (token) {
            frame = zmsg_pop (msg);
            s_stream_token (self, worker->job->stream, frame);
            zframe_destroy (&frame);
        }
        zmsg_destroy (&msg);
        if (!done)
            continue;
        s_job_t *job = worker->job;
        worker->job = NULL;
        self->idle [self->idle_count++] = index;
        self->inflight--;
        if (job->stream) {
            s_stream_done (self, job->stream, job->result, job->response);
            free (job);
            continue;
        }
        sluice_held_t *held = job->request;
        held->data = NULL;
        if (job->result == SLUICE_OK)
            s_answer (self, held, SLUICE_OK, job->response ? job->response : "", job->response_size);
        else
        if (job->response && job->response_size)
            s_answer (self, held, job->result, job->response, job->response_size);
        else
            s_answer_str (self, held, job->result, "inference failed");
        free (job->response);
        free (job);
    }
    s_pump (self);
    s_check_stopped (self);
}

// ---------------------------------------------------------------------------------------------
//  Commands (the command table has checked flags, frames and count)

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

static sluice_held_t *
s_hold (s_server_t *self, sluice_request_t *req)
{
    sluice_held_t *held = sluice_engine_hold (self->engine, req);
    if (!held)
        s_refuse (self, req, SLUICE_EBUSY, "out of memory: request refused, try again later");
    return held;
}

static void
s_on_request (void *self_, sluice_request_t *req)
{
    s_server_t *self = (s_server_t *) self_;
    size_t size = zmq_msg_size (&req->frames.items [0]);
    if (size > self->max_payload) {
        char reason [128];
        snprintf (reason, sizeof reason, "payload of %zu bytes exceeds the maximum of %zu",
                  size, self->max_payload);
        sluice_engine_refuse (self->engine, req, SLUICE_ETOOBIG, reason, true);
        return;
    }
    if (s_refused_by_state (self, req))
        return;
    sluice_held_t *held = s_hold (self, req);
    if (!held)
        return;
    bool loading = self->state == SLUICE_MODEL_LOADING;
    if (!loading && (held->header.flags & SLUICE_FLAG_STREAM) && !s_stream_accept (self, held))
        return;
    if (!loading && self->idle_count > 0 && sluice_fifo_size (&self->queue) == 0)
        s_dispatch (self, held);
    else
        //  Timeout 0 cannot wait: the engine has it expire at once
        sluice_engine_wait_in (self->engine, held, loading ? &self->parked : &self->queue);
}

static void
s_on_wait (void *self_, sluice_request_t *req)
{
    s_server_t *self = (s_server_t *) self_;
    if (self->state == SLUICE_MODEL_READY) {
        sluice_engine_reply_text (self->engine, req, SLUICE_OK, self->name, strlen (self->name));
        return;
    }
    if (s_refused_by_state (self, req))
        return;
    sluice_held_t *held = s_hold (self, req);
    if (held)
        sluice_engine_wait_in (self->engine, held, &self->waiters);
}

static void
s_on_shutdown (void *self_, sluice_request_t *req)
{
    s_server_t *self = (s_server_t *) self_;
    s_shutdown (self);
    const char *state = sluice_model_state_name (self->state);
    sluice_engine_reply_text (self->engine, req, SLUICE_OK, state, strlen (state));
}

//  PULL and CANCEL name a stream; accepted streams are served in any state (a draining
//  server completes them)
static s_stream_t *
s_stream_of (s_server_t *self, sluice_request_t *req)
{
    s_stream_t *stream = s_stream_find (self, &req->frames.items [0]);
    if (!stream)
        sluice_engine_refuse (self->engine, req, SLUICE_ECLOSED,
                              "no such stream: it ended, was cancelled or never started", false);
    return stream;
}

static void
s_on_pull (void *self_, sluice_request_t *req)
{
    s_server_t *self = (s_server_t *) self_;
    s_stream_t *stream = s_stream_of (self, req);
    sluice_held_t *held = stream ? s_hold (self, req) : NULL;
    if (!held)
        return;
    //  Timeout 0 with nothing to take: the engine has it expire at once
    sluice_engine_wait_in (self->engine, held, &stream->pulls);
    s_stream_serve (self, stream);
    s_check_stopped (self);
}

static void
s_on_cancel (void *self_, sluice_request_t *req)
{
    s_server_t *self = (s_server_t *) self_;
    s_stream_t *stream = s_stream_of (self, req);
    if (!stream)
        return;
    s_stream_cancel (self, stream);
    sluice_engine_reply_text (self->engine, req, SLUICE_OK, "cancelled", strlen ("cancelled"));
    s_check_stopped (self);
}

static const sluice_handler_t s_handlers [] = {
    { SLUICE_CMD_REQUEST,  s_on_request },
    { SLUICE_CMD_WAIT,     s_on_wait },
    { SLUICE_CMD_SHUTDOWN, s_on_shutdown },
    { SLUICE_CMD_PULL,     s_on_pull },
    { SLUICE_CMD_CANCEL,   s_on_cancel },
    { 0, NULL }
};

// ---------------------------------------------------------------------------------------------
//  Class callbacks

static void
s_expire (void *self_, sluice_held_t *held)
{
    s_server_t *self = (s_server_t *) self_;
    const char *reason = held->header.command == SLUICE_CMD_WAIT
                       ? "timed out waiting for the model to load"
                       : held->header.command == SLUICE_CMD_PULL
                       ? "timed out: no token yet"
                       : held->fifo == &self->parked
                       ? "timed out: the model is still loading"
                       : "timed out waiting for a free worker";
    s_answer_str (self, held, SLUICE_ETIMEOUT, reason);
}

static void
s_abandon (void *self_, sluice_held_t *held)
{
    s_stream_t *stream = s_ticket_stream (held);
    if (stream)
        stream->ticket = NULL;      //  the engine releases it; peer_gone cancels the stream
    else
    if (held->header.command != SLUICE_CMD_PULL)
        ((s_server_t *) self_)->abandoned++;
}

//  A client vanished: its streams are cancelled, so their generators stop and free workers
static void
s_peer_gone (void *self_, sluice_peer_t *peer)
{
    s_server_t *self = (s_server_t *) self_;
    s_stream_t *stream;
    while ((stream = (s_stream_t *) sluice_peer_data (peer)))
        s_stream_cancel (self, stream);
}

//  After requests were removed (expired, abandoned): a draining server may be done
static void
s_settle (void *self_)
{
    s_server_t *self = (s_server_t *) self_;
    s_pump (self);
    s_check_stopped (self);
}

static void
s_status (void *self_, sluice_status_t *status)
{
    s_server_t *self = (s_server_t *) self_;
    sluice_model_status_t *model = &status->model;
    model->state = self->state;
    s_copy_line (model->model, sizeof model->model, self->name);
    s_copy_line (model->reason, sizeof model->reason, self->reason);
    model->parked = sluice_fifo_size (&self->parked);
    model->queued = sluice_fifo_size (&self->queue);
    model->inflight = self->inflight;
    model->waiting = sluice_fifo_size (&self->waiters);
    model->served = self->served;
    model->failed = self->failed;
    model->malformed = sluice_engine_malformed (self->engine);
    model->lost = sluice_engine_lost (self->engine);
    model->abandoned = self->abandoned;
    model->max_pending = self->max_pending;
    model->max_payload = self->max_payload;
    model->workers = self->worker_count;
    model->incarnation = sluice_engine_incarnation (self->engine);
    model->streams = self->stream_count;
    model->generated = self->generated;
    model->delivered = self->delivered;
    model->cancelled = self->cancelled;
    model->window = self->window;
}

//  The sockets are bound: start the workers and the load.
static sluice_err_t
s_bound (void *self_, char *why, size_t why_size)
{
    s_server_t *self = (s_server_t *) self_;
    self->workers = (s_worker_t *) calloc (self->worker_count, sizeof *self->workers);
    self->idle = (size_t *) calloc (self->worker_count, sizeof *self->idle);
    if (!self->workers || !self->idle) {
        snprintf (why, why_size, "out of memory");
        return SLUICE_ENOMEM;
    }
    for (size_t index = 0; index < self->worker_count; index++) {
        self->workers [index].actor = zactor_new (s_worker_actor, &self->model);
        if (!self->workers [index].actor) {
            snprintf (why, why_size, "cannot start inference workers");
            return SLUICE_ENOMEM;
        }
        sluice_engine_watch (self->engine, self->workers [index].actor, s_on_worker);
        //  Pushed in reverse so that worker 0 is handed the first job
        self->idle [self->idle_count++] = self->worker_count - 1 - index;
    }
    //  Stream ids of another run never name one of ours (a client may outlive a restart)
    self->last_stream_id = (uint64_t) sluice_engine_incarnation (self->engine) << 32;
    self->state = SLUICE_MODEL_LOADING;
    sluice_engine_publish (self->engine, SLUICE_EVENT_LOADING, self->name);
    self->load.iface = &self->model.iface;
    self->loader = zactor_new (s_loader_actor, &self->load);
    if (!self->loader) {
        snprintf (why, why_size, "cannot start the model loader");
        return SLUICE_ENOMEM;
    }
    sluice_engine_watch (self->engine, self->loader, s_on_loader);
    return SLUICE_OK;
}

static bool
s_ended (void *self_)
{
    return ((s_server_t *) self_)->state == SLUICE_MODEL_STOPPED;
}

static const sluice_actor_class_t s_class = {
    .kind = SLUICE_ACTOR_MODEL_SERVER,
    .handlers = s_handlers,
    .status = s_status,
    .bound = s_bound,
    .stop = s_shutdown,
    .ended = s_ended,
    .expire = s_expire,
    .abandon = s_abandon,
    .peer_gone = s_peer_gone,
    .settle = s_settle,
};

// ---------------------------------------------------------------------------------------------
//  Actor

//  Stop the threads (a running load or inference is cancelled): after that this thread alone
//  touches the requests and the model.
static void
s_server_halt (s_server_t *self)
{
    if (self->loader) {
        zactor_destroy (&self->loader);
        if (self->load.result == SLUICE_OK && !self->model_loaded) {
            self->model.model = self->load.model;
            self->model_loaded = true;
        }
    }
    for (size_t index = 0; self->workers && index < self->worker_count; index++) {
        zactor_destroy (&self->workers [index].actor);
        s_job_t *job = self->workers [index].job;
        if (job) {
            //  A cancelled stream is known to its job alone; the others are in the list
            if (job->stream && job->stream->cancelled)
                s_stream_free (self, &job->stream);
            free (job->response);
            free (job);
        }
    }
}

static void
s_server_free (s_server_t *self)
{
    if (self->model_loaded && self->model.iface.unload)
        self->model.iface.unload (self->model.iface.config, self->model.model);
    while (self->streams) {
        s_stream_t *stream = self->streams;
        self->streams = stream->next;
        s_stream_free (self, &stream);
    }
    free ((char *) self->sim.text);
    free (self->workers);
    free (self->idle);
    free (self->name);
    free ((char *) self->sim.name);
    free ((char *) self->sim.fail_reason);
    free (self);
}

static s_server_t *
s_server_new (const sluice_model_server_opts_t *opts)
{
    s_server_t *self = (s_server_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    //  Copy everything the caller's options point at: they die after the signal
    if (opts->model)
        self->model.iface = *opts->model;
    else {
        self->sim.name = strdup (opts->sim.name ? opts->sim.name : SLUICE_MODEL_SIM_DEFAULT_NAME);
        self->sim.fail_reason = opts->sim.fail_reason ? strdup (opts->sim.fail_reason) : NULL;
        self->sim.text = opts->sim.text ? strdup (opts->sim.text) : NULL;
        self->sim.load_ms = opts->sim.load_ms;
        self->sim.infer_ms = opts->sim.infer_ms;
        self->sim.token_ms = opts->sim.token_ms;
        self->model.iface = (sluice_model_iface_t) {
            .name = self->sim.name,
            .config = &self->sim,
            .load = sluice_model_sim_load,
            .infer = sluice_model_sim_infer,
            .unload = sluice_model_sim_unload,
            .stream = sluice_model_sim_stream,
        };
    }
    char name [128];
    s_copy_line (name, sizeof name, self->model.iface.name);
    self->name = strdup (name);
    self->model.iface.name = self->name;
    self->worker_count = opts->workers ? opts->workers : SLUICE_MODEL_DEFAULT_WORKERS;
    self->max_pending = opts->max_pending ? opts->max_pending : SLUICE_MODEL_DEFAULT_MAX_PENDING;
    self->peer_max_pending = opts->peer_max_pending ? opts->peer_max_pending
                                                    : SLUICE_MODEL_DEFAULT_PEER_MAX_PENDING;
    self->max_payload = opts->max_payload ? opts->max_payload : SLUICE_MODEL_DEFAULT_MAX_PAYLOAD;
    self->window = opts->window ? opts->window : SLUICE_MODEL_DEFAULT_WINDOW;
    self->state = SLUICE_MODEL_LOADING;
    if (!self->name || (!opts->model && (!self->sim.name
                                         || (opts->sim.fail_reason && !self->sim.fail_reason)
                                         || (opts->sim.text && !self->sim.text)))) {
        s_server_free (self);
        return NULL;
    }
    return self;
}

void
sluice_model_server_actor (zsock_t *pipe, void *args)
{
    const sluice_model_server_opts_t *opts = (const sluice_model_server_opts_t *) args;
    s_server_t *self = s_server_new (opts);
    sluice_engine_opts_t engine_opts = {
        .name = "model server",
        //  Every parked request may be answered in one burst when the load ends
        .sndhwm = (self ? self->max_pending : 0) + 1000,
        .maxmsgsize = (int64_t) (self ? self->max_payload : 0) + 4096,
        .curve = opts->curve,
        //  One connection's waiting requests: the engine refuses what parks beyond it
        .peer_max_parked = self ? self->peer_max_pending : 0,
        .peer_max_parked_name = "peer-max-pending",
    };
    sluice_engine_t *engine = self ? sluice_engine_new (pipe, &s_class, self, &engine_opts) : NULL;
    if (!engine) {
        if (self)
            s_server_free (self);
        sluice_actor_refuse (pipe, SLUICE_ENOMEM, "out of memory");
        return;
    }
    self->engine = engine;
    sluice_engine_run (engine);
    s_server_halt (self);
    sluice_engine_destroy (&engine);
    s_server_free (self);
}

// ---------------------------------------------------------------------------------------------
//  Handle

struct sluice_model_server_t {
    sluice_handle_t handle;
};

sluice_model_server_t *
sluice_model_server_new (const sluice_model_server_opts_t *opts, sluice_err_t *err)
{
    sluice_err_t dummy;
    if (!err)
        err = &dummy;
    bool valid = opts && opts->endpoint && *opts->endpoint && opts->workers <= S_MAX_WORKERS
              && opts->window <= SLUICE_MODEL_MAX_WINDOW;
    if (valid && opts->model)
        valid = opts->model->name && *opts->model->name && opts->model->load
             && opts->model->infer;
    else
    if (valid)
        valid = opts->sim.load_ms >= 0 && opts->sim.infer_ms >= 0 && opts->sim.token_ms >= 0;
    if (!valid) {
        sluice_set_last_error ("a model server needs an endpoint, at most %d workers, a window "
                               "of at most %d tokens, and a model with a name, load and infer",
                               S_MAX_WORKERS, SLUICE_MODEL_MAX_WINDOW);
        *err = SLUICE_EINVAL;
        return NULL;
    }
    sluice_model_server_t *self = (sluice_model_server_t *) calloc (1, sizeof *self);
    if (!self) {
        *err = SLUICE_ENOMEM;
        return NULL;
    }
    *err = sluice_handle_start (&self->handle, sluice_model_server_actor, (void *) opts,
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
    sluice_handle_destroy (&self->handle);
    free (self);
    *self_p = NULL;
}

const char *
sluice_model_server_endpoint (sluice_model_server_t *self)
{
    return self->handle.endpoint;
}

const char *
sluice_model_server_events_endpoint (sluice_model_server_t *self)
{
    return self->handle.events_endpoint;
}

sluice_err_t
sluice_model_server_shutdown (sluice_model_server_t *self)
{
    return sluice_handle_stop (&self->handle);
}

sluice_err_t
sluice_model_server_wait (sluice_model_server_t *self, int timeout_ms)
{
    return sluice_handle_wait (&self->handle, timeout_ms);
}

const char *
sluice_model_server_error_text (sluice_model_server_t *self)
{
    return sluice_handle_error_text (&self->handle);
}

void *
sluice_model_server_actor_handle (sluice_model_server_t *self)
{
    return self->handle.actor;
}
