/*  test_pipeline.c - the pipeline runtime in process (sluice_pipeline.h): files loaded and
    checked, runs to the end, C transforms and sinks plugged into a file, a graceful stop, a
    buffer served to a client outside the pipeline, failures and a stuck end reported.

    Sinks collect chunks under a lock and signal a condition; tests wait on it (bounded by
    T_WAIT_MS as a liveness limit) or on the pipeline itself. Nothing sleeps.
*/
#include "common.h"
#include "sluice_pipeline.h"
#include "sluice_model.h"
#include <libgen.h>
#include <pthread.h>

TestSuite (pipeline, .init = t_fx_init, .fini = t_fx_fini, .timeout = T_SUITE_TIMEOUT);

//  What a sink received, in order.
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    char text [4096];
    size_t size;
    char bytes [4096];             //  the same chunks back to back, without separators
    size_t bytes_size;
    size_t chunks;
} s_sink_t;

static void
s_sink_init (s_sink_t *sink)
{
    memset (sink, 0, sizeof *sink);
    pthread_mutex_init (&sink->lock, NULL);
    pthread_cond_init (&sink->changed, NULL);
}

static void
s_sink_fini (s_sink_t *sink)
{
    pthread_mutex_destroy (&sink->lock);
    pthread_cond_destroy (&sink->changed);
}

//  Chunks joined by '|'.
static bool
s_sink (void *user, size_t index, const char *text, size_t size)
{
    s_sink_t *sink = (s_sink_t *) user;
    pthread_mutex_lock (&sink->lock);
    int wrote = snprintf (sink->text + sink->size, sizeof sink->text - sink->size, "%s%.*s",
                          sink->chunks ? "|" : "", (int) size, text);
    if (wrote > 0)
        sink->size += (size_t) wrote;
    wrote = snprintf (sink->bytes + sink->bytes_size, sizeof sink->bytes - sink->bytes_size,
                      "%.*s", (int) size, text);
    if (wrote > 0)
        sink->bytes_size += (size_t) wrote;
    sink->chunks++;
    pthread_cond_broadcast (&sink->changed);
    pthread_mutex_unlock (&sink->lock);
    return true;
}

//  Wait until the sink has at least `chunks` chunks.
static void
s_sink_wait (s_sink_t *sink, size_t chunks)
{
    struct timespec deadline;
    clock_gettime (CLOCK_REALTIME, &deadline);
    deadline.tv_sec += T_WAIT_MS / 1000;
    pthread_mutex_lock (&sink->lock);
    int rc = 0;
    while (sink->chunks < chunks && rc == 0)
        rc = pthread_cond_timedwait (&sink->changed, &sink->lock, &deadline);
    size_t got = sink->chunks;
    pthread_mutex_unlock (&sink->lock);
    cr_assert_geq (got, chunks, "the sink got %zu chunks, expected %zu", got, chunks);
}

//  A pipeline loaded from text; fails the test when the text does not load.
static sluice_pipeline_t *
s_load (const char *text)
{
    sluice_pipeline_t *pipeline = sluice_pipeline_new ();
    cr_assert_not_null (pipeline);
    sluice_err_t rc = sluice_pipeline_load_text (pipeline, text, NULL, "test.cfg");
    cr_assert_eq (rc, SLUICE_OK, "load: %s (%s)", sluice_strerror (rc),
                  sluice_pipeline_error_text (pipeline));
    return pipeline;
}

//  Send reader `reader`'s chunks to `sink`, start the pipeline and wait for the run's end:
//  the run's result.
static sluice_err_t
s_run_into (sluice_pipeline_t *pipeline, const char *reader, s_sink_t *sink)
{
    s_sink_init (sink);
    cr_assert_eq (sluice_pipeline_set_sink (pipeline, reader, s_sink, sink), SLUICE_OK);
    cr_assert_eq (sluice_pipeline_start (pipeline), SLUICE_OK, "%s",
                  sluice_pipeline_error_text (pipeline));
    return sluice_pipeline_wait (pipeline, T_WAIT_MS);
}

//  The error text of a text that must not load, or fail.
static char *
s_load_error (const char *text)
{
    sluice_pipeline_t *pipeline = sluice_pipeline_new ();
    cr_assert_not_null (pipeline);
    sluice_err_t rc = sluice_pipeline_load_text (pipeline, text, NULL, "bad.cfg");
    cr_expect_eq (rc, SLUICE_EINVAL, "loaded: %s", text);
    cr_expect_eq (sluice_pipeline_start (pipeline), SLUICE_EINVAL,
                  "a pipeline that failed to load was started");
    char *why = strdup (sluice_pipeline_error_text (pipeline));
    sluice_pipeline_destroy (&pipeline);
    return why;
}

#define S_EXPECT_REFUSED(text, says) do {                                                    \
    char *s_why_ = s_load_error (text);                                                      \
    cr_expect (strstr (s_why_, says) != NULL, "error \"%s\" does not say \"%s\"", s_why_,    \
               says);                                                                        \
    cr_expect (strncmp (s_why_, "bad.cfg: ", 9) == 0, "error \"%s\" names no file", s_why_); \
    free (s_why_);                                                                           \
} while (0)

//  An endpoint of this test's own.
static char *
s_endpoint (const char *what)
{
    return zsys_sprintf ("inproc://pipeline-%s-%s",
                         criterion_current_test ? criterion_current_test->name : "test", what);
}

T_TEST (pipeline, the_example_file_runs_to_the_end_in_order_and_masked)
{
    //  The repository is three levels above this program (build/VARIANT/tests)
    char exe [PATH_MAX], path [PATH_MAX + 64];
    ssize_t size = readlink ("/proc/self/exe", exe, sizeof exe - 1);
    cr_assert_gt (size, 0);
    exe [size] = 0;
    snprintf (path, sizeof path, "%s/../../../examples/pipelines/llm-tts.cfg", dirname (exe));
    sluice_pipeline_t *pipeline = sluice_pipeline_new ();
    cr_assert_eq (sluice_pipeline_load (pipeline, path), SLUICE_OK, "%s",
                  sluice_pipeline_error_text (pipeline));
    s_sink_t sink;
    s_sink_init (&sink);
    cr_assert_eq (sluice_pipeline_set_sink (pipeline, "tts", s_sink, &sink), SLUICE_OK);
    cr_assert_eq (sluice_pipeline_start (pipeline), SLUICE_OK, "%s",
                  sluice_pipeline_error_text (pipeline));
    cr_expect_eq (sluice_pipeline_wait (pipeline, T_WAIT_MS), SLUICE_OK, "%s",
                  sluice_pipeline_error_text (pipeline));
    cr_expect (sluice_pipeline_finished (pipeline));
    //  The mask holds " darn" back until the next token shows that the word ends there
    cr_expect_str_eq (sink.text, "Hello| world|!| This| |**** demo| streams| tokens.");
    cr_expect_str_eq (sluice_pipeline_error_text (pipeline), "");
    sluice_pipeline_destroy (&pipeline);
    cr_expect_null (pipeline);
    s_sink_fini (&sink);
}

static sluice_stage_verdict_t
s_reverse (void *user, const char *in, size_t in_size, sluice_stage_out_t *out)
{
    char *to = sluice_stage_out_reserve (out, in_size);
    if (!to)
        return SLUICE_STAGE_FAIL;
    for (size_t index = 0; index < in_size; index++)
        to [index] = in [in_size - 1 - index];
    return SLUICE_STAGE_KEEP;
}

T_TEST (pipeline, a_c_transform_and_a_c_sink_replace_the_files_own)
{
    char *a = s_endpoint ("a"), *b = s_endpoint ("b");
    char *text = zsys_sprintf (
        "buffer = a\n    endpoint = %s\n    capacity = 1\n"
        "buffer = b\n    endpoint = %s\n    capacity = 1\n"
        "writer = w\n    output = a\n    tokens\n        t = \"abc\"\n        t = \"de\"\n"
        "        t = \"f\"\n"
        "stage = s\n    input = a\n    output = b\n    transform = identity\n"
        "reader = r\n    input = b\n", a, b);
    sluice_pipeline_t *pipeline = s_load (text);
    s_sink_t sink;
    s_sink_init (&sink);
    cr_expect_eq (sluice_pipeline_set_transform (pipeline, "nosuch", s_reverse, NULL),
                  SLUICE_EINVAL);
    cr_expect (strstr (sluice_pipeline_error_text (pipeline), "nosuch") != NULL);
    cr_expect_eq (sluice_pipeline_set_sink (pipeline, "w", s_sink, &sink), SLUICE_EINVAL,
                  "a writer taken for a reader");
    cr_assert_eq (sluice_pipeline_set_transform (pipeline, "s", s_reverse, NULL), SLUICE_OK);
    cr_assert_eq (sluice_pipeline_set_sink (pipeline, "r", s_sink, &sink), SLUICE_OK);
    cr_assert_eq (sluice_pipeline_start (pipeline), SLUICE_OK, "%s",
                  sluice_pipeline_error_text (pipeline));
    cr_expect_eq (sluice_pipeline_wait (pipeline, T_WAIT_MS), SLUICE_OK, "%s",
                  sluice_pipeline_error_text (pipeline));
    cr_expect_str_eq (sink.text, "cba|ed|f");
    sluice_pipeline_destroy (&pipeline);
    s_sink_fini (&sink);
    free (text);
    free (a);
    free (b);
}

T_TEST (pipeline, stop_ends_a_run_whose_writer_never_ends_and_nothing_written_is_lost)
{
    //  The writer reads a pipe that stays open: only a stop ends the run
    int fds [2];
    cr_assert_eq (pipe (fds), 0);
    FILE *input = fdopen (fds [0], "r");
    cr_assert_not_null (input);
    char *a = s_endpoint ("a");
    char *text = zsys_sprintf (
        "buffer = a\n    endpoint = %s\n    capacity = 2\n"
        "writer = w\n    output = a\n    file = -\n"
        "reader = r\n    input = a\n", a);
    //  "file = -" is stdin: point this process's stdin at the pipe for the test
    int saved = dup (STDIN_FILENO);
    cr_assert_neq (dup2 (fds [0], STDIN_FILENO), -1);
    sluice_pipeline_t *pipeline = s_load (text);
    s_sink_t sink;
    s_sink_init (&sink);
    cr_assert_eq (sluice_pipeline_set_sink (pipeline, "r", s_sink, &sink), SLUICE_OK);
    cr_assert_eq (sluice_pipeline_start (pipeline), SLUICE_OK, "%s",
                  sluice_pipeline_error_text (pipeline));
    cr_assert_eq (write (fds [1], "one\ntwo\nthree\n", 14), 14);
    s_sink_wait (&sink, 3);
    cr_expect_eq (sluice_pipeline_wait (pipeline, 0), SLUICE_ETIMEOUT);
    cr_expect_not (sluice_pipeline_finished (pipeline), "the run ended by itself");
    cr_assert_eq (sluice_pipeline_stop (pipeline), SLUICE_OK);
    cr_expect_eq (sluice_pipeline_wait (pipeline, T_WAIT_MS), SLUICE_OK, "%s",
                  sluice_pipeline_error_text (pipeline));
    cr_expect (sluice_pipeline_finished (pipeline));
    cr_expect_str_eq (sink.text, "one|two|three");
    sluice_pipeline_destroy (&pipeline);
    dup2 (saved, STDIN_FILENO);
    close (saved);
    fclose (input);
    close (fds [1]);
    s_sink_fini (&sink);
    free (text);
    free (a);
}

T_TEST (pipeline, a_buffer_without_readers_here_is_served_to_others_until_drained)
{
    //  Port 0: the pipeline says where the buffer is; a client of ours drains it
    const char *text =
        "buffer = out\n    endpoint = tcp://127.0.0.1:0\n    capacity = 2\n"
        "writer = w\n    output = out\n    tokens\n        t = x\n        t = y\n"
        "        t = z\n";
    sluice_pipeline_t *pipeline = s_load (text);
    cr_expect_null (sluice_pipeline_endpoint (pipeline, "out"), "an endpoint before start");
    cr_assert_eq (sluice_pipeline_start (pipeline), SLUICE_OK, "%s",
                  sluice_pipeline_error_text (pipeline));
    const char *endpoint = sluice_pipeline_endpoint (pipeline, "out");
    cr_assert_not_null (endpoint);
    cr_expect (strncmp (endpoint, "tcp://127.0.0.1:", 16) == 0 && !strstr (endpoint, ":0"),
               "endpoint %s", endpoint);
    cr_expect_null (sluice_pipeline_endpoint (pipeline, "nosuch"));
    sluice_stream_t *reader = sluice_stream_new (endpoint);
    cr_assert_not_null (reader);
    const char *expected [] = { "x", "y", "z" };
    for (size_t index = 0; index < 3; index++) {
        sluice_chunk_t chunk;
        T_READ (reader, chunk);
        cr_expect (chunk.size == 1 && chunk.text [0] == expected [index][0]);
    }
    sluice_chunk_t chunk;
    cr_expect_not (sluice_stream_next (reader, &chunk), "no end of stream after the last");
    cr_expect_eq (sluice_pipeline_wait (pipeline, T_WAIT_MS), SLUICE_OK, "%s",
                  sluice_pipeline_error_text (pipeline));
    sluice_stream_destroy (&reader);
    sluice_pipeline_destroy (&pipeline);
}

static sluice_stage_verdict_t
s_fail_on_b (void *user, const char *in, size_t in_size, sluice_stage_out_t *out)
{
    return in_size && in [0] == 'b' ? SLUICE_STAGE_FAIL : SLUICE_STAGE_PASS;
}

T_TEST (pipeline, a_failing_stage_is_the_runs_result_and_is_named)
{
    char *a = s_endpoint ("a"), *b = s_endpoint ("b");
    char *text = zsys_sprintf (
        "buffer = a\n    endpoint = %s\n"
        "buffer = b\n    endpoint = %s\n"
        "writer = w\n    output = a\n    tokens\n        t = a\n        t = b\n        t = c\n"
        "stage = picky\n    input = a\n    output = b\n    transform = identity\n"
        "reader = r\n    input = b\n", a, b);
    sluice_pipeline_t *pipeline = s_load (text);
    s_sink_t sink;
    s_sink_init (&sink);
    cr_assert_eq (sluice_pipeline_set_transform (pipeline, "picky", s_fail_on_b, NULL),
                  SLUICE_OK);
    cr_assert_eq (sluice_pipeline_set_sink (pipeline, "r", s_sink, &sink), SLUICE_OK);
    cr_assert_eq (sluice_pipeline_start (pipeline), SLUICE_OK);
    cr_expect_eq (sluice_pipeline_wait (pipeline, T_WAIT_MS), SLUICE_EINTERNAL);
    cr_expect (sluice_pipeline_finished (pipeline));
    const char *why = sluice_pipeline_error_text (pipeline);
    cr_expect (strncmp (why, "stage 'picky': ", 15) == 0, "error text: %s", why);
    //  The stage closed its output when it failed: the reader saw what came before, then
    //  the end
    cr_expect_str_eq (sink.text, "a");
    sluice_pipeline_destroy (&pipeline);
    s_sink_fini (&sink);
    free (text);
    free (a);
    free (b);
}

T_TEST (pipeline, an_end_that_cannot_finish_gives_up_after_the_drain_timeout)
{
    //  The stage writes into a full buffer outside the pipeline that nobody reads: when the
    //  run is stopped, its input closes and drains, but its blocked write never returns
    char *a = s_endpoint ("a"), *elsewhere = s_endpoint ("elsewhere");
    sluice_err_t err;
    sluice_buffer_t *full = sluice_buffer_new (&(sluice_buffer_opts_t) {
        .endpoint = elsewhere, .capacity = 1 }, &err);
    cr_assert_not_null (full);
    char *text = zsys_sprintf (
        "pipeline\n    drain-timeout = 100000\n"
        "buffer = a\n    endpoint = %s\n"
        "buffer = far\n    endpoint = %s\n    start = 0\n"
        "writer = w\n    output = a\n    close = 0\n    tokens\n        t = 1\n        t = 2\n"
        "stage = blocked\n    input = a\n    output = far\n    transform = identity\n",
        a, elsewhere);
    sluice_pipeline_t *pipeline = s_load (text);
    sluice_pipeline_set_drain_timeout (pipeline, 50);
    cr_assert_eq (sluice_pipeline_start (pipeline), SLUICE_OK, "%s",
                  sluice_pipeline_error_text (pipeline));
    //  Wait until the stage's second write is held back by the full buffer
    sluice_stream_t *probe = sluice_stream_new (elsewhere);
    cr_assert_not_null (probe);
    int64_t deadline = zclock_mono () + T_WAIT_MS;
    sluice_buffer_status_t st;
    do {
        cr_assert_eq (sluice_stream_status (probe, &st), SLUICE_OK);
        cr_assert (zclock_mono () < deadline, "the stage's write was never held back");
    } while (st.parked_writers < 1);
    cr_assert_eq (sluice_pipeline_stop (pipeline), SLUICE_OK);
    cr_expect_eq (sluice_pipeline_wait (pipeline, T_WAIT_MS), SLUICE_ETIMEOUT);
    cr_expect (sluice_pipeline_finished (pipeline), "the run did not end after the drain timeout");
    const char *why = sluice_pipeline_error_text (pipeline);
    cr_expect (strstr (why, "gave up after 50 ms") && strstr (why, "stage 'blocked'"),
               "error text: %s", why);
    sluice_pipeline_destroy (&pipeline);
    sluice_stream_destroy (&probe);
    sluice_buffer_close (full);
    sluice_buffer_destroy (&full);
    free (text);
    free (a);
    free (elsewhere);
}

T_TEST (pipeline, start_failures_run_nothing_and_say_what_failed)
{
    char *a = s_endpoint ("a");
    //  The same endpoint bound twice: the second buffer cannot start
    char *text = zsys_sprintf (
        "buffer = one\n    endpoint = %s\n"
        "buffer = two\n    endpoint = %s\n"
        "writer = w\n    output = one\n    tokens\n        t = x\n"
        "reader = r\n    input = two\n", a, a);
    sluice_pipeline_t *pipeline = s_load (text);
    cr_expect_neq (sluice_pipeline_start (pipeline), SLUICE_OK);
    const char *why = sluice_pipeline_error_text (pipeline);
    cr_expect (strstr (why, "buffer 'two'") != NULL, "error text: %s", why);
    cr_expect_null (sluice_pipeline_actor_handle (pipeline));
    cr_expect_eq (sluice_pipeline_start (pipeline), SLUICE_EINVAL, "started twice");
    sluice_pipeline_destroy (&pipeline);
    free (text);
    free (a);
}

T_TEST (pipeline, files_are_checked_before_anything_starts)
{
    S_EXPECT_REFUSED ("buffer = b\n    endpoint = inproc://x\n    capcity = 3\n"
                      "reader = r\n    input = b\n", "unknown key 'capcity'");
    S_EXPECT_REFUSED ("reader = r\n    input = nosuchbuffer\n", "nosuchbuffer");
    S_EXPECT_REFUSED ("bufer = b\n", "unknown section 'bufer'");
    S_EXPECT_REFUSED ("buffer = b\n    endpoint = inproc://x\n", "nothing to run");
    S_EXPECT_REFUSED ("buffer = b\n    endpoint = inproc://x\n"
                      "buffer = b\n    endpoint = inproc://y\n", "two buffers named 'b'");
    S_EXPECT_REFUSED ("buffer = b\n    endpoint = inproc://x\n"
                      "reader = r\n    input = b\nreader = r\n    input = b\n",
                      "two readers named 'r'");
    S_EXPECT_REFUSED ("buffer = b\n    endpoint = inproc://x\n    capacity = 0\n"
                      "reader = r\n    input = b\n", "capacity must be an integer in 1..");
    S_EXPECT_REFUSED ("buffer = b\n    endpoint = inproc://x\n"
                      "writer = w\n    output = b\n", "give one source: a 'tokens' list, a 'file', or a 'model'");
    S_EXPECT_REFUSED ("buffer = b\n    endpoint = inproc://x\n"
                      "writer = w\n    output = b\n    model = inproc://m\n",
                      "a 'model' needs a 'prompt'");
    S_EXPECT_REFUSED ("buffer = b\n    endpoint = inproc://x\n"
                      "writer = w\n    output = b\n    file = /nonexistent/tokens.txt\n",
                      "cannot open /nonexistent/tokens.txt");
    S_EXPECT_REFUSED ("buffer = b\n    endpoint = inproc://x\nbuffer = c\n    endpoint = inproc://y\n"
                      "stage = s\n    input = b\n    output = c\n    transform = shout\n",
                      "transform must be one of");
    S_EXPECT_REFUSED ("buffer = b\n    endpoint = inproc://x\nbuffer = c\n    endpoint = inproc://y\n"
                      "stage = s\n    input = b\n    output = c\n    transform = upper\n"
                      "    words\n        w = darn\n", "takes no words");
    S_EXPECT_REFUSED ("buffer = b\n    endpoint = inproc://x\n"
                      "reader = r\n    input = b\n    format = no-hole\n",
                      "format must contain {}");
    S_EXPECT_REFUSED ("buffer = b\n    endpoint = inproc://x\n    curve-cert = c_secret\n"
                      "reader = r\n    input = b\n", "CURVE is for tcp:// and ipc://");

    //  A file that is not there, or not ZPL
    sluice_pipeline_t *pipeline = sluice_pipeline_new ();
    cr_expect_eq (sluice_pipeline_load (pipeline, "/nonexistent/pipeline.cfg"), SLUICE_EINVAL);
    cr_expect (strstr (sluice_pipeline_error_text (pipeline), "/nonexistent/pipeline.cfg"));
    cr_expect_eq (sluice_pipeline_load (pipeline, "/nonexistent/pipeline.cfg"), SLUICE_EINVAL,
                  "loaded twice");
    sluice_pipeline_destroy (&pipeline);
    sluice_pipeline_destroy (&pipeline);        //  NULL: nothing
}

T_TEST (pipeline, curve_defaults_are_checked_when_given)
{
    sluice_pipeline_t *pipeline = sluice_pipeline_new ();
    cr_expect_eq (sluice_pipeline_set_curve (pipeline, &(sluice_curve_t) {
        .allow = "/tmp" }), SLUICE_EINVAL);
    cr_expect (strstr (sluice_pipeline_error_text (pipeline), "needs curve-cert"));
    cr_expect_eq (sluice_pipeline_set_curve (pipeline, &(sluice_curve_t) {
        .server_key = "not-a-key" }), SLUICE_EINVAL);
    cr_expect (strstr (sluice_pipeline_error_text (pipeline), "not-a-key"));
    cr_expect_eq (sluice_pipeline_set_curve (pipeline, &(sluice_curve_t) { 0 }), SLUICE_OK);
    sluice_pipeline_destroy (&pipeline);
}

T_TEST (pipeline, stop_ends_the_run_cleanly_and_exec_and_sentences_are_stages_of_a_file)
{
    //  writer -> a -> stop at "STOP" -> b -> sentences (max 12 bytes) -> c -> exec (tr) -> d
    char *a = s_endpoint ("a"), *b = s_endpoint ("b"), *c = s_endpoint ("c"),
         *d = s_endpoint ("d");
    char *text = zsys_sprintf (
        "buffer = a\n    endpoint = %s\n    capacity = 2\n"
        "buffer = b\n    endpoint = %s\n"
        "buffer = c\n    endpoint = %s\n"
        "buffer = d\n    endpoint = %s\n"
        "writer = llm\n    output = a\n    tokens\n"
        "        t = \"Hel\"\n        t = \"lo. How are\"\n        t = \" you? ST\"\n"
        "        t = \"OP never said\"\n        t = \" and more\"\n        t = \" and more\"\n"
        "stage = cut\n    input = a\n    output = b\n    transform = stop\n"
        "    words\n        w = STOP\n"
        "stage = say\n    input = b\n    output = c\n    transform = sentences\n"
        "    max-bytes = 12\n"
        "stage = shout\n    input = c\n    output = d\n    transform = exec\n"
        "    command = \"tr a-z A-Z\"\n"
        "reader = r\n    input = d\n", a, b, c, d);
    sluice_pipeline_t *pipeline = s_load (text);
    s_sink_t sink;
    //  The writer meets its buffer closed by the stop: the end of the stream, not a failure
    cr_expect_eq (s_run_into (pipeline, "r", &sink), SLUICE_OK, "%s",
                  sluice_pipeline_error_text (pipeline));
    //  exec hands back what the command wrote, as read: compare the bytes, not the chunks
    cr_expect_str_eq (sink.bytes, "HELLO. HOW ARE YOU? ");
    sluice_pipeline_destroy (&pipeline);
    s_sink_fini (&sink);
    free (text);
    free (a);
    free (b);
    free (c);
    free (d);
}

T_TEST (pipeline, stage_settings_are_checked_with_the_transform)
{
    const char *buffers = "buffer = b\n    endpoint = inproc://x\nbuffer = c\n"
                          "    endpoint = inproc://y\nstage = s\n    input = b\n    output = c\n";
    char *text;
#define S_STAGE_REFUSED(rest, says) \
    text = zsys_sprintf ("%s%s", buffers, rest); \
    S_EXPECT_REFUSED (text, says); \
    free (text)
    S_STAGE_REFUSED ("    transform = stop\n", "needs at least one word");
    S_STAGE_REFUSED ("    transform = sentences\n    max-bytes = 0\n", "max-bytes");
    S_STAGE_REFUSED ("    transform = upper\n    max-bytes = 10\n", "no option 'max-bytes'");
    S_STAGE_REFUSED ("    transform = exec\n", "needs a command");
    S_STAGE_REFUSED ("    transform = upper\n    command = cat\n", "'command' is for transform = exec");
    S_STAGE_REFUSED ("    transform = exec\n    command = cat\n    words\n        w = x\n",
                     "transform = exec takes no 'words'");
#undef S_STAGE_REFUSED
}

T_TEST (pipeline, a_model_streams_into_a_buffer_and_a_stop_downstream_cancels_it)
{
    //  A simulated model streams its answer word by word; the writer pulls only as the buffer
    //  takes the tokens. A stop stage ends the stream at "STOP": the writer's buffer closes,
    //  and the generation is cancelled before its end
    char *m = s_endpoint ("model"), *a = s_endpoint ("a"), *b = s_endpoint ("b");
    sluice_err_t err;
    sluice_model_server_t *server = sluice_model_server_new (&(sluice_model_server_opts_t) {
        .endpoint = m, .window = 2,
        .sim = { .text = "one two three STOP four five six seven eight nine ten eleven "
                         "twelve thirteen fourteen fifteen sixteen", .token_ms = 1 } }, &err);
    cr_assert_not_null (server, "model server: %s", sluice_strerror (err));
    char *text = zsys_sprintf (
        "buffer = a\n    endpoint = %s\n    capacity = 1\n"
        "buffer = b\n    endpoint = %s\n"
        "writer = llm\n    output = a\n    model = %s\n    prompt = \"count\"\n"
        "stage = cut\n    input = a\n    output = b\n    transform = stop\n"
        "    words\n        w = STOP\n"
        "reader = r\n    input = b\n", a, b, m);
    sluice_pipeline_t *pipeline = s_load (text);
    s_sink_t sink;
    cr_expect_eq (s_run_into (pipeline, "r", &sink), SLUICE_OK, "%s",
                  sluice_pipeline_error_text (pipeline));
    cr_expect_str_eq (sink.bytes, "one two three ");
    //  The generator was stopped: it never produced the whole answer
    sluice_model_client_t *client = sluice_model_client_new (m);
    cr_assert_not_null (client);
    sluice_model_status_t st;
    int64_t deadline = zclock_mono () + T_WAIT_MS;
    do {
        cr_assert_eq (sluice_model_client_status (client, &st), SLUICE_OK);
        cr_assert (zclock_mono () < deadline, "the stream was never cancelled");
    } while (st.cancelled < 1);
    cr_expect_lt (st.generated, 17, "the whole answer was generated: %llu tokens",
                  (unsigned long long) st.generated);
    sluice_model_client_destroy (&client);
    sluice_pipeline_destroy (&pipeline);
    sluice_model_server_destroy (&server);
    s_sink_fini (&sink);
    free (text);
    free (a);
    free (b);
    free (m);
}
