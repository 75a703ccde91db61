/*
 * saliency.c - the method table, the workspace, the explained scalar and the
 * batch drivers every method file builds on (saliency.h).
 *
 * Owned by workers/saliency. The gradient of a logit comes from the engine
 * (nn_forward + nn_backward_logit); this file feeds it batches of up to
 * ws->batch inputs that a method describes by a fill callback, and hands the
 * gradients back one by one, in input order, so that what a method sums does
 * not depend on the batch size.
 */
#include "saliency/saliency.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/image.h"
#include "nn/memplan.h"
#include "rng.h"
#include "saliency/postproc.h"
#include "saliency/relprop.h"
#include "saliency/sal_cascade.h"
#include "saliency/xrai.h"
#include "sc.h"

sal_params_t sal_params_default(void)
{
    /* docs/methods.md section 4, the paper's parameters. */
    sal_params_t p;
    memset(&p, 0, sizeof p);
    p.sg_samples = 25;
    p.sg_noise = 0.15;
    p.sg_squared = 1;
    p.ig_steps = 10;
    p.ig_rule = SAL_IG_LINSPACE;
    p.ig_baseline = SAL_BASELINE_BLACK;
    p.ig_baseline_value = 0.0;
    p.sig_samples = 25;
    p.sig_squared = 1;
    p.gcam_layer[0] = '\0';
    p.xrai_steps = 100;
    p.xrai = xrai_params_default();
    p.occ_window = 16;
    p.occ_stride = 8;
    p.occ_fill = 0.0;
    /* RISE (Petsiuk et al. 2018, section 4.1): N = 4000 masks (ResNet-50),
     * s = 7 cells, p = 0.5. Expected Gradients: 100 samples, the default of
     * the authors' path_explain. */
    p.rise_masks = 4000;
    p.rise_cells = 7;
    p.rise_p = 0.5;
    p.eg_samples = 100;
    p.eg_pool = 64;
    p.lrp_composite = 0;
    p.lrp_first = p.lrp_conv = p.lrp_dense = -1;
    p.lrp_epsilon = 1e-6;
    p.lrp_stabilizer = 1e-6;
    p.lrp_gamma = 0.25;
    p.lrp_alpha = 2.0;
    p.lrp_low = p.lrp_high = NAN;
    p.dl_baseline = SAL_BASELINE_BLACK;
    p.dl_baseline_value = 0.0;
    return p;
}

/* ---- names ---- */

static const char *const ig_rule_names[SAL_IG_RULE_COUNT] = {
    "linspace", "left", "right", "midpoint", "trapezoid", "gausslegendre"};
static const char *const baseline_names[SAL_BASELINE_COUNT] = {"black", "value", "min", "max"};

int sal_ig_rule_parse(const char *name)
{
    for (int i = 0; i < SAL_IG_RULE_COUNT; i++)
        if (!strcmp(name, ig_rule_names[i]))
            return i;
    return -1;
}

const char *sal_ig_rule_name(sal_ig_rule_t rule)
{
    return (unsigned)rule < SAL_IG_RULE_COUNT ? ig_rule_names[rule] : "?";
}

int sal_baseline_parse(const char *name)
{
    for (int i = 0; i < SAL_BASELINE_COUNT; i++)
        if (!strcmp(name, baseline_names[i]))
            return i;
    return -1;
}

const char *sal_baseline_name(sal_baseline_t b)
{
    return (unsigned)b < SAL_BASELINE_COUNT ? baseline_names[b] : "?";
}

/* ---- the method table ---- */

const sal_method_t *sal_methods(void)
{
    /* The paper's eight first (docs/methods.md section 4), then the peers' methods and the
     * controls. */
    static sal_method_t table[24];
    static int filled;
    if (!filled) {
        const sal_method_t *all[23] = {
            &sal_method_grad, &sal_method_sg,  &sal_method_ig,        &sal_method_sig,
            &sal_method_gbp,  &sal_method_gcam, &sal_method_ggcam,    &sal_method_xrai,
            &sal_method_gxi,  &sal_method_occlusion, &sal_method_gcampp, &sal_method_scorecam,
            &sal_method_layercam, &sal_method_hirescam, &sal_method_xgradcam,
            &sal_method_eigencam, &sal_method_rise, &sal_method_eg, &sal_method_lrp,
            &sal_method_deeplift, &sal_method_random, &sal_method_sobel, &sal_method_avgmask};
        for (int i = 0; i < 23; i++)
            table[i] = *all[i];
        table[23].name = NULL;
        filled = 1;
    }
    return table;
}

const sal_method_t *sal_method_find(const char *name)
{
    for (const sal_method_t *m = sal_methods(); m->name; m++)
        if (!strcmp(m->name, name))
            return m;
    return NULL;
}

int sal_raw_channels(const sal_method_t *method, const sal_ws_t *ws)
{
    return method->per_channel ? ws->c : 1;
}

double sal_cost(const sal_method_t *method, const sal_params_t *p, int h, int w)
{
    return method->cost ? method->cost(p, h, w) : 0.0;
}

double sal_cost_cam(const sal_params_t *p, int h, int w) { return 0.5; }

double sal_cost_model(const sal_method_t *method, const sal_params_t *p, const nn_model_t *m)
{
    if (method->model_cost)
        return method->model_cost(p, m);
    return sal_cost(method, p, m->nodes[0].h, m->nodes[0].w);
}

/* ---- workspace ---- */

int sal_ws_batch(const sal_ws_t *ws) { return ws->batch; }
void sal_ws_set_stop(sal_ws_t *ws, const volatile sig_atomic_t *stop) { ws->stop = stop; }
const volatile sig_atomic_t *sal_ws_stop(const sal_ws_t *ws) { return ws->stop; }

/* A stop was requested: the batch drivers return before their next engine batch. */
static int stop_requested(const sal_ws_t *ws) { return ws->stop && *ws->stop; }

void sal_ws_destroy(sal_ws_t *ws)
{
    if (!ws)
        return;
    sc_free(ws->xb);
    sc_free(ws->gb);
    sc_free(ws->targets);
    sc_free(ws->acc);
    sc_free(ws->acc2);
    sc_free(ws->xn);
    sc_free(ws->fwd_x);
    sc_free(ws->base);
    sc_free(ws->map_a);
    sc_free(ws->map_b);
    sc_free(ws->plane);
    sc_free(ws->plane2);
    sc_free(ws->count);
    sc_free(ws->cam);
    sc_free(ws->chan);
    sc_free(ws->avgmask);
    if (!ws->eg_borrowed)
        sc_free(ws->eg_pool);
    sc_free(ws->act);
    sc_free(ws->accd);
    sc_free(ws->gram);
    sc_free(ws->igram);
    xrai_ws_destroy(ws->xrai);
    rp_ws_destroy(ws->relprop);
    postproc_ws_destroy(ws->post);
    sc_free(ws);
}

int sal_ws_create(sal_ws_t **out, nn_model_t *m, int batch, const char *normalize)
{
    int rc = 0;
    sal_ws_t *ws = NULL;
    *out = NULL;
    CHECK(m && m->finalized, SC_ERR_ARG, "saliency workspace: the model is not finalized");
    CHECK(batch >= 1 && batch <= 4096, SC_ERR_ARG,
          "saliency workspace: batch size %d outside 1..4096", batch);
    if (!normalize || !*normalize)
        normalize = m->normalize[0] ? m->normalize : "inception";
    image_norm_t norm;
    CHECK_RC(image_norm_resolve(normalize, m->nodes[0].c, &norm));
    ws = sc_calloc(1, sizeof *ws);
    CHECK_ALLOC(ws);
    ws->model = m;
    ws->batch = batch;
    ws->c = m->nodes[0].c;
    ws->h = m->nodes[0].h;
    ws->w = m->nodes[0].w;
    ws->hw = (size_t)ws->h * ws->w;
    ws->chw = ws->hw * ws->c;
    ws->logits_id = nn_logits_node(m);
    ws->classes = (int)nn_node_size(&m->nodes[ws->logits_id]);
    snprintf(ws->normalize, sizeof ws->normalize, "%s", normalize);
    {
        /* A black pixel (gray 0) under the model's normalization: the paper's IG baseline. */
        const float zero = 0.0f;
        float black3[3];
        image_normalize(&zero, 1, norm, black3);
        for (int c = 0; c < 4; c++)
            ws->black[c] = black3[c < norm.channels ? c : norm.channels - 1];
    }
    size_t act_cap = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        size_t plane = (size_t)m->nodes[i].h * m->nodes[i].w;
        if (nn_node_size(&m->nodes[i]) > act_cap)
            act_cap = nn_node_size(&m->nodes[i]);
        if (plane > ws->cam_cap)
            ws->cam_cap = plane;
        if ((size_t)m->nodes[i].c > ws->chan_cap)
            ws->chan_cap = (size_t)m->nodes[i].c;
    }
    /* Saliency needs input gradients only; the Grad-CAM layer stays readable. */
    CHECK_RC(nn_model_set_plan(m, NN_PLAN_INFER));
    if (nn_find(m, m->gradcam_layer) > 0)
        m->nodes[nn_find(m, m->gradcam_layer)].keep = NN_KEEP_ALL;
    CHECK_RC(nn_model_prepare(m, batch));
    CHECK_RC(postproc_ws_create(&ws->post, ws->h, ws->w));
    /* batch inputs and gradients: filled before each engine call, not zeroed here */
    ws->xb = nn_alloc_floats((size_t)batch * ws->chw);
    ws->gb = nn_alloc_floats((size_t)batch * ws->chw);
    ws->targets = sc_calloc((size_t)batch, sizeof(int));
    ws->acc = sc_calloc(ws->chw, sizeof(float));
    ws->acc2 = sc_calloc(ws->chw, sizeof(float));
    ws->xn = sc_calloc(ws->chw, sizeof(float));
    ws->fwd_x = sc_calloc(ws->chw, sizeof(float));
    ws->base = sc_calloc(ws->chw, sizeof(float));
    ws->map_a = sc_calloc(ws->chw, sizeof(float));
    ws->map_b = sc_calloc(ws->chw, sizeof(float));
    ws->plane = sc_calloc(ws->hw, sizeof(float));
    ws->plane2 = sc_calloc(ws->hw, sizeof(float));
    ws->count = sc_calloc(ws->hw, sizeof(int));
    ws->cam = sc_calloc(ws->cam_cap, sizeof(float));
    ws->act = sc_calloc(act_cap, sizeof(float));
    ws->accd = sc_calloc(ws->chw, sizeof(double));
    ws->chan = sc_calloc(ws->chan_cap, sizeof(double));
    CHECK_ALLOC(ws->xb);
    CHECK_ALLOC(ws->gb);
    CHECK_ALLOC(ws->targets);
    CHECK_ALLOC(ws->acc);
    CHECK_ALLOC(ws->acc2);
    CHECK_ALLOC(ws->xn);
    CHECK_ALLOC(ws->fwd_x);
    CHECK_ALLOC(ws->base);
    CHECK_ALLOC(ws->map_a);
    CHECK_ALLOC(ws->map_b);
    CHECK_ALLOC(ws->plane);
    CHECK_ALLOC(ws->plane2);
    CHECK_ALLOC(ws->count);
    CHECK_ALLOC(ws->cam);
    CHECK_ALLOC(ws->act);
    CHECK_ALLOC(ws->accd);
    CHECK_ALLOC(ws->chan);
    *out = ws;
    ws = NULL;
cleanup:
    sal_ws_destroy(ws);
    return rc;
}

int sal_ws_set_baselines(sal_ws_t *ws, const float *images, int count)
{
    int rc = 0;
    CHECK(count >= 1, SC_ERR_ARG, "expected gradients: no reference image to draw baselines from");
    float *pool = sc_calloc(ws->chw * (size_t)count, sizeof(float));
    CHECK_ALLOC(pool);
    memcpy(pool, images, sizeof(float) * ws->chw * (size_t)count);
    if (!ws->eg_borrowed)
        sc_free(ws->eg_pool);
    ws->eg_pool = pool;
    ws->eg_count = count;
    ws->eg_borrowed = 0;
cleanup:
    return rc;
}

void sal_ws_share_baselines(sal_ws_t *ws, const sal_ws_t *from)
{
    if (!ws->eg_borrowed)
        sc_free(ws->eg_pool);
    ws->eg_pool = from->eg_pool;
    ws->eg_count = from->eg_count;
    ws->eg_borrowed = 1;
}

int sal_ws_set_avgmask(sal_ws_t *ws, const float *mask)
{
    int rc = 0;
    if (!ws->avgmask) {
        ws->avgmask = sc_calloc(ws->hw, sizeof(float));
        CHECK_ALLOC(ws->avgmask);
    }
    memcpy(ws->avgmask, mask, sizeof(float) * ws->hw);
cleanup:
    return rc;
}

/* ---- the explained scalar ---- */

int sal_target(sal_ws_t *ws, const float *x, int requested, int *target, float *logits_out)
{
    nn_model_t *m = ws->model;
    /* the fused forward, or a cascade state's (sal_cascade.h) */
    int rc = sal_cascade_forward(ws, x, 1);
    if (rc < 0)
        return rc;
    const float *logits = nn_node_out(m, ws->logits_id);
    if (logits_out)
        memcpy(logits_out, logits, sizeof(float) * ws->classes);
    if (requested == SAL_TARGET_PREDICTED) {
        /* docs/methods.md section 3: the pre-softmax logit of the predicted class; a
         * single-logit (sigmoid) model has only its one logit to explain. */
        int best = 0;
        for (int k = 1; k < ws->classes; k++)
            if (logits[k] > logits[best])
                best = k;
        *target = best;
        return 0;
    }
    if (requested < 0 || requested >= ws->classes) {
        SC_ERROR("target class %d does not exist: the model has %d logit%s (0..%d)", requested,
                 ws->classes, ws->classes == 1 ? "" : "s", ws->classes - 1);
        return SC_ERR_ARG;
    }
    *target = requested;
    return 0;
}

/* ---- batch drivers ---- */

int sal_batch_gradients(sal_ws_t *ws, int count, int target, int guided, sal_fill_fn fill,
                        sal_grad_fn consume, void *ctx)
{
    nn_model_t *m = ws->model;
    nn_backward_opts_t o = {.guided_relu = guided, .input_grad = 1};
    for (int start = 0; start < count; start += ws->batch) {
        int n = count - start < ws->batch ? count - start : ws->batch;
        if (stop_requested(ws))
            return SC_ERR_INTERRUPTED;
        for (int i = 0; i < n; i++) {
            fill(ctx, start + i, ws->xb + (size_t)i * ws->chw);
            ws->targets[i] = target;
        }
        int rc;
        if (ws->cascade && ws->cascade_slot >= 0) { /* computed with the cascade's other states */
            rc = sal_cascade_batch(ws, n, guided, 0);
        } else {
            rc = nn_forward_fused(m, ws->xb, n);
            if (rc == 0)
                rc = nn_backward_logit(m, ws->targets, ws->gb, &o);
        }
        if (rc < 0)
            return rc;
        for (int i = 0; i < n; i++)
            consume(ctx, start + i, ws->gb + (size_t)i * ws->chw);
    }
    return 0;
}

int sal_batch_logits(sal_ws_t *ws, int count, sal_fill_fn fill, sal_logit_fn consume, void *ctx)
{
    nn_model_t *m = ws->model;
    for (int start = 0; start < count; start += ws->batch) {
        int n = count - start < ws->batch ? count - start : ws->batch;
        if (stop_requested(ws))
            return SC_ERR_INTERRUPTED;
        for (int i = 0; i < n; i++)
            fill(ctx, start + i, ws->xb + (size_t)i * ws->chw);
        const int lockstep = ws->cascade && ws->cascade_slot >= 0;
        int rc = lockstep ? sal_cascade_batch(ws, n, 0, 1) : nn_forward_fused(m, ws->xb, n);
        if (rc < 0)
            return rc;
        const float *logits = lockstep ? ws->gb : nn_node_out(m, ws->logits_id);
        for (int i = 0; i < n; i++)
            consume(ctx, start + i, logits + (size_t)i * ws->classes);
    }
    return 0;
}

int sal_gradient(sal_ws_t *ws, const float *x, int target, int guided, float *dx)
{
    nn_model_t *m = ws->model;
    nn_backward_opts_t o = {.guided_relu = guided, .input_grad = 1};
    int rc = sal_cascade_forward(ws, x, 1);
    if (rc < 0)
        return rc;
    ws->targets[0] = target;
    return nn_backward_logit(m, ws->targets, dx, &o);
}

/* ---- Integrated Gradients ---- */

/* P_n(x) and P_n'(x) by the three-term recurrence. */
static void legendre(int n, double x, double *p, double *dp)
{
    double p0 = 1.0, p1 = x;
    for (int j = 2; j <= n; j++) {
        double p2 = ((2.0 * j - 1.0) * x * p1 - (j - 1.0) * p0) / j;
        p0 = p1;
        p1 = p2;
    }
    *p = p1;
    *dp = n * (x * p1 - p0) / (x * x - 1.0);
}

/* Node k (descending) of the n-point Gauss-Legendre rule on [-1, 1] by Newton
 * from the Tricomi initial guess, with its weight 2 / ((1 - t^2) P_n'(t)^2).
 * O(n) per iteration and no storage, so any step count needs no workspace. */
static void gauss_legendre_node(int n, int k, double *t, double *wt)
{
    double x = cos(M_PI * (k + 0.75) / (n + 0.5)), p, dp;
    for (int it = 0; it < 100; it++) {
        legendre(n, x, &p, &dp);
        double step = p / dp;
        x -= step;
        if (fabs(step) < 1e-15)
            break;
    }
    legendre(n, x, &p, &dp);
    *t = x;
    *wt = 2.0 / ((1.0 - x * x) * dp * dp);
}

int sal_ig_node(sal_ig_rule_t rule, int steps, int k, double *alpha, double *weight)
{
    if (steps < 1 || k < 0 || k >= steps || (rule == SAL_IG_TRAPEZOID && steps < 2))
        return SC_ERR_ARG;
    const double S = steps;
    switch (rule) {
    case SAL_IG_LINSPACE:
        /* PAIR saliency, the paper: np.linspace(0, 1, S) (one point at 0 when S = 1), mean. */
        *alpha = steps == 1 ? 0.0 : k / (S - 1.0);
        *weight = 1.0 / S;
        return 0;
    case SAL_IG_LEFT: *alpha = k / S; *weight = 1.0 / S; return 0;
    case SAL_IG_RIGHT: *alpha = (k + 1) / S; *weight = 1.0 / S; return 0;
    case SAL_IG_MIDPOINT: *alpha = (k + 0.5) / S; *weight = 1.0 / S; return 0;
    case SAL_IG_TRAPEZOID:
        *alpha = k / (S - 1.0);
        *weight = (k == 0 || k == steps - 1 ? 0.5 : 1.0) / (S - 1.0);
        return 0;
    case SAL_IG_GAUSS_LEGENDRE: {
        double t, wt;
        /* Node k of the descending cos-ordered set; report ascending alpha. */
        gauss_legendre_node(steps, steps - 1 - k, &t, &wt);
        *alpha = 0.5 * (t + 1.0);
        *weight = 0.5 * wt;
        return 0;
    }
    default: return SC_ERR_ARG;
    }
}

typedef struct ig_ctx {
    const float *x, *b;
    size_t chw;
    int steps;
    sal_ig_rule_t rule;
    float *acc;
} ig_ctx_t;

static void ig_fill(void *vctx, int k, float *dst)
{
    ig_ctx_t *c = vctx;
    double alpha, weight;
    sal_ig_node(c->rule, c->steps, k, &alpha, &weight);
    const float a = (float)alpha;
    for (size_t i = 0; i < c->chw; i++)
        dst[i] = c->b[i] + a * (c->x[i] - c->b[i]);
}

static void ig_consume(void *vctx, int k, const float *grad)
{
    ig_ctx_t *c = vctx;
    double alpha, weight;
    sal_ig_node(c->rule, c->steps, k, &alpha, &weight);
    const float wk = (float)weight;
    for (size_t i = 0; i < c->chw; i++)
        c->acc[i] += wk * grad[i];
}

int sal_integrated_gradients(sal_ws_t *ws, const float *x, const float *b, int steps,
                             sal_ig_rule_t rule, int target, float *out)
{
    double alpha, weight;
    if (sal_ig_node(rule, steps, 0, &alpha, &weight) < 0) {
        SC_ERROR("integrated gradients: %d steps do not work with the %s rule", steps,
                 sal_ig_rule_name(rule));
        return SC_ERR_ARG;
    }
    /* docs/methods.md section 4: IG = (x - b) * sum_k w_k g(b + a_k (x - b)). */
    ig_ctx_t c = {.x = x, .b = b, .chw = ws->chw, .steps = steps, .rule = rule, .acc = ws->acc};
    memset(ws->acc, 0, sizeof(float) * ws->chw);
    int rc = sal_batch_gradients(ws, steps, target, 0, ig_fill, ig_consume, &c);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < ws->chw; i++)
        out[i] = (x[i] - b[i]) * ws->acc[i];
    return 0;
}

void sal_fill_baseline(sal_ws_t *ws, const float *x, sal_baseline_t kind, double value)
{
    float lo = FLT_MAX, hi = -FLT_MAX;
    if (kind == SAL_BASELINE_MIN || kind == SAL_BASELINE_MAX)
        for (size_t i = 0; i < ws->chw; i++) {
            lo = x[i] < lo ? x[i] : lo;
            hi = x[i] > hi ? x[i] : hi;
        }
    for (int c = 0; c < ws->c; c++) {
        float v;
        switch (kind) {
        case SAL_BASELINE_BLACK: v = ws->black[c < 4 ? c : 3]; break;
        case SAL_BASELINE_MIN: v = lo; break;
        case SAL_BASELINE_MAX: v = hi; break;
        default: v = (float)value; break;
        }
        float *plane = ws->base + (size_t)c * ws->hw;
        for (size_t i = 0; i < ws->hw; i++)
            plane[i] = v;
    }
}

/* ---- noise ---- */

void sal_noise(const char *purpose, sal_key_t key, uint32_t sample, float sigma, size_t count,
               float *out)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(key.seed, purpose), key.variant, key.image, sample);
    for (size_t i = 0; i < count; i++)
        out[i] = (float)(sigma * rng_stream_normal(&rs));
}

float sal_noise_sigma(const sal_params_t *p, const float *x, size_t count)
{
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (size_t i = 0; i < count; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    return (float)(p->sg_noise * ((double)hi - lo));
}

void sal_fill_nan(float *out, size_t count)
{
    for (size_t i = 0; i < count; i++)
        out[i] = NAN;
}

/* ---- Grad-CAM ---- */

void sal_resize_bilinear(const float *src, int sh, int sw, float *dst, int dh, int dw)
{
    /* Half-pixel centres: source coordinate (i + 0.5) * in/out - 0.5, clamped to
     * [0, in-1]; the weights are those of OpenCV's INTER_LINEAR on float images. */
    const double sy = (double)sh / dh, sx = (double)sw / dw;
    for (int i = 0; i < dh; i++) {
        double fy = (i + 0.5) * sy - 0.5;
        if (fy < 0)
            fy = 0;
        int y0 = (int)fy;
        if (y0 > sh - 1)
            y0 = sh - 1;
        int y1 = y0 + 1 < sh ? y0 + 1 : sh - 1;
        double ly = fy - y0;
        if (ly < 0)
            ly = 0;
        for (int j = 0; j < dw; j++) {
            double fx = (j + 0.5) * sx - 0.5;
            if (fx < 0)
                fx = 0;
            int x0 = (int)fx;
            if (x0 > sw - 1)
                x0 = sw - 1;
            int x1 = x0 + 1 < sw ? x0 + 1 : sw - 1;
            double lx = fx - x0;
            if (lx < 0)
                lx = 0;
            double top = (1 - lx) * src[(size_t)y0 * sw + x0] + lx * src[(size_t)y0 * sw + x1];
            double bot = (1 - lx) * src[(size_t)y1 * sw + x0] + lx * src[(size_t)y1 * sw + x1];
            dst[(size_t)i * dw + j] = (float)((1 - ly) * top + ly * bot);
        }
    }
}

void sal_resize_bilinear_corners(const float *src, int sh, int sw, float *dst, int dh, int dw)
{
    /* align_corners=True: output i samples source i * (in - 1) / (out - 1), so the
     * corner pixels of source and destination coincide. */
    const double sy = dh > 1 ? (double)(sh - 1) / (dh - 1) : 0.0;
    const double sx = dw > 1 ? (double)(sw - 1) / (dw - 1) : 0.0;
    for (int i = 0; i < dh; i++) {
        double fy = i * sy;
        int y0 = (int)fy;
        if (y0 > sh - 1)
            y0 = sh - 1;
        int y1 = y0 + 1 < sh ? y0 + 1 : sh - 1;
        double ly = fy - y0;
        for (int j = 0; j < dw; j++) {
            double fx = j * sx;
            int x0 = (int)fx;
            if (x0 > sw - 1)
                x0 = sw - 1;
            int x1 = x0 + 1 < sw ? x0 + 1 : sw - 1;
            double lx = fx - x0;
            double top = (1 - lx) * src[(size_t)y0 * sw + x0] + lx * src[(size_t)y0 * sw + x1];
            double bot = (1 - lx) * src[(size_t)y1 * sw + x0] + lx * src[(size_t)y1 * sw + x1];
            dst[(size_t)i * dw + j] = (float)((1 - ly) * top + ly * bot);
        }
    }
}

int sal_cam_node(sal_ws_t *ws, const char *method, const char *layer, int *id)
{
    nn_model_t *m = ws->model;
    if (!layer || !*layer)
        layer = m->gradcam_layer;
    *id = nn_find(m, layer);
    if (*id <= 0) {
        SC_ERROR("%s: the model has no node named '%s'%s", method, layer,
                 *layer ? "" : " (the model file records no Grad-CAM layer; name one)");
        return SC_ERR_ARG;
    }
    const nn_node_t *nd = &m->nodes[*id];
    if (nd->h * nd->w < 1 || (size_t)nd->h * nd->w > ws->cam_cap) {
        SC_ERROR("%s: node '%s' has no spatial extent", method, layer);
        return SC_ERR_ARG;
    }
    return nn_model_keep(m, *id); /* its activation and gradient are read after the pass */
}

int sal_cam_finish(sal_ws_t *ws, const char *method, float *cam, int h, int w, float *out)
{
    const size_t hw = (size_t)h * w;
    float mx = 0.0f;
    for (size_t i = 0; i < hw; i++) {
        cam[i] = cam[i] > 0 ? cam[i] : 0.0f;
        mx = cam[i] > mx ? cam[i] : mx;
    }
    if (!(mx > 0.0f)) {
        /* An all-zero CAM (common for randomized models) has no max to divide by. */
        SC_DEBUG("%s: the CAM is zero everywhere: the map is undefined", method);
        sal_fill_nan(out, ws->hw);
        return SC_ERR_UNDEFINED;
    }
    for (size_t i = 0; i < hw; i++)
        cam[i] = cam[i] / mx;
    sal_resize_bilinear(cam, h, w, out, ws->h, ws->w);
    return 0;
}

int sal_cam_tokens(const nn_node_t *nd, sal_cam_layout_t *lay)
{
    int dims[NN_MAX_RANK];
    const int rank = nn_node_shape(nd, dims);
    if (nd->rank == 0 || (rank == 3 && dims[0] != 1) || rank < 2 || rank > 3)
        return 0;
    const int L = dims[rank - 2], D = dims[rank - 1];
    for (int drop = 1; drop >= 0; drop--) {
        int g = (int)lround(sqrt((double)(L - drop)));
        if (L - drop > 1 && g * g == L - drop) {
            *lay = (sal_cam_layout_t){.c = D, .h = g, .w = g, .c_stride = 1, .pos_stride = D,
                                      .offset = (size_t)drop * D};
            return 1;
        }
    }
    return 0;
}

int sal_cam_layer(sal_ws_t *ws, const char *method, const char *layer, int *id,
                  sal_cam_layout_t *lay)
{
    nn_model_t *m = ws->model;
    int rc;
    *id = nn_find(m, layer && *layer ? layer : m->gradcam_layer);
    if (*id > 0 && sal_cam_tokens(&m->nodes[*id], lay)) {
        /* tokens laid on their patch grid, the class token dropped; their activation and
         * gradient are read after the pass */
        rc = nn_model_keep(m, *id);
        if (rc < 0)
            return rc;
    } else {
        rc = sal_cam_node(ws, method, layer, id);
        if (rc < 0)
            return rc;
        const nn_node_t *map = &m->nodes[*id];
        *lay = (sal_cam_layout_t){.c = map->c, .h = map->h, .w = map->w,
                                  .c_stride = (size_t)map->h * map->w, .pos_stride = 1};
    }
    if ((size_t)lay->h * lay->w > ws->cam_cap || (size_t)lay->c > ws->chan_cap) {
        SC_ERROR("%s: node '%s' is larger than the workspace", method, m->nodes[*id].name);
        return SC_ERR_ARG;
    }
    return 0;
}

int sal_cam_run(sal_ws_t *ws, const char *method, const char *layer, const float *x, int target,
                sal_cam_pass_t *cp)
{
    nn_model_t *m = ws->model;
    int rc = sal_cam_layer(ws, method, layer, &cp->id, &cp->lay);
    if (rc < 0)
        return rc;
    /* Only the layer's gradient is needed: the backward stops there (the layers
     * below it, most of the network's FLOPs, run no backward). The fused forward
     * unless the fusion computes the layer inside another node. */
    rc = sal_cascade_forward(ws, x, nn_fused_shows(m, cp->id));
    if (rc < 0)
        return rc;
    if (target >= 0) {
        nn_backward_opts_t o = {.down_to = cp->id < nn_logits_node(m) ? cp->id : 0};
        ws->targets[0] = target;
        rc = nn_backward_logit(m, ws->targets, NULL, &o);
        if (rc < 0)
            return rc;
    }
    cp->A = nn_node_out(m, cp->id) + cp->lay.offset;
    cp->G = target < 0 ? NULL : nn_node_grad(m, cp->id) + cp->lay.offset;
    return 0;
}

void sal_cam_weigh(sal_ws_t *ws, const sal_cam_pass_t *cp)
{
    const sal_cam_layout_t *lay = &cp->lay;
    const size_t hw = (size_t)lay->h * lay->w, cs = lay->c_stride, ps = lay->pos_stride;
    for (size_t i = 0; i < hw; i++) {
        double s = 0.0;
        for (int c = 0; c < lay->c; c++)
            s += ws->chan[c] * cp->A[c * cs + i * ps];
        ws->cam[i] = (float)s;
    }
}

void sal_cam_grad_act(sal_ws_t *ws, const sal_cam_pass_t *cp, int relu_grad)
{
    const sal_cam_layout_t *lay = &cp->lay;
    const size_t hw = (size_t)lay->h * lay->w, cs = lay->c_stride, ps = lay->pos_stride;
    for (size_t i = 0; i < hw; i++) {
        double s = 0.0;
        for (int c = 0; c < lay->c; c++) {
            float g = cp->G[c * cs + i * ps];
            if (relu_grad)
                g = g > 0 ? g : 0.0f;
            s += (double)g * cp->A[c * cs + i * ps];
        }
        ws->cam[i] = (float)s;
    }
}

int sal_gradcam(sal_ws_t *ws, const float *x, int target, const char *layer, int plus, float *out)
{
    const char *name = plus ? "Grad-CAM++" : "Grad-CAM";
    sal_cam_pass_t cp;
    int rc = sal_cam_run(ws, name, layer, x, target, &cp);
    if (rc < 0)
        return rc;
    const sal_cam_layout_t lay = cp.lay;
    const size_t hw = (size_t)lay.h * lay.w, cs = lay.c_stride, ps = lay.pos_stride;
    const float *A = cp.A, *G = cp.G;
    /* docs/methods.md section 4, gcam: w_c = mean_ij dY/dA_ijc. Grad-CAM++ (Chattopadhyay
     * et al., as pytorch-grad-cam computes it): alpha = g^2 / (2 g^2 + sum_ij A * g^3),
     * w_c = sum_ij alpha * relu(g). */
    for (int c = 0; c < lay.c; c++) {
        const float *a = A + c * cs, *g = G + c * cs;
        double wc = 0.0;
        if (!plus) {
            for (size_t i = 0; i < hw; i++)
                wc += g[i * ps];
            wc /= (double)hw;
        } else {
            double sum_a = 0.0;
            for (size_t i = 0; i < hw; i++)
                sum_a += a[i * ps];
            for (size_t i = 0; i < hw; i++) {
                double g1 = g[i * ps], g2 = g1 * g1, g3 = g2 * g1;
                if (g1 == 0.0)
                    continue;
                double alpha = g2 / (2.0 * g2 + sum_a * g3 + 1e-6);
                wc += alpha * (g1 > 0 ? g1 : 0.0);
            }
        }
        ws->chan[c] = wc;
    }
    sal_cam_weigh(ws, &cp);
    return sal_cam_finish(ws, name, ws->cam, lay.h, lay.w, out);
}

/* ---- RISE masks ---- */

/* skimage.transform.resize(order=1, mode='reflect') of n samples to `up` along
 * one axis, at output position i: scipy.ndimage.zoom(grid_mode=True,
 * mode='mirror') samples source coordinate (i + 0.5) n / up - 0.5 and mirrors
 * the neighbours beyond the ends about the edge samples (-1 -> 1). */
static void rise_axis(int n, int up, int i, int *k0, int *k1, double *frac)
{
    double c = (i + 0.5) * n / up - 0.5;
    int f = (int)floor(c);
    *frac = c - f;
    int a = f, b = f + 1;
    if (n == 1) {
        a = b = 0;
    } else {
        a = a < 0 ? -a : a > n - 1 ? 2 * (n - 1) - a : a;
        b = b < 0 ? -b : b > n - 1 ? 2 * (n - 1) - b : b;
    }
    *k0 = a;
    *k1 = b;
}

void sal_rise_mask(sal_key_t key, uint32_t index, int s, double p, int h, int w, float *out,
                   uint8_t *grid, int *shift)
{
    /* Petsiuk et al. 2018 (the authors' generate_masks): cells kept where
     * U(0,1) < p, a random shift in [0, cell) per axis, linear upsampling of
     * the s x s grid to (s + 1) * cell, cropped to H x W at the shift. */
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(key.seed, "rise"), key.variant, key.image, index);
    uint8_t cells[SAL_RISE_MAX_CELLS * SAL_RISE_MAX_CELLS];
    if (s < 1 || s > SAL_RISE_MAX_CELLS)
        return;
    for (int i = 0; i < s * s; i++)
        cells[i] = rng_stream_uniform(&rs) < p;
    const int cell_h = (h + s - 1) / s, cell_w = (w + s - 1) / s;
    const int up_h = (s + 1) * cell_h, up_w = (s + 1) * cell_w;
    const int dy = (int)rng_stream_below(&rs, (uint32_t)cell_h);
    const int dx = (int)rng_stream_below(&rs, (uint32_t)cell_w);
    if (grid)
        memcpy(grid, cells, (size_t)s * s);
    if (shift) {
        shift[0] = dy;
        shift[1] = dx;
    }
    for (int y = 0; y < h; y++) {
        int r0, r1;
        double fy;
        rise_axis(s, up_h, y + dy, &r0, &r1, &fy);
        for (int x = 0; x < w; x++) {
            int c0, c1;
            double fx;
            rise_axis(s, up_w, x + dx, &c0, &c1, &fx);
            double top = (1 - fx) * cells[r0 * s + c0] + fx * cells[r0 * s + c1];
            double bot = (1 - fx) * cells[r1 * s + c0] + fx * cells[r1 * s + c1];
            out[(size_t)y * w + x] = (float)((1 - fy) * top + fy * bot);
        }
    }
}

/* ---- the entry points ---- */

int sal_compute(const sal_method_t *method, const sal_params_t *p, nn_model_t *m, sal_ws_t *ws,
                const float *x, int target, const float *gray, sal_key_t key, float *raw_out)
{
    if (!method || !method->compute || !p || !ws || !x || !raw_out) {
        SC_ERROR("saliency: missing method, parameters, workspace or buffers");
        return SC_ERR_ARG;
    }
    if (m && m != ws->model) {
        SC_ERROR("saliency '%s': the model is not the one the workspace was created for",
                 method->name);
        return SC_ERR_ARG;
    }
    if (method->needs_model) {
        /* Someone may have prepared the model for another batch size since. */
        if (ws->model->max_batch != ws->batch) {
            int rc = nn_model_prepare(ws->model, ws->batch);
            if (rc < 0)
                return rc;
        }
        if (target == SAL_TARGET_PREDICTED || target < 0 || target >= ws->classes) {
            int rc = sal_target(ws, x, target, &target, NULL);
            if (rc < 0)
                return rc;
        }
    }
    return method->compute(method, p, ws, x, target, gray, key, raw_out);
}

int sal_postprocess(const sal_method_t *method, sal_ws_t *ws, const float *raw, float *map)
{
    /* docs/methods.md section 4: P1 for every method, P2 for Guided Grad-CAM (whose
     * raw map is already the product of two P1 maps). */
    if (method->post == SAL_POST_P2)
        return postproc_p2(ws->post, raw, map);
    return postproc_p1(ws->post, raw, sal_raw_channels(method, ws), POSTPROC_CHW, map);
}
