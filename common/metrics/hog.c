/*
 * hog.c - HOG features as skimage.feature.hog 0.19 computes them (module common/metrics,
 * see hog.h for the conventions reproduced).
 */
#include "metrics/hog.h"
#include "metrics/metrics_internal.h"

#include "sc.h"

#include <math.h>
#include <string.h>

size_t hog_feature_count(int h, int w, const hog_params_t *p)
{
    if (h <= 0 || w <= 0 || p->cell_rows <= 0 || p->cell_cols <= 0 || p->block_rows <= 0 ||
        p->block_cols <= 0 || p->orientations <= 0)
        return 0;
    int blocks_r = h / p->cell_rows - p->block_rows + 1;
    int blocks_c = w / p->cell_cols - p->block_cols + 1;
    if (blocks_r <= 0 || blocks_c <= 0)
        return 0;
    return (size_t)blocks_r * (size_t)blocks_c * (size_t)p->block_rows * (size_t)p->block_cols *
           (size_t)p->orientations;
}

size_t hog_ws_feature_count(const metrics_ws_t *ws) { return ws->hog_nfeat; }

/* Python's float modulo as numpy computes it (npy_divmod): the result has the sign of b. */
static double py_mod(double a, double b)
{
    double mod = fmod(a, b);
    if (mod != 0.0) {
        if ((b < 0) != (mod < 0))
            mod += b;
    } else {
        mod = copysign(0.0, b);
    }
    return mod;
}

/* numpy's pairwise sum (metrics_pairwise_sum) of x, x*x (squares = 1) or |x| (squares = 2). */
static double block_sum(const double *a, size_t n, int mode)
{
#define TERM(v) (mode == 1 ? (v) * (v) : (mode == 2 ? fabs(v) : (v)))
    if (n < 8) {
        double res = 0.;
        for (size_t i = 0; i < n; i++)
            res += TERM(a[i]);
        return res;
    }
    if (n <= 128) {
        double r[8];
        size_t i;
        for (i = 0; i < 8; i++)
            r[i] = TERM(a[i]);
        for (i = 8; i < n - (n % 8); i += 8)
            for (size_t k = 0; k < 8; k++)
                r[k] += TERM(a[i + k]);
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += TERM(a[i]);
        return res;
    }
#undef TERM
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return block_sum(a, n2, mode) + block_sum(a + n2, n - n2, mode);
}

/* skimage.feature._hog._hog_normalize_block, in place on one block's features. */
static void normalize_block(double *b, size_t len, hog_block_norm norm)
{
    const double eps = 1e-5;
    switch (norm) {
    case HOG_NORM_L1: {
        double d = block_sum(b, len, 2) + eps;
        for (size_t i = 0; i < len; i++)
            b[i] = b[i] / d;
        break;
    }
    case HOG_NORM_L1_SQRT: {
        double d = block_sum(b, len, 2) + eps;
        for (size_t i = 0; i < len; i++)
            b[i] = sqrt(b[i] / d);
        break;
    }
    case HOG_NORM_L2: {
        double d = sqrt(block_sum(b, len, 1) + eps * eps);
        for (size_t i = 0; i < len; i++)
            b[i] = b[i] / d;
        break;
    }
    case HOG_NORM_L2_HYS:
    default: {
        double d = sqrt(block_sum(b, len, 1) + eps * eps);
        for (size_t i = 0; i < len; i++) {
            double v = b[i] / d;
            b[i] = v < 0.2 ? v : 0.2; /* np.minimum(out, 0.2) */
        }
        d = sqrt(block_sum(b, len, 1) + eps * eps);
        for (size_t i = 0; i < len; i++)
            b[i] = b[i] / d;
        break;
    }
    }
}

/* Features of a finite map (no checks). */
static void compute(metrics_ws_t *ws, const float *map, double *features)
{
    const hog_params_t *p = &ws->hog;
    const int h = ws->h, w = ws->w, n_orient = p->orientations;
    const int cells_r = ws->hog_cells_r, cells_c = ws->hog_cells_c;
    double *grow = ws->hog_grow, *gcol = ws->hog_gcol;

    /* _hog_channel_gradient: central differences, zero on the border rows/columns */
    for (int r = 0; r < h; r++) {
        for (int c = 0; c < w; c++) {
            size_t i = (size_t)r * w + c;
            grow[i] = (r == 0 || r == h - 1) ? 0.0
                                             : (double)map[i + (size_t)w] - (double)map[i - (size_t)w];
            gcol[i] = (c == 0 || c == w - 1) ? 0.0 : (double)map[i + 1] - (double)map[i - 1];
        }
    }

    /* hog_histograms: bin i holds orientations in [edge[i], edge[i+1]) */
    double edge[METRICS_HOG_MAX_ORIENT + 1];
    const double per_180 = 180. / n_orient;
    for (int i = 0; i <= n_orient; i++)
        edge[i] = per_180 * i;
    const float area = (float)(p->cell_rows * p->cell_cols);
    for (int ri = 0; ri < cells_r; ri++) {
        for (int ci = 0; ci < cells_c; ci++) {
            float total[METRICS_HOG_MAX_ORIENT];
            memset(total, 0, sizeof(float) * (size_t)n_orient);
            for (int rr = 0; rr < p->cell_rows; rr++) {
                size_t row = (size_t)(ri * p->cell_rows + rr) * w;
                for (int cc = 0; cc < p->cell_cols; cc++) {
                    size_t i = row + (size_t)(ci * p->cell_cols + cc);
                    double magnitude = hypot(gcol[i], grow[i]);
                    double orientation = py_mod(atan2(grow[i], gcol[i]) * (180.0 / M_PI), 180.0);
                    int b = (int)(orientation / per_180);
                    if (b < 0)
                        b = 0;
                    if (b > n_orient - 1)
                        b = n_orient - 1;
                    while (b > 0 && orientation < edge[b])
                        b--;
                    while (b < n_orient && orientation >= edge[b + 1])
                        b++;
                    if (b >= n_orient)
                        continue; /* 180 after rounding: in no bin, as in skimage */
                    /* skimage sums in a C float: round after every addition */
                    total[b] = (float)((double)total[b] + magnitude);
                }
            }
            double *cell = ws->hog_hist + ((size_t)ri * cells_c + ci) * (size_t)n_orient;
            for (int o = 0; o < n_orient; o++)
                cell[o] = (double)(total[o] / area);
        }
    }

    /* blocks: copy the (block_rows, block_cols, orientations) slab, normalize */
    const int blocks_r = cells_r - p->block_rows + 1, blocks_c = cells_c - p->block_cols + 1;
    const size_t block_len = (size_t)p->block_rows * p->block_cols * n_orient;
    const size_t cell_row_len = (size_t)p->block_cols * n_orient;
    double *out = features;
    for (int br = 0; br < blocks_r; br++) {
        for (int bc = 0; bc < blocks_c; bc++) {
            for (int rr = 0; rr < p->block_rows; rr++) {
                const double *src =
                    ws->hog_hist + ((size_t)(br + rr) * cells_c + bc) * (size_t)n_orient;
                memcpy(out + (size_t)rr * cell_row_len, src, cell_row_len * sizeof(double));
            }
            normalize_block(out, block_len, p->block_norm);
            out += block_len;
        }
    }
}

int hog_features(metrics_ws_t *ws, const float *map, double *features)
{
    if (!ws || !map || !features) {
        SC_ERROR("hog_features: NULL argument");
        return SC_ERR_ARG;
    }
    if (ws->hog_nfeat == 0) {
        SC_ERROR("hog_features: a %dx%d map is smaller than one HOG block (%dx%d cells of %dx%d px)",
                 ws->h, ws->w, ws->hog.block_rows, ws->hog.block_cols, ws->hog.cell_rows,
                 ws->hog.cell_cols);
        return SC_ERR_ARG;
    }
    double lo, hi;
    int rc = 0;
    if (metrics_scan_map(map, ws->n, &lo, &hi))
        rc = metrics_undefined(&ws->counts.nonfinite, NULL);
    else if (lo == hi && ws->policy == METRICS_CONSTANT_UNDEFINED)
        rc = metrics_undefined(&ws->counts.constant_map, NULL);
    if (rc) {
        for (size_t i = 0; i < ws->hog_nfeat; i++)
            features[i] = NAN;
        return rc;
    }
    compute(ws, map, features);
    return 0;
}

/* For similarity.c: features of a finite map into the workspace's buffer a (0) or b (1). */
double *metrics_hog_into_ws(metrics_ws_t *ws, const float *map, int which)
{
    double *dst = which ? ws->hog_fb : ws->hog_fa;
    compute(ws, map, dst);
    return dst;
}
