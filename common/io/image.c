/*
 * image.c - resize, and the loader that turns a file into the network input (see image.h).
 *
 * A resize is separable: one weight table per axis (output index -> up to
 * `taps` source indices and weights), applied along rows then along columns.
 */
#include "io/image.h"

#include <math.h>
#include <string.h>

#include "io/imread.h"
#include "sc.h"

typedef struct resize_axis {
    int n_in, n_out, taps;
    int *index;    /* [n_out][taps] */
    float *weight; /* [n_out][taps] */
} resize_axis_t;

struct image_loader {
    int res;
    image_resize_t mode;
    image_norm_t norm;
    imread_options_t read_opt;
    int src_w, src_h; /* size the tables below are built for (0: none yet) */
    resize_axis_t ax_x, ax_y;
    float *scratch;   /* [src_h][res] */
    float *gray;      /* [res][res] */
};

int image_resize_parse(const char *name, image_resize_t *mode)
{
    if (name && !strcmp(name, "bilinear")) *mode = IMAGE_RESIZE_BILINEAR;
    else if (name && !strcmp(name, "area")) *mode = IMAGE_RESIZE_AREA;
    else {
        SC_ERROR("unknown resize mode '%s' (expected bilinear or area)", name ? name : "");
        return SC_ERR_ARG;
    }
    return SC_OK;
}

const char *image_resize_name(image_resize_t mode)
{
    return mode == IMAGE_RESIZE_AREA ? "area" : "bilinear";
}

static void resize_axis_free(resize_axis_t *ax)
{
    sc_free(ax->index);
    sc_free(ax->weight);
    memset(ax, 0, sizeof *ax);
}

/* Build the weight table of one axis (n_in -> n_out). */
static int resize_axis_build(resize_axis_t *ax, int n_in, int n_out, image_resize_t mode)
{
    int rc = SC_OK;
    resize_axis_free(ax);
    double scale = (double)n_in / n_out;
    int taps = mode == IMAGE_RESIZE_BILINEAR ? 2 : (int)ceil(scale) + 1;
    ax->n_in = n_in;
    ax->n_out = n_out;
    ax->taps = taps;
    ax->index = sc_calloc((size_t)n_out * taps, sizeof(int));
    ax->weight = sc_calloc((size_t)n_out * taps, sizeof(float));
    CHECK_ALLOC(ax->index);
    CHECK_ALLOC(ax->weight);
    for (int i = 0; i < n_out; i++) {
        int *idx = ax->index + (size_t)i * taps;
        float *wt = ax->weight + (size_t)i * taps;
        if (mode == IMAGE_RESIZE_BILINEAR) {
            double src = (i + 0.5) * scale - 0.5;
            if (src < 0)
                src = 0;
            int x0 = (int)floor(src);
            if (x0 > n_in - 1)
                x0 = n_in - 1;
            double lambda = src - x0;
            idx[0] = x0;
            idx[1] = x0 + 1 < n_in ? x0 + 1 : n_in - 1;
            wt[0] = (float)(1.0 - lambda);
            wt[1] = (float)lambda;
        } else {
            double a = i * scale, b = (i + 1) * scale;
            int j0 = (int)floor(a), k = 0;
            for (int j = j0; j < n_in && j < b && k < taps; j++, k++) {
                double lo = a > j ? a : j, hi = b < j + 1 ? b : j + 1;
                idx[k] = j;
                wt[k] = (float)((hi - lo) / scale);
            }
            for (; k < taps; k++) {
                idx[k] = j0 < n_in ? j0 : n_in - 1;
                wt[k] = 0.0f;
            }
        }
    }
cleanup:
    if (rc < 0)
        resize_axis_free(ax);
    return rc;
}

/* src [h_in][w_in] -> scratch [h_in][w_out] -> dst [h_out][w_out]. */
static void resize_apply(const resize_axis_t *ax, const resize_axis_t *ay, const float *src,
                         float *scratch, float *dst)
{
    int w_in = ax->n_in, h_in = ay->n_in, w_out = ax->n_out, h_out = ay->n_out;
    for (int y = 0; y < h_in; y++) {
        const float *row = src + (size_t)y * w_in;
        float *out = scratch + (size_t)y * w_out;
        for (int x = 0; x < w_out; x++) {
            const int *idx = ax->index + (size_t)x * ax->taps;
            const float *wt = ax->weight + (size_t)x * ax->taps;
            float acc = 0.0f;
            for (int k = 0; k < ax->taps; k++)
                acc += wt[k] * row[idx[k]];
            out[x] = acc;
        }
    }
    for (int y = 0; y < h_out; y++) {
        const int *idx = ay->index + (size_t)y * ay->taps;
        const float *wt = ay->weight + (size_t)y * ay->taps;
        float *out = dst + (size_t)y * w_out;
        for (int x = 0; x < w_out; x++)
            out[x] = 0.0f;
        for (int k = 0; k < ay->taps; k++) {
            const float *row = scratch + (size_t)idx[k] * w_out;
            float wk = wt[k];
            if (wk == 0.0f)
                continue;
            for (int x = 0; x < w_out; x++)
                out[x] += wk * row[x];
        }
    }
}

int image_resize(const float *src, int src_w, int src_h, float *dst, int dst_w, int dst_h,
                 image_resize_t mode)
{
    int rc = SC_OK;
    resize_axis_t ax = {0}, ay = {0};
    float *scratch = NULL;
    CHECK(src_w > 0 && src_h > 0 && dst_w > 0 && dst_h > 0, SC_ERR_ARG,
          "resize: invalid sizes %dx%d -> %dx%d", src_w, src_h, dst_w, dst_h);
    CHECK_RC(resize_axis_build(&ax, src_w, dst_w, mode));
    CHECK_RC(resize_axis_build(&ay, src_h, dst_h, mode));
    scratch = sc_calloc((size_t)src_h * dst_w, sizeof(float));
    CHECK_ALLOC(scratch);
    resize_apply(&ax, &ay, src, scratch, dst);
cleanup:
    resize_axis_free(&ax);
    resize_axis_free(&ay);
    sc_free(scratch);
    return rc;
}

image_loader_t *image_loader_create(int res, image_resize_t mode, image_norm_t norm)
{
    int rc = SC_OK;
    image_loader_t *loader = NULL;
    CHECK(res > 0 && res <= 16384, SC_ERR_ARG, "image loader: invalid resolution %d", res);
    CHECK(norm.channels == 1 || norm.channels == 3, SC_ERR_ARG,
          "image loader: input convention '%s' has %d channels", norm.name, norm.channels);
    loader = sc_calloc(1, sizeof *loader);
    CHECK_ALLOC(loader);
    loader->res = res;
    loader->mode = mode;
    loader->norm = norm;
    imread_options_default(&loader->read_opt);
    loader->gray = sc_calloc((size_t)res * res, sizeof(float));
    CHECK_ALLOC(loader->gray);
cleanup:
    if (rc < 0) {
        image_loader_destroy(loader);
        return NULL;
    }
    return loader;
}

void image_loader_destroy(image_loader_t *loader)
{
    if (!loader)
        return;
    resize_axis_free(&loader->ax_x);
    resize_axis_free(&loader->ax_y);
    sc_free(loader->scratch);
    sc_free(loader->gray);
    sc_free(loader);
}

void image_loader_set_read_options(image_loader_t *loader, const imread_options_t *opt)
{
    loader->read_opt = *opt;
}

int image_loader_load(image_loader_t *loader, const char *path, float *tensor, float *gray)
{
    int rc = SC_OK, w = 0, h = 0;
    float *pixels = NULL;
    int res = loader->res;
    CHECK_RC(imread_gray(path, &loader->read_opt, &w, &h, &pixels));
    if (w != loader->src_w || h != loader->src_h) {
        /* New source size: rebuild the tables and scratch (once per distinct size). */
        loader->src_w = loader->src_h = 0;
        sc_free(loader->scratch);
        loader->scratch = sc_calloc((size_t)h * res, sizeof(float));
        CHECK_ALLOC(loader->scratch);
        CHECK_RC(resize_axis_build(&loader->ax_x, w, res, loader->mode));
        CHECK_RC(resize_axis_build(&loader->ax_y, h, res, loader->mode));
        loader->src_w = w;
        loader->src_h = h;
    }
    resize_apply(&loader->ax_x, &loader->ax_y, pixels, loader->scratch, loader->gray);
    if (gray)
        memcpy(gray, loader->gray, (size_t)res * res * sizeof(float));
    if (tensor)
        image_normalize(loader->gray, res * res, loader->norm, tensor);
cleanup:
    sc_free(pixels);
    return rc;
}
