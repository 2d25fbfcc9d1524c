/*  sluice_pipeline.c - the pipeline runtime: a file of buffers, writers, stages and readers,
    checked, started and supervised.

    Loading parses the ZPL tree into buffers and actors, resolves every reference and every
    CURVE setting, and reports the first fault before anything starts. Starting runs a
    supervisor actor (a zactor like every other): it starts the buffers that belong here, then
    the actors (consumers first), and waits on all of them at once. When the run's end comes
    (every reader at end of stream, or a stop), it closes the buffers started here, so that
    stages and readers drain them, and stops what closing cannot end: writers, and actors that
    read a buffer running elsewhere. The drain timeout bounds that end.
*/
#include "sluice_actor.h"
#include "sluice_pipeline.h"
#include "sluice_buffer.h"
#include "sluice_writer.h"
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>

#define S_CURVE_HINT "a server that refuses a CURVE client does not answer it: check the " \
                     "server key, and that this client's certificate is allowed there"

//  CURVE settings as the file (or the defaults) gave them, then checked and resolved.
typedef struct {
    sluice_curve_t given;
    sluice_curve_checked_t checked;
} s_curve_t;

static const sluice_curve_t *
s_curve_get (s_curve_t *self)
{
    return sluice_curve_checked_get (&self->checked);
}

typedef struct {
    char *name;
    const char *endpoint;         //  as configured (owned by the config tree)
    const char *events;
    char *connect;                //  where the actors of this process connect
    long capacity, max_chunk;
    bool local;                   //  started here
    s_curve_t curve;              //  here: server settings; elsewhere: its key (server_key)
    bool secured;                 //  started here with CURVE
    sluice_buffer_t *buffer;
    bool drain_armed;             //  a wait_drained is pending in the actor
    bool drained;
} s_buffer_t;

typedef enum { S_WRITER, S_STAGE, S_READER } s_kind_t;

typedef struct s_actor_t s_actor_t;
struct s_actor_t {
    sluice_pipeline_t *pipeline;
    s_kind_t kind;
    const char *name;
    s_buffer_t *input;            //  NULL: an endpoint given directly (input_endpoint)
    const char *input_endpoint;
    s_buffer_t *output;
    const char *output_endpoint;
    //  CURVE on its connections: actor-wide settings from the file, then per connection
    const char *cert;
    const char *server_key;
    s_curve_t curve_in;
    s_curve_t curve_out;
    //  writers
    sluice_writer_opts_t writer_opts;
    const char **tokens;          //  strings borrowed from the config tree
    FILE *file;                   //  opened here (not stdin), closed with the pipeline
    sluice_writer_t *writer;
    //  stages
    sluice_stage_opts_t stage_opts;
    const char **words;           //  NULL-terminated, strings borrowed from the config tree
    size_t option;                //  the transform's numeric option (max-bytes)
    sluice_stage_t *stage;
    //  readers
    sluice_reader_opts_t reader_opts;
    char *prefix;                 //  the format around "{}"
    char *suffix;
    bool raw;
    char *line;                   //  one printed chunk, reused
    size_t line_capacity;
    int sink_errno;               //  why printing failed
    sluice_reader_t *reader;
    //  outcome
    bool done;
    sluice_err_t result;
    bool closed_under;            //  its output was closed while the run went on: judged at
                                  //  the end (a stage that stopped its stream closes its input)
    char error_text [512];
};

struct sluice_pipeline_t {
    char *file;                   //  as named in messages
    char *directory;              //  relative paths in the file start there
    zconfig_t *config;
    bool loaded;                  //  load was called ...
    bool load_ok;                 //  ... and succeeded
    s_buffer_t *buffers;
    size_t buffer_count;
    s_actor_t *actors;
    size_t actor_count;
    size_t reader_count;
    long drain_ms;
    int drain_override;           //  -1: the file's
    FILE *log;
    bool stdin_taken;
    pthread_mutex_t stdout_lock;  //  readers print whole chunks
    s_curve_t defaults;
    zlist_t *strings;             //  paths made from the file's values, owned
    bool out_of_memory;           //  making one failed: the file is not taken as read
    char *error;                  //  lines, or NULL
    //  running
    sluice_handle_t handle;       //  the supervisor
    bool started;
    sluice_err_t start_result;    //  written by the supervisor before it signals
    bool finished;
    sluice_err_t result;          //  written by the supervisor before DONE
};

static const char *
s_kind_name (s_kind_t kind)
{
    return kind == S_WRITER ? "writer" : kind == S_STAGE ? "stage" : "reader";
}

//  Add a line to the error text.
static void
s_error (sluice_pipeline_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_error (sluice_pipeline_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *line = zsys_vprintf (format, args);
    va_end (args);
    if (!line)
        return;
    char *joined = self->error ? zsys_sprintf ("%s\n%s", self->error, line) : line;
    if (joined != line)
        free (line);
    if (joined) {
        free (self->error);
        self->error = joined;
    }
}

// ---------------------------------------------------------------------------------------------
//  The file: values, references, paths

//  A fault in the file: SLUICE_EINVAL, with "FILE: message".
static sluice_err_t
s_file_error (sluice_pipeline_t *self, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static sluice_err_t
s_file_error (sluice_pipeline_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *message = zsys_vprintf (format, args);
    va_end (args);
    s_error (self, "%s: %s", self->file, message ? message : "out of memory");
    free (message);
    return SLUICE_EINVAL;
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
s_check_keys (sluice_pipeline_t *self, zconfig_t *node, const char *what,
              const char *const *keys)
{
    for (zconfig_t *child = zconfig_child (node); child; child = zconfig_next (child)) {
        bool known = false;
        for (const char *const *key = keys; *key && !known; key++)
            known = streq (zconfig_name (child), *key);
        if (!known) {
            s_file_error (self, "%s: unknown key '%s'", what, zconfig_name (child));
            return false;
        }
    }
    return true;
}

static bool
s_parse_long (const char *text, long min, long max, long *value)
{
    if (!text || !*text)
        return false;
    char *end;
    errno = 0;
    long parsed = strtol (text, &end, 10);
    if (errno || *end || parsed < min || parsed > max)
        return false;
    *value = parsed;
    return true;
}

static bool
s_number (sluice_pipeline_t *self, zconfig_t *node, const char *what, const char *key,
          long min, long max, long *value)
{
    const char *text = s_value (node, key);
    if (!text || s_parse_long (text, min, max, value))
        return true;        //  absent: keeps the default
    s_file_error (self, "%s: %s must be an integer in %ld..%ld, not '%s'", what, key, min, max,
                  text);
    return false;
}

static bool
s_flag (sluice_pipeline_t *self, zconfig_t *node, const char *what, const char *key,
        bool *value)
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
        s_file_error (self, "%s: %s must be 1/0, yes/no or true/false, not '%s'", what, key,
                      text);
        return false;
    }
    return true;
}

//  The values of the children of node/key, as a NULL-terminated array (strings borrowed).
static const char **
s_list (zconfig_t *node, const char *key, size_t *count)
{
    zconfig_t *list = zconfig_locate (node, key);
    *count = 0;
    for (zconfig_t *item = list ? zconfig_child (list) : NULL; item; item = zconfig_next (item))
        (*count)++;
    const char **items = (const char **) calloc (*count + 1, sizeof (char *));
    size_t index = 0;
    for (zconfig_t *item = list ? zconfig_child (list) : NULL; item && items;
         item = zconfig_next (item))
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

static bool
s_serves_network (const char *endpoint)
{
    return strncmp (endpoint, "tcp://", 6) == 0 || strncmp (endpoint, "ipc://", 6) == 0;
}

static s_buffer_t *
s_find_buffer (sluice_pipeline_t *self, const char *name)
{
    for (size_t index = 0; index < self->buffer_count; index++)
        if (streq (self->buffers [index].name, name))
            return &self->buffers [index];
    return NULL;
}

static s_actor_t *
s_find_actor (sluice_pipeline_t *self, s_kind_t kind, const char *name)
{
    for (size_t index = 0; name && index < self->actor_count; index++)
        if (self->actors [index].kind == kind && streq (self->actors [index].name, name))
            return &self->actors [index];
    return NULL;
}

//  A reference to a buffer: its name in this file, or an endpoint (contains "://").
static bool
s_reference (sluice_pipeline_t *self, zconfig_t *node, const char *what, const char *key,
             s_buffer_t **buffer, const char **endpoint)
{
    const char *text = s_value (node, key);
    if (!text || !*text) {
        s_file_error (self, "%s: '%s' is required (a buffer's name, or an endpoint)", what, key);
        return false;
    }
    if (strstr (text, "://")) {
        *endpoint = text;
        return true;
    }
    *buffer = s_find_buffer (self, text);
    if (!*buffer) {
        s_file_error (self, "%s: %s = %s: no buffer of that name in this file", what, key, text);
        return false;
    }
    return true;
}

//  A string made here, freed with the pipeline.
static const char *
s_own (sluice_pipeline_t *self, char *string)
{
    if (string && zlist_append (self->strings, string) == 0)
        return string;
    //  A setting lost here must not silently turn CURVE off
    self->out_of_memory = true;
    free (string);
    return NULL;
}

//  A path from the file: relative to the file's directory. NULL when absent.
static const char *
s_path (sluice_pipeline_t *self, zconfig_t *node, const char *key)
{
    const char *value = s_value (node, key);
    if (!value || !*value || value [0] == '/')
        return value;
    return s_own (self, zsys_sprintf ("%s/%s", self->directory, value));
}

//  A server key: a certificate file (relative to the file's directory) or the key itself.
static const char *
s_key_or_path (sluice_pipeline_t *self, zconfig_t *node, const char *key)
{
    const char *value = s_value (node, key);
    if (!value || !*value || value [0] == '/')
        return value;
    char *path = zsys_sprintf ("%s/%s", self->directory, value);
    if (!path)
        self->out_of_memory = true;
    if (path && zsys_file_exists (path))
        return s_own (self, path);
    free (path);
    return value;
}

// ---------------------------------------------------------------------------------------------
//  CURVE settings

static bool
s_parse_buffer_curve (sluice_pipeline_t *self, zconfig_t *node, s_buffer_t *buffer,
                      const char *what)
{
    s_curve_t *curve = &buffer->curve;
    curve->given.cert = s_path (self, node, "curve-cert");
    curve->given.allow = s_path (self, node, "curve-allow");
    curve->given.server_key = s_key_or_path (self, node, "curve-server-key");
    if (!s_flag (self, node, what, "curve-encrypt-only", &curve->given.encrypt_only))
        return false;
    bool server = curve->given.cert || curve->given.allow || curve->given.encrypt_only;
    if (buffer->local && curve->given.server_key) {
        s_file_error (self, "%s: curve-server-key is for a buffer running elsewhere (the key of "
                      "a buffer started here is that of its curve-cert)", what);
        return false;
    }
    if (!buffer->local && server) {
        s_file_error (self, "%s: curve-cert, curve-allow and curve-encrypt-only are for a "
                      "buffer started here; this one runs elsewhere (give its key as "
                      "curve-server-key)", what);
        return false;
    }
    if (server && !s_serves_network (buffer->endpoint)) {
        s_file_error (self, "%s: CURVE is for tcp:// and ipc:// endpoints; %s is reachable from "
                      "this process only", what, buffer->endpoint);
        return false;
    }
    return true;
}

//  The server side of the buffers started here, with the defaults.
static sluice_err_t
s_resolve_buffers_curve (sluice_pipeline_t *self)
{
    const s_buffer_t *first = NULL;     //  the first with CURVE: its authentication rules all
    for (size_t index = 0; index < self->buffer_count; index++) {
        s_buffer_t *buffer = &self->buffers [index];
        if (!buffer->local)
            continue;
        s_curve_t *curve = &buffer->curve;
        bool from_default = !curve->given.cert && s_serves_network (buffer->endpoint)
                         && self->defaults.given.cert;
        if (from_default)
            curve->given.cert = self->defaults.given.cert;
        if (curve->given.cert && !curve->given.allow && !curve->given.encrypt_only) {
            curve->given.allow = self->defaults.given.allow;
            curve->given.encrypt_only = self->defaults.given.encrypt_only;
        }
        char why [512];
        if (!sluice_curve_check_server (&curve->given, "", &curve->checked, why, sizeof why))
            return s_file_error (self, "buffer '%s'%s: %s", buffer->name,
                                 from_default ? " (curve-cert from the defaults)" : "", why);
        buffer->secured = curve->checked.curve.cert != NULL;
        if (!buffer->secured)
            continue;
        //  One process has one authenticator (sluice_curve.h): one list, or any key, for all
        bool same = first && (first->curve.given.allow && curve->given.allow
                              ? streq (first->curve.given.allow, curve->given.allow)
                              : first->curve.given.allow == curve->given.allow);
        if (first && !same)
            return s_file_error (self, "buffers '%s' and '%s' let different clients in (%s, "
                                 "%s): one process has one allowed-clients list", first->name,
                                 buffer->name,
                                 first->curve.given.allow ? first->curve.given.allow : "any key",
                                 curve->given.allow ? curve->given.allow : "any key");
        if (!first)
            first = buffer;
    }
    return SLUICE_OK;
}

//  One connection of an actor: to `buffer` (of this file) or to `endpoint`. `cert` and `key`
//  are the actor's settings for it (NULL: the defaults).
static sluice_err_t
s_resolve_link (sluice_pipeline_t *self, s_actor_t *actor, const char *side,
                s_buffer_t *buffer, const char *endpoint, const char *cert, const char *key,
                s_curve_t *curve)
{
    char what [200];
    snprintf (what, sizeof what, "%s '%s'%s%s", s_kind_name (actor->kind), actor->name,
              side ? ": " : "", side ? side : "");
    if (buffer && buffer->local && !buffer->secured && key)
        return s_file_error (self, "%s: buffer '%s' is started here without CURVE: a server "
                             "key for it makes no sense", what, buffer->name);
    if (!key) {
        if (!buffer)
            key = s_serves_network (endpoint) ? self->defaults.given.server_key : NULL;
        else
        if (buffer->local)
            key = buffer->secured ? buffer->curve.checked.public_key : NULL;
        else
            key = buffer->curve.given.server_key ? buffer->curve.given.server_key
                                           : self->defaults.given.server_key;
    }
    memset (curve, 0, sizeof *curve);
    if (!key)
        return SLUICE_OK;               //  plaintext
    curve->given.server_key = key;
    curve->given.cert = cert ? cert : self->defaults.given.cert;
    char why [512];
    if (!sluice_curve_check_client (&curve->given, "", &curve->checked, why, sizeof why))
        return s_file_error (self, "%s: %s", what, why);
    if (!buffer || !buffer->local || !buffer->curve.given.allow)
        return SLUICE_OK;
    //  Refused at the handshake otherwise: better said now than after the liveness bound
    if (!curve->given.cert)
        return s_file_error (self, "%s: buffer '%s' lets in only the clients in %s: give a "
                             "curve-cert whose public certificate is there", what,
                             buffer->name, buffer->curve.given.allow);
    zcertstore_t *store = zcertstore_new (buffer->curve.given.allow);
    bool allowed = store && zcertstore_lookup (store, curve->checked.public_key);
    zcertstore_destroy (&store);
    if (!allowed)
        return s_file_error (self, "%s: curve-cert %s is not among the clients buffer '%s' "
                             "lets in (curve-allow %s)", what, curve->given.cert, buffer->name,
                             buffer->curve.given.allow);
    return SLUICE_OK;
}

static sluice_err_t
s_resolve_curve (sluice_pipeline_t *self)
{
    sluice_err_t rc = s_resolve_buffers_curve (self);
    for (size_t index = 0; rc == SLUICE_OK && index < self->actor_count; index++) {
        s_actor_t *actor = &self->actors [index];
        const char *cert = actor->cert, *key = actor->server_key;
        //  Per connection, else the actor's own settings
        s_curve_t *in = &actor->curve_in, *out = &actor->curve_out;
        if (actor->kind != S_WRITER)
            rc = s_resolve_link (self, actor, actor->kind == S_STAGE ? "input" : NULL,
                                 actor->input, actor->input_endpoint,
                                 in->given.cert ? in->given.cert : cert,
                                 in->given.server_key ? in->given.server_key : key, in);
        if (rc == SLUICE_OK && actor->kind != S_READER)
            rc = s_resolve_link (self, actor, actor->kind == S_STAGE ? "output" : NULL,
                                 actor->output, actor->output_endpoint,
                                 out->given.cert ? out->given.cert : cert,
                                 out->given.server_key ? out->given.server_key : key, out);
        if (rc == SLUICE_OK && cert && !in->checked.curve.server_key
        &&  !out->checked.curve.server_key)
            rc = s_file_error (self, "%s '%s': curve-cert needs a server key: curve-server-key, "
                               "or a buffer with CURVE", s_kind_name (actor->kind), actor->name);
    }
    return rc;
}

// ---------------------------------------------------------------------------------------------
//  The file: entries

static bool
s_parse_buffer (sluice_pipeline_t *self, zconfig_t *node, s_buffer_t *buffer, const char *what)
{
    static const char *const keys [] = { "endpoint", "capacity", "max-chunk", "events", "start",
        "curve-cert", "curve-allow", "curve-encrypt-only", "curve-server-key", NULL };
    if (!s_check_keys (self, node, what, keys))
        return false;
    buffer->endpoint = s_value (node, "endpoint");
    if (!buffer->endpoint || !*buffer->endpoint) {
        s_file_error (self, "%s: 'endpoint' is required", what);
        return false;
    }
    buffer->events = s_value (node, "events");
    buffer->capacity = 64;
    const char *start = s_value (node, "start");
    buffer->local = s_bindable (buffer->endpoint);
    if (start && !streq (start, "auto") && !s_flag (self, node, what, "start", &buffer->local))
        return false;
    return s_number (self, node, what, "capacity", 1, 1L << 24, &buffer->capacity)
        && s_number (self, node, what, "max-chunk", 1, INT32_MAX, &buffer->max_chunk)
        && s_parse_buffer_curve (self, node, buffer, what);
}

static bool
s_parse_writer (sluice_pipeline_t *self, zconfig_t *node, s_actor_t *actor, const char *what)
{
    static const char *const keys [] = {
        "output", "tokens", "file", "model", "prompt", "chunk-bytes", "delay", "close", "final",
        "curve-cert", "curve-server-key", NULL };
    if (!s_check_keys (self, node, what, keys)
    ||  !s_reference (self, node, what, "output", &actor->output, &actor->output_endpoint))
        return false;
    sluice_writer_opts_t *opts = &actor->writer_opts;
    opts->close_at_end = true;
    long chunk_bytes = 0, delay_ms = 0;
    if (!s_number (self, node, what, "delay", 0, INT32_MAX, &delay_ms)
    ||  !s_number (self, node, what, "chunk-bytes", 1, INT32_MAX, &chunk_bytes)
    ||  !s_flag (self, node, what, "close", &opts->close_at_end)
    ||  !s_flag (self, node, what, "final", &opts->final))
        return false;
    opts->chunk_bytes = (size_t) chunk_bytes;
    opts->delay_ms = (int) delay_ms;
    const char *file = s_value (node, "file");
    const char *model = s_value (node, "model");
    const char *prompt = s_value (node, "prompt");
    bool has_tokens = zconfig_locate (node, "tokens") != NULL;
    if ((file != NULL) + has_tokens + (model != NULL) != 1) {
        s_file_error (self, "%s: give one source: a 'tokens' list, a 'file', or a 'model' "
                      "(a model server's endpoint) with a 'prompt'", what);
        return false;
    }
    if (!model != !prompt) {
        s_file_error (self, "%s: %s", what, model ? "a 'model' needs a 'prompt'"
                                                  : "'prompt' is for a 'model' source");
        return false;
    }
    if (model) {
        //  The model's answer, streamed: its tokens are written as they come
        opts->model_endpoint = model;
        opts->prompt = prompt;
        opts->prompt_size = strlen (prompt);
        return true;
    }
    if (has_tokens) {
        actor->tokens = s_list (node, "tokens", &opts->token_count);
        opts->tokens = actor->tokens;
        return actor->tokens != NULL;
    }
    if (streq (file, "-")) {
        if (self->stdin_taken) {
            s_file_error (self, "%s: only one writer can read stdin", what);
            return false;
        }
        self->stdin_taken = true;
        opts->input = stdin;
        return true;
    }
    char *path = file [0] == '/' ? strdup (file) : zsys_sprintf ("%s/%s", self->directory, file);
    actor->file = path ? fopen (path, "re") : NULL;
    if (!actor->file) {
        s_file_error (self, "%s: cannot open %s: %s", what, path ? path : file,
                      strerror (path ? errno : ENOMEM));
        free (path);
        return false;
    }
    free (path);
    opts->input = actor->file;
    return true;
}

static bool
s_parse_stage (sluice_pipeline_t *self, zconfig_t *node, s_actor_t *actor, const char *what)
{
    static const char *const keys [] = { "input", "output", "transform", "words", "keep-open",
        "keep-input-open", "max-bytes", "command", "lines",
        "curve-cert", "curve-server-key", "input-curve-cert", "input-curve-server-key",
        "output-curve-cert", "output-curve-server-key", NULL };
    sluice_stage_opts_t *opts = &actor->stage_opts;
    if (!s_check_keys (self, node, what, keys)
    ||  !s_reference (self, node, what, "input", &actor->input, &actor->input_endpoint)
    ||  !s_reference (self, node, what, "output", &actor->output, &actor->output_endpoint)
    ||  !s_flag (self, node, what, "keep-open", &opts->keep_output_open)
    ||  !s_flag (self, node, what, "keep-input-open", &opts->keep_input_open)
    ||  !s_flag (self, node, what, "lines", &opts->exec_lines))
        return false;
    size_t count;
    actor->words = s_list (node, "words", &count);
    if (!actor->words)
        return false;
    const char *name = s_value (node, "transform");
    const char *command = s_value (node, "command");
    const char *max_bytes = s_value (node, "max-bytes");
    actor->curve_in.given.cert = s_path (self, node, "input-curve-cert");
    actor->curve_in.given.server_key = s_key_or_path (self, node, "input-curve-server-key");
    actor->curve_out.given.cert = s_path (self, node, "output-curve-cert");
    actor->curve_out.given.server_key = s_key_or_path (self, node, "output-curve-server-key");
    //  An external program: its command line, run by sh
    if (name && streq (name, "exec")) {
        if (!command || !*command) {
            s_file_error (self, "%s: transform = exec needs a command (command = \"...\")", what);
            return false;
        }
        if (count || max_bytes) {
            s_file_error (self, "%s: transform = exec takes no %s", what,
                          count ? "'words'" : "'max-bytes'");
            return false;
        }
        opts->exec = command;
        return true;
    }
    if (command || opts->exec_lines) {
        s_file_error (self, "%s: '%s' is for transform = exec", what,
                      command ? "command" : "lines");
        return false;
    }
    const sluice_stage_transform_t *transform = sluice_stage_transform_find (name);
    if (!transform) {
        s_file_error (self, "%s: transform must be one of %s, exec, not '%s'", what,
                      sluice_stage_transform_names (), name ? name : "");
        return false;
    }
    long value = 0;
    if (max_bytes && !s_parse_long (max_bytes, 1, LONG_MAX, &value)) {
        s_file_error (self, "%s: max-bytes must be a positive integer, not '%s'", what,
                      max_bytes);
        return false;
    }
    const char *why = sluice_stage_transform_check (transform, count ? actor->words : NULL,
                                                    max_bytes ? "max-bytes" : NULL,
                                                    (size_t) value);
    if (why) {
        s_file_error (self, "%s: %s", what, why);
        return false;
    }
    actor->option = max_bytes ? (size_t) value : transform->option_default;
    opts->transform = transform->fn;
    opts->user = transform->takes_words ? (void *) actor->words
               : transform->option ? (void *) &actor->option : NULL;
    return true;
}

static bool s_print (void *user, size_t index, const char *text, size_t size);

static bool
s_parse_reader (sluice_pipeline_t *self, zconfig_t *node, s_actor_t *actor, const char *what)
{
    static const char *const keys [] = { "input", "format", "raw", "process",
        "curve-cert", "curve-server-key", NULL };
    long process_ms = 0;
    if (!s_check_keys (self, node, what, keys)
    ||  !s_reference (self, node, what, "input", &actor->input, &actor->input_endpoint)
    ||  !s_flag (self, node, what, "raw", &actor->raw)
    ||  !s_number (self, node, what, "process", 0, INT32_MAX, &process_ms))
        return false;
    actor->reader_opts.process_ms = (int) process_ms;
    actor->reader_opts.on_chunk = s_print;
    actor->reader_opts.user = actor;
    const char *format = s_value (node, "format");
    if (!format)
        format = "{}";
    const char *hole = strstr (format, "{}");
    if (!hole) {
        s_file_error (self, "%s: format must contain {} (where the chunk goes)", what);
        return false;
    }
    actor->prefix = strndup (format, (size_t) (hole - format));
    actor->suffix = strdup (hole + 2);
    return actor->prefix && actor->suffix;
}

static sluice_err_t
s_parse (sluice_pipeline_t *self)
{
    zconfig_t *root = self->config;
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
            return s_file_error (self, "unknown section '%s' (pipeline, buffer, writer, stage, "
                                 "reader)", kind);
    }
    self->buffers = (s_buffer_t *) calloc (buffers ? buffers : 1, sizeof (s_buffer_t));
    self->actors = (s_actor_t *) calloc (actors ? actors : 1, sizeof (s_actor_t));
    if (!self->buffers || !self->actors)
        return SLUICE_ENOMEM;

    //  Buffers first, so that actors can name them wherever they appear in the file
    for (zconfig_t *node = zconfig_child (root); node; node = zconfig_next (node)) {
        const char *kind = zconfig_name (node);
        const char *name = zconfig_value (node);
        char what [160];
        snprintf (what, sizeof what, "%s '%s'", kind, name ? name : "");
        if (streq (kind, "pipeline")) {
            static const char *const keys [] = { "name", "drain-timeout", NULL };
            if (!s_check_keys (self, node, "pipeline", keys)
            ||  !s_number (self, node, "pipeline", "drain-timeout", 0, INT32_MAX,
                           &self->drain_ms))
                return SLUICE_EINVAL;
            continue;
        }
        if (!name || !*name)
            return s_file_error (self, "every %s needs a name: %s = NAME", kind, kind);
        if (!streq (kind, "buffer"))
            continue;
        if (s_find_buffer (self, name))
            return s_file_error (self, "two buffers named '%s'", name);
        s_buffer_t *buffer = &self->buffers [self->buffer_count];
        if (!s_parse_buffer (self, node, buffer, what))
            return SLUICE_EINVAL;
        buffer->name = strdup (name);
        if (!buffer->name)
            return SLUICE_ENOMEM;
        self->buffer_count++;
    }
    for (zconfig_t *node = zconfig_child (root); node; node = zconfig_next (node)) {
        const char *kind = zconfig_name (node);
        if (streq (kind, "pipeline") || streq (kind, "buffer"))
            continue;
        char what [160];
        snprintf (what, sizeof what, "%s '%s'", kind, zconfig_value (node));
        s_actor_t *actor = &self->actors [self->actor_count++];
        actor->pipeline = self;
        actor->name = zconfig_value (node);
        actor->kind = streq (kind, "writer") ? S_WRITER : streq (kind, "stage") ? S_STAGE
                                                                                : S_READER;
        if (s_find_actor (self, actor->kind, actor->name) != actor)
            return s_file_error (self, "two %ss named '%s'", kind, actor->name);
        actor->cert = s_path (self, node, "curve-cert");
        actor->server_key = s_key_or_path (self, node, "curve-server-key");
        bool ok = actor->kind == S_WRITER ? s_parse_writer (self, node, actor, what)
                : actor->kind == S_STAGE ? s_parse_stage (self, node, actor, what)
                : s_parse_reader (self, node, actor, what);
        if (!ok)
            return SLUICE_EINVAL;
        self->reader_count += actor->kind == S_READER;
    }
    if (actors == 0)
        return s_file_error (self, "no writer, stage or reader: nothing to run");
    if (self->out_of_memory)
        return SLUICE_ENOMEM;
    return s_resolve_curve (self);
}

// ---------------------------------------------------------------------------------------------
//  Readers print through their format, in one write so that readers do not interleave

static bool
s_print (void *user, size_t index, const char *text, size_t size)
{
    s_actor_t *actor = (s_actor_t *) user;
    size_t prefix = strlen (actor->prefix), suffix = strlen (actor->suffix);
    size_t total = prefix + size + suffix + (actor->raw ? 0 : 1);
    if (total > actor->line_capacity) {
        char *grown = (char *) realloc (actor->line, total);
        if (!grown) {
            actor->sink_errno = ENOMEM;
            return false;
        }
        actor->line = grown;
        actor->line_capacity = total;
    }
    memcpy (actor->line, actor->prefix, prefix);
    memcpy (actor->line + prefix, text, size);
    memcpy (actor->line + prefix + size, actor->suffix, suffix);
    if (!actor->raw)
        actor->line [total - 1] = '\n';
    pthread_mutex_lock (&actor->pipeline->stdout_lock);
    bool ok = fwrite (actor->line, 1, total, stdout) == total && fflush (stdout) == 0;
    if (!ok)
        actor->sink_errno = errno;
    pthread_mutex_unlock (&actor->pipeline->stdout_lock);
    return ok;
}

// ---------------------------------------------------------------------------------------------
//  The actors, whatever their kind

static void *
s_actor_socket (s_actor_t *actor)
{
    void *handle = actor->kind == S_WRITER ? sluice_writer_actor_handle (actor->writer)
                 : actor->kind == S_STAGE ? sluice_stage_actor_handle (actor->stage)
                 : sluice_reader_actor_handle (actor->reader);
    return zsock_resolve (handle);
}

static sluice_err_t
s_actor_wait (s_actor_t *actor)
{
    return actor->kind == S_WRITER ? sluice_writer_wait (actor->writer, 0)
         : actor->kind == S_STAGE ? sluice_stage_wait (actor->stage, 0)
         : sluice_reader_wait (actor->reader, 0);
}

static const char *
s_actor_error_text (s_actor_t *actor)
{
    return actor->kind == S_WRITER ? sluice_writer_error_text (actor->writer)
         : actor->kind == S_STAGE ? sluice_stage_error_text (actor->stage)
         : sluice_reader_error_text (actor->reader);
}

static bool
s_actor_running (s_actor_t *actor)
{
    return actor->writer || actor->stage || actor->reader;
}

static sluice_err_t
s_actor_start (sluice_pipeline_t *self, s_actor_t *actor)
{
    sluice_err_t err = SLUICE_OK;
    const char *input = actor->input ? actor->input->connect : actor->input_endpoint;
    const char *output = actor->output ? actor->output->connect : actor->output_endpoint;
    if (actor->kind == S_WRITER) {
        actor->writer_opts.endpoint = output;
        actor->writer_opts.curve = s_curve_get (&actor->curve_out);
        actor->writer = sluice_writer_new (&actor->writer_opts, &err);
    }
    else
    if (actor->kind == S_STAGE) {
        actor->stage_opts.input = input;
        actor->stage_opts.output = output;
        actor->stage_opts.input_curve = s_curve_get (&actor->curve_in);
        actor->stage_opts.output_curve = s_curve_get (&actor->curve_out);
        actor->stage = sluice_stage_new (&actor->stage_opts, &err);
    }
    else {
        actor->reader_opts.endpoint = input;
        actor->reader_opts.curve = s_curve_get (&actor->curve_in);
        actor->reader = sluice_reader_new (&actor->reader_opts, &err);
    }
    if (err != SLUICE_OK)
        s_error (self, "%s '%s': cannot start: %s%s%s", s_kind_name (actor->kind), actor->name,
                 sluice_strerror (err), *sluice_last_error_text () ? ": " : "",
                 sluice_last_error_text ());
    return err;
}

//  Take the actor's result if it has finished. Returns true when it is done.
static bool
s_actor_poll (s_actor_t *actor)
{
    if (actor->done)
        return true;
    if (!s_actor_running (actor))
        return false;
    sluice_err_t rc = s_actor_wait (actor);
    if (rc == SLUICE_ETIMEOUT)
        return false;
    const s_curve_t *curve = actor->kind == S_READER ? &actor->curve_in : &actor->curve_out;
    if (actor->kind == S_READER && actor->sink_errno)
        snprintf (actor->error_text, sizeof actor->error_text, "writing stdout: %s",
                  strerror (actor->sink_errno));
    else
    if (rc == SLUICE_ETRANSPORT && actor->kind != S_STAGE && curve->checked.curve.server_key)
        snprintf (actor->error_text, sizeof actor->error_text, "no answer: %s", S_CURVE_HINT);
    else
        snprintf (actor->error_text, sizeof actor->error_text, "%s", s_actor_error_text (actor));
    actor->done = true;
    actor->result = rc;
    return true;
}

//  Stop an actor that has not finished (its result is then not reported).
static void
s_actor_stop (s_actor_t *actor)
{
    sluice_writer_destroy (&actor->writer);
    sluice_stage_destroy (&actor->stage);
    sluice_reader_destroy (&actor->reader);
    if (!actor->done) {
        actor->done = true;
        actor->result = SLUICE_EINTR;
    }
}

// ---------------------------------------------------------------------------------------------
//  The supervisor

static sluice_err_t
s_start_buffers (sluice_pipeline_t *self)
{
    for (size_t index = 0; index < self->buffer_count; index++) {
        s_buffer_t *buffer = &self->buffers [index];
        if (!buffer->local) {
            buffer->connect = strdup (buffer->endpoint);
            if (!buffer->connect)
                return SLUICE_ENOMEM;
            if (self->log)
                fprintf (self->log, "buffer '%s' runs elsewhere, at %s\n", buffer->name,
                         buffer->endpoint);
            continue;
        }
        sluice_buffer_opts_t opts = {
            .endpoint = buffer->endpoint,
            .events_endpoint = buffer->events,
            .capacity = (size_t) buffer->capacity,
            .max_chunk_size = (size_t) buffer->max_chunk,
            .curve = s_curve_get (&buffer->curve),
        };
        sluice_err_t err;
        buffer->buffer = sluice_buffer_new (&opts, &err);
        if (!buffer->buffer) {
            s_error (self, "buffer '%s': cannot start on %s: %s (%s)", buffer->name,
                     buffer->endpoint, sluice_strerror (err), sluice_last_error_text ());
            return err;
        }
        //  A wildcard address is for others to reach us; we connect over loopback
        const char *bound = sluice_buffer_endpoint (buffer->buffer);
        if (strncmp (bound, "tcp://0.0.0.0:", 14) == 0)
            buffer->connect = zsys_sprintf ("tcp://127.0.0.1:%s", bound + 14);
        else
            buffer->connect = strdup (bound);
        if (!buffer->connect)
            return SLUICE_ENOMEM;
        if (self->log)
            fprintf (self->log, "buffer '%s' (capacity %ld) listening on %s%s%s%s\n",
                     buffer->name, buffer->capacity, bound,
                     buffer->secured ? " with CURVE, key " : "",
                     buffer->secured ? buffer->curve.checked.public_key : "",
                     !buffer->secured ? ""
                     : buffer->curve.given.allow ? ", clients from curve-allow"
                                                 : ", any client key");
    }
    return SLUICE_OK;
}

static sluice_err_t
s_start (sluice_pipeline_t *self)
{
    sluice_err_t err = s_start_buffers (self);
    //  Consumers first: nothing is written before someone is there to take it
    for (int kind = S_READER; err == SLUICE_OK && kind >= (int) S_WRITER; kind--)
        for (size_t index = 0; err == SLUICE_OK && index < self->actor_count; index++)
            if ((int) self->actors [index].kind == kind)
                err = s_actor_start (self, &self->actors [index]);
    return err;
}

//  At the end, closing our buffers ends what reads them (after draining); what it cannot end
//  is stopped instead of waited for: writers (one may be blocked on its file or stdin; a write
//  stopped unacknowledged was never enqueued) and actors reading a buffer running elsewhere.
static bool
s_stop_at_end (s_actor_t *actor)
{
    return actor->kind == S_WRITER || !actor->input || !actor->input->local;
}

//  Check (without waiting) whether local buffers are closed and drained; arms the watch.
static bool
s_buffers_drained (sluice_pipeline_t *self)
{
    bool all = true;
    for (size_t index = 0; index < self->buffer_count; index++) {
        s_buffer_t *buffer = &self->buffers [index];
        if (!buffer->buffer || buffer->drained)
            continue;
        buffer->drain_armed = true;
        buffer->drained = sluice_buffer_wait_drained (buffer->buffer, 0) == SLUICE_OK;
        all = all && buffer->drained;
    }
    return all;
}

typedef enum { S_RUNNING, S_ENDING } s_phase_t;

static void s_report_failure (sluice_pipeline_t *self, s_actor_t *actor);

//  Take the actor's result if it has just finished, and report a failure (once).
static void
s_collect (sluice_pipeline_t *self, s_actor_t *actor, s_phase_t phase)
{
    bool was_done = actor->done;
    if (!s_actor_poll (actor) || was_done)
        return;
    if (actor->result == SLUICE_OK || actor->result == SLUICE_EINTR)
        return;
    //  Once we have closed the buffers, a closed buffer is what we asked for; before, it may
    //  be a stage downstream that ended the stream (stop): judged at the end
    if (actor->result == SLUICE_ECLOSED) {
        actor->closed_under = phase == S_RUNNING;
        return;
    }
    s_report_failure (self, actor);
}

//  A writer or stage whose output was closed under it while the run went on: no failure when
//  a stage of this file that reads that buffer ended cleanly (it stopped the stream, which
//  closes its input to cancel what feeds it).
static bool
s_closed_by_a_stop (sluice_pipeline_t *self, s_actor_t *actor)
{
    for (size_t index = 0; index < self->actor_count; index++) {
        s_actor_t *reader = &self->actors [index];
        bool same = actor->output ? reader->input == actor->output
                  : reader->input_endpoint && actor->output_endpoint
                    && streq (reader->input_endpoint, actor->output_endpoint);
        if (reader->kind == S_STAGE && same && reader->done && reader->result == SLUICE_OK)
            return true;
    }
    return false;
}

static void
s_report_failure (sluice_pipeline_t *self, s_actor_t *actor)
{
    s_error (self, "%s '%s': %s%s%s%s", s_kind_name (actor->kind), actor->name,
             sluice_strerror (actor->result), *actor->error_text ? " (" : "",
             actor->error_text, *actor->error_text ? ")" : "");
    if (self->result == SLUICE_OK)
        self->result = actor->result;
}

//  Close our buffers and stop what closing cannot end; the caller waits for the rest. Results
//  that arrived meanwhile are taken first: stopping an actor would lose them.
static void
s_begin_end (sluice_pipeline_t *self)
{
    for (size_t index = 0; index < self->actor_count; index++)
        s_collect (self, &self->actors [index], S_RUNNING);
    for (size_t index = 0; index < self->buffer_count; index++)
        if (self->buffers [index].buffer)
            sluice_buffer_close (self->buffers [index].buffer);
    for (size_t index = 0; index < self->actor_count; index++) {
        s_actor_t *actor = &self->actors [index];
        if (!actor->done && s_stop_at_end (actor))
            s_actor_stop (actor);
    }
}

static void
s_report_stuck (sluice_pipeline_t *self)
{
    char *waiting = strdup ("");
    for (size_t index = 0; waiting && index < self->actor_count; index++) {
        s_actor_t *actor = &self->actors [index];
        if (actor->done)
            continue;
        char *more = zsys_sprintf ("%s %s '%s'", waiting, s_kind_name (actor->kind), actor->name);
        free (waiting);
        waiting = more;
    }
    for (size_t index = 0; waiting && index < self->buffer_count; index++) {
        s_buffer_t *buffer = &self->buffers [index];
        if (!buffer->buffer || buffer->drained || self->reader_count)
            continue;
        char *more = zsys_sprintf ("%s buffer '%s' (not drained)", waiting, buffer->name);
        free (waiting);
        waiting = more;
    }
    s_error (self, "gave up after %ld ms waiting for:%s", self->drain_ms,
             waiting ? waiting : " (out of memory)");
    free (waiting);
    if (self->result == SLUICE_OK)
        self->result = SLUICE_ETIMEOUT;
}

//  Run until the end; returns false when $TERM arrived (end at once, report nothing).
static bool
s_supervise (sluice_pipeline_t *self, zsock_t *pipe)
{
    s_phase_t phase = S_RUNNING;
    int64_t deadline = INT64_MAX;
    size_t slots = 1 + self->actor_count + self->buffer_count;
    zmq_pollitem_t *items = (zmq_pollitem_t *) calloc (slots, sizeof *items);
    if (!items) {
        s_error (self, "supervising: out of memory");
        self->result = SLUICE_ENOMEM;
        return true;
    }
    bool terminated = false;
    while (true) {
        bool readers_done = true, all_done = true;
        for (size_t index = 0; index < self->actor_count; index++) {
            s_actor_t *actor = &self->actors [index];
            s_collect (self, actor, phase);
            all_done = all_done && actor->done;
            if (actor->kind == S_READER)
                readers_done = readers_done && actor->done;
        }
        //  Readers end where their buffers are drained; without readers here, the buffers
        //  we serve to others are the end
        bool drained = self->reader_count > 0 || s_buffers_drained (self);
        if (phase == S_RUNNING && (self->reader_count ? readers_done : all_done && drained)) {
            phase = S_ENDING;
            deadline = zclock_mono () + self->drain_ms;
            s_begin_end (self);
            continue;
        }
        if (phase == S_ENDING && all_done && drained)
            break;

        size_t count = 0;
        items [count++] = (zmq_pollitem_t) { zsock_resolve (pipe), 0, ZMQ_POLLIN, 0 };
        for (size_t index = 0; index < self->actor_count; index++)
            if (!self->actors [index].done)
                items [count++] = (zmq_pollitem_t) {
                    s_actor_socket (&self->actors [index]), 0, ZMQ_POLLIN, 0 };
        for (size_t index = 0; index < self->buffer_count; index++) {
            s_buffer_t *buffer = &self->buffers [index];
            if (buffer->buffer && buffer->drain_armed && !buffer->drained)
                items [count++] = (zmq_pollitem_t) {
                    zsock_resolve (sluice_buffer_actor_handle (buffer->buffer)), 0,
                    ZMQ_POLLIN, 0 };
        }
        int rc = zmq_poll (items, (int) count, sluice_poll_timeout (deadline));
        if (rc == -1 && zmq_errno () == EINTR)
            continue;
        if (rc == -1) {
            s_error (self, "supervising: %s", zmq_strerror (zmq_errno ()));
            self->result = SLUICE_ETRANSPORT;
            break;
        }
        if (rc == 0) {
            s_report_stuck (self);
            break;
        }
        if (items [0].revents & ZMQ_POLLIN) {
            sluice_task_order_t order = sluice_task_order (pipe);
            if (order == SLUICE_TASK_TERM) {
                terminated = true;
                break;
            }
            //  Like the end of the run, only earlier: writers stop, our buffers close,
            //  readers drain them
            if (order == SLUICE_TASK_STOP && phase == S_RUNNING) {
                phase = S_ENDING;
                deadline = zclock_mono () + self->drain_ms;
                s_begin_end (self);
            }
        }
        //  Finished actors and drained buffers are picked up at the top of the loop
    }
    for (size_t index = 0; !terminated && index < self->actor_count; index++) {
        s_actor_t *actor = &self->actors [index];
        if (actor->closed_under && !s_closed_by_a_stop (self, actor))
            s_report_failure (self, actor);
    }
    free (items);
    return !terminated;
}

//  Stop and free what runs: producers first, so that nothing writes into a buffer being
//  destroyed.
static void
s_teardown (sluice_pipeline_t *self)
{
    for (int kind = S_WRITER; kind <= (int) S_READER; kind++)
        for (size_t index = 0; index < self->actor_count; index++)
            if ((int) self->actors [index].kind == kind)
                s_actor_stop (&self->actors [index]);
    for (size_t index = 0; index < self->buffer_count; index++)
        sluice_buffer_destroy (&self->buffers [index].buffer);
}

static void
s_supervisor (zsock_t *pipe, void *argument)
{
    sluice_pipeline_t *self = (sluice_pipeline_t *) argument;
    self->start_result = s_start (self);
    if (self->start_result != SLUICE_OK)
        s_teardown (self);
    zsock_signal (pipe, 0);
    bool report = self->start_result == SLUICE_OK ? s_supervise (self, pipe) : false;
    s_teardown (self);
    if (self->start_result == SLUICE_OK)
        sluice_task_done (pipe, self->result, "", !report);
    else
        sluice_task_done (pipe, self->start_result, "", false);
}

// ---------------------------------------------------------------------------------------------
//  The owner's side

sluice_pipeline_t *
sluice_pipeline_new (void)
{
    sluice_pipeline_t *self = (sluice_pipeline_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->strings = zlist_new ();
    if (!self->strings) {
        free (self);
        return NULL;
    }
    self->drain_ms = SLUICE_PIPELINE_DRAIN_MS;
    self->drain_override = -1;
    pthread_mutex_init (&self->stdout_lock, NULL);
    return self;
}

//  A copy kept with the pipeline, or NULL (given NULL, or out of memory: out_of_memory set).
static const char *
s_keep (sluice_pipeline_t *self, const char *text)
{
    return text ? s_own (self, strdup (text)) : NULL;
}

sluice_err_t
sluice_pipeline_set_curve (sluice_pipeline_t *self, const sluice_curve_t *defaults)
{
    if (!self || !defaults || self->loaded)
        return SLUICE_EINVAL;
    free (self->error);
    self->error = NULL;
    s_curve_t *mine = &self->defaults;
    memset (mine, 0, sizeof *mine);
    mine->given.cert = s_keep (self, defaults->cert);
    mine->given.allow = s_keep (self, defaults->allow);
    mine->given.encrypt_only = defaults->encrypt_only;
    mine->given.server_key = s_keep (self, defaults->server_key);
    if (self->out_of_memory)
        return SLUICE_ENOMEM;
    //  Checked now even if no entry ends up using them
    char why [512];
    sluice_curve_checked_t checked;
    sluice_curve_t client = { .server_key = defaults->server_key };
    if ((defaults->allow || defaults->encrypt_only) && !defaults->cert)
        snprintf (why, sizeof why, "curve-%s needs curve-cert (the certificate of the buffers "
                  "started here)", defaults->allow ? "allow" : "encrypt-only");
    else
    if (defaults->allow && defaults->encrypt_only)
        snprintf (why, sizeof why, "curve-allow and curve-encrypt-only exclude each other: "
                  "authenticate clients, or accept any");
    else
    if (sluice_curve_check_client (&client, "", &checked, why, sizeof why)
    &&  (!defaults->cert
         || sluice_curve_cert_public_key (defaults->cert, checked.public_key, why, sizeof why)))
        return SLUICE_OK;
    s_error (self, "%s", why);
    return SLUICE_EINVAL;
}

void
sluice_pipeline_set_log (sluice_pipeline_t *self, FILE *log)
{
    self->log = log;
}

void
sluice_pipeline_set_drain_timeout (sluice_pipeline_t *self, int drain_ms)
{
    self->drain_override = drain_ms < 0 ? -1 : drain_ms;
}

sluice_err_t
sluice_pipeline_load_text (sluice_pipeline_t *self, const char *text, const char *directory,
                           const char *name)
{
    if (!self || !text || self->loaded)
        return SLUICE_EINVAL;
    self->loaded = true;
    free (self->error);
    self->error = NULL;
    self->file = strdup (name ? name : "pipeline");
    self->directory = strdup (directory ? directory : ".");
    if (!self->file || !self->directory)
        return SLUICE_ENOMEM;
    //  zconfig reports a syntax error, with its line, on stderr itself. (zconfig_load leaks
    //  on a syntax error in czmq 4.2; loading from a chunk does not.)
    zchunk_t *chunk = zchunk_new (text, strlen (text));
    self->config = chunk ? zconfig_chunk_load (chunk) : NULL;
    zchunk_destroy (&chunk);
    if (!self->config)
        return s_file_error (self, "not a valid ZPL file (see docs/PIPELINES.md)");
    sluice_err_t err = s_parse (self);
    if (err == SLUICE_ENOMEM)
        s_error (self, "%s: out of memory", self->file);
    self->load_ok = err == SLUICE_OK;
    return err;
}

sluice_err_t
sluice_pipeline_load (sluice_pipeline_t *self, const char *path)
{
    if (!self || !path || self->loaded)
        return SLUICE_EINVAL;
    zchunk_t *chunk = zchunk_slurp (path, 0);
    if (!chunk) {
        int why = errno;
        self->loaded = true;
        s_error (self, "%s: %s", path, strerror (why ? why : EINVAL));
        return SLUICE_EINVAL;
    }
    //  The text must end with a NUL for zconfig, and may contain none
    char *text = (char *) malloc (zchunk_size (chunk) + 1);
    if (text) {
        memcpy (text, zchunk_data (chunk), zchunk_size (chunk));
        text [zchunk_size (chunk)] = 0;
    }
    zchunk_destroy (&chunk);
    if (!text)
        return SLUICE_ENOMEM;
    char *copy = strdup (path);
    sluice_err_t err = copy ? sluice_pipeline_load_text (self, text, dirname (copy), path)
                            : SLUICE_ENOMEM;
    free (copy);
    free (text);
    return err;
}

static sluice_err_t
s_not_found (sluice_pipeline_t *self, const char *kind, const char *name)
{
    free (self->error);
    self->error = NULL;
    s_error (self, "no %s named '%s' in %s", kind, name ? name : "", self->file);
    return SLUICE_EINVAL;
}

sluice_err_t
sluice_pipeline_set_transform (sluice_pipeline_t *self, const char *stage,
                               sluice_stage_fn *transform, void *user)
{
    if (!self || !transform || !self->load_ok || self->started)
        return SLUICE_EINVAL;
    s_actor_t *actor = s_find_actor (self, S_STAGE, stage);
    if (!actor)
        return s_not_found (self, "stage", stage);
    actor->stage_opts.transform = transform;
    actor->stage_opts.user = user;
    actor->stage_opts.exec = NULL;
    actor->stage_opts.exec_lines = false;
    return SLUICE_OK;
}

sluice_err_t
sluice_pipeline_set_sink (sluice_pipeline_t *self, const char *reader, sluice_reader_fn *sink,
                          void *user)
{
    if (!self || !sink || !self->load_ok || self->started)
        return SLUICE_EINVAL;
    s_actor_t *actor = s_find_actor (self, S_READER, reader);
    if (!actor)
        return s_not_found (self, "reader", reader);
    actor->reader_opts.on_chunk = sink;
    actor->reader_opts.user = user;
    return SLUICE_OK;
}

sluice_err_t
sluice_pipeline_start (sluice_pipeline_t *self)
{
    //  A file that failed to load is not run
    if (!self || !self->load_ok || self->started)
        return SLUICE_EINVAL;
    self->started = true;
    free (self->error);
    self->error = NULL;
    if (self->drain_override >= 0)
        self->drain_ms = self->drain_override;
    sluice_err_t err = sluice_handle_start (&self->handle, s_supervisor, self, NULL, NULL);
    if (err == SLUICE_OK && self->start_result != SLUICE_OK) {
        err = self->start_result;
        sluice_handle_destroy (&self->handle);
    }
    if (err != SLUICE_OK && !self->error)
        s_error (self, "cannot start: %s", sluice_strerror (err));
    return err;
}

const char *
sluice_pipeline_endpoint (sluice_pipeline_t *self, const char *name)
{
    s_buffer_t *buffer = self && self->started && name ? s_find_buffer (self, name) : NULL;
    return buffer ? buffer->connect : NULL;
}

sluice_err_t
sluice_pipeline_stop (sluice_pipeline_t *self)
{
    if (!self || !self->handle.actor)
        return SLUICE_EINVAL;
    return sluice_handle_stop (&self->handle);
}

sluice_err_t
sluice_pipeline_wait (sluice_pipeline_t *self, int timeout_ms)
{
    if (!self || !self->handle.actor)
        return SLUICE_EINVAL;
    sluice_err_t rc = sluice_handle_wait (&self->handle, timeout_ms);
    self->finished = self->handle.done;
    return rc;
}

bool
sluice_pipeline_finished (sluice_pipeline_t *self)
{
    return self && self->finished;
}

const char *
sluice_pipeline_error_text (sluice_pipeline_t *self)
{
    //  The supervisor writes it; read it only once it has signalled or reported DONE
    if (!self || (self->started && self->handle.actor && !self->handle.done))
        return "";
    return self->error ? self->error : "";
}

void *
sluice_pipeline_actor_handle (sluice_pipeline_t *self)
{
    return self ? self->handle.actor : NULL;
}

void
sluice_pipeline_destroy (sluice_pipeline_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sluice_pipeline_t *self = *self_p;
    //  The supervisor stops everything it runs before it returns from $TERM
    sluice_handle_destroy (&self->handle);
    for (size_t index = 0; index < self->actor_count; index++) {
        s_actor_t *actor = &self->actors [index];
        if (actor->file)
            fclose (actor->file);
        free (actor->tokens);
        free (actor->prefix);
        free (actor->suffix);
        free (actor->line);
        free (actor->words);
    }
    for (size_t index = 0; index < self->buffer_count; index++) {
        free (self->buffers [index].name);
        free (self->buffers [index].connect);
    }
    free (self->actors);
    free (self->buffers);
    zconfig_destroy (&self->config);
    free (self->file);
    free (self->directory);
    while (zlist_size (self->strings))
        free (zlist_pop (self->strings));
    zlist_destroy (&self->strings);
    free (self->error);
    pthread_mutex_destroy (&self->stdout_lock);
    free (self);
    *self_p = NULL;
}
