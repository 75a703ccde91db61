/*
 * sal_sobel.c - the edge control map (model-free): the Sobel edge magnitude
 * of the gray image, as scikit-image's filters.sobel computes it:
 * sqrt((Gx^2 + Gy^2) / 2) with the derivative [1, 0, -1] along one axis and
 * the smoothing [1, 2, 1] / 4 along the other, 'reflect' borders (scipy's
 * half-sample symmetric extension: d c b a | a b c d). Raw map [1,H,W].
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include <math.h>

#include "saliency/saliency.h"
#include "sc.h"

static double sobel_cost(const sal_params_t *p, int h, int w) { return 0.0; }

/* scipy 'reflect' for an offset of at most one pixel outside [0, n). */
static inline int reflect1(int i, int n)
{
    if (i < 0)
        return n > 1 ? -i - 1 : 0;
    if (i >= n)
        return n > 1 ? 2 * n - i - 1 : n - 1;
    return i;
}

static int sobel_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                         const float *x, int target, const float *gray, sal_key_t key,
                         float *raw_out)
{
    if (!gray) {
        SC_ERROR("sobel: the gray image is needed");
        return SC_ERR_ARG;
    }
    const int h = ws->h, w = ws->w;
    for (int y = 0; y < h; y++) {
        const float *up = gray + (size_t)reflect1(y - 1, h) * w;
        const float *mid = gray + (size_t)y * w;
        const float *dn = gray + (size_t)reflect1(y + 1, h) * w;
        for (int i = 0; i < w; i++) {
            int l = reflect1(i - 1, w), r = reflect1(i + 1, w);
            /* d/dy: difference of rows, smoothed along x; d/dx: the transpose. */
            double gy = ((double)dn[l] - up[l] + 2.0 * ((double)dn[i] - up[i]) +
                         ((double)dn[r] - up[r])) / 4.0;
            double gx = ((double)up[r] - up[l] + 2.0 * ((double)mid[r] - mid[l]) +
                         ((double)dn[r] - dn[l])) / 4.0;
            raw_out[(size_t)y * w + i] = (float)sqrt((gx * gx + gy * gy) / 2.0);
        }
    }
    return 0;
}

const sal_method_t sal_method_sobel = {
    .name = "sobel",
    .summary = "Sobel edge magnitude of the image (control, no model)",
    .needs_model = 0,
    .per_channel = 0,
    .post = SAL_POST_P1,
    .cost = sobel_cost,
    .inputs = sal_inputs_none,
    .compute = sobel_compute,
};
