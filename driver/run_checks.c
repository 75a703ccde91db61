/*
 * run_checks.c - the checks beyond the paper inside `salcheck run`
 * (run_checks.h; definitions in docs/methods.md, "Checks beyond the paper").
 */
#include "run_checks.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/complexity.h"
#include "sc.h"

static int metric_index(const char *name)
{
    for (int k = PLAN_METRIC_BASE; k < PLAN_METRIC_COUNT; k++)
        if (!strcmp(plan_metric_names[k], name))
            return k;
    return -1;
}

/* Position of metric idx in the plan's list, or -1. */
static int listed_at(const plan_t *p, int idx)
{
    for (int q = 0; q < p->n_metrics; q++)
        if (p->metrics[q] == idx)
            return q;
    return -1;
}

int run_checks_needed(const plan_t *p)
{
    for (const chk_check_t *const *ck = chk_checks(); *ck; ck++)
        for (int o = 0; o < (*ck)->n_out; o++)
            if (listed_at(p, metric_index((*ck)->out[o])) >= 0)
                return 1;
    return 0;
}

void run_checks_curves(const plan_t *p, run_curves_t *out)
{
    memset(out, 0, sizeof *out);
    for (const chk_check_t *const *ck = chk_checks(); *ck; ck++)
        for (int o = 0; o < (*ck)->n_out; o++) {
            int len = chk_curve_len(*ck, o, &p->checks, p->size, p->size);
            if (len <= 0 || listed_at(p, metric_index((*ck)->out[o])) < 0 ||
                out->n >= RUN_CHECKS_MAX_CURVES)
                continue;
            out->names[out->n] = (*ck)->out[o];
            out->len[out->n] = len;
            out->check[out->n] = *ck;
            out->out[out->n] = o;
            out->offset[out->n] = out->total;
            out->total += (size_t)p->n_methods * len;
            out->n++;
        }
}

int run_checks_map(const plan_t *p, chk_ws_t *cw, metrics_ws_t *mws, const chk_input_t *in,
                   double *metrics, int stride, const run_curves_t *rcv, double *curves, int k)
{
    const size_t hw = (size_t)p->size * p->size;
    int q = listed_at(p, metric_index("sparseness"));
    if (q >= 0)
        cx_sparseness(mws, in->map, hw, &metrics[(size_t)q * stride]);
    q = listed_at(p, metric_index("complexity"));
    if (q >= 0)
        cx_complexity(mws, in->map, hw, &metrics[(size_t)q * stride]);
    for (const chk_check_t *const *ck = chk_checks(); *ck; ck++) {
        int at[CHK_MAX_OUT], any = 0;
        for (int o = 0; o < (*ck)->n_out; o++) {
            at[o] = listed_at(p, metric_index((*ck)->out[o]));
            any |= at[o] >= 0;
        }
        if (!any)
            continue;
        double values[CHK_MAX_OUT];
        if (!cw || cw->chw != in->ws->chw) {
            SC_ERROR("check %s: no workspace for inputs of %zu values", (*ck)->name, in->ws->chw);
            return SC_ERR_ARG;
        }
        int rc = (*ck)->compute(*ck, &p->checks, cw, in, values);
        if (rc == SC_ERR_UNDEFINED) {
            for (int o = 0; o < (*ck)->n_out; o++)
                values[o] = NAN;
        } else if (rc < 0) {
            SC_ERROR("check %s failed on a map of method %s", (*ck)->name, in->method->name);
            return rc;
        }
        for (int o = 0; o < (*ck)->n_out; o++)
            if (at[o] >= 0)
                metrics[(size_t)at[o] * stride] = values[o];
        for (int c = 0; rcv && curves && rc == 0 && c < rcv->n; c++) {
            if (rcv->check[c] != *ck)
                continue;
            int n = 0;
            const double *cv = chk_last_curve(cw, rcv->out[c], &n);
            double *dst = curves + rcv->offset[c] + (size_t)k * rcv->len[c];
            for (int t = 0; t < rcv->len[c]; t++)
                dst[t] = cv && t < n ? cv[t] : NAN;
        }
    }
    return 0;
}

/* The bin count each method's eMPRT used, as /methods attribute emprt_bins [M]. COLLECTIVE. */
static int emprt_store_bins(const plan_t *p, results_t *res, const int *bins)
{
    long long *values = malloc(sizeof(long long) * (size_t)(p->n_methods + 1));
    if (!values)
        return SC_ERR_NOMEM;
    for (int k = 0; k < p->n_methods; k++)
        values[k] = bins[k];
    int rc = results_set_attr_ints(res, "methods", "emprt_bins", values, p->n_methods);
    free(values);
    return rc;
}

int run_checks_emprt_bins(const plan_t *p, results_t *res, int rank, int *bins)
{
    for (int k = 0; k < p->n_methods; k++)
        bins[k] = p->emprt_bins;
    int listed = 0;
    for (int s = 0; s < p->n_sims; s++)
        listed |= p->sims[s] == PLAN_SIM_EMPRT;
    if (!listed)
        return 0;
    if (p->emprt_rule == CX_BINS_FIXED)
        return emprt_store_bins(p, res, bins);
    /* the distinct original maps (variant b, image b) of the randomization pairs */
    const size_t hw = (size_t)p->size * p->size;
    uint8_t *seen = calloc((size_t)p->n_variants * p->n_images + 1, 1);
    int n_orig = 0;
    for (int q = 0; seen && q < p->n_pairs; q++) {
        const plan_pair_t *pp = &p->pairs[q];
        if (pp->exp != RESULTS_EXP_CASCADING && pp->exp != RESULTS_EXP_INDEPENDENT &&
            pp->exp != RESULTS_EXP_UNTRAINED)
            continue;
        uint8_t *s = &seen[(size_t)pp->vb * p->n_images + pp->ib];
        n_orig += !*s;
        *s = 1;
    }
    float *pool = malloc(sizeof(float) * hw * (size_t)(n_orig ? n_orig : 1));
    double *scratch = malloc(sizeof(double) * hw * (size_t)(n_orig ? n_orig : 1));
    int rc = 0;
    if (!seen || !pool || !scratch) {
        rc = SC_ERR_NOMEM;
        goto done;
    }
    for (int k = 0; k < p->n_methods; k++) {
        size_t count = 0;
        for (size_t cell = 0; cell < (size_t)p->n_variants * p->n_images; cell++) {
            if (!seen[cell])
                continue;
            float *dst = pool + count;
            rc = results_read_map(res, k, (int)(cell / p->n_images), (int)(cell % p->n_images), dst);
            if (rc < 0)
                goto done;
            int finite = 1;
            for (size_t i = 0; i < hw && finite; i++)
                finite = isfinite(dst[i]);
            if (finite)
                count += hw;
        }
        if (count > 0) {
            int b = cx_bin_count(p->emprt_rule, pool, count, hw, scratch);
            bins[k] = b > 0 ? b : p->emprt_bins;
        }
        if (rank == 0)
            SC_INFO("eMPRT: method %s, %s rule over %zu original maps: %d bins", p->methods[k]->name,
                    cx_bin_rule_name(p->emprt_rule), count / hw, bins[k]);
    }
done:
    free(seen);
    free(pool);
    free(scratch);
    return rc < 0 ? rc : emprt_store_bins(p, res, bins);
}
