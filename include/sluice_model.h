/*  sluice_model.h - the model-server actor, its pluggable model interface, and its client.

    A sluice_model_server_t is a czmq actor (its own thread) owning a ROUTER socket at
    `endpoint` and, optionally, an XPUB events socket at `events_endpoint` (sluice_events.h).
    At start it loads its model on a separate load thread, so the actor keeps serving while the
    load runs: inference requests that arrive meanwhile are parked (their replies deferred) and
    all dispatched at once when the model is ready; later requests are dispatched at once.
    Inference runs on a pool of worker actors, concurrently. A failed load answers every parked
    and every later request with SLUICE_ELOADFAIL and the load's reason; a shutdown refuses new
    requests (SLUICE_ESHUTDOWN) while the accepted ones complete. A request may also be a
    stream: the model emits tokens (sluice_model_emit) into a window of `window` tokens that
    the client pulls; a full window pauses the generator, a cancel or a vanished client stops
    it. docs/PROTOCOL.md ("Model server", "Streams") describes the wire protocol;
    sluice_model_client_t below speaks it (revision 1.3: a model server of an earlier revision
    refuses its requests with SLUICE_EPROTO).

        loading --> ready --> draining --> stopped
           \--> failed --/
           \------------> draining (the load is cancelled; parked requests are refused)

    Threads: the server handle is for the thread that created it. The actor serves any number
    of clients in any processes. A sluice_model_client_t is NOT thread-safe: one per thread.
    The model functions run on the server's own threads (see sluice_model_iface_t).
*/
#ifndef SLUICE_MODEL_H_INCLUDED
#define SLUICE_MODEL_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "sluice_export.h"
#include "sluice_error.h"
#include "sluice_curve.h"
#include "sluice_status.h"

#ifdef __cplusplus
extern "C" {
#endif

// ---------------------------------------------------------------------------------------------
//  The pluggable model

//  Handed to the model's functions by the server: lets a long load or inference wait without
//  blocking the server's shutdown. Owned by the server; valid during the call only.
typedef struct sluice_model_ctx_t sluice_model_ctx_t;

//  Wait up to timeout_ms (< 0: no limit) for `fd` to become readable (fd < 0: only wait).
//  Returns 1 when fd is readable, 0 when the time is up, -1 when the server is being destroyed:
//  then give up at once (return a failure) - the server is waiting for this thread to end.
SLUICE_EXPORT int
    sluice_model_wait (sluice_model_ctx_t *ctx, int fd, int timeout_ms);

//  Sleep ms milliseconds unless the server is being destroyed. Returns false when cancelled.
SLUICE_EXPORT bool
    sluice_model_sleep (sluice_model_ctx_t *ctx, int ms);

//  True once the server has asked this thread to stop.
SLUICE_EXPORT bool
    sluice_model_cancelled (sluice_model_ctx_t *ctx);

//  Emit one token of a streaming inference (sluice_model_iface_t.stream): the server buffers
//  at most `window` tokens per stream, so this blocks while the stream's window is full (the
//  client has not pulled them yet): the generator is paused by its slowest reader. Returns
//  SLUICE_OK; SLUICE_ECLOSED once the stream is cancelled (by CANCEL, its client vanishing, or
//  the server being destroyed): then stop generating and return at once; SLUICE_EINVAL outside
//  a streaming inference; SLUICE_ENOMEM.
SLUICE_EXPORT sluice_err_t
    sluice_model_emit (sluice_model_ctx_t *ctx, const void *data, size_t size);

//  A model, as the server sees it. The server copies this struct (and `name`) at start; the
//  config it points at is borrowed and must outlive the server.
typedef struct {
    //  Model name: reported in events, status and WAIT replies. Required.
    const char *name;
    //  Opaque configuration passed to each function below. May be NULL.
    void *config;

    //  Load the model; runs once, on the server's load thread. On success return SLUICE_OK
    //  and set *model (any value, NULL allowed: the server only hands it back). On failure
    //  return any other sluice_err_t and write a one-line reason into reason (reason_size
    //  bytes, NUL-terminated); every waiting request gets it. Required.
    sluice_err_t (*load) (sluice_model_ctx_t *ctx, void *config, void **model,
                          char *reason, size_t reason_size);

    //  Run one inference; runs on a worker thread, CONCURRENTLY with other calls on the same
    //  model (so it must be thread-safe for that). payload is the request's body (size bytes,
    //  followed by a NUL byte the server adds, so text payloads can be used as strings). On
    //  success return SLUICE_OK and set *response to a malloc'd buffer of *response_size bytes,
    //  which the server frees. On failure return any other sluice_err_t: the request gets that
    //  status, with *response (malloc'd, if set) as the reason text. Required.
    sluice_err_t (*infer) (sluice_model_ctx_t *ctx, void *config, void *model,
                           const void *payload, size_t size,
                           char **response, size_t *response_size);

    //  Release a loaded model; runs once on the server's thread when the server is destroyed,
    //  after every inference has returned. Optional (NULL: nothing to release).
    void (*unload) (void *config, void *model);

    //  Run one streaming inference (a REQUEST with the STREAM flag); runs on a worker thread
    //  like infer. Emit the tokens with sluice_model_emit, in order; return SLUICE_OK at the
    //  end of the stream. On failure return another sluice_err_t and, optionally, set *reason
    //  to a malloc'd NUL-terminated text: the client gets it after the tokens emitted before.
    //  When sluice_model_emit says the stream is cancelled, return at once (any status).
    //  Optional (NULL: `infer` runs and its whole response is the stream's one token).
    sluice_err_t (*stream) (sluice_model_ctx_t *ctx, void *config, void *model,
                            const void *payload, size_t size, char **reason);
} sluice_model_iface_t;

//  The simulated model, the default. Use it as config of sluice_model_sim_load/_infer/_unload
//  to build a model that wraps it (e.g. to print something before each inference).
typedef struct {
    const char *name;          //  model name; NULL = "sim-model"
    int load_ms;               //  simulated load time
    int infer_ms;              //  simulated inference time per request
    const char *fail_reason;   //  not NULL: the load fails after load_ms with this reason
    //  Streaming: the text streamed, one token per word (with the spaces after it); NULL =
    //  the response infer would give. One token every token_ms milliseconds.
    const char *text;
    int token_ms;
} sluice_model_sim_t;

#define SLUICE_MODEL_SIM_DEFAULT_NAME  "sim-model"

//  The simulated model's functions; config is a sluice_model_sim_t *. The model handle is a
//  copy of the name; a response is "Response <payload> from <name>".
SLUICE_EXPORT sluice_err_t
    sluice_model_sim_load (sluice_model_ctx_t *ctx, void *config, void **model,
                           char *reason, size_t reason_size);
SLUICE_EXPORT sluice_err_t
    sluice_model_sim_infer (sluice_model_ctx_t *ctx, void *config, void *model,
                            const void *payload, size_t size,
                            char **response, size_t *response_size);
SLUICE_EXPORT void
    sluice_model_sim_unload (void *config, void *model);
SLUICE_EXPORT sluice_err_t
    sluice_model_sim_stream (sluice_model_ctx_t *ctx, void *config, void *model,
                             const void *payload, size_t size, char **reason);

//  An external program as the model. Each request runs `command` (with sh -c, in a process
//  group of its own): the payload goes to its stdin, its stdout is the response - or, for a
//  streaming request, the tokens (one per read of its output) - and a non-zero exit status
//  fails the request with the end of its stderr. A stream's backpressure is not reading its
//  pipe (the program blocks writing); a cancel kills it. `load_command`, when not NULL, runs
//  once at start: exit status 0 means ready, anything else fails the load with its stderr.
//  Use it as the config of sluice_model_exec_load/_infer/_stream.
typedef struct {
    const char *command;
    const char *load_command;
} sluice_model_exec_t;

SLUICE_EXPORT sluice_err_t
    sluice_model_exec_load (sluice_model_ctx_t *ctx, void *config, void **model,
                            char *reason, size_t reason_size);
SLUICE_EXPORT sluice_err_t
    sluice_model_exec_infer (sluice_model_ctx_t *ctx, void *config, void *model,
                             const void *payload, size_t size,
                             char **response, size_t *response_size);
SLUICE_EXPORT sluice_err_t
    sluice_model_exec_stream (sluice_model_ctx_t *ctx, void *config, void *model,
                              const void *payload, size_t size, char **reason);

// ---------------------------------------------------------------------------------------------
//  The server

#define SLUICE_MODEL_DEFAULT_WORKERS      4
#define SLUICE_MODEL_DEFAULT_MAX_PENDING  100000            //  parked + queued + in flight
#define SLUICE_MODEL_DEFAULT_PEER_MAX_PENDING 1024          //  waiting, of one connection
#define SLUICE_MODEL_DEFAULT_MAX_PAYLOAD  (1024 * 1024)     //  bytes
#define SLUICE_MODEL_DEFAULT_WINDOW       64                //  tokens buffered per stream
#define SLUICE_MODEL_MAX_WINDOW           512

typedef struct {
    const char *endpoint;          //  where the ROUTER binds: inproc://, tcp://, ipc:// (required)
    const char *events_endpoint;   //  where the events XPUB binds, or NULL for none
    const sluice_model_iface_t *model;   //  the model; NULL = the simulated model `sim`
    sluice_model_sim_t sim;        //  used when model is NULL (copied at start)
    size_t workers;                //  inference workers; 0 = SLUICE_MODEL_DEFAULT_WORKERS
    size_t max_pending;            //  admission limit (parked + queued + in flight + WAITs
                                   //  and PULLs + ended streams not yet drained);
                                   //  beyond it requests get SLUICE_EBUSY; 0 = default
    size_t peer_max_pending;       //  requests one connection may have waiting (queued,
                                   //  parked for the load, WAITs, PULLs; in-flight inferences
                                   //  aside): beyond it that connection's requests get
                                   //  SLUICE_EBUSY, checked before max_pending, so a flooding
                                   //  client cannot crowd out the others; 0 = default
    size_t max_payload;            //  largest request payload; 0 = default
    const sluice_curve_t *curve;   //  CURVE on the request endpoint, or NULL (read during _new)
    size_t window;                 //  tokens a stream buffers before its generator waits;
                                   //  0 = default, at most SLUICE_MODEL_MAX_WINDOW
} sluice_model_server_opts_t;

typedef struct sluice_model_server_t sluice_model_server_t;
struct _zsock_t;      //  czmq socket (zsock_t)

//  Start a model server: bind its sockets (synchronously) and begin loading the model.
//  Returns NULL on failure and, when err is not NULL, sets *err (SLUICE_EINVAL for bad
//  options, SLUICE_ETRANSPORT when a bind fails, SLUICE_ENOMEM). The caller owns the result.
SLUICE_EXPORT sluice_model_server_t *
    sluice_model_server_new (const sluice_model_server_opts_t *opts, sluice_err_t *err);

//  Stop the actor at once and free it: a running load or inference is cancelled (see
//  sluice_model_wait), pending requests get no reply (shut down first for a clean end), the
//  model is unloaded. Sets *self_p to NULL; does nothing when it already is NULL.
SLUICE_EXPORT void
    sluice_model_server_destroy (sluice_model_server_t **self_p);

//  The endpoint the ROUTER is bound to, with a tcp wildcard port resolved. Owned by the
//  server; valid until it is destroyed.
SLUICE_EXPORT const char *
    sluice_model_server_endpoint (sluice_model_server_t *self);

//  Same for the events XPUB; NULL when there is none.
SLUICE_EXPORT const char *
    sluice_model_server_events_endpoint (sluice_model_server_t *self);

//  Stop accepting work: begin a graceful shutdown from the owning thread, as a SHUTDOWN
//  command would: new requests are refused, parked ones get SLUICE_ESHUTDOWN, accepted ones
//  complete, then the server reports STOPPED. Returns once draining has begun. Idempotent.
SLUICE_EXPORT sluice_err_t
    sluice_model_server_shutdown (sluice_model_server_t *self);

//  Wait until the server has stopped (after a shutdown, once the accepted requests have
//  completed): SLUICE_OK; SLUICE_ETIMEOUT while it has not after timeout_ms (SLUICE_FOREVER =
//  no limit).
SLUICE_EXPORT sluice_err_t
    sluice_model_server_wait (sluice_model_server_t *self, int timeout_ms);

//  Why the server ended as it did ("" when it stopped cleanly). Owned by the server.
SLUICE_EXPORT const char *
    sluice_model_server_error_text (sluice_model_server_t *self);

//  The underlying zactor_t, e.g. for zpoller: readable once the server has stopped.
SLUICE_EXPORT void *
    sluice_model_server_actor_handle (sluice_model_server_t *self);

//  The actor function itself, for callers that compose with zactor_new directly. args is a
//  const sluice_model_server_opts_t *, copied (with the model interface and the simulated
//  model's strings) before the actor signals; the sockets are then bound, and the load
//  started, by the "BIND" command (src/sluice_actor.h).
SLUICE_EXPORT void
    sluice_model_server_actor (struct _zsock_t *pipe, void *args);

// ---------------------------------------------------------------------------------------------
//  The client

typedef struct sluice_model_client_t sluice_model_client_t;

//  Connect to a model server. Returns NULL when the endpoint is invalid (as for
//  sluice_stream_new: an unresolvable tcp host, an inproc endpoint nobody bound here).
//  Otherwise connecting is asynchronous: a server that is not there yet is waited for by each
//  call's timeout.
//  The caller owns the result.
SLUICE_EXPORT sluice_model_client_t *
    sluice_model_client_new (const char *endpoint);

//  Same, over CURVE (sluice_curve.h). NULL when the endpoint or security settings are invalid.
SLUICE_EXPORT sluice_model_client_t *
    sluice_model_client_new_secure (const char *endpoint, const sluice_curve_t *curve);

//  Disconnect and free. Sets *self_p to NULL.
SLUICE_EXPORT void
    sluice_model_client_destroy (sluice_model_client_t **self_p);

//  Send one inference request and wait for its response: while the model loads it waits
//  (parked at the server), once ready it is served at once (or behind busy workers).
//  On SLUICE_OK, *response_out (when response_out is not NULL) is a malloc'd NUL-terminated
//  copy of the response: the caller frees it. On error *response_out is NULL and
//  sluice_model_client_error_text says why (e.g. the load's failure reason).
SLUICE_EXPORT sluice_err_t
    sluice_model_client_request (sluice_model_client_t *self, const void *payload, size_t size,
                                 char **response_out);

//  Same, giving up when the request is still waiting (parked or queued) after timeout_ms
//  (SLUICE_FOREVER: no limit; 0: only if it can be dispatched at once): the server then
//  answers SLUICE_ETIMEOUT and never runs it. An inference already started runs to its end.
SLUICE_EXPORT sluice_err_t
    sluice_model_client_request_timeout (sluice_model_client_t *self, const void *payload,
                                         size_t size, int timeout_ms, char **response_out);

//  Block until loading has ended: SLUICE_OK when the model is ready, SLUICE_ELOADFAIL (error
//  text: the reason) when it failed, SLUICE_ESHUTDOWN when the server is shutting down,
//  SLUICE_ETIMEOUT after timeout_ms (SLUICE_FOREVER: no limit). The server parks the call and
//  answers it when the load ends: no polling.
SLUICE_EXPORT sluice_err_t
    sluice_model_client_wait_ready (sluice_model_client_t *self, int timeout_ms);

//  Ask the server for its state and counters (answered at once: waits up to the grace period).
SLUICE_EXPORT sluice_err_t
    sluice_model_client_status (sluice_model_client_t *self, sluice_model_status_t *status);

//  Begin a graceful shutdown (idempotent): returns once the server has started draining
//  (waits up to the grace period for the answer).
SLUICE_EXPORT sluice_err_t
    sluice_model_client_shutdown (sluice_model_client_t *self);

//  The error of the last call, and the text the server sent with it ("" when none). The text
//  is owned by the client and valid until the next call.
SLUICE_EXPORT sluice_err_t
    sluice_model_client_error (sluice_model_client_t *self);
SLUICE_EXPORT const char *
    sluice_model_client_error_text (sluice_model_client_t *self);

//  Streaming: start a streaming inference (a REQUEST with the STREAM flag). While the model
//  loads the call waits (parked at the server), as for a request; then it returns at once
//  with *stream_id set: the generation runs (or waits for a free worker) and its tokens are
//  taken with sluice_model_client_next. Errors as for sluice_model_client_request_timeout
//  (timeout_ms bounds the wait for the load).
SLUICE_EXPORT sluice_err_t
    sluice_model_client_stream (sluice_model_client_t *self, const void *payload, size_t size,
                                int timeout_ms, uint64_t *stream_id);

//  The next tokens of a stream, in order, each exactly once: waits up to timeout_ms
//  (SLUICE_FOREVER: no limit) until at least one is there, and takes up to `max` (1..1024).
//  On SLUICE_OK, *count tokens are readable with sluice_model_client_token (0 only at the
//  end) and *end says the stream has ended (nothing follows). The server's window refills
//  only as tokens are taken: not calling this pauses the generator. Errors: SLUICE_ETIMEOUT
//  (no token yet; call again), SLUICE_ECLOSED (cancelled, or unknown id), or the model's
//  failure status and text (the stream has then ended).
SLUICE_EXPORT sluice_err_t
    sluice_model_client_next (sluice_model_client_t *self, uint64_t stream_id, size_t max,
                              int timeout_ms, size_t *count, bool *end);

//  Token `index` (< *count) of the last sluice_model_client_next: its bytes and size. Owned by
//  the client, valid until its next call.
SLUICE_EXPORT const void *
    sluice_model_client_token (sluice_model_client_t *self, size_t index, size_t *size);

//  Cancel a stream: its generator stops (sluice_model_emit returns SLUICE_ECLOSED) and frees
//  its worker; its untaken tokens are dropped. SLUICE_ECLOSED when the server knows no such
//  stream (it ended or was cancelled already).
SLUICE_EXPORT sluice_err_t
    sluice_model_client_cancel (sluice_model_client_t *self, uint64_t stream_id);

//  True when the server deferred the last request (parked during the load, or queued behind
//  busy workers) before serving it.
SLUICE_EXPORT bool
    sluice_model_client_was_parked (sluice_model_client_t *self);

//  How long a call waits for a reply beyond its own timeout before deciding the server is
//  gone (SLUICE_ETRANSPORT). Inference time counts against it: raise it for slow models.
//  Default 2000 ms (calls without a timeout wait without limit).
SLUICE_EXPORT void
    sluice_model_client_set_grace (sluice_model_client_t *self, int grace_ms);

#ifdef __cplusplus
}
#endif
#endif
