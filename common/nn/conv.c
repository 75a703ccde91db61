/*
 * conv.c - 2-D convolution forward and backward by im2col + cblas_sgemm (layers.h).
 *
 * Per image, the input patch matrix col[K = c*kh*kw, P = oh*ow] turns the
 * convolution into y[oc,P] = W[oc,K] col[K,P]. Backward: dW += dy col^T and
 * dcol = W^T dy, scattered back (col2im) into dx. A 1x1 convolution with
 * stride 1 and no padding uses the input itself as col. On a CPU that runs
 * nn/gemm.h's kernel the forward and the input gradient go to
 * nn/conv_packed.c (several images per packed GEMM) outside the band of
 * shapes conv_packed.h may leave to OpenBLAS (none today); the choice
 * depends on the shape and the CPU, not on the batch.
 */
#include <cblas.h>
#include <string.h>

#include "nn/conv_packed.h"
#include "nn/gemm.h"
#include "nn/layers.h"
#include "sc.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CONV_STRIDE2_SIMD 1

/* Lanes 0 .. n-1 of 16. */
static inline __mmask16 conv_lanes(int n)
{
    return n <= 0 ? 0 : n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
}

/* dst[i] = src[2 i] for i < n: two loads and a permutation per 16 outputs;
 * nothing past src[2 n - 2] is read (masked loads). */
__attribute__((target("avx512f"))) static void copy_stride2(float *dst, const float *src, int n)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v0 = _mm512_loadu_ps(src + 2 * i);
        const __m512 v1 = _mm512_maskz_loadu_ps(0x7FFF, src + 2 * i + 16);
        _mm512_storeu_ps(dst + i, _mm512_permutex2var_ps(v0, even, v1));
    }
    if (i < n) {
        const int used = 2 * (n - i) - 1; /* src[2 i] .. src[2 n - 2] */
        const __m512 v0 = _mm512_maskz_loadu_ps(conv_lanes(used), src + 2 * i);
        const __m512 v1 = _mm512_maskz_loadu_ps(conv_lanes(used - 16), src + 2 * i + 16);
        _mm512_mask_storeu_ps(dst + i, conv_lanes(n - i), _mm512_permutex2var_ps(v0, even, v1));
    }
}

/* dst[2 i] += src[i] for i < n, the odd elements untouched: each element gets
 * the one addition the scalar loop gives it. */
__attribute__((target("avx512f"))) static void add_stride2(float *dst, const float *src, int n)
{
    const __m512i lo = _mm512_setr_epi32(0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0);
    const __m512i hi = _mm512_setr_epi32(8, 0, 9, 0, 10, 0, 11, 0, 12, 0, 13, 0, 14, 0, 15, 0);
    for (int i = 0; i < n; i += 16) {
        const int r = n - i < 16 ? n - i : 16;
        const __m512 v = _mm512_maskz_loadu_ps(conv_lanes(r), src + i);
        /* even lanes 2k of the two output vectors for the k < r present */
        const __mmask16 m0 = (__mmask16)(0x5555 & conv_lanes(2 * r - 1));
        const __mmask16 m1 = (__mmask16)(0x5555 & conv_lanes(2 * r - 17));
        float *d = dst + 2 * i;
        const __m512 d0 = _mm512_maskz_loadu_ps(m0, d), d1 = _mm512_maskz_loadu_ps(m1, d + 16);
        _mm512_mask_storeu_ps(d, m0, _mm512_add_ps(d0, _mm512_permutexvar_ps(lo, v)));
        _mm512_mask_storeu_ps(d + 16, m1, _mm512_add_ps(d1, _mm512_permutexvar_ps(hi, v)));
    }
}
#else
#define CONV_STRIDE2_SIMD 0
#endif

int conv2d_shape_init(conv2d_shape_t *s)
{
    int hp = s->h + s->pt + s->pb, wp = s->w + s->pl + s->pr;
    if (s->kh < 1 || s->kw < 1 || s->sh < 1 || s->sw < 1 || hp < s->kh || wp < s->kw)
        return SC_ERR_SHAPE;
    s->oh = (hp - s->kh) / s->sh + 1;
    s->ow = (wp - s->kw) / s->sw + 1;
    return 0;
}

static int conv2d_is_pointwise(const conv2d_shape_t *s)
{
    return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->pt == 0 && s->pb == 0 &&
           s->pl == 0 && s->pr == 0;
}

size_t conv2d_workspace(const conv2d_shape_t *s)
{
    const size_t col = conv2d_is_pointwise(s) ? 0 : (size_t)s->c * s->kh * s->kw * s->oh * s->ow;
    size_t ws = col;
    if ((conv_packed_wanted(s, 0) || conv_packed_wanted(s, 1)) && conv_packed_workspace(s) > ws)
        ws = conv_packed_workspace(s);
    return ws;
}

void pad_same(int in, int k, int stride, int *before, int *after)
{
    int out = (in + stride - 1) / stride;
    int total = (out - 1) * stride + k - in;
    if (total < 0)
        total = 0;
    *before = total / 2;
    *after = total - *before;
}

/* Output columns ox whose input column ox*sw + ix0 lies inside [0, w): [*lo, *hi). */
static void valid_columns(int ow, int sw, int ix0, int w, int *lo, int *hi)
{
    int a = ix0 >= 0 ? 0 : (-ix0 + sw - 1) / sw;
    int b = w - 1 - ix0 < 0 ? 0 : (w - 1 - ix0) / sw + 1;
    *lo = a < ow ? a : ow;
    *hi = b < ow ? b : ow;
    if (*hi < *lo)
        *hi = *lo;
}

/* col[(ci*kh+ki)*kw+kj][oy*ow+ox] = x[ci][oy*sh-pt+ki][ox*sw-pl+kj], 0 outside.
 * The in-image column range is computed once per kernel column, so the inner
 * loops are plain copies (vectorized for stride 1). */
void conv2d_im2col(const conv2d_shape_t *s, const float *x, float *col)
{
    conv2d_im2col_range(s, x, 0, s->oh * s->ow, col, (size_t)s->oh * s->ow);
}

void conv2d_im2col_range(const conv2d_shape_t *s, const float *x, int p0, int p1, float *col,
                         size_t ldcol)
{
    const int ow = s->ow;
    const int simd2 = CONV_STRIDE2_SIMD && nn_gemm_avx512();
    if (p1 <= p0)
        return;
    const int oy0 = p0 / ow, oy1 = (p1 - 1) / ow;
    for (int ci = 0; ci < s->c; ci++) {
        const float *plane = x + (size_t)ci * s->h * s->w;
        for (int ki = 0; ki < s->kh; ki++) {
            for (int kj = 0; kj < s->kw; kj++) {
                float *row = col + ((size_t)(ci * s->kh + ki) * s->kw + kj) * ldcol;
                const int ix0 = kj - s->pl;
                int lo, hi;
                valid_columns(ow, s->sw, ix0, s->w, &lo, &hi);
                for (int oy = oy0; oy <= oy1; oy++) {
                    /* output columns [a, b) of this row lie in the range */
                    const int a = oy == oy0 ? p0 - oy * ow : 0;
                    const int b = oy == oy1 ? p1 - oy * ow : ow;
                    const int iy = oy * s->sh - s->pt + ki;
                    float *dst = row + (oy * ow + a - p0); /* dst[ox - a] is column ox */
                    if (iy < 0 || iy >= s->h) {
                        memset(dst, 0, sizeof(float) * (size_t)(b - a));
                        continue;
                    }
                    const int l = lo > a ? (lo < b ? lo : b) : a;
                    const int h = hi < b ? (hi > l ? hi : l) : b;
                    const float *src = plane + (size_t)iy * s->w + ix0;
                    for (int ox = a; ox < l; ox++)
                        dst[ox - a] = 0.0f;
                    if (s->sw == 1) {
                        memcpy(dst + (l - a), src + l, sizeof(float) * (size_t)(h - l));
                    } else if (s->sw == 2 && simd2 && h > l) {
                        copy_stride2(dst + (l - a), src + 2 * l, h - l);
                    } else {
                        for (int ox = l; ox < h; ox++)
                            dst[ox - a] = src[ox * s->sw];
                    }
                    for (int ox = h; ox < b; ox++)
                        dst[ox - a] = 0.0f;
                }
            }
        }
    }
}

/* dx[ci][iy][ix] += col[...] for the channels [ci0, ci1), col holding their
 * rows only: the adjoint of im2col, same order of additions. assign: dx holds
 * no earlier contribution; each channel plane is zeroed right before its
 * sums, while it is in cache, instead of the whole gradient in a pass of its
 * own (the same additions onto the same zeros). Each tap adds one row of
 * the output grid onto the in-image part of an input row: for stride 1 a
 * contiguous vector add (the taps in the same order, so the same bits). */
void conv2d_col2im_channels(const conv2d_shape_t *s, const float *col, float *dx, int assign,
                            int ci0, int ci1)
{
    const int oh = s->oh, ow = s->ow, P = oh * ow;
    const int simd2 = CONV_STRIDE2_SIMD && nn_gemm_avx512();
    for (int ci = ci0; ci < ci1; ci++) {
        float *plane = dx + (size_t)ci * s->h * s->w;
        if (assign)
            memset(plane, 0, sizeof(float) * (size_t)s->h * s->w);
        for (int ki = 0; ki < s->kh; ki++) {
            /* the output rows whose input row oy*sh - pt + ki is inside the image */
            int oy_lo, oy_hi;
            valid_columns(oh, s->sh, ki - s->pt, s->h, &oy_lo, &oy_hi);
            for (int kj = 0; kj < s->kw; kj++) {
                const float *row = col + ((size_t)((ci - ci0) * s->kh + ki) * s->kw + kj) * P;
                const int ix0 = kj - s->pl;
                int lo, hi;
                valid_columns(ow, s->sw, ix0, s->w, &lo, &hi);
                for (int oy = oy_lo; oy < oy_hi; oy++) {
                    const int iy = oy * s->sh - s->pt + ki;
                    float *restrict dst = plane + (size_t)iy * s->w + ix0;
                    const float *restrict src = row + oy * ow;
                    if (s->sw == 1) {
#pragma GCC ivdep
                        for (int ox = lo; ox < hi; ox++)
                            dst[ox] += src[ox];
                    } else if (s->sw == 2 && simd2 && hi > lo) {
                        add_stride2(dst + 2 * lo, src + lo, hi - lo);
                    } else {
                        for (int ox = lo; ox < hi; ox++)
                            dst[ox * s->sw] += src[ox];
                    }
                }
            }
        }
    }
}

void conv2d_col2im_add(const conv2d_shape_t *s, const float *col, float *dx, int assign)
{
    conv2d_col2im_channels(s, col, dx, assign, 0, s->c);
}

/* y = W col + b per image; relu: max(y, 0) in the same pass over the GEMM
 * output of each image, while it is still in cache. */
void conv2d_forward_blas(const conv2d_shape_t *s, const float *x, const float *W, const float *b,
                         int relu, float *y, float *col)
{
    const int K = s->c * s->kh * s->kw, P = s->oh * s->ow;
    const size_t in_size = (size_t)s->c * s->h * s->w, out_size = (size_t)s->oc * P;
    const int pointwise = conv2d_is_pointwise(s);
    for (int i = 0; i < s->n; i++) {
        const float *xi = x + i * in_size;
        float *yi = y + i * out_size;
        const float *B = xi;
        if (!pointwise) {
            conv2d_im2col(s, xi, col);
            B = col;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->oc, P, K, 1.0f, W, K, B, P,
                    0.0f, yi, P);
        if (b && relu) {
            for (int o = 0; o < s->oc; o++) {
                float bo = b[o], *yo = yi + (size_t)o * P;
                for (int p = 0; p < P; p++) {
                    float v = yo[p] + bo;
                    yo[p] = v > 0.0f ? v : 0.0f;
                }
            }
        } else if (b) {
            for (int o = 0; o < s->oc; o++) {
                float bo = b[o], *yo = yi + (size_t)o * P;
                for (int p = 0; p < P; p++)
                    yo[p] += bo;
            }
        } else if (relu) {
            for (size_t k = 0; k < out_size; k++)
                yi[k] = yi[k] > 0.0f ? yi[k] : 0.0f;
        }
    }
}

void conv2d_forward_fused(const conv2d_shape_t *s, const float *x, const float *W,
                          const float *b, int relu, float *y, float *col)
{
    if (conv_packed_wanted(s, 0))
        conv_packed_forward(s, x, W, b, relu, y, col);
    else
        conv2d_forward_blas(s, x, W, b, relu, y, col);
}

void conv2d_forward(const conv2d_shape_t *s, const float *x, const float *W, const float *b,
                    float *y, float *col)
{
    conv2d_forward_fused(s, x, W, b, 0, y, col);
}

/* The input gradient of one image: dxi (+)= W^T dyi, through col2im unless
 * pointwise. assign: dxi holds no earlier contribution (beta = 0 for the
 * pointwise GEMM, zeroed planes for col2im: the same sums as adding onto a
 * zeroed buffer). */
static void conv2d_backward_image(const conv2d_shape_t *s, const float *W, const float *dyi,
                                  float *dxi, int assign, float *col)
{
    const int K = s->c * s->kh * s->kw, P = s->oh * s->ow;
    if (conv2d_is_pointwise(s)) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, s->oc, 1.0f, W, K, dyi, P,
                    assign ? 0.0f : 1.0f, dxi, P);
    } else {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, P, s->oc, 1.0f, W, K, dyi, P,
                    0.0f, col, P);
        conv2d_col2im_add(s, col, dxi, assign);
    }
}

void conv2d_backward_data_blas(const conv2d_shape_t *s, const float *W, const float *dy,
                               float *dx, int assign, float *col)
{
    const size_t in_size = (size_t)s->c * s->h * s->w, out_size = (size_t)s->oc * s->oh * s->ow;
    for (int i = 0; i < s->n; i++)
        conv2d_backward_image(s, W, dy + i * out_size, dx + i * in_size, assign, col);
}

void conv2d_backward_data_wt(const conv2d_shape_t *s, const float *W, const float *packed_wt,
                             const float *dy, float *dx, int assign, float *col)
{
    if (conv_packed_wanted(s, 1))
        conv_packed_backward_data(s, W, packed_wt, dy, dx, assign, col);
    else
        conv2d_backward_data_blas(s, W, dy, dx, assign, col);
}

void conv2d_backward_data(const conv2d_shape_t *s, const float *W, const float *dy, float *dx,
                          int assign, float *col)
{
    conv2d_backward_data_wt(s, W, NULL, dy, dx, assign, col);
}

void conv2d_backward(const conv2d_shape_t *s, const float *x, const float *W, const float *dy,
                     float *dx, float *dW, float *db, float *col)
{
    const int K = s->c * s->kh * s->kw, P = s->oh * s->ow;
    const size_t in_size = (size_t)s->c * s->h * s->w, out_size = (size_t)s->oc * P;
    const int pointwise = conv2d_is_pointwise(s);
    for (int i = 0; i < s->n; i++) {
        const float *xi = x + i * in_size;
        const float *dyi = dy + i * out_size;
        if (db) {
            for (int o = 0; o < s->oc; o++) {
                const float *d = dyi + (size_t)o * P;
                double acc = 0.0;
                for (int p = 0; p < P; p++)
                    acc += d[p];
                db[o] += (float)acc;
            }
        }
        if (dW) {
            const float *B = xi;
            if (!pointwise) {
                conv2d_im2col(s, xi, col);
                B = col;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->oc, K, P, 1.0f, dyi, P, B, P,
                        1.0f, dW, K);
        }
    }
    if (dx) /* the input gradient after the parameters', on the same path as backward_data */
        conv2d_backward_data(s, W, dy, dx, 0, col);
}
