/*
 * similarity.c - SSIM, Spearman, Pearson and HOG similarity of two maps (module
 * common/metrics, see similarity.h; definitions in docs/methods.md section 5).
 */
#include "metrics/similarity.h"
#include "metrics/hog.h"
#include "metrics/metrics_internal.h"

#include "sc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sim_ssim_opts_default(sim_ssim_opts_t *opts)
{
    opts->win_size = 7;
    opts->data_range = 2.0;
    opts->gaussian = 0;
    opts->sigma = 1.5;
    opts->sample_covariance = 1;
    opts->k1 = 0.01;
    opts->k2 = 0.03;
}

void sim_ssim_opts_pairs(sim_ssim_opts_t *paper, sim_ssim_opts_t *l1, sim_ssim_opts_t *gauss)
{
    sim_ssim_opts_default(paper);
    *l1 = *paper;
    l1->data_range = 1.0;
    *gauss = *paper;
    gauss->gaussian = 1;
    gauss->sigma = 1.5;
    gauss->win_size = 11;
    gauss->data_range = 1.0;
    gauss->sample_covariance = 0;
}

/* scipy.ndimage 'reflect' extension: d c b a | a b c d | d c b a. */
static long reflect_index(long i, long n)
{
    long period = 2 * n;
    i %= period;
    if (i < 0)
        i += period;
    return i < n ? i : period - 1 - i;
}

/* The five SSIM inputs, built on the fly from the two maps. */
enum { IN_A, IN_B, IN_AA, IN_BB, IN_AB };

static inline double input_value(const float *a, const float *b, int kind, size_t i)
{
    double x = a[i], y = b[i];
    switch (kind) {
    case IN_A: return x;
    case IN_B: return y;
    case IN_AA: return x * x;
    case IN_BB: return y * y;
    default: return x * y;
    }
}

/*
 * One 1-D filter pass over a line already extended by `before` and `after`
 * samples (line[0] is the first extended sample). Uniform: scipy's
 * NI_UniformFilter1D running mean. Gaussian: NI_Correlate1D's symmetric branch.
 */
static void filter_line(const double *line, long length, int gaussian, int size,
                        const double *kernel_center, int radius, double *out, long out_stride)
{
    if (!gaussian) {
        double tmp = 0.0;
        for (int k = 0; k < size; k++)
            tmp += line[k];
        tmp /= (double)size;
        out[0] = tmp;
        const double *l1 = line, *l2 = line + size;
        for (long i = 1; i < length; i++) {
            tmp += (*l2++ - *l1++) / (double)size;
            out[i * out_stride] = tmp;
        }
        return;
    }
    const double *fw = kernel_center;
    for (long i = 0; i < length; i++) {
        const double *x = line + radius + i;
        double acc = x[0] * fw[0];
        for (int j = -radius; j < 0; j++)
            acc += (x[j] + x[-j]) * fw[j];
        out[i * out_stride] = acc;
    }
}

/* Filter one input plane: axis 0 (down the columns) into plane[5], then axis 1. */
static void filter_plane(metrics_ws_t *ws, const float *a, const float *b, int kind, int gaussian,
                         int size, int radius, double *dst)
{
    const long h = ws->h, w = ws->w;
    const int before = gaussian ? radius : size / 2;
    const int after = gaussian ? radius : size - size / 2 - 1;
    const double *kc = ws->kernel + METRICS_MAX_RADIUS;
    double *tmp = ws->plane[5], *line = ws->line;
    for (long x = 0; x < w; x++) {
        for (long k = -before; k < h + after; k++)
            line[k + before] = input_value(a, b, kind, (size_t)(reflect_index(k, h) * w + x));
        filter_line(line, h, gaussian, size, kc, radius, tmp + x, w);
    }
    for (long y = 0; y < h; y++) {
        const double *row = tmp + y * w;
        for (long k = -before; k < w + after; k++)
            line[k + before] = row[reflect_index(k, w)];
        filter_line(line, w, gaussian, size, kc, radius, dst + y * w, 1);
    }
}

int sim_ssim(metrics_ws_t *ws, const float *a, const float *b, const sim_ssim_opts_t *opts,
             double *out)
{
    sim_ssim_opts_t defaults;
    if (!opts) {
        sim_ssim_opts_default(&defaults);
        opts = &defaults;
    }
    if (!ws || !a || !b || !out) {
        SC_ERROR("sim_ssim: NULL argument");
        return SC_ERR_ARG;
    }
    *out = NAN;
    const int win = opts->win_size;
    if (win < 1 || win % 2 == 0 || win > ws->h || win > ws->w) {
        SC_ERROR("sim_ssim: win_size %d must be odd and at most the map size %dx%d", win, ws->h,
                 ws->w);
        return SC_ERR_ARG;
    }
    if (!(opts->data_range > 0.0) || !(opts->k1 >= 0.0) || !(opts->k2 >= 0.0)) {
        SC_ERROR("sim_ssim: data_range must be > 0 and K1, K2 >= 0 (got %g, %g, %g)",
                 opts->data_range, opts->k1, opts->k2);
        return SC_ERR_ARG;
    }
    int radius = 0;
    if (opts->gaussian) {
        /* skimage: truncate = 3.5; ndimage: radius = int(truncate * sigma + 0.5) */
        if (!(opts->sigma > 0.0) || (int)(3.5 * opts->sigma + 0.5) > METRICS_MAX_RADIUS) {
            SC_ERROR("sim_ssim: Gaussian sigma %g must be in (0, %g]", opts->sigma,
                     (METRICS_MAX_RADIUS - 0.5) / 3.5);
            return SC_ERR_ARG;
        }
        radius = (int)(3.5 * opts->sigma + 0.5);
    }

    double amin, amax, bmin, bmax;
    if (metrics_scan_map(a, ws->n, &amin, &amax) || metrics_scan_map(b, ws->n, &bmin, &bmax))
        return metrics_undefined(&ws->counts.nonfinite, out);
    if ((amin == amax || bmin == bmax) && ws->policy == METRICS_CONSTANT_UNDEFINED)
        return metrics_undefined(&ws->counts.constant_map, out);

    if (opts->gaussian) {
        /* scipy.ndimage._gaussian_kernel1d: exp(-0.5 / sigma^2 * x^2), normalized */
        double *kc = ws->kernel + METRICS_MAX_RADIUS, phi[2 * METRICS_MAX_RADIUS + 1];
        double factor = -0.5 / (opts->sigma * opts->sigma);
        for (int x = -radius; x <= radius; x++)
            phi[x + radius] = exp(factor * (double)(x * x));
        double total = metrics_pairwise_sum(phi, (size_t)(2 * radius + 1));
        for (int x = -radius; x <= radius; x++)
            kc[x] = phi[x + radius] / total;
    }

    double *ux = ws->plane[0], *uy = ws->plane[1], *uxx = ws->plane[2], *uyy = ws->plane[3],
           *uxy = ws->plane[4];
    filter_plane(ws, a, b, IN_A, opts->gaussian, win, radius, ux);
    filter_plane(ws, a, b, IN_B, opts->gaussian, win, radius, uy);
    filter_plane(ws, a, b, IN_AA, opts->gaussian, win, radius, uxx);
    filter_plane(ws, a, b, IN_BB, opts->gaussian, win, radius, uyy);
    filter_plane(ws, a, b, IN_AB, opts->gaussian, win, radius, uxy);

    const double np_win = (double)win * win;
    const double cov_norm = opts->sample_covariance ? np_win / (np_win - 1.0) : 1.0;
    const double c1 = (opts->k1 * opts->data_range) * (opts->k1 * opts->data_range);
    const double c2 = (opts->k2 * opts->data_range) * (opts->k2 * opts->data_range);
    const int pad = (win - 1) / 2;
    const long h = ws->h, w = ws->w, cols = w - 2 * pad, rows = h - 2 * pad;
    if (rows <= 0 || cols <= 0)
        return metrics_undefined(&ws->counts.degenerate, out);
    /* np.mean of the cropped view: rows summed in order, each row pairwise */
    double *row_s = ws->plane[5];
    double total = 0.0;
    for (long y = pad; y < h - pad; y++) {
        for (long x = pad; x < w - pad; x++) {
            size_t i = (size_t)(y * w + x);
            double mx = ux[i], my = uy[i];
            double vx = cov_norm * (uxx[i] - mx * mx);
            double vy = cov_norm * (uyy[i] - my * my);
            double vxy = cov_norm * (uxy[i] - mx * my);
            double a1 = 2 * mx * my + c1, a2 = 2 * vxy + c2;
            double b1 = mx * mx + my * my + c1, b2 = vx + vy + c2;
            row_s[x - pad] = (a1 * a2) / (b1 * b2);
        }
        total += metrics_pairwise_sum(row_s, (size_t)cols);
    }
    *out = total / ((double)rows * (double)cols);
    return 0;
}

/* Spearman of the workspace's pairs buffers: rank x into rank_a, y into rank_b. */
static double spearman_ranked(metrics_ws_t *ws, size_t n)
{
    return metrics_pearson_d(ws->rank_a, ws->rank_b, n);
}

static void rank_floats(metrics_ws_t *ws, const float *v, int absolute, double *rank)
{
    for (size_t i = 0; i < ws->n; i++) {
        double x = v[i];
        ws->pairs[i].key = absolute ? fabs(x) : x;
        ws->pairs[i].idx = (int32_t)i;
    }
    metrics_sort_pairs(ws->pairs, ws->pairs_tmp, ws->n);
    metrics_rank_sorted(ws->pairs, ws->n, rank);
}

static void rank_doubles(metrics_ws_t *ws, const double *v, size_t n, double *rank)
{
    for (size_t i = 0; i < n; i++) {
        ws->pairs[i].key = v[i];
        ws->pairs[i].idx = (int32_t)i;
    }
    metrics_sort_pairs(ws->pairs, ws->pairs_tmp, n);
    metrics_rank_sorted(ws->pairs, n, rank);
}

/* Is the map constant after the optional absolute value? (It is finite.) */
static int is_constant(const float *v, size_t n, int absolute)
{
    float first = absolute ? fabsf(v[0]) : v[0];
    for (size_t i = 1; i < n; i++)
        if ((absolute ? fabsf(v[i]) : v[i]) != first)
            return 0;
    return 1;
}

int sim_spearman(metrics_ws_t *ws, const float *a, const float *b, int absolute, double *out)
{
    if (!ws || !a || !b || !out) {
        SC_ERROR("sim_spearman: NULL argument");
        return SC_ERR_ARG;
    }
    if (metrics_scan_map(a, ws->n, NULL, NULL) || metrics_scan_map(b, ws->n, NULL, NULL))
        return metrics_undefined(&ws->counts.nonfinite, out);
    if (ws->n < 2 || is_constant(a, ws->n, absolute) || is_constant(b, ws->n, absolute))
        return metrics_undefined(&ws->counts.constant_map, out);
    rank_floats(ws, a, absolute, ws->rank_a);
    rank_floats(ws, b, absolute, ws->rank_b);
    *out = spearman_ranked(ws, ws->n);
    return 0;
}

int sim_pearson(metrics_ws_t *ws, const float *a, const float *b, double *out)
{
    if (!ws || !a || !b || !out) {
        SC_ERROR("sim_pearson: NULL argument");
        return SC_ERR_ARG;
    }
    if (metrics_scan_map(a, ws->n, NULL, NULL) || metrics_scan_map(b, ws->n, NULL, NULL))
        return metrics_undefined(&ws->counts.nonfinite, out);
    if (ws->n < 2 || is_constant(a, ws->n, 0) || is_constant(b, ws->n, 0))
        return metrics_undefined(&ws->counts.constant_map, out);
    for (size_t i = 0; i < ws->n; i++) {
        ws->rank_a[i] = a[i];
        ws->rank_b[i] = b[i];
    }
    *out = metrics_pearson_d(ws->rank_a, ws->rank_b, ws->n);
    return 0;
}

int sim_spearman_vec(metrics_ws_t *ws, const double *x, const double *y, size_t n, double *out)
{
    if (!ws || !x || !y || !out || n > ws->cap) {
        SC_ERROR("sim_spearman_vec: NULL argument or length %zu above the workspace's %zu", n,
                 ws ? ws->cap : (size_t)0);
        return SC_ERR_ARG;
    }
    int x_const = 1, y_const = 1;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i]))
            return metrics_undefined(&ws->counts.nonfinite, out);
        x_const &= x[i] == x[0];
        y_const &= y[i] == y[0];
    }
    if (n < 2 || x_const || y_const)
        return metrics_undefined(&ws->counts.constant_map, out);
    rank_doubles(ws, x, n, ws->rank_a);
    rank_doubles(ws, y, n, ws->rank_b);
    *out = spearman_ranked(ws, n);
    return 0;
}

int sim_hog(metrics_ws_t *ws, const float *a, const float *b, double *out)
{
    if (!ws || !a || !b || !out) {
        SC_ERROR("sim_hog: NULL argument");
        return SC_ERR_ARG;
    }
    if (ws->hog_nfeat == 0) {
        *out = NAN;
        SC_ERROR("sim_hog: a %dx%d map is smaller than one HOG block (%dx%d cells of %dx%d px)",
                 ws->h, ws->w, ws->hog.block_rows, ws->hog.block_cols, ws->hog.cell_rows,
                 ws->hog.cell_cols);
        return SC_ERR_ARG;
    }
    double amin, amax, bmin, bmax;
    if (metrics_scan_map(a, ws->n, &amin, &amax) || metrics_scan_map(b, ws->n, &bmin, &bmax))
        return metrics_undefined(&ws->counts.nonfinite, out);
    if ((amin == amax || bmin == bmax) && ws->policy == METRICS_CONSTANT_UNDEFINED)
        return metrics_undefined(&ws->counts.constant_map, out);
    const double *fa = metrics_hog_into_ws(ws, a, 0);
    const double *fb = metrics_hog_into_ws(ws, b, 1);
    size_t n = ws->hog_nfeat;
    int fa_const = 1, fb_const = 1;
    for (size_t i = 1; i < n; i++) {
        fa_const &= fa[i] == fa[0];
        fb_const &= fb[i] == fb[0];
    }
    if (n < 2 || fa_const || fb_const)
        return metrics_undefined(&ws->counts.degenerate, out);
    rank_doubles(ws, fa, n, ws->rank_a);
    rank_doubles(ws, fb, n, ws->rank_b);
    *out = spearman_ranked(ws, n);
    return 0;
}

/* ---- prepared maps (similarity.h, sim_prep_t) -------------------------------- */

int sim_prep_init(sim_prep_t *sp, const metrics_ws_t *ws, unsigned parts)
{
    memset(sp, 0, sizeof *sp);
    sp->parts = parts;
    sp->n = ws->n;
    sp->nfeat = ws->hog_nfeat;
    sp->map = malloc(sizeof(float) * (ws->n ? ws->n : 1));
    int bad = !sp->map;
    if (parts & SIM_PREP_RANK)
        bad |= !(sp->rank = malloc(sizeof(double) * ws->n));
    if (parts & SIM_PREP_RANK_ABS)
        bad |= !(sp->rank_own_abs = malloc(sizeof(double) * ws->n));
    if ((parts & SIM_PREP_HOG) && sp->nfeat) {
        bad |= !(sp->hog = malloc(sizeof(double) * sp->nfeat));
        bad |= !(sp->hog_rank = malloc(sizeof(double) * sp->nfeat));
    }
    if (bad) {
        sim_prep_free(sp);
        return SC_ERR_NOMEM;
    }
    return 0;
}

void sim_prep_free(sim_prep_t *sp)
{
    free(sp->map);
    free(sp->rank);
    free(sp->rank_own_abs);
    free(sp->hog);
    free(sp->hog_rank);
    memset(sp, 0, sizeof *sp);
}

void sim_prep_compute(metrics_ws_t *ws, sim_prep_t *sp)
{
    const size_t n = ws->n;
    sp->finite = !metrics_scan_map(sp->map, n, &sp->min, &sp->max);
    sp->rank_abs = sp->rank_own_abs;
    sp->hog_state = sp->finite ? 0 : 1;
    if (!sp->finite)
        return;
    sp->constant = n >= 1 && is_constant(sp->map, n, 0);
    sp->constant_abs = n >= 1 && is_constant(sp->map, n, 1);
    /* the ranks sim_spearman computes: only for a pair it would rank */
    if ((sp->parts & SIM_PREP_RANK) && n >= 2 && !sp->constant)
        rank_floats(ws, sp->map, 0, sp->rank);
    if ((sp->parts & SIM_PREP_RANK_ABS) && n >= 2 && !sp->constant_abs) {
        if (sp->min >= 0 && (sp->parts & SIM_PREP_RANK) && !sp->constant)
            sp->rank_abs = sp->rank; /* |v| = v for every value (-0 ranks as 0 either way) */
        else
            rank_floats(ws, sp->map, 1, sp->rank_abs);
    }
    /* HOG: sim_hog's order of tests for one map */
    if (!(sp->parts & SIM_PREP_HOG) || ws->hog_nfeat == 0)
        return;
    if (sp->min == sp->max && ws->policy == METRICS_CONSTANT_UNDEFINED) {
        sp->hog_state = 2;
        return;
    }
    const double *f = metrics_hog_into_ws(ws, sp->map, 0);
    memcpy(sp->hog, f, sizeof(double) * sp->nfeat);
    sp->hog_const = 1;
    for (size_t i = 1; i < sp->nfeat; i++)
        sp->hog_const &= sp->hog[i] == sp->hog[0];
    if (sp->nfeat >= 2 && !sp->hog_const)
        rank_doubles(ws, sp->hog, sp->nfeat, sp->hog_rank);
}

int sim_spearman_prep(metrics_ws_t *ws, const sim_prep_t *a, const sim_prep_t *b, int absolute,
                      double *out)
{
    const unsigned part = absolute ? SIM_PREP_RANK_ABS : SIM_PREP_RANK;
    if (!ws || !a || !b || !out || !(a->parts & part) || !(b->parts & part)) {
        SC_ERROR("sim_spearman_prep: NULL argument or maps prepared without their ranks");
        return SC_ERR_ARG;
    }
    if (!a->finite || !b->finite)
        return metrics_undefined(&ws->counts.nonfinite, out);
    const int ca = absolute ? a->constant_abs : a->constant;
    const int cb = absolute ? b->constant_abs : b->constant;
    if (ws->n < 2 || ca || cb)
        return metrics_undefined(&ws->counts.constant_map, out);
    *out = metrics_pearson_d(absolute ? a->rank_abs : a->rank, absolute ? b->rank_abs : b->rank,
                             ws->n);
    return 0;
}

int sim_hog_prep(metrics_ws_t *ws, const sim_prep_t *a, const sim_prep_t *b, double *out)
{
    if (!ws || !a || !b || !out || !(a->parts & SIM_PREP_HOG) || !(b->parts & SIM_PREP_HOG)) {
        SC_ERROR("sim_hog_prep: NULL argument or maps prepared without their HOG");
        return SC_ERR_ARG;
    }
    if (ws->hog_nfeat == 0)
        return sim_hog(ws, a->map, b->map, out); /* its error, worded once */
    if (!a->finite || !b->finite)
        return metrics_undefined(&ws->counts.nonfinite, out);
    if (a->hog_state == 2 || b->hog_state == 2)
        return metrics_undefined(&ws->counts.constant_map, out);
    if (ws->hog_nfeat < 2 || a->hog_const || b->hog_const)
        return metrics_undefined(&ws->counts.degenerate, out);
    *out = metrics_pearson_d(a->hog_rank, b->hog_rank, ws->hog_nfeat);
    return 0;
}
