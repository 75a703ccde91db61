/*
 * ops/bcast_add.c - y = x + P with a stored tensor P broadcast over the axes
 * where it has size 1 (numpy rules at equal rank): Swin's relative position
 * bias [1, heads, L, L] added to the attention scores of every window, and
 * its shifted-window mask [1, windows, 1, L, L] added to every head.
 *
 * Owned by common/nn. P's shape is the node's perm attribute (one entry per
 * axis of the input's general shape, each 1 or the input's size). With
 * has_bias = 1, P is a weight (NN_P_BIAS: trained, and re-initialized by
 * cascading randomization, normal with standard deviation 0.02 as
 * torchvision draws the bias table); with has_bias = 0 it is a fixed
 * constant the importer computed (NN_P_MEAN: never trained nor
 * re-initialized, like batch-norm statistics). Backward: dx = dy; dP sums
 * dy over the broadcast axes and the samples.
 */
#include "nn/op.h"

#include <stdio.h>
#include <string.h>

#include "sc.h"

static nn_param_kind bcast_kind(const nn_node_t *nd)
{
    return nd->has_bias ? NN_P_BIAS : NN_P_MEAN;
}

/* Rank of the input's general shape; dims filled, and P's strides (0 on broadcast axes). */
static int bcast_geometry(const nn_model_t *m, const nn_node_t *nd, int dims[NN_MAX_RANK],
                          size_t stride[NN_MAX_RANK])
{
    const int rank = nn_node_shape(&m->nodes[nd->in[0]], dims);
    size_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        stride[d] = nd->perm[d] == 1 ? 0 : s;
        s *= (size_t)nd->perm[d];
    }
    return rank;
}

static int bcast_add_infer(const nn_model_t *m, nn_node_t *nd)
{
    int dims[NN_MAX_RANK] = {0};
    const int rank = nn_node_shape(&m->nodes[nd->in[0]], dims);
    for (int d = 0; d < rank; d++) {
        if (nd->perm[d] != 1 && nd->perm[d] != dims[d]) {
            SC_ERROR("bcast_add '%s': the tensor's axis %d (%d) neither 1 nor the input's %d",
                     nd->name, d, nd->perm[d], dims[d]);
            return SC_ERR_SHAPE;
        }
    }
    for (int d = rank; d < NN_MAX_RANK; d++)
        nd->perm[d] = 0;
    nn_set_dims(nd, rank, dims);
    return 0;
}

static int bcast_add_param_shape(const nn_model_t *m, const nn_node_t *nd, nn_param_kind k,
                                 size_t dims[4])
{
    if (k != bcast_kind(nd))
        return 0;
    int in_dims[NN_MAX_RANK];
    const int rank = nn_node_shape(&m->nodes[nd->in[0]], in_dims);
    dims[0] = nn_dims_count(rank, nd->perm); /* stored flat; the shape is the perm attribute */
    return 1;
}

static void bcast_add_init(nn_model_t *m, int id, rng_stream_t *rs, int keep_bn_stats)
{
    (void)keep_bn_stats;
    if (!m->nodes[id].has_bias)
        return; /* a fixed constant of the model (the attention mask) */
    size_t count;
    float *P = nn_param(m, id, NN_P_BIAS, &count);
    for (size_t i = 0; i < count; i++)
        P[i] = (float)(0.02 * rng_stream_normal(rs));
}

static int bcast_add_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    int dims[NN_MAX_RANK] = {0};
    size_t stride[NN_MAX_RANK];
    const int rank = bcast_geometry(m, nd, dims, stride);
    const size_t size = nn_node_size(nd);
    const float *P = nn_param(m, id, bcast_kind(nd), NULL);
    for (int b = 0; b < n; b++) {
        const float *x = m->nodes[nd->in[0]].out + (size_t)b * size;
        float *y = nd->out + (size_t)b * size;
        NN_STRIDED_WALK(size, rank, dims, stride, y[k] = x[k] + P[at]);
    }
    return 0;
}

static int bcast_add_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    const size_t size = nn_node_size(nd);
    if (nn_wants_grad(nd->in[0], o))
        nn_grad_pass_through(m, nd->in[0], nd->grad, (size_t)n * size);
    float *dP = o->param_grads && nd->has_bias ? nn_param_grad(m, id, NN_P_BIAS) : NULL;
    if (!dP)
        return 0;
    int dims[NN_MAX_RANK] = {0};
    size_t stride[NN_MAX_RANK];
    const int rank = bcast_geometry(m, nd, dims, stride);
    for (int b = 0; b < n; b++) {
        const float *dy = nd->grad + (size_t)b * size;
        NN_STRIDED_WALK(size, rank, dims, stride, dP[at] += dy[k]);
    }
    return 0;
}

static double bcast_add_flops(const nn_model_t *m, const nn_node_t *nd)
{
    (void)m;
    return (double)nn_node_size(nd);
}

static void bcast_add_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    int rank = 0;
    while (rank < NN_MAX_RANK && nd->perm[rank] > 0)
        rank++;
    nn_write_dims("perm", rank, nd->perm, buf, len);
    size_t used = strlen(buf);
    if (used < len)
        snprintf(buf + used, len - used, " bias=%d", nd->has_bias);
}

const nn_op_def_t nn_op_bcast_add = {
    .name = "bcast_add",
    .pc = NN_PC_NONE,
    .sign = NN_SIGN_ANY,
    .infer = bcast_add_infer,
    .param_shape = bcast_add_param_shape,
    .init = bcast_add_init,
    .forward = bcast_add_forward,
    .backward = bcast_add_backward,
    .flops = bcast_add_flops,
    .bwd_reads = NN_READS_NOTHING,
    .inplace = 1,
    .write_attrs = bcast_add_write_attrs,
};
