/*
 * sal_sg.c - SmoothGrad (docs/methods.md section 4, "sg"; Smilkov et al. 2017):
 * the mean over n samples of g(x + e)^2 (the paper's "magnitude" variant) or
 * of g(x + e) (sg_squared = 0, as Adebayo et al.), with e ~ N(0, s^2) i.i.d.
 * per pixel and channel and s = sg_noise * (max(x) - min(x)). Raw map
 * [C,H,W]. The samples run through the engine as batches; sample j's noise
 * comes from the stream keyed (seed, "sg") with counters (variant, image, j),
 * so the map does not depend on the batch size.
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include <string.h>

#include "saliency/saliency.h"
#include "sc.h"

static double sg_cost(const sal_params_t *p, int h, int w) { return p->sg_samples; }

typedef struct sg_ctx {
    const float *x;
    size_t chw;
    float sigma;
    sal_key_t key;
    int squared;
    float *acc;
} sg_ctx_t;

static void sg_fill(void *vctx, int k, float *dst)
{
    sg_ctx_t *c = vctx;
    sal_noise("sg", c->key, (uint32_t)k, c->sigma, c->chw, dst);
    for (size_t i = 0; i < c->chw; i++)
        dst[i] += c->x[i];
}

static void sg_consume(void *vctx, int k, const float *grad)
{
    sg_ctx_t *c = vctx;
    if (c->squared)
        for (size_t i = 0; i < c->chw; i++)
            c->acc[i] += grad[i] * grad[i];
    else
        for (size_t i = 0; i < c->chw; i++)
            c->acc[i] += grad[i];
}

static int sg_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                      const float *x, int target, const float *gray, sal_key_t key,
                      float *raw_out)
{
    if (p->sg_samples < 1 || !(p->sg_noise >= 0)) {
        SC_ERROR("smoothgrad: samples (%d) must be >= 1 and the noise level (%g) >= 0",
                 p->sg_samples, p->sg_noise);
        return SC_ERR_ARG;
    }
    sg_ctx_t c = {.x = x, .chw = ws->chw, .sigma = sal_noise_sigma(p, x, ws->chw), .key = key,
                  .squared = p->sg_squared, .acc = raw_out};
    memset(raw_out, 0, sizeof(float) * ws->chw);
    int rc = sal_batch_gradients(ws, p->sg_samples, target, 0, sg_fill, sg_consume, &c);
    if (rc < 0)
        return rc;
    const float inv = 1.0f / (float)p->sg_samples;
    for (size_t i = 0; i < ws->chw; i++)
        raw_out[i] *= inv;
    return 0;
}

static int sg_inputs(const sal_params_t *p) { return p->sg_samples; }

const sal_method_t sal_method_sg = {
    .name = "sg",
    .summary = "SmoothGrad: mean squared gradient over noisy copies",
    .needs_model = 1,
    .per_channel = 1,
    .post = SAL_POST_P1,
    .cost = sg_cost,
    .inputs = sg_inputs,
    .compute = sg_compute,
};
