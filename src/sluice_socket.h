/*  sluice_socket.h - how sluice sets up its ZeroMQ sockets: actors' ROUTERs, heartbeats,
    CURVE, bound endpoints, poll timeouts. Internal; uses only the codec below it.
*/
#ifndef SLUICE_SOCKET_H_INCLUDED
#define SLUICE_SOCKET_H_INCLUDED

#include "sluice_codec.h"
#include "sluice_curve.h"

//  Liveness on tcp: ZeroMQ heartbeats every interval, a peer silent for 3 intervals is
//  disconnected. Clients also ping an actor that has been silent for SLUICE_LIVENESS_MS while
//  they wait, and give up after the grace period without an answer.
#define SLUICE_HEARTBEAT_MS   1000
#define SLUICE_LIVENESS_MS    5000
#define SLUICE_BACKLOG        1024

//  Set heartbeats on a tcp socket (no effect on inproc).
void
    sluice_socket_heartbeat (zsock_t *sock, int interval_ms);

//  How an actor's ROUTER is set up; every option must be set before the bind (an endpoint
//  copies the socket's options when it is bound).
typedef struct {
    size_t sndhwm;                //  replies one peer may have queued: an actor that can release
                                  //  N parked requests at once needs N plus room
    int64_t maxmsgsize;           //  larger inbound frames disconnect the peer (tcp); 0 = none
    const sluice_curve_t *curve;  //  CURVE server settings, or NULL
} sluice_router_opts_t;

//  New ROUTER bound at endpoint with ROUTER_MANDATORY, tcp heartbeats and a large listen
//  backlog. NULL on failure, with *err SLUICE_EINVAL (security settings refused) or
//  SLUICE_ETRANSPORT (bind failed, errno kept), and why filled. *secured tells whether CURVE
//  was applied (then call sluice_curve_release when the socket is gone).
zsock_t *
    sluice_router_new (const char *endpoint, const sluice_router_opts_t *opts,
                       sluice_err_t *err, bool *secured, char *why, size_t why_size);

//  The endpoint a socket is bound to, with a tcp wildcard port resolved; freshly allocated.
char *
    sluice_bound_endpoint (zsock_t *sock, const char *requested);

//  CURVE (sluice_curve.h). Apply to a socket before bind / connect: 0 when curve asks for
//  nothing, 1 when applied, -1 when refused (why says why). A server that applied it holds
//  the process's authenticator until sluice_curve_release.
int
    sluice_curve_server (zsock_t *sock, const sluice_curve_t *curve, char *why, size_t why_size);
int
    sluice_curve_client (zsock_t *sock, const sluice_curve_t *curve, char *why, size_t why_size);
void
    sluice_curve_release (void);

//  ms until `deadline` (zclock_mono ms) for zmq_poll: -1 when there is none (INT64_MAX).
long
    sluice_poll_timeout (int64_t deadline);

#endif
