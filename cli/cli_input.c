/*  cli_input.c - a file descriptor split into lines or fixed-size chunks.

    Reads with read(2) into one growing buffer, so that a chunk is handed out in place and a
    slow consumer (a write parked on a full buffer) simply stops the reads: backpressure
    reaches whoever writes into the descriptor (a shell pipe).
*/
#include "cli.h"

#define S_READ_SIZE  65536

void
sluice_cli_input_init (sluice_cli_input_t *input, int fd, size_t chunk_bytes)
{
    memset (input, 0, sizeof *input);
    input->fd = fd;
    input->chunk_bytes = chunk_bytes;
}

void
sluice_cli_input_fini (sluice_cli_input_t *input)
{
    free (input->data);
    input->data = NULL;
    input->size = input->capacity = input->start = 0;
}

//  A whole chunk at `start`: its length and how many bytes it uses.
static bool
s_chunk_ready (sluice_cli_input_t *input, size_t *length, size_t *used)
{
    char *begin = input->data + input->start;
    size_t held = input->size - input->start;
    if (input->chunk_bytes) {
        if (held >= input->chunk_bytes || (input->eof && held)) {
            *length = *used = held < input->chunk_bytes ? held : input->chunk_bytes;
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
    if (input->eof && held) {
        *length = *used = held;
        return true;
    }
    return false;
}

//  Wait until the fd is readable or `interrupt` has input: 1, -2 (interrupted), -1 (error).
static int
s_wait_readable (sluice_cli_input_t *input, void *interrupt)
{
    while (true) {
        zmq_pollitem_t items [2] = {
            { NULL, input->fd, ZMQ_POLLIN, 0 },
            { interrupt, 0, ZMQ_POLLIN, 0 },
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
sluice_cli_input_next (sluice_cli_input_t *input, void *interrupt, const char **data, size_t *size)
{
    while (true) {
        size_t length, used;
        if (s_chunk_ready (input, &length, &used)) {
            *data = input->data + input->start;
            *size = length;
            input->start += used;
            return 1;
        }
        if (input->eof)
            return 0;
        //  Only a partial chunk is left: move it to the front, then read more behind it
        if (input->start) {
            memmove (input->data, input->data + input->start, input->size - input->start);
            input->size -= input->start;
            input->start = 0;
        }
        if (input->size + S_READ_SIZE > input->capacity) {
            size_t capacity = input->capacity ? input->capacity * 2 : 2 * S_READ_SIZE;
            char *grown = (char *) realloc (input->data, capacity);
            if (!grown) {
                errno = ENOMEM;
                return -1;
            }
            input->data = grown;
            input->capacity = capacity;
        }
        if (interrupt) {
            int rc = s_wait_readable (input, interrupt);
            if (rc != 1)
                return rc;
        }
        ssize_t got = read (input->fd, input->data + input->size, input->capacity - input->size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -1;
        if (got == 0)
            input->eof = true;
        input->size += (size_t) got;
    }
}
