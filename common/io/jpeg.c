/*
 * jpeg.c - JPEG reading and writing on libjpeg-turbo (see jpeg.h).
 *
 * libjpeg reports fatal errors through error_exit, which must not return: it
 * longjmps back to the caller with libjpeg's message kept in the context.
 * Warnings (emit_message with level -1) are counted and turn the decode into
 * an error at the end.
 */
#include "io/jpeg.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>

#include "sc.h"

typedef struct jpeg_err_ctx {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    int warnings;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err_ctx_t;

static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_err_ctx_t *ctx = (jpeg_err_ctx_t *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, ctx->msg);
    longjmp(ctx->jump, 1);
}

static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    jpeg_err_ctx_t *ctx = (jpeg_err_ctx_t *)cinfo->err;
    if (level < 0 && ctx->warnings++ == 0)
        (*cinfo->err->format_message)(cinfo, ctx->msg); /* keep the first warning */
}

int jpeg_sniff(const unsigned char *head, int n)
{
    return n >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF;
}

/* Shared by probe and read: header_only stops after jpeg_read_header. */
static int jpeg_decode(const char *path, int header_only, int *w, int *h, float **pixels, char *why,
                       int why_size)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_err_ctx_t ctx;
    float *volatile out = NULL;
    JSAMPLE *volatile row = NULL;
    volatile int rc = SC_OK;
    if (pixels)
        *pixels = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(why, (size_t)why_size, "cannot open: %s", strerror(errno));
        return SC_ERR_IO;
    }
    memset(&ctx, 0, sizeof ctx);
    cinfo.err = jpeg_std_error(&ctx.mgr);
    ctx.mgr.error_exit = jpeg_on_error;
    ctx.mgr.emit_message = jpeg_on_message;
    if (setjmp(ctx.jump)) {
        snprintf(why, (size_t)why_size, "corrupt or truncated JPEG (libjpeg: %s)", ctx.msg);
        rc = SC_ERR_FORMAT;
        goto cleanup;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, fp);
    jpeg_read_header(&cinfo, TRUE);
    *w = (int)cinfo.image_width;
    *h = (int)cinfo.image_height;
    if (header_only)
        goto cleanup;
    if ((long)cinfo.image_width * (long)cinfo.image_height > JPEG_MAX_PIXELS) {
        snprintf(why, (size_t)why_size,
                 "declares %u x %u pixels, more than salcheck decodes (%ld): a damaged or "
                 "hostile header, or an image to downsample first",
                 cinfo.image_width, cinfo.image_height, JPEG_MAX_PIXELS);
        rc = SC_ERR_FORMAT;
        goto cleanup;
    }
    int gray = cinfo.num_components == 1;
    cinfo.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int nc = cinfo.output_components, width = (int)cinfo.output_width;
    out = sc_calloc((size_t)cinfo.output_width * cinfo.output_height, sizeof(float));
    row = sc_calloc((size_t)width * nc, 1);
    if (!out || !row) {
        snprintf(why, (size_t)why_size, "out of memory for %dx%d pixels", *w, *h);
        rc = SC_ERR_NOMEM;
        goto cleanup;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[1] = {row};
        float *dst = out + (size_t)cinfo.output_scanline * width;
        jpeg_read_scanlines(&cinfo, rows, 1);
        if (nc == 1)
            for (int x = 0; x < width; x++)
                dst[x] = row[x];
        else
            for (int x = 0; x < width; x++)
                dst[x] = 0.299f * row[3 * x] + 0.587f * row[3 * x + 1] + 0.114f * row[3 * x + 2];
    }
    jpeg_finish_decompress(&cinfo);
    if (ctx.warnings) {
        snprintf(why, (size_t)why_size, "corrupt or truncated JPEG (libjpeg: %s)", ctx.msg);
        rc = SC_ERR_FORMAT;
    }
cleanup:
    jpeg_destroy_decompress(&cinfo);
    fclose(fp);
    sc_free(row);
    if (rc < 0 || !pixels)
        sc_free(out);
    else
        *pixels = out;
    return rc;
}

int jpeg_probe(const char *path, int *w, int *h, char *why, int why_size)
{
    return jpeg_decode(path, 1, w, h, NULL, why, why_size);
}

int jpeg_read_gray(const char *path, int *w, int *h, float **pixels, char *why, int why_size)
{
    return jpeg_decode(path, 0, w, h, pixels, why, why_size);
}

int jpeg_write_gray8(const char *path, int w, int h, const uint8_t *pixels, int quality)
{
    struct jpeg_compress_struct cinfo;
    jpeg_err_ctx_t ctx;
    volatile int rc = SC_OK;
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        SC_ERROR("cannot write JPEG file '%s': %s", path, strerror(errno));
        return SC_ERR_IO;
    }
    memset(&ctx, 0, sizeof ctx);
    cinfo.err = jpeg_std_error(&ctx.mgr);
    ctx.mgr.error_exit = jpeg_on_error;
    ctx.mgr.emit_message = jpeg_on_message;
    if (setjmp(ctx.jump)) {
        SC_ERROR("cannot write JPEG file '%s' (libjpeg: %s)", path, ctx.msg);
        rc = SC_ERR_IO;
        goto cleanup;
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, fp);
    cinfo.image_width = (JDIMENSION)w;
    cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = 1;
    cinfo.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW rows[1] = {(JSAMPROW)(pixels + (size_t)cinfo.next_scanline * w)};
        jpeg_write_scanlines(&cinfo, rows, 1);
    }
    jpeg_finish_compress(&cinfo);
cleanup:
    jpeg_destroy_compress(&cinfo);
    if (fclose(fp) != 0 && rc == SC_OK) {
        SC_ERROR("cannot write JPEG file '%s': %s", path, strerror(errno));
        rc = SC_ERR_IO;
    }
    if (rc < 0)
        remove(path);
    return rc;
}
