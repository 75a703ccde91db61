/*
 * test_assign.c - the backward kernels that write a first contribution
 * (layers.h: conv2d_backward_data, maxpool/avgpool/gap_backward_assign)
 * against their accumulating forms run onto a zeroed buffer, bit for bit.
 *
 * The engine calls the writing forms when a gradient buffer holds nothing yet
 * in a pass (nn_grad_dst), instead of zeroing the whole buffer first: the
 * results must be the same bits, signed zeros included. The buffer starts
 * filled with garbage, so a cell the writing form forgets shows.
 */
#include <stdint.h>
#include <string.h>

#include "nn/layers.h"
#include "rng.h"
#include "testhelp.h"

static void fill(rng_stream_t *rs, float *v, size_t count)
{
    for (size_t i = 0; i < count; i++)
        v[i] = (float)(rng_stream_normal(rs) * (i % 5 == 0 ? 1e2 : 1.0));
    if (count > 3)
        v[3] = -0.0f; /* a negative zero: 0 + (-0) is +0, a plain copy would keep -0 */
}

static void garbage(float *v, size_t count)
{
    for (size_t i = 0; i < count; i++)
        v[i] = 1e30f;
}

/* The same bits: the writing form over garbage, the accumulating form over zeros. */
static int same_bits(const float *a, const float *b, size_t count)
{
    return !memcmp(a, b, sizeof(float) * count);
}

static void test_assign_conv(void)
{
    /* 3x3 same, 1x1 pointwise, strided 3x3 with uncovered pixels, 7x7/2 */
    const conv2d_shape_t shapes[] = {
        {.n = 2, .c = 5, .h = 9, .w = 11, .oc = 6, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .pt = 1,
         .pb = 1, .pl = 1, .pr = 1},
        {.n = 2, .c = 7, .h = 6, .w = 5, .oc = 4, .kh = 1, .kw = 1, .sh = 1, .sw = 1},
        {.n = 1, .c = 3, .h = 10, .w = 9, .oc = 2, .kh = 1, .kw = 1, .sh = 3, .sw = 3},
        {.n = 1, .c = 3, .h = 15, .w = 13, .oc = 4, .kh = 7, .kw = 7, .sh = 2, .sw = 2, .pt = 3,
         .pb = 3, .pl = 3, .pr = 3},
    };
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(19, "test_assign"), 1, 0, 0);
    const int count = (int)(sizeof shapes / sizeof shapes[0]);
    int same = 0;
    for (int i = 0; i < count; i++) {
        conv2d_shape_t s = shapes[i];
        TH_EQ_INT(conv2d_shape_init(&s), 0);
        const size_t nx = (size_t)s.n * s.c * s.h * s.w, ny = (size_t)s.n * s.oc * s.oh * s.ow;
        const size_t nw = (size_t)s.oc * s.c * s.kh * s.kw;
        const size_t ncol = conv2d_workspace(&s) ? conv2d_workspace(&s) : 1;
        float *x = malloc(sizeof(float) * nx), *W = malloc(sizeof(float) * nw);
        float *dy = malloc(sizeof(float) * ny), *col = malloc(sizeof(float) * ncol);
        float *dx_acc = calloc(nx, sizeof(float)), *dx_set = malloc(sizeof(float) * nx);
        fill(&rs, x, nx);
        fill(&rs, W, nw);
        fill(&rs, dy, ny);
        garbage(dx_set, nx);
        conv2d_backward(&s, x, W, dy, dx_acc, NULL, NULL, col);
        conv2d_backward_data(&s, W, dy, dx_set, 1, col);
        same += same_bits(dx_set, dx_acc, nx);
        /* and the accumulating form of conv2d_backward_data adds onto what is there */
        conv2d_backward(&s, x, W, dy, dx_acc, NULL, NULL, col);
        conv2d_backward_data(&s, W, dy, dx_set, 0, col);
        same += same_bits(dx_set, dx_acc, nx);
        free(x);
        free(W);
        free(dy);
        free(col);
        free(dx_acc);
        free(dx_set);
    }
    TH_EQ_INT(same, 2 * count);
}

static void test_assign_pools(void)
{
    const pool_shape_t shapes[] = {
        {.n = 2, .c = 3, .h = 17, .w = 17, .kh = 3, .kw = 3, .sh = 2, .sw = 2},
        {.n = 2, .c = 3, .h = 35, .w = 35, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .pt = 1, .pb = 1,
         .pl = 1, .pr = 1, .count_include_pad = 1},
        {.n = 1, .c = 2, .h = 9, .w = 7, .kh = 2, .kw = 2, .sh = 3, .sw = 3}, /* gaps */
        {.n = 1, .c = 2, .h = 7, .w = 7, .kh = 3, .kw = 3, .sh = 2, .sw = 2, .ceil_mode = 1},
    };
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(19, "test_assign"), 2, 0, 0);
    const int count = (int)(sizeof shapes / sizeof shapes[0]);
    int same = 0;
    for (int i = 0; i < count; i++) {
        pool_shape_t s = shapes[i];
        TH_EQ_INT(pool_shape_init(&s), 0);
        const size_t nx = (size_t)s.n * s.c * s.h * s.w, ny = (size_t)s.n * s.c * s.oh * s.ow;
        float *x = malloc(sizeof(float) * nx), *y = malloc(sizeof(float) * ny);
        float *dy = malloc(sizeof(float) * ny);
        int32_t *argmax = malloc(sizeof(int32_t) * ny);
        float *dx_acc = calloc(nx, sizeof(float)), *dx_set = malloc(sizeof(float) * nx);
        fill(&rs, x, nx);
        fill(&rs, dy, ny);
        maxpool_forward(&s, x, y, argmax);
        garbage(dx_set, nx);
        maxpool_backward(&s, dy, argmax, dx_acc);
        maxpool_backward_assign(&s, dy, argmax, dx_set);
        same += same_bits(dx_set, dx_acc, nx);
        memset(dx_acc, 0, sizeof(float) * nx);
        garbage(dx_set, nx);
        avgpool_backward(&s, dy, dx_acc);
        avgpool_backward_assign(&s, dy, dx_set);
        same += same_bits(dx_set, dx_acc, nx);
        /* GAP over the same planes */
        const int hw = s.h * s.w;
        memset(dx_acc, 0, sizeof(float) * nx);
        garbage(dx_set, nx);
        gap_backward(s.n, s.c, hw, dy, dx_acc);
        gap_backward_assign(s.n, s.c, hw, dy, dx_set);
        same += same_bits(dx_set, dx_acc, nx);
        free(x);
        free(y);
        free(dy);
        free(argmax);
        free(dx_acc);
        free(dx_set);
    }
    TH_EQ_INT(same, 3 * count);
}

int main(void)
{
    TH_RUN(test_assign_conv);
    TH_RUN(test_assign_pools);
    return th_report();
}
