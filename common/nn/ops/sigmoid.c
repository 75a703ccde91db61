/*
 * ops/sigmoid.c - logistic sigmoid, elementwise.
 *
 * Owned by common/nn. Kernels in nn/activation.c.
 */
#include "nn/op.h"

int nn_add_sigmoid(nn_model_t *m, const char *name, int in)
{
    return nn_add_node(m, name, NN_SIGMOID, 1, &in, NULL);
}

static int sigmoid_forward_node(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    sigmoid_forward((size_t)n * nn_node_size(nd), m->nodes[nd->in[0]].out, nd->out);
    return 0;
}

static int sigmoid_backward_node(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    if (nn_wants_grad(nd->in[0], o))
        sigmoid_backward((size_t)n * nn_node_size(nd), nd->out, nd->grad,
                         nn_grad_acc(m, nd->in[0]));
    return 0;
}

const nn_op_def_t nn_op_sigmoid = {
    .name = "sigmoid",
    .pc = NN_PC_BORROW,
    .sign = NN_SIGN_NONNEG,
    .squashes_logits = 1,
    .forward = sigmoid_forward_node,
    .backward = sigmoid_backward_node,
    .bwd_reads = NN_READS_OUTPUT,
};
