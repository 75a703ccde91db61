/*
 * sal_grad.c - vanilla gradient (docs/methods.md section 4, "grad"): the raw map
 * is g(x) = d logit_target / dx, signed, per channel [C,H,W].
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include "saliency/saliency.h"

static double grad_cost(const sal_params_t *p, int h, int w) { return 1.0; }

static int grad_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                        const float *x, int target, const float *gray, sal_key_t key,
                        float *raw_out)
{
    return sal_gradient(ws, x, target, 0, raw_out);
}

const sal_method_t sal_method_grad = {
    .name = "grad",
    .summary = "vanilla gradient of the explained logit",
    .needs_model = 1,
    .per_channel = 1,
    .post = SAL_POST_P1,
    .cost = grad_cost,
    .inputs = sal_inputs_one,
    .compute = grad_compute,
};
