/*  sluice_writer.c - the writer actor: a source of chunks into a buffer.

    Every wait it does (a write parked on a full buffer, the pause between tokens, input from
    a file) also watches its pipe, so $TERM stops it at once.
*/
#include "sluice_actor.h"
#include "sluice_conn.h"
#include "sluice_writer.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    sluice_writer_opts_t opts;
    char **tokens;                  //  own copy of the list source
    size_t *written;                //  progress counter, read by the owner after DONE
} s_writer_args_t;

struct sluice_writer_t {
    sluice_handle_t handle;
    s_writer_args_t args;
    size_t written;
};

//  Reads lines from a file descriptor while watching the pipe.
typedef struct {
    int fd;
    char *data;
    size_t size;                    //  bytes held
    size_t capacity;
    bool eof;
} s_lines_t;

//  Returns 1 with a line in (*line, *length) (newline removed; valid until the next call),
//  0 at end of input, -1 on a read error, -2 when the pipe has an order for us.
static int
s_lines_next (s_lines_t *lines, zsock_t *pipe, char **line, size_t *length, size_t *consumed)
{
    //  Drop the line handed out last time
    if (*consumed) {
        memmove (lines->data, lines->data + *consumed, lines->size - *consumed);
        lines->size -= *consumed;
        *consumed = 0;
    }
    while (true) {
        char *newline = lines->size ? (char *) memchr (lines->data, '\n', lines->size) : NULL;
        if (newline || (lines->eof && lines->size)) {
            size_t used = newline ? (size_t) (newline - lines->data) : lines->size;
            *line = lines->data;
            *length = used;
            *consumed = newline ? used + 1 : used;
            return 1;
        }
        if (lines->eof)
            return 0;
        zmq_pollitem_t items [2] = {
            { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 },
            { NULL, lines->fd, ZMQ_POLLIN, 0 },
        };
        if (zmq_poll (items, 2, -1) == -1) {
            if (zmq_errno () == EINTR)
                continue;
            return -1;
        }
        if (items [0].revents & ZMQ_POLLIN)
            return -2;
        if (lines->size + 4096 > lines->capacity) {
            size_t capacity = lines->capacity ? lines->capacity * 2 : 8192;
            char *data = (char *) realloc (lines->data, capacity);
            if (!data)
                return -1;
            lines->data = data;
            lines->capacity = capacity;
        }
        //  Keep one byte spare: the line handed out is NUL-terminated in place for callbacks
        ssize_t got = read (lines->fd, lines->data + lines->size, lines->capacity - lines->size - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -1;
        if (got == 0)
            lines->eof = true;
        lines->size += (size_t) got;
    }
}

static void
s_writer_actor (zsock_t *pipe, void *argument)
{
    s_writer_args_t *args = (s_writer_args_t *) argument;
    const sluice_writer_opts_t *opts = &args->opts;
    sluice_stream_t *stream = sluice_stream_new (opts->endpoint);
    zsock_signal (pipe, 0);
    if (!stream) {
        sluice_task_done (pipe, SLUICE_EINVAL, sluice_last_error_text (), false);
        return;
    }
    sluice_stream_interrupt_on (stream, zsock_resolve (pipe));

    s_lines_t lines = { .fd = opts->input ? fileno (opts->input) : -1 };
    size_t consumed = 0;
    sluice_err_t result = SLUICE_OK;
    bool terminated = false;
    for (size_t index = 0; result == SLUICE_OK; index++) {
        char *text;
        size_t size;
        if (opts->input) {
            int rc = s_lines_next (&lines, pipe, &text, &size, &consumed);
            if (rc == 0)
                break;
            if (rc == -2) {
                terminated = sluice_task_order (pipe) == SLUICE_TASK_TERM;
                result = SLUICE_EINTR;
                break;
            }
            if (rc == -1) {
                result = SLUICE_ETRANSPORT;
                break;
            }
        }
        else {
            if (index == opts->token_count)
                break;
            text = args->tokens [index];
            size = strlen (text);
        }
        int64_t start = zclock_usecs ();
        result = sluice_stream_write (stream, text, size, false);
        if (result == SLUICE_EINTR) {
            terminated = sluice_task_order (pipe) == SLUICE_TASK_TERM;
            break;
        }
        if (result != SLUICE_OK)
            break;
        __atomic_add_fetch (args->written, 1, __ATOMIC_RELAXED);
        if (opts->on_write) {
            double waited_ms = (double) (zclock_usecs () - start) / 1000.0;
            //  The callback may keep the text only for the call: hand it a terminated copy
            char saved = 0;
            if (opts->input) {
                saved = text [size];
                text [size] = 0;
            }
            opts->on_write (opts->user, index, text, size, sluice_stream_was_parked (stream),
                            waited_ms);
            if (opts->input)
                text [size] = saved;
        }
        if (opts->delay_ms > 0) {
            sluice_task_order_t order = sluice_task_pause (pipe, opts->delay_ms);
            if (order != SLUICE_TASK_GO_ON) {
                terminated = order == SLUICE_TASK_TERM;
                result = SLUICE_EINTR;
                break;
            }
        }
    }
    if (!terminated && result == SLUICE_OK && opts->close_at_end) {
        result = sluice_stream_close (stream);
        if (result == SLUICE_EINTR)
            terminated = sluice_task_order (pipe) == SLUICE_TASK_TERM;
    }
    const char *text = result == SLUICE_EINTR ? "stopped" : sluice_stream_error_text (stream);
    char reason [SLUICE_TEXT_SIZE];
    snprintf (reason, sizeof reason, "%s", result == SLUICE_OK ? "" : text);
    free (lines.data);
    sluice_stream_destroy (&stream);
    sluice_task_done (pipe, result, reason, terminated);
}

sluice_writer_t *
sluice_writer_new (const sluice_writer_opts_t *opts, sluice_err_t *err)
{
    sluice_err_t dummy;
    if (!err)
        err = &dummy;
    if (!opts || !opts->endpoint || (!opts->input && opts->token_count && !opts->tokens)
    ||  opts->delay_ms < 0) {
        *err = SLUICE_EINVAL;
        return NULL;
    }
    sluice_writer_t *self = (sluice_writer_t *) zmalloc (sizeof *self);
    self->args.opts = *opts;
    self->args.written = &self->written;
    if (!opts->input && opts->token_count) {
        self->args.tokens = (char **) calloc (opts->token_count, sizeof (char *));
        for (size_t index = 0; index < opts->token_count; index++)
            self->args.tokens [index] = strdup (opts->tokens [index] ? opts->tokens [index] : "");
    }
    self->args.opts.endpoint = strdup (opts->endpoint);
    *err = sluice_handle_start (&self->handle, s_writer_actor, &self->args, NULL, NULL);
    if (*err != SLUICE_OK)
        sluice_writer_destroy (&self);
    return self;
}

sluice_err_t
sluice_writer_wait (sluice_writer_t *self, int timeout_ms)
{
    return sluice_handle_wait (&self->handle, timeout_ms);
}

sluice_err_t
sluice_writer_stop (sluice_writer_t *self)
{
    return sluice_handle_stop (&self->handle);
}

const char *
sluice_writer_error_text (sluice_writer_t *self)
{
    return sluice_handle_error_text (&self->handle);
}

void *
sluice_writer_actor_handle (sluice_writer_t *self)
{
    return self->handle.actor;
}

size_t
sluice_writer_written (sluice_writer_t *self)
{
    //  Exact once the writer is done; a snapshot while it runs
    return __atomic_load_n (&self->written, __ATOMIC_RELAXED);
}

void
sluice_writer_destroy (sluice_writer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sluice_writer_t *self = *self_p;
    sluice_handle_destroy (&self->handle);
    if (self->args.tokens) {
        for (size_t index = 0; index < self->args.opts.token_count; index++)
            free (self->args.tokens [index]);
        free (self->args.tokens);
    }
    free ((char *) self->args.opts.endpoint);
    free (self);
    *self_p = NULL;
}
