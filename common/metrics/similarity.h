/*
 * similarity.h - map-to-map similarity: SSIM, Spearman, Pearson, HOG similarity (module common/metrics).
 *
 * Definitions: docs/methods.md section 5 ("SSIM", "Spearman rank correlation",
 * "Pearson", "HOG similarity"). Two maps [H*W] (float, row-major) of the
 * workspace's size; computation in double; nothing allocated per call.
 * Returns 0, SC_ERR_UNDEFINED (*out = NaN, cause counted in the workspace) or
 * SC_ERR_ARG (logged), as in localization.h.
 *
 * Agreement with the reference libraries (tests/unit/test_metrics.c against
 * tests/ref/metrics_ref.py), with both maps passed to them as float64:
 *   sim_ssim     == skimage.metrics.structural_similarity(a, b, win_size=win_size,
 *                   data_range=data_range, gaussian_weights=gaussian, sigma=sigma,
 *                   use_sample_covariance=sample_covariance) of scikit-image 0.19:
 *                   scipy.ndimage uniform_filter (or gaussian_filter, truncate 3.5)
 *                   with mode 'reflect' (d c b a | a b c d), axis 0 then axis 1;
 *                   S = (2 ux uy + C1)(2 vxy + C2) / ((ux^2 + uy^2 + C1)(vx + vy + C2)),
 *                   C1 = (K1 L)^2, C2 = (K2 L)^2; mean of S over the image without
 *                   (win_size-1)/2 pixels on each side. With gaussian weights the
 *                   filter has radius int(3.5 sigma + 0.5) whatever win_size, and
 *                   win_size only sets the crop and the NP/(NP-1) factor, as in skimage.
 *                   (skimage run on float32 maps computes in float32 and differs from
 *                   this at the 1e-8 level, 3.9e-9 on a 320x320 map; salcheck always
 *                   computes in double.)
 *   sim_spearman == scipy.stats.spearmanr (average ranks for ties), of |a|, |b| when
 *                   absolute is set (Adebayo et al.'s "absolute" variant)
 *   sim_pearson  == scipy.stats.pearsonr
 *   sim_hog      == spearmanr(hog(a), hog(b)) with skimage.feature.hog (hog.h)
 * Spearman and Pearson are undefined for a constant input (scipy returns NaN).
 */
#ifndef SIMILARITY_H
#define SIMILARITY_H

#include "metrics/metrics.h"

#include <stddef.h>

typedef struct sim_ssim_opts {
    int win_size;          /* odd, <= min(H, W); 7 */
    double data_range;     /* L: 2.0 in the paper's convention (old skimage float default), or 1.0 */
    int gaussian;          /* 0: uniform win_size x win_size window (paper); 1: Gaussian weights */
    double sigma;          /* Gaussian sigma; 1.5 */
    int sample_covariance; /* 1: variances x NP/(NP-1), NP = win_size^2 (skimage default, paper) */
    double k1, k2;         /* 0.01, 0.03 */
} sim_ssim_opts_t;

/* The paper's SSIM: 7x7 uniform window, L = 2, sample covariance, K1 0.01, K2 0.03. */
void sim_ssim_opts_default(sim_ssim_opts_t *opts);
/* The pair phase's three SSIM settings: the paper's (above), the same with L = 1
 * (maps in [0, 1]), and scikit-image's Gaussian form (11x11, sigma 1.5, L = 1,
 * population covariance). */
void sim_ssim_opts_pairs(sim_ssim_opts_t *paper, sim_ssim_opts_t *l1, sim_ssim_opts_t *gauss);

/* Mean SSIM of two maps (opts NULL = the paper's settings). */
int sim_ssim(metrics_ws_t *ws, const float *a, const float *b, const sim_ssim_opts_t *opts,
             double *out);

/* Spearman's rank correlation of two maps (of their absolute values when absolute != 0). */
int sim_spearman(metrics_ws_t *ws, const float *a, const float *b, int absolute, double *out);

/* Pearson's linear correlation of two maps. */
int sim_pearson(metrics_ws_t *ws, const float *a, const float *b, double *out);

/* Spearman's rank correlation of the HOG features of two maps (the workspace's
 * HOG parameters; SC_ERR_ARG when the maps are smaller than one HOG block). */
int sim_hog(metrics_ws_t *ws, const float *a, const float *b, double *out);

/* Spearman's rank correlation of two double vectors of length n <= metrics_ws_capacity. */
int sim_spearman_vec(metrics_ws_t *ws, const double *x, const double *y, size_t n, double *out);

/*
 * One map's share of the pair similarities, computed once and reused by every pair
 * the map is in (the pair phase compares each map with several others): the map
 * itself, whether it is finite and constant, its ranks (plain and of |values|, the
 * same array when no value is negative) and its HOG features and their ranks. The
 * *_prep functions below give bit for bit what sim_spearman / sim_hog give on the two
 * maps, and count undefined results in the workspace the same way.
 */
enum { SIM_PREP_RANK = 1, SIM_PREP_RANK_ABS = 2, SIM_PREP_HOG = 4 };
typedef struct sim_prep {
    unsigned parts;       /* SIM_PREP_* the buffers hold */
    size_t n, nfeat;      /* map values; HOG features (the workspace's) */
    float *map;           /* [n] the map: fill it, then sim_prep_compute */
    int finite;           /* every value finite */
    double min, max;      /* of the values (finite maps) */
    int constant, constant_abs; /* all values (|values|) equal */
    double *rank, *rank_abs;    /* [n] average ranks; rank_abs may be rank */
    int hog_state;        /* 0 features computed, 1 not finite, 2 constant and undefined */
    int hog_const;        /* every feature equal */
    double *hog, *hog_rank;     /* [nfeat] */
    double *rank_own_abs;       /* [n] rank_abs's own storage */
} sim_prep_t;

/* Buffers for the parts of a map of ws's size. Returns 0 or SC_ERR_NOMEM; free with
 * sim_prep_free. */
int sim_prep_init(sim_prep_t *sp, const metrics_ws_t *ws, unsigned parts);
void sim_prep_free(sim_prep_t *sp);
/* The parts of sp->map (already filled); ws lends its sorting and HOG scratch. */
void sim_prep_compute(metrics_ws_t *ws, sim_prep_t *sp);
/* sim_spearman(ws, a->map, b->map, absolute, out) from prepared maps. */
int sim_spearman_prep(metrics_ws_t *ws, const sim_prep_t *a, const sim_prep_t *b, int absolute,
                      double *out);
/* sim_hog(ws, a->map, b->map, out) from prepared maps. */
int sim_hog_prep(metrics_ws_t *ws, const sim_prep_t *a, const sim_prep_t *b, double *out);

#endif /* SIMILARITY_H */
