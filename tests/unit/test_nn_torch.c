/*
 * test_nn_torch.c - whole networks against PyTorch on the same weights: the
 * logits, the input gradient of a chosen logit, the guided-backprop gradient
 * and the activation/gradient at a named node (the Grad-CAM hooks), to 1e-4
 * relative. The reference is tests/ref/nn_torch_ref.py (float64 PyTorch)
 * reading the model file this test writes, so it also checks model files.
 * Its ReLUs take the engine's decisions (--masks): a pre-activation within
 * float32 rounding of 0 may land on either side with any summation order, and
 * flips the map locally (test_flat.c compares without that help, with a
 * slack for such near-ties). Every decision that differs from float64's must
 * be such a near-tie: within MAX_FLIP of 0, relative to its layer's largest
 * pre-activation.
 */
#define MAX_FLIP 1e-5
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nn/modelfile.h"
#include "nn/zoo.h"
#include "rng.h"
#include "sc.h"
#include "nnhelp.h"
#include "testhelp.h"

static void compare_with_torch(nn_model_t *m, const char *tag, int n, const char *node)
{
    char model_path[512], in_path[512], out_path[512], cmd[2048];
    snprintf(model_path, sizeof model_path, "%s/%s.h5", th_tmp_dir(), tag);
    snprintf(in_path, sizeof in_path, "%s/%s.in.f32", th_tmp_dir(), tag);
    snprintf(out_path, sizeof out_path, "%s/%s.ref.f32", th_tmp_dir(), tag);
    char mask_path[512];
    snprintf(mask_path, sizeof mask_path, "%s/%s.masks.f32", th_tmp_dir(), tag);
    TH_CHECK(modelfile_save(model_path, m, (const char *[]){"seed", "7", NULL}) == 0,
             "save %s", model_path);
    nn_model_t *loaded = NULL;
    TH_CHECK(modelfile_load(model_path, &loaded) == 0, "load %s", model_path);
    if (!loaded)
        return;

    const nn_node_t *in = &loaded->nodes[0];
    size_t in_count = (size_t)n * in->c * in->h * in->w;
    float *x = malloc(sizeof(float) * in_count), *dx = malloc(sizeof(float) * in_count);
    float *gdx = malloc(sizeof(float) * in_count);
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(3, tag), 0, 0, 0);
    for (size_t i = 0; i < in_count; i++)
        x[i] = (float)(2.0 * rng_stream_uniform(&rs) - 1.0);
    FILE *f = fopen(in_path, "wb");
    fwrite(x, sizeof(float), in_count, f);
    fclose(f);

    int classes = (int)nn_node_size(&loaded->nodes[nn_logits_node(loaded)]);
    int targets[8];
    char tlist[64] = "";
    for (int i = 0; i < n; i++) {
        targets[i] = (i + 1) % classes;
        snprintf(tlist + strlen(tlist), sizeof tlist - strlen(tlist), i ? ",%d" : "%d", targets[i]);
    }
    if (node)
        nn_model_keep(loaded, nn_find(loaded, node)); /* compared with the reference below */
    uint8_t *relus = calloc((size_t)loaded->n_nodes, 1);
    for (int i = 0; i < loaded->n_nodes; i++)
        relus[i] = loaded->nodes[i].op == NN_RELU;
    nn_model_keep_outputs(loaded, relus); /* their decisions go to the reference */
    nn_model_prepare(loaded, n);
    nn_forward(loaded, x, n, 0);
    f = fopen(mask_path, "wb");
    for (int i = 0; f && i < loaded->n_nodes; i++) {
        if (!relus[i])
            continue;
        const size_t cnt = (size_t)n * nn_node_size(&loaded->nodes[i]);
        const float *y = nn_node_out(loaded, i);
        for (size_t k = 0; k < cnt; k++) {
            const float d = y[k] > 0.0f ? 1.0f : 0.0f;
            fwrite(&d, sizeof d, 1, f);
        }
    }
    TH_CHECK(f && fclose(f) == 0, "write %s", mask_path);
    free(relus);
    int logits_id = nn_logits_node(loaded);
    float *logits = malloc(sizeof(float) * n * classes);
    memcpy(logits, nn_node_out(loaded, logits_id), sizeof(float) * n * classes);
    nn_backward_opts_t o = {.input_grad = 1};
    nn_backward_logit(loaded, targets, dx, &o);
    int node_id = node ? nn_find(loaded, node) : -1;
    size_t node_count = node_id >= 0 ? (size_t)n * nn_node_size(&loaded->nodes[node_id]) : 0;
    float *act = NULL, *agrad = NULL;
    if (node_id >= 0) {
        act = malloc(sizeof(float) * node_count);
        agrad = malloc(sizeof(float) * node_count);
        memcpy(act, nn_node_out(loaded, node_id), sizeof(float) * node_count);
        memcpy(agrad, nn_node_grad(loaded, node_id), sizeof(float) * node_count);
    }
    o.guided_relu = 1;
    nn_backward_logit(loaded, targets, gdx, &o);

    snprintf(cmd, sizeof cmd, "%s tests/ref/nn_torch_ref.py %s %s %d %s %s --masks=%s %s",
             th_python(), model_path, in_path, n, tlist, out_path, mask_path, node ? node : "");
    TH_CHECK(system(cmd) == 0, "reference script failed: %s", cmd);
    size_t ref_count = (size_t)n * classes + 2 * in_count + 2 * node_count + 2;
    float *ref = calloc(ref_count, sizeof(float));
    f = fopen(out_path, "rb");
    size_t got = f ? fread(ref, sizeof(float), ref_count, f) : 0;
    if (f)
        fclose(f);
    TH_EQ_INT(got, ref_count);
    if (got == ref_count) {
        double e_logits = th_rel_err(logits, ref, (size_t)n * classes);
        double e_grad = th_rel_err(dx, ref + n * classes, in_count);
        double e_guided = th_rel_err(gdx, ref + n * classes + in_count, in_count);
        printf("    %s: logits %.2e, input grad %.2e, guided %.2e", tag, e_logits, e_grad, e_guided);
        TH_CHECK(e_logits < 1e-4, "%s logits differ: %g", tag, e_logits);
        TH_CHECK(e_grad < 1e-4, "%s input gradient differs: %g", tag, e_grad);
        TH_CHECK(e_guided < 1e-4, "%s guided gradient differs: %g", tag, e_guided);
        if (node_id >= 0) {
            const float *r = ref + n * classes + 2 * in_count;
            double e_act = th_rel_err(act, r, node_count), e_ag = th_rel_err(agrad, r + node_count, node_count);
            printf(", %s act %.2e grad %.2e", node, e_act, e_ag);
            TH_CHECK(e_act < 1e-4 && e_ag < 1e-4, "%s at %s: act %g grad %g", tag, node, e_act, e_ag);
        }
        const float *flip = ref + ref_count - 2;
        printf(", %.0f ReLU decisions differ from float64's (largest |x| %.1e of its layer's)\n",
               flip[0], flip[1]);
        TH_CHECK(flip[1] <= MAX_FLIP, "%s: a ReLU decision differs from float64's at %.2e of its "
                 "layer's largest pre-activation: more than rounding", tag, flip[1]);
    }
    free(ref);
    free(act);
    free(agrad);
    free(logits);
    free(x);
    free(dx);
    free(gdx);
    nn_model_destroy(loaded);
}

static int have_torch(void) { return th_python_has("torch, h5py, numpy"); }

static void test_democnn_matches_torch(void)
{
    if (!have_torch())
        TH_SKIP("python3-torch/python3-h5py not installed for %s", th_python());
    nn_model_t *m = NULL;
    TH_CHECK(zoo_democnn(&m, 64, 2, 11) == 0, "build democnn");
    th_perturb_bn(m, 1);
    compare_with_torch(m, "democnn", 3, m->gradcam_layer);
    nn_model_destroy(m);
}

static void test_demoresnet_matches_torch(void)
{
    if (!have_torch())
        TH_SKIP("python3-torch/python3-h5py not installed for %s", th_python());
    nn_model_t *m = NULL;
    TH_CHECK(zoo_demoresnet(&m, 48, 3, 12) == 0, "build demoresnet");
    th_perturb_bn(m, 2);
    compare_with_torch(m, "demoresnet", 2, "stage3.relu");
    nn_model_destroy(m);
}

/* Every layer kind in one graph: odd kernels, Keras same padding, ceil-mode
 * pooling, both average-pool count modes, concat, add, flatten, softmax. */
static void test_all_layers_match_torch(void)
{
    if (!have_torch())
        TH_SKIP("python3-torch/python3-h5py not installed for %s", th_python());
    nn_model_t *m = nn_model_create(3, 23, 21);
    int a = nn_add_conv(m, "a", 0, 6, 3, 3, 2, 2, NULL, 1, 1);          /* same, stride 2 */
    int ab = nn_add_bn(m, "a_bn", a, 1e-3f, 0.01f, 0, 1);               /* Keras scale=False */
    int ar = nn_add_relu(m, "a_relu", ab);
    int b1 = nn_add_conv(m, "b1", ar, 4, 1, 7, 1, 1, NULL, 1, 0);       /* 1x7 */
    int b2 = nn_add_conv(m, "b2", b1, 4, 7, 1, 1, 1, NULL, 1, 0);       /* 7x1 */
    int b2r = nn_add_relu(m, "b2_relu", b2);
    int c1 = nn_add_avgpool(m, "c_avg", ar, 3, 3, 1, 1, NULL, 1, 0, 0); /* Keras avg same */
    int c2 = nn_add_conv(m, "c_conv", c1, 4, 1, 1, 1, 1, NULL, 0, 1);
    int d = nn_add_maxpool(m, "d_max", ar, 3, 3, 1, 1, (int[]){1, 1, 1, 1}, 0, 0);
    int d2 = nn_add_conv(m, "d_conv", d, 4, 3, 3, 1, 1, (int[]){0, 2, 1, 1}, 0, 1);
    int d3 = nn_add_conv(m, "d_conv2", d2, 4, 3, 3, 1, 1, (int[]){2, 0, 1, 1}, 0, 1);
    int s = nn_add_add(m, "sum", c2, d3);
    int cat = nn_add_concat(m, "cat", 3, (int[]){b2r, s, ar});
    int p = nn_add_maxpool(m, "p", cat, 3, 3, 2, 2, NULL, 0, 1);         /* ceil mode */
    int q = nn_add_avgpool(m, "q", p, 2, 2, 2, 2, (int[]){1, 1, 1, 1}, 0, 1, 1);
    int f = nn_add_flatten(m, "flat", q);
    int fc = nn_add_dense(m, "fc", f, 4, 1);
    nn_add_softmax(m, "prob", fc);
    TH_CHECK(nn_model_finalize(m, 5) == 0, "finalize");
    th_perturb_bn(m, 3);
    compare_with_torch(m, "alllayers", 2, "cat");
    nn_model_destroy(m);
}

int main(void)
{
    sc_log_set_level(SC_LOG_ERROR);
    TH_RUN(test_democnn_matches_torch);
    TH_RUN(test_demoresnet_matches_torch);
    TH_RUN(test_all_layers_match_torch);
    return th_report();
}
