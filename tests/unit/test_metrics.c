/*
 * test_metrics.c - tests of common/metrics (localization, similarity, HOG, statistics).
 *
 * Two kinds of checks:
 *  - hand-made cases with answers worked out by hand (the map that is the mask,
 *    its complement, a constant map, tie and tolerance cases, undefined inputs);
 *  - agreement with the reference libraries on random and structured inputs
 *    (ties included): the inputs are generated here with the Philox generator,
 *    scored by salcheck, written to a file under $BUILD/tmp and scored again by
 *    tests/ref/metrics_ref.py with Debian's sklearn, skimage, scipy and numpy.
 *    Those tests are skipped, visibly, when the libraries are missing.
 *
 * Tolerances against the references: 1e-9 absolute for every metric (the values
 * are O(1)); the Wilcoxon p-value 1e-9 relative (it can be tiny); summaries
 * 1e-9 relative. Measured differences are printed per operation ("max |diff|").
 */
#include "testhelp.h"

#include "metrics/hog.h"
#include "metrics/localization.h"
#include "metrics/metrics.h"
#include "metrics/metrics_internal.h"
#include "metrics/similarity.h"
#include "metrics/stats.h"
#include "rng.h"
#include "sc.h"

#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */

static int near(double a, double b, double rtol, double atol)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return fabs(a - b) <= atol + rtol * fabs(b);
}

/* Like TH_NEAR, but NaN == NaN (undefined results are expected values here). */
#define CHECK_NEAR(a, b, tol)                                                   \
    TH_CHECK(near((a), (b), 0.0, (tol)), "%s = %.17g, expected %.17g", #a,      \
             (double)(a), (double)(b))

static rng_stream_t stream_for(uint32_t id)
{
    rng_stream_t s;
    rng_stream_init(&s, rng_key(20210601, "test_metrics"), id, 0, 0);
    return s;
}

static void gen_uniform(float *m, size_t n, uint32_t id)
{
    rng_stream_t s = stream_for(id);
    for (size_t i = 0; i < n; i++)
        m[i] = (float)rng_stream_uniform(&s);
}

static void gen_normal(float *m, size_t n, uint32_t id)
{
    rng_stream_t s = stream_for(id);
    for (size_t i = 0; i < n; i++)
        m[i] = (float)rng_stream_normal(&s);
}

/* Values k / levels: heavy ties. */
static void gen_quantized(float *m, size_t n, int levels, uint32_t id)
{
    rng_stream_t s = stream_for(id);
    for (size_t i = 0; i < n; i++)
        m[i] = (float)(floor(rng_stream_uniform(&s) * levels) / levels);
}

/* A saliency-like map: a Gaussian blob plus uniform noise. */
static void gen_blob(float *m, int h, int w, double cy, double cx, double sigma, double noise,
                     uint32_t id)
{
    rng_stream_t s = stream_for(id);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double r2 = (y - cy) * (y - cy) + (x - cx) * (x - cx);
            m[(size_t)y * w + x] =
                (float)(exp(-r2 / (2 * sigma * sigma)) + noise * rng_stream_uniform(&s));
        }
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* docs/methods.md section 4, P1 on one channel: (s - min) / (p99 - min) clipped to
 * [0, 1]; the top 1% become tied at 1. */
static void postprocess_p1(float *m, size_t n)
{
    float *sorted = malloc(n * sizeof *sorted);
    memcpy(sorted, m, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_float);
    double rank = 0.99 * (double)(n - 1), lo = sorted[0];
    size_t i = (size_t)rank;
    double p99 = sorted[i] + (rank - (double)i) * (sorted[i + 1 < n ? i + 1 : i] - sorted[i]);
    for (size_t k = 0; k < n; k++) {
        double v = (m[k] - lo) / (p99 - lo);
        m[k] = (float)(v < 0 ? 0 : (v > 1 ? 1 : v));
    }
    free(sorted);
}

/* Add the box rows y0..y1, columns x0..x1 (inclusive, as docs/methods.md section 2). */
static void box_mask(uint8_t *mask, int w, int y0, int x0, int y1, int x1)
{
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            mask[(size_t)y * w + x] = 1;
}

/* ------------------------------------------------- reference-library cases */

#define MAX_CASES 128

typedef struct ref_array {
    int dtype; /* 0 float32, 1 uint8, 2 float64 */
    size_t count;
    void *data;
} ref_array_t;

typedef struct ref_case {
    char op[16];
    char desc[96];
    int h, w;
    int n_params;
    double params[8];
    int n_arrays;
    ref_array_t arr[2];
    double *mine, *ref;
    size_t n_mine, n_ref;
    double rtol, atol;
} ref_case_t;

static ref_case_t ref_cases[MAX_CASES];
static int n_ref_cases;
static int ref_status;          /* 1 ran, 0 skipped (libraries missing), -1 failed */
static char ref_message[1400];

static ref_case_t *ref_add(const char *op, const char *desc, int h, int w, const double *params,
                           int n_params, double rtol, double atol)
{
    if (n_ref_cases == MAX_CASES) {
        fprintf(stderr, "test_metrics: more than %d reference cases\n", MAX_CASES);
        exit(2);
    }
    ref_case_t *c = &ref_cases[n_ref_cases++];
    memset(c, 0, sizeof *c);
    snprintf(c->op, sizeof c->op, "%s", op);
    snprintf(c->desc, sizeof c->desc, "%s", desc);
    c->h = h;
    c->w = w;
    c->n_params = n_params;
    for (int i = 0; i < n_params; i++)
        c->params[i] = params[i];
    c->rtol = rtol;
    c->atol = atol;
    return c;
}

static void ref_array(ref_case_t *c, int dtype, size_t count, const void *data)
{
    size_t size = dtype == 0 ? 4 : (dtype == 1 ? 1 : 8);
    ref_array_t *a = &c->arr[c->n_arrays++];
    a->dtype = dtype;
    a->count = count;
    a->data = malloc(count * size);
    memcpy(a->data, data, count * size);
}

static void ref_mine(ref_case_t *c, const double *values, size_t n)
{
    c->mine = malloc(n * sizeof(double));
    memcpy(c->mine, values, n * sizeof(double));
    c->n_mine = n;
}

static void mkdir_p(const char *path)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0777);
            *p = '/';
        }
    mkdir(buf, 0777);
}

/* Write the cases, run the reference script once, read its values back. */
static void ref_run(void)
{
    const char *script = "tests/ref/metrics_ref.py";
    if (access(script, R_OK) != 0) {
        snprintf(ref_message, sizeof ref_message, "%s not found (run from the repository root)",
                 script);
        ref_status = 0;
        return;
    }
    if (!th_python_has("numpy, scipy, sklearn, skimage")) {
        snprintf(ref_message, sizeof ref_message,
                 "%s lacks numpy/scipy/sklearn/skimage (apt-get install python3-sklearn "
                 "python3-skimage python3-scipy)", th_python());
        ref_status = 0;
        return;
    }
    const char *build = getenv("BUILD");
    char dir[256], in_path[320], out_path[320], cmd[1200];
    snprintf(dir, sizeof dir, "%s/tmp", build && *build ? build : "build");
    mkdir_p(dir);
    snprintf(in_path, sizeof in_path, "%s/metrics_ref_%d.in", dir, (int)getpid());
    snprintf(out_path, sizeof out_path, "%s/metrics_ref_%d.out", dir, (int)getpid());

    FILE *f = fopen(in_path, "wb");
    if (!f) {
        snprintf(ref_message, sizeof ref_message, "cannot write %s: %s", in_path, strerror(errno));
        ref_status = -1;
        return;
    }
    fwrite("SCMREF1\n", 1, 8, f);
    for (int i = 0; i < n_ref_cases; i++) {
        ref_case_t *c = &ref_cases[i];
        uint32_t u[3] = {(uint32_t)i, 0, 0};
        char op[16] = {0};
        memcpy(op, c->op, strlen(c->op));
        fwrite(&u[0], 4, 1, f);
        fwrite(op, 1, 16, f);
        u[0] = (uint32_t)c->h;
        u[1] = (uint32_t)c->w;
        u[2] = (uint32_t)c->n_params;
        fwrite(u, 4, 3, f);
        fwrite(c->params, 8, (size_t)c->n_params, f);
        uint32_t na = (uint32_t)c->n_arrays;
        fwrite(&na, 4, 1, f);
        for (int k = 0; k < c->n_arrays; k++) {
            uint32_t dt = (uint32_t)c->arr[k].dtype;
            uint64_t count = c->arr[k].count;
            size_t size = dt == 0 ? 4 : (dt == 1 ? 1 : 8);
            fwrite(&dt, 4, 1, f);
            fwrite(&count, 8, 1, f);
            fwrite(c->arr[k].data, size, count, f);
        }
    }
    fclose(f);

    snprintf(cmd, sizeof cmd, "'%s' %s '%s' '%s'", th_python(), script, in_path, out_path);
    double t0 = sc_now();
    int st = system(cmd);
    printf("reference script: %d cases in %.1f s\n", n_ref_cases, sc_now() - t0);
    if (st != 0) {
        snprintf(ref_message, sizeof ref_message, "%s failed (status %d)", cmd, st);
        ref_status = -1;
        unlink(in_path);
        return;
    }
    f = fopen(out_path, "rb");
    char magic[8];
    int ok = f && fread(magic, 1, 8, f) == 8 && memcmp(magic, "SCMOUT1\n", 8) == 0;
    while (ok) {
        uint32_t id;
        uint64_t n;
        if (fread(&id, 4, 1, f) != 1)
            break;
        ok = fread(&n, 8, 1, f) == 1 && id < (uint32_t)n_ref_cases;
        if (!ok)
            break;
        ref_case_t *c = &ref_cases[id];
        c->ref = malloc((n ? n : 1) * sizeof(double));
        c->n_ref = n;
        ok = fread(c->ref, 8, n, f) == n;
    }
    if (f)
        fclose(f);
    unlink(in_path);
    unlink(out_path);
    if (!ok) {
        snprintf(ref_message, sizeof ref_message, "%s: unreadable reference output", out_path);
        ref_status = -1;
        return;
    }
    ref_status = 1;
}

/* Compare every case of one operation with its reference values. */
static void ref_compare(const char *op)
{
    int n_cases = 0;
    double worst = 0.0;
    for (int i = 0; i < n_ref_cases; i++) {
        ref_case_t *c = &ref_cases[i];
        if (strcmp(c->op, op) != 0)
            continue;
        n_cases++;
        TH_CHECK(c->ref && c->n_ref == c->n_mine, "%s [%s]: %zu reference values for %zu", op,
                 c->desc, c->n_ref, c->n_mine);
        if (!c->ref || c->n_ref != c->n_mine)
            continue;
        size_t bad = 0, first_bad = 0;
        for (size_t k = 0; k < c->n_mine; k++) {
            double a = c->mine[k], b = c->ref[k];
            if (!isnan(a) && !isnan(b) && fabs(a - b) > worst)
                worst = fabs(a - b);
            if (!near(a, b, c->rtol, c->atol) && bad++ == 0)
                first_bad = k;
        }
        TH_CHECK(bad == 0, "%s [%s]: %zu of %zu values differ; value %zu: salcheck %.17g, "
                 "reference %.17g", op, c->desc, bad, c->n_mine, first_bad,
                 c->mine[first_bad], c->ref[first_bad]);
    }
    TH_CHECK(n_cases > 0, "no %s case registered", op);
    printf("    %-10s %2d cases, max |diff| vs reference %.3g\n", op, n_cases, worst);
}

#define REF_TEST(name, op)                                                      \
    static void name(void)                                                      \
    {                                                                           \
        if (ref_status == 0)                                                    \
            TH_SKIP("%s", ref_message);                                         \
        TH_CHECK(ref_status == 1, "%s", ref_message);                           \
        if (ref_status == 1)                                                    \
            ref_compare(op);                                                    \
    }

REF_TEST(test_ref_auprc_ap_rocauc, "pr")
REF_TEST(test_ref_otsu, "otsu")
REF_TEST(test_ref_ssim, "ssim")
REF_TEST(test_ref_spearman, "spearman")
REF_TEST(test_ref_pearson, "pearson")
REF_TEST(test_ref_hog_features, "hog")
REF_TEST(test_ref_hog_similarity, "hogsim")
REF_TEST(test_ref_wilcoxon, "wilcoxon")
REF_TEST(test_ref_summary, "summary")
REF_TEST(test_ref_bootstrap_percentile, "percentile")

/* ---- registration: salcheck scores each input now, the script later ---- */

static void add_pr(metrics_ws_t *ws, const char *desc, const float *map, const uint8_t *mask)
{
    int h = metrics_ws_h(ws), w = metrics_ws_w(ws);
    size_t n = (size_t)h * w;
    double v[3];
    loc_auprc(ws, map, mask, &v[0]);
    loc_average_precision(ws, map, mask, &v[1]);
    loc_roc_auc(ws, map, mask, &v[2]);
    ref_case_t *c = ref_add("pr", desc, h, w, NULL, 0, 0.0, 1e-9);
    ref_array(c, 0, n, map);
    ref_array(c, 1, n, mask);
    ref_mine(c, v, 3);
}

static void add_otsu(metrics_ws_t *ws, const char *desc, const float *map)
{
    int h = metrics_ws_h(ws), w = metrics_ws_w(ws);
    double v;
    loc_otsu_threshold(ws, map, &v);
    ref_case_t *c = ref_add("otsu", desc, h, w, NULL, 0, 1e-12, 1e-12);
    ref_array(c, 0, (size_t)h * w, map);
    ref_mine(c, &v, 1);
}

static void add_ssim(metrics_ws_t *ws, const char *desc, const float *a, const float *b,
                     const sim_ssim_opts_t *o)
{
    int h = metrics_ws_h(ws), w = metrics_ws_w(ws);
    double v, p[5] = {o->win_size, o->data_range, o->gaussian, o->sigma, o->sample_covariance};
    sim_ssim(ws, a, b, o, &v);
    ref_case_t *c = ref_add("ssim", desc, h, w, p, 5, 0.0, 1e-9);
    ref_array(c, 0, (size_t)h * w, a);
    ref_array(c, 0, (size_t)h * w, b);
    ref_mine(c, &v, 1);
}

static void add_corr(metrics_ws_t *ws, const char *desc, const float *a, const float *b)
{
    int h = metrics_ws_h(ws), w = metrics_ws_w(ws);
    size_t n = (size_t)h * w;
    for (int absolute = 0; absolute <= 1; absolute++) {
        double v, p = absolute;
        char d[96];
        snprintf(d, sizeof d, "%s%s", desc, absolute ? ", absolute" : "");
        sim_spearman(ws, a, b, absolute, &v);
        ref_case_t *c = ref_add("spearman", d, h, w, &p, 1, 0.0, 1e-9);
        ref_array(c, 0, n, a);
        ref_array(c, 0, n, b);
        ref_mine(c, &v, 1);
    }
    double v;
    sim_pearson(ws, a, b, &v);
    ref_case_t *c = ref_add("pearson", desc, h, w, NULL, 0, 0.0, 1e-9);
    ref_array(c, 0, n, a);
    ref_array(c, 0, n, b);
    ref_mine(c, &v, 1);
}

static void hog_param_list(const hog_params_t *hp, double p[6])
{
    p[0] = hp->orientations;
    p[1] = hp->cell_rows;
    p[2] = hp->cell_cols;
    p[3] = hp->block_rows;
    p[4] = hp->block_cols;
    p[5] = hp->block_norm;
}

static void add_hog(int h, int w, const hog_params_t *hp, const char *desc, const float *a,
                    const float *b)
{
    metrics_ws_t *ws = metrics_ws_create_hog(h, w, hp);
    size_t nf = hog_ws_feature_count(ws);
    double p[6];
    hog_param_list(hp, p);
    double *features = malloc(nf * sizeof(double));
    hog_features(ws, a, features);
    ref_case_t *c = ref_add("hog", desc, h, w, p, 6, 0.0, 1e-9);
    ref_array(c, 0, (size_t)h * w, a);
    ref_mine(c, features, nf);
    free(features);
    if (b) {
        double v;
        sim_hog(ws, a, b, &v);
        c = ref_add("hogsim", desc, h, w, p, 6, 0.0, 1e-9);
        ref_array(c, 0, (size_t)h * w, a);
        ref_array(c, 0, (size_t)h * w, b);
        ref_mine(c, &v, 1);
    }
    metrics_ws_destroy(ws);
}

static void add_wilcoxon(stats_ws_t *sw, const char *desc, const double *x, const double *y,
                         size_t n, int omit)
{
    stats_wilcoxon_t r;
    stats_wilcoxon(sw, x, y, n, omit ? STATS_NAN_OMIT : STATS_NAN_PROPAGATE, &r);
    double v[2] = {r.statistic, r.pvalue}, p = omit;
    ref_case_t *c = ref_add("wilcoxon", desc, 1, (int)n, &p, 1, 1e-9, 1e-300);
    ref_array(c, 2, n, x);
    ref_array(c, 2, n, y);
    ref_mine(c, v, 2);
}

static void add_summary(stats_ws_t *sw, const char *desc, const double *x, size_t n)
{
    stats_summary_t s;
    stats_summary(sw, x, n, &s);
    double v[7] = {s.mean, s.sd, s.min, s.q1, s.median, s.q3, s.max};
    ref_case_t *c = ref_add("summary", desc, 1, (int)n, NULL, 0, 1e-9, 1e-12);
    ref_array(c, 2, n, x);
    ref_mine(c, v, 7);
}

enum { H = 320, W = 320, N = H * W };

static void register_localization_cases(void)
{
    float *map = malloc(N * sizeof(float)), *other = malloc(N * sizeof(float));
    uint8_t *mask = calloc(N, 1), *mask2 = calloc(N, 1);
    metrics_ws_t *ws = metrics_ws_create(H, W);

    /* RSNA-like ground truth: the union of two boxes */
    box_mask(mask, W, 60, 40, 140, 120);
    box_mask(mask, W, 100, 180, 230, 260);

    gen_uniform(map, N, 1);
    add_pr(ws, "uniform random 320x320", map, mask);
    add_otsu(ws, "uniform random 320x320", map);
    gen_quantized(map, N, 10, 2);
    add_pr(ws, "10 levels (ties) 320x320", map, mask);
    add_otsu(ws, "10 levels 320x320", map);
    gen_blob(map, H, W, 110, 90, 40, 0.3, 3);
    add_pr(ws, "blob + noise 320x320", map, mask);
    add_otsu(ws, "blob + noise 320x320", map);
    postprocess_p1(map, N);
    add_pr(ws, "blob after P1 (top 1% tied at 1)", map, mask);
    add_otsu(ws, "blob after P1", map);
    for (size_t i = 0; i < N; i++)
        map[i] = mask[i];
    add_pr(ws, "map = mask", map, mask);
    add_otsu(ws, "map = mask (two values)", map);
    for (size_t i = 0; i < N; i++)
        map[i] = 1.0f - mask[i];
    add_pr(ws, "map = complement of mask", map, mask);
    gen_normal(map, N, 4);
    add_pr(ws, "signed normal map", map, mask);
    add_otsu(ws, "signed normal map", map);
    /* 8-bit values, as a map read back from a PNG */
    gen_uniform(map, N, 5);
    for (size_t i = 0; i < N; i++)
        map[i] = (float)(floor(map[i] * 255.0) / 255.0);
    add_pr(ws, "8-bit quantized map", map, mask);
    add_otsu(ws, "8-bit quantized map", map);
    /* full mask: ROC undefined (sklearn refuses one class) */
    memset(mask2, 1, N);
    gen_uniform(map, N, 6);
    add_pr(ws, "full mask", map, mask2);
    /* a constant map scored as the libraries do */
    metrics_ws_set_constant_policy(ws, METRICS_CONSTANT_SCORE);
    for (size_t i = 0; i < N; i++)
        map[i] = 0.25f;
    add_pr(ws, "constant map, METRICS_CONSTANT_SCORE", map, mask);
    add_otsu(ws, "constant map, METRICS_CONSTANT_SCORE", map);
    metrics_ws_destroy(ws);

    /* odd small size, scattered single-pixel mask */
    ws = metrics_ws_create(37, 53);
    memset(mask2, 0, N);
    gen_uniform(other, 37 * 53, 7);
    for (int i = 0; i < 37 * 53; i++)
        mask2[i] = other[i] < 0.07f;
    gen_quantized(map, 37 * 53, 4, 8);
    add_pr(ws, "37x53, 4 levels, scattered mask", map, mask2);
    add_otsu(ws, "37x53, 4 levels", map);
    metrics_ws_destroy(ws);

    /* sklearn's documentation example */
    ws = metrics_ws_create(2, 2);
    const float doc_map[4] = {0.1f, 0.4f, 0.35f, 0.8f};
    const uint8_t doc_mask[4] = {0, 0, 1, 1};
    add_pr(ws, "sklearn doc example", doc_map, doc_mask);
    metrics_ws_destroy(ws);

    free(map);
    free(other);
    free(mask);
    free(mask2);
}

static void register_similarity_cases(void)
{
    float *a = malloc(N * sizeof(float)), *b = malloc(N * sizeof(float));
    metrics_ws_t *ws = metrics_ws_create(H, W);
    sim_ssim_opts_t paper, l1, gauss7, wang;
    sim_ssim_opts_default(&paper);
    l1 = paper;
    l1.data_range = 1.0;
    gauss7 = paper;
    gauss7.gaussian = 1;
    wang = gauss7; /* Wang et al. 2004: 11-tap Gaussian, population covariance, L = 1 */
    wang.win_size = 11;
    wang.sample_covariance = 0;
    wang.data_range = 1.0;

    gen_blob(a, H, W, 110, 90, 40, 0.2, 10);
    gen_blob(b, H, W, 120, 100, 35, 0.2, 11);
    add_ssim(ws, "two blobs, paper (7x7 box, L=2)", a, b, &paper);
    add_ssim(ws, "two blobs, L=1", a, b, &l1);
    add_ssim(ws, "two blobs, Gaussian, win 7", a, b, &gauss7);
    add_ssim(ws, "two blobs, Wang 2004", a, b, &wang);
    add_corr(ws, "two blobs", a, b);
    add_hog(H, W, &(hog_params_t){9, 8, 8, 3, 3, HOG_NORM_L2_HYS}, "two blobs, defaults", a, b);
    postprocess_p1(a, N);
    postprocess_p1(b, N);
    add_ssim(ws, "two blobs after P1, paper", a, b, &paper);
    add_corr(ws, "two blobs after P1 (ties at 0 and 1)", a, b);
    add_ssim(ws, "map with itself, paper", a, a, &paper);
    gen_uniform(a, N, 12);
    gen_uniform(b, N, 13);
    add_ssim(ws, "uniform noise pair, paper", a, b, &paper);
    add_ssim(ws, "uniform noise pair, Gaussian", a, b, &gauss7);
    gen_normal(a, N, 14);
    gen_quantized(b, N, 7, 15);
    for (size_t i = 0; i < N; i++)
        b[i] = a[i] * 0.5f + b[i] - 0.5f;
    add_corr(ws, "signed correlated maps", a, b);
    gen_quantized(a, N, 7, 16);
    gen_quantized(b, N, 5, 17);
    for (size_t i = 0; i < N; i++)
        b[i] = 0.6f * a[i] + b[i] - 0.3f; /* signed, with ties */
    add_corr(ws, "quantized maps, ties, signed", a, b);
    add_ssim(ws, "quantized maps, L=1", a, b, &l1);
    metrics_ws_set_constant_policy(ws, METRICS_CONSTANT_SCORE);
    for (size_t i = 0; i < N; i++)
        b[i] = 0.5f;
    add_ssim(ws, "constant map, METRICS_CONSTANT_SCORE", a, b, &paper);
    metrics_ws_destroy(ws);

    ws = metrics_ws_create(37, 53);
    gen_uniform(a, 37 * 53, 18);
    gen_blob(b, 37, 53, 10, 20, 8, 0.5, 19);
    add_ssim(ws, "37x53, paper", a, b, &paper);
    add_ssim(ws, "37x53, Gaussian", a, b, &gauss7);
    add_corr(ws, "37x53", a, b);
    metrics_ws_destroy(ws);

    ws = metrics_ws_create(7, 9); /* the smallest map the 7x7 window allows */
    gen_uniform(a, 63, 20);
    gen_uniform(b, 63, 21);
    add_ssim(ws, "7x9, paper", a, b, &paper);
    metrics_ws_destroy(ws);

    /* HOG: other sizes, parameters and norms */
    gen_uniform(a, 37 * 53, 22);
    gen_uniform(b, 37 * 53, 23);
    add_hog(37, 53, &(hog_params_t){9, 8, 8, 3, 3, HOG_NORM_L2_HYS}, "37x53 random, defaults", a, b);
    gen_quantized(a, 64 * 64, 6, 24);
    gen_quantized(b, 64 * 64, 6, 25);
    add_hog(64, 64, &(hog_params_t){12, 6, 6, 2, 2, HOG_NORM_L2}, "64x64 6 levels, 12 orient, L2",
            a, b);
    add_hog(64, 64, &(hog_params_t){9, 16, 16, 1, 1, HOG_NORM_L1}, "64x64 6 levels, 16px, L1", a,
            NULL);
    gen_blob(a, 48, 40, 20, 20, 9, 0.1, 26);
    add_hog(48, 40, &(hog_params_t){8, 7, 7, 2, 3, HOG_NORM_L1_SQRT},
            "48x40 blob, 7px cells, L1-sqrt", a, NULL);

    free(a);
    free(b);
}

static void register_stats_cases(void)
{
    enum { NS = 200 };
    double x[NS], y[NS];
    stats_ws_t *sw = stats_ws_create(NS, 1000);
    rng_stream_t s = stream_for(30);
    for (int i = 0; i < NS; i++) {
        x[i] = rng_stream_normal(&s);
        y[i] = x[i] + 0.3 * rng_stream_normal(&s) + 0.1;
    }
    add_wilcoxon(sw, "n=10 continuous (exact)", x, y, 10, 0);
    add_wilcoxon(sw, "n=50 continuous (exact, the limit)", x, y, 50, 0);
    add_wilcoxon(sw, "n=51 continuous (normal approximation)", x, y, 51, 0);
    add_wilcoxon(sw, "n=120 continuous", x, y, 120, 0);
    double xq[NS], yq[NS];
    for (int i = 0; i < NS; i++) { /* one decimal: ties and zeros in the differences */
        xq[i] = round(x[i] * 10) / 10;
        yq[i] = round(y[i] * 10) / 10;
    }
    add_wilcoxon(sw, "n=20 one decimal", xq, yq, 20, 0);
    add_wilcoxon(sw, "n=150 one decimal (ties, zeros)", xq, yq, 150, 0);
    /* ties but no zero: scipy 1.10 stays exact, and R+ = 167.5 is truncated to 167 */
    const double xt[20] = {1.5, -1.5, 2.5, 2.5, -3, 4, -4, 4, 5, 6,
                           -7, 8, 9, 10, 11, 12, 13, -14, 15, 16};
    const double yt[20] = {0};
    add_wilcoxon(sw, "n=20 tied nonzero differences (exact)", xt, yt, 20, 0);
    double xz[30], yz[30];
    for (int i = 0; i < 30; i++) {
        xz[i] = x[i];
        yz[i] = i % 10 == 0 ? x[i] : y[i]; /* three zero differences */
    }
    add_wilcoxon(sw, "n=30 with zeros (approximation)", xz, yz, 30, 0);
    double xn[25], yn[25];
    memcpy(xn, x, sizeof xn);
    memcpy(yn, y, sizeof yn);
    xn[3] = NAN;
    yn[17] = NAN;
    add_wilcoxon(sw, "n=25 with NaN, omit", xn, yn, 25, 1);
    add_wilcoxon(sw, "n=25 with NaN, propagate", xn, yn, 25, 0);
    double xs[12], ys[12];
    for (int i = 0; i < 12; i++) { /* R+ at the centre of the distribution: p = 1 */
        xs[i] = i + 1.0;
        ys[i] = 0.0;
        if (i == 0 || i == 3 || i == 4 || i == 7 || i == 8 || i == 11)
            xs[i] = -xs[i];
    }
    add_wilcoxon(sw, "n=12 symmetric (p = 1)", xs, ys, 12, 0);
    add_wilcoxon(sw, "all differences zero", x, x, 8, 0);

    double xm[NS];
    memcpy(xm, x, sizeof xm);
    for (int i = 0; i < NS; i += 17)
        xm[i] = NAN;
    add_summary(sw, "n=200 normal with NaN", xm, NS);
    add_summary(sw, "n=7", x, 7);
    double ties[8] = {0.5, 0.25, 0.25, 1, 0, 0.5, 0.5, 0.75};
    add_summary(sw, "n=8 with ties", ties, 8);

    /* bootstrap: the interval is the percentiles of the means salcheck drew */
    double means[1000], lo, hi;
    stats_bootstrap_means(sw, xm, NS, 7, 1, 2, 3, means);
    stats_bootstrap_ci(sw, xm, NS, 7, 1, 2, 3, 0.95, &lo, &hi);
    double ci[2] = {lo, hi}, q[2] = {2.5, 97.5};
    ref_case_t *c = ref_add("percentile", "bootstrap means, 95% interval", 1, 1000, q, 2, 1e-9,
                            1e-12);
    ref_array(c, 2, 1000, means);
    ref_mine(c, ci, 2);
    stats_ws_destroy(sw);
}

/* ------------------------------------------------------------ sort, ranks */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The radix sort against qsort: signs, magnitudes from 1e-300 to 1e300, +-0, ties. */
static void test_sort_and_ranks(void)
{
    enum { NP = 5000 };
    metrics_pair_t *p = malloc(NP * sizeof *p), *tmp = malloc(NP * sizeof *tmp);
    double *expect = malloc(NP * sizeof(double)), *rank = malloc(NP * sizeof(double));
    int *seen = calloc(NP, sizeof(int));
    rng_stream_t s = stream_for(90);
    for (int i = 0; i < NP; i++) {
        double u = rng_stream_uniform(&s), v;
        switch (i % 5) {
        case 0: v = (u - 0.5) * pow(10.0, floor(rng_stream_uniform(&s) * 600) - 300); break;
        case 1: v = floor(u * 7) - 3; break; /* ties */
        case 2: v = (i % 2) ? 0.0 : -0.0; break;
        case 3: v = (float)u; break;
        default: v = -u; break;
        }
        p[i].key = expect[i] = v;
        p[i].idx = i;
    }
    metrics_sort_pairs(p, tmp, NP);
    qsort(expect, NP, sizeof(double), cmp_double);
    int order_ok = 1, perm_ok = 1;
    for (int i = 0; i < NP; i++) {
        order_ok &= p[i].key == expect[i];
        perm_ok &= !seen[p[i].idx];
        seen[p[i].idx] = 1;
    }
    TH_CHECK(order_ok, "radix sort order differs from qsort");
    TH_CHECK(perm_ok, "radix sort lost or duplicated an element");
    /* average ranks: -0.0 and +0.0 are one tie group */
    metrics_rank_sorted(p, NP, rank);
    int n_zero = 0;
    for (int i = 0; i < NP; i++)
        n_zero += p[i].key == 0.0;
    int first_zero = 0;
    while (p[first_zero].key != 0.0)
        first_zero++;
    double zero_rank = first_zero + (n_zero + 1) / 2.0;
    int zeros_ok = 1;
    for (int i = 0; i < NP; i++)
        if (p[i].key == 0.0)
            zeros_ok &= rank[p[i].idx] == zero_rank;
    TH_CHECK(zeros_ok && n_zero >= NP / 5, "the %d zeros do not share rank %g", n_zero, zero_rank);
    free(p);
    free(tmp);
    free(expect);
    free(rank);
    free(seen);
}

/* --------------------------------------------------- hand-made localization */

enum { HH = 40, HW = 50, HN = HH * HW };

/* Ground truth of the hand cases: rows 10..19, columns 5..24: 200 of 2000 pixels, p = 0.1. */
static void hand_mask(uint8_t *mask)
{
    memset(mask, 0, HN);
    box_mask(mask, HW, 10, 5, 19, 24);
}

static void test_loc_map_is_mask(void)
{
    metrics_ws_t *ws = metrics_ws_create(HH, HW);
    uint8_t mask[HN];
    float map[HN];
    hand_mask(mask);
    for (int i = 0; i < HN; i++)
        map[i] = mask[i];
    loc_result_t r;
    TH_EQ_INT(loc_all(ws, map, mask, NULL, &r), 0);
    CHECK_NEAR(r.auprc, 1.0, 1e-15);
    CHECK_NEAR(r.ap, 1.0, 1e-15);
    CHECK_NEAR(r.roc_auc, 1.0, 1e-15);
    CHECK_NEAR(r.pointing, 1.0, 0);
    CHECK_NEAR(r.energy, 1.0, 1e-15);
    CHECK_NEAR(r.rra, 1.0, 1e-15);
    CHECK_NEAR(r.topk, 1.0, 1e-15);
    CHECK_NEAR(r.otsu_threshold, 1.0 / 512, 0); /* centre of the first of 256 bins */
    CHECK_NEAR(r.iou_otsu, 1.0, 0);
    CHECK_NEAR(r.dice_otsu, 1.0, 0);
    CHECK_NEAR(r.iou_fixed, 1.0, 0);
    CHECK_NEAR(r.dice_fixed, 1.0, 0);
    CHECK_NEAR(r.soft_dice_in, 1.0, 1e-15);
    CHECK_NEAR(r.soft_dice_out, 0.0, 0);
    TH_EQ_INT(metrics_ws_undefined_total(ws), 0);
    metrics_ws_destroy(ws);
}

static void test_loc_map_is_complement(void)
{
    metrics_ws_t *ws = metrics_ws_create(HH, HW);
    uint8_t mask[HN];
    float map[HN];
    hand_mask(mask);
    for (int i = 0; i < HN; i++)
        map[i] = 1.0f - mask[i];
    loc_result_t r;
    TH_EQ_INT(loc_all(ws, map, mask, NULL, &r), 0);
    /* PR points (R=0,P=1), (0,0), (1,0.1): trapezoids 0 + 0.5 * 0.1 */
    CHECK_NEAR(r.auprc, 0.05, 1e-15);
    CHECK_NEAR(r.ap, 0.1, 1e-15);
    CHECK_NEAR(r.roc_auc, 0.0, 0);
    CHECK_NEAR(r.pointing, 0.0, 0);
    CHECK_NEAR(r.energy, 0.0, 0);
    CHECK_NEAR(r.rra, 0.0, 0);
    CHECK_NEAR(r.topk, 0.0, 0);
    CHECK_NEAR(r.iou_otsu, 0.0, 0);
    CHECK_NEAR(r.dice_fixed, 0.0, 0);
    CHECK_NEAR(r.soft_dice_in, 0.0, 0);
    CHECK_NEAR(r.soft_dice_out, 1.0, 1e-15);
    metrics_ws_destroy(ws);
}

static void test_loc_constant_map(void)
{
    metrics_ws_t *ws = metrics_ws_create(HH, HW);
    uint8_t mask[HN];
    float map[HN];
    hand_mask(mask);
    for (int i = 0; i < HN; i++)
        map[i] = 0.3f;
    loc_result_t r;
    metrics_counts_t counts;

    /* default: undefined, counted once per call */
    TH_EQ_INT(loc_all(ws, map, mask, NULL, &r), SC_ERR_UNDEFINED);
    TH_CHECK(isnan(r.auprc) && isnan(r.roc_auc) && isnan(r.pointing) && isnan(r.otsu_threshold) &&
                 isnan(r.soft_dice_out),
             "constant map gave numbers");
    double v = 0;
    TH_EQ_INT(loc_auprc(ws, map, mask, &v), SC_ERR_UNDEFINED);
    TH_CHECK(isnan(v), "loc_auprc on a constant map = %g", v);
    metrics_ws_counts(ws, &counts);
    TH_EQ_INT(counts.constant_map, 2);
    TH_EQ_INT(metrics_ws_undefined_total(ws), 2);

    /* scored as the libraries do: p = 0.1 */
    metrics_ws_set_constant_policy(ws, METRICS_CONSTANT_SCORE);
    loc_opts_t o;
    loc_opts_default(&o);
    TH_EQ_INT(loc_all(ws, map, mask, &o, &r), 0);
    CHECK_NEAR(r.auprc, 0.55, 1e-15); /* (1 + p) / 2 */
    CHECK_NEAR(r.ap, 0.1, 1e-15);
    CHECK_NEAR(r.roc_auc, 0.5, 0);
    CHECK_NEAR(r.pointing, 0.0, 0); /* first maximum: pixel (0, 0), outside */
    CHECK_NEAR(r.energy, 0.1, 1e-15);
    CHECK_NEAR(r.rra, 0.1, 1e-15); /* every pixel tied: expected share p */
    CHECK_NEAR(r.topk, 0.1, 1e-15);
    CHECK_NEAR(r.otsu_threshold, (double)0.3f, 0); /* skimage returns the value */
    CHECK_NEAR(r.iou_otsu, 0.0, 0);                /* nothing strictly above it */
    CHECK_NEAR(r.iou_fixed, 0.0, 0);
    CHECK_NEAR(r.soft_dice_in, 2 * 0.3 * 200 / (0.3 * 2000 + 200), 1e-7);
    CHECK_NEAR(r.soft_dice_out, 2 * 0.3 * 1800 / (0.3 * 2000 + 1800), 1e-7);
    o.pointing_tie = LOC_TIE_ANY;
    loc_all(ws, map, mask, &o, &r);
    CHECK_NEAR(r.pointing, 1.0, 0);
    o.pointing_tie = LOC_TIE_FRACTION;
    loc_all(ws, map, mask, &o, &r);
    CHECK_NEAR(r.pointing, 0.1, 1e-15);
    metrics_ws_destroy(ws);
}

static void test_loc_undefined_inputs(void)
{
    metrics_ws_t *ws = metrics_ws_create(HH, HW);
    uint8_t mask[HN], empty[HN], full[HN];
    float map[HN];
    loc_result_t r;
    metrics_counts_t counts;
    hand_mask(mask);
    memset(empty, 0, HN);
    memset(full, 1, HN);

    gen_uniform(map, HN, 40);
    map[123] = NAN;
    TH_EQ_INT(loc_all(ws, map, mask, NULL, &r), SC_ERR_UNDEFINED);
    TH_CHECK(isnan(r.auprc) && isnan(r.otsu_threshold) && isnan(r.energy), "NaN map scored");
    map[123] = INFINITY;
    double v;
    TH_EQ_INT(loc_roc_auc(ws, map, mask, &v), SC_ERR_UNDEFINED);
    TH_CHECK(isnan(v), "infinite map scored %g", v);

    gen_uniform(map, HN, 41);
    TH_EQ_INT(loc_all(ws, map, empty, NULL, &r), SC_ERR_UNDEFINED);
    TH_CHECK(isnan(r.auprc) && isnan(r.ap) && isnan(r.pointing) && isnan(r.iou_otsu) &&
                 isnan(r.soft_dice_in),
             "empty mask scored");
    TH_CHECK(r.otsu_threshold > 0 && r.otsu_threshold < 1, "Otsu needs no mask: %g",
             r.otsu_threshold);

    /* full mask: everything found, ROC-AUC has no negatives */
    TH_EQ_INT(loc_all(ws, map, full, NULL, &r), SC_ERR_UNDEFINED);
    CHECK_NEAR(r.auprc, 1.0, 1e-15);
    CHECK_NEAR(r.ap, 1.0, 1e-15);
    TH_CHECK(isnan(r.roc_auc), "ROC-AUC with one class = %g", r.roc_auc);
    CHECK_NEAR(r.rra, 1.0, 0);
    CHECK_NEAR(r.energy, 1.0, 1e-15);

    /* negative values: mass-based metrics undefined, rank-based ones fine */
    gen_normal(map, HN, 42);
    TH_EQ_INT(loc_all(ws, map, mask, NULL, &r), SC_ERR_UNDEFINED);
    TH_CHECK(isnan(r.energy) && isnan(r.soft_dice_in) && isnan(r.soft_dice_out),
             "energy on a signed map = %g", r.energy);
    TH_CHECK(r.auprc > 0 && r.auprc < 1 && !isnan(r.rra), "rank metrics on a signed map");
    TH_EQ_INT(loc_energy_pointing_game(ws, map, mask, &v), SC_ERR_UNDEFINED);

    metrics_ws_counts(ws, &counts);
    TH_EQ_INT(counts.nonfinite, 2);
    TH_EQ_INT(counts.empty_mask, 1);
    TH_EQ_INT(counts.one_class, 1);
    TH_EQ_INT(counts.negative_map, 2);
    TH_EQ_INT(metrics_ws_undefined_total(ws), 6);
    metrics_ws_reset_counts(ws);
    TH_EQ_INT(metrics_ws_undefined_total(ws), 0);

    /* bad arguments are errors, not undefined values */
    TH_EQ_INT(loc_auprc(ws, NULL, mask, &v), SC_ERR_ARG);
    TH_EQ_INT(loc_topk_intersection(ws, map, mask, 0.0, &v), SC_ERR_ARG);
    TH_EQ_INT(metrics_ws_undefined_total(ws), 0);
    metrics_ws_destroy(ws);
}

/* sklearn's precision_recall_curve documentation: y = [0 0 1 1], s = [.1 .4 .35 .8]. */
static void test_loc_pr_worked_example(void)
{
    metrics_ws_t *ws = metrics_ws_create(2, 2);
    const float map[4] = {0.1f, 0.4f, 0.35f, 0.8f};
    const uint8_t mask[4] = {0, 0, 1, 1};
    double v;
    /* points (R,P): (0,1) (.5,1) (.5,.5) (1,2/3) (1,.5); trapezoids .5 + 0 + .5*(.5+2/3)/2 + 0 */
    TH_EQ_INT(loc_auprc(ws, map, mask, &v), 0);
    CHECK_NEAR(v, 0.5 + 0.5 * (0.5 + 2.0 / 3.0) / 2, 1e-15);
    TH_EQ_INT(loc_average_precision(ws, map, mask, &v), 0);
    CHECK_NEAR(v, 0.5 * 1 + 0.5 * 2.0 / 3.0, 1e-15);
    TH_EQ_INT(loc_roc_auc(ws, map, mask, &v), 0);
    CHECK_NEAR(v, 0.75, 0);
    metrics_ws_destroy(ws);
}

static void test_loc_pointing_ties_tolerance(void)
{
    enum { S = 20 };
    metrics_ws_t *ws = metrics_ws_create(S, S);
    uint8_t mask[S * S] = {0};
    float map[S * S] = {0};
    box_mask(mask, S, 5, 5, 9, 9);
    double v;
    /* two maxima: (2,2) outside (first in row-major), (7,7) inside */
    map[2 * S + 2] = 1;
    map[7 * S + 7] = 1;
    loc_pointing_game(ws, map, mask, LOC_TIE_FIRST, 0, &v);
    CHECK_NEAR(v, 0.0, 0);
    loc_pointing_game(ws, map, mask, LOC_TIE_ANY, 0, &v);
    CHECK_NEAR(v, 1.0, 0);
    loc_pointing_game(ws, map, mask, LOC_TIE_FRACTION, 0, &v);
    CHECK_NEAR(v, 0.5, 0);
    /* (2,2) is sqrt(18) = 4.243 px from the corner (5,5); hits need distance < r */
    loc_pointing_game(ws, map, mask, LOC_TIE_FIRST, 4.24, &v);
    CHECK_NEAR(v, 0.0, 0);
    loc_pointing_game(ws, map, mask, LOC_TIE_FIRST, 4.25, &v);
    CHECK_NEAR(v, 1.0, 0);
    /* maxima (2,7) at distance 3 above the box and (0,0) at sqrt(50) */
    memset(map, 0, sizeof map);
    map[0] = 1;
    map[2 * S + 7] = 1;
    loc_pointing_game(ws, map, mask, LOC_TIE_FRACTION, 3.0, &v);
    CHECK_NEAR(v, 0.0, 0); /* strict: distance 3 is not < 3 */
    loc_pointing_game(ws, map, mask, LOC_TIE_FRACTION, 3.01, &v);
    CHECK_NEAR(v, 0.5, 0);
    loc_pointing_game(ws, map, mask, LOC_TIE_ANY, 7.1, &v);
    CHECK_NEAR(v, 1.0, 0);
    loc_pointing_game(ws, map, mask, LOC_TIE_FRACTION, 7.1, &v);
    CHECK_NEAR(v, 1.0, 0);
    loc_pointing_game(ws, map, mask, LOC_TIE_FIRST, 7.0, &v);
    CHECK_NEAR(v, 0.0, 0); /* (0,0): sqrt(50) = 7.07 */
    metrics_ws_destroy(ws);

    /* the distance transform against brute force on many tied maxima */
    enum { B = 40 };
    ws = metrics_ws_create(B, B);
    float m[B * B];
    uint8_t mk[B * B];
    int mismatches = 0;
    for (uint32_t trial = 0; trial < 6; trial++) {
        gen_quantized(m, B * B, 3, 50 + trial);
        memset(mk, 0, sizeof mk);
        box_mask(mk, B, 3 + 5 * (int)trial, 30 - 4 * (int)trial, 8 + 5 * (int)trial,
                 33 - 4 * (int)trial);
        if (trial % 2)
            mk[(B - 1) * B + 1] = 1; /* a second, single-pixel component */
        const double tols[4] = {0, 2, 5.5, 15};
        for (int t = 0; t < 4; t++) {
            double tol = tols[t];
            size_t n_max = 0, n_hit = 0;
            for (int i = 0; i < B * B; i++) {
                if (m[i] != 2.0f / 3.0f)
                    continue;
                n_max++;
                int hit = mk[i];
                for (int j = 0; j < B * B && !hit && tol > 1; j++) {
                    double dy = i / B - j / B, dx = i % B - j % B;
                    hit = mk[j] && dy * dy + dx * dx < tol * tol;
                }
                n_hit += hit;
            }
            loc_pointing_game(ws, m, mk, LOC_TIE_FRACTION, tol, &v);
            mismatches += !near(v, (double)n_hit / (double)n_max, 0, 1e-15);
        }
    }
    TH_EQ_INT(mismatches, 0);
    metrics_ws_destroy(ws);
}

static void test_loc_rank_ties(void)
{
    metrics_ws_t *ws = metrics_ws_create(1, 10);
    const float map[10] = {5, 5, 5, 4, 4, 3, 2, 1, 1, 0};
    uint8_t mask[10] = {1, 0, 0, 1, 0, 0, 0, 0, 0, 1};
    double v;
    /* K = 3: the three 5s hold one mask pixel */
    loc_relevance_rank_accuracy(ws, map, mask, &v);
    CHECK_NEAR(v, 1.0 / 3.0, 1e-15);
    /* k = 4: the 5s (1 hit) and one of the two 4s (1 of 2 inside): 1.5 / 4 */
    loc_topk_intersection(ws, map, mask, 0.4, &v);
    CHECK_NEAR(v, 0.375, 1e-15);
    loc_topk_intersection(ws, map, mask, 0.5, &v);
    CHECK_NEAR(v, 0.4, 1e-15);
    loc_topk_intersection(ws, map, mask, 1e-9, &v); /* k rounds to 0: at least 1 */
    CHECK_NEAR(v, 1.0 / 3.0, 1e-15);
    metrics_ws_destroy(ws);

    ws = metrics_ws_create(1, 6);
    const float m2[6] = {3, 2, 2, 2, 1, 0};
    const uint8_t k2[6] = {1, 1, 0, 0, 0, 1};
    /* K = 3: the 3 (inside) and two of the three 2s (one inside): 1 + 2/3 */
    loc_relevance_rank_accuracy(ws, m2, k2, &v);
    CHECK_NEAR(v, (1 + 2.0 / 3.0) / 3, 1e-15);
    metrics_ws_destroy(ws);
}

static void test_loc_mass_and_overlap(void)
{
    metrics_ws_t *ws = metrics_ws_create(1, 4);
    const float map[4] = {0.5f, 0.25f, 0.25f, 0.0f};
    const uint8_t mask[4] = {1, 0, 0, 1};
    double v, iou, dice;
    loc_energy_pointing_game(ws, map, mask, &v);
    CHECK_NEAR(v, 0.5, 1e-15);
    loc_soft_dice(ws, map, mask, 0, &v);
    CHECK_NEAR(v, 2 * 0.5 / (1.0 + 2), 1e-15);
    loc_soft_dice(ws, map, mask, 1, &v);
    CHECK_NEAR(v, 2 * 0.5 / (1.0 + 2), 1e-15);
    /* {map > 0.2} = pixels 0,1,2 against {0,3}: intersection 1, union 4 */
    loc_overlap_at(ws, map, mask, 0.2, &iou, &dice);
    CHECK_NEAR(iou, 0.25, 0);
    CHECK_NEAR(dice, 0.4, 1e-15);
    loc_overlap_at(ws, map, mask, 0.25, &iou, &dice); /* strictly greater */
    CHECK_NEAR(iou, 0.5, 0);
    metrics_ws_destroy(ws);
}

/* loc_all equals the single-metric functions. */
static void test_loc_all_matches_single(void)
{
    metrics_ws_t *ws = metrics_ws_create(H, W);
    float *map = malloc(N * sizeof(float));
    uint8_t *mask = calloc(N, 1);
    box_mask(mask, W, 170, 170, 200, 230); /* one quadrant around the blob's centre */
    gen_blob(map, H, W, 170, 170, 30, 0.4, 60);
    postprocess_p1(map, N);
    loc_opts_t o = {LOC_TIE_FRACTION, 3.0, 0.05, 0.4};
    loc_result_t r;
    TH_EQ_INT(loc_all(ws, map, mask, &o, &r), 0);
    double v, w2;
    loc_auprc(ws, map, mask, &v);
    CHECK_NEAR(r.auprc, v, 0);
    loc_average_precision(ws, map, mask, &v);
    CHECK_NEAR(r.ap, v, 0);
    loc_roc_auc(ws, map, mask, &v);
    CHECK_NEAR(r.roc_auc, v, 0);
    loc_pointing_game(ws, map, mask, o.pointing_tie, o.pointing_tolerance, &v);
    CHECK_NEAR(r.pointing, v, 0);
    TH_CHECK(r.pointing > 0 && r.pointing < 1, "tied maxima at 1 after P1 straddle the box: %g",
             r.pointing);
    loc_energy_pointing_game(ws, map, mask, &v);
    CHECK_NEAR(r.energy, v, 0);
    loc_relevance_rank_accuracy(ws, map, mask, &v);
    CHECK_NEAR(r.rra, v, 0);
    loc_topk_intersection(ws, map, mask, o.topk_fraction, &v);
    CHECK_NEAR(r.topk, v, 0);
    loc_otsu_threshold(ws, map, &v);
    CHECK_NEAR(r.otsu_threshold, v, 0);
    loc_overlap_otsu(ws, map, mask, &v, &w2);
    CHECK_NEAR(r.iou_otsu, v, 0);
    CHECK_NEAR(r.dice_otsu, w2, 0);
    loc_overlap_at(ws, map, mask, o.threshold, &v, &w2);
    CHECK_NEAR(r.iou_fixed, v, 0);
    CHECK_NEAR(r.dice_fixed, w2, 0);
    loc_soft_dice(ws, map, mask, 0, &v);
    CHECK_NEAR(r.soft_dice_in, v, 0);
    loc_soft_dice(ws, map, mask, 1, &v);
    CHECK_NEAR(r.soft_dice_out, v, 0);
    free(map);
    free(mask);
    metrics_ws_destroy(ws);
}

/* ------------------------------------------------------ hand-made similarity */

static void test_sim_known_values(void)
{
    metrics_ws_t *ws = metrics_ws_create(H, W);
    float *a = malloc(N * sizeof(float)), *b = malloc(N * sizeof(float));
    double v, v2;
    gen_blob(a, H, W, 100, 100, 30, 0.3, 70);
    gen_uniform(b, N, 71);
    TH_EQ_INT(sim_ssim(ws, a, a, NULL, &v), 0);
    CHECK_NEAR(v, 1.0, 1e-15);
    sim_ssim(ws, a, b, NULL, &v);
    sim_ssim(ws, b, a, NULL, &v2);
    CHECK_NEAR(v, v2, 1e-15);
    TH_CHECK(v > -1 && v < 0.5, "SSIM of a blob and noise = %g", v);
    /* Spearman is invariant under a monotone map, -1 under a decreasing one */
    for (size_t i = 0; i < N; i++)
        b[i] = expf(3 * a[i]);
    sim_spearman(ws, a, b, 0, &v);
    CHECK_NEAR(v, 1.0, 1e-12);
    for (size_t i = 0; i < N; i++)
        b[i] = -a[i];
    sim_spearman(ws, a, b, 0, &v);
    CHECK_NEAR(v, -1.0, 1e-12);
    sim_spearman(ws, a, b, 1, &v); /* |a| = |b| */
    CHECK_NEAR(v, 1.0, 1e-12);
    sim_pearson(ws, a, b, &v);
    CHECK_NEAR(v, -1.0, 1e-12);
    free(a);
    free(b);
    metrics_ws_destroy(ws);

    /* ranks with ties: x = 1 2 2 3 -> 1 2.5 2.5 4; y ranks 1 3 2 4: rho = 3 / sqrt(10) */
    ws = metrics_ws_create(1, 4);
    const float x[4] = {1, 2, 2, 3}, y[4] = {1, 3, 2, 4};
    sim_spearman(ws, x, y, 0, &v);
    CHECK_NEAR(v, 3.0 / sqrt(10.0), 1e-15);
    const float px[4] = {1, 2, 3, 4}, py[4] = {2, 4, 6, 8.5f};
    sim_pearson(ws, px, py, &v); /* sxy 10.75, sxx 5, syy 23.1875 */
    CHECK_NEAR(v, 10.75 / sqrt(5 * 23.1875), 1e-15);
    metrics_ws_destroy(ws);

    /* two constant maps (policy SCORE): S = (2 c1 c2 + C1) / (c1^2 + c2^2 + C1), L = 2 */
    ws = metrics_ws_create(16, 16);
    float c1[256], c2[256];
    for (int i = 0; i < 256; i++) {
        c1[i] = 0.25f;
        c2[i] = 0.75f;
    }
    TH_EQ_INT(sim_ssim(ws, c1, c2, NULL, &v), SC_ERR_UNDEFINED);
    metrics_ws_set_constant_policy(ws, METRICS_CONSTANT_SCORE);
    TH_EQ_INT(sim_ssim(ws, c1, c2, NULL, &v), 0);
    double k = 0.0004; /* (0.01 * 2)^2 */
    CHECK_NEAR(v, (2 * 0.25 * 0.75 + k) / (0.0625 + 0.5625 + k), 1e-12);
    TH_EQ_INT(sim_spearman(ws, c1, c2, 0, &v), SC_ERR_UNDEFINED); /* scipy: NaN */
    TH_CHECK(isnan(v), "Spearman of constant maps = %g", v);
    c1[5] = NAN;
    TH_EQ_INT(sim_pearson(ws, c1, c2, &v), SC_ERR_UNDEFINED);
    metrics_counts_t counts;
    metrics_ws_counts(ws, &counts);
    TH_EQ_INT(counts.constant_map, 2);
    TH_EQ_INT(counts.nonfinite, 1);
    metrics_ws_destroy(ws);
}

/* A vertical step edge: only orientation 0 is filled, 8 px of magnitude 1 per cell. */
static void test_hog_step_edge(void)
{
    hog_params_t hp = {9, 8, 8, 1, 1, HOG_NORM_L1};
    metrics_ws_t *ws = metrics_ws_create_hog(16, 16, &hp);
    float img[256];
    for (int i = 0; i < 256; i++)
        img[i] = (i % 16) >= 8 ? 1.0f : 0.0f;
    size_t nf = hog_ws_feature_count(ws);
    TH_EQ_INT(nf, 2 * 2 * 9);
    double f[36];
    TH_EQ_INT(hog_features(ws, img, f), 0);
    double cell = 8.0 / 64.0, expect = cell / (cell + 1e-5);
    for (size_t i = 0; i < nf; i++)
        CHECK_NEAR(f[i], i % 9 == 0 ? expect : 0.0, 1e-15);
    /* too small for a block: an error, not a NaN */
    metrics_ws_t *tiny = metrics_ws_create(12, 12);
    TH_EQ_INT(hog_ws_feature_count(tiny), 0);
    double v;
    TH_EQ_INT(sim_hog(tiny, img, img, &v), SC_ERR_ARG);
    metrics_ws_destroy(tiny);
    metrics_ws_destroy(ws);
}

/* ----------------------------------------------------------- hand-made stats */

static void test_stats_known_values(void)
{
    stats_ws_t *sw = stats_ws_create(500, 1000);
    stats_summary_t s;
    const double x[4] = {3, 1, NAN, 2};
    TH_EQ_INT(stats_summary(sw, x, 4, &s), 0);
    TH_EQ_INT(s.n, 3);
    TH_EQ_INT(s.n_nan, 1);
    CHECK_NEAR(s.mean, 2.0, 0);
    CHECK_NEAR(s.sd, 1.0, 0);
    CHECK_NEAR(s.median, 2.0, 0);
    CHECK_NEAR(s.q1, 1.5, 0);
    CHECK_NEAR(s.q3, 2.5, 0);
    const double only_nan[2] = {NAN, NAN};
    TH_EQ_INT(stats_summary(sw, only_nan, 2, &s), SC_ERR_UNDEFINED);
    TH_CHECK(isnan(s.mean) && s.n_nan == 2, "summary of NaNs");

    /* Wilcoxon: 5 positive differences, T = 0, exact p = 2 / 2^5 */
    const double wx[5] = {1, 2, 3, 4, 5}, wy[5] = {0, 0, 0, 0, 0};
    stats_wilcoxon_t w;
    TH_EQ_INT(stats_wilcoxon(sw, wx, wy, 5, STATS_NAN_PROPAGATE, &w), 0);
    CHECK_NEAR(w.statistic, 0.0, 0);
    CHECK_NEAR(w.pvalue, 0.0625, 0);
    TH_EQ_INT(w.exact, 1);

    /* bootstrap: reproducible, keyed, sensible */
    double data[400], lo, hi, lo2, hi2;
    rng_stream_t st = stream_for(80);
    for (int i = 0; i < 400; i++)
        data[i] = 2.0 + rng_stream_normal(&st);
    TH_EQ_INT(stats_bootstrap_ci(sw, data, 400, 11, 1, 0, 0, 0.95, &lo, &hi), 0);
    stats_bootstrap_ci(sw, data, 400, 11, 1, 0, 0, 0.95, &lo2, &hi2);
    TH_CHECK(lo == lo2 && hi == hi2, "same key, different interval");
    stats_bootstrap_ci(sw, data, 400, 11, 2, 0, 0, 0.95, &lo2, &hi2);
    TH_CHECK(lo != lo2 || hi != hi2, "different counters, same interval");
    stats_summary(sw, data, 400, &s);
    TH_CHECK(lo < s.mean && s.mean < hi, "interval [%g, %g] misses the mean %g", lo, hi, s.mean);
    double width = hi - lo, normal_width = 2 * 1.959964 * s.sd / sqrt(400.0);
    TH_CHECK(fabs(width / normal_width - 1) < 0.15, "bootstrap width %g vs normal theory %g",
             width, normal_width);
    const double flat[3] = {0.7, 0.7, 0.7};
    stats_bootstrap_ci(sw, flat, 3, 11, 1, 0, 0, 0.95, &lo, &hi);
    CHECK_NEAR(lo, 0.7, 1e-15);
    CHECK_NEAR(hi, 0.7, 1e-15);
    TH_EQ_INT(stats_bootstrap_ci(sw, only_nan, 2, 11, 1, 0, 0, 0.95, &lo, &hi), SC_ERR_UNDEFINED);
    stats_ws_destroy(sw);
}

/* Prepared maps (sim_prep_t, the pair phase's per-map ranks and HOG) give bit for bit
 * what sim_spearman / sim_hog give on the two maps, with the same undefined counts: maps
 * with ties, negative values, -0 beside 0, a constant map, a NaN, under both constant
 * policies, every map against every other (both orders). */
static void test_sim_prepared_bit_identical(void)
{
    enum { H = 40, W = 36, NM = 9 };
    const size_t n = (size_t)H * W;
    float maps[NM][H * W];
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(20210601, "sim_prep"), 3, 0, 0);
    for (int m = 0; m < NM; m++)
        for (size_t q = 0; q < n; q++) {
            double u = rng_stream_uniform(&rs);
            float v = (float)u;
            if (m == 1)
                v = (float)floor(u * 8) / 8.0f; /* many ties */
            else if (m == 2)
                v = (float)(2 * u - 1); /* negative values: |v| ranks differ */
            else if (m == 3)
                v = q % 3 ? (float)floor(u * 4) / 4.0f : -0.0f; /* -0 beside 0 */
            else if (m == 4)
                v = 0.25f; /* constant */
            else if (m == 5)
                v = q == 77 ? NAN : v; /* not finite */
            else if (m == 6)
                v = (float)((q / W) % 2); /* stripes: degenerate HOG is possible */
            else if (m == 7)
                v = (q % 2 ? 1.0f : -1.0f) * 0.5f; /* constant |v|, not constant v */
            maps[m][q] = v;
        }
    for (int pol = 0; pol < 2; pol++) {
        metrics_ws_t *ws = metrics_ws_create(H, W), *ws2 = metrics_ws_create(H, W);
        TH_CHECK(ws && ws2, "workspaces");
        if (!ws || !ws2) {
            metrics_ws_destroy(ws);
            metrics_ws_destroy(ws2);
            return;
        }
        if (pol) {
            metrics_ws_set_constant_policy(ws, METRICS_CONSTANT_SCORE);
            metrics_ws_set_constant_policy(ws2, METRICS_CONSTANT_SCORE);
        }
        sim_prep_t prep[NM];
        int ok = 1;
        for (int m = 0; m < NM; m++) {
            ok &= sim_prep_init(&prep[m], ws2, SIM_PREP_RANK | SIM_PREP_RANK_ABS | SIM_PREP_HOG) == 0;
            memcpy(prep[m].map, maps[m], sizeof(float) * n);
            sim_prep_compute(ws2, &prep[m]);
        }
        TH_CHECK(ok, "sim_prep_init");
        int differ = 0, compared = 0, defined = 0;
        for (int a = 0; a < NM && ok; a++)
            for (int b = 0; b < NM; b++) {
                for (int f = 0; f < 3; f++) {
                    double want = 0, got = 0;
                    int rw = f < 2 ? sim_spearman(ws, maps[a], maps[b], f, &want)
                                   : sim_hog(ws, maps[a], maps[b], &want);
                    int rg = f < 2 ? sim_spearman_prep(ws2, &prep[a], &prep[b], f, &got)
                                   : sim_hog_prep(ws2, &prep[a], &prep[b], &got);
                    compared++;
                    defined += rw == 0;
                    if (rw != rg || memcmp(&want, &got, sizeof want) != 0) {
                        if (differ++ < 3)
                            printf("    maps %d, %d, %s: %.17g (%d) vs prepared %.17g (%d)\n", a,
                                   b, f == 0 ? "spearman" : f == 1 ? "spearman_abs" : "hog",
                                   want, rw, got, rg);
                    }
                }
            }
        metrics_counts_t cw, cg;
        metrics_ws_counts(ws, &cw);
        metrics_ws_counts(ws2, &cg);
        TH_CHECK(differ == 0, "policy %d: %d of %d values differ", pol, differ, compared);
        TH_CHECK(defined > compared / 3 && defined < compared, "policy %d: %d of %d defined", pol,
                 defined, compared);
        TH_CHECK(cw.nonfinite == cg.nonfinite && cw.constant_map == cg.constant_map &&
                     cw.degenerate == cg.degenerate,
                 "policy %d: undefined counts %ld/%ld/%ld vs prepared %ld/%ld/%ld", pol,
                 cw.nonfinite, cw.constant_map, cw.degenerate, cg.nonfinite, cg.constant_map,
                 cg.degenerate);
        /* the shared ranks: a map without negative values ranks |v| in the same array */
        TH_CHECK(prep[0].rank_abs == prep[0].rank && prep[3].rank_abs == prep[3].rank &&
                     prep[2].rank_abs != prep[2].rank,
                 "rank arrays shared where no value is negative, only there");
        for (int m = 0; m < NM; m++)
            sim_prep_free(&prep[m]);
        metrics_ws_destroy(ws);
        metrics_ws_destroy(ws2);
    }
}

int main(void)
{
    sc_log_set_level(SC_LOG_ERROR);
    /* salcheck scores the reference inputs, then the script scores them once */
    register_localization_cases();
    register_similarity_cases();
    register_stats_cases();
    ref_run();

    TH_RUN(test_sort_and_ranks);
    TH_RUN(test_loc_map_is_mask);
    TH_RUN(test_loc_map_is_complement);
    TH_RUN(test_loc_constant_map);
    TH_RUN(test_loc_undefined_inputs);
    TH_RUN(test_loc_pr_worked_example);
    TH_RUN(test_loc_pointing_ties_tolerance);
    TH_RUN(test_loc_rank_ties);
    TH_RUN(test_loc_mass_and_overlap);
    TH_RUN(test_loc_all_matches_single);
    TH_RUN(test_sim_known_values);
    TH_RUN(test_hog_step_edge);
    TH_RUN(test_sim_prepared_bit_identical);
    TH_RUN(test_stats_known_values);

    TH_RUN(test_ref_auprc_ap_rocauc);
    TH_RUN(test_ref_otsu);
    TH_RUN(test_ref_ssim);
    TH_RUN(test_ref_spearman);
    TH_RUN(test_ref_pearson);
    TH_RUN(test_ref_hog_features);
    TH_RUN(test_ref_hog_similarity);
    TH_RUN(test_ref_wilcoxon);
    TH_RUN(test_ref_summary);
    TH_RUN(test_ref_bootstrap_percentile);
    return th_report();
}
