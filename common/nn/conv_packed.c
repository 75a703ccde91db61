/*
 * conv_packed.c - convolutions of small images, several images per packed
 * GEMM (conv_packed.h).
 *
 * Owned by common/nn. Forward: y[oc, images x P] = W[oc, K] B[K, images x P]
 * (W read in place, no pack: at batch 1 packing the weights of a 7 x 7 layer
 * cost more than its product) with B the images' inputs (pointwise) or their
 * patch matrices, one segment per image (nn_gemm_seg_t), the output segments
 * the images' planes in y. The patch matrices are packed into the GEMM's
 * strips straight from the images where the stride along rows is 1
 * (conv_pack_direct), else built by im2col a slice of columns at a time.
 * Input gradient: stride 1, the forward of the adjoint (dy correlated with
 * the flipped, transposed weights, packed once per model state by
 * nn/wpack.h), straight into dx; else dcol[K, images x P] = W^T dy (W^T
 * packed likewise), straight into dx when pointwise, else into the group's
 * patch matrices, a slice of input channels at a time, and added back by
 * col2im image by image while the slice is in L2.
 */
#include "nn/conv_packed.h"

#include <stdint.h>
#include <string.h>

#include "nn/gemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CONV_DIRECT 1
#else
#define CONV_DIRECT 0
#endif

static int conv_packed_pointwise(const conv2d_shape_t *s)
{
    return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->pt == 0 && s->pb == 0 &&
           s->pl == 0 && s->pr == 0;
}

int conv_packed_wanted(const conv2d_shape_t *s, int backward)
{
    const int p = s->oh * s->ow;
    const int lo = backward ? CONV_PACKED_BWD_BLAS_MIN : CONV_PACKED_FWD_BLAS_MIN;
    const int hi = backward ? CONV_PACKED_BWD_BLAS_MAX : CONV_PACKED_FWD_BLAS_MAX;
    return (p < lo || p > hi) && nn_gemm_available();
}

int conv_packed_group(const conv2d_shape_t *s)
{
    const size_t p = (size_t)s->oh * s->ow, k = (size_t)s->c * s->kh * s->kw;
    if (p >= CONV_PACKED_GROUP_COLUMNS)
        return 1;
    int g = (int)((CONV_PACKED_GROUP_COLUMNS + p - 1) / p);
    while (g > 1 && !conv_packed_pointwise(s) && (size_t)g * k * p > CONV_PACKED_GROUP_FLOATS)
        g--;
    return g;
}

int conv_packed_bwd_direct(const conv2d_shape_t *s)
{
    return CONV_DIRECT && s->sh == 1 && s->sw == 1 && !conv_packed_pointwise(s) &&
           s->pt < s->kh && s->pb < s->kh && s->pl < s->kw && s->pr < s->kw;
}

/* The input gradient of a stride-1 convolution as a forward one: dy (oc
 * channels of oh x ow) correlated with the weights flipped in space and
 * transposed in channels, padded by kernel - 1 - padding, gives dx (c
 * channels of h x w). */
static conv2d_shape_t conv_packed_adjoint(const conv2d_shape_t *s, int n)
{
    conv2d_shape_t t = {.n = n, .c = s->oc, .h = s->oh, .w = s->ow, .oc = s->c, .kh = s->kh,
                        .kw = s->kw, .sh = 1, .sw = 1, .pt = s->kh - 1 - s->pt,
                        .pb = s->kh - 1 - s->pb, .pl = s->kw - 1 - s->pl, .pr = s->kw - 1 - s->pr};
    conv2d_shape_init(&t);
    return t;
}

size_t conv_packed_wt_floats(const conv2d_shape_t *s)
{
    if (conv_packed_bwd_direct(s))
        return nn_gemm_packed_floats(s->c, s->oc * s->kh * s->kw);
    return nn_gemm_packed_floats(s->c * s->kh * s->kw, s->oc);
}

void conv_packed_pack_wt(const conv2d_shape_t *s, const float *W, float *packed)
{
    const int K = s->c * s->kh * s->kw;
    if (!conv_packed_bwd_direct(s)) {
        nn_gemm_pack_a(K, s->oc, W, K, 1, packed);
        return;
    }
    /* row i (input channel), column q = (o, ky, kx) of the adjoint's weights:
     * W[o][i][kh - 1 - ky][kw - 1 - kx], in nn_gemm_pack_a's panels */
    const int taps = s->kh * s->kw, Kt = s->oc * taps;
    for (int i0 = 0; i0 < s->c; i0 += NN_GEMM_MR) {
        float *panel = packed + (size_t)i0 * Kt;
        for (int q = 0; q < Kt; q++) {
            const int o = q / taps, t = taps - 1 - q % taps;
            for (int r = 0; r < NN_GEMM_MR; r++)
                panel[(size_t)q * NN_GEMM_MR + r] =
                    i0 + r < s->c ? W[(size_t)o * K + (size_t)(i0 + r) * taps + t] : 0.0f;
        }
    }
}

static size_t conv_packed_a_floats(const conv2d_shape_t *s)
{
    const int K = s->c * s->kh * s->kw;
    const size_t fwd = nn_gemm_packed_floats(s->oc, K), bwd = conv_packed_wt_floats(s);
    return fwd > bwd ? fwd : bwd;
}

size_t conv_packed_workspace(const conv2d_shape_t *s)
{
    size_t col = 0;
    if (!conv_packed_pointwise(s))
        col = (size_t)conv_packed_group(s) * s->c * s->kh * s->kw * s->oh * s->ow;
    return conv_packed_a_floats(s) + nn_gemm_bpack_floats() + col;
}

int conv_packed_fwd_columns(const conv2d_shape_t *s)
{
    const size_t k = (size_t)s->c * s->kh * s->kw;
    const size_t w = CONV_PACKED_FWD_SLICE_FLOATS / k / NN_GEMM_NR * NN_GEMM_NR;
    return w < CONV_PACKED_FWD_SLICE_MIN ? CONV_PACKED_FWD_SLICE_MIN
           : w > (1u << 20)              ? (1 << 20)
                                         : (int)w;
}

void conv_packed_forward_cols(const conv2d_shape_t *s, const float *x, const float *W,
                              const float *b, int relu, float *y, float *ws, int columns)
{
    const int K = s->c * s->kh * s->kw, P = s->oh * s->ow, G = conv_packed_group(s);
    const size_t in_size = (size_t)s->c * s->h * s->w, out_size = (size_t)s->oc * P;
    float *bpack = ws + conv_packed_a_floats(s), *col = bpack + nn_gemm_bpack_floats();
    for (int i0 = 0; i0 < s->n; i0 += G) {
        nn_gemm_seg_t g = {.seg = P, .n_seg = s->n - i0 < G ? s->n - i0 : G, .c_seg = out_size,
                           .b_seg = in_size};
        float *yg = y + i0 * out_size;
        if (conv_packed_pointwise(s)) {
            nn_gemm_rows_seg(s->oc, K, W, K, x + i0 * in_size, P, yg, P, &g, 0, b, relu, bpack);
            continue;
        }
        /* the group's columns (image j / P, pixel j % P) a slice at a time */
        const int cols = g.n_seg * P;
        for (int j0 = 0; j0 < cols; j0 += columns) {
            const int n = cols - j0 < columns ? cols - j0 : columns;
            for (int img = j0 / P; img * P < j0 + n; img++) {
                const int p0 = j0 > img * P ? j0 - img * P : 0;
                const int p1 = j0 + n < (img + 1) * P ? j0 + n - img * P : P;
                conv2d_im2col_range(s, x + (i0 + img) * in_size, p0, p1,
                                    col + (img * P + p0 - j0), (size_t)n);
            }
            nn_gemm_rows_cols(s->oc, K, W, K, col, n, yg, P, &g, j0, n, 0, b, relu, bpack);
        }
    }
}

void conv_packed_forward_map(const conv2d_shape_t *s, const float *x, const float *W,
                             const float *b, int relu, float *y, nn_gemm_map_fn map, float *ws)
{
    const int K = s->c, P = s->oh * s->ow, G = conv_packed_group(s);
    const size_t in_size = (size_t)s->c * s->h * s->w, out_size = (size_t)s->oc * P;
    float *bpack = ws + conv_packed_a_floats(s);
    for (int i0 = 0; i0 < s->n; i0 += G) {
        const nn_gemm_seg_t g = {.seg = P, .n_seg = s->n - i0 < G ? s->n - i0 : G,
                                 .c_seg = out_size, .b_seg = in_size};
        nn_gemm_rows_seg_map(s->oc, K, W, K, x + i0 * in_size, P, y + i0 * out_size, P, &g, b,
                             relu, map, bpack);
    }
}

int conv_packed_mlp_columns(int pixels, int hidden)
{
    if (pixels < CONV_PACKED_MLP_MIN_PIXELS || hidden < 1)
        return 0;
    const size_t total = (size_t)pixels * hidden;
    const size_t slices = (total + CONV_PACKED_MLP_SLICE_FLOATS - 1) / CONV_PACKED_MLP_SLICE_FLOATS;
    const size_t cols = (pixels + slices - 1) / slices;
    const size_t w = (cols + NN_GEMM_NR - 1) / NN_GEMM_NR * NN_GEMM_NR;
    return w < (size_t)pixels ? (int)w : pixels;
}

size_t conv_packed_mlp_workspace(int pixels, int hidden)
{
    const int w = conv_packed_mlp_columns(pixels, hidden);
    return w ? nn_gemm_bpack_floats() + (size_t)hidden * w : 0;
}

void conv_packed_mlp_forward(const conv2d_shape_t *s1, const conv2d_shape_t *s2, const float *x,
                             const float *W1, const float *b1, float *u, nn_gemm_map_fn map,
                             const float *W2, const float *b2, int relu2, float *y, float *ws)
{
    const int P = s1->oh * s1->ow, H = s1->oc, w = conv_packed_mlp_columns(P, H);
    const size_t in_size = (size_t)s1->c * P, hid_size = (size_t)H * P, out_size = (size_t)s2->oc * P;
    for (int i = 0; i < s1->n; i++)
        for (int p0 = 0; p0 < P; p0 += w) {
            const nn_gemm_seg_t g = {.seg = P - p0 < w ? P - p0 : w, .n_seg = 1};
            float *ui = u + i * hid_size + p0;
            nn_gemm_rows_seg(H, s1->c, W1, s1->c, x + i * in_size + p0, P, ui, P, &g, 0, b1, 0, ws);
            nn_gemm_rows_seg_map(s2->oc, H, W2, H, ui, P, y + i * out_size + p0, P, &g, b2, relu2,
                                 map, ws);
        }
}

void conv_packed_mlp_backward(const conv2d_shape_t *s1, const conv2d_shape_t *s2,
                              const float *packed_w1t, const float *packed_w2t, const float *dy,
                              const float *u, nn_gemm_dmap_fn dmap, float *dx, int assign,
                              float *ws)
{
    const int P = s1->oh * s1->ow, H = s1->oc, w = conv_packed_mlp_columns(P, H);
    const size_t in_size = (size_t)s1->c * P, hid_size = (size_t)H * P, out_size = (size_t)s2->oc * P;
    float *bpack = ws, *d = ws + nn_gemm_bpack_floats();
    for (int i = 0; i < s1->n; i++)
        for (int p0 = 0; p0 < P; p0 += w) {
            const int cols = P - p0 < w ? P - p0 : w;
            const nn_gemm_seg_t g = {.seg = cols, .n_seg = 1};
            nn_gemm_packed_seg(H, s2->oc, packed_w2t, dy + i * out_size + p0, P, d, cols, &g, 0,
                               NULL, 0, bpack);
            const float *ui = u + i * hid_size + p0;
            for (int r = 0; r < H; r++)
                dmap(d + (size_t)r * cols, ui + (size_t)r * P, (size_t)cols);
            nn_gemm_packed_seg(s1->c, H, packed_w1t, d, cols, dx + i * in_size + p0, P, &g, !assign,
                               NULL, 0, bpack);
        }
}

void conv_packed_forward_sibs(const conv2d_shape_t *s, int n_mem, const int *oc,
                              const float *const *W, const float *const *b, const int *relu,
                              float *const *y, const float *x, float *bpack)
{
    const int K = s->c, P = s->oh * s->ow, G = conv_packed_group(s);
    const size_t in_size = (size_t)s->c * s->h * s->w;
    nn_gemm_member_t mem[NN_GEMM_MEMBERS];
    for (int i0 = 0; i0 < s->n; i0 += G) {
        const nn_gemm_seg_t g = {.seg = P, .n_seg = s->n - i0 < G ? s->n - i0 : G, .b_seg = in_size};
        for (int q = 0; q < n_mem; q++)
            mem[q] = (nn_gemm_member_t){oc[q], W[q], K, y[q] + (size_t)i0 * oc[q] * P,
                                        (size_t)oc[q] * P, b[q], relu[q]};
        nn_gemm_rows_multi(n_mem, mem, K, x + i0 * in_size, P, P, &g, bpack);
    }
}

void conv_packed_pack_sib_wt(int c, int n_mem, const int *oc, const float *const *W,
                             float *packed)
{
    int K = 0;
    for (int q = 0; q < n_mem; q++)
        K += oc[q];
    for (int i0 = 0; i0 < c; i0 += NN_GEMM_MR) {
        float *panel = packed + (size_t)i0 * K;
        for (int q = n_mem - 1, k0 = 0; q >= 0; k0 += oc[q--])
            for (int p = 0; p < oc[q]; p++)
                for (int r = 0; r < NN_GEMM_MR; r++)
                    panel[(size_t)(k0 + p) * NN_GEMM_MR + r] =
                        i0 + r < c ? W[q][(size_t)p * c + i0 + r] : 0.0f;
    }
}

void conv_packed_backward_sibs(const conv2d_shape_t *s, int n_mem, const int *oc,
                               const float *packed, const float *const *dy, float *dx,
                               int assign, float *bpack)
{
    const int P = s->oh * s->ow, G = conv_packed_group(s);
    const size_t in_size = (size_t)s->c * s->h * s->w;
    nn_gemm_ksrc_t src[NN_GEMM_MEMBERS];
    for (int i0 = 0; i0 < s->n; i0 += G) {
        const nn_gemm_seg_t g = {.seg = P, .n_seg = s->n - i0 < G ? s->n - i0 : G, .c_seg = in_size};
        for (int q = 0; q < n_mem; q++) { /* the last member's rows first */
            const int j = n_mem - 1 - q;
            src[q] = (nn_gemm_ksrc_t){oc[j], dy[j] + (size_t)i0 * oc[j] * P, (size_t)oc[j] * P};
        }
        nn_gemm_packed_ksrc(s->c, packed, n_mem, src, P, dx + i0 * in_size, P, &g, !assign, bpack);
    }
}

int conv_packed_direct(const conv2d_shape_t *s)
{
    return CONV_DIRECT && s->sw == 1 && !conv_packed_pointwise(s);
}

#if CONV_DIRECT
/* What the packer of one group reads: its first image and the shape. */
typedef struct {
    const conv2d_shape_t *s;
    const float *x;
    size_t in_size;
} conv_bsrc_t;

/* A run of a strip: lanes [lane0, lane0 + len) are output pixels ox0 ..
 * ox0 + len - 1 of row oy of image img (stride 1 along a row, so the lanes
 * read consecutive input columns). */
typedef struct {
    int lane0, len, img, oy, ox0;
} conv_run_t;

/* One masked load of a strip row: the lanes `mask` (bit l: lane l of the
 * 32) read x + channel * plane + off + l, off in floats (lane 0's column,
 * which may lie outside the row: only an address, never read). */
typedef struct {
    uint32_t mask;
    ptrdiff_t off;
} conv_load_t;

#define CONV_TAPS_TABLED 64 /* kernels of up to this many taps get a table per strip */

/* The loads of run u for tap (ky, kx): 0 or 1, into *e. */
static inline int conv_run_load(const conv2d_shape_t *s, const conv_run_t *u, size_t in_size,
                                int ky, int kx, conv_load_t *e)
{
    const int iy = u->oy * s->sh - s->pt + ky;
    if (iy < 0 || iy >= s->h)
        return 0;
    /* lane l reads input column ix0 + l - lane0; in the image for
     * lo <= l - lane0 < hi */
    const int ix0 = u->ox0 - s->pl + kx;
    const int lo = ix0 < 0 ? -ix0 : 0;
    const int hi = s->w - ix0 < u->len ? s->w - ix0 : u->len;
    if (hi <= lo)
        return 0;
    e->mask = (uint32_t)((((uint64_t)1 << hi) - 1) & ~(((uint64_t)1 << lo) - 1)) << u->lane0;
    e->off = (ptrdiff_t)((size_t)u->img * in_size + (size_t)iy * s->w) + (ptrdiff_t)(ix0 - u->lane0);
    return 1;
}

/* The runs of the strip of nr columns from global column col (n_run of
 * them) and, when tabled, each tap's loads (n_load[t] at table + t *
 * (NN_GEMM_NR + 1)). */
static inline int conv_direct_strip(const conv_bsrc_t *src, int col, int nr, int tabled,
                                    conv_run_t *run, conv_load_t *table, int *n_load)
{
    const conv2d_shape_t *s = src->s;
    const int P = s->oh * s->ow, taps = s->kh * s->kw;
    int n_run = 0;
    for (int lane = 0; lane < nr;) {
        const int img = col / P, pix = col - img * P, oy = pix / s->ow, ox = pix - oy * s->ow;
        const int len = nr - lane < s->ow - ox ? nr - lane : s->ow - ox;
        run[n_run++] = (conv_run_t){lane, len, img, oy, ox};
        lane += len;
        col += len;
    }
    if (tabled)
        for (int t = 0; t < taps; t++) {
            conv_load_t *e = table + (size_t)t * (NN_GEMM_NR + 1);
            int n = 0;
            for (int r = 0; r < n_run; r++)
                n += conv_run_load(s, &run[r], src->in_size, t / s->kw, t % s->kw, &e[n]);
            n_load[t] = n;
        }
    return n_run;
}

/* The loads of tap t of a strip (*n of them): from the table, or worked out
 * into one[] for kernels of more taps. */
static inline const conv_load_t *conv_direct_loads(const conv_bsrc_t *src, int t, int tabled,
                                                   const conv_run_t *run, int n_run,
                                                   const conv_load_t *table, const int *n_load,
                                                   conv_load_t *one, int *n)
{
    if (tabled) {
        *n = n_load[t];
        return table + (size_t)t * (NN_GEMM_NR + 1);
    }
    const conv2d_shape_t *s = src->s;
    *n = 0;
    for (int r = 0; r < n_run; r++)
        *n += conv_run_load(s, &run[r], src->in_size, t / s->kw, t % s->kw, &one[*n]);
    return one;
}

/* Rows [k0, k0 + kc) x global columns [j0, j0 + nc) of the group's patch
 * matrix (row k = (channel, ky, kx), column = image x P + pixel), packed as
 * nn/gemm.h lays out B: for each 32-column strip and row, one masked load
 * per run and 16 lanes, the lanes outside the image zeros. The values are
 * conv2d_im2col's, so the product is the same bits. The loads depend on the
 * tap and the strip only (the channel moves the base): with at most
 * CONV_TAPS_TABLED taps they are worked out once per strip and tap, and a
 * row is its channel's base plus the tap's list. */
__attribute__((target("avx512f"))) static void conv_pack_direct(const void *ctx, int k0, int kc,
                                                               int j0, int nc, float *bpack)
{
    const conv_bsrc_t *src = ctx;
    const conv2d_shape_t *s = src->s;
    const int taps = s->kh * s->kw;
    const size_t plane = (size_t)s->h * s->w;
    conv_run_t run[NN_GEMM_NR + 1];
    conv_load_t table[CONV_TAPS_TABLED * (NN_GEMM_NR + 1)];
    int n_load[CONV_TAPS_TABLED];
    const int tabled = taps <= CONV_TAPS_TABLED;
    for (int j = 0; j < nc; j += NN_GEMM_NR) {
        const int nr = nc - j < NN_GEMM_NR ? nc - j : NN_GEMM_NR;
        const int n_run = conv_direct_strip(src, j0 + j, nr, tabled, run, table, n_load);
        float *strip = bpack + (size_t)j * kc;
        int c = k0 / taps, t = k0 - c * taps;
        for (int p = 0; p < kc; p++) {
            __m512 v0 = _mm512_setzero_ps(), v1 = _mm512_setzero_ps();
            const intptr_t base = (intptr_t)(src->x + c * plane);
            conv_load_t one[NN_GEMM_NR + 1];
            int n;
            const conv_load_t *e =
                conv_direct_loads(src, t, tabled, run, n_run, table, n_load, one, &n);
            for (int q = 0; q < n; q++) {
                const uint32_t in = e[q].mask;
                const intptr_t at = base + (intptr_t)e[q].off * (intptr_t)sizeof(float);
                if (in & 0xFFFF)
                    v0 = _mm512_mask_loadu_ps(v0, (__mmask16)in, (const void *)at);
                if (in >> 16)
                    v1 = _mm512_mask_loadu_ps(v1, (__mmask16)(in >> 16),
                                              (const void *)(at + 16 * (intptr_t)sizeof(float)));
            }
            _mm512_storeu_ps(strip + (size_t)p * NN_GEMM_NR, v0);
            _mm512_storeu_ps(strip + (size_t)p * NN_GEMM_NR + 16, v1);
            if (++t == taps) {
                t = 0;
                c++;
            }
        }
    }
}

/* Lanes 8 g .. 8 g + 7 of a 32-lane mask as an AVX2 load mask. */
__attribute__((always_inline, target("avx2"))) static inline __m256i conv_mask8(uint32_t in, int g)
{
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    const __m256i m = _mm256_and_si256(_mm256_set1_epi32((int)(in >> (8 * g) & 0xFF)), bit);
    return _mm256_cmpgt_epi32(m, _mm256_setzero_si256());
}

/* conv_pack_direct with AVX2: a masked load per run and 8 lanes (masked-off
 * lanes read as zero, so each load ORs its lanes into the row). The same
 * values. */
__attribute__((target("avx2"))) static void conv_pack_direct_avx2(const void *ctx, int k0,
                                                                  int kc, int j0, int nc,
                                                                  float *bpack)
{
    const conv_bsrc_t *src = ctx;
    const conv2d_shape_t *s = src->s;
    const int taps = s->kh * s->kw;
    const size_t plane = (size_t)s->h * s->w;
    conv_run_t run[NN_GEMM_NR + 1];
    conv_load_t table[CONV_TAPS_TABLED * (NN_GEMM_NR + 1)];
    int n_load[CONV_TAPS_TABLED];
    const int tabled = taps <= CONV_TAPS_TABLED;
    for (int j = 0; j < nc; j += NN_GEMM_NR) {
        const int nr = nc - j < NN_GEMM_NR ? nc - j : NN_GEMM_NR;
        const int n_run = conv_direct_strip(src, j0 + j, nr, tabled, run, table, n_load);
        float *strip = bpack + (size_t)j * kc;
        int c = k0 / taps, t = k0 - c * taps;
        for (int p = 0; p < kc; p++) {
            __m256 v[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                           _mm256_setzero_ps()};
            const intptr_t base = (intptr_t)(src->x + c * plane);
            conv_load_t one[NN_GEMM_NR + 1];
            int n;
            const conv_load_t *e =
                conv_direct_loads(src, t, tabled, run, n_run, table, n_load, one, &n);
            for (int q = 0; q < n; q++) {
                const uint32_t in = e[q].mask;
                const intptr_t at = base + (intptr_t)e[q].off * (intptr_t)sizeof(float);
                for (int g = 0; g < 4; g++)
                    if (in >> (8 * g) & 0xFF)
                        v[g] = _mm256_or_ps(
                            v[g], _mm256_maskload_ps((const float *)(at + 32 * (intptr_t)g),
                                                     conv_mask8(in, g)));
            }
            for (int g = 0; g < 4; g++)
                _mm256_storeu_ps(strip + (size_t)p * NN_GEMM_NR + 8 * g, v[g]);
            if (++t == taps) {
                t = 0;
                c++;
            }
        }
    }
}
#endif

void conv_packed_forward(const conv2d_shape_t *s, const float *x, const float *W, const float *b,
                         int relu, float *y, float *ws)
{
#if CONV_DIRECT
    if (conv_packed_direct(s)) {
        const int K = s->c * s->kh * s->kw, P = s->oh * s->ow, G = conv_packed_group(s);
        const size_t in_size = (size_t)s->c * s->h * s->w, out_size = (size_t)s->oc * P;
        float *bpack = ws + conv_packed_a_floats(s);
        for (int i0 = 0; i0 < s->n; i0 += G) {
            const nn_gemm_seg_t g = {.seg = P, .n_seg = s->n - i0 < G ? s->n - i0 : G,
                                     .c_seg = out_size};
            const conv_bsrc_t src = {s, x + i0 * in_size, in_size};
            nn_gemm_rows_src(s->oc, K, W, K,
                             nn_gemm_avx512() ? conv_pack_direct : conv_pack_direct_avx2, &src,
                             y + i0 * out_size, P, &g, 0,
                             b, relu, bpack);
        }
        return;
    }
#endif
    conv_packed_forward_cols(s, x, W, b, relu, y, ws, conv_packed_fwd_columns(s));
}

int conv_packed_bwd_channels(const conv2d_shape_t *s)
{
    const size_t cols = (size_t)conv_packed_group(s) * s->oh * s->ow;
    const size_t per_panel = (size_t)NN_GEMM_MR * s->kh * s->kw * cols; /* floats of NN_GEMM_MR channels' rows */
    if (per_panel > CONV_PACKED_SLICE_FLOATS)
        return NN_GEMM_MR < s->c ? NN_GEMM_MR : s->c;
    const int ch = NN_GEMM_MR * (int)(CONV_PACKED_SLICE_FLOATS / per_panel);
    return ch < s->c ? ch : s->c;
}

void conv_packed_backward_data(const conv2d_shape_t *s, const float *W, const float *packed_wt,
                               const float *dy, float *dx, int assign, float *ws)
{
    const int K = s->c * s->kh * s->kw, P = s->oh * s->ow, G = conv_packed_group(s);
    const int taps = s->kh * s->kw, slice = conv_packed_bwd_channels(s);
    const size_t in_size = (size_t)s->c * s->h * s->w, out_size = (size_t)s->oc * P;
    const int pointwise = conv_packed_pointwise(s);
    float *bpack = ws + conv_packed_a_floats(s);
    float *col = bpack + nn_gemm_bpack_floats();
    if (!packed_wt) {
        conv_packed_pack_wt(s, W, ws);
        packed_wt = ws;
    }
#if CONV_DIRECT
    if (conv_packed_bwd_direct(s)) { /* dx (+)= the adjoint's forward of dy, no col2im */
        const conv2d_shape_t t = conv_packed_adjoint(s, s->n);
        const int Ht = conv_packed_group(&t), Pt = s->h * s->w;
        for (int i0 = 0; i0 < s->n; i0 += Ht) {
            const nn_gemm_seg_t g = {.seg = Pt, .n_seg = s->n - i0 < Ht ? s->n - i0 : Ht,
                                     .c_seg = in_size};
            const conv_bsrc_t src = {&t, dy + i0 * out_size, out_size};
            nn_gemm_packed_src(s->c, s->oc * taps, packed_wt,
                               nn_gemm_avx512() ? conv_pack_direct : conv_pack_direct_avx2, &src,
                               dx + i0 * in_size, Pt, &g, !assign, NULL, 0, bpack);
        }
        return;
    }
#endif
    for (int i0 = 0; i0 < s->n; i0 += G) {
        nn_gemm_seg_t g = {.seg = P, .n_seg = s->n - i0 < G ? s->n - i0 : G, .b_seg = out_size};
        if (pointwise) {
            g.c_seg = in_size;
            nn_gemm_packed_seg(K, s->oc, packed_wt, dy + i0 * out_size, P, dx + i0 * in_size, P,
                               &g, !assign, NULL, 0, bpack);
            continue;
        }
        /* rows [ci0 * taps, ci1 * taps) of W^T dy: a multiple of NN_GEMM_MR rows (a whole
         * number of packed panels) unless it is the last slice */
        for (int ci0 = 0; ci0 < s->c; ci0 += slice) {
            const int ci1 = s->c - ci0 < slice ? s->c : ci0 + slice, rows = (ci1 - ci0) * taps;
            g.c_seg = (size_t)rows * P;
            nn_gemm_packed_seg(rows, s->oc, packed_wt + (size_t)ci0 * taps * s->oc,
                               dy + i0 * out_size, P, col, P, &g, 0, NULL, 0, bpack);
            for (int j = 0; j < g.n_seg; j++)
                conv2d_col2im_channels(s, col + (size_t)j * rows * P, dx + (i0 + j) * in_size,
                                       assign, ci0, ci1);
        }
    }
}

#if CONV_DIRECT
/* What the prologue's packer reads: the BN's input channels, its map, and the
 * group's first image. */
typedef struct {
    const conv2d_shape_t *s;
    const bn_chans_t *x;
    const float *scale, *shift;
    int i0;
} conv_pre_src_t;

/* Rows [k0, k0 + kc) (input channels) x global columns [j0, j0 + nc) (image
 * j / P of the group, pixel j % P) of relu(x * scale + shift), packed as
 * nn/gemm.h lays out B; lanes past the last column zero. The arithmetic of
 * bn_relu_forward_infer (a product, then a sum, then v > 0 ? v : 0, which
 * _mm512_max_ps(v, 0) is, NaN and -0 included), so the same bits. */
__attribute__((target("avx512f"))) static void conv_pack_pre(const void *ctx, int k0, int kc,
                                                            int j0, int nc, float *bpack)
{
    const conv_pre_src_t *src = ctx;
    const int P = src->s->oh * src->s->ow;
    const __m512 zero = _mm512_setzero_ps();
    struct {
        int lane0, len, img, pix;
    } run[NN_GEMM_NR + 1];
    for (int j = 0; j < nc; j += NN_GEMM_NR) {
        const int nr = nc - j < NN_GEMM_NR ? nc - j : NN_GEMM_NR;
        int n_run = 0;
        for (int lane = 0, col = j0 + j; lane < nr;) {
            const int img = col / P, pix = col - img * P;
            const int len = nr - lane < P - pix ? nr - lane : P - pix;
            run[n_run].lane0 = lane;
            run[n_run].len = len;
            run[n_run].img = src->i0 + img;
            run[n_run++].pix = pix;
            lane += len;
            col += len;
        }
        const uint32_t live = (uint32_t)(((uint64_t)1 << nr) - 1);
        float *strip = bpack + (size_t)j * kc;
        for (int p = 0; p < kc; p++) {
            const int ch = k0 + p;
            __m512 v0 = zero, v1 = zero;
            for (int r = 0; r < n_run; r++) {
                const uint32_t in = (uint32_t)(((uint64_t)1 << run[r].len) - 1) << run[r].lane0;
                /* the address of lane 0, outside the plane when lane0 > 0 (masked off) */
                const intptr_t at =
                    (intptr_t)(src->x->x[ch] + (size_t)run[r].img * src->x->step[ch] +
                               run[r].pix) -
                    (intptr_t)run[r].lane0 * (intptr_t)sizeof(float);
                if (in & 0xFFFF)
                    v0 = _mm512_mask_loadu_ps(v0, (__mmask16)in, (const void *)at);
                if (in >> 16)
                    v1 = _mm512_mask_loadu_ps(v1, (__mmask16)(in >> 16),
                                              (const void *)(at + 16 * (intptr_t)sizeof(float)));
            }
            const __m512 sc = _mm512_set1_ps(src->scale[ch]), sh = _mm512_set1_ps(src->shift[ch]);
            v0 = _mm512_maskz_max_ps((__mmask16)live, _mm512_add_ps(_mm512_mul_ps(v0, sc), sh), zero);
            v1 = _mm512_maskz_max_ps((__mmask16)(live >> 16),
                                     _mm512_add_ps(_mm512_mul_ps(v1, sc), sh), zero);
            _mm512_storeu_ps(strip + (size_t)p * NN_GEMM_NR, v0);
            _mm512_storeu_ps(strip + (size_t)p * NN_GEMM_NR + 16, v1);
        }
    }
}
#endif

#if CONV_DIRECT
/* Lanes [0, 2 len) of one input row from `at` (the plane's element at the
 * run's first column) through the BN and the ReLU, lanes past 2 len zero. */
__attribute__((target("avx512f"))) static inline void pre_row64(const float *at, int len,
                                                                __m512 sc, __m512 sh,
                                                                __m512 v[4])
{
    const __m512 zero = _mm512_setzero_ps();
    const uint64_t in = len >= 32 ? ~(uint64_t)0 : ((uint64_t)1 << (2 * len)) - 1;
    for (int q = 0; q < 4; q++) {
        const __mmask16 k = (__mmask16)(in >> (16 * q));
        const __m512 x = _mm512_maskz_loadu_ps(k, at + 16 * q);
        v[q] = _mm512_maskz_max_ps(k, _mm512_add_ps(_mm512_mul_ps(x, sc), sh), zero);
    }
}

/* conv_pack_pre for the pool applied first (fuse.h): column j is pixel j % P
 * of the pooled image j / P, its value the mean of the window's four cells of
 * relu(x * scale + shift), (top-left + bottom-left) + (top-right +
 * bottom-right), times 1/4. s is the pooled shape; x's planes are 2h x 2w. */
__attribute__((target("avx512f"))) static void conv_pack_pre_pool(const void *ctx, int k0,
                                                                 int kc, int j0, int nc,
                                                                 float *bpack)
{
    const conv_pre_src_t *src = ctx;
    const int ow = src->s->ow, P = src->s->oh * ow, w2 = 2 * src->s->w;
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const __m512 quarter = _mm512_set1_ps(0.25f);
    struct {
        int lane0, len, img, oy, ox0;
    } run[NN_GEMM_NR + 1];
    float tmp[2 * NN_GEMM_NR];
    for (int j = 0; j < nc; j += NN_GEMM_NR) {
        const int nr = nc - j < NN_GEMM_NR ? nc - j : NN_GEMM_NR;
        int n_run = 0;
        for (int lane = 0, col = j0 + j; lane < nr;) {
            const int img = col / P, pix = col - img * P, oy = pix / ow, ox = pix - oy * ow;
            const int len = nr - lane < ow - ox ? nr - lane : ow - ox;
            run[n_run].lane0 = lane;
            run[n_run].len = len;
            run[n_run].img = src->i0 + img;
            run[n_run].oy = oy;
            run[n_run++].ox0 = ox;
            lane += len;
            col += len;
        }
        float *strip = bpack + (size_t)j * kc;
        for (int p = 0; p < kc; p++) {
            const int ch = k0 + p;
            const __m512 sc = _mm512_set1_ps(src->scale[ch]), sh = _mm512_set1_ps(src->shift[ch]);
            _mm512_storeu_ps(tmp, _mm512_setzero_ps());
            _mm512_storeu_ps(tmp + 16, _mm512_setzero_ps());
            for (int r = 0; r < n_run; r++) {
                const float *row = src->x->x[ch] + (size_t)run[r].img * src->x->step[ch] +
                                   (size_t)(2 * run[r].oy) * w2 + 2 * run[r].ox0;
                __m512 a[4], b[4];
                pre_row64(row, run[r].len, sc, sh, a);
                pre_row64(row + w2, run[r].len, sc, sh, b);
                for (int q = 0; q < 2; q++) {
                    const __m512 lo = _mm512_add_ps(a[2 * q], b[2 * q]);
                    const __m512 hi = _mm512_add_ps(a[2 * q + 1], b[2 * q + 1]);
                    const __m512 sum = _mm512_add_ps(_mm512_permutex2var_ps(lo, even, hi),
                                                     _mm512_permutex2var_ps(lo, odd, hi));
                    /* pooled pixels 16 q .. 16 q + 15 of the run */
                    const int left = run[r].len - 16 * q;
                    if (left <= 0)
                        break;
                    const __mmask16 k = (__mmask16)(left >= 16 ? 0xFFFF : (1u << left) - 1);
                    _mm512_mask_storeu_ps(tmp + run[r].lane0 + 16 * q, k,
                                          _mm512_mul_ps(sum, quarter));
                }
            }
            _mm512_storeu_ps(strip + (size_t)p * NN_GEMM_NR, _mm512_loadu_ps(tmp));
            _mm512_storeu_ps(strip + (size_t)p * NN_GEMM_NR + 16, _mm512_loadu_ps(tmp + 16));
        }
    }
}
#endif

#if CONV_DIRECT
/* conv_pack_pre with AVX2: a masked load per run and 8 lanes, then the same
 * product, sum and max(., 0) (lanes past the last column zero). */
__attribute__((target("avx2"))) static void conv_pack_pre_avx2(const void *ctx, int k0, int kc,
                                                               int j0, int nc, float *bpack)
{
    const conv_pre_src_t *src = ctx;
    const int P = src->s->oh * src->s->ow;
    struct {
        int lane0, len, img, pix;
    } run[NN_GEMM_NR + 1];
    for (int j = 0; j < nc; j += NN_GEMM_NR) {
        const int nr = nc - j < NN_GEMM_NR ? nc - j : NN_GEMM_NR;
        int n_run = 0;
        for (int lane = 0, col = j0 + j; lane < nr;) {
            const int img = col / P, pix = col - img * P;
            const int len = nr - lane < P - pix ? nr - lane : P - pix;
            run[n_run].lane0 = lane;
            run[n_run].len = len;
            run[n_run].img = src->i0 + img;
            run[n_run++].pix = pix;
            lane += len;
            col += len;
        }
        const uint32_t live = (uint32_t)(((uint64_t)1 << nr) - 1);
        float *strip = bpack + (size_t)j * kc;
        for (int p = 0; p < kc; p++) {
            const int ch = k0 + p;
            __m256 v[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                           _mm256_setzero_ps()};
            for (int r = 0; r < n_run; r++) {
                const uint32_t in = (uint32_t)(((uint64_t)1 << run[r].len) - 1) << run[r].lane0;
                const intptr_t at =
                    (intptr_t)(src->x->x[ch] + (size_t)run[r].img * src->x->step[ch] +
                               run[r].pix) -
                    (intptr_t)run[r].lane0 * (intptr_t)sizeof(float);
                for (int g = 0; g < 4; g++)
                    if (in >> (8 * g) & 0xFF)
                        v[g] = _mm256_or_ps(
                            v[g], _mm256_maskload_ps((const float *)(at + 32 * (intptr_t)g),
                                                     conv_mask8(in, g)));
            }
            const __m256 sc = _mm256_set1_ps(src->scale[ch]), sh = _mm256_set1_ps(src->shift[ch]);
            for (int g = 0; g < 4; g++) {
                const __m256 y =
                    _mm256_max_ps(_mm256_add_ps(_mm256_mul_ps(v[g], sc), sh), _mm256_setzero_ps());
                _mm256_storeu_ps(strip + (size_t)p * NN_GEMM_NR + 8 * g,
                                 _mm256_and_ps(y, _mm256_castsi256_ps(conv_mask8(live, g))));
            }
        }
    }
}

/* conv_pack_pre_pool without AVX-512: each pooled value ((top-left +
 * bottom-left) + (top-right + bottom-right)) * 1/4 of the cells through the
 * BN and the ReLU, as the vector version adds them. */
static void conv_pack_pre_pool_plain(const void *ctx, int k0, int kc, int j0, int nc,
                                     float *bpack)
{
    const conv_pre_src_t *src = ctx;
    const int ow = src->s->ow, P = src->s->oh * ow, w2 = 2 * src->s->w;
    for (int j = 0; j < nc; j += NN_GEMM_NR) {
        const int nr = nc - j < NN_GEMM_NR ? nc - j : NN_GEMM_NR;
        for (int p = 0; p < kc; p++) {
            const int ch = k0 + p;
            const float sc = src->scale[ch], sh = src->shift[ch];
            float *row = bpack + (size_t)j * kc + (size_t)p * NN_GEMM_NR;
            for (int lane = 0, col = j0 + j; lane < nr;) {
                const int img = col / P, pix = col - img * P, oy = pix / ow, ox = pix - oy * ow;
                const int len = nr - lane < ow - ox ? nr - lane : ow - ox;
                const float *top = src->x->x[ch] + (size_t)(src->i0 + img) * src->x->step[ch] +
                                   (size_t)(2 * oy) * w2 + 2 * ox;
                const float *bot = top + w2;
                for (int q = 0; q < len; q++) {
                    float v[4] = {top[2 * q] * sc + sh, bot[2 * q] * sc + sh,
                                  top[2 * q + 1] * sc + sh, bot[2 * q + 1] * sc + sh};
                    for (int e = 0; e < 4; e++)
                        v[e] = v[e] > 0.0f ? v[e] : 0.0f;
                    row[lane + q] = ((v[0] + v[1]) + (v[2] + v[3])) * 0.25f;
                }
                lane += len;
                col += len;
            }
            for (int lane = nr; lane < NN_GEMM_NR; lane++)
                row[lane] = 0.0f;
        }
    }
}
#endif

size_t conv_packed_pre_workspace(const conv2d_shape_t *s)
{
    const size_t cols = (size_t)conv_packed_group(s) * s->oh * s->ow;
    return conv_packed_a_floats(s) + nn_gemm_bpack_floats() +
           (size_t)conv_packed_bwd_channels(s) * cols;
}

void conv_packed_forward_pre(const conv2d_shape_t *s, const bn_chans_t *x, const float *scale,
                             const float *shift, int pool, const float *W, const float *b,
                             int relu, float *y, float *ws)
{
#if CONV_DIRECT
    const int P = s->oh * s->ow, G = conv_packed_group(s);
    const size_t out_size = (size_t)s->oc * P;
    float *bpack = ws + conv_packed_a_floats(s);
    for (int i0 = 0; i0 < s->n; i0 += G) {
        const nn_gemm_seg_t g = {.seg = P, .n_seg = s->n - i0 < G ? s->n - i0 : G,
                                 .c_seg = out_size};
        const conv_pre_src_t src = {s, x, scale, shift, i0};
        const nn_gemm_bpack_fn pack =
            nn_gemm_avx512() ? (pool ? conv_pack_pre_pool : conv_pack_pre)
                             : (pool ? conv_pack_pre_pool_plain : conv_pack_pre_avx2);
        nn_gemm_rows_src(s->oc, s->c, W, s->c, pack, &src,
                         y + i0 * out_size, P, &g, 0, b, relu, bpack);
    }
#else
    (void)s, (void)x, (void)scale, (void)shift, (void)pool, (void)W, (void)b, (void)relu, (void)y;
    (void)ws;
#endif
}

/* One plane of the prologue's backward, the operations of bn_relu_backward_infer
 * with the ReLU's decision taken from x * scale + shift. Always inlined with
 * constant flags (a plain loop per case). */
static inline __attribute__((always_inline)) void pre_backward_plane(
    size_t hw, const float *restrict xs, const float *restrict d, float *restrict dxs,
    float scale, float shift, int guided, int assign)
{
    for (size_t k = 0; k < hw; k++) {
        const float v = xs[k] * scale + shift;
        const float g = (v > 0.0f && (!guided || d[k] > 0.0f)) ? d[k] : 0.0f;
        dxs[k] = assign ? g * scale : dxs[k] + g * scale;
    }
}

#if CONV_DIRECT
/* pre_backward_plane for the pool applied first: d is the pooled plane (h x w,
 * the gradient of the pool's input), each cell of x's 2h x 2w plane gets a
 * quarter of its window's, d * 0.25 as the pool's backward computes it. */
__attribute__((target("avx512f"))) static void pre_backward_pool(
    int h, int w, const float *xs, const float *d, float *dxs, float scale, float shift,
    int guided, int assign)
{
    const __m512i lo_idx = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    const __m512i hi_idx =
        _mm512_set_epi32(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8);
    const __m512 sc = _mm512_set1_ps(scale), sh = _mm512_set1_ps(shift);
    const __m512 quarter = _mm512_set1_ps(0.25f), zero = _mm512_setzero_ps();
    const int w2 = 2 * w;
    for (int iy = 0; iy < 2 * h; iy++) {
        const float *drow = d + (size_t)(iy / 2) * w;
        const float *xrow = xs + (size_t)iy * w2;
        float *dxrow = dxs + (size_t)iy * w2;
        for (int ox = 0; ox < w; ox += 16) {
            const int left = w - ox < 16 ? w - ox : 16;
            const __m512 g16 =
                _mm512_mul_ps(_mm512_maskz_loadu_ps((__mmask16)((1u << left) - 1), drow + ox),
                              quarter);
            const uint32_t cells = left >= 16 ? 0xFFFFFFFFu : (1u << (2 * left)) - 1;
            for (int q = 0; q < 2; q++) {
                const __mmask16 k = (__mmask16)(cells >> (16 * q));
                if (!k)
                    break;
                const __m512 g = _mm512_permutexvar_ps(q ? hi_idx : lo_idx, g16);
                const __m512 v =
                    _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, xrow + 2 * ox + 16 * q), sc), sh);
                __mmask16 pass = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
                if (guided)
                    pass &= _mm512_cmp_ps_mask(g, zero, _CMP_GT_OQ);
                const __m512 t = _mm512_mul_ps(_mm512_maskz_mov_ps(pass, g), sc);
                float *at = dxrow + 2 * ox + 16 * q;
                _mm512_mask_storeu_ps(at, k, assign ? t : _mm512_add_ps(_mm512_maskz_loadu_ps(k, at), t));
            }
        }
    }
}
#endif

/* pre_backward_pool without AVX-512: the same operations cell by cell. */
static void pre_backward_pool_plain(int h, int w, const float *xs, const float *d, float *dxs,
                                    float scale, float shift, int guided, int assign)
{
    const int w2 = 2 * w;
    for (int iy = 0; iy < 2 * h; iy++) {
        const float *drow = d + (size_t)(iy / 2) * w, *xrow = xs + (size_t)iy * w2;
        float *dxrow = dxs + (size_t)iy * w2;
        for (int ix = 0; ix < w2; ix++) {
            const float g = drow[ix / 2] * 0.25f, v = xrow[ix] * scale + shift;
            const float t = (v > 0.0f && (!guided || g > 0.0f) ? g : 0.0f) * scale;
            dxrow[ix] = assign ? t : dxrow[ix] + t;
        }
    }
}

void conv_packed_backward_pre(const conv2d_shape_t *s, const float *W, const float *packed_wt,
                              const float *dy, const bn_chans_t *x, const float *scale,
                              const float *shift, int pool, int guided, int assign, float *ws)
{
    const int P = s->oh * s->ow, G = conv_packed_group(s), slice = conv_packed_bwd_channels(s);
    const size_t out_size = (size_t)s->oc * P;
    float *bpack = ws + conv_packed_a_floats(s);
    float *col = bpack + nn_gemm_bpack_floats();
    if (!packed_wt) {
        conv_packed_pack_wt(s, W, ws);
        packed_wt = ws;
    }
    const int mode = (guided ? 2 : 0) + (assign ? 1 : 0);
    for (int i0 = 0; i0 < s->n; i0 += G) {
        nn_gemm_seg_t g = {.seg = P, .n_seg = s->n - i0 < G ? s->n - i0 : G, .b_seg = out_size};
        /* rows [ci0, ci1) of W^T dy (whole packed panels but the last), then
         * through the ReLU and the BN while they are in cache */
        for (int ci0 = 0; ci0 < s->c; ci0 += slice) {
            const int ci1 = s->c - ci0 < slice ? s->c : ci0 + slice, rows = ci1 - ci0;
            g.c_seg = (size_t)rows * P;
            nn_gemm_packed_seg(rows, s->oc, packed_wt + (size_t)ci0 * s->oc, dy + i0 * out_size,
                               P, col, P, &g, 0, NULL, 0, bpack);
            for (int j = 0; j < g.n_seg; j++)
                for (int ch = ci0; ch < ci1; ch++) {
                    const size_t at = (size_t)(i0 + j) * x->step[ch];
                    const float *xs = x->x[ch] + at, *d = col + ((size_t)j * rows + ch - ci0) * P;
                    float *dxs = x->dx[ch] + at;
                    const float sc = scale[ch], sh = shift[ch];
#if CONV_DIRECT
                    if (pool && nn_gemm_avx512()) {
                        pre_backward_pool(s->h, s->w, xs, d, dxs, sc, sh, guided, assign);
                        continue;
                    }
#endif
                    if (pool) {
                        pre_backward_pool_plain(s->h, s->w, xs, d, dxs, sc, sh, guided, assign);
                        continue;
                    }
                    switch (mode) {
                    case 0: pre_backward_plane((size_t)P, xs, d, dxs, sc, sh, 0, 0); break;
                    case 1: pre_backward_plane((size_t)P, xs, d, dxs, sc, sh, 0, 1); break;
                    case 2: pre_backward_plane((size_t)P, xs, d, dxs, sc, sh, 1, 0); break;
                    default: pre_backward_plane((size_t)P, xs, d, dxs, sc, sh, 1, 1); break;
                    }
                }
        }
    }
}
