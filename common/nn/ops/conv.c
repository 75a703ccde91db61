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
 * representatives (nn/posclass.h). In a fused pass a 1x1 convolution after an
 * average pool may run before it, the pool then over its output channels
 * (nn/fuse.h's commuted pairs), and the pointwise convolutions of a sibling
 * group run together at the first member, forward and backward (nn/fuse.h).
 */
#include "nn/op.h"

#include "nn/conv_packed.h"
#include "nn/concat_view.h"
#include "nn/conv_wino.h"
#include "nn/fuse.h"
#include "nn/gemm.h"
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

/* A prologue's channel arrays (nn_cview_bind) and the BN's map, after the
 * packed path's workspace: c pointers to the input, c to its gradient, c
 * steps, then c scales and c shifts. */
static size_t pre_tail(const conv2d_shape_t *s)
{
    return (conv_packed_pre_workspace(s) + 1) & ~(size_t)1; /* pointer-aligned */
}

static size_t pre_workspace(const conv2d_shape_t *s)
{
    return pre_tail(s) + (size_t)s->c * (3 * (sizeof(void *) / sizeof(float)) + 2);
}

/* The shape of the convolution with the pool of its prologue applied first. */
static conv2d_shape_t pooled_shape(const conv2d_shape_t *s)
{
    conv2d_shape_t t = *s;
    t.h /= 2;
    t.w /= 2;
    conv2d_shape_init(&t);
    return t;
}

/* A Winograd shape may still run im2col (an unfused forward, a transform that
 * could not be cached): room for both; a convolution with a prologue, room for
 * its arrays too (at the full and the pooled shape). */
static size_t conv_workspace(const nn_model_t *m, const nn_node_t *nd)
{
    conv2d_shape_t s = conv_shape(m, nd, 1);
    size_t gemm = conv2d_workspace(&s);
    const int id = (int)(nd - m->nodes);
    if (nn_fuse_pre_plan(m, id) >= 0 && pre_workspace(&s) > gemm)
        gemm = pre_workspace(&s);
    if (nn_fuse_pre_pool_plan(m, id) >= 0) {
        const conv2d_shape_t t = pooled_shape(&s);
        if (pre_workspace(&t) > gemm)
            gemm = pre_workspace(&t);
    }
    const int c1 = nn_fuse_mlp_plan(m, id);
    if (c1 >= 0) { /* the pair's backward (nn/fuse.h) */
        const size_t mlp = conv_packed_mlp_workspace(s.oh * s.ow, m->nodes[c1].out_c);
        if (mlp > gemm)
            gemm = mlp;
    }
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

/* The pool commuted with convolution id over its c output channels (nn/fuse.h). */
static pool_shape_t commuted_shape(const nn_model_t *m, int pool, int c, int n)
{
    const nn_node_t *pd = &m->nodes[pool], *x = &m->nodes[pd->in[0]];
    pool_shape_t ps = {.n = n, .c = c, .h = x->h, .w = x->w, .kh = pd->kh, .kw = pd->kw,
                       .sh = pd->sh, .sw = pd->sw, .pt = pd->pt, .pb = pd->pb, .pl = pd->pl,
                       .pr = pd->pr, .ceil_mode = pd->ceil_mode,
                       .count_include_pad = pd->count_include_pad};
    pool_shape_init(&ps);
    return ps;
}

/* y = relu?(avgpool(W x) + b): W x into the pool's output buffer, pooled into y,
 * then the bias and the ReLU per channel. */
static void conv_forward_commuted(nn_model_t *m, int pool, const conv2d_shape_t *s,
                                  const float *W, const float *b, int relu, float *y)
{
    const nn_node_t *pd = &m->nodes[pool];
    float *z = pd->out;
    conv2d_forward_fused(s, m->nodes[pd->in[0]].out, W, NULL, 0, z, m->workspace);
    pool_shape_t ps = commuted_shape(m, pool, s->oc, s->n);
    avgpool_forward(&ps, z, y);
    const size_t hw = (size_t)s->oh * s->ow;
    for (int i = 0; i < s->n; i++)
        for (int c = 0; c < s->oc; c++) {
            float *p = y + ((size_t)i * s->oc + c) * hw;
            const float bc = b ? b[c] : 0.0f;
            if (relu)
                for (size_t k = 0; k < hw; k++) {
                    const float v = p[k] + bc;
                    p[k] = v > 0.0f ? v : 0.0f;
                }
            else
                for (size_t k = 0; k < hw; k++)
                    p[k] += bc;
        }
}

_Static_assert(sizeof(size_t) == sizeof(void *), "the step array shares the pointer slots");

/* The BN's input channel by channel (with their gradients when want_dx) and
 * the BN's map, in the workspace after the packed path's part. */
static void pre_bind(nn_model_t *m, int bn, const conv2d_shape_t *s, int want_dx,
                     bn_chans_t *ch, float **scale, float **shift, int *assign)
{
    void **slots = (void **)(m->workspace + pre_tail(s));
    const float **x = (const float **)slots;
    float **dx = (float **)(slots + s->c);
    size_t *step = (size_t *)(slots + 2 * (size_t)s->c);
    *scale = (float *)(slots + 3 * (size_t)s->c);
    *shift = *scale + s->c;
    nn_cview_bind(m, m->nodes[bn].in[0], x, want_dx ? dx : NULL, step, assign);
    nn_bn_infer_affine(m, bn, *scale, *shift);
    *ch = (bn_chans_t){x, want_dx ? dx : NULL, step};
}

/* y = relu?(W relu(bn(x)) + b) with the BN and its ReLU applied while packing x
 * (nn/fuse.h's prologue); with its pool applied first, W pool(relu(bn(x))) + b
 * into the pool's output. */
static void conv_forward_pre(nn_model_t *m, int id, int bn, const conv2d_shape_t *s,
                             const float *W, const float *b, int relu, float *y)
{
    bn_chans_t ch;
    float *scale, *shift;
    const int pool = nn_fuse_pre_pool(m, id);
    const conv2d_shape_t t = pool >= 0 ? pooled_shape(s) : *s;
    pre_bind(m, bn, &t, 0, &ch, &scale, &shift, NULL);
    conv_packed_forward_pre(&t, &ch, scale, shift, pool >= 0, W, b, relu,
                            pool >= 0 ? m->nodes[pool].out : y, m->workspace);
}

/* y = relu?(W gelu(x) + b) with the GELU applied while packing x (nn/fuse.h's
 * GELU prologue): 1 when it ran. */
static int conv_forward_gelu(nn_model_t *m, int id, const conv2d_shape_t *s, const float *W,
                             const float *b, int relu, float *y)
{
    const int g = nn_fuse_gelu(m, id);
    if (g < 0)
        return 0;
    conv_packed_forward_map(s, m->nodes[m->nodes[g].in[0]].out, W, b, relu, y,
                            m->nodes[g].op == NN_GELU ? nn_gelu_apply : nn_gelu_tanh_apply,
                            m->workspace);
    return 1;
}

/* Convolution id's fused forward as the plain product (a member of a sibling
 * group: no prologue, pool or Winograd): its weights, bias, ReLU and output,
 * as conv_forward picks them. */
static void conv_sib_args(nn_model_t *m, int id, const float **W, const float **b, int *relu,
                          float **y)
{
    const nn_fuse_t *f = m->fuse;
    const int chain = f->bn_of[id] >= 0 ||
                      (f->relu_of[id] >= 0 && nn_fuse_taken(m, f->relu_of[id]) >= 0);
    const int folded = f->bn_of[id] >= 0;
    *W = folded ? f->params + f->w_off[id] : nn_param(m, id, NN_P_WEIGHT, NULL);
    *b = folded ? f->params + f->b_off[id] : nn_param(m, id, NN_P_BIAS, NULL);
    *relu = chain && f->relu_of[id] >= 0;
    *y = chain ? nn_fuse_dst(m, id) : m->nodes[id].out;
}

/* A sibling group's forward (nn/fuse.h), all of it at its first member: 1
 * when convolution id's output is done (now, or by the first member earlier
 * in this pass), 0 when id computes it alone. */
static int conv_forward_sibs(nn_model_t *m, int id, int n)
{
    int ids[NN_GEMM_MEMBERS];
    const int k = nn_fuse_sibs(m, id, ids);
    if (!k)
        return 0;
    if (ids[0] != id) /* a forward from a node past the first computes it alone */
        return m->fuse->sib_gen[ids[0]] == m->act_gen;
    const float *W[NN_GEMM_MEMBERS], *b[NN_GEMM_MEMBERS];
    float *y[NN_GEMM_MEMBERS];
    int relu[NN_GEMM_MEMBERS], oc[NN_GEMM_MEMBERS];
    for (int q = 0; q < k; q++) {
        conv_sib_args(m, ids[q], &W[q], &b[q], &relu[q], &y[q]);
        oc[q] = m->nodes[ids[q]].out_c;
    }
    const conv2d_shape_t s = conv_shape(m, &m->nodes[id], n);
    conv_packed_forward_sibs(&s, k, oc, W, b, relu, y, m->nodes[m->nodes[id].in[0]].out,
                             m->workspace);
    m->fuse->sib_gen[id] = m->act_gen;
    return 1;
}

/* An MLP pair (nn/fuse.h): at its first convolution both outputs, the GELU
 * applied as the second packs each slice; at its second, nothing when the
 * first computed it in this pass. 1 when convolution id's output is done. */
static int conv_forward_mlp(nn_model_t *m, int id, int n)
{
    nn_fuse_t *f = m->fuse;
    if (!m->fused_pass || !f)
        return 0;
    if (f->mlp_into[id] >= 0)
        return f->mlp_gen[id] == m->act_gen;
    const int c2 = nn_fuse_mlp(m, id);
    if (c2 < 0)
        return 0;
    const float *W2, *b2;
    int relu2;
    float *y;
    conv_sib_args(m, c2, &W2, &b2, &relu2, &y);
    const conv2d_shape_t s1 = conv_shape(m, &m->nodes[id], n), s2 = conv_shape(m, &m->nodes[c2], n);
    const int g = m->nodes[c2].in[0];
    conv_packed_mlp_forward(&s1, &s2, m->nodes[m->nodes[id].in[0]].out,
                            nn_param(m, id, NN_P_WEIGHT, NULL), nn_param(m, id, NN_P_BIAS, NULL),
                            m->nodes[id].out,
                            m->nodes[g].op == NN_GELU ? nn_gelu_apply : nn_gelu_tanh_apply, W2,
                            b2, relu2, y, m->workspace);
    f->mlp_gen[c2] = m->act_gen;
    return 1;
}

static int conv_forward(nn_model_t *m, int id, int n)
{
    if (conv_forward_sibs(m, id, n) || conv_forward_mlp(m, id, n))
        return 0;
    nn_node_t *nd = &m->nodes[id];
    conv2d_shape_t s = conv_shape(m, nd, n);
    const nn_fuse_t *f = m->fused_pass ? m->fuse : NULL;
    const int chain = f && (f->bn_of[id] >= 0 ||
                            (f->relu_of[id] >= 0 && nn_fuse_taken(m, f->relu_of[id]) >= 0));
    if (chain) {
        /* BN folded: y = relu?(W' x + b'); a ReLU alone: y = relu(W x + b); straight
         * into the last node's output */
        const int folded = f->bn_of[id] >= 0, relu = f->relu_of[id] >= 0;
        const float *W = folded ? f->params + f->w_off[id] : nn_param(m, id, NN_P_WEIGHT, NULL);
        const float *b = folded ? f->params + f->b_off[id] : nn_param(m, id, NN_P_BIAS, NULL);
        const int pool = nn_fuse_commuted(m, id), pre = nn_fuse_pre(m, id);
        if (pre >= 0) {
            conv_forward_pre(m, id, pre, &s, W, b, relu, nn_fuse_dst(m, id));
            return 0;
        }
        if (pool >= 0) {
            conv_forward_commuted(m, pool, &s, W, b, relu, nn_fuse_dst(m, id));
            return 0;
        }
        if (conv_forward_gelu(m, id, &s, W, b, relu, nn_fuse_dst(m, id)))
            return 0;
        if (conv_forward_wino(m, id, &s, W, b, relu, nn_fuse_dst(m, id)) == 0)
            return 0;
        conv2d_forward_fused(&s, m->nodes[nd->in[0]].out, W, b, relu, nn_fuse_dst(m, id),
                             m->workspace);
        return 0;
    }
    const float *W = nn_param(m, id, NN_P_WEIGHT, NULL), *b = nn_param(m, id, NN_P_BIAS, NULL);
    const int pre = nn_fuse_pre(m, id);
    if (pre >= 0) {
        conv_forward_pre(m, id, pre, &s, W, b, 0, nd->out);
        return 0;
    }
    if (conv_forward_gelu(m, id, &s, W, b, 0, nd->out))
        return 0;
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

/* The backward of a commuted pair (nn/fuse.h): dz = avgpool^T(dy) in the pool's
 * gradient buffer, dx (+)= W^T dz. 1 when it ran; 0 when the pool's gradient
 * must be computed as it is (kept, or the backward stops at or above it). */
static int conv_backward_commuted(nn_model_t *m, int id, const conv2d_shape_t *s, const float *W,
                                  const float *dy, const nn_backward_opts_t *o)
{
    const int pool = nn_fuse_commuted(m, id);
    if (pool < 0 || o->down_to >= pool)
        return 0;
    const nn_node_t *pd = &m->nodes[pool];
    const int x_id = pd->in[0];
    float *dz = pd->grad;
    if (!dz || dz == dy || dz == m->nodes[x_id].grad)
        return 0;
    pool_shape_t ps = commuted_shape(m, pool, s->oc, s->n);
    avgpool_backward_assign(&ps, dy, dz);
    if (nn_wants_grad(x_id, o)) {
        int assign;
        float *dx = nn_grad_dst(m, x_id, &assign);
        conv_input_grad(m, id, s, W, dz, dx, assign);
    }
    return 1;
}

/* The backward of a prologue (nn/fuse.h): into the BN's input gradients, or,
 * when the backward stops at the BN or its ReLU, the BN+ReLU output the fused
 * forward did not store is computed now and the backward runs as it is. 1
 * when it ran. */
static int conv_backward_pre(nn_model_t *m, int id, const conv2d_shape_t *s, const float *W,
                             const float *dy, const nn_backward_opts_t *o)
{
    const int bn = nn_fuse_pre(m, id);
    if (bn < 0)
        return 0;
    if (o->down_to >= bn) {
        const int relu = m->nodes[id].in[0];
        nn_op_def(NN_BN)->forward(m, bn, s->n);
        nn_op_def(NN_RELU)->forward(m, relu, s->n);
        return 0;
    }
    if (!nn_wants_grad(m->nodes[bn].in[0], o))
        return 1;
    bn_chans_t ch;
    float *scale, *shift;
    int assign = 0;
    const int pool = nn_fuse_pre_pool(m, id);
    const conv2d_shape_t t = pool >= 0 ? pooled_shape(s) : *s;
    pre_bind(m, bn, &t, 1, &ch, &scale, &shift, &assign);
    /* the pooled shape packs W^T as the full one does (pointwise: W^T alone) */
    conv_packed_backward_pre(&t, W, nn_wpack_wt(m, id, s, W), pool >= 0 ? m->nodes[pool].grad : dy,
                             &ch, scale, shift, pool >= 0, o->guided_relu, assign, m->workspace);
    return 1;
}

static void conv_input_grad(nn_model_t *m, int id, const conv2d_shape_t *s, const float *W,
                            const float *dy, float *dx, int assign);

/* A sibling group's input gradient (nn/fuse.h), all of it at its first member,
 * whose backward runs last: one product over the members' output gradients
 * when all are live, else each live member's in the order of the backward.
 * 1 when convolution id's part is done (now, or left to the first member), 0
 * when id computes it alone (the backward stops at or above the first). */
static int conv_backward_sibs(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    int ids[NN_GEMM_MEMBERS];
    const int k = nn_fuse_sibs(m, id, ids);
    if (!k || o->down_to >= ids[0])
        return 0;
    if (ids[0] != id)
        return 1;
    const int x = m->nodes[id].in[0];
    const nn_fuse_t *f = m->fuse;
    const float *W[NN_GEMM_MEMBERS], *dy[NN_GEMM_MEMBERS];
    int oc[NN_GEMM_MEMBERS], live[NN_GEMM_MEMBERS], n_live = 0;
    for (int q = 0; q < k; q++) {
        const int c = ids[q], g = f->bn_of[c] >= 0 ? f->bn_of[c] : c;
        W[q] = f->bn_of[c] >= 0 ? f->params + f->w_off[c] : nn_param(m, c, NN_P_WEIGHT, NULL);
        dy[q] = m->nodes[g].grad;
        oc[q] = m->nodes[c].out_c;
        live[q] = m->nodes[g].grad_live;
        n_live += live[q];
    }
    if (!n_live || !nn_wants_grad(x, o))
        return 1;
    int assign;
    float *dx = nn_grad_dst(m, x, &assign);
    const conv2d_shape_t s = conv_shape(m, &m->nodes[id], n);
    const float *packed = n_live == k ? nn_wpack_sib_wt(m, k, ids, W) : NULL;
    if (packed) {
        conv_packed_backward_sibs(&s, k, oc, packed, dy, dx, assign, m->workspace);
        return 1;
    }
    for (int q = k - 1; q >= 0; q--)
        if (live[q]) {
            const conv2d_shape_t sq = conv_shape(m, &m->nodes[ids[q]], n);
            conv_input_grad(m, ids[q], &sq, W[q], dy[q], dx, assign);
            assign = 0;
        }
    return 1;
}

/* An MLP pair's input gradient at its second convolution (nn/fuse.h), from
 * its output gradient (its folded BN's when it has one, with W'), the first
 * convolution's output u and the GELU's derivative: 1 when it ran. */
static int conv_backward_mlp(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    const int c1 = nn_fuse_mlp_bwd(m, id, o);
    if (c1 < 0)
        return 0;
    const nn_fuse_t *f = m->fuse;
    const int x = m->nodes[c1].in[0], g = m->nodes[id].in[0];
    if (!nn_wants_grad(x, o))
        return 1;
    const int folded = f->bn_of[id] >= 0;
    const float *W2 = folded ? f->params + f->w_off[id] : nn_param(m, id, NN_P_WEIGHT, NULL);
    const float *W1 = nn_param(m, c1, NN_P_WEIGHT, NULL);
    const float *dy = m->nodes[folded ? f->bn_of[id] : id].grad;
    const conv2d_shape_t s1 = conv_shape(m, &m->nodes[c1], n), s2 = conv_shape(m, &m->nodes[id], n);
    int assign;
    float *dx = nn_grad_dst(m, x, &assign);
    conv_packed_mlp_backward(&s1, &s2, nn_wpack_wt(m, c1, &s1, W1), nn_wpack_wt(m, id, &s2, W2), dy,
                             m->nodes[c1].out,
                             m->nodes[g].op == NN_GELU ? nn_gelu_backward_apply
                                                       : nn_gelu_tanh_backward_apply,
                             dx, assign, m->workspace);
    return 1;
}

static int conv_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    const int src_id = nd->in[0];
    conv2d_shape_t s = conv_shape(m, nd, n);
    const nn_fuse_t *f = m->fused_pass ? m->fuse : NULL;
    int assign;
    if (f && !o->param_grads && conv_backward_sibs(m, id, n, o))
        return 0;
    if (f && conv_backward_mlp(m, id, n, o))
        return 0;
    if (f && f->bn_of[id] >= 0) {
        /* after a fused forward: dx = W'^T dy_bn, the chain rule through BN and conv
         * (nn_backward refuses parameter gradients there) */
        const float *Wf = f->params + f->w_off[id], *dy = m->nodes[f->bn_of[id]].grad;
        if (conv_backward_pre(m, id, &s, Wf, dy, o))
            return 0;
        if (conv_backward_commuted(m, id, &s, Wf, dy, o))
            return 0;
        if (nn_wants_grad(src_id, o)) {
            float *dx = nn_grad_dst(m, src_id, &assign);
            conv_input_grad(m, id, &s, Wf, dy, dx, assign);
        }
        return 0;
    }
    if (!o->param_grads) {
        const float *W = nn_param(m, id, NN_P_WEIGHT, NULL);
        if (f && conv_backward_pre(m, id, &s, W, nd->grad, o))
            return 0;
        if (f && conv_backward_commuted(m, id, &s, W, nd->grad, o))
            return 0;
        if (nn_wants_grad(src_id, o)) {
            float *dx = nn_grad_dst(m, src_id, &assign);
            conv_input_grad(m, id, &s, W, nd->grad, dx, assign);
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
