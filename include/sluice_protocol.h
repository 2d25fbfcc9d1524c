/*  sluice_protocol.h - the wire protocol's C spelling, shared by actors, clients and tests.

    docs/PROTOCOL.md is the contract; this header is its C spelling. Every message after the
    ROUTER's routing-id frame starts with one header frame of 20 bytes (integers big-endian),
    followed in the same frame by the message's one body frame when SLUICE_FLAG_INLINE is set:

        offset  size  field
        0       1     version      SLUICE_PROTOCOL_VERSION
        1       1     command      SLUICE_CMD_*
        2       1     flags        SLUICE_FLAG_* (bits: test them, never compare the byte)
        3       1     status       replies: sluice_err_t; requests: 0
        4       4     timeout_ms   requests: how long the actor may park it (SLUICE_WAIT_FOREVER)
        8       8     request_id   chosen by the client, echoed in the reply
        16      4     count        READ, PULL: most chunks/tokens wanted; replies: chunk/body frames following

    Thread-safe: everything here is a constant or a pure function.
*/
#ifndef SLUICE_PROTOCOL_H_INCLUDED
#define SLUICE_PROTOCOL_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "sluice_export.h"
#include "sluice_error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_PROTOCOL_VERSION  1
#define SLUICE_HEADER_SIZE       20
#define SLUICE_WAIT_FOREVER      UINT32_MAX   //  timeout_ms value: park without deadline
#define SLUICE_MAX_BATCH         1024         //  most chunks one READ or WRITE carries

//  Commands (one byte). The same code tags the reply to that command. Which actor serves
//  which command, and the flags, frames and count each takes, is one table: docs/PROTOCOL.md.
#define SLUICE_CMD_WRITE     1   //  buffer: enqueue chunks (blocks while full)
#define SLUICE_CMD_READ      2   //  buffer: take up to count chunks (blocks while empty)
#define SLUICE_CMD_CLOSE     3   //  buffer: end of stream; wakes every parked request
#define SLUICE_CMD_STATUS    4   //  any actor: key=value status text
#define SLUICE_CMD_REQUEST   5   //  model server: one inference request
#define SLUICE_CMD_SHUTDOWN  6   //  model server: graceful shutdown
#define SLUICE_CMD_WAIT      7   //  model server: reply once loading has ended (ready/failed)
#define SLUICE_CMD_ACK       8   //  buffer: acknowledge READ replies received (no reply)
#define SLUICE_CMD_PING      9   //  any actor: liveness check, answered at once
#define SLUICE_CMD_PULL     10   //  model server: take up to count tokens of a stream (blocks)
#define SLUICE_CMD_CANCEL   11   //  model server: cancel a stream (its generator stops)

//  Flags (one byte of bits)
#define SLUICE_FLAG_FINAL   0x01  //  WRITE: chunk is final; READ reply: last chunk is final
#define SLUICE_FLAG_EOS     0x02  //  READ reply: end of stream (closed and drained)
#define SLUICE_FLAG_PARKED  0x04  //  reply: the request was deferred before being served
#define SLUICE_FLAG_ACK     0x08  //  READ: acknowledged delivery; body = 8-byte id of the last
                                  //  READ reply received (0 = none)
#define SLUICE_FLAG_STREAM  0x10  //  REQUEST: stream the response as tokens; the reply's body
                                  //  is the 8-byte stream id (PULL, CANCEL)
#define SLUICE_FLAG_PACKED  0x20  //  WRITE: the chunks travel packed in one body frame; READ:
                                  //  ask for the reply's chunks packed in one frame. count is
                                  //  then the number of chunks (docs/PROTOCOL.md, "Packed")
#define SLUICE_FLAG_INLINE  0x40  //  any request or reply: its one body frame follows the 20
                                  //  header bytes in the header frame, and no frame follows;
                                  //  a request with it may be answered so (revision 1.3)

//  The C client and the actors inline a body of up to this many bytes (a receiver takes any)
#define SLUICE_INLINE_MAX   1024

//  A packed body: for each chunk, its size (4 bytes, big-endian), its bytes, and one 0 byte
//  (so that a receiver can hand out each chunk as a NUL-terminated string in place).
#define SLUICE_PACKED_OVERHEAD  5
//  Over tcp an actor takes a packed frame of up to this many bytes (or up to its largest chunk,
//  when that is more); clients start a new batch before reaching it
#define SLUICE_PACKED_MAX_BYTES  (1024 * 1024)

//  request_id 0 is reserved: an actor sends a header with request_id 0 to probe whether a peer
//  is still there; clients ignore it.
#define SLUICE_PROBE_ID      0

//  The actors that speak this protocol. The values are bits, so that a set of actors is an
//  unsigned (e.g. which actors serve a command).
typedef enum {
    SLUICE_ACTOR_NONE         = 0,
    SLUICE_ACTOR_BUFFER       = 1,
    SLUICE_ACTOR_MODEL_SERVER = 2
} sluice_actor_kind_t;

//  The name STATUS uses for an actor ("buffer", "model-server"), or NULL when unknown.
SLUICE_EXPORT const char *
    sluice_actor_kind_name (sluice_actor_kind_t kind);

//  The header frame, decoded.
typedef struct {
    uint8_t version;
    uint8_t command;
    uint8_t flags;
    uint8_t status;
    uint32_t timeout_ms;
    uint64_t request_id;
    uint32_t count;
} sluice_header_t;

//  Encode into exactly SLUICE_HEADER_SIZE bytes.
SLUICE_EXPORT void
    sluice_header_encode (const sluice_header_t *header, uint8_t *out);

//  Decode a header frame of `size` bytes. SLUICE_EPROTO when it is shorter than
//  SLUICE_HEADER_SIZE, or longer without SLUICE_FLAG_INLINE (the fields are filled as far as
//  the bytes go, so a request id can still be echoed), SLUICE_EVERSION when the version byte is
//  not SLUICE_PROTOCOL_VERSION. With INLINE, the bytes after the header are the body.
SLUICE_EXPORT sluice_err_t
    sluice_header_decode (const void *data, size_t size, sluice_header_t *header);

//  Readable name of a command code ("WRITE", ...), or NULL when unknown.
SLUICE_EXPORT const char *
    sluice_command_name (int command);

#ifdef __cplusplus
}
#endif
#endif
