/*
 * dataset.h - labelled chest X-ray data sets as they are distributed (module
 * io, prefix dataset_). One file per kind behind this interface
 * (dataset_<kind>.c, sharing dataset_kind.h); dataset.c holds what they share.
 *
 *   rsna          labels.csv or stage_2_train_labels.csv: patientId,x,y,width,height,Target, one
 *                 row per box, empty box fields on Target=0 rows; images in DIR/images or
 *                 DIR/stage_2_train_images (<patientId>.dcm as Kaggle ships them, or .png/.jpg).
 *                 Boxes are in the pixel frame of the source image: `source_size` x
 *                 `source_size` (1024 for RSNA) or, with source_size = 0, each image's own size.
 *   siim          train-rle.csv: ImageId, EncodedPixels (the leading-space name is accepted),
 *                 Kaggle's relative column-major RLE or -1; several rows per image are a union.
 *                 Images anywhere under DIR/images or DIR/dicom-images-train
 *                 (<study>/<series>/<ImageId>.dcm as shipped).
 *   nih           BBox_List_2017.csv (Image Index,Finding Label,Bbox [x,y,w,h]) in a 1024-pixel
 *                 frame, Data_Entry_2017.csv (Image Index,Finding Labels,...): images whose
 *                 Finding Labels contain `finding` are positive, "No Finding" images negative,
 *                 the others left out (counted as filtered). Images anywhere under DIR/images
 *                 or DIR (images_001/images/... as shipped).
 *   vindr         annotations_train.csv (image_id,rad_id,class_name,x_min,y_min,x_max,y_max):
 *                 an image is positive when at least `min_readers` radiologists boxed
 *                 `finding`; its mask is the cells covered by the boxes of at least
 *                 `min_readers` of them (1: the union). Images under DIR/images or DIR/train
 *                 (<image_id>.dicom). Boxes in each image's own pixel frame.
 *   chexlocalize  gt_segmentations_val.json or gt_segmentations_test.json: per image id a COCO
 *                 run-length mask per pathology; `finding` picks one (a non-empty mask is a
 *                 positive). Images as CheXpert ships them: <patientN>/<studyM>/<view>.jpg under
 *                 DIR/images, DIR/valid, DIR/val or DIR/test. Every image is in the test split.
 *   maskdir       DIR/masks/<id>.png next to every image; nonzero = abnormal; an image whose
 *                 mask is all zero is negative.
 * plus an optional DIR/splits.csv (Image_ID,Split with train|val|test); without it the set's
 * own split (nih's lists, chexlocalize's test set), else train/val/test 70/15/15 by a hash
 * of the image id.
 * Image files are found by id under the image folder, at any depth (imdir.h), and read
 * by content: PNG, JPEG or DICOM (imread.h).
 *
 * Bad input (missing or unreadable image, CSV row with too few fields, a
 * non-numeric coordinate, a box outside the image, an RLE past the image, an
 * image whose size differs from the annotation frame, malformed JSON, an
 * unknown split, a duplicate or conflicting id) is an error naming the file,
 * the line and the problem. With `skip_bad`, the whole entry (image) concerned
 * is dropped instead, each one is logged as a warning, and the number is
 * reported at the end and by dataset_skipped(): nothing is dropped silently.
 */
#ifndef DATASET_H
#define DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "io/imread.h"

typedef enum dataset_format {
    DATASET_FORMAT_AUTO = 0, /* from the files present in DIR */
    DATASET_FORMAT_RSNA,
    DATASET_FORMAT_SIIM,
    DATASET_FORMAT_MASKDIR,
    DATASET_FORMAT_NIH,
    DATASET_FORMAT_VINDR,
    DATASET_FORMAT_CHEXLOCALIZE
} dataset_format_t;

/* "auto" | "rsna" | "siim" | "maskdir" | "nih" | "vindr" | "chexlocalize"; SC_ERR_ARG (not logged). */
int dataset_format_parse(const char *name, dataset_format_t *format);
const char *dataset_format_name(dataset_format_t format);

typedef enum dataset_split {
    DATASET_SPLIT_NONE = -1, /* not listed in the splits file (or no splits file) */
    DATASET_SPLIT_TRAIN = 0,
    DATASET_SPLIT_VAL = 1,
    DATASET_SPLIT_TEST = 2
} dataset_split_t;

/* How an RSNA box in the S-pixel source frame becomes cells of the R x R model grid. */
typedef enum dataset_box_map {
    /*
     * The paper's (docs/methods.md section 2): x0 = int(R*x/(S-1)), x1 = int(R*(x+w)/(S-1)),
     * same for y, rows y0..y1 and columns x0..x1 inclusive (clamped to R-1). With
     * S = 1024 this is the published int(320*v/1023).
     */
    DATASET_BOX_PAPER = 0,
    /* The cells whose footprint [j*S/R, (j+1)*S/R) overlaps the box's pixels [x, x+w). */
    DATASET_BOX_EXACT
} dataset_box_map_t;

/* How a pixel mask (SIIM RLE, mask PNG) at source size becomes the R x R grid. */
typedef enum dataset_mask_rule {
    DATASET_MASK_HALF = 0, /* a cell is abnormal when >= half its area is (area resize, then >= 0.5) */
    DATASET_MASK_ANY       /* a cell is abnormal when any abnormal pixel overlaps it */
} dataset_mask_rule_t;

typedef struct dataset_options {
    dataset_format_t format;
    int skip_bad;                  /* 1: drop, log and count bad entries instead of failing */
    dataset_box_map_t box_map;
    dataset_mask_rule_t mask_rule;
    int source_size;               /* > 0: labels in a source_size^2 frame; 0: each image's PNG size */
    int verify;                    /* images checked at open: 0 none, 1 PNG header (default), 2 full decode */
    const char *labels;            /* NULL: DIR/labels.csv, DIR/stage_2_train_labels.csv or DIR/train-rle.csv */
    const char *splits;            /* NULL: DIR/splits.csv when present */
    const char *class_info;        /* RSNA stage_2_detailed_class_info.csv: keep Normal and Lung Opacity
                                      (the paper's filter); NULL: no filter */
    const char *images_dir;        /* NULL: DIR/images */
    const char *masks_dir;         /* NULL: DIR/masks (MASKDIR) */
    imread_options_t read;         /* how image files are decoded (the DICOM window) */
    const char *finding;           /* nih, vindr, chexlocalize: the finding to localize (NULL: the
                                      kind's default: Pneumonia, Lung Opacity, Airspace Opacity) */
    int min_readers;               /* vindr: radiologists who must agree (1 = union, the default) */
} dataset_options_t;

/* A box in source pixels: columns [x, x+w), rows [y, y+h). */
typedef struct dataset_box {
    double x, y, w, h;
    int reader;  /* vindr: which radiologist drew it (0, 1, ... in order of appearance); 0 elsewhere */
} dataset_box_t;

typedef struct dataset dataset_t;

/* Defaults: AUTO, no skipping, paper box mapping, HALF, source size from the images, verify 1,
   the file's DICOM window, the kind's finding, min_readers 1. */
void dataset_options_default(dataset_options_t *opt);

/*
 * Load a data set directory. On success *out is owned by the caller (free with
 * dataset_destroy). Errors are logged with file:line and returned (SC_ERR_IO,
 * SC_ERR_FORMAT, SC_ERR_ARG). Entries keep the order of first appearance in the
 * labels file (MASKDIR: sorted ids).
 */
int dataset_open(const char *dir, const dataset_options_t *opt, dataset_t **out);
void dataset_destroy(dataset_t *ds);

dataset_format_t dataset_format(const dataset_t *ds);
int dataset_count(const dataset_t *ds);
/* Entries dropped as bad with skip_bad (0 otherwise). */
int dataset_skipped(const dataset_t *ds);
/* Entries dropped by the class filter (not Normal / Lung Opacity). */
int dataset_filtered(const dataset_t *ds);
/* Positives left out because they have no ground truth to localize (nih: labelled with the
   finding in Data_Entry_2017.csv, but without a box of it in BBox_List_2017.csv). */
int dataset_unboxed(const dataset_t *ds);

/* Where the splits come from: "splits file", "the data set's own split" or "hash of the image id
   (train/val/test 70/15/15)" (a static string). */
const char *dataset_split_source(const dataset_t *ds);

/* How the data set's images are decoded (the options' `read`); owned by the data set. */
const imread_options_t *dataset_read_options(const dataset_t *ds);

/* Per entry i in [0, count): strings are owned by the data set. */
const char *dataset_id(const dataset_t *ds, int i);
int dataset_label(const dataset_t *ds, int i);             /* 0 normal, 1 abnormal */
dataset_split_t dataset_split(const dataset_t *ds, int i);
/* Source frame size (from the option or the PNG header; 0 when not yet known). */
void dataset_source_size(const dataset_t *ds, int i, int *w, int *h);
/* Index of an id, or -1. */
int dataset_find(const dataset_t *ds, const char *id);
/* Boxes of entry i (rsna, nih, vindr; 0 for other kinds and negatives). */
int dataset_box_count(const dataset_t *ds, int i);
dataset_box_t dataset_box(const dataset_t *ds, int i, int k);

/* The image file of entry i (found at open) into buf; SC_ERR_ARG when it does not fit. */
int dataset_image_path(const dataset_t *ds, int i, char *buf, size_t size);

/*
 * CheXpert's file of a CheXlocalize image id: "patient64541_study1_view1_frontal"
 * -> IMAGES/patient64541/study1/view1_frontal.EXT (an id without two '_' ->
 * IMAGES/ID.EXT) into buf. SC_ERR_ARG when it does not fit. Not checked to exist.
 */
int dataset_chexpert_path(const char *images_dir, const char *id, const char *ext, char *buf, size_t size);

/*
 * Ground-truth mask of entry i on the res x res model grid into mask [res][res]
 * (caller's buffer): 1 inside, 0 outside; all zero for negatives. Allocates
 * its own scratch for pixel masks (called once per image, not per map).
 */
int dataset_mask(const dataset_t *ds, int i, int res, uint8_t *mask);

/* Names and parsing of splits ("train", "val", "test"); parse returns SC_ERR_FORMAT (not logged). */
const char *dataset_split_name(dataset_split_t split);
int dataset_split_parse(const char *name, dataset_split_t *split);

#endif /* DATASET_H */
