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

static bool
s_require_endpoint (const char *command, const char *endpoint)
{
    if (endpoint)
        return true;
    sluice_cli_usage_error (command, "--connect ENDPOINT is required");
    return false;
}

// ---------------------------------------------------------------------------------------------
//  write

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
        "  -h, --help\n"
        SLUICE_CLI_CURVE_CLIENT_HELP
        "Exit: 0 all input written, 1 error, 2 usage, 3 timeout, 4 the buffer is closed.\n");
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
        { "help",        no_argument,       NULL, 'h' },
        SLUICE_CLI_CURVE_CLIENT_OPTIONS
        { NULL, 0, NULL, 0 }
    };
    sluice_cli_curve_t curve;
    memset (&curve, 0, sizeof curve);
    const char *endpoint = NULL;
    long chunk_bytes = 0, timeout = SLUICE_FOREVER, window = 1;
    bool close_at_end = false, final = false;
    int option;
    while ((option = getopt_long (argc, argv, "c:b:t:w:h", options, NULL)) != -1) {
        switch (option) {
            case 'c': endpoint = optarg; break;
            case 'b':
                if (!sluice_cli_option_int ("write", "chunk-bytes", optarg, 1, INT32_MAX, &chunk_bytes))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'C': close_at_end = true; break;
            case 'F': final = true; break;
            case 't':
                if (!sluice_cli_option_int ("write", "timeout", optarg, 0, INT32_MAX, &timeout))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'w':
                if (!sluice_cli_option_int ("write", "window", optarg, 1, 100000, &window))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'h': s_write_usage (stdout); return SLUICE_EXIT_OK;
            default:
                if (sluice_cli_curve_option (&curve, option, optarg))
                    break;
                return sluice_cli_bad_option ("write", argc, argv);
        }
    }
    if (optind < argc)
        return sluice_cli_usage_error ("write", "unexpected argument '%s' (input is stdin)", argv [optind]);
    if (!s_require_endpoint ("write", endpoint)
    ||  sluice_cli_curve_client ("write", &curve) != SLUICE_EXIT_OK)
        return SLUICE_EXIT_USAGE;
    sluice_stream_t *stream = sluice_stream_new_secure (endpoint, sluice_cli_curve_get (&curve));
    if (!stream)
        return sluice_cli_usage_error ("write", "invalid endpoint '%s'", endpoint);
    sluice_stream_set_window (stream, (size_t) window);

    sluice_cli_input_t input;
    sluice_cli_input_init (&input, STDIN_FILENO, (size_t) chunk_bytes);
    int exit_code = SLUICE_EXIT_OK;
    size_t index = 0;
    while (exit_code == SLUICE_EXIT_OK) {
        const char *data;
        size_t size;
        int rc = sluice_cli_input_next (&input, NULL, &data, &size);
        if (rc == 0)
            break;
        if (rc < 0) {
            fprintf (stderr, "sluice write: reading stdin: %s\n", strerror (errno));
            exit_code = SLUICE_EXIT_ERROR;
            break;
        }
        int64_t started = zclock_mono ();
        sluice_err_t err = sluice_stream_write_timeout (stream, data, size, false, (int) timeout);
        if (err != SLUICE_OK) {
            exit_code = sluice_cli_fail ("write", s_classify (err, started, (int) timeout),
                                         sluice_stream_error_text (stream), "%s: chunk %zu",
                                         endpoint, index + 1);
            sluice_cli_curve_hint ("write", sluice_cli_curve_get (&curve), err);
        }
        index++;
    }
    if (exit_code == SLUICE_EXIT_OK && final) {
        int64_t started = zclock_mono ();
        sluice_err_t err = sluice_stream_write_timeout (stream, "", 0, true, (int) timeout);
        if (err != SLUICE_OK)
            exit_code = sluice_cli_fail ("write", s_classify (err, started, (int) timeout),
                                         sluice_stream_error_text (stream),
                                         "%s: final chunk", endpoint);
    }
    if (exit_code == SLUICE_EXIT_OK) {
        //  Writes in flight are only written once acknowledged
        sluice_err_t err = sluice_stream_flush (stream);
        if (err != SLUICE_OK)
            exit_code = sluice_cli_fail ("write", err, sluice_stream_error_text (stream),
                                         "%s: a write in flight", endpoint);
    }
    if (exit_code == SLUICE_EXIT_OK && close_at_end) {
        sluice_err_t err = sluice_stream_close (stream);
        if (err != SLUICE_OK)
            exit_code = sluice_cli_fail ("write", err, sluice_stream_error_text (stream),
                                         "%s: close", endpoint);
    }
    sluice_cli_input_fini (&input);
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
        "  -h, --help\n"
        SLUICE_CLI_CURVE_CLIENT_HELP
        "Exit: 0 end of stream, 1 error, 2 usage, 3 timeout.\n");
}

int
sluice_cli_read (int argc, char **argv)
{
    static const struct option options [] = {
        { "connect", required_argument, NULL, 'c' },
        { "raw",     no_argument,       NULL, 'r' },
        { "timeout", required_argument, NULL, 't' },
        { "batch",   required_argument, NULL, 'b' },
        { "help",    no_argument,       NULL, 'h' },
        SLUICE_CLI_CURVE_CLIENT_OPTIONS
        { NULL, 0, NULL, 0 }
    };
    sluice_cli_curve_t curve;
    memset (&curve, 0, sizeof curve);
    const char *endpoint = NULL;
    long timeout = SLUICE_FOREVER, batch = 1;
    bool raw = false;
    int option;
    while ((option = getopt_long (argc, argv, "c:rt:b:h", options, NULL)) != -1) {
        switch (option) {
            case 'c': endpoint = optarg; break;
            case 'r': raw = true; break;
            case 't':
                if (!sluice_cli_option_int ("read", "timeout", optarg, 0, INT32_MAX, &timeout))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'b':
                if (!sluice_cli_option_int ("read", "batch", optarg, 1, SLUICE_MAX_BATCH, &batch))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'h': s_read_usage (stdout); return SLUICE_EXIT_OK;
            default:
                if (sluice_cli_curve_option (&curve, option, optarg))
                    break;
                return sluice_cli_bad_option ("read", argc, argv);
        }
    }
    if (optind < argc)
        return sluice_cli_usage_error ("read", "unexpected argument '%s'", argv [optind]);
    if (!s_require_endpoint ("read", endpoint)
    ||  sluice_cli_curve_client ("read", &curve) != SLUICE_EXIT_OK)
        return SLUICE_EXIT_USAGE;
    sluice_stream_t *stream = sluice_stream_new_secure (endpoint, sluice_cli_curve_get (&curve));
    if (!stream)
        return sluice_cli_usage_error ("read", "invalid endpoint '%s'", endpoint);
    sluice_stream_set_batch (stream, (size_t) batch);

    int exit_code = SLUICE_EXIT_OK;
    while (true) {
        sluice_chunk_t chunk;
        int64_t started = zclock_mono ();
        sluice_err_t err = sluice_stream_read_timeout (stream, &chunk, (int) timeout);
        if (err != SLUICE_OK) {
            exit_code = sluice_cli_fail ("read", s_classify (err, started, (int) timeout),
                                         sluice_stream_error_text (stream), "%s", endpoint);
            sluice_cli_curve_hint ("read", sluice_cli_curve_get (&curve), err);
            break;
        }
        if (chunk.is_eos)
            break;
        //  An empty final chunk only marks the end; a final chunk with text is data too
        if (!chunk.is_final || chunk.size > 0) {
            bool ok = fwrite (chunk.text, 1, chunk.size, stdout) == chunk.size
                   && (raw || fputc ('\n', stdout) != EOF)
                   && fflush (stdout) == 0;
            if (!ok) {
                fprintf (stderr, "sluice read: writing stdout: %s\n", strerror (errno));
                exit_code = SLUICE_EXIT_ERROR;
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
//  close and status: one command, answered at once, on either actor

//  One call with the given bound; the reply (if OK) stays in conn.
static sluice_err_t
s_call_once (sluice_conn_t *conn, uint8_t command, int timeout_ms)
{
    int64_t started = zclock_mono ();
    //  The bound is the whole wait: no extra grace on top of the user's timeout
    conn->grace_ms = 0;
    sluice_err_t rc = sluice_conn_call (conn, command, 0, timeout_ms, 0, NULL, 0);
    return s_classify (rc, started, timeout_ms);
}

static int
s_parse_endpoint_timeout (const char *command, int argc, char **argv, void (*usage) (FILE *),
                          const char **endpoint, long *timeout, bool *json,
                          sluice_cli_curve_t *curve)
{
    static const struct option options [] = {
        { "connect", required_argument, NULL, 'c' },
        { "timeout", required_argument, NULL, 't' },
        { "json",    no_argument,       NULL, 'j' },
        { "help",    no_argument,       NULL, 'h' },
        SLUICE_CLI_CURVE_CLIENT_OPTIONS
        { NULL, 0, NULL, 0 }
    };
    memset (curve, 0, sizeof *curve);
    int option;
    while ((option = getopt_long (argc, argv, json ? "c:t:jh" : "c:t:h", options, NULL)) != -1) {
        switch (option) {
            case 'c': *endpoint = optarg; break;
            case 't':
                if (!sluice_cli_option_int (command, "timeout", optarg, 1, INT32_MAX, timeout))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'j':
                if (!json)
                    return sluice_cli_usage_error (command, "unrecognized option '--json'");
                *json = true;
                break;
            case 'h': usage (stdout); return -1;
            default:
                if (sluice_cli_curve_option (curve, option, optarg))
                    break;
                return sluice_cli_bad_option (command, argc, argv);
        }
    }
    if (optind < argc)
        return sluice_cli_usage_error (command, "unexpected argument '%s'", argv [optind]);
    if (!s_require_endpoint (command, *endpoint))
        return SLUICE_EXIT_USAGE;
    return sluice_cli_curve_client (command, curve);
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

int
sluice_cli_close (int argc, char **argv)
{
    const char *endpoint = NULL;
    long timeout = SLUICE_CLI_DEFAULT_TIMEOUT;
    sluice_cli_curve_t curve;
    int rc = s_parse_endpoint_timeout ("close", argc, argv, s_close_usage, &endpoint, &timeout,
                                       NULL, &curve);
    if (rc != SLUICE_EXIT_OK)
        return rc < 0 ? SLUICE_EXIT_OK : rc;
    sluice_conn_t conn;
    if (sluice_conn_init_secure (&conn, endpoint, sluice_cli_curve_get (&curve)) != SLUICE_OK) {
        sluice_conn_fini (&conn);
        return sluice_cli_usage_error ("close", "invalid endpoint '%s'", endpoint);
    }
    sluice_err_t err = s_call_once (&conn, SLUICE_CMD_CLOSE, (int) timeout);
    if (err == SLUICE_ECOMMAND)         //  not a buffer: a model server shuts down instead
        err = s_call_once (&conn, SLUICE_CMD_SHUTDOWN, (int) timeout);
    int exit_code = SLUICE_EXIT_OK;
    if (err != SLUICE_OK) {
        exit_code = sluice_cli_fail ("close", err, conn.error_text, "%s", endpoint);
        sluice_cli_curve_hint ("close", sluice_cli_curve_get (&curve), conn.error);
    }
    sluice_conn_fini (&conn);
    return exit_code;
}

static void
s_status_usage (FILE *out)
{
    fprintf (out,
        "usage: sluice status --connect ENDPOINT [--json] [--timeout MS]\n"
        "Print the status of the actor (buffer or model server) at ENDPOINT: one \"key  value\"\n"
        "line per counter, or with --json one JSON object (integers as numbers, the rest as\n"
        "strings). The keys are those of the STATUS reply, docs/PROTOCOL.md.\n"
        "  -c, --connect ENDPOINT  the actor (required)\n"
        "  -j, --json              print a JSON object\n"
        "  -t, --timeout MS        how long to wait for the answer (default %d)\n"
        "  -h, --help\n"
        SLUICE_CLI_CURVE_CLIENT_HELP
        "Exit: 0 printed, 1 error, 2 usage, 3 no answer in time.\n", SLUICE_CLI_DEFAULT_TIMEOUT);
}

static bool
s_is_json_integer (const char *text, size_t size)
{
    if (size == 0 || size > 18)
        return false;
    if (text [0] == '0' && size > 1)
        return false;
    for (size_t index = 0; index < size; index++)
        if (text [index] < '0' || text [index] > '9')
            return false;
    return true;
}

static void
s_print_json_string (const char *text, size_t size)
{
    putchar ('"');
    for (size_t index = 0; index < size; index++) {
        unsigned char byte = (unsigned char) text [index];
        if (byte == '"' || byte == '\\')
            printf ("\\%c", byte);
        else
        if (byte == '\n')
            printf ("\\n");
        else
        if (byte == '\t')
            printf ("\\t");
        else
        if (byte < 0x20)
            printf ("\\u%04x", byte);
        else
            putchar (byte);
    }
    putchar ('"');
}

//  Print "key=value" lines human-readable or as one JSON object.
static void
s_print_status (const char *text, size_t size, bool json)
{
    const char *end = text + size;
    bool first = true;
    if (json)
        printf ("{");
    for (const char *line = text; line < end; ) {
        const char *eol = memchr (line, '\n', (size_t) (end - line));
        if (!eol)
            eol = end;
        const char *equals = memchr (line, '=', (size_t) (eol - line));
        if (equals && equals > line) {
            const char *value = equals + 1;
            size_t key_size = (size_t) (equals - line), value_size = (size_t) (eol - value);
            if (json) {
                printf ("%s", first ? "" : ", ");
                s_print_json_string (line, key_size);
                printf (": ");
                if (s_is_json_integer (value, value_size))
                    printf ("%.*s", (int) value_size, value);
                else
                    s_print_json_string (value, value_size);
            }
            else
            if (value_size)
                printf ("%-16.*s %.*s\n", (int) key_size, line, (int) value_size, value);
            else
                printf ("%.*s\n", (int) key_size, line);
            first = false;
        }
        line = eol + 1;
    }
    if (json)
        printf ("}\n");
}

int
sluice_cli_status (int argc, char **argv)
{
    const char *endpoint = NULL;
    long timeout = SLUICE_CLI_DEFAULT_TIMEOUT;
    bool json = false;
    sluice_cli_curve_t curve;
    int rc = s_parse_endpoint_timeout ("status", argc, argv, s_status_usage, &endpoint, &timeout,
                                       &json, &curve);
    if (rc != SLUICE_EXIT_OK)
        return rc < 0 ? SLUICE_EXIT_OK : rc;
    sluice_conn_t conn;
    if (sluice_conn_init_secure (&conn, endpoint, sluice_cli_curve_get (&curve)) != SLUICE_OK) {
        sluice_conn_fini (&conn);
        return sluice_cli_usage_error ("status", "invalid endpoint '%s'", endpoint);
    }
    int exit_code = SLUICE_EXIT_OK;
    sluice_err_t err = s_call_once (&conn, SLUICE_CMD_STATUS, (int) timeout);
    if (err == SLUICE_OK && conn.frame_count != 1)
        err = sluice_conn_fail (&conn, SLUICE_EPROTO, "STATUS reply without its text");
    if (err == SLUICE_OK) {
        s_print_status ((const char *) zmq_msg_data (&conn.frames [0]),
                        zmq_msg_size (&conn.frames [0]), json);
        if (fflush (stdout) != 0) {
            fprintf (stderr, "sluice status: writing stdout: %s\n", strerror (errno));
            exit_code = SLUICE_EXIT_ERROR;
        }
    }
    else {
        exit_code = sluice_cli_fail ("status", err, conn.error_text, "%s", endpoint);
        sluice_cli_curve_hint ("status", sluice_cli_curve_get (&curve), conn.error);
    }
    sluice_conn_fini (&conn);
    return exit_code;
}

// ---------------------------------------------------------------------------------------------
//  wait-ready

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
    const char *endpoint = NULL;
    long timeout = SLUICE_FOREVER;
    sluice_cli_curve_t curve;
    int rc = s_parse_endpoint_timeout ("wait-ready", argc, argv, s_wait_ready_usage, &endpoint,
                                       &timeout, NULL, &curve);
    if (rc != SLUICE_EXIT_OK)
        return rc < 0 ? SLUICE_EXIT_OK : rc;
    const sluice_curve_t *secure = sluice_cli_curve_get (&curve);
    int64_t started = zclock_mono ();
    sluice_conn_t conn;
    if (sluice_conn_init_secure (&conn, endpoint, secure) != SLUICE_OK) {
        sluice_conn_fini (&conn);
        return sluice_cli_usage_error ("wait-ready", "invalid endpoint '%s'", endpoint);
    }
    //  First: is anyone there, and which actor is it? Both answer STATUS at once.
    sluice_err_t err = s_call_once (&conn, SLUICE_CMD_STATUS, (int) timeout);
    if (err == SLUICE_OK && conn.frame_count != 1)
        err = sluice_conn_fail (&conn, SLUICE_EPROTO, "STATUS reply without its text");
    int exit_code = SLUICE_EXIT_OK;
    if (err != SLUICE_OK) {
        exit_code = sluice_cli_fail ("wait-ready", err, conn.error_text, "%s", endpoint);
        sluice_cli_curve_hint ("wait-ready", secure, conn.error);
        sluice_conn_fini (&conn);
        return exit_code;
    }
    const char *text = (const char *) zmq_msg_data (&conn.frames [0]);
    size_t size = zmq_msg_size (&conn.frames [0]);
    char state [64];
    bool is_model = sluice_status_str (text, size, "state", state, sizeof state);
    bool closed = sluice_status_u64 (text, size, "closed", 0) != 0;
    sluice_conn_fini (&conn);
    if (!is_model) {
        if (closed)
            exit_code = sluice_cli_fail ("wait-ready", SLUICE_ECLOSED, NULL, "%s", endpoint);
        return exit_code;
    }
    sluice_model_client_t *client = sluice_model_client_new_secure (endpoint, secure);
    if (!client)
        return sluice_cli_usage_error ("wait-ready", "invalid endpoint '%s'", endpoint);
    int remaining = SLUICE_FOREVER;
    if (timeout >= 0) {
        int64_t left = timeout - (zclock_mono () - started);
        remaining = left > 0 ? (int) left : 0;
    }
    int64_t waited_from = zclock_mono ();
    err = sluice_model_client_wait_ready (client, remaining);
    if (err != SLUICE_OK)
        exit_code = sluice_cli_fail ("wait-ready", s_classify (err, waited_from, remaining),
                                     sluice_model_client_error_text (client), "%s", endpoint);
    sluice_model_client_destroy (&client);
    return exit_code;
}

// ---------------------------------------------------------------------------------------------
//  request

static void
s_request_usage (FILE *out)
{
    fprintf (out,
        "usage: sluice request --connect ENDPOINT [options] [PAYLOAD]\n"
        "Send one inference request to the model server at ENDPOINT and print its response\n"
        "(followed by a newline). Without PAYLOAD the payload is all of stdin. While the model\n"
        "loads the request waits at the server; then it is served.\n"
        "  -c, --connect ENDPOINT  the model server (required)\n"
        "  -t, --timeout MS        give up when the request still waits (parked or queued)\n"
        "                          after MS (exit 3; it never runs). Default: no limit\n"
        "  -g, --grace MS          how long beyond --timeout to wait for the reply, inference\n"
        "                          included, before deciding the server is gone (default 2000)\n"
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

int
sluice_cli_request (int argc, char **argv)
{
    static const struct option options [] = {
        { "connect", required_argument, NULL, 'c' },
        { "timeout", required_argument, NULL, 't' },
        { "grace",   required_argument, NULL, 'g' },
        { "help",    no_argument,       NULL, 'h' },
        SLUICE_CLI_CURVE_CLIENT_OPTIONS
        { NULL, 0, NULL, 0 }
    };
    sluice_cli_curve_t curve;
    memset (&curve, 0, sizeof curve);
    const char *endpoint = NULL;
    long timeout = SLUICE_FOREVER, grace = -1;
    int option;
    while ((option = getopt_long (argc, argv, "c:t:g:h", options, NULL)) != -1) {
        switch (option) {
            case 'c': endpoint = optarg; break;
            case 't':
                if (!sluice_cli_option_int ("request", "timeout", optarg, 0, INT32_MAX, &timeout))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'g':
                if (!sluice_cli_option_int ("request", "grace", optarg, 0, INT32_MAX, &grace))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'h': s_request_usage (stdout); return SLUICE_EXIT_OK;
            default:
                if (sluice_cli_curve_option (&curve, option, optarg))
                    break;
                return sluice_cli_bad_option ("request", argc, argv);
        }
    }
    if (argc - optind > 1)
        return sluice_cli_usage_error ("request", "one PAYLOAD at most (quote it)");
    if (!s_require_endpoint ("request", endpoint)
    ||  sluice_cli_curve_client ("request", &curve) != SLUICE_EXIT_OK)
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
        if (!from_stdin) {
            fprintf (stderr, "sluice request: reading stdin: %s\n", strerror (errno));
            return SLUICE_EXIT_ERROR;
        }
        payload = from_stdin;
    }
    sluice_model_client_t *client = sluice_model_client_new_secure (endpoint,
                                                                    sluice_cli_curve_get (&curve));
    if (!client) {
        free (from_stdin);
        return sluice_cli_usage_error ("request", "invalid endpoint '%s'", endpoint);
    }
    if (grace >= 0)
        sluice_model_client_set_grace (client, (int) grace);
    int exit_code = SLUICE_EXIT_OK;
    char *response = NULL;
    int64_t started = zclock_mono ();
    sluice_err_t err = sluice_model_client_request_timeout (client, payload, size, (int) timeout,
                                                            &response);
    if (err == SLUICE_OK) {
        printf ("%s\n", response);
        if (fflush (stdout) != 0) {
            fprintf (stderr, "sluice request: writing stdout: %s\n", strerror (errno));
            exit_code = SLUICE_EXIT_ERROR;
        }
    }
    else {
        exit_code = sluice_cli_fail ("request", s_classify (err, started, (int) timeout),
                                     sluice_model_client_error_text (client), "%s", endpoint);
        sluice_cli_curve_hint ("request", sluice_cli_curve_get (&curve), err);
    }
    free (response);
    free (from_stdin);
    sluice_model_client_destroy (&client);
    return exit_code;
}
