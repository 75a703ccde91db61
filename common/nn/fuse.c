/*
 * fuse.c - the plan and the folded parameters of BN-into-convolution fusion (fuse.h).
 *
 * Owned by common/nn. The fold follows bn_forward_infer's arithmetic: the
 * per-channel scale s = gamma * (1 / sqrtf(var + eps)) and shift
 * t = beta - mean * s in float, then W' = W * s and b' = b * s + t.
 */
#include "nn/fuse.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/concat_view.h"
#include "nn/conv_packed.h"
#include "nn/gemm.h"
#include "nn/op.h"
#include "nn/wpack.h"
#include "sc.h"

void nn_fuse_destroy(nn_fuse_t *f)
{
    if (!f)
        return;
    free(f->bn_of);
    free(f->relu_of);
    free(f->folded_into);
    free(f->pool_of);
    free(f->pool_into);
    free(f->pre_of);
    free(f->pre_into);
    free(f->pre_pool);
    free(f->pool_pre);
    free(f->gelu_of);
    free(f->gelu_into);
    free(f->sib_lead);
    free(f->sib_next);
    free(f->sib_gen);
    free(f->mlp_of);
    free(f->mlp_into);
    free(f->mlp_gen);
    free(f->w_off);
    free(f->b_off);
    free(f->dirty);
    sc_free(f->params);
    free(f);
}

/* The single consumer of node id, or -1 when it has none or several. */
static int single_consumer(const nn_model_t *m, int id)
{
    int found = -1;
    for (int j = id + 1; j < m->n_nodes; j++) {
        const nn_node_t *nd = &m->nodes[j];
        for (int k = 0; k < nd->n_in; k++) {
            if (nd->in[k] != id)
                continue;
            if (found >= 0 || nd->n_in != 1)
                return -1;
            found = j;
        }
    }
    return found;
}

/* A convolution of one input, 1x1, stride 1, unpadded. */
static int pointwise_conv(const nn_node_t *nd)
{
    return nd->op == NN_CONV && nd->n_in == 1 && nd->kh == 1 && nd->kw == 1 && nd->sh == 1 &&
           nd->sw == 1 && !nd->pt && !nd->pb && !nd->pl && !nd->pr;
}

int nn_fuse_prologue = NN_FUSE_PROLOGUE_ALL;

int nn_fuse_gelu_plan(const nn_model_t *m, int conv)
{
    if (conv < 2 || conv >= m->n_nodes)
        return -1;
    const nn_node_t *nd = &m->nodes[conv];
    if (!pointwise_conv(nd))
        return -1;
    const int g = nd->in[0];
    const nn_node_t *gd = &m->nodes[g];
    if ((gd->op != NN_GELU && gd->op != NN_GELU_TANH) || gd->n_in != 1 || gd->rank ||
        g == m->output || g == nn_logits_node(m) || single_consumer(m, g) != conv ||
        gd->in[0] < 1 || nn_cview_eligible(m, gd->in[0]))
        return -1;
    return g;
}

int nn_fuse_gelu(const nn_model_t *m, int conv)
{
    const nn_fuse_t *f = m->fuse;
    if (!m->fused_pass || !f || !(nn_fuse_prologue & NN_FUSE_PROLOGUE_GELU) || f->gelu_of[conv] < 0)
        return -1;
    const conv2d_shape_t s = {.oh = m->nodes[conv].h, .ow = m->nodes[conv].w};
    const int g = f->gelu_of[conv];
    return conv_packed_wanted(&s, 0) && !m->nodes[g].keep ? g : -1;
}

int nn_fuse_gelu_taken(const nn_model_t *m, int id)
{
    const nn_fuse_t *f = m->fuse;
    if (!f || f->gelu_into[id] < 0)
        return -1;
    return nn_fuse_gelu(m, f->gelu_into[id]) >= 0 ? f->gelu_into[id] : -1;
}

int nn_fuse_mlp_plan(const nn_model_t *m, int conv)
{
    const int g = nn_fuse_gelu_plan(m, conv);
    if (g < 0)
        return -1;
    const int c1 = m->nodes[g].in[0];
    const nn_node_t *nd = &m->nodes[c1];
    if (!pointwise_conv(nd) || c1 == m->output || c1 == nn_logits_node(m) ||
        single_consumer(m, c1) != g || nn_fuse_pre_plan(m, c1) >= 0 || nd->in[0] < 1 ||
        nn_cview_eligible(m, nd->in[0]) || nn_cview_eligible(m, c1) ||
        !conv_packed_mlp_columns(nd->h * nd->w, nd->out_c))
        return -1;
    return c1;
}

/* The pair of second convolution c2 runs on the packed kernel with plain
 * weights for its first (no chain can follow it: the GELU reads it). */
static int mlp_ready(const nn_model_t *m, int c2)
{
    const nn_fuse_t *f = m->fuse;
    if (!m->fused_pass || !f || !(nn_fuse_prologue & NN_FUSE_MLP) || f->mlp_into[c2] < 0)
        return 0;
    const int c1 = f->mlp_into[c2];
    const conv2d_shape_t s = {.oh = m->nodes[c1].h, .ow = m->nodes[c1].w};
    return conv_packed_wanted(&s, 0) && conv_packed_wanted(&s, 1) && f->sib_lead[c1] < 0 &&
           f->sib_lead[c2] < 0 && f->bn_of[c1] < 0 && f->relu_of[c1] < 0;
}

int nn_fuse_mlp(const nn_model_t *m, int conv)
{
    const nn_fuse_t *f = m->fuse;
    if (!f || f->mlp_of[conv] < 0)
        return -1;
    const int c2 = f->mlp_of[conv];
    return mlp_ready(m, c2) && nn_fuse_gelu(m, c2) >= 0 ? c2 : -1;
}

int nn_fuse_mlp_bwd(const nn_model_t *m, int conv, const nn_backward_opts_t *o)
{
    if (!mlp_ready(m, conv) || o->param_grads || o->training)
        return -1;
    const nn_fuse_t *f = m->fuse;
    const int c1 = f->mlp_into[conv], g = m->nodes[conv].in[0];
    if (o->down_to >= c1 || m->nodes[g].keep == NN_KEEP_ALL || m->nodes[c1].keep == NN_KEEP_ALL)
        return -1;
    return c1;
}

int nn_fuse_pre_plan(const nn_model_t *m, int conv)
{
    if (conv < 3 || conv >= m->n_nodes)
        return -1;
    const nn_node_t *nd = &m->nodes[conv];
    if (!pointwise_conv(nd))
        return -1;
    const int r = nd->in[0], logits = nn_logits_node(m);
    const nn_node_t *rd = &m->nodes[r];
    if (rd->op != NN_RELU || rd->n_in != 1 || rd->rank || r == m->output || r == logits ||
        single_consumer(m, r) != conv)
        return -1;
    const int bn = rd->in[0];
    const nn_node_t *bd = &m->nodes[bn];
    if (bd->op != NN_BN || bd->n_in != 1 || bd->rank || bn == m->output || bn == logits ||
        single_consumer(m, bn) != r)
        return -1;
    /* a BN after a convolution is folded into it (plan_chains), with its ReLU:
     * ResNet's conv2 -> BN -> ReLU -> conv3 stays that chain */
    const int c = bd->in[0];
    if (m->nodes[c].op == NN_CONV && c != m->output && c != logits && single_consumer(m, c) == bn)
        return -1;
    return bn;
}

int nn_fuse_pre(const nn_model_t *m, int conv)
{
    const nn_fuse_t *f = m->fuse;
    if (!m->fused_pass || !f || !(nn_fuse_prologue & NN_FUSE_PROLOGUE) || f->pre_of[conv] < 0)
        return -1;
    /* the packed path in both directions (shape and CPU only) */
    const conv2d_shape_t s = {.oh = m->nodes[conv].h, .ow = m->nodes[conv].w};
    if (!conv_packed_wanted(&s, 0) || !conv_packed_wanted(&s, 1))
        return -1;
    const int bn = f->pre_of[conv];
    return m->nodes[bn].keep || m->nodes[m->nodes[conv].in[0]].keep ? -1 : bn;
}

int nn_fuse_pre_pool_plan(const nn_model_t *m, int conv)
{
    if (nn_fuse_pre_plan(m, conv) < 0)
        return -1;
    const int p = single_consumer(m, conv);
    if (p < 0)
        return -1;
    const nn_node_t *pd = &m->nodes[p], *cd = &m->nodes[conv];
    if (pd->op != NN_AVGPOOL || pd->kh != 2 || pd->kw != 2 || pd->sh != 2 || pd->sw != 2 ||
        pd->pt || pd->pb || pd->pl || pd->pr || cd->h % 2 || cd->w % 2 || pd->h * 2 != cd->h ||
        pd->w * 2 != cd->w || p == m->output || p == nn_logits_node(m) || pd->rank)
        return -1;
    return p;
}

int nn_fuse_pre_pool(const nn_model_t *m, int conv)
{
    if (!(nn_fuse_prologue & NN_FUSE_PROLOGUE_POOL) || nn_fuse_pre(m, conv) < 0)
        return -1;
    const int p = m->fuse->pre_pool[conv];
    return p < 0 || m->nodes[p].keep || m->nodes[conv].keep ? -1 : p;
}

int nn_fuse_pre_taken(const nn_model_t *m, int id)
{
    const nn_fuse_t *f = m->fuse;
    if (!f || f->pre_into[id] < 0)
        return -1;
    const int conv = f->pre_into[id];
    return nn_fuse_pre(m, conv) >= 0 ? conv : -1;
}

/* The average pool commuted with convolution i (fuse.h), or -1. */
static int commuted_pool(const nn_model_t *m, int i)
{
    const nn_node_t *nd = &m->nodes[i];
    const int p = nd->in[0];
    if (nd->kh != 1 || nd->kw != 1 || nd->sh != 1 || nd->sw != 1 || nd->pt || nd->pb ||
        nd->pl || nd->pr || p != i - 1 || p < 1)
        return -1;
    const nn_node_t *pd = &m->nodes[p], *x = &m->nodes[pd->in[0]];
    if (pd->op != NN_AVGPOOL || pd->rank || x->rank || pd->h != x->h || pd->w != x->w ||
        nd->out_c >= pd->c || p == m->output || p == nn_logits_node(m) ||
        single_consumer(m, p) != i)
        return -1;
    return p;
}

static void plan_pool(const nn_model_t *m, nn_fuse_t *f, int i)
{
    const int p = commuted_pool(m, i);
    if (p >= 0) {
        f->pool_of[i] = p;
        f->pool_into[p] = i;
    }
}

/* The folded chains of m, written into f's arrays (already set to -1) unless f is
 * NULL; returns the floats of their folded tensors. */
static size_t plan_chains(const nn_model_t *m, nn_fuse_t *f)
{
    const int logits = nn_logits_node(m);
    size_t total = 0;
    for (int i = 1; i < m->n_nodes; i++) {
        const nn_node_t *nd = &m->nodes[i];
        if (nd->op != NN_CONV || i == m->output || i == logits)
            continue;
        int bn = single_consumer(m, i);
        if (bn >= 0 && m->nodes[bn].op == NN_RELU && bn != m->output && bn != logits) {
            if (f) { /* no BN: the ReLU in the epilogue, the weights as they are */
                f->relu_of[i] = bn;
                f->folded_into[bn] = i;
                plan_pool(m, f, i);
            }
            continue;
        }
        if (bn < 0 || m->nodes[bn].op != NN_BN || bn == m->output || bn == logits)
            continue;
        int relu = single_consumer(m, bn);
        if (relu >= 0 && m->nodes[relu].op != NN_RELU)
            relu = -1;
        if (f) {
            f->bn_of[i] = bn;
            f->folded_into[bn] = i;
            if (relu >= 0) {
                f->relu_of[i] = relu;
                f->folded_into[relu] = i;
            }
            plan_pool(m, f, i);
            f->w_off[i] = (ptrdiff_t)total;
        }
        total += (nd->p_count[NN_P_WEIGHT] + 15) & ~(size_t)15;
        if (f)
            f->b_off[i] = (ptrdiff_t)total;
        total += ((size_t)nd->out_c + 15) & ~(size_t)15;
    }
    return total;
}

/* May convolution c join a sibling group (fuse.h): pointwise, on the packed
 * path both ways, no prologue or commutable pool, its input with a buffer of
 * its own. Graph and CPU only. */
static int sib_eligible(const nn_model_t *m, int c)
{
    const nn_node_t *nd = &m->nodes[c];
    if (!pointwise_conv(nd) || nd->in[0] < 0 || nn_cview_eligible(m, nd->in[0]) ||
        nn_fuse_pre_plan(m, c) >= 0 || commuted_pool(m, c) >= 0)
        return 0;
    const conv2d_shape_t s = {.oh = nd->h, .ow = nd->w};
    return conv_packed_wanted(&s, 0) && conv_packed_wanted(&s, 1);
}

/* Does node j read node x (directly or through a concat view) or add into its
 * gradient in a backward pass: as the ReLU that runs the backward of a BN or
 * an add reading x, or as the convolution whose prologue's BN reads x? */
static int sib_touches(const nn_model_t *m, int j, int x)
{
    const nn_node_t *nd = &m->nodes[j];
    for (int k = 0; k < nd->n_in; k++) {
        const int in = nd->in[k];
        if (in == x)
            return 1;
        if (nn_cview_eligible(m, in))
            for (int q = 0; q < m->nodes[in].n_in; q++)
                if (m->nodes[in].in[q] == x)
                    return 1;
    }
    if (nd->op == NN_RELU && nd->n_in == 1 && (nn_bn_relu_pair(m, j) || nn_add_relu_pair(m, j))) {
        const nn_node_t *src = &m->nodes[nd->in[0]];
        for (int q = 0; q < src->n_in; q++)
            if (src->in[q] == x)
                return 1;
    }
    const int bn = nn_fuse_pre_plan(m, j);
    return bn >= 0 && m->nodes[bn].in[0] == x;
}

void nn_fuse_plan_sibs(const nn_model_t *m, int *lead, int *next)
{
    for (int i = 0; i < m->n_nodes; i++)
        lead[i] = next[i] = -1;
    for (int c = 1; c < m->n_nodes; c++) {
        if (lead[c] >= 0 || !sib_eligible(m, c))
            continue;
        const int x = m->nodes[c].in[0];
        int last = c, count = 1;
        for (int j = c + 1; j < m->n_nodes && count < NN_GEMM_MEMBERS; j++) {
            if (!sib_touches(m, j, x))
                continue;
            if (!sib_eligible(m, j) || m->nodes[j].in[0] != x)
                break;
            next[last] = j;
            lead[j] = c;
            last = j;
            count++;
        }
        if (count > 1)
            lead[c] = c;
    }
}

size_t nn_fuse_bytes(const nn_model_t *m)
{
    return sizeof(float) * (m->fuse ? m->fuse->n_params : plan_chains(m, NULL));
}

int nn_fuse_create(const nn_model_t *m, nn_fuse_t **out)
{
    int rc = 0;
    const int n = m->n_nodes;
    nn_fuse_t *f = calloc(1, sizeof *f);
    CHECK_ALLOC(f);
    f->n_nodes = n;
    f->bn_of = malloc(sizeof(int) * (size_t)n);
    f->relu_of = malloc(sizeof(int) * (size_t)n);
    f->folded_into = malloc(sizeof(int) * (size_t)n);
    f->pool_of = malloc(sizeof(int) * (size_t)n);
    f->pool_into = malloc(sizeof(int) * (size_t)n);
    f->pre_of = malloc(sizeof(int) * (size_t)n);
    f->pre_into = malloc(sizeof(int) * (size_t)n);
    f->pre_pool = malloc(sizeof(int) * (size_t)n);
    f->pool_pre = malloc(sizeof(int) * (size_t)n);
    f->w_off = malloc(sizeof(ptrdiff_t) * (size_t)n);
    f->b_off = malloc(sizeof(ptrdiff_t) * (size_t)n);
    f->dirty = calloc((size_t)n, 1);
    f->gelu_of = malloc(sizeof(int) * (size_t)n);
    f->gelu_into = malloc(sizeof(int) * (size_t)n);
    CHECK_ALLOC(f->gelu_of);
    CHECK_ALLOC(f->gelu_into);
    f->sib_lead = malloc(sizeof(int) * (size_t)n);
    f->sib_next = malloc(sizeof(int) * (size_t)n);
    f->sib_gen = calloc((size_t)n, sizeof(uint64_t));
    CHECK_ALLOC(f->dirty);
    CHECK_ALLOC(f->sib_lead);
    CHECK_ALLOC(f->sib_next);
    CHECK_ALLOC(f->sib_gen);
    f->mlp_of = malloc(sizeof(int) * (size_t)n);
    f->mlp_into = malloc(sizeof(int) * (size_t)n);
    f->mlp_gen = calloc((size_t)n, sizeof(uint64_t));
    CHECK_ALLOC(f->mlp_of);
    CHECK_ALLOC(f->mlp_into);
    CHECK_ALLOC(f->mlp_gen);
    CHECK_ALLOC(f->bn_of);
    CHECK_ALLOC(f->relu_of);
    CHECK_ALLOC(f->folded_into);
    CHECK_ALLOC(f->pool_of);
    CHECK_ALLOC(f->pool_into);
    CHECK_ALLOC(f->pre_of);
    CHECK_ALLOC(f->pre_into);
    CHECK_ALLOC(f->pre_pool);
    CHECK_ALLOC(f->pool_pre);
    CHECK_ALLOC(f->w_off);
    CHECK_ALLOC(f->b_off);
    for (int i = 0; i < n; i++) {
        f->bn_of[i] = f->relu_of[i] = f->folded_into[i] = f->pool_of[i] = f->pool_into[i] = -1;
        f->pre_of[i] = f->pre_into[i] = f->pre_pool[i] = f->pool_pre[i] = -1;
        f->gelu_of[i] = f->gelu_into[i] = f->mlp_of[i] = f->mlp_into[i] = -1;
        f->w_off[i] = f->b_off[i] = -1;
    }
    for (int i = 1; i < n; i++) {
        const int bn = nn_fuse_pre_plan(m, i);
        if (bn >= 0) {
            f->pre_of[i] = bn;
            f->pre_into[bn] = f->pre_into[m->nodes[i].in[0]] = i;
            const int pool = nn_fuse_pre_pool_plan(m, i);
            if (pool >= 0) {
                f->pre_pool[i] = pool;
                f->pool_pre[pool] = i;
            }
        }
    }
    for (int i = 1; i < n; i++) {
        const int g = nn_fuse_gelu_plan(m, i);
        if (g >= 0)
            f->gelu_of[i] = g, f->gelu_into[g] = i;
        const int c1 = nn_fuse_mlp_plan(m, i);
        if (c1 >= 0)
            f->mlp_of[c1] = i, f->mlp_into[i] = c1;
    }
    const size_t total = plan_chains(m, f);
    nn_fuse_plan_sibs(m, f->sib_lead, f->sib_next);
    f->n_params = total;
    f->params = sc_calloc(total ? total : 1, sizeof(float));
    CHECK_ALLOC(f->params);
    *out = f;
    f = NULL;
cleanup:
    nn_fuse_destroy(f);
    return rc;
}

/* W' and b' of folded convolution i from the current parameters. */
static void fold_one(nn_fuse_t *f, nn_model_t *m, int i)
{
    const int bn = f->bn_of[i];
    const nn_node_t *nd = &m->nodes[i], *bnd = &m->nodes[bn];
    size_t count;
    const float *W = nn_param(m, i, NN_P_WEIGHT, &count);
    const float *b = nn_param(m, i, NN_P_BIAS, NULL);
    const float *gamma = nn_param(m, bn, NN_P_GAMMA, NULL);
    const float *beta = nn_param(m, bn, NN_P_BETA, NULL);
    const float *mean = nn_param(m, bn, NN_P_MEAN, NULL);
    const float *var = nn_param(m, bn, NN_P_VAR, NULL);
    float *Wf = f->params + f->w_off[i], *bf = f->params + f->b_off[i];
    const size_t per_out = count / (size_t)nd->out_c;
    for (int o = 0; o < nd->out_c; o++) {
        float inv = 1.0f / sqrtf(var[o] + bnd->eps);
        float scale = (gamma ? gamma[o] : 1.0f) * inv;
        float shift = (beta ? beta[o] : 0.0f) - mean[o] * scale;
        for (size_t k = 0; k < per_out; k++)
            Wf[(size_t)o * per_out + k] = W[(size_t)o * per_out + k] * scale;
        bf[o] = (b ? b[o] : 0.0f) * scale + shift;
    }
}

void nn_fuse_refresh(nn_fuse_t *f, nn_model_t *m)
{
    if (f->valid && f->gen == m->param_gen)
        return;
    const int partial = f->valid && f->dirty_gen == m->param_gen;
    for (int i = 1; i < f->n_nodes; i++) {
        if (f->bn_of[i] >= 0 && (!partial || f->dirty[i]))
            fold_one(f, m, i);
        f->dirty[i] = 0;
    }
    f->gen = m->param_gen;
    f->valid = 1;
}

void nn_model_node_params_changed(nn_model_t *m, int id)
{
    nn_wpack_node_changed(m, id); /* the packed weights of the same convolution (nn/wpack.h) */
    nn_fuse_t *f = m->fuse;
    /* the fold was current, or only marked chains changed since */
    const int current = f && f->valid && (f->gen == m->param_gen || f->dirty_gen == m->param_gen);
    m->param_gen++;
    if (!current)
        return; /* the next refresh refolds everything anyway */
    const int conv = f->bn_of[id] >= 0 ? id : f->folded_into[id];
    if (conv >= 0)
        f->dirty[conv] = 1;
    f->dirty_gen = m->param_gen;
}

int nn_fuse_count(const nn_fuse_t *f, int *with_relu)
{
    int count = 0, relu = 0;
    for (int i = 0; i < f->n_nodes; i++) {
        count += f->bn_of[i] >= 0;
        relu += f->bn_of[i] >= 0 && f->relu_of[i] >= 0;
    }
    if (with_relu)
        *with_relu = relu;
    return count;
}

/* A ReLU taken without a BN is left to run as it is when its convolution's
 * output is kept (a cascade state may start at the ReLU and read it). */
static int relu_alone_kept(const nn_model_t *m, const nn_fuse_t *f, int conv)
{
    return f->bn_of[conv] < 0 && m->nodes[conv].keep;
}

int nn_fuse_taken(const nn_model_t *m, int id)
{
    const nn_fuse_t *f = m->fuse;
    if (!f || f->folded_into[id] < 0)
        return -1;
    const int conv = f->folded_into[id];
    return relu_alone_kept(m, f, conv) ? -1 : conv;
}

float *nn_fuse_dst(const nn_model_t *m, int id)
{
    const nn_fuse_t *f = m->fuse;
    if (!m->fused_pass || !f || (f->bn_of[id] < 0 && f->relu_of[id] < 0) ||
        relu_alone_kept(m, f, id))
        return m->nodes[id].out;
    return m->nodes[f->relu_of[id] >= 0 ? f->relu_of[id] : f->bn_of[id]].out;
}

int nn_fuse_hides(const nn_model_t *m, int id)
{
    const nn_fuse_t *f = m->fuse;
    if (!f)
        return 0;
    const int writes_other = (f->bn_of[id] >= 0 || f->relu_of[id] >= 0) && !relu_alone_kept(m, f, id);
    return writes_other || (f->folded_into[id] >= 0 && m->nodes[id].op == NN_BN) ||
           f->pool_into[id] >= 0 || nn_fuse_pre_taken(m, id) >= 0 || nn_fuse_pre_pool(m, id) >= 0 ||
           nn_fuse_gelu_taken(m, id) >= 0;
}

int nn_fuse_commuted(const nn_model_t *m, int conv)
{
    const nn_fuse_t *f = m->fuse;
    if (!m->fused_pass || !f || f->pool_of[conv] < 0 || relu_alone_kept(m, f, conv))
        return -1;
    const int p = f->pool_of[conv];
    const nn_node_t *pd = &m->nodes[p];
    return pd->keep || m->nodes[pd->in[0]].cview || !pd->out ? -1 : p;
}

int nn_fuse_sibs(const nn_model_t *m, int conv, int *ids)
{
    const nn_fuse_t *f = m->fuse;
    if (!m->fused_pass || !f || !nn_fuse_siblings || f->sib_lead[conv] < 0)
        return 0;
    int count = 0;
    for (int c = f->sib_lead[conv]; c >= 0; c = f->sib_next[c]) {
        if (!m->nodes[m->nodes[c].in[0]].out)
            return 0;
        if (ids)
            ids[count] = c;
        count++;
    }
    return count;
}

int nn_fuse_siblings = 1;
