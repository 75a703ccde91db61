/*
 * dp.h - data-parallel training helpers over MPI (module train, prefix dp_).
 *
 * Owned by common/train. Every rank holds a full replica of the model and
 * computes a shard of every global batch:
 *
 *   Shard rule. A global batch of B samples (positions 0..B-1 in the epoch's
 *   order) is split over P ranks into contiguous blocks: rank r computes the
 *   positions [floor(r*B/P), floor((r+1)*B/P)). Which samples a rank sees
 *   depends only on (B, P, r), and the union over ranks is the global batch,
 *   so the summed gradient depends only on the global batch (up to the order
 *   of floating-point additions).
 *
 * The loss is the mean over the global batch, so each rank scales its logit
 * gradient by 1/B; the parameter gradients are then summed over ranks with
 * one MPI_Allreduce on the gradient slab. Batch normalization in training
 * mode normalizes with the statistics of the GLOBAL batch: the model's
 * bn_hook (layers.h) sums the per-channel sums and counts across ranks in the
 * forward pass and the per-channel sums of dy and dy*xhat in the backward
 * pass, so P ranks compute what one rank computes on the whole batch.
 *
 * Functions marked COLLECTIVE must be called by every rank of the
 * communicator in the same order.
 */
#ifndef DP_H
#define DP_H

#include <mpi.h>
#include <stddef.h>

#include "nn/model.h"

/* The shard [*begin, *end) of rank `rank` of `ranks` in a global batch of `batch`. */
void dp_shard(int batch, int ranks, int rank, int *begin, int *end);

/* State of the batch-norm hook: the communicator and a packing buffer. */
typedef struct dp_bn_ctx dp_bn_ctx_t;

/*
 * Install the cross-rank batch-norm hook on m (m->bn_hook, m->bn_hook_ctx),
 * sized for the model's widest BN layer. With a single rank nothing is
 * installed (the sums are already global). The context is owned by the
 * caller: dp_bn_hook_remove(m, ctx) uninstalls and frees it. NULL *ctx with
 * a 0 return means "no hook needed".
 */
int dp_bn_hook_install(nn_model_t *m, MPI_Comm comm, dp_bn_ctx_t **ctx);
void dp_bn_hook_remove(nn_model_t *m, dp_bn_ctx_t *ctx);
/* MPI errors seen inside the hook (which cannot return a status); 0 when none. */
int dp_bn_hook_error(const dp_bn_ctx_t *ctx);

/* Sum m->grads over the ranks, in place. COLLECTIVE. */
int dp_allreduce_grads(nn_model_t *m, MPI_Comm comm);

/* Copy rank 0's parameter slab (weights and BN statistics) to every rank. COLLECTIVE. */
int dp_broadcast_params(nn_model_t *m, MPI_Comm comm);

/* A status agreed by all ranks: the most negative of the ranks' rc. COLLECTIVE. */
int dp_agree(int rc, MPI_Comm comm);

#endif /* DP_H */
