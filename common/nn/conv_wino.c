/*
 * conv_wino.c - Winograd F(2 x 2, 3 x 3) convolutions (conv_wino.h).
 *
 * Owned by common/nn. One routine serves both directions: a 3 x 3 stride-1
 * correlation of `ci` input planes of h x w (zeros outside, pt rows and pl
 * columns of them before the first) into `co` planes of oh x ow. The tiles
 * of all images are numbered image by image, row by row; a block of
 * consecutive tiles is transformed into V[16][ci][block], multiplied by the
 * 16 packed U[xi] (co x ci) into M[16][co][block], and transformed back
 * into the output planes, one run of a tile row (a segment) at a time.
 */
#include "nn/conv_wino.h"

#include <stdlib.h>
#include <string.h>

#include "nn/gemm.h"
#include "sc.h"

typedef struct {
    int n, ci, co; /* images, input and output channels */
    int h, w;      /* input plane */
    int oh, ow;    /* output plane */
    int pt, pl;    /* zero rows / columns before the input */
    int th, tw;    /* tiles per column / per row */
} wino_dims_t;

static wino_dims_t wino_dims(const conv2d_shape_t *s, int backward)
{
    wino_dims_t d;
    if (!backward) {
        d = (wino_dims_t){s->n, s->c, s->oc, s->h, s->w, s->oh, s->ow, s->pt, s->pl, 0, 0};
    } else {
        /* dx = correlation of dy with the flipped kernel, padding 2 - p */
        d = (wino_dims_t){s->n, s->oc, s->c, s->oh, s->ow, s->h, s->w, 2 - s->pt, 2 - s->pl, 0, 0};
    }
    d.th = (d.oh + 1) / 2;
    d.tw = (d.ow + 1) / 2;
    return d;
}

int conv_wino_wanted(const conv2d_shape_t *s, int backward)
{
    (void)backward; /* the same shapes both ways */
    return s->kh == 3 && s->kw == 3 && s->sh == 1 && s->sw == 1 && s->pt >= 0 && s->pt <= 2 &&
           s->pb >= 0 && s->pb <= 2 && s->pl >= 0 && s->pl <= 2 && s->pr >= 0 && s->pr <= 2 &&
           s->c >= 8 && s->oc >= 8 && s->oh * s->ow >= CONV_WINO_MIN_PIXELS &&
           nn_gemm_available();
}

/* Tiles per block: a multiple of the kernel's 32 columns, V and M each under
 * CONV_WINO_BLOCK_FLOATS. */
static int wino_block(const wino_dims_t *d)
{
    const int ch = d->ci > d->co ? d->ci : d->co;
    int tb = (int)(CONV_WINO_BLOCK_FLOATS / ((size_t)16 * ch)) / NN_GEMM_NR * NN_GEMM_NR;
    if (tb < NN_GEMM_NR)
        tb = NN_GEMM_NR;
    if (tb > 1024)
        tb = 1024;
    return tb;
}

static size_t wino_ws(const wino_dims_t *d)
{
    const size_t tb = (size_t)wino_block(d);
    const size_t rows = (size_t)8 * (2 * (size_t)d->tw + 2 + 16); /* padded input rows */
    const size_t outs = 4 * tb;                                   /* a segment's outputs */
    return 16 * tb * ((size_t)d->ci + d->co) + nn_gemm_bpack_floats() + rows + outs + 64;
}

size_t conv_wino_workspace(const conv2d_shape_t *s)
{
    const wino_dims_t f = wino_dims(s, 0), b = wino_dims(s, 1);
    const size_t a = wino_ws(&f), c = wino_ws(&b);
    return a > c ? a : c;
}

size_t conv_wino_u_floats(const conv2d_shape_t *s, int backward)
{
    const wino_dims_t d = wino_dims(s, backward);
    return 16 * nn_gemm_packed_floats(d.co, d.ci);
}

/* z = G g G^T for one 3 x 3 kernel g (row stride 3; flipped: g read
 * backwards), G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]. */
static void wino_kernel(const float *g9, int flip, float z[16])
{
    float g[3][3], t[4][3];
    for (int i = 0; i < 9; i++)
        g[i / 3][i % 3] = flip ? g9[8 - i] : g9[i];
    for (int j = 0; j < 3; j++) {
        t[0][j] = g[0][j];
        t[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
        t[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
        t[3][j] = g[2][j];
    }
    for (int k = 0; k < 4; k++) {
        z[4 * k + 0] = t[k][0];
        z[4 * k + 1] = 0.5f * (t[k][0] + t[k][1] + t[k][2]);
        z[4 * k + 2] = 0.5f * (t[k][0] - t[k][1] + t[k][2]);
        z[4 * k + 3] = t[k][2];
    }
}

int conv_wino_transform(const conv2d_shape_t *s, const float *W, int backward, float *u)
{
    int rc = 0;
    const wino_dims_t d = wino_dims(s, backward);
    const size_t mat = (size_t)d.co * d.ci, stride = nn_gemm_packed_floats(d.co, d.ci);
    /* the 16 positions' matrices, co x ci row-major each, then packed */
    float *tmp = malloc(sizeof(float) * 16 * mat);
    float z[16];
    CHECK_ALLOC(tmp);
    for (int r = 0; r < d.co; r++) {
        for (int c = 0; c < d.ci; c++) {
            /* forward: U[oc][c] from W[oc][c]; backward: U[c][oc] from W[oc][c] flipped */
            const float *g9 = backward ? W + ((size_t)c * s->c + r) * 9 : W + ((size_t)r * s->c + c) * 9;
            wino_kernel(g9, backward, z);
            for (int xi = 0; xi < 16; xi++)
                tmp[xi * mat + (size_t)r * d.ci + c] = z[xi];
        }
    }
    for (int xi = 0; xi < 16; xi++)
        nn_gemm_pack_a(d.co, d.ci, tmp + xi * mat, d.ci, 0, u + xi * stride);
cleanup:
    free(tmp);
    return rc;
}

/* V[xi][t] (xi stride vs) of the tiles (ty, tx0 .. tx0 + len) of one input
 * plane: V = B^T d B, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]. rows:
 * 8 x (2 len + 2) floats of scratch. */
static void wino_in_segment(const wino_dims_t *d, const float *plane, int ty, int tx0, int len,
                            float *v, size_t vs, float *rows)
{
    const int wid = 2 * len + 2, ix0 = 2 * tx0 - d->pl;
    float *r[4], *t[4];
    for (int k = 0; k < 4; k++) {
        r[k] = rows + (size_t)k * wid;
        t[k] = rows + (size_t)(4 + k) * wid;
    }
    /* in-image columns of the padded rows: q with 0 <= ix0 + q < w */
    int lo = ix0 < 0 ? -ix0 : 0, hi = d->w - ix0;
    if (hi > wid)
        hi = wid;
    if (hi < lo)
        hi = lo;
    for (int k = 0; k < 4; k++) {
        const int iy = 2 * ty - d->pt + k;
        if (iy < 0 || iy >= d->h) {
            memset(r[k], 0, sizeof(float) * (size_t)wid);
            continue;
        }
        const float *src = plane + (size_t)iy * d->w + ix0;
        for (int q = 0; q < lo; q++)
            r[k][q] = 0.0f;
        memcpy(r[k] + lo, src + lo, sizeof(float) * (size_t)(hi - lo));
        for (int q = hi; q < wid; q++)
            r[k][q] = 0.0f;
    }
    for (int q = 0; q < wid; q++) {
        const float a = r[0][q], b = r[1][q], c = r[2][q], e = r[3][q];
        t[0][q] = a - c;
        t[1][q] = b + c;
        t[2][q] = c - b;
        t[3][q] = b - e;
    }
    for (int k = 0; k < 4; k++) {
        const float *tk = t[k];
        float *restrict v0 = v + (size_t)(4 * k) * vs, *restrict v1 = v0 + vs;
        float *restrict v2 = v1 + vs, *restrict v3 = v2 + vs;
        for (int i = 0; i < len; i++) {
            const float a = tk[2 * i], b = tk[2 * i + 1], c = tk[2 * i + 2], e = tk[2 * i + 3];
            v0[i] = a - c;
            v1[i] = b + c;
            v2[i] = c - b;
            v3[i] = b - e;
        }
    }
}

enum { WINO_ASSIGN, WINO_ADD };

/* The outputs of the tiles (ty, tx0 .. tx0 + len) of one output plane from
 * M[xi][t] (xi stride ms): Y = A^T M A, A^T = [1 1 1 0; 0 1 -1 -1]; then
 * + bias, max(., 0) (assign only), or added onto the plane (WINO_ADD).
 * tmp: 4 x len floats. */
static void wino_out_segment(const wino_dims_t *d, const float *m, size_t ms, int ty, int tx0,
                             int len, float *plane, int mode, float bias, int relu, float *tmp)
{
    float *restrict y00 = tmp, *restrict y01 = tmp + len, *restrict y10 = tmp + 2 * len,
                    *restrict y11 = tmp + 3 * len;
    for (int i = 0; i < len; i++) {
        float r0[4], r1[4];
        for (int l = 0; l < 4; l++) {
            const float a = m[(size_t)l * ms + i], b = m[(size_t)(4 + l) * ms + i];
            const float c = m[(size_t)(8 + l) * ms + i], e = m[(size_t)(12 + l) * ms + i];
            r0[l] = a + b + c;
            r1[l] = b - c - e;
        }
        y00[i] = r0[0] + r0[1] + r0[2];
        y01[i] = r0[1] - r0[2] - r0[3];
        y10[i] = r1[0] + r1[1] + r1[2];
        y11[i] = r1[1] - r1[2] - r1[3];
    }
    const int oy = 2 * ty, ox0 = 2 * tx0;
    /* whole tiles: 2 columns each; the last tile of a row may have 1 */
    const int cols = d->ow - ox0 < 2 * len ? d->ow - ox0 : 2 * len;
    const int pairs = cols / 2, odd = cols & 1;
    for (int k = 0; k < 2 && oy + k < d->oh; k++) {
        float *restrict dst = plane + (size_t)(oy + k) * d->ow + ox0;
        const float *a = k ? y10 : y00, *b = k ? y11 : y01;
        if (mode == WINO_ADD) {
            for (int i = 0; i < pairs; i++) {
                dst[2 * i] += a[i];
                dst[2 * i + 1] += b[i];
            }
            if (odd)
                dst[2 * pairs] += a[pairs];
        } else if (relu) {
            for (int i = 0; i < pairs; i++) {
                const float p = a[i] + bias, q = b[i] + bias;
                dst[2 * i] = p > 0.0f ? p : 0.0f;
                dst[2 * i + 1] = q > 0.0f ? q : 0.0f;
            }
            if (odd) {
                const float p = a[pairs] + bias;
                dst[2 * pairs] = p > 0.0f ? p : 0.0f;
            }
        } else {
            for (int i = 0; i < pairs; i++) {
                dst[2 * i] = a[i] + bias;
                dst[2 * i + 1] = b[i] + bias;
            }
            if (odd)
                dst[2 * pairs] = a[pairs] + bias;
        }
    }
}

static void wino_run(const wino_dims_t *d, const float *u, const float *x, float *y,
                     const float *bias, int relu, int mode, float *ws)
{
    const int tb = wino_block(d), t1 = d->th * d->tw;
    const size_t total = (size_t)d->n * t1, in_plane = (size_t)d->h * d->w;
    const size_t out_plane = (size_t)d->oh * d->ow, ustride = nn_gemm_packed_floats(d->co, d->ci);
    const size_t vs = (size_t)d->ci * tb, ms = (size_t)d->co * tb;
    float *v = ws, *m = v + 16 * vs, *bpack = m + 16 * ms;
    float *rows = bpack + nn_gemm_bpack_floats();
    float *tmp = rows + (size_t)8 * (2 * (size_t)d->tw + 2 + 16);
    for (size_t t0 = 0; t0 < total; t0 += (size_t)tb) {
        const int nb = total - t0 < (size_t)tb ? (int)(total - t0) : tb;
        for (int j = 0; j < nb;) { /* the block's segments: runs of one tile row */
            const size_t t = t0 + (size_t)j;
            const int img = (int)(t / (size_t)t1), r = (int)(t % (size_t)t1);
            const int ty = r / d->tw, tx = r % d->tw;
            const int len = d->tw - tx < nb - j ? d->tw - tx : nb - j;
            for (int c = 0; c < d->ci; c++)
                wino_in_segment(d, x + ((size_t)img * d->ci + c) * in_plane, ty, tx, len,
                                v + (size_t)c * tb + j, vs, rows);
            j += len;
        }
        for (int xi = 0; xi < 16; xi++)
            nn_gemm_packed(d->co, nb, d->ci, u + xi * ustride, v + xi * vs, tb, m + xi * ms, tb, 0,
                           NULL, 0, bpack);
        for (int j = 0; j < nb;) {
            const size_t t = t0 + (size_t)j;
            const int img = (int)(t / (size_t)t1), r = (int)(t % (size_t)t1);
            const int ty = r / d->tw, tx = r % d->tw;
            const int len = d->tw - tx < nb - j ? d->tw - tx : nb - j;
            for (int o = 0; o < d->co; o++)
                wino_out_segment(d, m + (size_t)o * tb + j, ms, ty, tx, len,
                                 y + ((size_t)img * d->co + o) * out_plane, mode,
                                 bias ? bias[o] : 0.0f, relu, tmp);
            j += len;
        }
    }
}

void conv_wino_forward(const conv2d_shape_t *s, const float *u, const float *x, const float *b,
                       int relu, float *y, float *ws)
{
    const wino_dims_t d = wino_dims(s, 0);
    wino_run(&d, u, x, y, b, relu, WINO_ASSIGN, ws);
}

void conv_wino_backward_data(const conv2d_shape_t *s, const float *u, const float *dy, float *dx,
                             int assign, float *ws)
{
    const wino_dims_t d = wino_dims(s, 1);
    wino_run(&d, u, dy, dx, NULL, 0, assign ? WINO_ASSIGN : WINO_ADD, ws);
}
