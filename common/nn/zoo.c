/*
 * zoo.c - the architecture table and the two demo architectures (zoo.h).
 *
 * democnn: four conv-BN-ReLU stages (16, 32, 64, 128 channels) with 2x2 max
 * pooling between them, global average pool, dense logits. Small enough to
 * train in minutes on 2 cores at 128x128, deep enough that its saliency maps
 * and randomization states are not trivial. Blocks: block1..block4, logits.
 *
 * demoresnet: a different architecture for the reproducibility test: a
 * 5x5 stem, then three residual stages (24, 48, 96 channels, two 3x3 convs
 * each, a strided 1x1 projection on the shortcut), global average pool,
 * dense logits. Blocks: stem, stage1..stage3, logits.
 */
#include "nn/zoo.h"

#include <stdio.h>
#include <string.h>

#include "sc.h"

static int conv_bn_relu(nn_model_t *m, const char *prefix, int in, int out_c, int k, int stride)
{
    char name[NN_NAME_MAX];
    snprintf(name, sizeof name, "%s.conv", prefix);
    int c = nn_add_conv(m, name, in, out_c, k, k, stride, stride, NULL, 1, 0);
    if (c < 0)
        return c;
    m->nodes[c].init = NN_INIT_HE_NORMAL;
    snprintf(name, sizeof name, "%s.bn", prefix);
    int b = nn_add_bn(m, name, c, 1e-5f, 0.1f, 1, 1);
    if (b < 0)
        return b;
    snprintf(name, sizeof name, "%s.relu", prefix);
    return nn_add_relu(m, name, b);
}

int zoo_democnn(nn_model_t **out, int size, int classes, uint64_t seed)
{
    int rc = 0;
    nn_model_t *m = nn_model_create(3, size, size);
    CHECK_ALLOC(m);
    const int widths[4] = {16, 32, 64, 128};
    int x = 0;
    for (int s = 0; s < 4; s++) {
        char block[16], prefix[32];
        snprintf(block, sizeof block, "block%d", s + 1);
        nn_set_block(m, block);
        snprintf(prefix, sizeof prefix, "%s.a", block);
        CHECK_RC(x = conv_bn_relu(m, prefix, x, widths[s], 3, 1));
        snprintf(prefix, sizeof prefix, "%s.b", block);
        CHECK_RC(x = conv_bn_relu(m, prefix, x, widths[s], 3, 1));
        if (s < 3) {
            snprintf(prefix, sizeof prefix, "%s.pool", block);
            CHECK_RC(x = nn_add_maxpool(m, prefix, x, 2, 2, 2, 2, NULL, 0, 0));
        }
    }
    snprintf(m->gradcam_layer, sizeof m->gradcam_layer, "block4.b.relu");
    nn_set_block(m, "logits");
    CHECK_RC(x = nn_add_gap(m, "gap", x));
    CHECK_RC(x = nn_add_dense(m, "fc", x, classes, 1));
    snprintf(m->arch, sizeof m->arch, "democnn");
    snprintf(m->normalize, sizeof m->normalize, "inception");
    m->num_classes = classes;
    CHECK_RC(nn_model_finalize(m, seed));
    *out = m;
    m = NULL;
cleanup:
    nn_model_destroy(m);
    return rc;
}

int zoo_demoresnet(nn_model_t **out, int size, int classes, uint64_t seed)
{
    int rc = 0;
    nn_model_t *m = nn_model_create(3, size, size);
    CHECK_ALLOC(m);
    nn_set_block(m, "stem");
    int x;
    CHECK_RC(x = conv_bn_relu(m, "stem", 0, 24, 5, 2));
    const int widths[3] = {24, 48, 96};
    for (int s = 0; s < 3; s++) {
        char block[16], name[48];
        snprintf(block, sizeof block, "stage%d", s + 1);
        nn_set_block(m, block);
        int stride = s == 0 ? 1 : 2, shortcut = x;
        snprintf(name, sizeof name, "%s.a", block);
        int y;
        CHECK_RC(y = conv_bn_relu(m, name, x, widths[s], 3, stride));
        snprintf(name, sizeof name, "%s.b.conv", block);
        CHECK_RC(y = nn_add_conv(m, name, y, widths[s], 3, 3, 1, 1, NULL, 1, 0));
        m->nodes[y].init = NN_INIT_HE_NORMAL;
        snprintf(name, sizeof name, "%s.b.bn", block);
        CHECK_RC(y = nn_add_bn(m, name, y, 1e-5f, 0.1f, 1, 1));
        if (stride != 1 || m->nodes[shortcut].c != widths[s]) {
            snprintf(name, sizeof name, "%s.proj.conv", block);
            CHECK_RC(shortcut = nn_add_conv(m, name, shortcut, widths[s], 1, 1, stride, stride,
                                            NULL, 0, 0));
            snprintf(name, sizeof name, "%s.proj.bn", block);
            CHECK_RC(shortcut = nn_add_bn(m, name, shortcut, 1e-5f, 0.1f, 1, 1));
        }
        snprintf(name, sizeof name, "%s.add", block);
        CHECK_RC(y = nn_add_add(m, name, y, shortcut));
        snprintf(name, sizeof name, "%s.relu", block);
        CHECK_RC(x = nn_add_relu(m, name, y));
    }
    snprintf(m->gradcam_layer, sizeof m->gradcam_layer, "stage3.relu");
    nn_set_block(m, "logits");
    CHECK_RC(x = nn_add_gap(m, "gap", x));
    CHECK_RC(x = nn_add_dense(m, "fc", x, classes, 1));
    snprintf(m->arch, sizeof m->arch, "demoresnet");
    snprintf(m->normalize, sizeof m->normalize, "inception");
    m->num_classes = classes;
    CHECK_RC(nn_model_finalize(m, seed));
    *out = m;
    m = NULL;
cleanup:
    nn_model_destroy(m);
    return rc;
}

const zoo_arch_t *zoo_list(void)
{
    static const zoo_arch_t table[] = {
        {"democnn", "4-stage conv-BN-ReLU CNN for the phantom demo (128x128)", zoo_democnn},
        {"demoresnet", "small residual network, the demo's second architecture", zoo_demoresnet},
        {"resnet18", "ResNet-18, torchvision layout", zoo_resnet18},
        {"resnet50", "ResNet-50, torchvision layout", zoo_resnet50},
        {"densenet121", "DenseNet-121, torchvision layout", zoo_densenet121},
        {"inceptionv3", "InceptionV3, Keras layout (stem, mixed0..mixed10, logits)", zoo_inceptionv3},
        {NULL, NULL, NULL},
    };
    return table;
}

int zoo_build(const char *arch, int size, int classes, uint64_t seed, nn_model_t **out)
{
    *out = NULL;
    if (size < 16 || classes < 1) {
        SC_ERROR("architecture '%s': input size %d and classes %d are not usable", arch, size,
                 classes);
        return SC_ERR_ARG;
    }
    for (const zoo_arch_t *a = zoo_list(); a->name; a++) {
        if (strcmp(a->name, arch))
            continue;
        if (!a->build) {
            SC_ERROR("architecture '%s' is not part of this build", arch);
            return SC_ERR_UNSUPPORTED;
        }
        return a->build(out, size, classes, seed);
    }
    char known[512] = "";
    for (const zoo_arch_t *a = zoo_list(); a->name; a++) {
        strncat(known, " ", sizeof known - strlen(known) - 1);
        strncat(known, a->name, sizeof known - strlen(known) - 1);
    }
    SC_ERROR("unknown architecture '%s'; known:%s", arch, known);
    return SC_ERR_ARG;
}

int zoo_blocks_top_down(const nn_model_t *m, const char **names, int max)
{
    const char *bottom_up[512];
    int count = nn_blocks(m, bottom_up, 512);
    int out = 0;
    for (int i = count - 1; i >= 0 && out < max; i--)
        names[out++] = bottom_up[i];
    return out;
}
