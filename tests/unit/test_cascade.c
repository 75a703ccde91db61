/*
 * test_cascade.c - the cascade states computed in lockstep with the lower
 * layers reused (workers/saliency/sal_cascade.c) give the same raw maps, bit
 * for bit, as each state computed alone on a model of its own holding the
 * variant's weights (what plan_apply_variant makes), and the forward from a
 * node equals the whole forward.
 */
#include <stdint.h>
#include <string.h>

#include "nn/model.h"
#include "nn/zoo.h"
#include "saliency/sal_cascade.h"
#include "saliency/saliency.h"
#include "sc.h"
#include "testhelp.h"

#define SEED 7u
#define RSEED 0x5eedULL
#define MAX_STATES 16

static const char *const methods[] = {"ig", "sg", "grad", "gcam", "occlusion", "xrai"};
#define N_METHODS (int)(sizeof methods / sizeof methods[0])

typedef struct run_ctx {
    const sal_params_t *p;
    const float *x;
    size_t chw;
    float *raw;        /* [states, methods, chw] */
    int rc[MAX_STATES][N_METHODS];
    int n_methods;
} run_ctx_t;

static int compute_state(void *vctx, int state, sal_ws_t *ws)
{
    run_ctx_t *c = vctx;
    int target = 0;
    int rc = sal_target(ws, c->x, SAL_TARGET_PREDICTED, &target, NULL);
    if (rc < 0)
        return rc;
    sal_key_t key = {11, 0, 3};
    for (int k = 0; k < c->n_methods; k++) {
        float *out = c->raw + ((size_t)state * N_METHODS + k) * c->chw;
        c->rc[state][k] = sal_compute(sal_method_find(methods[k]), c->p, ws->model, ws, c->x,
                                      target, NULL, key, out);
        if (c->rc[state][k] < 0 && c->rc[state][k] != SC_ERR_UNDEFINED)
            return c->rc[state][k];
    }
    return 0;
}

/* One architecture: S states of the top-down cascade over its blocks (all but
 * the bottom one, at most max_states), the first n_methods methods alone and
 * in lockstep, compared bit for bit. */
static void check_arch(const char *arch, int size, int batch, int n_methods, int max_states)
{
    nn_model_t *m = NULL, *ref = NULL;
    sal_ws_t *ref_ws = NULL;
    sal_cascade_t *cs = NULL;
    float *base = NULL, *rnd = NULL, *raw_alone = NULL, *raw_lock = NULL, *raw_plain = NULL,
          *x = NULL;
    uint8_t *mask = NULL;
    TH_CHECK(zoo_build(arch, size, 2, SEED, &m) == 0, "build %s", arch);
    TH_CHECK(zoo_build(arch, size, 2, SEED, &ref) == 0, "build %s", arch);
    if (!m || !ref)
        goto done;
    const char *blocks[64];
    const int nb = zoo_blocks_top_down(m, blocks, 64);
    const int S = nb - 1 < max_states ? nb - 1 : max_states;
    const int N = m->n_nodes;
    const size_t chw = nn_node_size(&m->nodes[0]);
    base = malloc(sizeof(float) * m->n_params);
    rnd = malloc(sizeof(float) * m->n_params);
    mask = calloc((size_t)S * N, 1);
    x = malloc(sizeof(float) * chw);
    raw_alone = calloc((size_t)S * N_METHODS * chw, sizeof(float));
    raw_lock = calloc((size_t)S * N_METHODS * chw, sizeof(float));
    raw_plain = calloc((size_t)S * N_METHODS * chw, sizeof(float));
    memcpy(base, m->params, sizeof(float) * m->n_params);
    for (size_t i = 0; i < chw; i++) /* a smooth image in [-1, 1] */
        x[i] = (float)(0.9 * sin(0.37 * (double)(i % 97) + 0.011 * (double)i));
    /* the randomized slab: every cascade block re-initialized */
    for (int b = 0; b < S; b++)
        nn_model_reinit_block(m, blocks[b], RSEED, 0);
    memcpy(rnd, m->params, sizeof(float) * m->n_params);
    for (int k = 0; k < S; k++)
        for (int i = 0; i < N; i++)
            for (int b = 0; b <= k; b++)
                if (!strcmp(m->nodes[i].block, blocks[b]))
                    mask[(size_t)k * N + i] = 1;
    sal_params_t p = sal_params_default();
    p.ig_steps = n_methods > 1 ? 2 * batch + 1 : batch + 1; /* full and partial batches */
    p.sg_samples = batch + 1;
    p.xrai_steps = 3;
    p.occ_window = size / 4;
    p.occ_stride = size / 4;
    run_ctx_t alone = {.p = &p, .x = x, .chw = chw, .raw = raw_alone, .n_methods = n_methods};
    /* each state alone, on a model of its own: base weights, then its blocks re-initialized */
    TH_CHECK(sal_ws_create(&ref_ws, ref, batch, NULL) == 0, "reference workspace");
    for (int k = 0; k < S && ref_ws; k++) {
        memcpy(ref->params, base, sizeof(float) * ref->n_params);
        nn_model_params_changed(ref);
        for (int b = 0; b <= k; b++)
            nn_model_reinit_block(ref, blocks[b], RSEED, 0);
        TH_CHECK(compute_state(&alone, k, ref_ws) == 0, "state %d alone", k);
    }
    TH_CHECK(sal_cascade_create(&cs, m, batch, NULL, base, rnd, S, mask) == 0, "cascade");
    if (!cs)
        goto done;
    /* the parameters of a state switched in equal those the variant builds */
    int params_equal = 1;
    for (int k = S - 1; k >= 0; k--) {
        memcpy(ref->params, base, sizeof(float) * ref->n_params);
        for (int b = 0; b <= k; b++)
            nn_model_reinit_block(ref, blocks[b], RSEED, 0);
        sal_cascade_use(cs, k);
        params_equal &= !memcmp(ref->params, m->params, sizeof(float) * m->n_params);
    }
    TH_CHECK(params_equal, "%s: a state's switched parameters differ from its variant's", arch);
    int states[MAX_STATES], rcs[MAX_STATES];
    for (int k = 0; k < S; k++) /* an order the cascade sorts itself */
        states[k] = (k % 2) ? S - 1 - k / 2 : k / 2;
    run_ctx_t lock = {.p = &p, .x = x, .chw = chw, .raw = raw_lock, .n_methods = n_methods};
    TH_CHECK(sal_cascade_run(cs, states, S, 1, compute_state, &lock, rcs) == 0, "lockstep run");
    long reused = 0, total = 0;
    sal_cascade_counts(cs, &reused, &total);
    TH_CHECK(total > 0 && reused > 0, "%s: %ld of %ld batches reused the lower layers", arch,
             reused, total);
    run_ctx_t plain = {.p = &p, .x = x, .chw = chw, .raw = raw_plain, .n_methods = n_methods};
    TH_CHECK(sal_cascade_run(cs, states, S, 0, compute_state, &plain, rcs) == 0, "run, no reuse");
    long reused2 = 0, total2 = 0;
    sal_cascade_counts(cs, &reused2, &total2);
    TH_EQ_INT(reused2, reused);
    TH_EQ_INT(total2, 2 * total);
    int defined = 0;
    for (int k = 0; k < S; k++) {
        for (int q = 0; q < n_methods; q++) {
            const size_t off = ((size_t)k * N_METHODS + q) * chw;
            TH_EQ_INT(lock.rc[k][q], alone.rc[k][q]);
            defined += alone.rc[k][q] == 0;
            TH_CHECK(!memcmp(raw_lock + off, raw_alone + off, sizeof(float) * chw),
                     "%s state %d method %s: lockstep with reuse differs from the state alone "
                     "(max rel %.3g)", arch, k, methods[q],
                     th_rel_err(raw_lock + off, raw_alone + off, chw));
            TH_CHECK(!memcmp(raw_plain + off, raw_alone + off, sizeof(float) * chw),
                     "%s state %d method %s: lockstep without reuse differs", arch, k, methods[q]);
        }
    }
    TH_CHECK(defined >= S, "%s: only %d maps defined", arch, defined);
    /* the maps of different states differ (the test compares something) */
    TH_CHECK(memcmp(raw_alone, raw_alone + (size_t)(S - 1) * N_METHODS * chw,
                    sizeof(float) * chw) != 0, "%s: state 0 and state %d give the same IG", arch,
             S - 1);
done:
    sal_cascade_destroy(cs);
    sal_ws_destroy(ref_ws);
    nn_model_destroy(m);
    nn_model_destroy(ref);
    free(base);
    free(rnd);
    free(mask);
    free(x);
    free(raw_alone);
    free(raw_lock);
    free(raw_plain);
}

static void test_democnn_all_methods(void) { check_arch("democnn", 64, 3, N_METHODS, MAX_STATES); }
static void test_inceptionv3_ig(void) { check_arch("inceptionv3", 75, 2, 1, 3); }

/* nn_forward_fused_from after a parameter change above the node equals the whole forward. */
static void test_forward_from(void)
{
    nn_model_t *m = NULL;
    TH_CHECK(zoo_build("demoresnet", 48, 2, SEED, &m) == 0, "build");
    if (!m)
        return;
    const int n = 2, N = m->n_nodes;
    const size_t chw = nn_node_size(&m->nodes[0]);
    float *x = malloc(sizeof(float) * chw * n);
    for (size_t i = 0; i < chw * n; i++)
        x[i] = (float)sin(0.1 * (double)i);
    TH_CHECK(nn_model_prepare(m, n) == 0, "prepare");
    const char *blocks[64];
    zoo_blocks_top_down(m, blocks, 64);
    int first = N;
    for (int i = N - 1; i > 0; i--)
        if (!strcmp(m->nodes[i].block, blocks[1]))
            first = i;
    for (int j = first; j < N; j++)
        for (int q = 0; q < m->nodes[j].n_in; q++)
            if (m->nodes[j].in[q] < first)
                nn_model_keep(m, m->nodes[j].in[q]);
    const int logits = nn_logits_node(m);
    const size_t classes = nn_node_size(&m->nodes[logits]);
    float whole[16], from[16];
    TH_CHECK(nn_forward_fused(m, x, n) == 0, "forward");
    TH_CHECK(nn_forward_fused_from(m, 0, n) < 0, "node 0 refused");
    nn_model_reinit_block(m, blocks[0], 3, 0);
    nn_model_reinit_block(m, blocks[1], 3, 0);
    TH_CHECK(nn_forward_fused_from(m, first, n) == 0, "forward from %d", first);
    memcpy(from, nn_node_out(m, logits), sizeof(float) * n * classes);
    TH_CHECK(nn_forward_fused(m, x, n) == 0, "forward");
    memcpy(whole, nn_node_out(m, logits), sizeof(float) * n * classes);
    TH_CHECK(!memcmp(whole, from, sizeof(float) * n * classes), "logits differ: %g vs %g",
             whole[0], from[0]);
    TH_CHECK(nn_forward_fused_from(m, first, n + 1) < 0, "another batch size refused");
    free(x);
    nn_model_destroy(m);
}

int main(int argc, char **argv)
{
    sc_log_set_level(SC_LOG_WARN);
    const char *only = argc > 1 ? argv[1] : "";
    if (!*only || strstr("forward", only))
        TH_RUN(test_forward_from);
    if (!*only || strstr("democnn", only))
        TH_RUN(test_democnn_all_methods);
    if (!*only || strstr("inceptionv3", only))
        TH_RUN(test_inceptionv3_ig);
    return th_report();
}
