/*
 * test_vit.c - vision transformers through the ONNX importer: torchvision's
 * VisionTransformer (small: 32x32, 2 layers, at opsets 13 (LayerNorm and GELU
 * as decomposed chains) and 17 (LayerNormalization); `test_vit full` adds
 * opset 11 and vit_b_16 at 224), against PyTorch float64: logits, input
 * gradient, Grad-CAM on the token grid; guided backprop (no ReLU: the
 * gradient), IG completeness, the model file round trip, the blocks of
 * cascading randomization, and (full) the time of one gradient next to
 * PyTorch's.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/model.h"
#include "nn/modelfile.h"
#include "nn/onnx_import.h"
#include "nnhelp.h"
#include "rng.h"
#include "saliency/saliency.h"
#include "sc.h"
#include "testhelp.h"
#include "tokhelp.h"

static const char *spec = "small";
static int size = 32;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int export_vit(int opset, char *path, size_t len)
{
    return tok_export("tests/ref/vit_torch_ref.py", "vit", spec, opset, 7, path, len);
}

/* The other CAM methods on the token grid, compared for the small ViT. */
static const char *const token_cams[] = {"layercam", "hirescam", "xgradcam", "eigencam",
                                         "scorecam"};
static int n_cams(void) { return strcmp(spec, "small") ? 1 : 6; }

/* Runs the float64 reference on n images; returns a buffer of n rows of
 * [2 logits, 3*size*size gradient, n_cams() size*size CAMs] (caller frees) or NULL. */
static double *reference(const char *onnx_path, const float *x, int n, int target)
{
    const size_t chw = 3 * (size_t)size * size, row = 2 + chw + (size_t)n_cams() * size * size;
    return tok_reference("tests/ref/vit_torch_ref.py", "vit", spec, onnx_path, x, (size_t)n * chw,
                         n, target, row * n);
}

static void check_opset(int opset)
{
    char path[512];
    if (export_vit(opset, path, sizeof path) < 0)
        TH_SKIP("the export failed (python3-torch, torchvision, onnx for %s)", th_python());
    nn_model_t *m = NULL;
    onnx_import_info_t info;
    TH_CHECK(onnx_import_file(path, &(onnx_import_opts_t){.normalize = "unit"}, &m, &info) == 0,
             "import of %s", path);
    if (!m)
        return;
    printf("    opset %d: %d ONNX nodes -> %d layers\n", opset, info.onnx_nodes,
           info.imported_nodes);
    const int n = 2, target = 1;
    const size_t chw = 3 * (size_t)size * size, hw = (size_t)size * size;
    const size_t row = 2 + chw + (size_t)n_cams() * hw;
    float *x = malloc(sizeof(float) * n * chw), *g = malloc(sizeof(float) * chw);
    float *gg = malloc(sizeof(float) * chw), *cam = malloc(sizeof(float) * hw);
    float *ig = malloc(sizeof(float) * chw), *zero = calloc(chw, sizeof(float));
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(11, "vit"), 0, 0, 0);
    for (size_t i = 0; i < n * chw; i++)
        x[i] = (float)rng_stream_uniform(&rs);
    double *ref = reference(path, x, n, target);
    TH_CHECK(ref != NULL, "reference script failed");
    sal_ws_t *ws = NULL;
    TH_CHECK(sal_ws_create(&ws, m, 1, "unit") == 0, "workspace");
    for (int b = 0; ref && ws && b < n; b++) {
        const float *xb = x + b * chw;
        const double *rb = ref + b * row;
        double t0 = now();
        TH_CHECK(sal_gradient(ws, xb, target, 0, g) == 0, "gradient");
        double t_grad = now() - t0;
        double e_logit = tok_rel_l2_d(nn_output(m), rb, 2), e_grad = tok_rel_l2_d(g, rb + 2, chw);
        printf("    opset %d image %d: logits rel. L2 %.2e, input gradient %.2e (%.3f s)\n",
               opset, b, e_logit, e_grad, t_grad);
        TH_CHECK(e_logit < 1e-4, "logits differ from PyTorch float64: %.3g", e_logit);
        TH_CHECK(e_grad < 1e-4, "input gradient differs from PyTorch float64: %.3g", e_grad);
        /* Grad-CAM at the last block's input norm on the token grid */
        TH_CHECK(sal_gradcam(ws, xb, target, "", 0, cam) == 0, "gcam");
        double e_cam = tok_rel_l2_d(cam, rb + 2 + chw, hw);
        printf("    opset %d image %d: gcam rel. L2 %.2e\n", opset, b, e_cam);
        TH_CHECK(e_cam < 1e-4, "Grad-CAM differs from the reference: %.3g", e_cam);
        /* the other CAM methods on the same token grid (pytorch-grad-cam's definitions) */
        sal_params_t p = sal_params_default();
        for (int k = 0; k + 1 < n_cams(); k++) {
            int rc = sal_compute(sal_method_find(token_cams[k]), &p, m, ws, xb, target, NULL,
                                 (sal_key_t){11, 0, 0}, cam);
            const double *r = rb + 2 + chw + (size_t)(k + 1) * hw;
            if (isnan(r[0])) { /* the reference CAM is zero everywhere: undefined */
                printf("    opset %d image %d: %s undefined (zero everywhere) in both\n", opset,
                       b, token_cams[k]);
                TH_CHECK(rc == SC_ERR_UNDEFINED, "%s: defined (rc %d) where the reference's "
                         "CAM is zero everywhere", token_cams[k], rc);
                continue;
            }
            double e = tok_rel_l2_d(cam, r, hw);
            printf("    opset %d image %d: %s rel. L2 %.2e\n", opset, b, token_cams[k], e);
            TH_CHECK(rc == 0 && e < 1e-4, "%s on the token grid differs from the reference: "
                     "%.3g (rc %d)", token_cams[k], e, rc);
        }
        /* guided backprop: no ReLU in a ViT, so the gradient itself */
        TH_CHECK(sal_gradient(ws, xb, target, 1, gg) == 0, "guided gradient");
        TH_CHECK(memcmp(g, gg, sizeof(float) * chw) == 0, "guided backprop differs from the "
                 "gradient in a model without ReLU");
        /* IG from black: sum of attributions = logit(x) - logit(0) */
        TH_CHECK(sal_integrated_gradients(ws, xb, zero, 32, SAL_IG_GAUSS_LEGENDRE, target, ig)
                 == 0, "ig");
        double sum = 0.0;
        for (size_t i = 0; i < chw; i++)
            sum += ig[i];
        nn_forward(m, zero, 1, 0);
        double f0 = nn_output(m)[target];
        nn_forward(m, xb, 1, 0);
        double f1 = nn_output(m)[target];
        TH_NEAR(sum, f1 - f0, 1e-3, 1e-4 * fabs(f1));
    }
    /* a batch of two in one pass: the same logits and gradients as one at a time */
    float *dx2 = malloc(sizeof(float) * 2 * chw);
    if (ref && dx2 && nn_model_prepare(m, 2) == 0 && nn_forward(m, x, 2, 0) == 0) {
        nn_backward_opts_t o = {.input_grad = 1};
        for (int b = 0; b < 2; b++) {
            double e = tok_rel_l2_d(nn_output(m) + 2 * b, ref + b * row, 2);
            TH_CHECK(e < 1e-4, "logits of image %d in a batch of two: %.3g", b, e);
        }
        TH_CHECK(nn_backward_logit(m, (int[]){target, target}, dx2, &o) == 0, "batch backward");
        for (int b = 0; b < 2; b++) {
            double e = tok_rel_l2_d(dx2 + b * chw, ref + b * row + 2, chw);
            TH_CHECK(e < 1e-4, "gradient of image %d in a batch of two: %.3g", b, e);
        }
    }
    free(dx2);
    /* the model file keeps the ops and shapes: the same logits */
    char h5[512];
    snprintf(h5, sizeof h5, "%s/vit_%s_%d.h5", th_tmp_dir(), spec, opset);
    nn_model_t *back = NULL;
    TH_CHECK(modelfile_save(h5, m, NULL) == 0 && modelfile_load(h5, &back) == 0, "round trip");
    if (back && ws) {
        float y[2];
        nn_forward(m, x, 1, 0);
        memcpy(y, nn_output(m), sizeof y);
        nn_model_prepare(back, 1);
        nn_forward(back, x, 1, 0);
        TH_CHECK(!memcmp(y, nn_output(back), sizeof y), "logits after the model file round trip");
        TH_CHECK(!strcmp(back->gradcam_layer, m->gradcam_layer), "Grad-CAM layer kept");
    }
    /* blocks of cascading randomization: one per encoder layer */
    const char *names[64];
    int nb = nn_blocks(m, names, 64), layers = 0;
    for (int i = 0; i < nb; i++)
        layers += !strncmp(names[i], "encoder.layers.encoder_layer_", 29);
    TH_CHECK(layers == (strcmp(spec, "small") ? 12 : 2), "%d encoder-layer blocks", layers);
    TH_CHECK(strstr(m->gradcam_layer, "encoder_layer_") && strstr(m->gradcam_layer, ".ln_1"),
             "default Grad-CAM layer %s", m->gradcam_layer);
    if (!strcmp(spec, "small") && ws) {
        float before[2];
        nn_forward(m, x, 1, 0);
        memcpy(before, nn_output(m), sizeof before);
        TH_CHECK(nn_model_reinit_block(m, "encoder.layers.encoder_layer_1", 3, 0) == 0, "reinit");
        nn_forward(m, x, 1, 0);
        TH_CHECK(memcmp(before, nn_output(m), sizeof before) != 0,
                 "re-initializing the last encoder layer changes the logits");
    }
    if (strcmp(spec, "small") && ws) { /* the speed of one gradient next to PyTorch's */
        double t[5];
        for (int r = 0; r < 5; r++) {
            double t0 = now();
            sal_gradient(ws, x, target, 0, g);
            t[r] = now() - t0;
        }
        for (int i = 0; i < 5; i++)
            for (int j = i + 1; j < 5; j++)
                if (t[j] < t[i]) {
                    double s = t[i]; t[i] = t[j]; t[j] = s;
                }
        char cmd[1024], pt[512];
        snprintf(pt, sizeof pt, "%.*s.pt", (int)strlen(path) - 5, path);
        snprintf(cmd, sizeof cmd, "%s tests/ref/vit_torch_ref.py time %s %s 1 5", th_python(),
                 spec, pt);
        FILE *p = popen(cmd, "r");
        double t_torch = 0.0;
        if (p && fscanf(p, "%lf", &t_torch) != 1)
            t_torch = 0.0;
        if (p)
            pclose(p);
        printf("    one input gradient at batch 1: salcheck %.3f s, PyTorch float32 %.3f s "
               "(median of 5)\n", t[2], t_torch);
    }
    sal_ws_destroy(ws);
    nn_model_destroy(back);
    nn_model_destroy(m);
    free(ref);
    free(x); free(g); free(gg); free(cam); free(ig); free(zero);
}

/* ConvNeXt's channels-last LayerNorm and MLP on a [1, H, W, C] permuted map. */
static void test_channels_last(void)
{
    const char *keep = spec;
    spec = "channels_last";
    for (int opset = 13; opset <= 13; opset++) { /* the decomposed chain; 17 as in the ViT */
        char path[512];
        if (export_vit(opset, path, sizeof path) < 0)
            TH_SKIP("the export failed (python3-torch, onnx for %s)", th_python());
        nn_model_t *m = NULL;
        TH_CHECK(onnx_import_file(path, &(onnx_import_opts_t){.normalize = "unit"}, &m, NULL)
                 == 0, "import of %s", path);
        if (!m)
            break;
        const size_t chw = 3 * (size_t)size * size, row = 2 + chw + (size_t)size * size;
        float *x = malloc(sizeof(float) * chw), *g = malloc(sizeof(float) * chw);
        rng_stream_t rs;
        rng_stream_init(&rs, rng_key(12, "cl"), 0, 0, 0);
        for (size_t i = 0; i < chw; i++)
            x[i] = (float)rng_stream_uniform(&rs);
        double *ref = reference(path, x, 1, 0);
        sal_ws_t *ws = NULL;
        TH_CHECK(ref && sal_ws_create(&ws, m, 1, "unit") == 0, "reference and workspace");
        if (ref && ws && sal_gradient(ws, x, 0, 0, g) == 0) {
            double e_logit = tok_rel_l2_d(nn_output(m), ref, 2);
            double e_grad = tok_rel_l2_d(g, ref + 2, chw);
            printf("    channels-last opset %d: logits rel. L2 %.2e, input gradient %.2e\n",
                   opset, e_logit, e_grad);
            TH_CHECK(e_logit < 1e-4 && e_grad < 1e-4, "differs from PyTorch float64");
        }
        (void)row;
        sal_ws_destroy(ws);
        nn_model_destroy(m);
        free(ref);
        free(x);
        free(g);
    }
    spec = keep;
}

static void test_vit_opset11(void) { check_opset(11); }
static void test_vit_opset13(void) { check_opset(13); }
static void test_vit_opset17(void) { check_opset(17); }

int main(int argc, char **argv)
{
    sc_log_set_level(SC_LOG_WARN);
    if (!th_python_has("torch, torchvision, onnx, numpy")) {
        TH_RUN(test_vit_opset13); /* reports the skip */
        return th_report();
    }
    if (argc > 1 && !strcmp(argv[1], "full")) {
        TH_RUN(test_vit_opset11); /* the small model at opset 11, then ViT-B/16 */
        spec = "vit_b_16";
        size = 224;
        TH_RUN(test_vit_opset13);
        return th_report();
    }
    TH_RUN(test_vit_opset13);
    TH_RUN(test_vit_opset17);
    TH_RUN(test_channels_last);
    return th_report();
}
