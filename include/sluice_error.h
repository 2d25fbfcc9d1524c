/*  sluice_error.h - the one error enum of sluice.

    Every sluice call that can fail returns a sluice_err_t. The numeric values are part of the
    wire protocol (the status byte of a reply, see docs/PROTOCOL.md) and never change.
    Thread-safe: sluice_strerror returns a static string.
*/
#ifndef SLUICE_ERROR_H_INCLUDED
#define SLUICE_ERROR_H_INCLUDED

#include <stdbool.h>
#include "sluice_export.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Timeout value meaning "no deadline", for every call that takes timeout_ms.
#define SLUICE_FOREVER  (-1)

typedef enum {
    SLUICE_OK         = 0,   //  success
    SLUICE_ECLOSED    = 1,   //  the buffer is closed: writes are refused
    SLUICE_ETIMEOUT   = 2,   //  the deadline passed before the request could be served
    SLUICE_EPROTO     = 3,   //  malformed message (frame count, sizes, field values)
    SLUICE_EVERSION   = 4,   //  unsupported protocol version
    SLUICE_ECOMMAND   = 5,   //  unknown command
    SLUICE_ETOOBIG    = 6,   //  chunk or payload larger than the actor's maximum
    SLUICE_EBUSY      = 7,   //  admission limit reached: try again later
    SLUICE_ESHUTDOWN  = 8,   //  the server is shutting down
    SLUICE_ELOADFAIL  = 9,   //  the model failed to load (the reply carries the reason)
    SLUICE_EINVAL     = 10,  //  invalid argument given by the caller (never sent on the wire)
    SLUICE_ETRANSPORT = 11,  //  socket error, bad endpoint, or no reply from the peer in time
    SLUICE_EINTR      = 12,  //  interrupted by a signal (SIGINT/SIGTERM)
    SLUICE_ENOMEM     = 13,  //  out of memory
    SLUICE_EINTERNAL  = 14,  //  a bug in sluice: please report it
    SLUICE_ERESTARTED = 15,  //  the actor is a new incarnation (it restarted): what the one
                             //  this client talked to held is gone (never sent on the wire)
    SLUICE_EUNKNOWN   = 16,  //  a write was sent but its reply never came (the actor went
                             //  silent, or the reply was lost with a connection): it may or
                             //  may not have been enqueued (never sent on the wire)
    SLUICE_ERR_COUNT_
} sluice_err_t;

//  Short English description of an error code; never NULL.
SLUICE_EXPORT const char *
    sluice_strerror (int err);

//  Log routine events too (a vanished peer, a resent request, an undeliverable reply): off by
//  default, also turned on by SLUICE_VERBOSE=1. Errors are always logged. Either way the log is
//  rate-limited and written by a thread of its own: logging never holds up an actor.
SLUICE_EXPORT void
    sluice_log_set_verbose (bool verbose);

//  Why the last sluice_*_new (or other call that says so) of this thread failed, in one
//  line ("cannot bind tcp://*:5555: Address already in use"); "" when it did not say.
//  Owned by the library, valid until the thread's next such call.
SLUICE_EXPORT const char *
    sluice_last_error_text (void);

#ifdef __cplusplus
}
#endif
#endif
