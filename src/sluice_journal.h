/*  sluice_journal.h - the buffer's optional journal (docs/PROTOCOL.md, "Journal"): every chunk
    the buffer accepted and has not yet given away for good, on disk, so that a buffer started
    again on the same directory after a crash holds them again, in the order they were written.

    The journal mirrors the buffer's queue by counting: the buffer tells it what entered at the
    tail (append), what left at the head (taken: for good, or held for an acknowledgement under
    a key the buffer picks) and what came back or went for good (settled). It keeps the chunks'
    sequence numbers and file offsets, never their bytes: a compaction copies live records from
    the old file. Held chunks are live on disk: after a crash they are in the queue again
    (at-least-once).

    Files in the directory: journal (the log), journal.new (a compaction under way), lock (held
    with flock while a buffer uses the directory). Every call runs on the buffer's thread.
    Internal.
*/
#ifndef SLUICE_JOURNAL_H_INCLUDED
#define SLUICE_JOURNAL_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

typedef struct sluice_journal_t sluice_journal_t;

//  A compaction is due once the log is larger than this and than twice what is live
#define SLUICE_JOURNAL_COMPACT_MIN  (8u * 1024 * 1024)

//  One live chunk of a replayed journal, oldest first, for the tail of the queue (data is
//  moved). False when it cannot be kept (out of memory): the open then fails.
typedef bool (sluice_journal_replay_fn) (void *arg, zmq_msg_t *data, bool is_final);

//  Open the journal in dir (made when missing), replaying what it holds through replay. A new
//  journal records *incarnation; an existing one sets *incarnation to the one it recorded and
//  *closed when the buffer had been closed. fsync: each append of chunks or of the close is
//  on disk (fdatasync) before it returns. NULL with why filled when the directory cannot be
//  used, another buffer uses it, or the journal is corrupt (a bad record that is not the
//  torn tail of a crash; a torn tail is cut off).
sluice_journal_t *
    sluice_journal_open (const char *dir, bool fsync, uint32_t *incarnation, bool *closed,
                         sluice_journal_replay_fn *replay, void *arg, char *why,
                         size_t why_size);

void
    sluice_journal_destroy (sluice_journal_t **self_p);

//  A WRITE's chunks, to be enqueued at the tail (FINAL on the last one when is_final): 0 once
//  they are in the journal, -1 with why filled when they could not be written (the journal is
//  as before: the WRITE must be refused).
int
    sluice_journal_append (sluice_journal_t *self, const struct iovec *chunks, size_t count,
                           bool is_final, char *why, size_t why_size);

//  The chunks of the last append were not enqueued after all (the writer had gone).
void
    sluice_journal_unappend (sluice_journal_t *self);

//  count chunks left the head of the queue in a reply: for good when key is NULL, else held
//  for an acknowledgement under key (until sluice_journal_settled).
void
    sluice_journal_taken (sluice_journal_t *self, size_t count, const void *key);

//  The chunks held under key were acknowledged (gone for good), or went back to the head of
//  the queue in their order.
void
    sluice_journal_settled (sluice_journal_t *self, const void *key, bool acknowledged);

//  The buffer closed.
void
    sluice_journal_closed (sluice_journal_t *self);

#endif
