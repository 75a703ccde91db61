/*
 * metrics.c - the metrics workspace, undefined-result counts, sorting and ranking
 * helpers shared by the per-map metrics (module common/metrics, see metrics.h).
 */
#include "metrics/metrics_internal.h"
#include "metrics/hog.h"

#include "sc.h"

#include <math.h>
#include <string.h>

void hog_params_default(hog_params_t *params)
{
    params->orientations = 9;
    params->cell_rows = 8;
    params->cell_cols = 8;
    params->block_rows = 3;
    params->block_cols = 3;
    params->block_norm = HOG_NORM_L2_HYS;
}

metrics_ws_t *metrics_ws_create(int h, int w) { return metrics_ws_create_hog(h, w, NULL); }

metrics_ws_t *metrics_ws_create_hog(int h, int w, const hog_params_t *hog)
{
    int rc = 0;
    metrics_ws_t *ws = NULL;
    hog_params_t params;
    if (hog)
        params = *hog;
    else
        hog_params_default(&params);

    CHECK(h > 0 && w > 0 && (size_t)h * (size_t)w < (size_t)INT32_MAX, SC_ERR_ARG,
          "metrics workspace: map size %d x %d is not usable", h, w);
    CHECK(params.orientations > 0 && params.orientations <= METRICS_HOG_MAX_ORIENT &&
              params.cell_rows > 0 && params.cell_cols > 0 && params.block_rows > 0 &&
              params.block_cols > 0 && params.block_norm >= HOG_NORM_L2_HYS &&
              params.block_norm <= HOG_NORM_L1_SQRT,
          SC_ERR_ARG,
          "metrics workspace: bad HOG parameters (orientations %d in 1..%d, cells %dx%d, "
          "blocks %dx%d, norm %d)",
          params.orientations, METRICS_HOG_MAX_ORIENT, params.cell_rows, params.cell_cols,
          params.block_rows, params.block_cols, (int)params.block_norm);

    ws = sc_calloc(1, sizeof *ws);
    CHECK_ALLOC(ws);
    ws->h = h;
    ws->w = w;
    ws->n = (size_t)h * (size_t)w;
    ws->policy = METRICS_CONSTANT_UNDEFINED;
    ws->hog = params;
    ws->hog_cells_r = h / params.cell_rows;
    ws->hog_cells_c = w / params.cell_cols;
    ws->hog_nfeat = hog_feature_count(h, w, &params);
    ws->cap = ws->n > ws->hog_nfeat ? ws->n : ws->hog_nfeat;

    size_t side = (size_t)(h > w ? h : w);
    ws->pairs = sc_calloc(ws->cap, sizeof *ws->pairs);
    ws->pairs_tmp = sc_calloc(ws->cap, sizeof *ws->pairs_tmp);
    ws->rank_a = sc_calloc(ws->cap, sizeof(double));
    ws->rank_b = sc_calloc(ws->cap, sizeof(double));
    CHECK_ALLOC(ws->pairs);
    CHECK_ALLOC(ws->pairs_tmp);
    CHECK_ALLOC(ws->rank_a);
    CHECK_ALLOC(ws->rank_b);
    for (int i = 0; i < 6; i++) {
        ws->plane[i] = sc_calloc(ws->n, sizeof(double));
        CHECK_ALLOC(ws->plane[i]);
    }
    ws->line = sc_calloc(side + 2 * METRICS_MAX_RADIUS, sizeof(double));
    CHECK_ALLOC(ws->line);
    ws->dist2 = sc_calloc(ws->n, sizeof(double));
    ws->edt_f = sc_calloc(side + 1, sizeof(double));
    ws->edt_d = sc_calloc(side + 1, sizeof(double));
    ws->edt_z = sc_calloc(side + 1, sizeof(double));
    ws->edt_v = sc_calloc(side + 1, sizeof(int));
    CHECK_ALLOC(ws->dist2);
    CHECK_ALLOC(ws->edt_f);
    CHECK_ALLOC(ws->edt_d);
    CHECK_ALLOC(ws->edt_z);
    CHECK_ALLOC(ws->edt_v);
    ws->hog_grow = sc_calloc(ws->n, sizeof(double));
    ws->hog_gcol = sc_calloc(ws->n, sizeof(double));
    CHECK_ALLOC(ws->hog_grow);
    CHECK_ALLOC(ws->hog_gcol);
    if (ws->hog_nfeat > 0) {
        size_t cells = (size_t)ws->hog_cells_r * (size_t)ws->hog_cells_c * (size_t)params.orientations;
        ws->hog_hist = sc_calloc(cells, sizeof(double));
        ws->hog_fa = sc_calloc(ws->hog_nfeat, sizeof(double));
        ws->hog_fb = sc_calloc(ws->hog_nfeat, sizeof(double));
        CHECK_ALLOC(ws->hog_hist);
        CHECK_ALLOC(ws->hog_fa);
        CHECK_ALLOC(ws->hog_fb);
    }
    return ws;

cleanup:
    (void)rc;
    metrics_ws_destroy(ws);
    return NULL;
}

void metrics_ws_destroy(metrics_ws_t *ws)
{
    if (!ws)
        return;
    sc_free(ws->pairs);
    sc_free(ws->pairs_tmp);
    sc_free(ws->rank_a);
    sc_free(ws->rank_b);
    for (int i = 0; i < 6; i++)
        sc_free(ws->plane[i]);
    sc_free(ws->line);
    sc_free(ws->dist2);
    sc_free(ws->edt_f);
    sc_free(ws->edt_d);
    sc_free(ws->edt_z);
    sc_free(ws->edt_v);
    sc_free(ws->hog_grow);
    sc_free(ws->hog_gcol);
    sc_free(ws->hog_hist);
    sc_free(ws->hog_fa);
    sc_free(ws->hog_fb);
    sc_free(ws);
}

int metrics_ws_h(const metrics_ws_t *ws) { return ws->h; }
int metrics_ws_w(const metrics_ws_t *ws) { return ws->w; }
size_t metrics_ws_capacity(const metrics_ws_t *ws) { return ws->cap; }

void metrics_ws_set_constant_policy(metrics_ws_t *ws, metrics_constant_policy policy)
{
    ws->policy = policy;
}

metrics_constant_policy metrics_ws_constant_policy(const metrics_ws_t *ws) { return ws->policy; }

void metrics_ws_counts(const metrics_ws_t *ws, metrics_counts_t *out) { *out = ws->counts; }

long metrics_ws_undefined_total(const metrics_ws_t *ws)
{
    const metrics_counts_t *c = &ws->counts;
    return c->nonfinite + c->constant_map + c->empty_mask + c->one_class + c->negative_map +
           c->degenerate;
}

void metrics_ws_reset_counts(metrics_ws_t *ws) { memset(&ws->counts, 0, sizeof ws->counts); }

int metrics_undefined(long *counter, double *out)
{
    if (out)
        *out = NAN;
    (*counter)++;
    return SC_ERR_UNDEFINED;
}

int metrics_scan_map(const float *map, size_t n, double *min, double *max)
{
    float lo = INFINITY, hi = -INFINITY;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        float v = map[i];
        bad |= !isfinite(v);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    if (bad)
        return 1;
    if (min)
        *min = lo;
    if (max)
        *max = hi;
    return 0;
}

static void insertion_sort(metrics_pair_t *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        metrics_pair_t v = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1].key > v.key) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

/* Order-preserving unsigned image of a double (not NaN): flip all bits of
 * negatives, set the sign bit of positives. -0.0 and +0.0 become neighbours,
 * and callers compare the double keys, so they still group as ties. */
static inline uint64_t radix_key(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return (u >> 63) ? ~u : u | 0x8000000000000000ULL;
}

void metrics_sort_pairs(metrics_pair_t *pairs, metrics_pair_t *tmp, size_t n)
{
    if (n < 64) {
        insertion_sort(pairs, n);
        return;
    }
    /* LSD radix sort, 8 passes of 8 bits, stable. One counting pass builds all
     * eight histograms; a byte that is the same in every key is skipped (maps
     * stored as float leave the low 29 mantissa bits zero: 3 passes saved). */
    size_t count[8][256];
    memset(count, 0, sizeof count);
    for (size_t i = 0; i < n; i++) {
        uint64_t k = radix_key(pairs[i].key);
        for (int b = 0; b < 8; b++)
            count[b][(k >> (8 * b)) & 0xFF]++;
    }
    metrics_pair_t *src = pairs, *dst = tmp;
    for (int b = 0; b < 8; b++) {
        uint64_t first = (radix_key(pairs[0].key) >> (8 * b)) & 0xFF;
        if (count[b][first] == n)
            continue;
        size_t offset[256], sum = 0;
        for (int v = 0; v < 256; v++) {
            offset[v] = sum;
            sum += count[b][v];
        }
        for (size_t i = 0; i < n; i++)
            dst[offset[(radix_key(src[i].key) >> (8 * b)) & 0xFF]++] = src[i];
        metrics_pair_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != pairs)
        memcpy(pairs, src, n * sizeof *pairs);
}

void metrics_rank_sorted(const metrics_pair_t *sorted, size_t n, double *rank)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i + 1;
        while (j < n && sorted[j].key == sorted[i].key)
            j++;
        /* positions i..j-1 (0-based) share the mean of ranks i+1..j */
        double r = 0.5 * ((double)i + (double)j + 1.0);
        for (size_t k = i; k < j; k++)
            rank[sorted[k].idx] = r;
        i = j;
    }
}

double metrics_pearson_d(const double *x, const double *y, size_t n)
{
    if (n < 2)
        return NAN;
    metrics_ksum_t sx = {0, 0}, sy = {0, 0};
    for (size_t i = 0; i < n; i++) {
        metrics_ksum_add(&sx, x[i]);
        metrics_ksum_add(&sy, y[i]);
    }
    double mx = metrics_ksum_value(&sx) / (double)n, my = metrics_ksum_value(&sy) / (double)n;
    metrics_ksum_t sxx = {0, 0}, syy = {0, 0}, sxy = {0, 0};
    int x_const = 1, y_const = 1;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        metrics_ksum_add(&sxx, dx * dx);
        metrics_ksum_add(&syy, dy * dy);
        metrics_ksum_add(&sxy, dx * dy);
        x_const &= x[i] == x[0];
        y_const &= y[i] == y[0];
    }
    if (x_const || y_const)
        return NAN;
    double r = metrics_ksum_value(&sxy) /
               (sqrt(metrics_ksum_value(&sxx)) * sqrt(metrics_ksum_value(&syy)));
    return r > 1.0 ? 1.0 : (r < -1.0 ? -1.0 : r);
}

double metrics_pairwise_sum(const double *a, size_t n)
{
    if (n < 8) {
        double res = 0.;
        for (size_t i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        size_t i;
        for (i = 0; i < 8; i++)
            r[i] = a[i];
        for (i = 8; i < n - (n % 8); i += 8)
            for (size_t k = 0; k < 8; k++)
                r[k] += a[i + k];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return metrics_pairwise_sum(a, n2) + metrics_pairwise_sum(a + n2, n - n2);
}
