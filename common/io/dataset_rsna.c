/*
 * dataset_rsna.c - the RSNA Pneumonia kind: patientId,x,y,width,height,Target rows (see dataset.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/dataset_kind.h"
#include "sc.h"

static int ds_read_rsna(dataset_t *ds, const char *file)
{
    int rc = SC_OK;
    ds_rows_t rows;
    CHECK_RC(ds_rows_open(&rows, file, "labels file"));
    int col_id = -1, col_x = -1, col_y = -1, col_w = -1, col_h = -1, col_t = -1, n_cols = 0;
    while (ds_rows_next(&rows)) {
        char **f = rows.fields;
        int nf = rows.n_fields, lineno = rows.line;
        if (col_id < 0) {
            col_id = ds_column(f, nf, "patientId");
            col_x = ds_column(f, nf, "x");
            col_y = ds_column(f, nf, "y");
            col_w = ds_column(f, nf, "width");
            col_h = ds_column(f, nf, "height");
            col_t = ds_column(f, nf, "Target");
            CHECK(col_id >= 0 && col_x >= 0 && col_y >= 0 && col_w >= 0 && col_h >= 0 && col_t >= 0,
                  SC_ERR_FORMAT,
                  "%s:%d: expected the header patientId,x,y,width,height,Target (RSNA labels)",
                  file, lineno);
            n_cols = nf;
            continue;
        }
        if (nf < n_cols || !f[col_id][0]) {
            int e = nf > col_id && f[col_id][0] ? ds_get(ds, f[col_id], lineno) : -1;
            CHECK(e != SC_ERR_NOMEM, SC_ERR_NOMEM, "out of memory reading '%s'", file);
            CHECK_RC(ds_bad(ds, e, file, lineno, "%s (expected %d fields: patientId,x,y,width,height,Target)",
                            nf >= n_cols && !f[col_id][0] ? "empty patientId" : "too few fields", n_cols));
            continue;
        }
        int e = ds_get(ds, f[col_id], lineno);
        CHECK(e >= 0, SC_ERR_NOMEM, "out of memory reading '%s'", file);
        ds_entry_t *ent = &ds->entries[e];
        const char *t = f[col_t];
        if (strcmp(t, "0") && strcmp(t, "1")) {
            CHECK_RC(ds_bad(ds, e, file, lineno, "Target must be 0 or 1, not '%s'", t));
            continue;
        }
        int target = t[0] - '0';
        if (ent->label >= 0 && (target == 0 || ent->label == 0)) {
            CHECK_RC(ds_bad(ds, e, file, lineno, "duplicate patientId '%s' (first on line %d)%s",
                            ent->id, ent->line, target != ent->label ? " with a different Target" : ""));
            continue;
        }
        ent->label = target;
        static const char *const names[4] = {"x", "y", "width", "height"};
        int cols[4] = {col_x, col_y, col_w, col_h};
        if (target == 0) {
            int has_box = 0;
            for (int k = 0; k < 4; k++)
                has_box |= f[cols[k]][0] != '\0';
            if (has_box)
                CHECK_RC(ds_bad(ds, e, file, lineno, "a Target=0 row must have empty box fields"));
            continue;
        }
        CHECK_RC(ds_read_box(ds, e, file, lineno, f, cols, names, DS_BOX_XYWH, 0));
    }
    CHECK(col_id >= 0, SC_ERR_FORMAT, "%s: empty labels file (no header)", file);
cleanup:
    ds_rows_close(&rows);
    return rc;
}

const ds_kind_t ds_kind_rsna = {
    .format = DATASET_FORMAT_RSNA,
    .name = "rsna",
    .labels = {"labels.csv", "stage_2_train_labels.csv", NULL},
    .images = {"images", "stage_2_train_images", NULL},
    .read = ds_read_rsna,
};
