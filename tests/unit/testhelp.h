/*
 * testhelp.h - the in-house test runner (header only).
 *
 * Each test binary calls TH_RUN(fn) for its test functions and returns
 * th_report(). A check that fails prints file:line and the values; th_report
 * prints "N passed, N failed" and returns non-zero on any failure. A test that
 * cannot run here (a missing reference library) calls TH_SKIP with the reason:
 * skips are printed, never counted as passes.
 */
#ifndef TESTHELP_H
#define TESTHELP_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int th_passed, th_failed, th_skipped, th_cur_failed;
static const char *th_cur_name = "";

#define TH_CHECK(cond, ...)                                                     \
    do {                                                                        \
        if (!(cond)) {                                                          \
            if (!th_cur_failed)                                                 \
                printf("[FAIL] %s\n", th_cur_name);                             \
            th_cur_failed = 1;                                                  \
            printf("    %s:%d: ", __FILE__, __LINE__);                          \
            printf(__VA_ARGS__);                                                \
            printf("\n");                                                       \
        }                                                                       \
    } while (0)

/* |a-b| <= atol + rtol*|b| */
#define TH_NEAR(a, b, rtol, atol)                                               \
    do {                                                                        \
        double th_a_ = (double)(a), th_b_ = (double)(b);                        \
        TH_CHECK(fabs(th_a_ - th_b_) <= (atol) + (rtol)*fabs(th_b_) &&          \
                     !isnan(th_a_) == !isnan(th_b_),                            \
                 "%s = %.10g, expected %s = %.10g", #a, th_a_, #b, th_b_);      \
    } while (0)

#define TH_EQ_INT(a, b)                                                         \
    do {                                                                        \
        long th_a_ = (long)(a), th_b_ = (long)(b);                              \
        TH_CHECK(th_a_ == th_b_, "%s = %ld, expected %ld", #a, th_a_, th_b_);   \
    } while (0)

#define TH_SKIP(...)                                                            \
    do {                                                                        \
        printf("[SKIP] %s: ", th_cur_name);                                     \
        printf(__VA_ARGS__);                                                    \
        printf("\n");                                                           \
        th_skipped++;                                                           \
        return;                                                                 \
    } while (0)

#define TH_RUN(fn)                                                              \
    do {                                                                        \
        th_cur_name = #fn;                                                      \
        th_cur_failed = 0;                                                      \
        int th_skip_before_ = th_skipped;                                       \
        fn();                                                                   \
        if (th_skipped != th_skip_before_) {                                    \
        } else if (th_cur_failed) {                                             \
            th_failed++;                                                        \
        } else {                                                                \
            th_passed++;                                                        \
            printf("[ok]   %s\n", #fn);                                         \
        }                                                                       \
    } while (0)

static inline int th_report(void)
{
    if (th_skipped)
        printf("%d skipped\n", th_skipped);
    printf("%d passed, %d failed\n", th_passed, th_failed);
    fflush(stdout);
    return th_failed ? 1 : 0;
}

/* The Python interpreter with Debian's scientific packages, or NULL.
 * SALCHECK_PYTHON overrides; default /usr/bin/python3 (Debian's packages
 * install there, not into other interpreters on PATH). */
static inline const char *th_python(void)
{
    const char *py = getenv("SALCHECK_PYTHON");
    return py && *py ? py : "/usr/bin/python3";
}

/* 1 when `python -c "import <modules>"` succeeds. */
static inline int th_python_has(const char *modules)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s -c 'import %s' >/dev/null 2>&1", th_python(), modules);
    return system(cmd) == 0;
}

/* $BUILD/test-tmp (BUILD defaults to build), created when missing: the
 * scratch folder of the tests that write files for a reference to read. */
static inline const char *th_tmp_dir(void)
{
    static char path[256];
    const char *b = getenv("BUILD");
    snprintf(path, sizeof path, "%s/test-tmp", b && *b ? b : "build");
    mkdir(b && *b ? b : "build", 0755);
    mkdir(path, 0755);
    return path;
}

/* max|a-b| / max|b|: relative to the scale of the reference b (maps and
 * gradients have many near-zero entries). */
static inline double th_rel_err(const float *a, const float *b, size_t count)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < count; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return den > 0 ? num / den : num;
}

/* ||a-b||_2 / ||b||_2. */
static inline double th_rel_l2(const float *a, const float *b, size_t count)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < count; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* A scratch folder of one test binary, for the files it and its reference
 * scripts write: dir (len bytes) becomes the fresh folder $BUILD/PREFIXXXXXXX
 * (mkdtemp; BUILD defaults to build) unless it names one already. 0, or -1
 * with dir "". */
static inline int th_scratch_make(char *dir, size_t len, const char *prefix)
{
    if (dir[0])
        return 0;
    const char *build = getenv("BUILD");
    if (!build || !*build)
        build = "build";
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", build);
    snprintf(dir, len, "%s/%sXXXXXX", build, prefix);
    if (system(cmd) != 0 || !mkdtemp(dir)) {
        dir[0] = 0;
        return -1;
    }
    return 0;
}

/* Removes the folder th_scratch_make made, if any (rm -rf). */
static inline void th_scratch_remove(const char *dir)
{
    if (!dir[0])
        return;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* The end of a run: the folder removed when it passed (failed 0), else kept
 * for a look and said so ("WHAT kept in DIR"). */
static inline void th_scratch_end(const char *dir, int failed, const char *what)
{
    if (!failed)
        th_scratch_remove(dir);
    else
        printf("%s kept in %s\n", what, dir);
}

/* Opens dir/name with mode ("wb" or "rb") and writes or reads exactly bytes
 * of data; 0 or -1. */
static inline int th_scratch_file(const char *dir, const char *name, const char *mode, void *data,
                                  size_t bytes)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, mode);
    if (!f)
        return -1;
    int ok = (mode[0] == 'w' ? fwrite(data, 1, bytes, f) : fread(data, 1, bytes, f)) == bytes;
    fclose(f);
    return ok ? 0 : -1;
}

static inline int th_scratch_write(const char *dir, const char *name, const void *data,
                                   size_t bytes)
{
    return th_scratch_file(dir, name, "wb", (void *)data, bytes);
}

static inline int th_scratch_read(const char *dir, const char *name, void *data, size_t bytes)
{
    return th_scratch_file(dir, name, "rb", data, bytes);
}

#endif /* TESTHELP_H */
