/*
 * sal_eg.c - Expected Gradients (Erion et al., Nature Machine Intelligence
 * 2021; docs/methods.md section 4): Integrated Gradients with the baseline drawn
 * from the training images and the path position drawn uniformly, one draw
 * of each per sample:
 *   EG(x) = (1/n) sum_j (x - b_j) * g(b_j + alpha_j (x - b_j)),
 *   b_j uniform over the reference images, alpha_j ~ U(0, 1).
 * (Captum's GradientShap with no input noise computes the same expectation.)
 * The reference images are the workspace's (sal_ws_set_baselines): `salcheck
 * run` loads a seeded sample of the training split, `salcheck explain` the
 * PNGs of --baselines DIR. Sample j's draws come from the stream keyed
 * (seed, "eg") with counters (variant, image, j) (sal_eg_draw), so the map
 * does not depend on the batch size, the rank or the order of items. Raw map
 * [C,H,W], signed; cost n gradient evaluations.
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include <string.h>

#include "rng.h"
#include "saliency/saliency.h"
#include "sc.h"

static double eg_cost(const sal_params_t *p, int h, int w) { return p->eg_samples; }

void sal_eg_draw(sal_key_t key, uint32_t sample, int count, int *index, float *alpha)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(key.seed, "eg"), key.variant, key.image, sample);
    *index = (int)rng_stream_below(&rs, (uint32_t)count);
    *alpha = (float)rng_stream_uniform(&rs);
}

typedef struct eg_ctx {
    sal_ws_t *ws;
    const float *x;
    sal_key_t key;
} eg_ctx_t;

static void eg_fill(void *vctx, int k, float *dst)
{
    eg_ctx_t *c = vctx;
    sal_ws_t *ws = c->ws;
    int index;
    float alpha;
    sal_eg_draw(c->key, (uint32_t)k, ws->eg_count, &index, &alpha);
    const float *b = ws->eg_pool + (size_t)index * ws->chw;
    for (size_t i = 0; i < ws->chw; i++)
        dst[i] = b[i] + alpha * (c->x[i] - b[i]);
}

static void eg_consume(void *vctx, int k, const float *grad)
{
    eg_ctx_t *c = vctx;
    sal_ws_t *ws = c->ws;
    int index;
    float alpha;
    sal_eg_draw(c->key, (uint32_t)k, ws->eg_count, &index, &alpha);
    const float *b = ws->eg_pool + (size_t)index * ws->chw;
    for (size_t i = 0; i < ws->chw; i++)
        ws->accd[i] += (double)(c->x[i] - b[i]) * grad[i];
}

static int eg_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                      const float *x, int target, const float *gray, sal_key_t key,
                      float *raw_out)
{
    if (p->eg_samples < 1) {
        SC_ERROR("expected gradients: samples (%d) must be >= 1", p->eg_samples);
        return SC_ERR_ARG;
    }
    if (!ws->eg_pool || ws->eg_count < 1) {
        SC_ERROR("expected gradients needs reference images to draw its baselines from (a run "
                 "loads training images; salcheck explain takes --baselines DIR)");
        return SC_ERR_ARG;
    }
    memset(ws->accd, 0, sizeof(double) * ws->chw);
    eg_ctx_t c = {.ws = ws, .x = x, .key = key};
    int rc = sal_batch_gradients(ws, p->eg_samples, target, 0, eg_fill, eg_consume, &c);
    if (rc < 0)
        return rc;
    const double inv = 1.0 / p->eg_samples;
    for (size_t i = 0; i < ws->chw; i++)
        raw_out[i] = (float)(ws->accd[i] * inv);
    return 0;
}

static int eg_inputs(const sal_params_t *p) { return p->eg_samples; }

const sal_method_t sal_method_eg = {
    .name = "eg",
    .summary = "Expected Gradients: IG from training-image baselines, alpha ~ U(0,1)",
    .needs_model = 1,
    .per_channel = 1,
    .post = SAL_POST_P1,
    .needs_pool = 1,
    .cost = eg_cost,
    .inputs = eg_inputs,
    .compute = eg_compute,
};
