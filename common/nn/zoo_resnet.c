/*
 * zoo_resnet.c - ResNet-18 and ResNet-50 in the torchvision layout (zoo.h).
 *
 * Owned by common/nn. The graph reproduces torchvision.models.resnet18/50
 * (He et al. 2016, "v1.5": in a bottleneck the stride sits on the 3x3
 * convolution): a 7x7/2 stem convolution, batch norm, ReLU, 3x3/2 max pool
 * with padding 1, four stages of residual blocks, global average pooling and
 * a dense layer. Every node that holds parameters carries the torchvision
 * module name ("layer2.0.downsample.0", "fc", ...), so a torchvision
 * state_dict maps onto the model file one to one (tests/ref/zoo_torch_ref.py
 * does exactly that). Parameter counts at 1000 classes equal torchvision's:
 * 11,689,512 (resnet18) and 25,557,032 (resnet50).
 *
 * Blocks for cascading randomization (docs/methods.md section 6), bottom to top:
 * stem, layer1, layer2, layer3, layer4, logits. The default Grad-CAM layer is
 * the output of the last residual block (after its ReLU), the input of the
 * global average pool, as in pytorch-grad-cam's model.layer4[-1].
 */
#include <stdio.h>

#include "nn/zoo.h"
#include "sc.h"

#define RESNET_BN_EPS 1e-5f
#define RESNET_BN_MOMENTUM 0.1f

/* A k x k convolution (no bias, He-normal init, padding k/2) followed by batch
 * norm; returns the batch-norm node id or a negative sc_err. */
static int conv_bn(nn_model_t *m, const char *conv_name, const char *bn_name, int in, int out_c,
                   int k, int stride)
{
    int pad = k / 2;
    const int pads[4] = {pad, pad, pad, pad};
    int conv = nn_add_conv(m, conv_name, in, out_c, k, k, stride, stride, pads, 0, 0);
    if (conv < 0)
        return conv;
    m->nodes[conv].init = NN_INIT_HE_NORMAL;
    return nn_add_bn(m, bn_name, conv, RESNET_BN_EPS, RESNET_BN_MOMENTUM, 1, 1);
}

/*
 * One residual block "layer<s>.<b>". bottleneck=0: BasicBlock (two 3x3);
 * bottleneck=1: 1x1 (planes) - 3x3 (planes, stride) - 1x1 (4*planes).
 * A projection shortcut (downsample.0 conv 1x1/stride, downsample.1 bn) is
 * added when the shape changes. Returns the block's output node (ReLU).
 */
static int residual_block(nn_model_t *m, const char *prefix, int in, int planes, int stride,
                          int bottleneck)
{
    char a[NN_NAME_MAX], b[NN_NAME_MAX];
    const int out_c = bottleneck ? 4 * planes : planes;
    int x;
    if (!bottleneck) {
        snprintf(a, sizeof a, "%s.conv1", prefix);
        snprintf(b, sizeof b, "%s.bn1", prefix);
        if ((x = conv_bn(m, a, b, in, planes, 3, stride)) < 0)
            return x;
        snprintf(a, sizeof a, "%s.relu1", prefix);
        if ((x = nn_add_relu(m, a, x)) < 0)
            return x;
        snprintf(a, sizeof a, "%s.conv2", prefix);
        snprintf(b, sizeof b, "%s.bn2", prefix);
        if ((x = conv_bn(m, a, b, x, planes, 3, 1)) < 0)
            return x;
    } else {
        snprintf(a, sizeof a, "%s.conv1", prefix);
        snprintf(b, sizeof b, "%s.bn1", prefix);
        if ((x = conv_bn(m, a, b, in, planes, 1, 1)) < 0)
            return x;
        snprintf(a, sizeof a, "%s.relu1", prefix);
        if ((x = nn_add_relu(m, a, x)) < 0)
            return x;
        snprintf(a, sizeof a, "%s.conv2", prefix);
        snprintf(b, sizeof b, "%s.bn2", prefix);
        if ((x = conv_bn(m, a, b, x, planes, 3, stride)) < 0)
            return x;
        snprintf(a, sizeof a, "%s.relu2", prefix);
        if ((x = nn_add_relu(m, a, x)) < 0)
            return x;
        snprintf(a, sizeof a, "%s.conv3", prefix);
        snprintf(b, sizeof b, "%s.bn3", prefix);
        if ((x = conv_bn(m, a, b, x, out_c, 1, 1)) < 0)
            return x;
    }
    int shortcut = in;
    if (stride != 1 || m->nodes[in].c != out_c) {
        snprintf(a, sizeof a, "%s.downsample.0", prefix);
        snprintf(b, sizeof b, "%s.downsample.1", prefix);
        if ((shortcut = conv_bn(m, a, b, in, out_c, 1, stride)) < 0)
            return shortcut;
    }
    snprintf(a, sizeof a, "%s.add", prefix);
    if ((x = nn_add_add(m, a, x, shortcut)) < 0)
        return x;
    snprintf(a, sizeof a, "%s.relu", prefix);
    return nn_add_relu(m, a, x);
}

/* The common skeleton; blocks_per_stage[4] residual blocks per stage. */
static int build_resnet(nn_model_t **out, const char *arch, int size, int classes, uint64_t seed,
                        const int *blocks_per_stage, int bottleneck)
{
    int rc = 0;
    *out = NULL;
    nn_model_t *m = nn_model_create(3, size, size);
    CHECK_ALLOC(m);
    nn_set_block(m, "stem");
    int x;
    CHECK_RC(x = conv_bn(m, "conv1", "bn1", 0, 64, 7, 2));
    CHECK_RC(x = nn_add_relu(m, "relu", x));
    CHECK_RC(x = nn_add_maxpool(m, "maxpool", x, 3, 3, 2, 2, (const int[]){1, 1, 1, 1}, 0, 0));
    const int planes[4] = {64, 128, 256, 512};
    char block[24], prefix[40];
    for (int s = 0; s < 4; s++) {
        snprintf(block, sizeof block, "layer%d", s + 1);
        nn_set_block(m, block);
        for (int b = 0; b < blocks_per_stage[s]; b++) {
            snprintf(prefix, sizeof prefix, "%s.%d", block, b);
            int stride = (s > 0 && b == 0) ? 2 : 1;
            CHECK_RC(x = residual_block(m, prefix, x, planes[s], stride, bottleneck));
        }
    }
    snprintf(m->gradcam_layer, sizeof m->gradcam_layer, "%s", m->nodes[x].name);
    nn_set_block(m, "logits");
    CHECK_RC(x = nn_add_gap(m, "avgpool", x));
    CHECK_RC(x = nn_add_dense(m, "fc", x, classes, 1));
    snprintf(m->arch, sizeof m->arch, "%s", arch);
    snprintf(m->normalize, sizeof m->normalize, "imagenet");
    m->num_classes = classes;
    CHECK_RC(nn_model_finalize(m, seed));
    *out = m;
    m = NULL;
cleanup:
    if (rc < 0)
        SC_ERROR("cannot build %s for a %dx%d input with %d classes", arch, size, size, classes);
    nn_model_destroy(m);
    return rc;
}

/* ResNet-18: BasicBlocks 2-2-2-2. Caller owns *out (nn_model_destroy). */
int zoo_resnet18(nn_model_t **out, int size, int classes, uint64_t seed)
{
    static const int blocks[4] = {2, 2, 2, 2};
    return build_resnet(out, "resnet18", size, classes, seed, blocks, 0);
}

/* ResNet-50: Bottlenecks 3-4-6-3. Caller owns *out (nn_model_destroy). */
int zoo_resnet50(nn_model_t **out, int size, int classes, uint64_t seed)
{
    static const int blocks[4] = {3, 4, 6, 3};
    return build_resnet(out, "resnet50", size, classes, seed, blocks, 1);
}
