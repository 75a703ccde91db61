/*
 * blas_core.c - OpenBLAS's kernel set checked against the CPU (blas_core.h).
 */
#include "nn/blas_core.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Set in the restarted process: the core OpenBLAS had chosen before. */
#define BLAS_CORE_WAS "SALCHECK_BLAS_CORE_WAS"

/* 2: AVX-512 kernels, 1: AVX2 kernels, 0: older or unknown. */
static int blas_core_level(const char *core)
{
    static const char *avx512[] = {"skylakex", "cooperlake", "sapphirerapids"};
    static const char *avx2[] = {"haswell", "zen", "skylake"};
    for (size_t i = 0; i < sizeof avx512 / sizeof avx512[0]; i++)
        if (!strcasecmp(core, avx512[i]))
            return 2;
    for (size_t i = 0; i < sizeof avx2 / sizeof avx2[0]; i++)
        if (!strcasecmp(core, avx2[i]))
            return 1;
    return 0;
}

const char *nn_blas_core_choose(const char *openblas_core, int avx512, int bf16, int avx2)
{
    const int have = openblas_core ? blas_core_level(openblas_core) : 0;
    if (avx512)
        return have >= 2 ? NULL : bf16 ? "Cooperlake" : "SkylakeX";
    if (avx2)
        return have >= 1 ? NULL : "Haswell";
    return NULL;
}

const char *nn_blas_core_better(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    return nn_blas_core_choose(openblas_get_corename(), avx512,
                               __builtin_cpu_supports("avx512bf16"),
                               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
#else
    return NULL;
#endif
}

void nn_blas_core_restart(char **argv)
{
    const char *pin = getenv("OPENBLAS_CORETYPE"), *off = getenv("SALCHECK_BLAS_CORE");
    if ((pin && *pin) || getenv(BLAS_CORE_WAS) || (off && !strcmp(off, "keep")))
        return;
    const char *want = nn_blas_core_better();
    if (!want)
        return;
    if (setenv(BLAS_CORE_WAS, openblas_get_corename(), 1) || setenv("OPENBLAS_CORETYPE", want, 1))
        return;
    fflush(NULL);
    execv("/proc/self/exe", argv);
    /* no restart: go on as loaded, with the environment as it was */
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv(BLAS_CORE_WAS);
}

int nn_blas_core_note(char *msg, int msg_size)
{
    const char *was = getenv(BLAS_CORE_WAS), *now = getenv("OPENBLAS_CORETYPE");
    if (!was || !now)
        return 0;
    snprintf(msg, (size_t)msg_size,
             "OpenBLAS does not know this CPU and chose its %s kernels; restarted with "
             "OPENBLAS_CORETYPE=%s (OpenBLAS now runs %s; set OPENBLAS_CORETYPE, or "
             "SALCHECK_BLAS_CORE=keep, to choose otherwise)",
             was, now, openblas_get_corename());
    return 1;
}
