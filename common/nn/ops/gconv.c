/*
 * ops/gconv.c - grouped and depthwise 2-D convolution (PyTorch's groups,
 * ONNX Conv with group > 1).
 *
 * Owned by common/nn. The input's c channels and the out_c outputs split into
 * `groups` equal parts; output group g reads input group g only, through a
 * weight [out_c, c/groups, kh, kw]. Two kernels:
 *   - depthwise (one input channel per group, any channel multiplier):
 *     direct loops, one kernel tap at a time over whole output rows, so the
 *     inner loop is a contiguous multiply-add for stride 1; forward, input
 *     backward and weight backward never build a patch matrix;
 *   - grouped (several input channels per group, ResNeXt, RegNet): the
 *     im2col + GEMM convolution of nn/conv.c called per group on the group's
 *     contiguous channel planes.
 * Every output position sums its taps in the same order (ky, then kx), and
 * the output is canonicalized to its position classes like conv.
 */
#include "nn/op.h"
#include "nn/ops/conv_node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc.h"

/* Output columns ox whose input column ox*sw + ix0 lies in [0, w): [*lo, *hi). */
static void gconv_columns(int ow, int sw, int ix0, int w, int *lo, int *hi)
{
    int first = ix0 >= 0 ? 0 : (-ix0 + sw - 1) / sw;
    int end = ix0 > w - 1 ? 0 : (w - 1 - ix0) / sw + 1;
    *lo = first < ow ? first : ow;
    *hi = end < ow ? end : ow;
    if (*hi < *lo)
        *hi = *lo;
}

/* cols[2 kx], cols[2 kx + 1]: the output columns [lo, hi) that tap column kx reaches inside
 * the input (the same for every row); a buffer of 2 kw ints for the caller to free. */
static int *dw_tap_columns(const nn_node_t *nd, int w)
{
    int *cols = malloc(sizeof(int) * 2 * (size_t)nd->kw);
    if (!cols) {
        SC_ERROR("gconv '%s': out of memory", nd->name);
        return NULL;
    }
    for (int kx = 0; kx < nd->kw; kx++)
        gconv_columns(nd->w, nd->sw, kx - nd->pl, w, &cols[2 * kx], &cols[2 * kx + 1]);
    return cols;
}

/* The shape of one group's convolution (n = 1) for the im2col + GEMM kernel. */
static conv2d_shape_t group_shape(const nn_model_t *m, const nn_node_t *nd)
{
    conv2d_shape_t s = conv_node_shape(m, nd, 1, nd->groups);
    conv2d_shape_init(&s);
    return s;
}

static int is_depthwise(const nn_model_t *m, const nn_node_t *nd)
{
    return m->nodes[nd->in[0]].c == nd->groups;
}

int nn_add_gconv(nn_model_t *m, const char *name, int in, int out_c, int groups, int kh, int kw,
                 int sh, int sw, const int *pad, int bias)
{
    nn_node_t a = {.out_c = out_c, .groups = groups, .kh = kh, .kw = kw, .sh = sh, .sw = sw,
                   .has_bias = bias};
    if (pad) {
        a.pt = pad[0]; a.pb = pad[1]; a.pl = pad[2]; a.pr = pad[3];
    }
    return nn_add_node(m, name, NN_GCONV, 1, &in, &a);
}

static int gconv_infer(const nn_model_t *m, nn_node_t *nd)
{
    const nn_node_t *src = &m->nodes[nd->in[0]];
    if (nd->n_in != 1 || nd->groups < 1 || nd->out_c < 1 || src->c % nd->groups ||
        nd->out_c % nd->groups) {
        SC_ERROR("gconv '%s': %d groups do not divide %d input and %d output channels",
                 nd->name, nd->groups, src->c, nd->out_c);
        return SC_ERR_SHAPE;
    }
    conv2d_shape_t s = conv_node_shape(m, nd, 1, 1);
    if (nd->pt < 0 || nd->pb < 0 || nd->pl < 0 || nd->pr < 0 || conv2d_shape_init(&s) < 0) {
        SC_ERROR("gconv '%s': kernel %dx%d stride %dx%d does not fit input %dx%d", nd->name,
                 nd->kh, nd->kw, nd->sh, nd->sw, src->h, src->w);
        return SC_ERR_SHAPE;
    }
    nd->c = nd->out_c;
    nd->h = s.oh;
    nd->w = s.ow;
    return 0;
}

static int gconv_param_shape(const nn_model_t *m, const nn_node_t *nd, nn_param_kind k,
                             size_t dims[4])
{
    return conv_node_param_shape(m, nd, k, dims, nd->groups);
}

/* Glorot by the fans of one group (what each output and input channel sees). */
static void gconv_init(nn_model_t *m, int id, rng_stream_t *rs, int keep_bn_stats)
{
    conv_node_init(m, id, rs, m->nodes[id].groups);
    (void)keep_bn_stats;
}

static size_t gconv_workspace(const nn_model_t *m, const nn_node_t *nd)
{
    if (is_depthwise(m, nd))
        return 0;
    conv2d_shape_t s = group_shape(m, nd);
    return conv2d_workspace(&s);
}

/* ---- depthwise kernels: one output plane per call ---- */

/* y[oh, ow] = b + sum over taps of w[ky, kx] * x[oy*sh - pt + ky, ox*sw - pl + kx], the
 * taps of each output summed in the order ky, then kx; one output row at a time, so the row
 * stays in cache for all its taps. */
static void dw_forward_plane(const nn_node_t *nd, int h, int w, const int *cols, const float *x,
                             const float *wk, float bias, float *y)
{
    const int oh = nd->h, ow = nd->w, sw = nd->sw;
    for (int oy = 0; oy < oh; oy++) {
        float *yrow = y + (size_t)oy * ow;
        for (int ox = 0; ox < ow; ox++)
            yrow[ox] = bias;
        for (int ky = 0; ky < nd->kh; ky++) {
            const int iy = oy * nd->sh - nd->pt + ky;
            if (iy < 0 || iy >= h)
                continue;
            const float *row = x + (size_t)iy * w;
            for (int kx = 0; kx < nd->kw; kx++) {
                const float wv = wk[ky * nd->kw + kx];
                const int ix0 = kx - nd->pl, lo = cols[2 * kx], hi = cols[2 * kx + 1];
                if (sw == 1) {
                    const float *src = row + ix0;
                    for (int ox = lo; ox < hi; ox++)
                        yrow[ox] += wv * src[ox];
                } else {
                    for (int ox = lo; ox < hi; ox++)
                        yrow[ox] += wv * row[ox * sw + ix0];
                }
            }
        }
    }
}

/* dx += w (*) dy, one input row at a time: the contributions to each dx element come in
 * the order ky, then kx. */
static void dw_backward_input_plane(const nn_node_t *nd, int h, int w, const int *cols,
                                    const float *wk, const float *dy, float *dx)
{
    const int oh = nd->h, ow = nd->w, sw = nd->sw, sh = nd->sh;
    for (int iy = 0; iy < h; iy++) {
        float *dxrow = dx + (size_t)iy * w;
        for (int ky = 0; ky < nd->kh; ky++) {
            const int t = iy + nd->pt - ky;
            if (t < 0 || t % sh)
                continue;
            const int oy = t / sh;
            if (oy >= oh)
                continue;
            const float *dyrow = dy + (size_t)oy * ow;
            for (int kx = 0; kx < nd->kw; kx++) {
                const float wv = wk[ky * nd->kw + kx];
                const int ix0 = kx - nd->pl, lo = cols[2 * kx], hi = cols[2 * kx + 1];
                if (sw == 1) {
                    float *dst = dxrow + ix0;
                    for (int ox = lo; ox < hi; ox++)
                        dst[ox] += wv * dyrow[ox];
                } else {
                    for (int ox = lo; ox < hi; ox++)
                        dxrow[ox * sw + ix0] += wv * dyrow[ox];
                }
            }
        }
    }
}

/* dw += dy . x per tap; db += sum dy. */
static void dw_backward_params_plane(const nn_node_t *nd, int h, int w, const float *x,
                                     const float *dy, float *dwk, float *db)
{
    const int oh = nd->h, ow = nd->w, sw = nd->sw;
    if (db) {
        double sum = 0.0;
        for (int p = 0; p < oh * ow; p++)
            sum += dy[p];
        *db += (float)sum;
    }
    if (!dwk)
        return;
    for (int ky = 0; ky < nd->kh; ky++) {
        for (int kx = 0; kx < nd->kw; kx++) {
            const int ix0 = kx - nd->pl;
            int lo, hi;
            gconv_columns(ow, sw, ix0, w, &lo, &hi);
            double tap = 0.0;
            for (int oy = 0; oy < oh; oy++) {
                const int iy = oy * nd->sh - nd->pt + ky;
                if (iy < 0 || iy >= h)
                    continue;
                const float *dyrow = dy + (size_t)oy * ow, *row = x + (size_t)iy * w;
                float acc = 0.0f;
                if (sw == 1) {
                    const float *src = row + ix0;
                    for (int ox = lo; ox < hi; ox++)
                        acc += dyrow[ox] * src[ox];
                } else {
                    for (int ox = lo; ox < hi; ox++)
                        acc += dyrow[ox] * row[ox * sw + ix0];
                }
                tap += acc;
            }
            dwk[ky * nd->kw + kx] += (float)tap;
        }
    }
}

static int gconv_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    const nn_node_t *src = &m->nodes[nd->in[0]];
    const float *W = nn_param(m, id, NN_P_WEIGHT, NULL), *b = nn_param(m, id, NN_P_BIAS, NULL);
    const size_t in_hw = (size_t)src->h * src->w, out_hw = (size_t)nd->h * nd->w;
    const int cg = src->c / nd->groups, og = nd->out_c / nd->groups;
    if (is_depthwise(m, nd)) {
        const size_t taps = (size_t)nd->kh * nd->kw;
        int *cols = dw_tap_columns(nd, src->w);
        if (!cols)
            return SC_ERR_NOMEM;
        for (int i = 0; i < n; i++)
            for (int co = 0; co < nd->out_c; co++)
                dw_forward_plane(nd, src->h, src->w, cols,
                                 src->out + ((size_t)i * src->c + co / og) * in_hw, W + co * taps,
                                 b ? b[co] : 0.0f,
                                 nd->out + ((size_t)i * nd->out_c + co) * out_hw);
        free(cols);
        return 0;
    }
    conv2d_shape_t s = group_shape(m, nd);
    const size_t w_group = (size_t)og * cg * nd->kh * nd->kw;
    for (int i = 0; i < n; i++)
        for (int g = 0; g < nd->groups; g++)
            conv2d_forward(&s, src->out + ((size_t)i * src->c + (size_t)g * cg) * in_hw,
                           W + g * w_group, b ? b + g * og : NULL,
                           nd->out + ((size_t)i * nd->out_c + (size_t)g * og) * out_hw,
                           m->workspace);
    return 0;
}

static int gconv_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    const int src_id = nd->in[0];
    const nn_node_t *src = &m->nodes[src_id];
    const float *W = nn_param(m, id, NN_P_WEIGHT, NULL);
    float *dx = nn_wants_grad(src_id, o) ? nn_grad_acc(m, src_id) : NULL;
    float *dW = o->param_grads ? nn_param_grad(m, id, NN_P_WEIGHT) : NULL;
    float *db = o->param_grads ? nn_param_grad(m, id, NN_P_BIAS) : NULL;
    const size_t in_hw = (size_t)src->h * src->w, out_hw = (size_t)nd->h * nd->w;
    const int cg = src->c / nd->groups, og = nd->out_c / nd->groups;
    if (is_depthwise(m, nd)) {
        const size_t taps = (size_t)nd->kh * nd->kw;
        int *cols = dx ? dw_tap_columns(nd, src->w) : NULL;
        if (dx && !cols)
            return SC_ERR_NOMEM;
        for (int i = 0; i < n; i++) {
            for (int co = 0; co < nd->out_c; co++) {
                const size_t in_off = ((size_t)i * src->c + co / og) * in_hw;
                const float *dy = nd->grad + ((size_t)i * nd->out_c + co) * out_hw;
                if (dW || db)
                    dw_backward_params_plane(nd, src->h, src->w, src->out + in_off, dy,
                                             dW ? dW + co * taps : NULL, db ? db + co : NULL);
                if (dx)
                    dw_backward_input_plane(nd, src->h, src->w, cols, W + co * taps, dy,
                                            dx + in_off);
            }
        }
        free(cols);
        return 0;
    }
    conv2d_shape_t s = group_shape(m, nd);
    const size_t w_group = (size_t)og * cg * nd->kh * nd->kw;
    for (int i = 0; i < n; i++) {
        for (int g = 0; g < nd->groups; g++) {
            const size_t in_off = ((size_t)i * src->c + (size_t)g * cg) * in_hw;
            conv2d_backward(&s, src->out + in_off, W + g * w_group,
                            nd->grad + ((size_t)i * nd->out_c + (size_t)g * og) * out_hw,
                            dx ? dx + in_off : NULL, dW ? dW + g * w_group : NULL,
                            db ? db + g * og : NULL, m->workspace);
        }
    }
    return 0;
}

static double gconv_flops(const nn_model_t *m, const nn_node_t *nd)
{
    return 2.0 * nd->out_c * (m->nodes[nd->in[0]].c / nd->groups) * nd->kh * nd->kw * nd->h *
           nd->w;
}

static void gconv_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    snprintf(buf, len, " out_c=%d groups=%d k=%d,%d s=%d,%d pad=%d,%d,%d,%d bias=%d init=%d",
             nd->out_c, nd->groups, nd->kh, nd->kw, nd->sh, nd->sw, nd->pt, nd->pb, nd->pl,
             nd->pr, nd->has_bias, (int)nd->init);
}

const nn_op_def_t nn_op_gconv = {
    .name = "gconv",
    .pc = NN_PC_WINDOW,
    .pc_canonical = 1,
    .sign = NN_SIGN_ANY,
    .infer = gconv_infer,
    .param_shape = gconv_param_shape,
    .init = gconv_init,
    .workspace = gconv_workspace,
    .forward = gconv_forward,
    .backward = gconv_backward,
    .flops = gconv_flops,
    .bwd_reads = NN_READS_NOTHING | NN_READS_INPUTS_PARAM,
    .write_attrs = gconv_write_attrs,
};
