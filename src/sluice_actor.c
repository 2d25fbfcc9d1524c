/*  sluice_actor.c - the life cycle every actor shares: start (and bind), stop, wait, destroy
    on the owner's side; stop orders, pauses and the final report on a task's side.
*/
#include "sluice_actor.h"
#include <errno.h>
#include <stdarg.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------
//  Owner side

//  czmq's zsock_signal: one frame, an int64_t in host order, this plus the status byte
#define S_SIGNAL_MAGIC  ((int64_t) 0x7766554433221100LL)

//  Take one message from the actor's pipe. A DONE report is recorded wherever it is met;
//  returns the message's first word (caller frees) and leaves the rest in *msg_p.
static char *
s_take (sluice_handle_t *handle, zmsg_t **msg_p)
{
    zmsg_t *msg = sluice_pipe_recv (handle->actor);
    if (!msg)
        return NULL;
    char *word = zmsg_popstr (msg);
    if (word && streq (word, SLUICE_PIPE_DONE)) {
        char *result = zmsg_popstr (msg);
        char *text = zmsg_popstr (msg);
        int code = result ? atoi (result) : SLUICE_EINTERNAL;
        handle->result = code >= 0 && code < SLUICE_ERR_COUNT_ ? (sluice_err_t) code
                                                                : SLUICE_EINTERNAL;
        snprintf (handle->error_text, sizeof handle->error_text, "%s", text ? text : "");
        handle->done = true;
        zstr_free (&result);
        zstr_free (&text);
    }
    *msg_p = msg;
    return word;
}

//  Read the pipe until a message starting with `expected` arrives (its rest in *msg_p, may be
//  NULL) or the deadline passes.
static sluice_err_t
s_expect (sluice_handle_t *handle, const char *expected, int64_t deadline, zmsg_t **msg_p)
{
    zmq_pollitem_t item = { zsock_resolve (handle->actor), 0, ZMQ_POLLIN, 0 };
    while (true) {
        if (streq (expected, SLUICE_PIPE_DONE) && handle->done)
            return SLUICE_OK;
        int rc = zmq_poll (&item, 1, sluice_poll_timeout (deadline));
        if (rc == 0)
            return SLUICE_ETIMEOUT;
        if (rc == -1)
            return zmq_errno () == EINTR ? SLUICE_EINTR : SLUICE_ETRANSPORT;
        zmsg_t *msg = NULL;
        char *word = s_take (handle, &msg);
        if (!word) {
            zmsg_destroy (&msg);
            return SLUICE_ETRANSPORT;
        }
        bool found = streq (word, expected);
        zstr_free (&word);
        if (found && msg_p)
            *msg_p = msg;
        else
            zmsg_destroy (&msg);
        if (found)
            return SLUICE_OK;
    }
}

//  The actor's answer to a command. zactor_new waits for the actor's start signal, but a
//  signal (a profiler's, a fuzzer's timer) can interrupt that wait and leave the start signal in
//  the pipe: it is skipped here, so that it is never read as the answer.
static zmsg_t *
s_recv_answer (void *actor)
{
    while (true) {
        zmsg_t *msg = sluice_pipe_recv (actor);
        zframe_t *frame = msg ? zmsg_first (msg) : NULL;
        int64_t value = 0;
        if (frame && zframe_size (frame) == sizeof value)
            memcpy (&value, zframe_data (frame), sizeof value);
        if (!msg || zmsg_size (msg) != 1 || (value & ~(int64_t) 0xFF) != S_SIGNAL_MAGIC)
            return msg;
        zmsg_destroy (&msg);
    }
}

sluice_err_t
sluice_handle_start (sluice_handle_t *handle, zactor_fn *fn, void *args, const char *endpoint,
                     const char *events_endpoint)
{
    memset (handle, 0, sizeof *handle);
    handle->actor = zactor_new (fn, args);
    if (!handle->actor) {
        sluice_set_last_error ("cannot start an actor thread");
        return SLUICE_ENOMEM;
    }
    if (!endpoint)
        return SLUICE_OK;
    int rc = SLUICE_ETRANSPORT;
    char *bound = NULL, *bound_events = NULL, *why = NULL;
    if (zstr_sendx (handle->actor, SLUICE_PIPE_BIND, endpoint,
                    events_endpoint ? events_endpoint : "", NULL) == 0) {
        zmsg_t *answer = s_recv_answer (handle->actor);
        if (answer) {
            char *code = zmsg_popstr (answer);
            rc = code ? atoi (code) : SLUICE_EINTERNAL;
            zstr_free (&code);
            bound = zmsg_popstr (answer);
            bound_events = zmsg_popstr (answer);
            why = zmsg_popstr (answer);
            zmsg_destroy (&answer);
        }
    }
    if (rc == SLUICE_OK && (!bound || !*bound))
        rc = SLUICE_EINTERNAL;      //  not an answer to BIND: the actor ended
    if (rc != SLUICE_OK) {
        sluice_set_last_error ("%s", why && *why ? why : "the actor did not bind");
        snprintf (handle->error_text, sizeof handle->error_text, "%s", sluice_last_error_text ());
        zstr_free (&bound);
        zstr_free (&bound_events);
        zstr_free (&why);
        zactor_destroy (&handle->actor);
        return rc > SLUICE_OK && rc < SLUICE_ERR_COUNT_ ? (sluice_err_t) rc : SLUICE_EINTERNAL;
    }
    zstr_free (&why);
    handle->endpoint = bound;
    if (bound_events && *bound_events)
        handle->events_endpoint = bound_events;
    else
        zstr_free (&bound_events);
    return SLUICE_OK;
}

sluice_err_t
sluice_handle_stop (sluice_handle_t *handle)
{
    if (!handle->actor)
        return SLUICE_EINVAL;
    if (zstr_send (handle->actor, SLUICE_PIPE_STOP) == -1)
        return SLUICE_ETRANSPORT;
    zmsg_t *msg = NULL;
    sluice_err_t rc = s_expect (handle, SLUICE_PIPE_STOP, INT64_MAX, &msg);
    if (rc == SLUICE_OK) {
        char *status = zmsg_popstr (msg);
        int code = status ? atoi (status) : SLUICE_OK;
        rc = code >= 0 && code < SLUICE_ERR_COUNT_ ? (sluice_err_t) code : SLUICE_EINTERNAL;
        zstr_free (&status);
    }
    zmsg_destroy (&msg);
    return rc;
}

sluice_err_t
sluice_handle_wait (sluice_handle_t *handle, int timeout_ms)
{
    if (handle->done)
        return handle->result;
    if (!handle->actor)
        return SLUICE_EINVAL;
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms;
    sluice_err_t rc = s_expect (handle, SLUICE_PIPE_DONE, deadline, NULL);
    return rc == SLUICE_OK ? handle->result : rc;
}

const char *
sluice_handle_error_text (sluice_handle_t *handle)
{
    return handle->error_text;
}

void
sluice_handle_destroy (sluice_handle_t *handle)
{
    zactor_destroy (&handle->actor);
    zstr_free (&handle->endpoint);
    zstr_free (&handle->events_endpoint);
}

// ---------------------------------------------------------------------------------------------
//  Actor side

zmsg_t *
sluice_pipe_recv (void *pipe)
{
    zmsg_t *msg;
    while (!(msg = zmsg_recv (pipe)) && zmq_errno () == EINTR)
        ;
    return msg;
}

char *
sluice_pipe_recv_command (void *pipe)
{
    zmsg_t *msg = sluice_pipe_recv (pipe);
    char *command = msg ? zmsg_popstr (msg) : NULL;
    zmsg_destroy (&msg);
    return command;
}

void
sluice_actor_refuse (zsock_t *pipe, sluice_err_t err, const char *why)
{
    zsock_signal (pipe, 0);
    while (true) {
        char *command = sluice_pipe_recv_command (pipe);
        bool term = !command || streq (command, SLUICE_PIPE_TERM);
        if (command && streq (command, SLUICE_PIPE_BIND))
            zsock_send (pipe, "isss", (int) err, "", "", why);
        else
        if (command && streq (command, SLUICE_PIPE_STOP))
            zsock_send (pipe, "si", SLUICE_PIPE_STOP, (int) err);
        zstr_free (&command);
        if (term)
            break;
    }
}

sluice_task_order_t
sluice_task_order (zsock_t *pipe)
{
    //  Nothing there: a signal interrupted the wait. End the job and report it.
    if (!(zsock_events (pipe) & ZMQ_POLLIN))
        return SLUICE_TASK_STOP;
    char *command = sluice_pipe_recv_command (pipe);
    sluice_task_order_t order = SLUICE_TASK_TERM;
    if (command && streq (command, SLUICE_PIPE_STOP)) {
        zsock_send (pipe, "si", SLUICE_PIPE_STOP, SLUICE_OK);
        order = SLUICE_TASK_STOP;
    }
    else
    if (command && !streq (command, SLUICE_PIPE_TERM)) {
        SLUICE_ERROR ("sluice: invalid pipe command '%s'", command);
        order = SLUICE_TASK_GO_ON;
    }
    zstr_free (&command);
    return order;
}

sluice_task_order_t
sluice_task_pause (zsock_t *pipe, int ms)
{
    zmq_pollitem_t item = { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
    int64_t deadline = zclock_mono () + ms;
    while (true) {
        int rc = zmq_poll (&item, 1, sluice_poll_timeout (deadline));
        if (rc == 0)
            return SLUICE_TASK_GO_ON;
        if (rc == -1 && zmq_errno () == EINTR)
            continue;
        if (rc == -1)
            return SLUICE_TASK_TERM;        //  the context is going away
        sluice_task_order_t order = sluice_task_order (pipe);
        if (order != SLUICE_TASK_GO_ON)
            return order;
    }
}

void
sluice_task_done (zsock_t *pipe, sluice_err_t result, const char *text, bool terminated)
{
    if (terminated)
        return;
    char code [16];
    snprintf (code, sizeof code, "%d", (int) result);
    zstr_sendx (pipe, SLUICE_PIPE_DONE, code, text ? text : "", NULL);
    //  Serve the pipe until $TERM: a late STOP is still acknowledged
    while (sluice_task_order (pipe) != SLUICE_TASK_TERM)
        ;
}
