/*
 * ops/relu.c - ReLU node, with the guided backward of Springenberg et al.
 *
 * Owned by common/nn. Kernels in nn/activation.c. Guided Backprop
 * (REFERENCE: gbp) passes only positive upstream gradients through ReLUs.
 * A ReLU right after a BN read by nothing else (DenseNet's pre-activations)
 * computes the BN's input gradient itself in inference passes
 * (nn_bn_relu_backward): the BN's gradient is never written, and the engine
 * skips the BN's backward.
 */
#include "nn/op.h"

#include "nn/fuse.h"
#include "nn/memplan.h"
#include "sc.h"

int nn_add_relu(nn_model_t *m, const char *name, int in)
{
    return nn_add_node(m, name, NN_RELU, 1, &in, NULL);
}

static int relu_forward_node(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    if (m->nodes[nd->in[0]].relu_fwd) /* the add or BN before it applied this ReLU */
        return 0;
    relu_forward((size_t)n * nn_node_size(nd), m->nodes[nd->in[0]].out, nd->out);
    return 0;
}

int nn_add_relu_pair(const nn_model_t *m, int id)
{
    if (id < 2 || id >= m->n_nodes)
        return 0;
    const nn_node_t *nd = &m->nodes[id];
    if (nd->op != NN_RELU || nd->n_in != 1 || nd->rank)
        return 0;
    const int a = nd->in[0];
    const nn_node_t *add = &m->nodes[a];
    if (add->op != NN_ADD || add->n_in != 2 || add->in[0] == add->in[1] ||
        nn_memplan_pinned_grad(m, a))
        return 0;
    for (int q = 0; q < 2; q++)
        if (m->nodes[add->in[q]].op == NN_CONCAT)
            return 0;
    for (int j = a + 1; j < m->n_nodes; j++)
        for (int k = 0; k < m->nodes[j].n_in; k++)
            if (m->nodes[j].in[k] == a && j != id)
                return 0;
    return 1;
}

/* g0 (and g1 unless NULL) get 0 + v or add v, v = dy where the ReLU passes
 * (and dy > 0 when guided), +0 elsewhere. Always inlined with constant flags,
 * so each case is a plain loop the compiler vectorizes. */
static inline __attribute__((always_inline)) void add_relu_loop(
    size_t count, const float *restrict y, const float *restrict dy, float *restrict g0,
    float *restrict g1, int guided, int a0, int a1)
{
    for (size_t i = 0; i < count; i++) {
        const float v = (y[i] > 0.0f && (!guided || dy[i] > 0.0f)) ? dy[i] : 0.0f;
        g0[i] = a0 ? 0.0f + v : g0[i] + v;
        if (g1)
            g1[i] = a1 ? 0.0f + v : g1[i] + v;
    }
}

/* The same with input gradients computed in place over dy (the memory plan
 * gives them the ReLU's gradient buffer, nn/memplan.h): dy becomes 0 + v, and
 * g (unless NULL, a separate buffer) gets 0 + v or adds v. */
static inline __attribute__((always_inline)) void add_relu_inplace_loop(
    size_t count, const float *restrict y, float *restrict dy, float *restrict g, int guided,
    int a)
{
    for (size_t i = 0; i < count; i++) {
        const float v = (y[i] > 0.0f && (!guided || dy[i] > 0.0f)) ? dy[i] : 0.0f;
        if (g)
            g[i] = a ? 0.0f + v : g[i] + v;
        dy[i] = 0.0f + v;
    }
}

/* The add's backward inside the ReLU's (nn_add_relu_pair): each input
 * gradient gets 0 + g or adds g, g = the ReLU's gradient where it passes, +0
 * elsewhere: the bits of the ReLU's assigned output followed by add_backward,
 * in one pass over y and dy. */
static int add_relu_backward(nn_model_t *m, const nn_node_t *nd, int n, const nn_backward_opts_t *o,
                             int guided)
{
    const nn_node_t *add = &m->nodes[nd->in[0]];
    const size_t count = (size_t)n * nn_node_size(nd);
    const float *y = nd->out, *dy = nd->grad;
    float *g[2] = {NULL, NULL};
    int a[2] = {0, 0};
    for (int q = 0; q < 2; q++)
        if (nn_wants_grad(add->in[q], o))
            g[q] = nn_grad_dst(m, add->in[q], &a[q]);
    if (!g[0]) { /* at most one input wants a gradient: it goes first */
        g[0] = g[1], a[0] = a[1];
        g[1] = NULL;
    }
    if (!g[0])
        return 0;
    if (g[0] == dy || g[1] == dy) { /* in place: dy's buffer is no longer the ReLU's */
        const int q = g[0] == dy ? 0 : 1;
        float *o = g[1 - q] == dy ? NULL : g[1 - q];
        if (!a[q] || (g[1 - q] == dy && !a[1 - q])) {
            SC_ERROR("relu '%s': an input gradient in place of its own was already written",
                     nd->name);
            return SC_ERR_ARG;
        }
        float *d = nd->grad;
        const int ga = (guided ? 2 : 0) + (a[1 - q] ? 1 : 0);
        if (!o && guided)
            add_relu_inplace_loop(count, y, d, NULL, 1, 0);
        else if (!o)
            add_relu_inplace_loop(count, y, d, NULL, 0, 0);
        else if (ga == 0)
            add_relu_inplace_loop(count, y, d, o, 0, 0);
        else if (ga == 1)
            add_relu_inplace_loop(count, y, d, o, 0, 1);
        else if (ga == 2)
            add_relu_inplace_loop(count, y, d, o, 1, 0);
        else
            add_relu_inplace_loop(count, y, d, o, 1, 1);
        return 0;
    }
    const int k = (guided ? 4 : 0) + (a[0] ? 2 : 0) + (a[1] ? 1 : 0);
    if (g[1]) {
        switch (k) {
        case 0: add_relu_loop(count, y, dy, g[0], g[1], 0, 0, 0); break;
        case 1: add_relu_loop(count, y, dy, g[0], g[1], 0, 0, 1); break;
        case 2: add_relu_loop(count, y, dy, g[0], g[1], 0, 1, 0); break;
        case 3: add_relu_loop(count, y, dy, g[0], g[1], 0, 1, 1); break;
        case 4: add_relu_loop(count, y, dy, g[0], g[1], 1, 0, 0); break;
        case 5: add_relu_loop(count, y, dy, g[0], g[1], 1, 0, 1); break;
        case 6: add_relu_loop(count, y, dy, g[0], g[1], 1, 1, 0); break;
        default: add_relu_loop(count, y, dy, g[0], g[1], 1, 1, 1); break;
        }
    } else {
        switch (k & 6) {
        case 0: add_relu_loop(count, y, dy, g[0], NULL, 0, 0, 0); break;
        case 2: add_relu_loop(count, y, dy, g[0], NULL, 0, 1, 0); break;
        case 4: add_relu_loop(count, y, dy, g[0], NULL, 1, 0, 0); break;
        default: add_relu_loop(count, y, dy, g[0], NULL, 1, 1, 0); break;
        }
    }
    return 0;
}

static int relu_backward_mode(nn_model_t *m, int id, int n, const nn_backward_opts_t *o,
                              int guided)
{
    nn_node_t *nd = &m->nodes[id];
    const int src_id = nd->in[0];
    /* the add before it too, when the add's backward would run in this pass */
    if (nd->add_relu && o->down_to < src_id)
        return add_relu_backward(m, nd, n, o, guided);
    /* through the BN before it in the same pass, unless that BN was folded into
     * a convolution (its gradient is what the convolution reads) */
    if (nd->bn_relu && !o->training && !o->param_grads &&
        !(m->fused_pass && m->fuse && m->fuse->folded_into[src_id] >= 0))
        return nn_bn_relu_backward(m, id, n, o, guided);
    if (nn_wants_grad(src_id, o)) {
        int assign;
        float *dxs = nn_grad_dst(m, src_id, &assign);
        relu_backward((size_t)n * nn_node_size(nd), nd->out, nd->grad, dxs, guided, assign);
    }
    return 0;
}

static int relu_backward_node(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    return relu_backward_mode(m, id, n, o, 0);
}

static int relu_backward_guided(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    return relu_backward_mode(m, id, n, o, 1);
}

const nn_op_def_t nn_op_relu = {
    .name = "relu",
    .pc = NN_PC_BORROW,
    .sign = NN_SIGN_NONNEG,
    .forward = relu_forward_node,
    .backward = relu_backward_node,
    .backward_guided = relu_backward_guided,
    .bwd_reads = NN_READS_OUTPUT,
    .inplace = 1,
};
