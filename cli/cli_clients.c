/*  cli_clients.c - the commands that talk to a running actor: write, read, close, status,
    wait-ready, request.

    They keep the default action of SIGINT/SIGTERM (the process ends): a client holds nothing
    the actor needs back (chunks a reader received but had not acknowledged are requeued by
    the buffer once it notices the reader is gone).
    write and read use the stream client; close and status speak the protocol directly
    (sluice_conn_t) because they work on either actor and print the status text as it is.
*/
#include "cli.h"

//  A call answered SLUICE_ETRANSPORT once its deadline had passed: the actor did not answer
//  in time (not there, or gone), which the user knows as a timeout.
static sluice_err_t
s_classify (sluice_err_t rc, int64_t started, int timeout_ms)
{
    if (rc == SLUICE_ETRANSPORT && timeout_ms >= 0 && zclock_mono () - started >= timeout_ms)
        return SLUICE_ETIMEOUT;
    return rc;
}

// ---------------------------------------------------------------------------------------------
//  Options, set-up and errors, shared by the commands

typedef struct s_client_s s_client_t;

//  Takes one of a command's own options: SLUICE_EXIT_OK, SLUICE_EXIT_USAGE once the usage error
//  is printed, or S_NOT_AN_OPTION when the command has no such option.
typedef int (s_option_fn) (s_client_t *self, int option, const char *arg);
#define S_NOT_AN_OPTION  (-2)

//  A client command: what it is, then what it was given. Every one takes --connect, --timeout,
//  --help and the CURVE client options; its own others go to `option`.
struct s_client_s {
    const char *command;
    void (*usage) (FILE *out);
    long timeout_min;              //  the least --timeout it takes
    s_option_fn *option;           //  its own options (NULL: none)
    void *own;                     //  what they set
    const char *endpoint;          //  --connect ENDPOINT
    long timeout;                  //  --timeout MS; the command's default until given
    sluice_cli_curve_t curve;
    int64_t started;               //  when s_conn_client began to connect (wait-ready's
                                   //  --timeout counts from there)
};

//  An integer option of the command: SLUICE_EXIT_OK, or SLUICE_EXIT_USAGE after the error.
static int
s_int_option (s_client_t *self, const char *option, const char *arg, long min, long max,
              long *value)
{
    if (sluice_cli_option_int (self->command, option, arg, min, max, value))
        return SLUICE_EXIT_OK;
    return SLUICE_EXIT_USAGE;
}

//  The getopt_long loop of a client command over its own table (short_options and options,
//  with 'c', 't', 'h' and the CURVE options among them). Returns SLUICE_EXIT_OK, -1 once --help
//  has been printed, or the exit code of a usage error (printed). The arguments after the
//  options start at argv [optind].
static int
s_client_parse (s_client_t *self, int argc, char **argv, const char *short_options,
                const struct option *options)
{
    int option;
    while ((option = getopt_long (argc, argv, short_options, options, NULL)) != -1) {
        int rc = SLUICE_EXIT_OK;
        switch (option) {
            case 'c': self->endpoint = optarg; break;
            case 't':
                rc = s_int_option (self, "timeout", optarg, self->timeout_min, INT32_MAX,
                                   &self->timeout);
                break;
            case 'h': self->usage (stdout); return -1;
            default:
                if (sluice_cli_curve_option (&self->curve, option, optarg))
                    break;
                rc = self->option ? self->option (self, option, optarg) : S_NOT_AN_OPTION;
                if (rc == S_NOT_AN_OPTION)
                    return sluice_cli_bad_option (self->command, argc, argv);
        }
        if (rc != SLUICE_EXIT_OK)
            return rc;
    }
    return SLUICE_EXIT_OK;
}

//  After the options: --connect is required and the CURVE settings must hold together. Prints
//  a usage error; returns SLUICE_EXIT_USAGE, or SLUICE_EXIT_OK.
static int
s_client_check (s_client_t *self)
{
    if (!self->endpoint)
        return sluice_cli_usage_error (self->command, "--connect ENDPOINT is required");
    return sluice_cli_curve_client (self->command, &self->curve);
}

//  s_client_parse, no argument after the options (args_hint: said after an unexpected one),
//  then s_client_check. Returns what they return.
static int
s_client_options (s_client_t *self, int argc, char **argv, const char *short_options,
                  const struct option *options, const char *args_hint)
{
    int rc = s_client_parse (self, argc, argv, short_options, options);
    if (rc != SLUICE_EXIT_OK)
        return rc;
    if (optind < argc)
        return sluice_cli_usage_error (self->command, "unexpected argument '%s'%s", argv [optind],
                                       args_hint);
    return s_client_check (self);
}

//  The client library refused the endpoint. Returns SLUICE_EXIT_USAGE.
static int
s_invalid_endpoint (s_client_t *self)
{
    //  The library's reason names the real cause (unresolvable host, inproc from outside)
    return sluice_cli_usage_error (self->command, "%s", sluice_last_error_text ());
}

//  The options of write or read (s_client_options), then its stream client. NULL when the
//  command is done: after --help, or a usage error; *exit_code says which (SLUICE_EXIT_OK
//  with a stream).
static sluice_stream_t *
s_stream_client (s_client_t *self, int argc, char **argv, const char *short_options,
                 const struct option *options, const char *args_hint, int *exit_code)
{
    int rc = s_client_options (self, argc, argv, short_options, options, args_hint);
    *exit_code = rc < 0 ? SLUICE_EXIT_OK : rc;
    if (rc != SLUICE_EXIT_OK)
        return NULL;
    sluice_stream_t *stream = sluice_stream_new_secure (self->endpoint,
                                                        sluice_cli_curve_get (&self->curve));
    if (!stream)
        *exit_code = s_invalid_endpoint (self);
    return stream;
}

//  The model server client of wait-ready and request; NULL when the endpoint is invalid.
static sluice_model_client_t *
s_model_client_new (s_client_t *self)
{
    return sluice_model_client_new_secure (self->endpoint, sluice_cli_curve_get (&self->curve));
}

//  A call to the actor failed: "sluice COMMAND: ENDPOINT: <error> (<text>)", then what to
//  check when a CURVE client got no answer (raw: the error as the call returned it, before
//  s_classify). Returns the exit code.
static int
s_call_failed (s_client_t *self, sluice_err_t err, const char *text, sluice_err_t raw)
{
    int exit_code = sluice_cli_fail (self->command, err, text, "%s", self->endpoint);
    sluice_cli_curve_hint (self->command, sluice_cli_curve_get (&self->curve), raw);
    return exit_code;
}

//  Reading stdin or writing stdout failed (errno): say so. Returns SLUICE_EXIT_ERROR.
static int
s_io_failed (const char *command, const char *what)
{
    fprintf (stderr, "sluice %s: %s: %s\n", command, what, strerror (errno));
    return SLUICE_EXIT_ERROR;
}

// ---------------------------------------------------------------------------------------------
//  write

//  A write failed: say how (err as s_classify judged it, raw as the call returned it). One
//  whose outcome is unknown (it was sent, its answer never came) must not read as "failed":
//  the buffer may have enqueued it. Returns the exit code.
static int
s_write_failed (s_client_t *client, sluice_stream_t *stream, sluice_err_t err, sluice_err_t raw,
                const char *what)
{
    if (err == SLUICE_EUNKNOWN) {
        fprintf (stderr, "sluice write: %s: %s: outcome unknown (%s): it may or may not have "
                 "been enqueued\n", client->endpoint, what, sluice_stream_error_text (stream));
        return SLUICE_EXIT_UNKNOWN;
    }
    int exit_code = sluice_cli_fail ("write", err, sluice_stream_error_text (stream), "%s: %s",
                                     client->endpoint, what);
    sluice_cli_curve_hint ("write", sluice_cli_curve_get (&client->curve), raw);
    return exit_code;
}

//  --retry-for MS of write and read
#define S_RETRY_HELP \
        "      --retry-for MS      ride out an outage: when the buffer stops answering (gone,\n" \
        "                          hung, partitioned away), keep trying for up to MS more,\n" \
        "                          backing off, while ZeroMQ reconnects (default 0: give up\n" \
        "                          once it misses its liveness ping, about 7 s). A buffer\n" \
        "                          that comes back restarted still ends the command (exit 5)\n"

static void
s_write_usage (FILE *out)
{
    fprintf (out,
        "usage: sluice write --connect ENDPOINT [options] < input\n"
        "Write stdin into the buffer at ENDPOINT: one chunk per line (the newline removed; a\n"
        "last line without one is a chunk too), or raw chunks of N bytes with --chunk-bytes.\n"
        "A write blocks while the buffer is full, and stdin is not read meanwhile: backpressure\n"
        "reaches the process writing into the pipe.\n"
        "  -c, --connect ENDPOINT  the buffer, e.g. tcp://host:5555 (required)\n"
        "  -b, --chunk-bytes N     binary input: chunks of N bytes (the last may be shorter)\n"
        "      --close             close the buffer at the end of input (readers then get end\n"
        "                          of stream once they have drained it)\n"
        "      --final             at the end of input write an empty final chunk: readers\n"
        "                          stop there while the buffer stays open\n"
        "  -t, --timeout MS        give up when one write is held back longer than MS (exit 3;\n"
        "                          that chunk was not written). Default: wait as long as it takes\n"
        "  -w, --window N          writes in flight before waiting for an acknowledgement\n"
        "                          (default 1; more is faster over a network)\n"
        "  -B, --batch N           with a window: up to N chunks per write request while\n"
        "                          writes are in flight (default 64, at most the capacity;\n"
        "                          what stdin has given is sent before waiting for more)\n"
        S_RETRY_HELP
        "  -h, --help\n"
        SLUICE_CLI_CURVE_CLIENT_HELP
        "A chunk sent whose answer never came (the buffer went silent, or the answer was lost\n"
        "with a connection) is reported as \"outcome unknown\": it may or may not have been\n"
        "enqueued, and it is not sent again (that could duplicate it).\n"
        "Exit: 0 all input written, 1 error, 2 usage, 3 timeout, 4 the buffer is closed,\n"
        "5 the buffer restarted (what it held is gone), 6 a chunk's outcome is unknown.\n");
}

//  write's own options
typedef struct {
    long chunk_bytes, window, batch, retry_for;
    bool close_at_end, final;
} s_write_t;

static int
s_write_option (s_client_t *client, int option, const char *arg)
{
    s_write_t *self = (s_write_t *) client->own;
    switch (option) {
        case 'b':
            return s_int_option (client, "chunk-bytes", arg, 1, INT32_MAX, &self->chunk_bytes);
        case 'C': self->close_at_end = true; return SLUICE_EXIT_OK;
        case 'F': self->final = true; return SLUICE_EXIT_OK;
        case 'w': return s_int_option (client, "window", arg, 1, 100000, &self->window);
        case 'B': return s_int_option (client, "batch", arg, 1, SLUICE_MAX_BATCH, &self->batch);
        case 'R': return s_int_option (client, "retry-for", arg, 0, INT32_MAX, &self->retry_for);
        default:  return S_NOT_AN_OPTION;
    }
}

int
sluice_cli_write (int argc, char **argv)
{
    static const struct option options [] = {
        { "connect",     required_argument, NULL, 'c' },
        { "chunk-bytes", required_argument, NULL, 'b' },
        { "close",       no_argument,       NULL, 'C' },
        { "final",       no_argument,       NULL, 'F' },
        { "timeout",     required_argument, NULL, 't' },
        { "window",      required_argument, NULL, 'w' },
        { "batch",       required_argument, NULL, 'B' },
        { "retry-for",   required_argument, NULL, 'R' },
        { "help",        no_argument,       NULL, 'h' },
        SLUICE_CLI_CURVE_CLIENT_OPTIONS
        { NULL, 0, NULL, 0 }
    };
    s_write_t own = { .chunk_bytes = 0, .window = 1, .batch = 64 };
    s_client_t client = { .command = "write", .usage = s_write_usage, .option = s_write_option,
                          .own = &own, .timeout = SLUICE_FOREVER };
    int exit_code;
    sluice_stream_t *stream = s_stream_client (&client, argc, argv, "c:b:t:w:B:h", options,
                                               " (input is stdin)", &exit_code);
    if (!stream)
        return exit_code;
    const char *endpoint = client.endpoint;
    int timeout = (int) client.timeout;
    sluice_stream_set_window (stream, (size_t) own.window);
    sluice_stream_set_retry (stream, (int) own.retry_for);
    bool batched = own.window > 1 && own.batch > 1;
    if (batched) {
        //  A batch must fit in the buffer (it is admitted whole): ask its capacity
        sluice_buffer_status_t status;
        sluice_err_t err = sluice_stream_status (stream, &status);
        if (err != SLUICE_OK)
            exit_code = sluice_cli_fail ("write", err, sluice_stream_error_text (stream),
                                         "%s: status", endpoint);
        else
        if (status.capacity < (uint64_t) own.batch)
            own.batch = (long) status.capacity;
        sluice_stream_set_write_batch (stream, (size_t) own.batch);
    }

    sluice_input_t *input = sluice_input_new (STDIN_FILENO, (size_t) own.chunk_bytes);
    if (!input)
        exit_code = sluice_cli_fail ("write", SLUICE_ENOMEM, NULL, "reading stdin");
    size_t index = 0;
    while (exit_code == SLUICE_EXIT_OK) {
        const char *data;
        size_t size;
        if (batched && !sluice_input_ready (input)) {
            //  What stdin gave so far goes out before waiting for more: a slow producer's
            //  chunks are never held back
            sluice_err_t err = sluice_stream_flush (stream);
            if (err != SLUICE_OK) {
                exit_code = s_write_failed (&client, stream, err, err, "a write in flight");
                break;
            }
        }
        sluice_input_result_t rc = sluice_input_next (input, NULL, &data, &size);
        if (rc == SLUICE_INPUT_END)
            break;
        if (rc != SLUICE_INPUT_CHUNK) {
            exit_code = s_io_failed ("write", "reading stdin");
            break;
        }
        int64_t started = zclock_mono ();
        sluice_err_t err = sluice_stream_write_timeout (stream, data, size, false, timeout);
        if (err != SLUICE_OK) {
            char what [64];
            snprintf (what, sizeof what, "chunk %zu", index + 1);
            exit_code = s_write_failed (&client, stream, s_classify (err, started, timeout), err,
                                        what);
        }
        index++;
    }
    if (exit_code == SLUICE_EXIT_OK && own.final) {
        int64_t started = zclock_mono ();
        sluice_err_t err = sluice_stream_write_timeout (stream, "", 0, true, timeout);
        if (err != SLUICE_OK)
            exit_code = s_write_failed (&client, stream, s_classify (err, started, timeout), err,
                                        "final chunk");
    }
    if (exit_code == SLUICE_EXIT_OK) {
        //  Writes in flight are only written once acknowledged
        sluice_err_t err = sluice_stream_flush (stream);
        if (err != SLUICE_OK)
            exit_code = s_write_failed (&client, stream, err, err, "a write in flight");
    }
    if (exit_code == SLUICE_EXIT_OK && own.close_at_end) {
        sluice_err_t err = sluice_stream_close (stream);
        if (err != SLUICE_OK)
            exit_code = sluice_cli_fail ("write", err, sluice_stream_error_text (stream),
                                         "%s: close", endpoint);
    }
    sluice_input_destroy (&input);
    sluice_stream_destroy (&stream);
    return exit_code;
}

// ---------------------------------------------------------------------------------------------
//  read

static void
s_read_usage (FILE *out)
{
    fprintf (out,
        "usage: sluice read --connect ENDPOINT [options] > output\n"
        "Read the buffer at ENDPOINT to stdout until the end of the stream: the buffer closed\n"
        "and drained, or a chunk marked final (printed first unless empty). Each chunk is\n"
        "followed by a newline, so `sluice write` then `sluice read` gives back newline-\n"
        "terminated text byte for byte; --raw writes chunks back to back (the inverse of\n"
        "`sluice write --chunk-bytes`).\n"
        "  -c, --connect ENDPOINT  the buffer, e.g. tcp://host:5555 (required)\n"
        "  -r, --raw               no newline after each chunk\n"
        "  -t, --timeout MS        give up when no chunk arrives for MS (exit 3)\n"
        "  -b, --batch N           take up to N queued chunks per request (default 1)\n"
        S_RETRY_HELP
        "                          (a read is safe to send again: nothing is skipped)\n"
        "  -h, --help\n"
        SLUICE_CLI_CURVE_CLIENT_HELP
        "Exit: 0 end of stream, 1 error, 2 usage, 3 timeout, 5 the buffer restarted.\n");
}

//  read's own options
typedef struct {
    long batch, retry_for;
    bool raw;
} s_read_t;

static int
s_read_option (s_client_t *client, int option, const char *arg)
{
    s_read_t *self = (s_read_t *) client->own;
    switch (option) {
        case 'r': self->raw = true; return SLUICE_EXIT_OK;
        case 'b': return s_int_option (client, "batch", arg, 1, SLUICE_MAX_BATCH, &self->batch);
        case 'R': return s_int_option (client, "retry-for", arg, 0, INT32_MAX, &self->retry_for);
        default:  return S_NOT_AN_OPTION;
    }
}

int
sluice_cli_read (int argc, char **argv)
{
    static const struct option options [] = {
        { "connect", required_argument, NULL, 'c' },
        { "raw",     no_argument,       NULL, 'r' },
        { "timeout", required_argument, NULL, 't' },
        { "batch",   required_argument, NULL, 'b' },
        { "retry-for", required_argument, NULL, 'R' },
        { "help",    no_argument,       NULL, 'h' },
        SLUICE_CLI_CURVE_CLIENT_OPTIONS
        { NULL, 0, NULL, 0 }
    };
    s_read_t own = { .batch = 1, .raw = false };
    s_client_t client = { .command = "read", .usage = s_read_usage, .option = s_read_option,
                          .own = &own, .timeout = SLUICE_FOREVER };
    int exit_code;
    sluice_stream_t *stream = s_stream_client (&client, argc, argv, "c:rt:b:h", options, "",
                                               &exit_code);
    if (!stream)
        return exit_code;
    sluice_stream_set_batch (stream, (size_t) own.batch);
    sluice_stream_set_retry (stream, (int) own.retry_for);

    while (true) {
        sluice_chunk_t chunk;
        int64_t started = zclock_mono ();
        sluice_err_t err = sluice_stream_read_timeout (stream, &chunk, (int) client.timeout);
        if (err != SLUICE_OK) {
            exit_code = s_call_failed (&client, s_classify (err, started, (int) client.timeout),
                                       sluice_stream_error_text (stream), err);
            break;
        }
        if (chunk.is_eos)
            break;
        //  An empty final chunk only marks the end; a final chunk with text is data too
        if (!chunk.is_final || chunk.size > 0) {
            bool ok = fwrite (chunk.text, 1, chunk.size, stdout) == chunk.size
                   && (own.raw || fputc ('\n', stdout) != EOF)
                   && fflush (stdout) == 0;
            if (!ok) {
                exit_code = s_io_failed ("read", "writing stdout");
                break;
            }
        }
        if (chunk.is_final)
            break;
    }
    sluice_stream_destroy (&stream);
    return exit_code;
}

// ---------------------------------------------------------------------------------------------
//  close, status and wait-ready: on either actor (sluice_client.h)

//  --json: status takes it; close and wait-ready share its option table, and refuse it.
static int
s_json_option (s_client_t *client, int option, const char *arg)
{
    bool *json = (bool *) client->own;
    if (option != 'j')
        return S_NOT_AN_OPTION;
    if (!json)
        return sluice_cli_usage_error (client->command, "unrecognized option '--json'");
    *json = true;
    return SLUICE_EXIT_OK;
}

//  The options of close, status (json: not NULL) and wait-ready, then its client. NULL when
//  the command is done: after --help, or a usage error; *exit_code says which.
static sluice_client_t *
s_any_client (s_client_t *client, int argc, char **argv, bool *json, int *exit_code)
{
    static const struct option options [] = {
        { "connect", required_argument, NULL, 'c' },
        { "timeout", required_argument, NULL, 't' },
        { "json",    no_argument,       NULL, 'j' },
        { "help",    no_argument,       NULL, 'h' },
        SLUICE_CLI_CURVE_CLIENT_OPTIONS
        { NULL, 0, NULL, 0 }
    };
    client->timeout_min = 1;
    client->option = s_json_option;
    client->own = json;
    int rc = s_client_options (client, argc, argv, json ? "c:t:jh" : "c:t:h", options, "");
    *exit_code = rc < 0 ? SLUICE_EXIT_OK : rc;
    if (rc != SLUICE_EXIT_OK)
        return NULL;
    sluice_client_t *actor = sluice_client_new (client->endpoint,
                                                sluice_cli_curve_get (&client->curve));
    if (!actor)
        *exit_code = s_invalid_endpoint (client);
    return actor;
}

static void
s_close_usage (FILE *out)
{
    fprintf (out,
        "usage: sluice close --connect ENDPOINT [--timeout MS]\n"
        "Close the buffer at ENDPOINT: parked and later writers get the closed error, readers\n"
        "drain what is queued and then get end of stream. Idempotent. On a model server, begin\n"
        "its graceful shutdown instead (new requests refused, accepted ones complete).\n"
        "  -c, --connect ENDPOINT  the actor (required)\n"
        "  -t, --timeout MS        how long to wait for the answer (default %d)\n"
        "  -h, --help\n"
        SLUICE_CLI_CURVE_CLIENT_HELP
        "Exit: 0 closed, 1 error, 2 usage, 3 no answer in time.\n", SLUICE_CLI_DEFAULT_TIMEOUT);
}

//  close and wait-ready: one call on the actor, then its outcome as the exit code.
static int
s_any_command (s_client_t *client, int argc, char **argv,
               sluice_err_t (*call) (sluice_client_t *actor, int timeout_ms))
{
    int exit_code;
    sluice_client_t *actor = s_any_client (client, argc, argv, NULL, &exit_code);
    if (!actor)
        return exit_code;
    sluice_err_t err = call (actor, (int) client->timeout);
    if (err != SLUICE_OK)
        exit_code = s_call_failed (client, err, sluice_client_error_text (actor),
                                   err == SLUICE_ETIMEOUT ? SLUICE_ETRANSPORT : err);
    sluice_client_destroy (&actor);
    return exit_code;
}

int
sluice_cli_close (int argc, char **argv)
{
    s_client_t client = { .command = "close", .usage = s_close_usage,
                          .timeout = SLUICE_CLI_DEFAULT_TIMEOUT };
    return s_any_command (&client, argc, argv, sluice_client_stop);
}

static void
s_status_usage (FILE *out)
{
    fprintf (out,
        "usage: sluice status --connect ENDPOINT [--json] [--timeout MS]\n"
        "Print the status of the actor (buffer or model server) at ENDPOINT: one \"key  value\"\n"
        "line per counter, or with --json one JSON object (integers and 0/1 flags as numbers,\n"
        "the rest as strings). The keys are those of the STATUS reply,\n"
        "docs/PROTOCOL.md; `actor` says which actor answered.\n"
        "  -c, --connect ENDPOINT  the actor (required)\n"
        "  -j, --json              print a JSON object\n"
        "  -t, --timeout MS        how long to wait for the answer (default %d)\n"
        "  -h, --help\n"
        SLUICE_CLI_CURVE_CLIENT_HELP
        "Exit: 0 printed, 1 error, 2 usage, 3 no answer in time.\n", SLUICE_CLI_DEFAULT_TIMEOUT);
}

//  The status as "key  value" lines (the wire's key=value lines, aligned), or JSON.
static bool
s_print_status (const sluice_status_t *status, bool json)
{
    char text [4096];
    sluice_status_format (status, json, text, sizeof text);
    if (json)
        return fputs (text, stdout) != EOF;
    for (char *line = text; *line; ) {
        char *eol = strchr (line, '\n');
        if (eol)
            *eol = 0;
        char *equals = strchr (line, '=');
        if (equals) {
            *equals = 0;
            if (equals [1])
                printf ("%-16s %s\n", line, equals + 1);
            else
                printf ("%s\n", line);
        }
        if (!eol)
            break;
        line = eol + 1;
    }
    return true;
}

int
sluice_cli_status (int argc, char **argv)
{
    bool json = false;
    s_client_t client = { .command = "status", .usage = s_status_usage,
                          .timeout = SLUICE_CLI_DEFAULT_TIMEOUT };
    int exit_code;
    sluice_client_t *actor = s_any_client (&client, argc, argv, &json, &exit_code);
    if (!actor)
        return exit_code;
    sluice_status_t status;
    sluice_err_t err = sluice_client_status (actor, (int) client.timeout, &status);
    if (err == SLUICE_OK) {
        if (!s_print_status (&status, json) || fflush (stdout) != 0)
            exit_code = s_io_failed ("status", "writing stdout");
    }
    else
        exit_code = s_call_failed (&client, err, sluice_client_error_text (actor),
                                   err == SLUICE_ETIMEOUT ? SLUICE_ETRANSPORT : err);
    sluice_client_destroy (&actor);
    return exit_code;
}

static void
s_wait_ready_usage (FILE *out)
{
    fprintf (out,
        "usage: sluice wait-ready --connect ENDPOINT [--timeout MS]\n"
        "Wait until the actor at ENDPOINT answers and is ready: a buffer as soon as it answers\n"
        "(and is not closed), a model server once its model has loaded. The actor does the\n"
        "waiting (its reply is deferred): nothing polls. For scripts: start an actor, then\n"
        "`sluice wait-ready` before using it.\n"
        "  -c, --connect ENDPOINT  the actor (required)\n"
        "  -t, --timeout MS        give up after MS (exit 3). Default: no limit\n"
        "  -h, --help\n"
        SLUICE_CLI_CURVE_CLIENT_HELP
        "Exit: 0 ready, 1 error, 2 usage, 3 timeout, 4 the buffer is closed, or the model\n"
        "failed to load or the server is shutting down.\n");
}

int
sluice_cli_wait_ready (int argc, char **argv)
{
    s_client_t client = { .command = "wait-ready", .usage = s_wait_ready_usage,
                          .timeout = SLUICE_FOREVER };
    return s_any_command (&client, argc, argv, sluice_client_wait_ready);
}

// ---------------------------------------------------------------------------------------------
//  request

static void
s_request_usage (FILE *out)
{
    fprintf (out,
        "usage: sluice request --connect ENDPOINT [options] [PAYLOAD]\n"
        "Send one inference request to the model server at ENDPOINT and print its response\n"
        "(followed by a newline). Without PAYLOAD the payload is all of stdin, less one trailing\n"
        "newline (as for write). While the model loads the request waits at the server; then\n"
        "it is served.\n"
        "  -c, --connect ENDPOINT  the model server (required)\n"
        "  -t, --timeout MS        give up when the request still waits (parked or queued)\n"
        "                          after MS (exit 3; it never runs). Default: no limit\n"
        "  -g, --grace MS          how long beyond --timeout to wait for the reply, inference\n"
        "                          included, before deciding the server is gone (default 2000)\n"
        "  -s, --stream            stream the response: print its tokens as they are generated.\n"
        "                          Tokens are taken only as fast as stdout takes them, so a slow\n"
        "                          pipe slows the model itself; a reader that stops (broken\n"
        "                          pipe) cancels the generation\n"
        "  -h, --help\n"
        SLUICE_CLI_CURVE_CLIENT_HELP
        "Exit: 0 response printed, 1 error, 2 usage, 3 timeout, 4 the model failed to load or\n"
        "the server is shutting down.\n");
}

//  All of stdin, NUL-terminated; NULL on a read error.
static char *
s_read_all (int fd, size_t *size)
{
    size_t capacity = 4096, held = 0;
    char *data = (char *) malloc (capacity);
    while (data) {
        if (held + 1 == capacity) {
            char *grown = (char *) realloc (data, capacity * 2);
            if (!grown)
                break;
            data = grown;
            capacity *= 2;
        }
        ssize_t got = read (fd, data + held, capacity - held - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got < 0)
                break;
            data [held] = 0;
            *size = held;
            return data;
        }
        held += (size_t) got;
    }
    free (data);
    return NULL;
}

//  request's own options
typedef struct {
    long grace;
    bool stream;
} s_request_t;

static int
s_request_option (s_client_t *client, int option, const char *arg)
{
    s_request_t *request = (s_request_t *) client->own;
    if (option == 's') {
        request->stream = true;
        return SLUICE_EXIT_OK;
    }
    if (option != 'g')
        return S_NOT_AN_OPTION;
    return s_int_option (client, "grace", arg, 0, INT32_MAX, &request->grace);
}

//  Write every token of the last reply to stdout; false when stdout failed (errno)
static bool
s_print_tokens (sluice_model_client_t *model, size_t count)
{
    for (size_t index = 0; index < count; index++) {
        size_t size = 0;
        const void *token = sluice_model_client_token (model, index, &size);
        if (size && fwrite (token, 1, size, stdout) != size)
            return false;
    }
    //  Flushed per reply: the next PULL waits until the pipe has taken these
    return fflush (stdout) == 0;
}

//  --stream: start the stream, then print tokens until its end. Returns the exit code.
static int
s_request_stream (s_client_t *client, sluice_model_client_t *model, const char *payload,
                  size_t size)
{
    //  A closed pipe is an error to handle (cancel the stream), not a signal that kills us
    signal (SIGPIPE, SIG_IGN);
    int64_t started = zclock_mono ();
    uint64_t id = 0;
    sluice_err_t err = sluice_model_client_stream (model, payload, size, (int) client->timeout,
                                                   &id);
    bool end = false;
    while (err == SLUICE_OK && !end) {
        size_t count = 0;
        err = sluice_model_client_next (model, id, 64, SLUICE_FOREVER, &count, &end);
        if (err == SLUICE_OK && !s_print_tokens (model, count)) {
            int error = errno;
            sluice_model_client_cancel (model, id);     //  the generator stops now
            if (error == EPIPE)
                return SLUICE_EXIT_OK;      //  the reader has all it wanted
            errno = error;
            return s_io_failed ("request", "writing stdout");
        }
    }
    if (err != SLUICE_OK)
        return s_call_failed (client, s_classify (err, started, (int) client->timeout),
                              sluice_model_client_error_text (model), err);
    printf ("\n");
    return fflush (stdout) == 0 ? SLUICE_EXIT_OK : s_io_failed ("request", "writing stdout");
}

int
sluice_cli_request (int argc, char **argv)
{
    static const struct option options [] = {
        { "connect", required_argument, NULL, 'c' },
        { "timeout", required_argument, NULL, 't' },
        { "grace",   required_argument, NULL, 'g' },
        { "stream",  no_argument,       NULL, 's' },
        { "help",    no_argument,       NULL, 'h' },
        SLUICE_CLI_CURVE_CLIENT_OPTIONS
        { NULL, 0, NULL, 0 }
    };
    s_request_t request = { .grace = -1 };
    s_client_t client = { .command = "request", .usage = s_request_usage,
                          .option = s_request_option, .own = &request, .timeout = SLUICE_FOREVER };
    int rc = s_client_parse (&client, argc, argv, "c:t:g:sh", options);
    if (rc != SLUICE_EXIT_OK)
        return rc < 0 ? SLUICE_EXIT_OK : rc;
    if (argc - optind > 1)
        return sluice_cli_usage_error ("request", "one PAYLOAD at most (quote it)");
    if (s_client_check (&client) != SLUICE_EXIT_OK)
        return SLUICE_EXIT_USAGE;
    char *from_stdin = NULL;
    const char *payload;
    size_t size;
    if (optind < argc) {
        payload = argv [optind];
        size = strlen (payload);
    }
    else {
        from_stdin = s_read_all (STDIN_FILENO, &size);
        if (!from_stdin)
            return s_io_failed ("request", "reading stdin");
        //  `echo x | sluice request` means the payload "x": one trailing newline is the
        //  line's end, as for `sluice write`, not part of the payload
        if (size > 0 && from_stdin [size - 1] == '\n')
            from_stdin [--size] = 0;
        payload = from_stdin;
    }
    sluice_model_client_t *model = s_model_client_new (&client);
    if (!model) {
        free (from_stdin);
        return s_invalid_endpoint (&client);
    }
    if (request.grace >= 0)
        sluice_model_client_set_grace (model, (int) request.grace);
    if (request.stream) {
        int stream_exit = s_request_stream (&client, model, payload, size);
        free (from_stdin);
        sluice_model_client_destroy (&model);
        return stream_exit;
    }
    int exit_code = SLUICE_EXIT_OK;
    char *response = NULL;
    int64_t started = zclock_mono ();
    sluice_err_t err = sluice_model_client_request_timeout (model, payload, size,
                                                            (int) client.timeout, &response);
    if (err == SLUICE_OK) {
        printf ("%s\n", response);
        if (fflush (stdout) != 0)
            exit_code = s_io_failed ("request", "writing stdout");
    }
    else
        exit_code = s_call_failed (&client, s_classify (err, started, (int) client.timeout),
                                   sluice_model_client_error_text (model), err);
    free (response);
    free (from_stdin);
    sluice_model_client_destroy (&model);
    return exit_code;
}
