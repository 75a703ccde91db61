/*
 * sal_deeplift.c - DeepLIFT with the Rescale rule (Shrikumar et al., ICML
 * 2017; docs/methods.md section 4), with the semantics of Captum's DeepLift:
 * attribution = (x - x0) * m, where m is the gradient of the explained logit
 * with every nonlinearity's local derivative replaced by a multiplier
 * computed from a forward pass of x and one of the reference x0:
 *   ReLU, sigmoid   m_in = m_out (y - y0) / (x - x0); where |x - x0| < 1e-10
 *                   the ordinary derivative at x (Captum's eps);
 *   max pooling     with M = max(y, y0): U = unpool_x(m_out (M - y0)) +
 *                   unpool_x0(m_out (y - M)) (each to its own argmax, as
 *                   torch's max_unpool2d writes: with overlapping windows
 *                   the last window sharing an argmax wins, so summation to
 *                   delta holds only for non-overlapping pools);
 *                   m_in = U / (x - x0), the ordinary gradient where
 *                   |x - x0| < 1e-10;
 *   linear layers   (conv, dense, batch norm, average pooling, add, concat,
 *                   flatten) their gradient.
 * Other nonlinear node kinds (SiLU, GELU, ...) have no rule here (Captum
 * leaves them to plain gradients): an error naming the node. The reference
 * x0 is deeplift.baseline (black under the model's normalization by default,
 * as the paper's IG; Captum's default is zeros: deeplift.baseline = value).
 * Raw map [C,H,W], signed; cost two forward passes and one backward walk,
 * 3 gradient evaluations for the scheduler (measured 2.7 on DenseNet-121,
 * bench/README-saliency.md).
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include <math.h>
#include <string.h>

#include "saliency/relprop.h"
#include "saliency/saliency.h"
#include "sc.h"

#define DL_EPS 1e-10

static double deeplift_cost(const sal_params_t *p, int h, int w) { return 3.0; }

typedef struct dl_walk {
    rp_ws_t *w;
    nn_model_t *m;
} dl_walk_t;

static const float *base_of(const dl_walk_t *k, int id) { return k->w->base_out + k->w->off[id]; }

/*
 * Captum's unpooling (torch max_unpool2d): each output's value is WRITTEN to
 * its argmax, so where overlapping windows (3x3 stride 2) share an argmax the
 * last window in raster order wins instead of the two adding up; dst += that
 * scatter (tmp: zeroed scratch of dst's size).
 */
static void unpool_add(const pool_shape_t *s, const float *src, const int32_t *argmax, float *dst,
                       float *tmp)
{
    const size_t in_plane = (size_t)s->h * s->w, out_plane = (size_t)s->oh * s->ow;
    for (int c = 0; c < s->c; c++)
        for (size_t k = 0; k < out_plane; k++) {
            const int32_t a = argmax[c * out_plane + k];
            if (a >= 0)
                tmp[c * in_plane + (size_t)a] = src[c * out_plane + k];
        }
    for (size_t i = 0; i < (size_t)s->c * in_plane; i++)
        dst[i] += tmp[i];
}

/* Multipliers of node id (dy = m_out) into its inputs' buffers. */
static int dl_node(dl_walk_t *k, int id, const float *dy)
{
    nn_model_t *m = k->m;
    rp_ws_t *w = k->w;
    nn_node_t *nd = &m->nodes[id];
    const size_t O = nn_node_size(nd);
    switch (nd->op) {
    case NN_CONV:
    case NN_DENSE: {
        rp_linear_t L;
        rp_linear_of(w, m, id, 0, &L);
        rp_linear_backward(w, &L, dy, L.W, rp_rel_acc(w, m, L.in_id));
        return 0;
    }
    case NN_BN: {
        const float *gamma = nn_param(m, id, NN_P_GAMMA, NULL);
        const float *var = nn_param(m, id, NN_P_VAR, NULL);
        float *dx = rp_rel_acc(w, m, nd->in[0]);
        const size_t hw = (size_t)nd->h * nd->w;
        for (int c = 0; c < nd->c; c++) {
            const float scale =
                (float)((gamma ? gamma[c] : 1.0) / sqrt((double)var[c] + nd->eps));
            for (size_t i = 0; i < hw; i++)
                dx[c * hw + i] += dy[c * hw + i] * scale;
        }
        return 0;
    }
    case NN_RELU:
    case NN_SIGMOID: {
        const int src = nd->in[0];
        const float *xin = m->nodes[src].out, *xin0 = base_of(k, src);
        const float *y = nd->out, *y0 = base_of(k, id);
        float *dx = rp_rel_acc(w, m, src);
        for (size_t i = 0; i < O; i++) {
            const double din = (double)xin[i] - xin0[i];
            double mult;
            if (fabs(din) < DL_EPS)
                mult = nd->op == NN_RELU ? (xin[i] > 0.0f ? 1.0 : 0.0)
                                         : (double)y[i] * (1.0 - y[i]);
            else
                mult = ((double)y[i] - y0[i]) / din;
            dx[i] += (float)(dy[i] * mult);
        }
        return 0;
    }
    case NN_MAXPOOL: {
        const int src = nd->in[0];
        const size_t I = nn_node_size(&m->nodes[src]);
        const float *xin = m->nodes[src].out, *xin0 = base_of(k, src);
        const float *y = nd->out, *y0 = base_of(k, id);
        pool_shape_t s = rp_pool_shape(m, nd);
        /* U = unpool_x(dy (M - y0)) + unpool_x0(dy (y - M)); the plain gradient in g2 */
        for (size_t i = 0; i < O; i++) {
            const float mx = y[i] > y0[i] ? y[i] : y0[i];
            w->z[i] = dy[i] * (mx - y0[i]);
            w->s[i] = dy[i] * (y[i] - mx);
        }
        memset(w->g, 0, sizeof(float) * I);
        memset(w->g2, 0, sizeof(float) * I);
        unpool_add(&s, w->z, nd->argmax, w->g, w->g2);
        memset(w->g2, 0, sizeof(float) * I);
        unpool_add(&s, w->s, w->base_argmax + w->amax_off[id], w->g, w->g2);
        memset(w->g2, 0, sizeof(float) * I);
        maxpool_backward(&s, dy, nd->argmax, w->g2);
        float *dx = rp_rel_acc(w, m, src);
        for (size_t i = 0; i < I; i++) {
            const double din = (double)xin[i] - xin0[i];
            dx[i] += fabs(din) < DL_EPS ? w->g2[i] : (float)(w->g[i] / din);
        }
        return 0;
    }
    case NN_AVGPOOL:
    case NN_GAP: {
        const nn_node_t *srcn = &m->nodes[nd->in[0]];
        float *dx = rp_rel_acc(w, m, nd->in[0]);
        if (nd->op == NN_GAP) {
            gap_backward(1, srcn->c, srcn->h * srcn->w, dy, dx);
        } else {
            pool_shape_t s = rp_pool_shape(m, nd);
            avgpool_backward(&s, dy, dx);
        }
        return 0;
    }
    case NN_ADD:
    case NN_FLATTEN:
        for (int j = 0; j < nd->n_in; j++) {
            float *dx = rp_rel_acc(w, m, nd->in[j]);
            for (size_t i = 0; i < O; i++)
                dx[i] += dy[i];
        }
        return 0;
    case NN_CONCAT: {
        size_t start = 0;
        for (int j = 0; j < nd->n_in; j++) {
            const size_t size = nn_node_size(&m->nodes[nd->in[j]]);
            float *dx = rp_rel_acc(w, m, nd->in[j]);
            for (size_t i = 0; i < size; i++)
                dx[i] += dy[start + i];
            start += size;
        }
        return 0;
    }
    default:
        SC_ERROR("deeplift: no multiplier rule for node '%s' of op '%s' (supported: conv, "
                 "dense, batch norm, relu, sigmoid, pooling, add, concat, flatten)", nd->name,
                 nn_op_name(nd->op));
        return SC_ERR_UNSUPPORTED;
    }
}

/* Keep the reference's activations and max-pool argmax (one forward pass of x0). */
static int dl_base_forward(rp_ws_t *w, nn_model_t *m, const float *x0)
{
    if (!w->base_out) {
        const size_t total = w->off[m->n_nodes - 1] + nn_node_size(&m->nodes[m->n_nodes - 1]);
        size_t pooled = 0;
        w->amax_off = sc_calloc((size_t)m->n_nodes, sizeof(size_t));
        for (int i = 0; w->amax_off && i < m->n_nodes; i++) {
            w->amax_off[i] = pooled;
            if (m->nodes[i].op == NN_MAXPOOL)
                pooled += nn_node_size(&m->nodes[i]);
        }
        w->base_out = sc_calloc(total, sizeof(float));
        w->base_argmax = sc_calloc(pooled ? pooled : 1, sizeof(int32_t));
        if (!w->base_out || !w->base_argmax || !w->amax_off) {
            sc_free(w->base_out);
            sc_free(w->base_argmax);
            sc_free(w->amax_off);
            w->base_out = NULL;
            w->base_argmax = NULL;
            w->amax_off = NULL;
            SC_ERROR("deeplift: out of memory for the reference's activations");
            return SC_ERR_NOMEM;
        }
    }
    int rc = nn_forward(m, x0, 1, 0);
    if (rc < 0)
        return rc;
    for (int i = 0; i < m->n_nodes; i++) {
        const nn_node_t *nd = &m->nodes[i];
        const size_t size = nn_node_size(nd);
        memcpy(w->base_out + w->off[i], nd->out, sizeof(float) * size);
        if (nd->op == NN_MAXPOOL)
            memcpy(w->base_argmax + w->amax_off[i], nd->argmax, sizeof(int32_t) * size);
    }
    return 0;
}

static int deeplift_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                            const float *x, int target, const float *gray, sal_key_t key,
                            float *raw_out)
{
    nn_model_t *m = ws->model;
    rp_ws_t *w;
    int rc = sal_relprop_ws(ws, &w);
    if (rc < 0)
        return rc;
    sal_fill_baseline(ws, x, p->dl_baseline, p->dl_baseline_value);
    rc = dl_base_forward(w, m, ws->base);
    if (rc < 0)
        return rc;
    rc = nn_forward(m, x, 1, 0);
    if (rc < 0)
        return rc;
    rp_walk_reset(w);
    dl_walk_t k = {.w = w, .m = m};
    float *r0 = rp_rel_acc(w, m, ws->logits_id);
    r0[target] = 1.0f;
    for (int i = ws->logits_id; i > 0; i--) {
        if (!w->live[i])
            continue;
        rc = dl_node(&k, i, rp_rel(w, i));
        if (rc < 0)
            return rc;
    }
    const float *mult = rp_rel(w, 0);
    for (size_t i = 0; i < ws->chw; i++)
        raw_out[i] = w->live[0] ? (x[i] - ws->base[i]) * mult[i] : 0.0f;
    return 0;
}

const sal_method_t sal_method_deeplift = {
    .name = "deeplift",
    .summary = "DeepLIFT, Rescale rule (Captum's DeepLift): (x - x0) * multipliers",
    .needs_model = 1,
    .per_channel = 1,
    .post = SAL_POST_P1,
    .cost = deeplift_cost,
    .compute = deeplift_compute,
};
