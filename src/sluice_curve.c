/*  sluice_curve.c - CURVE on actor and client sockets; the process-wide zauth. */
#include "sluice_socket.h"
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#define S_NO_SECRET "0000000000000000000000000000000000000000"   //  zcert's "no secret key"

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

bool
sluice_curve_cert_public_key (const char *path, char *public_key, char *why, size_t why_size)
{
    //  zcert_load tries PATH_secret first: the public file's name works too, next to its secret
    zcert_t *cert = zcert_load (path);
    if (!cert) {
        struct stat info;
        snprintf (why, why_size, "cannot load certificate '%s'%s", path,
                  stat (path, &info) == 0 ? ": not a certificate" : ": no such file");
        return false;
    }
    bool has_secret = !streq (zcert_secret_txt (cert), S_NO_SECRET);
    if (has_secret)
        snprintf (public_key, 41, "%s", zcert_public_txt (cert));
    else
        snprintf (why, why_size, "'%s' is a public certificate without its secret key: give "
                  "the *_secret file (sluice keygen NAME writes NAME and NAME_secret)", path);
    zcert_destroy (&cert);
    return has_secret;
}

//  A server key given as a certificate file, or as the key itself: the key into `key`.
static bool
s_server_key (const char *text, char *key, char *why, size_t why_size)
{
    struct stat info;
    if (stat (text, &info) == 0) {
        zcert_t *cert = zcert_load (text);
        if (!cert) {
            snprintf (why, why_size, "cannot load the server's certificate '%s'", text);
            return false;
        }
        snprintf (key, 41, "%s", zcert_public_txt (cert));
        zcert_destroy (&cert);
        return true;
    }
    uint8_t binary [32];
    if (strlen (text) == 40 && zmq_z85_decode (binary, text)) {
        snprintf (key, 41, "%s", text);
        return true;
    }
    snprintf (why, why_size, "server key '%s' is neither a certificate file nor a "
              "40-character Z85 key", text);
    return false;
}

bool
sluice_curve_check_server (const sluice_curve_t *given, const char *dashes,
                           sluice_curve_checked_t *checked, char *why, size_t why_size)
{
    memset (checked, 0, sizeof *checked);
    if (given->allow && given->encrypt_only) {
        snprintf (why, why_size, "%scurve-allow and %scurve-encrypt-only exclude each other: "
                  "authenticate clients, or accept any", dashes, dashes);
        return false;
    }
    if (!given->cert) {
        if (given->allow || given->encrypt_only) {
            snprintf (why, why_size, "%s%s needs %scurve-cert (this server's certificate)",
                      dashes, given->allow ? "curve-allow" : "curve-encrypt-only", dashes);
            return false;
        }
        return true;        //  plaintext
    }
    if (!given->allow && !given->encrypt_only) {
        snprintf (why, why_size, "%scurve-cert without %scurve-allow: CURVE with no allowed-"
                  "clients directory would accept any client key. Give %scurve-allow DIR (the "
                  "public certificates of the clients to let in), or %scurve-encrypt-only to "
                  "accept any client on purpose (encryption without authentication)",
                  dashes, dashes, dashes, dashes);
        return false;
    }
    if (!sluice_curve_cert_public_key (given->cert, checked->public_key, why, why_size))
        return false;
    struct stat info;
    if (given->allow && (stat (given->allow, &info) != 0 || !S_ISDIR (info.st_mode))) {
        snprintf (why, why_size, "%scurve-allow: '%s' is not a directory", dashes, given->allow);
        return false;
    }
    checked->curve.cert = given->cert;
    checked->curve.allow = given->allow;
    checked->curve.encrypt_only = given->encrypt_only;
    return true;
}

bool
sluice_curve_check_client (const sluice_curve_t *given, const char *dashes,
                           sluice_curve_checked_t *checked, char *why, size_t why_size)
{
    memset (checked, 0, sizeof *checked);
    if (!given->server_key) {
        if (given->cert) {
            snprintf (why, why_size, "%scurve-cert needs %scurve-server-key (the server's "
                      "public key or certificate)", dashes, dashes);
            return false;
        }
        return true;        //  plaintext
    }
    if (!s_server_key (given->server_key, checked->server_key, why, why_size)
    ||  (given->cert
         && !sluice_curve_cert_public_key (given->cert, checked->public_key, why, why_size)))
        return false;
    checked->curve.cert = given->cert;
    checked->curve.server_key = checked->server_key;
    return true;
}

const sluice_curve_t *
sluice_curve_checked_get (const sluice_curve_checked_t *checked)
{
    return checked->curve.cert || checked->curve.server_key ? &checked->curve : NULL;
}

int
sluice_curve_client (zsock_t *sock, const sluice_curve_t *curve, char *why, size_t why_size)
{
    if (!curve || !curve->server_key)
        return 0;
    char server_key [41];
    if (!s_server_key (curve->server_key, server_key, why, why_size))
        return -1;
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
