/*  test_security.c - CURVE on tcp endpoints: who gets in, who does not.

    Each test makes its own certificates in a fresh directory: a server pair, an allowed
    client (its public certificate in the allowed-clients directory) and an unknown client.
    A refused client never gets a reply, so its call ends with SLUICE_ETRANSPORT after its own
    short timeout plus grace; what matters is that nothing of it reaches the buffer.
*/
#include <criterion/criterion.h>
#include <czmq.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>
#include "sluice.h"

#define REFUSED_WAIT_MS 300

static char s_dir [128];
static char s_allow [160];
static char s_server [200], s_server_secret [240];
static char s_good [200], s_good_secret [240];
static char s_bad_secret [240];
static sluice_buffer_t *s_buffer;

static void
s_setup (void)
{
    snprintf (s_dir, sizeof s_dir, "/tmp/sluice-curve-XXXXXX");
    cr_assert_not_null (mkdtemp (s_dir));
    snprintf (s_allow, sizeof s_allow, "%s/allow", s_dir);
    cr_assert_eq (zsys_dir_create ("%s", s_allow), 0);
    snprintf (s_server, sizeof s_server, "%s/server", s_dir);
    snprintf (s_server_secret, sizeof s_server_secret, "%s_secret", s_server);
    snprintf (s_good, sizeof s_good, "%s/good", s_allow);
    snprintf (s_good_secret, sizeof s_good_secret, "%s/good_secret", s_dir);
    snprintf (s_bad_secret, sizeof s_bad_secret, "%s/bad_secret", s_dir);
    cr_assert_eq (sluice_curve_keygen (s_server), SLUICE_OK);
    //  The allowed client: public half in allow/, secret half outside it
    zcert_t *good = zcert_new ();
    cr_assert_eq (zcert_save_public (good, s_good), 0);
    cr_assert_eq (zcert_save_secret (good, s_good_secret), 0);
    zcert_destroy (&good);
    zcert_t *bad = zcert_new ();
    cr_assert_eq (zcert_save_secret (bad, s_bad_secret), 0);
    zcert_destroy (&bad);
}

static void
s_teardown (void)
{
    sluice_buffer_destroy (&s_buffer);
    zsys_dir_delete ("%s", s_allow);
    char command [400];
    snprintf (command, sizeof command, "rm -rf '%s'", s_dir);
    cr_assert_eq (system (command), 0);
}

TestSuite (security, .init = s_setup, .fini = s_teardown, .timeout = 60);

static void
s_start (const sluice_curve_t *curve)
{
    sluice_err_t err;
    s_buffer = sluice_buffer_new (&(sluice_buffer_opts_t) {
        .endpoint = "tcp://127.0.0.1:0", .capacity = 8, .curve = curve }, &err);
    cr_assert_not_null (s_buffer, "buffer did not start: %s", sluice_strerror (err));
}

static sluice_stream_t *
s_client (const char *cert, const char *server_key)
{
    sluice_curve_t curve = { .cert = cert, .server_key = server_key };
    sluice_stream_t *stream = server_key
        ? sluice_stream_new_secure (sluice_buffer_endpoint (s_buffer), &curve)
        : sluice_stream_new (sluice_buffer_endpoint (s_buffer));
    cr_assert_not_null (stream);
    sluice_stream_set_grace (stream, REFUSED_WAIT_MS);
    return stream;
}

static uint64_t
s_written (sluice_stream_t *allowed)
{
    sluice_buffer_status_t status;
    cr_assert_eq (sluice_stream_status (allowed, &status), SLUICE_OK);
    return status.written;
}

Test (security, an_allowed_client_is_served)
{
    s_start (&(sluice_curve_t) { .cert = s_server_secret, .allow = s_allow });
    sluice_stream_t *good = s_client (s_good_secret, s_server);
    cr_assert_eq (sluice_stream_write_str (good, "secret"), SLUICE_OK,
                  "%s", sluice_stream_error_text (good));
    sluice_chunk_t chunk;
    cr_assert_eq (sluice_stream_read (good, &chunk), SLUICE_OK);
    cr_assert_str_eq (chunk.text, "secret");
    sluice_stream_destroy (&good);
}

Test (security, an_unknown_key_is_rejected_and_nothing_of_it_arrives)
{
    s_start (&(sluice_curve_t) { .cert = s_server_secret, .allow = s_allow });
    sluice_stream_t *good = s_client (s_good_secret, s_server);
    sluice_stream_t *bad = s_client (s_bad_secret, s_server);
    sluice_err_t rc = sluice_stream_write_timeout (bad, "intruder", 8, false, REFUSED_WAIT_MS);
    cr_assert_eq (rc, SLUICE_ETRANSPORT, "unknown key got %s", sluice_strerror (rc));
    cr_assert_eq (s_written (good), 0, "a chunk of the unknown client reached the buffer");
    sluice_stream_destroy (&bad);
    sluice_stream_destroy (&good);
}

Test (security, a_plaintext_client_is_rejected)
{
    s_start (&(sluice_curve_t) { .cert = s_server_secret, .allow = s_allow });
    sluice_stream_t *good = s_client (s_good_secret, s_server);
    sluice_stream_t *plain = s_client (NULL, NULL);
    sluice_err_t rc = sluice_stream_write_timeout (plain, "plain", 5, false, REFUSED_WAIT_MS);
    cr_assert_eq (rc, SLUICE_ETRANSPORT, "plaintext client got %s", sluice_strerror (rc));
    cr_assert_eq (s_written (good), 0);
    sluice_stream_destroy (&plain);
    sluice_stream_destroy (&good);
}

Test (security, junk_connections_do_not_block_a_legitimate_client)
{
    s_start (&(sluice_curve_t) { .cert = s_server_secret, .allow = s_allow });
    //  Raw tcp connections that send garbage instead of a ZMTP greeting, and stay open
    int port = 0;
    cr_assert_eq (sscanf (strrchr (sluice_buffer_endpoint (s_buffer), ':') + 1, "%d", &port), 1);
    int junk [16];
    for (int index = 0; index < 16; index++) {
        junk [index] = socket (AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
        inet_pton (AF_INET, "127.0.0.1", &address.sin_addr);
        cr_assert_eq (connect (junk [index], (struct sockaddr *) &address, sizeof address), 0);
        char garbage [64];
        for (size_t byte = 0; byte < sizeof garbage; byte++)
            garbage [byte] = (char) (index * 31 + byte * 7);
        cr_assert_eq (write (junk [index], garbage, sizeof garbage), (ssize_t) sizeof garbage);
    }
    sluice_stream_t *good = s_client (s_good_secret, s_server);
    cr_assert_eq (sluice_stream_write_str (good, "through"), SLUICE_OK,
                  "%s", sluice_stream_error_text (good));
    cr_assert_eq (s_written (good), 1);
    sluice_stream_destroy (&good);
    for (int index = 0; index < 16; index++)
        close (junk [index]);
}

Test (security, curve_without_an_allow_list_refuses_to_start)
{
    sluice_err_t err = SLUICE_OK;
    s_buffer = sluice_buffer_new (&(sluice_buffer_opts_t) {
        .endpoint = "tcp://127.0.0.1:0", .capacity = 8,
        .curve = &(sluice_curve_t) { .cert = s_server_secret } }, &err);
    cr_assert_null (s_buffer, "started with CURVE but no authentication");
    cr_assert_eq (err, SLUICE_EINVAL);
}

Test (security, encryption_only_accepts_any_key_but_not_plaintext)
{
    s_start (&(sluice_curve_t) { .cert = s_server_secret, .encrypt_only = true });
    sluice_stream_t *any = s_client (s_bad_secret, s_server);
    cr_assert_eq (sluice_stream_write_str (any, "hidden"), SLUICE_OK,
                  "%s", sluice_stream_error_text (any));
    sluice_stream_t *plain = s_client (NULL, NULL);
    cr_assert_eq (sluice_stream_write_timeout (plain, "x", 1, false, REFUSED_WAIT_MS),
                  SLUICE_ETRANSPORT);
    cr_assert_eq (s_written (any), 1);
    sluice_stream_destroy (&plain);
    sluice_stream_destroy (&any);
}

Test (security, a_missing_certificate_is_a_clear_error)
{
    sluice_err_t err = SLUICE_OK;
    s_buffer = sluice_buffer_new (&(sluice_buffer_opts_t) {
        .endpoint = "tcp://127.0.0.1:0", .capacity = 8,
        .curve = &(sluice_curve_t) { .cert = "/nonexistent/cert", .allow = s_allow } }, &err);
    cr_assert_null (s_buffer);
    cr_assert_eq (err, SLUICE_EINVAL);
    sluice_curve_t curve = { .server_key = "not-a-key-nor-a-file" };
    cr_assert_null (sluice_stream_new_secure ("tcp://127.0.0.1:1", &curve));
}

//  The events socket says what the actor does: it takes the same certificate and allow-list
//  as the request socket, so an unknown key or a plaintext subscriber hears nothing.
Test (security, events_reach_allowed_subscribers_only)
{
    sluice_err_t err;
    s_buffer = sluice_buffer_new (&(sluice_buffer_opts_t) {
        .endpoint = "tcp://127.0.0.1:0", .events_endpoint = "tcp://127.0.0.1:0", .capacity = 8,
        .curve = &(sluice_curve_t) { .cert = s_server_secret, .allow = s_allow } }, &err);
    cr_assert_not_null (s_buffer, "buffer did not start: %s", sluice_strerror (err));
    const char *events = sluice_buffer_events_endpoint (s_buffer);
    const char *open [] = { SLUICE_EVENT_OPEN, NULL };
    char name [32] = "";
    sluice_err_t rc = sluice_events_wait_secure (events,
        &(sluice_curve_t) { .cert = s_bad_secret, .server_key = s_server }, open,
        REFUSED_WAIT_MS, name, sizeof name, NULL, 0);
    cr_expect_eq (rc, SLUICE_ETIMEOUT, "unknown key got %s (%s)", sluice_strerror (rc), name);
    rc = sluice_events_wait (events, open, REFUSED_WAIT_MS, name, sizeof name, NULL, 0);
    cr_expect_eq (rc, SLUICE_ETIMEOUT, "plaintext subscriber got %s (%s)", sluice_strerror (rc), name);
    //  The allowed key hears the current state (replayed to late subscribers)
    rc = sluice_events_wait_secure (events,
        &(sluice_curve_t) { .cert = s_good_secret, .server_key = s_server }, open,
        SLUICE_FOREVER, name, sizeof name, NULL, 0);
    cr_expect_eq (rc, SLUICE_OK, "allowed key: %s", sluice_strerror (rc));
    cr_expect_str_eq (name, SLUICE_EVENT_OPEN);
}
