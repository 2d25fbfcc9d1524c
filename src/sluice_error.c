/*  sluice_error.c - error descriptions. */
#include "sluice_codec.h"
#include <stdarg.h>
#include <stdio.h>

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
    [SLUICE_ERESTARTED] = "the actor restarted: what it held before is gone",
    [SLUICE_EUNKNOWN]   = "outcome unknown: the write was sent but no reply came",
};

const char *
sluice_strerror (int err)
{
    if (err >= 0 && err < SLUICE_ERR_COUNT_ && s_messages [err])
        return s_messages [err];
    return "unknown error";
}

static __thread char s_last_error [512];

void
sluice_set_last_error (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (s_last_error, sizeof s_last_error, format, args);
    va_end (args);
}

const char *
sluice_last_error_text (void)
{
    return s_last_error;
}
