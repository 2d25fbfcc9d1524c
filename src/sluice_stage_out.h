/*  sluice_stage_out.h - the output of one stage-function call, as the stage runtime sees it.

    The function appends bytes and cuts (chunk boundaries) and may hold input back or end
    the stream (include/sluice_stage.h); the runtime resets it before each call and writes
    its segments afterwards.
*/
#ifndef SLUICE_STAGE_OUT_H_INCLUDED
#define SLUICE_STAGE_OUT_H_INCLUDED

#include "sluice_stage.h"

struct sluice_stage_out_t {
    char *data;
    size_t size;
    size_t capacity;
    size_t *cuts;               //  offsets where a chunk ends, ascending
    size_t cut_count;
    size_t cut_capacity;
    size_t held;                //  bytes at the end of the input not decided on
    size_t before;              //  readable bytes before the input
    bool at_end;
    bool end_stream;
};

//  Ready for a call: empty, nothing held or cut.
void
    sluice_stage_out_reset (sluice_stage_out_t *out, size_t before, bool at_end);

void
    sluice_stage_out_fini (sluice_stage_out_t *out);

// ---------------------------------------------------------------------------------------------
//  The stage core: a function over a stream of chunks, with held-back input. The stage actor
//  feeds it what it reads; tests and the fuzz target feed it directly.

//  Where the core's output goes: one chunk. A result other than SLUICE_OK stops the core.
typedef sluice_err_t (sluice_stage_emit_fn) (void *context, const void *data, size_t size,
                                             bool is_final);

typedef struct {
    sluice_stage_fn *fn;
    void *user;
    sluice_stage_out_t out;
    char *pending;              //  [before: decided input][held: undecided input][next chunk]
    size_t before;
    size_t held;
    size_t capacity;
    bool done;                  //  the stream has ended: push no more
    bool ended_early;           //  by sluice_stage_end_stream, before the input's end
} sluice_stage_core_t;

void
    sluice_stage_core_init (sluice_stage_core_t *core, sluice_stage_fn *fn, void *user);
void
    sluice_stage_core_fini (sluice_stage_core_t *core);

//  One chunk (is_final: the last one), or the end of the input (is_eos; data ignored): calls
//  the function and emits what it decided. SLUICE_EINTERNAL when the function failed,
//  SLUICE_ENOMEM, or the emitter's error.
sluice_err_t
    sluice_stage_core_push (sluice_stage_core_t *core, const char *data, size_t size,
                            bool is_final, bool is_eos, sluice_stage_emit_fn *emit, void *context);

#endif
