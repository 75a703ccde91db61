/*
 * aggregate.h - the root's summary of a finished results file: /summary
 * tables (means, medians, quartiles, 95% bootstrap CIs, pass/fail against the
 * randomization baseline) and the paper's tables printed as Markdown.
 */
#ifndef AGGREGATE_H
#define AGGREGATE_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define AGGREGATE_NAME_W 192

/* One row of /summary/metrics: a per-map metric of one method on one variant,
 * over the variant's done images (n values used, n_nan undefined ones skipped). */
typedef struct aggregate_metric_row {
    char metric[32], method[32], variant[AGGREGATE_NAME_W];
    int32_t n, n_nan;
    double mean, ci_lo, ci_hi, median, q1, q3;
} aggregate_metric_row_t;

/* One row of /summary/pairs: a similarity of one method over the done pairs of
 * one (experiment, variant a, variant b) group. */
typedef struct aggregate_pair_row {
    char experiment[32], variant_a[AGGREGATE_NAME_W], variant_b[AGGREGATE_NAME_W], method[32],
        similarity[32];
    int32_t n, n_nan;
    double mean, ci_lo, ci_hi, median, q1, q3;
} aggregate_pair_row_t;

/* One row of /summary/sanity: the cascading test of one (model, method). */
typedef struct aggregate_sanity_row {
    char model[AGGREGATE_NAME_W], method[32];
    double baseline, last_state, min_state;
    int32_t pass;
} aggregate_sanity_row_t;

/* The three summary tables; arrays owned by the struct (aggregate_tables_free). */
typedef struct aggregate_tables {
    aggregate_metric_row_t *metrics;
    size_t n_metrics;
    aggregate_pair_row_t *pairs;
    size_t n_pairs;
    aggregate_sanity_row_t *sanity;
    size_t n_sanity;
} aggregate_tables_t;

/* Open `path` serially (no other process may have it open), write /summary
 * (replacing an old one) and print the tables to out. Returns 0 or < 0. */
int aggregate_results(const char *path, FILE *out);

/*
 * The same tables as aggregate_results, from an already open file (read-only
 * access is enough) without writing anything. Only done cells and done pairs
 * count, so a partial file (a run still going or stopped) gives the tables of
 * the work done so far. On success *out is owned by the caller
 * (aggregate_tables_free); on failure it is empty. Returns 0 or < 0 (logged).
 */
int aggregate_compute(hid_t file, aggregate_tables_t *out);
void aggregate_tables_free(aggregate_tables_t *tables);

#endif
