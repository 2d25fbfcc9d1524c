/*  sluice_split.h - bytes from a file descriptor split into chunks: lines, fixed-size pieces,
    or as read. One splitter for the command line's input (sluice write, sluice run) and for
    an exec stage's stdout.

    Reads with read(2) into one growing buffer, so that a chunk is handed out in place and a
    slow consumer simply stops the reads: backpressure reaches whoever writes into the
    descriptor (a shell pipe, a command).
*/
#ifndef SLUICE_SPLIT_H_INCLUDED
#define SLUICE_SPLIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SLUICE_SPLIT_LINES    0          //  chunk_bytes: lines, the newline removed
#define SLUICE_SPLIT_AS_READ  SIZE_MAX   //  chunk_bytes: what one read returned

typedef struct {
    int fd;
    size_t chunk_bytes;         //  SLUICE_SPLIT_LINES, SLUICE_SPLIT_AS_READ, or a size
    char *data;
    size_t start;               //  first byte not handed out yet
    size_t size;                //  bytes held (handed out or not)
    size_t capacity;
    bool eof;
    //  The byte the NUL after the last chunk handed out replaced (put back before going on)
    size_t saved_at;
    char saved;
    bool has_saved;
} sluice_split_t;

void
    sluice_split_init (sluice_split_t *split, int fd, size_t chunk_bytes);
void
    sluice_split_fini (sluice_split_t *split);

//  A whole chunk from what was read: true with (*data, *size), valid until the next call and
//  followed by a NUL byte (so text can be used as a string). At end of input, a last line without a newline is still a chunk.
bool
    sluice_split_chunk (sluice_split_t *split, const char **data, size_t *size);

//  Can the next chunk (or the end of input) be had without reading? Ends the validity of the
//  last chunk handed out, as any call does.
bool
    sluice_split_ready (sluice_split_t *split);

//  One read(2) behind what is held: 1 when bytes came, 0 at end of input (eof set), -1 on
//  an error (errno set; EAGAIN on a non-blocking fd with nothing to read, EINTR retried).
int
    sluice_split_fill (sluice_split_t *split);

//  The next chunk, reading as needed: 1 with (*data, *size) as sluice_split_chunk, 0 at end
//  of input, -1 on a read error (errno set), -2 when `interrupt` (a socket, or NULL) became
//  readable first.
int
    sluice_split_next (sluice_split_t *split, void *interrupt, const char **data, size_t *size);

#endif
