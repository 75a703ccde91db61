/*
 * run_pairs.c - the pair phase's blocks (run_pairs.h).
 *
 * Owned by driver. A block runs method by method: for method k every pair's two
 * maps come from a small cache of prepared maps keyed by (variant, image), so a
 * map shared by consecutive pairs is read, ranked and described by HOG once. The
 * similarities are those of docs/methods.md section 5 (similarity.h); their values
 * do not depend on the order or the cache (sim_spearman_prep, sim_hog_prep).
 */
#include "run_pairs.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/complexity.h"
#include "metrics/similarity.h"
#include "sc.h"

/* Prepared maps kept per block and method: the shared map and the last few others. */
#define RP_CACHE 4

typedef struct rp_entry {
    int v, i;            /* the map's cell; v < 0: empty */
    unsigned long used;  /* last use, for least-recently-used replacement */
    sim_prep_t prep;
} rp_entry_t;

struct run_pairs {
    run_pairs_env_t env;
    int max_block;
    unsigned parts;      /* what the plan's similarities read (SIM_PREP_*) */
    rp_entry_t cache[RP_CACHE];
    unsigned long clock;
    double *sims;        /* [max_block, S, M] */
};

typedef struct rp_key { int32_t vb, ib, q; } rp_key_t;

static int cmp_keys(const void *x, const void *y)
{
    const rp_key_t *a = x, *b = y;
    if (a->vb != b->vb)
        return a->vb < b->vb ? -1 : 1;
    if (a->ib != b->ib)
        return a->ib < b->ib ? -1 : 1;
    return (a->q > b->q) - (a->q < b->q);
}

int run_pairs_order(const plan_t *p, int **order)
{
    const size_t n = (size_t)(p->n_pairs > 0 ? p->n_pairs : 1);
    rp_key_t *keys = malloc(sizeof *keys * n);
    *order = malloc(sizeof(int) * n);
    if (!keys || !*order) {
        free(keys);
        free(*order);
        *order = NULL;
        return SC_ERR_NOMEM;
    }
    /* grouped by the second map, in plan order within a group */
    for (int q = 0; q < p->n_pairs; q++)
        keys[q] = (rp_key_t){p->pairs[q].vb, p->pairs[q].ib, q};
    qsort(keys, (size_t)p->n_pairs, sizeof *keys, cmp_keys);
    for (int q = 0; q < p->n_pairs; q++)
        (*order)[q] = keys[q].q;
    free(keys);
    return 0;
}

void run_pairs_destroy(run_pairs_t *rp)
{
    if (!rp)
        return;
    for (int e = 0; e < RP_CACHE; e++)
        sim_prep_free(&rp->cache[e].prep);
    free(rp->sims);
    free(rp);
}

int run_pairs_create(run_pairs_t **out, const run_pairs_env_t *env, int max_block)
{
    int rc = 0;
    run_pairs_t *rp = calloc(1, sizeof *rp);
    CHECK_ALLOC(rp);
    rp->env = *env;
    rp->max_block = max_block;
    const plan_t *p = env->plan;
    for (int s = 0; s < p->n_sims; s++)
        rp->parts |= p->sims[s] == 3 ? SIM_PREP_RANK
                     : p->sims[s] == 4 ? SIM_PREP_RANK_ABS
                     : p->sims[s] == 6 ? SIM_PREP_HOG : 0u;
    for (int e = 0; e < RP_CACHE; e++) {
        rp->cache[e].v = -1;
        CHECK_RC(sim_prep_init(&rp->cache[e].prep, env->mws, rp->parts));
    }
    rp->sims = calloc((size_t)max_block * p->n_sims * p->n_methods + 1, sizeof(double));
    CHECK_ALLOC(rp->sims);
    *out = rp;
    rp = NULL;
cleanup:
    run_pairs_destroy(rp);
    return rc;
}

/* Method k's map of cell (v, i), prepared: from the cache or read now (NULL on a
 * read error). `keep` is not evicted (the pair's other map). */
static const sim_prep_t *prepared(run_pairs_t *rp, int k, int v, int i, const rp_entry_t *keep,
                                  rp_entry_t **entry)
{
    rp_entry_t *hit = NULL, *victim = NULL;
    for (int e = 0; e < RP_CACHE && !hit; e++) {
        rp_entry_t *c = &rp->cache[e];
        if (c->v == v && c->i == i)
            hit = c;
        else if (c != keep && (!victim || c->used < victim->used))
            victim = c; /* least recently used; an emptied entry has used = 0 */
    }
    if (!hit) {
        const double t0 = sc_now();
        hit = victim;
        hit->v = -1;
        if (results_read_map(rp->env.res, k, v, i, hit->prep.map) < 0)
            return NULL;
        const double t1 = sc_now();
        *rp->env.t_read += t1 - t0;
        if (rp->env.skip_engine) /* the benchmark mode measures the reads only */
            hit->prep.finite = 0;
        else
            sim_prep_compute(rp->env.mws, &hit->prep);
        *rp->env.t_compute += sc_now() - t1;
        hit->v = v;
        hit->i = i;
    }
    hit->used = ++rp->clock;
    *entry = hit;
    return &hit->prep;
}

int run_pairs_block(run_pairs_t *rp, const int *pairs, int n, long first_pos)
{
    const plan_t *p = rp->env.plan;
    const int M = p->n_methods, S = p->n_sims;
    const size_t hw = (size_t)p->size * p->size;
    metrics_ws_t *mws = rp->env.mws;
    if (n > rp->max_block)
        return SC_ERR_ARG;
    sim_ssim_opts_t paper, l1, gauss;
    sim_ssim_opts_pairs(&paper, &l1, &gauss);
    for (int k = 0; k < M; k++) {
        for (int e = 0; e < RP_CACHE; e++) { /* another method: other maps */
            rp->cache[e].v = -1;
            rp->cache[e].used = 0;
        }
        for (int t = 0; t < n; t++) {
            const plan_pair_t *pp = &p->pairs[pairs[t]];
            rp_entry_t *ea = NULL, *eb = NULL;
            const sim_prep_t *A = prepared(rp, k, pp->va, pp->ia, NULL, &ea);
            const sim_prep_t *B = A ? prepared(rp, k, pp->vb, pp->ib, ea, &eb) : NULL;
            if (!A || !B) {
                SC_ERROR("cannot read back the maps of pair %d", pairs[t]);
                return SC_ERR_H5;
            }
            const double t1 = sc_now();
            const int finite = A->finite && B->finite;
            double *out = rp->sims + (size_t)t * S * M;
            for (int s = 0; s < S; s++) {
                double val = NAN;
                if (finite) {
                    switch (p->sims[s]) {
                    case 0: sim_ssim(mws, A->map, B->map, &paper, &val); break;
                    case 1: sim_ssim(mws, A->map, B->map, &l1, &val); break;
                    case 2: sim_ssim(mws, A->map, B->map, &gauss, &val); break;
                    case 3: sim_spearman_prep(mws, A, B, 0, &val); break;
                    case 4: sim_spearman_prep(mws, A, B, 1, &val); break;
                    case 5: sim_pearson(mws, A->map, B->map, &val); break;
                    case 6: sim_hog_prep(mws, A, B, &val); break;
                    case PLAN_SIM_EMPRT:
                        cx_emprt(mws, A->map, B->map, hw, rp->env.emprt_bins[k],
                                 rp->env.emprt_counts, &val);
                        break;
                    default: break;
                    }
                }
                out[(size_t)s * M + k] = val;
            }
            *rp->env.t_compute += sc_now() - t1;
        }
    }
    for (int t = 0; t < n; t++) {
        const double t2 = sc_now();
        int rc = results_write_pair(rp->env.res, pairs[t], rp->sims + (size_t)t * S * M);
        *rp->env.t_write += sc_now() - t2;
        if (rc < 0)
            return rc;
        sc_failpoint("pair", first_pos + t); /* tests: a node lost in the pair phase */
    }
    return 0;
}
