/*  cli_run.c - `sluice run FILE`: a pipeline file (docs/PIPELINES.md), run by the library's
    pipeline runtime (sluice_pipeline.h) until it ends or a signal asks it to.
*/
#include "cli.h"

static void
s_run_usage (FILE *out)
{
    fprintf (out,
        "usage: sluice run [options] PIPELINE-FILE\n"
        "Run the pipeline described in PIPELINE-FILE (ZPL, see docs/PIPELINES.md): its buffers,\n"
        "writers, stages and readers, in this process. A buffer whose endpoint names another\n"
        "host runs elsewhere: the actors here connect to it.\n"
        "The run ends when every reader has reached the end of its stream (a file without\n"
        "readers: when its writers and stages are done and its buffers drained). On SIGINT or\n"
        "SIGTERM the writers stop and the buffers started here are closed: stages and readers\n"
        "drain what is queued, then the run exits (0); a second signal stops at once.\n"
        "  -d, --drain-timeout MS  how long the end may take once it has begun (default %d)\n"
        "  -v, --verbose           say on stderr where each buffer is\n"
        "  -h, --help\n"
        "CURVE (the file can say all this per buffer and actor: docs/PIPELINES.md); defaults:\n"
        "      --curve-cert FILE   this process's certificate (the *_secret file): for the\n"
        "                          buffers started here on tcp:// or ipc://, and for the\n"
        "                          writers, stages and readers connecting with CURVE\n"
        "      --curve-allow DIR   those buffers accept only clients whose public\n"
        "                          certificates are in DIR ...\n"
        "      --curve-encrypt-only  ... or any client key (encryption, no authentication)\n"
        "      --curve-server-key KEY|FILE  the key of the buffers running elsewhere\n"
        "Exit: 0 every reader reached end of stream and nothing failed, 1 an actor failed,\n"
        "2 usage or invalid file, 3 the end took longer than --drain-timeout, 4 a writer or\n"
        "stage met a buffer closed under it.\n", SLUICE_PIPELINE_DRAIN_MS);
}

//  Print the pipeline's error lines, each as "sluice run: LINE"; returns exit_code.
static int
s_report (sluice_pipeline_t *pipeline, int exit_code)
{
    const char *text = sluice_pipeline_error_text (pipeline);
    while (*text) {
        const char *end = strchr (text, '\n');
        int length = end ? (int) (end - text) : (int) strlen (text);
        fprintf (stderr, "sluice run: %.*s\n", length, text);
        text += length + (end ? 1 : 0);
    }
    return exit_code;
}

//  Wait for the end of the run; the first signal ends it gracefully, a second at once.
static int
s_wait (sluice_pipeline_t *pipeline, int signals)
{
    bool stopping = false;
    while (true) {
        int signal = sluice_cli_wait (signals, sluice_pipeline_actor_handle (pipeline), INT64_MAX);
        if (signal == 0) {
            sluice_err_t result = sluice_pipeline_wait (pipeline, 0);
            if (sluice_pipeline_finished (pipeline))
                return s_report (pipeline, sluice_cli_exit_code (result));
        }
        else
        if (signal > 0 && stopping) {
            fprintf (stderr, "sluice run: signal while ending: stopping without waiting\n");
            return SLUICE_EXIT_ERROR;
        }
        else
        if (signal > 0) {
            //  Like `sluice buffer`: writers stop, our buffers close, readers drain them
            stopping = true;
            sluice_pipeline_stop (pipeline);
        }
    }
}

int
sluice_cli_run (int argc, char **argv)
{
    static const struct option options [] = {
        { "drain-timeout", required_argument, NULL, 'd' },
        { "verbose",       no_argument,       NULL, 'v' },
        { "help",          no_argument,       NULL, 'h' },
        SLUICE_CLI_CURVE_SERVER_OPTIONS
        { "curve-server-key", required_argument, NULL, SLUICE_CLI_OPT_CURVE_SERVER_KEY },
        { NULL, 0, NULL, 0 }
    };
    sluice_cli_curve_t defaults;
    memset (&defaults, 0, sizeof defaults);
    long drain = -1;
    bool verbose = false;
    int option;
    while ((option = getopt_long (argc, argv, "d:vh", options, NULL)) != -1) {
        switch (option) {
            case 'd':
                if (!sluice_cli_option_int ("run", "drain-timeout", optarg, 0, INT32_MAX, &drain))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'v': verbose = true; break;
            case 'h': s_run_usage (stdout); return SLUICE_EXIT_OK;
            default:
                if (sluice_cli_curve_option (&defaults, option, optarg))
                    break;
                return sluice_cli_bad_option ("run", argc, argv);
        }
    }
    if (argc - optind != 1)
        return sluice_cli_usage_error ("run", "one PIPELINE-FILE expected");
    if (defaults.allow && defaults.encrypt_only)
        return sluice_cli_usage_error ("run", "--curve-allow and --curve-encrypt-only exclude "
                                       "each other: authenticate clients, or accept any");
    if ((defaults.allow || defaults.encrypt_only) && !defaults.cert)
        return sluice_cli_usage_error ("run", "--curve-%s needs --curve-cert (the certificate "
                                       "of the buffers started here)",
                                       defaults.allow ? "allow" : "encrypt-only");
    sluice_pipeline_t *pipeline = sluice_pipeline_new ();
    if (!pipeline)
        return sluice_cli_fail ("run", SLUICE_ENOMEM, NULL, "starting");
    int signals = -1, exit_code = SLUICE_EXIT_OK;
    sluice_curve_t curve = { .cert = defaults.cert, .allow = defaults.allow,
                             .encrypt_only = defaults.encrypt_only,
                             .server_key = defaults.server_key };
    if (sluice_pipeline_set_curve (pipeline, &curve) != SLUICE_OK)
        exit_code = sluice_cli_usage_error ("run", "%s", sluice_pipeline_error_text (pipeline));
    if (exit_code == SLUICE_EXIT_OK) {
        sluice_pipeline_set_log (pipeline, verbose ? stderr : NULL);
        if (drain >= 0)
            sluice_pipeline_set_drain_timeout (pipeline, (int) drain);
        sluice_err_t err = sluice_pipeline_load (pipeline, argv [optind]);
        if (err != SLUICE_OK)
            exit_code = s_report (pipeline, err == SLUICE_EINVAL ? SLUICE_EXIT_USAGE
                                                                 : sluice_cli_exit_code (err));
    }
    //  Signals are taken before any thread starts, so that every thread inherits the mask
    if (exit_code == SLUICE_EXIT_OK && (signals = sluice_cli_server_init ()) == -1) {
        fprintf (stderr, "sluice run: cannot take signals: %s\n", strerror (errno));
        exit_code = SLUICE_EXIT_ERROR;
    }
    if (exit_code == SLUICE_EXIT_OK) {
        sluice_err_t err = sluice_pipeline_start (pipeline);
        exit_code = err == SLUICE_OK ? s_wait (pipeline, signals)
                                     : s_report (pipeline, sluice_cli_exit_code (err));
    }
    sluice_pipeline_destroy (&pipeline);
    if (signals != -1)
        close (signals);
    return exit_code;
}
