/*
 * fuzz_nih.c - libFuzzer harness: NIH ChestX-ray14 label files
 * (common/io/dataset_nih.c).
 *
 * The input is up to three files separated by a line "--":
 * BBox_List_2017.csv (Image Index,Finding Label,Bbox [x,y,w,h]),
 * Data_Entry_2017.csv (Image Index,Finding Labels,...) and test_list.txt;
 * the last two are written into the data set directory (or removed when
 * absent, so the reader also runs on boxes alone). The first byte picks
 * skip_bad, the mask rule, the box mapping and the finding (Pneumonia or
 * Infiltration, whose boxes say "Infiltrate") and the frame (NIH's 1024
 * pixels or 64): no image is needed. Every mask is drawn on a 16 x 16 and a
 * 48 x 48 grid.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char labels[600], entries[700], tests[700];
    if (!labels[0]) {
        fuzz_quiet();
        fuzz_path("BBox_List_2017.csv", labels, sizeof labels);
        snprintf(entries, sizeof entries, "%s/Data_Entry_2017.csv", fuzz_dataset_dir());
        snprintf(tests, sizeof tests, "%s/test_list.txt", fuzz_dataset_dir());
    }
    if (size < 1)
        return 0;
    const uint8_t flags = data[0];
    const uint8_t *parts[3];
    size_t lens[3];
    int n = fuzz_split(data + 1, size - 1, parts, lens, 3);
    fuzz_write(labels, parts[0], lens[0]);
    if (n > 1)
        fuzz_write(entries, parts[1], lens[1]);
    else
        unlink(entries);
    if (n > 2)
        fuzz_write(tests, parts[2], lens[2]);
    else
        unlink(tests);

    dataset_options_t opt;
    dataset_options_default(&opt);
    opt.format = DATASET_FORMAT_NIH;
    opt.verify = 0;
    opt.skip_bad = flags & 1;
    opt.mask_rule = (flags & 2) ? DATASET_MASK_ANY : DATASET_MASK_HALF;
    opt.box_map = (flags & 4) ? DATASET_BOX_EXACT : DATASET_BOX_PAPER;
    opt.finding = (flags & 8) ? "Infiltration" : NULL;
    opt.source_size = (flags & 16) ? 64 : 0; /* 0: NIH's own 1024-pixel frame */
    opt.labels = labels;
    fuzz_dataset_run(&opt);
    return 0;
}
