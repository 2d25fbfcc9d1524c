/*  sluice_input.c - a file descriptor split into lines or fixed-size chunks. */
#include "sluice_input.h"
#include <czmq.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#define S_READ_SIZE  65536

struct sluice_input_t {
    int fd;
    size_t chunk_bytes;         //  0: lines
    char *data;
    size_t start;               //  first byte not handed out yet
    size_t size;                //  bytes held (handed out or not)
    size_t capacity;
    bool eof;
    //  The byte the NUL after the last chunk replaced (chunk mode: the next chunk's first)
    size_t saved_at;
    char saved;
    bool has_saved;
};

sluice_input_t *
sluice_input_new (int fd, size_t chunk_bytes)
{
    sluice_input_t *self = (sluice_input_t *) calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->fd = fd;
    self->chunk_bytes = chunk_bytes;
    return self;
}

void
sluice_input_destroy (sluice_input_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free ((*self_p)->data);
    free (*self_p);
    *self_p = NULL;
}

//  A whole chunk at `start`: its length and how many bytes it uses.
static bool
s_chunk_ready (sluice_input_t *self, size_t *length, size_t *used)
{
    const char *begin = self->data + self->start;
    size_t held = self->size - self->start;
    if (self->chunk_bytes) {
        if (held >= self->chunk_bytes || (self->eof && held)) {
            *length = *used = held < self->chunk_bytes ? held : self->chunk_bytes;
            return true;
        }
        return false;
    }
    const char *newline = held ? (const char *) memchr (begin, '\n', held) : NULL;
    if (newline) {
        *length = (size_t) (newline - begin);
        *used = *length + 1;
        return true;
    }
    if (self->eof && held) {
        *length = *used = held;
        return true;
    }
    return false;
}

//  Wait until the fd is readable or `interrupt` has input.
static sluice_input_result_t
s_wait_readable (sluice_input_t *self, void *interrupt)
{
    void *socket = zsock_is (interrupt) ? zsock_resolve (interrupt) : interrupt;
    while (true) {
        zmq_pollitem_t items [2] = {
            { NULL, self->fd, ZMQ_POLLIN, 0 },
            { socket, 0, ZMQ_POLLIN, 0 },
        };
        if (zmq_poll (items, 2, -1) == -1) {
            if (zmq_errno () == EINTR)
                continue;
            errno = zmq_errno ();
            return SLUICE_INPUT_ERROR;
        }
        return (items [1].revents & ZMQ_POLLIN) ? SLUICE_INPUT_INTERRUPTED : SLUICE_INPUT_CHUNK;
    }
}

sluice_input_result_t
sluice_input_next (sluice_input_t *self, void *interrupt, const char **data, size_t *size)
{
    if (self->has_saved) {
        self->data [self->saved_at] = self->saved;
        self->has_saved = false;
    }
    while (true) {
        size_t length, used;
        if (s_chunk_ready (self, &length, &used)) {
            size_t end = self->start + length;
            //  Terminate in place (a spare byte is always kept behind what is held)
            self->saved_at = end;
            self->saved = self->data [end];
            self->has_saved = true;
            self->data [end] = 0;
            *data = self->data + self->start;
            *size = length;
            self->start += used;
            return SLUICE_INPUT_CHUNK;
        }
        if (self->eof)
            return SLUICE_INPUT_END;
        //  Only a partial chunk is left: move it to the front, then read more behind it
        if (self->start) {
            memmove (self->data, self->data + self->start, self->size - self->start);
            self->size -= self->start;
            self->start = 0;
        }
        if (self->size + S_READ_SIZE + 1 > self->capacity) {
            size_t capacity = self->capacity ? self->capacity * 2 : 2 * S_READ_SIZE;
            char *grown = (char *) realloc (self->data, capacity);
            if (!grown) {
                errno = ENOMEM;
                return SLUICE_INPUT_ERROR;
            }
            self->data = grown;
            self->capacity = capacity;
        }
        if (interrupt) {
            sluice_input_result_t rc = s_wait_readable (self, interrupt);
            if (rc != SLUICE_INPUT_CHUNK)
                return rc;
        }
        ssize_t got = read (self->fd, self->data + self->size, self->capacity - self->size - 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return SLUICE_INPUT_ERROR;
        if (got == 0)
            self->eof = true;
        self->size += (size_t) got;
        self->data [self->size] = 0;
    }
}
