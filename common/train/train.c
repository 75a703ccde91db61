/*
 * train.c - the data-parallel training loop, validation, checkpoints and the
 * model file with its provenance (train.h).
 *
 * One step on P ranks (dp.h):
 *   1. every rank builds its shard of the global batch from the images it
 *      holds in memory (all training and validation images, gray, at the model
 *      resolution, as 8.8 fixed point: 2 bytes a pixel), augmenting and
 *      normalizing per batch;
 *   2. forward in training mode; batch norm reduces its sums over the ranks;
 *   3. loss = mean over the GLOBAL batch: each rank's logit gradient is
 *      (softmax - onehot) / B;
 *   4. backward into the gradient slab, MPI_Allreduce (sum) of the slab;
 *   5. one MPI_Allreduce of four doubles: the loss sum, the correct count,
 *      and the flags "checkpoint due" (rank 0's clock) and "stop requested"
 *      (any rank), so that every rank takes the same decisions;
 *   6. the optimizer step, identical on every rank.
 * Validation runs in inference mode on a contiguous block of the validation
 * set per rank; the scores are summed into one array (each rank fills its
 * block) and the AUC is computed from the whole array.
 */
#include "train/train.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "io/dataset.h"
#include "io/h5attr.h"
#include "io/image.h"
#include "nn/modelfile.h"
#include "nn/onnx_import.h"
#include "nn/zoo.h"
#include "rng.h"
#include "sc.h"
#include "train/dp.h"
#include "train/optim.h"

#define HIST_COLS 9
static const char *const hist_columns =
    "epoch,lr,train_loss,train_acc,val_loss,val_auc,val_acc,seconds,images_per_s";
#define CKPT_FORMAT "salcheck-train-checkpoint"
#define GRAY_SCALE 256.0f /* gray values held as round(v * 256) in uint16 */

#define CHECK_H5(expr, ...)                                                     \
    do {                                                                        \
        if ((expr) < 0) {                                                       \
            sc_log(SC_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__);              \
            rc = SC_ERR_H5;                                                     \
            goto cleanup;                                                       \
        }                                                                       \
    } while (0)

void train_config_default(train_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->arch = "democnn";
    cfg->size = 128;
    cfg->seed = 1;
    cfg->epochs = 8;
    cfg->batch = 32;
    cfg->lr = 2e-3;
    cfg->optimizer = "adam";
    cfg->momentum = 0.9;
    cfg->weight_decay = 1e-4;
    cfg->schedule = "cosine";
    cfg->classes = 2;
    cfg->resize = "area";
    cfg->resume = 1;
    cfg->checkpoint_seconds = 300.0;
    cfg->progress_seconds = 30.0;
}

int train_checkpoint_path(const char *out_path, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s.ckpt", out_path);
    if (n < 0 || (size_t)n >= len) {
        SC_ERROR("output path '%s' is too long", out_path);
        return SC_ERR_ARG;
    }
    return 0;
}

/* ------------------------------------------------------------ pure helpers */

typedef struct scored {
    double score;
    int label;
} scored_t;

static int cmp_scored(const void *a, const void *b)
{
    double x = ((const scored_t *)a)->score, y = ((const scored_t *)b)->score;
    return (x > y) - (x < y);
}

double train_auc(const double *scores, const int *labels, int n)
{
    scored_t *s = malloc(sizeof *s * (size_t)(n > 0 ? n : 1));
    if (!s)
        return NAN;
    double n_pos = 0, n_neg = 0;
    for (int i = 0; i < n; i++) {
        s[i].score = scores[i];
        s[i].label = labels[i] != 0;
        n_pos += s[i].label;
    }
    n_neg = n - n_pos;
    if (n_pos == 0 || n_neg == 0) {
        free(s);
        return NAN;
    }
    qsort(s, (size_t)n, sizeof *s, cmp_scored);
    /* Mann-Whitney: each positive scores 1 per negative below it, 1/2 per tie. */
    double u = 0.0, neg_below = 0.0;
    for (int i = 0; i < n;) {
        int j = i;
        double pos = 0, neg = 0;
        while (j < n && s[j].score == s[i].score) {
            pos += s[j].label;
            neg += !s[j].label;
            j++;
        }
        u += pos * (neg_below + 0.5 * neg);
        neg_below += neg;
        i = j;
    }
    free(s);
    return u / (n_pos * n_neg);
}

static void shuffle(rng_stream_t *rs, int n, int32_t *a)
{
    for (int i = 0; i < n; i++)
        a[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_stream_below(rs, (uint32_t)i + 1);
        int32_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

void train_label_permutation(uint64_t seed, int n, int32_t *perm)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(seed, "train-label-permutation"), 0, 0, 0);
    shuffle(&rs, n, perm);
}

void train_epoch_order(uint64_t seed, int epoch, int n, int32_t *order)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(seed, "train-order"), (uint32_t)epoch, 0, 0);
    shuffle(&rs, n, order);
}

void train_augment(const float *src, int r, float *dst, uint64_t seed, int epoch, int sample)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(seed, "train-augment"), (uint32_t)epoch, (uint32_t)sample, 0);
    const double pi = 3.14159265358979323846;
    double theta = (2.0 * rng_stream_uniform(&rs) - 1.0) * 5.0 * pi / 180.0;
    double scale = 1.0 + (2.0 * rng_stream_uniform(&rs) - 1.0) * 0.05;
    double tx = (2.0 * rng_stream_uniform(&rs) - 1.0) * 0.04 * r;
    double ty = (2.0 * rng_stream_uniform(&rs) - 1.0) * 0.04 * r;
    double contrast = 1.0 + (2.0 * rng_stream_uniform(&rs) - 1.0) * 0.10;
    double bright = (2.0 * rng_stream_uniform(&rs) - 1.0) * 0.05 * 255.0;
    /* Output pixel p maps back to source c + R^-1 (p - c - t) / scale. */
    const double c = 0.5 * (r - 1), cs = cos(theta) / scale, sn = sin(theta) / scale;
    for (int i = 0; i < r; i++) {
        double dy = i - c - ty;
        for (int j = 0; j < r; j++) {
            double dx = j - c - tx;
            double sx = cs * dx + sn * dy + c, sy = -sn * dx + cs * dy + c;
            sx = sx < 0 ? 0 : sx > r - 1 ? r - 1 : sx;
            sy = sy < 0 ? 0 : sy > r - 1 ? r - 1 : sy;
            int x0 = (int)sx, y0 = (int)sy;
            int x1 = x0 + 1 < r ? x0 + 1 : x0, y1 = y0 + 1 < r ? y0 + 1 : y0;
            double fx = sx - x0, fy = sy - y0;
            double top = src[y0 * r + x0] * (1 - fx) + src[y0 * r + x1] * fx;
            double bot = src[y1 * r + x0] * (1 - fx) + src[y1 * r + x1] * fx;
            double v = (top * (1 - fy) + bot * fy - 127.5) * contrast + 127.5 + bright;
            dst[i * r + j] = (float)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

double train_lr_at(const char *schedule, double lr, int64_t step, int64_t total)
{
    if (schedule && !strcmp(schedule, "cosine") && total > 0)
        return lr * 0.5 * (1.0 + cos(3.14159265358979323846 * (double)step / (double)total));
    return lr;
}

/* ------------------------------------------------------------ the trainer */

typedef struct trainer {
    const train_config_t *cfg;
    MPI_Comm comm;
    int rank, ranks;
    dataset_t *ds;
    char split_desc[64];
    int n_train, n_val, res;
    int *train_idx, *val_idx;   /* data set entries */
    int *train_label;           /* labels trained on (permuted with shuffled labels) */
    int *val_label;
    int32_t *perm;              /* label permutation, shuffled labels only */
    int32_t *order;             /* the current epoch's order */
    uint16_t *gray;             /* [n_train + n_val][res*res] */
    nn_model_t *m;
    int logits_id, classes;
    image_norm_t norm;
    image_resize_t resize;
    optim_config_t ocfg;
    optim_t *opt;
    dp_bn_ctx_t *bn;
    int shard_max, eval_max;
    float *x, *plane, *plane_aug, *dlogits;
    int *y;
    double *val_buf;            /* [2 * n_val]: scores, losses */
    float *best_params;
    double *history;            /* [epochs][HIST_COLS] */
    int best_epoch;             /* 1-based, 0 = none yet */
    double best_auc;
    int select_last;
    /* position: the next step to run */
    int epoch, step;
    double ep_loss_sum, ep_correct, ep_train_seconds, ep_seconds;
    int steps_per_epoch;
    int resumed_epoch;
    int ckpt_ranks;
    char ckpt_path[4096];
    char fingerprint[4096];
    FILE *loss_log;
} trainer_t;

/* Log an error once (rank 0) for a problem every rank finds alike. */
#define CFG_CHECK(expr, code, ...)                                              \
    do {                                                                        \
        if (!(expr)) {                                                          \
            if (t->rank == 0)                                                   \
                sc_log(SC_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__);          \
            rc = (code);                                                        \
            goto cleanup;                                                       \
        }                                                                       \
    } while (0)

static int check_config(trainer_t *t)
{
    int rc = 0;
    const train_config_t *c = t->cfg;
    CFG_CHECK(c->data_dir && *c->data_dir, SC_ERR_ARG, "train: no data set directory given");
    CFG_CHECK(c->out_path && *c->out_path, SC_ERR_ARG, "train: no output model file given");
    CFG_CHECK(c->epochs >= 1 && c->epochs <= 100000, SC_ERR_ARG,
              "train: epochs must be 1..100000, got %d", c->epochs);
    CFG_CHECK(c->batch >= 1, SC_ERR_ARG, "train: batch must be >= 1, got %d", c->batch);
    CFG_CHECK(c->batch >= t->ranks, SC_ERR_ARG,
              "train: the global batch (%d) is smaller than the number of ranks (%d); every "
              "rank needs at least one sample per step: raise --batch or use fewer ranks",
              c->batch, t->ranks);
    CFG_CHECK(c->lr > 0 && isfinite(c->lr), SC_ERR_ARG, "train: learning rate must be > 0");
    CFG_CHECK(c->weight_decay >= 0, SC_ERR_ARG, "train: weight decay must be >= 0");
    CFG_CHECK(c->classes == 1 || c->classes == 2, SC_ERR_ARG,
              "train: classes must be 2 (softmax) or 1 (sigmoid), got %d", c->classes);
    CFG_CHECK(!c->schedule || !strcmp(c->schedule, "cosine") || !strcmp(c->schedule, "constant"),
              SC_ERR_ARG, "train: unknown schedule '%s' (use cosine or constant)", c->schedule);
    CFG_CHECK(!c->select || !strcmp(c->select, "auc") || !strcmp(c->select, "last"), SC_ERR_ARG,
              "train: unknown selection '%s' (use auc or last)", c->select);
    CFG_CHECK(c->init_path || (c->arch && *c->arch), SC_ERR_ARG, "train: no architecture given");
    CFG_CHECK(c->init_path || c->size >= 16, SC_ERR_ARG, "train: size must be >= 16, got %d",
              c->size);
    optim_kind_t kind;
    if (optim_parse(c->optimizer ? c->optimizer : "adam", &kind) < 0)
        return SC_ERR_ARG;
    optim_config_default(&t->ocfg, kind);
    t->ocfg.momentum = c->momentum;
    t->ocfg.weight_decay = c->weight_decay;
    CHECK_RC(image_resize_parse(c->resize ? c->resize : "area", &t->resize));
    t->select_last = c->select ? !strcmp(c->select, "last") : c->shuffled_labels;
cleanup:
    return rc;
}

/* Split entries into training and validation samples (train.h: "Samples"). */
static int select_samples(trainer_t *t)
{
    int rc = 0, n = dataset_count(t->ds), any_split = 0;
    t->train_idx = malloc(sizeof(int) * (size_t)(n + 1));
    t->val_idx = malloc(sizeof(int) * (size_t)(n + 1));
    CHECK_ALLOC(t->train_idx);
    CHECK_ALLOC(t->val_idx);
    for (int i = 0; i < n; i++)
        any_split |= dataset_split(t->ds, i) != DATASET_SPLIT_NONE;
    for (int i = 0; i < n; i++) {
        int to_val;
        if (any_split) {
            dataset_split_t s = dataset_split(t->ds, i);
            if (s != DATASET_SPLIT_TRAIN && s != DATASET_SPLIT_VAL)
                continue;
            to_val = s == DATASET_SPLIT_VAL;
        } else {
            rng_key_t k = rng_key(0, dataset_id(t->ds, i));
            to_val = k.k[0] % 100 < 15;
        }
        if (to_val)
            t->val_idx[t->n_val++] = i;
        else
            t->train_idx[t->n_train++] = i;
    }
    snprintf(t->split_desc, sizeof t->split_desc, "%s",
             any_split ? dataset_split_source(t->ds) : "hash of the image id (85/15)");
    CFG_CHECK(t->n_train >= t->cfg->batch, SC_ERR_ARG,
              "train: '%s' has %d training images, fewer than one batch (%d)", t->cfg->data_dir,
              t->n_train, t->cfg->batch);
    CFG_CHECK(t->n_val >= 1, SC_ERR_ARG, "train: '%s' has no validation images (%s)",
              t->cfg->data_dir, t->split_desc);
    t->train_label = malloc(sizeof(int) * (size_t)t->n_train);
    t->val_label = malloc(sizeof(int) * (size_t)t->n_val);
    t->order = malloc(sizeof(int32_t) * (size_t)t->n_train);
    CHECK_ALLOC(t->train_label);
    CHECK_ALLOC(t->val_label);
    CHECK_ALLOC(t->order);
    for (int i = 0; i < t->n_val; i++)
        t->val_label[i] = dataset_label(t->ds, t->val_idx[i]);
    if (t->cfg->shuffled_labels) {
        t->perm = malloc(sizeof(int32_t) * (size_t)t->n_train);
        CHECK_ALLOC(t->perm);
        train_label_permutation(t->cfg->seed, t->n_train, t->perm);
        for (int i = 0; i < t->n_train; i++)
            t->train_label[i] = dataset_label(t->ds, t->train_idx[t->perm[i]]);
    } else {
        for (int i = 0; i < t->n_train; i++)
            t->train_label[i] = dataset_label(t->ds, t->train_idx[i]);
    }
cleanup:
    return rc;
}

static int build_model(trainer_t *t)
{
    int rc = 0;
    const train_config_t *c = t->cfg;
    size_t plen = c->init_path ? strlen(c->init_path) : 0;
    if (plen > 5 && !strcasecmp(c->init_path + plen - 5, ".onnx")) {
        /* ONNX (torch.onnx.export, tf2onnx): its graph, weights and blocks */
        CFG_CHECK(onnx_import_available(), SC_ERR_UNSUPPORTED,
                  "train: this build cannot read ONNX files ('%s')", c->init_path);
        onnx_import_opts_t io = {.normalize = c->normalize, .size = c->size};
        CHECK_RC(onnx_import_file(c->init_path, &io, &t->m, NULL));
        onnx_group_blocks(t->m, NULL, 0);
        CFG_CHECK(!c->size || c->size == t->m->nodes[0].h, SC_ERR_ARG,
                  "train: --size %d differs from the input size %d of '%s'", c->size,
                  t->m->nodes[0].h, c->init_path);
    } else if (c->init_path) {
        CHECK_RC(modelfile_load(c->init_path, &t->m));
        CFG_CHECK(!c->size || c->size == t->m->nodes[0].h, SC_ERR_ARG,
                  "train: --size %d differs from the input size %d of '%s'", c->size,
                  t->m->nodes[0].h, c->init_path);
    } else {
        CHECK_RC(zoo_build(c->arch, c->size, c->classes, c->seed, &t->m));
    }
    /* the gray radiograph copied to each of the model's channels (1 or 3, io/image_norm.h) */
    CFG_CHECK(t->m->nodes[0].h == t->m->nodes[0].w &&
                  (t->m->nodes[0].c == 1 || t->m->nodes[0].c == 3),
              SC_ERR_ARG, "train: '%s' does not take a square 1- or 3-channel image (%dx%dx%d)",
              c->init_path ? c->init_path : c->arch, t->m->nodes[0].c, t->m->nodes[0].h,
              t->m->nodes[0].w);
    t->res = t->m->nodes[0].h;
    t->logits_id = nn_logits_node(t->m);
    t->classes = (int)nn_node_size(&t->m->nodes[t->logits_id]);
    CFG_CHECK(t->classes == c->classes, SC_ERR_ARG,
              "train: '%s' has %d outputs, the configuration asks for %d classes",
              c->init_path ? c->init_path : c->arch, t->classes, c->classes);
    const char *norm = c->normalize ? c->normalize : t->m->normalize;
    CHECK_RC(image_norm_resolve(norm, t->m->nodes[0].c, &t->norm));
    snprintf(t->m->normalize, sizeof t->m->normalize, "%s", t->norm.name);
cleanup:
    return rc;
}

/* Load every training and validation image once: each rank decodes a block,
 * then the blocks are exchanged (one image = one MPI element). COLLECTIVE. */
static int load_images(trainer_t *t)
{
    int rc = 0;
    const size_t plane = (size_t)t->res * t->res;
    const int n_all = t->n_train + t->n_val;
    image_loader_t *loader = NULL;
    float *gray = NULL;
    int *counts = NULL, *displs = NULL;
    MPI_Datatype image_type = MPI_DATATYPE_NULL;
    char path[4096];
    t->gray = malloc(sizeof(uint16_t) * plane * (size_t)n_all);
    CHECK(t->gray, SC_ERR_NOMEM,
          "train: out of memory holding %d images of %dx%d (%.0f MB)", n_all, t->res, t->res,
          2.0 * plane * n_all / 1e6);
    loader = image_loader_create(t->res, t->resize, t->norm);
    if (loader)
        image_loader_set_read_options(loader, dataset_read_options(t->ds));
    gray = sc_calloc(plane, sizeof(float));
    counts = calloc((size_t)t->ranks, sizeof(int));
    displs = calloc((size_t)t->ranks, sizeof(int));
    CHECK_ALLOC(loader);
    CHECK_ALLOC(gray);
    CHECK_ALLOC(counts);
    CHECK_ALLOC(displs);
    for (int r = 0; r < t->ranks; r++) {
        int b, e;
        dp_shard(n_all, t->ranks, r, &b, &e);
        displs[r] = b;
        counts[r] = e - b;
    }
    for (int k = displs[t->rank]; k < displs[t->rank] + counts[t->rank]; k++) {
        int entry = k < t->n_train ? t->train_idx[k] : t->val_idx[k - t->n_train];
        CHECK_RC(dataset_image_path(t->ds, entry, path, sizeof path));
        CHECK_RC(image_loader_load(loader, path, NULL, gray));
        uint16_t *dst = t->gray + (size_t)k * plane;
        for (size_t i = 0; i < plane; i++) {
            float v = gray[i] * GRAY_SCALE + 0.5f;
            dst[i] = (uint16_t)(v < 0 ? 0 : v > 65535.0f ? 65535 : v);
        }
    }
cleanup:
    rc = dp_agree(rc, t->comm);
    if (rc == 0 && t->ranks > 1) {
        if (MPI_Type_contiguous((int)plane, MPI_UNSIGNED_SHORT, &image_type) != MPI_SUCCESS ||
            MPI_Type_commit(&image_type) != MPI_SUCCESS ||
            MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, t->gray, counts, displs,
                           image_type, t->comm) != MPI_SUCCESS) {
            SC_ERROR("train: exchanging the images between ranks failed");
            rc = SC_ERR_MPI;
        }
    }
    if (image_type != MPI_DATATYPE_NULL)
        MPI_Type_free(&image_type);
    image_loader_destroy(loader);
    sc_free(gray);
    free(counts);
    free(displs);
    return rc;
}

static int alloc_workspaces(trainer_t *t)
{
    int rc = 0;
    const size_t plane = (size_t)t->res * t->res;
    int b0, b1;
    t->shard_max = 0;
    for (int r = 0; r < t->ranks; r++) {
        dp_shard(t->cfg->batch, t->ranks, r, &b0, &b1);
        if (b1 - b0 > t->shard_max)
            t->shard_max = b1 - b0;
    }
    t->eval_max = t->cfg->eval_batch > 0 ? t->cfg->eval_batch : t->shard_max;
    int max_batch = t->shard_max > t->eval_max ? t->shard_max : t->eval_max;
    CHECK_RC(nn_model_prepare(t->m, max_batch));
    t->x = sc_calloc((size_t)max_batch * t->m->nodes[0].c * plane, sizeof(float));
    t->plane = sc_calloc(plane, sizeof(float));
    t->plane_aug = sc_calloc(plane, sizeof(float));
    t->dlogits = sc_calloc((size_t)max_batch * t->classes, sizeof(float));
    t->y = calloc((size_t)max_batch, sizeof(int));
    t->val_buf = calloc((size_t)t->n_val * 2, sizeof(double));
    t->best_params = sc_calloc(t->m->n_params, sizeof(float));
    t->history = calloc((size_t)t->cfg->epochs * HIST_COLS, sizeof(double));
    CHECK_ALLOC(t->x);
    CHECK_ALLOC(t->plane);
    CHECK_ALLOC(t->plane_aug);
    CHECK_ALLOC(t->dlogits);
    CHECK_ALLOC(t->y);
    CHECK_ALLOC(t->val_buf);
    CHECK_ALLOC(t->best_params);
    CHECK_ALLOC(t->history);
    t->opt = optim_create(t->m, &t->ocfg);
    CHECK_ALLOC(t->opt);
    CHECK_RC(dp_bn_hook_install(t->m, t->comm, &t->bn));
cleanup:
    return rc;
}

/* Network input of image k (position in train ++ val) into x; augmented with
 * (epoch, entry) when aug_epoch >= 0. */
static void make_input(trainer_t *t, int k, int aug_epoch, float *x)
{
    const size_t plane = (size_t)t->res * t->res;
    const uint16_t *src = t->gray + (size_t)k * plane;
    for (size_t i = 0; i < plane; i++)
        t->plane[i] = src[i] * (1.0f / GRAY_SCALE);
    const float *g = t->plane;
    if (aug_epoch >= 0) {
        train_augment(t->plane, t->res, t->plane_aug, t->cfg->seed, aug_epoch,
                      t->train_idx[k]);
        g = t->plane_aug;
    }
    image_normalize(g, (int)plane, t->norm, x);
}

double train_loss_grad(const float *logits, const int *y, int n, int classes, int global_n,
                       float *dlogits, double *correct, double *scores)
{
    double loss = 0.0;
    *correct = 0.0;
    for (int i = 0; i < n; i++) {
        const float *l = logits + (size_t)i * classes;
        if (classes == 1) {
            double z = l[0], p = 1.0 / (1.0 + exp(-z));
            /* log(1 + e^z) - y z, stable */
            loss += (z > 0 ? z + log1p(exp(-z)) : log1p(exp(z))) - y[i] * z;
            *correct += (z > 0) == (y[i] != 0);
            if (dlogits)
                dlogits[i] = (float)((p - y[i]) / global_n);
            if (scores)
                scores[i] = z;
            continue;
        }
        double mx = l[0];
        int arg = 0;
        for (int c = 1; c < classes; c++)
            if (l[c] > mx) {
                mx = l[c];
                arg = c;
            }
        double se = 0.0;
        for (int c = 0; c < classes; c++)
            se += exp(l[c] - mx);
        double lse = mx + log(se);
        loss += lse - l[y[i]];
        *correct += arg == y[i];
        if (dlogits)
            for (int c = 0; c < classes; c++)
                dlogits[(size_t)i * classes + c] =
                    (float)((exp(l[c] - lse) - (c == y[i])) / global_n);
        if (scores)
            scores[i] = (double)l[1] - l[0];
    }
    return loss;
}

/* Validation metrics of the current weights. COLLECTIVE. */
static int validate(trainer_t *t, double *loss, double *auc, double *acc)
{
    int rc = 0, b, e;
    const size_t in_size = nn_node_size(&t->m->nodes[0]);
    memset(t->val_buf, 0, sizeof(double) * 2 * (size_t)t->n_val);
    dp_shard(t->n_val, t->ranks, t->rank, &b, &e);
    for (int s = b; s < e; s += t->eval_max) {
        int n = e - s < t->eval_max ? e - s : t->eval_max;
        for (int i = 0; i < n; i++)
            make_input(t, t->n_train + s + i, -1, t->x + (size_t)i * in_size);
        rc = nn_forward(t->m, t->x, n, 0);
        if (rc < 0)
            break;
        const float *logits = nn_node_out(t->m, t->logits_id);
        for (int i = 0; i < n; i++) {
            double correct;
            t->val_buf[t->n_val + s + i] =
                train_loss_grad(logits + (size_t)i * t->classes, &t->val_label[s + i], 1,
                           t->classes, 1, NULL, &correct, &t->val_buf[s + i]);
        }
    }
    CHECK_RC(dp_agree(rc, t->comm));
    if (t->ranks > 1)
        CHECK(MPI_Allreduce(MPI_IN_PLACE, t->val_buf, 2 * t->n_val, MPI_DOUBLE, MPI_SUM,
                            t->comm) == MPI_SUCCESS,
              SC_ERR_MPI, "train: MPI_Allreduce of the validation scores failed");
    double sum = 0.0, right = 0.0;
    for (int i = 0; i < t->n_val; i++) {
        sum += t->val_buf[t->n_val + i];
        right += (t->val_buf[i] > 0) == (t->val_label[i] != 0);
    }
    *loss = sum / t->n_val;
    *acc = right / t->n_val;
    *auc = train_auc(t->val_buf, t->val_label, t->n_val);
cleanup:
    return rc;
}

/* ------------------------------------------------------------ HDF5 helpers */

/* A 1-D or 2-D dataset of `count` values (dims[1] = 0 for 1-D). */
static int h5_write(hid_t loc, const char *name, hid_t file_type, hid_t mem_type,
                    hsize_t d0, hsize_t d1, const void *data)
{
    hsize_t dims[2] = {d0, d1};
    hid_t space = H5Screate_simple(d1 ? 2 : 1, dims, NULL);
    hid_t dset = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = dset >= 0 && (d0 == 0 || H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                               data) >= 0);
    if (dset >= 0)
        H5Dclose(dset);
    H5Sclose(space);
    return ok ? 0 : -1;
}

/* Read exactly `count` values of dataset `name`. */
static int h5_read(hid_t loc, const char *name, hid_t mem_type, size_t count, void *data)
{
    hid_t dset = -1;
    H5E_BEGIN_TRY { dset = H5Dopen2(loc, name, H5P_DEFAULT); } H5E_END_TRY;
    if (dset < 0)
        return -1;
    hid_t space = H5Dget_space(dset);
    int ok = H5Sget_simple_extent_npoints(space) == (hssize_t)count &&
             (count == 0 || H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    H5Sclose(space);
    H5Dclose(dset);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------ checkpoints */

static void make_fingerprint(trainer_t *t)
{
    const train_config_t *c = t->cfg;
    snprintf(t->fingerprint, sizeof t->fingerprint,
             "arch=%s size=%d classes=%d seed=%llu epochs=%d batch=%d lr=%.9g optimizer=%s "
             "momentum=%.9g weight_decay=%.9g schedule=%s labels=%s augment=%d normalize=%s "
             "resize=%s init=%s data=%s n_train=%d n_val=%d n_params=%zu",
             t->m->arch, t->res, t->classes, (unsigned long long)c->seed, c->epochs, c->batch,
             c->lr, optim_name(t->ocfg.kind), c->momentum, c->weight_decay,
             c->schedule ? c->schedule : "constant", c->shuffled_labels ? "shuffled" : "true",
             c->augment, t->norm.name, image_resize_name(t->resize),
             c->init_path ? c->init_path : "-", c->data_dir, t->n_train, t->n_val,
             t->m->n_params);
}

/* Rank 0 writes the checkpoint to a temporary file and renames it. */
static int checkpoint_write(trainer_t *t)
{
    int rc = 0;
    hid_t file = -1;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", t->ckpt_path);
    CHECK_RC(sc_mkdirs_parent(tmp));
    file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(file >= 0, SC_ERR_IO, "train: cannot create checkpoint '%s'", tmp);
    const size_t np = t->m->n_params;
    CHECK_H5(h5attr_write_str(file, "format", CKPT_FORMAT), "checkpoint attr");
    CHECK_H5(h5attr_write_str(file, "fingerprint", t->fingerprint), "checkpoint attr");
    CHECK_H5(h5attr_write_f64(file, "epoch", t->epoch), "checkpoint attr");
    CHECK_H5(h5attr_write_f64(file, "step", t->step), "checkpoint attr");
    CHECK_H5(h5attr_write_f64(file, "epoch_loss_sum", t->ep_loss_sum), "checkpoint attr");
    CHECK_H5(h5attr_write_f64(file, "epoch_correct", t->ep_correct), "checkpoint attr");
    CHECK_H5(h5attr_write_f64(file, "epoch_train_seconds", t->ep_train_seconds), "checkpoint attr");
    CHECK_H5(h5attr_write_f64(file, "optimizer_steps", (double)optim_steps(t->opt)), "checkpoint attr");
    CHECK_H5(h5attr_write_f64(file, "best_epoch", t->best_epoch), "checkpoint attr");
    CHECK_H5(h5attr_write_f64(file, "best_auc", t->best_auc), "checkpoint attr");
    CHECK_H5(h5attr_write_f64(file, "ranks", t->ranks), "checkpoint attr");
    CHECK_H5(h5_write(file, "params", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, np, 0, t->m->params),
             "checkpoint params");
    CHECK_H5(h5_write(file, "best_params", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, np, 0,
                      t->best_params), "checkpoint best params");
    CHECK_H5(h5_write(file, "optimizer_state0", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, np, 0,
                      optim_state(t->opt, 0)), "checkpoint optimizer state");
    if (optim_state(t->opt, 1))
        CHECK_H5(h5_write(file, "optimizer_state1", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, np, 0,
                          optim_state(t->opt, 1)), "checkpoint optimizer state");
    CHECK_H5(h5_write(file, "history", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                      (hsize_t)t->cfg->epochs, HIST_COLS, t->history), "checkpoint history");
    {
        hid_t f = file;
        file = -1;
        /* a checkpoint whose close failed is incomplete: the previous one stays */
        CHECK_RC(h5file_close(f, tmp, "the training checkpoint"));
    }
    CHECK(rename(tmp, t->ckpt_path) == 0, SC_ERR_IO, "train: cannot rename '%s' to '%s': %s", tmp,
          t->ckpt_path, strerror(errno));
cleanup:
    if (file >= 0)
        H5Fclose(file);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* Everyone: rank 0 writes, all agree on the outcome. COLLECTIVE. */
static int checkpoint(trainer_t *t)
{
    int rc = t->rank == 0 ? checkpoint_write(t) : 0;
    return dp_agree(rc, t->comm);
}

/* Rank 0: read the checkpoint into the model, the optimizer and scalars[0..8]. */
static int checkpoint_read(trainer_t *t, double *scalars)
{
    int rc = 0;
    hid_t file = -1;
    char buf[4096];
    H5E_BEGIN_TRY { file = H5Fopen(t->ckpt_path, H5F_ACC_RDONLY, H5P_DEFAULT); } H5E_END_TRY;
    CHECK(file >= 0 && h5attr_read_str(file, "format", buf, sizeof buf) == 0 &&
              !strcmp(buf, CKPT_FORMAT),
          SC_ERR_FORMAT, "train: '%s' is not a training checkpoint; remove it or train "
          "without resuming (--no-resume)", t->ckpt_path);
    CHECK(h5attr_read_str(file, "fingerprint", buf, sizeof buf) == 0 &&
              !strcmp(buf, t->fingerprint),
          SC_ERR_ARG, "train: checkpoint '%s' was made with other settings:\n  it:   %s\n  "
          "now:  %s\nremove it, or pass --no-resume to start over", t->ckpt_path, buf,
          t->fingerprint);
    const char *keys[] = {"epoch", "step", "epoch_loss_sum", "epoch_correct",
                          "epoch_train_seconds", "optimizer_steps", "best_epoch", "best_auc",
                          "ranks"};
    for (int i = 0; i < 9; i++)
        CHECK(h5attr_read_f64(file, keys[i], &scalars[i]) == 0, SC_ERR_FORMAT,
              "train: checkpoint '%s' lacks attribute %s", t->ckpt_path, keys[i]);
    const size_t np = t->m->n_params;
    int ok = h5_read(file, "params", H5T_NATIVE_FLOAT, np, t->m->params) == 0 &&
             h5_read(file, "best_params", H5T_NATIVE_FLOAT, np, t->best_params) == 0 &&
             h5_read(file, "optimizer_state0", H5T_NATIVE_FLOAT, np, optim_state(t->opt, 0)) == 0 &&
             (!optim_state(t->opt, 1) ||
              h5_read(file, "optimizer_state1", H5T_NATIVE_FLOAT, np, optim_state(t->opt, 1)) == 0) &&
             h5_read(file, "history", H5T_NATIVE_DOUBLE, (size_t)t->cfg->epochs * HIST_COLS,
                     t->history) == 0;
    nn_model_params_changed(t->m);
    CHECK(ok, SC_ERR_FORMAT, "train: checkpoint '%s' is incomplete or corrupt; remove it",
          t->ckpt_path);
    CHECK(scalars[0] >= 0 && scalars[0] <= t->cfg->epochs && scalars[1] >= 0 &&
              scalars[1] < t->steps_per_epoch,
          SC_ERR_FORMAT, "train: checkpoint '%s' has an impossible position (epoch %g, step %g)",
          t->ckpt_path, scalars[0], scalars[1]);
cleanup:
    if (file >= 0)
        H5Fclose(file);
    return rc;
}

/*
 * Rank 0 reads a matching checkpoint, then broadcasts it. *found = 1 when the
 * run continues from it. A checkpoint of a different configuration is an
 * error (it would be overwritten otherwise). COLLECTIVE.
 */
static int checkpoint_resume(trainer_t *t, int *found)
{
    int rc = 0;
    double scalars[12] = {0};
    *found = 0;
    if (t->rank == 0 && access(t->ckpt_path, F_OK) == 0) {
        rc = checkpoint_read(t, scalars);
        scalars[11] = 1.0;
    }
    rc = dp_agree(rc, t->comm);
    if (rc < 0)
        return rc;
    if (t->ranks > 1) {
        if (MPI_Bcast(scalars, 12, MPI_DOUBLE, 0, t->comm) != MPI_SUCCESS)
            return SC_ERR_MPI;
        if (scalars[11] != 0.0) {
            int ok = dp_broadcast_params(t->m, t->comm) == 0 &&
                     MPI_Bcast(t->best_params, (int)t->m->n_params, MPI_FLOAT, 0, t->comm) ==
                         MPI_SUCCESS &&
                     MPI_Bcast(optim_state(t->opt, 0), (int)t->m->n_params, MPI_FLOAT, 0,
                               t->comm) == MPI_SUCCESS &&
                     (!optim_state(t->opt, 1) ||
                      MPI_Bcast(optim_state(t->opt, 1), (int)t->m->n_params, MPI_FLOAT, 0,
                                t->comm) == MPI_SUCCESS) &&
                     MPI_Bcast(t->history, t->cfg->epochs * HIST_COLS, MPI_DOUBLE, 0,
                               t->comm) == MPI_SUCCESS;
            if (!ok) {
                SC_ERROR("train: broadcast of the checkpoint failed");
                return SC_ERR_MPI;
            }
        }
    }
    if (scalars[11] != 0.0) {
        *found = 1;
        t->epoch = (int)scalars[0];
        t->step = (int)scalars[1];
        t->ep_loss_sum = scalars[2];
        t->ep_correct = scalars[3];
        t->ep_train_seconds = scalars[4];
        optim_set_steps(t->opt, (int64_t)scalars[5]);
        t->best_epoch = (int)scalars[6];
        t->best_auc = scalars[7];
        t->ckpt_ranks = (int)scalars[8];
    }
    return 0;
}

/* ------------------------------------------------------------ output */

static void fmt_time(double s, char *buf, size_t len)
{
    if (!(s >= 0) || s > 1e7)
        snprintf(buf, len, "?");
    else if (s < 60)
        snprintf(buf, len, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, len, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, len, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

static void stats_from_history(const double *row, train_epoch_stats_t *s)
{
    s->epoch = (int)row[0];
    s->lr = row[1];
    s->train_loss = row[2];
    s->train_acc = row[3];
    s->val_loss = row[4];
    s->val_auc = row[5];
    s->val_acc = row[6];
    s->seconds = row[7];
    s->images_per_s = row[8];
}

/* Rank 0: the model file (to a temporary name, renamed when complete). */
static int write_model(trainer_t *t, const train_epoch_stats_t *sel, const train_epoch_stats_t *last,
                       double seconds)
{
    int rc = 0;
    hid_t file = -1, group = -1, type = -1;
    char tmp[4200], created[64];
    char vals[40][96];
    const char *meta[2 * 40 + 1];
    int k = 0, v = 0;
    char **ids = NULL;
    int8_t *labels = NULL;
    const train_config_t *c = t->cfg;
    time_t now = time(NULL);
    struct tm tm_utc;
    gmtime_r(&now, &tm_utc);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm_utc);
#define META_S(key, value) (meta[k++] = (key), meta[k++] = (value))
#define META_F(key, ...)                                                        \
    (snprintf(vals[v], sizeof vals[v], __VA_ARGS__), meta[k++] = (key), meta[k++] = vals[v++])
    META_S("trained_by", "salcheck train");
    META_S("created", created);
    META_S("data_dir", c->data_dir);
    META_S("data_split", t->split_desc);
    META_F("n_train", "%d", t->n_train);
    META_F("n_val", "%d", t->n_val);
    META_F("seed", "%llu", (unsigned long long)c->seed);
    META_S("labels", c->shuffled_labels ? "shuffled" : "true");
    if (c->shuffled_labels)
        META_S("label_permutation", "/train/label_permutation");
    META_F("epochs", "%d", c->epochs);
    META_F("batch", "%d", c->batch);
    META_S("optimizer", optim_name(t->ocfg.kind));
    META_F("lr", "%.9g", c->lr);
    META_S("schedule", c->schedule ? c->schedule : "constant");
    META_F("momentum", "%.9g", c->momentum);
    META_F("weight_decay", "%.9g", c->weight_decay);
    META_S("augment", c->augment ? "1" : "0");
    META_S("resize", image_resize_name(t->resize));
    META_S("init", c->init_path ? c->init_path : "");
    META_S("selection", t->select_last ? "last" : "best validation AUC");
    META_F("ranks", "%d", t->ranks);
    META_S("shard_rule", "rank r of P computes positions [floor(r*B/P), floor((r+1)*B/P)) of "
                         "each global batch; gradients summed; batch norm over the global batch");
    META_F("selected_epoch", "%d", sel->epoch);
    META_F("val_auc", "%.6f", sel->val_auc);
    META_F("val_acc", "%.6f", sel->val_acc);
    META_F("val_loss", "%.6f", sel->val_loss);
    META_F("train_loss", "%.6f", sel->train_loss);
    META_F("train_acc", "%.6f", sel->train_acc);
    META_F("last_val_auc", "%.6f", last->val_auc);
    META_F("last_train_acc", "%.6f", last->train_acc);
    META_F("train_seconds", "%.1f", seconds);
    meta[k] = NULL;
#undef META_S
#undef META_F

    snprintf(tmp, sizeof tmp, "%s.tmp", c->out_path);
    CHECK_RC(modelfile_save(tmp, t->m, meta));
    file = H5Fopen(tmp, H5F_ACC_RDWR, H5P_DEFAULT);
    CHECK_H5(file, "train: cannot reopen '%s'", tmp);
    group = H5Gcreate2(file, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK_H5(group, "train: cannot create /train in '%s'", tmp);
    ids = calloc((size_t)t->n_train, sizeof *ids);
    labels = calloc((size_t)t->n_train, 1);
    CHECK_ALLOC(ids);
    CHECK_ALLOC(labels);
    for (int i = 0; i < t->n_train; i++) {
        ids[i] = (char *)dataset_id(t->ds, t->train_idx[i]);
        labels[i] = (int8_t)t->train_label[i];
    }
    type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    CHECK_H5(h5_write(group, "train_ids", type, type, (hsize_t)t->n_train, 0, ids),
             "train: write /train/train_ids");
    CHECK_H5(h5_write(group, "labels_trained", H5T_STD_I8LE, H5T_NATIVE_INT8,
                      (hsize_t)t->n_train, 0, labels), "train: write /train/labels_trained");
    if (t->perm)
        CHECK_H5(h5_write(group, "label_permutation", H5T_STD_I32LE, H5T_NATIVE_INT32,
                          (hsize_t)t->n_train, 0, t->perm),
                 "train: write /train/label_permutation");
    int done = last->epoch;
    CHECK_H5(h5_write(group, "history", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, (hsize_t)done,
                      HIST_COLS, t->history), "train: write /train/history");
    hid_t hist = H5Dopen2(group, "history", H5P_DEFAULT);
    int ok = hist >= 0 && h5attr_write_str(hist, "columns", hist_columns) == 0;
    if (hist >= 0)
        H5Dclose(hist);
    CHECK_H5(ok ? 0 : -1, "train: write /train/history columns");
    H5Gclose(group);
    group = -1;
    {
        hid_t f = file;
        file = -1;
        CHECK_RC(h5file_close(f, tmp, "the trained model"));
    }
    CHECK(rename(tmp, c->out_path) == 0, SC_ERR_IO, "train: cannot rename '%s' to '%s': %s", tmp,
          c->out_path, strerror(errno));
cleanup:
    free(ids);
    free(labels);
    if (type >= 0)
        H5Tclose(type);
    if (group >= 0)
        H5Gclose(group);
    if (file >= 0)
        H5Fclose(file);
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* ------------------------------------------------------------ the loop */

/* One step: returns the flags (bit 0 checkpoint due, bit 1 stop) agreed by all ranks. */
static int train_step(trainer_t *t, double *last_ckpt, int *flags)
{
    int rc = 0, b, e;
    const int B = t->cfg->batch;
    const size_t in_size = nn_node_size(&t->m->nodes[0]);
    dp_shard(B, t->ranks, t->rank, &b, &e);
    const int n = e - b;
    for (int i = 0; i < n; i++) {
        int k = t->order[(size_t)t->step * B + b + i];
        make_input(t, k, t->cfg->augment ? t->epoch : -1, t->x + (size_t)i * in_size);
        t->y[i] = t->train_label[k];
    }
    memset(t->m->grads, 0, sizeof(float) * t->m->n_params);
    CHECK_RC(nn_forward(t->m, t->x, n, 1));
    double stats[4];
    stats[0] = train_loss_grad(nn_node_out(t->m, t->logits_id), t->y, n, t->classes, B, t->dlogits,
                          &stats[1], NULL);
    nn_backward_opts_t o = {.param_grads = 1, .training = 1};
    CHECK_RC(nn_backward(t->m, t->logits_id, t->dlogits, NULL, &o));
    CHECK(dp_bn_hook_error(t->bn) == 0, SC_ERR_MPI, "train: MPI_Allreduce in batch norm failed");
    CHECK_RC(dp_allreduce_grads(t->m, t->comm));
    stats[2] = t->rank == 0 && t->cfg->checkpoint_seconds > 0 &&
               sc_now() - *last_ckpt >= t->cfg->checkpoint_seconds;
    stats[3] = t->cfg->stop && *t->cfg->stop;
    if (t->ranks > 1)
        CHECK(MPI_Allreduce(MPI_IN_PLACE, stats, 4, MPI_DOUBLE, MPI_SUM, t->comm) == MPI_SUCCESS,
              SC_ERR_MPI, "train: MPI_Allreduce of the step loss failed");
    int64_t global_step = (int64_t)t->epoch * t->steps_per_epoch + t->step;
    double lr = train_lr_at(t->cfg->schedule, t->cfg->lr, global_step,
                            (int64_t)t->cfg->epochs * t->steps_per_epoch);
    optim_step(t->opt, t->m, lr);
    t->ep_loss_sum += stats[0] / B;
    t->ep_correct += stats[1];
    if (t->loss_log)
        fprintf(t->loss_log, "%d %d %.9g\n", t->epoch + 1, t->step + 1, stats[0] / B);
    t->step++;
    *flags = (stats[2] > 0) | (stats[3] > 0) << 1;
cleanup:
    return rc;
}

static int run_epochs(trainer_t *t, double t_start)
{
    int rc = 0;
    const train_config_t *c = t->cfg;
    const int B = c->batch, spe = t->steps_per_epoch;
    double last_ckpt = sc_now(), last_progress = sc_now();
    double run_train_seconds = 0.0, run_val_seconds = 0.0;
    int64_t run_steps = 0;
    int run_epochs_done = 0;
    for (; t->epoch < c->epochs; t->epoch++) {
        train_epoch_order(c->seed, t->epoch, t->n_train, t->order);
        double ep_t0 = sc_now();
        while (t->step < spe) {
            int flags = 0;
            CHECK_RC(train_step(t, &last_ckpt, &flags));
            run_steps++;
            double now = sc_now();
            if (t->rank == 0 && c->progress_seconds > 0 && now - last_progress >= c->progress_seconds) {
                double per_step = (run_train_seconds + now - ep_t0) / run_steps;
                double val_per_epoch = run_epochs_done ? run_val_seconds / run_epochs_done : 0;
                int64_t left = (int64_t)(c->epochs - t->epoch) * spe - t->step;
                char eta[32];
                fmt_time(left * per_step + (c->epochs - t->epoch) * val_per_epoch, eta,
                         sizeof eta);
                SC_INFO("train: epoch %d/%d step %d/%d  loss %.4f | %.1f img/s | ETA %s",
                        t->epoch + 1, c->epochs, t->step, spe, t->ep_loss_sum / t->step,
                        B / per_step, eta);
                last_progress = now;
            }
            if (flags) {
                t->ep_train_seconds += sc_now() - ep_t0;
                run_train_seconds += sc_now() - ep_t0;
                ep_t0 = sc_now();
                CHECK_RC(checkpoint(t));
                last_ckpt = sc_now();
                if (flags & 2) {
                    if (t->rank == 0)
                        SC_INFO("train: stopped at epoch %d step %d; checkpoint '%s' written "
                                "(run again to resume)", t->epoch + 1, t->step, t->ckpt_path);
                    return TRAIN_STOPPED;
                }
            }
        }
        double ep_train = t->ep_train_seconds + (sc_now() - ep_t0);
        run_train_seconds += sc_now() - ep_t0;
        double v0 = sc_now(), val_loss, val_auc, val_acc;
        CHECK_RC(validate(t, &val_loss, &val_auc, &val_acc));
        run_val_seconds += sc_now() - v0;
        run_epochs_done++;
        double *row = t->history + (size_t)t->epoch * HIST_COLS;
        int64_t last_step = (int64_t)(t->epoch + 1) * spe - 1;
        row[0] = t->epoch + 1;
        row[1] = train_lr_at(c->schedule, c->lr, last_step, (int64_t)c->epochs * spe);
        row[2] = t->ep_loss_sum / spe;
        row[3] = t->ep_correct / ((double)spe * B);
        row[4] = val_loss;
        row[5] = val_auc;
        row[6] = val_acc;
        row[7] = ep_train + (sc_now() - v0);
        row[8] = (double)spe * B / ep_train;
        int best = 0;
        if (!isnan(val_auc) && (t->best_epoch == 0 || val_auc > t->best_auc)) {
            t->best_auc = val_auc;
            t->best_epoch = t->epoch + 1;
            memcpy(t->best_params, t->m->params, sizeof(float) * t->m->n_params);
            best = 1;
        }
        if (t->rank == 0) {
            double per_epoch = (run_train_seconds + run_val_seconds) / run_epochs_done;
            char eta[32], took[32];
            fmt_time(per_epoch * (c->epochs - t->epoch - 1), eta, sizeof eta);
            fmt_time(sc_now() - t_start, took, sizeof took);
            SC_INFO("train: epoch %d/%d  loss %.4f acc %.3f | val loss %.4f auc %.4f acc %.3f%s | "
                    "lr %.2e | %.1f img/s | %s | ETA %s",
                    t->epoch + 1, c->epochs, row[2], row[3], val_loss, val_auc, val_acc,
                    best && !t->select_last ? " *" : "", row[1], row[8], took, eta);
            if (t->loss_log)
                fflush(t->loss_log);
        }
        t->step = 0;
        t->ep_loss_sum = t->ep_correct = t->ep_train_seconds = 0.0;
        /* Position (epoch + 1, 0) is saved; the loop's increment follows. */
        t->epoch++;
        rc = checkpoint(t);
        t->epoch--;
        CHECK_RC(rc);
        last_ckpt = sc_now();
    }
cleanup:
    return rc;
}

static void trainer_free(trainer_t *t)
{
    if (t->m)
        dp_bn_hook_remove(t->m, t->bn);
    optim_destroy(t->opt);
    nn_model_destroy(t->m);
    dataset_destroy(t->ds);
    free(t->train_idx);
    free(t->val_idx);
    free(t->train_label);
    free(t->val_label);
    free(t->perm);
    free(t->order);
    free(t->gray);
    sc_free(t->x);
    sc_free(t->plane);
    sc_free(t->plane_aug);
    sc_free(t->dlogits);
    free(t->y);
    free(t->val_buf);
    sc_free(t->best_params);
    free(t->history);
    if (t->loss_log)
        fclose(t->loss_log);
}

int train_run(const train_config_t *cfg, MPI_Comm comm)
{
    int rc = 0, found = 0;
    trainer_t tr, *t = &tr;
    memset(t, 0, sizeof *t);
    double t_start = sc_now();
    t->cfg = cfg;
    t->comm = comm;
    MPI_Comm_rank(comm, &t->rank);
    MPI_Comm_size(comm, &t->ranks);
    if (cfg->result)
        memset(cfg->result, 0, sizeof *cfg->result);

    CHECK_RC(check_config(t));
    CHECK_RC(train_checkpoint_path(cfg->out_path, t->ckpt_path, sizeof t->ckpt_path));
    /* Find an unwritable output before minutes of training, not after. */
    if (t->rank == 0) {
        char probe[4200];
        snprintf(probe, sizeof probe, "%s.tmp", cfg->out_path);
        FILE *f = fopen(probe, "wb");
        if (!f) {
            SC_ERROR("train: cannot write next to the output '%s': %s", cfg->out_path,
                     strerror(errno));
            rc = SC_ERR_IO;
        } else {
            fclose(f);
            unlink(probe);
        }
    }
    CHECK_RC(dp_agree(rc, comm));

    dataset_options_t dopt;
    dataset_options_default(&dopt);
    rc = dataset_open(cfg->data_dir, cfg->data_options ? cfg->data_options : &dopt, &t->ds);
    CHECK_RC(dp_agree(rc, comm));
    CHECK_RC(dp_agree(select_samples(t), comm));
    CHECK_RC(dp_agree(build_model(t), comm));
    t->steps_per_epoch = t->n_train / cfg->batch;
    double t_load = sc_now();
    CHECK_RC(load_images(t));
    t_load = sc_now() - t_load;
    CHECK_RC(dp_agree(alloc_workspaces(t), comm));
    make_fingerprint(t);
    if (cfg->resume)
        CHECK_RC(checkpoint_resume(t, &found));
    if (found) {
        t->resumed_epoch = t->epoch + 1;
        if (t->rank == 0) {
            SC_INFO("train: resuming from '%s' at epoch %d step %d", t->ckpt_path, t->epoch + 1,
                    t->step);
            if (t->ckpt_ranks != t->ranks)
                SC_WARN("train: the checkpoint was written by %d ranks, this run has %d: the "
                        "result equals an uninterrupted run only up to rounding",
                        t->ckpt_ranks, t->ranks);
        }
    }
    if (t->rank == 0 && cfg->loss_log) {
        sc_mkdirs_parent(cfg->loss_log);
        t->loss_log = fopen(cfg->loss_log, found ? "a" : "w");
        if (!t->loss_log)
            SC_WARN("train: cannot write the loss log '%s': %s", cfg->loss_log, strerror(errno));
    }
    if (t->rank == 0) {
        SC_INFO("train: %s %dx%d, %d classes; %d train / %d val images from '%s' (%s), "
                "loaded in %.1f s", t->m->arch, t->res, t->res, t->classes, t->n_train, t->n_val,
                cfg->data_dir, t->split_desc, t_load);
        SC_INFO("train: %d epochs x %d steps of batch %d (%d rank%s, <= %d per rank); %s lr %.3g "
                "%s, weight decay %.3g; labels %s; augmentation %s; keeps the %s epoch",
                cfg->epochs, t->steps_per_epoch, cfg->batch, t->ranks, t->ranks > 1 ? "s" : "",
                t->shard_max, optim_name(t->ocfg.kind), cfg->lr,
                cfg->schedule ? cfg->schedule : "constant", cfg->weight_decay,
                cfg->shuffled_labels ? "SHUFFLED" : "true", cfg->augment ? "on" : "off",
                t->select_last ? "last" : "best-AUC");
    }

    rc = run_epochs(t, t_start);
    if (rc == TRAIN_STOPPED)
        goto cleanup;
    CHECK_RC(rc);

    train_epoch_stats_t sel, last;
    stats_from_history(t->history + (size_t)(cfg->epochs - 1) * HIST_COLS, &last);
    if (t->select_last || t->best_epoch == 0) {
        sel = last;
        if (!t->select_last && t->rank == 0)
            SC_WARN("train: the validation AUC was never defined (one class only?); keeping "
                    "the last epoch");
    } else {
        stats_from_history(t->history + (size_t)(t->best_epoch - 1) * HIST_COLS, &sel);
        memcpy(t->m->params, t->best_params, sizeof(float) * t->m->n_params);
        nn_model_params_changed(t->m);
    }
    if (t->rank == 0) {
        rc = write_model(t, &sel, &last, sc_now() - t_start);
        if (rc == 0)
            unlink(t->ckpt_path);
    }
    CHECK_RC(dp_agree(rc, comm));
    if (t->rank == 0)
        SC_INFO("train: wrote '%s' (epoch %d: val auc %.4f acc %.3f; last epoch val auc %.4f, "
                "train acc %.3f) in %.1f s", cfg->out_path, sel.epoch, sel.val_auc, sel.val_acc,
                last.val_auc, last.train_acc, sc_now() - t_start);
    if (cfg->result) {
        cfg->result->selected = sel;
        cfg->result->last = last;
        cfg->result->best_epoch = sel.epoch;
    }
cleanup:
    if (cfg->result) {
        cfg->result->n_train = t->n_train;
        cfg->result->n_val = t->n_val;
        cfg->result->epochs_done = t->epoch;
        cfg->result->resumed_epoch = t->resumed_epoch;
        cfg->result->seconds = sc_now() - t_start;
    }
    trainer_free(t);
    return rc;
}
