/*
 * plan_estimate.c - `salcheck run JOB.ini --plan`: what a job will cost before
 * the allocation is spent (module driver, prefix pe_).
 *
 * The job is validated and planned exactly as `salcheck run` plans it
 * (plan.c), without computing a map. Then this machine's engine is timed for
 * a few seconds on each distinct model of the job: every method of the job on
 * one image (the first evaluated image, or a phantom radiograph when the data
 * set is not there yet), the expensive methods at two reduced parameter
 * settings whose times are extrapolated linearly in gradient evaluations to
 * the job's settings (or, when that comes out under PE_DIRECT_SECONDS, timed
 * at the job's settings); the per-map metrics; the pair similarities; one
 * training step for the models to be trained. From those:
 *   - core-hours of the map phase, the pair phase and the training;
 *   - the wall time on R = nodes x cores ranks, by simulating the root's
 *     dynamic schedule (largest item first, each rank takes the next item
 *     when it is free) over the predicted item times;
 *   - the results file size from its layout (results.c: every dataset is
 *     contiguous and allocated at creation);
 *   - the memory per rank: the peak resident size of the calibration, which
 *     holds every model and workspace a rank holds, plus the plan's arrays;
 *   - a suggested sbatch line.
 * Only rank 0 works; the estimate is for the machine it runs on.
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "io/dataset.h"
#include "io/h5hints.h"
#include "io/image.h"
#include "io/job.h"
#include "io/results.h"
#include "metrics/localization.h"
#include "metrics/metrics.h"
#include "metrics/similarity.h"
#include "metrics/stats.h"
#include "nn/modelfile.h"
#include "nn/zoo.h"
#include "phantom/phantom.h"
#include "plan.h"
#include "nn/op.h"
#include "run_cascade.h"
#include "run_checks.h"
#include "run_outputs.h"
#include "saliency/sal_cascade.h"
#include "saliency/saliency.h"
#include "sc.h"

#define PE_MAX_ASSUME 16
#define PE_MAX_NODE_COUNTS 8
/* The root's time to receive one request and answer it with an item: the
 * bench with cheap items (bench/README.md, "Scale-out") handed out 650-820
 * items/s at 8-32 ranks on 2 shared cores, so at most 1.5 ms each. The
 * schedule cannot hand out items faster than one per this. */
#define PE_ROOT_SECONDS_PER_ITEM 1.5e-3
/* An expensive method whose extrapolated time per image is below this is
 * timed again at the job's own setting, and that time is used: the linear
 * extrapolation from two short timings magnifies their noise (tests/slurm/
 * tiny.ini's IG at 200 steps, extrapolated from 16 and 32, came out between
 * 0.78 and 1.31 s per image in six plans on a loaded machine). */
#define PE_DIRECT_SECONDS 2.0

typedef struct pe_opts {
    const char *job_path;
    int nodes[PE_MAX_NODE_COUNTS]; /* node counts to estimate; the sbatch line is for the first */
    int n_nodes;
    int cores;                 /* ranks per node */
    int images;                /* > 0: evaluated images when the data set is absent */
    struct { char name[64], arch[64]; } assume[PE_MAX_ASSUME];
    int n_assume;
} pe_opts_t;

/* What one model costs, measured. */
typedef struct pe_model {
    char source[96];           /* "file", "recipe democnn", "assumed inceptionv3" */
    int train;                 /* 1: a recipe whose model file is missing */
    double t_method[JOB_MAX_LIST]; /* seconds per image, each method, post-processing and metrics included */
    double t_target;           /* the forward pass that picks the explained class */
    double t_train_image;      /* one training image: forward and backward with parameter gradients */
    double t_grad;             /* marginal seconds per gradient evaluation (batched) */
    size_t n_params;
    int same_as;               /* index of an earlier model with the same graph, or -1 */
} pe_model_t;

static void pe_usage(FILE *out)
{
    fprintf(out,
            "usage: salcheck run JOB.ini --plan [--nodes N] [--cores-per-node C] [--images N]\n"
            "                                   [--assume MODEL=ARCH ...]\n\n"
            "Validates the job, prints its plan (variants, images, cells, pairs), its cost in\n"
            "gradient evaluations, a core-hour estimate measured by timing this machine's engine\n"
            "for a few seconds, the results file size, the memory per rank and a suggested sbatch\n"
            "line for N nodes of C cores. Nothing is computed or written.\n\n"
            "  --nodes N[,N...]     nodes of the allocation (default 1); several counts print the\n"
            "                       wall time and parallel efficiency of each\n"
            "  --cores-per-node C   ranks per node (default: this machine's cores)\n"
            "  --images N           evaluated images when the data set is not there yet\n"
            "  --assume MODEL=ARCH  time the zoo architecture ARCH for a model whose file is not\n"
            "                       there yet (MODEL may be * for every such model)\n");
}

static int pe_parse(int argc, char **argv, pe_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->nodes[0] = 1;
    o->n_nodes = 1;
    o->cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (o->cores < 1)
        o->cores = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--plan"))
            continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            pe_usage(stdout);
            return 1;
        } else if (!strcmp(a, "--nodes") && i + 1 < argc) {
            char *p = argv[++i], *end;
            o->n_nodes = 0;
            while (*p && o->n_nodes < PE_MAX_NODE_COUNTS) {
                long n = strtol(p, &end, 10);
                if (end == p || n < 1 || n > 1000000 || (*end && *end != ',')) {
                    fprintf(stderr, "salcheck run --plan: --nodes takes N or N,N,... (got '%s')\n", argv[i]);
                    return -1;
                }
                o->nodes[o->n_nodes++] = (int)n;
                p = *end ? end + 1 : end;
            }
        } else if (!strcmp(a, "--cores-per-node") && i + 1 < argc) {
            o->cores = atoi(argv[++i]);
        } else if (!strcmp(a, "--images") && i + 1 < argc) {
            o->images = atoi(argv[++i]);
        } else if (!strcmp(a, "--assume") && i + 1 < argc) {
            const char *eq = strchr(argv[++i], '=');
            if (!eq || eq == argv[i] || !eq[1] || o->n_assume >= PE_MAX_ASSUME) {
                fprintf(stderr, "salcheck run --plan: --assume takes MODEL=ARCH (got '%s')\n", argv[i]);
                return -1;
            }
            snprintf(o->assume[o->n_assume].name, sizeof o->assume[0].name, "%.*s",
                     (int)(eq - argv[i]), argv[i]);
            snprintf(o->assume[o->n_assume].arch, sizeof o->assume[0].arch, "%s", eq + 1);
            o->n_assume++;
        } else if (!strcmp(a, "--out") && i + 1 < argc) {
            i++; /* accepted for symmetry with run; nothing is written */
        } else if (a[0] == '-' || o->job_path) {
            fprintf(stderr, "salcheck run --plan: unexpected argument '%s'\n\n", a);
            pe_usage(stderr);
            return -1;
        } else {
            o->job_path = a;
        }
    }
    if (!o->job_path || o->n_nodes < 1 || o->cores < 1) {
        pe_usage(stderr);
        return -1;
    }
    return 0;
}

static int pe_file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static const char *pe_assumed_arch(const pe_opts_t *o, const char *model)
{
    for (int k = 0; k < o->n_assume; k++)
        if (!strcmp(o->assume[k].name, model))
            return o->assume[k].arch;
    for (int k = 0; k < o->n_assume; k++)
        if (!strcmp(o->assume[k].name, "*"))
            return o->assume[k].arch;
    return NULL;
}

/* CPU seconds of this process. Calibration times are CPU times, so that other
 * load on the machine does not inflate them: core-hours are CPU-hours of
 * cores given to the job alone. */
static double pe_cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Peak resident set size of this process, bytes. */
static double pe_peak_rss(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0;
}

/* Median of three timings of sal_compute + post-processing + metrics for
 * method `meth` with parameters `sp` (one run when it takes over a second). */
static double pe_time_method(const sal_method_t *meth, const sal_params_t *sp, nn_model_t *m,
                             sal_ws_t *ws, const float *x, const float *gray, int target,
                             float *raw, float *map, metrics_ws_t *mws, const uint8_t *gt,
                             int n_metric_calls)
{
    double t[3];
    int n = 0;
    loc_opts_t lopts;
    loc_opts_default(&lopts);
    for (; n < 3; n++) {
        double t0 = pe_cpu_now();
        sal_key_t key = {1, 0, (uint32_t)n};
        int r = sal_compute(meth, sp, m, ws, x, target, gray, key, raw);
        if (r == 0)
            r = sal_postprocess(meth, ws, raw, map);
        if (r == 0 && n_metric_calls > 0) {
            loc_result_t lr;
            loc_all(mws, map, gt, &lopts, &lr);
        }
        t[n] = pe_cpu_now() - t0;
        if (t[n] > 1.0) {
            n++;
            break;
        }
    }
    if (n < 3)
        return t[0];
    double lo = fmin(t[0], fmin(t[1], t[2])), hi = fmax(t[0], fmax(t[1], t[2]));
    return t[0] + t[1] + t[2] - lo - hi;
}

/* Parameters of `meth` reduced to about `evals` gradient evaluations (the
 * knob that scales its cost), for the linear extrapolation. */
static sal_params_t pe_reduced(const sal_method_t *meth, const sal_params_t *full, int evals,
                               int size)
{
    sal_params_t sp = *full;
    const char *n = meth->name;
    if (!strcmp(n, "sg"))
        sp.sg_samples = evals;
    else if (!strcmp(n, "ig"))
        sp.ig_steps = evals;
    else if (!strcmp(n, "sig")) /* rounded up: batch and 2 x batch give two settings */
        sp.sig_samples = (evals + full->ig_steps - 1) / (full->ig_steps > 0 ? full->ig_steps : 1);
    else if (!strcmp(n, "xrai"))
        sp.xrai_steps = evals / 2 > 1 ? evals / 2 : 2;
    else if (!strcmp(n, "occlusion")) {
        /* a stride giving about 2*evals windows */
        int per_side = (int)ceil(sqrt(2.0 * evals));
        sp.occ_stride = (size - sp.occ_window) / (per_side > 1 ? per_side - 1 : 1);
        if (sp.occ_stride < 1)
            sp.occ_stride = 1;
    }
    return sp;
}

/* The model of job model j for timing: its file, its recipe's zoo
 * architecture, or the assumed one. Caller owns *out. */
static int pe_model_for(const job_t *job, int j, const pe_opts_t *o, nn_model_t **out,
                        pe_model_t *pm)
{
    const job_model_t *md = &job->models[j];
    *out = NULL;
    if (pe_file_exists(md->file)) {
        snprintf(pm->source, sizeof pm->source, "%s", md->file);
        return modelfile_load(md->file, out);
    }
    const char *arch = md->train ? md->arch : pe_assumed_arch(o, md->name);
    if (!arch) {
        SC_ERROR("%s:%d: model '%s': file '%s' does not exist; give its architecture for the "
                 "estimate with --assume %s=ARCH (zoo: democnn, demoresnet, resnet18, resnet50, "
                 "densenet121, inceptionv3)", job->path, md->line, md->name, md->file, md->name);
        return SC_ERR_ARG;
    }
    pm->train = md->train;
    snprintf(pm->source, sizeof pm->source, "%s %s%s", md->train ? "recipe" : "assumed", arch,
             md->train ? " (to be trained)" : "");
    int size = md->size ? md->size : job->size;
    int rc = zoo_build(arch, size, 2, md->seed ? md->seed : 1, out);
    if (rc < 0)
        SC_ERROR("%s:%d: model '%s': unknown architecture '%s'", job->path, md->line, md->name, arch);
    return rc;
}

/* One normalized input [3,R,R] and its gray image: the first evaluated image
 * of the data set, else a phantom radiograph rendered in memory. */
static int pe_input(dataset_t *ds, int ds_index, int size, const char *norm, int channels,
                    float *x, float *gray)
{
    image_norm_t nm = IMAGE_NORM_INCEPTION;
    if (image_norm_resolve(norm, channels, &nm) < 0)
        return SC_ERR_ARG;
    if (ds) {
        char path[2048];
        int rc = dataset_image_path(ds, ds_index, path, sizeof path);
        image_loader_t *ld = image_loader_create(size, IMAGE_RESIZE_AREA, nm);
        if (rc >= 0 && ld)
            rc = image_loader_load(ld, path, x, gray);
        image_loader_destroy(ld);
        return ld ? rc : SC_ERR_NOMEM;
    }
    phantom_config_t cfg;
    phantom_config_default(&cfg);
    cfg.size = size < 32 ? 32 : size;
    phantom_t *ph = phantom_create(&cfg);
    uint8_t *img = malloc((size_t)cfg.size * cfg.size);
    float *f = malloc(sizeof(float) * cfg.size * cfg.size);
    int rc = ph && img && f ? 0 : SC_ERR_NOMEM;
    phantom_info_t info;
    /* the first positive image: opacities as in the evaluated images */
    for (uint32_t k = 0; rc == 0 && k < 64; k++)
        if (phantom_label(&cfg, k) == 1) {
            rc = phantom_render(ph, k, img, &info, NULL, NULL);
            break;
        }
    if (rc == 0) {
        for (int q = 0; q < cfg.size * cfg.size; q++)
            f[q] = img[q];
        rc = image_resize(f, cfg.size, cfg.size, gray, size, size, IMAGE_RESIZE_AREA);
    }
    if (rc == 0)
        image_normalize_3ch(gray, size * size, nm, x);
    if (rc == 0)
        for (int q = 0; q < size * size; q++)
            gray[q] /= 255.0f;
    phantom_destroy(ph);
    free(img);
    free(f);
    return rc;
}

/* Time the job's methods on model m with its workspace ws (pm receives the
 * numbers). touch_only: run every method once at a reduced setting, so that
 * the workspace's memory is resident as in a run, and time nothing. */
static int pe_calibrate(const plan_t *p, nn_model_t *m, sal_ws_t *ws, int batch, dataset_t *ds,
                        pe_model_t *pm, int touch_only)
{
    const int R = p->size;
    const size_t hw = (size_t)R * R;
    int rc = 0;
    metrics_ws_t *mws = metrics_ws_create(R, R);
    float *x = malloc(sizeof(float) * 3 * hw), *gray = malloc(sizeof(float) * hw);
    float *raw = malloc(sizeof(float) * 3 * hw), *map = malloc(sizeof(float) * hw);
    float *logits = calloc(16, sizeof(float));
    CHECK(mws && x && gray && raw && map && logits, SC_ERR_NOMEM, "out of memory");
    CHECK_RC(pe_input(ds, ds ? p->ds_index[0] : 0, R, m->normalize, m->nodes[0].c, x, gray));
    int target = 0;
    double t0 = pe_cpu_now();
    CHECK_RC(sal_target(ws, x, SAL_TARGET_PREDICTED, &target, logits));
    pm->t_target = pe_cpu_now() - t0;
    pm->n_params = m->n_params;
    const uint8_t *gt = p->gt; /* image 0's mask */
    if (touch_only) {
        for (int k = 0; k < p->n_methods; k++) {
            const sal_method_t *meth = p->methods[k];
            sal_params_t sp = sal_cost(meth, &p->params, R, R) <= 2.0 * batch
                                  ? p->params : pe_reduced(meth, &p->params, batch, R);
            sal_key_t key = {1, 0, 0};
            if (sal_compute(meth, &sp, m, ws, x, target, gray, key, raw) == 0)
                sal_postprocess(meth, ws, raw, map);
        }
        goto cleanup;
    }

    /* marginal seconds per gradient evaluation: IG at batch and 2 x batch steps, after one
     * untimed pass (the workspace's first touch, page faults of gigabytes for large models,
     * would otherwise count in the first timing only and flatten the slope) */
    const sal_method_t *ig = sal_method_find("ig");
    sal_params_t a = p->params, b = p->params;
    a.ig_steps = batch;
    b.ig_steps = 2 * batch;
    {
        sal_key_t key = {1, 0, 0};
        if (sal_compute(ig, &b, m, ws, x, target, gray, key, raw) == 0)
            sal_postprocess(ig, ws, raw, map);
    }
    double ta = pe_time_method(ig, &a, m, ws, x, gray, target, raw, map, mws, gt, 0);
    double tb = pe_time_method(ig, &b, m, ws, x, gray, target, raw, map, mws, gt, 0);
    /* timing noise can make tb <= ta: then the mean cost of an evaluation */
    pm->t_grad = tb > ta ? (tb - ta) / batch : tb / (2.0 * batch);

    for (int k = 0; k < p->n_methods; k++) {
        const sal_method_t *meth = p->methods[k];
        double cost = sal_cost(meth, &p->params, R, R);
        if (cost <= 2.0 * batch) {
            pm->t_method[k] = pe_time_method(meth, &p->params, m, ws, x, gray, target, raw, map,
                                             mws, gt, 1);
            continue;
        }
        /* two reduced settings, then linear in gradient evaluations */
        sal_params_t s1 = pe_reduced(meth, &p->params, batch, R);
        sal_params_t s2 = pe_reduced(meth, &p->params, 2 * batch, R);
        double c1 = sal_cost(meth, &s1, R, R), c2 = sal_cost(meth, &s2, R, R);
        double t1 = pe_time_method(meth, &s1, m, ws, x, gray, target, raw, map, mws, gt, 1);
        double t2 = pe_time_method(meth, &s2, m, ws, x, gray, target, raw, map, mws, gt, 1);
        double slope = c2 > c1 ? (t2 - t1) / (c2 - c1) : 0.0;
        if (!(slope > 0)) /* noise: the larger setting's mean cost per evaluation */
            slope = c2 > 0 ? t2 / c2 : pm->t_grad;
        pm->t_method[k] = t2 + slope * (cost - c2);
        if (pm->t_method[k] < PE_DIRECT_SECONDS) /* cheap enough to time as the job runs it */
            pm->t_method[k] = pe_time_method(meth, &p->params, m, ws, x, gray, target, raw, map,
                                             mws, gt, 1);
    }

    /* training: one step of `batch` images with parameter gradients */
    if (pm->train) {
        float *xb = malloc(sizeof(float) * 3 * hw * batch);
        int *tg = calloc((size_t)batch, sizeof(int));
        CHECK(xb && tg, SC_ERR_NOMEM, "out of memory");
        for (int q = 0; q < batch; q++)
            memcpy(xb + (size_t)q * 3 * hw, x, sizeof(float) * 3 * hw);
        nn_backward_opts_t bo = {.param_grads = 1, .training = 1};
        double best = INFINITY;
        /* parameter gradients need the training plan's activations */
        rc = nn_model_set_plan(m, NN_PLAN_TRAIN);
        for (int rep = 0; rep < 2 && rc >= 0; rep++) {
            double s0 = pe_cpu_now();
            rc = nn_forward(m, xb, batch, 1);
            if (rc >= 0)
                rc = nn_backward_logit(m, tg, NULL, &bo);
            best = fmin(best, pe_cpu_now() - s0);
        }
        pm->t_train_image = best / batch;
        free(xb);
        free(tg);
        if (rc >= 0)
            rc = nn_model_set_plan(m, NN_PLAN_INFER);
    }
cleanup:
    metrics_ws_destroy(mws);
    free(x);
    free(gray);
    free(raw);
    free(map);
    free(logits);
    return rc;
}

/* Seconds of the job's similarities for one pair and one method. */
static double pe_time_pair(const plan_t *p)
{
    const int R = p->size;
    const size_t hw = (size_t)R * R;
    metrics_ws_t *mws = metrics_ws_create(R, R);
    float *a = malloc(sizeof(float) * hw), *b = malloc(sizeof(float) * hw);
    double best = 0.0;
    if (mws && a && b) {
        for (size_t q = 0; q < hw; q++) {
            a[q] = (float)((q * 2654435761u) % 1000) / 1000.0f;
            b[q] = (float)(((q + 17) * 40503u) % 1000) / 1000.0f;
        }
        sim_ssim_opts_t paper, l1, gauss;
        sim_ssim_opts_pairs(&paper, &l1, &gauss);
        best = INFINITY;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = pe_cpu_now(), v;
            for (int s = 0; s < p->n_sims; s++) {
                switch (p->sims[s]) {
                case 0: sim_ssim(mws, a, b, &paper, &v); break;
                case 1: sim_ssim(mws, a, b, &l1, &v); break;
                case 2: sim_ssim(mws, a, b, &gauss, &v); break;
                case 3: sim_spearman(mws, a, b, 0, &v); break;
                case 4: sim_spearman(mws, a, b, 1, &v); break;
                case 5: sim_pearson(mws, a, b, &v); break;
                case 6: sim_hog(mws, a, b, &v); break;
                default: break;
                }
            }
            best = fmin(best, pe_cpu_now() - t0);
        }
    }
    metrics_ws_destroy(mws);
    free(a);
    free(b);
    return best;
}

/* CPU seconds of the root's summary (aggregate.c): a mean, quartiles and a
 * 1,000-resample bootstrap CI per (metric, method, variant) over the images and
 * per (similarity, method, pair group) over the group's pairs. One summary of
 * each size is timed and multiplied by the number of groups of that size. */
static double pe_time_summary(const plan_t *p)
{
    int *group_of = calloc((size_t)p->n_pairs + 1, sizeof(int));
    int (*groups)[4] = calloc((size_t)p->n_pairs + 1, sizeof *groups); /* exp, va, vb, count */
    int n_groups = 0, nmax = p->n_images;
    for (int q = 0; groups && q < p->n_pairs; q++) {
        const plan_pair_t *pp = &p->pairs[q];
        int vb = pp->exp == RESULTS_EXP_CASCADING || pp->exp == RESULTS_EXP_INDEPENDENT ||
                         pp->exp == RESULTS_EXP_UNTRAINED || pp->exp == RESULTS_EXP_BASELINE
                     ? -1 : pp->vb;
        int g = -1;
        for (int u = 0; u < n_groups && g < 0; u++)
            if (groups[u][0] == pp->exp && groups[u][1] == pp->va && groups[u][2] == vb)
                g = u;
        if (g < 0) {
            g = n_groups++;
            groups[g][0] = pp->exp;
            groups[g][1] = pp->va;
            groups[g][2] = vb;
        }
        groups[g][3]++;
        nmax = groups[g][3] > nmax ? groups[g][3] : nmax;
    }
    stats_ws_t *sws = stats_ws_create((size_t)nmax + 1, 1000);
    double *x = calloc((size_t)nmax + 1, sizeof(double)), total = 0.0;
    if (sws && x && groups) {
        for (int i = 0; i <= nmax; i++)
            x[i] = 0.5 + 0.25 * sin(1.7 * i);
        /* the cells: every variant's images, each (metric, method) */
        for (int v = 0; v < p->n_variants; v++) {
            double t0 = pe_cpu_now(), lo, hi;
            stats_summary_t st;
            stats_summary(sws, x, (size_t)p->variants[v].n_images, &st);
            stats_bootstrap_ci(sws, x, (size_t)p->variants[v].n_images, 1, 0, 0, 0, 0.95, &lo, &hi);
            total += (pe_cpu_now() - t0) * p->n_metrics * p->n_methods;
        }
        for (int g = 0; g < n_groups; g++) {
            double t0 = pe_cpu_now(), lo, hi;
            stats_summary_t st;
            stats_summary(sws, x, (size_t)groups[g][3], &st);
            stats_bootstrap_ci(sws, x, (size_t)groups[g][3], 1, 0, 0, 0, 0.95, &lo, &hi);
            total += (pe_cpu_now() - t0) * p->n_sims * p->n_methods;
        }
    }
    stats_ws_destroy(sws);
    free(x);
    free(groups);
    free(group_of);
    return total;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Wall time of n items on `ranks` ranks under the root's dynamic schedule:
 * the largest item first, each rank takes the next item when it is free. */
static double pe_simulate(double *t_item, int n, int ranks)
{
    if (ranks > 1 << 20)
        return NAN;
    qsort(t_item, (size_t)n, sizeof(double), cmp_desc);
    double *busy = calloc((size_t)ranks, sizeof(double)), wall = 0.0;
    if (!busy)
        return NAN;
    for (int q = 0; q < n; q++) {
        int best = 0;
        for (int r = 1; r < ranks; r++)
            if (busy[r] < busy[best])
                best = r;
        busy[best] += t_item[q];
    }
    for (int r = 0; r < ranks; r++)
        wall = fmax(wall, busy[r]);
    free(busy);
    /* the root answers one request at a time */
    return fmax(wall, n * PE_ROOT_SECONDS_PER_ITEM);
}

static void pe_bytes(double b, char *buf, size_t len)
{
    const char *u[] = {"B", "KB", "MB", "GB", "TB"};
    int k = 0;
    while (b >= 1000.0 && k < 4) {
        b /= 1000.0;
        k++;
    }
    snprintf(buf, len, k ? "%.1f %s" : "%.0f %s", b, u[k]);
}

static void pe_hms(double s, char *buf, size_t len)
{
    long t = (long)ceil(s);
    snprintf(buf, len, "%02ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

/* Seconds of one work item: its cells' forward pass and every method; a
 * randomization group item (nv > 1) holds nv variants, whose methods cost
 * reuse[v] of the variant alone. */
static double t_item_cell(const pe_model_t *pm, const plan_t *plan, const double *reuse,
                          const plan_item_t *it)
{
    double cell = 0.0;
    for (int v = it->v; v < it->v + (it->nv > 1 ? it->nv : 1); v++) {
        const pe_model_t *mm = &pm[plan->variants[v].model];
        double methods = 0.0;
        for (int k = 0; k < plan->n_methods; k++)
            methods += mm->t_method[k];
        cell += mm->t_target + methods * reuse[v];
    }
    return cell * (it->i1 - it->i0);
}

/* The share of its engine work that each variant's maps cost when the run
 * computes a randomization's states in lockstep (plan_cascade.c,
 * workers/saliency/sal_cascade.h): the first state of a group computes every
 * layer; each other state reruns the forward pass only from its first
 * re-initialized node, and the whole backward. By forward FLOPs F and the
 * FLOPs U above that node, with the backward counted as one forward:
 * (U + F) / (2 F), the model of bench/bench_cascade.c (bench/README.md,
 * "Cascading randomization": 0.68 by FLOPs against 0.71 measured for the
 * paper's InceptionV3 cascade). 1 for every variant outside a group, and
 * for all of them when the run does not use lockstep. reuse[V] is the
 * caller's. */
static void pe_cascade_reuse(const plan_t *p, nn_model_t *const *models, int lockstep,
                             double *reuse)
{
    for (int v = 0; v < p->n_variants; v++)
        reuse[v] = 1.0;
    for (int v = 0; lockstep && v < p->n_variants; v++) {
        const int nv = plan_cascade_group(p, v);
        for (int s = 1; s < nv; s++) { /* the group's first state computes everything */
            const plan_variant_t *pv = &p->variants[v + s];
            const nn_model_t *m = models[pv->model];
            int first = m->n_nodes;
            for (int i = 1; i < m->n_nodes && first == m->n_nodes; i++)
                for (int b = 0; b < pv->n_reinit; b++)
                    if (!strcmp(m->nodes[i].block, pv->reinit[b])) {
                        first = i;
                        break;
                    }
            double total = 0.0, upper = 0.0;
            for (int i = 1; i < m->n_nodes; i++) {
                const nn_op_def_t *def = nn_op_def(m->nodes[i].op);
                double f = def->flops ? def->flops(m, &m->nodes[i]) : 0.0;
                total += f;
                upper += i >= first ? f : 0.0;
            }
            if (total > 0.0)
                reuse[v + s] = (upper + total) / (2.0 * total);
        }
        if (nv > 1)
            v += nv - 1;
    }
}

/* The costs that do not depend on the rank count, seconds. */
typedef struct pe_fixed {
    double setup, train, maps, pairs, summary;
} pe_fixed_t;

/* The work items' times for one number of images per item. */
typedef struct pe_items {
    int block, n;
    double *t;
} pe_items_t;

/* The times of the work items the run makes with `block` images per item
 * (lockstep: a randomization's states together). out->t is the caller's to free. */
static int pe_item_times(const plan_t *plan, const pe_model_t *pm, const double *reuse,
                         int lockstep, int block, pe_items_t *out)
{
    plan_item_t *items = NULL;
    int n = 0;
    int rc = lockstep ? plan_cascade_items(plan, NULL, block, &items, &n)
                      : plan_items(plan, NULL, block, &items, &n);
    if (rc < 0)
        return rc;
    double *t = calloc((size_t)n + 1, sizeof(double));
    if (!t) {
        free(items);
        return SC_ERR_NOMEM;
    }
    for (int q = 0; q < n; q++)
        t[q] = t_item_cell(pm, plan, reuse, &items[q]);
    free(items);
    *out = (pe_items_t){block, n, t};
    return 0;
}

/* One row per node count: wall time, work, allocation, efficiency, images per
 * item. sets[0..n_sets): the item times for each block size the run may
 * choose, largest block first; with more than one (block_images automatic),
 * each row takes the block salcheck run would choose for its workers
 * (plan_block_fits). Sorts the item times. Returns the first row's wall time. */
static double pe_table(const pe_opts_t *o, pe_items_t *sets, int n_sets, double *t_pitem,
                       int n_pitems, const pe_fixed_t *f)
{
    char twall[32];
    double first_wall = 0.0;
    printf("| nodes | ranks | wall time | maps phase | pairs phase | work core-h | allocation "
           "core-h | efficiency | images per item |\n|---|---|---|---|---|---|---|---|---|\n");
    for (int c = 0; c < o->n_nodes; c++) {
        const int ranks = o->nodes[c] * o->cores;
        /* above PLAN_ROOT_COMPUTES_MAX_RANKS the root only hands out items */
        const int workers = ranks > PLAN_ROOT_COMPUTES_MAX_RANKS ? ranks - 1 : ranks;
        int k = 0;
        while (k + 1 < n_sets) {
            double max = 0.0, total = 0.0;
            for (int q = 0; q < sets[k].n; q++) {
                total += sets[k].t[q];
                max = sets[k].t[q] > max ? sets[k].t[q] : max;
            }
            if (plan_block_fits(max, total, workers))
                break;
            k++;
        }
        double wall_maps = pe_simulate(sets[k].t, sets[k].n, workers);
        double wall_pairs = pe_simulate(t_pitem, n_pitems, workers);
        /* every rank starts up, the phases run in parallel, the other ranks
         * wait while the root writes the summary */
        double wall = f->setup + f->train / ranks + wall_maps + wall_pairs + f->summary;
        double work_s = f->setup * ranks + f->train + f->maps + f->pairs + f->summary;
        double alloc_s = wall * ranks;
        if (c == 0)
            first_wall = wall;
        pe_hms(wall, twall, sizeof twall);
        printf("| %d | %d | %s | %.0f s | %.0f s | %.4g | %.4g | %.0f%% | %d%s |\n", o->nodes[c],
               ranks, twall, wall_maps, wall_pairs, work_s / 3600, alloc_s / 3600,
               100.0 * work_s / alloc_s, sets[k].block, n_sets > 1 ? " (automatic)" : "");
    }
    return first_wall;
}

/* Bytes of the results file (results.c's layout; metadata estimated). */
static double pe_file_size(const plan_t *p, const job_t *job)
{
    const double V = p->n_variants, N = p->n_images, M = p->n_methods, P = p->n_pairs;
    const double hw = (double)p->size * p->size;
    double map_bytes = !strcmp(job->maps, "none") ? 0 : !strcmp(job->maps, "float16") ? 2 : 4;
    double cells = V * N * (M * hw * map_bytes + p->n_metrics * M * 8.0 + p->classes * 4.0 + 4 +
                            1 + 1 + 8 + 4);
    double pairs = P * (16.0 + 1 + p->n_sims * M * 8.0 + 1);
    double images = N * (hw + 1 + 64);
    double datasets = 16 + M + p->n_metrics + p->n_sims;
    /* objects above the alignment threshold start on an alignment boundary
     * (io/h5hints.h): on average half an alignment of padding each */
    unsigned long long threshold, alignment;
    if (h5hints_parse_align(getenv("SALCHECK_H5_ALIGN"), &threshold, &alignment) < 0)
        h5hints_parse_align(NULL, &threshold, &alignment);
    double map_ds = V * N * hw * map_bytes, metric_ds = M * V * N * 8.0, padding = 0.0;
    if (alignment > 1) {
        padding += map_ds >= threshold ? M * alignment / 2.0 : 0.0;
        padding += metric_ds >= threshold ? p->n_metrics * alignment / 2.0 : 0.0;
    }
    return cells + pairs + images + datasets * 2048.0 + strlen(job->text) + 64e3 + padding;
}

static int pe_run(const pe_opts_t *o)
{
    int rc = 0;
    job_t *job = NULL;
    dataset_t *ds = NULL;
    plan_t *plan = NULL;
    nn_model_t *models[JOB_MAX_MODELS] = {0};
    sal_ws_t *ws[JOB_MAX_MODELS] = {0};
    pe_model_t pm[JOB_MAX_MODELS];
    int *images = NULL, n_images = 0, n_train_images = 0, n_val_images = 0;
    char (*ids)[64] = NULL;
    int8_t *labels = NULL;
    uint8_t *gt = NULL;
    float *avgmask = NULL;
    run_output_t *outs = NULL; /* [JOB_MAX_MODELS] the explained output of each model file */
    plan_item_t *items = NULL;
    int n_items = 0;
    double *t_item = NULL;
    double *reuse = NULL;      /* [V] share of a variant's method time in lockstep */
    memset(pm, 0, sizeof pm);

    const double t_setup0 = pe_cpu_now();
    double t_setup = 0.0;
    CHECK_RC(job_load(o->job_path, 0, &job));
    const int R = job->size;
    const size_t hw = (size_t)R * R;
    char data_note[256] = "";

    /* images: the data set when it is there, else what can be known without it */
    struct stat sb;
    int have_data = stat(job->data_dir, &sb) == 0 && S_ISDIR(sb.st_mode);
    if (!strcmp(job->data_kind, "phantom")) {
        char labels_csv[JOB_PATH_MAX + 16];
        snprintf(labels_csv, sizeof labels_csv, "%s/labels.csv", job->data_dir);
        have_data = pe_file_exists(labels_csv);
    }
    if (have_data) {
        dataset_options_t dopt;
        plan_dataset_options(job, &dopt);
        CHECK_RC(dataset_open(job->data_dir, &dopt, &ds));
        CHECK_RC(plan_select_images(job, ds, &images, &n_images));
        for (int i = 0; i < dataset_count(ds); i++) {
            n_train_images += dataset_split(ds, i) == DATASET_SPLIT_TRAIN;
            n_val_images += dataset_split(ds, i) == DATASET_SPLIT_VAL;
        }
        snprintf(data_note, sizeof data_note, "data set %s (%d entries)", job->data_dir,
                 dataset_count(ds));
    } else if (!strcmp(job->data_kind, "phantom")) {
        /* the generator's labels and splits are known without rendering */
        phantom_config_t cfg;
        phantom_config_default(&cfg);
        cfg.size = job->phantom_size;
        cfg.seed = (uint64_t)job->phantom_seed;
        cfg.positive_fraction = job->phantom_positive_fraction;
        for (int i = 0; i < job->phantom_count; i++) {
            int sp = phantom_split(&cfg, (uint32_t)i);
            n_images += sp == 2 && phantom_label(&cfg, (uint32_t)i) == 1;
            n_train_images += sp == 0;
            n_val_images += sp == 1;
        }
        if (!strcmp(job->images, "sample") && job->sample < n_images)
            n_images = job->sample;
        if (job->max_images > 0 && n_images > job->max_images)
            n_images = job->max_images;
        snprintf(data_note, sizeof data_note,
                 "phantom data set not generated yet: %d images counted from the generator",
                 job->phantom_count);
    } else if (o->images > 0) {
        n_images = job->max_images > 0 && o->images > job->max_images ? job->max_images : o->images;
        snprintf(data_note, sizeof data_note, "data set '%s' not there: %d images assumed (--images)",
                 job->data_dir, n_images);
    } else {
        SC_ERROR("%s: [data] dir '%s' does not exist; give the number of evaluated images with "
                 "--images N for the estimate", job->path, job->data_dir);
        rc = SC_ERR_ARG;
        goto cleanup;
    }
    if (o->images > 0 && have_data)
        SC_WARN("--images ignored: the data set is there");
    CHECK(n_images > 0, SC_ERR_FORMAT, "%s: no image to evaluate", job->path);
    if (!images) {
        images = calloc((size_t)n_images, sizeof(int));
        CHECK_ALLOC(images);
    }
    ids = calloc((size_t)n_images, sizeof *ids);
    labels = calloc((size_t)n_images, 1);
    gt = calloc((size_t)n_images * hw, 1);
    avgmask = calloc(hw, sizeof(float));
    CHECK(ids && labels && gt && avgmask, SC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_images; i++) {
        labels[i] = 1;
        if (ds)
            CHECK_RC(dataset_mask(ds, images[i], R, gt + (size_t)i * hw));
    }
    if (!ds) /* a central box, so that every metric is defined */
        for (int y = R / 3; y < 2 * R / 3; y++)
            for (int xx = R / 4; xx < R / 2; xx++)
                gt[(size_t)y * R + xx] = 1;
    if (ds) { /* the average training mask, as a run computes it */
        uint8_t *mask = malloc(hw);
        double *acc = calloc(hw, sizeof(double));
        int n_pos = 0;
        CHECK(mask && acc, SC_ERR_NOMEM, "out of memory");
        for (int i = 0; i < dataset_count(ds); i++) {
            if (dataset_label(ds, i) != 1 || dataset_split(ds, i) != DATASET_SPLIT_TRAIN)
                continue;
            if (dataset_mask(ds, i, R, mask) >= 0)
                for (size_t q = 0; q < hw; q++)
                    acc[q] += mask[q];
            n_pos++;
        }
        for (size_t q = 0; q < hw; q++)
            avgmask[q] = n_pos ? (float)(acc[q] / n_pos) : 0.0f;
        free(mask);
        free(acc);
    } else {
        for (size_t q = 0; q < hw; q++)
            avgmask[q] = gt[q] * 0.5f;
    }

    /* models (built, loaded or assumed) and the plan */
    int known[JOB_MAX_MODELS] = {0};
    outs = calloc(JOB_MAX_MODELS, sizeof *outs);
    CHECK_ALLOC(outs);
    for (int j = 0; j < job->n_models; j++) {
        pm[j].same_as = -1;
        CHECK_RC(pe_model_for(job, j, o, &models[j], &pm[j]));
        if (!strcmp(pm[j].source, job->models[j].file)) { /* a model file: its target, labels
                                                            * and input convention */
            CHECK_RC(run_outputs_apply(job, j, models[j], &outs[j]));
            known[j] = 1;
        }
    }
    CHECK_RC(run_outputs_check_pairs(job, outs, known)); /* pairs compare one output */
    CHECK_RC(plan_build(job, models, n_images, images, ids, labels, gt, avgmask, R, &plan));
    if (!strcmp(job->maps, "none") && plan->n_pairs > 0) {
        SC_ERROR("%s: maps = none, but the experiments compare maps: use maps = float16",
                 job->path);
        rc = SC_ERR_FORMAT;
        goto cleanup;
    }
    /* block_images 0: salcheck run chooses the block for its rank count (plan_block_auto) */
    const int auto_block = job->block_images <= 0;
    int block = auto_block ? PLAN_BLOCK_DEFAULT : job->block_images;
    /* the work items the run makes: a randomization's states in one item when it runs
     * them in lockstep (cmd_run.c's condition) */
    const int lockstep = job->cascade_reuse && !run_checks_needed(plan);
    reuse = malloc(sizeof(double) * (size_t)plan->n_variants);
    CHECK_ALLOC(reuse);
    pe_cascade_reuse(plan, models, lockstep, reuse);
    if (lockstep)
        CHECK_RC(plan_cascade_items(plan, NULL, block, &items, &n_items));
    else
        CHECK_RC(plan_items(plan, NULL, block, &items, &n_items));
    /* a rank's start-up: the job, the data set, the masks, the models, the plan */
    t_setup = pe_cpu_now() - t_setup0;
    int batch = job->batch > 0 ? job->batch : (R <= 160 ? 16 : 8);
    /* what a rank holds before its workspaces (models, data, plan), and the
     * batch the per-rank budget allows, as salcheck run chooses it */
    const double resident_base = sal_resident_bytes();
    for (int k = 0; k < job->n_methods; k++) /* LRP and DeepLIFT keep every node's buffers */
        CHECK_RC(sal_budget_method(models, job->n_models, job->methods[k]));
    /* cascade reuse: the largest randomization's states in lockstep (run_cascade_budget) */
    int cascade_states[JOB_MAX_MODELS] = {0};
    double cascade_fixed = 0.0;
    if (job->cascade_reuse && !run_checks_needed(plan))
        CHECK_RC(run_cascade_budget(plan, models, job->n_models, cascade_states, &cascade_fixed));
    /* held beside the workspaces: each model's base parameters, what its methods hold */
    double held_params = 0.0, held_methods = 0.0;
    for (int j = 0; j < job->n_models; j++) {
        held_params += sizeof(float) * (double)models[j]->n_params;
        for (int k = 0; k < job->n_methods; k++)
            held_methods += (double)sal_method_fixed_bytes(models[j], job->methods[k],
                                                        &plan->params);
    }
    const double held = cascade_fixed + held_params + held_methods;
    if (job->memory_per_rank > 0)
        CHECK_RC(sal_batch_for_memory_cascade(models, job->n_models, cascade_states,
                                              job->memory_per_rank, resident_base + held,
                                              job->batch > 0 ? job->batch : 256, job->path,
                                              &batch));
    /* The pages the run touches: every model's workspace, XRAI workspace and folded
     * convolutions live from the start of the run to its end (nothing is freed between
     * cells or models), but the batch's pages only as far as the methods fill them: a
     * method hands the engine at most its steps or samples per call (the model checks,
     * the whole batch). */
    const int touched = run_checks_needed(plan)
                            ? batch
                            : sal_methods_inputs(plan->methods, plan->n_methods, &plan->params,
                                                 batch);
    double ws_bytes = cascade_fixed + held_methods, cascade_bytes = 0.0;
    for (int j = 0; j < job->n_models; j++) {
        ws_bytes += (double)sal_ws_bytes(models[j], touched);
        if (cascade_states[j] > 1) {
            const double cb = (double)sal_cascade_bytes(models[j], touched, cascade_states[j]);
            cascade_bytes = cb > cascade_bytes ? cb : cascade_bytes;
        }
    }
    ws_bytes += cascade_bytes;

    /* the plan */
    long cells = 0;
    double evals = 0.0;
    for (int v = 0; v < plan->n_variants; v++) {
        cells += plan->variants[v].n_images;
        evals += plan->variants[v].cost * plan->variants[v].n_images;
    }
    int per_exp[RESULTS_EXP_COUNT] = {0};
    for (int q = 0; q < plan->n_pairs; q++)
        per_exp[plan->pairs[q].exp]++;
    printf("# plan of %s (the job is valid; nothing was computed)\n\n", job->path);
    printf("images     %d evaluated at %dx%d (%d in the randomization experiments); %s\n",
           n_images, R, R, plan->n_random_images, data_note);
    printf("models     %d:", job->n_models);
    for (int j = 0; j < job->n_models; j++)
        printf("%s %s [%s]", j ? "," : "", job->models[j].name, pm[j].source);
    printf("\nvariants   %d:", plan->n_variants);
    for (int v = 0; v < plan->n_variants; v++)
        printf("%s %s", v ? "," : "", plan->variants[v].name);
    printf("\nmethods    %d:", plan->n_methods);
    for (int k = 0; k < plan->n_methods; k++)
        printf(" %s", plan->methods[k]->name);
    printf("\ncells      %ld (variant x image), %ld maps, %d work items of up to %d images%s\n",
           cells, cells * plan->n_methods, n_items, block,
           auto_block ? " (block_images automatic: fewer images per item where ranks outnumber the "
                        "work, see the table)" : "");
    printf("pairs      %d:", plan->n_pairs);
    for (int e = 0; e < RESULTS_EXP_COUNT; e++)
        if (per_exp[e])
            printf(" %s %d", results_experiment_name(e), per_exp[e]);
    printf("\ncost       %.0f gradient evaluations (%.1f per cell; a forward pass counts 1/2)\n\n",
           evals, cells ? evals / cells : 0.0);
    fflush(stdout);

    /* calibration: each distinct graph once; every model's workspace exists
     * (and is touched) as on a rank of the run, for the memory figure */
    double t_cal0 = sc_now();
    for (int j = 0; j < job->n_models; j++) {
        CHECK_RC(sal_ws_create(&ws[j], models[j], batch, NULL));
        CHECK_RC(sal_ws_set_avgmask(ws[j], avgmask));
        for (int q = 0; q < j; q++)
            if (models[q]->n_nodes == models[j]->n_nodes && models[q]->n_params == models[j]->n_params &&
                pm[q].train >= pm[j].train) {
                pm[j].same_as = q;
                break;
            }
        if (pm[j].same_as >= 0) {
            int train = pm[j].train;
            char src[96];
            memcpy(src, pm[j].source, sizeof src);
            pm[j] = pm[pm[j].same_as];
            pm[j].train = train;
            pm[j].same_as = 0;
            memcpy(pm[j].source, src, sizeof src);
            CHECK_RC(pe_calibrate(plan, models[j], ws[j], batch, ds, &pm[j], 1));
            continue;
        }
        CHECK_RC(pe_calibrate(plan, models[j], ws[j], batch, ds, &pm[j], 0));
    }
    double t_pair = pe_time_pair(plan);
    double t_summary = pe_time_summary(plan);
    double t_cal = sc_now() - t_cal0;
    double rss = pe_peak_rss();

    /* core-seconds of the work */
    t_item = calloc((size_t)n_items + (size_t)plan->n_pairs / 64 + 2, sizeof(double));
    CHECK_ALLOC(t_item);
    double *t_pitem = t_item + n_items;
    double map_s = 0.0;
    for (int q = 0; q < n_items; q++) {
        t_item[q] = t_item_cell(pm, plan, reuse, &items[q]);
        map_s += t_item[q];
    }
    int n_pitems = 0;
    double pair_s = 0.0;
    for (int q = 0; q < plan->n_pairs; q += 64) {
        int n = plan->n_pairs - q < 64 ? plan->n_pairs - q : 64;
        t_pitem[n_pitems++] = n * plan->n_methods * t_pair;
        pair_s += n * plan->n_methods * t_pair;
    }
    double train_s = 0.0;
    int n_to_train = 0;
    for (int j = 0; j < job->n_models; j++) {
        if (!pm[j].train)
            continue;
        n_to_train++;
        int epochs = job->models[j].epochs ? job->models[j].epochs : 8;
        /* training steps, and one forward pass of each validation image per epoch */
        train_s += epochs * (n_train_images * pm[j].t_train_image + n_val_images * pm[j].t_target);
    }

    printf("calibration on this machine (%.1f s, batch %d; CPU time of one core, so other load "
           "does not inflate it; the estimate holds for cores like these):\n", t_cal, batch);
    for (int j = 0; j < job->n_models; j++) {
        if (pm[j].same_as >= 0)
            continue;
        double cell = pm[j].t_target;
        for (int k = 0; k < plan->n_methods; k++)
            cell += pm[j].t_method[k];
        printf("  %-10s %.3g ms per gradient evaluation, %.3g s per cell:", job->models[j].name,
               pm[j].t_grad * 1e3, cell);
        for (int k = 0; k < plan->n_methods; k++)
            printf(" %s %.3g", plan->methods[k]->name, pm[j].t_method[k]);
        if (pm[j].train)
            printf("; training %.3g ms per image", pm[j].t_train_image * 1e3);
        printf("\n");
    }
    printf("  pairs      %.3g ms per pair and method (%d similarities)\n", t_pair * 1e3,
           plan->n_sims);
    {
        double grouped = 0.0, shared = 0.0; /* cells of lockstep states, their reuse share */
        for (int v = 0; v < plan->n_variants; v++)
            if (lockstep && plan_cascade_group(plan, v) > 1)
                for (int s = 0, nv = plan_cascade_group(plan, v); s < nv; s++) {
                    grouped += plan->variants[v + s].n_images;
                    shared += plan->variants[v + s].n_images * reuse[v + s];
                }
        if (grouped > 0)
            printf("  cascade    the randomization states run in lockstep: their methods cost %.0f%% "
                   "of each state alone (the layers below the re-initialized blocks computed "
                   "once; by forward FLOPs)\n", 100.0 * shared / grouped);
    }
    printf("\n");

    char fsz[32], mem[32], tlimit[32];
    double file_bytes = pe_file_size(plan, job);
    double plan_bytes = (double)n_images * (hw + 64 + 1) + plan->n_pairs * 20.0 + hw * 8.0 +
                        (double)plan->n_variants * n_images * 2.0;
    double param_copy = 0.0;
    for (int j = 0; j < job->n_models; j++)
        param_copy += pm[j].n_params * 4.0; /* the base weights each rank keeps beside the model */
    /* the estimate salcheck run's memory_per_rank uses (sal_budget.c), without its
     * reserve: an expected peak, not a bound */
    double mem_rank = resident_base + ws_bytes + plan_bytes + param_copy;
    pe_bytes(file_bytes, fsz, sizeof fsz);
    pe_bytes(mem_rank, mem, sizeof mem);
    printf("estimate\n");
    printf("  maps phase     %.4f core-hours (%.0f core-seconds)\n", map_s / 3600, map_s);
    printf("  pairs phase    %.4f core-hours (%.0f core-seconds)\n", pair_s / 3600, pair_s);
    if (n_to_train)
        printf("  training       %.4f core-hours (%d model%s to train first)\n", train_s / 3600,
               n_to_train, n_to_train > 1 ? "s" : "");
    printf("  start-up       %.1f s per rank; summary %.1f s on the root\n", t_setup, t_summary);
    printf("  results file   %s (%s maps)\n", fsz, job->maps);
    char peak[32];
    pe_bytes(rss, peak, sizeof peak);
    printf("  memory/rank    %s at batch %d (models and data %.0f MB, workspaces %.0f MB with up to "
           "%d input%s per engine call, plan; the calibration's peak was %s)\n\n",
           mem, batch, resident_base / 1048576.0, ws_bytes / 1048576.0, touched,
           touched > 1 ? "s" : "", peak);
    pe_fixed_t pe_fixed = {t_setup, train_s, map_s, pair_s, t_summary};
    /* the item times for each block the run may choose: the job's, or 4, 2 and 1 when automatic */
    pe_items_t sets[3] = {{block, n_items, t_item}};
    int n_sets = 1;
    for (int b = 2; auto_block && b >= 1 && rc >= 0; b--)
        if ((rc = pe_item_times(plan, pm, reuse, lockstep, b, &sets[n_sets])) >= 0)
            n_sets++;
    if (rc < 0)
        goto tables;
    double first_wall = pe_table(o, sets, n_sets, t_pitem, n_pitems, &pe_fixed);
    printf("\n(work: CPU time of the computation; allocation: ranks x wall time, waiting ranks "
           "included%s)\n", n_to_train ? "; training spread over every rank" : "");
    if (block > 1 && !auto_block) {
        /* what one image per work item would give: more items, a shorter tail */
        pe_items_t one;
        if ((rc = pe_item_times(plan, pm, reuse, lockstep, 1, &one)) < 0)
            goto tables;
        printf("\nwith block_images = 1 (%d work items instead of %d):\n\n", one.n, n_items);
        pe_table(o, &one, 1, t_pitem, n_pitems, &pe_fixed);
        free(one.t);
    }
tables:
    for (int k = 1; k < n_sets; k++)
        free(sets[k].t);
    if (rc < 0)
        goto cleanup;
    /* the time limit: the estimate plus half, plus 10 minutes for start-up and the summary */
    pe_hms(first_wall * 1.5 + 600.0, tlimit, sizeof tlimit);
    int mem_mb = (int)ceil(mem_rank * 1.5 / 1e6 / 100.0) * 100;
    printf("\nsuggested: sbatch -N %d -n %d --time=%s --mem-per-cpu=%dM slurm/audit.sbatch %s\n",
           o->nodes[0], o->nodes[0] * o->cores, tlimit, mem_mb, job->path);
    printf("(--time is the wall estimate x 1.5 + 10 minutes; --mem-per-cpu the memory per rank "
           "x 1.5)\n");
cleanup:
    for (int j = 0; j < JOB_MAX_MODELS; j++) {
        sal_ws_destroy(ws[j]);
        nn_model_destroy(models[j]);
    }
    if (plan)
        plan->ds_index = NULL;
    plan_destroy(plan);
    free(ids);
    free(labels);
    free(gt);
    free(avgmask);
    free(outs);
    free(images);
    free(items);
    free(t_item);
    free(reuse);
    dataset_destroy(ds);
    job_destroy(job);
    return rc;
}

int plan_estimate_main(int argc, char **argv)
{
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank != 0)
        return CLI_OK;
    pe_opts_t o;
    int r = pe_parse(argc, argv, &o);
    if (r != 0)
        return r > 0 ? CLI_OK : CLI_FAIL_ALL;
    return pe_run(&o) < 0 ? CLI_FAIL_ALL : CLI_OK;
}
