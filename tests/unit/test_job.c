/*
 * test_job.c - job files: the shipped jobs parse; mistakes are reported with
 * their line; lists, pairs and method parameters are read as written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/job.h"
#include "sc.h"
#include "testhelp.h"

static const char *tmp_path(const char *name)
{
    static char path[512];
    const char *b = getenv("BUILD");
    char dir[256];
    snprintf(dir, sizeof dir, "%s/test-tmp", b && *b ? b : "build");
    mkdir(b && *b ? b : "build", 0755);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static const char *write_job(const char *name, const char *text)
{
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

/* Capture stderr of job_load into buf. */
static int load_capture(const char *job_path, job_t **job, char *buf, size_t len)
{
    char path[512], log[512];
    snprintf(path, sizeof path, "%s", job_path);
    snprintf(log, sizeof log, "%s", tmp_path("job-stderr.txt"));
    fflush(stderr);
    int saved = dup(2);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
    int rc = job_load(path, 0, job);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(log, "r");
    size_t n = f ? fread(buf, 1, len - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
    return rc;
}

static void test_shipped_jobs_parse(void)
{
    const char *jobs[] = {"jobs/demo.ini", "jobs/arun2021-rsna.ini", "jobs/arun2021-siim.ini",
                          "tests/mpi/small.ini"};
    for (size_t i = 0; i < sizeof jobs / sizeof jobs[0]; i++) {
        job_t *job = NULL;
        int rc = job_load(jobs[i], 0, &job);
        TH_CHECK(rc == 0 && job, "%s does not parse", jobs[i]);
        if (!job)
            continue;
        TH_CHECK(job->n_methods >= 8, "%s: %d methods", jobs[i], job->n_methods);
        TH_CHECK(job->n_models >= 2, "%s: %d models", jobs[i], job->n_models);
        /* the method parameters are all known keys of known methods */
        job_destroy(job);
    }
    job_t *demo = NULL;
    job_load("jobs/demo.ini", 0, &demo);
    if (demo) {
        TH_EQ_INT(demo->size, 128);
        TH_EQ_INT(demo->n_repeat_pairs, 1);
        TH_EQ_INT(demo->repeat_pairs[0].a, job_find_model(demo, "A"));
        TH_EQ_INT(demo->repeat_pairs[0].b, job_find_model(demo, "B"));
        TH_EQ_INT(demo->label_pairs[0].b, job_find_model(demo, "shuffled"));
        TH_EQ_INT(demo->models[job_find_model(demo, "shuffled")].shuffled_labels, 1);
        TH_CHECK(!strcmp(demo->methods[0], "grad"), "first method %s", demo->methods[0]);
        const char *v;
        int line;
        TH_CHECK(job_method_param(demo, "sg", "samples", &v, &line) && atoi(v) == 8,
                 "sg.samples");
        job_destroy(demo);
    }
}

static void test_errors_name_lines(void)
{
    const char *text = "[job]\n"              /* 1 */
                       "seed = 3\n"           /* 2 */
                       "sed = 4\n"            /* 3: unknown key */
                       "[data]\n"             /* 4 */
                       "kind = phantom\n"     /* 5 */
                       "dir = x\n"            /* 6 */
                       "size = big\n"         /* 7: bad value */
                       "[model.A]\n"          /* 8 */
                       "train = yes\n"        /* 9 */
                       "arch = democnn\n"     /* 10 */
                       "[experimentz]\n"      /* 11: unknown section */
                       "utility = A\n"        /* 12 */
                       "[experiments]\n"      /* 13 */
                       "repeatability = A:Q\n"/* 14: unknown model */
                       "utility = A\n"        /* 15 */
                       "[methods]\n"          /* 16 */
                       "list = grad, ig\n"    /* 17 */
                       "this line is not ini\n"; /* 18 */
    char err[8192];
    job_t *job = NULL;
    int rc = load_capture(write_job("bad.ini", text), &job, err, sizeof err);
    TH_CHECK(rc < 0 && !job, "a bad job was accepted");
    TH_CHECK(strstr(err, "bad.ini:3: unknown key 'sed' in [job]") != NULL, "line 3: %s", err);
    TH_CHECK(strstr(err, "bad.ini:7: size = 'big' is not an integer") != NULL, "line 7: %s", err);
    TH_CHECK(strstr(err, "bad.ini:12: unknown section [experimentz]") != NULL, "line 12: %s", err);
    TH_CHECK(strstr(err, "bad.ini:14: repeatability: no [model.Q] section") != NULL, "line 14: %s", err);
    TH_CHECK(strstr(err, "bad.ini:18: not an INI line") != NULL, "line 18: %s", err);
}

/* [job] memory_per_rank: sizes with K/M/G/T (powers of 1024); bad ones named by line. */
static void test_memory_per_rank(void)
{
    static const struct { const char *value; double bytes; } ok[] = {
        {"8G", 8.0 * 1073741824.0}, {"1.5GiB", 1.5 * 1073741824.0}, {"512m", 512.0 * 1048576.0},
        {"2000000000", 2e9}, {"1T", 1099511627776.0}};
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        char text[512], err[4096];
        snprintf(text, sizeof text,
                 "[job]\nmemory_per_rank = %s\n[data]\nkind = phantom\ndir = x\n"
                 "[model.A]\ntrain = yes\narch = democnn\n[experiments]\nutility = A\n"
                 "[methods]\nlist = grad\n", ok[k].value);
        job_t *job = NULL;
        int rc = load_capture(write_job("mem.ini", text), &job, err, sizeof err);
        TH_CHECK(rc == 0 && job, "memory_per_rank = %s refused: %s", ok[k].value, err);
        if (job)
            TH_NEAR(job->memory_per_rank, ok[k].bytes, 0, 0);
        job_destroy(job);
    }
    static const char *const bad[] = {"lots", "8X", "0", "-1G", "100K", "8G 4"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char text[512], err[4096];
        snprintf(text, sizeof text,
                 "[job]\nmemory_per_rank = %s\n[data]\nkind = phantom\ndir = x\n"
                 "[model.A]\ntrain = yes\narch = democnn\n[experiments]\nutility = A\n"
                 "[methods]\nlist = grad\n", bad[k]);
        job_t *job = NULL;
        int rc = load_capture(write_job("mem.ini", text), &job, err, sizeof err);
        TH_CHECK(rc < 0 && !job && strstr(err, "mem.ini:2: memory_per_rank") &&
                     strstr(err, "is not a memory size"),
                 "memory_per_rank = %s: %s", bad[k], err);
        job_destroy(job);
    }
}

static void test_duplicates_and_pairs(void)
{
    char err[8192];
    job_t *job = NULL;
    const char *text = "[data]\nkind = phantom\ndir = d\n[model.A]\nfile = a.h5\n[model.B]\nfile = b.h5\n"
                       "[model.A]\nfile = c.h5\n[experiments]\nrepeatability = A:B, B:A\n"
                       "reproducibility = A\n[methods]\nlist = grad, grad\n";
    int rc = load_capture(write_job("dup.ini", text), &job, err, sizeof err);
    TH_CHECK(rc < 0, "duplicates accepted");
    TH_CHECK(strstr(err, "dup.ini:9: 'file' is given twice in [model.A]") != NULL, "dup key: %s", err);
    TH_CHECK(strstr(err, "dup.ini:12: reproducibility entry 'A' is not MODEL_A:MODEL_B") != NULL,
             "pair syntax: %s", err);
    TH_CHECK(strstr(err, "dup.ini:14: list lists 'grad' twice") != NULL, "dup method: %s", err);
    const char *good = "[data]\nkind = rsna\ndir = d\n[model.A]\nfile = a.h5\n[model.B]\nfile = b.h5\n"
                       "[experiments]\nrepeatability = A:B, B:A  ; both directions\n"
                       "[methods]\nlist = grad,\n  ig\nig.steps = 20\n";
    rc = load_capture(write_job("good.ini", good), &job, err, sizeof err);
    TH_CHECK(rc == 0 && job, "good job rejected: %s", err);
    if (job) {
        TH_EQ_INT(job->n_repeat_pairs, 2);
        TH_EQ_INT(job->repeat_pairs[1].a, 1);
        TH_EQ_INT(job->n_methods, 2); /* continuation line appends */
        TH_CHECK(job_check_params_used(job) < 0, "an unread parameter was not reported");
        const char *v;
        TH_CHECK(job_method_param(job, "ig", "steps", &v, NULL) && !strcmp(v, "20"), "ig.steps");
        TH_CHECK(job_check_params_used(job) == 0, "a read parameter was reported");
        job_destroy(job);
    }
}

/* Multi-output keys: target, labels (output names unless true/shuffled), input. */
static void test_multi_output_keys(void)
{
    job_t *job = NULL;
    TH_CHECK(job_load("jobs/xrv-pneumonia.ini", 0, &job) == 0 && job, "xrv-pneumonia.ini");
    if (job) {
        const job_model_t *md = &job->models[0];
        TH_CHECK(!strcmp(md->target, "Pneumonia"), "target '%s'", md->target);
        TH_CHECK(!strcmp(md->input, "xrv"), "input '%s'", md->input);
        TH_CHECK(md->target_line > md->line && md->input_line == md->target_line + 1,
                 "lines %d %d %d", md->line, md->target_line, md->input_line);
        job_destroy(job);
    }
    const char *text = "[data]\nkind = phantom\ndir = d\n"
                       "[model.A]\ntrain = yes\narch = democnn\nlabels = shuffled\n"
                       "[model.X]\nfile = x.h5\nlabels = Edema, Pneumonia\ntarget = 1\n"
                       "input = scale=2048 offset=-1024\n"
                       "[experiments]\nutility = A, X\n[methods]\nlist = grad\n";
    char err[4096];
    TH_CHECK(load_capture(write_job("multi.ini", text), &job, err, sizeof err) == 0 && job,
             "multi.ini: %s", err);
    if (job) {
        TH_EQ_INT(job->models[0].shuffled_labels, 1);
        TH_CHECK(job->models[0].output_labels[0] == 0, "training labels taken as names");
        TH_EQ_INT(job->models[1].shuffled_labels, 0);
        TH_CHECK(!strcmp(job->models[1].output_labels, "Edema, Pneumonia"), "labels '%s'",
                 job->models[1].output_labels);
        TH_EQ_INT(job->models[1].labels_line, 10);
        TH_CHECK(!strcmp(job->models[1].target, "1"), "target '%s'", job->models[1].target);
        TH_CHECK(!strcmp(job->models[1].input, "scale=2048 offset=-1024"), "input '%s'",
                 job->models[1].input);
        job_destroy(job);
    }
}

int main(void)
{
    TH_RUN(test_shipped_jobs_parse);
    TH_RUN(test_errors_name_lines);
    TH_RUN(test_duplicates_and_pairs);
    TH_RUN(test_multi_output_keys);
    TH_RUN(test_memory_per_rank);
    return th_report();
}
