/*  sluice_status.h - what an actor's STATUS reply says, as C structs.

    Each actor answers STATUS with `key=value` lines (docs/PROTOCOL.md); its first line is
    `actor=NAME`. One table per actor (src/sluice_status.c) lists its keys, their types and the
    struct field each fills: it produces the actor's reply, the client's parsed struct and the
    command line's JSON, so the three never disagree.

    Thread-safe: pure functions on caller-owned memory.
*/
#ifndef SLUICE_STATUS_H_INCLUDED
#define SLUICE_STATUS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sluice_export.h"
#include "sluice_error.h"
#include "sluice_protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

//  A buffer's counters (STATUS of a buffer actor).
typedef struct {
    size_t capacity;
    size_t queued;             //  chunks in the queue
    size_t parked_writers;
    size_t parked_readers;
    bool closed;
    uint64_t written;          //  chunks accepted since start
    uint64_t read;             //  chunks delivered since start (less those requeued)
    size_t unacked;            //  chunks handed to acknowledging readers, not yet acknowledged
    size_t max_chunk_size;
    size_t max_parked;
    uint64_t incarnation;      //  this run of the actor (random, nonzero; new at each start)
} sluice_buffer_status_t;

//  A model server's life: loading --> ready --> draining --> stopped (or loading --> failed).
typedef enum {
    SLUICE_MODEL_LOADING  = 0,
    SLUICE_MODEL_READY    = 1,
    SLUICE_MODEL_FAILED   = 2,
    SLUICE_MODEL_DRAINING = 3,
    SLUICE_MODEL_STOPPED  = 4,
    SLUICE_MODEL_UNKNOWN  = 5     //  a status text this client does not understand
} sluice_model_state_t;

//  "loading", "ready", "failed", "draining", "stopped" (the status wire spelling); "unknown".
SLUICE_EXPORT const char *
    sluice_model_state_name (sluice_model_state_t state);

//  A model server's state and counters (STATUS of a model server).
typedef struct {
    sluice_model_state_t state;
    char model[128];          //  model name
    char reason[256];         //  failure reason ("" unless failed)
    uint64_t parked;          //  requests waiting for the load to end
    uint64_t queued;          //  accepted requests waiting for a free worker
    uint64_t inflight;        //  requests being inferred on a worker
    uint64_t waiting;         //  WAIT commands parked
    //  Each well-formed REQUEST ends in exactly one of served, failed, lost and abandoned
    uint64_t served;          //  requests answered with a response
    uint64_t failed;          //  requests answered with an error (busy, timeout, ...)
    uint64_t malformed;       //  commands refused as malformed
    uint64_t lost;            //  replies (to any command) not delivered: the client had gone
    uint64_t abandoned;       //  waiting requests dropped because their client vanished
    uint64_t max_pending;
    uint64_t max_payload;
    uint64_t workers;
    uint64_t incarnation;      //  this run of the actor (random, nonzero; new at each start)
    //  Streams (REQUESTs with the STREAM flag)
    uint64_t streams;         //  streams alive now (queued, generating, or not drained)
    uint64_t generated;       //  tokens emitted by the model since start
    uint64_t delivered;       //  tokens sent in PULL replies since start
    uint64_t cancelled;       //  streams cancelled (CANCEL, or their client vanished)
    uint64_t window;          //  tokens a stream buffers before its generator waits
} sluice_model_status_t;

//  Any actor's status: `actor` says which member is filled.
typedef struct {
    sluice_actor_kind_t actor;
    union {
        sluice_buffer_status_t buffer;
        sluice_model_status_t model;
    };
} sluice_status_t;

//  Parse a STATUS reply body (size bytes, need not be NUL-terminated). Unknown keys are
//  ignored. SLUICE_EPROTO when the text does not name an actor this library knows.
SLUICE_EXPORT sluice_err_t
    sluice_status_parse (const char *text, size_t size, sluice_status_t *status);

//  Format a status as the wire's `key=value` lines, or as one JSON object (json true) on one
//  line with a newline. Writes at most out_size bytes, NUL-terminated; returns the length the
//  whole text needs (as snprintf).
SLUICE_EXPORT size_t
    sluice_status_format (const sluice_status_t *status, bool json, char *out, size_t out_size);

#ifdef __cplusplus
}
#endif
#endif
