/*
 * pool_simd.c - AVX-512 max and average pooling, bit-identical to the
 * per-output loops of nn/pool.c (pool_simd.h).
 *
 * Owned by common/nn. The lanes of a vector are 16 neighbouring output
 * columns of one output row (forward), or 16 neighbouring input columns of
 * one input row (average pooling backward). For every window column kx a
 * table holds, per lane, the column read (an index vector: a contiguous load
 * at stride 1, two loads and a permutation at stride 2 forward, a gather
 * otherwise) and whether it lies inside the image (a
 * mask). A lane then sees exactly the scalar sequence of operations:
 *   - average forward: acc = 0, acc += x over the window rows top to bottom
 *     and columns left to right, then acc / count, the count an exact integer
 *     converted to float as in nn/pool.c. A lane outside the image adds +0,
 *     which leaves the sum unchanged (the sum starts at +0 and so is never -0);
 *   - average backward: the scaled gradients g = dy / count of one plane are
 *     computed first; a pixel then receives g of the outputs covering it in
 *     raster order (output rows in order; within one row the window columns
 *     from last to first, i.e. output columns in order), onto its earlier
 *     value or onto +0 (assign);
 *   - max forward: the window scanned row by row, left to right; a cell wins
 *     when it is the first inside the image or strictly greater (a NaN never
 *     replaces an earlier cell), so ties keep the first maximum.
 */
#include "nn/pool_simd.h"

#if defined(__x86_64__) && defined(__GNUC__)

#include <immintrin.h>
#include <stddef.h>

/* Window extent along one axis, as avg_span in nn/pool.c. */
static void simd_span(int o, int stride, int pad_before, int k, int in, int pad_after, int *a,
                      int *b, int *padded)
{
    const int lo = o * stride - pad_before, hi = lo + k;
    const int phi = hi < in + pad_after ? hi : in + pad_after;
    *padded = phi - lo;
    *a = lo < 0 ? 0 : lo;
    *b = hi > in ? in : hi;
}

static int simd_available(void)
{
    return __builtin_cpu_supports("avx512f");
}

/* Which of the 32 contiguous columns first .. first + 31 lie in [0, w), as
 * two 16-lane masks (stride 2: the columns a row of 16 windows spans). */
__attribute__((target("avx512f"))) static void span_masks(int first, int w, __mmask16 *lo,
                                                          __mmask16 *hi)
{
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i c0 = _mm512_add_epi32(_mm512_set1_epi32(first), lane);
    const __m512i c1 = _mm512_add_epi32(c0, _mm512_set1_epi32(16));
    const __m512i zero = _mm512_setzero_si512(), wv = _mm512_set1_epi32(w);
    *lo = _mm512_cmpge_epi32_mask(c0, zero) & _mm512_cmplt_epi32_mask(c0, wv);
    *hi = _mm512_cmpge_epi32_mask(c1, zero) & _mm512_cmplt_epi32_mask(c1, wv);
}

/* Column tables of the forward kernels for output columns ox0 .. ox0 + 15:
 * idx[kx] = ox * sw - pl + kx, in[kx] = lanes with an output column and that
 * input column inside [0, w). */
__attribute__((target("avx512f"))) static void fwd_tables(const pool_shape_t *s, int ox0,
                                                          __m512i *idx, __mmask16 *in,
                                                          __mmask16 *lo, __mmask16 *hi)
{
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i ox = _mm512_add_epi32(_mm512_set1_epi32(ox0), lane);
    const __mmask16 live = _mm512_cmplt_epi32_mask(ox, _mm512_set1_epi32(s->ow));
    const __m512i col0 = _mm512_sub_epi32(_mm512_mullo_epi32(ox, _mm512_set1_epi32(s->sw)),
                                          _mm512_set1_epi32(s->pl));
    for (int kx = 0; kx < s->kw; kx++) {
        idx[kx] = _mm512_add_epi32(col0, _mm512_set1_epi32(kx));
        in[kx] = live & _mm512_cmpge_epi32_mask(idx[kx], _mm512_setzero_si512()) &
                 _mm512_cmplt_epi32_mask(idx[kx], _mm512_set1_epi32(s->w));
        span_masks(ox0 * s->sw - s->pl + kx, s->w, &lo[kx], &hi[kx]);
    }
}

/* Cells of row `row` at the table's columns; lanes outside read +0 (or
 * whatever the caller masks off). At stride 1 the columns are contiguous
 * from idx lane 0 (a masked load, which never touches a masked-off lane's
 * address); at stride 2 two masked loads of 16 and the even lanes of both;
 * otherwise a gather. */
__attribute__((target("avx512f"))) static inline __m512 row_cells(const float *row, int sw,
                                                                  int first, __m512i idx,
                                                                  __mmask16 in, __mmask16 lo,
                                                                  __mmask16 hi)
{
    const float *at = (const float *)((uintptr_t)row + (uintptr_t)(ptrdiff_t)first * 4);
    if (sw == 1)
        return _mm512_maskz_loadu_ps(in, at);
    if (sw == 2) {
        const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6,
                                              4, 2, 0);
        const __m512 a = _mm512_maskz_loadu_ps(lo, at), b = _mm512_maskz_loadu_ps(hi, at + 16);
        return _mm512_maskz_mov_ps(in, _mm512_permutex2var_ps(a, even, b));
    }
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), in, idx, row, 4);
}

__attribute__((target("avx512f"))) static void maxpool_plane(const pool_shape_t *s,
                                                             const float *xp, float *yp,
                                                             int32_t *ap)
{
    __m512i idx[POOL_SIMD_KMAX];
    __mmask16 in[POOL_SIMD_KMAX], lo[POOL_SIMD_KMAX], hi[POOL_SIMD_KMAX];
    for (int ox0 = 0; ox0 < s->ow; ox0 += 16) {
        fwd_tables(s, ox0, idx, in, lo, hi);
        const int lanes = s->ow - ox0 < 16 ? s->ow - ox0 : 16;
        const __mmask16 store = (__mmask16)((1u << lanes) - 1u);
        const int first = ox0 * s->sw - s->pl;
        for (int oy = 0; oy < s->oh; oy++) {
            const int y0 = oy * s->sh - s->pt;
            __m512 best = _mm512_setzero_ps();
            __m512i where = _mm512_set1_epi32(-1);
            __mmask16 seen = 0;
            for (int ky = 0; ky < s->kh; ky++) {
                const int iy = y0 + ky;
                if (iy < 0 || iy >= s->h)
                    continue;
                const float *row = xp + (size_t)iy * s->w;
                const __m512i base = _mm512_set1_epi32(iy * s->w);
                for (int kx = 0; kx < s->kw; kx++) {
                    const __m512 v =
                        row_cells(row, s->sw, first + kx, idx[kx], in[kx], lo[kx], hi[kx]);
                    const __mmask16 take =
                        in[kx] & (__mmask16)(~seen | _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ));
                    best = _mm512_mask_mov_ps(best, take, v);
                    where = _mm512_mask_mov_epi32(where, take, _mm512_add_epi32(base, idx[kx]));
                    seen |= take;
                }
            }
            best = _mm512_maskz_mov_ps(seen, best);
            _mm512_mask_storeu_ps(yp + (size_t)oy * s->ow + ox0, store, best);
            _mm512_mask_storeu_epi32(ap + (size_t)oy * s->ow + ox0, store, where);
        }
    }
}

int pool_simd_maxpool_forward(const pool_shape_t *s, const float *x, float *y, int32_t *argmax)
{
    if (s->kw > POOL_SIMD_KMAX || !simd_available())
        return 0;
    const size_t planes = (size_t)s->n * s->c, isz = (size_t)s->h * s->w,
                 osz = (size_t)s->oh * s->ow;
    for (size_t pl = 0; pl < planes; pl++)
        maxpool_plane(s, x + pl * isz, y + pl * osz, argmax + pl * osz);
    return 1;
}

/* Per-lane column counts of the divisor for output columns ox0 .. ox0 + 15:
 * the padded width (count_include_pad) or the in-image width. */
__attribute__((target("avx512f"))) static __m512i avg_col_counts(const pool_shape_t *s, int ox0)
{
    int32_t cnt[16];
    for (int j = 0; j < 16; j++) {
        int xa = 0, xb = 0, xpad = 0;
        if (ox0 + j < s->ow)
            simd_span(ox0 + j, s->sw, s->pl, s->kw, s->w, s->pr, &xa, &xb, &xpad);
        cnt[j] = s->count_include_pad ? xpad : xb - xa;
    }
    return _mm512_loadu_si512(cnt);
}

/* The float divisor of output row oy's windows, as avg_divisor in nn/pool.c:
 * rows x columns in int, 1 where that is not positive. */
__attribute__((target("avx512f"))) static inline __m512 avg_divisors(const pool_shape_t *s,
                                                                     int ya, int yb, int ypad,
                                                                     __m512i cols)
{
    const int rows = s->count_include_pad ? ypad : yb - ya;
    __m512i count = _mm512_mullo_epi32(_mm512_set1_epi32(rows), cols);
    count = _mm512_mask_mov_epi32(count, _mm512_cmple_epi32_mask(count, _mm512_setzero_si512()),
                                  _mm512_set1_epi32(1));
    return _mm512_cvtepi32_ps(count);
}

__attribute__((target("avx512f"))) static void avgpool_fwd_plane(const pool_shape_t *s,
                                                                 const float *xp, float *yp)
{
    __m512i idx[POOL_SIMD_KMAX];
    __mmask16 in[POOL_SIMD_KMAX], lo[POOL_SIMD_KMAX], hi[POOL_SIMD_KMAX];
    for (int ox0 = 0; ox0 < s->ow; ox0 += 16) {
        fwd_tables(s, ox0, idx, in, lo, hi);
        const __m512i cols = avg_col_counts(s, ox0);
        const int lanes = s->ow - ox0 < 16 ? s->ow - ox0 : 16;
        const __mmask16 store = (__mmask16)((1u << lanes) - 1u);
        const int first = ox0 * s->sw - s->pl;
        for (int oy = 0; oy < s->oh; oy++) {
            int ya, yb, ypad;
            simd_span(oy, s->sh, s->pt, s->kh, s->h, s->pb, &ya, &yb, &ypad);
            __m512 acc = _mm512_setzero_ps();
            for (int iy = ya; iy < yb; iy++) {
                const float *row = xp + (size_t)iy * s->w;
                for (int kx = 0; kx < s->kw; kx++)
                    acc = _mm512_add_ps(
                        acc, row_cells(row, s->sw, first + kx, idx[kx], in[kx], lo[kx], hi[kx]));
            }
            acc = _mm512_div_ps(acc, avg_divisors(s, ya, yb, ypad, cols));
            _mm512_mask_storeu_ps(yp + (size_t)oy * s->ow + ox0, store, acc);
        }
    }
}

int pool_simd_avgpool_forward(const pool_shape_t *s, const float *x, float *y)
{
    if (s->kw > POOL_SIMD_KMAX || !simd_available())
        return 0;
    const size_t planes = (size_t)s->n * s->c, isz = (size_t)s->h * s->w,
                 osz = (size_t)s->oh * s->ow;
    for (size_t pl = 0; pl < planes; pl++)
        avgpool_fwd_plane(s, x + pl * isz, y + pl * osz);
    return 1;
}

/* g = dy / divisor for one plane, in output order. */
__attribute__((target("avx512f"))) static void avg_scaled_grad(const pool_shape_t *s,
                                                               const float *dyp, float *g)
{
    for (int ox0 = 0; ox0 < s->ow; ox0 += 16) {
        const __m512i cols = avg_col_counts(s, ox0);
        const int lanes = s->ow - ox0 < 16 ? s->ow - ox0 : 16;
        const __mmask16 store = (__mmask16)((1u << lanes) - 1u);
        for (int oy = 0; oy < s->oh; oy++) {
            int ya, yb, ypad;
            simd_span(oy, s->sh, s->pt, s->kh, s->h, s->pb, &ya, &yb, &ypad);
            const size_t at = (size_t)oy * s->ow + ox0;
            const __m512 d = _mm512_maskz_loadu_ps(store, dyp + at);
            _mm512_mask_storeu_ps(g + at, store,
                                  _mm512_div_ps(d, avg_divisors(s, ya, yb, ypad, cols)));
        }
    }
}

/* Backward tables for input columns p0 .. p0 + 15: window column kx reaches
 * pixel p from output column ox = (p + pl - kx) / sw when that divides
 * exactly and 0 <= ox < ow. */
__attribute__((target("avx512f"))) static void bwd_tables(const pool_shape_t *s, int p0,
                                                          __m512i *idx, __mmask16 *in,
                                                          __mmask16 *lo, __mmask16 *hi)
{
    const __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i p = _mm512_add_epi32(_mm512_set1_epi32(p0), lane);
    const __mmask16 live = _mm512_cmplt_epi32_mask(p, _mm512_set1_epi32(s->w));
    for (int kx = 0; kx < s->kw; kx++) {
        int32_t ox[16];
        __mmask16 ok = 0;
        for (int j = 0; j < 16; j++) {
            const int t = p0 + j + s->pl - kx;
            ox[j] = 0;
            if (t >= 0 && t % s->sw == 0 && t / s->sw < s->ow) {
                ox[j] = t / s->sw;
                ok |= (__mmask16)(1u << j);
            }
        }
        idx[kx] = _mm512_loadu_si512(ox);
        in[kx] = live & ok;
        lo[kx] = hi[kx] = 0; /* unused: strided backwards gather */
    }
}

__attribute__((target("avx512f"))) static void avgpool_bwd_plane(const pool_shape_t *s,
                                                                 const float *g, float *dxp,
                                                                 int assign)
{
    __m512i idx[POOL_SIMD_KMAX];
    __mmask16 in[POOL_SIMD_KMAX], lo[POOL_SIMD_KMAX], hi[POOL_SIMD_KMAX];
    for (int p0 = 0; p0 < s->w; p0 += 16) {
        bwd_tables(s, p0, idx, in, lo, hi);
        const int lanes = s->w - p0 < 16 ? s->w - p0 : 16;
        const __mmask16 store = (__mmask16)((1u << lanes) - 1u);
        const int first = p0 + s->pl; /* the output column of lane 0 at kx = 0, stride 1 */
        for (int iy = 0; iy < s->h; iy++) {
            float *dst = dxp + (size_t)iy * s->w + p0;
            __m512 v = assign ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(store, dst);
            /* output rows whose window [oy*sh - pt, + kh) holds iy, in order */
            const int top = iy + s->pt - s->kh + 1;
            int oy = top <= 0 ? 0 : (top + s->sh - 1) / s->sh;
            for (; oy < s->oh && oy * s->sh - s->pt <= iy; oy++) {
                const float *grow = g + (size_t)oy * s->ow;
                for (int kx = s->kw - 1; kx >= 0; kx--)
                    v = _mm512_add_ps(v, row_cells(grow, s->sw > 1 ? 0 : 1, first - kx, idx[kx],
                                                   in[kx], lo[kx], hi[kx]));
            }
            _mm512_mask_storeu_ps(dst, store, v);
        }
    }
}

int pool_simd_avgpool_backward(const pool_shape_t *s, const float *dy, float *dx, int assign)
{
    if (s->kw > POOL_SIMD_KMAX || (size_t)s->oh * s->ow > POOL_SIMD_PLANE ||
        !simd_available())
        return 0;
    float g[POOL_SIMD_PLANE];
    const size_t planes = (size_t)s->n * s->c, isz = (size_t)s->h * s->w,
                 osz = (size_t)s->oh * s->ow;
    for (size_t pl = 0; pl < planes; pl++) {
        avg_scaled_grad(s, dy + pl * osz, g);
        avgpool_bwd_plane(s, g, dx + pl * isz, assign);
    }
    return 1;
}

#else

int pool_simd_maxpool_forward(const pool_shape_t *s, const float *x, float *y, int32_t *argmax)
{
    (void)s, (void)x, (void)y, (void)argmax;
    return 0;
}

int pool_simd_avgpool_forward(const pool_shape_t *s, const float *x, float *y)
{
    (void)s, (void)x, (void)y;
    return 0;
}

int pool_simd_avgpool_backward(const pool_shape_t *s, const float *dy, float *dx, int assign)
{
    (void)s, (void)dy, (void)dx, (void)assign;
    return 0;
}

#endif
