/*
 * bench_saliency.c - the cost of each saliency method per image, on one
 * thread: CPU seconds of sal_compute + sal_postprocess, next to the method's
 * cost in gradient evaluations (what the scheduler balances with), and the
 * engine's own forward and forward+backward time as the unit.
 *
 *   bench_saliency [--arch democnn] [--size 128] [--batch 16] [--reps 1]
 *                  [--methods grad,sg,...] [--classes 2]
 *                  [--rise-masks N] [--eg-samples N] [--sg-samples N] [--steps S]
 *
 * The sample counts shrink the expensive methods for a quick measurement: their
 * time is linear in the count (the seconds per evaluation column), so the
 * full-size cost is that column times the method's default evaluations.
 *
 * Prints a Markdown table (bench/README-saliency.md holds the results). The
 * weights are the architecture's random initialization: the cost of a map
 * does not depend on them. Run with OPENBLAS_NUM_THREADS=1 for one thread.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/zoo.h"
#include "saliency/saliency.h"
#include "sc.h"
#include "bench_util.h"

/* CPU seconds of this process: on a shared machine the wall clock also counts
 * the other jobs' time slices; with one thread the CPU time is the cost. */
static void make_image(float *x, float *gray, int size)
{
    /* A smooth synthetic radiograph-like pattern, normalized as "inception". */
    for (int y = 0; y < size; y++)
        for (int i = 0; i < size; i++) {
            double u = (double)i / size, v = (double)y / size;
            double g = 0.5 + 0.3 * sin(9.0 * u) * cos(7.0 * v) + 0.1 * sin(40.0 * u * v);
            gray[y * size + i] = (float)(255.0 * g);
            for (int c = 0; c < 3; c++)
                x[(size_t)c * size * size + y * size + i] = (float)(2.0 * g - 1.0);
        }
}

int main(int argc, char **argv)
{
    bench_blas_core(argv);
    const char *arch = "democnn", *method_list = NULL;
    int size = 128, batch = 16, reps = 1, classes = 2;
    sal_params_t p = sal_params_default();
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--arch"))
            arch = argv[i + 1];
        else if (!strcmp(argv[i], "--size"))
            size = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch"))
            batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--methods"))
            method_list = argv[i + 1];
        else if (!strcmp(argv[i], "--classes"))
            classes = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rise-masks"))
            p.rise_masks = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--eg-samples"))
            p.eg_samples = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--sg-samples"))
            p.sg_samples = p.sig_samples = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--steps"))
            p.ig_steps = p.xrai_steps = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_saliency [--arch A] [--size N] [--batch B] [--reps R] "
                            "[--methods m,...] [--classes K] [--rise-masks N] [--eg-samples N] "
                            "[--sg-samples N] [--steps S]\n");
            return 2;
        }
    }
    if (reps < 1 || batch < 1) {
        fprintf(stderr, "bench_saliency: --reps and --batch must be >= 1\n");
        return 2;
    }
    sc_log_set_level(SC_LOG_WARN);
    nn_model_t *m = NULL;
    sal_ws_t *ws = NULL;
    if (zoo_build(arch, size, classes, 1, &m) < 0 || sal_ws_create(&ws, m, batch, NULL) < 0) {
        fprintf(stderr, "bench_saliency: cannot build %s at %d\n", arch, size);
        return 1;
    }
    const size_t hw = (size_t)size * size, chw = 3 * hw;
    float *x = calloc(chw, sizeof(float)), *gray = calloc(hw, sizeof(float));
    float *raw = calloc(chw, sizeof(float)), *map = calloc(hw, sizeof(float));
    float *xb = calloc((size_t)batch * chw, sizeof(float));
    float *dx = calloc((size_t)batch * chw, sizeof(float));
    int *targets = calloc((size_t)batch, sizeof(int));
    float *avg = calloc(hw, sizeof(float));
    make_image(x, gray, size);
    for (size_t i = 0; i < hw; i++)
        avg[i] = gray[i] / 255.0f;
    sal_ws_set_avgmask(ws, avg);
    {
        /* Expected Gradients' reference images: the pattern mirrored and inverted. */
        float *pool = calloc(2 * chw, sizeof(float));
        for (size_t i = 0; i < chw; i++) {
            size_t c = i / hw, y = (i % hw) / size, xx = i % size;
            pool[i] = x[c * hw + y * size + (size - 1 - xx)];
            pool[chw + i] = -x[i];
        }
        sal_ws_set_baselines(ws, pool, 2);
        free(pool);
    }
    for (int b = 0; b < batch; b++)
        memcpy(xb + (size_t)b * chw, x, sizeof(float) * chw);

    /* The unit: forward, and forward + input-gradient backward, per image. */
    nn_backward_opts_t o = {.input_grad = 1};
    double t0 = bench_cpu_now();
    for (int r = 0; r < reps; r++)
        nn_forward(m, x, 1, 0);
    double t_fwd = (bench_cpu_now() - t0) / reps;
    t0 = bench_cpu_now();
    for (int r = 0; r < reps; r++) {
        nn_forward(m, x, 1, 0);
        nn_backward_logit(m, targets, dx, &o);
    }
    double t_grad1 = (bench_cpu_now() - t0) / reps;
    t0 = bench_cpu_now();
    for (int r = 0; r < reps; r++) {
        nn_forward(m, xb, batch, 0);
        nn_backward_logit(m, targets, dx, &o);
    }
    double t_gradb = (bench_cpu_now() - t0) / reps / batch;

    printf("### %s, %dx%d, %zu trainable parameters, batch %d, 1 thread\n\n", arch, size, size,
           nn_count_trainable(m), batch);
    printf("forward %.4f s; gradient (forward + backward) %.4f s at batch 1, %.4f s per image at "
           "batch %d\n\n", t_fwd, t_grad1, t_gradb, batch);
    printf("| method | gradient evaluations | seconds per image | seconds per evaluation |\n");
    printf("|---|---:|---:|---:|\n");
    sal_key_t key = {.seed = 1, .variant = 0, .image = 0};
    double total = 0;
    for (const sal_method_t *meth = sal_methods(); meth->name; meth++) {
        if (method_list) {
            char pat[64];
            snprintf(pat, sizeof pat, ",%s,", meth->name);
            char list[512];
            snprintf(list, sizeof list, ",%s,", method_list);
            if (!strstr(list, pat))
                continue;
        }
        t0 = bench_cpu_now();
        for (int r = 0; r < reps; r++) {
            int rc = sal_compute(meth, &p, m, ws, x, SAL_TARGET_PREDICTED, gray, key, raw);
            if (rc == 0)
                sal_postprocess(meth, ws, raw, map);
            else if (rc != SC_ERR_UNDEFINED) {
                fprintf(stderr, "bench_saliency: %s failed (%s)\n", meth->name, sc_strerror(rc));
                return 1;
            }
        }
        double secs = (bench_cpu_now() - t0) / reps, cost = sal_cost_model(meth, &p, m);
        total += secs;
        if (cost > 0)
            printf("| %s | %.4g | %.3f | %.4f |\n", meth->name, cost, secs, secs / cost);
        else
            printf("| %s | 0 | %.4f | - |\n", meth->name, secs);
        fflush(stdout);
    }
    printf("\nall methods above: %.1f s per image\n", total);
    free(x);
    free(gray);
    free(raw);
    free(map);
    free(xb);
    free(dx);
    free(targets);
    free(avg);
    sal_ws_destroy(ws);
    nn_model_destroy(m);
    return 0;
}
