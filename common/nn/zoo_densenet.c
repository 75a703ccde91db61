/*
 * zoo_densenet.c - DenseNet-121 in the torchvision layout (zoo.h).
 *
 * Owned by common/nn. Reproduces torchvision.models.densenet121 (Huang et al.
 * 2017; growth rate 32, bottleneck width 4*32, blocks of 6-12-24-16 layers,
 * compression 0.5, no dropout):
 *   features.conv0 7x7/2 pad 3 -> norm0 -> relu0 -> pool0 (max 3x3/2 pad 1)
 *   denseblock<i>.denselayer<j>: concat(all previous features) -> norm1 ->
 *       relu1 -> conv1 (1x1, 128) -> norm2 -> relu2 -> conv2 (3x3 pad 1, 32)
 *   transition<i>: norm -> relu -> conv (1x1, half the channels) -> pool (avg 2x2/2)
 *   features.norm5 -> ReLU -> global average pool -> classifier (dense)
 * Every node with parameters carries the torchvision module name, so a
 * torchvision state_dict maps onto the model file one to one. 7,978,856
 * parameters at 1000 classes, as torchvision.
 *
 * The concatenations are explicit nodes: layer j of a block reads
 * concat(block input, new features of layers 1..j-1), exactly the tensor
 * torchvision's _DenseLayer concatenates, so Grad-CAM and the activation hooks
 * see the same tensors as PyTorch.
 *
 * Blocks for cascading randomization, bottom to top: stem, denseblock1,
 * transition1, denseblock2, transition2, denseblock3, transition3,
 * denseblock4 (including norm5 and its ReLU), logits. The default Grad-CAM
 * layer is that final ReLU (features.relu5), the input of the average pool:
 * the last convolutional feature map.
 */
#include <stdio.h>

#include "nn/zoo.h"
#include "sc.h"

#define DENSENET_GROWTH 32
#define DENSENET_BN_SIZE 4
#define DENSENET_BN_EPS 1e-5f
#define DENSENET_BN_MOMENTUM 0.1f

/* norm -> relu -> conv (no bias, He normal) with names "<prefix>.<norm|relu|conv><suffix>". */
static int bn_relu_conv(nn_model_t *m, const char *prefix, const char *suffix, int in, int out_c,
                        int k)
{
    char name[NN_NAME_MAX];
    int x;
    snprintf(name, sizeof name, "%s.norm%s", prefix, suffix);
    if ((x = nn_add_bn(m, name, in, DENSENET_BN_EPS, DENSENET_BN_MOMENTUM, 1, 1)) < 0)
        return x;
    snprintf(name, sizeof name, "%s.relu%s", prefix, suffix);
    if ((x = nn_add_relu(m, name, x)) < 0)
        return x;
    snprintf(name, sizeof name, "%s.conv%s", prefix, suffix);
    const int pad = k / 2, pads[4] = {pad, pad, pad, pad};
    if ((x = nn_add_conv(m, name, x, out_c, k, k, 1, 1, pads, 0, 0)) < 0)
        return x;
    m->nodes[x].init = NN_INIT_HE_NORMAL;
    return x;
}

/*
 * Dense block `index` with `layers` layers on input node `in`. features[]
 * (caller's scratch of layers+1 ids) collects the block input and every new
 * feature map; returns the block's output concat.
 */
static int dense_block(nn_model_t *m, int index, int layers, int in, int *features)
{
    char prefix[64], name[NN_NAME_MAX];
    features[0] = in;
    for (int j = 1; j <= layers; j++) {
        snprintf(prefix, sizeof prefix, "features.denseblock%d.denselayer%d", index, j);
        int x = features[0];
        if (j > 1) {
            snprintf(name, sizeof name, "%s.cat", prefix);
            if ((x = nn_add_concat(m, name, j, features)) < 0)
                return x;
        }
        if ((x = bn_relu_conv(m, prefix, "1", x, DENSENET_BN_SIZE * DENSENET_GROWTH, 1)) < 0)
            return x;
        if ((x = bn_relu_conv(m, prefix, "2", x, DENSENET_GROWTH, 3)) < 0)
            return x;
        features[j] = x;
    }
    snprintf(name, sizeof name, "features.denseblock%d.cat", index);
    return nn_add_concat(m, name, layers + 1, features);
}

/* DenseNet-121. Caller owns *out (nn_model_destroy). */
int zoo_densenet121(nn_model_t **out, int size, int classes, uint64_t seed)
{
    static const int layers[4] = {6, 12, 24, 16};
    int rc = 0, x;
    int features[32];
    char block[32], name[NN_NAME_MAX];
    *out = NULL;
    nn_model_t *m = nn_model_create(3, size, size);
    CHECK_ALLOC(m);

    nn_set_block(m, "stem");
    CHECK_RC(x = nn_add_conv(m, "features.conv0", 0, 64, 7, 7, 2, 2, (const int[]){3, 3, 3, 3},
                             0, 0));
    m->nodes[x].init = NN_INIT_HE_NORMAL;
    CHECK_RC(x = nn_add_bn(m, "features.norm0", x, DENSENET_BN_EPS, DENSENET_BN_MOMENTUM, 1, 1));
    CHECK_RC(x = nn_add_relu(m, "features.relu0", x));
    CHECK_RC(x = nn_add_maxpool(m, "features.pool0", x, 3, 3, 2, 2, (const int[]){1, 1, 1, 1}, 0,
                                0));
    for (int i = 0; i < 4; i++) {
        snprintf(block, sizeof block, "denseblock%d", i + 1);
        nn_set_block(m, block);
        CHECK_RC(x = dense_block(m, i + 1, layers[i], x, features));
        if (i == 3)
            break;
        snprintf(block, sizeof block, "transition%d", i + 1);
        nn_set_block(m, block);
        char prefix[48];
        snprintf(prefix, sizeof prefix, "features.transition%d", i + 1);
        CHECK_RC(x = bn_relu_conv(m, prefix, "", x, m->nodes[x].c / 2, 1));
        snprintf(name, sizeof name, "%s.pool", prefix);
        CHECK_RC(x = nn_add_avgpool(m, name, x, 2, 2, 2, 2, (const int[]){0, 0, 0, 0}, 0, 0, 1));
    }
    CHECK_RC(x = nn_add_bn(m, "features.norm5", x, DENSENET_BN_EPS, DENSENET_BN_MOMENTUM, 1, 1));
    CHECK_RC(x = nn_add_relu(m, "features.relu5", x));
    snprintf(m->gradcam_layer, sizeof m->gradcam_layer, "features.relu5");
    nn_set_block(m, "logits");
    CHECK_RC(x = nn_add_gap(m, "avgpool", x));
    CHECK_RC(x = nn_add_dense(m, "classifier", x, classes, 1));
    snprintf(m->arch, sizeof m->arch, "densenet121");
    snprintf(m->normalize, sizeof m->normalize, "imagenet");
    m->num_classes = classes;
    CHECK_RC(nn_model_finalize(m, seed));
    *out = m;
    m = NULL;
cleanup:
    if (rc < 0)
        SC_ERROR("cannot build densenet121 for a %dx%d input with %d classes", size, size,
                 classes);
    nn_model_destroy(m);
    return rc;
}
