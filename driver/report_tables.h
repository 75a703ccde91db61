/*
 * report_tables.h - the tables of `salcheck report` (module report, prefix
 * report_tables_), built from a loaded results file (report_data.h).
 *
 * Display tables (Markdown and HTML, the paper's layout): run progress;
 * localization utility (mean AUPRC [95% CI] per method on the trained and
 * untrained models, the average-mask row as the baseline); SSIM per cascading
 * state per method with the randomization baseline and pass/fail (and the same
 * for independent randomization when planned); label randomization,
 * repeatability and reproducibility distributions; the other localization
 * metrics. CSV tables (long and numeric, one row per group, for spreadsheets
 * and pandas): progress, metrics, utility, pairs, cascading, sanity.
 *
 * On a partial file every number comes from the done cells and pairs only;
 * a cell says "not done" when nothing of it is, and "(k/n)" when part is.
 */
#ifndef REPORT_TABLES_H
#define REPORT_TABLES_H

#include <stddef.h>

#include "report_data.h"
#include "report_table.h"

typedef struct report_tables {
    report_table_t **display; /* Markdown + HTML */
    int n_display;
    report_table_t **csv;     /* one CSV file each: <id>.csv */
    int n_csv;
} report_tables_t;

/* Build every table. On success *out holds tables owned by the caller
 * (report_tables_free). Returns 0 or < 0 (logged). */
int report_tables_build(const report_data_t *d, report_tables_t *out);
void report_tables_free(report_tables_t *t);

/* The similarity used for the randomization tables: "ssim" when the run
 * computed it, else its first ssim_* variant, else NULL. */
const char *report_tables_ssim_name(const report_data_t *d);

/* 1 for the per-map checks beyond the paper (sparseness, deletion, ...): they
 * get their own table ("Checks beyond the paper"), not the localization one. */
int report_tables_is_check(const char *metric);

/* How a similarity is named in titles and labels: "SSIM", "SSIM (L=1)",
 * "SSIM (Gaussian)", or the name itself. */
const char *report_tables_sim_label(const char *sim);

/*
 * One paragraph on how complete the file is: "complete" or what is missing
 * (variants with cells not done, experiments with pairs not done, /summary)
 * and how to continue the run. Into buf[size]; returns 1 when the file is
 * complete, 0 when it is partial.
 */
int report_tables_status(const report_data_t *d, char *buf, size_t size);

/* Pairs of one (experiment, variant a, variant b) group: planned and done. */
void report_tables_pair_counts(const report_data_t *d, int exp, int va, int vb, int *planned,
                               int *done);

#endif
