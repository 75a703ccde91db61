/*
 * felzenszwalb.c - Felzenszwalb-Huttenlocher graph segmentation matching
 * scikit-image 0.19 (see felzenszwalb.h for the steps).
 *
 * Owned by workers/saliency. The arithmetic follows the reference where it
 * decides a merge: smoothed values in double, edge weights sqrt of the
 * channel sum of squares (summed in channel order), the merge threshold
 * Int(C) + k/|C| rounded to single precision as the reference stores it, and
 * components joined toward the smallest pixel index. Edges of equal weight
 * are visited in their original order (a stable sort); scikit-image uses
 * numpy's unstable quicksort there, so on images with exactly tied non-zero
 * weights the two may merge in another order (zero-weight ties never matter:
 * every zero-weight edge merges).
 */
#include "felzenszwalb.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "sc.h"

struct felz_ws {
    int h, w, c;
    size_t n;        /* pixels */
    size_t n_edges;  /* 8-connected edges, each pixel pair once */
    double *smooth;  /* [h,w,c] smoothed image */
    double *line_in; /* one line with its border extension */
    double *line_out;
    int line_cap;    /* capacity of line_in (values) */
    double *cost;    /* [n_edges] edge weights, reference order */
    uint64_t *key, *key_tmp;   /* sort keys (bit patterns of non-negative doubles) */
    uint32_t *order, *order_tmp;
    int32_t *ends;   /* [2*n_edges] the two pixels of each edge, in sorted order */
    size_t *digit_count; /* [65536] radix histogram */
    int32_t *forest; /* union-find parent; a root is the smallest index of its tree */
    int32_t *size;   /* component size at its root */
    double *cint;    /* internal difference Int(C) at the root */
    int prepared;    /* smooth, cost and the sorted order hold an image (felz_prepare) */
    double prepared_sigma;
};

felz_params_t felz_params_default(void)
{
    felz_params_t p = {.scale = 1.0, .sigma = 0.8, .min_size = 20};
    return p;
}

/* numpy's pairwise summation (add.reduce on a contiguous float64 array), so
 * the kernel normalization is bit-identical to scipy's. */
static double np_pairwise_sum(const double *a, size_t n)
{
    if (n < 8) {
        double res = 0.0;
        for (size_t i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int j = 0; j < 8; j++)
            r[j] = a[j];
        size_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++)
                r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return np_pairwise_sum(a, n2) + np_pairwise_sum(a + n2, n - n2);
}

int felz_gaussian_kernel(double sigma, double truncate, double *weights, int max_len)
{
    if (!(sigma > 0.0) || !(truncate > 0.0))
        return SC_ERR_ARG;
    int r = (int)(truncate * sigma + 0.5);
    if (2 * r + 1 > max_len)
        return SC_ERR_ARG;
    double coef = -0.5 / (sigma * sigma);
    for (int i = -r; i <= r; i++)
        weights[i + r] = exp(coef * (double)(i * i));
    double sum = np_pairwise_sum(weights, (size_t)(2 * r + 1));
    for (int i = 0; i < 2 * r + 1; i++)
        weights[i] /= sum;
    return r;
}

void felz_correlate_symmetric(const double *ext, int len, const double *weights, int r,
                              double *out)
{
    const double *fw = weights + r; /* centre tap */
    for (int i = 0; i < len; i++) {
        const double *x = ext + r + i;
        double acc = x[0] * fw[0];
        for (int j = -r; j < 0; j++)
            acc += (x[j] + x[-j]) * fw[j];
        out[i] = acc;
    }
}

/* scipy.ndimage 'reflect' (half-sample symmetric: d c b a | a b c d | d c b a). */
static int reflect_index(int i, int len)
{
    if (len == 1)
        return 0;
    int period = 2 * len;
    i %= period;
    if (i < 0)
        i += period;
    return i < len ? i : period - 1 - i;
}

size_t felz_ws_bytes(int h, int w, int c)
{
    const size_t n = (size_t)h * w, line_cap = (size_t)(h > w ? h : w) + 2 * 16;
    const size_t n_edges = (size_t)h * (size_t)(w - 1) + (size_t)(h - 1) * (size_t)w +
                           2 * (size_t)(h - 1) * (size_t)(w - 1);
    /* smooth, the two lines; per edge cost, key, key_tmp, order, order_tmp; the radix
     * counts; per pixel forest, size, cint (as felz_ws_create below) */
    return n * c * sizeof(double) + 2 * line_cap * sizeof(double) +
           n_edges * (sizeof(double) + 2 * sizeof(uint64_t) + 2 * sizeof(uint32_t)) +
           65536 * sizeof(size_t) + n * (2 * sizeof(int32_t) + sizeof(double));
}

int felz_ws_create(felz_ws_t **out, int h, int w, int c)
{
    int rc = 0;
    felz_ws_t *ws = NULL;
    CHECK(out != NULL, SC_ERR_ARG, "felz_ws_create: NULL output pointer");
    *out = NULL;
    CHECK(h >= 1 && w >= 1 && c >= 1, SC_ERR_ARG,
          "felz_ws_create: invalid image shape %d x %d x %d", h, w, c);
    CHECK((size_t)h * (size_t)w < (size_t)INT32_MAX / 4, SC_ERR_ARG,
          "felz_ws_create: image of %d x %d pixels is too large", h, w);
    ws = sc_calloc(1, sizeof *ws);
    CHECK_ALLOC(ws);
    ws->h = h;
    ws->w = w;
    ws->c = c;
    ws->n = (size_t)h * (size_t)w;
    ws->n_edges = (size_t)h * (size_t)(w - 1) + (size_t)(h - 1) * (size_t)w +
                  2 * (size_t)(h - 1) * (size_t)(w - 1);
    ws->smooth = sc_calloc(ws->n * (size_t)c, sizeof(double));
    CHECK_ALLOC(ws->smooth);
    ws->line_cap = (h > w ? h : w) + 2 * 16; /* room for sigma up to ~3.9 */
    ws->line_in = sc_calloc((size_t)ws->line_cap, sizeof(double));
    CHECK_ALLOC(ws->line_in);
    ws->line_out = sc_calloc((size_t)ws->line_cap, sizeof(double));
    CHECK_ALLOC(ws->line_out);
    ws->cost = sc_calloc(ws->n_edges, sizeof(double));
    CHECK_ALLOC(ws->cost);
    ws->key = sc_calloc(ws->n_edges, sizeof(uint64_t));
    CHECK_ALLOC(ws->key);
    ws->key_tmp = sc_calloc(ws->n_edges, sizeof(uint64_t));
    CHECK_ALLOC(ws->key_tmp);
    ws->order = sc_calloc(ws->n_edges, sizeof(uint32_t));
    CHECK_ALLOC(ws->order);
    ws->order_tmp = sc_calloc(ws->n_edges, sizeof(uint32_t));
    CHECK_ALLOC(ws->order_tmp);
    ws->ends = sc_calloc(2 * ws->n_edges, sizeof(int32_t));
    CHECK_ALLOC(ws->ends);
    ws->digit_count = sc_calloc(65536, sizeof(size_t));
    CHECK_ALLOC(ws->digit_count);
    ws->forest = sc_calloc(ws->n, sizeof(int32_t));
    CHECK_ALLOC(ws->forest);
    ws->size = sc_calloc(ws->n, sizeof(int32_t));
    CHECK_ALLOC(ws->size);
    ws->cint = sc_calloc(ws->n, sizeof(double));
    CHECK_ALLOC(ws->cint);
    *out = ws;
    ws = NULL;
cleanup:
    felz_ws_destroy(ws);
    return rc;
}

void felz_ws_destroy(felz_ws_t *ws)
{
    if (!ws)
        return;
    sc_free(ws->smooth);
    sc_free(ws->line_in);
    sc_free(ws->line_out);
    sc_free(ws->cost);
    sc_free(ws->key);
    sc_free(ws->key_tmp);
    sc_free(ws->order);
    sc_free(ws->order_tmp);
    sc_free(ws->ends);
    sc_free(ws->digit_count);
    sc_free(ws->forest);
    sc_free(ws->size);
    sc_free(ws->cint);
    sc_free(ws);
}

/* Smooth every channel along rows (axis 0) then columns (axis 1), as
 * scipy.ndimage.gaussian_filter(image, [sigma, sigma, 0], mode='reflect'). */
static int smooth_image(felz_ws_t *ws, const double *image, double sigma)
{
    const int h = ws->h, w = ws->w, c = ws->c;
    const size_t total = ws->n * (size_t)c;
    if (!(sigma > 1e-15)) {
        memcpy(ws->smooth, image, total * sizeof(double));
        return 0;
    }
    double weights[257];
    int r = felz_gaussian_kernel(sigma, 4.0, weights, 257);
    if (r < 0) {
        SC_ERROR("felzenszwalb: sigma %g is out of range (at most 32)", sigma);
        return SC_ERR_ARG;
    }
    int need = (h > w ? h : w) + 2 * r;
    if (need > ws->line_cap) {
        double *in = sc_calloc((size_t)need, sizeof(double));
        double *out = sc_calloc((size_t)need, sizeof(double));
        if (!in || !out) {
            sc_free(in);
            sc_free(out);
            SC_ERROR("felzenszwalb: out of memory for a line buffer of %d values", need);
            return SC_ERR_NOMEM;
        }
        sc_free(ws->line_in);
        sc_free(ws->line_out);
        ws->line_in = in;
        ws->line_out = out;
        ws->line_cap = need;
    }
    double *ext = ws->line_in, *res = ws->line_out;
    /* axis 0: each column of each channel */
    for (int x = 0; x < w; x++) {
        for (int ch = 0; ch < c; ch++) {
            for (int i = -r; i < h + r; i++) {
                int y = reflect_index(i, h);
                ext[i + r] = image[((size_t)y * w + x) * c + ch];
            }
            felz_correlate_symmetric(ext, h, weights, r, res);
            for (int y = 0; y < h; y++)
                ws->smooth[((size_t)y * w + x) * c + ch] = res[y];
        }
    }
    /* axis 1: each row, in place */
    for (int y = 0; y < h; y++) {
        double *row = ws->smooth + (size_t)y * w * c;
        for (int ch = 0; ch < c; ch++) {
            for (int i = -r; i < w + r; i++)
                ext[i + r] = row[(size_t)reflect_index(i, w) * c + ch];
            felz_correlate_symmetric(ext, w, weights, r, res);
            for (int x = 0; x < w; x++)
                row[(size_t)x * c + ch] = res[x];
        }
    }
    return 0;
}

/* Distance between the colours of pixels p and q, as the reference computes
 * it: sqrt of sum over channels (in order) of d*d, d = value[p] - value[q]. */
static inline double colour_dist(const double *img, int c, size_t p, size_t q)
{
    const double *a = img + p * (size_t)c, *b = img + q * (size_t)c;
    double d = a[0] - b[0];
    double s = d * d;
    for (int ch = 1; ch < c; ch++) {
        d = a[ch] - b[ch];
        s += d * d;
    }
    return sqrt(s);
}

/* Edge e's two pixels, in the reference's edge order: right, down,
 * down-right, up-right, each in raster order of its first pixel. */
static inline void edge_pixels(const felz_ws_t *ws, size_t e, int32_t *a, int32_t *b)
{
    const size_t w = (size_t)ws->w, h = (size_t)ws->h;
    const size_t n_right = h * (w - 1), n_down = (h - 1) * w, n_diag = (h - 1) * (w - 1);
    size_t r, c;
    if (e < n_right) {
        r = e / (w - 1);
        c = e % (w - 1);
        *a = (int32_t)(r * w + c + 1);
        *b = (int32_t)(r * w + c);
        return;
    }
    e -= n_right;
    if (e < n_down) {
        *a = (int32_t)(e + w);
        *b = (int32_t)e;
        return;
    }
    e -= n_down;
    if (e < n_diag) {
        r = e / (w - 1);
        c = e % (w - 1);
        *a = (int32_t)((r + 1) * w + c + 1);
        *b = (int32_t)(r * w + c);
        return;
    }
    e -= n_diag;
    r = e / (w - 1);
    c = e % (w - 1);
    *a = (int32_t)(r * w + c + 1);
    *b = (int32_t)((r + 1) * w + c);
}

static void compute_costs(felz_ws_t *ws)
{
    const size_t w = (size_t)ws->w, h = (size_t)ws->h;
    const int c = ws->c;
    const double *img = ws->smooth;
    size_t e = 0;
    for (size_t y = 0; y < h; y++) /* right */
        for (size_t x = 0; x + 1 < w; x++)
            ws->cost[e++] = colour_dist(img, c, y * w + x + 1, y * w + x);
    for (size_t y = 0; y + 1 < h; y++) /* down */
        for (size_t x = 0; x < w; x++)
            ws->cost[e++] = colour_dist(img, c, (y + 1) * w + x, y * w + x);
    for (size_t y = 0; y + 1 < h; y++) /* down-right */
        for (size_t x = 0; x + 1 < w; x++)
            ws->cost[e++] = colour_dist(img, c, (y + 1) * w + x + 1, y * w + x);
    for (size_t y = 0; y + 1 < h; y++) /* up-right: (y, x+1) and (y+1, x) */
        for (size_t x = 0; x + 1 < w; x++)
            ws->cost[e++] = colour_dist(img, c, y * w + x + 1, (y + 1) * w + x);
}

/* Stable LSD radix sort of the edges by weight (16-bit digits). Non-negative
 * doubles order like their bit patterns. */
static void sort_edges(felz_ws_t *ws)
{
    const size_t m = ws->n_edges;
    uint64_t *key = ws->key, *key_tmp = ws->key_tmp;
    uint32_t *ord = ws->order, *ord_tmp = ws->order_tmp;
    for (size_t e = 0; e < m; e++) {
        memcpy(&key[e], &ws->cost[e], sizeof(uint64_t));
        ord[e] = (uint32_t)e;
    }
    size_t *count = ws->digit_count;
    for (int pass = 0; pass < 4; pass++) {
        const int shift = 16 * pass;
        memset(count, 0, 65536 * sizeof(size_t));
        for (size_t e = 0; e < m; e++)
            count[(key[e] >> shift) & 0xFFFF]++;
        if (m == 0 || count[(key[0] >> shift) & 0xFFFF] == m)
            continue; /* every key has this digit: the pass would not move anything */
        size_t sum = 0;
        for (int d = 0; d < 65536; d++) {
            size_t t = count[d];
            count[d] = sum;
            sum += t;
        }
        for (size_t e = 0; e < m; e++) {
            size_t dst = count[(key[e] >> shift) & 0xFFFF]++;
            key_tmp[dst] = key[e];
            ord_tmp[dst] = ord[e];
        }
        uint64_t *tk = key;
        key = key_tmp;
        key_tmp = tk;
        uint32_t *to = ord;
        ord = ord_tmp;
        ord_tmp = to;
    }
    ws->key = key;
    ws->key_tmp = key_tmp;
    ws->order = ord;
    ws->order_tmp = ord_tmp;
}

/* Root of n's tree, halving the path on the way (every node then points to
 * its grandparent; roots and therefore the segments do not change). */
static inline int32_t find_root(int32_t *forest, int32_t n)
{
    while (forest[n] < n) {
        forest[n] = forest[forest[n]];
        n = forest[n];
    }
    return n;
}

/* Point every node on n's path to `root`. */
static inline void set_root(int32_t *forest, int32_t n, int32_t root)
{
    while (forest[n] < n) {
        int32_t j = forest[n];
        forest[n] = root;
        n = j;
    }
    forest[n] = root;
}

/* Join the trees of n and m under the smaller of their roots. */
static inline void join_trees(int32_t *forest, int32_t n, int32_t m)
{
    if (n == m)
        return;
    int32_t root = find_root(forest, n), root_m = find_root(forest, m);
    if (root > root_m)
        root = root_m;
    set_root(forest, n, root);
    set_root(forest, m, root);
}

int felz_prepare(felz_ws_t *ws, const double *image, double sigma)
{
    int rc = 0;
    CHECK(ws && image, SC_ERR_ARG, "felz_prepare: NULL argument");
    CHECK(sigma >= 0.0, SC_ERR_ARG, "felz_prepare: invalid sigma=%g", sigma);
    ws->prepared = 0;
    for (size_t i = 0; i < ws->n * (size_t)ws->c; i++)
        CHECK(isfinite(image[i]), SC_ERR_ARG,
              "felz_segment: image value %zu is not finite", i);
    CHECK_RC(smooth_image(ws, image, sigma));
    compute_costs(ws);
    sort_edges(ws);
    /* the pixels of each edge in sorted order, for every scale's two passes
     * (ws->key now holds the sorted weights' bit patterns) */
    for (size_t i = 0; i < ws->n_edges; i++)
        edge_pixels(ws, ws->order[i], &ws->ends[2 * i], &ws->ends[2 * i + 1]);
    ws->prepared = 1;
    ws->prepared_sigma = sigma;
cleanup:
    return rc;
}

int felz_segment(felz_ws_t *ws, const double *image, const felz_params_t *params,
                 int32_t *labels)
{
    int rc = 0;
    CHECK(ws && image && params && labels, SC_ERR_ARG, "felz_segment: NULL argument");
    CHECK(isfinite(params->scale) && params->sigma >= 0.0 && params->min_size >= 0,
          SC_ERR_ARG, "felz_segment: invalid parameters scale=%g sigma=%g min_size=%d",
          params->scale, params->sigma, params->min_size);
    CHECK_RC(felz_prepare(ws, image, params->sigma));
    rc = felz_segment_prepared(ws, params, labels);
cleanup:
    return rc;
}

int felz_segment_prepared(felz_ws_t *ws, const felz_params_t *params, int32_t *labels)
{
    int rc = 0;
    CHECK(ws && params && labels, SC_ERR_ARG, "felz_segment_prepared: NULL argument");
    CHECK(ws->prepared, SC_ERR_ARG, "felz_segment_prepared: no image (call felz_prepare first)");
    CHECK(isfinite(params->scale) && params->sigma == ws->prepared_sigma && params->min_size >= 0,
          SC_ERR_ARG,
          "felz_segment_prepared: invalid parameters scale=%g sigma=%g (prepared with %g) "
          "min_size=%d",
          params->scale, params->sigma, ws->prepared_sigma, params->min_size);

    const size_t n = ws->n, m = ws->n_edges;
    int32_t *forest = ws->forest, *size = ws->size;
    double *cint = ws->cint;
    for (size_t p = 0; p < n; p++) {
        forest[p] = (int32_t)p;
        size[p] = 1;
        cint[p] = 0.0;
    }
    const double k = params->scale / 255.0; /* the reference rescales scale */

    const int32_t *ends = ws->ends;
    for (size_t i = 0; i < m; i++) {
        int32_t s0 = find_root(forest, ends[2 * i]), s1 = find_root(forest, ends[2 * i + 1]);
        if (s0 == s1)
            continue;
        /* the reference holds these thresholds in single precision */
        float inner0 = (float)(cint[s0] + k / (double)size[s0]);
        float inner1 = (float)(cint[s1] + k / (double)size[s1]);
        float thr = inner1 < inner0 ? inner1 : inner0;
        double cost; /* edge i's weight: the sorted key is its bit pattern */
        memcpy(&cost, &ws->key[i], sizeof cost);
        if (cost < (double)thr) {
            join_trees(forest, s0, s1);
            int32_t root = find_root(forest, s0);
            size[root] = size[s0] + size[s1];
            cint[root] = cost;
        }
    }

    /* merge components smaller than min_size, cheapest edges first */
    for (size_t i = 0; i < m; i++) {
        int32_t s0 = find_root(forest, ends[2 * i]), s1 = find_root(forest, ends[2 * i + 1]);
        if (s0 == s1)
            continue;
        if (size[s0] < params->min_size || size[s1] < params->min_size) {
            join_trees(forest, s0, s1);
            int32_t root = find_root(forest, s0);
            size[root] = size[s0] + size[s1];
        }
    }

    /* roots are the smallest index of their segment: number them in raster order */
    int32_t n_seg = 0;
    for (size_t p = 0; p < n; p++) {
        int32_t root = find_root(forest, (int32_t)p);
        labels[p] = (root == (int32_t)p) ? n_seg++ : labels[root];
    }
    rc = n_seg;
cleanup:
    return rc;
}
