/*
 * relprop.h - backward walks with modified rules over the model graph: the
 * shared machinery of LRP (sal_lrp.c, rules in lrp_rules.c) and DeepLIFT
 * (sal_deeplift.c). Module workers/saliency, prefix rp_ / lrp_.
 *
 * The engine's forward pass (nn_forward) leaves every node's activation; a
 * walk then visits the nodes in reverse order (nodes are stored in
 * topological order) with one buffer per node, rel[id], that the node's
 * readers accumulate into. Each node kind is handled by a rule looked up by
 * its nn_op in a table on the saliency side, so the engine's op files stay
 * untouched; a node kind without a rule is a clear error naming it.
 *
 * Linear layers (conv, dense) are driven through the engine's public kernels
 * (nn/layers.h) with modified weights, biases and inputs: the "gradient form"
 * of every LRP rule, R_in = sum_parts x_mod * W_mod^T (R / s(z)).
 */
#ifndef RELPROP_H
#define RELPROP_H

#include <stddef.h>
#include <stdint.h>

#include "nn/model.h"
#include "saliency/saliency.h"

/* LRP rules for a linear layer (docs/methods.md section 4; Zennit's rules). */
typedef enum lrp_rule {
    LRP_RULE_EPSILON = 0, /* x W^T (R / (z + eps sign z)), z = Wx + b */
    LRP_RULE_ZPLUS,       /* positive contributions only: W+ x+ + W- x- + b+ */
    LRP_RULE_GAMMA,       /* W + gamma W+ (outputs > 0), W + gamma W- (outputs < 0) */
    LRP_RULE_ALPHABETA,   /* alpha positive part - beta negative part, alpha - beta = 1 */
    LRP_RULE_FLAT,        /* spread evenly over the receptive field (W = 1, x = 1) */
    LRP_RULE_ZBOX,        /* bounded input [low, high] (first layer only) */
    LRP_RULE_COUNT
} lrp_rule_t;

/* Zennit's composites: the rules of (first linear layer, other convs, dense layers). */
typedef enum lrp_composite {
    LRP_EPSILON_PLUS_FLAT = 0, /* flat, zplus, epsilon (Zennit EpsilonPlusFlat) */
    LRP_EPSILON_GAMMA_BOX,     /* zbox, gamma, epsilon (Zennit EpsilonGammaBox) */
    LRP_EPSILON_PLUS,          /* zplus, zplus, epsilon (Zennit EpsilonPlus) */
    LRP_EPSILON_ALPHA2_BETA1,  /* alphabeta, alphabeta, epsilon (Zennit EpsilonAlpha2Beta1) */
    LRP_EPSILON_ONLY,          /* epsilon everywhere (LRP-epsilon; LRP-0 as eps -> 0) */
    LRP_COMPOSITE_COUNT
} lrp_composite_t;

/* Names as job files spell them; -1 when unknown. */
int lrp_rule_parse(const char *name);
const char *lrp_rule_name(lrp_rule_t r);
int lrp_composite_parse(const char *name);
const char *lrp_composite_name(lrp_composite_t c);
/* The composite's rule for the first linear layer (kind 0), the other
 * convolutions (1) and the dense layers (2). */
lrp_rule_t lrp_composite_rule(lrp_composite_t c, int kind);

/* Everything one LRP map needs to know. */
typedef struct lrp_config {
    lrp_rule_t first, conv, dense; /* per layer kind */
    double epsilon;     /* the epsilon rule's stabilizer (Zennit: epsilon, 1e-6) */
    double stabilizer;  /* every other rule's and the pooling/sum norm's (1e-6) */
    double gamma;       /* gamma rule (0.25) */
    double alpha;       /* alpha-beta rule: beta = alpha - 1 (2) */
    float low[4], high[4]; /* z-box bounds per input channel (channels beyond 4 use [3]) */
} lrp_config_t;

/* The walk's workspace: per-node buffers and the rules' scratch, sized once
 * for a model (batch 1). Created on first use by a method and kept in the
 * saliency workspace (sal_ws_t.relprop); rp_ws_destroy frees it. */
typedef struct rp_ws {
    const nn_model_t *model;     /* the graph it was sized for */
    int n_nodes;
    size_t *off;                 /* [n_nodes] offset of node i in rel / base_out */
    float *rel;                  /* sum of node sizes: relevance or multipliers */
    uint8_t *live;               /* [n_nodes] rel[i] received something in this walk */
    float *base_out;             /* DeepLIFT: the baseline's activations (NULL until used) */
    int32_t *base_argmax;        /* DeepLIFT: the baseline's max-pool argmax (max pools only) */
    size_t *amax_off;            /* [n_nodes] offset of a max pool's argmax in base_argmax */
    /* canonizer: merge_bn[conv id] = the batch norm merged into it, or -1; merged_of[bn] = conv */
    int *merge_bn, *merged_of;
    float *mw, *mb;              /* merged weights and biases of every merged conv (slab) */
    size_t *mw_off, *mb_off;     /* [n_nodes] offsets into mw / mb */
    /* rule scratch */
    float *xp, *xn, *g, *g2, *ones_in;  /* [largest layer input] */
    float *z, *z2, *s, *s2;             /* [largest node] */
    float *wa, *wb, *wc;                /* [largest weight tensor] */
    float *ba, *bb, *bc;                /* [largest bias] */
    float *col;                         /* im2col scratch */
    size_t max_in, max_node, max_w, max_b;
} rp_ws_t;

/* Size a walk workspace for model m. *out is the caller's: rp_ws_destroy. */
int rp_ws_create(rp_ws_t **out, const nn_model_t *m);
void rp_ws_destroy(rp_ws_t *w);
/* Bytes a walk workspace of m holds once LRP and DeepLIFT have both run
 * (DeepLIFT's copy of the reference's activations and max-pool argmax
 * included): what the memory budget counts (sal_budget.c). */
size_t rp_ws_bytes(const nn_model_t *m);

static inline float *rp_rel(rp_ws_t *w, int id) { return w->rel + w->off[id]; }
/* rel[id], zeroed on its first use in this walk. */
float *rp_rel_acc(rp_ws_t *w, const nn_model_t *m, int id);
/* Start a walk: nothing live. */
void rp_walk_reset(rp_ws_t *w);

/* A linear layer (conv or dense node) as y = op(x; W, b) with its shapes. */
typedef struct rp_linear {
    int is_conv;
    int id;                      /* the conv/dense node */
    int in_id;                   /* its input node */
    size_t in_size, out_size;    /* floats of x and y (one sample) */
    int channels;                /* output channels (conv) or outputs (dense): bias length */
    size_t wcount;
    int in_c, in_hw;             /* the input's channels and plane size */
    int out_hw;                  /* output plane size (1 for dense) */
    const float *W, *b;          /* the parameters (merged ones when canonized) */
    conv2d_shape_t cs;           /* conv: the kernel's shape (batch 1) */
} rp_linear_t;

/* The linear layer of node id (conv or dense); with `merged`, the
 * canonizer's parameters when a batch norm was merged into it. */
void rp_linear_of(rp_ws_t *w, nn_model_t *m, int id, int merged, rp_linear_t *L);
/* y = op(x; W, b) (b may be NULL), overwriting y [out_size]. */
void rp_linear_forward(rp_ws_t *w, const rp_linear_t *L, const float *x, const float *W,
                       const float *b, float *y);
/* dx += op^T(dy; W) (the input gradient of the layer at weights W). */
void rp_linear_backward(rp_ws_t *w, const rp_linear_t *L, const float *dy, const float *W,
                        float *dx);

/* The pooling shape (batch 1) of a max/average pooling node. */
pool_shape_t rp_pool_shape(const nn_model_t *m, const nn_node_t *nd);

/*
 * Zennit's canonizer (SequentialMergeBatchNorm): a batch norm whose input is
 * a convolution read by nothing else is merged into it,
 * W' = W g / sqrt(v + e), b' = (b - m) g / sqrt(v + e) + beta.
 * Recomputed from the model's current weights (variants change them).
 */
void rp_canonize(rp_ws_t *w, nn_model_t *m);

/*
 * LRP of logit `target` of the input x [C,H,W] into rel_in [C,H,W] (the
 * caller's buffer): forward pass, canonizer, then the walk from
 * R = logit[target] at the target. Returns 0, SC_ERR_UNSUPPORTED (logged,
 * naming the node and its op) for a node kind without a rule, SC_ERR_ARG for a
 * rule that does not fit its layer (z-box beyond the first layer).
 */
int lrp_relevance(rp_ws_t *w, nn_model_t *m, const lrp_config_t *cfg, const float *x,
                  int target, int logits_id, float *rel_in);

/* The walk workspace of a saliency workspace, created on first use (sal_lrp.c). */
int sal_relprop_ws(sal_ws_t *ws, rp_ws_t **out);
/* The LRP configuration of the method parameters p for workspace ws (z-box
 * bounds from its normalization unless given). SC_ERR_ARG (logged) for a bad
 * combination. */
int sal_lrp_config(const sal_params_t *p, const sal_ws_t *ws, lrp_config_t *c);

#endif /* RELPROP_H */
