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
 * A convolution followed by a ReLU without a BN (models whose exporter folded
 * the BN already) applies that ReLU in its epilogue the same way, with its
 * own weights (bn_of -1, relu_of set), unless the convolution's output is
 * kept (a cascade state starting at the ReLU reads it): then both run as
 * they are (nn_fuse_taken).
 *
 * An average pool whose only reader is a 1x1 stride-1 convolution with fewer
 * output channels than the pool has, the pool keeping the map's size
 * (Inception's pool branches), is commuted with it in a fused pass:
 * conv(avgpool(x)) = avgpool(W x) + b exactly in real arithmetic, since the
 * pool is linear and the same in every channel (the padding's zeros stay
 * zeros under W; the divisor is per position, not per channel). The pool then
 * runs over the convolution's output channels (32-192 in InceptionV3) instead
 * of its input's (192-2048), forward and backward; the sums round differently.
 * The convolution writes W x into the pool's output buffer, pools it into its
 * own (or its ReLU's) output, then adds the bias and applies the ReLU; its
 * backward pools the upstream gradient back into the pool's gradient buffer
 * and adds W^T of that into x's gradient, and the pool's own passes are
 * skipped. Not when the pool's values are kept (nn_model_keep, a cascade
 * state starting at the convolution): nn_fuse_commuted says which.
 *
 * A BN followed by a ReLU whose only reader is a pointwise convolution (1x1,
 * stride 1, unpadded; DenseNet's norm1 -> relu1 -> conv1 and its transitions,
 * the pre-activation layout) is applied by that convolution while it packs its
 * input for the GEMM (nn/conv_packed.h conv_packed_forward_pre): the BN+ReLU
 * output is never stored, and the backward recomputes the ReLU's decisions
 * from the BN's input while W^T dy is in cache, adding into the BN's input
 * gradients (the memory-efficient DenseNet's recomputation, without the
 * recomputed copy). The same bits as the BN+ReLU pass followed by the
 * convolution. Only on the packed kernel's CPUs, in fused passes, and not
 * when the BN's or the ReLU's values are kept (a cascade state starting at
 * the ReLU or the convolution): nn_fuse_pre says which.
 *
 * When such a convolution's only reader is an average pool of non-overlapping
 * 2x2 windows without padding (DenseNet's transitions: BN, ReLU, 1x1
 * convolution halving the channels, 2x2 pool), the pool is applied first,
 * while packing: pool(W r + b) = W pool(r) + b exactly in real arithmetic
 * (the pool is linear, the same in every channel, and every window has four
 * cells), so the GEMM runs on a quarter of the pixels and writes the pool's
 * output; the backward multiplies W^T by the pool's gradient and spreads a
 * quarter of it over each window while applying the ReLU and the BN. The
 * sums round differently from the pool after the convolution. Not when the
 * convolution's values are kept (a state starting at the pool) or the pool's:
 * nn_fuse_pre_pool says which.
 *
 * A GELU whose only reader is a pointwise convolution (ConvNeXt's MLP: 1x1,
 * GELU, 1x1) is applied by that convolution to each block of its input as the
 * GEMM packs it (nn_gemm_rows_seg_map): the GELU's output is never stored nor
 * read back, and the values packed are its forward's, so the same bits. Its
 * backward runs as it is (it reads the GELU's input, which the convolution
 * before it stored). Not when the GELU's values are kept: nn_fuse_gelu says
 * which.
 *
 * When that GELU's input is itself a pointwise convolution that only the
 * GELU reads, and an image has at least CONV_PACKED_MLP_MIN_PIXELS pixels
 * (ConvNeXt's first two stages), the two convolutions form an MLP pair
 * (nn/conv_packed.h conv_packed_mlp_*): in a fused pass the first computes
 * both, a slice of each image's columns at a time, so that the second packs
 * the hidden layer's slice from L2 instead of memory; and in the backward
 * the second computes the pair's input gradient the same way, W2^T dy of a
 * slice, the GELU's derivative applied to it in place and W1^T of that, so
 * that neither the GELU's gradient nor the first convolution's is written to
 * memory and read back. The same additions in the same order, so the same
 * bits. The memory plan keeps the second's output from the first's step on,
 * and the pair's input gradient from the second's backward on. A forward from
 * the GELU or the second convolution runs the second alone; a backward that
 * stops at or above the first, or in which the GELU's or the first's
 * gradient is kept, runs the three as they are: nn_fuse_mlp and
 * nn_fuse_mlp_bwd say which.
 *
 * Pointwise convolutions (1x1, stride 1, unpadded) that read the same node,
 * one after the other among the nodes that read it or add into its gradient
 * (an Inception block's branches: 2-3 of them, ResNet's first block's conv1
 * and downsample), form a sibling group when none has a prologue or a
 * commutable pool: in a fused pass the first member computes every member's
 * output in one product that packs each block of the input once for all of
 * them (nn_gemm_rows_multi), and its backward, which runs after the others',
 * their input gradients in one product over their output gradients stacked
 * along K (nn_gemm_packed_ksrc, the weights stacked by nn/wpack.h). Each
 * output element gets the same additions in the same order as when each
 * member runs alone, and the input gradient the members' contributions in the
 * order of the backward, so the bits are the same. The other members' passes
 * are skipped; the memory plan keeps their outputs from the first member's
 * step on and their output gradients until its backward. A forward from a
 * node past the first member runs the members after it alone, as does a
 * backward that stops at or above the first; a backward from inside a branch
 * (not every member's gradient live) runs the live members alone, in order, at
 * the first member. nn_fuse_sibs says which.
 */
#ifndef NN_FUSE_H
#define NN_FUSE_H

#include "nn/model.h"

typedef struct nn_fuse {
    int n_nodes;
    int *bn_of;         /* [n_nodes] conv id -> its folded BN id, else -1 */
    int *relu_of;       /* [n_nodes] conv id -> the ReLU fused after it (or its BN), else -1 */
    int *folded_into;   /* [n_nodes] BN or ReLU id -> the conv that computes it, else -1 */
    int *pool_of;       /* [n_nodes] conv id -> the average pool commuted with it, else -1 */
    int *pool_into;     /* [n_nodes] average pool id -> the conv commuted with it, else -1 */
    int *pre_of;        /* [n_nodes] pointwise conv id -> the BN whose BN+ReLU it packs, else -1 */
    int *pre_into;      /* [n_nodes] that BN's id and its ReLU's -> the conv, else -1 */
    int *pre_pool;      /* [n_nodes] such a conv id -> the 2x2 average pool it applies first, else -1 */
    int *pool_pre;      /* [n_nodes] that pool's id -> the conv, else -1 */
    ptrdiff_t *w_off;   /* [n_nodes] offset of a folded conv's W' in `params`, else -1 */
    ptrdiff_t *b_off;   /* [n_nodes] offset of its b' */
    float *params;      /* the folded weights and biases */
    size_t n_params;
    uint64_t gen;       /* m->param_gen the folded tensors were computed from */
    int valid;          /* params hold the fold of generation `gen` */
    uint8_t *dirty;     /* [n_nodes] folded conv whose parameters changed since `gen` */
    uint64_t dirty_gen; /* m->param_gen after the last nn_model_node_params_changed that
                         * marked `dirty` on a current fold: up to it only those changed */
    int *gelu_of;       /* [n_nodes] pointwise conv id -> the GELU it applies while packing, else -1 */
    int *gelu_into;     /* [n_nodes] that GELU's id -> the conv, else -1 */
    int *sib_lead;      /* [n_nodes] pointwise conv id -> the first of its sibling group, else -1 */
    int *sib_next;      /* [n_nodes] the next member of the group, else -1 */
    uint64_t *sib_gen;  /* [n_nodes] a group's first member -> m->act_gen of the pass whose
                         * forward computed the whole group there */
    int *mlp_of;        /* [n_nodes] an MLP pair's first convolution -> its second, else -1 */
    int *mlp_into;      /* [n_nodes] the second -> the first, else -1 */
    uint64_t *mlp_gen;  /* [n_nodes] the second -> m->act_gen of the pass whose forward
                         * computed it at the first */
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
/* Number of convolutions folded with a BN (and of those, with a ReLU too);
 * a ReLU taken without a BN is not counted. */
int nn_fuse_count(const nn_fuse_t *f, int *with_relu);

/* The convolution that computes node id (a BN or ReLU) in the current fused
 * pass, or -1: folded_into, except for a ReLU taken without a BN after a kept
 * convolution. */
int nn_fuse_taken(const nn_model_t *m, int id);

/* Output buffer that node id's kernel writes in a fused pass: the ReLU's or
 * the BN's out for a folded conv, the node's own out otherwise. */
float *nn_fuse_dst(const nn_model_t *m, int id);

/* 1 when a fused pass leaves node id's output or its gradient out of the
 * node's own buffers: a folded BN, a convolution that writes its BN's or
 * ReLU's output, a commuted pool, a prologue's BN or ReLU, a convolution that
 * applies its pool first. A method reading such a node's activation or
 * gradient needs nn_forward (nn_fused_shows). 0 without a fusion plan. */
int nn_fuse_hides(const nn_model_t *m, int id);
/* The average pool that convolution `conv` runs commuted in the current
 * fused pass, or -1: the plan pairs them, the pool's values are not kept and
 * the pool's input has buffers of its own. */
int nn_fuse_commuted(const nn_model_t *m, int conv);

/* The BN that pointwise convolution `conv` applies with its ReLU while packing
 * its input in the current fused pass (fuse.h), or -1. */
int nn_fuse_pre(const nn_model_t *m, int conv);
/* The convolution that applies BN or ReLU node id as its prologue in the
 * current fused pass, or -1. */
int nn_fuse_pre_taken(const nn_model_t *m, int id);
/* The BN such a convolution would apply, from the graph alone (the memory
 * plan and the workspace allow for it), or -1. */
int nn_fuse_pre_plan(const nn_model_t *m, int conv);
/* The average pool that convolution `conv` applies before itself in its
 * prologue in the current fused pass (fuse.h), or -1. */
int nn_fuse_pre_pool(const nn_model_t *m, int conv);
/* The pool such a convolution would apply first, from the graph alone, or -1. */
int nn_fuse_pre_pool_plan(const nn_model_t *m, int conv);
/* Bits: 1 the prologue, 2 its pool applied first, 4 the GELU prologue, 8 the
 * MLP pair; all by default. Tests compare each with the passes it replaces;
 * benchmarks time them. */
#define NN_FUSE_PROLOGUE 1
#define NN_FUSE_PROLOGUE_POOL 2
#define NN_FUSE_PROLOGUE_GELU 4
#define NN_FUSE_MLP 8
#define NN_FUSE_PROLOGUE_ALL \
    (NN_FUSE_PROLOGUE | NN_FUSE_PROLOGUE_POOL | NN_FUSE_PROLOGUE_GELU | NN_FUSE_MLP)
extern int nn_fuse_prologue;
/* The GELU that pointwise convolution `conv` applies to its input while
 * packing it in the current fused pass (fuse.h), or -1; the same from the
 * graph alone; and the convolution that so applies GELU node id, or -1. */
int nn_fuse_gelu(const nn_model_t *m, int conv);
int nn_fuse_gelu_plan(const nn_model_t *m, int conv);
int nn_fuse_gelu_taken(const nn_model_t *m, int id);
/* The MLP pair (fuse.h) of pointwise convolution `conv`, from the graph
 * alone: its first convolution when conv is the second, else -1. */
int nn_fuse_mlp_plan(const nn_model_t *m, int conv);
/* The second convolution of the pair whose first, `conv`, computes both in
 * the current fused pass, or -1. */
int nn_fuse_mlp(const nn_model_t *m, int conv);
/* The first convolution of the pair whose second, `conv`, computes the pair's
 * input gradient in a backward with options o after a fused pass, or -1. */
int nn_fuse_mlp_bwd(const nn_model_t *m, int conv, const nn_backward_opts_t *o);

/* The sibling groups of m's graph (fuse.h): lead[c] the first member of
 * convolution c's group (c itself for the first), next[c] the member after
 * c; -1 where none. Arrays of m->n_nodes. */
void nn_fuse_plan_sibs(const nn_model_t *m, int *lead, int *next);
/* The members of the sibling group of convolution `conv` in the current fused
 * pass, in node order, into ids (NN_GEMM_MEMBERS at most; may be NULL):
 * their number, or 0 when conv is in no group. */
int nn_fuse_sibs(const nn_model_t *m, int conv, int *ids);
/* 1 (default): sibling groups computed together; 0: each member alone (tests
 * compare the two; benchmarks time them). */
extern int nn_fuse_siblings;

#endif
