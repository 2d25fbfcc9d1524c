/*  sluice_stream.c - client of the buffer actor (see sluice_stream.h). */
#include "sluice_internal.h"
#include <string.h>

struct sluice_stream_t {
    sluice_conn_t conn;
    char *text;                 //  NUL-terminated copy of the last chunk read
    size_t text_capacity;
    bool was_parked;
    bool ended;                 //  sluice_stream_next reached the end of this reader's stream
};

sluice_stream_t *
sluice_stream_new (const char *endpoint)
{
    sluice_stream_t *self = (sluice_stream_t *) zmalloc (sizeof *self);
    if (sluice_conn_init (&self->conn, endpoint) != SLUICE_OK) {
        sluice_conn_fini (&self->conn);
        free (self);
        return NULL;
    }
    return self;
}

void
sluice_stream_destroy (sluice_stream_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sluice_stream_t *self = *self_p;
    sluice_conn_fini (&self->conn);
    free (self->text);
    free (self);
    *self_p = NULL;
}

static sluice_err_t
s_call (sluice_stream_t *self, uint8_t command, uint8_t flags, int timeout_ms, uint32_t count,
        const void *body, size_t size)
{
    self->was_parked = false;
    sluice_err_t rc = sluice_conn_call (&self->conn, command, flags, timeout_ms, count, body, size);
    self->was_parked = (self->conn.reply.flags & SLUICE_FLAG_PARKED) != 0;
    return rc;
}

sluice_err_t
sluice_stream_write_timeout (sluice_stream_t *self, const void *data, size_t size,
                             bool is_final, int timeout_ms)
{
    if (!data && size)
        return sluice_conn_fail (&self->conn, SLUICE_EINVAL, "data is NULL");
    //  A body pointer is what marks the chunk frame as present, even for an empty chunk
    return s_call (self, SLUICE_CMD_WRITE, is_final ? SLUICE_FLAG_FINAL : 0, timeout_ms, 0,
                   data ? data : "", size);
}

sluice_err_t
sluice_stream_write (sluice_stream_t *self, const void *data, size_t size, bool is_final)
{
    return sluice_stream_write_timeout (self, data, size, is_final, SLUICE_FOREVER);
}

sluice_err_t
sluice_stream_write_str (sluice_stream_t *self, const char *text)
{
    if (!text)
        return sluice_conn_fail (&self->conn, SLUICE_EINVAL, "text is NULL");
    return sluice_stream_write (self, text, strlen (text), false);
}

static sluice_err_t
s_take_chunk (sluice_stream_t *self, const zmq_msg_t *frame, uint8_t flags, sluice_chunk_t *chunk)
{
    size_t size = zmq_msg_size ((zmq_msg_t *) frame);
    if (size + 1 > self->text_capacity) {
        char *text = (char *) realloc (self->text, size + 1);
        if (!text)
            return sluice_conn_fail (&self->conn, SLUICE_ENOMEM, "out of memory");
        self->text = text;
        self->text_capacity = size + 1;
    }
    if (size)
        memcpy (self->text, zmq_msg_data ((zmq_msg_t *) frame), size);
    self->text [size] = 0;
    chunk->text = self->text;
    chunk->size = size;
    chunk->is_final = (flags & SLUICE_FLAG_FINAL) != 0;
    chunk->is_eos = (flags & SLUICE_FLAG_EOS) != 0;
    return SLUICE_OK;
}

sluice_err_t
sluice_stream_read_timeout (sluice_stream_t *self, sluice_chunk_t *chunk, int timeout_ms)
{
    if (!chunk)
        return sluice_conn_fail (&self->conn, SLUICE_EINVAL, "chunk is NULL");
    memset (chunk, 0, sizeof *chunk);
    sluice_err_t rc = s_call (self, SLUICE_CMD_READ, 0, timeout_ms, 1, NULL, 0);
    if (rc != SLUICE_OK)
        return rc;
    if (self->conn.frame_count != 1)
        return sluice_conn_fail (&self->conn, SLUICE_EPROTO, "READ reply with %zu chunks, asked for 1",
                                 self->conn.frame_count);
    return s_take_chunk (self, &self->conn.frames [0], self->conn.reply.flags, chunk);
}

sluice_err_t
sluice_stream_read (sluice_stream_t *self, sluice_chunk_t *chunk)
{
    return sluice_stream_read_timeout (self, chunk, SLUICE_FOREVER);
}

bool
sluice_stream_next (sluice_stream_t *self, sluice_chunk_t *chunk)
{
    if (self->ended) {
        sluice_conn_fail (&self->conn, SLUICE_OK, NULL);
        return false;
    }
    if (sluice_stream_read (self, chunk) != SLUICE_OK)
        return false;
    if (chunk->is_final) {
        //  A final chunk ends this reader's stream; its own text, if any, is still delivered
        self->ended = true;
        return chunk->size > 0 && !chunk->is_eos;
    }
    return true;
}

sluice_err_t
sluice_stream_close (sluice_stream_t *self)
{
    return s_call (self, SLUICE_CMD_CLOSE, 0, SLUICE_FOREVER, 0, NULL, 0);
}

sluice_err_t
sluice_stream_status (sluice_stream_t *self, sluice_buffer_status_t *status)
{
    if (!status)
        return sluice_conn_fail (&self->conn, SLUICE_EINVAL, "status is NULL");
    sluice_err_t rc = s_call (self, SLUICE_CMD_STATUS, 0, SLUICE_FOREVER, 0, NULL, 0);
    if (rc != SLUICE_OK)
        return rc;
    if (self->conn.frame_count != 1)
        return sluice_conn_fail (&self->conn, SLUICE_EPROTO, "STATUS reply without its text");
    const char *text = (const char *) zmq_msg_data (&self->conn.frames [0]);
    size_t size = zmq_msg_size (&self->conn.frames [0]);
    status->capacity = sluice_status_u64 (text, size, "capacity", 0);
    status->queued = sluice_status_u64 (text, size, "queued", 0);
    status->parked_writers = sluice_status_u64 (text, size, "parked_writers", 0);
    status->parked_readers = sluice_status_u64 (text, size, "parked_readers", 0);
    status->closed = sluice_status_u64 (text, size, "closed", 0) != 0;
    status->written = sluice_status_u64 (text, size, "written", 0);
    status->read = sluice_status_u64 (text, size, "read", 0);
    status->max_chunk_size = sluice_status_u64 (text, size, "max_chunk_size", 0);
    return SLUICE_OK;
}

sluice_err_t
sluice_stream_error (sluice_stream_t *self)
{
    return self->conn.error;
}

const char *
sluice_stream_error_text (sluice_stream_t *self)
{
    return self->conn.error_text;
}

bool
sluice_stream_was_parked (sluice_stream_t *self)
{
    return self->was_parked;
}

void
sluice_stream_set_grace (sluice_stream_t *self, int grace_ms)
{
    self->conn.grace_ms = grace_ms < 0 ? 0 : grace_ms;
}

void
sluice_stream_interrupt_on (sluice_stream_t *self, void *socket)
{
    sluice_conn_interrupt_on (&self->conn, socket);
}
