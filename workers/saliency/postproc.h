/*
 * postproc.h - the paper's post-processing of saliency maps before every
 * metric (docs/methods.md section 4, "Post-processing before every metric").
 *
 * Owned by workers/saliency.
 *   P1: s = sum over channels of |m| -> [H,W]; out = clip((s - min) / (p99 - min), 0, 1)
 *       with p99 the 99th percentile of s by linear interpolation at rank
 *       0.99*(N-1) (numpy.percentile's default).
 *   P2: min-max to [0, 1].
 *   Guided Grad-CAM: P2(P1(gbp) * P1(gcam)).
 * A map whose normalization would divide by zero (constant map, or p99 equal
 * to the minimum) or that holds non-finite values is undefined: the output is
 * filled with NaN and SC_ERR_UNDEFINED is returned, so the caller can count it.
 * Sums and normalizations run in double; outputs are float32.
 */
#ifndef POSTPROC_H
#define POSTPROC_H

#include <stddef.h>

/* Where the channel axis of a multi-channel map is. */
typedef enum postproc_layout {
    POSTPROC_CHW = 0, /* [c][h][w] */
    POSTPROC_HWC = 1  /* [h][w][c] */
} postproc_layout_t;

/* Scratch buffers for maps of h x w pixels, sized once. */
typedef struct postproc_ws postproc_ws_t;

/* Create a workspace for h x w maps; free it with postproc_ws_destroy. */
int postproc_ws_create(postproc_ws_t **out, int h, int w);
void postproc_ws_destroy(postproc_ws_t *ws);

/*
 * q-th percentile (0 <= q <= 100) of x[0..n-1] with numpy's default 'linear'
 * method (virtual index (n-1)*q/100, interpolated the way numpy does), by
 * selection in O(n) expected time. x is not modified; n must not exceed the
 * workspace's h*w. Returns 0 or SC_ERR_ARG.
 */
int postproc_percentile(postproc_ws_t *ws, const double *x, size_t n, double q, double *result);

/* P1 of a c-channel map (layout as given) into out [h,w] (caller's buffer). */
int postproc_p1(postproc_ws_t *ws, const float *map, int c, postproc_layout_t layout, float *out);

/* P2 (min-max) of a one-channel map [h,w] into out [h,w] (may alias map). */
int postproc_p2(postproc_ws_t *ws, const float *map, float *out);

/* Guided Grad-CAM: P2(P1(gbp) * P1(gcam)); gbp has c_gbp channels, gcam c_gcam
 * (usually 1), same layout; out [h,w]. */
int postproc_ggcam(postproc_ws_t *ws, const float *gbp, int c_gbp, const float *gcam,
                   int c_gcam, postproc_layout_t layout, float *out);

#endif /* POSTPROC_H */
