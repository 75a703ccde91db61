/*
 * phantom_layout.c - the phantom data set's files in the layouts of the public
 * data sets (see phantom.h): image files in PNG, JPEG or DICOM, and each
 * layout's annotation files. The pictures come from phantom_render.
 */
#include "phantom/phantom.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/dicom.h"
#include "io/jpeg.h"
#include "io/png.h"
#include "rng.h"
#include "sc.h"

#define PHANTOM_UID_ROOT "1.2.826.0.1.3680043.10.1149"
#define NIH_FRAME 1024

typedef struct strbuf {
    char *data;
    size_t len, cap;
} strbuf_t;

static int sb_printf(strbuf_t *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sb_printf(strbuf_t *sb, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = sb->cap - sb->len;
        int n = vsnprintf(sb->data ? sb->data + sb->len : NULL, sb->data ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return SC_ERR_ARG;
        if (sb->data && (size_t)n < room) {
            sb->len += (size_t)n;
            return SC_OK;
        }
        size_t cap = sb->cap ? sb->cap : 4096;
        while (cap < sb->len + (size_t)n + 1)
            cap *= 2;
        char *grown = realloc(sb->data, cap);
        if (!grown)
            return SC_ERR_NOMEM;
        sb->data = grown;
        sb->cap = cap;
    }
}

/* Relative column-major RLE (docs/methods.md section 2) of bit `bit` of mask [S][S]. */
static int rle_append(strbuf_t *sb, const uint8_t *mask, int S, int bit)
{
    int rc = SC_OK;
    long prev_end = 0, run_start = -1, total = (long)S * S;
    int first = 1;
    for (long p = 0; p <= total; p++) {
        int on = 0;
        if (p < total) {
            long x = p / S, y = p % S;
            on = (mask[(size_t)y * S + x] >> bit) & 1;
        }
        if (on && run_start < 0) {
            run_start = p;
        } else if (!on && run_start >= 0) {
            CHECK_RC(sb_printf(sb, first ? "%ld %ld" : " %ld %ld", run_start - prev_end, p - run_start));
            first = 0;
            prev_end = p;
            run_start = -1;
        }
    }
cleanup:
    return rc;
}

/*
 * COCO compressed RLE string of the union of the set bits of mask [S][S]:
 * counts alternate 0 and 1 runs (starting with 0) in column-major order; each
 * count from the third on is stored as the difference to the count two
 * before; values are written 5 bits per character (+48), 0x20 = more follow,
 * 0x10 of the last character = sign (the inverse of the reader in
 * io/dataset_chexlocalize.c). The value 44 is a backslash character, written
 * escaped inside the JSON string.
 */
static int coco_rle_emit(strbuf_t *sb, long count, long m, long prev[2])
{
    long x = m > 2 ? count - prev[m % 2] : count;
    prev[m % 2] = count;
    for (int more = 1; more;) {
        long c = x & 0x1f;
        x >>= 5; /* arithmetic shift: negative differences keep their sign */
        more = (c & 0x10) ? x != -1 : x != 0;
        if (more)
            c |= 0x20;
        /* the characters run from '0' to 'o': the JSON string escapes the one backslash among them */
        int rc = c + 48 == '\\' ? sb_printf(sb, "\\\\") : sb_printf(sb, "%c", (char)(c + 48));
        if (rc < 0)
            return rc;
    }
    return SC_OK;
}

/* mask NULL: an all-zero S x S mask. */
static int coco_rle_append(strbuf_t *sb, const uint8_t *mask, int S)
{
    int rc = SC_OK, cur = 0;
    long total = (long)S * S, count = 0, m = 0, prev[2] = {0, 0};
    for (long p = 0; p < total; p++) {
        int on = mask && mask[(size_t)(p % S) * S + (size_t)(p / S)] != 0;
        if (on == cur) {
            count++;
            continue;
        }
        CHECK_RC(coco_rle_emit(sb, count, m++, prev));
        cur = on;
        count = 1;
    }
    CHECK_RC(coco_rle_emit(sb, count, m++, prev));
cleanup:
    return rc;
}

void phantom_files_default(phantom_files_t *files)
{
    memset(files, 0, sizeof *files);
    files->image = PHANTOM_IMAGE_PNG;
    files->dicom_syntax = DICOM_SYNTAX_EXPLICIT_LE;
    files->dicom_bits = 8;
    files->jpeg_quality = 95;
}

static const char *const phantom_format_names[] = {"rsna", "siim", "nih", "vindr", "chexlocalize"};

int phantom_format_parse(const char *name, phantom_format_t *format)
{
    for (int k = 0; k < 5; k++)
        if (name && !strcmp(name, phantom_format_names[k])) {
            *format = (phantom_format_t)k;
            return SC_OK;
        }
    return SC_ERR_ARG;
}

const char *phantom_format_name(phantom_format_t format)
{
    return (int)format >= 0 && (int)format < 5 ? phantom_format_names[format] : "?";
}

void phantom_layout_id(const phantom_config_t *cfg, phantom_format_t format, uint32_t index, char *buf,
                       size_t size)
{
    if (format == PHANTOM_FORMAT_NIH)
        snprintf(buf, size, "%08u_000", index);
    else if (format == PHANTOM_FORMAT_CHEXLOCALIZE)
        snprintf(buf, size, "patient%06u_study1_view1_frontal", index);
    else if (format == PHANTOM_FORMAT_SIIM && cfg->files.image == PHANTOM_IMAGE_DICOM)
        snprintf(buf, size, PHANTOM_UID_ROOT ".4.%u", index + 1);
    else
        phantom_image_id(index, buf, size);
}

static const char *phantom_ext(const phantom_config_t *cfg, phantom_format_t format)
{
    switch (cfg->files.image) {
    case PHANTOM_IMAGE_JPEG: return "jpg";
    case PHANTOM_IMAGE_DICOM: return format == PHANTOM_FORMAT_VINDR ? "dicom" : "dcm";
    default: return "png";
    }
}

/* The image file of `index` under dir (parent folders not created). */
static int phantom_image_path(const phantom_config_t *cfg, phantom_format_t format, const char *dir,
                              uint32_t index, char *path, size_t size)
{
    char id[96];
    phantom_layout_id(cfg, format, index, id, sizeof id);
    const char *ext = phantom_ext(cfg, format);
    int dicom = cfg->files.image == PHANTOM_IMAGE_DICOM, n;
    if (format == PHANTOM_FORMAT_RSNA && dicom)
        n = snprintf(path, size, "%s/stage_2_train_images/%s.%s", dir, id, ext);
    else if (format == PHANTOM_FORMAT_SIIM && dicom)
        n = snprintf(path, size, "%s/dicom-images-train/" PHANTOM_UID_ROOT ".2.%u/" PHANTOM_UID_ROOT ".3.%u/%s.%s",
                     dir, index + 1, index + 1, id, ext);
    else if (format == PHANTOM_FORMAT_VINDR)
        n = snprintf(path, size, "%s/train/%s.%s", dir, id, ext);
    else if (format == PHANTOM_FORMAT_CHEXLOCALIZE)
        n = snprintf(path, size, "%s/images/patient%06u/study1/view1_frontal.%s", dir, index, ext);
    else
        n = snprintf(path, size, "%s/images/%s.%s", dir, id, ext);
    return n > 0 && (size_t)n < size ? SC_OK : SC_ERR_ARG;
}

/* Write the 8-bit picture img [S][S] as the configured file type (see phantom.h for DICOM). */
static int phantom_write_file(const phantom_config_t *cfg, const char *path, const char *id, const uint8_t *img,
                              uint16_t *stored)
{
    int S = cfg->size;
    const phantom_files_t *f = &cfg->files;
    if (f->image == PHANTOM_IMAGE_PNG)
        return png_write_gray8(path, S, S, img);
    if (f->image == PHANTOM_IMAGE_JPEG)
        return jpeg_write_gray8(path, S, S, img, f->jpeg_quality);
    dicom_write_options_t opt;
    memset(&opt, 0, sizeof opt);
    opt.syntax = (dicom_syntax_t)f->dicom_syntax;
    opt.bits_stored = f->dicom_bits;
    opt.monochrome1 = f->dicom_monochrome1;
    opt.patient_id = id;
    unsigned scale = f->dicom_bits == 16 ? 257 : f->dicom_bits == 12 ? 16 : 1;
    unsigned top = (1u << f->dicom_bits) - 1u;
    if (f->dicom_bits == 12) {
        /* m = s - 1024; LINEAR window c' = c - 0.5 = 1016, w' = w - 1 = 4080:
           out = ((16 v - 1024 - 1016) / 4080 + 0.5) * 255 = v */
        opt.has_rescale = 1;
        opt.slope = 1.0;
        opt.intercept = -1024.0;
        opt.has_window = 1;
        opt.center = 2040.5 - 1024.0;
        opt.width = 4081.0;
    }
    for (size_t p = 0; p < (size_t)S * S; p++) {
        unsigned s = img[p] * scale;
        if (f->dicom_monochrome1)
            s = f->dicom_bits == 12 ? 4080u - s : top - s; /* 12 bits: the window's range is 0..4080 */
        stored[p] = (uint16_t)s;
    }
    char uid[96];
    if (strncmp(id, PHANTOM_UID_ROOT, strlen(PHANTOM_UID_ROOT)) == 0)
        opt.sop_uid = id;
    else {
        snprintf(uid, sizeof uid, PHANTOM_UID_ROOT ".5.%llu", (unsigned long long)(rng_hash_str(id) % 1000000000000ULL + 1));
        opt.sop_uid = uid;
    }
    return dicom_write(path, &opt, S, S, stored);
}

/* Annotation rows of one image (see phantom_write_images). */
static int phantom_rows(strbuf_t *sb, const phantom_config_t *cfg, phantom_format_t format, uint32_t index,
                        const char *id, const phantom_info_t *info, const uint8_t *bits)
{
    int rc = SC_OK, S = cfg->size;
    switch (format) {
    case PHANTOM_FORMAT_RSNA:
        if (!info->label)
            CHECK_RC(sb_printf(sb, "%s,,,,,0\n", id));
        for (int k = 0; k < info->n_lesions; k++)
            CHECK_RC(sb_printf(sb, "%s,%d,%d,%d,%d,1\n", id, info->boxes[k].x, info->boxes[k].y, info->boxes[k].w,
                               info->boxes[k].h));
        break;
    case PHANTOM_FORMAT_SIIM:
        if (!info->label)
            CHECK_RC(sb_printf(sb, "%s, -1\n", id));
        for (int k = 0; k < info->n_lesions; k++) {
            CHECK_RC(sb_printf(sb, "%s, ", id));
            CHECK_RC(rle_append(sb, bits, S, k));
            CHECK_RC(sb_printf(sb, "\n"));
        }
        break;
    case PHANTOM_FORMAT_NIH: {
        const char *labels = info->label ? "Pneumonia" : index % 10 == 3 ? "Infiltration" : "No Finding";
        CHECK_RC(sb_printf(sb, "E %s.png,%s,0,%u,50,M,PA,%d,%d,0.143,0.143\n", id, labels, index + 1, NIH_FRAME,
                           NIH_FRAME));
        double f = (double)NIH_FRAME / S;
        for (int k = 0; k < info->n_lesions; k++)
            CHECK_RC(sb_printf(sb, "B %s.png,Pneumonia,%.6f,%.6f,%.6f,%.6f\n", id, info->boxes[k].x * f,
                               info->boxes[k].y * f, info->boxes[k].w * f, info->boxes[k].h * f));
        break;
    }
    case PHANTOM_FORMAT_VINDR:
        for (int r = 0; r < 3; r++) {
            int drawn = 0;
            for (int k = 0; k < info->n_lesions; k++) {
                if (r == 2 && k == 1)
                    continue; /* R3 misses the second opacity */
                const phantom_box_t *b = &info->boxes[k];
                int g = r == 1 ? 2 : 0; /* R2 draws each box 2 px larger on every side */
                int x0 = b->x - g < 0 ? 0 : b->x - g, y0 = b->y - g < 0 ? 0 : b->y - g;
                int x1 = b->x + b->w + g > S ? S : b->x + b->w + g, y1 = b->y + b->h + g > S ? S : b->y + b->h + g;
                CHECK_RC(sb_printf(sb, "%s,R%d,Lung Opacity,%d.0,%d.0,%d.0,%d.0\n", id, r + 1, x0, y0, x1, y1));
                drawn++;
            }
            if (!drawn)
                CHECK_RC(sb_printf(sb, "%s,R%d,No finding,,,,\n", id, r + 1));
        }
        break;
    case PHANTOM_FORMAT_CHEXLOCALIZE:
        CHECK_RC(sb_printf(sb, "  \"%s\": {\"Airspace Opacity\": {\"size\": [%d, %d], \"counts\": \"", id, S, S));
        CHECK_RC(coco_rle_append(sb, bits, S));
        CHECK_RC(sb_printf(sb, "\"}, \"Cardiomegaly\": {\"size\": [%d, %d], \"counts\": \"", S, S));
        CHECK_RC(coco_rle_append(sb, NULL, S)); /* no cardiomegaly anywhere */
        CHECK_RC(sb_printf(sb, "\"}},\n"));
        break;
    }
cleanup:
    return rc;
}

int phantom_make_dirs(const char *dir)
{
    return sc_mkdirs(dir); /* image folders are made as the images are written */
}

int phantom_write_images(const phantom_config_t *cfg, const char *dir, phantom_format_t format,
                         uint32_t begin, uint32_t end, char **rows, size_t *rows_len)
{
    int rc = SC_OK;
    strbuf_t sb = {0};
    phantom_t *ph = NULL;
    uint8_t *img = NULL, *bits = NULL;
    uint16_t *stored = NULL;
    *rows = NULL;
    *rows_len = 0;
    ph = phantom_create(cfg);
    CHECK(ph, SC_ERR_ARG, "phantom: invalid configuration");
    size_t n = (size_t)cfg->size * cfg->size;
    img = sc_calloc(n, 1);
    bits = sc_calloc(n, 1);
    stored = sc_calloc(n, sizeof(uint16_t));
    CHECK_ALLOC(img);
    CHECK_ALLOC(bits);
    CHECK_ALLOC(stored);
    CHECK_RC(sb_printf(&sb, "%s", "")); /* an empty range still returns a string */
    for (uint32_t i = begin; i < end; i++) {
        phantom_info_t info;
        CHECK_RC(phantom_render(ph, i, img, &info, bits, NULL));
        char id[96], path[4096];
        phantom_layout_id(cfg, format, i, id, sizeof id);
        CHECK(phantom_image_path(cfg, format, dir, i, path, sizeof path) == SC_OK, SC_ERR_ARG,
              "path too long under '%s'", dir);
        CHECK_RC(sc_mkdirs_parent(path));
        CHECK_RC(phantom_write_file(cfg, path, id, img, stored));
        CHECK_RC(phantom_rows(&sb, cfg, format, i, id, &info, bits));
    }
    *rows = sb.data;
    *rows_len = sb.len;
    sb.data = NULL;
cleanup:
    free(sb.data);
    sc_free(img);
    sc_free(bits);
    sc_free(stored);
    phantom_destroy(ph);
    return rc;
}

static int write_text(const char *path, const char *head, const char *body, size_t body_len)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        SC_ERROR("cannot write '%s': %s", path, strerror(errno));
        return SC_ERR_IO;
    }
    int ok = fputs(head, fp) >= 0 && (body_len == 0 || fwrite(body, 1, body_len, fp) == body_len);
    ok = (fclose(fp) == 0) && ok;
    if (!ok) {
        SC_ERROR("cannot write '%s': %s", path, strerror(errno));
        remove(path);
        return SC_ERR_IO;
    }
    return SC_OK;
}

/* Write the lines of `rows` that start with `tag` (tag removed) under `head`. */
static int write_tagged(const char *path, const char *head, const char *rows, size_t rows_len, char tag)
{
    int rc = SC_OK;
    strbuf_t sb = {0};
    CHECK_RC(sb_printf(&sb, "%s", ""));
    for (const char *p = rows; p < rows + rows_len;) {
        const char *nl = memchr(p, '\n', (size_t)(rows + rows_len - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(rows + rows_len - p);
        if (len >= 2 && p[0] == tag && p[1] == ' ')
            CHECK_RC(sb_printf(&sb, "%.*s\n", (int)(len - 2), p + 2));
        p += len + 1;
    }
    CHECK_RC(write_text(path, head, sb.data, sb.len));
cleanup:
    free(sb.data);
    return rc;
}

int phantom_write_csvs(const phantom_config_t *cfg, const char *dir, phantom_format_t format,
                       uint32_t count, const char *rows, size_t rows_len)
{
    int rc = SC_OK;
    strbuf_t sb = {0}, sb2 = {0};
    char path[4096];
    static const char *split_names[3] = {"train", "val", "test"};
    int dicom = cfg->files.image == PHANTOM_IMAGE_DICOM;
#define PH_PATH(name) CHECK(snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path, SC_ERR_ARG, \
                            "path too long under '%s'", dir)
    switch (format) {
    case PHANTOM_FORMAT_RSNA:
        PH_PATH(dicom ? "stage_2_train_labels.csv" : "labels.csv");
        CHECK_RC(write_text(path, "patientId,x,y,width,height,Target\n", rows, rows_len));
        break;
    case PHANTOM_FORMAT_SIIM:
        PH_PATH("train-rle.csv");
        CHECK_RC(write_text(path, "ImageId, EncodedPixels\n", rows, rows_len));
        break;
    case PHANTOM_FORMAT_NIH:
        PH_PATH("Data_Entry_2017.csv");
        CHECK_RC(write_tagged(path,
                              "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
                              "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n",
                              rows, rows_len, 'E'));
        PH_PATH("BBox_List_2017.csv");
        CHECK_RC(write_tagged(path, "Image Index,Finding Label,Bbox [x,y,w,h],,,\n", rows, rows_len, 'B'));
        break;
    case PHANTOM_FORMAT_VINDR:
        PH_PATH("annotations_train.csv");
        CHECK_RC(write_text(path, "image_id,rad_id,class_name,x_min,y_min,x_max,y_max\n", rows, rows_len));
        break;
    case PHANTOM_FORMAT_CHEXLOCALIZE: {
        PH_PATH("gt_segmentations_val.json");
        size_t body = rows_len >= 2 ? rows_len - 2 : 0; /* drop the last ",\n" */
        CHECK_RC(sb_printf(&sb, "%.*s\n}\n", (int)body, rows));
        CHECK_RC(write_text(path, "{\n", sb.data, sb.len));
        goto cleanup; /* all test: no split files */
    }
    }
    if (format == PHANTOM_FORMAT_NIH) {
        for (uint32_t i = 0; i < count; i++) {
            char id[96];
            phantom_layout_id(cfg, format, i, id, sizeof id);
            CHECK_RC(sb_printf(phantom_split(cfg, i) == 2 ? &sb2 : &sb, "%s.png\n", id));
        }
        PH_PATH("train_val_list.txt");
        CHECK_RC(write_text(path, "", sb.data ? sb.data : "", sb.len));
        PH_PATH("test_list.txt");
        CHECK_RC(write_text(path, "", sb2.data ? sb2.data : "", sb2.len));
        goto cleanup;
    }
    for (uint32_t i = 0; i < count; i++) {
        char id[96];
        phantom_layout_id(cfg, format, i, id, sizeof id);
        CHECK_RC(sb_printf(&sb, "%s,%s\n", id, split_names[phantom_split(cfg, i)]));
    }
    PH_PATH("splits.csv");
    CHECK_RC(write_text(path, "Image_ID,Split\n", sb.data, sb.len));
#undef PH_PATH
cleanup:
    free(sb.data);
    free(sb2.data);
    return rc;
}

int phantom_write_dataset(const phantom_config_t *cfg, const char *dir, phantom_format_t format,
                          uint32_t count)
{
    int rc = SC_OK;
    char *rows = NULL;
    size_t rows_len = 0;
    CHECK_RC(phantom_make_dirs(dir));
    CHECK_RC(phantom_write_images(cfg, dir, format, 0, count, &rows, &rows_len));
    CHECK_RC(phantom_write_csvs(cfg, dir, format, count, rows, rows_len));
cleanup:
    free(rows);
    return rc;
}
