/*
 * optim.c - SGD with momentum and Adam over the parameter slab (optim.h).
 */
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sc.h"

struct optim {
    optim_config_t cfg;
    size_t n_params;
    float *state[2];      /* SGD: velocity; Adam: first and second moments */
    int n_ranges;
    size_t *offsets, *counts;
    int64_t steps;
};

void optim_config_default(optim_config_t *cfg, optim_kind_t kind)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->momentum = 0.9;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->eps = 1e-8;
    cfg->weight_decay = 0.0;
}

int optim_parse(const char *name, optim_kind_t *kind)
{
    if (name && !strcmp(name, "sgd")) {
        *kind = OPTIM_SGD;
        return 0;
    }
    if (name && !strcmp(name, "adam")) {
        *kind = OPTIM_ADAM;
        return 0;
    }
    SC_ERROR("unknown optimizer '%s' (use adam or sgd)", name ? name : "(null)");
    return SC_ERR_ARG;
}

const char *optim_name(optim_kind_t kind) { return kind == OPTIM_SGD ? "sgd" : "adam"; }

optim_t *optim_create(const nn_model_t *m, const optim_config_t *cfg)
{
    int rc = 0;
    optim_t *opt = NULL;
    CHECK(m && m->finalized && cfg, SC_ERR_ARG, "optimizer needs a finalized model");
    CHECK(cfg->kind == OPTIM_SGD || cfg->kind == OPTIM_ADAM, SC_ERR_ARG, "bad optimizer kind");
    opt = calloc(1, sizeof *opt);
    CHECK_ALLOC(opt);
    opt->cfg = *cfg;
    opt->n_params = m->n_params;
    opt->state[0] = sc_calloc(m->n_params, sizeof(float));
    CHECK_ALLOC(opt->state[0]);
    if (cfg->kind == OPTIM_ADAM) {
        opt->state[1] = sc_calloc(m->n_params, sizeof(float));
        CHECK_ALLOC(opt->state[1]);
    }
    int cap = 0;
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < NN_P_KINDS; k++)
            cap += m->nodes[i].p_off[k] >= 0;
    opt->offsets = calloc((size_t)cap + 1, sizeof *opt->offsets);
    opt->counts = calloc((size_t)cap + 1, sizeof *opt->counts);
    CHECK_ALLOC(opt->offsets);
    CHECK_ALLOC(opt->counts);
    for (int i = 0; i < m->n_nodes; i++) {
        for (int k = 0; k < NN_P_KINDS; k++) {
            const nn_node_t *nd = &m->nodes[i];
            if (nd->p_off[k] < 0 || !nn_param_trainable((nn_param_kind)k) || !nd->p_count[k])
                continue;
            opt->offsets[opt->n_ranges] = (size_t)nd->p_off[k];
            opt->counts[opt->n_ranges] = nd->p_count[k];
            opt->n_ranges++;
        }
    }
cleanup:
    if (rc < 0) {
        optim_destroy(opt);
        opt = NULL;
    }
    return opt;
}

void optim_destroy(optim_t *opt)
{
    if (!opt)
        return;
    sc_free(opt->state[0]);
    sc_free(opt->state[1]);
    free(opt->offsets);
    free(opt->counts);
    free(opt);
}

void optim_step(optim_t *opt, nn_model_t *m, double lr)
{
    const optim_config_t *c = &opt->cfg;
    opt->steps++;
    nn_model_params_changed(m);
    const float wd = (float)c->weight_decay;
    if (c->kind == OPTIM_SGD) {
        const float mu = (float)c->momentum, flr = (float)lr;
        for (int r = 0; r < opt->n_ranges; r++) {
            float *p = m->params + opt->offsets[r], *v = opt->state[0] + opt->offsets[r];
            const float *g = m->grads + opt->offsets[r];
            for (size_t i = 0; i < opt->counts[r]; i++) {
                float gi = g[i] + wd * p[i];
                v[i] = mu * v[i] + gi;
                p[i] -= flr * v[i];
            }
        }
        return;
    }
    /* Adam, in torch's order of operations: step = lr / (1 - b1^t),
     * denom = sqrt(v) / sqrt(1 - b2^t) + eps. */
    const double t = (double)opt->steps;
    const float b1 = (float)c->beta1, b2 = (float)c->beta2;
    const float step_size = (float)(lr / (1.0 - pow(c->beta1, t)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow(c->beta2, t));
    const float eps = (float)c->eps;
    for (int r = 0; r < opt->n_ranges; r++) {
        float *p = m->params + opt->offsets[r];
        float *m1 = opt->state[0] + opt->offsets[r], *m2 = opt->state[1] + opt->offsets[r];
        const float *g = m->grads + opt->offsets[r];
        for (size_t i = 0; i < opt->counts[r]; i++) {
            float gi = g[i] + wd * p[i];
            m1[i] = b1 * m1[i] + (1.0f - b1) * gi;
            m2[i] = b2 * m2[i] + (1.0f - b2) * gi * gi;
            float denom = sqrtf(m2[i]) / bc2_sqrt + eps;
            p[i] -= step_size * m1[i] / denom;
        }
    }
}

float *optim_state(optim_t *opt, int which)
{
    return which == 0 || which == 1 ? opt->state[which] : NULL;
}

size_t optim_state_size(const optim_t *opt) { return opt->n_params; }
int64_t optim_steps(const optim_t *opt) { return opt->steps; }
void optim_set_steps(optim_t *opt, int64_t steps) { opt->steps = steps; }

int optim_ranges(const optim_t *opt, const size_t **offsets, const size_t **counts)
{
    *offsets = opt->offsets;
    *counts = opt->counts;
    return opt->n_ranges;
}
