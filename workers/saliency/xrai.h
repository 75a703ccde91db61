/*
 * xrai.h - the region part of XRAI (docs/methods.md section 4, method "xrai"):
 * Felzenszwalb segments of the image at several scales, dilated, then a greedy
 * ranking of the segments by attribution density.
 *
 * Owned by workers/saliency. The attribution itself (Integrated Gradients from
 * the two constant baselines min(x) and max(x), averaged, max over channels)
 * is the caller's; this module turns an image and that [H,W] attribution into
 * the XRAI map, following the published XRAI implementation (PAIR-code
 * `saliency`, core/xrai.py, full algorithm):
 *   segments: the image is rescaled to [range_lo, range_hi] (over all of its
 *     values), resized to resize_h x resize_w as skimage.transform.resize does
 *     (order 3, mode 'constant', anti-aliasing when shrinking, clipped to the
 *     input range), segmented by Felzenszwalb at every scale (sigma, min_size),
 *     each label image resized back to H x W by nearest neighbour, one mask per
 *     label (scale-major, label-minor order), each mask dilated by a disk of
 *     radius dilation_radius (pixels with dx^2+dy^2 <= r^2).
 *   greedy: repeatedly, over the remaining masks in their order, drop those
 *     that would add fewer than min_pixel_diff new pixels and pick the first
 *     one with the highest gain = mean attribution over its not-yet-covered
 *     pixels; its new pixels take that gain as their value. It stops when no
 *     mask remains or the covered fraction exceeds area_threshold; pixels never
 *     covered take the mean attribution over themselves (so the map's sum
 *     equals the attribution's sum).
 * A 1-channel image is treated as the reference treats a 2-D array; a
 * c-channel image as an [H,W,C] array (each channel resized, colour distance
 * over channels).
 */
#ifndef XRAI_H
#define XRAI_H

#include <stddef.h>
#include <stdint.h>

#define XRAI_MAX_SCALES 16

typedef struct xrai_params {
    /* doubles first, then ints: no padding, so two parameter sets can be
     * compared with memcmp */
    double scales[XRAI_MAX_SCALES];  /* default 50, 100, 150, 250, 500, 1200 */
    double sigma;                    /* Felzenszwalb smoothing (default 0.8) */
    double range_lo, range_hi;       /* value range for segmentation (default -1, 1) */
    double area_threshold;           /* stop once this fraction is covered (default 1.0) */
    int n_scales;                    /* Felzenszwalb scales used (default 6) */
    int min_size;                    /* Felzenszwalb min segment size (default 150) */
    int resize_h, resize_w;          /* segmentation size (default 224 x 224); 0 x 0
                                        segments the image at its own size */
    int dilation_radius;             /* disk radius in pixels (default 5; 0 = none; max 32) */
    int min_pixel_diff;              /* skip masks adding fewer new pixels (default 50) */
} xrai_params_t;

/* The paper's / the reference implementation's parameters (above). */
xrai_params_t xrai_params_default(void);

/* Checks a parameter set; logs and returns SC_ERR_ARG naming the bad field. */
int xrai_params_check(const xrai_params_t *params);

/* Workspace for one image size and parameter set: resize buffers, the
 * Felzenszwalb workspace, label images, mask lists and greedy state. The mask
 * lists grow (amortized) when an image has more segment overlap than any
 * before it; nothing else is allocated per image. */
typedef struct xrai_ws xrai_ws_t;

/* Create a workspace for images h x w with c channels. *out is owned by the
 * caller; free it with xrai_ws_destroy. `params` is copied. */
int xrai_ws_create(xrai_ws_t **out, int h, int w, int c, const xrai_params_t *params);
void xrai_ws_destroy(xrai_ws_t *ws);
/* Bytes xrai_ws_create allocates (the mask lists at their initial capacity, which
 * covers an image whose pixels lie in two dilated segments per scale on average). */
size_t xrai_ws_bytes(int h, int w, int c, const xrai_params_t *params);

/*
 * Whole method: segments of `image` ([h,w,c] channels last) then the greedy
 * ranking of `attr` ([h,w]). Writes the XRAI map to `out` ([h,w], caller's)
 * and, when `ranks` is not NULL, each pixel's segment rank (1 = the highest
 * gain; the never-covered rest, if any, ranks last). Returns 0, SC_ERR_ARG for
 * non-finite inputs, or SC_ERR_UNDEFINED for a constant image (no value range
 * to segment).
 */
int xrai_map(xrai_ws_t *ws, const float *image, const float *attr, float *out,
             int32_t *ranks);

/* Segmentation step alone: computes and stores the dilated masks of `image`. */
int xrai_compute_masks(xrai_ws_t *ws, const float *image);

/* Installs n_masks caller-made masks instead (`masks` is [n_masks][h*w], non-zero
 * = inside); they are used in the given order. */
int xrai_set_masks(xrai_ws_t *ws, int n_masks, const uint8_t *masks);

/* Greedy step alone, over the stored masks (see xrai_map for the outputs).
 * When `n_steps` is not NULL it receives the number of masks taken. */
int xrai_rank(xrai_ws_t *ws, const float *attr, float *out, int32_t *ranks, int *n_steps);

/* Inspection, valid after xrai_compute_masks (pointers into the workspace):
 * the image Felzenszwalb saw ([seg_h, seg_w, c]); the label image of scale s at
 * the original size ([h,w]); the number of masks and one mask's pixels
 * (ascending raster indices). */
const double *xrai_segmentation_image(const xrai_ws_t *ws, int *seg_h, int *seg_w);
const int32_t *xrai_scale_labels(const xrai_ws_t *ws, int s);
int xrai_n_masks(const xrai_ws_t *ws);
const int32_t *xrai_mask_pixels(const xrai_ws_t *ws, int m, int *count);

#endif /* XRAI_H */
