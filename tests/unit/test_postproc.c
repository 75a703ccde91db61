/*
 * test_postproc.c - P1, P2, Guided Grad-CAM and the percentile against numpy
 * (tests/ref/postproc_ref.py, run by th_python()), to 1e-6 relative on float32
 * maps, plus hand-computed values and the undefined cases. Run from the
 * repository root.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rng.h"
#include "saliency/postproc.h"
#include "sc.h"
#include "testhelp.h"

static char tmp_dir[512];

static int make_tmp_dir(void)
{
    return th_scratch_make(tmp_dir, sizeof tmp_dir, "tmp_postproc");
}

static void remove_tmp_dir(void)
{
    th_scratch_remove(tmp_dir);
}

static const char *tmp_path(const char *name)
{
    static char path[4][700];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(path[slot], sizeof path[slot], "%s/%s", tmp_dir, name);
    return path[slot];
}

static int write_file(const char *name, const void *data, size_t bytes)
{
    return th_scratch_write(tmp_dir, name, data, bytes);
}

static int read_file(const char *name, void *data, size_t bytes)
{
    return th_scratch_read(tmp_dir, name, data, bytes);
}

/* Runs the reference with `args`; returns 1 ok, 0 undefined, -1 failure. */
static int run_ref(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s tests/ref/postproc_ref.py %s", th_python(), args);
    FILE *pipe = popen(cmd, "r");
    if (!pipe)
        return -1;
    char word[32] = "";
    if (fscanf(pipe, "%31s", word) != 1)
        word[0] = 0;
    if (pclose(pipe) != 0)
        return -1;
    return strcmp(word, "ok") == 0 ? 1 : strcmp(word, "undefined") == 0 ? 0 : -1;
}

static int have_numpy(void) { return th_python_has("numpy"); }

/* Random test maps: kind 0 normal, 1 quantized to a few levels (many ties),
 * 2 mostly zero with a few spikes (p99 still above the minimum). */
static void random_map(float *m, size_t n, int kind, uint32_t seed)
{
    rng_stream_t s;
    rng_stream_init(&s, rng_key(seed, "test_postproc"), (uint32_t)kind, 0, 0);
    for (size_t i = 0; i < n; i++) {
        double v = rng_stream_normal(&s);
        if (kind == 1)
            v = floor(v * 2.0) / 2.0;
        else if (kind == 2)
            v = rng_stream_uniform(&s) < 0.03 ? 10.0 * v : 0.0;
        m[i] = (float)v;
    }
}

/* max relative error of out vs ref, counting elementwise |a-b| <= 1e-6|b|. */
static size_t count_bad(const float *out, const double *ref, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += !(fabs((double)out[i] - ref[i]) <= 1e-6 * fabs(ref[i]));
    return bad;
}

/* ---------------------------------------------------------------- tests */

/* 1x10 map |m| = 0..9: p99 at rank 8.91 = 8.91; P1 = s/8.91 clipped. */
static void test_hand_values(void)
{
    postproc_ws_t *ws = NULL;
    TH_EQ_INT(postproc_ws_create(&ws, 1, 10), 0);
    if (!ws)
        return;
    float m[10], out[10];
    for (int i = 0; i < 10; i++)
        m[i] = (float)(i % 2 ? i : -i);
    TH_EQ_INT(postproc_p1(ws, m, 1, POSTPROC_CHW, out), 0);
    TH_NEAR(out[4], 4.0 / 8.91, 1e-7, 0);
    TH_NEAR(out[8], 8.0 / 8.91, 1e-7, 0);
    TH_NEAR(out[9], 1.0, 0, 0);
    TH_NEAR(out[0], 0.0, 0, 0);
    double x[10], p;
    for (int i = 0; i < 10; i++)
        x[i] = 9 - i;
    TH_EQ_INT(postproc_percentile(ws, x, 10, 99.0, &p), 0);
    TH_NEAR(p, 8.91, 1e-15, 0);
    TH_EQ_INT(postproc_percentile(ws, x, 10, 50.0, &p), 0);
    TH_NEAR(p, 4.5, 0, 0);
    TH_EQ_INT(postproc_percentile(ws, x, 10, 100.0, &p), 0);
    TH_NEAR(p, 9.0, 0, 0);
    TH_EQ_INT(postproc_percentile(ws, x, 1, 30.0, &p), 0);
    TH_NEAR(p, 9.0, 0, 0);
    /* two channels, both layouts: s = |a| + |b| */
    float two[20];
    for (int i = 0; i < 10; i++) {
        two[i] = (float)i;            /* CHW channel 0 */
        two[10 + i] = (float)(-2 * i); /* CHW channel 1: s = 3i */
    }
    TH_EQ_INT(postproc_p1(ws, two, 2, POSTPROC_CHW, out), 0);
    TH_NEAR(out[3], 9.0 / (3 * 8.91), 1e-7, 0);
    for (int i = 0; i < 10; i++) {
        two[2 * i] = (float)i;
        two[2 * i + 1] = (float)(-2 * i);
    }
    TH_EQ_INT(postproc_p1(ws, two, 2, POSTPROC_HWC, out), 0);
    TH_NEAR(out[3], 9.0 / (3 * 8.91), 1e-7, 0);
    /* P2 */
    for (int i = 0; i < 10; i++)
        m[i] = (float)(2 * i - 3);
    TH_EQ_INT(postproc_p2(ws, m, out), 0);
    TH_NEAR(out[0], 0.0, 0, 0);
    TH_NEAR(out[9], 1.0, 0, 0);
    TH_NEAR(out[3], 3.0 / 9.0, 1e-7, 0);
    postproc_ws_destroy(ws);
}

/* Constant maps and spike maps divide by zero: NaN and SC_ERR_UNDEFINED. */
static void test_undefined_maps(void)
{
    postproc_ws_t *ws = NULL;
    TH_EQ_INT(postproc_ws_create(&ws, 10, 10), 0);
    if (!ws)
        return;
    float m[100], out[100], one[100];
    for (int i = 0; i < 100; i++) {
        m[i] = 0.25f;
        one[i] = (float)i;
    }
    TH_EQ_INT(postproc_p1(ws, m, 1, POSTPROC_CHW, out), SC_ERR_UNDEFINED);
    TH_CHECK(isnan(out[0]) && isnan(out[99]), "undefined P1 must be NaN");
    TH_EQ_INT(postproc_p2(ws, m, out), SC_ERR_UNDEFINED);
    TH_CHECK(isnan(out[50]), "undefined P2 must be NaN");
    /* one spike in 100 pixels: p99 interpolates between ranks 98 and 99
     * (0.25 + 0.01*4.75 = 0.2975), so P1 is defined and the spike clips to 1 */
    m[37] = 5.0f;
    TH_EQ_INT(postproc_p1(ws, m, 1, POSTPROC_CHW, out), 0);
    TH_NEAR(out[37], 1.0, 0, 0);
    TH_NEAR(out[0], 0.0, 0, 0);
    TH_EQ_INT(postproc_p2(ws, m, out), 0);
    TH_NEAR(out[37], 1.0, 0, 0);
    /* five spikes in 1600 pixels: ranks 1583 and 1584 are both the minimum,
     * p99 - min = 0, P1 undefined while min-max still works */
    postproc_ws_t *big = NULL;
    TH_EQ_INT(postproc_ws_create(&big, 40, 40), 0);
    if (big) {
        float sp[1600], so[1600];
        for (int i = 0; i < 1600; i++)
            sp[i] = i % 320 == 7 ? 2.0f : -1.0f;
        TH_EQ_INT(postproc_p1(big, sp, 1, POSTPROC_CHW, so), SC_ERR_UNDEFINED);
        TH_CHECK(isnan(so[7]), "undefined P1 must be NaN");
        TH_EQ_INT(postproc_p2(big, sp, so), 0);
        TH_NEAR(so[7], 1.0, 0, 0);
        postproc_ws_destroy(big);
    }
    /* Guided Grad-CAM with an undefined factor */
    for (int i = 0; i < 100; i++)
        m[i] = 1.0f;
    TH_EQ_INT(postproc_ggcam(ws, one, 1, m, 1, POSTPROC_CHW, out), SC_ERR_UNDEFINED);
    TH_CHECK(isnan(out[10]), "undefined ggcam must be NaN");
    /* non-finite input */
    one[3] = INFINITY;
    TH_EQ_INT(postproc_p1(ws, one, 1, POSTPROC_CHW, out), SC_ERR_UNDEFINED);
    /* argument errors */
    TH_EQ_INT(postproc_p1(ws, one, 0, POSTPROC_CHW, out), SC_ERR_ARG);
    double x[3] = {1, 2, 3}, p;
    TH_EQ_INT(postproc_percentile(ws, x, 3, 101.0, &p), SC_ERR_ARG);
    postproc_ws_destroy(ws);
}

static void test_percentile_vs_numpy(void)
{
    if (!have_numpy())
        TH_SKIP("%s has no numpy (apt-get install python3-numpy)", th_python());
    TH_CHECK(make_tmp_dir() == 0, "cannot make a temporary directory under build/");
    enum { N_SIZES = 4, N_Q = 10, N_CASES = 3 * N_SIZES };
    const size_t sizes[N_SIZES] = {1, 2, 1001, 20000};
    const char *qs = "0 1 25 37.3 50 90 99 99.5 99.99 100";
    const double qv[N_Q] = {0, 1, 25, 37.3, 50, 90, 99, 99.5, 99.99, 100};
    size_t total = 0;
    for (int i = 0; i < N_SIZES; i++)
        total += 3 * sizes[i];
    postproc_ws_t *ws = NULL;
    TH_EQ_INT(postproc_ws_create(&ws, 200, 100), 0);
    double *x = malloc(sizeof(double) * total);
    float *f = malloc(sizeof(float) * 20000);
    /* every kind (normal, ties, spikes) at every size, one after another */
    size_t at = 0;
    for (int kind = 0; kind < 3; kind++)
        for (int si = 0; si < N_SIZES; si++) {
            random_map(f, sizes[si], kind, (uint32_t)(100 + si));
            for (size_t i = 0; i < sizes[si]; i++)
                x[at + i] = f[i];
            at += sizes[si];
        }
    TH_EQ_INT(write_file("pct.f64", x, total * sizeof(double)), 0);
    char args[1600];
    snprintf(args, sizeof args, "percentile %s %s %zu,%zu,%zu,%zu,%zu,%zu,%zu,%zu,%zu,%zu,%zu,%zu %s",
             tmp_path("pct.f64"), tmp_path("pct_ref.f64"), sizes[0], sizes[1], sizes[2],
             sizes[3], sizes[0], sizes[1], sizes[2], sizes[3], sizes[0], sizes[1], sizes[2],
             sizes[3], qs);
    TH_EQ_INT(run_ref(args), 1);
    double ref[N_CASES * N_Q];
    TH_EQ_INT(read_file("pct_ref.f64", ref, sizeof ref), 0);
    at = 0;
    for (int cs = 0; cs < N_CASES && ws; cs++) {
        const size_t n = sizes[cs % N_SIZES];
        for (int k = 0; k < N_Q; k++) {
            double p = NAN;
            TH_EQ_INT(postproc_percentile(ws, x + at, n, qv[k], &p), 0);
            TH_NEAR(p, ref[cs * N_Q + k], 1e-12, 1e-300);
        }
        at += n;
    }
    free(x);
    free(f);
    postproc_ws_destroy(ws);
}

/* P1 in both layouts (the same map stored CHW and HWC), P2 and Guided
 * Grad-CAM on random maps: normal values, many ties, sparse spikes. */
static void test_maps_vs_numpy(void)
{
    if (!have_numpy())
        TH_SKIP("%s has no numpy (apt-get install python3-numpy)", th_python());
    TH_CHECK(make_tmp_dir() == 0, "cannot make a temporary directory under build/");
    const int h = 64, w = 80, c = 3;
    const size_t n = (size_t)h * w;
    postproc_ws_t *ws = NULL;
    TH_EQ_INT(postproc_ws_create(&ws, h, w), 0);
    float *m = malloc(sizeof(float) * n * c), *hwc = malloc(sizeof(float) * n * c);
    float *g = malloc(sizeof(float) * n), *out = malloc(sizeof(float) * n);
    double *ref = malloc(sizeof(double) * 3 * n);
    char args[2048];
    for (int kind = 0; kind < 3 && ws; kind++) {
        random_map(m, n * c, kind, 7);
        random_map(g, n, kind, 8);
        for (size_t i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
                hwc[i * c + ch] = m[(size_t)ch * n + i];
        TH_EQ_INT(write_file("m.f32", m, sizeof(float) * n * c), 0);
        TH_EQ_INT(write_file("g.f32", g, sizeof(float) * n), 0);
        snprintf(args, sizeof args, "all %s %s %s %d %d %d", tmp_path("m.f32"), tmp_path("g.f32"),
                 tmp_path("ref.f64"), c, h, w);
        TH_EQ_INT(run_ref(args), 1);
        TH_EQ_INT(read_file("ref.f64", ref, sizeof(double) * 3 * n), 0);
        for (int layout = 0; layout < 2; layout++) {
            const float *src = layout == POSTPROC_CHW ? m : hwc;
            const char *lname = layout == POSTPROC_CHW ? "chw" : "hwc";
            TH_EQ_INT(postproc_p1(ws, src, c, (postproc_layout_t)layout, out), 0);
            size_t bad = count_bad(out, ref, n);
            TH_CHECK(bad == 0, "P1 %s kind %d: %zu of %zu values off by > 1e-6 relative", lname,
                     kind, bad, n);
            TH_EQ_INT(postproc_ggcam(ws, src, c, g, 1, (postproc_layout_t)layout, out), 0);
            bad = count_bad(out, ref + n, n);
            TH_CHECK(bad == 0, "ggcam %s kind %d: %zu values off", lname, kind, bad);
        }
        TH_EQ_INT(postproc_p2(ws, g, out), 0);
        size_t bad = count_bad(out, ref + 2 * n, n);
        TH_CHECK(bad == 0, "P2 kind %d: %zu values off", kind, bad);
    }
    /* the reference agrees that a spike-only map is undefined for P1 */
    memset(g, 0, sizeof(float) * n);
    g[10] = 3.0f;
    TH_EQ_INT(write_file("g.f32", g, sizeof(float) * n), 0);
    snprintf(args, sizeof args, "p1 %s %s 1 %d %d chw", tmp_path("g.f32"), tmp_path("ref.f64"), h,
             w);
    TH_EQ_INT(run_ref(args), 0);
    if (ws)
        TH_EQ_INT(postproc_p1(ws, g, 1, POSTPROC_CHW, out), SC_ERR_UNDEFINED);
    free(m), free(hwc), free(g), free(out), free(ref);
    postproc_ws_destroy(ws);
}

/* O(n) selection: a 320x320 map's P1 takes a few milliseconds. */
/* A 3x320x320 map with ties (the paper's size): P1 runs on it and every value is in
 * [0, 1] (its speed is bench/bench_saliency.c's, not a test's). */
static void test_large_map_with_ties(void)
{
    const int h = 320, w = 320;
    postproc_ws_t *ws = NULL;
    TH_EQ_INT(postproc_ws_create(&ws, h, w), 0);
    if (!ws)
        return;
    float *m = malloc(sizeof(float) * h * w * 3), *out = malloc(sizeof(float) * h * w);
    random_map(m, (size_t)h * w * 3, 1, 3);
    TH_EQ_INT(postproc_p1(ws, m, 3, POSTPROC_CHW, out), 0);
    int bad = 0, ones = 0;
    for (int i = 0; i < h * w; i++) {
        bad += !(out[i] >= 0.0f && out[i] <= 1.0f);
        ones += out[i] == 1.0f;
    }
    TH_CHECK(bad == 0, "%d values outside [0, 1]", bad);
    /* clipped at the 99th percentile: about 1 % of the pixels at 1 */
    TH_CHECK(ones >= h * w / 200 && ones <= h * w / 20, "%d of %d values at 1", ones, h * w);
    free(m), free(out);
    postproc_ws_destroy(ws);
}

int main(void)
{
    TH_RUN(test_hand_values);
    TH_RUN(test_undefined_maps);
    TH_RUN(test_percentile_vs_numpy);
    TH_RUN(test_maps_vs_numpy);
    TH_RUN(test_large_map_with_ties);
    remove_tmp_dir();
    return th_report();
}
