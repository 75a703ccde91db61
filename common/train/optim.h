/*
 * optim.h - optimizers over a model's parameter slab (module train, prefix optim_).
 *
 * Owned by common/train. An optimizer updates the trainable tensors of
 * nn_model_t.params from nn_model_t.grads (batch-norm running statistics and
 * the alignment padding between tensors are never touched). The update rules
 * are PyTorch's, so that a step can be checked against torch.optim:
 *
 *   SGD  (torch.optim.SGD, dampening 0, nesterov off)
 *        g = grad + wd * p;  v = momentum * v + g  (v = g on the first step);
 *        p -= lr * v
 *   Adam (torch.optim.Adam, amsgrad off; weight decay is the coupled L2 term)
 *        g = grad + wd * p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *        p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 *
 * The state (velocity, or first and second moments, and the step count) is
 * exposed for checkpoints. Arithmetic is float32 for the slab and double for
 * the scalar factors; the same inputs give the same bits on every rank.
 */
#ifndef OPTIM_H
#define OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "nn/model.h"

typedef enum optim_kind { OPTIM_SGD = 0, OPTIM_ADAM } optim_kind_t;

typedef struct optim_config {
    optim_kind_t kind;
    double momentum;     /* SGD: 0.9 */
    double beta1, beta2; /* Adam: 0.9, 0.999 */
    double eps;          /* Adam: 1e-8 */
    double weight_decay; /* L2 coefficient added to the gradient; 0 */
} optim_config_t;

typedef struct optim optim_t;

/* Defaults above for `kind`. */
void optim_config_default(optim_config_t *cfg, optim_kind_t kind);
/* "sgd" | "adam" -> kind; SC_ERR_ARG (logged) otherwise. */
int optim_parse(const char *name, optim_kind_t *kind);
const char *optim_name(optim_kind_t kind);

/* An optimizer for the finalized model m (its layout must not change while
 * the optimizer lives). NULL (logged) on bad arguments or memory. Caller owns
 * it: optim_destroy. */
optim_t *optim_create(const nn_model_t *m, const optim_config_t *cfg);
void optim_destroy(optim_t *opt);

/* One update of m->params from m->grads with learning rate lr. */
void optim_step(optim_t *opt, nn_model_t *m, double lr);

/*
 * The state for checkpoints: state[0] (SGD velocity or Adam first moment) and
 * state[1] (Adam second moment; NULL for SGD), each `n_params` floats laid
 * out like the slab, owned by the optimizer (read or overwrite in place); and
 * the number of steps taken.
 */
float *optim_state(optim_t *opt, int which);
size_t optim_state_size(const optim_t *opt);
int64_t optim_steps(const optim_t *opt);
void optim_set_steps(optim_t *opt, int64_t steps);

/* Trainable ranges of the slab: offsets and counts of every trainable tensor
 * (weights, biases, BN gamma/beta). Pointers into the optimizer; count returned. */
int optim_ranges(const optim_t *opt, const size_t **offsets, const size_t **counts);

#endif /* OPTIM_H */
