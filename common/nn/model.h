/*
 * model.h - a CNN as a DAG of named nodes grouped into named blocks.
 *
 * Owned by common/nn. Build a model by adding nodes in topological order
 * (each node's inputs were added before it), then nn_model_finalize() to
 * allocate the parameter slab, then nn_model_prepare(batch) to size the
 * activation/gradient buffers and workspaces once. Forward and backward then
 * allocate nothing.
 *
 * Parameters live in one slab (`params`) with a parallel gradient slab
 * (`grads`), so the optimizer and MPI_Allreduce see one contiguous array.
 * Batch-norm running statistics are in the slab too but flagged non-trainable.
 */
#ifndef NN_MODEL_H
#define NN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "nn/layers.h"
#include "nn/ops/table.h"

#define NN_NAME_MAX 96
#define NN_MAX_RANK 6           /* general tensors: dims per sample */

/* Node kinds: one per file common/nn/ops/<op>.c, listed in nn/ops/table.h; the
 * behaviour of each is in its table entry (nn/op.h). */
#define NN_OP_ENUM(id, file) NN_##id,
typedef enum nn_op { NN_OP_LIST(NN_OP_ENUM) NN_OP_COUNT } nn_op;
#undef NN_OP_ENUM

const char *nn_op_name(nn_op op);
/* NN_OP_COUNT when unknown. */
nn_op nn_op_from_name(const char *name);

typedef enum nn_init { NN_INIT_DEFAULT = 0, NN_INIT_GLOROT_UNIFORM, NN_INIT_HE_NORMAL,
                       NN_INIT_ZEROS, NN_INIT_ONES } nn_init;

/* Which parameter tensor of a node. */
typedef enum nn_param_kind { NN_P_WEIGHT = 0, NN_P_BIAS, NN_P_GAMMA, NN_P_BETA, NN_P_MEAN,
                             NN_P_VAR, NN_P_KINDS } nn_param_kind;
const char *nn_param_kind_name(nn_param_kind k);

typedef struct nn_node {
    char name[NN_NAME_MAX];
    char block[NN_NAME_MAX];
    nn_op op;
    int n_in, *in;              /* input node ids */
    int c, h, w;                /* output shape per sample */
    /* General tensors (tokens [1, L, D], attention [H, L, L], ...): rank > 0
     * gives the shape one sample has in the exported graph run at batch 1
     * (the batch axis kept as an axis of size 1 wherever the graph put it);
     * c is then the element count and h = w = 1. rank 0: the c x h x w view. */
    int rank, dims[NN_MAX_RANK];
    int axis, start, end;       /* softmax_axis, layernorm, concat_axis, slice */
    int perm[NN_MAX_RANK];      /* transpose */
    float alpha;                /* scale */
    /* attributes */
    int out_c, kh, kw, sh, sw, pt, pb, pl, pr;
    int has_bias;               /* conv, dense */
    int ceil_mode, count_include_pad;
    float eps, momentum;
    int bn_scale, bn_center;
    int groups;                 /* gconv: channel groups; shuffle: groups of the channel shuffle */
    int ch_start;               /* chslice: first input channel taken (out_c channels) */
    nn_init init;               /* weight initializer (NN_INIT_DEFAULT: Glorot uniform) */
    /* parameters: offsets into the slab, -1 when absent */
    ptrdiff_t p_off[NN_P_KINDS];
    size_t p_count[NN_P_KINDS];
    /* runtime buffers, sized by nn_model_prepare */
    float *out, *grad;
    int32_t *argmax;            /* max pool */
    float *bn_mean, *bn_invstd; /* batch statistics saved in training mode */
    double *ln_stats;           /* layer norm: each position's mean, then its 1/std, of the
                                 * forward of pass ln_gen (m->act_gen), for the backward */
    uint64_t ln_gen;
    int grad_live;              /* grad buffer holds values in this backward pass */
    int bn_relu;                /* a ReLU whose backward also runs its BN input's
                                 * (nn_bn_relu_pair, set by nn_model_prepare) */
    int add_relu;               /* a ReLU whose backward also runs its add input's
                                 * (nn_add_relu_pair, set by nn_model_prepare) */
    int relu_fwd;               /* an add or a BN that writes its ReLU's output: that
                                 * ReLU is its only reader and computes in place over
                                 * it (set by nn_model_prepare; the ReLU's forward is
                                 * then a no-op) */
    int cview;                  /* a concat without buffers, read through its inputs
                                 * (nn/concat_view.h); out and grad are NULL */
    int keep;                   /* readable after a pass: NN_KEEP_ALL out and grad (nn_model_keep),
                                 * NN_KEEP_OUT the output only (nn_model_keep_outputs), 0 none */
    /* position classes of the output map (nn/posclass.h), per sample: pc_dup[b] is 1 when
     * sample b has positions with identical receptive fields, described by
     * pc_rep[b*h*w ...]. Elementwise nodes borrow their input's arrays (pc_owned 0);
     * nodes without spatial positions have pc_rep NULL. */
    int32_t *pc_rep;
    uint8_t *pc_dup;
    int pc_owned;
} nn_node_t;

enum { NN_KEEP_ALL = 1, NN_KEEP_OUT = 2 };

typedef struct nn_model {
    int n_nodes, cap_nodes;
    nn_node_t *nodes;
    char cur_block[NN_NAME_MAX];
    int output;                 /* id of the output node (last added unless set) */
    int finalized;
    float *params;
    float *grads;               /* [n_params]; NULL until prepared in the training plan */
    size_t n_params;
    /* prepared state */
    int max_batch, batch;
    int plan_mode;              /* nn_plan_mode the buffers were planned for */
    int n_bufs;                 /* shared activation/gradient buffers (nn/memplan.h) */
    float **bufs;
    size_t runtime_floats;      /* their total size */
    float *workspace;
    size_t ws_floats;
    double *scratch;            /* [2*max channels] for batch norm sums */
    int32_t *pc_table;          /* hash table of the position classes (nn/posclass.h) */
    int32_t *pc_same;           /* [max_batch]: the first sample of the last input pass whose
                                 * input has the same position classes (itself if none); every
                                 * map's classes are then the same, copied instead of computed */
    float *onehot;              /* [max_batch, classes]: dy of nn_backward_logit */
    /* data-parallel batch norm: reduces per-channel sums across ranks in training mode */
    bn_sums_hook_fn bn_hook;
    void *bn_hook_ctx;
    /* input convention recorded in model files */
    char normalize[96];         /* input convention (io/image_norm.h): a preset name (inception,
                                 * imagenet, unit, xrv) or "scale=... offset=..." */
    char gradcam_layer[NN_NAME_MAX];
    char arch[32];
    int num_classes;
    /* BN folded into convolutions for inference passes (nn/fuse.h) */
    struct nn_fuse *fuse;       /* the plan and folded parameters, built at the first fused pass */
    uint64_t param_gen;         /* bumped whenever the parameters change */
    struct nn_wpack *wpack;     /* packed W^T of the input gradients (nn/wpack.h), built at first use */
    int fused_pass;             /* the last forward was nn_forward_fused */
    uint64_t act_gen;           /* bumped by every forward pass and every re-plan of the buffers:
                                 * the outputs a pass left are current while it stays the same */
    double *prof;               /* SALCHECK_NODE_PROFILE=FILE: per node, the CPU seconds and
                                 * samples of its forward and its backward ([4 * id ...]),
                                 * appended to FILE by nn_model_destroy; NULL otherwise */
} nn_model_t;

/* Create an empty model with an input of c x h x w. Owned by caller: nn_model_destroy. */
nn_model_t *nn_model_create(int c, int h, int w);
void nn_model_destroy(nn_model_t *m);

/* Subsequent nodes belong to this block (randomization granularity). */
void nn_set_block(nn_model_t *m, const char *block);

/* Node constructors return the new node id (>= 0) or a negative sc_err
 * (bad shape, duplicate name). `pad`: explicit {top, bottom, left, right}
 * or NULL with same=1 for Keras "same", same=0 for "valid". */
int nn_add_conv(nn_model_t *m, const char *name, int in, int out_c, int kh, int kw, int sh,
                int sw, const int *pad, int same, int bias);
/* Grouped convolution (groups divides the input and output channels); groups equal to
 * the input channels is depthwise (ops/gconv.c). */
int nn_add_gconv(nn_model_t *m, const char *name, int in, int out_c, int groups, int kh, int kw,
                 int sh, int sw, const int *pad, int bias);
int nn_add_bn(nn_model_t *m, const char *name, int in, float eps, float momentum, int scale,
              int center);
int nn_add_relu(nn_model_t *m, const char *name, int in);
int nn_add_maxpool(nn_model_t *m, const char *name, int in, int kh, int kw, int sh, int sw,
                   const int *pad, int same, int ceil_mode);
int nn_add_avgpool(nn_model_t *m, const char *name, int in, int kh, int kw, int sh, int sw,
                   const int *pad, int same, int ceil_mode, int count_include_pad);
int nn_add_gap(nn_model_t *m, const char *name, int in);
int nn_add_dense(nn_model_t *m, const char *name, int in, int out, int bias);
int nn_add_concat(nn_model_t *m, const char *name, int n_in, const int *in);
int nn_add_add(nn_model_t *m, const char *name, int a, int b);
int nn_add_flatten(nn_model_t *m, const char *name, int in);
int nn_add_softmax(nn_model_t *m, const char *name, int in);
int nn_add_sigmoid(nn_model_t *m, const char *name, int in);

/* Node id by name, or -1. */
int nn_find(const nn_model_t *m, const char *name);
/* The last node before a trailing softmax/sigmoid: the logits node. */
int nn_logits_node(const nn_model_t *m);
size_t nn_node_size(const nn_node_t *node); /* c*h*w */
/* Product of dims[0..rank). */
static inline size_t nn_dims_count(int rank, const int *dims)
{
    size_t count = 1;
    for (int d = 0; d < rank && d < NN_MAX_RANK; d++)
        count *= (size_t)dims[d];
    return count;
}
/* The general shape of a node: its dims, or [1, c, h, w] for the c x h x w
 * view (the batch axis of size 1 first, as the exported graph has it). */
static inline int nn_node_shape(const nn_node_t *node, int dims[NN_MAX_RANK])
{
    if (node->rank) {
        for (int d = 0; d < node->rank; d++)
            dims[d] = node->dims[d];
        return node->rank;
    }
    dims[0] = 1; dims[1] = node->c; dims[2] = node->h; dims[3] = node->w;
    return 4;
}

/* Allocate the parameter slab and initialize every parameter from (seed, node name). */
int nn_model_finalize(nn_model_t *m, uint64_t seed);
/* nn_model_finalize with the slab left at zero, for a caller that fills
 * every parameter itself (a model file's weights: the random initializers of
 * a large model cost about half a second that the read then overwrites). */
int nn_model_finalize_uninit(nn_model_t *m);
/* Re-initialize the parameters of every node of `block` (all nodes when NULL)
 * with their initializers, keyed by (seed, node name); BN statistics reset
 * to 0/1 unless keep_bn_stats. Deterministic on every rank. */
int nn_model_reinit_block(nn_model_t *m, const char *block, uint64_t seed, int keep_bn_stats);
/* Pointer to a parameter tensor of node `id`, or NULL; count in *count. */
float *nn_param(nn_model_t *m, int id, nn_param_kind kind, size_t *count);
int nn_param_trainable(nn_param_kind kind);

/* Size buffers for batches up to max_batch. May be called again to resize.
 * Activations and gradients share memory where their lifetimes allow
 * (nn/memplan.h): after a pass only the input, the output, the logits and
 * nodes named by nn_model_keep hold their output and gradient (any number
 * of backward passes may follow one forward). */
int nn_model_prepare(nn_model_t *m, int max_batch);

/* Which passes the buffers serve. NN_PLAN_TRAIN (the default): any forward and
 * backward, parameter gradients and training mode included. NN_PLAN_INFER:
 * inference forwards and input gradients only (nn_backward refuses parameter
 * gradients and training backward); keeps far fewer activations. */
typedef enum nn_plan_mode { NN_PLAN_TRAIN = 0, NN_PLAN_INFER = 1 } nn_plan_mode;
/* Switch the plan mode; re-plans the buffers when prepared. NN_PLAN_INFER frees the
 * parameter gradients (m->grads); the training plan allocates them at its prepare. */
int nn_model_set_plan(nn_model_t *m, nn_plan_mode mode);
/* Keep node id's output and gradient readable after forward and backward (a
 * Grad-CAM layer, a test comparing a node with a reference); re-plans when
 * prepared and the node was not kept yet. */
int nn_model_keep(nn_model_t *m, int id);
/* Keep the outputs (not the gradients) of the nodes i with keep[i] set
 * readable after a pass, for a later nn_forward_fused_from that reads them;
 * one re-plan when prepared and a node was not kept yet. */
int nn_model_keep_outputs(nn_model_t *m, const uint8_t *keep);
/* Every node keeps its buffers (one re-plan): for passes that read every
 * activation afterwards (LRP, DeepLIFT). */
int nn_model_keep_all(nn_model_t *m);
/* Bytes nn_model_prepare(m, batch) would allocate in mode (activations,
 * gradients, pooling indices, position classes, workspace; parameters not
 * included), or 0 on failure. */
size_t nn_model_runtime_bytes(const nn_model_t *m, int batch, nn_plan_mode mode);

/* Forward a batch x[n, c, h, w] (n <= max_batch). training: BN batch statistics
 * and running-average update. Output at nn_output(m). */
int nn_forward(nn_model_t *m, const float *x, int n, int training);

/* The same inference forward with every conv -> BN (-> ReLU) chain computed by
 * the convolution with folded weights (nn/fuse.h): faster, equal to nn_forward
 * up to float rounding, deterministic. The outputs of the folded convolutions
 * and BNs are not written (their ReLU's or BN's output is); the backward that
 * follows gives the input gradient only (no parameter gradients), and no
 * gradient at the folded nodes. For the activation or gradient of an inner
 * layer use nn_forward. */
int nn_forward_fused(nn_model_t *m, const float *x, int n);
/* 1 when a fused pass (and the backward after it) writes node id's output
 * and gradient into the node's own buffers, as nn_forward does: what a
 * method that reads that node's activation and gradient (Grad-CAM's layer)
 * asks before choosing nn_forward_fused; 0 for a node the fusion computes
 * elsewhere (nn_fuse_hides), or when no fusion plan can be made. The answer
 * holds while the nodes' keep flags (nn_model_keep) stay as they are. */
int nn_fused_shows(nn_model_t *m, int id);
/* The fused forward again from node `from` on, for the same n inputs as the
 * fused pass before it: the nodes below `from` keep their outputs (a
 * chain folded into a convolution below `from` restarts at that
 * convolution). Exact when the parameters of the nodes below `from` did not
 * change since and their outputs that nodes from `from` on read are kept
 * (nn_model_keep): cascading randomization reuses the trained model's lower
 * layers this way (workers/saliency/sal_cascade.c). */
int nn_forward_fused_from(nn_model_t *m, int from, int n);
/* The same for nn_forward (no folding): the inference forward again from node
 * `from` on, after an nn_forward of the same n inputs, under the same
 * conditions (the caller checks that m->act_gen did not move since that pass
 * but by it). */
int nn_forward_from(nn_model_t *m, int from, int n);
/* Tells the model that m->params were written outside model.c (loading,
 * an optimizer step, copying a saved state): folded caches are recomputed. */
static inline void nn_model_params_changed(nn_model_t *m) { m->param_gen++; }
/* The same when only node id's parameters were written (a randomization
 * state switched in): the next fused pass refolds only that node's chain
 * when the folded cache was current before (nn/fuse.h). */
void nn_model_node_params_changed(nn_model_t *m, int id);

typedef struct nn_backward_opts {
    int guided_relu;        /* guided backprop ReLUs */
    int param_grads;        /* accumulate into m->grads (zero them yourself per step) */
    int input_grad;         /* compute the gradient at the input into dx */
    int training;           /* BN backward through batch statistics (the forward was training) */
    int down_to;            /* > 0: stop once node down_to's gradient is complete (no node at
                             * or below it runs its backward; nodes are in topological order,
                             * so every reader of down_to lies above it); input_grad must be 0 */
} nn_backward_opts_t;

/* Backward from node `from` with upstream gradient dy [n, size(from)];
 * dx [n, c, h, w] (when input_grad) receives the input gradient (overwritten). */
int nn_backward(nn_model_t *m, int from, const float *dy, float *dx, const nn_backward_opts_t *o);
/* Convenience: backward from the logits node with dy = one-hot(target[i]) per sample. */
int nn_backward_logit(nn_model_t *m, const int *target, float *dx, const nn_backward_opts_t *o);

static inline const float *nn_node_out(const nn_model_t *m, int id) { return m->nodes[id].out; }
static inline const float *nn_node_grad(const nn_model_t *m, int id) { return m->nodes[id].grad; }
static inline const float *nn_output(const nn_model_t *m) { return m->nodes[m->output].out; }

/* Forward FLOPs of one sample (multiply-adds count 2), summed over the op table's costs. */
double nn_forward_flops(const nn_model_t *m);

/* Number of trainable parameters (BN running statistics excluded). */
size_t nn_count_trainable(const nn_model_t *m);
/* Distinct block names in node order (top-down randomization reverses it);
 * fills names (pointers into the model) up to max, returns the count. */
int nn_blocks(const nn_model_t *m, const char **names, int max);

#endif
