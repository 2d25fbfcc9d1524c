/*  sluice_error.c - error descriptions. */
#include "sluice_error.h"

static const char *s_messages[SLUICE_ERR_COUNT_] = {
    [SLUICE_OK]         = "success",
    [SLUICE_ECLOSED]    = "buffer is closed",
    [SLUICE_ETIMEOUT]   = "timed out",
    [SLUICE_EPROTO]     = "malformed message",
    [SLUICE_EVERSION]   = "unsupported protocol version",
    [SLUICE_ECOMMAND]   = "unknown command",
    [SLUICE_ETOOBIG]    = "chunk too large",
    [SLUICE_EBUSY]      = "too many pending requests",
    [SLUICE_ESHUTDOWN]  = "Server is shutting down",
    [SLUICE_ELOADFAIL]  = "model failed to load",
    [SLUICE_EINVAL]     = "invalid argument",
    [SLUICE_ETRANSPORT] = "transport error or no reply from peer",
    [SLUICE_EINTR]      = "interrupted",
    [SLUICE_ENOMEM]     = "out of memory",
    [SLUICE_EINTERNAL]  = "internal error",
};

const char *
sluice_strerror (int err)
{
    if (err >= 0 && err < SLUICE_ERR_COUNT_ && s_messages [err])
        return s_messages [err];
    return "unknown error";
}
