/*
 * sal_rise.c - RISE (Petsiuk et al., BMVC 2018; docs/methods.md section 4):
 * N random masks M_i (sal_rise_mask: an s x s grid of cells kept with
 * probability p, linearly upsampled with a random shift, the authors'
 * generator), and map = sum_i P(x * M_i) M_i / (N p), with P the probability
 * of the explained class: the softmax of the logits (the sigmoid for a
 * single-logit model), as the authors' code appends a softmax to the model.
 * The mask multiplies the normalized input in every channel, as in their code.
 *
 * Mask i of an image comes from the stream keyed (seed, "rise") with counters
 * (variant, image, i), so the map does not depend on the batch size, the rank
 * or the order of items. The masked copies run through the engine as
 * forward-only batches; each mask is generated again when its probability
 * comes back (cheaper than storing N masks). Sums in double. Cost: N + 1
 * forward passes ((N + 1) / 2 gradient evaluations). Raw map [1,H,W] >= 0.
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include <math.h>
#include <string.h>

#include "saliency/saliency.h"
#include "sc.h"

static double rise_cost(const sal_params_t *p, int h, int w) { return (p->rise_masks + 1) / 2.0; }

typedef struct rise_ctx {
    const sal_params_t *p;
    sal_ws_t *ws;
    const float *x;
    sal_key_t key;
    int target;
} rise_ctx_t;

static void rise_fill(void *vctx, int k, float *dst)
{
    rise_ctx_t *c = vctx;
    sal_ws_t *ws = c->ws;
    sal_rise_mask(c->key, (uint32_t)k, c->p->rise_cells, c->p->rise_p, ws->h, ws->w, ws->plane,
                  NULL, NULL);
    for (int ch = 0; ch < ws->c; ch++) {
        const float *xs = c->x + (size_t)ch * ws->hw;
        float *d = dst + (size_t)ch * ws->hw;
        for (size_t i = 0; i < ws->hw; i++)
            d[i] = xs[i] * ws->plane[i];
    }
}

static void rise_consume(void *vctx, int k, const float *logits)
{
    rise_ctx_t *c = vctx;
    sal_ws_t *ws = c->ws;
    double prob;
    if (ws->classes == 1) {
        prob = 1.0 / (1.0 + exp(-(double)logits[0]));
    } else {
        double top = logits[0], sum = 0.0;
        for (int j = 1; j < ws->classes; j++)
            top = logits[j] > top ? logits[j] : top;
        for (int j = 0; j < ws->classes; j++)
            sum += exp(logits[j] - top);
        prob = exp(logits[c->target] - top) / sum;
    }
    sal_rise_mask(c->key, (uint32_t)k, c->p->rise_cells, c->p->rise_p, ws->h, ws->w, ws->plane2,
                  NULL, NULL);
    for (size_t i = 0; i < ws->hw; i++)
        ws->accd[i] += prob * ws->plane2[i];
}

static int rise_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                        const float *x, int target, const float *gray, sal_key_t key,
                        float *raw_out)
{
    if (p->rise_masks < 1 || p->rise_cells < 1 || p->rise_cells > SAL_RISE_MAX_CELLS ||
        p->rise_cells > ws->h || p->rise_cells > ws->w || !(p->rise_p > 0 && p->rise_p <= 1)) {
        SC_ERROR("rise: masks (%d) must be >= 1, cells (%d) in 1..%d and at most the image side "
                 "(%d), p (%g) in (0, 1]", p->rise_masks, p->rise_cells, SAL_RISE_MAX_CELLS,
                 ws->h < ws->w ? ws->h : ws->w, p->rise_p);
        return SC_ERR_ARG;
    }
    memset(ws->accd, 0, sizeof(double) * ws->hw);
    rise_ctx_t c = {.p = p, .ws = ws, .x = x, .key = key, .target = target};
    int rc = sal_batch_logits(ws, p->rise_masks, rise_fill, rise_consume, &c);
    if (rc < 0)
        return rc;
    const double norm = 1.0 / ((double)p->rise_masks * p->rise_p);
    for (size_t i = 0; i < ws->hw; i++)
        raw_out[i] = (float)(ws->accd[i] * norm);
    return 0;
}

static int rise_inputs(const sal_params_t *p) { return p->rise_masks; }

const sal_method_t sal_method_rise = {
    .name = "rise",
    .summary = "RISE: class probability of randomly masked copies, averaged per pixel",
    .needs_model = 1,
    .per_channel = 0,
    .post = SAL_POST_P1,
    .cost = rise_cost,
    .inputs = rise_inputs,
    .compute = rise_compute,
};
