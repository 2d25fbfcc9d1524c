/*  sluice_client.h - a client for what every actor answers: STATUS, stop, wait until ready,
    PING. The command line's `status`, `close` and `wait-ready` are built on it; it works on a
    buffer and on a model server alike (STATUS says which actor answers).

    A sluice_client_t owns one DEALER connected to an actor's endpoint. NOT thread-safe: one
    per thread. Every call takes a timeout for its whole wait (SLUICE_FOREVER: no limit, but an
    actor that does not answer a liveness ping within the grace period ends it with
    SLUICE_ETRANSPORT); an actor that does not answer in time gives SLUICE_ETIMEOUT.
*/
#ifndef SLUICE_CLIENT_H_INCLUDED
#define SLUICE_CLIENT_H_INCLUDED

#include "sluice_export.h"
#include "sluice_error.h"
#include "sluice_curve.h"
#include "sluice_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sluice_client_t sluice_client_t;

//  Connect (asynchronously, as in ZeroMQ) to the actor at endpoint; curve may be NULL
//  (plaintext). NULL when the endpoint or the CURVE settings are invalid (as for
//  sluice_stream_new: an unresolvable tcp host, an inproc endpoint nobody bound here): then
//  sluice_last_error_text says why. The caller owns the result.
SLUICE_EXPORT sluice_client_t *
    sluice_client_new (const char *endpoint, const sluice_curve_t *curve);

//  Disconnect and free. Sets *self_p to NULL.
SLUICE_EXPORT void
    sluice_client_destroy (sluice_client_t **self_p);

//  The actor's status: status->actor says which actor answered and which member is filled.
SLUICE_EXPORT sluice_err_t
    sluice_client_status (sluice_client_t *self, int timeout_ms, sluice_status_t *status);

//  Stop the actor accepting work: a buffer closes (CLOSE), a model server begins its graceful
//  shutdown (SHUTDOWN). Idempotent; returns once the actor has acted on it.
SLUICE_EXPORT sluice_err_t
    sluice_client_stop (sluice_client_t *self, int timeout_ms);

//  Wait until the actor is ready: a buffer as soon as it answers (SLUICE_ECLOSED when it is
//  closed), a model server once its model has loaded (SLUICE_ELOADFAIL when the load failed,
//  SLUICE_ESHUTDOWN when it is shutting down). The actor does the waiting: nothing polls.
SLUICE_EXPORT sluice_err_t
    sluice_client_wait_ready (sluice_client_t *self, int timeout_ms);

//  Is the actor there? SLUICE_OK when it answers a PING.
SLUICE_EXPORT sluice_err_t
    sluice_client_ping (sluice_client_t *self, int timeout_ms);

//  The error of the last call, and the actor's text for it ("" when none). The text is owned
//  by the client and valid until the next call.
SLUICE_EXPORT sluice_err_t
    sluice_client_error (sluice_client_t *self);
SLUICE_EXPORT const char *
    sluice_client_error_text (sluice_client_t *self);

#ifdef __cplusplus
}
#endif
#endif
