/*
 * fuse.h - batch normalization folded into the preceding convolution for
 * inference passes (nn_forward_fused and the backward that follows it).
 *
 * Owned by common/nn. In inference a BN node is the per-channel affine map
 * y = x * s + t with s = gamma / sqrt(var + eps), t = beta - mean * s, so a
 * convolution whose only consumer is a BN node computes both at once with
 * the folded weights W' = W * s (per output channel) and bias b' = b * s + t;
 * when the BN's only consumer is a ReLU, the ReLU is applied in the same
 * epilogue, while the GEMM output is still in cache. The backward of such a
 * chain skips the BN: dL/dx = W'^T dL/dy_bn is the chain rule through both.
 *
 * The folded tensors are a cache of the parameters: they are recomputed at
 * the next fused pass after m->param_gen changes. Everything that writes
 * m->params outside model.c (loading, the optimizer, copying a base state)
 * calls nn_model_params_changed(); nn_model_finalize, nn_model_reinit_block
 * and training-mode forwards (which move the running statistics) bump it
 * themselves. A write of one node's parameters announced by
 * nn_model_node_params_changed (a cascade state switched in) marks its chain
 * only: the next refresh refolds the marked chains when nothing else changed
 * since the last fold, with the same arithmetic, so the result is the same.
 *
 * A chain is folded only when the convolution's and the BN's outputs are
 * used by nothing else and neither is the model's output or logits node:
 * in a fused pass their own out/grad buffers are not written (the layer
 * methods that read a node's activation and gradient use nn_forward).
 */
#ifndef NN_FUSE_H
#define NN_FUSE_H

#include "nn/model.h"

typedef struct nn_fuse {
    int n_nodes;
    int *bn_of;         /* [n_nodes] conv id -> its folded BN id, else -1 */
    int *relu_of;       /* [n_nodes] conv id -> the ReLU fused after its BN, else -1 */
    int *folded_into;   /* [n_nodes] BN or ReLU id -> the conv that computes it, else -1 */
    ptrdiff_t *w_off;   /* [n_nodes] offset of a folded conv's W' in `params`, else -1 */
    ptrdiff_t *b_off;   /* [n_nodes] offset of its b' */
    float *params;      /* the folded weights and biases */
    size_t n_params;
    uint64_t gen;       /* m->param_gen the folded tensors were computed from */
    int valid;          /* params hold the fold of generation `gen` */
    uint8_t *dirty;     /* [n_nodes] folded conv whose parameters changed since `gen` */
    uint64_t dirty_gen; /* m->param_gen after the last nn_model_node_params_changed that
                         * marked `dirty` on a current fold: up to it only those changed */
} nn_fuse_t;

/* Builds the fusion plan of a finalized model (graph only; the folded values
 * are computed lazily by nn_fuse_refresh). Owned by the caller: nn_fuse_destroy. */
int nn_fuse_create(const nn_model_t *m, nn_fuse_t **out);
void nn_fuse_destroy(nn_fuse_t *f);
/* Bytes of the folded tensors a fused pass of m holds (m->fuse's, or what
 * nn_fuse_create would allocate), without allocating them. */
size_t nn_fuse_bytes(const nn_model_t *m);
/* Recomputes W' and b' when the model's parameters changed since the last call
 * (only the marked chains when only they changed). */
void nn_fuse_refresh(nn_fuse_t *f, nn_model_t *m);
/* Number of convolutions folded with a BN (and of those, with a ReLU too). */
int nn_fuse_count(const nn_fuse_t *f, int *with_relu);

/* Output buffer that node id's kernel writes in a fused pass: the ReLU's or
 * the BN's out for a folded conv, the node's own out otherwise. */
float *nn_fuse_dst(const nn_model_t *m, int id);

#endif
