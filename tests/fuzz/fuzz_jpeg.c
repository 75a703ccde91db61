/*
 * fuzz_jpeg.c - libFuzzer harness: JPEG images (common/io/jpeg.c on
 * libjpeg-turbo, through the content-based reader of common/io/imread.c).
 *
 * The input is a JPEG file. It is probed (header only), decoded to gray
 * directly and through imread (which picks the reader by the first bytes),
 * and loaded and resized to 16 x 16 by an image loader, the ways salcheck
 * reads a user's image.
 */
#include <stdint.h>
#include <stdio.h>

#include "fuzz_image.h"
#include "io/imread.h"
#include "io/jpeg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_image_t fi;
    fuzz_image_init(&fi, "image.jpg");
    const char *path = fi.path;
    fuzz_write(path, data, size);
    int w = 0, h = 0;
    char why[320];
    jpeg_probe(path, &w, &h, why, (int)sizeof why);
    float *pixels = NULL;
    if (jpeg_read_gray(path, &w, &h, &pixels, why, (int)sizeof why) == 0)
        fuzz_touch(pixels, (long)w * h);
    sc_free(pixels);
    pixels = NULL;
    if (imread_gray_quiet(path, NULL, &w, &h, &pixels, why, (int)sizeof why) == 0)
        fuzz_touch(pixels, (long)w * h);
    sc_free(pixels);
    fuzz_image_load(&fi);
    return 0;
}
