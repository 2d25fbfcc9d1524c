/*  sluice_task.c - life cycles shared by actors: servers that bind (buffer, model server) and
    one-job actors (writer, reader).

    The actor reports "DONE <result>" on its pipe when its job ends, then waits for $TERM:
    czmq's zactor_destroy sends $TERM and waits for the actor's signal, so an actor must keep
    its pipe open until then.
*/
#include "sluice_internal.h"
#include <string.h>

sluice_err_t
sluice_server_start (sluice_server_t *server, zactor_fn *fn, void *args,
                     const char *endpoint, const char *events_endpoint)
{
    memset (server, 0, sizeof *server);
    server->actor = zactor_new (fn, args);
    if (!server->actor)
        return SLUICE_ENOMEM;
    int rc = SLUICE_ETRANSPORT;
    char *bound = NULL, *bound_events = NULL;
    if (zstr_sendx (server->actor, "BIND", endpoint, events_endpoint ? events_endpoint : "",
                    NULL) == 0
    &&  zsock_recv (server->actor, "iss", &rc, &bound, &bound_events) == -1)
        rc = SLUICE_ETRANSPORT;
    if (rc != SLUICE_OK) {
        zstr_free (&bound);
        zstr_free (&bound_events);
        sluice_server_stop (server);
        return rc > SLUICE_OK && rc < SLUICE_ERR_COUNT_ ? (sluice_err_t) rc : SLUICE_EINTERNAL;
    }
    server->endpoint = bound;
    if (bound_events && *bound_events)
        server->events_endpoint = bound_events;
    else
        zstr_free (&bound_events);
    return SLUICE_OK;
}

void
sluice_server_stop (sluice_server_t *server)
{
    zactor_destroy (&server->actor);
    zstr_free (&server->endpoint);
    zstr_free (&server->events_endpoint);
}

sluice_err_t
sluice_task_start (sluice_task_t *task, zactor_fn *fn, void *args)
{
    memset (task, 0, sizeof *task);
    task->actor = zactor_new (fn, args);
    return task->actor ? SLUICE_OK : SLUICE_ENOMEM;
}

sluice_err_t
sluice_task_wait (sluice_task_t *task, int timeout_ms)
{
    if (task->done)
        return task->result;
    zmq_pollitem_t item = { zsock_resolve (task->actor), 0, ZMQ_POLLIN, 0 };
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms;
    while (!task->done) {
        int rc = zmq_poll (&item, 1, sluice_poll_timeout (deadline));
        if (rc == -1)
            return zmq_errno () == EINTR ? SLUICE_EINTR : SLUICE_ETRANSPORT;
        if (rc == 0)
            return SLUICE_ETIMEOUT;
        char *word = NULL;
        int result = SLUICE_EINTERNAL;
        if (zsock_recv (task->actor, "si", &word, &result) == 0 && word && streq (word, "DONE")) {
            task->done = true;
            task->result = (sluice_err_t) result;
        }
        zstr_free (&word);
    }
    return task->result;
}

void
sluice_task_stop (sluice_task_t *task)
{
    zactor_destroy (&task->actor);
}

bool
sluice_task_pause (zsock_t *pipe, int ms)
{
    zmq_pollitem_t item = { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
    int64_t deadline = zclock_mono () + ms;
    while (true) {
        int rc = zmq_poll (&item, 1, sluice_poll_timeout (deadline));
        if (rc == 0)
            return true;
        if (rc == -1 && zmq_errno () == EINTR)
            continue;
        return false;       //  $TERM (the only command these actors take) or a dead context
    }
}

void
sluice_task_finish (zsock_t *pipe, sluice_err_t result, bool terminated)
{
    if (terminated)
        return;
    zsock_send (pipe, "si", "DONE", (int) result);
    //  Wait for $TERM
    while (true) {
        char *command = zstr_recv (pipe);
        bool term = !command || streq (command, "$TERM");
        zstr_free (&command);
        if (term)
            break;
    }
}
