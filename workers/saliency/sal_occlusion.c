/*
 * sal_occlusion.c - occlusion (Zeiler & Fergus 2014, Captum's Occlusion): a
 * square window of side occ_window, filled with occ_fill in every channel,
 * slides over the image with stride occ_stride (start offsets k*stride for
 * k = 0..ceil((H - window) / stride), the last window cut at the border, as
 * Captum places them); each pixel's value is the mean over the windows that
 * cover it of f(x) - f(x occluded), f the explained logit. Pixels no window
 * covers (stride > window) are 0. Raw map [1,H,W], signed. The occluded
 * copies run through the engine as forward-only batches; a forward pass is
 * counted as 1/2 of a gradient evaluation (an input-gradient backward costs
 * about one forward; the saliency benchmark in bench/ measures 0.4-0.5).
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include <string.h>

#include "saliency/saliency.h"
#include "sc.h"

/* Window start offsets along a side of n pixels. */
static int occ_positions(int n, int window, int stride)
{
    if (window >= n)
        return 1;
    return (n - window + stride - 1) / stride + 1;
}

static double occ_cost(const sal_params_t *p, int h, int w)
{
    if (p->occ_window < 1 || p->occ_stride < 1)
        return 0.0;
    double windows = (double)occ_positions(h, p->occ_window, p->occ_stride) *
                     occ_positions(w, p->occ_window, p->occ_stride);
    return (windows + 1.0) / 2.0;
}

typedef struct occ_ctx {
    const sal_params_t *p;
    sal_ws_t *ws;
    const float *x;
    int nx, target;
    float f0;
} occ_ctx_t;

static void occ_window(const occ_ctx_t *c, int k, int *y0, int *y1, int *x0, int *x1)
{
    int win = c->p->occ_window, stride = c->p->occ_stride;
    *y0 = (k / c->nx) * stride;
    *x0 = (k % c->nx) * stride;
    *y1 = *y0 + win < c->ws->h ? *y0 + win : c->ws->h;
    *x1 = *x0 + win < c->ws->w ? *x0 + win : c->ws->w;
}

static void occ_fill(void *vctx, int k, float *dst)
{
    const occ_ctx_t *c = vctx;
    const sal_ws_t *ws = c->ws;
    int y0, y1, x0, x1;
    occ_window(c, k, &y0, &y1, &x0, &x1);
    memcpy(dst, c->x, sizeof(float) * ws->chw);
    const float fill = (float)c->p->occ_fill;
    for (int ch = 0; ch < ws->c; ch++)
        for (int y = y0; y < y1; y++) {
            float *row = dst + (size_t)ch * ws->hw + (size_t)y * ws->w;
            for (int xx = x0; xx < x1; xx++)
                row[xx] = fill;
        }
}

static void occ_consume(void *vctx, int k, const float *logits)
{
    const occ_ctx_t *c = vctx;
    sal_ws_t *ws = c->ws;
    int y0, y1, x0, x1;
    occ_window(c, k, &y0, &y1, &x0, &x1);
    const float diff = c->f0 - logits[c->target];
    for (int y = y0; y < y1; y++)
        for (int xx = x0; xx < x1; xx++) {
            size_t i = (size_t)y * ws->w + xx;
            ws->plane[i] += diff;
            ws->count[i]++;
        }
}

static int occ_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                       const float *x, int target, const float *gray, sal_key_t key,
                       float *raw_out)
{
    if (p->occ_window < 1 || p->occ_stride < 1) {
        SC_ERROR("occlusion: window (%d) and stride (%d) must be >= 1 pixel", p->occ_window,
                 p->occ_stride);
        return SC_ERR_ARG;
    }
    float f0;
    int rc = sal_target(ws, x, target, &target, NULL);
    if (rc < 0)
        return rc;
    f0 = nn_node_out(ws->model, ws->logits_id)[target];
    occ_ctx_t c = {.p = p, .ws = ws, .x = x, .target = target, .f0 = f0,
                   .nx = occ_positions(ws->w, p->occ_window, p->occ_stride)};
    int windows = occ_positions(ws->h, p->occ_window, p->occ_stride) * c.nx;
    memset(ws->plane, 0, sizeof(float) * ws->hw);
    memset(ws->count, 0, sizeof(int) * ws->hw);
    rc = sal_batch_logits(ws, windows, occ_fill, occ_consume, &c);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < ws->hw; i++)
        raw_out[i] = ws->count[i] ? ws->plane[i] / (float)ws->count[i] : 0.0f;
    return 0;
}

const sal_method_t sal_method_occlusion = {
    .name = "occlusion",
    .summary = "logit drop when a sliding window is occluded",
    .needs_model = 1,
    .per_channel = 0,
    .post = SAL_POST_P1,
    .cost = occ_cost,
    .compute = occ_compute,
};
