/*
 * layers.h - forward/backward kernels of every layer kind, with explicit shapes.
 *
 * Owned by common/nn. Tensors are NCHW float32, contiguous. Every backward
 * ACCUMULATES into its input gradient (dx += ...) and into its parameter
 * gradients (dW += ...), so a node feeding several consumers gets the sum and
 * the caller zeroes gradient buffers once per backward pass. A NULL gradient
 * pointer means "not wanted" and skips that work.
 */
#ifndef NN_LAYERS_H
#define NN_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* ---- 2-D convolution (cross-correlation, as PyTorch and Keras) ---- */
typedef struct conv2d_shape {
    int n, c, h, w;          /* input */
    int oc, kh, kw, sh, sw;  /* output channels, kernel, stride */
    int pt, pb, pl, pr;      /* explicit zero padding: top, bottom, left, right */
    int oh, ow;              /* output size (filled by conv2d_shape_init) */
} conv2d_shape_t;

/* Computes oh/ow; returns 0 or SC_ERR_SHAPE when the kernel does not fit. */
int conv2d_shape_init(conv2d_shape_t *s);
/* Floats of the workspace a convolution needs, whatever the batch: one image's
 * im2col matrix (0 when the conv is 1x1/stride 1/no pad), or more where the
 * shape takes nn/conv_packed.h's path (packed weights, a group's patch matrices). */
size_t conv2d_workspace(const conv2d_shape_t *s);
/* y[n,oc,oh,ow] = W[oc,c,kh,kw] * x + b (b may be NULL). col: conv2d_workspace floats. */
void conv2d_forward(const conv2d_shape_t *s, const float *x, const float *W, const float *b,
                    float *y, float *col);
/* The same with relu: y = max(W * x + b, 0), applied per image right after its GEMM. */
void conv2d_forward_fused(const conv2d_shape_t *s, const float *x, const float *W,
                          const float *b, int relu, float *y, float *col);
/* dx += dL/dx, dW += dL/dW, db += dL/db; each may be NULL. col as in forward. */
void conv2d_backward(const conv2d_shape_t *s, const float *x, const float *W, const float *dy,
                     float *dx, float *dW, float *db, float *col);
/* The input gradient alone: dx += W^T dy, or dx = W^T dy when assign (dx
 * holds no earlier contribution; the same bits as adding onto zeros, without
 * a zeroing pass of its own). col as in forward. */
void conv2d_backward_data(const conv2d_shape_t *s, const float *W, const float *dy, float *dx,
                          int assign, float *col);

/* "same" padding as Keras/TensorFlow: total = max((ceil(in/s)-1)*s + k - in, 0),
 * the smaller half before. */
void pad_same(int in, int k, int stride, int *before, int *after);

/* ---- batch normalization over channels (REFERENCE: Keras/PyTorch semantics) ---- */
typedef struct bn_params {
    int c;
    float eps, momentum;     /* momentum = weight of the new batch statistic (PyTorch 0.1, Keras 1-0.99) */
    const float *gamma;      /* NULL: scale=False (gamma = 1) */
    const float *beta;       /* NULL: center=False (beta = 0) */
    float *running_mean, *running_var;
} bn_params_t;

/* The BN's input, channel by channel: channel ch of sample b starts at
 * x[ch] + b * step[ch], its gradient at dx[ch] + b * step[ch] (dx NULL: no
 * input gradient). A dense [n, c, hw] input has x[ch] = x + ch * hw and
 * step c * hw; a concatenation without a buffer (nn/concat_view.h) points
 * into its inputs. y and dy are dense [n, c, hw]. */
typedef struct bn_chans {
    const float *const *x;
    float *const *dx;
    const size_t *step;
} bn_chans_t;

/* The inference map per channel, y = x * scale[ch] + shift[ch]: scale = gamma *
 * (1 / sqrtf(var + eps)), shift = beta - mean * scale, in float, as every
 * inference pass below computes it (nn/conv_packed.h applies it while packing). */
void bn_infer_affine(const bn_params_t *p, float *scale, float *shift);
/* Inference: y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta. */
void bn_forward_infer(const bn_params_t *p, int n, int hw, const bn_chans_t *x, float *y);
/* The same followed by a ReLU in the same pass: y = max(x * s + t, 0), the bits
 * of bn_forward_infer then relu_forward. */
void bn_relu_forward_infer(const bn_params_t *p, int n, int hw, const bn_chans_t *x, float *y);
/* assign: dx = ... instead of dx += ... (dx holds no earlier contribution). */
void bn_backward_infer(const bn_params_t *p, int n, int hw, const float *dy, const bn_chans_t *x,
                       float *dgamma, float *dbeta, int assign);
/* The input gradient through a ReLU on the BN's output and the BN, in one
 * pass: dx (+)= relu_backward(y_relu, dy) * scale, the same float operations
 * as relu_backward (assigning) then bn_backward_infer without parameter
 * gradients. y_relu, dy: [n, c, hw]; guided as relu_backward. */
void bn_relu_backward_infer(const bn_params_t *p, int n, int hw, const float *y_relu,
                            const float *dy, const bn_chans_t *x, int guided, int assign);
/*
 * Training: batch statistics (biased variance to normalize, unbiased for the
 * running update, as PyTorch). mean/invstd [c] are saved for backward. When
 * `update_running` the running statistics move by `momentum`.
 * sums_hook, when non-NULL, is called with (sum[c], sumsq[c], count) before
 * normalizing so that data-parallel training can reduce them across ranks.
 */
typedef void (*bn_sums_hook_fn)(double *sum, double *sumsq, int c, double *count, void *ctx);
void bn_forward_train(const bn_params_t *p, int n, int hw, const bn_chans_t *x, float *y,
                      float *mean, float *invstd, int update_running,
                      bn_sums_hook_fn hook, void *hook_ctx, double *scratch /* [2c] */);
/* hook (when non-NULL) reduces the two per-channel sums sum(dy), sum(dy*xhat) across ranks. */
void bn_backward_train(const bn_params_t *p, int n, int hw, const bn_chans_t *x, const float *dy,
                       const float *mean, const float *invstd, float *dgamma,
                       float *dbeta, bn_sums_hook_fn hook, void *hook_ctx, double *scratch,
                       int assign);

/* ---- activations ---- */
void relu_forward(size_t count, const float *x, float *y);
/* Standard: dx += dy*[y>0]. Guided (Springenberg): dx += dy*[dy>0]*[y>0].
 * At exactly 0 the gradient is 0 (PyTorch's rule), in both modes.
 * assign: dx = ... (no earlier contribution to keep). */
void relu_backward(size_t count, const float *y, const float *dy, float *dx, int guided,
                   int assign);
/* Softmax over the `classes` values of each of n rows. */
void softmax_forward(int n, int classes, const float *x, float *y);
void softmax_backward(int n, int classes, const float *y, const float *dy, float *dx);
void sigmoid_forward(size_t count, const float *x, float *y);
void sigmoid_backward(size_t count, const float *y, const float *dy, float *dx);

/* ---- pooling ---- */
typedef struct pool_shape {
    int n, c, h, w, kh, kw, sh, sw, pt, pb, pl, pr;
    int ceil_mode;           /* PyTorch ceil_mode (windows starting in the padding are dropped) */
    int count_include_pad;   /* average pool: divide by kh*kw (1) or by the in-image count (0) */
    int oh, ow;
} pool_shape_t;

int pool_shape_init(pool_shape_t *s);
/*
 * argmax: [n,c,oh,ow] input offsets within the (c) plane, kept for backward.
 * Tie rule (PyTorch's and TensorFlow's): the window is scanned row by row
 * (ky, then kx) and the FIRST element whose value is maximal wins; a tie is
 * exact float equality; padding cells never win. The gradient goes to that
 * element only. Exact ties occur wherever receptive fields are identical
 * (flat image regions, the constant IG baseline); the engine makes such
 * positions hold bit-identical values (nn/posclass.h), so the rule picks the
 * element PyTorch picks whatever the BLAS kernel, batch size or thread count.
 */
void maxpool_forward(const pool_shape_t *s, const float *x, float *y, int32_t *argmax);
void maxpool_backward(const pool_shape_t *s, const float *dy, const int32_t *argmax, float *dx);
void avgpool_forward(const pool_shape_t *s, const float *x, float *y);
void avgpool_backward(const pool_shape_t *s, const float *dy, float *dx);
/* The backwards with assign: dx holds no earlier contribution and is
 * overwritten (the same bits as the accumulating form onto zeros). */
void maxpool_backward_assign(const pool_shape_t *s, const float *dy, const int32_t *argmax,
                             float *dx);
void avgpool_backward_assign(const pool_shape_t *s, const float *dy, float *dx);

void gap_forward(int n, int c, int hw, const float *x, float *y);
void gap_backward(int n, int c, int hw, const float *dy, float *dx);
void gap_backward_assign(int n, int c, int hw, const float *dy, float *dx);

/* ---- dense: y[n,out] = x[n,in] W[out,in]^T + b ---- */
void dense_forward(int n, int in, int out, const float *x, const float *W, const float *b, float *y);
void dense_backward(int n, int in, int out, const float *x, const float *W, const float *dy,
                    float *dx, float *dW, float *db);

/* ---- losses (mean over the batch) ---- */
/* Softmax cross-entropy on logits [n,classes] with integer labels; dlogits may be NULL. */
double loss_softmax_ce(int n, int classes, const float *logits, const int *labels, float *dlogits);
/* Binary cross-entropy on one logit per sample (sigmoid inside, numerically stable). */
double loss_bce_logits(int n, const float *logits, const float *targets, float *dlogits);

#endif
