/*  sluice_socket.c - actors' ROUTERs, heartbeats, bound endpoints, poll timeouts. */
#include "sluice_socket.h"
#include <errno.h>
#include <limits.h>
#include <string.h>

void
sluice_socket_heartbeat (zsock_t *sock, int interval_ms)
{
    zsock_set_heartbeat_ivl (sock, interval_ms);
    zsock_set_heartbeat_timeout (sock, interval_ms * 3);
    zsock_set_heartbeat_ttl (sock, interval_ms * 3);
}

zsock_t *
sluice_router_new (const char *endpoint, const sluice_router_opts_t *opts, sluice_err_t *err,
                   bool *secured, char *why, size_t why_size)
{
    *secured = false;
    *err = SLUICE_ETRANSPORT;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    if (!router) {
        snprintf (why, why_size, "cannot create a socket: %s", zmq_strerror (errno));
        return NULL;
    }
    //  Never drop a reply silently: an unroutable peer is an error we act on
    zsock_set_router_mandatory (router, 1);
    //  Dead or hung tcp peers are disconnected, so their parked requests can be swept
    sluice_socket_heartbeat (router, SLUICE_HEARTBEAT_MS);
    //  Many clients connecting at once (the default backlog of 100 serialises them)
    zsock_set_backlog (router, SLUICE_BACKLOG);
    //  Replies sent just before the actor stops (a close, a shutdown) still leave over tcp
    zsock_set_linger (router, 1000);
    zsock_set_sndhwm (router, opts->sndhwm > INT_MAX ? INT_MAX : (int) opts->sndhwm);
    if (opts->maxmsgsize > 0)
        zsock_set_maxmsgsize (router, (int) (opts->maxmsgsize > INT_MAX ? INT_MAX : opts->maxmsgsize));
    char refused [256];
    int curve = sluice_curve_server (router, opts->curve, refused, sizeof refused);
    if (curve == -1) {
        snprintf (why, why_size, "refusing to start %s: %s", endpoint, refused);
        zsock_destroy (&router);
        *err = SLUICE_EINVAL;
        return NULL;
    }
    if (zsock_bind (router, "%s", endpoint) == -1) {
        int saved = errno;
        snprintf (why, why_size, "cannot bind %s: %s", endpoint, zmq_strerror (saved));
        zsock_destroy (&router);
        if (curve == 1)
            sluice_curve_release ();
        errno = saved;
        return NULL;
    }
    *secured = curve == 1;
    *err = SLUICE_OK;
    return router;
}

char *
sluice_bound_endpoint (zsock_t *sock, const char *requested)
{
    char *last = zsock_last_endpoint (sock);
    if (last && *last)
        return last;
    zstr_free (&last);
    return strdup (requested);
}

long
sluice_poll_timeout (int64_t deadline)
{
    if (deadline == INT64_MAX)
        return -1;
    int64_t wait = deadline - zclock_mono ();
    return wait > 0 ? (long) wait : 0;
}
