/*
 * conv_wino.h - 3 x 3 stride-1 convolutions by Winograd's minimal filtering
 * F(2 x 2, 3 x 3), 5 x 5 ones by F(2 x 2, 5 x 5) and 1 x 7 / 7 x 1 ones by
 * F(2, 7), forward and input gradient.
 *
 * Owned by common/nn. Each 2 x 2 block of outputs (a tile) is computed from
 * the 4 x 4 input patch under it with 16 products per input/output channel
 * pair instead of 36: V = B^T d B (input transform, additions only),
 * U = G g G^T (the weights, once per model state), M[xi] = U[xi] V[xi] for
 * each of the 16 positions xi (16 GEMMs over the channels), Y = A^T M A
 * (output transform, additions only). The GEMMs run on nn/gemm.h's kernel
 * with U packed once (the cache of nn/wpack.h), the tiles of several images
 * side by side as its columns: 2.25 times fewer multiply-adds than the
 * im2col GEMM, and no patch matrix.
 *
 * The input gradient of a 3 x 3 stride-1 convolution is itself one (the
 * weights flipped and their channel axes swapped, the padding 2 - p), so
 * the same code computes it: no col2im.
 *
 * Numbers: the transforms use the coefficients 0, +-1 and +-1/2, so the
 * rounding is that of a sum in another order (tests/unit/test_wino.c
 * bounds it against float64). Each output element depends only on its own
 * tile and the channel count (the GEMM's order of additions depends on K
 * alone, nn/gemm.h), never on the batch, on which images share a product or
 * on the tile's place in it: an image gives the same bits in any batch.
 * Positions inside one flat region may differ in the last bits between the
 * four places of a tile; the model canonicalizes every convolution's output
 * to its position classes (nn/posclass.h), as after any GEMM.
 *
 * The 5 x 5 convolutions of stride 1 (InceptionV3's 35 x 35 branches) take
 * the same path with 6 x 6 patches: 36 products per channel pair and tile
 * instead of 100 (2.8 times fewer), through the points 0, +-1, +-2 and
 * infinity (the input transform is F(4, 3)'s well-known one, coefficients
 * 1, 2, 4, 5; G's are not sums of powers of two and U is computed in double
 * and rounded once). The first input of a patch row enters only the first
 * transformed value and the last only the last, which the other output of
 * the pair does not read, so a window of zeros still gives exact zeros; the
 * rounding error is about five times F(2 x 2, 3 x 3)'s, within test_wino's
 * bound against float64.
 *
 * The 1 x 7 and 7 x 1 convolutions of stride 1, unpadded across the kernel's
 * axis (InceptionV3's 17 x 17 blocks), take the same path in one dimension:
 * F(2, 7) along the axis, each pair of outputs from the 8 inputs under it
 * with 8 products per channel pair instead of 14 (points 0, +-1, +-2, +-1/2
 * and infinity; the transforms' coefficients are sums of powers of two, G's
 * are not and U is rounded once from double). The rounding error is about
 * three times a direct sum's (test_wino bounds it the same way); a window of
 * zeros still gives exact zeros. The functions below take either kind of
 * shape.
 *
 * Used in the inference passes (nn_forward_fused and the input gradients
 * after it) on a CPU with nn/gemm.h's kernel; training keeps im2col.
 */
#ifndef NN_CONV_WINO_H
#define NN_CONV_WINO_H

#include <stddef.h>

#include "nn/layers.h"

/* Output pixels per image (oh x ow) from which the Winograd path is taken:
 * a 7 x 7 or 8 x 8 image has few tiles (16 for 49 outputs) and the GEMMs
 * there are dominated by the weights. */
#ifndef CONV_WINO_MIN_PIXELS
#define CONV_WINO_MIN_PIXELS 100
#endif
/* The transformed inputs and products of one block of tiles are kept under
 * this many floats each (16 positions x channels x tiles). */
#ifndef CONV_WINO_BLOCK_FLOATS
#define CONV_WINO_BLOCK_FLOATS ((size_t)1 << 18)
#endif

/* Does this convolution take the Winograd path, forward (backward = 0) or
 * for its input gradient (1)? 3 x 3 or 5 x 5 (or 1 x 7 and 7 x 1 as above,
 * padding at most 6 along the axis), stride 1, padding at most k - 1 on
 * each side, at least 8 channels in and out, CONV_WINO_MIN_PIXELS outputs,
 * and nn/gemm.h's kernel on this CPU. Shape and CPU only. */
int conv_wino_wanted(const conv2d_shape_t *s, int backward);
/* Floats of the transformed, packed weights of one direction. */
size_t conv_wino_u_floats(const conv2d_shape_t *s, int backward);
/* The transformed weights of W[oc][c][kh][kw] for one direction, packed for
 * nn/gemm.h: 16 (3 x 3), 36 (5 x 5) or 8 (7-tap) matrices, oc x c (forward)
 * or c x oc (input gradient, the kernel flipped). u: conv_wino_u_floats floats. Returns 0 or
 * SC_ERR_NOMEM (u then undefined). */
int conv_wino_transform(const conv2d_shape_t *s, const float *W, int backward, float *u);
/* Floats of workspace either direction needs (one block of tiles). */
size_t conv_wino_workspace(const conv2d_shape_t *s);
/* y = relu?(W * x + b) (b may be NULL) for the s->n images. u: the forward
 * transform of W. ws: conv_wino_workspace floats. */
void conv_wino_forward(const conv2d_shape_t *s, const float *u, const float *x, const float *b,
                       int relu, float *y, float *ws);
/* dx (+)= W^T dy as conv2d_backward_data (assign: dx holds no earlier
 * contribution and is overwritten). u: the input-gradient transform of W. */
void conv_wino_backward_data(const conv2d_shape_t *s, const float *u, const float *dy, float *dx,
                             int assign, float *ws);

#endif
