/*  model_server - the model-server readiness scenario (the seed's verification).

    A model server starts loading its model (--load-time ms). Meanwhile N requests are sent,
    each from its own thread with its own client: they park at the server. When the model is
    ready, all of them are dispatched at once to the workers and processed concurrently, so
    the total is about load + one inference (2.1 s), not load + N inferences (2.5 s).
    A request sent after the model is ready would go straight to a worker.

        model_server [-n requests] [--load-time MS] [--infer-time MS] [--workers N]
                     [--fail REASON] [--shutdown-after MS] [--endpoint URL] [--model NAME]
                     [--stream [--window N] [--token-time MS] [--consume-time MS] [--cancel]]

    With --stream each request is a token stream (parked during the load too, released
    together): its client takes the tokens one by one, slower than the model makes them, so
    the model's window fills and its generator waits; each generator reports how long its
    consumer held it back. With --cancel, request 0 is cancelled after three tokens and its
    generator reports that it stopped.

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

//  A streaming inference: the words of the simulated model's text, one token each. Reports
//  how long the emits waited for the consumer (a full window), or that it was cancelled.
static sluice_err_t
s_stream (sluice_model_ctx_t *ctx, void *config, void *model, const void *payload, size_t size,
          char **reason)
{
    const sluice_model_sim_t *sim = (const sluice_model_sim_t *) config;
    printf ("Generating for request %s\n", (const char *) payload);
    fflush (stdout);
    int64_t held_us = 0;
    int tokens = 0;
    sluice_err_t rc = SLUICE_OK;
    for (const char *word = sim->text; *word && rc == SLUICE_OK; ) {
        size_t length = strcspn (word, " ");
        length += strspn (word + length, " ");
        if (tokens > 0 && !sluice_model_sleep (ctx, sim->token_ms))
            rc = SLUICE_ECLOSED;
        else {
            int64_t before = zclock_usecs ();
            rc = sluice_model_emit (ctx, word, length);
            held_us += zclock_usecs () - before;
        }
        tokens += rc == SLUICE_OK;
        word += length;
    }
    if (rc == SLUICE_ECLOSED)
        printf ("Request %s: cancelled after %d tokens: generation stopped\n",
                (const char *) payload, tokens);
    else
        printf ("Request %s: generated %d tokens, held back %.0f ms by its consumer\n",
                (const char *) payload, tokens, (double) held_us / 1000.0);
    fflush (stdout);
    return rc;
}

typedef struct {
    const char *endpoint;
    int index;
    bool stream;
    int consume_ms;                //  streams: the consumer's time per token
    bool cancel;                   //  streams: cancel after three tokens
    sluice_err_t rc;
    char error [256];
} request_t;

//  A streaming request: take the tokens one at a time, slowly
static sluice_err_t
s_stream_request (request_t *request, sluice_model_client_t *client, const char *payload)
{
    uint64_t id = 0;
    sluice_err_t rc = sluice_model_client_stream (client, payload, strlen (payload),
                                                  SLUICE_FOREVER, &id);
    char text [1024] = "";
    size_t used = 0;
    int tokens = 0;
    bool end = false;
    while (rc == SLUICE_OK && !end) {
        if (request->cancel && tokens == 3) {
            rc = sluice_model_client_cancel (client, id);
            printf ("Request %d: the client cancels after %d tokens: \"%s\"\n", request->index, tokens,
                    text);
            return rc;
        }
        size_t count = 0;
        rc = sluice_model_client_next (client, id, 1, SLUICE_FOREVER, &count, &end);
        for (size_t index = 0; rc == SLUICE_OK && index < count; index++, tokens++) {
            size_t size = 0;
            const char *token = (const char *) sluice_model_client_token (client, index, &size);
            int wrote = snprintf (text + used, sizeof text - used, "%.*s", (int) size, token);
            used += wrote > 0 && (size_t) wrote < sizeof text - used ? (size_t) wrote : 0;
            zclock_sleep (request->consume_ms);     //  a slow consumer (speech, a display)
        }
    }
    if (rc == SLUICE_OK)
        printf ("Request %d: %d tokens: \"%s\"\n", request->index, tokens, text);
    return rc;
}

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
    if (request->stream)
        request->rc = s_stream_request (request, client, payload);
    else
        request->rc = sluice_model_client_request (client, payload, strlen (payload), &response);
    if (request->rc == SLUICE_OK && !request->stream)
        printf ("%s\n", response);
    else
    if (request->rc != SLUICE_OK) {
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
        "  -S, --stream            streaming requests, taken slowly by their clients\n"
        "  -W, --window N          tokens a stream holds before its generator waits (default 4)\n"
        "  -k, --token-time MS     the model's time per token (default 10)\n"
        "  -c, --consume-time MS   the consumer's time per token (default 50)\n"
        "  -C, --cancel            cancel request 0 after three tokens\n"
        "  -h, --help\n");
}

int
main (int argc, char *argv [])
{
    int requests = 5, load_ms = 2000, infer_ms = 100, workers = 0, shutdown_after = -1;
    const char *fail = NULL, *endpoint = "inproc://model-server", *name = "sim-model";
    bool stream = false, cancel = false;
    int window = 4, token_ms = 10, consume_ms = 50;
    static const struct option options [] = {
        { "requests",       required_argument, NULL, 'n' },
        { "load-time",      required_argument, NULL, 'l' },
        { "infer-time",     required_argument, NULL, 'i' },
        { "workers",        required_argument, NULL, 'w' },
        { "fail",           required_argument, NULL, 'f' },
        { "shutdown-after", required_argument, NULL, 's' },
        { "endpoint",       required_argument, NULL, 'e' },
        { "model",          required_argument, NULL, 'm' },
        { "stream",         no_argument,       NULL, 'S' },
        { "window",         required_argument, NULL, 'W' },
        { "token-time",     required_argument, NULL, 'k' },
        { "consume-time",   required_argument, NULL, 'c' },
        { "cancel",         no_argument,       NULL, 'C' },
        { "help",           no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int option;
    while ((option = getopt_long (argc, argv, "n:l:i:w:f:s:e:m:SW:k:c:Ch", options, NULL)) != -1) {
        switch (option) {
            case 'n': requests = atoi (optarg); break;
            case 'l': load_ms = atoi (optarg); break;
            case 'i': infer_ms = atoi (optarg); break;
            case 'w': workers = atoi (optarg); break;
            case 'f': fail = optarg; break;
            case 's': shutdown_after = atoi (optarg); break;
            case 'e': endpoint = optarg; break;
            case 'm': name = optarg; break;
            case 'S': stream = true; break;
            case 'W': window = atoi (optarg); break;
            case 'k': token_ms = atoi (optarg); break;
            case 'c': consume_ms = atoi (optarg); break;
            case 'C': cancel = true; break;
            case 'h': s_usage (stdout); return 0;
            default:  s_usage (stderr); return 2;
        }
    }
    if (optind < argc || requests < 0 || requests > MAX_REQUESTS || load_ms < 0 || infer_ms < 0
    ||  workers < 0 || workers > 256 || window < 1 || window > SLUICE_MODEL_MAX_WINDOW
    ||  token_ms < 0 || consume_ms < 0) {
        s_usage (stderr);
        return 2;
    }
    if (workers == 0)
        workers = requests < 1 ? 1 : requests > 256 ? 256 : requests;
    zsys_set_max_sockets (4096);        //  a client per request thread, and then some

    sluice_model_sim_t sim = {
        .name = name, .load_ms = load_ms, .infer_ms = infer_ms, .fail_reason = fail,
        .text = "Streams pause the model while the listener is behind, and stop it on a cancel.",
        .token_ms = token_ms,
    };
    sluice_model_iface_t model = {
        .name = name, .config = &sim,
        .load = s_load, .infer = s_infer, .unload = sluice_model_sim_unload, .stream = s_stream
    };
    sluice_model_server_opts_t opts = {
        .endpoint = endpoint, .model = &model, .workers = (size_t) workers,
        .window = (size_t) window
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
        request [index] = (request_t) { .endpoint = bound, .index = index, .stream = stream,
                                        .consume_ms = consume_ms,
                                        .cancel = stream && cancel && index == 0 };
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
        printf ("Server %s: %llu served, %llu failed; %llu tokens generated, %llu delivered, "
                "%llu stream(s) cancelled\n", sluice_model_state_name (status.state),
                (unsigned long long) status.served, (unsigned long long) status.failed,
                (unsigned long long) status.generated, (unsigned long long) status.delivered,
                (unsigned long long) status.cancelled);
    sluice_model_client_destroy (&admin);
    sluice_model_server_destroy (&server);
    free (request);
    free (thread);
    if (unexpected)
        fprintf (stderr, "model_server: %d request(s) failed unexpectedly\n", unexpected);
    return unexpected ? 1 : 0;
}
