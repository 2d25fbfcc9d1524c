/*  race_scenarios.c - the concurrent paths of sluice, for ThreadSanitizer (`make tsan`).

    Criterion cannot run under TSan (its inheritable arena fails to map: Criterion issue 274),
    so this plain program drives the same concurrency the Criterion suites prove correct:
    several writers and readers through one buffer (synchronous and pipelined/batched), close
    waking parked writers and readers, the writer and reader actors, and the model server
    releasing parked requests to its workers. Each scenario checks its outcome; any failed
    check or TSan report makes the run fail.
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <czmq.h>
#include "sluice.h"

#define CHECK(cond) do { if (!(cond)) { fprintf (stderr, "%s:%d: check failed: %s\n", \
                                                 __FILE__, __LINE__, #cond); exit (1); } } while (0)

#define WRITERS 3
#define READERS 3
#define PER_WRITER 500

typedef struct {
    const char *endpoint;
    int id;
    size_t window, batch;
    size_t received;
    size_t seen [WRITERS];          //  next expected sequence per writer (order check)
    sluice_err_t rc;
} s_role_t;

static void *
s_writer (void *arg)
{
    s_role_t *role = (s_role_t *) arg;
    sluice_stream_t *stream = sluice_stream_new (role->endpoint);
    CHECK (stream);
    sluice_stream_set_window (stream, role->window);
    char text [32];
    for (int seq = 0; seq < PER_WRITER; seq++) {
        snprintf (text, sizeof text, "%d:%d", role->id, seq);
        role->rc = sluice_stream_write (stream, text, strlen (text), false);
        CHECK (role->rc == SLUICE_OK);
    }
    role->rc = sluice_stream_flush (stream);
    CHECK (role->rc == SLUICE_OK);
    sluice_stream_destroy (&stream);
    return NULL;
}

static void *
s_reader (void *arg)
{
    s_role_t *role = (s_role_t *) arg;
    sluice_stream_t *stream = sluice_stream_new (role->endpoint);
    CHECK (stream);
    sluice_stream_set_batch (stream, role->batch);
    sluice_chunk_t chunk;
    while (sluice_stream_next (stream, &chunk)) {
        int writer, seq;
        CHECK (sscanf (chunk.text, "%d:%d", &writer, &seq) == 2);
        CHECK (writer >= 0 && writer < WRITERS);
        CHECK ((size_t) seq >= role->seen [writer]);       //  each writer's order holds
        role->seen [writer] = (size_t) seq + 1;
        role->received++;
    }
    role->rc = sluice_stream_error (stream);
    sluice_stream_destroy (&stream);
    return NULL;
}

static void
s_many_to_many (const char *endpoint, size_t capacity, size_t window, size_t batch)
{
    sluice_buffer_t *buffer = sluice_buffer_new (&(sluice_buffer_opts_t) {
        .endpoint = endpoint, .capacity = capacity }, NULL);
    CHECK (buffer);
    pthread_t threads [WRITERS + READERS];
    s_role_t roles [WRITERS + READERS];
    memset (roles, 0, sizeof roles);
    for (int index = 0; index < WRITERS + READERS; index++) {
        roles [index] = (s_role_t) { .endpoint = endpoint, .id = index % WRITERS,
                                     .window = window, .batch = batch };
        pthread_create (&threads [index], NULL, index < WRITERS ? s_writer : s_reader, &roles [index]);
    }
    for (int index = 0; index < WRITERS; index++)
        pthread_join (threads [index], NULL);
    sluice_stream_t *closer = sluice_stream_new (endpoint);
    CHECK (sluice_stream_close (closer) == SLUICE_OK);
    size_t total = 0;
    for (int index = WRITERS; index < WRITERS + READERS; index++) {
        pthread_join (threads [index], NULL);
        CHECK (roles [index].rc == SLUICE_OK);
        total += roles [index].received;
    }
    CHECK (total == WRITERS * PER_WRITER);          //  exactly once, nothing lost
    sluice_stream_destroy (&closer);
    sluice_buffer_destroy (&buffer);
    printf ("many-to-many capacity %zu window %zu batch %zu: %zu chunks\n", capacity, window,
            batch, total);
}

static void *
s_parked_write (void *arg)
{
    s_role_t *role = (s_role_t *) arg;
    sluice_stream_t *stream = sluice_stream_new (role->endpoint);
    role->rc = sluice_stream_write_str (stream, "parked");
    sluice_stream_destroy (&stream);
    return NULL;
}

static void *
s_parked_read (void *arg)
{
    s_role_t *role = (s_role_t *) arg;
    sluice_stream_t *stream = sluice_stream_new (role->endpoint);
    sluice_chunk_t chunk;
    role->rc = sluice_stream_read (stream, &chunk);
    role->received = chunk.is_eos;
    sluice_stream_destroy (&stream);
    return NULL;
}

//  Wait (on status replies) until the buffer reports the parked counts.
static void
s_wait_parked (sluice_stream_t *probe, size_t writers, size_t readers)
{
    sluice_buffer_status_t status;
    int64_t deadline = zclock_mono () + 30000;
    do {
        CHECK (sluice_stream_status (probe, &status) == SLUICE_OK);
        CHECK (zclock_mono () < deadline);
    } while (status.parked_writers != writers || status.parked_readers != readers);
}

static void
s_close_wakes_all (void)
{
    const char *full = "inproc://race-close-full", *empty = "inproc://race-close-empty";
    sluice_buffer_t *writers_buffer = sluice_buffer_new (&(sluice_buffer_opts_t) {
        .endpoint = full, .capacity = 1 }, NULL);
    sluice_buffer_t *readers_buffer = sluice_buffer_new (&(sluice_buffer_opts_t) {
        .endpoint = empty, .capacity = 1 }, NULL);
    sluice_stream_t *filler = sluice_stream_new (full);
    CHECK (sluice_stream_write_str (filler, "fill") == SLUICE_OK);
    pthread_t threads [8];
    s_role_t roles [8];
    for (int index = 0; index < 8; index++) {
        roles [index] = (s_role_t) { .endpoint = index < 4 ? full : empty, .rc = SLUICE_EINTERNAL };
        pthread_create (&threads [index], NULL, index < 4 ? s_parked_write : s_parked_read, &roles [index]);
    }
    sluice_stream_t *empty_probe = sluice_stream_new (empty);
    s_wait_parked (filler, 4, 0);
    s_wait_parked (empty_probe, 0, 4);
    CHECK (sluice_buffer_close (writers_buffer) == SLUICE_OK);
    CHECK (sluice_buffer_close (readers_buffer) == SLUICE_OK);
    for (int index = 0; index < 8; index++) {
        pthread_join (threads [index], NULL);
        if (index < 4)
            CHECK (roles [index].rc == SLUICE_ECLOSED);
        else
            CHECK (roles [index].rc == SLUICE_OK && roles [index].received);
    }
    sluice_stream_destroy (&filler);
    sluice_stream_destroy (&empty_probe);
    sluice_buffer_destroy (&writers_buffer);
    sluice_buffer_destroy (&readers_buffer);
    printf ("close woke 4 parked writers and 4 parked readers\n");
}

static void
s_writer_reader_actors (void)
{
    const char *endpoint = "inproc://race-actors";
    static const char *tokens [] = { "Hello", " world", "!", " How", " are", " you?" };
    sluice_buffer_t *buffer = sluice_buffer_new (&(sluice_buffer_opts_t) {
        .endpoint = endpoint, .capacity = 2 }, NULL);
    sluice_reader_t *reader = sluice_reader_new (&(sluice_reader_opts_t) {
        .endpoint = endpoint, .process_ms = 1, .on_chunk = NULL }, NULL);
    sluice_writer_t *writer = sluice_writer_new (&(sluice_writer_opts_t) {
        .endpoint = endpoint, .tokens = tokens, .token_count = 6, .close_at_end = true }, NULL);
    CHECK (buffer && reader && writer);
    CHECK (sluice_writer_wait (writer, 30000) == SLUICE_OK);
    CHECK (sluice_reader_wait (reader, 30000) == SLUICE_OK);
    CHECK (sluice_reader_consumed (reader) == 6);
    sluice_writer_destroy (&writer);
    sluice_reader_destroy (&reader);
    sluice_buffer_destroy (&buffer);
}

//  The pipeline runtime: its supervisor thread, two buffers, a writer, a stage and a reader
//  whose sink runs on the reader's thread while the main thread waits.
static size_t s_sunk;

static bool
s_count_sink (void *user, size_t index, const char *text, size_t size)
{
    s_sunk++;           //  read by the main thread only after the run has ended
    return true;
}

static void
s_pipeline_run (void)
{
    const char *file =
        "buffer = a\n    endpoint = inproc://race-pipe-a\n    capacity = 2\n"
        "buffer = b\n    endpoint = inproc://race-pipe-b\n    capacity = 2\n"
        "writer = w\n    output = a\n    tokens\n        t = one\n        t = two\n"
        "        t = three\n"
        "stage = s\n    input = a\n    output = b\n    transform = upper\n"
        "reader = r\n    input = b\n";
    sluice_pipeline_t *pipeline = sluice_pipeline_new ();
    CHECK (pipeline);
    CHECK (sluice_pipeline_load_text (pipeline, file, NULL, "race") == SLUICE_OK);
    CHECK (sluice_pipeline_set_sink (pipeline, "r", s_count_sink, NULL) == SLUICE_OK);
    CHECK (sluice_pipeline_start (pipeline) == SLUICE_OK);
    CHECK (sluice_pipeline_wait (pipeline, 30000) == SLUICE_OK);
    CHECK (s_sunk == 3);
    sluice_pipeline_destroy (&pipeline);
    printf ("pipeline ran writer -> stage -> reader to the end\n");
}

typedef struct {
    const char *endpoint;
    int index;
    sluice_err_t rc;
} s_request_t;

static void *
s_model_request (void *arg)
{
    s_request_t *request = (s_request_t *) arg;
    sluice_model_client_t *client = sluice_model_client_new (request->endpoint);
    char payload [16], *response = NULL;
    snprintf (payload, sizeof payload, "%d", request->index);
    request->rc = sluice_model_client_request (client, payload, strlen (payload), &response);
    if (request->rc == SLUICE_OK) {
        char expected [64];
        snprintf (expected, sizeof expected, "Response %d from race-model", request->index);
        CHECK (response && streq (response, expected));
    }
    free (response);
    sluice_model_client_destroy (&client);
    return NULL;
}

static void
s_model_release (void)
{
    const char *endpoint = "inproc://race-model";
    sluice_model_server_t *server = sluice_model_server_new (&(sluice_model_server_opts_t) {
        .endpoint = endpoint, .workers = 3,
        .sim = { .name = "race-model", .load_ms = 200, .infer_ms = 5 } }, NULL);
    CHECK (server);
    pthread_t threads [6];
    s_request_t requests [6];
    for (int index = 0; index < 6; index++) {
        requests [index] = (s_request_t) { .endpoint = endpoint, .index = index };
        pthread_create (&threads [index], NULL, s_model_request, &requests [index]);
    }
    for (int index = 0; index < 6; index++) {
        pthread_join (threads [index], NULL);
        CHECK (requests [index].rc == SLUICE_OK);
    }
    sluice_model_server_destroy (&server);
    printf ("model server released 6 parked requests to 3 workers\n");
}

int
main (void)
{
    s_many_to_many ("inproc://race-sync-1", 1, 1, 1);
    s_many_to_many ("inproc://race-sync-3", 3, 1, 1);
    s_many_to_many ("inproc://race-pipelined", 64, 32, 16);
    s_close_wakes_all ();
    s_writer_reader_actors ();
    s_model_release ();
    s_pipeline_run ();
    printf ("race scenarios: 7 passed, 0 failed\n");
    return 0;
}
