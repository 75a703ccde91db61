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
#include "sc.h"

int nn_add_relu(nn_model_t *m, const char *name, int in)
{
    return nn_add_node(m, name, NN_RELU, 1, &in, NULL);
}

static int relu_forward_node(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    relu_forward((size_t)n * nn_node_size(nd), m->nodes[nd->in[0]].out, nd->out);
    return 0;
}

static int relu_backward_mode(nn_model_t *m, int id, int n, const nn_backward_opts_t *o,
                              int guided)
{
    nn_node_t *nd = &m->nodes[id];
    const int src_id = nd->in[0];
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
