/*  fuzz_frames.h - turn a fuzz input into a multipart message.

    Layout: each frame is a 1-byte length L followed by L bytes; a length byte of 255 means
    "the rest of the input is one frame" (room for large chunks). Shared by both targets so
    that their seed corpora use one format.
*/
#ifndef FUZZ_FRAMES_H_INCLUDED
#define FUZZ_FRAMES_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define FUZZ_MAX_FRAMES 8

typedef struct {
    const uint8_t *data [FUZZ_MAX_FRAMES];
    size_t size [FUZZ_MAX_FRAMES];
    size_t count;
} fuzz_frames_t;

static inline void
fuzz_split (const uint8_t *input, size_t size, fuzz_frames_t *frames)
{
    frames->count = 0;
    size_t at = 0;
    while (at < size && frames->count < FUZZ_MAX_FRAMES) {
        size_t length = input [at++];
        if (length == 255 || length > size - at)
            length = size - at;
        frames->data [frames->count] = input + at;
        frames->size [frames->count] = length;
        frames->count++;
        at += length;
    }
}

#endif
