/*
 * op.h - the interface every node kind implements, and the engine helpers
 * the op files use.
 *
 * Owned by common/nn. Each node kind is one file common/nn/ops/<op>.c that
 * exports one nn_op_def_t; ops/table.h lists them and ops/table.c indexes
 * them by nn_op. model.c walks the graph and calls the table: construction
 * (infer), the parameter slab (param_shape, init), buffer sizing (workspace,
 * prepare), forward and backward (with their training and guided variants),
 * position classes (pc, pc_canonical) and cost (flops); modelfile.c writes
 * attributes with write_attrs; the ONNX importer reads `sign`.
 *
 * Gradient conventions (layers.h): a backward ACCUMULATES into the gradients
 * of its inputs. It gets each input's buffer from nn_grad_acc (zeroed on first
 * use in the pass) or, when its kernel can overwrite, from nn_grad_dst (which
 * says whether this is the first contribution), and only for inputs where
 * nn_wants_grad holds. Parameter gradients are accumulated into nn_param_grad
 * buffers when o->param_grads; NULL there means "not wanted".
 */
#ifndef NN_OP_H
#define NN_OP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nn/model.h"
#include "rng.h"

/* How the position classes of an op's output arise (nn/posclass.h). */
typedef enum nn_pc_rule {
    NN_PC_NONE = 0, /* no spatial positions (GAP, dense, flatten, softmax) */
    NN_PC_BORROW,   /* elementwise: the same arithmetic at every position, input 0's classes */
    NN_PC_WINDOW,   /* a window over input 0: kh, kw, sh, sw, pt, pl of the node */
    NN_PC_COMBINE,  /* position by position over all inputs (add, concat): the tuple of classes */
    NN_PC_IMAGE     /* the network input: positions whose pixel values are equal */
} nn_pc_rule;

/* Sign of an op's output, for the importer (zero padding is neutral for max
 * pooling after a non-negative map). */
typedef enum nn_sign {
    NN_SIGN_ANY = 0,
    NN_SIGN_NONNEG,  /* never negative (ReLU, softmax, sigmoid) */
    NN_SIGN_INPUTS   /* non-negative when every input is (pooling, concat, add, reshape) */
} nn_sign;

/* What an op's backward reads besides its output gradient and its parameters:
 * the memory plan (nn/memplan.h) keeps exactly these activations until then.
 * 0 (not declared) counts as everything. */
enum nn_reads {
    NN_READS_NOTHING = 1 << 0,      /* only the gradient and the parameters */
    NN_READS_INPUTS = 1 << 1,       /* its inputs' outputs, for the input gradient */
    NN_READS_OUTPUT = 1 << 2,       /* its own output */
    NN_READS_INPUTS_PARAM = 1 << 3  /* its inputs' outputs, for parameter gradients or
                                     * the training backward only */
};

typedef int (*nn_forward_fn)(nn_model_t *m, int id, int n);
typedef int (*nn_backward_fn)(nn_model_t *m, int id, int n, const nn_backward_opts_t *o);

typedef struct nn_op_def {
    const char *name;            /* as in the model file's /graph lines */
    nn_pc_rule pc;
    int pc_canonical;            /* a GEMM output: after forward, each position takes its
                                  * class representative's value (posclass_apply) */
    nn_sign sign;
    int squashes_logits;         /* maps logits to scores (softmax, sigmoid): as the model's
                                  * last node, nn_logits_node steps over it */
    /* Checks the node's inputs and attributes (already copied into nd) and sets
     * its output shape nd->c/h/w (preset to input 0's). Returns 0 or SC_ERR_SHAPE
     * (error logged, naming the node). NULL: the output is input 0's shape. */
    int (*infer)(const nn_model_t *m, nn_node_t *nd);
    /* Shape of parameter tensor k: returns its rank (dims filled), 0 when the
     * node has no such tensor. NULL: no parameters. */
    int (*param_shape)(const nn_model_t *m, const nn_node_t *nd, nn_param_kind k,
                       size_t dims[4]);
    /* Initializes the node's parameters from its stream (REFERENCE section 6);
     * BN statistics reset unless keep_bn_stats. NULL: nothing to initialize. */
    void (*init)(nn_model_t *m, int id, rng_stream_t *rs, int keep_bn_stats);
    /* Floats of the shared workspace one sample needs. NULL: 0. */
    size_t (*workspace)(const nn_model_t *m, const nn_node_t *nd);
    /* Allocates node-owned runtime buffers (argmax, saved statistics) for
     * max_batch samples; free_runtime in model.c releases them. NULL: none. */
    int (*prepare)(nn_model_t *m, nn_node_t *nd, int max_batch);
    nn_forward_fn forward;       /* inference; NULL for the input node */
    nn_forward_fn forward_train; /* training mode where it differs (BN), else NULL */
    nn_backward_fn backward;     /* input and parameter gradients, as o asks */
    nn_backward_fn backward_train;  /* after a training forward, where it differs, else NULL */
    nn_backward_fn backward_guided; /* guided backprop (ReLU family), else NULL */
    /* Multiply-adds counted as 2 FLOPs, forward, one sample. NULL: 0. */
    double (*flops)(const nn_model_t *m, const nn_node_t *nd);
    unsigned bwd_reads;          /* enum nn_reads flags */
    int inplace;                 /* forward may write its output over input 0's (elementwise) */
    /* Appends " key=value ..." attributes of the model file's /graph line. NULL: none. */
    void (*write_attrs)(const nn_node_t *nd, char *buf, size_t len);
} nn_op_def_t;

/* The table entry of op, or NULL when out of range (ops/table.c). */
const nn_op_def_t *nn_op_def(nn_op op);

/* ---- engine helpers for the op files (model.c) ---- */

/*
 * Append a node of kind op with inputs in[0..n_in) in the current block;
 * attributes (out_c, kh, kw, sh, sw, pt, pb, pl, pr, has_bias, ceil_mode,
 * count_include_pad, eps, momentum, bn_scale, bn_center, init) are copied
 * from attrs (NULL: all zero), then the op's infer sets the shape. Returns the
 * node id or a negative sc_err.
 */
int nn_add_node(nn_model_t *m, const char *name, nn_op op, int n_in, const int *in,
                const nn_node_t *attrs);
/* Padding from an explicit {top, bottom, left, right}, Keras "same" or "valid". */
void nn_resolve_pad(const int *pad, int same, int h, int w, int kh, int kw, int sh, int sw,
                    int *pt, int *pb, int *pl, int *pr);
/* Weight initialization by fan-in/fan-out with nd->init (Glorot uniform by default). */
void nn_init_weights(float *W, size_t count, nn_init kind, double fan_in, double fan_out,
                     rng_stream_t *rs);

/* Does node `id` need a gradient in this pass (the input only when asked)? */
static inline int nn_wants_grad(int id, const nn_backward_opts_t *o)
{
    return id != 0 || o->input_grad;
}
/* Gradient buffer of node id, zeroed on first use in this pass. */
float *nn_grad_acc(nn_model_t *m, int id);
/* Gradient buffer of node id for a kernel that may overwrite: *assign is 1
 * when nothing was accumulated into it yet in this pass. */
float *nn_grad_dst(nn_model_t *m, int id, int *assign);
/* Is node id a ReLU right after the BN it reads, that BN read by nothing else
 * and its gradient not kept (nn_memplan_pinned_grad)? Its backward may then
 * run the BN's inference backward too (nn_bn_relu_backward, ops/bn.c): one
 * pass instead of two, the BN skipped. The memory plan lets the BN's input
 * gradients live from the ReLU's backward on. */
int nn_bn_relu_pair(const nn_model_t *m, int id);
/* BN node id's inference map per channel (nn/layers.h bn_infer_affine). */
void nn_bn_infer_affine(nn_model_t *m, int id, float *scale, float *shift);
/* That backward, for ReLU relu_id: the BN input's gradient (+)= the ReLU's
 * (guided or not) gradient times the BN's scale; inference statistics only. */
int nn_bn_relu_backward(nn_model_t *m, int relu_id, int n, const nn_backward_opts_t *o,
                        int guided);
/* Is node id a ReLU whose input is a two-input add (a residual join) read by
 * nothing else, with distinct inputs that are not concatenations and its
 * gradient not kept (nn_memplan_pinned_grad)? Its backward may then write the
 * add's input gradients itself (one pass over the ReLU's output and gradient
 * instead of three: the ReLU's, then the add's per input), the add's gradient
 * never made live, so the engine skips the add. The same values bit for bit:
 * each input gradient gets 0 + g, or adds g, with g the ReLU's gradient. The
 * memory plan lets the add's input gradients live from the ReLU's backward on. */
int nn_add_relu_pair(const nn_model_t *m, int id);

/* Gradient slab tensor of a parameter of node id, or NULL when absent. */
float *nn_param_grad(nn_model_t *m, int id, nn_param_kind kind);

/* ---- general tensors (model.h: rank, dims) ---- */

/* Sets a node's output to the general shape dims[0..rank) (c = count, h = w = 1);
 * [1, C, H, W] becomes the c x h x w view, so convolutions can follow. Ops
 * read shapes back with nn_node_shape. */
static inline void nn_set_dims(nn_node_t *nd, int rank, const int *dims)
{
    if (rank == 4 && dims[0] == 1) { /* [1, C, H, W]: the c x h x w view of a map */
        nd->rank = 0;
        nd->c = dims[1];
        nd->h = dims[2];
        nd->w = dims[3];
        return;
    }
    nd->rank = rank;
    for (int d = 0; d < NN_MAX_RANK; d++)
        nd->dims[d] = d < rank ? dims[d] : 0;
    nd->c = (int)nn_dims_count(rank, dims);
    nd->h = nd->w = 1;
}

/* " dims=a,b,c" of a general node (model file attributes). */
void nn_write_dims(const char *key, int rank, const int *dims, char *buf, size_t len);

/* Visits the size elements k of one sample of shape dims[0..rank) in order
 * (the last axis fastest) with `at`, an offset into another tensor that moves
 * by stride[d] along axis d (0 on a broadcast axis, a permuted stride for a
 * transpose), and runs BODY, which may read k and at. */
#define NN_STRIDED_WALK(size, rank, dims, stride, BODY)                            \
    do {                                                                          \
        int idx[NN_MAX_RANK] = {0};                                               \
        size_t at = 0;                                                            \
        for (size_t k = 0; k < (size); k++) {                                     \
            BODY;                                                                 \
            for (int d = (rank) - 1; d >= 0; d--) {                               \
                at += (stride)[d];                                                \
                if (++idx[d] < (dims)[d])                                         \
                    break;                                                        \
                at -= (stride)[d] * (size_t)(dims)[d];                            \
                idx[d] = 0;                                                       \
            }                                                                     \
        }                                                                         \
    } while (0)

/* ---- elementwise one-input ops: y = f(x), dx += dy * f'(x) ---- */

/* Forward of an elementwise op; f is inlined where the op file passes a constant. */
static inline int nn_unary_forward(nn_model_t *m, int id, int n, float (*f)(float x))
{
    nn_node_t *nd = &m->nodes[id];
    const float *x = m->nodes[nd->in[0]].out;
    const size_t count = (size_t)n * nn_node_size(nd);
    for (size_t k = 0; k < count; k++)
        nd->out[k] = f(x[k]);
    return 0;
}

/* Positions (values per sample over the normalized axis) of layer norm node nd,
 * whose statistics ops/layernorm.c keeps from the forward for the backward. */
size_t nn_layernorm_positions(const nn_node_t *nd);

/* GELU (exact and tanh forms, ops/gelu.c) over n values in place: the op's forward. */
void nn_gelu_apply(float *v, size_t n);
void nn_gelu_tanh_apply(float *v, size_t n);
/* The GELUs' backward loops in place: v[k] = v[k] * f'(u[k]) (v the output
 * gradient, u the input), the bits of the op's backward (nn/fuse.h's MLP pair). */
void nn_gelu_backward_apply(float *v, const float *u, size_t n);
void nn_gelu_tanh_backward_apply(float *v, const float *u, size_t n);

/* Input gradient of an op that passes its output gradient through unchanged (reshape,
 * flatten, a broadcast add's full-size input): the first contribution is copied (no
 * zeroing pass; nothing to copy when the plan gave both nodes one buffer), later ones
 * added. */
static inline void nn_grad_pass_through(nn_model_t *m, int src_id, const float *dy,
                                        size_t count)
{
    int assign;
    float *dx = nn_grad_dst(m, src_id, &assign);
    if (!assign)
        for (size_t k = 0; k < count; k++)
            dx[k] += dy[k];
    else if (dx != dy)
        memcpy(dx, dy, sizeof(float) * count);
}

/* Backward of an elementwise op: df(x, y) is the derivative at input x (output y).
 * dx (+)= dy df: the first contribution overwrites, so dx needs no zeroing pass. */
static inline int nn_unary_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o,
                                    float (*df)(float x, float y))
{
    nn_node_t *nd = &m->nodes[id];
    const int src_id = nd->in[0];
    if (!nn_wants_grad(src_id, o))
        return 0;
    const float *x = m->nodes[src_id].out, *y = nd->out, *dy = nd->grad;
    const size_t count = (size_t)n * nn_node_size(nd);
    int assign;
    float *dx = nn_grad_dst(m, src_id, &assign);
    if (assign)
        for (size_t k = 0; k < count; k++)
            dx[k] = dy[k] * df(x[k], y[k]);
    else
        for (size_t k = 0; k < count; k++)
            dx[k] += dy[k] * df(x[k], y[k]);
    return 0;
}

#endif
