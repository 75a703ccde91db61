/*
 * zoo.h - model builders by architecture name.
 *
 * Every builder returns a finalized model (parameters initialized from seed)
 * with named blocks for cascading randomization, the default Grad-CAM layer
 * (m->gradcam_layer), the input convention (m->normalize) and m->arch set.
 * The output node is the logits node (no softmax): the explained scalar of the
 * paper is a pre-softmax logit, and training applies the loss on the logits.
 */
#ifndef NN_ZOO_H
#define NN_ZOO_H

#include <stdint.h>

#include "nn/model.h"

typedef struct zoo_arch {
    const char *name;
    const char *summary;
    int (*build)(nn_model_t **out, int size, int classes, uint64_t seed);
} zoo_arch_t;

/* Build architecture `arch` for a size x size, 3-channel input. Caller owns *out. */
int zoo_build(const char *arch, int size, int classes, uint64_t seed, nn_model_t **out);
/* The table of known architectures (terminated by a NULL name). */
const zoo_arch_t *zoo_list(void);

/* Blocks of m from the top (logits) down: the cascading randomization order
 * of docs/methods.md section 6. names point into m; returns the count. */
int zoo_blocks_top_down(const nn_model_t *m, const char **names, int max);

/* Builders (each in its own file). */
int zoo_democnn(nn_model_t **out, int size, int classes, uint64_t seed);
int zoo_demoresnet(nn_model_t **out, int size, int classes, uint64_t seed);
int zoo_resnet18(nn_model_t **out, int size, int classes, uint64_t seed);
int zoo_resnet50(nn_model_t **out, int size, int classes, uint64_t seed);
int zoo_densenet121(nn_model_t **out, int size, int classes, uint64_t seed);
int zoo_inceptionv3(nn_model_t **out, int size, int classes, uint64_t seed);

#endif
