/*
 * fuzz_dataset.h - shared pieces of the data set harnesses (fuzz_siim,
 * fuzz_nih, fuzz_vindr, fuzz_chexlocalize): an empty data set directory per
 * process (every file is named by an option or written by the harness), and
 * one pass over what the reader loaded.
 */
#ifndef FUZZ_DATASET_H
#define FUZZ_DATASET_H

#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fuzzhelp.h"
#include "io/dataset.h"

/* The scratch directory's "data" folder, created on the first call. */
static inline const char *fuzz_dataset_dir(void)
{
    static char dir[600];
    if (!dir[0] && mkdir(fuzz_path("data", dir, sizeof dir), 0700) != 0)
        abort();
    return dir;
}

/*
 * The common input of a labels harness: byte 0 the option flags (returned),
 * then the labels file, optionally followed by a line "--" and a splits file.
 * Writes them into the scratch files labels_name and "splits.csv" and sets
 * *opt to the defaults for `format` with verification off, skip_bad = bit 0,
 * the mask rule = bit 1, and the two files. -1 for an empty input.
 */
static inline int fuzz_dataset_input(const uint8_t *data, size_t size, const char *labels_name,
                                     dataset_format_t format, dataset_options_t *opt)
{
    static char labels[600], splits[600];
    if (!labels[0]) {
        fuzz_quiet();
        fuzz_path(labels_name, labels, sizeof labels);
        fuzz_path("splits.csv", splits, sizeof splits);
    }
    if (size < 1)
        return -1;
    const uint8_t *parts[2];
    size_t lens[2];
    int n = fuzz_split(data + 1, size - 1, parts, lens, 2);
    fuzz_write(labels, parts[0], lens[0]);
    fuzz_write(splits, n > 1 ? parts[1] : NULL, n > 1 ? lens[1] : 0);
    dataset_options_default(opt);
    opt->format = format;
    opt->verify = 0;
    opt->skip_bad = data[0] & 1;
    opt->mask_rule = (data[0] & 2) ? DATASET_MASK_ANY : DATASET_MASK_HALF;
    opt->labels = labels;
    opt->splits = n > 1 ? splits : NULL;
    return data[0];
}

/* Open the data set with opt; when it loads, draw every entry's mask on a 16 x 16
 * and a 48 x 48 grid and form its image path; then free it. */
static inline void fuzz_dataset_run(const dataset_options_t *opt)
{
    dataset_t *ds = NULL;
    if (dataset_open(fuzz_dataset_dir(), opt, &ds) == 0) {
        static uint8_t small[16 * 16], large[48 * 48];
        char image[4096];
        for (int i = 0; i < dataset_count(ds); i++) {
            dataset_mask(ds, i, 16, small);
            dataset_mask(ds, i, 48, large);
            dataset_image_path(ds, i, image, sizeof image);
        }
    }
    dataset_destroy(ds);
}

#endif /* FUZZ_DATASET_H */
