/*
 * results.c - the shared HDF5 results file (results.h).
 *
 * Parallel HDF5 rules followed here: every object is created collectively
 * with early allocation and no filters; raw-data writes of cells are
 * independent; memory and file types are equal (conversions are done in C,
 * e.g. float16), so HDF5 never converts inside a parallel write.
 */
#include "io/results.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#include <zlib.h>

#include "io/h5hints.h"
#include "io/results_check.h"
#include "sc.h"

#define CHECK_H5(expr, ...)                                                     \
    do {                                                                        \
        if ((expr) < 0) {                                                       \
            sc_log(SC_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__);              \
            rc = SC_ERR_H5;                                                     \
            goto cleanup;                                                       \
        }                                                                       \
    } while (0)

struct results {
    hid_t file;
    MPI_Comm comm;
    int rank;
    int n_images, n_variants, n_methods, n_metrics, n_sims, n_pairs, h, w, classes;
    results_maps_t maps_kind;
    hid_t f16;                  /* the float16 file/memory type */
    hid_t *maps;                /* [M] */
    hid_t *metrics;             /* [K] */
    hid_t *sims;                /* [S] */
    hid_t logits, target, done, seconds, rankd, pair_done;
    hid_t checksum;             /* /status/checksum, or -1 in a file made before checksums */
    uint16_t *half;             /* [H*W] conversion buffer */
    double *column;             /* [max(M)] metric column buffer */
    float *cell;                /* [max(H*W, classes)] read-back buffer of the verifier */
    char path[1024];            /* for messages */
    int n_curves;               /* optional /curves datasets and their lengths */
    hid_t *curves;
    int *curve_len;
};

static const char *exp_names[RESULTS_EXP_COUNT] = {"cascading", "independent", "untrained",
                                                   "label", "repeatability", "reproducibility",
                                                   "baseline"};

const char *results_experiment_name(int exp)
{
    return exp >= 0 && exp < RESULTS_EXP_COUNT ? exp_names[exp] : "?";
}

/* ---- float16 ---- */

uint16_t results_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t mant = x & 0x7fffffu;
    if (((x >> 23) & 0xff) == 0xff) /* inf or NaN */
        return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0));
    if (exp >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (exp <= 0) {
        if (exp < -10)
            return (uint16_t)sign;
        mant |= 0x800000u;
        int shift = 14 - exp;
        uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)exp << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1)))
        half++; /* may carry into the exponent: still correct, up to inf */
    return (uint16_t)(sign | half);
}

float results_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu;
    uint32_t x;
    if (exp == 0) {
        if (mant == 0) {
            x = sign;
        } else {
            int e = -1;
            do {
                e++;
                mant <<= 1;
            } while (!(mant & 0x400u));
            x = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        x = sign | 0x7f800000u | (mant << 13);
    } else {
        x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static hid_t make_f16(void)
{
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0)
        return t;
    if (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_precision(t, 16) < 0 ||
        H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, 15) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* ---- helpers ---- */

static hid_t str_type(size_t len)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, len);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    return t;
}

/* Collective: every rank passes the same value. */
static int attr_str(hid_t obj, const char *key, const char *value)
{
    hid_t t = str_type(strlen(value) + 1), s = H5Screate(H5S_SCALAR);
    H5Tset_cset(t, H5T_CSET_UTF8); /* h5py reads UTF-8 attributes as str */
    hid_t a = H5Acreate2(obj, key, t, s, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, t, value) >= 0;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    return ok ? 0 : -1;
}

static int attr_i64(hid_t obj, const char *key, long long value)
{
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, key, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, H5T_NATIVE_LLONG, &value) >= 0;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(s);
    return ok ? 0 : -1;
}

/* Create a dataset; fill_nan: metrics-like datasets start as NaN. */
static hid_t create_ds(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                       int fill_nan, int fill_zero)
{
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    if (fill_nan) {
        double nan = NAN;
        H5Pset_fill_value(dcpl, H5T_NATIVE_DOUBLE, &nan);
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_ALLOC);
    } else if (fill_zero) {
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_ALLOC);
    } else {
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    }
    hid_t d = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(space);
    return d;
}

/* Root-only write of a whole small dataset (independent I/O). */
static int write_all(hid_t d, hid_t mtype, const void *buf)
{
    return H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0 ? -1 : 0;
}

/* Pack strings into a fixed-length buffer; returns the width (>= 2). */
static char *pack_strings(const char *const *items, int count, size_t *width)
{
    size_t w = 2;
    for (int i = 0; i < count; i++)
        if (strlen(items[i]) + 1 > w)
            w = strlen(items[i]) + 1;
    char *buf = calloc(count > 0 ? (size_t)count : 1, w);
    if (buf)
        for (int i = 0; i < count; i++)
            memcpy(buf + (size_t)i * w, items[i], strlen(items[i]));
    *width = w;
    return buf;
}

static int write_strings(hid_t loc, const char *name, const char *const *items, int count,
                         int is_root)
{
    size_t width;
    char *buf = pack_strings(items, count, &width);
    if (!buf)
        return SC_ERR_NOMEM;
    hid_t t = str_type(width);
    hsize_t dims[1] = {(hsize_t)count};
    hid_t d = create_ds(loc, name, t, 1, dims, 0, 1);
    int rc = d < 0 ? SC_ERR_H5 : 0;
    if (d >= 0 && is_root && count > 0 && write_all(d, t, buf) < 0)
        rc = SC_ERR_H5;
    if (d >= 0)
        H5Dclose(d);
    H5Tclose(t);
    free(buf);
    return rc;
}

static int write_numbers(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank,
                         const hsize_t *dims, const void *data, int is_root)
{
    hid_t d = create_ds(loc, name, ftype, rank, dims, 0, 1);
    if (d < 0)
        return SC_ERR_H5;
    int rc = 0;
    hsize_t total = 1;
    for (int i = 0; i < rank; i++)
        total *= dims[i];
    if (is_root && total > 0 && data && write_all(d, mtype, data) < 0)
        rc = SC_ERR_H5;
    H5Dclose(d);
    return rc;
}

/* MPI-IO hints, alignment and collective metadata writes (io/h5hints.h). */
static hid_t open_fapl(MPI_Comm comm)
{
    return h5hints_fapl(comm);
}

typedef struct quiet_h5 { H5E_auto2_t func; void *data; } quiet_h5_t;
static quiet_h5_t quiet_h5_begin(void);
static void quiet_h5_end(quiet_h5_t q);
static const char *write_error(const results_t *r, int err, char *buf, size_t len);

static results_t *results_alloc(const results_layout_t *L, MPI_Comm comm)
{
    results_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->comm = comm;
    MPI_Comm_rank(comm, &r->rank);
    r->n_images = L->n_images;
    r->n_variants = L->n_variants;
    r->n_methods = L->n_methods;
    r->n_metrics = L->n_metrics;
    r->n_sims = L->n_sims;
    r->n_pairs = L->n_pairs;
    r->h = L->h;
    r->w = L->w;
    r->classes = L->classes;
    r->maps_kind = L->maps;
    r->file = r->logits = r->target = r->done = r->seconds = r->rankd = r->pair_done = -1;
    r->checksum = -1;
    r->f16 = make_f16();
    r->maps = calloc((size_t)L->n_methods + 1, sizeof(hid_t));
    r->metrics = calloc((size_t)L->n_metrics + 1, sizeof(hid_t));
    r->sims = calloc((size_t)L->n_sims + 1, sizeof(hid_t));
    r->half = calloc((size_t)L->h * L->w, sizeof(uint16_t));
    r->column = calloc((size_t)L->n_methods + 1, sizeof(double));
    r->cell = calloc((size_t)L->h * L->w + (size_t)L->classes + 1, sizeof(float));
    r->n_curves = L->n_curves;
    r->curves = calloc((size_t)L->n_curves + 1, sizeof(hid_t));
    r->curve_len = calloc((size_t)L->n_curves + 1, sizeof(int));
    if (!r->maps || !r->metrics || !r->sims || !r->half || !r->column || !r->cell || !r->curves ||
        !r->curve_len) {
        results_close(r);
        return NULL;
    }
    for (int i = 0; i < L->n_curves; i++) {
        r->curves[i] = -1;
        r->curve_len[i] = L->curve_len[i];
    }
    for (int i = 0; i < L->n_methods; i++)
        r->maps[i] = -1;
    for (int i = 0; i < L->n_metrics; i++)
        r->metrics[i] = -1;
    for (int i = 0; i < L->n_sims; i++)
        r->sims[i] = -1;
    return r;
}

/*
 * /status/checksum [V,N] uint32: the CRC-32 (zlib's crc32, the one Python's
 * zlib.crc32 computes) of a cell's bytes as stored, little endian, in this
 * order: /maps/<method>[v,i] for every method of /methods/name (float32 or
 * float16; absent with maps = none), /metrics/<metric>[:,v,i] for every
 * metric named in the attribute `metrics`, /scores/logits[v,i],
 * /scores/target[v,i]. 0 until the cell is written. Collective.
 */
static int checksum_attrs(hid_t d, const results_layout_t *L)
{
    char *names = calloc((size_t)L->n_metrics + 1, 64);
    if (!names)
        return SC_ERR_NOMEM;
    size_t len = 0;
    for (int k = 0; k < L->n_metrics; k++)
        len += (size_t)snprintf(names + len, (size_t)(L->n_metrics + 1) * 64 - len, "%s%s",
                                k ? "," : "", L->metric_names[k]);
    int rc = attr_str(d, "metrics", names) < 0 ||
                     attr_str(d, "definition",
                              "CRC-32 (zlib) of the cell's stored bytes, little endian: maps of "
                              "every method in /methods/name order, then /metrics/<k>[:, v, i] "
                              "for k in the attribute metrics, then /scores/logits[v, i] and "
                              "/scores/target[v, i]") < 0
                 ? SC_ERR_H5
                 : 0;
    free(names);
    return rc;
}

int results_create(const char *path, MPI_Comm comm, const results_layout_t *L, results_t **out)
{
    int rc = 0;
    hid_t fapl = -1, g = -1;
    *out = NULL;
    results_t *r = results_alloc(L, comm);
    CHECK_ALLOC(r);
    snprintf(r->path, sizeof r->path, "%s", path);
    const int root = r->rank == 0;
    if (root)
        sc_mkdirs_parent(path); /* the create below reports a folder that could not be made */
    MPI_Barrier(comm);
    fapl = open_fapl(comm);
    H5E_BEGIN_TRY { r->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl); } H5E_END_TRY;
    CHECK(r->file >= 0, SC_ERR_IO, "cannot create results file '%s' (directory missing or not "
                                   "writable?)", path);
    /* root attributes (collective: same values everywhere) */
    char created[64];
    time_t now = time(NULL);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    CHECK_H5(attr_str(r->file, "salcheck_version", SALCHECK_VERSION), "attr");
    CHECK_H5(attr_str(r->file, "job", L->job_text ? L->job_text : ""), "attr");
    CHECK_H5(attr_str(r->file, "job_path", L->job_path ? L->job_path : ""), "attr");
    CHECK_H5(attr_str(r->file, "created", created), "attr");
    CHECK_H5(attr_i64(r->file, "seed", (long long)L->seed), "attr");
    CHECK_H5(attr_i64(r->file, "ranks", L->ranks), "attr");
    CHECK_H5(attr_i64(r->file, "image_size", L->h), "attr");
    CHECK_H5(attr_str(r->file, "maps_dtype",
                      L->maps == RESULTS_MAPS_F16 ? "float16"
                      : L->maps == RESULTS_MAPS_F32 ? "float32" : "none"), "attr");

    const hsize_t N = (hsize_t)L->n_images, V = (hsize_t)L->n_variants, M = (hsize_t)L->n_methods;
    const hsize_t P = (hsize_t)L->n_pairs, H = (hsize_t)L->h, W = (hsize_t)L->w;
    /* /images */
    g = H5Gcreate2(r->file, "images", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(g, "create /images");
    CHECK_RC(write_strings(g, "id", L->image_ids, L->n_images, root));
    CHECK_RC(write_numbers(g, "label", H5T_STD_I8LE, H5T_NATIVE_INT8, 1, (hsize_t[]){N}, L->labels, root));
    CHECK_RC(write_numbers(g, "gt", H5T_STD_U8LE, H5T_NATIVE_UINT8, 3, (hsize_t[]){N, H, W}, L->gt, root));
    H5Gclose(g);
    /* /variants */
    g = H5Gcreate2(r->file, "variants", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(g, "create /variants");
    CHECK_RC(write_strings(g, "name", L->variant_names, L->n_variants, root));
    CHECK_RC(write_strings(g, "kind", L->variant_kinds, L->n_variants, root));
    CHECK_RC(write_strings(g, "base", L->variant_bases, L->n_variants, root));
    CHECK_RC(write_strings(g, "reinit", L->variant_reinit, L->n_variants, root));
    CHECK_RC(write_numbers(g, "state", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, (hsize_t[]){V},
                           L->variant_states, root));
    CHECK_RC(write_numbers(g, "n_images", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, (hsize_t[]){V},
                           L->variant_n_images, root));
    H5Gclose(g);
    /* /models: the output each model explains */
    if (L->n_models > 0) {
        const hsize_t J = (hsize_t)L->n_models;
        g = H5Gcreate2(r->file, "models", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        CHECK_H5(g, "create /models");
        CHECK_RC(write_strings(g, "name", L->model_names, L->n_models, root));
        CHECK_RC(write_numbers(g, "target", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, (hsize_t[]){J},
                               L->model_targets, root));
        CHECK_RC(write_strings(g, "target_label", L->model_target_labels, L->n_models, root));
        CHECK_RC(write_strings(g, "head", L->model_heads, L->n_models, root));
        CHECK_RC(write_strings(g, "labels", L->model_labels, L->n_models, root));
        CHECK_RC(write_strings(g, "input", L->model_inputs, L->n_models, root));
        if (L->model_probability)
            CHECK_RC(write_strings(g, "probability", L->model_probability, L->n_models, root));
        CHECK_H5(attr_str(g, "target", "the explained output (logit index) of each model and "
                          "its variants; -1: the predicted class (largest logit) per image, "
                          "stored in /scores/target"), "attr");
        H5Gclose(g);
    }
    /* /methods */
    g = H5Gcreate2(r->file, "methods", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(g, "create /methods");
    CHECK_RC(write_strings(g, "name", L->method_names, L->n_methods, root));
    CHECK_H5(attr_str(g, "params", L->method_params ? L->method_params : ""), "attr");
    H5Gclose(g);
    /* /maps */
    g = H5Gcreate2(r->file, "maps", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(g, "create /maps");
    if (L->maps != RESULTS_MAPS_NONE) {
        for (int m = 0; m < L->n_methods; m++) {
            r->maps[m] = create_ds(g, L->method_names[m],
                                   L->maps == RESULTS_MAPS_F16 ? r->f16 : H5T_IEEE_F32LE, 4,
                                   (hsize_t[]){V, N, H, W}, 0, 0);
            CHECK_H5(r->maps[m], "create /maps/%s", L->method_names[m]);
        }
    }
    H5Gclose(g);
    /* /metrics */
    g = H5Gcreate2(r->file, "metrics", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(g, "create /metrics");
    for (int k = 0; k < L->n_metrics; k++) {
        r->metrics[k] = create_ds(g, L->metric_names[k], H5T_IEEE_F64LE, 3, (hsize_t[]){M, V, N}, 1, 0);
        CHECK_H5(r->metrics[k], "create /metrics/%s", L->metric_names[k]);
    }
    H5Gclose(g);
    /* /curves (the checks beyond the paper) */
    if (L->n_curves > 0) {
        g = H5Gcreate2(r->file, "curves", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        CHECK_H5(g, "create /curves");
        for (int k = 0; k < L->n_curves; k++) {
            r->curves[k] = create_ds(g, L->curve_names[k], H5T_IEEE_F64LE, 4,
                                     (hsize_t[]){M, V, N, (hsize_t)L->curve_len[k]}, 1, 0);
            CHECK_H5(r->curves[k], "create /curves/%s", L->curve_names[k]);
        }
        H5Gclose(g);
    }
    /* /scores */
    g = H5Gcreate2(r->file, "scores", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(g, "create /scores");
    r->logits = create_ds(g, "logits", H5T_IEEE_F32LE, 3, (hsize_t[]){V, N, (hsize_t)L->classes}, 0, 1);
    r->target = create_ds(g, "target", H5T_STD_I32LE, 2, (hsize_t[]){V, N}, 0, 1);
    CHECK_H5(r->logits < 0 || r->target < 0 ? -1 : 0, "create /scores");
    H5Gclose(g);
    /* /pairs */
    g = H5Gcreate2(r->file, "pairs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(g, "create /pairs");
    CHECK_RC(write_numbers(g, "index", H5T_STD_I32LE, H5T_NATIVE_INT32, 2, (hsize_t[]){P, 4},
                           L->pair_index, root));
    CHECK_RC(write_numbers(g, "experiment", H5T_STD_I8LE, H5T_NATIVE_INT8, 1, (hsize_t[]){P},
                           L->pair_experiment, root));
    {
        const char *exps[RESULTS_EXP_COUNT];
        for (int e = 0; e < RESULTS_EXP_COUNT; e++)
            exps[e] = exp_names[e];
        CHECK_RC(write_strings(g, "experiment_names", exps, RESULTS_EXP_COUNT, root));
    }
    for (int s = 0; s < L->n_sims; s++) {
        r->sims[s] = create_ds(g, L->sim_names[s], H5T_IEEE_F64LE, 2, (hsize_t[]){M, P}, 1, 0);
        CHECK_H5(r->sims[s], "create /pairs/%s", L->sim_names[s]);
    }
    H5Gclose(g);
    /* /status */
    g = H5Gcreate2(r->file, "status", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(g, "create /status");
    {
        uint8_t *planned = calloc((size_t)(V * N) + 1, 1);
        CHECK_ALLOC(planned);
        for (hsize_t v = 0; v < V; v++)
            for (hsize_t i = 0; i < N; i++)
                planned[v * N + i] = (int)i < L->variant_n_images[v];
        rc = write_numbers(g, "planned", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, (hsize_t[]){V, N},
                           planned, root);
        free(planned);
        CHECK_RC(rc);
    }
    r->done = create_ds(g, "done", H5T_STD_U8LE, 2, (hsize_t[]){V, N}, 0, 1);
    r->seconds = create_ds(g, "seconds", H5T_IEEE_F64LE, 2, (hsize_t[]){V, N}, 1, 0);
    r->rankd = create_ds(g, "rank", H5T_STD_I32LE, 2, (hsize_t[]){V, N}, 0, 1);
    r->pair_done = create_ds(g, "pair_done", H5T_STD_U8LE, 1, (hsize_t[]){P}, 0, 1);
    r->checksum = create_ds(g, "checksum", H5T_STD_U32LE, 2, (hsize_t[]){V, N}, 0, 1);
    CHECK_H5(r->done < 0 || r->seconds < 0 || r->rankd < 0 || r->pair_done < 0 ||
             r->checksum < 0 ? -1 : 0, "create /status");
    CHECK_RC(checksum_attrs(r->checksum, L));
    H5Gclose(g);
    g = -1;
    /* metadata on disk before any worker writes, so a killed run leaves a valid file */
    CHECK_H5(H5Fflush(r->file, H5F_SCOPE_GLOBAL), "flush '%s'", path);
    MPI_Barrier(comm);
    *out = r;
    r = NULL;
cleanup:
    if (g >= 0)
        H5Gclose(g);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (r)
        results_close(r);
    return rc;
}

/* Read a fixed-length string dataset into a NUL-separated array of `width`-byte items. */
static int check_strings(hid_t file, const char *name, const char *const *expect, int count,
                         const char *path)
{
    int rc = 0;
    hid_t d = -1, t = -1, s = -1;
    char *buf = NULL;
    H5E_BEGIN_TRY { d = H5Dopen2(file, name, H5P_DEFAULT); } H5E_END_TRY;
    CHECK(d >= 0, SC_ERR_FORMAT, "'%s' has no %s: not a salcheck results file", path, name);
    s = H5Dget_space(d);
    CHECK(H5Sget_simple_extent_npoints(s) == count, SC_ERR_FORMAT,
          "'%s': %s has %lld entries, this job plans %d: the file was made by another job "
          "(use a new --out, or the job that made it)", path, name,
          (long long)H5Sget_simple_extent_npoints(s), count);
    t = H5Dget_type(d);
    size_t width = H5Tget_size(t);
    buf = calloc((size_t)count + 1, width + 1);
    CHECK_ALLOC(buf);
    if (count > 0)
        CHECK_H5(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), "read %s", name);
    for (int i = 0; i < count; i++) {
        char item[1024];
        snprintf(item, sizeof item, "%.*s", (int)width, buf + (size_t)i * width);
        CHECK(!strcmp(item, expect[i]), SC_ERR_FORMAT,
              "'%s': %s[%d] is '%s', this job plans '%s': the file was made by another job", path,
              name, i, item, expect[i]);
    }
cleanup:
    free(buf);
    if (t >= 0)
        H5Tclose(t);
    if (s >= 0)
        H5Sclose(s);
    if (d >= 0)
        H5Dclose(d);
    return rc;
}

/* A resumed file explains the same outputs with the same input conventions (files made
 * before /models have none to compare). */
static int check_models(hid_t file, const results_layout_t *L, const char *path)
{
    int rc = 0;
    hid_t d = -1;
    int32_t *stored = NULL;
    if (L->n_models == 0 || H5Lexists(file, "models", H5P_DEFAULT) <= 0)
        return 0;
    CHECK_RC(check_strings(file, "models/name", L->model_names, L->n_models, path));
    CHECK_RC(check_strings(file, "models/input", L->model_inputs, L->n_models, path));
    stored = calloc((size_t)L->n_models, sizeof *stored);
    CHECK_ALLOC(stored);
    H5E_BEGIN_TRY { d = H5Dopen2(file, "models/target", H5P_DEFAULT); } H5E_END_TRY;
    CHECK(d >= 0 && H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, stored) >= 0,
          SC_ERR_FORMAT, "'%s': cannot read /models/target", path);
    for (int j = 0; j < L->n_models; j++)
        CHECK(stored[j] == L->model_targets[j], SC_ERR_FORMAT,
              "'%s': model '%s' explained output %d there, this job explains %d: the file was "
              "made by another job (use a new --out, or --force)", path, L->model_names[j],
              (int)stored[j], (int)L->model_targets[j]);
cleanup:
    if (d >= 0)
        H5Dclose(d);
    free(stored);
    return rc;
}

/* Open and check every dataset of the plan in r->file (results_check_dataset): shapes, types,
 * storage allocated inside the file's file_size bytes. */
static int open_datasets(results_t *r, const results_layout_t *L, const char *path,
                         long long file_size)
{
    int rc = 0;
    const hsize_t N = (hsize_t)L->n_images, V = (hsize_t)L->n_variants, M = (hsize_t)L->n_methods;
    const hsize_t P = (hsize_t)L->n_pairs;
    char name[256];
    CHECK_RC(check_strings(r->file, "images/id", L->image_ids, L->n_images, path));
    CHECK_RC(check_strings(r->file, "variants/name", L->variant_names, L->n_variants, path));
    CHECK_RC(check_strings(r->file, "methods/name", L->method_names, L->n_methods, path));
    CHECK_RC(check_models(r->file, L, path));
    for (int m = 0; m < L->n_methods && L->maps != RESULTS_MAPS_NONE; m++) {
        snprintf(name, sizeof name, "maps/%s", L->method_names[m]);
        CHECK_RC(results_check_dataset(r->file, name, 4, (hsize_t[]){V, N, (hsize_t)L->h, (hsize_t)L->w},
                                       L->maps == RESULTS_MAPS_F16 ? 2 : 4, 1, file_size, path,
                                       &r->maps[m]));
    }
    for (int k = 0; k < L->n_metrics; k++) {
        snprintf(name, sizeof name, "metrics/%s", L->metric_names[k]);
        CHECK_RC(results_check_dataset(r->file, name, 3, (hsize_t[]){M, V, N}, 8, 1, file_size,
                                       path, &r->metrics[k]));
    }
    for (int k = 0; k < L->n_curves; k++) {
        snprintf(name, sizeof name, "curves/%s", L->curve_names[k]);
        CHECK_RC(results_check_dataset(r->file, name, 4, (hsize_t[]){M, V, N, (hsize_t)L->curve_len[k]},
                                       8, 1, file_size, path, &r->curves[k]));
    }
    for (int s = 0; s < L->n_sims; s++) {
        snprintf(name, sizeof name, "pairs/%s", L->sim_names[s]);
        CHECK_RC(results_check_dataset(r->file, name, 2, (hsize_t[]){M, P}, 8, 1, file_size, path,
                                       &r->sims[s]));
    }
    CHECK_RC(results_check_dataset(r->file, "scores/logits", 3, (hsize_t[]){V, N, (hsize_t)L->classes},
                                   4, 1, file_size, path, &r->logits));
    CHECK_RC(results_check_dataset(r->file, "scores/target", 2, (hsize_t[]){V, N}, 4, 0, file_size,
                                   path, &r->target));
    CHECK_RC(results_check_dataset(r->file, "status/done", 2, (hsize_t[]){V, N}, 1, 0, file_size,
                                   path, &r->done));
    CHECK_RC(results_check_dataset(r->file, "status/seconds", 2, (hsize_t[]){V, N}, 8, 1, file_size,
                                   path, &r->seconds));
    CHECK_RC(results_check_dataset(r->file, "status/rank", 2, (hsize_t[]){V, N}, 4, 0, file_size,
                                   path, &r->rankd));
    CHECK_RC(results_check_dataset(r->file, "status/pair_done", 1, (hsize_t[]){P}, 1, 0, file_size,
                                   path, &r->pair_done));
    /* files made before checksums have none: their cells are not verified */
    if (H5Lexists(r->file, "status/checksum", H5P_DEFAULT) > 0)
        CHECK_RC(results_check_dataset(r->file, "status/checksum", 2, (hsize_t[]){V, N}, 4, 0,
                                       file_size, path, &r->checksum));
cleanup:
    return rc;
}

/*
 * The file is checked read-only first (results_check.h: the superblock, the
 * plan, every dataset's shape and storage) and opened for writing only when
 * it passes: a damaged or foreign file is refused without HDF5 ever writing
 * into it, so its close cannot fail on a write (HDF5 1.10 cannot release a
 * file whose close failed).
 */
int results_open(const char *path, MPI_Comm comm, const results_layout_t *L, results_t **out)
{
    int rc = 0;
    hid_t fapl = -1;
    long long file_size = 0;
    results_t *r = NULL;
    *out = NULL;
    CHECK_RC(results_check_superblock(path, &file_size));
    fapl = open_fapl(comm);
    for (int pass = 0; pass < 2; pass++) {
        r = results_alloc(L, comm);
        CHECK_ALLOC(r);
        snprintf(r->path, sizeof r->path, "%s", path);
        H5E_BEGIN_TRY {
            r->file = H5Fopen(path, pass == 0 ? H5F_ACC_RDONLY : H5F_ACC_RDWR, fapl);
        } H5E_END_TRY;
        CHECK(r->file >= 0, SC_ERR_IO, "cannot open results file '%s' to resume: it is not a "
              "readable%s HDF5 file (truncated or corrupted?). It was left untouched; move it "
              "away, or run with --force instead of --resume to start the run again", path,
              pass == 0 ? "" : " and writable");
        CHECK_RC(open_datasets(r, L, path, file_size));
        if (pass == 0) {
            rc = results_close(r);
            r = NULL;
            CHECK_RC(rc);
        }
    }
    *out = r;
    r = NULL;
cleanup:
    if (fapl >= 0)
        H5Pclose(fapl);
    if (r)
        results_close(r);
    return rc;
}

/* A fixed-length string dataset as a NUL-terminated array of count items of
 * `width` bytes + 1 (caller frees). NULL when absent or unreadable. */
static char *read_strings(hid_t file, const char *name, int *count, size_t *width)
{
    hid_t d = -1, t = -1, s = -1;
    char *buf = NULL;
    H5E_BEGIN_TRY { d = H5Dopen2(file, name, H5P_DEFAULT); } H5E_END_TRY;
    if (d < 0)
        return NULL;
    s = H5Dget_space(d);
    t = H5Dget_type(d);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    size_t w = H5Tget_size(t);
    if (n >= 0 && n < (1 << 24) && w > 0 && w < 4096 && H5Tget_class(t) == H5T_STRING &&
        !H5Tis_variable_str(t)) {
        char *raw = calloc((size_t)n + 1, w);
        buf = calloc((size_t)n + 1, w + 1);
        if (raw && buf && (n == 0 || H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) >= 0)) {
            for (hssize_t k = 0; k < n; k++)
                memcpy(buf + (size_t)k * (w + 1), raw + (size_t)k * w, w);
            *count = (int)n;
            *width = w + 1;
        } else {
            free(buf);
            buf = NULL;
        }
        free(raw);
    }
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
    return buf;
}

int results_open_readonly(const char *path, results_t **out)
{
    int rc = 0;
    hid_t file = -1, d = -1, s = -1;
    char *images = NULL, *variants = NULL, *methods = NULL, *metric_text = NULL;
    const char *method_names[256], *metric_names[64];
    size_t iw = 0, vw = 0, mw = 0;
    results_layout_t L;
    memset(&L, 0, sizeof L);
    *out = NULL;
    H5E_BEGIN_TRY { file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); } H5E_END_TRY;
    CHECK(file >= 0, SC_ERR_IO, "cannot open results file '%s'", path);
    images = read_strings(file, "images/id", &L.n_images, &iw);
    variants = read_strings(file, "variants/name", &L.n_variants, &vw);
    methods = read_strings(file, "methods/name", &L.n_methods, &mw);
    CHECK(images && variants && methods && L.n_methods <= 256, SC_ERR_FORMAT,
          "'%s': /images/id, /variants/name or /methods/name missing: not a salcheck results file",
          path);
    for (int m = 0; m < L.n_methods; m++)
        method_names[m] = methods + (size_t)m * mw;
    /* [N,H,W] ground truth gives the map size; [V,N,classes] logits the classes */
    hsize_t dims[3] = {0, 0, 0};
    H5E_BEGIN_TRY { d = H5Dopen2(file, "images/gt", H5P_DEFAULT); } H5E_END_TRY;
    CHECK(d >= 0, SC_ERR_FORMAT, "'%s': no /images/gt", path);
    s = H5Dget_space(d);
    CHECK(H5Sget_simple_extent_ndims(s) == 3, SC_ERR_FORMAT, "'%s': /images/gt is not [N,H,W]", path);
    H5Sget_simple_extent_dims(s, dims, NULL);
    L.h = (int)dims[1];
    L.w = (int)dims[2];
    H5Sclose(s);
    H5Dclose(d);
    s = d = -1;
    H5E_BEGIN_TRY { d = H5Dopen2(file, "scores/logits", H5P_DEFAULT); } H5E_END_TRY;
    CHECK(d >= 0, SC_ERR_FORMAT, "'%s': no /scores/logits", path);
    s = H5Dget_space(d);
    CHECK(H5Sget_simple_extent_ndims(s) == 3, SC_ERR_FORMAT, "'%s': /scores/logits is not [V,N,C]", path);
    H5Sget_simple_extent_dims(s, dims, NULL);
    L.classes = (int)dims[2];
    H5Sclose(s);
    H5Dclose(d);
    s = d = -1;
    char maps_dtype[32] = "";
    if (H5Aexists(file, "maps_dtype") > 0) {
        hid_t a = H5Aopen(file, "maps_dtype", H5P_DEFAULT), t = H5Aget_type(a);
        char buf[64] = "";
        if (H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t) && H5Tget_size(t) < sizeof buf)
            H5Aread(a, t, buf);
        snprintf(maps_dtype, sizeof maps_dtype, "%s", buf);
        H5Tclose(t);
        H5Aclose(a);
    }
    L.maps = !strcmp(maps_dtype, "float16") ? RESULTS_MAPS_F16
             : !strcmp(maps_dtype, "none")  ? RESULTS_MAPS_NONE : RESULTS_MAPS_F32;
    /* the metrics in checksum order, from the checksum's own attribute */
    if (H5Lexists(file, "status/checksum", H5P_DEFAULT) > 0) {
        d = H5Dopen2(file, "status/checksum", H5P_DEFAULT);
        if (d >= 0 && H5Aexists(d, "metrics") > 0) {
            hid_t a = H5Aopen(d, "metrics", H5P_DEFAULT), t = H5Aget_type(a);
            size_t len = H5Tget_size(t);
            if (H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t) && len < 65536) {
                metric_text = calloc(len + 1, 1);
                if (metric_text && H5Aread(a, t, metric_text) < 0)
                    metric_text[0] = 0;
            }
            H5Tclose(t);
            H5Aclose(a);
        }
        if (d >= 0)
            H5Dclose(d);
        d = -1;
    }
    for (char *tok = metric_text && metric_text[0] ? strtok(metric_text, ",") : NULL;
         tok && L.n_metrics < 64; tok = strtok(NULL, ","))
        metric_names[L.n_metrics++] = tok;
    L.method_names = method_names;
    L.metric_names = metric_names;
    H5Fclose(file);
    file = -1;

    results_t *r = results_alloc(&L, MPI_COMM_SELF);
    CHECK_ALLOC(r);
    snprintf(r->path, sizeof r->path, "%s", path);
    *out = r;
    H5E_BEGIN_TRY { r->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); } H5E_END_TRY;
    CHECK(r->file >= 0, SC_ERR_IO, "cannot open results file '%s'", path);
    char name[320];
    for (int m = 0; m < L.n_methods && L.maps != RESULTS_MAPS_NONE; m++) {
        snprintf(name, sizeof name, "maps/%s", method_names[m]);
        H5E_BEGIN_TRY { r->maps[m] = H5Dopen2(r->file, name, H5P_DEFAULT); } H5E_END_TRY;
        CHECK(r->maps[m] >= 0, SC_ERR_FORMAT, "'%s' has no /%s", path, name);
    }
    for (int k = 0; k < L.n_metrics; k++) {
        snprintf(name, sizeof name, "metrics/%s", metric_names[k]);
        H5E_BEGIN_TRY { r->metrics[k] = H5Dopen2(r->file, name, H5P_DEFAULT); } H5E_END_TRY;
        CHECK(r->metrics[k] >= 0, SC_ERR_FORMAT, "'%s' has no /%s", path, name);
    }
    H5E_BEGIN_TRY {
        r->logits = H5Dopen2(r->file, "scores/logits", H5P_DEFAULT);
        r->target = H5Dopen2(r->file, "scores/target", H5P_DEFAULT);
        r->done = H5Dopen2(r->file, "status/done", H5P_DEFAULT);
        if (metric_text)
            r->checksum = H5Dopen2(r->file, "status/checksum", H5P_DEFAULT);
    } H5E_END_TRY;
    CHECK(r->logits >= 0 && r->target >= 0 && r->done >= 0, SC_ERR_FORMAT,
          "'%s': /scores or /status incomplete", path);
cleanup:
    if (rc < 0 && *out) {
        results_close(*out);
        *out = NULL;
    }
    if (s >= 0)
        H5Sclose(s);
    if (d >= 0)
        H5Dclose(d);
    if (file >= 0)
        H5Fclose(file);
    free(images);
    free(variants);
    free(methods);
    free(metric_text);
    return rc;
}

void results_dims(const results_t *r, int *n_variants, int *n_images)
{
    *n_variants = r->n_variants;
    *n_images = r->n_images;
}

/*
 * Every identifier is closed, the file last. HDF5 writes the file's metadata
 * when it closes a file opened for writing; when that fails HDF5 1.10 keeps
 * the file's identifier and cannot release it (see results_check.h), so
 * results_open never opens a file for writing that could make it fail; a
 * failure left (an I/O error) is reported here, naming the file.
 */
int results_close(results_t *r)
{
    if (!r)
        return 0;
    int rc = 0;
    for (int i = 0; r->maps && i < r->n_methods; i++)
        if (r->maps[i] >= 0 && H5Dclose(r->maps[i]) < 0)
            rc = SC_ERR_H5;
    for (int i = 0; r->metrics && i < r->n_metrics; i++)
        if (r->metrics[i] >= 0 && H5Dclose(r->metrics[i]) < 0)
            rc = SC_ERR_H5;
    for (int i = 0; r->sims && i < r->n_sims; i++)
        if (r->sims[i] >= 0 && H5Dclose(r->sims[i]) < 0)
            rc = SC_ERR_H5;
    for (int i = 0; r->curves && i < r->n_curves; i++)
        if (r->curves[i] >= 0 && H5Dclose(r->curves[i]) < 0)
            rc = SC_ERR_H5;
    free(r->curves);
    free(r->curve_len);
    hid_t ds[7] = {r->logits, r->target, r->done, r->seconds, r->rankd, r->pair_done, r->checksum};
    for (int i = 0; i < 7; i++)
        if (ds[i] >= 0 && H5Dclose(ds[i]) < 0)
            rc = SC_ERR_H5;
    if (r->f16 >= 0)
        H5Tclose(r->f16);
    if (r->file >= 0) {
        quiet_h5_t quiet = quiet_h5_begin();
        if (H5Fclose(r->file) < 0) {
            char why[160];
            int err = errno;
            sc_log(SC_LOG_ERROR, __FILE__, __LINE__, "results file '%s': closing it failed: HDF5 "
                   "could not write the file's own metadata (%s). The cells marked done before "
                   "are kept; check the file system, then continue with --resume", r->path,
                   write_error(r, err, why, sizeof why));
            rc = SC_ERR_IO;
        }
        quiet_h5_end(quiet);
    }
    free(r->maps);
    free(r->metrics);
    free(r->sims);
    free(r->half);
    free(r->column);
    free(r->cell);
    free(r);
    return rc;
}

/* Select a block of `count` at `start` in dataset d; returns file space (caller closes). */
static hid_t select_block(hid_t d, int rank, const hsize_t *start, const hsize_t *count)
{
    hid_t fs = H5Dget_space(d);
    if (fs >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0) {
        H5Sclose(fs);
        return -1;
    }
    (void)rank;
    return fs;
}

static int write_block(hid_t d, hid_t mtype, int rank, const hsize_t *start, const hsize_t *count,
                       const void *buf)
{
    hid_t fs = select_block(d, rank, start, count);
    if (fs < 0)
        return -1;
    hsize_t total = 1;
    for (int i = 0; i < rank; i++)
        total *= count[i];
    hid_t ms = H5Screate_simple(1, &total, NULL);
    herr_t st = H5Dwrite(d, mtype, ms, fs, H5P_DEFAULT, buf);
    H5Sclose(ms);
    H5Sclose(fs);
    return st < 0 ? -1 : 0;
}

static int read_block(hid_t d, hid_t mtype, int rank, const hsize_t *start, const hsize_t *count,
                      void *buf)
{
    hid_t fs = select_block(d, rank, start, count);
    if (fs < 0)
        return -1;
    hsize_t total = 1;
    for (int i = 0; i < rank; i++)
        total *= count[i];
    hid_t ms = H5Screate_simple(1, &total, NULL);
    herr_t st = H5Dread(d, mtype, ms, fs, H5P_DEFAULT, buf);
    H5Sclose(ms);
    H5Sclose(fs);
    return st < 0 ? -1 : 0;
}

/* Why a raw-data write failed: the system's reason when it survived HDF5
 * (ENOSPC, EDQUOT, EIO...); else a full file system is recognised by its free
 * space (MPI-IO does not pass errno up). */
static const char *write_error(const results_t *r, int err, char *buf, size_t len)
{
    if (err && err != EINTR)
        return strerror(err);
    struct statvfs fs;
    if (statvfs(r->path, &fs) == 0 && (double)fs.f_bavail * fs.f_frsize < 1048576.0)
        snprintf(buf, len, "%s (%.0f kB left on its file system)", strerror(ENOSPC),
                 (double)fs.f_bavail * fs.f_frsize / 1024.0);
    else
        snprintf(buf, len, "HDF5 write error");
    return buf;
}

/* HDF5's own error stack is not printed for cell writes: one message says what failed. */
static quiet_h5_t quiet_h5_begin(void)
{
    quiet_h5_t q;
    H5Eget_auto2(H5E_DEFAULT, &q.func, &q.data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    errno = 0;
    return q;
}
static void quiet_h5_end(quiet_h5_t q) { H5Eset_auto2(H5E_DEFAULT, q.func, q.data); }

#define CHECK_WRITE(expr, what)                                                 \
    do {                                                                        \
        if ((expr) < 0) {                                                       \
            char why_[160];                                                     \
            int err_ = errno;                                                   \
            sc_log(SC_LOG_ERROR, __FILE__, __LINE__,                            \
                   "results file '%s': cannot write the %s of cell [%d, %d]: %s", r->path, \
                   what, v, i, write_error(r, err_, why_, sizeof why_));        \
            rc = SC_ERR_IO;                                                     \
            goto cleanup;                                                       \
        }                                                                       \
    } while (0)

int results_write_cell(results_t *r, int v, int i, const float *maps, const double *metrics,
                       const float *logits, int target, double seconds, int rank)
{
    int rc = 0;
    quiet_h5_t quiet = quiet_h5_begin();
    const size_t hw = (size_t)r->h * r->w;
    uLong crc = crc32_z(0L, Z_NULL, 0); /* the cell's checksum (checksum_attrs) */
    if (r->maps_kind != RESULTS_MAPS_NONE && maps) {
        for (int m = 0; m < r->n_methods; m++) {
            hsize_t start[4] = {(hsize_t)v, (hsize_t)i, 0, 0}, count[4] = {1, 1, (hsize_t)r->h, (hsize_t)r->w};
            const float *map = maps + m * hw;
            if (r->maps_kind == RESULTS_MAPS_F16) {
                for (size_t k = 0; k < hw; k++)
                    r->half[k] = results_f32_to_f16(map[k]);
                CHECK_WRITE(write_block(r->maps[m], r->f16, 4, start, count, r->half), "maps");
                crc = crc32_z(crc, (const Bytef *)r->half, hw * sizeof(uint16_t));
            } else {
                CHECK_WRITE(write_block(r->maps[m], H5T_NATIVE_FLOAT, 4, start, count, map), "maps");
                crc = crc32_z(crc, (const Bytef *)map, hw * sizeof(float));
            }
        }
    }
    for (int k = 0; k < r->n_metrics; k++) {
        hsize_t start[3] = {0, (hsize_t)v, (hsize_t)i}, count[3] = {(hsize_t)r->n_methods, 1, 1};
        CHECK_WRITE(write_block(r->metrics[k], H5T_NATIVE_DOUBLE, 3, start, count,
                                metrics + (size_t)k * r->n_methods), "metrics");
        crc = crc32_z(crc, (const Bytef *)(metrics + (size_t)k * r->n_methods),
                      (size_t)r->n_methods * sizeof(double));
    }
    {
        hsize_t start[3] = {(hsize_t)v, (hsize_t)i, 0}, count[3] = {1, 1, (hsize_t)r->classes};
        CHECK_WRITE(write_block(r->logits, H5T_NATIVE_FLOAT, 3, start, count, logits), "logits");
        int32_t t = target, rk = rank;
        CHECK_WRITE(write_block(r->target, H5T_NATIVE_INT32, 2, start, (hsize_t[]){1, 1}, &t), "target");
        CHECK_WRITE(write_block(r->seconds, H5T_NATIVE_DOUBLE, 2, start, (hsize_t[]){1, 1}, &seconds), "seconds");
        CHECK_WRITE(write_block(r->rankd, H5T_NATIVE_INT32, 2, start, (hsize_t[]){1, 1}, &rk), "rank");
        crc = crc32_z(crc, (const Bytef *)logits, (size_t)r->classes * sizeof(float));
        crc = crc32_z(crc, (const Bytef *)&t, sizeof t);
        uint32_t sum = (uint32_t)crc;
        if (r->checksum >= 0)
            CHECK_WRITE(write_block(r->checksum, H5T_NATIVE_UINT32, 2, start, (hsize_t[]){1, 1}, &sum),
                        "checksum");
    }
cleanup:
    quiet_h5_end(quiet);
    return rc;
}

/* The checksum of cell (v, i) recomputed from what the file holds (checksum_attrs). */
static int cell_checksum(results_t *r, int v, int i, uint32_t *out)
{
    const size_t hw = (size_t)r->h * r->w;
    uLong crc = crc32_z(0L, Z_NULL, 0);
    for (int m = 0; m < r->n_methods && r->maps_kind != RESULTS_MAPS_NONE; m++) {
        hsize_t start[4] = {(hsize_t)v, (hsize_t)i, 0, 0}, count[4] = {1, 1, (hsize_t)r->h, (hsize_t)r->w};
        if (r->maps_kind == RESULTS_MAPS_F16) {
            if (read_block(r->maps[m], r->f16, 4, start, count, r->half) < 0)
                return SC_ERR_H5;
            crc = crc32_z(crc, (const Bytef *)r->half, hw * sizeof(uint16_t));
        } else {
            if (read_block(r->maps[m], H5T_NATIVE_FLOAT, 4, start, count, r->cell) < 0)
                return SC_ERR_H5;
            crc = crc32_z(crc, (const Bytef *)r->cell, hw * sizeof(float));
        }
    }
    for (int k = 0; k < r->n_metrics; k++) {
        hsize_t start[3] = {0, (hsize_t)v, (hsize_t)i}, count[3] = {(hsize_t)r->n_methods, 1, 1};
        if (read_block(r->metrics[k], H5T_NATIVE_DOUBLE, 3, start, count, r->column) < 0)
            return SC_ERR_H5;
        crc = crc32_z(crc, (const Bytef *)r->column, (size_t)r->n_methods * sizeof(double));
    }
    hsize_t start[3] = {(hsize_t)v, (hsize_t)i, 0}, count[3] = {1, 1, (hsize_t)r->classes};
    int32_t t = 0;
    uint32_t stored = 0;
    if (read_block(r->logits, H5T_NATIVE_FLOAT, 3, start, count, r->cell) < 0 ||
        read_block(r->target, H5T_NATIVE_INT32, 2, start, (hsize_t[]){1, 1}, &t) < 0 ||
        read_block(r->checksum, H5T_NATIVE_UINT32, 2, start, (hsize_t[]){1, 1}, &stored) < 0)
        return SC_ERR_H5;
    crc = crc32_z(crc, (const Bytef *)r->cell, (size_t)r->classes * sizeof(float));
    crc = crc32_z(crc, (const Bytef *)&t, sizeof t);
    *out = (uint32_t)crc;
    return stored == (uint32_t)crc ? 0 : 1;
}

int results_has_checksums(const results_t *r) { return r->checksum >= 0; }

int results_verify_cells(results_t *r, const uint8_t *done, uint8_t *bad)
{
    int rc = 0, size = 1, n_bad = 0;
    MPI_Comm_size(r->comm, &size);
    const long cells = (long)r->n_variants * r->n_images;
    memset(bad, 0, (size_t)cells);
    for (long q = r->rank; q < cells && r->checksum >= 0; q += size) {
        if (!done[q])
            continue;
        uint32_t sum;
        int c = cell_checksum(r, (int)(q / r->n_images), (int)(q % r->n_images), &sum);
        if (c < 0) {
            rc = c; /* unreadable: the cell is as good as corrupt */
            c = 1;
        }
        bad[q] = (uint8_t)c;
    }
    (void)rc;
    if (cells > 0 && MPI_Allreduce(MPI_IN_PLACE, bad, (int)cells, MPI_UINT8_T, MPI_MAX, r->comm) !=
                         MPI_SUCCESS)
        return SC_ERR_MPI;
    for (long q = 0; q < cells; q++)
        n_bad += bad[q] != 0;
    return n_bad;
}

int results_clear_done(results_t *r, int v, int i)
{
    uint8_t zero = 0;
    hsize_t start[2] = {(hsize_t)v, (hsize_t)i}, count[2] = {1, 1};
    return write_block(r->done, H5T_NATIVE_UINT8, 2, start, count, &zero) < 0 ? SC_ERR_H5 : 0;
}

int results_write_curves(results_t *r, int v, int i, const double *curves)
{
    int rc = 0;
    for (int k = 0; k < r->n_curves; k++) {
        hsize_t start[4] = {0, (hsize_t)v, (hsize_t)i, 0};
        hsize_t count[4] = {(hsize_t)r->n_methods, 1, 1, (hsize_t)r->curve_len[k]};
        CHECK_H5(write_block(r->curves[k], H5T_NATIVE_DOUBLE, 4, start, count, curves),
                 "write curves");
        curves += (size_t)r->n_methods * r->curve_len[k];
    }
cleanup:
    return rc;
}

int results_mark_done(results_t *r, int v, int i)
{
    int rc = 0;
    uint8_t one = 1;
    hsize_t start[2] = {(hsize_t)v, (hsize_t)i}, count[2] = {1, 1};
    quiet_h5_t quiet = quiet_h5_begin();
    CHECK_WRITE(write_block(r->done, H5T_NATIVE_UINT8, 2, start, count, &one), "done flag");
cleanup:
    quiet_h5_end(quiet);
    return rc;
}

int results_read_map(results_t *r, int method, int v, int i, float *out)
{
    if (r->maps_kind == RESULTS_MAPS_NONE)
        return SC_ERR_ARG;
    hsize_t start[4] = {(hsize_t)v, (hsize_t)i, 0, 0}, count[4] = {1, 1, (hsize_t)r->h, (hsize_t)r->w};
    const size_t hw = (size_t)r->h * r->w;
    if (r->maps_kind == RESULTS_MAPS_F16) {
        if (read_block(r->maps[method], r->f16, 4, start, count, r->half) < 0)
            return SC_ERR_H5;
        for (size_t k = 0; k < hw; k++)
            out[k] = results_f16_to_f32(r->half[k]);
        return 0;
    }
    return read_block(r->maps[method], H5T_NATIVE_FLOAT, 4, start, count, out) < 0 ? SC_ERR_H5 : 0;
}

int results_write_pair(results_t *r, int p, const double *sims)
{
    for (int s = 0; s < r->n_sims; s++) {
        hsize_t start[2] = {0, (hsize_t)p}, count[2] = {(hsize_t)r->n_methods, 1};
        if (write_block(r->sims[s], H5T_NATIVE_DOUBLE, 2, start, count,
                        sims + (size_t)s * r->n_methods) < 0)
            return SC_ERR_H5;
    }
    uint8_t one = 1;
    hsize_t start[1] = {(hsize_t)p}, count[1] = {1};
    return write_block(r->pair_done, H5T_NATIVE_UINT8, 1, start, count, &one) < 0 ? SC_ERR_H5 : 0;
}

int results_read_done(results_t *r, uint8_t *cells, uint8_t *pairs)
{
    if (cells && r->n_variants * r->n_images > 0 &&
        H5Dread(r->done, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, cells) < 0)
        return SC_ERR_H5;
    if (pairs && r->n_pairs > 0 &&
        H5Dread(r->pair_done, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, pairs) < 0)
        return SC_ERR_H5;
    return 0;
}

/* ---- integer attributes set after creation (data set counts, resolved check parameters) ---- */

int results_set_attr_ints(results_t *r, const char *group, const char *name, const long long *values, int n)
{
    int rc = SC_OK;
    hid_t obj = group ? H5Gopen2(r->file, group, H5P_DEFAULT) : r->file, s = -1, a = -1;
    CHECK_H5(obj, "open /%s in '%s'", group ? group : "", r->path);
    if (H5Aexists(obj, name) > 0) /* a resumed run sets it again */
        CHECK_H5(H5Adelete(obj, name), "replace attribute %s in '%s'", name, r->path);
    s = n <= 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, (hsize_t[]){(hsize_t)n}, NULL);
    CHECK_H5(s, "dataspace");
    a = H5Acreate2(obj, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(a, "create attribute %s in '%s'", name, r->path);
    CHECK_H5(H5Awrite(a, H5T_NATIVE_LLONG, values), "write attribute %s in '%s'", name, r->path);
cleanup:
    if (a >= 0)
        H5Aclose(a);
    if (s >= 0)
        H5Sclose(s);
    if (group && obj >= 0)
        H5Gclose(obj);
    return rc;
}
