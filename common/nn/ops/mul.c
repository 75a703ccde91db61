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
    const size_t hw = (size_t)nd->h * nd->w, planes = (size_t)n * nd->c;
    if (nb->h * nb->w != 1) {
        const size_t count = planes * hw;
        for (size_t j = 0; j < count; j++)
            nd->out[j] = na->out[j] * nb->out[j];
        return 0;
    }
    for (size_t p = 0; p < planes; p++) {
        const float *a = na->out + p * hw, g = nb->out[p];
        float *y = nd->out + p * hw;
        for (size_t j = 0; j < hw; j++)
            y[j] = a[j] * g;
    }
    return 0;
}

/* sum of dy[j] * a[j] in double, in 8 interleaved partial sums (a fixed order). */
static double mul_dot(const float *dy, const float *a, size_t hw)
{
    double part[8] = {0};
    size_t j = 0;
    for (; j + 8 <= hw; j += 8)
        for (int k = 0; k < 8; k++)
            part[k] += (double)dy[j + k] * a[j + k];
    for (; j < hw; j++)
        part[j % 8] += (double)dy[j] * a[j];
    return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

static int mul_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    const int ia = nd->in[0], ib = nd->in[1];
    const nn_node_t *na = &m->nodes[ia], *nb = &m->nodes[ib];
    const size_t hw = (size_t)nd->h * nd->w, planes = (size_t)n * nd->c;
    /* A first contribution overwrites (no zeroing pass); with a == b (x * x) the second
     * buffer is the first, already written, so it accumulates. */
    int assign_a = 0, assign_b = 0;
    float *da = nn_wants_grad(ia, o) ? nn_grad_dst(m, ia, &assign_a) : NULL;
    float *db = nn_wants_grad(ib, o) ? nn_grad_dst(m, ib, &assign_b) : NULL;
    const float *dy = nd->grad;
    if (nb->h * nb->w != 1) {
        const size_t count = planes * hw;
        if (da && assign_a)
            for (size_t j = 0; j < count; j++)
                da[j] = dy[j] * nb->out[j];
        else if (da)
            for (size_t j = 0; j < count; j++)
                da[j] += dy[j] * nb->out[j];
        if (db && assign_b)
            for (size_t j = 0; j < count; j++)
                db[j] = dy[j] * na->out[j];
        else if (db)
            for (size_t j = 0; j < count; j++)
                db[j] += dy[j] * na->out[j];
        return 0;
    }
    for (size_t p = 0; p < planes; p++) {
        const float *a = na->out + p * hw, *dyp = dy + p * hw, g = nb->out[p];
        if (da) {
            float *dap = da + p * hw;
            if (assign_a)
                for (size_t j = 0; j < hw; j++)
                    dap[j] = dyp[j] * g;
            else
                for (size_t j = 0; j < hw; j++)
                    dap[j] += dyp[j] * g;
        }
        if (db)
            db[p] = (assign_b ? 0.0f : db[p]) + (float)mul_dot(dyp, a, hw);
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
