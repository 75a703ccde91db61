/*
 * pool.c - max pool, average pool, global average pool (layers.h).
 *
 * Output size: floor((in + pads - k)/s) + 1, or with ceil_mode the ceiling,
 * dropping a last window that would start inside the trailing padding
 * (PyTorch's rule). Max pool ignores padded cells; average pool divides by
 * the full window (count_include_pad, PyTorch default) or by the cells inside
 * the image (Keras "same" average pooling). Max pool ties: the first maximal
 * element in scan order wins (layers.h).
 */
#include <float.h>

#include "nn/layers.h"
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

void maxpool_backward(const pool_shape_t *s, const float *dy, const int32_t *argmax, float *dx)
{
    const size_t planes = (size_t)s->n * s->c, osz = (size_t)s->oh * s->ow;
    for (size_t pl = 0; pl < planes; pl++) {
        float *dxp = dx + pl * s->h * s->w;
        const float *dyp = dy + pl * osz;
        const int32_t *ap = argmax + pl * osz;
        for (size_t k = 0; k < osz; k++)
            if (ap[k] >= 0)
                dxp[ap[k]] += dyp[k];
    }
}

/* Window bounds clipped to the image, and the divisor of the average. */
static void avg_window(const pool_shape_t *s, int oy, int ox, int *ya, int *yb, int *xa, int *xb,
                       float *divisor)
{
    int y0 = oy * s->sh - s->pt, x0 = ox * s->sw - s->pl;
    int y1 = y0 + s->kh, x1 = x0 + s->kw;
    /* PyTorch counts padded cells but not cells beyond the padding (ceil_mode overhang). */
    int py1 = y1 < s->h + s->pb ? y1 : s->h + s->pb, px1 = x1 < s->w + s->pr ? x1 : s->w + s->pr;
    int padded = (py1 - y0) * (px1 - x0);
    *ya = y0 < 0 ? 0 : y0;
    *xa = x0 < 0 ? 0 : x0;
    *yb = y1 > s->h ? s->h : y1;
    *xb = x1 > s->w ? s->w : x1;
    int inside = (*yb - *ya) * (*xb - *xa);
    *divisor = (float)(s->count_include_pad ? padded : inside);
    if (*divisor <= 0.0f)
        *divisor = 1.0f;
}

void avgpool_forward(const pool_shape_t *s, const float *x, float *y)
{
    const size_t planes = (size_t)s->n * s->c;
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * s->h * s->w;
        float *yp = y + pl * s->oh * s->ow;
        for (int oy = 0; oy < s->oh; oy++) {
            for (int ox = 0; ox < s->ow; ox++) {
                int ya, yb, xa, xb;
                float div;
                avg_window(s, oy, ox, &ya, &yb, &xa, &xb, &div);
                float acc = 0.0f;
                for (int iy = ya; iy < yb; iy++)
                    for (int ix = xa; ix < xb; ix++)
                        acc += xp[iy * s->w + ix];
                yp[oy * s->ow + ox] = acc / div;
            }
        }
    }
}

void avgpool_backward(const pool_shape_t *s, const float *dy, float *dx)
{
    const size_t planes = (size_t)s->n * s->c;
    for (size_t pl = 0; pl < planes; pl++) {
        float *dxp = dx + pl * s->h * s->w;
        const float *dyp = dy + pl * s->oh * s->ow;
        for (int oy = 0; oy < s->oh; oy++) {
            for (int ox = 0; ox < s->ow; ox++) {
                int ya, yb, xa, xb;
                float div;
                avg_window(s, oy, ox, &ya, &yb, &xa, &xb, &div);
                float g = dyp[oy * s->ow + ox] / div;
                for (int iy = ya; iy < yb; iy++)
                    for (int ix = xa; ix < xb; ix++)
                        dxp[iy * s->w + ix] += g;
            }
        }
    }
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
