/*  test_journal.c - the buffer's journal (--journal DIR): what a buffer accepted and has not
    given away for good survives its end without a close.

    Buffers in this process on tcp://127.0.0.1:0, each run destroyed without a close (as a
    crash leaves it) and started again on the same directory; the journal file is torn or
    corrupted by hand in between. Crashes of a buffer process: test_journal_crash.c.
*/
#define T_TCP 1
#include "common.h"
#include "sluice_journal.h"
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/stat.h>

static char j_dir [PATH_MAX];

//  Remove the journal directory and what a buffer made in it
static void
j_remove_dir (void)
{
    if (!*j_dir)
        return;
    DIR *dir = opendir (j_dir);
    if (dir) {
        struct dirent *entry;
        while ((entry = readdir (dir)))
            if (strcmp (entry->d_name, ".") && strcmp (entry->d_name, "..")) {
                char path [PATH_MAX + 300];
                snprintf (path, sizeof path, "%s/%s", j_dir, entry->d_name);
                unlink (path);
            }
        closedir (dir);
    }
    rmdir (j_dir);
    j_dir [0] = 0;
}

static void
j_make_dir (void)
{
    snprintf (j_dir, sizeof j_dir, "/tmp/sluice-test-journal-XXXXXX");
    cr_assert_not_null (mkdtemp (j_dir), "mkdtemp: %s", strerror (errno));
}

static void
j_init (void)
{
    t_fx_init ();
    j_make_dir ();
}

static void
j_fini (void)
{
    t_fx_fini ();
    j_remove_dir ();
}

TestSuite (journal, .init = j_init, .fini = j_fini, .timeout = T_SUITE_TIMEOUT);

static char j_path [PATH_MAX + 16];

static const char *
j_file (void)
{
    snprintf (j_path, sizeof j_path, "%s/journal", j_dir);
    return j_path;
}

static sluice_buffer_opts_t
j_opts (size_t capacity)
{
    return (sluice_buffer_opts_t) { .endpoint = "tcp://127.0.0.1:0", .capacity = capacity,
                                    .journal = j_dir, .journal_fsync = SLUICE_FSYNC_NEVER };
}

//  A journaled buffer as the fixture's buffer (and its client t_fx.cli)
static void
j_start (size_t capacity, sluice_fsync_t fsync)
{
    sluice_buffer_opts_t opts = j_opts (capacity);
    opts.journal_fsync = fsync;
    t_start_with (&opts);
}

//  End the buffer as a crash would (no close), and start another on the same journal. The
//  clients of the old one stay (on the old port) until the fixture ends.
static void
j_restart (size_t capacity)
{
    sluice_buffer_destroy (&t_fx.buf);
    j_start (capacity, SLUICE_FSYNC_NEVER);
}

static sluice_buffer_t *
j_try_start (size_t capacity, sluice_err_t *err)
{
    sluice_buffer_opts_t opts = j_opts (capacity);
    return sluice_buffer_new (&opts, err);
}

static off_t
j_file_size (void)
{
    struct stat info;
    cr_assert_eq (stat (j_file (), &info), 0, "%s: %s", j_file (), strerror (errno));
    return info.st_size;
}

T_TEST (journal, queued_and_unacknowledged_chunks_survive_an_end_without_close)
{
    j_start (16, SLUICE_FSYNC_ALWAYS);
    sluice_stream_t *writer = t_fx.cli;
    T_WRITE (writer, "a");
    T_WRITE (writer, "b");
    cr_assert_eq (sluice_stream_write_timeout (writer, "c", 1, true, T_WAIT_MS), SLUICE_OK);
    T_WRITE (writer, "d");
    //  "a" is held unacknowledged by one reader; "b" is acknowledged, "c" held, by another
    sluice_stream_t *holder = t_stream ();
    T_EXPECT_CHUNK (holder, "a");
    sluice_stream_t *other = t_stream ();
    T_EXPECT_CHUNK (other, "b");
    T_EXPECT_CHUNK_F (other, "c", true);
    sluice_buffer_status_t st = t_status_of (other);
    cr_assert_eq (st.queued, 1);
    cr_assert_eq (st.unacked, 2);
    uint64_t incarnation = st.incarnation;

    j_restart (16);
    st = t_status ();
    cr_expect_eq (st.queued, 3, "queued after the restart: %zu", st.queued);
    cr_expect_eq (st.unacked, 0);
    cr_expect_eq (st.incarnation, incarnation, "a journaled buffer keeps its incarnation");
    cr_expect (!st.closed);
    //  In the order they were written, "c" still final; "b" was acknowledged: gone
    sluice_stream_t *reader = t_stream ();
    T_EXPECT_CHUNK (reader, "a");
    T_EXPECT_CHUNK_F (reader, "c", true);
    T_EXPECT_CHUNK (reader, "d");
    T_ACK (reader);
    st = t_status_of (reader);
    cr_expect_eq (st.queued + st.unacked, 0);

    //  What was acknowledged before this restart stays gone after the next one
    T_WRITE (t_fx.cli, "e");
    j_restart (16);
    reader = t_stream ();
    T_EXPECT_CHUNK (reader, "e");
    T_EXPECT_EMPTY (reader);
}

T_TEST (journal, the_closed_state_survives)
{
    j_start (4, SLUICE_FSYNC_ALWAYS);
    T_WRITE (t_fx.cli, "last");
    cr_assert_eq (sluice_stream_close (t_fx.cli), SLUICE_OK);
    j_restart (4);
    sluice_buffer_status_t st = t_status ();
    cr_expect (st.closed, "the buffer was closed before the restart");
    cr_expect_eq (st.queued, 1);
    sluice_err_t rc = sluice_stream_write_timeout (t_fx.cli, "more", 4, false, T_WAIT_MS);
    cr_expect_eq (rc, SLUICE_ECLOSED, "write into the restarted closed buffer: %s",
                  sluice_strerror (rc));
    sluice_stream_t *reader = t_stream ();
    T_EXPECT_CHUNK (reader, "last");
    T_EXPECT_EOS (reader);
    cr_expect_eq (sluice_buffer_wait (t_fx.buf, T_WAIT_MS), SLUICE_OK, "closed and drained");
}

//  A record cut short at the end (a write a crash interrupted) is cut off; the journal goes on
T_TEST (journal, a_torn_tail_is_cut_off)
{
    j_start (8, SLUICE_FSYNC_NEVER);
    T_WRITE (t_fx.cli, "one");
    T_WRITE (t_fx.cli, "two");
    sluice_buffer_destroy (&t_fx.buf);
    //  The start of a record that claims 1000 bytes, with 20 of them
    uint8_t torn [32] = { 0xe8, 0x03, 0, 0, 0x17, 0xfc, 0xff, 0xff, 0x12, 0x34, 0x56, 0x78, 'W' };
    FILE *file = fopen (j_file (), "ab");
    cr_assert_not_null (file);
    cr_assert_eq (fwrite (torn, 1, sizeof torn, file), sizeof torn);
    fclose (file);
    off_t torn_size = j_file_size ();

    j_start (8, SLUICE_FSYNC_NEVER);
    cr_expect_eq (t_status ().queued, 2);
    cr_expect_eq (j_file_size (), torn_size - (off_t) sizeof torn, "the torn tail is cut off");
    T_WRITE (t_fx.cli, "three");
    off_t before_three = j_file_size ();
    j_restart (8);
    cr_expect_eq (t_status ().queued, 3, "appends after the cut are replayed");

    //  The last whole record torn by a few bytes: that write is gone, the rest is there
    sluice_buffer_destroy (&t_fx.buf);
    cr_assert_eq (truncate (j_file (), j_file_size () - 2), 0);
    (void) before_three;
    j_start (8, SLUICE_FSYNC_NEVER);
    sluice_stream_t *reader = t_stream ();
    T_EXPECT_CHUNK (reader, "one");
    T_EXPECT_CHUNK (reader, "two");
    T_EXPECT_EMPTY (reader);
}

//  A bad checksum with good records after it is not a crash's torn tail: refused
T_TEST (journal, a_corrupt_record_in_the_middle_refuses_the_start)
{
    j_start (8, SLUICE_FSYNC_NEVER);
    T_WRITE (t_fx.cli, "one");
    T_WRITE (t_fx.cli, "two");
    T_WRITE (t_fx.cli, "three");
    sluice_buffer_destroy (&t_fx.buf);
    //  The header record is 12 + 10 bytes; then the record of "one": flip a byte of its payload
    int fd = open (j_file (), O_RDWR);
    cr_assert_neq (fd, -1);
    uint8_t byte;
    cr_assert_eq (pread (fd, &byte, 1, 22 + 12 + 3), 1);
    byte ^= 0x40;
    cr_assert_eq (pwrite (fd, &byte, 1, 22 + 12 + 3), 1);
    close (fd);
    sluice_err_t err = SLUICE_OK;
    sluice_buffer_t *buffer = j_try_start (8, &err);
    cr_expect_null (buffer, "a corrupt journal was accepted");
    sluice_buffer_destroy (&buffer);
    cr_expect_eq (err, SLUICE_EINVAL);
    const char *why = sluice_last_error_text ();
    cr_expect (strstr (why, "corrupt") && strstr (why, "checksum") && strstr (why, "offset 22"),
               "why: %s", why);

    //  The same with the record's length damaged (so that it reaches past the end): not taken
    //  for a record cut short
    fd = open (j_file (), O_RDWR);
    cr_assert_neq (fd, -1);
    byte ^= 0x40;
    cr_assert_eq (pwrite (fd, &byte, 1, 22 + 12 + 3), 1);
    uint8_t length [4] = { 0xff, 0xff, 0, 0 };
    cr_assert_eq (pwrite (fd, length, sizeof length, 22), (ssize_t) sizeof length);
    close (fd);
    buffer = j_try_start (8, &err);
    cr_expect_null (buffer, "a journal with a damaged length was accepted");
    sluice_buffer_destroy (&buffer);
    why = sluice_last_error_text ();
    cr_expect (strstr (why, "corrupt") && strstr (why, "length"), "why: %s", why);
}

T_TEST (journal, an_unusable_directory_or_one_in_use_is_refused)
{
    //  A regular file where the directory should be
    char path [PATH_MAX + 16];
    snprintf (path, sizeof path, "%s/file", j_dir);
    FILE *file = fopen (path, "w");
    cr_assert_not_null (file);
    fclose (file);
    sluice_buffer_opts_t opts = j_opts (4);
    opts.journal = path;
    sluice_err_t err = SLUICE_OK;
    sluice_buffer_t *buffer = sluice_buffer_new (&opts, &err);
    cr_expect_null (buffer);
    sluice_buffer_destroy (&buffer);
    cr_expect_eq (err, SLUICE_EINVAL);
    cr_expect (strstr (sluice_last_error_text (), "journal directory"), "why: %s",
               sluice_last_error_text ());

    //  Two buffers on one directory
    j_start (4, SLUICE_FSYNC_NEVER);
    buffer = j_try_start (4, &err);
    cr_expect_null (buffer, "a second buffer took a journal in use");
    sluice_buffer_destroy (&buffer);
    cr_expect (strstr (sluice_last_error_text (), "in use"), "why: %s",
               sluice_last_error_text ());
}

//  An append that fails (here the file size limit; a full disk the same) refuses the WRITE,
//  which is then not enqueued; the journal stays whole and the buffer goes on serving
T_TEST (journal, a_failed_append_refuses_the_write_and_enqueues_nothing)
{
    j_start (64, SLUICE_FSYNC_NEVER);
    T_WRITE (t_fx.cli, "before");
    signal (SIGXFSZ, SIG_IGN);
    struct rlimit saved, limit;
    cr_assert_eq (getrlimit (RLIMIT_FSIZE, &saved), 0);
    limit = saved;
    limit.rlim_cur = (rlim_t) j_file_size () + 300;
    cr_assert_eq (setrlimit (RLIMIT_FSIZE, &limit), 0);
    char chunk [64];
    memset (chunk, 'x', sizeof chunk);
    size_t accepted = 1;
    sluice_err_t rc;
    while ((rc = sluice_stream_write_timeout (t_fx.cli, chunk, sizeof chunk, false,
                                              T_WAIT_MS)) == SLUICE_OK) {
        accepted++;
        cr_assert_lt (accepted, 60, "the file size limit never stopped a write");
    }
    cr_assert_eq (setrlimit (RLIMIT_FSIZE, &saved), 0);
    cr_expect_eq (rc, SLUICE_EBUSY, "refused write: %s", sluice_strerror (rc));
    const char *why = sluice_stream_error_text (t_fx.cli);
    cr_expect (strstr (why, "journal") && strstr (why, "not enqueued"), "why: %s", why);
    cr_expect_eq (t_status ().queued, accepted, "the refused write was enqueued");
    T_WRITE (t_fx.cli, "after");

    j_restart (64);
    cr_expect_eq (t_status ().queued, accepted + 1, "the journal holds exactly the accepted writes");
}

//  A log that grows well past what is live is rewritten as a snapshot of the live chunks
T_TEST (journal, the_log_is_compacted)
{
    j_start (8, SLUICE_FSYNC_NEVER);
    //  Three chunks read in one reply and never acknowledged: live through every compaction
    T_WRITE (t_fx.cli, "k1");
    T_WRITE (t_fx.cli, "k2");
    T_WRITE (t_fx.cli, "k3");
    sluice_stream_t *holder = t_stream ();
    cr_assert_eq (sluice_stream_set_batch (holder, 3), SLUICE_OK);
    T_EXPECT_CHUNK (holder, "k1");
    cr_assert_eq (t_status_of (holder).unacked, 3);
    sluice_stream_t *reader = t_stream ();
    size_t size = 64 * 1024;
    char *big = (char *) malloc (size);
    cr_assert_not_null (big);
    //  About 2.5 times the compaction threshold written, each chunk read and acknowledged
    size_t rounds = 5 * SLUICE_JOURNAL_COMPACT_MIN / 2 / size;
    for (size_t round = 0; round < rounds; round++) {
        memset (big, 'a' + (int) (round % 26), size);
        cr_assert_eq (sluice_stream_write_timeout (t_fx.cli, big, size, false, T_WAIT_MS),
                      SLUICE_OK);
        sluice_chunk_t chunk;
        T_READ (reader, chunk);
        cr_assert (chunk.size == size && chunk.text [0] == 'a' + (int) (round % 26));
    }
    free (big);
    T_ACK (reader);
    cr_assert_eq (t_status_of (reader).unacked, 3, "only the holder's chunks are unacknowledged");
    T_WRITE (t_fx.cli, "x1");
    T_WRITE (t_fx.cli, "x2");
    off_t file_size = j_file_size ();
    cr_expect_lt (file_size, SLUICE_JOURNAL_COMPACT_MIN + 2 * (off_t) size,
                  "the journal was not compacted: %lld bytes after %zu MiB written",
                  (long long) file_size, rounds * size >> 20);
    j_restart (8);
    reader = t_stream ();
    T_EXPECT_CHUNK (reader, "k1");
    T_EXPECT_CHUNK (reader, "k2");
    T_EXPECT_CHUNK (reader, "k3");
    T_EXPECT_CHUNK (reader, "x1");
    T_EXPECT_CHUNK (reader, "x2");
    T_EXPECT_EMPTY (reader);
}

//  A journal holding more than the new capacity: the buffer starts with all of it, and
//  writers wait until readers take the queue below the capacity
T_TEST (journal, more_chunks_than_the_new_capacity_are_all_kept)
{
    j_start (8, SLUICE_FSYNC_NEVER);
    for (int index = 0; index < 5; index++) {
        char text [16];
        snprintf (text, sizeof text, "c%d", index);
        T_WRITE (t_fx.cli, text);
    }
    j_restart (2);
    sluice_buffer_status_t st = t_status ();
    cr_expect_eq (st.queued, 5);
    cr_expect_eq (st.capacity, 2);
    sluice_err_t rc = sluice_stream_write_timeout (t_fx.cli, "no room", 7, false, 0);
    cr_expect_eq (rc, SLUICE_ETIMEOUT, "a write into the overfull buffer: %s",
                  sluice_strerror (rc));
    sluice_stream_t *reader = t_stream ();
    for (int index = 0; index < 5; index++) {
        char text [16];
        snprintf (text, sizeof text, "c%d", index);
        T_EXPECT_CHUNK (reader, text);
    }
    T_ACK (reader);
    cr_assert_eq (t_status_of (reader).unacked, 0);
    T_WRITE (t_fx.cli, "room again");
}

//  Batched writes and reads travel packed (many chunks to a frame): the journal keeps them chunk
//  by chunk all the same, and what a batched reader holds unacknowledged comes back.
T_TEST (journal, packed_batches_survive_chunk_by_chunk)
{
    j_start (64, SLUICE_FSYNC_NEVER);
    sluice_stream_t *writer = t_stream ();
    cr_assert_eq (sluice_stream_set_window (writer, 4), SLUICE_OK);
    cr_assert_eq (sluice_stream_set_write_batch (writer, 16), SLUICE_OK);
    char text [16];
    for (int seq = 0; seq < 40; seq++) {
        snprintf (text, sizeof text, "p%d", seq);
        cr_assert_eq (sluice_stream_write (writer, text, strlen (text), seq == 39), SLUICE_OK);
    }
    cr_assert_eq (sluice_stream_flush (writer), SLUICE_OK);
    //  A batched reader acknowledges its first batch by asking for the second, and holds that
    sluice_stream_t *reader = t_stream ();
    cr_assert_eq (sluice_stream_set_batch (reader, 8), SLUICE_OK);
    for (int seq = 0; seq < 9; seq++) {
        snprintf (text, sizeof text, "p%d", seq);
        T_EXPECT_CHUNK (reader, text);
    }
    sluice_buffer_status_t st = t_status_of (reader);
    cr_assert_eq (st.queued + st.unacked, 32, "queued %zu, unacked %zu", st.queued, st.unacked);

    j_restart (64);
    st = t_status ();
    cr_assert_eq (st.queued, 32, "queued after the restart: %zu", st.queued);
    reader = t_stream ();
    cr_assert_eq (sluice_stream_set_batch (reader, 8), SLUICE_OK);
    for (int seq = 8; seq < 40; seq++) {
        snprintf (text, sizeof text, "p%d", seq);
        T_EXPECT_CHUNK_F (reader, text, seq == 39);
    }
}
