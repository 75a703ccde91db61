/*
 * xrai.c - XRAI regions: segmentation masks and the greedy ranking
 * (docs/methods.md section 4; behaviour described in xrai.h).
 *
 * Owned by workers/saliency. Three parts:
 *   1. resize: the image rescaled to the segmentation range and resized the
 *      way skimage.transform.resize(order=3, mode='constant',
 *      anti_aliasing=True, preserve_range=True) does it on a float32 array:
 *      Gaussian anti-aliasing with sigma (factor-1)/2 per shrunk axis (zero
 *      borders), cubic B-spline prefilter of the array padded by 12 zeros,
 *      cubic interpolation at ((o+0.5)*in/out - 0.5), clip to the input range.
 *      float32 rounding happens where the reference stores float32 arrays.
 *   2. masks: Felzenszwalb per scale, nearest resize back, disk dilation.
 *      Stored as two sparse indexes: pixel -> masks containing it and
 *      mask -> its pixels.
 *   3. greedy: per-mask counts and sums of the attribution over not-yet-
 *      covered pixels, updated as pixels get covered; each step costs
 *      O(#masks) plus the pixels it covers.
 */
#include "xrai.h"

#include <math.h>
#include <string.h>

#include "saliency/felzenszwalb.h"
#include "sc.h"

#define XRAI_SPLINE_PAD 12 /* scipy pads this many zeros before a 'grid-constant' prefilter */

struct xrai_ws {
    xrai_params_t p;
    int h, w, c;
    size_t n;            /* h*w */
    int sh, sw;          /* segmentation size */
    int resize;          /* 1 when (sh, sw) differs from a direct copy */
    /* resize buffers */
    float *norm;         /* [h,w,c] rescaled image (float32 as the reference) */
    double *planes;      /* [c][(h+2P)*(w+2P)] spline coefficients per channel */
    double *chan_coef;   /* [(h+2P)*(w+2P)][c+3] coefficients after the channel pass */
    double *line, *line2;/* line buffers */
    int line_cap;
    double *seg_img;     /* [sh,sw,c] the image Felzenszwalb sees */
    int *row_start, *col_start;     /* interpolation taps per output row / column */
    double *row_w, *col_w;          /* [sh][4], [sw][4] */
    felz_ws_t *felz;
    int32_t *seg_labels; /* [sh*sw] */
    int32_t *labels;     /* [n_scales][h*w] at the original size */
    int32_t *run_end;    /* [n_scales][h*w] last column of the run of equal labels holding each pixel */
    /* masks */
    int n_masks, mask_cap;
    int32_t *mask_count;   /* pixels per mask */
    uint32_t *fwd_start;   /* [mask_cap+1] */
    int32_t *fwd;          /* pixels of each mask, ascending */
    uint32_t *inv_start;   /* [n+1] */
    int32_t *inv;          /* masks containing each pixel */
    size_t member_cap;     /* capacity of fwd and inv */
    int masks_ready;
    /* greedy state */
    double *msum;          /* attribution sum over a mask's uncovered pixels */
    int32_t *mcnt;         /* its uncovered pixel count */
    int32_t *remaining;    /* masks still in play, in order */
    int32_t *step_of_pixel;/* [n], -1 never covered */
    double *step_gain;     /* [mask_cap] */
    int32_t *step_sorted;  /* [mask_cap] */
    int32_t *step_rank;    /* [mask_cap] */
};

_Static_assert(sizeof(xrai_params_t) == (XRAI_MAX_SCALES + 4) * sizeof(double) + 6 * sizeof(int),
               "xrai_params_t must have no padding (it is compared with memcmp)");

xrai_params_t xrai_params_default(void)
{
    xrai_params_t p;
    memset(&p, 0, sizeof p);
    const double scales[6] = {50, 100, 150, 250, 500, 1200};
    p.n_scales = 6;
    for (int i = 0; i < 6; i++)
        p.scales[i] = scales[i];
    p.sigma = 0.8;
    p.min_size = 150;
    p.resize_h = 224;
    p.resize_w = 224;
    p.range_lo = -1.0;
    p.range_hi = 1.0;
    p.dilation_radius = 5;
    p.area_threshold = 1.0;
    p.min_pixel_diff = 50;
    return p;
}

int xrai_params_check(const xrai_params_t *p)
{
    int rc = 0;
    CHECK(p != NULL, SC_ERR_ARG, "xrai: NULL parameters");
    CHECK(p->n_scales >= 1 && p->n_scales <= XRAI_MAX_SCALES, SC_ERR_ARG,
          "xrai: n_scales = %d, expected 1..%d", p->n_scales, XRAI_MAX_SCALES);
    for (int i = 0; i < p->n_scales; i++)
        CHECK(isfinite(p->scales[i]) && p->scales[i] > 0, SC_ERR_ARG,
              "xrai: scales[%d] = %g, expected a positive number", i, p->scales[i]);
    CHECK(p->sigma >= 0 && p->sigma <= 30, SC_ERR_ARG, "xrai: sigma = %g, expected 0..30",
          p->sigma);
    CHECK(p->min_size >= 0, SC_ERR_ARG, "xrai: min_size = %d, expected >= 0", p->min_size);
    CHECK((p->resize_h == 0 && p->resize_w == 0) || (p->resize_h >= 1 && p->resize_w >= 1),
          SC_ERR_ARG, "xrai: resize %d x %d, expected both positive or both 0 (no resize)",
          p->resize_h, p->resize_w);
    CHECK(isfinite(p->range_lo) && isfinite(p->range_hi) && p->range_hi > p->range_lo,
          SC_ERR_ARG, "xrai: value range [%g, %g] is empty", p->range_lo, p->range_hi);
    CHECK(p->dilation_radius >= 0 && p->dilation_radius <= 32, SC_ERR_ARG,
          "xrai: dilation_radius = %d, expected 0..32", p->dilation_radius);
    CHECK(p->area_threshold > 0 && p->area_threshold <= 1.0, SC_ERR_ARG,
          "xrai: area_threshold = %g, expected (0, 1]", p->area_threshold);
    CHECK(p->min_pixel_diff >= 1, SC_ERR_ARG, "xrai: min_pixel_diff = %d, expected >= 1",
          p->min_pixel_diff);
cleanup:
    return rc;
}

/* (Re)allocates the per-mask arrays for at least `cap` masks. */
static int ensure_mask_cap(xrai_ws_t *ws, int cap)
{
    if (cap <= ws->mask_cap)
        return 0;
    int rc = 0;
    int32_t *count = sc_calloc((size_t)cap, sizeof(int32_t));
    uint32_t *start = sc_calloc((size_t)cap + 1, sizeof(uint32_t));
    double *msum = sc_calloc((size_t)cap, sizeof(double));
    int32_t *mcnt = sc_calloc((size_t)cap, sizeof(int32_t));
    int32_t *rem = sc_calloc((size_t)cap, sizeof(int32_t));
    double *gain = sc_calloc((size_t)cap, sizeof(double));
    int32_t *sorted = sc_calloc((size_t)cap, sizeof(int32_t));
    int32_t *rank = sc_calloc((size_t)cap, sizeof(int32_t));
    if (!count || !start || !msum || !mcnt || !rem || !gain || !sorted || !rank) {
        sc_free(count), sc_free(start), sc_free(msum), sc_free(mcnt);
        sc_free(rem), sc_free(gain), sc_free(sorted), sc_free(rank);
        CHECK(0, SC_ERR_NOMEM, "xrai: out of memory for %d masks", cap);
    }
    sc_free(ws->mask_count), sc_free(ws->fwd_start), sc_free(ws->msum), sc_free(ws->mcnt);
    sc_free(ws->remaining), sc_free(ws->step_gain), sc_free(ws->step_sorted);
    sc_free(ws->step_rank);
    ws->mask_count = count;
    ws->fwd_start = start;
    ws->msum = msum;
    ws->mcnt = mcnt;
    ws->remaining = rem;
    ws->step_gain = gain;
    ws->step_sorted = sorted;
    ws->step_rank = rank;
    ws->mask_cap = cap;
cleanup:
    return rc;
}

/* Grows the membership lists to hold at least `need` entries, keeping inv. */
static int ensure_member_cap(xrai_ws_t *ws, size_t need)
{
    if (need <= ws->member_cap)
        return 0;
    int rc = 0;
    size_t cap = ws->member_cap + ws->member_cap / 2;
    if (cap < need)
        cap = need;
    int32_t *inv = sc_calloc(cap, sizeof(int32_t));
    int32_t *fwd = sc_calloc(cap, sizeof(int32_t));
    if (!inv || !fwd) {
        sc_free(inv);
        sc_free(fwd);
        CHECK(0, SC_ERR_NOMEM, "xrai: out of memory for %zu mask memberships", cap);
    }
    if (ws->inv)
        memcpy(inv, ws->inv, ws->member_cap * sizeof(int32_t));
    sc_free(ws->inv);
    sc_free(ws->fwd);
    ws->inv = inv;
    ws->fwd = fwd;
    ws->member_cap = cap;
cleanup:
    return rc;
}

/* Mask arrays' first capacity (masks): mask_cap_bytes each. */
#define XRAI_MASK_CAP0 1024

/* Bytes of the per-mask arrays (ensure_mask_cap) for cap masks. */
static size_t mask_cap_bytes(size_t cap)
{
    return cap * (6 * sizeof(int32_t) + 2 * sizeof(double)) + sizeof(uint32_t);
}

size_t xrai_ws_bytes(int h, int w, int c, const xrai_params_t *params)
{
    const size_t n = (size_t)h * w, ns = (size_t)params->n_scales;
    const int resize = params->resize_h > 0;
    const int sh = resize ? params->resize_h : h, sw = resize ? params->resize_w : w;
    const size_t seg_n = (size_t)sh * sw;
    size_t bytes = n * c * sizeof(float) + seg_n * c * sizeof(double);
    if (resize) {
        const size_t ph = (size_t)h + 2 * XRAI_SPLINE_PAD, pw = (size_t)w + 2 * XRAI_SPLINE_PAD;
        size_t longest = ph > pw ? ph : pw;
        if ((size_t)c + 2 * XRAI_SPLINE_PAD > longest)
            longest = (size_t)c + 2 * XRAI_SPLINE_PAD;
        bytes += ph * pw * c * sizeof(double) +
                 (c > 1 ? ph * pw * (size_t)(c + 3) * sizeof(double) : 0) +
                 2 * (longest + 2 * 64) * sizeof(double) + (size_t)(sh + sw) * sizeof(int) +
                 (size_t)(sh + sw) * 4 * sizeof(double);
    }
    /* Felzenszwalb; seg_labels, labels, inv_start, step_of_pixel; inv and fwd; masks */
    return bytes + felz_ws_bytes(sh, sw, c) + seg_n * sizeof(int32_t) +
           n * ns * sizeof(int32_t) + (n + 1) * sizeof(uint32_t) + n * sizeof(int32_t) +
           2 * n * ns * 2 * sizeof(int32_t) + mask_cap_bytes(XRAI_MASK_CAP0);
}

int xrai_ws_create(xrai_ws_t **out, int h, int w, int c, const xrai_params_t *params)
{
    int rc = 0;
    xrai_ws_t *ws = NULL;
    CHECK(out != NULL, SC_ERR_ARG, "xrai_ws_create: NULL output pointer");
    *out = NULL;
    CHECK_RC(xrai_params_check(params));
    CHECK(h >= 1 && w >= 1 && c >= 1, SC_ERR_ARG, "xrai_ws_create: invalid image shape %dx%dx%d",
          h, w, c);
    CHECK((size_t)h * (size_t)w < (size_t)1 << 28, SC_ERR_ARG,
          "xrai_ws_create: image of %d x %d pixels is too large", h, w);
    ws = sc_calloc(1, sizeof *ws);
    CHECK_ALLOC(ws);
    ws->p = *params;
    ws->h = h;
    ws->w = w;
    ws->c = c;
    ws->n = (size_t)h * (size_t)w;
    ws->resize = params->resize_h > 0;
    ws->sh = ws->resize ? params->resize_h : h;
    ws->sw = ws->resize ? params->resize_w : w;
    const size_t seg_n = (size_t)ws->sh * (size_t)ws->sw;

    ws->norm = sc_calloc(ws->n * (size_t)c, sizeof(float));
    CHECK_ALLOC(ws->norm);
    ws->seg_img = sc_calloc(seg_n * (size_t)c, sizeof(double));
    CHECK_ALLOC(ws->seg_img);
    if (ws->resize) {
        const size_t ph = (size_t)h + 2 * XRAI_SPLINE_PAD, pw = (size_t)w + 2 * XRAI_SPLINE_PAD;
        ws->planes = sc_calloc(ph * pw * (size_t)c, sizeof(double));
        CHECK_ALLOC(ws->planes);
        if (c > 1) {
            ws->chan_coef = sc_calloc(ph * pw * (size_t)(c + 3), sizeof(double));
            CHECK_ALLOC(ws->chan_coef);
        }
        int longest = (int)(ph > pw ? ph : pw);
        if (c + 2 * XRAI_SPLINE_PAD > longest)
            longest = c + 2 * XRAI_SPLINE_PAD;
        ws->line_cap = longest + 2 * 64; /* room for the anti-aliasing kernel */
        ws->line = sc_calloc((size_t)ws->line_cap, sizeof(double));
        CHECK_ALLOC(ws->line);
        ws->line2 = sc_calloc((size_t)ws->line_cap, sizeof(double));
        CHECK_ALLOC(ws->line2);
        ws->row_start = sc_calloc((size_t)ws->sh, sizeof(int));
        CHECK_ALLOC(ws->row_start);
        ws->col_start = sc_calloc((size_t)ws->sw, sizeof(int));
        CHECK_ALLOC(ws->col_start);
        ws->row_w = sc_calloc((size_t)ws->sh * 4, sizeof(double));
        CHECK_ALLOC(ws->row_w);
        ws->col_w = sc_calloc((size_t)ws->sw * 4, sizeof(double));
        CHECK_ALLOC(ws->col_w);
    }
    CHECK_RC(felz_ws_create(&ws->felz, ws->sh, ws->sw, c));
    ws->seg_labels = sc_calloc(seg_n, sizeof(int32_t));
    CHECK_ALLOC(ws->seg_labels);
    ws->labels = sc_calloc(ws->n * (size_t)params->n_scales, sizeof(int32_t));
    CHECK_ALLOC(ws->labels);
    ws->run_end = sc_calloc(ws->n * (size_t)params->n_scales, sizeof(int32_t));
    CHECK_ALLOC(ws->run_end);
    ws->inv_start = sc_calloc(ws->n + 1, sizeof(uint32_t));
    CHECK_ALLOC(ws->inv_start);
    ws->step_of_pixel = sc_calloc(ws->n, sizeof(int32_t));
    CHECK_ALLOC(ws->step_of_pixel);
    /* a typical image: every pixel in ~2 masks per scale; the mask arrays grow to the
     * segments an image has (a few hundred per scale at most with min_size 150) */
    CHECK_RC(ensure_member_cap(ws, ws->n * (size_t)params->n_scales * 2));
    CHECK_RC(ensure_mask_cap(ws, XRAI_MASK_CAP0));
    *out = ws;
    ws = NULL;
cleanup:
    xrai_ws_destroy(ws);
    return rc;
}

void xrai_ws_destroy(xrai_ws_t *ws)
{
    if (!ws)
        return;
    sc_free(ws->norm);
    sc_free(ws->planes);
    sc_free(ws->chan_coef);
    sc_free(ws->line);
    sc_free(ws->line2);
    sc_free(ws->seg_img);
    sc_free(ws->row_start);
    sc_free(ws->col_start);
    sc_free(ws->row_w);
    sc_free(ws->col_w);
    felz_ws_destroy(ws->felz);
    sc_free(ws->seg_labels);
    sc_free(ws->labels);
    sc_free(ws->run_end);
    sc_free(ws->mask_count);
    sc_free(ws->fwd_start);
    sc_free(ws->fwd);
    sc_free(ws->inv_start);
    sc_free(ws->inv);
    sc_free(ws->msum);
    sc_free(ws->mcnt);
    sc_free(ws->remaining);
    sc_free(ws->step_of_pixel);
    sc_free(ws->step_gain);
    sc_free(ws->step_sorted);
    sc_free(ws->step_rank);
    sc_free(ws);
}

/* ---------------------------------------------------------------- resize */

/* Anti-aliasing blur of one axis of the float32 array `a` ([h,w,c]) in place,
 * zero borders, as scipy.ndimage.gaussian_filter1d(mode='constant') storing
 * into float32. axis 0 = rows, 1 = columns. */
static int blur_axis(xrai_ws_t *ws, float *a, int axis, double sigma)
{
    double weights[129];
    int r = felz_gaussian_kernel(sigma, 4.0, weights, 129);
    if (r < 0 || 2 * r > ws->line_cap - (axis == 0 ? ws->h : ws->w)) {
        SC_ERROR("xrai: anti-aliasing sigma %g is too large (the image is shrunk too much)",
                 sigma);
        return SC_ERR_ARG;
    }
    const int h = ws->h, w = ws->w, c = ws->c;
    const int len = axis == 0 ? h : w, lines = axis == 0 ? w : h;
    const size_t step = axis == 0 ? (size_t)w * c : (size_t)c;
    double *ext = ws->line, *res = ws->line2;
    for (int l = 0; l < lines; l++) {
        for (int ch = 0; ch < c; ch++) {
            float *base = a + (axis == 0 ? (size_t)l * c : (size_t)l * w * c) + ch;
            for (int i = 0; i < r; i++)
                ext[i] = ext[r + len + i] = 0.0;
            for (int i = 0; i < len; i++)
                ext[r + i] = (double)base[(size_t)i * step];
            felz_correlate_symmetric(ext, len, weights, r, res);
            for (int i = 0; i < len; i++)
                base[(size_t)i * step] = (float)res[i];
        }
    }
    return 0;
}

/* Cubic B-spline prefilter of one line (pole sqrt(3)-2), with the mirror-
 * symmetric initial conditions of Unser et al. (1991). */
static void spline_prefilter_line(double *c, long n)
{
    if (n < 2)
        return;
    const double z = -0.267949192431122706472553658494127633; /* sqrt(3) - 2 */
    const double gain = (1.0 - z) * (1.0 - 1.0 / z);
    for (long i = 0; i < n; i++)
        c[i] *= gain;
    /* causal initialization: the sum over the mirrored signal */
    const double z_n_1 = pow(z, (double)(n - 1));
    double z_i = z;
    double c0 = c[0] + z_n_1 * c[n - 1];
    for (long i = 1; i < n - 1; i++) {
        c0 += z_i * (c[i] + z_n_1 * c[n - 1 - i]);
        z_i *= z;
    }
    c[0] = c0 / (1.0 - z_n_1 * z_n_1);
    for (long i = 1; i < n; i++)
        c[i] += z * c[i - 1];
    c[n - 1] = (z * c[n - 2] + c[n - 1]) * z / (z * z - 1.0);
    for (long i = n - 2; i >= 0; i--)
        c[i] = z * (c[i + 1] - c[i]);
}

static void cubic_weights(double x, double wts[4])
{
    x -= floor(x);
    const double y = x, z = 1.0 - x;
    wts[1] = (y * y * (y - 2.0) * 3.0 + 4.0) / 6.0;
    wts[2] = (z * z * (z - 2.0) * 3.0 + 4.0) / 6.0;
    wts[0] = z * z * z / 6.0;
    wts[3] = 1.0 - wts[0] - wts[1] - wts[2];
}

/* Interpolation taps of one axis: output index o of `out` samples over an
 * input of `in` samples (padded by XRAI_SPLINE_PAD), pixel-centre aligned. */
static void axis_taps(int in, int out, int *start, double *wts)
{
    const double zoom = (double)in / (double)out;
    for (int o = 0; o < out; o++) {
        double cc = ((double)o + 0.5) * zoom - 0.5 + (double)XRAI_SPLINE_PAD;
        start[o] = (int)floor(cc) - 1;
        cubic_weights(cc, wts + 4 * o);
    }
}

/* Rescale to [lo, hi], then resize into ws->seg_img (see the file comment). */
static int prepare_segmentation_image(xrai_ws_t *ws, const float *image)
{
    const int h = ws->h, w = ws->w, c = ws->c;
    const size_t total = ws->n * (size_t)c;
    float mn = image[0], mx = image[0];
    for (size_t i = 0; i < total; i++) {
        if (!isfinite(image[i])) {
            SC_ERROR("xrai: image value %zu is not finite", i);
            return SC_ERR_ARG;
        }
        if (image[i] < mn)
            mn = image[i];
        if (image[i] > mx)
            mx = image[i];
    }
    if (!(mx > mn))
        return SC_ERR_UNDEFINED; /* a constant image has no value range to segment */
    const float span = (float)(ws->p.range_hi - ws->p.range_lo), lo = (float)ws->p.range_lo;
    const float den = mx - mn;
    float bmin = INFINITY, bmax = -INFINITY;
    for (size_t i = 0; i < total; i++) {
        float v = (image[i] - mn) / den;
        v = v * span;
        v = v + lo;
        ws->norm[i] = v;
        if (v < bmin)
            bmin = v;
        if (v > bmax)
            bmax = v;
    }
    if (!ws->resize) {
        for (size_t i = 0; i < total; i++)
            ws->seg_img[i] = (double)ws->norm[i];
        return 0;
    }
    const int sh = ws->sh, sw = ws->sw;
    /* anti-aliasing when shrinking any axis; sigma (factor - 1) / 2 per axis */
    if (sh < h || sw < w) {
        double sy = ((double)h / sh - 1.0) / 2.0, sx = ((double)w / sw - 1.0) / 2.0;
        if (sy > 1e-15) {
            int rc = blur_axis(ws, ws->norm, 0, sy);
            if (rc < 0)
                return rc;
        }
        if (sx > 1e-15) {
            int rc = blur_axis(ws, ws->norm, 1, sx);
            if (rc < 0)
                return rc;
        }
    }
    /* zero-padded planes, prefiltered along rows then columns */
    const int P = XRAI_SPLINE_PAD;
    const int ph = h + 2 * P, pw = w + 2 * P;
    const size_t plane = (size_t)ph * pw;
    memset(ws->planes, 0, plane * (size_t)c * sizeof(double));
    for (int ch = 0; ch < c; ch++) {
        double *pl = ws->planes + (size_t)ch * plane;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                pl[(size_t)(y + P) * pw + (x + P)] = (double)ws->norm[((size_t)y * w + x) * c + ch];
        for (int x = 0; x < pw; x++) {
            for (int y = 0; y < ph; y++)
                ws->line[y] = pl[(size_t)y * pw + x];
            spline_prefilter_line(ws->line, ph);
            for (int y = 0; y < ph; y++)
                pl[(size_t)y * pw + x] = ws->line[y];
        }
        for (int y = 0; y < ph; y++)
            spline_prefilter_line(pl + (size_t)y * pw, pw);
    }
    /* a c-channel image is a 3-D array to the reference: the channel axis is
     * padded and prefiltered too; keep the coefficients interpolation reads
     * (padded channel indices P-1 .. P+c+1) */
    const int cc_n = c + 3;
    if (c > 1) {
        const int lc = c + 2 * P;
        for (size_t q = 0; q < plane; q++) {
            for (int i = 0; i < lc; i++)
                ws->line[i] = 0.0;
            for (int ch = 0; ch < c; ch++)
                ws->line[P + ch] = ws->planes[(size_t)ch * plane + q];
            spline_prefilter_line(ws->line, lc);
            for (int k = 0; k < cc_n; k++)
                ws->chan_coef[q * cc_n + k] = ws->line[P - 1 + k];
        }
    }
    axis_taps(h, sh, ws->row_start, ws->row_w);
    axis_taps(w, sw, ws->col_start, ws->col_w);
    double wc[4];
    cubic_weights(0.0, wc); /* the channel axis is sampled at its knots */
    for (int oy = 0; oy < sh; oy++) {
        const double *wy = ws->row_w + 4 * oy;
        const int y0 = ws->row_start[oy];
        for (int ox = 0; ox < sw; ox++) {
            const double *wx = ws->col_w + 4 * ox;
            const int x0 = ws->col_start[ox];
            for (int ch = 0; ch < c; ch++) {
                double t = 0.0;
                if (c == 1) {
                    for (int i = 0; i < 4; i++)
                        for (int j = 0; j < 4; j++) {
                            double coeff = ws->planes[(size_t)(y0 + i) * pw + (x0 + j)];
                            coeff *= wy[i];
                            coeff *= wx[j];
                            t += coeff;
                        }
                } else {
                    for (int i = 0; i < 4; i++)
                        for (int j = 0; j < 4; j++) {
                            const double *cf =
                                ws->chan_coef + ((size_t)(y0 + i) * pw + (x0 + j)) * cc_n + ch;
                            for (int k = 0; k < 4; k++) {
                                double coeff = cf[k];
                                coeff *= wy[i];
                                coeff *= wx[j];
                                coeff *= wc[k];
                                t += coeff;
                            }
                        }
                }
                float v = (float)t;
                v = v < bmin ? bmin : v;
                v = v > bmax ? bmax : v;
                ws->seg_img[((size_t)oy * sw + ox) * c + ch] = (double)v;
            }
        }
    }
    return 0;
}

/* Nearest-neighbour resize of a label image (order 0, pixel-centre aligned). */
static void labels_to_original(const xrai_ws_t *ws, const int32_t *src, int32_t *dst)
{
    const int h = ws->h, w = ws->w, sh = ws->sh, sw = ws->sw;
    const double zy = (double)sh / h, zx = (double)sw / w;
    for (int y = 0; y < h; y++) {
        double cy = ((double)y + 0.5) * zy - 0.5;
        int iy = (int)floor(cy + 0.5);
        iy = iy < 0 ? 0 : (iy >= sh ? sh - 1 : iy);
        for (int x = 0; x < w; x++) {
            double cx = ((double)x + 0.5) * zx - 0.5;
            int ix = (int)floor(cx + 0.5);
            ix = ix < 0 ? 0 : (ix >= sw ? sw - 1 : ix);
            dst[(size_t)y * w + x] = src[(size_t)iy * sw + ix];
        }
    }
}

/* ------------------------------------------------------------------ masks */

/* mask -> pixels from pixel -> masks (counting sort; pixels ascending). */
static void build_forward_index(xrai_ws_t *ws)
{
    const int nm = ws->n_masks;
    memset(ws->mask_count, 0, (size_t)nm * sizeof(int32_t));
    const size_t total = ws->inv_start[ws->n];
    for (size_t k = 0; k < total; k++)
        ws->mask_count[ws->inv[k]]++;
    uint32_t sum = 0;
    for (int m = 0; m < nm; m++) {
        ws->fwd_start[m] = sum;
        sum += (uint32_t)ws->mask_count[m];
    }
    ws->fwd_start[nm] = sum;
    /* fill, using mcnt as the running cursor */
    for (int m = 0; m < nm; m++)
        ws->mcnt[m] = 0;
    for (size_t p = 0; p < ws->n; p++)
        for (uint32_t k = ws->inv_start[p]; k < ws->inv_start[p + 1]; k++) {
            int32_t m = ws->inv[k];
            ws->fwd[ws->fwd_start[m] + (uint32_t)ws->mcnt[m]++] = (int32_t)p;
        }
}

int xrai_compute_masks(xrai_ws_t *ws, const float *image)
{
    int rc = 0;
    CHECK(ws && image, SC_ERR_ARG, "xrai_compute_masks: NULL argument");
    ws->masks_ready = 0;
    rc = prepare_segmentation_image(ws, image);
    if (rc < 0)
        goto cleanup;

    const int ns = ws->p.n_scales, h = ws->h, w = ws->w;
    int32_t base[XRAI_MAX_SCALES + 1];
    base[0] = 0;
    /* smoothing, edge weights and their order depend on the image only: once for
     * every scale (the segments are those of felz_segment per scale) */
    CHECK_RC(felz_prepare(ws->felz, ws->seg_img, ws->p.sigma));
    for (int s = 0; s < ns; s++) {
        felz_params_t fp = {.scale = ws->p.scales[s], .sigma = ws->p.sigma,
                            .min_size = ws->p.min_size};
        int n_seg = felz_segment_prepared(ws->felz, &fp, ws->seg_labels);
        CHECK_RC(n_seg);
        int32_t *lab = ws->labels + (size_t)s * ws->n;
        if (ws->resize)
            labels_to_original(ws, ws->seg_labels, lab);
        else
            memcpy(lab, ws->seg_labels, ws->n * sizeof(int32_t));
        base[s + 1] = base[s] + n_seg;
        /* runs of equal labels along each row, so that the disk scan below
         * steps over a run at once (it meets the same labels in the same order) */
        int32_t *run = ws->run_end + (size_t)s * ws->n;
        for (int y = 0; y < h; y++) {
            const int32_t *row = lab + (size_t)y * w;
            int32_t *end = run + (size_t)y * w;
            end[w - 1] = w - 1;
            for (int x = w - 2; x >= 0; x--)
                end[x] = row[x] == row[x + 1] ? end[x + 1] : x;
        }
    }
    CHECK_RC(ensure_mask_cap(ws, base[ns]));
    ws->n_masks = base[ns];

    /* memberships: pixel p is in the dilated mask of label l at scale s when a
     * pixel of label l lies within the disk of radius r around p */
    const int r = ws->p.dilation_radius;
    int half[2 * 32 + 1];
    for (int dy = -r; dy <= r; dy++) {
        int hw = 0;
        while ((hw + 1) * (hw + 1) + dy * dy <= r * r)
            hw++;
        half[dy + r] = hw;
    }
    const size_t disk_area = (size_t)(2 * r + 1) * (size_t)(2 * r + 1);
    size_t len = 0;
    int32_t found[(2 * 32 + 1) * (2 * 32 + 1)]; /* distinct labels within one disk */
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            const size_t p = (size_t)y * w + x;
            ws->inv_start[p] = (uint32_t)len;
            CHECK_RC(ensure_member_cap(ws, len + (size_t)ns * disk_area));
            for (int s = 0; s < ns; s++) {
                const int32_t *lab = ws->labels + (size_t)s * ws->n;
                const int32_t *run = ws->run_end + (size_t)s * ws->n;
                const int32_t own = lab[p];
                int n_found = 0;
                found[n_found++] = own;
                for (int dy = -r; dy <= r; dy++) {
                    const int yy = y + dy;
                    if (yy < 0 || yy >= h)
                        continue;
                    const int hw = half[dy + r];
                    const int xa = x - hw < 0 ? 0 : x - hw, xb = x + hw >= w ? w - 1 : x + hw;
                    const int32_t *row = lab + (size_t)yy * w, *end = run + (size_t)yy * w;
                    for (int xx = xa; xx <= xb; xx = end[xx] + 1) { /* one run at a time */
                        const int32_t l = row[xx];
                        if (l == own)
                            continue;
                        int k = 1;
                        while (k < n_found && found[k] != l)
                            k++;
                        if (k == n_found)
                            found[n_found++] = l;
                    }
                }
                for (int k = 0; k < n_found; k++)
                    ws->inv[len++] = base[s] + found[k];
            }
        }
    }
    ws->inv_start[ws->n] = (uint32_t)len;
    build_forward_index(ws);
    ws->masks_ready = 1;
cleanup:
    return rc;
}

int xrai_set_masks(xrai_ws_t *ws, int n_masks, const uint8_t *masks)
{
    int rc = 0;
    CHECK(ws && masks && n_masks >= 0, SC_ERR_ARG, "xrai_set_masks: invalid argument");
    ws->masks_ready = 0;
    CHECK_RC(ensure_mask_cap(ws, n_masks));
    size_t total = 0;
    for (size_t i = 0; i < (size_t)n_masks * ws->n; i++)
        total += masks[i] != 0;
    CHECK_RC(ensure_member_cap(ws, total));
    size_t len = 0;
    for (size_t p = 0; p < ws->n; p++) {
        ws->inv_start[p] = (uint32_t)len;
        for (int m = 0; m < n_masks; m++)
            if (masks[(size_t)m * ws->n + p])
                ws->inv[len++] = m;
    }
    ws->inv_start[ws->n] = (uint32_t)len;
    ws->n_masks = n_masks;
    build_forward_index(ws);
    ws->masks_ready = 1;
cleanup:
    return rc;
}

/* ----------------------------------------------------------------- greedy */

/* Stable merge sort of step indices by gain, highest first (equal gains keep
 * the order they were taken in, as Python's sorted does). `tmp` has n slots. */
static void sort_steps_by_gain(int32_t *idx, int32_t *tmp, int n, const double *gain)
{
    for (int width = 1; width < n; width *= 2) {
        for (int lo = 0; lo < n; lo += 2 * width) {
            int mid = lo + width < n ? lo + width : n;
            int hi = lo + 2 * width < n ? lo + 2 * width : n;
            int i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = gain[idx[j]] > gain[idx[i]] ? idx[j++] : idx[i++];
            while (i < mid)
                tmp[k++] = idx[i++];
            while (j < hi)
                tmp[k++] = idx[j++];
        }
        memcpy(idx, tmp, (size_t)n * sizeof(int32_t));
    }
}

int xrai_rank(xrai_ws_t *ws, const float *attr, float *out, int32_t *ranks, int *n_steps)
{
    int rc = 0;
    CHECK(ws && attr && out, SC_ERR_ARG, "xrai_rank: NULL argument");
    CHECK(ws->masks_ready, SC_ERR_ARG, "xrai_rank: no masks (call xrai_compute_masks first)");
    const size_t n = ws->n;
    for (size_t p = 0; p < n; p++)
        CHECK(isfinite(attr[p]), SC_ERR_ARG, "xrai_rank: attribution value %zu is not finite", p);

    const int nm = ws->n_masks;
    for (int m = 0; m < nm; m++) {
        double sum = 0.0;
        for (uint32_t k = ws->fwd_start[m]; k < ws->fwd_start[m + 1]; k++)
            sum += (double)attr[ws->fwd[k]];
        ws->msum[m] = sum;
        ws->mcnt[m] = ws->mask_count[m];
        ws->remaining[m] = m;
    }
    for (size_t p = 0; p < n; p++)
        ws->step_of_pixel[p] = -1;
    int n_rem = nm, steps = 0;
    size_t covered = 0;
    const int32_t min_diff = ws->p.min_pixel_diff;

    while ((double)covered / (double)n <= ws->p.area_threshold) {
        int best = -1;
        double best_gain = -INFINITY;
        int kept = 0;
        for (int i = 0; i < n_rem; i++) {
            const int32_t m = ws->remaining[i];
            if (ws->mcnt[m] < min_diff)
                continue; /* adds too few pixels: dropped for good */
            ws->remaining[kept++] = m;
            const double gain = ws->msum[m] / (double)ws->mcnt[m];
            if (gain > best_gain) {
                best_gain = gain;
                best = m;
            }
        }
        n_rem = kept;
        if (n_rem == 0 || best < 0)
            break;
        /* the gain from a fresh sum over the new pixels (the running sums
         * only rank the candidates) */
        double sum = 0.0;
        int32_t cnt = 0;
        for (uint32_t k = ws->fwd_start[best]; k < ws->fwd_start[best + 1]; k++) {
            const int32_t p = ws->fwd[k];
            if (ws->step_of_pixel[p] < 0) {
                sum += (double)attr[p];
                cnt++;
            }
        }
        const double gain = sum / (double)cnt;
        for (uint32_t k = ws->fwd_start[best]; k < ws->fwd_start[best + 1]; k++) {
            const int32_t p = ws->fwd[k];
            if (ws->step_of_pixel[p] >= 0)
                continue;
            ws->step_of_pixel[p] = steps;
            out[p] = (float)gain;
            covered++;
            const double a = (double)attr[p];
            for (uint32_t j = ws->inv_start[p]; j < ws->inv_start[p + 1]; j++) {
                const int32_t m2 = ws->inv[j];
                ws->mcnt[m2]--;
                ws->msum[m2] -= a;
            }
        }
        ws->step_gain[steps++] = gain;
    }

    /* never-covered pixels share their mean attribution */
    double rest_sum = 0.0;
    size_t rest_n = 0;
    for (size_t p = 0; p < n; p++)
        if (ws->step_of_pixel[p] < 0) {
            rest_sum += (double)attr[p];
            rest_n++;
        }
    if (rest_n) {
        const float rest = (float)(rest_sum / (double)rest_n);
        for (size_t p = 0; p < n; p++)
            if (ws->step_of_pixel[p] < 0)
                out[p] = rest;
    }
    if (ranks) {
        for (int s = 0; s < steps; s++)
            ws->step_sorted[s] = s;
        sort_steps_by_gain(ws->step_sorted, ws->step_rank, steps, ws->step_gain);
        for (int k = 0; k < steps; k++)
            ws->step_rank[ws->step_sorted[k]] = k + 1;
        for (size_t p = 0; p < n; p++)
            ranks[p] = ws->step_of_pixel[p] < 0 ? steps + 1 : ws->step_rank[ws->step_of_pixel[p]];
    }
    if (n_steps)
        *n_steps = steps;
cleanup:
    return rc;
}

int xrai_map(xrai_ws_t *ws, const float *image, const float *attr, float *out, int32_t *ranks)
{
    int rc = xrai_compute_masks(ws, image);
    if (rc < 0)
        return rc;
    return xrai_rank(ws, attr, out, ranks, NULL);
}

const double *xrai_segmentation_image(const xrai_ws_t *ws, int *seg_h, int *seg_w)
{
    if (seg_h)
        *seg_h = ws->sh;
    if (seg_w)
        *seg_w = ws->sw;
    return ws->seg_img;
}

const int32_t *xrai_scale_labels(const xrai_ws_t *ws, int s)
{
    if (s < 0 || s >= ws->p.n_scales)
        return NULL;
    return ws->labels + (size_t)s * ws->n;
}

int xrai_n_masks(const xrai_ws_t *ws) { return ws->masks_ready ? ws->n_masks : 0; }

const int32_t *xrai_mask_pixels(const xrai_ws_t *ws, int m, int *count)
{
    if (!ws->masks_ready || m < 0 || m >= ws->n_masks) {
        if (count)
            *count = 0;
        return NULL;
    }
    if (count)
        *count = ws->mask_count[m];
    return ws->fwd + ws->fwd_start[m];
}
