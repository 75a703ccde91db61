/*
 * test_modelfile_damaged.c - model files that HDF5 itself mishandles
 * (nn/modelfile_graph.c, nn/modelfile_probe.c): /graph's strings read from
 * the file's bytes equal HDF5's own reading on good files (the fuzz seeds and
 * a graph spread over several heap collections, with and without a user block); the damaged files of
 * tests/fuzz/corpus/modelfile/hdf5-* are refused with an error, not a crash;
 * a child that dies reading a file's structure becomes an error naming it.
 */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/modelfile.h"
#include "nn/modelfile_graph.h"
#include "nn/modelfile_probe.h"
#include "sc.h"
#include "testhelp.h"

/* /graph of path through HDF5 and through modelfile_graph_read: same strings. */
static void compare_graph(const char *path)
{
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    TH_CHECK(file >= 0, "open %s", path);
    if (file < 0)
        return;
    hid_t dset = H5Dopen2(file, "graph", H5P_DEFAULT), space = H5Dget_space(dset);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    char **ref = calloc((size_t)n, sizeof *ref);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    TH_CHECK(H5Dread(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, ref) >= 0, "H5Dread %s", path);
    char **lines = NULL;
    size_t count = 0;
    TH_EQ_INT(modelfile_graph_read(file, dset, path, &lines, &count), 0);
    TH_EQ_INT(count, n);
    int same = 0;
    for (size_t i = 0; lines && i < count && i < (size_t)n; i++)
        same += ref[i] && !strcmp(ref[i], lines[i]);
    TH_CHECK(same == n, "%s: %d of %lld lines equal HDF5's", path, same, (long long)n);
    modelfile_graph_free(lines, count);
    H5Dvlen_reclaim(type, space, H5P_DEFAULT, ref);
    free(ref);
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(dset);
    H5Fclose(file);
}

static void test_graph_equals_hdf5(void)
{
    const char *seeds[] = {"tests/fuzz/corpus/modelfile/tiny.h5",
                           "tests/fuzz/corpus/modelfile/helper.h5",
                           "tests/fuzz/corpus/modelfile/keras_style.h5"};
    for (int i = 0; i < 3; i++)
        compare_graph(seeds[i]);
    /* 3000 lines of 17 to 300 bytes, one empty: several heap collections */
    char path[512];
    snprintf(path, sizeof path, "%s/graph_many.h5", th_tmp_dir());
    enum { N = 3000 };
    char **lines = calloc(N, sizeof *lines);
    for (int i = 0; i < N; i++) {
        size_t len = i == 7 ? 0 : 17 + (size_t)(i * 37) % 284;
        lines[i] = malloc(len + 1);
        for (size_t k = 0; k < len; k++)
            lines[i][k] = (char)('a' + (i + k) % 26);
        lines[i][len] = 0;
    }
    for (int userblock = 0; userblock <= 512; userblock += 512) {
        /* addresses in the file are relative to the end of a user block */
        hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
        H5Pset_userblock(fcpl, (hsize_t)userblock);
        hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
        hid_t type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, H5T_VARIABLE);
        hsize_t dims[1] = {N};
        hid_t space = H5Screate_simple(1, dims, NULL);
        hid_t dset = H5Dcreate2(file, "graph", type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        TH_CHECK(H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, lines) >= 0, "write");
        H5Dclose(dset);
        H5Sclose(space);
        H5Tclose(type);
        H5Fclose(file);
        H5Pclose(fcpl);
        compare_graph(path);
    }
    for (int i = 0; i < N; i++)
        free(lines[i]);
    free(lines);
}

static void test_damaged_refused(void)
{
    const char *files[] = {"hdf5-vlen-read-crash-dbbd61f0.h5", "hdf5-vlen-read-crash-f842db6a.h5",
                           "hdf5-vlen-read-oom.h5", "hdf5-heap-overflow-in-h5aexists.h5",
                           "leak-vlen-graph-read.h5"};
    sc_log_set_level(SC_LOG_ERROR + 1);
    for (int i = 0; i < 5; i++) {
        char path[512];
        snprintf(path, sizeof path, "tests/fuzz/corpus/modelfile/%s", files[i]);
        nn_model_t *m = NULL;
        double t0 = sc_now();
        int rc = modelfile_load(path, &m);
        TH_CHECK(rc < 0 && !m, "%s: loaded (rc %d)", files[i], rc);
        TH_CHECK(sc_now() - t0 < 10, "%s: took %.1f s", files[i], sc_now() - t0);
        nn_model_destroy(m);
    }
    sc_log_set_level(SC_LOG_INFO);
    nn_model_t *m = NULL;
    TH_EQ_INT(modelfile_load("tests/fuzz/corpus/modelfile/tiny.h5", &m), 0);
    TH_CHECK(m && m->n_nodes == 13, "tiny.h5: %d nodes", m ? m->n_nodes : -1);
    nn_model_destroy(m);
}

static void test_probe_contains_a_crash(void)
{
    const char *path = "tests/fuzz/corpus/modelfile/tiny.h5";
    TH_EQ_INT(modelfile_probe(path, MODELFILE_PROBE_ALL), 0);
    setenv("SALCHECK_FAILPOINT", "modelprobe:0", 1); /* the child dies as on HDF5's crash */
    nn_model_t *m = NULL;
    char buf[64];
    sc_log_set_level(SC_LOG_ERROR + 1);
    TH_EQ_INT(modelfile_probe(path, MODELFILE_PROBE_ALL), SC_ERR_FORMAT);
    TH_EQ_INT(modelfile_load(path, &m), SC_ERR_FORMAT);
    TH_CHECK(!m, "no model from a file the child died on");
    TH_EQ_INT(modelfile_get_attr(path, "arch", buf, sizeof buf), SC_ERR_FORMAT);
    sc_log_set_level(SC_LOG_INFO);
    unsetenv("SALCHECK_FAILPOINT");
    TH_EQ_INT(modelfile_get_attr(path, "arch", buf, sizeof buf), 0);
    TH_CHECK(!strcmp(buf, "onnx"), "arch '%s'", buf);
}

int main(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    TH_RUN(test_graph_equals_hdf5);
    TH_RUN(test_damaged_refused);
    TH_RUN(test_probe_contains_a_crash);
    return th_report();
}
