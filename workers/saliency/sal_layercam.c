/*
 * sal_layercam.c - LayerCAM (Jiang et al., IEEE TIP 2021; docs/methods.md
 * section 4, pytorch-grad-cam's LayerCAM): at the CAM node, the element-wise
 * product ReLU(dY/dA) * A summed over channels, then as every CAM: ReLU,
 * divided by its max, bilinear (half-pixel) upsampling. One gradient. Raw map
 * [1,H,W] in [0,1]; undefined when the CAM is zero everywhere.
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include "saliency/saliency.h"

static int layercam_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                            const float *x, int target, const float *gray, sal_key_t key,
                            float *raw_out)
{
    sal_cam_pass_t cp;
    int rc = sal_cam_run(ws, "LayerCAM", p->gcam_layer, x, target, &cp);
    if (rc < 0)
        return rc;
    sal_cam_grad_act(ws, &cp, 1);
    return sal_cam_finish(ws, "LayerCAM", ws->cam, cp.lay.h, cp.lay.w, raw_out);
}

const sal_method_t sal_method_layercam = {
    .name = "layercam",
    .summary = "LayerCAM: ReLU(gradient) x activation at the CAM node",
    .needs_model = 1,
    .per_channel = 0,
    .post = SAL_POST_P1,
    .cost = sal_cost_cam,
    .inputs = sal_inputs_one,
    .compute = layercam_compute,
};
