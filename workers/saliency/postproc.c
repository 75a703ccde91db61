/*
 * postproc.c - P1, P2 and the Guided Grad-CAM combination (docs/methods.md
 * section 4, post-processing); the percentile by selection.
 *
 * Owned by workers/saliency. The percentile follows numpy.percentile's
 * default ('linear'): virtual index v = (n-1)*q/100, lower and upper order
 * statistics a = x_(floor v), b = x_(floor v + 1), t = v - floor v, and
 * a + (b-a)*t, computed as b - (b-a)*(1-t) when t >= 0.5 as numpy does. The
 * order statistics come from a three-way-partition quickselect (ties cost
 * nothing extra), falling back to a full sort of what is left if the
 * partitions stay unbalanced, so the worst case is O(n log n).
 */
#include "postproc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sc.h"

struct postproc_ws {
    int h, w;
    size_t n;
    double *sum;     /* [n] channel sum of |m| */
    double *scratch; /* [n] selection buffer */
    double *p1a;     /* [n] P1 of the first map (Guided Grad-CAM) */
    double *p1b;     /* [n] P1 of the second map */
};

int postproc_ws_create(postproc_ws_t **out, int h, int w)
{
    int rc = 0;
    postproc_ws_t *ws = NULL;
    CHECK(out != NULL, SC_ERR_ARG, "postproc_ws_create: NULL output pointer");
    *out = NULL;
    CHECK(h >= 1 && w >= 1, SC_ERR_ARG, "postproc_ws_create: invalid map size %d x %d", h, w);
    ws = sc_calloc(1, sizeof *ws);
    CHECK_ALLOC(ws);
    ws->h = h;
    ws->w = w;
    ws->n = (size_t)h * (size_t)w;
    ws->sum = sc_calloc(ws->n, sizeof(double));
    CHECK_ALLOC(ws->sum);
    ws->scratch = sc_calloc(ws->n, sizeof(double));
    CHECK_ALLOC(ws->scratch);
    ws->p1a = sc_calloc(ws->n, sizeof(double));
    CHECK_ALLOC(ws->p1a);
    ws->p1b = sc_calloc(ws->n, sizeof(double));
    CHECK_ALLOC(ws->p1b);
    *out = ws;
    ws = NULL;
cleanup:
    postproc_ws_destroy(ws);
    return rc;
}

void postproc_ws_destroy(postproc_ws_t *ws)
{
    if (!ws)
        return;
    sc_free(ws->sum);
    sc_free(ws->scratch);
    sc_free(ws->p1a);
    sc_free(ws->p1b);
    sc_free(ws);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline void swap_d(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

static inline double median3(double a, double b, double c)
{
    if (a > b)
        swap_d(&a, &b);
    if (b > c)
        swap_d(&b, &c);
    return a > b ? a : b;
}

/* Rearranges a[0..n-1] (no NaN) so that a[k] holds the k-th smallest value,
 * with nothing larger before it and nothing smaller after it. */
static void select_kth(double *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n; /* the k-th lies in [lo, hi) */
    int budget = 8;
    for (size_t m = n; m > 1; m >>= 1)
        budget += 2;
    while (hi - lo > 16) {
        if (budget-- == 0) {
            qsort(a + lo, hi - lo, sizeof(double), cmp_double);
            return;
        }
        const double pivot = median3(a[lo], a[lo + (hi - lo) / 2], a[hi - 1]);
        /* [lo, lt) < pivot, [lt, i) == pivot, [gt, hi) > pivot */
        size_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            if (a[i] < pivot)
                swap_d(&a[lt++], &a[i++]);
            else if (a[i] > pivot)
                swap_d(&a[i], &a[--gt]);
            else
                i++;
        }
        if (k < lt)
            hi = lt;
        else if (k >= gt)
            lo = gt;
        else
            return; /* a[k] equals the pivot, which sits in its final place */
    }
    for (size_t i = lo + 1; i < hi; i++) { /* insertion sort of the small rest */
        double v = a[i];
        size_t j = i;
        while (j > lo && a[j - 1] > v) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

int postproc_percentile(postproc_ws_t *ws, const double *x, size_t n, double q, double *result)
{
    int rc = 0;
    CHECK(ws && x && result, SC_ERR_ARG, "postproc_percentile: NULL argument");
    CHECK(n >= 1 && n <= ws->n, SC_ERR_ARG,
          "postproc_percentile: %zu values, the workspace holds 1..%zu", n, ws->n);
    CHECK(q >= 0.0 && q <= 100.0, SC_ERR_ARG, "postproc_percentile: q = %g not in [0, 100]", q);
    double *a = ws->scratch;
    for (size_t i = 0; i < n; i++) {
        CHECK(!isnan(x[i]), SC_ERR_ARG, "postproc_percentile: value %zu is NaN", i);
        a[i] = x[i];
    }
    const double v = (double)(n - 1) * (q / 100.0);
    if (v >= (double)(n - 1)) {
        double mx = a[0];
        for (size_t i = 1; i < n; i++)
            mx = a[i] > mx ? a[i] : mx;
        *result = mx;
        goto cleanup;
    }
    const size_t k = (size_t)floor(v);
    select_kth(a, n, k);
    const double lower = a[k];
    double upper = a[k + 1];
    for (size_t i = k + 2; i < n; i++)
        upper = a[i] < upper ? a[i] : upper;
    const double t = v - (double)k;
    const double diff = upper - lower;
    *result = t >= 0.5 ? upper - diff * (1.0 - t) : lower + diff * t;
cleanup:
    return rc;
}

static void fill_nan(float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = NAN;
}

/* P1 into dst (double). Returns 0 or SC_ERR_UNDEFINED. */
static int p1_double(postproc_ws_t *ws, const float *map, int c, postproc_layout_t layout,
                     double *dst)
{
    const size_t n = ws->n;
    double *s = ws->sum;
    if (layout == POSTPROC_CHW) {
        for (size_t i = 0; i < n; i++)
            s[i] = fabs((double)map[i]);
        for (int ch = 1; ch < c; ch++) {
            const float *plane = map + (size_t)ch * n;
            for (size_t i = 0; i < n; i++)
                s[i] += fabs((double)plane[i]);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            const float *px = map + i * (size_t)c;
            double acc = fabs((double)px[0]);
            for (int ch = 1; ch < c; ch++)
                acc += fabs((double)px[ch]);
            s[i] = acc;
        }
    }
    double mn = s[0];
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(s[i])) {
            SC_WARN("saliency map value at pixel %zu is not finite; the map is undefined", i);
            return SC_ERR_UNDEFINED;
        }
        mn = s[i] < mn ? s[i] : mn;
    }
    double p99 = 0.0;
    int rc = postproc_percentile(ws, s, n, 99.0, &p99);
    if (rc < 0)
        return rc;
    if (!(p99 > mn))
        return SC_ERR_UNDEFINED; /* constant, or at least 99% of the map at its minimum */
    const double range = p99 - mn;
    for (size_t i = 0; i < n; i++) {
        double v = (s[i] - mn) / range;
        dst[i] = v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
    }
    return 0;
}

/* Min-max of src (double) into out. Returns 0 or SC_ERR_UNDEFINED. */
static int p2_double(const double *src, size_t n, float *out)
{
    double mn = src[0], mx = src[0];
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(src[i]))
            return SC_ERR_UNDEFINED;
        mn = src[i] < mn ? src[i] : mn;
        mx = src[i] > mx ? src[i] : mx;
    }
    if (!(mx > mn))
        return SC_ERR_UNDEFINED;
    const double range = mx - mn;
    for (size_t i = 0; i < n; i++)
        out[i] = (float)((src[i] - mn) / range);
    return 0;
}

int postproc_p1(postproc_ws_t *ws, const float *map, int c, postproc_layout_t layout, float *out)
{
    int rc = 0;
    CHECK(ws && map && out, SC_ERR_ARG, "postproc_p1: NULL argument");
    CHECK(c >= 1, SC_ERR_ARG, "postproc_p1: %d channels", c);
    CHECK(layout == POSTPROC_CHW || layout == POSTPROC_HWC, SC_ERR_ARG,
          "postproc_p1: unknown layout %d", (int)layout);
    rc = p1_double(ws, map, c, layout, ws->p1a);
    if (rc < 0) {
        fill_nan(out, ws->n);
        goto cleanup;
    }
    for (size_t i = 0; i < ws->n; i++)
        out[i] = (float)ws->p1a[i];
cleanup:
    return rc;
}

int postproc_p2(postproc_ws_t *ws, const float *map, float *out)
{
    int rc = 0;
    CHECK(ws && map && out, SC_ERR_ARG, "postproc_p2: NULL argument");
    for (size_t i = 0; i < ws->n; i++)
        ws->p1a[i] = (double)map[i];
    rc = p2_double(ws->p1a, ws->n, out);
    if (rc < 0)
        fill_nan(out, ws->n);
cleanup:
    return rc;
}

int postproc_ggcam(postproc_ws_t *ws, const float *gbp, int c_gbp, const float *gcam,
                   int c_gcam, postproc_layout_t layout, float *out)
{
    int rc = 0;
    CHECK(ws && gbp && gcam && out, SC_ERR_ARG, "postproc_ggcam: NULL argument");
    CHECK(c_gbp >= 1 && c_gcam >= 1, SC_ERR_ARG, "postproc_ggcam: %d and %d channels", c_gbp,
          c_gcam);
    CHECK(layout == POSTPROC_CHW || layout == POSTPROC_HWC, SC_ERR_ARG,
          "postproc_ggcam: unknown layout %d", (int)layout);
    rc = p1_double(ws, gbp, c_gbp, layout, ws->p1a);
    if (rc == 0)
        rc = p1_double(ws, gcam, c_gcam, layout, ws->p1b);
    if (rc == 0) {
        for (size_t i = 0; i < ws->n; i++)
            ws->p1a[i] *= ws->p1b[i];
        rc = p2_double(ws->p1a, ws->n, out);
    }
    if (rc < 0)
        fill_nan(out, ws->n);
cleanup:
    return rc;
}
