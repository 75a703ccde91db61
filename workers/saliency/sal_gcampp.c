/*
 * sal_gcampp.c - Grad-CAM++ (Chattopadhyay et al. 2018) with the weights of
 * pytorch-grad-cam: alpha_cij = g^2 / (2 g^2 + sum_ij A_c * g^3) (0 where
 * g = 0), w_c = sum_ij alpha_cij * ReLU(g_cij); then as Grad-CAM: ReLU of the
 * weighted sum, divided by its max, bilinear (half-pixel) upsampling.
 * Raw map [1,H,W] in [0,1]; undefined when the CAM is zero everywhere.
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include "saliency/saliency.h"

static int gcampp_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                          const float *x, int target, const float *gray, sal_key_t key,
                          float *raw_out)
{
    return sal_gradcam(ws, x, target, p->gcam_layer, 1, raw_out);
}

const sal_method_t sal_method_gcampp = {
    .name = "gcampp",
    .summary = "Grad-CAM++ (second-order weights)",
    .needs_model = 1,
    .per_channel = 0,
    .post = SAL_POST_P1,
    .cost = sal_cost_cam,
    .inputs = sal_inputs_one,
    .compute = gcampp_compute,
};
