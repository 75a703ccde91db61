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
