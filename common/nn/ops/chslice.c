/*
 * ops/chslice.c - channel slice: out_c consecutive channels of the input from
 * channel ch_start (ShuffleNet's channel split, ONNX Slice or Split along the
 * channel axis).
 *
 * Owned by common/nn. A copy of whole channel planes: the positions keep
 * their input's classes and sign.
 */
#include "nn/op.h"

#include <stdio.h>
#include <string.h>

#include "sc.h"

static int chslice_infer(const nn_model_t *m, nn_node_t *nd)
{
    const nn_node_t *src = &m->nodes[nd->in[0]];
    if (nd->n_in != 1 || nd->ch_start < 0 || nd->out_c < 1 || nd->ch_start + nd->out_c > src->c) {
        SC_ERROR("chslice '%s': channels %d..%d are not inside the input's %d", nd->name,
                 nd->ch_start, nd->ch_start + nd->out_c - 1, src->c);
        return SC_ERR_SHAPE;
    }
    nd->c = nd->out_c;
    return 0;
}

static int chslice_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    const nn_node_t *src = &m->nodes[nd->in[0]];
    const size_t hw = (size_t)nd->h * nd->w, part = (size_t)nd->c * hw;
    for (int b = 0; b < n; b++)
        memcpy(nd->out + b * part, src->out + ((size_t)b * src->c + nd->ch_start) * hw,
               sizeof(float) * part);
    return 0;
}

static int chslice_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    const int src_id = nd->in[0];
    if (!nn_wants_grad(src_id, o))
        return 0;
    const int c_in = m->nodes[src_id].c;
    const size_t hw = (size_t)nd->h * nd->w, part = (size_t)nd->c * hw;
    float *dx = nn_grad_acc(m, src_id);
    for (int b = 0; b < n; b++) {
        float *dst = dx + ((size_t)b * c_in + nd->ch_start) * hw;
        const float *dy = nd->grad + b * part;
        for (size_t j = 0; j < part; j++)
            dst[j] += dy[j];
    }
    return 0;
}

static void chslice_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    snprintf(buf, len, " out_c=%d start=%d", nd->out_c, nd->ch_start);
}

const nn_op_def_t nn_op_chslice = {
    .name = "chslice",
    .pc = NN_PC_BORROW,
    .sign = NN_SIGN_INPUTS,
    .infer = chslice_infer,
    .forward = chslice_forward,
    .backward = chslice_backward,
    .bwd_reads = NN_READS_NOTHING,
    .write_attrs = chslice_write_attrs,
};
