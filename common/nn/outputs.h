/*
 * outputs.h - which output of a model is explained: output labels, the
 * output head, and the target rule (module nn, prefix nn_outputs_).
 *
 * A model has K outputs (its logits node). They may be named by labels, a
 * comma-separated list of K distinct non-empty names ("Atelectasis,
 * Consolidation, ..."), stored in the model file (attribute labels, written
 * by `salcheck import --labels`) or given in a job ([model.NAME] labels).
 * A target is an output index (0..K-1) or a label name.
 *
 * The head is what follows the logits: a softmax (one class per image), a
 * sigmoid (multi-label: each output its own probability), or nothing. Every
 * method explains the logit, never through the softmax or sigmoid
 * (docs/methods.md section 3). Without a configured target, a softmax or
 * bare-logits model explains its predicted class (the largest logit); a
 * sigmoid model with more than one output has no predicted class (several
 * findings may be present) and must be given a target.
 */
#ifndef NN_OUTPUTS_H
#define NN_OUTPUTS_H

#include <stddef.h>

#include "nn/model.h"

#define NN_LABELS_TEXT_MAX 8192
#define NN_LABEL_MAX 64

typedef enum nn_head { NN_HEAD_LOGITS = 0, NN_HEAD_SOFTMAX, NN_HEAD_SIGMOID } nn_head_t;

/* The model's head (its output node after the logits). */
nn_head_t nn_outputs_head(const nn_model_t *m);
const char *nn_outputs_head_name(nn_head_t head);
/* Number of outputs K (the size of the logits node). */
int nn_outputs_count(const nn_model_t *m);

/* Number of names in a label list (0 for NULL or ""). */
int nn_outputs_label_count(const char *labels);
/* Name `index` of a label list into buf (trimmed); "" when absent. */
void nn_outputs_label(const char *labels, int index, char *buf, size_t len);
/* Index of `name` in a label list, or -1. */
int nn_outputs_label_find(const char *labels, const char *name);
/* Normalize a label list into out ("a,b,c": names trimmed) and check it names
 * `count` outputs with distinct non-empty names of < NN_LABEL_MAX characters.
 * SC_ERR_ARG with the problem in err (no log) otherwise. */
int nn_outputs_labels_check(const char *labels, int count, char *out, size_t out_len, char *err,
                            size_t err_len);

/*
 * Resolve a target request against K outputs and an optional label list:
 * an index "0".."K-1" or a label name. NULL or "" requests the default rule
 * above: *index = -1 (the predicted class), or SC_ERR_ARG for a multi-output
 * sigmoid model. Errors go to err (no log), listing the labels when known.
 */
int nn_outputs_target(const char *request, const nn_model_t *m, const char *labels, int *index,
                      char *err, size_t err_len);

#endif
