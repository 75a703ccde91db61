/*
 * standin_salcheck.c - a stand-in for `salcheck run` and `salcheck train` in
 * the slurm test tier, until the real commands exist.
 *
 * It keeps the contract that slurm/audit.sbatch relies on (slurm/README.md):
 *   standin run JOB.ini --out FILE [--resume]
 *     JOB.ini holds `items = N` and `item_ms = T` (the environment variable
 *     STANDIN_ITEM_MS overrides T: it sets the pace, not the results). The
 *     ranks work through the items in rounds (item k of the to-do list goes
 *     to rank k % size); each item takes T ms and yields a value that
 *     depends on the item only. After
 *     every round rank 0 appends "item <i> value <v>" lines to FILE and
 *     flushes them to disk (data before the next item). Without --resume an
 *     existing FILE is an error; with --resume the items already in FILE are
 *     skipped. On SIGUSR1 or SIGTERM the ranks finish the current round,
 *     flush, agree (MPI_Allreduce) and exit with status 3 (interrupted,
 *     resumable). A complete run exits 0; errors exit 1.
 *   standin train [options] --seed S --labels MODE --out FILE
 *     writes one line naming the seed, label mode and rank count to FILE
 *     (other options are ignored).
 * So an interrupted and resumed run ends with the same items and values as
 * an uninterrupted one, whatever the rank count, like `salcheck run --resume`.
 * Built by tests/slurm/test_slurm.sh with mpicc; not part of salcheck.
 */
#include <errno.h>
#include <mpi.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_INTERRUPTED = 3 };

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int signo)
{
    stop_requested = signo;
}

/* Sleep for ms milliseconds even when a signal arrives: an item is finished. */
static void work_for(long ms)
{
    struct timespec left = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&left, &left) == -1 && errno == EINTR) {
    }
}

/* The result of item i: depends on the item only (not on rank or order). */
static uint32_t item_value(uint32_t i)
{
    uint32_t x = i * 2654435761u + 0x9e3779b9u;
    x ^= x >> 16;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    return x;
}

static int read_job(const char *path, int *items, long *item_ms)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "standin: cannot open job file %s\n", path);
        return -1;
    }
    char line[256];
    while (fgets(line, sizeof line, f)) {
        sscanf(line, " items = %d", items);
        sscanf(line, " item_ms = %ld", item_ms);
    }
    fclose(f);
    if (*items <= 0 || *item_ms < 0) {
        fprintf(stderr, "standin: %s needs items = N (N > 0) and item_ms = T\n", path);
        return -1;
    }
    return 0;
}

/* Rank 0: mark the items already in out (resume). Returns the count, -1 on error. */
static int read_done(const char *out, int items, unsigned char *done)
{
    FILE *f = fopen(out, "r");
    if (!f)
        return 0;
    int count = 0, item;
    unsigned value;
    char line[128];
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "item %d value %u", &item, &value) != 2 || item < 0 || item >= items) {
            fprintf(stderr, "standin: %s: unexpected line: %s", out, line);
            fclose(f);
            return -1;
        }
        if (item_value((uint32_t)item) != value) {
            fprintf(stderr, "standin: %s: item %d has a wrong value\n", out, item);
            fclose(f);
            return -1;
        }
        if (!done[item])
            count++;
        done[item] = 1;
    }
    fclose(f);
    return count;
}

static int cmd_run(int argc, char **argv, int rank, int size)
{
    const char *job = NULL, *out = NULL;
    int resume = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc)
            out = argv[++i];
        else if (!strcmp(argv[i], "--resume"))
            resume = 1;
        else if (!job)
            job = argv[i];
    }
    int items = 0;
    long item_ms = 0;
    if (!job || !out) {
        if (rank == 0)
            fprintf(stderr, "standin: usage: run JOB.ini --out FILE [--resume]\n");
        return EXIT_FAIL;
    }
    if (read_job(job, &items, &item_ms) != 0)
        return EXIT_FAIL;
    const char *pace = getenv("STANDIN_ITEM_MS");
    if (pace && *pace)
        item_ms = atol(pace);

    unsigned char *done = calloc((size_t)items, 1);
    int *todo = malloc(sizeof(int) * (size_t)items);
    uint32_t *values = malloc(sizeof(uint32_t) * (size_t)size);
    int status = 0, already = 0;
    if (!done || !todo || !values) {
        fprintf(stderr, "standin: out of memory\n");
        status = -1;
    }
    if (status == 0 && rank == 0) {
        if (!resume && access(out, F_OK) == 0) {
            fprintf(stderr, "standin: %s exists; pass --resume to continue it\n", out);
            status = -1;
        } else if (resume) {
            already = read_done(out, items, done);
            if (already < 0)
                status = -1;
        }
    }
    MPI_Allreduce(MPI_IN_PLACE, &status, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (status != 0) {
        free(done);
        free(todo);
        free(values);
        return EXIT_FAIL;
    }
    MPI_Bcast(done, items, MPI_UNSIGNED_CHAR, 0, MPI_COMM_WORLD);
    int ntodo = 0;
    for (int i = 0; i < items; i++)
        if (!done[i])
            todo[ntodo++] = i;
    if (rank == 0)
        fprintf(stderr, "standin: run %s on %d ranks: %d items, %d already done%s\n", job, size,
                items, items - ntodo, resume ? " (resume)" : "");

    FILE *f = NULL;
    if (rank == 0 && !(f = fopen(out, "a"))) {
        fprintf(stderr, "standin: cannot write %s\n", out);
        status = -1;
    }
    MPI_Allreduce(MPI_IN_PLACE, &status, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    int next = 0, interrupted = 0;
    while (status == 0 && next < ntodo) {
        uint32_t mine = UINT32_MAX;
        if (next + rank < ntodo) {
            work_for(item_ms);
            mine = item_value((uint32_t)todo[next + rank]);
        }
        MPI_Gather(&mine, 1, MPI_UINT32_T, values, 1, MPI_UINT32_T, 0, MPI_COMM_WORLD);
        if (rank == 0) {
            for (int r = 0; r < size && next + r < ntodo; r++)
                fprintf(f, "item %d value %u\n", todo[next + r], values[r]);
            fflush(f);
            fsync(fileno(f));
        }
        next += size;
        int stop = stop_requested != 0;
        MPI_Allreduce(MPI_IN_PLACE, &stop, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        if (stop && next < ntodo) {
            interrupted = 1;
            break;
        }
    }
    if (f)
        fclose(f);
    int written = next < ntodo ? next : ntodo;
    if (rank == 0 && status == 0) {
        if (interrupted)
            fprintf(stderr, "standin: interrupted by signal %d after %d of %d items; resumable\n",
                    (int)stop_requested, items - ntodo + written, items);
        else
            fprintf(stderr, "standin: complete: %d items\n", items);
    }
    free(done);
    free(todo);
    free(values);
    if (status != 0)
        return EXIT_FAIL;
    return interrupted ? EXIT_INTERRUPTED : EXIT_OK;
}

static int cmd_train(int argc, char **argv, int rank, int size)
{
    const char *seed = "?", *labels = "?", *out = NULL;
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--seed"))
            seed = argv[++i];
        else if (!strcmp(argv[i], "--labels"))
            labels = argv[++i];
        else if (!strcmp(argv[i], "--out"))
            out = argv[++i];
    }
    if (!out) {
        if (rank == 0)
            fprintf(stderr, "standin: usage: train [options] --seed S --labels MODE --out FILE\n");
        return EXIT_FAIL;
    }
    int status = 0;
    if (rank == 0) {
        FILE *f = fopen(out, "w");
        if (!f || fprintf(f, "model seed %s labels %s ranks %d\n", seed, labels, size) < 0)
            status = -1;
        if (f && fclose(f) != 0)
            status = -1;
        if (status != 0)
            fprintf(stderr, "standin: cannot write %s\n", out);
    }
    MPI_Allreduce(MPI_IN_PLACE, &status, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return status == 0 ? EXIT_OK : EXIT_FAIL;
}

int main(int argc, char **argv)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (argc < 2) {
        fprintf(stderr, "standin: usage: run|train ...\n");
        return EXIT_FAIL;
    }
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int rc = EXIT_FAIL;
    if (!strcmp(argv[1], "run"))
        rc = cmd_run(argc - 1, argv + 1, rank, size);
    else if (!strcmp(argv[1], "train"))
        rc = cmd_train(argc - 1, argv + 1, rank, size);
    else if (rank == 0)
        fprintf(stderr, "standin: unknown command %s\n", argv[1]);
    MPI_Finalize();
    return rc;
}
