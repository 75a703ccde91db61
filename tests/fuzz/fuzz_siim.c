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
    static char labels[600], splits[600];
    if (!labels[0]) {
        fuzz_quiet();
        fuzz_path("train-rle.csv", labels, sizeof labels);
        fuzz_path("splits.csv", splits, sizeof splits);
    }
    if (size < 1)
        return 0;
    const uint8_t flags = data[0];
    const uint8_t *parts[2];
    size_t lens[2];
    int n = fuzz_split(data + 1, size - 1, parts, lens, 2);
    fuzz_write(labels, parts[0], lens[0]);
    fuzz_write(splits, n > 1 ? parts[1] : NULL, n > 1 ? lens[1] : 0);

    dataset_options_t opt;
    dataset_options_default(&opt);
    opt.format = DATASET_FORMAT_SIIM;
    opt.verify = 0;
    opt.skip_bad = flags & 1;
    opt.mask_rule = (flags & 2) ? DATASET_MASK_ANY : DATASET_MASK_HALF;
    opt.source_size = (flags & 4) ? 64 : 32;
    opt.labels = labels;
    opt.splits = n > 1 ? splits : NULL;
    fuzz_dataset_run(&opt);
    return 0;
}
