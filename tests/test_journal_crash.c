/*  test_journal_crash.c - a journaled buffer killed with SIGKILL loses no acknowledged write.

    `sluice buffer --journal` as a process over tcp, killed at random moments picked from the
    clients' progress (acknowledged writes, chunks read; first with chunks queued and no
    reader, then with the buffer full and the writer parked), started again on the same port
    and journal; a writer that remembers which numbered writes got their OK, and a reader with
    acknowledged delivery. At the end every acknowledged write has been read at least once
    (duplicates are the documented at-least-once), and no client ever saw another incarnation.

    Nothing sleeps: waits are on replies, on a semaphore the client threads post, and on
    pidfds, bounded by liveness limits. The journal directory is proc.h's temporary directory.
*/
#define T_TCP 1
#include "common.h"
#include "proc.h"
#include "sluice_conn.h"
#include "sluice.h"

static const char *j_dir;           //  the journal directory: p_fx.dir

// =============================================================================================
//  Crashes: `sluice buffer --journal` killed with SIGKILL under a writer and a reader

#define C_WRITES      3000
#define C_KILLS       6
#define C_LIVENESS_MS 300       //  the clients ping a silent buffer this soon (default 5 s)

typedef struct {
    char endpoint [256];
    sem_t progress;                 //  posted at each acknowledged write and each chunk read
    atomic_int acked_count;
    atomic_int read_count;
    atomic_bool writer_done;
    atomic_bool stop;               //  the test ended: client threads give up
    bool acked [C_WRITES + 1];      //  written by the writer thread, read once it is joined
    int received [C_WRITES + 1];    //  by the reader thread, read once it is joined
    int unknown;                    //  chunks read that were never written
    char writer_error [1024];
    char reader_error [1024];
    size_t buffer;                  //  the buffer process (p_fx child index)
} c_state_t;

static c_state_t c_st;

static void
c_init (void)
{
    memset (&c_st, 0, sizeof c_st);
    p_init (C_KILLS + 3, T_WAIT_MS);
    t_fx_init ();
    p_tmpdir ("journal", 8);
    j_dir = p_fx.dir;
    //  What the buffer makes there, removed by p_fini with the directory
    p_path ("journal");
    p_path ("journal.new");
    p_path ("lock");
    sem_init (&c_st.progress, 0, 0);
}

static void
c_fini (void)
{
    atomic_store (&c_st.stop, true);
    p_fini ();
    t_fx_fini ();
    sem_destroy (&c_st.progress);
}

TestSuite (journal_crash, .init = c_init, .fini = c_fini, .timeout = 120);

//  A raw client that notices a silent buffer soon and must never see another incarnation.
//  (No assertion here: the client threads call it.)
static bool
c_conn (sluice_conn_t *conn)
{
    if (sluice_conn_init (conn, c_st.endpoint, NULL) != SLUICE_OK)
        return false;
    conn->liveness_ms = C_LIVENESS_MS;
    conn->strict_incarnation = true;
    return true;
}

//  Write 1..C_WRITES in order, each until it gets an answer: an OK is remembered; a lost
//  request (the buffer died under it) is sent again, so a chunk may be enqueued twice
static void *
c_writer (void *arg)
{
    sluice_conn_t conn;
    if (!c_conn (&conn)) {
        snprintf (c_st.writer_error, sizeof c_st.writer_error, "connect: %.400s", conn.error_text);
        atomic_store (&c_st.writer_done, true);
        sem_post (&c_st.progress);
        return NULL;
    }
    for (int seq = 1; seq <= C_WRITES; seq++) {
        char text [32];
        int size = snprintf (text, sizeof text, "w%05d", seq);
        while (true) {
            sluice_err_t rc = sluice_conn_call (&conn, SLUICE_CMD_WRITE, 0, SLUICE_FOREVER, 0,
                                                text, (size_t) size);
            if (rc == SLUICE_OK) {
                c_st.acked [seq] = true;
                atomic_fetch_add (&c_st.acked_count, 1);
                sem_post (&c_st.progress);
                break;
            }
            //  Not answered (the buffer was killed under it): its outcome is unknown, so it is
            //  written again; a duplicate is allowed, a lost acknowledged write is not
            if ((rc != SLUICE_ETRANSPORT && rc != SLUICE_EUNKNOWN) || atomic_load (&c_st.stop)) {
                snprintf (c_st.writer_error, sizeof c_st.writer_error, "write %d: %s (%.400s)", seq,
                          sluice_strerror (rc), conn.error_text);
                goto done;
            }
        }
    }
done:
    atomic_store (&c_st.writer_done, true);
    sem_post (&c_st.progress);
    sluice_conn_fini (&conn);
    return NULL;
}

//  Read with acknowledged delivery, up to 4 chunks a READ, until end of stream
static void *
c_reader (void *arg)
{
    sluice_conn_t conn;
    if (!c_conn (&conn)) {
        snprintf (c_st.reader_error, sizeof c_st.reader_error, "connect: %.400s", conn.error_text);
        return NULL;
    }
    uint64_t last = 0;
    while (true) {
        uint8_t ack [8];
        sluice_put64 (ack, last);
        sluice_err_t rc = sluice_conn_call (&conn, SLUICE_CMD_READ, SLUICE_FLAG_ACK,
                                            SLUICE_FOREVER, 4, ack, sizeof ack);
        if (rc == SLUICE_ETRANSPORT && !atomic_load (&c_st.stop))
            continue;       //  its chunks, if it had any, are unacknowledged: they come again
        if (rc != SLUICE_OK) {
            snprintf (c_st.reader_error, sizeof c_st.reader_error, "read: %s (%.400s)",
                      sluice_strerror (rc), conn.error_text);
            break;
        }
        last = conn.reply.request_id;
        if (conn.reply.flags & SLUICE_FLAG_EOS)
            break;
        for (size_t index = 0; index < conn.frames.count; index++) {
            const char *text = (const char *) zmq_msg_data (&conn.frames.items [index]);
            size_t size = zmq_msg_size (&conn.frames.items [index]);
            int seq = 0;
            if (size == 6 && text [0] == 'w' && sscanf (text + 1, "%5d", &seq) == 1
            &&  seq >= 1 && seq <= C_WRITES)
                c_st.received [seq]++;
            else
                c_st.unknown++;
            atomic_fetch_add (&c_st.read_count, 1);
        }
        sem_post (&c_st.progress);
    }
    sluice_conn_fini (&conn);
    return NULL;
}

//  `sluice buffer --journal` at bind; its endpoint into c_st.endpoint the first time
static void
c_start_buffer (const char *bind)
{
    c_st.buffer = p_spawn (P_SLUICE ("buffer", "--bind", bind, "--capacity", "32", "--journal",
                                     j_dir, "--fsync", "never"), NULL, -1, NULL, true, NULL);
    char endpoint [256];
    p_listening (c_st.buffer, "tcp://127.0.0.1:", endpoint, sizeof endpoint);
    if (!*c_st.endpoint)
        snprintf (c_st.endpoint, sizeof c_st.endpoint, "%s", endpoint);
    else
        cr_assert_str_eq (endpoint, c_st.endpoint);
}

//  Wait for the clients' progress until `cond` holds (or the writer is done)
#define C_WAIT(cond) do {                                                                    \
    while (!(cond) && !atomic_load (&c_st.writer_done)) {                                    \
        struct timespec c_ts_;                                                               \
        clock_gettime (CLOCK_REALTIME, &c_ts_);                                              \
        c_ts_.tv_sec += T_WAIT_MS / 1000;                                                    \
        cr_assert_eq (sem_timedwait (&c_st.progress, &c_ts_), 0, "no progress while "        \
                      "waiting for %s (acked %d, read %d)", #cond,                           \
                      atomic_load (&c_st.acked_count), atomic_load (&c_st.read_count));      \
    }                                                                                        \
} while (0)

//  SIGKILL the buffer process and start another on its port and journal
static void
c_kill_and_restart (const char *when)
{
    cr_log_info ("kill %s, after %d acknowledged writes, %d chunks read", when,
                 atomic_load (&c_st.acked_count), atomic_load (&c_st.read_count));
    p_child_t *child = &p_fx.children [c_st.buffer];
    cr_assert_eq (kill (child->pid, SIGKILL), 0);
    cr_assert_eq (p_wait (c_st.buffer), 128 + SIGKILL);
    c_start_buffer (c_st.endpoint);
}

Test (journal_crash, no_acknowledged_write_is_lost_across_kill_9)
{
    c_start_buffer ("tcp://127.0.0.1:0");
    unsigned seed = (unsigned) zclock_time () ^ (unsigned) getpid ();
    cr_log_info ("journal_crash seed %u", seed);
    size_t writer = t_spawn (c_writer, NULL);
    //  No reader yet: kills with chunks queued, then with the buffer full (capacity 32) and
    //  the writer's next write parked
    int target = 1 + (int) (rand_r (&seed) % 30);
    C_WAIT (atomic_load (&c_st.acked_count) >= target);
    c_kill_and_restart ("with chunks queued");
    //  (a write resent after a kill may have been enqueued twice: ask the buffer)
    sluice_conn_t status;
    cr_assert (c_conn (&status));
    int64_t deadline = zclock_mono () + T_WAIT_MS;
    while (true) {
        sluice_err_t rc = sluice_conn_call (&status, SLUICE_CMD_STATUS, 0, T_WAIT_MS, 0, NULL, 0);
        cr_assert_eq (rc, SLUICE_OK, "status: %s (%s)", sluice_strerror (rc), status.error_text);
        const char *text = (const char *) zmq_msg_data (&status.frames.items [0]);
        size_t size = zmq_msg_size (&status.frames.items [0]);
        if (sluice_status_u64 (text, size, "parked_writers", 0) == 1)
            break;
        cr_assert (zclock_mono () < deadline, "the writer never parked: %.*s", (int) size, text);
    }
    sluice_conn_fini (&status);
    c_kill_and_restart ("with the buffer full and the writer parked");
    size_t reader = t_spawn (c_reader, NULL);
    //  Then at moments picked from the clients' progress: some more acknowledged writes, or
    //  some more chunks read
    for (int kill_index = 0; kill_index < C_KILLS; kill_index++) {
        int more = 5 + (int) (rand_r (&seed) % 200);
        if (kill_index % 2 == 0) {
            target = atomic_load (&c_st.acked_count) + more;
            C_WAIT (atomic_load (&c_st.acked_count) >= target);
        }
        else {
            target = atomic_load (&c_st.read_count) + more;
            C_WAIT (atomic_load (&c_st.read_count) >= target);
        }
        if (atomic_load (&c_st.writer_done))
            break;
        c_kill_and_restart ("mid-stream");
    }
    t_join (writer);
    cr_assert_str_eq (c_st.writer_error, "", "%s", c_st.writer_error);
    //  Close: the reader drains what is left and gets end of stream
    sluice_conn_t closer;
    cr_assert (c_conn (&closer));
    sluice_err_t rc = sluice_conn_call (&closer, SLUICE_CMD_CLOSE, 0, T_WAIT_MS, 0, NULL, 0);
    sluice_conn_fini (&closer);
    cr_assert_eq (rc, SLUICE_OK, "close: %s", sluice_strerror (rc));
    t_join (reader);
    cr_assert_str_eq (c_st.reader_error, "", "%s", c_st.reader_error);

    int lost = 0, duplicates = 0, acked = 0;
    for (int seq = 1; seq <= C_WRITES; seq++) {
        acked += c_st.acked [seq];
        if (c_st.acked [seq] && c_st.received [seq] == 0) {
            if (lost++ < 10)
                cr_log_error ("acknowledged write %d never read", seq);
        }
        if (c_st.received [seq] > 1)
            duplicates += c_st.received [seq] - 1;
    }
    cr_log_info ("%d writes acknowledged, %d duplicates read (at-least-once)", acked, duplicates);
    cr_expect_eq (acked, C_WRITES);
    cr_expect_eq (lost, 0, "%d acknowledged writes lost", lost);
    cr_expect_eq (c_st.unknown, 0, "%d chunks read that were never written", c_st.unknown);
}

//  The command line: a journal that cannot be used stops `sluice buffer` with its reason
Test (journal_crash, sluice_buffer_says_why_it_cannot_use_a_journal)
{
    const char *file = p_path ("not-a-directory"), *err = p_path ("buffer.err");
    FILE *handle = fopen (file, "w");
    cr_assert_not_null (handle);
    fclose (handle);
    int status = p_run (P_ARGS ("buffer", "--bind", "tcp://127.0.0.1:0", "--capacity", "4",
                                "--journal", file), NULL, NULL, err);
    cr_expect_eq (status, 1, "sluice buffer with a file as its journal directory: exit %d",
                  status);
    p_expect_contains (err, "journal directory");
    status = p_run (P_ARGS ("buffer", "--bind", "tcp://127.0.0.1:0", "--capacity", "4",
                            "--fsync", "never"), NULL, NULL, err);
    cr_expect_eq (status, 2, "--fsync without --journal: exit %d", status);
    status = p_run (P_ARGS ("buffer", "--bind", "tcp://127.0.0.1:0", "--capacity", "4",
                            "--journal", j_dir, "--fsync", "sometimes"), NULL, NULL, err);
    cr_expect_eq (status, 2, "--fsync sometimes: exit %d", status);
    p_expect_contains (err, "always or never");
}
