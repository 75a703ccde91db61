/*
 * bench_models.c - saliency throughput of the zoo architectures, the C side
 * of bench/bench_models.py (which runs PyTorch on the same weights next to it).
 *
 * For each architecture (ResNet-18/50 and DenseNet-121 at 224, InceptionV3 at
 * 299, 2 classes): forward, and forward + input gradient (one vanilla-gradient
 * map), at batch 1 and batch 8, and one 32-step Integrated-Gradients map (32
 * gradient evaluations in 4 batches of 8, docs/methods.md section 4). Every rank
 * runs the same measurement on its own images, as `salcheck run` spreads
 * images over ranks; throughput is the sum over ranks.
 *
 *   bench_models [--arch a,b] [--seconds S] [--save DIR]       (1 process)
 *   bench_models --sweep ...   input gradients only, at batch 8 and 16, unfolded
 *                              and with BN folded (nn_forward_fused), alternating
 *   bench_models --ab R B ...  R rounds of one unfolded and one folded gradient pass at
 *                              batch B, back to back: medians by the CPU clock
 *   mpirun -np 2 bench_models ...                               (2 ranks)
 *
 * Prints one "RESULT key=value ..." line per measurement (rank 0) with maps
 * per second by the wall clock and by the CPU clock (the second is robust on
 * a machine shared with other jobs), GFLOP per map (convolutions and dense
 * layers; the input gradient counts the data-gradient GEMMs), and the FP32
 * peak: the clock measured by a dependent-add loop x 2 FMA pipes x vector
 * lanes (16 with AVX-512, 8 with AVX2) x 2. --save DIR writes each model file
 * (DIR/bench_<arch>.h5) for the PyTorch side. Batch-norm statistics are set
 * from the activations of random images (one training-mode pass), as in a
 * trained network.
 */
#include <cblas.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/modelfile.h"
#include "nn/zoo.h"
#include "rng.h"
#include "sc.h"
#include "bench_util.h"

#define BENCH_IG_STEPS 32
#define BENCH_IG_BATCH 8

typedef struct bench_arch {
    const char *name;
    int size;
} bench_arch_t;

static const bench_arch_t archs[] = {
    {"resnet18", 224}, {"resnet50", 224}, {"densenet121", 224}, {"inceptionv3", 299}};

/* FLOPs of one forward pass per image (convolutions and dense layers). */
static double forward_flops(const nn_model_t *m)
{
    double flops = 0.0;
    for (int i = 1; i < m->n_nodes; i++) {
        const nn_node_t *nd = &m->nodes[i];
        const nn_node_t *src = &m->nodes[nd->in[0]];
        if (nd->op == NN_CONV)
            flops += 2.0 * nd->out_c * src->c * nd->kh * nd->kw * nd->h * nd->w;
        else if (nd->op == NN_DENSE)
            flops += 2.0 * nd->out_c * nn_node_size(src);
    }
    return flops;
}

/* Give the batch norms real statistics: momentum 1 for one training pass. */
static void calibrate_bn(nn_model_t *m, const float *x, int n)
{
    float *momentum = malloc(sizeof(float) * (size_t)m->n_nodes);
    for (int i = 1; i < m->n_nodes; i++) {
        momentum[i] = m->nodes[i].momentum;
        if (m->nodes[i].op == NN_BN)
            m->nodes[i].momentum = 1.0f;
    }
    nn_forward(m, x, n, 1);
    for (int i = 1; i < m->n_nodes; i++)
        m->nodes[i].momentum = momentum[i];
    free(momentum);
}

typedef struct measurement {
    long maps;
    double wall, cpu;
} measurement_t;

typedef enum task { TASK_FORWARD, TASK_GRADIENT, TASK_IG, TASK_GRADIENT_FUSED } task_t;

/* One unit of work: returns the number of maps it produced. */
static long run_task(nn_model_t *m, task_t task, int batch, const float *x, float *x_steps,
                     float *dx, int *targets)
{
    const size_t image = nn_node_size(&m->nodes[0]);
    nn_backward_opts_t o = {.input_grad = 1};
    if (task == TASK_FORWARD) {
        nn_forward(m, x, batch, 0);
        return batch;
    }
    if (task == TASK_GRADIENT_FUSED) { /* what saliency's batch passes run (nn/fuse.h) */
        nn_forward_fused(m, x, batch);
        nn_backward_logit(m, targets, dx, &o);
        return batch;
    }
    if (task == TASK_GRADIENT) {
        nn_forward(m, x, batch, 0);
        nn_backward_logit(m, targets, dx, &o);
        return batch;
    }
    /* IG: S points on the straight path from the baseline -1 to x, batched. */
    for (int s0 = 0; s0 < BENCH_IG_STEPS; s0 += BENCH_IG_BATCH) {
        for (int b = 0; b < BENCH_IG_BATCH; b++) {
            float alpha = (float)(s0 + b) / (BENCH_IG_STEPS - 1);
            float *xs = x_steps + (size_t)b * image;
            for (size_t i = 0; i < image; i++)
                xs[i] = -1.0f + alpha * (x[i] + 1.0f);
        }
        nn_forward(m, x_steps, BENCH_IG_BATCH, 0);
        nn_backward_logit(m, targets, dx, &o);
    }
    return 1;
}

/* COLLECTIVE: every rank measures for `seconds`; totals reduced to rank 0. */
static measurement_t measure(nn_model_t *m, task_t task, int batch, double seconds,
                             const float *x, float *x_steps, float *dx, int *targets)
{
    run_task(m, task, batch, x, x_steps, dx, targets); /* warm-up */
    MPI_Barrier(MPI_COMM_WORLD);
    double w0 = sc_now(), c0 = bench_cpu_now();
    long maps = 0;
    int iters = 0;
    while (iters < 2 || sc_now() - w0 < seconds) {
        maps += run_task(m, task, batch, x, x_steps, dx, targets);
        iters++;
    }
    double local[2] = {sc_now() - w0, bench_cpu_now() - c0};
    measurement_t r = {0, 0, 0};
    double rate_cpu = maps / local[1], total_rate_cpu = 0.0, wall_max = 0.0;
    MPI_Reduce(&maps, &r.maps, 1, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    MPI_Reduce(&local[0], &wall_max, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    MPI_Reduce(&rate_cpu, &total_rate_cpu, 1, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD);
    r.wall = wall_max;
    r.cpu = total_rate_cpu > 0 ? r.maps / total_rate_cpu : 0.0; /* so that maps/cpu = sum of rates */
    return r;
}

/* --ab R: R rounds of one unfolded and one folded input-gradient pass at
 * `batch`, back to back, by the CPU clock; the median of the per-round ratios
 * is robust to a load that drifts between rounds. */
static void ab_rounds(nn_model_t *m, const char *arch, int batch, int rounds, const float *x,
                      float *x_steps, float *dx, int *targets, double gflop, double peak)
{
    double t_unf[64], t_fus[64], ratio[64];
    if (rounds > 64)
        rounds = 64;
    run_task(m, TASK_GRADIENT, batch, x, x_steps, dx, targets);
    run_task(m, TASK_GRADIENT_FUSED, batch, x, x_steps, dx, targets);
    for (int r = 0; r < rounds; r++) {
        double c0 = bench_cpu_now();
        run_task(m, TASK_GRADIENT, batch, x, x_steps, dx, targets);
        double c1 = bench_cpu_now();
        run_task(m, TASK_GRADIENT_FUSED, batch, x, x_steps, dx, targets);
        double c2 = bench_cpu_now();
        t_unf[r] = (c1 - c0) / batch;
        t_fus[r] = (c2 - c1) / batch;
        ratio[r] = t_unf[r] / t_fus[r];
    }
    qsort(t_unf, (size_t)rounds, sizeof(double), bench_cmp_double);
    qsort(t_fus, (size_t)rounds, sizeof(double), bench_cmp_double);
    qsort(ratio, (size_t)rounds, sizeof(double), bench_cmp_double);
    double mu = t_unf[rounds / 2], mf = t_fus[rounds / 2];
    printf("AB arch=%s batch=%d rounds=%d unfolded_ms=%.1f folded_ms=%.1f "
           "speedup_median_of_rounds=%.3f speedup_min=%.3f speedup_max=%.3f "
           "peak_fraction_unfolded=%.3f peak_fraction_folded=%.3f\n",
           arch, batch, rounds, 1000 * mu, 1000 * mf, ratio[rounds / 2], ratio[0],
           ratio[rounds - 1], gflop / mu / peak, gflop / mf / peak);
    fflush(stdout);
}

static int bench_arch(const bench_arch_t *a, double seconds, const char *save_dir, int rank,
                      int ranks, double peak_core, int sweep, int ab, int ab_batch)
{
    int rc = 0;
    nn_model_t *m = NULL;
    float *x = NULL, *x_steps = NULL, *dx = NULL;
    int targets[16] = {0};
    const int max_batch = sweep || ab ? 16 : 8;
    CHECK_RC(zoo_build(a->name, a->size, 2, 1234, &m));
    const size_t image = (size_t)3 * a->size * a->size;
    x = sc_calloc(image * max_batch, sizeof(float));
    x_steps = sc_calloc(image * max_batch, sizeof(float));
    dx = sc_calloc(image * max_batch, sizeof(float));
    CHECK_ALLOC(x);
    CHECK_ALLOC(x_steps);
    CHECK_ALLOC(dx);
    /* The same calibration images on every rank, then each rank's own images. */
    for (int pass = 0; pass < 2; pass++) {
        rng_stream_t rs;
        rng_stream_init(&rs, rng_key(99, "bench images"), pass ? (uint32_t)rank + 1 : 0, 0, 0);
        for (size_t i = 0; i < image * max_batch; i++)
            x[i] = (float)(2.0 * rng_stream_uniform(&rs) - 1.0);
        if (pass == 0) {
            CHECK_RC(nn_model_prepare(m, 2));
            calibrate_bn(m, x, 2);
        }
    }
    if (save_dir && rank == 0) {
        char path[512];
        snprintf(path, sizeof path, "%s/bench_%s.h5", save_dir, a->name);
        CHECK_RC(modelfile_save(path, m, (const char *[]){"purpose", "bench_models", NULL}));
    }
    CHECK_RC(nn_model_prepare(m, max_batch));
    for (int i = 0; i < max_batch; i++)
        targets[i] = 1;
    const double gflop_fwd = forward_flops(m) * 1e-9;
    const double gflop_grad = 2.0 * gflop_fwd; /* data-gradient GEMMs = forward GEMMs */
    const struct {
        task_t task;
        int batch;
        const char *name;
        double gflop;
    } full[] = {
        {TASK_FORWARD, 1, "forward", gflop_fwd},
        {TASK_FORWARD, 8, "forward", gflop_fwd},
        {TASK_GRADIENT, 1, "gradient", gflop_grad},
        {TASK_GRADIENT, 8, "gradient", gflop_grad},
        {TASK_IG, BENCH_IG_BATCH, "ig32", BENCH_IG_STEPS * gflop_grad},
    }, gradients[] = {
        /* --sweep: the input gradient unfolded (the engine before nn/fuse.h) and
         * folded, alternating, at the batches saliency runs */
        {TASK_GRADIENT, 8, "gradient", gflop_grad},
        {TASK_GRADIENT_FUSED, 8, "gradient_fused", gflop_grad},
        {TASK_GRADIENT, 16, "gradient", gflop_grad},
        {TASK_GRADIENT_FUSED, 16, "gradient_fused", gflop_grad},
    }, *plan = sweep ? gradients : full;
    if (ab) {
        if (rank == 0)
            ab_rounds(m, a->name, ab_batch, ab, x, x_steps, dx, targets, gflop_grad, peak_core);
        goto cleanup;
    }
    const size_t n_plan = sweep ? sizeof gradients / sizeof gradients[0] : sizeof full / sizeof full[0];
    for (size_t p = 0; p < n_plan; p++) {
        measurement_t r = measure(m, plan[p].task, plan[p].batch, seconds, x, x_steps, dx,
                                  targets);
        if (rank != 0)
            continue;
        double rate_wall = r.maps / r.wall, rate_cpu = r.maps / r.cpu;
        printf("RESULT impl=salcheck arch=%s size=%d ranks=%d task=%s batch=%d maps=%ld "
               "maps_per_s_wall=%.3f maps_per_s_cpu=%.3f gflop_per_map=%.3f "
               "gflops_cpu=%.1f peak_fraction_cpu=%.3f\n",
               a->name, a->size, ranks, plan[p].name, plan[p].batch, r.maps, rate_wall, rate_cpu,
               plan[p].gflop, rate_cpu * plan[p].gflop,
               rate_cpu * plan[p].gflop / (peak_core * ranks));
        fflush(stdout);
    }
cleanup:
    sc_free(x);
    sc_free(x_steps);
    sc_free(dx);
    nn_model_destroy(m);
    return rc;
}

int main(int argc, char **argv)
{
    bench_blas_core(argv);
    MPI_Init(&argc, &argv);
    int rank = 0, ranks = 1, rc = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    sc_log_set_level(SC_LOG_WARN);
    double seconds = 2.0;
    const char *only = NULL, *save_dir = NULL;
    int sweep = 0, ab = 0, ab_batch = 8;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--arch") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--save") && i + 1 < argc)
            save_dir = argv[++i];
        else if (!strcmp(argv[i], "--sweep"))
            sweep = 1;
        else if (!strcmp(argv[i], "--ab") && i + 2 < argc) {
            ab = atoi(argv[++i]);
            ab_batch = atoi(argv[++i]);
            if (ab < 1 || ab_batch < 1 || ab_batch > 16)
                sweep = -1;
        } else {
            sweep = -1;
        }
        if (sweep < 0) {
            if (rank == 0)
                fprintf(stderr, "usage: bench_models [--arch a,b] [--seconds S] [--save DIR] "
                                "[--sweep | --ab ROUNDS BATCH]\n");
            MPI_Finalize();
            return 2;
        }
    }
    double ghz = bench_measure_ghz();
    const int lanes = bench_fma_lanes();
    const double peak_core = bench_peak_gflops(ghz);
    if (rank == 0) {
        printf("INFO ranks=%d openblas_core=%s openblas_threads=%d ghz=%.2f lanes=%d "
               "peak_gflops_per_core=%.1f\n",
               ranks, openblas_get_corename(), openblas_get_num_threads(), ghz, lanes, peak_core);
        fflush(stdout);
    }
    for (size_t a = 0; a < sizeof archs / sizeof archs[0] && rc == 0; a++) {
        if (only) {
            /* match a whole name in the comma-separated list */
            const char *p = strstr(only, archs[a].name);
            size_t len = strlen(archs[a].name);
            if (!p || (p != only && p[-1] != ',') || (p[len] && p[len] != ','))
                continue;
        }
        rc = bench_arch(&archs[a], seconds, save_dir, rank, ranks, peak_core, sweep, ab, ab_batch);
    }
    MPI_Finalize();
    return rc < 0 ? 1 : 0;
}
