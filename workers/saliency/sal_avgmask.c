/*
 * sal_avgmask.c - the average-mask baseline (docs/methods.md section 6): the
 * per-pixel frequency of lying inside the ground truth over the training
 * positives, the same map for every image. The caller computes it from the
 * data set and hands it over once with sal_ws_set_avgmask. Raw map [1,H,W].
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include <string.h>

#include "saliency/saliency.h"
#include "sc.h"

static double avgmask_cost(const sal_params_t *p, int h, int w) { return 0.0; }

static int avgmask_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                           const float *x, int target, const float *gray, sal_key_t key,
                           float *raw_out)
{
    if (!ws->avgmask) {
        SC_ERROR("avgmask: no average training mask was given (sal_ws_set_avgmask)");
        return SC_ERR_ARG;
    }
    memcpy(raw_out, ws->avgmask, sizeof(float) * ws->hw);
    return 0;
}

const sal_method_t sal_method_avgmask = {
    .name = "avgmask",
    .summary = "average ground-truth mask of the training positives (baseline, no model)",
    .needs_model = 0,
    .per_channel = 0,
    .post = SAL_POST_P1,
    .cost = avgmask_cost,
    .inputs = sal_inputs_none,
    .compute = avgmask_compute,
};
