/*  test_log.c - logging never holds up the thread that logs (src/sluice_log.h).

    The log goes to a pipe nobody reads; a flood of lines must neither block the thread that
    logs nor fill anything without bound: a buffer actor keeps answering meanwhile, and the
    lines beyond the rate are reported as suppressed once the log is drained again. (Were a
    line written by the thread that logs, the flood would block it for good on the full pipe,
    and the suite's timeout would end the test.)
*/
#include "common.h"
#include "sluice_log.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>

TestSuite (log, .init = t_fx_init, .fini = t_fx_fini, .timeout = T_SUITE_TIMEOUT);

//  Read what the log pipe holds (non-blocking) into text; true when `needle` was seen.
static bool
s_drain (int fd, const char *needle, size_t *lines)
{
    char bytes [4096];
    bool seen = false;
    ssize_t got;
    while ((got = read (fd, bytes, sizeof bytes - 1)) > 0) {
        bytes [got] = 0;
        seen = seen || strstr (bytes, needle);
        for (ssize_t index = 0; index < got; index++)
            *lines += bytes [index] == '\n';
    }
    return seen;
}

Test (log, a_log_nobody_reads_never_blocks_the_logging_threads)
{
    //  A pipe whose reader does not read: a blocking write to it would hang forever
    signal (SIGPIPE, SIG_IGN);
    int fds [2];
    cr_assert_eq (pipe (fds), 0);
    cr_assert_eq (fcntl (fds [0], F_SETFL, O_NONBLOCK), 0);
    FILE *log = fdopen (fds [1], "w");
    cr_assert_not_null (log);
    zsys_set_logstream (log);
    sluice_log_set_verbose (true);

    //  Far more than the pipe holds (64 KiB): returns at once all the same
    for (int index = 0; index < 100000; index++)
        SLUICE_DEBUG ("flood line %d, padded to make the pipe fill up sooner ..............", index);

    //  An actor keeps serving while the log is stuck; its per-event lines (a client that
    //  gave up on a reply, verbose) go the same way
    t_start (4);
    for (int index = 0; index < 50; index++) {
        sluice_chunk_t chunk;
        cr_assert_eq (sluice_stream_read_timeout (t_fx.cli, &chunk, 0), SLUICE_ETIMEOUT);
        T_WRITE (t_fx.cli, "x");
        T_EXPECT_CHUNK (t_fx.cli, "x");
    }
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.written, 50);

    //  Drained again, the log says how much it left out, and stays bounded meanwhile
    size_t lines = 0;
    int64_t deadline = zclock_mono () + T_WAIT_MS;
    bool reported = false;
    while (!reported && zclock_mono () < deadline) {
        struct pollfd item = { fds [0], POLLIN, 0 };
        poll (&item, 1, 100);
        reported = s_drain (fds [0], "suppressed", &lines);
        SLUICE_DEBUG ("one more line");     //  lets the report in once tokens are back
    }
    cr_expect (reported, "no 'suppressed' report in %zu log lines", lines);
    cr_expect_lt (lines, 2000, "%zu lines of a flood of 100000 got through the rate limit",
                  lines);
    sluice_log_set_verbose (false);
    zsys_set_logstream (stderr);
    //  `log` stays open: the writer thread may still hold it
    close (fds [0]);
}
