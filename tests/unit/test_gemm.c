/*
 * test_gemm.c - the packed GEMM of the convolutions (nn/gemm.h) against a
 * double-precision product, on the edge shapes of its tiling (rows not a
 * multiple of the 8-row tile, column tails of every length, depths across a
 * KC block, transposed packing, accumulation, bias and ReLU epilogues, no
 * write outside C), the segmented product (the images of a batch side by
 * side: against a naive loop, bit for bit against each segment alone, gaps
 * untouched), and conv2d_forward_fused / conv2d_backward against a direct
 * double-precision convolution (the contract any GEMM behind them keeps), on
 * both paths (nn/conv_packed.h; the 7 x 7, 5 x 6 and 9 x 9 stride-2 shapes
 * with 24-300 channels run the input gradient in slices of 8 channels), the
 * forward's patch matrices built a slice of columns at a time (any width the
 * same bits), and an image's output bit-identical in a batch of 1 and of 5. The cache of
 * packed W^T (nn/wpack.h): gradients of a model whose parameters changed
 * (all at once, node by node as a cascade state switches, BN only, raw and
 * folded weights in turn) bit-identical to a freshly built model's, and
 * only the named convolutions repacked after a node-by-node change.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/blas_core.h"
#include "nn/conv_packed.h"
#include "nn/fuse.h"
#include "nn/gemm.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "nn/wpack.h"
#include "nn/zoo.h"
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
 * product (relative to sum |a||b|), bit for bit the float sequence both
 * kernels compute (fused multiply-adds in ascending k onto C or 0, then the
 * bias, then max(., 0)), so that AVX-512 and AVX2 hosts give the same maps,
 * and the padding columns of C untouched. */
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
            float seq = accumulate ? c0[(size_t)i * ldc + j] : 0.0f;
            for (int p = 0; p < k; p++)
                seq = fmaf(trans ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p],
                           b[(size_t)p * ldb + j], seq);
            if (with_bias)
                seq += bias[i];
            if (relu)
                seq = seq > 0.0f ? seq : 0.0f;
            if (memcmp(&got, &seq, sizeof got) != 0) {
                TH_CHECK(0, "m=%d n=%d k=%d trans=%d acc=%d bias=%d relu=%d: C[%d][%d] = %.9g, "
                         "the fused sequence gives %.9g", m, n, k, trans, accumulate, with_bias,
                         relu, i, j, got, seq);
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
        TH_SKIP("this CPU has neither AVX-512 nor AVX2 with FMA: the convolutions use cblas_sgemm");
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

/* One segmented case: n_seg segments of seg columns, B's and C's segments
 * apart by gaps (C's gaps hold a sentinel that must survive); every element
 * within float rounding of a naive double loop, and bit-identical to the
 * product of its segment alone (nn_gemm_packed). */
static int check_segments(int m, int seg, int n_seg, int k, int accumulate, int with_bias, int relu)
{
    const int ldb = seg + 3, ldc = seg + 2;
    const size_t b_seg = (size_t)k * ldb + 7, c_seg = (size_t)m * ldc + 5;
    const size_t b_count = b_seg * n_seg, c_count = c_seg * n_seg;
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * b_count);
    float *c = malloc(sizeof(float) * c_count), *c0 = malloc(sizeof(float) * c_count);
    float *alone = malloc(sizeof(float) * c_seg), *bias = malloc(sizeof(float) * (size_t)m);
    float *packed = malloc(sizeof(float) * nn_gemm_packed_floats(m, k));
    float *bpack = malloc(sizeof(float) * nn_gemm_bpack_floats());
    fill_uniform(a, (size_t)m * k, 30);
    fill_uniform(b, b_count, 31);
    fill_uniform(bias, (size_t)m, 32);
    fill_uniform(c0, c_count, 33);
    for (size_t i = 0; i < c_count; i++) {
        const size_t r = i % c_seg;
        if (r >= (size_t)m * ldc || (int)(r % ldc) >= seg)
            c0[i] = SENTINEL;
    }
    memcpy(c, c0, sizeof(float) * c_count);
    nn_gemm_pack_a(m, k, a, k, 0, packed);
    const nn_gemm_seg_t g = {.seg = seg, .n_seg = n_seg, .b_seg = b_seg, .c_seg = c_seg};
    nn_gemm_packed_seg(m, k, packed, b, ldb, c, ldc, &g, accumulate, with_bias ? bias : NULL, relu,
                       bpack);
    int bad = 0;
    for (int s = 0; s < n_seg && !bad; s++) {
        const float *bs = b + s * b_seg, *cs = c + s * c_seg, *c0s = c0 + s * c_seg;
        for (size_t r = 0; r < c_seg && !bad; r++) {
            const int i = (int)(r / ldc), j = (int)(r % ldc);
            if (i >= m || j >= seg) {
                if (cs[r] != SENTINEL) {
                    TH_CHECK(0, "seg=%d n_seg=%d: segment %d written at gap %zu", seg, n_seg, s, r);
                    bad = 1;
                }
                continue;
            }
            double ref = accumulate ? c0s[r] : 0.0, mag = fabs(ref);
            for (int p = 0; p < k; p++) {
                ref += (double)a[(size_t)i * k + p] * bs[(size_t)p * ldb + j];
                mag += fabs((double)a[(size_t)i * k + p] * bs[(size_t)p * ldb + j]);
            }
            if (with_bias) {
                ref += bias[i];
                mag += fabs(bias[i]);
            }
            if (relu && ref < 0.0)
                ref = 0.0;
            if (fabs(cs[r] - ref) > 2e-6 * mag + 1e-30) {
                TH_CHECK(0, "m=%d seg=%d n_seg=%d k=%d: segment %d C[%d][%d] = %.9g, expected "
                         "%.9g", m, seg, n_seg, k, s, i, j, cs[r], ref);
                bad = 1;
            }
        }
        /* the same segment as a product of its own, and with A read in place */
        memcpy(alone, c0s, sizeof(float) * c_seg);
        nn_gemm_packed(m, seg, k, packed, bs, ldb, alone, ldc, accumulate,
                       with_bias ? bias : NULL, relu, bpack);
        if (!bad && memcmp(alone, cs, sizeof(float) * c_seg) != 0) {
            TH_CHECK(0, "m=%d seg=%d n_seg=%d k=%d: segment %d differs from its product alone",
                     m, seg, n_seg, k, s);
            bad = 1;
        }
        memcpy(alone, c0s, sizeof(float) * c_seg);
        const nn_gemm_seg_t one = {.seg = seg, .n_seg = 1};
        nn_gemm_rows_seg(m, k, a, k, bs, ldb, alone, ldc, &one, accumulate,
                         with_bias ? bias : NULL, relu, bpack);
        if (!bad && memcmp(alone, cs, sizeof(float) * c_seg) != 0) {
            TH_CHECK(0, "m=%d seg=%d n_seg=%d k=%d: segment %d differs with A read in place", m,
                     seg, n_seg, k, s);
            bad = 1;
        }
    }
    free(a);
    free(b);
    free(c);
    free(c0);
    free(alone);
    free(bias);
    free(packed);
    free(bpack);
    return bad;
}

static void test_gemm_segments(void)
{
    if (!nn_gemm_available())
        TH_SKIP("this CPU has neither AVX-512 nor AVX2 with FMA: the convolutions use cblas_sgemm");
    /* segment widths below, at and across the 16/32-column vectors and tiles,
     * the zoo's 7x7 and 8x8, a group wider than one NC block of columns */
    static const int segs[] = {1, 5, 16, 17, 31, 33, 49, 64, 100};
    static const int nsegs[] = {1, 3, 11};
    int cases = 0;
    for (size_t is = 0; is < sizeof segs / sizeof *segs; is++)
        for (size_t in = 0; in < sizeof nsegs / sizeof *nsegs; in++) {
            const int v = cases++;
            check_segments(v % 2 ? 13 : 20, segs[is], nsegs[in], v % 3 ? 37 : 300, v % 4 == 1,
                           v % 3 != 2, v % 5 < 2);
        }
    check_segments(9, 49, 16, 520, 1, 1, 1); /* 784 columns: two NC blocks, three KC blocks */
}

/* Members sharing B (nn_gemm_rows_multi): each member's C bit for bit its
 * product alone, gaps untouched. Sources stacked along K (nn_gemm_packed_ksrc):
 * bit for bit the products of the sources one after the other, each after the
 * first accumulating. */
static void check_multi(int seg, int n_seg, int k, int accumulate)
{
    enum { NM = 3 };
    static const int ms[NM] = {13, 8, 24};
    const int ldb = seg + 3, ldc = seg + 2;
    const size_t b_seg = (size_t)k * ldb + 7;
    float *b = malloc(sizeof(float) * b_seg * n_seg), *bpack = malloc(sizeof(float) * nn_gemm_bpack_floats());
    fill_uniform(b, b_seg * n_seg, 40);
    nn_gemm_member_t mem[NM];
    float *a[NM], *c[NM], *alone[NM], *bias[NM];
    size_t c_seg[NM];
    for (int q = 0; q < NM; q++) {
        c_seg[q] = (size_t)ms[q] * ldc + 3 + q;
        a[q] = malloc(sizeof(float) * (size_t)ms[q] * (k + 1));
        c[q] = malloc(sizeof(float) * c_seg[q] * n_seg);
        alone[q] = malloc(sizeof(float) * c_seg[q] * n_seg);
        bias[q] = malloc(sizeof(float) * (size_t)ms[q]);
        fill_uniform(a[q], (size_t)ms[q] * (k + 1), 41 + q);
        fill_uniform(bias[q], (size_t)ms[q], 45 + q);
        for (size_t i = 0; i < c_seg[q] * n_seg; i++)
            c[q][i] = alone[q][i] = SENTINEL;
        mem[q] = (nn_gemm_member_t){ms[q], a[q], k + 1, c[q], c_seg[q], q == 1 ? NULL : bias[q],
                                    q != 0};
    }
    const nn_gemm_seg_t g = {.seg = seg, .n_seg = n_seg, .b_seg = b_seg};
    nn_gemm_rows_multi(NM, mem, k, b, ldb, ldc, &g, bpack);
    for (int q = 0; q < NM; q++) {
        const nn_gemm_seg_t gq = {.seg = seg, .n_seg = n_seg, .b_seg = b_seg, .c_seg = c_seg[q]};
        nn_gemm_rows_seg(ms[q], k, a[q], k + 1, b, ldb, alone[q], ldc, &gq, 0, mem[q].bias,
                         mem[q].relu, bpack);
        TH_CHECK(!memcmp(alone[q], c[q], sizeof(float) * c_seg[q] * n_seg),
                 "seg=%d n_seg=%d k=%d: member %d of the shared product differs from its "
                 "product alone", seg, n_seg, k, q);
    }
    /* K stacked: A = [A_0 | A_1 | A_2] (m x K), B_q of k_q rows each */
    const int m = 20, kq[NM] = {k, 37, 5}, K = kq[0] + kq[1] + kq[2];
    const size_t cs = (size_t)m * ldc + 5;
    float *A = malloc(sizeof(float) * (size_t)m * K), *pk = malloc(sizeof(float) * nn_gemm_packed_floats(m, K));
    float *pq = malloc(sizeof(float) * nn_gemm_packed_floats(m, k > 37 ? k : 37));
    float *bs[NM], *cc = malloc(sizeof(float) * cs * n_seg), *cref = malloc(sizeof(float) * cs * n_seg);
    nn_gemm_ksrc_t src[NM];
    fill_uniform(A, (size_t)m * K, 50);
    fill_uniform(cc, cs * n_seg, 51);
    memcpy(cref, cc, sizeof(float) * cs * n_seg);
    nn_gemm_pack_a(m, K, A, K, 0, pk);
    for (int q = 0; q < NM; q++) {
        const size_t bq_seg = (size_t)kq[q] * ldb + 11 * q;
        bs[q] = malloc(sizeof(float) * bq_seg * n_seg);
        fill_uniform(bs[q], bq_seg * n_seg, 52 + q);
        src[q] = (nn_gemm_ksrc_t){kq[q], bs[q], bq_seg};
    }
    const nn_gemm_seg_t gc = {.seg = seg, .n_seg = n_seg, .c_seg = cs};
    nn_gemm_packed_ksrc(m, pk, NM, src, ldb, cc, ldc, &gc, accumulate, bpack);
    for (int q = 0, off = 0; q < NM; off += kq[q++]) {
        nn_gemm_pack_a(m, kq[q], A + off, K, 0, pq);
        const nn_gemm_seg_t gq = {.seg = seg, .n_seg = n_seg, .b_seg = src[q].b_seg, .c_seg = cs};
        nn_gemm_packed_seg(m, kq[q], pq, bs[q], ldb, cref, ldc, &gq, q > 0 || accumulate, NULL, 0,
                           bpack);
    }
    TH_CHECK(!memcmp(cc, cref, sizeof(float) * cs * n_seg),
             "seg=%d n_seg=%d k=%d accumulate=%d: the stacked product differs from its sources "
             "one after the other", seg, n_seg, k, accumulate);
    for (int q = 0; q < NM; q++) {
        free(a[q]);
        free(c[q]);
        free(alone[q]);
        free(bias[q]);
        free(bs[q]);
    }
    free(A);
    free(pk);
    free(pq);
    free(cc);
    free(cref);
    free(b);
    free(bpack);
}

static void test_gemm_multi(void)
{
    if (!nn_gemm_available())
        TH_SKIP("this CPU has neither AVX-512 nor AVX2 with FMA: the convolutions use cblas_sgemm");
    check_multi(49, 3, 37, 0);
    check_multi(64, 16, 300, 1); /* two NC blocks of columns, two KC blocks of depth */
    check_multi(17, 5, 260, 0);
    check_multi(1225, 1, 192, 1);
    check_multi(40, 2, 230, 1); /* a KC block boundary inside the second source */
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
    /* 12 x 12 outputs: forward on OpenBLAS, input gradient on the packed path */
    check_conv((conv2d_shape_t){.n = 3, .c = 7, .h = 12, .w = 12, .oc = 10, .kh = 3, .kw = 3,
                                .sh = 1, .sw = 1, .pt = 1, .pb = 1, .pl = 1, .pr = 1});
    /* 7 x 7 and 8 x 8 outputs in batches wider than a group's NC columns (packed path) */
    check_conv((conv2d_shape_t){.n = 13, .c = 30, .h = 7, .w = 7, .oc = 17, .kh = 3, .kw = 3,
                                .sh = 1, .sw = 1, .pt = 1, .pb = 1, .pl = 1, .pr = 1});
    check_conv((conv2d_shape_t){.n = 10, .c = 33, .h = 8, .w = 8, .oc = 9, .kh = 1, .kw = 1,
                                .sh = 1, .sw = 1});
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
    /* stride 2 with rows of more than 16 outputs (the vector copies and adds of
     * im2col and col2im, a whole block of 16 and a tail), odd and even widths */
    check_conv((conv2d_shape_t){.n = 1, .c = 3, .h = 47, .w = 45, .oc = 8, .kh = 7, .kw = 7,
                                .sh = 2, .sw = 2, .pt = 3, .pb = 3, .pl = 3, .pr = 3});
    check_conv((conv2d_shape_t){.n = 2, .c = 4, .h = 38, .w = 70, .oc = 6, .kh = 3, .kw = 3,
                                .sh = 2, .sw = 2});
}

/* The forward builds its patch matrices a slice of columns at a time
 * (conv_packed_fwd_columns): any slice width gives the bits of one slice over
 * the whole group, on a large image, a stride-2 5 x 5 and groups of small
 * images whose slices start and end inside an image. */
static void check_forward_slices(conv2d_shape_t s)
{
    conv2d_shape_init(&s);
    if (!nn_gemm_available())
        return;
    const size_t in = (size_t)s.n * s.c * s.h * s.w, out = (size_t)s.n * s.oc * s.oh * s.ow;
    const size_t wcount = (size_t)s.oc * s.c * s.kh * s.kw;
    float *x = malloc(sizeof(float) * in), *W = malloc(sizeof(float) * wcount);
    float *b = malloc(sizeof(float) * s.oc), *y = malloc(sizeof(float) * out);
    float *y1 = malloc(sizeof(float) * out), *ws = malloc(sizeof(float) * conv_packed_workspace(&s));
    fill_uniform(x, in, 50);
    fill_uniform(W, wcount, 51);
    fill_uniform(b, (size_t)s.oc, 52);
    const int whole = conv_packed_group(&s) * s.oh * s.ow;
    conv_packed_forward_cols(&s, x, W, b, 1, y, ws, whole);
    const int widths[] = {32, 64, 96, 100, 7, conv_packed_fwd_columns(&s)};
    for (size_t i = 0; i < sizeof widths / sizeof *widths; i++) {
        memset(y1, 0xff, sizeof(float) * out); /* NaN: every element must be written */
        conv_packed_forward_cols(&s, x, W, b, 1, y1, ws, widths[i]);
        TH_CHECK(memcmp(y, y1, sizeof(float) * out) == 0,
                 "conv %dx%d s%d %dx%d c%d->%d batch %d: slices of %d columns differ from one slice",
                 s.kh, s.kw, s.sh, s.h, s.w, s.c, s.oc, s.n, widths[i]);
    }
    /* the packed forward as dispatched: from the images when conv_packed_direct */
    memset(y1, 0xff, sizeof(float) * out);
    conv_packed_forward(&s, x, W, b, 1, y1, ws);
    TH_CHECK(memcmp(y, y1, sizeof(float) * out) == 0,
             "conv %dx%d s%d,%d %dx%d c%d->%d batch %d: the forward%s differs from im2col's",
             s.kh, s.kw, s.sh, s.sw, s.h, s.w, s.c, s.oc, s.n,
             conv_packed_direct(&s) ? " packed from the images" : "");
    free(x);
    free(W);
    free(b);
    free(y);
    free(y1);
    free(ws);
}

static void test_conv_forward_slices(void)
{
    if (!nn_gemm_available())
        TH_SKIP("this CPU has neither AVX-512 nor AVX2 with FMA: the convolutions use cblas_sgemm");
    check_forward_slices((conv2d_shape_t){.n = 2, .c = 64, .h = 40, .w = 37, .oc = 10, .kh = 3,
                                          .kw = 3, .sh = 1, .sw = 1, .pt = 1, .pb = 1, .pl = 1,
                                          .pr = 1});
    check_forward_slices((conv2d_shape_t){.n = 1, .c = 3, .h = 41, .w = 40, .oc = 17, .kh = 5,
                                          .kw = 5, .sh = 2, .sw = 2, .pt = 2, .pb = 1, .pl = 1,
                                          .pr = 2});
    check_forward_slices((conv2d_shape_t){.n = 7, .c = 30, .h = 9, .w = 9, .oc = 19, .kh = 3,
                                          .kw = 3, .sh = 1, .sw = 1, .pt = 1, .pb = 1, .pl = 1,
                                          .pr = 1});
    check_forward_slices((conv2d_shape_t){.n = 5, .c = 12, .h = 7, .w = 7, .oc = 9, .kh = 1,
                                          .kw = 7, .sh = 1, .sw = 1, .pl = 3, .pr = 3});
    /* packed from the images: rows narrower than a strip (runs over several rows
     * and images), vertical stride 2, one-column outputs, padding wider than the
     * kernel's reach on one side, K past one depth block (a block starting inside
     * a channel's taps), InceptionV3's 17 x 17 band */
    check_forward_slices((conv2d_shape_t){.n = 6, .c = 5, .h = 3, .w = 3, .oc = 11, .kh = 3,
                                          .kw = 3, .sh = 1, .sw = 1, .pt = 1, .pb = 1, .pl = 1,
                                          .pr = 1});
    check_forward_slices((conv2d_shape_t){.n = 3, .c = 7, .h = 13, .w = 11, .oc = 9, .kh = 3,
                                          .kw = 2, .sh = 2, .sw = 1, .pt = 0, .pb = 2, .pl = 2,
                                          .pr = 0});
    check_forward_slices((conv2d_shape_t){.n = 4, .c = 6, .h = 9, .w = 4, .oc = 8, .kh = 2,
                                          .kw = 4, .sh = 1, .sw = 1, .pt = 1, .pb = 0, .pl = 0,
                                          .pr = 0});
    check_forward_slices((conv2d_shape_t){.n = 2, .c = 37, .h = 10, .w = 19, .oc = 13, .kh = 3,
                                          .kw = 3, .sh = 1, .sw = 1, .pt = 2, .pb = 2, .pl = 2,
                                          .pr = 2});
    check_forward_slices((conv2d_shape_t){.n = 5, .c = 40, .h = 17, .w = 17, .oc = 24, .kh = 1,
                                          .kw = 7, .sh = 1, .sw = 1, .pl = 3, .pr = 3});
    check_forward_slices((conv2d_shape_t){.n = 5, .c = 40, .h = 17, .w = 17, .oc = 20, .kh = 7,
                                          .kw = 1, .sh = 1, .sw = 1, .pt = 3, .pb = 3});
    check_forward_slices((conv2d_shape_t){.n = 3, .c = 2, .h = 5, .w = 5, .oc = 3, .kh = 5,
                                          .kw = 5, .sh = 1, .sw = 1, .pt = 4, .pb = 4, .pl = 4,
                                          .pr = 4});
    /* the packer's per-strip tables: a kernel of exactly CONV_TAPS_TABLED (64) taps, and one
     * past it (81 taps: each row's loads worked out on the spot) */
    check_forward_slices((conv2d_shape_t){.n = 3, .c = 4, .h = 14, .w = 13, .oc = 9, .kh = 8,
                                          .kw = 8, .sh = 1, .sw = 1, .pt = 3, .pb = 4, .pl = 4,
                                          .pr = 3});
    check_forward_slices((conv2d_shape_t){.n = 2, .c = 3, .h = 15, .w = 21, .oc = 7, .kh = 9,
                                          .kw = 9, .sh = 1, .sw = 1, .pt = 4, .pb = 4, .pl = 4,
                                          .pr = 4});
    /* the default width slices this one (K = 576, 1600 pixels): against the definition */
    check_conv((conv2d_shape_t){.n = 1, .c = 64, .h = 40, .w = 40, .oc = 10, .kh = 3, .kw = 3,
                                .sh = 1, .sw = 1, .pt = 1, .pb = 1, .pl = 1, .pr = 1});
}

/* The input gradient of stride-1 shapes as the forward of the adjoint
 * (conv_packed_bwd_direct: dy packed straight into the GEMM, no col2im):
 * against the definition in double, assigned and accumulated onto 0.5, with
 * the weights packed here and given packed (as nn/wpack.h caches them), the
 * same bits both ways. */
static void check_backward_direct(conv2d_shape_t s)
{
    conv2d_shape_init(&s);
    const size_t in = (size_t)s.n * s.c * s.h * s.w, out = (size_t)s.n * s.oc * s.oh * s.ow;
    const size_t wcount = (size_t)s.oc * s.c * s.kh * s.kw;
    float *W = malloc(sizeof(float) * wcount), *dy = malloc(sizeof(float) * out);
    float *dx = malloc(sizeof(float) * in), *dx2 = malloc(sizeof(float) * in);
    float *ws = malloc(sizeof(float) * conv_packed_workspace(&s));
    float *wt = malloc(sizeof(float) * conv_packed_wt_floats(&s));
    fill_uniform(W, wcount, 61);
    fill_uniform(dy, out, 62);
    TH_CHECK(conv_packed_bwd_direct(&s), "conv %dx%d pad %d,%d,%d,%d: not on the direct path",
             s.kh, s.kw, s.pt, s.pb, s.pl, s.pr);
    for (int assign = 1; assign >= 0; assign--) {
        for (size_t i = 0; i < in; i++)
            dx[i] = assign ? NAN : 0.5f; /* assigned: every element must be written */
        memcpy(dx2, dx, sizeof(float) * in);
        conv_packed_backward_data(&s, W, NULL, dy, dx, assign, ws);
        conv_packed_pack_wt(&s, W, wt);
        conv_packed_backward_data(&s, W, wt, dy, dx2, assign, ws);
        TH_CHECK(!memcmp(dx, dx2, sizeof(float) * in),
                 "conv %dx%d: the cached weights give other bits", s.kh, s.kw);
        double worst = 0.0;
        for (int n = 0; n < s.n; n++)
            for (int ci = 0; ci < s.c; ci++)
                for (int iy = 0; iy < s.h; iy++)
                    for (int ix = 0; ix < s.w; ix++) {
                        double ref = assign ? 0.0 : 0.5;
                        for (int o = 0; o < s.oc; o++)
                            for (int ki = 0; ki < s.kh; ki++)
                                for (int kj = 0; kj < s.kw; kj++) {
                                    const int oy = iy + s.pt - ki, ox = ix + s.pl - kj;
                                    if (oy < 0 || ox < 0 || oy >= s.oh || ox >= s.ow)
                                        continue;
                                    ref += (double)W[((o * s.c + ci) * s.kh + ki) * s.kw + kj] *
                                           dy[(((size_t)n * s.oc + o) * s.oh + oy) * s.ow + ox];
                                }
                        const double d =
                            fabs(dx[(((size_t)n * s.c + ci) * s.h + iy) * s.w + ix] - ref);
                        worst = d > worst || d != d ? d : worst;
                    }
        TH_CHECK(worst < 1e-4, "conv %dx%d pad %d,%d,%d,%d %dx%d c%d->%d batch %d assign %d: "
                 "input gradient off by %g", s.kh, s.kw, s.pt, s.pb, s.pl, s.pr, s.h, s.w, s.c,
                 s.oc, s.n, assign, worst);
    }
    free(W);
    free(dy);
    free(dx);
    free(dx2);
    free(ws);
    free(wt);
}

static void test_conv_backward_direct(void)
{
    if (!nn_gemm_available())
        TH_SKIP("this CPU has neither AVX-512 nor AVX2 with FMA: the convolutions use cblas_sgemm");
    /* InceptionV3's 1x7 and 7x1 at 17 x 17 (groups of images), a 5x5, uneven
     * and one-sided padding, no padding (the adjoint pads by the kernel),
     * rows narrower than a strip, a kernel as large as the image, K past one
     * depth block */
    check_backward_direct((conv2d_shape_t){.n = 5, .c = 24, .h = 17, .w = 17, .oc = 20, .kh = 1,
                                           .kw = 7, .sh = 1, .sw = 1, .pl = 3, .pr = 3});
    check_backward_direct((conv2d_shape_t){.n = 5, .c = 20, .h = 17, .w = 17, .oc = 24, .kh = 7,
                                           .kw = 1, .sh = 1, .sw = 1, .pt = 3, .pb = 3});
    check_backward_direct((conv2d_shape_t){.n = 2, .c = 9, .h = 13, .w = 11, .oc = 12, .kh = 5,
                                           .kw = 5, .sh = 1, .sw = 1, .pt = 2, .pb = 2, .pl = 2,
                                           .pr = 2});
    check_backward_direct((conv2d_shape_t){.n = 3, .c = 7, .h = 10, .w = 9, .oc = 5, .kh = 3,
                                           .kw = 4, .sh = 1, .sw = 1, .pt = 2, .pb = 0, .pl = 0,
                                           .pr = 3});
    check_backward_direct((conv2d_shape_t){.n = 2, .c = 6, .h = 12, .w = 14, .oc = 11, .kh = 3,
                                           .kw = 3, .sh = 1, .sw = 1});
    check_backward_direct((conv2d_shape_t){.n = 7, .c = 5, .h = 4, .w = 3, .oc = 6, .kh = 3,
                                           .kw = 3, .sh = 1, .sw = 1, .pt = 1, .pb = 1, .pl = 1,
                                           .pr = 1});
    check_backward_direct((conv2d_shape_t){.n = 2, .c = 3, .h = 5, .w = 5, .oc = 4, .kh = 5,
                                           .kw = 5, .sh = 1, .sw = 1, .pt = 4, .pb = 4, .pl = 4,
                                           .pr = 4});
    /* 81 taps: past the packer's per-strip tables */
    check_backward_direct((conv2d_shape_t){.n = 2, .c = 5, .h = 13, .w = 12, .oc = 6, .kh = 9,
                                           .kw = 9, .sh = 1, .sw = 1, .pt = 4, .pb = 4, .pl = 4,
                                           .pr = 4});
    check_backward_direct((conv2d_shape_t){.n = 2, .c = 10, .h = 9, .w = 8, .oc = 40, .kh = 3,
                                           .kw = 3, .sh = 1, .sw = 1, .pt = 1, .pb = 1, .pl = 1,
                                           .pr = 1});
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

/* One image's forward (bias, ReLU) and input gradient (assigned and
 * accumulated) are the same bits in a batch of 1 and in a batch of 5, on the
 * shapes of both paths. */
static void check_batch_sizes(conv2d_shape_t s)
{
    s.n = 5;
    conv2d_shape_init(&s);
    const size_t img = (size_t)s.c * s.h * s.w, oimg = (size_t)s.oc * s.oh * s.ow;
    const size_t wcount = (size_t)s.oc * s.c * s.kh * s.kw;
    float *x = malloc(sizeof(float) * 5 * img), *W = malloc(sizeof(float) * wcount);
    float *b = malloc(sizeof(float) * s.oc), *y = malloc(sizeof(float) * 5 * oimg);
    float *y1 = malloc(sizeof(float) * oimg), *dy = malloc(sizeof(float) * 5 * oimg);
    float *dx = malloc(sizeof(float) * 5 * img), *dx1 = malloc(sizeof(float) * img);
    float *col = malloc(sizeof(float) * (conv2d_workspace(&s) + 1));
    fill_uniform(x, 5 * img, 40);
    fill_uniform(W, wcount, 41);
    fill_uniform(b, (size_t)s.oc, 42);
    fill_uniform(dy, 5 * oimg, 43);
    conv2d_forward_fused(&s, x, W, b, 1, y, col);
    conv2d_backward_data(&s, W, dy, dx, 1, col);
    conv2d_shape_t s1 = s;
    s1.n = 1;
    int same = 1;
    for (int i = 0; i < 5; i++) {
        conv2d_forward_fused(&s1, x + i * img, W, b, 1, y1, col);
        same &= memcmp(y1, y + i * oimg, sizeof(float) * oimg) == 0;
        conv2d_backward_data(&s1, W, dy + i * oimg, dx1, 1, col);
        same &= memcmp(dx1, dx + i * img, sizeof(float) * img) == 0;
    }
    /* accumulating: onto the assigned gradient, batch 5 against image by image */
    memcpy(dx1, dx + 3 * img, sizeof(float) * img);
    conv2d_backward_data(&s, W, dy, dx, 0, col);
    conv2d_backward_data(&s1, W, dy + 3 * oimg, dx1, 0, col);
    same &= memcmp(dx1, dx + 3 * img, sizeof(float) * img) == 0;
    TH_CHECK(same, "conv %dx%d s%d %dx%d c%d->%d (%s/%s): batch of 5 differs from batch of 1",
             s.kh, s.kw, s.sh, s.h, s.w, s.c, s.oc, conv_packed_wanted(&s, 0) ? "packed" : "OpenBLAS",
             conv_packed_wanted(&s, 1) ? "packed" : "OpenBLAS");
    free(x);
    free(W);
    free(b);
    free(y);
    free(y1);
    free(dy);
    free(dx);
    free(dx1);
    free(col);
}

static void test_conv_batch_sizes(void)
{
    check_batch_sizes((conv2d_shape_t){.c = 24, .h = 7, .w = 7, .oc = 40, .kh = 3, .kw = 3,
                                       .sh = 1, .sw = 1, .pt = 1, .pb = 1, .pl = 1, .pr = 1});
    check_batch_sizes((conv2d_shape_t){.c = 70, .h = 8, .w = 8, .oc = 19, .kh = 1, .kw = 1,
                                       .sh = 1, .sw = 1});
    check_batch_sizes((conv2d_shape_t){.c = 300, .h = 9, .w = 9, .oc = 12, .kh = 3, .kw = 3,
                                       .sh = 2, .sw = 2});
    check_batch_sizes((conv2d_shape_t){.c = 6, .h = 14, .w = 13, .oc = 8, .kh = 3, .kw = 3,
                                       .sh = 1, .sw = 1, .pt = 1, .pb = 1, .pl = 1, .pr = 1});
    check_batch_sizes((conv2d_shape_t){.c = 5, .h = 18, .w = 18, .oc = 7, .kh = 3, .kw = 3,
                                       .sh = 1, .sw = 1, .pt = 1, .pb = 1, .pl = 1, .pr = 1});
    /* packed from the images and from dy (conv_packed_direct, conv_packed_bwd_direct) */
    check_batch_sizes((conv2d_shape_t){.c = 12, .h = 17, .w = 17, .oc = 10, .kh = 1, .kw = 7,
                                       .sh = 1, .sw = 1, .pl = 3, .pr = 3});
    check_batch_sizes((conv2d_shape_t){.c = 9, .h = 6, .w = 5, .oc = 13, .kh = 5, .kw = 5,
                                       .sh = 1, .sw = 1, .pt = 2, .pb = 2, .pl = 2, .pr = 2});
}

/* The input gradient of the logit of class 1 at one image, fused (BN folded) or not. */
static void model_grad(nn_model_t *m, const float *x, int fused, float *dx)
{
    const int target = 1;
    const nn_backward_opts_t o = {.input_grad = 1};
    int rc = fused ? nn_forward_fused(m, x, 1) : nn_forward(m, x, 1, 0);
    if (rc == 0)
        rc = nn_backward_logit(m, &target, dx, &o);
    TH_CHECK(rc == 0, "gradient pass (fused %d): %d", fused, rc);
}

/* m's gradients against a model built afresh with m's parameters (an empty cache). */
static int same_as_fresh(nn_model_t *m, const float *x, float *dx, float *ref, int fused)
{
    const size_t chw = nn_node_size(&m->nodes[0]);
    nn_model_t *fresh = NULL;
    if (zoo_build("demoresnet", 48, 2, 1, &fresh) < 0 || nn_model_prepare(fresh, 1) < 0) {
        nn_model_destroy(fresh);
        return 0;
    }
    memcpy(fresh->params, m->params, sizeof(float) * m->n_params);
    nn_model_params_changed(fresh);
    model_grad(m, x, fused, dx);
    model_grad(fresh, x, fused, ref);
    nn_model_destroy(fresh);
    return memcmp(dx, ref, sizeof(float) * chw) == 0;
}

static void test_wpack_cache(void)
{
    nn_model_t *m = NULL;
    TH_CHECK(zoo_build("demoresnet", 48, 2, 1, &m) == 0 && nn_model_prepare(m, 1) == 0, "build");
    if (!m)
        return;
    const size_t chw = nn_node_size(&m->nodes[0]), planned = nn_wpack_bytes(m);
    float *x = malloc(sizeof(float) * chw), *dx = malloc(sizeof(float) * chw);
    float *ref = malloc(sizeof(float) * chw), *first = malloc(sizeof(float) * chw);
    fill_uniform(x, chw, 50);
    /* BN statistics away from the identity, so that the folded weights differ from the raw */
    for (int i = 1; i < m->n_nodes; i++) {
        size_t count;
        float *var = nn_param(m, i, NN_P_VAR, &count);
        for (size_t k = 0; var && k < count; k++)
            var[k] = 0.5f + 0.01f * (float)k;
    }
    nn_model_params_changed(m);
    TH_CHECK(same_as_fresh(m, x, dx, ref, 1), "fused gradient differs from a fresh model's");
    memcpy(first, dx, sizeof(float) * chw);
    TH_CHECK(m->wpack && planned > 0 && nn_wpack_bytes(m) == planned,
             "cache of %zu bytes planned, %zu built", planned, nn_wpack_bytes(m));
    if (!m->wpack)
        goto done;
    const char *blocks[64];
    zoo_blocks_top_down(m, blocks, 64);
    /* a cached convolution outside the top block holds a marker only a repack overwrites */
    int other = -1, kind = 0;
    for (int k = 0; k < NN_WPACK_KINDS && other < 0; k++)
        for (int i = 1; i < m->n_nodes && other < 0; i++)
            if (m->wpack->off[k][i] >= 0 && m->wpack->src[k][i] &&
                strcmp(m->nodes[i].block, blocks[1]))
                other = i, kind = k;
    TH_CHECK(other > 0, "no cached convolution outside block %s", blocks[1]);
    /* the top block's parameters rewritten node by node, as a cascade state switch does */
    for (int i = 1; i < m->n_nodes; i++) {
        if (strcmp(m->nodes[i].block, blocks[1]))
            continue;
        for (int k = 0; k < NN_P_KINDS; k++)
            if (m->nodes[i].p_off[k] >= 0)
                for (size_t e = 0; e < m->nodes[i].p_count[k]; e++)
                    m->params[m->nodes[i].p_off[k] + e] *= 1.25f;
        nn_model_node_params_changed(m, i);
    }
    float *marker = other > 0 ? m->wpack->data + m->wpack->off[kind][other] : NULL;
    const float saved = marker ? marker[0] : 0.0f;
    if (marker)
        marker[0] = 12345.0f;
    model_grad(m, x, 1, dx);
    TH_CHECK(!marker || marker[0] == 12345.0f, "an unchanged convolution was repacked");
    if (marker)
        marker[0] = saved;
    TH_CHECK(same_as_fresh(m, x, dx, ref, 1), "after a block changed node by node: differs");
    TH_CHECK(memcmp(dx, first, sizeof(float) * chw) != 0, "the block's change had no effect");
    /* a BN alone changed (its convolution's folded weights move, the raw ones do not) */
    for (int i = 1; i < m->n_nodes; i++)
        if (m->nodes[i].op == NN_BN && m->fuse && m->fuse->folded_into[i] >= 0) {
            size_t count;
            float *gamma = nn_param(m, i, NN_P_GAMMA, &count);
            for (size_t k = 0; gamma && k < count; k++)
                gamma[k] *= -0.5f;
            nn_model_node_params_changed(m, i);
            break;
        }
    TH_CHECK(same_as_fresh(m, x, dx, ref, 1), "after a BN changed: differs");
    /* raw weights after folded ones, and back */
    TH_CHECK(same_as_fresh(m, x, dx, ref, 0), "unfused gradient after a fused one differs");
    TH_CHECK(same_as_fresh(m, x, dx, ref, 1), "fused gradient after an unfused one differs");
    /* every parameter changed at once */
    for (size_t e = 0; e < m->n_params; e += 7)
        m->params[e] *= 0.75f;
    nn_model_params_changed(m);
    TH_CHECK(same_as_fresh(m, x, dx, ref, 1), "after nn_model_params_changed: differs");
done:
    free(x);
    free(dx);
    free(ref);
    free(first);
    nn_model_destroy(m);
}

/* Which OpenBLAS kernel set salcheck restarts with (nn/blas_core.h), from
 * OpenBLAS's own choice and the CPU's vectors; NULL: keep OpenBLAS's. */
static void test_blas_core_choice(void)
{
    const struct {
        const char *core;
        int avx512, bf16, avx2;
        const char *want;
    } cases[] = {
        {"Prescott", 1, 1, 1, "Cooperlake"}, /* an unknown AVX-512 Xeon with BF16 */
        {"Prescott", 1, 0, 1, "SkylakeX"},
        {"Haswell", 1, 1, 1, "Cooperlake"},  /* AVX2 kernels on an AVX-512 CPU */
        {"Zen", 1, 0, 1, "SkylakeX"},
        {"Cooperlake", 1, 1, 1, NULL},       /* already AVX-512 */
        {"SkylakeX", 1, 1, 1, NULL},
        {"SAPPHIRERAPIDS", 1, 1, 1, NULL},   /* names compared without case */
        {"Prescott", 0, 0, 1, "Haswell"},    /* an unknown AVX2 CPU */
        {"Zen", 0, 0, 1, NULL},
        {"Haswell", 0, 0, 1, NULL},
        {"Prescott", 0, 0, 0, NULL},         /* nothing better to choose */
        {"Nehalem", 0, 0, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = nn_blas_core_choose(cases[i].core, cases[i].avx512, cases[i].bf16,
                                              cases[i].avx2);
        TH_CHECK((!got && !cases[i].want) || (got && cases[i].want && !strcmp(got, cases[i].want)),
                 "OpenBLAS %s, avx512 %d bf16 %d avx2 %d: %s, want %s", cases[i].core,
                 cases[i].avx512, cases[i].bf16, cases[i].avx2, got ? got : "(keep)",
                 cases[i].want ? cases[i].want : "(keep)");
    }
}

int main(void)
{
    TH_RUN(test_blas_core_choice);
    TH_RUN(test_gemm_edges);
    TH_RUN(test_conv_against_definition);
    TH_RUN(test_conv_batch_independent);
    TH_RUN(test_conv_forward_slices);
    TH_RUN(test_conv_backward_direct);
    TH_RUN(test_gemm_segments);
    TH_RUN(test_gemm_multi);
    TH_RUN(test_conv_batch_sizes);
    TH_RUN(test_wpack_cache);
    return th_report();
}
