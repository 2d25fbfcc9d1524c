/*  sluice_publisher.h - an actor's events: an XPUB with last-value replay (sluice_events.h).
    Internal; the engine owns one per actor that has an events endpoint.
*/
#ifndef SLUICE_PUBLISHER_H_INCLUDED
#define SLUICE_PUBLISHER_H_INCLUDED

#include "sluice_socket.h"

typedef struct sluice_publisher_t sluice_publisher_t;

//  Bind an XPUB at endpoint, with the same CURVE settings as the actor's requests (curve may
//  be NULL). NULL when that fails, with why filled.
sluice_publisher_t *
    sluice_publisher_new (const char *endpoint, const sluice_curve_t *curve,
                          char *why, size_t why_size);
void
    sluice_publisher_destroy (sluice_publisher_t **self_p);
void *
    sluice_publisher_socket (sluice_publisher_t *self);  //  raw handle, for zmq_poll
const char *
    sluice_publisher_endpoint (sluice_publisher_t *self);
//  Remember and broadcast a new state.
void
    sluice_publisher_send (sluice_publisher_t *self, const char *event, const char *detail);
//  Drain pending subscriptions; each new subscription gets the last state again.
void
    sluice_publisher_handle (sluice_publisher_t *self);

#endif
