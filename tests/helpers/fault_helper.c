/*  fault_helper.c - small client programs the fault tests start as processes of their own
    (tests/test_faults.c, tests/test_multihost.c). Linked with libsluice; never forked from a
    process that has ZeroMQ sockets: the tests exec it.

    fault_helper hold-read ENDPOINT N
        Read N chunks with sluice_stream_read (acknowledged delivery, one chunk per READ) and
        print each on its own line, flushed. Reading chunk k+1 acknowledges chunk k, so chunks
        1..N-1 are acknowledged and chunk N is held unacknowledged. Then block reading stdin
        forever: the process stops exactly between "received a READ reply" and "sent the next
        READ". At end of stdin it _exits without destroying the stream (no ACK is sent either
        way); the tests kill it with SIGKILL.

    fault_helper wait-status ENDPOINT TIMEOUT_MS COND...
        Ask the actor for its STATUS again and again (each a round trip) until every COND
        holds: KEY=VALUE or KEY>=VALUE, integers of the STATUS reply (docs/PROTOCOL.md).
        Prints the last status text and exits 0 when they hold, 3 after TIMEOUT_MS (a liveness
        bound), 1 on a transport error, 2 on bad usage. For tests that cannot reach the actor
        from their own process (the actor lives in another network namespace).
*/
#include "sluice_conn.h"
#include "sluice.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int
s_hold_read (const char *endpoint, long count)
{
    sluice_stream_t *stream = sluice_stream_new (endpoint);
    if (!stream) {
        fprintf (stderr, "fault_helper: invalid endpoint %s\n", endpoint);
        return 2;
    }
    for (long index = 0; index < count; index++) {
        sluice_chunk_t chunk;
        sluice_err_t rc = sluice_stream_read (stream, &chunk);
        if (rc != SLUICE_OK) {
            fprintf (stderr, "fault_helper: read %ld: %s (%s)\n", index + 1, sluice_strerror (rc),
                     sluice_stream_error_text (stream));
            sluice_stream_destroy (&stream);
            return 1;
        }
        fwrite (chunk.text, 1, chunk.size, stdout);
        fputc ('\n', stdout);
        fflush (stdout);
    }
    //  Hold the last chunk: never send another READ, never destroy the stream (which would
    //  acknowledge it)
    char byte;
    while (read (STDIN_FILENO, &byte, 1) != 0)
        ;
    _exit (0);
}

static bool
s_holds (const char *text, size_t size, const char *cond, bool *valid)
{
    const char *op = strchr (cond, '=');
    if (!op || op == cond) {
        *valid = false;
        return false;
    }
    bool at_least = op > cond && op [-1] == '>';
    char key [128];
    size_t key_size = (size_t) (op - cond) - (at_least ? 1 : 0);
    if (key_size == 0 || key_size >= sizeof key) {
        *valid = false;
        return false;
    }
    memcpy (key, cond, key_size);
    key [key_size] = 0;
    char *end;
    unsigned long long want = strtoull (op + 1, &end, 10);
    if (*end || end == op + 1) {
        *valid = false;
        return false;
    }
    uint64_t missing = UINT64_MAX;
    uint64_t have = sluice_status_u64 (text, size, key, missing);
    if (have == missing)
        return false;
    return at_least ? have >= want : have == want;
}

static int
s_wait_status (const char *endpoint, long timeout_ms, int ncond, char **conds)
{
    sluice_conn_t conn;
    if (sluice_conn_init (&conn, endpoint, NULL) != SLUICE_OK) {
        sluice_conn_fini (&conn);
        fprintf (stderr, "fault_helper: invalid endpoint %s\n", endpoint);
        return 2;
    }
    int64_t deadline = zclock_mono () + timeout_ms;
    char last [1024] = "";
    int exit_code = 3;
    while (true) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            break;
        conn.grace_ms = 0;
        sluice_err_t rc = sluice_conn_call (&conn, SLUICE_CMD_STATUS, 0, (int) left, 0, NULL, 0);
        if (rc != SLUICE_OK || conn.frames.count != 1) {
            if (zclock_mono () >= deadline)
                break;
            fprintf (stderr, "fault_helper: status: %s (%s)\n", sluice_strerror (rc), conn.error_text);
            exit_code = 1;
            break;
        }
        const char *text = (const char *) zmq_msg_data (&conn.frames.items [0]);
        size_t size = zmq_msg_size (&conn.frames.items [0]);
        snprintf (last, sizeof last, "%.*s", (int) size, text);
        bool all = true, valid = true;
        for (int index = 0; index < ncond && all; index++)
            all = s_holds (text, size, conds [index], &valid);
        if (!valid) {
            fprintf (stderr, "fault_helper: bad condition (KEY=N or KEY>=N)\n");
            exit_code = 2;
            break;
        }
        if (all) {
            exit_code = 0;
            break;
        }
    }
    if (exit_code == 0)
        fputs (last, stdout);
    else
    if (exit_code == 3)
        fprintf (stderr, "fault_helper: gave up after %ld ms; last status:\n%s", timeout_ms, last);
    fflush (stdout);
    sluice_conn_fini (&conn);
    return exit_code;
}

int
main (int argc, char **argv)
{
    if (argc == 4 && streq (argv [1], "hold-read"))
        return s_hold_read (argv [2], atol (argv [3]));
    if (argc >= 5 && streq (argv [1], "wait-status"))
        return s_wait_status (argv [2], atol (argv [3]), argc - 4, argv + 4);
    fprintf (stderr, "usage: fault_helper hold-read ENDPOINT N\n"
                     "       fault_helper wait-status ENDPOINT TIMEOUT_MS KEY=N|KEY>=N...\n");
    return 2;
}
