/*
 * test_metrics_alloc.c - every per-map metric runs on a 320x320 map without allocating.
 *
 * The workspaces are created first (that is where the memory comes from); then
 * this binary counts the calls to malloc and its relatives (it interposes them
 * and forwards to glibc's __libc_* entry points) while each metric runs. A
 * metric that allocates in its per-map path fails here, by name. No timing.
 * Under AddressSanitizer (make SAN=1) the sanitizer owns malloc: skipped.
 */
#include "testhelp.h"

#include "metrics/hog.h"
#include "metrics/localization.h"
#include "metrics/metrics.h"
#include "metrics/similarity.h"
#include "metrics/stats.h"
#include "rng.h"
#include "sc.h"

#include <errno.h>
#include <stdint.h>

#if defined(__SANITIZE_ADDRESS__)
#define ALLOC_HOOKS 0
#else
#define ALLOC_HOOKS 1
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);
extern void *__libc_memalign(size_t alignment, size_t size);

static volatile int alloc_armed;
static volatile long alloc_calls;

void *malloc(size_t size)
{
    alloc_calls += alloc_armed;
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size)
{
    alloc_calls += alloc_armed;
    return __libc_calloc(count, size);
}

void *realloc(void *ptr, size_t size)
{
    alloc_calls += alloc_armed;
    return __libc_realloc(ptr, size);
}

void free(void *ptr) { __libc_free(ptr); }

int posix_memalign(void **ptr, size_t alignment, size_t size)
{
    alloc_calls += alloc_armed;
    void *p = __libc_memalign(alignment, size);
    if (!p)
        return ENOMEM;
    *ptr = p;
    return 0;
}

void *aligned_alloc(size_t alignment, size_t size)
{
    alloc_calls += alloc_armed;
    return __libc_memalign(alignment, size);
}

void *memalign(size_t alignment, size_t size)
{
    alloc_calls += alloc_armed;
    return __libc_memalign(alignment, size);
}
#endif

enum { H = 320, W = 320, N = H * W, NS = 100 };

#if ALLOC_HOOKS
/* Run one call; it must succeed and allocate nothing. */
#define NO_ALLOC(call)                                                          \
    do {                                                                        \
        long before_ = alloc_calls;                                             \
        alloc_armed = 1;                                                        \
        int rc_ = (call);                                                       \
        alloc_armed = 0;                                                        \
        TH_CHECK(rc_ == 0, "%s returned %d", #call, rc_);                       \
        TH_CHECK(alloc_calls == before_, "%s allocated %ld times", #call,       \
                 alloc_calls - before_);                                        \
        n_calls++;                                                              \
    } while (0)
#endif

static void test_hooks_count(void)
{
#if !ALLOC_HOOKS
    TH_SKIP("AddressSanitizer owns malloc (make SAN=1); run the plain build");
#else
    long before = alloc_calls;
    alloc_armed = 1;
    void *p = malloc(64), *q = sc_calloc(10, 8);
    alloc_armed = 0;
    free(p);
    sc_free(q);
    TH_EQ_INT(alloc_calls - before, 2); /* the counter sees malloc and sc_calloc */
#endif
}

static void test_per_map_metrics_do_not_allocate(void)
{
#if !ALLOC_HOOKS
    TH_SKIP("AddressSanitizer owns malloc (make SAN=1); run the plain build");
#else
    float *a = malloc(N * sizeof(float)), *b = malloc(N * sizeof(float));
    uint8_t *mask = calloc(N, 1);
    metrics_ws_t *ws = metrics_ws_create(H, W);
    stats_ws_t *sw = stats_ws_create(NS, 1000);
    double *features = malloc(hog_ws_feature_count(ws) * sizeof(double));
    double x[NS], y[NS];
    rng_stream_t s;
    rng_stream_init(&s, rng_key(1, "test_metrics_alloc"), 0, 0, 0);
    for (int i = 0; i < N; i++) {
        int r = i / W, c = i % W;
        double blob = exp(-((r - 150.0) * (r - 150.0) + (c - 170.0) * (c - 170.0)) / 2000.0);
        a[i] = (float)(blob + 0.3 * rng_stream_uniform(&s));
        b[i] = (float)(blob * 0.5 + 0.5 * rng_stream_uniform(&s));
        mask[i] = r >= 120 && r <= 200 && c >= 140 && c <= 230;
    }
    for (int i = 0; i < NS; i++) {
        x[i] = rng_stream_normal(&s);
        y[i] = x[i] + 0.5 * rng_stream_normal(&s);
    }
    printf("workspaces ready\n"); /* stdout's buffer is allocated before counting */

    int n_calls = 0;
    double v, v2, lo, hi;
    loc_result_t r;
    loc_opts_t o;
    loc_opts_default(&o);
    o.pointing_tie = LOC_TIE_FRACTION;
    o.pointing_tolerance = 15; /* the distance-transform path */
    sim_ssim_opts_t paper, gauss;
    sim_ssim_opts_default(&paper);
    gauss = paper;
    gauss.gaussian = 1;
    stats_summary_t sum;
    stats_wilcoxon_t wil;

    NO_ALLOC(loc_all(ws, a, mask, &o, &r));
    NO_ALLOC(loc_auprc(ws, a, mask, &v));
    NO_ALLOC(loc_average_precision(ws, a, mask, &v));
    NO_ALLOC(loc_roc_auc(ws, a, mask, &v));
    NO_ALLOC(loc_pointing_game(ws, a, mask, LOC_TIE_FIRST, 15, &v));
    NO_ALLOC(loc_pointing_game(ws, a, mask, LOC_TIE_ANY, 15, &v));
    NO_ALLOC(loc_energy_pointing_game(ws, a, mask, &v));
    NO_ALLOC(loc_relevance_rank_accuracy(ws, a, mask, &v));
    NO_ALLOC(loc_topk_intersection(ws, a, mask, 0.02, &v));
    NO_ALLOC(loc_otsu_threshold(ws, a, &v));
    NO_ALLOC(loc_overlap_at(ws, a, mask, 0.5, &v, &v2));
    NO_ALLOC(loc_overlap_otsu(ws, a, mask, &v, &v2));
    NO_ALLOC(loc_soft_dice(ws, a, mask, 0, &v));
    NO_ALLOC(loc_soft_dice(ws, a, mask, 1, &v));
    NO_ALLOC(sim_ssim(ws, a, b, &paper, &v));
    NO_ALLOC(sim_ssim(ws, a, b, &gauss, &v));
    NO_ALLOC(sim_spearman(ws, a, b, 0, &v));
    NO_ALLOC(sim_spearman(ws, a, b, 1, &v));
    NO_ALLOC(sim_pearson(ws, a, b, &v));
    NO_ALLOC(hog_features(ws, a, features));
    NO_ALLOC(sim_hog(ws, a, b, &v));
    NO_ALLOC(sim_hog(ws, a, a, &v2));
    NO_ALLOC(stats_summary(sw, x, NS, &sum));
    NO_ALLOC(stats_bootstrap_ci(sw, x, NS, 3, 1, 2, 3, 0.95, &lo, &hi));
    NO_ALLOC(stats_wilcoxon(sw, x, y, 30, STATS_NAN_PROPAGATE, &wil)); /* exact */
    NO_ALLOC(stats_wilcoxon(sw, x, y, NS, STATS_NAN_PROPAGATE, &wil)); /* approximation */
    TH_EQ_INT(n_calls, 26);
    /* the calls did their work */
    TH_CHECK(r.auprc > 0.1 && r.auprc < 1 && !isnan(r.pointing) && !isnan(r.soft_dice_out),
             "loc_all gave auprc %g pointing %g", r.auprc, r.pointing);
    TH_CHECK(v > -1 && v < 1 && fabs(v2 - 1) < 1e-12, "HOG similarity %g, with itself %g", v, v2);
    TH_CHECK(lo < sum.mean && sum.mean < hi, "bootstrap interval");

    free(features);
    stats_ws_destroy(sw);
    metrics_ws_destroy(ws);
    free(a);
    free(b);
    free(mask);
#endif
}

int main(void)
{
    TH_RUN(test_hooks_count);
    TH_RUN(test_per_map_metrics_do_not_allocate);
    return th_report();
}
