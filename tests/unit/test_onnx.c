/*
 * test_onnx.c - ONNX import (common/nn/onnx_import.h) and `salcheck import`.
 *
 * torchvision resnet18 (opset 11), resnet50 (opset 13) and densenet121
 * (opset 17) with random weights at a fixed seed are exported by
 * torch.onnx.export at run time (tests/ref/onnx_torch_ref.py), imported, and
 * their logits, input gradient of the top logit and Grad-CAM activation and
 * gradient compared with PyTorch to 1e-4 relative at 224x224. A graph
 * written the way tf2onnx writes Keras models checks the Keras path (NHWC
 * input, SAME padding, Pad, ReduceMean, MatMul+Add, affine constants, the
 * mixedN blocks). Also: the block grouping reproduces the zoo's blocks, the
 * override rules, an unsupported operator is named in the error, and the CLI
 * records the input convention in the model file.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nn/modelfile.h"
#include "nn/onnx_import.h"
#include "nn/zoo.h"
#include "rng.h"
#include "sc.h"
#include "nnhelp.h"
#include "testhelp.h"

static int exported; /* 1 when the torchvision ONNX files exist for this run */

/* Blocks of m top-down joined by spaces. */
static void blocks_string(const nn_model_t *m, char *buf, size_t len)
{
    const char *names[256];
    int count = zoo_blocks_top_down(m, names, 256);
    buf[0] = 0;
    for (int k = 0; k < count; k++)
        snprintf(buf + strlen(buf), len - strlen(buf), k ? " %s" : "%s", names[k]);
}

static int have_torch_onnx(void) { return th_python_has("torch, torchvision, onnx, numpy"); }

/* mtime of path, or 0. */
static double mtime(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec * 1e-9 : 0.0;
}

/* Export once per build directory: the files are reused while they are newer
 * than the exporter script (an export costs half a minute on 2 cores). */
static void test_export_torchvision(void)
{
    if (!onnx_import_available())
        TH_SKIP("this build lacks the ONNX protobuf code (protoc-c rule of the Makefile)");
    if (!have_torch_onnx())
        TH_SKIP("python3-torch/torchvision/onnx not installed for %s", th_python());
    const char *archs[3] = {"resnet18", "resnet50", "densenet121"};
    double script = mtime("tests/ref/onnx_torch_ref.py"), oldest = -1.0;
    for (int a = 0; a < 3; a++) {
        char path[400];
        snprintf(path, sizeof path, "%s/onnx_%s.pt", th_tmp_dir(), archs[a]);
        double t = mtime(path);
        snprintf(path, sizeof path, "%s/onnx_%s.onnx", th_tmp_dir(), archs[a]);
        t = fmin(t, mtime(path));
        oldest = oldest < 0 ? t : fmin(oldest, t);
    }
    if (oldest > script) {
        printf("    reusing the ONNX files exported earlier into %s\n", th_tmp_dir());
        exported = 1;
        return;
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s tests/ref/onnx_torch_ref.py export %s 2024 resnet18:11 resnet50:13 "
             "densenet121:17 >/dev/null",
             th_python(), th_tmp_dir());
    double t0 = sc_now();
    TH_CHECK(system(cmd) == 0, "export failed: %s", cmd);
    printf("    exported resnet18 (opset 11), resnet50 (13), densenet121 (17) in %.1fs\n",
           sc_now() - t0);
    exported = 1;
}

/*
 * Import torchvision `arch` from ONNX, check its structure, save and reload
 * it as a model file, and compare forward + top-logit input gradient with
 * PyTorch (float64 with the C engine's ReLU/max-pool decisions to 1e-4;
 * plain float32 PyTorch printed for information).
 */
static void compare_onnx_with_torch(const char *arch, long opset, const char *blocks,
                                    const char *gradcam)
{
    if (!onnx_import_available())
        TH_SKIP("this build lacks the ONNX protobuf code (protoc-c rule of the Makefile)");
    if (!exported)
        TH_SKIP("no exported ONNX files (python3-torch/torchvision/onnx missing for %s)",
                th_python());
    char onnx_path[400], state_path[400], model_path[400], in_path[400], out_path[400];
    char mask_path[400], argmax_path[400], cmd[2600], got_blocks[1024];
    snprintf(onnx_path, sizeof onnx_path, "%s/onnx_%s.onnx", th_tmp_dir(), arch);
    snprintf(state_path, sizeof state_path, "%s/onnx_%s.pt", th_tmp_dir(), arch);
    snprintf(model_path, sizeof model_path, "%s/onnx_%s.h5", th_tmp_dir(), arch);
    snprintf(in_path, sizeof in_path, "%s/onnx_%s.in.f32", th_tmp_dir(), arch);
    snprintf(out_path, sizeof out_path, "%s/onnx_%s.ref.f32", th_tmp_dir(), arch);
    snprintf(mask_path, sizeof mask_path, "%s/onnx_%s.masks.u8", th_tmp_dir(), arch);
    snprintf(argmax_path, sizeof argmax_path, "%s/onnx_%s.argmax.i32", th_tmp_dir(), arch);

    nn_model_t *imported = NULL, *m = NULL;
    onnx_import_info_t info;
    double t0 = sc_now();
    TH_CHECK(onnx_import_file(onnx_path, NULL, &imported, &info) == 0, "import %s", onnx_path);
    double t_import = sc_now() - t0;
    if (!imported)
        return;
    TH_CHECK(strstr(info.producer, "pytorch") != NULL, "producer '%s'", info.producer);
    TH_EQ_INT(info.opset, opset);
    TH_CHECK(!strcmp(imported->normalize, "imagenet"), "normalize '%s'", imported->normalize);
    blocks_string(imported, got_blocks, sizeof got_blocks);
    TH_CHECK(!strcmp(got_blocks, blocks), "%s blocks '%s', expected '%s'", arch, got_blocks,
             blocks);
    TH_CHECK(!strcmp(imported->gradcam_layer, gradcam), "%s Grad-CAM layer '%s', expected '%s'",
             arch, imported->gradcam_layer, gradcam);
    TH_EQ_INT(imported->num_classes, 1000);
    printf("    %s: %d ONNX nodes -> %d layers, %zu parameters (BN folded by the exporter), "
           "import %.2fs\n",
           arch, info.onnx_nodes, imported->n_nodes - 1, nn_count_trainable(imported), t_import);
    TH_CHECK(modelfile_save(model_path, imported, NULL) == 0, "save %s", model_path);
    nn_model_destroy(imported);
    TH_CHECK(modelfile_load(model_path, &m) == 0, "load %s", model_path);
    if (!m)
        return;

    const int classes = m->num_classes;
    const size_t in_count = (size_t)3 * 224 * 224;
    float *x = malloc(sizeof(float) * in_count), *dx = malloc(sizeof(float) * in_count);
    float *logits = malloc(sizeof(float) * classes);
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(7, arch), 0, 0, 0);
    for (size_t i = 0; i < in_count; i++)
        x[i] = (float)(2.0 * rng_stream_uniform(&rs) - 1.0);
    FILE *f = fopen(in_path, "wb");
    fwrite(x, sizeof(float), in_count, f);
    fclose(f);
    t0 = sc_now();
nn_model_keep(m, nn_find(m, m->gradcam_layer)); /* compared with the reference below */
        TH_CHECK(nn_model_prepare(m, 1) == 0 && nn_forward(m, x, 1, 0) == 0, "forward");
    memcpy(logits, nn_node_out(m, nn_logits_node(m)), sizeof(float) * classes);
    int top = 0;
    for (int k = 1; k < classes; k++)
        if (logits[k] > logits[top])
            top = k;
    nn_backward_opts_t o = {.input_grad = 1};
    TH_CHECK(nn_backward_logit(m, &top, dx, &o) == 0, "backward");
    double t_c = sc_now() - t0;
    TH_CHECK(th_write_decisions(m, 1, mask_path, argmax_path) == 0, "write decisions");
    const int g = nn_find(m, m->gradcam_layer);
    const size_t g_count = g >= 0 ? nn_node_size(&m->nodes[g]) : 0;

    snprintf(cmd, sizeof cmd, "%s tests/ref/onnx_torch_ref.py ref %s %s %s 1 %d %s %s %s",
             th_python(), arch, state_path, in_path, top, mask_path, argmax_path, out_path);
    t0 = sc_now();
    FILE *p = popen(cmd, "r");
    long params = -1, relu_units = -1, flips = -1, windows = -1, pool_flips = -1;
    char line[256];
    while (p && fgets(line, sizeof line, p)) {
        sscanf(line, "params %ld", &params);
        sscanf(line, "relu_units %ld", &relu_units);
        sscanf(line, "flips_float32 %ld", &flips);
        sscanf(line, "pool_windows %ld", &windows);
        sscanf(line, "pool_flips_float32 %ld", &pool_flips);
    }
    TH_CHECK(p && pclose(p) == 0, "reference script failed: %s", cmd);
    double t_ref = sc_now() - t0;
    size_t ref_count = 2 * ((size_t)classes + in_count) + 2 * g_count;
    float *ref = calloc(ref_count, sizeof(float));
    f = fopen(out_path, "rb");
    size_t got = f ? fread(ref, sizeof(float), ref_count, f) : 0;
    if (f)
        fclose(f);
    TH_EQ_INT(got, ref_count);
    if (got == ref_count && g >= 0) {
        const float *r_logits = ref, *r_grad = ref + classes, *r_act = r_grad + in_count;
        const float *r_agrad = r_act + g_count, *t_logits = r_agrad + g_count;
        const float *t_grad = t_logits + classes;
        double e_logits = th_rel_err(logits, r_logits, classes);
        double e_grad = th_rel_err(dx, r_grad, in_count);
        double e_act = th_rel_err(nn_node_out(m, g), r_act, g_count);
        double e_agrad = th_rel_err(nn_node_grad(m, g), r_agrad, g_count);
        printf("    %s vs float64 PyTorch (C decisions): logits %.1e, input grad %.1e, %s act "
               "%.1e grad %.1e\n",
               arch, e_logits, e_grad, m->gradcam_layer, e_act, e_agrad);
        printf("    %s vs float32 PyTorch: logits %.1e, input grad %.1e (L2 %.1e); decided "
               "otherwise: %ld of %ld ReLUs, %ld of %ld max-pool windows; C %.2fs, reference "
               "%.1fs (torchvision: %ld parameters)\n",
               arch, th_rel_err(logits, t_logits, classes), th_rel_err(dx, t_grad, in_count),
               th_rel_l2(dx, t_grad, in_count), flips, relu_units, pool_flips, windows, t_c, t_ref,
               params);
        TH_CHECK(e_logits < 1e-4, "%s logits differ: %g", arch, e_logits);
        TH_CHECK(e_grad < 1e-4, "%s input gradient differs: %g", arch, e_grad);
        TH_CHECK(e_act < 1e-4 && e_agrad < 1e-4, "%s Grad-CAM layer differs: %g %g", arch, e_act,
                 e_agrad);
        TH_CHECK(th_rel_err(logits, t_logits, classes) < 1e-4, "%s logits differ from float32 "
                 "PyTorch", arch);
    }
    free(ref);
    free(logits);
    free(x);
    free(dx);
    nn_model_destroy(m);
}

static void test_resnet18_onnx_matches_torch(void)
{
    compare_onnx_with_torch("resnet18", 11, "logits layer4 layer3 layer2 layer1 stem",
                            "layer4.1.relu_1");
}

static void test_resnet50_onnx_matches_torch(void)
{
    compare_onnx_with_torch("resnet50", 13, "logits layer4 layer3 layer2 layer1 stem",
                            "layer4.2.relu_2");
}

static void test_densenet121_onnx_matches_torch(void)
{
    compare_onnx_with_torch("densenet121", 17,
                            "logits features.denseblock4 features.transition3 "
                            "features.denseblock3 features.transition2 features.denseblock2 "
                            "features.transition1 features.denseblock1 stem",
                            "relu");
}

/* A graph as tf2onnx writes a Keras model, against float64 PyTorch. */
static void test_keras_style_graph(void)
{
    if (!onnx_import_available())
        TH_SKIP("this build lacks the ONNX protobuf code (protoc-c rule of the Makefile)");
    if (!th_python_has("torch, onnx, numpy"))
        TH_SKIP("python3-torch/onnx not installed for %s", th_python());
    char onnx_path[400], in_path[400], ref_path[400], cmd[1400], blocks[512];
    snprintf(onnx_path, sizeof onnx_path, "%s/onnx_keras.onnx", th_tmp_dir());
    snprintf(in_path, sizeof in_path, "%s/onnx_keras.in.f32", th_tmp_dir());
    snprintf(ref_path, sizeof ref_path, "%s/onnx_keras.ref.f32", th_tmp_dir());
    const int c = 3, h = 32, w = 32, classes = 3, target = 2;
    const size_t in_count = (size_t)c * h * w;
    float x[3 * 32 * 32], dx[3 * 32 * 32], ref[3 + 3 * 32 * 32 + 3];
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(9, "keras input"), 0, 0, 0);
    for (size_t i = 0; i < in_count; i++)
        x[i] = (float)(255.0 * rng_stream_uniform(&rs));
    FILE *f = fopen(in_path, "wb");
    fwrite(x, sizeof(float), in_count, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s tests/ref/onnx_torch_ref.py keras %s %s %d %s", th_python(),
             onnx_path, in_path, target, ref_path);
    TH_CHECK(system(cmd) == 0, "reference script failed: %s", cmd);
    f = fopen(ref_path, "rb");
    size_t got = f ? fread(ref, sizeof(float), sizeof ref / sizeof ref[0], f) : 0;
    if (f)
        fclose(f);
    TH_EQ_INT(got, sizeof ref / sizeof ref[0]);

    nn_model_t *m = NULL;
    onnx_import_info_t info;
    TH_CHECK(onnx_import_file(onnx_path, NULL, &m, &info) == 0, "import %s", onnx_path);
    if (!m)
        return;
    TH_CHECK(!strcmp(info.input_layout, "NHWC"), "input layout %s", info.input_layout);
    TH_CHECK(!strcmp(m->normalize, "inception"), "tf2onnx default normalization '%s'",
             m->normalize);
    TH_EQ_INT(m->nodes[0].c, 3);
    TH_EQ_INT(m->nodes[0].h, 32);
    blocks_string(m, blocks, sizeof blocks);
    TH_CHECK(!strcmp(blocks, "logits mixed1 mixed0 stem"), "blocks '%s' (%s)", blocks,
             info.blocks);
    TH_CHECK(!strcmp(m->gradcam_layer, "mixed1.concat"), "Grad-CAM layer '%s'",
             m->gradcam_layer);
    const int stem_pool = nn_find(m, "max_pooling2d");
    TH_CHECK(stem_pool > 0 && !strcmp(m->nodes[stem_pool].block, "stem"), "max_pooling2d block");
    TH_CHECK(nn_model_prepare(m, 1) == 0 && nn_forward(m, x, 1, 0) == 0, "forward");
    const int logits_id = nn_logits_node(m);
    TH_EQ_INT(nn_node_size(&m->nodes[logits_id]), classes);
    float logits[3], prob[3];
    memcpy(logits, nn_node_out(m, logits_id), sizeof logits);
    memcpy(prob, nn_output(m), sizeof prob);
    nn_backward_opts_t o = {.input_grad = 1};
    int t = target;
    TH_CHECK(nn_backward_logit(m, &t, dx, &o) == 0, "backward");
    if (got == sizeof ref / sizeof ref[0]) {
        double e_logits = th_rel_err(logits, ref, classes);
        double e_grad = th_rel_err(dx, ref + classes, in_count);
        double e_prob = th_rel_err(prob, ref + classes + in_count, classes);
        printf("    keras-style graph (%d layers, %s): logits %.1e, input grad %.1e, softmax "
               "%.1e\n",
               m->n_nodes - 1, info.blocks, e_logits, e_grad, e_prob);
        TH_CHECK(e_logits < 1e-4 && e_grad < 1e-4 && e_prob < 1e-4,
                 "keras-style graph differs: %g %g %g", e_logits, e_grad, e_prob);
    }
    nn_model_destroy(m);
}

/* Run fn with stderr captured into buf. */
static int capture_stderr(char *buf, size_t len, int (*fn)(void *), void *arg)
{
    char path[400];
    snprintf(path, sizeof path, "%s/onnx_stderr.txt", th_tmp_dir());
    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(path, "w+");
    if (!f || saved < 0)
        return fn(arg);
    dup2(fileno(f), 2);
    int rc = fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(f);
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = 0;
    fclose(f);
    return rc;
}

static int import_quietly(void *path)
{
    nn_model_t *m = NULL;
    int rc = onnx_import_file((const char *)path, NULL, &m, NULL);
    nn_model_destroy(m);
    return rc;
}

static void test_unsupported_operator_is_named(void)
{
    if (!onnx_import_available())
        TH_SKIP("this build lacks the ONNX protobuf code (protoc-c rule of the Makefile)");
    if (!th_python_has("onnx, numpy"))
        TH_SKIP("python3-onnx not installed for %s", th_python());
    char path[400], cmd[800], err[4096];
    snprintf(path, sizeof path, "%s/onnx_bad.onnx", th_tmp_dir());
    snprintf(cmd, sizeof cmd, "%s tests/ref/onnx_torch_ref.py bad %s", th_python(), path);
    TH_CHECK(system(cmd) == 0, "%s", cmd);
    int rc = capture_stderr(err, sizeof err, import_quietly, path);
    TH_EQ_INT(rc, SC_ERR_UNSUPPORTED);
    TH_CHECK(strstr(err, "LeakyRelu") && strstr(err, "model/leaky/LeakyRelu"),
             "the error does not name the operator and the node: %s", err);
    /* ... and the opset the file declares, on one line */
    TH_CHECK(strstr(err, "(opset 13)") != NULL, "the error does not name the opset: %s", err);
    TH_CHECK(strchr(err, '\n') == NULL || strchr(err, '\n') == err + strlen(err) - 1,
             "the error takes more than one line: %s", err);
    /* Not an ONNX file at all. */
    rc = capture_stderr(err, sizeof err, import_quietly, (void *)"tests/ref/onnx_torch_ref.py");
    TH_EQ_INT(rc, SC_ERR_FORMAT);
    TH_CHECK(strstr(err, "not an ONNX model") != NULL, "message: %s", err);
    rc = capture_stderr(err, sizeof err, import_quietly, (void *)"no/such/model.onnx");
    TH_EQ_INT(rc, SC_ERR_IO);
}

/* The name-based grouping, applied to the zoo's own models, finds the blocks
 * their builders declare (DenseNet's with the module prefix "features."). */
static void test_grouping_reproduces_zoo_blocks(void)
{
    const char *archs[3] = {"inceptionv3", "resnet50", "densenet121"};
    for (int a = 0; a < 3; a++) {
        nn_model_t *m = NULL;
        TH_CHECK(zoo_build(archs[a], 224, 2, 1, &m) == 0, "build %s", archs[a]);
        if (!m)
            continue;
        char *expected = malloc((size_t)m->n_nodes * NN_NAME_MAX);
        for (int i = 0; i < m->n_nodes; i++)
            snprintf(expected + (size_t)i * NN_NAME_MAX, NN_NAME_MAX, "%s", m->nodes[i].block);
        char how[64], gradcam[NN_NAME_MAX];
        snprintf(gradcam, sizeof gradcam, "%s", m->gradcam_layer);
        m->gradcam_layer[0] = 0;
        onnx_group_blocks(m, how, sizeof how);
        int mismatches = 0;
        for (int i = 1; i < m->n_nodes; i++) {
            const char *got = m->nodes[i].block, *want = expected + (size_t)i * NN_NAME_MAX;
            if (!strncmp(got, "features.", 9))
                got += 9;
            if (strcmp(got, want) && mismatches++ < 3)
                printf("    %s: node %s in block %s, the builder says %s\n", archs[a],
                       m->nodes[i].name, m->nodes[i].block, want);
        }
        printf("    %s: %s, %d of %d nodes in another block\n", archs[a], how, mismatches,
               m->n_nodes - 1);
        TH_EQ_INT(mismatches, 0);
        TH_CHECK(!strcmp(m->gradcam_layer, gradcam), "%s: Grad-CAM layer %s, builder %s",
                 archs[a], m->gradcam_layer, gradcam);
        free(expected);
        nn_model_destroy(m);
    }
}

struct rule_call {
    nn_model_t *m;
    const char *rule;
};

static int apply_one_rule(void *arg)
{
    struct rule_call *call = arg;
    return onnx_apply_block_rules(call->m, &call->rule, 1);
}

static void test_block_rules(void)
{
    nn_model_t *m = NULL;
    TH_CHECK(zoo_build("resnet18", 64, 2, 1, &m) == 0, "build");
    if (!m)
        return;
    const char *rules[2] = {"head = layer4, avgpool,fc", " early=conv1,bn1,relu,maxpool,layer1 "};
    int moved = onnx_apply_block_rules(m, rules, 2);
    char blocks[512];
    blocks_string(m, blocks, sizeof blocks);
    TH_CHECK(!strcmp(blocks, "head layer3 layer2 early"), "blocks after rules: '%s'", blocks);
    /* stem (4 nodes) + layer1 (2 x 7) + layer4 (9 + 7) + logits (2) moved */
    TH_EQ_INT(moved, 4 + 14 + 16 + 2);
    /* The longest prefix wins: layer4.1 goes back to its own block. */
    const char *refine[1] = {"last = layer4.1"};
    TH_EQ_INT(onnx_apply_block_rules(m, refine, 1), 7);
    TH_CHECK(!strcmp(m->nodes[nn_find(m, "layer4.1.conv2")].block, "last") &&
                 !strcmp(m->nodes[nn_find(m, "layer4.0.conv2")].block, "head"),
             "longest prefix");
    const char *bad[3] = {"no equals sign", "x = nothing_matches", " = layer1"};
    for (int i = 0; i < 3; i++) {
        char err[2048];
        struct rule_call call = {m, bad[i]};
        TH_EQ_INT(capture_stderr(err, sizeof err, apply_one_rule, &call), SC_ERR_ARG);
        TH_CHECK(strstr(err, bad[i]) != NULL, "the error does not quote the rule: %s", err);
    }
    nn_model_destroy(m);
}

/* `salcheck import` writes a model file that records the input convention. */
static void test_cli_import(void)
{
    const char *bin = getenv("SALCHECK");
    char default_bin[300];
    snprintf(default_bin, sizeof default_bin, "%s/salcheck",
             getenv("BUILD") && *getenv("BUILD") ? getenv("BUILD") : "build");
    if (!bin || !*bin)
        bin = default_bin;
    if (access(bin, X_OK) != 0)
        TH_SKIP("no salcheck binary at %s", bin);
    if (!exported)
        TH_SKIP("no exported ONNX files (python3-torch/torchvision/onnx missing for %s)",
                th_python());
    char cmd[1600], out[400], buf[256], log[400];
    snprintf(out, sizeof out, "%s/onnx_cli_resnet18.h5", th_tmp_dir());
    snprintf(log, sizeof log, "%s/onnx_cli.log", th_tmp_dir());
    snprintf(cmd, sizeof cmd,
             "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 %s import "
             "%s/onnx_resnet18.onnx -o %s --normalize inception --size 160 "
             "--block 'head = layer4,avgpool,flatten,fc' >%s 2>&1",
             bin, th_tmp_dir(), out, log);
    int rc = system(cmd);
    FILE *f = fopen(log, "r");
    char text[4096] = "";
    if (f) {
        text[fread(text, 1, sizeof text - 1, f)] = 0;
        fclose(f);
    }
    if (rc != 0 && strstr(text, "lacks ONNX support"))
        TH_SKIP("%s was built without the ONNX protobuf code (protoc-c rule of the Makefile)",
                bin);
    TH_CHECK(rc == 0, "%s failed: %s", cmd, text);
    TH_CHECK(strstr(text, "Grad-CAM") != NULL, "no summary printed: %s", text);
    TH_CHECK(modelfile_get_attr(out, "normalize", buf, sizeof buf) == 0 &&
                 !strcmp(buf, "inception"),
             "normalize attribute '%s'", buf);
    TH_CHECK(modelfile_get_attr(out, "input_h", buf, sizeof buf) == 0 && !strcmp(buf, "160"),
             "input_h '%s'", buf);
    TH_CHECK(modelfile_get_attr(out, "source_format", buf, sizeof buf) == 0 &&
                 !strcmp(buf, "onnx"),
             "source_format '%s'", buf);
    nn_model_t *m = NULL;
    TH_CHECK(modelfile_load(out, &m) == 0, "load %s", out);
    if (m) {
        char blocks[512];
        blocks_string(m, blocks, sizeof blocks);
        TH_CHECK(!strcmp(blocks, "head layer3 layer2 layer1 stem"), "blocks '%s'", blocks);
        TH_EQ_INT(m->nodes[nn_find(m, "layer4.1.relu_1")].h, 5); /* 160 / 32 */
        nn_model_destroy(m);
    }
    snprintf(cmd, sizeof cmd,
             "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 %s import "
             "%s/onnx_resnet18.onnx -o %s --normalize sepia >/dev/null 2>&1",
             bin, th_tmp_dir(), out);
    TH_CHECK(system(cmd) != 0, "an unknown normalization is refused");
}

int main(void)
{
    sc_log_set_level(SC_LOG_ERROR);
    TH_RUN(test_grouping_reproduces_zoo_blocks);
    TH_RUN(test_block_rules);
    TH_RUN(test_unsupported_operator_is_named);
    TH_RUN(test_keras_style_graph);
    TH_RUN(test_export_torchvision);
    TH_RUN(test_resnet18_onnx_matches_torch);
    TH_RUN(test_resnet50_onnx_matches_torch);
    TH_RUN(test_densenet121_onnx_matches_torch);
    TH_RUN(test_cli_import);
    return th_report();
}
