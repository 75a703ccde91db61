/*
 * dataset_chexlocalize.c - the CheXlocalize kind (see dataset.h).
 *
 * gt_segmentations_{val,test}.json maps each image id
 * ("patient64541_study1_view1_frontal") to one mask per pathology, in COCO's
 * run-length encoding: {"size": [h, w], "counts": "<string>" or [int, ...]}.
 * The counts alternate runs of 0 and 1, starting with 0, over the image
 * flattened in column-major order (COCO's Fortran order). The compressed
 * string is COCO's LEB128-like form: each character holds 5 bits of a value
 * (c - 48), bit 0x20 says more characters follow, bit 0x10 of the last one
 * is the sign; from the third value on, a value is stored as the difference
 * to the value two places before. JSON is parsed by jansson (errors carry
 * line and column); the RLE is decoded here into the absolute runs every kind
 * shares. Images are CheXpert's <patient>/<study>/<view>.jpg under the image
 * folder; every entry is in the test split (these sets are for evaluation).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "io/dataset_kind.h"
#include "sc.h"

/*
 * Decode COCO counts (string or array) of an h x w mask into 1-runs of entry e.
 * Returns SC_OK, or SC_ERR_FORMAT with `why` set; SC_ERR_NOMEM.
 */
static int chex_decode_rle(ds_entry_t *e, json_t *counts, int64_t total, char *why, size_t why_size)
{
    int64_t pos = 0, prev[2] = {0, 0};
    size_t m = 0;
    const char *s = json_is_string(counts) ? json_string_value(counts) : NULL;
    size_t n_arr = json_is_array(counts) ? json_array_size(counts) : 0;
    if (!s && !json_is_array(counts)) {
        snprintf(why, why_size, "\"counts\" is neither a string nor an array");
        return SC_ERR_FORMAT;
    }
    for (size_t p = 0;; m++) {
        int64_t x = 0;
        if (s) {
            if (!s[p])
                break;
            int k = 0, more = 1;
            while (more) {
                int c = (unsigned char)s[p] - 48;
                if (!s[p] || c < 0 || c > 63 || k >= 12) {
                    snprintf(why, why_size, "RLE string has an invalid character at position %zu", p);
                    return SC_ERR_FORMAT;
                }
                x |= (int64_t)(c & 0x1f) << (5 * k);
                more = c & 0x20;
                p++;
                k++;
                if (!more && (c & 0x10))
                    x |= -((int64_t)1 << (5 * k)); /* sign-extend */
            }
            if (m > 2)
                x += prev[m % 2]; /* the value two places before */
        } else {
            if (m >= n_arr)
                break;
            json_t *v = json_array_get(counts, m);
            if (!json_is_integer(v)) {
                snprintf(why, why_size, "RLE count %zu is not an integer", m + 1);
                return SC_ERR_FORMAT;
            }
            x = json_integer_value(v);
        }
        prev[m % 2] = x;
        if (x < 0 || pos + x > total) {
            snprintf(why, why_size, "RLE count %zu (%lld) is negative or runs past the %lld pixels", m + 1,
                     (long long)x, (long long)total);
            return SC_ERR_FORMAT;
        }
        if (m % 2 == 1 && x > 0 && ds_add_run(e, pos, x) < 0)
            return SC_ERR_NOMEM;
        pos += x;
    }
    if (pos != total) {
        snprintf(why, why_size, "RLE counts cover %lld pixels, the mask has %lld", (long long)pos, (long long)total);
        return SC_ERR_FORMAT;
    }
    return SC_OK;
}

static int ds_read_chexlocalize(dataset_t *ds, const char *file)
{
    int rc = SC_OK;
    json_error_t jerr;
    json_t *root = json_load_file(file, 0, &jerr);
    if (!root) {
        if (jerr.line > 0)
            SC_ERROR("%s:%d:%d: malformed JSON: %s", file, jerr.line, jerr.column, jerr.text);
        else
            SC_ERROR("%s: %s", file, jerr.text);
        return ds_exists(file) ? SC_ERR_FORMAT : SC_ERR_IO;
    }
    CHECK(json_is_object(root), SC_ERR_FORMAT, "%s: expected a JSON object of image ids", file);
    const char *id;
    json_t *item;
    json_object_foreach(root, id, item) {
        int e = ds_get(ds, id, 0);
        CHECK(e >= 0, SC_ERR_NOMEM, "out of memory reading '%s'", file);
        ds_entry_t *ent = &ds->entries[e];
        ent->split = DATASET_SPLIT_TEST;
        json_t *mask = json_is_object(item) ? json_object_get(item, ds->finding) : NULL;
        json_t *size = mask ? json_object_get(mask, "size") : NULL;
        json_t *counts = mask ? json_object_get(mask, "counts") : NULL;
        if (!mask) {
            CHECK_RC(ds_bad(ds, e, file, 0, "image '%s' has no '%s' mask", id, ds->finding));
            continue;
        }
        if (!json_is_array(size) || json_array_size(size) != 2 || !json_is_integer(json_array_get(size, 0)) ||
            !json_is_integer(json_array_get(size, 1)) || !counts) {
            CHECK_RC(ds_bad(ds, e, file, 0, "the '%s' mask of '%s' needs \"size\": [h, w] and \"counts\"",
                            ds->finding, id));
            continue;
        }
        json_int_t h = json_integer_value(json_array_get(size, 0)), w = json_integer_value(json_array_get(size, 1));
        if (h <= 0 || w <= 0 || h > 65535 || w > 65535) {
            CHECK_RC(ds_bad(ds, e, file, 0, "the '%s' mask of '%s' has an invalid size %lldx%lld", ds->finding, id,
                            (long long)h, (long long)w));
            continue;
        }
        ent->src_w = (int)w;
        ent->src_h = (int)h;
        char why[256];
        rc = chex_decode_rle(ent, counts, (int64_t)w * h, why, sizeof why);
        CHECK(rc != SC_ERR_NOMEM, SC_ERR_NOMEM, "out of memory reading '%s'", file);
        if (rc < 0) {
            rc = SC_OK;
            CHECK_RC(ds_bad(ds, e, file, 0, "the '%s' mask of '%s': %s", ds->finding, id, why));
            continue;
        }
        ent->label = ent->n_runs > 0;
    }
cleanup:
    json_decref(root);
    return rc;
}

int dataset_chexpert_path(const char *images_dir, const char *id, const char *ext, char *buf, size_t size)
{
    const char *a = strchr(id, '_');
    const char *b = a ? strchr(a + 1, '_') : NULL;
    int n = b ? snprintf(buf, size, "%s/%.*s/%.*s/%s.%s", images_dir, (int)(a - id), id, (int)(b - a - 1), a + 1,
                         b + 1, ext)
              : snprintf(buf, size, "%s/%s.%s", images_dir, id, ext);
    return n < 0 || (size_t)n >= size ? SC_ERR_ARG : SC_OK;
}

/* patient64541_study1_view1_frontal -> IMAGES/patient64541/study1/view1_frontal.jpg (or .png when
   only that exists) */
static int chex_image_path(const dataset_t *ds, int i, char *buf, size_t size)
{
    const char *id = ds->entries[i].id;
    int rc = dataset_chexpert_path(ds->images_dir, id, "jpg", buf, size);
    if (rc < 0 || ds_exists(buf))
        return rc;
    char alt[4096];
    if (dataset_chexpert_path(ds->images_dir, id, "png", alt, sizeof alt) == SC_OK && ds_exists(alt))
        return dataset_chexpert_path(ds->images_dir, id, "png", buf, size);
    return SC_OK;
}

const ds_kind_t ds_kind_chexlocalize = {
    .format = DATASET_FORMAT_CHEXLOCALIZE,
    .name = "chexlocalize",
    .labels = {"gt_segmentations_val.json", "gt_segmentations_test.json", NULL},
    .images = {"images", "valid", "val", "test", NULL},
    .finding = "Airspace Opacity",
    .read = ds_read_chexlocalize,
    .image_path = chex_image_path,
};
