/*
 * imread.c - format detection and dispatch to the PNG, JPEG and DICOM readers (see imread.h).
 */
#include "io/imread.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "io/jpeg.h"
#include "io/png.h"
#include "sc.h"

void imread_options_default(imread_options_t *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->dicom_window = DICOM_WINDOW_VOI;
}

const char *imread_format_name(imread_format_t format)
{
    switch (format) {
    case IMREAD_FORMAT_PNG: return "PNG";
    case IMREAD_FORMAT_JPEG: return "JPEG";
    case IMREAD_FORMAT_DICOM: return "DICOM";
    default: return "unknown";
    }
}

static int imread_has_suffix(const char *path, const char *suffix)
{
    size_t n = strlen(path), k = strlen(suffix);
    return n > k && !strcasecmp(path + n - k, suffix);
}

int imread_detect(const char *path, imread_format_t *format, char *why, int why_size)
{
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    unsigned char head[132];
    *format = IMREAD_FORMAT_UNKNOWN;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(why, (size_t)why_size, "cannot open: %s", strerror(errno));
        return SC_ERR_IO;
    }
    int n = (int)fread(head, 1, sizeof head, fp);
    fclose(fp);
    if (n >= 8 && !memcmp(head, png_sig, 8))
        *format = IMREAD_FORMAT_PNG;
    else if (jpeg_sniff(head, n))
        *format = IMREAD_FORMAT_JPEG;
    else if (dicom_sniff(head, n) || imread_has_suffix(path, ".dcm") || imread_has_suffix(path, ".dicom"))
        *format = IMREAD_FORMAT_DICOM;
    if (*format != IMREAD_FORMAT_UNKNOWN)
        return SC_OK;
    snprintf(why, (size_t)why_size, "%s",
             n == 0 ? "empty file, not an image"
                    : "not a PNG, JPEG or DICOM image (the first bytes match none of their signatures)");
    return SC_ERR_FORMAT;
}

int imread_probe(const char *path, int *w, int *h, char *why, int why_size)
{
    imread_format_t format;
    int rc = imread_detect(path, &format, why, why_size);
    if (rc < 0)
        return rc;
    switch (format) {
    case IMREAD_FORMAT_PNG: return png_probe(path, w, h, why, why_size);
    case IMREAD_FORMAT_JPEG: return jpeg_probe(path, w, h, why, why_size);
    default: return dicom_probe(path, w, h, why, why_size);
    }
}

int imread_gray_quiet(const char *path, const imread_options_t *opt, int *w, int *h, float **pixels,
                      char *why, int why_size)
{
    imread_options_t defaults;
    if (!opt) {
        imread_options_default(&defaults);
        opt = &defaults;
    }
    *pixels = NULL;
    imread_format_t format;
    int rc = imread_detect(path, &format, why, why_size);
    if (rc < 0)
        return rc;
    switch (format) {
    case IMREAD_FORMAT_PNG:
        /* png_read_gray logs; probe first so the usual problems come back quietly. */
        rc = png_probe(path, w, h, why, why_size);
        if (rc < 0)
            return rc;
        rc = png_read_gray(path, w, h, pixels);
        if (rc < 0)
            snprintf(why, (size_t)why_size, "corrupt or truncated PNG");
        return rc;
    case IMREAD_FORMAT_JPEG: return jpeg_read_gray(path, w, h, pixels, why, why_size);
    default: return dicom_read_gray(path, opt->dicom_window, w, h, pixels, why, why_size);
    }
}

int imread_gray(const char *path, const imread_options_t *opt, int *w, int *h, float **pixels)
{
    char why[512] = "";
    int rc = imread_gray_quiet(path, opt, w, h, pixels, why, (int)sizeof why);
    if (rc < 0 && why[0])
        SC_ERROR("image '%s': %s", path, why);
    return rc;
}
