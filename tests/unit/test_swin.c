/*
 * test_swin.c - Swin transformers through the ONNX importer: torchvision's
 * SwinTransformer (small: 32x32, two stages, window 4, a shifted block with
 * its attention mask, at opsets 13 and 17; `test_swin full` runs swin_t at
 * 224 at opsets 13 and 17) against PyTorch float64, computed by
 * tests/ref/swin_torch_ref.py: logits, the input gradient, Integrated
 * Gradients (10 steps from 0) and Grad-CAM at the last stage's norm laid on
 * its grid, each to 1e-4 relative L2 or 3x PyTorch float32's own error where
 * that is looser (the output says which bound applied); Guided Backprop
 * (no ReLU in a Swin: the gradient); the model file round trip; the blocks
 * of cascading randomization (features.N); re-initializing a block changes
 * the logits but not the fixed shifted-window mask.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
/* the last reference computed, for the next opset (freed by main) */
static double *kept_ref;
static float kept_x[3 * 224 * 224];
static int kept_target = -1, kept_size;

static int export_swin(int opset, char *path, size_t len)
{
    return tok_export("tests/ref/swin_torch_ref.py", "swin", spec, opset, 5, path, len);
}

/* Float64 then float32 rows of [2 logits, gradient, IG, CAM] for one image
 * (caller frees), or NULL. */
static double *reference(const char *onnx_path, const float *x, int target)
{
    const size_t chw = 3 * (size_t)size * size, row = 2 + 2 * chw + (size_t)size * size;
    return tok_reference("tests/ref/swin_torch_ref.py", "swin", spec, onnx_path, x, chw, 1, target,
                         2 * row);
}

/* got against float64 r64; the bound is 1e-4 or 3x PyTorch float32's (r32) error. */
static void check_close(int opset, const char *what, const float *got, const double *r64,
                        const double *r32, size_t count)
{
    double err = tok_rel_l2_d(got, r64, count), err32 = tok_rel_l2_dd(r32, r64, count);
    double bound = fmax(1e-4, 3.0 * err32);
    printf("    %s opset %d %-6s rel L2 %.2e (PyTorch float32 %.2e; bound %.1e: %s)\n", spec,
           opset, what, err, err32, bound, bound > 1e-4 ? "3x float32" : "1e-4");
    TH_CHECK(err <= bound, "%s opset %d: %s error %.3g above %.3g", spec, opset, what, err,
             bound);
}

static void check_opset(int opset)
{
    char path[512];
    if (export_swin(opset, path, sizeof path) < 0)
        TH_SKIP("the export failed (python3-torch, torchvision, onnx for %s)", th_python());
    nn_model_t *m = NULL, *back = NULL;
    onnx_import_info_t info;
    TH_CHECK(onnx_import_file(path, &(onnx_import_opts_t){.normalize = "unit"}, &m, &info) == 0,
             "import of %s", path);
    if (!m)
        return;
    printf("    %s opset %d: %d ONNX nodes -> %d layers\n", spec, opset, info.onnx_nodes,
           info.imported_nodes);
    const size_t chw = 3 * (size_t)size * size, hw = (size_t)size * size;
    const size_t row = 2 + 2 * chw + hw;
    float *x = malloc(sizeof(float) * chw), *g = malloc(sizeof(float) * chw);
    float *gg = malloc(sizeof(float) * chw), *raw = malloc(sizeof(float) * chw);
    sal_ws_t *ws = NULL;
    TH_CHECK(sal_ws_create(&ws, m, 10, "unit") == 0, "workspace");
    sal_params_t p = sal_params_default();
    p.ig_steps = 10;
    p.ig_rule = SAL_IG_LINSPACE;
    p.ig_baseline = SAL_BASELINE_VALUE;
    p.ig_baseline_value = 0.0;
    sal_key_t key = {5, 0, 0};
    /* the explained logit: the first whose Grad-CAM is not zero everywhere (defined),
     * on the first of a few random images that has one */
    int target = -1;
    for (int draw = 0; ws && draw < 8 && target < 0; draw++) {
        rng_stream_t rs;
        rng_stream_init(&rs, rng_key(13, "swin"), (uint64_t)draw, 0, 0);
        for (size_t i = 0; i < chw; i++)
            x[i] = (float)(2.0 * rng_stream_uniform(&rs) - 1.0);
        for (int t = 1; t >= 0 && target < 0; t--)
            if (sal_compute(sal_method_find("gcam"), &p, m, ws, x, t, NULL, key, raw) == 0)
                target = t;
    }
    TH_CHECK(target >= 0, "no logit with a defined Grad-CAM");
    /* every opset exports the same weights (one seed): the reference of the first
     * opset serves the others when the image and the target are the same */
    double *ref = NULL;
    if (target >= 0 && target == kept_target && kept_size == size &&
        !memcmp(kept_x, x, sizeof(float) * chw)) {
        ref = malloc(sizeof(double) * 2 * row);
        if (ref)
            memcpy(ref, kept_ref, sizeof(double) * 2 * row);
    } else if (target >= 0) {
        ref = reference(path, x, target);
        if (ref && chw <= sizeof kept_x / sizeof kept_x[0]) {
            free(kept_ref);
            kept_ref = malloc(sizeof(double) * 2 * row);
            if (kept_ref) {
                memcpy(kept_ref, ref, sizeof(double) * 2 * row);
                memcpy(kept_x, x, sizeof(float) * chw);
                kept_target = target;
                kept_size = size;
            }
        }
    }
    TH_CHECK(ref != NULL, "reference script failed");
    if (ref && ws) {
        const double *r64 = ref, *r32 = ref + row;
        TH_CHECK(sal_gradient(ws, x, target, 0, g) == 0, "gradient");
        check_close(opset, "logits", nn_output(m), r64, r32, 2);
        check_close(opset, "grad", g, r64 + 2, r32 + 2, chw);
        /* guided backprop: a Swin has GELU, no ReLU, so the gradient itself */
        TH_CHECK(sal_gradient(ws, x, target, 1, gg) == 0, "guided gradient");
        TH_CHECK(memcmp(g, gg, sizeof(float) * chw) == 0, "guided backprop differs from the "
                 "gradient in a model without ReLU");
        TH_CHECK(sal_compute(sal_method_find("gbp"), &p, m, ws, x, target, NULL, key, raw) == 0,
                 "gbp");
        check_close(opset, "gbp", raw, r64 + 2, r32 + 2, chw);
        TH_CHECK(sal_compute(sal_method_find("ig"), &p, m, ws, x, target, NULL, key, raw) == 0,
                 "ig");
        check_close(opset, "ig", raw, r64 + 2 + chw, r32 + 2 + chw, chw);
        TH_CHECK(sal_compute(sal_method_find("gcam"), &p, m, ws, x, target, NULL, key, raw) == 0,
                 "gcam");
        check_close(opset, "gcam", raw, r64 + 2 + 2 * chw, r32 + 2 + 2 * chw, hw);
    }
    /* the default Grad-CAM layer: the last stage's norm on its [C, H, W] grid */
    int cam = nn_find(m, m->gradcam_layer);
    const int stride = strcmp(spec, "small") ? 32 : 8; /* patch 4, then 3 or 1 mergings */
    TH_CHECK(cam > 0 && m->nodes[cam].rank == 0 && m->nodes[cam].h * stride == size &&
                 nn_find(m, "norm") == m->nodes[cam].in[0],
             "default Grad-CAM layer '%s' is not the permuted final norm", m->gradcam_layer);
    /* the model file keeps the ops, shapes and the fixed mask: the same logits */
    char h5[512];
    snprintf(h5, sizeof h5, "%s/swin_%s_%d.h5", th_tmp_dir(), spec, opset);
    TH_CHECK(modelfile_save(h5, m, NULL) == 0 && modelfile_load(h5, &back) == 0, "round trip");
    if (back && ws) {
        float y[2];
        nn_forward(m, x, 1, 0);
        memcpy(y, nn_output(m), sizeof y);
        nn_model_prepare(back, 1);
        nn_forward(back, x, 1, 0);
        TH_CHECK(!memcmp(y, nn_output(back), sizeof y), "logits after the model file round trip");
    }
    /* blocks of cascading randomization follow the module paths features.N */
    const char *names[64];
    int nb = nn_blocks(m, names, 64), features = 0;
    for (int i = 0; i < nb; i++)
        features += !strncmp(names[i], "features.", 9);
    TH_CHECK(features >= 4, "%d features.N blocks", features);
    /* relative position bias: trained; shifted-window mask: a fixed constant */
    int masks = 0, biases = 0, mask_node = -1;
    for (int i = 0; i < m->n_nodes; i++) {
        if (m->nodes[i].op != NN_BCAST_ADD)
            continue;
        biases += m->nodes[i].has_bias;
        masks += !m->nodes[i].has_bias;
        if (!m->nodes[i].has_bias)
            mask_node = i;
    }
    const int blocks = strcmp(spec, "small") ? 12 : 4, shifted = strcmp(spec, "small") ? 5 : 1;
    TH_CHECK(biases == blocks && masks == shifted, "%d relative position biases, %d masks",
             biases, masks);
    if (mask_node > 0 && ws) {
        size_t count;
        const float *mask = nn_param(m, mask_node, NN_P_MEAN, &count);
        float *before = malloc(sizeof(float) * count), y[2];
        memcpy(before, mask, sizeof(float) * count);
        nn_forward(m, x, 1, 0);
        memcpy(y, nn_output(m), sizeof y);
        TH_CHECK(nn_model_reinit_block(m, m->nodes[mask_node].block, 3, 0) == 0, "reinit");
        nn_forward(m, x, 1, 0);
        TH_CHECK(memcmp(y, nn_output(m), sizeof y) != 0, "re-initializing block %s changes "
                 "the logits", m->nodes[mask_node].block);
        TH_CHECK(!memcmp(before, nn_param(m, mask_node, NN_P_MEAN, NULL), sizeof(float) * count),
                 "the attention mask survives the re-initialization of its block");
        free(before);
    }
    sal_ws_destroy(ws);
    nn_model_destroy(back);
    nn_model_destroy(m);
    free(ref);
    free(x); free(g); free(gg); free(raw);
}

static void test_swin_opset13(void) { check_opset(13); }
static void test_swin_opset17(void) { check_opset(17); }

int main(int argc, char **argv)
{
    sc_log_set_level(SC_LOG_WARN);
    if (!th_python_has("torch, torchvision, onnx, numpy")) {
        TH_RUN(test_swin_opset13); /* reports the skip */
        return th_report();
    }
    if (argc > 1 && !strcmp(argv[1], "full")) {
        spec = "swin_t";
        size = 224;
    }
    TH_RUN(test_swin_opset13);
    TH_RUN(test_swin_opset17);
    free(kept_ref);
    return th_report();
}
