/*
 * aggregate.c - /summary and the printed tables (aggregate.h; docs/methods.md section 6).
 *
 * /summary/metrics   one row per (metric, method, variant): n, n_nan, mean, ci_lo, ci_hi,
 *                    median, q1, q3 over the variant's images
 * /summary/pairs     one row per (experiment, variant_a, variant_b, method, similarity)
 * /summary/sanity    one row per (model, method) of the cascading test: baseline SSIM, SSIM of
 *                    the last state, lowest state SSIM, pass (1 when a state falls below the
 *                    baseline)
 * All three are compound datasets: pandas.DataFrame(f["summary/metrics"][()]).
 */
#include "aggregate.h"
#include "io/h5attr.h"
#include "report_tables.h"

#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/results.h"
#include "metrics/stats.h"
#include "sc.h"

#define NAME_W AGGREGATE_NAME_W
#define BOOT_SEED 20201
#define MAX_STATES 64

typedef aggregate_metric_row_t metric_row_t;
typedef aggregate_pair_row_t pair_row_t;
typedef aggregate_sanity_row_t sanity_row_t;

typedef struct file_data {
    hid_t file;
    int M, V, N, P, K, S;
    char (*methods)[64], (*variants)[NAME_W], (*kinds)[32], (*bases)[NAME_W];
    char (*metric_names)[64], (*sim_names)[64];
    int32_t *states, *n_images, *pair_index;
    int8_t *pair_exp;
    uint8_t *pair_done, *done;
} file_data_t;

/* Read a fixed-length string dataset into items of `width` bytes. */
static int read_strings(hid_t file, const char *name, char *items, size_t width, int *count)
{
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0)
        return SC_ERR_H5;
    hid_t s = H5Dget_space(d), t = H5Dget_type(d);
    int n = (int)H5Sget_simple_extent_npoints(s);
    size_t fw = H5Tget_size(t);
    char *buf = calloc((size_t)n + 1, fw);
    int rc = 0;
    if (n > 0 && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        rc = SC_ERR_H5;
    for (int i = 0; items && i < n; i++)
        snprintf(items + (size_t)i * width, width, "%.*s", (int)fw, buf + (size_t)i * fw);
    free(buf);
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
    if (count)
        *count = n;
    return rc;
}

static int read_numeric(hid_t file, const char *name, hid_t mtype, void *buf)
{
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0)
        return SC_ERR_H5;
    herr_t st = H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    H5Dclose(d);
    return st < 0 ? SC_ERR_H5 : 0;
}

static int count_of(hid_t file, const char *name)
{
    int n = 0;
    read_strings(file, name, NULL, 0, &n);
    return n;
}

/* Names of the datasets in a group (metrics or similarities), excluding some. */
static int list_group(hid_t file, const char *group, char (**names)[64], const char *skip1,
                      const char *skip2, const char *skip3)
{
    hid_t g = H5Gopen2(file, group, H5P_DEFAULT);
    if (g < 0)
        return SC_ERR_H5;
    H5G_info_t info;
    H5Gget_info(g, &info);
    *names = calloc(info.nlinks + 1, sizeof **names);
    int n = 0;
    for (hsize_t i = 0; i < info.nlinks; i++) {
        char name[64];
        if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
                               H5P_DEFAULT) < 0)
            continue;
        if ((skip1 && !strcmp(name, skip1)) || (skip2 && !strcmp(name, skip2)) ||
            (skip3 && !strcmp(name, skip3)))
            continue;
        snprintf((*names)[n++], 64, "%s", name);
    }
    H5Gclose(g);
    return n;
}

static void free_data(file_data_t *d)
{
    free(d->methods);
    free(d->variants);
    free(d->kinds);
    free(d->bases);
    free(d->metric_names);
    free(d->sim_names);
    free(d->states);
    free(d->n_images);
    free(d->pair_index);
    free(d->pair_exp);
    free(d->pair_done);
    free(d->done);
}

static int load_data(hid_t file, file_data_t *d)
{
    memset(d, 0, sizeof *d);
    d->file = file;
    d->M = count_of(file, "methods/name");
    d->V = count_of(file, "variants/name");
    d->N = count_of(file, "images/id");
    d->methods = calloc((size_t)d->M + 1, sizeof *d->methods);
    d->variants = calloc((size_t)d->V + 1, sizeof *d->variants);
    d->kinds = calloc((size_t)d->V + 1, sizeof *d->kinds);
    d->bases = calloc((size_t)d->V + 1, sizeof *d->bases);
    d->states = calloc((size_t)d->V + 1, sizeof(int32_t));
    d->n_images = calloc((size_t)d->V + 1, sizeof(int32_t));
    d->done = calloc((size_t)d->V * d->N + 1, 1);
    if (read_strings(file, "methods/name", (char *)d->methods, 64, NULL) < 0 ||
        read_strings(file, "variants/name", (char *)d->variants, NAME_W, NULL) < 0 ||
        read_strings(file, "variants/kind", (char *)d->kinds, 32, NULL) < 0 ||
        read_strings(file, "variants/base", (char *)d->bases, NAME_W, NULL) < 0 ||
        read_numeric(file, "variants/state", H5T_NATIVE_INT32, d->states) < 0 ||
        read_numeric(file, "variants/n_images", H5T_NATIVE_INT32, d->n_images) < 0 ||
        read_numeric(file, "status/done", H5T_NATIVE_UINT8, d->done) < 0)
        return SC_ERR_FORMAT;
    d->K = list_group(file, "metrics", &d->metric_names, NULL, NULL, NULL);
    d->S = list_group(file, "pairs", &d->sim_names, "index", "experiment", "experiment_names");
    hid_t ds = H5Dopen2(file, "pairs/experiment", H5P_DEFAULT);
    hid_t sp = H5Dget_space(ds);
    d->P = (int)H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    H5Dclose(ds);
    d->pair_index = calloc((size_t)d->P * 4 + 1, sizeof(int32_t));
    d->pair_exp = calloc((size_t)d->P + 1, 1);
    d->pair_done = calloc((size_t)d->P + 1, 1);
    if ((d->P > 0 && (read_numeric(file, "pairs/index", H5T_NATIVE_INT32, d->pair_index) < 0 ||
                      read_numeric(file, "pairs/experiment", H5T_NATIVE_INT8, d->pair_exp) < 0 ||
                      read_numeric(file, "status/pair_done", H5T_NATIVE_UINT8, d->pair_done) < 0)))
        return SC_ERR_FORMAT;
    return 0;
}

static void summarize(stats_ws_t *sws, const double *x, size_t n, uint32_t a, uint32_t b,
                      uint32_t c, int32_t *n_used, int32_t *n_nan, double *mean, double *lo,
                      double *hi, double *median, double *q1, double *q3)
{
    stats_summary_t s;
    memset(&s, 0, sizeof s);
    stats_summary(sws, x, n, &s);
    *n_used = (int32_t)s.n;
    *n_nan = (int32_t)s.n_nan;
    *mean = s.n ? s.mean : NAN;
    *median = s.n ? s.median : NAN;
    *q1 = s.n ? s.q1 : NAN;
    *q3 = s.n ? s.q3 : NAN;
    *lo = *hi = NAN;
    if (s.n >= 2)
        stats_bootstrap_ci(sws, x, n, BOOT_SEED, a, b, c, 0.95, lo, hi);
}

static hid_t str_field(size_t w)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, w);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    return t;
}

static void add_stats_fields(hid_t t, size_t off_n, size_t off_nn, size_t off_mean)
{
    H5Tinsert(t, "n", off_n, H5T_NATIVE_INT32);
    H5Tinsert(t, "n_nan", off_nn, H5T_NATIVE_INT32);
    const char *names[6] = {"mean", "ci_lo", "ci_hi", "median", "q1", "q3"};
    for (int i = 0; i < 6; i++)
        H5Tinsert(t, names[i], off_mean + (size_t)i * sizeof(double), H5T_NATIVE_DOUBLE);
}

static int write_table(hid_t g, const char *name, hid_t type, size_t count, const void *rows)
{
    hsize_t dims[1] = {count};
    hid_t s = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(g, name, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = d >= 0 && (count == 0 || H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0);
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(s);
    return ok ? 0 : SC_ERR_H5;
}

static int write_summary(hid_t file, const metric_row_t *mr, size_t nm, const pair_row_t *pr,
                         size_t np, const sanity_row_t *sr, size_t ns)
{
    H5E_BEGIN_TRY { H5Ldelete(file, "summary", H5P_DEFAULT); } H5E_END_TRY;
    hid_t g = H5Gcreate2(file, "summary", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return SC_ERR_H5;
    hid_t s32 = str_field(32), sname = str_field(NAME_W);
    hid_t tm = H5Tcreate(H5T_COMPOUND, sizeof(metric_row_t));
    H5Tinsert(tm, "metric", HOFFSET(metric_row_t, metric), s32);
    H5Tinsert(tm, "method", HOFFSET(metric_row_t, method), s32);
    H5Tinsert(tm, "variant", HOFFSET(metric_row_t, variant), sname);
    add_stats_fields(tm, HOFFSET(metric_row_t, n), HOFFSET(metric_row_t, n_nan),
                     HOFFSET(metric_row_t, mean));
    hid_t tp = H5Tcreate(H5T_COMPOUND, sizeof(pair_row_t));
    H5Tinsert(tp, "experiment", HOFFSET(pair_row_t, experiment), s32);
    H5Tinsert(tp, "variant_a", HOFFSET(pair_row_t, variant_a), sname);
    H5Tinsert(tp, "variant_b", HOFFSET(pair_row_t, variant_b), sname);
    H5Tinsert(tp, "method", HOFFSET(pair_row_t, method), s32);
    H5Tinsert(tp, "similarity", HOFFSET(pair_row_t, similarity), s32);
    add_stats_fields(tp, HOFFSET(pair_row_t, n), HOFFSET(pair_row_t, n_nan),
                     HOFFSET(pair_row_t, mean));
    hid_t ts = H5Tcreate(H5T_COMPOUND, sizeof(sanity_row_t));
    H5Tinsert(ts, "model", HOFFSET(sanity_row_t, model), sname);
    H5Tinsert(ts, "method", HOFFSET(sanity_row_t, method), s32);
    H5Tinsert(ts, "baseline_ssim", HOFFSET(sanity_row_t, baseline), H5T_NATIVE_DOUBLE);
    H5Tinsert(ts, "last_state_ssim", HOFFSET(sanity_row_t, last_state), H5T_NATIVE_DOUBLE);
    H5Tinsert(ts, "min_state_ssim", HOFFSET(sanity_row_t, min_state), H5T_NATIVE_DOUBLE);
    H5Tinsert(ts, "pass", HOFFSET(sanity_row_t, pass), H5T_NATIVE_INT32);
    int rc = 0;
    if (write_table(g, "metrics", tm, nm, mr) < 0)
        rc = SC_ERR_H5;
    if (rc == 0)
        sc_failpoint("summary", 0); /* tests: the root lost half-way through /summary */
    if (rc == 0 && (write_table(g, "pairs", tp, np, pr) < 0 || write_table(g, "sanity", ts, ns, sr) < 0))
        rc = SC_ERR_H5;
    H5Tclose(tm);
    H5Tclose(tp);
    H5Tclose(ts);
    H5Tclose(s32);
    H5Tclose(sname);
    H5Gclose(g);
    return rc;
}

static const metric_row_t *find_metric(const metric_row_t *rows, size_t n, const char *metric,
                                       const char *method, const char *variant)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].metric, metric) && !strcmp(rows[i].method, method) &&
            !strcmp(rows[i].variant, variant))
            return &rows[i];
    return NULL;
}

static const pair_row_t *find_pair(const pair_row_t *rows, size_t n, const char *exp,
                                   const char *va, const char *vb, const char *method,
                                   const char *sim)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].experiment, exp) && (!va || !strcmp(rows[i].variant_a, va)) &&
            (!vb || !strcmp(rows[i].variant_b, vb)) && !strcmp(rows[i].method, method) &&
            !strcmp(rows[i].similarity, sim))
            return &rows[i];
    return NULL;
}

static void print_tables(FILE *out, const file_data_t *d, const metric_row_t *mr, size_t nm,
                         const pair_row_t *pr, size_t np, const sanity_row_t *sr, size_t ns)
{
    /* 1. localization utility */
    int any_auprc = 0;
    for (int k = 0; k < d->K; k++)
        any_auprc |= !strcmp(d->metric_names[k], "auprc");
    if (any_auprc) {
        fprintf(out, "\n## Localization utility: mean AUPRC [95%% CI] over the positive test images\n\n| method |");
        for (int v = 0; v < d->V; v++)
            if (!strcmp(d->kinds[v], "trained") || !strcmp(d->kinds[v], "untrained"))
                fprintf(out, " %s |", d->variants[v]);
        fprintf(out, "\n|---|");
        for (int v = 0; v < d->V; v++)
            if (!strcmp(d->kinds[v], "trained") || !strcmp(d->kinds[v], "untrained"))
                fprintf(out, "---|");
        fprintf(out, "\n");
        for (int m = 0; m < d->M; m++) {
            fprintf(out, "| %s |", d->methods[m]);
            for (int v = 0; v < d->V; v++) {
                if (strcmp(d->kinds[v], "trained") && strcmp(d->kinds[v], "untrained"))
                    continue;
                const metric_row_t *r = find_metric(mr, nm, "auprc", d->methods[m], d->variants[v]);
                if (r && r->n)
                    fprintf(out, " %.3f [%.3f, %.3f] |", r->mean, r->ci_lo, r->ci_hi);
                else
                    fprintf(out, " n/a |");
            }
            fprintf(out, "\n");
        }
        fprintf(out, "\n(avgmask is the average training mask: a method below it localizes worse "
                     "than a fixed prior.)\n");
    }
    /* 2. cascading randomization */
    for (int b = 0; b < d->V; b++) {
        if (strcmp(d->kinds[b], "trained"))
            continue;
        int states[MAX_STATES], n_states = 0;
        for (int v = 0; v < d->V && n_states < MAX_STATES; v++)
            if (!strcmp(d->kinds[v], "cascading") && !strcmp(d->bases[v], d->bases[b]))
                states[n_states++] = v;
        if (!n_states)
            continue;
        fprintf(out, "\n## Cascading randomization of %s: mean SSIM(state, original)\n\n| method |",
                d->bases[b]);
        for (int s = 0; s < n_states; s++) {
            const char *label = strrchr(d->variants[states[s]], '/');
            fprintf(out, " %s |", label ? label + 1 : d->variants[states[s]]);
        }
        fprintf(out, " baseline | passes |\n|---|");
        for (int s = 0; s < n_states + 2; s++)
            fprintf(out, "---|");
        fprintf(out, "\n");
        for (int m = 0; m < d->M; m++) {
            fprintf(out, "| %s |", d->methods[m]);
            for (int s = 0; s < n_states; s++) {
                const pair_row_t *r = find_pair(pr, np, "cascading", d->variants[states[s]],
                                                d->variants[b], d->methods[m], "ssim");
                if (r && r->n)
                    fprintf(out, " %.3f |", r->mean);
                else
                    fprintf(out, " n/a |");
            }
            const sanity_row_t *sanity = NULL;
            for (size_t q = 0; q < ns; q++)
                if (!strcmp(sr[q].model, d->bases[b]) && !strcmp(sr[q].method, d->methods[m]))
                    sanity = &sr[q];
            if (sanity && isfinite(sanity->baseline))
                fprintf(out, " %.3f | %s |\n", sanity->baseline, sanity->pass ? "yes" : "**no**");
            else
                fprintf(out, " n/a | n/a |\n");
        }
        fprintf(out, "\n(A method passes when its SSIM falls below the baseline: the mean SSIM "
                     "between maps of different images of the trained model.)\n");
    }
    /* 3. label randomization, 4. repeatability, reproducibility */
    const char *exps[3] = {"label", "repeatability", "reproducibility"};
    const char *titles[3] = {"Label randomization: SSIM(label-shuffled model, trained model)",
                             "Repeatability: SSIM between replicates",
                             "Reproducibility: SSIM between architectures"};
    for (int e = 0; e < 3; e++) {
        int printed = 0;
        for (size_t q = 0; q < np; q++) {
            if (strcmp(pr[q].experiment, exps[e]) || strcmp(pr[q].similarity, "ssim"))
                continue;
            if (strcmp(pr[q].method, d->methods[0]))
                continue;
            if (!printed++)
                fprintf(out, "\n## %s\n", titles[e]);
            fprintf(out, "\n%s vs %s\n\n| method | n | mean | median [q1, q3] | Spearman |abs| mean |\n"
                         "|---|---|---|---|---|\n", pr[q].variant_a, pr[q].variant_b);
            for (int m = 0; m < d->M; m++) {
                const pair_row_t *r = find_pair(pr, np, exps[e], pr[q].variant_a, pr[q].variant_b,
                                                d->methods[m], "ssim");
                const pair_row_t *sp = find_pair(pr, np, exps[e], pr[q].variant_a,
                                                 pr[q].variant_b, d->methods[m], "spearman_abs");
                if (!r)
                    continue;
                fprintf(out, "| %s | %d | %.3f | %.3f [%.3f, %.3f] | ", d->methods[m], r->n,
                        r->mean, r->median, r->q1, r->q3);
                if (sp && sp->n)
                    fprintf(out, "%.3f |\n", sp->mean);
                else
                    fprintf(out, "n/a |\n");
            }
        }
    }
    /* 5. the other localization metrics, 6. the checks beyond the paper, on the first trained variant */
    int first = -1;
    for (int v = 0; v < d->V && first < 0; v++)
        if (!strcmp(d->kinds[v], "trained"))
            first = v;
    for (int part = 0; part < 2 && first >= 0; part++) {
        int n_cols = 0, auprc_col = 0;
        for (int k = 0; k < d->K; k++) {
            n_cols += report_tables_is_check(d->metric_names[k]) == part;
            auprc_col |= part == 0 && !strcmp(d->metric_names[k], "auprc");
        }
        if (n_cols == 0 || (n_cols == 1 && auprc_col)) /* AUPRC alone: its table is above */
            continue;
        if (part == 0)
            fprintf(out, "\n## Other localization metrics on %s (means)\n\n| method |", d->variants[first]);
        else
            fprintf(out, "\n## Checks beyond the paper on %s (means; docs/methods.md, 'Checks beyond the "
                         "paper')\n\n| method |", d->variants[first]);
        for (int k = 0; k < d->K; k++)
            if (report_tables_is_check(d->metric_names[k]) == part)
                fprintf(out, " %s |", d->metric_names[k]);
        fprintf(out, "\n|---|");
        for (int k = 0; k < n_cols; k++)
            fprintf(out, "---|");
        fprintf(out, "\n");
        for (int m = 0; m < d->M; m++) {
            fprintf(out, "| %s |", d->methods[m]);
            for (int k = 0; k < d->K; k++) {
                if (report_tables_is_check(d->metric_names[k]) != part)
                    continue;
                const metric_row_t *r = find_metric(mr, nm, d->metric_names[k], d->methods[m],
                                                    d->variants[first]);
                if (r && r->n)
                    fprintf(out, " %.3f |", r->mean);
                else
                    fprintf(out, " n/a |");
            }
            fprintf(out, "\n");
        }
    }
    fprintf(out, "\n");
}

/* The tables of an open file whose plan is in d (load_data). */
static int compute_tables(hid_t file, const file_data_t *dp, aggregate_tables_t *t)
{
    int rc = 0;
    const file_data_t d = *dp;
    metric_row_t *mr = NULL;
    pair_row_t *pr = NULL;
    sanity_row_t *sr = NULL;
    double *values = NULL, *buf = NULL;
    int *group_of = NULL;
    int (*groups)[3] = NULL;
    stats_ws_t *sws = NULL;
    size_t nm = 0, np = 0, ns = 0;
    memset(t, 0, sizeof *t);
    size_t nmax = (size_t)(d.N > d.P ? d.N : d.P) + 1;
    sws = stats_ws_create(nmax, 1000);
    values = calloc(nmax, sizeof(double));
    buf = calloc((size_t)d.M * d.V * d.N + (size_t)d.M * d.P + 1, sizeof(double));
    mr = calloc((size_t)d.K * d.M * d.V + 1, sizeof *mr);
    CHECK_ALLOC(sws);
    CHECK_ALLOC(values);
    CHECK_ALLOC(buf);
    CHECK_ALLOC(mr);
    /* per-map metrics */
    for (int k = 0; k < d.K; k++) {
        char name[96];
        snprintf(name, sizeof name, "metrics/%s", d.metric_names[k]);
        CHECK(read_numeric(file, name, H5T_NATIVE_DOUBLE, buf) == 0, SC_ERR_H5, "read %s", name);
        for (int m = 0; m < d.M; m++)
            for (int v = 0; v < d.V; v++) {
                size_t n = 0;
                for (int i = 0; i < d.n_images[v]; i++)
                    if (d.done[(size_t)v * d.N + i])
                        values[n++] = buf[((size_t)m * d.V + v) * d.N + i];
                metric_row_t *r = &mr[nm++];
                snprintf(r->metric, sizeof r->metric, "%s", d.metric_names[k]);
                snprintf(r->method, sizeof r->method, "%s", d.methods[m]);
                snprintf(r->variant, sizeof r->variant, "%s", d.variants[v]);
                summarize(sws, values, n, (uint32_t)k, (uint32_t)m, (uint32_t)v, &r->n, &r->n_nan,
                          &r->mean, &r->ci_lo, &r->ci_hi, &r->median, &r->q1, &r->q3);
            }
    }
    /* pair similarities grouped by (experiment, variant a [b for label/repeat/repro]) */
    group_of = calloc((size_t)d.P + 1, sizeof(int));
    groups = calloc((size_t)d.P + 1, sizeof *groups);
    int n_groups = 0;
    CHECK_ALLOC(group_of);
    CHECK_ALLOC(groups);
    for (int q = 0; q < d.P; q++) {
        int exp = d.pair_exp[q], va = d.pair_index[4 * q], vb = d.pair_index[4 * q + 2];
        int g = -1;
        for (int u = 0; u < n_groups && g < 0; u++)
            if (groups[u][0] == exp && groups[u][1] == va && groups[u][2] == vb)
                g = u;
        if (g < 0) {
            g = n_groups++;
            groups[g][0] = exp;
            groups[g][1] = va;
            groups[g][2] = vb;
        }
        group_of[q] = g;
    }
    pr = calloc((size_t)d.S * d.M * n_groups + 1, sizeof *pr);
    CHECK_ALLOC(pr);
    for (int s = 0; s < d.S; s++) {
        char name[96];
        snprintf(name, sizeof name, "pairs/%s", d.sim_names[s]);
        CHECK(d.P == 0 || read_numeric(file, name, H5T_NATIVE_DOUBLE, buf) == 0, SC_ERR_H5,
              "read %s", name);
        for (int g = 0; g < n_groups; g++)
            for (int m = 0; m < d.M; m++) {
                size_t n = 0;
                for (int q = 0; q < d.P; q++)
                    if (group_of[q] == g && d.pair_done[q])
                        values[n++] = buf[(size_t)m * d.P + q];
                pair_row_t *r = &pr[np++];
                snprintf(r->experiment, sizeof r->experiment, "%s", results_experiment_name(groups[g][0]));
                snprintf(r->variant_a, sizeof r->variant_a, "%s", d.variants[groups[g][1]]);
                snprintf(r->variant_b, sizeof r->variant_b, "%s", d.variants[groups[g][2]]);
                snprintf(r->method, sizeof r->method, "%s", d.methods[m]);
                snprintf(r->similarity, sizeof r->similarity, "%s", d.sim_names[s]);
                summarize(sws, values, n, 1000u + (uint32_t)s, (uint32_t)g, (uint32_t)m, &r->n,
                          &r->n_nan, &r->mean, &r->ci_lo, &r->ci_hi, &r->median, &r->q1, &r->q3);
            }
    }
    /* sanity: cascading states against the baseline of the same model */
    sr = calloc((size_t)d.V * d.M + 1, sizeof *sr);
    CHECK_ALLOC(sr);
    for (int b = 0; b < d.V; b++) {
        if (strcmp(d.kinds[b], "trained"))
            continue;
        int has_states = 0;
        for (int v = 0; v < d.V; v++)
            has_states |= !strcmp(d.kinds[v], "cascading") && !strcmp(d.bases[v], d.bases[b]);
        if (!has_states)
            continue;
        for (int m = 0; m < d.M; m++) {
            sanity_row_t *r = &sr[ns++];
            snprintf(r->model, sizeof r->model, "%s", d.bases[b]);
            snprintf(r->method, sizeof r->method, "%s", d.methods[m]);
            const pair_row_t *base = find_pair(pr, np, "baseline", d.variants[b], d.variants[b],
                                               d.methods[m], "ssim");
            r->baseline = base && base->n ? base->mean : NAN;
            r->min_state = INFINITY;
            r->last_state = NAN;
            for (int v = 0; v < d.V; v++) {
                if (strcmp(d.kinds[v], "cascading") || strcmp(d.bases[v], d.bases[b]))
                    continue;
                const pair_row_t *st = find_pair(pr, np, "cascading", d.variants[v],
                                                 d.variants[b], d.methods[m], "ssim");
                if (st && st->n) {
                    r->last_state = st->mean;
                    if (st->mean < r->min_state)
                        r->min_state = st->mean;
                }
            }
            if (!isfinite(r->min_state))
                r->min_state = NAN;
            r->pass = isfinite(r->baseline) && isfinite(r->min_state) && r->min_state < r->baseline;
        }
    }
    t->metrics = mr;
    t->n_metrics = nm;
    t->pairs = pr;
    t->n_pairs = np;
    t->sanity = sr;
    t->n_sanity = ns;
    mr = NULL;
    pr = NULL;
    sr = NULL;
cleanup:
    free(mr);
    free(pr);
    free(sr);
    free(values);
    free(buf);
    free(group_of);
    free(groups);
    stats_ws_destroy(sws);
    return rc;
}

void aggregate_tables_free(aggregate_tables_t *tables)
{
    if (!tables)
        return;
    free(tables->metrics);
    free(tables->pairs);
    free(tables->sanity);
    memset(tables, 0, sizeof *tables);
}

int aggregate_compute(hid_t file, aggregate_tables_t *out)
{
    int rc = 0;
    file_data_t d;
    memset(out, 0, sizeof *out);
    rc = load_data(file, &d);
    if (rc < 0)
        SC_ERROR("the file is not a salcheck results file (its plan datasets are missing or unreadable)");
    else
        rc = compute_tables(file, &d, out);
    free_data(&d);
    return rc;
}

int aggregate_results(const char *path, FILE *out)
{
    int rc = 0;
    file_data_t d;
    memset(&d, 0, sizeof d);
    aggregate_tables_t t;
    memset(&t, 0, sizeof t);
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK(file >= 0, SC_ERR_IO, "cannot open '%s' to summarize it", path);
    CHECK(load_data(file, &d) == 0, SC_ERR_FORMAT, "'%s' is not a complete salcheck results file", path);
    CHECK_RC(compute_tables(file, &d, &t));
    CHECK_RC(write_summary(file, t.metrics, t.n_metrics, t.pairs, t.n_pairs, t.sanity, t.n_sanity));
    print_tables(out, &d, t.metrics, t.n_metrics, t.pairs, t.n_pairs, t.sanity, t.n_sanity);
cleanup:
    aggregate_tables_free(&t);
    free_data(&d);
    if (file >= 0) {
        int crc = h5file_close(file, path, "the results file after writing its /summary");
        if (rc >= 0 && crc < 0)
            rc = crc;
    }
    return rc;
}
