/*  test_cli.c - the sluice command, as separate processes over tcp://127.0.0.1.

    The binary is build/<this build>/bin/sluice, found from this test's own path
    (/proc/self/exe is build/<build>/tests/test_cli), or $SLUICE_CLI when set. Servers bind
    tcp://127.0.0.1:0 and print "listening on ENDPOINT" first: a test reads that line (an
    event) instead of guessing ports or sleeping. Every child is registered in the fixture,
    dies with the test process (PR_SET_PDEATHSIG), and is killed and reaped in fini (all of
    that is proc.h). Waits for a child are on a pidfd with T_WAIT_MS as liveness bound; "is
    the writer parked yet" is asked of the buffer itself (common.h's T_WAIT_STATUS), never
    slept on.
*/
#include "common.h"
#include "proc.h"
#include "stage_core.h"
#include <ctype.h>

#define C_SUITE_TIMEOUT  90        //  seconds: many processes, under ASan too
#define C_MAX_CHILDREN   16
#define C_MAX_FILES      32

static char c_root [PATH_MAX + 32];    //  the repository

static void
c_init (void)
{
    p_init (C_MAX_CHILDREN, T_WAIT_MS);
    t_fx_init ();
    snprintf (c_root, sizeof c_root, "%s/../../..", p_fx.exe_dir);
    p_tmpdir ("cli", C_MAX_FILES);
}

static void
c_fini (void)
{
    p_fini ();
    t_fx_fini ();
}

TestSuite (cli, .init = c_init, .fini = c_fini, .timeout = C_SUITE_TIMEOUT);

// ---------------------------------------------------------------------------------------------
//  A buffer process (the rest is in proc.h)

//  Start `sluice buffer` on a free port; returns its index and its endpoint. Also makes the
//  fixture's status client (t_fx.cli, for T_WAIT_STATUS) point at it.
static size_t
c_buffer (const char *capacity, char *endpoint, size_t size, const char *err)
{
    size_t index = p_start_io (P_ARGS ("buffer", "--bind", "tcp://127.0.0.1:0", "--capacity",
                                       capacity), NULL, -1, NULL, true, err);
    p_listening (index, "tcp://127.0.0.1:", endpoint, size);
    if (!t_fx.cli) {
        snprintf (t_fx.endpoint, sizeof t_fx.endpoint, "%s", endpoint);
        t_fx.cli = sluice_stream_new (endpoint);
        cr_assert_not_null (t_fx.cli);
        t_fx.streams [t_fx.nstreams++] = t_fx.cli;
    }
    return index;
}

// ---------------------------------------------------------------------------------------------
//  A flat JSON object parser: {"key": number-or-string, ...}, enough to check --json

typedef struct {
    char keys [32][64];
    char values [32][256];
    bool is_string [32];
    size_t count;
} c_json_t;

static const char *
c_skip (const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    return p;
}

//  A JSON string at p into out; returns the position after it, NULL when invalid.
static const char *
c_json_string (const char *p, char *out, size_t size)
{
    if (*p++ != '"')
        return NULL;
    size_t used = 0;
    while (*p && *p != '"') {
        char c = *p++;
        if ((unsigned char) c < 0x20)
            return NULL;
        if (c == '\\') {
            c = *p++;
            if (c == 'n')
                c = '\n';
            else
            if (c == 't')
                c = '\t';
            else
            if (c == 'u') {
                for (int i = 0; i < 4; i++)
                    if (!isxdigit ((unsigned char) *p++))
                        return NULL;
                c = '?';
            }
            else
            if (c != '"' && c != '\\' && c != '/')
                return NULL;
        }
        if (used + 1 < size)
            out [used++] = c;
    }
    out [used] = 0;
    return *p == '"' ? p + 1 : NULL;
}

static bool
c_json_parse (const char *text, c_json_t *json)
{
    memset (json, 0, sizeof *json);
    const char *p = c_skip (text);
    if (*p++ != '{')
        return false;
    p = c_skip (p);
    if (*p == '}')
        return *c_skip (p + 1) == 0;
    while (json->count < 32) {
        size_t n = json->count;
        p = c_json_string (p, json->keys [n], sizeof json->keys [n]);
        if (!p)
            return false;
        p = c_skip (p);
        if (*p++ != ':')
            return false;
        p = c_skip (p);
        if (*p == '"') {
            p = c_json_string (p, json->values [n], sizeof json->values [n]);
            if (!p)
                return false;
            json->is_string [n] = true;
        }
        else {
            size_t used = 0;
            if (*p == '-')
                json->values [n][used++] = *p++;
            if (!isdigit ((unsigned char) *p))
                return false;
            if (*p == '0' && isdigit ((unsigned char) p [1]))
                return false;
            while (isdigit ((unsigned char) *p) && used < 250)
                json->values [n][used++] = *p++;
        }
        json->count++;
        p = c_skip (p);
        if (*p == '}')
            return *c_skip (p + 1) == 0;
        if (*p++ != ',')
            return false;
        p = c_skip (p);
    }
    return false;
}

static const char *
c_json_get (c_json_t *json, const char *key, bool *is_string)
{
    for (size_t i = 0; i < json->count; i++)
        if (streq (json->keys [i], key)) {
            if (is_string)
                *is_string = json->is_string [i];
            return json->values [i];
        }
    return NULL;
}

// =============================================================================================
//  stdin -> sluice write -> sluice buffer -> sluice read -> stdout

Test (cli, write_buffer_read_is_byte_for_byte_with_backpressure)
{
    //  A few thousand lines of varied shape: empty ones, long ones, tabs, CR, UTF-8
    const char *in = p_path ("in.txt"), *out = p_path ("out.txt");
    zchunk_t *text = zchunk_new (NULL, 0);
    for (int i = 0; i < 4000; i++) {
        char line [8192];
        int size;
        if (i % 97 == 0)
            size = snprintf (line, sizeof line, "\n");
        else
        if (i % 501 == 0) {
            memset (line, 'a' + i % 26, 6000);
            line [6000] = '\n';
            size = 6001;
        }
        else
            size = snprintf (line, sizeof line, "line %d\tçà \xe2\x9c\x93 %s\r\n", i,
                             i % 3 ? "tokens" : "");
        zchunk_extend (text, line, (size_t) size);
    }
    p_write_file (in, zchunk_data (text), zchunk_size (text));

    char endpoint [256];
    c_buffer ("4", endpoint, sizeof endpoint, NULL);
    const char *werr = p_path ("write.err"), *rerr = p_path ("read.err");
    size_t writer = p_start (P_ARGS ("write", "--connect", endpoint, "--close"), in, NULL, werr);
    //  The buffer fills up and the writer is held back before any reader exists
    sluice_buffer_status_t st;
    T_WAIT_STATUS (st, st.parked_writers == 1);
    cr_expect_eq (st.queued, 4);
    size_t reader = p_start (P_ARGS ("read", "--connect", endpoint), NULL, out, rerr);
    cr_expect_eq (p_wait (writer), 0, "sluice write failed");
    cr_expect_eq (p_wait (reader), 0, "sluice read failed");
    size_t err_size;
    free (p_read_file (werr, &err_size));
    cr_expect_eq (err_size, 0, "sluice write complained");

    size_t size;
    char *got = p_read_file (out, &size);
    cr_expect_eq (size, zchunk_size (text), "%zu bytes in, %zu out", zchunk_size (text), size);
    cr_expect (size == zchunk_size (text) && memcmp (got, zchunk_data (text), size) == 0,
               "output differs from input");
    free (got);
    st = t_status ();
    cr_expect_eq (st.written, 4000);
    cr_expect_eq (st.read, 4000);
    cr_expect (st.closed);
    zchunk_destroy (&text);
}

Test (cli, chunk_bytes_and_raw_round_trip_binary)
{
    const char *in = p_path ("in.bin"), *out = p_path ("out.bin");
    unsigned char data [100000];
    t_pattern (data, sizeof data, 42);
    p_write_file (in, data, sizeof data);
    char endpoint [256];
    c_buffer ("3", endpoint, sizeof endpoint, NULL);
    size_t writer = p_start (P_ARGS ("write", "-c", endpoint, "--chunk-bytes", "1000", "--close",
                                     "--window", "8"), in, NULL, NULL);
    size_t reader = p_start (P_ARGS ("read", "-c", endpoint, "--raw", "--batch", "16"), NULL, out, NULL);
    cr_expect_eq (p_wait (writer), 0);
    cr_expect_eq (p_wait (reader), 0);
    size_t size;
    char *got = p_read_file (out, &size);
    cr_expect (size == sizeof data && memcmp (got, data, size) == 0, "binary round trip differs "
               "(%zu bytes out)", size);
    free (got);
    cr_expect_eq (t_status ().written, 100);       //  100 chunks of 1000 bytes
}

Test (cli, final_marks_the_end_without_closing)
{
    const char *in = p_path ("in.txt"), *out = p_path ("out.txt");
    p_write_file (in, "a\nb\n", 4);
    char endpoint [256];
    c_buffer ("8", endpoint, sizeof endpoint, NULL);
    cr_expect_eq (p_run (P_ARGS ("write", "-c", endpoint, "--final"), in, NULL, NULL), 0);
    cr_expect_eq (p_run (P_ARGS ("read", "-c", endpoint), NULL, out, NULL), 0);
    size_t size;
    char *got = p_read_file (out, &size);
    cr_expect_str_eq (got, "a\nb\n");
    free (got);
    cr_expect (!t_status ().closed, "--final closed the buffer");
}

// =============================================================================================
//  Shutdown of the buffer process

Test (cli, sigterm_refuses_the_parked_writer_and_lets_readers_drain)
{
    const char *in = p_path ("in.txt"), *out = p_path ("out.txt");
    const char *werr = p_path ("write.err"), *berr = p_path ("buffer.err");
    p_write_file (in, "1\n2\n3\n4\n5\n6\n", 12);
    char endpoint [256];
    size_t buffer = c_buffer ("3", endpoint, sizeof endpoint, berr);
    size_t writer = p_start (P_ARGS ("write", "--connect", endpoint), in, NULL, werr);
    sluice_buffer_status_t st;
    T_WAIT_STATUS (st, st.parked_writers == 1 && st.queued == 3);

    kill (p_fx.children [buffer].pid, SIGTERM);
    cr_expect_eq (p_wait (writer), 4, "the parked writer must fail with the closed error (exit 4)");
    p_expect_contains (werr, "closed");
    //  The buffer stays up while what it holds is drained
    size_t reader = p_start (P_ARGS ("read", "--connect", endpoint), NULL, out, NULL);
    cr_expect_eq (p_wait (reader), 0, "the reader must drain and reach end of stream");
    cr_expect_eq (p_wait (buffer), 0, "sluice buffer after SIGTERM");
    size_t size;
    char *got = p_read_file (out, &size);
    cr_expect_str_eq (got, "1\n2\n3\n");
    free (got);
}

Test (cli, write_into_a_closed_buffer_exits_4_and_close_ends_readers)
{
    const char *in = p_path ("in.txt"), *out = p_path ("out.txt"), *err = p_path ("err.txt");
    p_write_file (in, "x\n", 2);
    char endpoint [256];
    c_buffer ("2", endpoint, sizeof endpoint, NULL);
    cr_expect_eq (p_run (P_ARGS ("close", "--connect", endpoint), NULL, NULL, NULL), 0);
    cr_expect_eq (p_run (P_ARGS ("close", "--connect", endpoint), NULL, NULL, NULL), 0, "idempotent");
    cr_expect_eq (p_run (P_ARGS ("write", "--connect", endpoint), in, NULL, err), 4);
    p_expect_contains (err, "closed");
    cr_expect_eq (p_run (P_ARGS ("read", "--connect", endpoint), NULL, out, NULL), 0);
    size_t size;
    free (p_read_file (out, &size));
    cr_expect_eq (size, 0, "a closed, empty buffer printed %zu bytes", size);
    cr_expect_eq (p_run (P_ARGS ("wait-ready", "--connect", endpoint), NULL, NULL, NULL), 4);
}

Test (cli, timeouts_exit_3)
{
    char endpoint [256];
    c_buffer ("1", endpoint, sizeof endpoint, NULL);
    const char *err = p_path ("err.txt");
    cr_expect_eq (p_run (P_ARGS ("read", "--connect", endpoint, "--timeout", "50"), NULL, NULL, err), 3);
    p_expect_contains (err, "timed out");
    cr_expect_eq (p_run (P_ARGS ("wait-ready", "--connect", endpoint, "--timeout", "5000"), NULL, NULL, NULL), 0);
    //  Nobody listening on port 1: no answer
    cr_expect_eq (p_run (P_ARGS ("status", "--connect", "tcp://127.0.0.1:1", "--timeout", "100"),
                         NULL, NULL, NULL), 3);
}

// =============================================================================================
//  status

Test (cli, status_json_parses_and_plain_is_key_value)
{
    char endpoint [256];
    c_buffer ("5", endpoint, sizeof endpoint, NULL);
    T_WRITE (t_fx.cli, "queued-one");
    const char *out = p_path ("status.json"), *plain = p_path ("status.txt");
    cr_assert_eq (p_run (P_ARGS ("status", "--connect", endpoint, "--json"), NULL, out, NULL), 0);
    size_t size;
    char *text = p_read_file (out, &size);
    c_json_t json;
    cr_assert (c_json_parse (text, &json), "not a JSON object: %s", text);
    bool is_string = true;
    const char *value = c_json_get (&json, "capacity", &is_string);
    cr_expect (value && streq (value, "5") && !is_string, "capacity: %s", value ? value : "(none)");
    value = c_json_get (&json, "queued", &is_string);
    cr_expect (value && streq (value, "1") && !is_string, "queued: %s", value ? value : "(none)");
    cr_expect_not_null (c_json_get (&json, "closed", NULL));
    cr_expect_not_null (c_json_get (&json, "written", NULL));
    free (text);

    cr_assert_eq (p_run (P_ARGS ("status", "-c", endpoint), NULL, plain, NULL), 0);
    text = p_read_file (plain, &size);
    cr_expect (strstr (text, "capacity") && strstr (text, " 5\n"), "plain status:\n%s", text);
    free (text);
}

// =============================================================================================
//  model-server, wait-ready, request

Test (cli, model_server_process)
{
    size_t server = p_start_io (P_ARGS ("model-server", "--bind", "tcp://127.0.0.1:0",
                                        "--load-time", "100", "--model", "tiny"),
                                NULL, -1, NULL, true, NULL);
    char endpoint [256];
    p_listening (server, "tcp://127.0.0.1:", endpoint, sizeof endpoint);
    cr_expect_eq (p_run (P_ARGS ("wait-ready", "--connect", endpoint), NULL, NULL, NULL), 0);
    const char *out = p_path ("out.txt");
    cr_expect_eq (p_run (P_ARGS ("request", "--connect", endpoint, "hello"), NULL, out, NULL), 0);
    size_t size;
    char *text = p_read_file (out, &size);
    cr_expect_str_eq (text, "Response hello from tiny\n");
    free (text);
    //  From stdin, one trailing newline is the line's end, not payload (as for write)
    const char *in = p_path ("in.txt");
    p_write_file (in, "two\n\n", 5);
    cr_expect_eq (p_run (P_ARGS ("request", "--connect", endpoint), in, out, NULL), 0);
    text = p_read_file (out, &size);
    cr_expect_str_eq (text, "Response two\n from tiny\n");
    free (text);

    const char *json_out = p_path ("status.json");
    cr_expect_eq (p_run (P_ARGS ("status", "--connect", endpoint, "--json"), NULL, json_out, NULL), 0);
    text = p_read_file (json_out, &size);
    c_json_t json;
    cr_expect (c_json_parse (text, &json), "not a JSON object: %s", text);
    bool is_string = false;
    const char *state = c_json_get (&json, "state", &is_string);
    cr_expect (state && streq (state, "ready") && is_string, "state: %s", state ? state : "(none)");
    free (text);

    kill (p_fx.children [server].pid, SIGTERM);
    cr_expect_eq (p_wait (server), 0, "model-server after SIGTERM");
}

Test (cli, model_load_failure_exits_4)
{
    size_t server = p_start_io (P_ARGS ("model-server", "--bind", "tcp://127.0.0.1:0",
                                        "--fail", "no GPU"), NULL, -1, NULL, true, NULL);
    char endpoint [256];
    p_listening (server, "tcp://127.0.0.1:", endpoint, sizeof endpoint);
    const char *err = p_path ("err.txt");
    cr_expect_eq (p_run (P_ARGS ("wait-ready", "--connect", endpoint), NULL, NULL, err), 4);
    p_expect_contains (err, "no GPU");
    cr_expect_eq (p_run (P_ARGS ("request", "--connect", endpoint, "x"), NULL, NULL, err), 4);
    p_expect_contains (err, "no GPU");
    //  close shuts a model server down, and the process then exits by itself
    cr_expect_eq (p_run (P_ARGS ("close", "--connect", endpoint), NULL, NULL, NULL), 0);
    cr_expect_eq (p_wait (server), 0);
}

// =============================================================================================
//  Pipelines and stages

Test (cli, run_llm_tts_example)
{
    char file [PATH_MAX + 64];
    snprintf (file, sizeof file, "%s/examples/pipelines/llm-tts.cfg", c_root);
    const char *out = p_path ("out.txt"), *err = p_path ("err.txt");
    cr_assert_eq (p_run (P_ARGS ("run", file), NULL, out, err), 0, "sluice run %s", file);
    size_t size;
    char *text = p_read_file (out, &size);
    cr_expect_str_eq (text,
        "Speaking: 'Hello'\n"
        "Speaking: ' world'\n"
        "Speaking: '!'\n"
        "Speaking: ' This'\n"
        "Speaking: ' '\n"
        "Speaking: '**** demo'\n"
        "Speaking: ' streams'\n"
        "Speaking: ' tokens.'\n");
    free (text);
}

Test (cli, run_with_a_buffer_in_another_process)
{
    //  Only the endpoint says that `speech` runs elsewhere: here, a `sluice buffer` process
    char endpoint [256];
    c_buffer ("2", endpoint, sizeof endpoint, NULL);
    const char *cfg = p_path ("split.cfg"), *out = p_path ("out.txt");
    char *text = zsys_sprintf (
        "buffer = tokens\n"
        "    endpoint = inproc://tokens\n"
        "    capacity = 2\n"
        "buffer = speech\n"
        "    endpoint = %s\n"
        "writer = llm\n"
        "    output = tokens\n"
        "    tokens\n"
        "        token = \"alpha\"\n"
        "        token = \" beta\"\n"
        "        token = \" gamma\"\n"
        "stage = loud\n"
        "    input = tokens\n"
        "    output = speech\n"
        "    transform = upper\n", endpoint);
    p_write_file (cfg, text, strlen (text));
    free (text);
    size_t reader = p_start (P_ARGS ("read", "--connect", endpoint), NULL, out, NULL);
    size_t run = p_start (P_ARGS ("run", cfg), NULL, NULL, NULL);
    cr_expect_eq (p_wait (run), 0, "sluice run");
    cr_expect_eq (p_wait (reader), 0, "sluice read");
    size_t size;
    char *got = p_read_file (out, &size);
    cr_expect_str_eq (got, "ALPHA\n BETA\n GAMMA\n");
    free (got);
}

Test (cli, run_reads_stdin_and_sigterm_drains)
{
    const char *cfg = p_path ("stdin.cfg");
    const char *text =
        "pipeline\n"
        "    name = from-stdin\n"
        "buffer = lines\n"
        "    endpoint = inproc://lines\n"
        "    capacity = 2\n"
        "writer = input\n"
        "    output = lines\n"
        "    file = -\n"
        "reader = show\n"
        "    input = lines\n"
        "    format = \"<{}>\"\n";
    p_write_file (cfg, text, strlen (text));
    int fds [2];
    cr_assert_eq (pipe2 (fds, O_CLOEXEC), 0);
    size_t run = p_start_io (P_ARGS ("run", cfg), NULL, fds [0], NULL, true, NULL);
    close (fds [0]);
    cr_assert_eq (write (fds [1], "one\ntwo\n", 8), 8);
    char line [256];
    p_line (run, line, sizeof line);
    cr_expect_str_eq (line, "<one>");
    p_line (run, line, sizeof line);
    cr_expect_str_eq (line, "<two>");
    //  stdin still open: the run goes on until it is told to stop
    kill (p_fx.children [run].pid, SIGTERM);
    cr_expect_eq (p_wait (run), 0, "sluice run after SIGTERM");
    close (fds [1]);
}

Test (cli, stage_process_between_two_buffer_processes)
{
    char in [256], out_ep [256];
    c_buffer ("2", in, sizeof in, NULL);
    c_buffer ("2", out_ep, sizeof out_ep, NULL);
    const char *input = p_path ("in.txt"), *out = p_path ("out.txt");
    //  Lines are chunks of one text (their newlines removed): "no" and "fine" make "nofine"
    p_write_file (input, "oh darn \nheck no\nfine\n", 22);
    size_t stage = p_start (P_ARGS ("stage", "--input", in, "--output", out_ep, "--transform",
                                    "mask", "--word", "darn", "--word", "heck"), NULL, NULL, NULL);
    size_t reader = p_start (P_ARGS ("read", "--connect", out_ep), NULL, out, NULL);
    cr_expect_eq (p_run (P_ARGS ("write", "--connect", in, "--close"), input, NULL, NULL), 0);
    cr_expect_eq (p_wait (stage), 0, "sluice stage");
    cr_expect_eq (p_wait (reader), 0, "sluice read");
    size_t size;
    char *got = p_read_file (out, &size);
    cr_expect_str_eq (got, "oh **** \n**** no\nfine\n");
    free (got);
}

//  Random texts written by several `sluice write --chunk-bytes N` (N random, 1-6) into one
//  buffer, through `sluice stage ARGS`, read raw: the output must be the transform (run in
//  process by the stage core) of the whole text.
static void
c_stage_property (const char *const *stage_args, sluice_stage_fn *fn, void *user, uint64_t seed)
{
    s_state = seed;
    char in [256], out_ep [256];
    c_buffer ("8", in, sizeof in, NULL);
    c_buffer ("8", out_ep, sizeof out_ep, NULL);
    const char *args [24] = { "stage", "--input", in, "--output", out_ep };
    size_t count = 5;
    for (size_t index = 0; stage_args [index]; index++)
        args [count++] = stage_args [index];
    const char *out = p_path ("out.txt"), *piece = p_path ("piece.txt"), *err = p_path ("err.txt");
    size_t stage = p_start (args, NULL, NULL, err);
    size_t reader = p_start (P_ARGS ("read", "--connect", out_ep, "--raw"), NULL, out, NULL);
    char whole [8 * S_TEXT_MAX + 1];
    size_t whole_size = 0;
    for (int write = 0; write < 8; write++) {
        char text [S_TEXT_MAX + 1], bytes [8];
        size_t size = s_text (text);
        memcpy (whole + whole_size, text, size);
        whole_size += size;
        p_write_file (piece, text, size);
        snprintf (bytes, sizeof bytes, "%u", 1 + s_rand () % 6);
        int rc = p_run (P_ARGS ("write", "--connect", in, "--chunk-bytes", bytes), piece, NULL, NULL);
        //  4: a stop closed the input
        cr_assert (rc == 0 || rc == 4, "sluice write: %d", rc);
    }
    p_run (P_ARGS ("close", "--connect", in), NULL, NULL, NULL);
    cr_expect_eq (p_wait (stage), 0, "sluice stage");
    cr_expect_eq (p_wait (reader), 0, "sluice read");
    s_collect_t expected;
    s_run_core (fn, user, whole, whole_size, NULL, 0, false, &expected);
    size_t size;
    char *got = p_read_file (out, &size);
    cr_expect (size == expected.size && memcmp (got, expected.data, size) == 0,
               "seed %" PRIu64 ": \"%.*s\" gave \"%s\", not \"%.*s\"", seed, (int) whole_size,
               whole, got, (int) expected.size, expected.data);
    free (got);
}

Test (cli, stage_mask_is_chunk_invariant)
{
    const char *const words [] = { "darn", "heck", "bad", NULL };
    c_stage_property (P_ARGS ("--transform", "mask", "--word", "darn", "--word", "heck",
                              "--word", "bad"), sluice_stage_mask, (void *) words, 0xc11a);
}

Test (cli, stage_stop_is_chunk_invariant)
{
    const char *const words [] = { "STOP", "end.", NULL };
    c_stage_property (P_ARGS ("--transform", "stop", "--word", "STOP", "--word", "end."),
                      sluice_stage_stop_at, (void *) words, 0xc11b);
}

Test (cli, stage_sentences_are_chunk_invariant)
{
    size_t limit = 30;
    c_stage_property (P_ARGS ("--transform", "sentences", "--max-bytes", "30"),
                      sluice_stage_sentences, &limit, 0xc11c);
}

Test (cli, stage_exec_lines_and_a_failing_command)
{
    char in [256], out_ep [256];
    c_buffer ("4", in, sizeof in, NULL);
    c_buffer ("4", out_ep, sizeof out_ep, NULL);
    const char *input = p_path ("in.txt"), *out = p_path ("out.txt"), *err = p_path ("err.txt");
    p_write_file (input, "one\ntwo\nthree\n", 14);
    //  `sluice write` drops the newlines; the command puts its own back
    size_t stage = p_start (P_ARGS ("stage", "--input", in, "--output", out_ep, "--exec",
                                    "sed -u 's/$/!/'", "--lines"), NULL, NULL, err);
    size_t reader = p_start (P_ARGS ("read", "--connect", out_ep), NULL, out, NULL);
    cr_expect_eq (p_run (P_ARGS ("write", "--connect", in, "--close"), input, NULL, NULL), 0);
    cr_expect_eq (p_wait (stage), 0, "sluice stage --exec");
    cr_expect_eq (p_wait (reader), 0, "sluice read");
    char *got = p_read_file (out, NULL);
    cr_expect_str_eq (got, "onetwothree!\n");
    free (got);

    char in2 [256], out2 [256];
    c_buffer ("4", in2, sizeof in2, NULL);
    c_buffer ("4", out2, sizeof out2, NULL);
    stage = p_start (P_ARGS ("stage", "--input", in2, "--output", out2, "--exec",
                             "echo no speech engine >&2; exit 7"), NULL, NULL, err);
    cr_expect_eq (p_run (P_ARGS ("close", "--connect", in2), NULL, NULL, NULL), 0);
    cr_expect_eq (p_wait (stage), 1, "a failing command");
    p_expect_contains (err, "status 7");
    p_expect_contains (err, "no speech engine");
    //  Usage errors name the rule, the same as pipeline files
    cr_expect_eq (p_run (P_ARGS ("stage", "--input", in2, "--output", out2, "--transform", "stop"),
                         NULL, NULL, err), 2);
    p_expect_contains (err, "transform 'stop' needs at least one word");
    cr_expect_eq (p_run (P_ARGS ("stage", "--input", in2, "--output", out2, "--transform",
                                 "sentences", "--max-bytes", "0"), NULL, NULL, err), 2);
    p_expect_contains (err, "max-bytes must be 1 to");
}

Test (cli, run_rejects_an_invalid_file)
{
    const char *cfg = p_path ("bad.cfg"), *err = p_path ("err.txt");
    const char *text =
        "buffer = b\n"
        "    endpoint = inproc://b\n"
        "    capcity = 3\n"
        "reader = r\n"
        "    input = b\n";
    p_write_file (cfg, text, strlen (text));
    cr_expect_eq (p_run (P_ARGS ("run", cfg), NULL, NULL, err), 2);
    p_expect_contains (err, "capcity");
    text = "reader = r\n    input = nosuchbuffer\n";
    p_write_file (cfg, text, strlen (text));
    cr_expect_eq (p_run (P_ARGS ("run", cfg), NULL, NULL, err), 2);
    p_expect_contains (err, "nosuchbuffer");
    cr_expect_eq (p_run (P_ARGS ("run", "/nonexistent/pipeline.cfg"), NULL, NULL, NULL), 2);
}

// =============================================================================================
//  The command line itself

Test (cli, a_client_names_an_unreachable_endpoint_at_once)
{
    //  No timeout and no liveness wait: the cause is known before anything is sent
    const char *err = p_path ("err.txt");
    cr_expect_eq (p_run (P_ARGS ("status", "--connect", "tcp://nosuchhost.invalid:5555"),
                         NULL, NULL, err), 2);
    p_expect_contains (err, "cannot resolve host 'nosuchhost.invalid'");
    cr_expect_eq (p_run (P_ARGS ("read", "--connect", "inproc://x"), NULL, NULL, err), 2);
    p_expect_contains (err, "inproc endpoints exist only inside one process");
}

Test (cli, help_on_every_command_and_usage_errors)
{
    const char *commands [] = { "buffer", "model-server", "stage", "write", "read", "close",
                                "status", "wait-ready", "request", "run" };
    const char *out = p_path ("help.txt"), *err = p_path ("err.txt");
    for (size_t i = 0; i < sizeof commands / sizeof commands [0]; i++) {
        cr_expect_eq (p_run (P_ARGS (commands [i], "--help"), NULL, out, NULL), 0, "%s --help", commands [i]);
        char usage [64];
        snprintf (usage, sizeof usage, "usage: sluice %s", commands [i]);
        p_expect_contains (out, usage);
    }
    cr_expect_eq (p_run (P_ARGS ("--help"), NULL, out, NULL), 0);
    p_expect_contains (out, "exit codes");
    cr_expect_eq (p_run (P_ARGS ("no-such-command"), NULL, NULL, err), 2);
    cr_expect_eq (p_run (P_ARGS ("write"), NULL, NULL, err), 2);
    p_expect_contains (err, "--connect");
    cr_expect_eq (p_run (P_ARGS ("buffer", "--bind", "tcp://127.0.0.1:0", "--capacity", "many"),
                         NULL, NULL, err), 2);
    p_expect_contains (err, "capacity");
    cr_expect_eq (p_run (P_ARGS ("read", "--bogus"), NULL, NULL, err), 2);
    //  A bind that fails is a runtime error
    cr_expect_eq (p_run (P_ARGS ("buffer", "--bind", "nosuchtransport://x", "--capacity", "1"),
                         NULL, NULL, err), 1);
    p_expect_contains (err, "nosuchtransport://x");
}

//  The options of issue 15 (retry policy, unknown outcomes, per-connection limit): in the help,
//  and checked
Test (cli, retry_for_and_peer_max_pending_options)
{
    const char *out = p_path ("help.txt"), *err = p_path ("err.txt");
    cr_expect_eq (p_run (P_ARGS ("write", "--help"), NULL, out, NULL), 0);
    p_expect_contains (out, "--retry-for MS");
    p_expect_contains (out, "6 a chunk's outcome is unknown");
    cr_expect_eq (p_run (P_ARGS ("read", "--connect", "tcp://127.0.0.1:1", "--retry-for", "-1"),
                         NULL, NULL, err), 2);
    p_expect_contains (err, "retry-for");
    cr_expect_eq (p_run (P_ARGS ("model-server", "--help"), NULL, out, NULL), 0);
    p_expect_contains (out, "--peer-max-pending N");
    cr_expect_eq (p_run (P_ARGS ("model-server", "--bind", "tcp://127.0.0.1:0",
                                 "--peer-max-pending", "0"), NULL, NULL, err), 2);
    p_expect_contains (err, "peer-max-pending");
}
