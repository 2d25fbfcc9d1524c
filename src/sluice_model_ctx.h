/*  sluice_model_ctx.h - how a model running in the server waits on several things at once.
    Internal: for models built into the library (the exec model).
*/
#ifndef SLUICE_MODEL_CTX_H_INCLUDED
#define SLUICE_MODEL_CTX_H_INCLUDED

#include <czmq.h>
#include "sluice_model.h"

//  As zmq_poll on `items` (count may be 0; timeout_ms < 0: no limit), while watching the
//  server's orders: returns what zmq_poll returns for the items (>= 0), or -1 when the model
//  must stop at once (cancelled, or the server is being destroyed). Without a context (NULL):
//  a plain zmq_poll.
int
    sluice_model_ctx_poll (sluice_model_ctx_t *ctx, zmq_pollitem_t *items, int count,
                           long timeout_ms);

#endif
