/*  sluice_reader.c - the reader actor: a buffer into a sink, at the sink's pace. */
#include "sluice_actor.h"
#include "sluice_conn.h"
#include "sluice_reader.h"
#include <string.h>

typedef struct {
    sluice_reader_opts_t opts;
    size_t *consumed;
} s_reader_args_t;

struct sluice_reader_t {
    sluice_handle_t handle;
    s_reader_args_t args;
    size_t consumed;
};

static void
s_reader_actor (zsock_t *pipe, void *argument)
{
    s_reader_args_t *args = (s_reader_args_t *) argument;
    const sluice_reader_opts_t *opts = &args->opts;
    //  The settings (curve) are read before the owner is signalled: they need not outlive new
    sluice_stream_t *stream = sluice_stream_new_secure (opts->endpoint, opts->curve);
    zsock_signal (pipe, 0);
    if (!stream) {
        sluice_task_done (pipe, SLUICE_EINVAL, sluice_last_error_text (), false);
        return;
    }
    sluice_stream_interrupt_on (stream, zsock_resolve (pipe));

    bool terminated = false, stopped = false, sunk = true;
    sluice_chunk_t chunk;
    size_t index = 0;
    while (sluice_stream_next (stream, &chunk)) {
        if (opts->on_chunk)
            sunk = opts->on_chunk (opts->user, index, chunk.text, chunk.size);
        else
            sunk = fwrite (chunk.text, 1, chunk.size, stdout) == chunk.size
                && fputc ('\n', stdout) != EOF && fflush (stdout) == 0;
        if (!sunk)
            break;
        index++;
        __atomic_add_fetch (args->consumed, 1, __ATOMIC_RELAXED);
        if (opts->process_ms > 0) {
            sluice_task_order_t order = sluice_task_pause (pipe, opts->process_ms);
            if (order != SLUICE_TASK_GO_ON) {
                terminated = order == SLUICE_TASK_TERM;
                stopped = true;
                break;
            }
        }
    }
    sluice_err_t result = stopped ? SLUICE_EINTR : !sunk ? SLUICE_ETRANSPORT
                        : sluice_stream_error (stream);
    if (result == SLUICE_EINTR && !stopped)
        terminated = sluice_task_order (pipe) == SLUICE_TASK_TERM;
    char reason [SLUICE_TEXT_SIZE];
    if (!sunk)
        snprintf (reason, sizeof reason, "its sink failed at chunk %zu", index + 1);
    else
        snprintf (reason, sizeof reason, "%s", result == SLUICE_OK ? ""
                  : result == SLUICE_EINTR ? "stopped" : sluice_stream_error_text (stream));
    sluice_stream_destroy (&stream);
    sluice_task_done (pipe, result, reason, terminated);
}

sluice_reader_t *
sluice_reader_new (const sluice_reader_opts_t *opts, sluice_err_t *err)
{
    sluice_err_t dummy;
    if (!err)
        err = &dummy;
    if (!opts || !opts->endpoint || opts->process_ms < 0) {
        *err = SLUICE_EINVAL;
        return NULL;
    }
    sluice_reader_t *self = (sluice_reader_t *) zmalloc (sizeof *self);
    self->args.opts = *opts;
    self->args.opts.endpoint = strdup (opts->endpoint);
    self->args.consumed = &self->consumed;
    *err = sluice_handle_start (&self->handle, s_reader_actor, &self->args, NULL, NULL);
    if (*err != SLUICE_OK)
        sluice_reader_destroy (&self);
    return self;
}

sluice_err_t
sluice_reader_wait (sluice_reader_t *self, int timeout_ms)
{
    return sluice_handle_wait (&self->handle, timeout_ms);
}

sluice_err_t
sluice_reader_stop (sluice_reader_t *self)
{
    return sluice_handle_stop (&self->handle);
}

const char *
sluice_reader_error_text (sluice_reader_t *self)
{
    return sluice_handle_error_text (&self->handle);
}

void *
sluice_reader_actor_handle (sluice_reader_t *self)
{
    return self->handle.actor;
}

size_t
sluice_reader_consumed (sluice_reader_t *self)
{
    return __atomic_load_n (&self->consumed, __ATOMIC_RELAXED);
}

void
sluice_reader_destroy (sluice_reader_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sluice_reader_t *self = *self_p;
    sluice_handle_destroy (&self->handle);
    free ((char *) self->args.opts.endpoint);
    free (self);
    *self_p = NULL;
}
