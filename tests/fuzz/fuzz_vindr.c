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
    dataset_options_t opt;
    int flags = fuzz_dataset_input(data, size, "annotations_train.csv", DATASET_FORMAT_VINDR, &opt);
    if (flags < 0)
        return 0;
    opt.box_map = (flags & 4) ? DATASET_BOX_EXACT : DATASET_BOX_PAPER;
    opt.min_readers = 1 + (flags >> 3) % 3;
    opt.source_size = 64;
    fuzz_dataset_run(&opt);
    return 0;
}
