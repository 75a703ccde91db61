/*
 * relprop.c - the walk workspace of LRP and DeepLIFT (relprop.h): per-node
 * buffers, linear layers through the engine's kernels with any weights, and
 * Zennit's batch-norm canonizer.
 *
 * Owned by workers/saliency.
 */
#include "saliency/relprop.h"

#include <math.h>
#include <string.h>

#include "sc.h"

void rp_ws_destroy(rp_ws_t *w)
{
    if (!w)
        return;
    sc_free(w->off);
    sc_free(w->rel);
    sc_free(w->live);
    sc_free(w->base_out);
    sc_free(w->base_argmax);
    sc_free(w->amax_off);
    sc_free(w->merge_bn);
    sc_free(w->merged_of);
    sc_free(w->mw);
    sc_free(w->mb);
    sc_free(w->mw_off);
    sc_free(w->mb_off);
    sc_free(w->xp);
    sc_free(w->xn);
    sc_free(w->g);
    sc_free(w->g2);
    sc_free(w->ones_in);
    sc_free(w->z);
    sc_free(w->z2);
    sc_free(w->s);
    sc_free(w->s2);
    sc_free(w->wa);
    sc_free(w->wb);
    sc_free(w->wc);
    sc_free(w->ba);
    sc_free(w->bb);
    sc_free(w->bc);
    sc_free(w->col);
    sc_free(w);
}

static conv2d_shape_t conv_shape_of(const nn_model_t *m, const nn_node_t *nd)
{
    const nn_node_t *src = &m->nodes[nd->in[0]];
    conv2d_shape_t s = {.n = 1, .c = src->c, .h = src->h, .w = src->w, .oc = nd->out_c,
                        .kh = nd->kh, .kw = nd->kw, .sh = nd->sh, .sw = nd->sw, .pt = nd->pt,
                        .pb = nd->pb, .pl = nd->pl, .pr = nd->pr};
    conv2d_shape_init(&s);
    return s;
}

pool_shape_t rp_pool_shape(const nn_model_t *m, const nn_node_t *nd)
{
    const nn_node_t *src = &m->nodes[nd->in[0]];
    pool_shape_t s = {.n = 1, .c = src->c, .h = src->h, .w = src->w, .kh = nd->kh, .kw = nd->kw,
                      .sh = nd->sh, .sw = nd->sw, .pt = nd->pt, .pb = nd->pb, .pl = nd->pl,
                      .pr = nd->pr, .ceil_mode = nd->ceil_mode,
                      .count_include_pad = nd->count_include_pad};
    pool_shape_init(&s);
    return s;
}

/* The only reader of node id, or -1 when it has none or several. */
static int sole_reader(const nn_model_t *m, int id)
{
    int reader = -1;
    for (int i = id + 1; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_in; k++)
            if (m->nodes[i].in[k] == id) {
                if (reader >= 0 && reader != i)
                    return -1;
                reader = i;
            }
    return reader;
}

/* What a walk workspace of m holds. */
typedef struct rp_sizes {
    size_t total;        /* floats of every node: rel (and DeepLIFT's base_out) */
    size_t pooled;       /* floats of every max pool's output: DeepLIFT's argmax copy */
    size_t mw, mb;       /* merged weights and biases */
    size_t col;          /* im2col scratch */
    size_t max_in, max_node, max_w, max_b;
} rp_sizes_t;

/* The sizes of a walk workspace of m; with w, also its per-node offsets and
 * the canonizer's merge tables (w's arrays of n_nodes entries allocated). */
static void rp_plan(const nn_model_t *m, rp_sizes_t *z, rp_ws_t *w)
{
    memset(z, 0, sizeof *z);
    z->col = 1;
    for (int i = 0; i < m->n_nodes; i++) {
        const nn_node_t *nd = &m->nodes[i];
        const size_t size = nn_node_size(nd);
        if (w) {
            w->off[i] = z->total;
            w->merge_bn[i] = w->merged_of[i] = -1;
        }
        z->total += size;
        if (nd->op == NN_MAXPOOL)
            z->pooled += size;
        if (size > z->max_node)
            z->max_node = size;
        if (nd->op == NN_CONV || nd->op == NN_DENSE) {
            const size_t in = nn_node_size(&m->nodes[nd->in[0]]);
            if (in > z->max_in)
                z->max_in = in;
            if (nd->p_count[NN_P_WEIGHT] > z->max_w)
                z->max_w = nd->p_count[NN_P_WEIGHT];
            if ((size_t)nd->out_c > z->max_b)
                z->max_b = (size_t)nd->out_c;
            if (nd->op == NN_CONV) {
                conv2d_shape_t s = conv_shape_of(m, nd);
                size_t c = conv2d_workspace(&s);
                if (c > z->col)
                    z->col = c;
            }
        }
    }
    for (int i = 0; i < m->n_nodes; i++) {
        const nn_node_t *nd = &m->nodes[i];
        if (nd->op != NN_CONV)
            continue;
        int bn = sole_reader(m, i);
        if (bn < 0 || m->nodes[bn].op != NN_BN || m->nodes[bn].n_in != 1)
            continue;
        if (w) {
            w->merge_bn[i] = bn;
            w->merged_of[bn] = i;
            w->mw_off[i] = z->mw;
            w->mb_off[i] = z->mb;
        }
        z->mw += nd->p_count[NN_P_WEIGHT];
        z->mb += (size_t)nd->out_c;
    }
    if (z->max_in < z->max_node)
        z->max_in = z->max_node; /* pooling and DeepLIFT scratch use the same buffers */
}

size_t rp_ws_bytes(const nn_model_t *m)
{
    rp_sizes_t z;
    rp_plan(m, &z, NULL);
    const size_t n = (size_t)m->n_nodes;
    const size_t floats = 2 * z.total + (z.mw ? z.mw : 1) + (z.mb ? z.mb : 1) + 5 * z.max_in +
                          4 * z.max_node + 3 * (z.max_w ? z.max_w : 1) +
                          3 * (z.max_b ? z.max_b : 1) + z.col;
    return floats * sizeof(float) + (z.pooled ? z.pooled : 1) * sizeof(int32_t) +
           n * (4 * sizeof(size_t) + 2 * sizeof(int) + 1) + sizeof(rp_ws_t);
}

int rp_ws_create(rp_ws_t **out, const nn_model_t *m)
{
    int rc = 0;
    rp_ws_t *w = sc_calloc(1, sizeof *w);
    *out = NULL;
    CHECK_ALLOC(w);
    w->model = m;
    w->n_nodes = m->n_nodes;
    const int n = m->n_nodes;
    w->off = sc_calloc((size_t)n, sizeof(size_t));
    w->live = sc_calloc((size_t)n, 1);
    w->merge_bn = sc_calloc((size_t)n, sizeof(int));
    w->merged_of = sc_calloc((size_t)n, sizeof(int));
    w->mw_off = sc_calloc((size_t)n, sizeof(size_t));
    w->mb_off = sc_calloc((size_t)n, sizeof(size_t));
    CHECK_ALLOC(w->off);
    CHECK_ALLOC(w->live);
    CHECK_ALLOC(w->merge_bn);
    CHECK_ALLOC(w->merged_of);
    CHECK_ALLOC(w->mw_off);
    CHECK_ALLOC(w->mb_off);
    rp_sizes_t z;
    rp_plan(m, &z, w);
    w->max_in = z.max_in;
    w->max_node = z.max_node;
    w->max_w = z.max_w;
    w->max_b = z.max_b;
    w->rel = sc_calloc(z.total, sizeof(float));
    w->mw = sc_calloc(z.mw ? z.mw : 1, sizeof(float));
    w->mb = sc_calloc(z.mb ? z.mb : 1, sizeof(float));
    CHECK_ALLOC(w->rel);
    CHECK_ALLOC(w->mw);
    CHECK_ALLOC(w->mb);
    float **in_bufs[] = {&w->xp, &w->xn, &w->g, &w->g2, &w->ones_in};
    for (size_t k = 0; k < sizeof in_bufs / sizeof in_bufs[0]; k++) {
        *in_bufs[k] = sc_calloc(w->max_in, sizeof(float));
        CHECK_ALLOC(*in_bufs[k]);
    }
    float **node_bufs[] = {&w->z, &w->z2, &w->s, &w->s2};
    for (size_t k = 0; k < sizeof node_bufs / sizeof node_bufs[0]; k++) {
        *node_bufs[k] = sc_calloc(w->max_node, sizeof(float));
        CHECK_ALLOC(*node_bufs[k]);
    }
    float **w_bufs[] = {&w->wa, &w->wb, &w->wc};
    for (size_t k = 0; k < 3; k++) {
        *w_bufs[k] = sc_calloc(w->max_w ? w->max_w : 1, sizeof(float));
        CHECK_ALLOC(*w_bufs[k]);
    }
    float **b_bufs[] = {&w->ba, &w->bb, &w->bc};
    for (size_t k = 0; k < 3; k++) {
        *b_bufs[k] = sc_calloc(w->max_b ? w->max_b : 1, sizeof(float));
        CHECK_ALLOC(*b_bufs[k]);
    }
    w->col = sc_calloc(z.col, sizeof(float));
    CHECK_ALLOC(w->col);
    *out = w;
    return 0;
cleanup:
    rp_ws_destroy(w);
    return rc;
}

void rp_walk_reset(rp_ws_t *w) { memset(w->live, 0, (size_t)w->n_nodes); }

float *rp_rel_acc(rp_ws_t *w, const nn_model_t *m, int id)
{
    float *r = rp_rel(w, id);
    if (!w->live[id]) {
        memset(r, 0, sizeof(float) * nn_node_size(&m->nodes[id]));
        w->live[id] = 1;
    }
    return r;
}

void rp_canonize(rp_ws_t *w, nn_model_t *m)
{
    for (int i = 0; i < m->n_nodes; i++) {
        const int bn = w->merge_bn[i];
        if (bn < 0)
            continue;
        const nn_node_t *cv = &m->nodes[i], *bd = &m->nodes[bn];
        const float *W = nn_param(m, i, NN_P_WEIGHT, NULL);
        const float *b = nn_param(m, i, NN_P_BIAS, NULL);
        const float *gamma = nn_param(m, bn, NN_P_GAMMA, NULL);
        const float *beta = nn_param(m, bn, NN_P_BETA, NULL);
        const float *mean = nn_param(m, bn, NN_P_MEAN, NULL);
        const float *var = nn_param(m, bn, NN_P_VAR, NULL);
        float *mw = w->mw + w->mw_off[i], *mb = w->mb + w->mb_off[i];
        const size_t per = cv->p_count[NN_P_WEIGHT] / (size_t)cv->out_c;
        for (int o = 0; o < cv->out_c; o++) {
            const double scale = (gamma ? gamma[o] : 1.0) / sqrt((double)var[o] + bd->eps);
            for (size_t k = 0; k < per; k++)
                mw[(size_t)o * per + k] = (float)(W[(size_t)o * per + k] * scale);
            mb[o] = (float)(((b ? b[o] : 0.0) - mean[o]) * scale + (beta ? beta[o] : 0.0));
        }
    }
}

void rp_linear_of(rp_ws_t *w, nn_model_t *m, int id, int merged, rp_linear_t *L)
{
    const nn_node_t *nd = &m->nodes[id];
    const nn_node_t *src = &m->nodes[nd->in[0]];
    memset(L, 0, sizeof *L);
    L->is_conv = nd->op == NN_CONV;
    L->id = id;
    L->in_id = nd->in[0];
    L->in_size = nn_node_size(src);
    L->out_size = nn_node_size(nd);
    L->channels = nd->out_c;
    L->wcount = nd->p_count[NN_P_WEIGHT];
    L->in_c = src->c;
    L->in_hw = src->h * src->w;
    L->out_hw = nd->h * nd->w;
    if (L->is_conv)
        L->cs = conv_shape_of(m, nd);
    if (merged && L->is_conv && w->merge_bn[id] >= 0) {
        L->W = w->mw + w->mw_off[id];
        L->b = w->mb + w->mb_off[id];
    } else {
        L->W = nn_param(m, id, NN_P_WEIGHT, NULL);
        L->b = nn_param(m, id, NN_P_BIAS, NULL);
    }
}

void rp_linear_forward(rp_ws_t *w, const rp_linear_t *L, const float *x, const float *W,
                       const float *b, float *y)
{
    if (L->is_conv)
        conv2d_forward(&L->cs, x, W, b, y, w->col);
    else
        dense_forward(1, (int)L->in_size, L->channels, x, W, b, y);
}

void rp_linear_backward(rp_ws_t *w, const rp_linear_t *L, const float *dy, const float *W,
                        float *dx)
{
    if (L->is_conv)
        conv2d_backward(&L->cs, dx, W, dy, dx, NULL, NULL, w->col);
    else
        dense_backward(1, (int)L->in_size, L->channels, dx, W, dy, dx, NULL, NULL);
}
