/*  sluice_publisher.c - an actor's state broadcast, safe for late subscribers.

    An XPUB in verbose mode hands us every subscription, duplicates included; we answer each
    one by publishing the last state again. A subscriber therefore learns the current state as
    soon as its subscription reaches us, however late it joined (the slow-joiner problem). The
    replay also reaches older subscribers: events are states, so a repeat is harmless.
*/
#include "sluice_publisher.h"
#include <errno.h>
#include <string.h>

struct sluice_publisher_t {
    zsock_t *xpub;
    char *endpoint;
    char *event;     //  last state, NULL before the first
    char *detail;
    bool secured;    //  CURVE applied: holds the process's authenticator
};

sluice_publisher_t *
sluice_publisher_new (const char *endpoint, const sluice_curve_t *curve, char *why,
                      size_t why_size)
{
    sluice_publisher_t *self = (sluice_publisher_t *) zmalloc (sizeof *self);
    self->xpub = zsock_new (ZMQ_XPUB);
    if (!self->xpub) {
        snprintf (why, why_size, "cannot create a socket: %s", zmq_strerror (errno));
        free (self);
        return NULL;
    }
    zsock_set_xpub_verbose (self->xpub, 1);
    //  The events say what the actor does: they are as private as its requests
    char refused [256];
    int rc = sluice_curve_server (self->xpub, curve, refused, sizeof refused);
    if (rc == -1) {
        snprintf (why, why_size, "refusing to publish events on %s: %s", endpoint, refused);
        sluice_publisher_destroy (&self);
        return NULL;
    }
    self->secured = rc == 1;
    if (zsock_bind (self->xpub, "%s", endpoint) == -1) {
        snprintf (why, why_size, "cannot bind events %s: %s", endpoint, zmq_strerror (errno));
        sluice_publisher_destroy (&self);
        return NULL;
    }
    self->endpoint = sluice_bound_endpoint (self->xpub, endpoint);
    return self;
}

void
sluice_publisher_destroy (sluice_publisher_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sluice_publisher_t *self = *self_p;
    zsock_destroy (&self->xpub);
    if (self->secured)
        sluice_curve_release ();
    zstr_free (&self->endpoint);
    zstr_free (&self->event);
    zstr_free (&self->detail);
    free (self);
    *self_p = NULL;
}

void *
sluice_publisher_socket (sluice_publisher_t *self)
{
    return zsock_resolve (self->xpub);
}

const char *
sluice_publisher_endpoint (sluice_publisher_t *self)
{
    return self->endpoint;
}

static void
s_publish_last (sluice_publisher_t *self)
{
    if (!self->event)
        return;
    //  PUB never blocks: a subscriber whose queue is full misses this copy, which is why
    //  state is also replayed on subscription and queryable by STATUS.
    if (zstr_sendx (self->xpub, self->event, self->detail, NULL) == -1)
        SLUICE_DEBUG ("sluice: event %s not sent: %s", self->event, zmq_strerror (zmq_errno ()));
}

void
sluice_publisher_send (sluice_publisher_t *self, const char *event, const char *detail)
{
    zstr_free (&self->event);
    zstr_free (&self->detail);
    self->event = strdup (event);
    self->detail = strdup (detail ? detail : "");
    s_publish_last (self);
}

void
sluice_publisher_handle (sluice_publisher_t *self)
{
    void *xpub = zsock_resolve (self->xpub);
    zmq_msg_t msg;
    zmq_msg_init (&msg);
    bool subscribed = false;
    while (zmq_msg_recv (&msg, xpub, ZMQ_DONTWAIT) != -1) {
        //  First byte 1 = subscribe, 0 = unsubscribe
        if (zmq_msg_size (&msg) >= 1 && ((uint8_t *) zmq_msg_data (&msg)) [0] == 1)
            subscribed = true;
    }
    zmq_msg_close (&msg);
    if (subscribed)
        s_publish_last (self);
}
