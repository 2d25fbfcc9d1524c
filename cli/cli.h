/*  cli.h - shared by the files of the sluice command (cli/); not installed.

    sluice.c       main: the subcommand table, --help, exit codes, helpers below
    cli_servers.c  buffer, model-server, stage: actors run as a process until a signal
    cli_clients.c  write, read, close, status, wait-ready, request
    cli_run.c      run: a pipeline file
    cli_curve.c    keygen, and the CURVE settings every server and client command takes
*/
#ifndef SLUICE_CLI_H_INCLUDED
#define SLUICE_CLI_H_INCLUDED

#include <sluice.h>
#include <czmq.h>
#include <getopt.h>
#include <stdarg.h>

//  Exit codes: part of the command's interface (sluice --help, README "Command line")
#define SLUICE_EXIT_OK       0   //  success; read: end of stream reached
#define SLUICE_EXIT_ERROR    1   //  runtime error: transport, protocol, refused, internal
#define SLUICE_EXIT_USAGE    2   //  bad option, argument or pipeline file
#define SLUICE_EXIT_TIMEOUT  3   //  a timeout passed (--timeout, no reply in time, drain)
#define SLUICE_EXIT_CLOSED   4   //  the buffer is closed (write refused), or the model server
                                 //  is shutting down or failed to load
#define SLUICE_EXIT_RESTARTED 5  //  the buffer restarted under a stream: what it held is gone
#define SLUICE_EXIT_UNKNOWN  6   //  write: a chunk's outcome is unknown (sent, never answered)

//  Default bound for calls the actor answers at once (close, status), in ms.
#define SLUICE_CLI_DEFAULT_TIMEOUT  5000
//  Default bound for draining at shutdown (buffer, model-server, run), in ms.
#define SLUICE_CLI_DEFAULT_DRAIN    10000

// ---------------------------------------------------------------------------------------------
//  Errors and options (sluice.c)

//  The exit code for a sluice error.
int
    sluice_cli_exit_code (sluice_err_t err);

//  Print "sluice COMMAND: <message>: <strerror> (<text>)" on stderr; returns the exit code.
int
    sluice_cli_fail (const char *command, sluice_err_t err, const char *text,
                     const char *format, ...) __attribute__ ((format (printf, 4, 5)));

//  Print "sluice COMMAND: <message>" and the --help hint on stderr; returns SLUICE_EXIT_USAGE.
int
    sluice_cli_usage_error (const char *command, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Parse a decimal integer in [min, max]; false when text is not one.
bool
    sluice_cli_parse_long (const char *text, long min, long max, long *value);

//  Parse an option's integer value, or print a usage error naming the option.
//  Returns true on success.
bool
    sluice_cli_option_int (const char *command, const char *option, const char *text,
                           long min, long max, long *value);

//  The getopt_long loop's handling of '?' and ':' (unknown option, missing argument).
int
    sluice_cli_bad_option (const char *command, int argc, char **argv);

// ---------------------------------------------------------------------------------------------
//  Signals, for the commands that run until stopped

//  How long sockets of a server process may take to deliver their last messages (the
//  end-of-stream sentinel to the last readers) when it exits, in ms.
#define SLUICE_CLI_LINGER  1000

//  For the commands that run until stopped: block SIGINT and SIGTERM in this thread, and so in
//  every thread started after it, and return a signalfd that receives them (-1 on failure);
//  raise the open-file limit to its hard maximum (every tcp peer of an actor costs a file
//  descriptor); let sockets linger SLUICE_CLI_LINGER. Call before any thread is started.
int
    sluice_cli_server_init (void);

//  Wait for a signal (returns its number), input on `handle` (returns 0), or the deadline
//  (zclock_mono ms, INT64_MAX: none; returns -1). handle may be NULL, a czmq handle (zsock_t,
//  zactor_t) or a raw libzmq socket.
int
    sluice_cli_wait (int signals, void *handle, int64_t deadline);

//  Take one pending signal from the signalfd: its number, or 0 when none is pending.
int
    sluice_cli_signal_take (int fd);

// ---------------------------------------------------------------------------------------------
//  CURVE (cli_curve.c, sluice_curve.h)

//  getopt_long values of the CURVE options (beyond any short option)
enum {
    SLUICE_CLI_OPT_CURVE_CERT = 0x100,
    SLUICE_CLI_OPT_CURVE_ALLOW,
    SLUICE_CLI_OPT_CURVE_ENCRYPT_ONLY,
    SLUICE_CLI_OPT_CURVE_SERVER_KEY,
};

//  Entries of a struct option table
#define SLUICE_CLI_CURVE_SERVER_OPTIONS \
    { "curve-cert",         required_argument, NULL, SLUICE_CLI_OPT_CURVE_CERT }, \
    { "curve-allow",        required_argument, NULL, SLUICE_CLI_OPT_CURVE_ALLOW }, \
    { "curve-encrypt-only", no_argument,       NULL, SLUICE_CLI_OPT_CURVE_ENCRYPT_ONLY },
#define SLUICE_CLI_CURVE_CLIENT_OPTIONS \
    { "curve-cert",         required_argument, NULL, SLUICE_CLI_OPT_CURVE_CERT }, \
    { "curve-server-key",   required_argument, NULL, SLUICE_CLI_OPT_CURVE_SERVER_KEY },

//  --help lines for them
#define SLUICE_CLI_CURVE_SERVER_HELP \
    "CURVE (encryption and client authentication on tcp; certificates: sluice keygen):\n" \
    "      --curve-cert FILE   this server's certificate, the *_secret file\n" \
    "      --curve-allow DIR   accept only clients whose public certificates are in DIR\n" \
    "      --curve-encrypt-only  accept any client key (encryption, no authentication);\n" \
    "                          --curve-cert needs one of --curve-allow and this\n"
#define SLUICE_CLI_CURVE_CLIENT_HELP \
    "CURVE (for a server started with --curve-cert; certificates: sluice keygen):\n" \
    "      --curve-server-key KEY|FILE  the server's public key (40 Z85 characters) or its\n" \
    "                          public certificate file\n" \
    "      --curve-cert FILE   this client's certificate, the *_secret file: its public\n" \
    "                          half must be in the server's --curve-allow directory.\n" \
    "                          Without it a throw-away key is used (enough for a server\n" \
    "                          with --curve-encrypt-only)\n"

//  One command's CURVE settings: as given (paths and keys borrowed from argv or a file), then
//  checked and resolved into `curve`, which is what the library gets.
typedef struct {
    const char *cert;
    const char *allow;
    bool encrypt_only;
    const char *server_key;
    sluice_curve_checked_t checked;
} sluice_cli_curve_t;

//  Take a CURVE option in the getopt_long loop: true when `option` was one.
bool
    sluice_cli_curve_option (sluice_cli_curve_t *self, int option, const char *arg);

//  Check and resolve server settings. `dashes` is how the settings are named in messages:
//  "--" for options, "" for pipeline-file keys. Returns false with `why` filled.
bool
    sluice_cli_curve_server_check (sluice_cli_curve_t *self, const char *dashes,
                                   char *why, size_t why_size);

//  Same for a client. A server key may be a file or a key; a certificate needs a server key.
bool
    sluice_cli_curve_client_check (sluice_cli_curve_t *self, const char *dashes,
                                   char *why, size_t why_size);

//  The settings for the library: NULL when CURVE is not asked for (plaintext).
const sluice_curve_t *
    sluice_cli_curve_get (sluice_cli_curve_t *self);

//  The same checks for a command's options: print a usage error and return SLUICE_EXIT_USAGE,
//  or SLUICE_EXIT_OK.
int
    sluice_cli_curve_server (const char *command, sluice_cli_curve_t *self);
int
    sluice_cli_curve_client (const char *command, sluice_cli_curve_t *self);

//  A refused CURVE client gets no answer at all: after a call of a client that used CURVE got
//  none (err, before any classification as a timeout: SLUICE_ETRANSPORT), say what to check.
void
    sluice_cli_curve_hint (const char *command, const sluice_curve_t *curve, sluice_err_t err);

// ---------------------------------------------------------------------------------------------
//  Subcommands: argv [0] is the subcommand's name; each returns an exit code

int sluice_cli_buffer (int argc, char **argv);
int sluice_cli_model_server (int argc, char **argv);
int sluice_cli_stage (int argc, char **argv);
int sluice_cli_write (int argc, char **argv);
int sluice_cli_read (int argc, char **argv);
int sluice_cli_close (int argc, char **argv);
int sluice_cli_status (int argc, char **argv);
int sluice_cli_wait_ready (int argc, char **argv);
int sluice_cli_request (int argc, char **argv);
int sluice_cli_run (int argc, char **argv);
int sluice_cli_keygen (int argc, char **argv);

#endif
