/*  sluice_split.c - a file descriptor split into lines, fixed-size chunks, or reads.
*/
#include "sluice_split.h"
#include <czmq.h>
#include <errno.h>
#include <unistd.h>

#define S_READ_SIZE  65536

void
sluice_split_init (sluice_split_t *split, int fd, size_t chunk_bytes)
{
    memset (split, 0, sizeof *split);
    split->fd = fd;
    split->chunk_bytes = chunk_bytes;
}

void
sluice_split_fini (sluice_split_t *split)
{
    free (split->data);
    split->data = NULL;
    split->size = split->capacity = split->start = 0;
}

//  Put back the byte the last chunk's NUL replaced.
static void
s_restore (sluice_split_t *split)
{
    if (split->has_saved) {
        split->data [split->saved_at] = split->saved;
        split->has_saved = false;
    }
}

//  A whole chunk at `start`: its length and how many bytes it uses.
static bool
s_chunk_ready (sluice_split_t *split, size_t *length, size_t *used)
{
    char *begin = split->data + split->start;
    size_t held = split->size - split->start;
    if (split->chunk_bytes == SLUICE_SPLIT_AS_READ) {
        *length = *used = held;
        return held > 0;
    }
    if (split->chunk_bytes) {
        if (held >= split->chunk_bytes || (split->eof && held)) {
            *length = *used = held < split->chunk_bytes ? held : split->chunk_bytes;
            return true;
        }
        return false;
    }
    char *newline = held ? (char *) memchr (begin, '\n', held) : NULL;
    if (newline) {
        *length = (size_t) (newline - begin);
        *used = *length + 1;
        return true;
    }
    if (split->eof && held) {
        *length = *used = held;
        return true;
    }
    return false;
}

bool
sluice_split_ready (sluice_split_t *split)
{
    s_restore (split);
    size_t length, used;
    return split->eof || s_chunk_ready (split, &length, &used);
}

bool
sluice_split_chunk (sluice_split_t *split, const char **data, size_t *size)
{
    s_restore (split);
    size_t length, used;
    if (!s_chunk_ready (split, &length, &used))
        return false;
    //  Terminate in place: a spare byte is always kept behind what is held
    size_t end = split->start + length;
    split->saved_at = end;
    split->saved = split->data [end];
    split->has_saved = true;
    split->data [end] = 0;
    *data = split->data + split->start;
    *size = length;
    split->start += used;
    return true;
}

int
sluice_split_fill (sluice_split_t *split)
{
    s_restore (split);
    //  Only a partial chunk is left: move it to the front, then read more behind it
    if (split->start) {
        memmove (split->data, split->data + split->start, split->size - split->start);
        split->size -= split->start;
        split->start = 0;
    }
    if (split->size + S_READ_SIZE + 1 > split->capacity) {
        size_t capacity = split->capacity ? split->capacity * 2 : 2 * S_READ_SIZE;
        char *grown = (char *) realloc (split->data, capacity);
        if (!grown) {
            errno = ENOMEM;
            return -1;
        }
        split->data = grown;
        split->capacity = capacity;
    }
    while (true) {
        ssize_t got = read (split->fd, split->data + split->size,
                            split->capacity - split->size - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -1;
        if (got == 0)
            split->eof = true;
        split->size += (size_t) got;
        split->data [split->size] = 0;
        return got > 0;
    }
}

//  Wait until the fd is readable or `interrupt` has input: 1, -2 (interrupted), -1 (error).
static int
s_wait_readable (sluice_split_t *split, void *interrupt)
{
    while (true) {
        zmq_pollitem_t items [2] = {
            { NULL, split->fd, ZMQ_POLLIN, 0 },
            { zsock_is (interrupt) ? zsock_resolve (interrupt) : interrupt, 0, ZMQ_POLLIN, 0 },
        };
        if (zmq_poll (items, 2, -1) == -1) {
            if (zmq_errno () == EINTR)
                continue;
            return -1;
        }
        if (items [1].revents & ZMQ_POLLIN)
            return -2;
        return 1;
    }
}

int
sluice_split_next (sluice_split_t *split, void *interrupt, const char **data, size_t *size)
{
    while (true) {
        if (sluice_split_chunk (split, data, size))
            return 1;
        if (split->eof)
            return 0;
        if (interrupt) {
            int rc = s_wait_readable (split, interrupt);
            if (rc != 1)
                return rc;
        }
        if (sluice_split_fill (split) < 0)
            return -1;
    }
}
