/*
 * nn/vmath.h - elementwise exponential, logistic and normal-distribution
 * functions that the compiler vectorizes.
 *
 * Owned by common/nn. glibc's expf is a call per element, so loops over
 * activations (sigmoid gates, SiLU) run one element at a time. nn_expf is
 * straight-line float arithmetic (range reduction by ln 2 in two parts and a
 * degree-6 polynomial, Cephes's coefficients), so a loop of it becomes vector
 * code, and the scalar and vector forms give the same bits (ISO C mode never
 * contracts a multiply and an add; the fused ones below are explicit). Accuracy:
 * within 2 ulp of exp on [-87.3, 88.3]; arguments
 * outside are clamped to that range (exp(-87.3) = 1.2e-38, the smallest normal
 * magnitude; exp(88.3) = 2.2e38). NaN stays NaN.
 *
 * The polynomials use fused multiply-adds where the build targets a CPU that has
 * them (__FMA__, e.g. -march=native): fmaf then compiles to one instruction in
 * scalar and vector code alike, so both give the same bits, and a loop of GELU
 * (forward or derivative) runs about 1.8x faster than with a multiply and an add
 * per step. Elsewhere NN_FMAF is the multiply and the add (the same accuracy).
 */
#ifndef SALCHECK_NN_VMATH_H
#define SALCHECK_NN_VMATH_H

#include <stdint.h>
#include <string.h>

#ifdef __FMA__
#include <math.h>
#define NN_FMAF(a, b, c) fmaf(a, b, c)
#else
#define NN_FMAF(a, b, c) ((a) * (b) + (c))
#endif

/* On the loops of the transcendental activations (GELU, SiLU, sigmoid) and of layer
 * normalization (double sums over 8 lanes): 512-bit vectors where gcc builds for AVX-512
 * (it prefers 256-bit ones on Intel CPUs otherwise); in cache the activations run 1.4-1.8x
 * faster. The same bits: every element gets the same operations in the same order. */
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#define NN_WIDE_VECTORS __attribute__((target("prefer-vector-width=512")))
#else
#define NN_WIDE_VECTORS
#endif

static inline float nn_expf(float x)
{
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.3f ? 88.3f : x;
    /* n = round(x / ln 2) by the 1.5 * 2^23 trick (|x / ln 2| < 2^22). */
    const float fn = NN_FMAF(x, 1.44269504088896341f, 12582912.0f) - 12582912.0f;
    const float r = NN_FMAF(fn, 2.12194440e-4f, NN_FMAF(fn, -0.693359375f, x));
    float p = 1.9875691500e-4f;
    p = NN_FMAF(p, r, 1.3981999507e-3f);
    p = NN_FMAF(p, r, 8.3334519073e-3f);
    p = NN_FMAF(p, r, 4.1665795894e-2f);
    p = NN_FMAF(p, r, 1.6666665459e-1f);
    p = NN_FMAF(p, r, 5.0000001201e-1f);
    p = NN_FMAF(p * r, r, r) + 1.0f;
    const int32_t bits = ((int32_t)fn + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* 1 / (1 + exp(-x)) without overflow: exp of -|x| only. */
static inline float nn_sigmoidf(float x)
{
    const float e = nn_expf(x < 0.0f ? x : -x);
    const float r = 1.0f / (1.0f + e);
    return x >= 0.0f ? r : e * r;
}

/* Phi(x) = (1 + erf(x / sqrt 2)) / 2, the standard normal's distribution function, given
 * e = exp(-x^2 / 2) (nn_expf(-0.5f * x * x), which the density shares: nn_gelu_gradf), from
 * erfc(z) = t R(t) exp(-z^2), t = 1 / (1 + z/2), z = |x| / sqrt 2: R(t) = erfcx(z) / t is
 * smooth on the t of every z the float exponential resolves (|x| <= 13.2: t >= 0.176), where a
 * degree-9 polynomial fits it within 2e-8 relative (weighted least squares on Chebyshev nodes of
 * [0.17, 1], reweighted towards the largest error); in float arithmetic within 1.7e-7. The lower
 * tail is computed directly, so it keeps its relative accuracy: Phi within 1e-6 relative of the
 * float64 value for |x| <= 4 (tests/unit/test_ops.c; the rounding of x^2 / 2 in the exponent
 * dominates beyond). */
static inline float nn_phif_e(float x, float e)
{
    const float z = (x < 0.0f ? -x : x) * 0.70710678118654752f;
    const float t = 1.0f / (1.0f + 0.5f * z);
    float r = 1.300878264e-02f;
    r = NN_FMAF(r, t, -1.271140724e-01f);
    r = NN_FMAF(r, t, 4.377952814e-01f);
    r = NN_FMAF(r, t, -6.815295219e-01f);
    r = NN_FMAF(r, t, 4.305434525e-01f);
    r = NN_FMAF(r, t, -1.031092405e-01f);
    r = NN_FMAF(r, t, 2.271266133e-01f);
    r = NN_FMAF(r, t, 2.383224070e-01f);
    r = NN_FMAF(r, t, 2.828935683e-01f);
    r = NN_FMAF(r, t, 2.820627391e-01f);
    const float half_erfc = 0.5f * t * r * e;
    return x < 0.0f ? half_erfc : 1.0f - half_erfc;
}

/* exp(-x^2 / 2), the kernel that Phi and phi share. */
static inline float nn_gauss_kernelf(float x)
{
    return nn_expf(-0.5f * (x * x));
}

static inline float nn_phif(float x)
{
    return nn_phif_e(x, nn_gauss_kernelf(x));
}

/* phi(x) = exp(-x^2 / 2) / sqrt(2 pi), the standard normal's density. */
static inline float nn_normal_pdff(float x)
{
    return 0.39894228040143268f * nn_gauss_kernelf(x);
}

/* d/dx of x Phi(x) = Phi(x) + x phi(x), with one exponential for both. */
static inline float nn_gelu_gradf(float x)
{
    const float e = nn_gauss_kernelf(x);
    return nn_phif_e(x, e) + x * (0.39894228040143268f * e);
}


#if defined(__AVX512F__) && defined(__GNUC__)
#include <immintrin.h>
/* The same functions on 16 lanes with AVX-512 intrinsics, each lane the bits of the
 * scalar function above: the same operations in the same order, the scaling by 2^n in
 * nn_expf as one vscalefps (exact, like the multiplication by the power of two it
 * replaces, whose exponent the clamping keeps in the normal range), and Phi's
 * polynomial with its coefficients halved (every step of the scheme exactly half of the
 * scalar one's, so t times it is 0.5 t r). gcc's vectorization of the scalar loops
 * reloads each constant in every iteration and spends four instructions on the scaling:
 * the GELU's and SiLU's loops run about 1.5x faster on these (bench/README.md). */
#define NN_HAVE_V16 1

static inline __m512 nn_expf16(__m512 x)
{
    x = _mm512_max_ps(_mm512_set1_ps(-87.3f), x); /* NaN stays NaN, as above */
    x = _mm512_min_ps(_mm512_set1_ps(88.3f), x);
    const __m512 shifter = _mm512_set1_ps(12582912.0f);
    const __m512 fn =
        _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), shifter), shifter);
    const __m512 r = _mm512_fmadd_ps(fn, _mm512_set1_ps(2.12194440e-4f),
                                     _mm512_fmadd_ps(fn, _mm512_set1_ps(-0.693359375f), x));
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, fn);
}

static inline __m512 nn_sigmoidf16(__m512 x)
{
    /* min(x, -x) is the scalar form's "x < 0 ? x : -x", signed zeros included (minps
     * returns its second operand for equal ones) */
    const __m512 neg = _mm512_castsi512_ps(
        _mm512_xor_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u)));
    const __m512 e = nn_expf16(_mm512_min_ps(x, neg));
    const __m512 r = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    const __mmask16 ge = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
    return _mm512_mask_mul_ps(r, _mm512_knot(ge), e, r);
}

static inline __m512 nn_gauss_kernelf16(__m512 x)
{
    return nn_expf16(_mm512_mul_ps(_mm512_set1_ps(-0.5f), _mm512_mul_ps(x, x)));
}

static inline __m512 nn_phif_e16(__m512 x, __m512 e)
{
    const __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752f));
    const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f),
                                   _mm512_fmadd_ps(z, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f)));
    __m512 r = _mm512_set1_ps(0.5f * 1.300878264e-02f);
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(0.5f * -1.271140724e-01f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(0.5f * 4.377952814e-01f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(0.5f * -6.815295219e-01f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(0.5f * 4.305434525e-01f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(0.5f * -1.031092405e-01f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(0.5f * 2.271266133e-01f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(0.5f * 2.383224070e-01f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(0.5f * 2.828935683e-01f));
    r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(0.5f * 2.820627391e-01f));
    const __m512 half_erfc = _mm512_mul_ps(_mm512_mul_ps(t, r), e);
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(1.0f), half_erfc), half_erfc);
}

static inline __m512 nn_phif16(__m512 x)
{
    return nn_phif_e16(x, nn_gauss_kernelf16(x));
}

static inline __m512 nn_gelu_gradf16(__m512 x)
{
    const __m512 e = nn_gauss_kernelf16(x);
    return _mm512_add_ps(nn_phif_e16(x, e),
                         _mm512_mul_ps(x, _mm512_mul_ps(_mm512_set1_ps(0.39894228040143268f), e)));
}
#endif

#endif
