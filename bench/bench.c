/*  bench.c - sluice measured against the limits it runs on, in one run (bench/README.md).

    Every row measures its baselines and then sluice back to back, three times, and reports
    the medians; the ratio is sluice / the row's first baseline. Pipelined rows first try a
    small grid of window / write batch / read batch settings and measure the best. Throughput
    runs are bounded by an item count and a time limit; memory rows and the cross-process rows
    run in child processes (this program itself with --child, bin/sluice, python3,
    redis-server).
    Only the public API (include/sluice*.h) is used, so protocol changes do not break it.

        bench [--quick] [--json PATH] [--only PREFIX] [--reps N] [--tmax SECONDS] [--items N]
              [--window W --wbatch B --rbatch R] [--sluice-only | --baselines-only]
        bench --instr [--quick] [--json PATH]      (callgrind: instructions per item)
*/
#define _GNU_SOURCE
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sluice.h"

#define CHUNK        64          //  bytes per item everywhere
#define REPS_MAX     9
#define BASES_MAX    4
#define PARK_THREADS 4           //  threads holding the parked DEALERs
#define WAIT_LIMIT   20.0        //  seconds: liveness bound on anything waited for

// ---------------------------------------------------------------------------------------------
//  Settings, clock, helpers

static struct {
    bool quick;
    bool no_baselines;           //  --sluice-only: for profiling sluice alone
    bool no_sluice;              //  --baselines-only
    int reps;
    double tmax;                 //  time bound per throughput measurement, seconds
    long sync_items, pipe_items, raw_items;
    int parked;                  //  parked waiters for the close / model rows
    const char *json;
    const char *only;
    size_t window, wbatch, rbatch; //  --window/--wbatch/--rbatch: no grid, these settings
    char self_exe [4096];
} g;

extern char **environ;

static atomic_int g_serial;
static long g_items;             //  items the last throughput run moved (for CPU per item)
static atomic_bool g_no_window;  //  set when the pipelined API is missing or refuses
static atomic_bool g_no_batch;
static const char *g_skip;       //  set by a measurement that could not run: why
static double g_cpu_child = NAN; //  CPU µs a child measured itself (Python), for CPU per item

static double
now_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

static void
s_inproc (char *out, size_t size, const char *what)
{
    snprintf (out, size, "inproc://bench-%s-%d", what, atomic_fetch_add (&g_serial, 1));
}

//  A request header (the same wire bytes for the raw baselines as for sluice's own clients).
static void
s_header (uint8_t *out, uint8_t command, uint64_t id, uint32_t count)
{
    sluice_header_encode (&(sluice_header_t) {
        .version = SLUICE_PROTOCOL_VERSION, .command = command,
        .timeout_ms = SLUICE_WAIT_FOREVER, .request_id = id, .count = count }, out);
}

//  ROUTER/PULL bound at inproc or tcp://127.0.0.1:*; the connect endpoint goes to out.
static zsock_t *
s_bound (int type, const char *transport, char *out, size_t size)
{
    zsock_t *sock = zsock_new (type);
    if (!sock)
        return NULL;
    if (streq (transport, "tcp")) {
        int port = zsock_bind (sock, "tcp://127.0.0.1:*");
        if (port == -1) {
            zsock_destroy (&sock);
            return NULL;
        }
        snprintf (out, size, "tcp://127.0.0.1:%d", port);
    }
    else {
        s_inproc (out, size, "raw");
        if (zsock_bind (sock, "%s", out) == -1) {
            zsock_destroy (&sock);
            return NULL;
        }
    }
    return sock;
}

static sluice_err_t
s_set_window (sluice_stream_t *stream, size_t window)
{
    if (window <= 1)
        return SLUICE_OK;
    sluice_err_t rc = sluice_stream_set_window (stream, window);
    if (rc != SLUICE_OK)
        atomic_store (&g_no_window, true);
    return rc;
}

static sluice_err_t
s_set_batch (sluice_stream_t *stream, size_t batch)
{
    if (batch <= 1)
        return SLUICE_OK;
    sluice_err_t rc = sluice_stream_set_batch (stream, batch);
    if (rc != SLUICE_OK)
        atomic_store (&g_no_batch, true);
    return rc;
}

static sluice_err_t
s_flush (sluice_stream_t *stream)
{
    return sluice_stream_flush (stream);
}

static long
s_status_kb (const char *key)
{
    FILE *file = fopen ("/proc/self/status", "r");
    if (!file)
        return -1;
    char line [256];
    long value = -1;
    size_t len = strlen (key);
    while (fgets (line, sizeof line, file))
        if (strncmp (line, key, len) == 0) {
            value = atol (line + len);
            break;
        }
    fclose (file);
    return value;
}

// ---------------------------------------------------------------------------------------------
//  What one measurement takes

typedef struct {
    const char *transport;       //  "inproc" or "tcp"
    size_t capacity;
    size_t window;               //  writes in flight (1 = synchronous)
    size_t batch;                //  chunks per READ (1 = one at a time)
    int writers, readers;
    long items;                  //  count bound (the time bound is g.tmax)
    const char *child;           //  memory rows: the child mode to run
    size_t wbatch;               //  chunks per WRITE while writes are in flight (0, 1: one)
} spec_t;

typedef double (*measure_fn) (const spec_t *spec);

// ---------------------------------------------------------------------------------------------
//  Baseline: raw PUSH->PULL (inproc or tcp), default HWM

typedef struct {
    zsock_t *push;
    long items;
    pthread_barrier_t *gate;
} pp_arg_t;

//  Sends up to `items` chunks within g.tmax, then the end marker (an empty message); the count.
static long
s_push_loop (void *push, long items)
{
    char data [CHUNK] = { 0 };
    double deadline = now_s () + g.tmax;
    long index = 0;
    for (; index < items; index++) {
        if ((index & 1023) == 0 && now_s () > deadline)
            break;
        if (zmq_send (push, data, CHUNK, 0) == -1)
            break;
    }
    zmq_send (push, "", 0, 0);
    return index;
}

//  Receives until the end marker; the count, and the time of the last chunk in *last.
static long
s_pull_loop (void *pull, double *last)
{
    char data [CHUNK];
    long count = 0;
    while (zmq_recv (pull, data, sizeof data, 0) > 0) {
        count++;
        *last = now_s ();
    }
    return count;
}

static void *
s_pusher (void *varg)
{
    pp_arg_t *arg = (pp_arg_t *) varg;
    pthread_barrier_wait (arg->gate);
    s_push_loop (zsock_resolve (arg->push), arg->items);
    return NULL;
}

static double
m_raw_pushpull (const spec_t *spec)
{
    char endpoint [128];
    zsock_t *pull = s_bound (ZMQ_PULL, spec->transport, endpoint, sizeof endpoint);
    zsock_t *push = pull ? zsock_new_push (endpoint) : NULL;
    if (!pull || !push) {
        zsock_destroy (&pull);
        zsock_destroy (&push);
        return NAN;
    }
    //  One warm-up message: the connection is up before the clock starts
    char data [CHUNK] = { 0 };
    zmq_send (zsock_resolve (push), data, CHUNK, 0);
    zmq_recv (zsock_resolve (pull), data, CHUNK, 0);
    pthread_barrier_t gate;
    pthread_barrier_init (&gate, NULL, 2);
    pp_arg_t arg = { push, spec->items, &gate };
    pthread_t thread;
    pthread_create (&thread, NULL, s_pusher, &arg);
    pthread_barrier_wait (&gate);
    double start = now_s (), last = start;
    long count = s_pull_loop (zsock_resolve (pull), &last);
    double elapsed = last - start;
    pthread_join (thread, NULL);
    pthread_barrier_destroy (&gate);
    zsock_destroy (&push);
    zsock_destroy (&pull);
    g_items = count;
    return count / elapsed;
}

// ---------------------------------------------------------------------------------------------
//  Baseline: raw DEALER->ROUTER, each request acknowledged (synchronous or with a window)

static void *
s_acker (void *varg)
{
    void *router = zsock_resolve ((zsock_t *) varg);
    uint8_t ack [SLUICE_HEADER_SIZE] = { SLUICE_PROTOCOL_VERSION, SLUICE_CMD_WRITE };
    while (true) {
        zmq_msg_t identity, body;
        zmq_msg_init (&identity);
        zmq_msg_init (&body);
        if (zmq_msg_recv (&identity, router, 0) == -1 || zmq_msg_recv (&body, router, 0) == -1) {
            zmq_msg_close (&identity);
            zmq_msg_close (&body);
            break;
        }
        bool end = zmq_msg_size (&body) == 0;
        zmq_msg_close (&body);
        zmq_msg_send (&identity, router, ZMQ_SNDMORE);
        zmq_send (router, ack, sizeof ack, 0);
        if (end)
            break;
    }
    return NULL;
}

static double
m_raw_dealer_router (const spec_t *spec)
{
    char endpoint [128];
    zsock_t *router = s_bound (ZMQ_ROUTER, spec->transport, endpoint, sizeof endpoint);
    zsock_t *dealer = router ? zsock_new_dealer (endpoint) : NULL;
    if (!dealer) {
        zsock_destroy (&router);
        return NAN;
    }
    pthread_t thread;
    pthread_create (&thread, NULL, s_acker, router);
    void *sock = zsock_resolve (dealer);
    char data [CHUNK] = { 0 }, ack [64];
    //  One warm-up round trip: the tcp connection is up before the clock starts
    zmq_send (sock, data, CHUNK, 0);
    zmq_recv (sock, ack, sizeof ack, 0);
    size_t window = spec->window ? spec->window : 1;
    long sent = 0, acked = 0;
    double start = now_s (), deadline = start + g.tmax;
    while (sent < spec->items) {
        if ((sent & 63) == 0 && now_s () > deadline)
            break;
        if ((size_t) (sent - acked) < window) {
            zmq_send (sock, data, CHUNK, 0);
            sent++;
        }
        else
        if (zmq_recv (sock, ack, sizeof ack, 0) >= 0)
            acked++;
    }
    while (acked < sent && zmq_recv (sock, ack, sizeof ack, 0) >= 0)
        acked++;
    double elapsed = now_s () - start;
    zmq_send (sock, "", 0, 0);            //  end marker
    zmq_recv (sock, ack, sizeof ack, 0);
    pthread_join (thread, NULL);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
    g_items = acked;
    return acked / elapsed;
}

// ---------------------------------------------------------------------------------------------
//  Baseline: pthread mutex + two condition variables bounded buffer

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t not_full, not_empty;
    uint8_t (*slot) [CHUNK];
    size_t capacity, head, count;
    bool closed;
} cv_buffer_t;

static void
cv_init (cv_buffer_t *self, size_t capacity)
{
    memset (self, 0, sizeof *self);
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->not_full, NULL);
    pthread_cond_init (&self->not_empty, NULL);
    self->slot = malloc (capacity * CHUNK);
    self->capacity = capacity;
}

static void
cv_fini (cv_buffer_t *self)
{
    pthread_mutex_destroy (&self->lock);
    pthread_cond_destroy (&self->not_full);
    pthread_cond_destroy (&self->not_empty);
    free (self->slot);
}

static void
cv_put (cv_buffer_t *self, const void *data)
{
    pthread_mutex_lock (&self->lock);
    while (self->count == self->capacity && !self->closed)
        pthread_cond_wait (&self->not_full, &self->lock);
    memcpy (self->slot [(self->head + self->count) % self->capacity], data, CHUNK);
    self->count++;
    pthread_cond_signal (&self->not_empty);
    pthread_mutex_unlock (&self->lock);
}

static bool
cv_get (cv_buffer_t *self, void *data)
{
    pthread_mutex_lock (&self->lock);
    while (self->count == 0 && !self->closed)
        pthread_cond_wait (&self->not_empty, &self->lock);
    bool got = self->count > 0;
    if (got) {
        memcpy (data, self->slot [self->head], CHUNK);
        self->head = (self->head + 1) % self->capacity;
        self->count--;
        pthread_cond_signal (&self->not_full);
    }
    pthread_mutex_unlock (&self->lock);
    return got;
}

static void
cv_close (cv_buffer_t *self)
{
    pthread_mutex_lock (&self->lock);
    self->closed = true;
    pthread_cond_broadcast (&self->not_full);
    pthread_cond_broadcast (&self->not_empty);
    pthread_mutex_unlock (&self->lock);
}

// ---------------------------------------------------------------------------------------------
//  Writer/reader threads shared by the condvar and sluice throughput runs

typedef struct {
    const spec_t *spec;
    pthread_barrier_t *gate;
    cv_buffer_t *cv;             //  condvar run, or
    const char *endpoint;        //  sluice run
    long quota;                  //  writers: items to write
    long count;                  //  items written / read
    double last;                 //  readers: time of the last item
    sluice_err_t err;
} tp_arg_t;

static void *
s_cv_writer (void *varg)
{
    tp_arg_t *arg = (tp_arg_t *) varg;
    uint8_t data [CHUNK] = { 1 };
    pthread_barrier_wait (arg->gate);
    double deadline = now_s () + g.tmax;
    long index = 0;
    for (; index < arg->quota; index++) {
        if ((index & 63) == 0 && now_s () > deadline)
            break;
        cv_put (arg->cv, data);
    }
    arg->count = index;
    return NULL;
}

static void *
s_cv_reader (void *varg)
{
    tp_arg_t *arg = (tp_arg_t *) varg;
    uint8_t data [CHUNK];
    pthread_barrier_wait (arg->gate);
    while (cv_get (arg->cv, data)) {
        arg->count++;
        arg->last = now_s ();
    }
    return NULL;
}

//  A writer's or reader's stream with the spec's settings, connected (one STATUS round trip)
//  before any clock starts; NULL on failure, *err says why.
static sluice_stream_t *
s_sl_open (const char *endpoint, const spec_t *spec, bool writer, sluice_err_t *err)
{
    sluice_stream_t *stream = sluice_stream_new (endpoint);
    if (!stream) {
        *err = SLUICE_ETRANSPORT;
        return NULL;
    }
    if (writer) {
        s_set_window (stream, spec->window);
        //  Batches of more than the capacity are refused: the buffer admits a batch whole
        size_t wbatch = spec->wbatch < spec->capacity ? spec->wbatch : spec->capacity;
        if (spec->window > 1 && wbatch > 1)
            sluice_stream_set_write_batch (stream, wbatch);
    }
    else
        s_set_batch (stream, spec->batch);
    sluice_buffer_status_t status;
    *err = sluice_stream_status (stream, &status);
    if (*err != SLUICE_OK)
        sluice_stream_destroy (&stream);
    return stream;
}

//  Writes up to quota chunks within g.tmax and flushes; the count written.
static long
s_sl_write_loop (sluice_stream_t *stream, long quota, sluice_err_t *err)
{
    uint8_t data [CHUNK] = { 1 };
    double deadline = now_s () + g.tmax;
    long index = 0;
    for (; index < quota && *err == SLUICE_OK; index++) {
        if ((index & 63) == 0 && now_s () > deadline)
            break;
        *err = sluice_stream_write (stream, data, CHUNK, false);
    }
    if (*err == SLUICE_OK)
        *err = s_flush (stream);
    return index;
}

//  Reads until the end of the stream; the count, and the time of the last chunk in *last.
static long
s_sl_read_loop (sluice_stream_t *stream, double *last, sluice_err_t *err)
{
    sluice_chunk_t chunk;
    long count = 0;
    while (*err == SLUICE_OK) {
        *err = sluice_stream_read (stream, &chunk);
        if (*err != SLUICE_OK || chunk.is_eos)
            break;
        count++;
        *last = now_s ();
    }
    return count;
}

static void *
s_sl_writer (void *varg)
{
    tp_arg_t *arg = (tp_arg_t *) varg;
    sluice_stream_t *stream = s_sl_open (arg->endpoint, arg->spec, true, &arg->err);
    pthread_barrier_wait (arg->gate);
    if (stream)
        arg->count = s_sl_write_loop (stream, arg->quota, &arg->err);
    sluice_stream_destroy (&stream);
    return NULL;
}

static void *
s_sl_reader (void *varg)
{
    tp_arg_t *arg = (tp_arg_t *) varg;
    sluice_stream_t *stream = s_sl_open (arg->endpoint, arg->spec, false, &arg->err);
    pthread_barrier_wait (arg->gate);
    if (stream)
        arg->count = s_sl_read_loop (stream, &arg->last, &arg->err);
    sluice_stream_destroy (&stream);
    return NULL;
}

//  Starts writers and readers behind one gate; `finish` ends the stream once writers are done.
static double
s_run_threads (const spec_t *spec, tp_arg_t *proto, void *(*writer) (void *),
               void *(*reader) (void *), void (*finish) (void *), void *finish_arg,
               const char *what)
{
    int nw = spec->writers, nr = spec->readers;
    pthread_barrier_t gate;
    pthread_barrier_init (&gate, NULL, (unsigned) (nw + nr + 1));
    tp_arg_t args [16];
    pthread_t threads [16];
    assert (nw + nr <= 16);
    for (int index = 0; index < nw + nr; index++) {
        args [index] = *proto;
        args [index].gate = &gate;
        args [index].quota = index < nw ? spec->items / nw : 0;
        pthread_create (&threads [index], NULL, index < nw ? writer : reader, &args [index]);
    }
    pthread_barrier_wait (&gate);
    double start = now_s ();
    long written = 0, read = 0;
    double last = start;
    bool failed = false;
    for (int index = 0; index < nw; index++) {
        pthread_join (threads [index], NULL);
        written += args [index].count;
        failed |= args [index].err != SLUICE_OK;
    }
    finish (finish_arg);
    for (int index = nw; index < nw + nr; index++) {
        pthread_join (threads [index], NULL);
        read += args [index].count;
        failed |= args [index].err != SLUICE_OK;
        if (args [index].last > last)
            last = args [index].last;
    }
    pthread_barrier_destroy (&gate);
    if (failed || read != written) {
        fprintf (stderr, "bench: %s: written %ld, read %ld%s\n", what, written, read,
                 failed ? " (a call failed)" : "");
        return NAN;
    }
    g_items = read;
    return read / (last - start);
}

static void
s_cv_finish (void *arg)
{
    cv_close ((cv_buffer_t *) arg);
}

static double
m_condvar (const spec_t *spec)
{
    cv_buffer_t cv;
    cv_init (&cv, spec->capacity);
    tp_arg_t proto = { .spec = spec, .cv = &cv };
    double rate = s_run_threads (spec, &proto, s_cv_writer, s_cv_reader, s_cv_finish, &cv,
                                 "condvar");
    cv_fini (&cv);
    return rate;
}

static void
s_sl_finish (void *arg)
{
    sluice_err_t rc = sluice_stream_close ((sluice_stream_t *) arg);
    if (rc != SLUICE_OK)
        fprintf (stderr, "bench: close: %s\n", sluice_strerror (rc));
}

static sluice_buffer_t *
s_buffer (const char *transport, size_t capacity, char *endpoint, size_t size)
{
    char bind [128];
    if (streq (transport, "tcp"))
        snprintf (bind, sizeof bind, "tcp://127.0.0.1:*");
    else
        s_inproc (bind, sizeof bind, "buffer");
    sluice_buffer_opts_t opts = { .endpoint = bind, .capacity = capacity };
    sluice_err_t err;
    sluice_buffer_t *buffer = sluice_buffer_new (&opts, &err);
    if (!buffer) {
        fprintf (stderr, "bench: sluice_buffer_new: %s\n", sluice_strerror (err));
        return NULL;
    }
    snprintf (endpoint, size, "%s", sluice_buffer_endpoint (buffer));
    return buffer;
}

static double
m_sluice (const spec_t *spec)
{
    char endpoint [256];
    sluice_buffer_t *buffer = s_buffer (spec->transport, spec->capacity, endpoint, sizeof endpoint);
    if (!buffer)
        return NAN;
    sluice_stream_t *main_stream = sluice_stream_new (endpoint);
    sluice_buffer_status_t status;
    double rate = NAN;
    if (main_stream && sluice_stream_status (main_stream, &status) == SLUICE_OK) {
        tp_arg_t proto = { .spec = spec, .endpoint = endpoint };
        rate = s_run_threads (spec, &proto, s_sl_writer, s_sl_reader, s_sl_finish, main_stream,
                              "sluice");
    }
    sluice_stream_destroy (&main_stream);
    sluice_buffer_destroy (&buffer);
    return rate;
}

// ---------------------------------------------------------------------------------------------
//  Child processes: the cross-process rows and the Python row. Each child is started through
//  `bench --child exec PROGRAM ARGS...`, which asks the kernel to kill it when this thread
//  ends (a killed bench leaves no buffer process behind) and then executes PROGRAM. Children
//  report readiness and results as lines on their stdout; a start gate is a byte on stdin.

typedef struct {
    pid_t pid;                   //  -1: not started
    int in, out;                 //  our ends of its stdin and stdout pipes, or -1
    char buf [512];              //  stdout read so far, not yet returned as lines
    size_t len;
} proc_t;

#define ARGV(...) ((const char *const []) { __VA_ARGS__, NULL })

static void
s_proc_init (proc_t *self)
{
    memset (self, 0, sizeof *self);
    self->pid = -1;
    self->in = self->out = -1;
}

//  Starts argv (argv [0] a path); stdin a pipe when with_stdin, else /dev/null; stdout a
//  pipe; stderr ours, or the file err_path.
static bool
s_proc_start (proc_t *self, const char *const *argv, bool with_stdin, const char *err_path)
{
    s_proc_init (self);
    int out [2], in [2] = { -1, -1 };
    if (pipe2 (out, O_CLOEXEC) == -1)
        return false;
    if (with_stdin && pipe2 (in, O_CLOEXEC) == -1) {
        close (out [0]);
        close (out [1]);
        return false;
    }
    const char *args [48] = { g.self_exe, "--child", "exec" };
    int argc = 3;
    for (; *argv && argc < 47; argv++)
        args [argc++] = *argv;
    args [argc] = NULL;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    if (with_stdin)
        posix_spawn_file_actions_adddup2 (&actions, in [0], 0);
    else
        posix_spawn_file_actions_addopen (&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2 (&actions, out [1], 1);
    if (err_path)
        posix_spawn_file_actions_addopen (&actions, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC,
                                          0644);
    int rc = posix_spawn (&self->pid, g.self_exe, &actions, NULL, (char *const *) args, environ);
    posix_spawn_file_actions_destroy (&actions);
    close (out [1]);
    if (with_stdin)
        close (in [0]);
    self->out = out [0];
    self->in = in [1];
    if (rc != 0) {
        fprintf (stderr, "bench: cannot start %s: %s\n", argv [0], strerror (rc));
        close (self->out);
        if (self->in >= 0)
            close (self->in);
        s_proc_init (self);
        return false;
    }
    return true;
}

//  The next line of the child's stdout (without the newline), waiting until deadline at most;
//  false at its end, on a timeout, or when the child has not started. A line longer than the
//  buffer comes in pieces (a server's log lines can be long; none of them is parsed).
static bool
s_proc_line (proc_t *self, char *line, size_t size, double deadline)
{
    if (self->pid <= 0)
        return false;
    while (true) {
        char *newline = memchr (self->buf, '\n', self->len);
        if (newline) {
            size_t length = (size_t) (newline - self->buf);
            snprintf (line, size, "%.*s", (int) length, self->buf);
            self->len -= length + 1;
            memmove (self->buf, newline + 1, self->len);
            return true;
        }
        if (self->len == sizeof self->buf) {
            size_t length = self->len < size - 1 ? self->len : size - 1;
            memcpy (line, self->buf, length);
            line [length] = 0;
            self->len -= length;
            memmove (self->buf, self->buf + length, self->len);
            return true;
        }
        int wait_ms = (int) ((deadline - now_s ()) * 1000);
        if (wait_ms <= 0)
            return false;
        struct pollfd item = { .fd = self->out, .events = POLLIN };
        int ready = poll (&item, 1, wait_ms);
        if (ready == -1 && errno == EINTR)
            continue;
        if (ready <= 0)
            return false;
        ssize_t got = read (self->out, self->buf + self->len, sizeof self->buf - self->len);
        if (got <= 0)
            return false;
        self->len += (size_t) got;
    }
}

//  Sends `signal` first (0: none), closes its stdin, waits for the end of its stdout (it has
//  exited) until deadline, else kills it; reaps it. Its exit code, 128 + signal, or -1.
static int
s_proc_end (proc_t *self, int signal, double deadline)
{
    if (self->pid <= 0)
        return -1;
    if (signal)
        kill (self->pid, signal);
    if (self->in >= 0)
        close (self->in);
    while (true) {
        int wait_ms = (int) ((deadline - now_s ()) * 1000);
        struct pollfd item = { .fd = self->out, .events = POLLIN };
        int ready = wait_ms > 0 ? poll (&item, 1, wait_ms) : 0;
        if (ready == -1 && errno == EINTR)
            continue;
        char drain [256];
        if (ready <= 0) {
            fprintf (stderr, "bench: child %d did not end: killed\n", (int) self->pid);
            kill (self->pid, SIGKILL);
            break;
        }
        if (read (self->out, drain, sizeof drain) <= 0)
            break;
    }
    close (self->out);
    int status = 0;
    pid_t pid = self->pid;
    s_proc_init (self);
    while (waitpid (pid, &status, 0) == -1)
        if (errno != EINTR)
            return -1;
    return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

//  A program next to this one (bin/sluice), or $env when set.
static void
s_sibling (char *out, size_t size, const char *env, const char *name)
{
    const char *given = getenv (env);
    if (given && *given) {
        snprintf (out, size, "%s", given);
        return;
    }
    const char *slash = strrchr (g.self_exe, '/');
    snprintf (out, size, "%.*s/%s", (int) (slash ? slash - g.self_exe : 1),
              slash ? g.self_exe : ".", name);
}

//  A cross-process run over tcp. `server` prints "listening on ENDPOINT" first, or, when
//  `ready` is given, a log line that contains that text (other lines before it are skipped)
//  and the endpoint is `known`; an argument "@" of the writer and the reader stands for the
//  endpoint. The writer prints "ready", waits for the gate, moves its items and prints
//  "COUNT ERR"; the reader prints "ready" and, at the end of the stream, "COUNT LAST_TIME ERR".
//  With reader NULL the server is the reader. The clock starts when both are ready; the server
//  gets SIGTERM at the end (unless it is the reader, which ends by itself) and must exit 0.
static double
s_proc_run (const char *const *server, const char *ready, const char *known,
            const char *const *writer, const char *const *reader)
{
    proc_t procs [3];            //  server, writer, reader
    for (int index = 0; index < 3; index++)
        s_proc_init (&procs [index]);
    proc_t *srv = &procs [0], *wr = &procs [1], *rd = reader ? &procs [2] : srv;
    double deadline = now_s () + WAIT_LIMIT, rate = NAN;
    char line [256], endpoint [256];
    const char *argv [32];
    bool ok = s_proc_start (srv, server, false, NULL);
    if (ok && ready) {
        //  A server's log: what it printed last tells why it did not get ready
        char last_line [256] = "nothing";
        while ((ok = s_proc_line (srv, line, sizeof line, deadline)) && !strstr (line, ready))
            snprintf (last_line, sizeof last_line, "%s", line);
        if (!ok)
            fprintf (stderr, "bench: processes: %s did not print \"%s\" (it ended, or not "
                     "within %.0f s); its last line: %s\n", server [0], ready, WAIT_LIMIT,
                     last_line);
        snprintf (endpoint, sizeof endpoint, "%s", known);
    }
    else
        ok = ok && s_proc_line (srv, line, sizeof line, deadline)
                && sscanf (line, "listening on %255s", endpoint) == 1;
    for (int which = 0; which < 2 && ok; which++) {
        const char *const *given = which == 0 ? writer : reader;
        if (!given)
            continue;
        int argc = 0;
        for (; given [argc] && argc < 31; argc++)
            argv [argc] = streq (given [argc], "@") ? endpoint : given [argc];
        argv [argc] = NULL;
        ok = s_proc_start (which == 0 ? wr : rd, argv, which == 0, NULL);
    }
    ok = ok && s_proc_line (wr, line, sizeof line, deadline) && streq (line, "ready")
            && s_proc_line (rd, line, sizeof line, deadline) && streq (line, "ready");
    double start = now_s ();
    ok = ok && write (wr->in, "g", 1) == 1;
    long written = -1, read = -1;
    int wr_err = -1, rd_err = -1;
    double last = 0;
    deadline = start + g.tmax + WAIT_LIMIT;
    //  A writer that failed leaves the reader waiting for the rest: do not wait for it
    ok = ok && s_proc_line (wr, line, sizeof line, deadline)
            && sscanf (line, "%ld %d", &written, &wr_err) == 2 && wr_err == 0
            && s_proc_line (rd, line, sizeof line, deadline)
            && sscanf (line, "%ld %lf %d", &read, &last, &rd_err) == 3;
    if (ok && wr_err == 0 && rd_err == 0 && read == written && read > 0) {
        rate = (double) read / (last - start);
        g_items = read;
    }
    else
        fprintf (stderr, "bench: processes: written %ld (error %d), read %ld (error %d)%s\n",
                 written, wr_err, read, rd_err, ok ? "" : ", a child failed or hung");
    deadline = now_s () + WAIT_LIMIT;
    int codes [3];
    codes [1] = s_proc_end (wr, ok ? 0 : SIGKILL, deadline);
    codes [2] = s_proc_end (&procs [2], ok ? 0 : SIGKILL, deadline);
    codes [0] = s_proc_end (srv, ok ? (reader ? SIGTERM : 0) : SIGKILL, deadline);
    for (int index = 0; index < 3 && ok; index++)
        if (codes [index] > 0) {
            fprintf (stderr, "bench: processes: child %d exited with %d\n", index, codes [index]);
            rate = NAN;
        }
    return rate;
}

//  Three processes: `sluice buffer` on tcp 127.0.0.1, a writer and a reader (this program).
static double
m_proc_sluice (const spec_t *spec)
{
    char cli [4200], cap [24], items [24], tmax [24], window [24], wbatch [24], rbatch [24];
    s_sibling (cli, sizeof cli, "SLUICE_CLI", "sluice");
    if (access (cli, X_OK) != 0) {
        g_skip = "no sluice program next to bench (make bench builds it; or set SLUICE_CLI)";
        return NAN;
    }
    snprintf (cap, sizeof cap, "%zu", spec->capacity);
    snprintf (items, sizeof items, "%ld", spec->items);
    snprintf (tmax, sizeof tmax, "%g", g.tmax);
    snprintf (window, sizeof window, "%zu", spec->window);
    snprintf (wbatch, sizeof wbatch, "%zu", spec->wbatch);
    snprintf (rbatch, sizeof rbatch, "%zu", spec->batch);
    return s_proc_run (
        ARGV (cli, "buffer", "--bind", "tcp://127.0.0.1:*", "--capacity", cap), NULL, NULL,
        ARGV (g.self_exe, "--child", "proc-writer", "@", cap, items, tmax, window, wbatch),
        ARGV (g.self_exe, "--child", "proc-reader", "@", cap, rbatch));
}

//  Two processes: raw PUSH -> PULL over tcp 127.0.0.1, the PULL bound.
static double
m_proc_raw (const spec_t *spec)
{
    char items [24], tmax [24];
    snprintf (items, sizeof items, "%ld", spec->items);
    snprintf (tmax, sizeof tmax, "%g", g.tmax);
    return s_proc_run (ARGV (g.self_exe, "--child", "proc-pull"), NULL, NULL,
                       ARGV (g.self_exe, "--child", "proc-push", "@", items, tmax), NULL);
}

static int
c_proc_writer (char **args)        //  ENDPOINT CAPACITY ITEMS TMAX WINDOW WBATCH
{
    spec_t spec = { "tcp", (size_t) atol (args [1]), (size_t) atol (args [4]), 1, 1, 1,
                    atol (args [2]), NULL, (size_t) atol (args [5]) };
    g.tmax = atof (args [3]);
    sluice_err_t err;
    sluice_stream_t *stream = s_sl_open (args [0], &spec, true, &err);
    printf ("%s\n", stream ? "ready" : "failed");
    fflush (stdout);
    char go;
    if (!stream || read (0, &go, 1) != 1)
        return 1;
    long count = s_sl_write_loop (stream, spec.items, &err);
    if (err == SLUICE_OK)
        err = sluice_stream_close (stream);
    printf ("%ld %d\n", count, (int) err);
    fflush (stdout);
    sluice_stream_destroy (&stream);
    return err == SLUICE_OK ? 0 : 1;
}

static int
c_proc_reader (char **args)        //  ENDPOINT CAPACITY RBATCH
{
    spec_t spec = { "tcp", (size_t) atol (args [1]), 1, (size_t) atol (args [2]), 1, 1, 0, NULL, 0 };
    sluice_err_t err;
    sluice_stream_t *stream = s_sl_open (args [0], &spec, false, &err);
    printf ("%s\n", stream ? "ready" : "failed");
    fflush (stdout);
    if (!stream)
        return 1;
    double last = 0;
    long count = s_sl_read_loop (stream, &last, &err);
    printf ("%ld %.9f %d\n", count, last, (int) err);
    fflush (stdout);
    sluice_stream_destroy (&stream);
    return err == SLUICE_OK ? 0 : 1;
}

static int
c_proc_pull (void)
{
    char endpoint [128];
    zsock_t *pull = s_bound (ZMQ_PULL, "tcp", endpoint, sizeof endpoint);
    if (!pull)
        return 1;
    zsock_set_rcvtimeo (pull, (int) (2 * WAIT_LIMIT * 1000));
    printf ("listening on %s\n", endpoint);
    fflush (stdout);
    char data [CHUNK];
    //  The writer's warm-up message: the connection is up
    if (zmq_recv (zsock_resolve (pull), data, sizeof data, 0) == -1)
        return 1;
    printf ("ready\n");
    fflush (stdout);
    double last = 0;
    long count = s_pull_loop (zsock_resolve (pull), &last);
    printf ("%ld %.9f 0\n", count, last);
    fflush (stdout);
    zsock_destroy (&pull);
    return 0;
}

static int
c_proc_push (char **args)          //  ENDPOINT ITEMS TMAX
{
    zsock_t *push = zsock_new_push (args [0]);
    if (!push)
        return 1;
    zsock_set_linger (push, (int) (WAIT_LIMIT * 1000));   //  czmq's 0 would drop the tail
    g.tmax = atof (args [2]);
    char data [CHUNK] = { 0 }, go;
    zmq_send (zsock_resolve (push), data, CHUNK, 0);
    printf ("ready\n");
    fflush (stdout);
    if (read (0, &go, 1) != 1)
        return 1;
    long count = s_push_loop (zsock_resolve (push), atol (args [1]));
    printf ("%ld 0\n", count);
    fflush (stdout);
    zsock_destroy (&push);
    return 0;
}

//  `bench --child exec PROGRAM ARGS...`: die with the parent, then become PROGRAM.
static int
c_exec (char **args)
{
    prctl (PR_SET_PDEATHSIG, SIGKILL);
    execv (args [0], args);
    fprintf (stderr, "bench: cannot run %s: %s\n", args [0], strerror (errno));
    return 127;
}

// ---------------------------------------------------------------------------------------------
//  Baseline: the Python asyncio original (bench/seed_buffer.py), one writer and one reader
//  coroutine, the seed's API (one write, one read). Skipped, with the reason in the row, when
//  there is no python3.

static bool
s_find_program (const char *name, const char *env, char *out, size_t size)
{
    const char *given = getenv (env);
    if (given && *given) {
        snprintf (out, size, "%s", given);
        return access (out, X_OK) == 0;
    }
    const char *path = getenv ("PATH");
    char dirs [4096];
    snprintf (dirs, sizeof dirs, "%s", path ? path : "/usr/bin:/bin");
    for (char *save, *dir = strtok_r (dirs, ":", &save); dir; dir = strtok_r (NULL, ":", &save)) {
        snprintf (out, size, "%s/%s", dir, name);
        if (access (out, X_OK) == 0)
            return true;
    }
    return false;
}

static double
m_python (const spec_t *spec)
{
    char python [4200], script [4200], line [256], cap [24], items [24], tmax [24];
    if (!s_find_program ("python3", "SLUICE_PYTHON", python, sizeof python)) {
        g_skip = "Python row skipped: no python3 on PATH or at $SLUICE_PYTHON";
        return NAN;
    }
    //  build/bench/bin/bench -> bench/seed_buffer.py
    s_sibling (script, sizeof script, "SLUICE_BENCH_PY", "../../../bench/seed_buffer.py");
    if (access (script, R_OK) != 0) {
        g_skip = "Python row skipped: bench/seed_buffer.py not found (set SLUICE_BENCH_PY)";
        return NAN;
    }
    snprintf (cap, sizeof cap, "%zu", spec->capacity);
    snprintf (items, sizeof items, "%ld", spec->items);
    snprintf (tmax, sizeof tmax, "%g", g.tmax);
    proc_t proc;
    long count = 0;
    double elapsed = 0, cpu = 0;
    bool ok = s_proc_start (&proc, ARGV (python, script, cap, items, tmax), false, NULL)
           && s_proc_line (&proc, line, sizeof line, now_s () + g.tmax + WAIT_LIMIT)
           && sscanf (line, "%ld %lf %lf", &count, &elapsed, &cpu) == 3 && count > 0;
    int code = s_proc_end (&proc, ok ? 0 : SIGKILL, now_s () + WAIT_LIMIT);
    if (!ok || code != 0) {
        g_skip = "Python row failed: python3 bench/seed_buffer.py did not report (see above)";
        return NAN;
    }
    g_items = count;
    g_cpu_child = cpu * 1e6;
    return (double) count / elapsed;
}

// ---------------------------------------------------------------------------------------------
//  Baseline: a Redis list between two processes. redis-server listens on tcp 127.0.0.1; a
//  writer process RPUSHes REDIS_VALUES chunks per command with REDIS_WDEPTH commands in
//  flight, a reader process takes up to REDIS_VALUES per BLMPOP with REDIS_RDEPTH in flight
//  (the depths were chosen by hand as the best for Redis here: bench/README.md). A list has no
//  bound, so the writer never waits for the reader: what Redis leaves out is backpressure.
//  RESP is spoken by hand over a plain socket (a baseline is no reason for a hiredis
//  dependency). Skipped, with the reason in the row, when there is no redis-server.

#define REDIS_KEY     "sluice-bench"
#ifndef REDIS_VALUES             //  (-D... to try other settings by hand)
#define REDIS_VALUES  256        //  chunks per RPUSH, at most per BLMPOP
#endif
#ifndef REDIS_WDEPTH
#define REDIS_WDEPTH  8          //  RPUSH commands in flight
#endif
#ifndef REDIS_RDEPTH
#define REDIS_RDEPTH  4          //  BLMPOP commands in flight
#endif
#define REDIS_TIMEOUT "1"        //  BLMPOP's own timeout, seconds: an empty list answers null

typedef struct {
    int fd;
    const char *who;             //  the child mode, for messages
    size_t start, end;           //  reply bytes not parsed yet: buf [start, end)
    char buf [1 << 18];
} resp_t;

//  A connection to redis-server at HOST:PORT, or NULL after a message. Every wait on it is
//  bounded: a send or receive with no progress for 2 × WAIT_LIMIT fails (SO_SNDTIMEO,
//  SO_RCVTIMEO), so a stuck server ends the child instead of hanging it.
static resp_t *
s_resp_connect (const char *endpoint, const char *who)
{
    char host [64];
    int port = 0;
    struct sockaddr_in addr = { .sin_family = AF_INET };
    if (sscanf (endpoint, "%63[^:]:%d", host, &port) != 2 || port <= 0 || port > 65535
    ||  inet_pton (AF_INET, host, &addr.sin_addr) != 1) {
        fprintf (stderr, "bench: %s: bad redis-server address '%s'\n", who, endpoint);
        return NULL;
    }
    addr.sin_port = htons ((uint16_t) port);
    resp_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->who = who;
    self->fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval bound = { .tv_sec = (time_t) (2 * WAIT_LIMIT) };
    int one = 1;
    if (self->fd == -1
    ||  setsockopt (self->fd, SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound) == -1
    ||  setsockopt (self->fd, SOL_SOCKET, SO_SNDTIMEO, &bound, sizeof bound) == -1
    //  Small pipelined commands (BLMPOP) must not wait for the previous one's ACK (Nagle);
    //  libzmq sets the same on its tcp sockets
    ||  setsockopt (self->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == -1
    ||  connect (self->fd, (struct sockaddr *) &addr, sizeof addr) == -1) {
        fprintf (stderr, "bench: %s: cannot connect to redis-server at %s: %s\n", who, endpoint,
                 strerror (errno));
        if (self->fd != -1)
            close (self->fd);
        free (self);
        return NULL;
    }
    return self;
}

static void
s_resp_destroy (resp_t **self_p)
{
    if (*self_p) {
        close ((*self_p)->fd);
        free (*self_p);
        *self_p = NULL;
    }
}

static bool
s_resp_send (resp_t *self, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t sent = send (self->fd, data, size, MSG_NOSIGNAL);
        if (sent == -1 && errno == EINTR)
            continue;
        if (sent <= 0) {
            fprintf (stderr, "bench: %s: cannot send to redis-server: %s\n", self->who,
                     errno == EAGAIN ? "no progress within the liveness bound" : strerror (errno));
            return false;
        }
        data += sent;
        size -= (size_t) sent;
    }
    return true;
}

//  More reply bytes after the unparsed ones; false, after a message, when the server closed
//  the connection or sent nothing within the bound.
static bool
s_resp_fill (resp_t *self)
{
    memmove (self->buf, self->buf + self->start, self->end - self->start);
    self->end -= self->start;
    self->start = 0;
    if (self->end == sizeof self->buf) {
        fprintf (stderr, "bench: %s: a reply line longer than %zu bytes\n", self->who,
                 sizeof self->buf);
        return false;
    }
    while (true) {
        ssize_t got = recv (self->fd, self->buf + self->end, sizeof self->buf - self->end, 0);
        if (got > 0) {
            self->end += (size_t) got;
            return true;
        }
        if (got == -1 && errno == EINTR)
            continue;
        fprintf (stderr, "bench: %s: redis-server %s\n", self->who,
                 got == 0 ? "closed the connection"
                 : errno == EAGAIN ? "sent nothing within the liveness bound" : strerror (errno));
        return false;
    }
}

//  The next reply line without its CRLF (valid until the next call), or NULL after a message.
static char *
s_resp_line (resp_t *self)
{
    while (true) {
        char *begin = self->buf + self->start;
        char *crlf = memmem (begin, self->end - self->start, "\r\n", 2);
        if (crlf) {
            *crlf = 0;
            self->start = (size_t) (crlf + 2 - self->buf);
            return begin;
        }
        if (!s_resp_fill (self))
            return NULL;
    }
}

//  Passes over `size` bytes of a bulk string's body (its CRLF included).
static bool
s_resp_skip (resp_t *self, size_t size)
{
    while (self->end - self->start < size) {
        size -= self->end - self->start;
        self->start = self->end;
        if (!s_resp_fill (self))
            return false;
    }
    self->start += size;
    return true;
}

//  A reply line of the given RESP type ('+' status, ':' integer, '*' array, '$' bulk string),
//  or NULL after a message naming the command: an error reply (-ERR ...) or anything else.
static char *
s_resp_expect (resp_t *self, char type, const char *command)
{
    char *line = s_resp_line (self);
    if (line && line [0] != type) {
        fprintf (stderr, "bench: %s: %s: redis-server replied %s'%.160s'\n", self->who, command,
                 line [0] == '-' ? "with an error: " : "something unexpected: ", line);
        line = NULL;
    }
    return line;
}

//  The round trip before "ready": the connection is up and the server answers.
static bool
s_resp_ping (resp_t *self)
{
    return s_resp_send (self, "*1\r\n$4\r\nPING\r\n", 14) && s_resp_expect (self, '+', "PING");
}

//  An RPUSH of `values` chunks of CHUNK bytes (0 values: one empty value, the end marker)
//  into out; its length.
static size_t
s_rpush_command (char *out, size_t size, size_t values)
{
    int len = snprintf (out, size, "*%zu\r\n$5\r\nRPUSH\r\n$%zu\r\n%s\r\n", 2 + (values ? values : 1),
                        strlen (REDIS_KEY), REDIS_KEY);
    size_t used = (size_t) len;
    if (values == 0)
        return used + (size_t) snprintf (out + used, size - used, "$0\r\n\r\n");
    for (size_t index = 0; index < values; index++) {
        used += (size_t) snprintf (out + used, size - used, "$%d\r\n", CHUNK);
        memset (out + used, 'x', CHUNK);
        used += CHUNK;
        memcpy (out + used, "\r\n", 2);
        used += 2;
    }
    return used;
}

#define RPUSH_MAX (64 + REDIS_VALUES * (CHUNK + 16))

static int
c_redis_writer (char **args)       //  HOST:PORT ITEMS TMAX
{
    long items = atol (args [1]);
    g.tmax = atof (args [2]);
    //  Every full RPUSH is the same bytes: built once
    static char full [RPUSH_MAX], part [RPUSH_MAX];
    size_t full_size = s_rpush_command (full, sizeof full, REDIS_VALUES);
    resp_t *resp = s_resp_connect (args [0], "redis-writer");
    bool ok = resp && s_resp_ping (resp);
    printf ("%s\n", ok ? "ready" : "failed");
    fflush (stdout);
    char go;
    if (!ok || read (0, &go, 1) != 1) {
        s_resp_destroy (&resp);
        return 1;
    }
    double deadline = now_s () + g.tmax;
    long count = 0;
    int pending = 0;             //  RPUSH replies not read yet
    while (ok && count < items && now_s () <= deadline) {
        if (pending == REDIS_WDEPTH) {
            ok = s_resp_expect (resp, ':', "RPUSH") != NULL;
            pending--;
        }
        size_t values = items - count < REDIS_VALUES ? (size_t) (items - count) : REDIS_VALUES;
        ok = ok && (values == REDIS_VALUES
                    ? s_resp_send (resp, full, full_size)
                    : s_resp_send (resp, part, s_rpush_command (part, sizeof part, values)));
        pending++;
        count += (long) values;
    }
    //  The end marker, an empty value: the list keeps order, so it comes after every chunk
    ok = ok && s_resp_send (resp, part, s_rpush_command (part, sizeof part, 0));
    for (pending++; ok && pending > 0; pending--)
        ok = s_resp_expect (resp, ':', "RPUSH") != NULL;
    printf ("%ld %d\n", count, ok ? 0 : 1);
    fflush (stdout);
    s_resp_destroy (&resp);
    return ok ? 0 : 1;
}

//  One BLMPOP reply: the chunks it carries are added to *count; *end when it carried the end
//  marker; *got when it carried anything (a null reply: the list stayed empty for the timeout).
static bool
s_blmpop_reply (resp_t *self, long *count, bool *end, bool *got)
{
    char *line = s_resp_expect (self, '*', "BLMPOP");
    *got = line && !streq (line, "*-1");
    if (!line || !*got)
        return line != NULL;
    //  [key, [values...]]
    long elements = 0;
    bool ok = streq (line, "*2")
           && (line = s_resp_expect (self, '$', "BLMPOP")) != NULL
           && s_resp_skip (self, (size_t) atol (line + 1) + 2)
           && (line = s_resp_expect (self, '*', "BLMPOP")) != NULL
           && (elements = atol (line + 1)) > 0;
    for (long index = 0; ok && index < elements; index++) {
        ok = (line = s_resp_expect (self, '$', "BLMPOP")) != NULL;
        long size = ok ? atol (line + 1) : -1;
        ok = ok && size >= 0 && s_resp_skip (self, (size_t) size + 2);
        if (size == 0)
            *end = true;
        else
            (*count)++;
    }
    if (!ok)
        fprintf (stderr, "bench: redis-reader: a BLMPOP reply it cannot parse\n");
    return ok;
}

static int
c_redis_reader (char **args)       //  HOST:PORT
{
    char blmpop [256];
    int size = snprintf (blmpop, sizeof blmpop,
                         "*7\r\n$6\r\nBLMPOP\r\n$%zu\r\n%s\r\n$1\r\n1\r\n$%zu\r\n%s\r\n"
                         "$4\r\nLEFT\r\n$5\r\nCOUNT\r\n$%d\r\n%d\r\n",
                         strlen (REDIS_TIMEOUT), REDIS_TIMEOUT, strlen (REDIS_KEY), REDIS_KEY,
                         snprintf (NULL, 0, "%d", REDIS_VALUES), REDIS_VALUES);
    resp_t *resp = s_resp_connect (args [0], "redis-reader");
    bool ok = resp && s_resp_ping (resp);
    printf ("%s\n", ok ? "ready" : "failed");
    fflush (stdout);
    if (!ok) {
        s_resp_destroy (&resp);
        return 1;
    }
    for (int index = 0; ok && index < REDIS_RDEPTH; index++)
        ok = s_resp_send (resp, blmpop, (size_t) size);
    long count = 0;
    bool end = false;
    double last = 0, idle_since = now_s ();
    while (ok && !end) {
        bool got = false;
        long before = count;
        ok = s_blmpop_reply (resp, &count, &end, &got);
        if (count > before)
            last = now_s ();
        if (got)
            idle_since = now_s ();
        else
        if (now_s () - idle_since > 2 * WAIT_LIMIT) {
            //  Only null replies: the writer is gone
            fprintf (stderr, "bench: redis-reader: the list stayed empty for %.0f s\n",
                     2 * WAIT_LIMIT);
            ok = false;
        }
        //  The BLMPOPs still in flight when the end marker came are dropped with the connection
        if (ok && !end)
            ok = s_resp_send (resp, blmpop, (size_t) size);
    }
    printf ("%ld %.9f %d\n", count, last, ok ? 0 : 1);
    fflush (stdout);
    s_resp_destroy (&resp);
    return ok ? 0 : 1;
}

//  A tcp port on 127.0.0.1 free a moment ago: redis-server takes its port as a number, not
//  as "any". Another program may take it in between; then redis-server fails to listen and
//  says so, and the baseline shows n/a.
static int
s_free_port (void)
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    socklen_t len = sizeof addr;
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int port = fd != -1 && bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0
            && getsockname (fd, (struct sockaddr *) &addr, &len) == 0 ? ntohs (addr.sin_port) : -1;
    if (fd != -1)
        close (fd);
    return port;
}

//  Three processes: redis-server on tcp 127.0.0.1 (no persistence), a writer and a reader.
static double
m_proc_redis (const spec_t *spec)
{
    char server [4200], port [16], endpoint [32], items [24], tmax [24];
    if (!s_find_program ("redis-server", "SLUICE_REDIS_BIN", server, sizeof server)) {
        g_skip = "Redis baseline skipped: no redis-server on PATH or at $SLUICE_REDIS_BIN "
                 "(make bench installs it)";
        return NAN;
    }
    int free_port = s_free_port ();
    if (free_port <= 0) {
        g_skip = "Redis baseline failed: no free tcp port on 127.0.0.1";
        return NAN;
    }
    snprintf (port, sizeof port, "%d", free_port);
    snprintf (endpoint, sizeof endpoint, "127.0.0.1:%d", free_port);
    snprintf (items, sizeof items, "%ld", spec->items);
    snprintf (tmax, sizeof tmax, "%g", g.tmax);
    double rate = s_proc_run (
        ARGV (server, "--port", port, "--bind", "127.0.0.1", "--protected-mode", "no",
              "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", ""),
        "Ready to accept connections", endpoint,
        ARGV (g.self_exe, "--child", "redis-writer", "@", items, tmax),
        ARGV (g.self_exe, "--child", "redis-reader", "@"));
    if (isnan (rate))
        g_skip = "Redis baseline failed: see bench's messages above the table";
    return rate;
}

// ---------------------------------------------------------------------------------------------
//  Parked waiters: DEALERs in a few threads, each sends one request, then all wait for their
//  reply; a reply's arrival time is taken on an epoll of the sockets' ZMQ_FDs (zmq_poll over
//  hundreds of sockets would cost more than what is measured).

typedef struct {
    const char *endpoint;
    int count;                   //  DEALERs in this thread
    uint8_t command;
    uint32_t req_count;          //  header count field
    const char *body;            //  body frame, or NULL
    pthread_barrier_t *sent;     //  every request is on its way
    double last;                 //  arrival of the last reply
    int received, failed;
} park_arg_t;

static bool
s_park_take (void *sock, park_arg_t *arg)
{
    int events = 0;
    size_t len = sizeof events;
    if (zmq_getsockopt (sock, ZMQ_EVENTS, &events, &len) == -1 || !(events & ZMQ_POLLIN))
        return false;
    uint8_t header [SLUICE_HEADER_SIZE] = { 0 };
    int more = 1, part = 0;
    while (more) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, sock, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&msg);
            break;
        }
        if (part++ == 0 && zmq_msg_size (&msg) >= SLUICE_HEADER_SIZE)
            memcpy (header, zmq_msg_data (&msg), SLUICE_HEADER_SIZE);
        more = zmq_msg_more (&msg);
        zmq_msg_close (&msg);
    }
    arg->last = now_s ();
    arg->received++;
    if (header [3] != SLUICE_OK)
        arg->failed++;
    return true;
}

static void *
s_park_thread (void *varg)
{
    park_arg_t *arg = (park_arg_t *) varg;
    zsock_t **socks = calloc ((size_t) arg->count, sizeof *socks);
    bool *done = calloc ((size_t) arg->count, sizeof *done);
    int epoll = epoll_create1 (0);
    uint64_t id = ((uint64_t) getpid () << 32) | (uint64_t) rand ();
    for (int index = 0; index < arg->count; index++) {
        socks [index] = zsock_new_dealer (arg->endpoint);
        if (!socks [index]) {
            done [index] = true;
            arg->failed++;
            continue;
        }
        void *sock = zsock_resolve (socks [index]);
        uint8_t header [SLUICE_HEADER_SIZE];
        s_header (header, arg->command, id++, arg->req_count);
        zmq_send (sock, header, sizeof header, arg->body ? ZMQ_SNDMORE : 0);
        if (arg->body)
            zmq_send (sock, arg->body, strlen (arg->body), 0);
        int fd;
        size_t len = sizeof fd;
        zmq_getsockopt (sock, ZMQ_FD, &fd, &len);
        struct epoll_event event = { .events = EPOLLIN, .data.u32 = (uint32_t) index };
        epoll_ctl (epoll, EPOLL_CTL_ADD, fd, &event);
        //  Reading ZMQ_EVENTS arms the fd for the reply's arrival
        if (s_park_take (sock, arg))
            done [index] = true;
    }
    pthread_barrier_wait (arg->sent);
    double deadline = now_s () + WAIT_LIMIT;
    struct epoll_event events [64];
    while (arg->received + arg->failed < arg->count && now_s () < deadline) {
        int ready = epoll_wait (epoll, events, 64, 10);
        if (ready == 0) {
            //  Safety sweep after 10 ms without events; arrivals are timed when found
            for (int index = 0; index < arg->count; index++)
                if (!done [index] && s_park_take (zsock_resolve (socks [index]), arg))
                    done [index] = true;
            continue;
        }
        for (int event = 0; event < ready; event++) {
            uint32_t index = events [event].data.u32;
            if (!done [index] && s_park_take (zsock_resolve (socks [index]), arg))
                done [index] = true;
        }
    }
    close (epoll);
    for (int index = 0; index < arg->count; index++)
        zsock_destroy (&socks [index]);
    free (socks);
    free (done);
    return NULL;
}

typedef struct {
    park_arg_t args [PARK_THREADS];
    pthread_t threads [PARK_THREADS];
    pthread_barrier_t sent;
} park_t;

static void
s_park_start (park_t *park, const char *endpoint, int total, uint8_t command, uint32_t count,
              const char *body)
{
    pthread_barrier_init (&park->sent, NULL, PARK_THREADS + 1);
    for (int index = 0; index < PARK_THREADS; index++) {
        park->args [index] = (park_arg_t) {
            endpoint, total / PARK_THREADS + (index < total % PARK_THREADS),
            command, count, body, &park->sent, 0, 0, 0 };
        pthread_create (&park->threads [index], NULL, s_park_thread, &park->args [index]);
    }
    pthread_barrier_wait (&park->sent);
}

//  Joins the threads; returns the last arrival, or NAN when a reply failed or is missing.
static double
s_park_finish (park_t *park, int total, const char *what)
{
    double last = 0;
    int received = 0, failed = 0;
    for (int index = 0; index < PARK_THREADS; index++) {
        pthread_join (park->threads [index], NULL);
        received += park->args [index].received;
        failed += park->args [index].failed;
        if (park->args [index].last > last)
            last = park->args [index].last;
    }
    pthread_barrier_destroy (&park->sent);
    if (received != total || failed) {
        fprintf (stderr, "bench: %s: %d of %d replies, %d failed\n", what, received, total, failed);
        return NAN;
    }
    return last;
}

//  Baseline: a raw ROUTER holds `parked` requests, then answers them all.
static double
m_raw_park (const spec_t *spec)
{
    char endpoint [128];
    zsock_t *router = s_bound (ZMQ_ROUTER, "inproc", endpoint, sizeof endpoint);
    if (!router)
        return NAN;
    void *sock = zsock_resolve (router);
    zsock_set_rcvtimeo (router, (int) (WAIT_LIMIT * 1000));
    park_t park;
    s_park_start (&park, endpoint, g.parked, SLUICE_CMD_READ, 1, NULL);
    zmq_msg_t *ids = calloc ((size_t) g.parked, sizeof *ids);
    int held = 0;
    for (; held < g.parked; held++) {
        zmq_msg_init (&ids [held]);
        if (zmq_msg_recv (&ids [held], sock, 0) == -1) {
            zmq_msg_close (&ids [held]);
            break;
        }
        int more = 1;
        while (more) {
            zmq_msg_t part;
            zmq_msg_init (&part);
            zmq_msg_recv (&part, sock, 0);
            more = zmq_msg_more (&part);
            zmq_msg_close (&part);
        }
    }
    uint8_t header [SLUICE_HEADER_SIZE];
    s_header (header, SLUICE_CMD_READ, 0, 1);
    double start = now_s ();
    for (int index = 0; index < held; index++) {
        zmq_msg_send (&ids [index], sock, ZMQ_SNDMORE);
        zmq_send (sock, header, sizeof header, ZMQ_SNDMORE);
        zmq_send (sock, "", 0, 0);
    }
    double last = s_park_finish (&park, g.parked, "raw ROUTER");
    free (ids);
    zsock_destroy (&router);
    return (last - start) * 1e3;
}

//  sluice: `parked` READs park in an empty buffer; time from sluice_stream_close to the last
//  end-of-stream reply.
static double
m_sluice_close (const spec_t *spec)
{
    char endpoint [256];
    sluice_buffer_t *buffer = s_buffer ("inproc", spec->capacity, endpoint, sizeof endpoint);
    if (!buffer)
        return NAN;
    sluice_stream_t *stream = sluice_stream_new (endpoint);
    park_t park;
    s_park_start (&park, endpoint, g.parked, SLUICE_CMD_READ, 1, NULL);
    double deadline = now_s () + WAIT_LIMIT;
    sluice_buffer_status_t status = { 0 };
    while (now_s () < deadline
       && sluice_stream_status (stream, &status) == SLUICE_OK
       && status.parked_readers < (size_t) g.parked)
        zclock_sleep (1);
    double start = now_s ();
    sluice_err_t rc = sluice_stream_close (stream);
    double last = s_park_finish (&park, g.parked, "sluice close");
    sluice_stream_destroy (&stream);
    sluice_buffer_destroy (&buffer);
    return rc == SLUICE_OK ? (last - start) * 1e3 : NAN;
}

// ---------------------------------------------------------------------------------------------
//  Model server: `parked` requests park during the load; time from the end of the load
//  (READY) to the last response. The load waits for our signal, so every request is parked
//  first; inference takes no time.

typedef struct {
    int go [2];                  //  pipe: written when every request is parked
    _Atomic double ready;        //  when the load returned
} bm_model_t;

static sluice_err_t
s_bm_load (sluice_model_ctx_t *ctx, void *config, void **model, char *reason, size_t size)
{
    bm_model_t *self = (bm_model_t *) config;
    if (sluice_model_wait (ctx, self->go [0], (int) (WAIT_LIMIT * 1000)) < 0) {
        snprintf (reason, size, "cancelled");
        return SLUICE_ESHUTDOWN;
    }
    *model = NULL;
    atomic_store (&self->ready, now_s ());
    return SLUICE_OK;
}

static sluice_err_t
s_bm_infer (sluice_model_ctx_t *ctx, void *config, void *model, const void *payload,
            size_t size, char **response, size_t *response_size)
{
    *response = strdup ("ok");
    *response_size = 2;
    return *response ? SLUICE_OK : SLUICE_ENOMEM;
}

static double
m_model_ready (const spec_t *spec)
{
    bm_model_t model = { .ready = 0 };
    if (pipe (model.go) == -1)
        return NAN;
    sluice_model_iface_t iface = { .name = "bench", .config = &model,
                                   .load = s_bm_load, .infer = s_bm_infer };
    char bind [128];
    s_inproc (bind, sizeof bind, "model");
    sluice_model_server_opts_t opts = { .endpoint = bind, .model = &iface, .workers = 16 };
    sluice_err_t err;
    sluice_model_server_t *server = sluice_model_server_new (&opts, &err);
    double result = NAN;
    if (server) {
        const char *endpoint = sluice_model_server_endpoint (server);
        sluice_model_client_t *client = sluice_model_client_new (endpoint);
        park_t park;
        s_park_start (&park, endpoint, g.parked, SLUICE_CMD_REQUEST, 0, "bench");
        double deadline = now_s () + WAIT_LIMIT;
        sluice_model_status_t status = { 0 };
        while (now_s () < deadline
           && sluice_model_client_status (client, &status) == SLUICE_OK
           && status.parked < (uint64_t) g.parked)
            zclock_sleep (1);
        if (write (model.go [1], "g", 1) != 1)
            fprintf (stderr, "bench: model: cannot signal the load\n");
        double last = s_park_finish (&park, g.parked, "model server");
        double ready = atomic_load (&model.ready);
        if (ready > 0 && !isnan (last))
            result = (last - ready) * 1e3;
        sluice_model_client_destroy (&client);
        sluice_model_server_destroy (&server);
    }
    else
        fprintf (stderr, "bench: sluice_model_server_new: %s\n", sluice_strerror (err));
    close (model.go [0]);
    close (model.go [1]);
    return result;
}

// ---------------------------------------------------------------------------------------------
//  Memory: each figure comes from a fresh child process (the peak of one process says nothing
//  after another measurement ran in it). The child prints the growth of its peak RSS, in KB.

#define MEM_WAITERS  10000
#define MEM_CHUNKS   100000
#define MEM_DEALERS  100

static long s_mem_base;

static void
s_mem_begin (void)
{
    //  "5" resets VmHWM to the current RSS
    FILE *file = fopen ("/proc/self/clear_refs", "w");
    if (file) {
        fputs ("5", file);
        fclose (file);
    }
    s_mem_base = s_status_kb ("VmRSS:");
}

static int
s_mem_end (void)
{
    long peak = s_status_kb ("VmHWM:");
    printf ("%ld\n", peak - s_mem_base);
    fflush (stdout);
    _exit (0);          //  skip the teardown of thousands of waiters
}

static void
s_send_reads (zsock_t **dealers, int per_dealer)
{
    uint64_t id = 1;
    uint8_t header [SLUICE_HEADER_SIZE];
    for (int round = 0; round < per_dealer; round++)
        for (int index = 0; index < MEM_DEALERS; index++) {
            s_header (header, SLUICE_CMD_READ, id++, 1);
            zmq_send (zsock_resolve (dealers [index]), header, sizeof header, 0);
        }
}

static int
c_waiters (bool raw)
{
    char endpoint [256];
    sluice_buffer_t *buffer = NULL;
    zsock_t *router = NULL;
    sluice_stream_t *stream = NULL;
    sluice_buffer_status_t status;
    if (raw)
        router = s_bound (ZMQ_ROUTER, "inproc", endpoint, sizeof endpoint);
    else {
        buffer = s_buffer ("inproc", 64, endpoint, sizeof endpoint);
        stream = buffer ? sluice_stream_new (endpoint) : NULL;
        if (stream)
            sluice_stream_status (stream, &status);
    }
    if (!router && !stream)
        return 1;
    zsock_t *dealers [MEM_DEALERS];
    for (int index = 0; index < MEM_DEALERS; index++)
        dealers [index] = zsock_new_dealer (endpoint);
    s_mem_begin ();
    s_send_reads (dealers, MEM_WAITERS / MEM_DEALERS);
    if (raw) {
        //  The least a deferring server keeps: each request's identity and header messages
        zmq_msg_t *held = calloc (2 * MEM_WAITERS, sizeof *held);
        void *sock = zsock_resolve (router);
        for (int index = 0; index < 2 * MEM_WAITERS; index++) {
            zmq_msg_init (&held [index]);
            zmq_msg_recv (&held [index], sock, 0);
        }
    }
    else {
        double deadline = now_s () + WAIT_LIMIT;
        while (sluice_stream_status (stream, &status) == SLUICE_OK
           && status.parked_readers < MEM_WAITERS && now_s () < deadline)
            zclock_sleep (1);
        if (status.parked_readers < MEM_WAITERS)
            return 1;
    }
    return s_mem_end ();
}

static int
c_chunks_sluice (void)
{
    char endpoint [256];
    sluice_buffer_t *buffer = s_buffer ("inproc", MEM_CHUNKS, endpoint, sizeof endpoint);
    sluice_stream_t *stream = buffer ? sluice_stream_new (endpoint) : NULL;
    sluice_buffer_status_t status;
    if (!stream || sluice_stream_status (stream, &status) != SLUICE_OK)
        return 1;
    s_set_window (stream, 256);
    sluice_stream_set_write_batch (stream, 256);
    uint8_t data [CHUNK] = { 1 };
    s_mem_begin ();
    for (int index = 0; index < MEM_CHUNKS; index++)
        if (sluice_stream_write (stream, data, CHUNK, false) != SLUICE_OK)
            return 1;
    if (s_flush (stream) != SLUICE_OK || sluice_stream_status (stream, &status) != SLUICE_OK
    ||  status.queued != MEM_CHUNKS)
        return 1;
    return s_mem_end ();
}

static int
c_chunks_condvar (void)
{
    s_mem_begin ();
    cv_buffer_t cv;
    cv_init (&cv, MEM_CHUNKS);
    uint8_t data [CHUNK] = { 1 };
    for (int index = 0; index < MEM_CHUNKS; index++)
        cv_put (&cv, data);
    return s_mem_end ();
}

static int
c_chunks_zmq (void)
{
    char endpoint [128];
    s_inproc (endpoint, sizeof endpoint, "mem");
    zsock_t *pull = zsock_new (ZMQ_PULL);
    zsock_t *push = zsock_new (ZMQ_PUSH);
    zsock_set_rcvhwm (pull, 0);
    zsock_set_sndhwm (push, 0);
    if (zsock_bind (pull, "%s", endpoint) == -1 || zsock_connect (push, "%s", endpoint) == -1)
        return 1;
    uint8_t data [CHUNK] = { 1 };
    s_mem_begin ();
    for (int index = 0; index < MEM_CHUNKS; index++)
        if (zmq_send (zsock_resolve (push), data, CHUNK, ZMQ_DONTWAIT) == -1)
            return 1;
    return s_mem_end ();
}

static int
s_child (const char *mode)
{
    if (streq (mode, "waiters-sluice"))  return c_waiters (false);
    if (streq (mode, "waiters-raw"))     return c_waiters (true);
    if (streq (mode, "chunks-sluice"))   return c_chunks_sluice ();
    if (streq (mode, "chunks-condvar"))  return c_chunks_condvar ();
    if (streq (mode, "chunks-zmq"))      return c_chunks_zmq ();
    return 2;
}

static int c_instr (char **args);

//  The children that take arguments (the cross-process rows, --instr).
static int
s_child_args (const char *mode, char **args, int nargs)
{
    if (streq (mode, "proc-writer") && nargs == 6) return c_proc_writer (args);
    if (streq (mode, "proc-reader") && nargs == 3) return c_proc_reader (args);
    if (streq (mode, "proc-pull") && nargs == 0)   return c_proc_pull ();
    if (streq (mode, "proc-push") && nargs == 3)   return c_proc_push (args);
    if (streq (mode, "redis-writer") && nargs == 3) return c_redis_writer (args);
    if (streq (mode, "redis-reader") && nargs == 1) return c_redis_reader (args);
    if (streq (mode, "instr") && nargs == 5)       return c_instr (args);
    return s_child (mode);
}

static double
m_memory (const spec_t *spec)
{
    char command [4200];
    snprintf (command, sizeof command, "'%s' --child %s", g.self_exe, spec->child);
    FILE *child = popen (command, "r");
    if (!child)
        return NAN;
    long kb = -1;
    if (fscanf (child, "%ld", &kb) != 1)
        kb = -1;
    int status = pclose (child);
    return status == 0 && kb >= 0 ? (double) kb : NAN;
}

// ---------------------------------------------------------------------------------------------
//  Rows

typedef struct {
    const char *name;
    measure_fn fn;
    spec_t spec;
} probe_t;

typedef struct {
    double runs [REPS_MAX];
    double cpu [REPS_MAX];       //  CPU µs (all threads, user + sys) per item, or NAN
    int count;
    double median, cpu_median;
} figure_t;

typedef struct {
    const char *name;
    const char *unit;            //  "items/s", "ms", "KB"
    bool lower_better;
    probe_t sluice;
    probe_t base [BASES_MAX];
    int target_base;             //  index of the baseline the target is against; -1: none
    double target;               //  ratio bound: >= target, or <= when lower_better
    const char *note;            //  set when the run was not what the row says
    bool tune;                   //  pipelined: pick window / batches from a grid first
    char settings [96];          //  what tuning chose, shown under the row
    int tried;                   //  grid points tried
    bool ran;
    figure_t fs, fb [BASES_MAX];
} row_t;

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return isnan (x) ? 1 : isnan (y) ? -1 : x < y ? -1 : x > y ? 1 : 0;
}

static double
s_median_of (const double *values, int count)
{
    double sorted [REPS_MAX];
    int valid = 0;
    for (int index = 0; index < count; index++)
        if (!isnan (values [index]))
            sorted [valid++] = values [index];
    qsort (sorted, (size_t) valid, sizeof *sorted, s_cmp_double);
    return valid == 0 ? NAN
         : valid % 2 ? sorted [valid / 2]
         : (sorted [valid / 2 - 1] + sorted [valid / 2]) / 2;
}

static void
s_median (figure_t *figure)
{
    figure->median = s_median_of (figure->runs, figure->count);
    figure->cpu_median = s_median_of (figure->cpu, figure->count);
}

//  CPU time of this process and of its children that ended (the cross-process rows reap
//  theirs before they return), µs.
static double
s_cpu_us (void)
{
    double total = 0;
    int whose [] = { RUSAGE_SELF, RUSAGE_CHILDREN };
    for (int index = 0; index < 2; index++) {
        struct rusage usage;
        getrusage (whose [index], &usage);
        total += (double) (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6
               + (double) (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
    }
    return total;
}

//  The grid a pipelined row's settings are chosen from: writes in flight, chunks per WRITE,
//  chunks per READ (batches are capped at the capacity; duplicates are skipped).
static const size_t s_windows [] = { 2, 4, 16 };
static const size_t s_wbatches [] = { 16, 64, 256, 1024 };
static const size_t s_rbatches [] = { 16, 64, 256, 1024 };
#define GRID_LEN(array) (sizeof array / sizeof array [0])

static size_t
s_cap (size_t value, size_t capacity)
{
    return value < capacity ? value : capacity;
}

#define GRID_MAX  (GRID_LEN (s_windows) * GRID_LEN (s_wbatches) * GRID_LEN (s_rbatches))
#define GRID_RERUN 3             //  the leaders measured once more: one short run is noisy

//  Sets a pipelined row's window and batches: the ones given (--window, --wbatch, --rbatch),
//  else the best of the grid: one short run at each point, then the GRID_RERUN fastest once
//  more, and the best mean of two wins.
static void
s_tune (row_t *row)
{
    spec_t *spec = &row->sluice.spec;
    size_t cap = spec->capacity;
    if (g.window) {
        spec->window = g.window;
        spec->wbatch = s_cap (g.wbatch ? g.wbatch : 1, cap);
        spec->batch = g.rbatch ? g.rbatch : 1;
        snprintf (row->settings, sizeof row->settings,
                  "  given: window %zu, write batch %zu, read batch %zu",
                  spec->window, spec->wbatch, spec->batch);
        return;
    }
    double saved = g.tmax;
    g.tmax = g.quick ? 0.03 : 0.1;
    spec_t trials [GRID_MAX];
    double rates [GRID_MAX];
    int count = 0;
    for (size_t w = 0; w < GRID_LEN (s_windows); w++)
        for (size_t wb = 0; wb < GRID_LEN (s_wbatches); wb++)
            for (size_t rb = 0; rb < GRID_LEN (s_rbatches); rb++) {
                //  A batch above the capacity is the capacity: tried once already
                if ((wb > 0 && s_wbatches [wb - 1] >= cap) || (rb > 0 && s_rbatches [rb - 1] >= cap))
                    continue;
                spec_t *trial = &trials [count];
                *trial = *spec;
                trial->window = s_windows [w];
                trial->wbatch = s_cap (s_wbatches [wb], cap);
                trial->batch = s_cap (s_rbatches [rb], cap);
                double rate = row->sluice.fn (trial);
                rates [count++] = isnan (rate) ? 0 : rate;
            }
    row->tried = count;
    //  The leaders again (a selection sort of the first GRID_RERUN places)
    double best = -1;
    for (int place = 0; place < GRID_RERUN && place < count; place++) {
        int top = place;
        for (int index = place + 1; index < count; index++)
            if (rates [index] > rates [top])
                top = index;
        spec_t swap_spec = trials [place];
        trials [place] = trials [top];
        trials [top] = swap_spec;
        double swap_rate = rates [place];
        rates [place] = rates [top];
        rates [top] = swap_rate;
        double rate = row->sluice.fn (&trials [place]);
        double mean = (rates [place] + (isnan (rate) ? 0 : rate)) / 2;
        if (mean > best) {
            best = mean;
            *spec = trials [place];
        }
    }
    g.tmax = saved;
    if (best <= 0)
        snprintf (row->settings, sizeof row->settings, "  no point of the grid ran");
    else
        snprintf (row->settings, sizeof row->settings,
                  "  best of %d: window %zu, write batch %zu, read batch %zu",
                  row->tried, spec->window, spec->wbatch, spec->batch);
}

//  One run of a probe. CPU per item is taken around the whole run (setup included), which is
//  far less sensitive to other load on the machine than a rate is.
static void
s_measure (figure_t *figure, const probe_t *probe)
{
    g_items = 0;
    g_cpu_child = NAN;
    double cpu = s_cpu_us ();
    double value = probe->fn (&probe->spec);
    cpu = s_cpu_us () - cpu;
    if (!isnan (g_cpu_child))
        cpu = g_cpu_child;       //  the child's own figure, without its interpreter's start
    figure->cpu [figure->count] = g_items > 0 && !isnan (value) ? cpu / (double) g_items : NAN;
    figure->runs [figure->count++] = value;
}

static void
s_run_row (row_t *row)
{
    int nbase = 0;
    while (nbase < BASES_MAX && row->base [nbase].fn)
        nbase++;
    row->ran = true;
    atomic_store (&g_no_window, false);
    atomic_store (&g_no_batch, false);
    g_skip = NULL;
    double started = now_s ();
    if (row->tune && !g.no_sluice)
        s_tune (row);
    for (int rep = 0; rep < g.reps; rep++) {
        for (int index = 0; index < nbase && !g.no_baselines; index++)
            s_measure (&row->fb [index], &row->base [index]);
        if (!g.no_sluice)
            s_measure (&row->fs, &row->sluice);
    }
    s_median (&row->fs);
    for (int index = 0; index < nbase; index++)
        s_median (&row->fb [index]);
    if ((row->sluice.spec.window > 1 || row->sluice.spec.child)
    &&  atomic_load (&g_no_window))
        row->note = "window API unavailable: writes ran synchronously";
    else
    if (row->sluice.spec.batch > 1 && atomic_load (&g_no_batch))
        row->note = "batch API unavailable: reads ran one at a time";
    else
    if (g_skip)
        row->note = g_skip;
    fprintf (stderr, "  %-44s %5.1f s\n", row->name, now_s () - started);
}

static double
s_ratio (const row_t *row, int base)
{
    return row->fs.median / row->fb [base].median;
}

static const char *
s_verdict (const row_t *row)
{
    if (row->target_base < 0)
        return "";
    double ratio = s_ratio (row, row->target_base);
    if (isnan (ratio))
        return "n/a";
    return (row->lower_better ? ratio <= row->target : ratio >= row->target) ? "PASS" : "MISS";
}

// ---------------------------------------------------------------------------------------------
//  Output

static void
s_fmt (char *out, size_t size, double value, const char *unit)
{
    if (isnan (value))
        snprintf (out, size, "n/a");
    else
    if (streq (unit, "ms"))
        snprintf (out, size, "%.2f ms", value);
    else
    if (streq (unit, "KB"))
        snprintf (out, size, value >= 10240 ? "%.1f MB" : "%.0f KB",
                  value >= 10240 ? value / 1024 : value);
    else
    if (value >= 1e6)
        snprintf (out, size, "%.2f M/s", value / 1e6);
    else
    if (value >= 1e3)
        snprintf (out, size, "%.1f k/s", value / 1e3);
    else
        snprintf (out, size, "%.0f /s", value);
}

//  Columns the first `len` bytes of text take (UTF-8 aware).
static int
s_columns (const char *text, size_t len)
{
    int columns = 0;
    for (size_t index = 0; index < len && text [index]; index++)
        if ((text [index] & 0xC0) != 0x80)
            columns++;
    return columns;
}

//  Print s left-aligned in `width` columns (UTF-8 aware).
static void
s_pad (const char *text, int width)
{
    fputs (text, stdout);
    for (int columns = s_columns (text, strlen (text)); columns < width; columns++)
        putchar (' ');
}

//  Where a name too wide for its column (`width` columns, one kept free) is cut: the last
//  space that leaves the first part within the column; its length when it fits or has none.
static size_t
s_name_cut (const char *name, int width)
{
    size_t len = strlen (name), cut = len;
    if (s_columns (name, len) < width)
        return len;
    for (size_t index = 0; index < len; index++)
        if (name [index] == ' ' && s_columns (name, index) < width)
            cut = index;
    return cut;
}

static void
s_cpu_cell (double cpu)
{
    char cell [32] = "";
    if (!isnan (cpu))
        snprintf (cell, sizeof cell, "%.2f", cpu);
    s_pad (cell, 8);
}

static void
s_print_table (row_t *rows, int count)
{
    char line [160];
    printf ("\n");
    s_pad ("row", 42); s_pad ("sluice", 11); s_pad ("µs/item", 8);
    s_pad ("baseline", 36); s_pad ("value", 11); s_pad ("µs/item", 8);
    printf ("ratio  target\n");
    for (int index = 0; index < 42 + 11 + 8 + 36 + 11 + 8 + 20; index++)
        putchar ('-');
    printf ("\n");
    for (int index = 0; index < count; index++) {
        row_t *row = &rows [index];
        if (!row->ran)
            continue;
        for (int base = 0; base < BASES_MAX && row->base [base].fn; base++) {
            if (base == 0) {
                s_pad (row->name, 42);
                s_fmt (line, sizeof line, row->fs.median, row->unit);
                s_pad (line, 11);
                s_cpu_cell (row->fs.cpu_median);
            }
            else
            if (base == 1 && row->settings [0])
                s_pad (row->settings, 42 + 11 + 8);
            else
                s_pad ("", 42 + 11 + 8);
            //  A long baseline name goes on two lines, the rest under its first part
            const char *name = row->base [base].name;
            size_t cut = s_name_cut (name, 36);
            snprintf (line, sizeof line, "%.*s", (int) cut, name);
            s_pad (line, 36);
            s_fmt (line, sizeof line, row->fb [base].median, row->unit);
            s_pad (line, 11);
            s_cpu_cell (row->fb [base].cpu_median);
            double ratio = s_ratio (row, base);
            if (isnan (ratio))
                snprintf (line, sizeof line, "n/a");
            else
                snprintf (line, sizeof line, "%.2f", ratio);
            s_pad (line, 7);
            if (base == row->target_base)
                printf ("%s %.1f %s", row->lower_better ? "<=" : ">=", row->target,
                        s_verdict (row));
            printf ("\n");
            if (name [cut])
                printf ("%61s%s\n", "", name + cut + 1);
        }
        if (row->settings [0] && !row->base [1].fn)
            printf ("%s\n", row->settings);
        if (row->note)
            printf ("%61s(%s)\n", "", row->note);
    }
}

static void
s_json_figure (FILE *out, const figure_t *figure)
{
    fprintf (out, "{\"median\": ");
    fprintf (out, isnan (figure->median) ? "null" : "%.6g", figure->median);
    fprintf (out, ", \"runs\": [");
    for (int index = 0; index < figure->count; index++) {
        fprintf (out, index ? ", " : "");
        fprintf (out, isnan (figure->runs [index]) ? "null" : "%.6g", figure->runs [index]);
    }
    fprintf (out, "], \"cpu_us_per_item\": ");
    fprintf (out, isnan (figure->cpu_median) ? "null" : "%.4g", figure->cpu_median);
    fprintf (out, "}");
}

static double g_load_start, g_load_end, g_steal;

static void
s_write_json (row_t *rows, int count, const char *machine, double elapsed)
{
    FILE *out = fopen (g.json, "w");
    if (!out) {
        fprintf (stderr, "bench: cannot write %s: %s\n", g.json, strerror (errno));
        return;
    }
    fprintf (out, "{\n  \"machine\": \"%s\",\n  \"quick\": %s,\n  \"reps\": %d,\n"
             "  \"tmax_s\": %g,\n  \"elapsed_s\": %.1f,\n  \"chunk_bytes\": %d,\n"
             "  \"loadavg_start\": %.2f,\n  \"loadavg_end\": %.2f,\n  \"steal_pct\": %.1f,\n"
             "  \"rows\": [",
             machine, g.quick ? "true" : "false", g.reps, g.tmax, elapsed, CHUNK,
             g_load_start, g_load_end, isnan (g_steal) ? -1.0 : g_steal);
    bool first = true;
    for (int index = 0; index < count; index++) {
        row_t *row = &rows [index];
        if (!row->ran)
            continue;
        fprintf (out, "%s\n    {\"name\": \"%s\", \"unit\": \"%s\", \"sluice\": ",
                 first ? "" : ",", row->name, row->unit);
        first = false;
        s_json_figure (out, &row->fs);
        fprintf (out, ",\n     \"baselines\": [");
        for (int base = 0; base < BASES_MAX && row->base [base].fn; base++) {
            fprintf (out, "%s{\"name\": \"%s\", \"figure\": ", base ? ", " : "",
                     row->base [base].name);
            s_json_figure (out, &row->fb [base]);
            double ratio = s_ratio (row, base);
            fprintf (out, isnan (ratio) ? ", \"ratio\": null" : ", \"ratio\": %.4f", ratio);
            //  Each run's ratio to the baseline measured just before it
            fprintf (out, ", \"paired_ratios\": [");
            for (int rep = 0; rep < row->fs.count && rep < row->fb [base].count; rep++) {
                double paired = row->fs.runs [rep] / row->fb [base].runs [rep];
                fprintf (out, rep ? ", " : "");
                fprintf (out, isnan (paired) ? "null" : "%.4f", paired);
            }
            fprintf (out, "]}");
        }
        fprintf (out, "]");
        if (row->target_base >= 0)
            fprintf (out, ",\n     \"target\": {\"baseline\": \"%s\", \"op\": \"%s\", "
                     "\"ratio\": %g, \"verdict\": \"%s\"}",
                     row->base [row->target_base].name, row->lower_better ? "<=" : ">=",
                     row->target, s_verdict (row));
        if (row->note)
            fprintf (out, ",\n     \"note\": \"%s\"", row->note);
        if (row->settings [0])
            fprintf (out, ",\n     \"settings\": {\"window\": %zu, \"write_batch\": %zu, "
                     "\"read_batch\": %zu, \"grid_points_tried\": %d}",
                     row->sluice.spec.window, row->sluice.spec.wbatch, row->sluice.spec.batch,
                     row->tried);
        fprintf (out, "}");
    }
    fprintf (out, "\n  ]\n}\n");
    fclose (out);
}

//  Share of CPU time the host took from this VM (steal) since `before`, in percent; with
//  before NULL, fills `now` only. Reads the first line of /proc/stat.
static double
s_steal (const long long *before, long long *now)
{
    FILE *file = fopen ("/proc/stat", "r");
    if (!file)
        return NAN;
    int got = fscanf (file, "cpu %lld %lld %lld %lld %lld %lld %lld %lld",
                      &now [0], &now [1], &now [2], &now [3], &now [4], &now [5], &now [6],
                      &now [7]);
    fclose (file);
    if (got != 8 || !before)
        return NAN;
    long long total = 0;
    for (int index = 0; index < 8; index++)
        total += now [index] - before [index];
    return total > 0 ? 100.0 * (double) (now [7] - before [7]) / (double) total : NAN;
}

//  The 1-minute load average: other work on the machine makes every figure less reliable.
static double
s_loadavg (void)
{
    double load = -1;
    FILE *file = fopen ("/proc/loadavg", "r");
    if (file) {
        if (fscanf (file, "%lf", &load) != 1)
            load = -1;
        fclose (file);
    }
    return load;
}

static void
s_machine (char *out, size_t size)
{
    char model [128] = "?";
    FILE *file = fopen ("/proc/cpuinfo", "r");
    if (file) {
        char line [256];
        while (fgets (line, sizeof line, file))
            if (strncmp (line, "model name", 10) == 0) {
                char *colon = strchr (line, ':');
                if (colon) {
                    snprintf (model, sizeof model, "%s", colon + 2);
                    model [strcspn (model, "\n")] = 0;
                }
                break;
            }
        fclose (file);
    }
    struct utsname uts;
    uname (&uts);
    int major, minor, patch;
    zmq_version (&major, &minor, &patch);
    snprintf (out, size, "%ld cores, %s, Linux %s, libzmq %d.%d.%d, czmq %d.%d.%d",
              sysconf (_SC_NPROCESSORS_ONLN), model, uts.release, major, minor, patch,
              CZMQ_VERSION_MAJOR, CZMQ_VERSION_MINOR, CZMQ_VERSION_PATCH);
}

// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
//  bench --instr: instructions per item under callgrind. Each probe runs in a child under
//  valgrind twice, with N and 2N items and no time bound; (I(2N) - I(N)) / N is the marginal
//  cost of an item, with every start-up cost (the process, the zmq context, threads, the
//  buffer) cancelled out. Threads run one at a time under valgrind, so batches may form
//  differently than on two cores: the figure is the work per item, not a rate.

typedef struct {
    const char *name;
    const char *mode;            //  the child's probe
    long n;
    double per_item;             //  marginal instructions per item
    double total [2];            //  instructions at N and 2N
} instr_t;

static bool
s_instr_probe (const char *mode, long items, spec_t *spec)
{
    spec_t pipelined = { "inproc", 1024, 1, 1, 1, 1, items, NULL, 0 };
    if (streq (mode, "sluice-pipelined")) {
        *spec = pipelined;
        spec->window = g.window;
        spec->wbatch = g.wbatch;
        spec->batch = g.rbatch;
    }
    else
    if (streq (mode, "sluice-sync"))
        *spec = (spec_t) { "inproc", 64, 1, 1, 1, 1, items, NULL, 0 };
    else
    if (streq (mode, "raw-rt") || streq (mode, "pushpull"))
        *spec = (spec_t) { "inproc", 0, 1, 1, 1, 1, items, NULL, 0 };
    else
    if (streq (mode, "condvar"))
        *spec = pipelined;
    else
        return false;
    return true;
}

static int
c_instr (char **args)              //  MODE ITEMS WINDOW WBATCH RBATCH
{
    long items = atol (args [1]);
    g.window = (size_t) atol (args [2]);
    g.wbatch = (size_t) atol (args [3]);
    g.rbatch = (size_t) atol (args [4]);
    g.tmax = 1e6;                  //  the count alone bounds the run
    spec_t spec;
    if (!s_instr_probe (args [0], items, &spec))
        return 2;
    measure_fn fn = streq (args [0], "raw-rt") ? m_raw_dealer_router
                  : streq (args [0], "pushpull") ? m_raw_pushpull
                  : streq (args [0], "condvar") ? m_condvar : m_sluice;
    double rate = fn (&spec);
    printf ("%ld\n", g_items);
    return !isnan (rate) && g_items == items ? 0 : 1;
}

//  The total instruction count of a callgrind output file, or NAN.
static double
s_callgrind_total (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NAN;
    char line [256];
    double total = NAN;
    while (fgets (line, sizeof line, file))
        if (strncmp (line, "summary:", 8) == 0 || strncmp (line, "totals:", 7) == 0)
            total = atof (strchr (line, ':') + 1);
    fclose (file);
    return total;
}

static int
s_instr (void)
{
    char valgrind [4200], dir [4200];
    if (!s_find_program ("valgrind", "SLUICE_VALGRIND_BIN", valgrind, sizeof valgrind)) {
        fprintf (stderr, "bench: valgrind not found: `make bench-instr` installs it "
                 "(scripts/deps.sh), or set SLUICE_VALGRIND_BIN\n");
        return 1;
    }
    //  Output files next to the JSON
    const char *slash = strrchr (g.json, '/');
    snprintf (dir, sizeof dir, "%.*s", (int) (slash ? slash - g.json : 1), slash ? g.json : ".");
    //  The pipelined settings: the best of the same grid as `make bench`, measured natively
    row_t pipe = { .name = "1w×1r cap 1024, pipelined", .tune = true,
                   .sluice = { "sluice", m_sluice,
                               { "inproc", 1024, 1, 1, 1, 1, g.pipe_items, NULL, 0 } } };
    s_tune (&pipe);
    g.window = pipe.sluice.spec.window;
    g.wbatch = pipe.sluice.spec.wbatch;
    g.rbatch = pipe.sluice.spec.batch;
    fprintf (stderr, "bench: pipelined settings: %s\n", pipe.settings + 2);
    long k = g.quick ? 1 : 2;
    instr_t probes [] = {
        { "sluice pipelined, cap 1024", "sluice-pipelined", 10000 * k, NAN, { NAN, NAN } },
        { "sluice sync, cap 64 (the seed's API)", "sluice-sync", 2000 * k, NAN, { NAN, NAN } },
        { "raw inproc PUSH→PULL", "pushpull", 50000 * k, NAN, { NAN, NAN } },
        { "condvar buffer cap 1024 1×1", "condvar", 50000 * k, NAN, { NAN, NAN } },
        { "raw DEALER→ROUTER inproc sync", "raw-rt", 2000 * k, NAN, { NAN, NAN } },
    };
    int count = (int) (sizeof probes / sizeof probes [0]);
    double started = now_s ();
    bool failed = false;
    for (int index = 0; index < count; index++) {
        instr_t *probe = &probes [index];
        for (int run = 0; run < 2; run++) {
            char out [4300], log [4300], items [24], window [24], wbatch [24], rbatch [24];
            char outfile [4400], line [64];
            snprintf (out, sizeof out, "%s/callgrind.%s.%d.out", dir, probe->mode, run + 1);
            snprintf (log, sizeof log, "%s/callgrind.%s.%d.log", dir, probe->mode, run + 1);
            snprintf (outfile, sizeof outfile, "--callgrind-out-file=%s", out);
            snprintf (items, sizeof items, "%ld", probe->n * (run + 1));
            snprintf (window, sizeof window, "%zu", g.window);
            snprintf (wbatch, sizeof wbatch, "%zu", g.wbatch);
            snprintf (rbatch, sizeof rbatch, "%zu", g.rbatch);
            unlink (out);
            double t0 = now_s ();
            proc_t proc;
            bool ok = s_proc_start (&proc, ARGV (valgrind, "--tool=callgrind", outfile,
                                                 g.self_exe, "--child", "instr", probe->mode,
                                                 items, window, wbatch, rbatch), false, log)
                   && s_proc_line (&proc, line, sizeof line, now_s () + 600);
            int code = s_proc_end (&proc, ok ? 0 : SIGKILL, now_s () + 600);
            probe->total [run] = ok && code == 0 ? s_callgrind_total (out) : NAN;
            fprintf (stderr, "  %-40s %8s items: %.0f instructions, %.1f s%s\n", probe->name,
                     items, probe->total [run], now_s () - t0,
                     isnan (probe->total [run]) ? " FAILED (see the .log)" : "");
            failed |= isnan (probe->total [run]);
        }
        probe->per_item = (probe->total [1] - probe->total [0]) / (double) probe->n;
    }
    //  Ratios to the raw PUSH->PULL pipe, the condvar buffer and raw round trips
    double pushpull = probes [2].per_item, condvar = probes [3].per_item;
    double roundtrip = probes [4].per_item;
    char machine [512];
    s_machine (machine, sizeof machine);
    printf ("sluice bench --instr: %s\n", machine);
    printf ("callgrind, marginal instructions per item = (I(2N) - I(N)) / N, one process, all "
            "threads; 64-byte chunks\n");
    printf ("pipelined settings: %s\n\n", pipe.settings + 2);
    s_pad ("what", 40); s_pad ("N", 8); s_pad ("instr/item", 12);
    s_pad ("÷ PUSH→PULL", 13); s_pad ("÷ condvar", 11); s_pad ("÷ DEALER→ROUTER", 17);
    printf ("target\n");
    for (int index = 0; index < 40 + 8 + 12 + 13 + 11 + 17 + 34; index++)
        putchar ('-');
    printf ("\n");
    for (int index = 0; index < count; index++) {
        instr_t *probe = &probes [index];
        char cell [64];
        s_pad (probe->name, 40);
        snprintf (cell, sizeof cell, "%ld", probe->n);
        s_pad (cell, 8);
        snprintf (cell, sizeof cell, isnan (probe->per_item) ? "n/a" : "%.0f", probe->per_item);
        s_pad (cell, 12);
        snprintf (cell, sizeof cell, "%.2f", probe->per_item / pushpull);
        s_pad (cell, 13);
        snprintf (cell, sizeof cell, "%.2f", probe->per_item / condvar);
        s_pad (cell, 11);
        snprintf (cell, sizeof cell, "%.2f", probe->per_item / roundtrip);
        s_pad (cell, 17);
        if (index == 0)
            printf ("<= 1.0 × PUSH→PULL %s", probe->per_item <= pushpull ? "PASS" : "MISS");
        if (index == 1)
            printf ("<= 11450 (half of 22,900) %s", probe->per_item <= 11450 ? "PASS" : "MISS");
        printf ("\n");
    }
    printf ("\n%.0f s; callgrind files and logs in %s/\n", now_s () - started, dir);
    FILE *json = fopen (g.json, "w");
    if (json) {
        fprintf (json, "{\n  \"machine\": \"%s\",\n  \"window\": %zu, \"write_batch\": %zu, "
                 "\"read_batch\": %zu,\n  \"rows\": [", machine, g.window, g.wbatch, g.rbatch);
        for (int index = 0; index < count; index++)
            fprintf (json, "%s\n    {\"name\": \"%s\", \"mode\": \"%s\", \"n\": %ld, "
                     "\"instructions\": [%.0f, %.0f], \"per_item\": %.1f}",
                     index ? "," : "", probes [index].name, probes [index].mode, probes [index].n,
                     probes [index].total [0], probes [index].total [1],
                     isnan (probes [index].per_item) ? -1.0 : probes [index].per_item);
        fprintf (json, "\n  ]\n}\n");
        fclose (json);
        printf ("JSON: %s\n", g.json);
    }
    return failed ? 1 : 0;
}

static void
s_usage (void)
{
    fprintf (stderr, "usage: bench [--quick] [--json PATH] [--only PREFIX] [--reps N] [--tmax S]"
             " [--items N] [--window W [--wbatch B] [--rbatch R]] [--sluice-only | --baselines-only]\n"
             "       bench --instr [--quick] [--json PATH]\n");
}

int
main (int argc, char *argv [])
{
    //  The exec trampoline first: nothing of this program may stay in the process it becomes
    if (argc >= 4 && streq (argv [1], "--child") && streq (argv [2], "exec"))
        return c_exec (argv + 3);
    g.reps = 3;
    g.json = "build/bench/results.json";
    const char *child = NULL;
    double tmax = 0;
    long items = 0;
    bool instr = false;
    char **child_args = NULL;
    int child_nargs = 0;
    for (int index = 1; index < argc; index++) {
        const char *arg = argv [index];
        bool has_value = index + 1 < argc;
        if (streq (arg, "--quick"))
            g.quick = true;
        else if (streq (arg, "--sluice-only"))
            g.no_baselines = true;
        else if (streq (arg, "--baselines-only"))
            g.no_sluice = true;
        else if (streq (arg, "--json") && has_value)
            g.json = argv [++index];
        else if (streq (arg, "--only") && has_value)
            g.only = argv [++index];
        else if (streq (arg, "--reps") && has_value)
            g.reps = atoi (argv [++index]);
        else if (streq (arg, "--tmax") && has_value)
            tmax = atof (argv [++index]);
        else if (streq (arg, "--items") && has_value)
            items = atol (argv [++index]);
        else if (streq (arg, "--window") && has_value)
            g.window = (size_t) atol (argv [++index]);
        else if (streq (arg, "--wbatch") && has_value)
            g.wbatch = (size_t) atol (argv [++index]);
        else if (streq (arg, "--rbatch") && has_value)
            g.rbatch = (size_t) atol (argv [++index]);
        else if (streq (arg, "--instr"))
            instr = true;
        else if (streq (arg, "--child") && has_value) {
            //  Everything after the mode is the child's
            child = argv [++index];
            child_args = argv + index + 1;
            child_nargs = argc - index - 1;
            break;
        }
        else {
            s_usage ();
            return 2;
        }
    }
    if (g.reps < 1 || g.reps > REPS_MAX) {
        s_usage ();
        return 2;
    }
    g.tmax = tmax > 0 ? tmax : g.quick ? 0.08 : 0.8;
    g.sync_items = g.quick ? 20000 : 200000;
    g.pipe_items = g.quick ? 1000000 : 10000000;
    g.raw_items = g.quick ? 3000000 : 30000000;
    if (items > 0)
        g.sync_items = g.pipe_items = g.raw_items = items;
    g.parked = 1000;

    //  Before any socket: the parked rows need more than the default 1023
    zsys_set_max_sockets (4096);
    zsys_handler_set (NULL);
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit (RLIMIT_NOFILE, &limit);
    }
    if (child) {
        alarm (streq (child, "instr") ? 900 : 120);
        return s_child_args (child, child_args, child_nargs);
    }

    ssize_t len = readlink ("/proc/self/exe", g.self_exe, sizeof g.self_exe - 1);
    if (len <= 0)
        return 1;
    g.self_exe [len] = 0;
    alarm (g.quick ? 300 : 900);       //  a hang ends the run instead of the machine's day
    if (instr) {
        if (!g.json || streq (g.json, "build/bench/results.json"))
            g.json = "build/instr/instr.json";
        return s_instr ();
    }

    const long S = g.sync_items, P = g.pipe_items, R = g.raw_items;
    #define SYNC(cap)      { "inproc", cap, 1, 1, 1, 1, S, NULL }
    #define RAW_RT(tr)     { "raw DEALER→ROUTER " tr " sync", m_raw_dealer_router, \
                             { tr, 0, 1, 1, 1, 1, S, NULL } }
    #define RAW_WIN(tr, w) { "raw DEALER→ROUTER " tr " window " #w, m_raw_dealer_router, \
                             { tr, 0, w, 1, 1, 1, P, NULL } }
    #define CONDVAR(cap, n)  { "condvar cap " #cap " " #n "×" #n, m_condvar, \
                               { "inproc", cap, 1, 1, n, n, cap > 1 ? P : S, NULL } }
    #define PUSHPULL(tr)   { "raw " tr " PUSH→PULL", m_raw_pushpull, \
                             { tr, 0, 1, 1, 1, 1, R, NULL } }
    #define PYTHON(cap, n) { "Python asyncio original cap " #cap, m_python, \
                             { "inproc", cap, 1, 1, 1, 1, n, NULL } }
    //  Pipelined rows: window and batches are chosen by s_tune; these are placeholders
    #define PIPE(tr, cap, n) { tr, cap, 1, 1, n, n, P, NULL }
    #define NONE           -1      //  no target on this row
    //  Targets: issue 12
    row_t rows [] = {
        { .name = "1w×1r cap 1, sync", .unit = "items/s",
          .sluice = { "sluice", m_sluice, SYNC (1) },
          .base = { RAW_RT ("inproc"), CONDVAR (1, 1), PYTHON (1, S) },
          .target_base = 0, .target = 0.8 },
        { .name = "1w×1r cap 64, sync", .unit = "items/s",
          .sluice = { "sluice", m_sluice, SYNC (64) },
          .base = { RAW_RT ("inproc"), PYTHON (64, S), CONDVAR (64, 1) },
          .target_base = 0, .target = 0.8 },
        { .name = "1w×1r cap 1024, sync", .unit = "items/s",
          .sluice = { "sluice", m_sluice, SYNC (1024) },
          .base = { RAW_RT ("inproc"), CONDVAR (1024, 1) }, .target_base = 0, .target = 0.8 },
        { .name = "4w×4r cap 64, sync", .unit = "items/s",
          .sluice = { "sluice", m_sluice, { "inproc", 64, 1, 1, 4, 4, S, NULL } },
          .base = { CONDVAR (64, 4), RAW_RT ("inproc") }, .target_base = NONE },
        { .name = "1w×1r cap 64, pipelined", .unit = "items/s", .tune = true,
          .sluice = { "sluice", m_sluice, PIPE ("inproc", 64, 1) },
          .base = { CONDVAR (64, 1), PUSHPULL ("inproc"), PYTHON (64, P),
                    RAW_WIN ("inproc", 64) },
          .target_base = 0, .target = 1.0 },
        { .name = "1w×1r cap 1024, pipelined", .unit = "items/s", .tune = true,
          .sluice = { "sluice", m_sluice, PIPE ("inproc", 1024, 1) },
          .base = { PUSHPULL ("inproc"), CONDVAR (1024, 1), RAW_WIN ("inproc", 256) },
          .target_base = 0, .target = 1.0 },
        { .name = "4w×4r cap 64, pipelined", .unit = "items/s", .tune = true,
          .sluice = { "sluice", m_sluice, PIPE ("inproc", 64, 4) },
          .base = { CONDVAR (64, 4) }, .target_base = NONE },
        { .name = "tcp 1w×1r cap 64, sync", .unit = "items/s",
          .sluice = { "sluice", m_sluice, { "tcp", 64, 1, 1, 1, 1, S, NULL } },
          .base = { RAW_RT ("tcp") }, .target_base = 0, .target = 0.8 },
        { .name = "tcp 1w×1r cap 1024, pipelined", .unit = "items/s", .tune = true,
          .sluice = { "sluice", m_sluice, PIPE ("tcp", 1024, 1) },
          .base = { PUSHPULL ("tcp"), RAW_WIN ("tcp", 256) }, .target_base = NONE },
        { .name = "tcp processes, cap 1024, pipelined", .unit = "items/s", .tune = true,
          .sluice = { "sluice", m_proc_sluice, PIPE ("tcp", 1024, 1) },
          .base = { { "raw tcp PUSH→PULL, 2 processes", m_proc_raw,
                      { "tcp", 0, 1, 1, 1, 1, P, NULL } },
                    { "Redis list, 2 processes (RPUSH/BLMPOP pipelined, no backpressure)",
                      m_proc_redis, { "tcp", 0, 1, 1, 1, 1, P, NULL } } },
          .target_base = 0, .target = 1.0 },
        { .name = "close, 1000 parked readers", .unit = "ms", .lower_better = true,
          .sluice = { "sluice", m_sluice_close, { "inproc", 64, 1, 1, 0, 0, 0, NULL } },
          .base = { { "raw ROUTER, 1000 replies", m_raw_park, { 0 } } },
          .target_base = 0, .target = 1.5 },
        { .name = "model server, 1000 parked on ready", .unit = "ms", .lower_better = true,
          .sluice = { "sluice", m_model_ready, { 0 } },
          .base = { { "raw ROUTER, 1000 replies", m_raw_park, { 0 } } }, .target_base = NONE },
        { .name = "memory, 10,000 parked readers", .unit = "KB", .lower_better = true,
          .sluice = { "sluice", m_memory, { .child = "waiters-sluice" } },
          .base = { { "raw ROUTER holding the requests", m_memory, { .child = "waiters-raw" } } },
          .target_base = NONE },
        { .name = "memory, 100,000 queued chunks", .unit = "KB", .lower_better = true,
          .sluice = { "sluice", m_memory, { .child = "chunks-sluice" } },
          .base = { { "condvar ring cap 100000", m_memory, { .child = "chunks-condvar" } },
                    { "raw inproc pipe, HWM 0", m_memory, { .child = "chunks-zmq" } } },
          .target_base = 0, .target = 1.5 },
    };
    int count = (int) (sizeof rows / sizeof rows [0]);

    char machine [512];
    s_machine (machine, sizeof machine);
    fprintf (stderr, "bench: %s; %s, %d runs per figure, %.2f s per throughput run\n",
             machine, g.quick ? "QUICK" : "full", g.reps, g.tmax);
    //  Warm-up, not reported: first-touch page faults, thread stacks, the zmq context
    spec_t warm = { "inproc", 64, 1, 1, 1, 1, 2000, NULL, 0 };
    double saved = g.tmax;
    g.tmax = 0.05;
    m_sluice (&warm);
    m_raw_dealer_router (&warm);
    g.tmax = saved;

    g_load_start = s_loadavg ();
    long long stat_start [8], stat_end [8];
    s_steal (NULL, stat_start);
    double started = now_s ();
    for (int index = 0; index < count; index++)
        if (!g.only || strncmp (rows [index].name, g.only, strlen (g.only)) == 0)
            s_run_row (&rows [index]);
    double elapsed = now_s () - started;
    g_load_end = s_loadavg ();
    g_steal = s_steal (stat_start, stat_end);

    printf ("sluice bench (%s): %s\n", g.quick ? "QUICK" : "full", machine);
    printf ("64-byte chunks; median of %d runs, baselines measured back to back with each row; "
            "ratio = sluice / baseline\n", g.reps);
    s_print_table (rows, count);
    printf ("\n%.0f s. Throughput in items/s (a write and its read); times until the last reply; "
            "memory = growth of peak RSS.\n"
            "µs/item: CPU time per item of all the process's threads and the child processes it "
            "reaped (setup included; Python: its own), median.\n",
            elapsed);
    printf ("Load average (1 min) %.2f at start, %.2f at end; the host took %.1f %% of the CPU "
            "time (steal)%s\n", g_load_start, g_load_end, isnan (g_steal) ? -1.0 : g_steal,
            g_load_start > 1.0 || g_load_end > 1.5 || g_steal > 10
            ? ": other work shared the CPUs, compare ratios only" : "");
    s_write_json (rows, count, machine, elapsed);
    printf ("JSON: %s\n", g.json);
    return 0;
}
