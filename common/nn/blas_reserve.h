/*
 * blas_reserve.h - make OpenBLAS take its work buffer at start-up, while the
 * address space still has room (module nn, prefix nn_blas_).
 *
 * OpenBLAS (0.3.21, Debian 12) maps a 128 MB work buffer per BLAS thread on
 * its first GEMM and keeps it. When that mmap fails, because an address-space
 * limit (`ulimit -v`, RLIMIT_AS, Slurm's or a batch system's memory limit
 * enforced that way) is nearly used up, blas_memory_alloc retries the mmap in
 * an endless loop: the process spins at 100 % CPU with no message. A rank that
 * reached its first convolution after decoding a large image hung that way.
 */
#ifndef NN_BLAS_RESERVE_H
#define NN_BLAS_RESERVE_H

#include <stddef.h>

/* OpenBLAS's work buffer per thread on x86-64 (BUFFER_SIZE = 32 << 22 in its common_x86_64.h). */
#define NN_BLAS_BUFFER_BYTES ((size_t)128 << 20)

/*
 * Check that the address space has room for OpenBLAS's work buffers (one per
 * BLAS thread), then run one small GEMM so that OpenBLAS maps the calling
 * thread's buffer now; later GEMMs of that thread reuse it and never map
 * again (with OPENBLAS_NUM_THREADS=1, as salcheck runs, that is every GEMM;
 * further BLAS threads map theirs on their first GEMM, for which the check
 * only made sure the room was there at start-up). SC_ERR_NOMEM when there is no room,
 * with a one-line reason (the limit, what is in use, what is needed) in `why`;
 * not logged. Call once per process, before large allocations.
 */
int nn_blas_reserve(char *why, size_t why_size);

#endif /* NN_BLAS_RESERVE_H */
