/*
 * test_felzenszwalb.c - the C Felzenszwalb segmentation against
 * scikit-image's skimage.segmentation.felzenszwalb (tests/ref/felzenszwalb_ref.py).
 *
 * Agreement measures, per test image and parameter set:
 *   - segment count within 10% of scikit-image's;
 *   - neighbour-relation agreement: over every pair of 4-neighbours (right and
 *     down), the fraction whose same/different-segment relation is the same in
 *     both segmentations; required > 0.9 (the task's bound; in practice 1.0);
 *   - the fraction of pixels with the identical label (labels are numbered the
 *     same way, by first pixel in raster order), printed for the record.
 * Run from the repository root (the reference script path is relative).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rng.h"
#include "saliency/felzenszwalb.h"
#include "sc.h"
#include "testhelp.h"

static char tmp_dir[512];

static int make_tmp_dir(void)
{
    return th_scratch_make(tmp_dir, sizeof tmp_dir, "tmp_felz");
}

static void remove_tmp_dir(void)
{
    th_scratch_remove(tmp_dir);
}

/* Runs the reference on `image`; fills ref_labels; returns its segment count or -1. */
static int run_reference(const double *image, int h, int w, int c, const felz_params_t *p,
                         int32_t *ref_labels)
{
    if (make_tmp_dir() != 0)
        return -1;
    char in_path[600], out_path[600], cmd[2048];
    snprintf(in_path, sizeof in_path, "%s/image.f64", tmp_dir);
    snprintf(out_path, sizeof out_path, "%s/labels.i32", tmp_dir);
    FILE *f = fopen(in_path, "wb");
    if (!f)
        return -1;
    size_t n = (size_t)h * w * c;
    int ok = fwrite(image, sizeof(double), n, f) == n;
    fclose(f);
    if (!ok)
        return -1;
    snprintf(cmd, sizeof cmd, "%s tests/ref/felzenszwalb_ref.py %s %d %d %d %.17g %.17g %d %s",
             th_python(), in_path, h, w, c, p->scale, p->sigma, p->min_size, out_path);
    FILE *pipe = popen(cmd, "r");
    if (!pipe)
        return -1;
    int n_seg = -1;
    if (fscanf(pipe, "%d", &n_seg) != 1)
        n_seg = -1;
    if (pclose(pipe) != 0)
        return -1;
    f = fopen(out_path, "rb");
    if (!f)
        return -1;
    ok = fread(ref_labels, sizeof(int32_t), (size_t)h * w, f) == (size_t)h * w;
    fclose(f);
    return ok ? n_seg : -1;
}

/* Fraction of 4-neighbour pairs whose same/different relation agrees. */
static double relation_agreement(const int32_t *a, const int32_t *b, int h, int w)
{
    size_t agree = 0, total = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t p = (size_t)y * w + x;
            if (x + 1 < w) {
                agree += (a[p] == a[p + 1]) == (b[p] == b[p + 1]);
                total++;
            }
            if (y + 1 < h) {
                agree += (a[p] == a[p + w]) == (b[p] == b[p + w]);
                total++;
            }
        }
    return total ? (double)agree / (double)total : 1.0;
}

/* A smooth radiograph-like image: vertical gradient, two darker "lungs", a
 * bright disc, a rectangle, and Gaussian noise. */
static void phantom_image(double *img, int h, int w, double noise, uint32_t seed)
{
    rng_stream_t s;
    rng_stream_init(&s, rng_key(seed, "test_felzenszwalb"), 1, 0, 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double v = 0.35 + 0.25 * y / h;
            double lx = (x - 0.3 * w) / (0.17 * w), ly = (y - 0.5 * h) / (0.33 * h);
            double rx = (x - 0.7 * w) / (0.17 * w);
            if (lx * lx + ly * ly < 1.0 || rx * rx + ly * ly < 1.0)
                v -= 0.2;
            double dx = x - 0.55 * w, dy = y - 0.62 * h;
            if (dx * dx + dy * dy < (0.12 * w) * (0.12 * w))
                v += 0.3;
            if (x > 0.1 * w && x < 0.25 * w && y > 0.05 * h && y < 0.15 * h)
                v += 0.15;
            v += noise * rng_stream_normal(&s);
            img[(size_t)y * w + x] = v;
        }
}

static void random_image(double *img, int h, int w, int c, uint32_t seed)
{
    rng_stream_t s;
    rng_stream_init(&s, rng_key(seed, "test_felzenszwalb"), 2, 0, 0);
    for (size_t i = 0; i < (size_t)h * w * c; i++)
        img[i] = rng_stream_uniform(&s);
}

/* Coloured rectangles and discs on a colour gradient, with noise. */
static void colour_shapes_image(double *img, int h, int w, uint32_t seed)
{
    rng_stream_t s;
    rng_stream_init(&s, rng_key(seed, "test_felzenszwalb"), 3, 0, 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double rgb[3] = {0.2 + 0.5 * x / w, 0.3, 0.8 - 0.5 * y / h};
            double dx = x - 0.35 * w, dy = y - 0.4 * h;
            if (dx * dx + dy * dy < (0.2 * w) * (0.2 * w)) {
                rgb[0] = 0.9;
                rgb[1] = 0.1;
            }
            if (x > 0.55 * w && x < 0.9 * w && y > 0.5 * h && y < 0.8 * h) {
                rgb[1] = 0.8;
                rgb[2] = 0.2;
            }
            for (int ch = 0; ch < 3; ch++)
                img[((size_t)y * w + x) * 3 + ch] = rgb[ch] + 0.04 * rng_stream_normal(&s);
        }
}

/* Segments `img` with C and the reference and checks the agreement. */
static void compare_case(const char *name, const double *img, int h, int w, int c,
                         felz_params_t p)
{
    int32_t *lab = malloc(sizeof(int32_t) * h * w);
    int32_t *ref = malloc(sizeof(int32_t) * h * w);
    felz_ws_t *ws = NULL;
    TH_CHECK(lab && ref, "out of memory");
    if (!lab || !ref)
        goto done;
    TH_EQ_INT(felz_ws_create(&ws, h, w, c), 0);
    if (!ws)
        goto done;
    double t0 = sc_now();
    int n = felz_segment(ws, img, &p, lab);
    double t_c = sc_now() - t0;
    int n_ref = run_reference(img, h, w, c, &p, ref);
    TH_CHECK(n_ref > 0, "%s: the reference script failed", name);
    if (n_ref <= 0)
        goto done;
    size_t same = 0;
    for (size_t i = 0; i < (size_t)h * w; i++)
        same += lab[i] == ref[i];
    double rel = relation_agreement(lab, ref, h, w);
    printf("    %-26s %3dx%-3d c=%d scale=%-5g sigma=%-4g min=%-3d: segments C %d, skimage %d; "
           "neighbour agreement %.5f; identical labels %.5f; %.1f ms\n",
           name, h, w, c, p.scale, p.sigma, p.min_size, n, n_ref, rel,
           (double)same / ((double)h * w), 1e3 * t_c);
    TH_CHECK(n > 0 && abs(n - n_ref) <= 0.10 * n_ref, "%s: %d segments, skimage %d", name, n,
             n_ref);
    TH_CHECK(rel > 0.9, "%s: neighbour agreement %.4f <= 0.9", name, rel);
done:
    felz_ws_destroy(ws);
    free(lab);
    free(ref);
}

static int have_skimage(void) { return th_python_has("numpy, skimage.segmentation"); }

static void test_phantom_gray(void)
{
    if (!have_skimage())
        TH_SKIP("%s has no numpy/skimage (apt-get install python3-skimage)", th_python());
    const int h = 96, w = 112;
    double *img = malloc(sizeof(double) * h * w);
    phantom_image(img, h, w, 0.03, 7);
    compare_case("phantom s=100", img, h, w, 1, (felz_params_t){100, 0.8, 20});
    compare_case("phantom s=500 min=150", img, h, w, 1, (felz_params_t){500, 0.8, 150});
    compare_case("phantom s=20 sigma=0.5", img, h, w, 1, (felz_params_t){20, 0.5, 10});
    /* no noise: many edges of exactly equal weight, where the reference's
     * unstable sort may visit them in another order */
    phantom_image(img, h, w, 0.0, 7);
    compare_case("phantom noise-free s=100", img, h, w, 1, (felz_params_t){100, 0.8, 20});
    free(img);
}

static void test_random_image(void)
{
    if (!have_skimage())
        TH_SKIP("%s has no numpy/skimage (apt-get install python3-skimage)", th_python());
    const int h = 48, w = 56;
    double *img = malloc(sizeof(double) * h * w * 3);
    random_image(img, h, w, 3, 11);
    compare_case("random rgb s=50", img, h, w, 3, (felz_params_t){50, 0.8, 20});
    compare_case("random rgb s=40 sigma=0", img, h, w, 3, (felz_params_t){40, 0.0, 3});
    random_image(img, h, w, 1, 12);
    compare_case("random gray s=150", img, h, w, 1, (felz_params_t){150, 0.8, 30});
    free(img);
}

static void test_colour_shapes(void)
{
    if (!have_skimage())
        TH_SKIP("%s has no numpy/skimage (apt-get install python3-skimage)", th_python());
    const int h = 80, w = 72;
    double *img = malloc(sizeof(double) * h * w * 3);
    colour_shapes_image(img, h, w, 5);
    compare_case("colour shapes s=250", img, h, w, 3, (felz_params_t){250, 0.8, 50});
    compare_case("colour shapes s=1200", img, h, w, 3, (felz_params_t){1200, 1.5, 150});
    free(img);
}

/* Hand-checkable cases that need no reference library. */
static void test_known_answers(void)
{
    /* two flat halves: with no smoothing the only non-zero edges cross the
     * border, so the result is exactly the two halves */
    const int h = 6, w = 8;
    double img[6 * 8];
    int32_t lab[6 * 8];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            img[y * w + x] = x < 3 ? 0.0 : 1.0;
    felz_ws_t *ws = NULL;
    TH_EQ_INT(felz_ws_create(&ws, h, w, 1), 0);
    if (!ws)
        return;
    felz_params_t p = {.scale = 1.0, .sigma = 0.0, .min_size = 1};
    TH_EQ_INT(felz_segment(ws, img, &p, lab), 2);
    int wrong = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            wrong += lab[y * w + x] != (x < 3 ? 0 : 1);
    TH_EQ_INT(wrong, 0);
    /* a huge scale merges the halves (threshold k/|C| exceeds the step of 1) */
    p.scale = 255.0 * 50;
    TH_EQ_INT(felz_segment(ws, img, &p, lab), 1);
    /* min_size larger than the left half (18 px) merges it into the right */
    p.scale = 1.0;
    p.min_size = 19;
    TH_EQ_INT(felz_segment(ws, img, &p, lab), 1);
    /* constant image: one segment */
    for (int i = 0; i < h * w; i++)
        img[i] = 0.25;
    p.min_size = 1;
    p.sigma = 0.8;
    TH_EQ_INT(felz_segment(ws, img, &p, lab), 1);
    /* errors are values */
    img[5] = NAN;
    TH_EQ_INT(felz_segment(ws, img, &p, lab), SC_ERR_ARG);
    felz_ws_destroy(ws);
    felz_ws_t *bad = NULL;
    TH_EQ_INT(felz_ws_create(&bad, 0, 5, 1), SC_ERR_ARG);
    TH_CHECK(bad == NULL, "no workspace on error");
}

/* felz_prepare once + felz_segment_prepared per scale (XRAI's way) gives the
 * labels felz_segment gives for each scale alone, in any order of scales. */
static void test_prepared_scales(void)
{
    const int h = 64, w = 72;
    const double scales[6] = {1200, 50, 250, 100, 500, 150};
    double *img = malloc(sizeof(double) * h * w * 3);
    int32_t *lab = malloc(sizeof(int32_t) * h * w), *one = malloc(sizeof(int32_t) * h * w);
    felz_ws_t *ws = NULL, *ws1 = NULL;
    TH_CHECK(img && lab && one, "out of memory");
    if (!img || !lab || !one)
        goto done;
    colour_shapes_image(img, h, w, 9);
    TH_EQ_INT(felz_ws_create(&ws, h, w, 3), 0);
    TH_EQ_INT(felz_ws_create(&ws1, h, w, 3), 0);
    if (!ws || !ws1)
        goto done;
    felz_params_t p = {.scale = 100, .sigma = 0.8, .min_size = 40};
    TH_EQ_INT(felz_segment_prepared(ws, &p, lab), SC_ERR_ARG); /* nothing prepared yet */
    TH_EQ_INT(felz_prepare(ws, img, 0.8), 0);
    int distinct = 0, prev = -1;
    for (int k = 0; k < 6; k++) {
        p.scale = scales[k];
        int n = felz_segment_prepared(ws, &p, lab);
        int n1 = felz_segment(ws1, img, &p, one);
        TH_EQ_INT(n, n1);
        TH_CHECK(n > 0 && !memcmp(lab, one, sizeof(int32_t) * h * w),
                 "scale %g: prepared labels differ from felz_segment's", scales[k]);
        distinct += n != prev;
        prev = n;
    }
    TH_CHECK(distinct >= 3, "the scales should give different segment counts (%d)", distinct);
    p.sigma = 0.5; /* another sigma needs another felz_prepare */
    TH_EQ_INT(felz_segment_prepared(ws, &p, lab), SC_ERR_ARG);
    img[7] = NAN;
    TH_EQ_INT(felz_prepare(ws, img, 0.8), SC_ERR_ARG);
    p.sigma = 0.8;
    TH_EQ_INT(felz_segment_prepared(ws, &p, lab), SC_ERR_ARG); /* the failed image is not kept */
done:
    felz_ws_destroy(ws);
    felz_ws_destroy(ws1);
    free(img);
    free(lab);
    free(one);
}

/* The smoothing kernel equals scipy's (0.8 -> radius 3, symmetric, sums to 1). */
static void test_gaussian_kernel(void)
{
    double wts[16];
    int r = felz_gaussian_kernel(0.8, 4.0, wts, 16);
    TH_EQ_INT(r, 3);
    /* exp(-x^2/1.28) / sum, values from scipy.ndimage._gaussian_kernel1d(0.8, 0, 3) */
    TH_NEAR(wts[3], 0.49867645200647487, 1e-15, 0);
    TH_NEAR(wts[2], 0.22831071645846548, 1e-15, 0);
    TH_NEAR(wts[1], 0.021910314171364808, 1e-15, 0);
    TH_NEAR(wts[0], 0.00044074336693235674, 1e-15, 0);
    TH_CHECK(wts[0] == wts[6] && wts[1] == wts[5] && wts[2] == wts[4], "kernel not symmetric");
    TH_EQ_INT(felz_gaussian_kernel(0.0, 4.0, wts, 16), SC_ERR_ARG);
    TH_EQ_INT(felz_gaussian_kernel(5.0, 4.0, wts, 16), SC_ERR_ARG);
}

int main(void)
{
    TH_RUN(test_gaussian_kernel);
    TH_RUN(test_known_answers);
    TH_RUN(test_prepared_scales);
    TH_RUN(test_phantom_gray);
    TH_RUN(test_random_image);
    TH_RUN(test_colour_shapes);
    remove_tmp_dir();
    return th_report();
}
