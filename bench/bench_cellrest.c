/*
 * bench_cellrest.c - the parts of a cell that are not the gradient engine,
 * timed alone on the maps of a finished run (bench/README.md, "The rest of a
 * cell"): post-processing (P1 of every method's raw map shape, P2 of Guided
 * Grad-CAM), XRAI's regions (xrai_map on the cell's image), the per-map
 * metrics (loc_all), the pair phase's similarities (SSIM, Spearman, |Spearman|,
 * Pearson, HOG) and its map reads.
 *
 *   build/bench/bench_cellrest [RESULTS.h5 [DATA_DIR]] [--rounds R]
 *
 * RESULTS.h5 defaults to build/bench-cell/results.h5 (bench/cell_profile.sh
 * writes it), DATA_DIR to the phantom beside it. Without the file it says so
 * and exits 0 (bench/run.sh runs every benchmark without arguments). The raw
 * maps are not stored, so post-processing runs on [C,H,W] maps made from the
 * stored maps (random signs per channel); XRAI ranks the stored IG map as its
 * attribution. One process, one thread, CPU time, median of R rounds.
 */
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "io/image.h"
#include "io/image_norm.h"
#include "io/results.h"
#include "metrics/localization.h"
#include "metrics/metrics.h"
#include "metrics/similarity.h"
#include "saliency/postproc.h"
#include "saliency/saliency.h"
#include "saliency/xrai.h"
#include "sc.h"

#define MAX_METHODS 32
#define MAX_ROUNDS 15

/* Fixed-length strings of a 1-D dataset: names[k] (caller frees names[0] and names). */
static int read_names(hid_t f, const char *path, char ***names, int *count)
{
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0)
        return -1;
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(s, &n, NULL);
    size_t width = H5Tget_size(t);
    char *buf = calloc((size_t)n, width + 1), *packed = calloc((size_t)n, width);
    char **out = calloc((size_t)n + 1, sizeof *out);
    int rc = (buf && packed && out && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, packed) >= 0) ? 0 : -1;
    for (hsize_t k = 0; rc == 0 && k < n; k++) {
        memcpy(buf + k * (width + 1), packed + k * width, width);
        out[k] = buf + k * (width + 1);
    }
    free(packed);
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
    if (rc < 0) {
        free(buf);
        free(out);
        return -1;
    }
    *names = out;
    *count = (int)n;
    return 0;
}

static int bench(int argc, char **argv);

int main(int argc, char **argv)
{
    bench_blas_core(argv);
    MPI_Init(&argc, &argv); /* the results-file and logging layers ask for the rank */
    int rc = bench(argc, argv);
    MPI_Finalize();
    return rc;
}

static int bench(int argc, char **argv)
{
    const char *path = "build/bench-cell/results.h5", *data = NULL;
    int rounds = 5, npos = 0;
    for (int a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--rounds") && a + 1 < argc)
            rounds = atoi(argv[++a]);
        else if (npos == 0)
            path = argv[a], npos++;
        else
            data = argv[a], npos++;
    }
    if (rounds < 1 || rounds > MAX_ROUNDS)
        rounds = 5;
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        printf("bench_cellrest: no %s (run bash bench/cell_profile.sh first); nothing timed\n", path);
        return 0;
    }
    fclose(probe);
    char datadir[4096];
    if (data)
        snprintf(datadir, sizeof datadir, "%s", data);
    else {
        snprintf(datadir, sizeof datadir, "%s", path);
        char *slash = strrchr(datadir, '/');
        snprintf(slash ? slash + 1 : datadir, sizeof datadir - (size_t)(slash ? slash + 1 - datadir : 0),
                 "phantom");
    }

    /* names, masks, dimensions */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "bench_cellrest: cannot open %s\n", path);
        return 1;
    }
    char **methods = NULL, **ids = NULL;
    int M = 0, N = 0;
    if (read_names(f, "/methods/name", &methods, &M) < 0 || read_names(f, "/images/id", &ids, &N) < 0 ||
        M > MAX_METHODS) {
        fprintf(stderr, "bench_cellrest: %s has no /methods/name or /images/id\n", path);
        return 1;
    }
    hid_t dgt = H5Dopen2(f, "/images/gt", H5P_DEFAULT);
    hid_t sgt = H5Dget_space(dgt);
    hsize_t gdims[3];
    H5Sget_simple_extent_dims(sgt, gdims, NULL);
    const int H = (int)gdims[1], W = (int)gdims[2];
    const size_t hw = (size_t)H * W;
    uint8_t *gt = malloc((size_t)N * hw);
    H5Dread(dgt, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, gt);
    H5Sclose(sgt);
    H5Dclose(dgt);
    H5Fclose(f);

    results_t *res = NULL;
    if (results_open_readonly(path, &res) < 0) {
        fprintf(stderr, "bench_cellrest: cannot open %s as a results file\n", path);
        return 1;
    }
    int V = 0, N2 = 0;
    results_dims(res, &V, &N2);
    if (V < 2) {
        fprintf(stderr, "bench_cellrest: %s has %d variant(s); the pair timing needs 2\n", path, V);
        return 1;
    }
    /* the maps of image 0 for variants 0 and 1 */
    float *maps = malloc(sizeof(float) * hw * (size_t)M * 2);
    for (int v = 0; v < 2; v++)
        for (int k = 0; k < M; k++)
            if (results_read_map(res, k, v, 0, maps + ((size_t)v * M + k) * hw) < 0) {
                fprintf(stderr, "bench_cellrest: cannot read map %s of variant %d\n", methods[k], v);
                return 1;
            }

    /* the image as the cell saw it (inception convention, area resize) */
    char img[4200];
    snprintf(img, sizeof img, "%s/images/%s.png", datadir, ids[0]);
    float *x = malloc(sizeof(float) * 3 * hw), *gray = malloc(sizeof(float) * hw),
          *xn = malloc(sizeof(float) * 3 * hw);
    image_loader_t *loader = image_loader_create(H, IMAGE_RESIZE_AREA, IMAGE_NORM_INCEPTION);
    if (!loader || image_loader_load(loader, img, x, gray) < 0) {
        fprintf(stderr, "bench_cellrest: cannot load %s (pass DATA_DIR)\n", img);
        return 1;
    }
    for (size_t i = 0; i < hw; i++)
        for (int c = 0; c < 3; c++)
            xn[i * 3 + c] = x[(size_t)c * hw + i];

    /* raw maps for post-processing: the stored map with a random sign per channel */
    float *raw = malloc(sizeof(float) * 3 * hw), *out = malloc(sizeof(float) * hw);
    uint64_t s = 12345;
    postproc_ws_t *pws = NULL;
    xrai_ws_t *xws = NULL;
    xrai_params_t xp = xrai_params_default();
    metrics_ws_t *mws = metrics_ws_create(H, W);
    if (postproc_ws_create(&pws, H, W) < 0 || xrai_ws_create(&xws, H, W, 3, &xp) < 0 || !mws) {
        fprintf(stderr, "bench_cellrest: workspaces\n");
        return 1;
    }
    int k_ig = -1, k_ggcam = -1;
    for (int k = 0; k < M; k++) {
        k_ig = !strcmp(methods[k], "ig") ? k : k_ig;
        k_ggcam = !strcmp(methods[k], "ggcam") ? k : k_ggcam;
    }

    double t_post[MAX_ROUNDS], t_xrai[MAX_ROUNDS], t_loc[MAX_ROUNDS], t_read[MAX_ROUNDS];
    double t_sim[7][MAX_ROUNDS];
    const char *sim_names[7] = {"ssim", "spearman", "spearman_abs", "pearson", "hog", "", ""};
    volatile double sink = 0.0;
    sim_ssim_opts_t paper;
    sim_ssim_opts_default(&paper);
    for (int r = 0; r < rounds; r++) {
        /* post-processing of one cell: every method's raw map shape */
        double acc = 0.0, t0;
        for (int k = 0; k < M; k++) {
            const sal_method_t *meth = sal_method_find(methods[k]);
            const int c = meth && meth->per_channel ? 3 : 1;
            const float *m = maps + (size_t)k * hw;
            for (int ch = 0; ch < c; ch++)
                for (size_t i = 0; i < hw; i++) {
                    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                    raw[(size_t)ch * hw + i] = (s >> 63) ? -m[i] : m[i];
                }
            t0 = bench_cpu_now(); /* the raw map's making is not timed */
            if (k == k_ggcam)
                postproc_ggcam(pws, raw, 1, maps + (size_t)k * hw, 1, POSTPROC_CHW, out);
            else
                postproc_p1(pws, raw, c, POSTPROC_CHW, out);
            acc += bench_cpu_now() - t0;
            sink += out[hw / 2];
        }
        t_post[r] = acc;
        /* XRAI's regions: resize, six Felzenszwalb scales, dilation, greedy (the
         * workspace is kept across images, as a rank keeps it) */
        t0 = bench_cpu_now();
        xrai_map(xws, xn, maps + (size_t)(k_ig >= 0 ? k_ig : 0) * hw, out, NULL);
        t_xrai[r] = bench_cpu_now() - t0;
        sink += out[0];
        /* the per-map metrics of one cell */
        loc_opts_t lo;
        loc_opts_default(&lo);
        t0 = bench_cpu_now();
        for (int k = 0; k < M; k++) {
            loc_result_t lr;
            loc_all(mws, maps + (size_t)k * hw, gt, &lo, &lr);
            sink += lr.auprc;
        }
        t_loc[r] = bench_cpu_now() - t0;
        /* one pair: the map reads and each similarity over every method */
        t0 = bench_cpu_now();
        for (int k = 0; k < M; k++) {
            results_read_map(res, k, 0, 0, raw);
            results_read_map(res, k, 1, 0, raw + hw);
        }
        t_read[r] = bench_cpu_now() - t0;
        for (int q = 0; q < 5; q++) {
            t0 = bench_cpu_now();
            for (int k = 0; k < M; k++) {
                const float *a = maps + (size_t)k * hw, *b = maps + ((size_t)M + k) * hw;
                double val = NAN;
                switch (q) {
                case 0: sim_ssim(mws, a, b, &paper, &val); break;
                case 1: sim_spearman(mws, a, b, 0, &val); break;
                case 2: sim_spearman(mws, a, b, 1, &val); break;
                case 3: sim_pearson(mws, a, b, &val); break;
                case 4: sim_hog(mws, a, b, &val); break;
                }
                sink += val;
            }
            t_sim[q][r] = bench_cpu_now() - t0;
        }
    }
    double post = bench_median(t_post, rounds), xr = bench_median(t_xrai, rounds), loc = bench_median(t_loc, rounds),
           rd = bench_median(t_read, rounds), sims = 0.0;
    printf("bench_cellrest: %s, %d methods, %d x %d maps, median of %d rounds (CPU ms)\n", path, M, H,
           W, rounds);
    printf("| part | ms |\n|---|---|\n");
    printf("| post-processing, one cell (%d maps) | %.2f |\n", M, 1e3 * post);
    printf("| XRAI regions, one cell (masks + greedy) | %.2f |\n", 1e3 * xr);
    printf("| per-map metrics, one cell (loc_all x %d) | %.2f |\n", M, 1e3 * loc);
    printf("| pair: map reads (2 x %d) | %.2f |\n", M, 1e3 * rd);
    for (int q = 0; q < 5; q++) {
        double t = bench_median(t_sim[q], rounds);
        sims += t;
        printf("| pair: %s x %d methods | %.2f |\n", sim_names[q], M, 1e3 * t);
    }
    printf("| pair: all similarities | %.2f |\n", 1e3 * sims);
    printf("| cell total (post + XRAI regions + metrics) | %.2f |\n", 1e3 * (post + xr + loc));
    printf("| pair total (reads + similarities) | %.2f |\n", 1e3 * (rd + sims));
    if (sink == 12345.678)
        printf(" \n");
    results_close(res);
    metrics_ws_destroy(mws);
    postproc_ws_destroy(pws);
    xrai_ws_destroy(xws);
    image_loader_destroy(loader);
    free(methods[0]);
    free(methods);
    free(ids[0]);
    free(ids);
    free(gt);
    free(maps);
    free(x);
    free(gray);
    free(xn);
    free(raw);
    free(out);
    return 0;
}
