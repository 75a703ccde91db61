/*
 * test_nn_grad.c - every layer's forward against a direct double-precision
 * evaluation, and its backward (input and parameter gradients) against
 * central finite differences, through the model graph.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"
#include "nn/op.h"
#include "rng.h"
#include "sc.h"
#include "testhelp.h"

static void fill_normal(float *x, size_t count, uint64_t seed, double scale)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(seed, "test"), 0, 0, 0);
    for (size_t i = 0; i < count; i++)
        x[i] = (float)(scale * rng_stream_normal(&rs));
}

/* L = sum_k r_k * out_k over the output node, in double. */
static double loss_of(nn_model_t *m, const float *x, int n, int training, const float *r)
{
    nn_forward(m, x, n, training);
    const float *y = nn_output(m);
    size_t count = (size_t)n * nn_node_size(&m->nodes[m->output]);
    double L = 0.0;
    for (size_t k = 0; k < count; k++)
        L += (double)r[k] * y[k];
    return L;
}

/*
 * Compare analytic gradients with central differences at up to `samples`
 * coordinates of the input and of every trainable parameter tensor.
 * Returns the number of mismatches (each printed).
 */
static int grad_check(nn_model_t *m, int n, int training, double eps, double rtol, int samples,
                      uint64_t seed)
{
    size_t in_count = (size_t)n * nn_node_size(&m->nodes[0]);
    size_t out_count = (size_t)n * nn_node_size(&m->nodes[m->output]);
    float *x = calloc(in_count, sizeof(float)), *dx = calloc(in_count, sizeof(float));
    float *r = calloc(out_count, sizeof(float));
    fill_normal(x, in_count, seed, 1.0);
    fill_normal(r, out_count, seed + 1, 1.0);
    nn_model_prepare(m, n);

    /* Keep running statistics fixed while differencing in training mode. */
    float *saved = malloc(sizeof(float) * m->n_params);
    memcpy(saved, m->params, sizeof(float) * m->n_params);
    loss_of(m, x, n, training, r);
    memset(m->grads, 0, sizeof(float) * m->n_params);
    nn_backward_opts_t o = {.param_grads = 1, .input_grad = 1, .training = training};
    nn_backward(m, m->output, r, dx, &o);
    memcpy(m->params, saved, sizeof(float) * m->n_params);

    double scale = 0.0; /* typical gradient magnitude, for an absolute floor */
    for (size_t i = 0; i < in_count; i++)
        scale = fmax(scale, fabs(dx[i]));
    for (size_t i = 0; i < m->n_params; i++)
        scale = fmax(scale, fabs(m->grads[i]));

    int bad = 0;
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(seed, "coords"), 0, 0, 0);
    for (int s = 0; s < samples; s++) {
        size_t i = rng_stream_below(&rs, (uint32_t)in_count);
        float keep = x[i];
        x[i] = keep + (float)eps;
        double lp = loss_of(m, x, n, training, r);
        x[i] = keep - (float)eps;
        double lm = loss_of(m, x, n, training, r);
        x[i] = keep;
        memcpy(m->params, saved, sizeof(float) * m->n_params);
        double fd = (lp - lm) / (2 * eps);
        if (fabs(fd - dx[i]) > rtol * fmax(fabs(fd), 0.05 * scale)) {
            if (bad < 5)
                printf("    input[%zu]: analytic %.6g, finite difference %.6g\n", i, dx[i], fd);
            bad++;
        }
    }
    for (int id = 1; id < m->n_nodes; id++) {
        for (int k = 0; k < NN_P_KINDS; k++) {
            size_t count;
            float *p = nn_param(m, id, (nn_param_kind)k, &count);
            if (!p || !nn_param_trainable((nn_param_kind)k))
                continue;
            float *g = m->grads + (p - m->params);
            for (int s = 0; s < samples; s++) {
                size_t i = rng_stream_below(&rs, (uint32_t)count);
                float keep = p[i];
                p[i] = keep + (float)eps;
                double lp = loss_of(m, x, n, training, r);
                memcpy(m->params, saved, sizeof(float) * m->n_params);
                p[i] = keep - (float)eps;
                double lm = loss_of(m, x, n, training, r);
                memcpy(m->params, saved, sizeof(float) * m->n_params);
                double fd = (lp - lm) / (2 * eps);
                if (fabs(fd - g[i]) > rtol * fmax(fabs(fd), 0.05 * scale)) {
                    if (bad < 5)
                        printf("    %s.%s[%zu]: analytic %.6g, finite difference %.6g\n",
                               m->nodes[id].name, nn_param_kind_name((nn_param_kind)k), i, g[i],
                               fd);
                    bad++;
                }
            }
        }
    }
    free(saved);
    free(x);
    free(dx);
    free(r);
    return bad;
}

/* Randomize every parameter (not just the initializer's values) so that
 * biases, BN shifts and statistics are exercised. */
static void randomize_params(nn_model_t *m, uint64_t seed)
{
    for (int id = 1; id < m->n_nodes; id++) {
        for (int k = 0; k < NN_P_KINDS; k++) {
            size_t count;
            float *p = nn_param(m, id, (nn_param_kind)k, &count);
            if (!p)
                continue;
            fill_normal(p, count, seed + (uint64_t)id * 7 + (uint64_t)k, 0.5);
            if (k == NN_P_VAR || k == NN_P_GAMMA)
                for (size_t i = 0; i < count; i++)
                    p[i] = 0.5f + fabsf(p[i]);
        }
    }
}

/* Direct convolution in double for the forward reference. */
static double conv_direct(const float *x, int c, int h, int w, const float *W, const float *b,
                          int o, int kh, int kw, int sh, int sw, int pt, int pl, int oy, int ox)
{
    double acc = b ? b[o] : 0.0;
    for (int ci = 0; ci < c; ci++)
        for (int i = 0; i < kh; i++)
            for (int j = 0; j < kw; j++) {
                int iy = oy * sh - pt + i, ix = ox * sw - pl + j;
                if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                    acc += (double)W[((o * c + ci) * kh + i) * kw + j] * x[(ci * h + iy) * w + ix];
            }
    return acc;
}

typedef struct conv_case { int c, h, w, oc, kh, kw, sh, sw, pad[4], same, bias; } conv_case_t;

static void test_conv_forward_and_grad(void)
{
    const conv_case_t cases[] = {
        {3, 9, 8, 4, 3, 3, 1, 1, {1, 1, 1, 1}, 0, 1},   /* 3x3 pad 1 */
        {2, 11, 10, 3, 3, 3, 2, 2, {0, 0, 0, 0}, 0, 0}, /* stride 2 valid */
        {2, 9, 12, 3, 1, 7, 1, 1, {0, 0, 0, 0}, 1, 0},  /* 1x7 same (Inception) */
        {2, 12, 9, 3, 7, 1, 1, 1, {0, 0, 0, 0}, 1, 1},  /* 7x1 same */
        {3, 10, 11, 2, 3, 5, 2, 3, {1, 0, 2, 1}, 0, 1}, /* asymmetric pad, stride 2x3 */
        {4, 6, 7, 5, 1, 1, 1, 1, {0, 0, 0, 0}, 0, 1},   /* pointwise */
        {3, 13, 13, 2, 3, 3, 2, 2, {0, 0, 0, 0}, 1, 0}, /* same with stride 2 (odd size) */
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const conv_case_t *k = &cases[t];
        nn_model_t *m = nn_model_create(k->c, k->h, k->w);
        int id = nn_add_conv(m, "conv", 0, k->oc, k->kh, k->kw, k->sh, k->sw,
                             k->same ? NULL : k->pad, k->same, k->bias);
        TH_CHECK(id == 1, "case %zu: conv not added", t);
        nn_model_finalize(m, 42);
        randomize_params(m, 100 + t);
        const int n = 2;
        nn_model_prepare(m, n);
        size_t in_count = (size_t)n * k->c * k->h * k->w;
        float *x = malloc(sizeof(float) * in_count);
        fill_normal(x, in_count, 7 + t, 1.0);
        nn_forward(m, x, n, 0);
        const nn_node_t *nd = &m->nodes[1];
        int pt, pb, pl, pr;
        if (k->same) {
            pad_same(k->h, k->kh, k->sh, &pt, &pb);
            pad_same(k->w, k->kw, k->sw, &pl, &pr);
        } else {
            pt = k->pad[0]; pl = k->pad[2];
            pb = k->pad[1]; pr = k->pad[3];
        }
        int exp_oh = (k->h + pt + pb - k->kh) / k->sh + 1, exp_ow = (k->w + pl + pr - k->kw) / k->sw + 1;
        TH_EQ_INT(nd->h, exp_oh);
        TH_EQ_INT(nd->w, exp_ow);
        double maxerr = 0.0;
        const float *W = nn_param(m, 1, NN_P_WEIGHT, NULL), *b = nn_param(m, 1, NN_P_BIAS, NULL);
        for (int i = 0; i < n; i++)
            for (int o = 0; o < k->oc; o++)
                for (int oy = 0; oy < nd->h; oy++)
                    for (int ox = 0; ox < nd->w; ox++) {
                        double ref = conv_direct(x + (size_t)i * k->c * k->h * k->w, k->c, k->h,
                                                 k->w, W, b, o, k->kh, k->kw, k->sh, k->sw, pt,
                                                 pl, oy, ox);
                        double got = nd->out[((i * k->oc + o) * nd->h + oy) * nd->w + ox];
                        maxerr = fmax(maxerr, fabs(got - ref));
                    }
        TH_CHECK(maxerr < 1e-4, "case %zu: forward differs from direct convolution by %g", t, maxerr);
        free(x);
        int bad = grad_check(m, n, 0, 1e-2, 1e-2, 30, 1000 + t);
        TH_CHECK(bad == 0, "case %zu: %d gradient mismatches", t, bad);
        nn_model_destroy(m);
    }
}

static void test_bn_inference_and_training(void)
{
    for (int training = 0; training <= 1; training++) {
        for (int scale = 0; scale <= 1; scale++) {
            nn_model_t *m = nn_model_create(3, 4, 5);
            int c = nn_add_conv(m, "conv", 0, 4, 3, 3, 1, 1, NULL, 1, 0);
            nn_add_bn(m, "bn", c, 1e-3f, 0.1f, scale, 1);
            nn_model_finalize(m, 1);
            randomize_params(m, 5);
            int bad = grad_check(m, 3, training, 1e-2, 2e-2, 30, 77 + training * 2 + scale);
            TH_CHECK(bad == 0, "training=%d scale=%d: %d mismatches", training, scale, bad);
            /* forward value: inference uses running statistics */
            if (!training) {
                nn_model_prepare(m, 1);
                float x[60];
                fill_normal(x, 60, 3, 1.0);
                nn_forward(m, x, 1, 0);
                const float *g = nn_param(m, 2, NN_P_GAMMA, NULL), *be = nn_param(m, 2, NN_P_BETA, NULL);
                const float *mu = nn_param(m, 2, NN_P_MEAN, NULL), *var = nn_param(m, 2, NN_P_VAR, NULL);
                double z = m->nodes[1].out[20 + 7];
                double ref = (z - mu[1]) / sqrt(var[1] + 1e-3) * (g ? g[1] : 1.0) + be[1];
                TH_NEAR(m->nodes[2].out[20 + 7], ref, 1e-5, 1e-5);
            }
            nn_model_destroy(m);
        }
    }
}

static void test_bn_running_update(void)
{
    /* one channel, batch of 2 x 2 values: mean 2.5, biased var 1.25, unbiased 5/3 */
    nn_model_t *m = nn_model_create(1, 1, 2);
    nn_add_bn(m, "bn", 0, 1e-5f, 0.1f, 1, 1);
    nn_model_finalize(m, 1);
    nn_model_prepare(m, 2);
    float x[4] = {1, 2, 3, 4};
    nn_forward(m, x, 2, 1);
    TH_NEAR(nn_param(m, 1, NN_P_MEAN, NULL)[0], 0.25, 1e-6, 1e-7);
    TH_NEAR(nn_param(m, 1, NN_P_VAR, NULL)[0], 0.9 + 0.1 * 5.0 / 3.0, 1e-6, 1e-7);
    TH_NEAR(nn_output(m)[0], (1 - 2.5) / sqrt(1.25 + 1e-5), 1e-5, 1e-6);
    nn_model_destroy(m);
}

static void test_pools(void)
{
    /* max pool 3x3 s2 pad 1 (ResNet stem), avg pool both count modes, ceil mode */
    struct { int k, s, pad, ceil, incl; nn_op op; } cases[] = {
        {3, 2, 1, 0, 0, NN_MAXPOOL}, {2, 2, 0, 0, 1, NN_AVGPOOL}, {3, 1, 1, 0, 0, NN_AVGPOOL},
        {3, 1, 1, 0, 1, NN_AVGPOOL}, {3, 2, 0, 1, 0, NN_MAXPOOL}, {3, 2, 1, 1, 1, NN_AVGPOOL},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        nn_model_t *m = nn_model_create(2, 8, 9);
        int pad[4] = {cases[t].pad, cases[t].pad, cases[t].pad, cases[t].pad};
        if (cases[t].op == NN_MAXPOOL)
            nn_add_maxpool(m, "pool", 0, cases[t].k, cases[t].k, cases[t].s, cases[t].s, pad, 0,
                           cases[t].ceil);
        else
            nn_add_avgpool(m, "pool", 0, cases[t].k, cases[t].k, cases[t].s, cases[t].s, pad, 0,
                           cases[t].ceil, cases[t].incl);
        nn_model_finalize(m, 1);
        nn_model_prepare(m, 2);
        float x[2 * 2 * 8 * 9];
        fill_normal(x, sizeof x / sizeof x[0], 11 + t, 1.0);
        nn_forward(m, x, 2, 0);
        const nn_node_t *nd = &m->nodes[1];
        /* direct reference for output (1, 1, 1, 1) and the last one */
        int probes[2][2] = {{1, 1}, {nd->h - 1, nd->w - 1}};
        for (int p = 0; p < 2; p++) {
            int oy = probes[p][0], ox = probes[p][1], k = cases[t].k, s = cases[t].s;
            int pd = cases[t].pad;
            double best = -1e30, sum = 0.0;
            int inside = 0, total = 0;
            for (int i = 0; i < k; i++)
                for (int j = 0; j < k; j++) {
                    int iy = oy * s - pd + i, ix = ox * s - pd + j;
                    if (iy < 8 + pd && ix < 9 + pd)
                        total++;
                    if (iy < 0 || iy >= 8 || ix < 0 || ix >= 9)
                        continue;
                    double v = x[(1 * 2 + 1) * 72 + iy * 9 + ix];
                    best = fmax(best, v);
                    sum += v;
                    inside++;
                }
            double ref = cases[t].op == NN_MAXPOOL ? best : sum / (cases[t].incl ? total : inside);
            TH_NEAR(nd->out[(1 * 2 + 1) * nd->h * nd->w + oy * nd->w + ox], ref, 1e-5, 1e-6);
        }
        int bad = grad_check(m, 2, 0, 1e-3, 1e-2, 40, 500 + t);
        TH_CHECK(bad == 0, "pool case %zu: %d mismatches", t, bad);
        nn_model_destroy(m);
    }
}

static void test_dense_gap_relu_concat_add(void)
{
    /* conv -> relu, conv -> (branch) ; concat ; add ; gap ; flatten ; dense ; softmax */
    nn_model_t *m = nn_model_create(3, 6, 6);
    int a = nn_add_conv(m, "a", 0, 4, 3, 3, 1, 1, NULL, 1, 1);
    int ra = nn_add_relu(m, "a_relu", a);
    int b = nn_add_conv(m, "b", 0, 4, 1, 1, 1, 1, NULL, 0, 1);
    int sum = nn_add_add(m, "sum", ra, b);
    int cat = nn_add_concat(m, "cat", 3, (int[]){sum, b, 0});
    int mp = nn_add_maxpool(m, "mp", cat, 2, 2, 2, 2, NULL, 0, 0);
    int f = nn_add_flatten(m, "flat", mp);
    int d = nn_add_dense(m, "fc", f, 5, 1);
    int g = nn_add_gap(m, "gap", cat);
    (void)g;
    nn_add_softmax(m, "prob", d);
    TH_EQ_INT(m->nodes[cat].c, 11);
    nn_model_finalize(m, 3);
    randomize_params(m, 9);
    int bad = grad_check(m, 2, 0, 2e-3, 2e-2, 30, 31);
    TH_CHECK(bad == 0, "%d mismatches through the graph", bad);
    nn_model_destroy(m);

    nn_model_t *s = nn_model_create(2, 3, 3);
    int gp = nn_add_gap(s, "gap", 0);
    int dd = nn_add_dense(s, "fc", gp, 1, 1);
    nn_add_sigmoid(s, "sig", dd);
    nn_model_finalize(s, 3);
    randomize_params(s, 19);
    bad = grad_check(s, 3, 0, 1e-2, 1e-2, 18, 41);
    TH_CHECK(bad == 0, "%d mismatches (gap/dense/sigmoid)", bad);
    nn_model_destroy(s);
}

/* The general-tensor ops of a vision transformer, each on the path to the
 * output: reshape, linear, layernorm, transpose, matmul of two activations,
 * scale, softmax on an axis, slice, concat_axis and add of param tensors,
 * GELU; input and parameter gradients against finite differences. */
static void test_token_ops(void)
{
    nn_model_t *m = nn_model_create(2, 3, 4);           /* 24 values */
    nn_node_t r = {.rank = 3, .dims = {1, 6, 4}};
    int tok = nn_add_node(m, "tokens", NN_RESHAPE, 1, (int[]){0}, &r);
    nn_node_t lin = {.out_c = 5, .has_bias = 1};
    int q = nn_add_node(m, "q", NN_LINEAR, 1, &tok, &lin);
    int ln = nn_add_node(m, "ln", NN_LAYERNORM, 1, &q, &(nn_node_t){.eps = 1e-5f});
    int k = nn_add_node(m, "k", NN_LINEAR, 1, &tok, &lin);
    nn_node_t tr = {.perm = {0, 2, 1}};
    int kt = nn_add_node(m, "kt", NN_TRANSPOSE, 1, &k, &tr);       /* [1, 5, 6] */
    int sc = nn_add_node(m, "scores", NN_MATMUL, 2, (int[]){ln, kt}, NULL); /* [1, 6, 6] */
    int scl = nn_add_node(m, "scaled", NN_SCALE, 1, &sc, &(nn_node_t){.alpha = 0.7f});
    int sm = nn_add_node(m, "attn", NN_SOFTMAX_AXIS, 1, &scl, &(nn_node_t){.axis = 2});
    int v = nn_add_node(m, "v", NN_LINEAR, 1, &tok, &lin);
    int av = nn_add_node(m, "av", NN_MATMUL, 2, (int[]){sm, v}, NULL);  /* [1, 6, 5] */
    int sl = nn_add_node(m, "first", NN_SLICE, 1, &av,
                         &(nn_node_t){.axis = 1, .start = 1, .end = 4}); /* [1, 3, 5] */
    int cls = nn_add_node(m, "cls", NN_PARAM, 1, (int[]){0}, &(nn_node_t){.rank = 3,
                                                                          .dims = {1, 1, 5}});
    int cat = nn_add_node(m, "cat", NN_CONCAT_AXIS, 2, (int[]){cls, sl},
                          &(nn_node_t){.axis = 1});                   /* [1, 4, 5] */
    int pos = nn_add_node(m, "pos", NN_PARAM, 1, (int[]){0}, &(nn_node_t){.rank = 3,
                                                                          .dims = {1, 4, 5}});
    int sum = nn_add_add(m, "sum", cat, pos);
    int ge = nn_add_node(m, "gelu", NN_GELU, 1, &sum, NULL);
    int ln2 = nn_add_node(m, "ln2", NN_LAYERNORM, 1, &ge, &(nn_node_t){.eps = 1e-5f});
    int tr2 = nn_add_node(m, "tr2", NN_TRANSPOSE, 1, &ln2, &(nn_node_t){.perm = {1, 2, 0}});
    nn_add_node(m, "head", NN_LINEAR, 1, &tr2, &(nn_node_t){.out_c = 3, .has_bias = 1});
    TH_EQ_INT(m->nodes[sc].rank, 3);
    TH_EQ_INT(m->nodes[sc].dims[2], 6);
    TH_EQ_INT(m->nodes[cat].dims[1], 4);
    TH_EQ_INT(m->nodes[tr2].dims[0], 4);
    TH_EQ_INT(m->nodes[tr2].dims[1], 5);
    TH_EQ_INT((int)nn_node_size(&m->nodes[m->output]), 4 * 5 * 3);
    TH_CHECK(nn_model_finalize(m, 5) == 0, "finalize");
    randomize_params(m, 13);
    int bad = grad_check(m, 2, 0, 2e-3, 2e-2, 40, 17);
    TH_CHECK(bad == 0, "%d mismatches through the token graph", bad);

    /* erf, sqrt and pow (the elementwise ops of exported graphs), sqrt on a softmax */
    nn_model_t *e = nn_model_create(2, 3, 4);
    int et = nn_add_node(e, "tokens", NN_RESHAPE, 1, (int[]){0}, &r);
    int es = nn_add_node(e, "sm", NN_SOFTMAX_AXIS, 1, &et, &(nn_node_t){.axis = 2});
    int eq = nn_add_node(e, "sqrt", NN_SQRT, 1, &es, NULL);
    int ep = nn_add_node(e, "pow", NN_POW, 1, &eq, &(nn_node_t){.alpha = 3.0f});
    int ee = nn_add_node(e, "erf", NN_ERF, 1, &ep, NULL);
    nn_add_node(e, "head", NN_LINEAR, 1, &ee, &(nn_node_t){.out_c = 2, .has_bias = 1});
    TH_CHECK(nn_model_finalize(e, 5) == 0, "finalize");
    randomize_params(e, 23);
    bad = grad_check(e, 2, 0, 2e-3, 2e-2, 30, 29);
    TH_CHECK(bad == 0, "%d mismatches through erf/sqrt/pow", bad);
    float xe[24] = {0.3f};
    nn_model_prepare(e, 1);
    nn_forward(e, xe, 1, 0);
    const float *se = nn_node_out(e, es), *ye = nn_node_out(e, ee);
    for (int j = 0; j < 24; j++)
        TH_NEAR(ye[j], erf(pow(sqrt(se[j]), 3.0)), 1e-6, 1e-7);
    nn_model_destroy(e);

    /* layernorm forward against a direct evaluation (first row of sample 0) */
    float x[48];
    fill_normal(x, 48, 3, 1.0);
    nn_model_prepare(m, 2);
    nn_forward(m, x, 2, 0);
    const float *qo = nn_node_out(m, q), *lo = nn_node_out(m, ln);
    const float *g = nn_param(m, ln, NN_P_GAMMA, NULL), *b = nn_param(m, ln, NN_P_BETA, NULL);
    double mean = 0, var = 0;
    for (int j = 0; j < 5; j++)
        mean += qo[j] / 5.0;
    for (int j = 0; j < 5; j++)
        var += (qo[j] - mean) * (qo[j] - mean) / 5.0;
    for (int j = 0; j < 5; j++)
        TH_NEAR(lo[j], (qo[j] - mean) / sqrt(var + 1e-5) * g[j] + b[j], 1e-5, 1e-5);
    nn_model_destroy(m);
}

/* Swin's ops: slice with step 2 (patch merging), bcast_add of a trained bias and
 * of a fixed mask broadcast over other axes; input and parameter gradients
 * against finite differences, and the fixed mask gets no gradient. */
static void test_swin_ops(void)
{
    nn_model_t *m = nn_model_create(2, 3, 4);           /* 24 values */
    int t = nn_add_node(m, "t", NN_RESHAPE, 1, (int[]){0},
                        &(nn_node_t){.rank = 3, .dims = {2, 3, 4}});
    int bias = nn_add_node(m, "bias", NN_BCAST_ADD, 1, &t,
                           &(nn_node_t){.perm = {1, 3, 4}, .has_bias = 1});
    int mask = nn_add_node(m, "mask", NN_BCAST_ADD, 1, &bias,
                           &(nn_node_t){.perm = {2, 1, 4}, .has_bias = 0});
    int even = nn_add_node(m, "even", NN_SLICE, 1, &mask,
                           &(nn_node_t){.axis = 2, .start = 0, .end = 4, .sh = 2});
    int odd = nn_add_node(m, "odd", NN_SLICE, 1, &mask,
                          &(nn_node_t){.axis = 1, .start = 1, .end = 3, .sh = 2});
    TH_EQ_INT(m->nodes[even].dims[2], 2);
    TH_EQ_INT(m->nodes[odd].dims[1], 1);
    int ge = nn_add_node(m, "gelu", NN_GELU, 1, &even, NULL);
    int go = nn_add_node(m, "gelu_odd", NN_GELU, 1, &odd, NULL);
    int fo = nn_add_node(m, "fo", NN_RESHAPE, 1, &go, &(nn_node_t){.rank = 3, .dims = {2, 2, 2}});
    int cat2 = nn_add_node(m, "cat2", NN_CONCAT_AXIS, 2, (int[]){ge, fo},
                           &(nn_node_t){.axis = 1});  /* [2, 5, 2] */
    nn_add_node(m, "head", NN_LINEAR, 1, &cat2, &(nn_node_t){.out_c = 3, .has_bias = 1});
    TH_CHECK(nn_model_finalize(m, 5) == 0, "finalize");
    randomize_params(m, 31);
    size_t count;
    float *fixed = nn_param(m, mask, NN_P_MEAN, &count);
    TH_EQ_INT((int)count, 8);
    for (size_t i = 0; i < count; i++)
        fixed[i] = (float)i - 4.0f;
    int bad = grad_check(m, 2, 0, 2e-3, 2e-2, 40, 37);
    TH_CHECK(bad == 0, "%d mismatches through slice steps and bcast_add", bad);
    /* forward: element [1, 2, 3] of sample 0 before the slices */
    float x[48];
    fill_normal(x, 48, 5, 1.0);
    nn_model_keep(m, mask);
    nn_model_prepare(m, 2);
    nn_forward(m, x, 2, 0);
    const float *b = nn_param(m, bias, NN_P_BIAS, NULL);
    TH_NEAR(nn_node_out(m, mask)[1 * 12 + 2 * 4 + 3], x[23] + b[2 * 4 + 3] + fixed[1 * 4 + 3],
            1e-6, 1e-6);
    /* the fixed mask is not trained and not re-initialized */
    TH_CHECK(!nn_param_grad(m, mask, NN_P_BIAS), "no trained tensor on the fixed mask");
    nn_model_reinit_block(m, m->nodes[mask].block, 9, 0);
    TH_NEAR(nn_param(m, mask, NN_P_MEAN, NULL)[7], 3.0, 0, 0);
    nn_model_destroy(m);
}

static void test_guided_relu(void)
{
    nn_model_t *m = nn_model_create(1, 1, 4);
    nn_add_relu(m, "r", 0);
    nn_model_finalize(m, 1);
    nn_model_prepare(m, 1);
    float x[4] = {1.0f, -1.0f, 2.0f, 3.0f}, dy[4] = {0.5f, 0.5f, -0.7f, 0.0f}, dx[4];
    nn_forward(m, x, 1, 0);
    nn_backward_opts_t o = {.input_grad = 1};
    nn_backward(m, 1, dy, dx, &o);
    TH_NEAR(dx[0], 0.5, 0, 1e-7);
    TH_NEAR(dx[1], 0.0, 0, 1e-7);
    TH_NEAR(dx[2], -0.7, 0, 1e-7);
    o.guided_relu = 1;
    nn_backward(m, 1, dy, dx, &o);
    TH_NEAR(dx[0], 0.5, 0, 1e-7);
    TH_NEAR(dx[2], 0.0, 0, 1e-7); /* negative gradient blocked */
    nn_model_destroy(m);
}

static void test_losses(void)
{
    float logits[6] = {1.0f, 2.0f, 0.5f, -1.0f, 0.0f, 3.0f}, d[6];
    int labels[2] = {1, 2};
    double L = loss_softmax_ce(2, 3, logits, labels, d);
    double l0 = log(exp(1.0) + exp(2.0) + exp(0.5)) - 2.0;
    double l1 = log(exp(-1.0) + exp(0.0) + exp(3.0)) - 3.0;
    TH_NEAR(L, (l0 + l1) / 2, 1e-9, 1e-12);
    for (int k = 0; k < 6; k++) {
        float keep = logits[k];
        logits[k] = keep + 1e-3f;
        double lp = loss_softmax_ce(2, 3, logits, labels, NULL);
        logits[k] = keep - 1e-3f;
        double lm = loss_softmax_ce(2, 3, logits, labels, NULL);
        logits[k] = keep;
        TH_NEAR(d[k], (lp - lm) / 2e-3, 1e-3, 1e-5);
    }
    float z[3] = {2.0f, -1.0f, 0.3f}, t[3] = {1.0f, 0.0f, 1.0f}, dz[3];
    double B = loss_bce_logits(3, z, t, dz);
    double ref = (log1p(exp(-2.0)) + log1p(exp(-1.0)) + log1p(exp(-0.3))) / 3;
    TH_NEAR(B, ref, 1e-7, 1e-9);
    TH_NEAR(dz[1], (1.0 / (1.0 + exp(1.0))) / 3, 1e-5, 1e-7);
}

static void test_reinit_block_is_keyed_by_name(void)
{
    nn_model_t *a = nn_model_create(1, 5, 5), *b = nn_model_create(1, 5, 5);
    nn_model_t *ms[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        nn_set_block(ms[i], "low");
        int c1 = nn_add_conv(ms[i], "c1", 0, 2, 3, 3, 1, 1, NULL, 1, 1);
        nn_set_block(ms[i], "high");
        nn_add_conv(ms[i], "c2", c1, 2, 3, 3, 1, 1, NULL, 1, 1);
    }
    nn_model_finalize(a, 5);
    nn_model_finalize(b, 6);
    TH_CHECK(memcmp(nn_param(a, 2, NN_P_WEIGHT, NULL), nn_param(b, 2, NN_P_WEIGHT, NULL),
                    sizeof(float) * 36) != 0, "different seeds gave the same weights");
    nn_model_reinit_block(b, "high", 5, 0);
    TH_CHECK(memcmp(nn_param(a, 2, NN_P_WEIGHT, NULL), nn_param(b, 2, NN_P_WEIGHT, NULL),
                    sizeof(float) * 36) == 0, "re-initializing block 'high' with seed 5 differs");
    TH_CHECK(memcmp(nn_param(a, 1, NN_P_WEIGHT, NULL), nn_param(b, 1, NN_P_WEIGHT, NULL),
                    sizeof(float) * 18) != 0, "block 'low' was touched");
    TH_CHECK(nn_model_reinit_block(b, "nope", 1, 0) < 0, "unknown block accepted");
    /* Glorot uniform bound: sqrt(6/(fan_in+fan_out)) = sqrt(6/(18+18)) */
    const float *w = nn_param(a, 2, NN_P_WEIGHT, NULL);
    double mx = 0;
    for (int i = 0; i < 36; i++)
        mx = fmax(mx, fabs(w[i]));
    TH_CHECK(mx <= sqrt(6.0 / 36.0) && mx > 0.5 * sqrt(6.0 / 36.0), "Glorot range: max |w| %g", mx);
    nn_model_destroy(a);
    nn_model_destroy(b);
}

/* Transposes of a map: NCHW -> NHWC and back (the tiled matrix path, tiles cut at the
 * edges), a permutation that keeps the last axis (rows of W moved whole, attention's
 * [L, H, d] -> [H, L, d]) and one that moves it without being a swap of two runs (the
 * index walk), each with its inverse.
 * Forward against the index definition; the chain back to NCHW plus the input itself gives
 * 2 x exactly, and its input gradient 2 dy exactly (the second transpose's gradient arrives
 * after the add's, so the tiled backward both assigns and accumulates). */
static void test_transpose_paths(void)
{
    const int C = 3, H = 20, W = 19, N = 2, size = C * H * W;
    for (int variant = 0; variant < 3; variant++) {
        nn_model_t *m = nn_model_create(C, H, W);
        nn_node_t fwd = {.perm = {0, 2, 3, 1}}, back = {.perm = {0, 3, 1, 2}};
        if (variant == 1) {
            fwd = (nn_node_t){.perm = {0, 2, 1, 3}}; /* [1, H, C, W] */
            back = fwd;
        } else if (variant == 2) {
            fwd = (nn_node_t){.perm = {0, 3, 2, 1}}; /* [1, W, H, C] */
            back = fwd;
        }
        int t1 = nn_add_node(m, "t1", NN_TRANSPOSE, 1, (int[]){0}, &fwd);
        int t2 = nn_add_node(m, "t2", NN_TRANSPOSE, 1, &t1, &back);
        nn_add_add(m, "sum", t2, 0);
        TH_CHECK(nn_model_finalize(m, 1) == 0, "finalize");
        nn_model_prepare(m, N);
        float x[2 * 3 * 20 * 19], dy[2 * 3 * 20 * 19], dx[2 * 3 * 20 * 19];
        fill_normal(x, N * size, 5 + variant, 1.0);
        fill_normal(dy, N * size, 7 + variant, 1.0);
        nn_forward(m, x, N, 0);
        const float *y1 = nn_node_out(m, t1), *y = nn_output(m);
        int bad = 0;
        for (int i = 0; i < N; i++)
            for (int c = 0; c < C; c++)
                for (int h = 0; h < H; h++)
                    for (int w = 0; w < W; w++) {
                        const size_t at = (size_t)i * size + ((size_t)c * H + h) * W + w;
                        const size_t to = (size_t)i * size +
                                          (variant == 0   ? ((size_t)h * W + w) * C + c
                                           : variant == 1 ? ((size_t)h * C + c) * W + w
                                                          : ((size_t)w * H + h) * C + c);
                        bad += y1[to] != x[at] || y[at] != 2.0f * x[at];
                    }
        TH_CHECK(bad == 0, "variant %d: %d forward values differ", variant, bad);
        nn_backward_opts_t o = {.input_grad = 1};
        TH_CHECK(nn_backward(m, m->output, dy, dx, &o) == 0, "backward");
        bad = 0;
        for (int k = 0; k < N * size; k++)
            bad += dx[k] != 2.0f * dy[k];
        TH_CHECK(bad == 0, "variant %d: %d input-gradient values differ", variant, bad);
        nn_model_destroy(m);
    }
}

/* LayerNorm over rows wider than its 8 reduction lanes with a tail (D = 20, 3 rows per
 * sample): input and parameter gradients against finite differences, forward against a
 * direct double evaluation. */
static void test_layernorm_wide(void)
{
    nn_model_t *m = nn_model_create(3, 4, 5);
    int tok = nn_add_node(m, "tokens", NN_RESHAPE, 1, (int[]){0},
                          &(nn_node_t){.rank = 3, .dims = {1, 3, 20}});
    int ln = nn_add_node(m, "ln", NN_LAYERNORM, 1, &tok, &(nn_node_t){.eps = 1e-5f});
    nn_add_node(m, "head", NN_LINEAR, 1, &ln, &(nn_node_t){.out_c = 2, .has_bias = 1});
    TH_CHECK(nn_model_finalize(m, 5) == 0, "finalize");
    randomize_params(m, 31);
    int bad = grad_check(m, 2, 0, 2e-3, 2e-2, 40, 37);
    TH_CHECK(bad == 0, "%d mismatches through a 20-wide layernorm", bad);
    float x[2 * 60];
    fill_normal(x, 120, 41, 2.0);
    for (int k = 0; k < 120; k++)
        x[k] += 3.0f; /* an offset the centring must remove */
    nn_model_prepare(m, 2);
    nn_forward(m, x, 2, 0);
    const float *y = nn_node_out(m, ln);
    const float *g = nn_param(m, ln, NN_P_GAMMA, NULL), *b = nn_param(m, ln, NN_P_BETA, NULL);
    double worst = 0.0;
    for (int r = 0; r < 6; r++) {
        double mean = 0.0, var = 0.0;
        for (int j = 0; j < 20; j++)
            mean += x[r * 20 + j] / 20.0;
        for (int j = 0; j < 20; j++)
            var += (x[r * 20 + j] - mean) * (x[r * 20 + j] - mean) / 20.0;
        for (int j = 0; j < 20; j++)
            worst = fmax(worst, fabs(y[r * 20 + j] - ((x[r * 20 + j] - mean) / sqrt(var + 1e-5) *
                                                          g[j] + b[j])));
    }
    TH_CHECK(worst < 2e-6, "layernorm forward off the definition by %.3g", worst);
    nn_model_destroy(m);
}

/* The statistics a layer norm keeps from its forward for the backward
 * (ops/layernorm.c): the input and parameter gradients bit for bit those of a
 * backward that computes them again, along the last axis and along the
 * channels of a map (an inner axis of 1155 positions: two blocks, the second
 * partial), whose forward also matches the definition in both blocks. */
static void test_layernorm_saved_stats(void)
{
    nn_model_t *m = nn_model_create(3, 33, 35);
    const int c = nn_add_conv(m, "c", 0, 10, 1, 1, 1, 1, NULL, 0, 1);
    const int ln1 = nn_add_node(m, "ln_ch", NN_LAYERNORM, 1, &c, &(nn_node_t){.eps = 1e-5f, .axis = 1});
    const int tok = nn_add_node(m, "tokens", NN_RESHAPE, 1, &ln1,
                                &(nn_node_t){.rank = 3, .dims = {1, 42, 275}});
    const int ln2 = nn_add_node(m, "ln_row", NN_LAYERNORM, 1, &tok, &(nn_node_t){.eps = 1e-5f});
    const int head = nn_add_node(m, "head", NN_LINEAR, 1, &ln2, &(nn_node_t){.out_c = 2, .has_bias = 1});
    TH_CHECK(nn_model_finalize(m, 7) == 0 && nn_model_prepare(m, 2) == 0, "build");
    nn_model_set_plan(m, NN_PLAN_TRAIN);
    TH_CHECK(nn_model_prepare(m, 2) == 0, "prepare for parameter gradients");
    randomize_params(m, 3);
    const size_t in = nn_node_size(&m->nodes[0]), no = nn_node_size(&m->nodes[head]);
    float *x = malloc(sizeof(float) * 2 * in), *dy = malloc(sizeof(float) * 2 * no);
    float *dx[2] = {malloc(sizeof(float) * 2 * in), malloc(sizeof(float) * 2 * in)};
    float *pg[2] = {malloc(sizeof(float) * m->n_params), malloc(sizeof(float) * m->n_params)};
    fill_normal(x, 2 * in, 5, 1.0);
    fill_normal(dy, 2 * no, 6, 1.0);
    for (int again = 0; again < 2; again++) {
        TH_CHECK(nn_forward(m, x, 2, 0) == 0, "forward");
        TH_CHECK(m->nodes[ln1].ln_gen == m->act_gen && m->nodes[ln2].ln_gen == m->act_gen,
                 "the forward kept no statistics");
        /* the channel norm of sample 1 at positions of both blocks, against the definition */
        const float *g1 = nn_param(m, ln1, NN_P_GAMMA, NULL), *b1 = nn_param(m, ln1, NN_P_BETA, NULL);
        const size_t hw = 33 * 35;
        double worst = 0.0;
        for (size_t p = 0; p < hw; p += 97) {
            const float *xc = m->nodes[c].out + 10 * hw + p, *yc = m->nodes[ln1].out + 10 * hw + p;
            double mean = 0.0, var = 0.0;
            for (int k = 0; k < 10; k++)
                mean += xc[k * hw];
            mean /= 10;
            for (int k = 0; k < 10; k++)
                var += (xc[k * hw] - mean) * (xc[k * hw] - mean);
            const double s = 1.0 / sqrt(var / 10 + 1e-5);
            for (int k = 0; k < 10; k++) {
                const double want = (xc[k * hw] - mean) * s * g1[k] + b1[k];
                const double err = fabs(yc[k * hw] - want) / (fabs(want) + 1e-3);
                worst = err > worst ? err : worst;
            }
        }
        TH_CHECK(worst < 1e-6, "channel layer norm off the definition by %.3g", worst);
        if (again)
            m->act_gen++; /* as if another pass moved the activations: computed again */
        memset(m->grads, 0, sizeof(float) * m->n_params);
        nn_backward_opts_t o = {.input_grad = 1, .param_grads = 1};
        TH_CHECK(nn_backward(m, head, dy, dx[again], &o) == 0, "backward");
        memcpy(pg[again], m->grads, sizeof(float) * m->n_params);
    }
    TH_CHECK(!memcmp(dx[0], dx[1], sizeof(float) * 2 * in),
             "input gradient with the kept statistics differs");
    TH_CHECK(!memcmp(pg[0], pg[1], sizeof(float) * m->n_params),
             "parameter gradients with the kept statistics differ");
    for (int k = 0; k < 2; k++) {
        free(dx[k]);
        free(pg[k]);
    }
    free(x);
    free(dy);
    nn_model_destroy(m);
}

int main(void)
{
    sc_log_set_level(SC_LOG_ERROR);
    TH_RUN(test_conv_forward_and_grad);
    TH_RUN(test_bn_inference_and_training);
    TH_RUN(test_bn_running_update);
    TH_RUN(test_pools);
    TH_RUN(test_dense_gap_relu_concat_add);
    TH_RUN(test_guided_relu);
    TH_RUN(test_losses);
    TH_RUN(test_reinit_block_is_keyed_by_name);
    TH_RUN(test_token_ops);
    TH_RUN(test_swin_ops);
    TH_RUN(test_transpose_paths);
    TH_RUN(test_layernorm_wide);
    TH_RUN(test_layernorm_saved_stats);
    return th_report();
}
