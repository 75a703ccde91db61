/*
 * jpeg.h - JPEG reading and writing on libjpeg-turbo (module io, prefix jpeg_).
 *
 * The reader gives the gray float plane every loader returns: a one-component
 * (grayscale) JPEG gives its samples 0..255; a colour JPEG is decoded to RGB
 * by libjpeg and converted with the ITU-R 601 luma weights 0.299 R + 0.587 G +
 * 0.114 B, as png_read_gray does. Decoding uses libjpeg's default (accurate
 * integer) inverse DCT, the one PIL uses, so gray files decode to the same
 * samples. Any libjpeg warning (premature end of data, corrupt entropy data)
 * makes the file an error: a damaged image is not silently gray-filled.
 */
#ifndef JPEG_IO_H
#define JPEG_IO_H

#include <stdint.h>

/* 1 when the first bytes are a JPEG start-of-image marker followed by a marker (FF D8 FF). */
int jpeg_sniff(const unsigned char *head, int n);

/* Header only; not logged: `why` gets a one-line reason. SC_ERR_IO or SC_ERR_FORMAT. */
int jpeg_probe(const char *path, int *w, int *h, char *why, int why_size);

/* The most pixels jpeg_read_gray decodes (64 Mi: 8192 x 8192; radiographs have
 * at most about 20 Mi). A header declaring more (up to 65535 x 65535) would have
 * libjpeg allocate gigabytes for a progressive file before reading a pixel. */
#define JPEG_MAX_PIXELS (64L * 1024 * 1024)

/*
 * Decode into *pixels [h][w] (sc_calloc, owned by the caller; NULL on failure).
 * Not logged: `why` gets the reason (libjpeg's message for a corrupt file).
 * SC_ERR_FORMAT for an image of more than JPEG_MAX_PIXELS pixels.
 */
int jpeg_read_gray(const char *path, int *w, int *h, float **pixels, char *why, int why_size);

/* Write 8-bit gray [h][w] as a baseline JPEG of the given quality (1..100). Logged errors. */
int jpeg_write_gray8(const char *path, int w, int h, const uint8_t *pixels, int quality);

#endif /* JPEG_IO_H */
