/*
 * ops/dense.c - fully connected node: y[n, out] = x[n, in] W[out, in]^T + b,
 * over the flattened input.
 *
 * Owned by common/nn. Kernels in nn/dense.c.
 */
#include "nn/op.h"

#include <stdio.h>
#include <string.h>

#include "sc.h"

int nn_add_dense(nn_model_t *m, const char *name, int in, int out, int bias)
{
    nn_node_t a = {.out_c = out, .has_bias = bias};
    return nn_add_node(m, name, NN_DENSE, 1, &in, &a);
}

static int dense_infer(const nn_model_t *m, nn_node_t *nd)
{
    (void)m;
    if (nd->out_c < 1)
        return SC_ERR_SHAPE;
    nd->c = nd->out_c;
    nd->h = nd->w = 1;
    return 0;
}

static int dense_param_shape(const nn_model_t *m, const nn_node_t *nd, nn_param_kind k,
                             size_t dims[4])
{
    if (k == NN_P_WEIGHT) {
        dims[0] = (size_t)nd->out_c;
        dims[1] = nn_node_size(&m->nodes[nd->in[0]]);
        return 2;
    }
    if (k == NN_P_BIAS && nd->has_bias) {
        dims[0] = (size_t)nd->out_c;
        return 1;
    }
    return 0;
}

static void dense_init(nn_model_t *m, int id, rng_stream_t *rs, int keep_bn_stats)
{
    const nn_node_t *nd = &m->nodes[id];
    size_t count;
    float *W = nn_param(m, id, NN_P_WEIGHT, &count);
    nn_init_weights(W, count, nd->init, (double)nn_node_size(&m->nodes[nd->in[0]]), nd->out_c,
                    rs);
    float *b = nn_param(m, id, NN_P_BIAS, &count);
    if (b)
        memset(b, 0, sizeof(float) * count);
    (void)keep_bn_stats;
}

static int dense_forward_node(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    const nn_node_t *src = &m->nodes[nd->in[0]];
    dense_forward(n, (int)nn_node_size(src), nd->out_c, src->out,
                  nn_param(m, id, NN_P_WEIGHT, NULL), nn_param(m, id, NN_P_BIAS, NULL), nd->out);
    return 0;
}

static int dense_backward_node(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    const int src_id = nd->in[0];
    const nn_node_t *src = &m->nodes[src_id];
    dense_backward(n, (int)nn_node_size(src), nd->out_c, src->out,
                   nn_param(m, id, NN_P_WEIGHT, NULL), nd->grad,
                   nn_wants_grad(src_id, o) ? nn_grad_acc(m, src_id) : NULL,
                   o->param_grads ? nn_param_grad(m, id, NN_P_WEIGHT) : NULL,
                   o->param_grads ? nn_param_grad(m, id, NN_P_BIAS) : NULL);
    return 0;
}

static double dense_flops(const nn_model_t *m, const nn_node_t *nd)
{
    return 2.0 * nd->out_c * nn_node_size(&m->nodes[nd->in[0]]);
}

static void dense_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    snprintf(buf, len, " out_c=%d bias=%d init=%d", nd->out_c, nd->has_bias, (int)nd->init);
}

const nn_op_def_t nn_op_dense = {
    .name = "dense",
    .pc = NN_PC_NONE,
    .sign = NN_SIGN_ANY,
    .infer = dense_infer,
    .param_shape = dense_param_shape,
    .init = dense_init,
    .forward = dense_forward_node,
    .backward = dense_backward_node,
    .flops = dense_flops,
    .write_attrs = dense_write_attrs,
    .bwd_reads = NN_READS_NOTHING | NN_READS_INPUTS_PARAM,
};
