/*  cli_servers.c - actors as processes: buffer, model-server, stage.

    Each blocks SIGINT/SIGTERM before any thread exists and takes them from a signalfd polled
    together with the actor's own handle, so the main thread sleeps until something happens:
    no periodic wake-ups, and no window in which a signal can be missed.
*/
#include "cli.h"

static void
s_print_listening (const char *endpoint, const char *events, const sluice_cli_curve_t *curve)
{
    //  The first line is the contract for scripts and tests that bind port * or 0
    printf ("listening on %s\n", endpoint);
    if (events)
        printf ("events on %s\n", events);
    //  The key clients give as --curve-server-key
    if (curve && curve->checked.curve.cert)
        printf ("curve key %s\n", curve->checked.public_key);
    fflush (stdout);
}

//  The library refused to start: with CURVE settings that is their fault (it has logged why)
static int
s_start_failed (const char *command, sluice_err_t err, const char *endpoint)
{
    return sluice_cli_fail (command, err, NULL, "cannot start on %s with these CURVE settings "
                            "(the line above says why)", endpoint);
}

// ---------------------------------------------------------------------------------------------
//  buffer

static void
s_buffer_usage (FILE *out)
{
    fprintf (out,
        "usage: sluice buffer --bind ENDPOINT --capacity N [options]\n"
        "Run a bounded stream buffer until SIGINT or SIGTERM. Prints \"listening on ENDPOINT\"\n"
        "(the port resolved when bound to port * or 0) as the first line on stdout.\n"
        "On SIGINT/SIGTERM the buffer closes: parked and later writers get the closed error,\n"
        "readers drain what is queued and then get end of stream; the process exits once the\n"
        "buffer is drained, or after --drain-timeout (exit 3). A second signal stops at once.\n"
        "  -b, --bind ENDPOINT     where to listen, e.g. tcp://*:5555 (required)\n"
        "  -n, --capacity N        chunks the queue holds (required)\n"
        "  -e, --events ENDPOINT   also publish state events (OPEN, CLOSED) there\n"
        "  -m, --max-chunk BYTES   largest chunk accepted (default %d)\n"
        "  -p, --max-parked N      parked requests beyond this are refused (default %d)\n"
        "      --peer-max-parked N  ... from one connection (default %d)\n"
        "      --max-parked-bytes BYTES  parked chunk bytes beyond this are refused\n"
        "                          (default %u)\n"
        "      --peer-max-parked-bytes BYTES  ... from one connection (default %u)\n"
        "  -d, --drain-timeout MS  how long readers may take to drain at shutdown (default %d)\n"
        "  -j, --journal DIR       keep every chunk accepted and not yet consumed in DIR/journal\n"
        "                          (DIR made when missing): started again on DIR after a crash,\n"
        "                          the buffer holds them again, under the same incarnation;\n"
        "                          chunks read and not acknowledged come back (at-least-once).\n"
        "                          A buffer stopped by a signal closes, and the journal keeps\n"
        "                          that too: use a new DIR for a new stream\n"
        "      --fsync always|never  with --journal: always (default) = each WRITE's chunks are\n"
        "                          on disk (fdatasync) before its OK, surviving power loss;\n"
        "                          never = written (write(2)) before its OK, left to the kernel:\n"
        "                          survives kill -9 and crashes of the process, not of the host\n"
        "  -v, --verbose           log routine events too (vanished peers, undeliverable\n"
        "                          replies); the log is rate-limited and never holds the buffer\n"
        "  -h, --help\n"
        SLUICE_CLI_CURVE_SERVER_HELP
        "  With CURVE, \"curve key KEY\" follows the first line: the key clients need.\n"
        "Exit: 0 stopped and drained, 1 error, 2 usage (also: CURVE settings refused), 3 drain\n"
        "timed out.\n",
        SLUICE_BUFFER_DEFAULT_MAX_CHUNK, SLUICE_BUFFER_DEFAULT_MAX_PARKED,
        SLUICE_BUFFER_DEFAULT_PEER_MAX_PARKED, SLUICE_BUFFER_DEFAULT_MAX_PARKED_BYTES,
        SLUICE_BUFFER_DEFAULT_PEER_MAX_PARKED_BYTES, SLUICE_CLI_DEFAULT_DRAIN);
}

int
sluice_cli_buffer (int argc, char **argv)
{
    static const struct option options [] = {
        { "bind",          required_argument, NULL, 'b' },
        { "capacity",      required_argument, NULL, 'n' },
        { "events",        required_argument, NULL, 'e' },
        { "max-chunk",     required_argument, NULL, 'm' },
        { "max-parked",    required_argument, NULL, 'p' },
        { "peer-max-parked",       required_argument, NULL, 'P' },
        { "max-parked-bytes",      required_argument, NULL, 'B' },
        { "peer-max-parked-bytes", required_argument, NULL, 'Q' },
        { "drain-timeout", required_argument, NULL, 'd' },
        { "journal",       required_argument, NULL, 'j' },
        { "fsync",         required_argument, NULL, 'F' },
        { "verbose",       no_argument,       NULL, 'v' },
        { "help",          no_argument,       NULL, 'h' },
        SLUICE_CLI_CURVE_SERVER_OPTIONS
        { NULL, 0, NULL, 0 }
    };
    sluice_buffer_opts_t opts = { NULL };
    sluice_cli_curve_t curve;
    memset (&curve, 0, sizeof curve);
    long capacity = 0, max_chunk = 0, max_parked = 0, drain = SLUICE_CLI_DEFAULT_DRAIN;
    long peer_max_parked = 0, max_parked_bytes = 0, peer_max_parked_bytes = 0;
    bool fsync_given = false;
    int option;
    while ((option = getopt_long (argc, argv, "b:n:e:m:p:d:j:vh", options, NULL)) != -1) {
        switch (option) {
            case 'b': opts.endpoint = optarg; break;
            case 'e': opts.events_endpoint = optarg; break;
            case 'n':
                if (!sluice_cli_option_int ("buffer", "capacity", optarg, 1, 1L << 24, &capacity))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'm':
                if (!sluice_cli_option_int ("buffer", "max-chunk", optarg, 1, INT32_MAX, &max_chunk))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'p':
                if (!sluice_cli_option_int ("buffer", "max-parked", optarg, 1, INT32_MAX, &max_parked))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'P':
                if (!sluice_cli_option_int ("buffer", "peer-max-parked", optarg, 1, INT32_MAX,
                                            &peer_max_parked))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'B':
                if (!sluice_cli_option_int ("buffer", "max-parked-bytes", optarg, 1, INT64_MAX,
                                            &max_parked_bytes))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'Q':
                if (!sluice_cli_option_int ("buffer", "peer-max-parked-bytes", optarg, 1,
                                            INT64_MAX, &peer_max_parked_bytes))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'd':
                if (!sluice_cli_option_int ("buffer", "drain-timeout", optarg, 0, INT32_MAX, &drain))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'j': opts.journal = optarg; break;
            case 'F':
                if (strcmp (optarg, "always") == 0)
                    opts.journal_fsync = SLUICE_FSYNC_ALWAYS;
                else
                if (strcmp (optarg, "never") == 0)
                    opts.journal_fsync = SLUICE_FSYNC_NEVER;
                else
                    return sluice_cli_usage_error ("buffer", "--fsync takes always or never, "
                                                   "not '%s'", optarg);
                fsync_given = true;
                break;
            case 'v': sluice_log_set_verbose (true); break;
            case 'h': s_buffer_usage (stdout); return SLUICE_EXIT_OK;
            default:
                if (sluice_cli_curve_option (&curve, option, optarg))
                    break;
                return sluice_cli_bad_option ("buffer", argc, argv);
        }
    }
    if (optind < argc)
        return sluice_cli_usage_error ("buffer", "unexpected argument '%s'", argv [optind]);
    if (!opts.endpoint)
        return sluice_cli_usage_error ("buffer", "--bind ENDPOINT is required");
    if (!capacity)
        return sluice_cli_usage_error ("buffer", "--capacity N is required");
    if (fsync_given && !opts.journal)
        return sluice_cli_usage_error ("buffer", "--fsync goes with --journal DIR");
    if (sluice_cli_curve_server ("buffer", &curve) != SLUICE_EXIT_OK)
        return SLUICE_EXIT_USAGE;
    opts.capacity = (size_t) capacity;
    opts.max_chunk_size = (size_t) max_chunk;
    opts.max_parked = (size_t) max_parked;
    opts.peer_max_parked = (size_t) peer_max_parked;
    opts.max_parked_bytes = (size_t) max_parked_bytes;
    opts.peer_max_parked_bytes = (size_t) peer_max_parked_bytes;
    opts.curve = sluice_cli_curve_get (&curve);

    int signals = sluice_cli_server_init ();
    if (signals == -1) {
        fprintf (stderr, "sluice buffer: cannot take signals: %s\n", strerror (errno));
        return SLUICE_EXIT_ERROR;
    }
    sluice_err_t err;
    sluice_buffer_t *buffer = sluice_buffer_new (&opts, &err);
    if (!buffer) {
        close (signals);
        //  A journal that cannot be used says so (its text starts with "journal")
        if (err == SLUICE_EINVAL && opts.journal
        &&  strncmp (sluice_last_error_text (), "journal", 7) == 0) {
            fprintf (stderr, "sluice buffer: cannot start: %s\n", sluice_last_error_text ());
            return SLUICE_EXIT_ERROR;
        }
        //  Options are checked: EINVAL is the CURVE settings, refused by the library
        if (err == SLUICE_EINVAL && opts.curve)
            return s_start_failed ("buffer", err, opts.endpoint);
        return sluice_cli_fail ("buffer", err == SLUICE_EINVAL ? SLUICE_ETRANSPORT : err, NULL,
                                "cannot bind %s%s%s", opts.endpoint,
                                opts.events_endpoint ? " / " : "",
                                opts.events_endpoint ? opts.events_endpoint : "");
    }
    s_print_listening (sluice_buffer_endpoint (buffer), sluice_buffer_events_endpoint (buffer),
                       &curve);

    //  Serve until a signal; the actor does all the work on its own thread
    sluice_cli_wait (signals, NULL, INT64_MAX);

    int exit_code = SLUICE_EXIT_OK;
    err = sluice_buffer_close (buffer);
    if (err != SLUICE_OK)
        exit_code = sluice_cli_fail ("buffer", err, NULL, "close");
    else {
        //  Readers drain; the actor tells when the queue is empty (its pipe becomes readable)
        int64_t deadline = zclock_mono () + drain;
        while ((err = sluice_buffer_wait_drained (buffer, 0)) == SLUICE_ETIMEOUT) {
            int woke = sluice_cli_wait (signals, sluice_buffer_actor_handle (buffer), deadline);
            if (woke > 0) {
                fprintf (stderr, "sluice buffer: second signal: stopping without draining\n");
                exit_code = SLUICE_EXIT_ERROR;
                break;
            }
            if (woke < 0) {
                err = sluice_buffer_wait_drained (buffer, 0);
                if (err == SLUICE_ETIMEOUT)
                    exit_code = sluice_cli_fail ("buffer", err, NULL,
                        "readers did not drain the buffer within %ld ms", drain);
                break;
            }
        }
        if (err != SLUICE_OK && err != SLUICE_ETIMEOUT && exit_code == SLUICE_EXIT_OK)
            exit_code = sluice_cli_fail ("buffer", err, NULL, "waiting for the buffer to drain");
    }
    sluice_buffer_destroy (&buffer);
    close (signals);
    return exit_code;
}

// ---------------------------------------------------------------------------------------------
//  model-server

static void
s_model_server_usage (FILE *out)
{
    fprintf (out,
        "usage: sluice model-server --bind ENDPOINT [options]\n"
        "Run a model server (the simulated model) until SIGINT or SIGTERM. Prints \"listening on\n"
        "ENDPOINT\" as the first line on stdout. The model loads at start; requests sent meanwhile\n"
        "wait and are served once it is ready. On SIGINT/SIGTERM the server shuts down\n"
        "gracefully: new and waiting requests are refused, requests being inferred complete;\n"
        "then it exits (after --drain-timeout at most, exit 3). A second signal stops at once.\n"
        "It also exits once a client has shut it down (`sluice close`) and it has stopped.\n"
        "  -b, --bind ENDPOINT     where to listen, e.g. tcp://*:5560 (required)\n"
        "  -e, --events ENDPOINT   also publish state events (LOADING, READY, ...) there\n"
        "  -l, --load-time MS      simulated load time (default 0)\n"
        "  -i, --infer-time MS     simulated inference time per request (default 0)\n"
        "  -T, --text TEXT         what a streaming request (request --stream) gets, one token\n"
        "                          per word (default: the response a request gets)\n"
        "  -k, --token-time MS     simulated time per streamed token after the first (default 0)\n"
        "  -W, --window N          tokens a stream holds before its generator waits for the\n"
        "                          client to take them (default %d, at most %d)\n"
        "  -x, --exec COMMAND      the model is a program: COMMAND runs (sh -c) per request,\n"
        "                          the payload on its stdin; its stdout is the response, streamed\n"
        "                          as it comes to request --stream (backpressure: its pipe is not\n"
        "                          read while the client lags; a cancel kills it); a non-zero\n"
        "                          exit fails the request with its stderr\n"
        "  -L, --load-exec COMMAND with --exec: run once at start; exit 0 means ready, else the\n"
        "                          load fails with its stderr\n"
        "  -w, --workers N         concurrent inferences (default %d)\n"
        "  -m, --model NAME        model name (default %s)\n"
        "  -f, --fail REASON       make the load fail: every request gets REASON\n"
        "  -p, --max-pending N     requests beyond this are refused as busy (default %d)\n"
        "      --peer-max-pending N  of them, the most one connection may have waiting (queued,\n"
        "                          parked for the load, WAITs, PULLs); beyond it that client\n"
        "                          alone is refused as busy, so it cannot crowd out the others\n"
        "                          (default %d)\n"
        "  -d, --drain-timeout MS  how long in-flight requests may take at shutdown (default %d)\n"
        "  -v, --verbose           log routine events too; rate-limited, never holds the server\n"
        "  -h, --help\n"
        SLUICE_CLI_CURVE_SERVER_HELP
        "  With CURVE, \"curve key KEY\" follows the first lines: the key clients need.\n"
        "Exit: 0 stopped, 1 error, 2 usage (also: CURVE settings refused), 3 drain timed out.\n",
        SLUICE_MODEL_DEFAULT_WINDOW, SLUICE_MODEL_MAX_WINDOW,
        SLUICE_MODEL_DEFAULT_WORKERS, SLUICE_MODEL_SIM_DEFAULT_NAME,
        SLUICE_MODEL_DEFAULT_MAX_PENDING, SLUICE_MODEL_DEFAULT_PEER_MAX_PENDING,
        SLUICE_CLI_DEFAULT_DRAIN);
}

//  Wait until the server has stopped (its pipe becomes readable then), a signal or the
//  deadline: SLUICE_OK, SLUICE_EINTR (a signal), SLUICE_ETIMEOUT, or how it ended. The pipe
//  rather than the STOPPED event: the events socket may be CURVE-protected, or absent.
static sluice_err_t
s_wait_stopped (int signals, sluice_model_server_t *server, int64_t deadline)
{
    sluice_err_t err;
    while ((err = sluice_model_server_wait (server, 0)) == SLUICE_ETIMEOUT) {
        int woke = sluice_cli_wait (signals, sluice_model_server_actor_handle (server), deadline);
        if (woke != 0)
            return woke > 0 ? SLUICE_EINTR : SLUICE_ETIMEOUT;
    }
    return err;
}

int
sluice_cli_model_server (int argc, char **argv)
{
    static const struct option options [] = {
        { "bind",          required_argument, NULL, 'b' },
        { "events",        required_argument, NULL, 'e' },
        { "load-time",     required_argument, NULL, 'l' },
        { "infer-time",    required_argument, NULL, 'i' },
        { "text",          required_argument, NULL, 'T' },
        { "token-time",    required_argument, NULL, 'k' },
        { "window",        required_argument, NULL, 'W' },
        { "exec",          required_argument, NULL, 'x' },
        { "load-exec",     required_argument, NULL, 'L' },
        { "workers",       required_argument, NULL, 'w' },
        { "model",         required_argument, NULL, 'm' },
        { "fail",          required_argument, NULL, 'f' },
        { "max-pending",   required_argument, NULL, 'p' },
        { "peer-max-pending", required_argument, NULL, 'P' },
        { "drain-timeout", required_argument, NULL, 'd' },
        { "verbose",       no_argument,       NULL, 'v' },
        { "help",          no_argument,       NULL, 'h' },
        SLUICE_CLI_CURVE_SERVER_OPTIONS
        { NULL, 0, NULL, 0 }
    };
    sluice_model_server_opts_t opts;
    memset (&opts, 0, sizeof opts);
    sluice_cli_curve_t curve;
    memset (&curve, 0, sizeof curve);
    long load = 0, infer = 0, workers = 0, max_pending = 0, drain = SLUICE_CLI_DEFAULT_DRAIN;
    long token = 0, window = 0, peer_max_pending = 0;
    //  The exec model: the server borrows its config until it is destroyed, below
    sluice_model_exec_t exec = { NULL, NULL };
    sluice_model_iface_t exec_model = {
        .name = "exec", .config = &exec, .load = sluice_model_exec_load,
        .infer = sluice_model_exec_infer, .stream = sluice_model_exec_stream,
    };
    int option;
    while ((option = getopt_long (argc, argv, "b:e:l:i:T:k:W:x:L:w:m:f:p:d:vh", options, NULL)) != -1) {
        switch (option) {
            case 'b': opts.endpoint = optarg; break;
            case 'e': opts.events_endpoint = optarg; break;
            case 'm': opts.sim.name = optarg; break;
            case 'f': opts.sim.fail_reason = optarg; break;
            case 'T': opts.sim.text = optarg; break;
            case 'x': exec.command = optarg; break;
            case 'L': exec.load_command = optarg; break;
            case 'k':
                if (!sluice_cli_option_int ("model-server", "token-time", optarg, 0, INT32_MAX, &token))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'W':
                if (!sluice_cli_option_int ("model-server", "window", optarg, 1,
                                            SLUICE_MODEL_MAX_WINDOW, &window))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'l':
                if (!sluice_cli_option_int ("model-server", "load-time", optarg, 0, INT32_MAX, &load))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'i':
                if (!sluice_cli_option_int ("model-server", "infer-time", optarg, 0, INT32_MAX, &infer))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'w':
                if (!sluice_cli_option_int ("model-server", "workers", optarg, 1, 1024, &workers))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'p':
                if (!sluice_cli_option_int ("model-server", "max-pending", optarg, 1, INT32_MAX, &max_pending))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'P':
                if (!sluice_cli_option_int ("model-server", "peer-max-pending", optarg, 1, INT32_MAX,
                                            &peer_max_pending))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'd':
                if (!sluice_cli_option_int ("model-server", "drain-timeout", optarg, 0, INT32_MAX, &drain))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'v': sluice_log_set_verbose (true); break;
            case 'h': s_model_server_usage (stdout); return SLUICE_EXIT_OK;
            default:
                if (sluice_cli_curve_option (&curve, option, optarg))
                    break;
                return sluice_cli_bad_option ("model-server", argc, argv);
        }
    }
    if (optind < argc)
        return sluice_cli_usage_error ("model-server", "unexpected argument '%s'", argv [optind]);
    if (!opts.endpoint)
        return sluice_cli_usage_error ("model-server", "--bind ENDPOINT is required");
    if (sluice_cli_curve_server ("model-server", &curve) != SLUICE_EXIT_OK)
        return SLUICE_EXIT_USAGE;
    opts.curve = sluice_cli_curve_get (&curve);
    opts.sim.load_ms = (int) load;
    opts.sim.infer_ms = (int) infer;
    opts.sim.token_ms = (int) token;
    opts.window = (size_t) window;
    if (exec.load_command && !exec.command)
        return sluice_cli_usage_error ("model-server", "--load-exec needs --exec");
    if (exec.command) {
        exec_model.name = opts.sim.name ? opts.sim.name : "exec";
        opts.model = &exec_model;
    }
    opts.workers = (size_t) workers;
    opts.max_pending = (size_t) max_pending;
    opts.peer_max_pending = (size_t) peer_max_pending;
    int signals = sluice_cli_server_init ();
    if (signals == -1) {
        fprintf (stderr, "sluice model-server: cannot take signals: %s\n", strerror (errno));
        return SLUICE_EXIT_ERROR;
    }
    sluice_err_t err;
    sluice_model_server_t *server = sluice_model_server_new (&opts, &err);
    if (!server) {
        close (signals);
        if (err == SLUICE_EINVAL && opts.curve)
            return s_start_failed ("model-server", err, opts.endpoint);
        return sluice_cli_fail ("model-server", err, NULL, "cannot start on %s%s%s",
                                opts.endpoint, opts.events_endpoint ? " / " : "",
                                opts.events_endpoint ? opts.events_endpoint : "");
    }
    s_print_listening (sluice_model_server_endpoint (server),
                       sluice_model_server_events_endpoint (server), &curve);

    //  Serve until a signal, or until a client has shut the server down and it has stopped.
    int exit_code = SLUICE_EXIT_OK;
    err = s_wait_stopped (signals, server, INT64_MAX);
    if (err == SLUICE_EINTR) {
        err = sluice_model_server_shutdown (server);
        if (err == SLUICE_OK)
            err = s_wait_stopped (signals, server, zclock_mono () + drain);
        if (err == SLUICE_EINTR) {
            fprintf (stderr, "sluice model-server: second signal: stopping without draining\n");
            exit_code = SLUICE_EXIT_ERROR;
        }
        else
        if (err == SLUICE_ETIMEOUT)
            exit_code = sluice_cli_fail ("model-server", err, NULL,
                                         "requests in flight did not complete within %ld ms", drain);
    }
    if (err != SLUICE_OK && exit_code == SLUICE_EXIT_OK)
        exit_code = sluice_cli_fail ("model-server", err, NULL, "waiting for the server to stop");
    sluice_model_server_destroy (&server);
    close (signals);
    return exit_code;
}

// ---------------------------------------------------------------------------------------------
//  stage

//  Its per-connection CURVE options
enum {
    S_OPT_INPUT_CERT = 0x200,
    S_OPT_INPUT_KEY,
    S_OPT_OUTPUT_CERT,
    S_OPT_OUTPUT_KEY
};

static void
s_stage_usage (FILE *out)
{
    fprintf (out,
        "usage: sluice stage --input ENDPOINT --output ENDPOINT --transform NAME [options]\n"
        "       sluice stage --input ENDPOINT --output ENDPOINT --exec COMMAND [--lines] [options]\n"
        "Run a transform stage: read the buffer at --input, transform each chunk, write it to\n"
        "the buffer at --output. At the end of the input (closed and drained, or a final chunk)\n"
        "the output is closed and the process exits. SIGINT/SIGTERM stop it at once, leaving\n"
        "the output open. Every transform is chunk-invariant: however the input was cut into\n"
        "chunks, the output's text is the same.\n"
        "  -i, --input ENDPOINT    the buffer read (required)\n"
        "  -o, --output ENDPOINT   the buffer written (required)\n"
        "  -x, --transform NAME    %s\n"
        "  -W, --word WORD         mask, stop: a word to mask, a string to stop at (repeat)\n"
        "  -m, --max-bytes N       sentences: longer ones are cut into clauses (default %d)\n"
        "  -e, --exec COMMAND      instead of a transform: run `sh -c COMMAND`, chunks to its\n"
        "                          stdin, its stdout back as chunks (as read); its stderr and\n"
        "                          a non-zero exit status are reported as an error\n"
        "  -l, --lines             with --exec: one chunk per line of its stdout\n"
        "  -k, --keep-open         do not close the output at the end of the input\n"
        "  -h, --help\n"
        SLUICE_CLI_CURVE_CLIENT_HELP
        "  Both apply to the input and the output connection; per connection:\n"
        "      --input-curve-server-key KEY|FILE, --input-curve-cert FILE\n"
        "      --output-curve-server-key KEY|FILE, --output-curve-cert FILE\n"
        "Exit: 0 input ended and output closed, 1 error, 2 usage, 4 the output was closed\n"
        "under the stage; a signal: 0.\n", sluice_stage_transform_names (), SLUICE_STAGE_SENTENCE_BYTES);
}

int
sluice_cli_stage (int argc, char **argv)
{
    static const struct option options [] = {
        { "input",     required_argument, NULL, 'i' },
        { "output",    required_argument, NULL, 'o' },
        { "transform", required_argument, NULL, 'x' },
        { "word",      required_argument, NULL, 'W' },
        { "max-bytes", required_argument, NULL, 'm' },
        { "exec",      required_argument, NULL, 'e' },
        { "lines",     no_argument,       NULL, 'l' },
        { "keep-open", no_argument,       NULL, 'k' },
        { "help",      no_argument,       NULL, 'h' },
        SLUICE_CLI_CURVE_CLIENT_OPTIONS
        { "input-curve-cert",        required_argument, NULL, S_OPT_INPUT_CERT },
        { "input-curve-server-key",  required_argument, NULL, S_OPT_INPUT_KEY },
        { "output-curve-cert",       required_argument, NULL, S_OPT_OUTPUT_CERT },
        { "output-curve-server-key", required_argument, NULL, S_OPT_OUTPUT_KEY },
        { NULL, 0, NULL, 0 }
    };
    sluice_stage_opts_t opts;
    memset (&opts, 0, sizeof opts);
    //  Settings for both connections, and per connection (which win)
    sluice_cli_curve_t both, input, output;
    memset (&both, 0, sizeof both);
    memset (&input, 0, sizeof input);
    memset (&output, 0, sizeof output);
    const sluice_stage_transform_t *transform = NULL;
    //  At most argc words: the list is NULL-terminated
    const char **words = (const char **) calloc ((size_t) argc + 1, sizeof (char *));
    size_t word_count = 0;
    const char *max_bytes = NULL;
    int option, exit_code = SLUICE_EXIT_OK;
    while (exit_code == SLUICE_EXIT_OK
       &&  (option = getopt_long (argc, argv, "i:o:x:W:m:e:lkh", options, NULL)) != -1) {
        switch (option) {
            case 'i': opts.input = optarg; break;
            case 'o': opts.output = optarg; break;
            case 'W': words [word_count++] = optarg; break;
            case 'm': max_bytes = optarg; break;
            case 'e': opts.exec = optarg; break;
            case 'l': opts.exec_lines = true; break;
            case 'k': opts.keep_output_open = true; break;
            case 'x':
                transform = sluice_stage_transform_find (optarg);
                if (!transform)
                    exit_code = sluice_cli_usage_error ("stage", "unknown transform '%s' (one of %s)",
                                                        optarg, sluice_stage_transform_names ());
                break;
            case 'h': s_stage_usage (stdout); free (words); return SLUICE_EXIT_OK;
            case S_OPT_INPUT_CERT:  input.cert = optarg; break;
            case S_OPT_INPUT_KEY:   input.server_key = optarg; break;
            case S_OPT_OUTPUT_CERT: output.cert = optarg; break;
            case S_OPT_OUTPUT_KEY:  output.server_key = optarg; break;
            default:
                if (!sluice_cli_curve_option (&both, option, optarg))
                    exit_code = sluice_cli_bad_option ("stage", argc, argv);
                break;
        }
    }
    if (exit_code == SLUICE_EXIT_OK) {
        //  The common certificate goes where there is a server key: the other side may be plain
        sluice_cli_curve_t *sides [2] = { &input, &output };
        const char *names [2] = { "--input-", "--output-" };
        for (int side = 0; side < 2 && exit_code == SLUICE_EXIT_OK; side++) {
            if (!sides [side]->server_key)
                sides [side]->server_key = both.server_key;
            if (!sides [side]->cert && sides [side]->server_key)
                sides [side]->cert = both.cert;
            char why [512];
            if (!sluice_cli_curve_client_check (sides [side], names [side], why, sizeof why))
                exit_code = sluice_cli_usage_error ("stage", "%s", why);
        }
        if (exit_code == SLUICE_EXIT_OK && both.cert && !input.server_key && !output.server_key)
            exit_code = sluice_cli_usage_error ("stage", "--curve-cert needs a server key: "
                                                "--curve-server-key, or --input-/--output-curve-server-key");
        opts.input_curve = sluice_cli_curve_get (&input);
        opts.output_curve = sluice_cli_curve_get (&output);
    }
    if (exit_code == SLUICE_EXIT_OK) {
        if (optind < argc)
            exit_code = sluice_cli_usage_error ("stage", "unexpected argument '%s'", argv [optind]);
        else
        if (!opts.input || !opts.output || !transform == !opts.exec)
            exit_code = sluice_cli_usage_error ("stage", "--input, --output and one of --transform "
                                                "and --exec are required");
        else
        if (opts.exec && (word_count || max_bytes))
            exit_code = sluice_cli_usage_error ("stage", "--word and --max-bytes are for transforms, "
                                                "not --exec");
        else
        if (opts.exec_lines && !opts.exec)
            exit_code = sluice_cli_usage_error ("stage", "--lines is for --exec");
    }
    //  The table's rules, as pipeline files apply them
    long option_value = 0;
    if (exit_code == SLUICE_EXIT_OK && max_bytes
    &&  !sluice_cli_parse_long (max_bytes, 0, LONG_MAX, &option_value))
        exit_code = sluice_cli_usage_error ("stage", "--max-bytes: '%s' is not a number", max_bytes);
    const char *why = exit_code == SLUICE_EXIT_OK && transform
        ? sluice_stage_transform_check (transform, words, max_bytes ? "max-bytes" : NULL,
                                        (size_t) option_value) : NULL;
    if (why)
        exit_code = sluice_cli_usage_error ("stage", "%s", why);
    if (exit_code != SLUICE_EXIT_OK) {
        free (words);
        return exit_code;
    }
    size_t option_size = max_bytes ? (size_t) option_value
                       : transform ? transform->option_default : 0;
    if (transform) {
        opts.transform = transform->fn;
        opts.user = transform->takes_words ? (void *) words
                  : transform->option ? (void *) &option_size : NULL;
    }

    int signals = sluice_cli_server_init ();
    if (signals == -1) {
        fprintf (stderr, "sluice stage: cannot take signals: %s\n", strerror (errno));
        free (words);
        return SLUICE_EXIT_ERROR;
    }
    sluice_err_t err;
    sluice_stage_t *stage = sluice_stage_new (&opts, &err);
    if (!stage)
        exit_code = sluice_cli_fail ("stage", err, NULL, "cannot start (%s -> %s)", opts.input, opts.output);
    else {
        while ((err = sluice_stage_wait (stage, 0)) == SLUICE_ETIMEOUT)
            if (sluice_cli_wait (signals, sluice_stage_actor_handle (stage), INT64_MAX) != 0)
                break;      //  a signal: stop now
        if (err != SLUICE_OK && err != SLUICE_ETIMEOUT) {
            exit_code = sluice_cli_fail ("stage", err, sluice_stage_error_text (stage),
                                         "%s -> %s", opts.input, opts.output);
            sluice_cli_curve_hint ("stage", opts.input_curve ? opts.input_curve
                                                             : opts.output_curve, err);
        }
        sluice_stage_destroy (&stage);
    }
    close (signals);
    free (words);
    return exit_code;
}
