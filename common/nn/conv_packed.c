/*
 * conv_packed.c - convolutions of small images, several images per packed
 * GEMM (conv_packed.h).
 *
 * Owned by common/nn. Forward: y[oc, images x P] = W[oc, K] B[K, images x P]
 * (W read in place, no pack: at batch 1 packing the weights of a 7 x 7 layer
 * cost more than its product) with B the images' inputs (pointwise) or their patch matrices, one segment
 * per image (nn_gemm_seg_t), the output segments the images' planes in y.
 * Input gradient: dcol[K, images x P] = W^T dy (W^T packed once per model
 * state by nn/wpack.h, or per call), straight into dx when pointwise, else
 * into the group's patch matrices, a slice of input channels at a time, and
 * added back by col2im image by image while the slice is in L2.
 */
#include "nn/conv_packed.h"

#include "nn/gemm.h"

static int conv_packed_pointwise(const conv2d_shape_t *s)
{
    return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->pt == 0 && s->pb == 0 &&
           s->pl == 0 && s->pr == 0;
}

int conv_packed_wanted(const conv2d_shape_t *s, int backward)
{
    const int p = s->oh * s->ow;
    const int lo = backward ? CONV_PACKED_BWD_BLAS_MIN : CONV_PACKED_FWD_BLAS_MIN;
    const int hi = backward ? CONV_PACKED_BWD_BLAS_MAX : CONV_PACKED_FWD_BLAS_MAX;
    return (p < lo || p > hi) && nn_gemm_available();
}

int conv_packed_group(const conv2d_shape_t *s)
{
    const size_t p = (size_t)s->oh * s->ow, k = (size_t)s->c * s->kh * s->kw;
    if (p >= CONV_PACKED_GROUP_COLUMNS)
        return 1;
    int g = (int)((CONV_PACKED_GROUP_COLUMNS + p - 1) / p);
    while (g > 1 && !conv_packed_pointwise(s) && (size_t)g * k * p > CONV_PACKED_GROUP_FLOATS)
        g--;
    return g;
}

static size_t conv_packed_a_floats(const conv2d_shape_t *s)
{
    const int K = s->c * s->kh * s->kw;
    const size_t fwd = nn_gemm_packed_floats(s->oc, K), bwd = nn_gemm_packed_floats(K, s->oc);
    return fwd > bwd ? fwd : bwd;
}

size_t conv_packed_workspace(const conv2d_shape_t *s)
{
    size_t col = 0;
    if (!conv_packed_pointwise(s))
        col = (size_t)conv_packed_group(s) * s->c * s->kh * s->kw * s->oh * s->ow;
    return conv_packed_a_floats(s) + nn_gemm_bpack_floats() + col;
}

int conv_packed_fwd_columns(const conv2d_shape_t *s)
{
    const size_t k = (size_t)s->c * s->kh * s->kw;
    const size_t w = CONV_PACKED_FWD_SLICE_FLOATS / k / NN_GEMM_NR * NN_GEMM_NR;
    return w < CONV_PACKED_FWD_SLICE_MIN ? CONV_PACKED_FWD_SLICE_MIN
           : w > (1u << 20)              ? (1 << 20)
                                         : (int)w;
}

void conv_packed_forward_cols(const conv2d_shape_t *s, const float *x, const float *W,
                              const float *b, int relu, float *y, float *ws, int columns)
{
    const int K = s->c * s->kh * s->kw, P = s->oh * s->ow, G = conv_packed_group(s);
    const size_t in_size = (size_t)s->c * s->h * s->w, out_size = (size_t)s->oc * P;
    float *bpack = ws + conv_packed_a_floats(s), *col = bpack + nn_gemm_bpack_floats();
    for (int i0 = 0; i0 < s->n; i0 += G) {
        nn_gemm_seg_t g = {.seg = P, .n_seg = s->n - i0 < G ? s->n - i0 : G, .c_seg = out_size,
                           .b_seg = in_size};
        float *yg = y + i0 * out_size;
        if (conv_packed_pointwise(s)) {
            nn_gemm_rows_seg(s->oc, K, W, K, x + i0 * in_size, P, yg, P, &g, 0, b, relu, bpack);
            continue;
        }
        /* the group's columns (image j / P, pixel j % P) a slice at a time */
        const int cols = g.n_seg * P;
        for (int j0 = 0; j0 < cols; j0 += columns) {
            const int n = cols - j0 < columns ? cols - j0 : columns;
            for (int img = j0 / P; img * P < j0 + n; img++) {
                const int p0 = j0 > img * P ? j0 - img * P : 0;
                const int p1 = j0 + n < (img + 1) * P ? j0 + n - img * P : P;
                conv2d_im2col_range(s, x + (i0 + img) * in_size, p0, p1,
                                    col + (img * P + p0 - j0), (size_t)n);
            }
            nn_gemm_rows_cols(s->oc, K, W, K, col, n, yg, P, &g, j0, n, 0, b, relu, bpack);
        }
    }
}

void conv_packed_forward(const conv2d_shape_t *s, const float *x, const float *W, const float *b,
                         int relu, float *y, float *ws)
{
    conv_packed_forward_cols(s, x, W, b, relu, y, ws, conv_packed_fwd_columns(s));
}

int conv_packed_bwd_channels(const conv2d_shape_t *s)
{
    const size_t cols = (size_t)conv_packed_group(s) * s->oh * s->ow;
    const size_t per_panel = (size_t)NN_GEMM_MR * s->kh * s->kw * cols; /* floats of NN_GEMM_MR channels' rows */
    if (per_panel > CONV_PACKED_SLICE_FLOATS)
        return NN_GEMM_MR < s->c ? NN_GEMM_MR : s->c;
    const int ch = NN_GEMM_MR * (int)(CONV_PACKED_SLICE_FLOATS / per_panel);
    return ch < s->c ? ch : s->c;
}

void conv_packed_backward_data(const conv2d_shape_t *s, const float *W, const float *packed_wt,
                               const float *dy, float *dx, int assign, float *ws)
{
    const int K = s->c * s->kh * s->kw, P = s->oh * s->ow, G = conv_packed_group(s);
    const int taps = s->kh * s->kw, slice = conv_packed_bwd_channels(s);
    const size_t in_size = (size_t)s->c * s->h * s->w, out_size = (size_t)s->oc * P;
    const int pointwise = conv_packed_pointwise(s);
    float *bpack = ws + conv_packed_a_floats(s);
    float *col = bpack + nn_gemm_bpack_floats();
    if (!packed_wt) {
        nn_gemm_pack_a(K, s->oc, W, K, 1, ws);
        packed_wt = ws;
    }
    for (int i0 = 0; i0 < s->n; i0 += G) {
        nn_gemm_seg_t g = {.seg = P, .n_seg = s->n - i0 < G ? s->n - i0 : G, .b_seg = out_size};
        if (pointwise) {
            g.c_seg = in_size;
            nn_gemm_packed_seg(K, s->oc, packed_wt, dy + i0 * out_size, P, dx + i0 * in_size, P,
                               &g, !assign, NULL, 0, bpack);
            continue;
        }
        /* rows [ci0 * taps, ci1 * taps) of W^T dy: a multiple of NN_GEMM_MR rows (a whole
         * number of packed panels) unless it is the last slice */
        for (int ci0 = 0; ci0 < s->c; ci0 += slice) {
            const int ci1 = s->c - ci0 < slice ? s->c : ci0 + slice, rows = (ci1 - ci0) * taps;
            g.c_seg = (size_t)rows * P;
            nn_gemm_packed_seg(rows, s->oc, packed_wt + (size_t)ci0 * taps * s->oc,
                               dy + i0 * out_size, P, col, P, &g, 0, NULL, 0, bpack);
            for (int j = 0; j < g.n_seg; j++)
                conv2d_col2im_channels(s, col + (size_t)j * rows * P, dx + (i0 + j) * in_size,
                                       assign, ci0, ci1);
        }
    }
}
