/*
 * run_pairs.h - the pair phase of `salcheck run`: the similarities of a block of
 * pairs (plan.h's pairs: two stored maps per method), with each map read and
 * prepared (ranks, HOG features: similarity.h's sim_prep_t) once for all the
 * pairs of the block it is in.
 *
 * Owned by driver (cmd_run.c hands out the blocks). The pairs run in the order of
 * run_pairs_order, which puts the pairs sharing their second map (a cascading
 * state, the untrained model, the label-randomized model and the baseline pairs of
 * one image all meet the trained model's map of that image) next to each other.
 * A pair's values are bit for bit those of comparing its two maps alone.
 */
#ifndef RUN_PAIRS_H
#define RUN_PAIRS_H

#include "io/results.h"
#include "metrics/metrics.h"
#include "plan.h"

typedef struct run_pairs run_pairs_t;

/* What the blocks read from the run. */
typedef struct run_pairs_env {
    const plan_t *plan;
    results_t *res;
    metrics_ws_t *mws;
    const int *emprt_bins; /* [M] eMPRT's bin count per method */
    long *emprt_counts;    /* eMPRT's histogram scratch */
    int skip_engine;       /* benchmarks: read the maps only, every value NaN */
    double *t_read, *t_compute, *t_write; /* seconds, accumulated */
} run_pairs_env_t;

/* The processing order of the plan's pairs: *order [n_pairs] (the caller's, free),
 * a permutation of 0..n_pairs-1. Returns 0 or SC_ERR_NOMEM. */
int run_pairs_order(const plan_t *p, int **order);

/* A block runner for up to max_block pairs. *out is the caller's: run_pairs_destroy. */
int run_pairs_create(run_pairs_t **out, const run_pairs_env_t *env, int max_block);
void run_pairs_destroy(run_pairs_t *rp);

/* The n (<= max_block) pairs pairs[0..n-1]: every method's similarities, written
 * pair by pair (results_write_pair) in that order; failpoint "pair" with index
 * first_pos + t after the t-th write (tests). Returns 0 or the first error. */
int run_pairs_block(run_pairs_t *rp, const int *pairs, int n, long first_pos);

#endif /* RUN_PAIRS_H */
