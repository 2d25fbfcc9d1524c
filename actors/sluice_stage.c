/*  sluice_stage.c - the transform stage actor: one buffer in, a function, one buffer out.

    Like the writer and reader actors it is a one-job task (sluice_task_*): both its clients
    watch its pipe while they wait, so $TERM stops it at once even when the input is empty or
    the output full.
*/
#include "sluice_actor.h"
#include "sluice_conn.h"
#include "sluice_stage.h"
#include <ctype.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

struct sluice_stage_out_t {
    char *data;
    size_t size;
    size_t capacity;
};

typedef struct {
    sluice_stage_opts_t opts;       //  endpoints are our own copies
    size_t consumed;                //  progress counters, atomics: read by the owner any time
    size_t produced;
    char error_text [SLUICE_TEXT_SIZE];   //  the actor's own: reported with DONE
} s_stage_args_t;

struct sluice_stage_t {
    sluice_handle_t handle;
    s_stage_args_t args;
};

// ---------------------------------------------------------------------------------------------
//  Output buffer

char *
sluice_stage_out_reserve (sluice_stage_out_t *out, size_t size)
{
    if (size > SIZE_MAX - out->size - 1)
        return NULL;
    //  One byte spare: the stage hands chunks on NUL-terminated, as it received them
    if (out->size + size + 1 > out->capacity) {
        size_t capacity = out->capacity ? out->capacity : 256;
        while (capacity < out->size + size + 1)
            capacity = capacity > SIZE_MAX / 2 ? out->size + size + 1 : capacity * 2;
        char *data = (char *) realloc (out->data, capacity);
        if (!data)
            return NULL;
        out->data = data;
        out->capacity = capacity;
    }
    char *start = out->data + out->size;
    out->size += size;
    out->data [out->size] = 0;
    return start;
}

bool
sluice_stage_out_append (sluice_stage_out_t *out, const void *data, size_t size)
{
    char *start = sluice_stage_out_reserve (out, size);
    if (!start)
        return false;
    if (size)
        memcpy (start, data, size);
    return true;
}

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

static sluice_err_t
s_stage_run (s_stage_args_t *args, sluice_stream_t *input, sluice_stream_t *output)
{
    const sluice_stage_opts_t *opts = &args->opts;
    sluice_stage_out_t out = { NULL, 0, 0 };
    sluice_err_t result = SLUICE_OK;
    while (result == SLUICE_OK) {
        sluice_chunk_t chunk;
        result = sluice_stream_read (input, &chunk);
        if (result != SLUICE_OK) {
            if (result != SLUICE_EINTR)
                s_set_error (args, "reading the input", sluice_stream_error_text (input));
            break;
        }
        if (chunk.is_eos)
            break;
        __atomic_add_fetch (&args->consumed, 1, __ATOMIC_RELAXED);
        out.size = 0;
        if (out.data)
            out.data [0] = 0;
        sluice_stage_verdict_t verdict = opts->transform (opts->user, chunk.text, chunk.size, &out);
        switch (verdict) {
            case SLUICE_STAGE_KEEP:
                result = s_emit (args, output, out.data ? out.data : "", out.size, chunk.is_final);
                break;
            case SLUICE_STAGE_PASS:
                result = s_emit (args, output, chunk.text, chunk.size, chunk.is_final);
                break;
            case SLUICE_STAGE_DROP:
                //  The end of the stream still has to travel downstream
                if (chunk.is_final)
                    result = s_emit (args, output, "", 0, true);
                break;
            default:
                result = SLUICE_EINTERNAL;
                s_set_error (args, "the transform failed", NULL);
                break;
        }
        if (chunk.is_final)
            break;          //  the end of this reader's stream, as sluice_stream_next sees it
    }
    free (out.data);
    return result;
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

    sluice_err_t result = s_stage_run (args, input, output);
    bool stopped = result == SLUICE_EINTR;
    bool terminated = stopped && sluice_task_order (pipe) == SLUICE_TASK_TERM;
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
    ||  !opts->transform) {
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
    if (!self->args.opts.input || !self->args.opts.output)
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
    free (self);
    *self_p = NULL;
}

// ---------------------------------------------------------------------------------------------
//  Ready-made transforms

static sluice_stage_verdict_t
s_map_case (const char *in, size_t in_size, sluice_stage_out_t *out, int (*map) (int))
{
    char *text = sluice_stage_out_reserve (out, in_size);
    if (!text)
        return SLUICE_STAGE_FAIL;
    for (size_t index = 0; index < in_size; index++) {
        unsigned char byte = (unsigned char) in [index];
        //  ASCII only: the C locale's toupper leaves UTF-8 bytes alone, but say so explicitly
        text [index] = byte < 0x80 ? (char) map (byte) : (char) byte;
    }
    return SLUICE_STAGE_KEEP;
}

sluice_stage_verdict_t
sluice_stage_upper (void *user, const char *in, size_t in_size, sluice_stage_out_t *out)
{
    return s_map_case (in, in_size, out, toupper);
}

sluice_stage_verdict_t
sluice_stage_lower (void *user, const char *in, size_t in_size, sluice_stage_out_t *out)
{
    return s_map_case (in, in_size, out, tolower);
}

static bool
s_is_word_byte (unsigned char byte)
{
    return byte >= 0x80 || isalnum (byte);
}

sluice_stage_verdict_t
sluice_stage_mask (void *user, const char *in, size_t in_size, sluice_stage_out_t *out)
{
    const char *const *words = (const char *const *) user;
    char *text = sluice_stage_out_reserve (out, in_size);
    if (!text)
        return SLUICE_STAGE_FAIL;
    if (in_size)
        memcpy (text, in, in_size);
    size_t start = 0;
    while (start < in_size) {
        if (!s_is_word_byte ((unsigned char) in [start])) {
            start++;
            continue;
        }
        size_t end = start;
        while (end < in_size && s_is_word_byte ((unsigned char) in [end]))
            end++;
        for (const char *const *word = words; word && *word; word++)
            if (strlen (*word) == end - start && strncasecmp (*word, in + start, end - start) == 0) {
                memset (text + start, '*', end - start);
                break;
            }
        start = end;
    }
    return SLUICE_STAGE_KEEP;
}

sluice_stage_verdict_t
sluice_stage_identity (void *user, const char *in, size_t in_size, sluice_stage_out_t *out)
{
    return SLUICE_STAGE_PASS;
}

static const sluice_stage_transform_t s_transforms [] = {
    { "upper",    sluice_stage_upper,    false, "ASCII upper case" },
    { "lower",    sluice_stage_lower,    false, "ASCII lower case" },
    { "mask",     sluice_stage_mask,     true,  "replace listed words by '*' (a safety filter)" },
    { "identity", sluice_stage_identity, false, "copy chunks unchanged" },
};

const sluice_stage_transform_t *
sluice_stage_transform_find (const char *name)
{
    for (size_t index = 0; name && index < sizeof s_transforms / sizeof s_transforms [0]; index++)
        if (streq (s_transforms [index].name, name))
            return &s_transforms [index];
    return NULL;
}

static char s_transform_names [256];

static void
s_list_transforms (void)
{
    size_t used = 0, count = sizeof s_transforms / sizeof s_transforms [0];
    for (size_t index = 0; index < count; index++)
        used += (size_t) snprintf (s_transform_names + used, sizeof s_transform_names - used,
                                   "%s%s", index ? ", " : "", s_transforms [index].name);
}

const char *
sluice_stage_transform_names (void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once (&once, s_list_transforms);
    return s_transform_names;
}
