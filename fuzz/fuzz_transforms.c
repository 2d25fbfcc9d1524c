/*  fuzz_transforms.c - the ready-made transforms are chunk-invariant, for any bytes.

    Input: byte 0 picks the transform (and sentences' max-bytes), byte 1 seeds the split, the
    rest is the text. The stage core (src/sluice_stage_out.h) runs the transform over the text
    in one chunk and over the text cut into chunks of 0-7 bytes (the last one final or not).
    Checks: the two outputs are the same bytes (for sentences, the same chunks); mask's output
    has no listed word left and differs from the text only by '*'; stop's output is a prefix of
    the text holding no stop string; at most one final chunk.
*/
#define _GNU_SOURCE         //  memmem
#include "sluice_stage_out.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX  8192

static const char *const s_words [] = { "ab", "abc", "bad", "\xc3\xa9t\xc3\xa9", NULL };
static const char *const s_stops [] = { "xy", "STOP", "a\n", ". .", NULL };

typedef struct {
    char data [S_MAX];
    size_t size;
    size_t ends [S_MAX];
    size_t count;
    size_t finals;
} s_collect_t;

static sluice_err_t
s_collect (void *context, const void *data, size_t size, bool is_final)
{
    s_collect_t *collect = (s_collect_t *) context;
    if (collect->size + size > S_MAX)
        abort ();
    memcpy (collect->data + collect->size, data, size);
    collect->size += size;
    if (size)
        collect->ends [collect->count++] = collect->size;
    collect->finals += is_final;
    return SLUICE_OK;
}

static void
s_fail (const char *what)
{
    fprintf (stderr, "fuzz_transforms: %s\n", what);
    abort ();
}

static void
s_run (sluice_stage_fn *fn, void *user, const char *text, size_t size, unsigned seed,
       bool split, bool final, s_collect_t *collect)
{
    memset (collect, 0, sizeof *collect);
    sluice_stage_core_t core;
    sluice_stage_core_init (&core, fn, user);
    size_t used = 0;
    static char chunk [S_MAX + 1];
    do {
        seed = seed * 1103515245u + 12345u;
        size_t take = split ? (seed >> 16) % 8 : size;
        if (take > size - used)
            take = size - used;
        memcpy (chunk, text + used, take);
        chunk [take] = 0;
        used += take;
        if (sluice_stage_core_push (&core, chunk, take, final && used == size, false,
                                    s_collect, collect) != SLUICE_OK)
            s_fail ("push failed");
    } while (used < size && !core.done);
    if (!core.done
    &&  sluice_stage_core_push (&core, NULL, 0, false, true, s_collect, collect) != SLUICE_OK)
        s_fail ("end failed");
    sluice_stage_core_fini (&core);
}

int
LLVMFuzzerTestOneInput (const uint8_t *input, size_t size)
{
    if (size < 2 || size - 2 > S_MAX / 2)
        return 0;
    unsigned mode = input [0] % 3, seed = input [1];
    bool final = input [0] & 0x80;
    size_t limit = 1 + (input [0] >> 2) % 32;
    const char *text = (const char *) input + 2;
    size_t text_size = size - 2;
    sluice_stage_fn *fn = mode == 0 ? sluice_stage_mask
                        : mode == 1 ? sluice_stage_stop_at : sluice_stage_sentences;
    void *user = mode == 0 ? (void *) s_words : mode == 1 ? (void *) s_stops : (void *) &limit;
    static s_collect_t whole, split;
    s_run (fn, user, text, text_size, seed, false, final, &whole);
    s_run (fn, user, text, text_size, seed, true, final, &split);
    if (whole.size != split.size || memcmp (whole.data, split.data, whole.size) != 0)
        s_fail ("the split changed the output");
    if (whole.finals > 1 || split.finals != whole.finals)
        s_fail ("final chunks differ");
    if (mode == 0) {
        if (whole.size != text_size)
            s_fail ("mask changed the length");
        for (size_t index = 0; index < text_size; index++)
            if (whole.data [index] != text [index] && whole.data [index] != '*')
                s_fail ("mask changed something other than a word");
        //  Masking the output again changes nothing: no listed word is left in it
        s_collect_t again;
        s_run (fn, user, whole.data, whole.size, seed, false, true, &again);
        if (again.size != whole.size || memcmp (again.data, whole.data, whole.size) != 0)
            s_fail ("a listed word leaked");
    }
    else
    if (mode == 1) {
        if (whole.size > text_size || memcmp (whole.data, text, whole.size) != 0)
            s_fail ("stop's output is not a prefix of the text");
        for (const char *const *word = s_stops; *word; word++)
            if (memmem (whole.data, whole.size, *word, strlen (*word)))
                s_fail ("a stop string leaked");
    }
    else {
        if (whole.size != text_size || memcmp (whole.data, text, text_size) != 0)
            s_fail ("sentences changed the text");
        if (whole.count != split.count || memcmp (whole.ends, split.ends,
                                                  whole.count * sizeof whole.ends [0]) != 0)
            s_fail ("the split changed the sentences");
        for (size_t index = 0; index < whole.count; index++)
            if (whole.ends [index] - (index ? whole.ends [index - 1] : 0) > limit)
                s_fail ("a sentence longer than max-bytes");
    }
    return 0;
}
