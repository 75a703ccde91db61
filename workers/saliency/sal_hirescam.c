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

static double hirescam_cost(const sal_params_t *p, int h, int w) { return 1.0; }

static int hirescam_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                            const float *x, int target, const float *gray, sal_key_t key,
                            float *raw_out)
{
    int id;
    int rc = sal_cam_node(ws, "HiResCAM", p->gcam_layer, &id);
    if (rc < 0)
        return rc;
    rc = sal_gradient(ws, x, target, 0, ws->gb);
    if (rc < 0)
        return rc;
    const nn_node_t *nd = &ws->model->nodes[id];
    const size_t hw = (size_t)nd->h * nd->w;
    const float *A = nn_node_out(ws->model, id), *G = nn_node_grad(ws->model, id);
    for (size_t i = 0; i < hw; i++) {
        double s = 0.0;
        for (int c = 0; c < nd->c; c++)
            s += (double)G[c * hw + i] * A[c * hw + i];
        ws->cam[i] = (float)s;
    }
    return sal_cam_finish(ws, "HiResCAM", ws->cam, nd->h, nd->w, raw_out);
}

const sal_method_t sal_method_hirescam = {
    .name = "hirescam",
    .summary = "HiResCAM: gradient x activation at the CAM node, summed over channels",
    .needs_model = 1,
    .per_channel = 0,
    .post = SAL_POST_P1,
    .cost = hirescam_cost,
    .compute = hirescam_compute,
};
