/*  sluice_events.c - a small subscriber for actor events. */
#include "sluice_socket.h"
#include "sluice_events.h"
#include "sluice_actor.h"
#include <string.h>

static void
s_copy (char *out, size_t out_size, const char *text)
{
    if (out && out_size) {
        strncpy (out, text, out_size - 1);
        out [out_size - 1] = 0;
    }
}

sluice_err_t
sluice_events_wait (const char *events_endpoint, const char *const *names, int timeout_ms,
                    char *name, size_t name_size, char *detail, size_t detail_size)
{
    return sluice_events_wait_secure (events_endpoint, NULL, names, timeout_ms, name, name_size,
                                      detail, detail_size);
}

sluice_err_t
sluice_events_wait_secure (const char *events_endpoint, const sluice_curve_t *curve,
                           const char *const *names, int timeout_ms, char *name,
                           size_t name_size, char *detail, size_t detail_size)
{
    if (!events_endpoint || !names)
        return SLUICE_EINVAL;
    zsock_t *sub = zsock_new (ZMQ_SUB);
    if (!sub)
        return SLUICE_ETRANSPORT;
    char why [256];
    if (sluice_curve_client (sub, curve, why, sizeof why) == -1) {
        sluice_set_last_error ("%s", why);
        zsock_destroy (&sub);
        return SLUICE_EINVAL;
    }
    if (zsock_connect (sub, "%s", events_endpoint) == -1) {
        sluice_set_last_error ("cannot connect to %s: %s", events_endpoint,
                               zmq_strerror (zmq_errno ()));
        zsock_destroy (&sub);
        return SLUICE_ETRANSPORT;
    }
    zsock_set_subscribe (sub, "");
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms;
    sluice_err_t result = SLUICE_ETIMEOUT;
    while (true) {
        zmq_pollitem_t item = { zsock_resolve (sub), 0, ZMQ_POLLIN, 0 };
        int rc = zmq_poll (&item, 1, sluice_poll_timeout (deadline));
        if (rc == -1) {
            result = zmq_errno () == EINTR ? SLUICE_EINTR : SLUICE_ETRANSPORT;
            break;
        }
        if (rc == 0)
            break;      //  deadline passed
        char *event = NULL, *text = NULL;
        if (zstr_recvx (sub, &event, &text, NULL) == -1) {
            result = SLUICE_ETRANSPORT;
            break;
        }
        bool match = false;
        for (const char *const *wanted = names; *wanted && !match; wanted++)
            match = event && streq (event, *wanted);
        if (match) {
            s_copy (name, name_size, event);
            s_copy (detail, detail_size, text ? text : "");
            result = SLUICE_OK;
        }
        zstr_free (&event);
        zstr_free (&text);
        if (match)
            break;
    }
    zsock_destroy (&sub);
    return result;
}
