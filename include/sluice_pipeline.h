/*  sluice_pipeline.h - a pipeline of actors described in a file (docs/PIPELINES.md).

    A pipeline file (ZPL) names buffers, writers (tokens or a file into a buffer), stages (one
    buffer into another through a transform) and readers (a buffer to stdout, or to a sink of
    yours). A buffer whose endpoint this process can bind (inproc, ipc, tcp with host * or
    0.0.0.0, any tcp host with port * or 0) is started here; any other tcp:// endpoint is a
    buffer running elsewhere, and the actors here connect to it. Moving a buffer to another
    process or host changes only its endpoint.

    Life cycle, the same as every sluice actor's:
        sluice_pipeline_t *p = sluice_pipeline_new ();
        sluice_pipeline_load (p, "llm.cfg");        //  or sluice_pipeline_load_text
        sluice_pipeline_set_sink (p, "speaker", my_sink, &state);     //  optional
        sluice_pipeline_start (p);
        sluice_pipeline_wait (p, SLUICE_FOREVER);   //  the run's result
        sluice_pipeline_destroy (&p);
    The run ends when every reader has reached the end of its stream (a file without readers:
    when its writers and stages are done and its buffers drained). sluice_pipeline_stop ends it
    early and gracefully: writers stop, the buffers started here close, stages and readers
    drain what is queued. Whatever the end, the drain timeout bounds it.

    The pipeline runs on its own thread (a zactor supervising the others); the handle is for
    the thread that created it. Callbacks (transforms, sinks) run on their actors' threads.
    Everything in the file is checked by load, before anything starts.
*/
#ifndef SLUICE_PIPELINE_H_INCLUDED
#define SLUICE_PIPELINE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "sluice_export.h"
#include "sluice_error.h"
#include "sluice_curve.h"
#include "sluice_stage.h"
#include "sluice_reader.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Default bound on the end of a run (drain-timeout), in ms.
#define SLUICE_PIPELINE_DRAIN_MS  10000

typedef struct sluice_pipeline_t sluice_pipeline_t;

//  An empty pipeline. NULL when out of memory. The caller owns the result.
SLUICE_EXPORT sluice_pipeline_t *
    sluice_pipeline_new (void);

//  Defaults for the file's CURVE settings (what `sluice run --curve-*` gives): cert for the
//  buffers started here on tcp:// or ipc:// and for the actors connecting with CURVE; allow
//  or encrypt_only for those buffers; server_key for the buffers running elsewhere. Checked
//  and copied now, before load. SLUICE_EINVAL (error_text says why) when they are invalid.
SLUICE_EXPORT sluice_err_t
    sluice_pipeline_set_curve (sluice_pipeline_t *self, const sluice_curve_t *defaults);

//  Where a line per buffer goes once started (where it listens, with which key); NULL (the
//  default): nowhere.
SLUICE_EXPORT void
    sluice_pipeline_set_log (sluice_pipeline_t *self, FILE *log);

//  Load the pipeline from a file; relative paths in it (files, certificates) start at the
//  file's directory. SLUICE_EINVAL with error_text naming the file, the entry and the key at
//  fault; SLUICE_ENOMEM. One load per pipeline.
SLUICE_EXPORT sluice_err_t
    sluice_pipeline_load (sluice_pipeline_t *self, const char *path);

//  The same from text; relative paths start at `directory` (NULL: the current one). `name`
//  stands for the file in messages (NULL: "pipeline").
SLUICE_EXPORT sluice_err_t
    sluice_pipeline_load_text (sluice_pipeline_t *self, const char *text, const char *directory,
                               const char *name);

//  After load, before start: replace the transform of the stage called `stage` by a function
//  of yours (`user` handed to it). SLUICE_EINVAL when there is no such stage.
SLUICE_EXPORT sluice_err_t
    sluice_pipeline_set_transform (sluice_pipeline_t *self, const char *stage,
                                   sluice_stage_fn *transform, void *user);

//  After load, before start: the reader called `reader` hands each chunk to `sink` instead of
//  printing it (its format and raw keys are then unused). SLUICE_EINVAL when there is no such
//  reader.
SLUICE_EXPORT sluice_err_t
    sluice_pipeline_set_sink (sluice_pipeline_t *self, const char *reader,
                              sluice_reader_fn *sink, void *user);

//  Override the file's drain-timeout (ms, >= 0).
SLUICE_EXPORT void
    sluice_pipeline_set_drain_timeout (sluice_pipeline_t *self, int drain_ms);

//  Start the buffers (consumers before producers: nothing is written before someone is there
//  to take it), then the actors. On failure nothing runs and error_text says what failed.
SLUICE_EXPORT sluice_err_t
    sluice_pipeline_start (sluice_pipeline_t *self);

//  Once started: where the buffer called `name` can be reached from this process (a tcp
//  wildcard port resolved, a wildcard address as 127.0.0.1). NULL when there is no such
//  buffer. Owned by the pipeline.
SLUICE_EXPORT const char *
    sluice_pipeline_endpoint (sluice_pipeline_t *self, const char *name);

//  End the run early and gracefully (see above); returns once the pipeline took the order.
SLUICE_EXPORT sluice_err_t
    sluice_pipeline_stop (sluice_pipeline_t *self);

//  Wait until the run has ended (timeout_ms, SLUICE_FOREVER for no limit). Returns its result:
//  SLUICE_OK when every actor ended cleanly (a stop is a clean end), else the first failure
//  (SLUICE_ECLOSED: a writer or stage met a buffer closed under it; SLUICE_ETIMEOUT: the end
//  took longer than the drain timeout). While it runs: SLUICE_ETIMEOUT too, and
//  sluice_pipeline_finished says which.
SLUICE_EXPORT sluice_err_t
    sluice_pipeline_wait (sluice_pipeline_t *self, int timeout_ms);

//  True once the run has ended and wait has seen it.
SLUICE_EXPORT bool
    sluice_pipeline_finished (sluice_pipeline_t *self);

//  Why load, start or the run failed: one line per failure ("stage 'filter': ..."), "" when
//  nothing failed. Owned by the pipeline; valid until the next call on it.
SLUICE_EXPORT const char *
    sluice_pipeline_error_text (sluice_pipeline_t *self);

//  The underlying zactor_t, e.g. for zmq_poll with other sockets: readable when the run has
//  ended (then sluice_pipeline_wait (self, 0) returns its result). NULL before start.
SLUICE_EXPORT void *
    sluice_pipeline_actor_handle (sluice_pipeline_t *self);

//  Stop everything at once (nothing is drained) and free it. Sets *self_p to NULL.
SLUICE_EXPORT void
    sluice_pipeline_destroy (sluice_pipeline_t **self_p);

#ifdef __cplusplus
}
#endif
#endif
