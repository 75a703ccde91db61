/*
 * dataset_siim.c - the SIIM-ACR Pneumothorax kind: train-rle.csv with Kaggle's
 * relative column-major RLE (docs/methods.md section 2; see dataset.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/dataset_kind.h"
#include "sc.h"

/* Parse one relative RLE into absolute runs of entry e; problems through ds_bad. */
static int ds_parse_rle(dataset_t *ds, int e, char *rle, const char *file, int lineno)
{
    ds_entry_t *ent = &ds->entries[e];
    int64_t total = (int64_t)ent->src_w * ent->src_h, pos = 0;
    int count = 0;
    char *save = NULL;
    int64_t pending = -1;
    for (char *tok = strtok_r(rle, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(tok, &end, 10);
        if (errno || *end || v < 0)
            return ds_bad(ds, e, file, lineno, "RLE value %d is not a non-negative integer: '%s'",
                          count + 1, tok);
        count++;
        if (pending < 0) {
            pending = pos + v; /* relative offset from the end of the previous run */
            continue;
        }
        if (v == 0)
            return ds_bad(ds, e, file, lineno, "RLE run %d has length 0", count / 2);
        if (pending + v > total)
            return ds_bad(ds, e, file, lineno,
                          "RLE run %d (pixels %lld..%lld) runs past the end of the %dx%d image "
                          "(%lld pixels)",
                          count / 2, (long long)pending, (long long)(pending + v - 1), ent->src_w,
                          ent->src_h, (long long)total);
        if (ds_add_run(ent, pending, v) < 0)
            return SC_ERR_NOMEM;
        pos = pending + v;
        pending = -1;
    }
    if (count == 0 || pending >= 0)
        return ds_bad(ds, e, file, lineno, "RLE has %s (expected pairs of offset and length)",
                      count == 0 ? "no values" : "an odd number of values");
    return SC_OK;
}

static int ds_read_siim(dataset_t *ds, const char *file)
{
    int rc = SC_OK;
    ds_rows_t rows;
    CHECK_RC(ds_rows_open(&rows, file, "labels file"));
    int col_id = -1, col_rle = -1, n_cols = 0;
    while (ds_rows_next(&rows)) {
        char **f = rows.fields;
        int nf = rows.n_fields, lineno = rows.line;
        if (col_id < 0) {
            col_id = ds_column(f, nf, "ImageId");
            col_rle = ds_column(f, nf, "EncodedPixels"); /* " EncodedPixels" after trimming */
            CHECK(col_id >= 0 && col_rle >= 0, SC_ERR_FORMAT,
                  "%s:%d: expected the header 'ImageId, EncodedPixels' (SIIM labels)", file, lineno);
            n_cols = nf;
            continue;
        }
        if (nf < n_cols || !f[col_id][0]) {
            int e = nf > col_id && f[col_id][0] ? ds_get(ds, f[col_id], lineno) : -1;
            CHECK(e != SC_ERR_NOMEM, SC_ERR_NOMEM, "out of memory reading '%s'", file);
            CHECK_RC(ds_bad(ds, e, file, lineno, "%s (expected %d fields: ImageId, EncodedPixels)",
                            nf >= n_cols && !f[col_id][0] ? "empty ImageId" : "too few fields", n_cols));
            continue;
        }
        int e = ds_get(ds, f[col_id], lineno);
        CHECK(e >= 0, SC_ERR_NOMEM, "out of memory reading '%s'", file);
        ds_entry_t *ent = &ds->entries[e];
        int negative = !strcmp(f[col_rle], "-1");
        if (ent->label >= 0 && (negative || ent->label == 0)) {
            CHECK_RC(ds_bad(ds, e, file, lineno, "duplicate ImageId '%s' (first on line %d)%s", ent->id,
                            ent->line, negative != (ent->label == 0) ? " with a different finding" : ""));
            continue;
        }
        ent->label = negative ? 0 : 1;
        if (negative)
            continue;
        if (!ent->rle_line)
            ent->rle_line = lineno;
        CHECK_RC(ds_source_size(ds, e, file, lineno));
        if (ent->bad)
            continue;
        rc = ds_parse_rle(ds, e, f[col_rle], file, lineno);
        CHECK(rc != SC_ERR_NOMEM, SC_ERR_NOMEM, "out of memory reading '%s'", file);
        CHECK_RC(rc);
    }
    CHECK(col_id >= 0, SC_ERR_FORMAT, "%s: empty labels file (no header)", file);
cleanup:
    ds_rows_close(&rows);
    return rc;
}

const ds_kind_t ds_kind_siim = {
    .format = DATASET_FORMAT_SIIM,
    .name = "siim",
    .labels = {"train-rle.csv", NULL},
    .images = {"images", "dicom-images-train", NULL},
    .read = ds_read_siim,
};
