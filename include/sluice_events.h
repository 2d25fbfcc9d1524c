/*  sluice_events.h - the state broadcast every actor publishes.

    An actor's events socket is a ZeroMQ XPUB. Each event is two frames: the event name (one of
    the SLUICE_EVENT_* strings below) and a detail string (model name, failure reason, or "").
    The actor remembers its last event and re-sends it whenever a subscription arrives, so a
    subscriber that connects late still learns the current state at once (no slow-joiner gap).
    Subscribe with "" for every event, or with an event name as prefix.

    sluice_events_wait is a small subscriber: NOT thread-safe, one call per thread.
*/
#ifndef SLUICE_EVENTS_H_INCLUDED
#define SLUICE_EVENTS_H_INCLUDED

#include <stddef.h>
#include "sluice_export.h"
#include "sluice_error.h"
#include "sluice_curve.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_EVENT_OPEN      "OPEN"       //  buffer: accepting writes
#define SLUICE_EVENT_CLOSED    "CLOSED"     //  buffer: closed (draining or drained)
#define SLUICE_EVENT_LOADING   "LOADING"    //  model server: model loading (detail: model name)
#define SLUICE_EVENT_READY     "READY"      //  model server: ready (detail: model name)
#define SLUICE_EVENT_FAILED    "FAILED"     //  model server: load failed (detail: reason)
#define SLUICE_EVENT_DRAINING  "DRAINING"   //  model server: shutting down, in-flight finishing
#define SLUICE_EVENT_STOPPED   "STOPPED"    //  model server: stopped

//  Subscribe to the events endpoint and wait until an event whose name is one of `names`
//  (a NULL-terminated list) arrives, or timeout_ms passes (SLUICE_ETIMEOUT). On success the
//  event name and detail are copied into name/detail (each of the given size, NUL-terminated,
//  either may be NULL).
SLUICE_EXPORT sluice_err_t
    sluice_events_wait (const char *events_endpoint, const char *const *names, int timeout_ms,
                        char *name, size_t name_size, char *detail, size_t detail_size);

//  The same from an actor whose events are CURVE-protected (an actor started with a CURVE
//  certificate protects its events as it does its requests): curve holds the server's key and
//  this subscriber's certificate, as for sluice_stream_new_secure. SLUICE_EINVAL when those
//  settings are refused (sluice_last_error_text says why). A subscriber the actor refuses
//  hears nothing: SLUICE_ETIMEOUT.
SLUICE_EXPORT sluice_err_t
    sluice_events_wait_secure (const char *events_endpoint, const sluice_curve_t *curve,
                               const char *const *names, int timeout_ms, char *name,
                               size_t name_size, char *detail, size_t detail_size);

#ifdef __cplusplus
}
#endif
#endif
