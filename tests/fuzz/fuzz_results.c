/*
 * fuzz_results.c - libFuzzer harness: a results file opened for --resume
 * (common/io/results.c on parallel HDF5, one MPI process).
 *
 * The input is a results file. It is opened against a fixed plan (3 images,
 * 2 variants, 2 methods, 2 metrics, 1 similarity, 2 pairs, 8 x 8 float16
 * maps), its done flags are read and every cell marked done is read back
 * as --resume and the pair phase do.
 *
 * The seed file of that plan is made by the harness itself:
 *   SALCHECK_FUZZ_SEED_OUT=FILE.h5 fuzz_results
 * writes FILE.h5 (two cells and one pair done) and exits.
 */
#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzzhelp.h"
#include "io/results.h"

enum { FZ_N = 3, FZ_V = 2, FZ_M = 2, FZ_K = 2, FZ_S = 1, FZ_P = 2, FZ_HW = 8, FZ_C = 2 };

static results_layout_t fz_layout(void)
{
    static const char *ids[FZ_N] = {"img0", "img1", "img2"};
    static const int8_t labels[FZ_N] = {1, 1, 0};
    static uint8_t gt[FZ_N * FZ_HW * FZ_HW];
    static const char *vnames[FZ_V] = {"A", "A/logits"}, *vkinds[FZ_V] = {"trained", "cascading"};
    static const char *vbases[FZ_V] = {"A", "A"}, *vreinit[FZ_V] = {"", "logits"};
    static const int32_t vstates[FZ_V] = {0, 1}, vnimg[FZ_V] = {3, 2};
    static const char *methods[FZ_M] = {"grad", "gcam"}, *metrics[FZ_K] = {"auprc", "pointing"};
    static const char *sims[FZ_S] = {"ssim"};
    static const int32_t pairs[FZ_P * 4] = {0, 0, 1, 0, 0, 1, 1, 1};
    static const int8_t pexp[FZ_P] = {0, 0};
    for (int k = 0; k < FZ_N * FZ_HW * FZ_HW; k++)
        gt[k] = (uint8_t)((k / 3) % 2);
    results_layout_t L = {
        .n_images = FZ_N, .h = FZ_HW, .w = FZ_HW, .classes = FZ_C, .image_ids = ids,
        .labels = labels, .gt = gt, .n_variants = FZ_V, .variant_names = vnames,
        .variant_kinds = vkinds, .variant_bases = vbases, .variant_reinit = vreinit,
        .variant_states = vstates, .variant_n_images = vnimg, .n_methods = FZ_M,
        .method_names = methods, .method_params = "grad: none", .n_metrics = FZ_K,
        .metric_names = metrics, .n_sims = FZ_S, .sim_names = sims, .n_pairs = FZ_P,
        .pair_index = pairs, .pair_experiment = pexp, .maps = RESULTS_MAPS_F16,
        .job_text = "[job]\nname = fuzz\n", .job_path = "fuzz.ini", .seed = 1, .ranks = 1};
    return L;
}

static void fz_finalize(void) { MPI_Finalize(); }

static void fz_make_seed(const char *path)
{
    results_layout_t L = fz_layout();
    results_t *r = NULL;
    if (results_create(path, MPI_COMM_SELF, &L, &r) < 0)
        exit(1);
    float maps[FZ_M * FZ_HW * FZ_HW];
    double metrics[FZ_K * FZ_M], sims[FZ_S * FZ_M] = {0.5, 0.25};
    float logits[FZ_C] = {0.1f, 2.0f};
    for (int cell = 0; cell < 2; cell++) {
        for (int k = 0; k < FZ_M * FZ_HW * FZ_HW; k++)
            maps[k] = (float)((k * 7 + cell) % 64) / 63.0f;
        for (int k = 0; k < FZ_K * FZ_M; k++)
            metrics[k] = 0.125 * (k + cell);
        if (results_write_cell(r, cell, 0, maps, metrics, logits, 1, 0.5, 0) < 0 ||
            results_mark_done(r, cell, 0) < 0)
            exit(1);
    }
    if (results_write_pair(r, 0, sims) < 0 || results_close(r) < 0)
        exit(1);
    exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* no signal handlers of Open MPI's own: they would print their trace and
     * end the process before libFuzzer's handler saves the input of a crash
     * or an abort (FUZZ_CHECK_H5_CLOSED) */
    setenv("OMPI_MCA_opal_signal", "", 0);
    MPI_Init(argc, argv);
    atexit(fz_finalize);
    const char *seed = getenv("SALCHECK_FUZZ_SEED_OUT");
    if (seed)
        fz_make_seed(seed);
    fuzz_quiet();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[600];
    if (!path[0])
        fuzz_path("results.h5", path, sizeof path);
    fuzz_write(path, data, size);
    results_layout_t L = fz_layout();
    results_t *r = NULL;
    if (results_open(path, MPI_COMM_SELF, &L, &r) == 0) {
        uint8_t done[FZ_V * FZ_N + 1], pair_done[FZ_P + 1];
        float map[FZ_HW * FZ_HW];
        if (results_read_done(r, done, pair_done) == 0) {
            for (int v = 0; v < FZ_V; v++)
                for (int i = 0; i < FZ_N; i++)
                    for (int m = 0; done[v * FZ_N + i] && m < FZ_M; m++)
                        results_read_map(r, m, v, i, map);
        }
    }
    /* a close that fails leaves HDF5 1.10 an identifier it cannot release */
    if (results_close(r) < 0) {
        fprintf(stderr, "salcheck fuzz: results_close failed\n");
        abort();
    }
    FUZZ_CHECK_H5_CLOSED();
    return 0;
}
