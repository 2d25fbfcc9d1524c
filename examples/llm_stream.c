/*  llm_stream - the streaming response buffer scenario.

    An LLM token stream (a writer actor) feeds a bounded buffer actor; a slower text-to-speech
    stage (a reader actor) consumes it. With a small capacity the writer is held back by
    backpressure until the reader catches up; every token still arrives, in order.

        llm_stream [-c capacity] [-d token_delay_ms] [-p process_ms] [-e endpoint] [-t token]...
*/
#include <sluice.h>
#include <czmq.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS 256

typedef struct {
    char *received [MAX_TOKENS];
    size_t count;
} spoken_t;

static void
s_on_write (void *user, size_t index, const char *text, size_t size, bool was_parked,
            double waited_ms)
{
    if (was_parked)
        printf ("  (writer held back %.0f ms by backpressure before '%s' was accepted)\n",
                waited_ms, text);
}

static bool
s_on_chunk (void *user, size_t index, const char *text, size_t size)
{
    spoken_t *spoken = (spoken_t *) user;
    printf ("Speaking: '%s'\n", text);
    fflush (stdout);
    if (spoken->count < MAX_TOKENS)
        spoken->received [spoken->count++] = strdup (text);
    return true;
}

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: llm_stream [options]\n"
        "  -c, --capacity N     buffer capacity in chunks (default 3)\n"
        "  -d, --delay MS       delay between tokens from the LLM (default 50)\n"
        "  -p, --process MS     time the TTS stage spends on each chunk (default 150)\n"
        "  -e, --endpoint URL   buffer endpoint (default inproc://llm-stream; tcp://127.0.0.1:5555 works too)\n"
        "  -t, --token TEXT     a token (repeat; default: Hello, ' world', !, ' How', ' are', ' you?')\n"
        "  -h, --help\n");
}

int
main (int argc, char *argv [])
{
    static const char *default_tokens [] = { "Hello", " world", "!", " How", " are", " you?" };
    const char *tokens [MAX_TOKENS];
    size_t token_count = 0;
    size_t capacity = 3;
    int delay_ms = 50, process_ms = 150;
    const char *endpoint = "inproc://llm-stream";

    static struct option options [] = {
        { "capacity", required_argument, 0, 'c' }, { "delay", required_argument, 0, 'd' },
        { "process", required_argument, 0, 'p' },  { "endpoint", required_argument, 0, 'e' },
        { "token", required_argument, 0, 't' },    { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    int option;
    while ((option = getopt_long (argc, argv, "c:d:p:e:t:h", options, NULL)) != -1) {
        switch (option) {
            case 'c': capacity = (size_t) atol (optarg); break;
            case 'd': delay_ms = atoi (optarg); break;
            case 'p': process_ms = atoi (optarg); break;
            case 'e': endpoint = optarg; break;
            case 't':
                if (token_count == MAX_TOKENS) {
                    fprintf (stderr, "llm_stream: at most %d tokens\n", MAX_TOKENS);
                    return 2;
                }
                tokens [token_count++] = optarg;
                break;
            case 'h': s_usage (stdout); return 0;
            default:  s_usage (stderr); return 2;
        }
    }
    if (capacity < 1 || delay_ms < 0 || process_ms < 0) {
        fprintf (stderr, "llm_stream: capacity must be >= 1 and delays >= 0\n");
        return 2;
    }
    if (token_count == 0) {
        token_count = sizeof default_tokens / sizeof default_tokens [0];
        memcpy (tokens, default_tokens, sizeof default_tokens);
    }

    int64_t start = zclock_usecs ();
    sluice_err_t err;
    sluice_buffer_t *buffer = sluice_buffer_new (
        &(sluice_buffer_opts_t) { .endpoint = endpoint, .capacity = capacity }, &err);
    if (!buffer) {
        fprintf (stderr, "llm_stream: cannot start the buffer at %s: %s\n", endpoint, sluice_strerror (err));
        return 1;
    }
    printf ("Buffer of capacity %zu at %s; %zu tokens %d ms apart; TTS takes %d ms per chunk\n",
            capacity, sluice_buffer_endpoint (buffer), token_count, delay_ms, process_ms);

    spoken_t spoken = { .count = 0 };
    sluice_reader_t *tts = sluice_reader_new (&(sluice_reader_opts_t) {
        .endpoint = sluice_buffer_endpoint (buffer), .process_ms = process_ms,
        .on_chunk = s_on_chunk, .user = &spoken }, &err);
    sluice_writer_t *llm = sluice_writer_new (&(sluice_writer_opts_t) {
        .endpoint = sluice_buffer_endpoint (buffer), .tokens = tokens, .token_count = token_count,
        .delay_ms = delay_ms, .close_at_end = true, .on_write = s_on_write }, &err);
    if (!tts || !llm) {
        fprintf (stderr, "llm_stream: cannot start the actors: %s\n", sluice_strerror (err));
        return 1;
    }
    sluice_err_t wrote = sluice_writer_wait (llm, SLUICE_FOREVER);
    sluice_err_t spoke = sluice_reader_wait (tts, SLUICE_FOREVER);
    double elapsed = (double) (zclock_usecs () - start) / 1e6;

    bool in_order = spoken.count == token_count;
    for (size_t index = 0; in_order && index < token_count; index++)
        in_order = streq (spoken.received [index], tokens [index]);
    if (wrote != SLUICE_OK || spoke != SLUICE_OK)
        printf ("Errors: writer: %s, reader: %s\n", sluice_strerror (wrote), sluice_strerror (spoke));
    printf ("%s: %zu of %zu tokens delivered%s\n", in_order ? "OK" : "FAILED", spoken.count,
            token_count, in_order ? " in order" : " (missing or out of order)");
    printf ("Total time: %.2fs\n", elapsed);

    for (size_t index = 0; index < spoken.count; index++)
        free (spoken.received [index]);
    sluice_writer_destroy (&llm);
    sluice_reader_destroy (&tts);
    sluice_buffer_destroy (&buffer);
    return in_order && wrote == SLUICE_OK && spoke == SLUICE_OK ? 0 : 1;
}
