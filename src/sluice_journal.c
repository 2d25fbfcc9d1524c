/*  sluice_journal.c - the buffer's journal (see sluice_journal.h).

    Record format (integers little-endian): u32 length of the payload, the same length with
    every bit flipped (so that a damaged length is told from a record cut short), u32 CRC-32
    (IEEE) of the payload, the payload. Its first byte is the type:

        'H'  header, the first record: "SLJ1", u32 incarnation, u8 flags (1: closed)
        'W'  chunks enqueued: u64 first sequence number, u32 count, then per chunk u8 flags
             (1: FINAL), u32 size, the bytes; their sequence numbers follow the first
        'C'  chunks gone for good: u32 runs, then per run u64 first sequence number, u32 count
        'X'  the buffer closed

    Appends are single pwritev calls at the end of the file; a failed one is cut off again, so
    the file only ever holds whole records. A crash can still leave a torn tail (a record cut
    short, or a last one whose bytes did not all reach the disk): replay cuts it off. A bad
    record followed by good data is corruption and refuses the start.
*/
#include "sluice_journal.h"
#include "sluice_log.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define S_RECORD_HEADER  12                 //  length, ~length, CRC
#define S_W_HEADER       13                 //  type, first seq, count
#define S_CHUNK_HEADER   5                  //  flags, size
#define S_MAX_RECORD     (1u << 31)         //  larger than any WRITE the buffer takes
#define S_SNAPSHOT_RECORD (4u * 1024 * 1024) //  a compaction's records grow to about this
#define S_MAGIC          "SLJ1"
#define S_IOV_MAX        1024               //  Linux's UIO_MAXIOV

typedef struct {
    uint64_t seq;
    uint64_t offset;                //  of the chunk's bytes in the file
    uint32_t size;
    bool is_final;
    bool dead;                      //  replay only: consumed
} s_entry_t;

//  The queue's mirror: a ring of entries
typedef struct {
    s_entry_t *items;
    size_t size, head, count;
} s_deque_t;

//  Chunks held for an acknowledgement
typedef struct {
    s_entry_t *entries;
    size_t count;
} s_held_t;

struct sluice_journal_t {
    char *dir, *path, *new_path;
    int fd, lock_fd;
    bool fsync;
    bool closed;
    uint32_t incarnation;
    uint64_t end;                   //  where the next record goes (the file's size)
    uint64_t next_seq;
    uint64_t live_bytes;            //  what a snapshot of the live chunks would take
    uint64_t compact_after;         //  no compaction before the log is this large
    s_deque_t queue;
    zhashx_t *held;                 //  s_held_t by the buffer's key
    uint64_t last_seq;              //  the last append, for unappend
    size_t last_count;
    bool broken;                    //  a failed append could not be cut off: no more appends
    char broken_text [256];
    uint8_t *scratch;
    size_t scratch_size;
};

// ---------------------------------------------------------------------------------------------
//  Bytes

static uint32_t s_crc_table [256];
static pthread_once_t s_crc_once = PTHREAD_ONCE_INIT;

static void
s_crc_init (void)
{
    for (uint32_t index = 0; index < 256; index++) {
        uint32_t crc = index;
        for (int bit = 0; bit < 8; bit++)
            crc = crc & 1 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
        s_crc_table [index] = crc;
    }
}

//  CRC-32 continued over more bytes (start with 0)
static uint32_t
s_crc (uint32_t crc, const void *data, size_t size)
{
    pthread_once (&s_crc_once, s_crc_init);
    const uint8_t *bytes = (const uint8_t *) data;
    crc = ~crc;
    while (size--)
        crc = s_crc_table [(crc ^ *bytes++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void
s_put32 (uint8_t *bytes, uint32_t value)
{
    for (int index = 0; index < 4; index++)
        bytes [index] = (uint8_t) (value >> (8 * index));
}

static void
s_put64 (uint8_t *bytes, uint64_t value)
{
    for (int index = 0; index < 8; index++)
        bytes [index] = (uint8_t) (value >> (8 * index));
}

static uint32_t
s_get32 (const uint8_t *bytes)
{
    uint32_t value = 0;
    for (int index = 3; index >= 0; index--)
        value = (value << 8) | bytes [index];
    return value;
}

static uint64_t
s_get64 (const uint8_t *bytes)
{
    uint64_t value = 0;
    for (int index = 7; index >= 0; index--)
        value = (value << 8) | bytes [index];
    return value;
}

static uint8_t *
s_scratch (sluice_journal_t *self, size_t size)
{
    if (size > self->scratch_size) {
        uint8_t *scratch = (uint8_t *) realloc (self->scratch, size);
        if (!scratch)
            return NULL;
        self->scratch = scratch;
        self->scratch_size = size;
    }
    return self->scratch;
}

//  Write every iovec at offset (pwritev writes at most IOV_MAX and may write less). 0, or -1
//  with errno.
static int
s_pwrite_all (int fd, struct iovec *iov, size_t count, uint64_t offset)
{
    while (count) {
        ssize_t done = pwritev (fd, iov, count < S_IOV_MAX ? (int) count : S_IOV_MAX, (off_t) offset);
        if (done == -1 && errno == EINTR)
            continue;
        if (done == -1)
            return -1;
        offset += (uint64_t) done;
        while (count && (size_t) done >= iov->iov_len) {
            done -= (ssize_t) iov->iov_len;
            iov++;
            count--;
        }
        if (count) {
            iov->iov_base = (uint8_t *) iov->iov_base + done;
            iov->iov_len -= (size_t) done;
        }
    }
    return 0;
}

static int
s_pread_all (int fd, void *data, size_t size, uint64_t offset)
{
    uint8_t *bytes = (uint8_t *) data;
    while (size) {
        ssize_t got = pread (fd, bytes, size, (off_t) offset);
        if (got == -1 && errno == EINTR)
            continue;
        if (got <= 0) {
            if (got == 0)
                errno = EIO;        //  the file is shorter than its records say
            return -1;
        }
        bytes += got;
        size -= (size_t) got;
        offset += (uint64_t) got;
    }
    return 0;
}

//  A rename or a new file lasts only once its directory is on disk
static void
s_sync_dir (const char *dir)
{
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd != -1) {
        fsync (fd);
        close (fd);
    }
}

// ---------------------------------------------------------------------------------------------
//  The queue's mirror

//  Room for more entries
static bool
s_deque_reserve (s_deque_t *deque, size_t more)
{
    if (deque->count + more <= deque->size)
        return true;
    size_t size = deque->size ? deque->size : 64;
    while (size < deque->count + more)
        size *= 2;
    s_entry_t *items = (s_entry_t *) calloc (size, sizeof *items);
    if (!items)
        return false;
    for (size_t index = 0; index < deque->count; index++)
        items [index] = deque->items [(deque->head + index) % deque->size];
    free (deque->items);
    deque->items = items;
    deque->size = size;
    deque->head = 0;
    return true;
}

static s_entry_t *
s_deque_at (s_deque_t *deque, size_t index)
{
    return &deque->items [(deque->head + index) % deque->size];
}

// ---------------------------------------------------------------------------------------------
//  Appending records

//  Append one record made of iovecs (the first two reserved for its length and CRC, filled
//  here; the payload's CRC is crc). Cut off again when it fails. 0, or -1 with why filled.
static int
s_append (sluice_journal_t *self, struct iovec *iov, size_t count, uint32_t length, uint32_t crc,
          bool sync, char *why, size_t why_size)
{
    if (self->broken) {
        snprintf (why, why_size, "%s", self->broken_text);
        return -1;
    }
    uint8_t header [S_RECORD_HEADER];
    s_put32 (header, length);
    s_put32 (header + 4, ~length);
    s_put32 (header + 8, crc);
    iov [0] = (struct iovec) { header, sizeof header };
    int rc = s_pwrite_all (self->fd, iov, count, self->end);
    if (rc == 0 && sync && fdatasync (self->fd) == -1)
        rc = -1;
    if (rc == -1) {
        int saved = errno;
        snprintf (why, why_size, "journal %s: cannot append: %s: write refused, not enqueued",
                  self->path, strerror (saved));
        if (ftruncate (self->fd, (off_t) self->end) == -1) {
            self->broken = true;
            snprintf (self->broken_text, sizeof self->broken_text, "journal %s: a failed append "
                      "could not be cut off (%s): no more writes are taken", self->path,
                      strerror (errno));
            SLUICE_ERROR ("sluice buffer: %s", self->broken_text);
        }
        return -1;
    }
    self->end += S_RECORD_HEADER + length;
    return 0;
}

//  A record of one small payload
static int
s_append_small (sluice_journal_t *self, const uint8_t *payload, size_t size, bool sync,
                char *why, size_t why_size)
{
    struct iovec iov [2] = { { NULL, 0 }, { (void *) payload, size } };
    return s_append (self, iov, 2, (uint32_t) size, s_crc (0, payload, size), sync, why,
                     why_size);
}

static void s_maybe_compact (sluice_journal_t *self);

//  Chunks gone for good: one 'C' record of runs of consecutive sequence numbers. When it
//  cannot be written they stay live on disk (a crash would deliver them again: at-least-once)
static void
s_consume (sluice_journal_t *self, const s_entry_t *entries, size_t count)
{
    if (count == 0)
        return;
    uint8_t *payload = s_scratch (self, 5 + count * 12);
    if (!payload) {
        SLUICE_ERROR ("sluice buffer: journal: out of memory: %zu delivered chunk(s) stay in "
                      "the journal", count);
        return;
    }
    size_t size = 5, runs = 0;
    for (size_t index = 0; index < count; index++) {
        if (runs && entries [index].seq == s_get64 (payload + size - 12)
                                           + s_get32 (payload + size - 4)) {
            s_put32 (payload + size - 4, s_get32 (payload + size - 4) + 1);
            continue;
        }
        s_put64 (payload + size, entries [index].seq);
        s_put32 (payload + size + 8, 1);
        size += 12;
        runs++;
    }
    payload [0] = 'C';
    s_put32 (payload + 1, (uint32_t) runs);
    char why [300];
    if (s_append_small (self, payload, size, false, why, sizeof why) == -1)
        SLUICE_ERROR ("sluice buffer: %s (%zu delivered chunk(s) stay in the journal)", why, count);
    for (size_t index = 0; index < count; index++)
        self->live_bytes -= S_CHUNK_HEADER + entries [index].size;
    s_maybe_compact (self);
}

int
sluice_journal_append (sluice_journal_t *self, const struct iovec *chunks, size_t count, bool is_final,
                       char *why, size_t why_size)
{
    //  Record header, 'W' header, then a chunk header and the bytes per chunk
    size_t niov = 2 + 2 * count;
    uint8_t *heads = s_scratch (self, S_W_HEADER + count * S_CHUNK_HEADER
                                      + niov * sizeof (struct iovec) + sizeof (struct iovec));
    if (!heads || !s_deque_reserve (&self->queue, count)) {
        snprintf (why, why_size, "journal: out of memory: write refused, not enqueued");
        return -1;
    }
    //  (the iovecs follow the headers in the scratch space, aligned)
    size_t iov_at = (S_W_HEADER + count * S_CHUNK_HEADER + sizeof (struct iovec) - 1)
                  / sizeof (struct iovec) * sizeof (struct iovec);
    struct iovec *iov = (struct iovec *) (heads + iov_at);
    heads [0] = 'W';
    s_put64 (heads + 1, self->next_seq);
    s_put32 (heads + 9, (uint32_t) count);
    iov [1] = (struct iovec) { heads, S_W_HEADER };
    uint32_t crc = s_crc (0, heads, S_W_HEADER);
    uint64_t length = S_W_HEADER;
    for (size_t index = 0; index < count; index++) {
        uint8_t *head = heads + S_W_HEADER + index * S_CHUNK_HEADER;
        size_t size = chunks [index].iov_len;
        head [0] = is_final && index + 1 == count ? 1 : 0;
        s_put32 (head + 1, (uint32_t) size);
        iov [2 + 2 * index] = (struct iovec) { head, S_CHUNK_HEADER };
        iov [3 + 2 * index] = chunks [index];
        crc = s_crc (crc, head, S_CHUNK_HEADER);
        crc = s_crc (crc, chunks [index].iov_base, size);
        length += S_CHUNK_HEADER + size;
    }
    if (length > S_MAX_RECORD) {
        snprintf (why, why_size, "journal: a WRITE of %" PRIu64 " bytes is larger than a journal "
                  "record can be: write refused, not enqueued", length);
        return -1;
    }
    uint64_t start = self->end;
    if (s_append (self, iov, niov, (uint32_t) length, crc, self->fsync, why, why_size) == -1)
        return -1;
    //  The mirror (room reserved above): at the tail, with where each chunk's bytes are
    uint64_t offset = start + S_RECORD_HEADER + S_W_HEADER;
    for (size_t index = 0; index < count; index++) {
        size_t size = chunks [index].iov_len;
        offset += S_CHUNK_HEADER;
        *s_deque_at (&self->queue, self->queue.count++) = (s_entry_t) {
            .seq = self->next_seq + index, .offset = offset, .size = (uint32_t) size,
            .is_final = is_final && index + 1 == count };
        offset += size;
        self->live_bytes += S_CHUNK_HEADER + size;
    }
    self->last_seq = self->next_seq;
    self->last_count = count;
    self->next_seq += count;
    s_maybe_compact (self);
    return 0;
}

void
sluice_journal_unappend (sluice_journal_t *self)
{
    //  The last append's chunks are the tail of the mirror
    size_t count = self->last_count <= self->queue.count ? self->last_count : self->queue.count;
    s_entry_t *entries = (s_entry_t *) calloc (count ? count : 1, sizeof *entries);
    if (!entries) {
        SLUICE_ERROR ("sluice buffer: journal: out of memory: %zu chunk(s) never enqueued stay "
                      "in the journal", count);
        return;
    }
    for (size_t index = 0; index < count; index++)
        entries [index] = *s_deque_at (&self->queue, self->queue.count - count + index);
    self->queue.count -= count;
    self->last_count = 0;
    s_consume (self, entries, count);
    free (entries);
}

void
sluice_journal_taken (sluice_journal_t *self, size_t count, const void *key)
{
    if (count > self->queue.count) {
        SLUICE_ERROR ("sluice buffer: journal out of step with the queue (%zu taken, %zu "
                      "known): a bug", count, self->queue.count);
        count = self->queue.count;
    }
    if (count == 0)
        return;
    s_entry_t *entries = (s_entry_t *) calloc (count, sizeof *entries);
    if (!entries) {
        //  They stay at the head of the mirror: the journal would lose its step with the
        //  queue, so it stops taking writes
        self->broken = true;
        snprintf (self->broken_text, sizeof self->broken_text, "journal: out of memory: no "
                  "more writes are taken");
        return;
    }
    for (size_t index = 0; index < count; index++)
        entries [index] = *s_deque_at (&self->queue, index);
    self->queue.head = (self->queue.head + count) % self->queue.size;
    self->queue.count -= count;
    s_held_t *held = key ? (s_held_t *) calloc (1, sizeof *held) : NULL;
    if (held) {
        held->entries = entries;
        held->count = count;
        if (zhashx_insert (self->held, key, held) == 0)
            return;
        free (held);
    }
    //  For good (or no memory to keep them: they stay live on disk, at-least-once)
    if (!key)
        s_consume (self, entries, count);
    free (entries);
}

void
sluice_journal_settled (sluice_journal_t *self, const void *key, bool acknowledged)
{
    s_held_t *held = (s_held_t *) zhashx_lookup (self->held, key);
    if (!held)
        return;
    if (acknowledged) {
        //  Out of the held set first: a compaction the record may start must not keep them
        s_entry_t *entries = held->entries;
        size_t count = held->count;
        held->entries = NULL;
        zhashx_delete (self->held, key);
        s_consume (self, entries, count);
        free (entries);
        return;
    }
    for (size_t index = held->count; index > 0; index--) {
        if (!s_deque_reserve (&self->queue, 1)) {
            self->broken = true;
            snprintf (self->broken_text, sizeof self->broken_text, "journal: out of memory: "
                      "no more writes are taken");
            break;
        }
        self->queue.head = (self->queue.head + self->queue.size - 1) % self->queue.size;
        self->queue.items [self->queue.head] = held->entries [index - 1];
        self->queue.count++;
    }
    zhashx_delete (self->held, key);
}

void
sluice_journal_closed (sluice_journal_t *self)
{
    uint8_t payload [1] = { 'X' };
    char why [300];
    self->closed = true;
    if (s_append_small (self, payload, 1, self->fsync, why, sizeof why) == -1)
        SLUICE_ERROR ("sluice buffer: %s: the close is not in the journal", why);
}

// ---------------------------------------------------------------------------------------------
//  Compaction: the live chunks, oldest first, into journal.new, renamed over the journal

static int
s_by_seq (const void *a, const void *b)
{
    uint64_t left = (*(s_entry_t *const *) a)->seq, right = (*(s_entry_t *const *) b)->seq;
    return left < right ? -1 : left > right;
}

//  The header record's payload
static size_t
s_header_payload (sluice_journal_t *self, uint8_t *payload)
{
    payload [0] = 'H';
    memcpy (payload + 1, S_MAGIC, 4);
    s_put32 (payload + 5, self->incarnation);
    payload [9] = self->closed ? 1 : 0;
    return 10;
}

//  Write the record in payload (size bytes) at *end of fd
static int
s_put_record (int fd, const uint8_t *payload, size_t size, uint64_t *end)
{
    uint8_t header [S_RECORD_HEADER];
    s_put32 (header, (uint32_t) size);
    s_put32 (header + 4, ~(uint32_t) size);
    s_put32 (header + 8, s_crc (0, payload, size));
    struct iovec iov [2] = { { header, sizeof header }, { (void *) payload, size } };
    if (s_pwrite_all (fd, iov, 2, *end) == -1)
        return -1;
    *end += S_RECORD_HEADER + size;
    return 0;
}

static int
s_compact (sluice_journal_t *self)
{
    size_t live = self->queue.count;
    for (s_held_t *held = (s_held_t *) zhashx_first (self->held); held;
         held = (s_held_t *) zhashx_next (self->held))
        live += held->count;
    s_entry_t **entries = (s_entry_t **) calloc (live ? live : 1, sizeof *entries);
    uint64_t *offsets = (uint64_t *) calloc (live ? live : 1, sizeof *offsets);
    uint8_t *payload = NULL;
    size_t capacity = 0;
    int fd = -1, rc = -1;
    if (!entries || !offsets)
        goto done;
    size_t found = 0;
    for (size_t index = 0; index < self->queue.count; index++)
        entries [found++] = s_deque_at (&self->queue, index);
    for (s_held_t *held = (s_held_t *) zhashx_first (self->held); held;
         held = (s_held_t *) zhashx_next (self->held))
        for (size_t index = 0; index < held->count; index++)
            entries [found++] = &held->entries [index];
    qsort (entries, live, sizeof *entries, s_by_seq);

    fd = open (self->new_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd == -1)
        goto done;
    uint64_t end = 0;
    uint8_t header [16];
    if (s_put_record (fd, header, s_header_payload (self, header), &end) == -1)
        goto done;
    //  Runs of consecutive sequence numbers, a record of up to about S_SNAPSHOT_RECORD each
    for (size_t first = 0; first < live; ) {
        size_t last = first, size = S_W_HEADER;
        while (last < live && (last == first || (entries [last]->seq == entries [last - 1]->seq + 1
                                               && size < S_SNAPSHOT_RECORD)))
            size += S_CHUNK_HEADER + entries [last++]->size;
        if (size > capacity) {
            uint8_t *grown = (uint8_t *) realloc (payload, size);
            if (!grown)
                goto done;
            payload = grown;
            capacity = size;
        }
        payload [0] = 'W';
        s_put64 (payload + 1, entries [first]->seq);
        s_put32 (payload + 9, (uint32_t) (last - first));
        size_t at = S_W_HEADER;
        for (size_t index = first; index < last; index++) {
            payload [at] = entries [index]->is_final ? 1 : 0;
            s_put32 (payload + at + 1, entries [index]->size);
            at += S_CHUNK_HEADER;
            if (s_pread_all (self->fd, payload + at, entries [index]->size,
                             entries [index]->offset) == -1)
                goto done;
            offsets [index] = end + S_RECORD_HEADER + at;
            at += entries [index]->size;
        }
        if (s_put_record (fd, payload, size, &end) == -1)
            goto done;
        first = last;
    }
    //  The snapshot is on disk before it replaces the log, whatever the fsync policy: a
    //  rename that outlived its data would leave nothing
    if (fsync (fd) == -1 || rename (self->new_path, self->path) == -1)
        goto done;
    s_sync_dir (self->dir);
    for (size_t index = 0; index < live; index++)
        entries [index]->offset = offsets [index];
    close (self->fd);
    self->fd = fd;
    fd = -1;
    SLUICE_DEBUG ("sluice buffer: journal compacted from %" PRIu64 " to %" PRIu64 " bytes",
                  self->end, end);
    self->end = end;
    rc = 0;
done:
    if (rc == -1) {
        SLUICE_ERROR ("sluice buffer: journal %s: compaction failed (%s); the log goes on growing",
                      self->path, strerror (errno));
        unlink (self->new_path);
    }
    if (fd != -1)
        close (fd);
    free (payload);
    free (offsets);
    free (entries);
    return rc;
}

static void
s_maybe_compact (sluice_journal_t *self)
{
    if (self->end <= self->compact_after || self->end <= 2 * self->live_bytes)
        return;
    if (s_compact (self) == 0)
        self->compact_after = SLUICE_JOURNAL_COMPACT_MIN;
    else
        //  Not again at every append: after as much growth again
        self->compact_after = self->end + SLUICE_JOURNAL_COMPACT_MIN;
}

// ---------------------------------------------------------------------------------------------
//  Opening and replay

typedef struct {
    s_entry_t *items;               //  in sequence order
    size_t count, size, dead;
} s_replay_t;

static s_entry_t *
s_replay_find (s_replay_t *state, uint64_t seq)
{
    size_t low = 0, high = state->count;
    while (low < high) {
        size_t middle = (low + high) / 2;
        if (state->items [middle].seq < seq)
            low = middle + 1;
        else
            high = middle;
    }
    return low < state->count && state->items [low].seq == seq ? &state->items [low] : NULL;
}

//  Drop the dead entries once they are half of what is kept
static void
s_replay_pack (s_replay_t *state)
{
    if (state->dead * 2 < state->count)
        return;
    size_t kept = 0;
    for (size_t index = 0; index < state->count; index++)
        if (!state->items [index].dead)
            state->items [kept++] = state->items [index];
    state->count = kept;
    state->dead = 0;
}

//  One record's payload at offset: apply it. NULL, or what is wrong with it.
static const char *
s_replay_record (sluice_journal_t *self, s_replay_t *state, const uint8_t *payload, size_t size,
                 uint64_t offset, bool first)
{
    if (first != (payload [0] == 'H'))
        return first ? "the first record is not a journal header" : "a second header";
    switch (payload [0]) {
        case 'H':
            if (size < 10 || memcmp (payload + 1, S_MAGIC, 4) != 0)
                return "not a sluice journal (or another version)";
            self->incarnation = s_get32 (payload + 5);
            self->closed = payload [9] & 1;
            return NULL;
        case 'X':
            self->closed = true;
            return NULL;
        case 'W': {
            if (size < S_W_HEADER)
                return "chunk record too short";
            uint64_t seq = s_get64 (payload + 1);
            uint32_t count = s_get32 (payload + 9);
            if (seq < self->next_seq)
                return "chunk sequence numbers going back";
            size_t at = S_W_HEADER;
            for (uint32_t index = 0; index < count; index++) {
                if (size - at < S_CHUNK_HEADER)
                    return "chunk record cut short";
                uint32_t chunk = s_get32 (payload + at + 1);
                if (size - at - S_CHUNK_HEADER < chunk)
                    return "chunk record cut short";
                if (state->count == state->size) {
                    size_t grown_size = state->size ? state->size * 2 : 256;
                    s_entry_t *grown = (s_entry_t *) realloc (state->items,
                                                              grown_size * sizeof *grown);
                    if (!grown)
                        return "out of memory";
                    state->items = grown;
                    state->size = grown_size;
                }
                state->items [state->count++] = (s_entry_t) {
                    .seq = seq + index, .offset = offset + S_RECORD_HEADER + at + S_CHUNK_HEADER,
                    .size = chunk, .is_final = payload [at] & 1 };
                at += S_CHUNK_HEADER + chunk;
            }
            if (at != size)
                return "chunk record longer than its chunks";
            self->next_seq = seq + count;
            return NULL;
        }
        case 'C': {
            if (size < 5 || (size - 5) / 12 != s_get32 (payload + 1) || (size - 5) % 12)
                return "consumed record of the wrong size";
            for (size_t at = 5; at < size; at += 12) {
                uint64_t seq = s_get64 (payload + at);
                uint32_t count = s_get32 (payload + at + 8);
                for (uint32_t index = 0; index < count; index++) {
                    s_entry_t *entry = s_replay_find (state, seq + index);
                    if (!entry || entry->dead)
                        return "a chunk consumed that was not live";
                    entry->dead = true;
                    state->dead++;
                }
            }
            s_replay_pack (state);
            return NULL;
        }
        default:
            return "unknown record type";
    }
}

//  Are the bytes from offset to the end all zero (a tail the disk never got to write)?
static bool
s_zero_tail (int fd, uint64_t offset, uint64_t size)
{
    uint8_t bytes [4096];
    while (offset < size) {
        size_t want = size - offset < sizeof bytes ? (size_t) (size - offset) : sizeof bytes;
        if (s_pread_all (fd, bytes, want, offset) == -1)
            return false;
        for (size_t index = 0; index < want; index++)
            if (bytes [index])
                return false;
        offset += want;
    }
    return true;
}

//  Read the log, cut off a torn tail, hand the live chunks to replay. 0, or -1 with why.
static int
s_replay (sluice_journal_t *self, sluice_journal_replay_fn *replay, void *arg, char *why,
          size_t why_size)
{
    struct stat info;
    if (fstat (self->fd, &info) == -1) {
        snprintf (why, why_size, "journal %s: %s", self->path, strerror (errno));
        return -1;
    }
    uint64_t size = (uint64_t) info.st_size, offset = 0;
    s_replay_t state = { NULL, 0, 0, 0 };
    uint8_t *payload = NULL;
    size_t capacity = 0;
    int rc = -1;
    while (offset < size) {
        uint8_t header [S_RECORD_HEADER];
        //  Torn: cut short by the end of the file
        if (size - offset < S_RECORD_HEADER)
            break;
        if (s_pread_all (self->fd, header, sizeof header, offset) == -1)
            goto io_error;
        uint32_t length = s_get32 (header);
        const char *wrong = NULL;
        bool bad_length = length == 0 || length > S_MAX_RECORD || s_get32 (header + 4) != ~length;
        if (bad_length)
            wrong = "bad record length";
        else
        if (length > size - offset - S_RECORD_HEADER)
            break;          //  Torn: cut short by the end of the file
        else {
            if (length > capacity) {
                uint8_t *grown = (uint8_t *) realloc (payload, length);
                if (!grown) {
                    snprintf (why, why_size, "journal %s: out of memory reading it", self->path);
                    goto done;
                }
                payload = grown;
                capacity = length;
            }
            if (s_pread_all (self->fd, payload, length, offset + S_RECORD_HEADER) == -1)
                goto io_error;
            if (s_crc (0, payload, length) != s_get32 (header + 8))
                wrong = "bad checksum";
        }
        bool last = !bad_length && offset + S_RECORD_HEADER + length == size;
        //  A bad last record, or zeros to the end, is the torn tail of a crash
        if (wrong && (last || s_zero_tail (self->fd, offset, size)))
            break;
        if (!wrong)
            wrong = s_replay_record (self, &state, payload, length, offset, offset == 0);
        if (wrong) {
            snprintf (why, why_size, "journal %s is corrupt: %s in the record at offset %" PRIu64
                      " of a %" PRIu64 "-byte file, not the torn tail of a crash; "
                      "refusing to start (move the journal aside to start empty)", self->path,
                      wrong, offset, size);
            goto done;
        }
        offset += S_RECORD_HEADER + length;
    }
    if (offset < size) {
        SLUICE_ERROR ("sluice buffer: journal %s: torn tail of %" PRIu64 " bytes at offset %"
                      PRIu64 " cut off (a write a crash cut short)", self->path,
                      size - offset, offset);
        if (ftruncate (self->fd, (off_t) offset) == -1)
            goto io_error;
    }
    self->end = offset;
    if (offset == 0) {
        //  A new journal (or one whose header never made it): the header, on disk
        uint8_t header [16];
        if (s_put_record (self->fd, header, s_header_payload (self, header), &self->end) == -1
        ||  fsync (self->fd) == -1)
            goto io_error;
        s_sync_dir (self->dir);
    }
    //  The live chunks, oldest first, into the buffer and the mirror
    for (size_t index = 0; index < state.count; index++) {
        s_entry_t *entry = &state.items [index];
        if (entry->dead)
            continue;
        zmq_msg_t data;
        if (zmq_msg_init_size (&data, entry->size) == -1 || !s_deque_reserve (&self->queue, 1)) {
            snprintf (why, why_size, "journal %s: out of memory replaying it", self->path);
            goto done;
        }
        if (s_pread_all (self->fd, zmq_msg_data (&data), entry->size, entry->offset) == -1) {
            zmq_msg_close (&data);
            goto io_error;
        }
        if (!replay (arg, &data, entry->is_final)) {
            zmq_msg_close (&data);
            snprintf (why, why_size, "journal %s: out of memory replaying it", self->path);
            goto done;
        }
        *s_deque_at (&self->queue, self->queue.count++) = *entry;
        self->live_bytes += S_CHUNK_HEADER + entry->size;
    }
    rc = 0;
    goto done;
io_error:
    snprintf (why, why_size, "journal %s: %s", self->path, strerror (errno));
done:
    free (payload);
    free (state.items);
    return rc;
}

static size_t
s_key_hash (const void *key)
{
    return (size_t) (uintptr_t) key * 2654435761u;
}

static int
s_key_compare (const void *a, const void *b)
{
    return a < b ? -1 : a > b;
}

static void
s_held_destroy (void **item)
{
    s_held_t *held = (s_held_t *) *item;
    if (held) {
        free (held->entries);
        free (held);
        *item = NULL;
    }
}

sluice_journal_t *
sluice_journal_open (const char *dir, bool fsync, uint32_t *incarnation, bool *closed,
                     sluice_journal_replay_fn *replay, void *arg, char *why, size_t why_size)
{
    sluice_journal_t *self = (sluice_journal_t *) calloc (1, sizeof *self);
    if (!self) {
        snprintf (why, why_size, "journal: out of memory");
        return NULL;
    }
    self->fd = self->lock_fd = -1;
    self->fsync = fsync;
    self->incarnation = *incarnation;
    self->next_seq = 1;
    self->compact_after = SLUICE_JOURNAL_COMPACT_MIN;
    self->dir = strdup (dir);
    self->path = zsys_sprintf ("%s/journal", dir);
    self->new_path = zsys_sprintf ("%s/journal.new", dir);
    char *lock = zsys_sprintf ("%s/lock", dir);
    self->held = zhashx_new ();
    if (!self->dir || !self->path || !self->new_path || !lock || !self->held) {
        snprintf (why, why_size, "journal: out of memory");
        goto failed;
    }
    zhashx_set_key_hasher (self->held, s_key_hash);
    zhashx_set_key_comparator (self->held, s_key_compare);
    zhashx_set_key_duplicator (self->held, NULL);
    zhashx_set_key_destructor (self->held, NULL);
    zhashx_set_destructor (self->held, s_held_destroy);

    if (mkdir (dir, 0750) == -1 && errno != EEXIST) {
        snprintf (why, why_size, "journal directory %s: cannot make it: %s", dir, strerror (errno));
        goto failed;
    }
    //  One buffer per directory: the lock goes with the process, however it ends
    self->lock_fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (self->lock_fd == -1) {
        snprintf (why, why_size, "journal directory %s is not usable: %s", dir, strerror (errno));
        goto failed;
    }
    if (flock (self->lock_fd, LOCK_EX | LOCK_NB) == -1) {
        snprintf (why, why_size, "journal directory %s is in use by another buffer (%s is "
                  "locked)", dir, lock);
        goto failed;
    }
    unlink (self->new_path);        //  a compaction a crash interrupted
    self->fd = open (self->path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (self->fd == -1) {
        snprintf (why, why_size, "journal %s: cannot open it: %s", self->path, strerror (errno));
        goto failed;
    }
    if (s_replay (self, replay, arg, why, why_size) == -1)
        goto failed;
    zstr_free (&lock);
    *incarnation = self->incarnation;
    *closed = self->closed;
    s_maybe_compact (self);
    return self;
failed:
    zstr_free (&lock);
    sluice_journal_destroy (&self);
    return NULL;
}

void
sluice_journal_destroy (sluice_journal_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sluice_journal_t *self = *self_p;
    if (self->fd != -1)
        close (self->fd);
    if (self->lock_fd != -1)
        close (self->lock_fd);
    zhashx_destroy (&self->held);
    free (self->queue.items);
    free (self->scratch);
    free (self->dir);
    zstr_free (&self->path);
    zstr_free (&self->new_path);
    free (self);
    *self_p = NULL;
}
