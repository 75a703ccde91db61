/*
 * ops/shuffle.c - channel shuffle (ShuffleNet): the c channels seen as a
 * [groups, c/groups] matrix are transposed, so output channel j*groups + i is
 * input channel i*(c/groups) + j. PyTorch writes it as view [N, g, c/g, H, W],
 * transpose(1, 2), view [N, c, H, W]; the ONNX importer maps that
 * Reshape-Transpose-Reshape to this node.
 *
 * Owned by common/nn. A permutation of whole channel planes: the positions
 * keep their input's classes and sign.
 */
#include "nn/op.h"

#include <stdio.h>
#include <string.h>

#include "sc.h"

static int shuffle_infer(const nn_model_t *m, nn_node_t *nd)
{
    const nn_node_t *src = &m->nodes[nd->in[0]];
    if (nd->n_in != 1 || nd->groups < 1 || src->c % nd->groups) {
        SC_ERROR("shuffle '%s': %d groups do not divide %d channels", nd->name, nd->groups,
                 src->c);
        return SC_ERR_SHAPE;
    }
    return 0;
}

/* Input channel of output channel k. */
static inline int shuffle_source(int k, int c, int groups)
{
    const int per_group = c / groups;
    return (k % groups) * per_group + k / groups;
}

static int shuffle_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    const nn_node_t *src = &m->nodes[nd->in[0]];
    const size_t hw = (size_t)nd->h * nd->w, size = nn_node_size(nd);
    for (int b = 0; b < n; b++)
        for (int k = 0; k < nd->c; k++)
            memcpy(nd->out + b * size + k * hw,
                   src->out + b * size + (size_t)shuffle_source(k, nd->c, nd->groups) * hw,
                   sizeof(float) * hw);
    return 0;
}

static int shuffle_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    const int src_id = nd->in[0];
    if (!nn_wants_grad(src_id, o))
        return 0;
    const size_t hw = (size_t)nd->h * nd->w, size = nn_node_size(nd);
    float *dx = nn_grad_acc(m, src_id);
    for (int b = 0; b < n; b++) {
        for (int k = 0; k < nd->c; k++) {
            float *dst = dx + b * size + (size_t)shuffle_source(k, nd->c, nd->groups) * hw;
            const float *dy = nd->grad + b * size + k * hw;
            for (size_t j = 0; j < hw; j++)
                dst[j] += dy[j];
        }
    }
    return 0;
}

static void shuffle_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    snprintf(buf, len, " groups=%d", nd->groups);
}

const nn_op_def_t nn_op_shuffle = {
    .name = "shuffle",
    .pc = NN_PC_BORROW,
    .sign = NN_SIGN_INPUTS,
    .infer = shuffle_infer,
    .forward = shuffle_forward,
    .backward = shuffle_backward,
    .bwd_reads = NN_READS_NOTHING,
    .write_attrs = shuffle_write_attrs,
};
