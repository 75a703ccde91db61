/*
 * complexity.h - map-only checks of one saliency map (module common/metrics,
 * prefix cx_): sparseness (Gini index), complexity (Shannon entropy of the
 * attribution mass) and the discrete histogram entropy that eMPRT compares
 * between the original and the randomized model, with the bin-count rules
 * of the Quantus toolkit (docs/methods.md, "Checks beyond the paper").
 *
 * Maps are float arrays of n values (the stored post-processed maps, so
 * every value is >= 0); sums are in double precision. A map with a NaN or
 * infinite value gives NaN and SC_ERR_UNDEFINED, counted in the workspace
 * like every other undefined metric (metrics.h).
 */
#ifndef COMPLEXITY_H
#define COMPLEXITY_H

#include <stddef.h>

#include "metrics/metrics.h"

/*
 * Sparseness (Chalasani et al. 2020; Quantus Sparseness): the Gini index of
 * |a| + 1e-7 sorted ascending, a_(1) <= ... <= a_(n):
 *   G = sum_i (2i - n - 1) a_(i) / (n sum_i a_(i)),   i = 1..n.
 * The 1e-7 is Quantus's guard against an all-zero map (G = 0 there).
 * 0 for a uniform map, (n-1)/n for a single nonzero pixel. Needs n <=
 * metrics_ws_capacity(ws) (the sort buffer).
 */
int cx_sparseness(metrics_ws_t *ws, const float *map, size_t n, double *out);

/*
 * Complexity (Bhatt et al. 2020; Quantus Complexity): the entropy of the
 * attribution mass, p_i = |a_i| / sum_j |a_j|, H = -sum_i p_i ln p_i
 * (natural log, 0 ln 0 = 0; scipy.stats.entropy). Undefined (NaN) for an
 * all-zero map. ln(n) at most, for a uniform map.
 */
int cx_complexity(metrics_ws_t *ws, const float *map, size_t n, double *out);

/* Bin-count rules for the discrete entropy (Quantus n_bins_func). */
typedef enum cx_bin_rule {
    CX_BINS_FIXED = 0,     /* a given count (Quantus's default when no rule is named: 100) */
    CX_BINS_FREEDMAN,      /* width 2 IQR / n^(1/3) (at least 1e-6), count (max-min)/width */
    CX_BINS_SCOTT,         /* width 3.5 std / n^(1/3), count (max-min)/width */
    CX_BINS_SQRT,          /* sqrt(n) */
    CX_BINS_STURGES,       /* log2(n) + 1 */
    CX_BINS_RICE,          /* 2 n^(1/3) */
    CX_BINS_RULE_COUNT
} cx_bin_rule_t;

/* Names as job files spell them ("fixed" is not a name: a number is); -1 when unknown. */
int cx_bin_rule_parse(const char *name);
const char *cx_bin_rule_name(cx_bin_rule_t rule);

/* Bounds Quantus clamps a rule's count to (EfficientMPRT.find_n_bins). */
#define CX_BINS_MIN 10
#define CX_BINS_MAX 200

/*
 * The bin count a rule gives for `count` values (all maps the rule looks
 * at, pooled), where one map has n_per_map values. Quantus takes n as the
 * number of *dimensions* of one explanation (a_batch[0].ndim, 2 or 3), which
 * makes sqrt, Sturges and Rice always give the minimum of 10; salcheck takes
 * n = the pixels of one map, the rules' published meaning. The count is
 * truncated (int()) and clamped to [CX_BINS_MIN, CX_BINS_MAX], as Quantus
 * does. Percentiles use numpy's linear interpolation; std is the population
 * one (ddof 0). scratch: count doubles the function may overwrite (sorted
 * there for the IQR); values is not modified. Returns the count (>= 10),
 * or SC_ERR_ARG for count == 0 or a non-finite value.
 */
int cx_bin_count(cx_bin_rule_t rule, const float *values, size_t count, size_t n_per_map,
                 double *scratch);

/*
 * Discrete entropy of one map (Quantus discrete_entropy): the histogram of
 * the n values in `bins` equal bins over [min, max] (numpy.histogram; a
 * constant map puts everything into one bin), then the entropy of the bin
 * counts, -sum q_b ln q_b with q_b = count_b / n. 0 for a constant map.
 * counts: the caller's scratch of `bins` longs.
 */
int cx_discrete_entropy(metrics_ws_t *ws, const float *map, size_t n, int bins, long *counts,
                        double *out);

/*
 * eMPRT (Hedström et al. 2023; Quantus EfficientMPRT): the relative rise in
 * discrete entropy from the original model's map to the randomized model's
 * map, (H(randomized) - H(original)) / H(original). Higher is better: a map
 * that becomes noise when the model does. NaN when H(original) = 0.
 */
int cx_emprt(metrics_ws_t *ws, const float *randomized, const float *original, size_t n, int bins,
             long *counts, double *out);

#endif /* COMPLEXITY_H */
