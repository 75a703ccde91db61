/*
 * blas_reserve.c - OpenBLAS's work buffer taken at start-up (see blas_reserve.h).
 */
#include "nn/blas_reserve.h"

#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "sc.h"

/* Bytes of address space this process maps now (VmSize), or 0 when unknown. */
static size_t blas_vm_size(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb << 10;
}

int nn_blas_reserve(char *why, size_t why_size)
{
    int threads = openblas_get_num_threads();
    if (threads < 1)
        threads = 1;
    size_t need = NN_BLAS_BUFFER_BYTES * (size_t)threads;
    /* The same kind of mapping OpenBLAS makes: if this fails, its own would spin. */
    void *probe = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (probe == MAP_FAILED) {
        int err = errno;
        struct rlimit lim;
        if (getrlimit(RLIMIT_AS, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
            snprintf(why, why_size,
                     "the address-space limit (ulimit -v %llu kB) leaves no room for OpenBLAS's work "
                     "buffer: %zu MB mapped, %zu MB more needed (%d BLAS thread%s x %zu MB). Raise the "
                     "limit (ulimit -v, or the memory the batch system grants per task) or use fewer "
                     "BLAS threads (OPENBLAS_NUM_THREADS)",
                     (unsigned long long)(lim.rlim_cur >> 10), blas_vm_size() >> 20, need >> 20, threads,
                     threads == 1 ? "" : "s", NN_BLAS_BUFFER_BYTES >> 20);
        else
            snprintf(why, why_size, "cannot map OpenBLAS's %zu MB work buffer: %s", need >> 20, strerror(err));
        return SC_ERR_NOMEM;
    }
    munmap(probe, need);
    /* One GEMM large enough to take OpenBLAS's blocked path (its small-matrix
     * kernels use no buffer): it maps the buffer for this thread now and keeps it. */
    enum { n = 96 };
    float *abc = sc_calloc((size_t)3 * n * n, sizeof *abc);
    if (!abc) {
        snprintf(why, why_size, "out of memory before the first GEMM");
        return SC_ERR_NOMEM;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, abc, n, abc + n * n, n, 0.0f,
                abc + 2 * n * n, n);
    sc_free(abc);
    return SC_OK;
}
