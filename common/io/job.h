/*
 * job.h - audit job files (INI, parsed with libinih): the data set, the
 * models, the experiments, the methods with their parameters, the metrics,
 * map storage and the seed. See README.md "Job file reference".
 *
 * Every rank parses the same file; unknown sections or keys, bad values and
 * missing files are errors naming the file and line, found before any rank
 * computes anything. Method parameters are kept as (method, key, value, line)
 * strings and checked by the saliency layer (job_method_param lookups).
 */
#ifndef JOB_H
#define JOB_H

#include <stdint.h>

#define JOB_MAX_MODELS 32
#define JOB_MAX_LIST 64
#define JOB_MAX_PARAMS 128
#define JOB_NAME_MAX 64
#define JOB_PATH_MAX 1024

typedef struct job_model {
    char name[JOB_NAME_MAX];
    int line;                    /* line of the [model.NAME] header */
    char file[JOB_PATH_MAX];     /* an existing model file (.h5 or .onnx), or the training cache */
    int train;                   /* 1: a recipe trained (and cached at `file`) by salcheck run */
    char arch[32];
    uint64_t seed;
    int epochs, batch;
    double lr;
    char optimizer[16];
    int shuffled_labels;
    int size;                    /* input size (0: the data section's) */
    char blocks[JOB_MAX_LIST][JOB_NAME_MAX]; /* block override "block=prefix" rules */
    int n_blocks;
    /* multi-output models (nn/outputs.h) and the input convention (io/image_norm.h);
     * "" when not given, each with the line that gave it */
    char target[JOB_NAME_MAX];   /* the explained output: an index or a label */
    int target_line;
    char output_labels[1024];    /* labels = a, b, ...: names of the outputs */
    int labels_line;
    char input[96];              /* input convention overriding the model file's */
    int input_line;
} job_model_t;

typedef struct job_pair { int a, b; } job_pair_t; /* indices into models */

typedef struct job_param {
    char method[JOB_NAME_MAX], key[JOB_NAME_MAX], value[256];
    int line;
    int used;                    /* set when a lookup consumed it (unused ones are errors) */
} job_param_t;

typedef struct job {
    char path[JOB_PATH_MAX];
    char *text;                  /* the file's text, stored in the results file */
    /* [job] */
    char name[JOB_NAME_MAX];
    uint64_t seed;
    char out[JOB_PATH_MAX];
    char maps[16];               /* float32 | float16 | none */
    int block_images;            /* images per work item (0: automatic) */
    int batch;                   /* IG/SmoothGrad batch (0: automatic) */
    double memory_per_rank;      /* bytes; the batch fits in it (0: not set) */
    /* [data] */
    char data_kind[16];          /* phantom | rsna | siim | maskdir | nih | vindr | chexlocalize */
    char data_dir[JOB_PATH_MAX];
    int phantom_count, phantom_size, phantom_seed;
    double phantom_positive_fraction;
    int size;                    /* model resolution */
    char images[32];             /* test-positives | sample */
    int sample;                  /* N for images = sample */
    int max_images;              /* cap on evaluated images (0: all) */
    int randomization_images;    /* images used by the randomization experiments (0: all) */
    char class_info[JOB_PATH_MAX];
    int source_size;
    char box_map[16];            /* paper | exact */
    int skip_bad;
    char dicom_window[16];       /* voi | full | minmax (io/dicom.h) */
    char finding[64];            /* nih, vindr, chexlocalize: finding to localize ("": the kind's) */
    int min_readers;             /* vindr: readers who must agree (1: union) */
    /* [model.NAME] */
    job_model_t models[JOB_MAX_MODELS];
    int n_models;
    /* [experiments] */
    int utility[JOB_MAX_MODELS], n_utility;            /* models scored for localization */
    int cascading[JOB_MAX_MODELS], n_cascading;        /* models randomized top-down */
    char cascade_blocks[JOB_MAX_LIST][JOB_NAME_MAX];   /* empty: every block but the first */
    int n_cascade_blocks;
    int independent;                                   /* also one block at a time */
    int untrained[JOB_MAX_MODELS], n_untrained;        /* fully re-initialized models */
    job_pair_t label_pairs[JOB_MAX_MODELS];            /* trained : label-shuffled */
    int n_label_pairs;
    job_pair_t repeat_pairs[JOB_MAX_MODELS];
    int n_repeat_pairs;
    job_pair_t repro_pairs[JOB_MAX_MODELS];
    int n_repro_pairs;
    int baseline_pairs;                                /* random image pairs per image */
    int keep_bn_stats;                                 /* randomized BN keeps running statistics */
    char cascade_order[16];                            /* top-down | bottom-up | both */
    int cascade_reuse;                                 /* a randomization's states in one item, lower layers once */
    /* [methods] */
    char methods[JOB_MAX_LIST][JOB_NAME_MAX];
    int n_methods, methods_line;
    job_param_t params[JOB_MAX_PARAMS];
    int n_params;
    /* [metrics] */
    char metrics[JOB_MAX_LIST][JOB_NAME_MAX];
    int n_metrics, metrics_line;
    char similarity[JOB_MAX_LIST][JOB_NAME_MAX];
    int n_similarity, similarity_line;
} job_t;

/*
 * Parse and validate a job file. Relative paths in it are taken relative to
 * the current directory (where salcheck runs). check_files: also require that
 * every model file that is not a training recipe exists. Errors are logged
 * as "FILE:LINE: problem" and returned (SC_ERR_FORMAT, SC_ERR_IO).
 * Caller owns *out (job_destroy).
 */
int job_load(const char *path, int check_files, job_t **out);
void job_destroy(job_t *job);

/* Index of a model by name, or -1. */
int job_find_model(const job_t *job, const char *name);

/* Look up a method parameter; returns 1 and sets *value when given, 0 when not.
 * Marks it used. */
int job_method_param(job_t *job, const char *method, const char *key, const char **value,
                     int *line);
/* After the methods read their parameters: every parameter not used is an error
 * ("FILE:LINE: method sg has no parameter 'sampels'"). Returns 0 or SC_ERR_FORMAT. */
int job_check_params_used(const job_t *job);

#endif
