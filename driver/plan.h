/*
 * plan.h - the audit plan: images x model variants x methods, the pairs
 * compared by the similarity metrics, and the work items (docs/design.md, "Data
 * flow"). Every rank builds the same plan from the same job, data set and
 * model files, so the plan itself is never sent.
 */
#ifndef PLAN_H
#define PLAN_H

#include <stdint.h>

#include "io/dataset.h"
#include "io/job.h"
#include "nn/model.h"
#include "checks/check.h"
#include "metrics/complexity.h"
#include "saliency/saliency.h"

typedef enum plan_kind { PLAN_TRAINED = 0, PLAN_CASCADING, PLAN_INDEPENDENT, PLAN_UNTRAINED } plan_kind_t;
const char *plan_kind_name(plan_kind_t k);

#define PLAN_MAX_REINIT 64
#define PLAN_MAX_SMOOTH 16

/* The root computes items between requests up to this many ranks (bench/README.md,
 * "The root's own share"): below it the root adds a worker's throughput (as much
 * as the other rank at 2 ranks); above it that gain is under 1/16 and a root
 * busy with an item delays the answers every waiting worker needs. */
#define PLAN_ROOT_COMPUTES_MAX_RANKS 16

typedef struct plan_variant {
    char name[192];
    int model;                 /* job model index: the base weights */
    plan_kind_t kind;
    int state;                 /* cascading state k >= 1; independent: block number; else 0 */
    char reinit[PLAN_MAX_REINIT][NN_NAME_MAX]; /* blocks re-initialized, in order */
    int n_reinit;              /* -1: every block (untrained) */
    uint64_t reinit_seed;      /* the same for every state of one model: a block gets the same
                                  random weights in every state that randomizes it */
    int n_images;              /* evaluated on images [0, n_images) */
    double cost;               /* gradient evaluations per image, all methods */
} plan_variant_t;

typedef struct plan_pair { int32_t va, ia, vb, ib; int8_t exp; } plan_pair_t;

/* A work item: variant v (nv > 1: the nv variants v.. of one randomization run
 * together, plan_cascade.c) x images [i0, i1). */
typedef struct plan_item { int v, i0, i1; double cost; int nv; } plan_item_t;

/* The per-map metrics salcheck stores: the first PLAN_METRIC_BASE are fields
 * of loc_result_t (the default list); then the map-only checks (sparseness,
 * complexity) and the model checks (workers/checks), only when listed. */
#define PLAN_METRIC_BASE 13
#define PLAN_METRIC_COUNT 22
extern const char *const plan_metric_names[PLAN_METRIC_COUNT];
/* The map-to-map similarities (the last, emprt, is eMPRT's entropy rise of map a over map b). */
#define PLAN_SIM_COUNT 8
#define PLAN_SIM_EMPRT 7
extern const char *const plan_sim_names[PLAN_SIM_COUNT];

typedef struct plan {
    int n_images, size, classes;
    int *ds_index;             /* [N] data set entry of each evaluated image */
    char (*ids)[64];           /* [N] */
    int8_t *labels;            /* [N] */
    uint8_t *gt;               /* [N, size, size] */
    float *avgmask;            /* [size, size] mean training mask */
    plan_variant_t *variants;
    int n_variants;
    int base_variant[JOB_MAX_MODELS]; /* variant of each job model's trained state, or -1 */
    const sal_method_t *methods[JOB_MAX_LIST];
    int n_methods;
    sal_params_t params;
    int metrics[PLAN_METRIC_COUNT]; /* indices into plan_metric_names */
    int n_metrics;
    int sims[PLAN_SIM_COUNT];
    int n_sims;
    plan_pair_t *pairs;
    int n_pairs;
    int n_random_images;       /* images used by randomization experiments */
    chk_params_t checks;       /* the model checks' parameters */
    cx_bin_rule_t emprt_rule;  /* eMPRT's bin rule (CX_BINS_FIXED: emprt_bins) */
    int emprt_bins;            /* the fixed bin count (Quantus's default 100) */
    chk_smooth_t smooth[PLAN_MAX_SMOOTH]; /* sMPRT's denoised methods (listed in methods[]) */
    int n_smooth;
} plan_t;

/*
 * Build the plan. models[j] is the loaded base model of job model j (for its
 * blocks). images: data set entries to evaluate (already selected), with
 * their ids, labels and masks; avgmask computed by the caller. Errors name
 * the job file line. Caller owns *out (plan_destroy).
 */
int plan_build(job_t *job, nn_model_t *const *models, int n_images, const int *ds_index,
               char (*ids)[64], const int8_t *labels, uint8_t *gt, float *avgmask, int size,
               plan_t **out);
void plan_destroy(plan_t *p);

/* The data set options a job's [data] section gives (paths point into job). */
void plan_dataset_options(const job_t *job, dataset_options_t *dopt);

/* The data set entries a job evaluates: the ground-truth-positive test images
 * (or the job's seeded sample of them), capped at max_images, in data set
 * order. Caller frees *index. */
int plan_select_images(const job_t *job, const dataset_t *ds, int **index, int *count);

/* Work items of the map phase over the cells whose done flag is 0 (done may
 * be NULL: none done), at most block images each, most expensive first.
 * Caller frees *items. */
int plan_items(const plan_t *p, const uint8_t *done, int block, plan_item_t **items, int *count);

/* plan_cascade.c. The work items of plan_items, except that the states of one
 * randomization (a model's top-down cascade, its bottom-up cascade, its
 * independent states: consecutive variants) go together, one item per block
 * of images with any cell not done (nv > 1; its cost the sum of its cells').
 * Caller frees *items. */
int plan_cascade_items(const plan_t *p, const uint8_t *done, int block, plan_item_t **items,
                       int *count);
/* Images per work item when the job leaves block_images at 0 (automatic): the
 * largest of PLAN_BLOCK_DEFAULT, 2 and 1 whose most expensive item costs at
 * most 1/PLAN_BLOCK_SHARE of one worker's share of the whole (the items of
 * plan_cascade_items when lockstep, else plan_items, over the cells not done).
 * Larger blocks pay a state's set-up fewer times; an item that outweighs a
 * worker's share leaves the other workers idle at the end (a randomization's
 * 11 lockstep states of 4 images each, on 512 ranks). */
#define PLAN_BLOCK_DEFAULT 4
#define PLAN_BLOCK_SHARE 4
int plan_block_auto(const plan_t *p, const uint8_t *done, int lockstep, int workers, int *block);
/* The rule of plan_block_auto on given item costs: does an item list whose
 * largest cost is max and whose total is total fit `workers`? */
int plan_block_fits(double max, double total, int workers);

/* The variants v.. of the randomization group variant v starts (1 when alone). */
int plan_cascade_group(const plan_t *p, int v);

/* Apply variant v to model m whose parameters hold the base weights. */
int plan_apply_variant(const plan_t *p, const plan_variant_t *v, nn_model_t *m, int keep_bn_stats);

/* Gradient evaluations per image of method k on model m (NULL: by the input size only;
 * sMPRT's wrappers: N x their base's). */
double plan_method_cost(const plan_t *p, int k, const nn_model_t *m);

/* 1 when metric index idx (into plan_metric_names) is listed. */
int plan_has_metric(const plan_t *p, int idx);

/* Parameter text for the results file (one "key = value" per line). */
void plan_params_text(const plan_t *p, char *buf, size_t len);

/* `salcheck run JOB.ini --plan ...`: validate the job, print the plan and its
 * measured cost estimate without computing a map (plan_estimate.c). Rank 0
 * does the work; other ranks return at once. */
int plan_estimate_main(int argc, char **argv);

#endif
