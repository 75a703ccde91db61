/*
 * sal_lrp.c - Layer-wise Relevance Propagation (Bach et al. 2015; Montavon et
 * al. 2019; docs/methods.md section 4) with the rules of Zennit, chosen per
 * layer kind (first linear layer, other convolutions, dense layers) by a
 * composite (lrp.composite, default epsilon_plus_flat) or one by one
 * (lrp.first, lrp.conv, lrp.dense). Batch norms are merged into the
 * convolution before them first (Zennit's canonizer). The walk and the rules
 * are in relprop.c and lrp_rules.c.
 *
 * Relevance starts as the explained logit at its class (Zennit's
 * attr_output = one-hot * output). Raw map [C,H,W], signed; cost: one
 * forward pass and a backward walk whose linear layers take two to eight
 * kernel calls each: 3 gradient evaluations for the scheduler (measured 2.8-2.9
 * on DenseNet-121 and InceptionV3, bench/README-saliency.md).
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include <math.h>
#include <string.h>

#include "io/image.h"
#include "saliency/relprop.h"
#include "saliency/saliency.h"
#include "sc.h"

static double lrp_cost(const sal_params_t *p, int h, int w) { return 3.0; }

/* The walk workspace of ws, created on first use. */
int sal_relprop_ws(sal_ws_t *ws, rp_ws_t **out)
{
    if (!ws->relprop) {
        /* the relevance walk reads every node's activation after the forward pass */
        int rc = nn_model_keep_all(ws->model);
        if (rc < 0)
            return rc;
        rc = rp_ws_create(&ws->relprop, ws->model);
        if (rc < 0)
            return rc;
    }
    *out = ws->relprop;
    return 0;
}

int sal_lrp_config(const sal_params_t *p, const sal_ws_t *ws, lrp_config_t *c)
{
    if (p->lrp_composite < 0 || p->lrp_composite >= LRP_COMPOSITE_COUNT) {
        SC_ERROR("lrp: composite %d is not known", p->lrp_composite);
        return SC_ERR_ARG;
    }
    const lrp_composite_t comp = (lrp_composite_t)p->lrp_composite;
    const int chosen[3] = {p->lrp_first, p->lrp_conv, p->lrp_dense};
    lrp_rule_t rules[3];
    for (int k = 0; k < 3; k++) {
        if (chosen[k] >= LRP_RULE_COUNT) {
            SC_ERROR("lrp: rule %d is not known", chosen[k]);
            return SC_ERR_ARG;
        }
        rules[k] = chosen[k] >= 0 ? (lrp_rule_t)chosen[k] : lrp_composite_rule(comp, k);
    }
    if (rules[1] == LRP_RULE_ZBOX || rules[2] == LRP_RULE_ZBOX) {
        SC_ERROR("lrp: the z-box rule applies to the first layer only (lrp.first)");
        return SC_ERR_ARG;
    }
    if (!(p->lrp_epsilon >= 0.0) || !(p->lrp_stabilizer >= 0.0) || !(p->lrp_gamma >= 0.0) ||
        !(p->lrp_alpha >= 1.0)) {
        SC_ERROR("lrp: epsilon (%g), stabilizer (%g) and gamma (%g) must be >= 0 and alpha "
                 "(%g) >= 1", p->lrp_epsilon, p->lrp_stabilizer, p->lrp_gamma, p->lrp_alpha);
        return SC_ERR_ARG;
    }
    memset(c, 0, sizeof *c);
    c->first = rules[0];
    c->conv = rules[1];
    c->dense = rules[2];
    c->epsilon = p->lrp_epsilon;
    c->stabilizer = p->lrp_stabilizer;
    c->gamma = p->lrp_gamma;
    c->alpha = p->lrp_alpha;
    /* z-box bounds: the normalization's black and white unless given */
    image_norm_t norm;
    float lo3[3] = {0, 0, 0}, hi3[3] = {1, 1, 1};
    if (image_norm_parse(ws->normalize, &norm) == 0) {
        const float black = 0.0f, white = 255.0f;
        image_normalize_3ch(&black, 1, norm, lo3);
        image_normalize_3ch(&white, 1, norm, hi3);
    }
    for (int ch = 0; ch < 4; ch++) {
        c->low[ch] = isnan(p->lrp_low) ? lo3[ch < 3 ? ch : 2] : (float)p->lrp_low;
        c->high[ch] = isnan(p->lrp_high) ? hi3[ch < 3 ? ch : 2] : (float)p->lrp_high;
    }
    return 0;
}

static int lrp_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                       const float *x, int target, const float *gray, sal_key_t key,
                       float *raw_out)
{
    lrp_config_t cfg;
    int rc = sal_lrp_config(p, ws, &cfg);
    if (rc < 0)
        return rc;
    rp_ws_t *w;
    rc = sal_relprop_ws(ws, &w);
    if (rc < 0)
        return rc;
    return lrp_relevance(w, ws->model, &cfg, x, target, ws->logits_id, raw_out);
}

const sal_method_t sal_method_lrp = {
    .name = "lrp",
    .summary = "LRP: Zennit's rules per layer kind and composites, batch norm merged first",
    .needs_model = 1,
    .per_channel = 1,
    .post = SAL_POST_P1,
    .cost = lrp_cost,
    .compute = lrp_compute,
};
