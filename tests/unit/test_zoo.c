/*
 * test_zoo.c - the real architectures of the model zoo: ResNet-18/50 and
 * DenseNet-121 (torchvision layout), InceptionV3 (Keras layout).
 *
 * Checks parameter counts against the reference implementations, output
 * shapes at the supported input sizes, the named blocks and Grad-CAM layers,
 * block re-initialization, and, against PyTorch on the same weights
 * (tests/ref/zoo_torch_ref.py: torchvision's own modules, and an InceptionV3
 * written from the Keras source), the logits, the input gradient of the top
 * logit and the Grad-CAM activation and gradient, to 1e-4 relative.
 */
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

/*
 * Give the batch norms the statistics of real activations, as in a trained
 * network: one training-mode forward pass over `n` random images with
 * momentum 1 sets every running mean/variance to the batch statistics. Then
 * move gamma/beta away from 1/0 so that parity exercises them. Without the
 * calibration, He-initialized deep networks reach logits of 1e4, and float32
 * versus float64 rounding flips enough ReLUs to change the input gradient by
 * percents (PyTorch float32 against float64 differs by 2% on resnet50 then).
 */
static void calibrate_bn(nn_model_t *m, int n, uint64_t seed)
{
    const nn_node_t *in = &m->nodes[0];
    size_t count = (size_t)n * in->c * in->h * in->w;
    float *x = malloc(sizeof(float) * count);
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(seed, "bn calibration"), 0, 0, 0);
    for (size_t i = 0; i < count; i++)
        x[i] = (float)(2.0 * rng_stream_uniform(&rs) - 1.0);
    float *momentum = malloc(sizeof(float) * m->n_nodes);
    for (int id = 1; id < m->n_nodes; id++) {
        momentum[id] = m->nodes[id].momentum;
        if (m->nodes[id].op == NN_BN)
            m->nodes[id].momentum = 1.0f;
    }
    nn_model_prepare(m, n);
    nn_forward(m, x, n, 1);
    for (int id = 1; id < m->n_nodes; id++) {
        nn_node_t *nd = &m->nodes[id];
        if (nd->op != NN_BN)
            continue;
        nd->momentum = momentum[id];
        for (int k = NN_P_GAMMA; k <= NN_P_BETA; k++) {
            size_t c;
            float *p = nn_param(m, id, (nn_param_kind)k, &c);
            for (size_t i = 0; p && i < c; i++) {
                double u = rng_stream_uniform(&rs);
                p[i] = (float)(k == NN_P_GAMMA ? 0.5 + u : 0.4 * (u - 0.5));
            }
        }
    }
    free(momentum);
    free(x);
}

static const int *node_shape(const nn_model_t *m, const char *name, int shape[3])
{
    int id = nn_find(m, name);
    shape[0] = shape[1] = shape[2] = -1;
    if (id >= 0) {
        shape[0] = m->nodes[id].c;
        shape[1] = m->nodes[id].h;
        shape[2] = m->nodes[id].w;
    }
    return shape;
}

/* Parameter counts equal the reference implementations' at 1000 classes:
 * torchvision resnet18/resnet50/densenet121 (sum of p.numel()), and Keras
 * InceptionV3(include_top=True): 23,817,352 trainable + 34,432 BN statistics. */
static void test_parameter_counts(void)
{
    static const struct {
        const char *arch;
        int size;
        size_t trainable, total;
    } ref[] = {
        {"resnet18", 224, 11689512, 11689512 + 2 * 4800},
        {"resnet50", 224, 25557032, 25557032 + 2 * 26560},
        {"densenet121", 224, 7978856, 7978856 + 2 * 41824},
        {"inceptionv3", 299, 23817352, 23851784},
    };
    for (size_t i = 0; i < sizeof ref / sizeof ref[0]; i++) {
        nn_model_t *m = NULL;
        TH_CHECK(zoo_build(ref[i].arch, ref[i].size, 1000, 1, &m) == 0, "build %s", ref[i].arch);
        if (!m)
            continue;
        size_t total = 0;
        for (int id = 0; id < m->n_nodes; id++)
            for (int k = 0; k < NN_P_KINDS; k++)
                if (m->nodes[id].p_off[k] >= 0)
                    total += m->nodes[id].p_count[k];
        printf("    %-12s %3d nodes, %10zu parameters (%zu with BN statistics)\n", ref[i].arch,
               m->n_nodes, nn_count_trainable(m), total);
        TH_EQ_INT(nn_count_trainable(m), ref[i].trainable);
        TH_EQ_INT(total, ref[i].total);
        nn_model_destroy(m);
    }
}

/* Feature-map shapes at the three supported input sizes, hand-computed from
 * the architectures' strides and paddings. */
static void test_shapes_at_sizes(void)
{
    static const struct {
        const char *arch, *node;
        int size, c, h;
    } ref[] = {
        {"resnet18", "layer1.1.relu", 224, 64, 56},   {"resnet18", "layer4.1.relu", 224, 512, 7},
        {"resnet18", "layer4.1.relu", 299, 512, 10},  {"resnet18", "layer4.1.relu", 320, 512, 10},
        {"resnet50", "layer3.5.relu", 224, 1024, 14}, {"resnet50", "layer4.2.relu", 320, 2048, 10},
        {"densenet121", "features.denseblock1.cat", 224, 256, 56},
        {"densenet121", "features.transition3.pool", 224, 512, 7},
        {"densenet121", "features.relu5", 299, 1024, 9},
        {"densenet121", "features.relu5", 320, 1024, 10},
        {"inceptionv3", "max_pooling2d_1", 299, 192, 35}, {"inceptionv3", "mixed0", 299, 256, 35},
        {"inceptionv3", "mixed2", 299, 288, 35},          {"inceptionv3", "mixed3", 299, 768, 17},
        {"inceptionv3", "mixed7", 299, 768, 17},          {"inceptionv3", "mixed8", 299, 1280, 8},
        {"inceptionv3", "mixed10", 299, 2048, 8},         {"inceptionv3", "mixed10", 224, 2048, 5},
        {"inceptionv3", "mixed10", 320, 2048, 8},         {"inceptionv3", "mixed9_1", 299, 768, 8},
    };
    for (size_t i = 0; i < sizeof ref / sizeof ref[0]; i++) {
        nn_model_t *m = NULL;
        TH_CHECK(zoo_build(ref[i].arch, ref[i].size, 2, 1, &m) == 0, "build %s at %d",
                 ref[i].arch, ref[i].size);
        if (!m)
            continue;
        int s[3];
        node_shape(m, ref[i].node, s);
        TH_CHECK(s[0] == ref[i].c && s[1] == ref[i].h && s[2] == ref[i].h,
                 "%s at %d: %s is %dx%dx%d, expected %dx%dx%d", ref[i].arch, ref[i].size,
                 ref[i].node, s[0], s[1], s[2], ref[i].c, ref[i].h, ref[i].h);
        const nn_node_t *logits = &m->nodes[nn_logits_node(m)];
        TH_EQ_INT(logits->c * logits->h * logits->w, 2);
        TH_EQ_INT(m->output, nn_logits_node(m)); /* models end at the logits */
        nn_model_destroy(m);
    }
    nn_model_t *m = NULL;
    TH_CHECK(zoo_build("inceptionv3", 64, 2, 1, &m) < 0, "inceptionv3 below 75x75 is refused");
    nn_model_destroy(m);
}

/* Blocks top-down (the cascading order) and the default Grad-CAM layer, which
 * must be the last feature map before the global average pool. */
static void test_blocks_and_gradcam(void)
{
    static const struct {
        const char *arch, *blocks, *gradcam;
    } ref[] = {
        {"resnet18", "logits layer4 layer3 layer2 layer1 stem", "layer4.1.relu"},
        {"resnet50", "logits layer4 layer3 layer2 layer1 stem", "layer4.2.relu"},
        {"densenet121",
         "logits denseblock4 transition3 denseblock3 transition2 denseblock2 transition1 "
         "denseblock1 stem",
         "features.relu5"},
        {"inceptionv3",
         "logits mixed10 mixed9 mixed8 mixed7 mixed6 mixed5 mixed4 mixed3 mixed2 mixed1 mixed0 stem",
         "mixed10"},
    };
    for (size_t i = 0; i < sizeof ref / sizeof ref[0]; i++) {
        nn_model_t *m = NULL;
        TH_CHECK(zoo_build(ref[i].arch, 224, 2, 1, &m) == 0, "build %s", ref[i].arch);
        if (!m)
            continue;
        const char *names[64];
        int count = zoo_blocks_top_down(m, names, 64);
        char joined[512] = "";
        for (int k = 0; k < count; k++)
            snprintf(joined + strlen(joined), sizeof joined - strlen(joined), k ? " %s" : "%s",
                     names[k]);
        TH_CHECK(!strcmp(joined, ref[i].blocks), "%s blocks '%s', expected '%s'", ref[i].arch,
                 joined, ref[i].blocks);
        TH_CHECK(!strcmp(m->gradcam_layer, ref[i].gradcam), "%s Grad-CAM layer '%s'",
                 ref[i].arch, m->gradcam_layer);
        int g = nn_find(m, m->gradcam_layer);
        TH_CHECK(g >= 0, "%s: Grad-CAM layer missing", ref[i].arch);
        if (g >= 0) {
            /* The global average pool reads the Grad-CAM layer, and that layer
             * sits in the last block below the logits. */
            int gap = -1;
            for (int id = 1; id < m->n_nodes; id++)
                if (m->nodes[id].op == NN_GAP)
                    gap = id;
            TH_CHECK(gap >= 0 && m->nodes[gap].in[0] == g, "%s: the GAP does not read %s",
                     ref[i].arch, m->gradcam_layer);
            TH_CHECK(count > 1 && !strcmp(m->nodes[g].block, names[1]), "%s: %s is in block %s",
                     ref[i].arch, m->gradcam_layer, m->nodes[g].block);
        }
        nn_model_destroy(m);
    }
}

/* Re-initializing one block changes exactly that block's parameters. */
static void test_reinit_block_is_local(void)
{
    nn_model_t *m = NULL;
    TH_CHECK(zoo_build("inceptionv3", 139, 2, 5, &m) == 0, "build");
    if (!m)
        return;
    float *before = malloc(sizeof(float) * m->n_params);
    memcpy(before, m->params, sizeof(float) * m->n_params);
    TH_CHECK(nn_model_reinit_block(m, "mixed7", 99, 0) == 0, "reinit mixed7");
    int changed_in = 0, changed_out = 0, nodes_in = 0;
    for (int id = 1; id < m->n_nodes; id++) {
        const nn_node_t *nd = &m->nodes[id];
        size_t count;
        const float *p = nn_param(m, id, NN_P_WEIGHT, &count);
        if (!p || nd->op != NN_CONV)
            continue;
        int diff = memcmp(p, before + nd->p_off[NN_P_WEIGHT], sizeof(float) * count) != 0;
        if (!strcmp(nd->block, "mixed7")) {
            nodes_in++;
            changed_in += diff;
        } else {
            changed_out += diff;
        }
    }
    printf("    mixed7: %d of %d convolutions re-initialized, %d outside\n", changed_in, nodes_in,
           changed_out);
    TH_EQ_INT(nodes_in, 10);
    TH_EQ_INT(changed_in, 10);
    TH_EQ_INT(changed_out, 0);
    free(before);
    nn_model_destroy(m);
}

/* Build arch, calibrate BN, save, load, run forward + top-logit input gradient
 * and compare with tests/ref/zoo_torch_ref.py: to 1e-4 against float64 PyTorch
 * with the C ReLU pattern; against plain float32 PyTorch for information. */
static void compare_with_torch(const char *arch, int size, int classes, uint64_t seed)
{
    char model_path[400], in_path[400], out_path[400], mask_path[400], argmax_path[400];
    char cmd[2400];
    snprintf(model_path, sizeof model_path, "%s/zoo_%s.h5", th_tmp_dir(), arch);
    snprintf(in_path, sizeof in_path, "%s/zoo_%s.in.f32", th_tmp_dir(), arch);
    snprintf(out_path, sizeof out_path, "%s/zoo_%s.ref.f32", th_tmp_dir(), arch);
    snprintf(mask_path, sizeof mask_path, "%s/zoo_%s.masks.u8", th_tmp_dir(), arch);
    snprintf(argmax_path, sizeof argmax_path, "%s/zoo_%s.argmax.i32", th_tmp_dir(), arch);
    nn_model_t *built = NULL, *m = NULL;
    TH_CHECK(zoo_build(arch, size, classes, seed, &built) == 0, "build %s", arch);
    if (!built)
        return;
    calibrate_bn(built, 2, seed);
    TH_CHECK(modelfile_save(model_path, built, NULL) == 0, "save %s", model_path);
    nn_model_destroy(built);
    TH_CHECK(modelfile_load(model_path, &m) == 0, "load %s", model_path);
    if (!m)
        return;

    size_t in_count = (size_t)3 * size * size;
    float *x = malloc(sizeof(float) * in_count), *dx = malloc(sizeof(float) * in_count);
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(seed, "zoo input"), 0, 0, 0);
    for (size_t i = 0; i < in_count; i++)
        x[i] = (float)(2.0 * rng_stream_uniform(&rs) - 1.0);
    FILE *f = fopen(in_path, "wb");
    fwrite(x, sizeof(float), in_count, f);
    fclose(f);

    double t0 = sc_now();
    nn_model_keep(m, nn_find(m, m->gradcam_layer)); /* compared with the reference below */
    TH_CHECK(nn_model_prepare(m, 1) == 0, "prepare");
    TH_CHECK(nn_forward(m, x, 1, 0) == 0, "forward");
    const float *logits = nn_node_out(m, nn_logits_node(m));
    int top = 0;
    for (int k = 1; k < classes; k++)
        if (logits[k] > logits[top])
            top = k;
    float *logits_copy = malloc(sizeof(float) * classes);
    memcpy(logits_copy, logits, sizeof(float) * classes);
    nn_backward_opts_t o = {.input_grad = 1};
    TH_CHECK(nn_backward_logit(m, &top, dx, &o) == 0, "backward");
    double t_c = sc_now() - t0;
    TH_CHECK(th_write_decisions(m, 1, mask_path, argmax_path) == 0, "write %s", mask_path);
    int g = nn_find(m, m->gradcam_layer);
    size_t g_count = nn_node_size(&m->nodes[g]);

    snprintf(cmd, sizeof cmd, "%s tests/ref/zoo_torch_ref.py %s %s %s 1 %d %s %s %s",
             th_python(), arch, model_path, in_path, top, mask_path, argmax_path, out_path);
    t0 = sc_now();
    FILE *p = popen(cmd, "r");
    long torch_params = -1, relu_units = -1, flips = -1, windows = -1, pool_flips = -1;
    char line[256];
    while (p && fgets(line, sizeof line, p)) {
        sscanf(line, "params %ld", &torch_params);
        sscanf(line, "relu_units %ld", &relu_units);
        sscanf(line, "flips_float32 %ld", &flips);
        sscanf(line, "pool_windows %ld", &windows);
        sscanf(line, "pool_flips_float32 %ld", &pool_flips);
    }
    TH_CHECK(p && pclose(p) == 0, "reference script failed: %s", cmd);
    double t_ref = sc_now() - t0;
    /* float64 masked: logits, input grad, act, act grad; float32: logits, input grad */
    size_t ref_count = 2 * ((size_t)classes + in_count) + 2 * g_count;
    float *ref = calloc(ref_count, sizeof(float));
    f = fopen(out_path, "rb");
    size_t got = f ? fread(ref, sizeof(float), ref_count, f) : 0;
    if (f)
        fclose(f);
    TH_EQ_INT(got, ref_count);
    TH_EQ_INT(torch_params, nn_count_trainable(m));
    if (got == ref_count) {
        const float *r_logits = ref, *r_grad = ref + classes, *r_act = r_grad + in_count;
        const float *r_agrad = r_act + g_count, *t_logits = r_agrad + g_count;
        const float *t_grad = t_logits + classes;
        double e_logits = th_rel_err(logits_copy, r_logits, classes);
        double e_grad = th_rel_err(dx, r_grad, in_count);
        double e_act = th_rel_err(nn_node_out(m, g), r_act, g_count);
        double e_agrad = th_rel_err(nn_node_grad(m, g), r_agrad, g_count);
        printf("    %s %dx%d vs float64 PyTorch (C decisions): logits %.1e, input grad %.1e, "
               "%s act %.1e grad %.1e\n",
               arch, size, size, e_logits, e_grad, m->gradcam_layer, e_act, e_agrad);
        printf("    %s vs float32 PyTorch: logits %.1e, input grad %.1e (L2 %.1e); decided "
               "otherwise: %ld of %ld ReLUs, %ld of %ld max-pool windows; C %.2fs, reference "
               "%.1fs\n",
               arch, th_rel_err(logits_copy, t_logits, classes), th_rel_err(dx, t_grad, in_count),
               th_rel_l2(dx, t_grad, in_count), flips, relu_units, pool_flips, windows, t_c, t_ref);
        TH_CHECK(e_logits < 1e-4, "%s logits differ: %g", arch, e_logits);
        TH_CHECK(e_grad < 1e-4, "%s input gradient differs: %g", arch, e_grad);
        TH_CHECK(e_act < 1e-4 && e_agrad < 1e-4, "%s Grad-CAM layer differs: %g %g", arch, e_act,
                 e_agrad);
        TH_CHECK(th_rel_err(logits_copy, t_logits, classes) < 1e-4, "%s: logits differ from float32 "
                 "PyTorch", arch);
    }
    free(ref);
    free(logits_copy);
    free(x);
    free(dx);
    nn_model_destroy(m);
}

static int have_torch(void) { return th_python_has("torch, torchvision, h5py, numpy"); }

static void test_resnet18_matches_torchvision(void)
{
    if (!have_torch())
        TH_SKIP("python3-torch/torchvision/h5py not installed for %s", th_python());
    compare_with_torch("resnet18", 224, 5, 21);
}

static void test_resnet50_matches_torchvision(void)
{
    if (!have_torch())
        TH_SKIP("python3-torch/torchvision/h5py not installed for %s", th_python());
    compare_with_torch("resnet50", 224, 3, 22);
}

static void test_densenet121_matches_torchvision(void)
{
    if (!have_torch())
        TH_SKIP("python3-torch/torchvision/h5py not installed for %s", th_python());
    compare_with_torch("densenet121", 224, 4, 23);
}

static void test_inceptionv3_matches_keras_layout_in_torch(void)
{
    if (!have_torch())
        TH_SKIP("python3-torch/torchvision/h5py not installed for %s", th_python());
    compare_with_torch("inceptionv3", 299, 2, 24);
}

int main(void)
{
    sc_log_set_level(SC_LOG_ERROR);
    TH_RUN(test_parameter_counts);
    TH_RUN(test_shapes_at_sizes);
    TH_RUN(test_blocks_and_gradcam);
    TH_RUN(test_reinit_block_is_local);
    TH_RUN(test_resnet18_matches_torchvision);
    TH_RUN(test_resnet50_matches_torchvision);
    TH_RUN(test_densenet121_matches_torchvision);
    TH_RUN(test_inceptionv3_matches_keras_layout_in_torch);
    return th_report();
}
