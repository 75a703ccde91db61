/*
 * test_pool.c - the vectorized average and max pooling (nn/pool.c, and its
 * AVX-512 forms in nn/pool_simd.c) against a loop over one output at a time,
 * bit for bit.
 *
 * The reference below is the per-output loop the engine used before: each
 * output sums its window row by row, left to right, and divides by the window
 * count; the backward visits the outputs in raster order and adds dy/divisor
 * to every cell of the window. The vectorized kernels must give the same bits
 * (same additions in the same order), forward and backward, with
 * count_include_pad on and off, ceil_mode on and off, on odd sizes, strides,
 * asymmetric pads and windows wider than the image. Max pooling: the first
 * maximal cell of the window in scan order, its value and its offset, and
 * the backward adding dy to that cell in output order. The overwriting
 * backwards (assign) must give the bits of the accumulating ones onto zeros.
 */
#include <stdint.h>
#include <string.h>

#include "nn/layers.h"
#include "rng.h"
#include "testhelp.h"

static void ref_window(const pool_shape_t *s, int oy, int ox, int *ya, int *yb, int *xa, int *xb,
                       float *divisor)
{
    int y0 = oy * s->sh - s->pt, x0 = ox * s->sw - s->pl;
    int y1 = y0 + s->kh, x1 = x0 + s->kw;
    int py1 = y1 < s->h + s->pb ? y1 : s->h + s->pb, px1 = x1 < s->w + s->pr ? x1 : s->w + s->pr;
    int padded = (py1 - y0) * (px1 - x0);
    *ya = y0 < 0 ? 0 : y0;
    *xa = x0 < 0 ? 0 : x0;
    *yb = y1 > s->h ? s->h : y1;
    *xb = x1 > s->w ? s->w : x1;
    int inside = (*yb - *ya) * (*xb - *xa);
    *divisor = (float)(s->count_include_pad ? padded : inside);
    if (*divisor <= 0.0f)
        *divisor = 1.0f;
}

static void ref_forward(const pool_shape_t *s, const float *x, float *y)
{
    for (size_t pl = 0; pl < (size_t)s->n * s->c; pl++) {
        const float *xp = x + pl * s->h * s->w;
        float *yp = y + pl * s->oh * s->ow;
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++) {
                int ya, yb, xa, xb;
                float div;
                ref_window(s, oy, ox, &ya, &yb, &xa, &xb, &div);
                float acc = 0.0f;
                for (int iy = ya; iy < yb; iy++)
                    for (int ix = xa; ix < xb; ix++)
                        acc += xp[iy * s->w + ix];
                yp[oy * s->ow + ox] = acc / div;
            }
    }
}

static void ref_backward(const pool_shape_t *s, const float *dy, float *dx)
{
    for (size_t pl = 0; pl < (size_t)s->n * s->c; pl++) {
        float *dxp = dx + pl * s->h * s->w;
        const float *dyp = dy + pl * s->oh * s->ow;
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++) {
                int ya, yb, xa, xb;
                float div;
                ref_window(s, oy, ox, &ya, &yb, &xa, &xb, &div);
                float g = dyp[oy * s->ow + ox] / div;
                for (int iy = ya; iy < yb; iy++)
                    for (int ix = xa; ix < xb; ix++)
                        dxp[iy * s->w + ix] += g;
            }
    }
}

static void ref_maxpool(const pool_shape_t *s, const float *x, float *y, int32_t *argmax)
{
    for (size_t pl = 0; pl < (size_t)s->n * s->c; pl++) {
        const float *xp = x + pl * s->h * s->w;
        for (int oy = 0; oy < s->oh; oy++)
            for (int ox = 0; ox < s->ow; ox++) {
                int32_t where = -1;
                for (int ky = 0; ky < s->kh; ky++)
                    for (int kx = 0; kx < s->kw; kx++) {
                        int iy = oy * s->sh - s->pt + ky, ix = ox * s->sw - s->pl + kx;
                        if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                            continue;
                        if (where < 0 || xp[iy * s->w + ix] > xp[where])
                            where = iy * s->w + ix;
                    }
                size_t at = pl * s->oh * s->ow + (size_t)oy * s->ow + ox;
                argmax[at] = where;
                y[at] = where < 0 ? 0.0f : xp[where];
            }
    }
}

static void ref_maxpool_backward(const pool_shape_t *s, const float *dy, const int32_t *argmax,
                                 float *dx)
{
    for (size_t pl = 0; pl < (size_t)s->n * s->c; pl++)
        for (size_t k = 0; k < (size_t)s->oh * s->ow; k++) {
            size_t at = pl * s->oh * s->ow + k;
            if (argmax[at] >= 0)
                dx[pl * s->h * s->w + argmax[at]] += dy[at];
        }
}

/* Values of several magnitudes, so that the order of additions shows in the bits. */
static void fill(rng_stream_t *rs, float *v, size_t count)
{
    for (size_t i = 0; i < count; i++)
        v[i] = (float)(rng_stream_normal(rs) * (i % 7 == 0 ? 1e3 : i % 3 == 0 ? 1e-3 : 1.0));
}

/* One shape: forward and backward against the reference; 1 when identical. */
static int check_shape(pool_shape_t s, rng_stream_t *rs, int *ran)
{
    if (pool_shape_init(&s) < 0)
        return 1; /* a window that does not fit: not a shape to compare */
    (*ran)++;
    const size_t nx = (size_t)s.n * s.c * s.h * s.w, ny = (size_t)s.n * s.c * s.oh * s.ow;
    float *x = malloc(sizeof(float) * nx), *y = malloc(sizeof(float) * ny);
    float *y_ref = malloc(sizeof(float) * ny), *dy = malloc(sizeof(float) * ny);
    float *dx = malloc(sizeof(float) * nx), *dx_ref = malloc(sizeof(float) * nx);
    fill(rs, x, nx);
    fill(rs, dy, ny);
    fill(rs, dx, nx); /* backward accumulates: start from an earlier contribution */
    memcpy(dx_ref, dx, sizeof(float) * nx);
    avgpool_forward(&s, x, y);
    ref_forward(&s, x, y_ref);
    avgpool_backward(&s, dy, dx);
    ref_backward(&s, dy, dx_ref);
    int same = !memcmp(y, y_ref, sizeof(float) * ny) && !memcmp(dx, dx_ref, sizeof(float) * nx);
    /* overwriting backward: the reference onto zeros, dx full of stale values */
    fill(rs, dx, nx);
    memset(dx_ref, 0, sizeof(float) * nx);
    avgpool_backward_assign(&s, dy, dx);
    ref_backward(&s, dy, dx_ref);
    same = same && !memcmp(dx, dx_ref, sizeof(float) * nx);
    /* max pooling; a few exact ties, so the first-maximum rule shows */
    for (size_t i = 0; i < nx; i += 5)
        x[i] = x[i / 2];
    int32_t *am = malloc(sizeof(int32_t) * ny), *am_ref = malloc(sizeof(int32_t) * ny);
    maxpool_forward(&s, x, y, am);
    ref_maxpool(&s, x, y_ref, am_ref);
    same = same && !memcmp(y, y_ref, sizeof(float) * ny) &&
           !memcmp(am, am_ref, sizeof(int32_t) * ny);
    fill(rs, dx, nx);
    memcpy(dx_ref, dx, sizeof(float) * nx);
    maxpool_backward(&s, dy, am, dx);
    ref_maxpool_backward(&s, dy, am_ref, dx_ref);
    same = same && !memcmp(dx, dx_ref, sizeof(float) * nx);
    fill(rs, dx, nx);
    memset(dx_ref, 0, sizeof(float) * nx);
    maxpool_backward_assign(&s, dy, am, dx);
    ref_maxpool_backward(&s, dy, am_ref, dx_ref);
    same = same && !memcmp(dx, dx_ref, sizeof(float) * nx);
    free(am);
    free(am_ref);
    if (!same)
        printf("    differs: n=%d c=%d %dx%d k=%dx%d s=%dx%d pad=%d,%d,%d,%d ceil=%d cip=%d\n",
               s.n, s.c, s.h, s.w, s.kh, s.kw, s.sh, s.sw, s.pt, s.pb, s.pl, s.pr, s.ceil_mode,
               s.count_include_pad);
    free(x);
    free(y);
    free(y_ref);
    free(dy);
    free(dx);
    free(dx_ref);
    return same;
}

/* The pools of the zoo and of imported models: Keras InceptionV3's 3x3 "same"
 * (count_include_pad 0), torchvision InceptionV3's 3x3 pad 1 (count_include_pad
 * 1), DenseNet's 2x2 stride 2 transitions, at their sizes and at odd ones. */
static void test_pool_zoo_shapes(void)
{
    const pool_shape_t shapes[] = {
        {.n = 2, .c = 3, .h = 35, .w = 35, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .pt = 1, .pb = 1,
         .pl = 1, .pr = 1, .count_include_pad = 0},
        {.n = 2, .c = 3, .h = 35, .w = 35, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .pt = 1, .pb = 1,
         .pl = 1, .pr = 1, .count_include_pad = 1},
        {.n = 1, .c = 2, .h = 17, .w = 17, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .pt = 1, .pb = 1,
         .pl = 1, .pr = 1, .count_include_pad = 0},
        {.n = 1, .c = 2, .h = 8, .w = 8, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .pt = 1, .pb = 1,
         .pl = 1, .pr = 1, .count_include_pad = 1},
        {.n = 2, .c = 2, .h = 56, .w = 56, .kh = 2, .kw = 2, .sh = 2, .sw = 2},
        {.n = 1, .c = 2, .h = 7, .w = 7, .kh = 2, .kw = 2, .sh = 2, .sw = 2, .ceil_mode = 1},
        {.n = 1, .c = 1, .h = 150, .w = 147, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .pt = 1,
         .pb = 1, .pl = 1, .pr = 1, .count_include_pad = 1}, /* more than one chunk of lanes */
        /* the max pools of the stems: 3x3 stride 2, unpadded (InceptionV3) and padded 1 */
        {.n = 1, .c = 2, .h = 147, .w = 147, .kh = 3, .kw = 3, .sh = 2, .sw = 2},
        {.n = 2, .c = 2, .h = 112, .w = 112, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .pt = 1,
         .pb = 1, .pl = 1, .pr = 1},
        /* 1x1 planes, 1x1 windows, a window wider than the vector kernels take (17),
         * an output plane larger than their backward's scratch (130 x 130) */
        {.n = 3, .c = 2, .h = 1, .w = 1, .kh = 1, .kw = 1, .sh = 1, .sw = 1},
        {.n = 1, .c = 2, .h = 1, .w = 1, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .pt = 1, .pb = 1,
         .pl = 1, .pr = 1, .count_include_pad = 1},
        {.n = 1, .c = 1, .h = 9, .w = 40, .kh = 3, .kw = 17, .sh = 1, .sw = 2, .pl = 8, .pr = 8},
        {.n = 1, .c = 1, .h = 131, .w = 130, .kh = 2, .kw = 1, .sh = 1, .sw = 1},
    };
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(19, "test_pool"), 1, 0, 0);
    int ran = 0, same = 0;
    const int count = (int)(sizeof shapes / sizeof shapes[0]);
    for (int i = 0; i < count; i++)
        same += check_shape(shapes[i], &rs, &ran);
    TH_EQ_INT(ran, count);
    TH_EQ_INT(same, count);
}

/* Random shapes: odd sizes, kernels 1-5 (wider than the image too), strides
 * 1-3, asymmetric pads, both ceil modes, both divisors. */
static void test_pool_random_shapes(void)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(19, "test_pool"), 2, 0, 0);
    int ran = 0, same = 0, tried = 0;
    for (int t = 0; t < 600; t++) {
        pool_shape_t s = {0};
        s.n = 1 + (int)(rng_stream_uniform(&rs) * 2);
        s.c = 1 + (int)(rng_stream_uniform(&rs) * 3);
        s.h = 1 + (int)(rng_stream_uniform(&rs) * 23);
        s.w = 1 + (int)(rng_stream_uniform(&rs) * (t % 10 == 0 ? 140 : 23));
        s.kh = 1 + (int)(rng_stream_uniform(&rs) * 5);
        s.kw = 1 + (int)(rng_stream_uniform(&rs) * (t % 25 == 0 ? 20 : 5));
        s.sh = 1 + (int)(rng_stream_uniform(&rs) * 3);
        s.sw = 1 + (int)(rng_stream_uniform(&rs) * 3);
        s.pt = (int)(rng_stream_uniform(&rs) * s.kh);
        s.pb = (int)(rng_stream_uniform(&rs) * s.kh);
        s.pl = (int)(rng_stream_uniform(&rs) * s.kw);
        s.pr = (int)(rng_stream_uniform(&rs) * s.kw);
        s.ceil_mode = rng_stream_uniform(&rs) < 0.5;
        s.count_include_pad = rng_stream_uniform(&rs) < 0.5;
        tried++;
        same += check_shape(s, &rs, &ran);
    }
    TH_CHECK(ran > 400, "only %d of %d random shapes fit", ran, tried);
    TH_EQ_INT(same, tried);
}

/* A known value, so that the reference itself is checked: the 3x3 average of
 * 1..9 padded by one cell is 45/9 = 5 at the centre, and at a corner 12/4
 * (in-image cells) or 12/9 (count_include_pad). */
static void test_pool_known_values(void)
{
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, y[9];
    pool_shape_t s = {.n = 1, .c = 1, .h = 3, .w = 3, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
                      .pt = 1, .pb = 1, .pl = 1, .pr = 1};
    TH_EQ_INT(pool_shape_init(&s), 0);
    avgpool_forward(&s, x, y);
    TH_NEAR(y[4], 5.0, 0, 0);
    TH_NEAR(y[0], 12.0f / 4.0f, 0, 0);
    s.count_include_pad = 1;
    avgpool_forward(&s, x, y);
    TH_NEAR(y[0], 12.0f / 9.0f, 0, 0);
    float dy[9] = {9, 0, 0, 0, 0, 0, 0, 0, 0}, dx[9] = {0};
    avgpool_backward(&s, dy, dx);
    TH_NEAR(dx[0], 1.0, 0, 0);
    TH_NEAR(dx[4], 1.0, 0, 0);
    TH_NEAR(dx[2], 0.0, 0, 0);
}

int main(void)
{
    TH_RUN(test_pool_known_values);
    TH_RUN(test_pool_zoo_shapes);
    TH_RUN(test_pool_random_shapes);
    return th_report();
}
