/*
 * dataset.c - what the data set kinds share (see dataset.h, dataset_kind.h):
 * the id table, the error policy, finding image files, splits, the RSNA class
 * filter, image checks and the model-grid masks.
 *
 * Parsing keeps one entry per image id (hash table on the id). A problem found
 * on a line goes through ds_bad(): an error naming file:line without
 * skip_bad, otherwise the entry is marked bad, a warning is logged and the
 * entry is removed (and counted) when parsing ends.
 */
#include "io/dataset.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/dataset_kind.h"
#include "io/image.h"
#include "io/imread.h"
#include "io/png.h"
#include "rng.h"
#include "sc.h"

static const ds_kind_t *const ds_kinds[] = {&ds_kind_rsna, &ds_kind_siim, &ds_kind_nih, &ds_kind_vindr,
                                            &ds_kind_chexlocalize, &ds_kind_maskdir};
#define DS_N_KINDS ((int)(sizeof ds_kinds / sizeof ds_kinds[0]))

/* ------------------------------------------------------------------ helpers */

char *ds_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

char *ds_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

int ds_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int ds_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Strip spaces and one pair of surrounding double quotes, in place. */
char *ds_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s[n - 1] = '\0';
        s++;
    }
    return s;
}

/* Split a line on commas into at most DS_MAX_FIELDS trimmed fields; returns the count. */
int ds_split_fields(char *line, char **fields)
{
    if ((unsigned char)line[0] == 0xEF && (unsigned char)line[1] == 0xBB && (unsigned char)line[2] == 0xBF)
        line += 3; /* UTF-8 byte order mark written by spreadsheet programs */
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    int count = 0;
    char *p = line;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (count < DS_MAX_FIELDS)
            fields[count] = ds_trim(p);
        count++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return count;
}

int ds_blank(const char *line)
{
    for (; *line; line++)
        if (!isspace((unsigned char)*line))
            return 0;
    return 1;
}

int ds_parse_double(const char *s, double *v)
{
    if (!*s)
        return -1;
    char *end = NULL;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || *end || !isfinite(x))
        return -1;
    *v = x;
    return 0;
}

/* --------------------------------------------------------------- hash table */

int ds_find(const dataset_t *ds, const char *id)
{
    if (!ds->table_size)
        return -1;
    size_t mask = (size_t)ds->table_size - 1;
    for (size_t h = rng_hash_str(id) & mask;; h = (h + 1) & mask) {
        int e = ds->table[h];
        if (e == 0)
            return -1;
        if (!strcmp(ds->entries[e - 1].id, id))
            return e - 1;
    }
}

int ds_rehash(dataset_t *ds, int size)
{
    int *table = sc_calloc((size_t)size, sizeof(int));
    if (!table)
        return SC_ERR_NOMEM;
    sc_free(ds->table);
    ds->table = table;
    ds->table_size = size;
    size_t mask = (size_t)size - 1;
    for (int i = 0; i < ds->n; i++) {
        size_t h = rng_hash_str(ds->entries[i].id) & mask;
        while (table[h])
            h = (h + 1) & mask;
        table[h] = i + 1;
    }
    return SC_OK;
}

/* Index of id, adding a new entry (label -1) when absent. Negative on no memory. */
int ds_get(dataset_t *ds, const char *id, int line)
{
    int i = ds_find(ds, id);
    if (i >= 0)
        return i;
    if (ds->n == ds->cap) {
        int cap = ds->cap ? 2 * ds->cap : 256;
        ds_entry_t *e = realloc(ds->entries, (size_t)cap * sizeof *e);
        if (!e)
            return SC_ERR_NOMEM;
        ds->entries = e;
        ds->cap = cap;
    }
    ds_entry_t *e = &ds->entries[ds->n];
    memset(e, 0, sizeof *e);
    e->id = ds_strdup(id);
    if (!e->id)
        return SC_ERR_NOMEM;
    e->label = -1;
    e->split = DATASET_SPLIT_NONE;
    e->line = line;
    ds->n++;
    if (2 * ds->n > ds->table_size) {
        if (ds_rehash(ds, ds->table_size ? 2 * ds->table_size : 1024) < 0)
            return SC_ERR_NOMEM;
    } else {
        size_t mask = (size_t)ds->table_size - 1, h = rng_hash_str(id) & mask;
        while (ds->table[h])
            h = (h + 1) & mask;
        ds->table[h] = ds->n;
    }
    return ds->n - 1;
}

/*
 * A problem with entry `entry` (-1: none attributable) at file:line. Without
 * skip_bad: logged as an error, SC_ERR_FORMAT returned. With skip_bad: the entry
 * is marked bad (dropped later), a warning logged, SC_OK returned.
 */
int ds_bad(dataset_t *ds, int entry, const char *file, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!ds->opt.skip_bad) {
        if (line > 0)
            SC_ERROR("%s:%d: %s", file, line, msg);
        else
            SC_ERROR("%s: %s", file, msg);
        return SC_ERR_FORMAT;
    }
    if (entry >= 0) {
        if (ds->entries[entry].bad)
            return SC_OK; /* counted once per entry */
        ds->entries[entry].bad = 1;
    } else {
        ds->skipped++; /* a line without a usable id counts on its own */
    }
    if (ds->warned++ < DS_MAX_WARNINGS) {
        if (line > 0)
            SC_WARN("%s:%d: %s (entry skipped)", file, line, msg);
        else
            SC_WARN("%s: %s (entry skipped)", file, msg);
    }
    return SC_OK;
}

int ds_add_box(ds_entry_t *e, dataset_box_t box)
{
    if (e->n_boxes == e->cap_boxes) {
        int cap = e->cap_boxes ? 2 * e->cap_boxes : 4;
        dataset_box_t *b = realloc(e->boxes, (size_t)cap * sizeof *b);
        if (!b)
            return SC_ERR_NOMEM;
        e->boxes = b;
        e->cap_boxes = cap;
    }
    e->boxes[e->n_boxes++] = box;
    return SC_OK;
}

int ds_rows_open(ds_rows_t *rows, const char *file, const char *what)
{
    memset(rows, 0, sizeof *rows);
    rows->fp = fopen(file, "r");
    if (!rows->fp) {
        SC_ERROR("cannot open %s '%s': %s", what, file, strerror(errno));
        return SC_ERR_IO;
    }
    return SC_OK;
}

int ds_rows_next(ds_rows_t *rows)
{
    while (rows->fp && getline(&rows->text, &rows->cap, rows->fp) != -1) {
        rows->line++;
        if (ds_blank(rows->text))
            continue;
        rows->n_fields = ds_split_fields(rows->text, rows->fields);
        return 1;
    }
    return 0;
}

void ds_rows_close(ds_rows_t *rows)
{
    free(rows->text);
    if (rows->fp)
        fclose(rows->fp);
    memset(rows, 0, sizeof *rows);
}

int ds_read_box(dataset_t *ds, int e, const char *file, int line, char **fields, const int cols[4],
                const char *const names[4], ds_box_layout_t layout, int reader)
{
    double v[4];
    for (int k = 0; k < 4; k++)
        if (ds_parse_double(fields[cols[k]], &v[k]) < 0)
            return ds_bad(ds, e, file, line, "box field '%s' is not a number: '%s'", names[k], fields[cols[k]]);
    /* as x, y, width, height from here on */
    double x = v[0], y = v[1], w = layout == DS_BOX_CORNERS ? v[2] - v[0] : v[2],
           h = layout == DS_BOX_CORNERS ? v[3] - v[1] : v[3];
    if (!(w > 0) || !(h > 0)) {
        if (layout == DS_BOX_CORNERS)
            return ds_bad(ds, e, file, line, "empty box (%s %g >= %s %g or %s %g >= %s %g)", names[0], v[0],
                          names[2], v[2], names[1], v[1], names[3], v[3]);
        return ds_bad(ds, e, file, line, "box %s and %s must be positive (%g x %g)", names[2], names[3], w, h);
    }
    int rc = ds_source_size(ds, e, file, line);
    ds_entry_t *ent = &ds->entries[e];
    if (rc < 0 || ent->bad)
        return rc;
    /* the far edges as the file gives them (x + w may round past x_max) */
    double right = layout == DS_BOX_CORNERS ? v[2] : x + w, bottom = layout == DS_BOX_CORNERS ? v[3] : y + h;
    if (x < 0 || y < 0 || right > ent->src_w || bottom > ent->src_h)
        return ds_bad(ds, e, file, line, "box %s=%g %s=%g %s=%g %s=%g lies outside the %dx%d image", names[0],
                      v[0], names[1], v[1], names[2], v[2], names[3], v[3], ent->src_w, ent->src_h);
    dataset_box_t box = {x, y, w, h, reader};
    if (ds_add_box(ent, box) < 0) {
        SC_ERROR("out of memory reading '%s'", file);
        return SC_ERR_NOMEM;
    }
    return SC_OK;
}

int ds_add_run(ds_entry_t *e, int64_t start, int64_t length)
{
    if (e->n_runs == e->cap_runs) {
        int cap = e->cap_runs ? 2 * e->cap_runs : 16;
        int64_t *r = realloc(e->runs, (size_t)cap * 2 * sizeof *r);
        if (!r)
            return SC_ERR_NOMEM;
        e->runs = r;
        e->cap_runs = cap;
    }
    e->runs[2 * e->n_runs] = start;
    e->runs[2 * e->n_runs + 1] = length;
    e->n_runs++;
    return SC_OK;
}

/* Column index of `name` in a header (exact after trimming), or -1. */
int ds_column(char **fields, int count, const char *name)
{
    for (int i = 0; i < count && i < DS_MAX_FIELDS; i++)
        if (!strcmp(fields[i], name))
            return i;
    return -1;
}

/* The image index, built on first use; SC_ERR_IO (logged) when the image folder is missing. */
int ds_index(dataset_t *ds)
{
    int rc = SC_OK;
    if (ds->index)
        return SC_OK;
    const ds_kind_t *kind = ds->kind;
    CHECK(ds_is_dir(ds->images_dir), SC_ERR_IO, "%s: no image folder (tried %s%s%s%s%s)", ds->dir,
          kind->images[0], kind->images[1] ? ", " : "", kind->images[1] ? kind->images[1] : "",
          kind->images[1] && kind->images[2] ? ", " : "", kind->images[1] && kind->images[2] ? kind->images[2] : "");
    CHECK_RC(imdir_open(ds->images_dir, &ds->index));
cleanup:
    return rc;
}

int ds_resolve_path(dataset_t *ds, int i, const char *file, int line)
{
    ds_entry_t *e = &ds->entries[i];
    if (e->path)
        return SC_OK;
    const ds_kind_t *kind = ds->kind;
    if (kind->image_path) {
        char buf[4096];
        if (kind->image_path(ds, i, buf, sizeof buf) < 0)
            return ds_bad(ds, i, file, line, "image path too long for id '%s'", e->id);
        if (!ds_exists(buf))
            return ds_bad(ds, i, file, line, "image '%s' of '%s' does not exist", buf, e->id);
        e->path = ds_strdup(buf);
    } else {
        int rc = ds_index(ds);
        if (rc < 0)
            return rc;
        const char *p = imdir_find(ds->index, e->id);
        if (!p)
            return ds_bad(ds, i, file, line, "no image file for '%s' under '%s' (expected %s.png, .jpg or .dcm)",
                          e->id, ds->images_dir, e->id);
        e->path = ds_strdup(p);
    }
    return e->path ? SC_OK : SC_ERR_NOMEM;
}

int ds_source_size(dataset_t *ds, int i, const char *file, int line)
{
    ds_entry_t *e = &ds->entries[i];
    if (e->src_w > 0)
        return SC_OK;
    if (ds->opt.source_size > 0) {
        e->src_w = e->src_h = ds->opt.source_size;
        return SC_OK;
    }
    int rc = ds_resolve_path(ds, i, file, line);
    if (rc < 0 || e->bad)
        return rc;
    char why[512];
    int w = 0, h = 0;
    rc = imread_probe(e->path, &w, &h, why, (int)sizeof why);
    if (rc < 0)
        return ds_bad(ds, i, file, line, "image '%s' of '%s': %s", e->path, e->id, why);
    e->src_w = w;
    e->src_h = h;
    e->checked = 1;
    return SC_OK;
}

/* ------------------------------------------------------- splits and classes */

static int ds_read_splits(dataset_t *ds, const char *file)
{
    int rc = SC_OK, unknown_ids = 0;
    int *seen_line = NULL;
    ds_rows_t rows;
    CHECK_RC(ds_rows_open(&rows, file, "splits file"));
    seen_line = sc_calloc((size_t)ds->n, sizeof(int));
    CHECK_ALLOC(seen_line);
    int col_id = -1, col_split = -1, n_cols = 0;
    while (ds_rows_next(&rows)) {
        char **f = rows.fields;
        int nf = rows.n_fields, lineno = rows.line;
        if (col_id < 0) {
            col_id = ds_column(f, nf, "Image_ID");
            col_split = ds_column(f, nf, "Split");
            CHECK(col_id >= 0 && col_split >= 0, SC_ERR_FORMAT,
                  "%s:%d: expected the header Image_ID,Split", file, lineno);
            n_cols = nf;
            continue;
        }
        int e = nf > col_id ? ds_find(ds, f[col_id]) : -1;
        if (nf < n_cols) {
            CHECK_RC(ds_bad(ds, e, file, lineno, "too few fields (expected Image_ID,Split)"));
            continue;
        }
        if (e < 0) {
            unknown_ids++; /* an id without labels: nothing to evaluate, reported below */
            continue;
        }
        dataset_split_t split;
        if (dataset_split_parse(f[col_split], &split) < 0) {
            CHECK_RC(ds_bad(ds, e, file, lineno, "unknown split '%s' for '%s' (expected train, val or test)",
                            f[col_split], f[col_id]));
            continue;
        }
        if (seen_line[e]) {
            CHECK_RC(ds_bad(ds, e, file, lineno, "duplicate Image_ID '%s' (first on line %d)", f[col_id],
                            seen_line[e]));
            continue;
        }
        seen_line[e] = lineno;
        ds->entries[e].split = split;
    }
    CHECK(col_id >= 0, SC_ERR_FORMAT, "%s: empty splits file (no header)", file);
    if (unknown_ids)
        SC_WARN("%s: %d ids have no labels and were ignored", file, unknown_ids);
    int missing = 0;
    for (int i = 0; i < ds->n; i++)
        missing += !seen_line[i] && !ds->entries[i].bad;
    if (missing)
        SC_WARN("%s: %d labelled images are in no split", file, missing);
cleanup:
    ds_rows_close(&rows);
    sc_free(seen_line);
    return rc;
}

/* Class filter of the paper: keep Normal (Target 0) and Lung Opacity (Target 1). */
static int ds_read_classes(dataset_t *ds, const char *file)
{
    int rc = SC_OK;
    int *cls = NULL, *cls_line = NULL; /* 0 unseen, 1 Normal, 2 Lung Opacity, 3 other */
    ds_rows_t rows;
    CHECK_RC(ds_rows_open(&rows, file, "class file"));
    cls = sc_calloc((size_t)ds->n, sizeof(int));
    cls_line = sc_calloc((size_t)ds->n, sizeof(int));
    CHECK_ALLOC(cls);
    CHECK_ALLOC(cls_line);
    int col_id = -1, col_cls = -1, n_cols = 0;
    while (ds_rows_next(&rows)) {
        char **f = rows.fields;
        int nf = rows.n_fields, lineno = rows.line;
        if (col_id < 0) {
            col_id = ds_column(f, nf, "patientId");
            col_cls = ds_column(f, nf, "class");
            CHECK(col_id >= 0 && col_cls >= 0, SC_ERR_FORMAT, "%s:%d: expected the header patientId,class",
                  file, lineno);
            n_cols = nf;
            continue;
        }
        int e = nf > col_id ? ds_find(ds, f[col_id]) : -1;
        if (nf < n_cols) {
            CHECK_RC(ds_bad(ds, e, file, lineno, "too few fields (expected patientId,class)"));
            continue;
        }
        if (e < 0)
            continue; /* class rows of patients without labels are irrelevant */
        int c = !strcmp(f[col_cls], "Normal") ? 1 : !strcmp(f[col_cls], "Lung Opacity") ? 2 : 3;
        if (cls[e] && cls[e] != c) {
            CHECK_RC(ds_bad(ds, e, file, lineno, "patientId '%s' has two classes (first on line %d)",
                            f[col_id], cls_line[e]));
            continue;
        }
        cls[e] = c;
        cls_line[e] = lineno;
    }
    for (int i = 0; i < ds->n; i++) {
        ds_entry_t *e = &ds->entries[i];
        if (e->bad)
            continue;
        if (!cls[i]) {
            CHECK_RC(ds_bad(ds, i, file, 0, "patientId '%s' (labels line %d) has no class row", e->id,
                            e->line));
        } else if (cls[i] == 3) {
            e->bad = 2; /* filtered, not bad */
        } else if ((cls[i] == 2) != (e->label == 1)) {
            CHECK_RC(ds_bad(ds, i, file, cls_line[i], "class of '%s' contradicts its Target (%d)", e->id,
                            e->label));
        }
    }
cleanup:
    ds_rows_close(&rows);
    sc_free(cls);
    sc_free(cls_line);
    return rc;
}

/*
 * Find every image file and check it (verify 1: header; 2: full decode), and
 * that it has the size of the annotation frame when the annotations fix one.
 * Problems are attributed to the labels line of the entry.
 */
static int ds_verify_images(dataset_t *ds, const char *labels_file)
{
    int rc = SC_OK;
    float *pixels = NULL;
    char why[512];
    for (int i = 0; i < ds->n; i++) {
        ds_entry_t *e = &ds->entries[i];
        if (e->bad)
            continue;
        if (ds->opt.verify <= 0) {
            /* No checks: the file by id when the folder exists, else images/<id>.png. */
            if (!ds->kind->image_path && !ds->index && ds_is_dir(ds->images_dir))
                CHECK_RC(imdir_open(ds->images_dir, &ds->index));
            const char *p = ds->index ? imdir_find(ds->index, e->id) : NULL;
            char buf[4096];
            if (!p && ds->kind->image_path && ds->kind->image_path(ds, i, buf, sizeof buf) == SC_OK)
                p = buf;
            if (!p) {
                snprintf(buf, sizeof buf, "%s/%s.png", ds->images_dir, e->id);
                p = buf;
            }
            e->path = ds_strdup(p);
            CHECK_ALLOC(e->path);
            continue;
        }
        CHECK_RC(ds_resolve_path(ds, i, labels_file, e->line));
        if (e->bad || (ds->opt.verify == 1 && e->checked))
            continue;
        int w = 0, h = 0;
        if (imread_probe(e->path, &w, &h, why, (int)sizeof why) < 0) {
            CHECK_RC(ds_bad(ds, i, labels_file, e->line, "image '%s' of '%s': %s", e->path, e->id, why));
            continue;
        }
        if (ds->opt.verify >= 2) {
            if (imread_gray_quiet(e->path, &ds->opt.read, &w, &h, &pixels, why, (int)sizeof why) < 0) {
                CHECK_RC(ds_bad(ds, i, labels_file, e->line, "image '%s' of '%s' cannot be decoded: %s",
                                e->path, e->id, why));
                continue;
            }
            sc_free(pixels);
            pixels = NULL;
        }
        if (e->src_w == 0) {
            e->src_w = w;
            e->src_h = h;
        } else if (e->src_w != w || e->src_h != h) {
            /* A PNG or JPEG of another size is a resized copy (boxes scale with the frame); a DICOM
               is the original, so its annotations must be in its own frame. */
            imread_format_t format = IMREAD_FORMAT_UNKNOWN;
            if (imread_detect(e->path, &format, why, (int)sizeof why) == SC_OK && format == IMREAD_FORMAT_DICOM) {
                CHECK_RC(ds_bad(ds, i, labels_file, e->line,
                                "DICOM image '%s' of '%s' is %dx%d but its annotations are in a %dx%d frame%s",
                                e->path, e->id, w, h, e->src_w, e->src_h,
                                ds->opt.source_size > 0 ? " (the job's source_size)" : ""));
                continue;
            }
        }
    }
cleanup:
    sc_free(pixels);
    return rc;
}

/*
 * No split from a splits file or from the set itself: train/val/test 70/15/15
 * by a hash of the image id (the same id is in the same split in every run).
 */
static void ds_default_splits(dataset_t *ds)
{
    for (int i = 0; i < ds->n; i++)
        if (ds->entries[i].split != DATASET_SPLIT_NONE)
            return;
    for (int i = 0; i < ds->n; i++) {
        unsigned bucket = (unsigned)(rng_key(0, ds->entries[i].id).k[0] % 100);
        /* val keeps the bucket the trainer used before data sets had a test split of their own */
        ds->entries[i].split = bucket < 15 ? DATASET_SPLIT_VAL : bucket < 30 ? DATASET_SPLIT_TEST : DATASET_SPLIT_TRAIN;
    }
    ds->split_source = "hash of the image id (train/val/test 70/15/15)";
    if (ds->n)
        SC_INFO("%s: no split file: train/val/test 70/15/15 by a hash of the image id", ds->dir);
}

/* ------------------------------------------------------------------- public */

void dataset_options_default(dataset_options_t *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->format = DATASET_FORMAT_AUTO;
    opt->box_map = DATASET_BOX_PAPER;
    opt->mask_rule = DATASET_MASK_HALF;
    opt->verify = 1;
}

const char *dataset_split_name(dataset_split_t split)
{
    switch (split) {
    case DATASET_SPLIT_TRAIN: return "train";
    case DATASET_SPLIT_VAL: return "val";
    case DATASET_SPLIT_TEST: return "test";
    default: return "none";
    }
}

int dataset_split_parse(const char *name, dataset_split_t *split)
{
    if (!strcmp(name, "train")) *split = DATASET_SPLIT_TRAIN;
    else if (!strcmp(name, "val")) *split = DATASET_SPLIT_VAL;
    else if (!strcmp(name, "test")) *split = DATASET_SPLIT_TEST;
    else return SC_ERR_FORMAT;
    return SC_OK;
}

int dataset_format_parse(const char *name, dataset_format_t *format)
{
    if (name && !strcmp(name, "auto")) {
        *format = DATASET_FORMAT_AUTO;
        return SC_OK;
    }
    for (int k = 0; k < DS_N_KINDS; k++)
        if (name && !strcmp(name, ds_kinds[k]->name)) {
            *format = ds_kinds[k]->format;
            return SC_OK;
        }
    return SC_ERR_ARG;
}

const char *dataset_format_name(dataset_format_t format)
{
    for (int k = 0; k < DS_N_KINDS; k++)
        if (ds_kinds[k]->format == format)
            return ds_kinds[k]->name;
    return "auto";
}

/* The kind and its labels file: the options, else the first kind whose labels file is in DIR. */
static int ds_choose_kind(const char *dir, const dataset_options_t *opt, const ds_kind_t **kind_out,
                          char **labels_out)
{
    int rc = SC_OK;
    const ds_kind_t *kind = NULL;
    char *labels = NULL;
    for (int k = 0; k < DS_N_KINDS; k++)
        if (ds_kinds[k]->format == opt->format)
            kind = ds_kinds[k];
    if (opt->labels) {
        labels = ds_strdup(opt->labels);
        CHECK_ALLOC(labels);
        if (!kind) { /* by the file's name, as before: *rle* is SIIM, anything else RSNA */
            const char *base = strrchr(opt->labels, '/');
            base = base ? base + 1 : opt->labels;
            kind = &ds_kind_rsna;
            for (int k = 0; k < DS_N_KINDS; k++)
                for (int j = 0; ds_kinds[k]->labels[j]; j++)
                    if (!strcmp(base, ds_kinds[k]->labels[j]))
                        kind = ds_kinds[k];
            if (strstr(base, "rle"))
                kind = &ds_kind_siim;
        }
    } else {
        for (int k = 0; k < DS_N_KINDS && !labels; k++) {
            if (kind && ds_kinds[k] != kind)
                continue;
            for (int j = 0; ds_kinds[k]->labels[j] && !labels; j++) {
                char *p = ds_join(dir, ds_kinds[k]->labels[j]);
                CHECK_ALLOC(p);
                if (ds_exists(p)) {
                    labels = p;
                    kind = ds_kinds[k];
                } else {
                    free(p);
                }
            }
        }
        if (!labels && (!kind || kind == &ds_kind_maskdir)) {
            char *masks = opt->masks_dir ? ds_strdup(opt->masks_dir) : ds_join(dir, "masks");
            CHECK_ALLOC(masks);
            int ok = ds_is_dir(masks);
            free(masks);
            CHECK(ok, SC_ERR_IO,
                  "%s: no labels.csv, stage_2_train_labels.csv, train-rle.csv, BBox_List_2017.csv, "
                  "annotations_train.csv, gt_segmentations_*.json or masks/ directory (see the data set "
                  "kinds in the README)",
                  dir);
            kind = &ds_kind_maskdir;
        }
        CHECK(labels || kind == &ds_kind_maskdir, SC_ERR_IO, "%s: no %s labels file (%s%s%s)", dir, kind->name,
              kind->labels[0], kind->labels[1] ? " or " : "", kind->labels[1] ? kind->labels[1] : "");
    }
    *kind_out = kind;
    *labels_out = labels;
    labels = NULL;
cleanup:
    free(labels);
    return rc;
}

int dataset_open(const char *dir, const dataset_options_t *opt_in, dataset_t **out)
{
    int rc = SC_OK;
    char *labels = NULL, *splits = NULL;
    dataset_options_t opt;
    const ds_kind_t *kind = NULL;
    if (opt_in)
        opt = *opt_in;
    else
        dataset_options_default(&opt);
    *out = NULL;
    dataset_t *ds = sc_calloc(1, sizeof *ds);
    CHECK_ALLOC(ds);
    ds->opt = opt;
    ds->opt.labels = ds->opt.splits = ds->opt.class_info = ds->opt.images_dir = ds->opt.masks_dir = NULL;
    ds->opt.finding = NULL;
    if (ds->opt.min_readers < 1)
        ds->opt.min_readers = 1;
    CHECK(ds_is_dir(dir), SC_ERR_IO, "data set directory '%s' does not exist", dir);
    ds->dir = ds_strdup(dir);
    CHECK_ALLOC(ds->dir);
    CHECK_RC(ds_choose_kind(dir, &opt, &kind, &labels));
    ds->format = kind->format;
    if (opt.finding || kind->finding) {
        ds->finding = ds_strdup(opt.finding ? opt.finding : kind->finding);
        CHECK_ALLOC(ds->finding);
    }

    /* The image folder: the option, else the kind's first folder present. */
    if (opt.images_dir) {
        ds->images_dir = ds_strdup(opt.images_dir);
    } else {
        for (int j = 0; kind->images[j] && !ds->images_dir; j++) {
            char *p = !strcmp(kind->images[j], ".") ? ds_strdup(dir) : ds_join(dir, kind->images[j]);
            CHECK_ALLOC(p);
            if (ds_is_dir(p))
                ds->images_dir = p;
            else
                free(p);
        }
        if (!ds->images_dir)
            ds->images_dir = ds_join(dir, kind->images[0]);
    }
    ds->masks_dir = opt.masks_dir ? ds_strdup(opt.masks_dir) : ds_join(dir, "masks");
    CHECK_ALLOC(ds->images_dir);
    CHECK_ALLOC(ds->masks_dir);
    ds->kind = kind;
    CHECK_RC(kind->read(ds, labels));

    if (opt.class_info) {
        CHECK(kind == &ds_kind_rsna, SC_ERR_ARG, "the class filter '%s' applies to RSNA labels only",
              opt.class_info);
        CHECK_RC(ds_read_classes(ds, opt.class_info));
    }
    CHECK_RC(ds_verify_images(ds, labels ? labels : ds->images_dir));
    splits = opt.splits ? ds_strdup(opt.splits) : ds_join(dir, "splits.csv");
    CHECK_ALLOC(splits);
    ds->split_source = "the data set's own split";
    if (opt.splits || ds_exists(splits)) {
        CHECK_RC(ds_read_splits(ds, splits));
        ds->split_source = "splits file";
    }
    ds_default_splits(ds);

    /* Drop bad (counted) and filtered entries, keep the order, rebuild the index. */
    int kept = 0;
    for (int i = 0; i < ds->n; i++) {
        ds_entry_t *e = &ds->entries[i];
        if (e->bad || e->label < 0) {
            if (e->bad == 2)
                ds->filtered++;
            else if (e->bad == 3)
                ds->unboxed++;
            else
                ds->skipped++;
            free(e->id);
            free(e->path);
            free(e->boxes);
            free(e->runs);
            continue;
        }
        ds->entries[kept++] = *e;
    }
    ds->n = kept;
    CHECK_RC(ds_rehash(ds, ds->table_size ? ds->table_size : 1024));
    if (ds->skipped)
        SC_WARN("%s: skipped %d bad entries%s", labels ? labels : ds->images_dir, ds->skipped,
                ds->warned > DS_MAX_WARNINGS ? " (only the first ones are listed above)" : "");
    if (ds->filtered)
        SC_INFO("%s: %d images are outside the classes kept and were left out",
                opt.class_info ? opt.class_info : labels ? labels : ds->images_dir, ds->filtered);
    if (ds->unboxed)
        SC_INFO("%s: %d images labelled '%s' have no box and were left out (no ground truth to localize)",
                labels ? labels : ds->images_dir, ds->unboxed, ds->finding);
    CHECK(ds->n > 0, SC_ERR_FORMAT, "%s: no usable images", labels ? labels : ds->images_dir);
    imdir_destroy(ds->index);
    ds->index = NULL;
    *out = ds;
    ds = NULL;
cleanup:
    dataset_destroy(ds);
    free(labels);
    free(splits);
    return rc;
}

void dataset_destroy(dataset_t *ds)
{
    if (!ds)
        return;
    for (int i = 0; i < ds->n; i++) {
        free(ds->entries[i].id);
        free(ds->entries[i].path);
        free(ds->entries[i].boxes);
        free(ds->entries[i].runs);
    }
    free(ds->entries);
    sc_free(ds->table);
    free(ds->images_dir);
    free(ds->masks_dir);
    free(ds->dir);
    free(ds->finding);
    imdir_destroy(ds->index);
    sc_free(ds);
}

dataset_format_t dataset_format(const dataset_t *ds) { return ds->format; }
int dataset_count(const dataset_t *ds) { return ds->n; }
const imread_options_t *dataset_read_options(const dataset_t *ds) { return &ds->opt.read; }
const char *dataset_split_source(const dataset_t *ds) { return ds->split_source; }
int dataset_skipped(const dataset_t *ds) { return ds->skipped; }
int dataset_filtered(const dataset_t *ds) { return ds->filtered; }
int dataset_unboxed(const dataset_t *ds) { return ds->unboxed; }
const char *dataset_id(const dataset_t *ds, int i) { return ds->entries[i].id; }
int dataset_label(const dataset_t *ds, int i) { return ds->entries[i].label; }
dataset_split_t dataset_split(const dataset_t *ds, int i) { return (dataset_split_t)ds->entries[i].split; }
int dataset_find(const dataset_t *ds, const char *id) { return ds_find(ds, id); }
int dataset_box_count(const dataset_t *ds, int i) { return ds->entries[i].n_boxes; }
dataset_box_t dataset_box(const dataset_t *ds, int i, int k) { return ds->entries[i].boxes[k]; }

void dataset_source_size(const dataset_t *ds, int i, int *w, int *h)
{
    *w = ds->entries[i].src_w;
    *h = ds->entries[i].src_h;
}

int dataset_image_path(const dataset_t *ds, int i, char *buf, size_t size)
{
    const char *path = ds->entries[i].path;
    if (!path)
        return SC_ERR_ARG;
    int n = snprintf(buf, size, "%s", path);
    return n < 0 || (size_t)n >= size ? SC_ERR_ARG : SC_OK;
}

/* One axis of an RSNA box -> inclusive cell range [*lo, *hi] (docs/methods.md section 2). */
static void ds_box_cells(double v, double len, int src, int res, dataset_box_map_t map, int *lo, int *hi)
{
    if (map == DATASET_BOX_PAPER) {
        double denom = src > 1 ? src - 1 : 1; /* 1023 for the 1024-pixel RSNA images */
        *lo = (int)(res * v / denom);
        *hi = (int)(res * (v + len) / denom);
    } else {
        *lo = (int)floor(v * res / src);
        *hi = (int)ceil((v + len) * res / src) - 1;
    }
    if (*lo < 0) *lo = 0;
    if (*hi > res - 1) *hi = res - 1;
}

/*
 * Boxes -> cells: each box's cells (ds_box_cells); a cell is abnormal when the
 * boxes of at least min_readers distinct readers cover it (1: the union).
 */
static int ds_box_mask(const dataset_t *ds, const ds_entry_t *e, int res, uint8_t *mask)
{
    int rc = SC_OK, k_min = ds->opt.min_readers > 1 ? ds->opt.min_readers : 1;
    uint8_t *seen = NULL;
    uint16_t *votes = NULL;
    int max_reader = 0;
    for (int k = 0; k < e->n_boxes; k++)
        if (e->boxes[k].reader > max_reader)
            max_reader = e->boxes[k].reader;
    if (k_min > 1) {
        votes = sc_calloc((size_t)res * res, sizeof(uint16_t));
        seen = sc_calloc((size_t)res * res, 1);
        CHECK_ALLOC(votes);
        CHECK_ALLOC(seen);
    }
    for (int r = 0; r <= max_reader; r++) {
        if (seen)
            memset(seen, 0, (size_t)res * res);
        for (int k = 0; k < e->n_boxes; k++) {
            const dataset_box_t *b = &e->boxes[k];
            if (b->reader != r)
                continue;
            int x0, x1, y0, y1;
            ds_box_cells(b->x, b->w, e->src_w, res, ds->opt.box_map, &x0, &x1);
            ds_box_cells(b->y, b->h, e->src_h, res, ds->opt.box_map, &y0, &y1);
            for (int y = y0; y <= y1; y++)
                memset((seen ? seen : mask) + (size_t)y * res + x0, 1, (size_t)(x1 - x0 + 1) * (x1 >= x0));
        }
        if (seen)
            for (size_t p = 0; p < (size_t)res * res; p++)
                votes[p] += seen[p];
    }
    if (votes)
        for (size_t p = 0; p < (size_t)res * res; p++)
            mask[p] = votes[p] >= k_min;
cleanup:
    sc_free(seen);
    sc_free(votes);
    return rc;
}

int dataset_mask(const dataset_t *ds, int i, int res, uint8_t *mask)
{
    int rc = SC_OK;
    float *src = NULL, *cells = NULL;
    CHECK(i >= 0 && i < ds->n && res > 0, SC_ERR_ARG, "dataset_mask: bad entry %d or resolution %d", i, res);
    const ds_entry_t *e = &ds->entries[i];
    memset(mask, 0, (size_t)res * res);
    if (e->label == 0)
        return SC_OK;
    if (ds->format != DATASET_FORMAT_MASKDIR && e->n_runs == 0)
        return ds_box_mask(ds, e, res, mask);
    /* Pixel masks: rasterize at source size, then area-resize and threshold. */
    int w = e->src_w, h = e->src_h;
    if (ds->format != DATASET_FORMAT_MASKDIR) {
        src = sc_calloc((size_t)w * h, sizeof(float));
        CHECK_ALLOC(src);
        for (int r = 0; r < e->n_runs; r++) {
            /* Column-major: flat index p is row p % h, column p / h. */
            for (int64_t p = e->runs[2 * r]; p < e->runs[2 * r] + e->runs[2 * r + 1]; p++)
                src[(size_t)(p % h) * w + (size_t)(p / h)] = 1.0f;
        }
    } else {
        char path[4096];
        int n = snprintf(path, sizeof path, "%s/%s.png", ds->masks_dir, e->id);
        CHECK(n > 0 && (size_t)n < sizeof path, SC_ERR_ARG, "mask path too long for '%s'", e->id);
        CHECK_RC(png_read_gray(path, &w, &h, &src));
        for (size_t p = 0; p < (size_t)w * h; p++)
            src[p] = src[p] > 0.0f ? 1.0f : 0.0f;
    }
    cells = sc_calloc((size_t)res * res, sizeof(float));
    CHECK_ALLOC(cells);
    CHECK_RC(image_resize(src, w, h, cells, res, res, IMAGE_RESIZE_AREA));
    for (size_t p = 0; p < (size_t)res * res; p++)
        mask[p] = ds->opt.mask_rule == DATASET_MASK_ANY ? cells[p] > 1e-6f : cells[p] >= 0.5f - 1e-6f;
cleanup:
    sc_free(src);
    sc_free(cells);
    return rc;
}
