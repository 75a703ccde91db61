/*
 * fuzz_rsna.c - libFuzzer harness: RSNA label CSVs (common/io/dataset.c).
 *
 * The input is up to three files separated by a line "--": labels.csv
 * (patientId,x,y,width,height,Target), splits.csv (Image_ID,Split) and a
 * class info CSV (patientId,class). The first byte of labels.csv also picks
 * the options: skip_bad, the box mapping and the source frame (1024 or 32
 * pixels, so that no image is needed). Every loaded entry's ground-truth
 * mask is drawn on a 32 x 32 grid.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fuzzhelp.h"
#include "io/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char data_dir[600], labels[600], splits[600], classes[600];
    if (!labels[0]) {
        fuzz_quiet();
        fuzz_path("labels.csv", labels, sizeof labels);
        fuzz_path("splits.csv", splits, sizeof splits);
        /* an empty data set directory: every file is named by an option */
        if (mkdir(fuzz_path("data", data_dir, sizeof data_dir), 0700) != 0)
            abort();
        fuzz_path("classes.csv", classes, sizeof classes);
    }
    if (size < 1)
        return 0;
    const uint8_t flags = data[0];
    const uint8_t *parts[3];
    size_t lens[3];
    int n = fuzz_split(data + 1, size - 1, parts, lens, 3);
    fuzz_write(labels, parts[0], lens[0]);
    fuzz_write(splits, n > 1 ? parts[1] : NULL, n > 1 ? lens[1] : 0);
    fuzz_write(classes, n > 2 ? parts[2] : NULL, n > 2 ? lens[2] : 0);

    dataset_options_t opt;
    dataset_options_default(&opt);
    opt.format = DATASET_FORMAT_RSNA;
    opt.verify = 0;
    opt.skip_bad = flags & 1;
    opt.box_map = (flags & 2) ? DATASET_BOX_EXACT : DATASET_BOX_PAPER;
    opt.source_size = (flags & 4) ? 32 : 1024;
    opt.labels = labels;
    opt.splits = n > 1 ? splits : NULL;
    opt.class_info = n > 2 ? classes : NULL;
    dataset_t *ds = NULL;
    if (dataset_open(data_dir, &opt, &ds) == 0) {
        static uint8_t mask[32 * 32];
        for (int i = 0; i < dataset_count(ds); i++) {
            dataset_mask(ds, i, 32, mask);
            dataset_find(ds, dataset_id(ds, i));
        }
    }
    dataset_destroy(ds);
    return 0;
}
