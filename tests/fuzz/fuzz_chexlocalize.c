/*
 * fuzz_chexlocalize.c - libFuzzer harness: CheXlocalize segmentation JSON
 * (common/io/dataset_chexlocalize.c: jansson, COCO run-length encoding).
 *
 * The input is gt_segmentations_val.json (image ids mapped to one COCO RLE
 * mask per pathology). The first byte picks skip_bad, the mask rule and the
 * pathology to localize (Airspace Opacity, the kind's default, or Edema).
 * Every loaded entry's mask is drawn on a 16 x 16 and a 48 x 48 grid, and
 * its image path is formed (no image exists: verification is off).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char labels[600];
    if (!labels[0]) {
        fuzz_quiet();
        fuzz_path("gt_segmentations_val.json", labels, sizeof labels);
    }
    if (size < 1)
        return 0;
    const uint8_t flags = data[0];
    fuzz_write(labels, data + 1, size - 1);

    dataset_options_t opt;
    dataset_options_default(&opt);
    opt.format = DATASET_FORMAT_CHEXLOCALIZE;
    opt.verify = 0;
    opt.skip_bad = flags & 1;
    opt.mask_rule = (flags & 2) ? DATASET_MASK_ANY : DATASET_MASK_HALF;
    opt.finding = (flags & 4) ? "Edema" : NULL;
    opt.labels = labels;
    fuzz_dataset_run(&opt);
    return 0;
}
