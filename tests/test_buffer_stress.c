/*  test_buffer_stress.c - many writers x many readers through one buffer.

    Each writer sends "w<id>:<seq>" for seq = 0..n-1, each with its own client on its own
    thread. Readers (half with sluice_stream_read, half with sluice_stream_next) read until the
    end of stream and log what they got. Once every writer is done the main thread closes the
    buffer. Then, whatever the interleaving:
      - every chunk arrived exactly once (nothing lost, nothing duplicated, nothing invented);
      - each reader saw each writer's chunks in increasing sequence (the queue is FIFO and a
        writer's writes are sequential);
      - the actor's counters agree: written == read == total, nothing queued or parked.
    No timing is asserted: the suite timeout is only a liveness bound.
*/
#include "common.h"

#define S_MAX_WRITERS 32

TestSuite (buffer_stress, .init = t_fx_init, .fini = t_fx_fini, .timeout = 90);

typedef struct {
    int id;
    int n;                     //  chunks to write
    int timeout_ms;            //  SLUICE_FOREVER, or a short deadline retried on ETIMEOUT
    sluice_err_t rc;
    int written;
    long timeouts;
} s_writer_t;

typedef struct {
    int id;
    bool use_next;             //  iterate with sluice_stream_next instead of read
    int timeout_ms;            //  SLUICE_FOREVER, or a short deadline retried on ETIMEOUT
    uint32_t *log;             //  (writer << 20) | seq, in arrival order
    size_t nlog, caplog;
    sluice_err_t rc;
    int bad;                   //  chunks that do not parse, or are out of range
    int order_violations;
    char first_problem [160];
    int last [S_MAX_WRITERS];
    bool saw_eos;
    long timeouts;
} s_reader_t;

static void *
s_writer (void *arg)
{
    s_writer_t *w = (s_writer_t *) arg;
    w->rc = SLUICE_OK;
    sluice_stream_t *s = sluice_stream_new (t_fx.endpoint);
    if (!s) {
        w->rc = SLUICE_EINTERNAL;
        return NULL;
    }
    for (int seq = 0; seq < w->n; seq++) {
        char text [32];
        int len = snprintf (text, sizeof text, "w%d:%d", w->id, seq);
        sluice_err_t rc;
        if (w->timeout_ms == SLUICE_FOREVER)
            rc = sluice_stream_write (s, text, (size_t) len, false);
        else
            while ((rc = sluice_stream_write_timeout (s, text, (size_t) len, false,
                                                      w->timeout_ms)) == SLUICE_ETIMEOUT)
                w->timeouts++;
        if (rc != SLUICE_OK) {
            w->rc = rc;
            break;
        }
        w->written++;
    }
    sluice_stream_destroy (&s);
    return NULL;
}

static void
s_reader_take (s_reader_t *r, int nwriters, int per_writer, const char *text, size_t size)
{
    char buf [32];
    int wid = -1, seq = -1, used = 0;
    bool ok = text != NULL && size < sizeof buf;
    if (ok) {
        memcpy (buf, text, size);
        buf [size] = '\0';
        ok = sscanf (buf, "w%d:%d%n", &wid, &seq, &used) == 2 && (size_t) used == size
          && wid >= 0 && wid < nwriters && seq >= 0 && seq < per_writer;
    }
    if (!ok) {
        if (r->bad++ == 0)
            snprintf (r->first_problem, sizeof r->first_problem,
                      "reader %d: unexpected chunk \"%.*s\" (%zu bytes)", r->id,
                      (int) (size < 40? size: 40), text? text: "", size);
        return;
    }
    if (seq <= r->last [wid] && r->order_violations++ == 0 && r->bad == 0)
        snprintf (r->first_problem, sizeof r->first_problem,
                  "reader %d: writer %d's seq %d came after seq %d", r->id, wid, seq,
                  r->last [wid]);
    r->last [wid] = seq;
    if (r->nlog < r->caplog)
        r->log [r->nlog] = ((uint32_t) wid << 20) | (uint32_t) seq;
    r->nlog++;
}

typedef struct {
    s_reader_t *r;
    int nwriters, per_writer;
} s_reader_arg_t;

static void *
s_reader (void *arg)
{
    s_reader_arg_t *a = (s_reader_arg_t *) arg;
    s_reader_t *r = a->r;
    r->rc = SLUICE_OK;
    sluice_stream_t *s = sluice_stream_new (t_fx.endpoint);
    if (!s) {
        r->rc = SLUICE_EINTERNAL;
        return NULL;
    }
    sluice_chunk_t c;
    if (r->use_next) {
        while (sluice_stream_next (s, &c))
            s_reader_take (r, a->nwriters, a->per_writer, c.text, c.size);
        r->rc = sluice_stream_error (s);
        r->saw_eos = r->rc == SLUICE_OK;
    }
    else
    for (;;) {
        sluice_err_t rc;
        if (r->timeout_ms == SLUICE_FOREVER)
            rc = sluice_stream_read (s, &c);
        else
            while ((rc = sluice_stream_read_timeout (s, &c, r->timeout_ms)) == SLUICE_ETIMEOUT)
                r->timeouts++;
        if (rc != SLUICE_OK) {
            r->rc = rc;
            break;
        }
        if (c.is_eos) {
            r->saw_eos = true;
            if (c.size != 0 || !c.is_final)
                r->bad++;
            break;
        }
        s_reader_take (r, a->nwriters, a->per_writer, c.text, c.size);
    }
    sluice_stream_destroy (&s);
    return NULL;
}

typedef struct {
    size_t capacity;
    int writers, readers, per_writer;
    int write_timeout_ms, read_timeout_ms;   //  SLUICE_FOREVER or a retried deadline
    bool tcp;
} s_plan_t;

static void
s_run (s_plan_t plan)
{
    cr_assert_leq (plan.writers, S_MAX_WRITERS);
    cr_assert_lt (plan.per_writer, 1 << 20);
    t_fx.tcp = plan.tcp;
    t_start (plan.capacity);
    size_t total = (size_t) plan.writers * (size_t) plan.per_writer;

    //  Static so that threads left behind by a failed assertion never see a dead stack.
    static s_writer_t writers [S_MAX_WRITERS];
    static s_reader_t readers [S_MAX_WRITERS];
    static s_reader_arg_t rargs [S_MAX_WRITERS];
    static size_t windex [S_MAX_WRITERS];
    memset (writers, 0, sizeof writers);
    memset (readers, 0, sizeof readers);
    for (int i = 0; i < plan.readers; i++) {
        readers [i].id = i;
        readers [i].use_next = (i % 2) == 1 && plan.read_timeout_ms == SLUICE_FOREVER;
        readers [i].timeout_ms = plan.read_timeout_ms;
        readers [i].caplog = total;
        readers [i].log = calloc (total, sizeof (uint32_t));
        cr_assert_not_null (readers [i].log);
        for (int w = 0; w < S_MAX_WRITERS; w++)
            readers [i].last [w] = -1;
        rargs [i] = (s_reader_arg_t) { &readers [i], plan.writers, plan.per_writer };
        t_spawn (s_reader, &rargs [i]);
    }
    for (int i = 0; i < plan.writers; i++) {
        writers [i] = (s_writer_t) { .id = i, .n = plan.per_writer,
                                     .timeout_ms = plan.write_timeout_ms };
        windex [i] = t_spawn (s_writer, &writers [i]);
    }
    for (int i = 0; i < plan.writers; i++)
        t_join (windex [i]);
    //  every writer has its acknowledgement: all chunks are in (or through) the buffer
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.written, total, "accepted %llu of %zu", (unsigned long long) st.written,
                  total);
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    t_join_all ();

    for (int i = 0; i < plan.writers; i++) {
        cr_expect_eq (writers [i].rc, SLUICE_OK, "writer %d: %s after %d chunks", i,
                      sluice_strerror (writers [i].rc), writers [i].written);
        cr_expect_eq (writers [i].written, plan.per_writer);
    }
    long wto = 0, rto = 0;
    for (int i = 0; i < plan.writers; i++)
        wto += writers [i].timeouts;
    for (int i = 0; i < plan.readers; i++)
        rto += readers [i].timeouts;
    cr_log_info ("%d writers x %d readers x %d chunks, capacity %zu%s: %ld write and %ld read "
                 "timeouts retried", plan.writers, plan.readers, plan.per_writer, plan.capacity,
                 plan.tcp? " (tcp)": "", wto, rto);
    uint8_t *seen = calloc (total, 1);
    cr_assert_not_null (seen);
    size_t got = 0, dup = 0, bad = 0, order = 0;
    char problem [200] = "";
    for (int i = 0; i < plan.readers; i++) {
        s_reader_t *r = &readers [i];
        cr_expect_eq (r->rc, SLUICE_OK, "reader %d: %s", i, sluice_strerror (r->rc));
        cr_expect (r->saw_eos, "reader %d did not end at end of stream", i);
        got += r->nlog;
        bad += (size_t) r->bad;
        order += (size_t) r->order_violations;
        if (!problem [0] && r->first_problem [0])
            snprintf (problem, sizeof problem, "%s", r->first_problem);
        for (size_t k = 0; k < r->nlog && k < r->caplog; k++) {
            size_t wid = r->log [k] >> 20, seq = r->log [k] & 0xFFFFF;
            size_t slot = wid * (size_t) plan.per_writer + seq;
            if (seen [slot]++ && !dup++ && !problem [0])
                snprintf (problem, sizeof problem, "w%zu:%zu delivered twice", wid, seq);
        }
    }
    size_t missing = 0, first_missing = total;
    for (size_t k = 0; k < total; k++)
        if (!seen [k] && missing++ == 0)
            first_missing = k;
    free (seen);
    for (int i = 0; i < plan.readers; i++) {
        free (readers [i].log);
        readers [i].log = NULL;
    }
    cr_expect_eq (bad, 0, "%zu malformed chunks: %s", bad, problem);
    cr_expect_eq (order, 0, "%zu per-writer order violations: %s", order, problem);
    cr_expect_eq (dup, 0, "%zu duplicates: %s", dup, problem);
    cr_expect_eq (missing, 0, "%zu chunks lost, first w%zu:%zu", missing,
                  first_missing / (size_t) plan.per_writer,
                  first_missing % (size_t) plan.per_writer);
    cr_expect_eq (got, total, "readers got %zu chunks, %zu were written", got, total);

    st = t_status ();
    cr_expect_eq (st.written, total);
    cr_expect_eq (st.read, total);
    cr_expect_eq (st.queued, 0);
    cr_expect_eq (st.parked_writers, 0);
    cr_expect_eq (st.parked_readers, 0);
    cr_expect_eq (st.closed, true);
}

#define S_PLAN(cap) (s_plan_t) { .capacity = (cap), .writers = 4, .readers = 4,              \
                                 .per_writer = 2000, .write_timeout_ms = SLUICE_FOREVER,      \
                                 .read_timeout_ms = SLUICE_FOREVER }

T_TEST (buffer_stress, four_writers_four_readers_capacity_1)
{
    s_run (S_PLAN (1));
}

T_TEST (buffer_stress, four_writers_four_readers_capacity_3)
{
    s_run (S_PLAN (3));
}

T_TEST (buffer_stress, four_writers_four_readers_capacity_64)
{
    s_run (S_PLAN (64));
}

T_TEST (buffer_stress, more_readers_than_writers_capacity_1)
{
    s_plan_t plan = S_PLAN (1);
    plan.writers = 2;
    plan.readers = 8;
    plan.per_writer = 1500;
    s_run (plan);
}

T_TEST (buffer_stress, more_writers_than_readers_capacity_3)
{
    s_plan_t plan = S_PLAN (3);
    plan.writers = 12;
    plan.readers = 2;
    plan.per_writer = 400;
    s_run (plan);
}

//  Short deadlines, retried: many requests expire (or, with 0, are refused at once). A write
//  that timed out must never be enqueued later (its retry would then be a duplicate), and a
//  read that timed out must never swallow a chunk. More writers than readers keep the buffer
//  full, so write deadlines do pass; the log line shows how many were retried.
T_TEST (buffer_stress, short_timeouts_retried_capacity_1)
{
    s_plan_t plan = S_PLAN (1);
    plan.writers = 8;
    plan.readers = 2;
    plan.per_writer = 300;
    plan.write_timeout_ms = 1;
    plan.read_timeout_ms = 1;
    s_run (plan);
}

T_TEST (buffer_stress, short_timeouts_retried_capacity_3)
{
    s_plan_t plan = S_PLAN (3);
    plan.writers = 8;
    plan.readers = 2;
    plan.per_writer = 300;
    plan.write_timeout_ms = 2;
    plan.read_timeout_ms = 1;
    s_run (plan);
}

T_TEST (buffer_stress, zero_timeouts_retried_capacity_1)
{
    s_plan_t plan = S_PLAN (1);
    plan.writers = 4;
    plan.readers = 2;
    plan.per_writer = 400;
    plan.write_timeout_ms = 0;
    plan.read_timeout_ms = 0;
    s_run (plan);
}

T_TEST (buffer_stress, zero_timeouts_retried_capacity_64)
{
    s_plan_t plan = S_PLAN (64);
    plan.per_writer = 800;
    plan.write_timeout_ms = 0;
    plan.read_timeout_ms = 0;
    s_run (plan);
}

T_TEST (buffer_stress, over_tcp_capacity_3)
{
    s_plan_t plan = S_PLAN (3);
    plan.per_writer = 800;
    plan.tcp = true;
    s_run (plan);
}

// ---------------------------------------------------------------------------------------------
//  close wakes everyone, with many waiters

T_TEST (buffer_stress, close_wakes_200_parked_readers)
{
    enum { N = 200 };
    t_start (8);
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
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    t_sem_wait_n_what (&finished, N, "were woken by close");
    t_sem_post_n (&release, N);
    t_join_all ();
    int eos = 0;
    for (int i = 0; i < N; i++)
        eos += r [i].rc == SLUICE_OK && r [i].got_eos && r [i].got_final && r [i].got_size == 0;
    cr_expect_eq (eos, N, "only %d of %d parked readers got end of stream", eos, N);
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.parked_readers, 0);
    sem_destroy (&ready);
    sem_destroy (&finished);
    sem_destroy (&release);
}

T_TEST (buffer_stress, close_wakes_200_parked_writers)
{
    enum { N = 200 };
    t_start (3);
    T_WRITE (t_fx.cli, "q0");
    T_WRITE (t_fx.cli, "q1");
    T_WRITE (t_fx.cli, "q2");
    static t_op_t w [N];
    static sem_t ready, finished, release;
    sem_init (&ready, 0, 0);
    sem_init (&finished, 0, 0);
    sem_init (&release, 0, 0);
    for (int i = 0; i < N; i++) {
        char text [32];
        snprintf (text, sizeof text, "p%d", i);
        t_op_write (&w [i], text, false, SLUICE_FOREVER);
        w [i].ready = &ready;
        w [i].finished = &finished;
        w [i].release = &release;
        t_spawn_op (&w [i]);
    }
    t_sem_wait_n (&ready, N);
    T_WAIT_PARKED_WRITERS (N);
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    t_sem_wait_n_what (&finished, N, "were woken by close");
    t_sem_post_n (&release, N);
    t_join_all ();
    int closed = 0;
    for (int i = 0; i < N; i++)
        closed += w [i].rc == SLUICE_ECLOSED;
    cr_expect_eq (closed, N, "only %d of %d parked writers got SLUICE_ECLOSED", closed, N);
    T_EXPECT_CHUNK (t_fx.cli, "q0");
    T_EXPECT_CHUNK (t_fx.cli, "q1");
    T_EXPECT_CHUNK (t_fx.cli, "q2");
    T_EXPECT_EOS (t_fx.cli);
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.parked_writers, 0);
    cr_expect_eq (st.written, 3);
    sem_destroy (&ready);
    sem_destroy (&finished);
    sem_destroy (&release);
}

//  Writers and readers all parked FIFO at scale: 100 writers park in a known order on a full
//  buffer of capacity 1; one reader then drains them and must see them in park order.
T_TEST (buffer_stress, fifo_among_100_parked_writers)
{
    enum { N = 100 };
    t_start (1);
    T_WRITE (t_fx.cli, "x");
    static t_op_t w [N];
    for (int i = 0; i < N; i++) {
        char text [32];
        snprintf (text, sizeof text, "p%d", i);
        t_op_write (&w [i], text, false, SLUICE_FOREVER);
        t_park_op (&w [i], (size_t) i + 1);
    }
    T_EXPECT_CHUNK (t_fx.cli, "x");
    for (int i = 0; i < N; i++) {
        char text [32];
        snprintf (text, sizeof text, "p%d", i);
        T_EXPECT_CHUNK (t_fx.cli, text);
    }
    t_join_all ();
    for (int i = 0; i < N; i++)
        cr_expect_eq (w [i].rc, SLUICE_OK);
}

// =============================================================================================
//  Acknowledged delivery under vanishing readers and a close at a random moment (issue 14).
//  Writers write until the close refuses them; clean readers read until the end of stream;
//  vandals take random batches with acknowledged READs and vanish without acknowledging. The
//  main thread samples STATUS throughout and closes the buffer once the clean readers have a
//  random number of chunks. Then, whatever the interleaving:
//    - unacknowledged chunks never exceeded the capacity, queued + unacknowledged never twice
//      it (a full queue plus the chunks of vanished readers put back at its head);
//    - every chunk whose WRITE was answered OK reached the clean readers exactly once, and
//      no other chunk did;
//    - no clean reader received a chunk after any clean reader received the end of stream
//      (a chunk is received before its reader's next READ acknowledges it, and the end of
//      stream is given only once nothing is unacknowledged: so this holds in real time).

#define S_VANDAL_ROUNDS 4

static atomic_long s_tick;               //  orders receipts across clean readers
static atomic_long s_clean_received;     //  chunks the clean readers have so far

typedef struct {
    s_reader_t reader;
    long last_chunk_tick;                //  tick of its last chunk (-1: none)
    long eos_tick;                       //  tick of its end of stream (-1: none)
    atomic_bool done;
} s_clean_t;

typedef struct {
    unsigned seed;
    int rounds, vanished;
    char problem [160];
    atomic_bool done;
} s_vandal_t;

static void *
s_clean_reader (void *arg)
{
    s_clean_t *clean = (s_clean_t *) arg;
    s_reader_t *r = &clean->reader;
    sluice_stream_t *s = sluice_stream_new (t_fx.endpoint);
    r->rc = s ? SLUICE_OK : SLUICE_EINTERNAL;
    while (s) {
        sluice_chunk_t c;
        sluice_err_t rc = sluice_stream_read (s, &c);
        long tick = atomic_fetch_add (&s_tick, 1);
        if (rc != SLUICE_OK) {
            r->rc = rc;
            break;
        }
        if (c.is_eos) {
            r->saw_eos = true;
            clean->eos_tick = tick;
            break;
        }
        clean->last_chunk_tick = tick;
        s_reader_take (r, S_MAX_WRITERS, 1 << 19, c.text, c.size);
        atomic_fetch_add (&s_clean_received, 1);
    }
    sluice_stream_destroy (&s);
    atomic_store (&clean->done, true);
    return NULL;
}

//  Raw acknowledged READs of 1..8 chunks, each from a new DEALER destroyed right after its
//  reply: the chunks were handed out and never acknowledged.
static void *
s_vandal (void *arg)
{
    s_vandal_t *vandal = (s_vandal_t *) arg;
    for (int round = 0; round < vandal->rounds; round++) {
        zsock_t *raw = zsock_new_dealer (t_fx.endpoint);
        if (!raw)
            break;
        zsock_set_rcvtimeo (raw, T_WAIT_MS);
        uint8_t header [SLUICE_HEADER_SIZE], ack [8] = { 0 };
        uint32_t count = 1 + (uint32_t) (rand_r (&vandal->seed) % 8);
        sluice_header_encode (&(sluice_header_t) {
            .version = SLUICE_PROTOCOL_VERSION, .command = SLUICE_CMD_READ,
            .flags = SLUICE_FLAG_ACK, .timeout_ms = SLUICE_WAIT_FOREVER, .request_id = 7,
            .count = count }, header);
        bool sent = zmq_send (zsock_resolve (raw), header, sizeof header, ZMQ_SNDMORE) != -1
                 && zmq_send (zsock_resolve (raw), ack, sizeof ack, 0) != -1;
        bool eos = false;
        while (sent) {
            zmsg_t *reply = zmsg_recv (raw);
            if (!reply) {
                snprintf (vandal->problem, sizeof vandal->problem, "no READ reply in round %d",
                          round);
                break;
            }
            sluice_header_t h;
            zframe_t *frame = zmsg_first (reply);
            sluice_header_decode (zframe_data (frame), zframe_size (frame), &h);
            zmsg_destroy (&reply);
            if (h.request_id == SLUICE_PROBE_ID)
                continue;
            eos = h.flags & SLUICE_FLAG_EOS;
            break;
        }
        zsock_destroy (&raw);
        if (eos)
            break;
        vandal->vanished++;
    }
    atomic_store (&vandal->done, true);
    return NULL;
}

static void
s_run_vanishing (bool tcp)
{
    enum { WRITERS = 3, PER_WRITER = 400, READERS = 2 };
    unsigned seed = (unsigned) zclock_usecs ();
    cr_log_info ("seed %u", seed);
    size_t capacities [] = { 1, 3, 8 };
    size_t capacity = capacities [rand_r (&seed) % 3];
    t_fx.tcp = tcp;
    t_start (capacity);
    atomic_store (&s_tick, 0);
    atomic_store (&s_clean_received, 0);
    static s_writer_t writers [WRITERS];
    static s_clean_t cleans [READERS];
    static s_reader_arg_t unused;
    static s_vandal_t vandal;
    (void) unused;
    memset (writers, 0, sizeof writers);
    memset (cleans, 0, sizeof cleans);
    memset (&vandal, 0, sizeof vandal);
    for (int i = 0; i < READERS; i++) {
        s_reader_t *r = &cleans [i].reader;
        r->id = i;
        r->caplog = WRITERS * PER_WRITER;
        r->log = calloc (r->caplog, sizeof (uint32_t));
        cr_assert_not_null (r->log);
        for (int w = 0; w < S_MAX_WRITERS; w++)
            r->last [w] = -1;
        cleans [i].last_chunk_tick = cleans [i].eos_tick = -1;
        t_spawn (s_clean_reader, &cleans [i]);
    }
    for (int i = 0; i < WRITERS; i++) {
        writers [i] = (s_writer_t) { .id = i, .n = PER_WRITER, .timeout_ms = SLUICE_FOREVER };
        t_spawn (s_writer, &writers [i]);
    }
    vandal.seed = seed;
    vandal.rounds = S_VANDAL_ROUNDS;
    t_spawn (s_vandal, &vandal);

    //  Sample the bound until the clean readers are done; close at the chosen moment
    long close_at = (long) (rand_r (&seed) % (WRITERS * PER_WRITER / 2));
    bool closed = false;
    size_t samples = 0, worst = 0;
    int64_t deadline = zclock_mono () + 60000;
    while (!(atomic_load (&cleans [0].done) && atomic_load (&cleans [1].done))) {
        sluice_buffer_status_t st = t_status ();
        samples++;
        if (st.queued + st.unacked > worst)
            worst = st.queued + st.unacked;
        cr_assert_leq (st.unacked, capacity, "unacked %zu over the capacity %zu (seed %u)",
                       st.unacked, capacity, seed);
        cr_assert_leq (st.queued + st.unacked, 2 * capacity, "queued %zu + unacked %zu over "
                       "twice the capacity %zu (seed %u)", st.queued, st.unacked, capacity, seed);
        if (!closed && atomic_load (&s_clean_received) >= close_at) {
            cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
            closed = true;
        }
        cr_assert (zclock_mono () < deadline, "clean readers did not finish (seed %u)", seed);
    }
    cr_assert (closed, "the readers ended before the close (seed %u)", seed);
    t_join_all ();
    cr_log_info ("capacity %zu, closed after %ld chunks, %d readers vanished, %zu samples, "
                 "most held %zu", capacity, close_at, vandal.vanished, samples, worst);
    cr_expect_str_empty (vandal.problem, "%s", vandal.problem);

    //  Exactly the acknowledged writes reached the clean readers, once each
    size_t total = 0;
    for (int i = 0; i < WRITERS; i++) {
        cr_expect (writers [i].rc == SLUICE_OK || writers [i].rc == SLUICE_ECLOSED,
                   "writer %d: %s", i, sluice_strerror (writers [i].rc));
        total += (size_t) writers [i].written;
    }
    static uint8_t seen [WRITERS][PER_WRITER];
    memset (seen, 0, sizeof seen);
    size_t got = 0, dup = 0, unwritten = 0;
    long last_chunk = -1, first_eos = LONG_MAX;
    for (int i = 0; i < READERS; i++) {
        s_reader_t *r = &cleans [i].reader;
        cr_expect_eq (r->rc, SLUICE_OK, "reader %d: %s", i, sluice_strerror (r->rc));
        cr_expect (r->saw_eos, "reader %d did not end at end of stream", i);
        cr_expect_eq (r->bad, 0, "%s", r->first_problem);
        for (size_t k = 0; k < r->nlog && k < r->caplog; k++) {
            size_t wid = r->log [k] >> 20, seq = r->log [k] & 0xFFFFF;
            if (wid >= WRITERS || (int) seq >= writers [wid].written)
                unwritten++;
            else
            if (seen [wid][seq]++)
                dup++;
        }
        got += r->nlog;
        if (cleans [i].last_chunk_tick > last_chunk)
            last_chunk = cleans [i].last_chunk_tick;
        if (cleans [i].eos_tick >= 0 && cleans [i].eos_tick < first_eos)
            first_eos = cleans [i].eos_tick;
        free (r->log);
        r->log = NULL;
    }
    size_t missing = 0;
    for (int w = 0; w < WRITERS; w++)
        for (int seq = 0; seq < writers [w].written; seq++)
            missing += seen [w][seq] == 0;
    cr_expect_eq (unwritten, 0, "%zu chunks nobody wrote successfully (seed %u)", unwritten, seed);
    cr_expect_eq (dup, 0, "%zu chunks reached the clean readers twice (seed %u)", dup, seed);
    cr_expect_eq (missing, 0, "%zu acknowledged writes never reached a clean reader (seed %u)",
                  missing, seed);
    cr_expect_eq (got, total);
    cr_expect_lt (last_chunk, first_eos, "a chunk arrived after an end of stream (seed %u)", seed);
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.queued, 0);
    cr_expect_eq (st.unacked, 0);
    cr_expect_eq (sluice_buffer_wait (t_fx.buf, 0), SLUICE_OK, "not drained at the end");
}

T_TEST (buffer_stress, vanishing_readers_and_a_close_at_a_random_moment)
{
    s_run_vanishing (false);
}

T_TEST (buffer_stress, vanishing_readers_and_a_close_at_a_random_moment_over_tcp)
{
    s_run_vanishing (true);
}
