/*
 * complexity.c - sparseness, complexity and eMPRT's discrete entropy of one
 * map (module common/metrics, see complexity.h; definitions in
 * docs/methods.md, "Checks beyond the paper").
 */
#include "metrics/complexity.h"
#include "metrics/metrics_internal.h"

#include "sc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const rule_names[CX_BINS_RULE_COUNT] = {"fixed", "freedman-diaconis", "scott",
                                                            "sqrt", "sturges", "rice"};

int cx_bin_rule_parse(const char *name)
{
    for (int r = 1; r < CX_BINS_RULE_COUNT; r++)
        if (!strcmp(name, rule_names[r]))
            return r;
    if (!strcmp(name, "fd"))
        return CX_BINS_FREEDMAN;
    return -1;
}

const char *cx_bin_rule_name(cx_bin_rule_t rule)
{
    return rule >= 0 && rule < CX_BINS_RULE_COUNT ? rule_names[rule] : "?";
}

int cx_sparseness(metrics_ws_t *ws, const float *map, size_t n, double *out)
{
    if (n == 0 || n > ws->cap)
        return SC_ERR_ARG;
    if (metrics_scan_map(map, n, NULL, NULL))
        return metrics_undefined(&ws->counts.nonfinite, out);
    for (size_t i = 0; i < n; i++) {
        ws->pairs[i].key = fabs((double)map[i]) + 1e-7;
        ws->pairs[i].idx = (int32_t)i;
    }
    metrics_sort_pairs(ws->pairs, ws->pairs_tmp, n);
    /* sum_i (2i - n - 1) a_(i): accumulated as two compensated sums */
    metrics_ksum_t num = {0, 0}, den = {0, 0};
    const double nn = (double)n;
    for (size_t i = 0; i < n; i++) {
        double a = ws->pairs[i].key;
        metrics_ksum_add(&num, (2.0 * (double)(i + 1) - nn - 1.0) * a);
        metrics_ksum_add(&den, a);
    }
    *out = metrics_ksum_value(&num) / (nn * metrics_ksum_value(&den));
    return 0;
}

int cx_complexity(metrics_ws_t *ws, const float *map, size_t n, double *out)
{
    if (n == 0)
        return SC_ERR_ARG;
    if (metrics_scan_map(map, n, NULL, NULL))
        return metrics_undefined(&ws->counts.nonfinite, out);
    metrics_ksum_t total = {0, 0};
    for (size_t i = 0; i < n; i++)
        metrics_ksum_add(&total, fabs((double)map[i]));
    double s = metrics_ksum_value(&total);
    if (!(s > 0))
        return metrics_undefined(&ws->counts.constant_map, out);
    metrics_ksum_t h = {0, 0};
    for (size_t i = 0; i < n; i++) {
        double p = fabs((double)map[i]) / s;
        if (p > 0)
            metrics_ksum_add(&h, -p * log(p));
    }
    *out = metrics_ksum_value(&h);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy.percentile (linear): the value at rank q (N - 1) of sorted v. */
static double percentile_sorted(const double *v, size_t count, double q)
{
    double pos = q * (double)(count - 1);
    size_t lo = (size_t)floor(pos);
    size_t hi = lo + 1 < count ? lo + 1 : lo;
    double frac = pos - (double)lo;
    return v[lo] + frac * (v[hi] - v[lo]);
}

int cx_bin_count(cx_bin_rule_t rule, const float *values, size_t count, size_t n_per_map,
                 double *scratch)
{
    if (count == 0 || n_per_map == 0)
        return SC_ERR_ARG;
    double lo = INFINITY, hi = -INFINITY;
    metrics_ksum_t sum = {0, 0};
    for (size_t i = 0; i < count; i++) {
        double v = values[i];
        if (!isfinite(v))
            return SC_ERR_ARG;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        metrics_ksum_add(&sum, v);
    }
    const double n = (double)n_per_map, cbrt_n = pow(n, 1.0 / 3.0);
    double bins = 0.0;
    switch (rule) {
    case CX_BINS_FREEDMAN: {
        for (size_t i = 0; i < count; i++)
            scratch[i] = values[i];
        qsort(scratch, count, sizeof(double), cmp_double);
        double iqr = percentile_sorted(scratch, count, 0.75) - percentile_sorted(scratch, count, 0.25);
        double width = fmax(2.0 * iqr / cbrt_n, 1e-6);
        bins = (hi - lo) / width;
        break;
    }
    case CX_BINS_SCOTT: {
        double mean = metrics_ksum_value(&sum) / (double)count;
        metrics_ksum_t ss = {0, 0};
        for (size_t i = 0; i < count; i++) {
            double d = values[i] - mean;
            metrics_ksum_add(&ss, d * d);
        }
        double width = 3.5 * sqrt(metrics_ksum_value(&ss) / (double)count) / cbrt_n;
        bins = width > 0 ? (hi - lo) / width : 0.0; /* constant values: the minimum */
        break;
    }
    case CX_BINS_SQRT: bins = sqrt(n); break;
    case CX_BINS_STURGES: bins = log2(n) + 1.0; break;
    case CX_BINS_RICE: bins = 2.0 * cbrt_n; break;
    default: return SC_ERR_ARG;
    }
    double truncated = floor(bins); /* int() of a non-negative number */
    if (truncated < CX_BINS_MIN)
        return CX_BINS_MIN;
    if (truncated > CX_BINS_MAX)
        return CX_BINS_MAX;
    return (int)truncated;
}

int cx_discrete_entropy(metrics_ws_t *ws, const float *map, size_t n, int bins, long *counts,
                        double *out)
{
    double lo, hi;
    if (n == 0 || bins < 1)
        return SC_ERR_ARG;
    if (metrics_scan_map(map, n, &lo, &hi))
        return metrics_undefined(&ws->counts.nonfinite, out);
    if (lo == hi) { /* numpy widens the range by 0.5: one bin holds every value */
        *out = 0.0;
        return 0;
    }
    memset(counts, 0, sizeof(long) * (size_t)bins);
    /* numpy.histogram with equal bins: edges linspace(lo, hi, bins + 1) (the
     * last one exactly hi); a value's bin from the scaled offset, then moved
     * by one where rounding put it across an edge; hi goes to the last bin. */
    const double step = (hi - lo) / bins;
    for (size_t i = 0; i < n; i++) {
        double v = map[i];
        long b = (long)((v - lo) / (hi - lo) * bins);
        if (b >= bins)
            b = bins - 1;
        double e0 = lo + (double)b * step;
        double e1 = b + 1 == bins ? hi : lo + (double)(b + 1) * step;
        if (v < e0)
            b--;
        else if (v >= e1 && b != bins - 1)
            b++;
        counts[b]++;
    }
    metrics_ksum_t h = {0, 0};
    for (int b = 0; b < bins; b++)
        if (counts[b] > 0) {
            double q = (double)counts[b] / (double)n;
            metrics_ksum_add(&h, -q * log(q));
        }
    *out = metrics_ksum_value(&h);
    return 0;
}

int cx_emprt(metrics_ws_t *ws, const float *randomized, const float *original, size_t n, int bins,
             long *counts, double *out)
{
    double h_rand, h_orig;
    int rc = cx_discrete_entropy(ws, original, n, bins, counts, &h_orig);
    if (rc < 0) {
        *out = NAN;
        return rc;
    }
    rc = cx_discrete_entropy(ws, randomized, n, bins, counts, &h_rand);
    if (rc < 0) {
        *out = NAN;
        return rc;
    }
    if (!(h_orig > 0))
        return metrics_undefined(&ws->counts.constant_map, out);
    *out = (h_rand - h_orig) / h_orig;
    return 0;
}
