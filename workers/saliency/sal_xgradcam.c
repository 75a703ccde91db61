/*
 * sal_xgradcam.c - XGrad-CAM (Fu et al., BMVC 2020; docs/methods.md section 4,
 * pytorch-grad-cam's XGradCAM): channel weights
 * w_c = sum_ij dY/dA_cij * A_cij / (sum_ij A_cij + 1e-7), cam = sum_c w_c A_c,
 * then as every CAM: ReLU, divided by its max, bilinear (half-pixel)
 * upsampling. One gradient. Raw map [1,H,W] in [0,1]; undefined when the CAM
 * is zero everywhere.
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include "saliency/saliency.h"

static int xgradcam_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                            const float *x, int target, const float *gray, sal_key_t key,
                            float *raw_out)
{
    sal_cam_pass_t cp;
    int rc = sal_cam_run(ws, "XGrad-CAM", p->gcam_layer, x, target, &cp);
    if (rc < 0)
        return rc;
    /* channel c at grid position i: A[c * cs + i * ps] (a map, or tokens on their grid) */
    const sal_cam_layout_t lay = cp.lay;
    const size_t hw = (size_t)lay.h * lay.w, cs = lay.c_stride, ps = lay.pos_stride;
    const float *A = cp.A, *G = cp.G;
    for (int c = 0; c < lay.c; c++) {
        const float *a = A + c * cs, *g = G + c * cs;
        double sum_a = 0.0, sum_ga = 0.0;
        for (size_t i = 0; i < hw; i++) {
            sum_a += a[i * ps];
            sum_ga += (double)g[i * ps] * a[i * ps];
        }
        /* pytorch-grad-cam's eps keeps an all-zero channel (after a ReLU) at weight 0. */
        ws->chan[c] = sum_ga / (sum_a + 1e-7);
    }
    sal_cam_weigh(ws, &cp);
    return sal_cam_finish(ws, "XGrad-CAM", ws->cam, lay.h, lay.w, raw_out);
}

const sal_method_t sal_method_xgradcam = {
    .name = "xgradcam",
    .summary = "XGrad-CAM: activation-weighted gradient channel weights",
    .needs_model = 1,
    .per_channel = 0,
    .post = SAL_POST_P1,
    .cost = sal_cost_cam,
    .inputs = sal_inputs_one,
    .compute = xgradcam_compute,
};
