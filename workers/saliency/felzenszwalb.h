/*
 * felzenszwalb.h - Felzenszwalb-Huttenlocher graph segmentation, written to
 * give the same segments as scikit-image's
 * skimage.segmentation.felzenszwalb(image, scale, sigma, min_size).
 *
 * Owned by workers/saliency (XRAI regions, docs/methods.md section 4). The
 * algorithm, step by step as scikit-image 0.19 runs it:
 *   1. Gaussian smoothing of each channel with `sigma` (scipy.ndimage kernel:
 *      radius int(4*sigma+0.5), 'reflect' borders), rows first, then columns.
 *   2. An 8-connected grid graph; an edge weighs the Euclidean distance
 *      between the smoothed colours of its two pixels.
 *   3. Edges sorted by weight (ties keep the order right, down, down-right,
 *      up-right, each in raster order); Kruskal-style merging: two components
 *      merge when the edge weight is below min(Int(C) + k/|C|) over both,
 *      with k = scale/255 and Int(C) the weight of the last edge merged into C.
 *   4. A second pass over the sorted edges merges every component smaller than
 *      min_size into its neighbour.
 *   5. Labels 0..n-1 numbered by each segment's first pixel in raster order.
 */
#ifndef FELZENSZWALB_H
#define FELZENSZWALB_H

#include <stddef.h>
#include <stdint.h>

typedef struct felz_params {
    double scale;  /* observation level; higher gives larger segments (skimage default 1) */
    double sigma;  /* Gaussian pre-smoothing, pixels; 0 disables (default 0.8) */
    int min_size;  /* smallest segment kept, pixels (default 20) */
} felz_params_t;

/* scikit-image's defaults: scale 1, sigma 0.8, min_size 20. */
felz_params_t felz_params_default(void);

/* Workspace for one image size: smoothed image, edge list, sort buffers and
 * the union-find forest. Everything a segmentation needs is allocated here,
 * once; felz_segment allocates nothing (except a larger line buffer the first
 * time a sigma needs more than the workspace was created for). */
typedef struct felz_ws felz_ws_t;

/* Create a workspace for images of h x w pixels with c channels (c >= 1).
 * On success *out owns the workspace; free it with felz_ws_destroy. */
int felz_ws_create(felz_ws_t **out, int h, int w, int c);
void felz_ws_destroy(felz_ws_t *ws);
/* Bytes felz_ws_create(h, w, c) allocates. */
size_t felz_ws_bytes(int h, int w, int c);

/*
 * Segment `image` ([h,w,c] row-major, channels last, any range; scikit-image
 * works on float images as given, so pass values already scaled the way the
 * reference caller scales them) into labels [h,w] (caller-owned buffer).
 * Returns the number of segments (>= 1) or a negative sc_err.
 */
int felz_segment(felz_ws_t *ws, const double *image, const felz_params_t *params,
                 int32_t *labels);

/*
 * The same in two parts, for several scales of one image (XRAI's six):
 * felz_prepare does steps 1-3's image-only work (smoothing, edge weights, the
 * sorted edge order) once; felz_segment_prepared then runs the merging
 * (steps 3-5) for one scale and min_size, as often as needed, with the sigma
 * the image was prepared with (SC_ERR_ARG otherwise). felz_segment is
 * felz_prepare followed by felz_segment_prepared; the labels are identical.
 */
int felz_prepare(felz_ws_t *ws, const double *image, double sigma);
int felz_segment_prepared(felz_ws_t *ws, const felz_params_t *params, int32_t *labels);

/*
 * The Gaussian kernel scipy.ndimage.gaussian_filter1d uses: radius
 * r = int(truncate*sigma + 0.5), weights exp(-x^2/(2 sigma^2)) for x=-r..r
 * normalized by their sum (summed the way numpy sums). Writes 2r+1 weights to
 * `weights` (room for max_len) and returns r, or SC_ERR_ARG when it does not
 * fit or sigma <= 0.
 */
int felz_gaussian_kernel(double sigma, double truncate, double *weights, int max_len);

/*
 * One 1-D correlation with a symmetric kernel as scipy.ndimage.correlate1d
 * computes it (same summation order): `ext` holds the line with r extension
 * values on each side (len + 2r values), `out` receives len values.
 */
void felz_correlate_symmetric(const double *ext, int len, const double *weights, int r,
                              double *out);

#endif /* FELZENSZWALB_H */
