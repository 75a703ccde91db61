/*
 * ops/concat_axis.c - concatenation of general tensors along one axis (ViT:
 * the class token before the patch tokens, Concat axis 1 of [1, 1, D] and
 * [1, L, D]). The channel concatenation of c x h x w maps stays ops/concat.c.
 *
 * Owned by common/nn. Inputs have equal shapes except along `axis`.
 */
#include "nn/op.h"

#include <stdio.h>
#include <string.h>

#include "sc.h"

static int concat_axis_infer(const nn_model_t *m, nn_node_t *nd)
{
    int out[NN_MAX_RANK] = {0};
    const int rank = nn_node_shape(&m->nodes[nd->in[0]], out);
    if (nd->axis < 0 || nd->axis >= rank) {
        SC_ERROR("concat_axis '%s': axis %d outside 0..%d", nd->name, nd->axis, rank - 1);
        return SC_ERR_SHAPE;
    }
    for (int k = 1; k < nd->n_in; k++) {
        int dims[NN_MAX_RANK] = {0};
        int r = nn_node_shape(&m->nodes[nd->in[k]], dims);
        int ok = r == rank;
        for (int d = 0; ok && d < rank; d++)
            ok = d == nd->axis || dims[d] == out[d];
        if (!ok) {
            SC_ERROR("concat_axis '%s': input %d differs in shape off axis %d", nd->name, k,
                     nd->axis);
            return SC_ERR_SHAPE;
        }
        out[nd->axis] += dims[nd->axis];
    }
    nn_set_dims(nd, rank, out);
    return 0;
}

/* outer blocks and the chunk of input k in each block (elements). */
static size_t concat_axis_outer(const nn_node_t *nd)
{
    int dims[NN_MAX_RANK] = {0};
    nn_node_shape(nd, dims);
    return nn_dims_count(nd->axis, dims);
}

static size_t concat_axis_chunk(const nn_model_t *m, const nn_node_t *nd, int k)
{
    return nn_node_size(&m->nodes[nd->in[k]]) / concat_axis_outer(nd);
}

static int concat_axis_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    const size_t outer = concat_axis_outer(nd), size = nn_node_size(nd);
    for (int b = 0; b < n; b++) {
        float *y = nd->out + (size_t)b * size;
        for (size_t o = 0; o < outer; o++) {
            for (int k = 0; k < nd->n_in; k++) {
                const size_t chunk = concat_axis_chunk(m, nd, k);
                const float *x = m->nodes[nd->in[k]].out + ((size_t)b * outer + o) * chunk;
                memcpy(y, x, sizeof(float) * chunk);
                y += chunk;
            }
        }
    }
    return 0;
}

static int concat_axis_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    nn_node_t *nd = &m->nodes[id];
    const size_t outer = concat_axis_outer(nd), size = nn_node_size(nd);
    for (int k = 0; k < nd->n_in; k++) {
        if (!nn_wants_grad(nd->in[k], o))
            continue;
        size_t before = 0;
        for (int j = 0; j < k; j++)
            before += concat_axis_chunk(m, nd, j);
        const size_t chunk = concat_axis_chunk(m, nd, k), step = size / outer;
        float *dx = nn_grad_acc(m, nd->in[k]);
        for (int b = 0; b < n; b++)
            for (size_t q = 0; q < outer; q++) {
                const float *dy = nd->grad + (size_t)b * size + q * step + before;
                float *d = dx + ((size_t)b * outer + q) * chunk;
                for (size_t i = 0; i < chunk; i++)
                    d[i] += dy[i];
            }
    }
    return 0;
}

static void concat_axis_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    snprintf(buf, len, " axis=%d", nd->axis);
}

const nn_op_def_t nn_op_concat_axis = {
    .name = "concat_axis",
    .pc = NN_PC_NONE,
    .sign = NN_SIGN_INPUTS,
    .infer = concat_axis_infer,
    .forward = concat_axis_forward,
    .backward = concat_axis_backward,
    .bwd_reads = NN_READS_NOTHING,
    .write_attrs = concat_axis_write_attrs,
};
