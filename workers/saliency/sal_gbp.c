/*
 * sal_gbp.c - Guided Backprop (docs/methods.md section 4, "gbp"; Springenberg et
 * al. 2015): the input gradient of a backward pass in which every ReLU passes
 * grad * [grad > 0] * [out > 0]. Raw map [C,H,W], signed.
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include "saliency/saliency.h"

static double gbp_cost(const sal_params_t *p, int h, int w) { return 1.0; }

static int gbp_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                       const float *x, int target, const float *gray, sal_key_t key,
                       float *raw_out)
{
    return sal_gradient(ws, x, target, 1, raw_out);
}

const sal_method_t sal_method_gbp = {
    .name = "gbp",
    .summary = "Guided Backprop (guided ReLU backward pass)",
    .needs_model = 1,
    .per_channel = 1,
    .post = SAL_POST_P1,
    .cost = gbp_cost,
    .inputs = sal_inputs_one,
    .compute = gbp_compute,
};
