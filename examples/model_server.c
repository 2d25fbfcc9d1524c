/*  model_server - the model-server readiness scenario (the seed's verification).

    A model server starts loading its model (--load-time ms). Meanwhile N requests are sent,
    each from its own thread with its own client: they park at the server. When the model is
    ready, all of them are dispatched at once to the workers and processed concurrently, so
    the total is about load + one inference (2.1 s), not load + N inferences (2.5 s).
    A request sent after the model is ready would go straight to a worker.

        model_server [-n requests] [--load-time MS] [--infer-time MS] [--workers N]
                     [--fail REASON] [--shutdown-after MS] [--endpoint URL] [--model NAME]

    The model is the simulated one, wrapped to print what the seed prints: "Model loading..."
    when its load starts, "Model ready!" when it ends, "Processing request <i>" when a worker
    starts inferring request i.
*/
#include <sluice.h>
#include <czmq.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REQUESTS 1000

//  The model: the simulated one plus the seed's prints
static sluice_err_t
s_load (sluice_model_ctx_t *ctx, void *config, void **model, char *reason, size_t reason_size)
{
    printf ("Model loading...\n");
    fflush (stdout);
    sluice_err_t rc = sluice_model_sim_load (ctx, config, model, reason, reason_size);
    if (rc == SLUICE_OK)
        printf ("Model ready!\n");
    else
    if (sluice_model_cancelled (ctx))
        printf ("Model load cancelled: the server is shutting down\n");
    else
        printf ("Model failed to load: %s\n", reason);
    fflush (stdout);
    return rc;
}

static sluice_err_t
s_infer (sluice_model_ctx_t *ctx, void *config, void *model, const void *payload, size_t size,
         char **response, size_t *response_size)
{
    //  The server hands us a NUL-terminated payload
    printf ("Processing request %s\n", (const char *) payload);
    fflush (stdout);
    return sluice_model_sim_infer (ctx, config, model, payload, size, response, response_size);
}

typedef struct {
    const char *endpoint;
    int index;
    sluice_err_t rc;
    char error [256];
} request_t;

static void *
s_request_thread (void *arg)
{
    request_t *request = (request_t *) arg;
    //  Clients are not thread-safe: one per thread
    sluice_model_client_t *client = sluice_model_client_new (request->endpoint);
    if (!client) {
        request->rc = SLUICE_EINVAL;
        snprintf (request->error, sizeof request->error, "cannot connect");
        return NULL;
    }
    char payload [16], *response = NULL;
    snprintf (payload, sizeof payload, "%d", request->index);
    request->rc = sluice_model_client_request (client, payload, strlen (payload), &response);
    if (request->rc == SLUICE_OK)
        printf ("%s\n", response);
    else {
        //  The server's text says why (the load's reason, the shutdown)
        const char *text = sluice_model_client_error_text (client);
        snprintf (request->error, sizeof request->error, "%s",
                  *text ? text : sluice_strerror (request->rc));
        printf ("Request %d failed: %s\n", request->index, request->error);
    }
    fflush (stdout);
    free (response);
    sluice_model_client_destroy (&client);
    return NULL;
}

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: model_server [options]\n"
        "  -n, --requests N        requests sent while the model loads (default 5)\n"
        "  -l, --load-time MS      model load time (default 2000)\n"
        "  -i, --infer-time MS     inference time per request (default 100)\n"
        "  -w, --workers N         inference workers (default: one per request)\n"
        "  -f, --fail REASON       make the load fail: every request reports REASON\n"
        "  -s, --shutdown-after MS shut the server down gracefully after MS\n"
        "  -e, --endpoint URL      server endpoint (default inproc://model-server;\n"
        "                          tcp://127.0.0.1:5560 works the same)\n"
        "  -m, --model NAME        model name (default sim-model)\n"
        "  -h, --help\n");
}

int
main (int argc, char *argv [])
{
    int requests = 5, load_ms = 2000, infer_ms = 100, workers = 0, shutdown_after = -1;
    const char *fail = NULL, *endpoint = "inproc://model-server", *name = "sim-model";
    static const struct option options [] = {
        { "requests",       required_argument, NULL, 'n' },
        { "load-time",      required_argument, NULL, 'l' },
        { "infer-time",     required_argument, NULL, 'i' },
        { "workers",        required_argument, NULL, 'w' },
        { "fail",           required_argument, NULL, 'f' },
        { "shutdown-after", required_argument, NULL, 's' },
        { "endpoint",       required_argument, NULL, 'e' },
        { "model",          required_argument, NULL, 'm' },
        { "help",           no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int option;
    while ((option = getopt_long (argc, argv, "n:l:i:w:f:s:e:m:h", options, NULL)) != -1) {
        switch (option) {
            case 'n': requests = atoi (optarg); break;
            case 'l': load_ms = atoi (optarg); break;
            case 'i': infer_ms = atoi (optarg); break;
            case 'w': workers = atoi (optarg); break;
            case 'f': fail = optarg; break;
            case 's': shutdown_after = atoi (optarg); break;
            case 'e': endpoint = optarg; break;
            case 'm': name = optarg; break;
            case 'h': s_usage (stdout); return 0;
            default:  s_usage (stderr); return 2;
        }
    }
    if (optind < argc || requests < 0 || requests > MAX_REQUESTS || load_ms < 0 || infer_ms < 0
    ||  workers < 0 || workers > 256) {
        s_usage (stderr);
        return 2;
    }
    if (workers == 0)
        workers = requests < 1 ? 1 : requests > 256 ? 256 : requests;
    zsys_set_max_sockets (4096);        //  a client per request thread, and then some

    sluice_model_sim_t sim = {
        .name = name, .load_ms = load_ms, .infer_ms = infer_ms, .fail_reason = fail
    };
    sluice_model_iface_t model = {
        .name = name, .config = &sim,
        .load = s_load, .infer = s_infer, .unload = sluice_model_sim_unload
    };
    sluice_model_server_opts_t opts = {
        .endpoint = endpoint, .model = &model, .workers = (size_t) workers
    };
    int64_t start = zclock_mono ();
    sluice_err_t err;
    sluice_model_server_t *server = sluice_model_server_new (&opts, &err);
    if (!server) {
        fprintf (stderr, "model_server: cannot start the server at %s: %s\n", endpoint,
                 sluice_strerror (err));
        return 1;
    }
    const char *bound = sluice_model_server_endpoint (server);

    request_t *request = (request_t *) calloc ((size_t) requests + 1, sizeof *request);
    pthread_t *thread = (pthread_t *) calloc ((size_t) requests + 1, sizeof *thread);
    int started = 0;
    for (int index = 0; index < requests; index++) {
        request [index] = (request_t) { .endpoint = bound, .index = index };
        if (pthread_create (&thread [index], NULL, s_request_thread, &request [index]) != 0) {
            fprintf (stderr, "model_server: cannot start thread %d\n", index);
            break;
        }
        started++;
    }
    if (shutdown_after >= 0) {
        zclock_sleep (shutdown_after);
        sluice_model_client_t *admin = sluice_model_client_new (bound);
        printf ("Shutting down...\n");
        fflush (stdout);
        if (!admin || sluice_model_client_shutdown (admin) != SLUICE_OK)
            fprintf (stderr, "model_server: shutdown failed\n");
        sluice_model_client_destroy (&admin);
    }
    int unexpected = started < requests ? 1 : 0;
    for (int index = 0; index < started; index++) {
        pthread_join (thread [index], NULL);
        sluice_err_t rc = request [index].rc;
        bool expected = rc == SLUICE_OK
                     || (rc == SLUICE_ELOADFAIL && fail)
                     || (rc == SLUICE_ESHUTDOWN && shutdown_after >= 0);
        if (!expected)
            unexpected++;
    }
    printf ("Total time: %.1fs\n", (double) (zclock_mono () - start) / 1000.0);

    //  What the server counted (STATUS is answered at once)
    sluice_model_client_t *admin = sluice_model_client_new (bound);
    sluice_model_status_t status;
    if (admin && sluice_model_client_status (admin, &status) == SLUICE_OK)
        printf ("Server %s: %llu served, %llu failed\n", sluice_model_state_name (status.state),
                (unsigned long long) status.served, (unsigned long long) status.failed);
    sluice_model_client_destroy (&admin);
    sluice_model_server_destroy (&server);
    free (request);
    free (thread);
    if (unexpected)
        fprintf (stderr, "model_server: %d request(s) failed unexpectedly\n", unexpected);
    return unexpected ? 1 : 0;
}
