/*  sluice_model_client.c - a client connection to a model server (see sluice_model.h).

    A thin layer over sluice_conn_t: one DEALER, one request at a time, replies matched by
    request id. Waiting is always done by the server (parked replies), never by polling here.
*/
#include "sluice_conn.h"
#include "sluice_model.h"
#include <string.h>

struct sluice_model_client_t {
    sluice_conn_t conn;
    bool parked;                  //  the last reply carried SLUICE_FLAG_PARKED
};

sluice_model_client_t *
sluice_model_client_new (const char *endpoint)
{
    return sluice_model_client_new_secure (endpoint, NULL);
}

sluice_model_client_t *
sluice_model_client_new_secure (const char *endpoint, const sluice_curve_t *curve)
{
    return (sluice_model_client_t *) sluice_conn_client_new (sizeof (sluice_model_client_t),
                                                             endpoint, curve);
}

void
sluice_model_client_destroy (sluice_model_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sluice_model_client_t *self = *self_p;
    sluice_conn_fini (&self->conn);
    free (self);
    *self_p = NULL;
}

//  One call; remembers whether the server deferred it.
static sluice_err_t
s_call (sluice_model_client_t *self, uint8_t command, int timeout_ms, const void *body,
        size_t size)
{
    self->parked = false;
    uint64_t id = self->conn.next_id;
    sluice_err_t rc = sluice_conn_call (&self->conn, command, 0, timeout_ms, 0, body, size);
    //  Only a reply to this very request tells (a local failure leaves an older header)
    if (self->conn.reply.request_id == id)
        self->parked = (self->conn.reply.flags & SLUICE_FLAG_PARKED) != 0;
    return rc;
}

//  The single text frame of the last reply, or an EPROTO failure.
static sluice_err_t
s_text (sluice_model_client_t *self, const char **text, size_t *size)
{
    return sluice_conn_text (&self->conn, text, size);
}

sluice_err_t
sluice_model_client_request_timeout (sluice_model_client_t *self, const void *payload,
                                     size_t size, int timeout_ms, char **response_out)
{
    if (response_out)
        *response_out = NULL;
    if (!payload && size)
        return sluice_conn_fail (&self->conn, SLUICE_EINVAL, "payload is NULL");
    //  sluice_conn_call sends a body frame only for a non-NULL body: an empty payload is "".
    sluice_err_t rc = s_call (self, SLUICE_CMD_REQUEST, timeout_ms, payload ? payload : "", size);
    if (rc != SLUICE_OK)
        return rc;
    const char *text = "";
    size_t text_size = 0;
    rc = s_text (self, &text, &text_size);
    if (rc != SLUICE_OK || !response_out)
        return rc;
    char *copy = (char *) malloc (text_size + 1);
    if (!copy)
        return sluice_conn_fail (&self->conn, SLUICE_ENOMEM, "out of memory");
    if (text_size)
        memcpy (copy, text, text_size);
    copy [text_size] = 0;
    *response_out = copy;
    return SLUICE_OK;
}

sluice_err_t
sluice_model_client_request (sluice_model_client_t *self, const void *payload, size_t size,
                             char **response_out)
{
    return sluice_model_client_request_timeout (self, payload, size, SLUICE_FOREVER,
                                                response_out);
}

sluice_err_t
sluice_model_client_wait_ready (sluice_model_client_t *self, int timeout_ms)
{
    return s_call (self, SLUICE_CMD_WAIT, timeout_ms, NULL, 0);
}

sluice_err_t
sluice_model_client_status (sluice_model_client_t *self, sluice_model_status_t *status)
{
    if (!status)
        return sluice_conn_fail (&self->conn, SLUICE_EINVAL, "status is NULL");
    memset (status, 0, sizeof *status);
    //  Answered at once: timeout 0 bounds the wait by the grace period alone
    sluice_err_t rc = s_call (self, SLUICE_CMD_STATUS, 0, NULL, 0);
    if (rc != SLUICE_OK)
        return rc;
    const char *text = "";
    size_t size = 0;
    rc = s_text (self, &text, &size);
    if (rc != SLUICE_OK)
        return rc;
    sluice_status_t parsed;
    if (sluice_status_parse (text, size, &parsed) != SLUICE_OK
    ||  parsed.actor != SLUICE_ACTOR_MODEL_SERVER)
        return sluice_conn_fail (&self->conn, SLUICE_EPROTO, "the actor is not a model server");
    *status = parsed.model;
    return SLUICE_OK;
}

sluice_err_t
sluice_model_client_shutdown (sluice_model_client_t *self)
{
    return s_call (self, SLUICE_CMD_SHUTDOWN, 0, NULL, 0);
}

// ---------------------------------------------------------------------------------------------
//  Streams

sluice_err_t
sluice_model_client_stream (sluice_model_client_t *self, const void *payload, size_t size,
                            int timeout_ms, uint64_t *stream_id)
{
    if (!stream_id || (!payload && size))
        return sluice_conn_fail (&self->conn, SLUICE_EINVAL, "payload or stream_id is NULL");
    *stream_id = 0;
    self->parked = false;
    uint64_t id = self->conn.next_id;
    sluice_err_t rc = sluice_conn_call (&self->conn, SLUICE_CMD_REQUEST, SLUICE_FLAG_STREAM,
                                        timeout_ms, 0, payload ? payload : "", size);
    if (self->conn.reply.request_id == id)
        self->parked = (self->conn.reply.flags & SLUICE_FLAG_PARKED) != 0;
    if (rc != SLUICE_OK)
        return rc;
    if (self->conn.frames.count != 1 || zmq_msg_size (&self->conn.frames.items [0]) != 8)
        return sluice_conn_fail (&self->conn, SLUICE_EPROTO, "a stream's id is 8 bytes");
    *stream_id = sluice_get64 ((const uint8_t *) zmq_msg_data (&self->conn.frames.items [0]));
    return SLUICE_OK;
}

sluice_err_t
sluice_model_client_next (sluice_model_client_t *self, uint64_t stream_id, size_t max,
                          int timeout_ms, size_t *count, bool *end)
{
    if (!count || !end || max == 0 || max > SLUICE_MAX_BATCH)
        return sluice_conn_fail (&self->conn, SLUICE_EINVAL,
                                 "next takes count and end, and max 1..%d", SLUICE_MAX_BATCH);
    *count = 0;
    *end = false;
    uint8_t id [8];
    sluice_put64 (id, stream_id);
    uint64_t request_id = self->conn.next_id;
    sluice_err_t rc = sluice_conn_call (&self->conn, SLUICE_CMD_PULL, 0, timeout_ms,
                                        (uint32_t) max, id, sizeof id);
    //  A failure of the model ends its stream too (EOS on the error reply); only a reply to
    //  this very request tells (a local failure leaves an older header)
    *end = self->conn.reply.request_id == request_id
        && (self->conn.reply.flags & SLUICE_FLAG_EOS) != 0;
    if (rc == SLUICE_OK)
        *count = self->conn.frames.count;
    return rc;
}

const void *
sluice_model_client_token (sluice_model_client_t *self, size_t index, size_t *size)
{
    if (index >= self->conn.frames.count) {
        if (size)
            *size = 0;
        return NULL;
    }
    if (size)
        *size = zmq_msg_size (&self->conn.frames.items [index]);
    return zmq_msg_data (&self->conn.frames.items [index]);
}

sluice_err_t
sluice_model_client_cancel (sluice_model_client_t *self, uint64_t stream_id)
{
    uint8_t id [8];
    sluice_put64 (id, stream_id);
    return sluice_conn_call (&self->conn, SLUICE_CMD_CANCEL, 0, 0, 0, id, sizeof id);
}

sluice_err_t
sluice_model_client_error (sluice_model_client_t *self)
{
    return self->conn.error;
}

const char *
sluice_model_client_error_text (sluice_model_client_t *self)
{
    return self->conn.error_text;
}

bool
sluice_model_client_was_parked (sluice_model_client_t *self)
{
    return self->parked;
}

void
sluice_model_client_set_grace (sluice_model_client_t *self, int grace_ms)
{
    self->conn.grace_ms = grace_ms < 0 ? 0 : grace_ms;
}

void
sluice_model_client_interrupt_on (sluice_model_client_t *self, void *socket)
{
    sluice_conn_interrupt_on (&self->conn, socket);
}
