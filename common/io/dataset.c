/*
 * dataset.c - RSNA boxes, SIIM RLE, mask PNG directories and splits (see dataset.h).
 *
 * Parsing keeps one entry per image id (hash table on the id). A problem found
 * on a line goes through ds_bad(): an error naming file:line without
 * skip_bad, otherwise the entry is marked bad, a warning is logged and the
 * entry is removed (and counted) when parsing ends.
 */
#include "io/dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/image.h"
#include "io/png.h"
#include "rng.h"
#include "sc.h"

#define DS_MAX_FIELDS 16
#define DS_MAX_WARNINGS 20 /* bad entries logged one by one; the rest only counted */

typedef struct ds_entry {
    char *id;
    int label;          /* -1 until a labels row sets it */
    int split;
    int line;           /* first line in the labels file */
    int bad;
    int src_w, src_h;
    int n_boxes, cap_boxes;
    dataset_box_t *boxes;
    int n_runs, cap_runs; /* SIIM: absolute column-major runs (start, length) */
    int64_t *runs;
    int rle_line;         /* line of the first RLE row (for late errors) */
} ds_entry_t;

struct dataset {
    dataset_format_t format;
    dataset_options_t opt;
    char *images_dir, *masks_dir;
    int n, cap;
    ds_entry_t *entries;
    int *table;         /* open addressing: entry index + 1, 0 = empty */
    int table_size;
    int skipped, filtered, warned;
};

/* ------------------------------------------------------------------ helpers */

static char *ds_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static char *ds_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int ds_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int ds_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Strip spaces and one pair of surrounding double quotes, in place. */
static char *ds_trim(char *s)
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
static int ds_split_fields(char *line, char **fields)
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

static int ds_blank(const char *line)
{
    for (; *line; line++)
        if (!isspace((unsigned char)*line))
            return 0;
    return 1;
}

static int ds_parse_double(const char *s, double *v)
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

static int ds_find(const dataset_t *ds, const char *id)
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

static int ds_rehash(dataset_t *ds, int size)
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
static int ds_get(dataset_t *ds, const char *id, int line)
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
static int ds_bad(dataset_t *ds, int entry, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int ds_bad(dataset_t *ds, int entry, const char *file, int line, const char *fmt, ...)
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

static int ds_add_box(ds_entry_t *e, dataset_box_t box)
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

static int ds_add_run(ds_entry_t *e, int64_t start, int64_t length)
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
static int ds_column(char **fields, int count, const char *name)
{
    for (int i = 0; i < count && i < DS_MAX_FIELDS; i++)
        if (!strcmp(fields[i], name))
            return i;
    return -1;
}

/* Source frame of entry i: the option, or the PNG header. Reports through ds_bad. */
static int ds_source_size(dataset_t *ds, int i, const char *file, int line)
{
    ds_entry_t *e = &ds->entries[i];
    if (e->src_w > 0)
        return SC_OK;
    if (ds->opt.source_size > 0) {
        e->src_w = e->src_h = ds->opt.source_size;
        return SC_OK;
    }
    char path[4096], why[320];
    if (dataset_image_path(ds, i, path, sizeof path) < 0)
        return ds_bad(ds, i, file, line, "image path too long for id '%s'", e->id);
    int w = 0, h = 0;
    int rc = png_probe(path, &w, &h, why, (int)sizeof why);
    if (rc < 0)
        return ds_bad(ds, i, file, line, "image '%s' of '%s': %s", path, e->id, why);
    e->src_w = w;
    e->src_h = h;
    return SC_OK;
}

/* ---------------------------------------------------------------- RSNA rows */

static int ds_read_rsna(dataset_t *ds, const char *file)
{
    int rc = SC_OK, lineno = 0;
    char *line = NULL;
    size_t line_cap = 0;
    FILE *fp = fopen(file, "r");
    CHECK(fp, SC_ERR_IO, "cannot open labels file '%s': %s", file, strerror(errno));
    char *f[DS_MAX_FIELDS];
    int col_id = -1, col_x = -1, col_y = -1, col_w = -1, col_h = -1, col_t = -1, n_cols = 0;
    while (getline(&line, &line_cap, fp) != -1) {
        lineno++;
        if (ds_blank(line))
            continue;
        int nf = ds_split_fields(line, f);
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
        const char *names[4] = {"x", "y", "width", "height"};
        int cols[4] = {col_x, col_y, col_w, col_h};
        if (target == 0) {
            int has_box = 0;
            for (int k = 0; k < 4; k++)
                has_box |= f[cols[k]][0] != '\0';
            if (has_box)
                CHECK_RC(ds_bad(ds, e, file, lineno, "a Target=0 row must have empty box fields"));
            continue;
        }
        double v[4];
        int ok = 1;
        for (int k = 0; k < 4 && ok; k++) {
            if (ds_parse_double(f[cols[k]], &v[k]) < 0) {
                CHECK_RC(ds_bad(ds, e, file, lineno, "box field '%s' is not a number: '%s'", names[k],
                                f[cols[k]]));
                ok = 0;
            }
        }
        if (!ok)
            continue;
        if (v[2] <= 0 || v[3] <= 0) {
            CHECK_RC(ds_bad(ds, e, file, lineno, "box width and height must be positive (%g x %g)",
                            v[2], v[3]));
            continue;
        }
        CHECK_RC(ds_source_size(ds, e, file, lineno));
        if (ent->bad)
            continue;
        if (v[0] < 0 || v[1] < 0 || v[0] + v[2] > ent->src_w || v[1] + v[3] > ent->src_h) {
            CHECK_RC(ds_bad(ds, e, file, lineno,
                            "box x=%g y=%g width=%g height=%g lies outside the %dx%d image", v[0], v[1],
                            v[2], v[3], ent->src_w, ent->src_h));
            continue;
        }
        dataset_box_t box = {v[0], v[1], v[2], v[3]};
        CHECK(ds_add_box(ent, box) == SC_OK, SC_ERR_NOMEM, "out of memory reading '%s'", file);
    }
    CHECK(col_id >= 0, SC_ERR_FORMAT, "%s: empty labels file (no header)", file);
cleanup:
    free(line);
    if (fp)
        fclose(fp);
    return rc;
}

/* ---------------------------------------------------------------- SIIM rows */

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
    int rc = SC_OK, lineno = 0;
    char *line = NULL;
    size_t line_cap = 0;
    FILE *fp = fopen(file, "r");
    CHECK(fp, SC_ERR_IO, "cannot open labels file '%s': %s", file, strerror(errno));
    char *f[DS_MAX_FIELDS];
    int col_id = -1, col_rle = -1, n_cols = 0;
    while (getline(&line, &line_cap, fp) != -1) {
        lineno++;
        if (ds_blank(line))
            continue;
        int nf = ds_split_fields(line, f);
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
    free(line);
    if (fp)
        fclose(fp);
    return rc;
}

/* ------------------------------------------------------------- mask PNG dir */

static int ds_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ds_read_maskdir(dataset_t *ds)
{
    int rc = SC_OK, n = 0, cap = 0;
    char **names = NULL;
    float *mask = NULL;
    char *mask_path = NULL;
    DIR *dir = opendir(ds->images_dir);
    CHECK(dir, SC_ERR_IO, "cannot open image directory '%s': %s", ds->images_dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len <= 4 || strcmp(de->d_name + len - 4, ".png"))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            char **grown = realloc(names, (size_t)cap * sizeof *grown);
            CHECK_ALLOC(grown);
            names = grown;
        }
        names[n] = ds_strdup(de->d_name);
        CHECK_ALLOC(names[n]);
        names[n][len - 4] = '\0';
        n++;
    }
    qsort(names, (size_t)n, sizeof *names, ds_cmp_str);
    CHECK(n > 0, SC_ERR_FORMAT, "%s: no .png images", ds->images_dir);
    for (int i = 0; i < n; i++) {
        int e = ds_get(ds, names[i], 0);
        CHECK(e >= 0, SC_ERR_NOMEM, "out of memory");
        size_t len = strlen(ds->masks_dir) + strlen(names[i]) + 6;
        free(mask_path);
        mask_path = malloc(len);
        CHECK_ALLOC(mask_path);
        snprintf(mask_path, len, "%s/%s.png", ds->masks_dir, names[i]);
        char why[320];
        int w = 0, h = 0;
        if (png_probe(mask_path, &w, &h, why, (int)sizeof why) < 0) {
            CHECK_RC(ds_bad(ds, e, mask_path, 0, "mask of image '%s': %s", names[i], why));
            continue;
        }
        sc_free(mask);
        mask = NULL;
        rc = png_read_gray(mask_path, &w, &h, &mask);
        if (rc < 0) {
            rc = SC_OK;
            CHECK_RC(ds_bad(ds, e, mask_path, 0, "mask of image '%s' cannot be decoded", names[i]));
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
    if (dir)
        closedir(dir);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(mask_path);
    sc_free(mask);
    return rc;
}

/* ------------------------------------------------------- splits and classes */

static int ds_read_splits(dataset_t *ds, const char *file)
{
    int rc = SC_OK, lineno = 0, unknown_ids = 0;
    char *line = NULL;
    size_t line_cap = 0;
    int *seen_line = NULL;
    FILE *fp = fopen(file, "r");
    CHECK(fp, SC_ERR_IO, "cannot open splits file '%s': %s", file, strerror(errno));
    seen_line = sc_calloc((size_t)ds->n, sizeof(int));
    CHECK_ALLOC(seen_line);
    char *f[DS_MAX_FIELDS];
    int col_id = -1, col_split = -1, n_cols = 0;
    while (getline(&line, &line_cap, fp) != -1) {
        lineno++;
        if (ds_blank(line))
            continue;
        int nf = ds_split_fields(line, f);
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
    free(line);
    sc_free(seen_line);
    if (fp)
        fclose(fp);
    return rc;
}

/* Class filter of the paper: keep Normal (Target 0) and Lung Opacity (Target 1). */
static int ds_read_classes(dataset_t *ds, const char *file)
{
    int rc = SC_OK, lineno = 0;
    char *line = NULL;
    size_t line_cap = 0;
    int *cls = NULL, *cls_line = NULL; /* 0 unseen, 1 Normal, 2 Lung Opacity, 3 other */
    FILE *fp = fopen(file, "r");
    CHECK(fp, SC_ERR_IO, "cannot open class file '%s': %s", file, strerror(errno));
    cls = sc_calloc((size_t)ds->n, sizeof(int));
    cls_line = sc_calloc((size_t)ds->n, sizeof(int));
    CHECK_ALLOC(cls);
    CHECK_ALLOC(cls_line);
    char *f[DS_MAX_FIELDS];
    int col_id = -1, col_cls = -1, n_cols = 0;
    while (getline(&line, &line_cap, fp) != -1) {
        lineno++;
        if (ds_blank(line))
            continue;
        int nf = ds_split_fields(line, f);
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
    free(line);
    sc_free(cls);
    sc_free(cls_line);
    if (fp)
        fclose(fp);
    return rc;
}

/* Check (or decode) every image; problems attributed to the labels line of the entry. */
static int ds_verify_images(dataset_t *ds, const char *labels_file)
{
    int rc = SC_OK;
    float *pixels = NULL;
    char path[4096], why[320];
    for (int i = 0; i < ds->n; i++) {
        ds_entry_t *e = &ds->entries[i];
        if (e->bad)
            continue;
        if (dataset_image_path(ds, i, path, sizeof path) < 0) {
            CHECK_RC(ds_bad(ds, i, labels_file, e->line, "image path too long for id '%s'", e->id));
            continue;
        }
        int w = e->src_w, h = e->src_h;
        if (ds->opt.verify == 1 && ds->opt.source_size <= 0 && e->src_w > 0)
            continue; /* header already read while parsing the labels */
        if (png_probe(path, &w, &h, why, (int)sizeof why) < 0) {
            CHECK_RC(ds_bad(ds, i, labels_file, e->line, "image '%s' of '%s': %s", path, e->id, why));
            continue;
        }
        if (ds->opt.verify >= 2) {
            if (png_read_gray(path, &w, &h, &pixels) < 0) {
                CHECK_RC(ds_bad(ds, i, labels_file, e->line, "image '%s' of '%s' cannot be decoded", path,
                                e->id));
                continue;
            }
            sc_free(pixels);
            pixels = NULL;
        }
        if (e->src_w == 0 && ds->opt.source_size <= 0) {
            e->src_w = w;
            e->src_h = h;
        }
    }
cleanup:
    sc_free(pixels);
    return rc;
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

int dataset_open(const char *dir, const dataset_options_t *opt_in, dataset_t **out)
{
    int rc = SC_OK;
    char *labels = NULL, *splits = NULL;
    dataset_options_t opt;
    if (opt_in)
        opt = *opt_in;
    else
        dataset_options_default(&opt);
    *out = NULL;
    dataset_t *ds = sc_calloc(1, sizeof *ds);
    CHECK_ALLOC(ds);
    ds->opt = opt;
    ds->opt.labels = ds->opt.splits = ds->opt.class_info = ds->opt.images_dir = ds->opt.masks_dir = NULL;
    CHECK(ds_is_dir(dir), SC_ERR_IO, "data set directory '%s' does not exist", dir);
    ds->images_dir = opt.images_dir ? ds_strdup(opt.images_dir) : ds_join(dir, "images");
    ds->masks_dir = opt.masks_dir ? ds_strdup(opt.masks_dir) : ds_join(dir, "masks");
    CHECK_ALLOC(ds->images_dir);
    CHECK_ALLOC(ds->masks_dir);

    /* Which layout: the option, else the labels file's name, else the files present. */
    dataset_format_t format = opt.format;
    if (opt.labels) {
        labels = ds_strdup(opt.labels);
        CHECK_ALLOC(labels);
        if (format == DATASET_FORMAT_AUTO) {
            const char *base = strrchr(opt.labels, '/');
            base = base ? base + 1 : opt.labels;
            format = strstr(base, "rle") ? DATASET_FORMAT_SIIM : DATASET_FORMAT_RSNA;
        }
    } else {
        const char *candidates[3] = {"labels.csv", "stage_2_train_labels.csv", "train-rle.csv"};
        for (int k = 0; k < 3 && !labels; k++) {
            if (format == DATASET_FORMAT_SIIM && k < 2)
                continue;
            if ((format == DATASET_FORMAT_RSNA && k == 2) || format == DATASET_FORMAT_MASKDIR)
                break;
            char *p = ds_join(dir, candidates[k]);
            CHECK_ALLOC(p);
            if (ds_exists(p)) {
                labels = p;
                if (format == DATASET_FORMAT_AUTO)
                    format = k < 2 ? DATASET_FORMAT_RSNA : DATASET_FORMAT_SIIM;
            } else {
                free(p);
            }
        }
        if (!labels && (format == DATASET_FORMAT_AUTO || format == DATASET_FORMAT_MASKDIR)) {
            CHECK(ds_is_dir(ds->masks_dir), SC_ERR_IO,
                  "%s: no labels.csv, stage_2_train_labels.csv, train-rle.csv or masks/ directory "
                  "(see the data set layouts in the README)",
                  dir);
            format = DATASET_FORMAT_MASKDIR;
        }
        CHECK(labels || format == DATASET_FORMAT_MASKDIR, SC_ERR_IO, "%s: no %s labels file", dir,
              format == DATASET_FORMAT_SIIM ? "train-rle.csv" : "labels.csv");
    }
    ds->format = format;

    if (format == DATASET_FORMAT_RSNA)
        CHECK_RC(ds_read_rsna(ds, labels));
    else if (format == DATASET_FORMAT_SIIM)
        CHECK_RC(ds_read_siim(ds, labels));
    else
        CHECK_RC(ds_read_maskdir(ds));

    if (opt.class_info) {
        CHECK(format == DATASET_FORMAT_RSNA, SC_ERR_ARG, "the class filter '%s' applies to RSNA labels only",
              opt.class_info);
        CHECK_RC(ds_read_classes(ds, opt.class_info));
    }
    if (opt.verify > 0 && format != DATASET_FORMAT_MASKDIR)
        CHECK_RC(ds_verify_images(ds, labels));
    else if (opt.verify > 0)
        CHECK_RC(ds_verify_images(ds, ds->images_dir));
    splits = opt.splits ? ds_strdup(opt.splits) : ds_join(dir, "splits.csv");
    CHECK_ALLOC(splits);
    if (opt.splits || ds_exists(splits))
        CHECK_RC(ds_read_splits(ds, splits));

    /* Drop bad (counted) and filtered entries, keep the order, rebuild the index. */
    int kept = 0;
    for (int i = 0; i < ds->n; i++) {
        ds_entry_t *e = &ds->entries[i];
        if (e->bad || e->label < 0) {
            if (e->bad == 2)
                ds->filtered++;
            else
                ds->skipped++;
            free(e->id);
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
        SC_INFO("%s: %d patients are neither Normal nor Lung Opacity and were left out", opt.class_info,
                ds->filtered);
    CHECK(ds->n > 0, SC_ERR_FORMAT, "%s: no usable images", labels ? labels : ds->images_dir);
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
        free(ds->entries[i].boxes);
        free(ds->entries[i].runs);
    }
    free(ds->entries);
    sc_free(ds->table);
    free(ds->images_dir);
    free(ds->masks_dir);
    sc_free(ds);
}

dataset_format_t dataset_format(const dataset_t *ds) { return ds->format; }
int dataset_count(const dataset_t *ds) { return ds->n; }
int dataset_skipped(const dataset_t *ds) { return ds->skipped; }
int dataset_filtered(const dataset_t *ds) { return ds->filtered; }
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
    int n = snprintf(buf, size, "%s/%s.png", ds->images_dir, ds->entries[i].id);
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

int dataset_mask(const dataset_t *ds, int i, int res, uint8_t *mask)
{
    int rc = SC_OK;
    float *src = NULL, *cells = NULL;
    CHECK(i >= 0 && i < ds->n && res > 0, SC_ERR_ARG, "dataset_mask: bad entry %d or resolution %d", i, res);
    const ds_entry_t *e = &ds->entries[i];
    memset(mask, 0, (size_t)res * res);
    if (e->label == 0)
        return SC_OK;
    if (ds->format == DATASET_FORMAT_RSNA) {
        for (int k = 0; k < e->n_boxes; k++) {
            const dataset_box_t *b = &e->boxes[k];
            int x0, x1, y0, y1;
            ds_box_cells(b->x, b->w, e->src_w, res, ds->opt.box_map, &x0, &x1);
            ds_box_cells(b->y, b->h, e->src_h, res, ds->opt.box_map, &y0, &y1);
            for (int y = y0; y <= y1; y++)
                memset(mask + (size_t)y * res + x0, 1, (size_t)(x1 - x0 + 1) * (x1 >= x0));
        }
        return SC_OK;
    }
    /* Pixel masks: rasterize at source size, then area-resize and threshold. */
    int w = e->src_w, h = e->src_h;
    if (ds->format == DATASET_FORMAT_SIIM) {
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
