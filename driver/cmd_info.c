/*
 * cmd_info.c - `salcheck info FILE.h5`: what a results or model file holds.
 *
 * Results file: when and how it was made, the plan's size, how far the run
 * got (cells and pairs done, per variant), the output each model explains
 * (/models), whether /summary is there; --job
 * prints the job file that made it; --verify recomputes the checksum of every
 * finished cell and lists the corrupt ones (exit status 1 when there are). Model file: architecture, input
 * convention, blocks, parameter count and provenance. Serial; rank 0 only.
 */
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "io/image_norm.h"
#include "io/results.h"
#include "nn/modelfile.h"
#include "nn/outputs.h"
#include "nn/zoo.h"
#include "sc.h"

static int attr_text(hid_t obj, const char *key, char *buf, size_t len)
{
    buf[0] = 0;
    if (H5Aexists(obj, key) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, key, H5P_DEFAULT), t = H5Aget_type(a);
    int rc = -1;
    if (H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t)) {
        size_t size = H5Tget_size(t);
        char *tmp = calloc(size + 1, 1);
        if (tmp && H5Aread(a, t, tmp) >= 0) {
            snprintf(buf, len, "%s", tmp);
            rc = 0;
        }
        free(tmp);
    } else if (H5Tget_class(t) == H5T_INTEGER) {
        long long v = 0;
        if (H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0) {
            snprintf(buf, len, "%lld", v);
            rc = 0;
        }
    }
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}

/*
 * Read the uint8 dataset name of f, which must have want_rank dimensions
 * (1 or 2), into *out (malloc'd, caller frees; one spare byte) and its
 * extents into dims[0..want_rank-1]. -1 when it is missing, unreadable or has
 * another rank: a damaged or foreign file must not write past dims.
 */
static int read_u8(hid_t f, const char *name, int want_rank, uint8_t **out, hsize_t dims[2])
{
    hid_t d = -1;
    *out = NULL;
    H5E_BEGIN_TRY { d = H5Dopen2(f, name, H5P_DEFAULT); } H5E_END_TRY;
    if (d < 0)
        return -1;
    hid_t s = H5Dget_space(d);
    int rc = -1;
    if (s >= 0 && H5Sget_simple_extent_ndims(s) == want_rank &&
        H5Sget_simple_extent_dims(s, dims, NULL) == want_rank) {
        hssize_t n = H5Sget_simple_extent_npoints(s);
        *out = n >= 0 ? calloc((size_t)n + 1, 1) : NULL;
        if (*out)
            rc = n > 0 ? (int)H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) : 0;
    }
    if (s >= 0)
        H5Sclose(s);
    H5Dclose(d);
    return rc < 0 ? -1 : 0;
}

/* A fixed-length string dataset of a results file: items of *width bytes (caller frees), or NULL. */
static char *read_fixed_strings(hid_t f, const char *name, hsize_t *count, size_t *width)
{
    hid_t d = -1;
    H5E_BEGIN_TRY { d = H5Dopen2(f, name, H5P_DEFAULT); } H5E_END_TRY;
    if (d < 0)
        return NULL;
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    *width = H5Tget_size(t);
    *count = (hsize_t)H5Sget_simple_extent_npoints(s);
    char *buf = calloc((size_t)*count + 1, *width + 1);
    if (buf && *count && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        free(buf);
        buf = NULL;
    }
    H5Sclose(s);
    H5Tclose(t);
    H5Dclose(d);
    return buf;
}

/* /models: the output each model explains (files made before it have none). */
static void info_models(hid_t f)
{
    hsize_t n = 0, k = 0;
    size_t wn = 0, wl = 0, wh = 0, wi = 0;
    char *names = read_fixed_strings(f, "models/name", &n, &wn);
    char *tlabels = read_fixed_strings(f, "models/target_label", &k, &wl);
    char *heads = read_fixed_strings(f, "models/head", &k, &wh);
    char *inputs = read_fixed_strings(f, "models/input", &k, &wi);
    int32_t *targets = calloc((size_t)n + 1, sizeof *targets);
    hid_t d = -1;
    H5E_BEGIN_TRY { d = H5Dopen2(f, "models/target", H5P_DEFAULT); } H5E_END_TRY;
    int ok = names && tlabels && heads && inputs && targets && d >= 0 &&
             H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, targets) >= 0;
    if (d >= 0)
        H5Dclose(d);
    if (ok) {
        printf("  models (explained output):\n");
        for (hsize_t j = 0; j < n; j++) {
            const char *tl = tlabels + j * wl;
            char what[160];
            if (targets[j] < 0)
                snprintf(what, sizeof what, "the predicted class");
            else
                snprintf(what, sizeof what, "output %d%s%.*s%s", (int)targets[j],
                         tl[0] ? " (" : "", (int)wl, tl, tl[0] ? ")" : "");
            printf("    %-16.*s %s, %.*s head, input %.*s\n", (int)wn, names + j * wn, what,
                   (int)wh, heads + j * wh, (int)wi, inputs + j * wi);
        }
    }
    free(names);
    free(tlabels);
    free(heads);
    free(inputs);
    free(targets);
}

static int info_results(const char *path, hid_t f, int show_job)
{
    char buf[65536];
    printf("%s: salcheck results file\n", path);
    const char *keys[] = {"salcheck_version", "created", "job_path", "seed", "ranks", "image_size",
                          "maps_dtype"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if (attr_text(f, keys[k], buf, sizeof buf) == 0)
            printf("  %-17s %s\n", keys[k], buf);
    uint8_t *done = NULL, *planned = NULL, *pdone = NULL;
    hsize_t dims[2] = {0, 0}, pdims[2] = {0, 0}, pd[2] = {0, 0};
    if (read_u8(f, "status/done", 2, &done, dims) < 0 ||
        read_u8(f, "status/planned", 2, &planned, pdims) < 0 ||
        read_u8(f, "status/pair_done", 1, &pdone, pd) < 0) {
        printf("  the /status group is missing or unreadable: the run did not get past its start\n");
        free(done);
        free(planned);
        free(pdone);
        return CLI_FAIL_ALL;
    }
    if (pdims[0] != dims[0] || pdims[1] != dims[1]) {
        printf("  /status/planned (%llu x %llu) and /status/done (%llu x %llu) differ in shape: "
               "the file is damaged\n", (unsigned long long)pdims[0], (unsigned long long)pdims[1],
               (unsigned long long)dims[0], (unsigned long long)dims[1]);
        free(done);
        free(planned);
        free(pdone);
        return CLI_FAIL_ALL;
    }
    hsize_t V = dims[0], N = dims[1];
    /* variant names: fixed-length strings, one per row of /status/done; a
     * missing or mismatched dataset leaves the names empty */
    hid_t vn = -1;
    H5E_BEGIN_TRY { vn = H5Dopen2(f, "variants/name", H5P_DEFAULT); } H5E_END_TRY;
    hid_t vt = vn >= 0 ? H5Dget_type(vn) : -1, vs = vn >= 0 ? H5Dget_space(vn) : -1;
    int names_ok = vt >= 0 && vs >= 0 && H5Tget_class(vt) == H5T_STRING &&
                   !H5Tis_variable_str(vt) && H5Sget_simple_extent_npoints(vs) == (hssize_t)V;
    size_t vw = names_ok ? H5Tget_size(vt) : 1;
    char *names = calloc(V + 1, vw + 1);
    if (names && names_ok && V)
        H5Dread(vn, vt, H5S_ALL, H5S_ALL, H5P_DEFAULT, names);
    if (vs >= 0)
        H5Sclose(vs);
    if (vt >= 0)
        H5Tclose(vt);
    if (vn >= 0)
        H5Dclose(vn);
    if (!names) {
        free(done);
        free(planned);
        free(pdone);
        return CLI_FAIL_ALL;
    }
    long total = 0, have = 0, ptotal = (long)pd[0], phave = 0;
    info_models(f);
    printf("  plan: %llu images x %llu variants\n", (unsigned long long)N, (unsigned long long)V);
    for (hsize_t v = 0; v < V; v++) {
        long t = 0, h = 0;
        for (hsize_t i = 0; i < N; i++) {
            t += planned[v * N + i];
            h += planned[v * N + i] && done[v * N + i];
        }
        total += t;
        have += h;
        printf("    %-40.*s %4ld/%ld cells done\n", (int)vw, names + v * vw, h, t);
    }
    for (long q = 0; q < ptotal; q++)
        phave += pdone[q];
    printf("  cells: %ld/%ld done (%.0f%%); pairs: %ld/%ld done\n", have, total,
           total ? 100.0 * have / total : 100.0, phave, ptotal);
    int summary = H5Lexists(f, "summary", H5P_DEFAULT) > 0;
    if (have == total && phave == ptotal)
        printf("  status: complete%s\n", summary ? "; /summary written" : "; /summary missing");
    else
        printf("  status: incomplete: continue with 'salcheck run JOB --out %s --resume'\n", path);
    if (show_job && attr_text(f, "job", buf, sizeof buf) == 0)
        printf("\n--- job file ---\n%s\n", buf);
    free(names);
    free(done);
    free(planned);
    free(pdone);
    return CLI_OK;
}

/* --verify: every finished cell against its checksum. CLI_OK when all match. */
static int info_verify(const char *path)
{
    results_t *r = NULL;
    uint8_t *done = NULL, *bad = NULL;
    char *ids = NULL, *vnames = NULL;
    int status = CLI_FAIL_ALL;
    if (results_open_readonly(path, &r) < 0)
        goto cleanup;
    if (!results_has_checksums(r)) {
        printf("  checksums: none (made by an older salcheck): nothing to verify\n");
        status = CLI_OK;
        goto cleanup;
    }
    int V, N;
    results_dims(r, &V, &N);
    done = calloc((size_t)V * N + 1, 1);
    bad = calloc((size_t)V * N + 1, 1);
    if (!done || !bad || results_read_done(r, done, NULL) < 0)
        goto cleanup;
    double t0 = sc_now();
    int n_bad = results_verify_cells(r, done, bad);
    if (n_bad < 0)
        goto cleanup;
    long n_done = 0;
    for (long q = 0; q < (long)V * N; q++)
        n_done += done[q] != 0;
    /* names for the report */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    size_t iw = 0, vw = 0;
    const char *sets[2] = {"images/id", "variants/name"};
    char **bufs[2] = {&ids, &vnames};
    size_t *widths[2] = {&iw, &vw};
    for (int k = 0; k < 2 && f >= 0; k++) {
        hid_t d = H5Dopen2(f, sets[k], H5P_DEFAULT), t = H5Dget_type(d);
        *widths[k] = H5Tget_size(t);
        *bufs[k] = calloc((size_t)(k ? V : N) + 1, *widths[k] + 1);
        if (*bufs[k])
            H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, *bufs[k]);
        H5Tclose(t);
        H5Dclose(d);
    }
    if (f >= 0)
        H5Fclose(f);
    for (long q = 0; q < (long)V * N; q++)
        if (bad[q])
            printf("  corrupt: cell (variant %.*s, image %.*s) does not match its checksum\n",
                   (int)vw, vnames ? vnames + (q / N) * vw : "?", (int)iw,
                   ids ? ids + (q % N) * iw : "?");
    printf("  checksums: %ld finished cells verified in %.1f s, %d corrupt%s\n", n_done,
           sc_now() - t0, n_bad,
           n_bad ? ": 'salcheck run JOB --out FILE --resume' computes them again" : "");
    status = n_bad ? CLI_FAIL_ALL : CLI_OK;
cleanup:
    if (status != CLI_OK && !bad)
        SC_ERROR("'%s': the checksums could not be verified", path);
    results_close(r);
    free(done);
    free(bad);
    free(ids);
    free(vnames);
    return status;
}

/* Provenance attributes of a model file (those not printed above). */
static herr_t print_provenance(hid_t loc, const char *key, const H5A_info_t *info, void *data)
{
    (void)info;
    (void)data;
    const char *shown[] = {"format", "format_version", "arch", "normalize", "num_classes",
                           "input_c", "input_h", "input_w", "gradcam_layer", "input_scale",
                           "input_offset"};
    for (size_t s = 0; s < sizeof shown / sizeof shown[0]; s++)
        if (!strcmp(key, shown[s]))
            return 0;
    char val[2048];
    if (attr_text(loc, key, val, sizeof val) == 0)
        printf("  %-17s %s\n", key, val);
    return 0;
}

static int info_model(const char *path)
{
    nn_model_t *m = NULL;
    if (modelfile_load(path, &m) < 0)
        return CLI_FAIL_ALL;
    printf("%s: salcheck model file\n", path);
    printf("  arch              %s\n", m->arch);
    image_norm_t norm;
    char conv[256];
    if (image_norm_resolve(m->normalize, m->nodes[0].c, &norm) == 0)
        image_norm_describe(&norm, conv, sizeof conv);
    else
        snprintf(conv, sizeof conv, "%s (does not fit the model)", m->normalize);
    printf("  input             %d x %d x %d, convention %s\n", m->nodes[0].c, m->nodes[0].h,
           m->nodes[0].w, conv);
    printf("  classes           %d (%s head)\n", m->num_classes,
           nn_outputs_head_name(nn_outputs_head(m)));
    printf("  parameters        %zu trainable\n", nn_count_trainable(m));
    printf("  nodes             %d\n", m->n_nodes);
    printf("  grad-cam layer    %s\n", m->gradcam_layer[0] ? m->gradcam_layer : "(none)");
    const char *blocks[256];
    int nb = zoo_blocks_top_down(m, blocks, 256);
    printf("  blocks (top down)");
    for (int b = 0; b < nb; b++)
        printf(" %s", blocks[b]);
    printf("\n");
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f >= 0) {
        hsize_t idx = 0;
        H5Aiterate2(f, H5_INDEX_NAME, H5_ITER_INC, &idx, print_provenance, NULL);
        H5Fclose(f);
    }
    nn_model_destroy(m);
    return CLI_OK;
}

int cmd_info(int argc, char **argv)
{
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    const char *path = NULL;
    int show_job = 0, verify = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (rank == 0)
                printf("usage: salcheck info FILE.h5 [--job] [--verify]\n\nDescribes a results "
                       "file (plan, progress, the job that made it with --job) or a model file.\n"
                       "--verify recomputes the checksum of every finished cell of a results file\n"
                       "and lists the corrupt ones (exit status 1 when there are).\n");
            return CLI_OK;
        } else if (!strcmp(argv[i], "--job")) {
            show_job = 1;
        } else if (!strcmp(argv[i], "--verify")) {
            verify = 1;
        } else if (!path) {
            path = argv[i];
        } else {
            if (rank == 0)
                fprintf(stderr, "salcheck info: unexpected argument '%s'\n", argv[i]);
            return CLI_FAIL_ALL;
        }
    }
    if (!path) {
        if (rank == 0)
            fprintf(stderr, "usage: salcheck info FILE.h5 [--job] [--verify]\n");
        return CLI_FAIL_ALL;
    }
    if (rank != 0)
        return CLI_OK;
    hid_t f = -1;
    H5E_BEGIN_TRY { f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); } H5E_END_TRY;
    if (f < 0) {
        SC_ERROR("cannot open '%s' (missing, not HDF5, or still open for writing by a run: set "
                 "HDF5_USE_FILE_LOCKING=FALSE to look at a running job's file)", path);
        return CLI_FAIL_ALL;
    }
    char fmt[64];
    int rc;
    if (attr_text(f, "format", fmt, sizeof fmt) == 0 && !strcmp(fmt, "salcheck-model")) {
        H5Fclose(f);
        rc = info_model(path);
    } else {
        rc = info_results(path, f, show_job);
        H5Fclose(f);
        if (rc == CLI_OK && verify)
            rc = info_verify(path);
    }
    return rc;
}
