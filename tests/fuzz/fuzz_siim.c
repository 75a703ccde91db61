/*
 * fuzz_siim.c - libFuzzer harness: SIIM-ACR RLE label CSVs
 * (common/io/dataset.c).
 *
 * The input is train-rle.csv (ImageId, EncodedPixels: Kaggle's relative
 * column-major run-length encoding, or -1), optionally followed by a line
 * "--" and a splits.csv. The first byte picks skip_bad, the mask rule and
 * the source frame (32 or 64 pixels square, so that no image is needed).
 * Every loaded entry's mask is drawn on a 16 x 16 and a 48 x 48 grid.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dataset_options_t opt;
    int flags = fuzz_dataset_input(data, size, "train-rle.csv", DATASET_FORMAT_SIIM, &opt);
    if (flags < 0)
        return 0;
    opt.source_size = (flags & 4) ? 64 : 32;
    fuzz_dataset_run(&opt);
    return 0;
}
