/*  sluice_log.c - log lines through a bounded, rate-limited queue and a writer thread. */
#include "sluice_log.h"
#include "sluice_error.h"
#include <czmq.h>
#include <pthread.h>
#include <stdarg.h>
#include <unistd.h>

typedef struct {
    sluice_log_level_t level;
    char text [256];
} s_line_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_ready = PTHREAD_COND_INITIALIZER;
static s_line_t s_queue [SLUICE_LOG_QUEUE];
static size_t s_head, s_count;            //  oldest line, lines queued
static pid_t s_writer_pid;                //  the process whose writer thread runs (0: none)
static double s_tokens = SLUICE_LOG_BURST;
static int64_t s_refilled;                //  zclock_mono of the last refill
static size_t s_suppressed;               //  lines dropped since the last report
static int s_verbose = -1;                //  -1: as SLUICE_VERBOSE says

void
sluice_log_set_verbose (bool verbose)
{
    __atomic_store_n (&s_verbose, verbose ? 1 : 0, __ATOMIC_RELAXED);
}

bool
sluice_verbose (void)
{
    int verbose = __atomic_load_n (&s_verbose, __ATOMIC_RELAXED);
    if (verbose >= 0)
        return verbose == 1;
    //  Read each time: cheap, and only on rare paths; tests may set it after start
    const char *value = getenv ("SLUICE_VERBOSE");
    return value && streq (value, "1");
}

static void *
s_writer (void *argument)
{
    pthread_mutex_lock (&s_lock);
    while (true) {
        while (s_count == 0)
            pthread_cond_wait (&s_ready, &s_lock);
        s_line_t line = s_queue [s_head];
        s_head = (s_head + 1) % SLUICE_LOG_QUEUE;
        s_count--;
        //  Written without the lock: a slow stderr holds up this thread only
        pthread_mutex_unlock (&s_lock);
        if (line.level == SLUICE_LOG_DEBUG)
            zsys_debug ("%s", line.text);
        else
            zsys_error ("%s", line.text);
        pthread_mutex_lock (&s_lock);
    }
    return NULL;
}

//  Queue one line (the lock held). False when there is no room or no token.
static bool
s_push (sluice_log_level_t level, const char *text)
{
    if (s_count == SLUICE_LOG_QUEUE || s_tokens < 1)
        return false;
    s_line_t *line = &s_queue [(s_head + s_count) % SLUICE_LOG_QUEUE];
    line->level = level;
    snprintf (line->text, sizeof line->text, "%s", text);
    s_count++;
    s_tokens -= 1;
    return true;
}

void
sluice_log (sluice_log_level_t level, const char *format, ...)
{
    char text [256];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof text, format, args);
    va_end (args);

    pthread_mutex_lock (&s_lock);
    //  A forked child has the queue but not the thread: start one of its own
    pid_t pid = getpid ();
    if (s_writer_pid != pid) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init (&attr);
        pthread_attr_setdetachstate (&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create (&thread, &attr, s_writer, NULL) == 0)
            s_writer_pid = pid;
        pthread_attr_destroy (&attr);
        s_head = s_count = 0;
    }
    int64_t now = zclock_mono ();
    s_tokens += (double) (now - s_refilled) * SLUICE_LOG_RATE / 1000.0;
    if (s_tokens > SLUICE_LOG_BURST)
        s_tokens = SLUICE_LOG_BURST;
    s_refilled = now;
    if (s_suppressed && s_tokens >= 2) {
        char report [96];
        snprintf (report, sizeof report, "sluice: %zu log line(s) suppressed (rate limit, or a "
                  "slow log)", s_suppressed);
        if (s_push (SLUICE_LOG_ERROR, report))
            s_suppressed = 0;
    }
    if (s_writer_pid == pid && s_push (level, text))
        pthread_cond_signal (&s_ready);
    else
        s_suppressed++;
    pthread_mutex_unlock (&s_lock);
}
