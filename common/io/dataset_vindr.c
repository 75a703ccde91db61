/*
 * dataset_vindr.c - the VinDr-CXR kind (see dataset.h).
 *
 * annotations_train.csv has one row per box and radiologist:
 * image_id,rad_id,class_name,x_min,y_min,x_max,y_max (empty coordinates on
 * "No finding" rows), in the pixel frame of each image's DICOM. Every image
 * id in the file is an entry. Boxes of `finding` are kept with their reader
 * (rad_id, numbered in order of appearance in the file); an image is positive
 * when at least min_readers distinct readers boxed the finding, and its mask
 * is the model-grid cells covered by the boxes of at least min_readers readers
 * (dataset_mask). The test file (annotations_test.csv) has no rad_id column:
 * its boxes are the consensus, read as one reader.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/dataset_kind.h"
#include "sc.h"

#define VINDR_MAX_READERS 64

static int ds_read_vindr(dataset_t *ds, const char *file)
{
    int rc = SC_OK, n_readers = 0;
    char *readers[VINDR_MAX_READERS] = {0};
    ds_rows_t rows;
    CHECK_RC(ds_rows_open(&rows, file, "labels file"));
    int col_id = -1, col_rad = -1, col_class = -1, col_c[4] = {-1, -1, -1, -1}, n_cols = 0;
    static const char *const coord_names[4] = {"x_min", "y_min", "x_max", "y_max"};
    while (ds_rows_next(&rows)) {
        char **f = rows.fields;
        int nf = rows.n_fields, lineno = rows.line;
        if (col_id < 0) {
            col_id = ds_column(f, nf, "image_id");
            col_rad = ds_column(f, nf, "rad_id");
            col_class = ds_column(f, nf, "class_name");
            int ok = col_id >= 0 && col_class >= 0;
            for (int k = 0; k < 4; k++)
                ok &= (col_c[k] = ds_column(f, nf, coord_names[k])) >= 0;
            CHECK(ok, SC_ERR_FORMAT,
                  "%s:%d: expected the header image_id,rad_id,class_name,x_min,y_min,x_max,y_max (VinDr-CXR)",
                  file, lineno);
            n_cols = nf;
            continue;
        }
        if (nf < n_cols || !f[col_id][0]) {
            int e = nf > col_id && f[col_id][0] ? ds_get(ds, f[col_id], lineno) : -1;
            CHECK(e != SC_ERR_NOMEM, SC_ERR_NOMEM, "out of memory reading '%s'", file);
            CHECK_RC(ds_bad(ds, e, file, lineno, "%s (expected %d fields)",
                            nf >= n_cols ? "empty image_id" : "too few fields", n_cols));
            continue;
        }
        int e = ds_get(ds, f[col_id], lineno);
        CHECK(e >= 0, SC_ERR_NOMEM, "out of memory reading '%s'", file);
        ds_entry_t *ent = &ds->entries[e];
        if (ent->label < 0)
            ent->label = 0; /* counted below from the readers */
        if (strcmp(f[col_class], ds->finding))
            continue;
        int reader = 0;
        if (col_rad >= 0) {
            const char *rad = f[col_rad];
            for (reader = 0; reader < n_readers && strcmp(readers[reader], rad); reader++)
                ;
            if (reader == n_readers) {
                CHECK(n_readers < VINDR_MAX_READERS, SC_ERR_FORMAT, "%s:%d: more than %d distinct rad_id values",
                      file, lineno, VINDR_MAX_READERS);
                readers[n_readers] = ds_strdup(rad);
                CHECK_ALLOC(readers[n_readers]);
                n_readers++;
            }
        }
        CHECK_RC(ds_read_box(ds, e, file, lineno, f, col_c, coord_names, DS_BOX_CORNERS, reader));
    }
    CHECK(col_id >= 0, SC_ERR_FORMAT, "%s: empty labels file (no header)", file);
    /* Label: distinct readers with a box >= min_readers. */
    for (int i = 0; i < ds->n; i++) {
        ds_entry_t *ent = &ds->entries[i];
        uint64_t seen = 0;
        for (int k = 0; k < ent->n_boxes; k++)
            seen |= 1ULL << ent->boxes[k].reader;
        ent->label = __builtin_popcountll(seen) >= ds->opt.min_readers;
    }
cleanup:
    for (int k = 0; k < n_readers; k++)
        free(readers[k]);
    ds_rows_close(&rows);
    return rc;
}

const ds_kind_t ds_kind_vindr = {
    .format = DATASET_FORMAT_VINDR,
    .name = "vindr",
    .labels = {"annotations_train.csv", "annotations/annotations_train.csv", "annotations_test.csv", NULL},
    .images = {"images", "train", "test", NULL},
    .finding = "Lung Opacity",
    .read = ds_read_vindr,
};
