/*
 * localization.h - how well a saliency map localizes a ground-truth mask (module common/metrics).
 *
 * Definitions: docs/methods.md section 5 ("AUPRC", "Localization family").
 * Every function scores one map [H*W] (float, row-major) against one mask
 * [H*W] (uint8, nonzero = inside) with the sizes of the workspace, computes in
 * double, allocates nothing and returns:
 *   0                 *out holds the value;
 *   SC_ERR_UNDEFINED  *out is NaN and the workspace counts the cause: a NaN or
 *                     infinite map value, an empty mask, a constant map (policy
 *                     METRICS_CONSTANT_UNDEFINED, the default), one class only
 *                     (ROC-AUC), negative map values (energy, soft Dice);
 *   SC_ERR_ARG        a NULL argument or an option out of range (logged).
 *
 * Agreement with the reference libraries (checked by tests/unit/test_metrics.c
 * against tests/ref/metrics_ref.py):
 *   loc_auprc          == sklearn auc(recall, precision) of precision_recall_curve
 *                         (one point per distinct score, ties grouped; sklearn 1.2
 *                         keeps the points after full recall, which add zero area)
 *   loc_average_precision == sklearn average_precision_score
 *   loc_roc_auc        == sklearn roc_auc_score
 *   loc_otsu_threshold == skimage.filters.threshold_otsu(map, nbins=256) on the
 *                         map as float64
 * The other metrics have no reference library on Debian; their conventions:
 *   - pointing game: the maximum pixel is a hit when it lies in the mask or, with
 *     a tolerance r > 1 px, when a mask pixel lies at distance < r (strict, as
 *     TorchRay). Ties: LOC_TIE_FIRST takes the first maximum in row-major order
 *     (np.argmax, what Quantus and TorchRay do), LOC_TIE_ANY hits when any
 *     maximum hits, LOC_TIE_FRACTION gives the fraction of maxima that hit.
 *     Maps post-processed by docs/methods.md section 4 (P1 clips the top 1% to 1)
 *     have many tied maxima, so the tie rule matters there.
 *   - relevance rank accuracy (Arras et al., Quantus): K = |mask|, the share of
 *     the K highest pixels inside the mask; top-k intersection (Theiner et al.,
 *     Quantus): k = round(fraction * H*W), the share of the k highest pixels
 *     inside the mask. Ties at the k-th value count fractionally (the expected
 *     value over random tie-breaking) instead of by an arbitrary sort order.
 *   - energy pointing game (Score-CAM): sum of the map inside / sum of the map;
 *     soft Dice: 2 sum(s*B) / (sum s + sum B), "outside" uses B = 1 - mask.
 *     Both need a map without negative values (post-processed maps are in [0,1]).
 *   - IoU and Dice of {map > threshold} against the mask, the threshold fixed or
 *     Otsu's (skimage's foreground convention: strictly greater).
 */
#ifndef LOCALIZATION_H
#define LOCALIZATION_H

#include "metrics/metrics.h"

#include <stdint.h>

typedef enum loc_tie_rule {
    LOC_TIE_FIRST = 0,   /* first maximum in row-major order (np.argmax) */
    LOC_TIE_ANY = 1,     /* hit when any maximum hits */
    LOC_TIE_FRACTION = 2 /* fraction of the maxima that hit */
} loc_tie_rule;

typedef struct loc_opts {
    loc_tie_rule pointing_tie;   /* LOC_TIE_FIRST */
    double pointing_tolerance;   /* pixels; 0 = the maximum itself (TorchRay uses 15) */
    double topk_fraction;        /* k / (H*W) for top-k intersection; 0.02 (Quantus k=1000 at 224x224) */
    double threshold;            /* fixed binarization threshold for IoU/Dice; 0.5 */
} loc_opts_t;

void loc_opts_default(loc_opts_t *opts);

/* Every localization metric of one map; NaN where undefined. */
typedef struct loc_result {
    double auprc;          /* trapezoidal area under the PR curve (the paper's AUPRC) */
    double ap;             /* average precision */
    double roc_auc;        /* pixel ROC-AUC */
    double pointing;       /* pointing game: 1 hit, 0 miss (or a fraction with LOC_TIE_FRACTION) */
    double energy;         /* energy-based pointing game */
    double rra;            /* relevance rank accuracy */
    double topk;           /* top-k intersection */
    double otsu_threshold; /* Otsu's threshold of the map */
    double iou_otsu, dice_otsu;
    double iou_fixed, dice_fixed;
    double soft_dice_in, soft_dice_out;
} loc_result_t;

/*
 * All of loc_result_t with one scan and one sort of the map. opts may be NULL
 * (defaults). Returns 0 when every field is defined, SC_ERR_UNDEFINED when some
 * are NaN (each cause counted once), SC_ERR_ARG on bad arguments.
 */
int loc_all(metrics_ws_t *ws, const float *map, const uint8_t *mask, const loc_opts_t *opts,
            loc_result_t *out);

int loc_auprc(metrics_ws_t *ws, const float *map, const uint8_t *mask, double *out);
int loc_average_precision(metrics_ws_t *ws, const float *map, const uint8_t *mask, double *out);
int loc_roc_auc(metrics_ws_t *ws, const float *map, const uint8_t *mask, double *out);

int loc_pointing_game(metrics_ws_t *ws, const float *map, const uint8_t *mask, loc_tie_rule tie,
                      double tolerance_px, double *out);
int loc_energy_pointing_game(metrics_ws_t *ws, const float *map, const uint8_t *mask, double *out);
int loc_relevance_rank_accuracy(metrics_ws_t *ws, const float *map, const uint8_t *mask,
                                double *out);
int loc_topk_intersection(metrics_ws_t *ws, const float *map, const uint8_t *mask,
                          double k_fraction, double *out);

/* Otsu's threshold (needs no mask). A constant map is undefined by default;
 * with METRICS_CONSTANT_SCORE it returns the constant, as skimage does. */
int loc_otsu_threshold(metrics_ws_t *ws, const float *map, double *out);
/* IoU and Dice of {map > threshold} against the mask (either output may be NULL). */
int loc_overlap_at(metrics_ws_t *ws, const float *map, const uint8_t *mask, double threshold,
                   double *iou, double *dice);
/* The same at Otsu's threshold. */
int loc_overlap_otsu(metrics_ws_t *ws, const float *map, const uint8_t *mask, double *iou,
                     double *dice);
/* Soft Dice of the map with the mask (outside = 0) or with its complement (outside = 1). */
int loc_soft_dice(metrics_ws_t *ws, const float *map, const uint8_t *mask, int outside,
                  double *out);

#endif /* LOCALIZATION_H */
