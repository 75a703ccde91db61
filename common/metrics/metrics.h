/*
 * metrics.h - the metrics workspace shared by the per-map metrics (module common/metrics).
 *
 * Every per-map metric (localization.h, similarity.h, hog.h) takes a
 * metrics_ws_t created once for a map size H x W. The workspace holds all the
 * scratch memory the metrics need (sort buffers, rank vectors, SSIM filter
 * planes, HOG gradients and features, a distance transform), so a per-map call
 * allocates nothing and costs O(HW log HW) at most (docs/methods.md section 5).
 *
 * Maps are float arrays [H*W] row-major, masks uint8 [H*W] (nonzero = inside
 * the ground truth); all computation is in double precision.
 *
 * Undefined results. A metric that is undefined for its input (a non-finite
 * map value, an empty mask, a constant map, ...) writes NaN to its output,
 * returns SC_ERR_UNDEFINED and adds one to the workspace's count for the cause
 * (metrics_ws_counts; one per call and cause, so loc_all on an empty mask
 * counts one empty_mask although all its mask-based fields are NaN). SC_ERR_UNDEFINED is therefore a normal outcome that a
 * caller records (the NaN goes into the results file), not an error to
 * propagate. Other negative codes (SC_ERR_ARG) are caller bugs and are logged.
 *
 * Constant maps. By default (METRICS_CONSTANT_UNDEFINED) a constant map makes
 * every metric undefined: a constant map carries no localization and no
 * structure, and docs/methods.md section 4 flags it. METRICS_CONSTANT_SCORE scores
 * it the way the reference libraries do instead (sklearn gives AUPRC (1+p)/2,
 * ROC-AUC 0.5; skimage gives an SSIM), for comparisons with those tools.
 */
#ifndef METRICS_H
#define METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct metrics_ws metrics_ws_t;

/* HOG block normalization, as skimage.feature.hog's block_norm. */
typedef enum hog_block_norm {
    HOG_NORM_L2_HYS = 0, /* 'L2-Hys' (skimage default) */
    HOG_NORM_L2 = 1,     /* 'L2' */
    HOG_NORM_L1 = 2,     /* 'L1' */
    HOG_NORM_L1_SQRT = 3 /* 'L1-sqrt' */
} hog_block_norm;

/* HOG parameters (skimage.feature.hog arguments of the same names). */
typedef struct hog_params {
    int orientations;           /* 9 */
    int cell_rows, cell_cols;   /* pixels_per_cell (8, 8) */
    int block_rows, block_cols; /* cells_per_block (3, 3) */
    hog_block_norm block_norm;  /* L2-Hys */
} hog_params_t;

/* skimage's defaults: orientations=9, pixels_per_cell=(8,8), cells_per_block=(3,3),
 * block_norm='L2-Hys' (transform_sqrt=False, feature_vector=True always). */
void hog_params_default(hog_params_t *params);

/* Policy for constant maps (see the file comment). */
typedef enum metrics_constant_policy {
    METRICS_CONSTANT_UNDEFINED = 0, /* default: NaN and a count */
    METRICS_CONSTANT_SCORE = 1      /* score as the reference libraries do */
} metrics_constant_policy;

/* Counts of calls that returned SC_ERR_UNDEFINED, by cause. */
typedef struct metrics_counts {
    long nonfinite;    /* a NaN or infinite value in a map */
    long constant_map; /* a constant map (policy METRICS_CONSTANT_UNDEFINED) */
    long empty_mask;   /* no pixel inside the ground truth */
    long one_class;    /* ROC-AUC with no pixel outside the ground truth, soft Dice outside with none */
    long negative_map; /* a mass-based metric (energy, soft Dice) on a map with negative values */
    long degenerate;   /* anything else: a map too small for the window, ... */
} metrics_counts_t;

/*
 * Create a workspace for maps of h x w pixels with the default HOG parameters.
 * Returns NULL (and logs) on a bad size or out of memory. The caller owns the
 * workspace and frees it with metrics_ws_destroy. One workspace per thread.
 */
metrics_ws_t *metrics_ws_create(int h, int w);

/* Same with explicit HOG parameters (NULL = defaults). A map too small for one
 * HOG block is accepted; the HOG functions then return SC_ERR_ARG. */
metrics_ws_t *metrics_ws_create_hog(int h, int w, const hog_params_t *hog);

void metrics_ws_destroy(metrics_ws_t *ws);

int metrics_ws_h(const metrics_ws_t *ws);
int metrics_ws_w(const metrics_ws_t *ws);
/* Longest vector the vector functions (sim_spearman_vec, ...) accept. */
size_t metrics_ws_capacity(const metrics_ws_t *ws);

void metrics_ws_set_constant_policy(metrics_ws_t *ws, metrics_constant_policy policy);
metrics_constant_policy metrics_ws_constant_policy(const metrics_ws_t *ws);

/* Undefined-result counts since creation or the last reset. */
void metrics_ws_counts(const metrics_ws_t *ws, metrics_counts_t *out);
long metrics_ws_undefined_total(const metrics_ws_t *ws);
void metrics_ws_reset_counts(metrics_ws_t *ws);

#endif /* METRICS_H */
