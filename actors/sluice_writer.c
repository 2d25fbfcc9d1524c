/*  sluice_writer.c - the writer actor: a source of chunks into a buffer.

    Every wait it does (a write parked on a full buffer, the pause between tokens, input from
    a file) also watches its pipe, so $TERM stops it at once.
*/
#include "sluice_actor.h"
#include "sluice_conn.h"
#include "sluice_writer.h"
#include "sluice_model.h"
#include "sluice_input.h"
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

//  A model server's streamed answer, taken a batch of tokens at a time.
typedef struct {
    sluice_model_client_t *client;
    uint64_t stream_id;
    bool started, ended;
    size_t count, next;            //  tokens of the last batch, and the next to hand out
    char *text;                    //  the token handed out, NUL-terminated
    size_t capacity;
} s_model_source_t;

//  The next token: SLUICE_OK with (*text, *size), SLUICE_OK with *text NULL at the end, or
//  the error (SLUICE_EINTR: the pipe has an order; else the reason in reason).
static sluice_err_t
s_model_next (s_model_source_t *model, const sluice_writer_opts_t *opts, const char **text,
              size_t *size, char *reason, size_t reason_size)
{
    *text = NULL;
    sluice_err_t rc = SLUICE_OK;
    if (!model->started) {
        //  Parked at the server while the model loads; then the generation starts
        rc = sluice_model_client_stream (model->client, opts->prompt, opts->prompt_size,
                                         SLUICE_FOREVER, &model->stream_id);
        model->started = rc == SLUICE_OK;
    }
    while (rc == SLUICE_OK && model->next == model->count && !model->ended) {
        //  Pulled only when the last batch is written: a full buffer pauses the generator
        bool end = false;
        rc = sluice_model_client_next (model->client, model->stream_id, 64, SLUICE_FOREVER,
                                       &model->count, &end);
        model->next = 0;
        model->ended = end;
        if (rc != SLUICE_OK)
            model->count = 0;
    }
    if (rc != SLUICE_OK) {
        if (rc != SLUICE_EINTR)
            snprintf (reason, reason_size, "model: %s", sluice_model_client_error_text (model->client));
        return rc;
    }
    if (model->next == model->count)
        return SLUICE_OK;               //  the end of the answer
    const void *token = sluice_model_client_token (model->client, model->next++, size);
    if (*size + 1 > model->capacity) {
        char *grown = (char *) realloc (model->text, *size + 1);
        if (!grown)
            return SLUICE_ENOMEM;
        model->text = grown;
        model->capacity = *size + 1;
    }
    memcpy (model->text, token, *size);
    model->text [*size] = 0;
    *text = model->text;
    return SLUICE_OK;
}

static void
s_writer_actor (zsock_t *pipe, void *argument)
{
    s_writer_args_t *args = (s_writer_args_t *) argument;
    const sluice_writer_opts_t *opts = &args->opts;
    //  The settings (curve) are read before the owner is signalled: they need not outlive new
    sluice_stream_t *stream = sluice_stream_new_secure (opts->endpoint, opts->curve);
    sluice_input_t *input = opts->input && !opts->model_endpoint
                          ? sluice_input_new (fileno (opts->input), opts->chunk_bytes) : NULL;
    s_model_source_t model;
    memset (&model, 0, sizeof model);
    if (stream && opts->model_endpoint)
        model.client = sluice_model_client_new (opts->model_endpoint);
    zsock_signal (pipe, 0);
    bool ready = stream && (opts->model_endpoint ? model.client != NULL
                                                 : !opts->input || input != NULL);
    if (!ready) {
        sluice_task_done (pipe, stream && !opts->model_endpoint ? SLUICE_ENOMEM : SLUICE_EINVAL,
                          sluice_last_error_text (), false);
        sluice_model_client_destroy (&model.client);
        sluice_input_destroy (&input);
        sluice_stream_destroy (&stream);
        return;
    }
    sluice_stream_interrupt_on (stream, zsock_resolve (pipe));
    if (model.client)
        sluice_model_client_interrupt_on (model.client, zsock_resolve (pipe));

    sluice_err_t result = SLUICE_OK;
    bool terminated = false;
    char reason [SLUICE_TEXT_SIZE] = "";
    for (size_t index = 0; result == SLUICE_OK; index++) {
        const char *text;
        size_t size;
        if (model.client) {
            result = s_model_next (&model, opts, &text, &size, reason, sizeof reason);
            if (result == SLUICE_EINTR)
                terminated = sluice_task_order (pipe) == SLUICE_TASK_TERM;
            if (result != SLUICE_OK || !text)
                break;
        }
        else
        if (input) {
            sluice_input_result_t rc = sluice_input_next (input, pipe, &text, &size);
            if (rc == SLUICE_INPUT_END)
                break;
            if (rc == SLUICE_INPUT_INTERRUPTED) {
                terminated = sluice_task_order (pipe) == SLUICE_TASK_TERM;
                result = SLUICE_EINTR;
                break;
            }
            if (rc == SLUICE_INPUT_ERROR) {
                result = SLUICE_ETRANSPORT;
                snprintf (reason, sizeof reason, "reading its input: %s", strerror (errno));
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
            opts->on_write (opts->user, index, text, size, sluice_stream_was_parked (stream),
                            waited_ms);
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
    //  The buffer will take no more (closed, or we were stopped): the generation stops too
    if (model.started && !model.ended && !terminated)
        sluice_model_client_cancel (model.client, model.stream_id);
    if (!terminated && result == SLUICE_OK && opts->final)
        result = sluice_stream_write (stream, "", 0, true);
    if (!terminated && result == SLUICE_OK && opts->close_at_end)
        result = sluice_stream_close (stream);
    if (result == SLUICE_EINTR && !terminated && !*reason)
        terminated = sluice_task_order (pipe) == SLUICE_TASK_TERM;
    if (!*reason && result != SLUICE_OK)
        snprintf (reason, sizeof reason, "%s", result == SLUICE_EINTR ? "stopped"
                                               : sluice_stream_error_text (stream));
    sluice_input_destroy (&input);
    sluice_model_client_destroy (&model.client);
    free (model.text);
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
    ||  opts->delay_ms < 0 || (opts->model_endpoint && opts->prompt_size && !opts->prompt)) {
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
    if (opts->model_endpoint) {
        //  Copies: the caller's strings may go once new returns
        self->args.opts.model_endpoint = strdup (opts->model_endpoint);
        void *prompt = malloc (opts->prompt_size + 1);
        if (prompt && opts->prompt_size)
            memcpy (prompt, opts->prompt, opts->prompt_size);
        self->args.opts.prompt = prompt;
    }
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
    free ((char *) self->args.opts.model_endpoint);
    free ((void *) self->args.opts.prompt);
    free (self);
    *self_p = NULL;
}
