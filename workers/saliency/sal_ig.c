/*
 * sal_ig.c - Integrated Gradients (docs/methods.md section 4, "ig"; Sundararajan
 * et al. 2017): IG(x) = (x - b) * sum_k w_k g(b + a_k (x - b)) with the
 * paper's S = 10 points a_k = linspace(0, 1, S) and w_k = 1/S, baseline b = a
 * black image (-1 under the inception normalization). The rule (Riemann
 * left/right/midpoint, trapezoid, Gauss-Legendre) and the baseline (black,
 * constant, min(x), max(x)) are options. Raw map [C,H,W]; the S path points
 * run through the engine as batches.
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include "saliency/saliency.h"

static double ig_cost(const sal_params_t *p, int h, int w) { return p->ig_steps; }

static int ig_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                      const float *x, int target, const float *gray, sal_key_t key,
                      float *raw_out)
{
    sal_fill_baseline(ws, x, p->ig_baseline, p->ig_baseline_value);
    return sal_integrated_gradients(ws, x, ws->base, p->ig_steps, p->ig_rule, target, raw_out);
}

static int ig_inputs(const sal_params_t *p) { return p->ig_steps; }

const sal_method_t sal_method_ig = {
    .name = "ig",
    .summary = "Integrated Gradients from a constant baseline",
    .needs_model = 1,
    .per_channel = 1,
    .post = SAL_POST_P1,
    .cost = ig_cost,
    .inputs = ig_inputs,
    .compute = ig_compute,
};
