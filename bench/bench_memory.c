/*
 * bench_memory.c - workspace setup time and peak resident memory of one
 * saliency workspace: builds a zoo architecture, times sal_ws_create (which
 * plans and allocates the model's buffers), runs one batch of input
 * gradients (the fused forward, nn_forward_fused, and the backward from the
 * logits: the step every gradient method repeats) and reports the peak
 * resident size of the process. --unfused 1 runs the plain forward
 * (nn_forward) instead: on DenseNet it writes the BN and ReLU outputs that
 * the fused pass applies inside the 1x1 convolutions' packing (nn/fuse.h).
 *
 *   bench_memory --arch inceptionv3 --size 320 --batch 16 [--classes 2] [--unfused 1]
 *   bench_memory --onnx MODEL.onnx --batch 1    (an imported model instead of a zoo one)
 *
 * The methods mode: what a rank of `salcheck run` holds for one image of a
 * method list, whole process (MPI initialized, as a run's rank is):
 *
 *   bench_memory --methods grad,sg,ig,sig,gbp,gcam,ggcam,xrai,random,sobel,avgmask
 *                --arch inceptionv3 --size 320 [--batch B | --budget MB] [--quick 1]
 *                [--save-input X.f32]
 *
 * The model is built, its base parameters copied (as the run keeps them), the
 * batch taken from --batch, from a per-rank budget (--budget: `[job]
 * memory_per_rank`, chosen with the run's estimate: sal_method_fixed_bytes
 * and sal_batch_for_memory over the resident size), or the run's default
 * (16 up to 160 px, 8 above). One workspace, the average mask set; then
 * each method on one phantom radiograph at the paper's parameters
 * (sal_params_default), its map post-processed. --quick 1 cuts the sample
 * counts to one full engine batch (sg: min(25, batch) samples, sig: one
 * noisy copy, xrai: min(100, batch) steps per baseline): the buffers a
 * method touches are those of its largest engine call, so the peak is the
 * same, in a fraction of the time. Prints the peak (VmHWM) after each method
 * and the budget's own figures (resident before the workspace, planned).
 * --save-input writes the normalized input [3,S,S] for bench_memory.py's
 * PyTorch side.
 *
 * Prints one line: arch, size, batch, setup seconds (wall and CPU: user +
 * system, which a loaded machine does not inflate), the planned
 * runtime bytes (nn_model_runtime_bytes), the resident size after setup and
 * after the pass, and the peak (VmHWM). bench/bench_memory.py runs it next to
 * PyTorch; bench/README.md holds the results. Run with OPENBLAS_NUM_THREADS=1.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/onnx_import.h"
#include "nn/zoo.h"
#include "phantom/phantom.h"
#include "saliency/saliency.h"
#include "sc.h"
#include "bench_util.h"

#define MB(bytes) ((double)(bytes) / 1048576.0)

/* The methods mode (see the header). batch 0: the run's default or the budget's. */
static int methods_mode(const char *arch, int size, int classes, int batch, double budget_mb,
                        int quick, const char *list, const char *save_input)
{
    int rc = 1;
    nn_model_t *m = NULL;
    sal_ws_t *ws = NULL;
    float *base = NULL, *x = NULL, *raw = NULL, *map = NULL, *gray = NULL, *avgmask = NULL;
    uint8_t *img = NULL;
    phantom_t *ph = NULL;
    const double rss_start = sal_status_bytes("VmRSS");
    if (zoo_build(arch, size, classes, 1, &m) < 0) {
        fprintf(stderr, "bench_memory: cannot build %s at %d\n", arch, size);
        goto done;
    }
    const double rss_model = sal_status_bytes("VmRSS");
    /* the batch, as salcheck run chooses it (cmd_run.c): the resident size before the base
     * parameters' copy, plus that copy and what the methods hold once per model */
    const sal_params_t params = sal_params_default();
    double held = sizeof(float) * (double)m->n_params;
    char names[1024];
    snprintf(names, sizeof names, "%s", list);
    for (char *t = strtok(names, ","); t; t = strtok(NULL, ","))
        held += (double)sal_method_fixed_bytes(m, t, &params);
    double resident = sal_resident_bytes();
    if (budget_mb > 0) {
        snprintf(names, sizeof names, "%s", list);
        for (char *t = strtok(names, ","); t; t = strtok(NULL, ","))
            if (sal_budget_method(&m, 1, t) < 0)
                goto done;
        if (sal_batch_for_memory(&m, 1, budget_mb * 1048576.0, resident + held, 256, "bench",
                                 &batch) < 0)
            goto done;
    } else if (batch < 1) {
        batch = size <= 160 ? 16 : 8;
    }
    base = malloc(sizeof(float) * m->n_params); /* the run's base_params */
    if (!base)
        goto done;
    memcpy(base, m->params, sizeof(float) * m->n_params);
    const double planned = resident + held + (double)sal_ws_bytes(m, batch);
    if (sal_ws_create(&ws, m, batch, NULL) < 0)
        goto done;
    const size_t hw = (size_t)size * size, chw = nn_node_size(&m->nodes[0]);
    x = malloc(sizeof(float) * chw);
    raw = malloc(sizeof(float) * chw);
    map = malloc(sizeof(float) * hw);
    gray = malloc(sizeof(float) * hw);
    avgmask = calloc(hw, sizeof(float));
    img = malloc(hw);
    phantom_config_t pc;
    phantom_config_default(&pc);
    pc.size = size;
    ph = phantom_create(&pc);
    phantom_info_t info;
    if (!x || !raw || !map || !gray || !avgmask || !img || !ph ||
        phantom_render(ph, 1, img, &info, NULL, NULL) < 0)
        goto done;
    for (size_t q = 0; q < hw; q++) {
        gray[q] = img[q];
        avgmask[q] = (q / size > (size_t)size / 4 && q / size < (size_t)size * 3 / 4) ? 0.5f : 0.0f;
        for (int c = 0; c < ws->c; c++)
            x[c * hw + q] = (float)img[q] / 127.5f - 1.0f; /* inception normalization */
    }
    if (save_input) {
        FILE *f = fopen(save_input, "wb");
        if (!f || fwrite(x, sizeof(float), chw, f) != chw) {
            fprintf(stderr, "bench_memory: cannot write %s\n", save_input);
            if (f)
                fclose(f);
            goto done;
        }
        fclose(f);
    }
    if (sal_ws_set_avgmask(ws, avgmask) < 0)
        goto done;
    sal_params_t p = sal_params_default();
    if (quick) {
        p.sg_samples = batch < p.sg_samples ? batch : p.sg_samples;
        p.sig_samples = 1;
        p.xrai_steps = batch < p.xrai_steps ? batch : p.xrai_steps;
    }
    int target = 0;
    if (sal_target(ws, x, SAL_TARGET_PREDICTED, &target, NULL) < 0)
        goto done;
    printf("arch=%s size=%d batch=%d budget_mb=%.0f quick=%d params_mb=%.1f start_mb=%.0f "
           "model_mb=%.0f resident_mb=%.0f held_mb=%.0f planned_mb=%.0f setup_mb=%.0f\n", arch,
           size, batch, budget_mb, quick, MB(sizeof(float) * m->n_params), MB(rss_start),
           MB(rss_model), MB(resident), MB(held), MB(planned), MB(sal_status_bytes("VmRSS")));
    snprintf(names, sizeof names, "%s", list);
    for (char *t = strtok(names, ","); t; t = strtok(NULL, ",")) {
        const sal_method_t *meth = sal_method_find(t);
        if (!meth) {
            fprintf(stderr, "bench_memory: unknown method %s\n", t);
            goto done;
        }
        const double t0 = sc_now();
        const sal_key_t key = {0};
        int r = sal_compute(meth, &p, m, ws, x, target, gray, key, raw);
        if (r < 0 && r != SC_ERR_UNDEFINED)
            goto done;
        if (r >= 0)
            sal_postprocess(meth, ws, raw, map);
        printf("method=%s seconds=%.1f rss_mb=%.0f peak_mb=%.0f\n", t, sc_now() - t0,
               MB(sal_status_bytes("VmRSS")), MB(sal_status_bytes("VmHWM")));
        fflush(stdout);
    }
    printf("batch=%d planned_mb=%.0f peak_mb=%.0f\n", batch, MB(planned),
           MB(sal_status_bytes("VmHWM")));
    rc = 0;
done:
    phantom_destroy(ph);
    sal_ws_destroy(ws);
    nn_model_destroy(m);
    free(base);
    free(x);
    free(raw);
    free(map);
    free(gray);
    free(avgmask);
    free(img);
    return rc;
}

int main(int argc, char **argv)
{
    bench_blas_core(argv);
    const char *arch = "democnn", *onnx = NULL, *methods = NULL, *save_input = NULL;
    int size = 128, batch = 16, classes = 2, quick = 0, batch_given = 0, unfused = 0;
    double budget_mb = 0.0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--arch")) arch = argv[i + 1];
        else if (!strcmp(argv[i], "--size")) size = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]), batch_given = 1;
        else if (!strcmp(argv[i], "--classes")) classes = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--onnx")) onnx = argv[i + 1];
        else if (!strcmp(argv[i], "--methods")) methods = argv[i + 1];
        else if (!strcmp(argv[i], "--budget")) budget_mb = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--quick")) quick = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--unfused")) unfused = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--save-input")) save_input = argv[i + 1];
        else {
            fprintf(stderr, "usage: bench_memory [--arch A] [--size S] [--batch B] [--classes C] "
                            "[--onnx MODEL.onnx] [--unfused 1] [--methods LIST [--budget MB] "
                            "[--quick 1] [--save-input X.f32]]\n");
            return 2;
        }
    }
    if (methods) {
        /* a run's rank: MPI initialized (its shared-memory transport is resident too) */
        MPI_Init(&argc, &argv);
        sc_log_set_level(SC_LOG_WARN);
        const int rc = methods_mode(arch, size, classes, batch_given ? batch : 0, budget_mb,
                                    quick, methods, save_input);
        MPI_Finalize();
        return rc;
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
    const int fwd = unfused ? nn_forward(m, x, batch, 0) : nn_forward_fused(m, x, batch);
    if (fwd < 0 || nn_backward_logit(m, targets, dx, &o) < 0) {
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
