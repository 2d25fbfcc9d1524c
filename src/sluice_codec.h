/*  sluice_codec.h - the bottom layer: frames, requests off a ROUTER, the command table, status
    tables. Internal (not installed); it uses nothing of sluice but the public protocol header.

    The codec speaks raw zmq_msg_t so that a chunk travels from a writer's request into the
    queue and out in a reader's reply without being copied.
*/
#ifndef SLUICE_CODEC_H_INCLUDED
#define SLUICE_CODEC_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include "sluice_error.h"
#include "sluice_protocol.h"
#include "sluice_status.h"
#include "sluice_log.h"

//  Remember why the last call of this thread failed (sluice_last_error_text).
void
    sluice_set_last_error (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

// ---------------------------------------------------------------------------------------------
//  Frames. libzmq may fail any call with EINTR when a signal arrives, even in the middle of a
//  multipart message (it checks its command mailbox first); giving up there would leave the
//  rest of the message to be taken for a new one, so continuation frames are retried.

//  As zmq_msg_recv (flags 0), zmq_send and zmq_msg_send, retrying EINTR.
int
    sluice_recv_more (zmq_msg_t *msg, void *socket);
int
    sluice_send_more (void *socket, const void *data, size_t size, int flags);
int
    sluice_msg_send_more (zmq_msg_t *msg, void *socket, int flags);

//  A growable array of frames (the body of a request or a reply).
typedef struct {
    zmq_msg_t *items;
    size_t count;
    size_t capacity;
} sluice_frames_t;

//  Receive the next frame of a message onto the end of the array. Returns 1 when more frames
//  follow, 0 after the last, -1 on error (errno ENOMEM when the array could not grow; then
//  the frame was not taken).
int
    sluice_frames_recv (sluice_frames_t *frames, void *socket);
//  Close the frames held (the array stays for reuse) / and free the array.
void
    sluice_frames_clear (sluice_frames_t *frames);
void
    sluice_frames_release (sluice_frames_t *frames);
//  Trade contents (no frame is copied).
void
    sluice_frames_swap (sluice_frames_t *first, sluice_frames_t *second);
//  Total bytes of the frames.
size_t
    sluice_frames_bytes (const sluice_frames_t *frames);

//  Inline bodies (SLUICE_FLAG_INLINE): a message's one body frame inside its header frame.
//  Append the body of an inline header frame to `frames` as a frame of its own (a copy:
//  a sender inlines only small bodies). Returns 0, or -1 with errno ENOMEM.
int
    sluice_frames_take_inline (sluice_frames_t *frames, zmq_msg_t *header_frame);
//  Make `out` one frame of the encoded header (INLINE set) and `body`: what a sender sends
//  instead of the header frame and a body frame of `size` <= SLUICE_INLINE_MAX bytes.
//  Returns 0, or -1 with errno ENOMEM (then out is an empty message).
int
    sluice_inline_frame (zmq_msg_t *out, const sluice_header_t *header, const void *body,
                         size_t size);

// ---------------------------------------------------------------------------------------------
//  Packed bodies (SLUICE_FLAG_PACKED): many chunks in one frame, one copy each way

//  Append one chunk at `out` (room for size + SLUICE_PACKED_OVERHEAD bytes); returns the bytes
//  written.
size_t
    sluice_packed_put (uint8_t *out, const void *chunk, size_t size);

//  Walk a packed body. Start with { data, data + size }.
typedef struct {
    const uint8_t *at;
    const uint8_t *end;
} sluice_unpacker_t;

//  The next chunk (NUL-terminated in place), or false at the end of the body or at a malformed
//  entry (check with sluice_packed_check first).
bool
    sluice_packed_next (sluice_unpacker_t *walk, const uint8_t **chunk, size_t *size);

//  Is this a well-formed packed body of exactly `count` chunks? NULL when it is, else the
//  reason. *largest is set to the largest chunk's size.
const char *
    sluice_packed_check (const void *data, size_t size, uint32_t count, size_t *largest);

// ---------------------------------------------------------------------------------------------
//  The command table: one row per command of docs/PROTOCOL.md. Validation, names in errors
//  and logs, and the tests' expectations come from it.

typedef struct sluice_request_t sluice_request_t;

typedef struct {
    uint8_t code;
    const char *name;
    unsigned actors;              //  sluice_actor_kind_t bits: the actors that serve it
    uint8_t flags;                //  request flags it accepts
    uint16_t frames_min;          //  body frames after the header
    uint16_t frames_max;
    const char *frame_name;       //  what a body frame is ("chunk", "payload"), for errors
    uint32_t count_min;           //  header count; count_max 0: the count is not used
    uint32_t count_max;
    size_t frame_size;            //  every body frame must be this long (0: any length)
    //  Rules across fields, beyond the above (NULL: none): the reason, or NULL when valid
    const char *(*check) (const sluice_request_t *req);
} sluice_command_t;

//  The row of a command code, or NULL when no command has it.
const sluice_command_t *
    sluice_command_find (int code);

//  The most body frames any command served by `actors` takes.
size_t
    sluice_command_max_frames (unsigned actors);

//  "WRITE, READ, CLOSE, STATUS, ACK and PING": the commands `actors` serve, for error texts.
//  Writes into out (NUL-terminated) and returns it.
const char *
    sluice_command_list (unsigned actors, char *out, size_t size);

// ---------------------------------------------------------------------------------------------
//  Server side: one request off a ROUTER

struct sluice_request_t {
    zmq_msg_t identity;           //  routing id, moved into the reply
    sluice_header_t header;
    sluice_frames_t frames;       //  the body frames. The array is kept from one request to
                                  //  the next; sluice_request_release frees it
    const sluice_command_t *command;   //  its row once validated, else NULL
    sluice_err_t error;           //  SLUICE_OK, or why the request is malformed
    const char *reason;           //  text naming the problem when error is set
    char reason_text [160];       //  storage for a reason made for this request
};

//  Receive one whole request without blocking into `req` (zero it before the first use).
//  Returns 1 when a request was taken (check req->error: a malformed one still has identity
//  and, when decodable, request_id), 0 when none is waiting, -1 on a socket error (errno set;
//  ETERM on shutdown). A message with more than max_frames body frames is consumed and the
//  request flagged SLUICE_EPROTO.
int
    sluice_request_recv (void *router, sluice_request_t *req, size_t max_frames);

//  Check a well-formed request against the command table for an actor of kind `actor`:
//  known and served (SLUICE_ECOMMAND), flags, frames, count and frame sizes (SLUICE_EPROTO).
//  Sets req->command, or req->error and req->reason; returns req->error.
sluice_err_t
    sluice_request_validate (sluice_request_t *req, sluice_actor_kind_t actor);

//  Release what the request still holds (identity, body frames); the array stays for reuse.
void
    sluice_request_fini (sluice_request_t *req);
//  Same, and free the array: when the request struct is no longer used.
void
    sluice_request_release (sluice_request_t *req);

// ---------------------------------------------------------------------------------------------
//  Replies on a ROUTER (with ZMQ_ROUTER_MANDATORY, never blocking)

//  Send [identity][header][frames...]. On success the identity and frames are consumed (left
//  empty) and 0 is returned. On failure nothing is consumed and -1 is returned with errno
//  EHOSTUNREACH (peer gone) or EAGAIN (peer not reading: its queue is full). The header's
//  version and count (the number of frames; with SLUICE_FLAG_PACKED the header's own count,
//  of chunks) are set here; its timeout_ms is sent as given: in a reply it carries the
//  actor's incarnation (docs/PROTOCOL.md). With SLUICE_FLAG_INLINE in the header's flags (the
//  request had it) one body frame of up to SLUICE_INLINE_MAX bytes goes inline in the header
//  frame; any other body goes as frames, without the flag.
int
    sluice_reply_send (void *router, zmq_msg_t *identity, const sluice_header_t *header,
                       zmq_msg_t *frames, size_t count);

// ---------------------------------------------------------------------------------------------
//  Status tables (sluice_status.h): one per actor

//  The STATUS body of an actor: `actor=NAME` and then one line per row of its table.
//  Returns the length written (as sluice_status_format).
size_t
    sluice_status_text (const sluice_status_t *status, char *out, size_t size);

//  The value of a key of an actor's table: numbers, flags (0/1) and the model state (its enum
//  value); false when the table has no such numeric key.
bool
    sluice_status_number (const sluice_status_t *status, const char *key, uint64_t *value);
//  Parse a STATUS body and look one key up: `fallback` when it cannot.
uint64_t
    sluice_status_u64 (const char *text, size_t size, const char *key, uint64_t fallback);

//  Big-endian 64-bit integers (ACK bodies)
void
    sluice_put64 (uint8_t *bytes, uint64_t value);
uint64_t
    sluice_get64 (const uint8_t *bytes);


#endif
