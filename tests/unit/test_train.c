/*
 * test_train.c - the training module: optimizer steps against a hand
 * computation and against torch.optim (tests/ref/train_step_ref.py), the loss
 * gradient, the exact AUC against hand values and sklearn, the shard rule,
 * permutations, augmentation, the schedule, and whole training runs on a
 * small synthetic data set written by the test (learning, provenance, label
 * permutation, bit-exact resume after a stop, configuration errors).
 *
 * The data-parallel equivalence (P ranks = 1 rank) is tests/mpi/test_train_mpi.sh.
 */
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/png.h"
#include "nn/modelfile.h"
#include "nn/zoo.h"
#include "rng.h"
#include "sc.h"
#include "testhelp.h"
#include "train/dp.h"
#include "train/optim.h"
#include "train/train.h"

/* ------------------------------------------------------------ pure functions */

static void test_auc_hand(void)
{
    /* positives 0.9, 0.5, 0.3; negatives 0.9, 0.1: pairs 0.5+1 + 0+1 + 0+1 = 3.5 of 6 */
    double s[5] = {0.9, 0.9, 0.5, 0.1, 0.3};
    int y[5] = {1, 0, 1, 0, 1};
    TH_NEAR(train_auc(s, y, 5), 3.5 / 6.0, 0, 1e-15);
    int y_perfect[5] = {1, 1, 1, 0, 0};
    double s_perfect[5] = {3, 2, 1, 0, -1};
    TH_NEAR(train_auc(s_perfect, y_perfect, 5), 1.0, 0, 1e-15);
    TH_NEAR(train_auc(s_perfect, (int[]){0, 0, 0, 1, 1}, 5), 0.0, 0, 1e-15);
    double constant[4] = {7, 7, 7, 7};
    TH_NEAR(train_auc(constant, (int[]){1, 0, 1, 0}, 4), 0.5, 0, 1e-15);
    TH_CHECK(isnan(train_auc(s, (int[]){1, 1, 1, 1, 1}, 5)), "one class must give NaN");
}

static void test_auc_sklearn(void)
{
    if (!th_python_has("sklearn, numpy"))
        TH_SKIP("python3-sklearn not installed for %s", th_python());
    enum { N = 500 };
    double s[N];
    int y[N];
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(9, "auc"), 0, 0, 0);
    char path[512], cmd[1024];
    snprintf(path, sizeof path, "%s/auc.txt", th_tmp_dir());
    FILE *f = fopen(path, "w");
    for (int i = 0; i < N; i++) {
        y[i] = rng_stream_uniform(&rs) < 0.4;
        /* coarse scores: many ties */
        s[i] = floor(10 * (rng_stream_uniform(&rs) + 0.3 * y[i])) / 10;
        fprintf(f, "%d %.17g\n", y[i], s[i]);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "%s -c \"import numpy as np; from sklearn.metrics import roc_auc_score; "
             "d = np.loadtxt('%s'); print('%%.17g' %% roc_auc_score(d[:,0], d[:,1]))\"",
             th_python(), path);
    FILE *p = popen(cmd, "r");
    double ref = NAN;
    TH_CHECK(p && fscanf(p, "%lf", &ref) == 1, "sklearn reference failed: %s", cmd);
    if (p)
        pclose(p);
    double got = train_auc(s, y, N);
    TH_NEAR(got, ref, 0, 1e-12);
    TH_CHECK(got > 0.6 && got < 0.95, "AUC %g: the data should be informative, not perfect", got);
}

static void test_shard_rule(void)
{
    for (int batch = 1; batch <= 40; batch++) {
        for (int ranks = 1; ranks <= batch; ranks++) {
            int expect = 0, lo = batch, hi = 0;
            for (int r = 0; r < ranks; r++) {
                int b, e;
                dp_shard(batch, ranks, r, &b, &e);
                TH_CHECK(b == expect, "B=%d P=%d r=%d starts at %d, expected %d", batch, ranks,
                         r, b, expect);
                expect = e;
                lo = e - b < lo ? e - b : lo;
                hi = e - b > hi ? e - b : hi;
            }
            TH_CHECK(expect == batch && lo >= 1 && hi - lo <= 1,
                     "B=%d P=%d: shards end at %d, sizes %d..%d", batch, ranks, expect, lo, hi);
        }
    }
    int b, e;
    dp_shard(32, 3, 1, &b, &e);
    TH_EQ_INT(b, 10);
    TH_EQ_INT(e, 21);
}

static int is_permutation(const int32_t *p, int n)
{
    char *seen = calloc((size_t)n, 1);
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        ok = p[i] >= 0 && p[i] < n && !seen[p[i]];
        if (ok)
            seen[p[i]] = 1;
    }
    free(seen);
    return ok;
}

static void test_permutations(void)
{
    enum { N = 1000 };
    int32_t a[N], b[N], c[N];
    train_label_permutation(4, N, a);
    train_label_permutation(4, N, b);
    train_label_permutation(5, N, c);
    TH_CHECK(is_permutation(a, N), "label permutation is not a permutation");
    TH_CHECK(!memcmp(a, b, sizeof a), "label permutation is not a function of the seed");
    int fixed = 0, same = 0;
    for (int i = 0; i < N; i++) {
        fixed += a[i] == i;
        same += a[i] == c[i];
    }
    /* a uniform permutation has ~1 fixed point; two seeds agree on ~1 position */
    TH_CHECK(fixed < 10 && same < 10, "permutations too regular: %d fixed, %d shared", fixed,
             same);
    train_epoch_order(4, 0, N, b);
    train_epoch_order(4, 1, N, c);
    TH_CHECK(is_permutation(b, N) && is_permutation(c, N), "epoch orders are not permutations");
    TH_CHECK(memcmp(b, c, sizeof b) && memcmp(a, b, sizeof a),
             "epoch orders must differ by epoch and from the label permutation");
}

static void test_augment(void)
{
    enum { R = 48 };
    float src[R * R], dst[R * R], dst2[R * R];
    for (int i = 0; i < R * R; i++)
        src[i] = 100.0f;
    train_augment(src, R, dst, 3, 0, 7);
    /* A constant image stays constant: (100 - 127.5) * c + 127.5 + b with c in [0.9, 1.1]
     * and |b| <= 12.75 stays within 100 +- (27.5 * 0.1 + 12.75). */
    for (int i = 1; i < R * R; i++)
        TH_CHECK(fabsf(dst[i] - dst[0]) < 1e-3f, "constant image not constant at %d", i);
    TH_CHECK(fabsf(dst[0] - 100.0f) <= 15.5f, "intensity jitter out of range: %g", dst[0]);
    /* A bright dot at the centre moves by at most shift (4%% of R) + rotation/scale of 0. */
    for (int i = 0; i < R * R; i++)
        src[i] = 0.0f;
    for (int y = 22; y < 26; y++)
        for (int x = 22; x < 26; x++)
            src[y * R + x] = 255.0f;
    int moved_any = 0;
    for (int sample = 0; sample < 20; sample++) {
        train_augment(src, R, dst, 3, 1, sample);
        double sx = 0, sy = 0, mass = 0;
        for (int y = 0; y < R; y++)
            for (int x = 0; x < R; x++) {
                double v = dst[y * R + x] - dst[0]; /* remove the brightness offset */
                if (v > 20) {
                    sx += v * x;
                    sy += v * y;
                    mass += v;
                }
            }
        TH_CHECK(mass > 0, "the dot disappeared");
        double cx = sx / mass - 23.5, cy = sy / mass - 23.5;
        TH_CHECK(fabs(cx) <= 0.04 * R + 0.6 && fabs(cy) <= 0.04 * R + 0.6,
                 "dot moved by (%g, %g), more than the 4%% shift", cx, cy);
        moved_any |= fabs(cx) > 0.3 || fabs(cy) > 0.3;
    }
    TH_CHECK(moved_any, "augmentation never shifted the image");
    train_augment(src, R, dst, 3, 1, 5);
    train_augment(src, R, dst2, 3, 1, 5);
    TH_CHECK(!memcmp(dst, dst2, sizeof dst), "augmentation is not a function of its key");
    train_augment(src, R, dst2, 3, 2, 5);
    TH_CHECK(memcmp(dst, dst2, sizeof dst), "augmentation does not change with the epoch");
}

static void test_schedule(void)
{
    TH_NEAR(train_lr_at("cosine", 0.1, 0, 100), 0.1, 1e-15, 0);
    TH_NEAR(train_lr_at("cosine", 0.1, 50, 100), 0.05, 1e-12, 0);
    TH_NEAR(train_lr_at("cosine", 0.1, 25, 100), 0.05 * (1 + sqrt(0.5)), 1e-12, 0);
    TH_NEAR(train_lr_at("constant", 0.1, 99, 100), 0.1, 1e-15, 0);
}

static void test_loss_grad(void)
{
    /* logits (0, 0.6), label 1: p1 = 1/(1+e^-0.6); loss = log(1+e^-0.6) */
    const float logits[4] = {0.0f, 0.6f, 2.0f, -1.0f};
    const int y[2] = {1, 1};
    float d[4];
    double correct, scores[2];
    double loss = train_loss_grad(logits, y, 2, 2, 4, d, &correct, scores);
    double p1 = 1.0 / (1.0 + exp(-0.6)), q1 = 1.0 / (1.0 + exp(3.0));
    TH_NEAR(loss, log1p(exp(-0.6)) + log1p(exp(3.0)), 1e-7, 0); /* float logits */
    TH_NEAR(d[0], (1 - p1) / 4, 1e-6, 0);
    TH_NEAR(d[1], (p1 - 1) / 4, 1e-6, 0);
    TH_NEAR(d[2], (1 - q1) / 4, 1e-6, 0);
    TH_NEAR(d[3], (q1 - 1) / 4, 1e-6, 0);
    TH_NEAR(correct, 1, 0, 0);
    TH_NEAR(scores[0], 0.6, 1e-6, 0);
    TH_NEAR(scores[1], -3.0, 1e-6, 0);
    /* one logit: BCE */
    const float z[2] = {1.5f, -0.5f};
    const int t[2] = {0, 0};
    loss = train_loss_grad(z, t, 2, 1, 2, d, &correct, NULL);
    TH_NEAR(loss, log1p(exp(1.5)) + log1p(exp(-0.5)), 1e-12, 0);
    TH_NEAR(d[0], 1.0 / (1.0 + exp(-1.5)) / 2, 1e-6, 0);
    TH_NEAR(correct, 1, 0, 0);
}

/* ------------------------------------------------------------ optimizer steps */

/* One SGD step on a dense 2 -> 2 layer, computed by hand:
 *   W = [[0.5, -0.25], [0.1, 0.2]], b = [0, 0.1], x = [1, 2], label 1
 *   logits = (0, 0.6); p = (0.3543436938, 0.6456563062); dlogits = p - e1
 *   dW = dlogits x^T, db = dlogits; W' = W - 0.1 dW, b' = b - 0.1 db. */
static void test_sgd_step_hand(void)
{
    nn_model_t *m = nn_model_create(2, 1, 1);
    int fc = nn_add_dense(m, "fc", 0, 2, 1);
    TH_CHECK(nn_model_finalize(m, 1) == 0 && nn_model_prepare(m, 1) == 0, "model");
    float *W = nn_param(m, fc, NN_P_WEIGHT, NULL), *b = nn_param(m, fc, NN_P_BIAS, NULL);
    const float W0[4] = {0.5f, -0.25f, 0.1f, 0.2f}, b0[2] = {0.0f, 0.1f}, x[2] = {1.0f, 2.0f};
    memcpy(W, W0, sizeof W0);
    memcpy(b, b0, sizeof b0);
    optim_config_t oc;
    optim_config_default(&oc, OPTIM_SGD);
    oc.momentum = 0.9;
    optim_t *opt = optim_create(m, &oc);
    int y = 1;
    float d[2];
    double correct;
    memset(m->grads, 0, sizeof(float) * m->n_params);
    nn_forward(m, x, 1, 1);
    double loss = train_loss_grad(nn_node_out(m, fc), &y, 1, 2, 1, d, &correct, NULL);
    nn_backward_opts_t o = {.param_grads = 1, .training = 1};
    nn_backward(m, fc, d, NULL, &o);
    optim_step(opt, m, 0.1);
    const double p0 = 0.3543436938, g[2] = {p0, -p0};
    TH_NEAR(loss, 0.4374879793, 1e-6, 0);
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++)
            TH_NEAR(W[i * 2 + j], W0[i * 2 + j] - 0.1 * g[i] * x[j], 1e-6, 1e-7);
        TH_NEAR(b[i], b0[i] - 0.1 * g[i], 1e-6, 1e-7);
    }
    TH_NEAR(W[0], 0.46456563, 1e-6, 0);
    TH_NEAR(W[3], 0.27086874, 1e-6, 0);
    /* Second step: v = 0.9 v + g', p -= lr v (PyTorch's momentum form). */
    float Wa[4], ba[2];
    memcpy(Wa, W, sizeof Wa);
    memcpy(ba, b, sizeof ba);
    memset(m->grads, 0, sizeof(float) * m->n_params);
    nn_forward(m, x, 1, 1);
    train_loss_grad(nn_node_out(m, fc), &y, 1, 2, 1, d, &correct, NULL);
    nn_backward(m, fc, d, NULL, &o);
    optim_step(opt, m, 0.1);
    for (int i = 0; i < 2; i++)
        TH_NEAR(b[i], ba[i] - 0.1 * (0.9 * g[i] + d[i]), 1e-6, 1e-7);
    TH_EQ_INT(optim_steps(opt), 2);
    optim_destroy(opt);
    nn_model_destroy(m);
}

/* The slab's BN running statistics are not trainable: an optimizer with weight
 * decay must leave them (and the slab padding) alone. */
static void test_optim_skips_statistics(void)
{
    nn_model_t *m = nn_model_create(3, 6, 6);
    int c = nn_add_conv(m, "c", 0, 4, 3, 3, 1, 1, NULL, 1, 0);
    int bn = nn_add_bn(m, "bn", c, 1e-5f, 0.1f, 1, 1);
    nn_add_dense(m, "fc", nn_add_gap(m, "gap", nn_add_relu(m, "r", bn)), 2, 1);
    nn_model_finalize(m, 2);
    size_t count;
    float *mean = nn_param(m, bn, NN_P_MEAN, &count), *var = nn_param(m, bn, NN_P_VAR, NULL);
    for (size_t i = 0; i < count; i++) {
        mean[i] = 0.25f;
        var[i] = 2.0f;
    }
    TH_CHECK(nn_model_prepare(m, 1) == 0 && m->grads, "training plan without gradients");
    for (size_t i = 0; i < m->n_params; i++)
        m->grads[i] = 1.0f;
    optim_config_t oc;
    optim_config_default(&oc, OPTIM_ADAM);
    oc.weight_decay = 0.5;
    optim_t *opt = optim_create(m, &oc);
    optim_step(opt, m, 0.01);
    for (size_t i = 0; i < count; i++)
        TH_CHECK(mean[i] == 0.25f && var[i] == 2.0f, "BN statistics changed by the optimizer");
    TH_EQ_INT(nn_count_trainable(m), 3 * 4 * 9 + 4 + 4 + 4 * 2 + 2);
    const size_t *off, *cnt;
    int n = optim_ranges(opt, &off, &cnt);
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += cnt[i];
    TH_EQ_INT(total, nn_count_trainable(m));
    optim_destroy(opt);
    nn_model_destroy(m);
}

/* A tiny conv-BN-ReLU-pool-conv-BN-ReLU-GAP-dense model trained K steps by the
 * engine and by torch.optim from the same model file and batches. */
static void compare_steps_with_torch(const char *tag, optim_kind_t kind, double lr, double wd,
                                     double tol)
{
    enum { K = 3, N = 5, C = 3, H = 10, W = 9 };
    nn_model_t *m = nn_model_create(C, H, W);
    int c1 = nn_add_conv(m, "c1", 0, 4, 3, 3, 1, 1, NULL, 1, 0);
    int b1 = nn_add_bn(m, "b1", c1, 1e-5f, 0.1f, 1, 1);
    int p1 = nn_add_maxpool(m, "p1", nn_add_relu(m, "r1", b1), 2, 2, 2, 2, NULL, 0, 1);
    int c2 = nn_add_conv(m, "c2", p1, 6, 3, 3, 2, 2, NULL, 1, 0);
    int b2 = nn_add_bn(m, "b2", c2, 1e-3f, 0.01f, 1, 1);
    int g = nn_add_gap(m, "gap", nn_add_relu(m, "r2", b2));
    int fc = nn_add_dense(m, "fc", g, 2, 1);
    TH_CHECK(fc > 0 && nn_model_finalize(m, 17) == 0 && nn_model_prepare(m, N) == 0, "model");
    /* move BN statistics off 0/1 so that their update is checked */
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(5, tag), 0, 0, 0);
    for (int id = 1; id < m->n_nodes; id++)
        for (int k = NN_P_MEAN; k <= NN_P_VAR; k++) {
            size_t count;
            float *p = nn_param(m, id, (nn_param_kind)k, &count);
            for (size_t i = 0; p && i < count; i++)
                p[i] = (float)(k == NN_P_VAR ? 0.5 + rng_stream_uniform(&rs)
                                             : rng_stream_uniform(&rs) - 0.5);
        }
    char model_path[512], in_path[512], lab_path[512], out_path[512], cmd[4096];
    snprintf(model_path, sizeof model_path, "%s/%s.h5", th_tmp_dir(), tag);
    snprintf(in_path, sizeof in_path, "%s/%s.in.f32", th_tmp_dir(), tag);
    snprintf(lab_path, sizeof lab_path, "%s/%s.lab.i32", th_tmp_dir(), tag);
    snprintf(out_path, sizeof out_path, "%s/%s.ref.f64", th_tmp_dir(), tag);
    TH_CHECK(modelfile_save(model_path, m, NULL) == 0, "save %s", model_path);
    static float x[K][N][C * H * W];
    int32_t y[K][N];
    for (int k = 0; k < K; k++)
        for (int i = 0; i < N; i++) {
            y[k][i] = (int32_t)rng_stream_below(&rs, 2);
            for (int j = 0; j < C * H * W; j++)
                x[k][i][j] = (float)(2 * rng_stream_uniform(&rs) - 1 + 0.3 * y[k][i]);
        }
    FILE *f = fopen(in_path, "wb");
    fwrite(x, sizeof x, 1, f);
    fclose(f);
    f = fopen(lab_path, "wb");
    fwrite(y, sizeof y, 1, f);
    fclose(f);

    optim_config_t oc;
    optim_config_default(&oc, kind);
    oc.weight_decay = wd;
    optim_t *opt = optim_create(m, &oc);
    double losses[K];
    float d[N * 2];
    for (int k = 0; k < K; k++) {
        double correct;
        int labels[N];
        for (int i = 0; i < N; i++)
            labels[i] = y[k][i];
        memset(m->grads, 0, sizeof(float) * m->n_params);
        nn_forward(m, &x[k][0][0], N, 1);
        losses[k] = train_loss_grad(nn_node_out(m, fc), labels, N, 2, N, d, &correct, NULL) / N;
        nn_backward_opts_t o = {.param_grads = 1, .training = 1};
        nn_backward(m, fc, d, NULL, &o);
        optim_step(opt, m, lr);
    }
    if (kind == OPTIM_SGD)
        snprintf(cmd, sizeof cmd, "%s tests/ref/train_step_ref.py %s %s %s %d %d sgd:%.17g:%.17g:%.17g %s",
                 th_python(), model_path, in_path, lab_path, K, N, lr, oc.momentum, wd, out_path);
    else
        snprintf(cmd, sizeof cmd,
                 "%s tests/ref/train_step_ref.py %s %s %s %d %d adam:%.17g:%.17g:%.17g:%.17g:%.17g %s",
                 th_python(), model_path, in_path, lab_path, K, N, lr, oc.beta1, oc.beta2, oc.eps,
                 wd, out_path);
    TH_CHECK(system(cmd) == 0, "reference script failed: %s", cmd);
    size_t total = K;
    for (int id = 1; id < m->n_nodes; id++)
        for (int k = 0; k < NN_P_KINDS; k++) {
            size_t count;
            if (nn_param(m, id, (nn_param_kind)k, &count))
                total += count;
        }
    double *ref = calloc(total, sizeof(double));
    f = fopen(out_path, "rb");
    size_t got = f ? fread(ref, sizeof(double), total, f) : 0;
    if (f)
        fclose(f);
    TH_EQ_INT(got, total);
    if (got == total) {
        for (int k = 0; k < K; k++)
            TH_NEAR(losses[k], ref[k], 1e-5, 0);
        size_t at = K;
        double worst = 0, moved = 0;
        const char *worst_name = "";
        for (int id = 1; id < m->n_nodes; id++)
            for (int k = 0; k < NN_P_KINDS; k++) {
                size_t count;
                const float *p = nn_param(m, id, (nn_param_kind)k, &count);
                if (!p)
                    continue;
                double scale = 0;
                for (size_t i = 0; i < count; i++)
                    scale = fmax(scale, fabs(ref[at + i]));
                for (size_t i = 0; i < count; i++) {
                    double e = fabs(p[i] - ref[at + i]) / fmax(scale, 1e-3);
                    if (e > worst) {
                        worst = e;
                        worst_name = m->nodes[id].name;
                    }
                }
                at += count;
            }
        /* the steps must have moved the weights well beyond the tolerance */
        size_t cw;
        const float *w1 = nn_param(m, c1, NN_P_WEIGHT, &cw);
        nn_model_t *orig = NULL;
        modelfile_load(model_path, &orig);
        if (orig)
            for (size_t i = 0; i < cw; i++)
                moved = fmax(moved, fabs(w1[i] - nn_param(orig, c1, NN_P_WEIGHT, NULL)[i]));
        nn_model_destroy(orig);
        printf("    %s: losses %.6f %.6f %.6f, worst parameter error %.2e (%s), moved %.2e\n",
               tag, losses[0], losses[1], losses[2], worst, worst_name, moved);
        TH_CHECK(worst < tol, "%s: parameters differ from torch.optim by %g at %s", tag, worst,
                 worst_name);
        TH_CHECK(moved > 0.01, "%s: the steps barely moved the weights (%g)", tag, moved);
    }
    free(ref);
    optim_destroy(opt);
    nn_model_destroy(m);
}

static void test_sgd_steps_match_torch(void)
{
    if (!th_python_has("torch, h5py, numpy"))
        TH_SKIP("python3-torch/python3-h5py not installed for %s", th_python());
    compare_steps_with_torch("sgd_steps", OPTIM_SGD, 0.1, 1e-3, 2e-6);
}

static void test_adam_steps_match_torch(void)
{
    if (!th_python_has("torch, h5py, numpy"))
        TH_SKIP("python3-torch/python3-h5py not installed for %s", th_python());
    /* Adam normalizes each update by the gradient's own size, so float32 rounding
     * of small gradients shows more than with SGD. */
    compare_steps_with_torch("adam_steps", OPTIM_ADAM, 0.01, 1e-2, 5e-5);
}

/* ------------------------------------------------------------ whole runs */

enum { DS_N = 128, DS_R = 32 };

/* A data set in the RSNA layout: 32x32 noise; positives carry a bright 7x7
 * square at a random place. 96 train, 32 val (splits.csv). */
static const char *make_dataset(void)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/train_ds", th_tmp_dir());
    char path[700];
    snprintf(path, sizeof path, "%s/images", dir);
    mkdir(dir, 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/labels.csv", dir);
    FILE *lab = fopen(path, "w");
    snprintf(path, sizeof path, "%s/splits.csv", dir);
    FILE *spl = fopen(path, "w");
    if (!lab || !spl)
        return NULL;
    fprintf(lab, "patientId,x,y,width,height,Target\n");
    fprintf(spl, "Image_ID,Split\n");
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(1, "train-test-data"), 0, 0, 0);
    uint8_t img[DS_R * DS_R];
    for (int i = 0; i < DS_N; i++) {
        int pos = i % 2 ? (int)rng_stream_below(&rs, 4) != 0 : (int)rng_stream_below(&rs, 4) == 0;
        for (int p = 0; p < DS_R * DS_R; p++)
            img[p] = (uint8_t)(70 + rng_stream_below(&rs, 60));
        int bx = 3 + (int)rng_stream_below(&rs, DS_R - 13), by = 3 + (int)rng_stream_below(&rs, DS_R - 13);
        if (pos)
            for (int y = by; y < by + 7; y++)
                for (int x = bx; x < bx + 7; x++)
                    img[y * DS_R + x] = (uint8_t)(img[y * DS_R + x] + 60);
        char id[32];
        snprintf(id, sizeof id, "img%03d", i);
        snprintf(path, sizeof path, "%s/images/%s.png", dir, id);
        if (png_write_gray8(path, DS_R, DS_R, img) < 0)
            return NULL;
        if (pos)
            fprintf(lab, "%s,%d,%d,7,7,1\n", id, bx, by);
        else
            fprintf(lab, "%s,,,,,0\n", id);
        fprintf(spl, "%s,%s\n", id, i < 96 ? "train" : "val");
    }
    fclose(lab);
    fclose(spl);
    return dir;
}

static void small_config(train_config_t *cfg, const char *data, const char *out)
{
    train_config_default(cfg);
    cfg->data_dir = data;
    cfg->out_path = out;
    cfg->arch = "democnn";
    cfg->size = DS_R;
    cfg->seed = 5;
    cfg->epochs = 4;
    cfg->batch = 16;
    cfg->lr = 3e-3;
    cfg->progress_seconds = 0;
}

static int read_params(const char *path, float **params, size_t *n)
{
    nn_model_t *m = NULL;
    if (modelfile_load(path, &m) < 0)
        return -1;
    *n = m->n_params;
    *params = malloc(sizeof(float) * m->n_params);
    memcpy(*params, m->params, sizeof(float) * m->n_params);
    nn_model_destroy(m);
    return 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc((size_t)n + 1, 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    return s;
}

static void test_training_learns_and_records(void)
{
    const char *data = make_dataset();
    TH_CHECK(data, "cannot write the test data set");
    if (!data)
        return;
    char out[600], attr[256];
    snprintf(out, sizeof out, "%s/train_true.h5", th_tmp_dir());
    train_config_t cfg;
    train_result_t res;
    small_config(&cfg, data, out);
    cfg.resume = 0;
    cfg.result = &res;
    double t0 = sc_now();
    int rc = train_run(&cfg, MPI_COMM_SELF);
    TH_EQ_INT(rc, 0);
    printf("    true labels: %d epochs in %.1f s, selected epoch %d val auc %.4f acc %.3f, "
           "last train acc %.3f\n", res.epochs_done, sc_now() - t0, res.best_epoch,
           res.selected.val_auc, res.selected.val_acc, res.last.train_acc);
    TH_EQ_INT(res.n_train, 96);
    TH_EQ_INT(res.n_val, 32);
    TH_EQ_INT(res.epochs_done, 4);
    TH_CHECK(res.selected.val_auc >= 0.95, "val AUC %g: the blobs are easy to find",
             res.selected.val_auc);
    /* provenance */
    TH_CHECK(modelfile_get_attr(out, "labels", attr, sizeof attr) == 0 && !strcmp(attr, "true"),
             "labels attribute '%s'", attr);
    TH_CHECK(modelfile_get_attr(out, "seed", attr, sizeof attr) == 0 && !strcmp(attr, "5"),
             "seed attribute '%s'", attr);
    TH_CHECK(modelfile_get_attr(out, "ranks", attr, sizeof attr) == 0 && !strcmp(attr, "1"),
             "ranks attribute '%s'", attr);
    TH_CHECK(modelfile_get_attr(out, "data_dir", attr, sizeof attr) == 0 && !strcmp(attr, data),
             "data_dir attribute '%s'", attr);
    TH_CHECK(modelfile_get_attr(out, "val_auc", attr, sizeof attr) == 0 &&
                 fabs(atof(attr) - res.selected.val_auc) < 1e-6,
             "val_auc attribute '%s' vs %g", attr, res.selected.val_auc);
    TH_CHECK(modelfile_get_attr(out, "normalize", attr, sizeof attr) == 0 &&
                 !strcmp(attr, "inception"), "normalize attribute '%s'", attr);
    /* the history: the selected epoch has the highest validation AUC */
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    double hist[4][9];
    hid_t d = f >= 0 ? H5Dopen2(f, "train/history", H5P_DEFAULT) : -1;
    TH_CHECK(d >= 0 && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, hist) >= 0,
             "read /train/history");
    if (d >= 0) {
        double best = -1;
        int best_epoch = 0;
        for (int e = 0; e < 4; e++) {
            TH_NEAR(hist[e][0], e + 1, 0, 0);
            if (hist[e][5] > best) {
                best = hist[e][5];
                best_epoch = e + 1;
            }
        }
        TH_EQ_INT(res.best_epoch, best_epoch);
        TH_NEAR(hist[3][5], res.last.val_auc, 0, 1e-12);
        TH_CHECK(hist[3][2] < hist[0][2], "training loss did not fall: %g -> %g", hist[0][2],
                 hist[3][2]);
        H5Dclose(d);
    }
    TH_CHECK(f >= 0 && H5Lexists(f, "train/label_permutation", H5P_DEFAULT) == 0,
             "a true-label model must not carry a permutation");
    if (f >= 0)
        H5Fclose(f);
    char ckpt[700];
    train_checkpoint_path(out, ckpt, sizeof ckpt);
    TH_CHECK(access(ckpt, F_OK) != 0, "the checkpoint must be removed after success");
    /* the model file reloads and predicts like the selected epoch */
    nn_model_t *m = NULL;
    TH_CHECK(modelfile_load(out, &m) == 0, "reload %s", out);
    if (m) {
        TH_EQ_INT(m->nodes[0].h, DS_R);
        nn_model_destroy(m);
    }
}

static void test_shuffled_labels_recorded(void)
{
    const char *data = make_dataset();
    char out[600], attr[256];
    snprintf(out, sizeof out, "%s/train_shuffled.h5", th_tmp_dir());
    train_config_t cfg;
    train_result_t res;
    small_config(&cfg, data, out);
    cfg.shuffled_labels = 1;
    cfg.epochs = 2;
    cfg.resume = 0;
    cfg.result = &res;
    TH_EQ_INT(train_run(&cfg, MPI_COMM_SELF), 0);
    TH_EQ_INT(res.best_epoch, 2); /* shuffled labels keep the last epoch */
    TH_CHECK(modelfile_get_attr(out, "labels", attr, sizeof attr) == 0 &&
                 !strcmp(attr, "shuffled"), "labels attribute '%s'", attr);
    TH_CHECK(modelfile_get_attr(out, "selection", attr, sizeof attr) == 0 &&
                 !strcmp(attr, "last"), "selection attribute '%s'", attr);
    int32_t perm[96], expect[96];
    int8_t trained[96];
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "train/label_permutation", H5P_DEFAULT);
    TH_CHECK(d >= 0 && H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, perm) >= 0,
             "read /train/label_permutation");
    H5Dclose(d);
    d = H5Dopen2(f, "train/labels_trained", H5P_DEFAULT);
    TH_CHECK(d >= 0 && H5Dread(d, H5T_NATIVE_INT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, trained) >= 0,
             "read /train/labels_trained");
    H5Dclose(d);
    H5Fclose(f);
    train_label_permutation(5, 96, expect);
    TH_CHECK(!memcmp(perm, expect, sizeof perm), "stored permutation differs from the seed's");
    /* labels_trained[i] is the true label of training image perm[i] (images 0..95) */
    char path[700];
    snprintf(path, sizeof path, "%s/labels.csv", data);
    char *csv = slurp(path);
    int truth[96] = {0}, changed = 0, pos_true = 0, pos_trained = 0;
    for (int i = 0; i < 96 && csv; i++) {
        char key[32];
        snprintf(key, sizeof key, "\nimg%03d,", i);
        const char *row = strstr(csv, key);
        truth[i] = row && row[strlen(key)] != ',';
    }
    for (int i = 0; i < 96; i++) {
        TH_CHECK(trained[i] == truth[perm[i]], "labels_trained[%d] = %d, true label of %d is %d",
                 i, trained[i], perm[i], truth[perm[i]]);
        changed += trained[i] != truth[i];
        pos_true += truth[i];
        pos_trained += trained[i];
    }
    TH_EQ_INT(pos_trained, pos_true);
    TH_CHECK(changed > 20, "only %d of 96 labels changed", changed);
    free(csv);
}

static void test_resume_is_exact(void)
{
    const char *data = make_dataset();
    char ref_out[600], out[600], log_ref[600], log_run[600], ckpt[700];
    snprintf(ref_out, sizeof ref_out, "%s/train_ref.h5", th_tmp_dir());
    snprintf(out, sizeof out, "%s/train_resumed.h5", th_tmp_dir());
    snprintf(log_ref, sizeof log_ref, "%s/train_ref.loss", th_tmp_dir());
    snprintf(log_run, sizeof log_run, "%s/train_resumed.loss", th_tmp_dir());
    train_checkpoint_path(out, ckpt, sizeof ckpt);
    unlink(out);
    unlink(ckpt);
    train_config_t cfg;
    small_config(&cfg, data, ref_out);
    cfg.epochs = 3;
    cfg.augment = 1;
    cfg.loss_log = log_ref;
    cfg.resume = 0;
    TH_EQ_INT(train_run(&cfg, MPI_COMM_SELF), 0);

    volatile sig_atomic_t stop = 1;
    small_config(&cfg, data, out);
    cfg.epochs = 3;
    cfg.augment = 1;
    cfg.loss_log = log_run;
    cfg.stop = &stop;
    TH_EQ_INT(train_run(&cfg, MPI_COMM_SELF), TRAIN_STOPPED);
    TH_CHECK(access(ckpt, F_OK) == 0, "no checkpoint after a stop");
    TH_CHECK(access(out, F_OK) != 0, "a stopped run must not write the model file");
    stop = 0;
    cfg.checkpoint_seconds = 1e-9; /* and checkpoint after every step while resuming */
    train_result_t res;
    cfg.result = &res;
    TH_EQ_INT(train_run(&cfg, MPI_COMM_SELF), 0);
    TH_EQ_INT(res.resumed_epoch, 1);
    float *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    TH_CHECK(read_params(ref_out, &a, &na) == 0 && read_params(out, &b, &nb) == 0,
             "read the two models");
    TH_CHECK(a && b && na == nb && !memcmp(a, b, sizeof(float) * na),
             "resumed training differs from the uninterrupted run");
    char *la = slurp(log_ref), *lb = slurp(log_run);
    TH_CHECK(la && lb && !strcmp(la, lb), "loss logs differ between the runs");
    int lines = 0;
    for (const char *p = la; p && *p; p++)
        lines += *p == '\n';
    TH_EQ_INT(lines, 3 * (96 / 16));
    /* a checkpoint of other settings is refused, not silently overwritten */
    stop = 1;
    small_config(&cfg, data, out);
    cfg.stop = &stop;
    TH_EQ_INT(train_run(&cfg, MPI_COMM_SELF), TRAIN_STOPPED);
    stop = 0;
    cfg.lr = 1e-2;
    TH_EQ_INT(train_run(&cfg, MPI_COMM_SELF), SC_ERR_ARG);
    cfg.resume = 0;
    cfg.epochs = 1;
    TH_EQ_INT(train_run(&cfg, MPI_COMM_SELF), 0);
    free(a);
    free(b);
    free(la);
    free(lb);
}

/* --init: continue from a trained model file; its weights are the start
 * (validation AUC is high from the first epoch) and the file is recorded. */
static void test_init_from_model_file(void)
{
    const char *data = make_dataset();
    char base[600], out[600], attr[700];
    snprintf(base, sizeof base, "%s/train_init_base.h5", th_tmp_dir());
    snprintf(out, sizeof out, "%s/train_init.h5", th_tmp_dir());
    train_config_t cfg;
    train_result_t res;
    small_config(&cfg, data, base);
    cfg.resume = 0;
    cfg.epochs = 3;
    TH_EQ_INT(train_run(&cfg, MPI_COMM_SELF), 0);
    small_config(&cfg, data, out);
    cfg.resume = 0;
    cfg.epochs = 1;
    cfg.lr = 1e-5; /* barely move: the first epoch shows the loaded weights */
    cfg.size = 0;  /* the file's */
    cfg.arch = NULL;
    cfg.init_path = base;
    cfg.seed = 99;
    cfg.result = &res;
    TH_EQ_INT(train_run(&cfg, MPI_COMM_SELF), 0);
    TH_CHECK(res.selected.val_auc >= 0.95, "fine-tuned from a trained model: val AUC %g",
             res.selected.val_auc);
    TH_CHECK(modelfile_get_attr(out, "init", attr, sizeof attr) == 0 && !strcmp(attr, base),
             "init attribute '%s'", attr);
    /* the same with a fresh model and the same tiny learning rate is at chance */
    small_config(&cfg, data, out);
    cfg.resume = 0;
    cfg.epochs = 1;
    cfg.lr = 1e-5;
    cfg.seed = 99;
    cfg.result = &res;
    TH_EQ_INT(train_run(&cfg, MPI_COMM_SELF), 0);
    TH_CHECK(res.selected.val_auc < 0.9, "an untrained model scored val AUC %g",
             res.selected.val_auc);
    /* a model with another input size is refused when --size is given */
    small_config(&cfg, data, out);
    cfg.init_path = base;
    cfg.size = 64;
    TH_EQ_INT(train_run(&cfg, MPI_COMM_SELF), SC_ERR_ARG);
}

/* A model taking one input channel (TorchXRayVision's convention) trains from
 * --init: the gray image fills its one channel, scaled by the model file's
 * convention, which the written model keeps. */
static void test_one_channel_init(void)
{
    const char *data = make_dataset();
    char base[600], out[600];
    snprintf(base, sizeof base, "%s/train_1ch_base.h5", th_tmp_dir());
    snprintf(out, sizeof out, "%s/train_1ch.h5", th_tmp_dir());
    nn_model_t *m = nn_model_create(1, DS_R, DS_R);
    int c1 = nn_add_conv(m, "c1", 0, 8, 3, 3, 1, 1, NULL, 1, 0);
    int b1 = nn_add_bn(m, "b1", c1, 1e-5f, 0.1f, 1, 1);
    int c2 = nn_add_conv(m, "c2", nn_add_relu(m, "r1", b1), 8, 3, 3, 1, 1, NULL, 1, 0);
    int g = nn_add_gap(m, "gap", nn_add_relu(m, "r2", c2));
    int fc = nn_add_dense(m, "fc", g, 2, 1);
    TH_CHECK(fc > 0 && nn_model_finalize(m, 3) == 0, "1-channel model");
    snprintf(m->normalize, sizeof m->normalize, "scale=4 offset=-2");
    TH_CHECK(modelfile_save(base, m, NULL) == 0, "save %s", base);
    train_config_t cfg;
    train_result_t res;
    small_config(&cfg, data, out);
    cfg.resume = 0;
    cfg.size = 0;
    cfg.arch = NULL;
    cfg.init_path = base;
    cfg.epochs = 6;
    cfg.lr = 1e-2;
    cfg.result = &res;
    TH_EQ_INT(train_run(&cfg, MPI_COMM_SELF), 0);
    nn_model_t *t = NULL;
    TH_CHECK(modelfile_load(out, &t) == 0 && t, "load %s", out);
    if (t) {
        TH_EQ_INT(t->nodes[0].c, 1);
        TH_CHECK(!strcmp(t->normalize, "scale=4 offset=-2"), "convention '%s'", t->normalize);
        double moved = 0;
        for (size_t i = 0; i < t->n_params && i < m->n_params; i++)
            moved = fmax(moved, fabs(t->params[i] - m->params[i]));
        TH_CHECK(moved > 1e-3, "the weights barely moved (%g)", moved);
    }
    printf("    1-channel model: val AUC %.3f after %d epochs\n", res.selected.val_auc,
           res.epochs_done);
    TH_CHECK(res.selected.val_auc >= 0.8, "1-channel model: val AUC %g", res.selected.val_auc);
    nn_model_destroy(t);
    nn_model_destroy(m);
}

/* Without a splits file the split is a hash of the image id: about 15 %
 * validation, the same for every seed (replicates share it). */
static void test_hash_split_without_splits_file(void)
{
    const char *data = make_dataset();
    char dir[600], path[700], images[700], out[600];
    snprintf(dir, sizeof dir, "%s/train_ds_nosplits", th_tmp_dir());
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/labels.csv", data);
    char *csv = slurp(path);
    snprintf(path, sizeof path, "%s/labels.csv", dir);
    FILE *f = fopen(path, "w");
    if (f && csv)
        fputs(csv, f);
    if (f)
        fclose(f);
    free(csv);
    snprintf(images, sizeof images, "%s/images", data);
    snprintf(out, sizeof out, "%s/train_hash.h5", th_tmp_dir());
    dataset_options_t opt;
    dataset_options_default(&opt);
    opt.images_dir = images;
    /* the data set's split without a splits file: val 15 %, test 15 % (left out), train the rest */
    int n_val[2] = {0, 0}, expect = 0, n_test = 0;
    for (int i = 0; i < DS_N; i++) {
        char id[32];
        snprintf(id, sizeof id, "img%03d", i);
        expect += rng_key(0, id).k[0] % 100 < 15;
        n_test += rng_key(0, id).k[0] % 100 >= 15 && rng_key(0, id).k[0] % 100 < 30;
    }
    for (int k = 0; k < 2; k++) {
        train_config_t cfg;
        train_result_t res;
        small_config(&cfg, dir, out);
        cfg.data_options = &opt;
        cfg.epochs = 1;
        cfg.resume = 0;
        cfg.seed = 5 + (uint64_t)k;
        cfg.result = &res;
        TH_EQ_INT(train_run(&cfg, MPI_COMM_SELF), 0);
        TH_EQ_INT(res.n_train + res.n_val, DS_N - n_test);
        n_val[k] = res.n_val;
    }
    TH_EQ_INT(n_val[0], expect);
    TH_EQ_INT(n_val[1], expect);
    TH_CHECK(expect >= 8 && expect <= 35, "hash split put %d of %d images in validation", expect,
             DS_N);
    char attr[128];
    TH_CHECK(modelfile_get_attr(out, "data_split", attr, sizeof attr) == 0 &&
                 strstr(attr, "hash"), "data_split attribute '%s'", attr);
}

static void test_config_errors(void)
{
    const char *data = make_dataset();
    char out[600], missing[600];
    snprintf(out, sizeof out, "%s/train_err.h5", th_tmp_dir());
    snprintf(missing, sizeof missing, "%s/no_such_dir", th_tmp_dir());
    train_config_t cfg;
    small_config(&cfg, data, out);
    cfg.batch = 200; /* more than the 96 training images */
    TH_EQ_INT(train_run(&cfg, MPI_COMM_SELF), SC_ERR_ARG);
    small_config(&cfg, missing, out);
    TH_CHECK(train_run(&cfg, MPI_COMM_SELF) < 0, "a missing data set must fail");
    small_config(&cfg, data, out);
    cfg.optimizer = "rmsprop";
    TH_EQ_INT(train_run(&cfg, MPI_COMM_SELF), SC_ERR_ARG);
    small_config(&cfg, data, out);
    cfg.arch = "nosuchnet";
    TH_CHECK(train_run(&cfg, MPI_COMM_SELF) < 0, "an unknown architecture must fail");
    small_config(&cfg, data, missing);
    char bad_out[700];
    snprintf(bad_out, sizeof bad_out, "%s/x/model.h5", missing);
    cfg.out_path = bad_out;
    TH_EQ_INT(train_run(&cfg, MPI_COMM_SELF), SC_ERR_IO);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    sc_log_set_level(SC_LOG_WARN); /* progress lines would drown the test output */
    TH_RUN(test_auc_hand);
    TH_RUN(test_auc_sklearn);
    TH_RUN(test_shard_rule);
    TH_RUN(test_permutations);
    TH_RUN(test_augment);
    TH_RUN(test_schedule);
    TH_RUN(test_loss_grad);
    TH_RUN(test_sgd_step_hand);
    TH_RUN(test_optim_skips_statistics);
    TH_RUN(test_sgd_steps_match_torch);
    TH_RUN(test_adam_steps_match_torch);
    TH_RUN(test_training_learns_and_records);
    TH_RUN(test_shuffled_labels_recorded);
    TH_RUN(test_resume_is_exact);
    TH_RUN(test_init_from_model_file);
    TH_RUN(test_one_channel_init);
    TH_RUN(test_hash_split_without_splits_file);
    TH_RUN(test_config_errors);
    int rc = th_report();
    MPI_Finalize();
    return rc;
}
