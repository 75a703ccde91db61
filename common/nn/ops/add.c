/*
 * ops/add.c - elementwise sum of two maps of equal shape (residual joins).
 *
 * Owned by common/nn. An add whose only reader is a ReLU computing in place
 * over its output (nn_node_t.relu_fwd) applies that ReLU itself: one pass
 * over the map instead of two, and the ReLU's forward does nothing.
 */
#include "nn/op.h"

#include "sc.h"

int nn_add_add(nn_model_t *m, const char *name, int a, int b)
{
    int in[2] = {a, b};
    return nn_add_node(m, name, NN_ADD, 2, in, NULL);
}

static int add_infer(const nn_model_t *m, nn_node_t *nd)
{
    if (nd->n_in != 2) {
        SC_ERROR("add '%s': takes two inputs, not %d", nd->name, nd->n_in);
        return SC_ERR_SHAPE;
    }
    const nn_node_t *na = &m->nodes[nd->in[0]], *nb = &m->nodes[nd->in[1]];
    if (na->c != nb->c || na->h != nb->h || na->w != nb->w) {
        SC_ERROR("add '%s': shapes %dx%dx%d and %dx%dx%d differ", nd->name, na->c, na->h, na->w,
                 nb->c, nb->h, nb->w);
        return SC_ERR_SHAPE;
    }
    return 0;
}

static int add_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    const size_t count = (size_t)n * nn_node_size(nd);
    const float *a = m->nodes[nd->in[0]].out, *b = m->nodes[nd->in[1]].out;
    if (nd->relu_fwd) { /* the ReLU after it, in the same pass (relu_forward's bits) */
        for (size_t k = 0; k < count; k++) {
            const float s = a[k] + b[k];
            nd->out[k] = s > 0.0f ? s : 0.0f;
        }
        return 0;
    }
    for (size_t k = 0; k < count; k++)
        nd->out[k] = a[k] + b[k];
    return 0;
}

static int add_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    const size_t count = (size_t)n * nn_node_size(nd);
    for (int k = 0; k < 2; k++) {
        int in = nd->in[k];
        if (!nn_wants_grad(in, o))
            continue;
        int assign;
        float *g = nn_grad_dst(m, in, &assign);
        if (assign) /* 0 + dy: the bits of adding onto zeros, without zeroing first */
            for (size_t j = 0; j < count; j++)
                g[j] = 0.0f + nd->grad[j];
        else
            for (size_t j = 0; j < count; j++)
                g[j] += nd->grad[j];
    }
    return 0;
}

static double add_flops(const nn_model_t *m, const nn_node_t *nd)
{
    (void)m;
    return (double)nn_node_size(nd);
}

const nn_op_def_t nn_op_add = {
    .name = "add",
    .pc = NN_PC_COMBINE,
    .sign = NN_SIGN_INPUTS,
    .infer = add_infer,
    .forward = add_forward,
    .backward = add_backward,
    .flops = add_flops,
    .bwd_reads = NN_READS_NOTHING,
    .inplace = 1,
};
