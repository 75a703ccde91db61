/*
 * train.h - training a classifier on a labelled data set, on any number of
 * MPI ranks (module train, prefix train_).
 *
 * Owned by common/train. `salcheck train` (driver/cmd_train.c) and the audit's
 * model recipes call train_run. The classifier is trained with softmax cross
 * entropy on its logits (2 classes, the paper's set-up; 1 class trains a
 * sigmoid logit with binary cross entropy), mini-batch Adam or SGD, and the
 * checkpoint with the best validation AUC is kept (with shuffled labels, the
 * last epoch: their validation AUC is chance by construction).
 *
 * Samples. The training samples are the data set's `train` split, the
 * validation samples its `val` split (the `test` split is never touched). A
 * data set without a splits file is split by a hash of each image id: 15 %
 * validation, the rest training (the same split for every seed, so replicates
 * differ only in training randomness).
 *
 * Determinism. Every random choice is a counter-based draw (rng.h) keyed by
 * the seed: the initial weights (seed, node name), the order of epoch e
 * (seed, "train-order", e), the augmentation of the image of data set entry i
 * in epoch e (seed, "train-augment", e, i) and the label permutation (seed,
 * "train-label-permutation"). The same seed and the same number of ranks give
 * the same model bit for bit; a different number of ranks gives the same
 * model up to the order of floating-point additions (dp.h: shard rule, global
 * batch norm). Each epoch visits floor(n_train / batch) full global batches of
 * its order; the remainder (< batch samples, different ones each epoch) is
 * left out, so every step sees exactly `batch` samples on any rank count.
 *
 * Memory. Every rank holds all training and validation images at the model
 * resolution as 8.8 fixed-point gray (2 bytes a pixel; 1710 images at 128x128:
 * 56 MB), decoded once (each rank decodes a share, then they are exchanged),
 * and augments and normalizes per batch.
 *
 * Labels. With shuffled_labels the training labels are permuted (docs/methods.md
 * section 6, label randomization): training sample i learns the label of
 * training sample perm[i]; the class balance is kept, the validation labels
 * stay true (its AUC should fall to chance while training accuracy rises).
 *
 * Output. Rank 0 writes the model file (modelfile.h) with the selected
 * checkpoint's weights, provenance attributes (data set, split sizes, seed,
 * label mode, epochs, optimizer, metrics of the selected and the last epoch,
 * ranks, time) and a /train group: train_ids [n_train] (strings),
 * labels_trained [n_train] (int8, after any permutation), label_permutation
 * [n_train] (int32, only with shuffled labels), history [epochs, 9] (float64,
 * columns named in its `columns` attribute).
 *
 * Checkpoints. A sidecar file OUT.ckpt (HDF5) next to the model file holds the
 * parameters, the optimizer state, the position (epoch and step: the random
 * streams are counter-based, so the position is their state), the best
 * parameters so far and the history. It is written at the end of every epoch,
 * every checkpoint_seconds within an epoch, and when a stop is requested; with
 * resume set, a run continues from it, bit for bit as if it had not stopped
 * (same rank count). It is removed when the model file is written.
 */
#ifndef TRAIN_H
#define TRAIN_H

#include <mpi.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "io/dataset.h"

/* train_run's return value when a stop was requested: a checkpoint was written. */
#define TRAIN_STOPPED 1

/* Metrics of one epoch. Training metrics are against the labels trained on
 * (permuted with shuffled labels); validation metrics against the true labels. */
typedef struct train_epoch_stats {
    int epoch;           /* 1-based */
    double lr;           /* learning rate of the epoch's last step */
    double train_loss;   /* mean over the epoch's steps of the global batch loss */
    double train_acc;    /* fraction of training samples whose argmax is their label */
    double val_loss, val_auc, val_acc;
    double seconds;      /* wall time of the epoch, validation included */
    double images_per_s; /* training images per second (all ranks together) */
} train_epoch_stats_t;

typedef struct train_result {
    int n_train, n_val;
    int epochs_done;     /* epochs completed (including those before a resume) */
    int resumed_epoch;   /* 0 for a fresh run, else the epoch the run resumed in (1-based) */
    int best_epoch;      /* the epoch whose weights were written */
    train_epoch_stats_t selected, last;
    double seconds;      /* wall time of this call */
} train_result_t;

typedef struct train_config {
    const char *data_dir;       /* data set directory (io/dataset.h) */
    const char *arch;           /* zoo architecture; "democnn" */
    int size;                   /* input resolution R; 128. 0 with init_path: the file's */
    uint64_t seed;              /* 1 */
    const char *out_path;       /* the model file to write */
    int epochs;                 /* 8 */
    int batch;                  /* global batch size, split over ranks; 32 */
    double lr;                  /* peak learning rate; 2e-3 (adam) */
    const char *optimizer;      /* "adam" | "sgd"; "adam" */
    double momentum;            /* SGD momentum; 0.9 */
    double weight_decay;        /* L2 coefficient; 1e-4 */
    const char *schedule;       /* "cosine" (to 0 over all steps) | "constant"; "cosine" */
    int shuffled_labels;        /* 1: permute the training labels with the seed */
    const char *init_path;      /* model to start from (graph and weights): a salcheck model
                                   file, or an ONNX file (*.onnx); NULL: the zoo's arch */
    int augment;                /* 1: shifts, rotations, scale and intensity jitter; 0 */
    int classes;                /* 2 (softmax CE) or 1 (sigmoid BCE); 2 */
    const char *normalize;      /* input convention; NULL: the architecture's */
    const char *resize;         /* "area" | "bilinear"; "area" */
    const char *select;         /* "auc" (best validation AUC) | "last"; NULL: auc, or last
                                   with shuffled labels (their validation AUC is chance) */
    int resume;                 /* 1: continue from OUT.ckpt when it matches; 1 */
    double checkpoint_seconds;  /* mid-epoch checkpoints at most this often; 0: epoch ends only; 300 */
    double progress_seconds;    /* progress lines within an epoch this often; 30 */
    int eval_batch;             /* per-rank batch of validation forwards; 0: the training shard */
    const char *loss_log;       /* file for one line per step "epoch step loss" (rank 0), or NULL */
    const dataset_options_t *data_options; /* NULL: dataset_options_default */
    volatile sig_atomic_t *stop;/* when it becomes non-zero on any rank: checkpoint, return TRAIN_STOPPED */
    train_result_t *result;     /* filled when non-NULL (every rank) */
} train_config_t;

/* The defaults above. */
void train_config_default(train_config_t *cfg);

/*
 * Train as configured and write cfg->out_path (rank 0). COLLECTIVE over comm:
 * every rank passes the same configuration. Returns 0, TRAIN_STOPPED, or the
 * same negative sc_err on every rank (the error is logged once, by the rank
 * that met it).
 */
int train_run(const train_config_t *cfg, MPI_Comm comm);

/* The sidecar checkpoint path of a model path (OUT + ".ckpt") into buf. */
int train_checkpoint_path(const char *out_path, char *buf, size_t len);

/*
 * Exact ROC AUC of scores against 0/1 labels: the Mann-Whitney U statistic
 * with ties counted one half, U / (n_pos * n_neg) (= sklearn roc_auc_score).
 * NaN when a class is absent. Allocates a sort buffer (once per evaluation).
 */
double train_auc(const double *scores, const int *labels, int n);

/* perm [n]: a permutation of 0..n-1 drawn from (seed, "train-label-permutation"). */
void train_label_permutation(uint64_t seed, int n, int32_t *perm);
/* order [n]: the sample order of epoch `epoch` (0-based) from (seed, "train-order", epoch). */
void train_epoch_order(uint64_t seed, int epoch, int n, int32_t *order);

/*
 * The augmentation of a gray r x r image (values 0..255) for (seed, epoch,
 * sample): rotation within +-5 degrees, scale within +-5 %, shift within +-4 %
 * of r in each axis (bilinear resampling about the centre, edge pixels
 * replicated), then contrast x[0.9, 1.1] about mid-gray and brightness
 * +-5 % of the range, clipped to 0..255. No flips: a radiograph's left and
 * right are anatomy. dst and src are caller's [r*r] buffers (not aliased).
 */
void train_augment(const float *src, int r, float *dst, uint64_t seed, int epoch, int sample);

/*
 * The loss of n samples and its logit gradient (docs/methods.md section 3: a
 * classifier over pre-softmax logits). classes 2: softmax cross entropy,
 * loss_i = logsumexp(l_i) - l_i[y_i], dlogits_i = (softmax(l_i) - onehot(y_i)) / global_n;
 * classes 1: sigmoid binary cross entropy, loss_i = log(1 + e^z) - y_i z,
 * dlogits_i = (sigmoid(z) - y_i) / global_n. Dividing by the GLOBAL batch size
 * makes the gradients summed over ranks the gradient of the global mean loss.
 * Returns the SUM of the n losses; *correct = samples whose prediction (argmax,
 * or z > 0) equals the label; scores[i] (optional) = l1 - l0, or z: the score
 * whose ROC AUC is the validation AUC. dlogits and scores may be NULL.
 */
double train_loss_grad(const float *logits, const int *labels, int n, int classes, int global_n,
                       float *dlogits, double *correct, double *scores);

/* Learning rate of step `step` (0-based) of `total` for a schedule ("cosine": lr *
 * (1 + cos(pi * step / total)) / 2; "constant": lr). */
double train_lr_at(const char *schedule, double lr, int64_t step, int64_t total);

#endif /* TRAIN_H */
