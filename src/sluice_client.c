/*  sluice_client.c - STATUS, stop, wait-ready and PING on any actor (see sluice_client.h). */
#include "sluice_conn.h"
#include "sluice_client.h"
#include "sluice_actor.h"

#define S_WAIT_GRACE_MS  2000       //  beyond a WAIT's own deadline, for its answer to arrive

struct sluice_client_t {
    sluice_conn_t conn;
};

sluice_client_t *
sluice_client_new (const char *endpoint, const sluice_curve_t *curve)
{
    return (sluice_client_t *) sluice_conn_client_new (sizeof (sluice_client_t), endpoint, curve);
}

void
sluice_client_destroy (sluice_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sluice_conn_fini (&(*self_p)->conn);
    free (*self_p);
    *self_p = NULL;
}

//  A command the actor answers at once: timeout_ms bounds the whole wait (no grace on top).
//  No answer in time is a timeout.
static sluice_err_t
s_call (sluice_client_t *self, uint8_t command, int timeout_ms)
{
    int64_t started = zclock_mono ();
    self->conn.grace_ms = 0;
    sluice_err_t rc = sluice_conn_call (&self->conn, command, 0, timeout_ms, 0, NULL, 0);
    if (rc == SLUICE_ETRANSPORT && timeout_ms >= 0 && zclock_mono () - started >= timeout_ms)
        rc = sluice_conn_fail (&self->conn, SLUICE_ETIMEOUT,
                               "no answer from the actor within %d ms", timeout_ms);
    return rc;
}

sluice_err_t
sluice_client_status (sluice_client_t *self, int timeout_ms, sluice_status_t *status)
{
    if (!status)
        return sluice_conn_fail (&self->conn, SLUICE_EINVAL, "status is NULL");
    sluice_err_t rc = s_call (self, SLUICE_CMD_STATUS, timeout_ms);
    if (rc != SLUICE_OK)
        return rc;
    const char *text;
    size_t size;
    if (sluice_conn_text (&self->conn, &text, &size) != SLUICE_OK)
        return self->conn.error;
    if (sluice_status_parse (text, size, status) != SLUICE_OK)
        return sluice_conn_fail (&self->conn, SLUICE_EPROTO,
                                 "the STATUS reply does not name an actor this client knows");
    return SLUICE_OK;
}

sluice_err_t
sluice_client_stop (sluice_client_t *self, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms;
    sluice_status_t status;
    sluice_err_t rc = sluice_client_status (self, timeout_ms, &status);
    if (rc != SLUICE_OK)
        return rc;
    int left = deadline == INT64_MAX ? SLUICE_FOREVER : (int) sluice_poll_timeout (deadline);
    return s_call (self, status.actor == SLUICE_ACTOR_BUFFER ? SLUICE_CMD_CLOSE
                                                             : SLUICE_CMD_SHUTDOWN, left);
}

sluice_err_t
sluice_client_wait_ready (sluice_client_t *self, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : zclock_mono () + timeout_ms;
    sluice_status_t status;
    sluice_err_t rc = sluice_client_status (self, timeout_ms, &status);
    if (rc != SLUICE_OK)
        return rc;
    if (status.actor == SLUICE_ACTOR_BUFFER)
        return status.buffer.closed
             ? sluice_conn_fail (&self->conn, SLUICE_ECLOSED, "the buffer is closed") : SLUICE_OK;
    //  A model server parks the WAIT until its load ends, and answers it at its deadline
    int left = deadline == INT64_MAX ? SLUICE_FOREVER : (int) sluice_poll_timeout (deadline);
    self->conn.grace_ms = S_WAIT_GRACE_MS;
    rc = sluice_conn_call (&self->conn, SLUICE_CMD_WAIT, 0, left, 0, NULL, 0);
    if (rc == SLUICE_ETRANSPORT && zclock_mono () >= deadline)
        rc = sluice_conn_fail (&self->conn, SLUICE_ETIMEOUT,
                               "no answer from the actor within %d ms", timeout_ms);
    return rc;
}

sluice_err_t
sluice_client_ping (sluice_client_t *self, int timeout_ms)
{
    return s_call (self, SLUICE_CMD_PING, timeout_ms);
}

sluice_err_t
sluice_client_error (sluice_client_t *self)
{
    return self->conn.error;
}

const char *
sluice_client_error_text (sluice_client_t *self)
{
    return self->conn.error_text;
}
