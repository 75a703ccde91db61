/*
 * sc.h - error codes, logging and check macros shared by every salcheck module.
 *
 * Owned by common/. Functions return 0 on success or a negative sc_err code;
 * CHECK_* macros log file:line, the rank and the library's message, set `rc`
 * and jump to the enclosing function's `cleanup:` label. Only main() decides
 * between a clean exit and MPI_Abort.
 */
#ifndef SC_H
#define SC_H

#include <stddef.h>
#include <stdint.h>

#define SALCHECK_VERSION "0.1.0"

typedef enum sc_err {
    SC_OK = 0,
    SC_ERR_NOMEM = -1,    /* allocation failed */
    SC_ERR_ARG = -2,      /* invalid argument (caller's bug or user's option) */
    SC_ERR_IO = -3,       /* file missing, unreadable, unwritable */
    SC_ERR_FORMAT = -4,   /* file present but malformed (PNG, CSV, HDF5 schema) */
    SC_ERR_SHAPE = -5,    /* tensor shapes do not fit together */
    SC_ERR_MPI = -6,      /* an MPI call failed */
    SC_ERR_H5 = -7,       /* an HDF5 call failed */
    SC_ERR_UNDEFINED = -8,/* a metric or map is undefined (constant map, empty mask) */
    SC_ERR_UNSUPPORTED = -9, /* a feature or operator salcheck does not implement */
    SC_ERR_INTERRUPTED = -10 /* a stop was requested (a signal): the work in progress is dropped */
} sc_err;

/* Human-readable name of an error code (static string, never NULL). */
const char *sc_strerror(int rc);

typedef enum sc_log_level { SC_LOG_DEBUG = 0, SC_LOG_INFO, SC_LOG_WARN, SC_LOG_ERROR } sc_log_level;

/* The logger is one of the two allowed globals: its rank tag and threshold. */
void sc_log_set_rank(int rank);
void sc_log_set_level(sc_log_level level);
void sc_log(sc_log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define SC_INFO(...) sc_log(SC_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define SC_WARN(...) sc_log(SC_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define SC_ERROR(...) sc_log(SC_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define SC_DEBUG(...) sc_log(SC_LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)

/* Set rc and jump to cleanup when `expr` is false. */
#define CHECK(expr, code, ...)                                                  \
    do {                                                                        \
        if (!(expr)) {                                                          \
            sc_log(SC_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__);              \
            rc = (code);                                                        \
            goto cleanup;                                                       \
        }                                                                       \
    } while (0)

/* Propagate a negative status from a callee (which already logged). */
#define CHECK_RC(call)                                                          \
    do {                                                                        \
        int check_rc_ = (call);                                                 \
        if (check_rc_ < 0) {                                                    \
            rc = check_rc_;                                                     \
            goto cleanup;                                                       \
        }                                                                       \
    } while (0)

#define CHECK_ALLOC(ptr)                                                        \
    do {                                                                        \
        if ((ptr) == NULL) {                                                    \
            sc_log(SC_LOG_ERROR, __FILE__, __LINE__, "out of memory: %s", #ptr);\
            rc = SC_ERR_NOMEM;                                                  \
            goto cleanup;                                                       \
        }                                                                       \
    } while (0)

/* Allocation helpers: zeroed, 64-byte aligned for the GEMM paths. Free with sc_free. */
void *sc_calloc(size_t count, size_t size);
void sc_free(void *ptr);

/* Wall clock in seconds (monotonic). */
double sc_now(void);

/*
 * Fault injection for the tests (tests/mpi/test_faults.sh): when the
 * environment variable SALCHECK_FAILPOINT is "NAME:INDEX" or
 * "NAME:INDEX@RANK" and names this point (and this process's logger rank),
 * the process kills itself with SIGKILL here, as a node failure would.
 * Points: "cell:Q" (cell Q = v*N+i written, its done flag not yet), "pair:P"
 * (pair P written), "summary:0" (part of /summary written), "modelprobe:0"
 * (the child reading a model file's structure, nn/modelfile_probe.c). Unset: one getenv.
 */
void sc_failpoint(const char *name, long index);

/*
 * mkdir -p: create `path` and its missing parents (existing folders are fine).
 * sc_mkdirs_parent does it for the folder of a file about to be written
 * ("a/b/c.h5" -> "a/b"; nothing for a bare name). Both log the failing folder
 * and return SC_ERR_IO.
 */
int sc_mkdirs(const char *path);
int sc_mkdirs_parent(const char *file);

#endif /* SC_H */
