/*  sluice_engine.c - the server skeleton (see sluice_engine.h).

    One loop: wait on the pipe, the watched sockets, the ROUTER and the XPUB; drain the ROUTER
    without a wait per message (up to S_DRAIN_BATCH requests per wake-up, so the pipe is never
    starved); then, only while something waits, read the clock once for deadlines and the
    sweep. Held requests come from a spare pool, so parking allocates nothing once warm.

    The wait is poll(2) on the sockets' ZMQ_FDs rather than zmq_poll, which asks every socket
    for its events twice and polls twice per call. A ZMQ_FD signals new commands for its
    socket, not readability (edge-triggered), so a socket is asked (ZMQ_EVENTS) before the
    sleep unless the last operation on it showed it drained and nothing touched it since: the
    ROUTER after a receive (or an ask) that found nothing, until the next send on it; the pipe
    likewise, until the engine sends on it. The XPUB and watched sockets are asked every time
    (actors send on them outside the engine).
*/
#include "sluice_engine.h"
#include <poll.h>
#include <sys/random.h>
#include <unistd.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>

#define S_DRAIN_BATCH     1024      //  requests handled per wake-up before polling again
#define S_SPARE_HELD      1024      //  released records kept for reuse
#define S_MAX_WATCHED     512

//  A routing id as the peers table's key: its bytes and their hash, taken once per lookup
typedef struct {
    const uint8_t *bytes;
    size_t size;
    size_t hash;
} s_peer_key_t;

struct sluice_peer_t {
    zmq_msg_t identity;
    s_peer_key_t key;             //  its key in the peers table (points into identity)
    sluice_held_t *held_head;     //  its held requests (waiting or in flight)
    size_t held;
    size_t parked;                //  of those, in FIFOs
    size_t parked_bytes;          //  and their body bytes
    void *data;                   //  the actor's
    bool gone;                    //  vanished: freed once its last in-flight request is done
};

typedef struct {
    void *socket;                 //  raw handle
    sluice_watch_fn *fn;
    void *arg;                    //  what was given (zsock/zactor), handed back to fn
} s_watch_t;

struct sluice_engine_t {
    zsock_t *pipe;
    const sluice_actor_class_t *cls;
    void *self;
    sluice_engine_opts_t opts;
    size_t max_frames;            //  most body frames a request may carry (command table)

    zsock_t *router;
    void *router_raw;             //  zsock_resolve done once: not on the hot path
    bool secured;                 //  CURVE applied: holds the process's authenticator
    sluice_publisher_t *events;

    s_watch_t watched [S_MAX_WATCHED];
    size_t watched_count;
    zmq_pollitem_t items [S_MAX_WATCHED + 3];
    struct pollfd fds [S_MAX_WATCHED + 3];   //  the items' ZMQ_FDs, same order
    size_t item_count;
    bool items_dirty;
    bool router_drained;          //  a receive found nothing and no send touched it since
    bool pipe_drained;            //  the same for the pipe: asked, nothing, untouched since

    sluice_request_t req;         //  the request being handled (its arrays are reused)
    sluice_held_t *arriving;      //  held by the handler running now, until it is answered
    sluice_held_t *all;           //  every held request
    sluice_held_t *spare;         //  released records, linked by next
    size_t spare_count;
    size_t parked;                //  held requests in FIFOs
    size_t parked_bytes;          //  their body bytes

    sluice_held_t **heap;         //  held requests with deadlines, soonest at the top
    size_t heap_size;
    size_t heap_capacity;

    zhashx_t *peers;              //  s_peer_key_t -> sluice_peer_t
    int64_t next_sweep;           //  INT64_MAX while no peer is known

    uint32_t incarnation;         //  random, nonzero: sent in every reply's timeout field
    uint64_t lost;
    uint64_t malformed;
    bool done_sent;
    bool terminated;
};

// ---------------------------------------------------------------------------------------------
//  Deadline heap (binary, by deadline): O(log n) to add or remove any member

static void
s_heap_set (sluice_engine_t *engine, size_t index, sluice_held_t *held)
{
    engine->heap [index] = held;
    held->heap_index = index;
}

static void
s_heap_up (sluice_engine_t *engine, size_t index)
{
    sluice_held_t *held = engine->heap [index];
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (engine->heap [parent]->deadline <= held->deadline)
            break;
        s_heap_set (engine, index, engine->heap [parent]);
        index = parent;
    }
    s_heap_set (engine, index, held);
}

static void
s_heap_down (sluice_engine_t *engine, size_t index)
{
    sluice_held_t *held = engine->heap [index];
    while (true) {
        size_t child = index * 2 + 1;
        if (child >= engine->heap_size)
            break;
        if (child + 1 < engine->heap_size
        &&  engine->heap [child + 1]->deadline < engine->heap [child]->deadline)
            child++;
        if (held->deadline <= engine->heap [child]->deadline)
            break;
        s_heap_set (engine, index, engine->heap [child]);
        index = child;
    }
    s_heap_set (engine, index, held);
}

static bool
s_heap_add (sluice_engine_t *engine, sluice_held_t *held)
{
    if (engine->heap_size == engine->heap_capacity) {
        size_t capacity = engine->heap_capacity ? engine->heap_capacity * 2 : 64;
        sluice_held_t **heap = (sluice_held_t **) realloc (engine->heap, capacity * sizeof *heap);
        if (!heap)
            return false;
        engine->heap = heap;
        engine->heap_capacity = capacity;
    }
    s_heap_set (engine, engine->heap_size++, held);
    s_heap_up (engine, held->heap_index);
    return true;
}

static void
s_heap_remove (sluice_engine_t *engine, sluice_held_t *held)
{
    size_t index = held->heap_index;
    held->heap_index = SIZE_MAX;
    sluice_held_t *last = engine->heap [--engine->heap_size];
    if (last == held)
        return;
    s_heap_set (engine, index, last);
    s_heap_up (engine, index);
    s_heap_down (engine, last->heap_index);
}

// ---------------------------------------------------------------------------------------------
//  Peers

static s_peer_key_t
s_peer_key (zmq_msg_t *identity)
{
    s_peer_key_t key = { (const uint8_t *) zmq_msg_data (identity), zmq_msg_size (identity), 0 };
    uint64_t hash = 14695981039346656037u;        //  FNV-1a
    for (size_t index = 0; index < key.size; index++)
        hash = (hash ^ key.bytes [index]) * 1099511628211u;
    key.hash = (size_t) hash;
    return key;
}

static size_t
s_peer_key_hash (const void *key)
{
    return ((const s_peer_key_t *) key)->hash;
}

static int
s_peer_key_compare (const void *first, const void *second)
{
    const s_peer_key_t *one = (const s_peer_key_t *) first, *other = (const s_peer_key_t *) second;
    return one->size != other->size || memcmp (one->bytes, other->bytes, one->size) != 0;
}

static void
s_peer_free (sluice_engine_t *engine, sluice_peer_t *peer)
{
    if (peer->data && engine->cls->peer_free)
        engine->cls->peer_free (engine->self, peer->data);
    zmq_msg_close (&peer->identity);
    free (peer);
}

sluice_peer_t *
sluice_engine_peer (sluice_engine_t *engine, zmq_msg_t *identity, bool create)
{
    s_peer_key_t key = s_peer_key (identity);
    sluice_peer_t *peer = (sluice_peer_t *) zhashx_lookup (engine->peers, &key);
    if (peer || !create)
        return peer;
    peer = (sluice_peer_t *) calloc (1, sizeof *peer);
    if (!peer)
        return NULL;
    zmq_msg_init (&peer->identity);
    zmq_msg_copy (&peer->identity, identity);
    peer->key = s_peer_key (&peer->identity);
    zhashx_insert (engine->peers, &peer->key, peer);
    if (engine->next_sweep == INT64_MAX)
        engine->next_sweep = zclock_mono () + engine->opts.probe_ms;
    return peer;
}

void *
sluice_peer_data (sluice_peer_t *peer)
{
    return peer->data;
}

void
sluice_peer_set_data (sluice_peer_t *peer, void *data)
{
    peer->data = data;
}

static void
s_peer_attach (sluice_engine_t *engine, sluice_held_t *held)
{
    sluice_peer_t *peer = sluice_engine_peer (engine, &held->identity, true);
    if (!peer)
        return;             //  out of memory: PING and the sweep will not see it, nothing worse
    held->peer = peer;
    held->peer_prev = NULL;
    held->peer_next = peer->held_head;
    if (peer->held_head)
        peer->held_head->peer_prev = held;
    peer->held_head = held;
    peer->held++;
    if (held->fifo) {
        peer->parked++;
        peer->parked_bytes += held->bytes;
    }
}

static void
s_peer_detach (sluice_engine_t *engine, sluice_held_t *held)
{
    sluice_peer_t *peer = held->peer;
    if (!peer)
        return;
    if (held->peer_prev)
        held->peer_prev->peer_next = held->peer_next;
    else
        peer->held_head = held->peer_next;
    if (held->peer_next)
        held->peer_next->peer_prev = held->peer_prev;
    if (held->fifo) {
        peer->parked--;
        peer->parked_bytes -= held->bytes;
    }
    held->peer = NULL;
    held->peer_prev = held->peer_next = NULL;
    peer->held--;
    //  A vanished peer (already out of the table) goes with its last in-flight request
    if (peer->gone && peer->held == 0)
        s_peer_free (engine, peer);
}

// ---------------------------------------------------------------------------------------------
//  Held requests

sluice_held_t *
sluice_engine_hold (sluice_engine_t *engine, sluice_request_t *req)
{
    sluice_held_t *held = engine->spare;
    if (held) {
        engine->spare = held->next;
        engine->spare_count--;
        sluice_frames_t frames = held->frames;
        memset (held, 0, sizeof *held);
        held->frames = frames;
    }
    else
    if (!(held = (sluice_held_t *) calloc (1, sizeof *held)))
        return NULL;
    held->heap_index = SIZE_MAX;
    held->all_next = engine->all;
    if (engine->all)
        engine->all->all_prev = held;
    engine->all = held;
    zmq_msg_init (&held->identity);
    zmq_msg_move (&held->identity, &req->identity);
    held->header = req->header;
    //  Trade frame arrays: the request keeps the (empty) spare one for the next message
    sluice_frames_swap (&held->frames, &req->frames);
    held->bytes = sluice_frames_bytes (&held->frames);
    uint32_t timeout = req->header.timeout_ms;
    held->deadline = timeout == SLUICE_WAIT_FOREVER || timeout == 0
                   ? INT64_MAX : zclock_mono () + timeout;
    engine->arriving = held;
    return held;
}

void
sluice_engine_wait_in (sluice_engine_t *engine, sluice_held_t *held, sluice_fifo_t *fifo)
{
    assert (!held->fifo);
    held->fifo = fifo;
    held->prev = fifo->tail;
    held->next = NULL;
    if (fifo->tail)
        fifo->tail->next = held;
    else
        fifo->head = held;
    fifo->tail = held;
    fifo->size++;
    engine->parked++;
    engine->parked_bytes += held->bytes;
    if (held->peer) {
        held->peer->parked++;
        held->peer->parked_bytes += held->bytes;
    }
    if (held->deadline != INT64_MAX && held->heap_index == SIZE_MAX
    &&  !s_heap_add (engine, held))
        //  Without room to track it, the deadline cannot be kept: say so now
        held->deadline = INT64_MAX, SLUICE_ERROR ("sluice %s: out of memory: a deadline is not kept",
                                                engine->opts.name);
}

void
sluice_engine_unwait (sluice_engine_t *engine, sluice_held_t *held)
{
    sluice_fifo_t *fifo = held->fifo;
    if (fifo) {
        if (held->prev)
            held->prev->next = held->next;
        else
            fifo->head = held->next;
        if (held->next)
            held->next->prev = held->prev;
        else
            fifo->tail = held->prev;
        fifo->size--;
        engine->parked--;
        engine->parked_bytes -= held->bytes;
        if (held->peer) {
            held->peer->parked--;
            held->peer->parked_bytes -= held->bytes;
        }
        held->fifo = NULL;
        held->prev = held->next = NULL;
    }
    if (held->heap_index != SIZE_MAX)
        s_heap_remove (engine, held);
}

void
sluice_engine_release (sluice_engine_t *engine, sluice_held_t **held_p)
{
    sluice_held_t *held = *held_p;
    if (!held)
        return;
    *held_p = NULL;
    if (engine->arriving == held)
        engine->arriving = NULL;
    sluice_engine_unwait (engine, held);
    s_peer_detach (engine, held);
    if (held->all_prev)
        held->all_prev->all_next = held->all_next;
    else
        engine->all = held->all_next;
    if (held->all_next)
        held->all_next->all_prev = held->all_prev;
    zmq_msg_close (&held->identity);
    sluice_frames_clear (&held->frames);
    if (engine->spare_count < S_SPARE_HELD) {
        held->next = engine->spare;
        engine->spare = held;
        engine->spare_count++;
    }
    else {
        sluice_frames_release (&held->frames);
        free (held);
    }
}

size_t
sluice_engine_parked_bytes (sluice_engine_t *engine)
{
    return engine->parked_bytes;
}

size_t
sluice_engine_parked (sluice_engine_t *engine)
{
    return engine->parked;
}

// ---------------------------------------------------------------------------------------------
//  Replies

static int
s_send (sluice_engine_t *engine, zmq_msg_t *identity, const sluice_header_t *request,
        sluice_err_t status, uint8_t flags, zmq_msg_t *frames, size_t count)
{
    sluice_header_t header = *request;
    //  A client that sent its body inline takes its reply's so too
    header.flags = flags | (request->flags & SLUICE_FLAG_INLINE);
    header.status = (uint8_t) status;
    header.timeout_ms = engine->incarnation;
    engine->router_drained = false;
    int rc = sluice_reply_send (engine->router_raw, identity, &header, frames, count);
    if (rc == -1) {
        int saved = errno;
        engine->lost++;
        SLUICE_DEBUG ("sluice %s: %s reply to request %" PRIu64 " undeliverable: %s",
                    engine->opts.name, sluice_command_name (request->command) ?: "?",
                    request->request_id, zmq_strerror (saved));
        errno = saved;
    }
    return rc;
}

static int
s_send_text (sluice_engine_t *engine, zmq_msg_t *identity, const sluice_header_t *request,
             sluice_err_t status, uint8_t flags, const char *text, size_t size)
{
    zmq_msg_t body;
    if (zmq_msg_init_size (&body, size) == -1) {
        engine->lost++;
        return -1;
    }
    if (size)
        memcpy (zmq_msg_data (&body), text, size);
    int rc = s_send (engine, identity, request, status, flags, &body, 1);
    zmq_msg_close (&body);
    return rc;
}

int
sluice_engine_answer (sluice_engine_t *engine, sluice_held_t *held, sluice_err_t status,
                      uint8_t flags, zmq_msg_t *frames, size_t count)
{
    if (held->parked)
        flags |= SLUICE_FLAG_PARKED;
    return s_send (engine, &held->identity, &held->header, status, flags, frames, count);
}

int
sluice_engine_answer_packed (sluice_engine_t *engine, sluice_held_t *held, uint8_t flags,
                             zmq_msg_t *packed, uint32_t chunks)
{
    sluice_header_t header = held->header;
    header.count = chunks;
    flags |= SLUICE_FLAG_PACKED | (held->parked ? SLUICE_FLAG_PARKED : 0);
    return s_send (engine, &held->identity, &header, SLUICE_OK, flags, packed, 1);
}

int
sluice_engine_answer_text (sluice_engine_t *engine, sluice_held_t *held, sluice_err_t status,
                           const char *text, size_t size)
{
    int rc = s_send_text (engine, &held->identity, &held->header, status,
                          held->parked ? SLUICE_FLAG_PARKED : 0, text, size);
    sluice_engine_release (engine, &held);
    return rc;
}

int
sluice_engine_answer_error (sluice_engine_t *engine, sluice_held_t *held, sluice_err_t status,
                            const char *reason)
{
    if (!reason)
        reason = sluice_strerror (status);
    return sluice_engine_answer_text (engine, held, status, reason, strlen (reason));
}

int
sluice_engine_reply (sluice_engine_t *engine, sluice_request_t *req, sluice_err_t status,
                     uint8_t flags, zmq_msg_t *frames, size_t count)
{
    return s_send (engine, &req->identity, &req->header, status, flags, frames, count);
}

int
sluice_engine_reply_text (sluice_engine_t *engine, sluice_request_t *req, sluice_err_t status,
                          const char *text, size_t size)
{
    return s_send_text (engine, &req->identity, &req->header, status, 0, text, size);
}

int
sluice_engine_refuse (sluice_engine_t *engine, sluice_request_t *req, sluice_err_t status,
                      const char *reason, bool malformed)
{
    if (malformed)
        engine->malformed++;
    if (!reason)
        reason = sluice_strerror (status);
    return s_send_text (engine, &req->identity, &req->header, status, 0, reason, strlen (reason));
}

// ---------------------------------------------------------------------------------------------
//  Requests

static void
s_on_ping (sluice_engine_t *engine, sluice_request_t *req)
{
    //  PARKED says the actor still holds a request of this peer: a client that waits for a
    //  reply and gets a PING reply without it knows its request was lost with a connection
    sluice_peer_t *peer = engine->peers && zhashx_size (engine->peers)
                        ? sluice_engine_peer (engine, &req->identity, false) : NULL;
    bool holds = peer && peer->held > 0;
    sluice_engine_reply (engine, req, SLUICE_OK, holds ? SLUICE_FLAG_PARKED : 0, NULL, 0);
}

static void
s_on_status (sluice_engine_t *engine, sluice_request_t *req)
{
    sluice_status_t status;
    memset (&status, 0, sizeof status);
    status.actor = engine->cls->kind;
    engine->cls->status (engine->self, &status);
    char text [2048];
    size_t size = sluice_status_text (&status, text, sizeof text);
    if (size >= sizeof text)
        size = sizeof text - 1;
    sluice_engine_reply_text (engine, req, SLUICE_OK, text, size);
}

static sluice_handler_fn *
s_handler (sluice_engine_t *engine, uint8_t command)
{
    for (const sluice_handler_t *row = engine->cls->handlers; row->fn; row++)
        if (row->command == command)
            return row->fn;
    return NULL;
}

//  The parking limit a request just parked goes past, said in `text`; false when none. The
//  connection's own limits come first: a flooding peer is told about itself, not about everyone.
static bool
s_parking_limit (sluice_engine_t *engine, sluice_held_t *held, char *text, size_t size)
{
    const sluice_engine_opts_t *opts = &engine->opts;
    const sluice_peer_t *peer = held->peer;
    if (opts->peer_max_parked && peer && peer->parked > opts->peer_max_parked)
        snprintf (text, size, "too many %s requests from this connection (%s=%zu)",
                  opts->peer_max_parked_name ? "pending" : "parked",
                  opts->peer_max_parked_name ? opts->peer_max_parked_name : "peer-max-parked",
                  opts->peer_max_parked);
    else
    if (opts->peer_max_parked_bytes && peer && peer->parked_bytes > opts->peer_max_parked_bytes)
        snprintf (text, size, "too many parked bytes from this connection (peer-max-parked-bytes)");
    else
    if (opts->max_parked && engine->parked > opts->max_parked)
        snprintf (text, size, "too many parked requests (max-parked)");
    else
    if (opts->max_parked_bytes && engine->parked_bytes > opts->max_parked_bytes)
        snprintf (text, size, "too many parked bytes (max-parked-bytes)");
    else
        return false;
    return true;
}

//  What a request's arrival meant once its handler returned (sluice_engine.h)
static void
s_arrived (sluice_engine_t *engine)
{
    sluice_held_t *held = engine->arriving;
    engine->arriving = NULL;
    if (!held)
        return;             //  answered by its handler
    if (held->fifo && held->header.timeout_ms == 0) {
        engine->cls->expire (engine->self, held);   //  now or never
        return;
    }
    s_peer_attach (engine, held);
    if (!held->fifo)
        return;             //  in flight
    char limit [160];
    if (s_parking_limit (engine, held, limit, sizeof limit)) {
        //  Refused on arrival, never deferred: no PARKED on the EBUSY
        char reason [200];
        snprintf (reason, sizeof reason, "%s: try again later", limit);
        sluice_engine_answer_error (engine, held, SLUICE_EBUSY, reason);
        if (engine->cls->settle)
            engine->cls->settle (engine->self);
        return;
    }
    held->parked = true;
}

static void
s_handle_request (sluice_engine_t *engine, sluice_request_t *req)
{
    if (sluice_request_validate (req, engine->cls->kind) != SLUICE_OK)
        sluice_engine_refuse (engine, req, req->error, req->reason, true);
    else
    if (req->header.command == SLUICE_CMD_PING)
        s_on_ping (engine, req);
    else
    if (req->header.command == SLUICE_CMD_STATUS)
        s_on_status (engine, req);
    else {
        sluice_handler_fn *fn = s_handler (engine, req->header.command);
        assert (fn);        //  the command table says this actor serves it
        fn (engine->self, req);
        s_arrived (engine);
    }
    sluice_request_fini (req);
}

// ---------------------------------------------------------------------------------------------
//  Timers: deadlines and the sweep

static bool
s_expire (sluice_engine_t *engine, int64_t now)
{
    bool expired = false;
    while (engine->heap_size && engine->heap [0]->deadline <= now) {
        sluice_held_t *held = engine->heap [0];
        s_heap_remove (engine, held);       //  whatever expire does, it leaves the heap
        engine->cls->expire (engine->self, held);
        expired = true;
    }
    return expired;
}

//  Is the peer still connected? A probe (a header with the reserved request id 0, which
//  clients ignore): with ROUTER_MANDATORY an unroutable peer fails at once. A peer whose
//  queue is full (EAGAIN) is alive, only busy.
static bool
s_peer_alive (sluice_engine_t *engine, sluice_peer_t *peer)
{
    sluice_header_t probe = { .command = SLUICE_CMD_PING, .request_id = SLUICE_PROBE_ID,
                              .timeout_ms = engine->incarnation };
    zmq_msg_t routing;
    zmq_msg_init (&routing);
    zmq_msg_copy (&routing, &peer->identity);
    engine->router_drained = false;
    bool alive = sluice_reply_send (engine->router_raw, &routing, &probe, NULL, 0) == 0
              || errno != EHOSTUNREACH;
    zmq_msg_close (&routing);
    return alive;
}

//  A peer vanished: its waiting requests are dropped, its data handed to the actor; its
//  in-flight requests finish (their replies will be lost).
static void
s_peer_vanished (sluice_engine_t *engine, sluice_peer_t *peer)
{
    sluice_held_t *held = peer->held_head;
    while (held) {
        sluice_held_t *next = held->peer_next;
        if (held->fifo) {
            if (engine->cls->abandon)
                engine->cls->abandon (engine->self, held);
            sluice_engine_release (engine, &held);
        }
        held = next;
    }
    if (peer->data && engine->cls->peer_gone)
        engine->cls->peer_gone (engine->self, peer);
}

static void s_drain_router (sluice_engine_t *engine);

static void
s_sweep (sluice_engine_t *engine)
{
    zlistx_t *idle = zlistx_new ();
    zlistx_t *gone = zlistx_new ();
    for (sluice_peer_t *peer = (sluice_peer_t *) zhashx_first (engine->peers); peer;
         peer = (sluice_peer_t *) zhashx_next (engine->peers)) {
        if (peer->held == 0 && !peer->data)
            zlistx_add_end (idle, peer);
        else
        if (!s_peer_alive (engine, peer))
            zlistx_add_end (gone, peer);
    }
    //  A peer that closed its socket right after a request (an ACK, then gone) left that
    //  request in the ROUTER's pipe, ahead of the pipe's end: take it before settling what
    //  the peer held, or chunks it acknowledged would come back as if never received
    if (zlistx_size (gone))
        s_drain_router (engine);
    for (sluice_peer_t *peer = (sluice_peer_t *) zlistx_first (idle); peer;
         peer = (sluice_peer_t *) zlistx_next (idle))
        if (peer->held == 0 && !peer->data)     //  still idle after the drain
            zlistx_add_end (gone, peer);
    for (sluice_peer_t *peer = (sluice_peer_t *) zlistx_first (gone); peer;
         peer = (sluice_peer_t *) zlistx_next (gone)) {
        if (peer->held || peer->data)
            s_peer_vanished (engine, peer);
        zhashx_delete (engine->peers, &peer->key);     //  the table has no destructor
        if (peer->held == 0)
            s_peer_free (engine, peer);
        else
            peer->gone = true;      //  freed with its last in-flight request
    }
    zlistx_destroy (&idle);
    zlistx_destroy (&gone);
}

static void
s_timers (sluice_engine_t *engine)
{
    bool changed = false;
    if (engine->heap_size || engine->next_sweep != INT64_MAX) {
        int64_t now = zclock_mono ();
        changed = s_expire (engine, now);
        if (engine->next_sweep != INT64_MAX && now >= engine->next_sweep) {
            s_sweep (engine);
            changed = true;
            engine->next_sweep = zhashx_size (engine->peers) ? now + engine->opts.probe_ms
                                                          : INT64_MAX;
        }
    }
    if (changed && engine->cls->settle)
        engine->cls->settle (engine->self);
}

// ---------------------------------------------------------------------------------------------
//  Pipe

static sluice_err_t
s_bind (sluice_engine_t *engine, const char *endpoint, const char *events_endpoint,
        char **bound, char **bound_events, char *why, size_t why_size)
{
    sluice_router_opts_t router_opts = {
        .sndhwm = engine->opts.sndhwm,
        .maxmsgsize = engine->opts.maxmsgsize,
        .curve = engine->opts.curve,
    };
    sluice_err_t rc;
    engine->router = sluice_router_new (endpoint, &router_opts, &rc, &engine->secured,
                                        why, why_size);
    if (!engine->router)
        return rc;
    engine->router_raw = zsock_resolve (engine->router);
    *bound = sluice_bound_endpoint (engine->router, endpoint);
    if (events_endpoint && *events_endpoint) {
        engine->events = sluice_publisher_new (events_endpoint, engine->opts.curve, why, why_size);
        if (!engine->events)
            return SLUICE_ETRANSPORT;
        *bound_events = strdup (sluice_publisher_endpoint (engine->events));
    }
    engine->items_dirty = true;
    if (engine->cls->bound)
        return engine->cls->bound (engine->self, why, why_size);
    return SLUICE_OK;
}

static void
s_unbind (sluice_engine_t *engine)
{
    sluice_publisher_destroy (&engine->events);
    zsock_destroy (&engine->router);
    engine->router_raw = NULL;
    if (engine->secured)
        sluice_curve_release ();
    engine->secured = false;
    engine->items_dirty = true;
}

static void
s_handle_pipe (sluice_engine_t *engine)
{
    zmsg_t *msg = sluice_pipe_recv (engine->pipe);
    char *command = msg ? zmsg_popstr (msg) : NULL;
    if (!command || streq (command, SLUICE_PIPE_TERM))
        engine->terminated = true;
    else
    if (streq (command, SLUICE_PIPE_BIND)) {
        char *endpoint = zmsg_popstr (msg);
        char *events = zmsg_popstr (msg);
        char *bound = NULL, *bound_events = NULL;
        char why [SLUICE_TEXT_SIZE] = "";
        sluice_err_t rc = SLUICE_EINVAL;
        if (engine->router || !endpoint)
            snprintf (why, sizeof why, "already bound, or no endpoint");
        else
            rc = s_bind (engine, endpoint, events, &bound, &bound_events, why, sizeof why);
        if (rc != SLUICE_OK)
            s_unbind (engine);      //  the owner destroys us next
        zsock_send (engine->pipe, "isss", (int) rc, bound ? bound : "",
                    bound_events ? bound_events : "", why);
        zstr_free (&endpoint);
        zstr_free (&events);
        zstr_free (&bound);
        zstr_free (&bound_events);
        engine->opts.curve = NULL;  //  the caller's settings live only during the bind
    }
    else
    if (streq (command, SLUICE_PIPE_STOP)) {
        if (engine->cls->stop)
            engine->cls->stop (engine->self);
        zsock_send (engine->pipe, "si", SLUICE_PIPE_STOP, SLUICE_OK);
    }
    else
        SLUICE_ERROR ("sluice %s: invalid pipe command '%s'", engine->opts.name, command);
    zstr_free (&command);
    zmsg_destroy (&msg);
}

static void
s_check_done (sluice_engine_t *engine)
{
    if (!engine->done_sent && engine->cls->ended && engine->cls->ended (engine->self)) {
        engine->done_sent = true;
        engine->pipe_drained = false;
        zstr_sendx (engine->pipe, SLUICE_PIPE_DONE, "0", "", NULL);
    }
}

// ---------------------------------------------------------------------------------------------
//  Loop

void
sluice_engine_watch (sluice_engine_t *engine, void *socket, sluice_watch_fn *fn)
{
    assert (engine->watched_count < S_MAX_WATCHED);
    engine->watched [engine->watched_count++] = (s_watch_t) { zsock_resolve (socket), fn, socket };
    engine->items_dirty = true;
}

void
sluice_engine_unwatch (sluice_engine_t *engine, void *socket)
{
    void *raw = zsock_resolve (socket);
    for (size_t index = 0; index < engine->watched_count; index++)
        if (engine->watched [index].socket == raw) {
            engine->watched [index] = engine->watched [--engine->watched_count];
            engine->items_dirty = true;
            return;
        }
}

//  Poll items, in the order they are served: pipe, watched sockets (a finished job frees a
//  worker for the requests read next), router, events.
static void
s_build_items (sluice_engine_t *engine)
{
    size_t count = 0;
    engine->items [count++] = (zmq_pollitem_t) { zsock_resolve (engine->pipe), 0, ZMQ_POLLIN, 0 };
    for (size_t index = 0; index < engine->watched_count; index++)
        engine->items [count++] = (zmq_pollitem_t) { engine->watched [index].socket, 0, ZMQ_POLLIN, 0 };
    if (engine->router)
        engine->items [count++] = (zmq_pollitem_t) { engine->router_raw, 0, ZMQ_POLLIN, 0 };
    if (engine->events)
        engine->items [count++] = (zmq_pollitem_t) {
            sluice_publisher_socket (engine->events), 0, ZMQ_POLLIN, 0 };
    for (size_t index = 0; index < count; index++) {
        size_t size = sizeof engine->fds [index].fd;
        engine->fds [index] = (struct pollfd) { -1, POLLIN, 0 };
        zmq_getsockopt (engine->items [index].socket, ZMQ_FD, &engine->fds [index].fd, &size);
    }
    engine->item_count = count;
    engine->items_dirty = false;
    engine->router_drained = engine->pipe_drained = false;
}

//  Sets the items' revents to what is readable, waiting up to timeout_ms (-1: no limit) for
//  something to be; returns how many are, 0 when the time ran out, -1 on an error (errno:
//  EINTR, or ETERM when the context is ending).
static int
s_wait (sluice_engine_t *engine, long timeout_ms)
{
    size_t count = engine->item_count;
    size_t router = engine->router ? count - 1 - (engine->events ? 1 : 0) : count;
    int ready = 0;
    for (size_t index = 0; index < count; index++) {
        engine->items [index].revents = 0;
        engine->fds [index].revents = 0;
    }
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms;
    bool ask_all = true;
    while (true) {
        //  Ask the sockets whose fd could miss what they hold: all of them before the first
        //  sleep (but a drained ROUTER), then those whose fd fired
        for (size_t index = 0; index < count; index++) {
            bool drained = (index == router && engine->router_drained)
                        || (index == 0 && engine->pipe_drained);
            if (ask_all ? drained : !engine->fds [index].revents)
                continue;
            int events = 0;
            size_t size = sizeof events;
            if (zmq_getsockopt (engine->items [index].socket, ZMQ_EVENTS, &events, &size) == -1)
                return -1;
            if (events & ZMQ_POLLIN) {
                engine->items [index].revents = ZMQ_POLLIN;
                ready++;
            }
            else
            if (index == 0 || index == router)
                //  Asked and found nothing leaves it as a receive that found nothing does
                *(index == 0 ? &engine->pipe_drained : &engine->router_drained) = true;
        }
        if (ready)
            return ready;
        ask_all = false;
        long left = deadline == INT64_MAX ? -1 : sluice_poll_timeout (deadline);
        int wait = left > INT_MAX ? INT_MAX : (int) left;   //  poll(2) takes an int
        int rc = poll (engine->fds, (nfds_t) count, wait);
        if (rc == -1)
            return -1;
        if (rc == 0)
            return 0;
        //  Commands that brought no message (a peer connecting, say): ask those, sleep again
    }
}

static void
s_drain_router (sluice_engine_t *engine)
{
    for (int handled = 0; handled < S_DRAIN_BATCH && engine->router; handled++) {
        int rc = sluice_request_recv (engine->router_raw, &engine->req, engine->max_frames);
        if (rc <= 0) {
            if (rc == -1 && zmq_errno () == ETERM)
                engine->terminated = true;
            engine->router_drained = rc == 0;
            return;
        }
        s_handle_request (engine, &engine->req);
    }
    //  Stopped at the batch limit (or unbound): what is left is in pipes libzmq already
    //  counts as awake, which will not signal the ZMQ_FD again: ask before the next sleep
    engine->router_drained = false;
}

void
sluice_engine_run (sluice_engine_t *engine)
{
    zsock_signal (engine->pipe, 0);
    engine->items_dirty = true;
    while (!engine->terminated) {
        if (engine->items_dirty)
            s_build_items (engine);
        int64_t wake = engine->heap_size ? engine->heap [0]->deadline : INT64_MAX;
        if (engine->next_sweep < wake)
            wake = engine->next_sweep;
        if (s_wait (engine, sluice_poll_timeout (wake)) == -1) {
            if (errno == EINTR)
                continue;
            break;          //  the context is terminating
        }
        //  Handlers may change the items (watch, unwatch): serve from a copy of this round's
        size_t count = engine->item_count;
        zmq_pollitem_t items [S_MAX_WATCHED + 3];
        memcpy (items, engine->items, count * sizeof items [0]);
        size_t index = 0;
        if (items [index++].revents & ZMQ_POLLIN) {
            while (!engine->terminated && (zsock_events (engine->pipe) & ZMQ_POLLIN))
                s_handle_pipe (engine);
            engine->pipe_drained = !engine->terminated;     //  the last ask found nothing
            if (engine->terminated)
                break;
            if (engine->items_dirty)
                continue;   //  bound or unbound: poll the new set
        }
        for (size_t watch = 0; watch < engine->watched_count && index < count; watch++, index++)
            if ((items [index].revents & ZMQ_POLLIN) && engine->watched [watch].socket == items [index].socket)
                engine->watched [watch].fn (engine->self, engine->watched [watch].arg);
        index = count - (engine->router ? 1 : 0) - (engine->events ? 1 : 0);
        if (engine->router && (items [index++].revents & ZMQ_POLLIN))
            s_drain_router (engine);
        if (engine->events && index < count && (items [index].revents & ZMQ_POLLIN))
            sluice_publisher_handle (engine->events);
        s_timers (engine);
        s_check_done (engine);
    }
}

// ---------------------------------------------------------------------------------------------
//  Life cycle

sluice_engine_t *
sluice_engine_new (zsock_t *pipe, const sluice_actor_class_t *cls, void *self,
                   const sluice_engine_opts_t *opts)
{
    sluice_engine_t *engine = (sluice_engine_t *) calloc (1, sizeof *engine);
    if (!engine)
        return NULL;
    engine->pipe = pipe;
    engine->cls = cls;
    engine->self = self;
    engine->opts = *opts;
    //  Clients tell a restarted actor from the one they talked to by this (a clock and a
    //  counter would repeat across hosts; getrandom is enough and never blocks once booted)
    while (engine->incarnation == 0)
        if (getrandom (&engine->incarnation, sizeof engine->incarnation, 0) != sizeof engine->incarnation)
            engine->incarnation = (uint32_t) (zclock_time () ^ (uint64_t) getpid ());
    if (engine->opts.probe_ms <= 0)
        engine->opts.probe_ms = SLUICE_PROBE_MS;
    engine->max_frames = sluice_command_max_frames ((unsigned) cls->kind);
    engine->next_sweep = INT64_MAX;
    engine->peers = zhashx_new ();
    if (!engine->peers) {
        free (engine);
        return NULL;
    }
    //  Keyed by the routing id's bytes, without making a string of them for each request
    zhashx_set_key_hasher (engine->peers, s_peer_key_hash);
    zhashx_set_key_comparator (engine->peers, s_peer_key_compare);
    zhashx_set_key_duplicator (engine->peers, NULL);
    zhashx_set_key_destructor (engine->peers, NULL);
    return engine;
}

uint32_t
sluice_engine_incarnation (sluice_engine_t *engine)
{
    return engine->incarnation;
}

void
sluice_engine_set_incarnation (sluice_engine_t *engine, uint32_t incarnation)
{
    if (incarnation)
        engine->incarnation = incarnation;
}

uint64_t
sluice_engine_lost (sluice_engine_t *engine)
{
    return engine->lost;
}

uint64_t
sluice_engine_malformed (sluice_engine_t *engine)
{
    return engine->malformed;
}

void
sluice_engine_publish (sluice_engine_t *engine, const char *event, const char *detail)
{
    if (engine->events)
        sluice_publisher_send (engine->events, event, detail);
}

void
sluice_engine_destroy (sluice_engine_t **engine_p)
{
    sluice_engine_t *engine = *engine_p;
    if (!engine)
        return;
    *engine_p = NULL;
    while (engine->all) {
        sluice_held_t *held = engine->all;
        sluice_engine_release (engine, &held);   //  frees a vanished peer with its last one
    }
    for (sluice_peer_t *peer = (sluice_peer_t *) zhashx_first (engine->peers); peer;
         peer = (sluice_peer_t *) zhashx_next (engine->peers))
        s_peer_free (engine, peer);
    zhashx_destroy (&engine->peers);
    while (engine->spare) {
        sluice_held_t *held = engine->spare;
        engine->spare = held->next;
        sluice_frames_release (&held->frames);
        free (held);
    }
    free (engine->heap);
    sluice_request_release (&engine->req);
    s_unbind (engine);
    free (engine);
}
