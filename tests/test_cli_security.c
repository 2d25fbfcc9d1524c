/*  test_cli_security.c - CURVE through the sluice command: keygen, the --curve-* options of
    servers and clients, and the curve settings of pipeline files.

    Like test_cli.c: the binary is build/<this build>/bin/sluice (found from /proc/self/exe),
    or $SLUICE_CLI. Servers bind tcp://127.0.0.1:0 and print "listening on ENDPOINT" first, then
    "curve key KEY": the test reads those lines instead of guessing ports or sleeping. Every
    child dies with the test process (PR_SET_PDEATHSIG) and is killed and reaped in fini;
    waits are on a pidfd, bounded by K_WAIT_MS as a liveness limit.

    Each test has its own directory: a server certificate pair, an allowed client (public half
    in allow/, secret half outside) and an unknown client. A refused client gets no answer at
    all, so its command ends by its own --timeout (plus the client's grace period).
*/
#include "proc.h"
#include "sluice.h"
#include <ftw.h>
#include <sys/stat.h>

#define K_SUITE_TIMEOUT  90        //  seconds: several processes per test, under ASan too
#define K_WAIT_MS        20000     //  liveness bound for a child or a line
#define K_MAX_CHILDREN   12

static struct {
    char dir [PATH_MAX];
    char allow [PATH_MAX + 16];
    char server [PATH_MAX + 16], server_secret [PATH_MAX + 32], server_key [41];
    char good_secret [PATH_MAX + 32];
    char bad_secret [PATH_MAX + 32];
} k;

static void
k_path (char *out, size_t size, const char *name)
{
    int written = snprintf (out, size, "%s/%s", k.dir, name);
    cr_assert (written > 0 && (size_t) written < size);
}

static void
k_init (void)
{
    memset (&k, 0, sizeof k);
    p_init (K_MAX_CHILDREN, K_WAIT_MS);
    snprintf (k.dir, sizeof k.dir, "/tmp/sluice-test-cli-security-XXXXXX");
    cr_assert_not_null (mkdtemp (k.dir), "mkdtemp: %s", strerror (errno));
    //  The certificates the servers and clients of a test use
    k_path (k.allow, sizeof k.allow, "allow");
    cr_assert_eq (mkdir (k.allow, 0700), 0);
    k_path (k.server, sizeof k.server, "server");
    snprintf (k.server_secret, sizeof k.server_secret, "%s_secret", k.server);
    zcert_t *server = zcert_new ();
    cr_assert_eq (zcert_save (server, k.server), 0);
    snprintf (k.server_key, sizeof k.server_key, "%s", zcert_public_txt (server));
    zcert_destroy (&server);
    char good [PATH_MAX + 32];
    snprintf (good, sizeof good, "%s/good", k.allow);
    k_path (k.good_secret, sizeof k.good_secret, "good_secret");
    zcert_t *allowed = zcert_new ();
    cr_assert_eq (zcert_save_public (allowed, good), 0);
    cr_assert_eq (zcert_save_secret (allowed, k.good_secret), 0);
    zcert_destroy (&allowed);
    k_path (k.bad_secret, sizeof k.bad_secret, "bad_secret");
    zcert_t *unknown = zcert_new ();
    cr_assert_eq (zcert_save_secret (unknown, k.bad_secret), 0);
    zcert_destroy (&unknown);
}

static int
k_remove (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    return remove (path);
}

static void
k_fini (void)
{
    p_fini ();
    if (*k.dir)
        nftw (k.dir, k_remove, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite (cli_security, .init = k_init, .fini = k_fini, .timeout = K_SUITE_TIMEOUT);

// ---------------------------------------------------------------------------------------------
//  Processes and files (the rest is in proc.h)

//  Stop a server with SIGTERM and expect it to end cleanly.
static void
k_stop (size_t index)
{
    kill (p_fx.children [index].pid, SIGTERM);
    cr_expect_eq (p_wait (index), 0, "server %zu did not stop cleanly", index);
}

static void
k_write_file (const char *path, const char *text)
{
    p_write_file (path, text, strlen (text));
}

//  Start a server command (ARGS after the command name) and read its first lines: the
//  endpoint, and with CURVE its key, which must be the server certificate's.
static size_t
k_server (const char *const *args, char *endpoint, size_t size, const char *err)
{
    size_t index = p_start_io (args, NULL, -1, NULL, true, err);
    p_listening (index, "tcp://127.0.0.1:", endpoint, size);
    char line [256];
    p_line (index, line, sizeof line);
    cr_assert (strncmp (line, "curve key ", 10) == 0, "second line: '%s'", line);
    cr_expect_str_eq (line + 10, k.server_key);
    return index;
}

static size_t
k_secure_buffer (char *endpoint, size_t size)
{
    return k_server (P_ARGS ("buffer", "--bind", "tcp://127.0.0.1:0", "--capacity", "8",
                             "--curve-cert", k.server_secret, "--curve-allow", k.allow),
                     endpoint, size, NULL);
}

//  The buffer's "written" counter, asked by an allowed client with `sluice status --json`.
static long
k_written (const char *endpoint)
{
    char out [PATH_MAX + 32];
    k_path (out, sizeof out, "status.json");
    cr_assert_eq (p_run (P_ARGS ("status", "--connect", endpoint, "--json",
                                 "--curve-cert", k.good_secret, "--curve-server-key", k.server),
                         NULL, out, NULL), 0, "status with an allowed key");
    char *json = p_read_file (out, NULL);
    const char *field = strstr (json, "\"written\": ");
    cr_assert_not_null (field, "no written counter in %s", json);
    long written = strtol (field + 11, NULL, 10);
    free (json);
    return written;
}

// =============================================================================================
//  keygen

Test (cli_security, keygen_writes_a_pair_czmq_loads_and_does_not_overwrite)
{
    char path [PATH_MAX + 32], secret [PATH_MAX + 48], out [PATH_MAX + 32], err [PATH_MAX + 32];
    k_path (path, sizeof path, "fresh");
    snprintf (secret, sizeof secret, "%s_secret", path);
    k_path (out, sizeof out, "keygen.out");
    k_path (err, sizeof err, "keygen.err");
    cr_assert_eq (p_run (P_ARGS ("keygen", path), NULL, out, err), 0);

    //  Printed: the public key, alone on its line
    char *printed = p_read_file (out, NULL);
    cr_assert_eq (strlen (printed), 41, "keygen printed '%s'", printed);
    cr_assert_eq (printed [40], '\n');
    printed [40] = 0;
    //  The public file has the public key only; the secret file both, and is private
    zcert_t *public_cert = zcert_load (path);
    zcert_t *secret_cert = zcert_load (secret);
    cr_assert_not_null (public_cert);
    cr_assert_not_null (secret_cert);
    cr_expect_str_eq (zcert_public_txt (secret_cert), printed);
    cr_expect_str_eq (zcert_public_txt (public_cert), printed);
    cr_expect_str_neq (zcert_secret_txt (secret_cert), "0000000000000000000000000000000000000000");
    char *public_text = p_read_file (path, NULL);
    cr_expect_null (strstr (public_text, zcert_secret_txt (secret_cert)),
                    "the public file holds the secret key");
    free (public_text);
    struct stat info;
    cr_assert_eq (stat (secret, &info), 0);
    cr_expect_eq (info.st_mode & 077, 0, "%s is readable by others (mode %o)", secret,
                  info.st_mode & 0777);
    zcert_destroy (&public_cert);

    //  A second keygen must not replace the pair unless asked to
    cr_expect_eq (p_run (P_ARGS ("keygen", path), NULL, NULL, err), 1);
    p_expect_contains (err, "exists");
    zcert_t *again = zcert_load (secret);
    cr_expect_str_eq (zcert_public_txt (again), printed, "the existing pair was replaced");
    zcert_destroy (&again);
    cr_expect_eq (p_run (P_ARGS ("keygen", "--force", path), NULL, out, NULL), 0);
    again = zcert_load (secret);
    cr_expect_str_neq (zcert_public_txt (again), printed, "--force kept the old pair");
    cr_assert_eq (stat (secret, &info), 0);
    cr_expect_eq (info.st_mode & 077, 0);
    zcert_destroy (&again);
    zcert_destroy (&secret_cert);
    free (printed);

    cr_expect_eq (p_run (P_ARGS ("keygen"), NULL, NULL, NULL), 2);
    cr_expect_eq (p_run (P_ARGS ("keygen", "--help"), NULL, NULL, NULL), 0);
}

// =============================================================================================
//  A buffer with an allowed-clients directory

Test (cli_security, an_allowed_client_pair_is_served_byte_for_byte)
{
    char endpoint [256];
    size_t buffer = k_secure_buffer (endpoint, sizeof endpoint);
    char in [PATH_MAX + 32], out [PATH_MAX + 32], err [PATH_MAX + 32];
    k_path (in, sizeof in, "in.txt");
    k_path (out, sizeof out, "out.txt");
    k_path (err, sizeof err, "write.err");
    const char *text = "first line\n\n\ttabbed \xe2\x9c\x93 utf-8\r\nsecret payload 42\nlast\n";
    k_write_file (in, text);
    size_t reader = p_start (P_ARGS ("read", "--connect", endpoint, "--curve-cert",
                                     k.good_secret, "--curve-server-key", k.server),
                             NULL, out, NULL);
    //  The server key as the key itself this time
    cr_expect_eq (p_run (P_ARGS ("write", "--connect", endpoint, "--close", "--curve-cert",
                                 k.good_secret, "--curve-server-key", k.server_key),
                         in, NULL, err), 0, "allowed writer");
    cr_expect_eq (p_wait (reader), 0, "allowed reader");
    char *got = p_read_file (out, NULL);
    cr_expect_str_eq (got, text);
    free (got);
    cr_expect_eq (k_written (endpoint), 5);
    k_stop (buffer);
}

Test (cli_security, an_unknown_key_is_refused_and_writes_nothing)
{
    char endpoint [256];
    size_t buffer = k_secure_buffer (endpoint, sizeof endpoint);
    char in [PATH_MAX + 32], err [PATH_MAX + 32];
    k_path (in, sizeof in, "in.txt");
    k_path (err, sizeof err, "write.err");
    k_write_file (in, "one\ntwo\n");
    cr_assert_eq (p_run (P_ARGS ("write", "--connect", endpoint, "--curve-cert", k.good_secret,
                                 "--curve-server-key", k.server), in, NULL, NULL), 0);
    cr_assert_eq (k_written (endpoint), 2);

    k_write_file (in, "intruder\n");
    int rc = p_run (P_ARGS ("write", "--connect", endpoint, "--timeout", "500", "--curve-cert",
                            k.bad_secret, "--curve-server-key", k.server), in, NULL, err);
    cr_expect_neq (rc, 0, "a client with an unknown key could write");
    p_expect_contains (err, "CURVE");
    cr_expect_eq (k_written (endpoint), 2, "a chunk of the unknown client reached the buffer");
    //  What is queued is exactly what the allowed client wrote
    char out [PATH_MAX + 32];
    k_path (out, sizeof out, "out.txt");
    cr_expect_eq (p_run (P_ARGS ("close", "--connect", endpoint, "--curve-cert", k.good_secret,
                                 "--curve-server-key", k.server), NULL, NULL, NULL), 0);
    cr_expect_eq (p_run (P_ARGS ("read", "--connect", endpoint, "--curve-cert", k.good_secret,
                                 "--curve-server-key", k.server), NULL, out, NULL), 0);
    char *got = p_read_file (out, NULL);
    cr_expect_str_eq (got, "one\ntwo\n");
    free (got);
    k_stop (buffer);
}

Test (cli_security, a_plaintext_client_is_refused)
{
    char endpoint [256];
    size_t buffer = k_secure_buffer (endpoint, sizeof endpoint);
    char out [PATH_MAX + 32];
    k_path (out, sizeof out, "plain.out");
    cr_expect_neq (p_run (P_ARGS ("status", "--connect", endpoint, "--timeout", "500"),
                          NULL, out, NULL), 0, "plaintext status was answered");
    char *printed = p_read_file (out, NULL);
    cr_expect_str_eq (printed, "", "plaintext status printed '%s'", printed);
    free (printed);
    //  A client with the server key but no certificate of its own: refused too
    cr_expect_neq (p_run (P_ARGS ("status", "--connect", endpoint, "--timeout", "500",
                                  "--curve-server-key", k.server), NULL, NULL, NULL), 0);
    cr_expect_eq (k_written (endpoint), 0);
    k_stop (buffer);
}

Test (cli_security, curve_without_allowed_clients_refuses_to_start)
{
    char out [PATH_MAX + 32], err [PATH_MAX + 32];
    k_path (out, sizeof out, "buffer.out");
    k_path (err, sizeof err, "buffer.err");
    cr_expect_eq (p_run (P_ARGS ("buffer", "--bind", "tcp://127.0.0.1:0", "--capacity", "4",
                                 "--curve-cert", k.server_secret), NULL, out, err), 2);
    p_expect_contains (err, "--curve-cert without --curve-allow");
    p_expect_contains (err, "--curve-encrypt-only");
    char *printed = p_read_file (out, NULL);
    cr_expect_str_eq (printed, "", "it printed '%s' on stdout", printed);
    free (printed);
    cr_expect_eq (p_run (P_ARGS ("model-server", "--bind", "tcp://127.0.0.1:0",
                                 "--curve-cert", k.server_secret), NULL, NULL, err), 2);
    p_expect_contains (err, "--curve-cert without --curve-allow");

    //  Settings that cannot work are refused before anything starts
    char missing [PATH_MAX + 32];
    k_path (missing, sizeof missing, "no-such-dir");
    cr_expect_eq (p_run (P_ARGS ("buffer", "--bind", "tcp://127.0.0.1:0", "--capacity", "4",
                                 "--curve-cert", k.server_secret, "--curve-allow", missing),
                         NULL, NULL, err), 2);
    p_expect_contains (err, "not a directory");
    cr_expect_eq (p_run (P_ARGS ("buffer", "--bind", "tcp://127.0.0.1:0", "--capacity", "4",
                                 "--curve-cert", missing, "--curve-allow", k.allow),
                         NULL, NULL, err), 2);
    p_expect_contains (err, "cannot load certificate");
    cr_expect_eq (p_run (P_ARGS ("buffer", "--bind", "tcp://127.0.0.1:0", "--capacity", "4",
                                 "--curve-cert", k.server_secret, "--curve-allow", k.allow,
                                 "--curve-encrypt-only"), NULL, NULL, err), 2);
    cr_expect_eq (p_run (P_ARGS ("write", "--connect", "tcp://127.0.0.1:1",
                                 "--curve-cert", k.good_secret), NULL, NULL, err), 2);
    p_expect_contains (err, "--curve-server-key");
    cr_expect_eq (p_run (P_ARGS ("read", "--connect", "tcp://127.0.0.1:1",
                                 "--curve-server-key", "not-a-key"), NULL, NULL, err), 2);
    p_expect_contains (err, "neither a certificate file nor a 40-character Z85 key");
}

Test (cli_security, encrypt_only_accepts_a_client_with_only_the_server_key)
{
    char endpoint [256];
    size_t buffer = k_server (P_ARGS ("buffer", "--bind", "tcp://127.0.0.1:0", "--capacity", "4",
                                      "--curve-cert", k.server_secret, "--curve-encrypt-only"),
                              endpoint, sizeof endpoint, NULL);
    char in [PATH_MAX + 32], out [PATH_MAX + 32];
    k_path (in, sizeof in, "in.txt");
    k_path (out, sizeof out, "out.txt");
    k_write_file (in, "hidden\nin transit\n");
    cr_expect_eq (p_run (P_ARGS ("write", "--connect", endpoint, "--close",
                                 "--curve-server-key", k.server), in, NULL, NULL), 0);
    cr_expect_eq (p_run (P_ARGS ("read", "--connect", endpoint,
                                 "--curve-server-key", k.server_key), NULL, out, NULL), 0);
    char *got = p_read_file (out, NULL);
    cr_expect_str_eq (got, "hidden\nin transit\n");
    free (got);
    //  Any key is accepted, but plaintext is not
    cr_expect_eq (p_run (P_ARGS ("status", "--connect", endpoint, "--curve-cert", k.bad_secret,
                                 "--curve-server-key", k.server), NULL, NULL, NULL), 0);
    cr_expect_neq (p_run (P_ARGS ("status", "--connect", endpoint, "--timeout", "500"),
                          NULL, NULL, NULL), 0);
    k_stop (buffer);
}

// =============================================================================================
//  Model server, stage, pipeline files

Test (cli_security, model_server_serves_an_allowed_client_only)
{
    char endpoint [256];
    size_t server = k_server (P_ARGS ("model-server", "--bind", "tcp://127.0.0.1:0",
                                      "--curve-cert", k.server_secret, "--curve-allow", k.allow),
                              endpoint, sizeof endpoint, NULL);
    char out [PATH_MAX + 32];
    k_path (out, sizeof out, "response.txt");
    cr_expect_eq (p_run (P_ARGS ("wait-ready", "--connect", endpoint, "--curve-cert",
                                 k.good_secret, "--curve-server-key", k.server),
                         NULL, NULL, NULL), 0);
    cr_expect_eq (p_run (P_ARGS ("request", "--connect", endpoint, "--curve-cert", k.good_secret,
                                 "--curve-server-key", k.server, "hello"), NULL, out, NULL), 0);
    char *got = p_read_file (out, NULL);
    cr_expect_str_eq (got, "Response hello from sim-model\n");
    free (got);
    cr_expect_neq (p_run (P_ARGS ("request", "--connect", endpoint, "--timeout", "500",
                                  "--grace", "0", "--curve-cert", k.bad_secret,
                                  "--curve-server-key", k.server, "intruder"), NULL, NULL, NULL),
                   0, "an unknown key got an inference");
    //  A client shutting it down (allowed) ends the process
    cr_expect_eq (p_run (P_ARGS ("close", "--connect", endpoint, "--curve-cert", k.good_secret,
                                 "--curve-server-key", k.server), NULL, NULL, NULL), 0);
    cr_expect_eq (p_wait (server), 0);
}

Test (cli_security, model_server_with_secure_events_exits_after_close)
{
    //  Its events socket takes the same CURVE settings: the process still ends after a
    //  client's shutdown (the publisher shares the process's authenticator)
    size_t server = p_start_io (P_ARGS ("model-server", "--bind", "tcp://127.0.0.1:0",
                                        "--events", "tcp://127.0.0.1:0", "--load-time", "0",
                                        "--curve-cert", k.server_secret, "--curve-allow", k.allow),
                                NULL, -1, NULL, true, NULL);
    char endpoint [256], line [256];
    p_listening (server, "tcp://127.0.0.1:", endpoint, sizeof endpoint);
    p_line (server, line, sizeof line);
    cr_assert (strncmp (line, "events on tcp://127.0.0.1:", 26) == 0, "second line: '%s'", line);
    char events [256];
    snprintf (events, sizeof events, "%s", line + 10);
    p_line (server, line, sizeof line);
    cr_expect_str_eq (line + 10, k.server_key);
    const char *ready [] = { SLUICE_EVENT_READY, NULL };
    cr_expect_eq (sluice_events_wait_secure (events, &(sluice_curve_t) { .cert = k.good_secret,
                  .server_key = k.server }, ready, SLUICE_FOREVER, NULL, 0, NULL, 0), SLUICE_OK);
    cr_expect_eq (p_run (P_ARGS ("close", "--connect", endpoint, "--curve-cert", k.good_secret,
                                 "--curve-server-key", k.server), NULL, NULL, NULL), 0);
    cr_expect_eq (p_wait (server), 0);
}

Test (cli_security, stage_between_two_secure_buffers)
{
    char input [256], output [256];
    size_t first = k_secure_buffer (input, sizeof input);
    size_t second = k_secure_buffer (output, sizeof output);
    char in [PATH_MAX + 32], out [PATH_MAX + 32];
    k_path (in, sizeof in, "in.txt");
    k_path (out, sizeof out, "out.txt");
    k_write_file (in, "quiet\nwords\n");
    size_t stage = p_start (P_ARGS ("stage", "--input", input, "--output", output,
                                    "--transform", "upper", "--curve-cert", k.good_secret,
                                    "--curve-server-key", k.server), NULL, NULL, NULL);
    cr_expect_eq (p_run (P_ARGS ("write", "--connect", input, "--close", "--curve-cert",
                                 k.good_secret, "--curve-server-key", k.server), in, NULL, NULL), 0);
    cr_expect_eq (p_wait (stage), 0, "sluice stage");
    cr_expect_eq (p_run (P_ARGS ("read", "--connect", output, "--curve-cert", k.good_secret,
                                 "--curve-server-key", k.server), NULL, out, NULL), 0);
    char *got = p_read_file (out, NULL);
    cr_expect_str_eq (got, "QUIET\nWORDS\n");
    free (got);
    k_stop (first);
    k_stop (second);
}

Test (cli_security, stage_with_one_plaintext_and_one_secure_side)
{
    char input [256], output [256];
    size_t plain = p_start_io (P_ARGS ("buffer", "--bind", "tcp://127.0.0.1:0", "--capacity", "4"),
                               NULL, -1, NULL, true, NULL);
    p_listening (plain, "tcp://127.0.0.1:", input, sizeof input);
    size_t secure = k_secure_buffer (output, sizeof output);
    char in [PATH_MAX + 32], out [PATH_MAX + 32];
    k_path (in, sizeof in, "in.txt");
    k_path (out, sizeof out, "out.txt");
    k_write_file (in, "Mixed Case\n");
    //  The common certificate goes to the side that has a server key only
    size_t stage = p_start (P_ARGS ("stage", "--input", input, "--output", output,
                                    "--transform", "lower", "--curve-cert", k.good_secret,
                                    "--output-curve-server-key", k.server),
                            NULL, NULL, NULL);
    cr_expect_eq (p_run (P_ARGS ("write", "--connect", input, "--close"), in, NULL, NULL), 0);
    cr_expect_eq (p_wait (stage), 0, "sluice stage");
    cr_expect_eq (p_run (P_ARGS ("read", "--connect", output, "--curve-cert", k.good_secret,
                                 "--curve-server-key", k.server), NULL, out, NULL), 0);
    char *got = p_read_file (out, NULL);
    cr_expect_str_eq (got, "mixed case\n");
    free (got);
    k_stop (plain);
    k_stop (secure);
}

Test (cli_security, pipeline_file_with_curve_on_both_sides)
{
    //  A secure buffer served from the run, and a secure buffer running elsewhere that the
    //  run's stage writes into; a remote reader takes it from there
    char remote [256];
    size_t buffer = k_secure_buffer (remote, sizeof remote);
    char cfg [PATH_MAX + 32], out [PATH_MAX + 32], err [PATH_MAX + 32];
    k_path (cfg, sizeof cfg, "secure.cfg");
    k_path (out, sizeof out, "out.txt");
    k_path (err, sizeof err, "run.err");
    //  Relative paths are relative to the file's directory
    char *text = zsys_sprintf (
        "buffer = tokens\n"
        "    endpoint = tcp://127.0.0.1:0\n"
        "    capacity = 2\n"
        "    curve-cert = server_secret\n"
        "    curve-allow = allow\n"
        "buffer = speech\n"
        "    endpoint = %s\n"
        "    curve-server-key = server\n"
        "writer = llm\n"
        "    output = tokens\n"
        "    curve-cert = good_secret\n"
        "    tokens\n"
        "        token = \"alpha\"\n"
        "        token = \" beta\"\n"
        "stage = loud\n"
        "    input = tokens\n"
        "    output = speech\n"
        "    transform = upper\n"
        "    curve-cert = good_secret\n", remote);
    k_write_file (cfg, text);
    free (text);
    size_t reader = p_start (P_ARGS ("read", "--connect", remote, "--curve-cert",
                                     k.good_secret, "--curve-server-key", k.server),
                             NULL, out, NULL);
    cr_expect_eq (p_run (P_ARGS ("run", cfg), NULL, NULL, err), 0, "sluice run");
    cr_expect_eq (p_wait (reader), 0, "sluice read");
    char *got = p_read_file (out, NULL);
    cr_expect_str_eq (got, "ALPHA\n BETA\n");
    free (got);
    k_stop (buffer);

    //  The command's options as defaults: the run's buffer gets CURVE without a word in the file
    char *local = zsys_sprintf (
        "buffer = lines\n"
        "    endpoint = tcp://127.0.0.1:0\n"
        "writer = w\n"
        "    output = lines\n"
        "    curve-cert = good_secret\n"
        "    tokens\n"
        "        token = \"one\"\n"
        "        token = \"two\"\n"
        "reader = r\n"
        "    input = lines\n"
        "    curve-cert = good_secret\n");
    k_write_file (cfg, local);
    free (local);
    cr_expect_eq (p_run (P_ARGS ("run", "--verbose", "--curve-cert", k.server_secret,
                                 "--curve-allow", k.allow, cfg), NULL, out, err), 0);
    got = p_read_file (out, NULL);
    cr_expect_str_eq (got, "one\ntwo\n");
    free (got);
    p_expect_contains (err, k.server_key);
    cr_expect_eq (p_run (P_ARGS ("run", "--curve-cert", k.server_secret, cfg), NULL, NULL, err),
                  2, "--curve-cert alone let a buffer start");
    p_expect_contains (err, "curve-cert without curve-allow");

    //  Checked before anything starts: a client that would be refused, a server that would
    //  accept anyone, and unknown keys
    static const char *const broken [][2] = {
        { "    curve-cert = good_secret\n", "    curve-cert = bad_secret\n" },
        { "    curve-allow = allow\n", "" },
        { "    curve-allow = allow\n", "    curve-alow = allow\n" },
        { "    curve-server-key = server\n", "    curve-server-kee = server\n" },
    };
    static const char *const says [] = {
        "is not among the clients buffer 'tokens' lets in",
        "curve-cert without curve-allow",
        "unknown key 'curve-alow'",
        "unknown key 'curve-server-kee'",
    };
    for (size_t index = 0; index < sizeof broken / sizeof broken [0]; index++) {
        char *file = zsys_sprintf (
            "buffer = tokens\n"
            "    endpoint = tcp://127.0.0.1:0\n"
            "    curve-cert = server_secret\n"
            "    curve-allow = allow\n"
            "buffer = speech\n"
            "    endpoint = tcp://127.0.0.1:1\n"
            "    curve-server-key = server\n"
            "writer = llm\n"
            "    output = tokens\n"
            "    curve-cert = good_secret\n"
            "    tokens\n"
            "        token = \"x\"\n"
            "reader = show\n"
            "    input = speech\n"
            "    curve-cert = good_secret\n");
        //  Replace the first occurrence of the line
        char *at = strstr (file, broken [index][0]);
        cr_assert_not_null (at);
        char *edited = zsys_sprintf ("%.*s%s%s", (int) (at - file), file, broken [index][1],
                                     at + strlen (broken [index][0]));
        k_write_file (cfg, edited);
        free (edited);
        free (file);
        cr_expect_eq (p_run (P_ARGS ("run", cfg), NULL, NULL, err), 2, "broken file %zu", index);
        p_expect_contains (err, says [index]);
    }
}
