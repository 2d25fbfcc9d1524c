/*  sluice_log.h - the library's log lines, kept off the serving thread's critical path.

    An actor that logs from the thread that serves requests must never wait on the log: a
    stderr nobody drains would stall it (write(2) blocks on a full pipe), and a flood of events
    would fill every disk. So a line is formatted into a bounded queue that a thread of its own
    writes out (czmq's zsys log: stderr, syslog, or nothing), at most SLUICE_LOG_RATE lines a
    second after a burst of SLUICE_LOG_BURST; what does not fit is counted and reported as one
    "suppressed" line. Debug lines (routine events: a vanished peer, a resent request) are
    written only when verbose (sluice_log_set_verbose, or SLUICE_VERBOSE=1).
    Thread-safe. Internal.
*/
#ifndef SLUICE_LOG_H_INCLUDED
#define SLUICE_LOG_H_INCLUDED

#include <stdbool.h>

#define SLUICE_LOG_RATE   20        //  lines a second, sustained
#define SLUICE_LOG_BURST  100       //  lines at once
#define SLUICE_LOG_QUEUE  128       //  lines waiting to be written

typedef enum { SLUICE_LOG_DEBUG, SLUICE_LOG_ERROR } sluice_log_level_t;

void
    sluice_log (sluice_log_level_t level, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

bool
    sluice_verbose (void);

#define SLUICE_DEBUG(...) do { if (sluice_verbose ()) sluice_log (SLUICE_LOG_DEBUG, __VA_ARGS__); } while (0)
#define SLUICE_ERROR(...) sluice_log (SLUICE_LOG_ERROR, __VA_ARGS__)

#endif
