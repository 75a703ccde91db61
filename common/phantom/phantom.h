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
 * The data set files (phantom_layout.c) come in the layouts of the public
 * data sets, so that every data set kind of io/dataset.h can be tried without
 * the real data; the images in PNG (default), JPEG or DICOM:
 *   rsna          images/<id>.png|.jpg + labels.csv (patientId,x,y,width,height,Target; boxes
 *                 in the image's own pixels); with DICOM the Kaggle names:
 *                 stage_2_train_images/<id>.dcm + stage_2_train_labels.csv
 *   siim          images/<id>.png|.jpg + train-rle.csv (ImageId, EncodedPixels: one row per
 *                 opacity, relative column-major RLE, -1 negatives); with DICOM the shipped
 *                 tree dicom-images-train/<study UID>/<series UID>/<SOP UID>.dcm, ids = SOP UIDs
 *   nih           images/<NNNNNNNN_000>.png|.jpg|.dcm + Data_Entry_2017.csv (Pneumonia or
 *                 No Finding; one negative in ten is "Infiltration", which the nih kind leaves
 *                 out) + BBox_List_2017.csv (boxes in the 1024-pixel frame, whatever the
 *                 image size) + train_val_list.txt / test_list.txt
 *   vindr         train/<id>.dicom|.png|.jpg + annotations_train.csv: three readers per image
 *                 (R1 the exact boxes, R2 each box grown by 2 px, R3 drops the second box),
 *                 "Lung Opacity", "No finding" rows for negatives
 *   chexlocalize  images/patient<NNNNNN>/study1/view1_frontal.jpg|.png + gt_segmentations_val.json
 *                 (COCO RLE strings of the union of the opacities under "Airspace Opacity",
 *                 an empty "Cardiomegaly" mask for each image)
 * plus splits.csv (Image_ID,Split: train 70 %, val 15 %, test 15 %, per image) except for
 * nih (its own lists) and chexlocalize (all test).
 *
 * DICOM images hold the same 8-bit picture v, stored so that the default
 * rendering (io/dicom.h) gives v back exactly: 8 bits stored v; 12 bits stored
 * 16 v with RescaleIntercept -1024 and the window (center 1016.5, width 4081);
 * 16 bits stored 257 v (full range). MONOCHROME1 stores the complement
 * (2^bits - 1 - stored) so that the inversion gives v again. Lossless
 * transfer syntaxes keep v; JPEG baseline (quality 95) and JPEG files are lossy.
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

typedef enum phantom_format {
    PHANTOM_FORMAT_RSNA = 0,
    PHANTOM_FORMAT_SIIM,
    PHANTOM_FORMAT_NIH,
    PHANTOM_FORMAT_VINDR,
    PHANTOM_FORMAT_CHEXLOCALIZE
} phantom_format_t;

/* File format of the images. */
typedef enum phantom_image { PHANTOM_IMAGE_PNG = 0, PHANTOM_IMAGE_JPEG, PHANTOM_IMAGE_DICOM } phantom_image_t;

/* How the image files are written (PNG by default). */
typedef struct phantom_files {
    phantom_image_t image;
    int dicom_syntax;          /* a dicom_syntax_t (io/dicom.h); explicit little endian by default */
    int dicom_bits;            /* 8 (default), 12 or 16 stored bits */
    int dicom_monochrome1;     /* 1: PhotometricInterpretation MONOCHROME1 */
    int jpeg_quality;          /* 1..100, default 95 */
} phantom_files_t;

void phantom_files_default(phantom_files_t *files);
/* "rsna" | "siim" | "nih" | "vindr" | "chexlocalize"; SC_ERR_ARG (not logged) otherwise. */
int phantom_format_parse(const char *name, phantom_format_t *format);
const char *phantom_format_name(phantom_format_t format);

typedef struct phantom_config {
    int size;                  /* image side in pixels (32..2048); 256 by default */
    phantom_files_t files;     /* image file format (does not change the pictures) */
    uint64_t seed;
    double positive_fraction;  /* probability that an image is positive; 0.5 */
    double marker_fraction;    /* probability of a lead marker, independent of the label; 0.5 */
} phantom_config_t;


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
/* The id of image `index` in a layout (the above, or the layout's own form: NIH
   "00000042_000", SIIM DICOM SOP UIDs, CheXlocalize "patient000042_study1_view1_frontal"). */
void phantom_layout_id(const phantom_config_t *cfg, phantom_format_t format, uint32_t index, char *buf,
                       size_t size);

/*
 * Render images [begin, end) into the layout's image files (folders created
 * as needed) and return their annotation rows (no header), in index order, as
 * a string allocated with malloc and owned by the caller (*rows_len bytes, NUL
 * ended): the rows of the layout's labels file (NIH: lines tagged "E " for
 * Data_Entry_2017.csv and "B " for BBox_List_2017.csv; CheXlocalize: JSON
 * members, each ending ",\n").
 */
int phantom_write_images(const phantom_config_t *cfg, const char *dir, phantom_format_t format,
                         uint32_t begin, uint32_t end, char **rows, size_t *rows_len);

/*
 * Write the layout's annotation files with their headers and `rows` (the
 * concatenated rows of phantom_write_images for images 0..count-1 in order),
 * and the split files for the same images.
 */
int phantom_write_csvs(const phantom_config_t *cfg, const char *dir, phantom_format_t format,
                       uint32_t count, const char *rows, size_t rows_len);

/* Create DIR with its missing parents (existing directories are fine). */
int phantom_make_dirs(const char *dir);

/* All of it in one process: directories, images 0..count-1 and the CSVs. */
int phantom_write_dataset(const phantom_config_t *cfg, const char *dir, phantom_format_t format,
                          uint32_t count);

#endif /* PHANTOM_H */
