/*
 * sal_gxi.c - gradient x input (Shrikumar et al.; Captum's InputXGradient):
 * the raw map is x * g(x), elementwise, per channel [C,H,W].
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include "saliency/saliency.h"

static double gxi_cost(const sal_params_t *p, int h, int w) { return 1.0; }

static int gxi_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                       const float *x, int target, const float *gray, sal_key_t key,
                       float *raw_out)
{
    int rc = sal_gradient(ws, x, target, 0, raw_out);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < ws->chw; i++)
        raw_out[i] *= x[i];
    return 0;
}

const sal_method_t sal_method_gxi = {
    .name = "gxi",
    .summary = "gradient times input",
    .needs_model = 1,
    .per_channel = 1,
    .post = SAL_POST_P1,
    .cost = gxi_cost,
    .inputs = sal_inputs_one,
    .compute = gxi_compute,
};
