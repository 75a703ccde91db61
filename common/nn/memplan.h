/*
 * memplan.h - which activation and gradient buffers of a prepared model share
 * memory (a liveness plan over the topological order).
 *
 * Owned by common/nn; nn_model_prepare builds the plan and allocates its
 * buffers. The mode (model.h, nn_plan_mode) says which passes the plan must
 * serve: NN_PLAN_TRAIN keeps what parameter gradients and training backward
 * read; NN_PLAN_INFER keeps only what the input gradient of an inference
 * pass reads.
 */
#ifndef NN_MEMPLAN_H
#define NN_MEMPLAN_H

#include <stddef.h>

#include "nn/model.h"

typedef struct nn_memplan {
    int n_bufs;
    size_t *buf_floats;   /* [n_bufs] size of each shared buffer */
    int *out_buf;         /* [n_nodes] buffer holding each node's output; -1 for a
                           * concat without buffers (nn/concat_view.h) */
    int *grad_buf;        /* [n_nodes] buffer holding each node's gradient; -1 as out_buf */
    size_t total_floats;  /* sum of buf_floats */
} nn_memplan_t;

/* Plan the buffers of m for batches of `batch` samples. Fills *plan (free it
 * with nn_memplan_free). Returns 0 or SC_ERR_NOMEM. */
int nn_memplan_build(const nn_model_t *m, int batch, nn_plan_mode mode, nn_memplan_t *plan);
void nn_memplan_free(nn_memplan_t *plan);
/* Does node id own its output buffer (readable after the pass)? */
int nn_memplan_pinned(const nn_model_t *m, int id);
/* Does node id own its gradient buffer (readable after the backward)? */
int nn_memplan_pinned_grad(const nn_model_t *m, int id);
/* A 64-byte aligned, uninitialized buffer of `floats` floats; free with sc_free. */
void *nn_alloc_floats(size_t floats);

#endif
