/*
 * test_formats.c - image formats and data set kinds as shipped: the phantom in
 * DICOM (every transfer syntax, 8/12/16 bits, both photometric
 * interpretations), JPEG and PNG; each data set kind's annotation files; bad
 * input; and the cross-checks against pydicom, DCMTK's tools, PIL and a Python
 * reading of the annotation files (tests/ref/formats_ref.py).
 *
 * Also a small command-line tool for that reference script:
 *   test_formats --decode FILE voi|full|minmax OUT   "w h\n" then w*h float32 (imread_gray)
 *   test_formats --masks DIR KIND RES OUT [K]         per entry "id label\n" then RES*RES bytes
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/dataset.h"
#include "io/dicom.h"
#include "io/imread.h"
#include "io/jpeg.h"
#include "io/png.h"
#include "phantom/phantom.h"
#include "sc.h"
#include "testhelp.h"

#define N_IMG 8
#define S_IMG 96

static char tmpdir[512];

/* --------------------------------------------------------------- CLI modes */

static int cli_decode(const char *file, const char *window, const char *out)
{
    imread_options_t opt;
    imread_options_default(&opt);
    if (dicom_window_parse(window, &opt.dicom_window) < 0)
        return 2;
    int w = 0, h = 0;
    float *px = NULL;
    char why[512] = "";
    int rc = imread_gray_quiet(file, &opt, &w, &h, &px, why, sizeof why);
    if (rc < 0) {
        fprintf(stderr, "error %d: %s\n", rc, why);
        return 1;
    }
    FILE *fp = fopen(out, "wb");
    if (!fp)
        return 2;
    fprintf(fp, "%d %d\n", w, h);
    fwrite(px, sizeof(float), (size_t)w * h, fp);
    fclose(fp);
    sc_free(px);
    return 0;
}

static int cli_masks(const char *dir, const char *kind, int res, const char *out, int k)
{
    dataset_options_t opt;
    dataset_options_default(&opt);
    if (dataset_format_parse(kind, &opt.format) < 0)
        return 2;
    opt.min_readers = k;
    dataset_t *ds = NULL;
    if (dataset_open(dir, &opt, &ds) < 0)
        return 1;
    FILE *fp = fopen(out, "wb");
    uint8_t *mask = malloc((size_t)res * res);
    int rc = fp && mask ? 0 : 2;
    for (int i = 0; i < dataset_count(ds) && !rc; i++) {
        rc = dataset_mask(ds, i, res, mask) < 0;
        fprintf(fp, "%s %d\n", dataset_id(ds, i), dataset_label(ds, i));
        fwrite(mask, 1, (size_t)res * res, fp);
    }
    if (fp)
        fclose(fp);
    free(mask);
    dataset_destroy(ds);
    return rc;
}

/* ----------------------------------------------------------------- helpers */

static void path_of(char *buf, size_t size, const char *rel)
{
    snprintf(buf, size, "%s/%s", tmpdir, rel);
}

/* The phantom (N_IMG images of S_IMG px, seed 5) in a layout; returns 0 on success. */
static int write_phantom(const char *rel, phantom_format_t format, phantom_image_t image, int syntax, int bits,
                         int mono1)
{
    phantom_config_t cfg;
    phantom_config_default(&cfg);
    cfg.size = S_IMG;
    cfg.seed = 5;
    cfg.files.image = image;
    cfg.files.dicom_syntax = syntax;
    cfg.files.dicom_bits = bits;
    cfg.files.dicom_monochrome1 = mono1;
    char dir[1024];
    path_of(dir, sizeof dir, rel);
    return phantom_write_dataset(&cfg, dir, format, N_IMG);
}

/* Stderr into a file while fn runs: the messages a user would see. */
static char captured[8192];
static int saved_fd = -1;
static void capture_begin(void)
{
    char path[1024];
    path_of(path, sizeof path, "stderr.txt");
    fflush(stderr);
    saved_fd = dup(2);
    FILE *fp = freopen(path, "w", stderr);
    (void)fp;
}
static const char *capture_end(void)
{
    char path[1024];
    path_of(path, sizeof path, "stderr.txt");
    fflush(stderr);
    dup2(saved_fd, 2);
    close(saved_fd);
    FILE *fp = fopen(path, "r");
    size_t n = fp ? fread(captured, 1, sizeof captured - 1, fp) : 0;
    captured[n] = '\0';
    if (fp)
        fclose(fp);
    return captured;
}

/* ------------------------------------------------------------------- tests */

/* Every lossless DICOM variant decodes to exactly the PNG phantom's pixels. */
static void test_dicom_lossless_equals_png(void)
{
    static const struct {
        int syntax, bits, mono1;
    } cases[] = {
        {DICOM_SYNTAX_EXPLICIT_LE, 8, 0},    {DICOM_SYNTAX_IMPLICIT_LE, 8, 1},
        {DICOM_SYNTAX_EXPLICIT_LE, 12, 0},   {DICOM_SYNTAX_IMPLICIT_LE, 16, 1},
        {DICOM_SYNTAX_JPEG_LOSSLESS, 8, 0},  {DICOM_SYNTAX_JPEG_LOSSLESS, 16, 1},
        {DICOM_SYNTAX_JPEG_LOSSLESS, 12, 0}, {DICOM_SYNTAX_JPEG_LS, 8, 1},
        {DICOM_SYNTAX_JPEG_LS, 12, 1},       {DICOM_SYNTAX_JPEG_LS, 16, 0},
        {DICOM_SYNTAX_RLE, 8, 0},            {DICOM_SYNTAX_RLE, 16, 1},
    };
    TH_EQ_INT(write_phantom("ref-png", PHANTOM_FORMAT_RSNA, PHANTOM_IMAGE_PNG, 0, 8, 0), 0);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char rel[128];
        snprintf(rel, sizeof rel, "dcm-%s-%d-%d", dicom_syntax_name(cases[c].syntax), cases[c].bits,
                 cases[c].mono1);
        TH_EQ_INT(write_phantom(rel, PHANTOM_FORMAT_RSNA, PHANTOM_IMAGE_DICOM, cases[c].syntax, cases[c].bits,
                                cases[c].mono1),
                  0);
        long differ = 0;
        for (int i = 0; i < N_IMG; i++) {
            char id[32], a[1024], b[1024];
            phantom_image_id((uint32_t)i, id, sizeof id);
            snprintf(a, sizeof a, "%s/ref-png/images/%s.png", tmpdir, id);
            snprintf(b, sizeof b, "%s/%s/stage_2_train_images/%s.dcm", tmpdir, rel, id);
            int w1, h1, w2, h2;
            float *p1 = NULL, *p2 = NULL;
            imread_format_t f;
            char why[256];
            TH_CHECK(imread_detect(b, &f, why, sizeof why) == 0 && f == IMREAD_FORMAT_DICOM, "%s: not DICOM", b);
            if (imread_gray(a, NULL, &w1, &h1, &p1) == 0 && imread_gray(b, NULL, &w2, &h2, &p2) == 0 && w1 == w2 &&
                h1 == h2) {
                for (int p = 0; p < w1 * h1; p++)
                    differ += p1[p] != p2[p];
            } else {
                TH_CHECK(0, "%s: cannot read %s or %s", rel, a, b);
            }
            sc_free(p1);
            sc_free(p2);
        }
        TH_CHECK(differ == 0, "%s: %ld pixels differ from the PNG phantom", rel, differ);
    }
}

/* Lossy files (JPEG baseline DICOM, JPEG): close to the PNG; how close is printed. */
static void test_lossy_close(void)
{
    TH_EQ_INT(write_phantom("dcm-jpeg-baseline", PHANTOM_FORMAT_RSNA, PHANTOM_IMAGE_DICOM,
                            DICOM_SYNTAX_JPEG_BASELINE, 8, 0),
              0);
    TH_EQ_INT(write_phantom("jpeg", PHANTOM_FORMAT_RSNA, PHANTOM_IMAGE_JPEG, 0, 8, 0), 0);
    for (int k = 0; k < 2; k++) {
        double sum = 0, max = 0;
        long n = 0;
        for (int i = 0; i < N_IMG; i++) {
            char id[32], a[1024], b[1024];
            phantom_image_id((uint32_t)i, id, sizeof id);
            snprintf(a, sizeof a, "%s/ref-png/images/%s.png", tmpdir, id);
            snprintf(b, sizeof b, k ? "%s/jpeg/images/%s.jpg" : "%s/dcm-jpeg-baseline/stage_2_train_images/%s.dcm",
                     tmpdir, id);
            int w1, h1, w2, h2;
            float *p1 = NULL, *p2 = NULL;
            if (imread_gray(a, NULL, &w1, &h1, &p1) == 0 && imread_gray(b, NULL, &w2, &h2, &p2) == 0) {
                for (int p = 0; p < w1 * h1; p++) {
                    double d = fabs(p1[p] - p2[p]);
                    sum += d;
                    max = d > max ? d : max;
                    n++;
                }
            } else {
                TH_CHECK(0, "cannot read %s or %s", a, b);
            }
            sc_free(p1);
            sc_free(p2);
        }
        printf("    %s (quality 95) vs PNG: mean |diff| %.3f, max %.0f gray levels\n",
               k ? "JPEG file" : "DICOM JPEG baseline", n ? sum / n : 0.0, max);
        TH_CHECK(n > 0 && sum / n < 6 && max < 48, "lossy decode too far from the PNG (mean %.3f, max %.0f)",
                 n ? sum / n : 0.0, max);
        TH_CHECK(max > 0, "a lossy file decoded without any loss: the JPEG path was not taken");
    }
}

/* The same phantom in PNG and DICOM layouts gives the same entries, splits and masks. */
static void test_layouts_same_dataset(void)
{
    static const struct {
        const char *a, *b;
        phantom_format_t format;
        int syntax;
    } pairs[] = {
        {"ref-png", "dcm-explicit-8-0", PHANTOM_FORMAT_RSNA, DICOM_SYNTAX_EXPLICIT_LE},
        {"siim-png", "siim-dcm", PHANTOM_FORMAT_SIIM, DICOM_SYNTAX_JPEG_LS},
    };
    TH_EQ_INT(write_phantom("siim-png", PHANTOM_FORMAT_SIIM, PHANTOM_IMAGE_PNG, 0, 8, 0), 0);
    TH_EQ_INT(write_phantom("siim-dcm", PHANTOM_FORMAT_SIIM, PHANTOM_IMAGE_DICOM, DICOM_SYNTAX_JPEG_LS, 12, 1), 0);
    for (int k = 0; k < 2; k++) {
        char da[1024], db[1024];
        path_of(da, sizeof da, pairs[k].a);
        path_of(db, sizeof db, pairs[k].b);
        dataset_t *a = NULL, *b = NULL;
        TH_EQ_INT(dataset_open(da, NULL, &a), 0);
        TH_EQ_INT(dataset_open(db, NULL, &b), 0);
        if (!a || !b) {
            dataset_destroy(a);
            dataset_destroy(b);
            continue;
        }
        TH_EQ_INT(dataset_format(b), pairs[k].format == PHANTOM_FORMAT_RSNA ? DATASET_FORMAT_RSNA : DATASET_FORMAT_SIIM);
        TH_EQ_INT(dataset_count(a), dataset_count(b));
        uint8_t ma[64 * 64], mb[64 * 64];
        int differ = 0;
        for (int i = 0; i < dataset_count(a) && i < dataset_count(b); i++) {
            differ += dataset_label(a, i) != dataset_label(b, i) || dataset_split(a, i) != dataset_split(b, i);
            if (dataset_mask(a, i, 64, ma) == 0 && dataset_mask(b, i, 64, mb) == 0)
                differ += memcmp(ma, mb, sizeof ma) != 0;
            else
                differ++;
            char path[4096];
            if (dataset_image_path(b, i, path, sizeof path) == 0)
                TH_CHECK(strstr(path, ".dcm"), "%s: image path '%s' is not the DICOM", pairs[k].b, path);
        }
        TH_CHECK(differ == 0, "%s vs %s: %d entries differ", pairs[k].a, pairs[k].b, differ);
        dataset_destroy(a);
        dataset_destroy(b);
    }
}

/* CheXlocalize: the COCO RLE written by the phantom decodes to the phantom's own masks. */
static void test_chexlocalize_rle(void)
{
    TH_EQ_INT(write_phantom("chex", PHANTOM_FORMAT_CHEXLOCALIZE, PHANTOM_IMAGE_JPEG, 0, 8, 0), 0);
    char dir[1024];
    path_of(dir, sizeof dir, "chex");
    dataset_options_t opt;
    dataset_options_default(&opt);
    opt.mask_rule = DATASET_MASK_ANY; /* at full resolution: the pixel mask itself */
    dataset_t *ds = NULL;
    TH_EQ_INT(dataset_open(dir, &opt, &ds), 0);
    if (!ds)
        return;
    TH_EQ_INT(dataset_count(ds), N_IMG);
    phantom_config_t cfg;
    phantom_config_default(&cfg);
    cfg.size = S_IMG;
    cfg.seed = 5;
    phantom_t *ph = phantom_create(&cfg);
    uint8_t img[S_IMG * S_IMG], bits[S_IMG * S_IMG], mask[S_IMG * S_IMG];
    int differ = 0, positives = 0;
    for (int i = 0; i < N_IMG && ph; i++) {
        phantom_info_t info;
        phantom_render(ph, (uint32_t)i, img, &info, bits, NULL);
        char id[96];
        phantom_layout_id(&cfg, PHANTOM_FORMAT_CHEXLOCALIZE, (uint32_t)i, id, sizeof id);
        int e = dataset_find(ds, id);
        TH_CHECK(e >= 0, "id %s missing", id);
        if (e < 0)
            continue;
        TH_EQ_INT(dataset_label(ds, e), info.label);
        TH_EQ_INT(dataset_split(ds, e), DATASET_SPLIT_TEST);
        positives += info.label;
        dataset_mask(ds, e, S_IMG, mask);
        for (int p = 0; p < S_IMG * S_IMG; p++)
            differ += mask[p] != (bits[p] != 0);
    }
    TH_CHECK(differ == 0, "%d mask pixels differ from the phantom's opacities", differ);
    TH_CHECK(positives > 0, "no positive image in the sample");
    phantom_destroy(ph);
    dataset_destroy(ds);
}

/* VinDr: agreement of k readers; nested masks, labels as documented. */
static void test_vindr_readers(void)
{
    TH_EQ_INT(write_phantom("vindr", PHANTOM_FORMAT_VINDR, PHANTOM_IMAGE_DICOM, DICOM_SYNTAX_RLE, 8, 0), 0);
    char dir[1024];
    path_of(dir, sizeof dir, "vindr");
    dataset_t *ds[3] = {NULL, NULL, NULL};
    for (int k = 0; k < 3; k++) {
        dataset_options_t opt;
        dataset_options_default(&opt);
        opt.min_readers = k + 1;
        TH_EQ_INT(dataset_open(dir, &opt, &ds[k]), 0);
    }
    if (ds[0] && ds[1] && ds[2]) {
        TH_EQ_INT(dataset_count(ds[0]), N_IMG);
        int not_nested = 0, shrunk = 0;
        uint8_t m[3][48 * 48];
        for (int i = 0; i < N_IMG; i++) {
            for (int k = 0; k < 3; k++)
                dataset_mask(ds[k], i, 48, m[k]);
            /* every positive phantom image has readers R1 and R2 on all boxes: labels equal for k <= 3 */
            TH_EQ_INT(dataset_label(ds[2], i), dataset_label(ds[0], i));
            for (int p = 0; p < 48 * 48; p++) {
                not_nested += (m[2][p] && !m[1][p]) || (m[1][p] && !m[0][p]);
                shrunk += m[0][p] && !m[1][p];
            }
        }
        TH_CHECK(not_nested == 0, "%d cells break mask(k=3) <= mask(k=2) <= mask(k=1)", not_nested);
        TH_CHECK(shrunk > 0, "requiring 2 readers removed no cell (R2's larger boxes should)");
    }
    for (int k = 0; k < 3; k++)
        dataset_destroy(ds[k]);
}

static void write_file(const char *rel, const char *text)
{
    char path[1024];
    path_of(path, sizeof path, rel);
    FILE *fp = fopen(path, "w");
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
}

static void truncate_file(const char *path, double keep)
{
    struct stat st;
    if (stat(path, &st) == 0)
        TH_EQ_INT(truncate(path, (off_t)(st.st_size * keep)), 0);
}

/* Bad files: a clear error naming the file; with skip_bad skipped and counted. */
static void test_bad_input(void)
{
    char path[1024], why[512];
    int w, h;
    float *px = NULL;
    /* truncated DICOM (pixel data cut) */
    TH_EQ_INT(write_phantom("bad-dcm", PHANTOM_FORMAT_RSNA, PHANTOM_IMAGE_DICOM, DICOM_SYNTAX_EXPLICIT_LE, 16, 0), 0);
    snprintf(path, sizeof path, "%s/bad-dcm/stage_2_train_images/phantom-000001.dcm", tmpdir);
    truncate_file(path, 0.6);
    int rc = imread_gray_quiet(path, NULL, &w, &h, &px, why, sizeof why);
    TH_CHECK(rc == SC_ERR_FORMAT && (strstr(why, "truncated") || strstr(why, "premature")), "truncated DICOM: %d '%s'",
             rc, why);
    /* truncated compressed DICOM */
    TH_EQ_INT(write_phantom("bad-dcm-ls", PHANTOM_FORMAT_RSNA, PHANTOM_IMAGE_DICOM, DICOM_SYNTAX_JPEG_LS, 8, 0), 0);
    snprintf(path, sizeof path, "%s/bad-dcm-ls/stage_2_train_images/phantom-000002.dcm", tmpdir);
    truncate_file(path, 0.7);
    rc = imread_gray_quiet(path, NULL, &w, &h, &px, why, sizeof why);
    TH_CHECK(rc < 0 && why[0], "truncated JPEG-LS DICOM decoded: %d '%s'", rc, why);
    /* corrupt JPEG */
    snprintf(path, sizeof path, "%s/jpeg/images/phantom-000003.jpg", tmpdir);
    truncate_file(path, 0.5);
    rc = imread_gray_quiet(path, NULL, &w, &h, &px, why, sizeof why);
    TH_CHECK(rc == SC_ERR_FORMAT && strstr(why, "JPEG"), "corrupt JPEG: %d '%s'", rc, why);
    /* a JPEG whose header declares 60000 x 60000 pixels: refused before decoding */
    snprintf(path, sizeof path, "%s/jpeg/images/phantom-000004.jpg", tmpdir);
    {
        FILE *f = fopen(path, "r+b");
        unsigned char buf[4096];
        const size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        size_t sof = 0;
        for (size_t i = 2; i + 9 < n && !sof; i++)
            if (buf[i] == 0xFF && (buf[i + 1] == 0xC0 || buf[i + 1] == 0xC2))
                sof = i;
        TH_CHECK(sof > 0, "no SOF marker in %s", path);
        if (sof) {
            const unsigned char size[4] = {0xEA, 0x60, 0xEA, 0x60}; /* height, width 60000 */
            fseek(f, (long)sof + 5, SEEK_SET);
            fwrite(size, 1, sizeof size, f);
        }
        if (f)
            fclose(f);
    }
    TH_EQ_INT(jpeg_probe(path, &w, &h, why, sizeof why), 0);
    TH_CHECK(w == 60000 && h == 60000, "probe of the patched JPEG: %d x %d", w, h);
    rc = imread_gray_quiet(path, NULL, &w, &h, &px, why, sizeof why);
    TH_CHECK(rc == SC_ERR_FORMAT && strstr(why, "60000 x 60000") && !px,
             "60000 x 60000 JPEG: %d '%s'", rc, why);
    /* not an image */
    write_file("notimage.dat", "hello, this is text\n");
    path_of(path, sizeof path, "notimage.dat");
    rc = imread_gray_quiet(path, NULL, &w, &h, &px, why, sizeof why);
    TH_CHECK(rc == SC_ERR_FORMAT && strstr(why, "PNG, JPEG or DICOM"), "text file: %d '%s'", rc, why);
    sc_free(px);

    /* the data set names the file and the labels line; skip_bad counts it */
    dataset_options_t opt;
    dataset_options_default(&opt);
    opt.verify = 2;
    char dir[1024];
    path_of(dir, sizeof dir, "bad-dcm");
    dataset_t *ds = NULL;
    capture_begin();
    rc = dataset_open(dir, &opt, &ds);
    const char *msg = capture_end();
    TH_CHECK(rc < 0 && strstr(msg, "phantom-000001.dcm") && strstr(msg, "stage_2_train_labels.csv:"),
             "truncated DICOM in a data set: %d\n%s", rc, msg);
    dataset_destroy(ds);
    ds = NULL;
    opt.skip_bad = 1;
    capture_begin();
    rc = dataset_open(dir, &opt, &ds);
    capture_end();
    TH_CHECK(rc == 0 && ds && dataset_skipped(ds) == 1 && dataset_count(ds) == N_IMG - 1,
             "skip_bad: rc %d, skipped %d", rc, ds ? dataset_skipped(ds) : -1);
    dataset_destroy(ds);
    ds = NULL;

    /* a DICOM whose size differs from the annotation frame */
    dataset_options_default(&opt);
    opt.source_size = 1024;
    path_of(dir, sizeof dir, "dcm-explicit-8-0");
    capture_begin();
    rc = dataset_open(dir, &opt, &ds);
    msg = capture_end();
    TH_CHECK(rc == SC_ERR_FORMAT && strstr(msg, "is 96x96 but its annotations are in a 1024x1024 frame"),
             "frame mismatch: %d\n%s", rc, msg);
    dataset_destroy(ds);
    ds = NULL;

    /* malformed JSON: file, line and column */
    write_file("chex/gt_segmentations_val.json", "{\n  \"patient1_study1_view1_frontal\": {\"Airspace Opacity\": \n");
    path_of(dir, sizeof dir, "chex");
    capture_begin();
    rc = dataset_open(dir, NULL, &ds);
    msg = capture_end();
    TH_CHECK(rc == SC_ERR_FORMAT && strstr(msg, "gt_segmentations_val.json:3:") && strstr(msg, "malformed JSON"),
             "malformed JSON: %d\n%s", rc, msg);
    /* malformed RLE (a character outside COCO's alphabet; counts not covering the mask) */
    write_file("chex/gt_segmentations_val.json",
               "{\"patient000000_study1_view1_frontal\": {\"Airspace Opacity\": {\"size\": [96, 96], \"counts\": \"~~\"}},\n"
               " \"patient000001_study1_view1_frontal\": {\"Airspace Opacity\": {\"size\": [96, 96], \"counts\": \"3\"}},\n"
               " \"patient000002_study1_view1_frontal\": {\"Airspace Opacity\": {\"size\": [96, 96], \"counts\": [9216]}}}\n");
    capture_begin();
    rc = dataset_open(dir, NULL, &ds);
    msg = capture_end();
    TH_CHECK(rc == SC_ERR_FORMAT && strstr(msg, "invalid character"), "bad RLE: %d\n%s", rc, msg);
    dataset_options_default(&opt);
    opt.skip_bad = 1;
    capture_begin();
    rc = dataset_open(dir, &opt, &ds);
    msg = capture_end();
    TH_CHECK(rc == 0 && ds && dataset_skipped(ds) == 2 && dataset_count(ds) == 1 && strstr(msg, "cover"),
             "bad RLE with skip_bad: rc %d, skipped %d\n%s", rc, ds ? dataset_skipped(ds) : -1, msg);
    dataset_destroy(ds);
    ds = NULL;

    /* VinDr: a row with a missing field; a box for an image that does not exist */
    write_file("vindr/annotations_train.csv",
               "image_id,rad_id,class_name,x_min,y_min,x_max,y_max\n"
               "phantom-000000,R1,No finding,,,,\n"
               "phantom-000001,R1,Lung Opacity,10,10,20\n"
               "phantom-999999,R1,Lung Opacity,10,10,20,20\n");
    path_of(dir, sizeof dir, "vindr");
    capture_begin();
    rc = dataset_open(dir, NULL, &ds);
    msg = capture_end();
    TH_CHECK(rc == SC_ERR_FORMAT && strstr(msg, "annotations_train.csv:3:") && strstr(msg, "too few fields"),
             "missing field: %d\n%s", rc, msg);
    capture_begin();
    rc = dataset_open(dir, &opt, &ds);
    msg = capture_end();
    TH_CHECK(rc == 0 && ds && dataset_count(ds) == 1 && dataset_skipped(ds) == 2 &&
                 strstr(msg, "no image file for 'phantom-999999'"),
             "vindr skip_bad: rc %d\n%s", rc, msg);
    dataset_destroy(ds);
}

/* The Python references: pydicom, DCMTK's tools, PIL, the annotation files read in Python. */
static void test_python_reference(void)
{
    if (!th_python_has("numpy, pydicom, PIL"))
        TH_SKIP("python3-pydicom / python3-pil / numpy missing");
    char cmd[2048], self[1024];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    snprintf(cmd, sizeof cmd, "%s tests/ref/formats_ref.py '%s' '%s' '%s' 2>&1", th_python(), tmpdir, self,
             getenv("SALCHECK") ? getenv("SALCHECK") : "build/salcheck");
    FILE *p = popen(cmd, "r");
    char line[1024];
    int ok_line = 0;
    while (p && fgets(line, sizeof line, p)) {
        printf("    ref: %s", line);
        if (!strncmp(line, "REF OK", 6))
            ok_line = 1;
    }
    int rc = p ? pclose(p) : -1;
    TH_CHECK(rc == 0 && ok_line, "tests/ref/formats_ref.py failed (exit %d)", rc);
}

int main(int argc, char **argv)
{
    if (argc >= 5 && !strcmp(argv[1], "--decode"))
        return cli_decode(argv[2], argv[3], argv[4]);
    if (argc >= 6 && !strcmp(argv[1], "--masks"))
        return cli_masks(argv[2], argv[3], atoi(argv[4]), argv[5], argc >= 7 ? atoi(argv[6]) : 1);
    if (th_scratch_make(tmpdir, sizeof tmpdir, "tmp-test-formats-") < 0) {
        const char *build = getenv("BUILD");
        printf("cannot create a temporary directory under %s\n", build && *build ? build : "build");
        return 2;
    }
    TH_RUN(test_dicom_lossless_equals_png);
    TH_RUN(test_lossy_close);
    TH_RUN(test_layouts_same_dataset);
    TH_RUN(test_chexlocalize_rle);
    TH_RUN(test_vindr_readers);
    TH_RUN(test_python_reference);
    TH_RUN(test_bad_input);
    int rc = th_report();
    th_scratch_end(tmpdir, rc, "inputs");
    return rc;
}
