/*
 * run_cascade.c - a randomization group's work item: every state's cells of
 * a block of images in lockstep (run_cascade.h), and the per-cell method
 * loop that single-variant cells share.
 *
 * Owned by driver. For each image the cells not yet done run as the states
 * of one sal_cascade_run: each state resolves its target, computes every
 * method's raw map (its engine batches computed with the other states',
 * the lower layers once), post-processes it and scores it. The cells are
 * then written and marked done in state order, data before flag, so that a
 * killed rank loses only the image in progress (--resume computes the cells
 * whose flag is not set, grouped again or not).
 */
#include "run_cascade.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/localization.h"
#include "saliency/sal_cascade.h"
#include "sc.h"

struct run_cascade {
    int v0, nv;                 /* the group */
    sal_cascade_t *cs;
    float *x, *gray;            /* [3*H*W], [H*W] the image */
    float *raw, *maps, *logits; /* per state: [3*H*W], [M*H*W], [classes] */
    double *metrics;            /* per state: [K*M] */
    int *targets, *states, *rcs;
    const run_cascade_env_t *env;
    int image;
};

void run_cascade_destroy(run_cascade_t *r)
{
    if (!r)
        return;
    sal_cascade_destroy(r->cs);
    free(r->x);
    free(r->gray);
    free(r->raw);
    free(r->maps);
    free(r->logits);
    free(r->metrics);
    free(r->targets);
    free(r->states);
    free(r->rcs);
    free(r);
}

static double metric_value(const loc_result_t *r, int idx)
{
    const double values[PLAN_METRIC_COUNT] = {r->auprc, r->ap, r->roc_auc, r->pointing, r->energy,
                                              r->rra, r->topk, r->iou_otsu, r->dice_otsu,
                                              r->iou_fixed, r->dice_fixed, r->soft_dice_in,
                                              r->soft_dice_out};
    return values[idx];
}

int run_cell_methods(const plan_t *p, nn_model_t *m, sal_ws_t *ws, chk_ws_t *cws,
                     metrics_ws_t *mws, const run_curves_t *curves, double *curve_buf,
                     const float *x, const float *gray, int target, sal_key_t key, int i,
                     const char *vname, float *raw, float *maps, double *metrics)
{
    int rc = 0;
    const int M = p->n_methods;
    const size_t hw = (size_t)p->size * p->size;
    loc_opts_t lopts;
    loc_opts_default(&lopts);
    /* the methods of one input first: they explain the image the target's forward just ran
     * on, and run no forward of their own (sal_cascade_forward); the maps do not depend on
     * the order */
    for (int step = 0; step < 2 * M; step++) {
        const int k = step % M;
        const sal_method_t *meth = p->methods[k];
        if ((meth->inputs == sal_inputs_one) != (step < M))
            continue;
        float *map = maps + (size_t)k * hw;
        int r = sal_compute(meth, &p->params, m, ws, x, target, gray, key, raw);
        if (r == 0)
            r = sal_postprocess(meth, ws, raw, map);
        if (r == SC_ERR_UNDEFINED) {
            for (size_t q = 0; q < hw; q++)
                map[q] = NAN;
            for (int q = 0; q < p->n_metrics; q++)
                metrics[(size_t)q * M + k] = NAN;
            continue;
        }
        CHECK(r == 0, r, "method %s failed on image %s, variant %s", meth->name, p->ids[i], vname);
        loc_result_t lr;
        loc_all(mws, map, p->gt + (size_t)i * hw, &lopts, &lr);
        for (int q = 0; q < p->n_metrics; q++)
            metrics[(size_t)q * M + k] =
                p->metrics[q] < PLAN_METRIC_BASE ? metric_value(&lr, p->metrics[q]) : NAN;
        /* the checks beyond the paper (run_checks.c) */
        chk_input_t cin = {.method = meth, .sp = &p->params, .model = m, .ws = ws, .x = x,
                           .gray = gray, .target = target, .key = key,
                           .method_index = (uint32_t)k, .map = map};
        CHECK_RC(run_checks_map(p, cws, mws, &cin, metrics + k, M, curves, curve_buf, k));
    }
cleanup:
    return rc;
}

/* The nodes variant pv re-initializes: mask[i] = 1 ([m->n_nodes]). */
static void variant_mask(const plan_variant_t *pv, const nn_model_t *m, uint8_t *mask)
{
    mask[0] = 0;
    for (int i = 1; i < m->n_nodes; i++) {
        int hit = pv->n_reinit < 0;
        for (int b = 0; b < pv->n_reinit && !hit; b++)
            hit = !strcmp(m->nodes[i].block, pv->reinit[b]);
        mask[i] = (uint8_t)hit;
    }
}

int run_cascade_budget(const plan_t *p, nn_model_t *const *models, int n_models, int *states,
                       double *fixed_bytes)
{
    int rc = 0;
    uint8_t *mask = NULL, *keep = NULL, *any = NULL;
    *fixed_bytes = 0.0;
    for (int j = 0; j < n_models; j++)
        states[j] = 0;
    const size_t hw = (size_t)p->size * p->size;
    for (int j = 0; j < n_models; j++) {
        nn_model_t *m = models[j];
        const int N = m->n_nodes;
        free(keep);
        free(any);
        keep = malloc((size_t)N);
        any = calloc((size_t)N, 1);
        CHECK_ALLOC(keep);
        CHECK_ALLOC(any);
        for (int v = 0; v < p->n_variants;) {
            const int nv = plan_cascade_group(p, v);
            if (nv > 1 && p->variants[v].model == j) {
                free(mask);
                mask = calloc((size_t)nv * N, 1);
                CHECK_ALLOC(mask);
                for (int k = 0; k < nv; k++)
                    variant_mask(&p->variants[v + k], m, mask + (size_t)k * N);
                sal_cascade_keeps(m, nv, mask, keep);
                for (int i = 0; i < N; i++)
                    any[i] |= keep[i];
                states[j] = nv > states[j] ? nv : states[j];
                /* run_cascade_t's per-state maps, raw maps, metrics and logits */
                const double item = (double)nv * ((3.0 + p->n_methods) * hw * sizeof(float) +
                                                  (double)p->n_metrics * p->n_methods * 8.0 +
                                                  p->classes * sizeof(float));
                *fixed_bytes = item > *fixed_bytes ? item : *fixed_bytes;
            }
            v += nv;
        }
        CHECK_RC(nn_model_keep_outputs(m, any));
    }
cleanup:
    free(mask);
    free(keep);
    free(any);
    return rc;
}

/* The group's cascade: a randomized slab with every block any state re-initializes, and
 * per state the nodes it re-initializes. */
static int cascade_create(run_cascade_t **out, const run_cascade_env_t *env, int v0, int nv)
{
    int rc = 0;
    const plan_t *p = env->p;
    nn_model_t *m = env->m;
    const int N = m->n_nodes, M = p->n_methods;
    const size_t hw = (size_t)p->size * p->size;
    uint8_t *mask = calloc((size_t)nv * N, 1);
    run_cascade_t *r = calloc(1, sizeof *r);
    CHECK_ALLOC(mask);
    CHECK_ALLOC(r);
    r->v0 = v0;
    r->nv = nv;
    memcpy(m->params, env->base_params, sizeof(float) * m->n_params);
    for (int k = 0; k < nv; k++) {
        const plan_variant_t *pv = &p->variants[v0 + k];
        CHECK_RC(plan_apply_variant(p, pv, m, env->keep_bn_stats));
        variant_mask(pv, m, mask + (size_t)k * N);
    }
    nn_model_params_changed(m);
    /* m->params hold every re-initialized block now: the cascade copies them */
    CHECK_RC(sal_cascade_create(&r->cs, m, env->batch, NULL, env->base_params, m->params, nv,
                                mask));
    for (int k = 0; k < nv; k++) {
        sal_ws_t *ws = sal_cascade_ws(r->cs, k);
        if (env->like->avgmask)
            CHECK_RC(sal_ws_set_avgmask(ws, env->like->avgmask));
        if (env->like->eg_pool)
            sal_ws_share_baselines(ws, env->like);
        sal_ws_set_stop(ws, sal_ws_stop(env->like));
    }
    r->x = malloc(sizeof(float) * 3 * hw);
    r->gray = malloc(sizeof(float) * hw);
    r->raw = malloc(sizeof(float) * 3 * hw * nv);
    r->maps = malloc(sizeof(float) * hw * M * nv);
    r->logits = calloc((size_t)p->classes * nv, sizeof(float));
    r->metrics = calloc((size_t)p->n_metrics * M * nv + 1, sizeof(double));
    r->targets = calloc((size_t)nv, sizeof(int));
    r->states = calloc((size_t)nv, sizeof(int));
    r->rcs = calloc((size_t)nv, sizeof(int));
    CHECK_ALLOC(r->x);
    CHECK_ALLOC(r->gray);
    CHECK_ALLOC(r->raw);
    CHECK_ALLOC(r->maps);
    CHECK_ALLOC(r->logits);
    CHECK_ALLOC(r->metrics);
    CHECK_ALLOC(r->targets);
    CHECK_ALLOC(r->states);
    CHECK_ALLOC(r->rcs);
    *out = r;
    r = NULL;
cleanup:
    run_cascade_destroy(r);
    free(mask);
    return rc;
}

/* One state of one image: its target and every method's map and metrics. */
static int cell_state(void *vctx, int k, sal_ws_t *ws)
{
    run_cascade_t *r = vctx;
    const run_cascade_env_t *env = r->env;
    const plan_t *p = env->p;
    const size_t hw = (size_t)p->size * p->size;
    const int M = p->n_methods;
    int target = 0;
    int rc = sal_target(ws, r->x, env->target, &target, r->logits + (size_t)k * p->classes);
    if (rc < 0)
        return rc;
    r->targets[k] = target;
    sal_key_t key = {env->seed, 0, (uint32_t)r->image};
    run_curves_t none;
    memset(&none, 0, sizeof none);
    double no_curve = 0.0;
    return run_cell_methods(p, env->m, ws, NULL, env->mws, &none, &no_curve, r->x, r->gray,
                            target, key, r->image, p->variants[r->v0 + k].name,
                            r->raw + (size_t)k * 3 * hw, r->maps + (size_t)k * M * hw,
                            r->metrics + (size_t)k * p->n_metrics * M);
}

int run_cascade_item(run_cascade_t **state, const run_cascade_env_t *env, const plan_item_t *it,
                     int *write_failed, double *t_compute, double *t_write)
{
    int rc = 0;
    const plan_t *p = env->p;
    const size_t hw = (size_t)p->size * p->size;
    const int M = p->n_methods;
    if (*state && ((*state)->v0 != it->v || (*state)->nv != it->nv)) {
        run_cascade_destroy(*state);
        *state = NULL;
    }
    if (!*state)
        CHECK_RC(cascade_create(state, env, it->v, it->nv));
    run_cascade_t *r = *state;
    r->env = env;
    for (int i = it->i0; i < it->i1; i++) {
        int n = 0;
        for (int k = 0; k < it->nv; k++)
            if (!(env->done && env->done[(size_t)(it->v + k) * p->n_images + i]))
                r->states[n++] = k;
        if (n == 0)
            continue;
        const double t0 = sc_now();
        char path[2048];
        int ri = dataset_image_path(env->ds, p->ds_index[i], path, sizeof path);
        if (ri == 0)
            ri = image_loader_load(env->loader, path, r->x, r->gray);
        if (ri < 0) {
            SC_ERROR("image %s not loaded: its cells are not computed", p->ids[i]);
            rc = ri;
            continue;
        }
        r->image = i;
        sal_cascade_run(r->cs, r->states, n, env->reuse, cell_state, r, r->rcs);
        const double t1 = sc_now();
        *t_compute += t1 - t0;
        int stopped = 0;
        for (int t = 0; t < n; t++) {
            const int k = r->states[t], v = it->v + k;
            if (r->rcs[t] == SC_ERR_INTERRUPTED) { /* a signal: nothing of this cell written */
                SC_INFO("cell (variant %s, image %s) stopped unfinished; --resume computes it",
                        p->variants[v].name, p->ids[i]);
                stopped = 1;
                continue;
            }
            if (r->rcs[t] < 0) {
                SC_ERROR("cell (variant %s, image %s) not computed; rerun with --resume after "
                         "fixing the cause", p->variants[v].name, p->ids[i]);
                rc = r->rcs[t];
                continue;
            }
            int w = results_write_cell(env->res, v, i, r->maps + (size_t)k * M * hw,
                                       r->metrics + (size_t)k * p->n_metrics * M,
                                       r->logits + (size_t)k * p->classes, r->targets[k],
                                       (t1 - t0) / n, env->rank);
            if (w == 0) {
                sc_failpoint("cell", (long)v * p->n_images + i); /* tests: data written, flag not */
                w = results_mark_done(env->res, v, i);
            }
            if (w < 0) {
                if (!*write_failed)
                    SC_ERROR("the results file cannot be written (see above): this rank takes no "
                             "more items; finished cells are kept. Free space or fix the file "
                             "system, then continue with --resume");
                *write_failed = 1;
                *t_write += sc_now() - t1;
                return w;
            }
        }
        *t_write += sc_now() - t1;
        if (stopped)
            return SC_ERR_INTERRUPTED;
    }
cleanup:
    return rc;
}
