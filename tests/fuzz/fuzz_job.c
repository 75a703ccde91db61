/*
 * fuzz_job.c - libFuzzer harness: job files (common/io/job.c, libinih).
 *
 * The input is a job file. A file that loads is also asked for every method
 * parameter it holds and checked for unused parameters, as salcheck run does.
 */
#include <stdint.h>
#include <stdio.h>

#include "fuzzhelp.h"
#include "io/job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[600];
    if (!path[0]) {
        fuzz_quiet();
        fuzz_path("job.ini", path, sizeof path);
    }
    fuzz_write(path, data, size);
    job_t *job = NULL;
    if (job_load(path, 0, &job) == 0) {
        for (int k = 0; k < job->n_params; k++) {
            const char *value = NULL;
            int line = 0;
            job_method_param(job, job->params[k].method, job->params[k].key, &value, &line);
        }
        for (int k = 0; k < job->n_models; k++)
            job_find_model(job, job->models[k].name);
        job_check_params_used(job);
    }
    job_destroy(job);
    return 0;
}
