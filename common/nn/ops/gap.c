/*
 * ops/gap.c - global average pooling node: [c, h, w] -> [c, 1, 1].
 *
 * Owned by common/nn. Kernels in nn/pool.c.
 */
#include "nn/op.h"

int nn_add_gap(nn_model_t *m, const char *name, int in)
{
    return nn_add_node(m, name, NN_GAP, 1, &in, NULL);
}

static int gap_infer(const nn_model_t *m, nn_node_t *nd)
{
    (void)m;
    nd->h = nd->w = 1;
    return 0;
}

static int gap_forward_node(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    const nn_node_t *src = &m->nodes[nd->in[0]];
    gap_forward(n, src->c, src->h * src->w, src->out, nd->out);
    return 0;
}

static int gap_backward_node(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    const nn_node_t *src = &m->nodes[nd->in[0]];
    if (nn_wants_grad(nd->in[0], o)) {
        int assign;
        float *dx = nn_grad_dst(m, nd->in[0], &assign);
        (assign ? gap_backward_assign : gap_backward)(n, src->c, src->h * src->w, nd->grad, dx);
    }
    return 0;
}

static double gap_flops(const nn_model_t *m, const nn_node_t *nd)
{
    (void)nd;
    return (double)nn_node_size(&m->nodes[nd->in[0]]);
}

const nn_op_def_t nn_op_gap = {
    .name = "gap",
    .pc = NN_PC_NONE,
    .sign = NN_SIGN_INPUTS,
    .infer = gap_infer,
    .forward = gap_forward_node,
    .backward = gap_backward_node,
    .flops = gap_flops,
    .bwd_reads = NN_READS_NOTHING,
};
