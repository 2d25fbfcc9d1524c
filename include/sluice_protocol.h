/*  sluice_protocol.h - wire constants shared by the actors, the clients and the tests.

    docs/PROTOCOL.md is the contract; this header is its C spelling. Every message after the
    ROUTER's routing-id frame starts with one 20-byte header frame (integers big-endian):

        offset  size  field
        0       1     version      SLUICE_PROTOCOL_VERSION
        1       1     command      SLUICE_CMD_*
        2       1     flags        SLUICE_FLAG_*
        3       1     status       replies: sluice_err_t; requests: 0
        4       4     timeout_ms   requests: how long the actor may park it (SLUICE_WAIT_FOREVER)
        8       8     request_id   chosen by the client, echoed in the reply
        16      4     count        READ: most chunks wanted; replies: chunk/body frames following
*/
#ifndef SLUICE_PROTOCOL_H_INCLUDED
#define SLUICE_PROTOCOL_H_INCLUDED

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_PROTOCOL_VERSION  1
#define SLUICE_HEADER_SIZE       20
#define SLUICE_WAIT_FOREVER      UINT32_MAX   //  timeout_ms value: park without deadline
#define SLUICE_MAX_BATCH         1024         //  largest READ count an actor accepts

//  Commands (one byte). The same code tags the reply to that command.
#define SLUICE_CMD_WRITE     1   //  buffer: enqueue one chunk (blocks while full)
#define SLUICE_CMD_READ      2   //  buffer: take up to count chunks (blocks while empty)
#define SLUICE_CMD_CLOSE     3   //  buffer: end of stream; wakes every parked request
#define SLUICE_CMD_STATUS    4   //  any actor: key=value status text
#define SLUICE_CMD_REQUEST   5   //  model server: one inference request
#define SLUICE_CMD_SHUTDOWN  6   //  model server: graceful shutdown
#define SLUICE_CMD_WAIT      7   //  model server: reply once loading has ended (ready/failed)
#define SLUICE_CMD_ACK       8   //  buffer: acknowledge READ replies received (no reply)
#define SLUICE_CMD_PING      9   //  any actor: liveness check, answered at once

//  Flags (one byte)
#define SLUICE_FLAG_FINAL   0x01  //  WRITE: chunk is final; READ reply: last chunk is final
#define SLUICE_FLAG_EOS     0x02  //  READ reply: end of stream (closed and drained)
#define SLUICE_FLAG_PARKED  0x04  //  reply: the request was deferred before being served
#define SLUICE_FLAG_ACK     0x08  //  READ: acknowledged delivery; body = 8-byte id of the last
                                  //  READ reply received (0 = none)

//  request_id 0 is reserved: an actor sends a header with request_id 0 to probe whether a peer
//  is still there; clients ignore it.
#define SLUICE_PROBE_ID      0

//  Readable name of a command code ("WRITE", ...), or NULL when unknown.
const char *
    sluice_command_name (int command);

#ifdef __cplusplus
}
#endif
#endif
