/*
 * main.c - the salcheck binary: MPI start-up and subcommand dispatch.
 */
#include <cblas.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "nn/blas_core.h"
#include "nn/blas_reserve.h"
#include "sc.h"

typedef struct subcommand {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} subcommand_t;

static void usage(const subcommand_t *cmds, int count)
{
    fprintf(stderr, "salcheck %s - sanity checks for saliency maps of chest X-ray classifiers\n\n"
                    "usage: salcheck <command> [options]   (as 1 process or under mpirun/srun)\n\n",
            SALCHECK_VERSION);
    for (int i = 0; i < count; i++)
        fprintf(stderr, "  %-8s %s%s\n", cmds[i].name, cmds[i].summary,
                cmds[i].fn ? "" : "  [not in this build yet]");
    fprintf(stderr, "\n'salcheck <command> --help' describes a command's options.\n");
}

/*
 * OPENBLAS_CORETYPE overrides OpenBLAS's choice of GEMM kernels. Pinned to an
 * AVX2 kernel set on a CPU with AVX-512, every convolution runs at about half
 * speed (bench/README.md); say so once, since nothing else would show it.
 */
static void note_blas_kernels(void)
{
    char restarted[512];
    if (nn_blas_core_note(restarted, sizeof restarted)) {
        SC_INFO("%s", restarted);
        return;
    }
    const char *pin = getenv("OPENBLAS_CORETYPE");
    if (!pin || !*pin || !__builtin_cpu_supports("avx512f"))
        return;
    const char *avx512[] = {"skylakex", "cooperlake", "sapphirerapids", "zen4"};
    for (size_t i = 0; i < sizeof avx512 / sizeof avx512[0]; i++)
        if (!strcasecmp(pin, avx512[i]))
            return;
    SC_WARN("OPENBLAS_CORETYPE=%s pins OpenBLAS to its %s kernels, but this CPU has AVX-512: GEMMs "
            "may run at half speed; unset OPENBLAS_CORETYPE unless the pin is deliberate", pin,
            openblas_get_corename());
}

int main(int argc, char **argv)
{
    const subcommand_t cmds[] = {
        {"phantom", cmd_phantom, "write a synthetic chest radiograph data set with exact ground truth"},
        {"train", cmd_train, "train a classifier (data-parallel over MPI ranks)"},
        {"run", cmd_run, "run an audit job file into one HDF5 results file"},
        {"explain", cmd_explain, "explain one image with one or more saliency methods"},
        {"report", cmd_report, "tables, figures and an HTML page from a results file"},
        {"import", cmd_import, "convert an ONNX model into a salcheck model file"},
        {"info", cmd_info, "describe a results or model file"},
    };
    const int count = (int)(sizeof cmds / sizeof cmds[0]);

    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(cmds, count);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--blas-core")) { /* the OPENBLAS_CORETYPE a restart would set, or nothing */
        const char *core = nn_blas_core_better();
        if (core)
            printf("%s\n", core);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("salcheck %s\n", SALCHECK_VERSION);
        return 0;
    }
    const subcommand_t *cmd = NULL;
    for (int i = 0; i < count; i++)
        if (!strcmp(argv[1], cmds[i].name))
            cmd = &cmds[i];
    if (!cmd) {
        fprintf(stderr, "salcheck: unknown command '%s'\n\n", argv[1]);
        usage(cmds, count);
        return 2;
    }
    if (!cmd->fn) {
        fprintf(stderr, "salcheck: the '%s' command is not part of this build yet\n", cmd->name);
        return 2;
    }

    /* before MPI_Init and any thread: OpenBLAS's kernels are fixed at load time */
    if (cmd->fn == cmd_run || cmd->fn == cmd_train || cmd->fn == cmd_explain)
        nn_blas_core_restart(argv);
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size > 1)
        sc_log_set_rank(rank);
    int help = 0;
    for (int i = 2; i < argc; i++)
        help |= !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
    int computes = !help && (cmd->fn == cmd_run || cmd->fn == cmd_train || cmd->fn == cmd_explain);
    if (rank == 0 && computes)
        note_blas_kernels();
    if (computes) {
        /* OpenBLAS spins forever when it cannot map its buffer later (blas_reserve.h). */
        char why[512];
        int ok = nn_blas_reserve(why, sizeof why) == SC_OK, all_ok = ok;
        if (!ok)
            SC_ERROR("%s", why);
        MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
        if (!all_ok) {
            MPI_Finalize();
            return 1;
        }
    }
    int rc = cmd->fn(argc - 1, argv + 1);
    if (rc != CLI_OK && rc != CLI_FAIL_ALL && rc != CLI_INTERRUPTED && size > 1) {
        /* A rank that failed alone must not leave the others waiting in a collective. */
        fprintf(stderr, "salcheck: rank %d failed; stopping all ranks\n", rank);
        MPI_Abort(MPI_COMM_WORLD, CLI_FAIL_RANK);
    }
    MPI_Finalize();
    return rc == CLI_OK ? 0 : rc == CLI_INTERRUPTED ? CLI_INTERRUPTED : 1;
}
