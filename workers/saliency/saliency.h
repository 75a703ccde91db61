/*
 * saliency.h - the saliency methods behind one interface (module workers/saliency,
 * prefix sal_).
 *
 * A method turns one normalized input x [C,H,W] and one explained scalar (a
 * pre-softmax logit, docs/methods.md sections 3-4) into a raw attribution map:
 * [C,H,W] for the gradient family (signed, per channel) or [1,H,W] for the
 * map-valued methods (Grad-CAM, XRAI, occlusion, the controls). The paper's
 * post-processing (P1, or P2 for Guided Grad-CAM) then gives the [H,W] map in
 * [0,1] that every metric reads (sal_postprocess).
 *
 * The methods (one file each, sal_<name>.c; parameters and their paper
 * defaults in sal_params_t), with their cost in gradient evaluations:
 *   grad       vanilla gradient g(x)                                        1
 *   sg         SmoothGrad: mean of g(x+e)^2 (or g(x+e)) over n samples      n
 *   ig         Integrated Gradients: (x-b) * sum_k w_k g(b + a_k (x-b))     S
 *   sig        SmoothGrad of IG: mean of IG(x+e)^2, baseline not noised     n*S
 *   gbp        Guided Backprop (guided ReLU backward)                       1
 *   gcam       Grad-CAM at a named node, bilinear upsampling                1/2
 *   ggcam      Guided Grad-CAM: P1(gbp) * P1(gcam), then P2                 3/2
 *   xrai       XRAI: IG from constant min(x) and max(x), region ranking     2*S
 *   gxi        gradient x input                                             1
 *   occlusion  f(x) - f(x with a window filled), averaged per pixel         windows/2
 *   gcampp     Grad-CAM++                                                   1/2
 *   scorecam   Score-CAM: softmax over channels of f(x * upsampled A_k)     K/2 + 1/2
 *   layercam   LayerCAM: sum_c ReLU(dY/dA) * A                              1/2
 *   hirescam   HiResCAM: sum_c dY/dA * A                                    1/2
 *   xgradcam   XGrad-CAM: w_c = sum_ij dY/dA * A / sum_ij A                 1/2
 *   eigencam   Eigen-CAM: first principal component of A (no gradient)     1/2
 *   rise       RISE: sum_i P(x * M_i) M_i / (N p), random upsampled grids   (N+1)/2
 *   eg         Expected Gradients: IG from training images, alpha ~ U(0,1)  n
 *   lrp        LRP with Zennit's rules and composites (BN merged first)     3
 *   deeplift   DeepLIFT, Rescale rule (Captum's DeepLift semantics)         3
 *   random     uniform noise (model-free control)                           0
 *   sobel      Sobel edge magnitude of the gray image (control)             0
 *   avgmask    the average ground-truth mask of the training positives      0
 *
 * Batching: IG steps, SmoothGrad samples and occlusion windows run through the
 * engine as batches of up to the workspace's batch size. Every gradient is
 * consumed in sample order, and every noise draw comes from the Philox
 * generator keyed by (seed, purpose) with counters (variant, image, sample),
 * so a map does not depend on the batch size, the rank or the order of items.
 */
#ifndef SALIENCY_H
#define SALIENCY_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "nn/model.h"
#include "saliency/postproc.h"
#include "saliency/xrai.h"

/* Explain the logit of the class the model predicts (argmax of the logits;
 * class 0 for a single-logit sigmoid model). */
#define SAL_TARGET_PREDICTED (-1)

/* Quadrature of the IG path integral over alpha in [0, 1]. */
typedef enum sal_ig_rule {
    SAL_IG_LINSPACE = 0,   /* the paper (PAIR saliency): a_k = linspace(0,1,S) both ends, w = 1/S */
    SAL_IG_LEFT,           /* Riemann left:  a_k = k/S,       w = 1/S */
    SAL_IG_RIGHT,          /* Riemann right: a_k = (k+1)/S,   w = 1/S */
    SAL_IG_MIDPOINT,       /* Riemann midpoint: a_k = (k+0.5)/S, w = 1/S */
    SAL_IG_TRAPEZOID,      /* a_k = k/(S-1), w = 1/(S-1) halved at both ends (S >= 2) */
    SAL_IG_GAUSS_LEGENDRE, /* S-point Gauss-Legendre nodes and weights mapped to [0, 1] */
    SAL_IG_RULE_COUNT
} sal_ig_rule_t;

/* IG baseline b (constant images in the normalized input space). */
typedef enum sal_baseline {
    SAL_BASELINE_BLACK = 0, /* black in the input normalization (-1 for "inception", the paper) */
    SAL_BASELINE_VALUE,     /* the constant ig_baseline_value */
    SAL_BASELINE_MIN,       /* the constant min(x) (XRAI's first baseline) */
    SAL_BASELINE_MAX,       /* the constant max(x) (XRAI's second baseline) */
    SAL_BASELINE_COUNT
} sal_baseline_t;

/* Post-processing a method's raw map gets before any metric (docs/methods.md section 4). */
typedef enum sal_post {
    SAL_POST_P1 = 0, /* sum_c |m|, then (s - min) / (p99 - min) clipped to [0, 1] */
    SAL_POST_P2      /* min-max to [0, 1] (Guided Grad-CAM: its raw map is already P1 x P1) */
} sal_post_t;

/* Every parameter of every method; sal_params_default() gives the paper's values. */
typedef struct sal_params {
    int sg_samples;          /* SmoothGrad samples n (25) */
    double sg_noise;         /* noise level: sigma = sg_noise * (max(x) - min(x)) (0.15) */
    int sg_squared;          /* average g^2 ("magnitude", the paper) or g (Adebayo) (1) */
    int ig_steps;            /* IG steps S (10) */
    sal_ig_rule_t ig_rule;   /* SAL_IG_LINSPACE */
    sal_baseline_t ig_baseline;  /* SAL_BASELINE_BLACK */
    double ig_baseline_value;    /* used with SAL_BASELINE_VALUE (0) */
    int sig_samples;         /* noisy copies of x for SmoothGrad of IG (25) */
    int sig_squared;         /* average IG^2 (1) or IG (0) */
    char gcam_layer[NN_NAME_MAX]; /* node for gcam/ggcam/gcampp; "" = the model's gradcam_layer */
    int xrai_steps;          /* IG steps per XRAI baseline (100); the rule is ig_rule */
    xrai_params_t xrai;      /* segmentation and ranking (xrai_params_default: the paper's) */
    int occ_window;          /* occlusion: square window side, pixels (16) */
    int occ_stride;          /* occlusion stride, pixels (8) */
    double occ_fill;         /* occlusion fill value, normalized input space (0) */
    int rise_masks;          /* RISE masks N (4000, Petsiuk et al. for ResNet-50) */
    int rise_cells;          /* RISE grid side s (7; 1..SAL_RISE_MAX_CELLS) */
    double rise_p;           /* RISE probability that a cell is kept (0.5) */
    int eg_samples;          /* Expected Gradients samples (100) */
    int eg_pool;             /* training images a run draws the baselines from (64) */
    /* LRP (sal_lrp.c) and DeepLIFT (sal_deeplift.c) */
    int lrp_composite;       /* lrp_composite_t (epsilon_plus_flat, Zennit's EpsilonPlusFlat) */
    int lrp_first, lrp_conv, lrp_dense; /* lrp_rule_t per layer kind; -1: the composite's (-1) */
    double lrp_epsilon;      /* the epsilon rule's stabilizer (1e-6, Zennit's) */
    double lrp_stabilizer;   /* the other rules' stabilizer (1e-6, Zennit's) */
    double lrp_gamma;        /* gamma rule (0.25, Zennit's) */
    double lrp_alpha;        /* alpha-beta rule, beta = alpha - 1 (2) */
    double lrp_low, lrp_high; /* z-box input bounds; NaN: the normalization's black and white (NaN) */
    sal_baseline_t dl_baseline;  /* DeepLIFT's reference input (SAL_BASELINE_BLACK) */
    double dl_baseline_value;    /* used with SAL_BASELINE_VALUE (0) */
} sal_params_t;

sal_params_t sal_params_default(void);

/* The keys of every random draw: job seed, model variant, image index. Pass
 * variant 0 for every variant to give all variants the same noise for an
 * image (a paired comparison), or the variant index for independent noise. */
typedef struct sal_key {
    uint64_t seed;
    uint32_t variant;
    uint32_t image;
} sal_key_t;

/*
 * The workspace: every buffer the methods need for one model at one batch
 * size, allocated once. Bound to its model (which it prepares for `batch`);
 * the model's weights may change between calls (randomized variants), its
 * graph may not.
 */
typedef struct sal_ws sal_ws_t;

/*
 * Create a workspace for model m (finalized) with batches of up to `batch`
 * inputs; calls nn_model_prepare(m, batch). `normalize` (an input convention
 * of io/image_norm.h) fixes what a black image is for the IG baseline; NULL
 * uses the model's own m->normalize. *out is the caller's: sal_ws_destroy.
 */
int sal_ws_create(sal_ws_t **out, nn_model_t *m, int batch, const char *normalize);
void sal_ws_destroy(sal_ws_t *ws);
/* sal_budget.c. Bytes a workspace of m at `batch` holds: the model's planned
 * buffers (nn_model_runtime_bytes, inference plan, every node's when the
 * model keeps them all), its folded convolutions (nn_fuse_bytes) and the workspace's own (the LRP/DeepLIFT walk's
 * when the model keeps every node). */
size_t sal_ws_bytes(const nn_model_t *m, int batch);
/* Bytes method `name` holds once per model m whatever the batch, beside its
 * workspace, with parameters p: for eg, its pool of p->eg_pool reference inputs
 * (sal_ws_set_baselines); for xrai, the segmentation workspace (xrai_ws_bytes);
 * 0 for every other method. A run adds them to the resident size it gives
 * sal_batch_for_memory before the workspaces exist. */
size_t sal_method_fixed_bytes(const nn_model_t *m, const char *method, const sal_params_t *p);
/* 1 when method `name` (or its sMPRT form smprt-NAME) reads every node's
 * activation after the pass (lrp, deeplift). */
int sal_method_keeps_all(const char *name);
/* Before a batch is chosen from a budget: when `method` reads every node,
 * every model keeps all its buffers (nn_model_keep_all, what its first map
 * would do), so that sal_ws_bytes counts them. Returns 0 or an error code. */
int sal_budget_method(nn_model_t *const *models, int n_models, const char *method);
/* The largest batch in 0..max_batch whose workspaces for the n models fit in
 * budget_bytes together (0: not even batch 1). */
int sal_batch_for_budget(nn_model_t *const *models, int n_models, size_t budget_bytes,
                         int max_batch);
/* The same for one model, at least 1: what to pass to sal_ws_create. */
int sal_suggest_batch(const nn_model_t *m, size_t budget_bytes, int max_batch);
/* A size field of /proc/self/status ("VmRSS", "VmHWM": key without its
 * colon) in bytes; 0 when unknown. */
double sal_status_bytes(const char *key);
/* Resident size of this process now (VmRSS), in bytes; 0 when unknown. */
double sal_resident_bytes(void);
/* What a rank holds beside the workspaces that no estimate itemizes (the BLAS library's
 * packing buffers, the run's per-image arrays): 16 MB and 2 % of a budget (0: none). */
double sal_reserve_bytes(double budget_bytes);
/* The batch of a run from its per-rank budget (`[job] memory_per_rank`):
 * what is left of budget_bytes after resident_bytes (models, data, plan) and
 * a reserve, shared by the n models' workspaces, up to max_batch. An error
 * naming `what` (the job file) when even batch 1 does not fit. */
int sal_batch_for_memory(nn_model_t *const *models, int n_models, double budget_bytes,
                         double resident_bytes, int max_batch, const char *what, int *batch);
/* The same with a randomization's states run in lockstep (sal_cascade.h):
 * cascade_states[j] states of model j (0 or 1: none), whose outputs the model
 * already keeps (sal_cascade_keeps); the largest such item counts beside the
 * models' workspaces (sal_cascade_bytes). NULL: as sal_batch_for_memory. */
int sal_batch_for_memory_cascade(nn_model_t *const *models, int n_models,
                                 const int *cascade_states, double budget_bytes,
                                 double resident_bytes, int max_batch, const char *what,
                                 int *batch);
/* The average training mask [H,W] (values 0..1) the avgmask control returns;
 * copied into the workspace. */
int sal_ws_set_avgmask(sal_ws_t *ws, const float *mask);
/* The reference images Expected Gradients draws its baselines from: count
 * normalized inputs [count, C, H, W] (training images under the model's
 * normalization), copied into the workspace. */
int sal_ws_set_baselines(sal_ws_t *ws, const float *images, int count);
/* The same pool without a copy: ws reads `from`'s (which must outlive ws and
 * keep its pool). */
void sal_ws_share_baselines(sal_ws_t *ws, const sal_ws_t *from);
int sal_ws_batch(const sal_ws_t *ws);
/* A stop request the batch drivers check before every engine batch (a signal handler
 * sets *stop): once it is set, the method in progress returns SC_ERR_INTERRUPTED and
 * its map is not to be used. stop may be NULL (never stop); it must outlive ws.
 * sal_ws_stop gives it back (for the cascade's state workspaces). */
void sal_ws_set_stop(sal_ws_t *ws, const volatile sig_atomic_t *stop);
const volatile sig_atomic_t *sal_ws_stop(const sal_ws_t *ws);

typedef struct sal_method sal_method_t;
struct sal_method {
    const char *name;
    const char *summary;
    int needs_model;         /* 0 for the model-free controls */
    int per_channel;         /* raw map [C,H,W] (1) or [1,H,W] (0) */
    sal_post_t post;         /* post-processing before metrics */
    int needs_pool;          /* draws baselines from the run's reference images (Expected
                              * Gradients' pool, sal_ws_set_baselines); sMPRT's copies inherit it */
    /* Cost of one image in gradient evaluations (a forward pass counts 1/2). */
    double (*cost)(const sal_params_t *p, int h, int w);
    /* The same for a given model, where it depends on the model (Score-CAM: one
     * forward pass per channel of the CAM node); NULL when cost() says it all. */
    double (*model_cost)(const sal_params_t *p, const nn_model_t *m);
    /* The most inputs the method hands the engine in one call before the workspace's
     * batch caps it (IG: its steps; SmoothGrad: its samples; one for a single
     * gradient, 0 for a control): the batch pages a map touches. NULL: unknown, the
     * whole batch (sal_method_inputs). */
    int (*inputs)(const sal_params_t *p);
    int (*compute)(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws, const float *x,
                   int target, const float *gray, sal_key_t key, float *raw_out);
};

/* The method table, terminated by an entry with a NULL name (static, never freed). */
const sal_method_t *sal_methods(void);
/* Method by name, or NULL. */
const sal_method_t *sal_method_find(const char *name);
/* Inputs per engine call of the n methods at batch `batch` (sal_budget.c): the largest
 * of their inputs(), at least 1 (the target's forward pass), at most batch; batch when
 * one of them does not say. A workspace of `batch` touches the pages of this many. */
int sal_methods_inputs(const sal_method_t *const *methods, int n, const sal_params_t *p,
                       int batch);
/* inputs() of the methods that run one input, or none (controls). */
int sal_inputs_one(const sal_params_t *p);
int sal_inputs_none(const sal_params_t *p);
/* 1 when any of the n methods draws baselines from the reference images (needs_pool;
 * sal_budget.c): the run loads the pool only then. */
int sal_methods_need_pool(const sal_method_t *const *methods, int n);
/* Channels of the method's raw map for this workspace: C or 1. */
int sal_raw_channels(const sal_method_t *method, const sal_ws_t *ws);
/* Cost of one image in gradient evaluations for these parameters (scheduler weights). */
double sal_cost(const sal_method_t *method, const sal_params_t *p, int h, int w);
/* cost() of the gradient CAM methods (gcam, gcampp, layercam, hirescam, xgradcam): a
 * forward pass (1/2) and a backward that stops at the CAM layer (sal_cam_run,
 * nn_backward_opts_t.down_to), which at the default layer, the last convolutional block,
 * is only the pooling and the head: 1/2 in all (measured 0.45-0.56 of a gradient,
 * bench/README.md "Grad-CAM and Guided Grad-CAM"). A layer named lower down costs more. */
double sal_cost_cam(const sal_params_t *p, int h, int w);
/* The same for model m (its input size; for Score-CAM its CAM node's channels). */
double sal_cost_model(const sal_method_t *method, const sal_params_t *p, const nn_model_t *m);

/*
 * Resolve the explained scalar (docs/methods.md section 3): SAL_TARGET_PREDICTED
 * gives the argmax of the logits (0 for a single-logit model), a class index
 * is checked against the number of logits. Runs one forward pass of x
 * [C,H,W]; logits_out (may be NULL) receives the [classes] logits.
 */
int sal_target(sal_ws_t *ws, const float *x, int requested, int *target, float *logits_out);

/*
 * Compute one raw map. x: [C,H,W] normalized input; target: a class index or
 * SAL_TARGET_PREDICTED; gray: [H,W] image in 0..255 (read by sobel only, may
 * be NULL for the others; xrai segments x itself, as the reference does);
 * key: the random draws' keys; raw_out: the caller's buffer of
 * sal_raw_channels(method, ws) * H * W floats. m must be the workspace's
 * model (or NULL). Returns 0; SC_ERR_UNDEFINED (raw_out all NaN, logged at
 * debug level only) when the map is undefined (Grad-CAM of an all-zero CAM,
 * XRAI of a constant image); SC_ERR_ARG for bad parameters (logged).
 */
int sal_compute(const sal_method_t *method, const sal_params_t *p, nn_model_t *m, sal_ws_t *ws,
                const float *x, int target, const float *gray, sal_key_t key, float *raw_out);

/*
 * The paper's post-processing (docs/methods.md section 4) of a raw map into
 * map [H,W] (the caller's buffer): P1 or P2 as the method's table entry says.
 * Returns SC_ERR_UNDEFINED (map all NaN) for a constant or undefined map.
 */
int sal_postprocess(const sal_method_t *method, sal_ws_t *ws, const float *raw, float *map);

/*
 * The noise tensor SmoothGrad adds for `sample` (purpose "sg"; SmoothGrad of
 * IG uses "sig"): out[i] = sigma * N(0,1)_i for i < count, from the stream
 * rng_stream_init(rng_key(key.seed, purpose), key.variant, key.image, sample).
 * Exposed so that tests can hand the same noise to a reference implementation.
 */
void sal_noise(const char *purpose, sal_key_t key, uint32_t sample, float sigma, size_t count,
               float *out);

/* IG quadrature node k of S for a rule: alpha_k in [0,1] and weight w_k (sum w_k = 1).
 * SC_ERR_ARG for S < 1 (S < 2 with the trapezoid rule) or k outside 0..S-1. */
int sal_ig_node(sal_ig_rule_t rule, int steps, int k, double *alpha, double *weight);
/* Rule and baseline names as job files and the CLI spell them; -1 when unknown. */
int sal_ig_rule_parse(const char *name);
const char *sal_ig_rule_name(sal_ig_rule_t rule);
int sal_baseline_parse(const char *name);
const char *sal_baseline_name(sal_baseline_t b);

/* Bilinear resize with half-pixel centres, clamped at the borders (OpenCV
 * INTER_LINEAR, PyTorch interpolate(align_corners=False), the resize of
 * pytorch-grad-cam): src [sh,sw] -> dst [dh,dw]. Allocates nothing. */
void sal_resize_bilinear(const float *src, int sh, int sw, float *dst, int dh, int dw);

/* ------------------------------------------------------------------------
 * For the method files (sal_*.c) only: the workspace layout and the batch
 * drivers. Callers outside workers/saliency use the functions above.
 * ------------------------------------------------------------------------ */
struct sal_ws {
    nn_model_t *model;
    int batch;               /* inputs per engine call */
    int c, h, w;             /* input shape */
    size_t chw, hw;
    int classes;             /* logits */
    int logits_id;
    float black[4];          /* a black pixel per channel (channels beyond 4 use black[3]) */
    char normalize[96];
    float *xb;               /* [batch, chw] batch of inputs */
    float *gb;               /* [batch, chw] their input gradients */
    int *targets;            /* [batch] */
    float *acc, *acc2;       /* [chw] accumulators */
    float *xn;               /* [chw] a noisy copy of x */
    float *base;             /* [chw] the IG baseline */
    float *map_a, *map_b;    /* [chw] method-level maps (ggcam: gbp, gcam) */
    float *plane, *plane2;   /* [hw] */
    int *count;              /* [hw] occlusion coverage */
    float *cam;              /* [largest node plane] Grad-CAM at its layer's resolution */
    double *chan;            /* [largest channel count] per-channel weights */
    size_t cam_cap, chan_cap;
    float *avgmask;          /* [hw], NULL until sal_ws_set_avgmask */
    float *eg_pool;          /* [eg_count, chw] Expected Gradients' reference images */
    int eg_count;
    int eg_borrowed;         /* eg_pool is another workspace's (sal_ws_share_baselines) */
    float *act;              /* [largest node] a copy of a layer's activation (Score-CAM) */
    double *accd;            /* [chw] double accumulator (RISE, Expected Gradients) */
    double *gram;            /* Eigen-CAM's Gram matrix and LAPACK work (grown on first use) */
    int *igram;
    size_t gram_cap, igram_cap;
    postproc_ws_t *post;     /* P1/P2 scratch */
    xrai_ws_t *xrai;         /* the XRAI region workspace (created on first use) */
    xrai_params_t xrai_params; /* the parameters it was created with */
    const volatile sig_atomic_t *stop; /* a stop request (sal_ws_set_stop), NULL: none */
    struct rp_ws *relprop;   /* LRP / DeepLIFT walk buffers (relprop.h; created on first use) */
    struct sal_cascade *cascade; /* the cascade whose state this workspace is (sal_cascade.h) */
    int cascade_slot;        /* its task under sal_cascade_run, else -1 */
    /* its last single-input forward (sal_cascade_forward): the input, the model's act_gen
     * and param_gen after it; a map's forward of the image its target's forward just ran
     * on is not run again */
    float *fwd_x;            /* [chw] */
    uint64_t fwd_gen, fwd_params;
    int fwd_valid;
};

/* fill(ctx, k, dst): write input k ([chw]) to dst. */
typedef void (*sal_fill_fn)(void *ctx, int k, float *dst);
/* consume(ctx, k, grad): input k's gradient [chw], called in k order. */
typedef void (*sal_grad_fn)(void *ctx, int k, const float *grad);
/* consume(ctx, k, logits): input k's logits [classes], called in k order. */
typedef void (*sal_logit_fn)(void *ctx, int k, const float *logits);

/* Gradients of logit `target` for `count` inputs, ws->batch at a time. */
int sal_batch_gradients(sal_ws_t *ws, int count, int target, int guided, sal_fill_fn fill,
                        sal_grad_fn consume, void *ctx);
/* Forward passes only (occlusion). */
int sal_batch_logits(sal_ws_t *ws, int count, sal_fill_fn fill, sal_logit_fn consume, void *ctx);
/* The single gradient g(x) (guided or not) into dx [chw], after a fused
 * forward (nn_forward_fused) of x, or none when the workspace's last forward
 * was of x and is still current (sal_cascade_forward). */
int sal_gradient(sal_ws_t *ws, const float *x, int target, int guided, float *dx);
/* IG of logit `target` at x with baseline b (both [chw]) into out [chw]
 * (anything but ws->acc, which it accumulates in). */
int sal_integrated_gradients(sal_ws_t *ws, const float *x, const float *b, int steps,
                             sal_ig_rule_t rule, int target, float *out);
/* Fill ws->base with the baseline of kind `kind` for x. */
void sal_fill_baseline(sal_ws_t *ws, const float *x, sal_baseline_t kind, double value);
/* Grad-CAM (plus = 0) or Grad-CAM++ (plus = 1) of x at node `layer` ("" =
 * the model's), ReLU, divided by its max, upsampled to [H,W] into out.
 * SC_ERR_UNDEFINED (out NaN) when the CAM is all zero. */
int sal_gradcam(sal_ws_t *ws, const float *x, int target, const char *layer, int plus, float *out);
/* Where a CAM method finds channel c at grid position i of a layer's output:
 * out + offset + c * c_stride + i * pos_stride, on a c x h x w grid. */
typedef struct sal_cam_layout {
    int c, h, w;
    size_t c_stride, pos_stride, offset;
} sal_cam_layout_t;
/* Tokens [1, L, D] (or [L, D]) of a vision transformer on their patch grid,
 * as pytorch-grad-cam's reshape_transform lays them: the class token dropped
 * when L - 1 is a square, all tokens when L is. Returns 1 and fills lay, or 0
 * for a node that is not a token tensor (every CAM method lays tokens so, through
 * sal_cam_layer). */
int sal_cam_tokens(const nn_node_t *nd, sal_cam_layout_t *lay);
/* The CAM family's node: `layer` ("" = the model's Grad-CAM node) resolved to
 * a node id with a spatial extent the workspace can hold; SC_ERR_ARG (logged,
 * `method` names the caller) otherwise. */
int sal_cam_node(sal_ws_t *ws, const char *method, const char *layer, int *id);
/* The CAM family's layer and how its channels lie: tokens on their grid
 * (sal_cam_tokens) or a c x h x w map (sal_cam_node); the node's activation
 * and gradient are kept readable after a pass. 0, or SC_ERR_ARG (logged). */
int sal_cam_layer(sal_ws_t *ws, const char *method, const char *layer, int *id,
                  sal_cam_layout_t *lay);
/* A CAM method's pass at its node: the node id, its layout, and its activation A
 * and gradient G at channel 0 of position 0 (channel c at grid position i:
 * A[c * lay.c_stride + i * lay.pos_stride]). Both point into the model's buffers
 * and are valid until its next pass. */
typedef struct sal_cam_pass {
    int id;
    sal_cam_layout_t lay;
    const float *A, *G;
} sal_cam_pass_t;
/* The CAM family's first steps: sal_cam_layer for `layer`, then the gradient of
 * logit `target` at x (target < 0: the forward pass only, G NULL). 0 or a
 * negative code (logged). */
int sal_cam_run(sal_ws_t *ws, const char *method, const char *layer, const float *x, int target,
                sal_cam_pass_t *cp);
/* ws->cam [h*w] = sum_c ws->chan[c] * A_c at every grid position: the CAM of
 * channel weights. */
void sal_cam_weigh(sal_ws_t *ws, const sal_cam_pass_t *cp);
/* ws->cam [h*w] = sum_c g_c * A_c at every grid position, g = G (HiResCAM)
 * or ReLU(G) (relu_grad = 1, LayerCAM): the element-wise CAMs. */
void sal_cam_grad_act(sal_ws_t *ws, const sal_cam_pass_t *cp, int relu_grad);
/* The CAM family's last steps (pytorch-grad-cam's compute_cam_per_layer):
 * cam [h*w] at the node's resolution (overwritten) -> ReLU, divided by its
 * max, bilinear (half-pixel) upsampling to [H,W] into out. SC_ERR_UNDEFINED
 * (out NaN) when the ReLU'd CAM is zero everywhere. */
int sal_cam_finish(sal_ws_t *ws, const char *method, float *cam, int h, int w, float *out);
/* Bilinear resize with align_corners=True (torch.nn.UpsamplingBilinear2d,
 * Score-CAM's upsampling of activations): src [sh,sw] -> dst [dh,dw]. */
void sal_resize_bilinear_corners(const float *src, int sh, int sw, float *dst, int dh, int dw);
#define SAL_RISE_MAX_CELLS 64
/* RISE mask `index` of the image keyed by key: an s x s grid of cells kept
 * with probability p (uniforms of stream (seed, "rise"), counters (variant,
 * image, index): s*s cell draws, then the row and column shift), upsampled
 * to (s+1)*ceil(H/s) x (s+1)*ceil(W/s) as skimage.transform.resize(order=1,
 * mode='reflect') does, and cropped at the shift: out [H,W] in [0,1].
 * grid (may be NULL) receives the s*s cells (0/1), shift the row and column
 * shift (may be NULL). Exposed so that tests can hand the masks' draws to a
 * reference. */
void sal_rise_mask(sal_key_t key, uint32_t index, int s, double p, int h, int w, float *out,
                   uint8_t *grid, int *shift);
/* Expected Gradients' draw for `sample` of the image keyed by key: the index
 * of the reference image (uniform over count) and alpha ~ U(0,1), from the
 * stream (seed, "eg") with counters (variant, image, sample). Exposed so that
 * tests can hand the same draws to a reference. */
void sal_eg_draw(sal_key_t key, uint32_t sample, int count, int *index, float *alpha);
/* SmoothGrad noise level for x: sg_noise * (max(x) - min(x)). */
float sal_noise_sigma(const sal_params_t *p, const float *x, size_t count);
/* Fill count floats with NaN. */
void sal_fill_nan(float *out, size_t count);

/* The method table entries (one per file). */
extern const sal_method_t sal_method_grad, sal_method_sg, sal_method_ig, sal_method_sig,
    sal_method_gbp, sal_method_gcam, sal_method_ggcam, sal_method_xrai, sal_method_gxi,
    sal_method_occlusion, sal_method_gcampp, sal_method_scorecam, sal_method_layercam,
    sal_method_hirescam, sal_method_xgradcam, sal_method_eigencam, sal_method_rise, sal_method_eg,
    sal_method_random, sal_method_sobel, sal_method_avgmask;
extern const sal_method_t sal_method_lrp, sal_method_deeplift;

#endif /* SALIENCY_H */
