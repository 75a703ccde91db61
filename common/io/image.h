/*
 * image.h - from an image file to the network input (module io, prefix image_).
 *
 * A gray image is resized to the model resolution R (bilinear or area), copied
 * to 3 channels and normalized the way the model was trained (docs/methods.md
 * section 2): "inception" x/127.5 - 1 in [-1, 1] (the paper's InceptionV3),
 * "imagenet" (x/255 - mean_c) / std_c with the torchvision mean/std (DenseNet),
 * "unit" x/255 in [0, 1]. Layout is planar [3][R][R] (NCHW for one image).
 */
#ifndef IMAGE_H
#define IMAGE_H

#include <stdint.h>

#include "io/imread.h"

typedef enum image_norm {
    IMAGE_NORM_INCEPTION = 0, /* x/127.5 - 1 */
    IMAGE_NORM_IMAGENET,      /* (x/255 - (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225) */
    IMAGE_NORM_UNIT           /* x/255 */
} image_norm_t;

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

/* Parse "inception" | "imagenet" | "unit"; SC_ERR_ARG (logged) for anything else. */
int image_norm_parse(const char *name, image_norm_t *norm);
const char *image_norm_name(image_norm_t norm);
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
 * Gray values 0..255 (n pixels) -> normalized 3-channel planar tensor out [3][n]
 * (caller's buffer). Channel c of "imagenet" uses mean[c], std[c].
 */
void image_normalize_3ch(const float *gray, int n, image_norm_t norm, float *out);

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
 * tensor [3][R][R] normalized (NULL to skip) and gray [R][R] in 0..255 (NULL
 * to skip; for overlays). Buffers are the caller's. Errors are logged with the path.
 */
int image_loader_load(image_loader_t *loader, const char *path, float *tensor, float *gray);

#endif /* IMAGE_H */
