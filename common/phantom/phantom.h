/*
 * phantom.h - synthetic frontal chest radiographs with exact ground truth
 * (module phantom, prefix phantom_).
 *
 * Image i of a data set is a pure function of (seed, i): anatomy (body
 * outline, two lung fields, heart and mediastinum, trachea, ribs, clavicles,
 * spine, vessels), acquisition (rotation, shift, scale, contrast, gradient,
 * blur, noise) and findings are drawn from Philox streams keyed by
 * (seed, purpose) with counter (i, ...), so any partition of the images over
 * ranks writes identical files. Positive images carry 1 to 3 opacities:
 * soft-edged, textured regions where air in the lung is partly replaced by
 * fluid, clipped to the visible lung fields; their exact pixel masks and
 * bounding boxes are the ground truth. Lead markers ("L"/"R"), placed outside
 * the lungs on positives and negatives alike, are distractors that carry no
 * information about the label.
 *
 * Data set layout written by phantom_write_images/phantom_write_csvs (the
 * RSNA layout read by io/dataset.h with source_size = 0):
 *   DIR/images/<id>.png   8-bit gray, size x size
 *   DIR/labels.csv        patientId,x,y,width,height,Target; boxes in the
 *                         image's own pixels, columns [x, x+width), rows [y, y+height)
 *   DIR/train-rle.csv     (SIIM format instead of labels.csv) ImageId, EncodedPixels:
 *                         one row per opacity, relative column-major RLE, -1 negatives
 *   DIR/splits.csv        Image_ID,Split (train 70 %, val 15 %, test 15 %, per image)
 */
#ifndef PHANTOM_H
#define PHANTOM_H

#include <stddef.h>
#include <stdint.h>

#define PHANTOM_MAX_LESIONS 3

typedef struct phantom_box {
    int x, y, w, h; /* pixels: columns [x, x+w), rows [y, y+h) */
} phantom_box_t;

typedef struct phantom_info {
    int label;                               /* 1: opacities present */
    int split;                               /* 0 train, 1 val, 2 test */
    int n_lesions;                           /* 0 for negatives */
    phantom_box_t boxes[PHANTOM_MAX_LESIONS];/* tight boxes of each opacity's mask */
    int marker;                              /* 1 when a lead marker was drawn */
    phantom_box_t marker_box;
} phantom_info_t;

typedef struct phantom_config {
    int size;                  /* image side in pixels (32..2048); 256 by default */
    uint64_t seed;
    double positive_fraction;  /* probability that an image is positive; 0.5 */
    double marker_fraction;    /* probability of a lead marker, independent of the label; 0.5 */
} phantom_config_t;

typedef enum phantom_format { PHANTOM_FORMAT_RSNA = 0, PHANTOM_FORMAT_SIIM } phantom_format_t;

typedef struct phantom phantom_t;

void phantom_config_default(phantom_config_t *cfg);

/* A renderer with its workspaces for one configuration. NULL (logged) on bad config. */
phantom_t *phantom_create(const phantom_config_t *cfg);
void phantom_destroy(phantom_t *ph);

/*
 * Render image `index` into img [size][size] (caller's buffer) and describe it
 * in *info. Optional outputs (NULL to skip), each [size][size]:
 *   lesion_mask  bit k set where opacity k (0-based) is (the ground-truth mask)
 *   lung_mask    1 where the lung fields are visible (outside heart and mediastinum)
 */
int phantom_render(phantom_t *ph, uint32_t index, uint8_t *img, phantom_info_t *info,
                   uint8_t *lesion_mask, uint8_t *lung_mask);

/* Label and split of image `index` without rendering it. */
int phantom_label(const phantom_config_t *cfg, uint32_t index);
int phantom_split(const phantom_config_t *cfg, uint32_t index);

/* The id of image `index` ("phantom-000042"); buf of >= 24 bytes. */
void phantom_image_id(uint32_t index, char *buf, size_t size);

/*
 * Render images [begin, end) into DIR/images/<id>.png (DIR/images must exist)
 * and return their labels rows (no header), in index order, as a string
 * allocated with malloc and owned by the caller (*rows_len bytes, NUL ended).
 * Rows are the labels.csv rows (RSNA) or train-rle.csv rows (SIIM).
 */
int phantom_write_images(const phantom_config_t *cfg, const char *dir, phantom_format_t format,
                         uint32_t begin, uint32_t end, char **rows, size_t *rows_len);

/*
 * Write DIR/labels.csv (or DIR/train-rle.csv) with its header and `rows` (the
 * concatenated rows of phantom_write_images for images 0..count-1 in order),
 * and DIR/splits.csv for the same images.
 */
int phantom_write_csvs(const phantom_config_t *cfg, const char *dir, phantom_format_t format,
                       uint32_t count, const char *rows, size_t rows_len);

/* Create DIR and DIR/images (existing directories are fine). */
int phantom_make_dirs(const char *dir);

/* All of it in one process: directories, images 0..count-1 and the CSVs. */
int phantom_write_dataset(const phantom_config_t *cfg, const char *dir, phantom_format_t format,
                          uint32_t count);

#endif /* PHANTOM_H */
