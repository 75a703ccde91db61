/*
 * sal_xrai.c - XRAI (docs/methods.md section 4, "xrai"; Kapishnikov et al. 2019,
 * the full algorithm of PAIR's saliency library): Integrated Gradients with
 * xrai_steps points from two constant baselines, min(x) and max(x), averaged,
 * the max over channels as the attribution [H,W]; then the region part
 * (xrai.h): Felzenszwalb segments of x at six scales, dilated, ranked
 * greedily by attribution density. The segmentation sees the model input x
 * as an [H,W,C] image, as the reference implementation does. Raw map [1,H,W].
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include <string.h>

#include "saliency/sal_cascade.h"
#include "saliency/saliency.h"
#include "sc.h"

static double xrai_cost(const sal_params_t *p, int h, int w) { return 2.0 * p->xrai_steps; }

static int xrai_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                        const float *x, int target, const float *gray, sal_key_t key,
                        float *raw_out)
{
    int rc = 0;
    const int shared = ws->cascade && ws->cascade_slot >= 0;
    if (!shared && (!ws->xrai || memcmp(&ws->xrai_params, &p->xrai, sizeof p->xrai))) {
        /* Created once per workspace (or again when the parameters change). */
        xrai_ws_destroy(ws->xrai);
        ws->xrai = NULL;
        CHECK_RC(xrai_ws_create(&ws->xrai, ws->h, ws->w, ws->c, &p->xrai));
        ws->xrai_params = p->xrai;
    }
    /* The two IG maps: ws->map_a (from min(x)), ws->map_b (from max(x)). */
    sal_fill_baseline(ws, x, SAL_BASELINE_MIN, 0.0);
    CHECK_RC(sal_integrated_gradients(ws, x, ws->base, p->xrai_steps, p->ig_rule, target,
                                      ws->map_a));
    sal_fill_baseline(ws, x, SAL_BASELINE_MAX, 0.0);
    CHECK_RC(sal_integrated_gradients(ws, x, ws->base, p->xrai_steps, p->ig_rule, target,
                                      ws->map_b));
    /* Mean over the baselines, then max over channels. */
    for (size_t i = 0; i < ws->hw; i++) {
        float best = 0.5f * (ws->map_a[i] + ws->map_b[i]);
        for (int c = 1; c < ws->c; c++) {
            size_t j = (size_t)c * ws->hw + i;
            float v = 0.5f * (ws->map_a[j] + ws->map_b[j]);
            best = v > best ? v : best;
        }
        ws->plane[i] = best;
    }
    /* x as an [H,W,C] image (channels last) for the segmentation. */
    for (size_t i = 0; i < ws->hw; i++)
        for (int c = 0; c < ws->c; c++)
            ws->xn[i * ws->c + c] = x[(size_t)c * ws->hw + i];
    if (shared) {
        /* a cascade state: the segmentation of x is the other states' (sal_cascade.h) */
        xrai_ws_t *xw = NULL;
        rc = sal_cascade_xrai(ws, &p->xrai, ws->xn, &xw);
        if (rc == 0)
            rc = xrai_rank(xw, ws->plane, raw_out, NULL, NULL);
    } else {
        rc = xrai_map(ws->xrai, ws->xn, ws->plane, raw_out, NULL);
    }
    if (rc == SC_ERR_UNDEFINED)
        sal_fill_nan(raw_out, ws->hw);
cleanup:
    return rc;
}

static int xrai_inputs(const sal_params_t *p) { return p->xrai_steps; }

const sal_method_t sal_method_xrai = {
    .name = "xrai",
    .summary = "XRAI: IG attribution ranked over Felzenszwalb regions",
    .needs_model = 1,
    .per_channel = 0,
    .post = SAL_POST_P1,
    .cost = xrai_cost,
    .inputs = xrai_inputs,
    .compute = xrai_compute,
};
