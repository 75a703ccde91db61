/*
 * sal_scorecam.c - Score-CAM (Wang et al., CVPR workshops 2020; docs/methods.md
 * section 4) as pytorch-grad-cam's ScoreCAM defines it: each channel A_k of
 * the CAM node is upsampled to the input size (bilinear, align_corners=True,
 * torch.nn.UpsamplingBilinear2d), min-max normalized, M_k = (U_k - min) /
 * (max - min + 1e-8), and multiplies the input (every channel); the channel
 * weights are the softmax over k of the explained logit f(x * M_k); cam =
 * sum_k w_k A_k, then as every CAM: ReLU, divided by its max, bilinear
 * (half-pixel) upsampling. (The paper's weights are the increase of the
 * softmax probability over a baseline; pytorch-grad-cam, the tool users
 * compare with, uses the softmax over channels of the logits.)
 *
 * Cost: one forward pass per channel of the CAM node (K/2 gradient
 * evaluations; 1024 for InceptionV3's mixed10) plus the pass that gives A.
 * The masked copies run through the engine as forward-only batches. Raw map
 * [1,H,W] in [0,1]; undefined when the CAM is zero everywhere.
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include <math.h>
#include <string.h>

#include "saliency/saliency.h"
#include "sc.h"

/* Channels when the model is not known (a ResNet-50/DenseNet-sized last block). */
#define SCORECAM_CHANNELS_UNKNOWN 1024

static double scorecam_cost(const sal_params_t *p, int h, int w)
{
    return (SCORECAM_CHANNELS_UNKNOWN + 1) / 2.0;
}

static double scorecam_model_cost(const sal_params_t *p, const nn_model_t *m)
{
    const char *layer = p->gcam_layer[0] ? p->gcam_layer : m->gradcam_layer;
    int id = nn_find(m, layer);
    sal_cam_layout_t lay;
    int k = id <= 0 ? SCORECAM_CHANNELS_UNKNOWN
            : sal_cam_tokens(&m->nodes[id], &lay) ? lay.c : m->nodes[id].c;
    return (k + 1) / 2.0;
}

typedef struct scorecam_ctx {
    sal_ws_t *ws;
    const float *x;
    int h, w;      /* the CAM grid */
    int target;
} scorecam_ctx_t;

static void scorecam_fill(void *vctx, int k, float *dst)
{
    scorecam_ctx_t *c = vctx;
    sal_ws_t *ws = c->ws;
    const size_t hw = (size_t)c->h * c->w;
    float *up = ws->plane;
    sal_resize_bilinear_corners(ws->act + (size_t)k * hw, c->h, c->w, up, ws->h, ws->w);
    float lo = up[0], hi = up[0];
    for (size_t i = 1; i < ws->hw; i++) {
        lo = up[i] < lo ? up[i] : lo;
        hi = up[i] > hi ? up[i] : hi;
    }
    const float scale = 1.0f / (hi - lo + 1e-8f);
    for (size_t i = 0; i < ws->hw; i++)
        up[i] = (up[i] - lo) * scale;
    for (int ch = 0; ch < ws->c; ch++) {
        const float *xs = c->x + (size_t)ch * ws->hw;
        float *d = dst + (size_t)ch * ws->hw;
        for (size_t i = 0; i < ws->hw; i++)
            d[i] = xs[i] * up[i];
    }
}

static void scorecam_consume(void *vctx, int k, const float *logits)
{
    scorecam_ctx_t *c = vctx;
    c->ws->chan[k] = logits[c->target];
}

static int scorecam_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                            const float *x, int target, const float *gray, sal_key_t key,
                            float *raw_out)
{
    sal_cam_pass_t cp;
    int rc = sal_cam_run(ws, "Score-CAM", p->gcam_layer, x, -1, &cp);
    if (rc < 0)
        return rc;
    const sal_cam_layout_t lay = cp.lay;
    const size_t hw = (size_t)lay.h * lay.w;
    /* The batched passes below overwrite the node's output: keep A, as [c, h*w] planes
     * (tokens laid on their grid). */
    const float *A = cp.A;
    for (int k = 0; k < lay.c; k++)
        for (size_t i = 0; i < hw; i++)
            ws->act[(size_t)k * hw + i] = A[k * lay.c_stride + i * lay.pos_stride];
    scorecam_ctx_t c = {.ws = ws, .x = x, .h = lay.h, .w = lay.w, .target = target};
    rc = sal_batch_logits(ws, lay.c, scorecam_fill, scorecam_consume, &c);
    if (rc < 0)
        return rc;
    /* Softmax over the channels' scores (shifted by their max for range). */
    double top = ws->chan[0], sum = 0.0;
    for (int k = 1; k < lay.c; k++)
        top = ws->chan[k] > top ? ws->chan[k] : top;
    for (int k = 0; k < lay.c; k++) {
        ws->chan[k] = exp(ws->chan[k] - top);
        sum += ws->chan[k];
    }
    for (size_t i = 0; i < hw; i++) {
        double s = 0.0;
        for (int k = 0; k < lay.c; k++)
            s += ws->chan[k] * ws->act[k * hw + i];
        ws->cam[i] = (float)(s / sum);
    }
    return sal_cam_finish(ws, "Score-CAM", ws->cam, lay.h, lay.w, raw_out);
}

const sal_method_t sal_method_scorecam = {
    .name = "scorecam",
    .summary = "Score-CAM: channels weighted by the logit of the input they mask",
    .needs_model = 1,
    .per_channel = 0,
    .post = SAL_POST_P1,
    .cost = scorecam_cost,
    .model_cost = scorecam_model_cost,
    .compute = scorecam_compute,
};
