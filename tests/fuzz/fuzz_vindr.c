/*
 * fuzz_vindr.c - libFuzzer harness: VinDr-CXR annotation CSVs
 * (common/io/dataset_vindr.c).
 *
 * The input is annotations_train.csv (image_id,rad_id,class_name,x_min,
 * y_min,x_max,y_max: boxes of several radiologists per image), optionally
 * followed by a line "--" and a splits.csv. The first byte picks skip_bad,
 * the mask rule, the box mapping and how many radiologists must agree (1 to
 * 3). The frame is 64 pixels, so that no image is needed; every mask is drawn
 * on a 16 x 16 and a 48 x 48 grid.
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
        fuzz_path("annotations_train.csv", labels, sizeof labels);
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
    opt.format = DATASET_FORMAT_VINDR;
    opt.verify = 0;
    opt.skip_bad = flags & 1;
    opt.mask_rule = (flags & 2) ? DATASET_MASK_ANY : DATASET_MASK_HALF;
    opt.box_map = (flags & 4) ? DATASET_BOX_EXACT : DATASET_BOX_PAPER;
    opt.min_readers = 1 + (flags >> 3) % 3;
    opt.source_size = 64;
    opt.labels = labels;
    opt.splits = n > 1 ? splits : NULL;
    fuzz_dataset_run(&opt);
    return 0;
}
