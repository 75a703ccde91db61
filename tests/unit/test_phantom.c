/*
 * test_phantom.c - the synthetic data set: determinism, ground truth inside
 * the lungs, the RSNA and SIIM files read back by the loaders, visible
 * opacities and non-predictive markers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/dataset.h"
#include "io/png.h"
#include "phantom/phantom.h"
#include "sc.h"
#include "testhelp.h"

static char tmpdir[512];

static void sub(char *buf, size_t size, const char *rel)
{
    snprintf(buf, size, "%s/%s", tmpdir, rel);
}

/* Whole-file comparison: 1 equal, 0 different, -1 unreadable. */
static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int result = fa && fb ? 1 : -1;
    while (result == 1) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb)
            result = 0;
        if (ca == EOF || cb == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return result;
}

static phantom_config_t config(uint64_t seed, int size)
{
    phantom_config_t cfg;
    phantom_config_default(&cfg);
    cfg.seed = seed;
    cfg.size = size;
    return cfg;
}

static void test_determinism(void)
{
    enum { N = 12 };
    char a[1024], b[1024], c[1024], d[1024];
    sub(a, sizeof a, "det_a");
    sub(b, sizeof b, "det_b");
    sub(c, sizeof c, "det_c");
    sub(d, sizeof d, "det_d");
    phantom_config_t cfg = config(5, 128), other = config(6, 128);
    TH_EQ_INT(phantom_write_dataset(&cfg, a, PHANTOM_FORMAT_RSNA, N), 0);
    TH_EQ_INT(phantom_write_dataset(&cfg, b, PHANTOM_FORMAT_RSNA, N), 0);
    TH_EQ_INT(phantom_write_dataset(&other, c, PHANTOM_FORMAT_RSNA, N), 0);
    /* Images 7..11 alone (as another rank would write them). */
    char *rows = NULL;
    size_t rows_len = 0;
    TH_EQ_INT(phantom_make_dirs(d), 0);
    TH_EQ_INT(phantom_write_images(&cfg, d, PHANTOM_FORMAT_RSNA, 7, N, &rows, &rows_len), 0);
    const char *files[] = {"labels.csv", "splits.csv"};
    for (int k = 0; k < 2; k++) {
        char fa[1200], fb[1200];
        snprintf(fa, sizeof fa, "%s/%s", a, files[k]);
        snprintf(fb, sizeof fb, "%s/%s", b, files[k]);
        TH_CHECK(same_file(fa, fb) == 1, "%s differs between two runs with one seed", files[k]);
    }
    int differ_other_seed = 0;
    for (int i = 0; i < N; i++) {
        char id[32], fa[1200], fb[1200], fc[1200], fd[1200];
        phantom_image_id((uint32_t)i, id, sizeof id);
        snprintf(fa, sizeof fa, "%s/images/%s.png", a, id);
        snprintf(fb, sizeof fb, "%s/images/%s.png", b, id);
        snprintf(fc, sizeof fc, "%s/images/%s.png", c, id);
        snprintf(fd, sizeof fd, "%s/images/%s.png", d, id);
        TH_CHECK(same_file(fa, fb) == 1, "image %d differs between two runs with one seed", i);
        differ_other_seed += same_file(fa, fc) == 0;
        if (i >= 7)
            TH_CHECK(same_file(fa, fd) == 1, "image %d differs when written alone", i);
    }
    TH_EQ_INT(differ_other_seed, N);
    /* The rows of images 7..11 are the tail of labels.csv. */
    char path[1200];
    snprintf(path, sizeof path, "%s/labels.csv", a);
    FILE *fp = fopen(path, "rb");
    static char text[1 << 16];
    size_t n = fp ? fread(text, 1, sizeof text - 1, fp) : 0;
    if (fp)
        fclose(fp);
    text[n] = '\0';
    TH_CHECK(rows && n >= rows_len && !strcmp(text + n - rows_len, rows), "rows of 7..11 are not the tail");
    free(rows);
}

/*
 * The data set read back by the RSNA loader against the renderer's own
 * masks: labels, boxes = tight boxes of each opacity, opacities inside the
 * lung fields, negatives without boxes.
 */
static void test_ground_truth_in_lungs(void)
{
    enum { N = 40, S = 128 };
    char dir[1024];
    sub(dir, sizeof dir, "gt");
    phantom_config_t cfg = config(11, S);
    TH_EQ_INT(phantom_write_dataset(&cfg, dir, PHANTOM_FORMAT_RSNA, N), 0);
    dataset_t *ds = NULL;
    TH_EQ_INT(dataset_open(dir, NULL, &ds), 0);
    if (!ds)
        return;
    TH_EQ_INT(dataset_count(ds), N);
    phantom_t *ph = phantom_create(&cfg);
    static uint8_t img[S * S], bits[S * S], lung[S * S], mask[S * S];
    int positives = 0, splits[3] = {0, 0, 0};
    for (int i = 0; i < N && ph; i++) {
        phantom_info_t info;
        TH_EQ_INT(phantom_render(ph, (uint32_t)i, img, &info, bits, lung), 0);
        char id[32];
        phantom_image_id((uint32_t)i, id, sizeof id);
        int e = dataset_find(ds, id);
        TH_CHECK(e >= 0, "%s missing from the data set", id);
        if (e < 0)
            continue;
        int w, h;
        dataset_source_size(ds, e, &w, &h);
        TH_EQ_INT(w, S);
        TH_EQ_INT(dataset_label(ds, e), info.label);
        TH_EQ_INT(dataset_split(ds, e), info.split);
        splits[info.split]++;
        TH_EQ_INT(dataset_box_count(ds, e), info.n_lesions);
        TH_CHECK(info.n_lesions <= 3, "%d lesions", info.n_lesions);
        if (!info.label) {
            long any = 0;
            for (int p = 0; p < S * S; p++)
                any += bits[p] != 0;
            TH_CHECK(any == 0 && info.n_lesions == 0, "negative %s has %ld lesion pixels", id, any);
            continue;
        }
        positives++;
        TH_CHECK(info.n_lesions >= 1, "positive %s without opacities", id);
        for (int k = 0; k < info.n_lesions && k < dataset_box_count(ds, e); k++) {
            /* The box in labels.csv is the tight box of opacity k's pixels. */
            int x0 = S, y0 = S, x1 = -1, y1 = -1;
            long outside = 0, lung_in_box = 0;
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++) {
                    if (!((bits[y * S + x] >> k) & 1))
                        continue;
                    outside += !lung[y * S + x];
                    if (x < x0) x0 = x;
                    if (x > x1) x1 = x;
                    if (y < y0) y0 = y;
                    if (y > y1) y1 = y;
                }
            dataset_box_t box = dataset_box(ds, e, k);
            TH_CHECK(box.x == x0 && box.y == y0 && box.w == x1 - x0 + 1 && box.h == y1 - y0 + 1,
                     "%s box %d = (%g,%g,%g,%g), opacity spans (%d,%d,%d,%d)", id, k, box.x, box.y, box.w,
                     box.h, x0, y0, x1 - x0 + 1, y1 - y0 + 1);
            TH_CHECK(outside == 0, "%s opacity %d has %ld pixels outside the lungs", id, k, outside);
            for (int y = y0; y <= y1; y++)
                for (int x = x0; x <= x1; x++)
                    lung_in_box += lung[y * S + x];
            double frac = (double)lung_in_box / ((x1 - x0 + 1) * (y1 - y0 + 1));
            TH_CHECK(frac >= 0.6, "%s box %d is only %.0f %% lung", id, k, 100 * frac);
        }
        /* The loader's mask at the image size covers every opacity pixel (boxes are supersets). */
        TH_EQ_INT(dataset_mask(ds, e, S, mask), 0);
        long missed = 0;
        for (int p = 0; p < S * S; p++)
            missed += bits[p] && !mask[p];
        TH_EQ_INT(missed, 0);
    }
    TH_CHECK(positives >= 10 && positives <= 30, "%d positives of %d at fraction 0.5", positives, N);
    TH_CHECK(splits[0] > splits[1] && splits[0] > splits[2], "splits %d/%d/%d", splits[0], splits[1], splits[2]);
    phantom_destroy(ph);
    dataset_destroy(ds);
}

/* SIIM format: the RLE rows read back by the loader equal the opacity masks pixel for pixel. */
static void test_siim_roundtrip(void)
{
    enum { N = 10, S = 96 };
    char dir[1024];
    sub(dir, sizeof dir, "siim");
    phantom_config_t cfg = config(3, S);
    cfg.positive_fraction = 0.8;
    TH_EQ_INT(phantom_write_dataset(&cfg, dir, PHANTOM_FORMAT_SIIM, N), 0);
    dataset_t *ds = NULL;
    TH_EQ_INT(dataset_open(dir, NULL, &ds), 0);
    if (!ds)
        return;
    TH_EQ_INT(dataset_format(ds), DATASET_FORMAT_SIIM);
    TH_EQ_INT(dataset_count(ds), N);
    phantom_t *ph = phantom_create(&cfg);
    static uint8_t img[S * S], bits[S * S], mask[S * S];
    int positives = 0;
    for (int i = 0; i < N && ph; i++) {
        phantom_info_t info;
        phantom_render(ph, (uint32_t)i, img, &info, bits, NULL);
        char id[32];
        phantom_image_id((uint32_t)i, id, sizeof id);
        int e = dataset_find(ds, id);
        TH_CHECK(e >= 0, "%s missing", id);
        if (e < 0)
            continue;
        TH_EQ_INT(dataset_label(ds, e), info.label);
        positives += info.label;
        TH_EQ_INT(dataset_mask(ds, e, S, mask), 0);
        long diff = 0;
        for (int p = 0; p < S * S; p++)
            diff += (bits[p] != 0) != (mask[p] != 0);
        TH_CHECK(diff == 0, "%s: %ld pixels differ between the RLE and the opacity mask", id, diff);
    }
    TH_CHECK(positives >= 5, "only %d positives", positives);
    phantom_destroy(ph);
    dataset_destroy(ds);
}

/*
 * Image content: lungs darker than the mediastinum and abdomen, opacities
 * brighter than the lung around them, markers outside the lungs and as
 * frequent on negatives as on positives.
 */
static void test_image_content_and_markers(void)
{
    enum { N = 300, S = 64 };
    phantom_config_t cfg = config(21, S);
    phantom_t *ph = phantom_create(&cfg);
    TH_CHECK(ph != NULL, "create failed");
    if (!ph)
        return;
    static uint8_t img[S * S], bits[S * S], lung[S * S];
    int markers[2] = {0, 0}, counts[2] = {0, 0}, lesions = 0, faint = 0;
    double contrast_sum = 0, lung_minus_center = 0;
    for (int i = 0; i < N; i++) {
        phantom_info_t info;
        phantom_render(ph, (uint32_t)i, img, &info, bits, lung);
        counts[info.label]++;
        markers[info.label] += info.marker;
        if (info.marker) {
            long overlap = 0;
            for (int y = info.marker_box.y; y < info.marker_box.y + info.marker_box.h; y++)
                for (int x = info.marker_box.x; x < info.marker_box.x + info.marker_box.w; x++)
                    overlap += lung[y * S + x];
            TH_CHECK(overlap == 0, "image %d: marker over %ld lung pixels", i, overlap);
        }
        /* Lung mean vs the central column between the lungs (mediastinum). */
        double lsum = 0, csum = 0;
        long ln = 0, cn = 0;
        for (int y = S / 5; y < 3 * S / 5; y++)
            for (int x = 0; x < S; x++) {
                if (lung[y * S + x] && !bits[y * S + x]) {
                    lsum += img[y * S + x];
                    ln++;
                }
                if (abs(x - S / 2) <= 1) {
                    csum += img[y * S + x];
                    cn++;
                }
            }
        if (ln && cn)
            lung_minus_center += lsum / ln - csum / cn;
        for (int k = 0; k < info.n_lesions; k++) {
            /* Opacity pixels vs lung pixels in a ring around its box. */
            phantom_box_t b = info.boxes[k];
            double in = 0, ring = 0;
            long nin = 0, nring = 0;
            int m = 1 + b.w / 2;
            for (int y = b.y - m; y < b.y + b.h + m; y++)
                for (int x = b.x - m; x < b.x + b.w + m; x++) {
                    if (x < 0 || y < 0 || x >= S || y >= S)
                        continue;
                    if ((bits[y * S + x] >> k) & 1) {
                        in += img[y * S + x];
                        nin++;
                    } else if (lung[y * S + x] && !bits[y * S + x]) {
                        ring += img[y * S + x];
                        nring++;
                    }
                }
            if (nin && nring) {
                double c = in / nin - ring / nring;
                contrast_sum += c;
                faint += c < 2.0;
                lesions++;
            }
        }
    }
    double p_neg = (double)markers[0] / counts[0], p_pos = (double)markers[1] / counts[1];
    printf("    markers: %.2f of negatives, %.2f of positives; %d opacities, mean contrast %.1f gray "
           "levels, %d under 2; lung - mediastinum %.1f\n",
           p_neg, p_pos, lesions, lesions ? contrast_sum / lesions : 0.0, faint, lung_minus_center / N);
    TH_CHECK(fabs(p_neg - p_pos) < 0.15, "marker rate %.2f (negatives) vs %.2f (positives)", p_neg, p_pos);
    TH_CHECK(p_neg > 0.3 && p_neg < 0.7, "marker rate %.2f", p_neg);
    TH_CHECK(lung_minus_center / N < -40, "lungs not darker than the mediastinum: %.1f", lung_minus_center / N);
    TH_CHECK(lesions > 100, "%d opacities", lesions);
    TH_CHECK(contrast_sum / lesions > 8.0, "opacities barely visible: mean contrast %.1f", contrast_sum / lesions);
    TH_CHECK(faint < lesions / 10, "%d of %d opacities under 2 gray levels", faint, lesions);
    phantom_destroy(ph);
}

/* The written PNG opens in PIL (any viewer) as 8-bit gray of the right size. */
static void test_png_opens_in_pil(void)
{
    char dir[1024], png[1200], out[1200], cmd[4096];
    sub(dir, sizeof dir, "pil");
    phantom_config_t cfg = config(2, 160);
    TH_EQ_INT(phantom_write_dataset(&cfg, dir, PHANTOM_FORMAT_RSNA, 1), 0);
    snprintf(png, sizeof png, "%s/images/phantom-000000.png", dir);
    int w = 0, h = 0;
    float *px = NULL;
    TH_EQ_INT(png_read_gray(png, &w, &h, &px), 0);
    TH_EQ_INT(w, 160);
    TH_EQ_INT(h, 160);
    sc_free(px);
    if (!th_python_has("PIL, numpy"))
        TH_SKIP("PIL not available for %s", th_python());
    snprintf(out, sizeof out, "%s/pil.txt", dir);
    snprintf(cmd, sizeof cmd, "%s tests/ref/io_ref.py readpng %s %s", th_python(), png, out);
    TH_EQ_INT(system(cmd), 0);
    FILE *fp = fopen(out, "rb");
    char mode[16] = "";
    int pw = 0, ph = 0;
    TH_CHECK(fp && fscanf(fp, "%d %d %15s", &pw, &ph, mode) == 3, "PIL output unreadable");
    if (fp)
        fclose(fp);
    TH_EQ_INT(pw, 160);
    TH_EQ_INT(ph, 160);
    TH_CHECK(!strcmp(mode, "L"), "PIL mode '%s'", mode);
}

static void test_bad_config(void)
{
    phantom_config_t cfg = config(1, 16);
    TH_CHECK(phantom_create(&cfg) == NULL, "size 16 accepted");
    cfg = config(1, 64);
    cfg.positive_fraction = 1.5;
    TH_CHECK(phantom_create(&cfg) == NULL, "fraction 1.5 accepted");
    cfg.positive_fraction = 0.0;
    TH_EQ_INT(phantom_label(&cfg, 3), 0);
    cfg.positive_fraction = 1.0;
    TH_EQ_INT(phantom_label(&cfg, 3), 1);
}

int main(void)
{
    if (th_scratch_make(tmpdir, sizeof tmpdir, "tmp-test-phantom-") < 0) {
        const char *build = getenv("BUILD");
        printf("cannot create a temporary directory under %s\n", build && *build ? build : "build");
        return 2;
    }
    TH_RUN(test_determinism);
    TH_RUN(test_ground_truth_in_lungs);
    TH_RUN(test_siim_roundtrip);
    TH_RUN(test_image_content_and_markers);
    TH_RUN(test_png_opens_in_pil);
    TH_RUN(test_bad_config);
    int rc = th_report();
    th_scratch_end(tmpdir, rc, "outputs");
    return rc;
}
