/*  sluice_actor.h - the one life cycle every sluice actor has, both sides of its pipe.

    Every actor is a czmq zactor. Its owner (the thread that created it) holds a sluice_handle_t
    and talks to it over the actor's pipe with these messages:

        owner -> actor   "BIND" endpoint events     servers: bind; answered "isss": status,
                                                    bound endpoint, bound events, why it failed
        owner -> actor   "STOP"                     stop accepting work (a buffer closes, a
                                                    model server shuts down, a task stops its
                                                    job); answered "si": "STOP", status
        actor -> owner   "DONE" result text         once, when the actor's job has ended (a
                                                    task finished, a buffer is closed and
                                                    drained, a model server has stopped)
        owner -> actor   "$TERM"                    czmq's: end now (zactor_destroy)

    So every actor offers the same contract: new (opts, &err) that says why it failed,
    actor_handle (readable when DONE arrives), stop, wait (timeout) with a result, error_text,
    destroy. The public handles of the actors are thin wrappers over sluice_handle_t.
    Internal; used by the engine (servers) and the task actors.
*/
#ifndef SLUICE_ACTOR_H_INCLUDED
#define SLUICE_ACTOR_H_INCLUDED

#include "sluice_socket.h"

#define SLUICE_PIPE_BIND  "BIND"
#define SLUICE_PIPE_STOP  "STOP"
#define SLUICE_PIPE_DONE  "DONE"
#define SLUICE_PIPE_TERM  "$TERM"

#define SLUICE_TEXT_SIZE  512

// ---------------------------------------------------------------------------------------------
//  Owner side

typedef struct {
    zactor_t *actor;
    char *endpoint;                   //  servers: as bound (tcp wildcard ports resolved)
    char *events_endpoint;            //  servers: NULL when none
    bool done;                        //  DONE arrived: result and error_text are final
    sluice_err_t result;
    char error_text [SLUICE_TEXT_SIZE];
} sluice_handle_t;

//  Start `fn` as an actor (args must stay valid until it signals, i.e. until this returns).
//  With an endpoint, the actor is a server and is bound now (a failed bind is reported here:
//  zactor_new cannot). On failure the actor is gone, error_text says why, and the error is
//  also left for sluice_last_error_text.
sluice_err_t
    sluice_handle_start (sluice_handle_t *handle, zactor_fn *fn, void *args,
                         const char *endpoint, const char *events_endpoint);

//  Ask the actor to stop accepting work and wait for its acknowledgement.
sluice_err_t
    sluice_handle_stop (sluice_handle_t *handle);

//  Wait for DONE: the actor's result, SLUICE_ETIMEOUT while it runs, SLUICE_EINTR when a
//  signal interrupted the wait.
sluice_err_t
    sluice_handle_wait (sluice_handle_t *handle, int timeout_ms);

//  "" until the actor is done (or failed to start); then the reason for its result.
const char *
    sluice_handle_error_text (sluice_handle_t *handle);

//  End the actor ($TERM) and free what the handle holds.
void
    sluice_handle_destroy (sluice_handle_t *handle);

// ---------------------------------------------------------------------------------------------
//  Actor side

//  The next message on an actor's pipe (either end: a zsock_t or a zactor_t), or NULL when the context ends. libzmq may fail a
//  receive with EINTR when a signal arrives (a profiler's, a fuzzer's timer) even though a
//  message is there: that is retried, so a signal never reads as $TERM.
zmsg_t *
    sluice_pipe_recv (void *pipe);
//  Same, the first frame as a string (the command), the rest dropped.
char *
    sluice_pipe_recv_command (void *pipe);

//  For an actor that cannot run (bad options, out of memory): signal the owner, answer its
//  BIND with err and why, and end at $TERM.
void
    sluice_actor_refuse (zsock_t *pipe, sluice_err_t err, const char *why);

//  For tasks (actors that do one job: writer, reader, stage)

//  What a task's pipe said while it waited (its clients watch the pipe and return SLUICE_EINTR
//  when anything arrives there). Reads one command: STOP is acknowledged here. With nothing on
//  the pipe (a signal interrupted the wait) the answer is STOP.
typedef enum { SLUICE_TASK_GO_ON, SLUICE_TASK_STOP, SLUICE_TASK_TERM } sluice_task_order_t;
sluice_task_order_t
    sluice_task_order (zsock_t *pipe);

//  Pause ms while staying responsive: SLUICE_TASK_GO_ON when the time is up, else the order
//  that arrived (acknowledged).
sluice_task_order_t
    sluice_task_pause (zsock_t *pipe, int ms);

//  Report the result (unless terminated: $TERM arrived, the owner is not listening), then
//  serve the pipe until $TERM: an actor must not return before it.
void
    sluice_task_done (zsock_t *pipe, sluice_err_t result, const char *text, bool terminated);

#endif
