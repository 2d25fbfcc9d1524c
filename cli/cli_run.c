/*  cli_run.c - `sluice run FILE`: a pipeline described in a ZPL file (docs/PIPELINES.md).

    The file names actors: buffers, writers (tokens or a file into a buffer), stages (one
    buffer into another) and readers (a buffer to stdout). A buffer whose endpoint this process
    can bind (inproc, ipc, tcp with host * or 0.0.0.0, any tcp host with port * or 0) is started here;
    any other tcp:// endpoint is a buffer running elsewhere, and the actors here just connect.
    So moving a buffer between this process and another host changes only its endpoint.

    CURVE: a buffer started here takes server settings (curve-cert with curve-allow or
    curve-encrypt-only), and the actors connecting to it get its key from it; a buffer running
    elsewhere may give its key (curve-server-key) to the actors that connect to it, which may
    also give their own settings. `sluice run --curve-*` are defaults for the whole file.
    Everything is checked before anything starts.

    Writers and readers here are small tasks of our own rather than sluice_writer/_reader:
    the main thread must wait on all of them and on a signalfd at once, which needs each
    task's actor handle (the library's writer and reader do not expose theirs).
*/
#include "cli.h"
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>

#define S_ERROR_TEXT 512
#define S_CURVE_HINT "a server that refuses a CURVE client does not answer it: check the " \
                     "server key, and that this client's certificate is allowed there"

typedef struct {
    char *name;
    const char *endpoint;         //  as configured (owned by the config tree)
    const char *events;
    char *connect;                //  where the actors of this process connect
    long capacity, max_chunk;
    bool local;                   //  started here
    sluice_cli_curve_t curve;     //  here: server settings; elsewhere: its key (server_key)
    bool secured;                 //  started here with CURVE
    sluice_buffer_t *buffer;
    bool drain_armed;             //  a wait_drained is pending in the actor
    bool drained;
} s_buffer_t;

typedef enum { S_SOURCE, S_STAGE, S_SINK } s_kind_t;

//  What a source or sink task gets; shared with its thread (read-only there, but error_text)
typedef struct {
    const char *endpoint;
    //  source
    const char **tokens;          //  borrowed from the config tree
    size_t token_count;
    int fd;                       //  file source, or -1
    size_t chunk_bytes;
    long delay_ms;
    bool close_at_end;
    bool final;
    const sluice_curve_t *curve;  //  for the connection, or NULL; read before the task signals
    //  sink
    char *prefix;                 //  the format around "{}"
    char *suffix;
    bool raw;
    long process_ms;
    pthread_mutex_t *stdout_lock;
    //  result
    pthread_mutex_t lock;         //  guards error_text
    char error_text [S_ERROR_TEXT];
} s_task_args_t;

typedef struct {
    s_kind_t kind;
    const char *name;
    s_buffer_t *input;            //  NULL: an endpoint given directly (input_endpoint)
    const char *input_endpoint;
    s_buffer_t *output;
    const char *output_endpoint;
    bool own_fd;
    //  CURVE on its connections: actor-wide settings from the file, then per connection
    const char *cert;
    const char *server_key;
    sluice_cli_curve_t curve_in;
    sluice_cli_curve_t curve_out;
    //  sources and sinks
    s_task_args_t args;
    sluice_handle_t task;
    bool started;
    //  stages
    sluice_stage_opts_t stage_opts;
    const char **words;           //  NULL-terminated, strings borrowed from the config tree
    sluice_stage_t *stage;
    //  outcome
    bool done;
    sluice_err_t result;
    char error_text [S_ERROR_TEXT];
} s_actor_t;

typedef struct {
    const char *file;
    char *directory;              //  of the file: relative paths in it start there
    zconfig_t *config;
    const char *name;
    s_buffer_t *buffers;
    size_t buffer_count;
    s_actor_t *actors;
    size_t actor_count;
    size_t sink_count;
    long drain_ms;
    bool verbose;
    bool stdin_taken;
    pthread_mutex_t stdout_lock;
    sluice_cli_curve_t defaults;  //  the command's --curve-* options
    zlist_t *strings;             //  paths made from the file's values, owned
    bool out_of_memory;           //  making one failed: the file is not taken as read
} s_run_t;

static const char *
s_kind_name (s_kind_t kind)
{
    return kind == S_SOURCE ? "writer" : kind == S_STAGE ? "stage" : "reader";
}

// ---------------------------------------------------------------------------------------------
//  Tasks: a source (tokens or a file into a buffer) and a sink (a buffer to stdout)

static void
s_task_error (s_task_args_t *args, const char *what, const char *text)
{
    pthread_mutex_lock (&args->lock);
    snprintf (args->error_text, sizeof args->error_text, "%s%s%s", what,
              text && *text ? ": " : "", text ? text : "");
    pthread_mutex_unlock (&args->lock);
}

//  The opening every task actor shares: connect, signal the owner, and either hand back an
//  interruptible stream or report the failure (the task is then finished).
static sluice_stream_t *
s_task_connect (zsock_t *pipe, s_task_args_t *args)
{
    sluice_stream_t *stream = sluice_stream_new_secure (args->endpoint, args->curve);
    zsock_signal (pipe, 0);
    if (!stream) {
        s_task_error (args, args->curve ? "invalid endpoint or CURVE settings" : "invalid endpoint",
                      args->endpoint);
        sluice_task_done (pipe, SLUICE_EINVAL, "", false);
        return NULL;
    }
    sluice_stream_interrupt_on (stream, zsock_resolve (pipe));
    return stream;
}

static void
s_source_actor (zsock_t *pipe, void *argument)
{
    s_task_args_t *args = (s_task_args_t *) argument;
    sluice_stream_t *stream = s_task_connect (pipe, args);
    if (!stream)
        return;
    sluice_cli_input_t input;
    sluice_cli_input_init (&input, args->fd, args->chunk_bytes);
    sluice_err_t result = SLUICE_OK;
    bool terminated = false;
    for (size_t index = 0; ; index++) {
        const char *data;
        size_t size;
        if (args->fd >= 0) {
            int rc = sluice_cli_input_next (&input, zsock_resolve (pipe), &data, &size);
            if (rc == 0)
                break;
            if (rc == -2) {
                terminated = true;
                break;
            }
            if (rc == -1) {
                result = SLUICE_ETRANSPORT;
                s_task_error (args, "reading its file", strerror (errno));
                break;
            }
        }
        else {
            if (index == args->token_count)
                break;
            data = args->tokens [index];
            size = strlen (data);
        }
        //  The delay stands for the time the producer takes per token
        if (index > 0 && args->delay_ms > 0 && sluice_task_pause (pipe, (int) args->delay_ms) != SLUICE_TASK_GO_ON) {
            terminated = true;
            break;
        }
        result = sluice_stream_write (stream, data, size, false);
        if (result != SLUICE_OK)
            break;
    }
    if (!terminated && result == SLUICE_OK && args->final)
        result = sluice_stream_write (stream, "", 0, true);
    if (!terminated && result == SLUICE_OK && args->close_at_end)
        result = sluice_stream_close (stream);
    if (result == SLUICE_EINTR)
        terminated = true;
    else
    if (result == SLUICE_ETRANSPORT && args->curve)
        s_task_error (args, "no answer", S_CURVE_HINT);
    else
    if (result != SLUICE_OK && result != SLUICE_ETRANSPORT)
        s_task_error (args, "writing", sluice_stream_error_text (stream));
    sluice_cli_input_fini (&input);
    sluice_stream_destroy (&stream);
    sluice_task_done (pipe, result, "", terminated);
}

//  Print one chunk through the format, in one write so that readers do not interleave.
static bool
s_sink_print (s_task_args_t *args, const sluice_chunk_t *chunk, char **line, size_t *capacity)
{
    size_t prefix = strlen (args->prefix), suffix = strlen (args->suffix);
    size_t size = prefix + chunk->size + suffix + (args->raw ? 0 : 1);
    if (size > *capacity) {
        char *grown = (char *) realloc (*line, size);
        if (!grown)
            return false;
        *line = grown;
        *capacity = size;
    }
    memcpy (*line, args->prefix, prefix);
    memcpy (*line + prefix, chunk->text, chunk->size);
    memcpy (*line + prefix + chunk->size, args->suffix, suffix);
    if (!args->raw)
        (*line) [size - 1] = '\n';
    pthread_mutex_lock (args->stdout_lock);
    bool ok = fwrite (*line, 1, size, stdout) == size && fflush (stdout) == 0;
    pthread_mutex_unlock (args->stdout_lock);
    return ok;
}

static void
s_sink_actor (zsock_t *pipe, void *argument)
{
    s_task_args_t *args = (s_task_args_t *) argument;
    sluice_stream_t *stream = s_task_connect (pipe, args);
    if (!stream)
        return;
    char *line = NULL;
    size_t capacity = 0;
    sluice_err_t result = SLUICE_OK;
    bool terminated = false, printed = true;
    sluice_chunk_t chunk;
    while (sluice_stream_next (stream, &chunk)) {
        if (!s_sink_print (args, &chunk, &line, &capacity)) {
            printed = false;
            break;
        }
        if (args->process_ms > 0 && sluice_task_pause (pipe, (int) args->process_ms) != SLUICE_TASK_GO_ON) {
            terminated = true;
            break;
        }
    }
    if (!printed) {
        result = SLUICE_ETRANSPORT;
        s_task_error (args, "writing stdout", strerror (errno));
    }
    else
    if (!terminated) {
        result = sluice_stream_error (stream);
        terminated = result == SLUICE_EINTR;
        if (result == SLUICE_ETRANSPORT && args->curve)
            s_task_error (args, "no answer", S_CURVE_HINT);
        else
        if (result != SLUICE_OK && !terminated)
            s_task_error (args, "reading", sluice_stream_error_text (stream));
    }
    free (line);
    sluice_stream_destroy (&stream);
    sluice_task_done (pipe, result, "", terminated);
}

// ---------------------------------------------------------------------------------------------
//  The file

static int
s_file_error (s_run_t *run, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static int
s_file_error (s_run_t *run, const char *format, ...)
{
    fprintf (stderr, "sluice run: %s: ", run->file);
    va_list args;
    va_start (args, format);
    vfprintf (stderr, format, args);
    va_end (args);
    fprintf (stderr, "\n");
    return SLUICE_EXIT_USAGE;
}

//  The value of `key` under node, or NULL.
static const char *
s_value (zconfig_t *node, const char *key)
{
    for (zconfig_t *child = zconfig_child (node); child; child = zconfig_next (child))
        if (streq (zconfig_name (child), key))
            return zconfig_value (child);
    return NULL;
}

//  Every key under node must be one of `keys` (NULL-terminated): catches typos.
static bool
s_check_keys (s_run_t *run, zconfig_t *node, const char *what, const char *const *keys)
{
    for (zconfig_t *child = zconfig_child (node); child; child = zconfig_next (child)) {
        bool known = false;
        for (const char *const *key = keys; *key && !known; key++)
            known = streq (zconfig_name (child), *key);
        if (!known) {
            s_file_error (run, "%s: unknown key '%s'", what, zconfig_name (child));
            return false;
        }
    }
    return true;
}

static bool
s_number (s_run_t *run, zconfig_t *node, const char *what, const char *key, long min, long max,
          long *value)
{
    const char *text = s_value (node, key);
    if (!text)
        return true;        //  keeps the default
    if (sluice_cli_parse_long (text, min, max, value))
        return true;
    s_file_error (run, "%s: %s must be an integer in %ld..%ld, not '%s'", what, key, min, max, text);
    return false;
}

static bool
s_flag (s_run_t *run, zconfig_t *node, const char *what, const char *key, bool *value)
{
    const char *text = s_value (node, key);
    if (!text)
        return true;
    if (streq (text, "1") || streq (text, "yes") || streq (text, "true"))
        *value = true;
    else
    if (streq (text, "0") || streq (text, "no") || streq (text, "false"))
        *value = false;
    else {
        s_file_error (run, "%s: %s must be 1/0, yes/no or true/false, not '%s'", what, key, text);
        return false;
    }
    return true;
}

//  The values of the children of node/key, as a NULL-terminated array (strings borrowed).
static const char **
s_list (zconfig_t *node, const char *key, size_t *count)
{
    zconfig_t *list = NULL;
    for (zconfig_t *child = zconfig_child (node); child && !list; child = zconfig_next (child))
        if (streq (zconfig_name (child), key))
            list = child;
    *count = 0;
    for (zconfig_t *item = list ? zconfig_child (list) : NULL; item; item = zconfig_next (item))
        (*count)++;
    const char **items = (const char **) calloc (*count + 1, sizeof (char *));
    size_t index = 0;
    for (zconfig_t *item = list ? zconfig_child (list) : NULL; item && items; item = zconfig_next (item))
        items [index++] = zconfig_value (item);
    return items;
}

//  Can this process bind the endpoint (then the buffer is started here)?
static bool
s_bindable (const char *endpoint)
{
    if (strncmp (endpoint, "inproc://", 9) == 0 || strncmp (endpoint, "ipc://", 6) == 0)
        return true;
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return false;
    const char *host = endpoint + 6;
    const char *colon = strrchr (host, ':');
    if (!colon)
        return false;
    size_t host_size = (size_t) (colon - host);
    const char *port = colon + 1;
    return (host_size == 1 && host [0] == '*')
        || (host_size == 7 && strncmp (host, "0.0.0.0", 7) == 0)
        || streq (port, "*") || streq (port, "0");
}

static s_buffer_t *
s_find_buffer (s_run_t *run, const char *name)
{
    for (size_t index = 0; index < run->buffer_count; index++)
        if (streq (run->buffers [index].name, name))
            return &run->buffers [index];
    return NULL;
}

//  A reference to a buffer: its name in this file, or an endpoint (contains "://").
static bool
s_reference (s_run_t *run, zconfig_t *node, const char *what, const char *key,
             s_buffer_t **buffer, const char **endpoint)
{
    const char *text = s_value (node, key);
    if (!text || !*text) {
        s_file_error (run, "%s: '%s' is required (a buffer's name, or an endpoint)", what, key);
        return false;
    }
    if (strstr (text, "://")) {
        *endpoint = text;
        return true;
    }
    *buffer = s_find_buffer (run, text);
    if (!*buffer) {
        s_file_error (run, "%s: %s = %s: no buffer of that name in this file", what, key, text);
        return false;
    }
    return true;
}

// ---------------------------------------------------------------------------------------------
//  CURVE settings in the file

//  A string made here, freed with the run.
static const char *
s_own (s_run_t *run, char *string)
{
    if (string && run->strings && zlist_append (run->strings, string) == 0)
        return string;
    //  A setting lost here must not silently turn CURVE off
    run->out_of_memory = true;
    free (string);
    return NULL;
}

//  A path from the file: relative to the file's directory, like `file`. NULL when absent.
static const char *
s_path (s_run_t *run, zconfig_t *node, const char *key)
{
    const char *value = s_value (node, key);
    if (!value || !*value || value [0] == '/')
        return value;
    return s_own (run, zsys_sprintf ("%s/%s", run->directory, value));
}

//  A server key: a certificate file (relative to the file's directory) or the key itself.
static const char *
s_key_or_path (s_run_t *run, zconfig_t *node, const char *key)
{
    const char *value = s_value (node, key);
    if (!value || !*value || value [0] == '/')
        return value;
    char *path = zsys_sprintf ("%s/%s", run->directory, value);
    if (!path)
        run->out_of_memory = true;
    if (path && zsys_file_exists (path))
        return s_own (run, path);
    free (path);
    return value;
}

static bool
s_serves_network (const char *endpoint)
{
    return strncmp (endpoint, "tcp://", 6) == 0 || strncmp (endpoint, "ipc://", 6) == 0;
}

static bool
s_parse_buffer_curve (s_run_t *run, zconfig_t *node, s_buffer_t *buffer, const char *what)
{
    sluice_cli_curve_t *curve = &buffer->curve;
    curve->cert = s_path (run, node, "curve-cert");
    curve->allow = s_path (run, node, "curve-allow");
    curve->server_key = s_key_or_path (run, node, "curve-server-key");
    if (!s_flag (run, node, what, "curve-encrypt-only", &curve->encrypt_only))
        return false;
    bool server = curve->cert || curve->allow || curve->encrypt_only;
    if (buffer->local && curve->server_key) {
        s_file_error (run, "%s: curve-server-key is for a buffer running elsewhere (the key of "
                      "a buffer started here is that of its curve-cert)", what);
        return false;
    }
    if (!buffer->local && server) {
        s_file_error (run, "%s: curve-cert, curve-allow and curve-encrypt-only are for a buffer "
                      "started here; this one runs elsewhere (give its key as curve-server-key)",
                      what);
        return false;
    }
    if (server && !s_serves_network (buffer->endpoint)) {
        s_file_error (run, "%s: CURVE is for tcp:// and ipc:// endpoints; %s is reachable from "
                      "this process only", what, buffer->endpoint);
        return false;
    }
    return true;
}

//  The server side of the buffers started here, with the command's defaults.
static int
s_resolve_buffers_curve (s_run_t *run)
{
    const s_buffer_t *first = NULL;     //  the first with CURVE: its authentication rules all
    for (size_t index = 0; index < run->buffer_count; index++) {
        s_buffer_t *buffer = &run->buffers [index];
        if (!buffer->local)
            continue;
        sluice_cli_curve_t *curve = &buffer->curve;
        bool from_option = !curve->cert && s_serves_network (buffer->endpoint)
                        && run->defaults.cert;
        if (from_option)
            curve->cert = run->defaults.cert;
        if (curve->cert && !curve->allow && !curve->encrypt_only) {
            curve->allow = run->defaults.allow;
            curve->encrypt_only = run->defaults.encrypt_only;
        }
        char why [512];
        if (!sluice_cli_curve_server_check (curve, "", why, sizeof why))
            return s_file_error (run, "buffer '%s'%s: %s", buffer->name,
                                 from_option ? " (curve-cert from --curve-cert)" : "", why);
        buffer->secured = curve->curve.cert != NULL;
        if (!buffer->secured)
            continue;
        //  One process has one authenticator (sluice_curve.h): one list, or any key, for all
        bool same = first && (first->curve.allow && curve->allow
                              ? streq (first->curve.allow, curve->allow)
                              : first->curve.allow == curve->allow);
        if (first && !same)
            return s_file_error (run, "buffers '%s' and '%s' let different clients in (%s, %s): "
                                 "one process has one allowed-clients list", first->name,
                                 buffer->name,
                                 first->curve.allow ? first->curve.allow : "any key",
                                 curve->allow ? curve->allow : "any key");
        if (!first)
            first = buffer;
    }
    return SLUICE_EXIT_OK;
}

//  One connection of an actor: to `buffer` (of this file) or to `endpoint`. `cert` and `key`
//  are the actor's settings for it (NULL: the defaults).
static int
s_resolve_link (s_run_t *run, s_actor_t *actor, const char *side, s_buffer_t *buffer,
                const char *endpoint, const char *cert, const char *key,
                sluice_cli_curve_t *curve)
{
    char what [200];
    snprintf (what, sizeof what, "%s '%s'%s%s", s_kind_name (actor->kind), actor->name,
              side ? ": " : "", side ? side : "");
    if (buffer && buffer->local && !buffer->secured && key)
        return s_file_error (run, "%s: buffer '%s' is started here without CURVE: a server key "
                             "for it makes no sense", what, buffer->name);
    if (!key) {
        if (!buffer)
            key = s_serves_network (endpoint) ? run->defaults.server_key : NULL;
        else
        if (buffer->local)
            key = buffer->secured ? buffer->curve.public_key : NULL;
        else
            key = buffer->curve.server_key ? buffer->curve.server_key : run->defaults.server_key;
    }
    memset (curve, 0, sizeof *curve);
    if (!key)
        return SLUICE_EXIT_OK;          //  plaintext
    curve->server_key = key;
    curve->cert = cert ? cert : run->defaults.cert;
    char why [512];
    if (!sluice_cli_curve_client_check (curve, "", why, sizeof why))
        return s_file_error (run, "%s: %s", what, why);
    if (!buffer || !buffer->local || !buffer->curve.allow)
        return SLUICE_EXIT_OK;
    //  Refused at the handshake otherwise: better said now than after the liveness bound
    if (!curve->cert)
        return s_file_error (run, "%s: buffer '%s' lets in only the clients in %s: give a "
                             "curve-cert whose public certificate is there", what, buffer->name,
                             buffer->curve.allow);
    zcertstore_t *store = zcertstore_new (buffer->curve.allow);
    bool allowed = store && zcertstore_lookup (store, curve->public_key);
    zcertstore_destroy (&store);
    if (!allowed)
        return s_file_error (run, "%s: curve-cert %s is not among the clients buffer '%s' lets "
                             "in (curve-allow %s)", what, curve->cert, buffer->name,
                             buffer->curve.allow);
    return SLUICE_EXIT_OK;
}

static int
s_resolve_curve (s_run_t *run)
{
    int rc = s_resolve_buffers_curve (run);
    for (size_t index = 0; rc == SLUICE_EXIT_OK && index < run->actor_count; index++) {
        s_actor_t *actor = &run->actors [index];
        const char *cert = actor->cert, *key = actor->server_key;
        if (actor->kind == S_SOURCE)
            rc = s_resolve_link (run, actor, NULL, actor->output, actor->output_endpoint, cert,
                                 key, &actor->curve_out);
        else
        if (actor->kind == S_SINK)
            rc = s_resolve_link (run, actor, NULL, actor->input, actor->input_endpoint, cert,
                                 key, &actor->curve_in);
        else {
            //  Per connection, else the stage's own settings
            sluice_cli_curve_t *in = &actor->curve_in, *out = &actor->curve_out;
            const char *in_cert = in->cert ? in->cert : cert;
            const char *in_key = in->server_key ? in->server_key : key;
            const char *out_cert = out->cert ? out->cert : cert;
            const char *out_key = out->server_key ? out->server_key : key;
            rc = s_resolve_link (run, actor, "input", actor->input, actor->input_endpoint,
                                 in_cert, in_key, in);
            if (rc == SLUICE_EXIT_OK)
                rc = s_resolve_link (run, actor, "output", actor->output, actor->output_endpoint,
                                     out_cert, out_key, out);
            if (rc == SLUICE_EXIT_OK && cert && !in->curve.server_key && !out->curve.server_key)
                rc = s_file_error (run, "stage '%s': curve-cert needs a server key: curve-server-"
                                   "key, or a buffer with CURVE", actor->name);
            continue;
        }
        if (rc == SLUICE_EXIT_OK && cert && !actor->curve_in.curve.server_key
        &&  !actor->curve_out.curve.server_key)
            rc = s_file_error (run, "%s '%s': curve-cert needs a server key: curve-server-key, "
                               "or a buffer with CURVE", s_kind_name (actor->kind), actor->name);
    }
    return rc;
}

static bool
s_parse_buffer (s_run_t *run, zconfig_t *node, s_buffer_t *buffer, const char *what)
{
    static const char *const keys [] = { "endpoint", "capacity", "max-chunk", "events", "start",
        "curve-cert", "curve-allow", "curve-encrypt-only", "curve-server-key", NULL };
    if (!s_check_keys (run, node, what, keys))
        return false;
    buffer->endpoint = s_value (node, "endpoint");
    if (!buffer->endpoint || !*buffer->endpoint) {
        s_file_error (run, "%s: 'endpoint' is required", what);
        return false;
    }
    buffer->events = s_value (node, "events");
    buffer->capacity = 64;
    const char *start = s_value (node, "start");
    buffer->local = s_bindable (buffer->endpoint);
    if (start && !streq (start, "auto") && !s_flag (run, node, what, "start", &buffer->local))
        return false;
    return s_number (run, node, what, "capacity", 1, 1L << 24, &buffer->capacity)
        && s_number (run, node, what, "max-chunk", 1, INT32_MAX, &buffer->max_chunk)
        && s_parse_buffer_curve (run, node, buffer, what);
}

static bool
s_parse_source (s_run_t *run, zconfig_t *node, s_actor_t *actor, const char *what)
{
    static const char *const keys [] = {
        "output", "tokens", "file", "chunk-bytes", "delay", "close", "final",
        "curve-cert", "curve-server-key", NULL };
    if (!s_check_keys (run, node, what, keys)
    ||  !s_reference (run, node, what, "output", &actor->output, &actor->output_endpoint))
        return false;
    s_task_args_t *args = &actor->args;
    args->close_at_end = true;
    long chunk_bytes = 0;
    if (!s_number (run, node, what, "delay", 0, INT32_MAX, &args->delay_ms)
    ||  !s_number (run, node, what, "chunk-bytes", 1, INT32_MAX, &chunk_bytes)
    ||  !s_flag (run, node, what, "close", &args->close_at_end)
    ||  !s_flag (run, node, what, "final", &args->final))
        return false;
    args->chunk_bytes = (size_t) chunk_bytes;
    const char *file = s_value (node, "file");
    bool has_tokens = false;
    for (zconfig_t *child = zconfig_child (node); child; child = zconfig_next (child))
        has_tokens = has_tokens || streq (zconfig_name (child), "tokens");
    if (!file == !has_tokens) {
        s_file_error (run, "%s: give either a 'tokens' list or a 'file'", what);
        return false;
    }
    args->fd = -1;
    if (has_tokens) {
        args->tokens = s_list (node, "tokens", &args->token_count);
        return args->tokens != NULL;
    }
    if (streq (file, "-")) {
        if (run->stdin_taken) {
            s_file_error (run, "%s: only one writer can read stdin", what);
            return false;
        }
        run->stdin_taken = true;
        args->fd = STDIN_FILENO;
        return true;
    }
    char *path = file [0] == '/' ? strdup (file) : zsys_sprintf ("%s/%s", run->directory, file);
    args->fd = path ? open (path, O_RDONLY | O_CLOEXEC) : -1;
    if (args->fd == -1) {
        s_file_error (run, "%s: cannot open %s: %s", what, path ? path : file, strerror (errno));
        free (path);
        return false;
    }
    free (path);
    actor->own_fd = true;
    return true;
}

static bool
s_parse_stage (s_run_t *run, zconfig_t *node, s_actor_t *actor, const char *what)
{
    static const char *const keys [] = { "input", "output", "transform", "words", "keep-open",
        "curve-cert", "curve-server-key", "input-curve-cert", "input-curve-server-key",
        "output-curve-cert", "output-curve-server-key", NULL };
    if (!s_check_keys (run, node, what, keys)
    ||  !s_reference (run, node, what, "input", &actor->input, &actor->input_endpoint)
    ||  !s_reference (run, node, what, "output", &actor->output, &actor->output_endpoint)
    ||  !s_flag (run, node, what, "keep-open", &actor->stage_opts.keep_output_open))
        return false;
    const char *name = s_value (node, "transform");
    const sluice_stage_transform_t *transform = sluice_stage_transform_find (name);
    if (!transform) {
        s_file_error (run, "%s: transform must be one of %s, not '%s'", what,
                      sluice_stage_transform_names (), name ? name : "");
        return false;
    }
    size_t count;
    actor->words = s_list (node, "words", &count);
    if (!actor->words)
        return false;
    if (count && !transform->takes_words) {
        s_file_error (run, "%s: 'words' is for transform = mask", what);
        return false;
    }
    actor->stage_opts.transform = transform->fn;
    actor->stage_opts.user = transform->takes_words ? (void *) actor->words : NULL;
    actor->curve_in.cert = s_path (run, node, "input-curve-cert");
    actor->curve_in.server_key = s_key_or_path (run, node, "input-curve-server-key");
    actor->curve_out.cert = s_path (run, node, "output-curve-cert");
    actor->curve_out.server_key = s_key_or_path (run, node, "output-curve-server-key");
    return true;
}

static bool
s_parse_sink (s_run_t *run, zconfig_t *node, s_actor_t *actor, const char *what)
{
    static const char *const keys [] = { "input", "format", "raw", "process",
        "curve-cert", "curve-server-key", NULL };
    s_task_args_t *args = &actor->args;
    if (!s_check_keys (run, node, what, keys)
    ||  !s_reference (run, node, what, "input", &actor->input, &actor->input_endpoint)
    ||  !s_flag (run, node, what, "raw", &args->raw)
    ||  !s_number (run, node, what, "process", 0, INT32_MAX, &args->process_ms))
        return false;
    const char *format = s_value (node, "format");
    if (!format)
        format = "{}";
    const char *hole = strstr (format, "{}");
    if (!hole) {
        s_file_error (run, "%s: format must contain {} (where the chunk goes)", what);
        return false;
    }
    args->prefix = strndup (format, (size_t) (hole - format));
    args->suffix = strdup (hole + 2);
    args->stdout_lock = &run->stdout_lock;
    return args->prefix && args->suffix;
}

static int
s_parse (s_run_t *run)
{
    zconfig_t *root = run->config;
    //  Count first: the arrays do not move once actors point into them
    size_t buffers = 0, actors = 0;
    for (zconfig_t *node = zconfig_child (root); node; node = zconfig_next (node)) {
        const char *kind = zconfig_name (node);
        if (streq (kind, "buffer"))
            buffers++;
        else
        if (streq (kind, "writer") || streq (kind, "stage") || streq (kind, "reader"))
            actors++;
        else
        if (!streq (kind, "pipeline"))
            return s_file_error (run, "unknown section '%s' (pipeline, buffer, writer, stage, "
                                 "reader)", kind);
    }
    run->buffers = (s_buffer_t *) calloc (buffers ? buffers : 1, sizeof (s_buffer_t));
    run->actors = (s_actor_t *) calloc (actors ? actors : 1, sizeof (s_actor_t));
    if (!run->buffers || !run->actors)
        return s_file_error (run, "out of memory");

    //  Buffers first, so that actors can name them wherever they appear in the file
    for (zconfig_t *node = zconfig_child (root); node; node = zconfig_next (node)) {
        const char *kind = zconfig_name (node);
        const char *name = zconfig_value (node);
        char what [160];
        snprintf (what, sizeof what, "%s '%s'", kind, name ? name : "");
        if (streq (kind, "pipeline")) {
            static const char *const keys [] = { "name", "drain-timeout", NULL };
            if (!s_check_keys (run, node, "pipeline", keys)
            ||  !s_number (run, node, "pipeline", "drain-timeout", 0, INT32_MAX, &run->drain_ms))
                return SLUICE_EXIT_USAGE;
            run->name = s_value (node, "name");
            continue;
        }
        if (!name || !*name)
            return s_file_error (run, "every %s needs a name: %s = NAME", kind, kind);
        if (!streq (kind, "buffer"))
            continue;
        if (s_find_buffer (run, name))
            return s_file_error (run, "two buffers named '%s'", name);
        s_buffer_t *buffer = &run->buffers [run->buffer_count];
        if (!s_parse_buffer (run, node, buffer, what))
            return SLUICE_EXIT_USAGE;
        buffer->name = strdup (name);
        run->buffer_count++;
    }
    for (zconfig_t *node = zconfig_child (root); node; node = zconfig_next (node)) {
        const char *kind = zconfig_name (node);
        if (streq (kind, "pipeline") || streq (kind, "buffer"))
            continue;
        char what [160];
        snprintf (what, sizeof what, "%s '%s'", kind, zconfig_value (node));
        s_actor_t *actor = &run->actors [run->actor_count++];
        actor->name = zconfig_value (node);
        actor->args.fd = -1;
        pthread_mutex_init (&actor->args.lock, NULL);
        actor->cert = s_path (run, node, "curve-cert");
        actor->server_key = s_key_or_path (run, node, "curve-server-key");
        bool ok;
        if (streq (kind, "writer")) {
            actor->kind = S_SOURCE;
            ok = s_parse_source (run, node, actor, what);
        }
        else
        if (streq (kind, "stage")) {
            actor->kind = S_STAGE;
            ok = s_parse_stage (run, node, actor, what);
        }
        else {
            actor->kind = S_SINK;
            run->sink_count++;
            ok = s_parse_sink (run, node, actor, what);
        }
        if (!ok)
            return SLUICE_EXIT_USAGE;
    }
    if (actors == 0)
        return s_file_error (run, "no writer, stage or reader: nothing to run");
    if (run->out_of_memory)
        return s_file_error (run, "out of memory");
    return s_resolve_curve (run);
}

// ---------------------------------------------------------------------------------------------
//  Running

static int
s_start_buffers (s_run_t *run)
{
    for (size_t index = 0; index < run->buffer_count; index++) {
        s_buffer_t *buffer = &run->buffers [index];
        if (!buffer->local) {
            buffer->connect = strdup (buffer->endpoint);
            if (run->verbose)
                fprintf (stderr, "sluice run: buffer '%s' runs elsewhere, at %s\n", buffer->name,
                         buffer->endpoint);
            continue;
        }
        sluice_buffer_opts_t opts = {
            .endpoint = buffer->endpoint,
            .events_endpoint = buffer->events,
            .capacity = (size_t) buffer->capacity,
            .max_chunk_size = (size_t) buffer->max_chunk,
            .curve = sluice_cli_curve_get (&buffer->curve),
        };
        sluice_err_t err;
        buffer->buffer = sluice_buffer_new (&opts, &err);
        if (!buffer->buffer && err == SLUICE_EINVAL && opts.curve)
            return sluice_cli_fail ("run", err, NULL, "buffer '%s': cannot start on %s with these "
                                    "CURVE settings (the line above says why)", buffer->name,
                                    buffer->endpoint);
        if (!buffer->buffer)
            return sluice_cli_fail ("run", err, NULL, "buffer '%s': cannot bind %s", buffer->name,
                                    buffer->endpoint);
        //  A wildcard address is for others to reach us; we connect over loopback
        const char *bound = sluice_buffer_endpoint (buffer->buffer);
        if (strncmp (bound, "tcp://0.0.0.0:", 14) == 0)
            buffer->connect = zsys_sprintf ("tcp://127.0.0.1:%s", bound + 14);
        else
            buffer->connect = strdup (bound);
        if (run->verbose)
            fprintf (stderr, "sluice run: buffer '%s' (capacity %ld) listening on %s%s%s%s\n",
                     buffer->name, buffer->capacity, bound,
                     buffer->secured ? " with CURVE, key " : "",
                     buffer->secured ? buffer->curve.public_key : "",
                     !buffer->secured ? "" : buffer->curve.allow ? ", clients from curve-allow"
                                                                 : ", any client key");
    }
    return SLUICE_EXIT_OK;
}

static const char *
s_endpoint_of (s_buffer_t *buffer, const char *endpoint)
{
    return buffer ? buffer->connect : endpoint;
}

static int
s_start_actor (s_run_t *run, s_actor_t *actor)
{
    sluice_err_t err = SLUICE_OK;
    if (actor->kind == S_STAGE) {
        actor->stage_opts.input = s_endpoint_of (actor->input, actor->input_endpoint);
        actor->stage_opts.output = s_endpoint_of (actor->output, actor->output_endpoint);
        actor->stage_opts.input_curve = sluice_cli_curve_get (&actor->curve_in);
        actor->stage_opts.output_curve = sluice_cli_curve_get (&actor->curve_out);
        actor->stage = sluice_stage_new (&actor->stage_opts, &err);
    }
    else {
        if (actor->kind == S_SOURCE) {
            actor->args.endpoint = s_endpoint_of (actor->output, actor->output_endpoint);
            actor->args.curve = sluice_cli_curve_get (&actor->curve_out);
        }
        else {
            actor->args.endpoint = s_endpoint_of (actor->input, actor->input_endpoint);
            actor->args.curve = sluice_cli_curve_get (&actor->curve_in);
        }
        err = sluice_handle_start (&actor->task, actor->kind == S_SOURCE ? s_source_actor
                                                                          : s_sink_actor,
                                   &actor->args, NULL, NULL);
        actor->started = err == SLUICE_OK;
    }
    if (err != SLUICE_OK)
        return sluice_cli_fail ("run", err, NULL, "%s '%s': cannot start", s_kind_name (actor->kind),
                                actor->name);
    return SLUICE_EXIT_OK;
}

//  The raw socket that becomes readable when the actor has finished.
static void *
s_actor_socket (s_actor_t *actor)
{
    return zsock_resolve (actor->kind == S_STAGE ? sluice_stage_actor_handle (actor->stage)
                                                 : (void *) actor->task.actor);
}

//  Take the actor's result if it has finished. Returns true when it is done.
static bool
s_actor_poll (s_actor_t *actor)
{
    if (actor->done)
        return true;
    sluice_err_t rc;
    if (actor->kind == S_STAGE) {
        rc = sluice_stage_wait (actor->stage, 0);
        if (rc == SLUICE_ETIMEOUT)
            return false;
        snprintf (actor->error_text, sizeof actor->error_text, "%s",
                  sluice_stage_error_text (actor->stage));
    }
    else {
        if (!actor->started)
            return false;
        rc = sluice_handle_wait (&actor->task, 0);
        if (rc == SLUICE_ETIMEOUT && !actor->task.done)
            return false;
        pthread_mutex_lock (&actor->args.lock);
        snprintf (actor->error_text, sizeof actor->error_text, "%s", actor->args.error_text);
        pthread_mutex_unlock (&actor->args.lock);
    }
    actor->done = true;
    actor->result = rc;
    return true;
}

//  Stop an actor that has not finished (its result is then not reported).
static void
s_actor_stop (s_actor_t *actor)
{
    if (actor->kind == S_STAGE)
        sluice_stage_destroy (&actor->stage);
    else
    if (actor->started) {
        sluice_handle_destroy (&actor->task);
        actor->started = false;
    }
    if (!actor->done) {
        actor->done = true;
        actor->result = SLUICE_EINTR;
    }
}

//  At shutdown, closing our buffers ends what reads them (after draining); what it cannot end
//  is stopped instead of waited for: writers (one may be blocked on its file or stdin; a write
//  stopped unacknowledged was never enqueued) and actors reading a buffer running elsewhere.
static bool
s_stop_at_shutdown (s_actor_t *actor)
{
    return actor->kind == S_SOURCE || !actor->input || !actor->input->local;
}

static void
s_close_local_buffers (s_run_t *run)
{
    for (size_t index = 0; index < run->buffer_count; index++)
        if (run->buffers [index].buffer)
            sluice_buffer_close (run->buffers [index].buffer);
}

//  Check (without waiting) whether local buffers are closed and drained; arms the watch.
static bool
s_buffers_drained (s_run_t *run)
{
    bool all = true;
    for (size_t index = 0; index < run->buffer_count; index++) {
        s_buffer_t *buffer = &run->buffers [index];
        if (!buffer->buffer || buffer->drained)
            continue;
        sluice_err_t rc = sluice_buffer_wait_drained (buffer->buffer, 0);
        buffer->drain_armed = true;
        buffer->drained = rc == SLUICE_OK;
        all = all && buffer->drained;
    }
    return all;
}

typedef enum { S_RUNNING, S_FINISHING, S_INTERRUPTED } s_phase_t;

//  Report a finished actor's failure; returns its exit code (0 when there is none to report).
static int
s_report (s_actor_t *actor, s_phase_t phase)
{
    if (actor->result == SLUICE_OK || actor->result == SLUICE_EINTR)
        return SLUICE_EXIT_OK;
    //  Once we have closed the buffers, a closed buffer is what we asked for
    if (actor->result == SLUICE_ECLOSED && phase != S_RUNNING)
        return SLUICE_EXIT_OK;
    return sluice_cli_fail ("run", actor->result, actor->error_text, "%s '%s'",
                            s_kind_name (actor->kind), actor->name);
}

static void
s_report_stuck (s_run_t *run)
{
    fprintf (stderr, "sluice run: gave up after %ld ms waiting for:", run->drain_ms);
    for (size_t index = 0; index < run->actor_count; index++)
        if (!run->actors [index].done)
            fprintf (stderr, " %s '%s'", s_kind_name (run->actors [index].kind),
                     run->actors [index].name);
    for (size_t index = 0; index < run->buffer_count; index++)
        if (run->buffers [index].buffer && !run->buffers [index].drained && run->sink_count == 0)
            fprintf (stderr, " buffer '%s' (not drained)", run->buffers [index].name);
    fprintf (stderr, "\n");
}

//  Take the actor's result if it has just finished, and report it (once).
static void
s_collect (s_actor_t *actor, s_phase_t phase, int *exit_code)
{
    bool was_done = actor->done;
    if (s_actor_poll (actor) && !was_done) {
        int code = s_report (actor, phase);
        if (*exit_code == SLUICE_EXIT_OK)
            *exit_code = code;
    }
}

//  Close our buffers and stop what closing cannot end; the caller waits for the rest. Results
//  that arrived meanwhile are taken first: stopping an actor would lose them.
static void
s_begin_shutdown (s_run_t *run, int *exit_code)
{
    for (size_t index = 0; index < run->actor_count; index++)
        s_collect (&run->actors [index], S_RUNNING, exit_code);
    s_close_local_buffers (run);
    for (size_t index = 0; index < run->actor_count; index++) {
        s_actor_t *actor = &run->actors [index];
        if (!actor->done && s_stop_at_shutdown (actor))
            s_actor_stop (actor);
    }
}

static int
s_loop (s_run_t *run, int signals)
{
    s_phase_t phase = S_RUNNING;
    int64_t deadline = INT64_MAX;
    int exit_code = SLUICE_EXIT_OK;
    bool has_readers = run->sink_count > 0;
    size_t slots = 1 + run->actor_count + run->buffer_count;
    zmq_pollitem_t *items = (zmq_pollitem_t *) calloc (slots, sizeof *items);
    if (!items)
        return sluice_cli_fail ("run", SLUICE_ENOMEM, NULL, "starting");
    while (true) {
        bool readers_done = true, all_done = true;
        for (size_t index = 0; index < run->actor_count; index++) {
            s_actor_t *actor = &run->actors [index];
            s_collect (actor, phase, &exit_code);
            all_done = all_done && actor->done;
            if (actor->kind == S_SINK)
                readers_done = readers_done && actor->done;
        }
        //  Readers end where their buffers are drained; without readers here, the buffers
        //  we serve to others are the end
        bool drained = has_readers || s_buffers_drained (run);
        if (phase == S_RUNNING && (has_readers ? readers_done : all_done && drained)) {
            phase = S_FINISHING;
            deadline = zclock_mono () + run->drain_ms;
            s_begin_shutdown (run, &exit_code);
            continue;
        }
        if (phase != S_RUNNING && all_done && drained)
            break;

        size_t count = 0;
        items [count++] = (zmq_pollitem_t) { NULL, signals, ZMQ_POLLIN, 0 };
        for (size_t index = 0; index < run->actor_count; index++)
            if (!run->actors [index].done)
                items [count++] = (zmq_pollitem_t) { s_actor_socket (&run->actors [index]), 0, ZMQ_POLLIN, 0 };
        for (size_t index = 0; index < run->buffer_count; index++) {
            s_buffer_t *buffer = &run->buffers [index];
            if (buffer->buffer && buffer->drain_armed && !buffer->drained)
                items [count++] = (zmq_pollitem_t) {
                    zsock_resolve (sluice_buffer_actor_handle (buffer->buffer)), 0, ZMQ_POLLIN, 0 };
        }
        int rc = zmq_poll (items, (int) count, sluice_poll_timeout (deadline));
        if (rc == -1 && zmq_errno () == EINTR)
            continue;
        if (rc == -1) {
            exit_code = sluice_cli_fail ("run", SLUICE_ETRANSPORT, zmq_strerror (zmq_errno ()), "poll");
            break;
        }
        if (rc == 0) {
            s_report_stuck (run);
            if (exit_code == SLUICE_EXIT_OK)
                exit_code = SLUICE_EXIT_TIMEOUT;
            break;
        }
        if (items [0].revents & ZMQ_POLLIN) {
            int signal = sluice_cli_signal_take (signals);
            if (signal && phase == S_RUNNING) {
                //  Like `sluice buffer`: writers stop, our buffers close, readers drain them
                phase = S_INTERRUPTED;
                deadline = zclock_mono () + run->drain_ms;
                s_begin_shutdown (run, &exit_code);
            }
            else
            if (signal) {
                fprintf (stderr, "sluice run: signal while ending: stopping without waiting\n");
                if (exit_code == SLUICE_EXIT_OK)
                    exit_code = SLUICE_EXIT_ERROR;
                break;
            }
        }
        //  Finished actors and drained buffers are picked up at the top of the loop
    }
    free (items);
    return exit_code;
}

static void
s_run_destroy (s_run_t *run)
{
    //  Producers first, so that nothing writes into a buffer being destroyed
    for (int kind = S_SOURCE; kind <= (int) S_SINK; kind++)
        for (size_t index = 0; index < run->actor_count; index++)
            if ((int) run->actors [index].kind == kind)
                s_actor_stop (&run->actors [index]);
    for (size_t index = 0; index < run->actor_count; index++) {
        s_actor_t *actor = &run->actors [index];
        if (actor->own_fd)
            close (actor->args.fd);
        free (actor->args.tokens);
        free (actor->args.prefix);
        free (actor->args.suffix);
        free (actor->words);
        pthread_mutex_destroy (&actor->args.lock);
    }
    for (size_t index = 0; index < run->buffer_count; index++) {
        sluice_buffer_destroy (&run->buffers [index].buffer);
        free (run->buffers [index].name);
        zstr_free (&run->buffers [index].connect);
    }
    free (run->actors);
    free (run->buffers);
    zconfig_destroy (&run->config);
    free (run->directory);
    while (run->strings && zlist_size (run->strings))
        free (zlist_pop (run->strings));
    zlist_destroy (&run->strings);
    pthread_mutex_destroy (&run->stdout_lock);
}

static void
s_run_usage (FILE *out)
{
    fprintf (out,
        "usage: sluice run [options] PIPELINE-FILE\n"
        "Run the pipeline described in PIPELINE-FILE (ZPL, see docs/PIPELINES.md): its buffers,\n"
        "writers, stages and readers, in this process. A buffer whose endpoint names another\n"
        "host runs elsewhere: the actors here connect to it.\n"
        "The run ends when every reader has reached the end of its stream (a file without\n"
        "readers: when its writers and stages are done and its buffers drained). On SIGINT or\n"
        "SIGTERM the writers stop and the buffers started here are closed: stages and readers\n"
        "drain what is queued, then the run exits (0); a second signal stops at once.\n"
        "  -d, --drain-timeout MS  how long the end may take once it has begun (default %d)\n"
        "  -v, --verbose           say on stderr where each buffer is\n"
        "  -h, --help\n"
        "CURVE (the file can say all this per buffer and actor: docs/PIPELINES.md); defaults:\n"
        "      --curve-cert FILE   this process's certificate (the *_secret file): for the\n"
        "                          buffers started here on tcp:// or ipc://, and for the\n"
        "                          writers, stages and readers connecting with CURVE\n"
        "      --curve-allow DIR   those buffers accept only clients whose public\n"
        "                          certificates are in DIR ...\n"
        "      --curve-encrypt-only  ... or any client key (encryption, no authentication)\n"
        "      --curve-server-key KEY|FILE  the key of the buffers running elsewhere\n"
        "Exit: 0 every reader reached end of stream and nothing failed, 1 an actor failed,\n"
        "2 usage or invalid file, 3 the end took longer than --drain-timeout, 4 a writer or\n"
        "stage met a buffer closed under it.\n", SLUICE_CLI_DEFAULT_DRAIN);
}

int
sluice_cli_run (int argc, char **argv)
{
    static const struct option options [] = {
        { "drain-timeout", required_argument, NULL, 'd' },
        { "verbose",       no_argument,       NULL, 'v' },
        { "help",          no_argument,       NULL, 'h' },
        SLUICE_CLI_CURVE_SERVER_OPTIONS
        { "curve-server-key", required_argument, NULL, SLUICE_CLI_OPT_CURVE_SERVER_KEY },
        { NULL, 0, NULL, 0 }
    };
    sluice_cli_curve_t defaults;
    memset (&defaults, 0, sizeof defaults);
    long drain = -1;
    bool verbose = false;
    int option;
    while ((option = getopt_long (argc, argv, "d:vh", options, NULL)) != -1) {
        switch (option) {
            case 'd':
                if (!sluice_cli_option_int ("run", "drain-timeout", optarg, 0, INT32_MAX, &drain))
                    return SLUICE_EXIT_USAGE;
                break;
            case 'v': verbose = true; break;
            case 'h': s_run_usage (stdout); return SLUICE_EXIT_OK;
            default:
                if (sluice_cli_curve_option (&defaults, option, optarg))
                    break;
                return sluice_cli_bad_option ("run", argc, argv);
        }
    }
    if (argc - optind != 1)
        return sluice_cli_usage_error ("run", "one PIPELINE-FILE expected");
    if (defaults.allow && defaults.encrypt_only)
        return sluice_cli_usage_error ("run", "--curve-allow and --curve-encrypt-only exclude "
                                       "each other: authenticate clients, or accept any");
    if ((defaults.allow || defaults.encrypt_only) && !defaults.cert)
        return sluice_cli_usage_error ("run", "--curve-%s needs --curve-cert (the certificate "
                                       "of the buffers started here)",
                                       defaults.allow ? "allow" : "encrypt-only");
    //  Checked now even if no entry ends up using them
    sluice_cli_curve_t check = { .cert = defaults.cert, .server_key = defaults.server_key };
    char why [512];
    if (check.server_key && sluice_cli_curve_client ("run", &check) != SLUICE_EXIT_OK)
        return SLUICE_EXIT_USAGE;
    if (check.cert && !sluice_cli_cert_load (check.cert, check.public_key, why, sizeof why))
        return sluice_cli_usage_error ("run", "--curve-cert: %s", why);
    const char *file = argv [optind];
    if (access (file, R_OK) != 0) {
        fprintf (stderr, "sluice run: %s: %s\n", file, strerror (errno));
        return SLUICE_EXIT_USAGE;
    }
    int signals = sluice_cli_server_init ();
    if (signals == -1) {
        fprintf (stderr, "sluice run: cannot take signals: %s\n", strerror (errno));
        return SLUICE_EXIT_ERROR;
    }

    s_run_t run;
    memset (&run, 0, sizeof run);
    run.file = file;
    run.verbose = verbose;
    run.drain_ms = SLUICE_CLI_DEFAULT_DRAIN;
    run.defaults = defaults;
    run.strings = zlist_new ();
    pthread_mutex_init (&run.stdout_lock, NULL);
    char *copy = strdup (file);
    run.directory = strdup (copy ? dirname (copy) : ".");
    free (copy);
    //  zconfig reports a syntax error, with its line, on stderr itself. (zconfig_load leaks
    //  on a syntax error in czmq 4.2; loading from a chunk does not.)
    zchunk_t *text = zchunk_slurp (file, 0);
    run.config = text ? zconfig_chunk_load (text) : NULL;
    zchunk_destroy (&text);
    int exit_code = run.config ? s_parse (&run)
                               : s_file_error (&run, "not a valid ZPL file (see docs/PIPELINES.md)");
    if (drain >= 0)
        run.drain_ms = drain;
    if (exit_code == SLUICE_EXIT_OK)
        exit_code = s_start_buffers (&run);
    //  Consumers first: nothing is written before someone is there to take it
    for (int kind = S_SINK; exit_code == SLUICE_EXIT_OK && kind >= (int) S_SOURCE; kind--)
        for (size_t index = 0; exit_code == SLUICE_EXIT_OK && index < run.actor_count; index++)
            if ((int) run.actors [index].kind == kind)
                exit_code = s_start_actor (&run, &run.actors [index]);
    if (exit_code == SLUICE_EXIT_OK)
        exit_code = s_loop (&run, signals);
    s_run_destroy (&run);
    close (signals);
    return exit_code;
}
