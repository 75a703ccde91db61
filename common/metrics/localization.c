/*
 * localization.c - AUPRC, average precision, ROC-AUC, pointing games, rank-based
 * overlap, Otsu, IoU/Dice and soft Dice of a map against a mask (module
 * common/metrics, see localization.h; definitions in docs/methods.md section 5).
 */
#include "metrics/localization.h"
#include "metrics/metrics_internal.h"

#include "sc.h"

#include <math.h>
#include <string.h>

void loc_opts_default(loc_opts_t *opts)
{
    opts->pointing_tie = LOC_TIE_FIRST;
    opts->pointing_tolerance = 0.0;
    opts->topk_fraction = 0.02;
    opts->threshold = 0.5;
}

/* What one pass over the map and the mask tells. */
typedef struct map_info {
    int nonfinite;    /* some value is NaN or infinite */
    int constant;     /* min == max */
    int negative;     /* some value < 0 */
    double min, max;  /* as float values converted to double */
    double sum;       /* sum of the map */
    double sum_in;    /* sum of the map inside the mask */
    size_t n_pos;     /* mask pixels */
} map_info_t;

static void scan(const metrics_ws_t *ws, const float *map, const uint8_t *mask, map_info_t *mi)
{
    memset(mi, 0, sizeof *mi);
    if (metrics_scan_map(map, ws->n, &mi->min, &mi->max)) {
        mi->nonfinite = 1;
        return;
    }
    mi->constant = mi->min == mi->max;
    mi->negative = mi->min < 0.0;
    metrics_ksum_t all = {0, 0}, in = {0, 0};
    size_t n_pos = 0;
    for (size_t i = 0; i < ws->n; i++) {
        double v = map[i];
        metrics_ksum_add(&all, v);
        if (mask && mask[i]) {
            metrics_ksum_add(&in, v);
            n_pos++;
        }
    }
    mi->sum = metrics_ksum_value(&all);
    mi->sum_in = metrics_ksum_value(&in);
    mi->n_pos = n_pos;
}

/* 0 when the map (and the mask, if need_mask) can be scored; else NaN + count. */
static int gate(metrics_ws_t *ws, const map_info_t *mi, int need_mask, double *out)
{
    if (mi->nonfinite)
        return metrics_undefined(&ws->counts.nonfinite, out);
    if (mi->constant && ws->policy == METRICS_CONSTANT_UNDEFINED)
        return metrics_undefined(&ws->counts.constant_map, out);
    if (need_mask && mi->n_pos == 0)
        return metrics_undefined(&ws->counts.empty_mask, out);
    return 0;
}

static void sort_map(metrics_ws_t *ws, const float *map)
{
    for (size_t i = 0; i < ws->n; i++) {
        ws->pairs[i].key = map[i];
        ws->pairs[i].idx = (int32_t)i;
    }
    metrics_sort_pairs(ws->pairs, ws->pairs_tmp, ws->n);
}

/* Start of the group of equal keys that ends (exclusive) at `end` in the sorted pairs. */
static size_t group_start(const metrics_pair_t *s, size_t end)
{
    size_t g = end - 1;
    double key = s[g].key;
    while (g > 0 && s[g - 1].key == key)
        g--;
    return g;
}

/*
 * PR and ROC areas from the sorted map (docs/methods.md section 5, AUPRC). Walking
 * the distinct scores from the highest down gives sklearn's operating points
 * (_binary_clf_curve): tps/fps after each group of ties, precision tps/(tps+fps),
 * recall tps/P, starting from (R=0, P=1).
 *   AUPRC = sum (R_k - R_{k-1}) (P_k + P_{k-1}) / 2   (np.trapz, sklearn auc)
 *   AP    = sum (R_k - R_{k-1}) P_k                     (average_precision_score)
 *   ROC   = sum (F_k - F_{k-1}) (T_k + T_{k-1}) / 2, done in integers: dropping
 *           collinear points (roc_curve's drop_intermediate) leaves it unchanged.
 * roc is NaN when there is no negative pixel.
 */
static void pr_roc(const metrics_ws_t *ws, const uint8_t *mask, size_t n_pos, double *auprc,
                   double *ap, double *roc)
{
    const metrics_pair_t *s = ws->pairs;
    size_t n = ws->n, n_neg = n - n_pos;
    metrics_ksum_t area = {0, 0}, avg = {0, 0};
    double prev_r = 0.0, prev_p = 1.0;
    int64_t tps = 0, prev_tps = 0, prev_fps = 0, roc2 = 0;
    size_t end = n;
    while (end > 0) {
        size_t g = group_start(s, end);
        for (size_t k = g; k < end; k++)
            tps += mask[s[k].idx] != 0;
        int64_t above = (int64_t)(n - g); /* pixels scored >= this threshold */
        int64_t fps = above - tps;
        double r = (double)tps / (double)n_pos;
        double p = (double)tps / (double)above;
        metrics_ksum_add(&area, (r - prev_r) * (p + prev_p) / 2.0);
        metrics_ksum_add(&avg, (r - prev_r) * p);
        roc2 += (fps - prev_fps) * (tps + prev_tps);
        prev_r = r;
        prev_p = p;
        prev_tps = tps;
        prev_fps = fps;
        end = g;
    }
    if (auprc)
        *auprc = metrics_ksum_value(&area);
    if (ap)
        *ap = metrics_ksum_value(&avg);
    if (roc)
        *roc = n_neg > 0 ? (double)roc2 / (2.0 * (double)n_pos * (double)n_neg) : NAN;
}

/* Share of the k highest pixels inside the mask; the group of ties straddling the
 * k-th position contributes its inside share pro rata (expected value over
 * random tie-breaking). Needs the sorted map. */
static double top_share(const metrics_ws_t *ws, const uint8_t *mask, size_t k)
{
    const metrics_pair_t *s = ws->pairs;
    size_t taken = 0, end = ws->n;
    double hits = 0.0;
    while (taken < k && end > 0) {
        size_t g = group_start(s, end);
        size_t size = end - g, inside = 0;
        for (size_t j = g; j < end; j++)
            inside += mask[s[j].idx] != 0;
        if (taken + size <= k) {
            hits += (double)inside;
            taken += size;
        } else {
            hits += (double)(k - taken) * (double)inside / (double)size;
            taken = k;
        }
        end = g;
    }
    return hits / (double)k;
}

/* Exact squared Euclidean distance transform (Felzenszwalb & Huttenlocher 2012)
 * of one line: d[q] = min_p (q-p)^2 + f[p]. */
static void edt_line(const double *f, int n, double *d, int *v, double *z)
{
    int k = 0;
    v[0] = 0;
    z[0] = -INFINITY;
    z[1] = INFINITY;
    for (int q = 1; q < n; q++) {
        /* f is finite, so the loop stops at k = 0 at the latest (z[0] = -inf) */
        double s = ((f[q] + (double)q * q) - (f[v[k]] + (double)v[k] * v[k])) / (2.0 * (q - v[k]));
        while (s <= z[k]) {
            k--;
            s = ((f[q] + (double)q * q) - (f[v[k]] + (double)v[k] * v[k])) / (2.0 * (q - v[k]));
        }
        k++;
        v[k] = q;
        z[k] = s;
        z[k + 1] = INFINITY;
    }
    k = 0;
    for (int q = 0; q < n; q++) {
        while (z[k + 1] < q)
            k++;
        double dq = q - v[k];
        d[q] = dq * dq + f[v[k]];
    }
}

/* ws->dist2[i] = squared distance from pixel i to the nearest mask pixel
 * (exact integers; the mask must not be empty). */
static void mask_distance(metrics_ws_t *ws, const uint8_t *mask)
{
    const double far = 1e12; /* above any squared distance, exact in double */
    int h = ws->h, w = ws->w;
    for (int x = 0; x < w; x++) {
        for (int y = 0; y < h; y++)
            ws->edt_f[y] = mask[(size_t)y * w + x] ? 0.0 : far;
        edt_line(ws->edt_f, h, ws->edt_d, ws->edt_v, ws->edt_z);
        for (int y = 0; y < h; y++)
            ws->dist2[(size_t)y * w + x] = ws->edt_d[y];
    }
    for (int y = 0; y < h; y++) {
        double *row = ws->dist2 + (size_t)y * w;
        memcpy(ws->edt_f, row, (size_t)w * sizeof(double));
        edt_line(ws->edt_f, w, ws->edt_d, ws->edt_v, ws->edt_z);
        memcpy(row, ws->edt_d, (size_t)w * sizeof(double));
    }
}

/* Is there a mask pixel at distance < tol from pixel i (scanning the disk)? */
static int near_mask(const metrics_ws_t *ws, const uint8_t *mask, size_t i, double tol)
{
    int y0 = (int)(i / (size_t)ws->w), x0 = (int)(i % (size_t)ws->w);
    int r = (int)ceil(tol) - 1;
    double tol2 = tol * tol;
    for (int dy = -r; dy <= r; dy++) {
        int y = y0 + dy;
        if (y < 0 || y >= ws->h)
            continue;
        for (int dx = -r; dx <= r; dx++) {
            int x = x0 + dx;
            if (x < 0 || x >= ws->w || (double)(dy * dy + dx * dx) >= tol2)
                continue;
            if (mask[(size_t)y * ws->w + x])
                return 1;
        }
    }
    return 0;
}

static double pointing(metrics_ws_t *ws, const float *map, const uint8_t *mask, double max,
                       loc_tie_rule tie, double tol)
{
    const float top = (float)max;
    if (tie == LOC_TIE_FIRST) {
        size_t i = 0;
        while (map[i] != top)
            i++;
        return (mask[i] || (tol > 1.0 && near_mask(ws, mask, i, tol))) ? 1.0 : 0.0;
    }
    int use_dist = tol > 1.0;
    if (use_dist)
        mask_distance(ws, mask);
    double tol2 = tol * tol;
    size_t n_max = 0, n_hit = 0;
    for (size_t i = 0; i < ws->n; i++) {
        if (map[i] != top)
            continue;
        n_max++;
        n_hit += mask[i] || (use_dist && ws->dist2[i] < tol2);
    }
    if (tie == LOC_TIE_ANY)
        return n_hit > 0 ? 1.0 : 0.0;
    return (double)n_hit / (double)n_max;
}

/*
 * skimage.filters.threshold_otsu(image, nbins=256) for a float64 image, step by
 * step: the histogram of np.histogram over [min, max] (bin edges from
 * np.linspace, the same index corrections), bin centers, then the between-class
 * variance of every split with numpy's cumulative sums, first maximum.
 */
static double otsu(const float *map, size_t n, double first, double last)
{
    enum { NB = 256 };
    if (first == last)
        return map[0];
    double edges[NB + 1], centers[NB], counts[NB];
    double delta = last - first, step = delta / NB;
    for (int i = 0; i < NB; i++)
        edges[i] = step != 0.0 ? (double)i * step + first : (double)i / NB * delta + first;
    edges[NB] = last;
    double norm = NB / (last - first);
    memset(counts, 0, sizeof counts);
    for (size_t k = 0; k < n; k++) {
        double x = map[k];
        long idx = (long)((x - first) * norm);
        if (idx == NB)
            idx--;
        if (x < edges[idx])
            idx--;
        if (x >= edges[idx + 1] && idx != NB - 1)
            idx++;
        counts[idx] += 1.0;
    }
    for (int i = 0; i < NB; i++)
        centers[i] = (edges[i] + edges[i + 1]) / 2.;
    double weight1[NB], weight2[NB], mean1[NB], mean2[NB];
    double c = 0.0, m = 0.0;
    for (int i = 0; i < NB; i++) {
        c += counts[i];
        m += counts[i] * centers[i];
        weight1[i] = c;
        mean1[i] = m / c;
    }
    c = 0.0;
    m = 0.0;
    for (int i = NB - 1; i >= 0; i--) {
        c += counts[i];
        m += counts[i] * centers[i];
        weight2[i] = c;
        mean2[i] = m / c;
    }
    int best = 0;
    double best_v = -INFINITY;
    for (int i = 0; i < NB - 1; i++) {
        double d = mean1[i] - mean2[i + 1];
        double v = weight1[i] * weight2[i + 1] * (d * d);
        if (v > best_v) {
            best_v = v;
            best = i;
        }
    }
    return centers[best];
}

static void overlap(const metrics_ws_t *ws, const float *map, const uint8_t *mask, size_t n_pos,
                    double threshold, double *iou, double *dice)
{
    size_t inter = 0, fg = 0;
    for (size_t i = 0; i < ws->n; i++) {
        int b = (double)map[i] > threshold;
        fg += b;
        inter += b && mask[i];
    }
    size_t uni = fg + n_pos - inter;
    if (iou)
        *iou = (double)inter / (double)uni;
    if (dice)
        *dice = 2.0 * (double)inter / (double)(fg + n_pos);
}

/* Soft Dice 2 sum(s B) / (sum s + sum B) with B the mask or its complement. */
static double soft_dice(const metrics_ws_t *ws, const map_info_t *mi, int outside)
{
    double sb = outside ? mi->sum - mi->sum_in : mi->sum_in;
    double nb = outside ? (double)(ws->n - mi->n_pos) : (double)mi->n_pos;
    double den = mi->sum + nb;
    return den > 0.0 ? 2.0 * sb / den : NAN;
}

#define CHECK_ARGS(cond)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            SC_ERROR("localization metric: bad argument (%s)", #cond);          \
            if (out)                                                            \
                *out = NAN;                                                     \
            return SC_ERR_ARG;                                                  \
        }                                                                       \
    } while (0)

int loc_auprc(metrics_ws_t *ws, const float *map, const uint8_t *mask, double *out)
{
    CHECK_ARGS(ws && map && mask && out);
    map_info_t mi;
    scan(ws, map, mask, &mi);
    int rc = gate(ws, &mi, 1, out);
    if (rc)
        return rc;
    sort_map(ws, map);
    pr_roc(ws, mask, mi.n_pos, out, NULL, NULL);
    return 0;
}

int loc_average_precision(metrics_ws_t *ws, const float *map, const uint8_t *mask, double *out)
{
    CHECK_ARGS(ws && map && mask && out);
    map_info_t mi;
    scan(ws, map, mask, &mi);
    int rc = gate(ws, &mi, 1, out);
    if (rc)
        return rc;
    sort_map(ws, map);
    pr_roc(ws, mask, mi.n_pos, NULL, out, NULL);
    return 0;
}

int loc_roc_auc(metrics_ws_t *ws, const float *map, const uint8_t *mask, double *out)
{
    CHECK_ARGS(ws && map && mask && out);
    map_info_t mi;
    scan(ws, map, mask, &mi);
    int rc = gate(ws, &mi, 1, out);
    if (rc)
        return rc;
    if (mi.n_pos == ws->n)
        return metrics_undefined(&ws->counts.one_class, out);
    sort_map(ws, map);
    pr_roc(ws, mask, mi.n_pos, NULL, NULL, out);
    return 0;
}

int loc_pointing_game(metrics_ws_t *ws, const float *map, const uint8_t *mask, loc_tie_rule tie,
                      double tolerance_px, double *out)
{
    CHECK_ARGS(ws && map && mask && out);
    CHECK_ARGS(tie >= LOC_TIE_FIRST && tie <= LOC_TIE_FRACTION);
    CHECK_ARGS(tolerance_px >= 0.0 && tolerance_px <= 1e6);
    map_info_t mi;
    scan(ws, map, mask, &mi);
    int rc = gate(ws, &mi, 1, out);
    if (rc)
        return rc;
    *out = pointing(ws, map, mask, mi.max, tie, tolerance_px);
    return 0;
}

int loc_energy_pointing_game(metrics_ws_t *ws, const float *map, const uint8_t *mask, double *out)
{
    CHECK_ARGS(ws && map && mask && out);
    map_info_t mi;
    scan(ws, map, mask, &mi);
    int rc = gate(ws, &mi, 1, out);
    if (rc)
        return rc;
    if (mi.negative)
        return metrics_undefined(&ws->counts.negative_map, out);
    if (!(mi.sum > 0.0))
        return metrics_undefined(&ws->counts.degenerate, out);
    *out = mi.sum_in / mi.sum;
    return 0;
}

int loc_relevance_rank_accuracy(metrics_ws_t *ws, const float *map, const uint8_t *mask,
                                double *out)
{
    CHECK_ARGS(ws && map && mask && out);
    map_info_t mi;
    scan(ws, map, mask, &mi);
    int rc = gate(ws, &mi, 1, out);
    if (rc)
        return rc;
    sort_map(ws, map);
    *out = top_share(ws, mask, mi.n_pos);
    return 0;
}

static size_t topk_count(const metrics_ws_t *ws, double fraction)
{
    double k = nearbyint(fraction * (double)ws->n);
    if (k < 1.0)
        k = 1.0;
    if (k > (double)ws->n)
        k = (double)ws->n;
    return (size_t)k;
}

int loc_topk_intersection(metrics_ws_t *ws, const float *map, const uint8_t *mask,
                          double k_fraction, double *out)
{
    CHECK_ARGS(ws && map && mask && out);
    CHECK_ARGS(k_fraction > 0.0 && k_fraction <= 1.0);
    map_info_t mi;
    scan(ws, map, mask, &mi);
    int rc = gate(ws, &mi, 1, out);
    if (rc)
        return rc;
    sort_map(ws, map);
    *out = top_share(ws, mask, topk_count(ws, k_fraction));
    return 0;
}

int loc_otsu_threshold(metrics_ws_t *ws, const float *map, double *out)
{
    CHECK_ARGS(ws && map && out);
    map_info_t mi;
    scan(ws, map, NULL, &mi);
    int rc = gate(ws, &mi, 0, out);
    if (rc)
        return rc;
    *out = otsu(map, ws->n, mi.min, mi.max);
    return 0;
}

int loc_overlap_at(metrics_ws_t *ws, const float *map, const uint8_t *mask, double threshold,
                   double *iou, double *dice)
{
    double *out = iou ? iou : dice;
    CHECK_ARGS(ws && map && mask && (iou || dice) && !isnan(threshold));
    map_info_t mi;
    scan(ws, map, mask, &mi);
    int rc = gate(ws, &mi, 1, out);
    if (rc) {
        if (iou)
            *iou = NAN;
        if (dice)
            *dice = NAN;
        return rc;
    }
    overlap(ws, map, mask, mi.n_pos, threshold, iou, dice);
    return 0;
}

int loc_overlap_otsu(metrics_ws_t *ws, const float *map, const uint8_t *mask, double *iou,
                     double *dice)
{
    double *out = iou ? iou : dice;
    CHECK_ARGS(ws && map && mask && (iou || dice));
    map_info_t mi;
    scan(ws, map, mask, &mi);
    int rc = gate(ws, &mi, 1, out);
    if (rc) {
        if (iou)
            *iou = NAN;
        if (dice)
            *dice = NAN;
        return rc;
    }
    overlap(ws, map, mask, mi.n_pos, otsu(map, ws->n, mi.min, mi.max), iou, dice);
    return 0;
}

int loc_soft_dice(metrics_ws_t *ws, const float *map, const uint8_t *mask, int outside,
                  double *out)
{
    CHECK_ARGS(ws && map && mask && out);
    map_info_t mi;
    scan(ws, map, mask, &mi);
    int rc = gate(ws, &mi, 1, out);
    if (rc)
        return rc;
    if (mi.negative)
        return metrics_undefined(&ws->counts.negative_map, out);
    double v = soft_dice(ws, &mi, outside);
    if (isnan(v))
        return metrics_undefined(&ws->counts.one_class, out);
    *out = v;
    return 0;
}

static void fill_nan(loc_result_t *r, int keep_otsu)
{
    double t = r->otsu_threshold;
    r->auprc = r->ap = r->roc_auc = NAN;
    r->pointing = r->energy = r->rra = r->topk = NAN;
    r->iou_otsu = r->dice_otsu = r->iou_fixed = r->dice_fixed = NAN;
    r->soft_dice_in = r->soft_dice_out = NAN;
    r->otsu_threshold = keep_otsu ? t : NAN;
}

int loc_all(metrics_ws_t *ws, const float *map, const uint8_t *mask, const loc_opts_t *opts,
            loc_result_t *out)
{
    loc_opts_t defaults;
    if (!opts) {
        loc_opts_default(&defaults);
        opts = &defaults;
    }
    if (!ws || !map || !mask || !out || opts->pointing_tie < LOC_TIE_FIRST ||
        opts->pointing_tie > LOC_TIE_FRACTION || !(opts->pointing_tolerance >= 0.0) ||
        !(opts->topk_fraction > 0.0 && opts->topk_fraction <= 1.0) || isnan(opts->threshold)) {
        SC_ERROR("loc_all: bad argument (NULL pointer, tie rule, tolerance >= 0, "
                 "top-k fraction in (0,1] or threshold)");
        if (out)
            fill_nan(out, 0);
        return SC_ERR_ARG;
    }
    map_info_t mi;
    scan(ws, map, mask, &mi);
    double nan_out;
    int rc = gate(ws, &mi, 0, &nan_out);
    if (rc) {
        fill_nan(out, 0);
        return rc;
    }
    out->otsu_threshold = otsu(map, ws->n, mi.min, mi.max);
    if (mi.n_pos == 0) {
        fill_nan(out, 1);
        return metrics_undefined(&ws->counts.empty_mask, &nan_out);
    }

    sort_map(ws, map);
    pr_roc(ws, mask, mi.n_pos, &out->auprc, &out->ap, &out->roc_auc);
    if (isnan(out->roc_auc))
        rc = metrics_undefined(&ws->counts.one_class, &out->roc_auc);
    out->rra = top_share(ws, mask, mi.n_pos);
    out->topk = top_share(ws, mask, topk_count(ws, opts->topk_fraction));
    out->pointing = pointing(ws, map, mask, mi.max, opts->pointing_tie, opts->pointing_tolerance);
    overlap(ws, map, mask, mi.n_pos, out->otsu_threshold, &out->iou_otsu, &out->dice_otsu);
    overlap(ws, map, mask, mi.n_pos, opts->threshold, &out->iou_fixed, &out->dice_fixed);
    if (mi.negative) {
        out->energy = out->soft_dice_in = out->soft_dice_out = NAN;
        rc = metrics_undefined(&ws->counts.negative_map, &nan_out);
    } else {
        out->energy = mi.sum > 0.0 ? mi.sum_in / mi.sum : NAN;
        out->soft_dice_in = soft_dice(ws, &mi, 0);
        out->soft_dice_out = soft_dice(ws, &mi, 1);
        if (isnan(out->energy))
            rc = metrics_undefined(&ws->counts.degenerate, &nan_out);
        if (isnan(out->soft_dice_out))
            rc = metrics_undefined(&ws->counts.one_class, &nan_out);
    }
    return rc;
}
