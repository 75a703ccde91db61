/*
 * test_wino.c - the Winograd F(2x2, 3x3), F(2x2, 5x5) and F(2, 7) (1 x 7,
 * 7 x 1) convolutions (nn/conv_wino.h) against the definition in double
 * precision: forward with bias and ReLU, the input gradient assigned and
 * accumulated, every padding from 0 to 2 on each side (0 to 4 for 5 x 5, 0
 * to 6 along a 7-tap axis; the input gradient's own padding is k - 1 - p),
 * odd sizes (the
 * last tile of a row or column half outside), channel counts across the
 * GEMM's depth block, blocks of tiles that end inside an image row. Inputs
 * like radiographs: a flat black border and a constant region (the errors
 * relative to the terms' magnitudes, zeros exact). An image's output and
 * input gradient bit-identical in batches of 1 and 5 (blocks cut elsewhere).
 * Which shapes take the path. Through a model: ResNet-18 gradients on the
 * Winograd path against the im2col path (the unfused forward and a training
 * backward), and a cascade-style weight change seen by the cached transforms.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv_wino.h"
#include "nn/gemm.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "nn/ops/conv_node.h"
#include "nn/zoo.h"
#include "nnhelp.h"
#include "rng.h"
#include "sc.h"
#include "testhelp.h"

/* Uniform in [-1, 1), keyed by the stream number (nnhelp.h). */
static void fill(float *x, size_t count, uint32_t stream)
{
    th_fill_uniform(x, count, 7 + stream, "wino test", -1.0f, 1.0f);
}

/* A radiograph-like input: a black border of `border` pixels, a constant
 * block in the upper half, texture elsewhere. */
static void fill_radiograph(float *x, const conv2d_shape_t *s, int border)
{
    fill(x, (size_t)s->n * s->c * s->h * s->w, 21);
    for (int n = 0; n < s->n; n++)
        for (int c = 0; c < s->c; c++)
            for (int y = 0; y < s->h; y++)
                for (int xx = 0; xx < s->w; xx++) {
                    float *p = x + (((size_t)n * s->c + c) * s->h + y) * s->w + xx;
                    if (y < border || xx < border || y >= s->h - border || xx >= s->w - border)
                        *p = 0.0f;
                    else if (y < s->h / 2)
                        *p = 0.3f + 0.01f * (float)c;
                }
}

/* y (before bias) and sum |w x| at (n, o, oy, ox), by the definition. */
static double fwd_ref(const conv2d_shape_t *s, const float *x, const float *W, int n, int o,
                      int oy, int ox, double *mag)
{
    double acc = 0.0, m = 0.0;
    for (int ci = 0; ci < s->c; ci++)
        for (int ki = 0; ki < s->kh; ki++)
            for (int kj = 0; kj < s->kw; kj++) {
                const int iy = oy - s->pt + ki, ix = ox - s->pl + kj;
                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                    continue;
                const double t = (double)W[((o * s->c + ci) * s->kh + ki) * s->kw + kj] *
                                 x[(((size_t)n * s->c + ci) * s->h + iy) * s->w + ix];
                acc += t;
                m += fabs(t);
            }
    *mag = m;
    return acc;
}

static double bwd_ref(const conv2d_shape_t *s, const float *W, const float *dy, int n, int ci,
                      int iy, int ix, double *mag)
{
    double acc = 0.0, m = 0.0;
    for (int o = 0; o < s->oc; o++)
        for (int ki = 0; ki < s->kh; ki++)
            for (int kj = 0; kj < s->kw; kj++) {
                const int oy = iy + s->pt - ki, ox = ix + s->pl - kj;
                if (oy < 0 || oy >= s->oh || ox < 0 || ox >= s->ow)
                    continue;
                const double t = (double)W[((o * s->c + ci) * s->kh + ki) * s->kw + kj] *
                                 dy[(((size_t)n * s->oc + o) * s->oh + oy) * s->ow + ox];
                acc += t;
                m += fabs(t);
            }
    *mag = m;
    return acc;
}

/* Error of a float result against the double reference, relative to the
 * magnitude of its terms (a sum of float products in any order is within
 * a few units of K x eps of that). */
static double rel_err(double got, double ref, double mag)
{
    return fabs(got - ref) / (mag + 1e-30);
}

typedef struct {
    float *x, *W, *b, *y, *dy, *dx, *uf, *ub, *ws;
} bufs_t;

static int bufs_make(bufs_t *B, const conv2d_shape_t *s)
{
    const size_t in = (size_t)s->n * s->c * s->h * s->w, out = (size_t)s->n * s->oc * s->oh * s->ow;
    B->x = malloc(sizeof(float) * in);
    B->dx = malloc(sizeof(float) * in);
    const size_t taps = (size_t)s->kh * s->kw;
    B->W = malloc(sizeof(float) * (size_t)s->oc * s->c * taps);
    B->b = malloc(sizeof(float) * (size_t)s->oc);
    B->y = malloc(sizeof(float) * out);
    B->dy = malloc(sizeof(float) * out);
    B->uf = malloc(sizeof(float) * conv_wino_u_floats(s, 0));
    B->ub = malloc(sizeof(float) * conv_wino_u_floats(s, 1));
    B->ws = malloc(sizeof(float) * conv_wino_workspace(s));
    if (!B->x || !B->dx || !B->W || !B->b || !B->y || !B->dy || !B->uf || !B->ub || !B->ws)
        return -1;
    fill(B->W, (size_t)s->oc * s->c * taps, 2);
    fill(B->b, (size_t)s->oc, 3);
    fill(B->dy, out, 4);
    return conv_wino_transform(s, B->W, 0, B->uf) || conv_wino_transform(s, B->W, 1, B->ub);
}

static void bufs_free(bufs_t *B)
{
    free(B->x), free(B->dx), free(B->W), free(B->b), free(B->y), free(B->dy), free(B->uf);
    free(B->ub), free(B->ws);
}

static void check_shape(conv2d_shape_t s, int radiograph)
{
    TH_CHECK(conv2d_shape_init(&s) == 0, "shape");
    bufs_t B;
    TH_CHECK(bufs_make(&B, &s) == 0, "allocation");
    const size_t in = (size_t)s.n * s.c * s.h * s.w;
    if (radiograph)
        fill_radiograph(B.x, &s, 2);
    else
        fill(B.x, in, 1);
    const char *tag = radiograph ? "radiograph" : "uniform";
    for (int relu = 0; relu < 2; relu++) {
        conv_wino_forward(&s, B.uf, B.x, B.b, relu, B.y, B.ws);
        double worst = 0.0;
        int exact_bad = 0;
        for (int n = 0; n < s.n; n++)
            for (int o = 0; o < s.oc; o++)
                for (int oy = 0; oy < s.oh; oy++)
                    for (int ox = 0; ox < s.ow; ox++) {
                        double mag;
                        double ref = fwd_ref(&s, B.x, B.W, n, o, oy, ox, &mag) + B.b[o];
                        if (relu)
                            ref = ref > 0.0 ? ref : 0.0;
                        const float got = B.y[(((size_t)n * s.oc + o) * s.oh + oy) * s.ow + ox];
                        const double e = rel_err(got, ref, mag + fabs(B.b[o]));
                        worst = e > worst ? e : worst;
                        /* a window of zeros gives the bias exactly */
                        if (mag == 0.0 && got != (float)ref)
                            exact_bad = 1;
                    }
        TH_CHECK(worst < 4e-6, "%s c%d->%d %dx%d pad %d,%d,%d,%d relu %d: forward error %.3g",
                 tag, s.c, s.oc, s.h, s.w, s.pt, s.pb, s.pl, s.pr, relu, worst);
        TH_CHECK(!exact_bad, "%s: a window of zeros does not give the bias exactly", tag);
    }
    for (int assign = 0; assign < 2; assign++) {
        for (size_t i = 0; i < in; i++)
            B.dx[i] = assign ? NAN : 0.25f; /* assign must overwrite every element */
        conv_wino_backward_data(&s, B.ub, B.dy, B.dx, assign, B.ws);
        double worst = 0.0;
        for (int n = 0; n < s.n; n++)
            for (int ci = 0; ci < s.c; ci++)
                for (int iy = 0; iy < s.h; iy++)
                    for (int ix = 0; ix < s.w; ix++) {
                        double mag;
                        const double ref = bwd_ref(&s, B.W, B.dy, n, ci, iy, ix, &mag) +
                                           (assign ? 0.0 : 0.25);
                        const float got = B.dx[(((size_t)n * s.c + ci) * s.h + iy) * s.w + ix];
                        const double e = isnan(got) ? 1.0 : rel_err(got, ref, mag + 0.25);
                        worst = e > worst ? e : worst;
                    }
        TH_CHECK(worst < 4e-6, "%s c%d->%d %dx%d pad %d,%d,%d,%d assign %d: input gradient "
                 "error %.3g", tag, s.c, s.oc, s.h, s.w, s.pt, s.pb, s.pl, s.pr, assign, worst);
    }
    bufs_free(&B);
}

#define SHAPE(N, C, H, W, OC, PT, PB, PL, PR)                                                   \
    (conv2d_shape_t){.n = N, .c = C, .h = H, .w = W, .oc = OC, .kh = 3, .kw = 3, .sh = 1,      \
                     .sw = 1, .pt = PT, .pb = PB, .pl = PL, .pr = PR}

static void test_wino_against_definition(void)
{
    if (!nn_gemm_avx512())
        TH_SKIP("this CPU has no AVX-512: Winograd's transforms are 16-lane code, the "
                "convolutions take the packed GEMM");
    check_shape(SHAPE(3, 8, 12, 12, 16, 1, 1, 1, 1), 0);   /* 'same', even */
    check_shape(SHAPE(2, 9, 11, 13, 10, 1, 1, 1, 1), 0);   /* odd: half tiles at the edges */
    check_shape(SHAPE(2, 16, 17, 17, 24, 0, 0, 0, 0), 0);  /* 'valid' (InceptionV3's stem) */
    check_shape(SHAPE(1, 12, 10, 15, 8, 2, 0, 0, 2), 0);   /* padding 2 and 0 */
    check_shape(SHAPE(1, 8, 9, 10, 9, 0, 2, 2, 1), 0);
    check_shape(SHAPE(2, 300, 10, 10, 20, 1, 1, 1, 1), 0); /* K across two depth blocks */
    check_shape(SHAPE(2, 20, 10, 10, 300, 1, 1, 1, 1), 0); /* and the input gradient's */
    check_shape(SHAPE(2, 24, 40, 36, 16, 1, 1, 1, 1), 1);  /* black border, flat block */
    check_shape(SHAPE(3, 64, 14, 14, 64, 1, 1, 1, 1), 1);  /* ResNet's 14 x 14 */
}

#define SHAPE_K(N, C, H, W, OC, KH, KW, PT, PB, PL, PR)                                        \
    (conv2d_shape_t){.n = N, .c = C, .h = H, .w = W, .oc = OC, .kh = KH, .kw = KW, .sh = 1,    \
                     .sw = 1, .pt = PT, .pb = PB, .pl = PL, .pr = PR}

/* F(2, 7) along the rows (1 x 7) and the columns (7 x 1). */
static void test_wino7_against_definition(void)
{
    if (!nn_gemm_avx512())
        TH_SKIP("this CPU has no AVX-512: Winograd's transforms are 16-lane code, the "
                "convolutions take the packed GEMM");
    check_shape(SHAPE_K(2, 16, 9, 18, 24, 1, 7, 0, 0, 3, 3), 0);    /* 'same', even width */
    check_shape(SHAPE_K(2, 16, 17, 9, 24, 7, 1, 3, 3, 0, 0), 0);    /* 'same', odd height */
    check_shape(SHAPE_K(1, 9, 5, 23, 10, 1, 7, 0, 0, 0, 6), 0);     /* padding 0 and 6 */
    check_shape(SHAPE_K(1, 10, 21, 6, 9, 7, 1, 6, 1, 0, 0), 0);
    check_shape(SHAPE_K(2, 12, 7, 13, 8, 1, 7, 0, 0, 0, 0), 0);     /* 'valid' */
    check_shape(SHAPE_K(2, 300, 6, 10, 20, 1, 7, 0, 0, 3, 3), 0);   /* K across depth blocks */
    check_shape(SHAPE_K(2, 20, 10, 6, 300, 7, 1, 3, 3, 0, 0), 0);   /* and the input gradient's */
    check_shape(SHAPE_K(3, 40, 18, 18, 48, 1, 7, 0, 0, 3, 3), 1);   /* black border, flat block */
    check_shape(SHAPE_K(3, 40, 17, 17, 48, 7, 1, 3, 3, 0, 0), 1);
    check_shape(SHAPE_K(2, 256, 17, 17, 32, 1, 7, 0, 0, 3, 3), 1);  /* blocks end inside runs */
    check_shape(SHAPE_K(2, 32, 17, 17, 256, 7, 1, 3, 3, 0, 0), 1);
}

/* F(2x2, 5x5): InceptionV3's 35 x 35 5 x 5 convolutions and the edges. */
static void test_wino5_against_definition(void)
{
    if (!nn_gemm_avx512())
        TH_SKIP("this CPU has no AVX-512: Winograd's transforms are 16-lane code, the "
                "convolutions take the packed GEMM");
    check_shape(SHAPE_K(2, 8, 12, 12, 16, 5, 5, 2, 2, 2, 2), 0);   /* 'same', even */
    check_shape(SHAPE_K(2, 9, 11, 13, 10, 5, 5, 2, 2, 2, 2), 0);   /* odd: half tiles */
    check_shape(SHAPE_K(2, 16, 15, 14, 12, 5, 5, 0, 0, 0, 0), 0);  /* 'valid' */
    check_shape(SHAPE_K(1, 12, 10, 15, 8, 5, 5, 4, 0, 0, 4), 0);   /* padding 4 and 0 */
    check_shape(SHAPE_K(1, 8, 9, 10, 9, 5, 5, 1, 3, 3, 1), 0);
    check_shape(SHAPE_K(2, 300, 9, 9, 20, 5, 5, 2, 2, 2, 2), 0);   /* K across depth blocks */
    check_shape(SHAPE_K(2, 20, 9, 9, 300, 5, 5, 2, 2, 2, 2), 0);   /* and the input gradient's */
    check_shape(SHAPE_K(2, 48, 35, 35, 64, 5, 5, 2, 2, 2, 2), 1);  /* InceptionV3, black border */
    check_shape(SHAPE_K(2, 24, 40, 36, 16, 5, 5, 2, 2, 2, 2), 1);  /* flat block */
}

/* Image 2 of a batch of 5 gives the same bits alone. */
static void test_wino_batch_independent(void)
{
    if (!nn_gemm_avx512())
        TH_SKIP("this CPU has no AVX-512: Winograd's transforms are 16-lane code");
    /* 256 channels: blocks of 64 tiles, so a 15 x 15 image (64 tiles) and a
     * 13 x 11 one (42 tiles) start blocks at different places in a batch */
    const conv2d_shape_t shapes[] = {SHAPE(5, 256, 15, 15, 40, 1, 1, 1, 1),
                                     SHAPE(5, 40, 13, 11, 256, 1, 1, 1, 1),
                                     SHAPE_K(5, 256, 17, 17, 40, 1, 7, 0, 0, 3, 3),
                                     SHAPE_K(5, 40, 15, 13, 256, 7, 1, 3, 3, 0, 0),
                                     SHAPE_K(5, 256, 15, 15, 40, 5, 5, 2, 2, 2, 2),
                                     SHAPE_K(5, 40, 13, 11, 256, 5, 5, 2, 2, 2, 2)};
    for (int k = 0; k < (int)(sizeof shapes / sizeof shapes[0]); k++) {
        conv2d_shape_t s = shapes[k], one = s;
        conv2d_shape_init(&s);
        one.n = 1;
        conv2d_shape_init(&one);
        bufs_t B;
        TH_CHECK(bufs_make(&B, &s) == 0, "allocation");
        const size_t in1 = (size_t)s.c * s.h * s.w, out1 = (size_t)s.oc * s.oh * s.ow;
        fill_radiograph(B.x, &s, 1);
        float *y1 = malloc(sizeof(float) * out1), *dx1 = malloc(sizeof(float) * in1);
        conv_wino_forward(&s, B.uf, B.x, B.b, 1, B.y, B.ws);
        conv_wino_forward(&one, B.uf, B.x + 2 * in1, B.b, 1, y1, B.ws);
        TH_CHECK(memcmp(y1, B.y + 2 * out1, sizeof(float) * out1) == 0,
                 "shape %d: forward of image 2 differs alone", k);
        conv_wino_backward_data(&s, B.ub, B.dy, B.dx, 1, B.ws);
        conv_wino_backward_data(&one, B.ub, B.dy + 2 * out1, dx1, 1, B.ws);
        TH_CHECK(memcmp(dx1, B.dx + 2 * in1, sizeof(float) * in1) == 0,
                 "shape %d: input gradient of image 2 differs alone", k);
        free(y1);
        free(dx1);
        bufs_free(&B);
    }
}

static void test_wino_wanted(void)
{
    if (!nn_gemm_avx512())
        TH_SKIP("this CPU has no AVX-512: Winograd's transforms are 16-lane code");
    conv2d_shape_t s = SHAPE(1, 64, 56, 56, 64, 1, 1, 1, 1);
    conv2d_shape_init(&s);
    TH_CHECK(conv_wino_wanted(&s, 0) && conv_wino_wanted(&s, 1), "ResNet's 56 x 56 3x3");
    conv2d_shape_t t = s;
    t.sh = t.sw = 2;
    conv2d_shape_init(&t);
    TH_CHECK(!conv_wino_wanted(&t, 0), "stride 2 is not Winograd's");
    t = SHAPE(1, 3, 224, 224, 64, 1, 1, 1, 1); /* an RGB stem: too few channels */
    conv2d_shape_init(&t);
    TH_CHECK(!conv_wino_wanted(&t, 0), "3 input channels");
    t = SHAPE(1, 512, 7, 7, 512, 1, 1, 1, 1);
    conv2d_shape_init(&t);
    TH_CHECK(!conv_wino_wanted(&t, 1), "7 x 7 outputs stay on the packed GEMM");
    t = SHAPE_K(1, 48, 35, 35, 64, 5, 5, 2, 2, 2, 2); /* InceptionV3's 5 x 5 */
    conv2d_shape_init(&t);
    TH_CHECK(conv_wino_wanted(&t, 0) && conv_wino_wanted(&t, 1), "5x5");
    t.pt = 5;
    conv2d_shape_init(&t);
    TH_CHECK(!conv_wino_wanted(&t, 0), "5x5 padded by 5");
    t = SHAPE_K(1, 48, 35, 35, 64, 5, 5, 2, 2, 2, 2);
    t.sh = t.sw = 2;
    conv2d_shape_init(&t);
    TH_CHECK(!conv_wino_wanted(&t, 0), "5x5 at stride 2");
    t = SHAPE_K(1, 160, 17, 17, 192, 1, 7, 0, 0, 3, 3); /* InceptionV3's 17 x 17 blocks */
    conv2d_shape_init(&t);
    TH_CHECK(conv_wino_wanted(&t, 0) && conv_wino_wanted(&t, 1), "1x7");
    t = SHAPE_K(1, 160, 17, 17, 192, 7, 1, 3, 3, 0, 0);
    conv2d_shape_init(&t);
    TH_CHECK(conv_wino_wanted(&t, 0) && conv_wino_wanted(&t, 1), "7x1");
    t = SHAPE_K(1, 160, 17, 17, 192, 1, 7, 1, 1, 3, 3);
    conv2d_shape_init(&t);
    TH_CHECK(!conv_wino_wanted(&t, 0), "1x7 padded across its axis");
    t = SHAPE_K(1, 160, 17, 17, 192, 7, 1, 3, 3, 0, 0);
    t.sh = 2;
    conv2d_shape_init(&t);
    TH_CHECK(!conv_wino_wanted(&t, 0), "7x1 at stride 2");
    t = SHAPE_K(1, 160, 17, 17, 192, 1, 5, 0, 0, 2, 2);
    conv2d_shape_init(&t);
    TH_CHECK(!conv_wino_wanted(&t, 0), "1x5");
}

/* Input gradients of ResNet-18 at 64 x 64 (its 16 x 16 3x3 convolutions take
 * the Winograd path): the fused pass and its input gradient against the
 * unfused forward and a training backward (im2col both ways). */
static void test_wino_model_gradient(void)
{
    if (!nn_gemm_avx512())
        TH_SKIP("this CPU has no AVX-512: Winograd's transforms are 16-lane code");
    nn_model_t *m = NULL;
    const int n = 2;
    TH_CHECK(zoo_build("resnet18", 64, 2, 7, &m) == 0 && m, "resnet18");
    if (!m)
        return;
    th_perturb_bn(m, 11);
    int wino = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        if (m->nodes[i].op != NN_CONV)
            continue;
        conv2d_shape_t s = conv_node_shape(m, &m->nodes[i], 1, 1);
        conv2d_shape_init(&s);
        wino += conv_wino_wanted(&s, 0);
    }
    TH_CHECK(wino == 4, "%d convolutions on the Winograd path, expected layer1's 4", wino);
    TH_CHECK(nn_model_prepare(m, n) == 0, "prepare");
    const size_t isz = nn_node_size(&m->nodes[0]);
    float *x = malloc(sizeof(float) * n * isz), *g_ref = malloc(sizeof(float) * n * isz);
    float *g_w = malloc(sizeof(float) * n * isz);
    fill_radiograph(x, &(conv2d_shape_t){.n = n, .c = 3, .h = 64, .w = 64}, 6);
    int targets[2] = {0, 1};
    nn_backward_opts_t train = {.input_grad = 1, .param_grads = 1}, infer = {.input_grad = 1};
    TH_CHECK(nn_forward(m, x, n, 0) == 0, "forward");
    TH_CHECK(nn_backward_logit(m, targets, g_ref, &train) == 0, "reference gradient");
    TH_CHECK(nn_forward_fused(m, x, n) == 0, "fused forward");
    TH_CHECK(nn_backward_logit(m, targets, g_w, &infer) == 0, "fused gradient");
    const double e = th_rel_err(g_w, g_ref, (size_t)n * isz);
    TH_CHECK(e < 2e-4 && e > 0.0, "ResNet-18 input gradient: Winograd against im2col %.3g", e);
    free(x);
    free(g_ref);
    free(g_w);
    nn_model_destroy(m);
}

int main(void)
{
    TH_RUN(test_wino_against_definition);
    TH_RUN(test_wino5_against_definition);
    TH_RUN(test_wino7_against_definition);
    TH_RUN(test_wino_batch_independent);
    TH_RUN(test_wino_wanted);
    TH_RUN(test_wino_model_gradient);
    return th_report();
}
