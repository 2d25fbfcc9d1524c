/*  sluice_stage.c - the transform stage actor: one buffer in, a function, one buffer out.

    Like the writer and reader actors it is a one-job task (sluice_task_*): both its clients
    watch its pipe while they wait, so $TERM stops it at once even when the input is empty or
    the output full.
*/
#include "sluice_actor.h"
#include "sluice_conn.h"
#include "sluice_stage_out.h"
#include "sluice_split.h"
#include "sluice_spawn.h"
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    sluice_stage_opts_t opts;       //  endpoints are our own copies
    size_t consumed;                //  progress counters, atomics: read by the owner any time
    size_t produced;
    int exit_status;                //  an exec stage's command, atomic; -1 until it ended
    char error_text [SLUICE_TEXT_SIZE];   //  the actor's own: reported with DONE
} s_stage_args_t;

struct sluice_stage_t {
    sluice_handle_t handle;
    s_stage_args_t args;
};

typedef struct {
    s_stage_args_t *args;
    sluice_stream_t *output;
} s_emit_context_t;

// ---------------------------------------------------------------------------------------------
//  Actor

static void
s_set_error (s_stage_args_t *args, const char *what, const char *text)
{
    snprintf (args->error_text, sizeof args->error_text, "%s%s%s", what,
              text && *text ? ": " : "", text ? text : "");
}

//  Write one chunk out; on failure records why.
static sluice_err_t
s_emit (s_stage_args_t *args, sluice_stream_t *output, const void *data, size_t size,
        bool is_final)
{
    sluice_err_t rc = sluice_stream_write (output, data, size, is_final);
    if (rc == SLUICE_OK)
        __atomic_add_fetch (&args->produced, 1, __ATOMIC_RELAXED);
    else
    if (rc != SLUICE_EINTR)
        s_set_error (args, "writing the output", sluice_stream_error_text (output));
    return rc;
}

//  The core's writer: one chunk to the output.
static sluice_err_t
s_core_emit (void *context, const void *data, size_t size, bool is_final)
{
    s_emit_context_t *emit = (s_emit_context_t *) context;
    return s_emit (emit->args, emit->output, data, size, is_final);
}

//  The function stage: chunks through the stage core (sluice_stage_out.h), which keeps what
//  the function holds back.
static sluice_err_t
s_stage_run (s_stage_args_t *args, sluice_stream_t *input, sluice_stream_t *output,
             bool *ended_early)
{
    const sluice_stage_opts_t *opts = &args->opts;
    sluice_stage_core_t core;
    sluice_stage_core_init (&core, opts->transform, opts->user);
    s_emit_context_t emit = { args, output };
    sluice_err_t result = SLUICE_OK;
    while (result == SLUICE_OK && !core.done) {
        sluice_chunk_t chunk;
        result = sluice_stream_read (input, &chunk);
        if (result != SLUICE_OK) {
            if (result != SLUICE_EINTR)
                s_set_error (args, "reading the input", sluice_stream_error_text (input));
            break;
        }
        if (!chunk.is_eos)
            __atomic_add_fetch (&args->consumed, 1, __ATOMIC_RELAXED);
        result = sluice_stage_core_push (&core, chunk.text, chunk.is_eos ? 0 : chunk.size,
                                         chunk.is_final && !chunk.is_eos, chunk.is_eos,
                                         s_core_emit, &emit);
        if (result == SLUICE_EINTERNAL || result == SLUICE_ENOMEM)
            s_set_error (args, result == SLUICE_ENOMEM ? "out of memory" : "the transform failed",
                         NULL);
    }
    *ended_early = core.ended_early;
    sluice_stage_core_fini (&core);
    return result;
}

// ---------------------------------------------------------------------------------------------
//  Exec stage: a command between the buffers. A feeder thread reads the input and writes it to
//  the command's stdin while the actor reads its stdout and stderr, so that neither pipe can
//  fill up while the other waits (the deadlock of a single thread writing a filter's stdin).

typedef struct {
    s_stage_args_t *args;
    sluice_stream_t *input;
    int fd;                     //  the command's stdin, non-blocking; the feeder closes it
    zsock_t *stop;              //  PAIR: anything arriving here stops the feeder
    sluice_err_t result;
    bool input_done;            //  the input ended (sentinel or final chunk)
    bool is_final;              //  with a final chunk
    char error_text [SLUICE_TEXT_SIZE];
} s_feeder_t;

//  Write all of data to the feeder's fd: 1 done, 0 the command closed its stdin (EPIPE),
//  -2 stopped, -1 error.
static int
s_feed (s_feeder_t *feeder, const char *data, size_t size)
{
    while (size) {
        ssize_t sent = write (feeder->fd, data, size);
        if (sent > 0) {
            data += sent;
            size -= (size_t) sent;
            continue;
        }
        if (sent < 0 && errno == EPIPE) {
            //  SIGPIPE is blocked on this thread: take the pending one
            sigset_t pipe_set;
            sigemptyset (&pipe_set);
            sigaddset (&pipe_set, SIGPIPE);
            struct timespec now = { 0, 0 };
            sigtimedwait (&pipe_set, NULL, &now);
            return 0;
        }
        if (sent < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        zmq_pollitem_t items [2] = {
            { NULL, feeder->fd, ZMQ_POLLOUT, 0 },
            { zsock_resolve (feeder->stop), 0, ZMQ_POLLIN, 0 },
        };
        if (zmq_poll (items, 2, -1) == -1 && zmq_errno () != EINTR)
            return -1;
        if (items [1].revents & ZMQ_POLLIN)
            return -2;
    }
    return 1;
}

static void *
s_feeder (void *argument)
{
    s_feeder_t *feeder = (s_feeder_t *) argument;
    sigset_t pipe_set;
    sigemptyset (&pipe_set);
    sigaddset (&pipe_set, SIGPIPE);
    pthread_sigmask (SIG_BLOCK, &pipe_set, NULL);
    while (feeder->result == SLUICE_OK) {
        sluice_chunk_t chunk;
        feeder->result = sluice_stream_read (feeder->input, &chunk);
        if (feeder->result != SLUICE_OK) {
            if (feeder->result != SLUICE_EINTR)
                snprintf (feeder->error_text, sizeof feeder->error_text, "reading the input: %s",
                          sluice_stream_error_text (feeder->input));
            break;
        }
        if (chunk.is_eos) {
            feeder->input_done = true;
            break;
        }
        __atomic_add_fetch (&feeder->args->consumed, 1, __ATOMIC_RELAXED);
        int rc = s_feed (feeder, chunk.text, chunk.size);
        if (rc == -1) {
            feeder->result = SLUICE_EINTERNAL;
            snprintf (feeder->error_text, sizeof feeder->error_text,
                      "writing to the command: %s", strerror (errno));
        }
        if (rc != 1)
            break;              //  stopped, or the command does not read any more
        if (chunk.is_final) {
            feeder->input_done = feeder->is_final = true;
            break;
        }
    }
    //  Its end of input
    close (feeder->fd);
    feeder->fd = -1;
    return NULL;
}

//  Read the command's stdout into output chunks and its stderr into `tail` until both close,
//  or an order arrives on the pipe (SLUICE_EINTR), or the output fails.
static sluice_err_t
s_exec_drain (s_stage_args_t *args, zsock_t *pipe, sluice_stream_t *output, int fds [3],
              char *tail, size_t *tail_size)
{
    sluice_split_t split;
    sluice_split_init (&split, fds [1], args->opts.exec_lines ? SLUICE_SPLIT_LINES
                                                               : SLUICE_SPLIT_AS_READ);
    bool out_open = true, err_open = true;
    sluice_err_t result = SLUICE_OK;
    while (result == SLUICE_OK && (out_open || err_open)) {
        zmq_pollitem_t items [3] = {
            { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
            { NULL, out_open ? fds [1] : -1, ZMQ_POLLIN, 0 },
            { NULL, err_open ? fds [2] : -1, ZMQ_POLLIN, 0 },
        };
        if (zmq_poll (items, 3, -1) == -1) {
            if (zmq_errno () == EINTR)
                continue;
            result = SLUICE_EINTERNAL;
            s_set_error (args, "waiting for the command", zmq_strerror (zmq_errno ()));
            break;
        }
        if (items [0].revents & ZMQ_POLLIN) {
            result = SLUICE_EINTR;
            break;
        }
        if (items [2].revents & (ZMQ_POLLIN | ZMQ_POLLERR))
            sluice_stderr_take (fds [2], tail, tail_size, &err_open);
        if (!(items [1].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
            continue;
        if (sluice_split_fill (&split) < 0 && errno != EAGAIN) {
            result = SLUICE_EINTERNAL;
            s_set_error (args, "reading the command's output", strerror (errno));
            break;
        }
        out_open = !split.eof;
        //  A full output blocks here, and the command blocks writing its stdout in turn
        const char *data;
        size_t size;
        while (result == SLUICE_OK && sluice_split_chunk (&split, &data, &size))
            result = s_emit (args, output, data, size, false);
    }
    sluice_split_fini (&split);
    return result;
}

static sluice_err_t
s_exec_run (s_stage_args_t *args, zsock_t *pipe, sluice_stream_t *input, sluice_stream_t *output,
            bool *ended_early, sluice_task_order_t *taken)
{
    const sluice_stage_opts_t *opts = &args->opts;
    int fds [3];
    pid_t pid = sluice_spawn (opts->exec, fds);
    if (pid < 0) {
        s_set_error (args, "cannot start the command", strerror (errno));
        return SLUICE_EINTERNAL;
    }
    s_feeder_t feeder = { .args = args, .input = input, .fd = fds [0], .result = SLUICE_OK };
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://sluice-feeder-%p", (void *) &feeder);
    zsock_t *stop_end = zsock_new (ZMQ_PAIR);
    if (stop_end && zsock_bind (stop_end, "%s", endpoint) == 0) {
        feeder.stop = zsock_new (ZMQ_PAIR);
        if (feeder.stop && zsock_connect (feeder.stop, "%s", endpoint) != 0)
            zsock_destroy (&feeder.stop);
    }
    //  The feeder's reads stop at its own socket (the pipe is this thread's to watch)
    if (feeder.stop)
        sluice_stream_interrupt_on (input, zsock_resolve (feeder.stop));
    pthread_t thread;
    bool started = feeder.stop && pthread_create (&thread, NULL, s_feeder, &feeder) == 0;

    char tail [SLUICE_STDERR_TAIL + 1];
    size_t tail_size = 0;
    sluice_err_t result = SLUICE_EINTERNAL;
    if (started)
        result = s_exec_drain (args, pipe, output, fds, tail, &tail_size);
    else
        s_set_error (args, "cannot start the feeder thread", NULL);
    //  Stdout and stderr closed: the command is ending. Otherwise it has to go
    bool killed = result != SLUICE_OK;
    if (killed)
        kill (-pid, SIGKILL);
    //  It closed its output but may run on: wait for its exit on a pidfd, responsive to
    //  orders (without pidfds, looking again every 50 ms)
    int status = 0;
    int pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
    while (waitpid (pid, &status, WNOHANG) == 0) {
        zmq_pollitem_t items [2] = {
            { NULL, pidfd, ZMQ_POLLIN, 0 },
            { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
        };
        int ready = zmq_poll (items, killed ? 1 : 2, pidfd >= 0 ? -1 : 50);
        if (ready > 0 && !killed && (items [1].revents & ZMQ_POLLIN)) {
            *taken = sluice_task_order (pipe);  //  read here: the actor must not wait for it
            kill (-pid, SIGKILL);
            killed = true;
            result = SLUICE_EINTR;
        }
    }
    if (pidfd >= 0)
        close (pidfd);
    close (fds [1]);
    close (fds [2]);
    if (started) {
        zstr_send (stop_end, "STOP");
        pthread_join (thread, NULL);
    }
    else
    if (feeder.fd >= 0)
        close (feeder.fd);
    zsock_destroy (&feeder.stop);
    zsock_destroy (&stop_end);
    sluice_stream_interrupt_on (input, zsock_resolve (pipe));

    int exit_status = WIFEXITED (status) ? WEXITSTATUS (status)
                    : WIFSIGNALED (status) ? 128 + WTERMSIG (status) : -1;
    __atomic_store_n (&args->exit_status, exit_status, __ATOMIC_RELEASE);
    if (result != SLUICE_OK)
        return result;
    if (feeder.result != SLUICE_OK && feeder.result != SLUICE_EINTR) {
        snprintf (args->error_text, sizeof args->error_text, "%s", feeder.error_text);
        return feeder.result;
    }
    if (exit_status != 0) {
        sluice_stderr_text (tail, tail_size);
        char what [64];
        if (WIFSIGNALED (status))
            snprintf (what, sizeof what, "the command was killed by signal %d", WTERMSIG (status));
        else
            snprintf (what, sizeof what, "the command exited with status %d", exit_status);
        s_set_error (args, what, tail);
        return SLUICE_EINTERNAL;
    }
    //  It ended before its input did: nothing reads that input any more
    *ended_early = !feeder.input_done;
    if (feeder.is_final)
        return s_emit (args, output, "", 0, true);
    return SLUICE_OK;
}

static void
s_stage_actor (zsock_t *pipe, void *argument)
{
    s_stage_args_t *args = (s_stage_args_t *) argument;
    const sluice_stage_opts_t *opts = &args->opts;
    //  Before the signal: the caller's CURVE settings live only until sluice_stage_new returns
    sluice_stream_t *input = sluice_stream_new_secure (opts->input, opts->input_curve);
    sluice_stream_t *output = sluice_stream_new_secure (opts->output, opts->output_curve);
    bool secure = input ? opts->output_curve != NULL : opts->input_curve != NULL;
    zsock_signal (pipe, 0);
    if (!input || !output) {
        s_set_error (args, secure ? "invalid endpoint or CURVE settings" : "invalid endpoint",
                     input ? opts->output : opts->input);
        sluice_stream_destroy (&input);
        sluice_stream_destroy (&output);
        sluice_task_done (pipe, SLUICE_EINVAL, args->error_text, false);
        return;
    }
    sluice_stream_interrupt_on (input, zsock_resolve (pipe));
    sluice_stream_interrupt_on (output, zsock_resolve (pipe));

    bool ended_early = false;
    sluice_task_order_t taken = SLUICE_TASK_GO_ON;
    sluice_err_t result = opts->exec ? s_exec_run (args, pipe, input, output, &ended_early, &taken)
                                     : s_stage_run (args, input, output, &ended_early);
    bool stopped = result == SLUICE_EINTR;
    if (stopped && taken == SLUICE_TASK_GO_ON)
        taken = sluice_task_order (pipe);
    bool terminated = stopped && taken == SLUICE_TASK_TERM;
    //  Closed on failure too, so that downstream readers are not left waiting forever; the
    //  output closed under us (ECLOSED) needs no second close, and a stopped stage leaves it
    //  to its owner.
    if (!stopped && !opts->keep_output_open && result != SLUICE_ECLOSED) {
        sluice_err_t rc = sluice_stream_close (output);
        if (rc == SLUICE_EINTR)
            terminated = sluice_task_order (pipe) == SLUICE_TASK_TERM;
        else
        if (rc != SLUICE_OK && result == SLUICE_OK) {
            result = rc;
            s_set_error (args, "closing the output", sluice_stream_error_text (output));
        }
    }
    //  Nothing reads the input any more: let upstream writers (a model's generation) know
    if (ended_early && !stopped && !terminated && !opts->keep_input_open) {
        sluice_err_t rc = sluice_stream_close (input);
        if (rc == SLUICE_EINTR)
            terminated = sluice_task_order (pipe) == SLUICE_TASK_TERM;
    }
    if (stopped)
        s_set_error (args, "stopped", NULL);
    sluice_stream_destroy (&input);
    sluice_stream_destroy (&output);
    sluice_task_done (pipe, result, args->error_text, terminated);
}

// ---------------------------------------------------------------------------------------------
//  Handle

sluice_stage_t *
sluice_stage_new (const sluice_stage_opts_t *opts, sluice_err_t *err)
{
    sluice_err_t dummy;
    if (!err)
        err = &dummy;
    if (!opts || !opts->input || !*opts->input || !opts->output || !*opts->output
    ||  (!opts->transform == !opts->exec) || (opts->exec && !*opts->exec)) {
        *err = SLUICE_EINVAL;
        return NULL;
    }
    sluice_stage_t *self = (sluice_stage_t *) zmalloc (sizeof *self);
    if (!self) {
        *err = SLUICE_ENOMEM;
        return NULL;
    }
    self->args.opts = *opts;
    self->args.opts.input = strdup (opts->input);
    self->args.opts.output = strdup (opts->output);
    self->args.opts.exec = opts->exec ? strdup (opts->exec) : NULL;
    self->args.exit_status = -1;
    if (!self->args.opts.input || !self->args.opts.output || (opts->exec && !self->args.opts.exec))
        *err = SLUICE_ENOMEM;
    else
        *err = sluice_handle_start (&self->handle, s_stage_actor, &self->args, NULL, NULL);
    //  The actor has used them (before it signalled): do not keep the caller's pointers
    self->args.opts.input_curve = NULL;
    self->args.opts.output_curve = NULL;
    if (*err != SLUICE_OK)
        sluice_stage_destroy (&self);
    return self;
}

sluice_err_t
sluice_stage_wait (sluice_stage_t *self, int timeout_ms)
{
    return sluice_handle_wait (&self->handle, timeout_ms);
}

sluice_err_t
sluice_stage_stop (sluice_stage_t *self)
{
    return sluice_handle_stop (&self->handle);
}

const char *
sluice_stage_error_text (sluice_stage_t *self)
{
    return sluice_handle_error_text (&self->handle);
}

size_t
sluice_stage_consumed (sluice_stage_t *self)
{
    return __atomic_load_n (&self->args.consumed, __ATOMIC_RELAXED);
}

size_t
sluice_stage_produced (sluice_stage_t *self)
{
    return __atomic_load_n (&self->args.produced, __ATOMIC_RELAXED);
}

int
sluice_stage_exit_status (sluice_stage_t *self)
{
    return __atomic_load_n (&self->args.exit_status, __ATOMIC_ACQUIRE);
}

void *
sluice_stage_actor_handle (sluice_stage_t *self)
{
    return self->handle.actor;
}

void
sluice_stage_destroy (sluice_stage_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sluice_stage_t *self = *self_p;
    sluice_handle_destroy (&self->handle);
    free ((char *) self->args.opts.input);
    free ((char *) self->args.opts.output);
    free ((char *) self->args.opts.exec);
    free (self);
    *self_p = NULL;
}
