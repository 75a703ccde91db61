/*
 * test_ops.c - the op table (nn/op.h) and the ops added through it: every
 * entry complete and named once; FLOPs from the table; each elementwise op's
 * forward and input gradient against PyTorch float64 (tests/ref/ops_torch_ref.py,
 * boundary points of the piecewise ops included) and against central finite
 * differences through the model graph; a model file keeps the new op names;
 * the broadcasting Mul (equal shapes and a per-channel gate) against finite
 * differences; a PyTorch network with Hardswish, ReLU6 (Clip), Hardsigmoid,
 * SiLU (Sigmoid and Mul, imported as one silu node) and a squeeze-and-excitation
 * gate, exported to ONNX opset 14, imports and matches PyTorch float64
 * (tests/ref/ops_onnx_ref.py).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/modelfile.h"
#include "nn/onnx_import.h"
#include "nn/op.h"
#include "nn/vmath.h"
#include "rng.h"
#include "sc.h"
#include "testhelp.h"

static const nn_op unary_ops[] = {NN_SILU, NN_HARDSWISH, NN_HARDSIGMOID, NN_RELU6, NN_GELU,
                                  NN_GELU_TANH};
#define N_UNARY ((int)(sizeof unary_ops / sizeof unary_ops[0]))

/* Values: 2 samples x 2 channels x 4 x 5; spread over [-8, 8] with the kinks
 * of the piecewise ops (-3, 0, 3, 6) hit exactly. */
enum { T_N = 2, T_C = 2, T_H = 4, T_W = 5, T_COUNT = T_N * T_C * T_H * T_W };
static const float kinks[] = {-3.0f, 0.0f, 3.0f, 6.0f, -6.0f};

static void test_values(float *x, float *r)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(11, "test_ops"), 0, 0, 0);
    for (int i = 0; i < T_COUNT; i++) {
        x[i] = (float)(16.0 * rng_stream_uniform(&rs) - 8.0);
        r[i] = (float)(2.0 * rng_stream_uniform(&rs) - 1.0);
    }
    for (int k = 0; k < (int)(sizeof kinks / sizeof kinks[0]); k++)
        x[7 * k + 3] = kinks[k];
}

static nn_model_t *unary_model(nn_op op)
{
    nn_model_t *m = nn_model_create(T_C, T_H, T_W);
    int in = 0;
    if (!m || nn_add_node(m, "act", op, 1, &in, NULL) < 0 || nn_model_finalize(m, 1) < 0 ||
        nn_model_prepare(m, T_N) < 0) {
        nn_model_destroy(m);
        return NULL;
    }
    return m;
}

static void test_table_is_complete(void)
{
    for (int i = 0; i < NN_OP_COUNT; i++) {
        const nn_op_def_t *def = nn_op_def((nn_op)i);
        TH_CHECK(def && def->name && *def->name, "op %d has no table entry or name", i);
        if (!def)
            continue;
        TH_EQ_INT(nn_op_from_name(def->name), i);
        TH_CHECK(!strcmp(nn_op_name((nn_op)i), def->name), "nn_op_name(%d)", i);
        if (i != NN_INPUT)
            TH_CHECK(def->forward && def->backward, "op '%s' lacks forward or backward",
                     def->name);
        TH_CHECK(!def->pc_canonical || def->pc == NN_PC_WINDOW,
                 "op '%s' canonicalizes without a window rule", def->name);
        TH_CHECK(def->pc != NN_PC_WINDOW || def->write_attrs,
                 "windowed op '%s' does not save its window", def->name);
    }
    TH_EQ_INT(nn_op_from_name("no-such-op"), NN_OP_COUNT);
    TH_CHECK(nn_op_def(NN_OP_COUNT) == NULL, "out-of-range op has an entry");
    TH_CHECK(nn_op_def(NN_RELU)->backward_guided && !nn_op_def(NN_SILU)->backward_guided,
             "guided mode belongs to ReLU only");
}

static void test_flops_from_table(void)
{
    nn_model_t *m = nn_model_create(3, 8, 8);
    int c = nn_add_conv(m, "conv", 0, 4, 3, 3, 1, 1, NULL, 1, 1);
    int r = nn_add_relu(m, "relu", c);
    int g = nn_add_gap(m, "gap", r);
    nn_add_dense(m, "fc", g, 2, 1);
    TH_CHECK(nn_model_finalize(m, 1) == 0, "finalize");
    double expect = 2.0 * 4 * 3 * 9 * 64 /* conv */ + 4 * 64 /* gap */ + 2.0 * 2 * 4 /* fc */;
    TH_NEAR(nn_forward_flops(m), expect, 0, 0);
    nn_model_destroy(m);
}

static void test_unary_ops_match_torch(void)
{
    if (!th_python_has("torch, numpy"))
        TH_SKIP("python3-torch not installed for %s", th_python());
    float x[T_COUNT], r[T_COUNT];
    test_values(x, r);
    char xp[512], rp[512], op_path[512], cmd[4096];
    snprintf(xp, sizeof xp, "%s/ops.x.f32", th_tmp_dir());
    snprintf(rp, sizeof rp, "%s/ops.r.f32", th_tmp_dir());
    snprintf(op_path, sizeof op_path, "%s/ops.ref.f64", th_tmp_dir());
    FILE *f = fopen(xp, "wb");
    fwrite(x, sizeof(float), T_COUNT, f);
    fclose(f);
    f = fopen(rp, "wb");
    fwrite(r, sizeof(float), T_COUNT, f);
    fclose(f);
    int off = snprintf(cmd, sizeof cmd, "%s tests/ref/ops_torch_ref.py %s %s %s", th_python(), xp,
                       rp, op_path);
    for (int k = 0; k < N_UNARY; k++)
        off += snprintf(cmd + off, sizeof cmd - off, " %s", nn_op_name(unary_ops[k]));
    TH_CHECK(system(cmd) == 0, "reference script failed: %s", cmd);
    double *ref = malloc(sizeof(double) * 2 * T_COUNT * N_UNARY);
    f = fopen(op_path, "rb");
    size_t got = f ? fread(ref, sizeof(double), 2 * T_COUNT * N_UNARY, f) : 0;
    if (f)
        fclose(f);
    TH_EQ_INT(got, 2 * T_COUNT * N_UNARY);
    for (int k = 0; k < N_UNARY && got == (size_t)(2 * T_COUNT * N_UNARY); k++) {
        nn_model_t *m = unary_model(unary_ops[k]);
        TH_CHECK(m, "model with %s", nn_op_name(unary_ops[k]));
        if (!m)
            continue;
        float dx[T_COUNT], yref[T_COUNT], dref[T_COUNT];
        nn_forward(m, x, T_N, 0);
        nn_backward_opts_t o = {.input_grad = 1};
        nn_backward(m, m->output, r, dx, &o);
        for (int i = 0; i < T_COUNT; i++) {
            yref[i] = (float)ref[(2 * k) * T_COUNT + i];
            dref[i] = (float)ref[(2 * k + 1) * T_COUNT + i];
        }
        double ey = th_rel_err(nn_output(m), yref, T_COUNT), ed = th_rel_err(dx, dref, T_COUNT);
        TH_CHECK(ey < 2e-6 && ed < 2e-6, "%s: forward error %.3g, gradient error %.3g (max rel)",
                 nn_op_name(unary_ops[k]), ey, ed);
        /* at the kinks the gradient is PyTorch's one-sided choice, to the bit of its rule */
        for (int j = 0; j < (int)(sizeof kinks / sizeof kinks[0]); j++) {
            int i = 7 * j + 3;
            TH_CHECK(fabs(dx[i] - dref[i]) <= 1e-6 * fabs(dref[i]) + 1e-7,
                     "%s at x = %g: gradient %.9g, PyTorch %.9g", nn_op_name(unary_ops[k]), x[i],
                     dx[i], dref[i]);
        }
        nn_model_destroy(m);
    }
    free(ref);
}

/* GELU (the erf form) on a dense grid of [-9, 9] against the double erfc: the forward and
 * the input gradient pointwise (the gradient relative to the size of its two terms, Phi and
 * x phi, since it crosses zero near x = -0.75), so the lower tail keeps its relative
 * accuracy: within 1e-6 for |x| <= 4 and 5e-6 beyond, where the rounding of x^2 / 2 in the
 * exponent grows with x^2. */
static void test_gelu_dense_accuracy(void)
{
    enum { N = 36001 };
    nn_model_t *m = nn_model_create(1, 1, N);
    int in = 0;
    const int built = m && nn_add_node(m, "gelu", NN_GELU, 1, &in, NULL) >= 0 &&
                      nn_model_finalize(m, 1) == 0 && nn_model_prepare(m, 1) == 0;
    TH_CHECK(built, "one-node GELU model");
    if (!built) {
        nn_model_destroy(m);
        return;
    }
    float *x = malloc(sizeof(float) * N), *dy = malloc(sizeof(float) * N),
          *dx = malloc(sizeof(float) * N);
    for (int i = 0; i < N; i++) {
        x[i] = (float)(-9.0 + 18.0 * i / (N - 1));
        dy[i] = 1.0f;
    }
    nn_forward(m, x, 1, 0);
    nn_backward_opts_t o = {.input_grad = 1};
    nn_backward(m, m->output, dy, dx, &o);
    const float *y = nn_output(m);
    double worst_y = 0.0, worst_d = 0.0, at_y = 0.0, at_d = 0.0;
    int bad = 0;
    for (int i = 0; i < N; i++) {
        const double xd = x[i], phi = 0.5 * erfc(-xd / sqrt(2.0)),
                     pdf = exp(-0.5 * xd * xd) / sqrt(2.0 * 3.14159265358979323846);
        const double tol = fabs(xd) <= 4.0 ? 1e-6 : 5e-6;
        const double ey = xd == 0.0 ? fabs(y[i]) : fabs(y[i] / (xd * phi) - 1.0);
        const double ed = fabs(dx[i] - (phi + xd * pdf)) / (phi + fabs(xd) * pdf);
        bad += ey > tol || ed > tol;
        if (ey / tol > worst_y) {
            worst_y = ey / tol;
            at_y = xd;
        }
        if (ed / tol > worst_d) {
            worst_d = ed / tol;
            at_d = xd;
        }
    }
    TH_CHECK(bad == 0,
             "%d of %d points off: worst forward %.3g of its tolerance at x = %g, gradient %.3g "
             "at x = %g",
             bad, N, worst_y, at_y, worst_d, at_d);
    free(x);
    free(dy);
    free(dx);
    nn_model_destroy(m);
}

/* Are a and b the same bits, NaN of any payload counting as one? */
static int same_float(float a, float b)
{
    return (isnan(a) && isnan(b)) || !memcmp(&a, &b, sizeof a);
}

/* The GELU's loops (the op's forward and backward, the packing's in-place
 * loops), the sigmoid and the SiLU op give each value the bits of the scalar
 * functions of nn/vmath.h: the
 * 16-lane AVX-512 forms where the build has them (NN_HAVE_V16), over a dense
 * sweep of [-20, 20], the exponential's clamps and special values (signed
 * zeros, infinities, NaN, subnormals), in an array whose length leaves a
 * partial last vector. */
static void test_gelu_vector_bits(void)
{
    static const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, -1e-40f,
                                    1e-30f, -1e-30f, 1e30f, -1e30f, 13.2f, -13.2f, 13.3f,
                                    -13.3f, 87.3f, -87.3f, 88.3f, -88.3f, 200.0f, -200.0f};
    enum { NS = (int)(sizeof special / sizeof special[0]), ND = 40001, N = ND + NS };
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N),
          *g = malloc(sizeof(float) * N);
    for (int i = 0; i < ND; i++)
        x[i] = (float)(-20.0 + 40.0 * i / (ND - 1));
    memcpy(x + ND, special, sizeof special);
    memcpy(y, x, sizeof(float) * N);
    nn_gelu_apply(y, N);
    for (int i = 0; i < N; i++)
        g[i] = 1.5f;
    nn_gelu_backward_apply(g, x, N);
    int bad_y = 0, bad_g = 0, bad_e = 0, first = -1;
    for (int i = 0; i < N; i++) {
        const int by = !same_float(y[i], x[i] * nn_phif(x[i]));
        const int bg = !same_float(g[i], 1.5f * nn_gelu_gradf(x[i]));
        bad_y += by;
        bad_g += bg;
        if ((by || bg) && first < 0)
            first = i;
    }
    int bad_s = 0;
#ifdef NN_HAVE_V16
    for (int i = 0; i + 16 <= N; i += 16) {
        float e[16], arg[16], sg[16];
        for (int j = 0; j < 16; j++)
            arg[j] = 5.0f * x[i + j];
        _mm512_storeu_ps(e, nn_expf16(_mm512_loadu_ps(arg)));
        _mm512_storeu_ps(sg, nn_sigmoidf16(_mm512_loadu_ps(x + i)));
        for (int j = 0; j < 16; j++) {
            bad_e += !same_float(e[j], nn_expf(arg[j]));
            bad_s += !same_float(sg[j], nn_sigmoidf(x[i + j]));
        }
    }
#endif
    TH_CHECK(!bad_y && !bad_g && !bad_e && !bad_s,
             "vector and scalar forms differ: %d forward, %d gradient, %d exponential, %d "
             "sigmoid values (first at x = %g)", bad_y, bad_g, bad_e, bad_s,
             first >= 0 ? x[first] : 0.0);
    /* the SiLU op's passes against its scalar definition: two SiLUs of the input added,
     * so that the second backward accumulates onto the first's gradient */
    nn_model_t *m = nn_model_create(1, 1, N);
    int in = 0;
    const int si = m ? nn_add_node(m, "silu", NN_SILU, 1, &in, NULL) : -1;
    const int sj = si > 0 ? nn_add_node(m, "silu2", NN_SILU, 1, &in, NULL) : -1;
    const int sum = sj > 0 ? nn_add_add(m, "sum", si, sj) : -1;
    const int built = sum > 0 && nn_model_finalize(m, 1) == 0 && nn_model_prepare(m, 1) == 0 &&
                      nn_model_keep(m, si) == 0;
    TH_CHECK(built, "SiLU model");
    if (built) {
        float *dy = malloc(sizeof(float) * N), *dx = malloc(sizeof(float) * N);
        for (int i = 0; i < N; i++)
            dy[i] = 0.75f;
        nn_forward(m, x, 1, 0);
        nn_backward_opts_t o = {.input_grad = 1};
        nn_backward(m, sum, dy, dx, &o);
        int bad_f = 0, bad_b = 0;
        for (int i = 0; i < N; i++) {
            const float s1 = nn_sigmoidf(x[i]), t = 0.75f * (s1 * (1.0f + x[i] * (1.0f - s1)));
            bad_f += !same_float(nn_node_out(m, si)[i], x[i] * s1);
            bad_b += !same_float(dx[i], t + t);
        }
        TH_CHECK(!bad_f && !bad_b, "SiLU op: %d forward, %d gradient values off its definition",
                 bad_f, bad_b);
        free(dy);
        free(dx);
    }
    nn_model_destroy(m);
    free(x);
    free(y);
    free(g);
}

static double weighted_sum(nn_model_t *m, const float *x, const float *r)
{
    nn_forward(m, x, T_N, 0);
    double L = 0.0;
    for (int i = 0; i < T_COUNT; i++)
        L += (double)r[i] * nn_output(m)[i];
    return L;
}

static void test_unary_ops_finite_differences(void)
{
    float x[T_COUNT], r[T_COUNT], dx[T_COUNT];
    test_values(x, r);
    const float eps = 1e-2f;
    for (int k = 0; k < N_UNARY; k++) {
        nn_model_t *m = unary_model(unary_ops[k]);
        TH_CHECK(m, "model with %s", nn_op_name(unary_ops[k]));
        if (!m)
            continue;
        nn_forward(m, x, T_N, 0);
        nn_backward_opts_t o = {.input_grad = 1};
        nn_backward(m, m->output, r, dx, &o);
        int bad = 0, checked = 0;
        for (int i = 0; i < T_COUNT; i++) {
            int near_kink = 0;
            for (int j = 0; j < 4; j++)
                near_kink |= fabsf(x[i] - kinks[j]) < 2.0f * eps;
            if (near_kink)
                continue;
            float xs = x[i];
            x[i] = xs + eps;
            double lp = weighted_sum(m, x, r);
            x[i] = xs - eps;
            double lm = weighted_sum(m, x, r);
            x[i] = xs;
            double fd = (lp - lm) / (2.0 * eps);
            checked++;
            if (fabs(fd - dx[i]) > 1e-3 * fabs(fd) + 2e-4 && bad++ < 3)
                printf("    %s: x = %g: analytic %.7g, finite difference %.7g\n",
                       nn_op_name(unary_ops[k]), xs, dx[i], fd);
        }
        TH_CHECK(bad == 0 && checked > T_COUNT / 2, "%s: %d of %d gradients off",
                 nn_op_name(unary_ops[k]), bad, checked);
        nn_model_destroy(m);
    }
}

/* out = a * sigmoid(gap(conv 1x1 of a)) + f + f * f, f = a * sigmoid(a), a = conv(x): both Mul
 * forms and a Mul of a node by itself. */
static void test_mul_finite_differences(void)
{
    nn_model_t *m = nn_model_create(T_C, T_H, T_W);
    int a = nn_add_conv(m, "conv", 0, 3, 3, 3, 1, 1, NULL, 1, 1);
    int g = nn_add_gap(m, "gap", a);
    g = nn_add_conv(m, "fc", g, 3, 1, 1, 1, 1, NULL, 0, 1);
    g = nn_add_sigmoid(m, "gate", g);
    int se[2] = {a, g};
    int e = nn_add_node(m, "se", NN_MUL, 2, se, NULL);
    int s = nn_add_sigmoid(m, "sig", a);
    int sl[2] = {a, s};
    int f = nn_add_node(m, "silu", NN_MUL, 2, sl, NULL);
    int sq = nn_add_node(m, "square", NN_MUL, 2, (int[]){f, f}, NULL); /* both inputs one node */
    nn_add_add(m, "sum", e, nn_add_add(m, "sum_sq", f, sq));
    int bad_in[2] = {g, a};
    TH_CHECK(nn_add_node(m, "bad", NN_MUL, 2, bad_in, NULL) < 0, "a gate first is refused");
    TH_CHECK(nn_model_finalize(m, 3) == 0 && nn_model_prepare(m, T_N) == 0, "model");
    size_t count;
    float *W = nn_param(m, nn_find(m, "fc"), NN_P_WEIGHT, &count);
    for (size_t i = 0; i < count; i++)
        W[i] *= 4.0f; /* gates away from 1/2 */
    float x[T_COUNT], r[3 * T_N * T_H * T_W], dx[T_COUNT];
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(12, "test_mul"), 0, 0, 0);
    for (int i = 0; i < T_COUNT; i++)
        x[i] = (float)(2.0 * rng_stream_uniform(&rs) - 1.0);
    const int out_count = (int)(T_N * nn_node_size(&m->nodes[m->output]));
    for (int i = 0; i < out_count; i++)
        r[i] = (float)(2.0 * rng_stream_uniform(&rs) - 1.0);
    nn_forward(m, x, T_N, 0);
    nn_backward_opts_t o = {.input_grad = 1};
    nn_backward(m, m->output, r, dx, &o);
    const float eps = 1e-2f;
    int bad = 0;
    for (int i = 0; i < T_COUNT; i++) {
        float xs = x[i];
        double L[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            x[i] = xs + (sgn ? -eps : eps);
            nn_forward(m, x, T_N, 0);
            L[sgn] = 0.0;
            for (int j = 0; j < out_count; j++)
                L[sgn] += (double)r[j] * nn_output(m)[j];
        }
        x[i] = xs;
        double fd = (L[0] - L[1]) / (2.0 * eps);
        if (fabs(fd - dx[i]) > 2e-3 * fabs(fd) + 5e-4 && bad++ < 3)
            printf("    x[%d]: analytic %.7g, finite difference %.7g\n", i, dx[i], fd);
    }
    TH_EQ_INT(bad, 0);
    nn_model_destroy(m);
}

static void test_model_file_keeps_new_ops(void)
{
    nn_model_t *m = nn_model_create(1, 6, 6);
    int in = 0;
    int c = nn_add_conv(m, "conv", in, 3, 3, 3, 1, 1, NULL, 1, 1);
    int prev = c;
    for (int k = 0; k < N_UNARY; k++) {
        char name[32];
        snprintf(name, sizeof name, "act%d", k);
        prev = nn_add_node(m, name, unary_ops[k], 1, &prev, NULL);
    }
    int g = nn_add_gap(m, "gap", prev);
    nn_add_dense(m, "fc", g, 2, 1);
    TH_CHECK(nn_model_finalize(m, 5) == 0, "finalize");
    char path[512];
    snprintf(path, sizeof path, "%s/ops_model.h5", th_tmp_dir());
    TH_CHECK(modelfile_save(path, m, NULL) == 0, "save %s", path);
    nn_model_t *back = NULL;
    TH_CHECK(modelfile_load(path, &back) == 0 && back, "load %s", path);
    if (back) {
        TH_EQ_INT(back->n_nodes, m->n_nodes);
        for (int i = 0; i < m->n_nodes && i < back->n_nodes; i++)
            TH_EQ_INT(back->nodes[i].op, m->nodes[i].op);
        float x[36], y0[2], y1[2];
        for (int i = 0; i < 36; i++)
            x[i] = (float)(i % 7) - 3.0f;
        nn_model_prepare(m, 1);
        nn_model_prepare(back, 1);
        nn_forward(m, x, 1, 0);
        memcpy(y0, nn_output(m), sizeof y0);
        nn_forward(back, x, 1, 0);
        memcpy(y1, nn_output(back), sizeof y1);
        TH_CHECK(!memcmp(y0, y1, sizeof y0), "reloaded model computes other logits");
    }
    nn_model_destroy(back);
    nn_model_destroy(m);
}

static void test_onnx_activations_match_torch(void)
{
    if (!onnx_import_available())
        TH_SKIP("built without ONNX import");
    if (!th_python_has("torch, onnx, numpy"))
        TH_SKIP("python3-torch/python3-onnx not installed for %s", th_python());
    enum { IN = 3 * 16 * 16, TARGET = 1 };
    char onnx_path[512], xp[512], rp[512], cmd[2048];
    snprintf(onnx_path, sizeof onnx_path, "%s/ops_act.onnx", th_tmp_dir());
    snprintf(xp, sizeof xp, "%s/ops_act.x.f32", th_tmp_dir());
    snprintf(rp, sizeof rp, "%s/ops_act.ref.f64", th_tmp_dir());
    float x[IN], dx[IN], ref_dx[IN], ref_logits[2];
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(4, "ops_act"), 0, 0, 0);
    for (int i = 0; i < IN; i++)
        x[i] = (float)(4.0 * rng_stream_uniform(&rs) - 2.0);
    FILE *f = fopen(xp, "wb");
    fwrite(x, sizeof(float), IN, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s tests/ref/ops_onnx_ref.py %s 14 %s %d %s >/dev/null 2>&1",
             th_python(), onnx_path, xp, TARGET, rp);
    TH_CHECK(system(cmd) == 0, "reference script failed: %s", cmd);
    double ref[2 + IN];
    f = fopen(rp, "rb");
    size_t got = f ? fread(ref, sizeof(double), 2 + IN, f) : 0;
    if (f)
        fclose(f);
    TH_EQ_INT(got, 2 + IN);
    nn_model_t *m = NULL;
    TH_CHECK(onnx_import_file(onnx_path, NULL, &m, NULL) == 0 && m, "import %s", onnx_path);
    if (!m || got != 2 + IN) {
        nn_model_destroy(m);
        return;
    }
    int seen[NN_OP_COUNT] = {0};
    for (int i = 0; i < m->n_nodes; i++)
        seen[m->nodes[i].op]++;
    TH_EQ_INT(seen[NN_HARDSWISH], 2);
    TH_EQ_INT(seen[NN_RELU6], 1);
    TH_EQ_INT(seen[NN_HARDSIGMOID], 1);
    TH_EQ_INT(seen[NN_MUL], 1);     /* the gate; x * Sigmoid(x) is one silu node */
    TH_EQ_INT(seen[NN_SILU], 1);
    TH_EQ_INT(seen[NN_SIGMOID], 1); /* the gate's sigmoid */
    nn_model_prepare(m, 1);
    nn_forward(m, x, 1, 0);
    const float *logits = nn_node_out(m, nn_logits_node(m));
    for (int k = 0; k < 2; k++)
        ref_logits[k] = (float)ref[k];
    for (int i = 0; i < IN; i++)
        ref_dx[i] = (float)ref[2 + i];
    int target = TARGET;
    nn_backward_opts_t o = {.input_grad = 1};
    nn_backward_logit(m, &target, dx, &o);
    double el = th_rel_l2(logits, ref_logits, 2), eg = th_rel_l2(dx, ref_dx, IN);
    TH_CHECK(el < 1e-4 && eg < 1e-4, "logits error %.3g, input gradient error %.3g (rel L2)", el,
             eg);
    nn_model_destroy(m);
}

int main(void)
{
    sc_log_set_level(SC_LOG_ERROR);
    TH_RUN(test_table_is_complete);
    TH_RUN(test_flops_from_table);
    TH_RUN(test_unary_ops_match_torch);
    TH_RUN(test_unary_ops_finite_differences);
    TH_RUN(test_gelu_dense_accuracy);
    TH_RUN(test_gelu_vector_bits);
    TH_RUN(test_mul_finite_differences);
    TH_RUN(test_model_file_keeps_new_ops);
    TH_RUN(test_onnx_activations_match_torch);
    return th_report();
}
