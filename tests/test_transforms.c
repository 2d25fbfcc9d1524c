/*  test_transforms.c - the ready-made transforms are chunk-invariant: property tests.

    Random texts made of pieces that provoke the hard cases (listed words, their prefixes and
    extensions, stop strings cut in two, sentence ends, UTF-8) are cut into random chunks of
    0-6 bytes. For every text and split, the concatenated output must equal the transform of
    the whole text in one chunk, and an independent oracle (written here naively) says what
    that is; nothing listed may leak. First on the stage core directly (many cases), then
    through a real stage actor between two buffers. The seed is fixed (reproducible) and
    printed with any failure.
*/
#include "common.h"
#include "stage_core.h"
#include <ctype.h>
#include <strings.h>

TestSuite (transforms, .init = t_fx_init, .fini = t_fx_fini, .timeout = T_SUITE_TIMEOUT);


static const char *const s_mask_words [] = { "darn", "heck", "bad", NULL };
static const char *const s_stop_words [] = { "STOP", "\n\n", "end.", NULL };

// ---------------------------------------------------------------------------------------------
//  Oracles: the transforms of a whole text, written the obvious way

static bool
s_word_byte (unsigned char byte)
{
    return byte >= 0x80 || isalnum (byte);
}

static size_t
s_oracle_mask (const char *text, size_t size, char *out)
{
    memcpy (out, text, size);
    size_t start = 0;
    while (start < size) {
        if (!s_word_byte ((unsigned char) text [start])) {
            start++;
            continue;
        }
        size_t end = start;
        while (end < size && s_word_byte ((unsigned char) text [end]))
            end++;
        for (const char *const *word = s_mask_words; *word; word++)
            if (strlen (*word) == end - start && strncasecmp (*word, text + start, end - start) == 0)
                memset (out + start, '*', end - start);
        start = end;
    }
    return size;
}

static size_t
s_oracle_stop (const char *text, size_t size, char *out)
{
    size_t found = size;
    for (size_t at = 0; at < size && found == size; at++)
        for (const char *const *word = s_stop_words; *word; word++)
            if (strlen (*word) <= size - at && memcmp (text + at, *word, strlen (*word)) == 0) {
                found = at;
                break;
            }
    memcpy (out, text, found);
    return found;
}

//  Does the listed word appear as a whole word in out?
static bool
s_mask_leaks (const char *out, size_t size)
{
    char masked [S_OUT_MAX];
    s_oracle_mask (out, size, masked);
    return memcmp (masked, out, size) != 0;
}

typedef size_t (s_oracle_fn) (const char *text, size_t size, char *out);

//  What the transform of the whole text must be: the oracle's, or the text (NULL).
static size_t
s_expected (s_oracle_fn *oracle, const s_case_t *item, char *out)
{
    if (oracle)
        return oracle (item->text, item->size, out);
    memcpy (out, item->text, item->size);
    return item->size;
}

//  The property, `cases` times: any split gives the oracle's text (and, with same_chunks,
//  the same chunks as the whole text in one piece).
static void
s_property (const char *name, sluice_stage_fn *fn, void *user, s_oracle_fn *oracle,
            bool same_chunks, size_t max_chunk, size_t cases)
{
    for (size_t done = 0; done < cases; done++) {
        static s_case_t item;
        s_case (&item);
        const char *text = item.text;
        uint64_t seed = item.seed;
        size_t count = item.count;
        bool final = s_rand () % 2;
        s_collect_t whole, split;
        s_run_core (fn, user, text, item.size, NULL, 0, final, &whole);
        s_run_core (fn, user, text, item.size, item.sizes, count, final, &split);
        char expected [S_OUT_MAX];
        size_t expected_size = s_expected (oracle, &item, expected);
        cr_assert (whole.size == expected_size && memcmp (whole.data, expected, expected_size) == 0,
                   "%s, seed %" PRIu64 ": whole text \"%s\" gave \"%.*s\"", name, seed, text,
                   (int) whole.size, whole.data);
        cr_assert (split.size == expected_size && memcmp (split.data, expected, expected_size) == 0,
                   "%s, seed %" PRIu64 ": \"%s\" in %zu chunks gave \"%.*s\", not \"%.*s\"", name,
                   seed, text, count, (int) split.size, split.data, (int) expected_size, expected);
        if (same_chunks) {
            cr_assert_eq (split.count, whole.count, "%s, seed %" PRIu64 ": \"%s\": %zu chunks, "
                          "not %zu", name, seed, text, split.count, whole.count);
            for (size_t index = 0; index < whole.count; index++)
                cr_assert_eq (split.ends [index], whole.ends [index], "%s, seed %" PRIu64
                              ": \"%s\": chunk %zu differs", name, seed, text, index);
        }
        for (size_t index = 0; max_chunk && index < split.count; index++) {
            size_t start = index ? split.ends [index - 1] : 0;
            cr_assert_leq (split.ends [index] - start, max_chunk, "%s, seed %" PRIu64
                           ": chunk of %zu bytes", name, seed, split.ends [index] - start);
        }
        //  The end travels on: one final chunk when the input ended with one (or the
        //  transform ended the stream), never more
        cr_assert (split.finals == whole.finals && split.finals <= 1 && split.finals >= final,
                   "%s, seed %" PRIu64 ": %zu final chunks", name, seed, split.finals);
    }
}

Test (transforms, mask_is_chunk_invariant_and_never_leaks)
{
    s_state = 0x5eed0001;
    s_property ("mask", sluice_stage_mask, (void *) s_mask_words, s_oracle_mask, false, 0, 3000);
}

Test (transforms, stop_is_chunk_invariant_and_never_leaks)
{
    s_state = 0x5eed0002;
    s_property ("stop", sluice_stage_stop_at, (void *) s_stop_words, s_oracle_stop, false, 0, 3000);
}

Test (transforms, sentences_are_chunk_invariant_to_the_chunk)
{
    s_state = 0x5eed0003;
    size_t limits [] = { 1, 2, 7, 20, 200 };
    for (size_t index = 0; index < sizeof limits / sizeof limits [0]; index++)
        s_property ("sentences", sluice_stage_sentences, &limits [index], NULL, true,
                    limits [index], 1000);
}

Test (transforms, examples_from_the_issue)
{
    s_collect_t out;
    //  "darn" as "da" + "rn", and "badger" as "bad" + "ger"
    const char *text = "oh darn, a badger";
    size_t sizes [] = { 5, 2, 8, 2 };
    s_run_core (sluice_stage_mask, (void *) s_mask_words, text, strlen (text), sizes, 4, false, &out);
    cr_expect_eq (out.size, strlen ("oh ****, a badger"));
    cr_expect (memcmp (out.data, "oh ****, a badger", out.size) == 0, "got \"%.*s\"",
               (int) out.size, out.data);
    //  A stop string cut in two ends the stream before it
    text = "say hi ST";
    const char *rest = "OP and more";
    char both [64];
    snprintf (both, sizeof both, "%s%s", text, rest);
    size_t stop_sizes [] = { strlen (text), strlen (rest) };
    s_run_core (sluice_stage_stop_at, (void *) s_stop_words, both, strlen (both), stop_sizes, 2,
                false, &out);
    cr_expect (out.size == 7 && memcmp (out.data, "say hi ", 7) == 0, "got \"%.*s\"",
               (int) out.size, out.data);
    cr_expect_eq (out.finals, 1, "the stop is a final chunk");
    //  Sentences
    text = "Hello world. How are you? Fine, thanks!\nBye";
    s_run_core (sluice_stage_sentences, NULL, text, strlen (text), NULL, 0, false, &out);
    cr_assert_eq (out.count, 4);
    cr_expect_eq (out.ends [0], strlen ("Hello world. "));
    cr_expect_eq (out.ends [1], strlen ("Hello world. How are you? "));
    cr_expect_eq (out.ends [2], strlen ("Hello world. How are you? Fine, thanks!\n"));
    size_t limit = 10;
    text = "one, two three four";
    s_run_core (sluice_stage_sentences, &limit, text, strlen (text), NULL, 0, false, &out);
    cr_assert_eq (out.count, 3);
    cr_expect_eq (out.ends [0], strlen ("one, "));
    cr_expect_eq (out.ends [1], strlen ("one, two three "));
}

// ---------------------------------------------------------------------------------------------
//  A user transform gets the same guarantee through the held-back API

//  "ab" becomes "X": a trailing 'a' is held until the next byte says whether it starts "ab".
static sluice_stage_verdict_t
s_replace_ab (void *user, const char *in, size_t in_size, sluice_stage_out_t *out)
{
    size_t end = in_size;
    if (end && in [end - 1] == 'a' && !sluice_stage_at_end (out)) {
        end--;
        sluice_stage_hold (out, 1);
    }
    for (size_t index = 0; index < end; index++) {
        bool ab = in [index] == 'a' && index + 1 < end + (end < in_size) && in [index + 1] == 'b';
        if (!sluice_stage_out_append (out, ab ? "X" : in + index, 1))
            return SLUICE_STAGE_FAIL;
        index += ab;
    }
    return SLUICE_STAGE_KEEP;
}

static size_t
s_oracle_ab (const char *text, size_t size, char *out)
{
    size_t used = 0;
    for (size_t index = 0; index < size; index++) {
        bool ab = text [index] == 'a' && index + 1 < size && text [index + 1] == 'b';
        out [used++] = ab ? 'X' : text [index];
        index += ab;
    }
    return used;
}

Test (transforms, a_user_transform_holding_back_is_invariant)
{
    s_state = 0x5eed0004;
    s_property ("ab", s_replace_ab, NULL, s_oracle_ab, false, 0, 2000);
}

//  Lookbehind: sluice_stage_before gives the end of the input decided earlier.
static sluice_stage_verdict_t
s_check_before (void *user, const char *in, size_t in_size, sluice_stage_out_t *out)
{
    size_t *calls = (size_t *) user;
    size_t before = sluice_stage_before (out);
    if ((*calls)++ == 0)
        cr_assert_eq (before, 0);
    else
        cr_assert (before == SLUICE_STAGE_BEFORE && memcmp (in - before, "23456789", 8) == 0,
                   "%zu bytes before", before);
    return SLUICE_STAGE_PASS;
}

Test (transforms, lookbehind_is_the_decided_input)
{
    size_t calls = 0;
    const char *text = "0123456789abcdefghij";
    size_t sizes [] = { 10, 10 };
    s_collect_t out;
    s_run_core (s_check_before, &calls, text, 20, sizes, 2, false, &out);
    cr_expect_eq (calls, 2);
    cr_expect_eq (out.size, 20);
}

// ---------------------------------------------------------------------------------------------
//  Through a stage actor: the same property with buffers and the runtime

static void
s_through_stage (const char *name, sluice_stage_fn *fn, void *user, s_oracle_fn *oracle,
                 size_t cases)
{
    for (size_t index = 0; index < cases; index++) {
        static s_case_t item;
        s_case (&item);
        const char *text = item.text;
        uint64_t seed = item.seed;
        char in_ep [128], out_ep [128];
        snprintf (in_ep, sizeof in_ep, "inproc://transforms-%s-%zu-in", name, index);
        snprintf (out_ep, sizeof out_ep, "inproc://transforms-%s-%zu-out", name, index);
        sluice_err_t err;
        sluice_buffer_t *in_buf = sluice_buffer_new (&(sluice_buffer_opts_t) {
            .endpoint = in_ep, .capacity = S_CHUNKS_MAX }, &err);
        sluice_buffer_t *out_buf = sluice_buffer_new (&(sluice_buffer_opts_t) {
            .endpoint = out_ep, .capacity = S_CHUNKS_MAX }, &err);
        cr_assert (in_buf && out_buf);
        sluice_stream_t *writer = sluice_stream_new (in_ep);
        sluice_stream_t *reader = sluice_stream_new (out_ep);
        sluice_stage_t *stage = sluice_stage_new (&(sluice_stage_opts_t) {
            .input = in_ep, .output = out_ep, .transform = fn, .user = user }, &err);
        cr_assert_not_null (stage, "%s", sluice_strerror (err));
        size_t used = 0;
        bool closed = false;
        for (size_t chunk = 0; chunk < item.count && !closed; chunk++) {
            sluice_err_t rc = sluice_stream_write_timeout (writer, text + used, item.sizes [chunk],
                                                           false, T_WAIT_MS);
            //  A stop closes the input behind it
            closed = rc == SLUICE_ECLOSED;
            cr_assert (rc == SLUICE_OK || closed, "write: %s", sluice_strerror (rc));
            used += item.sizes [chunk];
        }
        sluice_err_t rc = sluice_stream_close (writer);
        cr_assert (rc == SLUICE_OK || rc == SLUICE_ECLOSED);
        char got [S_OUT_MAX];
        size_t got_size = 0;
        while (true) {
            sluice_chunk_t chunk;
            T_READ (reader, chunk);
            if (chunk.is_eos)
                break;
            cr_assert_leq (got_size + chunk.size, S_OUT_MAX);
            memcpy (got + got_size, chunk.text, chunk.size);
            got_size += chunk.size;
        }
        cr_assert_eq (sluice_stage_wait (stage, T_WAIT_MS), SLUICE_OK, "%s",
                      sluice_stage_error_text (stage));
        char expected [S_OUT_MAX];
        size_t expected_size = s_expected (oracle, &item, expected);
        cr_assert (got_size == expected_size && memcmp (got, expected, got_size) == 0,
                   "%s, seed %" PRIu64 ": \"%s\" gave \"%.*s\"", name, seed, text,
                   (int) got_size, got);
        if (oracle == s_oracle_mask)
            cr_assert (!s_mask_leaks (got, got_size), "%s: a listed word leaked", name);
        sluice_stage_destroy (&stage);
        sluice_stream_destroy (&writer);
        sluice_stream_destroy (&reader);
        sluice_buffer_destroy (&in_buf);
        sluice_buffer_destroy (&out_buf);
    }
}

Test (transforms, mask_stop_sentences_through_a_stage_actor)
{
    s_state = 0x5eed0005;
    s_through_stage ("mask", sluice_stage_mask, (void *) s_mask_words, s_oracle_mask, 40);
    s_through_stage ("stop", sluice_stage_stop_at, (void *) s_stop_words, s_oracle_stop, 40);
    size_t limit = 20;
    s_through_stage ("sentences", sluice_stage_sentences, &limit, NULL, 40);
}

Test (transforms, table_checks_words_and_options_alike_for_every_front_end)
{
    const char *const none [] = { NULL };
    const char *const one [] = { "x", NULL };
    const char *const empty [] = { "", NULL };
    const sluice_stage_transform_t *mask = sluice_stage_transform_find ("mask");
    const sluice_stage_transform_t *stop = sluice_stage_transform_find ("stop");
    const sluice_stage_transform_t *sentences = sluice_stage_transform_find ("sentences");
    const sluice_stage_transform_t *upper = sluice_stage_transform_find ("upper");
    cr_assert (mask && stop && sentences && upper);
    cr_expect_null (sluice_stage_transform_find ("nope"));
    cr_expect_str_eq (sluice_stage_transform_check (stop, none, NULL, 0),
                      "transform 'stop' needs at least one word");
    cr_expect_str_eq (sluice_stage_transform_check (mask, NULL, NULL, 0),
                      "transform 'mask' needs at least one word");
    cr_expect_str_eq (sluice_stage_transform_check (upper, one, NULL, 0),
                      "transform 'upper' takes no words");
    cr_expect_str_eq (sluice_stage_transform_check (stop, empty, NULL, 0),
                      "transform 'stop': a word cannot be empty");
    cr_expect_str_eq (sluice_stage_transform_check (mask, one, "max-bytes", 5),
                      "transform 'mask' has no option 'max-bytes'");
    cr_expect_str_eq (sluice_stage_transform_check (sentences, NULL, "max-bytes", 0),
                      "transform 'sentences': max-bytes must be 1 to 65536, not 0");
    cr_expect_null (sluice_stage_transform_check (sentences, NULL, "max-bytes", 1));
    cr_expect_null (sluice_stage_transform_check (stop, one, NULL, 0));
    cr_expect_str_eq (sentences->option, "max-bytes");
    cr_expect_eq (sentences->option_default, SLUICE_STAGE_SENTENCE_BYTES);
    cr_expect_str_eq (sluice_stage_transform_names (),
                      "upper, lower, mask, stop, sentences, identity");
}
