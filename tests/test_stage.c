/*  test_stage.c - the transform stage actor, in process: two buffers, one stage between them.

    Each test owns an input and an output buffer (inproc, named after the test) and a client
    on each. Waiting is done on replies and on the stage itself (sluice_stage_wait, its actor
    handle), bounded by T_WAIT_MS as a liveness limit; nothing sleeps.
*/
#include "common.h"
#include "sluice_stage.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    sluice_buffer_t *in_buf, *out_buf;
    char in [256], out [256];
    sluice_stream_t *writer;       //  into the input
    sluice_stream_t *reader;       //  from the output
    sluice_stage_t *stage;
} s_stage_fx_t;

static s_stage_fx_t fx;

static void
s_init (void)
{
    memset (&fx, 0, sizeof fx);
    t_fx_init ();
}

static void
s_fini (void)
{
    //  Closing wakes whatever a failed test left parked
    sluice_stage_destroy (&fx.stage);
    if (fx.in_buf)
        sluice_buffer_close (fx.in_buf);
    if (fx.out_buf)
        sluice_buffer_close (fx.out_buf);
    sluice_stream_destroy (&fx.writer);
    sluice_stream_destroy (&fx.reader);
    sluice_buffer_destroy (&fx.in_buf);
    sluice_buffer_destroy (&fx.out_buf);
    t_fx_fini ();
}

TestSuite (stage, .init = s_init, .fini = s_fini, .timeout = T_SUITE_TIMEOUT);

static sluice_buffer_t *
s_buffer (char *endpoint, size_t size, const char *what, size_t capacity)
{
    snprintf (endpoint, size, "inproc://stage-%s-%s",
              criterion_current_test ? criterion_current_test->name : "test", what);
    sluice_err_t err = SLUICE_EINTERNAL;
    sluice_buffer_t *buffer = sluice_buffer_new (&(sluice_buffer_opts_t) {
        .endpoint = endpoint, .capacity = capacity }, &err);
    cr_assert_not_null (buffer, "buffer %s: %s", endpoint, sluice_strerror (err));
    return buffer;
}

//  Both buffers and their clients; the stage is started by the test.
static void
s_buffers (size_t in_capacity, size_t out_capacity)
{
    fx.in_buf = s_buffer (fx.in, sizeof fx.in, "in", in_capacity);
    fx.out_buf = s_buffer (fx.out, sizeof fx.out, "out", out_capacity);
    fx.writer = sluice_stream_new (fx.in);
    fx.reader = sluice_stream_new (fx.out);
    cr_assert (fx.writer && fx.reader);
}

static void
s_start (sluice_stage_fn *transform, void *user, bool keep_output_open)
{
    sluice_err_t err = SLUICE_EINTERNAL;
    fx.stage = sluice_stage_new (&(sluice_stage_opts_t) {
        .input = fx.in, .output = fx.out, .transform = transform, .user = user,
        .keep_output_open = keep_output_open }, &err);
    cr_assert_not_null (fx.stage, "sluice_stage_new: %s", sluice_strerror (err));
    cr_assert_eq (err, SLUICE_OK);
}

//  Ask `stream`'s buffer for its status until `cond` (on st) holds; fail after T_WAIT_MS.
#define S_WAIT_STATUS(stream, st, cond) do {                                                 \
    int64_t s_deadline_ = zclock_mono () + T_WAIT_MS;                                        \
    for (;;) {                                                                               \
        cr_assert_eq (sluice_stream_status ((stream), &(st)), SLUICE_OK);                    \
        if (cond) break;                                                                     \
        cr_assert (zclock_mono () < s_deadline_, "gave up waiting for %s", #cond);           \
    }                                                                                        \
} while (0)

static void
s_write (const char *text, bool final)
{
    sluice_err_t rc = sluice_stream_write_timeout (fx.writer, text, strlen (text), final, T_WAIT_MS);
    cr_assert_eq (rc, SLUICE_OK, "write '%s': %s (%s)", text, sluice_strerror (rc),
                  sluice_stream_error_text (fx.writer));
}

static void
s_close_input (void)
{
    sluice_err_t rc = sluice_stream_close (fx.writer);
    cr_assert_eq (rc, SLUICE_OK, "close: %s", sluice_strerror (rc));
}

static sluice_err_t
s_wait_stage (void)
{
    sluice_err_t rc = sluice_stage_wait (fx.stage, T_WAIT_MS);
    cr_assert_neq (rc, SLUICE_ETIMEOUT, "the stage did not finish");
    return rc;
}

// ---------------------------------------------------------------------------------------------
//  Transforms used by the tests

//  Drop every chunk that starts with 'x'; keep the rest, upper-cased.
static sluice_stage_verdict_t
s_drop_x (void *user, const char *in, size_t in_size, sluice_stage_out_t *out)
{
    if (in_size && in [0] == 'x')
        return SLUICE_STAGE_DROP;
    return sluice_stage_upper (user, in, in_size, out);
}

//  Counts its calls in *user, passes the chunk through.
static sluice_stage_verdict_t
s_count_pass (void *user, const char *in, size_t in_size, sluice_stage_out_t *out)
{
    (*(size_t *) user)++;
    return SLUICE_STAGE_PASS;
}

//  Fails on "boom".
static sluice_stage_verdict_t
s_fail_on_boom (void *user, const char *in, size_t in_size, sluice_stage_out_t *out)
{
    if (in_size == 4 && memcmp (in, "boom", 4) == 0)
        return SLUICE_STAGE_FAIL;
    return SLUICE_STAGE_PASS;
}

//  Each chunk twice, with a separator, built in pieces: append and reserve.
static sluice_stage_verdict_t
s_double (void *user, const char *in, size_t in_size, sluice_stage_out_t *out)
{
    if (!sluice_stage_out_append (out, in, in_size) || !sluice_stage_out_append (out, "|", 1))
        return SLUICE_STAGE_FAIL;
    char *room = sluice_stage_out_reserve (out, in_size);
    if (!room)
        return SLUICE_STAGE_FAIL;
    memcpy (room, in, in_size);
    return SLUICE_STAGE_KEEP;
}

// ---------------------------------------------------------------------------------------------

Test (stage, transforms_in_order_and_closes_the_output_at_end_of_input)
{
    s_buffers (4, 4);
    s_start (sluice_stage_upper, NULL, false);
    const char *tokens [] = { "Hello", " world", "!", "", " héllo 42" };
    for (size_t i = 0; i < sizeof tokens / sizeof tokens [0]; i++)
        s_write (tokens [i], false);
    s_close_input ();
    T_EXPECT_CHUNK (fx.reader, "HELLO");
    T_EXPECT_CHUNK (fx.reader, " WORLD");
    T_EXPECT_CHUNK (fx.reader, "!");
    T_EXPECT_CHUNK (fx.reader, "");
    T_EXPECT_CHUNK (fx.reader, " HéLLO 42");      //  UTF-8 bytes untouched
    T_EXPECT_EOS (fx.reader);
    cr_expect_eq (s_wait_stage (), SLUICE_OK, "%s", sluice_stage_error_text (fx.stage));
    cr_expect_str_empty (sluice_stage_error_text (fx.stage));
    cr_expect_eq (sluice_stage_consumed (fx.stage), 5);
    cr_expect_eq (sluice_stage_produced (fx.stage), 5);
}

Test (stage, backpressure_crosses_the_stage)
{
    //  Output of capacity 1 and nobody reading: the stage holds one chunk in the output and
    //  one in its hands (its write parked there), then stops reading, so the input fills up
    //  and its writer parks.
    s_buffers (2, 1);
    s_start (sluice_stage_lower, NULL, false);
    t_op_t op;
    for (int i = 0; i < 4; i++)
        s_write ("ABC", false);
    sluice_buffer_status_t st;
    S_WAIT_STATUS (fx.reader, st, st.parked_writers == 1);
    cr_expect_eq (st.queued, 1);
    //  The input: 4 written, 2 taken by the stage (one in the output, one in its hands:
    //  handed out, not yet acknowledged, no longer in the queue), two queued: full
    S_WAIT_STATUS (fx.writer, st, st.queued == 2 && st.unacked == 1);
    //  A fifth write parks on the full input
    memset (&op, 0, sizeof op);
    t_op_write (&op, "ABC", false, SLUICE_FOREVER);
    snprintf (t_fx.endpoint, sizeof t_fx.endpoint, "%s", fx.in);
    t_fx.cli = fx.writer;
    t_park_op (&op, 1);
    t_fx.cli = NULL;
    //  Reading the output lets everything through, in order
    for (int i = 0; i < 5; i++)
        T_EXPECT_CHUNK (fx.reader, "abc");
    t_join_all ();
    cr_expect_eq (op.rc, SLUICE_OK, "parked write: %s", sluice_strerror (op.rc));
    cr_expect (op.parked, "the fifth write was not held back");
    s_close_input ();
    T_EXPECT_EOS (fx.reader);
    cr_expect_eq (s_wait_stage (), SLUICE_OK);
}

Test (stage, dropped_chunks_are_not_written_and_a_dropped_final_still_ends_the_stream)
{
    s_buffers (8, 8);
    s_start (s_drop_x, NULL, false);
    s_write ("a", false);
    s_write ("x-secret", false);
    s_write ("b", false);
    s_write ("x-final", true);        //  dropped, but it is the end of the stream
    T_EXPECT_CHUNK (fx.reader, "A");
    T_EXPECT_CHUNK (fx.reader, "B");
    T_EXPECT_CHUNK_F (fx.reader, "", true);
    T_EXPECT_EOS (fx.reader);         //  and the output was closed
    cr_expect_eq (s_wait_stage (), SLUICE_OK);
    cr_expect_eq (sluice_stage_consumed (fx.stage), 4);
    cr_expect_eq (sluice_stage_produced (fx.stage), 3);
}

Test (stage, a_final_chunk_is_propagated_final_and_ends_the_stage)
{
    s_buffers (8, 8);
    s_start (sluice_stage_upper, NULL, false);
    s_write ("one", false);
    s_write ("two", true);
    s_write ("after the end", false);   //  for another reader of the input: not the stage's
    T_EXPECT_CHUNK (fx.reader, "ONE");
    T_EXPECT_CHUNK_F (fx.reader, "TWO", true);
    T_EXPECT_EOS (fx.reader);
    cr_expect_eq (s_wait_stage (), SLUICE_OK);
    T_EXPECT_CHUNK (fx.writer, "after the end");
}

Test (stage, pass_copies_binary_chunks_unchanged)
{
    s_buffers (4, 4);
    size_t calls = 0;
    s_start (s_count_pass, &calls, false);
    unsigned char data [3000];
    t_pattern (data, sizeof data, 7);
    cr_assert_eq (sluice_stream_write_timeout (fx.writer, data, sizeof data, false, T_WAIT_MS), SLUICE_OK);
    s_close_input ();
    sluice_chunk_t chunk;
    T_READ (fx.reader, chunk);
    cr_assert_eq (chunk.size, sizeof data);
    cr_expect (memcmp (chunk.text, data, sizeof data) == 0, "binary chunk altered");
    T_EXPECT_EOS (fx.reader);
    cr_expect_eq (s_wait_stage (), SLUICE_OK);
    cr_expect_eq (calls, 1);
}

Test (stage, output_built_with_append_and_reserve)
{
    s_buffers (4, 4);
    s_start (s_double, NULL, false);
    s_write ("ab", false);
    s_write ("", false);
    char big [5000];
    memset (big, 'z', sizeof big - 1);
    big [sizeof big - 1] = 0;
    s_write (big, false);
    s_close_input ();
    T_EXPECT_CHUNK (fx.reader, "ab|ab");
    T_EXPECT_CHUNK (fx.reader, "|");
    sluice_chunk_t chunk;
    T_READ (fx.reader, chunk);
    cr_assert_eq (chunk.size, 2 * strlen (big) + 1, "output of %zu bytes", chunk.size);
    cr_expect_eq (chunk.text [strlen (big)], '|');
    T_EXPECT_EOS (fx.reader);
    cr_expect_eq (s_wait_stage (), SLUICE_OK);
}

Test (stage, mask_replaces_whole_listed_words_only)
{
    s_buffers (8, 8);
    const char *words [] = { "darn", "heck", NULL };
    s_start (sluice_stage_mask, (void *) words, false);
    //  Chunks are pieces of one text: a word at the end of a chunk may go on in the next
    s_write ("oh darn it ", false);
    s_write ("DARN, Heck!", false);
    s_write (" darned darn_it undarn ", false);
    s_write ("da", false);      //  held back: may become "darn"
    s_write ("rn", false);      //  held back: may still become "darned"
    s_close_input ();
    T_EXPECT_CHUNK (fx.reader, "oh **** it ");
    T_EXPECT_CHUNK (fx.reader, "****, ****!");
    T_EXPECT_CHUNK (fx.reader, " darned ****_it undarn ");
    T_EXPECT_CHUNK (fx.reader, "****");     //  flushed at the end of the input
    T_EXPECT_EOS (fx.reader);
    cr_expect_eq (s_wait_stage (), SLUICE_OK);
}

Test (stage, stop_ends_the_stream_closes_the_output_and_the_input)
{
    s_buffers (8, 8);
    const char *words [] = { "STOP", NULL };
    s_start (sluice_stage_stop_at, (void *) words, false);
    s_write ("one two ST", false);
    s_write ("OP three", false);
    T_EXPECT_CHUNK (fx.reader, "one two ");
    T_EXPECT_CHUNK_F (fx.reader, "", true);
    T_EXPECT_EOS (fx.reader);
    cr_expect_eq (s_wait_stage (), SLUICE_OK);
    //  Upstream is told: nothing reads its input any more
    sluice_err_t rc = sluice_stream_write_timeout (fx.writer, "x", 1, false, T_WAIT_MS);
    cr_expect_eq (rc, SLUICE_ECLOSED, "write after the stop: %s", sluice_strerror (rc));
}

Test (stage, sentences_one_chunk_each)
{
    s_buffers (8, 8);
    s_start (sluice_stage_sentences, NULL, false);
    const char *tokens [] = { "Hel", "lo", " world", ".", " How", " are", " you?", " Fi", "ne" };
    for (size_t index = 0; index < sizeof tokens / sizeof tokens [0]; index++)
        s_write (tokens [index], false);
    s_close_input ();
    T_EXPECT_CHUNK (fx.reader, "Hello world. ");
    T_EXPECT_CHUNK (fx.reader, "How are you? ");
    T_EXPECT_CHUNK (fx.reader, "Fine");
    T_EXPECT_EOS (fx.reader);
    cr_expect_eq (s_wait_stage (), SLUICE_OK);
}

Test (stage, keep_output_open_leaves_the_output_open)
{
    s_buffers (4, 4);
    s_start (sluice_stage_upper, NULL, true);
    s_write ("a", false);
    s_close_input ();
    cr_expect_eq (s_wait_stage (), SLUICE_OK);
    T_EXPECT_CHUNK (fx.reader, "A");
    sluice_buffer_status_t st;
    cr_assert_eq (sluice_stream_status (fx.reader, &st), SLUICE_OK);
    cr_expect (!st.closed, "keep_output_open: the output was closed");
    T_EXPECT_EMPTY (fx.reader);
}

Test (stage, a_failing_transform_stops_the_stage_and_closes_the_output)
{
    s_buffers (8, 8);
    s_start (s_fail_on_boom, NULL, false);
    s_write ("fine", false);
    s_write ("boom", false);
    s_write ("never", false);
    T_EXPECT_CHUNK (fx.reader, "fine");
    T_EXPECT_EOS (fx.reader);          //  downstream is not left waiting
    cr_expect_eq (s_wait_stage (), SLUICE_EINTERNAL);
    cr_expect (strstr (sluice_stage_error_text (fx.stage), "transform") != NULL,
               "error text: '%s'", sluice_stage_error_text (fx.stage));
    //  The failing chunk and what followed it stay in the input
    T_EXPECT_CHUNK (fx.writer, "never");
}

Test (stage, output_closed_under_the_stage_is_reported)
{
    s_buffers (4, 4);
    sluice_buffer_close (fx.out_buf);
    s_start (sluice_stage_upper, NULL, false);
    s_write ("lost", false);
    cr_expect_eq (s_wait_stage (), SLUICE_ECLOSED);
    cr_expect (strstr (sluice_stage_error_text (fx.stage), "output") != NULL,
               "error text: '%s'", sluice_stage_error_text (fx.stage));
}

Test (stage, actor_handle_becomes_readable_when_done)
{
    s_buffers (4, 4);
    s_start (sluice_stage_upper, NULL, false);
    void *handle = sluice_stage_actor_handle (fx.stage);
    cr_assert_not_null (handle);
    cr_expect_eq (sluice_stage_wait (fx.stage, 0), SLUICE_ETIMEOUT, "done before its input ended");
    s_close_input ();
    zmq_pollitem_t item = { zsock_resolve (handle), 0, ZMQ_POLLIN, 0 };
    cr_assert_eq (zmq_poll (&item, 1, T_WAIT_MS), 1, "the handle never became readable");
    cr_expect_eq (sluice_stage_wait (fx.stage, 0), SLUICE_OK);
    cr_expect_eq (sluice_stage_wait (fx.stage, 0), SLUICE_OK, "the result is kept");
    T_EXPECT_EOS (fx.reader);
}

Test (stage, destroy_interrupts_a_blocked_stage_and_leaves_the_output_open)
{
    s_buffers (4, 1);
    s_start (sluice_stage_upper, NULL, false);
    //  Blocked reading an empty input
    sluice_buffer_status_t st;
    S_WAIT_STATUS (fx.writer, st, st.parked_readers == 1);
    sluice_stage_destroy (&fx.stage);
    cr_assert_null (fx.stage);
    cr_assert_eq (sluice_stream_status (fx.reader, &st), SLUICE_OK);
    cr_expect (!st.closed);

    //  Blocked writing into a full output
    s_start (sluice_stage_upper, NULL, false);
    s_write ("a", false);
    s_write ("b", false);
    S_WAIT_STATUS (fx.reader, st, st.parked_writers == 1);
    sluice_stage_destroy (&fx.stage);
    cr_assert_eq (sluice_stream_status (fx.reader, &st), SLUICE_OK);
    cr_expect (!st.closed);
    sluice_stage_destroy (&fx.stage);       //  NULL: nothing
}

Test (stage, invalid_options)
{
    sluice_err_t err = SLUICE_OK;
    cr_expect_null (sluice_stage_new (NULL, &err));
    cr_expect_eq (err, SLUICE_EINVAL);
    err = SLUICE_OK;
    cr_expect_null (sluice_stage_new (&(sluice_stage_opts_t) {
        .input = "inproc://a", .output = "inproc://b" }, &err));
    cr_expect_eq (err, SLUICE_EINVAL, "no transform: %s", sluice_strerror (err));
    err = SLUICE_OK;
    cr_expect_null (sluice_stage_new (&(sluice_stage_opts_t) {
        .input = "inproc://a", .transform = sluice_stage_upper }, &err));
    cr_expect_eq (err, SLUICE_EINVAL, "no output: %s", sluice_strerror (err));
    cr_expect_null (sluice_stage_new (&(sluice_stage_opts_t) {
        .input = "", .output = "inproc://b", .transform = sluice_stage_upper }, NULL));

    //  An endpoint the client cannot connect to: the stage starts and reports it
    fx.stage = sluice_stage_new (&(sluice_stage_opts_t) {
        .input = "nosuchtransport://x", .output = "inproc://b",
        .transform = sluice_stage_upper }, &err);
    cr_assert_not_null (fx.stage);
    cr_expect_eq (s_wait_stage (), SLUICE_EINVAL);
    cr_expect (strstr (sluice_stage_error_text (fx.stage), "nosuchtransport") != NULL,
               "error text: '%s'", sluice_stage_error_text (fx.stage));
}

// ---------------------------------------------------------------------------------------------
//  Exec stages: an external command between the buffers

static void
s_start_exec (const char *command, bool lines)
{
    sluice_err_t err = SLUICE_EINTERNAL;
    fx.stage = sluice_stage_new (&(sluice_stage_opts_t) {
        .input = fx.in, .output = fx.out, .exec = command, .exec_lines = lines }, &err);
    cr_assert_not_null (fx.stage, "sluice_stage_new: %s", sluice_strerror (err));
}

//  Everything up to the end of the stream, concatenated (the caller frees it).
static char *
s_read_all (size_t *size, size_t *chunks)
{
    char *data = NULL;
    *size = 0;
    if (chunks)
        *chunks = 0;
    while (true) {
        sluice_chunk_t chunk;
        T_READ (fx.reader, chunk);
        if (chunk.is_eos)
            break;
        data = (char *) realloc (data, *size + chunk.size + 1);
        cr_assert_not_null (data);
        memcpy (data + *size, chunk.text, chunk.size);
        *size += chunk.size;
        data [*size] = 0;
        if (chunks)
            (*chunks)++;
    }
    return data;
}

Test (stage, exec_lines_come_back_in_order)
{
    s_buffers (256, 256);
    s_start_exec ("tr a-z A-Z", true);
    char line [32];
    for (int index = 0; index < 200; index++) {
        snprintf (line, sizeof line, "line %d\n", index);
        s_write (line, false);
    }
    s_close_input ();
    for (int index = 0; index < 200; index++) {
        snprintf (line, sizeof line, "LINE %d", index);
        T_EXPECT_CHUNK (fx.reader, line);
    }
    T_EXPECT_EOS (fx.reader);
    cr_expect_eq (s_wait_stage (), SLUICE_OK, "%s", sluice_stage_error_text (fx.stage));
    cr_expect_eq (sluice_stage_exit_status (fx.stage), 0);
    cr_expect_eq (sluice_stage_consumed (fx.stage), 200);
}

Test (stage, exec_passes_binary_data_unchanged)
{
    s_buffers (128, 128);
    s_start_exec ("cat", false);
    enum { CHUNK = 1000, COUNT = 100 };
    static char data [CHUNK * COUNT];
    uint32_t state = 12345;
    for (size_t index = 0; index < sizeof data; index++) {
        state = state * 1103515245u + 12345u;
        data [index] = (char) (state >> 16);        //  NULs and newlines included
    }
    for (size_t index = 0; index < COUNT; index++) {
        sluice_err_t rc = sluice_stream_write_timeout (fx.writer, data + index * CHUNK, CHUNK,
                                                       false, T_WAIT_MS);
        cr_assert_eq (rc, SLUICE_OK);
    }
    s_close_input ();
    size_t size;
    char *got = s_read_all (&size, NULL);
    cr_assert_eq (size, sizeof data);
    cr_expect (memcmp (got, data, size) == 0, "bytes changed on the way");
    free (got);
    cr_expect_eq (s_wait_stage (), SLUICE_OK, "%s", sluice_stage_error_text (fx.stage));
}

typedef struct {
    sluice_stream_t *writer;
    size_t count, size;
    sluice_err_t result;
} s_bulk_t;

static void *
s_bulk_writer (void *argument)
{
    s_bulk_t *bulk = (s_bulk_t *) argument;
    char *chunk = (char *) malloc (bulk->size);
    memset (chunk, 'z', bulk->size);
    bulk->result = SLUICE_OK;
    for (size_t index = 0; index < bulk->count && bulk->result == SLUICE_OK; index++)
        bulk->result = sluice_stream_write_timeout (bulk->writer, chunk, bulk->size, false, T_WAIT_MS);
    if (bulk->result == SLUICE_OK)
        bulk->result = sluice_stream_close (bulk->writer);
    free (chunk);
    return NULL;
}

Test (stage, exec_backpressure_a_command_that_does_not_read_holds_the_writer_back)
{
    //  The command waits on a fifo before it reads anything: the pipe to its stdin fills,
    //  then the input buffer, then the writer parks
    char dir [] = "/tmp/sluice-exec-XXXXXX", gate [64], command [128];
    cr_assert_not_null (mkdtemp (dir));
    snprintf (gate, sizeof gate, "%s/gate", dir);
    cr_assert_eq (mkfifo (gate, 0600), 0);
    snprintf (command, sizeof command, "cat %s > /dev/null; cat", gate);
    s_buffers (2, 64);
    s_start_exec (command, false);
    s_bulk_t bulk = { .writer = fx.writer, .count = 48, .size = 16384 };
    size_t thread = t_spawn (s_bulk_writer, &bulk);
    sluice_stream_t *probe = sluice_stream_new (fx.in);
    sluice_buffer_status_t st;
    S_WAIT_STATUS (probe, st, st.parked_writers == 1 && st.queued == st.capacity);
    cr_expect_lt (sluice_stage_consumed (fx.stage), bulk.count, "the stage read everything");
    //  Open the gate: the command reads, and everything flows
    int fd = open (gate, O_WRONLY);
    cr_assert_geq (fd, 0);
    close (fd);
    size_t size;
    char *got = s_read_all (&size, NULL);
    cr_expect_eq (size, bulk.count * bulk.size);
    free (got);
    t_join (thread);
    cr_expect_eq (bulk.result, SLUICE_OK, "writer: %s", sluice_strerror (bulk.result));
    cr_expect_eq (s_wait_stage (), SLUICE_OK, "%s", sluice_stage_error_text (fx.stage));
    sluice_stream_destroy (&probe);
    unlink (gate);
    rmdir (dir);
}

Test (stage, exec_failing_command_reports_status_and_stderr)
{
    s_buffers (4, 4);
    s_start_exec ("cat > /dev/null; echo something went wrong >&2; exit 3", false);
    s_write ("input", false);
    s_close_input ();
    T_EXPECT_EOS (fx.reader);       //  the output is closed all the same
    cr_expect_eq (s_wait_stage (), SLUICE_EINTERNAL);
    const char *text = sluice_stage_error_text (fx.stage);
    cr_expect (strstr (text, "status 3") && strstr (text, "something went wrong"), "'%s'", text);
    cr_expect_eq (sluice_stage_exit_status (fx.stage), 3);
}

Test (stage, exec_command_that_exits_early_ends_the_stage_and_closes_the_input)
{
    s_buffers (8, 8);
    s_start_exec ("head -c 5", false);
    s_write ("abc", false);
    s_write ("defgh", false);
    size_t size;
    char *got = s_read_all (&size, NULL);
    cr_expect (size == 5 && memcmp (got, "abcde", 5) == 0, "got '%.*s'", (int) size, got);
    free (got);
    cr_expect_eq (s_wait_stage (), SLUICE_OK, "%s", sluice_stage_error_text (fx.stage));
    sluice_err_t rc = sluice_stream_write_timeout (fx.writer, "x", 1, false, T_WAIT_MS);
    cr_expect_eq (rc, SLUICE_ECLOSED, "the input stays open: %s", sluice_strerror (rc));
}

Test (stage, exec_stop_kills_a_command_that_never_ends)
{
    s_buffers (4, 4);
    s_start_exec ("exec sleep 1000", false);
    cr_expect_eq (sluice_stage_stop (fx.stage), SLUICE_OK);
    cr_expect_eq (s_wait_stage (), SLUICE_EINTR);
    cr_expect_eq (sluice_stage_exit_status (fx.stage), 128 + SIGKILL);
}

Test (stage, exec_invalid_options)
{
    sluice_err_t err = SLUICE_OK;
    cr_expect_null (sluice_stage_new (&(sluice_stage_opts_t) {
        .input = "inproc://a", .output = "inproc://b", .exec = "cat",
        .transform = sluice_stage_upper }, &err));
    cr_expect_eq (err, SLUICE_EINVAL, "both: %s", sluice_strerror (err));
    cr_expect_null (sluice_stage_new (&(sluice_stage_opts_t) {
        .input = "inproc://a", .output = "inproc://b", .exec = "" }, &err));
    cr_expect_eq (err, SLUICE_EINVAL, "empty command: %s", sluice_strerror (err));
}
