/*
 * ops/conv.c - 2-D convolution node (cross-correlation, as PyTorch and Keras).
 *
 * Owned by common/nn. Kernels in nn/conv.c (im2col + GEMM). After
 * nn_forward_fused, a convolution whose BN (and ReLU) nn/fuse.h folded
 * computes them in its epilogue with the folded weights. Input gradients on
 * the packed path take their weights packed once per model state (W^T, or at
 * stride 1 the adjoint's: nn/wpack.h). In the
 * inference passes (fused forward, input gradients) 3x3 stride-1 shapes take
 * Winograd's F(2x2, 3x3) with the transforms cached there too
 * (nn/conv_wino.h); training keeps im2col. The output is a
 * GEMM result, so its positions are canonicalized to their class
 * representatives (nn/posclass.h).
 */
#include "nn/op.h"

#include "nn/conv_packed.h"
#include "nn/conv_wino.h"
#include "nn/fuse.h"
#include "nn/wpack.h"
#include "nn/ops/conv_node.h"

#include <stdio.h>
#include <string.h>

#include "sc.h"

static conv2d_shape_t conv_shape(const nn_model_t *m, const nn_node_t *nd, int n)
{
    conv2d_shape_t s = conv_node_shape(m, nd, n, 1);
    conv2d_shape_init(&s);
    return s;
}

int nn_add_conv(nn_model_t *m, const char *name, int in, int out_c, int kh, int kw, int sh,
                int sw, const int *pad, int same, int bias)
{
    if (in < 0 || in >= m->n_nodes)
        return nn_add_node(m, name, NN_CONV, 1, &in, NULL); /* reports the bad input */
    const nn_node_t *src = &m->nodes[in];
    nn_node_t a = {.out_c = out_c, .kh = kh, .kw = kw, .sh = sh, .sw = sw, .has_bias = bias};
    nn_resolve_pad(pad, same, src->h, src->w, kh, kw, sh, sw, &a.pt, &a.pb, &a.pl, &a.pr);
    return nn_add_node(m, name, NN_CONV, 1, &in, &a);
}

static int conv_infer(const nn_model_t *m, nn_node_t *nd)
{
    const nn_node_t *src = &m->nodes[nd->in[0]];
    conv2d_shape_t s = conv_node_shape(m, nd, 1, 1);
    if (nd->n_in != 1 || nd->out_c < 1 || conv2d_shape_init(&s) < 0) {
        SC_ERROR("conv '%s': kernel %dx%d stride %dx%d does not fit input %dx%d", nd->name,
                 nd->kh, nd->kw, nd->sh, nd->sw, src->h, src->w);
        return SC_ERR_SHAPE;
    }
    nd->c = nd->out_c;
    nd->h = s.oh;
    nd->w = s.ow;
    return 0;
}

static int conv_param_shape(const nn_model_t *m, const nn_node_t *nd, nn_param_kind k,
                            size_t dims[4])
{
    return conv_node_param_shape(m, nd, k, dims, 1);
}

static void conv_init(nn_model_t *m, int id, rng_stream_t *rs, int keep_bn_stats)
{
    conv_node_init(m, id, rs, 1);
    (void)keep_bn_stats;
}

/* A Winograd shape may still run im2col (an unfused forward, a transform that
 * could not be cached): room for both. */
static size_t conv_workspace(const nn_model_t *m, const nn_node_t *nd)
{
    conv2d_shape_t s = conv_shape(m, nd, 1);
    const size_t gemm = conv2d_workspace(&s);
    if (!conv_wino_wanted(&s, 0))
        return gemm;
    const size_t wino = conv_wino_workspace(&s);
    return wino > gemm ? wino : gemm;
}

/* A fused pass on the Winograd path (nn/conv_wino.h) when the shape takes it
 * and its transform is cached for W: 0 when it ran, 1 otherwise (im2col then). */
static int conv_forward_wino(nn_model_t *m, int id, const conv2d_shape_t *s, const float *W,
                             const float *b, int relu, float *y)
{
    const float *u = conv_wino_wanted(s, 0) ? nn_wpack_get(m, id, NN_WPACK_WINO_FWD, s, W) : NULL;
    if (!u)
        return 1;
    conv_wino_forward(s, u, m->nodes[m->nodes[id].in[0]].out, b, relu, y, m->workspace);
    return 0;
}

static int conv_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    conv2d_shape_t s = conv_shape(m, nd, n);
    const nn_fuse_t *f = m->fused_pass ? m->fuse : NULL;
    if (f && f->bn_of[id] >= 0) {
        /* BN (and ReLU) folded: y = relu?(W' x + b') straight into the last node's output */
        const float *Wf = f->params + f->w_off[id], *bf = f->params + f->b_off[id];
        if (conv_forward_wino(m, id, &s, Wf, bf, f->relu_of[id] >= 0, nn_fuse_dst(m, id)) == 0)
            return 0;
        conv2d_forward_fused(&s, m->nodes[nd->in[0]].out, Wf, bf, f->relu_of[id] >= 0,
                             nn_fuse_dst(m, id), m->workspace);
        return 0;
    }
    const float *W = nn_param(m, id, NN_P_WEIGHT, NULL), *b = nn_param(m, id, NN_P_BIAS, NULL);
    if (m->fused_pass && conv_forward_wino(m, id, &s, W, b, 0, nd->out) == 0)
        return 0;
    conv2d_forward(&s, m->nodes[nd->in[0]].out, W, b, nd->out, m->workspace);
    return 0;
}

/* dx (+)= W^T dy for an inference backward: Winograd, else the packed path
 * with its cached weights. */
static void conv_input_grad(nn_model_t *m, int id, const conv2d_shape_t *s, const float *W,
                            const float *dy, float *dx, int assign)
{
    const float *u = conv_wino_wanted(s, 1) ? nn_wpack_get(m, id, NN_WPACK_WINO_BWD, s, W) : NULL;
    if (u)
        conv_wino_backward_data(s, u, dy, dx, assign, m->workspace);
    else
        conv2d_backward_data_wt(s, W, nn_wpack_wt(m, id, s, W), dy, dx, assign, m->workspace);
}

static int conv_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    const int src_id = nd->in[0];
    conv2d_shape_t s = conv_shape(m, nd, n);
    const nn_fuse_t *f = m->fused_pass ? m->fuse : NULL;
    int assign;
    if (f && f->bn_of[id] >= 0) {
        /* after a fused forward: dx = W'^T dy_bn, the chain rule through BN and conv
         * (nn_backward refuses parameter gradients there) */
        if (nn_wants_grad(src_id, o)) {
            float *dx = nn_grad_dst(m, src_id, &assign);
            conv_input_grad(m, id, &s, f->params + f->w_off[id], m->nodes[f->bn_of[id]].grad, dx,
                            assign);
        }
        return 0;
    }
    if (!o->param_grads) {
        if (nn_wants_grad(src_id, o)) {
            float *dx = nn_grad_dst(m, src_id, &assign);
            conv_input_grad(m, id, &s, nn_param(m, id, NN_P_WEIGHT, NULL), nd->grad, dx, assign);
        }
        return 0;
    }
    conv2d_backward(&s, m->nodes[src_id].out, nn_param(m, id, NN_P_WEIGHT, NULL), nd->grad,
                    nn_wants_grad(src_id, o) ? nn_grad_acc(m, src_id) : NULL,
                    nn_param_grad(m, id, NN_P_WEIGHT), nn_param_grad(m, id, NN_P_BIAS),
                    m->workspace);
    return 0;
}

static double conv_flops(const nn_model_t *m, const nn_node_t *nd)
{
    return 2.0 * nd->out_c * m->nodes[nd->in[0]].c * nd->kh * nd->kw * nd->h * nd->w;
}

static void conv_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    snprintf(buf, len, " out_c=%d k=%d,%d s=%d,%d pad=%d,%d,%d,%d bias=%d init=%d", nd->out_c,
             nd->kh, nd->kw, nd->sh, nd->sw, nd->pt, nd->pb, nd->pl, nd->pr, nd->has_bias,
             (int)nd->init);
}

const nn_op_def_t nn_op_conv = {
    .name = "conv",
    .pc = NN_PC_WINDOW,
    .pc_canonical = 1,
    .sign = NN_SIGN_ANY,
    .infer = conv_infer,
    .param_shape = conv_param_shape,
    .init = conv_init,
    .workspace = conv_workspace,
    .forward = conv_forward,
    .backward = conv_backward,
    .flops = conv_flops,
    .write_attrs = conv_write_attrs,
    .bwd_reads = NN_READS_NOTHING | NN_READS_INPUTS_PARAM,
};
