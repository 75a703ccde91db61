/*
 * conv_wino.c - Winograd F(2 x 2, 3 x 3), F(2 x 2, 5 x 5) and F(2, 7)
 * convolutions (conv_wino.h); the one-dimensional F(2, 7) is the last part
 * of the file.
 *
 * Owned by common/nn. One routine serves both directions and both square
 * kernels: a k x k (3 or 5) stride-1 correlation of `ci` input planes of
 * h x w (zeros outside, pt rows and pl columns of them before the first)
 * into `co` planes of oh x ow. Each 2 x 2 block of outputs (a tile) comes
 * from the (k + 1) x (k + 1) patch under it. The tiles of all images are
 * numbered image by image, row by row; a block of consecutive tiles is
 * transformed into V[np][ci][block] (np = (k + 1)^2 positions), multiplied
 * by the np packed U[xi] (co x ci) into M[np][co][block], and transformed
 * back into the output planes, one run of a tile row (a segment) at a time.
 */
#include "nn/conv_wino.h"

#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "nn/gemm.h"
#include "sc.h"

typedef struct {
    int n, ci, co; /* images, input and output channels */
    int h, w;      /* input plane */
    int oh, ow;    /* output plane */
    int pt, pl;    /* zero rows / columns before the input */
    int th, tw;    /* tiles per column / per row */
    int k, np;     /* kernel size (3 or 5); positions per tile, (k + 1)^2 */
} wino_dims_t;

static wino_dims_t wino_dims(const conv2d_shape_t *s, int backward)
{
    const int k = s->kh;
    wino_dims_t d;
    if (!backward) {
        d = (wino_dims_t){s->n, s->c, s->oc, s->h, s->w, s->oh, s->ow, s->pt, s->pl, 0, 0, k, 0};
    } else {
        /* dx = correlation of dy with the flipped kernel, padding k - 1 - p */
        d = (wino_dims_t){s->n,  s->oc, s->c, s->oh, s->ow, s->h, s->w, k - 1 - s->pt,
                          k - 1 - s->pl, 0, 0, k, 0};
    }
    d.th = (d.oh + 1) / 2;
    d.tw = (d.ow + 1) / 2;
    d.np = (k + 1) * (k + 1);
    return d;
}

/* A square stride-1 kernel of size k, padding 0 .. k - 1 on each side. */
static int wino_square(const conv2d_shape_t *s, int k)
{
    const int p = k - 1;
    return s->kh == k && s->kw == k && s->sh == 1 && s->sw == 1 && s->pt >= 0 && s->pt <= p &&
           s->pb >= 0 && s->pb <= p && s->pl >= 0 && s->pl <= p && s->pr >= 0 && s->pr <= p;
}

/* The one-dimensional F(2, 7) for 1 x 7 and 7 x 1 kernels (below). */
static int w7_shape(const conv2d_shape_t *s);
static size_t w7_workspace(const conv2d_shape_t *s);
static size_t w7_u_floats(const conv2d_shape_t *s, int backward);
static void w7_kernel(const float *g7, int flip, float z[8]);
static void w7_forward(const conv2d_shape_t *s, const float *u, const float *x, const float *b,
                       int relu, float *y, float *ws);
static void w7_backward_data(const conv2d_shape_t *s, const float *u, const float *dy, float *dx,
                             int assign, float *ws);

int conv_wino_wanted(const conv2d_shape_t *s, int backward)
{
    (void)backward; /* the same shapes both ways */
    return (wino_square(s, 3) || wino_square(s, 5) || w7_shape(s)) && s->c >= 8 && s->oc >= 8 &&
           s->oh * s->ow >= CONV_WINO_MIN_PIXELS && nn_gemm_avx512();
}

/* Tiles per block: a multiple of the kernel's 32 columns, V and M (np
 * positions of ci and co channels) each under `budget` floats. */
static int wino_tiles(size_t budget, int np, int ci, int co)
{
    const int ch = ci > co ? ci : co;
    int tb = (int)(budget / ((size_t)np * ch)) / NN_GEMM_NR * NN_GEMM_NR;
    if (tb < NN_GEMM_NR)
        tb = NN_GEMM_NR;
    if (tb > NN_GEMM_NC) /* one block of columns: B packed by the input transform */
        tb = NN_GEMM_NC;
    return tb;
}

static int wino_block(const wino_dims_t *d)
{
    return wino_tiles(CONV_WINO_BLOCK_FLOATS, d->np, d->ci, d->co);
}

static size_t wino_ws(const wino_dims_t *d)
{
    const int tb = wino_block(d);
    return (size_t)d->np * (nn_gemm_bpacked_floats(tb, d->ci) + (size_t)d->co * tb);
}

size_t conv_wino_workspace(const conv2d_shape_t *s)
{
    if (w7_shape(s))
        return w7_workspace(s);
    const wino_dims_t f = wino_dims(s, 0), b = wino_dims(s, 1);
    const size_t a = wino_ws(&f), c = wino_ws(&b);
    return a > c ? a : c;
}

size_t conv_wino_u_floats(const conv2d_shape_t *s, int backward)
{
    if (w7_shape(s))
        return w7_u_floats(s, backward);
    const wino_dims_t d = wino_dims(s, backward);
    return (size_t)d.np * nn_gemm_packed_floats(d.co, d.ci);
}

/* z = G g G^T for one 3 x 3 kernel g (row stride 3; flipped: g read
 * backwards), G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]. */
static void wino_kernel(const float *g9, int flip, float z[16])
{
    float g[3][3], t[4][3];
    for (int i = 0; i < 9; i++)
        g[i / 3][i % 3] = flip ? g9[8 - i] : g9[i];
    for (int j = 0; j < 3; j++) {
        t[0][j] = g[0][j];
        t[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
        t[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
        t[3][j] = g[2][j];
    }
    for (int k = 0; k < 4; k++) {
        z[4 * k + 0] = t[k][0];
        z[4 * k + 1] = 0.5f * (t[k][0] + t[k][1] + t[k][2]);
        z[4 * k + 2] = 0.5f * (t[k][0] - t[k][1] + t[k][2]);
        z[4 * k + 3] = t[k][2];
    }
}

/* z = G g G^T for one 5 x 5 kernel g (row stride 5; flipped: g read
 * backwards), G the rows (1/4, 0, 0, 0, 0), -1/6 (1, 1, 1, 1, 1),
 * -1/6 (1, -1, 1, -1, 1), 1/24 (1, 2, 4, 8, 16), 1/24 (1, -2, 4, -8, 16) and
 * (0, 0, 0, 0, 1) (points 0, +-1, +-2, infinity); in double, rounded once. */
static void wino5_kernel(const float *g25, int flip, float z[36])
{
    static const double G[6][5] = {
        {0.25, 0, 0, 0, 0},
        {-1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6},
        {-1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6},
        {1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 3, 2.0 / 3},
        {1.0 / 24, -1.0 / 12, 1.0 / 6, -1.0 / 3, 2.0 / 3},
        {0, 0, 0, 0, 1},
    };
    double g[5][5], t[6][5];
    for (int i = 0; i < 25; i++)
        g[i / 5][i % 5] = (double)(flip ? g25[24 - i] : g25[i]);
    for (int a = 0; a < 6; a++)
        for (int j = 0; j < 5; j++) {
            double acc = 0.0;
            for (int i = 0; i < 5; i++)
                acc += G[a][i] * g[i][j];
            t[a][j] = acc;
        }
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++) {
            double acc = 0.0;
            for (int j = 0; j < 5; j++)
                acc += t[a][j] * G[b][j];
            z[6 * a + b] = (float)acc;
        }
}

int conv_wino_transform(const conv2d_shape_t *s, const float *W, int backward, float *u)
{
    int rc = 0;
    /* the kernel's transform per channel pair, its positions, the product's channels */
    void (*kernel)(const float *, int, float *);
    int np, co, ci;
    if (w7_shape(s)) {
        kernel = w7_kernel, np = 8;
    } else {
        const wino_dims_t d = wino_dims(s, backward);
        kernel = d.k == 3 ? wino_kernel : wino5_kernel, np = d.np;
    }
    co = backward ? s->c : s->oc;
    ci = backward ? s->oc : s->c;
    const int taps = s->kh * s->kw;
    const size_t mat = (size_t)co * ci, stride = nn_gemm_packed_floats(co, ci);
    /* the np positions' matrices, co x ci row-major each, then packed */
    float *tmp = malloc(sizeof(float) * (size_t)np * mat);
    float z[36];
    CHECK_ALLOC(tmp);
    for (int r = 0; r < co; r++) {
        for (int c = 0; c < ci; c++) {
            /* forward: U[oc][c] from W[oc][c]; backward: U[c][oc] from W[oc][c] flipped */
            const float *g = backward ? W + ((size_t)c * s->c + r) * taps
                                      : W + ((size_t)r * s->c + c) * taps;
            kernel(g, backward, z);
            for (int xi = 0; xi < np; xi++)
                tmp[xi * mat + (size_t)r * ci + c] = z[xi];
        }
    }
    for (int xi = 0; xi < np; xi++)
        nn_gemm_pack_a(co, ci, tmp + xi * mat, ci, 0, u + xi * stride);
cleanup:
    free(tmp);
    return rc;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define WINO_AVX512 __attribute__((target("avx512f")))

/* Lanes [0, n) of a 16-lane vector (n may be <= 0 or >= 16). */
static inline __mmask16 lanes(int n)
{
    return n <= 0 ? 0 : n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
}

/* The lanes of columns at .. at + 15 (m[0]) and at + 16 .. at + 31 (m[1])
 * that lie inside a row of w floats. */
static inline void wino_mask32(int at, int w, __mmask16 m[2])
{
    m[0] = (__mmask16)(lanes(w - at) & ~lanes(-at));
    m[1] = (__mmask16)(lanes(w - at - 16) & ~lanes(-at - 16));
}

/* Columns at .. at + 31 of an input row into x[0] (the first 16) and x[1],
 * the lanes outside m (wino_mask32) zero, all zeros for a NULL row (masked
 * loads, the address computed as an integer: it may lie before the row). */
WINO_AVX512 static inline void wino_load32(const float *row, int at, const __mmask16 m[2],
                                           __m512 x[2])
{
    if (!row) {
        x[0] = x[1] = _mm512_setzero_ps();
        return;
    }
    const intptr_t a = (intptr_t)row + (intptr_t)at * (intptr_t)sizeof(float);
    x[0] = _mm512_maskz_loadu_ps(m[0], (const void *)a);
    x[1] = _mm512_maskz_loadu_ps(m[1], (const void *)(a + 16 * (intptr_t)sizeof(float)));
}

/* The n input rows under tile row ty of a plane into src, NULL for rows
 * outside the image (zeros). */
static inline void wino_src_rows(const wino_dims_t *d, const float *plane, int ty, int n,
                                 const float **src)
{
    for (int k = 0; k < n; k++) {
        const int iy = 2 * ty - d->pt + k;
        src[k] = iy < 0 || iy >= d->h ? NULL : plane + (size_t)iy * d->w;
    }
}

/* The transformed tiles (ty, tx0 .. tx0 + len) of one input plane, input
 * channel c, written into the 16 packed right operands vb[xi] (block of nb
 * tiles, the segment starting at tile j of it): V = B^T d B,
 * B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. The input rows are read in
 * place, each as the even and odd columns under 16 tiles (a copy of them read
 * back at other offsets would wait for its stores); the rows' combinations
 * (B^T's) are taken on those, which is the same arithmetic on the same values
 * as combining whole rows first. */
WINO_AVX512 static void wino_in_segment(const wino_dims_t *d, const float *plane, int ty,
                                        int tx0, int len, float *const vb[16], int nb, int c,
                                        int j)
{
    const int ix0 = 2 * tx0 - d->pl;
    const float *src[4];
    wino_src_rows(d, plane, ty, 4, src);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    /* runs of tiles that stay inside one 32-column strip of the packed operand */
    for (int i = 0; i < len;) {
        const int col = j + i, run0 = NN_GEMM_NR - col % NN_GEMM_NR;
        const int run = len - i < run0 ? len - i : run0;
        const size_t off = nn_gemm_bpacked_offset(nb, d->ci, c, col);
        for (int h = 0; h < run; h += 16) {
            const __mmask16 mk = lanes(run - h);
            /* for input row r: columns q + 2 l (e0), + 1 (o0), + 2 (e1), + 3 (o1) under
             * tile l, zero outside the image */
            __m512 e0[4], o0[4], e1[4], o1[4];
            for (int s2 = 0; s2 < 2; s2++) {
                const int at = ix0 + 2 * (i + h) + 2 * s2;
                __mmask16 m[2];
                wino_mask32(at, d->w, m);
                for (int r = 0; r < 4; r++) {
                    __m512 x[2];
                    wino_load32(src[r], at, m, x);
                    (s2 ? e1 : e0)[r] = _mm512_permutex2var_ps(x[0], even, x[1]);
                    (s2 ? o1 : o0)[r] = _mm512_permutex2var_ps(x[0], odd, x[1]);
                }
            }
            for (int k = 0; k < 4; k++) {
                /* row combination k of B^T: t0 = v0 - v2, t1 = v1 + v2, t2 = v2 - v1, t3 = v1 - v3 */
#define WINO_ROWS(v)                                                                              \
    (k == 0   ? _mm512_sub_ps(v[0], v[2])                                                       \
     : k == 1 ? _mm512_add_ps(v[1], v[2])                                                       \
     : k == 2 ? _mm512_sub_ps(v[2], v[1])                                                       \
              : _mm512_sub_ps(v[1], v[3]))
                const __m512 te0 = WINO_ROWS(e0), to0 = WINO_ROWS(o0);
                const __m512 te1 = WINO_ROWS(e1), to1 = WINO_ROWS(o1);
#undef WINO_ROWS
                _mm512_mask_storeu_ps(vb[4 * k + 0] + off + h, mk, _mm512_sub_ps(te0, te1));
                _mm512_mask_storeu_ps(vb[4 * k + 1] + off + h, mk, _mm512_add_ps(to0, te1));
                _mm512_mask_storeu_ps(vb[4 * k + 2] + off + h, mk, _mm512_sub_ps(te1, to0));
                _mm512_mask_storeu_ps(vb[4 * k + 3] + off + h, mk, _mm512_sub_ps(to0, to1));
            }
        }
        i += run;
    }
}

/* Zeros in the columns past nb of the last 32-column strip of a packed right
 * operand (nn_gemm_bpacked_offset(nb, ci, .)), every row: the padding the
 * kernel multiplies but never stores, kept finite. */
WINO_AVX512 static void wino_zero_tail(float *vb, int nb, int ci)
{
    const int first = nb / NN_GEMM_NR * NN_GEMM_NR, r = nb - first;
    const __mmask16 m0 = (__mmask16)~lanes(r), m1 = (__mmask16)~lanes(r - 16);
    const __m512 zero = _mm512_setzero_ps();
    for (int p = 0; p < ci; p++) {
        float *row = vb + nn_gemm_bpacked_offset(nb, ci, p, first);
        _mm512_mask_storeu_ps(row, m0, zero);
        _mm512_mask_storeu_ps(row + 16, m1, zero);
    }
}

enum { WINO_ASSIGN, WINO_ADD };

/* One output row of 16 tiles: y0 (their left columns) and y1 (right)
 * interleaved into the 32 columns from dst, the first `cols` of them inside
 * the plane; + bias and max(., 0) (assign), or added onto dst (WINO_ADD). */
WINO_AVX512 static inline __attribute__((always_inline)) void
wino_store_pairs(float *dst, __m512 y0, __m512 y1, int cols, int mode, __m512 vb, int relu)
{
    const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi_idx =
        _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __mmask16 m0 = lanes(cols), m1 = lanes(cols - 16);
    __m512 p = _mm512_permutex2var_ps(y0, lo_idx, y1);
    __m512 q = _mm512_permutex2var_ps(y0, hi_idx, y1);
    if (mode == WINO_ADD) {
        p = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, dst), p);
        q = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, dst + 16), q);
    } else {
        p = _mm512_add_ps(p, vb);
        q = _mm512_add_ps(q, vb);
        if (relu) {
            const __m512 zero = _mm512_setzero_ps();
            p = _mm512_max_ps(p, zero);
            q = _mm512_max_ps(q, zero);
        }
    }
    _mm512_mask_storeu_ps(dst, m0, p);
    _mm512_mask_storeu_ps(dst + 16, m1, q);
}

/* The outputs of the tiles (ty, tx0 .. tx0 + len) of one output plane from
 * m[xi * ms + i]: Y = A^T M A, A^T = [1 1 1 0; 0 1 -1 -1]; then + bias and
 * max(., 0) (assign), or added onto the plane (WINO_ADD). */
WINO_AVX512 static void wino_out_segment(const wino_dims_t *d, const float *m, size_t ms, int ty,
                                         int tx0, int len, float *plane, int mode, float bias,
                                         int relu)
{
    const __m512 vb = _mm512_set1_ps(bias);
    const int oy = 2 * ty, ox0 = 2 * tx0, rows = d->oh - oy < 2 ? d->oh - oy : 2;
    for (int i = 0; i < len; i += 16) {
        const __mmask16 mk = lanes(len - i);
        __m512 r0[4], r1[4];
        for (int l = 0; l < 4; l++) {
            const __m512 a = _mm512_maskz_loadu_ps(mk, m + (size_t)l * ms + i);
            const __m512 b = _mm512_maskz_loadu_ps(mk, m + (size_t)(4 + l) * ms + i);
            const __m512 c = _mm512_maskz_loadu_ps(mk, m + (size_t)(8 + l) * ms + i);
            const __m512 e = _mm512_maskz_loadu_ps(mk, m + (size_t)(12 + l) * ms + i);
            r0[l] = _mm512_add_ps(_mm512_add_ps(a, b), c);
            r1[l] = _mm512_sub_ps(_mm512_sub_ps(b, c), e);
        }
        /* output columns of these tiles inside the plane */
        int cols = d->ow - (ox0 + 2 * i);
        if (cols > 32)
            cols = 32;
        for (int k = 0; k < rows; k++) {
            const __m512 *rk = k ? r1 : r0;
            const __m512 y0 = _mm512_add_ps(_mm512_add_ps(rk[0], rk[1]), rk[2]);
            const __m512 y1 = _mm512_sub_ps(_mm512_sub_ps(rk[1], rk[2]), rk[3]);
            wino_store_pairs(plane + (size_t)(oy + k) * d->ow + ox0 + 2 * i, y0, y1, cols, mode,
                             vb, relu);
        }
    }
}

/* The 5 x 5 kernel's input transform: the tiles (ty, tx0 .. tx0 + len) of
 * one input plane, channel c, into the 36 packed right operands vb[xi], as
 * wino_in_segment: V = B^T d B with (points 0, +-1, +-2, infinity)
 *   B^T = [4  0 -5  0  1  0
 *          0 -4 -4  1  1  0
 *          0  4 -4 -1  1  0
 *          0 -2 -1  2  1  0
 *          0  2 -1 -2  1  0
 *          0  4  0 -5  0  1],
 * along each row first (into a buffer of 6 x 6 vectors), then down the
 * columns. Input 5 of a row enters only the last combination and input 0
 * only the first, which the other output of the pair does not read: a
 * window of zeros gives exact zeros. */
WINO_AVX512 static inline void wino5_tf(const __m512 d[6], __m512 v[6])
{
    const __m512 c4 = _mm512_set1_ps(4.0f), c5 = _mm512_set1_ps(5.0f), c2 = _mm512_set1_ps(2.0f);
    v[0] = _mm512_fmadd_ps(c4, d[0], _mm512_fnmadd_ps(c5, d[2], d[4]));
    const __m512 a = _mm512_fnmadd_ps(c4, d[2], d[4]), b = _mm512_fnmadd_ps(c4, d[1], d[3]);
    v[1] = _mm512_add_ps(a, b);
    v[2] = _mm512_sub_ps(a, b);
    const __m512 e = _mm512_sub_ps(d[4], d[2]), f = _mm512_mul_ps(c2, _mm512_sub_ps(d[3], d[1]));
    v[3] = _mm512_add_ps(e, f);
    v[4] = _mm512_sub_ps(e, f);
    v[5] = _mm512_fmadd_ps(c4, d[1], _mm512_fnmadd_ps(c5, d[3], d[5]));
}

WINO_AVX512 static void wino5_in_segment(const wino_dims_t *d, const float *plane, int ty,
                                         int tx0, int len, float *const vb[36], int nb, int c,
                                         int j)
{
    const int ix0 = 2 * tx0 - d->pl;
    const float *src[6];
    wino_src_rows(d, plane, ty, 6, src);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 rows[6][6]; /* row r's combinations along the columns */
    for (int i = 0; i < len;) {
        const int col = j + i, run0 = NN_GEMM_NR - col % NN_GEMM_NR;
        const int run = len - i < run0 ? len - i : run0;
        const size_t off = nn_gemm_bpacked_offset(nb, d->ci, c, col);
        for (int h = 0; h < run; h += 16) {
            const __mmask16 mk = lanes(run - h);
            __mmask16 m[3][2];
            for (int s3 = 0; s3 < 3; s3++)
                wino_mask32(ix0 + 2 * (i + h) + 2 * s3, d->w, m[s3]);
            for (int r = 0; r < 6; r++) {
                /* columns q + 2 l + k of input row r under tile l, k = 0 .. 5 */
                __m512 dv[6];
                for (int s3 = 0; s3 < 3; s3++) {
                    __m512 x[2];
                    wino_load32(src[r], ix0 + 2 * (i + h) + 2 * s3, m[s3], x);
                    dv[2 * s3] = _mm512_permutex2var_ps(x[0], even, x[1]);
                    dv[2 * s3 + 1] = _mm512_permutex2var_ps(x[0], odd, x[1]);
                }
                wino5_tf(dv, rows[r]);
            }
            for (int q = 0; q < 6; q++) {
                __m512 dv[6], v[6];
                for (int r = 0; r < 6; r++)
                    dv[r] = rows[r][q];
                wino5_tf(dv, v);
                for (int k = 0; k < 6; k++)
                    _mm512_mask_storeu_ps(vb[6 * k + q] + off + h, mk, v[k]);
            }
        }
        i += run;
    }
}

/* The 5 x 5 kernel's outputs, as wino_out_segment: Y = A^T M A with
 * A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 1]. */
WINO_AVX512 static void wino5_out_segment(const wino_dims_t *d, const float *m, size_t ms, int ty,
                                          int tx0, int len, float *plane, int mode, float bias,
                                          int relu)
{
    const __m512 vb = _mm512_set1_ps(bias), c2 = _mm512_set1_ps(2.0f);
    const int oy = 2 * ty, ox0 = 2 * tx0, rows = d->oh - oy < 2 ? d->oh - oy : 2;
#define WINO5_Y0(t) _mm512_add_ps(_mm512_add_ps(t[0], _mm512_add_ps(t[1], t[2])), _mm512_add_ps(t[3], t[4]))
#define WINO5_Y1(t)                                                                               \
    _mm512_add_ps(_mm512_fmadd_ps(c2, _mm512_sub_ps(t[3], t[4]), _mm512_sub_ps(t[1], t[2])), t[5])
    for (int i = 0; i < len; i += 16) {
        const __mmask16 mk = lanes(len - i);
        __m512 r0[6], r1[6];
        for (int l = 0; l < 6; l++) {
            __m512 t[6];
            for (int k = 0; k < 6; k++)
                t[k] = _mm512_maskz_loadu_ps(mk, m + (size_t)(6 * k + l) * ms + i);
            r0[l] = WINO5_Y0(t);
            r1[l] = WINO5_Y1(t);
        }
        int cols = d->ow - (ox0 + 2 * i);
        if (cols > 32)
            cols = 32;
        for (int k = 0; k < rows; k++) {
            const __m512 *rk = k ? r1 : r0;
            wino_store_pairs(plane + (size_t)(oy + k) * d->ow + ox0 + 2 * i, WINO5_Y0(rk),
                             WINO5_Y1(rk), cols, mode, vb, relu);
        }
    }
#undef WINO5_Y0
#undef WINO5_Y1
}

/* The body of wino_run for kernel size k (a constant where it is inlined,
 * so that each size gets its own loops). */
WINO_AVX512 static inline __attribute__((always_inline)) void
wino_run_k(const wino_dims_t *d, const float *u, const float *x, float *y, const float *bias,
           int relu, int mode, float *ws, const int k)
{
    const int tb = wino_block(d), t1 = d->th * d->tw;
    const size_t total = (size_t)d->n * t1, in_plane = (size_t)d->h * d->w;
    const size_t out_plane = (size_t)d->oh * d->ow, ustride = nn_gemm_packed_floats(d->co, d->ci);
    const size_t vs = nn_gemm_bpacked_floats(tb, d->ci), ms = (size_t)d->co * tb;
    const int np = (k + 1) * (k + 1);
    float *v = ws, *m = v + (size_t)np * vs;
    for (size_t t0 = 0; t0 < total; t0 += (size_t)tb) {
        const int nb = total - t0 < (size_t)tb ? (int)(total - t0) : tb;
        float *vb[36];
        for (int xi = 0; xi < np; xi++)
            vb[xi] = v + xi * vs;
        if (nb % NN_GEMM_NR) /* the last strip's columns past nb: zeros, never stored */
            for (int xi = 0; xi < np; xi++)
                wino_zero_tail(vb[xi], nb, d->ci);
        for (int j = 0; j < nb;) { /* the block's segments: runs of one tile row */
            const size_t t = t0 + (size_t)j;
            const int img = (int)(t / (size_t)t1), r = (int)(t % (size_t)t1);
            const int ty = r / d->tw, tx = r % d->tw;
            const int len = d->tw - tx < nb - j ? d->tw - tx : nb - j;
            for (int c = 0; c < d->ci; c++) {
                const float *plane = x + ((size_t)img * d->ci + c) * in_plane;
                if (k == 3)
                    wino_in_segment(d, plane, ty, tx, len, vb, nb, c, j);
                else
                    wino5_in_segment(d, plane, ty, tx, len, vb, nb, c, j);
            }
            j += len;
        }
        for (int xi = 0; xi < np; xi++)
            nn_gemm_packed_bp(d->co, nb, d->ci, u + xi * ustride, vb[xi], m + xi * ms, tb);
        for (int j = 0; j < nb;) {
            const size_t t = t0 + (size_t)j;
            const int img = (int)(t / (size_t)t1), r = (int)(t % (size_t)t1);
            const int ty = r / d->tw, tx = r % d->tw;
            const int len = d->tw - tx < nb - j ? d->tw - tx : nb - j;
            for (int o = 0; o < d->co; o++) {
                float *plane = y + ((size_t)img * d->co + o) * out_plane;
                const float bo = bias ? bias[o] : 0.0f;
                if (k == 3)
                    wino_out_segment(d, m + (size_t)o * tb + j, ms, ty, tx, len, plane, mode, bo,
                                     relu);
                else
                    wino5_out_segment(d, m + (size_t)o * tb + j, ms, ty, tx, len, plane, mode,
                                      bo, relu);
            }
            j += len;
        }
    }
}

WINO_AVX512 static void wino_run(const wino_dims_t *d, const float *u, const float *x, float *y,
                                 const float *bias, int relu, int mode, float *ws)
{
    if (d->k == 3)
        wino_run_k(d, u, x, y, bias, relu, mode, ws, 3);
    else
        wino_run_k(d, u, x, y, bias, relu, mode, ws, 5);
}

#else /* no AVX-512 kernel: conv_wino_wanted() is 0 and these are never called */

enum { WINO_ASSIGN, WINO_ADD };

static void wino_run(const wino_dims_t *d, const float *u, const float *x, float *y,
                     const float *bias, int relu, int mode, float *ws)
{
    (void)d, (void)u, (void)x, (void)y, (void)bias, (void)relu, (void)mode, (void)ws;
}

#endif

void conv_wino_forward(const conv2d_shape_t *s, const float *u, const float *x, const float *b,
                       int relu, float *y, float *ws)
{
    if (w7_shape(s)) {
        w7_forward(s, u, x, b, relu, y, ws);
        return;
    }
    const wino_dims_t d = wino_dims(s, 0);
    wino_run(&d, u, x, y, b, relu, WINO_ASSIGN, ws);
}

void conv_wino_backward_data(const conv2d_shape_t *s, const float *u, const float *dy, float *dx,
                             int assign, float *ws)
{
    if (w7_shape(s)) {
        w7_backward_data(s, u, dy, dx, assign, ws);
        return;
    }
    const wino_dims_t d = wino_dims(s, 1);
    wino_run(&d, u, dy, dx, NULL, 0, assign ? WINO_ASSIGN : WINO_ADD, ws);
}

/*
 * F(2, 7) along one axis, for the 1 x 7 and 7 x 1 convolutions (InceptionV3's
 * 17 x 17 blocks): each pair of outputs along the kernel's axis (a tile)
 * from the 8 inputs under it with 8 products per channel pair instead of 14,
 * through the interpolation points 0, +-1, +-2, +-1/2 and infinity:
 *   V = B^T d, U = G g, M[e] = U[e] V[e] (8 GEMMs over the channels),
 *   y = A^T M,
 * with B^T and A^T below and G's rows (-1, 0 .. 0; -2/9 (1 1 1 1 1 1 1);
 * -2/9 (1 -1 1 -1 1 -1 1); (1/90, 1/45, 2/45, 4/45, 8/45, 16/45, 32/45) and
 * its alternating twin; the same reversed and its twin; 0 .. 0, 1). U is
 * computed in double and rounded once. The transforms' coefficients are
 * sums of powers of two (21/4, 17/4, 5/2, 5/4), so a window of zeros gives
 * exact zeros; the rounding error is about three times the direct sum's
 * (tests/unit/test_wino.c bounds it against float64). Only unpadded across
 * the axis, stride 1, padding 0-6 along it; the input gradient is the same
 * correlation with the taps reversed and padding 6 - p.
 */
typedef struct {
    int n, ci, co;
    int h, w;   /* input plane */
    int oh, ow; /* output plane */
    int pa;     /* zeros before the input along the axis */
    int along_w;  /* 1 x 7: the tiles are pairs of columns; 7 x 1: pairs of rows */
    int ta, tn; /* tiles along the axis; tiles per run (a row of tiles) */
    int runs;   /* runs per image */
} w7_dims_t;

static int w7_shape(const conv2d_shape_t *s)
{
    if (s->sh != 1 || s->sw != 1)
        return 0;
    if (s->kh == 1 && s->kw == 7)
        return !s->pt && !s->pb && s->pl >= 0 && s->pl <= 6 && s->pr >= 0 && s->pr <= 6;
    if (s->kh == 7 && s->kw == 1)
        return !s->pl && !s->pr && s->pt >= 0 && s->pt <= 6 && s->pb >= 0 && s->pb <= 6;
    return 0;
}

static w7_dims_t w7_dims(const conv2d_shape_t *s, int backward)
{
    const int along_w = s->kh == 1, pa = along_w ? s->pl : s->pt;
    w7_dims_t d;
    if (!backward)
        d = (w7_dims_t){s->n, s->c, s->oc, s->h, s->w, s->oh, s->ow, pa, along_w, 0, 0, 0};
    else /* dx = correlation of dy with the reversed taps, padding 6 - p */
        d = (w7_dims_t){s->n, s->oc, s->c, s->oh, s->ow, s->h, s->w, 6 - pa, along_w, 0, 0, 0};
    /* 1 x 7: a run is the tiles of one output row; 7 x 1: the columns of one row of tiles */
    d.ta = ((along_w ? d.ow : d.oh) + 1) / 2;
    d.tn = along_w ? d.ta : d.ow;
    d.runs = along_w ? d.oh : d.ta;
    return d;
}

/* Tiles per block of the 7-tap kernels: V and M each under
 * CONV_WINO7_BLOCK_FLOATS. */
#ifndef CONV_WINO7_BLOCK_FLOATS
#define CONV_WINO7_BLOCK_FLOATS CONV_WINO_BLOCK_FLOATS
#endif

static int w7_block(const w7_dims_t *d)
{
    return wino_tiles(CONV_WINO7_BLOCK_FLOATS, 8, d->ci, d->co);
}

static size_t w7_ws(const w7_dims_t *d)
{
    const int tb = w7_block(d);
    return 8 * (nn_gemm_bpacked_floats(tb, d->ci) + (size_t)d->co * tb);
}

static size_t w7_workspace(const conv2d_shape_t *s)
{
    const w7_dims_t f = w7_dims(s, 0), b = w7_dims(s, 1);
    const size_t a = w7_ws(&f), c = w7_ws(&b);
    return a > c ? a : c;
}

static size_t w7_u_floats(const conv2d_shape_t *s, int backward)
{
    const w7_dims_t d = w7_dims(s, backward);
    return 8 * nn_gemm_packed_floats(d.co, d.ci);
}

/* z = G g for one 7-tap kernel g (flipped: the taps reversed), in double,
 * rounded once. */
static void w7_kernel(const float *g7, int flip, float z[8])
{
    static const double g[8][7] = {
        {-1, 0, 0, 0, 0, 0, 0},
        {-2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9, -2.0 / 9},
        {-2.0 / 9, 2.0 / 9, -2.0 / 9, 2.0 / 9, -2.0 / 9, 2.0 / 9, -2.0 / 9},
        {1.0 / 90, 1.0 / 45, 2.0 / 45, 4.0 / 45, 8.0 / 45, 16.0 / 45, 32.0 / 45},
        {1.0 / 90, -1.0 / 45, 2.0 / 45, -4.0 / 45, 8.0 / 45, -16.0 / 45, 32.0 / 45},
        {32.0 / 45, 16.0 / 45, 8.0 / 45, 4.0 / 45, 2.0 / 45, 1.0 / 45, 1.0 / 90},
        {32.0 / 45, -16.0 / 45, 8.0 / 45, -4.0 / 45, 2.0 / 45, -1.0 / 45, 1.0 / 90},
        {0, 0, 0, 0, 0, 0, 1},
    };
    for (int e = 0; e < 8; e++) {
        double acc = 0.0;
        for (int k = 0; k < 7; k++)
            acc += g[e][k] * (double)g7[flip ? 6 - k : k];
        z[e] = (float)acc;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)

/* V = B^T d for 16 tiles at once (d[j]: input j of each tile), B^T =
 *   -1    0  21/4    0  -21/4   0    1   0
 *    0    1    1  -17/4 -17/4   1    1   0
 *    0   -1    1   17/4 -17/4  -1    1   0
 *    0  1/2  1/4   -5/2  -5/4   2    1   0
 *    0 -1/2  1/4    5/2  -5/4  -2    1   0
 *    0    2    4   -5/2    -5  1/2   1   0
 *    0   -2    4    5/2    -5 -1/2   1   0
 *    0   -1    0   21/4     0 -21/4  0   1 */
WINO_AVX512 static inline void w7_in_tf(const __m512 d[8], __m512 v[8])
{
    const __m512 c21_4 = _mm512_set1_ps(5.25f), c17_4 = _mm512_set1_ps(4.25f);
    const __m512 c5_4 = _mm512_set1_ps(1.25f), c5_2 = _mm512_set1_ps(2.5f);
    const __m512 c1_4 = _mm512_set1_ps(0.25f), c1_2 = _mm512_set1_ps(0.5f);
    const __m512 c2 = _mm512_set1_ps(2.0f), c4 = _mm512_set1_ps(4.0f), c5 = _mm512_set1_ps(5.0f);
    v[0] = _mm512_fmadd_ps(c21_4, _mm512_sub_ps(d[2], d[4]), _mm512_sub_ps(d[6], d[0]));
    v[7] = _mm512_fmadd_ps(c21_4, _mm512_sub_ps(d[3], d[5]), _mm512_sub_ps(d[7], d[1]));
    const __m512 t1 = _mm512_fnmadd_ps(c17_4, d[4], _mm512_add_ps(d[2], d[6]));
    const __m512 t2 = _mm512_fnmadd_ps(c17_4, d[3], _mm512_add_ps(d[1], d[5]));
    v[1] = _mm512_add_ps(t1, t2);
    v[2] = _mm512_sub_ps(t1, t2);
    const __m512 t3 = _mm512_fnmadd_ps(c5_4, d[4], _mm512_fmadd_ps(c1_4, d[2], d[6]));
    const __m512 t4 = _mm512_fmadd_ps(c2, d[5], _mm512_fnmadd_ps(c5_2, d[3], _mm512_mul_ps(c1_2, d[1])));
    v[3] = _mm512_add_ps(t3, t4);
    v[4] = _mm512_sub_ps(t3, t4);
    const __m512 t5 = _mm512_fnmadd_ps(c5, d[4], _mm512_fmadd_ps(c4, d[2], d[6]));
    const __m512 t6 = _mm512_fmadd_ps(c1_2, d[5], _mm512_fnmadd_ps(c5_2, d[3], _mm512_mul_ps(c2, d[1])));
    v[5] = _mm512_add_ps(t5, t6);
    v[6] = _mm512_sub_ps(t5, t6);
}

/* The transformed tiles of one run (tiles r0 .. r0 + len of run `run`) of one
 * input plane, channel c, into the 8 packed right operands vb[e] (block of nb
 * tiles, the run starting at its tile j). */
WINO_AVX512 static void w7_in_run(const w7_dims_t *d, const float *plane, int run, int r0, int len,
                                  float *const vb[8], int nb, int c, int j)
{
    const __m512 zero = _mm512_setzero_ps();
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const float *src[8] = {0};
    if (!d->along_w) {
        for (int k = 0; k < 8; k++) { /* input rows 2 run - pa + k, NULL outside */
            const int iy = 2 * run - d->pa + k;
            src[k] = iy < 0 || iy >= d->h ? NULL : plane + (size_t)iy * d->w + r0;
        }
    }
    for (int i = 0; i < len;) { /* runs of tiles inside one 32-column strip */
        const int col = j + i, run0 = NN_GEMM_NR - col % NN_GEMM_NR;
        const int n = len - i < run0 ? len - i : run0;
        const size_t off = nn_gemm_bpacked_offset(nb, d->ci, c, col);
        for (int h = 0; h < n; h += 16) {
            const __mmask16 mk = lanes(n - h);
            __m512 dv[8], v[8];
            if (d->along_w) {
                /* tile l's input k: column q + 2 l + k of input row `run`, zero outside the
                 * row, read in place: a copy read back at other offsets waits for its
                 * stores */
                const int q = 2 * (r0 + i + h) - d->pa;
                const float *in = plane + (size_t)run * d->w;
                for (int k = 0; k < 8; k++) {
                    __m512 x[2];
                    __mmask16 m[2];
                    wino_mask32(q + k, d->w, m);
                    wino_load32(in, q + k, m, x);
                    dv[k] = _mm512_permutex2var_ps(x[0], even, x[1]);
                }
            } else {
                for (int k = 0; k < 8; k++)
                    dv[k] = src[k] ? _mm512_maskz_loadu_ps(mk, src[k] + i + h) : zero;
            }
            w7_in_tf(dv, v);
            for (int e = 0; e < 8; e++)
                _mm512_mask_storeu_ps(vb[e] + off + h, mk, v[e]);
        }
        i += n;
    }
}

/* The outputs of one run's tiles in one output plane from m[e * ms + i]:
 * y0 = M0 + (M1 + M2) + (M3 + M4) + (M5 + M6), y1 = (M1 - M2) + 2 (M3 - M4)
 * + 1/2 (M5 - M6) + M7; then + bias and max(., 0) (assign), or added onto
 * the plane (WINO_ADD). */
WINO_AVX512 static void w7_out_run(const w7_dims_t *d, const float *m, size_t ms, int run, int r0,
                                   int len, float *plane, int mode, float bias, int relu)
{
    const __m512i lo_idx = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi_idx =
        _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512 vb = _mm512_set1_ps(bias), zero = _mm512_setzero_ps();
    const __m512 c2 = _mm512_set1_ps(2.0f), c1_2 = _mm512_set1_ps(0.5f);
    for (int i = 0; i < len; i += 16) {
        const __mmask16 mk = lanes(len - i);
        __m512 t[8];
        for (int e = 0; e < 8; e++)
            t[e] = _mm512_maskz_loadu_ps(mk, m + (size_t)e * ms + i);
        const __m512 y0 = _mm512_add_ps(
            _mm512_add_ps(_mm512_add_ps(t[0], _mm512_add_ps(t[1], t[2])), _mm512_add_ps(t[3], t[4])),
            _mm512_add_ps(t[5], t[6]));
        const __m512 y1 = _mm512_add_ps(
            _mm512_fmadd_ps(c1_2, _mm512_sub_ps(t[5], t[6]),
                            _mm512_fmadd_ps(c2, _mm512_sub_ps(t[3], t[4]), _mm512_sub_ps(t[1], t[2]))),
            t[7]);
        __m512 out[2];
        __mmask16 om[2];
        float *dst[2];
        int n_out;
        if (d->along_w) { /* columns 2 (r0 + i) .., the pairs interleaved */
            const int ox = 2 * (r0 + i);
            int cols = d->ow - ox; /* inside the plane and this run's tiles */
            if (cols > 2 * (len - i))
                cols = 2 * (len - i);
            if (cols > 32)
                cols = 32;
            out[0] = _mm512_permutex2var_ps(y0, lo_idx, y1);
            out[1] = _mm512_permutex2var_ps(y0, hi_idx, y1);
            om[0] = lanes(cols), om[1] = lanes(cols - 16);
            dst[0] = plane + (size_t)run * d->ow + ox;
            dst[1] = dst[0] + 16;
            n_out = 2;
        } else { /* rows 2 run and 2 run + 1 (when inside), columns r0 + i .. */
            out[0] = y0, out[1] = y1;
            om[0] = om[1] = mk;
            dst[0] = plane + (size_t)(2 * run) * d->ow + r0 + i;
            dst[1] = dst[0] + d->ow;
            n_out = 2 * run + 1 < d->oh ? 2 : 1;
        }
        for (int k = 0; k < n_out; k++) {
            __m512 p = out[k];
            if (mode == WINO_ADD) {
                p = _mm512_add_ps(_mm512_maskz_loadu_ps(om[k], dst[k]), p);
            } else {
                p = _mm512_add_ps(p, vb);
                if (relu)
                    p = _mm512_max_ps(p, zero);
            }
            _mm512_mask_storeu_ps(dst[k], om[k], p);
        }
    }
}

static void w7_run(const w7_dims_t *d, const float *u, const float *x, float *y,
                   const float *bias, int relu, int mode, float *ws)
{
    const int tb = w7_block(d), t1 = d->runs * d->tn;
    const size_t total = (size_t)d->n * t1, in_plane = (size_t)d->h * d->w;
    const size_t out_plane = (size_t)d->oh * d->ow, ustride = nn_gemm_packed_floats(d->co, d->ci);
    const size_t vs = nn_gemm_bpacked_floats(tb, d->ci), ms = (size_t)d->co * tb;
    float *v = ws, *m = v + 8 * vs;
    for (size_t t0 = 0; t0 < total; t0 += (size_t)tb) {
        const int nb = total - t0 < (size_t)tb ? (int)(total - t0) : tb;
        float *vb[8];
        for (int e = 0; e < 8; e++)
            vb[e] = v + e * vs;
        if (nb % NN_GEMM_NR)
            for (int e = 0; e < 8; e++)
                wino_zero_tail(vb[e], nb, d->ci);
        for (int j = 0; j < nb;) { /* the block's pieces of runs */
            const size_t t = t0 + (size_t)j;
            const int img = (int)(t / (size_t)t1), r = (int)(t % (size_t)t1);
            const int run = r / d->tn, r0 = r % d->tn;
            const int len = d->tn - r0 < nb - j ? d->tn - r0 : nb - j;
            for (int c = 0; c < d->ci; c++)
                w7_in_run(d, x + ((size_t)img * d->ci + c) * in_plane, run, r0, len, vb, nb, c, j);
            j += len;
        }
        for (int e = 0; e < 8; e++)
            nn_gemm_packed_bp(d->co, nb, d->ci, u + e * ustride, vb[e], m + e * ms, tb);
        for (int j = 0; j < nb;) {
            const size_t t = t0 + (size_t)j;
            const int img = (int)(t / (size_t)t1), r = (int)(t % (size_t)t1);
            const int run = r / d->tn, r0 = r % d->tn;
            const int len = d->tn - r0 < nb - j ? d->tn - r0 : nb - j;
            for (int o = 0; o < d->co; o++)
                w7_out_run(d, m + (size_t)o * tb + j, ms, run, r0, len,
                           y + ((size_t)img * d->co + o) * out_plane, mode, bias ? bias[o] : 0.0f,
                           relu);
            j += len;
        }
    }
}

#else

static void w7_run(const w7_dims_t *d, const float *u, const float *x, float *y,
                   const float *bias, int relu, int mode, float *ws)
{
    (void)d, (void)u, (void)x, (void)y, (void)bias, (void)relu, (void)mode, (void)ws;
}

#endif

static void w7_forward(const conv2d_shape_t *s, const float *u, const float *x, const float *b,
                       int relu, float *y, float *ws)
{
    const w7_dims_t d = w7_dims(s, 0);
    w7_run(&d, u, x, y, b, relu, WINO_ASSIGN, ws);
}

static void w7_backward_data(const conv2d_shape_t *s, const float *u, const float *dy, float *dx,
                             int assign, float *ws)
{
    const w7_dims_t d = w7_dims(s, 1);
    w7_run(&d, u, dy, dx, NULL, 0, assign ? WINO_ASSIGN : WINO_ADD, ws);
}
