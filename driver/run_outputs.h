/*
 * run_outputs.h - a job model's explained output and input convention
 * (driver, used by cmd_run.c and the --plan estimate): the [model.NAME] keys
 * target, labels and input applied to the loaded model (nn/outputs.h,
 * io/image_norm.h).
 */
#ifndef RUN_OUTPUTS_H
#define RUN_OUTPUTS_H

#include <stddef.h>

#include "io/job.h"
#include "nn/model.h"
#include "nn/outputs.h"

typedef struct run_output {
    int target;                         /* the explained output, -1: the predicted class */
    char target_label[NN_LABEL_MAX];    /* its label ("" without labels or target) */
    char labels[NN_LABELS_TEXT_MAX];    /* the outputs' labels "a,b,..." ("" when unnamed) */
    nn_head_t head;
} run_output_t;

/*
 * For job model j loaded into m (from its file): the job's input convention
 * replaces the model file's in m->normalize (and either must fit the model's
 * channels), the labels come from the job or else the model file (attribute
 * labels), and the target is resolved against them (nn_outputs_target).
 * Problems are logged once as "JOB:LINE: model 'NAME': ..." or naming the
 * model file, and returned (SC_ERR_FORMAT).
 */
int run_outputs_apply(const job_t *job, int j, nn_model_t *m, run_output_t *out);

/*
 * The model pairs of the job (label_randomization, repeatability,
 * reproducibility) compare maps of one output: each pair's models must
 * explain the same output (the same target label when both have one, else
 * the same index, or both the predicted class). Each mismatch is logged
 * naming the job file, the key and both outputs; SC_ERR_FORMAT then.
 * outs[j] is run_outputs_apply's result for model j; known (NULL: all) marks
 * the models whose output is known (the --plan estimate assumes some).
 */
int run_outputs_check_pairs(const job_t *job, const run_output_t *outs, const int *known);

#endif
