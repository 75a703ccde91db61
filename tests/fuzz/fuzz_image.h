/*
 * fuzz_image.h - shared set-up of the image-reader harnesses (fuzz_png,
 * fuzz_jpeg, fuzz_dicom): one scratch file per process and the image loader
 * that reads it at a 16 x 16 model resolution, as a run reads a data set image.
 */
#ifndef FUZZ_IMAGE_H
#define FUZZ_IMAGE_H

#include <stdint.h>
#include <stdlib.h>

#include "fuzzhelp.h"
#include "io/image.h"

#define FUZZ_IMAGE_RES 16

typedef struct fuzz_image {
    char path[600];
    image_loader_t *loader;
} fuzz_image_t;

/* First call: silence the logger, name the scratch file `name`, create the loader. */
static inline void fuzz_image_init(fuzz_image_t *fi, const char *name)
{
    if (fi->path[0])
        return;
    fuzz_quiet();
    fuzz_path(name, fi->path, sizeof fi->path);
    fi->loader = image_loader_create(FUZZ_IMAGE_RES, IMAGE_RESIZE_AREA, IMAGE_NORM_INCEPTION);
    if (!fi->loader)
        abort();
}

/* Load the scratch file through the loader (content-based reader, resize, normalization). */
static inline void fuzz_image_load(fuzz_image_t *fi)
{
    float tensor[3 * FUZZ_IMAGE_RES * FUZZ_IMAGE_RES], gray[FUZZ_IMAGE_RES * FUZZ_IMAGE_RES];
    image_loader_load(fi->loader, fi->path, tensor, gray);
}

#endif /* FUZZ_IMAGE_H */
