/*
 * test_complexity.c - the map-only checks (common/metrics/complexity.c):
 * sparseness, complexity, eMPRT's discrete entropy and bin rules against
 * numpy/scipy (tests/ref/complexity_ref.py), and against values known by
 * hand (uniform and one-pixel maps, the constant map, bin clamping).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "metrics/complexity.h"
#include "metrics/metrics.h"
#include "rng.h"
#include "sc.h"
#include "testhelp.h"

#define H 24
#define W 20
#define N (H * W)
#define K 5

static void test_known_values(void)
{
    metrics_ws_t *ws = metrics_ws_create(H, W);
    float *map = calloc(N, sizeof(float));
    long counts[256];
    double v;
    for (int i = 0; i < N; i++)
        map[i] = 0.5f;
    TH_EQ_INT(cx_sparseness(ws, map, N, &v), 0);
    TH_NEAR(v, 0.0, 0, 1e-12);
    TH_EQ_INT(cx_complexity(ws, map, N, &v), 0);
    TH_NEAR(v, log((double)N), 1e-12, 0);
    TH_EQ_INT(cx_discrete_entropy(ws, map, N, 100, counts, &v), 0); /* constant: one bin */
    TH_NEAR(v, 0.0, 0, 0);
    for (int i = 0; i < N; i++)
        map[i] = 0.0f;
    map[7] = 1.0f;
    TH_EQ_INT(cx_sparseness(ws, map, N, &v), 0);
    /* the 1e-7 guard: (n - 1) / (n (1 + n 1e-7)) */
    TH_NEAR(v, (N - 1.0) / (N * (1.0 + N * 1e-7)), 1e-12, 0);
    TH_EQ_INT(cx_complexity(ws, map, N, &v), 0);
    TH_NEAR(v, 0.0, 0, 1e-15);
    /* two equal halves: entropy ln 2 with 2 or 100 bins */
    for (int i = 0; i < N; i++)
        map[i] = i < N / 2 ? 0.0f : 1.0f;
    TH_EQ_INT(cx_discrete_entropy(ws, map, N, 2, counts, &v), 0);
    TH_NEAR(v, log(2.0), 1e-14, 0);
    TH_EQ_INT(cx_discrete_entropy(ws, map, N, 100, counts, &v), 0);
    TH_NEAR(v, log(2.0), 1e-14, 0);
    /* an all-zero map has no complexity; eMPRT of a constant original is undefined */
    for (int i = 0; i < N; i++)
        map[i] = 0.0f;
    TH_EQ_INT(cx_complexity(ws, map, N, &v), SC_ERR_UNDEFINED);
    TH_CHECK(isnan(v), "complexity of zeros is NaN");
    TH_EQ_INT(cx_emprt(ws, map, map, N, 10, counts, &v), SC_ERR_UNDEFINED);
    TH_CHECK(isnan(v), "eMPRT of a constant original is NaN");
    map[3] = NAN;
    TH_EQ_INT(cx_sparseness(ws, map, N, &v), SC_ERR_UNDEFINED);
    /* rules that depend on n only, clamped: sqrt(480) = 21.9 -> 21, Sturges 9.9 -> 10 (min) */
    double scratch[N];
    for (int i = 0; i < N; i++)
        map[i] = (float)i;
    TH_EQ_INT(cx_bin_count(CX_BINS_SQRT, map, N, N, scratch), 21);
    TH_EQ_INT(cx_bin_count(CX_BINS_STURGES, map, N, N, scratch), 10);
    TH_EQ_INT(cx_bin_count(CX_BINS_RICE, map, N, 2000000, scratch), 200);
    TH_EQ_INT(cx_bin_rule_parse("scott"), CX_BINS_SCOTT);
    TH_EQ_INT(cx_bin_rule_parse("fd"), CX_BINS_FREEDMAN);
    TH_EQ_INT(cx_bin_rule_parse("nine"), -1);
    free(map);
    metrics_ws_destroy(ws);
}

/* K maps of different character: smooth blobs, heavy-tailed noise, a map with
 * many exact zeros and ties (as P1 clipping gives), a sparse one. */
static void make_maps(float *maps)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(5, "cx"), 0, 0, 0);
    for (int k = 0; k < K; k++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double u = rng_stream_uniform(&rs), v;
                double blob = exp(-((x - 6.0 - k) * (x - 6.0 - k) + (y - 10.0) * (y - 10.0)) / 30.0);
                switch (k) {
                case 0: v = blob; break;
                case 1: v = pow(u, 4.0); break;
                case 2: v = fmin(1.0, fmax(0.0, 1.5 * blob - 0.2 + 0.1 * u)); break;
                case 3: v = u < 0.05 ? u * 20.0 : 0.0; break;
                default: v = 0.3 * blob + 0.7 * u; break;
                }
                maps[(size_t)k * N + y * W + x] = (float)v;
            }
}

static void test_against_numpy(void)
{
    if (!th_python_has("numpy, scipy"))
        TH_SKIP("python3-numpy/python3-scipy not installed for %s", th_python());
    const int bins = 37;
    float *maps = calloc((size_t)K * N, sizeof(float));
    make_maps(maps);
    char in_path[512], out_path[512], cmd[2048];
    snprintf(in_path, sizeof in_path, "%s/cx_maps.f32", th_tmp_dir());
    snprintf(out_path, sizeof out_path, "%s/cx_ref.f64", th_tmp_dir());
    FILE *f = fopen(in_path, "wb");
    TH_CHECK(f && fwrite(maps, sizeof(float), (size_t)K * N, f) == (size_t)K * N, "write maps");
    if (f)
        fclose(f);
    snprintf(cmd, sizeof cmd, "%s tests/ref/complexity_ref.py %s %d %d %d %s", th_python(), in_path,
             K, N, bins, out_path);
    TH_CHECK(system(cmd) == 0, "reference failed: %s", cmd);
    const size_t n_ref = 3 * K + 5 + (K - 1);
    double ref[3 * K + 5 + K - 1];
    f = fopen(out_path, "rb");
    size_t got = f ? fread(ref, sizeof(double), n_ref, f) : 0;
    if (f)
        fclose(f);
    TH_EQ_INT(got, n_ref);
    if (got != n_ref) {
        free(maps);
        return;
    }
    metrics_ws_t *ws = metrics_ws_create(H, W);
    long counts[256];
    for (int k = 0; k < K; k++) {
        const float *m = maps + (size_t)k * N;
        double g, c, e;
        TH_EQ_INT(cx_sparseness(ws, m, N, &g), 0);
        TH_EQ_INT(cx_complexity(ws, m, N, &c), 0);
        TH_EQ_INT(cx_discrete_entropy(ws, m, N, bins, counts, &e), 0);
        TH_NEAR(g, ref[3 * k], 1e-12, 1e-14);
        TH_NEAR(c, ref[3 * k + 1], 1e-12, 1e-14);
        TH_NEAR(e, ref[3 * k + 2], 1e-12, 1e-14);
    }
    double *scratch = calloc((size_t)K * N, sizeof(double));
    const cx_bin_rule_t rules[5] = {CX_BINS_FREEDMAN, CX_BINS_SCOTT, CX_BINS_SQRT, CX_BINS_STURGES,
                                    CX_BINS_RICE};
    for (int r = 0; r < 5; r++) {
        int b = cx_bin_count(rules[r], maps, (size_t)K * N, N, scratch);
        TH_CHECK(b == (int)ref[3 * K + r], "rule %s: %d bins, numpy %g", cx_bin_rule_name(rules[r]),
                 b, ref[3 * K + r]);
    }
    for (int k = 0; k + 1 < K; k++) {
        double e;
        TH_EQ_INT(cx_emprt(ws, maps + (size_t)(k + 1) * N, maps + (size_t)k * N, N, bins, counts, &e),
                  0);
        TH_NEAR(e, ref[3 * K + 5 + k], 1e-12, 1e-14);
    }
    free(scratch);
    free(maps);
    metrics_ws_destroy(ws);
}

int main(void)
{
    sc_log_set_level(SC_LOG_ERROR);
    TH_RUN(test_known_values);
    TH_RUN(test_against_numpy);
    return th_report();
}
