/*
 * blas_core.h - OpenBLAS's kernel set checked against the CPU (module nn,
 * prefix nn_blas_core).
 *
 * Debian 12's OpenBLAS (0.3.21, DYNAMIC_ARCH) picks its GEMM kernels from the
 * CPU's model number. A CPU newer than the library (an Intel Xeon of family 6
 * model 207, for one) gets its generic "Prescott" SSE3 kernels: about a fifth
 * of the AVX-512 kernels' speed on the same CPU (bench/README.md), and every
 * convolution that salcheck leaves to OpenBLAS with it. The remedy is
 * OPENBLAS_CORETYPE, which OpenBLAS reads only when it is loaded, so a
 * process that finds the weaker choice restarts itself with the variable set.
 */
#ifndef NN_BLAS_CORE_H
#define NN_BLAS_CORE_H

/* The OpenBLAS core type this CPU should run ("Cooperlake" with AVX-512 and
 * BF16, "SkylakeX" with AVX-512, "Haswell" with AVX2 and FMA), or NULL when
 * OpenBLAS's own choice already uses the widest vectors the CPU has. */
const char *nn_blas_core_better(void);
/* The rule of nn_blas_core_better on given facts: OpenBLAS's core name and
 * what the CPU has (avx512: F, BW, DQ and VL; bf16: AVX512-BF16; avx2: AVX2
 * and FMA). */
const char *nn_blas_core_choose(const char *openblas_core, int avx512, int bf16, int avx2);

/*
 * When OPENBLAS_CORETYPE is unset and nn_blas_core_better() names a core,
 * re-execute this program (/proc/self/exe, same argv and environment) with
 * OPENBLAS_CORETYPE set to it; does not return then. Call first thing in
 * main(), before MPI_Init and before any thread starts. Returns when nothing
 * is to be done, after a restart, or when the restart failed (the process then
 * goes on with OpenBLAS's choice). SALCHECK_BLAS_CORE=keep turns it off.
 */
void nn_blas_core_restart(char **argv);

/* After nn_blas_core_restart: a one-line account of the restart ("OpenBLAS
 * chose its Prescott kernels ...; restarted with OPENBLAS_CORETYPE=...") in
 * msg and 1, or 0 when this process was not restarted. */
int nn_blas_core_note(char *msg, int msg_size);

#endif /* NN_BLAS_CORE_H */
