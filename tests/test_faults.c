/*  test_faults.c - dead and hung peers across processes (issue 4): `sluice buffer`, `sluice
    read` and `sluice write` as processes over tcp://127.0.0.1, killed with SIGKILL or stopped
    with SIGSTOP at a known point, and a client that comes back under the same routing id.

    The programs are build/<this build>/bin/sluice and build/<this build>/tests/helpers/
    fault_helper, found from this test's own path (/proc/self/exe), or $SLUICE_CLI and
    $SLUICE_FAULT_HELPER. A process that must stop at an exact point says so on stdout (the
    buffer's "listening on EP", the helper's chunk lines) and the test waits for that line;
    what the buffer did about a fault is asked of the buffer itself (STATUS round trips until
    a condition holds, bounded by a deadline that is a liveness limit, never a timing
    assertion); a child's end is waited for on a pidfd. Nothing sleeps. Every child dies with
    the test process (PR_SET_PDEATHSIG) and is killed and reaped in .fini, stopped or not.

    The test process forks only to exec at once (it has ZeroMQ sockets and threads).
*/
#include "common.h"
#include "proc.h"
#include "sluice_conn.h"
#include "sluice.h"            //  sluice_conn_t: raw requests
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/inotify.h>
#include <sys/socket.h>

#define F_SUITE_TIMEOUT  60        //  seconds; each test takes well under 30 on a loaded machine
#define F_MAX_CHILDREN   8
#define F_MAX_FILES      16
#define F_MAX_FDS        8
//  A hung peer is dropped once tcp heartbeats time out (3 s) and the next probe (1 s) finds it
//  gone; a blocked client gives up after its liveness (5 s) plus grace (2 s). These bounds
//  leave room for a loaded machine; reaching them is a failure, not a measurement.
#define F_HUNG_BOUND_MS  20000

typedef struct {
    char helper [PATH_MAX + 32];
    int fds [F_MAX_FDS];           //  pipe ends the test holds (a child's stdin)
    size_t nfds;
    sluice_conn_t status;          //  STATUS client of the buffer under test
    bool status_open;
    char endpoint [256];           //  that buffer
} f_fixture_t;

static f_fixture_t f_fx;

static void
f_init (void)
{
    memset (&f_fx, 0, sizeof f_fx);
    p_init (F_MAX_CHILDREN, T_WAIT_MS);
    t_fx_init ();
    p_program (f_fx.helper, sizeof f_fx.helper, "SLUICE_FAULT_HELPER", p_fx.exe_dir,
               "helpers/fault_helper");
    p_tmpdir ("faults", F_MAX_FILES);
}

static void
f_fini (void)
{
    p_fini ();                              //  kills stopped children too
    for (size_t i = 0; i < f_fx.nfds; i++)
        close (f_fx.fds [i]);
    f_fx.nfds = 0;
    if (f_fx.status_open)
        sluice_conn_fini (&f_fx.status);
    f_fx.status_open = false;
    //  Threads blocked on a buffer that is gone now end within their client's liveness bound
    t_fx_fini ();
}

TestSuite (faults, .init = f_init, .fini = f_fini, .timeout = F_SUITE_TIMEOUT);

// ---------------------------------------------------------------------------------------------
//  Files and processes (the rest is in proc.h)

//  A pipe for a child's stdin: returns the read end (for the child; the fixture closes it)
//  and sets *writer to the end the test writes (closed by the fixture unless the test does).
static int
f_stdin_pipe (int *writer)
{
    cr_assert_lt (f_fx.nfds + 2, F_MAX_FDS);
    int fds [2];
    cr_assert_eq (pipe2 (fds, O_CLOEXEC), 0);
    f_fx.fds [f_fx.nfds++] = fds [0];
    f_fx.fds [f_fx.nfds++] = fds [1];
    *writer = fds [1];
    return fds [0];
}

//  `fault_helper ARGS...`
#define F_HELPER(...) ((const char *const []) { f_fx.helper, __VA_ARGS__, NULL })

//  SIGKILL the child and reap it.
static void
f_kill9 (size_t index)
{
    p_child_t *child = &p_fx.children [index];
    cr_assert (!child->reaped, "child %zu already ended", index);
    cr_assert_eq (kill (child->pid, SIGKILL), 0, "kill: %s", strerror (errno));
    cr_assert_eq (p_wait (index), 128 + SIGKILL);
}

static void
f_expect_line (size_t index, const char *expected)
{
    char line [256];
    p_line (index, line, sizeof line);
    cr_assert_str_eq (line, expected, "child %zu printed '%s', expected '%s'", index, line,
                      expected);
}

//  What is left on an exited child's stdout pipe, NUL-terminated (caller frees).
static char *
f_rest (size_t index)
{
    p_child_t *child = &p_fx.children [index];
    cr_assert (child->reaped, "read the rest of a child's output only once it has exited");
    zchunk_t *all = zchunk_new (NULL, 0);
    char bytes [4096];
    ssize_t got;
    while ((got = read (child->out, bytes, sizeof bytes)) > 0)
        zchunk_extend (all, bytes, (size_t) got);
    char *text = (char *) malloc (zchunk_size (all) + 1);
    memcpy (text, zchunk_data (all), zchunk_size (all));
    text [zchunk_size (all)] = 0;
    zchunk_destroy (&all);
    return text;
}

// ---------------------------------------------------------------------------------------------
//  The buffer process and its status

typedef struct {
    uint64_t capacity, queued, parked_writers, parked_readers, closed, written, read, unacked;
    char text [1024];
} f_status_t;

static uint64_t
f_key (const char *text, size_t size, const char *key)
{
    uint64_t value = sluice_status_u64 (text, size, key, UINT64_MAX);
    cr_assert_neq (value, UINT64_MAX, "STATUS reply without '%s':\n%.*s", key, (int) size, text);
    return value;
}

//  One STATUS round trip to the buffer under test.
static f_status_t
f_status (void)
{
    cr_assert (f_fx.status_open, "no buffer started");
    sluice_conn_t *conn = &f_fx.status;
    sluice_err_t rc = sluice_conn_call (conn, SLUICE_CMD_STATUS, 0, 5000, 0, NULL, 0);
    cr_assert_eq (rc, SLUICE_OK, "status: %s (%s)", sluice_strerror (rc), conn->error_text);
    cr_assert_eq (conn->frames.count, 1, "STATUS reply without its text");
    const char *text = (const char *) zmq_msg_data (&conn->frames.items [0]);
    size_t size = zmq_msg_size (&conn->frames.items [0]);
    f_status_t st;
    snprintf (st.text, sizeof st.text, "%.*s", (int) size, text);
    st.capacity = f_key (text, size, "capacity");
    st.queued = f_key (text, size, "queued");
    st.parked_writers = f_key (text, size, "parked_writers");
    st.parked_readers = f_key (text, size, "parked_readers");
    st.closed = f_key (text, size, "closed");
    st.written = f_key (text, size, "written");
    st.read = f_key (text, size, "read");
    st.unacked = f_key (text, size, "unacked");
    return st;
}

//  Ask the buffer again and again (each a round trip) until `cond`, written in terms of `st`,
//  holds; fail after bound_ms. Leaves the last status in st.
#define F_WAIT_BOUND(st, bound_ms, cond) do {                                                \
    int64_t f_deadline_ = zclock_mono () + (bound_ms);                                       \
    for (;;) {                                                                               \
        st = f_status ();                                                                    \
        if (cond) break;                                                                     \
        cr_assert (zclock_mono () < f_deadline_, "gave up after %d ms waiting for %s; "     \
                   "last status:\n%s", (int) (bound_ms), #cond, st.text);                    \
    }                                                                                        \
} while (0)

#define F_WAIT(st, cond) F_WAIT_BOUND (st, T_WAIT_MS, cond)

//  Start `sluice buffer --bind BIND --capacity N`; wait for its "listening on" line, connect the
//  status client to the first buffer of the test. Returns the child's index.
static size_t
f_buffer_at (const char *bind, const char *capacity, char *endpoint, size_t size)
{
    size_t index = p_spawn (P_SLUICE ("buffer", "--bind", bind, "--capacity", capacity), NULL,
                            -1, NULL, true, NULL);
    p_listening (index, "tcp://127.0.0.1:", endpoint, size);
    if (!f_fx.status_open) {
        snprintf (f_fx.endpoint, sizeof f_fx.endpoint, "%s", endpoint);
        cr_assert_eq (sluice_conn_init (&f_fx.status, endpoint, NULL), SLUICE_OK);
        f_fx.status_open = true;
    }
    return index;
}

//  A buffer on a port the kernel picks (port 0: not the next free port of a range, which a
//  buffer of a test running in parallel would take over as soon as this one dies).
static size_t
f_buffer (const char *capacity, char *endpoint, size_t size)
{
    return f_buffer_at ("tcp://127.0.0.1:0", capacity, endpoint, size);
}

//  A client stream of the test process, destroyed by the fixture (after its threads ended).
static sluice_stream_t *
f_stream (const char *endpoint)
{
    cr_assert_lt (t_fx.nstreams, T_MAX_STREAMS);
    sluice_stream_t *stream = sluice_stream_new (endpoint);
    cr_assert_not_null (stream, "sluice_stream_new (%s)", endpoint);
    t_fx.streams [t_fx.nstreams++] = stream;
    return stream;
}

static void
f_write (sluice_stream_t *stream, const char *text)
{
    sluice_err_t rc = sluice_stream_write_timeout (stream, text, strlen (text), false, T_WAIT_MS);
    cr_assert_eq (rc, SLUICE_OK, "write '%s': %s (%s)", text, sluice_strerror (rc),
                  sluice_stream_error_text (stream));
}

static void
f_close_buffer (sluice_stream_t *stream)
{
    sluice_err_t rc = sluice_stream_close (stream);
    cr_assert_eq (rc, SLUICE_OK, "close: %s (%s)", sluice_strerror (rc),
                  sluice_stream_error_text (stream));
}

static void
f_write_all (int fd, const char *text)
{
    size_t size = strlen (text);
    cr_assert_eq (write (fd, text, size), (ssize_t) size, "writing a child's stdin: %s",
                  strerror (errno));
}

// =============================================================================================
//  1. kill -9 of a reader with a parked read

Test (faults, killed_parked_reader_is_removed_and_a_later_chunk_reaches_another_reader)
{
    char endpoint [256];
    f_buffer ("4", endpoint, sizeof endpoint);
    size_t doomed = p_spawn (P_SLUICE ("read", "--connect", endpoint), NULL, -1, NULL, true, NULL);
    f_status_t st;
    F_WAIT (st, st.parked_readers == 1);

    f_kill9 (doomed);
    //  The buffer notices (the kernel closed the connection) and drops the parked read
    F_WAIT (st, st.parked_readers == 0);
    cr_assert_eq (st.queued, 0);

    sluice_stream_t *writer = f_stream (endpoint);
    f_write (writer, "after the death");
    size_t reader = p_spawn (P_SLUICE ("read", "--connect", endpoint), NULL, -1, NULL, true, NULL);
    f_expect_line (reader, "after the death");
    f_close_buffer (writer);
    cr_assert_eq (p_wait (reader), 0, "the second reader must reach end of stream");
    char *rest = f_rest (reader);
    cr_expect_str_eq (rest, "", "after the chunk the reader printed '%s'", rest);
    free (rest);
    char *dead = f_rest (doomed);
    cr_expect_str_eq (dead, "", "the killed reader printed '%s'", dead);
    free (dead);
    st = f_status ();
    cr_expect_eq (st.written, 1);
    cr_expect_eq (st.read, 1, "the chunk was handed out %llu times", (unsigned long long) st.read);
    cr_expect_eq (st.unacked, 0);
    cr_expect_eq (st.queued, 0);
}

// =============================================================================================
//  2. kill -9 of a reader holding an unacknowledged chunk

Test (faults, killed_reader_holding_an_unacknowledged_chunk_gives_it_back)
{
    char endpoint [256];
    f_buffer ("8", endpoint, sizeof endpoint);
    sluice_stream_t *writer = f_stream (endpoint);
    f_write (writer, "c1");
    f_write (writer, "c2");
    f_write (writer, "c3");
    //  The helper reads three chunks, one READ each: its second and third READ acknowledge c1
    //  and c2; c3 is held, unacknowledged, while it blocks on stdin
    int hold_stdin;
    int hold_in = f_stdin_pipe (&hold_stdin);
    size_t holder = p_spawn (F_HELPER ("hold-read", endpoint, "3"), NULL, hold_in, NULL, true,
                             NULL);
    f_expect_line (holder, "c1");
    f_expect_line (holder, "c2");
    f_expect_line (holder, "c3");
    //  The reply carrying c3 went out after the READ that acknowledged c2 was handled
    f_status_t st = f_status ();
    cr_assert_eq (st.read, 3, "status:\n%s", st.text);
    cr_assert_eq (st.unacked, 1, "c3 must be held for the reader; status:\n%s", st.text);
    cr_assert_eq (st.queued, 0);

    //  A second reader waits on the empty buffer
    size_t reader = p_spawn (P_SLUICE ("read", "--connect", endpoint), NULL, -1, NULL, true, NULL);
    F_WAIT (st, st.parked_readers == 1);

    f_kill9 (holder);
    //  c3 goes back to the head of the queue and the waiting reader gets it: at least once
    f_expect_line (reader, "c3");
    f_write (writer, "c4");
    f_expect_line (reader, "c4");
    f_close_buffer (writer);
    cr_assert_eq (p_wait (reader), 0, "the second reader must reach end of stream");
    //  c1 and c2 were acknowledged: never delivered again
    char *rest = f_rest (reader);
    cr_expect_str_eq (rest, "", "after c3 c4 the second reader printed '%s'", rest);
    free (rest);
    st = f_status ();
    cr_expect_eq (st.written, 4);
    cr_expect_eq (st.read, 4, "status:\n%s", st.text);
    cr_expect_eq (st.unacked, 0, "status:\n%s", st.text);
    cr_expect_eq (st.queued, 0);
}

// =============================================================================================
//  3. kill -9 of a writer parked on a full buffer

Test (faults, killed_parked_writer_leaves_the_queue_intact_and_its_chunk_out)
{
    char endpoint [256];
    f_buffer ("3", endpoint, sizeof endpoint);
    int feed;
    int writer_in = f_stdin_pipe (&feed);
    size_t writer = p_spawn (P_SLUICE ("write", "--connect", endpoint), NULL, writer_in, NULL,
                             false, NULL);
    f_write_all (feed, "w1\nw2\nw3\nunadmitted\n");
    f_status_t st;
    F_WAIT (st, st.parked_writers == 1 && st.queued == 3);

    f_kill9 (writer);
    F_WAIT (st, st.parked_writers == 0);
    cr_assert_eq (st.queued, 3, "status:\n%s", st.text);
    cr_assert_eq (st.written, 3, "status:\n%s", st.text);

    //  Reading frees room: a parked write that survived would be admitted now and show up
    const char *out = p_path ("out.txt");
    size_t reader = p_spawn (P_SLUICE ("read", "--connect", endpoint), NULL, -1, out, false, NULL);
    F_WAIT (st, st.parked_readers == 1 && st.queued == 0);
    sluice_stream_t *closer = f_stream (endpoint);
    f_close_buffer (closer);
    cr_assert_eq (p_wait (reader), 0, "the reader must reach end of stream");
    size_t size;
    char *got = p_read_file (out, &size);
    cr_expect_str_eq (got, "w1\nw2\nw3\n", "queue content after the writer's death");
    free (got);
    st = f_status ();
    cr_expect_eq (st.written, 3, "the dead writer's chunk was enqueued; status:\n%s", st.text);
}

// =============================================================================================
//  4. SIGSTOP of a reader with a parked read

Test (faults, stopped_reader_is_dropped_by_heartbeats_and_a_later_chunk_goes_elsewhere)
{
    char endpoint [256];
    f_buffer ("4", endpoint, sizeof endpoint);
    const char *hung_out = p_path ("hung.txt");
    size_t hung = p_spawn (P_SLUICE ("read", "--connect", endpoint), NULL, -1, hung_out, false,
                           NULL);
    f_status_t st;
    F_WAIT (st, st.parked_readers == 1);

    cr_assert_eq (kill (p_fx.children [hung].pid, SIGSTOP), 0);
    //  The process is alive and its connection open: only tcp heartbeats (timeout 3 s) can
    //  tell, then the buffer's probe (every second) removes the parked read
    F_WAIT_BOUND (st, F_HUNG_BOUND_MS, st.parked_readers == 0);

    sluice_stream_t *writer = f_stream (endpoint);
    f_write (writer, "for the living");
    size_t reader = p_spawn (P_SLUICE ("read", "--connect", endpoint), NULL, -1, NULL, true, NULL);
    f_expect_line (reader, "for the living");

    cr_assert_eq (kill (p_fx.children [hung].pid, SIGCONT), 0);
    f_kill9 (hung);
    f_close_buffer (writer);
    cr_assert_eq (p_wait (reader), 0, "the second reader must reach end of stream");
    size_t size;
    char *got = p_read_file (hung_out, &size);
    cr_expect_eq (size, 0, "the stopped reader printed '%s'", got);
    free (got);
    st = f_status ();
    cr_expect_eq (st.read, 1, "status:\n%s", st.text);
    cr_expect_eq (st.unacked, 0, "status:\n%s", st.text);
}

// =============================================================================================
//  5. The client side: the buffer process dies under blocked clients

Test (faults, killed_buffer_ends_blocked_reader_and_writer_with_an_error)
{
    char endpoint [256], other [256];
    size_t buffer = f_buffer ("1", endpoint, sizeof endpoint);
    const char *rerr = p_path ("read.err"), *werr = p_path ("write.err");
    size_t reader = p_spawn (P_SLUICE ("read", "--connect", endpoint), NULL, -1, NULL, false, rerr);
    f_status_t st;
    F_WAIT (st, st.parked_readers == 1);
    //  A writer parked on a full buffer, in a second buffer process
    size_t full = f_buffer ("1", other, sizeof other);
    sluice_conn_t probe;
    cr_assert_eq (sluice_conn_init (&probe, other, NULL), SLUICE_OK);
    int feed;
    int writer_in = f_stdin_pipe (&feed);
    size_t writer = p_spawn (P_SLUICE ("write", "--connect", other), NULL, writer_in, NULL, false,
                             werr);
    f_write_all (feed, "fits\nwaits\n");
    //  (the status client follows the first buffer; ask the second one directly)
    int64_t deadline = zclock_mono () + T_WAIT_MS;
    while (true) {
        sluice_err_t rc = sluice_conn_call (&probe, SLUICE_CMD_STATUS, 0, 5000, 0, NULL, 0);
        cr_assert_eq (rc, SLUICE_OK);
        const char *text = (const char *) zmq_msg_data (&probe.frames.items [0]);
        size_t size = zmq_msg_size (&probe.frames.items [0]);
        if (sluice_status_u64 (text, size, "parked_writers", 0) == 1)
            break;
        cr_assert (zclock_mono () < deadline, "the writer never parked:\n%.*s", (int) size, text);
    }
    sluice_conn_fini (&probe);

    f_kill9 (buffer);
    f_kill9 (full);
    //  Liveness ping after 5 s without a word, 2 s grace: a transport error, exit 1. The
    //  writer's chunk was sent and never answered: its outcome is unknown (exit 6), not failed
    cr_expect_eq (p_wait_within (reader, F_HUNG_BOUND_MS), 1, "sluice read on a dead buffer");
    cr_expect_eq (p_wait_within (writer, F_HUNG_BOUND_MS), 6, "sluice write on a dead buffer");
    size_t size;
    char *text = p_read_file (rerr, &size);
    cr_expect_gt (size, 0, "sluice read exited without saying why");
    free (text);
    text = p_read_file (werr, &size);
    cr_expect (strstr (text, "chunk 2: outcome unknown")
               && strstr (text, "it may or may not have been enqueued"),
               "sluice write said: %s", text);
    free (text);
}

//  Wait until the file at `path` holds `needle` (a child's stderr), on inotify: no polling.
static void
f_wait_text (const char *path, const char *needle, int bound_ms)
{
    int watch = inotify_init1 (IN_CLOEXEC);
    cr_assert_neq (watch, -1, "inotify_init1: %s", strerror (errno));
    cr_assert_neq (inotify_add_watch (watch, path, IN_MODIFY), -1, "inotify_add_watch (%s): %s",
                   path, strerror (errno));
    int64_t deadline = zclock_mono () + bound_ms;
    while (true) {
        //  Read after the watch is set: a write in between is seen either way
        char *text = p_read_file (path, NULL);
        bool found = strstr (text, needle) != NULL;
        if (!found && zclock_mono () >= deadline)
            cr_assert (false, "%s never said '%s' in %d ms; it said: %s", path, needle,
                       bound_ms, text);
        free (text);
        if (found)
            break;
        struct pollfd item = { watch, POLLIN, 0 };
        int64_t left = deadline - zclock_mono ();
        if (poll (&item, 1, left > 0 ? (int) left : 0) == 1) {
            char events [4096];
            cr_assert_gt (read (watch, events, sizeof events), 0);
        }
    }
    close (watch);
}

//  A write sent to a buffer that stopped answering (SIGSTOP: alive, its connection open) has
//  an outcome nobody knows: exit 6, saying so, not "failed"
Test (faults, a_write_to_a_stopped_buffer_has_an_unknown_outcome)
{
    char endpoint [256];
    size_t buffer = f_buffer ("4", endpoint, sizeof endpoint);
    const char *werr = p_path ("write.err");
    int feed;
    int writer_in = f_stdin_pipe (&feed);
    size_t writer = p_spawn (P_SLUICE ("write", "--connect", endpoint), NULL, writer_in, NULL,
                             false, werr);
    f_write_all (feed, "one\n");
    f_status_t st;
    F_WAIT (st, st.written == 1);
    cr_assert_eq (kill (p_fx.children [buffer].pid, SIGSTOP), 0);
    f_write_all (feed, "two\n");
    int status = -1;
    bool ended = p_try_wait (writer, F_HUNG_BOUND_MS, &status);
    char *text = p_read_file (werr, NULL);
    cr_expect (ended && status == 6, "sluice write whose buffer stopped answering: %s %d; "
               "it said: %s", ended ? "exit" : "still running after ms:", ended ? status
               : F_HUNG_BOUND_MS, text);
    cr_expect (strstr (text, "chunk 2: outcome unknown")
               && strstr (text, "it may or may not have been enqueued"),
               "sluice write said: %s", text);
    free (text);
    cr_assert_eq (kill (p_fx.children [buffer].pid, SIGCONT), 0);
}

//  With --retry-for, a reader rides out a buffer that stopped answering for longer than its
//  liveness check (it says it is retrying, where it would have given up), and reads on once
//  the buffer is back: its READ, lost with the connection that heartbeats dropped, is sent
//  again (safe: acknowledged delivery)
Test (faults, a_reader_with_retry_for_rides_out_a_stopped_buffer)
{
    char endpoint [256];
    size_t buffer = f_buffer ("4", endpoint, sizeof endpoint);
    const char *rerr = p_path ("read.err");
    size_t reader = p_spawn (P_SLUICE ("read", "--connect", endpoint, "--retry-for", "60000"),
                             NULL, -1, NULL, true, rerr);
    f_status_t st;
    F_WAIT (st, st.parked_readers == 1);
    cr_assert_eq (kill (p_fx.children [buffer].pid, SIGSTOP), 0);
    f_wait_text (rerr, "retrying for up to 60000 ms", F_HUNG_BOUND_MS);
    cr_assert_eq (kill (p_fx.children [buffer].pid, SIGCONT), 0);

    sluice_stream_t *writer = f_stream (endpoint);
    f_write (writer, "after the outage");
    f_expect_line (reader, "after the outage");
    f_close_buffer (writer);
    cr_expect_eq (p_wait (reader), 0, "the reader must reach its end of stream");
    st = f_status ();
    cr_expect_eq (st.unacked, 0, "status:\n%s", st.text);
}

//  Retrying does not hide a restart: a reader with --retry-for whose buffer is killed and
//  replaced is told (exit 5), since the new buffer does not hold what the old one did
Test (faults, a_reader_with_retry_for_is_told_its_buffer_restarted)
{
    char endpoint [256], again [256];
    size_t buffer = f_buffer ("4", endpoint, sizeof endpoint);
    const char *rerr = p_path ("read.err");
    size_t reader = p_spawn (P_SLUICE ("read", "--connect", endpoint, "--retry-for", "60000"),
                             NULL, -1, NULL, true, rerr);
    //  A reply first: the reader knows the buffer it talks to
    f_write (f_stream (endpoint), "before");
    f_expect_line (reader, "before");
    f_status_t st;
    F_WAIT (st, st.parked_readers == 1);
    f_kill9 (buffer);
    f_buffer_at (endpoint, "4", again, sizeof again);
    cr_assert_str_eq (again, endpoint);
    cr_expect_eq (p_wait_within (reader, F_HUNG_BOUND_MS), 5,
                  "sluice read went on after its buffer restarted");
    char *text = p_read_file (rerr, NULL);
    cr_expect (strstr (text, "restarted"), "sluice read said: %s", text);
    free (text);
}

//  The same, with a new buffer at the same address: the blocked client must not take the new
//  buffer's answers to its liveness pings for the old one's promise to answer its READ
Test (faults, buffer_restarted_at_the_same_address_does_not_hang_a_blocked_reader)
{
    char endpoint [256], again [256];
    size_t buffer = f_buffer ("4", endpoint, sizeof endpoint);
    const char *rerr = p_path ("read.err");
    size_t reader = p_spawn (P_SLUICE ("read", "--connect", endpoint), NULL, -1, NULL, true, rerr);
    f_status_t st;
    F_WAIT (st, st.parked_readers == 1);
    f_kill9 (buffer);
    //  The parked READ died with the old process. A new one takes over the address
    f_buffer_at (endpoint, "4", again, sizeof again);
    cr_assert_str_eq (again, endpoint);
    sluice_stream_t *writer = f_stream (endpoint);
    f_write (writer, "after the restart");

    //  Acceptable: the reader fails (exit 1: its buffer died) or it carries on with the new
    //  buffer (prints the chunk). Not acceptable: blocked past liveness + grace
    p_child_t *child = &p_fx.children [reader];
    int pidfd = (int) syscall (SYS_pidfd_open, child->pid, 0);
    cr_assert_neq (pidfd, -1, "pidfd_open: %s", strerror (errno));
    struct pollfd items [2] = { { pidfd, POLLIN, 0 }, { child->out, POLLIN, 0 } };
    int rc;
    do
        rc = poll (items, 2, F_HUNG_BOUND_MS);
    while (rc == -1 && errno == EINTR);
    close (pidfd);
    if (rc == 1 && (items [1].revents & POLLIN)) {
        f_expect_line (reader, "after the restart");
        f_close_buffer (writer);
        cr_expect_eq (p_wait (reader), 0, "the reader carried on with the new buffer, then "
                      "must reach its end of stream");
    }
    else
    if (rc >= 1)
        cr_expect_eq (p_wait (reader), 1, "the reader whose buffer died must fail (exit 1)");
    else {
        st = f_status ();
        cr_assert (false, "sluice read is still blocked %d ms after its buffer was killed and "
                   "replaced: its READ died with the old process, and the new buffer answers its "
                   "liveness pings, so it waits forever. New buffer's status:\n%s",
                   F_HUNG_BOUND_MS, st.text);
    }
}

//  A writer mid-stream whose buffer is killed and replaced must not carry on as if nothing
//  happened: the chunks the old one held are gone. It is told (exit 5), and the write that
//  told it went into the new buffer.
Test (faults, a_writer_mid_stream_is_told_its_buffer_restarted)
{
    char endpoint [256], again [256];
    size_t buffer = f_buffer ("4", endpoint, sizeof endpoint);
    const char *werr = p_path ("write.err");
    int feed;
    int writer_in = f_stdin_pipe (&feed);
    size_t writer = p_spawn (P_SLUICE ("write", "--connect", endpoint), NULL, writer_in, NULL,
                             false, werr);
    f_write_all (feed, "one\ntwo\n");
    f_status_t st;
    F_WAIT (st, st.written == 2);
    f_kill9 (buffer);
    f_buffer_at (endpoint, "4", again, sizeof again);
    cr_assert_str_eq (again, endpoint);
    f_write_all (feed, "three\n");
    cr_expect_eq (p_wait_within (writer, F_HUNG_BOUND_MS), 5,
                  "sluice write went on after its buffer restarted");
    size_t size;
    char *text = p_read_file (werr, &size);
    cr_expect (text && strstr (text, "restarted"), "sluice write said: %s", text ? text : "");
    free (text);
    F_WAIT (st, st.queued == 1);            //  "three", in the new buffer
}

// =============================================================================================
//  6. A new incarnation of a client, under the routing id of an earlier one

static void
s_put64 (uint8_t *bytes, uint64_t value)
{
    for (int index = 7; index >= 0; index--, value >>= 8)
        bytes [index] = (uint8_t) value;
}

//  The earlier incarnation: a raw DEALER with a fixed routing id that parks an acknowledged
//  READ with request id `id` (acknowledging nothing: it has received no reply). Returns the
//  DEALER and the local tcp port of its connection.
static zsock_t *
f_old_incarnation (const char *endpoint, const char *routing_id, uint64_t id, int *local_port)
{
    zsock_t *old = zsock_new (ZMQ_DEALER);
    cr_assert_not_null (old);
    cr_assert_eq (zmq_setsockopt (zsock_resolve (old), ZMQ_ROUTING_ID, routing_id,
                                  strlen (routing_id)), 0);
    //  The monitor names the connection's descriptor, hence its local port
    char monitor_ep [64];
    snprintf (monitor_ep, sizeof monitor_ep, "inproc://faults-monitor-%d", (int) getpid ());
    cr_assert_eq (zmq_socket_monitor (zsock_resolve (old), monitor_ep, ZMQ_EVENT_CONNECTED), 0);
    zsock_t *monitor = zsock_new_pair (monitor_ep);
    cr_assert_not_null (monitor);
    zsock_set_rcvtimeo (monitor, T_WAIT_MS);
    cr_assert_eq (zsock_connect (old, "%s", endpoint), 0);

    zframe_t *event = zframe_recv (monitor);
    cr_assert_not_null (event, "the old incarnation never connected");
    cr_assert_eq (zframe_size (event), 6);
    uint16_t what;
    int32_t fd;
    memcpy (&what, zframe_data (event), 2);
    memcpy (&fd, zframe_data (event) + 2, 4);
    cr_assert_eq (what, ZMQ_EVENT_CONNECTED);
    bool more = zframe_more (event);
    zframe_destroy (&event);
    if (more) {
        zframe_t *address = zframe_recv (monitor);
        zframe_destroy (&address);
    }
    struct sockaddr_in local;
    socklen_t size = sizeof local;
    cr_assert_eq (getsockname (fd, (struct sockaddr *) &local, &size), 0, "getsockname: %s",
                  strerror (errno));
    *local_port = ntohs (local.sin_port);
    zmq_socket_monitor (zsock_resolve (old), NULL, 0);
    zsock_destroy (&monitor);

    uint8_t header [SLUICE_HEADER_SIZE], ack [8];
    sluice_header_t request = {
        .version = SLUICE_PROTOCOL_VERSION, .command = SLUICE_CMD_READ,
        .flags = SLUICE_FLAG_ACK, .timeout_ms = SLUICE_WAIT_FOREVER, .request_id = id,
        .count = 1,
    };
    sluice_header_encode (&request, header);
    s_put64 (ack, 0);
    cr_assert_eq (zmq_send (zsock_resolve (old), header, sizeof header, ZMQ_SNDMORE),
                  (int) sizeof header);
    cr_assert_eq (zmq_send (zsock_resolve (old), ack, sizeof ack, 0), (int) sizeof ack);
    return old;
}

//  Is the buffer process's side of the connection from local_port still open (established,
//  or closing but not yet closed by the buffer)? From /proc/net/tcp: the buffer runs here.
static bool
f_server_side_open (int server_port, int client_port)
{
    FILE *file = fopen ("/proc/net/tcp", "r");
    cr_assert_not_null (file, "/proc/net/tcp: %s", strerror (errno));
    char line [512];
    bool open = false;
    cr_assert_not_null (fgets (line, sizeof line, file));      //  the title line
    while (fgets (line, sizeof line, file)) {
        unsigned local_ip, local_port, remote_ip, remote_port, state;
        if (sscanf (line, " %*d: %x:%x %x:%x %x", &local_ip, &local_port, &remote_ip,
                    &remote_port, &state) != 5)
            continue;
        //  01 ESTABLISHED, 08 CLOSE_WAIT (the peer closed, the buffer has not yet)
        if ((int) local_port == server_port && (int) remote_port == client_port
        &&  (state == 0x01 || state == 0x08))
            open = true;
    }
    fclose (file);
    return open;
}

//  Close the earlier incarnation and wait until the buffer process has closed its side of that
//  connection: its ROUTER then knows the routing id is free (the pipe's end is queued to it
//  before anything a new connection brings), so the new incarnation is not refused as a
//  duplicate routing id (ZMQ_ROUTER_HANDOVER is not set).
static void
f_end_incarnation (zsock_t **old, const char *endpoint, int local_port)
{
    zsock_destroy (old);
    const char *colon = strrchr (endpoint, ':');
    cr_assert_not_null (colon);
    int server_port = atoi (colon + 1);
    int64_t deadline = zclock_mono () + T_WAIT_MS;
    while (f_server_side_open (server_port, local_port)) {
        cr_assert (zclock_mono () < deadline, "the buffer never closed the old connection");
        sched_yield ();
    }
}

//  The new incarnation: the library's own client (random request ids, discards replies that
//  are not for its request, acknowledged reads), connected under the same routing id.
//  sluice_stream_t is opaque; its first member is its connection (sluice_conn_t, in
//  src/sluice_stream.c), whose first member is the DEALER: reconnect that DEALER with the
//  routing id before the first request. zsock_is checks that the layout still holds.
static sluice_stream_t *
f_new_incarnation (const char *endpoint, const char *routing_id)
{
    sluice_stream_t *stream = f_stream (endpoint);
    zsock_t *dealer = ((sluice_conn_t *) (void *) stream)->dealer;
    cr_assert (zsock_is (dealer), "sluice_stream_t no longer starts with its connection: "
               "update f_new_incarnation");
    cr_assert_eq (zsock_disconnect (dealer, "%s", endpoint), 0);
    cr_assert_eq (zmq_setsockopt (zsock_resolve (dealer), ZMQ_ROUTING_ID, routing_id,
                                  strlen (routing_id)), 0);
    cr_assert_eq (zsock_connect (dealer, "%s", endpoint), 0);
    return stream;
}

typedef struct {
    sluice_stream_t *stream;
    size_t wanted;
    atomic_size_t got;
    char texts [2][64];
    bool eos [2];
    sluice_err_t rc;
    atomic_bool finished;
} f_incarnation_reads_t;

static void *
f_incarnation_reads (void *arg)
{
    f_incarnation_reads_t *reads = (f_incarnation_reads_t *) arg;
    reads->rc = SLUICE_OK;
    for (size_t index = 0; index < reads->wanted; index++) {
        sluice_chunk_t chunk;
        reads->rc = sluice_stream_read_timeout (reads->stream, &chunk, T_WAIT_MS);
        if (reads->rc != SLUICE_OK)
            break;
        snprintf (reads->texts [index], sizeof reads->texts [index], "%.*s",
                  (int) chunk.size, chunk.is_eos ? "" : chunk.text);
        if (chunk.is_eos)
            snprintf (reads->texts [index], sizeof reads->texts [index], "<end of stream>");
        reads->eos [index] = chunk.is_eos;
        atomic_fetch_add (&reads->got, 1);
        if (chunk.is_eos)
            break;
    }
    atomic_store (&reads->finished, true);
    return NULL;
}

Test (faults, new_incarnation_under_the_same_routing_id_gets_its_own_replies_and_loses_nothing)
{
    char endpoint [256];
    f_buffer ("4", endpoint, sizeof endpoint);
    char routing_id [64];
    snprintf (routing_id, sizeof routing_id, "faults-incarnation-%d", (int) getpid ());
    //  The earlier incarnation's request ids were lower than the new one's: so it is for half
    //  of all restarts, each incarnation starting at a random point (the C client starts at a
    //  random 31-bit value << 32; this one started at 1)
    int local_port;
    zsock_t *old = f_old_incarnation (endpoint, routing_id, 1, &local_port);
    f_status_t st;
    F_WAIT (st, st.parked_readers == 1);
    f_end_incarnation (&old, endpoint, local_port);

    sluice_stream_t *fresh = f_new_incarnation (endpoint, routing_id);
    //  A round trip on the new connection: once it is answered, the routing id is routable
    //  again, so the buffer's probe can no longer sweep the old parked read. Either the probe
    //  swept it in the moment between (parked 0), or it stays parked for good (parked 1).
    sluice_buffer_status_t first;
    sluice_err_t rc = sluice_stream_status (fresh, &first);
    cr_assert_eq (rc, SLUICE_OK, "the new incarnation's first request: %s (%s)",
                  sluice_strerror (rc), sluice_stream_error_text (fresh));
    size_t old_parked = first.parked_readers;
    cr_assert_leq (old_parked, 1);
    cr_log_info ("earlier incarnation's read %s", old_parked
                 ? "still parked under the routing id: its reply will reach the new connection"
                 : "swept before the new incarnation connected");

    //  The new incarnation parks a read of its own behind the old one
    f_incarnation_reads_t reads = { .stream = fresh, .wanted = 2 };
    atomic_init (&reads.got, 0);
    atomic_init (&reads.finished, false);
    t_spawn (f_incarnation_reads, &reads);
    F_WAIT (st, st.parked_readers == old_parked + 1);

    //  c1 goes to the oldest parked read (the old incarnation's, if it is still there), c2 to
    //  the new one's
    sluice_stream_t *writer = f_stream (endpoint);
    f_write (writer, "c1");
    f_write (writer, "c2");

    //  Wait for the new incarnation to have both chunks, or for the buffer to show that one
    //  is gone: nothing queued, nothing held unacknowledged, and the new incarnation's read
    //  parked although it has not had both (it cannot be parked after its second chunk).
    bool lost = false;
    int64_t deadline = zclock_mono () + T_WAIT_MS;
    while (!atomic_load (&reads.finished)) {
        st = f_status ();
        if (atomic_load (&reads.got) < 2 && st.written == 2 && st.queued == 0
        &&  st.unacked == 0 && st.parked_readers >= 1) {
            lost = true;
            break;
        }
        cr_assert (zclock_mono () < deadline, "the new incarnation did not get both chunks; "
                   "got %zu; status:\n%s", atomic_load (&reads.got), st.text);
    }
    if (lost)
        f_close_buffer (writer);            //  ends the parked read (end of stream)
    t_join_all ();

    size_t got = atomic_load (&reads.got);
    bool have [2] = { false, false };
    for (size_t index = 0; index < got; index++) {
        cr_expect (!reads.eos [index] || lost, "read %zu: end of stream", index + 1);
        if (streq (reads.texts [index], "c1"))
            have [0] = true;
        else
        if (streq (reads.texts [index], "c2"))
            have [1] = true;
        else
        if (!reads.eos [index])
            cr_expect (false, "read %zu returned '%s', a chunk never written", index + 1,
                       reads.texts [index]);
    }
    cr_expect (!lost && have [0] && have [1],
               "a chunk was lost: the new incarnation received %s%s%s (%zu read%s: '%s', '%s'). "
               "%s", have [0] ? "c1" : "", have [0] && have [1] ? " and " : "",
               have [1] ? "c2" : "", got, got == 1 ? "" : "s", reads.texts [0], reads.texts [1],
               old_parked
               ? "c1 went out in a reply to the earlier incarnation's parked READ (request id "
                 "1), to the routing id the new connection now holds; the new client discarded "
                 "it (not its request id), and its next READ acknowledged its own reply id, "
                 "which is numerically above 1: the buffer released c1 as acknowledged."
               : "");
    cr_expect_eq (reads.rc, SLUICE_OK, "the new incarnation's reads: %s", sluice_strerror (reads.rc));
}

Test (faults, incarnation_gone_before_the_new_one_connects_is_swept)
{
    char endpoint [256];
    f_buffer ("4", endpoint, sizeof endpoint);
    char routing_id [64];
    snprintf (routing_id, sizeof routing_id, "faults-swept-%d", (int) getpid ());
    int local_port;
    zsock_t *old = f_old_incarnation (endpoint, routing_id, 1, &local_port);
    f_status_t st;
    F_WAIT (st, st.parked_readers == 1);
    f_end_incarnation (&old, endpoint, local_port);
    //  Nobody holds the routing id: the probe finds it unroutable and drops the parked read
    F_WAIT (st, st.parked_readers == 0);

    sluice_stream_t *fresh = f_new_incarnation (endpoint, routing_id);
    f_incarnation_reads_t reads = { .stream = fresh, .wanted = 1 };
    atomic_init (&reads.got, 0);
    atomic_init (&reads.finished, false);
    t_spawn (f_incarnation_reads, &reads);
    F_WAIT (st, st.parked_readers == 1);
    sluice_stream_t *writer = f_stream (endpoint);
    f_write (writer, "only");
    t_join_all ();
    cr_assert_eq (reads.rc, SLUICE_OK, "%s", sluice_strerror (reads.rc));
    cr_assert_eq (atomic_load (&reads.got), 1);
    cr_assert_str_eq (reads.texts [0], "only");
    st = f_status ();
    cr_expect_eq (st.queued, 0);
    cr_expect_eq (st.read, 1);
}
