/*
 * test_families_kernels.c - the kernels and import paths that make ConvNeXt
 * and EfficientNet fast, against PyTorch float64 and plain references.
 *
 * Layer normalization over the channels of an NCHW map (ops/layernorm.c,
 * axis 1), on odd shapes whose positions run past one block of the kernel:
 * forward against a plain double loop; forward, input gradient (written and
 * accumulated) and gamma/beta gradients against PyTorch float64 of
 * ConvNeXt's permute-LayerNorm-permute (tests/ref/families_kernels_ref.py);
 * the same numbers as transpose, last-axis layer norm, transpose; the input
 * gradient added onto an earlier contribution; an image's
 * result the same bits whatever the batch. The ONNX import of ConvNeXt's
 * channels-last block (onnx_import_nhwc.inc): a small ConvNeXt of
 * torchvision's own CNBlock and LayerNorm2d at opsets 13 (the decomposed LayerNorm
 * chain) and 17 (LayerNormalization) imports
 * without any transpose (layer norms over axis 1, the MLP as 1x1
 * convolutions) and matches PyTorch float64 (logits, input gradient), and
 * the model file keeps the layer norm's axis; a graph that adds the
 * residual in channels-last reads transposes built for that consumer and
 * matches PyTorch float64 too.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"
#include "nn/modelfile.h"
#include "nn/onnx_import.h"
#include "nn/op.h"
#include "nnhelp.h"
#include "rng.h"
#include "saliency/saliency.h"
#include "sc.h"
#include "testhelp.h"
#include "tokhelp.h"

#define REF_SCRIPT "tests/ref/families_kernels_ref.py"

/* Odd shapes: 11 channels, 5 x 17 = 85 positions (a block of 64 and a partial one). */
enum { LN_N = 2, LN_C = 11, LN_H = 5, LN_W = 17, LN_HW = LN_H * LN_W,
       LN_SIZE = LN_C * LN_HW };
#define LN_EPS 1e-6f

static void fill_uniform(float *v, size_t count, double lo, double hi, const char *key)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(31, key), 0, 0, 0);
    for (size_t i = 0; i < count; i++)
        v[i] = (float)(lo + (hi - lo) * rng_stream_uniform(&rs));
}

/* input -> layernorm over axis 1 (channels), gamma and beta random; NULL on failure. */
static nn_model_t *ln_model(int max_batch, float *gamma, float *beta)
{
    nn_model_t *m = nn_model_create(LN_C, LN_H, LN_W);
    int in = 0;
    nn_node_t a = {.eps = LN_EPS, .axis = 1};
    if (!m || nn_add_node(m, "ln", NN_LAYERNORM, 1, &in, &a) != 1 ||
        nn_model_finalize(m, 1) < 0 || nn_model_prepare(m, max_batch) < 0) {
        nn_model_destroy(m);
        return NULL;
    }
    memcpy(nn_param(m, 1, NN_P_GAMMA, NULL), gamma, sizeof(float) * LN_C);
    memcpy(nn_param(m, 1, NN_P_BETA, NULL), beta, sizeof(float) * LN_C);
    nn_model_params_changed(m);
    return m;
}

static void ln_inputs(float *x, float *dy, float *gamma, float *beta)
{
    fill_uniform(x, (size_t)LN_N * LN_SIZE, -3.0, 5.0, "ln x");
    for (int p = 0; p < LN_HW; p += 7) /* a few positions with a large common offset */
        for (int c = 0; c < LN_C; c++)
            x[c * LN_HW + p] += 40.0f;
    fill_uniform(dy, (size_t)LN_N * LN_SIZE, -1.0, 1.0, "ln dy");
    fill_uniform(gamma, LN_C, 0.5, 1.5, "ln gamma");
    fill_uniform(beta, LN_C, -0.3, 0.3, "ln beta");
}

static void test_layernorm_channels_plain(void)
{
    float *x = malloc(sizeof(float) * LN_N * LN_SIZE), *dy = malloc(sizeof(float) * LN_N * LN_SIZE);
    float gamma[LN_C], beta[LN_C];
    ln_inputs(x, dy, gamma, beta);
    nn_model_t *m = ln_model(LN_N, gamma, beta);
    TH_CHECK(m && nn_forward(m, x, LN_N, 0) == 0, "model and forward");
    double worst = 0.0;
    for (int b = 0; m && b < LN_N; b++)
        for (int p = 0; p < LN_HW; p++) {
            const float *xb = x + (size_t)b * LN_SIZE;
            double mean = 0.0, var = 0.0;
            for (int c = 0; c < LN_C; c++)
                mean += xb[c * LN_HW + p];
            mean /= LN_C;
            for (int c = 0; c < LN_C; c++)
                var += (xb[c * LN_HW + p] - mean) * (xb[c * LN_HW + p] - mean);
            var /= LN_C;
            for (int c = 0; c < LN_C; c++) {
                double want = (xb[c * LN_HW + p] - mean) / sqrt(var + (double)LN_EPS) * gamma[c] +
                              beta[c];
                double got = nn_output(m)[(size_t)b * LN_SIZE + c * LN_HW + p];
                worst = fmax(worst, fabs(got - want) / (1.0 + fabs(want)));
            }
        }
    printf("    forward against a plain double loop: max error %.2e\n", worst);
    TH_CHECK(worst < 1e-6, "layer norm over channels off by %.2e", worst);
    nn_model_destroy(m);
    free(x);
    free(dy);
}

/* Runs forward and backward (input gradient, gamma and beta gradients) of m on x and dy;
 * y, dx (n * LN_SIZE) and dg, db (LN_C) receive the results. */
static int ln_run(nn_model_t *m, const float *x, const float *dy, int n, float *y, float *dx,
                  float *dg, float *db)
{
    memset(m->grads, 0, sizeof(float) * m->n_params);
    nn_backward_opts_t o = {.input_grad = 1, .param_grads = 1};
    if (nn_forward(m, x, n, 0) < 0 || (memcpy(y, nn_output(m), sizeof(float) * n * LN_SIZE), 0) ||
        nn_backward(m, 1, dy, dx, &o) < 0)
        return -1;
    memcpy(dg, nn_param_grad(m, 1, NN_P_GAMMA), sizeof(float) * LN_C);
    memcpy(db, nn_param_grad(m, 1, NN_P_BETA), sizeof(float) * LN_C);
    return 0;
}

static void test_layernorm_channels_match_torch(void)
{
    if (!th_python_has("torch, numpy"))
        TH_SKIP("python3-torch not installed for %s", th_python());
    const size_t count = (size_t)LN_N * LN_SIZE;
    float *in = malloc(sizeof(float) * (2 * count + 2 * LN_C));
    float *x = in, *gamma = in + count, *beta = gamma + LN_C, *dy = beta + LN_C;
    ln_inputs(x, dy, gamma, beta);
    char in_path[512], out_path[512], cmd[2048];
    snprintf(in_path, sizeof in_path, "%s/fk_ln_in.f32", th_tmp_dir());
    snprintf(out_path, sizeof out_path, "%s/fk_ln_ref.f64", th_tmp_dir());
    TH_CHECK(th_write_f32(in_path, in, 2 * count + 2 * LN_C) == 0, "write %s", in_path);
    snprintf(cmd, sizeof cmd, "%s %s ln %s %d %d %d %d %.9g %s", th_python(), REF_SCRIPT, in_path,
             LN_N, LN_C, LN_H, LN_W, (double)LN_EPS, out_path);
    TH_CHECK(system(cmd) == 0, "reference failed: %s", cmd);
    const size_t n_ref = 2 * count + 2 * LN_C;
    double *ref = malloc(sizeof(double) * n_ref);
    FILE *f = fopen(out_path, "rb");
    size_t got = f ? fread(ref, sizeof(double), n_ref, f) : 0;
    if (f)
        fclose(f);
    TH_EQ_INT(got, n_ref);
    nn_model_t *m = ln_model(LN_N, gamma, beta);
    float *y = malloc(sizeof(float) * count), *dx = malloc(sizeof(float) * count);
    float dg[LN_C], db[LN_C];
    TH_CHECK(m && ln_run(m, x, dy, LN_N, y, dx, dg, db) == 0, "forward and backward");
    if (m && got == n_ref) {
        double e_y = tok_rel_l2_d(y, ref, count), e_dx = tok_rel_l2_d(dx, ref + count, count);
        double e_dg = tok_rel_l2_d(dg, ref + 2 * count, LN_C);
        double e_db = tok_rel_l2_d(db, ref + 2 * count + LN_C, LN_C);
        printf("    against PyTorch float64 (rel. L2): y %.2e, dx %.2e, dgamma %.2e, dbeta %.2e\n",
               e_y, e_dx, e_dg, e_db);
        TH_CHECK(e_y < 1e-6 && e_dx < 1e-5 && e_dg < 1e-5 && e_db < 1e-6,
                 "layer norm over channels differs from PyTorch float64");
    }
    nn_model_destroy(m);
    free(ref);
    free(in);
    free(y);
    free(dx);
}

/* The same numbers as the channels-last form the importer used to build: transpose
 * (0, 2, 3, 1), layer norm over the last axis, transpose (0, 3, 1, 2). */
static void test_layernorm_channels_equals_transposed(void)
{
    const size_t count = (size_t)LN_N * LN_SIZE;
    float *x = malloc(sizeof(float) * count), *dy = malloc(sizeof(float) * count);
    float gamma[LN_C], beta[LN_C];
    ln_inputs(x, dy, gamma, beta);
    /* transpose (0, 2, 3, 1) -> layer norm over the last axis -> transpose (0, 3, 1, 2) */
    nn_model_t *t = nn_model_create(LN_C, LN_H, LN_W);
    int in = 0, id;
    nn_node_t to_last = {.perm = {0, 2, 3, 1}}, to_first = {.perm = {0, 3, 1, 2}};
    nn_node_t ln = {.eps = LN_EPS};
    id = nn_add_node(t, "to_last", NN_TRANSPOSE, 1, &in, &to_last);
    id = nn_add_node(t, "ln", NN_LAYERNORM, 1, &id, &ln);
    id = nn_add_node(t, "to_first", NN_TRANSPOSE, 1, &id, &to_first);
    TH_CHECK(id == 3 && nn_model_finalize(t, 1) == 0 && nn_model_prepare(t, LN_N) == 0,
             "transposed model");
    memcpy(nn_param(t, 2, NN_P_GAMMA, NULL), gamma, sizeof gamma);
    memcpy(nn_param(t, 2, NN_P_BETA, NULL), beta, sizeof beta);
    nn_model_params_changed(t);
    nn_model_t *m = ln_model(LN_N, gamma, beta);
    float *y = malloc(sizeof(float) * count), *dx = malloc(sizeof(float) * count);
    float *dx_t = malloc(sizeof(float) * count), dg[LN_C], db[LN_C];
    nn_backward_opts_t o = {.input_grad = 1, .param_grads = 1};
    memset(t->grads, 0, sizeof(float) * t->n_params);
    TH_CHECK(m && ln_run(m, x, dy, LN_N, y, dx, dg, db) == 0 && nn_forward(t, x, LN_N, 0) == 0,
             "passes");
    if (m) {
        double e_y = th_rel_l2(y, nn_output(t), count);
        TH_CHECK(nn_backward(t, 3, dy, dx_t, &o) == 0, "transposed backward");
        double e_dx = th_rel_l2(dx, dx_t, count);
        double e_dg = th_rel_l2(dg, nn_param_grad(t, 2, NN_P_GAMMA), LN_C);
        double e_db = th_rel_l2(db, nn_param_grad(t, 2, NN_P_BETA), LN_C);
        printf("    against transpose + last-axis layer norm + transpose: y %.2e, dx %.2e, "
               "dgamma %.2e, dbeta %.2e\n", e_y, e_dx, e_dg, e_db);
        TH_CHECK(e_y < 1e-6 && e_dx < 1e-5 && e_dg < 1e-5 && e_db < 1e-6,
                 "the two forms of the layer norm differ");
    }
    nn_model_destroy(m);
    nn_model_destroy(t);
    free(x);
    free(dy);
    free(y);
    free(dx);
    free(dx_t);
}

/* input -> s = 1 * x -> layernorm (axis 1) -> add (layernorm + s): the add writes s's
 * gradient first, so the layer norm adds its own onto it: dx = dy + LN'(dy). */
static void test_layernorm_channels_accumulates(void)
{
    const size_t count = (size_t)LN_N * LN_SIZE;
    float *x = malloc(sizeof(float) * count), *dy = malloc(sizeof(float) * count);
    float gamma[LN_C], beta[LN_C], dg[LN_C], db[LN_C];
    ln_inputs(x, dy, gamma, beta);
    nn_model_t *r = nn_model_create(LN_C, LN_H, LN_W);
    int in = 0, s, l;
    nn_node_t one = {.alpha = 1.0f}, ln = {.eps = LN_EPS, .axis = 1};
    s = nn_add_node(r, "s", NN_SCALE, 1, &in, &one);
    l = nn_add_node(r, "ln", NN_LAYERNORM, 1, &s, &ln);
    TH_CHECK(nn_add_add(r, "sum", l, s) == 3 && nn_model_finalize(r, 1) == 0 &&
                 nn_model_prepare(r, LN_N) == 0, "residual model");
    memcpy(nn_param(r, l, NN_P_GAMMA, NULL), gamma, sizeof gamma);
    memcpy(nn_param(r, l, NN_P_BETA, NULL), beta, sizeof beta);
    nn_model_params_changed(r);
    nn_model_t *m = ln_model(LN_N, gamma, beta);
    float *y = malloc(sizeof(float) * count), *dx = malloc(sizeof(float) * count);
    float *dx_r = malloc(sizeof(float) * count);
    nn_backward_opts_t o = {.input_grad = 1};
    TH_CHECK(m && ln_run(m, x, dy, LN_N, y, dx, dg, db) == 0 &&
                 nn_forward(r, x, LN_N, 0) == 0 && nn_backward(r, 3, dy, dx_r, &o) == 0,
             "passes");
    double worst = 0.0;
    for (size_t i = 0; m && i < count; i++)
        worst = fmax(worst, fabs((double)dx_r[i] - ((double)dx[i] + dy[i])) /
                                (1.0 + fabs((double)dx[i] + dy[i])));
    printf("    accumulated input gradient against dy + the layer norm's: max error %.2e\n",
           worst);
    TH_CHECK(worst < 1e-6, "the accumulated gradient is off by %.2e", worst);
    nn_model_destroy(m);
    nn_model_destroy(r);
    free(x); free(dy); free(y); free(dx); free(dx_r);
}

static void test_layernorm_channels_batch_invariant(void)
{
    const size_t count = (size_t)LN_N * LN_SIZE;
    float *x = malloc(sizeof(float) * 3 * LN_SIZE), *dy = malloc(sizeof(float) * 3 * LN_SIZE);
    float gamma[LN_C], beta[LN_C];
    ln_inputs(x, dy, gamma, beta); /* the first two images */
    memcpy(x + count, x, sizeof(float) * LN_SIZE);
    memcpy(dy + count, dy, sizeof(float) * LN_SIZE);
    nn_model_t *m = ln_model(3, gamma, beta);
    float *y3 = malloc(sizeof(float) * 3 * LN_SIZE), *dx3 = malloc(sizeof(float) * 3 * LN_SIZE);
    float *y1 = malloc(sizeof(float) * LN_SIZE), *dx1 = malloc(sizeof(float) * LN_SIZE);
    nn_backward_opts_t o = {.input_grad = 1};
    int ok = m && nn_forward(m, x, 3, 0) == 0;
    if (ok)
        memcpy(y3, nn_output(m), sizeof(float) * 3 * LN_SIZE);
    ok = ok && nn_backward(m, 1, dy, dx3, &o) == 0;
    ok = ok && nn_forward(m, x + LN_SIZE, 1, 0) == 0;
    if (ok)
        memcpy(y1, nn_output(m), sizeof(float) * LN_SIZE);
    ok = ok && nn_backward(m, 1, dy + LN_SIZE, dx1, &o) == 0;
    TH_CHECK(ok, "passes");
    if (ok) {
        TH_CHECK(!memcmp(y1, y3 + LN_SIZE, sizeof(float) * LN_SIZE) &&
                     !memcmp(dx1, dx3 + LN_SIZE, sizeof(float) * LN_SIZE),
                 "image 2 of 3 differs from the same image alone");
        TH_CHECK(!memcmp(y3, y3 + count, sizeof(float) * LN_SIZE) &&
                     !memcmp(dx3, dx3 + count, sizeof(float) * LN_SIZE),
                 "images 1 and 3 (equal) differ");
    }
    nn_model_destroy(m);
    free(x); free(dy); free(y3); free(dx3); free(y1); free(dx1);
}

/* ---- first contributions written, later ones added ---- */

typedef struct acc_case {
    const char *name;
    nn_op op;
    nn_node_t attrs;
    int c, h, w;
} acc_case_t;

/* input -> op (params random); returns the model (batch 2) or NULL. */
static nn_model_t *acc_single(const acc_case_t *t)
{
    nn_model_t *m = nn_model_create(t->c, t->h, t->w);
    int in = 0;
    if (!m || nn_add_node(m, "op", t->op, 1, &in, &t->attrs) != 1 ||
        nn_model_finalize(m, 7) < 0 || nn_model_prepare(m, 2) < 0) {
        nn_model_destroy(m);
        return NULL;
    }
    for (int k = 0; k < NN_P_KINDS; k++) {
        size_t count;
        float *p = nn_param(m, 1, (nn_param_kind)k, &count);
        if (p && k != NN_P_WEIGHT)
            fill_uniform(p, count, k == NN_P_GAMMA ? 0.5 : -0.3, k == NN_P_GAMMA ? 1.5 : 0.3,
                         t->name);
    }
    nn_model_params_changed(m);
    return m;
}

/* input -> s = 1 * x -> op a (s), op b (s) -> concat (a, b), both ops with the single
 * model's parameters: b's backward runs first and writes s's gradient, a's adds to it. */
static nn_model_t *acc_double(const acc_case_t *t, nn_model_t *single)
{
    nn_model_t *m = nn_model_create(t->c, t->h, t->w);
    int in = 0, s, ab[2];
    nn_node_t one = {.alpha = 1.0f};
    if (!m || (s = nn_add_node(m, "s", NN_SCALE, 1, &in, &one)) < 0 ||
        (ab[0] = nn_add_node(m, "a", t->op, 1, &s, &t->attrs)) < 0 ||
        (ab[1] = nn_add_node(m, "b", t->op, 1, &s, &t->attrs)) < 0 ||
        nn_add_concat(m, "cat", 2, ab) < 0 || nn_model_finalize(m, 7) < 0 ||
        nn_model_prepare(m, 2) < 0) {
        nn_model_destroy(m);
        return NULL;
    }
    for (int j = 0; j < 2; j++)
        for (int k = 0; k < NN_P_KINDS; k++) {
            size_t count, count1;
            float *dst = nn_param(m, ab[j], (nn_param_kind)k, &count);
            const float *src = nn_param(single, 1, (nn_param_kind)k, &count1);
            if (dst && src && count == count1)
                memcpy(dst, src, sizeof(float) * count);
        }
    nn_model_params_changed(m);
    return m;
}

static void test_first_contribution_then_accumulation(void)
{
    const acc_case_t cases[] = {
        {"dw3 s1 x2", NN_GCONV, {.out_c = 10, .groups = 5, .kh = 3, .kw = 3, .sh = 1, .sw = 1,
                                 .pt = 1, .pb = 1, .pl = 1, .pr = 1, .has_bias = 1}, 5, 9, 11},
        {"dw5 s2", NN_GCONV, {.out_c = 6, .groups = 6, .kh = 5, .kw = 5, .sh = 2, .sw = 2,
                              .pt = 2, .pb = 2, .pl = 2, .pr = 2, .has_bias = 1}, 6, 11, 13},
        {"dw3 s2 x2", NN_GCONV, {.out_c = 8, .groups = 4, .kh = 3, .kw = 3, .sh = 2, .sw = 2,
                                 .pt = 0, .pb = 1, .pl = 1, .pr = 0}, 4, 10, 9},
        {"grouped3 s2", NN_GCONV, {.out_c = 6, .groups = 2, .kh = 3, .kw = 3, .sh = 2, .sw = 2,
                                   .pt = 1, .pb = 1, .pl = 1, .pr = 1, .has_bias = 1}, 4, 9, 9},
        {"silu", NN_SILU, {.eps = 0.0f}, 3, 7, 5},
        {"layernorm axis 1", NN_LAYERNORM, {.eps = 1e-6f, .axis = 1}, 7, 9, 11},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const acc_case_t *k = &cases[t];
        nn_model_t *one = acc_single(k), *two = one ? acc_double(k, one) : NULL;
        TH_CHECK(one && two, "%s: models", k->name);
        if (!two) {
            nn_model_destroy(one);
            continue;
        }
        const size_t in_size = (size_t)k->c * k->h * k->w, out_size = nn_node_size(&one->nodes[1]);
        float *x = malloc(sizeof(float) * 2 * in_size), *dy = malloc(sizeof(float) * 4 * out_size);
        float *dx_a = malloc(sizeof(float) * 2 * in_size), *dx_b = malloc(sizeof(float) * 2 * in_size);
        float *dx2 = malloc(sizeof(float) * 2 * in_size), *dy1 = malloc(sizeof(float) * 2 * out_size);
        fill_uniform(x, 2 * in_size, -2.0, 2.0, "acc x");
        fill_uniform(dy, 4 * out_size, -1.0, 1.0, "acc dy");
        nn_backward_opts_t o = {.input_grad = 1};
        int ok = nn_forward(one, x, 2, 0) == 0;
        for (int part = 0; ok && part < 2; part++) { /* the single op with dy of a, then of b */
            for (int i = 0; i < 2; i++)
                memcpy(dy1 + i * out_size, dy + (2 * i + part) * out_size, sizeof(float) * out_size);
            ok = nn_backward(one, 1, dy1, part ? dx_b : dx_a, &o) == 0;
        }
        ok = ok && nn_forward(two, x, 2, 0) == 0 && nn_backward(two, 4, dy, dx2, &o) == 0;
        TH_CHECK(ok, "%s: passes", k->name);
        double worst = 0.0;
        for (size_t i = 0; ok && i < 2 * in_size; i++) {
            const double want = (double)dx_a[i] + dx_b[i];
            worst = fmax(worst, fabs(dx2[i] - want) / (1.0 + fabs(want)));
        }
        printf("    %-17s gradient of two readers against the sum of each alone: %.2e\n",
               k->name, worst);
        TH_CHECK(worst < 1e-6, "%s: accumulated input gradient off by %.2e", k->name, worst);
        nn_model_destroy(one);
        nn_model_destroy(two);
        free(x); free(dy); free(dx_a); free(dx_b); free(dx2); free(dy1);
    }
}

/* ---- the ConvNeXt block through the importer ---- */

static int count_op(const nn_model_t *m, nn_op op, int axis)
{
    int k = 0;
    for (int i = 0; i < m->n_nodes; i++)
        k += m->nodes[i].op == op && (axis < 0 || m->nodes[i].axis == axis);
    return k;
}

static int count_pointwise(const nn_model_t *m)
{
    int k = 0;
    for (int i = 0; i < m->n_nodes; i++)
        k += m->nodes[i].op == NN_CONV && m->nodes[i].kh == 1 && m->nodes[i].kw == 1;
    return k;
}

/* Imports SPEC at opset, checks the graph with check_graph, and the logits and input
 * gradients of 2 random images against PyTorch float64. */
static void check_spec(const char *spec, int opset, int size,
                       void (*check_graph)(const nn_model_t *m, int opset))
{
    char path[512];
    if (tok_export(REF_SCRIPT, "fk", spec, opset, 5, path, sizeof path) < 0) {
        TH_CHECK(0, "export of %s at opset %d failed", spec, opset);
        return;
    }
    nn_model_t *m = NULL;
    TH_CHECK(onnx_import_file(path, &(onnx_import_opts_t){.normalize = "unit"}, &m, NULL) == 0,
             "import of %s", path);
    if (!m)
        return;
    check_graph(m, opset);
    enum { N_IMG = 2 };
    const size_t chw = 3 * (size_t)size * size;
    float *x = malloc(sizeof(float) * N_IMG * chw), *g = malloc(sizeof(float) * chw);
    fill_uniform(x, N_IMG * chw, 0.0, 1.0, spec);
    double *ref = tok_reference(REF_SCRIPT, "fk", spec, path, x, N_IMG * chw, N_IMG, 1,
                                N_IMG * (2 + chw));
    sal_ws_t *ws = NULL;
    TH_CHECK(ref && sal_ws_create(&ws, m, 1, "unit") == 0, "reference and workspace");
    for (int i = 0; ref && ws && i < N_IMG; i++) {
        const double *r = ref + i * (2 + chw);
        TH_CHECK(sal_gradient(ws, x + i * chw, 1, 0, g) == 0, "gradient");
        double e_logit = tok_rel_l2_d(nn_output(m), r, 2), e_grad = tok_rel_l2_d(g, r + 2, chw);
        printf("    %s opset %d image %d: logits rel. L2 %.2e, input gradient %.2e\n", spec,
               opset, i, e_logit, e_grad);
        TH_CHECK(e_logit < 1e-5 && e_grad < 1e-5, "%s differs from PyTorch float64", spec);
    }
    if (ws && !strcmp(spec, "convnext")) { /* the model file keeps the layer norm's axis */
        char h5[512];
        snprintf(h5, sizeof h5, "%s/fk_%s_%d.h5", th_tmp_dir(), spec, opset);
        nn_model_t *back = NULL;
        float y[2];
        nn_forward(m, x, 1, 0);
        memcpy(y, nn_output(m), sizeof y);
        TH_CHECK(modelfile_save(h5, m, NULL) == 0 && modelfile_load(h5, &back) == 0,
                 "round trip");
        if (back) {
            TH_EQ_INT(count_op(back, NN_LAYERNORM, 1), count_op(m, NN_LAYERNORM, 1));
            TH_CHECK(nn_model_prepare(back, 1) == 0 && nn_forward(back, x, 1, 0) == 0 &&
                         !memcmp(y, nn_output(back), sizeof y),
                     "logits after the model file round trip");
        }
        nn_model_destroy(back);
    }
    sal_ws_destroy(ws);
    nn_model_destroy(m);
    free(ref);
    free(x);
    free(g);
}

static void convnext_graph(const nn_model_t *m, int opset)
{
    /* the stem's norm, 3 blocks, the downsampling norm; two 1x1 convolutions a block */
    TH_CHECK(count_op(m, NN_TRANSPOSE, -1) == 0, "opset %d: %d transposes left", opset,
             count_op(m, NN_TRANSPOSE, -1));
    TH_EQ_INT(count_op(m, NN_LAYERNORM, 1), 5);
    TH_EQ_INT(count_op(m, NN_LAYERNORM, -1), 5);
    TH_EQ_INT(count_pointwise(m), 6);
    TH_EQ_INT(count_op(m, NN_LINEAR, -1), 0);
    TH_EQ_INT(count_op(m, NN_GELU, -1), 3);
}

static void fallback_graph(const nn_model_t *m, int opset)
{
    /* the residual in channels-last reads two transposes built for it, and its sum is
     * transposed back */
    TH_CHECK(count_op(m, NN_TRANSPOSE, -1) == 3, "opset %d: %d transposes, expected 3", opset,
             count_op(m, NN_TRANSPOSE, -1));
    TH_EQ_INT(count_op(m, NN_LAYERNORM, 1), 1);
    TH_EQ_INT(count_pointwise(m), 2);
}

static void test_convnext_block_import(void)
{
    if (!th_python_has("torch, torchvision, onnx, numpy"))
        TH_SKIP("python3-torch, torchvision or onnx not installed for %s", th_python());
    check_spec("convnext", 13, 40, convnext_graph);
    check_spec("convnext", 17, 40, convnext_graph);
}

static void test_channels_last_fallback(void)
{
    if (!th_python_has("torch, torchvision, onnx, numpy"))
        TH_SKIP("python3-torch, torchvision or onnx not installed for %s", th_python());
    check_spec("fallback", 13, 24, fallback_graph);
}

int main(void)
{
    sc_log_set_level(SC_LOG_WARN);
    TH_RUN(test_layernorm_channels_plain);
    TH_RUN(test_layernorm_channels_match_torch);
    TH_RUN(test_layernorm_channels_equals_transposed);
    TH_RUN(test_layernorm_channels_accumulates);
    TH_RUN(test_layernorm_channels_batch_invariant);
    TH_RUN(test_first_contribution_then_accumulation);
    TH_RUN(test_convnext_block_import);
    TH_RUN(test_channels_last_fallback);
    return th_report();
}
