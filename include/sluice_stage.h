/*  sluice_stage.h - a transform stage: reads one buffer, writes another.

    A sluice_stage_t is an actor (its own thread) with two clients: it reads the buffer at
    `input` chunk by chunk, hands each chunk to a user function, and writes what the function
    produced into the buffer at `output`. Both ends block as usual: a slow output holds the
    stage back, and the stage holds its input back in turn, so backpressure crosses stages.
    Stages are how pipelines compose: writer -> buffer -> stage -> buffer -> ... -> reader.

    The stream ends where a reader's stream ends (sluice_stream_next): at the end-of-stream
    sentinel (input closed and drained), or after a chunk marked final. A final chunk is
    written out final too (as an empty final chunk when the function drops it), so the end
    travels downstream. Then the stage closes its output, unless keep_output_open is set
    (several stages feeding one buffer). It closes it also when it fails, so that downstream
    readers always see an end; sluice_stage_wait says whether the stage ended cleanly.

    Chunks are pieces of one text, cut anywhere: a function that must see more than one byte
    to decide holds the undecided end of its input back (sluice_stage_hold below) and gets it
    again in front of the next chunk, so that its output does not depend on the cuts. Instead
    of a function, the stage can run an external program (`exec` in the options).

    The handle is for the thread that created it. The function runs on the stage's thread.
*/
#ifndef SLUICE_STAGE_H_INCLUDED
#define SLUICE_STAGE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include "sluice_export.h"
#include "sluice_error.h"
#include "sluice_curve.h"

#ifdef __cplusplus
extern "C" {
#endif

//  What the function decided for one chunk.
typedef enum {
    SLUICE_STAGE_FAIL = -1,    //  stop the stage with SLUICE_EINTERNAL (e.g. out of memory)
    SLUICE_STAGE_DROP = 0,     //  write nothing for this chunk
    SLUICE_STAGE_KEEP = 1,     //  write the output bytes (an empty output is an empty chunk)
    SLUICE_STAGE_PASS = 2      //  write the input chunk unchanged (the output is ignored)
} sluice_stage_verdict_t;

//  The output of one call: empty when the function is called; it appends to it.
typedef struct sluice_stage_out_t sluice_stage_out_t;

//  Append size bytes. Returns false when out of memory.
SLUICE_EXPORT bool
    sluice_stage_out_append (sluice_stage_out_t *out, const void *data, size_t size);

//  Append size bytes for the caller to fill in; returns where they start, NULL when out of
//  memory. Valid until the next call on `out`.
SLUICE_EXPORT char *
    sluice_stage_out_reserve (sluice_stage_out_t *out, size_t size);

//  End the output chunk here: what was appended so far is written as one chunk, what is
//  appended next as another (one input, several output chunks: e.g. one per sentence). Empty
//  chunks between cuts are not written. Returns false when out of memory.
SLUICE_EXPORT bool
    sluice_stage_out_cut (sluice_stage_out_t *out);

//  Held-back input: chunk-invariant transforms.
//
//  A stream may be cut into chunks anywhere (a tokenizer splits words), so a transform that
//  looks at more than one byte at a time must not decide on text it has not seen whole. The
//  function says how many bytes at the end of `in` it has not decided on yet; the stage keeps
//  them and hands them in again, in front of the next chunk. The function's output covers
//  only the decided part. A transform that holds back exactly what it cannot decide yet is
//  chunk-invariant: for every split of a text into chunks, the concatenated output equals
//  its output for the whole text in one chunk.
//
//  At the end - the chunk is final, or the input ended with held bytes (then the function is
//  called once more with them alone) - nothing can be held: sluice_stage_at_end says so and
//  sluice_stage_hold is then ignored, so the function decides on all of its input.

//  Hold back the last `size` bytes of `in` (at most in_size; the last call wins): with KEEP
//  and DROP the output covers the rest, PASS writes the rest. When bytes are held and the
//  output is empty, no chunk is written.
SLUICE_EXPORT void
    sluice_stage_hold (sluice_stage_out_t *out, size_t size);

//  True when this call is the last one: the function must decide on all of its input.
SLUICE_EXPORT bool
    sluice_stage_at_end (const sluice_stage_out_t *out);

//  How many bytes before `in` may be read (in [-1], ...): the end of the input decided in
//  earlier calls, at most SLUICE_STAGE_BEFORE; 0 at the start. Context such as "the input
//  starts inside a word" without holding that word back.
#define SLUICE_STAGE_BEFORE  8
SLUICE_EXPORT size_t
    sluice_stage_before (const sluice_stage_out_t *out);

//  End the stream after this call's output: it is written, its last chunk final; the stage
//  stops reading, closes its input (unless keep_input_open: this cancels upstream writers,
//  e.g. a model's generation) and ends as at the end of the input. A hold in this call is
//  ignored (as at the end).
SLUICE_EXPORT void
    sluice_stage_end_stream (sluice_stage_out_t *out);

//  The transform. `in` is the chunk (in_size bytes, followed by a NUL byte so that text can be
//  used as a string; binary chunks may contain NULs), preceded by the bytes the function held
//  back last time. Called for every chunk, empty ones too, and once more at the end of the
//  input when bytes are held; not for the end-of-stream sentinel itself.
typedef sluice_stage_verdict_t (sluice_stage_fn) (void *user, const char *in, size_t in_size,
                                                   sluice_stage_out_t *out);

typedef struct {
    const char *input;            //  endpoint of the buffer read (required)
    const char *output;           //  endpoint of the buffer written (required)
    sluice_stage_fn *transform;   //  required, unless exec is set
    void *user;                   //  handed to transform
    bool keep_output_open;        //  do not close the output at the end of the input
    bool keep_input_open;         //  do not close the input when the stage ends before it
                                  //  (sluice_stage_end_stream, an exec command that exits)
    const sluice_curve_t *input_curve;    //  CURVE client settings for the input connection
    const sluice_curve_t *output_curve;   //  and the output one (sluice_curve.h); NULL:
                                          //  plaintext. Read during sluice_stage_new only
    //  An external program as the stage (instead of transform): `sh -c exec`, in a process
    //  group of its own. Chunks are written to its stdin as they are; its stdout comes back
    //  as chunks, one per line (the newline removed) with exec_lines, else as read. Pipes
    //  carry backpressure both ways: a command that does not read holds the input back, and
    //  a full output stops reading its stdout. The end of the input closes its stdin, then
    //  its stdout is drained until it closes. A non-zero exit status (or a signal) is a stage
    //  error (SLUICE_EINTERNAL) whose text names the status and the end of its stderr. A
    //  command that exits before reading all its input ends the stage as
    //  sluice_stage_end_stream does. Stopping or destroying the stage kills the group.
    const char *exec;
    bool exec_lines;
} sluice_stage_opts_t;

typedef struct sluice_stage_t sluice_stage_t;

//  Start the stage. Returns NULL (and sets *err: SLUICE_EINVAL for bad options) on failure.
//  The endpoints and the exec command are copied. The caller owns the result.
SLUICE_EXPORT sluice_stage_t *
    sluice_stage_new (const sluice_stage_opts_t *opts, sluice_err_t *err);

//  Wait until the stage has finished (timeout_ms, SLUICE_FOREVER for no limit). Returns its
//  result: SLUICE_OK at a clean end, the first error otherwise (e.g. SLUICE_ECLOSED when the
//  output was closed under it), or SLUICE_ETIMEOUT while it still runs.
SLUICE_EXPORT sluice_err_t
    sluice_stage_wait (sluice_stage_t *self, int timeout_ms);

//  Stop the stage's job now (the output is not closed); it then reports SLUICE_EINTR to
//  sluice_stage_wait. Returns once the stage has taken the order.
SLUICE_EXPORT sluice_err_t
    sluice_stage_stop (sluice_stage_t *self);

//  Once sluice_stage_wait has returned the result: the actor's reason for an error ("" when
//  none). Owned by the stage.
SLUICE_EXPORT const char *
    sluice_stage_error_text (sluice_stage_t *self);

//  Chunks read from the input (the end-of-stream sentinel not counted), and written out.
SLUICE_EXPORT size_t
    sluice_stage_consumed (sluice_stage_t *self);
SLUICE_EXPORT size_t
    sluice_stage_produced (sluice_stage_t *self);

//  The underlying zactor_t, e.g. for zpoller/zmq_poll together with other sockets: it becomes
//  readable when the stage has finished; then sluice_stage_wait (self, 0) returns the result.
SLUICE_EXPORT void *
    sluice_stage_actor_handle (sluice_stage_t *self);

//  An exec stage's command once it has ended: its exit status (0..255), 128 + the signal that
//  killed it, or -1 (not an exec stage, or not ended yet).
SLUICE_EXPORT int
    sluice_stage_exit_status (sluice_stage_t *self);

//  Stop the stage (interrupting a blocked read or write; the output is not closed) and free
//  it. Sets *self_p to NULL; does nothing when it already is NULL.
SLUICE_EXPORT void
    sluice_stage_destroy (sluice_stage_t **self_p);

// ---------------------------------------------------------------------------------------------
//  Ready-made transforms

//  ASCII upper / lower case; other bytes unchanged. `user` is ignored.
SLUICE_EXPORT sluice_stage_verdict_t
    sluice_stage_upper (void *user, const char *in, size_t in_size, sluice_stage_out_t *out);
SLUICE_EXPORT sluice_stage_verdict_t
    sluice_stage_lower (void *user, const char *in, size_t in_size, sluice_stage_out_t *out);

//  Every chunk unchanged. `user` is ignored.
SLUICE_EXPORT sluice_stage_verdict_t
    sluice_stage_identity (void *user, const char *in, size_t in_size, sluice_stage_out_t *out);

//  A safety filter: every whole word that matches one of the words of `user` (a NULL-terminated
//  array of non-empty strings; ASCII case-insensitive) is replaced by as many '*'. A word is
//  a run of ASCII letters, digits and bytes >= 0x80 (UTF-8). Chunk-invariant: a word at the
//  end of a chunk is held back only while it could still become a listed word ("da" of
//  "darn", "bad" that may become "badger"); any other text goes out at once.
SLUICE_EXPORT sluice_stage_verdict_t
    sluice_stage_mask (void *user, const char *in, size_t in_size, sluice_stage_out_t *out);

//  Stop sequences: ends the stream (sluice_stage_end_stream) at the first occurrence of any
//  of the strings of `user` (a NULL-terminated array of non-empty strings, matched exactly),
//  which is not written; what comes before it is. Chunk-invariant: only a tail that could
//  still begin a listed string is held back.
SLUICE_EXPORT sluice_stage_verdict_t
    sluice_stage_stop_at (void *user, const char *in, size_t in_size, sluice_stage_out_t *out);

//  Sentences for speech engines: one output chunk per sentence. A sentence ends after '.',
//  '!' or '?' (more of them and closing quotes or brackets may follow) and one whitespace
//  byte, or after a newline. One longer than `*(size_t *) user` bytes (NULL: 200) is cut into
//  clauses: after the last ",;:" and a space within the limit, else after the last space,
//  else at the limit (not inside a UTF-8 character). The bytes are unchanged: the output
//  concatenated is the input. Chunk-invariant, chunks included.
#define SLUICE_STAGE_SENTENCE_BYTES  200
SLUICE_EXPORT sluice_stage_verdict_t
    sluice_stage_sentences (void *user, const char *in, size_t in_size, sluice_stage_out_t *out);

//  The ready-made transforms by name, for command lines and pipeline files. Their `user`:
//  the NULL-terminated word list when takes_words, else a pointer to a size_t holding the
//  numeric option's value when `option` is set, else NULL.
typedef struct {
    const char *name;           //  "upper", "lower", "mask", "stop", "sentences", "identity"
    sluice_stage_fn *fn;
    bool takes_words;           //  its user is a NULL-terminated list of (at least one) words
    const char *help;           //  one line
    const char *option;         //  its numeric option ("max-bytes"), NULL when none
    size_t option_default;      //  its value when not given
    size_t option_max;          //  the largest accepted (the smallest is 1)
} sluice_stage_transform_t;

//  The transform called `name`, or NULL when there is none.
SLUICE_EXPORT const sluice_stage_transform_t *
    sluice_stage_transform_find (const char *name);

//  Their names, for messages: "upper, lower, mask, stop, sentences, identity".
SLUICE_EXPORT const char *
    sluice_stage_transform_names (void);

//  Check the settings given for `transform`, as the command line and pipeline files do:
//  `words` (NULL-terminated; NULL for none), and `option` (a numeric option's name, NULL when
//  none was given) with its value. Returns NULL when they fit, else why not (a static string
//  of this thread, valid until the next call), e.g. "transform 'stop' needs at least one word".
SLUICE_EXPORT const char *
    sluice_stage_transform_check (const sluice_stage_transform_t *transform,
                                  const char *const *words, const char *option, size_t value);

#ifdef __cplusplus
}
#endif
#endif
