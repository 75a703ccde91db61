/*
 * sal_hirescam.c - HiResCAM (Draelos & Carin 2020; docs/methods.md section 4,
 * pytorch-grad-cam's HiResCAM): at the CAM node, the element-wise product
 * dY/dA * A summed over channels (Grad-CAM without the spatial mean of the
 * gradient), then as every CAM: ReLU, divided by its max, bilinear
 * (half-pixel) upsampling. One gradient. Raw map [1,H,W] in [0,1]; undefined
 * when the CAM is zero everywhere.
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include "saliency/saliency.h"

static int hirescam_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                            const float *x, int target, const float *gray, sal_key_t key,
                            float *raw_out)
{
    sal_cam_pass_t cp;
    int rc = sal_cam_run(ws, "HiResCAM", p->gcam_layer, x, target, &cp);
    if (rc < 0)
        return rc;
    sal_cam_grad_act(ws, &cp, 0);
    return sal_cam_finish(ws, "HiResCAM", ws->cam, cp.lay.h, cp.lay.w, raw_out);
}

const sal_method_t sal_method_hirescam = {
    .name = "hirescam",
    .summary = "HiResCAM: gradient x activation at the CAM node, summed over channels",
    .needs_model = 1,
    .per_channel = 0,
    .post = SAL_POST_P1,
    .cost = sal_cost_cam,
    .inputs = sal_inputs_one,
    .compute = hirescam_compute,
};
