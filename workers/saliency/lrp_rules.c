/*
 * lrp_rules.c - Layer-wise Relevance Propagation rules (relprop.h): the rules
 * of a linear layer (Bach et al. 2015; Montavon et al. 2019; the definitions
 * of Zennit's rules, docs/methods.md section 4), the composites, and the rule of
 * every other node kind in a table keyed by nn_op.
 *
 * Every rule is in gradient form: with the stabilized denominator
 * s(z) = z + e sign(z) (sign(0) = +1, Zennit's Stabilizer),
 *   epsilon   R_in = x W^T (R / s(Wx + b)), e = epsilon
 *   zplus     z = W+ x+ + W- x- + b+;  R_in = x+ W+^T(R/s(z)) + x- W-^T(R/s(z))
 *   alphabeta z+ as zplus, z- = W- x+ + W+ x- + b-;
 *             R_in = alpha (x+ W+^T(R/s(z+)) + x- W-^T(R/s(z+)))
 *                  - beta  (x+ W-^T(R/s(z-)) + x- W+^T(R/s(z-))),  beta = alpha - 1
 *   gamma     outputs Wx + b > 0: z = (W + gW+) x+ + (W + gW-) x- + b + g b+,
 *             outputs < 0: the same with W+ and W- (b+ and b-) swapped; R_in the
 *             sum of input x transposed over the four parts
 *   flat      R_in = 1^T (R / s(1 * 1)) (input and weights all one, no bias)
 *   zbox      z = Wx + b - (W+ l + b+) - (W- h + b-); R_in = x g - l g+ - h g-
 * The other node kinds (Zennit's layer map): activations and batch norms not
 * merged into a convolution pass R on; sums (residual additions) and average
 * pools (global or not) use the norm rule R_in = x op^T (R / s(op(x))); max
 * pooling routes R to the argmax (the gradient, as Zennit leaves it);
 * concatenations split R by channel; flatten reshapes it.
 *
 * Owned by workers/saliency.
 */
#include <math.h>
#include <string.h>

#include "saliency/relprop.h"
#include "sc.h"

static const char *const rule_names[LRP_RULE_COUNT] = {"epsilon", "zplus", "gamma",
                                                       "alphabeta", "flat", "zbox"};
static const char *const composite_names[LRP_COMPOSITE_COUNT] = {
    "epsilon_plus_flat", "epsilon_gamma_box", "epsilon_plus", "epsilon_alpha2_beta1", "epsilon"};
static const lrp_rule_t composite_rules[LRP_COMPOSITE_COUNT][3] = {
    {LRP_RULE_FLAT, LRP_RULE_ZPLUS, LRP_RULE_EPSILON},
    {LRP_RULE_ZBOX, LRP_RULE_GAMMA, LRP_RULE_EPSILON},
    {LRP_RULE_ZPLUS, LRP_RULE_ZPLUS, LRP_RULE_EPSILON},
    {LRP_RULE_ALPHABETA, LRP_RULE_ALPHABETA, LRP_RULE_EPSILON},
    {LRP_RULE_EPSILON, LRP_RULE_EPSILON, LRP_RULE_EPSILON},
};

int lrp_rule_parse(const char *name)
{
    for (int r = 0; r < LRP_RULE_COUNT; r++)
        if (!strcmp(name, rule_names[r]))
            return r;
    return -1;
}

const char *lrp_rule_name(lrp_rule_t r) { return r < LRP_RULE_COUNT ? rule_names[r] : "?"; }

int lrp_composite_parse(const char *name)
{
    for (int c = 0; c < LRP_COMPOSITE_COUNT; c++)
        if (!strcmp(name, composite_names[c]))
            return c;
    return -1;
}

const char *lrp_composite_name(lrp_composite_t c)
{
    return c < LRP_COMPOSITE_COUNT ? composite_names[c] : "?";
}

lrp_rule_t lrp_composite_rule(lrp_composite_t c, int kind)
{
    return composite_rules[c < LRP_COMPOSITE_COUNT ? c : 0][kind < 0 || kind > 2 ? 2 : kind];
}

static inline float stab(float z, double e) { return z + (float)(z >= 0.0f ? e : -e); }

/* out[k] = max(in[k], 0) (sign > 0) or min(in[k], 0) (sign < 0). */
static void clamp_part(const float *in, size_t count, int sign, float *out)
{
    for (size_t k = 0; k < count; k++)
        out[k] = sign > 0 ? (in[k] > 0.0f ? in[k] : 0.0f) : (in[k] < 0.0f ? in[k] : 0.0f);
}

/* out = W + gamma * (W+ or W-). */
static void gamma_weights(const float *W, size_t count, double gamma, int sign, float *out)
{
    for (size_t k = 0; k < count; k++) {
        const float part = sign > 0 ? (W[k] > 0.0f ? W[k] : 0.0f) : (W[k] < 0.0f ? W[k] : 0.0f);
        out[k] = W[k] + (float)gamma * part;
    }
}

/* rin += mul * (x .* g) over the layer's input (x NULL: x = 1). */
static void add_product(float *rin, const float *x, const float *g, size_t count, float mul)
{
    if (x)
        for (size_t k = 0; k < count; k++)
            rin[k] += mul * x[k] * g[k];
    else
        for (size_t k = 0; k < count; k++)
            rin[k] += mul * g[k];
}

/* s[k] = mask(k) * R[k] / stab(z[k]); mask: 0 all, >0 where ref > 0, <0 where ref < 0. */
static void ratio(const float *R, const float *z, size_t count, double e, const float *ref,
                  int mask, float *s)
{
    for (size_t k = 0; k < count; k++) {
        float v = R[k] / stab(z[k], e);
        if (mask > 0 && !(ref[k] > 0.0f))
            v = 0.0f;
        if (mask < 0 && !(ref[k] < 0.0f))
            v = 0.0f;
        s[k] = v;
    }
}

/* y += op(x; W, b) via the scratch z2. */
static void forward_add(rp_ws_t *w, const rp_linear_t *L, const float *x, const float *W,
                        const float *b, float *y)
{
    rp_linear_forward(w, L, x, W, b, w->z2);
    for (size_t k = 0; k < L->out_size; k++)
        y[k] += w->z2[k];
}

/* rin += mul * x .* op^T(s; W) via the scratch g (x NULL: x = 1). */
static void backward_mul(rp_ws_t *w, const rp_linear_t *L, const float *s, const float *W,
                         const float *x, float mul, float *rin)
{
    memset(w->g, 0, sizeof(float) * L->in_size);
    rp_linear_backward(w, L, s, W, w->g);
    add_product(rin, x, w->g, L->in_size, mul);
}

/* Bias parts: bp = b+, bn = b- (NULL when the layer has no bias). */
static void bias_parts(rp_ws_t *w, const rp_linear_t *L, const float **bp, const float **bn)
{
    *bp = *bn = NULL;
    if (!L->b)
        return;
    clamp_part(L->b, (size_t)L->channels, 1, w->ba);
    clamp_part(L->b, (size_t)L->channels, -1, w->bb);
    *bp = w->ba;
    *bn = w->bb;
}

/*
 * One linear layer: x the layer's input [in_size], R its output relevance,
 * rin += the input relevance. The weights' positive/negative parts live in
 * the scratch wa/wb/wc; terms of x- are skipped when x has no negative entry
 * (after a ReLU), which changes nothing but the cost.
 */
static int linear_rule(rp_ws_t *w, const rp_linear_t *L, lrp_rule_t rule, const lrp_config_t *c,
                       const float *x, const float *R, float *rin)
{
    const size_t I = L->in_size, O = L->out_size, P = L->wcount;
    int has_neg = 0;
    for (size_t k = 0; k < I && !has_neg; k++)
        has_neg = x[k] < 0.0f;
    const float *bp, *bn;
    switch (rule) {
    case LRP_RULE_EPSILON:
        rp_linear_forward(w, L, x, L->W, L->b, w->z);
        ratio(R, w->z, O, c->epsilon, NULL, 0, w->s);
        backward_mul(w, L, w->s, L->W, x, 1.0f, rin);
        return 0;
    case LRP_RULE_ZPLUS:
    case LRP_RULE_ALPHABETA: {
        const double alpha = rule == LRP_RULE_ZPLUS ? 1.0 : c->alpha;
        const double beta = alpha - 1.0;
        clamp_part(L->W, P, 1, w->wa);
        clamp_part(L->W, P, -1, w->wb);
        bias_parts(w, L, &bp, &bn);
        clamp_part(x, I, 1, w->xp);
        clamp_part(x, I, -1, w->xn);
        /* positive part: W+ x+ + W- x- + b+ */
        rp_linear_forward(w, L, w->xp, w->wa, bp, w->z);
        if (has_neg)
            forward_add(w, L, w->xn, w->wb, NULL, w->z);
        ratio(R, w->z, O, c->stabilizer, NULL, 0, w->s);
        backward_mul(w, L, w->s, w->wa, w->xp, (float)alpha, rin);
        if (has_neg)
            backward_mul(w, L, w->s, w->wb, w->xn, (float)alpha, rin);
        if (beta == 0.0)
            return 0;
        /* negative part: W- x+ + W+ x- + b- */
        rp_linear_forward(w, L, w->xp, w->wb, bn, w->z);
        if (has_neg)
            forward_add(w, L, w->xn, w->wa, NULL, w->z);
        ratio(R, w->z, O, c->stabilizer, NULL, 0, w->s);
        backward_mul(w, L, w->s, w->wb, w->xp, (float)-beta, rin);
        if (has_neg)
            backward_mul(w, L, w->s, w->wa, w->xn, (float)-beta, rin);
        return 0;
    }
    case LRP_RULE_GAMMA: {
        float *out = w->s2; /* the unmodified output Wx + b decides the part */
        rp_linear_forward(w, L, x, L->W, L->b, out);
        gamma_weights(L->W, P, c->gamma, 1, w->wa); /* W + g W+ */
        gamma_weights(L->W, P, c->gamma, -1, w->wb); /* W + g W- */
        const float *b_up = NULL, *b_dn = NULL;
        if (L->b) {
            for (int o = 0; o < L->channels; o++) {
                w->ba[o] = L->b[o] + (float)c->gamma * (L->b[o] > 0.0f ? L->b[o] : 0.0f);
                w->bb[o] = L->b[o] + (float)c->gamma * (L->b[o] < 0.0f ? L->b[o] : 0.0f);
            }
            b_up = w->ba;
            b_dn = w->bb;
        }
        clamp_part(x, I, 1, w->xp);
        clamp_part(x, I, -1, w->xn);
        for (int part = 0; part < 2; part++) {
            /* part 0 (outputs > 0): x+ with W + gW+, x- with W + gW-; part 1 swapped */
            const float *w_p = part ? w->wb : w->wa, *w_n = part ? w->wa : w->wb;
            rp_linear_forward(w, L, w->xp, w_p, part ? b_dn : b_up, w->z);
            if (has_neg)
                forward_add(w, L, w->xn, w_n, NULL, w->z);
            ratio(R, w->z, O, c->stabilizer, out, part ? -1 : 1, w->s);
            backward_mul(w, L, w->s, w_p, w->xp, 1.0f, rin);
            if (has_neg)
                backward_mul(w, L, w->s, w_n, w->xn, 1.0f, rin);
        }
        return 0;
    }
    case LRP_RULE_FLAT:
        for (size_t k = 0; k < P; k++)
            w->wa[k] = 1.0f;
        for (size_t k = 0; k < I; k++)
            w->ones_in[k] = 1.0f;
        rp_linear_forward(w, L, w->ones_in, w->wa, NULL, w->z);
        ratio(R, w->z, O, c->stabilizer, NULL, 0, w->s);
        backward_mul(w, L, w->s, w->wa, NULL, 1.0f, rin);
        return 0;
    case LRP_RULE_ZBOX: {
        clamp_part(L->W, P, 1, w->wa);
        clamp_part(L->W, P, -1, w->wb);
        bias_parts(w, L, &bp, &bn);
        /* low and high input tensors, per input channel */
        for (int ch = 0; ch < L->in_c; ch++)
            for (int k = 0; k < L->in_hw; k++) {
                w->xp[(size_t)ch * L->in_hw + k] = c->low[ch < 4 ? ch : 3];
                w->xn[(size_t)ch * L->in_hw + k] = c->high[ch < 4 ? ch : 3];
            }
        rp_linear_forward(w, L, x, L->W, L->b, w->z);
        rp_linear_forward(w, L, w->xp, w->wa, bp, w->z2);
        for (size_t k = 0; k < O; k++)
            w->z[k] -= w->z2[k];
        rp_linear_forward(w, L, w->xn, w->wb, bn, w->z2);
        for (size_t k = 0; k < O; k++)
            w->z[k] -= w->z2[k];
        ratio(R, w->z, O, c->stabilizer, NULL, 0, w->s);
        backward_mul(w, L, w->s, L->W, x, 1.0f, rin);
        backward_mul(w, L, w->s, w->wa, w->xp, -1.0f, rin);
        backward_mul(w, L, w->s, w->wb, w->xn, -1.0f, rin);
        return 0;
    }
    default:
        SC_ERROR("lrp: unknown rule %d", (int)rule);
        return SC_ERR_ARG;
    }
}

/* ---- the node kinds ---- */

typedef struct lrp_walk {
    rp_ws_t *w;
    nn_model_t *m;
    const lrp_config_t *cfg;
    int first_linear;            /* the first conv/dense node: the composite's first layer */
} lrp_walk_t;

typedef int (*lrp_node_fn)(lrp_walk_t *k, int id, const float *R);

static int node_linear(lrp_walk_t *k, int id, const float *R)
{
    nn_model_t *m = k->m;
    rp_linear_t L;
    rp_linear_of(k->w, m, id, 1, &L);
    const lrp_config_t *c = k->cfg;
    lrp_rule_t rule = id == k->first_linear ? c->first
                      : m->nodes[id].op == NN_CONV ? c->conv : c->dense;
    if (rule == LRP_RULE_ZBOX && (id != k->first_linear || L.in_id != 0)) {
        SC_ERROR("lrp: the z-box rule needs the input's bounds and applies to the first layer "
                 "only, not to '%s'", m->nodes[id].name);
        return SC_ERR_ARG;
    }
    const float *x = m->nodes[L.in_id].out;
    return linear_rule(k->w, &L, rule, c, x, R, rp_rel_acc(k->w, m, L.in_id));
}

static int node_pass(lrp_walk_t *k, int id, const float *R)
{
    nn_node_t *nd = &k->m->nodes[id];
    float *rin = rp_rel_acc(k->w, k->m, nd->in[0]);
    for (size_t i = 0; i < nn_node_size(nd); i++)
        rin[i] += R[i];
    return 0;
}

/* A batch norm: merged into its convolution (the convolution's rule with the
 * merged parameters, relevance to the convolution's input), else pass. */
static int node_bn(lrp_walk_t *k, int id, const float *R)
{
    const int conv = k->w->merged_of[id];
    return conv >= 0 ? node_linear(k, conv, R) : node_pass(k, id, R);
}

static int node_maxpool(lrp_walk_t *k, int id, const float *R)
{
    nn_node_t *nd = &k->m->nodes[id];
    pool_shape_t s = rp_pool_shape(k->m, nd);
    maxpool_backward(&s, R, nd->argmax, rp_rel_acc(k->w, k->m, nd->in[0]));
    return 0;
}

/* Norm rule of an average pool (global or not): R_in = x op^T (R / s(op(x))). */
static int node_avgpool(lrp_walk_t *k, int id, const float *R)
{
    rp_ws_t *w = k->w;
    nn_node_t *nd = &k->m->nodes[id];
    const nn_node_t *src = &k->m->nodes[nd->in[0]];
    const size_t O = nn_node_size(nd), I = nn_node_size(src);
    ratio(R, nd->out, O, k->cfg->stabilizer, NULL, 0, w->s);
    memset(w->g, 0, sizeof(float) * I);
    if (nd->op == NN_GAP) {
        gap_backward(1, src->c, src->h * src->w, w->s, w->g);
    } else {
        pool_shape_t s = rp_pool_shape(k->m, nd);
        avgpool_backward(&s, w->s, w->g);
    }
    add_product(rp_rel_acc(w, k->m, nd->in[0]), src->out, w->g, I, 1.0f);
    return 0;
}

/* Norm rule of a sum (Zennit's Sum): R_j = x_j R / s(sum_j x_j). */
static int node_add(lrp_walk_t *k, int id, const float *R)
{
    rp_ws_t *w = k->w;
    nn_node_t *nd = &k->m->nodes[id];
    const size_t O = nn_node_size(nd);
    ratio(R, nd->out, O, k->cfg->stabilizer, NULL, 0, w->s);
    for (int j = 0; j < nd->n_in; j++)
        add_product(rp_rel_acc(w, k->m, nd->in[j]), k->m->nodes[nd->in[j]].out, w->s, O, 1.0f);
    return 0;
}

static int node_concat(lrp_walk_t *k, int id, const float *R)
{
    nn_node_t *nd = &k->m->nodes[id];
    size_t start = 0;
    for (int j = 0; j < nd->n_in; j++) {
        const size_t size = nn_node_size(&k->m->nodes[nd->in[j]]);
        float *rin = rp_rel_acc(k->w, k->m, nd->in[j]);
        for (size_t i = 0; i < size; i++)
            rin[i] += R[start + i];
        start += size;
    }
    return 0;
}

/* The rule of each node kind; NULL: no rule (an error naming the node). */
static lrp_node_fn lrp_node_rule(nn_op op)
{
    switch (op) {
    case NN_CONV:
    case NN_DENSE: return node_linear;
    case NN_BN: return node_bn;
    case NN_RELU:
    case NN_SIGMOID:
    case NN_SOFTMAX:
    case NN_SILU:
    case NN_HARDSWISH:
    case NN_HARDSIGMOID:
    case NN_RELU6:
    case NN_GELU:
    case NN_GELU_TANH:
    case NN_FLATTEN: return node_pass;
    case NN_MAXPOOL: return node_maxpool;
    case NN_AVGPOOL:
    case NN_GAP: return node_avgpool;
    case NN_ADD: return node_add;
    case NN_CONCAT: return node_concat;
    default: return NULL;
    }
}

int lrp_relevance(rp_ws_t *w, nn_model_t *m, const lrp_config_t *cfg, const float *x,
                  int target, int logits_id, float *rel_in)
{
    int rc = nn_forward(m, x, 1, 0);
    if (rc < 0)
        return rc;
    rp_canonize(w, m);
    rp_walk_reset(w);
    lrp_walk_t k = {.w = w, .m = m, .cfg = cfg, .first_linear = -1};
    for (int i = 1; i < m->n_nodes && k.first_linear < 0; i++)
        if (m->nodes[i].op == NN_CONV || m->nodes[i].op == NN_DENSE)
            k.first_linear = i;
    float *r0 = rp_rel_acc(w, m, logits_id);
    r0[target] = m->nodes[logits_id].out[target];
    for (int i = logits_id; i > 0; i--) {
        if (!w->live[i])
            continue;
        const nn_node_t *nd = &m->nodes[i];
        lrp_node_fn fn = lrp_node_rule(nd->op);
        if (!fn) {
            SC_ERROR("lrp: no relevance rule for node '%s' of op '%s' (supported: conv, dense, "
                     "batch norm, activations, pooling, add, concat, flatten)", nd->name,
                     nn_op_name(nd->op));
            return SC_ERR_UNSUPPORTED;
        }
        rc = fn(&k, i, rp_rel(w, i));
        if (rc < 0)
            return rc;
    }
    const size_t chw = nn_node_size(&m->nodes[0]);
    if (w->live[0])
        memcpy(rel_in, rp_rel(w, 0), sizeof(float) * chw);
    else
        memset(rel_in, 0, sizeof(float) * chw);
    return 0;
}
