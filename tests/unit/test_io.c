/*
 * test_io.c - PNG reading/writing, resize and normalization, and the data set
 * loaders (RSNA boxes, SIIM RLE, mask PNG dirs, splits, class filter, bad input).
 *
 * Reference values come from PIL, PyTorch and numpy through tests/ref/io_ref.py
 * (run with th_python()), or are worked out by hand in the comments.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/dataset.h"
#include "rng.h"
#include "io/image.h"
#include "io/png.h"
#include "sc.h"
#include "testhelp.h"

static char tmpdir[512];
static char captured[32768];
static int saved_stderr = -1;

/* ------------------------------------------------------------------ helpers */

static void path_of(char *buf, size_t size, const char *rel)
{
    snprintf(buf, size, "%s/%s", tmpdir, rel);
}

static void write_text(const char *rel, const char *text)
{
    char path[1024];
    path_of(path, sizeof path, rel);
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        printf("cannot write %s\n", path);
        exit(2);
    }
    fputs(text, fp);
    fclose(fp);
}

static void make_dir(const char *rel)
{
    char path[1024];
    path_of(path, sizeof path, rel);
    mkdir(path, 0777);
}

/* A gray PNG with a gradient; `rel` relative to tmpdir. */
static void write_png(const char *rel, int w, int h)
{
    char path[1024];
    path_of(path, sizeof path, rel);
    uint8_t *px = malloc((size_t)w * h);
    for (int i = 0; i < w * h; i++)
        px[i] = (uint8_t)(i * 7 % 251);
    if (png_write_gray8(path, w, h, px) != 0) {
        printf("cannot write %s\n", path);
        exit(2);
    }
    free(px);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Redirect stderr (the logger) into a file so a test can check the messages. */
static void capture_begin(void)
{
    char path[1024];
    path_of(path, sizeof path, "stderr.txt");
    fflush(stderr);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    saved_stderr = dup(2);
    dup2(fd, 2);
    close(fd);
}

static const char *capture_end(void)
{
    char path[1024];
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    path_of(path, sizeof path, "stderr.txt");
    FILE *fp = fopen(path, "rb");
    size_t n = fp ? fread(captured, 1, sizeof captured - 1, fp) : 0;
    if (fp)
        fclose(fp);
    captured[n] = '\0';
    return captured;
}

static int run_python(const char *args)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s tests/ref/io_ref.py %s", th_python(), args);
    return system(cmd);
}

static float *read_f32(const char *path, size_t n)
{
    float *buf = malloc(n * sizeof(float));
    FILE *fp = fopen(path, "rb");
    size_t got = fp ? fread(buf, sizeof(float), n, fp) : 0;
    if (fp)
        fclose(fp);
    if (got != n) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---------------------------------------------------------------------- PNG */

static void test_png_gray8_roundtrip_and_pil(void)
{
    int w = 37, h = 23;
    uint8_t px[37 * 23];
    for (int i = 0; i < w * h; i++)
        px[i] = (uint8_t)((i * 97 + 13) % 256);
    char path[1024], out[1024], args[3072];
    path_of(path, sizeof path, "g8.png");
    TH_EQ_INT(png_write_gray8(path, w, h, px), 0);
    int rw = 0, rh = 0;
    float *back = NULL;
    TH_EQ_INT(png_read_gray(path, &rw, &rh, &back), 0);
    TH_EQ_INT(rw, w);
    TH_EQ_INT(rh, h);
    int bad = 0;
    for (int i = 0; back && i < w * h; i++)
        bad += back[i] != (float)px[i];
    TH_EQ_INT(bad, 0);
    sc_free(back);
    if (!th_python_has("PIL, numpy"))
        TH_SKIP("PIL/numpy not available for %s", th_python());
    path_of(out, sizeof out, "g8.pil");
    snprintf(args, sizeof args, "readpng %s %s", path, out);
    TH_EQ_INT(run_python(args), 0);
    FILE *fp = fopen(out, "rb");
    char mode[16] = "";
    int pw = 0, ph = 0;
    TH_CHECK(fp && fscanf(fp, "%d %d %15s", &pw, &ph, mode) == 3, "cannot parse PIL output");
    if (!fp)
        return;
    fgetc(fp);
    uint8_t pil[37 * 23];
    size_t got = fread(pil, 1, sizeof pil, fp);
    fclose(fp);
    TH_EQ_INT(pw, w);
    TH_EQ_INT(ph, h);
    TH_CHECK(!strcmp(mode, "L"), "PIL mode %s, expected L", mode);
    TH_EQ_INT(got, sizeof pil);
    TH_EQ_INT(memcmp(pil, px, sizeof pil), 0);
}

static void test_png_rgb8_roundtrip(void)
{
    int w = 9, h = 5;
    uint8_t px[9 * 5 * 3];
    for (int i = 0; i < w * h * 3; i++)
        px[i] = (uint8_t)((i * 53 + 7) % 256);
    char path[1024];
    path_of(path, sizeof path, "rgb8.png");
    TH_EQ_INT(png_write_rgb8(path, w, h, px), 0);
    int rw = 0, rh = 0;
    float *gray = NULL;
    TH_EQ_INT(png_read_gray(path, &rw, &rh, &gray), 0);
    TH_EQ_INT(rw * rh, w * h);
    for (int i = 0; gray && i < w * h; i++) {
        /* hand formula: ITU-R 601 luma */
        double want = 0.299 * px[3 * i] + 0.587 * px[3 * i + 1] + 0.114 * px[3 * i + 2];
        TH_NEAR(gray[i], want, 0, 1e-3);
    }
    sc_free(gray);
}

static void test_png_layouts_vs_pil(void)
{
    if (!th_python_has("PIL, numpy"))
        TH_SKIP("PIL/numpy not available for %s", th_python());
    char dir[1024], args[2048];
    make_dir("layouts");
    path_of(dir, sizeof dir, "layouts");
    snprintf(args, sizeof args, "pngs %s > /dev/null", dir);
    TH_EQ_INT(run_python(args), 0);
    const char *names[] = {"gray16", "rgb", "rgba", "gray_alpha", "palette", "gray1", "gray8"};
    for (int k = 0; k < 7; k++) {
        char png[1200], ref[1200];
        snprintf(png, sizeof png, "%s/%s.png", dir, names[k]);
        snprintf(ref, sizeof ref, "%s/%s.f32", dir, names[k]);
        int w = 0, h = 0;
        float *got = NULL;
        TH_EQ_INT(png_read_gray(png, &w, &h, &got), 0);
        TH_EQ_INT(w, 17);
        TH_EQ_INT(h, 13);
        float *want = read_f32(ref, 17 * 13);
        TH_CHECK(want != NULL, "missing reference %s", ref);
        double worst = 0;
        for (int i = 0; got && want && i < 17 * 13; i++)
            worst = fmax(worst, fabs(got[i] - want[i]));
        TH_CHECK(worst < 2e-3, "%s: max |ours - PIL/numpy| = %g", names[k], worst);
        sc_free(got);
        free(want);
    }
}

static void test_png_bad_files(void)
{
    char good[1024], path[1024];
    int w, h;
    float *px = (float *)1;
    write_png("good.png", 64, 48);
    path_of(good, sizeof good, "good.png");

    /* Missing file. */
    path_of(path, sizeof path, "no-such.png");
    capture_begin();
    int rc = png_read_gray(path, &w, &h, &px);
    const char *msg = capture_end();
    TH_EQ_INT(rc, SC_ERR_IO);
    TH_CHECK(px == NULL, "pixels not NULL on error");
    TH_CHECK(strstr(msg, "no-such.png") && strstr(msg, "No such file"), "message: %s", msg);

    /* A text file with a .png name. */
    write_text("text.png", "patientId,x,y\nnot an image\n");
    path_of(path, sizeof path, "text.png");
    capture_begin();
    rc = png_read_gray(path, &w, &h, &px);
    msg = capture_end();
    TH_EQ_INT(rc, SC_ERR_FORMAT);
    TH_CHECK(strstr(msg, "text.png") && strstr(msg, "not a PNG"), "message: %s", msg);

    /* Empty file. */
    write_text("empty.png", "");
    path_of(path, sizeof path, "empty.png");
    capture_begin();
    rc = png_read_size(path, &w, &h);
    msg = capture_end();
    TH_EQ_INT(rc, SC_ERR_FORMAT);
    TH_CHECK(strstr(msg, "empty.png") && strstr(msg, "empty file"), "message: %s", msg);

    /* Truncated: the header survives (the size reads), the pixels do not. */
    FILE *in = fopen(good, "rb");
    char bytes[1 << 16];
    size_t n = fread(bytes, 1, sizeof bytes, in);
    fclose(in);
    path_of(path, sizeof path, "truncated.png");
    FILE *out = fopen(path, "wb");
    fwrite(bytes, 1, n * 6 / 10, out);
    fclose(out);
    TH_EQ_INT(png_read_size(path, &w, &h), 0);
    TH_EQ_INT(w, 64);
    capture_begin();
    rc = png_read_gray(path, &w, &h, &px);
    msg = capture_end();
    TH_EQ_INT(rc, SC_ERR_FORMAT);
    TH_CHECK(px == NULL, "pixels not NULL on error");
    TH_CHECK(strstr(msg, "truncated.png") && strstr(msg, "corrupt or truncated"), "message: %s", msg);

    /* Corrupt: bytes flipped inside the image data (CRC or zlib error). */
    for (size_t i = n / 2; i < n / 2 + 8; i++)
        bytes[i] ^= 0x5a;
    path_of(path, sizeof path, "corrupt.png");
    out = fopen(path, "wb");
    fwrite(bytes, 1, n, out);
    fclose(out);
    capture_begin();
    rc = png_read_gray(path, &w, &h, &px);
    msg = capture_end();
    TH_EQ_INT(rc, SC_ERR_FORMAT);
    TH_CHECK(strstr(msg, "corrupt.png") && strstr(msg, "libpng:"), "message: %s", msg);

    /* Writing into a missing directory fails cleanly, leaving no file. */
    path_of(path, sizeof path, "no-dir/x.png");
    uint8_t one = 0;
    capture_begin();
    rc = png_write_gray8(path, 1, 1, &one);
    msg = capture_end();
    TH_EQ_INT(rc, SC_ERR_IO);
    TH_CHECK(strstr(msg, "no-dir/x.png"), "message: %s", msg);
    TH_EQ_INT(file_size(path), -1);
}

/* ---------------------------------------------------------- resize & norm */

static void check_resize_vs_ref(int w, int h, int dw, int dh)
{
    size_t n = (size_t)w * h, m = (size_t)dw * dh;
    float *src = malloc(n * sizeof(float)), *bil = malloc(m * sizeof(float)), *area = malloc(m * sizeof(float));
    for (size_t i = 0; i < n; i++)
        src[i] = (float)((i * 7919) % 257) + 0.25f * (float)(i % 3);
    char in[1024], ob[1024], oa[1024], args[4096];
    path_of(in, sizeof in, "resize_in.f32");
    path_of(ob, sizeof ob, "resize_bil.f32");
    path_of(oa, sizeof oa, "resize_area.f32");
    FILE *fp = fopen(in, "wb");
    fwrite(src, sizeof(float), n, fp);
    fclose(fp);
    snprintf(args, sizeof args, "resize %s %d %d %d %d %s %s", in, w, h, dw, dh, ob, oa);
    TH_EQ_INT(run_python(args), 0);
    float *want_bil = read_f32(ob, m), *want_area = read_f32(oa, m);
    TH_CHECK(want_bil && want_area, "missing reference output");
    TH_EQ_INT(image_resize(src, w, h, bil, dw, dh, IMAGE_RESIZE_BILINEAR), 0);
    TH_EQ_INT(image_resize(src, w, h, area, dw, dh, IMAGE_RESIZE_AREA), 0);
    double worst_b = 0, worst_a = 0;
    for (size_t i = 0; want_bil && want_area && i < m; i++) {
        worst_b = fmax(worst_b, fabs(bil[i] - want_bil[i]));
        worst_a = fmax(worst_a, fabs(area[i] - want_area[i]));
    }
    TH_CHECK(worst_b < 1e-3, "%dx%d -> %dx%d bilinear: max |ours - torch| = %g", w, h, dw, dh, worst_b);
    TH_CHECK(worst_a < 1e-3, "%dx%d -> %dx%d area: max |ours - numpy| = %g", w, h, dw, dh, worst_a);
    free(src);
    free(bil);
    free(area);
    free(want_bil);
    free(want_area);
}

static void test_resize_vs_torch_numpy(void)
{
    if (!th_python_has("torch, numpy"))
        TH_SKIP("torch/numpy not available for %s", th_python());
    check_resize_vs_ref(50, 37, 23, 31);  /* shrink x, shrink/grow mixed, non-integer ratios */
    check_resize_vs_ref(20, 15, 47, 33);  /* grow */
    check_resize_vs_ref(64, 64, 20, 20);  /* the 1024 -> 320 ratio (3.2) */
}

static void test_resize_by_hand(void)
{
    /* 4x4 -> 2x2 area is the mean of each 2x2 block. */
    float src[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, dst[4];
    TH_EQ_INT(image_resize(src, 4, 4, dst, 2, 2, IMAGE_RESIZE_AREA), 0);
    TH_NEAR(dst[0], 2.5, 0, 1e-6);  /* (0+1+4+5)/4 */
    TH_NEAR(dst[3], 12.5, 0, 1e-6); /* (10+11+14+15)/4 */
    /* 3 -> 2 area: footprints [0,1.5) and [1.5,3): (a + b/2)/1.5 and (b/2 + c)/1.5. */
    float row[3] = {3, 6, 9}, out[2];
    TH_EQ_INT(image_resize(row, 3, 1, out, 2, 1, IMAGE_RESIZE_AREA), 0);
    TH_NEAR(out[0], (3 + 3) / 1.5, 0, 1e-5);
    TH_NEAR(out[1], (3 + 9) / 1.5, 0, 1e-5);
    /* 2 -> 4 bilinear, half-pixel centres: sources -0.25 (clamped 0), 0.25, 0.75, 1.25 (clamped). */
    float two[2] = {0, 8}, four[4];
    TH_EQ_INT(image_resize(two, 2, 1, four, 4, 1, IMAGE_RESIZE_BILINEAR), 0);
    TH_NEAR(four[0], 0, 0, 1e-6);
    TH_NEAR(four[1], 2, 0, 1e-6);
    TH_NEAR(four[2], 6, 0, 1e-6);
    TH_NEAR(four[3], 8, 0, 1e-6);
}

static void test_normalize(void)
{
    float gray[3] = {0.0f, 127.5f, 255.0f}, out[9];
    image_normalize_3ch(gray, 3, IMAGE_NORM_INCEPTION, out);
    TH_NEAR(out[0], -1.0, 0, 1e-6);
    TH_NEAR(out[1], 0.0, 0, 1e-6);
    TH_NEAR(out[2], 1.0, 0, 1e-6);
    TH_NEAR(out[8], 1.0, 0, 1e-6); /* channel 2 is a copy */
    image_normalize_3ch(gray, 3, IMAGE_NORM_UNIT, out);
    TH_NEAR(out[1], 0.5, 0, 1e-6);
    TH_NEAR(out[5], 1.0, 0, 1e-6);
    image_normalize_3ch(gray, 3, IMAGE_NORM_IMAGENET, out);
    TH_NEAR(out[0], (0.0 - 0.485) / 0.229, 0, 1e-5); /* R of black */
    TH_NEAR(out[4], (0.5 - 0.456) / 0.224, 0, 1e-5); /* G of mid gray */
    TH_NEAR(out[8], (1.0 - 0.406) / 0.225, 0, 1e-5); /* B of white */
    image_norm_t norm;
    image_resize_t mode;
    TH_EQ_INT(image_norm_parse("imagenet", &norm), 0);
    TH_EQ_INT(norm.channels, 3);
    TH_CHECK(!strcmp(norm.name, "imagenet"), "preset name '%s'", norm.name);
    TH_EQ_INT(image_resize_parse("area", &mode), 0);
    TH_EQ_INT(mode, IMAGE_RESIZE_AREA);
    capture_begin();
    int rc = image_norm_parse("caffe", &norm);
    const char *msg = capture_end();
    TH_EQ_INT(rc, SC_ERR_ARG);
    TH_CHECK(strstr(msg, "caffe"), "message: %s", msg);
}

static void test_image_loader(void)
{
    int w = 40, h = 40, R = 16;
    write_png("loader.png", w, h);
    char path[1024];
    path_of(path, sizeof path, "loader.png");
    image_loader_t *loader = image_loader_create(R, IMAGE_RESIZE_AREA, IMAGE_NORM_INCEPTION);
    TH_CHECK(loader != NULL, "loader_create failed");
    if (!loader)
        return;
    float tensor[3 * 16 * 16], gray[16 * 16], want[16 * 16];
    for (int pass = 0; pass < 2; pass++) { /* the second load reuses the tables */
        TH_EQ_INT(image_loader_load(loader, path, tensor, gray), 0);
        float *src = NULL;
        int sw, sh;
        TH_EQ_INT(png_read_gray(path, &sw, &sh, &src), 0);
        TH_EQ_INT(image_resize(src, sw, sh, want, R, R, IMAGE_RESIZE_AREA), 0);
        sc_free(src);
        for (int i = 0; i < R * R; i++) {
            TH_NEAR(gray[i], want[i], 0, 1e-4);
            TH_NEAR(tensor[i], want[i] / 127.5 - 1.0, 0, 1e-5);
            TH_NEAR(tensor[2 * R * R + i], want[i] / 127.5 - 1.0, 0, 1e-5);
        }
    }
    capture_begin();
    int rc = image_loader_load(loader, "missing-dir/none.png", tensor, NULL);
    const char *msg = capture_end();
    TH_EQ_INT(rc, SC_ERR_IO);
    TH_CHECK(strstr(msg, "none.png"), "message: %s", msg);
    image_loader_destroy(loader);
}

/* ------------------------------------------------------------ data sets */

static void test_rsna_boxes_roundtrip(void)
{
    make_dir("rsna");
    /*
     * Boxes in the 1024 frame, model grid 320 (the paper's setting).
     *   a: (100,200,50,60): x0=int(320*100/1023)=31, x1=int(320*150/1023)=46,
     *      y0=int(320*200/1023)=62, y1=int(320*260/1023)=81, inclusive; plus a second box.
     *   c: (1020,1020,4,4): paper x0=int(319.06)=319, x1=int(320.31)=320 -> clamped 319: one cell;
     *      exact: floor(1020*320/1024)=318 .. ceil(1024*320/1024)-1=319: two cells per axis.
     */
    write_text("rsna/labels.csv", "patientId,x,y,width,height,Target\n"
                                  "a,100,200,50,60,1\n"
                                  "b,,,,,0\n"
                                  "a,600.5,500,300,400,1\n"
                                  "c,1020.0,1020.0,4.0,4.0,1\n");
    char dir[1024];
    path_of(dir, sizeof dir, "rsna");
    dataset_options_t opt;
    dataset_options_default(&opt);
    opt.source_size = 1024;
    opt.verify = 0; /* no images needed for masks */
    dataset_t *ds = NULL;
    TH_EQ_INT(dataset_open(dir, &opt, &ds), 0);
    if (!ds)
        return;
    TH_EQ_INT(dataset_format(ds), DATASET_FORMAT_RSNA);
    TH_EQ_INT(dataset_count(ds), 3);
    TH_CHECK(!strcmp(dataset_id(ds, 0), "a") && !strcmp(dataset_id(ds, 2), "c"), "order of ids");
    TH_EQ_INT(dataset_label(ds, 0), 1);
    TH_EQ_INT(dataset_label(ds, 1), 0);
    TH_EQ_INT(dataset_box_count(ds, 0), 2);
    TH_NEAR(dataset_box(ds, 0, 1).x, 600.5, 0, 0);
    /* no splits.csv: 70/15/15 by a hash of the id (rng_key(0, id).k[0] % 100) */
    for (int i = 0; i < 3; i++) {
        unsigned bucket = (unsigned)(rng_key(0, dataset_id(ds, i)).k[0] % 100);
        TH_EQ_INT(dataset_split(ds, i), bucket < 15 ? DATASET_SPLIT_VAL : bucket < 30 ? DATASET_SPLIT_TEST
                                                                                     : DATASET_SPLIT_TRAIN);
    }
    enum { R = 320 };
    static uint8_t mask[3][R * R];
    for (int i = 0; i < 3; i++)
        TH_EQ_INT(dataset_mask(ds, i, R, mask[i]), 0);
    const uint8_t *a = mask[0];
    TH_EQ_INT(a[62 * R + 31], 1);
    TH_EQ_INT(a[81 * R + 46], 1); /* inclusive end */
    TH_EQ_INT(a[82 * R + 46], 0);
    TH_EQ_INT(a[81 * R + 47], 0);
    TH_EQ_INT(a[61 * R + 31], 0);
    TH_EQ_INT(a[62 * R + 30], 0);
    long sum_b = 0, sum_c = 0;
    for (int p = 0; p < R * R; p++) {
        sum_b += mask[1][p];
        sum_c += mask[2][p];
    }
    TH_EQ_INT(sum_b, 0);
    TH_EQ_INT(sum_c, 1);
    TH_EQ_INT(mask[2][319 * R + 319], 1);
    dataset_destroy(ds);

    opt.box_map = DATASET_BOX_EXACT;
    TH_EQ_INT(dataset_open(dir, &opt, &ds), 0);
    if (!ds)
        return;
    TH_EQ_INT(dataset_mask(ds, 2, R, mask[2]), 0);
    sum_c = 0;
    for (int p = 0; p < R * R; p++)
        sum_c += mask[2][p];
    TH_EQ_INT(sum_c, 4);
    TH_EQ_INT(mask[2][318 * R + 318], 1);
    dataset_destroy(ds);
    opt.box_map = DATASET_BOX_PAPER;

    /* Whole masks against the paper's mapping written in numpy. */
    if (!th_python_has("numpy"))
        TH_SKIP("numpy not available for %s", th_python());
    char csv[1024], out[1024], args[3072];
    path_of(csv, sizeof csv, "rsna/labels.csv");
    path_of(out, sizeof out, "rsna/ref.u8");
    snprintf(args, sizeof args, "rsna %s 1024 %d %s", csv, R, out);
    TH_EQ_INT(run_python(args), 0);
    TH_EQ_INT(dataset_open(dir, &opt, &ds), 0);
    if (!ds)
        return;
    static uint8_t ref[3][R * R];
    FILE *fp = fopen(out, "rb");
    size_t got = fp ? fread(ref, 1, sizeof ref, fp) : 0;
    if (fp)
        fclose(fp);
    TH_EQ_INT(got, sizeof ref);
    for (int i = 0; i < 3; i++) {
        TH_EQ_INT(dataset_mask(ds, i, R, mask[i]), 0);
        int diff = 0;
        for (int p = 0; p < R * R; p++)
            diff += mask[i][p] != ref[i][p];
        TH_CHECK(diff == 0, "entry %d: %d cells differ from the numpy reference", i, diff);
    }
    dataset_destroy(ds);
}

static void test_siim_rle_roundtrip(void)
{
    make_dir("siim");
    make_dir("siim/images");
    write_png("siim/images/a.png", 6, 6);
    write_png("siim/images/b.png", 6, 6);
    /*
     * 6x6 image, column-major (flat p -> row p % 6, column p / 6), relative runs.
     * Row 1 of a: "1 2 3 1": pixels 1,2 then 3+3=6 -> (r1,c0), (r2,c0), (r0,c1).
     * Row 2 of a: "20 3": pixels 20,21,22 -> (r2,c3), (r3,c3), (r4,c3). Union of both rows.
     */
    write_text("siim/train-rle.csv", "ImageId, EncodedPixels\n"
                                     "a, 1 2 3 1\n"
                                     "b, -1\n"
                                     "a, 20 3\n");
    char dir[1024];
    path_of(dir, sizeof dir, "siim");
    dataset_t *ds = NULL;
    TH_EQ_INT(dataset_open(dir, NULL, &ds), 0);
    if (!ds)
        return;
    TH_EQ_INT(dataset_format(ds), DATASET_FORMAT_SIIM);
    TH_EQ_INT(dataset_count(ds), 2);
    TH_EQ_INT(dataset_label(ds, 0), 1);
    TH_EQ_INT(dataset_label(ds, 1), 0);
    uint8_t m[36];
    TH_EQ_INT(dataset_mask(ds, 0, 6, m), 0);
    uint8_t want[36] = {0};
    int on[6][2] = {{1, 0}, {2, 0}, {0, 1}, {2, 3}, {3, 3}, {4, 3}};
    for (int k = 0; k < 6; k++)
        want[on[k][0] * 6 + on[k][1]] = 1;
    TH_EQ_INT(memcmp(m, want, 36), 0);
    /* 6 -> 3 with the HALF rule: cell (0,0) holds (1,0) and (0,1) of its 2x2 block = 1/2 -> on;
       cell (1,0) holds (2,0) only -> off; cell (1,1) holds (2,3),(3,3) -> on. ANY: (1,0) on. */
    uint8_t m3[9];
    TH_EQ_INT(dataset_mask(ds, 0, 3, m3), 0);
    TH_EQ_INT(m3[0], 1);
    TH_EQ_INT(m3[3], 0);
    TH_EQ_INT(m3[4], 1);
    TH_EQ_INT(m3[1], 0);
    dataset_destroy(ds);
    dataset_options_t opt;
    dataset_options_default(&opt);
    opt.mask_rule = DATASET_MASK_ANY;
    TH_EQ_INT(dataset_open(dir, &opt, &ds), 0);
    if (!ds)
        return;
    TH_EQ_INT(dataset_mask(ds, 0, 3, m3), 0);
    TH_EQ_INT(m3[3], 1);
    TH_EQ_INT(m3[1], 0);
    TH_EQ_INT(m3[6], 0); /* cell (2,0): rows 4-5, columns 0-1 are empty */
    TH_EQ_INT(m3[7], 1); /* (4,3) -> cell (2,1), 1/4 of it */
    dataset_destroy(ds);

    /* Against Kaggle's rle2mask (reshape(W, H).T) in numpy. */
    if (!th_python_has("numpy"))
        TH_SKIP("numpy not available for %s", th_python());
    char csv[1024], out[1024], args[3072];
    path_of(csv, sizeof csv, "siim/train-rle.csv");
    path_of(out, sizeof out, "siim/ref.u8");
    snprintf(args, sizeof args, "siim %s 6 6 %s", csv, out);
    TH_EQ_INT(run_python(args), 0);
    uint8_t ref[72];
    FILE *fp = fopen(out, "rb");
    size_t got = fp ? fread(ref, 1, sizeof ref, fp) : 0;
    if (fp)
        fclose(fp);
    TH_EQ_INT(got, 72);
    TH_EQ_INT(memcmp(ref, want, 36), 0);
}

static void test_maskdir_and_splits(void)
{
    make_dir("mdir");
    make_dir("mdir/images");
    make_dir("mdir/masks");
    write_png("mdir/images/p.png", 8, 8);
    write_png("mdir/images/n.png", 8, 8);
    uint8_t mp[64] = {0}, mn[64] = {0};
    for (int y = 2; y < 6; y++)
        for (int x = 4; x < 8; x++)
            mp[y * 8 + x] = 255;
    char path[1024], dir[1024];
    path_of(path, sizeof path, "mdir/masks/p.png");
    png_write_gray8(path, 8, 8, mp);
    path_of(path, sizeof path, "mdir/masks/n.png");
    png_write_gray8(path, 8, 8, mn);
    write_text("mdir/splits.csv", "Image_ID,Split\nn,test\np,train\n");
    path_of(dir, sizeof dir, "mdir");
    dataset_t *ds = NULL;
    TH_EQ_INT(dataset_open(dir, NULL, &ds), 0);
    if (!ds)
        return;
    TH_EQ_INT(dataset_format(ds), DATASET_FORMAT_MASKDIR);
    TH_EQ_INT(dataset_count(ds), 2);
    int ip = dataset_find(ds, "p"), in = dataset_find(ds, "n");
    TH_CHECK(ip >= 0 && in >= 0, "ids not found");
    if (ip < 0 || in < 0) {
        dataset_destroy(ds);
        return;
    }
    TH_EQ_INT(dataset_label(ds, ip), 1);
    TH_EQ_INT(dataset_label(ds, in), 0);
    TH_EQ_INT(dataset_split(ds, ip), DATASET_SPLIT_TRAIN);
    TH_EQ_INT(dataset_split(ds, in), DATASET_SPLIT_TEST);
    uint8_t m[16];
    TH_EQ_INT(dataset_mask(ds, ip, 4, m), 0); /* 8 -> 4: rows 1..2, columns 2..3 */
    int sum = 0;
    for (int i = 0; i < 16; i++)
        sum += m[i];
    TH_EQ_INT(sum, 4);
    TH_EQ_INT(m[1 * 4 + 2], 1);
    TH_EQ_INT(m[2 * 4 + 3], 1);
    char img[1024];
    TH_EQ_INT(dataset_image_path(ds, ip, img, sizeof img), 0);
    TH_CHECK(strstr(img, "mdir/images/p.png") != NULL, "image path %s", img);
    dataset_destroy(ds);
}

static void test_class_filter(void)
{
    make_dir("cls");
    write_text("cls/labels.csv", "patientId,x,y,width,height,Target\n"
                                 "n,,,,,0\nq,,,,,0\no,10,10,20,20,1\no,50,50,20,20,1\n");
    write_text("cls/classes.csv", "patientId,class\n"
                                  "n,Normal\nq,No Lung Opacity / Not Normal\no,Lung Opacity\no,Lung Opacity\n");
    char dir[1024], cls[1024];
    path_of(dir, sizeof dir, "cls");
    path_of(cls, sizeof cls, "cls/classes.csv");
    dataset_options_t opt;
    dataset_options_default(&opt);
    opt.source_size = 1024;
    opt.verify = 0;
    opt.class_info = cls;
    dataset_t *ds = NULL;
    TH_EQ_INT(dataset_open(dir, &opt, &ds), 0);
    if (!ds)
        return;
    TH_EQ_INT(dataset_count(ds), 2);
    TH_EQ_INT(dataset_filtered(ds), 1);
    TH_EQ_INT(dataset_find(ds, "q"), -1);
    TH_CHECK(dataset_find(ds, "o") >= 0, "o missing");
    dataset_destroy(ds);
}

/*
 * One bad-input case: opening `dir` fails with `want_rc` and a message holding
 * both needles (file:line and the problem); with skip_bad it succeeds, keeps
 * `left` entries, counts `skipped` and says so.
 */
static void expect_bad(const char *rel, dataset_options_t opt, int want_rc, const char *where,
                       const char *problem, int skipped, int left)
{
    char dir[1024];
    path_of(dir, sizeof dir, rel);
    dataset_t *ds = NULL;
    capture_begin();
    int rc = dataset_open(dir, &opt, &ds);
    const char *msg = capture_end();
    TH_CHECK(rc == want_rc, "%s: rc %d, expected %d", rel, rc, want_rc);
    TH_CHECK(ds == NULL, "%s: data set returned on error", rel);
    TH_CHECK(strstr(msg, where) && strstr(msg, problem), "%s: message lacks '%s' / '%s':\n%s", rel, where,
             problem, msg);
    dataset_destroy(ds);
    opt.skip_bad = 1;
    capture_begin();
    rc = dataset_open(dir, &opt, &ds);
    msg = capture_end();
    TH_CHECK(rc == 0, "%s: skip_bad open failed (%d):\n%s", rel, rc, msg);
    if (!ds)
        return;
    TH_CHECK(dataset_skipped(ds) == skipped, "%s: skipped %d, expected %d", rel, dataset_skipped(ds), skipped);
    TH_CHECK(dataset_count(ds) == left, "%s: %d entries, expected %d", rel, dataset_count(ds), left);
    TH_CHECK(strstr(msg, "skipped") && strstr(msg, problem), "%s: skip not reported:\n%s", rel, msg);
    dataset_destroy(ds);
}

/* An RSNA directory with 64x64 images a, b, c and the given labels rows. */
static void rsna_case(const char *rel, const char *rows, int with_c)
{
    char sub[256], text[2048];
    make_dir(rel);
    snprintf(sub, sizeof sub, "%s/images", rel);
    make_dir(sub);
    const char *ids[3] = {"a", "b", "c"};
    for (int i = 0; i < 2 + with_c; i++) {
        snprintf(sub, sizeof sub, "%s/images/%s.png", rel, ids[i]);
        write_png(sub, 64, 64);
    }
    snprintf(sub, sizeof sub, "%s/labels.csv", rel);
    snprintf(text, sizeof text, "patientId,x,y,width,height,Target\na,10,10,20,20,1\nb,,,,,0\n%s", rows);
    write_text(sub, text);
}

static void test_bad_inputs(void)
{
    dataset_options_t opt;
    dataset_options_default(&opt);

    rsna_case("bad_missing", "c,5,5,10,10,1\n", 0);
    expect_bad("bad_missing", opt, SC_ERR_FORMAT, "labels.csv:4:", "no image file for 'c'", 1, 2);

    rsna_case("bad_notpng", "c,,,,,0\n", 0);
    write_text("bad_notpng/images/c.png", "GIF89a this is not a PNG\n");
    expect_bad("bad_notpng", opt, SC_ERR_FORMAT, "labels.csv:4:", "not a PNG", 1, 2);

    rsna_case("bad_truncated", "c,,,,,0\n", 0);
    {
        /* A PNG whose header is intact but whose pixels are cut: found by a full decode. */
        char path[1024];
        path_of(path, sizeof path, "bad_truncated/images/c.png");
        uint8_t px[64 * 64];
        for (int i = 0; i < 64 * 64; i++)
            px[i] = (uint8_t)(i * 131 % 256);
        png_write_gray8(path, 64, 64, px);
        long n = file_size(path);
        TH_EQ_INT(truncate(path, n / 2), 0);
        dataset_options_t full = opt;
        full.verify = 2;
        expect_bad("bad_truncated", full, SC_ERR_FORMAT, "labels.csv:4:", "cannot be decoded", 1, 2);
    }

    rsna_case("bad_fields", "c,5,5,10\n", 1);
    expect_bad("bad_fields", opt, SC_ERR_FORMAT, "labels.csv:4:", "too few fields", 1, 2);

    rsna_case("bad_number", "c,5,5x,10,10,1\n", 1);
    expect_bad("bad_number", opt, SC_ERR_FORMAT, "labels.csv:4:", "is not a number", 1, 2);

    rsna_case("bad_outside", "c,60,5,10,10,1\n", 1); /* 60 + 10 > 64 */
    expect_bad("bad_outside", opt, SC_ERR_FORMAT, "labels.csv:4:", "outside the 64x64 image", 1, 2);

    rsna_case("bad_duplicate", "c,,,,,0\nb,,,,,0\n", 1);
    expect_bad("bad_duplicate", opt, SC_ERR_FORMAT, "labels.csv:5:", "duplicate patientId 'b'", 1, 2);

    rsna_case("bad_conflict", "c,,,,,0\na,,,,,0\n", 1);
    expect_bad("bad_conflict", opt, SC_ERR_FORMAT, "labels.csv:5:", "different Target", 1, 2);

    rsna_case("bad_split", "c,,,,,0\n", 1);
    write_text("bad_split/splits.csv", "Image_ID,Split\na,train\nb,tset\nc,val\n");
    expect_bad("bad_split", opt, SC_ERR_FORMAT, "splits.csv:3:", "unknown split 'tset'", 1, 2);

    rsna_case("bad_split_dup", "c,,,,,0\n", 1);
    write_text("bad_split_dup/splits.csv", "Image_ID,Split\na,train\nb,val\na,train\nc,test\n");
    expect_bad("bad_split_dup", opt, SC_ERR_FORMAT, "splits.csv:4:", "duplicate Image_ID 'a'", 1, 2);

    /* SIIM: a run past the end of an 8x8 image (60 + 10 > 64), an odd RLE, a duplicate -1. */
    make_dir("bad_rle");
    make_dir("bad_rle/images");
    write_png("bad_rle/images/a.png", 8, 8);
    write_png("bad_rle/images/b.png", 8, 8);
    write_png("bad_rle/images/c.png", 8, 8);
    write_text("bad_rle/train-rle.csv", "ImageId, EncodedPixels\na, 3 4\nb, -1\nc, 1 2 57 10\n");
    expect_bad("bad_rle", opt, SC_ERR_FORMAT, "train-rle.csv:4:", "runs past the end", 1, 2);
    write_text("bad_rle/train-rle.csv", "ImageId, EncodedPixels\na, 3 4 5\nb, -1\nc, 1 2\n");
    expect_bad("bad_rle", opt, SC_ERR_FORMAT, "train-rle.csv:2:", "odd number of values", 1, 2);
    write_text("bad_rle/train-rle.csv", "ImageId, EncodedPixels\na, 3 4\nb, -1\nc, 1 2\nb, -1\n");
    expect_bad("bad_rle", opt, SC_ERR_FORMAT, "train-rle.csv:5:", "duplicate ImageId 'b'", 1, 2);

    /* Mask directory: an image without its mask. */
    make_dir("bad_mdir");
    make_dir("bad_mdir/images");
    make_dir("bad_mdir/masks");
    write_png("bad_mdir/images/a.png", 8, 8);
    write_png("bad_mdir/images/b.png", 8, 8);
    write_png("bad_mdir/masks/a.png", 8, 8);
    expect_bad("bad_mdir", opt, SC_ERR_FORMAT, "masks/b.png", "cannot open", 1, 1);
}

/* Windows line ends and a byte order mark (spreadsheet exports) read the same. */
static void test_crlf_and_bom(void)
{
    make_dir("crlf");
    write_text("crlf/labels.csv", "\xEF\xBB\xBFpatientId,x,y,width,height,Target\r\n"
                                  "a,0,0,512,1024,1\r\nb,,,,,0\r\n");
    char dir[1024];
    path_of(dir, sizeof dir, "crlf");
    dataset_options_t opt;
    dataset_options_default(&opt);
    opt.source_size = 1024;
    opt.verify = 0;
    dataset_t *ds = NULL;
    TH_EQ_INT(dataset_open(dir, &opt, &ds), 0);
    if (!ds)
        return;
    TH_EQ_INT(dataset_count(ds), 2);
    TH_EQ_INT(dataset_label(ds, 1), 0);
    /* Left half (x < 512) in the 1024 frame at R = 4, paper mapping: x1 = int(4*512/1023) = 2. */
    uint8_t m[16];
    TH_EQ_INT(dataset_mask(ds, 0, 4, m), 0);
    TH_EQ_INT(m[0], 1);
    TH_EQ_INT(m[2], 1);
    TH_EQ_INT(m[3], 0);
    TH_EQ_INT(m[15], 0);
    dataset_destroy(ds);
}

static void test_open_errors(void)
{
    dataset_t *ds = NULL;
    char dir[1024];
    capture_begin();
    int rc = dataset_open("no/such/dir", NULL, &ds);
    const char *msg = capture_end();
    TH_EQ_INT(rc, SC_ERR_IO);
    TH_CHECK(strstr(msg, "no/such/dir"), "message: %s", msg);
    make_dir("empty_ds");
    path_of(dir, sizeof dir, "empty_ds");
    capture_begin();
    rc = dataset_open(dir, NULL, &ds);
    msg = capture_end();
    TH_EQ_INT(rc, SC_ERR_IO);
    TH_CHECK(strstr(msg, "labels.csv") && strstr(msg, "train-rle.csv"), "message: %s", msg);
    make_dir("bad_header");
    write_text("bad_header/labels.csv", "id,x,y,w,h,label\na,1,2,3,4,1\n");
    path_of(dir, sizeof dir, "bad_header");
    capture_begin();
    rc = dataset_open(dir, NULL, &ds);
    msg = capture_end();
    TH_EQ_INT(rc, SC_ERR_FORMAT);
    TH_CHECK(strstr(msg, "labels.csv:1:") && strstr(msg, "header"), "message: %s", msg);
}

int main(void)
{
    if (th_scratch_make(tmpdir, sizeof tmpdir, "tmp-test-io-") < 0) {
        const char *build = getenv("BUILD");
        printf("cannot create a temporary directory under %s\n", build && *build ? build : "build");
        return 2;
    }
    TH_RUN(test_png_gray8_roundtrip_and_pil);
    TH_RUN(test_png_rgb8_roundtrip);
    TH_RUN(test_png_layouts_vs_pil);
    TH_RUN(test_png_bad_files);
    TH_RUN(test_resize_vs_torch_numpy);
    TH_RUN(test_resize_by_hand);
    TH_RUN(test_normalize);
    TH_RUN(test_image_loader);
    TH_RUN(test_rsna_boxes_roundtrip);
    TH_RUN(test_siim_rle_roundtrip);
    TH_RUN(test_maskdir_and_splits);
    TH_RUN(test_class_filter);
    TH_RUN(test_bad_inputs);
    TH_RUN(test_crlf_and_bom);
    TH_RUN(test_open_errors);
    int rc = th_report();
    th_scratch_end(tmpdir, rc, "inputs");
    return rc;
}
