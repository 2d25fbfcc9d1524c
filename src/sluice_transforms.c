/*  sluice_transforms.c - the ready-made stage transforms and their table by name.

    Each is chunk-invariant (include/sluice_stage.h): it holds back exactly the input it
    cannot decide on yet, so its output does not depend on how the stream was cut.
*/
#define _GNU_SOURCE         //  memmem
#include "sluice_stage_out.h"
#include <ctype.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static sluice_stage_verdict_t
s_map_case (const char *in, size_t in_size, sluice_stage_out_t *out, int (*map) (int))
{
    char *text = sluice_stage_out_reserve (out, in_size);
    if (!text)
        return SLUICE_STAGE_FAIL;
    for (size_t index = 0; index < in_size; index++) {
        unsigned char byte = (unsigned char) in [index];
        //  ASCII only: the C locale's toupper leaves UTF-8 bytes alone, but say so explicitly
        text [index] = byte < 0x80 ? (char) map (byte) : (char) byte;
    }
    return SLUICE_STAGE_KEEP;
}

sluice_stage_verdict_t
sluice_stage_upper (void *user, const char *in, size_t in_size, sluice_stage_out_t *out)
{
    return s_map_case (in, in_size, out, toupper);
}

sluice_stage_verdict_t
sluice_stage_lower (void *user, const char *in, size_t in_size, sluice_stage_out_t *out)
{
    return s_map_case (in, in_size, out, tolower);
}

sluice_stage_verdict_t
sluice_stage_identity (void *user, const char *in, size_t in_size, sluice_stage_out_t *out)
{
    return SLUICE_STAGE_PASS;
}

// ---------------------------------------------------------------------------------------------
//  mask

static bool
s_is_word_byte (unsigned char byte)
{
    return byte >= 0x80 || isalnum (byte);
}

//  Could the word in[0..size), continued, still be one of `words`?
static bool
s_may_become_word (const char *const *words, const char *in, size_t size)
{
    for (const char *const *word = words; word && *word; word++)
        if (strlen (*word) >= size && strncasecmp (*word, in, size) == 0)
            return true;
    return false;
}

static bool
s_is_word (const char *const *words, const char *in, size_t size)
{
    for (const char *const *word = words; word && *word; word++)
        if (strlen (*word) == size && strncasecmp (*word, in, size) == 0)
            return true;
    return false;
}

sluice_stage_verdict_t
sluice_stage_mask (void *user, const char *in, size_t in_size, sluice_stage_out_t *out)
{
    const char *const *words = (const char *const *) user;
    bool at_end = sluice_stage_at_end (out);
    size_t start = 0;
    //  Inside a word whose start went out earlier: it could not become a listed word (else
    //  it would have been held), so its rest goes out as it is
    if (sluice_stage_before (out) && s_is_word_byte ((unsigned char) in [-1]))
        while (start < in_size && s_is_word_byte ((unsigned char) in [start]))
            start++;
    size_t decided = in_size;
    char *text = sluice_stage_out_reserve (out, in_size);
    if (!text)
        return SLUICE_STAGE_FAIL;
    if (in_size)
        memcpy (text, in, in_size);
    while (start < in_size) {
        if (!s_is_word_byte ((unsigned char) in [start])) {
            start++;
            continue;
        }
        size_t end = start;
        while (end < in_size && s_is_word_byte ((unsigned char) in [end]))
            end++;
        if (end == in_size && !at_end) {
            //  The word may go on in the next chunk
            if (s_may_become_word (words, in + start, end - start))
                decided = start;
            break;
        }
        if (s_is_word (words, in + start, end - start))
            memset (text + start, '*', end - start);
        start = end;
    }
    out->size = decided;
    out->data [decided] = 0;
    sluice_stage_hold (out, in_size - decided);
    return SLUICE_STAGE_KEEP;
}

// ---------------------------------------------------------------------------------------------
//  stop

sluice_stage_verdict_t
sluice_stage_stop_at (void *user, const char *in, size_t in_size, sluice_stage_out_t *out)
{
    const char *const *words = (const char *const *) user;
    //  The earliest occurrence of any of them; the held tail makes one across chunks whole
    size_t found = in_size;
    for (const char *const *word = words; word && *word; word++) {
        size_t length = strlen (*word);
        const char *at = length ? (const char *) memmem (in, in_size, *word, length) : NULL;
        if (at && (size_t) (at - in) < found)
            found = (size_t) (at - in);
    }
    if (found < in_size) {
        if (!sluice_stage_out_append (out, in, found))
            return SLUICE_STAGE_FAIL;
        sluice_stage_end_stream (out);
        return SLUICE_STAGE_KEEP;
    }
    //  Hold the longest tail that is the start of a listed string
    size_t held = 0;
    if (!sluice_stage_at_end (out))
        for (const char *const *word = words; word && *word; word++) {
            size_t length = strlen (*word);
            if (!length)
                continue;
            for (size_t tail = length - 1 < in_size ? length - 1 : in_size; tail > held; tail--)
                if (memcmp (in + in_size - tail, *word, tail) == 0) {
                    held = tail;
                    break;
                }
        }
    sluice_stage_hold (out, held);
    return SLUICE_STAGE_PASS;
}

// ---------------------------------------------------------------------------------------------
//  sentences

static bool
s_is_space (unsigned char byte)
{
    return byte == ' ' || byte == '\t' || byte == '\r' || byte == '\n';
}

//  Where the sentence starting at in[0] ends (one past its last byte), scanning at most
//  `size` bytes; 0 when it does not end within them, SIZE_MAX when the end of the bytes
//  leaves it open (a terminator that the next byte decides on).
static size_t
s_sentence_end (const char *in, size_t size)
{
    for (size_t index = 0; index < size; index++) {
        char byte = in [index];
        if (byte == '\n')
            return index + 1;
        if (byte != '.' && byte != '!' && byte != '?')
            continue;
        size_t next = index + 1;
        while (next < size && in [next] && strchr (".!?\"')]", in [next]))
            next++;
        if (next == size)
            return SIZE_MAX;
        if (s_is_space ((unsigned char) in [next]))
            return next + 1;
        index = next - 1;
    }
    return 0;
}

//  Where to cut a sentence longer than `limit` (in has more than limit bytes): after a clause,
//  else after a space, else at the limit but not inside a UTF-8 character.
static size_t
s_clause_end (const char *in, size_t limit)
{
    for (size_t end = limit; end >= 2; end--)
        if (in [end - 1] == ' ' && strchr (",;:", in [end - 2]))
            return end;
    for (size_t end = limit; end >= 1; end--)
        if (s_is_space ((unsigned char) in [end - 1]))
            return end;
    size_t end = limit;
    while (end > 1 && ((unsigned char) in [end] & 0xC0) == 0x80)
        end--;
    return end;
}

sluice_stage_verdict_t
sluice_stage_sentences (void *user, const char *in, size_t in_size, sluice_stage_out_t *out)
{
    size_t limit = user && *(const size_t *) user ? *(const size_t *) user
                                                 : SLUICE_STAGE_SENTENCE_BYTES;
    bool at_end = sluice_stage_at_end (out);
    size_t start = 0;
    while (start < in_size) {
        size_t rest = in_size - start;
        //  Only the first `limit` bytes decide, so that any split gives the same cuts
        size_t end = s_sentence_end (in + start, rest < limit ? rest : limit);
        if (end == 0 || end == SIZE_MAX) {
            if (rest > limit)
                end = s_clause_end (in + start, limit);
            else
            if (at_end)
                end = rest;
            else
                break;
        }
        if (!sluice_stage_out_append (out, in + start, end) || !sluice_stage_out_cut (out))
            return SLUICE_STAGE_FAIL;
        start += end;
    }
    sluice_stage_hold (out, in_size - start);
    return SLUICE_STAGE_KEEP;
}

// ---------------------------------------------------------------------------------------------
//  Table

#define S_MAX_BYTES_MAX  65536

static const sluice_stage_transform_t s_transforms [] = {
    { "upper",     sluice_stage_upper,     false, "ASCII upper case", NULL, 0, 0 },
    { "lower",     sluice_stage_lower,     false, "ASCII lower case", NULL, 0, 0 },
    { "mask",      sluice_stage_mask,      true,  "replace listed words by '*' (a safety filter)",
      NULL, 0, 0 },
    { "stop",      sluice_stage_stop_at,    true,  "end the stream before the first listed string",
      NULL, 0, 0 },
    { "sentences", sluice_stage_sentences, false, "one chunk per sentence (or clause)",
      "max-bytes", SLUICE_STAGE_SENTENCE_BYTES, S_MAX_BYTES_MAX },
    { "identity",  sluice_stage_identity,  false, "copy chunks unchanged", NULL, 0, 0 },
};
#define S_TRANSFORM_COUNT  (sizeof s_transforms / sizeof s_transforms [0])

const sluice_stage_transform_t *
sluice_stage_transform_find (const char *name)
{
    for (size_t index = 0; name && index < S_TRANSFORM_COUNT; index++)
        if (strcmp (s_transforms [index].name, name) == 0)
            return &s_transforms [index];
    return NULL;
}

static char s_transform_names [256];

static void
s_list_transforms (void)
{
    size_t used = 0;
    for (size_t index = 0; index < S_TRANSFORM_COUNT; index++)
        used += (size_t) snprintf (s_transform_names + used, sizeof s_transform_names - used,
                                   "%s%s", index ? ", " : "", s_transforms [index].name);
}

const char *
sluice_stage_transform_names (void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once (&once, s_list_transforms);
    return s_transform_names;
}

const char *
sluice_stage_transform_check (const sluice_stage_transform_t *transform,
                              const char *const *words, const char *option, size_t value)
{
    static __thread char why [160];
    const char *name = transform->name;
    size_t word_count = 0;
    while (words && words [word_count])
        word_count++;
    if (transform->takes_words && !word_count)
        snprintf (why, sizeof why, "transform '%s' needs at least one word", name);
    else
    if (!transform->takes_words && word_count)
        snprintf (why, sizeof why, "transform '%s' takes no words", name);
    else
    if (option && (!transform->option || strcmp (option, transform->option) != 0))
        snprintf (why, sizeof why, "transform '%s' has no option '%s'", name, option);
    else
    if (option && (value < 1 || value > transform->option_max))
        snprintf (why, sizeof why, "transform '%s': %s must be 1 to %zu, not %zu", name,
                  option, transform->option_max, value);
    else {
        for (size_t index = 0; index < word_count; index++)
            if (!*words [index]) {
                snprintf (why, sizeof why, "transform '%s': a word cannot be empty", name);
                return why;
            }
        return NULL;
    }
    return why;
}
