/*  sluice_stage_out.c - the output a stage function builds: bytes, cuts, held-back input.
*/
#include "sluice_stage_out.h"
#include "sluice_error.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void
sluice_stage_out_reset (sluice_stage_out_t *out, size_t before, bool at_end)
{
    out->size = 0;
    if (out->data)
        out->data [0] = 0;
    out->cut_count = 0;
    out->held = 0;
    out->before = before;
    out->at_end = at_end;
    out->end_stream = false;
}

void
sluice_stage_out_fini (sluice_stage_out_t *out)
{
    free (out->data);
    free (out->cuts);
    memset (out, 0, sizeof *out);
}

char *
sluice_stage_out_reserve (sluice_stage_out_t *out, size_t size)
{
    if (size > SIZE_MAX - out->size - 1)
        return NULL;
    //  One byte spare: the stage hands chunks on NUL-terminated, as it received them
    if (out->size + size + 1 > out->capacity) {
        size_t capacity = out->capacity ? out->capacity : 256;
        while (capacity < out->size + size + 1)
            capacity = capacity > SIZE_MAX / 2 ? out->size + size + 1 : capacity * 2;
        char *data = (char *) realloc (out->data, capacity);
        if (!data)
            return NULL;
        out->data = data;
        out->capacity = capacity;
    }
    char *start = out->data + out->size;
    out->size += size;
    out->data [out->size] = 0;
    return start;
}

bool
sluice_stage_out_append (sluice_stage_out_t *out, const void *data, size_t size)
{
    char *start = sluice_stage_out_reserve (out, size);
    if (!start)
        return false;
    if (size)
        memcpy (start, data, size);
    return true;
}

bool
sluice_stage_out_cut (sluice_stage_out_t *out)
{
    if (out->cut_count && out->cuts [out->cut_count - 1] == out->size)
        return true;            //  nothing since the last cut: no empty chunk
    if (out->cut_count == out->cut_capacity) {
        size_t capacity = out->cut_capacity ? out->cut_capacity * 2 : 16;
        size_t *cuts = (size_t *) realloc (out->cuts, capacity * sizeof *cuts);
        if (!cuts)
            return false;
        out->cuts = cuts;
        out->cut_capacity = capacity;
    }
    out->cuts [out->cut_count++] = out->size;
    return true;
}

void
sluice_stage_hold (sluice_stage_out_t *out, size_t size)
{
    out->held = size;
}

bool
sluice_stage_at_end (const sluice_stage_out_t *out)
{
    return out->at_end;
}

size_t
sluice_stage_before (const sluice_stage_out_t *out)
{
    return out->before;
}

void
sluice_stage_end_stream (sluice_stage_out_t *out)
{
    out->end_stream = true;
}

// ---------------------------------------------------------------------------------------------
//  Stage core

void
sluice_stage_core_init (sluice_stage_core_t *core, sluice_stage_fn *fn, void *user)
{
    memset (core, 0, sizeof *core);
    core->fn = fn;
    core->user = user;
}

void
sluice_stage_core_fini (sluice_stage_core_t *core)
{
    free (core->pending);
    sluice_stage_out_fini (&core->out);
    memset (core, 0, sizeof *core);
}

//  Write what one call decided: its output chunks (or the input's decided part for PASS),
//  the last one final when `is_final`, and an empty final chunk when there is none.
static sluice_err_t
s_write_out (sluice_stage_emit_fn *emit, void *context, sluice_stage_verdict_t verdict,
             const sluice_stage_out_t *out, const char *in, size_t decided, bool held,
             bool is_final)
{
    const char *base = "";
    size_t bounds [2] = { 0, 0 };
    const size_t *cuts = bounds;
    size_t cut_count = 0;
    if (verdict == SLUICE_STAGE_PASS) {
        if (decided || !held) {
            base = in;
            bounds [0] = decided;
            cut_count = 1;
        }
    }
    else
    if (verdict == SLUICE_STAGE_KEEP) {
        base = out->data ? out->data : "";
        cuts = out->cuts;
        cut_count = out->cut_count;
    }
    else
    if (verdict != SLUICE_STAGE_DROP)
        return SLUICE_EINTERNAL;
    //  KEEP: the segments between cuts, then what follows the last cut; without cuts or hold
    //  an empty output is still a chunk, as it always was
    size_t start = 0;
    size_t tail_end = verdict == SLUICE_STAGE_KEEP ? out->size : 0;
    bool tail = verdict == SLUICE_STAGE_KEEP
             && (tail_end > (cut_count ? cuts [cut_count - 1] : 0) || (!cut_count && !held));
    bool written = false;
    for (size_t index = 0; index < cut_count; index++) {
        size_t end = cuts [index];
        if (end == start && verdict == SLUICE_STAGE_KEEP)
            continue;
        bool last = index + 1 == cut_count && !tail;
        sluice_err_t rc = emit (context, base + start, end - start, is_final && last);
        if (rc != SLUICE_OK)
            return rc;
        written = true;
        start = end;
    }
    if (tail) {
        sluice_err_t rc = emit (context, base + start, tail_end - start, is_final);
        if (rc != SLUICE_OK)
            return rc;
        written = true;
    }
    //  The end of the stream still has to travel downstream
    if (is_final && !written)
        return emit (context, "", 0, true);
    return SLUICE_OK;
}

sluice_err_t
sluice_stage_core_push (sluice_stage_core_t *core, const char *data, size_t size,
                        bool is_final, bool is_eos, sluice_stage_emit_fn *emit, void *context)
{
    if (is_eos) {
        size = 0;
        is_final = false;
    }
    //  A final chunk is the end of this reader's stream, as sluice_stream_next sees it; at the
    //  end of the input the function gets what it held, once, and nothing when it held nothing
    bool at_end = is_final || is_eos;
    core->done = at_end;
    if (is_eos && !core->held)
        return SLUICE_OK;
    size_t before = core->before, held = core->held;
    if (before + held + size + 1 > core->capacity) {
        size_t grown = before + held + size + 1 + core->capacity / 2;
        char *pending = (char *) realloc (core->pending, grown);
        if (!pending)
            return SLUICE_ENOMEM;
        core->pending = pending;
        core->capacity = grown;
    }
    if (size)
        memcpy (core->pending + before + held, data, size);
    core->pending [before + held + size] = 0;
    const char *in = core->pending + before;
    size_t in_size = held + size;
    sluice_stage_out_t *out = &core->out;
    sluice_stage_out_reset (out, before, at_end);
    sluice_stage_verdict_t verdict = core->fn (core->user, in, in_size, out);
    if (out->end_stream) {
        at_end = is_final = core->done = true;
        core->ended_early = !is_eos;
    }
    size_t hold = at_end ? 0 : out->held < in_size ? out->held : in_size;
    sluice_err_t result = s_write_out (emit, context, verdict, out, in, in_size - hold, hold > 0,
                                       is_final);
    //  Keep the end of the decided input for sluice_stage_before, then the held bytes
    size_t decided_end = before + in_size - hold;
    size_t keep = decided_end < SLUICE_STAGE_BEFORE ? decided_end : SLUICE_STAGE_BEFORE;
    memmove (core->pending, core->pending + decided_end - keep, keep + hold);
    core->before = keep;
    core->held = hold;
    return result;
}
