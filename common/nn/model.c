/*
 * model.c - graph construction, parameter slab, forward and backward (model.h).
 */
#include "nn/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/posclass.h"
#include "rng.h"
#include "sc.h"

static const char *op_names[NN_OP_COUNT] = {"input", "conv", "bn", "relu", "maxpool",
                                            "avgpool", "gap", "dense", "concat", "add",
                                            "flatten", "softmax", "sigmoid"};
static const char *kind_names[NN_P_KINDS] = {"weight", "bias", "gamma", "beta",
                                             "running_mean", "running_var"};

const char *nn_op_name(nn_op op) { return op < NN_OP_COUNT ? op_names[op] : "?"; }
const char *nn_param_kind_name(nn_param_kind k) { return k < NN_P_KINDS ? kind_names[k] : "?"; }
int nn_param_trainable(nn_param_kind k) { return k != NN_P_MEAN && k != NN_P_VAR; }

nn_op nn_op_from_name(const char *name)
{
    for (int i = 0; i < NN_OP_COUNT; i++)
        if (!strcmp(name, op_names[i]))
            return (nn_op)i;
    return NN_OP_COUNT;
}

size_t nn_node_size(const nn_node_t *node) { return (size_t)node->c * node->h * node->w; }

nn_model_t *nn_model_create(int c, int h, int w)
{
    nn_model_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cap_nodes = 64;
    m->nodes = calloc((size_t)m->cap_nodes, sizeof *m->nodes);
    if (!m->nodes) {
        free(m);
        return NULL;
    }
    strcpy(m->cur_block, "input");
    strcpy(m->normalize, "unit");
    nn_node_t *in = &m->nodes[0];
    strcpy(in->name, "input");
    strcpy(in->block, "input");
    in->op = NN_INPUT;
    in->c = c;
    in->h = h;
    in->w = w;
    for (int k = 0; k < NN_P_KINDS; k++)
        in->p_off[k] = -1;
    m->n_nodes = 1;
    m->output = 0;
    return m;
}

static void free_runtime(nn_model_t *m)
{
    for (int i = 0; i < m->n_nodes; i++) {
        nn_node_t *nd = &m->nodes[i];
        sc_free(nd->out);
        sc_free(nd->grad);
        sc_free(nd->argmax);
        sc_free(nd->bn_mean);
        sc_free(nd->bn_invstd);
        nd->out = nd->grad = nd->bn_mean = nd->bn_invstd = NULL;
        nd->argmax = NULL;
        if (nd->pc_owned) {
            sc_free(nd->pc_rep);
            sc_free(nd->pc_dup);
        }
        nd->pc_rep = NULL;
        nd->pc_dup = NULL;
        nd->pc_owned = 0;
    }
    sc_free(m->pc_table);
    m->pc_table = NULL;
    sc_free(m->workspace);
    sc_free(m->scratch);
    sc_free(m->onehot);
    m->workspace = NULL;
    m->scratch = NULL;
    m->onehot = NULL;
    m->max_batch = 0;
}

void nn_model_destroy(nn_model_t *m)
{
    if (!m)
        return;
    free_runtime(m);
    for (int i = 0; i < m->n_nodes; i++)
        free(m->nodes[i].in);
    free(m->nodes);
    sc_free(m->params);
    sc_free(m->grads);
    free(m);
}

void nn_set_block(nn_model_t *m, const char *block)
{
    snprintf(m->cur_block, sizeof m->cur_block, "%s", block);
}

int nn_find(const nn_model_t *m, const char *name)
{
    for (int i = 0; i < m->n_nodes; i++)
        if (!strcmp(m->nodes[i].name, name))
            return i;
    return -1;
}

/* Append a node with inputs; returns its pointer or NULL (error logged). */
static nn_node_t *add_node(nn_model_t *m, const char *name, nn_op op, int n_in, const int *in)
{
    if (m->finalized) {
        SC_ERROR("model is finalized; cannot add node '%s'", name);
        return NULL;
    }
    if (strlen(name) >= NN_NAME_MAX || nn_find(m, name) >= 0) {
        SC_ERROR("node name '%s' is too long or already used", name);
        return NULL;
    }
    for (int i = 0; i < n_in; i++) {
        if (in[i] < 0 || in[i] >= m->n_nodes) {
            SC_ERROR("node '%s': input %d is not an existing node", name, in[i]);
            return NULL;
        }
    }
    if (m->n_nodes == m->cap_nodes) {
        nn_node_t *grown = realloc(m->nodes, sizeof *grown * (size_t)m->cap_nodes * 2);
        if (!grown)
            return NULL;
        memset(grown + m->cap_nodes, 0, sizeof *grown * (size_t)m->cap_nodes);
        m->nodes = grown;
        m->cap_nodes *= 2;
    }
    nn_node_t *nd = &m->nodes[m->n_nodes];
    memset(nd, 0, sizeof *nd);
    nd->in = malloc(sizeof(int) * (size_t)(n_in > 0 ? n_in : 1));
    if (!nd->in)
        return NULL;
    memcpy(nd->in, in, sizeof(int) * (size_t)n_in);
    nd->n_in = n_in;
    snprintf(nd->name, sizeof nd->name, "%s", name);
    snprintf(nd->block, sizeof nd->block, "%s", m->cur_block);
    nd->op = op;
    for (int k = 0; k < NN_P_KINDS; k++)
        nd->p_off[k] = -1;
    const nn_node_t *src = &m->nodes[in[0]];
    nd->c = src->c;
    nd->h = src->h;
    nd->w = src->w;
    return nd;
}

static int commit_node(nn_model_t *m)
{
    m->output = m->n_nodes;
    return m->n_nodes++;
}

static void resolve_pad(const int *pad, int same, int h, int w, int kh, int kw, int sh, int sw,
                        int *pt, int *pb, int *pl, int *pr)
{
    if (pad) {
        *pt = pad[0]; *pb = pad[1]; *pl = pad[2]; *pr = pad[3];
    } else if (same) {
        pad_same(h, kh, sh, pt, pb);
        pad_same(w, kw, sw, pl, pr);
    } else {
        *pt = *pb = *pl = *pr = 0;
    }
}

int nn_add_conv(nn_model_t *m, const char *name, int in, int out_c, int kh, int kw, int sh,
                int sw, const int *pad, int same, int bias)
{
    nn_node_t *nd = add_node(m, name, NN_CONV, 1, &in);
    if (!nd)
        return SC_ERR_ARG;
    conv2d_shape_t s = {.n = 1, .c = nd->c, .h = nd->h, .w = nd->w, .oc = out_c, .kh = kh,
                        .kw = kw, .sh = sh, .sw = sw};
    resolve_pad(pad, same, nd->h, nd->w, kh, kw, sh, sw, &s.pt, &s.pb, &s.pl, &s.pr);
    if (out_c < 1 || conv2d_shape_init(&s) < 0) {
        SC_ERROR("conv '%s': kernel %dx%d stride %dx%d does not fit input %dx%d", name, kh, kw,
                 sh, sw, nd->h, nd->w);
        free(nd->in);
        return SC_ERR_SHAPE;
    }
    nd->out_c = out_c; nd->kh = kh; nd->kw = kw; nd->sh = sh; nd->sw = sw;
    nd->pt = s.pt; nd->pb = s.pb; nd->pl = s.pl; nd->pr = s.pr;
    nd->has_bias = bias;
    nd->c = out_c; nd->h = s.oh; nd->w = s.ow;
    return commit_node(m);
}

int nn_add_bn(nn_model_t *m, const char *name, int in, float eps, float momentum, int scale,
              int center)
{
    nn_node_t *nd = add_node(m, name, NN_BN, 1, &in);
    if (!nd)
        return SC_ERR_ARG;
    nd->eps = eps;
    nd->momentum = momentum;
    nd->bn_scale = scale;
    nd->bn_center = center;
    return commit_node(m);
}

int nn_add_relu(nn_model_t *m, const char *name, int in)
{
    return add_node(m, name, NN_RELU, 1, &in) ? commit_node(m) : SC_ERR_ARG;
}

static int add_pool(nn_model_t *m, const char *name, nn_op op, int in, int kh, int kw, int sh,
                    int sw, const int *pad, int same, int ceil_mode, int count_include_pad)
{
    nn_node_t *nd = add_node(m, name, op, 1, &in);
    if (!nd)
        return SC_ERR_ARG;
    pool_shape_t s = {.n = 1, .c = nd->c, .h = nd->h, .w = nd->w, .kh = kh, .kw = kw, .sh = sh,
                      .sw = sw, .ceil_mode = ceil_mode, .count_include_pad = count_include_pad};
    resolve_pad(pad, same, nd->h, nd->w, kh, kw, sh, sw, &s.pt, &s.pb, &s.pl, &s.pr);
    if (pool_shape_init(&s) < 0) {
        SC_ERROR("pool '%s': window %dx%d does not fit input %dx%d", name, kh, kw, nd->h, nd->w);
        free(nd->in);
        return SC_ERR_SHAPE;
    }
    nd->kh = kh; nd->kw = kw; nd->sh = sh; nd->sw = sw;
    nd->pt = s.pt; nd->pb = s.pb; nd->pl = s.pl; nd->pr = s.pr;
    nd->ceil_mode = ceil_mode;
    nd->count_include_pad = count_include_pad;
    nd->h = s.oh; nd->w = s.ow;
    return commit_node(m);
}

int nn_add_maxpool(nn_model_t *m, const char *name, int in, int kh, int kw, int sh, int sw,
                   const int *pad, int same, int ceil_mode)
{
    return add_pool(m, name, NN_MAXPOOL, in, kh, kw, sh, sw, pad, same, ceil_mode, 0);
}

int nn_add_avgpool(nn_model_t *m, const char *name, int in, int kh, int kw, int sh, int sw,
                   const int *pad, int same, int ceil_mode, int count_include_pad)
{
    return add_pool(m, name, NN_AVGPOOL, in, kh, kw, sh, sw, pad, same, ceil_mode,
                    count_include_pad);
}

int nn_add_gap(nn_model_t *m, const char *name, int in)
{
    nn_node_t *nd = add_node(m, name, NN_GAP, 1, &in);
    if (!nd)
        return SC_ERR_ARG;
    nd->h = nd->w = 1;
    return commit_node(m);
}

int nn_add_dense(nn_model_t *m, const char *name, int in, int out, int bias)
{
    nn_node_t *nd = add_node(m, name, NN_DENSE, 1, &in);
    if (!nd)
        return SC_ERR_ARG;
    if (out < 1) {
        free(nd->in);
        return SC_ERR_SHAPE;
    }
    nd->out_c = out;
    nd->has_bias = bias;
    nd->c = out;
    nd->h = nd->w = 1;
    return commit_node(m);
}

int nn_add_concat(nn_model_t *m, const char *name, int n_in, const int *in)
{
    nn_node_t *nd = add_node(m, name, NN_CONCAT, n_in, in);
    if (!nd)
        return SC_ERR_ARG;
    int c = 0;
    for (int i = 0; i < n_in; i++) {
        const nn_node_t *src = &m->nodes[in[i]];
        if (src->h != nd->h || src->w != nd->w) {
            SC_ERROR("concat '%s': input '%s' is %dx%d, expected %dx%d", name, src->name, src->h,
                     src->w, nd->h, nd->w);
            free(nd->in);
            return SC_ERR_SHAPE;
        }
        c += src->c;
    }
    nd->c = c;
    return commit_node(m);
}

int nn_add_add(nn_model_t *m, const char *name, int a, int b)
{
    int in[2] = {a, b};
    nn_node_t *nd = add_node(m, name, NN_ADD, 2, in);
    if (!nd)
        return SC_ERR_ARG;
    const nn_node_t *na = &m->nodes[a], *nb = &m->nodes[b];
    if (na->c != nb->c || na->h != nb->h || na->w != nb->w) {
        SC_ERROR("add '%s': shapes %dx%dx%d and %dx%dx%d differ", name, na->c, na->h, na->w,
                 nb->c, nb->h, nb->w);
        free(nd->in);
        return SC_ERR_SHAPE;
    }
    return commit_node(m);
}

int nn_add_flatten(nn_model_t *m, const char *name, int in)
{
    nn_node_t *nd = add_node(m, name, NN_FLATTEN, 1, &in);
    if (!nd)
        return SC_ERR_ARG;
    nd->c = nd->c * nd->h * nd->w;
    nd->h = nd->w = 1;
    return commit_node(m);
}

int nn_add_softmax(nn_model_t *m, const char *name, int in)
{
    return add_node(m, name, NN_SOFTMAX, 1, &in) ? commit_node(m) : SC_ERR_ARG;
}

int nn_add_sigmoid(nn_model_t *m, const char *name, int in)
{
    return add_node(m, name, NN_SIGMOID, 1, &in) ? commit_node(m) : SC_ERR_ARG;
}

int nn_logits_node(const nn_model_t *m)
{
    int id = m->output;
    if (m->nodes[id].op == NN_SOFTMAX || m->nodes[id].op == NN_SIGMOID)
        id = m->nodes[id].in[0];
    return id;
}

/* ---- parameters ---- */

static void node_param_counts(const nn_model_t *m, const nn_node_t *nd, size_t count[NN_P_KINDS])
{
    memset(count, 0, sizeof(size_t) * NN_P_KINDS);
    const nn_node_t *src = nd->n_in ? &m->nodes[nd->in[0]] : nd;
    if (nd->op == NN_CONV) {
        count[NN_P_WEIGHT] = (size_t)nd->out_c * src->c * nd->kh * nd->kw;
        count[NN_P_BIAS] = nd->has_bias ? (size_t)nd->out_c : 0;
    } else if (nd->op == NN_DENSE) {
        count[NN_P_WEIGHT] = (size_t)nd->out_c * nn_node_size(src);
        count[NN_P_BIAS] = nd->has_bias ? (size_t)nd->out_c : 0;
    } else if (nd->op == NN_BN) {
        count[NN_P_GAMMA] = nd->bn_scale ? (size_t)nd->c : 0;
        count[NN_P_BETA] = nd->bn_center ? (size_t)nd->c : 0;
        count[NN_P_MEAN] = count[NN_P_VAR] = (size_t)nd->c;
    }
}

float *nn_param(nn_model_t *m, int id, nn_param_kind kind, size_t *count)
{
    const nn_node_t *nd = &m->nodes[id];
    if (count)
        *count = nd->p_off[kind] >= 0 ? nd->p_count[kind] : 0;
    return nd->p_off[kind] >= 0 ? m->params + nd->p_off[kind] : NULL;
}

static float *param_grad(nn_model_t *m, const nn_node_t *nd, nn_param_kind kind)
{
    return nd->p_off[kind] >= 0 ? m->grads + nd->p_off[kind] : NULL;
}

/* Initialize one node's parameters from (seed, node name): REFERENCE section 6. */
static void init_node(nn_model_t *m, int id, uint64_t seed, int keep_bn_stats)
{
    nn_node_t *nd = &m->nodes[id];
    const nn_node_t *src = nd->n_in ? &m->nodes[nd->in[0]] : nd;
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(seed, nd->name), 0, 0, 0);
    if (nd->op == NN_CONV || nd->op == NN_DENSE) {
        size_t count;
        float *W = nn_param(m, id, NN_P_WEIGHT, &count);
        double fan_in, fan_out;
        if (nd->op == NN_CONV) {
            fan_in = (double)src->c * nd->kh * nd->kw;
            fan_out = (double)nd->out_c * nd->kh * nd->kw;
        } else {
            fan_in = (double)nn_node_size(src);
            fan_out = nd->out_c;
        }
        nn_init kind = nd->init == NN_INIT_DEFAULT ? NN_INIT_GLOROT_UNIFORM : nd->init;
        double limit = sqrt(6.0 / (fan_in + fan_out)), std = sqrt(2.0 / fan_in);
        for (size_t i = 0; i < count; i++) {
            switch (kind) {
            case NN_INIT_HE_NORMAL: W[i] = (float)(std * rng_stream_normal(&rs)); break;
            case NN_INIT_ZEROS: W[i] = 0.0f; break;
            case NN_INIT_ONES: W[i] = 1.0f; break;
            default: W[i] = (float)(limit * (2.0 * rng_stream_uniform(&rs) - 1.0)); break;
            }
        }
        float *b = nn_param(m, id, NN_P_BIAS, &count);
        if (b)
            memset(b, 0, sizeof(float) * count);
    } else if (nd->op == NN_BN) {
        size_t count;
        float *p;
        if ((p = nn_param(m, id, NN_P_GAMMA, &count)))
            for (size_t i = 0; i < count; i++)
                p[i] = 1.0f;
        if ((p = nn_param(m, id, NN_P_BETA, &count)))
            memset(p, 0, sizeof(float) * count);
        if (!keep_bn_stats) {
            if ((p = nn_param(m, id, NN_P_MEAN, &count)))
                memset(p, 0, sizeof(float) * count);
            if ((p = nn_param(m, id, NN_P_VAR, &count)))
                for (size_t i = 0; i < count; i++)
                    p[i] = 1.0f;
        }
    }
}

int nn_model_finalize(nn_model_t *m, uint64_t seed)
{
    int rc = 0;
    size_t total = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        nn_node_t *nd = &m->nodes[i];
        node_param_counts(m, nd, nd->p_count);
        for (int k = 0; k < NN_P_KINDS; k++) {
            nd->p_off[k] = nd->p_count[k] ? (ptrdiff_t)total : -1;
            total += (nd->p_count[k] + 15) & ~(size_t)15; /* 64-byte aligned tensors */
        }
    }
    m->n_params = total;
    m->params = sc_calloc(total, sizeof(float));
    m->grads = sc_calloc(total, sizeof(float));
    CHECK_ALLOC(m->params);
    CHECK_ALLOC(m->grads);
    m->finalized = 1;
    if (m->num_classes == 0)
        m->num_classes = m->nodes[nn_logits_node(m)].c;
    for (int i = 0; i < m->n_nodes; i++)
        init_node(m, i, seed, 0);
cleanup:
    return rc;
}

int nn_model_reinit_block(nn_model_t *m, const char *block, uint64_t seed, int keep_bn_stats)
{
    int found = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        if (block && strcmp(m->nodes[i].block, block))
            continue;
        init_node(m, i, seed, keep_bn_stats);
        found = 1;
    }
    if (!found) {
        SC_ERROR("no block named '%s' in this model", block ? block : "(all)");
        return SC_ERR_ARG;
    }
    return 0;
}

size_t nn_count_trainable(const nn_model_t *m)
{
    size_t total = 0;
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < NN_P_KINDS; k++)
            if (nn_param_trainable((nn_param_kind)k) && m->nodes[i].p_off[k] >= 0)
                total += m->nodes[i].p_count[k];
    return total;
}

int nn_blocks(const nn_model_t *m, const char **names, int max)
{
    int count = 0;
    for (int i = 1; i < m->n_nodes; i++) {
        const char *b = m->nodes[i].block;
        int seen = 0;
        for (int j = 0; j < count; j++)
            if (!strcmp(names[j], b))
                seen = 1;
        if (!seen && count < max)
            names[count++] = b;
    }
    return count;
}

/* ---- runtime ---- */

static conv2d_shape_t conv_shape(const nn_model_t *m, const nn_node_t *nd, int n)
{
    const nn_node_t *src = &m->nodes[nd->in[0]];
    conv2d_shape_t s = {.n = n, .c = src->c, .h = src->h, .w = src->w, .oc = nd->out_c,
                        .kh = nd->kh, .kw = nd->kw, .sh = nd->sh, .sw = nd->sw, .pt = nd->pt,
                        .pb = nd->pb, .pl = nd->pl, .pr = nd->pr};
    conv2d_shape_init(&s);
    return s;
}

static pool_shape_t pool_shape(const nn_model_t *m, const nn_node_t *nd, int n)
{
    const nn_node_t *src = &m->nodes[nd->in[0]];
    pool_shape_t s = {.n = n, .c = src->c, .h = src->h, .w = src->w, .kh = nd->kh, .kw = nd->kw,
                      .sh = nd->sh, .sw = nd->sw, .pt = nd->pt, .pb = nd->pb, .pl = nd->pl,
                      .pr = nd->pr, .ceil_mode = nd->ceil_mode,
                      .count_include_pad = nd->count_include_pad};
    pool_shape_init(&s);
    return s;
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

/* How a node's output gets its position classes (nn/posclass.h). */
enum { PC_NONE = 0, PC_OWN, PC_BORROW };
static int pc_kind(nn_op op)
{
    switch (op) {
    case NN_INPUT: case NN_CONV: case NN_MAXPOOL: case NN_AVGPOOL: case NN_ADD: case NN_CONCAT:
        return PC_OWN;
    case NN_BN: case NN_RELU: case NN_SIGMOID:
        return PC_BORROW; /* elementwise: the same arithmetic at every position */
    default:
        return PC_NONE;   /* no spatial positions (GAP, dense, flatten, softmax) */
    }
}

/* Position classes of node i for its n samples (after its forward); conv outputs
 * take their class representative's value, so equal receptive fields hold equal
 * values whatever the GEMM kernel did (the rule of nn/posclass.h). */
static void pc_forward(nn_model_t *m, int i, int n)
{
    nn_node_t *nd = &m->nodes[i];
    if (!nd->pc_owned)
        return;
    const int hw = nd->h * nd->w;
    for (int b = 0; b < n; b++) {
        int32_t *rep = nd->pc_rep + (size_t)b * hw;
        int dup = 0;
        if (nd->op == NN_INPUT) {
            dup = posclass_input(nd->c, hw, nd->out + (size_t)b * nn_node_size(nd), rep,
                                 m->pc_table);
        } else if (nd->op == NN_ADD || nd->op == NN_CONCAT) {
            int in_dup[nd->n_in];
            const int32_t *in_rep[nd->n_in];
            for (int k = 0; k < nd->n_in; k++) {
                const nn_node_t *in = &m->nodes[nd->in[k]];
                in_dup[k] = in->pc_rep ? in->pc_dup[b] : 0;
                in_rep[k] = in->pc_rep ? in->pc_rep + (size_t)b * hw : NULL;
            }
            dup = posclass_combine(nd->n_in, in_dup, in_rep, hw, rep, m->pc_table);
        } else {
            const nn_node_t *src = &m->nodes[nd->in[0]];
            const int in_dup = src->pc_rep ? src->pc_dup[b] : 0;
            const int32_t *in_rep = src->pc_rep ? src->pc_rep + (size_t)b * src->h * src->w : NULL;
            dup = posclass_window(in_dup, in_rep, src->h, src->w, nd->kh, nd->kw, nd->sh, nd->sw,
                                  nd->pt, nd->pl, nd->h, nd->w, rep, m->pc_table);
            if (dup && nd->op == NN_CONV)
                posclass_apply(nd->out + (size_t)b * nn_node_size(nd), nd->c, hw, rep);
        }
        nd->pc_dup[b] = (uint8_t)dup;
    }
}

int nn_model_prepare(nn_model_t *m, int max_batch)
{
    int rc = 0;
    if (!m->finalized || max_batch < 1)
        return SC_ERR_ARG;
    if (m->max_batch == max_batch)
        return 0;
    free_runtime(m);
    size_t ws = 0, pc_hw = 0;
    int max_c = 1;
    for (int i = 0; i < m->n_nodes; i++) {
        nn_node_t *nd = &m->nodes[i];
        size_t sz = (size_t)max_batch * nn_node_size(nd);
        nd->out = sc_calloc(sz, sizeof(float));
        nd->grad = sc_calloc(sz, sizeof(float));
        CHECK_ALLOC(nd->out);
        CHECK_ALLOC(nd->grad);
        int kind = pc_kind(nd->op);
        if (kind == PC_OWN) {
            size_t hw = (size_t)nd->h * nd->w;
            nd->pc_rep = sc_calloc((size_t)max_batch * hw, sizeof(int32_t));
            nd->pc_dup = sc_calloc((size_t)max_batch, 1);
            nd->pc_owned = 1;
            CHECK_ALLOC(nd->pc_rep);
            CHECK_ALLOC(nd->pc_dup);
            pc_hw = hw > pc_hw ? hw : pc_hw;
        } else if (kind == PC_BORROW) {
            nd->pc_rep = m->nodes[nd->in[0]].pc_rep;
            nd->pc_dup = m->nodes[nd->in[0]].pc_dup;
        }
        if (nd->c > max_c)
            max_c = nd->c;
        if (nd->op == NN_CONV) {
            conv2d_shape_t s = conv_shape(m, nd, 1);
            size_t need = conv2d_workspace(&s);
            ws = need > ws ? need : ws;
        } else if (nd->op == NN_MAXPOOL) {
            nd->argmax = sc_calloc(sz, sizeof(int32_t));
            CHECK_ALLOC(nd->argmax);
        } else if (nd->op == NN_BN) {
            nd->bn_mean = sc_calloc((size_t)nd->c, sizeof(float));
            nd->bn_invstd = sc_calloc((size_t)nd->c, sizeof(float));
            CHECK_ALLOC(nd->bn_mean);
            CHECK_ALLOC(nd->bn_invstd);
        }
    }
    m->workspace = sc_calloc(ws, sizeof(float));
    m->pc_table = sc_calloc(posclass_table_size(pc_hw), sizeof(int32_t));
    CHECK_ALLOC(m->pc_table);
    m->scratch = sc_calloc((size_t)max_c * 2, sizeof(double));
    CHECK_ALLOC(m->workspace);
    CHECK_ALLOC(m->scratch);
    m->onehot = sc_calloc((size_t)max_batch * nn_node_size(&m->nodes[nn_logits_node(m)]),
                          sizeof(float));
    CHECK_ALLOC(m->onehot);
    m->ws_floats = ws;
    m->max_batch = max_batch;
cleanup:
    if (rc < 0)
        free_runtime(m);
    return rc;
}

int nn_forward(nn_model_t *m, const float *x, int n, int training)
{
    if (n < 1 || n > m->max_batch) {
        SC_ERROR("forward: batch %d outside 1..%d (nn_model_prepare sets the maximum)", n,
                 m->max_batch);
        return SC_ERR_ARG;
    }
    m->batch = n;
    memcpy(m->nodes[0].out, x, sizeof(float) * n * nn_node_size(&m->nodes[0]));
    pc_forward(m, 0, n);
    for (int i = 1; i < m->n_nodes; i++) {
        nn_node_t *nd = &m->nodes[i];
        const nn_node_t *src = &m->nodes[nd->in[0]];
        const size_t count = (size_t)n * nn_node_size(nd);
        switch (nd->op) {
        case NN_CONV: {
            conv2d_shape_t s = conv_shape(m, nd, n);
            conv2d_forward(&s, src->out, nn_param(m, i, NN_P_WEIGHT, NULL),
                           nn_param(m, i, NN_P_BIAS, NULL), nd->out, m->workspace);
            break;
        }
        case NN_BN: {
            bn_params_t p = bn_params(m, i);
            if (training)
                bn_forward_train(&p, n, nd->h * nd->w, src->out, nd->out, nd->bn_mean,
                                 nd->bn_invstd, 1, m->bn_hook, m->bn_hook_ctx, m->scratch);
            else
                bn_forward_infer(&p, n, nd->h * nd->w, src->out, nd->out);
            break;
        }
        case NN_RELU: relu_forward(count, src->out, nd->out); break;
        case NN_MAXPOOL: {
            pool_shape_t s = pool_shape(m, nd, n);
            maxpool_forward(&s, src->out, nd->out, nd->argmax);
            break;
        }
        case NN_AVGPOOL: {
            pool_shape_t s = pool_shape(m, nd, n);
            avgpool_forward(&s, src->out, nd->out);
            break;
        }
        case NN_GAP: gap_forward(n, src->c, src->h * src->w, src->out, nd->out); break;
        case NN_DENSE:
            dense_forward(n, (int)nn_node_size(src), nd->out_c, src->out,
                          nn_param(m, i, NN_P_WEIGHT, NULL), nn_param(m, i, NN_P_BIAS, NULL),
                          nd->out);
            break;
        case NN_CONCAT: {
            size_t hw = (size_t)nd->h * nd->w, off = 0;
            for (int k = 0; k < nd->n_in; k++) {
                const nn_node_t *in = &m->nodes[nd->in[k]];
                size_t part = (size_t)in->c * hw;
                for (int b = 0; b < n; b++)
                    memcpy(nd->out + b * nn_node_size(nd) + off, in->out + b * part,
                           sizeof(float) * part);
                off += part;
            }
            break;
        }
        case NN_ADD: {
            const float *a = src->out, *b = m->nodes[nd->in[1]].out;
            for (size_t k = 0; k < count; k++)
                nd->out[k] = a[k] + b[k];
            break;
        }
        case NN_FLATTEN: memcpy(nd->out, src->out, sizeof(float) * count); break;
        case NN_SOFTMAX: softmax_forward(n, (int)nn_node_size(nd), src->out, nd->out); break;
        case NN_SIGMOID: sigmoid_forward(count, src->out, nd->out); break;
        default: return SC_ERR_UNSUPPORTED;
        }
        pc_forward(m, i, n);
    }
    return 0;
}

/* Gradient buffer of an input that a kernel may overwrite: *assign is 1 when
 * nothing has been accumulated into it in this pass (no zeroing needed). */
static float *grad_dst(nn_model_t *m, int id, int *assign)
{
    nn_node_t *nd = &m->nodes[id];
    *assign = !nd->grad_live;
    nd->grad_live = 1;
    return nd->grad;
}

/* Gradient buffer of an input, zeroed on first use in this pass. */
static float *grad_of(nn_model_t *m, int id)
{
    nn_node_t *nd = &m->nodes[id];
    if (!nd->grad_live) {
        memset(nd->grad, 0, sizeof(float) * (size_t)m->batch * nn_node_size(nd));
        nd->grad_live = 1;
    }
    return nd->grad;
}

int nn_backward(nn_model_t *m, int from, const float *dy, float *dx, const nn_backward_opts_t *o)
{
    const int n = m->batch;
    if (from < 1 || from >= m->n_nodes || n < 1)
        return SC_ERR_ARG;
    for (int i = 0; i < m->n_nodes; i++)
        m->nodes[i].grad_live = 0;
    int fresh;
    memcpy(grad_dst(m, from, &fresh), dy, sizeof(float) * n * nn_node_size(&m->nodes[from]));
    for (int i = from; i >= 1; i--) {
        nn_node_t *nd = &m->nodes[i];
        if (!nd->grad_live)
            continue;
        const int src_id = nd->in[0];
        const nn_node_t *src = &m->nodes[src_id];
        const size_t count = (size_t)n * nn_node_size(nd);
        /* The input node's gradient is only needed when asked for. */
        const int want_dx = src_id != 0 || o->input_grad;
        switch (nd->op) {
        case NN_CONV: {
            conv2d_shape_t s = conv_shape(m, nd, n);
            conv2d_backward(&s, src->out, nn_param(m, i, NN_P_WEIGHT, NULL), nd->grad,
                            want_dx ? grad_of(m, src_id) : NULL,
                            o->param_grads ? param_grad(m, nd, NN_P_WEIGHT) : NULL,
                            o->param_grads ? param_grad(m, nd, NN_P_BIAS) : NULL, m->workspace);
            break;
        }
        case NN_BN: {
            bn_params_t p = bn_params(m, i);
            float *dg = o->param_grads ? param_grad(m, nd, NN_P_GAMMA) : NULL;
            float *db = o->param_grads ? param_grad(m, nd, NN_P_BETA) : NULL;
            int assign = 0;
            float *dxs = want_dx ? grad_dst(m, src_id, &assign) : NULL;
            if (o->training)
                bn_backward_train(&p, n, nd->h * nd->w, src->out, nd->grad, nd->bn_mean,
                                  nd->bn_invstd, dxs, dg, db, m->bn_hook, m->bn_hook_ctx,
                                  m->scratch, assign);
            else
                bn_backward_infer(&p, n, nd->h * nd->w, nd->grad, dxs, src->out, dg, db, assign);
            break;
        }
        case NN_RELU:
            if (want_dx) {
                int assign;
                float *dxs = grad_dst(m, src_id, &assign);
                relu_backward(count, nd->out, nd->grad, dxs, o->guided_relu, assign);
            }
            break;
        case NN_MAXPOOL: {
            pool_shape_t s = pool_shape(m, nd, n);
            if (want_dx)
                maxpool_backward(&s, nd->grad, nd->argmax, grad_of(m, src_id));
            break;
        }
        case NN_AVGPOOL: {
            pool_shape_t s = pool_shape(m, nd, n);
            if (want_dx)
                avgpool_backward(&s, nd->grad, grad_of(m, src_id));
            break;
        }
        case NN_GAP:
            if (want_dx)
                gap_backward(n, src->c, src->h * src->w, nd->grad, grad_of(m, src_id));
            break;
        case NN_DENSE:
            dense_backward(n, (int)nn_node_size(src), nd->out_c, src->out,
                           nn_param(m, i, NN_P_WEIGHT, NULL), nd->grad,
                           want_dx ? grad_of(m, src_id) : NULL,
                           o->param_grads ? param_grad(m, nd, NN_P_WEIGHT) : NULL,
                           o->param_grads ? param_grad(m, nd, NN_P_BIAS) : NULL);
            break;
        case NN_CONCAT: {
            size_t hw = (size_t)nd->h * nd->w, off = 0;
            for (int k = 0; k < nd->n_in; k++) {
                int id = nd->in[k];
                size_t part = (size_t)m->nodes[id].c * hw;
                if (id != 0 || o->input_grad) {
                    float *g = grad_of(m, id);
                    for (int b = 0; b < n; b++) {
                        const float *d = nd->grad + b * nn_node_size(nd) + off;
                        float *t = g + b * part;
                        for (size_t j = 0; j < part; j++)
                            t[j] += d[j];
                    }
                }
                off += part;
            }
            break;
        }
        case NN_ADD:
            for (int k = 0; k < 2; k++) {
                int id = nd->in[k];
                if (id == 0 && !o->input_grad)
                    continue;
                float *g = grad_of(m, id);
                for (size_t j = 0; j < count; j++)
                    g[j] += nd->grad[j];
            }
            break;
        case NN_FLATTEN:
            if (want_dx) {
                float *g = grad_of(m, src_id);
                for (size_t j = 0; j < count; j++)
                    g[j] += nd->grad[j];
            }
            break;
        case NN_SOFTMAX:
            if (want_dx)
                softmax_backward(n, (int)nn_node_size(nd), nd->out, nd->grad, grad_of(m, src_id));
            break;
        case NN_SIGMOID:
            if (want_dx)
                sigmoid_backward(count, nd->out, nd->grad, grad_of(m, src_id));
            break;
        default: return SC_ERR_UNSUPPORTED;
        }
    }
    if (o->input_grad && dx) {
        size_t sz = (size_t)n * nn_node_size(&m->nodes[0]);
        if (m->nodes[0].grad_live)
            memcpy(dx, m->nodes[0].grad, sizeof(float) * sz);
        else
            memset(dx, 0, sizeof(float) * sz);
    }
    return 0;
}

int nn_backward_logit(nn_model_t *m, const int *target, float *dx, const nn_backward_opts_t *o)
{
    int id = nn_logits_node(m);
    size_t classes = nn_node_size(&m->nodes[id]);
    memset(m->onehot, 0, sizeof(float) * (size_t)m->batch * classes);
    for (int b = 0; b < m->batch; b++) {
        int t = target[b];
        if (t < 0 || (size_t)t >= classes) {
            SC_ERROR("target class %d outside 0..%zu", t, classes - 1);
            return SC_ERR_ARG;
        }
        m->onehot[b * classes + t] = 1.0f;
    }
    return nn_backward(m, id, m->onehot, dx, o);
}
