/*
 * report_data.c - load a (possibly partial) results file for the report (report_data.h).
 *
 * The schema is common/io/results.h. Everything but the maps is small (the
 * paper's protocol: 13 metrics x 8 methods x 16 variants x 1000 images is 13 MB
 * of doubles), so it is read once; maps are read one [H,W] slab at a time.
 */
#include "report_data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/results.h"
#include "sc.h"

/* A fixed-length string dataset as a NULL-terminated-per-item array: one
 * allocation holding the pointers and the characters (free() it once). */
static char **read_strings(hid_t file, const char *name, int *count)
{
    *count = 0;
    hid_t d = -1;
    H5E_BEGIN_TRY { d = H5Dopen2(file, name, H5P_DEFAULT); } H5E_END_TRY;
    if (d < 0)
        return NULL;
    hid_t s = H5Dget_space(d), t = H5Dget_type(d);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    size_t width = H5Tget_size(t);
    char **items = NULL;
    char *raw = NULL;
    if (n < 0 || H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) > 0)
        goto done;
    items = calloc(1, ((size_t)n + 1) * sizeof(char *) + (size_t)n * (width + 1) + 1);
    raw = calloc((size_t)n + 1, width);
    if (!items || !raw) {
        free(items);
        items = NULL;
        goto done;
    }
    if (n > 0 && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) < 0) {
        free(items);
        items = NULL;
        goto done;
    }
    char *chars = (char *)(items + n + 1);
    for (hssize_t i = 0; i < n; i++) {
        items[i] = chars + (size_t)i * (width + 1);
        memcpy(items[i], raw + (size_t)i * width, width);
        items[i][width] = 0;
    }
    *count = (int)n;
done:
    free(raw);
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
    return items;
}

/* Read a whole numeric dataset of `expect` elements (-1: any) into a new buffer. */
static void *read_numeric(hid_t file, const char *name, hid_t mtype, size_t elem, long expect,
                          long *count)
{
    hid_t d = -1;
    H5E_BEGIN_TRY { d = H5Dopen2(file, name, H5P_DEFAULT); } H5E_END_TRY;
    if (d < 0)
        return NULL;
    hid_t s = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    void *buf = NULL;
    if (n >= 0 && (expect < 0 || n == expect)) {
        buf = calloc((size_t)n + 1, elem);
        if (buf && n > 0 && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
            free(buf);
            buf = NULL;
        }
    }
    if (count)
        *count = (long)n;
    H5Sclose(s);
    H5Dclose(d);
    return buf;
}

/* A root attribute as text (strings as stored, integers in decimal). */
static void attr_text(hid_t obj, const char *key, char *buf, size_t len)
{
    buf[0] = 0;
    if (H5Aexists(obj, key) <= 0)
        return;
    hid_t a = H5Aopen(obj, key, H5P_DEFAULT), t = H5Aget_type(a);
    if (H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) <= 0) {
        size_t size = H5Tget_size(t);
        char *tmp = calloc(size + 1, 1);
        if (tmp && H5Aread(a, t, tmp) >= 0)
            snprintf(buf, len, "%s", tmp);
        free(tmp);
    } else if (H5Tget_class(t) == H5T_INTEGER) {
        long long v = 0;
        if (H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0)
            snprintf(buf, len, "%lld", v);
    }
    H5Tclose(t);
    H5Aclose(a);
}

/* The job text can be long: read it at its own size. */
static char *attr_text_alloc(hid_t obj, const char *key)
{
    size_t size = 1;
    if (H5Aexists(obj, key) > 0) {
        hid_t a = H5Aopen(obj, key, H5P_DEFAULT), t = H5Aget_type(a);
        if (H5Tget_class(t) == H5T_STRING)
            size = H5Tget_size(t) + 1;
        H5Tclose(t);
        H5Aclose(a);
    }
    char *buf = calloc(size + 1, 1);
    if (buf && size > 1)
        attr_text(obj, key, buf, size + 1);
    return buf;
}

/* Names of the datasets of a group except the listed ones (sorted by name). */
static char **list_group(hid_t file, const char *group, const char *const *skip, int n_skip,
                         int *count)
{
    *count = 0;
    hid_t g = -1;
    H5E_BEGIN_TRY { g = H5Gopen2(file, group, H5P_DEFAULT); } H5E_END_TRY;
    if (g < 0)
        return calloc(1, sizeof(char *));
    H5G_info_t info;
    H5Gget_info(g, &info);
    char **names = calloc(1, (info.nlinks + 1) * (sizeof(char *) + 64));
    if (!names) {
        H5Gclose(g);
        return NULL;
    }
    char *chars = (char *)(names + info.nlinks + 1);
    int n = 0;
    for (hsize_t i = 0; i < info.nlinks; i++) {
        char name[64];
        if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name,
                               H5P_DEFAULT) < 0)
            continue;
        int skipped = 0;
        for (int s = 0; s < n_skip; s++)
            skipped |= !strcmp(name, skip[s]);
        if (skipped)
            continue;
        names[n] = chars + (size_t)n * 64;
        snprintf(names[n], 64, "%s", name);
        n++;
    }
    H5Gclose(g);
    *count = n;
    return names;
}

void report_data_close(report_data_t *d)
{
    if (!d)
        return;
    free(d->job_text);
    free(d->image_ids);
    free(d->labels);
    free(d->gt);
    free(d->variants);
    free(d->model_names);
    free(d->model_target_labels);
    free(d->model_heads);
    free(d->model_inputs);
    free(d->model_targets);
    free(d->kinds);
    free(d->bases);
    free(d->reinit);
    free(d->states);
    free(d->n_images_of);
    free(d->methods);
    free(d->planned);
    free(d->done);
    free(d->metric_names);
    free(d->metrics);
    free(d->sim_names);
    free(d->pair_index);
    free(d->pair_exp);
    free(d->pair_done);
    free(d->sims);
    aggregate_tables_free(&d->tables);
    if (d->file >= 0)
        H5Fclose(d->file);
    free(d);
}

int report_data_open(const char *path, report_data_t **out)
{
    int rc = 0;
    *out = NULL;
    report_data_t *d = calloc(1, sizeof *d);
    hid_t fapl = -1;
    if (!d)
        return SC_ERR_NOMEM;
    d->file = -1;
    snprintf(d->path, sizeof d->path, "%s", path);
    /* A reader needs no lock: the report can look at the file of a running job. */
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_file_locking(fapl, 0, 1);
    H5E_BEGIN_TRY { d->file = H5Fopen(path, H5F_ACC_RDONLY, fapl); } H5E_END_TRY;
    H5Pclose(fapl);
    CHECK(d->file >= 0, SC_ERR_IO, "cannot open '%s': missing, unreadable or not an HDF5 file", path);
    hid_t f = d->file;
    char num[64];
    d->job_text = attr_text_alloc(f, "job");
    CHECK_ALLOC(d->job_text);
    attr_text(f, "job_path", d->job_path, sizeof d->job_path);
    attr_text(f, "created", d->created, sizeof d->created);
    attr_text(f, "salcheck_version", d->version, sizeof d->version);
    attr_text(f, "maps_dtype", d->maps_dtype, sizeof d->maps_dtype);
    attr_text(f, "seed", num, sizeof num);
    d->seed = atoll(num);
    attr_text(f, "ranks", num, sizeof num);
    d->ranks = atoll(num);

    /* the plan */
    int n, V, M, N;
    d->image_ids = read_strings(f, "images/id", &d->n_images);
    d->variants = read_strings(f, "variants/name", &d->n_variants);
    d->methods = read_strings(f, "methods/name", &d->n_methods);
    CHECK(d->image_ids && d->variants && d->methods, SC_ERR_FORMAT,
          "'%s' is not a salcheck results file (no /images/id, /variants/name or /methods/name)",
          path);
    N = d->n_images;
    V = d->n_variants;
    M = d->n_methods;
    d->kinds = read_strings(f, "variants/kind", &n);
    CHECK(d->kinds && n == V, SC_ERR_FORMAT, "'%s': /variants/kind is missing or has the wrong size", path);
    d->bases = read_strings(f, "variants/base", &n);
    CHECK(d->bases && n == V, SC_ERR_FORMAT, "'%s': /variants/base is missing or has the wrong size", path);
    d->reinit = read_strings(f, "variants/reinit", &n);
    CHECK(d->reinit && n == V, SC_ERR_FORMAT, "'%s': /variants/reinit is missing or has the wrong size", path);
    {
        /* /models (optional: older files have none) */
        int nj = 0, n1 = 0, n2 = 0, n3 = 0;
        d->model_names = read_strings(f, "models/name", &nj);
        d->model_target_labels = read_strings(f, "models/target_label", &n1);
        d->model_heads = read_strings(f, "models/head", &n2);
        d->model_inputs = read_strings(f, "models/input", &n3);
        if (d->model_names && d->model_target_labels && d->model_heads && d->model_inputs &&
            n1 == nj && n2 == nj && n3 == nj && H5Lexists(f, "models/target", H5P_DEFAULT) > 0)
            d->model_targets = read_numeric(f, "models/target", H5T_NATIVE_INT32, 4, nj, NULL);
        d->n_models = d->model_targets ? nj : 0;
    }
    d->states = read_numeric(f, "variants/state", H5T_NATIVE_INT32, 4, V, NULL);
    d->n_images_of = read_numeric(f, "variants/n_images", H5T_NATIVE_INT32, 4, V, NULL);
    d->labels = read_numeric(f, "images/label", H5T_NATIVE_INT8, 1, N, NULL);
    CHECK(d->states && d->n_images_of && d->labels, SC_ERR_FORMAT,
          "'%s': /variants/state, /variants/n_images or /images/label is missing or has the wrong size",
          path);
    {
        hid_t g = -1;
        H5E_BEGIN_TRY { g = H5Dopen2(f, "images/gt", H5P_DEFAULT); } H5E_END_TRY;
        CHECK(g >= 0, SC_ERR_FORMAT, "'%s': /images/gt (the ground-truth masks) is missing", path);
        hid_t s = H5Dget_space(g);
        hsize_t dims[3] = {0, 0, 0};
        int nd = H5Sget_simple_extent_ndims(s);
        if (nd == 3)
            H5Sget_simple_extent_dims(s, dims, NULL);
        H5Sclose(s);
        H5Dclose(g);
        CHECK(nd == 3 && dims[0] == (hsize_t)N && dims[1] > 0 && dims[2] > 0, SC_ERR_FORMAT,
              "'%s': /images/gt is not [N,H,W] with N = %d images", path, N);
        d->h = (int)dims[1];
        d->w = (int)dims[2];
        d->gt = read_numeric(f, "images/gt", H5T_NATIVE_UINT8, 1, (long)N * d->h * d->w, NULL);
        CHECK(d->gt, SC_ERR_FORMAT, "'%s': cannot read /images/gt", path);
    }
    d->planned = read_numeric(f, "status/planned", H5T_NATIVE_UINT8, 1, (long)V * N, NULL);
    d->done = read_numeric(f, "status/done", H5T_NATIVE_UINT8, 1, (long)V * N, NULL);
    CHECK(d->planned && d->done, SC_ERR_FORMAT,
          "'%s': /status/planned or /status/done is missing: the run did not get past its start",
          path);
    for (long c = 0; c < (long)V * N; c++) {
        d->cells_planned += d->planned[c] != 0;
        d->cells_done += d->planned[c] && d->done[c];
    }

    /* per-map metrics [K,M,V,N] */
    d->metric_names = list_group(f, "metrics", NULL, 0, &d->n_metrics);
    CHECK_ALLOC(d->metric_names);
    size_t cell = (size_t)M * V * N;
    d->metrics = calloc((size_t)d->n_metrics * cell + 1, sizeof(double));
    CHECK_ALLOC(d->metrics);
    for (int k = 0; k < d->n_metrics; k++) {
        char name[96];
        snprintf(name, sizeof name, "metrics/%s", d->metric_names[k]);
        double *values = read_numeric(f, name, H5T_NATIVE_DOUBLE, sizeof(double), (long)cell, NULL);
        CHECK(values, SC_ERR_FORMAT, "'%s': /%s is unreadable or not [M,V,N] = [%d,%d,%d]", path,
              name, M, V, N);
        double *dst = d->metrics + (size_t)k * cell;
        for (int m = 0; m < M; m++)
            for (int v = 0; v < V; v++)
                for (int i = 0; i < N; i++) {
                    size_t at = ((size_t)m * V + v) * N + i;
                    dst[at] = d->done[(size_t)v * N + i] ? values[at] : NAN;
                }
        free(values);
    }

    /* pairs */
    const char *not_sims[] = {"index", "experiment", "experiment_names"};
    d->sim_names = list_group(f, "pairs", not_sims, 3, &d->n_sims);
    CHECK_ALLOC(d->sim_names);
    long P = 0;
    d->pair_exp = read_numeric(f, "pairs/experiment", H5T_NATIVE_INT8, 1, -1, &P);
    CHECK(d->pair_exp, SC_ERR_FORMAT, "'%s': /pairs/experiment is missing", path);
    d->n_pairs = (int)P;
    d->pair_index = read_numeric(f, "pairs/index", H5T_NATIVE_INT32, 4, P * 4, NULL);
    d->pair_done = read_numeric(f, "status/pair_done", H5T_NATIVE_UINT8, 1, P, NULL);
    CHECK(d->pair_index && d->pair_done, SC_ERR_FORMAT,
          "'%s': /pairs/index or /status/pair_done is missing or has the wrong size", path);
    for (long q = 0; q < P; q++) {
        const int32_t *ix = d->pair_index + 4 * q;
        CHECK(ix[0] >= 0 && ix[0] < V && ix[2] >= 0 && ix[2] < V && ix[1] >= 0 && ix[1] < N &&
                  ix[3] >= 0 && ix[3] < N && d->pair_exp[q] >= 0 &&
                  d->pair_exp[q] < RESULTS_EXP_COUNT,
              SC_ERR_FORMAT, "'%s': /pairs/index row %ld is out of range", path, q);
        d->pairs_done += d->pair_done[q] != 0;
    }
    d->pairs_planned = P;
    d->sims = calloc((size_t)d->n_sims * M * P + 1, sizeof(double));
    CHECK_ALLOC(d->sims);
    for (int s = 0; s < d->n_sims && P > 0; s++) {
        char name[96];
        snprintf(name, sizeof name, "pairs/%s", d->sim_names[s]);
        double *values = read_numeric(f, name, H5T_NATIVE_DOUBLE, sizeof(double), (long)M * P, NULL);
        CHECK(values, SC_ERR_FORMAT, "'%s': /%s is unreadable or not [M,P] = [%d,%ld]", path, name,
              M, P);
        double *dst = d->sims + (size_t)s * M * P;
        for (int m = 0; m < M; m++)
            for (long q = 0; q < P; q++)
                dst[(size_t)m * P + q] = d->pair_done[q] ? values[(size_t)m * P + q] : NAN;
        free(values);
    }

    d->has_summary = H5Lexists(f, "summary", H5P_DEFAULT) > 0;
    d->has_maps = H5Lexists(f, "maps", H5P_DEFAULT) > 0;
    for (int m = 0; m < M && d->has_maps; m++) {
        char name[96];
        snprintf(name, sizeof name, "maps/%s", d->methods[m]);
        d->has_maps = H5Lexists(f, name, H5P_DEFAULT) > 0;
    }
    CHECK_RC(aggregate_compute(f, &d->tables));
    *out = d;
    d = NULL;
cleanup:
    report_data_close(d);
    return rc;
}

int report_data_read_map(report_data_t *d, int method, int variant, int image, float *out)
{
    if (!d->has_maps)
        return SC_ERR_UNDEFINED;
    char name[96];
    snprintf(name, sizeof name, "maps/%s", d->methods[method]);
    hid_t ds = H5Dopen2(d->file, name, H5P_DEFAULT);
    if (ds < 0)
        return SC_ERR_FORMAT;
    hid_t fs = H5Dget_space(ds);
    hsize_t start[4] = {(hsize_t)variant, (hsize_t)image, 0, 0};
    hsize_t count[4] = {1, 1, (hsize_t)d->h, (hsize_t)d->w};
    hid_t ms = H5Screate_simple(4, count, NULL);
    int rc = 0;
    if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dread(ds, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, out) < 0) {
        SC_ERROR("'%s': cannot read the map of %s, variant %s, image %s", d->path,
                 d->methods[method], d->variants[variant], d->image_ids[image]);
        rc = SC_ERR_FORMAT;
    }
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(ds);
    return rc;
}

static int find_name(char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return i;
    return -1;
}

int report_data_variant(const report_data_t *d, const char *name)
{
    return find_name(d->variants, d->n_variants, name);
}

int report_data_method(const report_data_t *d, const char *name)
{
    return find_name(d->methods, d->n_methods, name);
}

int report_data_metric(const report_data_t *d, const char *name)
{
    return find_name(d->metric_names, d->n_metrics, name);
}

int report_data_sim(const report_data_t *d, const char *name)
{
    return find_name(d->sim_names, d->n_sims, name);
}

int report_data_cell_planned(const report_data_t *d, int v, int i)
{
    return d->planned[(size_t)v * d->n_images + i] != 0;
}

int report_data_cell_done(const report_data_t *d, int v, int i)
{
    size_t c = (size_t)v * d->n_images + i;
    return d->planned[c] && d->done[c];
}

double report_data_metric_value(const report_data_t *d, int k, int m, int v, int i)
{
    return d->metrics[(((size_t)k * d->n_methods + m) * d->n_variants + v) * d->n_images + i];
}

int report_data_find_pair(const report_data_t *d, int exp, int va, int ia, int vb, int ib)
{
    for (int q = 0; q < d->n_pairs; q++) {
        const int32_t *ix = d->pair_index + 4 * q;
        if (d->pair_exp[q] == exp && ix[0] == va && ix[1] == ia && ix[2] == vb && ix[3] == ib)
            return q;
    }
    return -1;
}

double report_data_sim_value(const report_data_t *d, int s, int m, int p)
{
    return d->sims[((size_t)s * d->n_methods + m) * d->n_pairs + p];
}

const char *report_data_variant_label(const report_data_t *d, int v)
{
    const char *slash = strrchr(d->variants[v], '/');
    return slash ? slash + 1 : d->variants[v];
}

int report_data_variants_of(const report_data_t *d, const char *kind, const char *base, int *out,
                            int max)
{
    int n = 0;
    for (int v = 0; v < d->n_variants && n < max; v++)
        if (!strcmp(d->kinds[v], kind) && (!base || !strcmp(d->bases[v], base)))
            out[n++] = v;
    return n;
}
