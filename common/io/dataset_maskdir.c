/*
 * dataset_maskdir.c - the mask-directory kind: DIR/masks/<id>.png beside every
 * image; nonzero mask pixels are abnormal (see dataset.h). The images are the
 * files of the image index (any format), in id order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/dataset_kind.h"
#include "io/png.h"
#include "sc.h"

static int ds_read_maskdir(dataset_t *ds, const char *labels)
{
    (void)labels;
    int rc = SC_OK;
    float *mask = NULL;
    char *mask_path = NULL;
    CHECK_RC(ds_index(ds));
    int n = imdir_count(ds->index);
    CHECK(n > 0, SC_ERR_FORMAT, "%s: no images (.png, .jpg, .dcm)", ds->images_dir);
    for (int k = 0; k < n; k++) {
        const char *id = imdir_id(ds->index, k);
        int e = ds_get(ds, id, 0);
        CHECK(e >= 0, SC_ERR_NOMEM, "out of memory");
        size_t len = strlen(ds->masks_dir) + strlen(id) + 6;
        free(mask_path);
        mask_path = malloc(len);
        CHECK_ALLOC(mask_path);
        snprintf(mask_path, len, "%s/%s.png", ds->masks_dir, id);
        char why[320];
        int w = 0, h = 0;
        if (png_probe(mask_path, &w, &h, why, (int)sizeof why) < 0) {
            CHECK_RC(ds_bad(ds, e, mask_path, 0, "mask of image '%s': %s", id, why));
            continue;
        }
        sc_free(mask);
        mask = NULL;
        rc = png_read_gray(mask_path, &w, &h, &mask);
        if (rc < 0) {
            rc = SC_OK;
            CHECK_RC(ds_bad(ds, e, mask_path, 0, "mask of image '%s' cannot be decoded", id));
            continue;
        }
        int label = 0;
        for (size_t p = 0; p < (size_t)w * h && !label; p++)
            label = mask[p] > 0.0f;
        ds->entries[e].label = label;
        ds->entries[e].src_w = w;
        ds->entries[e].src_h = h;
    }
cleanup:
    free(mask_path);
    sc_free(mask);
    return rc;
}

const ds_kind_t ds_kind_maskdir = {
    .format = DATASET_FORMAT_MASKDIR,
    .name = "maskdir",
    .labels = {NULL},
    .images = {"images", NULL},
    .read = ds_read_maskdir,
};
