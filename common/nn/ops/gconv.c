/*
 * ops/gconv.c - grouped and depthwise 2-D convolution (PyTorch's groups,
 * ONNX Conv with group > 1).
 *
 * Owned by common/nn. The input's c channels and the out_c outputs split into
 * `groups` equal parts; output group g reads input group g only, through a
 * weight [out_c, c/groups, kh, kw]. Two kernels:
 *   - depthwise (one input channel per group, any channel multiplier):
 *     direct loops, never a patch matrix. Stride 1 (ConvNeXt's 7x7,
 *     EfficientNet's 3x3 and 5x5): the plane is copied into a zero-bordered
 *     buffer and a register-blocked kernel computes 7 or 8 output rows x
 *     one vector of columns at a time in registers, each kernel column's
 *     weights broadcast once and each input vector loaded once for all the
 *     rows it reaches; the input gradient is the same kernel
 *     over the zero-bordered output gradient with the taps flipped. Stride 2
 *     (EfficientNet's downsampling): the bordered plane split into its even and
 *     odd columns, so the same register blocks read consecutive values; the
 *     input gradient by the four parity classes of dx, both column classes of
 *     a row at once. Other strides: one kernel tap at a time over whole output
 *     rows;
 *   - grouped (several input channels per group, ResNeXt, RegNet): the
 *     im2col + GEMM convolution of nn/conv.c called per group on the group's
 *     contiguous channel planes.
 * Every output position of a kernel sums its taps in the same order (the
 * stride-1 kernel kx, then ky, with fused multiply-adds where the build has
 * them; the others ky, then kx; the zero border adds exact zeros), and the
 * output is canonicalized to its position classes like conv.
 */
#include "nn/op.h"
#include "nn/ops/conv_node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__) || defined(__FMA__)
#include <immintrin.h>
#endif

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

/* Stride 1, register-blocked: DW_ROWS output rows x DW_LANES columns accumulate in vector
 * registers while the input rows they read pass by once. */
#define DW_LANES 8
#define DW_ROWS 4
typedef float dw_vec __attribute__((vector_size(DW_LANES * sizeof(float))));

static inline dw_vec dw_load(const float *p)
{
    dw_vec v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The first rows x lanes of a register block to out (row length ow). */
static inline void dw_store_block(const dw_vec *a, int rows, int lanes, float *out, int ow)
{
    for (int r = 0; r < rows; r++) {
        float *dst = out + (size_t)r * ow;
        if (lanes == DW_LANES) {
            memcpy(dst, &a[r], sizeof a[r]);
        } else {
            float t[DW_LANES];
            memcpy(t, &a[r], sizeof t);
            memcpy(dst, t, sizeof(float) * lanes);
        }
    }
}

/* The stride-1 kernel's vectors: a whole AVX-512 register where the build has one (each
 * output is the same sequence of operations at any width, so the same bits; a build without
 * fused multiply-adds rounds each product, so its bits differ from one with them). */
#ifdef __AVX512F__
#define DW1_LANES 16
#else
#define DW1_LANES 8
#endif
typedef float dw1_vec __attribute__((vector_size(DW1_LANES * sizeof(float))));

/* a + w x, one rounding where the build has fused multiply-adds */
static inline dw1_vec dw1_fma(dw1_vec w, dw1_vec x, dw1_vec a)
{
#if defined(__AVX512F__)
    return (dw1_vec)_mm512_fmadd_ps((__m512)w, (__m512)x, (__m512)a);
#elif defined(__FMA__)
    return (dw1_vec)_mm256_fmadd_ps((__m256)w, (__m256)x, (__m256)a);
#else
    return a + w * x;
#endif
}

static inline dw1_vec dw1_load(const float *p)
{
    dw1_vec v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void dw1_store_block(const dw1_vec *a, int rows, int lanes, float *out, int ow)
{
    for (int r = 0; r < rows; r++) {
        float *dst = out + (size_t)r * ow;
        if (lanes == DW1_LANES) {
            memcpy(dst, &a[r], sizeof a[r]);
        } else {
            float t[DW1_LANES];
            memcpy(t, &a[r], sizeof t);
            memcpy(dst, t, sizeof(float) * lanes);
        }
    }
}

/* Output rows of one stride-1 register block: 7 for 7-row kernels (ConvNeXt's planes of 56,
 * 28, 14 and 7 rows divide into whole blocks), else 8. */
#define DW1_MAX_ROWS 8
#define DW_MAX_KH 13 /* kernel rows of the stride-1 kernel (their weights in registers) */
static int dw1_rows(int kh) { return kh == 7 ? 7 : 8; }

/* The zero-bordered plane of the stride-1 kernel: a plane of oh x ow outputs read through a
 * kh x kw window needs (oh rounded up to dw1_rows) + kh - 1 rows of (ow rounded up to
 * DW1_LANES) + kw - 1 columns; *stride gets the row length. */
static size_t dw_s1_floats(int oh, int ow, int kh, int kw, int *stride)
{
    const int R = dw1_rows(kh);
    const int rows = (oh + R - 1) / R * R + kh - 1;
    *stride = (ow + DW1_LANES - 1) / DW1_LANES * DW1_LANES + kw - 1;
    return (size_t)rows * (size_t)*stride;
}

/* Copies src [h x w] into buf (row length bs) at row top, column left; the rest of buf keeps
 * the zeros the caller wrote once for all planes of the same geometry. */
static void dw_s1_fill(float *buf, int bs, const float *src, int h, int w, int top, int left)
{
    for (int y = 0; y < h; y++)
        memcpy(buf + (size_t)(y + top) * bs + left, src + (size_t)y * w, sizeof(float) * w);
}

/* out[oy, ox] (row length ow) = (acc ? out[oy, ox] : bias) + sum over kx, then ky, of
 * wk[ky kw + kx] * buf[oy + ky, ox + kx] for the oh x ow outputs (fused multiply-adds where
 * the build has them); buf is bs floats a row with the rows and columns dw_s1_floats gives.
 * A block of R output rows x DW1_LANES columns stays in registers; for each kernel column
 * the kh weights are broadcast once and each of the R + kh - 1 input rows is loaded once
 * for all the output rows it reaches, so the loop is bound by its multiply-adds rather than
 * by loading a weight for each of them. */
static inline __attribute__((always_inline)) void
dw_s1_plane_body(const float *buf, int bs, int oh, int ow, const int kh, const int kw,
                 const int R, const float *wk, float bias, int acc, float *out)
{
    for (int oy0 = 0; oy0 < oh; oy0 += R) {
        const int rows = oh - oy0 < R ? oh - oy0 : R;
        for (int ox0 = 0; ox0 < ow; ox0 += DW1_LANES) {
            const int lanes = ow - ox0 < DW1_LANES ? ow - ox0 : DW1_LANES;
            dw1_vec a[DW1_MAX_ROWS];
#pragma GCC unroll 16
            for (int r = 0; r < R; r++) {
                if (acc && r < rows && lanes == DW1_LANES) {
                    a[r] = dw1_load(out + (size_t)(oy0 + r) * ow + ox0);
                } else if (acc && r < rows) {
                    float t[DW1_LANES] = {0};
                    memcpy(t, out + (size_t)(oy0 + r) * ow + ox0, sizeof(float) * lanes);
                    a[r] = dw1_load(t);
                } else {
                    a[r] = (dw1_vec){0} + bias;
                }
            }
            const float *src = buf + (size_t)oy0 * bs + ox0;
            for (int kx = 0; kx < kw; kx++) {
                dw1_vec w[DW_MAX_KH];
#pragma GCC unroll 16
                for (int ky = 0; ky < kh && ky < DW_MAX_KH; ky++)
                    w[ky] = (dw1_vec){0} + wk[ky * kw + kx];
                /* input row oy0 + i feeds output row oy0 + r through kernel row i - r */
#pragma GCC unroll 32
                for (int i = 0; i < R + kh - 1; i++) {
                    const dw1_vec xv = dw1_load(src + (size_t)i * bs + kx);
#pragma GCC unroll 16
                    for (int r = 0; r < R; r++) {
                        const int ky = i - r;
                        if (ky >= 0 && ky < kh && ky < DW_MAX_KH)
                            a[r] = dw1_fma(w[ky], xv, a[r]);
                    }
                }
            }
            dw1_store_block(a, rows, lanes, out + (size_t)oy0 * ow + ox0, ow);
        }
    }
}

/* dw_s1_plane_body with the kernel sizes of the imported families as constants, so the tap
 * loops unroll and the row conditions fold. */
static void dw_s1_plane(const float *buf, int bs, int oh, int ow, int kh, int kw, const float *wk,
                        float bias, int acc, float *out)
{
    if (kh == 7 && kw == 7)
        dw_s1_plane_body(buf, bs, oh, ow, 7, 7, dw1_rows(7), wk, bias, acc, out);
    else if (kh == 5 && kw == 5)
        dw_s1_plane_body(buf, bs, oh, ow, 5, 5, dw1_rows(5), wk, bias, acc, out);
    else if (kh == 3 && kw == 3)
        dw_s1_plane_body(buf, bs, oh, ow, 3, 3, dw1_rows(3), wk, bias, acc, out);
    else
        dw_s1_plane_body(buf, bs, oh, ow, kh, kw, dw1_rows(kh), wk, bias, acc, out);
}

#define DW_MAX_TAPS 169 /* 13 x 13: the flipped taps of the input gradient live on the stack */

/* Does the stride-1 kernel apply (stride 1, each padding within the kernel's reach)? */
static int dw_s1_applies(const nn_node_t *nd)
{
    return nd->sh == 1 && nd->sw == 1 && nd->pt < nd->kh && nd->pb < nd->kh &&
           nd->pl < nd->kw && nd->pr < nd->kw && nd->kh <= DW_MAX_KH &&
           nd->kh * nd->kw <= DW_MAX_TAPS;
}

/* Stride-1 forward of n images: every output plane through dw_s1_plane. */
static int dw_s1_forward(const nn_model_t *m, const nn_node_t *nd, int n, const float *W,
                         const float *b)
{
    const nn_node_t *src = &m->nodes[nd->in[0]];
    const size_t in_hw = (size_t)src->h * src->w, out_hw = (size_t)nd->h * nd->w;
    const size_t taps = (size_t)nd->kh * nd->kw;
    const int og = nd->out_c / nd->groups;
    int bs;
    const size_t floats = dw_s1_floats(nd->h, nd->w, nd->kh, nd->kw, &bs);
    float *buf = malloc(sizeof(float) * floats);
    if (!buf) {
        SC_ERROR("gconv '%s': out of memory", nd->name);
        return SC_ERR_NOMEM;
    }
    memset(buf, 0, sizeof(float) * floats);
    for (int i = 0; i < n; i++) {
        for (int ci = 0; ci < src->c; ci++) {
            dw_s1_fill(buf, bs, src->out + ((size_t)i * src->c + ci) * in_hw, src->h,
                       src->w, nd->pt, nd->pl);
            for (int co = ci * og; co < (ci + 1) * og; co++)
                dw_s1_plane(buf, bs, nd->h, nd->w, nd->kh, nd->kw, W + co * taps,
                            b ? b[co] : 0.0f, 0, nd->out + ((size_t)i * nd->out_c + co) * out_hw);
        }
    }
    free(buf);
    return 0;
}

/* Stride-1 input gradient of one output plane, accumulated into dx (h x w), or written
 * when assign (the same sums as adding onto zeros):
 * dx[iy, ix] += sum w[ky, kx] dy[iy + pt - ky, ix + pl - kx], the forward kernel over dy
 * bordered by kh - 1 - pt rows and kw - 1 - pl columns with the taps flipped. */
static void dw_s1_backward_input_plane(const nn_node_t *nd, int h, int w, float *buf, int bs,
                                       const float *wk, const float *dy, int assign, float *dx)
{
    float flip[DW_MAX_TAPS];
    const int taps = nd->kh * nd->kw;
    for (int t = 0; t < taps; t++)
        flip[t] = wk[taps - 1 - t];
    dw_s1_fill(buf, bs, dy, nd->h, nd->w, nd->kh - 1 - nd->pt, nd->kw - 1 - nd->pl);
    dw_s1_plane(buf, bs, h, w, nd->kh, nd->kw, flip, 0.0f, !assign, dx);
}


/* ---- stride 2 (both axes): the bordered plane split by column parity ---- */

/* The buffer of the stride-2 kernels: bordered row y, its even columns at (2 y) bs and its
 * odd ones at (2 y + 1) bs (bordered column c at index c / 2 of its parity's row); rows of
 * cols bordered columns. */
static size_t dw_s2_floats(int rows, int cols, int *stride)
{
    *stride = cols / 2 + 1;
    return (size_t)rows * 2 * (size_t)*stride;
}

/* Lane selections of two 8-lane vectors (gcc >= 12 and clang both have __builtin_shufflevector) */
_Static_assert(DW_LANES == 8, "the stride-2 shuffles take 8-lane vectors");
#define DW_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
#define DW_ODD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15)
#define DW_ZIP_LO(a, b) __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11)
#define DW_ZIP_HI(a, b) __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15)

static inline void dw_store(float *p, dw_vec v) { memcpy(p, &v, sizeof v); }

/* Copies src [h x w] into buf's rows and parities at bordered row top, column left (what
 * falls past the buffer is not read by the kernels and is left out); the rest of buf keeps
 * the zeros the caller wrote once for all planes of the same geometry. Input columns 2 u
 * and 2 u + 1 go to index u + left / 2 of parity left % 2 and index u + (left + 1) / 2 of
 * the other. */
static void dw_s2_fill(float *buf, int bs, int rows, const float *src, int h, int w, int top,
                       int left)
{
    const int pe = left & 1, ie = left >> 1, io = (left + 1) >> 1;
    const int wmax = w < 2 * bs - left ? w : 2 * bs - left;
    for (int y = 0; y < h && y + top < rows; y++) {
        const float *row = src + (size_t)y * w;
        float *de = buf + (size_t)(2 * (y + top) + pe) * bs + ie;
        float *dodd = buf + (size_t)(2 * (y + top) + 1 - pe) * bs + io;
        int u = 0;
        for (; 2 * u + 2 * DW_LANES <= wmax; u += DW_LANES) {
            const dw_vec v0 = dw_load(row + 2 * u), v1 = dw_load(row + 2 * u + DW_LANES);
            dw_store(de + u, DW_EVEN(v0, v1));
            dw_store(dodd + u, DW_ODD(v0, v1));
        }
        for (int x = 2 * u; x < wmax; x++)
            (x & 1 ? dodd : de)[x >> 1] = row[x];
    }
}

/* The stride-2 forward of one plane: out[oy, ox] = bias + sum over ky, then kx, of
 * wk[ky kw + kx] * bordered[2 oy + ky, 2 ox + kx], DW_ROWS output rows x DW_LANES columns in
 * registers, each parity row's vector loaded once for all the output rows it reaches. */
static inline __attribute__((always_inline)) void
dw_s2_plane_body(const float *buf, int bs, int oh, int ow, const int kh, const int kw,
                 const float *wk, float bias, float *out)
{
    for (int oy0 = 0; oy0 < oh; oy0 += DW_ROWS) {
        const int rows = oh - oy0 < DW_ROWS ? oh - oy0 : DW_ROWS;
        for (int ox0 = 0; ox0 < ow; ox0 += DW_LANES) {
            const int lanes = ow - ox0 < DW_LANES ? ow - ox0 : DW_LANES;
            dw_vec a[DW_ROWS];
            for (int r = 0; r < DW_ROWS; r++)
                a[r] = (dw_vec){0} + bias;
            /* bordered row 2 oy0 + i feeds output row oy0 + r through kernel row i - 2 r */
            for (int i = 0; i < 2 * (DW_ROWS - 1) + kh; i++) {
                const float *even = buf + (size_t)(2 * (2 * oy0 + i)) * bs + ox0;
                for (int kx = 0; kx < kw; kx++) {
                    const dw_vec xv = dw_load(even + (kx & 1) * (size_t)bs + (kx >> 1));
#pragma GCC unroll 4
                    for (int r = 0; r < DW_ROWS; r++) {
                        const int ky = i - 2 * r;
                        if (ky >= 0 && ky < kh)
                            a[r] += wk[ky * kw + kx] * xv;
                    }
                }
            }
            dw_store_block(a, rows, lanes, out + (size_t)oy0 * ow + ox0, ow);
        }
    }
}

static void dw_s2_plane(const float *buf, int bs, int oh, int ow, int kh, int kw, const float *wk,
                        float bias, float *out)
{
    if (kh == 3 && kw == 3)
        dw_s2_plane_body(buf, bs, oh, ow, 3, 3, wk, bias, out);
    else if (kh == 5 && kw == 5)
        dw_s2_plane_body(buf, bs, oh, ow, 5, 5, wk, bias, out);
    else
        dw_s2_plane_body(buf, bs, oh, ow, kh, kw, wk, bias, out);
}

static int dw_s2_applies(const nn_node_t *nd)
{
    return nd->sh == 2 && nd->sw == 2 && nd->kh * nd->kw <= DW_MAX_TAPS;
}

static int dw_round(int v, int to) { return (v + to - 1) / to * to; }

/* Stride-2 forward of n images. */
static int dw_s2_forward(const nn_model_t *m, const nn_node_t *nd, int n, const float *W,
                         const float *b)
{
    const nn_node_t *src = &m->nodes[nd->in[0]];
    const size_t in_hw = (size_t)src->h * src->w, out_hw = (size_t)nd->h * nd->w;
    const size_t taps = (size_t)nd->kh * nd->kw;
    const int og = nd->out_c / nd->groups;
    const int rows = 2 * (dw_round(nd->h, DW_ROWS) - 1) + nd->kh;
    int bs;
    const size_t floats = dw_s2_floats(rows, 2 * (dw_round(nd->w, DW_LANES) - 1) + nd->kw, &bs);
    float *buf = calloc(floats, sizeof(float));
    if (!buf) {
        SC_ERROR("gconv '%s': out of memory", nd->name);
        return SC_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++) {
        for (int ci = 0; ci < src->c; ci++) {
            dw_s2_fill(buf, bs, rows, src->out + ((size_t)i * src->c + ci) * in_hw, src->h,
                       src->w, nd->pt, nd->pl);
            for (int co = ci * og; co < (ci + 1) * og; co++)
                dw_s2_plane(buf, bs, nd->h, nd->w, nd->kh, nd->kw, W + co * taps,
                            b ? b[co] : 0.0f, nd->out + ((size_t)i * nd->out_c + co) * out_hw);
        }
    }
    free(buf);
    return 0;
}

/* The stride-2 input gradient of one plane, by the parity classes of dx: dx[iy, ix] with
 * iy + pt = 2 i + qy, ix + pl = 2 j + qx gets w[qy + 2 my, qx + 2 mx] dy[i - my, j - mx]
 * over my, then mx, ascending (the order of ky, then kx), added onto dx (acc) or onto zero.
 * Both column classes of a row are computed together (they read the same dy vectors) and
 * stored interleaved, 2 DW_LANES consecutive dx columns. buf holds dy bordered by
 * T = (kh - 1) / 2 rows and L = (kw - 1) / 2 columns, bs floats a row; ni x nj (i, j)
 * positions per class (whole blocks; the ones outside dx are dropped). */
static inline __attribute__((always_inline)) void
dw_s2_backward_body(const float *buf, int bs, int ni, int nj, const int kh, const int kw,
                    int pt, int pl, int h, int w, const float *wk, int acc, float *dx)
{
    const int T = (kh - 1) / 2, L = (kw - 1) / 2;
    const int nmx0 = (kw + 1) / 2, nmx1 = kw / 2; /* taps of the even and odd column classes */
    for (int i0 = 0; i0 < ni; i0 += DW_ROWS) {
        /* the band of 2 DW_ROWS dx rows after this one, fetched for writing while this
         * one computes (its rows come every other row from the two classes) */
        for (int v = 2 * i0 + 2 * DW_ROWS - pt; v < 2 * i0 + 4 * DW_ROWS - pt; v++)
            if (v >= 0 && v < h)
                for (int e = 0; e < w; e += 16)
                    __builtin_prefetch(dx + (size_t)v * w + e, 1, 3);
        for (int qy = 0; qy < 2; qy++) { /* a class without taps (1-wide kernels) gets zeros */
            const int nmy = (kh - qy + 1) / 2;
            for (int j0 = 0; j0 < nj; j0 += DW_LANES) {
                const int ix0 = 2 * j0 - pl; /* dx column of lane 0 of the even class */
                const int whole = ix0 >= 0 && ix0 + 2 * DW_LANES <= w;
                /* else the lanes [e0, e1) of the 2 DW_LANES columns lie inside dx */
                const int e0 = ix0 < 0 ? -ix0 : 0;
                const int e1 = w - ix0 < 2 * DW_LANES ? w - ix0 : 2 * DW_LANES;
                const uint32_t in = e1 > e0 ? ((1u << e1) - 1) & ~((1u << e0) - 1) : 0;
                (void)in; /* the masks of the AVX-512 accesses below */
                dw_vec a0[DW_ROWS], a1[DW_ROWS];
                for (int r = 0; r < DW_ROWS; r++) {
                    const int iy = 2 * (i0 + r) + qy - pt;
                    float t[2 * DW_LANES] = {0};
                    dw_vec lo, hi;
                    if (acc && iy >= 0 && iy < h) {
                        const float *row = dx + (size_t)iy * w + ix0;
                        if (whole) {
                            lo = dw_load(row);
                            hi = dw_load(row + DW_LANES);
                        } else {
#if defined(__AVX512F__) && defined(__AVX512VL__) && DW_LANES == 8
                            lo = (dw_vec)_mm256_maskz_loadu_ps((__mmask8)in, row);
                            hi = (dw_vec)_mm256_maskz_loadu_ps((__mmask8)(in >> 8), row + 8);
#else
                            for (int e = e0; e < e1; e++)
                                t[e] = row[e];
                            lo = dw_load(t);
                            hi = dw_load(t + DW_LANES);
#endif
                        }
                    } else {
                        lo = hi = dw_load(t);
                    }
                    a0[r] = DW_EVEN(lo, hi);
                    a1[r] = DW_ODD(lo, hi);
                }
                /* dy row i0 + d (buffer row i0 + d + T) reaches class row i0 + r through
                 * my = r - d: d descending is my ascending */
                for (int d = DW_ROWS - 1; d > -nmy; d--) {
                    const float *src = buf + (size_t)(i0 + d + T) * bs + j0 + L;
                    for (int mx = 0; mx < nmx0; mx++) {
                        const dw_vec xv = dw_load(src - mx);
#pragma GCC unroll 4
                        for (int r = 0; r < DW_ROWS; r++) {
                            const int my = r - d;
                            if (my >= 0 && my < nmy) {
                                const float *wr = wk + (qy + 2 * my) * kw + 2 * mx;
                                a0[r] += wr[0] * xv;
                                if (mx < nmx1)
                                    a1[r] += wr[1] * xv;
                            }
                        }
                    }
                }
                for (int r = 0; r < DW_ROWS; r++) {
                    const int iy = 2 * (i0 + r) + qy - pt;
                    if (iy < 0 || iy >= h)
                        continue;
                    float *row = dx + (size_t)iy * w + ix0;
                    const dw_vec lo = DW_ZIP_LO(a0[r], a1[r]);
                    const dw_vec hi = DW_ZIP_HI(a0[r], a1[r]);
                    if (whole) {
                        dw_store(row, lo);
                        dw_store(row + DW_LANES, hi);
                    } else {
#if defined(__AVX512F__) && defined(__AVX512VL__) && DW_LANES == 8
                        _mm256_mask_storeu_ps(row, (__mmask8)in, (__m256)lo);
                        _mm256_mask_storeu_ps(row + 8, (__mmask8)(in >> 8), (__m256)hi);
#else
                        float t[2 * DW_LANES];
                        dw_store(t, lo);
                        dw_store(t + DW_LANES, hi);
                        for (int e = e0; e < e1; e++)
                            row[e] = t[e];
#endif
                    }
                }
            }
        }
    }
}

static void dw_s2_backward_plane(const float *buf, int bs, int ni, int nj, int kh, int kw, int pt,
                                 int pl, int h, int w, const float *wk, int acc, float *dx)
{
    if (kh == 3 && kw == 3)
        dw_s2_backward_body(buf, bs, ni, nj, 3, 3, pt, pl, h, w, wk, acc, dx);
    else if (kh == 5 && kw == 5)
        dw_s2_backward_body(buf, bs, ni, nj, 5, 5, pt, pl, h, w, wk, acc, dx);
    else
        dw_s2_backward_body(buf, bs, ni, nj, kh, kw, pt, pl, h, w, wk, acc, dx);
}

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
    if (is_depthwise(m, nd) && dw_s1_applies(nd))
        return dw_s1_forward(m, nd, n, W, b);
    if (is_depthwise(m, nd) && dw_s2_applies(nd))
        return dw_s2_forward(m, nd, n, W, b);
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
    /* The first contribution to dx overwrites it (no zeroing pass over the whole buffer):
     * the first output plane of each input plane writes it, the others add. */
    int assign = 0;
    float *dx = nn_wants_grad(src_id, o) ? nn_grad_dst(m, src_id, &assign) : NULL;
    float *dW = o->param_grads ? nn_param_grad(m, id, NN_P_WEIGHT) : NULL;
    float *db = o->param_grads ? nn_param_grad(m, id, NN_P_BIAS) : NULL;
    const size_t in_hw = (size_t)src->h * src->w, out_hw = (size_t)nd->h * nd->w;
    const int cg = src->c / nd->groups, og = nd->out_c / nd->groups;
    if (is_depthwise(m, nd)) {
        const size_t taps = (size_t)nd->kh * nd->kw;
        const int s1 = dw_s1_applies(nd), s2 = !s1 && dw_s2_applies(nd);
        int bs = 0, ni = 0, nj = 0;
        size_t floats = s1 ? dw_s1_floats(src->h, src->w, nd->kh, nd->kw, &bs) : 0;
        if (s2) { /* (i, j) of every parity class of dx, in whole blocks, and dy bordered */
            ni = dw_round(((src->h - 1 + nd->pt) >> 1) + 1, DW_ROWS);
            nj = dw_round(((src->w - 1 + nd->pl) >> 1) + 1, DW_LANES);
            floats = (size_t)(ni + (nd->kh - 1) / 2) * (size_t)(bs = nj + (nd->kw - 1) / 2);
        }
        int *cols = dx && !s1 && !s2 ? dw_tap_columns(nd, src->w) : NULL;
        float *buf = dx && (s1 || s2) ? malloc(sizeof(float) * floats) : NULL;
        if (dx && !cols && !buf) {
            SC_ERROR("gconv '%s': out of memory", nd->name);
            return SC_ERR_NOMEM;
        }
        if (buf)
            memset(buf, 0, sizeof(float) * floats);
        for (int i = 0; i < n; i++) {
            for (int co = 0; co < nd->out_c; co++) {
                const size_t in_off = ((size_t)i * src->c + co / og) * in_hw;
                const float *dy = nd->grad + ((size_t)i * nd->out_c + co) * out_hw;
                if (dW || db)
                    dw_backward_params_plane(nd, src->h, src->w, src->out + in_off, dy,
                                             dW ? dW + co * taps : NULL, db ? db + co : NULL);
                const int first = assign && co % og == 0;
                if (dx && s1) {
                    dw_s1_backward_input_plane(nd, src->h, src->w, buf, bs, W + co * taps, dy,
                                               first, dx + in_off);
                } else if (dx && s2) {
                    /* dy at row T, column L of the zero border (rows and columns past
                     * ni + T, nj + L are never read) */
                    const int T = (nd->kh - 1) / 2, L = (nd->kw - 1) / 2;
                    for (int y = 0; y < nd->h && y + T < ni + T; y++)
                        memcpy(buf + (size_t)(y + T) * bs + L, dy + (size_t)y * nd->w,
                               sizeof(float) * (size_t)(nd->w < nj ? nd->w : nj));
                    dw_s2_backward_plane(buf, bs, ni, nj, nd->kh, nd->kw, nd->pt, nd->pl,
                                         src->h, src->w, W + co * taps, !first, dx + in_off);
                } else if (dx) {
                    if (first)
                        memset(dx + in_off, 0, sizeof(float) * in_hw);
                    dw_backward_input_plane(nd, src->h, src->w, cols, W + co * taps, dy,
                                            dx + in_off);
                }
            }
        }
        free(buf);
        free(cols);
        return 0;
    }
    conv2d_shape_t s = group_shape(m, nd);
    const size_t w_group = (size_t)og * cg * nd->kh * nd->kw;
    for (int i = 0; i < n; i++) {
        for (int g = 0; g < nd->groups; g++) {
            const size_t in_off = ((size_t)i * src->c + (size_t)g * cg) * in_hw;
            const float *dy = nd->grad + ((size_t)i * nd->out_c + (size_t)g * og) * out_hw;
            if (dW || db)
                conv2d_backward(&s, src->out + in_off, W + g * w_group, dy, NULL,
                                dW ? dW + g * w_group : NULL, db ? db + g * og : NULL,
                                m->workspace);
            if (dx) /* each group's channels of dx get this one contribution */
                conv2d_backward_data(&s, W + g * w_group, dy, dx + in_off, assign, m->workspace);
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
