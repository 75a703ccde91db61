/*
 * mpi_wait_cpu.c - how much of a rank's CPU time is spent waiting inside MPI
 * (bench/plan_check.sh; slurm/README.md, "How close it is").
 *
 * A library for LD_PRELOAD under mpirun, through MPI's profiling interface:
 * every blocking call a rank of `salcheck run` or `salcheck train` waits in
 * (probe, receive, wait, the collectives the run, training and parallel HDF5
 * call) is timed with the calling thread's CPU clock and forwarded to its
 * PMPI_ entry. Open MPI's progress loop polls while a call waits, so a rank
 * waiting for another one burns CPU for as long as the wait lasts: that CPU
 * time is the allocation's idle time, not work. MPI-IO data calls
 * (MPI_File_write_at...) are not wrapped: their time is the results file's
 * writes, which are work.
 *
 * At MPI_Finalize each rank appends one line to the file named by
 * SC_MPI_WAIT_LOG (stderr when unset):
 *   mpi-wait rank R of N: cpu S s, in MPI waits W s, calls C, wall T s
 * cpu is the whole process's CPU time (every thread) from MPI_Init on.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct mwc_state {
    double wait_cpu;  /* seconds of this thread's CPU inside the wrapped calls */
    long calls;
    int depth;        /* a wrapped call made inside another counts once */
    double cpu0, wall0;
} mwc_state_t;

/* The one piece of state of a preload library: it has no caller to hold it. */
static mwc_state_t mwc;

static double mwc_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double mwc_enter(void)
{
    return mwc.depth++ == 0 ? mwc_clock(CLOCK_THREAD_CPUTIME_ID) : 0.0;
}

static int mwc_leave(double t0, int rc)
{
    if (--mwc.depth == 0) {
        mwc.wait_cpu += mwc_clock(CLOCK_THREAD_CPUTIME_ID) - t0;
        mwc.calls++;
    }
    return rc;
}

#define MWC_WRAP(call) do { double t0_ = mwc_enter(); return mwc_leave(t0_, call); } while (0)

static void mwc_start(void)
{
    mwc.cpu0 = mwc_clock(CLOCK_PROCESS_CPUTIME_ID);
    mwc.wall0 = mwc_clock(CLOCK_MONOTONIC);
}

int MPI_Init(int *argc, char ***argv)
{
    int rc = PMPI_Init(argc, argv);
    mwc_start();
    return rc;
}

int MPI_Init_thread(int *argc, char ***argv, int required, int *provided)
{
    int rc = PMPI_Init_thread(argc, argv, required, provided);
    mwc_start();
    return rc;
}

int MPI_Finalize(void)
{
    int rank = 0, size = 1;
    PMPI_Comm_rank(MPI_COMM_WORLD, &rank);
    PMPI_Comm_size(MPI_COMM_WORLD, &size);
    double cpu = mwc_clock(CLOCK_PROCESS_CPUTIME_ID) - mwc.cpu0;
    double wall = mwc_clock(CLOCK_MONOTONIC) - mwc.wall0;
    const char *path = getenv("SC_MPI_WAIT_LOG");
    FILE *f = path && *path ? fopen(path, "a") : NULL;
    fprintf(f ? f : stderr, "mpi-wait rank %d of %d: cpu %.3f s, in MPI waits %.3f s, calls %ld, wall %.3f s\n",
            rank, size, cpu, mwc.wait_cpu, mwc.calls, wall);
    if (f)
        fclose(f);
    return PMPI_Finalize();
}

int MPI_Probe(int source, int tag, MPI_Comm comm, MPI_Status *status)
{
    MWC_WRAP(PMPI_Probe(source, tag, comm, status));
}

int MPI_Iprobe(int source, int tag, MPI_Comm comm, int *flag, MPI_Status *status)
{
    MWC_WRAP(PMPI_Iprobe(source, tag, comm, flag, status));
}

int MPI_Recv(void *buf, int count, MPI_Datatype type, int source, int tag, MPI_Comm comm,
             MPI_Status *status)
{
    MWC_WRAP(PMPI_Recv(buf, count, type, source, tag, comm, status));
}

int MPI_Send(const void *buf, int count, MPI_Datatype type, int dest, int tag, MPI_Comm comm)
{
    MWC_WRAP(PMPI_Send(buf, count, type, dest, tag, comm));
}

int MPI_Wait(MPI_Request *request, MPI_Status *status)
{
    MWC_WRAP(PMPI_Wait(request, status));
}

int MPI_Waitall(int count, MPI_Request requests[], MPI_Status statuses[])
{
    MWC_WRAP(PMPI_Waitall(count, requests, statuses));
}

int MPI_Barrier(MPI_Comm comm)
{
    MWC_WRAP(PMPI_Barrier(comm));
}

int MPI_Bcast(void *buf, int count, MPI_Datatype type, int root, MPI_Comm comm)
{
    MWC_WRAP(PMPI_Bcast(buf, count, type, root, comm));
}

int MPI_Reduce(const void *sbuf, void *rbuf, int count, MPI_Datatype type, MPI_Op op, int root,
               MPI_Comm comm)
{
    MWC_WRAP(PMPI_Reduce(sbuf, rbuf, count, type, op, root, comm));
}

int MPI_Allreduce(const void *sbuf, void *rbuf, int count, MPI_Datatype type, MPI_Op op,
                  MPI_Comm comm)
{
    MWC_WRAP(PMPI_Allreduce(sbuf, rbuf, count, type, op, comm));
}

int MPI_Gather(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount,
               MPI_Datatype rtype, int root, MPI_Comm comm)
{
    MWC_WRAP(PMPI_Gather(sbuf, scount, stype, rbuf, rcount, rtype, root, comm));
}

int MPI_Allgather(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount,
                  MPI_Datatype rtype, MPI_Comm comm)
{
    MWC_WRAP(PMPI_Allgather(sbuf, scount, stype, rbuf, rcount, rtype, comm));
}

int MPI_Gatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, const int rcounts[],
                const int displs[], MPI_Datatype rtype, int root, MPI_Comm comm)
{
    MWC_WRAP(PMPI_Gatherv(sbuf, scount, stype, rbuf, rcounts, displs, rtype, root, comm));
}

int MPI_Allgatherv(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf,
                   const int rcounts[], const int displs[], MPI_Datatype rtype, MPI_Comm comm)
{
    MWC_WRAP(PMPI_Allgatherv(sbuf, scount, stype, rbuf, rcounts, displs, rtype, comm));
}

int MPI_Scatter(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount,
                MPI_Datatype rtype, int root, MPI_Comm comm)
{
    MWC_WRAP(PMPI_Scatter(sbuf, scount, stype, rbuf, rcount, rtype, root, comm));
}

int MPI_Alltoall(const void *sbuf, int scount, MPI_Datatype stype, void *rbuf, int rcount,
                 MPI_Datatype rtype, MPI_Comm comm)
{
    MWC_WRAP(PMPI_Alltoall(sbuf, scount, stype, rbuf, rcount, rtype, comm));
}
