/*
 * hog.h - histogram of oriented gradients of a map, as skimage.feature.hog (module common/metrics).
 *
 * Used for the HOG similarity of two maps (Adebayo et al. 2018; docs/methods.md
 * section 5): HOG features of each map, then Spearman's rank correlation
 * (sim_hog in similarity.h).
 *
 * hog_features reproduces skimage.feature.hog(image, orientations,
 * pixels_per_cell, cells_per_block, block_norm, transform_sqrt=False,
 * feature_vector=True) of scikit-image 0.19 for a 2-D float64 image, including
 * its details: gradients by central differences with zero rows/columns at the
 * border, orientation = rad2deg(arctan2(g_row, g_col)) % 180 binned as
 * [180/n * i, 180/n * (i+1)), cell sums accumulated in single precision (as
 * skimage's Cython kernel does) and divided by the cell area, blocks normalized
 * with eps = 1e-5, feature order (block row, block col, cell row, cell col,
 * orientation). Pixels beyond the last whole cell are ignored. (skimage run on
 * a float32 image returns float32 features, 3e-8 away from these.)
 * The parameters come from the workspace (metrics_ws_create_hog).
 */
#ifndef HOG_H
#define HOG_H

#include "metrics/metrics.h"

#include <stddef.h>

/* Number of HOG features of an h x w image, 0 when it is smaller than one block. */
size_t hog_feature_count(int h, int w, const hog_params_t *params);

/*
 * HOG features of one map [H*W] into features[hog_feature_count] (caller-owned).
 * Returns 0; SC_ERR_UNDEFINED (features set to NaN) for a non-finite map value
 * or a constant map under METRICS_CONSTANT_UNDEFINED; SC_ERR_ARG when the map
 * is smaller than one block. Allocates nothing.
 */
int hog_features(metrics_ws_t *ws, const float *map, double *features);

/* Features of the workspace's parameters: its count (0 = map too small). */
size_t hog_ws_feature_count(const metrics_ws_t *ws);

#endif /* HOG_H */
