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

#include "fuzzhelp.h"
#include "io/image.h"
#include "io/png.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[600];
    static image_loader_t *loader;
    if (!path[0]) {
        fuzz_quiet();
        fuzz_path("image.png", path, sizeof path);
        loader = image_loader_create(16, IMAGE_RESIZE_AREA, IMAGE_NORM_INCEPTION);
        if (!loader)
            abort();
    }
    fuzz_write(path, data, size);
    int w = 0, h = 0;
    char why[320];
    png_probe(path, &w, &h, why, (int)sizeof why);
    float *pixels = NULL;
    if (png_read_gray(path, &w, &h, &pixels) == 0)
        fuzz_touch(pixels, (long)w * h);
    sc_free(pixels);
    float tensor[3 * 16 * 16], gray[16 * 16];
    image_loader_load(loader, path, tensor, gray);
    return 0;
}
