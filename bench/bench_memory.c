/*
 * bench_memory.c - workspace setup time and peak resident memory of one
 * saliency workspace: builds a zoo architecture, times sal_ws_create (which
 * plans and allocates the model's buffers), runs one batch of input
 * gradients (forward + backward from the logits, the step every gradient
 * method repeats) and reports the peak resident size of the process.
 *
 *   bench_memory --arch inceptionv3 --size 320 --batch 16 [--classes 2]
 *   bench_memory --onnx MODEL.onnx --batch 1    (an imported model instead of a zoo one)
 *
 * Prints one line: arch, size, batch, setup seconds (wall and CPU: user +
 * system, which a loaded machine does not inflate), the planned
 * runtime bytes (nn_model_runtime_bytes), the resident size after setup and
 * after the pass, and the peak (VmHWM). bench/bench_memory.py runs it next to
 * PyTorch; bench/README.md holds the results. Run with OPENBLAS_NUM_THREADS=1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/onnx_import.h"
#include "nn/zoo.h"
#include "saliency/saliency.h"
#include "sc.h"
#include "bench_util.h"

int main(int argc, char **argv)
{
    const char *arch = "democnn", *onnx = NULL;
    int size = 128, batch = 16, classes = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--arch")) arch = argv[i + 1];
        else if (!strcmp(argv[i], "--size")) size = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--classes")) classes = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--onnx")) onnx = argv[i + 1];
        else {
            fprintf(stderr, "usage: bench_memory [--arch A] [--size S] [--batch B] [--classes C] "
                            "[--onnx MODEL.onnx]\n");
            return 2;
        }
    }
    nn_model_t *m = NULL;
    sal_ws_t *ws = NULL;
    if (onnx) {
        if (onnx_import_file(onnx, &(onnx_import_opts_t){.normalize = "unit"}, &m, NULL) < 0) {
            fprintf(stderr, "bench_memory: cannot import %s\n", onnx);
            return 1;
        }
        arch = onnx;
        size = m->nodes[0].h;
    } else if (zoo_build(arch, size, classes, 1, &m) < 0) {
        fprintf(stderr, "bench_memory: cannot build %s at %d\n", arch, size);
        return 1;
    }
    const double rss_model = sal_status_bytes("VmRSS");
    const double t0 = sc_now(), c0 = bench_cpu_now();
    if (sal_ws_create(&ws, m, batch, NULL) < 0) {
        fprintf(stderr, "bench_memory: workspace failed\n");
        return 1;
    }
    const double setup = sc_now() - t0, setup_cpu = bench_cpu_now() - c0;
    const double rss_setup = sal_status_bytes("VmRSS");
    const size_t in_count = (size_t)batch * nn_node_size(&m->nodes[0]);
    float *x = malloc(sizeof(float) * in_count), *dx = malloc(sizeof(float) * in_count);
    int *targets = calloc((size_t)batch, sizeof(int));
    for (size_t k = 0; k < in_count; k++)
        x[k] = (float)((k * 2654435761u) % 1000) / 500.0f - 1.0f;
    nn_backward_opts_t o = {.input_grad = 1};
    const double t1 = sc_now();
    if (nn_forward(m, x, batch, 0) < 0 || nn_backward_logit(m, targets, dx, &o) < 0) {
        fprintf(stderr, "bench_memory: pass failed\n");
        return 1;
    }
    const double pass = sc_now() - t1;
    printf("arch=%s size=%d batch=%d setup_s=%.3f setup_cpu_s=%.3f pass_s=%.2f planned_mb=%.0f "
           "planned_bytes=%zu planned_train_bytes=%zu "
           "model_rss_mb=%.0f setup_rss_mb=%.0f peak_mb=%.0f\n",
           arch, size, batch, setup, setup_cpu, pass,
           (double)nn_model_runtime_bytes(m, batch, NN_PLAN_INFER) / 1048576.0,
           nn_model_runtime_bytes(m, batch, NN_PLAN_INFER),
           nn_model_runtime_bytes(m, batch, NN_PLAN_TRAIN),
           rss_model / 1048576.0, rss_setup / 1048576.0, sal_status_bytes("VmHWM") / 1048576.0);
    free(x);
    free(dx);
    free(targets);
    sal_ws_destroy(ws);
    nn_model_destroy(m);
    return 0;
}
