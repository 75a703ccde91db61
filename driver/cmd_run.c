/*
 * cmd_run.c - `salcheck run JOB.ini`: the distributed audit (docs/design.md, "Data flow").
 *
 * Every rank parses the job, opens the data set, trains the missing recipe
 * models together (data-parallel), loads the models and builds the same plan.
 * The results file is created collectively. The root then hands out work
 * items (a model variant x a block of images, all methods) most expensive
 * first and computes items itself when nobody is waiting; each worker writes
 * its maps, metrics and timings into its own cells and then the cells' done
 * flags. A second phase computes the pair similarities from the stored maps.
 * Finally the root writes /summary and prints the tables (aggregate.c).
 *
 * SIGUSR1, SIGTERM and SIGINT stop the run gracefully: the cell in progress
 * stops at its next engine batch (nothing of it is written), finished cells
 * are flushed, nothing new starts, the exit status is 3 and `--resume`
 * continues where it stopped, with any number of ranks.
 */
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aggregate.h"
#include "cli.h"
#include "io/dataset.h"
#include "io/image.h"
#include "io/job.h"
#include "io/results.h"
#include "metrics/localization.h"
#include "metrics/metrics.h"
#include "metrics/similarity.h"
#include "nn/modelfile.h"
#include "phantom/phantom.h"
#include "plan.h"
#include "rng.h"
#include "run_verify.h"
#include "run_cascade.h"
#include "run_pairs.h"
#include "run_checks.h"
#include "run_outputs.h"
#include "saliency/saliency.h"
#include "sc.h"
#include "train/train.h"

#define TAG_REQUEST 101
#define TAG_ITEM 102

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void run_usage(FILE *out)
{
    fprintf(out,
            "usage: salcheck run JOB.ini [--out FILE.h5] [--resume] [--force] [--progress SECONDS]\n"
            "                            [--rank-progress]\n\n"
            "Runs the audit a job file describes (README.md, 'Job file reference') into one HDF5\n"
            "results file, as 1 process or under mpirun/srun with any number of ranks.\n\n"
            "  --out FILE.h5      results file (default: the job's [job] out, else JOBNAME.h5)\n"
            "  --resume           continue an interrupted run in FILE.h5: finished cells are kept,\n"
            "                     the rest are computed (any rank count)\n"
            "  --force            overwrite an existing results file\n"
            "  --progress S       progress line every S seconds on stderr (default 10)\n"
            "  --rank-progress    also report what each rank finished\n"
            "  --plan             print the plan and its measured cost estimate, compute nothing\n"
            "                     (salcheck run JOB.ini --plan --help for its options)\n"
            "  --root-computes W  the root also runs items when nobody waits: yes, no, or auto\n"
            "                     (yes up to %d ranks; the default)\n"
            "  --skip-engine      benchmark the scheduler and the results file: store constant\n"
            "                     maps without computing them (not an audit)\n\n"
            "SIGUSR1/SIGTERM/SIGINT: stop the cell in progress at its next engine batch (nothing\n"
            "of it written), flush the finished cells, exit with status 3.\n",
            PLAN_ROOT_COMPUTES_MAX_RANKS);
}

/* ---- data ---- */

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static int mkdirs(const char *path)
{
    char buf[JOB_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static void parent_dir(const char *path, char *out, size_t len)
{
    snprintf(out, len, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(out, len, ".");
}

/* The phantom data set of the job, generated in parallel when absent. COLLECTIVE. */
static int ensure_phantom(const job_t *job, MPI_Comm comm)
{
    int rank, size, rc = 0;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &size);
    char labels[JOB_PATH_MAX + 32];
    snprintf(labels, sizeof labels, "%s/labels.csv", job->data_dir);
    int present = file_exists(labels);
    MPI_Bcast(&present, 1, MPI_INT, 0, comm);
    if (present)
        return 0;
    phantom_config_t cfg;
    phantom_config_default(&cfg);
    cfg.size = job->phantom_size;
    cfg.seed = (uint64_t)job->phantom_seed;
    cfg.positive_fraction = job->phantom_positive_fraction;
    if (rank == 0) {
        SC_INFO("generating the phantom data set: %d images of %dx%d, seed %d, into %s",
                job->phantom_count, cfg.size, cfg.size, job->phantom_seed, job->data_dir);
        rc = mkdirs(job->data_dir) < 0 ? SC_ERR_IO : phantom_make_dirs(job->data_dir);
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, comm);
    if (rc < 0)
        return rc;
    uint32_t n = (uint32_t)job->phantom_count;
    uint32_t begin = (uint32_t)((uint64_t)n * rank / size), end = (uint32_t)((uint64_t)n * (rank + 1) / size);
    char *rows = NULL;
    size_t rows_len = 0;
    rc = phantom_write_images(&cfg, job->data_dir, PHANTOM_FORMAT_RSNA, begin, end, &rows, &rows_len);
    int failed = rc < 0, any_failed = 0;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, comm);
    if (any_failed) {
        free(rows);
        return SC_ERR_IO;
    }
    int len = (int)rows_len, *lens = NULL, *displs = NULL;
    char *all = NULL;
    if (rank == 0) {
        lens = calloc((size_t)size, sizeof(int));
        displs = calloc((size_t)size, sizeof(int));
    }
    MPI_Gather(&len, 1, MPI_INT, lens, 1, MPI_INT, 0, comm);
    int total = 0;
    if (rank == 0) {
        for (int r = 0; r < size; r++) {
            displs[r] = total;
            total += lens[r];
        }
        all = malloc((size_t)total + 1);
    }
    MPI_Gatherv(rows, len, MPI_CHAR, all, lens, displs, MPI_CHAR, 0, comm);
    if (rank == 0) {
        all[total] = 0;
        rc = phantom_write_csvs(&cfg, job->data_dir, PHANTOM_FORMAT_RSNA, n, all, (size_t)total);
    }
    MPI_Bcast(&rc, 1, MPI_INT, 0, comm);
    free(rows);
    free(all);
    free(lens);
    free(displs);
    return rc;
}

/* ---- the run's state ---- */

typedef struct run_ctx {
    MPI_Comm comm;
    int rank, size;
    job_t *job;
    dataset_t *ds;
    plan_t *plan;
    results_t *res;
    nn_model_t *models[JOB_MAX_MODELS];
    float *base_params[JOB_MAX_MODELS];
    sal_ws_t *ws[JOB_MAX_MODELS];
    image_loader_t *loaders[JOB_MAX_MODELS]; /* per model: its resolution and input convention */
    run_output_t *outputs;             /* [n_models] the explained output of each model */
    metrics_ws_t *mws;
    int applied_variant[JOB_MAX_MODELS]; /* variant whose weights each model holds, -1 base */
    float *x, *gray, *raw, *maps, *logits;
    double *metrics, *sims;
    float *map_a, *map_b;
    int batch;
    plan_item_t *items;
    int n_items;
    int pair_block;
    double cells_done, maps_done;
    int failed_items;
    int rank_progress;
    int write_failed;          /* the results file refused a write (disk full...): take no more items */
    double t_compute, t_write, t_read; /* seconds, this rank */
    dataset_options_t dopt;            /* the job's data set options (training uses them too) */
    int skip_engine;                   /* bench: cells stored without computing (--skip-engine) */
    int root_computes;                 /* the root runs items when nobody waits (--root-computes) */
    chk_ws_t *cws;                     /* the model checks' workspace (NULL: none listed) */
    run_curves_t curves;               /* the checks' curves stored per cell */
    double *curve_buf;                 /* [curves.total] one cell's curves */
    int *emprt_bins;                   /* [M] eMPRT's bin count per method */
    long *emprt_counts;                /* [largest bin count] histogram scratch */
    run_cascade_t *cascade;            /* the randomization group of the last group item */
    const uint8_t *done;               /* [V*N] cells done when the map phase started */
    int *pair_order;                   /* [n_pairs] the pair phase's order (run_pairs_order) */
    run_pairs_t *pairs_rp;             /* the pair phase's blocks */
} run_ctx_t;

/* Make models[j] hold the weights of variant v. */
static int use_variant(run_ctx_t *c, int v)
{
    const plan_variant_t *pv = &c->plan->variants[v];
    int j = pv->model;
    if (c->applied_variant[j] == v)
        return 0;
    nn_model_t *m = c->models[j];
    memcpy(m->params, c->base_params[j], sizeof(float) * m->n_params);
    nn_model_params_changed(m);
    c->applied_variant[j] = v;
    if (pv->kind == PLAN_TRAINED)
        return 0;
    return plan_apply_variant(c->plan, pv, m, c->job->keep_bn_stats);
}

static void fill_metrics_nan(run_ctx_t *c, int method)
{
    const int M = c->plan->n_methods;
    for (int k = 0; k < c->plan->n_metrics; k++)
        c->metrics[(size_t)k * M + method] = NAN;
}

/* One cell: every method's map and metrics for (variant v, image i). */
static int run_cell(run_ctx_t *c, int v, int i)
{
    int rc = 0;
    const plan_t *p = c->plan;
    const plan_variant_t *pv = &p->variants[v];
    const int j = pv->model, R = p->size, M = p->n_methods;
    const size_t hw = (size_t)R * R;
    double t0 = sc_now();
    if (c->skip_engine) {
        /* scheduler and results-file benchmarks: constant maps, NaN metrics */
        for (size_t q = 0; q < hw * M; q++)
            c->maps[q] = 0.5f;
        for (int k = 0; k < M; k++)
            fill_metrics_nan(c, k);
        double t1 = sc_now();
        CHECK_RC(results_write_cell(c->res, v, i, c->maps, c->metrics, c->logits, 0, t1 - t0, c->rank));
        CHECK_RC(results_mark_done(c->res, v, i));
        c->t_write += sc_now() - t1;
        return 0;
    }
    CHECK_RC(use_variant(c, v));
    nn_model_t *m = c->models[j];
    char path[2048];
    CHECK_RC(dataset_image_path(c->ds, p->ds_index[i], path, sizeof path));
    CHECK_RC(image_loader_load(c->loaders[j], path, c->x, c->gray));
    int target = 0; /* the model's configured output, else its predicted class (nn/outputs.h) */
    CHECK_RC(sal_target(c->ws[j], c->x, c->outputs[j].target, &target, c->logits));
    sal_key_t key = {c->job->seed, 0, (uint32_t)i};
    for (size_t q = 0; q < c->curves.total; q++) /* an undefined map has no curve */
        c->curve_buf[q] = NAN;
    CHECK_RC(run_cell_methods(p, m, c->ws[j], c->cws, c->mws, &c->curves, c->curve_buf, c->x,
                              c->gray, target, key, i, pv->name, c->raw, c->maps, c->metrics));
    double t1 = sc_now();
    c->t_compute += t1 - t0;
    {
        int w = results_write_cell(c->res, v, i, c->maps, c->metrics, c->logits, target, t1 - t0,
                                   c->rank);
        if (w == 0 && c->curves.n > 0)
            w = results_write_curves(c->res, v, i, c->curve_buf);
        if (w == 0) {
            sc_failpoint("cell", (long)v * p->n_images + i); /* tests: data written, flag not */
            w = results_mark_done(c->res, v, i);
        }
        if (w < 0) {
            /* the file, not this cell, is the problem: this rank stops taking items */
            if (!c->write_failed)
                SC_ERROR("the results file cannot be written (see above): this rank takes no "
                         "more items; finished cells are kept. Free space or fix the file "
                         "system, then continue with --resume");
            c->write_failed = 1;
            rc = w;
            goto cleanup;
        }
    }
    c->t_write += sc_now() - t1;
cleanup:
    if (rc == SC_ERR_INTERRUPTED) /* a signal, between two engine batches: nothing written */
        SC_INFO("cell (variant %s, image %s) stopped unfinished; --resume computes it",
                pv->name, p->ids[i]);
    else if (rc < 0)
        SC_ERROR("cell (variant %s, image %s) not computed; rerun with --resume after fixing the "
                 "cause", pv->name, p->ids[i]);
    return rc;
}

static int run_map_item(run_ctx_t *c, int item)
{
    const plan_item_t *it = &c->items[item];
    int rc = 0;
    if (it->nv > 1 && !c->skip_engine) { /* a randomization's states together (run_cascade.c) */
        const int j = c->plan->variants[it->v].model;
        run_cascade_env_t env = {c->plan, c->res, c->ds, c->loaders[j], c->models[j],
                                 c->base_params[j], c->ws[j], c->outputs[j].target, c->mws,
                                 c->done, c->batch, 1, c->job->keep_bn_stats, c->rank,
                                 c->job->seed};
        c->applied_variant[j] = -2; /* the cascade leaves one of its states */
        return run_cascade_item(&c->cascade, &env, it, &c->write_failed, &c->t_compute,
                                &c->t_write);
    }
    for (int v = it->v; v < it->v + (it->nv > 1 ? it->nv : 1); v++)
        for (int i = it->i0; i < it->i1; i++) {
            if (c->done && c->done[(size_t)v * c->plan->n_images + i])
                continue;
            int r = run_cell(c, v, i);
            if (r == SC_ERR_INTERRUPTED)
                return r;
            if (r < 0)
                rc = r;
        }
    return rc;
}

typedef int (*item_fn)(run_ctx_t *c, int item);
static int run_pairs(run_ctx_t *c, int item);

static void fmt_duration(double s, char *buf, size_t len)
{
    if (!isfinite(s) || s < 0)
        snprintf(buf, len, "?");
    else if (s < 120)
        snprintf(buf, len, "%.0fs", s);
    else if (s < 7200)
        snprintf(buf, len, "%.0fm%02.0fs", floor(s / 60), fmod(s, 60));
    else
        snprintf(buf, len, "%.0fh%02.0fm", floor(s / 3600), fmod(s / 60, 60));
}

typedef struct sched {
    const char *phase;
    int n;
    const double *cost;      /* [n] */
    double total_cost;
    item_fn fn;
    double progress_every;
    const char *unit;        /* "maps" or "pairs" */
    const double *units;     /* [n] units per item */
} sched_t;

static void progress_line(const sched_t *s, int done, double cost_done, double units_done,
                          double t0, int final)
{
    double el = sc_now() - t0;
    double eta = cost_done > 0 ? el * (s->total_cost - cost_done) / cost_done : NAN;
    char e[32], t[32];
    fmt_duration(eta, e, sizeof e);
    fmt_duration(el, t, sizeof t);
    fprintf(stderr, "salcheck: %s: %d/%d items (%.0f%%), %.1f %s/s, %s %s\n", s->phase, done, s->n,
            s->n ? 100.0 * done / s->n : 100.0, el > 0 ? units_done / el : 0.0, s->unit,
            final ? "took" : "ETA", final ? t : e);
    if (final) /* for benchmarks (bench/scale.sh) */
        fprintf(stderr, "salcheck: %s: %d items in %.3f s, %.1f items/s\n", s->phase, done, el,
                el > 0 ? done / el : 0.0);
}

/*
 * Dynamic master/worker over n items (largest first). The root serves
 * requests and runs items from the cheap end when nobody waits. A worker
 * holds one item ahead: it asks for the next item before it starts the
 * current one, so the answer is there when it finishes, even when the root
 * was busy with an item of its own in between.
 *
 * A worker's message is {finished item or -1, stop flag (1: a signal, 2: the
 * results file refused a write, so no more items go out), failed flag,
 * returned item or -1} and always gets one answer: the next item, or -1. The
 * root counts the items each worker holds; a worker is finished when it is
 * answered -1 holding none. A worker stopped by a signal returns the item it
 * holds ahead unstarted (its cells stay not done, for --resume). Returns the
 * number of failed items (on the root), or -1 when stopped by a signal.
 * COLLECTIVE.
 */
static int schedule(run_ctx_t *c, const sched_t *s)
{
    const double t0 = sc_now();
    double last = t0, cost_done = 0.0, units_done = 0.0;
    int done = 0, failed = 0, stop = 0, root_items = 0;
    int halt = 0; /* a rank cannot write: hand out no more */
    if (c->rank == 0) {
        int front = 0, back = s->n, active = c->size - 1;
        int *held = calloc((size_t)c->size, sizeof(int));
        if (!held)
            stop = 1, failed++;
        while (held && (active > 0 || (front < back && !stop && !halt))) {
            if (g_stop)
                stop = 1;
            if (c->write_failed)
                halt = 1;
            int flag = 0;
            MPI_Status st;
            /* Twice: after a long item, the first probe's progress call is
             * what receives a request that arrived meanwhile (Open MPI's
             * probe tests before it progresses). */
            for (int k = 0; k < 2 && active > 0 && !flag; k++)
                MPI_Iprobe(MPI_ANY_SOURCE, TAG_REQUEST, c->comm, &flag, &st);
            if (!flag && (front >= back || stop || halt || !c->root_computes) && active > 0) {
                MPI_Probe(MPI_ANY_SOURCE, TAG_REQUEST, c->comm, &st);
                flag = 1;
            }
            if (flag) {
                int msg[4], src = st.MPI_SOURCE;
                MPI_Recv(msg, 4, MPI_INT, src, TAG_REQUEST, c->comm, MPI_STATUS_IGNORE);
                if (msg[0] >= 0) {
                    held[src]--;
                    done++;
                    cost_done += s->cost[msg[0]];
                    units_done += s->units[msg[0]];
                    if (c->rank_progress)
                        fprintf(stderr, "salcheck: %s: rank %d finished item %d\n", s->phase, src,
                                msg[0]);
                }
                if (msg[3] >= 0)
                    held[src]--;
                if (msg[1] == 1)
                    stop = 1;
                else if (msg[1] == 2)
                    halt = 1;
                failed += msg[2];
                int next = (!stop && !halt && front < back) ? front++ : -1;
                if (next >= 0)
                    held[src]++;
                MPI_Send(&next, 1, MPI_INT, src, TAG_ITEM, c->comm);
                if (next < 0 && held[src] == 0)
                    active--;
            } else if (!stop && !halt && front < back && c->root_computes) {
                int item = --back;
                root_items++;
                const int r = s->fn(c, item);
                if (r < 0 && r != SC_ERR_INTERRUPTED) /* a stopped item is not a failure */
                    failed++;
                done++;
                cost_done += s->cost[item];
                units_done += s->units[item];
            }
            double now = sc_now();
            if (s->progress_every > 0 && now - last >= s->progress_every) {
                progress_line(s, done, cost_done, units_done, t0, 0);
                last = now;
            }
        }
        free(held);
        if (!stop && s->n > 0) {
            progress_line(s, done, cost_done, units_done, t0, 1);
            fprintf(stderr, "salcheck: %s: the root ran %d of the %d items itself\n", s->phase,
                    root_items, s->n);
        }
    } else {
        int msg[4] = {-1, 0, 0, -1}, cur, ahead;
        MPI_Request req;
        MPI_Send(msg, 4, MPI_INT, 0, TAG_REQUEST, c->comm);
        MPI_Recv(&cur, 1, MPI_INT, 0, TAG_ITEM, c->comm, MPI_STATUS_IGNORE);
        if (cur >= 0) {
            msg[1] = g_stop ? 1 : c->write_failed ? 2 : 0;
            MPI_Send(msg, 4, MPI_INT, 0, TAG_REQUEST, c->comm);
            MPI_Irecv(&ahead, 1, MPI_INT, 0, TAG_ITEM, c->comm, &req);
        }
        while (cur >= 0) {
            const int skipped = g_stop || c->write_failed; /* returned unstarted */
            int r = skipped ? 0 : s->fn(c, cur);
            MPI_Wait(&req, MPI_STATUS_IGNORE);
            msg[0] = skipped ? -1 : cur;
            msg[3] = skipped ? cur : -1;
            msg[1] = g_stop ? 1 : c->write_failed ? 2 : 0;
            msg[2] = r < 0 && r != SC_ERR_INTERRUPTED ? 1 : 0;
            if ((g_stop || c->write_failed) && ahead >= 0) {
                /* hand back the item held ahead with this message's answer */
                MPI_Send(msg, 4, MPI_INT, 0, TAG_REQUEST, c->comm);
                int x;
                MPI_Recv(&x, 1, MPI_INT, 0, TAG_ITEM, c->comm, MPI_STATUS_IGNORE);
                int back_msg[4] = {-1, msg[1], 0, ahead};
                MPI_Send(back_msg, 4, MPI_INT, 0, TAG_REQUEST, c->comm);
                MPI_Recv(&x, 1, MPI_INT, 0, TAG_ITEM, c->comm, MPI_STATUS_IGNORE);
                break;
            }
            MPI_Send(msg, 4, MPI_INT, 0, TAG_REQUEST, c->comm);
            if (ahead < 0) {
                int x;
                MPI_Recv(&x, 1, MPI_INT, 0, TAG_ITEM, c->comm, MPI_STATUS_IGNORE);
                break;
            }
            cur = ahead;
            MPI_Irecv(&ahead, 1, MPI_INT, 0, TAG_ITEM, c->comm, &req);
        }
    }
    int stopped = stop || g_stop, any_stopped = 0;
    MPI_Allreduce(&stopped, &any_stopped, 1, MPI_INT, MPI_MAX, c->comm);
    MPI_Bcast(&failed, 1, MPI_INT, 0, c->comm);
    return any_stopped ? -1 : failed;
}

/* ---- setup ---- */

/* Train the recipes whose cache file is missing. COLLECTIVE. */
static int train_recipes(run_ctx_t *c)
{
    job_t *job = c->job;
    for (int j = 0; j < job->n_models; j++) {
        job_model_t *md = &job->models[j];
        if (!md->train)
            continue;
        int present = c->rank == 0 ? file_exists(md->file) : 0;
        MPI_Bcast(&present, 1, MPI_INT, 0, c->comm);
        if (present) {
            if (c->rank == 0)
                SC_INFO("model '%s': using the trained model in %s", md->name, md->file);
            continue;
        }
        char dir[JOB_PATH_MAX];
        parent_dir(md->file, dir, sizeof dir);
        if (c->rank == 0)
            mkdirs(dir);
        MPI_Barrier(c->comm);
        train_config_t cfg;
        train_config_default(&cfg);
        cfg.data_dir = job->data_dir;
        cfg.arch = md->arch;
        cfg.size = md->size ? md->size : job->size;
        cfg.seed = md->seed;
        cfg.out_path = md->file;
        if (md->epochs)
            cfg.epochs = md->epochs;
        if (md->batch)
            cfg.batch = md->batch;
        if (md->lr > 0)
            cfg.lr = md->lr;
        if (md->optimizer[0])
            cfg.optimizer = md->optimizer;
        cfg.shuffled_labels = md->shuffled_labels;
        cfg.data_options = &c->dopt;
        cfg.stop = &g_stop;
        if (c->rank == 0)
            SC_INFO("model '%s': training %s (seed %llu, %s labels) into %s", md->name, md->arch,
                    (unsigned long long)md->seed, md->shuffled_labels ? "shuffled" : "true",
                    md->file);
        int rc = train_run(&cfg, c->comm);
        if (rc == TRAIN_STOPPED)
            return -1000;
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void ctx_free(run_ctx_t *c)
{
    run_cascade_destroy(c->cascade); /* its workspaces are bound to a model */
    for (int j = 0; j < JOB_MAX_MODELS; j++) {
        sal_ws_destroy(c->ws[j]);
        nn_model_destroy(c->models[j]);
        free(c->base_params[j]);
    }
    for (int k = 0; k < JOB_MAX_MODELS; k++)
        image_loader_destroy(c->loaders[k]);
    free(c->outputs);
    metrics_ws_destroy(c->mws);
    chk_ws_destroy(c->cws);
    free(c->emprt_bins);
    free(c->curve_buf);
    free(c->emprt_counts);
    free(c->x);
    free(c->gray);
    free(c->raw);
    free(c->maps);
    free(c->logits);
    free(c->metrics);
    free(c->sims);
    free(c->map_a);
    free(c->map_b);
    run_pairs_destroy(c->pairs_rp);
    free(c->pair_order);
    free(c->items);
}

/* Agree on success across ranks: returns 0 when every rank's rc >= 0. */
static int all_ok(MPI_Comm comm, int rc)
{
    int bad = rc < 0, any = 0;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, comm);
    return any ? -1 : 0;
}

/* Expected Gradients' reference images (docs/methods.md section 4): eg.pool
 * images of the training split, a seeded sample (the same on every rank),
 * loaded under each model's normalization into its workspace. Only when a
 * method of the plan draws from it (eg, smprt-eg: the table's needs_pool). */
static int load_eg_pool(run_ctx_t *c)
{
    int rc = 0, n_train = 0, *pick = NULL;
    float *pool = NULL, *gray = NULL;
    const plan_t *p = c->plan;
    if (!sal_methods_need_pool(p->methods, p->n_methods))
        return 0;
    const int n = dataset_count(c->ds);
    pick = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    CHECK_ALLOC(pick);
    for (int i = 0; i < n; i++)
        if (dataset_split(c->ds, i) == DATASET_SPLIT_TRAIN)
            pick[n_train++] = i;
    CHECK(n_train > 0, SC_ERR_ARG, "%s: the eg method draws its baselines from the training "
          "images, and the data set has none", c->job->path);
    const int count = p->params.eg_pool < n_train ? p->params.eg_pool : n_train;
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(c->job->seed, "eg-pool"), 0, 0, 0);
    for (int i = 0; i < count; i++) { /* partial Fisher-Yates: the first `count` */
        int r = i + (int)rng_stream_below(&rs, (uint32_t)(n_train - i));
        int keep = pick[i];
        pick[i] = pick[r];
        pick[r] = keep;
    }
    const size_t chw = (size_t)3 * p->size * p->size; /* the largest: 3 channels */
    pool = malloc(sizeof(float) * chw * (size_t)count);
    gray = malloc(sizeof(float) * (size_t)p->size * p->size);
    CHECK_ALLOC(pool);
    CHECK_ALLOC(gray);
    for (int j = 0; j < c->job->n_models && rc >= 0; j++) {
        const size_t mchw = (size_t)c->models[j]->nodes[0].c * p->size * p->size;
        for (int i = 0; i < count && rc >= 0; i++) {
            char path[2048];
            rc = dataset_image_path(c->ds, pick[i], path, sizeof path);
            if (rc >= 0)
                rc = image_loader_load(c->loaders[j], path, pool + (size_t)i * mchw, gray);
        }
        if (rc >= 0)
            rc = sal_ws_set_baselines(c->ws[j], pool, count);
    }
cleanup:
    free(gray);
    free(pool);
    free(pick);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    run_ctx_t ctx;
    memset(&ctx, 0, sizeof ctx);
    run_ctx_t *c = &ctx;
    c->comm = MPI_COMM_WORLD;
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    const char *job_path = NULL, *out_opt = NULL;
    int resume = 0, force = 0, status = CLI_FAIL_ALL, rc = 0, root_computes = -1;
    double progress = 10.0;
    int *images = NULL, n_images = 0;
    char (*ids)[64] = NULL;
    int8_t *labels = NULL;
    uint8_t *gt = NULL;
    float *avgmask = NULL;
    double *item_cost = NULL, *item_units = NULL;
    uint8_t *done = NULL, *pair_done = NULL;
    int *pair_items = NULL;

    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--plan"))
            return plan_estimate_main(argc, argv);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (c->rank == 0)
                run_usage(stdout);
            return CLI_OK;
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
            out_opt = argv[++i];
        } else if (!strcmp(argv[i], "--resume")) {
            resume = 1;
        } else if (!strcmp(argv[i], "--force")) {
            force = 1;
        } else if (!strcmp(argv[i], "--rank-progress")) {
            c->rank_progress = 1;
        } else if (!strcmp(argv[i], "--skip-engine")) {
            c->skip_engine = 1;
        } else if (!strcmp(argv[i], "--root-computes") && i + 1 < argc) {
            const char *w = argv[++i];
            root_computes = !strcmp(w, "yes") ? 1 : !strcmp(w, "no") ? 0 : !strcmp(w, "auto") ? -1 : -2;
            if (root_computes == -2) {
                if (c->rank == 0)
                    fprintf(stderr, "salcheck run: --root-computes takes yes, no or auto (got '%s')\n", w);
                return CLI_FAIL_ALL;
            }
        } else if (!strcmp(argv[i], "--progress") && i + 1 < argc) {
            progress = atof(argv[++i]);
        } else if (argv[i][0] == '-' || job_path) {
            if (c->rank == 0) {
                fprintf(stderr, "salcheck run: unexpected argument '%s'\n\n", argv[i]);
                run_usage(stderr);
            }
            return CLI_FAIL_ALL;
        } else {
            job_path = argv[i];
        }
    }
    if (!job_path) {
        if (c->rank == 0)
            run_usage(stderr);
        return CLI_FAIL_ALL;
    }
    c->root_computes = c->size == 1 || root_computes == 1 ||
                       (root_computes == -1 && c->size <= PLAN_ROOT_COMPUTES_MAX_RANKS);
    signal(SIGUSR1, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    /* 1. the job: only the root reports its problems (every rank finds the same) */
    if (c->rank != 0)
        sc_log_set_level(SC_LOG_ERROR + 1);
    rc = job_load(job_path, 1, &c->job);
    if (c->rank != 0)
        sc_log_set_level(SC_LOG_INFO);
    if (all_ok(c->comm, rc) < 0)
        goto done;
    job_t *job = c->job;
    char out[JOB_PATH_MAX];
    snprintf(out, sizeof out, "%s", out_opt ? out_opt : job->out[0] ? job->out : "");
    if (!out[0])
        snprintf(out, sizeof out, "%s.h5", job->name);
    {
        int exists = c->rank == 0 ? file_exists(out) : 0, bad = 0;
        MPI_Bcast(&exists, 1, MPI_INT, 0, c->comm);
        if (exists && !resume && !force) {
            if (c->rank == 0)
                SC_ERROR("results file '%s' exists: add --resume to continue it, --force to "
                         "overwrite it, or choose another --out", out);
            bad = 1;
        }
        if (!exists && resume) {
            if (c->rank == 0)
                SC_INFO("no results file '%s' yet: starting a new run", out);
            resume = 0;
        }
        if (bad)
            goto done;
        char dir[JOB_PATH_MAX];
        parent_dir(out, dir, sizeof dir);
        if (c->rank == 0 && mkdirs(dir) < 0)
            SC_WARN("cannot create directory '%s'", dir);
    }

    /* 2. data */
    if (!strcmp(job->data_kind, "phantom"))
        rc = ensure_phantom(job, c->comm);
    if (all_ok(c->comm, rc) < 0)
        goto done;
    {
        dataset_options_t dopt;
        plan_dataset_options(job, &dopt);
        if (c->rank != 0)
            sc_log_set_level(SC_LOG_ERROR + 1);
        c->dopt = dopt;
        rc = dataset_open(job->data_dir, &c->dopt, &c->ds);
        if (c->rank != 0)
            sc_log_set_level(SC_LOG_INFO);
        if (all_ok(c->comm, rc) < 0)
            goto done;
    }

    /* 3. models: train missing recipes, then load */
    rc = train_recipes(c);
    if (rc == -1000) {
        status = CLI_INTERRUPTED;
        if (c->rank == 0)
            SC_INFO("stopped during training; rerun the same command to continue");
        goto done;
    }
    if (all_ok(c->comm, rc) < 0)
        goto done;
    for (int j = 0; j < job->n_models && rc >= 0; j++) {
        rc = modelfile_load(job->models[j].file, &c->models[j]);
        const char *ext = strrchr(job->models[j].file, '.');
        if (rc < 0)
            SC_ERROR("%s:%d: model '%s': cannot load '%s'%s", job->path, job->models[j].line,
                     job->models[j].name, job->models[j].file,
                     ext && !strcmp(ext, ".onnx") ? " (an ONNX file must be converted first: "
                                                    "salcheck import MODEL.onnx -o MODEL.h5)" : "");
    }
    if (all_ok(c->comm, rc) < 0)
        goto done;
    /* the explained output and input convention of each model (run_outputs.h) */
    c->outputs = calloc((size_t)job->n_models, sizeof *c->outputs);
    rc = c->outputs ? 0 : SC_ERR_NOMEM;
    if (c->rank != 0)
        sc_log_set_level(SC_LOG_ERROR + 1);
    for (int j = 0; j < job->n_models && rc >= 0; j++) {
        rc = run_outputs_apply(job, j, c->models[j], &c->outputs[j]);
        if (rc >= 0 && c->rank == 0 && (c->outputs[j].target >= 0 || c->outputs[j].labels[0]))
            SC_INFO("model '%s': explains output %d%s%s%s (%s head), input %s", job->models[j].name,
                    c->outputs[j].target, c->outputs[j].target_label[0] ? " (" : "",
                    c->outputs[j].target_label, c->outputs[j].target_label[0] ? ")" : "",
                    nn_outputs_head_name(c->outputs[j].head), c->models[j]->normalize);
    }
    if (rc >= 0)
        rc = run_outputs_check_pairs(job, c->outputs, NULL); /* pairs compare maps of one output */
    if (c->rank != 0)
        sc_log_set_level(SC_LOG_INFO);
    if (all_ok(c->comm, rc) < 0)
        goto done;

    /* 4. images, masks, the average training mask, the plan */
    const int R = job->size;
    const size_t hw = (size_t)R * R;
    rc = plan_select_images(c->job, c->ds, &images, &n_images);
    if (all_ok(c->comm, rc) < 0)
        goto done;
    ids = calloc((size_t)n_images, sizeof *ids);
    labels = calloc((size_t)n_images, 1);
    gt = calloc((size_t)n_images * hw, 1);
    avgmask = calloc(hw, sizeof(float));
    if (!ids || !labels || !gt || !avgmask)
        rc = SC_ERR_NOMEM;
    for (int i = 0; i < n_images && rc >= 0; i++) {
        snprintf(ids[i], sizeof ids[i], "%s", dataset_id(c->ds, images[i]));
        labels[i] = (int8_t)dataset_label(c->ds, images[i]);
        rc = dataset_mask(c->ds, images[i], R, gt + (size_t)i * hw);
    }
    {
        uint8_t *mask = malloc(hw);
        double *acc = calloc(hw, sizeof(double));
        int n_train = 0;
        for (int i = 0; mask && acc && i < dataset_count(c->ds) && rc >= 0; i++) {
            if (dataset_label(c->ds, i) != 1 || dataset_split(c->ds, i) != DATASET_SPLIT_TRAIN)
                continue;
            rc = dataset_mask(c->ds, i, R, mask);
            for (size_t q = 0; q < hw; q++)
                acc[q] += mask[q];
            n_train++;
        }
        for (size_t q = 0; q < hw; q++)
            avgmask[q] = n_train ? (float)(acc[q] / n_train) : 0.0f;
        if (n_train == 0 && c->rank == 0)
            SC_WARN("no positive training image: the avgmask control is all zero (undefined)");
        free(mask);
        free(acc);
    }
    if (all_ok(c->comm, rc) < 0)
        goto done;
    if (c->rank != 0)
        sc_log_set_level(SC_LOG_ERROR + 1);
    rc = plan_build(job, c->models, n_images, images, ids, labels, gt, avgmask, R, &c->plan);
    if (c->rank != 0)
        sc_log_set_level(SC_LOG_INFO);
    if (rc >= 0 && !strcmp(job->maps, "none") && c->plan->n_pairs > 0) {
        SC_ERROR("%s: maps = none, but the experiments compare maps (pairs need the stored maps): "
                 "use maps = float16 to halve the size", job->path);
        rc = SC_ERR_FORMAT;
    }
    if (all_ok(c->comm, rc) < 0)
        goto done;
    plan_t *p = c->plan;

    /* 5. per-rank workspaces */
    c->batch = job->batch > 0 ? job->batch : (R <= 160 ? 16 : 8);
    if (job->memory_per_rank > 0) {
        /* The batch from the budget, the smallest any rank found (maps do not depend on it). */
        int mine = 0;
        for (int k = 0; k < job->n_methods && rc >= 0; k++)
            rc = sal_budget_method(c->models, job->n_models, job->methods[k]);
        /* cascade reuse: the largest randomization's states in lockstep are counted too */
        int *states = calloc((size_t)job->n_models, sizeof(int));
        double fixed = 0.0;
        if (!states && rc >= 0)
            rc = SC_ERR_NOMEM;
        if (rc >= 0 && job->cascade_reuse && !run_checks_needed(p))
            rc = run_cascade_budget(p, c->models, job->n_models, states, &fixed);
        /* held beside the workspaces, not yet resident: each model's base parameters (copied
         * below) and what its methods hold (the Expected Gradients pool, XRAI's workspace) */
        for (int j = 0; j < job->n_models; j++) {
            fixed += sizeof(float) * (double)c->models[j]->n_params;
            for (int k = 0; k < job->n_methods; k++)
                fixed += (double)sal_method_fixed_bytes(c->models[j], job->methods[k],
                                                        &p->params);
        }
        if (rc >= 0)
            rc = sal_batch_for_memory_cascade(c->models, job->n_models, states,
                                              job->memory_per_rank, sal_resident_bytes() + fixed,
                                              job->batch > 0 ? job->batch : 256, job->path,
                                              &mine);
        free(states);
        if (all_ok(c->comm, rc) < 0)
            goto done;
        MPI_Allreduce(&mine, &c->batch, 1, MPI_INT, MPI_MIN, c->comm);
        if (c->rank == 0)
            SC_INFO("memory_per_rank %.0f MB: batch %d", job->memory_per_rank / 1048576.0,
                    c->batch);
    }
    for (int j = 0; j < job->n_models && rc >= 0; j++) {
        nn_model_t *m = c->models[j];
        c->base_params[j] = malloc(sizeof(float) * m->n_params);
        if (!c->base_params[j]) {
            rc = SC_ERR_NOMEM;
            break;
        }
        memcpy(c->base_params[j], m->params, sizeof(float) * m->n_params);
        c->applied_variant[j] = p->base_variant[j];
        rc = sal_ws_create(&c->ws[j], m, c->batch, NULL);
        if (rc >= 0) /* a signal stops the cell in progress at its next engine batch */
            sal_ws_set_stop(c->ws[j], &g_stop);
        if (rc >= 0)
            rc = sal_ws_set_avgmask(c->ws[j], avgmask);
    }
    for (int j = 0; j < job->n_models && rc >= 0; j++) {
        image_norm_t norm; /* checked by run_outputs_apply */
        rc = image_norm_resolve(c->models[j]->normalize, c->models[j]->nodes[0].c, &norm);
        c->loaders[j] = rc < 0 ? NULL : image_loader_create(R, IMAGE_RESIZE_AREA, norm);
        if (c->loaders[j])
            image_loader_set_read_options(c->loaders[j], &c->dopt.read);
        else if (rc >= 0)
            rc = SC_ERR_NOMEM;
    }
    if (rc >= 0)
        rc = load_eg_pool(c);
    c->mws = metrics_ws_create(R, R);
    c->x = malloc(sizeof(float) * 3 * hw);
    c->gray = malloc(sizeof(float) * hw);
    c->raw = malloc(sizeof(float) * 3 * hw);
    c->maps = malloc(sizeof(float) * hw * (size_t)p->n_methods);
    c->logits = calloc((size_t)p->classes, sizeof(float));
    c->metrics = calloc((size_t)p->n_metrics * p->n_methods + 1, sizeof(double));
    c->sims = calloc((size_t)p->n_sims * p->n_methods + 1, sizeof(double));
    c->map_a = malloc(sizeof(float) * hw);
    c->map_b = malloc(sizeof(float) * hw);
    if (rc >= 0 && run_checks_needed(p)) {
        int channels = 1; /* the workspace holds inputs of any model of the job */
        for (int j = 0; j < job->n_models; j++)
            channels = c->models[j]->nodes[0].c > channels ? c->models[j]->nodes[0].c : channels;
        c->cws = chk_ws_create(channels, R, R, &p->checks);
        if (!c->cws)
            rc = SC_ERR_NOMEM;
    }
    run_checks_curves(p, &c->curves);
    c->curve_buf = calloc(c->curves.total + 1, sizeof(double));
    c->emprt_bins = calloc((size_t)p->n_methods + 1, sizeof(int));
    c->emprt_counts = calloc(CX_BINS_MAX > p->emprt_bins ? CX_BINS_MAX : p->emprt_bins, sizeof(long));
    if (!c->emprt_bins || !c->emprt_counts || !c->curve_buf)
        rc = SC_ERR_NOMEM;
    if (!c->mws || !c->x || !c->gray || !c->raw || !c->maps || !c->logits || !c->metrics ||
        !c->sims || !c->map_a || !c->map_b)
        rc = SC_ERR_NOMEM;
    if (all_ok(c->comm, rc) < 0)
        goto done;

    /* 6. the results file */
    {
        const char **vnames = calloc((size_t)p->n_variants, sizeof(char *));
        const char **vkinds = calloc((size_t)p->n_variants, sizeof(char *));
        const char **vbases = calloc((size_t)p->n_variants, sizeof(char *));
        char (*vreinit)[1024] = calloc((size_t)p->n_variants, sizeof *vreinit);
        const char **vreinit_p = calloc((size_t)p->n_variants, sizeof(char *));
        int32_t *vstates = calloc((size_t)p->n_variants, sizeof(int32_t));
        int32_t *vnimg = calloc((size_t)p->n_variants, sizeof(int32_t));
        const char **mnames = calloc((size_t)p->n_methods, sizeof(char *));
        const char *metric_names[PLAN_METRIC_COUNT], *sim_names[PLAN_SIM_COUNT];
        const char **img_ids = calloc((size_t)n_images, sizeof(char *));
        int32_t *pindex = calloc((size_t)p->n_pairs * 4 + 1, sizeof(int32_t));
        int8_t *pexp = calloc((size_t)p->n_pairs + 1, 1);
        char params[4096];
        plan_params_text(p, params, sizeof params);
        for (int v = 0; v < p->n_variants; v++) {
            const plan_variant_t *pv = &p->variants[v];
            vnames[v] = pv->name;
            vkinds[v] = plan_kind_name(pv->kind);
            vbases[v] = job->models[pv->model].name;
            if (pv->n_reinit < 0)
                snprintf(vreinit[v], sizeof vreinit[v], "*");
            for (int b = 0; b < pv->n_reinit; b++)
                snprintf(vreinit[v] + strlen(vreinit[v]), sizeof vreinit[v] - strlen(vreinit[v]),
                         "%s%s", b ? "," : "", pv->reinit[b]);
            vreinit_p[v] = vreinit[v];
            vstates[v] = pv->state;
            vnimg[v] = pv->n_images;
        }
        for (int k = 0; k < p->n_methods; k++)
            mnames[k] = p->methods[k]->name;
        for (int k = 0; k < p->n_metrics; k++)
            metric_names[k] = plan_metric_names[p->metrics[k]];
        for (int k = 0; k < p->n_sims; k++)
            sim_names[k] = plan_sim_names[p->sims[k]];
        for (int i = 0; i < n_images; i++)
            img_ids[i] = ids[i];
        for (int q = 0; q < p->n_pairs; q++) {
            pindex[4 * q] = p->pairs[q].va;
            pindex[4 * q + 1] = p->pairs[q].ia;
            pindex[4 * q + 2] = p->pairs[q].vb;
            pindex[4 * q + 3] = p->pairs[q].ib;
            pexp[q] = p->pairs[q].exp;
        }
        /* /models: each model's explained output (run_outputs.h) */
        const char *mo_names[JOB_MAX_MODELS], *mo_tlabels[JOB_MAX_MODELS];
        const char *mo_heads[JOB_MAX_MODELS], *mo_labels[JOB_MAX_MODELS];
        const char *mo_inputs[JOB_MAX_MODELS], *mo_probs[JOB_MAX_MODELS];
        int32_t mo_targets[JOB_MAX_MODELS];
        for (int j = 0; j < job->n_models; j++) {
            mo_names[j] = job->models[j].name;
            mo_targets[j] = c->outputs[j].target;
            mo_tlabels[j] = c->outputs[j].target_label;
            mo_heads[j] = nn_outputs_head_name(c->outputs[j].head);
            mo_labels[j] = c->outputs[j].labels;
            mo_inputs[j] = c->models[j]->normalize;
            /* the probability deletion, insertion and ROAD read (checks.probability) */
            mo_probs[j] = chk_prob_name(chk_prob_for_model(p->checks.prob, c->models[j]));
        }
        results_layout_t L = {
            .n_images = n_images, .h = R, .w = R, .classes = p->classes, .image_ids = img_ids,
            .labels = labels, .gt = gt, .n_variants = p->n_variants, .variant_names = vnames,
            .variant_kinds = vkinds, .variant_bases = vbases, .variant_reinit = vreinit_p,
            .variant_states = vstates, .variant_n_images = vnimg, .n_methods = p->n_methods,
            .method_names = mnames, .method_params = params, .n_metrics = p->n_metrics,
            .metric_names = metric_names, .n_sims = p->n_sims, .sim_names = sim_names,
            .n_pairs = p->n_pairs, .pair_index = pindex, .pair_experiment = pexp,
            .maps = !strcmp(job->maps, "float16") ? RESULTS_MAPS_F16
                    : !strcmp(job->maps, "none") ? RESULTS_MAPS_NONE : RESULTS_MAPS_F32,
            .job_text = job->text, .job_path = job->path, .seed = job->seed, .ranks = c->size,
            .n_curves = c->curves.n, .curve_names = c->curves.names, .curve_len = c->curves.len,
            .n_models = job->n_models, .model_names = mo_names, .model_targets = mo_targets,
            .model_target_labels = mo_tlabels, .model_heads = mo_heads, .model_labels = mo_labels,
            .model_inputs = mo_inputs, .model_probability = mo_probs};
        if (c->rank != 0)
            sc_log_set_level(SC_LOG_ERROR + 1);
        rc = resume ? results_open(out, c->comm, &L, &c->res) : results_create(out, c->comm, &L, &c->res);
        if (c->rank != 0)
            sc_log_set_level(SC_LOG_INFO);
        free(vnames); free(vkinds); free(vbases); free(vreinit); free(vreinit_p); free(vstates);
        free(vnimg); free(mnames); free(img_ids); free(pindex); free(pexp);
    }
    if (all_ok(c->comm, rc) < 0)
        goto done;
    { /* what the data set left out, with the reason (every rank opened the same set) */
        const char *names[3] = {"dataset_skipped_bad", "dataset_filtered", "dataset_positives_without_box"};
        const long long counts[3] = {dataset_skipped(c->ds), dataset_filtered(c->ds), dataset_unboxed(c->ds)};
        for (int k = 0; k < 3 && rc >= 0; k++)
            rc = results_set_attr_ints(c->res, NULL, names[k], &counts[k], 0);
    }
    if (all_ok(c->comm, rc) < 0)
        goto close;

    /* 7. the map phase */
    done = calloc((size_t)p->n_variants * n_images + 1, 1);
    pair_done = calloc((size_t)p->n_pairs + 1, 1);
    if (!done || !pair_done)
        rc = SC_ERR_NOMEM;
    if (rc >= 0 && resume)
        rc = results_read_done(c->res, done, pair_done);
    if (rc >= 0 && resume) /* corrupt finished cells are reported and computed again */
        rc = run_verify_resumed(c->res, p, done, out, c->comm);
    if (all_ok(c->comm, rc) < 0)
        goto close;
    {
        int block = job->block_images;
        c->done = done;
        /* the lockstep states' workspaces are in the memory budget (run_cascade_budget) */
        int lockstep = job->cascade_reuse && !run_checks_needed(p);
        if (block <= 0) { /* automatic: from the work left and the ranks that compute */
            rc = plan_block_auto(p, done, lockstep, c->root_computes ? c->size : c->size - 1, &block);
            if (all_ok(c->comm, rc) < 0)
                goto close;
        }
        if (lockstep)
            rc = plan_cascade_items(p, done, block, &c->items, &c->n_items);
        else
            rc = plan_items(p, done, block, &c->items, &c->n_items);
        if (all_ok(c->comm, rc) < 0)
            goto close;
        long cells = 0, have = 0;
        for (int v = 0; v < p->n_variants; v++) {
            cells += p->variants[v].n_images;
            for (int i = 0; i < p->variants[v].n_images; i++)
                have += done[(size_t)v * n_images + i];
        }
        if (c->rank == 0) {
            double total = 0;
            for (int q = 0; q < c->n_items; q++)
                total += c->items[q].cost;
            SC_INFO("plan: %d images x %d variants x %d methods = %ld cells (%ld done), %d pairs; "
                    "%d ranks, %d work items of up to %d image%s%s, %.0f gradient evaluations to go",
                    n_images, p->n_variants, p->n_methods, cells, have, p->n_pairs, c->size,
                    c->n_items, block, block > 1 ? "s" : "",
                    job->block_images > 0 ? "" : " (block_images automatic)", total);
        }
        item_cost = calloc((size_t)c->n_items + 1, sizeof(double));
        item_units = calloc((size_t)c->n_items + 1, sizeof(double));
        for (int q = 0; q < c->n_items; q++) {
            item_cost[q] = c->items[q].cost;
            item_units[q] = (double)(c->items[q].i1 - c->items[q].i0) * p->n_methods *
                            (c->items[q].nv > 1 ? c->items[q].nv : 1);
        }
        sched_t s = {"maps", c->n_items, item_cost, 0, run_map_item, progress, "maps", item_units};
        for (int q = 0; q < c->n_items; q++)
            s.total_cost += item_cost[q];
        int r = schedule(c, &s);
        if (r < 0) {
            status = CLI_INTERRUPTED;
            if (c->rank == 0)
                SC_INFO("interrupted: finished cells are in %s; continue with: salcheck run %s "
                        "--out %s --resume", out, job->path, out);
            goto close;
        }
        c->failed_items = r;
        if (r > 0) {
            if (c->rank == 0)
                SC_ERROR("%d work item%s failed (see the errors above); their cells are not done. "
                         "Fix the cause and continue with --resume", r, r > 1 ? "s" : "");
            goto close;
        }
    }
    MPI_Barrier(c->comm);

    /* 8. the pair phase */
    rc = run_checks_emprt_bins(p, c->res, c->rank, c->emprt_bins);
    if (all_ok(c->comm, rc) < 0)
        goto close;
    {
        int block = 64, n_pitems = 0;
        pair_items = calloc((size_t)p->n_pairs / block + 2, sizeof(int) * 2);
        free(item_cost);
        free(item_units);
        item_cost = calloc((size_t)p->n_pairs / block + 2, sizeof(double));
        item_units = calloc((size_t)p->n_pairs / block + 2, sizeof(double));
        /* blocks of the pairs in run_pairs_order's order (pairs sharing a map together) */
        run_pairs_env_t penv = {p, c->res, c->mws, c->emprt_bins, c->emprt_counts,
                                c->skip_engine, &c->t_read, &c->t_compute, &c->t_write};
        int prc = run_pairs_order(p, &c->pair_order);
        if (prc >= 0 && (!pair_items || !item_cost || !item_units))
            prc = SC_ERR_NOMEM;
        if (prc >= 0)
            prc = run_pairs_create(&c->pairs_rp, &penv, block);
        if (all_ok(c->comm, prc) < 0)
            goto close;
        const int *order = c->pair_order;
        for (int q = 0; q < p->n_pairs;) {
            while (q < p->n_pairs && pair_done[order[q]])
                q++;
            if (q >= p->n_pairs)
                break;
            int q1 = q;
            while (q1 < p->n_pairs && q1 - q < block && !pair_done[order[q1]])
                q1++;
            pair_items[2 * n_pitems] = q;
            pair_items[2 * n_pitems + 1] = q1;
            item_cost[n_pitems] = q1 - q;
            item_units[n_pitems] = q1 - q;
            n_pitems++;
            q = q1;
        }
        free(c->items);
        c->items = calloc((size_t)n_pitems + 1, sizeof *c->items);
        for (int q = 0; q < n_pitems; q++)
            c->items[q] = (plan_item_t){-1, pair_items[2 * q], pair_items[2 * q + 1], item_cost[q], 1};
        c->n_items = n_pitems;
        sched_t s = {"pairs", n_pitems, item_cost, 0, NULL, progress, "pairs", item_units};
        for (int q = 0; q < n_pitems; q++)
            s.total_cost += item_cost[q];
        s.fn = run_pairs;
        int r = schedule(c, &s);
        if (r < 0) {
            status = CLI_INTERRUPTED;
            if (c->rank == 0)
                SC_INFO("interrupted during the pair phase; continue with --resume");
            goto close;
        }
        if (r > 0) {
            if (c->rank == 0)
                SC_ERROR("%d pair item%s failed; continue with --resume", r, r > 1 ? "s" : "");
            goto close;
        }
    }
    status = CLI_OK;
    {
        double mine[3] = {c->t_compute, c->t_write, c->t_read}, sum[3];
        MPI_Reduce(mine, sum, 3, MPI_DOUBLE, MPI_SUM, 0, c->comm);
        if (c->rank == 0)
            SC_INFO("time over all ranks: compute %.1f s, results-file writes %.1f s, map "
                    "reads %.1f s", sum[0], sum[1], sum[2]);
    }

close:
    if (c->res) {
        int crc = results_close(c->res);
        c->res = NULL;
        if (crc < 0 && status == CLI_OK)
            status = CLI_FAIL_RANK;
    }
    MPI_Barrier(c->comm);
    if (status == CLI_OK && c->rank == 0) {
        if (aggregate_results(out, stdout) < 0)
            status = CLI_FAIL_ALL;
        else
            SC_INFO("results in %s (salcheck info %s; salcheck report %s --out DIR)", out, out, out);
    }
    MPI_Bcast(&status, 1, MPI_INT, 0, c->comm);
    if (status == CLI_OK)
        goto done;
    if (status == CLI_FAIL_RANK)
        status = CLI_FAIL_ALL;
    if (status != CLI_INTERRUPTED && c->failed_items == 0 && rc >= 0)
        status = CLI_FAIL_ALL;
done:
    free(images);
    free(ids);
    free(labels);
    free(gt);
    free(avgmask);
    free(item_cost);
    free(item_units);
    free(done);
    free(pair_done);
    free(pair_items);
    if (c->plan) {
        c->plan->ds_index = NULL;
        plan_destroy(c->plan);
    }
    dataset_destroy(c->ds);
    ctx_free(c);
    job_destroy(c->job);
    return status;
}

/* Pairs pair_order[i0..i1) of the item, every method (run_pairs.c). */
static int run_pairs(run_ctx_t *c, int item)
{
    const plan_item_t *it = &c->items[item];
    return run_pairs_block(c->pairs_rp, c->pair_order + it->i0, it->i1 - it->i0, it->i0);
}
