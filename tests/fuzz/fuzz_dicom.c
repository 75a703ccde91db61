/*
 * fuzz_dicom.c - libFuzzer harness: DICOM radiographs (common/io/dicom.cc on
 * DCMTK, through the content-based reader of common/io/imread.c).
 *
 * The input is a DICOM file (Part 10, "DICM" at byte 128). It is probed
 * (header only) and decoded with each of the three window rules (the file's
 * VOI LUT or window, the full stored range, the image's minimum and maximum),
 * then loaded and resized to 16 x 16 by an image loader. DCMTK itself is not
 * instrumented for coverage; the harness guides the fuzzer through
 * salcheck's checks and rendering around it.
 */
#include <stdint.h>
#include <stdio.h>

#include "fuzz_image.h"
#include "io/dicom.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_image_t fi;
    fuzz_image_init(&fi, "image.dcm");
    const char *path = fi.path;
    fuzz_write(path, data, size);
    int w = 0, h = 0;
    char why[320];
    dicom_probe(path, &w, &h, why, (int)sizeof why);
    const dicom_window_t windows[3] = {DICOM_WINDOW_VOI, DICOM_WINDOW_FULL, DICOM_WINDOW_MINMAX};
    for (int k = 0; k < 3; k++) {
        float *pixels = NULL;
        if (dicom_read_gray(path, windows[k], &w, &h, &pixels, why, (int)sizeof why) == 0)
            fuzz_touch(pixels, (long)w * h);
        sc_free(pixels);
    }
    fuzz_image_load(&fi);
    return 0;
}
