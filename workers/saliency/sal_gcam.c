/*
 * sal_gcam.c - Grad-CAM (docs/methods.md section 4, "gcam"; Selvaraju et al.
 * 2017) at the model's Grad-CAM node (InceptionV3: mixed10) or the node named
 * by gcam_layer: w_c = mean_ij dY/dA_cij, cam = ReLU(sum_c w_c A_c), divided
 * by its max, upsampled to the input size by bilinear interpolation with
 * half-pixel centres (cv2.resize INTER_LINEAR, as pytorch-grad-cam does).
 * Raw map [1,H,W] in [0,1]; undefined (NaN, SC_ERR_UNDEFINED) when the CAM
 * is zero everywhere.
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include "saliency/saliency.h"

static int gcam_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                        const float *x, int target, const float *gray, sal_key_t key,
                        float *raw_out)
{
    return sal_gradcam(ws, x, target, p->gcam_layer, 0, raw_out);
}

const sal_method_t sal_method_gcam = {
    .name = "gcam",
    .summary = "Grad-CAM at the last convolutional block",
    .needs_model = 1,
    .per_channel = 0,
    .post = SAL_POST_P1,
    .cost = sal_cost_cam,
    .inputs = sal_inputs_one,
    .compute = gcam_compute,
};
