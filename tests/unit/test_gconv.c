/*
 * test_gconv.c - grouped and depthwise convolution (nn/ops/gconv.c), the
 * channel slice (ops/chslice.c) and the channel shuffle (ops/shuffle.c).
 *
 * Each convolution case (depthwise with and without a channel multiplier,
 * asymmetric padding, strides 1 and 2, 5x5 kernels; grouped 3x3 and 1x1)
 * checks forward, input gradient and weight and bias gradients against
 * PyTorch float64 conv2d(groups=...) (tests/ref/gconv_torch_ref.py) and
 * against central finite differences; the slice and shuffle against their
 * definitions (torch's view-transpose-view order) and the adjoint identity;
 * a model file keeps groups and slice bounds. The stride-2 depthwise kernels
 * also equal the definition's loops bit for bit.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/modelfile.h"
#include "nn/op.h"
#include "nnhelp.h"
#include "rng.h"
#include "sc.h"
#include "testhelp.h"

typedef struct gcase {
    const char *name;
    int n, c, h, w, oc, groups, kh, kw, sh, sw, pad[4], bias;
} gcase_t;

static const gcase_t cases[] = {
    {"dw3", 1, 4, 7, 6, 4, 4, 3, 3, 1, 1, {1, 1, 1, 1}, 1},
    {"dw3_mult2_s2", 2, 3, 9, 8, 6, 3, 3, 3, 2, 2, {0, 1, 1, 0}, 0},
    {"dw5_s2", 1, 5, 10, 11, 5, 5, 5, 5, 2, 2, {2, 2, 2, 2}, 1},
    {"grouped3_s2", 2, 8, 9, 9, 12, 4, 3, 3, 2, 2, {1, 1, 1, 1}, 1},
    {"grouped1x1", 1, 6, 5, 5, 4, 2, 1, 1, 1, 1, {0, 0, 0, 0}, 0},
    {"grouped8_s2", 1, 48, 16, 16, 48, 6, 3, 3, 2, 2, {1, 1, 1, 1}, 1},
    /* the register-blocked stride-1 kernel: rows and columns past whole blocks, asymmetric
     * and zero padding, a channel multiplier, 7x7 on 7-, 14- and 19-wide planes */
    {"dw7_s1", 2, 3, 14, 19, 3, 3, 7, 7, 1, 1, {3, 3, 3, 3}, 1},
    {"dw7_s1_w7", 1, 4, 7, 7, 4, 4, 7, 7, 1, 1, {3, 3, 3, 3}, 1},
    {"dw5_s1_asym", 1, 2, 9, 13, 4, 2, 5, 5, 1, 1, {1, 3, 4, 0}, 0},
    {"dw3_s1_valid", 1, 3, 6, 17, 3, 3, 3, 3, 1, 1, {0, 0, 0, 0}, 1},
    {"dw3x5_s1", 1, 2, 8, 10, 2, 2, 3, 5, 1, 1, {1, 1, 2, 2}, 1},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* A model with one gconv node, random weights, bias and input; NULL on failure. */
static nn_model_t *case_model(const gcase_t *t, float **x, float **r, size_t *n_x, size_t *n_y)
{
    nn_model_t *m = nn_model_create(t->c, t->h, t->w);
    if (!m || nn_add_gconv(m, "gconv", 0, t->oc, t->groups, t->kh, t->kw, t->sh, t->sw, t->pad,
                           t->bias) < 0 ||
        nn_model_finalize(m, 3) < 0 || nn_model_prepare(m, t->n) < 0) {
        nn_model_destroy(m);
        return NULL;
    }
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(17, t->name), 0, 0, 0);
    size_t count;
    float *b = nn_param(m, 1, NN_P_BIAS, &count);
    for (size_t i = 0; b && i < count; i++)
        b[i] = (float)(rng_stream_uniform(&rs) - 0.5);
    *n_x = (size_t)t->n * nn_node_size(&m->nodes[0]);
    *n_y = (size_t)t->n * nn_node_size(&m->nodes[1]);
    *x = malloc(sizeof(float) * *n_x);
    *r = malloc(sizeof(float) * *n_y);
    for (size_t i = 0; i < *n_x; i++)
        (*x)[i] = (float)(2.0 * rng_stream_uniform(&rs) - 1.0);
    for (size_t i = 0; i < *n_y; i++)
        (*r)[i] = (float)(2.0 * rng_stream_uniform(&rs) - 1.0);
    return m;
}

static double loss(nn_model_t *m, int n, const float *x, const float *r, size_t n_y)
{
    nn_forward(m, x, n, 0);
    double L = 0.0;
    for (size_t i = 0; i < n_y; i++)
        L += (double)r[i] * nn_output(m)[i];
    return L;
}

/* Central differences of L = sum(r * y) in x, W and b against the backward pass. */
static void test_gconv_finite_differences(void)
{
    for (int k = 0; k < N_CASES; k++) {
        const gcase_t *t = &cases[k];
        float *x, *r;
        size_t n_x, n_y, n_w, n_b = 0;
        nn_model_t *m = case_model(t, &x, &r, &n_x, &n_y);
        TH_CHECK(m, "case %s builds", t->name);
        if (!m)
            continue;
        float *dx = malloc(sizeof(float) * n_x);
        float *W = nn_param(m, 1, NN_P_WEIGHT, &n_w), *b = nn_param(m, 1, NN_P_BIAS, &n_b);
        memset(m->grads, 0, sizeof(float) * m->n_params);
        nn_forward(m, x, t->n, 0);
        nn_backward_opts_t o = {.input_grad = 1, .param_grads = 1};
        nn_backward(m, 1, r, dx, &o);
        const float *dW = nn_param_grad(m, 1, NN_P_WEIGHT), *db = nn_param_grad(m, 1, NN_P_BIAS);
        const float eps = 1e-2f;
        int bad = 0, checked = 0;
        /* every weight and bias, every third input value (the loss is linear in each) */
        struct { float *v; const float *g; size_t count, step; const char *what; } sets[3] = {
            {x, dx, n_x, 3, "x"}, {W, dW, n_w, 1, "W"}, {b, db, n_b, 1, "b"}};
        for (int s = 0; s < 3; s++) {
            for (size_t i = 0; sets[s].v && i < sets[s].count; i += sets[s].step) {
                float keep = sets[s].v[i];
                sets[s].v[i] = keep + eps;
                double lp = loss(m, t->n, x, r, n_y);
                sets[s].v[i] = keep - eps;
                double lm = loss(m, t->n, x, r, n_y);
                sets[s].v[i] = keep;
                double fd = (lp - lm) / (2.0 * eps);
                checked++;
                if (fabs(fd - sets[s].g[i]) > 1e-3 * fabs(fd) + 1e-3 && bad++ < 3)
                    printf("    %s: d%s[%zu] analytic %.7g, finite difference %.7g\n", t->name,
                           sets[s].what, i, sets[s].g[i], fd);
            }
        }
        TH_CHECK(bad == 0, "%s: %d of %d gradients off", t->name, bad, checked);
        free(dx);
        free(x);
        free(r);
        nn_model_destroy(m);
    }
}

static void test_gconv_matches_torch(void)
{
    if (!th_python_has("torch, numpy"))
        TH_SKIP("python3-torch not installed for %s", th_python());
    char cmd[4096], path[512];
    int off = snprintf(cmd, sizeof cmd, "%s tests/ref/gconv_torch_ref.py %s", th_python(),
                       th_tmp_dir());
    nn_model_t *models[N_CASES] = {0};
    float *xs[N_CASES] = {0}, *rs[N_CASES] = {0};
    size_t n_x[N_CASES], n_y[N_CASES];
    for (int k = 0; k < N_CASES; k++) {
        const gcase_t *t = &cases[k];
        models[k] = case_model(t, &xs[k], &rs[k], &n_x[k], &n_y[k]);
        TH_CHECK(models[k], "case %s builds", t->name);
        if (!models[k])
            return;
        size_t n_w, n_b;
        const float *W = nn_param(models[k], 1, NN_P_WEIGHT, &n_w);
        const float *b = nn_param(models[k], 1, NN_P_BIAS, &n_b);
        const char *suffix[4] = {"x", "w", "b", "r"};
        const float *data[4] = {xs[k], W, b, rs[k]};
        const size_t count[4] = {n_x[k], n_w, n_b, n_y[k]};
        for (int f = 0; f < 4; f++) {
            if (!data[f])
                continue;
            snprintf(path, sizeof path, "%s/gconv_%s.%s.f32", th_tmp_dir(), t->name, suffix[f]);
            TH_CHECK(th_write_f32(path, data[f], count[f]) == 0, "write %s", path);
        }
        off += snprintf(cmd + off, sizeof cmd - off, " %s:%d:%d:%d:%d:%d:%d:%d:%d:%d:%d:%d:%d:%d:"
                        "%d:%d", t->name, t->n, t->c, t->h, t->w, t->oc, t->groups, t->kh, t->kw,
                        t->sh, t->sw, t->pad[0], t->pad[1], t->pad[2], t->pad[3], t->bias);
    }
    TH_CHECK(system(cmd) == 0, "reference script failed: %s", cmd);
    for (int k = 0; k < N_CASES; k++) {
        const gcase_t *t = &cases[k];
        nn_model_t *m = models[k];
        size_t n_w, n_b = 0;
        nn_param(m, 1, NN_P_WEIGHT, &n_w);
        nn_param(m, 1, NN_P_BIAS, &n_b);
        const size_t total = n_y[k] + n_x[k] + n_w + n_b;
        double *ref = malloc(sizeof(double) * total);
        snprintf(path, sizeof path, "%s/gconv_%s.ref.f64", th_tmp_dir(), t->name);
        FILE *f = fopen(path, "rb");
        size_t got = f ? fread(ref, sizeof(double), total, f) : 0;
        if (f)
            fclose(f);
        TH_CHECK(got == total, "%s: %zu of %zu reference values", t->name, got, total);
        float *dx = malloc(sizeof(float) * n_x[k]);
        memset(m->grads, 0, sizeof(float) * m->n_params);
        nn_forward(m, xs[k], t->n, 0);
        nn_backward_opts_t o = {.input_grad = 1, .param_grads = 1};
        nn_backward(m, 1, rs[k], dx, &o);
        const float *parts[4] = {nn_output(m), dx, nn_param_grad(m, 1, NN_P_WEIGHT),
                                 nn_param_grad(m, 1, NN_P_BIAS)};
        const size_t counts[4] = {n_y[k], n_x[k], n_w, n_b};
        const char *names[4] = {"y", "dx", "dW", "db"};
        size_t at = 0;
        for (int p = 0; p < 4 && got == total; p++) {
            double num = 0.0, den = 0.0;
            for (size_t i = 0; i < counts[p]; i++) {
                num = fmax(num, fabs(parts[p][i] - ref[at + i]));
                den = fmax(den, fabs(ref[at + i]));
            }
            at += counts[p];
            if (!counts[p])
                continue;
            TH_CHECK(num <= 2e-6 * den, "%s: %s max error %.3g of scale %.3g", t->name, names[p],
                     num, den);
        }
        free(dx);
        free(ref);
    }
    for (int k = 0; k < N_CASES; k++) {
        nn_model_destroy(models[k]);
        free(xs[k]);
        free(rs[k]);
    }
}

/* Channel slice and shuffle against their definitions; backward is the adjoint. */
static void test_slice_and_shuffle(void)
{
    enum { C = 6, H = 2, W = 3, HW = H * W, N = 2 };
    nn_model_t *m = nn_model_create(C, H, W);
    nn_node_t sl = {.out_c = 4, .ch_start = 1}, sh = {.groups = 2};
    int in = 0;
    int s = nn_add_node(m, "slice", NN_CHSLICE, 1, &in, &sl);
    int q = nn_add_node(m, "shuffle", NN_SHUFFLE, 1, &in, &sh);
    int both[2] = {s, q};
    nn_node_t bad = {.out_c = 4, .ch_start = 3};
    TH_CHECK(nn_add_node(m, "bad", NN_CHSLICE, 1, &in, &bad) < 0, "slice past the channels");
    int cat = nn_add_concat(m, "cat", 2, both);
    TH_CHECK(cat > 0 && nn_model_finalize(m, 1) == 0 && nn_model_prepare(m, N) == 0, "build");
    float x[N * C * HW], r[N * 10 * HW], dx[N * C * HW];
    for (int i = 0; i < N * C * HW; i++)
        x[i] = (float)(i * 7 % 23) - 11.0f;
    for (int i = 0; i < N * 10 * HW; i++)
        r[i] = (float)(i * 5 % 13) - 6.0f;
    nn_forward(m, x, N, 0);
    /* view [2, 3] transposed to [3, 2]: output channels come from 0, 3, 1, 4, 2, 5 */
    const int order[C] = {0, 3, 1, 4, 2, 5};
    int wrong = 0;
    for (int b = 0; b < N; b++) {
        const float *y = nn_output(m) + b * 10 * HW, *xb = x + b * C * HW;
        for (int k = 0; k < 4 * HW; k++)
            wrong += y[k] != xb[HW + k];
        for (int k = 0; k < C; k++)
            for (int j = 0; j < HW; j++)
                wrong += y[(4 + k) * HW + j] != xb[order[k] * HW + j];
    }
    TH_EQ_INT(wrong, 0);
    nn_backward_opts_t o = {.input_grad = 1};
    nn_backward(m, cat, r, dx, &o);
    double lhs = 0.0, rhs = 0.0;
    for (int i = 0; i < N * 10 * HW; i++)
        lhs += (double)r[i] * nn_output(m)[i];
    for (int i = 0; i < N * C * HW; i++)
        rhs += (double)dx[i] * x[i];
    TH_NEAR(rhs, lhs, 0, 1e-9);
    nn_model_destroy(m);
}

/* A model file keeps gconv groups, slice bounds and shuffle groups. */
static void test_model_file_keeps_attrs(void)
{
    nn_model_t *m = nn_model_create(4, 9, 9), *back = NULL;
    int pad[4] = {1, 1, 1, 1};
    int g = nn_add_gconv(m, "dw", 0, 8, 4, 3, 3, 2, 2, pad, 1);
    int p = nn_add_gconv(m, "grouped", g, 6, 2, 1, 1, 1, 1, NULL, 0);
    nn_node_t sl = {.out_c = 4, .ch_start = 2}, sh = {.groups = 3};
    int s = nn_add_node(m, "slice", NN_CHSLICE, 1, &p, &sl);
    int q = nn_add_node(m, "shuffle", NN_SHUFFLE, 1, &p, &sh);
    int both[2] = {s, q};
    nn_add_concat(m, "cat", 2, both);
    TH_CHECK(nn_model_finalize(m, 5) == 0 && nn_model_prepare(m, 1) == 0, "build");
    char path[512];
    snprintf(path, sizeof path, "%s/gconv_model.h5", th_tmp_dir());
    TH_CHECK(modelfile_save(path, m, NULL) == 0, "save %s", path);
    TH_CHECK(modelfile_load(path, &back) == 0 && back, "load %s", path);
    if (!back) {
        nn_model_destroy(m);
        return;
    }
    TH_CHECK(nn_model_prepare(back, 1) == 0, "prepare");
    float x[4 * 81];
    for (int i = 0; i < 4 * 81; i++)
        x[i] = sinf(0.37f * (float)i);
    nn_forward(m, x, 1, 0);
    nn_forward(back, x, 1, 0);
    TH_EQ_INT(back->nodes[g].groups, 4);
    TH_EQ_INT(back->nodes[s].ch_start, 2);
    TH_EQ_INT(back->nodes[q].groups, 3);
    TH_EQ_INT(nn_node_size(&back->nodes[back->output]), nn_node_size(&m->nodes[m->output]));
    TH_CHECK(!memcmp(nn_output(m), nn_output(back),
                     sizeof(float) * nn_node_size(&m->nodes[m->output])),
             "reloaded model gives other outputs");
    TH_NEAR(nn_forward_flops(m), 2.0 * 8 * 1 * 9 * 25 + 2.0 * 6 * 4 * 25, 0, 0);
    nn_model_destroy(back);
    nn_model_destroy(m);
}

/* The stride-2 depthwise kernels (parity-split planes, register blocks) against the plain
 * loops of the definition in its order (bias, then ky, then kx over the taps inside the
 * input; dx from zero, output planes in turn, each adding ky, then kx): equal values, on
 * planes past whole 4-row and 8-column blocks, every padding 0-3, odd and even kernels, a
 * channel multiplier (dx accumulated over two planes) and a 1x1 kernel (dx's odd rows and
 * columns get no tap). */
static void test_dw_stride2_definition_order(void)
{
    static const gcase_t s2[] = {
        {"s2_3x3", 2, 3, 15, 21, 3, 3, 3, 3, 2, 2, {1, 1, 1, 1}, 1},
        {"s2_5x5", 1, 2, 28, 28, 2, 2, 5, 5, 2, 2, {2, 2, 2, 2}, 1},
        {"s2_5x5_odd", 1, 2, 13, 9, 2, 2, 5, 5, 2, 2, {1, 2, 3, 0}, 0},
        {"s2_3x5_mult2", 2, 2, 10, 19, 4, 2, 3, 5, 2, 2, {0, 1, 2, 1}, 1},
        {"s2_4x4", 1, 3, 12, 17, 3, 3, 4, 4, 2, 2, {1, 2, 1, 2}, 1},
        {"s2_7x7_pad3", 1, 2, 17, 33, 2, 2, 7, 7, 2, 2, {3, 3, 3, 3}, 1},
        {"s2_1x1", 1, 2, 9, 11, 2, 2, 1, 1, 2, 2, {0, 0, 0, 0}, 1},
        {"s2_3x3_valid", 1, 2, 7, 40, 2, 2, 3, 3, 2, 2, {0, 0, 0, 0}, 0},
    };
    for (size_t k = 0; k < sizeof s2 / sizeof s2[0]; k++) {
        const gcase_t *t = &s2[k];
        float *x, *r;
        size_t n_x, n_y;
        nn_model_t *m = case_model(t, &x, &r, &n_x, &n_y);
        TH_CHECK(m, "case %s builds", t->name);
        if (!m)
            continue;
        const nn_node_t *nd = &m->nodes[1];
        const int oh = nd->h, ow = nd->w, og = t->oc / t->c, taps = t->kh * t->kw;
        const float *W = nn_param(m, 1, NN_P_WEIGHT, NULL), *b = nn_param(m, 1, NN_P_BIAS, NULL);
        float *dx = malloc(sizeof(float) * n_x), *ry = malloc(sizeof(float) * n_y);
        float *rdx = calloc(n_x, sizeof(float));
        nn_forward(m, x, t->n, 0);
        nn_backward_opts_t o = {.input_grad = 1};
        nn_backward(m, 1, r, dx, &o);
        for (int i = 0; i < t->n; i++)
            for (int co = 0; co < t->oc; co++) {
                const float *xp = x + ((size_t)i * t->c + co / og) * t->h * t->w;
                const float *wk = W + (size_t)co * taps, *dy = r + ((size_t)i * t->oc + co) * oh * ow;
                float *yp = ry + ((size_t)i * t->oc + co) * oh * ow;
                float *dxp = rdx + ((size_t)i * t->c + co / og) * t->h * t->w;
                for (int oy = 0; oy < oh; oy++)
                    for (int ox = 0; ox < ow; ox++) {
                        float acc = b ? b[co] : 0.0f;
                        for (int ky = 0; ky < t->kh; ky++)
                            for (int kx = 0; kx < t->kw; kx++) {
                                const int iy = 2 * oy - t->pad[0] + ky, ix = 2 * ox - t->pad[2] + kx;
                                if (iy >= 0 && iy < t->h && ix >= 0 && ix < t->w)
                                    acc += wk[ky * t->kw + kx] * xp[iy * t->w + ix];
                            }
                        yp[oy * ow + ox] = acc;
                    }
                for (int iy = 0; iy < t->h; iy++)
                    for (int ix = 0; ix < t->w; ix++)
                        for (int ky = 0; ky < t->kh; ky++)
                            for (int kx = 0; kx < t->kw; kx++) {
                                const int vy = iy + t->pad[0] - ky, vx = ix + t->pad[2] - kx;
                                if (vy < 0 || vx < 0 || vy % 2 || vx % 2 || vy / 2 >= oh ||
                                    vx / 2 >= ow)
                                    continue;
                                dxp[iy * t->w + ix] += wk[ky * t->kw + kx] * dy[vy / 2 * ow + vx / 2];
                            }
            }
        size_t bad_y = 0, bad_dx = 0;
        for (size_t i = 0; i < n_y; i++)
            bad_y += nn_output(m)[i] != ry[i];
        for (size_t i = 0; i < n_x; i++)
            bad_dx += dx[i] != rdx[i];
        TH_CHECK(bad_y == 0 && bad_dx == 0, "%s: %zu of %zu outputs and %zu of %zu input "
                 "gradients differ from the definition's order", t->name, bad_y, n_y, bad_dx, n_x);
        free(dx);
        free(ry);
        free(rdx);
        free(x);
        free(r);
        nn_model_destroy(m);
    }
}

int main(void)
{
    sc_log_set_level(SC_LOG_ERROR);
    TH_RUN(test_gconv_finite_differences);
    TH_RUN(test_gconv_matches_torch);
    TH_RUN(test_dw_stride2_definition_order);
    TH_RUN(test_slice_and_shuffle);
    TH_RUN(test_model_file_keeps_attrs);
    return th_report();
}
