/*
 * ops/mul.c - elementwise product of two maps: equal shapes (SiLU exported as
 * x * sigmoid(x)), or a per-channel gate [c, 1, 1] broadcast over the
 * positions of a [c, h, w] map (squeeze-and-excitation). Input 0 is the full
 * map, input 1 the map or the gate.
 *
 * Owned by common/nn. A gate is one value per channel at every position, so
 * the position classes are those of the full-size inputs (model.c leaves
 * broadcast inputs out of the combination).
 */
#include "nn/op.h"

#include "sc.h"

static int mul_infer(const nn_model_t *m, nn_node_t *nd)
{
    if (nd->n_in != 2) {
        SC_ERROR("mul '%s': takes two inputs, not %d", nd->name, nd->n_in);
        return SC_ERR_SHAPE;
    }
    const nn_node_t *na = &m->nodes[nd->in[0]], *nb = &m->nodes[nd->in[1]];
    int same = na->c == nb->c && na->h == nb->h && na->w == nb->w;
    int gate = na->c == nb->c && nb->h == 1 && nb->w == 1;
    if (!same && !gate) {
        SC_ERROR("mul '%s': shapes %dx%dx%d and %dx%dx%d are neither equal nor a per-channel "
                 "gate", nd->name, na->c, na->h, na->w, nb->c, nb->h, nb->w);
        return SC_ERR_SHAPE;
    }
    return 0;
}

static int mul_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    const nn_node_t *na = &m->nodes[nd->in[0]], *nb = &m->nodes[nd->in[1]];
    const size_t hw = (size_t)nd->h * nd->w, bstride = nb->h * nb->w == 1 ? 0 : 1;
    const size_t planes = (size_t)n * nd->c;
    for (size_t p = 0; p < planes; p++) {
        const float *a = na->out + p * hw, *b = nb->out + (bstride ? p * hw : p);
        float *y = nd->out + p * hw;
        for (size_t j = 0; j < hw; j++)
            y[j] = a[j] * b[j * bstride];
    }
    return 0;
}

static int mul_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    const int ia = nd->in[0], ib = nd->in[1];
    const nn_node_t *na = &m->nodes[ia], *nb = &m->nodes[ib];
    const size_t hw = (size_t)nd->h * nd->w, bstride = nb->h * nb->w == 1 ? 0 : 1;
    const size_t planes = (size_t)n * nd->c;
    float *da = nn_wants_grad(ia, o) ? nn_grad_acc(m, ia) : NULL;
    float *db = nn_wants_grad(ib, o) ? nn_grad_acc(m, ib) : NULL;
    for (size_t p = 0; p < planes; p++) {
        const float *a = na->out + p * hw, *b = nb->out + (bstride ? p * hw : p);
        const float *dy = nd->grad + p * hw;
        if (da)
            for (size_t j = 0; j < hw; j++)
                da[p * hw + j] += dy[j] * b[j * bstride];
        if (db && bstride) {
            for (size_t j = 0; j < hw; j++)
                db[p * hw + j] += dy[j] * a[j];
        } else if (db) {
            double sum = 0.0;
            for (size_t j = 0; j < hw; j++)
                sum += (double)dy[j] * a[j];
            db[p] += (float)sum;
        }
    }
    return 0;
}

static double mul_flops(const nn_model_t *m, const nn_node_t *nd)
{
    (void)m;
    return (double)nn_node_size(nd);
}

const nn_op_def_t nn_op_mul = {
    .name = "mul",
    .pc = NN_PC_COMBINE,
    .sign = NN_SIGN_ANY,
    .infer = mul_infer,
    .forward = mul_forward,
    .backward = mul_backward,
    .flops = mul_flops,
    .bwd_reads = NN_READS_INPUTS,
};
