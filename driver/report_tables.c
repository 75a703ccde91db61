/*
 * report_tables.c - the report's tables from a loaded results file (report_tables.h).
 *
 * The numbers are aggregate_compute's (the same means, quartiles and bootstrap
 * CIs that /summary holds when a run finishes; docs/methods.md section 6); this
 * file only lays them out and adds what a partial file needs: how many of each
 * group's images or pairs are done.
 */
#include "report_tables.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/results.h"
#include "sc.h"

#define MAX_STATES 256

/* ---- lookups in the aggregate tables ---- */

static const aggregate_metric_row_t *metric_row(const report_data_t *d, const char *metric,
                                                const char *method, const char *variant)
{
    const aggregate_tables_t *t = &d->tables;
    for (size_t i = 0; i < t->n_metrics; i++)
        if (!strcmp(t->metrics[i].metric, metric) && !strcmp(t->metrics[i].method, method) &&
            !strcmp(t->metrics[i].variant, variant))
            return &t->metrics[i];
    return NULL;
}

static const aggregate_pair_row_t *pair_row(const report_data_t *d, const char *exp,
                                            const char *va, const char *vb, const char *method,
                                            const char *sim)
{
    const aggregate_tables_t *t = &d->tables;
    for (size_t i = 0; i < t->n_pairs; i++) {
        const aggregate_pair_row_t *r = &t->pairs[i];
        if (!strcmp(r->experiment, exp) && !strcmp(r->variant_a, va) &&
            !strcmp(r->variant_b, vb) && !strcmp(r->method, method) && !strcmp(r->similarity, sim))
            return r;
    }
    return NULL;
}

static void cell_counts(const report_data_t *d, int v, int *planned, int *done)
{
    *planned = *done = 0;
    for (int i = 0; i < d->n_images; i++) {
        *planned += report_data_cell_planned(d, v, i);
        *done += report_data_cell_done(d, v, i);
    }
}

void report_tables_pair_counts(const report_data_t *d, int exp, int va, int vb, int *planned,
                               int *done)
{
    *planned = *done = 0;
    for (int q = 0; q < d->n_pairs; q++) {
        const int32_t *ix = d->pair_index + 4 * q;
        if (d->pair_exp[q] == exp && ix[0] == va && ix[2] == vb) {
            (*planned)++;
            *done += d->pair_done[q] != 0;
        }
    }
}

const char *report_tables_ssim_name(const report_data_t *d)
{
    if (report_data_sim(d, "ssim") >= 0)
        return "ssim";
    for (int s = 0; s < d->n_sims; s++)
        if (!strncmp(d->sim_names[s], "ssim", 4))
            return d->sim_names[s];
    return NULL;
}

const char *report_tables_sim_label(const char *sim)
{
    if (!sim)
        return "";
    if (!strcmp(sim, "ssim"))
        return "SSIM";
    if (!strcmp(sim, "ssim_l1"))
        return "SSIM (L=1)";
    if (!strcmp(sim, "ssim_gauss"))
        return "SSIM (Gaussian)";
    return sim;
}

/* ---- cell text ---- */

/* Text of a statistic: "not done", "undefined", the value with its CI, and the
 * fraction done when partial. ci: 1 = mean [lo, hi]; 0 = mean only. */
static void stat_text(char *buf, size_t size, int n, int n_nan, double mean, double lo, double hi,
                      int with_ci, int done, int planned)
{
    char part[48] = "";
    if (planned > 0 && done < planned)
        snprintf(part, sizeof part, " (%d/%d)", done, planned);
    if (done == 0 && planned > 0)
        snprintf(buf, size, "not done");
    else if (n == 0 && n_nan > 0)
        snprintf(buf, size, "undefined (%d NaN)%s", n_nan, part);
    else if (n == 0)
        snprintf(buf, size, "n/a");
    else if (with_ci && isfinite(lo) && isfinite(hi))
        snprintf(buf, size, "%.3f [%.3f, %.3f]%s", mean, lo, hi, part);
    else
        snprintf(buf, size, "%.3f%s", mean, part);
}

/* A number for CSV: 10 significant digits, empty for NaN. */
static const char *num(char *buf, double x)
{
    if (!isfinite(x))
        buf[0] = 0;
    else
        snprintf(buf, 32, "%.10g", x);
    return buf;
}

typedef struct builder {
    report_tables_t *out;
    int cap_display, cap_csv;
} builder_t;

static int keep(builder_t *b, report_table_t *t, int csv)
{
    if (!t)
        return SC_ERR_NOMEM;
    report_table_t ***list = csv ? &b->out->csv : &b->out->display;
    int *n = csv ? &b->out->n_csv : &b->out->n_display;
    int *cap = csv ? &b->cap_csv : &b->cap_display;
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 16;
        report_table_t **grown = realloc(*list, (size_t)c * sizeof *grown);
        if (!grown) {
            report_table_destroy(t);
            return SC_ERR_NOMEM;
        }
        *list = grown;
        *cap = c;
    }
    (*list)[(*n)++] = t;
    return 0;
}

/* ---- the tables ---- */

static int build_progress(const report_data_t *d, builder_t *b)
{
    int rc = 0;
    const char *hd[] = {"part of the run", "kind", "done", "planned", "status"};
    report_table_t *t = report_table_create("progress", "Run progress", 5, hd);
    const char *hc[] = {"item", "kind", "done", "planned"};
    report_table_t *c = report_table_create("progress", "progress", 4, hc);
    CHECK(t && c, SC_ERR_NOMEM, "out of memory for the progress table");
    for (int v = 0; v < d->n_variants; v++) {
        int planned, done;
        cell_counts(d, v, &planned, &done);
        if (!planned)
            continue;
        CHECK_RC(report_table_row(t));
        report_table_cell(t, "cells of %s", d->variants[v]);
        report_table_cell(t, "%s", d->kinds[v]);
        report_table_cell(t, "%d", done);
        report_table_cell(t, "%d", planned);
        report_table_cell(t, "%s", done == planned ? "complete"
                                   : done == 0    ? "**not started**"
                                                  : "**partial**");
        CHECK_RC(report_table_row(c));
        report_table_cell(c, "cells:%s", d->variants[v]);
        report_table_cell(c, "%s", d->kinds[v]);
        report_table_cell(c, "%d", done);
        report_table_cell(c, "%d", planned);
    }
    for (int e = 0; e < RESULTS_EXP_COUNT; e++) {
        int planned = 0, done = 0;
        for (int q = 0; q < d->n_pairs; q++)
            if (d->pair_exp[q] == e) {
                planned++;
                done += d->pair_done[q] != 0;
            }
        if (!planned)
            continue;
        CHECK_RC(report_table_row(t));
        report_table_cell(t, "pairs of %s", results_experiment_name(e));
        report_table_cell(t, "pairs");
        report_table_cell(t, "%d", done);
        report_table_cell(t, "%d", planned);
        report_table_cell(t, "%s", done == planned ? "complete"
                                   : done == 0    ? "**not started**"
                                                  : "**partial**");
        CHECK_RC(report_table_row(c));
        report_table_cell(c, "pairs:%s", results_experiment_name(e));
        report_table_cell(c, "pairs");
        report_table_cell(c, "%d", done);
        report_table_cell(c, "%d", planned);
    }
    report_table_note(t, "A cell is one (model variant, image) with every method's map and "
                         "metrics; a pair compares two maps (pair phase, after the cells).");
    rc = keep(b, t, 0);
    t = NULL;
    if (rc == 0)
        rc = keep(b, c, 1);
    c = NULL;
cleanup:
    report_table_destroy(t);
    report_table_destroy(c);
    return rc;
}

/* Localization utility: mean AUPRC [CI] per method on trained and untrained models. */
static int build_utility(const report_data_t *d, builder_t *b)
{
    int rc = 0;
    report_table_t *t = NULL;
    if (report_data_metric(d, "auprc") < 0)
        return 0;
    int cols[MAX_STATES], n_cols = 0;
    for (int v = 0; v < d->n_variants && n_cols < MAX_STATES; v++)
        if (!strcmp(d->kinds[v], "trained") || !strcmp(d->kinds[v], "untrained"))
            cols[n_cols++] = v;
    if (!n_cols)
        return 0;
    const char *hd[MAX_STATES + 1];
    char labels[MAX_STATES][AGGREGATE_NAME_W + 16];
    hd[0] = "method";
    for (int c = 0; c < n_cols; c++) {
        int v = cols[c];
        if (!strcmp(d->kinds[v], "untrained"))
            snprintf(labels[c], sizeof labels[c], "%s (fully randomized)", d->variants[v]);
        else
            snprintf(labels[c], sizeof labels[c], "%s", d->variants[v]);
        hd[c + 1] = labels[c];
    }
    t = report_table_create("utility",
                            "Localization utility: mean AUPRC [95% CI] over the positive test images",
                            n_cols + 1, hd);
    CHECK(t, SC_ERR_NOMEM, "out of memory for the utility table");
    int avgmask = report_data_method(d, "avgmask");
    for (int pass = 0; pass < 2; pass++)
        for (int m = 0; m < d->n_methods; m++) {
            /* the methods first, the average-mask baseline last */
            if ((pass == 0) == (m == avgmask))
                continue;
            CHECK_RC(report_table_row(t));
            if (m == avgmask)
                report_table_cell(t, "**avgmask (baseline)**");
            else
                report_table_cell(t, "%s", d->methods[m]);
            for (int c = 0; c < n_cols; c++) {
                int planned, done;
                cell_counts(d, cols[c], &planned, &done);
                const aggregate_metric_row_t *r =
                    metric_row(d, "auprc", d->methods[m], d->variants[cols[c]]);
                char text[96];
                if (r)
                    stat_text(text, sizeof text, r->n, r->n_nan, r->mean, r->ci_lo, r->ci_hi, 1,
                              done, planned);
                else
                    snprintf(text, sizeof text, "n/a");
                report_table_cell(t, "%s", text);
            }
        }
    report_table_note(t, "AUPRC: area under the pixel-level precision-recall curve against the "
                         "ground-truth mask (trapezoidal rule; docs/methods.md section 5). avgmask is "
                         "the average training mask scored against every image: a method below it "
                         "localizes worse than a fixed prior. The fully randomized model has every "
                         "weight re-initialized: a method that scores as well there does not "
                         "explain the model.");
    rc = keep(b, t, 0);
    t = NULL;
cleanup:
    report_table_destroy(t);
    return rc;
}

/* The summary columns of a CSV row: n, n_nan, mean, ci_lo, ci_hi, median, q1, q3. */
static void summary_cells(report_table_t *t, int n, int n_nan, double mean, double ci_lo,
                          double ci_hi, double median, double q1, double q3)
{
    const double v[6] = {mean, ci_lo, ci_hi, median, q1, q3};
    char x[32];
    report_table_cell(t, "%d", n);
    report_table_cell(t, "%d", n_nan);
    for (int k = 0; k < 6; k++)
        report_table_cell(t, "%s", num(x, v[k]));
}

/* Long CSV of every per-map metric (metrics.csv) and of AUPRC alone (utility.csv). */
static int build_metric_csv(const report_data_t *d, builder_t *b, const char *id,
                            const char *only)
{
    int rc = 0;
    const char *hd[] = {"metric", "method", "variant", "kind", "images_planned", "images_done",
                        "n", "n_nan", "mean", "ci_lo", "ci_hi", "median", "q1", "q3"};
    report_table_t *t = report_table_create(id, id, 14, hd);
    CHECK(t, SC_ERR_NOMEM, "out of memory for %s", id);
    for (int k = 0; k < d->n_metrics; k++) {
        if (only && strcmp(d->metric_names[k], only))
            continue;
        for (int m = 0; m < d->n_methods; m++)
            for (int v = 0; v < d->n_variants; v++) {
                const aggregate_metric_row_t *r =
                    metric_row(d, d->metric_names[k], d->methods[m], d->variants[v]);
                int planned, done;
                cell_counts(d, v, &planned, &done);
                if (!r || !planned)
                    continue;
                CHECK_RC(report_table_row(t));
                report_table_cell(t, "%s", r->metric);
                report_table_cell(t, "%s", r->method);
                report_table_cell(t, "%s", r->variant);
                report_table_cell(t, "%s", d->kinds[v]);
                report_table_cell(t, "%d", planned);
                report_table_cell(t, "%d", done);
                summary_cells(t, r->n, r->n_nan, r->mean, r->ci_lo, r->ci_hi, r->median, r->q1,
                              r->q3);
            }
    }
    rc = keep(b, t, 1);
    t = NULL;
cleanup:
    report_table_destroy(t);
    return rc;
}

static int build_pairs_csv(const report_data_t *d, builder_t *b)
{
    int rc = 0;
    const char *hd[] = {"experiment", "variant_a", "variant_b", "method", "similarity",
                        "pairs_planned", "pairs_done", "n", "n_nan", "mean", "ci_lo", "ci_hi",
                        "median", "q1", "q3"};
    report_table_t *t = report_table_create("pairs", "pairs", 15, hd);
    CHECK(t, SC_ERR_NOMEM, "out of memory for pairs.csv");
    for (size_t i = 0; i < d->tables.n_pairs; i++) {
        const aggregate_pair_row_t *r = &d->tables.pairs[i];
        int exp = -1;
        for (int e = 0; e < RESULTS_EXP_COUNT; e++)
            if (!strcmp(results_experiment_name(e), r->experiment))
                exp = e;
        int planned, done;
        report_tables_pair_counts(d, exp, report_data_variant(d, r->variant_a),
                                  report_data_variant(d, r->variant_b), &planned, &done);
        CHECK_RC(report_table_row(t));
        report_table_cell(t, "%s", r->experiment);
        report_table_cell(t, "%s", r->variant_a);
        report_table_cell(t, "%s", r->variant_b);
        report_table_cell(t, "%s", r->method);
        report_table_cell(t, "%s", r->similarity);
        report_table_cell(t, "%d", planned);
        report_table_cell(t, "%d", done);
        summary_cells(t, r->n, r->n_nan, r->mean, r->ci_lo, r->ci_hi, r->median, r->q1, r->q3);
    }
    rc = keep(b, t, 1);
    t = NULL;
cleanup:
    report_table_destroy(t);
    return rc;
}

/*
 * Randomization tables of one trained model: mean SSIM(state, original) per
 * state, the fully randomized model, the baseline and (cascading) pass/fail.
 * The verdict is the sanity check of docs/methods.md section 6: a method passes
 * when some state's mean SSIM falls below the baseline; on a partial file it
 * is marked provisional.
 */
static int build_randomization(const report_data_t *d, builder_t *b, int base, const char *kind,
                               report_table_t *csv, report_table_t *sanity_csv)
{
    int rc = 0;
    report_table_t *t = NULL;
    const char *ssim = report_tables_ssim_name(d);
    int states[MAX_STATES];
    int n_states = report_data_variants_of(d, kind, d->bases[base], states, MAX_STATES);
    int exp = !strcmp(kind, "cascading") ? RESULTS_EXP_CASCADING : RESULTS_EXP_INDEPENDENT;
    int cascading = exp == RESULTS_EXP_CASCADING;
    if (!n_states || !ssim)
        return 0;
    int untrained[4];
    int n_untrained = cascading ? report_data_variants_of(d, "untrained", d->bases[base], untrained, 4) : 0;
    int n_cols = 1 + n_states + n_untrained + 1 + cascading;
    const char *hd[MAX_STATES + 8];
    char labels[MAX_STATES + 4][AGGREGATE_NAME_W];
    int k = 0;
    hd[k++] = "method";
    for (int s = 0; s < n_states; s++) {
        snprintf(labels[s], sizeof labels[s], "%s", report_data_variant_label(d, states[s]));
        hd[k++] = labels[s];
    }
    if (n_untrained)
        hd[k++] = "fully randomized";
    hd[k++] = "baseline";
    if (cascading)
        hd[k++] = "passes";
    char id[AGGREGATE_NAME_W + 32], title[AGGREGATE_NAME_W + 160];
    snprintf(id, sizeof id, "%s_%s", kind, d->bases[base]);
    for (char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            *p = '_';
    snprintf(title, sizeof title, "%s randomization of %s: mean %s(state, original)",
             cascading ? "Cascading" : "Independent", d->bases[base], report_tables_sim_label(ssim));
    t = report_table_create(id, title, n_cols, hd);
    CHECK(t, SC_ERR_NOMEM, "out of memory for the %s table", kind);
    int base_planned, base_done;
    report_tables_pair_counts(d, RESULTS_EXP_BASELINE, base, base, &base_planned, &base_done);
    for (int m = 0; m < d->n_methods; m++) {
        const char *method = d->methods[m];
        CHECK_RC(report_table_row(t));
        report_table_cell(t, "%s", method);
        const aggregate_pair_row_t *br = pair_row(d, "baseline", d->variants[base],
                                                  d->variants[base], method, ssim);
        double baseline = br && br->n ? br->mean : NAN;
        double min_state = INFINITY;
        int all_done = base_done == base_planned;
        for (int s = 0; s < n_states; s++) {
            int planned, done;
            report_tables_pair_counts(d, exp, states[s], base, &planned, &done);
            all_done &= done == planned;
            const aggregate_pair_row_t *r =
                pair_row(d, kind, d->variants[states[s]], d->variants[base], method, ssim);
            char text[96];
            if (r) {
                stat_text(text, sizeof text, r->n, r->n_nan, r->mean, NAN, NAN, 0, done, planned);
                if (r->n && r->mean < min_state)
                    min_state = r->mean;
            } else {
                snprintf(text, sizeof text, "not planned");
            }
            report_table_cell(t, "%s", text);
            if (csv) {
                char x[5][32];
                CHECK_RC(report_table_row(csv));
                report_table_cell(csv, "%s", d->bases[base]);
                report_table_cell(csv, "%s", kind);
                report_table_cell(csv, "%d", d->states[states[s]]);
                report_table_cell(csv, "%s", d->variants[states[s]]);
                report_table_cell(csv, "%s", method);
                report_table_cell(csv, "%s", ssim);
                report_table_cell(csv, "%d", planned);
                report_table_cell(csv, "%d", done);
                report_table_cell(csv, "%d", r ? r->n : 0);
                report_table_cell(csv, "%s", num(x[0], r && r->n ? r->mean : NAN));
                report_table_cell(csv, "%s", num(x[1], r && r->n ? r->ci_lo : NAN));
                report_table_cell(csv, "%s", num(x[2], r && r->n ? r->ci_hi : NAN));
                report_table_cell(csv, "%s", num(x[3], r && r->n ? r->median : NAN));
                report_table_cell(csv, "%s", num(x[4], baseline));
                report_table_cell(csv, "%s", r && r->n && isfinite(baseline)
                                                 ? (r->mean < baseline ? "1" : "0")
                                                 : "");
            }
        }
        for (int u = 0; u < n_untrained; u++) {
            int planned, done;
            report_tables_pair_counts(d, RESULTS_EXP_UNTRAINED, untrained[u], base, &planned, &done);
            const aggregate_pair_row_t *r = pair_row(d, "untrained", d->variants[untrained[u]],
                                                     d->variants[base], method, ssim);
            char text[96];
            if (r)
                stat_text(text, sizeof text, r->n, r->n_nan, r->mean, NAN, NAN, 0, done, planned);
            else
                snprintf(text, sizeof text, "not planned");
            if (u == 0)
                report_table_cell(t, "%s", text);
        }
        char text[96];
        stat_text(text, sizeof text, br ? br->n : 0, br ? br->n_nan : 0, baseline, NAN, NAN, 0,
                  base_done, base_planned);
        report_table_cell(t, "%s", br ? text : "not planned");
        if (cascading) {
            int known = isfinite(baseline) && isfinite(min_state);
            int pass = known && min_state < baseline;
            if (!known)
                report_table_cell(t, all_done ? "n/a" : "pending");
            else if (all_done)
                report_table_cell(t, "%s", pass ? "yes" : "**no**");
            else
                report_table_cell(t, "%s (so far)", pass ? "yes" : "no");
            if (sanity_csv) {
                char x[3][32];
                CHECK_RC(report_table_row(sanity_csv));
                report_table_cell(sanity_csv, "%s", d->bases[base]);
                report_table_cell(sanity_csv, "%s", method);
                report_table_cell(sanity_csv, "%s", ssim);
                report_table_cell(sanity_csv, "%s", num(x[0], baseline));
                report_table_cell(sanity_csv, "%s", num(x[1], isfinite(min_state) ? min_state : NAN));
                const aggregate_pair_row_t *last = pair_row(
                    d, kind, d->variants[states[n_states - 1]], d->variants[base], method, ssim);
                report_table_cell(sanity_csv, "%s", num(x[2], last && last->n ? last->mean : NAN));
                report_table_cell(sanity_csv, "%s", known ? (pass ? "1" : "0") : "");
                report_table_cell(sanity_csv, "%d", all_done);
            }
        }
    }
    if (cascading)
        report_table_note(t, "States re-initialize the model cumulatively from the top block down "
                             "(state k = the first k blocks; docs/methods.md section 6). baseline: the "
                             "mean %s between maps of different images of the trained model. A "
                             "method passes the sanity check when its mean %s falls below the "
                             "baseline at some state: its maps then depend on the weights. "
                             "\"(k/n)\": pairs done when the run is partial.",
                           report_tables_sim_label(ssim), report_tables_sim_label(ssim));
    else
        report_table_note(t, "Each state re-initializes one block only (docs/methods.md section 6); "
                             "baseline as in the cascading table.");
    rc = keep(b, t, 0);
    t = NULL;
cleanup:
    report_table_destroy(t);
    return rc;
}

/* Label randomization, repeatability, reproducibility: one table per model pair. */
static int build_distribution(const report_data_t *d, builder_t *b, int exp, const char *title)
{
    int rc = 0;
    report_table_t *t = NULL;
    const char *ssim = report_tables_ssim_name(d);
    if (!ssim)
        return 0;
    int seen[MAX_STATES][2], n_seen = 0;
    for (int q = 0; q < d->n_pairs; q++) {
        if (d->pair_exp[q] != exp)
            continue;
        int va = d->pair_index[4 * q], vb = d->pair_index[4 * q + 2], dup = 0;
        for (int s = 0; s < n_seen; s++)
            dup |= seen[s][0] == va && seen[s][1] == vb;
        if (dup || n_seen == MAX_STATES)
            continue;
        seen[n_seen][0] = va;
        seen[n_seen][1] = vb;
        n_seen++;
        int planned, done;
        report_tables_pair_counts(d, exp, va, vb, &planned, &done);
        const char *spear = report_data_sim(d, "spearman_abs") >= 0 ? "spearman_abs" : NULL;
        char mean_head[64], sp_head[64];
        snprintf(mean_head, sizeof mean_head, "mean %s [95%% CI]", report_tables_sim_label(ssim));
        snprintf(sp_head, sizeof sp_head, "Spearman |abs| mean");
        const char *hd[] = {"method", "pairs", mean_head, "median [q1, q3]", sp_head};
        char id[2 * AGGREGATE_NAME_W + 32], full[2 * AGGREGATE_NAME_W + 128];
        snprintf(id, sizeof id, "%s_%s_%s", results_experiment_name(exp), d->variants[va],
                 d->variants[vb]);
        for (char *p = id; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
                *p = '_';
        snprintf(full, sizeof full, "%s: %s vs %s", title, d->variants[va], d->variants[vb]);
        t = report_table_create(id, full, spear ? 5 : 4, hd);
        CHECK(t, SC_ERR_NOMEM, "out of memory for the %s table", title);
        for (int m = 0; m < d->n_methods; m++) {
            const aggregate_pair_row_t *r = pair_row(d, results_experiment_name(exp),
                                                     d->variants[va], d->variants[vb],
                                                     d->methods[m], ssim);
            char text[96];
            CHECK_RC(report_table_row(t));
            report_table_cell(t, "%s", d->methods[m]);
            report_table_cell(t, "%d/%d", done, planned);
            if (!r) {
                report_table_cell(t, "n/a");
                report_table_cell(t, "n/a");
            } else {
                stat_text(text, sizeof text, r->n, r->n_nan, r->mean, r->ci_lo, r->ci_hi, 1, done,
                          planned);
                report_table_cell(t, "%s", text);
                if (r->n)
                    report_table_cell(t, "%.3f [%.3f, %.3f]", r->median, r->q1, r->q3);
                else
                    report_table_cell(t, "%s", done ? "undefined" : "not done");
            }
            if (spear) {
                const aggregate_pair_row_t *sp = pair_row(d, results_experiment_name(exp),
                                                          d->variants[va], d->variants[vb],
                                                          d->methods[m], spear);
                if (sp && sp->n)
                    report_table_cell(t, "%.3f", sp->mean);
                else
                    report_table_cell(t, "%s", done ? "undefined" : "not done");
            }
        }
        if (exp == RESULTS_EXP_LABEL)
            report_table_note(t, "SSIM per image between the maps of a model trained on shuffled "
                                 "labels and the trained model: a method sensitive to the labels "
                                 "has a low SSIM (compare with the randomization baseline).");
        else if (exp == RESULTS_EXP_REPEATABILITY)
            report_table_note(t, "SSIM per image between two replicates of one architecture "
                                 "trained with different seeds: high is repeatable.");
        else
            report_table_note(t, "SSIM per image between two architectures: high is reproducible.");
        rc = keep(b, t, 0);
        t = NULL;
        CHECK_RC(rc);
    }
cleanup:
    report_table_destroy(t);
    return rc;
}

/* The other localization metrics (means) on the first trained model. */
static int build_localization(const report_data_t *d, builder_t *b)
{
    int rc = 0;
    report_table_t *t = NULL;
    int first = -1;
    for (int v = 0; v < d->n_variants && first < 0; v++)
        if (!strcmp(d->kinds[v], "trained"))
            first = v;
    if (first < 0 || d->n_metrics < 2)
        return 0;
    const char *hd[MAX_STATES + 1], *names[MAX_STATES + 1];
    hd[0] = "method";
    int n = 0;
    for (int k = 0; k < d->n_metrics && n < MAX_STATES; k++)
        if (!report_tables_is_check(d->metric_names[k])) { /* those have their own table */
            hd[++n] = d->metric_names[k];
            names[n - 1] = d->metric_names[k];
        }
    if (n == 0)
        return 0;
    char title[AGGREGATE_NAME_W + 64];
    snprintf(title, sizeof title, "Other localization metrics on %s (means)", d->variants[first]);
    t = report_table_create("localization", title, n + 1, hd);
    CHECK(t, SC_ERR_NOMEM, "out of memory for the localization table");
    int planned, done;
    cell_counts(d, first, &planned, &done);
    for (int m = 0; m < d->n_methods; m++) {
        CHECK_RC(report_table_row(t));
        report_table_cell(t, "%s", d->methods[m]);
        for (int k = 0; k < n; k++) {
            const aggregate_metric_row_t *r =
                metric_row(d, names[k], d->methods[m], d->variants[first]);
            char text[96];
            if (r)
                stat_text(text, sizeof text, r->n, r->n_nan, r->mean, NAN, NAN, 0, done, planned);
            else
                snprintf(text, sizeof text, "n/a");
            report_table_cell(t, "%s", text);
        }
    }
    report_table_note(t, "docs/methods.md section 5: pointing game, energy-based pointing game "
                         "(energy), relevance rank accuracy (rra), top-k intersection, pixel ROC-AUC, "
                         "IoU/Dice after Otsu or a fixed threshold, soft Dice inside/outside the box; "
                         "ap = average precision. Per-variant values of every metric are in "
                         "metrics.csv.");
    rc = keep(b, t, 0);
    t = NULL;
cleanup:
    report_table_destroy(t);
    return rc;
}

/* ---- the checks beyond the paper (docs/methods.md) ---- */

static const char *const check_metrics[] = {"sparseness", "complexity", "deletion", "insertion",
                                            "road_morf", "road_lerf", "random_logit",
                                            "max_sensitivity", "avg_sensitivity", NULL};
static const char *const check_better[] = {"higher", "lower", "lower", "higher", "lower",
                                           "higher", "lower", "lower", "lower"};

int report_tables_is_check(const char *metric)
{
    for (int k = 0; check_metrics[k]; k++)
        if (!strcmp(check_metrics[k], metric))
            return 1;
    return 0;
}

/* Means of every listed check per method, one table per trained model, with
 * eMPRT's rise on the fully randomized model when the pairs hold it. */
static int build_checks(const report_data_t *d, builder_t *b)
{
    int rc = 0;
    report_table_t *t = NULL;
    int has_emprt = report_data_sim(d, "emprt") >= 0;
    for (int v = 0; v < d->n_variants; v++) {
        if (strcmp(d->kinds[v], "trained"))
            continue;
        const char *hd[16], *names[16];
        char heads[16][64];
        int n = 0;
        hd[0] = "method";
        for (int k = 0; check_metrics[k]; k++)
            if (report_data_metric(d, check_metrics[k]) >= 0) {
                snprintf(heads[n], sizeof heads[n], "%s (%s)", check_metrics[k], check_better[k]);
                names[n] = check_metrics[k];
                hd[1 + n] = heads[n];
                n++;
            }
        int untrained = -1;
        if (has_emprt && report_data_variants_of(d, "untrained", d->bases[v], &untrained, 1) == 1)
            hd[1 + n] = "eMPRT rise, fully randomized (higher)";
        else
            untrained = -1;
        if (n == 0 && untrained < 0)
            continue;
        char id[AGGREGATE_NAME_W + 16], title[AGGREGATE_NAME_W + 96];
        snprintf(id, sizeof id, "checks_%s", d->variants[v]);
        for (char *p = id; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                  *p == '_' || *p == '-'))
                *p = '_';
        snprintf(title, sizeof title, "Checks beyond the paper on %s (means)", d->variants[v]);
        t = report_table_create(id, title, 1 + n + (untrained >= 0), hd);
        CHECK(t, SC_ERR_NOMEM, "out of memory for the checks table");
        int planned, done;
        cell_counts(d, v, &planned, &done);
        for (int m = 0; m < d->n_methods; m++) {
            CHECK_RC(report_table_row(t));
            report_table_cell(t, "%s", d->methods[m]);
            char text[96];
            for (int k = 0; k < n; k++) {
                const aggregate_metric_row_t *r = metric_row(d, names[k], d->methods[m], d->variants[v]);
                if (r)
                    stat_text(text, sizeof text, r->n, r->n_nan, r->mean, NAN, NAN, 0, done, planned);
                else
                    snprintf(text, sizeof text, "n/a");
                report_table_cell(t, "%s", text);
            }
            if (untrained >= 0) {
                const aggregate_pair_row_t *r = pair_row(d, "untrained", d->variants[untrained],
                                                         d->variants[v], d->methods[m], "emprt");
                if (r)
                    stat_text(text, sizeof text, r->n, r->n_nan, r->mean, r->ci_lo, r->ci_hi, 1,
                              r->n + r->n_nan, r->n + r->n_nan);
                else
                    snprintf(text, sizeof text, "n/a");
                report_table_cell(t, "%s", text);
            }
        }
        report_table_note(t, "docs/methods.md, 'Checks beyond the paper': sparseness (Gini index) "
                             "and complexity (entropy) of the map; deletion and insertion (area "
                             "under the probability curve, RISE); ROAD most- and least-relevant-"
                             "first (mean probability over the removal percentages); random-logit "
                             "(SSIM with the map of another class); max and mean sensitivity to "
                             "uniform input noise; eMPRT (relative rise of the map's histogram "
                             "entropy on the fully randomized model). The direction that is better "
                             "is in brackets. Per-image values are in metrics.csv and pairs.csv.");
        rc = keep(b, t, 0);
        t = NULL;
        CHECK_RC(rc);
        /* eMPRT per cascading state (top-down and bottom-up) */
        int states[MAX_STATES];
        int n_states = has_emprt ? report_data_variants_of(d, "cascading", d->bases[v], states,
                                                           MAX_STATES) : 0;
        if (n_states == 0)
            continue;
        const char *hs[MAX_STATES + 2];
        char labels[MAX_STATES][AGGREGATE_NAME_W];
        hs[0] = "method";
        for (int s = 0; s < n_states; s++) {
            snprintf(labels[s], sizeof labels[s], "%s", report_data_variant_label(d, states[s]));
            hs[1 + s] = labels[s];
        }
        snprintf(id, sizeof id, "emprt_%s", d->variants[v]);
        for (char *p = id; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                  *p == '_' || *p == '-'))
                *p = '_';
        snprintf(title, sizeof title, "eMPRT per cascading state of %s: mean entropy rise over "
                 "the original maps", d->variants[v]);
        t = report_table_create(id, title, 1 + n_states, hs);
        CHECK(t, SC_ERR_NOMEM, "out of memory for the eMPRT table");
        for (int m = 0; m < d->n_methods; m++) {
            CHECK_RC(report_table_row(t));
            report_table_cell(t, "%s", d->methods[m]);
            for (int s = 0; s < n_states; s++) {
                const aggregate_pair_row_t *r = pair_row(d, "cascading", d->variants[states[s]],
                                                         d->variants[v], d->methods[m], "emprt");
                char text[96];
                if (r)
                    stat_text(text, sizeof text, r->n, r->n_nan, r->mean, NAN, NAN, 0,
                              r->n + r->n_nan, r->n + r->n_nan);
                else
                    snprintf(text, sizeof text, "n/a");
                report_table_cell(t, "%s", text);
            }
        }
        report_table_note(t, "(H(state) - H(original)) / H(original), H the discrete entropy of "
                             "the map's histogram (Hedstrom et al. 2023); states 1, 2, ... "
                             "randomize from the top, up1, up2, ... from the bottom. A map that "
                             "follows the model turns into noise: its entropy rises.");
        rc = keep(b, t, 0);
        t = NULL;
        CHECK_RC(rc);
    }
cleanup:
    report_table_destroy(t);
    return rc;
}

/* Which output each model explains (/models): shown and as models.csv. */
static int build_models(const report_data_t *d, builder_t *b)
{
    if (d->n_models == 0)
        return 0;
    const char *hd[] = {"model", "explained output", "label", "head", "input convention"};
    report_table_t *t = report_table_create("models", "Explained outputs", 5, hd);
    if (!t)
        return SC_ERR_NOMEM;
    for (int j = 0; j < d->n_models; j++) {
        report_table_row(t);
        report_table_cell(t, "%s", d->model_names[j]);
        if (d->model_targets[j] < 0)
            report_table_cell(t, "predicted class");
        else
            report_table_cell(t, "%d", (int)d->model_targets[j]);
        report_table_cell(t, "%s", d->model_target_labels[j]);
        report_table_cell(t, "%s", d->model_heads[j]);
        report_table_cell(t, "%s", d->model_inputs[j]);
    }
    report_table_note(t, "Every method explains this output's logit (before any softmax or "
                         "sigmoid); \"predicted class\" is the largest logit of each image.");
    int rc = keep(b, t, 0);
    if (rc < 0)
        return rc;
    /* the same rows for the CSV files (a table is kept in one list) */
    report_table_t *c = report_table_create("models", "models", 5, hd);
    if (!c)
        return SC_ERR_NOMEM;
    for (int j = 0; j < d->n_models; j++) {
        report_table_row(c);
        report_table_cell(c, "%s", d->model_names[j]);
        report_table_cell(c, "%d", (int)d->model_targets[j]);
        report_table_cell(c, "%s", d->model_target_labels[j]);
        report_table_cell(c, "%s", d->model_heads[j]);
        report_table_cell(c, "%s", d->model_inputs[j]);
    }
    return keep(b, c, 1);
}

int report_tables_build(const report_data_t *d, report_tables_t *out)
{
    int rc = 0;
    memset(out, 0, sizeof *out);
    builder_t b = {.out = out};
    report_table_t *cas = NULL, *sanity = NULL;
    /* the progress table first when the run is partial, last when it is complete */
    int complete = d->cells_done == d->cells_planned && d->pairs_done == d->pairs_planned;
    if (!complete)
        CHECK_RC(build_progress(d, &b));
    CHECK_RC(build_models(d, &b));
    CHECK_RC(build_utility(d, &b));
    const char *hc[] = {"model", "randomization", "state", "variant", "method", "similarity",
                        "pairs_planned", "pairs_done", "n", "mean", "ci_lo", "ci_hi", "median",
                        "baseline", "below_baseline"};
    const char *hs[] = {"model", "method", "similarity", "baseline", "min_state", "last_state",
                        "pass", "complete"};
    cas = report_table_create("cascading", "cascading", 15, hc);
    sanity = report_table_create("sanity", "sanity", 8, hs);
    CHECK(cas && sanity, SC_ERR_NOMEM, "out of memory for the randomization tables");
    for (int v = 0; v < d->n_variants; v++)
        if (!strcmp(d->kinds[v], "trained")) {
            CHECK_RC(build_randomization(d, &b, v, "cascading", cas, sanity));
            CHECK_RC(build_randomization(d, &b, v, "independent", cas, NULL));
        }
    CHECK_RC(build_distribution(d, &b, RESULTS_EXP_LABEL, "Label randomization"));
    CHECK_RC(build_distribution(d, &b, RESULTS_EXP_REPEATABILITY, "Repeatability"));
    CHECK_RC(build_distribution(d, &b, RESULTS_EXP_REPRODUCIBILITY, "Reproducibility"));
    CHECK_RC(build_localization(d, &b));
    CHECK_RC(build_checks(d, &b));
    if (complete)
        CHECK_RC(build_progress(d, &b));
    CHECK_RC(build_metric_csv(d, &b, "utility", "auprc"));
    CHECK_RC(build_metric_csv(d, &b, "metrics", NULL));
    CHECK_RC(build_pairs_csv(d, &b));
    rc = keep(&b, cas, 1);
    cas = NULL;
    CHECK_RC(rc);
    rc = keep(&b, sanity, 1);
    sanity = NULL;
    CHECK_RC(rc);
cleanup:
    report_table_destroy(cas);
    report_table_destroy(sanity);
    if (rc < 0)
        report_tables_free(out);
    return rc;
}

void report_tables_free(report_tables_t *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n_display; i++)
        report_table_destroy(t->display[i]);
    for (int i = 0; i < t->n_csv; i++)
        report_table_destroy(t->csv[i]);
    free(t->display);
    free(t->csv);
    memset(t, 0, sizeof *t);
}

int report_tables_status(const report_data_t *d, char *buf, size_t size)
{
    size_t used = 0;
#define ADD(...)                                                                \
    do {                                                                        \
        if (used < size)                                                        \
            used += (size_t)snprintf(buf + used, size - used, __VA_ARGS__);     \
    } while (0)
    buf[0] = 0;
    int complete = d->cells_done == d->cells_planned && d->pairs_done == d->pairs_planned;
    if (complete) {
        ADD("Complete: %ld/%ld cells and %ld/%ld pairs done%s.", d->cells_done, d->cells_planned,
            d->pairs_done, d->pairs_planned,
            d->has_summary ? "" : " (/summary was not written: the run stopped before its "
                                  "aggregation; the report computes the same tables itself)");
        return 1;
    }
    ADD("Incomplete run: %ld/%ld cells and %ld/%ld pairs done. Missing:", d->cells_done,
        d->cells_planned, d->pairs_done, d->pairs_planned);
    int listed = 0;
    for (int v = 0; v < d->n_variants; v++) {
        int planned, done;
        cell_counts(d, v, &planned, &done);
        if (done < planned)
            ADD("%s cells of %s (%d/%d done)", listed++ ? ";" : "", d->variants[v], done, planned);
    }
    for (int e = 0; e < RESULTS_EXP_COUNT; e++) {
        int planned = 0, done = 0;
        for (int q = 0; q < d->n_pairs; q++)
            if (d->pair_exp[q] == e) {
                planned++;
                done += d->pair_done[q] != 0;
            }
        if (done < planned)
            ADD("%s pairs of %s (%d/%d done)", listed++ ? ";" : "", results_experiment_name(e),
                done, planned);
    }
    if (!d->has_summary)
        ADD("; /summary (written when the run finishes)");
    ADD(". The tables and figures show the done work only. To finish: salcheck run %s --out %s "
        "--resume",
        d->job_path[0] ? d->job_path : "JOB.ini", d->path);
    ADD(".");
#undef ADD
    return 0;
}
