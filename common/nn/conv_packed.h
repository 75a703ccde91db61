/*
 * conv_packed.h - convolutions on nn/gemm.h's packed kernel, several images
 * of the batch in one product.
 *
 * Owned by common/nn. Where an image has few output pixels (the late layers
 * of the zoo: 7 x 7, 8 x 8), one GEMM per image gives OpenBLAS a narrow N;
 * here the weights are read in place (forward) or packed once per model
 * state (W^T, nn/wpack.h; per call without a model) and the pixels of up to
 * conv_packed_group() images form the N of one product, the output
 * stored straight into each image's planes (bias and ReLU applied in
 * registers, C written on the first K block: no zeroing pass, which also
 * wins on large images). Whether a shape takes this path depends on the shape and the
 * CPU only, never on the batch size or on which images share a product, and
 * each output element adds its terms in an order fixed by K alone: an
 * image's result is the same bits in any batch. nn/conv.c dispatches here
 * when conv_packed_wanted(); the OpenBLAS paths stay callable for the
 * benchmarks (bench/bench_convpath.c --paths).
 */
#ifndef NN_CONV_PACKED_H
#define NN_CONV_PACKED_H

#include <stddef.h>

#include "nn/gemm.h"
#include "nn/layers.h"

/* Output pixels per image (oh x ow) of the band of shapes left to OpenBLAS,
 * per direction; MIN > MAX: none. Both are empty: since the forward packs its
 * patch matrices straight from the images (conv_packed_direct) and the input
 * gradient runs as the adjoint's forward (conv_packed_bwd_direct), the packed
 * path is level with or faster than OpenBLAS on every shape measured
 * (bench/README.md; the forward band of 14 x 14 and 17 x 17 images was the
 * last, 1.04-1.17x). Moving a shape changes the bits of its forward, and with
 * them, at a pre-activation within float32 rounding of zero, a ReLU's
 * decision; tests/unit/test_nn_torch.c bounds such flips against float64. */
#ifndef CONV_PACKED_FWD_BLAS_MIN
#define CONV_PACKED_FWD_BLAS_MIN 1
#define CONV_PACKED_FWD_BLAS_MAX 0
#define CONV_PACKED_BWD_BLAS_MIN 1
#define CONV_PACKED_BWD_BLAS_MAX 0
#endif

/* A group of images spans at least this many columns (fewer partial 32-column
 * strips: 289 pixels alone leave a strip of 1 column), unless its patch
 * matrices would pass CONV_PACKED_GROUP_FLOATS floats. */
#define CONV_PACKED_GROUP_COLUMNS 1024
#define CONV_PACKED_GROUP_FLOATS ((size_t)1 << 21)
/* The forward builds its patch matrices a slice of columns at a time, so
 * that the GEMM packs them from L2 rather than from memory (the same sums in
 * the same order as one product over the group): each slice a multiple of
 * 32 columns (but the last of a group), under this many floats, and at least
 * CONV_PACKED_FWD_SLICE_MIN columns, since a narrower product streams the
 * weights once more per slice. Measured per shape against one slice over the
 * group (bench/README.md): 0.63-0.99 of its time, at 1 << 16 .. 1 << 19
 * floats and minima of 128 and 256 columns, this pair the best. */
#ifndef CONV_PACKED_FWD_SLICE_FLOATS
#define CONV_PACKED_FWD_SLICE_FLOATS ((size_t)1 << 17)
#endif
#define CONV_PACKED_FWD_SLICE_MIN 256
/* A slice of the input gradient's patch matrices (channels x taps rows x the
 * group's columns) is kept under this many floats (half of a 1 MB L2), in
 * slices of a multiple of 8 channels; 8 channels where 8 already pass it
 * (all channels at once there took 1.07-2.1x the time of slices of 8 on the
 * zoo's 56 x 56 to 149 x 149 images, bench/README.md). */
#define CONV_PACKED_SLICE_FLOATS ((size_t)1 << 17)

/* Does this shape take the packed path on this CPU, forward (backward = 0)
 * or for the input gradient (backward = 1)? Shape and CPU only. */
int conv_packed_wanted(const conv2d_shape_t *s, int backward);
/* Images per packed product (shape only, never the batch). */
int conv_packed_group(const conv2d_shape_t *s);
/* Floats of workspace the packed path needs: the packed weights (either
 * orientation), B's packing block and the patch matrices of one group. */
size_t conv_packed_workspace(const conv2d_shape_t *s);
/* conv2d_forward_fused on the packed kernel. ws: conv_packed_workspace floats. */
void conv_packed_forward(const conv2d_shape_t *s, const float *x, const float *W, const float *b,
                         int relu, float *y, float *ws);
/* conv2d_backward_data on the packed kernel. packed_wt: conv_packed_pack_wt's
 * weights (e.g. from nn/wpack.h's cache), or NULL to pack them into ws here.
 * ws as above. With conv_packed_bwd_direct, the adjoint's forward. The patch-matrix gradient is computed
 * conv_packed_bwd_channels() input channels at a time for the group's images
 * and added back by col2im while it is in cache (the rows of a GEMM split,
 * so each element's sum is unchanged). */
void conv_packed_backward_data(const conv2d_shape_t *s, const float *W, const float *packed_wt,
                               const float *dy, float *dx, int assign, float *ws);
/* Does the packed forward of this shape pack its patch matrix straight from
 * the images (stride 1 along rows, not pointwise; 16-lane masked loads with
 * AVX-512, plain copies with AVX2)? Else it builds
 * it with im2col, a slice of columns at a time (conv_packed_forward_cols).
 * Either way the same bits. */
int conv_packed_direct(const conv2d_shape_t *s);
/* Columns per slice of the forward's patch matrices (shape only). */
int conv_packed_fwd_columns(const conv2d_shape_t *s);
/* conv_packed_forward with slices of `columns` columns (the product is the
 * same bits for any positive width; for the tests). */
void conv_packed_forward_cols(const conv2d_shape_t *s, const float *x, const float *W,
                              const float *b, int relu, float *y, float *ws, int columns);
/* Does the packed input gradient of this shape run as the forward of its
 * adjoint (stride 1, not pointwise, padding under the kernel): dy
 * correlated with the weights flipped and transposed, its patch matrix
 * packed straight from dy (no col matrix, no col2im)? The sums then run
 * over (output channel, tap) in one K, so the bits differ from the col2im
 * path's, but not between batches or images. */
int conv_packed_bwd_direct(const conv2d_shape_t *s);
/* Floats of the weights the packed input gradient multiplies, packed:
 * W^T (K x oc), or the adjoint's weights (c x oc kh kw) when
 * conv_packed_bwd_direct; conv_packed_pack_wt fills them (nn/wpack.h caches
 * them per model state). */
size_t conv_packed_wt_floats(const conv2d_shape_t *s);
void conv_packed_pack_wt(const conv2d_shape_t *s, const float *W, float *packed);
/* Input channels per slice of the input gradient's patch matrix (shape only). */
int conv_packed_bwd_channels(const conv2d_shape_t *s);
/* conv2d_backward_data with the packed W^T given (NULL: packed per call). */
void conv2d_backward_data_wt(const conv2d_shape_t *s, const float *W, const float *packed_wt,
                             const float *dy, float *dx, int assign, float *col);

/* A pointwise convolution (1x1, stride 1, no padding) of relu(x * scale + shift)
 * per input channel (a pre-activation BN and its ReLU, DenseNet's, nn/fuse.h),
 * that map applied while the packed kernel packs x, so that its output is
 * never stored: x->x / x->step as nn/layers.h's bn_chans_t (channel ch of
 * image i at x->x[ch] + i * x->step[ch]), scale and shift s->c floats. The
 * values packed are bn_relu_forward_infer's, so the output is the bits of that
 * pass followed by conv_packed_forward. ws: conv_packed_pre_workspace floats.
 * Only where nn_gemm_available() (AVX-512 or AVX2 packers). pool: s is the
 * shape after a 2x2 average pool of stride 2 that is applied first (x's
 * planes are 2 s->h x 2 s->w; nn/fuse.h), each packed value the mean of its
 * window's four. */
void conv_packed_forward_pre(const conv2d_shape_t *s, const bn_chans_t *x, const float *scale,
                             const float *shift, int pool, const float *W, const float *b,
                             int relu, float *y, float *ws);
/* Its input gradient, through the ReLU and the affine map: dx (+)= g * scale
 * where x * scale + shift > 0 (and g > 0 when guided), g = W^T dy, computed
 * conv_packed_bwd_channels() channels at a time into the workspace and
 * applied while in cache; the bits of conv_packed_backward_data into a buffer
 * of its own then bn_relu_backward_infer. packed_wt: conv_packed_pack_wt's
 * (NULL: packed here). x->dx: where the gradients go. pool: as above, each
 * cell getting a quarter of its window's gradient (the pool's backward). */
void conv_packed_backward_pre(const conv2d_shape_t *s, const float *W, const float *packed_wt,
                              const float *dy, const bn_chans_t *x, const float *scale,
                              const float *shift, int pool, int guided, int assign, float *ws);
/* Floats of workspace the two above need (more than conv_packed_workspace). */
size_t conv_packed_pre_workspace(const conv2d_shape_t *s);

/* conv_packed_forward of a pointwise shape on map(x), map applied to each
 * block of x as it is packed (nn/fuse.h's GELU prologue): the bits of map
 * over x followed by conv_packed_forward. Only where nn_gemm_available(). */
void conv_packed_forward_map(const conv2d_shape_t *s, const float *x, const float *W,
                             const float *b, int relu, float *y, nn_gemm_map_fn map, float *ws);
/* A pointwise pair with a map between them (nn/fuse.h's MLP pair: ConvNeXt's
 * 1x1 -> GELU -> 1x1), a slice of each image's columns at a time so that the
 * hidden layer's slice is read back from L2. s1: the first convolution's
 * shape (c -> h channels), s2: the second's (h -> oc). Forward: u = W1 x + b1
 * (stored whole, the map's backward reads it), y = relu2?(W2 map(u) + b2).
 * Backward: dx (+)= W1^T (dmap(W2^T dy, u)), the product W2^T dy of a slice in
 * the workspace. Each element gets the additions of the unfused passes in the
 * same order (nn/gemm.h: the order depends on K alone), so the same bits.
 * Only for shapes where conv_packed_mlp_columns() > 0, where nn_gemm_available(). */
void conv_packed_mlp_forward(const conv2d_shape_t *s1, const conv2d_shape_t *s2, const float *x,
                             const float *W1, const float *b1, float *u, nn_gemm_map_fn map,
                             const float *W2, const float *b2, int relu2, float *y, float *ws);
void conv_packed_mlp_backward(const conv2d_shape_t *s1, const conv2d_shape_t *s2,
                              const float *packed_w1t, const float *packed_w2t, const float *dy,
                              const float *u, nn_gemm_dmap_fn dmap, float *dx, int assign,
                              float *ws);
/* Columns of an image per slice of the pair (a multiple of 32 but the last),
 * the hidden layer's slice under CONV_PACKED_MLP_SLICE_FLOATS floats; 0 when
 * an image has fewer than CONV_PACKED_MLP_MIN_PIXELS pixels (the unfused
 * products, several images each, measured as fast or faster there). */
#ifndef CONV_PACKED_MLP_SLICE_FLOATS
#define CONV_PACKED_MLP_SLICE_FLOATS ((size_t)1 << 18)
#endif
#ifndef CONV_PACKED_MLP_MIN_PIXELS
#define CONV_PACKED_MLP_MIN_PIXELS 512
#endif
int conv_packed_mlp_columns(int pixels, int hidden);
/* Floats of workspace the pair needs (hidden x hidden: the pair's h). */
size_t conv_packed_mlp_workspace(int pixels, int hidden);
/* A sibling group (nn/fuse.h): n_mem pointwise convolutions of the same
 * input x (s: the shape of one of them; their output channels oc[q]), member q
 * writing relu[q]?(W[q] x + b[q]) into y[q], each block of x packed once for
 * all of them (nn_gemm_rows_multi): each output the bits of
 * conv_packed_forward of its member alone. bpack: nn_gemm_bpack_floats(). */
void conv_packed_forward_sibs(const conv2d_shape_t *s, int n_mem, const int *oc,
                              const float *const *W, const float *const *b, const int *relu,
                              float *const *y, const float *x, float *bpack);
/* Their input gradients as one product: dx (+)= sum_q W[q]^T dy[q], the last
 * member's term first (the order of the backward), with packed from
 * conv_packed_pack_sib_wt (c input channels; nn/wpack.h caches it): the bits
 * of conv_packed_backward_data of each member in that order, each but the
 * first accumulating. */
void conv_packed_pack_sib_wt(int c, int n_mem, const int *oc, const float *const *W,
                             float *packed);
void conv_packed_backward_sibs(const conv2d_shape_t *s, int n_mem, const int *oc,
                               const float *packed, const float *const *dy, float *dx,
                               int assign, float *bpack);

/* The OpenBLAS paths of nn/conv.c (one cblas_sgemm per image), whatever the shape. */
void conv2d_forward_blas(const conv2d_shape_t *s, const float *x, const float *W, const float *b,
                         int relu, float *y, float *col);
void conv2d_backward_data_blas(const conv2d_shape_t *s, const float *W, const float *dy, float *dx,
                               int assign, float *col);
/* The patch matrix of one image, and its adjoint added into dx (nn/conv.c). */
void conv2d_im2col(const conv2d_shape_t *s, const float *x, float *col);
/* The output pixels [p0, p1) of the patch matrix of one image (pixel p =
 * oy * ow + ox), column p at col[row * ldcol + p - p0]. */
void conv2d_im2col_range(const conv2d_shape_t *s, const float *x, int p0, int p1, float *col,
                         size_t ldcol);
void conv2d_col2im_add(const conv2d_shape_t *s, const float *col, float *dx, int assign);
/* conv2d_col2im_add for the channels [ci0, ci1) only, col holding their rows. */
void conv2d_col2im_channels(const conv2d_shape_t *s, const float *col, float *dx, int assign,
                            int ci0, int ci1);

#endif
