/*
 * stats.c - summaries, bootstrap confidence intervals and the Wilcoxon signed-rank
 * test (module common/metrics, see stats.h; docs/methods.md section 6).
 */
#include "metrics/stats.h"
#include "metrics/metrics_internal.h"

#include "rng.h"
#include "sc.h"

#include <math.h>
#include <string.h>

/* Wilcoxon's exact method is used up to this many pairs (scipy 1.10, method 'auto'). */
#define STATS_EXACT_MAX 50
#define STATS_PMF_LEN (STATS_EXACT_MAX * (STATS_EXACT_MAX + 1) / 2 + 1)

struct stats_ws {
    size_t n_max;
    int n_resamples;
    double *values;            /* [n_max] non-NaN values or differences */
    double *ranks;             /* [n_max] */
    metrics_pair_t *pairs, *pairs_tmp; /* [max(n_max, n_resamples)] */
    double *means;             /* [n_resamples] */
    double pmf[2][STATS_PMF_LEN];
};

stats_ws_t *stats_ws_create(size_t n_max, int n_resamples)
{
    int rc = 0;
    stats_ws_t *ws = NULL;
    CHECK(n_max > 0 && n_max < (size_t)INT32_MAX && n_resamples > 0, SC_ERR_ARG,
          "statistics workspace: need 0 < n_max < 2^31 and n_resamples > 0 (got %zu, %d)", n_max,
          n_resamples);
    ws = sc_calloc(1, sizeof *ws);
    CHECK_ALLOC(ws);
    ws->n_max = n_max;
    ws->n_resamples = n_resamples;
    ws->values = sc_calloc(n_max, sizeof(double));
    ws->ranks = sc_calloc(n_max, sizeof(double));
    size_t n_sort = n_max > (size_t)n_resamples ? n_max : (size_t)n_resamples;
    ws->pairs = sc_calloc(n_sort, sizeof(metrics_pair_t));
    ws->pairs_tmp = sc_calloc(n_sort, sizeof(metrics_pair_t));
    ws->means = sc_calloc((size_t)n_resamples, sizeof(double));
    CHECK_ALLOC(ws->values);
    CHECK_ALLOC(ws->ranks);
    CHECK_ALLOC(ws->pairs);
    CHECK_ALLOC(ws->pairs_tmp);
    CHECK_ALLOC(ws->means);
    return ws;
cleanup:
    (void)rc;
    stats_ws_destroy(ws);
    return NULL;
}

void stats_ws_destroy(stats_ws_t *ws)
{
    if (!ws)
        return;
    sc_free(ws->values);
    sc_free(ws->ranks);
    sc_free(ws->pairs);
    sc_free(ws->pairs_tmp);
    sc_free(ws->means);
    sc_free(ws);
}

/* Sort v[n] ascending in place with the workspace's pair buffers. */
static void sort_values(stats_ws_t *ws, double *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ws->pairs[i].key = v[i];
        ws->pairs[i].idx = (int32_t)i;
    }
    metrics_sort_pairs(ws->pairs, ws->pairs_tmp, n);
    for (size_t i = 0; i < n; i++)
        v[i] = ws->pairs[i].key;
}

double stats_quantile(const double *sorted, size_t n, double q)
{
    if (n == 0 || isnan(q))
        return NAN;
    /* numpy 1.24 _quantile, method 'linear': virtual index (n-1) q, then _lerp */
    double virtual_index = (double)(n - 1) * q;
    if (virtual_index >= (double)(n - 1))
        return sorted[n - 1];
    if (virtual_index <= 0.0)
        return sorted[0];
    double below = floor(virtual_index);
    size_t i = (size_t)below;
    double gamma = virtual_index - below;
    double a = sorted[i], b = sorted[i + 1];
    double diff = b - a;
    return gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma;
}

/* Copy the non-NaN values of x into ws->values; returns their count. */
static size_t compact(stats_ws_t *ws, const double *x, size_t n)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i]))
            ws->values[m++] = x[i];
    return m;
}

int stats_summary(stats_ws_t *ws, const double *x, size_t n, stats_summary_t *out)
{
    if (!ws || (!x && n) || !out || n > ws->n_max) {
        SC_ERROR("stats_summary: NULL argument or %zu values above the workspace's %zu", n,
                 ws ? ws->n_max : (size_t)0);
        return SC_ERR_ARG;
    }
    size_t m = compact(ws, x, n);
    out->n = m;
    out->n_nan = n - m;
    if (m == 0) {
        out->mean = out->sd = out->min = out->q1 = out->median = out->q3 = out->max = NAN;
        return SC_ERR_UNDEFINED;
    }
    metrics_ksum_t s = {0, 0};
    for (size_t i = 0; i < m; i++)
        metrics_ksum_add(&s, ws->values[i]);
    out->mean = metrics_ksum_value(&s) / (double)m;
    metrics_ksum_t ss = {0, 0};
    for (size_t i = 0; i < m; i++) {
        double d = ws->values[i] - out->mean;
        metrics_ksum_add(&ss, d * d);
    }
    out->sd = m > 1 ? sqrt(metrics_ksum_value(&ss) / (double)(m - 1)) : NAN;
    sort_values(ws, ws->values, m);
    const double *v = ws->values;
    out->min = v[0];
    out->max = v[m - 1];
    out->q1 = stats_quantile(v, m, 0.25);
    out->q3 = stats_quantile(v, m, 0.75);
    /* np.median: the middle value, or the mean of the two middle values */
    out->median = m % 2 ? v[m / 2] : (v[m / 2 - 1] + v[m / 2]) / 2.0;
    return 0;
}

int stats_bootstrap_means(stats_ws_t *ws, const double *x, size_t n, uint64_t seed, uint32_t a,
                          uint32_t b, uint32_t c, double *means)
{
    if (!ws || (!x && n) || !means || n > ws->n_max) {
        SC_ERROR("stats_bootstrap_means: NULL argument or %zu values above the workspace's %zu",
                 n, ws ? ws->n_max : (size_t)0);
        return SC_ERR_ARG;
    }
    size_t m = compact(ws, x, n);
    if (m == 0) {
        for (int r = 0; r < ws->n_resamples; r++)
            means[r] = NAN;
        return SC_ERR_UNDEFINED;
    }
    rng_stream_t stream;
    rng_stream_init(&stream, rng_key(seed, "bootstrap"), a, b, c);
    for (int r = 0; r < ws->n_resamples; r++) {
        metrics_ksum_t s = {0, 0};
        for (size_t i = 0; i < m; i++)
            metrics_ksum_add(&s, ws->values[rng_stream_below(&stream, (uint32_t)m)]);
        means[r] = metrics_ksum_value(&s) / (double)m;
    }
    return 0;
}

int stats_bootstrap_ci(stats_ws_t *ws, const double *x, size_t n, uint64_t seed, uint32_t a,
                       uint32_t b, uint32_t c, double level, double *lo, double *hi)
{
    if (!lo || !hi || !(level > 0.0 && level < 1.0)) {
        SC_ERROR("stats_bootstrap_ci: NULL output or level %g outside (0, 1)", level);
        return SC_ERR_ARG;
    }
    *lo = *hi = NAN;
    int rc = stats_bootstrap_means(ws, x, n, seed, a, b, c, ws ? ws->means : NULL);
    if (rc)
        return rc;
    size_t r = (size_t)ws->n_resamples;
    sort_values(ws, ws->means, r);
    double alpha = (1.0 - level) / 2.0;
    *lo = stats_quantile(ws->means, r, alpha);
    *hi = stats_quantile(ws->means, r, 1.0 - alpha);
    return 0;
}

/* scipy.special.ndtr (cephes): the standard normal CDF. */
static double ndtr(double a)
{
    double x = a * M_SQRT1_2, z = fabs(x);
    if (z < M_SQRT1_2)
        return 0.5 + 0.5 * erf(x);
    double y = 0.5 * erfc(z);
    return x > 0 ? 1.0 - y : y;
}

/* scipy.stats._hypotests._get_wilcoxon_distr: pmf of R+ for `count` pairs, into
 * one of the two workspace rows; returns it (length count (count+1)/2 + 1). */
static const double *wilcoxon_pmf(stats_ws_t *ws, int count)
{
    double *cur = ws->pmf[0], *next = ws->pmf[1];
    cur[0] = 1.0;
    size_t m = 1;
    for (int k = 1; k <= count; k++) {
        size_t len = (size_t)k * (k + 1) / 2 + 1;
        for (size_t i = 0; i < len; i++)
            next[i] = 0.0;
        for (size_t i = 0; i < m; i++)
            next[i] = cur[i] * 0.5;
        for (size_t i = 0; i < m; i++)
            next[len - m + i] += cur[i] * 0.5;
        double *t = cur;
        cur = next;
        next = t;
        m = len;
    }
    return cur;
}

static int wilcoxon_undefined(stats_wilcoxon_t *out)
{
    out->statistic = out->pvalue = out->z = NAN;
    return SC_ERR_UNDEFINED;
}

int stats_wilcoxon(stats_ws_t *ws, const double *x, const double *y, size_t n,
                   stats_nan_policy nan_policy, stats_wilcoxon_t *out)
{
    if (!ws || (!x && n) || (!y && n) || !out || n > ws->n_max ||
        (nan_policy != STATS_NAN_PROPAGATE && nan_policy != STATS_NAN_OMIT)) {
        SC_ERROR("stats_wilcoxon: NULL argument, %zu pairs above the workspace's %zu or a bad "
                 "NaN policy", n, ws ? ws->n_max : (size_t)0);
        return SC_ERR_ARG;
    }
    memset(out, 0, sizeof *out);
    out->z = NAN;
    double *d = ws->values;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i]) || isnan(y[i])) {
            if (nan_policy == STATS_NAN_PROPAGATE)
                return wilcoxon_undefined(out);
            continue;
        }
        d[m++] = x[i] - y[i];
    }
    out->n_pairs = m;
    if (m == 0)
        return wilcoxon_undefined(out);

    int exact = m <= STATS_EXACT_MAX;
    size_t n_zero = 0;
    for (size_t i = 0; i < m; i++)
        n_zero += d[i] == 0.0;
    if (n_zero > 0)
        exact = 0;
    if (!exact) {
        if (n_zero == m)
            return wilcoxon_undefined(out); /* scipy raises: all differences are zero */
        size_t k = 0;                       /* zero_method 'wilcox': drop the zeros */
        for (size_t i = 0; i < m; i++)
            if (d[i] != 0.0)
                d[k++] = d[i];
        m = k;
    }
    out->exact = exact;

    /* average ranks of |d| */
    for (size_t i = 0; i < m; i++) {
        ws->pairs[i].key = fabs(d[i]);
        ws->pairs[i].idx = (int32_t)i;
    }
    metrics_sort_pairs(ws->pairs, ws->pairs_tmp, m);
    metrics_rank_sorted(ws->pairs, m, ws->ranks);
    double r_plus = 0.0, r_minus = 0.0; /* sums of half-integers: exact */
    for (size_t i = 0; i < m; i++) {
        if (d[i] > 0)
            r_plus += ws->ranks[i];
        else if (d[i] < 0)
            r_minus += ws->ranks[i];
    }
    double t = r_plus < r_minus ? r_plus : r_minus;
    out->statistic = t;

    if (!exact) {
        double count = (double)m;
        double mn = count * (count + 1.) * 0.25;
        double se = count * (count + 1.) * (2. * count + 1.);
        /* tie correction: groups of equal |d| share one rank value (find_repeats) */
        int64_t ties = 0;
        size_t i = 0;
        while (i < m) {
            size_t j = i + 1;
            while (j < m && ws->pairs[j].key == ws->pairs[i].key)
                j++;
            int64_t g = (int64_t)(j - i);
            if (g > 1)
                ties += g * (g * g - 1);
            i = j;
        }
        if (ties)
            se -= 0.5 * (double)ties;
        se = sqrt(se / 24);
        double z = (t - mn - 0) / se;
        out->z = z;
        out->pvalue = 2. * ndtr(-fabs(z));
        return 0;
    }

    const double *pmf = wilcoxon_pmf(ws, (int)m);
    size_t len = m * (m + 1) / 2 + 1;
    size_t rp = (size_t)r_plus; /* int(r_plus), as scipy: truncates a half rank */
    double p;
    if (rp == (len - 1) / 2) {
        p = 1.0;
    } else {
        double p_less = metrics_pairwise_sum(pmf, rp + 1);
        double p_greater = metrics_pairwise_sum(pmf + rp, len - rp);
        p = 2 * (p_greater < p_less ? p_greater : p_less);
    }
    out->pvalue = p < 0 ? 0 : (p > 1 ? 1 : p);
    return 0;
}
