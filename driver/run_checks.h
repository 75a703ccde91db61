/*
 * run_checks.h - the checks beyond the paper inside `salcheck run`: the
 * per-map values a cell adds to /metrics (map-only and model checks), and
 * eMPRT's bin count per method before the pair phase (docs/methods.md,
 * "Checks beyond the paper"). Owned by driver/ (the run).
 */
#ifndef RUN_CHECKS_H
#define RUN_CHECKS_H

#include "checks/check.h"
#include "io/results.h"
#include "metrics/metrics.h"
#include "plan.h"

/* The curves a run stores (/curves/<name>): one per listed deletion,
 * insertion, road_morf, road_lerf, with its length and its place in a
 * cell's buffer (curve after curve, [M, len] each; total doubles). */
#define RUN_CHECKS_MAX_CURVES 4
typedef struct run_curves {
    int n;
    const char *names[RUN_CHECKS_MAX_CURVES];
    int len[RUN_CHECKS_MAX_CURVES];
    const chk_check_t *check[RUN_CHECKS_MAX_CURVES];
    int out[RUN_CHECKS_MAX_CURVES];
    size_t offset[RUN_CHECKS_MAX_CURVES];
    size_t total;
} run_curves_t;

void run_checks_curves(const plan_t *p, run_curves_t *out);

/*
 * The listed metrics beyond PLAN_METRIC_BASE for one map of method k:
 * writes metrics[q * stride] for every listed metric q of that kind (NaN
 * where undefined), and the map's curves into curves (layout rcv; NULL: no
 * curves); the others are left alone. cw may be NULL when no model check
 * is listed. Returns 0, or a negative error of the engine.
 */
int run_checks_map(const plan_t *p, chk_ws_t *cw, metrics_ws_t *mws, const chk_input_t *in,
                   double *metrics, int stride, const run_curves_t *rcv, double *curves, int k);

/* 1 when a model check (workers/checks) is listed: the run needs a chk_ws_t. */
int run_checks_needed(const plan_t *p);

/*
 * eMPRT's bin count for every method into bins[M]: the fixed count, or the
 * plan's rule applied to the pooled maps of the original models of the
 * randomization pairs (cascading, independent, untrained), as Quantus
 * applies it to the explanations of the original model. Reads those maps
 * back (every rank the same, so every rank gets the same counts); a method
 * without any finite map gets the fixed count. Logs the counts on rank 0 and
 * stores them as /methods attribute emprt_bins [M]. COLLECTIVE.
 */
int run_checks_emprt_bins(const plan_t *p, results_t *res, int rank, int *bins);

#endif /* RUN_CHECKS_H */
