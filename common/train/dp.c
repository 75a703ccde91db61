/*
 * dp.c - data-parallel training helpers over MPI (dp.h).
 */
#include "train/dp.h"

#include <stdlib.h>
#include <string.h>

#include "sc.h"

struct dp_bn_ctx {
    MPI_Comm comm;
    double *buf; /* [2*max_c + 1]: sum, sumsq, count */
    int max_c;
    int mpi_error;
};

void dp_shard(int batch, int ranks, int rank, int *begin, int *end)
{
    *begin = (int)((long long)rank * batch / ranks);
    *end = (int)((long long)(rank + 1) * batch / ranks);
}

/* The bn_sums_hook_fn: one MPI_Allreduce of the packed per-channel sums and the count. */
static void bn_hook(double *sum, double *sumsq, int c, double *count, void *vctx)
{
    dp_bn_ctx_t *ctx = vctx;
    double *buf = ctx->buf;
    memcpy(buf, sum, sizeof(double) * (size_t)c);
    memcpy(buf + c, sumsq, sizeof(double) * (size_t)c);
    buf[2 * c] = *count;
    int err = MPI_Allreduce(MPI_IN_PLACE, buf, 2 * c + 1, MPI_DOUBLE, MPI_SUM, ctx->comm);
    if (err != MPI_SUCCESS) {
        ctx->mpi_error = err;
        return;
    }
    memcpy(sum, buf, sizeof(double) * (size_t)c);
    memcpy(sumsq, buf + c, sizeof(double) * (size_t)c);
    *count = buf[2 * c];
}

int dp_bn_hook_install(nn_model_t *m, MPI_Comm comm, dp_bn_ctx_t **out)
{
    int rc = 0, ranks = 1;
    dp_bn_ctx_t *ctx = NULL;
    *out = NULL;
    CHECK(MPI_Comm_size(comm, &ranks) == MPI_SUCCESS, SC_ERR_MPI, "MPI_Comm_size failed");
    if (ranks == 1)
        return 0;
    ctx = calloc(1, sizeof *ctx);
    CHECK_ALLOC(ctx);
    ctx->comm = comm;
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].op == NN_BN && m->nodes[i].c > ctx->max_c)
            ctx->max_c = m->nodes[i].c;
    ctx->buf = calloc((size_t)ctx->max_c * 2 + 1, sizeof(double));
    CHECK_ALLOC(ctx->buf);
    m->bn_hook = bn_hook;
    m->bn_hook_ctx = ctx;
    *out = ctx;
    ctx = NULL;
cleanup:
    if (ctx)
        free(ctx->buf);
    free(ctx);
    return rc;
}

void dp_bn_hook_remove(nn_model_t *m, dp_bn_ctx_t *ctx)
{
    if (m && m->bn_hook_ctx == ctx && ctx) {
        m->bn_hook = NULL;
        m->bn_hook_ctx = NULL;
    }
    if (ctx)
        free(ctx->buf);
    free(ctx);
}

int dp_bn_hook_error(const dp_bn_ctx_t *ctx) { return ctx ? ctx->mpi_error : 0; }

int dp_allreduce_grads(nn_model_t *m, MPI_Comm comm)
{
    int ranks = 1;
    MPI_Comm_size(comm, &ranks);
    if (ranks == 1)
        return 0;
    /* The slab may exceed INT_MAX floats only for models far larger than the zoo's. */
    size_t done = 0;
    while (done < m->n_params) {
        size_t part = m->n_params - done;
        if (part > (size_t)1 << 30)
            part = (size_t)1 << 30;
        if (MPI_Allreduce(MPI_IN_PLACE, m->grads + done, (int)part, MPI_FLOAT, MPI_SUM, comm) !=
            MPI_SUCCESS) {
            SC_ERROR("MPI_Allreduce of the gradients failed");
            return SC_ERR_MPI;
        }
        done += part;
    }
    return 0;
}

int dp_broadcast_params(nn_model_t *m, MPI_Comm comm)
{
    int ranks = 1;
    MPI_Comm_size(comm, &ranks);
    if (ranks == 1)
        return 0;
    size_t done = 0;
    while (done < m->n_params) {
        size_t part = m->n_params - done;
        if (part > (size_t)1 << 30)
            part = (size_t)1 << 30;
        if (MPI_Bcast(m->params + done, (int)part, MPI_FLOAT, 0, comm) != MPI_SUCCESS) {
            SC_ERROR("MPI_Bcast of the parameters failed");
            return SC_ERR_MPI;
        }
        done += part;
    }
    nn_model_params_changed(m);
    return 0;
}

int dp_agree(int rc, MPI_Comm comm)
{
    int all = rc;
    if (MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
        return SC_ERR_MPI;
    return all;
}
