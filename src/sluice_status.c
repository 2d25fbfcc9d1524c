/*  sluice_status.c - one status table per actor: the STATUS body, its parsed struct, its JSON.

    A row names a key of the STATUS text, its type, and the field of the actor's status struct
    (sluice_status.h) that holds it. The actor's reply is printed from its table, the client
    parses with the same table, and `sluice status --json` formats with it.
*/
#include "sluice_codec.h"
#include <inttypes.h>
#include <stddef.h>
#include <string.h>

typedef enum { S_U64, S_SIZE, S_BOOL, S_TEXT, S_MODEL_STATE } s_type_t;

typedef struct {
    const char *key;
    s_type_t type;
    size_t offset;              //  in the actor's status struct
    size_t size;                //  S_TEXT: the char array's size
} s_row_t;

typedef struct {
    sluice_actor_kind_t actor;
    const s_row_t *rows;
    size_t count;
} s_table_t;

#define S_ROW(type, key, field, kind) \
    { key, kind, offsetof (type, field), sizeof (((type *) 0)->field) }

#define S_BUF(key, field, kind)  S_ROW (sluice_buffer_status_t, key, field, kind)
static const s_row_t s_buffer_rows [] = {
    S_BUF ("capacity",       capacity,       S_SIZE),
    S_BUF ("queued",         queued,         S_SIZE),
    S_BUF ("parked_writers", parked_writers, S_SIZE),
    S_BUF ("parked_readers", parked_readers, S_SIZE),
    S_BUF ("closed",         closed,         S_BOOL),
    S_BUF ("written",        written,        S_U64),
    S_BUF ("read",           read,           S_U64),
    S_BUF ("unacked",        unacked,        S_SIZE),
    S_BUF ("max_chunk_size", max_chunk_size, S_SIZE),
    S_BUF ("max_parked",     max_parked,     S_SIZE),
    S_BUF ("incarnation",    incarnation,    S_U64),
};

#define S_MOD(key, field, kind)  S_ROW (sluice_model_status_t, key, field, kind)
static const s_row_t s_model_rows [] = {
    S_MOD ("state",       state,       S_MODEL_STATE),
    S_MOD ("model",       model,       S_TEXT),
    S_MOD ("reason",      reason,      S_TEXT),
    S_MOD ("parked",      parked,      S_U64),
    S_MOD ("queued",      queued,      S_U64),
    S_MOD ("inflight",    inflight,    S_U64),
    S_MOD ("waiting",     waiting,     S_U64),
    S_MOD ("served",      served,      S_U64),
    S_MOD ("failed",      failed,      S_U64),
    S_MOD ("malformed",   malformed,   S_U64),
    S_MOD ("lost",        lost,        S_U64),
    S_MOD ("abandoned",   abandoned,   S_U64),
    S_MOD ("max_pending", max_pending, S_U64),
    S_MOD ("max_payload", max_payload, S_U64),
    S_MOD ("workers",     workers,     S_U64),
    S_MOD ("incarnation", incarnation, S_U64),
    S_MOD ("streams",     streams,     S_U64),
    S_MOD ("generated",   generated,   S_U64),
    S_MOD ("delivered",   delivered,   S_U64),
    S_MOD ("cancelled",   cancelled,   S_U64),
    S_MOD ("window",      window,      S_U64),
};

#define S_TABLE(actor, rows) { actor, rows, sizeof rows / sizeof rows [0] }
static const s_table_t s_tables [] = {
    S_TABLE (SLUICE_ACTOR_BUFFER, s_buffer_rows),
    S_TABLE (SLUICE_ACTOR_MODEL_SERVER, s_model_rows),
};

static const s_table_t *
s_table (sluice_actor_kind_t actor)
{
    for (size_t index = 0; index < sizeof s_tables / sizeof s_tables [0]; index++)
        if (s_tables [index].actor == actor)
            return &s_tables [index];
    return NULL;
}

static const void *
s_struct_of (const sluice_status_t *status)
{
    return status->actor == SLUICE_ACTOR_BUFFER ? (const void *) &status->buffer
                                                : (const void *) &status->model;
}

const char *
sluice_model_state_name (sluice_model_state_t state)
{
    switch (state) {
        case SLUICE_MODEL_LOADING:  return "loading";
        case SLUICE_MODEL_READY:    return "ready";
        case SLUICE_MODEL_FAILED:   return "failed";
        case SLUICE_MODEL_DRAINING: return "draining";
        case SLUICE_MODEL_STOPPED:  return "stopped";
        default:                    return "unknown";
    }
}

static sluice_model_state_t
s_model_state (const char *name, size_t size)
{
    for (int state = SLUICE_MODEL_LOADING; state < SLUICE_MODEL_UNKNOWN; state++) {
        const char *known = sluice_model_state_name ((sluice_model_state_t) state);
        if (strlen (known) == size && memcmp (known, name, size) == 0)
            return (sluice_model_state_t) state;
    }
    return SLUICE_MODEL_UNKNOWN;
}

// ---------------------------------------------------------------------------------------------
//  Formatting

//  Appends to out as snprintf would, tracking the length the whole text needs.
typedef struct {
    char *out;
    size_t size;
    size_t length;
} s_text_t;

static void
s_append (s_text_t *text, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    size_t room = text->length < text->size ? text->size - text->length : 0;
    int rc = vsnprintf (room ? text->out + text->length : NULL, room, format, args);
    va_end (args);
    if (rc > 0)
        text->length += (size_t) rc;
}

static void
s_append_json_string (s_text_t *text, const char *value)
{
    s_append (text, "\"");
    for (const unsigned char *byte = (const unsigned char *) value; *byte; byte++) {
        if (*byte == '"' || *byte == '\\')
            s_append (text, "\\%c", *byte);
        else
        if (*byte < 0x20)
            s_append (text, "\\u%04x", *byte);
        else
            s_append (text, "%c", *byte);
    }
    s_append (text, "\"");
}

static void
s_append_value (s_text_t *text, const s_row_t *row, const void *record, bool json)
{
    const char *field = (const char *) record + row->offset;
    switch (row->type) {
        case S_U64:
            s_append (text, "%" PRIu64, *(const uint64_t *) field);
            break;
        case S_SIZE:
            s_append (text, "%zu", *(const size_t *) field);
            break;
        case S_BOOL:
            //  0 or 1, as on the wire, in JSON too: scripts compare it as a number
            s_append (text, "%d", *(const bool *) field ? 1 : 0);
            break;
        case S_TEXT:
        case S_MODEL_STATE: {
            const char *value = row->type == S_TEXT ? field
                              : sluice_model_state_name (*(const sluice_model_state_t *) field);
            if (json)
                s_append_json_string (text, value);
            else {
                //  One line each: a newline in a value would end it early
                for (const char *byte = value; *byte; byte++)
                    s_append (text, "%c", *byte == '\n' || *byte == '\r' ? ' ' : *byte);
            }
            break;
        }
    }
}

size_t
sluice_status_format (const sluice_status_t *status, bool json, char *out, size_t out_size)
{
    s_text_t text = { out, out_size, 0 };
    if (out_size)
        out [0] = 0;
    const s_table_t *table = status ? s_table (status->actor) : NULL;
    if (!table)
        return 0;
    const void *record = s_struct_of (status);
    const char *name = sluice_actor_kind_name (status->actor);
    if (json)
        s_append (&text, "{\"actor\": \"%s\"", name);
    else
        s_append (&text, "actor=%s\n", name);
    for (size_t index = 0; index < table->count; index++) {
        const s_row_t *row = &table->rows [index];
        s_append (&text, json ? ", \"%s\": " : "%s=", row->key);
        s_append_value (&text, row, record, json);
        if (!json)
            s_append (&text, "\n");
    }
    if (json)
        s_append (&text, "}\n");
    return text.length;
}

size_t
sluice_status_text (const sluice_status_t *status, char *out, size_t size)
{
    return sluice_status_format (status, false, out, size);
}

// ---------------------------------------------------------------------------------------------
//  Parsing

static void
s_parse_value (const s_row_t *row, void *record, const char *value, size_t size)
{
    char *field = (char *) record + row->offset;
    if (row->type == S_TEXT) {
        size_t copy = size < row->size - 1 ? size : row->size - 1;
        memcpy (field, value, copy);
        field [copy] = 0;
        return;
    }
    if (row->type == S_MODEL_STATE) {
        *(sluice_model_state_t *) field = s_model_state (value, size);
        return;
    }
    if (size == 0 || size > 20)
        return;
    uint64_t number = 0;
    for (size_t index = 0; index < size; index++) {
        if (value [index] < '0' || value [index] > '9')
            return;
        number = number * 10 + (uint64_t) (value [index] - '0');
    }
    if (row->type == S_U64)
        *(uint64_t *) field = number;
    else
    if (row->type == S_SIZE)
        *(size_t *) field = (size_t) number;
    else
        *(bool *) field = number != 0;
}

//  Calls fn for each key=value line of text.
static void
s_lines (const char *text, size_t size,
         void (*fn) (void *arg, const char *key, size_t key_size, const char *value,
                     size_t value_size), void *arg)
{
    const char *end = text + size;
    for (const char *line = text; line < end; ) {
        const char *eol = (const char *) memchr (line, '\n', (size_t) (end - line));
        if (!eol)
            eol = end;
        const char *equals = (const char *) memchr (line, '=', (size_t) (eol - line));
        if (equals)
            fn (arg, line, (size_t) (equals - line), equals + 1, (size_t) (eol - equals - 1));
        line = eol + 1;
    }
}

static void
s_find_actor (void *arg, const char *key, size_t key_size, const char *value, size_t value_size)
{
    sluice_status_t *status = (sluice_status_t *) arg;
    if (key_size != 5 || memcmp (key, "actor", 5) != 0)
        return;
    for (size_t index = 0; index < sizeof s_tables / sizeof s_tables [0]; index++) {
        const char *name = sluice_actor_kind_name (s_tables [index].actor);
        if (strlen (name) == value_size && memcmp (name, value, value_size) == 0)
            status->actor = s_tables [index].actor;
    }
}

static void
s_fill (void *arg, const char *key, size_t key_size, const char *value, size_t value_size)
{
    sluice_status_t *status = (sluice_status_t *) arg;
    const s_table_t *table = s_table (status->actor);
    for (size_t index = 0; index < table->count; index++) {
        const s_row_t *row = &table->rows [index];
        if (strlen (row->key) == key_size && memcmp (row->key, key, key_size) == 0) {
            s_parse_value (row, (void *) s_struct_of (status), value, value_size);
            return;
        }
    }
}

sluice_err_t
sluice_status_parse (const char *text, size_t size, sluice_status_t *status)
{
    memset (status, 0, sizeof *status);
    if (!text)
        return SLUICE_EPROTO;
    s_lines (text, size, s_find_actor, status);
    if (status->actor == SLUICE_ACTOR_NONE)
        return SLUICE_EPROTO;
    if (status->actor == SLUICE_ACTOR_MODEL_SERVER)
        status->model.state = SLUICE_MODEL_UNKNOWN;
    s_lines (text, size, s_fill, status);
    return SLUICE_OK;
}

// ---------------------------------------------------------------------------------------------
//  Lookup by key (tests, the fuzzers, the fault helper)

bool
sluice_status_number (const sluice_status_t *status, const char *key, uint64_t *value)
{
    const s_table_t *table = s_table (status->actor);
    for (size_t index = 0; table && index < table->count; index++) {
        const s_row_t *row = &table->rows [index];
        if (!streq (row->key, key))
            continue;
        const char *field = (const char *) s_struct_of (status) + row->offset;
        switch (row->type) {
            case S_U64:   *value = *(const uint64_t *) field; return true;
            case S_SIZE:  *value = *(const size_t *) field; return true;
            case S_BOOL:  *value = *(const bool *) field; return true;
            case S_MODEL_STATE: *value = (uint64_t) *(const sluice_model_state_t *) field; return true;
            case S_TEXT:  return false;
        }
    }
    return false;
}

uint64_t
sluice_status_u64 (const char *text, size_t size, const char *key, uint64_t fallback)
{
    sluice_status_t status;
    uint64_t value;
    if (sluice_status_parse (text, size, &status) != SLUICE_OK
    ||  !sluice_status_number (&status, key, &value))
        return fallback;
    return value;
}
