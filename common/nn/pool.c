/*
 * pool.c - max pool, average pool, global average pool (layers.h).
 *
 * Output size: floor((in + pads - k)/s) + 1, or with ceil_mode the ceiling,
 * dropping a last window that would start inside the trailing padding
 * (PyTorch's rule). Max pool ignores padded cells; average pool divides by
 * the full window (count_include_pad, PyTorch default) or by the cells inside
 * the image (Keras "same" average pooling). Max pool ties: the first maximal
 * element in scan order wins (layers.h). Where the processor has AVX-512, max
 * pooling's forward and average pooling's forward and backward run the same
 * operations 16 lanes at a time (nn/pool_simd.c, bit-identical); the loops
 * here serve other processors and the shapes outside its limits.
 */
#include <float.h>
#include <string.h>

#include "nn/layers.h"
#include "nn/pool_simd.h"
#include "sc.h"

static int pool_out(int in, int k, int s, int pa, int pb, int ceil_mode)
{
    int span = in + pa + pb - k;
    if (span < 0)
        return 0;
    int out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + pa)
        out--;
    return out;
}

int pool_shape_init(pool_shape_t *s)
{
    if (s->kh < 1 || s->kw < 1 || s->sh < 1 || s->sw < 1)
        return SC_ERR_SHAPE;
    s->oh = pool_out(s->h, s->kh, s->sh, s->pt, s->pb, s->ceil_mode);
    s->ow = pool_out(s->w, s->kw, s->sw, s->pl, s->pr, s->ceil_mode);
    return (s->oh > 0 && s->ow > 0) ? 0 : SC_ERR_SHAPE;
}

void maxpool_forward(const pool_shape_t *s, const float *x, float *y, int32_t *argmax)
{
    if (pool_simd_maxpool_forward(s, x, y, argmax))
        return;
    const size_t planes = (size_t)s->n * s->c;
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * s->h * s->w;
        float *yp = y + pl * s->oh * s->ow;
        int32_t *ap = argmax + pl * s->oh * s->ow;
        for (int oy = 0; oy < s->oh; oy++) {
            int y0 = oy * s->sh - s->pt;
            for (int ox = 0; ox < s->ow; ox++) {
                int x0 = ox * s->sw - s->pl;
                float best = -FLT_MAX;
                int32_t where = -1;
                for (int ky = 0; ky < s->kh; ky++) {
                    int iy = y0 + ky;
                    if (iy < 0 || iy >= s->h)
                        continue;
                    for (int kx = 0; kx < s->kw; kx++) {
                        int ix = x0 + kx;
                        if (ix < 0 || ix >= s->w)
                            continue;
                        float v = xp[iy * s->w + ix];
                        if (where < 0 || v > best) {
                            best = v;
                            where = iy * s->w + ix;
                        }
                    }
                }
                yp[oy * s->ow + ox] = where < 0 ? 0.0f : best;
                ap[oy * s->ow + ox] = where;
            }
        }
    }
}

/* assign (here and below): dx holds no earlier contribution; each plane is
 * zeroed right before its sums, while in cache, instead of in a pass of its
 * own over the whole gradient: the same additions onto the same zeros. */
static void maxpool_backward_into(const pool_shape_t *s, const float *dy, const int32_t *argmax,
                                  float *dx, int assign)
{
    const size_t planes = (size_t)s->n * s->c, osz = (size_t)s->oh * s->ow;
    for (size_t pl = 0; pl < planes; pl++) {
        float *dxp = dx + pl * s->h * s->w;
        if (assign)
            memset(dxp, 0, sizeof(float) * (size_t)s->h * s->w);
        const float *dyp = dy + pl * osz;
        const int32_t *ap = argmax + pl * osz;
        for (size_t k = 0; k < osz; k++)
            if (ap[k] >= 0)
                dxp[ap[k]] += dyp[k];
    }
}

void maxpool_backward(const pool_shape_t *s, const float *dy, const int32_t *argmax, float *dx)
{
    maxpool_backward_into(s, dy, argmax, dx, 0);
}

void maxpool_backward_assign(const pool_shape_t *s, const float *dy, const int32_t *argmax,
                             float *dx)
{
    maxpool_backward_into(s, dy, argmax, dx, 1);
}

/*
 * Average pooling, vectorized across output columns. For one output row and
 * a chunk of up to POOL_CHUNK output columns, every window cell (iy, kx) is
 * one pass over the chunk's lanes, so each output still sums its cells in
 * the scalar order (row by row, left to right) and divides by the same float:
 * the results are bit-identical to a loop over one output at a time
 * (tests/unit/test_pool.c keeps that loop as its reference).
 */
#define POOL_CHUNK 64

/* Extent of window o along one axis: in-image cells [*a, *b) and the count of
 * cells including padding, not beyond the trailing pad (PyTorch's ceil_mode
 * overhang is not counted). */
static void avg_span(int o, int stride, int pad_before, int k, int in, int pad_after, int *a,
                     int *b, int *padded)
{
    const int lo = o * stride - pad_before, hi = lo + k;
    const int phi = hi < in + pad_after ? hi : in + pad_after;
    *padded = phi - lo;
    *a = lo < 0 ? 0 : lo;
    *b = hi > in ? in : hi;
}

/* Divisor of window (oy, ox): the full window (count_include_pad) or its
 * in-image cells; 1 for an empty window. */
static float avg_divisor(const pool_shape_t *s, int ya, int yb, int ypad, int xa, int xb,
                         int xpad)
{
    const int count = s->count_include_pad ? ypad * xpad : (yb - ya) * (xb - xa);
    return count > 0 ? (float)count : 1.0f;
}

/* Lanes j in [0, lanes) whose input column (ox0 + j) * stride + ix0 lies in [0, w). */
static void avg_lanes(int lanes, int stride, int ix0, int w, int *lo, int *hi)
{
    int a = ix0 >= 0 ? 0 : (-ix0 + stride - 1) / stride;
    int b = w - 1 - ix0 < 0 ? 0 : (w - 1 - ix0) / stride + 1;
    *lo = a < lanes ? a : lanes;
    *hi = b < lanes ? b : lanes;
    if (*hi < *lo)
        *hi = *lo;
}

void avgpool_forward(const pool_shape_t *s, const float *x, float *y)
{
    if (pool_simd_avgpool_forward(s, x, y))
        return;
    const size_t planes = (size_t)s->n * s->c;
    float acc[POOL_CHUNK];
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * s->h * s->w;
        float *yp = y + pl * s->oh * s->ow;
        for (int oy = 0; oy < s->oh; oy++) {
            int ya, yb, ypad;
            avg_span(oy, s->sh, s->pt, s->kh, s->h, s->pb, &ya, &yb, &ypad);
            for (int ox0 = 0; ox0 < s->ow; ox0 += POOL_CHUNK) {
                const int lanes = s->ow - ox0 < POOL_CHUNK ? s->ow - ox0 : POOL_CHUNK;
                for (int j = 0; j < lanes; j++)
                    acc[j] = 0.0f;
                for (int iy = ya; iy < yb; iy++) {
                    const float *row = xp + (size_t)iy * s->w;
                    for (int kx = 0; kx < s->kw; kx++) {
                        const int ix0 = ox0 * s->sw - s->pl + kx;
                        int lo, hi;
                        avg_lanes(lanes, s->sw, ix0, s->w, &lo, &hi);
                        if (s->sw == 1) {
                            const float *src = row + ix0;
                            for (int j = lo; j < hi; j++)
                                acc[j] += src[j];
                        } else {
                            for (int j = lo; j < hi; j++)
                                acc[j] += row[ix0 + j * s->sw];
                        }
                    }
                }
                float *dst = yp + (size_t)oy * s->ow + ox0;
                for (int j = 0; j < lanes; j++) {
                    int xa, xb, xpad;
                    avg_span(ox0 + j, s->sw, s->pl, s->kw, s->w, s->pr, &xa, &xb, &xpad);
                    dst[j] = acc[j] / avg_divisor(s, ya, yb, ypad, xa, xb, xpad);
                }
            }
        }
    }
}

/* dx += dy / divisor over each window. A pixel receives from the outputs
 * covering it in raster order (oy, then ox), as a loop over one output at a
 * time adds them: output rows in order, chunks of columns in order, and within
 * a chunk the window columns kx from last to first (output column ox + 1
 * reaches a pixel with a window column one less than ox does). */
static void avgpool_backward_into(const pool_shape_t *s, const float *dy, float *dx, int assign)
{
    if (pool_simd_avgpool_backward(s, dy, dx, assign))
        return;
    const size_t planes = (size_t)s->n * s->c;
    float g[POOL_CHUNK];
    for (size_t pl = 0; pl < planes; pl++) {
        float *dxp = dx + pl * s->h * s->w;
        if (assign)
            memset(dxp, 0, sizeof(float) * (size_t)s->h * s->w);
        const float *dyp = dy + pl * s->oh * s->ow;
        for (int oy = 0; oy < s->oh; oy++) {
            int ya, yb, ypad;
            avg_span(oy, s->sh, s->pt, s->kh, s->h, s->pb, &ya, &yb, &ypad);
            for (int ox0 = 0; ox0 < s->ow; ox0 += POOL_CHUNK) {
                const int lanes = s->ow - ox0 < POOL_CHUNK ? s->ow - ox0 : POOL_CHUNK;
                const float *src = dyp + (size_t)oy * s->ow + ox0;
                for (int j = 0; j < lanes; j++) {
                    int xa, xb, xpad;
                    avg_span(ox0 + j, s->sw, s->pl, s->kw, s->w, s->pr, &xa, &xb, &xpad);
                    g[j] = src[j] / avg_divisor(s, ya, yb, ypad, xa, xb, xpad);
                }
                for (int iy = ya; iy < yb; iy++) {
                    float *row = dxp + (size_t)iy * s->w;
                    for (int kx = s->kw - 1; kx >= 0; kx--) {
                        const int ix0 = ox0 * s->sw - s->pl + kx;
                        int lo, hi;
                        avg_lanes(lanes, s->sw, ix0, s->w, &lo, &hi);
                        if (s->sw == 1) {
                            float *dst = row + ix0;
                            for (int j = lo; j < hi; j++)
                                dst[j] += g[j];
                        } else {
                            for (int j = lo; j < hi; j++)
                                row[ix0 + j * s->sw] += g[j];
                        }
                    }
                }
            }
        }
    }
}

void avgpool_backward(const pool_shape_t *s, const float *dy, float *dx)
{
    avgpool_backward_into(s, dy, dx, 0);
}

void avgpool_backward_assign(const pool_shape_t *s, const float *dy, float *dx)
{
    avgpool_backward_into(s, dy, dx, 1);
}

void gap_forward(int n, int c, int hw, const float *x, float *y)
{
    for (size_t pl = 0; pl < (size_t)n * c; pl++) {
        const float *xp = x + pl * hw;
        double acc = 0.0;
        for (int k = 0; k < hw; k++)
            acc += xp[k];
        y[pl] = (float)(acc / hw);
    }
}

void gap_backward(int n, int c, int hw, const float *dy, float *dx)
{
    for (size_t pl = 0; pl < (size_t)n * c; pl++) {
        float g = dy[pl] / (float)hw;
        float *dxp = dx + pl * hw;
        for (int k = 0; k < hw; k++)
            dxp[k] += g;
    }
}

void gap_backward_assign(int n, int c, int hw, const float *dy, float *dx)
{
    for (size_t pl = 0; pl < (size_t)n * c; pl++) {
        const float g = 0.0f + dy[pl] / (float)hw; /* 0 + g: the bits of adding onto zeros */
        float *dxp = dx + pl * hw;
        for (int k = 0; k < hw; k++)
            dxp[k] = g;
    }
}
