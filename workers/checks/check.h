/*
 * check.h - the checks of a saliency map that need the model, behind one
 * interface (module workers/checks, prefix chk_). Definitions, sources and
 * defaults: docs/methods.md, "Checks beyond the paper".
 *
 * A check reads one map of one method (the stored, post-processed [H,W] map
 * in [0,1]) with the input it explains and the model that made it, runs the
 * model on perturbed inputs, and writes one or more per-map values that go
 * to /metrics beside AUPRC:
 *
 *   check         values                        cost per map (gradient evaluations)
 *   deletion      deletion                      (K + 1) / 2      forward passes / 2
 *   insertion     insertion                     (K + 1) / 2
 *   road          road_morf, road_lerf          2 P / 2          (P percentages)
 *   random_logit  random_logit                  c(method)        one more map
 *   sensitivity   max_sensitivity, avg_sens.    N c(method)      N more maps
 *
 * with K deletion steps, P ROAD percentages, N sensitivity samples and
 * c(method) the method's own cost (sal_cost); a forward pass counts 1/2,
 * as in saliency.h. The scheduler adds these costs to the variant's.
 *
 * Determinism: the pixel order is the map's values descending, ties in
 * raster order; every random draw (ROAD's imputation noise, the sensitivity
 * perturbations, random_logit's other class) comes from the Philox streams
 * keyed by (job seed, purpose) with counters (variant, image, method, sample),
 * so the values depend on neither the rank nor the batch size.
 */
#ifndef CHECK_H
#define CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "metrics/metrics.h"
#include "saliency/saliency.h"

#define CHK_MAX_OUT 2
#define CHK_MAX_PERCENT 32

/* What replaces removed pixels (deletion) or what insertion starts from. */
typedef enum chk_fill {
    CHK_FILL_ZERO = 0, /* 0 in the normalized input space (RISE's deletion substrate) */
    CHK_FILL_BLACK,    /* black in the model's normalization (-1 for "inception") */
    CHK_FILL_BLUR,     /* the image blurred by RISE's kernel (11 x 11, sigma 5) */
    CHK_FILL_MEAN,     /* each channel's mean over the image */
    CHK_FILL_COUNT
} chk_fill_t;

/* Probability of the explained class: the softmax over the logits, the
 * sigmoid of the explained logit, or (the default) the model's own head:
 * sigmoid for a model whose graph ends in a sigmoid (multi-label), else
 * softmax (chk_prob_for_model). */
typedef enum chk_prob { CHK_PROB_SOFTMAX = 0, CHK_PROB_SIGMOID, CHK_PROB_HEAD } chk_prob_t;

/* Every parameter of every check; chk_params_default() gives the sources' values. */
typedef struct chk_params {
    int del_steps;             /* deletion/insertion steps K (RISE: 224) */
    chk_fill_t del_fill;       /* deletion substrate (RISE: zero) */
    chk_fill_t ins_start;      /* insertion start (RISE: blur) */
    chk_prob_t prob;           /* head (default: the model's), softmax (RISE, ROAD) or sigmoid */
    int road_percent[CHK_MAX_PERCENT]; /* ROAD's removal percentages (10, 20, ..., 90) */
    int road_n_percent;
    double road_noise;         /* ROAD's imputation noise, std in the input space (0.01) */
    int sens_samples;          /* sensitivity draws N (Quantus: 200) */
    double sens_radius;        /* perturbation U(-r, r) per input value (Quantus: 0.2) */
} chk_params_t;

chk_params_t chk_params_default(void);

/* The workspace: every buffer the checks need for one model input size,
 * allocated once (chk_ws_create); bound to nothing else. */
typedef struct chk_ws chk_ws_t;

/* One map to check and what produced it. */
typedef struct chk_input {
    const sal_method_t *method;
    const sal_params_t *sp;
    nn_model_t *model;
    sal_ws_t *ws;              /* the model's saliency workspace (its batch buffers run the model) */
    const float *x;            /* [C,H,W] normalized input */
    const float *gray;         /* [H,W] 0..255 (for methods that read it) */
    int target;                /* the explained class */
    sal_key_t key;             /* the method's keys (its own noise) */
    uint32_t method_index;     /* counter for the checks' own draws */
    const float *map;          /* [H,W] post-processed map in [0,1] */
} chk_input_t;

typedef struct chk_check chk_check_t;
struct chk_check {
    const char *name;
    const char *summary;
    int n_out;
    const char *out[CHK_MAX_OUT]; /* the /metrics names it writes */
    /* Gradient evaluations per map; method_cost = sal_cost of the checked method. */
    double (*cost)(const chk_params_t *p, int h, int w, double method_cost);
    /* values[n_out]; NaN where undefined (returns SC_ERR_UNDEFINED then). */
    int (*compute)(const chk_check_t *self, const chk_params_t *p, chk_ws_t *cw,
                   const chk_input_t *in, double *values);
};

/* The table: pointers to every check, NULL-terminated (static, never freed). */
const chk_check_t *const *chk_checks(void);
/* The check that writes metric `name`, and that value's index in its out[]; NULL if none. */
const chk_check_t *chk_find_output(const char *name, int *out_index);

/*
 * Create a workspace for inputs of c x h x w and the checks' parameters
 * (which size some buffers). NULL on bad sizes or out of memory. The caller
 * owns it: chk_ws_destroy.
 */
chk_ws_t *chk_ws_create(int c, int h, int w, const chk_params_t *p);
void chk_ws_destroy(chk_ws_t *cw);

/* Parse option values as job files spell them; -1 when unknown. */
int chk_fill_parse(const char *name);
const char *chk_fill_name(chk_fill_t f);
int chk_prob_parse(const char *name);
const char *chk_prob_name(chk_prob_t p);

/* Points of the curve behind value `out` of a check (0: it has none):
 * deletion/insertion ceil(HW / step) + 1, ROAD one per percentage. */
int chk_curve_len(const chk_check_t *ck, int out, const chk_params_t *p, int h, int w);
/* The curve behind value `out` of the check computed last in this workspace
 * (*count points: deletion/insertion probabilities after 0, 1, ... steps;
 * ROAD's probability per percentage). For the results file and tests. */
const double *chk_last_curve(const chk_ws_t *cw, int out, int *count);

/* ---- for the check files (chk_*.c) only ---- */
struct chk_ws {
    int c, h, w;
    size_t hw, chw;
    int32_t *order;            /* [hw] pixel indices, map value descending, ties by index */
    double *sort_key;          /* [hw] */
    float *start, *finish;     /* [chw] the curve's two images */
    float *fill;               /* [chw] a substrate (blur, mean, ...) */
    float kernel[11 * 11];     /* RISE's blur kernel */
    double *curves[CHK_MAX_OUT]; /* [max(steps, percentages) + 2] per value */
    int curve_len[CHK_MAX_OUT];
    /* ROAD */
    uint8_t *removed;          /* [hw] */
    int32_t *var_of;           /* [hw] unknown index of a removed pixel, -1 kept */
    int32_t *pix_of;           /* [hw] pixel of unknown k */
    double *cg[5];             /* [hw] conjugate-gradient vectors: x, r, p, Ap, rhs */
    double *pyr_v, *pyr_w;     /* [2 hw] the pull-push pyramid of the initial guess */
    long cg_iterations;        /* conjugate-gradient iterations so far (for benchmarks) */
    float *noise;              /* [chw] */
    float *imputed;            /* [P, chw] the imputed images of one order */
    int max_percent;
    /* maps recomputed by random_logit and sensitivity */
    float *raw;                /* [chw] */
    float *map2;               /* [hw] */
    float *xp;                 /* [chw] perturbed input */
    metrics_ws_t *mws;         /* SSIM for random_logit */
};

/* Pixel order of a map (descending, ties by index) into cw->order. */
void chk_order(chk_ws_t *cw, const float *map);
/* The probability a model's checks use: p itself when softmax or sigmoid;
 * for CHK_PROB_HEAD, sigmoid when the model's head is a sigmoid, else softmax. */
chk_prob_t chk_prob_for_model(chk_prob_t p, const nn_model_t *m);
/* The explained probability from logits [classes] (p softmax or sigmoid). */
double chk_probability(chk_prob_t p, const float *logits, int classes, int target);
/* Fill dst [chw] with substrate f for input x. */
void chk_substrate(chk_ws_t *cw, chk_fill_t f, const float *x, const float *black, float *dst);
/* The deletion/insertion curve from cw->start to cw->finish in K steps (pixels
 * in cw->order); area by the trapezoid on [0, 1] into *auc. */
int chk_curve(chk_ws_t *cw, const chk_params_t *p, const chk_input_t *in, double *auc);

/* ROAD's imputation noise for percentage k of one order: count floats of std
 * `std` from the stream (seed, "road"), counters (variant, image,
 * 64 method_index + 32 lerf + k), laid out [C,H,W]. */
void chk_road_noise(sal_key_t key, uint32_t method_index, int lerf, int k, double std, size_t count,
                    float *out);
/* ROAD's noisy linear imputation of x [C,H,W]: removes the first (lerf = 0)
 * or last (lerf = 1) floor(percent HW / 100) pixels of cw->order and writes x
 * with them imputed, plus noise [C,H,W] (NULL: none), to out [C,H,W]. */
int chk_road_impute(chk_ws_t *cw, const float *x, int lerf, int percent, const float *noise,
                    float *out);
/* random_logit's other class (uniform over the classes but target); -1 with one class. */
int chk_random_logit_class(sal_key_t key, uint32_t method_index, int classes, int target);
/* Sensitivity draw s: count values U(-radius, radius), the same for every method. */
void chk_sensitivity_noise(sal_key_t key, int s, double radius, size_t count, float *out);

/*
 * sMPRT's denoised explanation of a base method (chk_smooth.c): a method of
 * its own, "smprt-<base>", whose raw map is the mean of the base's raw maps
 * over `samples` noisy copies of x (noise std = noise (max(x) - min(x)), the
 * last copy noise-free). `method` must stay the first member: the wrapper is
 * handed to the saliency layer as a sal_method_t. The caller owns the
 * storage (the plan keeps one per wrapped method).
 */
typedef struct chk_smooth {
    sal_method_t method;
    const sal_method_t *base;
    int samples;               /* N (Quantus: 50) */
    double noise;              /* noise magnitude (Quantus: 0.1) */
    char name[80];
    size_t chw;                /* the buffers' size: the input's values */
    float *xn, *one;           /* [chw] a noisy copy, one base map */
    double *acc;               /* [chw] the running sum */
} chk_smooth_t;

/* Set up s for inputs of chw values (allocates its buffers: chk_smooth_free). */
int chk_smooth_init(chk_smooth_t *s, const sal_method_t *base, int samples, double noise,
                    size_t chw);
void chk_smooth_free(chk_smooth_t *s);
/* Gradient evaluations per map: samples x the base method's cost. */
double chk_smooth_cost(const chk_smooth_t *s, const sal_params_t *p, int h, int w);

#endif /* CHECK_H */
