/*
 * sal_ggcam.c - Guided Grad-CAM (docs/methods.md section 4, "ggcam"; Selvaraju
 * et al. 2017) in the paper's form: the product of the P1-processed Guided
 * Backprop map and the P1-processed Grad-CAM map. Raw map [1,H,W] (already in
 * [0,1]); its post-processing is P2 (min-max), which completes the paper's
 * "multiply two P1 maps, then P2". Undefined when either map is.
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include "saliency/postproc.h"
#include "saliency/saliency.h"
#include "sc.h"

/* Guided Backprop's gradient (1) and a Grad-CAM pass (sal_cost_cam). */
static double ggcam_cost(const sal_params_t *p, int h, int w) { return 1.0 + sal_cost_cam(p, h, w); }

static int ggcam_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                         const float *x, int target, const float *gray, sal_key_t key,
                         float *raw_out)
{
    int rc = sal_gradient(ws, x, target, 1, ws->map_a);
    if (rc < 0)
        return rc;
    rc = sal_gradcam(ws, x, target, p->gcam_layer, 0, ws->map_b);
    if (rc == SC_OK)
        rc = postproc_p1(ws->post, ws->map_a, ws->c, POSTPROC_CHW, ws->plane);
    if (rc == SC_OK)
        rc = postproc_p1(ws->post, ws->map_b, 1, POSTPROC_CHW, ws->plane2);
    if (rc == SC_ERR_UNDEFINED) {
        sal_fill_nan(raw_out, ws->hw);
        return rc;
    }
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < ws->hw; i++)
        raw_out[i] = ws->plane[i] * ws->plane2[i];
    return 0;
}

const sal_method_t sal_method_ggcam = {
    .name = "ggcam",
    .summary = "Guided Grad-CAM: P1(gbp) x P1(gcam), then min-max",
    .needs_model = 1,
    .per_channel = 0,
    .post = SAL_POST_P2,
    .cost = ggcam_cost,
    .inputs = sal_inputs_one,
    .compute = ggcam_compute,
};
