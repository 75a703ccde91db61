/*
 * test_xrai.c - XRAI regions: the greedy ranking on hand-made masks with known
 * answers, the dilation against its definition, the whole pipeline's coverage
 * and completeness, and the pipeline against a scikit-image based reference
 * (tests/ref/xrai_ref.py). Run from the repository root.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rng.h"
#include "saliency/xrai.h"
#include "sc.h"
#include "testhelp.h"

/* ------------------------------------------------------------ test data */

/* A radiograph-like image [h,w,c]: gradient, two dark lungs, a bright disc,
 * a small opacity, noise; values mapped to [-1, 1] and copied to c channels. */
static void phantom(float *img, int h, int w, int c, uint32_t seed)
{
    rng_stream_t s;
    rng_stream_init(&s, rng_key(seed, "test_xrai"), 1, 0, 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double v = 0.4 + 0.2 * y / h;
            double lx = (x - 0.3 * w) / (0.17 * w), ly = (y - 0.5 * h) / (0.33 * h);
            double rx = (x - 0.7 * w) / (0.17 * w);
            if (lx * lx + ly * ly < 1.0 || rx * rx + ly * ly < 1.0)
                v -= 0.25;
            double dx = x - 0.55 * w, dy = y - 0.65 * h;
            if (dx * dx + dy * dy < (0.1 * w) * (0.1 * w))
                v += 0.3;
            double ox = x - 0.72 * w, oy = y - 0.4 * h;
            if (ox * ox + oy * oy < (0.06 * w) * (0.06 * w))
                v += 0.12;
            v += 0.02 * rng_stream_normal(&s);
            for (int ch = 0; ch < c; ch++)
                img[((size_t)y * w + x) * c + ch] = (float)(2.0 * v - 1.0);
        }
}

/* An attribution with a bump on the opacity plus noise. */
static void attribution(float *attr, int h, int w, uint32_t seed)
{
    rng_stream_t s;
    rng_stream_init(&s, rng_key(seed, "test_xrai"), 2, 0, 0);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double ox = (x - 0.72 * w) / (0.08 * w), oy = (y - 0.4 * h) / (0.08 * h);
            attr[(size_t)y * w + x] =
                (float)(exp(-0.5 * (ox * ox + oy * oy)) + 0.1 * rng_stream_normal(&s));
        }
}

/* ----------------------------------------------------- hand-made greedy */

enum { HM_H = 20, HM_W = 20, HM_N = HM_H * HM_W };

/* Quadrants: top-left 4, top-right 1, bottom-left 2, bottom-right 0 except a
 * 5x5 block of 8 in its corner. */
static void hand_attr(float *attr)
{
    for (int y = 0; y < HM_H; y++)
        for (int x = 0; x < HM_W; x++) {
            float v = y < 10 ? (x < 10 ? 4.0f : 1.0f) : (x < 10 ? 2.0f : 0.0f);
            if (y >= 15 && x >= 15)
                v = 8.0f;
            attr[y * HM_W + x] = v;
        }
}

/* Masks by name: 'T' top half, 'Q' top-left quadrant, 'L' left half, 'S' the
 * 5x5 block, 'B' bottom-right quadrant. */
static void hand_mask(uint8_t *m, char which)
{
    for (int y = 0; y < HM_H; y++)
        for (int x = 0; x < HM_W; x++) {
            int in = 0;
            switch (which) {
            case 'T': in = y < 10; break;
            case 'Q': in = y < 10 && x < 10; break;
            case 'L': in = x < 10; break;
            case 'S': in = y >= 15 && x >= 15; break;
            case 'B': in = y >= 10 && x >= 10; break;
            }
            m[y * HM_W + x] = (uint8_t)in;
        }
}

static float quadrant_value(const float *a, int top, int left)
{
    return a[(top ? 2 : 12) * HM_W + (left ? 2 : 12)];
}

static int32_t quadrant_rank(const int32_t *r, int top, int left)
{
    return r[(top ? 2 : 12) * HM_W + (left ? 2 : 12)];
}

/*
 * Masks T, Q, L, S, B with min_pixel_diff 30. Step 1: gains T 2.5, Q 4, L 3,
 * B 2 (S adds 25 < 30 pixels: dropped) -> Q. Step 2: T's new pixels average 1,
 * L's 2, B's 2: the tie goes to the earlier mask, L. Step 3: B (2) over T (1).
 * Step 4: T (1). Map: TL 4, BL 2, BR 2 (the 8-block too), TR 1; ranks 1..4.
 */
static void test_greedy_known_order(void)
{
    float attr[HM_N], out[HM_N];
    int32_t ranks[HM_N];
    uint8_t masks[5 * HM_N];
    const char order[5] = {'T', 'Q', 'L', 'S', 'B'};
    for (int i = 0; i < 5; i++)
        hand_mask(masks + i * HM_N, order[i]);
    hand_attr(attr);
    xrai_params_t p = xrai_params_default();
    p.min_pixel_diff = 30;
    xrai_ws_t *ws = NULL;
    TH_EQ_INT(xrai_ws_create(&ws, HM_H, HM_W, 1, &p), 0);
    if (!ws)
        return;
    TH_EQ_INT(xrai_set_masks(ws, 5, masks), 0);
    int steps = -1;
    TH_EQ_INT(xrai_rank(ws, attr, out, ranks, &steps), 0);
    TH_EQ_INT(steps, 4);
    TH_NEAR(quadrant_value(out, 1, 1), 4.0, 0, 1e-7);
    TH_NEAR(quadrant_value(out, 0, 1), 2.0, 0, 1e-7);
    TH_NEAR(quadrant_value(out, 0, 0), 2.0, 0, 1e-7);
    TH_NEAR(out[19 * HM_W + 19], 2.0, 0, 1e-7); /* inside the 8-block */
    TH_NEAR(quadrant_value(out, 1, 0), 1.0, 0, 1e-7);
    TH_EQ_INT(quadrant_rank(ranks, 1, 1), 1);
    TH_EQ_INT(quadrant_rank(ranks, 0, 1), 2);
    TH_EQ_INT(quadrant_rank(ranks, 0, 0), 3);
    TH_EQ_INT(quadrant_rank(ranks, 1, 0), 4);
    /* every value constant over its quadrant; the map keeps the total */
    double sum_out = 0, sum_attr = 0;
    int uneven = 0;
    for (int y = 0; y < HM_H; y++)
        for (int x = 0; x < HM_W; x++) {
            sum_out += out[y * HM_W + x];
            sum_attr += attr[y * HM_W + x];
            uneven += out[y * HM_W + x] != quadrant_value(out, y < 10, x < 10);
        }
    TH_EQ_INT(uneven, 0);
    TH_NEAR(sum_out, sum_attr, 1e-12, 0);

    /* the same masks in another order: B before L now wins the tie */
    const char order2[5] = {'T', 'Q', 'B', 'S', 'L'};
    for (int i = 0; i < 5; i++)
        hand_mask(masks + i * HM_N, order2[i]);
    TH_EQ_INT(xrai_set_masks(ws, 5, masks), 0);
    TH_EQ_INT(xrai_rank(ws, attr, out, ranks, &steps), 0);
    TH_EQ_INT(quadrant_rank(ranks, 0, 0), 2);
    TH_EQ_INT(quadrant_rank(ranks, 0, 1), 3);

    /* min_pixel_diff 20 lets the 8-block in first: it keeps its own value 8
     * and the rest of the bottom-right quadrant averages 0 */
    xrai_ws_destroy(ws);
    ws = NULL;
    p.min_pixel_diff = 20;
    TH_EQ_INT(xrai_ws_create(&ws, HM_H, HM_W, 1, &p), 0);
    if (!ws)
        return;
    TH_EQ_INT(xrai_set_masks(ws, 5, masks), 0);
    TH_EQ_INT(xrai_rank(ws, attr, out, ranks, &steps), 0);
    TH_NEAR(out[19 * HM_W + 19], 8.0, 0, 1e-7);
    TH_EQ_INT(ranks[19 * HM_W + 19], 1);
    TH_NEAR(quadrant_value(out, 0, 0), 0.0, 0, 1e-7);
    xrai_ws_destroy(ws);
}

/* Pixels no mask reaches, and the area threshold: the rest shares its mean. */
static void test_greedy_uncovered_rest(void)
{
    float attr[HM_N], out[HM_N];
    int32_t ranks[HM_N];
    uint8_t masks[3 * HM_N];
    hand_attr(attr);
    hand_mask(masks, 'Q');
    hand_mask(masks + HM_N, 'S');
    xrai_params_t p = xrai_params_default();
    p.min_pixel_diff = 30;
    xrai_ws_t *ws = NULL;
    TH_EQ_INT(xrai_ws_create(&ws, HM_H, HM_W, 1, &p), 0);
    if (!ws)
        return;
    TH_EQ_INT(xrai_set_masks(ws, 2, masks), 0);
    int steps = -1;
    TH_EQ_INT(xrai_rank(ws, attr, out, ranks, &steps), 0);
    TH_EQ_INT(steps, 1);
    /* rest: 100 px of 1, 100 of 2, 75 of 0, 25 of 8 -> 500/300 */
    TH_NEAR(quadrant_value(out, 1, 1), 4.0, 0, 1e-7);
    TH_NEAR(quadrant_value(out, 1, 0), 500.0 / 300.0, 1e-6, 0);
    TH_NEAR(out[19 * HM_W + 19], 500.0 / 300.0, 1e-6, 0);
    TH_EQ_INT(quadrant_rank(ranks, 1, 1), 1);
    TH_EQ_INT(quadrant_rank(ranks, 0, 0), 2);
    xrai_ws_destroy(ws);
    ws = NULL;

    /* area_threshold 0.2: after Q (a quarter of the image) the loop stops even
     * though T and L could still add pixels */
    p.area_threshold = 0.2;
    TH_EQ_INT(xrai_ws_create(&ws, HM_H, HM_W, 1, &p), 0);
    if (!ws)
        return;
    hand_mask(masks, 'Q');
    hand_mask(masks + HM_N, 'T');
    hand_mask(masks + 2 * HM_N, 'L');
    TH_EQ_INT(xrai_set_masks(ws, 3, masks), 0);
    TH_EQ_INT(xrai_rank(ws, attr, out, ranks, &steps), 0);
    TH_EQ_INT(steps, 1);
    TH_NEAR(quadrant_value(out, 1, 0), 500.0 / 300.0, 1e-6, 0);
    /* errors are values */
    attr[7] = NAN;
    TH_EQ_INT(xrai_rank(ws, attr, out, ranks, &steps), SC_ERR_ARG);
    xrai_ws_destroy(ws);

    xrai_params_t bad = xrai_params_default();
    bad.min_pixel_diff = 0;
    TH_EQ_INT(xrai_params_check(&bad), SC_ERR_ARG);
    bad = xrai_params_default();
    bad.n_scales = 0;
    TH_EQ_INT(xrai_params_check(&bad), SC_ERR_ARG);
}

/* Each computed mask is exactly the disk dilation of its label region
 * (checked by brute force on a small image segmented at its own size). */
static void test_masks_are_dilated_labels(void)
{
    const int h = 40, w = 46, c = 1, r = 3;
    float img[40 * 46];
    phantom(img, h, w, c, 3);
    xrai_params_t p = xrai_params_default();
    p.resize_h = p.resize_w = 0;
    p.min_size = 20;
    p.n_scales = 2;
    p.scales[0] = 50;
    p.scales[1] = 300;
    p.dilation_radius = r;
    xrai_ws_t *ws = NULL;
    TH_EQ_INT(xrai_ws_create(&ws, h, w, c, &p), 0);
    if (!ws)
        return;
    TH_EQ_INT(xrai_compute_masks(ws, img), 0);
    int m = 0, wrong = 0, n_masks = xrai_n_masks(ws);
    uint8_t *in_mask = calloc((size_t)h * w, 1);
    for (int s = 0; s < p.n_scales; s++) {
        const int32_t *lab = xrai_scale_labels(ws, s);
        int n_lab = 0;
        for (int i = 0; i < h * w; i++)
            n_lab = lab[i] + 1 > n_lab ? lab[i] + 1 : n_lab;
        for (int l = 0; l < n_lab; l++, m++) {
            int count = 0;
            const int32_t *px = xrai_mask_pixels(ws, m, &count);
            memset(in_mask, 0, (size_t)h * w);
            for (int k = 0; k < count; k++)
                in_mask[px[k]] = 1;
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int expect = 0;
                    for (int dy = -r; dy <= r && !expect; dy++)
                        for (int dx = -r; dx <= r && !expect; dx++)
                            if (dx * dx + dy * dy <= r * r && y + dy >= 0 && y + dy < h &&
                                x + dx >= 0 && x + dx < w && lab[(y + dy) * w + x + dx] == l)
                                expect = 1;
                    wrong += expect != in_mask[y * w + x];
                }
        }
    }
    TH_EQ_INT(m, n_masks);
    TH_CHECK(n_masks > 2, "only %d masks", n_masks);
    TH_EQ_INT(wrong, 0);
    free(in_mask);
    xrai_ws_destroy(ws);
}

/* The whole method on a phantom: every pixel gets a finite value and a rank,
 * the map keeps the attribution's sum, values fall with rank. */
static void pipeline_case(int h, int w, int c, int report_time)
{
    float *img = malloc(sizeof(float) * h * w * c);
    float *attr = malloc(sizeof(float) * h * w);
    float *out = malloc(sizeof(float) * h * w);
    int32_t *ranks = malloc(sizeof(int32_t) * h * w);
    xrai_params_t p = xrai_params_default();
    xrai_ws_t *ws = NULL;
    phantom(img, h, w, c, 1);
    attribution(attr, h, w, 2);
    TH_EQ_INT(xrai_ws_create(&ws, h, w, c, &p), 0);
    if (!ws)
        goto done;
    double t0 = sc_now();
    TH_EQ_INT(xrai_compute_masks(ws, img), 0);
    double t1 = sc_now();
    int steps = 0;
    TH_EQ_INT(xrai_rank(ws, attr, out, ranks, &steps), 0);
    double t2 = sc_now();
    if (report_time)
        printf("    %dx%dx%d: %d masks, %d steps; segments+masks %.1f ms, greedy %.1f ms\n", h, w,
               c, xrai_n_masks(ws), steps, 1e3 * (t1 - t0), 1e3 * (t2 - t1));
    int bad = 0, max_rank = 0;
    double sum_out = 0, sum_attr = 0;
    for (int i = 0; i < h * w; i++) {
        bad += !isfinite(out[i]) || ranks[i] < 1;
        sum_out += out[i];
        sum_attr += attr[i];
        max_rank = ranks[i] > max_rank ? ranks[i] : max_rank;
    }
    TH_EQ_INT(bad, 0);
    TH_CHECK(steps > 10, "only %d greedy steps", steps);
    TH_CHECK(max_rank == steps || max_rank == steps + 1, "max rank %d, %d steps", max_rank, steps);
    TH_NEAR(sum_out, sum_attr, 1e-5, 1e-3);
    /* value by rank: one value per rank, non-increasing (the rest may differ) */
    double *val = malloc(sizeof(double) * (steps + 2));
    for (int k = 0; k < steps + 2; k++)
        val[k] = NAN;
    int mixed = 0;
    for (int i = 0; i < h * w; i++) {
        if (isnan(val[ranks[i]]))
            val[ranks[i]] = out[i];
        else
            mixed += val[ranks[i]] != out[i];
    }
    TH_EQ_INT(mixed, 0);
    int rising = 0;
    for (int k = 2; k <= steps; k++)
        rising += !isnan(val[k]) && !isnan(val[k - 1]) && val[k] > val[k - 1];
    TH_EQ_INT(rising, 0);
    /* the opacity under the attribution bump ranks among the first segments */
    int ox = (int)(0.72 * w), oy = (int)(0.4 * h);
    TH_CHECK(ranks[oy * w + ox] <= 3, "opacity centre has rank %d", ranks[oy * w + ox]);
    free(val);
    /* a constant image is undefined, not a crash */
    for (int i = 0; i < h * w * c; i++)
        img[i] = 0.5f;
    TH_EQ_INT(xrai_map(ws, img, attr, out, ranks), SC_ERR_UNDEFINED);
done:
    xrai_ws_destroy(ws);
    free(img);
    free(attr);
    free(out);
    free(ranks);
}

static void test_pipeline_covers_every_pixel(void)
{
    pipeline_case(320, 320, 3, 1); /* the paper's input size */
    pipeline_case(150, 180, 1, 1); /* gray, enlarged for segmentation */
}

/* ------------------------------------------------------------ reference */

static char tmp_dir[512];

static int make_tmp_dir(void)
{
    return th_scratch_make(tmp_dir, sizeof tmp_dir, "tmp_xrai");
}

static void remove_tmp_dir(void)
{
    th_scratch_remove(tmp_dir);
}

static int write_file(const char *name, const void *data, size_t bytes)
{
    return th_scratch_write(tmp_dir, name, data, bytes);
}

static int read_file(const char *name, void *data, size_t bytes)
{
    return th_scratch_read(tmp_dir, name, data, bytes);
}

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
    return (double)agree / (double)total;
}

static void reference_case(int h, int w, int c, uint32_t seed)
{
    const xrai_params_t p = xrai_params_default();
    const size_t n = (size_t)h * w;
    float *img = malloc(sizeof(float) * n * c);
    float *attr = malloc(sizeof(float) * n);
    float *out = malloc(sizeof(float) * n);
    int32_t *ranks = malloc(sizeof(int32_t) * n);
    double *small_ref = malloc(sizeof(double) * 224 * 224 * c);
    int32_t *labels_ref = malloc(sizeof(int32_t) * n * p.n_scales);
    double *out_ref = malloc(sizeof(double) * n);
    int32_t *ranks_ref = malloc(sizeof(int32_t) * n);
    xrai_ws_t *ws = NULL;
    phantom(img, h, w, c, seed);
    attribution(attr, h, w, seed + 1);
    TH_CHECK(make_tmp_dir() == 0, "cannot make a temporary directory under build/");
    if (!tmp_dir[0])
        goto done;
    TH_EQ_INT(write_file("image.f32", img, sizeof(float) * n * c), 0);
    TH_EQ_INT(write_file("attr.f32", attr, sizeof(float) * n), 0);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s tests/ref/xrai_ref.py %s/image.f32 %s/attr.f32 %d %d %d %s",
             th_python(), tmp_dir, tmp_dir, h, w, c, tmp_dir);
    FILE *pipe = popen(cmd, "r");
    int ref_masks = -1, ref_steps = -1;
    if (pipe) {
        if (fscanf(pipe, "%d %d", &ref_masks, &ref_steps) != 2)
            ref_masks = -1;
        if (pclose(pipe) != 0)
            ref_masks = -1;
    }
    TH_CHECK(ref_masks > 0, "reference script failed: %s", cmd);
    if (ref_masks <= 0)
        goto done;
    TH_EQ_INT(read_file("small.f64", small_ref, sizeof(double) * 224 * 224 * c), 0);
    TH_EQ_INT(read_file("labels.i32", labels_ref, sizeof(int32_t) * n * p.n_scales), 0);
    TH_EQ_INT(read_file("xrai.f64", out_ref, sizeof(double) * n), 0);
    TH_EQ_INT(read_file("ranks.i32", ranks_ref, sizeof(int32_t) * n), 0);

    TH_EQ_INT(xrai_ws_create(&ws, h, w, c, &p), 0);
    if (!ws)
        goto done;
    TH_EQ_INT(xrai_compute_masks(ws, img), 0);
    int steps = 0;
    TH_EQ_INT(xrai_rank(ws, attr, out, ranks, &steps), 0);

    /* 1. the resized image */
    int sh, sw;
    const double *small = xrai_segmentation_image(ws, &sh, &sw);
    double max_diff = 0;
    for (size_t i = 0; i < (size_t)sh * sw * c; i++) {
        double d = fabs(small[i] - small_ref[i]);
        max_diff = d > max_diff ? d : max_diff;
    }
    /* 2. label images per scale */
    double worst_rel = 1.0, worst_same = 1.0;
    for (int s = 0; s < p.n_scales; s++) {
        const int32_t *lab = xrai_scale_labels(ws, s), *ref = labels_ref + (size_t)s * n;
        size_t same = 0;
        for (size_t i = 0; i < n; i++)
            same += lab[i] == ref[i];
        double rel = relation_agreement(lab, ref, h, w);
        worst_rel = rel < worst_rel ? rel : worst_rel;
        worst_same = (double)same / n < worst_same ? (double)same / n : worst_same;
    }
    /* 3. the map and ranks */
    size_t close = 0, same_rank = 0;
    for (size_t i = 0; i < n; i++) {
        close += fabs(out[i] - out_ref[i]) <= 1e-6 * fabs(out_ref[i]) + 1e-7;
        same_rank += ranks[i] == ranks_ref[i];
    }
    printf("    %dx%dx%d: resized image max |diff| %.3g; labels: worst neighbour agreement "
           "%.5f, identical %.5f; masks C %d ref %d; steps C %d ref %d; map equal (1e-6) on "
           "%.5f, ranks equal on %.5f\n",
           h, w, c, max_diff, worst_rel, worst_same, xrai_n_masks(ws), ref_masks, steps,
           ref_steps, (double)close / n, (double)same_rank / n);
    TH_CHECK(max_diff <= 1e-6, "resized image differs by %g", max_diff);
    TH_CHECK(worst_rel > 0.99, "label neighbour agreement %.4f", worst_rel);
    TH_CHECK((double)close / n > 0.99, "XRAI map agrees on only %.4f of pixels",
             (double)close / n);
    TH_CHECK(abs(steps - ref_steps) <= ref_steps / 10, "%d steps, reference %d", steps, ref_steps);
done:
    xrai_ws_destroy(ws);
    free(img), free(attr), free(out), free(ranks);
    free(small_ref), free(labels_ref), free(out_ref), free(ranks_ref);
}

static void test_pipeline_vs_reference(void)
{
    if (!th_python_has("numpy, scipy.sparse, skimage.segmentation, skimage.morphology"))
        TH_SKIP("%s lacks numpy/scipy/skimage (apt-get install python3-skimage)", th_python());
    reference_case(256, 240, 3, 10); /* shrunk to 224: anti-aliasing path */
    reference_case(150, 180, 1, 20); /* gray, enlarged */
}

int main(void)
{
    TH_RUN(test_greedy_known_order);
    TH_RUN(test_greedy_uncovered_rest);
    TH_RUN(test_masks_are_dilated_labels);
    TH_RUN(test_pipeline_covers_every_pixel);
    TH_RUN(test_pipeline_vs_reference);
    remove_tmp_dir();
    return th_report();
}
