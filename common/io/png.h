/*
 * png.h - PNG reading and writing on libpng (module io, prefix png_).
 *
 * The reader turns any PNG a user may bring (8 or 16-bit gray, gray+alpha,
 * RGB, RGBA, palette, 1/2/4-bit gray) into one gray float plane; the writers
 * produce 8-bit gray and 8-bit RGB files for the phantom data set, heat-map
 * overlays and report figures. Errors are values: a missing file is
 * SC_ERR_IO, a file that is not a PNG or is corrupt or truncated is
 * SC_ERR_FORMAT, and each is logged once with the path and the reason.
 */
#ifndef PNG_IO_H
#define PNG_IO_H

#include <stdint.h>

/*
 * Read a PNG as gray floats, row-major [h][w].
 * Values: 8-bit files give 0..255; 16-bit files are scaled to 0..255 (v/257,
 * no rounding); fewer than 8 bits are expanded to 0..255; palette entries are
 * expanded to their colors; color is converted to gray with the ITU-R 601
 * luma weights 0.299 R + 0.587 G + 0.114 B (what PIL's convert("L") and most
 * viewers use); alpha is ignored.
 * On success *pixels is allocated with sc_calloc and owned by the caller
 * (free with sc_free); on failure *pixels is NULL and the error is logged.
 */
int png_read_gray(const char *path, int *w, int *h, float **pixels);

/*
 * Read only the header: width and height. Checks that the file exists and has
 * a PNG signature and a valid IHDR chunk (a truncated image body is only found
 * by png_read_gray). Logs and returns SC_ERR_IO / SC_ERR_FORMAT on failure.
 */
int png_read_size(const char *path, int *w, int *h);

/*
 * Same errors as the functions above, but without logging: for callers that
 * report the problem themselves (e.g. a data set loader that names the CSV
 * line too). `why` receives a one-line reason (may be NULL).
 */
int png_probe(const char *path, int *w, int *h, char *why, int why_size);

/*
 * Write 8-bit gray [h][w] / 8-bit RGB [h][w][3] (interleaved) row-major.
 * The file is deterministic (no time stamp), so the same pixels give the same
 * bytes. On failure the partial file is removed and the error logged.
 */
int png_write_gray8(const char *path, int w, int h, const uint8_t *pixels);
int png_write_rgb8(const char *path, int w, int h, const uint8_t *pixels);

#endif /* PNG_IO_H */
