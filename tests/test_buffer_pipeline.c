/*  test_buffer_pipeline.c - pipelined writes (a window of writes in flight) and batched reads.

    The window and the batch are opt-in; what they must keep: every chunk exactly once, each
    writer's order, the buffer's bound, and errors of writes in flight reported, never lost.
*/
#include "common.h"

TestSuite (pipeline, .init = t_fx_init, .fini = t_fx_fini, .timeout = T_SUITE_TIMEOUT);

#define COUNT 2000

typedef struct {
    size_t window;
    size_t write_batch;         //  chunks per WRITE (1 = one each)
    sluice_err_t rc;            //  first failure, checked by the main thread
    int failed_at;
} s_writer_t;

static void *
s_windowed_writer (void *arg)
{
    s_writer_t *writer = (s_writer_t *) arg;
    sluice_stream_t *stream = sluice_stream_new (t_fx.endpoint);
    writer->rc = sluice_stream_set_window (stream, writer->window);
    if (writer->rc == SLUICE_OK)
        writer->rc = sluice_stream_set_write_batch (stream, writer->write_batch);
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
s_pipeline (size_t capacity, size_t window, size_t batch, size_t write_batch)
{
    t_start (capacity);
    s_writer_t writer = { .window = window, .write_batch = write_batch };
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

Test (pipeline, window_64_batch_16_at_capacity_8)   { s_pipeline (8, 64, 16, 1); }
Test (pipeline, window_16_batch_64_at_capacity_64)  { s_pipeline (64, 16, 64, 1); }
Test (pipeline, window_1_batch_1_at_capacity_1)     { s_pipeline (1, 1, 1, 1); }
Test (pipeline, batched_writes_of_8_at_capacity_8)  { s_pipeline (8, 2, 8, 8); }
Test (pipeline, batched_writes_of_64_at_capacity_64) { s_pipeline (64, 4, 64, 64); }
Test (pipeline, batched_writes_window_1_capacity_1) { s_pipeline (1, 1, 1, 1); }
Test (pipeline, batched_writes_of_3_at_capacity_5)  { s_pipeline (5, 3, 2, 3); }

//  Batches form only while writes are in flight, and the buffer admits a batch whole
Test (pipeline, a_write_batch_forms_while_the_window_is_full_and_goes_in_whole)
{
    t_start (2);
    T_WRITE (t_fx.cli, "a");
    T_WRITE (t_fx.cli, "b");                    //  full
    sluice_stream_t *writer = t_stream ();
    cr_assert_eq (sluice_stream_set_window (writer, 1), SLUICE_OK);
    cr_assert_eq (sluice_stream_set_write_batch (writer, 2), SLUICE_OK);
    cr_assert_eq (sluice_stream_write_str (writer, "c"), SLUICE_OK);    //  sent, parks
    T_WAIT_PARKED_WRITERS (1);
    //  The window is full: "d" waits in the stream, and the call returns at once
    cr_assert_eq (sluice_stream_write_str (writer, "d"), SLUICE_OK);
    cr_assert_eq (t_status ().parked_writers, 1);
    T_EXPECT_CHUNK (t_fx.cli, "a");
    T_ACK (t_fx.cli);                           //  "c" is admitted
    //  A final chunk sends the batch ["d", "e"]: one request, two chunks, no room for both
    cr_assert_eq (sluice_stream_write (writer, "e", 1, true), SLUICE_OK);
    sluice_buffer_status_t st;
    T_WAIT_STATUS (st, st.parked_writers == 1 && st.queued == 2 && st.written == 3);
    T_EXPECT_CHUNK (t_fx.cli, "b");
    T_ACK (t_fx.cli);
    //  One slot free is not enough for the batch
    st = t_status ();
    cr_assert_eq (st.parked_writers, 1, "a batch went in without room for all of it");
    cr_assert_eq (st.queued, 1);
    T_EXPECT_CHUNK (t_fx.cli, "c");
    T_ACK (t_fx.cli);
    cr_assert_eq (sluice_stream_flush (writer), SLUICE_OK);
    st = t_status ();
    cr_assert_eq (st.queued, 2);
    cr_assert_eq (st.written, 5);
    T_EXPECT_CHUNK (t_fx.cli, "d");
    T_EXPECT_CHUNK_F (t_fx.cli, "e", true);
}

Test (pipeline, a_batch_larger_than_the_capacity_is_refused_and_reported)
{
    t_start (2);
    T_WRITE (t_fx.cli, "a");
    T_WRITE (t_fx.cli, "b");
    sluice_stream_t *writer = t_stream ();
    cr_assert_eq (sluice_stream_set_window (writer, 1), SLUICE_OK);
    cr_assert_eq (sluice_stream_set_write_batch (writer, 3), SLUICE_OK);
    cr_assert_eq (sluice_stream_write_str (writer, "c"), SLUICE_OK);
    T_WAIT_PARKED_WRITERS (1);
    cr_assert_eq (sluice_stream_write_str (writer, "d"), SLUICE_OK);
    cr_assert_eq (sluice_stream_write_str (writer, "e"), SLUICE_OK);
    T_EXPECT_CHUNK (t_fx.cli, "a");
    T_ACK (t_fx.cli);                           //  "c" is admitted
    //  ["d", "e", "f"] cannot fit a buffer of 2 whatever happens: refused, not parked forever
    cr_assert_eq (sluice_stream_write_str (writer, "f"), SLUICE_OK);
    sluice_err_t rc = sluice_stream_flush (writer);
    cr_assert_eq (rc, SLUICE_EPROTO, "flush returned %s", sluice_strerror (rc));
    cr_assert (strstr (sluice_stream_error_text (writer), "capacity"),
               "error text: %s", sluice_stream_error_text (writer));
    sluice_buffer_status_t st = t_status ();
    cr_assert_eq (st.written, 3);
    cr_assert_eq (st.parked_writers, 0);
}

Test (pipeline, flush_sends_the_pending_batch)
{
    t_start (4);
    T_WRITE (t_fx.cli, "a");
    T_WRITE (t_fx.cli, "b");
    T_WRITE (t_fx.cli, "c");
    T_WRITE (t_fx.cli, "d");
    sluice_stream_t *writer = t_stream ();
    cr_assert_eq (sluice_stream_set_window (writer, 1), SLUICE_OK);
    cr_assert_eq (sluice_stream_set_write_batch (writer, 4), SLUICE_OK);
    cr_assert_eq (sluice_stream_write_str (writer, "e"), SLUICE_OK);
    T_WAIT_PARKED_WRITERS (1);
    cr_assert_eq (sluice_stream_write_str (writer, "f"), SLUICE_OK);     //  pending
    T_EXPECT_CHUNK (t_fx.cli, "a");             //  "e" is admitted; "f" still waits in the stream
    T_EXPECT_CHUNK (t_fx.cli, "b");
    T_EXPECT_CHUNK (t_fx.cli, "c");
    T_EXPECT_CHUNK (t_fx.cli, "d");
    cr_assert_eq (sluice_stream_flush (writer), SLUICE_OK);
    T_EXPECT_CHUNK (t_fx.cli, "e");
    T_EXPECT_CHUNK (t_fx.cli, "f");
    T_EXPECT_EMPTY (t_fx.cli);
}

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

Test (pipeline, a_pending_batch_goes_out_within_16_writes_once_its_replies_are_back)
{
    //  A writer looks for returned acknowledgements at a batch's first chunk, then at most
    //  every 16 chunks (and 50 us) or once a millisecond (src/sluice_stream.c, S_LOOK_*): a
    //  chunk that found the write before it in flight goes out within 16 more writes once the
    //  reply is back, long before its batch (64) is full
    t_start (64);
    sluice_stream_t *reader = t_stream ();
    sluice_stream_t *writer = t_stream ();
    cr_assert_eq (sluice_stream_set_window (writer, 4), SLUICE_OK);
    cr_assert_eq (sluice_stream_set_write_batch (writer, 64), SLUICE_OK);
    //  A full buffer: the writer's first WRITE parks, so its second chunk finds it in flight
    for (int index = 0; index < 64; index++)
        T_WRITE (t_fx.cli, "old");
    cr_assert_eq (sluice_stream_write_str (writer, "c1"), SLUICE_OK);    //  sent, parks
    cr_assert_eq (sluice_stream_write_str (writer, "c2"), SLUICE_OK);    //  pending
    //  Room: c1 is admitted and its OK waits in the writer's socket
    for (int index = 0; index < 64; index++)
        T_EXPECT_CHUNK (reader, "old");
    T_EXPECT_CHUNK (reader, "c1");
    char text [16];
    for (int index = 3; index <= 18; index++) {
        snprintf (text, sizeof text, "c%d", index);
        cr_assert_eq (sluice_stream_write_str (writer, text), SLUICE_OK);
    }
    //  No flush, no other call on the writer: the writes themselves sent the batch
    sluice_chunk_t chunk;
    sluice_err_t rc = sluice_stream_read_timeout (reader, &chunk, T_WAIT_MS);
    cr_assert_eq (rc, SLUICE_OK, "c2 still held after 16 more writes with its reply back: %s",
                  sluice_strerror (rc));
    cr_assert_str_eq (chunk.text, "c2");
    cr_assert_eq (sluice_stream_flush (writer), SLUICE_OK);
}

Test (pipeline, invalid_window_and_batch_are_refused)
{
    t_start (1);
    cr_assert_eq (sluice_stream_set_window (t_fx.cli, 0), SLUICE_EINVAL);
    cr_assert_eq (sluice_stream_set_batch (t_fx.cli, 0), SLUICE_EINVAL);
    cr_assert_eq (sluice_stream_set_batch (t_fx.cli, SLUICE_MAX_BATCH + 1), SLUICE_EINVAL);
    cr_assert_eq (sluice_stream_set_write_batch (t_fx.cli, 0), SLUICE_EINVAL);
    cr_assert_eq (sluice_stream_set_write_batch (t_fx.cli, SLUICE_MAX_BATCH + 1), SLUICE_EINVAL);
}
