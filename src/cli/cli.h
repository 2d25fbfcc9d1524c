/*  cli.h - shared by the files of the sluice command (src/cli/); not installed.

    sluice.c       main: the subcommand table, --help, exit codes, helpers below
    cli_input.c    stdin (or any fd) split into lines or fixed-size chunks
    cli_servers.c  buffer, model-server, stage: actors run as a process until a signal
    cli_clients.c  write, read, close, status, wait-ready, request
    cli_run.c      run: a pipeline file
*/
#ifndef SLUICE_CLI_H_INCLUDED
#define SLUICE_CLI_H_INCLUDED

#include "sluice_internal.h"
#include <getopt.h>
#include <stdarg.h>

//  Exit codes: part of the command's interface (sluice --help, README "Command line")
#define SLUICE_EXIT_OK       0   //  success; read: end of stream reached
#define SLUICE_EXIT_ERROR    1   //  runtime error: transport, protocol, refused, internal
#define SLUICE_EXIT_USAGE    2   //  bad option, argument or pipeline file
#define SLUICE_EXIT_TIMEOUT  3   //  a timeout passed (--timeout, no reply in time, drain)
#define SLUICE_EXIT_CLOSED   4   //  the buffer is closed (write refused), or the model server
                                 //  is shutting down or failed to load

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

//  Take one pending signal from the signalfd: its number, or 0 when none is pending.
int
    sluice_cli_signal_take (int fd);

// ---------------------------------------------------------------------------------------------
//  Input split into chunks (cli_input.c)

typedef struct {
    int fd;
    size_t chunk_bytes;         //  0: lines (newline removed); else chunks of this many bytes
    char *data;
    size_t start;               //  first byte not handed out yet
    size_t size;                //  bytes held (handed out or not)
    size_t capacity;
    bool eof;
} sluice_cli_input_t;

void
    sluice_cli_input_init (sluice_cli_input_t *input, int fd, size_t chunk_bytes);
void
    sluice_cli_input_fini (sluice_cli_input_t *input);

//  The next chunk: 1 with (*data, *size) valid until the next call (not NUL-terminated), 0 at
//  end of input, -1 on a read error (errno set), -2 when `interrupt` (a socket, or NULL) became
//  readable first. A last line without a newline is still a chunk.
int
    sluice_cli_input_next (sluice_cli_input_t *input, void *interrupt,
                           const char **data, size_t *size);

// ---------------------------------------------------------------------------------------------
//  Transforms by name, shared by `sluice stage` and `sluice run`

typedef struct {
    const char *name;
    sluice_stage_fn *fn;
    bool takes_words;           //  user is a NULL-terminated list of words
    const char *help;
} sluice_cli_transform_t;

//  NULL when unknown.
const sluice_cli_transform_t *
    sluice_cli_transform_find (const char *name);

//  "upper, lower, mask, identity"
const char *
    sluice_cli_transform_names (void);

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

#endif
