/*
 * sal_cascade.h - the states of a cascading randomization computed together,
 * with the layers below the re-initialized blocks computed once per input
 * batch (module workers/saliency, prefix sal_cascade_).
 *
 * The states of one cascade (REFERENCE.md section 6) differ from the trained
 * model only in their re-initialized blocks; below the lowest of them every
 * state computes the trained model's activations for the same inputs. A
 * method (IG, SmoothGrad, XRAI...) runs once per state, each in its own
 * workspace, in lockstep: each state's method runs until its next engine
 * batch (sal_batch_gradients, sal_batch_logits) and waits there; when every
 * state waits, the cascade computes the waiting batches from the least to the
 * most randomized state. The first computes the whole forward pass; a later
 * state whose inputs are bit-identical (the methods' noise is keyed by image
 * and sample, not by the state) runs the forward from the first node of its
 * lowest re-initialized block (nn_forward_fused_from), and the full input
 * gradient backward. The same ops on the same inputs: the maps are bit-equal
 * to computing each state alone.
 *
 * The states' methods run one at a time, each on a thread of its own that
 * holds the baton (no two run at once; the model, BLAS and the logger see a
 * single caller), resumed from the least to the most randomized state.
 * Everything else a method does with the model (sal_target, Grad-CAM's
 * sal_gradient, LRP...) runs at once with its own state's parameters: they
 * are switched in before a state's method resumes. Its single-input forwards
 * of the image (the target, vanilla gradients, CAMs: sal_cascade_forward)
 * start at the state's first re-initialized node when the pass before was
 * one of the same image by a less (or equally) randomized state.
 *
 * Parameters: one slab of the trained values and one of every cascade
 * block re-initialized (a block gets the same values in every state that
 * randomizes it, plan.h); switching a state copies the tensors of the nodes
 * whose block differs, and the next fused pass refolds only their BN chains
 * (nn_model_node_params_changed). Memory beyond one state (sal_cascade_bytes):
 * the second slab, one saliency workspace per state (Expected Gradients'
 * pool shared), and the kept outputs (not gradients) of the nodes below a
 * state's first re-initialized node that nodes above it read.
 */
#ifndef SAL_CASCADE_H
#define SAL_CASCADE_H

#include "saliency/saliency.h"

typedef struct sal_cascade sal_cascade_t;

/*
 * A cascade of n_states states of model m (finalized; its parameters are
 * overwritten). base: the trained parameters [m->n_params], the caller's,
 * read until sal_cascade_destroy; randomized: the same with every block that
 * any state re-initializes re-initialized (copied). random_node[k * m->n_nodes + i] is 1 when node i is re-initialized
 * in state k. One workspace per state at `batch` (sal_ws_create; normalize as
 * there). *out is the caller's: sal_cascade_destroy.
 */
int sal_cascade_create(sal_cascade_t **out, nn_model_t *m, int batch, const char *normalize,
                       const float *base, const float *randomized, int n_states,
                       const uint8_t *random_node);
void sal_cascade_destroy(sal_cascade_t *cs);
/* The nodes whose outputs a cascade of these states keeps (keep[i] = 1, [m->n_nodes]):
 * below a state's first re-initialized node, read by nodes from it on. sal_cascade_create
 * keeps them (nn_model_keep_outputs); a memory budget keeps them first so that
 * sal_ws_bytes counts them. */
void sal_cascade_keeps(const nn_model_t *m, int n_states, const uint8_t *random_node,
                       uint8_t *keep);
/* Bytes a cascade of n_states at `batch` holds beyond the model's own workspace
 * (sal_ws_bytes, which counts the model's buffers with its kept outputs): the
 * states' workspaces (their Expected Gradients pool is the model workspace's,
 * sal_ws_share_baselines) and the randomized slab. 0 on failure. */
size_t sal_cascade_bytes(const nn_model_t *m, int batch, int n_states);
/* The workspace of state k (avgmask, Expected Gradients' pool: set or share them on each). */
sal_ws_t *sal_cascade_ws(sal_cascade_t *cs, int k);
/* Make the model hold the parameters of state k. */
void sal_cascade_use(sal_cascade_t *cs, int k);
/* The first node whose parameters state k re-initializes (n_nodes: none). */
int sal_cascade_first_node(const sal_cascade_t *cs, int k);

/* What runs for one state: fn(ctx, k, ws) with the model holding state k's
 * parameters; a negative return is that state's error. */
typedef int (*sal_cascade_fn)(void *ctx, int state, sal_ws_t *ws);
/*
 * Run fn for the n listed states (distinct indices) in lockstep (above).
 * rcs[t] (may be NULL) receives the return of states[t]'s run. The model's
 * parameters may have been changed by others since the last run (every
 * tensor is copied at the first switch). Returns 0 or
 * the first negative rc (a thread that cannot start: SC_ERR_NOMEM).
 * reuse 0 computes every batch alone (the reference the tests compare with).
 */
int sal_cascade_run(sal_cascade_t *cs, const int *states, int n, int reuse, sal_cascade_fn fn,
                    void *ctx, int *rcs);

/* Engine batches computed with a reused lower part / all batches, since creation. */
void sal_cascade_counts(const sal_cascade_t *cs, long *reused, long *total);

/* Single-input forwards (sal_cascade_forward) that started above the lower layers / all. */
void sal_cascade_forward_counts(const sal_cascade_t *cs, long *reused, long *total);

/* For saliency.c: the inference forward of one input x [chw] for the state
 * or the plain workspace ws: nn_forward_fused (fused 1; the target, vanilla
 * and guided gradients, the CAMs whose layer a fused pass writes) or
 * nn_forward (0). None when ws's own last forward was of the same x, of the
 * same kind, with the same parameters, and the activations did not move since
 * (nn_model_t.act_gen; the backward passes after it do not move them): a
 * map's forward right after its target's. Under sal_cascade_run with reuse,
 * when the model's last pass was such a forward of the same x by a state whose
 * first re-initialized node is not below this state's, it starts at this
 * state's first re-initialized node (nn_forward_fused_from, nn_forward_from):
 * the states resume least randomized first, so each state's target forward,
 * and the forwards of its gradients and CAMs, reuse the lower layers of the
 * state before it. */
int sal_cascade_forward(sal_ws_t *ws, const float *x, int fused);
/* XRAI segmentations computed / used by the states (sal_cascade_xrai). */
void sal_cascade_xrai_counts(const sal_cascade_t *cs, long *segmented, long *used);

/* For sal_xrai.c, a state running under sal_cascade_run: XRAI's workspace
 * (xrai.h) holding the masks of `image` ([h,w,c], channels last) with
 * parameters p, shared by the states: the segmentation depends on the image
 * only, so it is computed once per image (again when the image or p
 * changes; every time without reuse). *out is the cascade's, valid until the state yields; the caller
 * ranks its own attribution on it (xrai_rank). Returns what
 * xrai_compute_masks returns (SC_ERR_UNDEFINED for a constant image). */
int sal_cascade_xrai(sal_ws_t *ws, const xrai_params_t *p, const float *image, xrai_ws_t **out);

/* For saliency.c: the batch of n inputs in ws->xb (targets in ws->targets)
 * of a state running under sal_cascade_run: waits until the cascade wrote
 * the input gradients (logits 0) into ws->gb, or the logits [n, classes]
 * (logits 1) into ws->gb. */
int sal_cascade_batch(sal_ws_t *ws, int n, int guided, int logits);

#endif
