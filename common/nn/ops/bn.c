/*
 * ops/bn.c - batch normalization node (REFERENCE: Keras/PyTorch semantics).
 *
 * Owned by common/nn. Kernels in nn/bn.c. Inference uses the running
 * statistics; training mode normalizes with the batch statistics (reduced
 * across ranks by the model's bn_hook), saves them for backward and moves the
 * running statistics. The input is read channel by channel (nn_cview_bind),
 * so a concatenation without a buffer (nn/concat_view.h) feeds it directly.
 */
#include "nn/op.h"

#include <stdio.h>
#include <string.h>

#include "nn/concat_view.h"
#include "nn/memplan.h"
#include "sc.h"

int nn_add_bn(nn_model_t *m, const char *name, int in, float eps, float momentum, int scale,
              int center)
{
    nn_node_t a = {.eps = eps, .momentum = momentum, .bn_scale = scale, .bn_center = center};
    return nn_add_node(m, name, NN_BN, 1, &in, &a);
}

static int bn_infer(const nn_model_t *m, nn_node_t *nd)
{
    (void)m;
    if (nd->n_in != 1) {
        SC_ERROR("bn '%s': takes one input, not %d", nd->name, nd->n_in);
        return SC_ERR_SHAPE;
    }
    return 0;
}

static int bn_param_shape(const nn_model_t *m, const nn_node_t *nd, nn_param_kind k,
                          size_t dims[4])
{
    (void)m;
    dims[0] = (size_t)nd->c;
    switch (k) {
    case NN_P_GAMMA: return nd->bn_scale ? 1 : 0;
    case NN_P_BETA: return nd->bn_center ? 1 : 0;
    case NN_P_MEAN: case NN_P_VAR: return 1;
    default: return 0;
    }
}

static void fill(float *p, size_t count, float value)
{
    for (size_t i = 0; p && i < count; i++)
        p[i] = value;
}

static void bn_init(nn_model_t *m, int id, rng_stream_t *rs, int keep_bn_stats)
{
    size_t count;
    float *p;
    (void)rs;
    if ((p = nn_param(m, id, NN_P_GAMMA, &count)))
        fill(p, count, 1.0f);
    if ((p = nn_param(m, id, NN_P_BETA, &count)))
        memset(p, 0, sizeof(float) * count);
    if (!keep_bn_stats) {
        if ((p = nn_param(m, id, NN_P_MEAN, &count)))
            memset(p, 0, sizeof(float) * count);
        if ((p = nn_param(m, id, NN_P_VAR, &count)))
            fill(p, count, 1.0f);
    }
}

static int bn_prepare(nn_model_t *m, nn_node_t *nd, int max_batch)
{
    int rc = 0;
    (void)m;
    (void)max_batch;
    nd->bn_mean = sc_calloc((size_t)nd->c, sizeof(float));
    nd->bn_invstd = sc_calloc((size_t)nd->c, sizeof(float));
    CHECK_ALLOC(nd->bn_mean);
    CHECK_ALLOC(nd->bn_invstd);
cleanup:
    return rc;
}

static bn_params_t bn_params(nn_model_t *m, int id)
{
    nn_node_t *nd = &m->nodes[id];
    bn_params_t p = {.c = nd->c, .eps = nd->eps, .momentum = nd->momentum};
    p.gamma = nn_param(m, id, NN_P_GAMMA, NULL);
    p.beta = nn_param(m, id, NN_P_BETA, NULL);
    p.running_mean = nn_param(m, id, NN_P_MEAN, NULL);
    p.running_var = nn_param(m, id, NN_P_VAR, NULL);
    return p;
}

/* Per-channel input pointers, gradient pointers and steps (nn_cview_bind), in
 * the shared workspace: three arrays of c 8-byte entries. */
static size_t bn_workspace(const nn_model_t *m, const nn_node_t *nd)
{
    (void)m;
    return (size_t)nd->c * 3 * (sizeof(void *) / sizeof(float));
}

_Static_assert(sizeof(size_t) == sizeof(void *), "the step array shares the pointer slots");

static void bn_chan_arrays(nn_model_t *m, const nn_node_t *nd, const float ***x, float ***dx,
                           size_t **step)
{
    void **slots = (void **)m->workspace;
    *x = (const float **)slots;
    *dx = (float **)(slots + nd->c);
    *step = (size_t *)(slots + 2 * (size_t)nd->c);
}

static int bn_forward(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    bn_params_t p = bn_params(m, id);
    const float **xc;
    float **dxc;
    size_t *step;
    bn_chan_arrays(m, nd, &xc, &dxc, &step);
    nn_cview_bind(m, nd->in[0], xc, NULL, step, NULL);
    /* relu_fwd: the ReLU after it computes in place over this output (nn_model_prepare) */
    (nd->relu_fwd ? bn_relu_forward_infer : bn_forward_infer)(
        &p, n, nd->h * nd->w, &(bn_chans_t){xc, NULL, step}, nd->out);
    return 0;
}

static int bn_forward_training(nn_model_t *m, int id, int n)
{
    nn_node_t *nd = &m->nodes[id];
    bn_params_t p = bn_params(m, id);
    const float **xc;
    float **dxc;
    size_t *step;
    bn_chan_arrays(m, nd, &xc, &dxc, &step);
    nn_cview_bind(m, nd->in[0], xc, NULL, step, NULL);
    bn_forward_train(&p, n, nd->h * nd->w, &(bn_chans_t){xc, NULL, step}, nd->out, nd->bn_mean,
                     nd->bn_invstd, 1, m->bn_hook, m->bn_hook_ctx, m->scratch);
    if (nd->relu_fwd) /* the ReLU after it skips its forward (in place over this output) */
        relu_forward((size_t)n * nn_node_size(nd), nd->out, nd->out);
    return 0;
}

/* Backward through the running statistics (inference) or the batch statistics
 * the training forward saved (train). */
static int bn_backward_mode(nn_model_t *m, int id, int n, const nn_backward_opts_t *o, int train)
{
    nn_node_t *nd = &m->nodes[id];
    const int src_id = nd->in[0];
    bn_params_t p = bn_params(m, id);
    float *dg = o->param_grads ? nn_param_grad(m, id, NN_P_GAMMA) : NULL;
    float *db = o->param_grads ? nn_param_grad(m, id, NN_P_BETA) : NULL;
    int assign = 0;
    const float **xc;
    float **dxc;
    size_t *step;
    bn_chan_arrays(m, nd, &xc, &dxc, &step);
    const int want_dx = nn_wants_grad(src_id, o);
    nn_cview_bind(m, src_id, xc, want_dx ? dxc : NULL, step, &assign);
    const bn_chans_t x = {xc, want_dx ? dxc : NULL, step};
    if (train)
        bn_backward_train(&p, n, nd->h * nd->w, &x, nd->grad, nd->bn_mean, nd->bn_invstd, dg, db,
                          m->bn_hook, m->bn_hook_ctx, m->scratch, assign);
    else
        bn_backward_infer(&p, n, nd->h * nd->w, nd->grad, &x, dg, db, assign);
    return 0;
}

void nn_bn_infer_affine(nn_model_t *m, int id, float *scale, float *shift)
{
    const bn_params_t p = bn_params(m, id);
    bn_infer_affine(&p, scale, shift);
}

int nn_bn_relu_pair(const nn_model_t *m, int id)
{
    if (id < 2 || id >= m->n_nodes)
        return 0;
    const nn_node_t *nd = &m->nodes[id], *bn = &m->nodes[id - 1];
    if (nd->op != NN_RELU || nd->n_in != 1 || nd->in[0] != id - 1 || bn->op != NN_BN ||
        bn->n_in != 1 || bn->rank || nn_memplan_pinned_grad(m, id - 1))
        return 0;
    for (int j = id + 1; j < m->n_nodes; j++)
        for (int k = 0; k < m->nodes[j].n_in; k++)
            if (m->nodes[j].in[k] == id - 1)
                return 0;
    return 1;
}

int nn_bn_relu_backward(nn_model_t *m, int relu_id, int n, const nn_backward_opts_t *o,
                        int guided)
{
    const int id = relu_id - 1;
    nn_node_t *nd = &m->nodes[id];
    const nn_node_t *relu = &m->nodes[relu_id];
    const int src_id = nd->in[0];
    if (!nn_wants_grad(src_id, o))
        return 0;
    bn_params_t p = bn_params(m, id);
    int assign = 0;
    const float **xc;
    float **dxc;
    size_t *step;
    bn_chan_arrays(m, nd, &xc, &dxc, &step);
    nn_cview_bind(m, src_id, xc, dxc, step, &assign);
    bn_relu_backward_infer(&p, n, nd->h * nd->w, relu->out, relu->grad,
                           &(bn_chans_t){xc, dxc, step}, guided, assign);
    return 0;
}

static int bn_backward(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    return bn_backward_mode(m, id, n, o, 0);
}

static int bn_backward_training(nn_model_t *m, int id, int n, const nn_backward_opts_t *o)
{
    return bn_backward_mode(m, id, n, o, 1);
}

static double bn_flops(const nn_model_t *m, const nn_node_t *nd)
{
    (void)m;
    return 2.0 * (double)nn_node_size(nd); /* one multiply-add per value */
}

static void bn_write_attrs(const nn_node_t *nd, char *buf, size_t len)
{
    snprintf(buf, len, " eps=%.9g mom=%.9g scale=%d center=%d", nd->eps, nd->momentum,
             nd->bn_scale, nd->bn_center);
}

const nn_op_def_t nn_op_bn = {
    .name = "bn",
    .pc = NN_PC_BORROW,
    .sign = NN_SIGN_ANY,
    .infer = bn_infer,
    .param_shape = bn_param_shape,
    .init = bn_init,
    .workspace = bn_workspace,
    .prepare = bn_prepare,
    .forward = bn_forward,
    .forward_train = bn_forward_training,
    .backward = bn_backward,
    .backward_train = bn_backward_training,
    .flops = bn_flops,
    .write_attrs = bn_write_attrs,
    .bwd_reads = NN_READS_NOTHING | NN_READS_INPUTS_PARAM,
};
