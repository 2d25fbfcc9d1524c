/*  fuzz_frames.h - turn a fuzz input into a multipart message.

    Layout: each frame is a 1-byte length L followed by L bytes; a length byte of 255 means
    "the rest of the input is one frame" (room for large chunks). Shared by both targets so
    that their seed corpora use one format, with the socket helpers both use.
*/
#ifndef FUZZ_FRAMES_H_INCLUDED
#define FUZZ_FRAMES_H_INCLUDED

#include <czmq.h>
#include <errno.h>
#include <stdbool.h>
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

//  libFuzzer's -timeout arms a SIGALRM every timeout/2+1 s. A signal makes zmq_poll and a
//  blocking zmq_send fail with EINTR, which is no finding: both helpers retry.

//  Send the frames as one multipart message; false on a real socket error.
static inline bool
fuzz_send (void *socket, const fuzz_frames_t *frames)
{
    for (size_t index = 0; index < frames->count; index++) {
        int flags = index + 1 < frames->count ? ZMQ_SNDMORE : 0;
        int rc;
        while ((rc = zmq_send (socket, frames->data [index], frames->size [index], flags)) == -1
               && zmq_errno () == EINTR)
            ;
        if (rc == -1)
            return false;
    }
    return true;
}

//  Wait until the socket has a message to read; false when none came within timeout_ms.
static inline bool
fuzz_wait_input (void *socket, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    while (true) {
        zmq_pollitem_t item = { socket, 0, ZMQ_POLLIN, 0 };
        int64_t left = deadline - zclock_mono ();
        int rc = zmq_poll (&item, 1, left > 0 ? (long) left : 0);
        if (rc == 1)
            return true;
        if (rc == 0 || zmq_errno () != EINTR)
            return false;
    }
}

#endif
