/*
 * results.h - the shared HDF5 results file of an audit (docs/design.md, "HDF5 results file").
 *
 *   /                    attrs: salcheck_version, job (file text), job_path, seed, created,
 *                        ranks, image_size
 *   /images/id [N]       fixed-length strings; /images/label [N] int8; /images/gt [N,H,W] uint8
 *   /variants/name [V]   strings; kind [V] (trained, cascading, independent, untrained),
 *                        state [V] int32, base [V] (the model's name), reinit [V] (blocks
 *                        re-initialized), n_images [V]
 *   /models/name [J]     the job's models: name, target [J] int32 (the explained output,
 *                        -1: the predicted class), target_label [J], head [J] (softmax,
 *                        sigmoid, logits), labels [J] ("a,b,..." or ""), input [J] (the
 *                        input convention, io/image_norm.h)
 *   /methods/name [M]    strings; attrs on /methods: params (text)
 *   /maps/<method>       [V,N,H,W] float32 or float16 (absent with maps = none)
 *   /metrics/<metric>    [M,V,N] float64, NaN where undefined or not computed
 *   /scores/logits       [V,N,classes] float32; /scores/target [V,N] int32
 *   /pairs/index         [P,4] int32 (variant a, image a, variant b, image b)
 *   /pairs/experiment    [P] int8 (see results_experiment_name); /pairs/<similarity> [M,P] float64
 *   /status/planned      [V,N] uint8; /status/done [V,N] uint8; /status/seconds [V,N] float64;
 *                        /status/rank [V,N] int32; /status/pair_done [P] uint8
 *   /summary/...         written by the root after the run (results_summary_*)
 *
 * Everything is created collectively at the start at its final size (no
 * filters, early allocation); the workers then write raw data independently
 * into their own cells, data before the done flag, so a killed run leaves a
 * file whose done flags are true only for cells whose data is complete.
 */
#ifndef RESULTS_H
#define RESULTS_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

typedef enum results_maps { RESULTS_MAPS_NONE = 0, RESULTS_MAPS_F32, RESULTS_MAPS_F16 } results_maps_t;

typedef enum results_experiment {
    RESULTS_EXP_CASCADING = 0, RESULTS_EXP_INDEPENDENT, RESULTS_EXP_UNTRAINED, RESULTS_EXP_LABEL,
    RESULTS_EXP_REPEATABILITY, RESULTS_EXP_REPRODUCIBILITY, RESULTS_EXP_BASELINE, RESULTS_EXP_COUNT
} results_experiment_t;
const char *results_experiment_name(int exp);

typedef struct results_layout {
    int n_images, h, w, classes;
    const char *const *image_ids;
    const int8_t *labels;
    const uint8_t *gt;                 /* [N,H,W] */
    int n_variants;
    const char *const *variant_names, *const *variant_kinds, *const *variant_bases,
        *const *variant_reinit;
    const int32_t *variant_states, *variant_n_images;
    int n_methods;
    const char *const *method_names;
    const char *method_params;         /* text */
    int n_metrics;
    const char *const *metric_names;
    int n_sims;
    const char *const *sim_names;
    int n_pairs;
    const int32_t *pair_index;         /* [P,4] */
    const int8_t *pair_experiment;     /* [P] */
    results_maps_t maps;
    const char *job_text, *job_path;
    uint64_t seed;
    int ranks;
    /* the models and the output each explains (/models; absent when n_models is 0) */
    int n_models;
    const char *const *model_names, *const *model_target_labels, *const *model_heads,
        *const *model_labels, *const *model_inputs;
    const int32_t *model_targets;
    /* the probability the model checks read per model (softmax or sigmoid; NULL: not written) */
    const char *const *model_probability;
    /* optional per-map curves of the checks beyond the paper: /curves/<name> [M,V,N,len] */
    int n_curves;
    const char *const *curve_names;
    const int *curve_len;
} results_layout_t;

typedef struct results results_t;

/* Create the file with every dataset at its final size; the root writes the
 * plan (images, variants, pairs, planned flags). COLLECTIVE. */
int results_create(const char *path, MPI_Comm comm, const results_layout_t *layout,
                   results_t **out);
/* Open an existing file for resume; its plan must equal `layout`'s (same
 * images, variants, methods, metrics, pairs) or SC_ERR_FORMAT. COLLECTIVE. */
int results_open(const char *path, MPI_Comm comm, const results_layout_t *layout,
                 results_t **out);
/* Flush and close. COLLECTIVE. */
int results_close(results_t *r);

/* Independent writes of one (variant, image) cell: maps [M,H,W] (ignored with
 * maps = none), metrics [K,M] (metric-major), logits [classes], target. */
int results_write_cell(results_t *r, int v, int i, const float *maps, const double *metrics,
                       const float *logits, int target, double seconds, int rank);
/* The done flag of a cell (after its data). */
int results_mark_done(results_t *r, int v, int i);
/* Read back one map [H,W] as float32. */
int results_read_map(results_t *r, int method, int v, int i, float *out);
/* Similarities of pair p: sims [S,M]; then its done flag. */
int results_write_pair(results_t *r, int p, const double *sims);
/* The curves of cell (v, i): curves holds, curve after curve, [M, len] doubles
 * (NaN where a method has none). Call before results_mark_done. */
int results_write_curves(results_t *r, int v, int i, const double *curves);
/* Done flags: cells [V*N], pairs [P] (either may be NULL). Independent reads. */
int results_read_done(results_t *r, uint8_t *cells, uint8_t *pairs);

/*
 * Integrity. Every cell written carries a CRC-32 in /status/checksum (its
 * definition is the dataset's attribute `definition`), written with the
 * cell's data, before its done flag.
 */
/*
 * Set an int64 attribute `name` (n = 0: one scalar value, else an array of n) on the root
 * (group NULL) or on a group ("methods"), replacing one a resumed run finds.
 * COLLECTIVE: every rank passes the same values.
 */
int results_set_attr_ints(results_t *r, const char *group, const char *name, const long long *values, int n);

/* 1 when the file has checksums (files made before them have none). */
int results_has_checksums(const results_t *r);
/* Recompute the checksum of every cell whose done flag is set in done [V*N]
 * and compare: bad [V*N] (caller's) receives 1 for a corrupt or unreadable
 * cell, on every rank. Cell q = v*N + i is read by rank q % size.
 * Returns the number of corrupt cells, or a negative error. COLLECTIVE. */
int results_verify_cells(results_t *r, const uint8_t *done, uint8_t *bad);
/* Clear the done flag of cell (v, i) (a corrupt cell to compute again). */
int results_clear_done(results_t *r, int v, int i);
/* Open a results file read-only with the plan it holds, without a job
 * (salcheck info --verify). One process (MPI_COMM_SELF). Caller closes. */
int results_open_readonly(const char *path, results_t **out);
/* The plan's size: variants and images. */
void results_dims(const results_t *r, int *n_variants, int *n_images);

/* Float <-> IEEE half (round to nearest even), used for float16 maps. */
uint16_t results_f32_to_f16(float f);
float results_f16_to_f32(uint16_t h);

#endif
