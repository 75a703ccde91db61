/*
 * sal_random.c - the random control map (model-free): uniform noise in [0, 1)
 * per pixel, from the stream keyed (seed, "random") with counters
 * (variant, image, 0), so the same image gets the same map on any rank.
 * Raw map [1,H,W].
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include "rng.h"
#include "saliency/saliency.h"

static double random_cost(const sal_params_t *p, int h, int w) { return 0.0; }

static int random_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                          const float *x, int target, const float *gray, sal_key_t key,
                          float *raw_out)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(key.seed, "random"), key.variant, key.image, 0);
    for (size_t i = 0; i < ws->hw; i++)
        raw_out[i] = (float)rng_stream_uniform(&rs);
    return 0;
}

const sal_method_t sal_method_random = {
    .name = "random",
    .summary = "uniform random map (control, no model)",
    .needs_model = 0,
    .per_channel = 0,
    .post = SAL_POST_P1,
    .cost = random_cost,
    .inputs = sal_inputs_none,
    .compute = random_compute,
};
