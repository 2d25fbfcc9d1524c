/*  stage_core.h - random texts cut at random, and the stage core run over them in process:
    the property tests of the transforms (test_transforms.c) and of `sluice stage` (test_cli.c)
    share them. Header only, static; include after common.h.
*/
#ifndef SLUICE_TEST_STAGE_CORE_H_INCLUDED
#define SLUICE_TEST_STAGE_CORE_H_INCLUDED

#include "sluice_stage.h"
#include "sluice_stage_out.h"

#define S_TEXT_MAX    512
#define S_OUT_MAX     4096
#define S_CHUNKS_MAX  1024

// ---------------------------------------------------------------------------------------------
//  Random texts and splits

static uint64_t s_state;      //  xorshift: set a seed per test

static inline uint32_t
s_rand (void)
{
    s_state ^= s_state << 13;
    s_state ^= s_state >> 7;
    s_state ^= s_state << 17;
    return (uint32_t) (s_state >> 11);
}

static const char *const s_pieces [] = {
    "darn", "da", "rn", "d", "heck", "he", "ck", "bad", "badger", "ger", "DARN", "Heck", "undarn",
    " ", "  ", ", ", ". ", "! ", "? ", "?", ".", "\n", "\n\n", "STOP", "ST", "OP", "S", "end",
    "end.", "\xc3\xa9", "\xe2\x80\x9c", "x", "word", "Dr.", "\"", "...", "a", "zz", "!!", ")",
    "_", "9", "The quick brown fox jumps over the lazy dog", "\t",
};

static inline size_t
s_text (char *text)
{
    size_t size = 0, count = s_rand () % 60;
    for (size_t index = 0; index < count; index++) {
        const char *piece = s_pieces [s_rand () % (sizeof s_pieces / sizeof s_pieces [0])];
        size_t length = strlen (piece);
        if (size + length >= S_TEXT_MAX)
            break;
        memcpy (text + size, piece, length);
        size += length;
    }
    text [size] = 0;
    return size;
}

//  Chunk sizes (0-6 bytes: empty chunks too) covering size bytes.
static inline size_t
s_split (size_t size, size_t *sizes)
{
    size_t count = 0, used = 0;
    while (used < size && count < S_CHUNKS_MAX) {
        size_t take = s_rand () % 7;
        if (take > size - used)
            take = size - used;
        sizes [count++] = take;
        used += take;
    }
    return count;
}

//  One random case: a text and a split of it.
typedef struct {
    uint64_t seed;              //  the generator's state before it: reproduces the case
    char text [S_TEXT_MAX + 1];
    size_t size;
    size_t sizes [S_CHUNKS_MAX];
    size_t count;
} s_case_t;

static inline void
s_case (s_case_t *item)
{
    item->seed = s_state;
    item->size = s_text (item->text);
    item->count = s_split (item->size, item->sizes);
}

// ---------------------------------------------------------------------------------------------
//  Running the stage core (sluice_stage_out.h) over chunks

typedef struct {
    char data [S_OUT_MAX];
    size_t size;
    size_t ends [S_CHUNKS_MAX];   //  where each non-empty chunk ends
    size_t count;
    size_t finals;
} s_collect_t;

static inline sluice_err_t
s_collect (void *context, const void *data, size_t size, bool is_final)
{
    s_collect_t *collect = (s_collect_t *) context;
    cr_assert_leq (collect->size + size, S_OUT_MAX);
    memcpy (collect->data + collect->size, data, size);
    collect->size += size;
    if (size)
        collect->ends [collect->count++] = collect->size;
    collect->finals += is_final;
    return SLUICE_OK;
}

//  Push text cut as `sizes` (one chunk when count is 0), the last chunk final or followed
//  by the end of the input.
static inline void
s_run_core (sluice_stage_fn *fn, void *user, const char *text, size_t size,
            const size_t *sizes, size_t count, bool final, s_collect_t *collect)
{
    memset (collect, 0, sizeof *collect);
    sluice_stage_core_t core;
    sluice_stage_core_init (&core, fn, user);
    size_t whole [1] = { size };
    if (!count) {
        sizes = whole;
        count = 1;
    }
    size_t used = 0;
    for (size_t index = 0; index < count && !core.done; index++) {
        //  A chunk as the stream hands it over: a copy, NUL-terminated
        char *chunk = (char *) malloc (sizes [index] + 1);
        cr_assert_not_null (chunk);
        memcpy (chunk, text + used, sizes [index]);
        chunk [sizes [index]] = 0;
        sluice_err_t rc = sluice_stage_core_push (&core, chunk, sizes [index],
                                                  final && index + 1 == count, false,
                                                  s_collect, collect);
        free (chunk);
        cr_assert_eq (rc, SLUICE_OK);
        used += sizes [index];
    }
    if (!core.done)
        cr_assert_eq (sluice_stage_core_push (&core, NULL, 0, false, true, s_collect, collect),
                      SLUICE_OK);
    sluice_stage_core_fini (&core);
}

#endif
