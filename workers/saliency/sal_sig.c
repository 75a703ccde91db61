/*
 * sal_sig.c - SmoothGrad of Integrated Gradients (docs/methods.md section 4,
 * "sig"): the mean over sig_samples noisy copies x + e of IG(x + e)^2 (or of
 * IG(x + e) when sig_squared = 0). The baseline is computed from x and is not
 * noised; the noise is SmoothGrad's (sigma = sg_noise * (max(x) - min(x)))
 * from the stream keyed (seed, "sig") with counters (variant, image, sample).
 * Raw map [C,H,W]; each copy's IG steps run through the engine as batches.
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include <string.h>

#include "saliency/saliency.h"
#include "sc.h"

static double sig_cost(const sal_params_t *p, int h, int w)
{
    return (double)p->sig_samples * p->ig_steps;
}

static int sig_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                       const float *x, int target, const float *gray, sal_key_t key,
                       float *raw_out)
{
    if (p->sig_samples < 1 || !(p->sg_noise >= 0)) {
        SC_ERROR("smoothgrad of IG: samples (%d) must be >= 1 and the noise level (%g) >= 0",
                 p->sig_samples, p->sg_noise);
        return SC_ERR_ARG;
    }
    const float sigma = sal_noise_sigma(p, x, ws->chw);
    sal_fill_baseline(ws, x, p->ig_baseline, p->ig_baseline_value);
    memset(raw_out, 0, sizeof(float) * ws->chw);
    for (int j = 0; j < p->sig_samples; j++) {
        sal_noise("sig", key, (uint32_t)j, sigma, ws->chw, ws->xn);
        for (size_t i = 0; i < ws->chw; i++)
            ws->xn[i] += x[i];
        int rc = sal_integrated_gradients(ws, ws->xn, ws->base, p->ig_steps, p->ig_rule, target,
                                          ws->acc2);
        if (rc < 0)
            return rc;
        if (p->sig_squared)
            for (size_t i = 0; i < ws->chw; i++)
                raw_out[i] += ws->acc2[i] * ws->acc2[i];
        else
            for (size_t i = 0; i < ws->chw; i++)
                raw_out[i] += ws->acc2[i];
    }
    const float inv = 1.0f / (float)p->sig_samples;
    for (size_t i = 0; i < ws->chw; i++)
        raw_out[i] *= inv;
    return 0;
}

static int sig_inputs(const sal_params_t *p) { return p->ig_steps; }

const sal_method_t sal_method_sig = {
    .name = "sig",
    .summary = "SmoothGrad of Integrated Gradients",
    .needs_model = 1,
    .per_channel = 1,
    .post = SAL_POST_P1,
    .cost = sig_cost,
    .inputs = sig_inputs,
    .compute = sig_compute,
};
