/*
 * sc.c - logger, error strings, aligned allocation and clock (see sc.h).
 */

#include "sc.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <sys/stat.h>

static int g_log_rank = -1;
static sc_log_level g_log_level = SC_LOG_INFO;

void sc_log_set_rank(int rank) { g_log_rank = rank; }
void sc_log_set_level(sc_log_level level) { g_log_level = level; }

const char *sc_strerror(int rc)
{
    switch (rc) {
    case SC_OK: return "ok";
    case SC_ERR_NOMEM: return "out of memory";
    case SC_ERR_ARG: return "invalid argument";
    case SC_ERR_IO: return "I/O error";
    case SC_ERR_FORMAT: return "malformed input";
    case SC_ERR_SHAPE: return "shape mismatch";
    case SC_ERR_MPI: return "MPI error";
    case SC_ERR_H5: return "HDF5 error";
    case SC_ERR_UNDEFINED: return "undefined value";
    case SC_ERR_UNSUPPORTED: return "unsupported";
    case SC_ERR_INTERRUPTED: return "interrupted";
    default: return "unknown error";
    }
}

void sc_log(sc_log_level level, const char *file, int line, const char *fmt, ...)
{
    if (level < g_log_level)
        return;
    static const char *names[] = {"debug", "info", "warning", "error"};
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char rank[32] = "";
    if (g_log_rank >= 0)
        snprintf(rank, sizeof rank, "[rank %d] ", g_log_rank);
    if (level >= SC_LOG_WARN || level == SC_LOG_DEBUG) {
        const char *base = strrchr(file, '/');
        fprintf(stderr, "salcheck: %s%s: %s (%s:%d)\n", rank, names[level], msg,
                base ? base + 1 : file, line);
    } else {
        fprintf(stderr, "salcheck: %s%s\n", rank, msg);
    }
}

void *sc_calloc(size_t count, size_t size)
{
    if (count == 0 || size == 0)
        count = size = 1;
    if (count > SIZE_MAX / size)
        return NULL;
    size_t bytes = count * size;
    bytes = (bytes + 63) & ~(size_t)63;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0)
        return NULL;
    memset(p, 0, bytes);
    return p;
}

void sc_free(void *ptr) { free(ptr); }

double sc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void sc_failpoint(const char *name, long index)
{
    const char *spec = getenv("SALCHECK_FAILPOINT");
    if (!spec || !*spec)
        return;
    char want[160];
    snprintf(want, sizeof want, "%s:%ld", name, index);
    size_t n = strlen(want);
    if (strncmp(spec, want, n) != 0 || (spec[n] != 0 && spec[n] != '@'))
        return;
    if (spec[n] == '@' && atoi(spec + n + 1) != (g_log_rank < 0 ? 0 : g_log_rank))
        return;
    fprintf(stderr, "salcheck: failpoint %s: killed\n", spec);
    raise(SIGKILL);
}

int sc_mkdirs(const char *path)
{
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "%s", path);
    if (n <= 0 || (size_t)n >= sizeof buf) {
        SC_ERROR("cannot create directory '%s': name too long", path);
        return SC_ERR_IO;
    }
    for (char *p = buf + 1;; p++) {
        if (*p && *p != '/')
            continue;
        char c = *p;
        *p = '\0';
        struct stat st;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            SC_ERROR("cannot create directory '%s': %s", buf, strerror(errno));
            return SC_ERR_IO;
        }
        if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
            SC_ERROR("cannot create directory '%s': a file of that name is in the way", buf);
            return SC_ERR_IO;
        }
        *p = c;
        if (!c)
            break;
        while (p[1] == '/')
            p++;
    }
    return SC_OK;
}

int sc_mkdirs_parent(const char *file)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", file);
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf)
        return SC_OK;
    *slash = '\0';
    return sc_mkdirs(buf);
}
