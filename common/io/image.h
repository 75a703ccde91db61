/*
 * image.h - from an image file to the network input (module io, prefix image_).
 *
 * A gray image is resized to the model resolution R (bilinear or area), copied
 * to the model's channels (1 or 3) and scaled the way the model was trained:
 * the input convention of io/image_norm.h (presets inception, imagenet, unit,
 * xrv, or any per-channel scale and offset). Layout is planar [C][R][R] (NCHW
 * for one image).
 */
#ifndef IMAGE_H
#define IMAGE_H

#include <stdint.h>

#include "io/image_norm.h"
#include "io/imread.h"

typedef enum image_resize {
    /*
     * Bilinear with half-pixel centres: source coordinate (i + 0.5) * in/out - 0.5,
     * clamped at the borders; no antialiasing. Equals PyTorch
     * F.interpolate(mode="bilinear", align_corners=False) and OpenCV INTER_LINEAR.
     */
    IMAGE_RESIZE_BILINEAR = 0,
    /*
     * Area: each output pixel is the mean of the input over its footprint
     * [i*in/out, (i+1)*in/out), partial pixels weighted by their overlap (OpenCV
     * INTER_AREA when shrinking; the right choice for 1024 -> 320). When growing
     * it is a box (nearest-like) interpolation with blended boundary pixels.
     */
    IMAGE_RESIZE_AREA
} image_resize_t;

/* Parse "bilinear" | "area"; SC_ERR_ARG (logged) for anything else. */
int image_resize_parse(const char *name, image_resize_t *mode);
const char *image_resize_name(image_resize_t mode);

/*
 * Resize a row-major plane src [src_h][src_w] into dst [dst_h][dst_w] (caller's
 * buffer). Allocates its own scratch; for repeated use prefer image_loader_t.
 */
int image_resize(const float *src, int src_w, int src_h, float *dst, int dst_w, int dst_h,
                 image_resize_t mode);

/*
 * A loader for one model resolution: keeps the resize weights and scratch of
 * the last source size so that a data set of equal-sized images allocates
 * only what libpng's decode needs.
 */
typedef struct image_loader image_loader_t;

/* res: model resolution R (> 0). Returns NULL (logged) on bad arguments or memory. */
image_loader_t *image_loader_create(int res, image_resize_t mode, image_norm_t norm);
void image_loader_destroy(image_loader_t *loader);

/* How files are decoded (DICOM window); the default is imread_options_default's. */
void image_loader_set_read_options(image_loader_t *loader, const imread_options_t *opt);

/*
 * Read a PNG, JPEG or DICOM file (by content, see imread.h), resize to R x R and write
 * tensor [C][R][R] under the loader's convention (C = its channels) (NULL to skip) and gray [R][R] in 0..255 (NULL
 * to skip; for overlays). Buffers are the caller's. Errors are logged with the path.
 */
int image_loader_load(image_loader_t *loader, const char *path, float *tensor, float *gray);

#endif /* IMAGE_H */
