/*  sluice_input.c - the public face of the input splitter (src/sluice_split.c). */
#include "sluice_input.h"
#include "sluice_split.h"
#include <stdlib.h>

struct sluice_input_t {
    sluice_split_t split;
};

sluice_input_t *
sluice_input_new (int fd, size_t chunk_bytes)
{
    sluice_input_t *self = (sluice_input_t *) calloc (1, sizeof *self);
    if (self)
        sluice_split_init (&self->split, fd, chunk_bytes);
    return self;
}

void
sluice_input_destroy (sluice_input_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sluice_split_fini (&(*self_p)->split);
    free (*self_p);
    *self_p = NULL;
}

bool
sluice_input_ready (sluice_input_t *self)
{
    return sluice_split_ready (&self->split);
}

sluice_input_result_t
sluice_input_next (sluice_input_t *self, void *interrupt, const char **data, size_t *size)
{
    int rc = sluice_split_next (&self->split, interrupt, data, size);
    return rc == 1 ? SLUICE_INPUT_CHUNK : rc == 0 ? SLUICE_INPUT_END
         : rc == -2 ? SLUICE_INPUT_INTERRUPTED : SLUICE_INPUT_ERROR;
}
