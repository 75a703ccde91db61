/*
 * dataset_nih.c - the NIH ChestX-ray14 kind (see dataset.h).
 *
 * Data_Entry_2017.csv gives every image's findings ("Effusion|Pneumonia", or
 * "No Finding"); BBox_List_2017.csv gives boxes for 984 images in their
 * 1024-pixel frame: "Image Index,Finding Label,Bbox [x,y,w,h]" (the header
 * splits the box name over four columns). Image Index carries the file name
 * (00013118_008.png); the id is that name without its extension. The set's own
 * split lists, train_val_list.txt and test_list.txt, are used when present:
 * test_list is the test split; train_val is split by patient (the id's part
 * before '_'), one patient in eight to val, the rest to train. Images whose
 * Finding Labels name the finding but that have no box of it (most of them:
 * the box list covers 984 images over eight findings) are left out and counted
 * (dataset_unboxed): there is nothing to localize in them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io/dataset_kind.h"
#include "rng.h"
#include "sc.h"

#define NIH_FRAME 1024

/* The id of an Image Index: the name without a .png/.jpg/.dcm extension (in place). */
static char *nih_id(char *name)
{
    char *dot = strrchr(name, '.');
    if (dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".dcm")))
        *dot = '\0';
    return name;
}

/* 1 when `finding` is one of the '|'-separated labels. */
static int nih_has_finding(const char *labels, const char *finding)
{
    size_t n = strlen(finding);
    for (const char *p = labels; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, finding, n))
            return 1;
        if (!bar)
            break;
        p = bar + 1;
    }
    return 0;
}

static int nih_read_entries(dataset_t *ds, const char *file)
{
    int rc = SC_OK;
    ds_rows_t rows;
    CHECK_RC(ds_rows_open(&rows, file, "entries file"));
    int col_id = -1, col_labels = -1;
    while (ds_rows_next(&rows)) {
        char **f = rows.fields;
        int nf = rows.n_fields, lineno = rows.line;
        if (col_id < 0) {
            col_id = ds_column(f, nf, "Image Index");
            col_labels = ds_column(f, nf, "Finding Labels");
            CHECK(col_id >= 0 && col_labels >= 0, SC_ERR_FORMAT,
                  "%s:%d: expected a header with 'Image Index' and 'Finding Labels' (NIH Data_Entry_2017.csv)",
                  file, lineno);
            continue;
        }
        if (nf <= col_labels || nf <= col_id || !f[col_id][0]) {
            CHECK_RC(ds_bad(ds, -1, file, lineno, "too few fields (expected Image Index,Finding Labels,...)"));
            continue;
        }
        int e = ds_get(ds, nih_id(f[col_id]), lineno);
        CHECK(e >= 0, SC_ERR_NOMEM, "out of memory reading '%s'", file);
        ds_entry_t *ent = &ds->entries[e];
        if (ent->line != lineno) {
            CHECK_RC(ds_bad(ds, e, file, lineno, "duplicate Image Index '%s' (first on line %d)", ent->id,
                            ent->line));
            continue;
        }
        if (nih_has_finding(f[col_labels], ds->finding))
            ent->label = 1;
        else if (!strcmp(f[col_labels], "No Finding"))
            ent->label = 0;
        else
            ent->bad = 2; /* another finding: neither positive nor a clean negative */
        ent->src_w = ent->src_h = ds->opt.source_size > 0 ? ds->opt.source_size : NIH_FRAME;
    }
    CHECK(col_id >= 0, SC_ERR_FORMAT, "%s: empty file (no header)", file);
cleanup:
    ds_rows_close(&rows);
    return rc;
}

static int nih_read_boxes(dataset_t *ds, const char *file, int have_entries)
{
    int rc = SC_OK;
    ds_rows_t rows;
    CHECK_RC(ds_rows_open(&rows, file, "labels file"));
    int col_id = -1, col_f = -1, col_x = -1;
    while (ds_rows_next(&rows)) {
        char **f = rows.fields;
        int nf = rows.n_fields, lineno = rows.line;
        if (col_id < 0) {
            col_id = ds_column(f, nf, "Image Index");
            col_f = ds_column(f, nf, "Finding Label");
            for (int k = 0; k < nf && k < DS_MAX_FIELDS && col_x < 0; k++)
                if (!strncmp(f[k], "Bbox", 4))
                    col_x = k;
            CHECK(col_id >= 0 && col_f >= 0 && col_x >= 0, SC_ERR_FORMAT,
                  "%s:%d: expected the header 'Image Index,Finding Label,Bbox [x,y,w,h]' (NIH BBox_List_2017.csv)",
                  file, lineno);
            continue;
        }
        int e = nf > col_id && f[col_id][0] ? ds_find(ds, nih_id(f[col_id])) : -1;
        if (nf < col_x + 4 || nf <= col_f || !f[col_id][0]) {
            CHECK_RC(ds_bad(ds, e, file, lineno, "too few fields (expected Image Index,Finding Label,x,y,w,h)"));
            continue;
        }
        /* BBox_List_2017.csv spells Data_Entry's "Infiltration" as "Infiltrate" */
        if (strcmp(f[col_f], ds->finding) &&
            !(!strcmp(f[col_f], "Infiltrate") && !strcmp(ds->finding, "Infiltration")))
            continue; /* a box of another finding */
        if (e < 0 && have_entries) {
            CHECK_RC(ds_bad(ds, -1, file, lineno, "box for '%s', an image not in Data_Entry_2017.csv",
                            f[col_id]));
            continue;
        }
        if (e < 0) {
            e = ds_get(ds, f[col_id], lineno);
            CHECK(e >= 0, SC_ERR_NOMEM, "out of memory reading '%s'", file);
            ds->entries[e].label = 1;
            ds->entries[e].src_w = ds->entries[e].src_h = ds->opt.source_size > 0 ? ds->opt.source_size : NIH_FRAME;
        }
        ds_entry_t *ent = &ds->entries[e];
        if (ent->bad)
            continue;
        if (ent->label != 1) {
            CHECK_RC(ds_bad(ds, e, file, lineno, "a '%s' box for '%s', whose Finding Labels do not name it",
                            ds->finding, ent->id));
            continue;
        }
        static const char *const names[4] = {"x", "y", "w", "h"};
        const int cols[4] = {col_x, col_x + 1, col_x + 2, col_x + 3};
        CHECK_RC(ds_read_box(ds, e, file, lineno, f, cols, names, DS_BOX_XYWH, 0));
    }
    CHECK(col_id >= 0, SC_ERR_FORMAT, "%s: empty labels file (no header)", file);
cleanup:
    ds_rows_close(&rows);
    return rc;
}

/* train_val_list.txt / test_list.txt: one Image Index per line. */
static int nih_read_list(dataset_t *ds, const char *file, int test)
{
    int rc = SC_OK;
    char *line = NULL;
    size_t line_cap = 0;
    FILE *fp = fopen(file, "r");
    CHECK(fp, SC_ERR_IO, "cannot open '%s': %s", file, strerror(errno));
    while (getline(&line, &line_cap, fp) != -1) {
        char *name = ds_trim(line);
        if (!*name)
            continue;
        int e = ds_find(ds, nih_id(name));
        if (e < 0)
            continue;
        if (test) {
            ds->entries[e].split = DATASET_SPLIT_TEST;
        } else {
            char patient[64];
            snprintf(patient, sizeof patient, "%s", name);
            char *bar = strchr(patient, '_');
            if (bar)
                *bar = '\0';
            ds->entries[e].split = rng_hash_str(patient) % 8 == 0 ? DATASET_SPLIT_VAL : DATASET_SPLIT_TRAIN;
        }
    }
cleanup:
    free(line);
    if (fp)
        fclose(fp);
    return rc;
}

static int ds_read_nih(dataset_t *ds, const char *labels)
{
    int rc = SC_OK;
    char *entries = ds_join(ds->dir, "Data_Entry_2017.csv");
    char *lists[2] = {ds_join(ds->dir, "train_val_list.txt"), ds_join(ds->dir, "test_list.txt")};
    CHECK_ALLOC(entries);
    CHECK_ALLOC(lists[0]);
    CHECK_ALLOC(lists[1]);
    int have_entries = ds_exists(entries);
    if (have_entries)
        CHECK_RC(nih_read_entries(ds, entries));
    else
        SC_WARN("%s: no Data_Entry_2017.csv; only the images with '%s' boxes are used (all positive)", ds->dir,
                ds->finding);
    CHECK_RC(nih_read_boxes(ds, labels, have_entries));
    /* A positive without a box has no ground truth: an empty mask would count
     * as a localization failure of every method. Left out and counted. */
    for (int i = 0; i < ds->n; i++)
        if (!ds->entries[i].bad && ds->entries[i].label == 1 && ds->entries[i].n_boxes == 0)
            ds->entries[i].bad = 3;
    for (int k = 0; k < 2; k++)
        if (ds_exists(lists[k]))
            CHECK_RC(nih_read_list(ds, lists[k], k == 1));
cleanup:
    free(entries);
    free(lists[0]);
    free(lists[1]);
    return rc;
}

const ds_kind_t ds_kind_nih = {
    .format = DATASET_FORMAT_NIH,
    .name = "nih",
    .labels = {"BBox_List_2017.csv", NULL},
    .images = {"images", ".", NULL},
    .finding = "Pneumonia",
    .read = ds_read_nih,
};
