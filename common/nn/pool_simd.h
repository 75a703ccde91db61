/*
 * pool_simd.h - AVX-512 forms of the max and average pooling kernels of
 * nn/pool.c, for nn/pool.c only.
 *
 * Owned by common/nn. Each kernel takes 16 output columns (forward) or 16
 * input columns (average pooling backward) as the lanes of one vector and
 * performs, lane by lane, the same float operations in the same order as the
 * per-output loops of nn/pool.c: the results are bit-identical to them
 * (tests/unit/test_pool.c compares both against a plain reference). Each
 * returns 1 when it handled the call, 0 when the shape is outside its limits
 * (window wider than POOL_SIMD_KMAX, average pooling backward plane larger
 * than POOL_SIMD_PLANE) or the processor lacks AVX-512F; the caller then runs
 * its portable loop.
 */
#ifndef NN_POOL_SIMD_H
#define NN_POOL_SIMD_H

#include <stdint.h>

#include "nn/layers.h"

#define POOL_SIMD_KMAX 16      /* widest window (kw) the vector kernels take */
#define POOL_SIMD_PLANE 16384  /* largest output plane (oh * ow) of the backward's scratch */

int pool_simd_maxpool_forward(const pool_shape_t *s, const float *x, float *y, int32_t *argmax);
int pool_simd_avgpool_forward(const pool_shape_t *s, const float *x, float *y);
/* assign: dx is overwritten (the bits of adding onto zeros), else accumulated into. */
int pool_simd_avgpool_backward(const pool_shape_t *s, const float *dy, float *dx, int assign);

#endif
