/*
 * zoo_inception.c - InceptionV3 in the Keras layout (zoo.h).
 *
 * Owned by common/nn. Reproduces keras.applications.InceptionV3 (Szegedy et
 * al. 2016) followed by the paper's head (docs/methods.md section 3): global
 * average pooling and a dense layer of `classes` logits (Keras
 * include_top=True has the same two layers, "avg_pool" and "predictions").
 *
 * Every convolution is Keras' conv2d_bn: Conv2D without bias, then
 * BatchNormalization(scale=False, epsilon=1e-3, momentum=0.99), then ReLU;
 * "valid" and "same" padding exactly as Keras (pad_same, the smaller half
 * first); the 3x3 average pools of the branches are "same" and exclude the
 * padding from the count, as TensorFlow does. Glorot-uniform initializers.
 *
 * Node names are the names Keras gives a freshly built InceptionV3 (conv2d,
 * conv2d_1, ..., batch_normalization_k, activation_k, max_pooling2d_k,
 * average_pooling2d_k, mixed0 ... mixed10, mixed9_0, concatenate, avg_pool,
 * predictions), created in Keras' order, so model.summary() of the Keras
 * model and this graph correspond line by line. 23,817,352 trainable
 * parameters at 1000 classes (plus 34,432 batch-norm statistics), as Keras.
 *
 * Blocks for cascading randomization (docs/methods.md section 3): "stem" (the
 * five convolutions and two max pools before mixed0), "mixed0" ... "mixed10"
 * (each the layers created after the previous mixed concatenation, up to and
 * including its own), then "logits" (avg_pool, predictions). The default
 * Grad-CAM layer is mixed10.
 */
#include <stdio.h>

#include "nn/zoo.h"
#include "sc.h"

#define INCEPTION_BN_EPS 1e-3f
#define INCEPTION_BN_MOMENTUM 0.01f /* Keras momentum 0.99 = weight 0.01 on the new batch */

/* Running counters that give Keras' auto-generated layer names. */
typedef struct keras_names {
    int conv, maxpool, avgpool, concat;
} keras_names_t;

static void keras_name(char *buf, size_t len, const char *base, int *counter)
{
    if (*counter == 0)
        snprintf(buf, len, "%s", base);
    else
        snprintf(buf, len, "%s_%d", base, *counter);
    (*counter)++;
}

/* Keras conv2d_bn: conv (no bias) + BN(scale=False) + ReLU. same=1: "same" padding. */
static int conv2d_bn(nn_model_t *m, keras_names_t *kn, int in, int filters, int kh, int kw,
                     int stride, int same)
{
    char name[NN_NAME_MAX];
    const int index = kn->conv;
    int x;
    keras_name(name, sizeof name, "conv2d", &kn->conv);
    if ((x = nn_add_conv(m, name, in, filters, kh, kw, stride, stride, NULL, same, 0)) < 0)
        return x;
    if (index == 0)
        snprintf(name, sizeof name, "batch_normalization");
    else
        snprintf(name, sizeof name, "batch_normalization_%d", index);
    if ((x = nn_add_bn(m, name, x, INCEPTION_BN_EPS, INCEPTION_BN_MOMENTUM, 0, 1)) < 0)
        return x;
    if (index == 0)
        snprintf(name, sizeof name, "activation");
    else
        snprintf(name, sizeof name, "activation_%d", index);
    return nn_add_relu(m, name, x);
}

static int max_pool(nn_model_t *m, keras_names_t *kn, int in)
{
    char name[NN_NAME_MAX];
    keras_name(name, sizeof name, "max_pooling2d", &kn->maxpool);
    return nn_add_maxpool(m, name, in, 3, 3, 2, 2, NULL, 0, 0);
}

/* AveragePooling2D((3,3), strides=(1,1), padding="same"): padding not counted. */
static int avg_pool_same(nn_model_t *m, keras_names_t *kn, int in)
{
    char name[NN_NAME_MAX];
    keras_name(name, sizeof name, "average_pooling2d", &kn->avgpool);
    return nn_add_avgpool(m, name, in, 3, 3, 1, 1, NULL, 1, 0, 0);
}

static int concat(nn_model_t *m, const char *name, int n_in, const int *in)
{
    return nn_add_concat(m, name, n_in, in);
}

/* An unnamed Keras concatenate (inside mixed9/mixed10). */
static int concat_auto(nn_model_t *m, keras_names_t *kn, int n_in, const int *in)
{
    char name[NN_NAME_MAX];
    keras_name(name, sizeof name, "concatenate", &kn->concat);
    return nn_add_concat(m, name, n_in, in);
}

/* The stem: 299 -> 149 -> 147 -> 147 -> 73 -> 73 -> 71 -> 35 (at 299). */
static int stem(nn_model_t *m, keras_names_t *kn)
{
    int x;
    if ((x = conv2d_bn(m, kn, 0, 32, 3, 3, 2, 0)) < 0) return x;
    if ((x = conv2d_bn(m, kn, x, 32, 3, 3, 1, 0)) < 0) return x;
    if ((x = conv2d_bn(m, kn, x, 64, 3, 3, 1, 1)) < 0) return x;
    if ((x = max_pool(m, kn, x)) < 0) return x;
    if ((x = conv2d_bn(m, kn, x, 80, 1, 1, 1, 0)) < 0) return x;
    if ((x = conv2d_bn(m, kn, x, 192, 3, 3, 1, 0)) < 0) return x;
    return max_pool(m, kn, x);
}

/* mixed0..mixed2 (35x35): 1x1 / 1x1-5x5 / 1x1-3x3-3x3 / avgpool-1x1(pool_filters). */
static int block_35(nn_model_t *m, keras_names_t *kn, const char *name, int x, int pool_filters)
{
    int b[4], t;
    if ((b[0] = conv2d_bn(m, kn, x, 64, 1, 1, 1, 1)) < 0) return b[0];
    if ((t = conv2d_bn(m, kn, x, 48, 1, 1, 1, 1)) < 0) return t;
    if ((b[1] = conv2d_bn(m, kn, t, 64, 5, 5, 1, 1)) < 0) return b[1];
    if ((t = conv2d_bn(m, kn, x, 64, 1, 1, 1, 1)) < 0) return t;
    if ((t = conv2d_bn(m, kn, t, 96, 3, 3, 1, 1)) < 0) return t;
    if ((b[2] = conv2d_bn(m, kn, t, 96, 3, 3, 1, 1)) < 0) return b[2];
    if ((t = avg_pool_same(m, kn, x)) < 0) return t;
    if ((b[3] = conv2d_bn(m, kn, t, pool_filters, 1, 1, 1, 1)) < 0) return b[3];
    return concat(m, name, 4, b);
}

/* mixed3: grid reduction 35 -> 17. */
static int block_reduce_a(nn_model_t *m, keras_names_t *kn, int x)
{
    int b[3], t;
    if ((b[0] = conv2d_bn(m, kn, x, 384, 3, 3, 2, 0)) < 0) return b[0];
    if ((t = conv2d_bn(m, kn, x, 64, 1, 1, 1, 1)) < 0) return t;
    if ((t = conv2d_bn(m, kn, t, 96, 3, 3, 1, 1)) < 0) return t;
    if ((b[1] = conv2d_bn(m, kn, t, 96, 3, 3, 2, 0)) < 0) return b[1];
    if ((b[2] = max_pool(m, kn, x)) < 0) return b[2];
    return concat(m, "mixed3", 3, b);
}

/* mixed4..mixed7 (17x17) with factorized 7x7 convolutions of width c7. */
static int block_17(nn_model_t *m, keras_names_t *kn, const char *name, int x, int c7)
{
    int b[4], t;
    if ((b[0] = conv2d_bn(m, kn, x, 192, 1, 1, 1, 1)) < 0) return b[0];
    if ((t = conv2d_bn(m, kn, x, c7, 1, 1, 1, 1)) < 0) return t;
    if ((t = conv2d_bn(m, kn, t, c7, 1, 7, 1, 1)) < 0) return t;
    if ((b[1] = conv2d_bn(m, kn, t, 192, 7, 1, 1, 1)) < 0) return b[1];
    if ((t = conv2d_bn(m, kn, x, c7, 1, 1, 1, 1)) < 0) return t;
    if ((t = conv2d_bn(m, kn, t, c7, 7, 1, 1, 1)) < 0) return t;
    if ((t = conv2d_bn(m, kn, t, c7, 1, 7, 1, 1)) < 0) return t;
    if ((t = conv2d_bn(m, kn, t, c7, 7, 1, 1, 1)) < 0) return t;
    if ((b[2] = conv2d_bn(m, kn, t, 192, 1, 7, 1, 1)) < 0) return b[2];
    if ((t = avg_pool_same(m, kn, x)) < 0) return t;
    if ((b[3] = conv2d_bn(m, kn, t, 192, 1, 1, 1, 1)) < 0) return b[3];
    return concat(m, name, 4, b);
}

/* mixed8: grid reduction 17 -> 8. */
static int block_reduce_b(nn_model_t *m, keras_names_t *kn, int x)
{
    int b[3], t;
    if ((t = conv2d_bn(m, kn, x, 192, 1, 1, 1, 1)) < 0) return t;
    if ((b[0] = conv2d_bn(m, kn, t, 320, 3, 3, 2, 0)) < 0) return b[0];
    if ((t = conv2d_bn(m, kn, x, 192, 1, 1, 1, 1)) < 0) return t;
    if ((t = conv2d_bn(m, kn, t, 192, 1, 7, 1, 1)) < 0) return t;
    if ((t = conv2d_bn(m, kn, t, 192, 7, 1, 1, 1)) < 0) return t;
    if ((b[1] = conv2d_bn(m, kn, t, 192, 3, 3, 2, 0)) < 0) return b[1];
    if ((b[2] = max_pool(m, kn, x)) < 0) return b[2];
    return concat(m, "mixed8", 3, b);
}

/* mixed9, mixed10 (8x8): expanded filter banks; i = 0 or 1. */
static int block_8(nn_model_t *m, keras_names_t *kn, int i, int x)
{
    char name[NN_NAME_MAX];
    int b[4], t, pair[2];
    if ((b[0] = conv2d_bn(m, kn, x, 320, 1, 1, 1, 1)) < 0) return b[0];
    if ((t = conv2d_bn(m, kn, x, 384, 1, 1, 1, 1)) < 0) return t;
    if ((pair[0] = conv2d_bn(m, kn, t, 384, 1, 3, 1, 1)) < 0) return pair[0];
    if ((pair[1] = conv2d_bn(m, kn, t, 384, 3, 1, 1, 1)) < 0) return pair[1];
    snprintf(name, sizeof name, "mixed9_%d", i);
    if ((b[1] = concat(m, name, 2, pair)) < 0) return b[1];
    if ((t = conv2d_bn(m, kn, x, 448, 1, 1, 1, 1)) < 0) return t;
    if ((t = conv2d_bn(m, kn, t, 384, 3, 3, 1, 1)) < 0) return t;
    if ((pair[0] = conv2d_bn(m, kn, t, 384, 1, 3, 1, 1)) < 0) return pair[0];
    if ((pair[1] = conv2d_bn(m, kn, t, 384, 3, 1, 1, 1)) < 0) return pair[1];
    if ((b[2] = concat_auto(m, kn, 2, pair)) < 0) return b[2];
    if ((t = avg_pool_same(m, kn, x)) < 0) return t;
    if ((b[3] = conv2d_bn(m, kn, t, 192, 1, 1, 1, 1)) < 0) return b[3];
    snprintf(name, sizeof name, "mixed%d", 9 + i);
    return concat(m, name, 4, b);
}

/* InceptionV3 (Keras layout). size >= 75 as Keras requires. Caller owns *out. */
int zoo_inceptionv3(nn_model_t **out, int size, int classes, uint64_t seed)
{
    int rc = 0, x;
    keras_names_t kn = {0, 0, 0, 0};
    char block[24], name[24];
    *out = NULL;
    nn_model_t *m = NULL;
    CHECK(size >= 75, SC_ERR_ARG, "inceptionv3 needs an input of at least 75x75 (got %d)", size);
    m = nn_model_create(3, size, size);
    CHECK_ALLOC(m);
    nn_set_block(m, "stem");
    CHECK_RC(x = stem(m, &kn));
    nn_set_block(m, "mixed0");
    CHECK_RC(x = block_35(m, &kn, "mixed0", x, 32));
    nn_set_block(m, "mixed1");
    CHECK_RC(x = block_35(m, &kn, "mixed1", x, 64));
    nn_set_block(m, "mixed2");
    CHECK_RC(x = block_35(m, &kn, "mixed2", x, 64));
    nn_set_block(m, "mixed3");
    CHECK_RC(x = block_reduce_a(m, &kn, x));
    const int c7[4] = {128, 160, 160, 192};
    for (int i = 0; i < 4; i++) {
        snprintf(block, sizeof block, "mixed%d", 4 + i);
        snprintf(name, sizeof name, "mixed%d", 4 + i);
        nn_set_block(m, block);
        CHECK_RC(x = block_17(m, &kn, name, x, c7[i]));
    }
    nn_set_block(m, "mixed8");
    CHECK_RC(x = block_reduce_b(m, &kn, x));
    for (int i = 0; i < 2; i++) {
        snprintf(block, sizeof block, "mixed%d", 9 + i);
        nn_set_block(m, block);
        CHECK_RC(x = block_8(m, &kn, i, x));
    }
    snprintf(m->gradcam_layer, sizeof m->gradcam_layer, "mixed10");
    nn_set_block(m, "logits");
    CHECK_RC(x = nn_add_gap(m, "avg_pool", x));
    CHECK_RC(x = nn_add_dense(m, "predictions", x, classes, 1));
    snprintf(m->arch, sizeof m->arch, "inceptionv3");
    snprintf(m->normalize, sizeof m->normalize, "inception");
    m->num_classes = classes;
    CHECK_RC(nn_model_finalize(m, seed));
    *out = m;
    m = NULL;
cleanup:
    if (rc < 0)
        SC_ERROR("cannot build inceptionv3 for a %dx%d input with %d classes", size, size,
                 classes);
    nn_model_destroy(m);
    return rc;
}
