/*
 * dataset_kind.h - what the data set kinds share; internal to common/io/dataset*.c
 * (module io, prefix ds_).
 *
 * A kind parses its annotation files into entries (one per image id): a label,
 * boxes in the source pixel frame, or absolute column-major runs of a pixel
 * mask. dataset.c then finds each image file, checks it, reads the splits and
 * turns boxes or runs into model-grid masks; a kind only describes its files.
 */
#ifndef DATASET_KIND_H
#define DATASET_KIND_H

#include <stddef.h>
#include <stdint.h>

#include "io/dataset.h"
#include "io/imdir.h"

#define DS_MAX_FIELDS 16
#define DS_MAX_WARNINGS 20 /* bad entries logged one by one; the rest only counted */

typedef struct ds_entry {
    char *id;
    char *path;         /* the image file (NULL until found) */
    int label;          /* -1 until a labels row sets it */
    int split;
    int line;           /* first line in the labels file */
    int bad;            /* 1 bad (dropped and counted as skipped), 2 filtered out,
                           3 a positive without ground truth to localize (nih: no box) */
    int checked;        /* the image header was read and matched the frame */
    int src_w, src_h;   /* annotation frame (0: the image's own size, read when needed) */
    int n_boxes, cap_boxes;
    dataset_box_t *boxes;
    int n_runs, cap_runs; /* pixel masks: absolute column-major runs (start, length) */
    int64_t *runs;
    int rle_line;         /* line of the first RLE row (for late errors) */
} ds_entry_t;

struct ds_kind;

struct dataset {
    dataset_format_t format;
    const struct ds_kind *kind;
    dataset_options_t opt;
    char *dir;
    char *images_dir, *masks_dir;
    char *finding;      /* the kind's finding (options or default) */
    imdir_t *index;     /* image files by id (NULL for kinds that build paths themselves) */
    int n, cap;
    ds_entry_t *entries;
    int *table;         /* open addressing: entry index + 1, 0 = empty */
    int table_size;
    int skipped, filtered, unboxed, warned;
    const char *split_source; /* static string, see dataset_split_source */
};

/* One data set kind: its files and its parser. */
typedef struct ds_kind {
    dataset_format_t format;
    const char *name;
    const char *labels[4];     /* label files tried in DIR, in order (NULL-ended) */
    const char *images[5];     /* image folders tried in DIR, in order; "." is DIR itself */
    const char *finding;       /* default finding (NULL: none) */
    /* Parse the labels file into entries; problems through ds_bad. */
    int (*read)(dataset_t *ds, const char *labels);
    /* The image path of entry i into buf (NULL: look the id up in the image index). */
    int (*image_path)(const dataset_t *ds, int i, char *buf, size_t size);
} ds_kind_t;

extern const ds_kind_t ds_kind_rsna, ds_kind_siim, ds_kind_maskdir, ds_kind_nih, ds_kind_vindr,
    ds_kind_chexlocalize;

/* Helpers (dataset.c). Strings from ds_strdup/ds_join are malloc'ed, owned by the caller. */
char *ds_strdup(const char *s);
char *ds_join(const char *dir, const char *name);
int ds_exists(const char *path);
int ds_is_dir(const char *path);
char *ds_trim(char *s);
/* Split a CSV line on commas into at most DS_MAX_FIELDS trimmed fields; returns the count. */
int ds_split_fields(char *line, char **fields);

/* The rows of a CSV file in turn: blank lines skipped, each row split into
 * fields (ds_split_fields), its 1-based line number kept for messages. */
typedef struct ds_rows {
    FILE *fp;
    char *text;          /* the current line, split in place */
    size_t cap;
    int line, n_fields;
    char *fields[DS_MAX_FIELDS];
} ds_rows_t;

/* Open `file` ("cannot open WHAT 'FILE': reason" logged, SC_ERR_IO). rows can be
 * closed whether or not this succeeded. */
int ds_rows_open(ds_rows_t *rows, const char *file, const char *what);
/* The next non-blank row: 1, or 0 at the end of the file. */
int ds_rows_next(ds_rows_t *rows);
void ds_rows_close(ds_rows_t *rows);
int ds_blank(const char *line);
int ds_parse_double(const char *s, double *v);
/* Column index of `name` in a header (exact after trimming), or -1. */
int ds_column(char **fields, int count, const char *name);

int ds_find(const dataset_t *ds, const char *id);
/* Index of id, adding a new entry (label -1) when absent. SC_ERR_NOMEM on no memory. */
int ds_get(dataset_t *ds, const char *id, int line);
/*
 * A problem with entry `entry` (-1: none attributable) at file:line. Without
 * skip_bad: logged as an error, SC_ERR_FORMAT returned. With skip_bad: the entry
 * is marked bad (dropped later), a warning logged, SC_OK returned.
 */
int ds_bad(dataset_t *ds, int entry, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int ds_add_box(ds_entry_t *e, dataset_box_t box);
int ds_add_run(ds_entry_t *e, int64_t start, int64_t length);
/* Source frame of entry i: the option, or the image header. Reports through ds_bad. */
int ds_source_size(dataset_t *ds, int i, const char *file, int line);

/* How the four box fields of a labels row are laid out. */
typedef enum ds_box_layout {
    DS_BOX_XYWH = 0,   /* x, y, width, height (RSNA, NIH) */
    DS_BOX_CORNERS     /* x_min, y_min, x_max, y_max (VinDr-CXR) */
} ds_box_layout_t;

/*
 * The box of entry e from the labels row `fields` at file:line: the fields
 * fields[cols[k]] named names[k] (for messages) are parsed as numbers, the box
 * must be non-empty and inside the entry's source frame (ds_source_size), and
 * is added with the given reader. A bad box is reported through ds_bad.
 * Returns SC_OK (added, or reported and skipped), or a negative error.
 */
int ds_read_box(dataset_t *ds, int e, const char *file, int line, char **fields, const int cols[4],
                const char *const names[4], ds_box_layout_t layout, int reader);
/* Build the image index of the image folder on first use; SC_ERR_IO (logged) without the folder. */
int ds_index(dataset_t *ds);
/* Find the image file of entry i (sets e->path). Reports through ds_bad. */
int ds_resolve_path(dataset_t *ds, int i, const char *file, int line);

#endif /* DATASET_KIND_H */
