/*
 * wpack.h - the packed transposed weights of the convolutions' input
 * gradients, kept per model state across the passes that use them.
 *
 * Owned by common/nn. A convolution whose input gradient takes the packed
 * path (nn/conv_packed.h) multiplies W^T by the output gradient (or, at
 * stride 1, the adjoint's weights, W flipped and transposed, by its patch
 * matrix: conv_packed_pack_wt); packing them into the kernel's panels costs
 * M x K copies per call, which at batch 1 is a measurable share of a
 * gradient (ResNet-50: 7-12 %). The packed panels are
 * a cache of the parameters (raw or BN-folded, nn/fuse.h), valid while
 * m->param_gen does not move: any nn_model_params_changed drops every entry,
 * and nn_model_node_params_changed (a cascade state switched in) drops only
 * the entries of the convolution whose weights or folded BN it names, when
 * the cache was current before, as the fold itself does. An entry also
 * remembers which weights it packed (the raw tensor or the folded one), so a
 * fused pass after an unfused one repacks instead of reusing. The pack is
 * the same copies whenever it runs, so a cached and a fresh pack give the
 * same bits.
 *
 * Memory: conv_packed_wt_floats per convolution on the packed input-gradient
 * path (about the model's convolution weights once more; for the members of
 * a sibling group their stacked pack instead, so that an unfused pass packs
 * their W^T per call),
 * 2 x 16/9 of the weights for a convolution on the Winograd path;
 * nn_wpack_bytes gives it for the memory budget. Built at the first use.
 */
#ifndef NN_WPACK_H
#define NN_WPACK_H

#include <stddef.h>
#include <stdint.h>

#include "nn/layers.h"
#include "nn/model.h"

/* What an entry holds: the packed weights of the input gradient's GEMM
 * (W^T or the adjoint's, nn/conv_packed.h), or the Winograd transforms of
 * the forward and of the input gradient (nn/conv_wino.h, which then replaces
 * that pack). */
enum { NN_WPACK_WT, NN_WPACK_WINO_FWD, NN_WPACK_WINO_BWD, NN_WPACK_SIB_WT, NN_WPACK_KINDS };

typedef struct nn_wpack {
    int n_nodes;
    ptrdiff_t *off[NN_WPACK_KINDS];    /* [n_nodes] offset of the node's entry in `data`, else -1 */
    const float **src[NN_WPACK_KINDS]; /* [n_nodes] the weights it was made from, NULL: empty */
    uint8_t *dirty;        /* [n_nodes] weights changed since `gen` (nn_model_node_params_changed) */
    int *sib_lead;         /* [n_nodes] nn_fuse_plan_sibs: a member's group's first, else -1 */
    float *data;
    size_t n_floats;
    uint64_t gen;          /* m->param_gen the entries are current for */
    uint64_t dirty_gen;    /* m->param_gen after the last marking on a current cache */
} nn_wpack_t;

/* Bytes of the cache of m (built or not): what nn_wpack_wt fills at most. */
size_t nn_wpack_bytes(const nn_model_t *m);
void nn_wpack_destroy(nn_wpack_t *w);
/* The entry of one kind of convolution node id, made from W (its raw
 * weights or its folded ones) when it is empty, stale or from other weights;
 * NULL when the node's shape does not take that path or the cache cannot be
 * allocated (the caller takes the path without the cache then: packing into
 * its workspace, or im2col instead of Winograd). Owned by m (m->wpack). */
const float *nn_wpack_get(nn_model_t *m, int id, int kind, const conv2d_shape_t *s,
                          const float *W);
/* nn_wpack_get(m, id, NN_WPACK_WT, s, W): the input gradient's packed weights. */
const float *nn_wpack_wt(nn_model_t *m, int id, const conv2d_shape_t *s, const float *W);
/* The stacked input-gradient weights of a sibling group (nn/fuse.h; kind
 * NN_WPACK_SIB_WT, kept at its first member ids[0]): the packed W^T of the
 * members' weights W[q] side by side along K, the last member first
 * (conv_packed_pack_sib_wt), so that one product adds their input gradients
 * in the order of the backward. Stale when any member's weights changed; NULL
 * when the cache cannot be built. */
const float *nn_wpack_sib_wt(nn_model_t *m, int n_mem, const int *ids, const float *const *W);
/* Called by nn_model_node_params_changed before it bumps m->param_gen: marks
 * the convolution whose weights node id holds or whose folded BN it is. */
void nn_wpack_node_changed(nn_model_t *m, int id);

#endif
