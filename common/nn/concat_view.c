/*
 * concat_view.c - channel concatenations without a buffer of their own
 * (concat_view.h).
 *
 * Owned by common/nn.
 */
#include "nn/concat_view.h"

#include "nn/memplan.h"
#include "nn/op.h"

int nn_cview_eligible(const nn_model_t *m, int id)
{
    const nn_node_t *nd = &m->nodes[id];
    if (nd->op != NN_CONCAT || nd->rank || nn_memplan_pinned(m, id) ||
        nn_memplan_pinned_grad(m, id))
        return 0;
    for (int k = 0; k < nd->n_in; k++) {
        const nn_node_t *src = &m->nodes[nd->in[k]];
        if (nd->in[k] == 0 || src->op == NN_CONCAT || src->rank)
            return 0;
    }
    int reader = -1;
    for (int j = id + 1; j < m->n_nodes; j++) {
        const nn_node_t *rd = &m->nodes[j];
        for (int k = 0; k < rd->n_in; k++) {
            if (rd->in[k] != id)
                continue;
            if (reader >= 0 || rd->op != NN_BN)
                return 0;
            reader = j;
        }
    }
    if (reader < 0)
        return 0;
    /* The copying backward adds the concat's gradient into its inputs at the
     * concat's step; the view adds at the BN's. No reader of an input in
     * between, and the sums run in the same order. */
    for (int t = id + 1; t < reader; t++) {
        const nn_node_t *rd = &m->nodes[t];
        for (int k = 0; k < rd->n_in; k++)
            for (int q = 0; q < nd->n_in; q++)
                if (rd->in[k] == nd->in[q])
                    return 0;
    }
    return 1;
}

void nn_cview_bind(nn_model_t *m, int src, const float **x, float **dx, size_t *step,
                   int *assign)
{
    const nn_node_t *nd = &m->nodes[src];
    const size_t hw = (size_t)nd->h * nd->w;
    if (!nd->cview) {
        float *g = dx ? nn_grad_dst(m, src, assign) : NULL;
        for (int ch = 0; ch < nd->c; ch++) {
            x[ch] = nd->out + ch * hw;
            step[ch] = (size_t)nd->c * hw;
            if (dx)
                dx[ch] = g + ch * hw;
        }
        return;
    }
    int ch = 0;
    for (int k = 0; k < nd->n_in; k++) {
        const nn_node_t *in = &m->nodes[nd->in[k]];
        /* zeroed on first use: 0 + dy, the copying backward's bits */
        float *g = dx ? nn_grad_acc(m, nd->in[k]) : NULL;
        for (int c = 0; c < in->c; c++, ch++) {
            x[ch] = in->out + c * hw;
            step[ch] = (size_t)in->c * hw;
            if (dx)
                dx[ch] = g + c * hw;
        }
    }
    if (assign)
        *assign = 0;
}
