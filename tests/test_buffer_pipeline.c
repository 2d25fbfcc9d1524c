/*  test_buffer_pipeline.c - pipelined writes (a window of writes in flight) and batched reads.

    The window and the batch are opt-in; what they must keep: every chunk exactly once, each
    writer's order, the buffer's bound, and errors of writes in flight reported, never lost.
*/
#include "common.h"

TestSuite (pipeline, .init = t_fx_init, .fini = t_fx_fini, .timeout = T_SUITE_TIMEOUT);

#define COUNT 2000

typedef struct {
    size_t window;
    sluice_err_t rc;            //  first failure, checked by the main thread
    int failed_at;
} s_writer_t;

static void *
s_windowed_writer (void *arg)
{
    s_writer_t *writer = (s_writer_t *) arg;
    sluice_stream_t *stream = sluice_stream_new (t_fx.endpoint);
    writer->rc = sluice_stream_set_window (stream, writer->window);
    char text [32];
    for (int seq = 0; seq < COUNT && writer->rc == SLUICE_OK; seq++) {
        snprintf (text, sizeof text, "%d", seq);
        writer->rc = sluice_stream_write (stream, text, strlen (text), false);
        writer->failed_at = seq;
    }
    if (writer->rc == SLUICE_OK)
        writer->rc = sluice_stream_flush (stream);
    //  Close even after a failure, so that the reader ends
    sluice_err_t closed = sluice_stream_close (stream);
    if (writer->rc == SLUICE_OK)
        writer->rc = closed;
    sluice_stream_destroy (&stream);
    return NULL;
}

static void
s_pipeline (size_t capacity, size_t window, size_t batch)
{
    t_start (capacity);
    s_writer_t writer = { .window = window };
    size_t thread = t_spawn (s_windowed_writer, &writer);
    sluice_stream_t *reader = sluice_stream_new (t_fx.endpoint);
    cr_assert_eq (sluice_stream_set_batch (reader, batch), SLUICE_OK);
    sluice_chunk_t chunk;
    int expected = 0;
    while (sluice_stream_next (reader, &chunk)) {
        cr_assert_eq (atoi (chunk.text), expected, "got %s, expected %d", chunk.text, expected);
        expected++;
        sluice_buffer_status_t st = t_status ();
        cr_assert_leq (st.queued, capacity, "the queue outgrew its capacity");
    }
    cr_assert_eq (sluice_stream_error (reader), SLUICE_OK);
    t_join (thread);
    cr_assert_eq (writer.rc, SLUICE_OK, "writer failed at %d: %s", writer.failed_at,
                  sluice_strerror (writer.rc));
    cr_assert_eq (expected, COUNT, "chunks lost or duplicated");
    sluice_stream_destroy (&reader);
}

Test (pipeline, window_64_batch_16_at_capacity_8)   { s_pipeline (8, 64, 16); }
Test (pipeline, window_16_batch_64_at_capacity_64)  { s_pipeline (64, 16, 64); }
Test (pipeline, window_1_batch_1_at_capacity_1)     { s_pipeline (1, 1, 1); }

Test (pipeline, an_error_on_a_write_in_flight_is_reported)
{
    t_start (1);
    sluice_stream_t *writer = t_stream ();
    cr_assert_eq (sluice_stream_set_window (writer, 8), SLUICE_OK);
    //  The first write fills the buffer; the next ones wait in the buffer, in flight
    for (int index = 0; index < 4; index++)
        cr_assert_eq (sluice_stream_write_str (writer, "x"), SLUICE_OK);
    T_WAIT_PARKED_WRITERS (3);
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    //  The parked writes were refused: the writer learns it from its next call
    sluice_err_t rc = sluice_stream_flush (writer);
    cr_assert_eq (rc, SLUICE_ECLOSED, "flush returned %s", sluice_strerror (rc));
    cr_assert_str_eq (sluice_stream_error_text (writer), "buffer is closed: write refused");
    //  Reported once: the stream is usable again
    cr_assert_eq (sluice_stream_flush (writer), SLUICE_OK);
    sluice_buffer_status_t st = t_status ();
    cr_assert_eq (st.written, 1);
}

Test (pipeline, a_batch_stops_after_a_final_chunk)
{
    t_start (8);
    T_WRITE (t_fx.cli, "a");
    cr_assert_eq (sluice_stream_write (t_fx.cli, "end", 3, true), SLUICE_OK);
    T_WRITE (t_fx.cli, "after");
    sluice_stream_t *reader = t_stream ();
    cr_assert_eq (sluice_stream_set_batch (reader, 8), SLUICE_OK);
    sluice_chunk_t chunk;
    cr_assert (sluice_stream_next (reader, &chunk));
    cr_assert_str_eq (chunk.text, "a");
    cr_assert (sluice_stream_next (reader, &chunk));
    cr_assert_str_eq (chunk.text, "end");
    cr_assert (chunk.is_final);
    cr_assert (!sluice_stream_next (reader, &chunk), "the stream went on after a final chunk");
    //  "after" was not taken by that reader's batch
    T_EXPECT_CHUNK (t_fx.cli, "after");
}

Test (pipeline, invalid_window_and_batch_are_refused)
{
    t_start (1);
    cr_assert_eq (sluice_stream_set_window (t_fx.cli, 0), SLUICE_EINVAL);
    cr_assert_eq (sluice_stream_set_batch (t_fx.cli, 0), SLUICE_EINVAL);
    cr_assert_eq (sluice_stream_set_batch (t_fx.cli, SLUICE_MAX_BATCH + 1), SLUICE_EINVAL);
}
