/*
 * report_data.h - a results file loaded for `salcheck report` (module report,
 * prefix report_data_).
 *
 * Opens the file read-only and without HDF5 file locking, so that a run still
 * writing it can be looked at; loads the plan, the done flags, every per-map
 * metric and pair similarity, the ground-truth masks, and the summary tables
 * (aggregate_compute: computed from the done cells and pairs, so a partial
 * file gives the tables of the work done so far; /summary itself is not
 * needed). Maps are read one at a time on request.
 */
#ifndef REPORT_DATA_H
#define REPORT_DATA_H

#include <hdf5.h>
#include <stdint.h>

#include "aggregate.h"

typedef struct report_data {
    char path[1024];
    hid_t file;
    /* root attributes (empty strings / 0 when absent) */
    char *job_text;              /* the job file's text (never NULL) */
    char job_path[1024], created[64], version[32], maps_dtype[16];
    long long seed, ranks;
    /* the plan */
    int n_images, h, w;          /* N, H, W */
    char **image_ids;            /* [N] */
    int8_t *labels;              /* [N] */
    uint8_t *gt;                 /* [N,H,W] ground-truth masks */
    int n_variants;              /* V */
    char **variants, **kinds, **bases, **reinit; /* [V] */
    int32_t *states, *n_images_of; /* [V] state number, images planned per variant */
    int n_methods;               /* M */
    char **methods;              /* [M] */
    uint8_t *planned, *done;     /* [V,N] */
    /* per-map metrics: values[k][m][v][i], NaN where undefined or not done */
    int n_metrics;               /* K */
    char **metric_names;         /* [K] */
    double *metrics;             /* [K,M,V,N] */
    /* pairs */
    int n_pairs, n_sims;         /* P, S */
    char **sim_names;            /* [S] */
    int32_t *pair_index;         /* [P,4] variant a, image a, variant b, image b */
    int8_t *pair_exp;            /* [P] results_experiment_t */
    uint8_t *pair_done;          /* [P] */
    double *sims;                /* [S,M,P] */
    /* the output each model explains (/models; n_models 0 in files made before it) */
    int n_models;
    char **model_names, **model_target_labels, **model_heads, **model_inputs; /* [J] */
    int32_t *model_targets;      /* [J] -1: the predicted class */
    /* progress */
    long cells_planned, cells_done, pairs_planned, pairs_done;
    int has_summary;             /* /summary present (written when a run finished) */
    int has_maps;                /* /maps/<method> present for every method */
    /* the summary tables of the done work (aggregate.h) */
    aggregate_tables_t tables;
} report_data_t;

/*
 * Load `path`. On success *out is owned by the caller (report_data_close).
 * Errors are logged in words naming the file and returned: SC_ERR_IO (cannot
 * open), SC_ERR_FORMAT (not a salcheck results file, or a part is unreadable).
 */
int report_data_open(const char *path, report_data_t **out);
void report_data_close(report_data_t *d);

/* One map [H,W] as float32 (float16 files are converted) into out (caller's).
 * SC_ERR_UNDEFINED when the file stores no maps. */
int report_data_read_map(report_data_t *d, int method, int variant, int image, float *out);

/* Lookups by name; -1 when absent. */
int report_data_variant(const report_data_t *d, const char *name);
int report_data_method(const report_data_t *d, const char *name);
int report_data_metric(const report_data_t *d, const char *name);
int report_data_sim(const report_data_t *d, const char *name);

/* Cell (v, i) planned / done. */
int report_data_cell_planned(const report_data_t *d, int v, int i);
int report_data_cell_done(const report_data_t *d, int v, int i);

/* Value of metric k for (method m, variant v, image i); NaN when not done. */
double report_data_metric_value(const report_data_t *d, int k, int m, int v, int i);

/* Index of the pair (exp, va, ia, vb, ib), or -1. */
int report_data_find_pair(const report_data_t *d, int exp, int va, int ia, int vb, int ib);

/* Similarity s of method m on pair p; NaN when the pair is not done. */
double report_data_sim_value(const report_data_t *d, int s, int m, int p);

/* Short label of a variant: the part after the last '/' ("2:block4"), or the name. */
const char *report_data_variant_label(const report_data_t *d, int v);

/* The variants of `kind` ("cascading") whose base is `base`, in plan order
 * (state order), into out[max]; returns the count. */
int report_data_variants_of(const report_data_t *d, const char *kind, const char *base, int *out,
                            int max);

#endif
