/*
 * metrics_internal.h - workspace layout and helpers shared by the files of common/metrics.
 *
 * Not for callers outside the module: they see metrics_ws_t as opaque
 * (metrics.h). Everything here works on buffers the workspace already holds.
 */
#ifndef METRICS_INTERNAL_H
#define METRICS_INTERNAL_H

#include "metrics/metrics.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* Largest Gaussian radius the SSIM workspace holds (truncate 3.5 * sigma). */
#define METRICS_MAX_RADIUS 64
/* Largest HOG orientation count (per-cell accumulators live on the stack). */
#define METRICS_HOG_MAX_ORIENT 180

/* A sort key and the index of the element it came from. */
typedef struct metrics_pair {
    double key;
    int32_t idx;
} metrics_pair_t;

struct metrics_ws {
    int h, w;
    size_t n;   /* h * w */
    size_t cap; /* max(n, hog feature count): length of the vector buffers */
    metrics_constant_policy policy;
    metrics_counts_t counts;

    /* sorting and ranking, [cap] each */
    metrics_pair_t *pairs, *pairs_tmp;
    double *rank_a, *rank_b;

    /* SSIM: five filtered planes and one scratch plane [n]; one padded line */
    double *plane[6];
    double *line;
    double kernel[2 * METRICS_MAX_RADIUS + 1];

    /* squared Euclidean distance to the mask [n] and its 1-D buffers */
    double *dist2;
    double *edt_f, *edt_d, *edt_z; /* [max(h,w)+1] */
    int *edt_v;

    /* HOG */
    hog_params_t hog;
    int hog_cells_r, hog_cells_c;
    size_t hog_nfeat;          /* 0 when the map is smaller than one block */
    double *hog_grow, *hog_gcol; /* [n] gradients */
    double *hog_hist;          /* [cells_r * cells_c * orientations] */
    double *hog_fa, *hog_fb;   /* [hog_nfeat] features of the two maps */
};

/* Record an undefined result: *out = NaN, counter + 1, returns SC_ERR_UNDEFINED. */
int metrics_undefined(long *counter, double *out);

/*
 * Scan a map: 1 when some value is NaN or infinite, else 0 with its minimum
 * and maximum in *min, *max (either pointer may be NULL).
 */
int metrics_scan_map(const float *map, size_t n, double *min, double *max);

/* Stable ascending sort of pairs by key (LSD radix sort; tmp has n entries).
 * Keys must not be NaN. O(n), allocates nothing. */
void metrics_sort_pairs(metrics_pair_t *pairs, metrics_pair_t *tmp, size_t n);

/* Average ranks (1-based, ties get the mean of their positions, as
 * scipy.stats.rankdata 'average') of sorted pairs, scattered by idx. */
void metrics_rank_sorted(const metrics_pair_t *sorted, size_t n, double *rank);

/* Pearson correlation of two double vectors (two-pass, compensated sums).
 * NaN when either vector is constant or n < 2. */
double metrics_pearson_d(const double *x, const double *y, size_t n);

/* numpy's pairwise summation of a contiguous double vector (the order of
 * np.sum / np.add.reduce), so block sums match skimage to the last bit. */
double metrics_pairwise_sum(const double *a, size_t n);

/* HOG features of a finite map into the workspace's feature buffer a (which = 0)
 * or b (which = 1); returns that buffer (hog.c; the map must hold one block). */
double *metrics_hog_into_ws(metrics_ws_t *ws, const float *map, int which);

/* Neumaier-compensated running sum. */
typedef struct metrics_ksum {
    double sum, comp;
} metrics_ksum_t;

static inline void metrics_ksum_add(metrics_ksum_t *k, double v)
{
    double t = k->sum + v;
    if (fabs(k->sum) >= fabs(v))
        k->comp += (k->sum - t) + v;
    else
        k->comp += (v - t) + k->sum;
    k->sum = t;
}

static inline double metrics_ksum_value(const metrics_ksum_t *k) { return k->sum + k->comp; }

#endif /* METRICS_INTERNAL_H */
