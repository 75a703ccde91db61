/*
 * ops/pool.c - max and average pooling nodes (one family: same attributes,
 * same window, same model-file line).
 *
 * Owned by common/nn. Kernels in nn/pool.c. Max pooling keeps the argmax of
 * each window for backward (first maximum in scan order, nn/layers.h). An
 * average pool commuted with the 1x1 convolution after it (nn/fuse.h) is
 * computed by that convolution in a fused pass, and so is a 2x2 pool after a
 * convolution with a BN+ReLU prologue (applied first, while packing).
 */
#include "nn/op.h"

#include <stdio.h>

#include "nn/fuse.h"

#include "sc.h"

static pool_shape_t pool_shape(const nn_model_t *m, const nn_node_t *nd, int n)
{
    const nn_node_t *src = &m->nodes[nd->in[0]];
    pool_shape_t s = {.n = n, .c = src->c, .h = src->h, .w = src->w, .kh = nd->kh, .kw = nd->kw,
                      .sh = nd->sh, .sw = nd->sw, .pt = nd->pt, .pb = nd->pb, .pl = nd->pl,
                      .pr = nd->pr, .ceil_mode = nd->ceil_mode,
                      .count_include_pad = nd->count_include_pad};
    return s;
}

static int add_pool(nn_model_t *m, const char *name, nn_op op, int in, int kh, int kw, int sh,
                    int sw, const int *pad, int same, int ceil_mode, int count_include_pad)
{
    if (in < 0 || in >= m->n_nodes)
        return nn_add_node(m, name, op, 1, &in, NULL); /* reports the bad input */
    const nn_node_t *src = &m->nodes[in];
    nn_node_t a = {.kh = kh, .kw = kw, .sh = sh, .sw = sw, .ceil_mode = ceil_mode,
                   .count_include_pad = count_include_pad};
    nn_resolve_pad(pad, same, src->h, src->w, kh, kw, sh, sw, &a.pt, &a.pb, &a.pl, &a.pr);
    return nn_add_node(m, name, op, 1, &in, &a);
}

int nn_add_maxpool(nn_model_t *m, const char *name, int in, int kh, int kw, int sh, int sw,
                   const int *pad, int same, int ceil_mode)
{
    return add_pool(m, name, NN_MAXPOOL, in, kh, kw, sh, sw, pad, same, ceil_mode, 0);
}

int nn_add_avgpool(nn_model_t *m, const char *name, int in, int kh, int kw, int sh, int sw,
                   const int *pad, int same, int ceil_mode, int count_include_pad)
{
    return add_pool(m, name, NN_AVGPOOL, in, kh, kw, sh, sw, pad, same, ceil_mode,
                    count_include_pad);
}

static int pool_infer(const nn_model_t *m, nn_node_t *nd)
{
    pool_shape_t s = pool_shape(m, nd, 1);
    if (nd->n_in != 1 || pool_shape_init(&s) < 0) {
        SC_ERROR("pool '%s': window %dx%d does not fit input %dx%d", nd->name, nd->kh, nd->kw,
                 s.h, s.w);
        return SC_ERR_SHAPE;
    }
    nd->h = s.oh;
    nd->w = s.ow;
    return 0;
}

static int maxpool_prepare(nn_model_t *m, nn_node_t *nd, int max_batch)
{
    int rc = 0;
    (void)m;
    nd->argmax = sc_calloc((size_t)max_batch * nn_node_size(nd), sizeof(int32_t));
    CHECK_ALLOC(nd->argmax);
cleanup:
    return rc;
}

static int maxpool_forward_node(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    pool_shape_t s = pool_shape(m, nd, n);
    pool_shape_init(&s);
    maxpool_forward(&s, m->nodes[nd->in[0]].out, nd->out, nd->argmax);
    return 0;
}

static int maxpool_backward_node(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    pool_shape_t s = pool_shape(m, nd, n);
    pool_shape_init(&s);
    if (nn_wants_grad(nd->in[0], o)) {
        int assign;
        float *dx = nn_grad_dst(m, nd->in[0], &assign);
        (assign ? maxpool_backward_assign : maxpool_backward)(&s, nd->grad, nd->argmax, dx);
    }
    return 0;
}

static int avgpool_forward_node(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    /* commuted with the convolution reading it, which pools its own output */
    if (m->fused_pass && m->fuse && m->fuse->pool_into[id] >= 0 &&
        nn_fuse_commuted(m, m->fuse->pool_into[id]) == id)
        return 0;
    /* applied first by the convolution before it, which writes this output */
    if (m->fused_pass && m->fuse && m->fuse->pool_pre[id] >= 0 &&
        nn_fuse_pre_pool(m, m->fuse->pool_pre[id]) == id)
        return 0;
    pool_shape_t s = pool_shape(m, nd, n);
    pool_shape_init(&s);
    avgpool_forward(&s, m->nodes[nd->in[0]].out, nd->out);
    return 0;
}

static int avgpool_backward_node(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    /* the convolution before it reads this gradient and applies the pool's
     * backward itself, unless the backward stops above its BN */
    if (m->fused_pass && m->fuse && m->fuse->pool_pre[id] >= 0) {
        const int conv = m->fuse->pool_pre[id];
        if (nn_fuse_pre_pool(m, conv) == id && o->down_to < nn_fuse_pre(m, conv))
            return 0;
    }
    pool_shape_t s = pool_shape(m, nd, n);
    pool_shape_init(&s);
    if (nn_wants_grad(nd->in[0], o)) {
        int assign;
        float *dx = nn_grad_dst(m, nd->in[0], &assign);
        (assign ? avgpool_backward_assign : avgpool_backward)(&s, nd->grad, dx);
    }
    return 0;
}

/* One comparison or addition per window cell. */
static double pool_flops(const nn_model_t *m, const nn_node_t *nd)
{
    (void)m;
    return (double)nn_node_size(nd) * nd->kh * nd->kw;
}

static void pool_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    snprintf(buf, len, " k=%d,%d s=%d,%d pad=%d,%d,%d,%d ceil=%d cip=%d", nd->kh, nd->kw, nd->sh,
             nd->sw, nd->pt, nd->pb, nd->pl, nd->pr, nd->ceil_mode, nd->count_include_pad);
}

const nn_op_def_t nn_op_maxpool = {
    .name = "maxpool",
    .pc = NN_PC_WINDOW,
    .sign = NN_SIGN_INPUTS,
    .infer = pool_infer,
    .prepare = maxpool_prepare,
    .forward = maxpool_forward_node,
    .backward = maxpool_backward_node,
    .flops = pool_flops,
    .write_attrs = pool_write_attrs,
    .bwd_reads = NN_READS_NOTHING,
};

const nn_op_def_t nn_op_avgpool = {
    .name = "avgpool",
    .pc = NN_PC_WINDOW,
    .sign = NN_SIGN_INPUTS,
    .infer = pool_infer,
    .forward = avgpool_forward_node,
    .backward = avgpool_backward_node,
    .flops = pool_flops,
    .write_attrs = pool_write_attrs,
    .bwd_reads = NN_READS_NOTHING,
};
