/*  sluice_curve.c - CURVE on actor and client sockets; the process-wide zauth. */
#include "sluice_socket.h"
#include <pthread.h>
#include <string.h>

static pthread_mutex_t s_auth_lock = PTHREAD_MUTEX_INITIALIZER;
static zactor_t *s_auth;            //  the process's ZAP handler
static char *s_auth_location;       //  what it allows: a directory, or CURVE_ALLOW_ANY
static size_t s_auth_users;

//  Start (or share) the zauth actor for `location`. -1 if another location is in force.
static int
s_auth_acquire (const char *location, char *why, size_t why_size)
{
    int rc = 0;
    pthread_mutex_lock (&s_auth_lock);
    if (!s_auth) {
        s_auth = zactor_new (zauth, NULL);
        if (s_auth && zstr_sendx (s_auth, "CURVE", location, NULL) == 0 && zsock_wait (s_auth) == 0)
            s_auth_location = strdup (location);
        else {
            zactor_destroy (&s_auth);
            snprintf (why, why_size, "cannot start the authenticator");
            rc = -1;
        }
    }
    else
    if (!streq (s_auth_location, location)) {
        snprintf (why, why_size, "this process already authenticates against '%s'; one "
                  "allowed-clients list per process", s_auth_location);
        rc = -1;
    }
    if (rc == 0)
        s_auth_users++;
    pthread_mutex_unlock (&s_auth_lock);
    return rc;
}

void
sluice_curve_release (void)
{
    pthread_mutex_lock (&s_auth_lock);
    if (s_auth_users && --s_auth_users == 0) {
        zactor_destroy (&s_auth);
        zstr_free (&s_auth_location);
    }
    pthread_mutex_unlock (&s_auth_lock);
}

int
sluice_curve_server (zsock_t *sock, const sluice_curve_t *curve, char *why, size_t why_size)
{
    if (!curve || !curve->cert)
        return 0;
    if (!curve->allow && !curve->encrypt_only) {
        snprintf (why, why_size, "CURVE without an allowed-clients directory accepts any client "
                  "key: give one, or ask for encryption only explicitly");
        return -1;
    }
    if (curve->allow && !zsys_file_exists (curve->allow)) {
        snprintf (why, why_size, "allowed-clients directory '%s' does not exist", curve->allow);
        return -1;
    }
    zcert_t *cert = zcert_load (curve->cert);
    if (!cert) {
        snprintf (why, why_size, "cannot load certificate '%s'", curve->cert);
        return -1;
    }
    if (s_auth_acquire (curve->allow ? curve->allow : CURVE_ALLOW_ANY, why, why_size) == -1) {
        zcert_destroy (&cert);
        return -1;
    }
    zcert_apply (cert, sock);
    zsock_set_curve_server (sock, 1);
    zcert_destroy (&cert);
    return 1;
}

int
sluice_curve_client (zsock_t *sock, const sluice_curve_t *curve, char *why, size_t why_size)
{
    if (!curve || !curve->server_key)
        return 0;
    char server_key [41];
    if (strlen (curve->server_key) == 40)
        snprintf (server_key, sizeof server_key, "%s", curve->server_key);
    else {
        zcert_t *server = zcert_load (curve->server_key);
        if (!server) {
            snprintf (why, why_size, "server key is neither a 40-character Z85 key nor a "
                      "certificate file: '%s'", curve->server_key);
            return -1;
        }
        snprintf (server_key, sizeof server_key, "%s", zcert_public_txt (server));
        zcert_destroy (&server);
    }
    //  Without a certificate of its own the client uses a throw-away one: enough for a server
    //  that only encrypts, refused by one that authenticates
    zcert_t *cert = curve->cert ? zcert_load (curve->cert) : zcert_new ();
    if (!cert) {
        snprintf (why, why_size, "cannot load certificate '%s'", curve->cert);
        return -1;
    }
    zcert_apply (cert, sock);
    zsock_set_curve_serverkey (sock, server_key);
    zcert_destroy (&cert);
    return 1;
}

sluice_err_t
sluice_curve_keygen (const char *path)
{
    if (!path || !*path)
        return SLUICE_EINVAL;
    zcert_t *cert = zcert_new ();
    if (!cert)
        return SLUICE_ENOMEM;
    int rc = zcert_save (cert, path);
    zcert_destroy (&cert);
    return rc == 0 ? SLUICE_OK : SLUICE_ETRANSPORT;
}
