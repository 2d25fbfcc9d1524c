/*  common.h - helpers shared by the sluice test binaries (header only, static inline).

    A fixture (t_fx_init / t_fx_fini) owns whatever a test starts: the buffer actor, the
    client streams made with t_stream, and the threads made with t_spawn. Criterion runs each
    test in its own process, so the state lives in one static struct per binary.

    Waiting never sleeps: a thread blocked in the actor is confirmed by asking the actor
    itself (sluice_stream_status is a round trip) until it reports the expected state, bounded
    by T_WAIT_MS. That bound is a liveness limit, never a timing assertion.

    Define T_TCP to 1 before including to bind buffers at tcp://127.0.0.1:0 instead of a
    per-test inproc:// endpoint; clients always connect to sluice_buffer_endpoint().
*/
#ifndef SLUICE_TEST_COMMON_H_INCLUDED
#define SLUICE_TEST_COMMON_H_INCLUDED

#ifndef _GNU_SOURCE
#define _GNU_SOURCE         //  pthread_timedjoin_np; include this header first
#endif

#include <criterion/criterion.h>
#include <czmq.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define T_HAVE_LSAN 1
#endif

#include "sluice_error.h"
#include "sluice_protocol.h"
#include "sluice_status.h"
#include "sluice_events.h"
#include "sluice_buffer.h"
#include "sluice_stream.h"

#ifndef T_TCP
#define T_TCP 0
#endif

#define T_SUITE_TIMEOUT  30        //  seconds, every suite
#define T_WAIT_MS        15000     //  liveness bound for anything the test waits on
#define T_MAX_THREADS    512
#define T_MAX_STREAMS    64
#define T_TEXT_MAX       256

// ---------------------------------------------------------------------------------------------
//  Fixture state

typedef struct {
    sluice_buffer_t *buf;
    char endpoint[256];            //  where clients connect (resolved)
    char events[256];              //  events endpoint (resolved), "" when none
    sluice_stream_t *cli;          //  the main thread's client
    sluice_stream_t *streams[T_MAX_STREAMS];
    size_t nstreams;
    pthread_t threads[T_MAX_THREADS];
    bool joined[T_MAX_THREADS];
    struct t_op_s *ops[T_MAX_THREADS];  //  the op a thread runs (t_spawn_op), or NULL
    size_t nthreads;
    unsigned serial;               //  makes endpoints unique within one test
    bool tcp;                      //  bind tcp://127.0.0.1:0 (T_TCP by default)
    void (*cleanup) (void);        //  a test file's own teardown, run first (optional)
} t_fixture_t;

static t_fixture_t t_fx;

static inline void
t_fx_init (void)
{
    memset (&t_fx, 0, sizeof t_fx);
    t_fx.tcp = T_TCP;
    //  Stress tests open a few hundred sockets; the default limit is 1023 per context.
    zsys_set_max_sockets (4096);
}

//  Join every thread still registered (after a close has woken them, or after they finished).
static inline void
t_join_all (void)
{
    for (size_t i = 0; i < t_fx.nthreads; i++)
        if (!t_fx.joined [i])
            pthread_join (t_fx.threads [i], NULL);
    memset (t_fx.joined, 0, sizeof t_fx.joined);
    memset (t_fx.ops, 0, sizeof t_fx.ops);
    t_fx.nthreads = 0;
}

//  Join one thread by the index t_spawn / t_spawn_op returned.
static inline void
t_join (size_t index)
{
    if (index < t_fx.nthreads && !t_fx.joined [index]) {
        pthread_join (t_fx.threads [index], NULL);
        t_fx.joined [index] = true;
    }
}

static inline void t_release_ops (void);

//  Idempotent: runs at the end of a passing test body (T_TEST) and again as the suite's .fini.
//  A clean end even when the test failed half way: closing the buffer wakes every parked
//  thread (readers get end of stream, writers SLUICE_ECLOSED) and held threads are released.
//  Threads a broken buffer would leave blocked are given a few seconds, then the buffer is
//  destroyed so that their clients give up (liveness ping + grace) and they can be joined.
static inline void
t_fx_fini (void)
{
    if (t_fx.cleanup)
        t_fx.cleanup ();
    if (t_fx.buf)
        sluice_buffer_close (t_fx.buf);
    t_release_ops ();
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    bool stuck = false;
    for (size_t i = 0; i < t_fx.nthreads; i++)
        if (!t_fx.joined [i]) {
            if (pthread_timedjoin_np (t_fx.threads [i], NULL, &ts) == 0)
                t_fx.joined [i] = true;
            else
                stuck = true;
        }
    if (stuck)
        sluice_buffer_destroy (&t_fx.buf);
    t_join_all ();
    for (size_t i = 0; i < t_fx.nstreams; i++)
        sluice_stream_destroy (&t_fx.streams [i]);
    t_fx.nstreams = 0;
    t_fx.cli = NULL;
    sluice_buffer_destroy (&t_fx.buf);
}

//  Criterion 2.4 ignores a failure or crash in .fini, and a LeakSanitizer report at process
//  exit does not fail a test either. So a test declared with T_TEST tears its fixture down at
//  the end of its own body and then asks LeakSanitizer (ASan builds) for leaks, failing the
//  test if any. When the body fails half way, the suite's .fini still cleans up.
static inline void
t_teardown_checked (void)
{
    t_fx_fini ();
#ifdef T_HAVE_LSAN
    int leaks = __lsan_do_recoverable_leak_check ();
    cr_assert_eq (leaks, 0, "memory leaked: see the LeakSanitizer report above");
#endif
}

#define T_TEST(suite, name)                                                                  \
    static void t_body_##suite##_##name (void);                                              \
    Test (suite, name) { t_body_##suite##_##name (); t_teardown_checked (); }                \
    static void t_body_##suite##_##name (void)

// ---------------------------------------------------------------------------------------------
//  Starting a buffer

//  The endpoint to bind for the next buffer of this test.
static inline void
t_bind_endpoint (char *out, size_t size, const char *what)
{
    if (t_fx.tcp)
        snprintf (out, size, "tcp://127.0.0.1:0");
    else
        snprintf (out, size, "inproc://sluice-%s-%s-%s-%u",
                  criterion_current_suite ? criterion_current_suite->name : "suite",
                  criterion_current_test ? criterion_current_test->name : "test",
                  what, t_fx.serial++);
}

//  Start the fixture's buffer with these options (endpoint and events_endpoint set by the
//  caller) and the main thread's client (t_fx.cli).
static inline void
t_start_with (const sluice_buffer_opts_t *opts)
{
    bool with_events = opts->events_endpoint != NULL;
    sluice_err_t err = SLUICE_EINTERNAL;
    t_fx.buf = sluice_buffer_new (opts, &err);
    cr_assert_not_null (t_fx.buf, "sluice_buffer_new (%s, capacity %zu) failed: %s",
                        opts->endpoint, opts->capacity, sluice_strerror (err));
    const char *bound = sluice_buffer_endpoint (t_fx.buf);
    cr_assert_not_null (bound);
    if (t_fx.tcp) {
        cr_assert (strncmp (bound, "tcp://127.0.0.1:", 16) == 0, "endpoint is %s", bound);
        cr_assert (strchr (bound, '*') == NULL, "wildcard port not resolved: %s", bound);
    }
    snprintf (t_fx.endpoint, sizeof t_fx.endpoint, "%s", bound);
    if (with_events) {
        const char *evb = sluice_buffer_events_endpoint (t_fx.buf);
        cr_assert_not_null (evb, "no events endpoint although one was given");
        cr_assert (strchr (evb, '*') == NULL, "events wildcard port not resolved: %s", evb);
        snprintf (t_fx.events, sizeof t_fx.events, "%s", evb);
    }
    else
        cr_assert_null (sluice_buffer_events_endpoint (t_fx.buf));

    t_fx.cli = sluice_stream_new (t_fx.endpoint);
    cr_assert_not_null (t_fx.cli, "sluice_stream_new (%s)", t_fx.endpoint);
    t_fx.streams [t_fx.nstreams++] = t_fx.cli;
}

//  Start the fixture's buffer at `ep`. max_chunk / max_parked: 0 = defaults. with_events:
//  also bind an events socket.
static inline void
t_start_at (const char *ep, size_t capacity, size_t max_chunk, size_t max_parked,
            bool with_events)
{
    char ev [256];
    t_bind_endpoint (ev, sizeof ev, "events");
    t_start_with (&(sluice_buffer_opts_t) {
        .endpoint = ep,
        .events_endpoint = with_events? ev: NULL,
        .capacity = capacity,
        .max_chunk_size = max_chunk,
        .max_parked = max_parked,
    });
}

static inline void
t_start_opts (size_t capacity, size_t max_chunk, size_t max_parked, bool with_events)
{
    char ep [256];
    t_bind_endpoint (ep, sizeof ep, "router");
    t_start_at (ep, capacity, max_chunk, max_parked, with_events);
}

static inline void
t_start (size_t capacity)
{
    t_start_opts (capacity, 0, 0, false);
}

//  An extra client for the main thread, destroyed by the fixture.
static inline sluice_stream_t *
t_stream (void)
{
    cr_assert_lt (t_fx.nstreams, T_MAX_STREAMS);
    sluice_stream_t *s = sluice_stream_new (t_fx.endpoint);
    cr_assert_not_null (s, "sluice_stream_new (%s)", t_fx.endpoint);
    t_fx.streams [t_fx.nstreams++] = s;
    return s;
}

// ---------------------------------------------------------------------------------------------
//  Status

static inline sluice_buffer_status_t
t_status_of (sluice_stream_t *s)
{
    sluice_buffer_status_t st;
    memset (&st, 0xAB, sizeof st);
    sluice_err_t rc = sluice_stream_status (s, &st);
    cr_assert_eq (rc, SLUICE_OK, "status: %s (%s)", sluice_strerror (rc),
                  sluice_stream_error_text (s));
    return st;
}

static inline sluice_buffer_status_t
t_status (void)
{
    return t_status_of (t_fx.cli);
}

//  Ask the actor again and again (each call waits on its reply) until `cond`, written in
//  terms of `st`, holds; fail after T_WAIT_MS. Leaves the last status in st.
#define T_WAIT_STATUS(st, cond) do {                                                         \
    int64_t t_deadline_ = zclock_mono () + T_WAIT_MS;                                        \
    for (;;) {                                                                               \
        st = t_status ();                                                                    \
        if (cond) break;                                                                     \
        cr_assert (zclock_mono () < t_deadline_,                                             \
                   "gave up waiting for %s: queued %zu parked w/r %zu/%zu written %llu "     \
                   "read %llu closed %d", #cond, st.queued, st.parked_writers,                \
                   st.parked_readers, (unsigned long long) st.written,                       \
                   (unsigned long long) st.read, (int) st.closed);                           \
    }                                                                                        \
} while (0)

#define T_WAIT_PARKED_READERS(n) do {                                                        \
    sluice_buffer_status_t t_st_;                                                            \
    T_WAIT_STATUS (t_st_, t_st_.parked_readers == (size_t) (n));                             \
} while (0)

#define T_WAIT_PARKED_WRITERS(n) do {                                                        \
    sluice_buffer_status_t t_st_;                                                            \
    T_WAIT_STATUS (t_st_, t_st_.parked_writers == (size_t) (n));                             \
} while (0)

// ---------------------------------------------------------------------------------------------
//  Chunks

//  Read one chunk on the main thread, bounded (a missing chunk fails instead of hanging).
#define T_READ(s, chunk) do {                                                                \
    sluice_err_t t_rc_ = sluice_stream_read_timeout ((s), &(chunk), T_WAIT_MS);              \
    cr_assert_eq (t_rc_, SLUICE_OK, "read: %s (%s)", sluice_strerror (t_rc_),                \
                  sluice_stream_error_text (s));                                             \
} while (0)

//  Read one chunk and expect exactly `str` (not end of stream, is_final as given).
//  Acknowledge what the stream read: the buffer stops holding it, and its room is free.
#define T_ACK(stream) \
    cr_assert_eq (sluice_stream_ack (stream), SLUICE_OK, "ack: %s", \
                  sluice_stream_error_text (stream))

#define T_EXPECT_CHUNK_F(s, str, final) do {                                                 \
    sluice_chunk_t t_c_;                                                                     \
    T_READ ((s), t_c_);                                                                      \
    cr_assert (!t_c_.is_eos, "expected \"%s\", got end of stream", (str));                   \
    cr_assert_not_null (t_c_.text);                                                          \
    cr_assert (t_c_.size == strlen (str) && memcmp (t_c_.text, (str), t_c_.size) == 0,       \
               "expected \"%s\", got \"%.*s\" (%zu bytes)", (str), (int) t_c_.size,          \
               t_c_.text, t_c_.size);                                                        \
    cr_assert_eq (t_c_.text [t_c_.size], '\0', "chunk text not NUL-terminated");             \
    cr_assert_eq (t_c_.is_final, (final), "\"%s\": is_final %d", (str), (int) t_c_.is_final);\
} while (0)

#define T_EXPECT_CHUNK(s, str) T_EXPECT_CHUNK_F (s, str, false)

//  Assert that `c` is the end-of-stream sentinel.
#define T_ASSERT_EOS(c) do {                                                                 \
    cr_assert ((c).is_eos, "expected end of stream, got \"%.*s\"", (int) (c).size,           \
               (c).text? (c).text: "");                                                      \
    cr_assert ((c).is_final, "end-of-stream sentinel without is_final");                     \
    cr_assert_eq ((c).size, 0, "end-of-stream sentinel with %zu bytes", (c).size);           \
} while (0)

#define T_EXPECT_EOS(s) do {                                                                 \
    sluice_chunk_t t_c_;                                                                     \
    T_READ ((s), t_c_);                                                                      \
    T_ASSERT_EOS (t_c_);                                                                     \
} while (0)

#define T_WRITE(s, str) do {                                                                 \
    sluice_err_t t_rc_ = sluice_stream_write_timeout ((s), (str), strlen (str), false,       \
                                                      T_WAIT_MS);                            \
    cr_assert_eq (t_rc_, SLUICE_OK, "write \"%s\": %s (%s)", (str), sluice_strerror (t_rc_), \
                  sluice_stream_error_text (s));                                             \
} while (0)

//  Read with a zero timeout and expect nothing to be there.
#define T_EXPECT_EMPTY(s) do {                                                               \
    sluice_chunk_t t_c_;                                                                     \
    sluice_err_t t_rc_ = sluice_stream_read_timeout ((s), &t_c_, 0);                         \
    cr_assert_eq (t_rc_, SLUICE_ETIMEOUT, "expected an empty buffer, got %s \"%.*s\"",       \
                  sluice_strerror (t_rc_), t_rc_ == SLUICE_OK? (int) t_c_.size: 0,           \
                  t_rc_ == SLUICE_OK? t_c_.text: "");                                        \
} while (0)

// ---------------------------------------------------------------------------------------------
//  One blocking operation on its own thread, with its own client

typedef enum { T_OP_READ, T_OP_WRITE, T_OP_NEXT_ALL, T_OP_CLOSE } t_opkind_t;

typedef struct t_op_s {
    //  in
    t_opkind_t kind;
    char data [T_TEXT_MAX];        //  T_OP_WRITE: the chunk (NUL-terminated text)
    bool final;                    //  T_OP_WRITE: is_final
    int timeout_ms;                //  SLUICE_FOREVER: the plain blocking call
    sem_t *ready;                  //  posted just before the blocking call (optional)
    pthread_barrier_t *barrier;    //  waited on just before the blocking call (optional)
    sem_t *finished;               //  posted once the call returned and its result is recorded
    sem_t *release;                //  then waited on (bounded) before the client is destroyed,
                                   //  so that nothing the teardown sends can wake other waiters
    //  out
    sluice_err_t rc;
    bool made;                     //  the client was created
    char got [T_TEXT_MAX];         //  T_OP_READ: text; T_OP_NEXT_ALL: all texts joined by '|'
    size_t got_size;
    size_t got_count;              //  T_OP_NEXT_ALL: chunks yielded
    bool got_final, got_eos;
    bool parked;                   //  sluice_stream_was_parked after the call
    atomic_bool done;
} t_op_t;

static inline void *
t_op_thread (void *arg)
{
    t_op_t *op = (t_op_t *) arg;
    sluice_stream_t *s = sluice_stream_new (t_fx.endpoint);
    op->made = s != NULL;
    //  A parked op pings the actor after 5 s of waiting; under valgrind, with hundreds of op
    //  threads taking turns, the answer can take longer than the default 2 s grace
    if (s)
        sluice_stream_set_grace (s, 5000);
    if (op->ready)
        sem_post (op->ready);
    if (op->barrier)
        pthread_barrier_wait (op->barrier);
    if (!s) {
        op->rc = SLUICE_EINTERNAL;
        atomic_store (&op->done, true);
        return NULL;
    }
    sluice_chunk_t c;
    memset (&c, 0, sizeof c);
    switch (op->kind) {
        case T_OP_READ:
            op->rc = op->timeout_ms == SLUICE_FOREVER
                   ? sluice_stream_read (s, &c)
                   : sluice_stream_read_timeout (s, &c, op->timeout_ms);
            if (op->rc == SLUICE_OK) {
                op->got_size = c.size;
                snprintf (op->got, sizeof op->got, "%.*s", (int) c.size, c.text? c.text: "");
                op->got_final = c.is_final;
                op->got_eos = c.is_eos;
            }
            break;
        case T_OP_WRITE:
            op->rc = op->timeout_ms == SLUICE_FOREVER
                   ? sluice_stream_write (s, op->data, strlen (op->data), op->final)
                   : sluice_stream_write_timeout (s, op->data, strlen (op->data), op->final,
                                                  op->timeout_ms);
            break;
        case T_OP_NEXT_ALL: {
            size_t len = 0;
            while (sluice_stream_next (s, &c)) {
                int n = snprintf (op->got + len, sizeof op->got - len, "%s%.*s",
                                  op->got_count? "|": "", (int) c.size,
                                  c.text? c.text: "");
                if (n > 0 && (size_t) n < sizeof op->got - len)
                    len += (size_t) n;
                op->got_count++;
                op->got_final = c.is_final;
            }
            op->got_size = len;
            op->rc = sluice_stream_error (s);
            break;
        }
        case T_OP_CLOSE:
            op->rc = sluice_stream_close (s);
            break;
    }
    op->parked = sluice_stream_was_parked (s);
    atomic_store (&op->done, true);
    if (op->finished)
        sem_post (op->finished);
    if (op->release) {
        struct timespec ts;
        clock_gettime (CLOCK_REALTIME, &ts);
        ts.tv_sec += T_WAIT_MS / 1000;
        sem_timedwait (op->release, &ts);
    }
    sluice_stream_destroy (&s);
    return NULL;
}

//  Any thread function; the fixture joins it. Returns its index for t_join.
static inline size_t
t_spawn (void *(*fn) (void *), void *arg)
{
    cr_assert_lt (t_fx.nthreads, T_MAX_THREADS);
    int rc = pthread_create (&t_fx.threads [t_fx.nthreads], NULL, fn, arg);
    cr_assert_eq (rc, 0, "pthread_create: %s", strerror (rc));
    t_fx.joined [t_fx.nthreads] = false;
    t_fx.ops [t_fx.nthreads] = NULL;
    return t_fx.nthreads++;
}

//  Start `op` on a new thread; the fixture joins it. Returns its index for t_join.
static inline size_t
t_spawn_op (t_op_t *op)
{
    size_t index = t_spawn (t_op_thread, op);
    t_fx.ops [index] = op;
    return index;
}

//  Let every held op thread go on (one post per op on its release semaphore).
static inline void
t_release_ops (void)
{
    for (size_t i = 0; i < t_fx.nthreads; i++)
        if (!t_fx.joined [i] && t_fx.ops [i] && t_fx.ops [i]->release)
            sem_post (t_fx.ops [i]->release);
}

//  Start `op` and wait until the actor reports `parked` writers (write) or readers (read).
static inline size_t
t_park_op (t_op_t *op, size_t parked);

static inline void
t_op_read (t_op_t *op, int timeout_ms)
{
    memset (op, 0, sizeof *op);
    op->kind = T_OP_READ;
    op->timeout_ms = timeout_ms;
    op->rc = SLUICE_EINTERNAL;
}

static inline void
t_op_write (t_op_t *op, const char *text, bool final, int timeout_ms)
{
    memset (op, 0, sizeof *op);
    op->kind = T_OP_WRITE;
    snprintf (op->data, sizeof op->data, "%s", text);
    op->final = final;
    op->timeout_ms = timeout_ms;
    op->rc = SLUICE_EINTERNAL;
}

//  Wait (blocking, no polling) until n threads have posted `sem`; fail after T_WAIT_MS.
static inline void
t_sem_wait_n_what (sem_t *sem, size_t n, const char *what)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    ts.tv_sec += T_WAIT_MS / 1000;
    for (size_t i = 0; i < n; i++)
        cr_assert_eq (sem_timedwait (sem, &ts), 0, "only %zu of %zu threads %s", i, n, what);
}

static inline void
t_sem_wait_n (sem_t *sem, size_t n)
{
    t_sem_wait_n_what (sem, n, "started");
}

static inline void
t_sem_post_n (sem_t *sem, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sem_post (sem);
}

static inline size_t
t_park_op (t_op_t *op, size_t parked)
{
    size_t index = t_spawn_op (op);
    sluice_buffer_status_t st;
    if (op->kind == T_OP_WRITE)
        T_WAIT_STATUS (st, st.parked_writers == parked);
    else
        T_WAIT_STATUS (st, st.parked_readers == parked);
    if (op->timeout_ms == SLUICE_FOREVER)
        cr_assert (!atomic_load (&op->done), "a parked request was answered: %s",
                   sluice_strerror (op->rc));
    return index;
}

// ---------------------------------------------------------------------------------------------
//  Misc

//  Fill `out` (size bytes) with a deterministic pattern that contains NUL bytes.
// ---------------------------------------------------------------------------------------------
//  Raw peers: a DEALER that speaks the protocol by hand, for readers that vanish with
//  chunks they never acknowledged (destroying the socket is the vanishing)

static inline zsock_t *
t_raw_dealer (void)
{
    zsock_t *raw = zsock_new_dealer (t_fx.endpoint);
    cr_assert_not_null (raw);
    zsock_set_rcvtimeo (raw, T_WAIT_MS);
    zsock_set_sndtimeo (raw, T_WAIT_MS);
    return raw;
}

//  Send a READ of up to `count` chunks: acknowledged (ACK flag, naming `ack` as the last reply
//  received) or plain, with a timeout in ms (SLUICE_WAIT_FOREVER: none). Does not wait.
static inline void
t_raw_read_send (zsock_t *raw, uint64_t id, uint32_t count, bool acknowledged, uint64_t ack,
                 uint32_t timeout_ms)
{
    uint8_t header [SLUICE_HEADER_SIZE], body [8];
    sluice_header_encode (&(sluice_header_t) {
        .version = SLUICE_PROTOCOL_VERSION, .command = SLUICE_CMD_READ,
        .flags = acknowledged ? SLUICE_FLAG_ACK : 0, .timeout_ms = timeout_ms,
        .request_id = id, .count = count }, header);
    for (int index = 7; index >= 0; index--, ack >>= 8)
        body [index] = (uint8_t) ack;
    cr_assert_eq (zmq_send (zsock_resolve (raw), header, sizeof header,
                            acknowledged ? ZMQ_SNDMORE : 0), (int) sizeof header);
    if (acknowledged)
        cr_assert_eq (zmq_send (zsock_resolve (raw), body, 8, 0), 8);
}

//  Wait for the reply to READ `id` (liveness probes skipped); returns its status. Its chunk
//  count goes to *chunks and their texts to texts [0 .. max-1] (an error reply: its text).
static inline int
t_raw_reply (zsock_t *raw, uint64_t id, size_t *chunks, char (*texts) [T_TEXT_MAX], size_t max)
{
    while (true) {
        zmsg_t *reply = zmsg_recv (raw);
        cr_assert_not_null (reply, "no reply to READ %" PRIu64, id);
        sluice_header_t h;
        zframe_t *frame = zmsg_first (reply);
        cr_assert_eq (sluice_header_decode (zframe_data (frame), zframe_size (frame), &h),
                      SLUICE_OK);
        if (h.request_id == SLUICE_PROBE_ID) {
            zmsg_destroy (&reply);
            continue;
        }
        cr_assert_eq (h.request_id, id, "reply to another request");
        size_t count = 0;
        while ((frame = zmsg_next (reply))) {
            if (texts && count < max)
                snprintf (texts [count], T_TEXT_MAX, "%.*s", (int) zframe_size (frame),
                          (const char *) zframe_data (frame));
            count++;
        }
        zmsg_destroy (&reply);
        if (chunks)
            *chunks = count;
        return h.status;
    }
}

//  An acknowledged READ of up to `count` chunks naming `ack` as the last reply received; waits
//  for its reply and returns how many chunks it carried. The chunks' texts go to
//  texts [0 .. max-1] when texts is not NULL.
static inline size_t
t_raw_read (zsock_t *raw, uint64_t id, uint32_t count, uint64_t ack,
            char (*texts) [T_TEXT_MAX], size_t max)
{
    t_raw_read_send (raw, id, count, true, ack, SLUICE_WAIT_FOREVER);
    size_t chunks = 0;
    int status = t_raw_reply (raw, id, &chunks, texts, max);
    cr_assert_eq (status, SLUICE_OK, "READ failed with status %d", status);
    return chunks;
}

static inline void
t_pattern (unsigned char *out, size_t size, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        out [i] = (i % 7 == 3)? 0: (unsigned char) x;
    }
}

#endif
