/*
 * png.c - PNG reading and writing on libpng (see png.h).
 *
 * libpng reports errors by longjmp to the setjmp point of the read or write.
 * Every local that is changed after setjmp and used after the jump is
 * volatile or is assigned before setjmp, and the error callback copies
 * libpng's message so that the user sees it with the file name.
 */
#include <png.h>

#include "io/png.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "sc.h"

typedef struct png_err_ctx {
    char msg[256];
    int nomem;                  /* the decode buffers could not be allocated */
} png_err_ctx_t;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_err_ctx_t *ctx = (png_err_ctx_t *)png_get_error_ptr(png);
    if (ctx)
        snprintf(ctx->msg, sizeof ctx->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* ancillary-chunk warnings (e.g. a bad sRGB profile) are harmless */
}

/* Open and check the signature. Returns the FILE or NULL with `why` and *rc set. */
static FILE *png_open_checked(const char *path, char *why, int why_size, int *rc)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(why, (size_t)why_size, "cannot open: %s", strerror(errno));
        *rc = SC_ERR_IO;
        return NULL;
    }
    unsigned char sig[8];
    size_t got = fread(sig, 1, sizeof sig, fp);
    if (got < sizeof sig || png_sig_cmp(sig, 0, sizeof sig) != 0) {
        snprintf(why, (size_t)why_size, "%s",
                 got == 0 ? "empty file, not a PNG image"
                          : "not a PNG image (the file does not start with the PNG signature)");
        fclose(fp);
        *rc = SC_ERR_FORMAT;
        return NULL;
    }
    *rc = SC_OK;
    return fp;
}

/* Read IHDR from an open file positioned after the signature; libpng's message into ctx. */
static int png_read_header(FILE *fp, int *w, int *h, png_err_ctx_t *ctx)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        snprintf(ctx->msg, sizeof ctx->msg, "out of memory");
        return SC_ERR_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return SC_ERR_FORMAT;
    }
    png_init_io(png, fp);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);
    *w = (int)png_get_image_width(png, info);
    *h = (int)png_get_image_height(png, info);
    png_destroy_read_struct(&png, &info, NULL);
    return SC_OK;
}

int png_probe(const char *path, int *w, int *h, char *why, int why_size)
{
    char why_local[256];
    if (!why) {
        why = why_local;
        why_size = (int)sizeof why_local;
    }
    why[0] = '\0';
    int rc = SC_OK;
    FILE *fp = png_open_checked(path, why, why_size, &rc);
    if (!fp)
        return rc;
    png_err_ctx_t ctx = {"", 0};
    rc = png_read_header(fp, w, h, &ctx);
    fclose(fp);
    if (rc == SC_ERR_FORMAT)
        snprintf(why, (size_t)why_size, "corrupt or truncated PNG header (libpng: %s)", ctx.msg);
    else if (rc < 0)
        snprintf(why, (size_t)why_size, "%s", ctx.msg);
    return rc;
}

int png_read_size(const char *path, int *w, int *h)
{
    char why[320];
    int rc = png_probe(path, w, h, why, (int)sizeof why);
    if (rc < 0)
        SC_ERROR("image '%s': %s", path, why);
    return rc;
}

int png_read_gray(const char *path, int *w, int *h, float **pixels)
{
    *pixels = NULL;
    char why[256] = "";
    int rc = SC_OK;
    FILE *fp = png_open_checked(path, why, (int)sizeof why, &rc);
    if (!fp) {
        SC_ERROR("image '%s': %s", path, why);
        return rc;
    }
    png_err_ctx_t ctx = {"", 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    /* Buffers allocated after setjmp: volatile so their values survive the longjmp. */
    unsigned char *volatile raw = NULL;
    png_bytep *volatile rows = NULL;
    float *volatile out = NULL;
    if (!png || !info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        fclose(fp);
        SC_ERROR("image '%s': out of memory", path);
        return SC_ERR_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(fp);
        sc_free(raw);
        sc_free(rows);
        sc_free(out);
        if (ctx.nomem) {
            SC_ERROR("image '%s': out of memory: %s", path, ctx.msg);
            return SC_ERR_NOMEM;
        }
        SC_ERROR("image '%s': corrupt or truncated PNG (libpng: %s)", path, ctx.msg);
        return SC_ERR_FORMAT;
    }
    png_init_io(png, fp);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), color = png_get_color_type(png, info);

    /* Normalize every layout to 8 or 16-bit gray or RGB, alpha stripped. */
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(png);
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    int out_depth = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);

    raw = sc_calloc((size_t)height, rowbytes);
    rows = sc_calloc((size_t)height, sizeof(png_bytep));
    out = sc_calloc((size_t)width * height, sizeof(float));
    if (!raw || !rows || !out) {
        snprintf(ctx.msg, sizeof ctx.msg, "%ux%u pixels need %.0f MB to decode", (unsigned)width,
                 (unsigned)height, ((double)height * rowbytes + (double)width * height * 4) / 1048576.0);
        ctx.nomem = 1;
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < height; y++)
        rows[y] = raw + y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);

    for (png_uint_32 y = 0; y < height; y++) {
        const unsigned char *row = rows[y];
        float *dst = out + (size_t)y * width;
        for (png_uint_32 x = 0; x < width; x++) {
            float v[3];
            for (int c = 0; c < channels && c < 3; c++) {
                if (out_depth == 16) {
                    const unsigned char *b = row + 2 * ((size_t)x * channels + c);
                    v[c] = (float)((b[0] << 8) | b[1]) / 257.0f; /* PNG is big-endian */
                } else {
                    v[c] = (float)row[(size_t)x * channels + c];
                }
            }
            dst[x] = channels >= 3 ? 0.299f * v[0] + 0.587f * v[1] + 0.114f * v[2] : v[0];
        }
    }
    png_destroy_read_struct(&png, &info, NULL);
    fclose(fp);
    sc_free(raw);
    sc_free(rows);
    *w = (int)width;
    *h = (int)height;
    *pixels = out;
    return SC_OK;
}

static int png_write8(const char *path, int w, int h, const uint8_t *pixels, int channels)
{
    if (w <= 0 || h <= 0 || !pixels) {
        SC_ERROR("cannot write '%s': invalid image %dx%d", path, w, h);
        return SC_ERR_ARG;
    }
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        SC_ERROR("cannot write '%s': %s", path, strerror(errno));
        return SC_ERR_IO;
    }
    png_err_ctx_t ctx = {"", 0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        fclose(fp);
        remove(path);
        SC_ERROR("cannot write '%s': out of memory", path);
        return SC_ERR_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(fp);
        remove(path);
        SC_ERROR("cannot write '%s': %s", path, ctx.msg[0] ? ctx.msg : "libpng error");
        return SC_ERR_IO;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    /* Level 6 with adaptive filters: small files at a few ms per 256x256 image. */
    png_set_compression_level(png, 6);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)(pixels + (size_t)y * w * channels));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(fp) != 0) {
        remove(path);
        SC_ERROR("cannot write '%s': %s", path, strerror(errno));
        return SC_ERR_IO;
    }
    return SC_OK;
}

int png_write_gray8(const char *path, int w, int h, const uint8_t *pixels)
{
    return png_write8(path, w, h, pixels, 1);
}

int png_write_rgb8(const char *path, int w, int h, const uint8_t *pixels)
{
    return png_write8(path, w, h, pixels, 3);
}
