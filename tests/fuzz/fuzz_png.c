/*
 * fuzz_png.c - libFuzzer harness: PNG images (common/io/png.c on libpng,
 * and the resize of common/io/image.c behind it).
 *
 * The input is a PNG file. It is probed (header only), decoded to gray, and
 * loaded through an image loader at a small model resolution, the three ways
 * salcheck reads a user's image.
 */
#include <stdint.h>
#include <stdio.h>

#include "fuzz_image.h"
#include "io/png.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_image_t fi;
    fuzz_image_init(&fi, "image.png");
    const char *path = fi.path;
    fuzz_write(path, data, size);
    int w = 0, h = 0;
    char why[320];
    png_probe(path, &w, &h, why, (int)sizeof why);
    float *pixels = NULL;
    if (png_read_gray(path, &w, &h, &pixels) == 0)
        fuzz_touch(pixels, (long)w * h);
    sc_free(pixels);
    fuzz_image_load(&fi);
    return 0;
}
