/*
 * stats.h - summary statistics, bootstrap confidence intervals and the Wilcoxon
 * signed-rank test over per-image metric values (module common/metrics).
 *
 * docs/methods.md section 6 ("Statistics that peers offer"). The inputs are the
 * metric values of one method x variant over the images, with NaN where a
 * metric was undefined: summaries skip NaN and report how many they skipped.
 * The root rank calls these while aggregating; a stats_ws_t sized once holds
 * every buffer, so a call allocates nothing.
 *
 * Agreement with the reference libraries (tests/unit/test_metrics.c against
 * tests/ref/metrics_ref.py):
 *   stats_summary   mean, sd (ddof 1), median, quartiles == numpy nanmean, nanstd,
 *                   nanmedian, nanpercentile (method 'linear': rank q (n-1))
 *   stats_quantile  == np.percentile(x, 100 q) on sorted finite values
 *   stats_wilcoxon  == scipy.stats.wilcoxon(x, y) with scipy 1.10's defaults
 *                   (zero_method 'wilcox', correction False, two-sided,
 *                   method 'auto'): the exact null distribution when there are
 *                   at most 50 pairs and no zero difference, else the normal
 *                   approximation without zero differences and with the tie
 *                   correction of the variance. As in scipy 1.10, ties among
 *                   nonzero differences do not leave the exact method; R+ is
 *                   then truncated to an integer for the p-value.
 * The bootstrap is salcheck's own (Philox draws; no library shares them): the
 * percentile interval of the mean over n_resamples resamples with replacement.
 */
#ifndef STATS_H
#define STATS_H

#include <stddef.h>
#include <stdint.h>

typedef struct stats_ws stats_ws_t;

/* Workspace for samples of up to n_max values and bootstraps of n_resamples
 * (1000 in the paper's convention). NULL on a bad size or out of memory.
 * The caller owns it; free with stats_ws_destroy. */
stats_ws_t *stats_ws_create(size_t n_max, int n_resamples);
void stats_ws_destroy(stats_ws_t *ws);

typedef struct stats_summary {
    size_t n;      /* values used (not NaN) */
    size_t n_nan;  /* NaN values skipped: undefined metrics */
    double mean, sd; /* sd with ddof = 1 (NaN for n < 2) */
    double min, q1, median, q3, max;
} stats_summary_t;

/* Summary of x[n] (n <= n_max). All fields NaN and SC_ERR_UNDEFINED when no
 * value is left; SC_ERR_ARG for bad arguments. */
int stats_summary(stats_ws_t *ws, const double *x, size_t n, stats_summary_t *out);

/* Quantile q in [0, 1] of an ascending array without NaN (numpy 'linear'). */
double stats_quantile(const double *sorted, size_t n, double q);

/*
 * The n_resamples bootstrap means of the non-NaN values of x[n], into
 * means[n_resamples] (caller-owned). Resample r draws its indices from the
 * Philox stream keyed by (seed, "bootstrap") with counter words (a, b, c), e.g.
 * (method, variant, metric): the same on any rank and in any order.
 * Returns 0, SC_ERR_UNDEFINED (means NaN) without values, SC_ERR_ARG.
 */
int stats_bootstrap_means(stats_ws_t *ws, const double *x, size_t n, uint64_t seed, uint32_t a,
                          uint32_t b, uint32_t c, double *means);

/* Percentile bootstrap confidence interval of the mean at `level` (0.95):
 * the (1-level)/2 and (1+level)/2 quantiles of the bootstrap means. */
int stats_bootstrap_ci(stats_ws_t *ws, const double *x, size_t n, uint64_t seed, uint32_t a,
                       uint32_t b, uint32_t c, double level, double *lo, double *hi);

typedef enum stats_nan_policy {
    STATS_NAN_PROPAGATE = 0, /* any NaN makes the result NaN (scipy's default) */
    STATS_NAN_OMIT = 1       /* drop the pairs with a NaN (scipy nan_policy='omit') */
} stats_nan_policy;

typedef struct stats_wilcoxon {
    double statistic; /* min(R+, R-) */
    double pvalue;    /* two-sided */
    double z;         /* the normal approximation's z, NaN for the exact method */
    size_t n_pairs;   /* pairs used, zero differences included */
    int exact;        /* 1: exact distribution, 0: normal approximation */
} stats_wilcoxon_t;

/* Wilcoxon signed-rank test of the paired samples x[n], y[n] (n <= n_max).
 * Undefined (NaN, SC_ERR_UNDEFINED): no pair left, a NaN under
 * STATS_NAN_PROPAGATE, or all differences zero. */
int stats_wilcoxon(stats_ws_t *ws, const double *x, const double *y, size_t n,
                   stats_nan_policy nan_policy, stats_wilcoxon_t *out);

#endif /* STATS_H */
