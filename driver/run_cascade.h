/*
 * run_cascade.h - what a rank does with one work item of a randomization
 * group (plan_cascade_items): every state's cells of a block of images,
 * the states in lockstep with the layers below their re-initialized blocks
 * computed once per input batch (workers/saliency/sal_cascade.h).
 *
 * Owned by driver (the map phase of `salcheck run`, cmd_run.c). Also holds
 * the per-cell method loop that cmd_run's single-variant cells share.
 */
#ifndef RUN_CASCADE_H
#define RUN_CASCADE_H

#include "io/dataset.h"
#include "io/image.h"
#include "io/results.h"
#include "metrics/metrics.h"
#include "plan.h"
#include "run_checks.h"
#include "saliency/saliency.h"

/* Every method of one cell (variant name vname, image i): raw maps through
 * raw [3*H*W], maps [M, H*W] and metrics [K, M] (NaN where undefined), the
 * checks' curves into curve_buf (cws and curves as run_checks_map takes
 * them). Returns 0 or the first error (logged). */
int run_cell_methods(const plan_t *p, nn_model_t *m, sal_ws_t *ws, chk_ws_t *cws,
                     metrics_ws_t *mws, const run_curves_t *curves, double *curve_buf,
                     const float *x, const float *gray, int target, sal_key_t key, int i,
                     const char *vname, float *raw, float *maps, double *metrics);

/* What a group item needs from the run. */
typedef struct run_cascade_env {
    const plan_t *p;
    results_t *res;
    const dataset_t *ds;
    image_loader_t *loader;     /* the group's model's */
    nn_model_t *m;              /* the group's model; its parameters are overwritten */
    const float *base_params;   /* its trained parameters */
    const sal_ws_t *like;       /* its workspace: the states' workspaces copy its avgmask and
                                   Expected Gradients' pool */
    int target;                 /* the explained output, or SAL_TARGET_PREDICTED */
    metrics_ws_t *mws;
    const uint8_t *done;        /* [V*N] cells done when the run started (NULL: none) */
    int batch, reuse, keep_bn_stats, rank;
    uint64_t seed;
} run_cascade_env_t;

typedef struct run_cascade run_cascade_t;

/*
 * The cells of item it (it->nv variants from it->v, images it->i0..it->i1)
 * that were not done: computed, written, then marked done image by image.
 * *state keeps the group's cascade between items (created on first use,
 * replaced when another group comes; run_cascade_destroy). *write_failed is
 * set when the results file refused a write. Returns 0 or the first error.
 */
int run_cascade_item(run_cascade_t **state, const run_cascade_env_t *env, const plan_item_t *it,
                     int *write_failed, double *t_compute, double *t_write);
void run_cascade_destroy(run_cascade_t *r);

/*
 * Before a per-rank memory budget chooses the batch with cascade reuse on
 * (sal_batch_for_memory_cascade): each model keeps the outputs its
 * randomization groups' cascades keep (sal_cascade_keeps), states[j]
 * ([n_models]) receives the largest group of model j (0: none) and
 * *fixed_bytes what the largest group item holds beside its workspaces
 * (every state's maps and metrics of one image). Returns 0 or an error.
 */
int run_cascade_budget(const plan_t *p, nn_model_t *const *models, int n_models, int *states,
                       double *fixed_bytes);

#endif
