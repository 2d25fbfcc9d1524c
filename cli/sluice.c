/*  sluice - one command that runs any sluice actor as a process and talks to running ones.

        sluice COMMAND [options]        (sluice --help, sluice COMMAND --help)

    Errors go to stderr, with the sluice error name and the actor's own text; the exit codes
    are in cli.h and in `sluice --help`.
*/
#include "cli.h"
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>

typedef struct {
    const char *name;
    int (*run) (int argc, char **argv);
    const char *summary;
} s_command_t;

static const s_command_t s_commands [] = {
    { "buffer",       sluice_cli_buffer,       "run a buffer actor until SIGINT/SIGTERM" },
    { "model-server", sluice_cli_model_server, "run a model server until SIGINT/SIGTERM" },
    { "stage",        sluice_cli_stage,        "run a transform stage: one buffer into another" },
    { "write",        sluice_cli_write,        "write stdin into a buffer, line by line or in chunks" },
    { "read",         sluice_cli_read,         "read a buffer to stdout until end of stream" },
    { "close",        sluice_cli_close,        "close a buffer (or shut a model server down)" },
    { "status",       sluice_cli_status,       "print an actor's status (--json)" },
    { "wait-ready",   sluice_cli_wait_ready,   "wait until an actor answers and is ready" },
    { "request",      sluice_cli_request,      "send one request to a model server, print the reply" },
    { "run",          sluice_cli_run,          "run a pipeline file (see docs/PIPELINES.md)" },
    { "keygen",       sluice_cli_keygen,       "write a CURVE certificate pair (PATH, PATH_secret)" },
};
#define S_COMMAND_COUNT (sizeof s_commands / sizeof s_commands [0])

static void
s_usage (FILE *out)
{
    fprintf (out, "usage: sluice COMMAND [options]   (sluice COMMAND --help for its options)\n\n"
                  "commands:\n");
    for (size_t index = 0; index < S_COMMAND_COUNT; index++)
        fprintf (out, "  %-14s %s\n", s_commands [index].name, s_commands [index].summary);
    fprintf (out,
        "\n"
        "Endpoints are ZeroMQ addresses: tcp://host:port, ipc:///path, inproc://name (inproc only\n"
        "inside `sluice run`). Servers print \"listening on ENDPOINT\" as the first line on stdout.\n"
        "\n"
        "CURVE on tcp: servers (buffer, model-server, run) take --curve-cert FILE with\n"
        "--curve-allow DIR or --curve-encrypt-only; clients (write, read, close, status,\n"
        "wait-ready, request, stage) take --curve-server-key KEY|FILE and --curve-cert FILE.\n"
        "Certificates come from `sluice keygen`.\n"
        "\n"
        "exit codes:\n"
        "  0  success (read: end of stream reached; buffer, model-server: stopped by a signal\n"
        "     and drained)\n"
        "  1  runtime error (transport, protocol, refused request, internal error)\n"
        "  2  usage error (bad option or argument, invalid pipeline file)\n"
        "  3  timeout (--timeout passed, no reply from the actor in time, drain timeout)\n"
        "  4  closed: the buffer is closed (write refused), or the model server is shutting\n"
        "     down or its model failed to load\n"
        "  5  restarted: the buffer restarted under a write or read (what it held is gone)\n"
        "  6  unknown: write sent a chunk and never got its answer (the buffer went silent, or\n"
        "     the answer was lost with a connection): it may or may not have been enqueued\n");
}

// ---------------------------------------------------------------------------------------------
//  Errors and options

int
sluice_cli_exit_code (sluice_err_t err)
{
    switch (err) {
        case SLUICE_OK:          return SLUICE_EXIT_OK;
        case SLUICE_ETIMEOUT:    return SLUICE_EXIT_TIMEOUT;
        case SLUICE_ECLOSED:
        case SLUICE_ESHUTDOWN:
        case SLUICE_ELOADFAIL:   return SLUICE_EXIT_CLOSED;
        case SLUICE_EINVAL:      return SLUICE_EXIT_USAGE;
        case SLUICE_ERESTARTED:  return SLUICE_EXIT_RESTARTED;
        case SLUICE_EUNKNOWN:    return SLUICE_EXIT_UNKNOWN;
        default:                 return SLUICE_EXIT_ERROR;
    }
}

int
sluice_cli_fail (const char *command, sluice_err_t err, const char *text, const char *format, ...)
{
    fprintf (stderr, "sluice %s: ", command);
    va_list args;
    va_start (args, format);
    vfprintf (stderr, format, args);
    va_end (args);
    fprintf (stderr, ": %s", sluice_strerror (err));
    if (text && *text)
        fprintf (stderr, " (%s)", text);
    fprintf (stderr, "\n");
    return sluice_cli_exit_code (err);
}

int
sluice_cli_usage_error (const char *command, const char *format, ...)
{
    fprintf (stderr, "sluice %s: ", command);
    va_list args;
    va_start (args, format);
    vfprintf (stderr, format, args);
    va_end (args);
    fprintf (stderr, "\nTry 'sluice %s --help'.\n", command);
    return SLUICE_EXIT_USAGE;
}

bool
sluice_cli_parse_long (const char *text, long min, long max, long *value)
{
    if (!text || !*text)
        return false;
    char *end = NULL;
    errno = 0;
    long parsed = strtol (text, &end, 10);
    if (errno || *end || parsed < min || parsed > max)
        return false;
    *value = parsed;
    return true;
}

bool
sluice_cli_option_int (const char *command, const char *option, const char *text,
                       long min, long max, long *value)
{
    if (sluice_cli_parse_long (text, min, max, value))
        return true;
    sluice_cli_usage_error (command, "--%s: expected an integer in %ld..%ld, got '%s'",
                            option, min, max, text ? text : "");
    return false;
}

int
sluice_cli_bad_option (const char *command, int argc, char **argv)
{
    //  getopt_long has printed what was wrong; add the hint
    fprintf (stderr, "Try 'sluice %s --help'.\n", command);
    return SLUICE_EXIT_USAGE;
}

// ---------------------------------------------------------------------------------------------
//  Signals

static void
s_raise_fd_limit (void)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        if (setrlimit (RLIMIT_NOFILE, &limit) != 0)
            zsys_warning ("sluice: cannot raise the open-file limit: %s", strerror (errno));
    }
}

int
sluice_cli_server_init (void)
{
    s_raise_fd_limit ();
    //  czmq closes sockets with linger 0 by default, which can drop the very last replies
    zsys_set_linger (SLUICE_CLI_LINGER);

    sigset_t set;
    sigemptyset (&set);
    sigaddset (&set, SIGINT);
    sigaddset (&set, SIGTERM);
    //  Threads inherit the mask: no thread of ours, czmq's or libzmq's ever runs a handler,
    //  and the signals wait in the signalfd until the main loop takes them.
    if (pthread_sigmask (SIG_BLOCK, &set, NULL) != 0)
        return -1;
    return signalfd (-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

//  Milliseconds until the deadline, for zmq_poll: -1 for none (INT64_MAX).
static long
s_timeout (int64_t deadline)
{
    if (deadline == INT64_MAX)
        return -1;
    int64_t wait = deadline - zclock_mono ();
    return wait > 0 ? (long) wait : 0;
}

//  Wait for a signal (returns its number), input on `socket` (returns 0), or the deadline
//  (zclock_mono ms, INT64_MAX: none; returns -1). socket may be NULL, a czmq handle (zsock_t,
//  zactor_t) or a raw libzmq socket.
int
sluice_cli_wait (int signals, void *handle, int64_t deadline)
{
    void *socket = handle ? zsock_resolve (handle) : NULL;
    while (true) {
        zmq_pollitem_t items [2] = {
            { NULL, signals, ZMQ_POLLIN, 0 },
            { socket, 0, ZMQ_POLLIN, 0 },
        };
        int rc = zmq_poll (items, socket ? 2 : 1, s_timeout (deadline));
        if (rc == -1 && zmq_errno () == EINTR)
            continue;
        if (rc <= 0)
            return -1;
        if (items [0].revents & ZMQ_POLLIN) {
            int signal = sluice_cli_signal_take (signals);
            if (signal)
                return signal;
        }
        if (socket && (items [1].revents & ZMQ_POLLIN))
            return 0;
    }
}

int
sluice_cli_signal_take (int fd)
{
    struct signalfd_siginfo info;
    ssize_t got = read (fd, &info, sizeof info);
    return got == (ssize_t) sizeof info ? (int) info.ssi_signo : 0;
}

// ---------------------------------------------------------------------------------------------

int
main (int argc, char *argv [])
{
    //  czmq would turn SIGINT/SIGTERM into a flag that blocking calls may not see in time:
    //  client commands keep the default action (they just end), servers take the signals
    //  through a signalfd (sluice_cli_server_init).
    zsys_handler_set (NULL);
    //  czmq logs to stdout by default, where it would mix with data (read) and with the
    //  "listening on" line; the library's reasons for refusing (e.g. CURVE settings) go there
    zsys_set_logstream (stderr);
    if (argc < 2) {
        s_usage (stderr);
        return SLUICE_EXIT_USAGE;
    }
    const char *name = argv [1];
    if (streq (name, "--help") || streq (name, "-h") || streq (name, "help")) {
        s_usage (stdout);
        return SLUICE_EXIT_OK;
    }
    if (streq (name, "--version")) {
        printf ("sluice %d.%d.%d\n", SLUICE_VERSION_MAJOR, SLUICE_VERSION_MINOR,
                SLUICE_VERSION_PATCH);
        return SLUICE_EXIT_OK;
    }
    for (size_t index = 0; index < S_COMMAND_COUNT; index++)
        if (streq (name, s_commands [index].name)) {
            //  getopt_long names argv [0] in its messages: make it "sluice COMMAND"
            char program [64];
            snprintf (program, sizeof program, "sluice %s", name);
            argv [1] = program;
            return s_commands [index].run (argc - 1, argv + 1);
        }
    fprintf (stderr, "sluice: unknown command '%s'\n", name);
    s_usage (stderr);
    return SLUICE_EXIT_USAGE;
}
