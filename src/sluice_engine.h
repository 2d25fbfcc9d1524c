/*  sluice_engine.h - the one server skeleton under every actor that serves requests.

    The engine owns what every server has: the ROUTER and the events XPUB (set up and bound by
    the BIND pipe command), the pipe commands of sluice_actor.h, the poll-and-drain loop (EINTR
    and deadlines handled once), the registry of held requests (FIFOs, a deadline heap, an
    index by peer), the vanished-peer sweep, PING and STATUS. An actor is its own state plus a
    class: a table of command handlers and a few callbacks. It never touches a socket itself.

    Blocking is done by deferring replies, as in redis's blocked.c: a handler that cannot
    serve a request now holds it (sluice_engine_hold) and puts it in one of its FIFOs; it
    answers it later, from the same thread, when its state allows. The engine answers a held
    request's deadline through the class's expire callback, drops the requests of a peer that
    vanished, and after a handler returns decides what the request's arrival meant:

    - answered by the handler: nothing more;
    - still held in a FIFO with timeout_ms 0: "now or never", so expire answers it at once;
    - still held in a FIFO: it is parked (its reply will carry SLUICE_FLAG_PARKED), and the
      engine refuses it with SLUICE_EBUSY when that goes past a limit: max_parked requests in
      all, peer_max_parked from its connection, peer_max_parked_bytes of its connection's
      parked bodies, or max_parked_bytes of parked bodies in all. So one peer cannot take the
      room every other peer needs, and parked memory has a bound;
    - held outside any FIFO: in flight (a model server's inference), not parked.

    Thread: everything here runs on the actor's thread. A held request handed to another
    thread (a worker) must not be touched by the actor until that thread gives it back.
    Internal.
*/
#ifndef SLUICE_ENGINE_H_INCLUDED
#define SLUICE_ENGINE_H_INCLUDED

#include "sluice_actor.h"
#include "sluice_publisher.h"

typedef struct sluice_engine_t sluice_engine_t;
typedef struct sluice_held_t sluice_held_t;
typedef struct sluice_peer_t sluice_peer_t;

//  A FIFO of held requests, oldest first (intrusive: no allocation per request). Owned by the
//  actor's state; zero-initialised.
typedef struct {
    sluice_held_t *head, *tail;
    size_t size;
} sluice_fifo_t;

//  A request the actor keeps: waiting in a FIFO, or in flight.
struct sluice_held_t {
    zmq_msg_t identity;           //  who to answer
    sluice_header_t header;       //  the request as it arrived
    sluice_frames_t frames;       //  its body frames (the array is kept for reuse)
    int64_t deadline;             //  zclock_mono ms; INT64_MAX = none
    sluice_fifo_t *fifo;          //  the FIFO it waits in; NULL when in flight
    sluice_held_t *prev, *next;   //  in that FIFO
    size_t heap_index;            //  in the deadline heap, or SIZE_MAX
    sluice_peer_t *peer;          //  its peer, once it outlived its arrival
    sluice_held_t *peer_prev, *peer_next;
    sluice_held_t *all_prev, *all_next;   //  every held request, for the end
    bool parked;                  //  was deferred: its reply carries SLUICE_FLAG_PARKED
    size_t bytes;                 //  its body frames' bytes (what parking it costs)
    void *data;                   //  the actor's
};

typedef void (sluice_handler_fn) (void *self, sluice_request_t *req);

//  One row per command the actor serves (PING and STATUS are the engine's). The command
//  table (sluice_codec.h) has validated the request before the handler runs.
typedef struct {
    uint8_t command;
    sluice_handler_fn *fn;
} sluice_handler_t;

typedef struct {
    sluice_actor_kind_t kind;               //  which rows of the command table apply
    const sluice_handler_t *handlers;       //  ends with { 0, NULL }
    //  STATUS: fill the actor's part of the status (required)
    void (*status) (void *self, sluice_status_t *status);
    //  The sockets are bound: start what the actor runs (threads, a load). SLUICE_OK, or the
    //  error with why filled (optional)
    sluice_err_t (*bound) (void *self, char *why, size_t why_size);
    //  The owner asked to stop accepting work (optional)
    void (*stop) (void *self);
    //  Has the actor's job ended? Checked after each turn of the loop; the first true sends
    //  DONE to the owner (optional: never)
    bool (*ended) (void *self);
    //  A held request's deadline passed (or it had timeout 0 and could not be served at once):
    //  answer it (required when any request is held with a deadline)
    void (*expire) (void *self, sluice_held_t *held);
    //  A request waiting in a FIFO is dropped because its peer vanished; the engine releases
    //  it after this (optional)
    void (*abandon) (void *self, sluice_held_t *held);
    //  A peer vanished: release or requeue what its data holds and clear it (optional)
    void (*peer_gone) (void *self, sluice_peer_t *peer);
    //  Free a peer's data when the engine ends (optional)
    void (*peer_free) (void *self, void *data);
    //  After the engine removed held requests (expired, abandoned) or peers: serve what the
    //  change allows (optional)
    void (*settle) (void *self);
} sluice_actor_class_t;

typedef struct {
    const char *name;             //  in logs ("buffer")
    size_t sndhwm;                //  sluice_router_opts_t
    int64_t maxmsgsize;
    const sluice_curve_t *curve;  //  read during the BIND only
    //  Parking limits (0: no limit); the EBUSY reason names the one reached
    size_t max_parked;            //  parked requests in all
    size_t peer_max_parked;       //  parked requests of one connection
    size_t max_parked_bytes;      //  body bytes of parked requests in all
    size_t peer_max_parked_bytes; //  body bytes of one connection's parked requests
    const char *peer_max_parked_name; //  the actor's name for peer_max_parked in the EBUSY
                                  //  text, which then says "pending" (NULL: peer-max-parked)
    int probe_ms;                 //  how often peers holding requests or data are probed;
                                  //  0: SLUICE_PROBE_MS
} sluice_engine_opts_t;

#define SLUICE_PROBE_MS  1000

//  Make the engine of an actor (its pipe, its class, its state). Returns NULL when out of
//  memory. The actor function then calls sluice_engine_run.
sluice_engine_t *
    sluice_engine_new (zsock_t *pipe, const sluice_actor_class_t *cls, void *self,
                       const sluice_engine_opts_t *opts);

//  Signal the owner, then serve until $TERM.
void
    sluice_engine_run (sluice_engine_t *engine);

//  Free every held request (no reply: their clients find out by ping), every peer, the
//  sockets. Threads that use held requests must be stopped first.
void
    sluice_engine_destroy (sluice_engine_t **engine_p);

// ---------------------------------------------------------------------------------------------
//  Held requests

//  Keep the request: identity, header and frames move into the held record (req is left
//  empty); its deadline starts now. NULL when out of memory (then req is untouched).
sluice_held_t *
    sluice_engine_hold (sluice_engine_t *engine, sluice_request_t *req);

//  Append to a FIFO (and the deadline heap, when it has a deadline).
void
    sluice_engine_wait_in (sluice_engine_t *engine, sluice_held_t *held, sluice_fifo_t *fifo);

//  Take out of its FIFO and the deadline heap: in flight, or about to be answered.
void
    sluice_engine_unwait (sluice_engine_t *engine, sluice_held_t *held);

//  Reply to a held request (SLUICE_FLAG_PARKED added when it was parked); on success the
//  frames given are consumed. Returns as sluice_reply_send; a failure is counted as lost. The
//  request stays held: release it.
int
    sluice_engine_answer (sluice_engine_t *engine, sluice_held_t *held, sluice_err_t status,
                          uint8_t flags, zmq_msg_t *frames, size_t count);

//  Reply OK with one packed frame of `chunks` chunks (SLUICE_FLAG_PACKED; PARKED added as
//  above). Returns and consumes as sluice_engine_answer.
int
    sluice_engine_answer_packed (sluice_engine_t *engine, sluice_held_t *held, uint8_t flags,
                                 zmq_msg_t *packed, uint32_t chunks);

//  Reply with one text frame (an error's reason, a response), then release. Returns as
//  sluice_engine_answer (-1: the reply was lost, and counted so).
int
    sluice_engine_answer_text (sluice_engine_t *engine, sluice_held_t *held,
                               sluice_err_t status, const char *text, size_t size);
int
    sluice_engine_answer_error (sluice_engine_t *engine, sluice_held_t *held,
                                sluice_err_t status, const char *reason);

//  Forget a held request (out of its FIFO, its frames closed). Sets *held_p to NULL.
void
    sluice_engine_release (sluice_engine_t *engine, sluice_held_t **held_p);

//  Requests waiting in FIFOs, and their body bytes.
size_t
    sluice_engine_parked (sluice_engine_t *engine);
size_t
    sluice_engine_parked_bytes (sluice_engine_t *engine);

//  FIFO access
#define sluice_fifo_head(fifo) ((fifo)->head)
#define sluice_fifo_size(fifo) ((fifo)->size)

// ---------------------------------------------------------------------------------------------
//  Replies to requests not held (answered by their handler)

int
    sluice_engine_reply (sluice_engine_t *engine, sluice_request_t *req, sluice_err_t status,
                         uint8_t flags, zmq_msg_t *frames, size_t count);
int
    sluice_engine_reply_text (sluice_engine_t *engine, sluice_request_t *req,
                              sluice_err_t status, const char *text, size_t size);
//  An error reply; malformed: count it as a malformed request (a size beyond a limit).
//  Returns as sluice_engine_reply.
int
    sluice_engine_refuse (sluice_engine_t *engine, sluice_request_t *req, sluice_err_t status,
                          const char *reason, bool malformed);

// ---------------------------------------------------------------------------------------------
//  Peers: one per routing id the actor holds requests or data for

//  The peer of a routing id; created when `create` (NULL when it does not exist, or out of
//  memory).
sluice_peer_t *
    sluice_engine_peer (sluice_engine_t *engine, zmq_msg_t *identity, bool create);
//  The actor's data for the peer. A peer with data is probed by the sweep; when it vanishes
//  the class's peer_gone runs.
void *
    sluice_peer_data (sluice_peer_t *peer);
void
    sluice_peer_set_data (sluice_peer_t *peer, void *data);

// ---------------------------------------------------------------------------------------------
//  The rest

//  Publish an event (no effect without an events socket).
void
    sluice_engine_publish (sluice_engine_t *engine, const char *event, const char *detail);

//  Watch another socket (a zsock_t, a zactor_t or a raw handle): fn runs when it is readable.
typedef void (sluice_watch_fn) (void *self, void *socket);
void
    sluice_engine_watch (sluice_engine_t *engine, void *socket, sluice_watch_fn *fn);
void
    sluice_engine_unwatch (sluice_engine_t *engine, void *socket);

//  This run of the actor: a random nonzero number every reply carries (docs/PROTOCOL.md).
uint32_t
    sluice_engine_incarnation (sluice_engine_t *engine);

//  Keep an earlier run's incarnation (nonzero), before sluice_engine_run: an actor whose state
//  outlived that run (a journaled buffer) is the same actor to its clients.
void
    sluice_engine_set_incarnation (sluice_engine_t *engine, uint32_t incarnation);

//  Counters every server keeps: replies not delivered (the peer had gone), requests refused
//  as malformed.
uint64_t
    sluice_engine_lost (sluice_engine_t *engine);
uint64_t
    sluice_engine_malformed (sluice_engine_t *engine);

#endif
