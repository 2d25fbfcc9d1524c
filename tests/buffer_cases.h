/*  buffer_cases.h - the core buffer suite, shared by test_buffer.c (inproc) and
    test_buffer_tcp.c (tcp://127.0.0.1). Include it after defining CASES_SUITE (the Criterion
    suite name) and, for tcp, T_TCP 1 (see common.h). Every test binds its own buffer through
    the fixture, and every client connects to sluice_buffer_endpoint (), so the same bodies
    run over either transport.
*/
#ifndef SLUICE_TEST_BUFFER_CASES_H_INCLUDED
#define SLUICE_TEST_BUFFER_CASES_H_INCLUDED

#include "common.h"
#include "sluice_conn.h"
#include <limits.h>
#include <semaphore.h>

#ifndef CASES_SUITE
#error "define CASES_SUITE before including buffer_cases.h"
#endif

//  Indirection so that CASES_SUITE is expanded before Criterion pastes it into names.
#define CASES_SUITE_DECL_(suite) \
    TestSuite (suite, .init = t_fx_init, .fini = t_fx_fini, .timeout = T_SUITE_TIMEOUT)
#define CASES_TEST_(suite, name) T_TEST (suite, name)
#define CASES_SUITE_DECL(suite) CASES_SUITE_DECL_ (suite)
#define CASE(name) CASES_TEST_ (CASES_SUITE, name)

CASES_SUITE_DECL (CASES_SUITE);

// =============================================================================================
//  STATUS

CASE (status_of_a_new_buffer)
{
    t_start (5);
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.capacity, 5);
    cr_expect_eq (st.queued, 0);
    cr_expect_eq (st.parked_writers, 0);
    cr_expect_eq (st.parked_readers, 0);
    cr_expect_eq (st.closed, false);
    cr_expect_eq (st.written, 0);
    cr_expect_eq (st.read, 0);
    cr_expect_eq (st.max_chunk_size, SLUICE_BUFFER_DEFAULT_MAX_CHUNK);
}

CASE (status_reports_configured_max_chunk_size)
{
    t_start_opts (2, 100, 0, false);
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.capacity, 2);
    cr_expect_eq (st.max_chunk_size, 100);
}

CASE (status_counts_writes_reads_and_close)
{
    t_start (4);
    T_WRITE (t_fx.cli, "a");
    T_WRITE (t_fx.cli, "b");
    T_WRITE (t_fx.cli, "c");
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.queued, 3);
    cr_expect_eq (st.written, 3);
    cr_expect_eq (st.read, 0);
    T_EXPECT_CHUNK (t_fx.cli, "a");
    st = t_status ();
    cr_expect_eq (st.queued, 2);
    cr_expect_eq (st.written, 3);
    cr_expect_eq (st.read, 1);
    cr_expect_eq (st.closed, false);
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    st = t_status ();
    cr_expect_eq (st.closed, true);
    cr_expect_eq (st.queued, 2);
    cr_expect_eq (st.capacity, 4);
}

CASE (status_from_a_second_client_sees_the_same_state)
{
    t_start (3);
    sluice_stream_t *other = t_stream ();
    T_WRITE (t_fx.cli, "a");
    sluice_buffer_status_t st = t_status_of (other);
    cr_expect_eq (st.queued, 1);
    cr_expect_eq (st.written, 1);
}

// =============================================================================================
//  WRITE / READ

CASE (write_then_read_one_chunk)
{
    t_start (3);
    cr_assert_eq (sluice_stream_write_str (t_fx.cli, "hello"), SLUICE_OK);
    cr_expect_eq (sluice_stream_error (t_fx.cli), SLUICE_OK);
    cr_expect_not (sluice_stream_was_parked (t_fx.cli), "a write with room was parked");
    sluice_chunk_t c;
    cr_assert_eq (sluice_stream_read (t_fx.cli, &c), SLUICE_OK);
    cr_assert_eq (c.size, 5);
    cr_assert_str_eq (c.text, "hello");
    cr_expect_not (c.is_final);
    cr_expect_not (c.is_eos);
    cr_expect_not (sluice_stream_was_parked (t_fx.cli), "a read with a chunk there was parked");
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.queued, 0);
    cr_expect_eq (st.read, 1);
}

CASE (chunks_come_out_in_write_order_with_their_flags)
{
    t_start (8);
    cr_assert_eq (sluice_stream_write (t_fx.cli, "one", 3, false), SLUICE_OK);
    cr_assert_eq (sluice_stream_write (t_fx.cli, "two", 3, true), SLUICE_OK);
    cr_assert_eq (sluice_stream_write (t_fx.cli, "three", 5, false), SLUICE_OK);
    T_EXPECT_CHUNK_F (t_fx.cli, "one", false);
    T_EXPECT_CHUNK_F (t_fx.cli, "two", true);
    T_EXPECT_CHUNK_F (t_fx.cli, "three", false);
    //  is_final marks a chunk; it does not close the buffer
    cr_expect_eq (t_status ().closed, false);
    T_EXPECT_EMPTY (t_fx.cli);
}

CASE (final_chunk_is_not_the_end_of_stream_sentinel)
{
    t_start (2);
    cr_assert_eq (sluice_stream_write (t_fx.cli, "bye", 3, true), SLUICE_OK);
    sluice_chunk_t c;
    T_READ (t_fx.cli, c);
    cr_expect (c.is_final);
    cr_expect_not (c.is_eos, "a final chunk of an open buffer was reported as end of stream");
    cr_expect_eq (c.size, 3);
}

CASE (binary_chunk_round_trips_byte_for_byte)
{
    t_start (2);
    unsigned char data [300];
    t_pattern (data, sizeof data, 7);
    cr_assert_eq (sluice_stream_write (t_fx.cli, data, sizeof data, false), SLUICE_OK);
    sluice_chunk_t c;
    T_READ (t_fx.cli, c);
    cr_assert_eq (c.size, sizeof data);
    cr_assert (memcmp (c.text, data, sizeof data) == 0, "binary chunk corrupted");
    cr_assert_eq (c.text [c.size], '\0');
}

CASE (chunk_of_exactly_the_default_maximum_is_accepted)
{
    t_start (1);
    size_t size = SLUICE_BUFFER_DEFAULT_MAX_CHUNK;
    unsigned char *data = malloc (size);
    cr_assert_not_null (data);
    t_pattern (data, size, 3);
    sluice_err_t rc = sluice_stream_write (t_fx.cli, data, size, false);
    if (rc != SLUICE_OK)
        free (data);
    cr_assert_eq (rc, SLUICE_OK, "1 MiB write: %s", sluice_strerror (rc));
    sluice_chunk_t c;
    rc = sluice_stream_read_timeout (t_fx.cli, &c, T_WAIT_MS);
    bool same = rc == SLUICE_OK && c.size == size && memcmp (c.text, data, size) == 0;
    free (data);
    cr_assert_eq (rc, SLUICE_OK);
    cr_assert (same, "1 MiB chunk came back different (%zu bytes)", c.size);
}

CASE (write_fills_the_buffer_up_to_capacity)
{
    t_start (3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq (sluice_stream_write_timeout (t_fx.cli, "x", 1, false, 0), SLUICE_OK,
                      "write %d of 3 into a buffer of capacity 3", i);
        cr_expect_not (sluice_stream_was_parked (t_fx.cli));
    }
    cr_assert_eq (sluice_stream_write_timeout (t_fx.cli, "y", 1, false, 0), SLUICE_ETIMEOUT,
                  "a 4th write fitted into a buffer of capacity 3");
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.queued, 3);
    cr_expect_eq (st.written, 3);
    cr_expect_eq (st.parked_writers, 0);
}

CASE (blocking_read_waits_for_a_write)
{
    t_start (2);
    static t_op_t r;
    t_op_read (&r, SLUICE_FOREVER);
    t_park_op (&r, 1);
    T_WRITE (t_fx.cli, "late");
    t_join_all ();
    cr_assert_eq (r.rc, SLUICE_OK);
    cr_assert_str_eq (r.got, "late");
    cr_expect_not (r.got_eos);
    cr_expect (r.parked, "a read that waited did not report it was parked");
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.queued, 0, "the chunk went to the parked reader and stayed queued too");
    cr_expect_eq (st.read, 1);
    T_EXPECT_EMPTY (t_fx.cli);
}

CASE (blocking_write_waits_for_a_read)
{
    t_start (1);
    T_WRITE (t_fx.cli, "first");
    static t_op_t w;
    t_op_write (&w, "second", false, SLUICE_FOREVER);
    t_park_op (&w, 1);
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.queued, 1, "a parked write was enqueued beyond capacity");
    cr_expect_eq (st.written, 1);
    T_EXPECT_CHUNK (t_fx.cli, "first");
    T_EXPECT_CHUNK (t_fx.cli, "second");
    t_join_all ();
    cr_assert_eq (w.rc, SLUICE_OK);
    cr_expect (w.parked, "a write into a full buffer did not report backpressure");
}

// =============================================================================================
//  sluice_stream_was_parked

CASE (was_parked_reports_backpressure_on_a_full_buffer_only)
{
    t_start (1);
    cr_assert_eq (sluice_stream_write_str (t_fx.cli, "room"), SLUICE_OK);
    cr_expect_not (sluice_stream_was_parked (t_fx.cli), "write with room reported as parked");

    static t_op_t w;
    t_op_write (&w, "full", false, SLUICE_FOREVER);
    t_park_op (&w, 1);
    T_EXPECT_CHUNK (t_fx.cli, "room");
    cr_expect_not (sluice_stream_was_parked (t_fx.cli), "read of a queued chunk reported parked");
    T_EXPECT_CHUNK (t_fx.cli, "full");
    t_join_all ();
    cr_assert_eq (w.rc, SLUICE_OK);
    cr_expect (w.parked, "write into a full buffer not reported as parked");
}

CASE (was_parked_reports_a_read_that_waited)
{
    t_start (1);
    static t_op_t r;
    t_op_read (&r, SLUICE_FOREVER);
    t_park_op (&r, 1);
    T_WRITE (t_fx.cli, "x");
    cr_expect_not (sluice_stream_was_parked (t_fx.cli),
                   "write handed straight to a parked reader reported as parked");
    t_join_all ();
    cr_assert_eq (r.rc, SLUICE_OK);
    cr_expect (r.parked, "read from an empty buffer not reported as parked");
}

// =============================================================================================
//  CLOSE

CASE (close_is_idempotent)
{
    t_start (2);
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK, "second close failed");
    cr_assert_eq (sluice_buffer_close (t_fx.buf), SLUICE_OK, "owner's close after close");
    sluice_stream_t *other = t_stream ();
    cr_assert_eq (sluice_stream_close (other), SLUICE_OK, "close from another client");
    cr_expect_eq (t_status ().closed, true);
}

CASE (owner_close_ends_the_stream)
{
    t_start (2);
    static t_op_t r;
    t_op_read (&r, SLUICE_FOREVER);
    t_park_op (&r, 1);
    cr_assert_eq (sluice_buffer_close (t_fx.buf), SLUICE_OK);
    t_join_all ();
    cr_assert_eq (r.rc, SLUICE_OK);
    cr_expect (r.got_eos && r.got_final && r.got_size == 0, "parked reader did not get EOS");
    cr_expect_eq (t_status ().closed, true);
}

CASE (write_after_close_is_refused)
{
    t_start (2);
    T_WRITE (t_fx.cli, "before");
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    sluice_err_t rc = sluice_stream_write_str (t_fx.cli, "after");
    cr_assert_eq (rc, SLUICE_ECLOSED, "write after close: %s", sluice_strerror (rc));
    cr_expect_eq (sluice_stream_error (t_fx.cli), SLUICE_ECLOSED);
    rc = sluice_stream_write_timeout (t_fx.cli, "after2", 6, true, 0);
    cr_assert_eq (rc, SLUICE_ECLOSED, "write_timeout after close: %s", sluice_strerror (rc));
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.written, 1);
    cr_expect_eq (st.queued, 1);
    T_EXPECT_CHUNK (t_fx.cli, "before");
    T_EXPECT_EOS (t_fx.cli);
}

CASE (write_after_close_of_a_full_buffer_is_closed_not_timeout)
{
    t_start (1);
    T_WRITE (t_fx.cli, "fill");
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    sluice_err_t rc = sluice_stream_write_timeout (t_fx.cli, "x", 1, false, 0);
    cr_assert_eq (rc, SLUICE_ECLOSED, "got %s", sluice_strerror (rc));
    rc = sluice_stream_write_timeout (t_fx.cli, "x", 1, false, 200);
    cr_assert_eq (rc, SLUICE_ECLOSED, "a closed full buffer parked a write: %s",
                  sluice_strerror (rc));
    cr_expect_eq (t_status ().parked_writers, 0);
}

CASE (read_of_an_empty_closed_buffer_is_the_eos_sentinel)
{
    t_start (2);
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    sluice_chunk_t c;
    memset (&c, 0, sizeof c);
    cr_assert_eq (sluice_stream_read (t_fx.cli, &c), SLUICE_OK);
    T_ASSERT_EOS (c);
    cr_assert_not_null (c.text);
    cr_expect_eq (c.text [0], '\0');
    //  and again, and with a zero timeout: end of stream, never a timeout
    memset (&c, 0, sizeof c);
    cr_assert_eq (sluice_stream_read (t_fx.cli, &c), SLUICE_OK);
    T_ASSERT_EOS (c);
    memset (&c, 0, sizeof c);
    cr_assert_eq (sluice_stream_read_timeout (t_fx.cli, &c, 0), SLUICE_OK);
    T_ASSERT_EOS (c);
    cr_expect_eq (t_status ().read, 0, "end-of-stream sentinels counted as chunks read");
}

CASE (drain_after_close_delivers_queued_chunks_in_order_then_eos)
{
    t_start (5);
    T_WRITE (t_fx.cli, "a");
    T_WRITE (t_fx.cli, "b");
    cr_assert_eq (sluice_stream_write (t_fx.cli, "c", 1, true), SLUICE_OK);
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    cr_expect_eq (sluice_stream_write_str (t_fx.cli, "d"), SLUICE_ECLOSED);
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.queued, 3, "close dropped queued chunks");
    cr_expect_eq (st.closed, true);
    sluice_stream_t *other = t_stream ();
    T_EXPECT_CHUNK (t_fx.cli, "a");
    T_EXPECT_CHUNK (other, "b");
    T_ACK (other);                  //  end of stream waits until nothing can come back
    T_EXPECT_CHUNK_F (t_fx.cli, "c", true);
    for (int i = 0; i < 3; i++) {
        T_EXPECT_EOS (t_fx.cli);
        T_EXPECT_EOS (other);
    }
    st = t_status ();
    cr_expect_eq (st.queued, 0);
    cr_expect_eq (st.written, 3);
    cr_expect_eq (st.read, 3);
}

CASE (close_wakes_all_parked_readers)
{
    enum { N = 20 };
    t_start (4);
    static t_op_t r [N];
    static sem_t ready, finished, release;
    sem_init (&ready, 0, 0);
    sem_init (&finished, 0, 0);
    sem_init (&release, 0, 0);
    for (int i = 0; i < N; i++) {
        t_op_read (&r [i], SLUICE_FOREVER);
        r [i].ready = &ready;
        r [i].finished = &finished;
        r [i].release = &release;
        t_spawn_op (&r [i]);
    }
    t_sem_wait_n (&ready, N);
    T_WAIT_PARKED_READERS (N);
    for (int i = 0; i < N; i++)
        cr_assert_not (atomic_load (&r [i].done), "reader %d answered before close", i);
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    //  The close alone must wake every one (no client is destroyed before all have returned,
    //  so nothing else reaches the actor meanwhile).
    t_sem_wait_n_what (&finished, N, "were woken by close");
    t_sem_post_n (&release, N);
    t_join_all ();
    for (int i = 0; i < N; i++) {
        cr_expect_eq (r [i].rc, SLUICE_OK, "reader %d: %s", i, sluice_strerror (r [i].rc));
        cr_expect (r [i].got_eos && r [i].got_final && r [i].got_size == 0,
                   "reader %d did not get the end-of-stream sentinel", i);
    }
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.parked_readers, 0);
    cr_expect_eq (st.read, 0);
    sem_destroy (&ready);
    sem_destroy (&finished);
    sem_destroy (&release);
}

CASE (close_wakes_all_parked_writers_and_drops_none_of_the_queue)
{
    enum { N = 20 };
    t_start (2);
    T_WRITE (t_fx.cli, "q1");
    T_WRITE (t_fx.cli, "q2");
    static t_op_t w [N];
    static sem_t ready, finished, release;
    sem_init (&ready, 0, 0);
    sem_init (&finished, 0, 0);
    sem_init (&release, 0, 0);
    for (int i = 0; i < N; i++) {
        char text [32];
        snprintf (text, sizeof text, "parked-%d", i);
        t_op_write (&w [i], text, false, SLUICE_FOREVER);
        w [i].ready = &ready;
        w [i].finished = &finished;
        w [i].release = &release;
        t_spawn_op (&w [i]);
    }
    t_sem_wait_n (&ready, N);
    T_WAIT_PARKED_WRITERS (N);
    for (int i = 0; i < N; i++)
        cr_assert_not (atomic_load (&w [i].done), "writer %d answered before close", i);
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    t_sem_wait_n_what (&finished, N, "were woken by close");
    t_sem_post_n (&release, N);
    t_join_all ();
    for (int i = 0; i < N; i++)
        cr_expect_eq (w [i].rc, SLUICE_ECLOSED, "parked writer %d: %s", i,
                      sluice_strerror (w [i].rc));
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.parked_writers, 0);
    cr_expect_eq (st.queued, 2);
    cr_expect_eq (st.written, 2, "a parked writer's chunk was accepted at close");
    T_EXPECT_CHUNK (t_fx.cli, "q1");
    T_EXPECT_CHUNK (t_fx.cli, "q2");
    T_EXPECT_EOS (t_fx.cli);
    sem_destroy (&ready);
    sem_destroy (&finished);
    sem_destroy (&release);
}

CASE (close_from_another_thread_wakes_a_blocked_read)
{
    t_start (1);
    static t_op_t r, c;
    t_op_read (&r, SLUICE_FOREVER);
    t_park_op (&r, 1);
    memset (&c, 0, sizeof c);
    c.kind = T_OP_CLOSE;
    t_spawn_op (&c);
    t_join_all ();
    cr_assert_eq (c.rc, SLUICE_OK);
    cr_assert_eq (r.rc, SLUICE_OK);
    cr_assert (r.got_eos, "blocked reader not woken with end of stream");
}

// =============================================================================================
//  FIFO among waiters

CASE (parked_writers_are_admitted_in_the_order_they_parked)
{
    enum { N = 8 };
    t_start (1);
    T_WRITE (t_fx.cli, "w0");
    static t_op_t w [N];
    for (int i = 0; i < N; i++) {
        char text [16];
        snprintf (text, sizeof text, "w%d", i + 1);
        t_op_write (&w [i], text, false, SLUICE_FOREVER);
        t_park_op (&w [i], (size_t) i + 1);
    }
    for (int i = 0; i <= N; i++) {
        char text [16];
        snprintf (text, sizeof text, "w%d", i);
        T_EXPECT_CHUNK (t_fx.cli, text);
    }
    t_join_all ();
    for (int i = 0; i < N; i++) {
        cr_expect_eq (w [i].rc, SLUICE_OK, "writer %d: %s", i + 1, sluice_strerror (w [i].rc));
        cr_expect (w [i].parked, "writer %d not reported as parked", i + 1);
    }
    T_EXPECT_EMPTY (t_fx.cli);
}

CASE (parked_readers_are_served_in_the_order_they_parked)
{
    enum { N = 8 };
    t_start (2);
    static t_op_t r [N];
    for (int i = 0; i < N; i++) {
        t_op_read (&r [i], SLUICE_FOREVER);
        t_park_op (&r [i], (size_t) i + 1);
    }
    for (int i = 0; i < N; i++) {
        char text [16];
        snprintf (text, sizeof text, "c%d", i);
        T_WRITE (t_fx.cli, text);
    }
    t_join_all ();
    for (int i = 0; i < N; i++) {
        char text [16];
        snprintf (text, sizeof text, "c%d", i);
        cr_expect_eq (r [i].rc, SLUICE_OK);
        cr_expect_str_eq (r [i].got, text, "reader %d (parked %d-th) got \"%s\"", i, i + 1,
                          r [i].got);
    }
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.queued, 0);
    cr_expect_eq (st.parked_readers, 0);
}

CASE (a_new_writer_never_overtakes_a_parked_one)
{
    t_start (1);
    T_WRITE (t_fx.cli, "x0");
    static t_op_t w;
    t_op_write (&w, "parked", false, SLUICE_FOREVER);
    t_park_op (&w, 1);
    //  Freeing the slot must hand it to the parked writer ...
    T_EXPECT_CHUNK (t_fx.cli, "x0");
    //  ... so a newcomer finds the buffer full again.
    sluice_err_t rc = sluice_stream_write_timeout (t_fx.cli, "newcomer", 8, false, 0);
    cr_assert_eq (rc, SLUICE_ETIMEOUT, "a new writer took the slot a parked writer waited for"
                  " (%s)", sluice_strerror (rc));
    T_EXPECT_CHUNK (t_fx.cli, "parked");
    T_EXPECT_EMPTY (t_fx.cli);
    t_join_all ();
    cr_assert_eq (w.rc, SLUICE_OK);
}

CASE (a_new_reader_never_overtakes_a_parked_one)
{
    t_start (2);
    static t_op_t r;
    t_op_read (&r, SLUICE_FOREVER);
    t_park_op (&r, 1);
    sluice_stream_t *newcomer = t_stream ();
    T_WRITE (t_fx.cli, "mine");
    //  the chunk went to the parked reader: nothing is left for the newcomer
    T_EXPECT_EMPTY (newcomer);
    t_join_all ();
    cr_assert_eq (r.rc, SLUICE_OK);
    cr_assert_str_eq (r.got, "mine");
}

CASE (two_writers_racing_for_one_free_slot)
{
    t_start (2);
    T_WRITE (t_fx.cli, "x0");
    static t_op_t w [2];
    static pthread_barrier_t go;
    pthread_barrier_init (&go, NULL, 2);
    t_op_write (&w [0], "A", false, SLUICE_FOREVER);
    t_op_write (&w [1], "B", false, SLUICE_FOREVER);
    w [0].barrier = w [1].barrier = &go;
    t_spawn_op (&w [0]);
    t_spawn_op (&w [1]);
    //  Exactly one of the two is admitted; the other parks.
    sluice_buffer_status_t st;
    T_WAIT_STATUS (st, st.written + st.parked_writers >= 3);
    cr_assert_eq (st.written, 2, "both racers admitted into one free slot");
    cr_assert_eq (st.queued, 2);
    cr_assert_eq (st.parked_writers, 1);
    //  A read, once acknowledged, admits the parked one.
    T_EXPECT_CHUNK (t_fx.cli, "x0");
    T_ACK (t_fx.cli);
    T_WAIT_STATUS (st, st.written >= 3);
    cr_assert_eq (st.written, 3);
    cr_assert_eq (st.parked_writers, 0);
    t_join_all ();
    pthread_barrier_destroy (&go);
    cr_assert_eq (w [0].rc, SLUICE_OK);
    cr_assert_eq (w [1].rc, SLUICE_OK);
    cr_assert_neq (w [0].parked, w [1].parked, "exactly one racer should have been parked");
    const char *first = w [0].parked? "B": "A";
    const char *second = w [0].parked? "A": "B";
    T_EXPECT_CHUNK (t_fx.cli, first);
    T_EXPECT_CHUNK (t_fx.cli, second);
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    T_EXPECT_EOS (t_fx.cli);
}

CASE (two_parked_writers_one_freed_slot_admits_exactly_one)
{
    t_start (1);
    T_WRITE (t_fx.cli, "x0");
    static t_op_t w [2];
    static pthread_barrier_t go;
    pthread_barrier_init (&go, NULL, 2);
    t_op_write (&w [0], "A", false, SLUICE_FOREVER);
    t_op_write (&w [1], "B", false, SLUICE_FOREVER);
    w [0].barrier = w [1].barrier = &go;
    t_spawn_op (&w [0]);
    t_spawn_op (&w [1]);
    T_WAIT_PARKED_WRITERS (2);

    T_EXPECT_CHUNK (t_fx.cli, "x0");
    T_ACK (t_fx.cli);
    sluice_buffer_status_t st;
    T_WAIT_STATUS (st, st.written >= 2);
    cr_assert_eq (st.written, 2, "one freed slot admitted %llu writers",
                  (unsigned long long) st.written - 1);
    cr_assert_eq (st.queued, 1);
    cr_assert_eq (st.parked_writers, 1, "the other writer should still be parked");

    sluice_chunk_t c;
    T_READ (t_fx.cli, c);
    cr_assert_eq (c.size, 1);
    char got1 = c.text [0];
    cr_assert (got1 == 'A' || got1 == 'B');
    T_ACK (t_fx.cli);
    T_WAIT_STATUS (st, st.written >= 3);
    cr_assert_eq (st.parked_writers, 0);
    T_EXPECT_CHUNK (t_fx.cli, got1 == 'A'? "B": "A");
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    T_EXPECT_EOS (t_fx.cli);
    t_join_all ();
    pthread_barrier_destroy (&go);
    cr_assert_eq (w [0].rc, SLUICE_OK);
    cr_assert_eq (w [1].rc, SLUICE_OK);
    cr_expect (w [0].parked && w [1].parked);
    st = t_status ();
    cr_expect_eq (st.written, 3);
    cr_expect_eq (st.read, 3);
}

// =============================================================================================
//  Timeouts

CASE (read_timeout_on_an_empty_buffer)
{
    t_start (2);
    sluice_chunk_t c;
    sluice_err_t rc = sluice_stream_read_timeout (t_fx.cli, &c, 50);
    cr_assert_eq (rc, SLUICE_ETIMEOUT, "got %s", sluice_strerror (rc));
    cr_expect_eq (sluice_stream_error (t_fx.cli), SLUICE_ETIMEOUT);
    //  the expired read is gone from the actor: the next chunk is not sent to it
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.parked_readers, 0);
    T_WRITE (t_fx.cli, "after");
    cr_expect_eq (t_status ().queued, 1, "a chunk was handed to a timed-out read");
    T_EXPECT_CHUNK (t_fx.cli, "after");
}

CASE (write_timeout_on_a_full_buffer_leaves_the_chunk_out)
{
    t_start (1);
    T_WRITE (t_fx.cli, "kept");
    sluice_err_t rc = sluice_stream_write_timeout (t_fx.cli, "timed-out", 9, false, 50);
    cr_assert_eq (rc, SLUICE_ETIMEOUT, "got %s", sluice_strerror (rc));
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.parked_writers, 0);
    cr_expect_eq (st.queued, 1);
    cr_expect_eq (st.written, 1);
    //  Freeing the slot later must not admit the timed-out chunk.
    T_EXPECT_CHUNK (t_fx.cli, "kept");
    st = t_status ();
    cr_expect_eq (st.queued, 0, "a timed-out write was enqueued afterwards");
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    T_EXPECT_EOS (t_fx.cli);
    cr_expect_eq (t_status ().written, 1);
}

CASE (timed_out_writer_between_parked_writers_is_removed)
{
    t_start (1);
    T_WRITE (t_fx.cli, "x0");
    static t_op_t w [3];
    t_op_write (&w [0], "w1", false, SLUICE_FOREVER);
    t_op_write (&w [1], "expires", false, 1000);
    t_op_write (&w [2], "w3", false, SLUICE_FOREVER);
    t_park_op (&w [0], 1);
    size_t mid = t_park_op (&w [1], 2);
    //  w3 parks behind it (on a very slow machine the middle one may already have expired)
    t_spawn_op (&w [2]);
    sluice_buffer_status_t st;
    T_WAIT_STATUS (st, st.parked_writers == 3
                       || (atomic_load (&w [1].done) && st.parked_writers == 2));
    t_join (mid);      //  returns once the actor answered the middle writer's deadline
    cr_assert_eq (w [1].rc, SLUICE_ETIMEOUT, "got %s", sluice_strerror (w [1].rc));
    st = t_status ();
    cr_assert_eq (st.parked_writers, 2);
    T_EXPECT_CHUNK (t_fx.cli, "x0");
    T_EXPECT_CHUNK (t_fx.cli, "w1");
    T_EXPECT_CHUNK (t_fx.cli, "w3");
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    T_EXPECT_EOS (t_fx.cli);
    t_join_all ();
    cr_expect_eq (w [0].rc, SLUICE_OK);
    cr_expect_eq (w [2].rc, SLUICE_OK);
    cr_expect_eq (t_status ().written, 3);
}

CASE (timed_out_reader_between_parked_readers_is_removed)
{
    t_start (2);
    static t_op_t r [3];
    t_op_read (&r [0], SLUICE_FOREVER);
    t_op_read (&r [1], 1000);
    t_op_read (&r [2], SLUICE_FOREVER);
    t_park_op (&r [0], 1);
    size_t mid = t_park_op (&r [1], 2);
    t_spawn_op (&r [2]);
    sluice_buffer_status_t st;
    T_WAIT_STATUS (st, st.parked_readers == 3
                       || (atomic_load (&r [1].done) && st.parked_readers == 2));
    t_join (mid);
    cr_assert_eq (r [1].rc, SLUICE_ETIMEOUT, "got %s", sluice_strerror (r [1].rc));
    cr_assert_eq (t_status ().parked_readers, 2);
    T_WRITE (t_fx.cli, "a");
    T_WRITE (t_fx.cli, "b");
    t_join_all ();
    cr_expect_eq (r [0].rc, SLUICE_OK);
    cr_expect_eq (r [2].rc, SLUICE_OK);
    cr_expect_str_eq (r [0].got, "a");
    cr_expect_str_eq (r [2].got, "b");
    st = t_status ();
    cr_expect_eq (st.queued, 0);
    cr_expect_eq (st.read, 2);
}

CASE (timeout_zero_tries_once)
{
    t_start (1);
    sluice_chunk_t c;
    cr_assert_eq (sluice_stream_read_timeout (t_fx.cli, &c, 0), SLUICE_ETIMEOUT);
    cr_assert_eq (sluice_stream_write_timeout (t_fx.cli, "a", 1, false, 0), SLUICE_OK);
    cr_expect_not (sluice_stream_was_parked (t_fx.cli));
    cr_assert_eq (sluice_stream_write_timeout (t_fx.cli, "b", 1, false, 0), SLUICE_ETIMEOUT);
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.parked_writers, 0);
    cr_expect_eq (st.parked_readers, 0);
    cr_expect_eq (st.queued, 1);
    cr_assert_eq (sluice_stream_read_timeout (t_fx.cli, &c, 0), SLUICE_OK);
    cr_assert (c.size == 1 && c.text [0] == 'a');
    cr_assert_eq (sluice_stream_read_timeout (t_fx.cli, &c, 0), SLUICE_ETIMEOUT,
                  "the try-once write \"b\" was enqueued after all");
}

CASE (timed_out_write_can_be_retried_without_a_duplicate)
{
    t_start (1);
    T_WRITE (t_fx.cli, "x0");
    cr_assert_eq (sluice_stream_write_timeout (t_fx.cli, "retry", 5, false, 30),
                  SLUICE_ETIMEOUT);
    T_EXPECT_CHUNK (t_fx.cli, "x0");
    T_ACK (t_fx.cli);                           //  "x0" no longer held: room again
    cr_assert_eq (sluice_stream_write_timeout (t_fx.cli, "retry", 5, false, 0), SLUICE_OK);
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    T_EXPECT_CHUNK (t_fx.cli, "retry");
    T_EXPECT_EOS (t_fx.cli);
}

CASE (stale_replies_are_never_taken_for_a_later_request)
{
    //  With no grace the client gives up on most replies before they arrive; the late ones
    //  (ETIMEOUT replies to abandoned READs) must be recognised by request id and discarded.
    t_start (2);
    sluice_stream_t *s = t_stream ();
    sluice_stream_set_grace (s, 0);
    int abandoned = 0;
    for (int i = 0; i < 50; i++) {
        sluice_chunk_t c;
        sluice_err_t rc = sluice_stream_read_timeout (s, &c, 0);
        cr_assert (rc == SLUICE_ETIMEOUT || rc == SLUICE_ETRANSPORT, "read %d: %s", i,
                   sluice_strerror (rc));
        abandoned += rc == SLUICE_ETRANSPORT;
    }
    cr_log_info ("%d of 50 replies abandoned by the client", abandoned);
    sluice_stream_set_grace (s, 2000);
    //  None of the late ETIMEOUT replies may be taken for these calls' replies.
    T_WRITE (s, "fresh");
    cr_expect_not (sluice_stream_was_parked (s));
    sluice_buffer_status_t st = t_status_of (s);
    cr_expect_eq (st.parked_readers, 0);
    cr_expect_eq (st.written, 1);
    T_EXPECT_CHUNK (s, "fresh");
    T_EXPECT_EMPTY (s);
}

CASE (a_read_reply_the_client_abandoned_is_not_lost)
{
    //  A READ whose reply comes after the client gave up (grace 0) must not lose the chunk:
    //  the application sees it exactly once, from that read or a later one.
    t_start (2);
    sluice_stream_t *s = t_stream ();
    for (int round = 0; round < 20; round++) {
        char text [16];
        snprintf (text, sizeof text, "r%d", round);
        T_WRITE (t_fx.cli, text);
        sluice_stream_set_grace (s, 0);
        sluice_chunk_t c;
        sluice_err_t rc = sluice_stream_read_timeout (s, &c, 0);
        int seen = 0;
        if (rc == SLUICE_OK) {
            cr_assert (c.size == strlen (text) && memcmp (c.text, text, c.size) == 0,
                       "round %d: got \"%.*s\"", round, (int) c.size, c.text);
            seen++;
        }
        else
            cr_assert_eq (rc, SLUICE_ETRANSPORT, "round %d: %s", round, sluice_strerror (rc));
        sluice_stream_set_grace (s, 2000);
        rc = sluice_stream_read_timeout (s, &c, 0);
        if (rc == SLUICE_OK) {
            cr_assert (c.size == strlen (text) && memcmp (c.text, text, c.size) == 0,
                       "round %d: got \"%.*s\" on the second read", round, (int) c.size,
                       c.text);
            seen++;
        }
        else
            cr_assert_eq (rc, SLUICE_ETIMEOUT, "round %d: %s", round, sluice_strerror (rc));
        cr_assert_eq (seen, 1, "round %d: chunk seen %d times", round, seen);
    }
}

// =============================================================================================
//  Errors

CASE (oversized_chunk_is_refused_and_state_is_intact)
{
    t_start_opts (3, 64, 0, false);
    T_WRITE (t_fx.cli, "keep");
    char big [65];
    memset (big, 'z', sizeof big);
    sluice_err_t rc = sluice_stream_write (t_fx.cli, big, sizeof big, false);
    cr_assert_eq (rc, SLUICE_ETOOBIG, "65-byte chunk with a 64-byte limit: %s",
                  sluice_strerror (rc));
    cr_expect_eq (sluice_stream_error (t_fx.cli), SLUICE_ETOOBIG);
    cr_expect_neq (sluice_stream_error_text (t_fx.cli) [0], '\0', "ETOOBIG without a reason");
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.queued, 1);
    cr_expect_eq (st.written, 1);
    cr_expect_eq (st.read, 0);
    cr_expect_eq (st.closed, false);
    //  the limit itself is allowed, and the buffer still serves
    cr_assert_eq (sluice_stream_write (t_fx.cli, big, 64, false), SLUICE_OK);
    T_EXPECT_CHUNK (t_fx.cli, "keep");
    sluice_chunk_t c;
    T_READ (t_fx.cli, c);
    cr_assert_eq (c.size, 64);
    T_EXPECT_EMPTY (t_fx.cli);
}

CASE (oversized_chunk_over_the_default_limit)
{
    t_start (2);
    size_t size = SLUICE_BUFFER_DEFAULT_MAX_CHUNK + 1;
    char *big = calloc (1, size);
    cr_assert_not_null (big);
    sluice_err_t rc = sluice_stream_write (t_fx.cli, big, size, false);
    free (big);
    cr_assert_eq (rc, SLUICE_ETOOBIG, "got %s", sluice_strerror (rc));
    T_WRITE (t_fx.cli, "still-serving");
    T_EXPECT_CHUNK (t_fx.cli, "still-serving");
}

CASE (parked_requests_beyond_max_parked_are_busy)
{
    t_start_opts (1, 0, 2, false);
    static t_op_t r [2];
    t_op_read (&r [0], SLUICE_FOREVER);
    t_op_read (&r [1], SLUICE_FOREVER);
    t_park_op (&r [0], 1);
    t_park_op (&r [1], 2);
    sluice_chunk_t c;
    sluice_err_t rc = sluice_stream_read_timeout (t_fx.cli, &c, 5000);
    cr_assert_eq (rc, SLUICE_EBUSY, "third parked request: %s", sluice_strerror (rc));
    cr_expect_not (sluice_stream_was_parked (t_fx.cli), "EBUSY on arrival was never parked");
    cr_expect_eq (t_status ().parked_readers, 2);
    //  the two parked ones still get their chunks
    T_WRITE (t_fx.cli, "p1");
    T_WRITE (t_fx.cli, "p2");
    t_join_all ();
    cr_expect_str_eq (r [0].got, "p1");
    cr_expect_str_eq (r [1].got, "p2");
}

// =============================================================================================
//  Acknowledged delivery and the capacity: the capacity bounds the queue (the seed's "max
//  chunks in the buffer"), so a chunk handed out leaves room behind it at once; chunks handed
//  out and not yet acknowledged are bounded by the capacity on their own, and end of stream
//  waits for them

CASE (a_reader_working_on_its_chunk_does_not_hold_writers_back)
{
    t_start (2);
    T_WRITE (t_fx.cli, "a");
    T_WRITE (t_fx.cli, "b");
    sluice_stream_t *reader = t_stream ();
    T_EXPECT_CHUNK (reader, "a");
    sluice_buffer_status_t st = t_status ();
    cr_assert_eq (st.queued, 1);
    cr_assert_eq (st.unacked, 1, "'a' is handed out, not acknowledged: the buffer keeps it");
    //  "a" left the queue: its room is free although it may still come back
    cr_assert_eq (sluice_stream_write_timeout (t_fx.cli, "c", 1, false, 0), SLUICE_OK,
                  "the room 'a' left was still held for it: %s", sluice_stream_error_text (t_fx.cli));
    //  The queue is full again: the next write waits
    cr_assert_eq (sluice_stream_write_timeout (t_fx.cli, "d", 1, false, 0), SLUICE_ETIMEOUT,
                  "a write went into a full queue");
    T_EXPECT_CHUNK (reader, "b");
    T_EXPECT_CHUNK (reader, "c");
}

CASE (acknowledging_readers_hold_at_most_a_capacity_unacknowledged)
{
    t_start (2);
    T_WRITE (t_fx.cli, "a");
    T_WRITE (t_fx.cli, "b");
    zsock_t *holder = t_raw_dealer ();
    char texts [2][T_TEXT_MAX];
    cr_assert_eq (t_raw_read (holder, 1, SLUICE_MAX_BATCH, 0, texts, 2), 2);
    cr_assert_str_eq (texts [0], "a");
    cr_assert_str_eq (texts [1], "b");
    T_WRITE (t_fx.cli, "c");
    T_WRITE (t_fx.cli, "d");
    sluice_buffer_status_t st = t_status ();
    cr_assert_eq (st.queued, 2);
    cr_assert_eq (st.unacked, 2);
    //  Readers hold a capacity's worth unacknowledged: the next acknowledging READ waits,
    //  though chunks are queued
    static t_op_t r;
    t_op_read (&r, SLUICE_FOREVER);
    t_park_op (&r, 1);
    st = t_status ();
    cr_assert_eq (st.queued, 2, "a READ was served past the limit of unacknowledged chunks");
    //  The holder vanishes: its chunks go back to the head of the queue, taking it past the
    //  capacity (twice it at most), and the parked reader gets the oldest
    zsock_destroy (&holder);
    t_join_all ();
    cr_assert_eq (r.rc, SLUICE_OK, "%s", sluice_strerror (r.rc));
    cr_assert_str_eq (r.got, "a");
    //  Writers wait until readers take the queue below the capacity
    cr_assert_eq (sluice_stream_write_timeout (t_fx.cli, "e", 1, false, 0), SLUICE_ETIMEOUT);
    sluice_stream_t *reader = t_stream ();
    T_EXPECT_CHUNK (reader, "b");
    T_EXPECT_CHUNK (reader, "c");
    T_EXPECT_CHUNK (reader, "d");
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    T_EXPECT_EOS (reader);
}

CASE (a_reader_behind_one_waiting_at_the_unacknowledged_limit_is_served_when_it_expires)
{
    t_start (2);
    T_WRITE (t_fx.cli, "a");
    T_WRITE (t_fx.cli, "b");
    zsock_t *holder = t_raw_dealer ();
    cr_assert_eq (t_raw_read (holder, 1, SLUICE_MAX_BATCH, 0, NULL, 0), 2);
    T_WRITE (t_fx.cli, "c");
    //  An acknowledging READ at the limit parks (200 ms deadline); a plain READ parks behind
    //  it: FIFO, though a plain READ is not held by the limit itself
    zsock_t *acker = t_raw_dealer ();
    zsock_t *plain = t_raw_dealer ();
    t_raw_read_send (acker, 7, 1, true, 0, 200);
    T_WAIT_PARKED_READERS (1);
    t_raw_read_send (plain, 9, 1, false, 0, SLUICE_WAIT_FOREVER);
    T_WAIT_PARKED_READERS (2);
    cr_assert_eq (t_status ().queued, 1, "the plain READ overtook the parked acknowledging one");
    char texts [1][T_TEXT_MAX];
    cr_assert_eq (t_raw_reply (acker, 7, NULL, texts, 1), SLUICE_ETIMEOUT);
    //  What it waited for was the limit, not a chunk: the reason says so
    cr_assert_str_eq (texts [0], "timed out: readers hold the capacity unacknowledged");
    //  The head left: the plain reader is served without any other event
    cr_assert_eq (t_raw_reply (plain, 9, NULL, texts, 1), SLUICE_OK);
    cr_assert_str_eq (texts [0], "c");
    zsock_destroy (&holder);
    zsock_destroy (&acker);
    zsock_destroy (&plain);
}

CASE (a_wait_longer_than_int_max_ms_is_cut_to_int_max_not_wrapped)
{
    //  A timeout near INT_MAX plus the grace does not fit ZMQ_RCVTIMEO (an int): it must be cut
    //  to INT_MAX. Wrapped to a negative value, the socket refused it and kept the 0 an
    //  earlier call had left, and the wait spun (white box: a stream begins with its
    //  connection, src/sluice_stream.c)
    t_start (2);
    sluice_stream_t *reader = t_stream ();
    sluice_stream_set_liveness (reader, 0);
    sluice_stream_set_grace (reader, 0);
    sluice_chunk_t chunk;
    //  A read with no time at all: the buffer's ETIMEOUT, or the client giving up first
    //  (ETRANSPORT); either way the wait ended at once, leaving ZMQ_RCVTIMEO at 0
    sluice_err_t rc = sluice_stream_read_timeout (reader, &chunk, 0);
    cr_assert (rc == SLUICE_ETIMEOUT || rc == SLUICE_ETRANSPORT, "%s", sluice_strerror (rc));
    cr_assert_eq (zsock_rcvtimeo (((sluice_conn_t *) reader)->dealer), 0);
    sluice_stream_set_grace (reader, 2000);
    T_WRITE (t_fx.cli, "x");
    cr_assert_eq (sluice_stream_read_timeout (reader, &chunk, INT_MAX), SLUICE_OK);
    sluice_conn_t *conn = (sluice_conn_t *) reader;
    cr_assert_eq (zsock_rcvtimeo (conn->dealer), INT_MAX);
    cr_assert_eq (conn->rcvtimeo, INT_MAX, "the cached receive timeout is not the socket's");
}

//  Write "cNN" chunks from `next` on while the buffer has room (timeout 0: a write that would
//  wait is refused and never enqueued); returns the next chunk to write.
static int
s_fill (sluice_stream_t *writer, int next, int chunks)
{
    while (next < chunks) {
        char text [16];
        snprintf (text, sizeof text, "c%02d", next);
        sluice_err_t rc = sluice_stream_write_timeout (writer, text, strlen (text), false, 0);
        if (rc == SLUICE_ETIMEOUT)
            break;
        cr_assert_eq (rc, SLUICE_OK, "write %s: %s", text, sluice_strerror (rc));
        next++;
    }
    return next;
}

CASE (vanishing_readers_never_take_the_buffer_past_twice_its_capacity)
{
    //  Readers that take all they may (count 1024 into a capacity of 4) and vanish without
    //  acknowledging, while a writer keeps writing: their chunks come back to the head of the
    //  queue, so the buffer holds at most a full queue plus a capacity unacknowledged, and
    //  writers wait until readers take the queue below the capacity. A clean reader then gets
    //  every chunk once, in order.
    enum { CAPACITY = 4, CHUNKS = 24, VANDALS = 4 };
    t_start (CAPACITY);
    sluice_stream_t *writer = t_stream ();
    sluice_buffer_status_t st;
    int next = s_fill (writer, 0, CHUNKS);
    cr_assert_eq (next, CAPACITY);
    for (int round = 0; round < VANDALS; round++) {
        zsock_t *vandal = t_raw_dealer ();
        cr_assert_eq (t_raw_read (vandal, 1, SLUICE_MAX_BATCH, 0, NULL, 0), CAPACITY,
                      "round %d: a reader took more or less than a capacity", round);
        next = s_fill (writer, next, CHUNKS);
        st = t_status ();
        cr_assert_leq (st.queued, CAPACITY, "round %d", round);
        cr_assert_eq (st.unacked, CAPACITY, "round %d", round);
        zsock_destroy (&vandal);
        //  The buffer notices and requeues them ahead of what was written since
        T_WAIT_STATUS (st, st.unacked == 0);
        cr_assert_eq (st.queued, 2 * CAPACITY, "round %d: queued %zu", round, st.queued);
        cr_assert_eq (s_fill (writer, next, CHUNKS), next, "round %d: a write went into a queue "
                      "past its capacity", round);
    }
    sluice_stream_t *reader = t_stream ();
    for (int index = 0; index < CHUNKS; index++) {
        char want [16];
        snprintf (want, sizeof want, "c%02d", index);
        T_EXPECT_CHUNK (reader, want);          //  acknowledges the one before
        st = t_status ();
        cr_assert_leq (st.unacked, CAPACITY);
        cr_assert_leq (st.queued + st.unacked, 2 * CAPACITY);
        next = s_fill (writer, next, CHUNKS);
    }
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    T_EXPECT_EOS (reader);
    st = t_status ();
    cr_assert_eq (st.written, CHUNKS);
    cr_assert_eq (st.read, CHUNKS, "a chunk was delivered twice to readers that stayed");
}

CASE (end_of_stream_waits_until_no_unacknowledged_chunk_can_come_back)
{
    t_start (4);
    T_WRITE (t_fx.cli, "one");
    T_WRITE (t_fx.cli, "two");
    zsock_t *a = t_raw_dealer ();
    char texts [1][T_TEXT_MAX];
    cr_assert_eq (t_raw_read (a, 1, 1, 0, texts, 1), 1);
    cr_assert_str_eq (texts [0], "one");
    zsock_destroy (&a);                        //  reader A dies before acknowledging "one"
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    sluice_stream_t *b = t_stream ();
    T_EXPECT_CHUNK (b, "two");
    //  "one" may still come back: no end of stream, and the buffer is not drained
    cr_assert_eq (sluice_buffer_wait (t_fx.buf, 0), SLUICE_ETIMEOUT,
                  "drained while a chunk was unacknowledged");
    //  The buffer notices A is gone, requeues "one", and B (parked) gets it; then the end
    T_EXPECT_CHUNK (b, "one");
    T_EXPECT_EOS (b);
    cr_assert_eq (sluice_buffer_wait (t_fx.buf, T_WAIT_MS), SLUICE_OK);
    sluice_buffer_status_t st = t_status ();
    cr_assert_eq (st.queued, 0);
    cr_assert_eq (st.unacked, 0);
}

// =============================================================================================
//  Iteration (sluice_stream_next)

CASE (next_yields_texts_in_order_and_stops_at_eos)
{
    t_start (5);
    const char *words [] = { "Hello", " world", "!" };
    for (int i = 0; i < 3; i++)
        T_WRITE (t_fx.cli, words [i]);
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    sluice_chunk_t c;
    for (int i = 0; i < 3; i++) {
        cr_assert (sluice_stream_next (t_fx.cli, &c), "iteration ended at %d: %s", i,
                   sluice_strerror (sluice_stream_error (t_fx.cli)));
        cr_assert_str_eq (c.text, words [i]);
        cr_assert_eq (c.size, strlen (words [i]));
    }
    cr_assert_not (sluice_stream_next (t_fx.cli, &c), "iteration went past end of stream");
    cr_assert_eq (sluice_stream_error (t_fx.cli), SLUICE_OK);
}

CASE (next_on_an_empty_closed_buffer_yields_nothing)
{
    t_start (1);
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    sluice_chunk_t c;
    cr_assert_not (sluice_stream_next (t_fx.cli, &c));
    cr_assert_eq (sluice_stream_error (t_fx.cli), SLUICE_OK);
}

CASE (next_delivers_a_final_chunk_then_ends_without_reading_further)
{
    t_start (5);
    T_WRITE (t_fx.cli, "a");
    cr_assert_eq (sluice_stream_write (t_fx.cli, "end", 3, true), SLUICE_OK);
    T_WRITE (t_fx.cli, "after");
    sluice_chunk_t c;
    cr_assert (sluice_stream_next (t_fx.cli, &c));
    cr_assert_str_eq (c.text, "a");
    cr_assert (sluice_stream_next (t_fx.cli, &c), "final chunk's text was dropped");
    cr_assert_str_eq (c.text, "end");
    cr_assert (c.is_final);
    cr_assert_not (sluice_stream_next (t_fx.cli, &c), "iteration went past a final chunk");
    cr_assert_eq (sluice_stream_error (t_fx.cli), SLUICE_OK);
    //  Ending this reader's stream consumed nothing beyond the final chunk.
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.read, 2);
    cr_expect_eq (st.queued, 1);
    sluice_stream_t *other = t_stream ();
    T_EXPECT_CHUNK (other, "after");
}

CASE (a_call_with_no_buffer_there_fails_with_etransport)
{
    //  Nothing bound at this endpoint. On inproc that is known at once: the constructor says
    //  so. On tcp the call waits its timeout plus the grace, then gives up.
    char ep [256];
    if (!T_TCP) {
        t_bind_endpoint (ep, sizeof ep, "nobody");
        cr_assert_null (sluice_stream_new (ep), "a client of an inproc endpoint nobody bound");
        cr_assert (strstr (sluice_last_error_text (), "inproc endpoints exist only inside one process"),
                   "%s", sluice_last_error_text ());
        return;
    }
    snprintf (ep, sizeof ep, "tcp://127.0.0.1:1");
    sluice_stream_t *s = sluice_stream_new (ep);
    cr_assert_not_null (s, "sluice_stream_new (%s)", ep);
    t_fx.streams [t_fx.nstreams++] = s;
    sluice_stream_set_grace (s, 200);
    sluice_chunk_t c;
    sluice_err_t rc = sluice_stream_read_timeout (s, &c, 0);
    cr_assert_eq (rc, SLUICE_ETRANSPORT, "no actor: %s", sluice_strerror (rc));
    cr_expect_eq (sluice_stream_error (s), SLUICE_ETRANSPORT);
    rc = sluice_stream_write_timeout (s, "x", 1, false, 0);
    cr_assert_eq (rc, SLUICE_ETRANSPORT, "no actor: %s", sluice_strerror (rc));
}

CASE (the_seed_scenario_all_tokens_in_order_through_capacity_3)
{
    t_start (3);
    static t_op_t r;
    memset (&r, 0, sizeof r);
    r.kind = T_OP_NEXT_ALL;
    t_spawn_op (&r);
    const char *tokens [] = { "Hello", " world", "!", " How", " are", " you?" };
    for (int i = 0; i < 6; i++)
        T_WRITE (t_fx.cli, tokens [i]);
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    t_join_all ();
    cr_assert_eq (r.rc, SLUICE_OK, "%s", sluice_strerror (r.rc));
    cr_assert_eq (r.got_count, 6);
    cr_assert_str_eq (r.got, "Hello| world|!| How| are| you?");
}

// =============================================================================================
//  Packed batches

enum { PACKED_CHUNKS = 1024, PACKED_SIZE = 1500 };

typedef struct {
    sluice_err_t rc;
    sem_t written;                //  posted once every chunk was handed to the stream
} s_big_batch_t;

static void *
s_big_batch_writer (void *arg)
{
    s_big_batch_t *self = (s_big_batch_t *) arg;
    sluice_err_t *rc = &self->rc;
    sluice_stream_t *writer = sluice_stream_new (t_fx.endpoint);
    //  Room for every batch in flight: the writes then never wait for a reply
    sluice_stream_set_window (writer, 32);
    sluice_stream_set_write_batch (writer, PACKED_CHUNKS);
    static char chunk [PACKED_SIZE];
    for (int seq = 0; seq < PACKED_CHUNKS && *rc == SLUICE_OK; seq++) {
        memset (chunk, 'a' + seq % 26, PACKED_SIZE);
        snprintf (chunk, 16, "%06d", seq);
        chunk [6] = '-';
        *rc = sluice_stream_write (writer, chunk, PACKED_SIZE, seq + 1 == PACKED_CHUNKS);
    }
    sem_post (&self->written);
    if (*rc == SLUICE_OK)
        *rc = sluice_stream_flush (writer);
    sluice_stream_destroy (&writer);
    return NULL;
}

//  Batched writes travel packed, one frame per batch. A writer held back by a full buffer
//  gathers a large batch; it is cut before its frame passes what an actor takes over tcp (a
//  larger frame would cost the connection), and everything arrives, in order.
CASE (batched_writes_past_one_packed_frame_arrive_in_order)
{
    t_start_opts (PACKED_CHUNKS, 2048, 0, false);
    sluice_stream_t *filler = t_stream ();
    cr_assert_eq (sluice_stream_set_window (filler, 64), SLUICE_OK);
    cr_assert_eq (sluice_stream_set_write_batch (filler, 64), SLUICE_OK);
    for (int seq = 0; seq < PACKED_CHUNKS; seq++)
        cr_assert_eq (sluice_stream_write (filler, "p", 1, false), SLUICE_OK);
    cr_assert_eq (sluice_stream_flush (filler), SLUICE_OK);
    //  The buffer is full: the writer's first write parks, and all its other chunks gather
    //  while nobody reads (a batch is sent when it is full, or final)
    s_big_batch_t writer = { .rc = SLUICE_OK };
    sem_init (&writer.written, 0, 0);
    size_t thread = t_spawn (s_big_batch_writer, &writer);
    while (sem_wait (&writer.written) == -1 && errno == EINTR)
        ;
    sluice_stream_t *reader = t_stream ();
    cr_assert_eq (sluice_stream_set_batch (reader, 512), SLUICE_OK);
    sluice_chunk_t got;
    for (int seq = 0; seq < PACKED_CHUNKS; seq++)
        T_EXPECT_CHUNK (reader, "p");
    for (int seq = 0; seq < PACKED_CHUNKS; seq++) {
        cr_assert_eq (sluice_stream_read (reader, &got), SLUICE_OK, "%s",
                      sluice_stream_error_text (reader));
        cr_assert_eq (got.size, PACKED_SIZE);
        cr_assert_eq (atoi (got.text), seq, "chunk %d read as %.6s", seq, got.text);
        cr_assert_eq (got.text [PACKED_SIZE - 1], 'a' + seq % 26);
        cr_assert_eq (got.text [PACKED_SIZE], '\0', "a chunk handed out in place is NUL-terminated");
        cr_assert_eq (got.is_final, seq + 1 == PACKED_CHUNKS);
    }
    t_join (thread);
    sem_destroy (&writer.written);
    cr_assert_eq (writer.rc, SLUICE_OK, "the writer failed: %s", sluice_strerror (writer.rc));
}

// =============================================================================================
//  Events

CASE (events_announce_open_then_closed)
{
    t_start_opts (2, 0, 0, true);
    const char *open [] = { SLUICE_EVENT_OPEN, NULL };
    const char *closed [] = { SLUICE_EVENT_CLOSED, NULL };
    const char *any [] = { SLUICE_EVENT_OPEN, SLUICE_EVENT_CLOSED, NULL };
    char name [32], detail [64];
    //  a late subscriber (the buffer started before) still learns OPEN
    sluice_err_t rc = sluice_events_wait (t_fx.events, open, T_WAIT_MS, name, sizeof name,
                                          detail, sizeof detail);
    cr_assert_eq (rc, SLUICE_OK, "OPEN: %s", sluice_strerror (rc));
    cr_assert_str_eq (name, SLUICE_EVENT_OPEN);
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    rc = sluice_events_wait (t_fx.events, closed, T_WAIT_MS, name, sizeof name,
                             detail, sizeof detail);
    cr_assert_eq (rc, SLUICE_OK, "CLOSED: %s", sluice_strerror (rc));
    cr_assert_str_eq (name, SLUICE_EVENT_CLOSED);
    //  the current state is CLOSED now, not OPEN
    rc = sluice_events_wait (t_fx.events, any, T_WAIT_MS, name, sizeof name, NULL, 0);
    cr_assert_eq (rc, SLUICE_OK);
    cr_assert_str_eq (name, SLUICE_EVENT_CLOSED);
}

CASE (events_wait_times_out_for_an_event_that_does_not_come)
{
    t_start_opts (2, 0, 0, true);
    const char *closed [] = { SLUICE_EVENT_CLOSED, NULL };
    char name [32] = "untouched";
    sluice_err_t rc = sluice_events_wait (t_fx.events, closed, 100, name, sizeof name, NULL, 0);
    cr_assert_eq (rc, SLUICE_ETIMEOUT, "open buffer announced %s: %s", name,
                  sluice_strerror (rc));
}

#endif
