/*
 * test_gemm.c - the packed GEMM of the convolutions (nn/gemm.h) against a
 * double-precision product, on the edge shapes of its tiling (rows not a
 * multiple of the 8-row tile, column tails of every length, depths across a
 * KC block, transposed packing, accumulation, bias and ReLU epilogues, no
 * write outside C), and conv2d_forward_fused / conv2d_backward against a
 * direct double-precision convolution (the contract any GEMM behind them keeps).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/gemm.h"
#include "nn/layers.h"
#include "rng.h"
#include "sc.h"
#include "testhelp.h"

static void fill_uniform(float *x, size_t count, uint32_t stream)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(5, "gemm test"), stream, 0, 0);
    for (size_t i = 0; i < count; i++)
        x[i] = (float)(2.0 * rng_stream_uniform(&rs) - 1.0);
}

#define SENTINEL 1234.5f

/* One (m, n, k) case: every element within float rounding of the double
 * product (relative to sum |a||b|), and the padding columns of C untouched. */
static int check_case(int m, int n, int k, int trans, int accumulate, int with_bias, int relu)
{
    const int lda = trans ? m + 3 : k + 2, ldb = n + 5, ldc = n + 4;
    const size_t a_count = trans ? (size_t)k * lda : (size_t)m * lda;
    float *a = malloc(sizeof(float) * a_count);
    float *b = malloc(sizeof(float) * (size_t)k * ldb);
    float *c = malloc(sizeof(float) * (size_t)m * ldc);
    float *c0 = malloc(sizeof(float) * (size_t)m * ldc);
    float *bias = malloc(sizeof(float) * (size_t)m);
    float *packed = malloc(sizeof(float) * nn_gemm_packed_floats(m, k));
    float *bpack = malloc(sizeof(float) * nn_gemm_bpack_floats());
    fill_uniform(a, a_count, 1);
    fill_uniform(b, (size_t)k * ldb, 2);
    fill_uniform(bias, (size_t)m, 3);
    fill_uniform(c0, (size_t)m * ldc, 4);
    for (int i = 0; i < m; i++)
        for (int j = n; j < ldc; j++)
            c0[(size_t)i * ldc + j] = SENTINEL;
    memcpy(c, c0, sizeof(float) * (size_t)m * ldc);
    nn_gemm_pack_a(m, k, a, lda, trans, packed);
    nn_gemm_packed(m, n, k, packed, b, ldb, c, ldc, accumulate, with_bias ? bias : NULL, relu,
                   bpack);
    int bad = 0;
    for (int i = 0; i < m && !bad; i++) {
        for (int j = 0; j < ldc; j++) {
            const float got = c[(size_t)i * ldc + j];
            if (j >= n) {
                if (got != SENTINEL) {
                    TH_CHECK(0, "m=%d n=%d k=%d: C[%d][%d] written outside n", m, n, k, i, j);
                    bad = 1;
                    break;
                }
                continue;
            }
            double ref = accumulate ? c0[(size_t)i * ldc + j] : 0.0, mag = fabs(ref);
            for (int p = 0; p < k; p++) {
                double av = trans ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                ref += av * b[(size_t)p * ldb + j];
                mag += fabs(av * b[(size_t)p * ldb + j]);
            }
            if (with_bias) {
                ref += bias[i];
                mag += fabs(bias[i]);
            }
            if (relu && ref < 0.0)
                ref = 0.0;
            if (fabs(got - ref) > 2e-6 * mag + 1e-30) {
                TH_CHECK(0, "m=%d n=%d k=%d trans=%d acc=%d bias=%d relu=%d: C[%d][%d] = %.9g, "
                         "expected %.9g", m, n, k, trans, accumulate, with_bias, relu, i, j,
                         got, ref);
                bad = 1;
                break;
            }
        }
    }
    free(a);
    free(b);
    free(c);
    free(c0);
    free(bias);
    free(packed);
    free(bpack);
    return bad;
}

static void test_gemm_edges(void)
{
    if (!nn_gemm_available())
        TH_SKIP("this CPU has no AVX-512: the convolutions use cblas_sgemm");
    static const int ms[] = {8, 13, 136}, ns[] = {1, 15, 16, 17, 31, 32, 33, 70, 530};
    static const int ks[] = {1, 9, 256, 300};
    int cases = 0;
    for (size_t im = 0; im < sizeof ms / sizeof *ms; im++)
        for (size_t in = 0; in < sizeof ns / sizeof *ns; in++)
            for (size_t ik = 0; ik < sizeof ks / sizeof *ks; ik++) {
                const int variant = cases++ % 4;
                check_case(ms[im], ns[in], ks[ik], variant & 1, variant >> 1, variant == 1,
                           variant == 2);
            }
    /* every epilogue combination on a shape crossing every block boundary */
    for (int v = 0; v < 8; v++)
        check_case(140, 45, 520, v & 1, (v >> 1) & 1, (v >> 2) & 1, v == 5 || v == 6);
    check_case(24, 40, 30, 0, 0, 1, 1);
}

/* y[n][o][oy][ox] by the definition of a cross-correlation, in double. */
static double conv_ref(const conv2d_shape_t *s, const float *x, const float *W, int n, int o,
                       int oy, int ox)
{
    double acc = 0.0;
    for (int ci = 0; ci < s->c; ci++)
        for (int ki = 0; ki < s->kh; ki++)
            for (int kj = 0; kj < s->kw; kj++) {
                int iy = oy * s->sh - s->pt + ki, ix = ox * s->sw - s->pl + kj;
                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                    continue;
                acc += (double)W[((o * s->c + ci) * s->kh + ki) * s->kw + kj] *
                       x[(((size_t)n * s->c + ci) * s->h + iy) * s->w + ix];
            }
    return acc;
}

static void check_conv(conv2d_shape_t s)
{
    conv2d_shape_init(&s);
    const size_t in = (size_t)s.n * s.c * s.h * s.w, out = (size_t)s.n * s.oc * s.oh * s.ow;
    const size_t wcount = (size_t)s.oc * s.c * s.kh * s.kw;
    float *x = malloc(sizeof(float) * in), *W = malloc(sizeof(float) * wcount);
    float *b = malloc(sizeof(float) * s.oc), *y = malloc(sizeof(float) * out);
    float *dy = malloc(sizeof(float) * out), *dx = malloc(sizeof(float) * in);
    float *col = malloc(sizeof(float) * (conv2d_workspace(&s) + 1));
    fill_uniform(x, in, 10);
    fill_uniform(W, wcount, 11);
    fill_uniform(b, (size_t)s.oc, 12);
    fill_uniform(dy, out, 13);
    conv2d_forward_fused(&s, x, W, b, 1, y, col);
    double worst = 0.0;
    for (int n = 0; n < s.n; n++)
        for (int o = 0; o < s.oc; o++)
            for (int oy = 0; oy < s.oh; oy++)
                for (int ox = 0; ox < s.ow; ox++) {
                    double ref = conv_ref(&s, x, W, n, o, oy, ox) + b[o];
                    ref = ref > 0.0 ? ref : 0.0;
                    double d = fabs(y[(((size_t)n * s.oc + o) * s.oh + oy) * s.ow + ox] - ref);
                    worst = d > worst ? d : worst;
                }
    TH_CHECK(worst < 1e-4, "conv %dx%d s%d c%d->%d: forward off by %g", s.kh, s.kw, s.sh, s.c,
             s.oc, worst);
    /* dx = adjoint of the convolution: <dy, conv(x')> = <dx, x'> for the unit
     * vectors x' is the definition; check it element by element in double */
    for (size_t i = 0; i < in; i++)
        dx[i] = 0.5f; /* conv2d_backward accumulates into dx */
    conv2d_backward(&s, x, W, dy, dx, NULL, NULL, col);
    worst = 0.0;
    for (int n = 0; n < s.n; n++)
        for (int ci = 0; ci < s.c; ci++)
            for (int iy = 0; iy < s.h; iy++)
                for (int ix = 0; ix < s.w; ix++) {
                    double ref = 0.5;
                    for (int o = 0; o < s.oc; o++)
                        for (int ki = 0; ki < s.kh; ki++)
                            for (int kj = 0; kj < s.kw; kj++) {
                                int ty = iy + s.pt - ki, tx = ix + s.pl - kj;
                                if (ty < 0 || tx < 0 || ty % s.sh || tx % s.sw)
                                    continue;
                                int oy = ty / s.sh, ox = tx / s.sw;
                                if (oy >= s.oh || ox >= s.ow)
                                    continue;
                                ref += (double)W[((o * s.c + ci) * s.kh + ki) * s.kw + kj] *
                                       dy[(((size_t)n * s.oc + o) * s.oh + oy) * s.ow + ox];
                            }
                    double d = fabs(dx[(((size_t)n * s.c + ci) * s.h + iy) * s.w + ix] - ref);
                    worst = d > worst ? d : worst;
                }
    TH_CHECK(worst < 1e-4, "conv %dx%d s%d c%d->%d: input gradient off by %g", s.kh, s.kw, s.sh,
             s.c, s.oc, worst);
    free(x);
    free(W);
    free(b);
    free(y);
    free(dy);
    free(dx);
    free(col);
}

static void test_conv_against_definition(void)
{
    /* 3x3 padded, 5x5 stride 2 with uneven padding, pointwise (input used as col),
     * a GEMM of fewer rows than the tile (cblas), a K past one KC block */
    check_conv((conv2d_shape_t){.n = 2, .c = 5, .h = 9, .w = 7, .oc = 12, .kh = 3, .kw = 3,
                                .sh = 1, .sw = 1, .pt = 1, .pb = 1, .pl = 1, .pr = 1});
    check_conv((conv2d_shape_t){.n = 2, .c = 3, .h = 11, .w = 10, .oc = 16, .kh = 5, .kw = 5,
                                .sh = 2, .sw = 2, .pt = 2, .pb = 1, .pl = 1, .pr = 2});
    check_conv((conv2d_shape_t){.n = 3, .c = 20, .h = 6, .w = 7, .oc = 9, .kh = 1, .kw = 1,
                                .sh = 1, .sw = 1});
    check_conv((conv2d_shape_t){.n = 1, .c = 6, .h = 5, .w = 5, .oc = 4, .kh = 3, .kw = 3,
                                .sh = 1, .sw = 1, .pt = 1, .pb = 1, .pl = 1, .pr = 1});
    check_conv((conv2d_shape_t){.n = 2, .c = 40, .h = 5, .w = 6, .oc = 24, .kh = 3, .kw = 3,
                                .sh = 1, .sw = 1, .pt = 1, .pb = 1, .pl = 1, .pr = 1});
}

/* An image's output does not depend on its position in the batch (the
 * property behind bit-identical maps at any rank count). */
static void test_conv_batch_independent(void)
{
    conv2d_shape_t s = {.n = 3, .c = 16, .h = 9, .w = 9, .oc = 24, .kh = 3, .kw = 3, .sh = 1,
                        .sw = 1, .pt = 1, .pb = 1, .pl = 1, .pr = 1};
    conv2d_shape_init(&s);
    const size_t img = (size_t)s.c * s.h * s.w, oimg = (size_t)s.oc * s.oh * s.ow;
    const size_t wcount = (size_t)s.oc * s.c * 9;
    float *x = malloc(sizeof(float) * 3 * img), *W = malloc(sizeof(float) * wcount);
    float *y = malloc(sizeof(float) * 3 * oimg), *col = malloc(sizeof(float) * conv2d_workspace(&s));
    fill_uniform(x, img, 20);
    memcpy(x + img, x, sizeof(float) * img);
    fill_uniform(x + 2 * img, img, 21);
    fill_uniform(W, wcount, 22);
    conv2d_forward(&s, x, W, NULL, y, col);
    TH_CHECK(memcmp(y, y + oimg, sizeof(float) * oimg) == 0,
             "the same image gives different outputs at batch positions 0 and 1");
    free(x);
    free(W);
    free(y);
    free(col);
}

int main(void)
{
    TH_RUN(test_gemm_edges);
    TH_RUN(test_conv_against_definition);
    TH_RUN(test_conv_batch_independent);
    return th_report();
}
