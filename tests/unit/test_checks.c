/*
 * test_checks.c - the model checks (workers/checks) against PyTorch, SciPy
 * and scikit-image (tests/ref/checks_ref.py) on democnn with the same
 * weights, input and map: deletion and insertion (with their curve), ROAD's
 * imputed images (scipy's sparse direct solver) and probabilities, the
 * random-logit test and max/avg sensitivity of the vanilla gradient. Also
 * by hand: RISE's blur kernel sums to 1, the pixel order puts ties in
 * raster order, imputation of a linear ramp is exact, costs, parsing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks/check.h"
#include "nn/modelfile.h"
#include "nn/zoo.h"
#include "rng.h"
#include "saliency/saliency.h"
#include "sc.h"
#include "testhelp.h"

#define S 32

static int write_f32(const char *path, const float *v, size_t count)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = fwrite(v, sizeof(float), count, f);
    fclose(f);
    return n == count ? 0 : -1;
}

static void make_input(float *x, int c, int h, int w)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(3, "chk-input"), 0, 0, 0);
    for (int y = 0; y < h; y++)
        for (int i = 0; i < w; i++) {
            double g = 0.5 + 0.4 * sin(6.28 * i / w) * cos(3.14 * y / h) +
                       0.1 * (rng_stream_uniform(&rs) - 0.5);
            for (int ch = 0; ch < c; ch++)
                x[(size_t)ch * h * w + y * w + i] = (float)(2.0 * g - 1.0);
        }
}

static void test_by_hand(void)
{
    chk_params_t p = chk_params_default();
    TH_EQ_INT(p.del_steps, 224);
    TH_EQ_INT(p.road_n_percent, 9);
    TH_EQ_INT(p.road_percent[8], 90);
    chk_ws_t *cw = chk_ws_create(1, 8, 8, &p);
    TH_CHECK(cw != NULL, "workspace");
    if (!cw)
        return;
    double ks = 0.0;
    for (int i = 0; i < 121; i++)
        ks += cw->kernel[i];
    TH_NEAR(ks, 1.0, 0, 1e-6);
    TH_CHECK(cw->kernel[60] > cw->kernel[0], "kernel peaks at the centre");
    float map[64];
    for (int i = 0; i < 64; i++)
        map[i] = (float)((i * 7) % 4); /* values 0..3, 16 of each */
    chk_order(cw, map);
    TH_EQ_INT(map[cw->order[0]], 3);
    for (int q = 1; q < 64; q++) {
        int a = cw->order[q - 1], b = cw->order[q];
        TH_CHECK(map[a] > map[b] || (map[a] == map[b] && a < b), "order at %d: %d then %d", q, a, b);
    }
    /* a linear ramp is the weighted mean of its neighbours: imputing the 4 x 4
     * centre block (the top 25 % of a map that marks it) restores it */
    float x[64], out[64];
    for (int i = 0; i < 64; i++) {
        x[i] = (float)(0.1 * (i % 8) - 0.05 * (i / 8));
        map[i] = (i / 8 >= 2 && i / 8 < 6 && i % 8 >= 2 && i % 8 < 6) ? 1.0f : 0.0f;
    }
    chk_order(cw, map);
    TH_EQ_INT(chk_road_impute(cw, x, 0, 25, NULL, out), 0);
    double worst = 0.0;
    int changed = 0;
    for (int i = 0; i < 64; i++) {
        worst = fmax(worst, fabs(out[i] - x[i]));
        changed += cw->removed[i];
    }
    TH_EQ_INT(changed, 16);
    TH_CHECK(worst < 1e-6, "a ramp imputed exactly (max error %g)", worst);
    /* a step is not: the imputed block lies strictly between the two levels */
    for (int i = 0; i < 64; i++)
        x[i] = i % 8 < 4 ? 0.0f : 1.0f;
    TH_EQ_INT(chk_road_impute(cw, x, 0, 25, NULL, out), 0);
    TH_CHECK(out[3 * 8 + 3] > 0.05f && out[3 * 8 + 3] < 0.95f && out[3 * 8 + 3] < out[3 * 8 + 4],
             "a step is smoothed: %g, %g", out[3 * 8 + 3], out[3 * 8 + 4]);
    TH_EQ_INT(chk_fill_parse("blur"), CHK_FILL_BLUR);
    TH_EQ_INT(chk_fill_parse("grey"), -1);
    TH_EQ_INT(chk_prob_parse("sigmoid"), CHK_PROB_SIGMOID);
    int k = -1;
    const chk_check_t *c = chk_find_output("road_lerf", &k);
    TH_CHECK(c && !strcmp(c->name, "road") && k == 1, "road_lerf is ROAD's second value");
    TH_CHECK(chk_find_output("auprc", NULL) == NULL, "auprc is no check");
    /* costs: 16x16 with 10 steps: step 26 px, 10 steps, 11 forward passes */
    p.del_steps = 10;
    TH_NEAR(chk_find_output("deletion", NULL)->cost(&p, 16, 16, 3.0), 5.5, 0, 1e-12);
    TH_NEAR(chk_find_output("max_sensitivity", NULL)->cost(&p, 16, 16, 3.0), 600.0, 0, 1e-12);
    TH_NEAR(chk_find_output("random_logit", NULL)->cost(&p, 16, 16, 3.0), 3.0, 0, 1e-12);
    int n_checks = 0;
    for (const chk_check_t *const *t = chk_checks(); *t; t++)
        n_checks++;
    TH_EQ_INT(n_checks, 5);
    chk_ws_destroy(cw);
}

/* checks.probability: by default the model's head (sigmoid for a model whose
 * graph ends in a sigmoid), softmax or sigmoid when named; deletion's first
 * point is the probability of the untouched image, ROAD the same rule. */
static void test_probability_follows_head(void)
{
    TH_EQ_INT(chk_prob_parse("head"), CHK_PROB_HEAD);
    TH_EQ_INT(chk_params_default().prob, CHK_PROB_HEAD);
    TH_CHECK(!strcmp(chk_prob_name(CHK_PROB_HEAD), "head"), "name of the default");
    for (int head = 0; head < 2; head++) {
        nn_model_t *m = nn_model_create(3, S, S);
        int c1 = nn_add_conv(m, "c1", 0, 4, 3, 3, 1, 1, NULL, 1, 0);
        int fc = nn_add_dense(m, "fc", nn_add_gap(m, "gap", nn_add_relu(m, "r1", c1)), 3, 1);
        int out = head ? nn_add_sigmoid(m, "prob", fc) : nn_add_softmax(m, "prob", fc);
        TH_CHECK(out > 0 && nn_model_finalize(m, 5) == 0, "model");
        const chk_prob_t want = head ? CHK_PROB_SIGMOID : CHK_PROB_SOFTMAX;
        TH_EQ_INT(chk_prob_for_model(CHK_PROB_HEAD, m), want);
        TH_EQ_INT(chk_prob_for_model(CHK_PROB_SOFTMAX, m), CHK_PROB_SOFTMAX); /* an override */
        sal_ws_t *ws = NULL;
        TH_CHECK(sal_ws_create(&ws, m, 4, NULL) == 0, "saliency workspace");
        float *x = calloc(ws->chw, sizeof(float)), *map = calloc(ws->hw, sizeof(float));
        make_input(x, ws->c, S, S);
        for (size_t i = 0; i < ws->hw; i++)
            map[i] = (float)((i * 7919) % ws->hw) / (float)ws->hw;
        float logits[3];
        int target = 2;
        TH_EQ_INT(sal_target(ws, x, target, &target, logits), 0);
        double sum = 0;
        for (int k = 0; k < 3; k++)
            sum += exp((double)logits[k]);
        const double p_sig = 1.0 / (1.0 + exp(-(double)logits[2])), p_soft = exp(logits[2]) / sum;
        chk_params_t p = chk_params_default();
        p.del_steps = 8;
        p.road_n_percent = 2;
        p.road_percent[0] = 30;
        p.road_percent[1] = 70;
        chk_ws_t *cw = chk_ws_create(ws->c, S, S, &p);
        sal_params_t sp = sal_params_default();
        sal_key_t key = {.seed = 3, .variant = 0, .image = 1};
        chk_input_t in = {.method = sal_method_find("grad"), .sp = &sp, .model = m, .ws = ws,
                          .x = x, .target = 2, .key = key, .method_index = 0, .map = map};
        double road[3][2], del;
        for (int k = 0; k < 3; k++) { /* head, sigmoid, softmax */
            p.prob = k == 0 ? CHK_PROB_HEAD : k == 1 ? CHK_PROB_SIGMOID : CHK_PROB_SOFTMAX;
            TH_EQ_INT(chk_find_output("deletion", NULL)->compute(NULL, &p, cw, &in, &del), 0);
            int n = 0;
            const double *curve = chk_last_curve(cw, 0, &n);
            const double expect = p.prob == CHK_PROB_SIGMOID || (k == 0 && head) ? p_sig : p_soft;
            TH_CHECK(n > 1 && fabs(curve[0] - expect) < 1e-6,
                     "head %d, probability %s: deletion starts at %g, expected %g", head,
                     chk_prob_name(p.prob), n > 0 ? curve[0] : NAN, expect);
            TH_EQ_INT(chk_find_output("road_morf", NULL)->compute(NULL, &p, cw, &in, road[k]), 0);
        }
        /* ROAD with the default equals ROAD with the head's own function */
        TH_NEAR(road[0][0], road[head ? 1 : 2][0], 0, 1e-12);
        TH_NEAR(road[0][1], road[head ? 1 : 2][1], 0, 1e-12);
        TH_CHECK(fabs(road[1][0] - road[2][0]) > 1e-6, "sigmoid and softmax ROAD differ");
        chk_ws_destroy(cw);
        free(x);
        free(map);
        sal_ws_destroy(ws);
        nn_model_destroy(m);
    }
}

static void test_against_torch(void)
{
    if (!th_python_has("torch, h5py, numpy, scipy, skimage"))
        TH_SKIP("python3-torch/h5py/scipy/skimage not installed for %s", th_python());
    nn_model_t *m = NULL;
    TH_CHECK(zoo_democnn(&m, S, 2, 7) == 0, "democnn");
    if (!m)
        return;
    char model_path[512], x_path[512], map_path[512], rn_path[512], sn_path[512], out_path[512];
    char cmd[4096];
    const char *tmp = th_tmp_dir();
    snprintf(model_path, sizeof model_path, "%s/chk_model.h5", tmp);
    snprintf(x_path, sizeof x_path, "%s/chk_x.f32", tmp);
    snprintf(map_path, sizeof map_path, "%s/chk_map.f32", tmp);
    snprintf(rn_path, sizeof rn_path, "%s/chk_road_noise.f32", tmp);
    snprintf(sn_path, sizeof sn_path, "%s/chk_sens_noise.f32", tmp);
    snprintf(out_path, sizeof out_path, "%s/chk_ref.f64", tmp);
    TH_CHECK(modelfile_save(model_path, m, NULL) == 0, "save model");
    sal_ws_t *ws = NULL;
    TH_CHECK(sal_ws_create(&ws, m, 4, NULL) == 0, "saliency workspace");
    const int C = ws->c;
    const size_t hw = ws->hw, chw = ws->chw;
    float *x = calloc(chw, sizeof(float)), *raw = calloc(chw, sizeof(float));
    float *map = calloc(hw, sizeof(float));
    make_input(x, C, S, S);
    int target = 0;
    float logits[2];
    TH_EQ_INT(sal_target(ws, x, SAL_TARGET_PREDICTED, &target, logits), 0);
    const sal_method_t *grad = sal_method_find("grad");
    sal_params_t sp = sal_params_default();
    sal_key_t key = {.seed = 11, .variant = 0, .image = 2};
    TH_EQ_INT(sal_compute(grad, &sp, m, ws, x, target, NULL, key, raw), 0);
    TH_EQ_INT(sal_postprocess(grad, ws, raw, map), 0); /* P1 clips the top 1 %: ties at 1 */

    chk_params_t p = chk_params_default();
    p.del_steps = 20;
    p.del_fill = CHK_FILL_BLACK;
    p.road_n_percent = 3;
    p.road_percent[0] = 20;
    p.road_percent[1] = 50;
    p.road_percent[2] = 80;
    p.sens_samples = 3;
    chk_ws_t *cw = chk_ws_create(C, S, S, &p);
    chk_input_t in = {.method = grad, .sp = &sp, .model = m, .ws = ws, .x = x, .gray = NULL,
                      .target = target, .key = key, .method_index = 3, .map = map};
    double v[7];
    TH_EQ_INT(chk_find_output("deletion", NULL)->compute(NULL, &p, cw, &in, &v[0]), 0);
    int curve_n = 0;
    const double *cv = chk_last_curve(cw, 0, &curve_n);
    double *dcurve = calloc((size_t)curve_n, sizeof(double));
    memcpy(dcurve, cv, sizeof(double) * curve_n);
    TH_EQ_INT(curve_n, 21);
    TH_EQ_INT(chk_find_output("insertion", NULL)->compute(NULL, &p, cw, &in, &v[1]), 0);
    TH_EQ_INT(chk_find_output("road_morf", NULL)->compute(NULL, &p, cw, &in, &v[2]), 0);
    int road_n = 0;
    const double *road_curve = chk_last_curve(cw, 1, &road_n);
    TH_EQ_INT(road_n, 3);
    TH_EQ_INT(chk_curve_len(chk_find_output("road_morf", NULL), 1, &p, S, S), 3);
    TH_EQ_INT(chk_curve_len(chk_find_output("deletion", NULL), 0, &p, S, S), 21);
    TH_NEAR((road_curve[0] + road_curve[1] + road_curve[2]) / 3.0, v[3], 1e-12, 0);
    TH_EQ_INT(chk_find_output("random_logit", NULL)->compute(NULL, &p, cw, &in, &v[4]), 0);
    TH_EQ_INT(chk_find_output("max_sensitivity", NULL)->compute(NULL, &p, cw, &in, &v[5]), 0);
    TH_EQ_INT(chk_random_logit_class(key, 3, 2, target), 1 - target);
    /* the noise and imputed images exactly as the check draws and makes them */
    float *rn = calloc(2 * 3 * chw, sizeof(float)), *imp = calloc(2 * 3 * chw, sizeof(float));
    chk_order(cw, map);
    for (int lerf = 0; lerf < 2; lerf++)
        for (int k = 0; k < 3; k++) {
            float *nz = rn + (size_t)(lerf * 3 + k) * chw;
            chk_road_noise(key, 3, lerf, k, p.road_noise, chw, nz);
            chk_road_impute(cw, x, lerf, p.road_percent[k], nz, imp + (size_t)(lerf * 3 + k) * chw);
        }
    float *sn = calloc(3 * chw, sizeof(float));
    for (int s = 0; s < 3; s++)
        chk_sensitivity_noise(key, s, p.sens_radius, chw, sn + (size_t)s * chw);
    write_f32(x_path, x, chw);
    write_f32(map_path, map, hw);
    write_f32(rn_path, rn, 2 * 3 * chw);
    write_f32(sn_path, sn, 3 * chw);
    snprintf(cmd, sizeof cmd,
             "%s tests/ref/checks_ref.py %s %s %s %d %d 20 black blur softmax 20,50,80 %s %s 3 %s",
             th_python(), model_path, x_path, map_path, target, 1 - target, rn_path, sn_path,
             out_path);
    TH_CHECK(system(cmd) == 0, "reference failed: %s", cmd);
    size_t n_ref = 7 + 21 + 2 * 3 * chw;
    double *ref = calloc(n_ref, sizeof(double));
    FILE *f = fopen(out_path, "rb");
    size_t got = f ? fread(ref, sizeof(double), n_ref, f) : 0;
    if (f)
        fclose(f);
    TH_EQ_INT(got, n_ref);
    if (got == n_ref) {
        const char *names[7] = {"deletion", "insertion", "road_morf", "road_lerf", "random_logit",
                                "max_sensitivity", "avg_sensitivity"};
        printf("    ");
        for (int k = 0; k < 7; k++) {
            printf("%s %.6f (ref %.6f)%s", names[k], v[k], ref[k], k < 6 ? ", " : "\n");
            TH_CHECK(fabs(v[k] - ref[k]) <= 1e-4 + 1e-3 * fabs(ref[k]), "%s = %.8f, reference %.8f",
                     names[k], v[k], ref[k]);
        }
        double worst_curve = 0.0, worst_imp = 0.0;
        for (int k = 0; k < 21; k++)
            worst_curve = fmax(worst_curve, fabs(dcurve[k] - ref[7 + k]));
        TH_CHECK(worst_curve < 1e-4, "deletion curve differs from PyTorch by %g", worst_curve);
        for (size_t i = 0; i < 2 * 3 * chw; i++)
            worst_imp = fmax(worst_imp, fabs(imp[i] - ref[28 + i]));
        TH_CHECK(worst_imp < 1e-5, "ROAD imputation differs from spsolve by %g", worst_imp);
        printf("    deletion curve max diff %.1e; ROAD imputation max diff %.1e\n", worst_curve,
               worst_imp);
    }
    free(ref);
    free(rn);
    free(imp);
    free(sn);
    free(dcurve);
    free(x);
    free(raw);
    free(map);
    chk_ws_destroy(cw);
    sal_ws_destroy(ws);
    nn_model_destroy(m);
}

/* sMPRT's denoised method: with noise 0 it is the base map; with noise, the
 * mean of the base's maps at the noisy copies drawn as documented (the last
 * one noise-free); its cost is N times the base's. */
static void test_smooth_method(void)
{
    nn_model_t *m = NULL;
    TH_CHECK(zoo_democnn(&m, S, 2, 9) == 0, "democnn");
    if (!m)
        return;
    sal_ws_t *ws = NULL;
    TH_CHECK(sal_ws_create(&ws, m, 4, NULL) == 0, "workspace");
    const size_t chw = ws->chw;
    float *x = calloc(chw, sizeof(float)), *a = calloc(chw, sizeof(float));
    float *b = calloc(chw, sizeof(float)), *xn = calloc(chw, sizeof(float));
    double *acc = calloc(chw, sizeof(double));
    make_input(x, ws->c, S, S);
    const sal_method_t *grad = sal_method_find("grad");
    sal_params_t sp = sal_params_default();
    sal_key_t key = {.seed = 4, .variant = 0, .image = 1};
    chk_smooth_t sm;
    TH_EQ_INT(chk_smooth_init(&sm, grad, 3, 0.0, chw), 0);
    TH_CHECK(!strcmp(sm.method.name, "smprt-grad"), "name %s", sm.method.name);
    TH_EQ_INT(sal_compute(&sm.method, &sp, m, ws, x, 0, NULL, key, a), 0);
    TH_EQ_INT(sal_compute(grad, &sp, m, ws, x, 0, NULL, key, b), 0);
    TH_CHECK(th_rel_err(a, b, chw) < 1e-6, "noise 0: the base map (%g)", th_rel_err(a, b, chw));
    chk_smooth_free(&sm);
    TH_EQ_INT(chk_smooth_init(&sm, grad, 3, 0.1, chw), 0);
    TH_NEAR(chk_smooth_cost(&sm, &sp, S, S), 3.0 * sal_cost(grad, &sp, S, S), 1e-12, 0);
    TH_EQ_INT(sal_compute(&sm.method, &sp, m, ws, x, 0, NULL, key, a), 0);
    float lo = x[0], hi = x[0];
    for (size_t i = 0; i < chw; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    for (int n = 0; n < 3; n++) {
        rng_stream_t rs;
        rng_stream_init(&rs, rng_key(key.seed, "smprt"), key.variant, key.image, (uint32_t)n);
        for (size_t i = 0; i < chw; i++)
            xn[i] = n == 2 ? x[i] : (float)(x[i] + 0.1 * ((double)hi - lo) * rng_stream_normal(&rs));
        TH_EQ_INT(sal_compute(grad, &sp, m, ws, xn, 0, NULL, key, b), 0);
        for (size_t i = 0; i < chw; i++)
            acc[i] += b[i] / 3.0;
    }
    for (size_t i = 0; i < chw; i++)
        b[i] = (float)acc[i];
    TH_CHECK(th_rel_err(a, b, chw) < 1e-6, "the mean over the noisy copies (%g)", th_rel_err(a, b, chw));
    chk_smooth_free(&sm);
    TH_EQ_INT(chk_smooth_init(&sm, sal_method_find("sobel"), 3, 0.1, chw), SC_ERR_ARG);
    free(x);
    free(a);
    free(b);
    free(xn);
    free(acc);
    sal_ws_destroy(ws);
    nn_model_destroy(m);
}

int main(void)
{
    sc_log_set_level(SC_LOG_ERROR);
    TH_RUN(test_by_hand);
    TH_RUN(test_probability_follows_head);
    TH_RUN(test_against_torch);
    TH_RUN(test_smooth_method);
    return th_report();
}
