/*
 * plan.c - building the audit plan from a job (plan.h, docs/methods.md section 6).
 */
#include "plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/dataset.h"
#include "io/results.h"
#include "nn/zoo.h"
#include "rng.h"
#include "saliency/relprop.h"
#include "sc.h"

const char *const plan_metric_names[PLAN_METRIC_COUNT] = {
    "auprc", "ap", "roc_auc", "pointing", "energy", "rra", "topk", "iou_otsu", "dice_otsu",
    "iou_fixed", "dice_fixed", "soft_dice_in", "soft_dice_out",
    /* beyond the paper (docs/methods.md): map-only, then model checks */
    "sparseness", "complexity", "deletion", "insertion", "road_morf", "road_lerf", "random_logit",
    "max_sensitivity", "avg_sensitivity"};

const char *const plan_sim_names[PLAN_SIM_COUNT] = {"ssim", "ssim_l1", "ssim_gauss", "spearman",
                                                    "spearman_abs", "pearson", "hog", "emprt"};

static const char *kind_names[] = {"trained", "cascading", "independent", "untrained"};
const char *plan_kind_name(plan_kind_t k) { return kind_names[k]; }

void plan_destroy(plan_t *p)
{
    if (!p)
        return;
    for (int k = 0; k < p->n_smooth; k++)
        chk_smooth_free(&p->smooth[k]);
    free(p->variants);
    free(p->pairs);
    free(p);
}

static int find_name(const char *const *names, int count, const char *name)
{
    for (int i = 0; i < count; i++)
        if (!strcmp(names[i], name))
            return i;
    return -1;
}

/* Method parameters of the job into sal_params (every key must be consumed). */
static int read_params(job_t *job, sal_params_t *sp)
{
    int bad = 0;
    const char *v;
    int line;
#define PARAM_INT(meth, key, field, lo, hi)                                                   \
    if (job_method_param(job, meth, key, &v, &line)) {                                        \
        char *end;                                                                            \
        long x = strtol(v, &end, 10);                                                         \
        if (*end || end == v || x < (lo) || x > (hi)) {                                       \
            SC_ERROR("%s:%d: %s.%s = '%s' is not an integer in %d..%d", job->path, line, meth, \
                     key, v, (int)(lo), (int)(hi));                                           \
            bad++;                                                                            \
        } else                                                                                \
            sp->field = (int)x;                                                               \
    }
#define PARAM_DBL(meth, key, field, lo, hi)                                                   \
    if (job_method_param(job, meth, key, &v, &line)) {                                        \
        char *end;                                                                            \
        double x = strtod(v, &end);                                                           \
        if (*end || end == v || !(x >= (lo) && x <= (hi))) {                                  \
            SC_ERROR("%s:%d: %s.%s = '%s' is not a number in [%g, %g]", job->path, line, meth, \
                     key, v, (double)(lo), (double)(hi));                                     \
            bad++;                                                                            \
        } else                                                                                \
            sp->field = x;                                                                    \
    }
    PARAM_INT("sg", "samples", sg_samples, 1, 100000);
    PARAM_DBL("sg", "noise", sg_noise, 0.0, 10.0);
    PARAM_INT("sg", "squared", sg_squared, 0, 1);
    PARAM_INT("ig", "steps", ig_steps, 1, 100000);
    PARAM_DBL("ig", "baseline_value", ig_baseline_value, -1e6, 1e6);
    PARAM_INT("sig", "samples", sig_samples, 1, 100000);
    PARAM_INT("sig", "squared", sig_squared, 0, 1);
    PARAM_INT("xrai", "steps", xrai_steps, 1, 100000);
    PARAM_INT("occlusion", "window", occ_window, 1, 4096);
    PARAM_INT("occlusion", "stride", occ_stride, 1, 4096);
    PARAM_DBL("occlusion", "fill", occ_fill, -1e6, 1e6);
    PARAM_INT("rise", "masks", rise_masks, 1, 1000000);
    PARAM_INT("rise", "cells", rise_cells, 1, SAL_RISE_MAX_CELLS);
    PARAM_DBL("rise", "p", rise_p, 1e-6, 1.0);
    PARAM_INT("eg", "samples", eg_samples, 1, 100000);
    PARAM_INT("eg", "pool", eg_pool, 1, 100000);
    if (job_method_param(job, "ig", "rule", &v, &line)) {
        int r = sal_ig_rule_parse(v);
        if (r < 0) {
            SC_ERROR("%s:%d: ig.rule = '%s' is not a known rule (linspace, left, right, midpoint, "
                     "trapezoid, gauss-legendre)", job->path, line, v);
            bad++;
        } else
            sp->ig_rule = (sal_ig_rule_t)r;
    }
    if (job_method_param(job, "ig", "baseline", &v, &line)) {
        int b = sal_baseline_parse(v);
        if (b < 0) {
            SC_ERROR("%s:%d: ig.baseline = '%s' is not known (black, value, min, max)", job->path,
                     line, v);
            bad++;
        } else
            sp->ig_baseline = (sal_baseline_t)b;
    }
    if (job_method_param(job, "gcam", "layer", &v, &line))
        snprintf(sp->gcam_layer, sizeof sp->gcam_layer, "%s", v);
    /* LRP and DeepLIFT (docs/methods.md) */
    PARAM_DBL("lrp", "epsilon", lrp_epsilon, 0.0, 1e6);
    PARAM_DBL("lrp", "stabilizer", lrp_stabilizer, 0.0, 1e6);
    PARAM_DBL("lrp", "gamma", lrp_gamma, 0.0, 1e6);
    PARAM_DBL("lrp", "alpha", lrp_alpha, 1.0, 1e6);
    PARAM_DBL("lrp", "low", lrp_low, -1e6, 1e6);
    PARAM_DBL("lrp", "high", lrp_high, -1e6, 1e6);
    PARAM_DBL("deeplift", "baseline_value", dl_baseline_value, -1e6, 1e6);
    if (job_method_param(job, "lrp", "composite", &v, &line)) {
        int c = lrp_composite_parse(v);
        if (c < 0) {
            SC_ERROR("%s:%d: lrp.composite = '%s' is not known (epsilon_plus_flat, "
                     "epsilon_gamma_box, epsilon_plus, epsilon_alpha2_beta1, epsilon)", job->path,
                     line, v);
            bad++;
        } else
            sp->lrp_composite = c;
    }
    {
        const char *kinds[3] = {"first", "conv", "dense"};
        int *fields[3] = {&sp->lrp_first, &sp->lrp_conv, &sp->lrp_dense};
        for (int k = 0; k < 3; k++)
            if (job_method_param(job, "lrp", kinds[k], &v, &line)) {
                int r = lrp_rule_parse(v);
                if (r < 0 || (k > 0 && r == LRP_RULE_ZBOX)) {
                    SC_ERROR("%s:%d: lrp.%s = '%s' is not a rule for this layer kind (epsilon, "
                             "zplus, gamma, alphabeta, flat%s)", job->path, line, kinds[k], v,
                             k ? "" : ", zbox");
                    bad++;
                } else
                    *fields[k] = r;
            }
    }
    if (job_method_param(job, "deeplift", "baseline", &v, &line)) {
        int b = sal_baseline_parse(v);
        if (b < 0) {
            SC_ERROR("%s:%d: deeplift.baseline = '%s' is not known (black, value, min, max)",
                     job->path, line, v);
            bad++;
        } else
            sp->dl_baseline = (sal_baseline_t)b;
    }
#undef PARAM_INT
#undef PARAM_DBL
    return bad ? SC_ERR_FORMAT : 0;
}

/* The checks' parameters ([metrics] CHECK.PARAM keys, docs/methods.md). */
static int read_check_params(job_t *job, plan_t *p)
{
    int bad = 0, line;
    const char *v;
    char *end;
    chk_params_t *cp = &p->checks;
    if (job_method_param(job, "deletion", "steps", &v, &line)) {
        long x = strtol(v, &end, 10);
        if (*end || end == v || x < 1 || x > 1000000) {
            SC_ERROR("%s:%d: deletion.steps = '%s' is not an integer in 1..1000000", job->path,
                     line, v);
            bad++;
        } else
            cp->del_steps = (int)x;
    }
    struct { const char *check, *key; chk_fill_t *field; } fills[2] = {
        {"deletion", "fill", &cp->del_fill}, {"insertion", "start", &cp->ins_start}};
    for (int k = 0; k < 2; k++)
        if (job_method_param(job, fills[k].check, fills[k].key, &v, &line)) {
            int f = chk_fill_parse(v);
            if (f < 0) {
                SC_ERROR("%s:%d: %s.%s = '%s' is not zero, black, blur or mean", job->path, line,
                         fills[k].check, fills[k].key, v);
                bad++;
            } else
                *fills[k].field = (chk_fill_t)f;
        }
    if (job_method_param(job, "checks", "probability", &v, &line)) {
        int f = chk_prob_parse(v);
        if (f < 0) {
            SC_ERROR("%s:%d: checks.probability = '%s' is not head, softmax or sigmoid", job->path,
                     line, v);
            bad++;
        } else
            cp->prob = (chk_prob_t)f;
    }
    if (job_method_param(job, "road", "percentages", &v, &line)) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", v);
        int n = 0, ok = 1;
        for (char *tok = strtok(buf, ", "); tok && ok; tok = strtok(NULL, ", ")) {
            long x = strtol(tok, &end, 10);
            ok = !*end && end != tok && x >= 1 && x <= 99 && n < CHK_MAX_PERCENT;
            if (ok)
                cp->road_percent[n++] = (int)x;
        }
        if (!ok || n == 0) {
            SC_ERROR("%s:%d: road.percentages = '%s' is not a list of 1 to %d integers in 1..99",
                     job->path, line, v, CHK_MAX_PERCENT);
            bad++;
        } else
            cp->road_n_percent = n;
    }
    struct { const char *check, *key; double *field; double lo, hi; } nums[2] = {
        {"road", "noise", &cp->road_noise, 0.0, 10.0},
        {"sensitivity", "radius", &cp->sens_radius, 0.0, 10.0}};
    for (int k = 0; k < 2; k++)
        if (job_method_param(job, nums[k].check, nums[k].key, &v, &line)) {
            double x = strtod(v, &end);
            if (*end || end == v || !(x >= nums[k].lo && x <= nums[k].hi)) {
                SC_ERROR("%s:%d: %s.%s = '%s' is not a number in [%g, %g]", job->path, line,
                         nums[k].check, nums[k].key, v, nums[k].lo, nums[k].hi);
                bad++;
            } else
                *nums[k].field = x;
        }
    if (job_method_param(job, "sensitivity", "samples", &v, &line)) {
        long x = strtol(v, &end, 10);
        if (*end || end == v || x < 1 || x > 100000) {
            SC_ERROR("%s:%d: sensitivity.samples = '%s' is not an integer in 1..100000", job->path,
                     line, v);
            bad++;
        } else
            cp->sens_samples = (int)x;
    }
    /* sMPRT: denoised copies of the listed methods, added as methods of their own */
    int smooth_samples = 50, smooth_line = 0;
    double smooth_noise = 0.1;
    if (job_method_param(job, "smprt", "samples", &v, &line)) {
        long x = strtol(v, &end, 10);
        if (*end || end == v || x < 1 || x > 100000) {
            SC_ERROR("%s:%d: smprt.samples = '%s' is not an integer in 1..100000", job->path, line, v);
            bad++;
        } else
            smooth_samples = (int)x;
    }
    if (job_method_param(job, "smprt", "noise", &v, &line)) {
        double x = strtod(v, &end);
        if (*end || end == v || !(x >= 0 && x <= 10)) {
            SC_ERROR("%s:%d: smprt.noise = '%s' is not a number in [0, 10]", job->path, line, v);
            bad++;
        } else
            smooth_noise = x;
    }
    if (job_method_param(job, "smprt", "methods", &v, &smooth_line)) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", v);
        size_t chw = (size_t)3 * p->size * p->size; /* every zoo and imported model: 3 channels */
        for (char *tok = strtok(buf, ", "); tok; tok = strtok(NULL, ", ")) {
            const sal_method_t *base = sal_method_find(tok);
            int listed = 0;
            for (int k = 0; base && k < p->n_methods; k++)
                listed |= p->methods[k] == base;
            if (!base || !base->needs_model || !listed || p->n_smooth >= PLAN_MAX_SMOOTH ||
                p->n_methods >= JOB_MAX_LIST) {
                SC_ERROR("%s:%d: smprt.methods: '%s' is not a method of the [methods] list that "
                         "needs the model (at most %d)", job->path, smooth_line, tok,
                         PLAN_MAX_SMOOTH);
                bad++;
                continue;
            }
            chk_smooth_t *s = &p->smooth[p->n_smooth];
            if (chk_smooth_init(s, base, smooth_samples, smooth_noise, chw) < 0) {
                bad++;
                continue;
            }
            p->n_smooth++;
            p->methods[p->n_methods++] = &s->method;
        }
    }
    if (job_method_param(job, "emprt", "bins", &v, &line)) {
        long x = strtol(v, &end, 10);
        int rule = cx_bin_rule_parse(v);
        if (!*end && end != v && x >= 2 && x <= 100000) {
            p->emprt_rule = CX_BINS_FIXED;
            p->emprt_bins = (int)x;
        } else if (rule > 0) {
            p->emprt_rule = (cx_bin_rule_t)rule;
        } else {
            SC_ERROR("%s:%d: emprt.bins = '%s' is neither a bin count (2..100000) nor a rule "
                     "(freedman-diaconis, scott, sqrt, sturges, rice)", job->path, line, v);
            bad++;
        }
    }
    return bad ? SC_ERR_FORMAT : 0;
}

double plan_method_cost(const plan_t *p, int k, const nn_model_t *m)
{
    for (int s = 0; s < p->n_smooth; s++)
        if (p->methods[k] == &p->smooth[s].method)
            return chk_smooth_cost(&p->smooth[s], &p->params, p->size, p->size);
    if (m)
        return sal_cost_model(p->methods[k], &p->params, m);
    return sal_cost(p->methods[k], &p->params, p->size, p->size);
}

int plan_has_metric(const plan_t *p, int idx)
{
    for (int k = 0; k < p->n_metrics; k++)
        if (p->metrics[k] == idx)
            return 1;
    return 0;
}

static int add_variant(plan_t *p, int cap, const char *name, int model, plan_kind_t kind, int state,
                       int n_images, uint64_t seed)
{
    if (p->n_variants >= cap)
        return SC_ERR_ARG;
    plan_variant_t *v = &p->variants[p->n_variants];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    v->model = model;
    v->kind = kind;
    v->state = state;
    v->n_images = n_images;
    v->reinit_seed = seed;
    return p->n_variants++;
}

static int add_pair(plan_t *p, int *cap, int va, int ia, int vb, int ib, int exp)
{
    if (p->n_pairs == *cap) {
        int grown = *cap ? *cap * 2 : 1024;
        plan_pair_t *np = realloc(p->pairs, sizeof *np * (size_t)grown);
        if (!np)
            return SC_ERR_NOMEM;
        p->pairs = np;
        *cap = grown;
    }
    p->pairs[p->n_pairs++] = (plan_pair_t){va, ia, vb, ib, (int8_t)exp};
    return 0;
}

int plan_build(job_t *job, nn_model_t *const *models, int n_images, const int *ds_index,
               char (*ids)[64], const int8_t *labels, uint8_t *gt, float *avgmask, int size,
               plan_t **out)
{
    int rc = 0, pair_cap = 0;
    *out = NULL;
    plan_t *p = calloc(1, sizeof *p);
    CHECK_ALLOC(p);
    p->n_images = n_images;
    p->size = size;
    p->ds_index = (int *)ds_index;
    p->ids = ids;
    p->labels = (int8_t *)labels;
    p->gt = gt;
    p->avgmask = avgmask;
    p->classes = models[0]->num_classes;
    p->n_random_images = job->randomization_images > 0 && job->randomization_images < n_images
                             ? job->randomization_images : n_images;

    /* methods and their parameters */
    p->params = sal_params_default();
    for (int k = 0; k < job->n_methods; k++) {
        const sal_method_t *m = sal_method_find(job->methods[k]);
        if (!m) {
            char known[512] = "";
            for (const sal_method_t *t = sal_methods(); t->name; t++)
                snprintf(known + strlen(known), sizeof known - strlen(known), " %s", t->name);
            SC_ERROR("%s:%d: unknown method '%s' (known:%s)", job->path, job->methods_line,
                     job->methods[k], known);
            rc = SC_ERR_FORMAT;
            continue;
        }
        p->methods[p->n_methods++] = m;
    }
    if (read_params(job, &p->params) < 0)
        rc = SC_ERR_FORMAT;
    p->checks = chk_params_default();
    p->emprt_rule = CX_BINS_FIXED;
    p->emprt_bins = 100; /* Quantus's default when no rule is named */
    if (read_check_params(job, p) < 0)
        rc = SC_ERR_FORMAT;
    if (job_check_params_used(job) < 0)
        rc = SC_ERR_FORMAT;
    /* metrics and similarities */
    if (job->n_metrics == 0)
        for (int k = 0; k < PLAN_METRIC_BASE; k++)
            p->metrics[p->n_metrics++] = k;
    for (int k = 0; k < job->n_metrics; k++) {
        int idx = find_name(plan_metric_names, PLAN_METRIC_COUNT, job->metrics[k]);
        if (idx < 0) {
            SC_ERROR("%s:%d: unknown metric '%s' (auprc, ap, roc_auc, pointing, energy, rra, topk, "
                     "iou_otsu, dice_otsu, iou_fixed, dice_fixed, soft_dice_in, soft_dice_out, "
                     "sparseness, complexity, deletion, insertion, road_morf, road_lerf, "
                     "random_logit, max_sensitivity, avg_sensitivity)",
                     job->path, job->metrics_line, job->metrics[k]);
            rc = SC_ERR_FORMAT;
        } else
            p->metrics[p->n_metrics++] = idx;
    }
    if (job->n_similarity == 0) {
        const int defaults[] = {0, 3, 4, 5, 6};
        for (int k = 0; k < 5; k++)
            p->sims[p->n_sims++] = defaults[k];
    }
    for (int k = 0; k < job->n_similarity; k++) {
        int idx = find_name(plan_sim_names, PLAN_SIM_COUNT, job->similarity[k]);
        if (idx < 0) {
            SC_ERROR("%s:%d: unknown similarity '%s' (ssim, ssim_l1, ssim_gauss, spearman, "
                     "spearman_abs, pearson, hog, emprt)", job->path, job->similarity_line,
                     job->similarity[k]);
            rc = SC_ERR_FORMAT;
        } else
            p->sims[p->n_sims++] = idx;
    }
    if (rc < 0)
        goto cleanup;

    /* variants: every model's trained state, then the randomized states */
    int cap = job->n_models * (2 + 3 * PLAN_MAX_REINIT) + 8;
    p->variants = calloc((size_t)cap, sizeof *p->variants);
    CHECK_ALLOC(p->variants);
    for (int j = 0; j < job->n_models; j++) {
        CHECK(models[j]->num_classes == p->classes, SC_ERR_FORMAT,
              "%s:%d: model '%s' has %d classes, model '%s' has %d: all models of a job must "
              "explain the same classes", job->path, job->models[j].line, job->models[j].name,
              models[j]->num_classes, job->models[0].name, p->classes);
        CHECK(models[j]->nodes[0].h == size && models[j]->nodes[0].w == size, SC_ERR_FORMAT,
              "%s:%d: model '%s' takes %dx%d inputs, the job's [data] size is %d", job->path,
              job->models[j].line, job->models[j].name, models[j]->nodes[0].h,
              models[j]->nodes[0].w, size);
        CHECK(models[j]->nodes[0].c == 1 || models[j]->nodes[0].c == 3, SC_ERR_FORMAT,
              "%s:%d: model '%s' takes %d-channel inputs; salcheck feeds 1 or 3 channels (the "
              "gray radiograph copied to each)", job->path, job->models[j].line,
              job->models[j].name, models[j]->nodes[0].c);
        p->base_variant[j] = add_variant(p, cap, job->models[j].name, j, PLAN_TRAINED, 0,
                                         n_images, 0);
    }
    for (int c = 0; c < job->n_cascading; c++) {
        int j = job->cascading[c];
        const nn_model_t *m = models[j];
        const char *blocks[PLAN_MAX_REINIT];
        int nb = zoo_blocks_top_down(m, blocks, PLAN_MAX_REINIT);
        const char *order[PLAN_MAX_REINIT];
        int no = 0;
        if (job->n_cascade_blocks > 0) {
            for (int b = 0; b < job->n_cascade_blocks; b++) {
                CHECK(find_name(blocks, nb, job->cascade_blocks[b]) >= 0, SC_ERR_FORMAT,
                      "%s: cascade_blocks names '%s', which model '%s' does not have", job->path,
                      job->cascade_blocks[b], job->models[j].name);
                order[no++] = job->cascade_blocks[b];
            }
        } else {
            /* every block from the top but the bottom-most (the paper keeps the stem) */
            for (int b = 0; b < nb - 1; b++)
                order[no++] = blocks[b];
        }
        uint64_t seed = job->seed ^ rng_hash_str(job->models[j].name) ^ 0x9e3779b97f4a7c15ULL;
        /* top-down (the paper) and/or bottom-up (Hedstrom et al. 2023 recommend it): the same
         * blocks, cumulatively, from either end; bottom-up states are named up1, up2, ... */
        int down = strcmp(job->cascade_order, "bottom-up") != 0;
        int up = strcmp(job->cascade_order, "top-down") != 0;
        for (int dir = 0; dir < 2; dir++) {
            if ((dir == 0 && !down) || (dir == 1 && !up))
                continue;
            for (int k = 1; k <= no; k++) {
                char name[192];
                const char *blk = dir ? order[no - k] : order[k - 1];
                snprintf(name, sizeof name, "%s/cascading/%s%d:%s", job->models[j].name,
                         dir ? "up" : "", k, blk);
                int v = add_variant(p, cap, name, j, PLAN_CASCADING, k, p->n_random_images, seed);
                CHECK(v >= 0, SC_ERR_ARG, "too many variants");
                for (int b = 0; b < k; b++)
                    snprintf(p->variants[v].reinit[b], NN_NAME_MAX, "%s",
                             dir ? order[no - 1 - b] : order[b]);
                p->variants[v].n_reinit = k;
            }
        }
        if (job->independent) {
            for (int k = 1; k <= no; k++) {
                char name[192];
                snprintf(name, sizeof name, "%s/independent/%d:%s", job->models[j].name, k,
                         order[k - 1]);
                int v = add_variant(p, cap, name, j, PLAN_INDEPENDENT, k, p->n_random_images, seed);
                CHECK(v >= 0, SC_ERR_ARG, "too many variants");
                snprintf(p->variants[v].reinit[0], NN_NAME_MAX, "%s", order[k - 1]);
                p->variants[v].n_reinit = 1;
            }
        }
    }
    for (int u = 0; u < job->n_untrained; u++) {
        int j = job->untrained[u];
        char name[192];
        snprintf(name, sizeof name, "%s/untrained", job->models[j].name);
        uint64_t seed = job->seed ^ rng_hash_str(job->models[j].name) ^ 0x9e3779b97f4a7c15ULL;
        int v = add_variant(p, cap, name, j, PLAN_UNTRAINED, 0, n_images, seed);
        CHECK(v >= 0, SC_ERR_ARG, "too many variants");
        p->variants[v].n_reinit = -1;
    }
    for (int v = 0; v < p->n_variants; v++) {
        double cost = 0.0;
        for (int k = 0; k < p->n_methods; k++) {
            double mc = plan_method_cost(p, k, models[p->variants[v].model]);
            cost += mc;
            /* the model checks of this map (docs/methods.md): forward passes and recomputed maps */
            for (const chk_check_t *const *ck = chk_checks(); *ck; ck++) {
                int listed = 0;
                for (int o = 0; o < (*ck)->n_out; o++) {
                    int idx = find_name(plan_metric_names, PLAN_METRIC_COUNT, (*ck)->out[o]);
                    listed |= idx >= 0 && plan_has_metric(p, idx);
                }
                if (listed)
                    cost += (*ck)->cost(&p->checks, size, size, mc);
            }
        }
        p->variants[v].cost = cost + 0.5; /* the forward pass for the target (1/2, as in sal_cost) */
    }

    /* pairs (docs/methods.md section 6) */
    for (int v = 0; v < p->n_variants; v++) {
        const plan_variant_t *pv = &p->variants[v];
        if (pv->kind == PLAN_TRAINED)
            continue;
        int exp = pv->kind == PLAN_CASCADING ? RESULTS_EXP_CASCADING
                  : pv->kind == PLAN_INDEPENDENT ? RESULTS_EXP_INDEPENDENT : RESULTS_EXP_UNTRAINED;
        for (int i = 0; i < pv->n_images; i++)
            CHECK_RC(add_pair(p, &pair_cap, v, i, p->base_variant[pv->model], i, exp));
    }
    struct { const job_pair_t *pairs; int n, exp; } sets[3] = {
        {job->label_pairs, job->n_label_pairs, RESULTS_EXP_LABEL},
        {job->repeat_pairs, job->n_repeat_pairs, RESULTS_EXP_REPEATABILITY},
        {job->repro_pairs, job->n_repro_pairs, RESULTS_EXP_REPRODUCIBILITY}};
    for (int s = 0; s < 3; s++)
        for (int k = 0; k < sets[s].n; k++) {
            /* label randomization: the shuffled model (b) against the trained one (a) */
            int va = p->base_variant[sets[s].pairs[k].a], vb = p->base_variant[sets[s].pairs[k].b];
            for (int i = 0; i < n_images; i++)
                CHECK_RC(sets[s].exp == RESULTS_EXP_LABEL
                             ? add_pair(p, &pair_cap, vb, i, va, i, sets[s].exp)
                             : add_pair(p, &pair_cap, va, i, vb, i, sets[s].exp));
        }
    /* randomization baseline: maps of different images of the same trained model */
    if (job->baseline_pairs > 0 && p->n_random_images >= 2) {
        int models_done[JOB_MAX_MODELS] = {0};
        int list[JOB_MAX_MODELS], nl = 0;
        for (int c = 0; c < job->n_cascading; c++)
            list[nl++] = job->cascading[c];
        for (int u = 0; u < job->n_untrained; u++)
            list[nl++] = job->untrained[u];
        if (nl == 0 && job->n_utility > 0)
            list[nl++] = job->utility[0];
        for (int q = 0; q < nl; q++) {
            int j = list[q];
            if (models_done[j]++)
                continue;
            rng_stream_t rs;
            for (int i = 0; i < p->n_random_images; i++) {
                rng_stream_init(&rs, rng_key(job->seed, "baseline"), (uint32_t)j, (uint32_t)i, 0);
                for (int k = 0; k < job->baseline_pairs; k++) {
                    int other = (int)rng_stream_below(&rs, (uint32_t)(p->n_random_images - 1));
                    if (other >= i)
                        other++;
                    CHECK_RC(add_pair(p, &pair_cap, p->base_variant[j], i, p->base_variant[j],
                                      other, RESULTS_EXP_BASELINE));
                }
            }
        }
    }
    *out = p;
    p = NULL;
cleanup:
    if (p) {
        p->ds_index = NULL;
        plan_destroy(p);
    }
    return rc;
}

/* Images to evaluate: the ground-truth-positive test images (or a seeded sample). */
void plan_dataset_options(const job_t *job, dataset_options_t *dopt)
{
    dataset_options_default(dopt);
    dopt->skip_bad = job->skip_bad;
    dopt->source_size = job->source_size;
    dopt->box_map = !strcmp(job->box_map, "exact") ? DATASET_BOX_EXACT : DATASET_BOX_PAPER;
    dopt->class_info = job->class_info[0] ? job->class_info : NULL;
    if (dataset_format_parse(job->data_kind, &dopt->format) < 0)
        dopt->format = DATASET_FORMAT_RSNA; /* phantom */
    dicom_window_parse(job->dicom_window, &dopt->read.dicom_window);
    dopt->finding = job->finding[0] ? job->finding : NULL;
    dopt->min_readers = job->min_readers;
}

int plan_select_images(const job_t *job, const dataset_t *ds, int **index, int *count)
{
    int n = dataset_count(ds), k = 0;
    int *list = calloc((size_t)n + 1, sizeof(int));
    if (!list)
        return SC_ERR_NOMEM;
    for (int i = 0; i < n; i++)
        if (dataset_label(ds, i) == 1 && dataset_split(ds, i) == DATASET_SPLIT_TEST)
            list[k++] = i;
    if (k == 0) {
        SC_ERROR("%s: the data set in '%s' has no positive test image (splits.csv with Split=test "
                 "and a box/mask)", job->path, job->data_dir);
        free(list);
        return SC_ERR_FORMAT;
    }
    if (!strcmp(job->images, "sample") && job->sample < k) {
        /* seeded partial Fisher-Yates, then back to data set order */
        rng_stream_t rs;
        rng_stream_init(&rs, rng_key(job->seed, "images"), 0, 0, 0);
        for (int i = 0; i < job->sample; i++) {
            int r = i + (int)rng_stream_below(&rs, (uint32_t)(k - i));
            int t = list[i];
            list[i] = list[r];
            list[r] = t;
        }
        k = job->sample;
        for (int i = 1; i < k; i++)
            for (int q = i; q > 0 && list[q] < list[q - 1]; q--) {
                int t = list[q];
                list[q] = list[q - 1];
                list[q - 1] = t;
            }
    }
    if (job->max_images > 0 && k > job->max_images)
        k = job->max_images;
    *index = list;
    *count = k;
    return 0;
}

static int cmp_item(const void *a, const void *b)
{
    const plan_item_t *x = a, *y = b;
    if (x->cost != y->cost)
        return x->cost < y->cost ? 1 : -1;
    if (x->v != y->v)
        return x->v - y->v;
    return x->i0 - y->i0;
}

int plan_items(const plan_t *p, const uint8_t *done, int block, plan_item_t **items, int *count)
{
    if (block < 1)
        block = 1;
    size_t cap = 0;
    for (int v = 0; v < p->n_variants; v++)
        cap += (size_t)p->variants[v].n_images;
    plan_item_t *list = calloc(cap + 1, sizeof *list);
    if (!list)
        return SC_ERR_NOMEM;
    int n = 0;
    for (int v = 0; v < p->n_variants; v++) {
        const plan_variant_t *pv = &p->variants[v];
        int i = 0;
        while (i < pv->n_images) {
            if (done && done[(size_t)v * p->n_images + i]) {
                i++;
                continue;
            }
            int i1 = i;
            while (i1 < pv->n_images && i1 - i < block &&
                   !(done && done[(size_t)v * p->n_images + i1]))
                i1++;
            list[n++] = (plan_item_t){v, i, i1, pv->cost * (i1 - i), 1};
            i = i1;
        }
    }
    qsort(list, (size_t)n, sizeof *list, cmp_item);
    *items = list;
    *count = n;
    return 0;
}

int plan_apply_variant(const plan_t *p, const plan_variant_t *v, nn_model_t *m, int keep_bn_stats)
{
    (void)p;
    if (v->n_reinit < 0)
        return nn_model_reinit_block(m, NULL, v->reinit_seed, keep_bn_stats);
    for (int b = 0; b < v->n_reinit; b++) {
        int rc = nn_model_reinit_block(m, v->reinit[b], v->reinit_seed, keep_bn_stats);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void plan_params_text(const plan_t *p, char *buf, size_t len)
{
    const sal_params_t *s = &p->params;
    snprintf(buf, len,
             "sg.samples = %d\nsg.noise = %g\nsg.squared = %d\nig.steps = %d\nig.rule = %s\n"
             "ig.baseline = %s\nig.baseline_value = %g\nsig.samples = %d\nsig.squared = %d\n"
             "gcam.layer = %s\nxrai.steps = %d\nocclusion.window = %d\nocclusion.stride = %d\n"
             "occlusion.fill = %g\nrise.masks = %d\nrise.cells = %d\nrise.p = %g\n"
             "eg.samples = %d\neg.pool = %d\n",
             s->sg_samples, s->sg_noise, s->sg_squared, s->ig_steps,
             sal_ig_rule_name(s->ig_rule), sal_baseline_name(s->ig_baseline),
             s->ig_baseline_value, s->sig_samples, s->sig_squared,
             s->gcam_layer[0] ? s->gcam_layer : "(model default)", s->xrai_steps, s->occ_window,
             s->occ_stride, s->occ_fill, s->rise_masks, s->rise_cells, s->rise_p, s->eg_samples,
             s->eg_pool);
    /* the checks beyond the paper (docs/methods.md) */
    const chk_params_t *c = &p->checks;
    size_t used = strlen(buf);
    char pct[160] = "";
    for (int k = 0; k < c->road_n_percent; k++)
        snprintf(pct + strlen(pct), sizeof pct - strlen(pct), "%s%d", k ? "," : "", c->road_percent[k]);
    char bins[32];
    if (p->emprt_rule == CX_BINS_FIXED)
        snprintf(bins, sizeof bins, "%d", p->emprt_bins);
    else
        snprintf(bins, sizeof bins, "%s", cx_bin_rule_name(p->emprt_rule));
    if (used < len)
        snprintf(buf + used, len - used,
                 "deletion.steps = %d\ndeletion.fill = %s\ninsertion.start = %s\n"
                 "checks.probability = %s\nroad.percentages = %s\nroad.noise = %g\n"
                 "sensitivity.samples = %d\nsensitivity.radius = %g\nemprt.bins = %s\n",
                 c->del_steps, chk_fill_name(c->del_fill), chk_fill_name(c->ins_start),
                 chk_prob_name(c->prob), pct, c->road_noise, c->sens_samples, c->sens_radius, bins);
    for (int k = 0; k < p->n_smooth; k++) {
        used = strlen(buf);
        if (used < len)
            snprintf(buf + used, len - used, "%s.samples = %d\n%s.noise = %g\n", p->smooth[k].name,
                     p->smooth[k].samples, p->smooth[k].name, p->smooth[k].noise);
    }
    /* LRP and DeepLIFT: the rules in force per layer kind, the composite's where not chosen */
    used = strlen(buf);
    if (used < len) {
        const lrp_composite_t comp = (lrp_composite_t)s->lrp_composite;
        const int chosen[3] = {s->lrp_first, s->lrp_conv, s->lrp_dense};
        const char *rule[3];
        for (int k = 0; k < 3; k++)
            rule[k] = lrp_rule_name(chosen[k] >= 0 ? (lrp_rule_t)chosen[k]
                                                   : lrp_composite_rule(comp, k));
        char low[32] = "normalization", high[32] = "normalization";
        if (!isnan(s->lrp_low))
            snprintf(low, sizeof low, "%g", s->lrp_low);
        if (!isnan(s->lrp_high))
            snprintf(high, sizeof high, "%g", s->lrp_high);
        snprintf(buf + used, len - used,
                 "lrp.composite = %s\nlrp.first = %s\nlrp.conv = %s\nlrp.dense = %s\n"
                 "lrp.epsilon = %g\nlrp.stabilizer = %g\nlrp.gamma = %g\nlrp.alpha = %g\n"
                 "lrp.low = %s\nlrp.high = %s\ndeeplift.baseline = %s\n"
                 "deeplift.baseline_value = %g\n",
                 lrp_composite_name(comp), rule[0], rule[1], rule[2], s->lrp_epsilon,
                 s->lrp_stabilizer, s->lrp_gamma, s->lrp_alpha, low, high,
                 sal_baseline_name(s->dl_baseline), s->dl_baseline_value);
    }
}
