/*
 * fuzzhelp.h - shared pieces of the libFuzzer harnesses in tests/fuzz.
 *
 * Most salcheck readers take a path, so a harness writes the input into a
 * scratch file (one per process, in a private directory under TMPDIR or /tmp)
 * and calls the reader on it. The logger is silenced (error messages would
 * flood the fuzzer's output); HDF5's automatic error printing is left to the
 * harnesses that use HDF5.
 */
#ifndef FUZZHELP_H
#define FUZZHELP_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sc.h"

static char fuzz_dir_path[512];

/* Remove the scratch directory and what the harness wrote in it (one level of
 * subdirectories), at exit. */
static void fuzz_dir_remove(void)
{
    char path[1024];
    const char *subdirs[2] = {"data", ""};
    for (int k = 0; k < 2; k++) {
        char dir[700];
        snprintf(dir, sizeof dir, "%s%s%s", fuzz_dir_path, subdirs[k][0] ? "/" : "", subdirs[k]);
        DIR *d = opendir(dir);
        for (struct dirent *e = d ? readdir(d) : NULL; e; e = readdir(d)) {
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                unlink(path);
            }
        }
        if (d)
            closedir(d);
        rmdir(dir);
    }
}

/* The private scratch directory of this process (created once, never NULL). */
static inline const char *fuzz_dir(void)
{
    if (!fuzz_dir_path[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/salcheck-fuzz-XXXXXX",
                 tmp && tmp[0] ? tmp : "/tmp");
        if (!mkdtemp(fuzz_dir_path)) {
            perror("salcheck fuzz: mkdtemp");
            abort();
        }
        atexit(fuzz_dir_remove);
    }
    return fuzz_dir_path;
}

/* dir/name as a path in buf. */
static inline const char *fuzz_path(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", fuzz_dir(), name);
    return buf;
}

/* Write len bytes to path (truncating); aborts on failure (a harness bug, not a finding). */
static inline void fuzz_write(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

/* Silence salcheck's logger: a harness runs millions of bad inputs. */
static inline void fuzz_quiet(void)
{
    if (!getenv("SALCHECK_FUZZ_VERBOSE"))
        sc_log_set_level((sc_log_level)(SC_LOG_ERROR + 1));
}

/* Read every one of n decoded pixels: a short buffer is an ASan report here. */
static inline void fuzz_touch(const float *pixels, long n)
{
    volatile float sum = 0;
    for (long k = 0; k < n; k++)
        sum += pixels[k];
    (void)sum;
}

/*
 * Split data at the separator line "\n--\n" into up to max parts (the
 * harnesses that read several files from one input). Returns the count;
 * parts[k], lens[k] point into data.
 */
static inline int fuzz_split(const uint8_t *data, size_t len, const uint8_t **parts, size_t *lens,
                             int max)
{
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; n < max - 1 && i + 4 <= len; i++) {
        if (!memcmp(data + i, "\n--\n", 4)) {
            parts[n] = data + start;
            lens[n++] = i + 1 - start;
            start = i + 4;
            i += 3;
        }
    }
    parts[n] = data + start;
    lens[n++] = len - start;
    return n;
}

/*
 * For the HDF5 harnesses: abort when a reader left an HDF5 file, group,
 * dataset, datatype or attribute open (a leak LeakSanitizer cannot tell from
 * HDF5's own; see tests/fuzz/hdf5.supp), saying which kinds are open. (A
 * harness that calls MPI_Init sets OMPI_MCA_opal_signal="" first, so that the
 * abort reaches libFuzzer, which saves the input.)
 */
#define FUZZ_CHECK_H5_CLOSED()                                                  \
    do {                                                                        \
        ssize_t open_ = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);            \
        if (open_ != 0) {                                                       \
            fprintf(stderr, "salcheck fuzz: %zd HDF5 objects left open (files %zd, " \
                    "datasets %zd, groups %zd, datatypes %zd, attributes %zd)\n", open_, \
                    H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_FILE),                \
                    H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_DATASET),             \
                    H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_GROUP),               \
                    H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_DATATYPE),            \
                    H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ATTR));               \
            abort();                                                            \
        }                                                                       \
    } while (0)

#endif /* FUZZHELP_H */
