/*
 * ops/concat.c - channel concatenation node: inputs of equal h x w stacked
 * along c, in input order. A concat the memory plan made a view
 * (nn/concat_view.h) has no buffers: its reader reads its inputs, and both
 * passes here do nothing.
 *
 * Owned by common/nn.
 */
#include "nn/op.h"

#include <string.h>

#include "sc.h"

int nn_add_concat(nn_model_t *m, const char *name, int n_in, const int *in)
{
    return nn_add_node(m, name, NN_CONCAT, n_in, in, NULL);
}

static int concat_infer(const nn_model_t *m, nn_node_t *nd)
{
    int c = 0;
    for (int i = 0; i < nd->n_in; i++) {
        const nn_node_t *src = &m->nodes[nd->in[i]];
        if (src->h != nd->h || src->w != nd->w) {
            SC_ERROR("concat '%s': input '%s' is %dx%d, expected %dx%d", nd->name, src->name,
                     src->h, src->w, nd->h, nd->w);
            return SC_ERR_SHAPE;
        }
        c += src->c;
    }
    nd->c = c;
    return 0;
}

static int concat_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    if (nd->cview)
        return 0;
    size_t hw = (size_t)nd->h * nd->w, off = 0;
    for (int k = 0; k < nd->n_in; k++) {
        const nn_node_t *in = &m->nodes[nd->in[k]];
        size_t part = (size_t)in->c * hw;
        for (int b = 0; b < n; b++)
            memcpy(nd->out + b * nn_node_size(nd) + off, in->out + b * part,
                   sizeof(float) * part);
        off += part;
    }
    return 0;
}

static int concat_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    if (nd->cview)
        return 0;
    size_t hw = (size_t)nd->h * nd->w, off = 0;
    for (int k = 0; k < nd->n_in; k++) {
        int in = nd->in[k];
        size_t part = (size_t)m->nodes[in].c * hw;
        if (nn_wants_grad(in, o)) {
            int assign;
            float *g = nn_grad_dst(m, in, &assign);
            for (int b = 0; b < n; b++) {
                const float *d = nd->grad + b * nn_node_size(nd) + off;
                float *t = g + b * part;
                if (assign) /* 0 + dy: the bits of adding onto zeros, without zeroing first */
                    for (size_t j = 0; j < part; j++)
                        t[j] = 0.0f + d[j];
                else
                    for (size_t j = 0; j < part; j++)
                        t[j] += d[j];
            }
        }
        off += part;
    }
    return 0;
}

const nn_op_def_t nn_op_concat = {
    .name = "concat",
    .pc = NN_PC_COMBINE,
    .sign = NN_SIGN_INPUTS,
    .infer = concat_infer,
    .forward = concat_forward,
    .backward = concat_backward,
    .bwd_reads = NN_READS_NOTHING,
};
