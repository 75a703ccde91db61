/*
 * cmd_train.c - `salcheck train`: train a classifier on a data set, as one
 * process or data-parallel under mpirun/srun (common/train/train.h).
 *
 * Options come from the command line and/or a job file section ([train] by
 * default) with the same keys (dashes or underscores); the command line wins.
 * SIGTERM (Slurm's time limit), SIGINT and SIGUSR1 (what mpirun forwards)
 * ask for a clean stop: the ranks finish the current step, write the
 * checkpoint and exit; the same command resumes.
 */
#include <ctype.h>
#include <errno.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "io/dataset.h"
#include "io/dicom.h"
#include "sc.h"
#include "train/train.h"

#define TRAIN_STR_MAX 4096

/* Storage for the string options (the configuration points into it). */
typedef struct train_cli {
    train_config_t cfg;
    char data_dir[TRAIN_STR_MAX], arch[64], out_path[TRAIN_STR_MAX], optimizer[16];
    char schedule[16], init_path[TRAIN_STR_MAX], normalize[16], resize[16], select[16];
    char loss_log[TRAIN_STR_MAX];
    int size_given;
    dataset_options_t data_opt; /* --kind, --dicom-window, --finding, --min-readers */
    char finding[64];
} train_cli_t;

static volatile sig_atomic_t g_stop_requested; /* set by the signal handler only */

static void on_stop_signal(int sig)
{
    g_stop_requested = 1;
    signal(sig, SIG_DFL); /* a second signal ends the process */
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: salcheck train --data DIR --out MODEL.h5 [options]\n"
            "       salcheck train --job JOB.ini [--section train] [options]\n"
            "\n"
            "Train a classifier on a data set (the README's data set kinds, PNG, JPEG or DICOM;\n"
            "'salcheck phantom' writes one). Runs as one process or under mpirun/srun: every\n"
            "rank computes a shard of each global batch; the result depends only on the seed\n"
            "and the number of ranks.\n"
            "\n"
            "  --data DIR             data set directory (train and val splits are used)\n"
            "  --kind K               rsna, siim, nih, vindr, chexlocalize, maskdir (default: from the files)\n"
            "  --dicom-window W       voi, full or minmax (DICOM gray levels; default voi)\n"
            "  --finding F            nih, vindr, chexlocalize: the finding (default: the kind's)\n"
            "  --min-readers K        vindr: radiologists who must agree (default 1)\n"
            "  --out MODEL.h5         model file to write (best epoch by validation AUC)\n"
            "  --arch NAME            architecture of the model zoo [democnn]\n"
            "  --size S               input resolution S x S [128]\n"
            "  --seed K               seed of weights, order, augmentation, permutation [1]\n"
            "  --epochs E             [8]\n"
            "  --batch B              global batch, split over the ranks [32]\n"
            "  --lr L                 peak learning rate [0.002]\n"
            "  --optimizer adam|sgd   [adam]\n"
            "  --momentum M           SGD momentum [0.9]\n"
            "  --weight-decay W       L2 coefficient [1e-4]\n"
            "  --schedule cosine|constant  learning-rate schedule [cosine]\n"
            "  --labels true|shuffled shuffled: permute the training labels with the seed\n"
            "                         (label randomization); validation labels stay true [true]\n"
            "  --select auc|last      which epoch to keep [auc; last with shuffled labels]\n"
            "  --init MODEL.h5|.onnx  start from this model (its graph and weights: a salcheck\n"
            "                         model file, or an ONNX file); its outputs must match\n"
            "                         --classes and its input --size (default: the file's)\n"
            "  --augment on|off       shifts, rotations, scale, intensity jitter [off]\n"
            "  --classes 2|1          softmax over 2 logits, or one sigmoid logit [2]\n"
            "  --normalize NAME       inception|imagenet|unit|xrv|scale=S offset=O [the model's]\n"
            "  --resize area|bilinear how images are brought to S x S [area]\n"
            "  --no-resume            ignore (and overwrite) the checkpoint MODEL.h5.ckpt\n"
            "  --checkpoint-seconds T checkpoint within an epoch every T s (0: epoch ends) [300]\n"
            "  --progress-seconds T   progress line within an epoch every T s [30]\n"
            "  --loss-log FILE        write 'epoch step loss' for every step\n"
            "  --job FILE             read the options from a job file section\n"
            "  --section NAME         the job file section [train]\n"
            "  --help                 this text\n"
            "\n"
            "Progress (loss, validation AUC and accuracy, images/s, ETA) goes to stderr, one\n"
            "line per epoch. SIGTERM, SIGINT or SIGUSR1 (mpirun forwards it) stop cleanly after\n"
            "writing the checkpoint; the same command resumes.\n");
}

static void copy_str(char *dst, size_t len, const char *src) { snprintf(dst, len, "%s", src); }

static int parse_int(const char *v, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < -2147483647L || x > 2147483647L)
        return -1;
    *out = (int)x;
    return 0;
}

static int parse_double(const char *v, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end)
        return -1;
    *out = x;
    return 0;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "1") || !strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(v, "0") || !strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false")) {
        *out = 0;
        return 0;
    }
    return -1;
}

/*
 * Apply one option (key without dashes, '_' and '-' alike). Returns 0, 1 for
 * an unknown key, -1 for a bad value (why written).
 */
static int set_option(train_cli_t *c, const char *key_in, const char *v, char *why, size_t len)
{
    char key[64];
    copy_str(key, sizeof key, key_in);
    for (char *p = key; *p; p++)
        if (*p == '_')
            *p = '-';
    train_config_t *cfg = &c->cfg;
    int ok = 0;
    if (!strcmp(key, "data")) {
        copy_str(c->data_dir, sizeof c->data_dir, v);
        cfg->data_dir = c->data_dir;
    } else if (!strcmp(key, "kind") || !strcmp(key, "dicom-window") || !strcmp(key, "finding") ||
               !strcmp(key, "min-readers")) {
        /* the data set options of io/dataset.h; every other one keeps its default */
        if (!cfg->data_options)
            dataset_options_default(&c->data_opt);
        cfg->data_options = &c->data_opt;
        if (!strcmp(key, "kind")) {
            ok = dataset_format_parse(v, &c->data_opt.format);
        } else if (!strcmp(key, "dicom-window")) {
            ok = dicom_window_parse(v, &c->data_opt.read.dicom_window);
        } else if (!strcmp(key, "finding")) {
            copy_str(c->finding, sizeof c->finding, v);
            c->data_opt.finding = c->finding;
        } else {
            ok = parse_int(v, &c->data_opt.min_readers);
            if (ok == 0 && (c->data_opt.min_readers < 1 || c->data_opt.min_readers > 64))
                ok = -1;
        }
    } else if (!strcmp(key, "out")) {
        copy_str(c->out_path, sizeof c->out_path, v);
        cfg->out_path = c->out_path;
    } else if (!strcmp(key, "arch")) {
        copy_str(c->arch, sizeof c->arch, v);
        cfg->arch = c->arch;
    } else if (!strcmp(key, "size")) {
        ok = parse_int(v, &cfg->size);
        c->size_given = 1;
    } else if (!strcmp(key, "seed")) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(v, &end, 10);
        ok = errno || end == v || *end || v[0] == '-' ? -1 : 0;
        cfg->seed = s;
    } else if (!strcmp(key, "epochs")) {
        ok = parse_int(v, &cfg->epochs);
    } else if (!strcmp(key, "batch")) {
        ok = parse_int(v, &cfg->batch);
    } else if (!strcmp(key, "lr")) {
        ok = parse_double(v, &cfg->lr);
    } else if (!strcmp(key, "optimizer")) {
        ok = strcmp(v, "adam") && strcmp(v, "sgd") ? -1 : 0;
        copy_str(c->optimizer, sizeof c->optimizer, v);
        cfg->optimizer = c->optimizer;
    } else if (!strcmp(key, "momentum")) {
        ok = parse_double(v, &cfg->momentum);
    } else if (!strcmp(key, "weight-decay")) {
        ok = parse_double(v, &cfg->weight_decay);
    } else if (!strcmp(key, "schedule")) {
        ok = strcmp(v, "cosine") && strcmp(v, "constant") ? -1 : 0;
        copy_str(c->schedule, sizeof c->schedule, v);
        cfg->schedule = c->schedule;
    } else if (!strcmp(key, "labels")) {
        ok = strcmp(v, "true") && strcmp(v, "shuffled") ? -1 : 0;
        cfg->shuffled_labels = !strcmp(v, "shuffled");
    } else if (!strcmp(key, "select")) {
        ok = strcmp(v, "auc") && strcmp(v, "last") ? -1 : 0;
        copy_str(c->select, sizeof c->select, v);
        cfg->select = c->select;
    } else if (!strcmp(key, "init")) {
        copy_str(c->init_path, sizeof c->init_path, v);
        cfg->init_path = *v ? c->init_path : NULL;
    } else if (!strcmp(key, "augment")) {
        ok = parse_bool(v, &cfg->augment);
    } else if (!strcmp(key, "classes")) {
        ok = parse_int(v, &cfg->classes);
    } else if (!strcmp(key, "normalize")) {
        copy_str(c->normalize, sizeof c->normalize, v);
        cfg->normalize = c->normalize;
    } else if (!strcmp(key, "resize")) {
        copy_str(c->resize, sizeof c->resize, v);
        cfg->resize = c->resize;
    } else if (!strcmp(key, "resume")) {
        ok = parse_bool(v, &cfg->resume);
    } else if (!strcmp(key, "checkpoint-seconds")) {
        ok = parse_double(v, &cfg->checkpoint_seconds);
    } else if (!strcmp(key, "progress-seconds")) {
        ok = parse_double(v, &cfg->progress_seconds);
    } else if (!strcmp(key, "loss-log")) {
        copy_str(c->loss_log, sizeof c->loss_log, v);
        cfg->loss_log = *v ? c->loss_log : NULL;
    } else {
        return 1;
    }
    if (ok < 0)
        snprintf(why, len, "'%s' is not a valid value for %s", v, key_in);
    return ok < 0 ? -1 : 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

/* Read section `section` of an INI job file; errors name the file and line. */
static int read_job(train_cli_t *c, const char *path, const char *section, int verbose)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (verbose)
            fprintf(stderr, "salcheck train: cannot open job file '%s': %s\n", path,
                    strerror(errno));
        return -1;
    }
    char line[8192], cur[256] = "", why[256];
    int lineno = 0, rc = 0, seen = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (!e) {
                if (verbose)
                    fprintf(stderr, "salcheck train: %s:%d: section header without ']'\n", path,
                            lineno);
                rc = -1;
                break;
            }
            *e = 0;
            copy_str(cur, sizeof cur, trim(s + 1));
            seen |= !strcmp(cur, section);
            continue;
        }
        if (strcmp(cur, section))
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            if (verbose)
                fprintf(stderr, "salcheck train: %s:%d: expected 'key = value'\n", path, lineno);
            rc = -1;
            break;
        }
        *eq = 0;
        char *key = trim(s), *value = eq + 1;
        /* an inline comment starts with whitespace then # or ; */
        for (char *p = value; *p; p++)
            if ((*p == '#' || *p == ';') && p > value && isspace((unsigned char)p[-1])) {
                *p = 0;
                break;
            }
        value = trim(value);
        int r = set_option(c, key, value, why, sizeof why);
        if (r != 0) {
            if (verbose) {
                if (r > 0)
                    fprintf(stderr, "salcheck train: %s:%d: unknown key '%s' in [%s] (see "
                                    "'salcheck train --help'; keys are the option names)\n",
                            path, lineno, key, section);
                else
                    fprintf(stderr, "salcheck train: %s:%d: %s\n", path, lineno, why);
            }
            rc = -1;
            break;
        }
    }
    fclose(f);
    if (rc == 0 && !seen) {
        if (verbose)
            fprintf(stderr, "salcheck train: %s has no [%s] section\n", path, section);
        rc = -1;
    }
    return rc;
}

int cmd_train(int argc, char **argv)
{
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    const int verbose = rank == 0;
    train_cli_t *c = calloc(1, sizeof *c);
    if (!c)
        return CLI_FAIL_RANK;
    train_config_default(&c->cfg);
    const char *job = NULL, *section = "train";
    char why[256];
    int rc = CLI_OK;

    /* First pass: --help, --job and --section, so that the command line overrides the file. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (verbose)
                usage(stdout);
            free(c);
            return 0;
        }
        if (!strcmp(argv[i], "--job") && i + 1 < argc)
            job = argv[++i];
        else if (!strcmp(argv[i], "--section") && i + 1 < argc)
            section = argv[++i];
    }
    if (job && read_job(c, job, section, verbose) < 0) {
        free(c);
        return CLI_FAIL_ALL;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--job") || !strcmp(a, "--section")) {
            i++;
            continue;
        }
        if (!strcmp(a, "--no-resume")) {
            c->cfg.resume = 0;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            if (verbose)
                fprintf(stderr, "salcheck train: unexpected argument '%s' (see --help)\n", a);
            rc = CLI_FAIL_ALL;
            break;
        }
        char key[64];
        const char *value;
        const char *eq = strchr(a, '=');
        if (eq) {
            snprintf(key, sizeof key, "%.*s", (int)(eq - a - 2), a + 2);
            value = eq + 1;
        } else {
            copy_str(key, sizeof key, a + 2);
            if (!strcmp(key, "augment") && (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2))) {
                value = "on"; /* bare --augment */
            } else if (i + 1 >= argc) {
                if (verbose)
                    fprintf(stderr, "salcheck train: option %s needs a value\n", a);
                rc = CLI_FAIL_ALL;
                break;
            } else {
                value = argv[++i];
            }
        }
        int r = set_option(c, key, value, why, sizeof why);
        if (r != 0) {
            if (verbose) {
                if (r > 0)
                    fprintf(stderr, "salcheck train: unknown option '--%s' (see --help)\n", key);
                else
                    fprintf(stderr, "salcheck train: %s\n", why);
            }
            rc = CLI_FAIL_ALL;
            break;
        }
    }
    if (c->cfg.init_path && !c->size_given)
        c->cfg.size = 0; /* the input size of the --init file */
    if (rc == CLI_OK && (!c->cfg.data_dir || !c->cfg.out_path)) {
        if (verbose)
            fprintf(stderr, "salcheck train: --data DIR and --out MODEL.h5 are required (see "
                            "--help)\n");
        rc = CLI_FAIL_ALL;
    }
    if (rc == CLI_OK) {
        signal(SIGTERM, on_stop_signal);
        signal(SIGINT, on_stop_signal);
        signal(SIGUSR1, on_stop_signal);
        c->cfg.stop = &g_stop_requested;
        int r = train_run(&c->cfg, MPI_COMM_WORLD);
        if (r == TRAIN_STOPPED) {
            /* Every rank stopped after the checkpoint was written; the model file is not
             * written yet. */
            rc = CLI_INTERRUPTED;
            if (verbose)
                fprintf(stderr, "salcheck train: stopped before the end; run the same command "
                                "again to resume\n");
        } else if (r < 0) {
            /* train_run agrees on its status across ranks, except for MPI failures. */
            rc = r == SC_ERR_MPI ? CLI_FAIL_RANK : CLI_FAIL_ALL;
        } else {
            rc = CLI_OK;
        }
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGUSR1, SIG_DFL);
    }
    free(c);
    return rc;
}
