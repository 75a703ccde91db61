/*
 * bench_grad_digest.c - digests of what a model computes, to show that an
 * engine change leaves the results bit-identical (bench/README.md).
 *
 *   bench_grad_digest ARCH[:SIZE]|FILE.onnx[:SIZE] [--batch B] [--seed S]
 *
 * Builds a zoo model (random weights from the seed) or imports an ONNX file,
 * feeds B deterministic images and prints one FNV-1a 64 digest per result:
 *   logits       inference forward (nn_forward), the logits
 *   input_grad   the input gradient of the target logits (inference plan)
 *   fused_logits, fused_grad   the same through saliency's folded path
 *                (nn_forward_fused + nn_backward_logit)
 *   train_logits, train_grads  a training step: training forward, the
 *                logits, and every parameter gradient of the backward
 *                through the batch statistics (training plan)
 * Run it with the old and the new engine on the same arguments and compare.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"
#include "nn/onnx_import.h"
#include "nn/zoo.h"
#include "rng.h"
#include "sc.h"

static uint64_t fnv1a(const void *data, size_t bytes)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < bytes; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static nn_model_t *load(const char *spec, uint64_t seed)
{
    char name[512];
    snprintf(name, sizeof name, "%s", spec);
    int size = 0;
    char *colon = strrchr(name, ':');
    if (colon) {
        size = atoi(colon + 1);
        *colon = '\0';
    }
    nn_model_t *m = NULL;
    const size_t len = strlen(name);
    if (len > 5 && !strcmp(name + len - 5, ".onnx")) {
        onnx_import_opts_t opts = {.size = size};
        if (onnx_import_file(name, &opts, &m, NULL) < 0)
            return NULL;
    } else if (zoo_build(name, size ? size : 64, 2, seed, &m) < 0) {
        return NULL;
    }
    return m;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s ARCH[:SIZE]|FILE.onnx[:SIZE] [--batch B] [--seed S]\n",
                argv[0]);
        return 2;
    }
    int batch = 2;
    uint64_t seed = 7;
    for (int a = 2; a + 1 < argc; a += 2) {
        if (!strcmp(argv[a], "--batch"))
            batch = atoi(argv[a + 1]);
        else if (!strcmp(argv[a], "--seed"))
            seed = (uint64_t)strtoull(argv[a + 1], NULL, 10);
    }
    nn_model_t *m = load(argv[1], seed);
    if (!m || batch < 1) {
        fprintf(stderr, "%s: cannot build or import\n", argv[1]);
        return 1;
    }
    const int lid = nn_logits_node(m);
    const size_t in = nn_node_size(&m->nodes[0]), classes = nn_node_size(&m->nodes[lid]);
    float *x = malloc(sizeof(float) * batch * in), *dx = malloc(sizeof(float) * batch * in);
    int *target = malloc(sizeof(int) * batch);
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(seed, "bench_grad_digest"), 0, 0, 0);
    for (size_t i = 0; i < (size_t)batch * in; i++)
        x[i] = (float)(2.0 * rng_stream_uniform(&rs) - 1.0);
    for (int b = 0; b < batch; b++)
        target[b] = (int)(b % classes);
    int rc = 0;
    const size_t lbytes = sizeof(float) * batch * classes, xbytes = sizeof(float) * batch * in;
    nn_backward_opts_t o = {.input_grad = 1};
    rc |= nn_model_set_plan(m, NN_PLAN_INFER);
    rc |= nn_model_prepare(m, batch);
    rc |= nn_forward(m, x, batch, 0);
    if (rc == 0)
        printf("logits        %016llx\n",
               (unsigned long long)fnv1a(nn_node_out(m, lid), lbytes));
    rc |= nn_backward_logit(m, target, dx, &o);
    printf("input_grad    %016llx\n", (unsigned long long)fnv1a(dx, xbytes));
    rc |= nn_forward_fused(m, x, batch);
    if (rc == 0)
        printf("fused_logits  %016llx\n",
               (unsigned long long)fnv1a(nn_node_out(m, lid), lbytes));
    rc |= nn_backward_logit(m, target, dx, &o);
    printf("fused_grad    %016llx\n", (unsigned long long)fnv1a(dx, xbytes));
    rc |= nn_model_set_plan(m, NN_PLAN_TRAIN);
    memset(m->grads, 0, sizeof(float) * m->n_params);
    rc |= nn_forward(m, x, batch, 1);
    if (rc == 0)
        printf("train_logits  %016llx\n",
               (unsigned long long)fnv1a(nn_node_out(m, lid), lbytes));
    nn_backward_opts_t ot = {.input_grad = 1, .param_grads = 1, .training = 1};
    rc |= nn_backward_logit(m, target, dx, &ot);
    printf("train_grads   %016llx\n",
           (unsigned long long)fnv1a(m->grads, sizeof(float) * m->n_params));
    printf("train_input   %016llx\n", (unsigned long long)fnv1a(dx, xbytes));
    printf("params        %016llx\n",
           (unsigned long long)fnv1a(m->params, sizeof(float) * m->n_params));
    free(x);
    free(dx);
    free(target);
    nn_model_destroy(m);
    if (rc) {
        fprintf(stderr, "%s: a pass failed\n", argv[1]);
        return 1;
    }
    return 0;
}
