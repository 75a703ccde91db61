/*
 * test_concat_view.c - concatenations without buffers (nn/concat_view.h).
 *
 * - Which concats become views: in a small graph with one case per rule, the
 *   two read only by a BN are views; one read by a convolution, one read by
 *   two BNs, one whose input is read between it and its BN, one kept by
 *   nn_model_keep, one read by a concat and one of a concat are not. The zoo's DenseNet-121 has
 *   every one of its 58 concats as a view, InceptionV3 none.
 * - Views change nothing: logits, input gradients (plain and folded forward),
 *   a training step's logits, parameter gradients and running statistics are
 *   bit-identical to the same model whose every node keeps its own buffers
 *   (nn_model_keep_all: no views, the copying concat), for the small graph
 *   and the zoo's DenseNet-121, in the inference and training plans.
 * - The training plan of DenseNet-121 needs less memory with views than
 *   without (every concat was an activation kept for BN's backward).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/fuse.h"
#include "nn/memplan.h"
#include "nn/zoo.h"
#include "rng.h"
#include "sc.h"
#include "nnhelp.h"
#include "testhelp.h"

static int bn(nn_model_t *m, const char *name, int in)
{
    return nn_add_bn(m, name, in, 1e-5f, 0.1f, 1, 1);
}

static int conv(nn_model_t *m, const char *name, int in, int out_c)
{
    return nn_add_conv(m, name, in, out_c, 3, 3, 1, 1, NULL, 1, 1);
}

/* One case per rule of nn_cview_eligible (names say what is expected). */
static nn_model_t *small_graph(void)
{
    nn_model_t *m = nn_model_create(3, 8, 8);
    int f0 = conv(m, "f0", 0, 4);
    int f1 = conv(m, "f1", nn_add_relu(m, "r0", bn(m, "n0", f0)), 3);
    int view1 = nn_add_concat(m, "view1", 2, (const int[]){f0, f1});
    int f2 = conv(m, "f2", nn_add_relu(m, "r1", bn(m, "n1", view1)), 2);
    int view2 = nn_add_concat(m, "view2", 3, (const int[]){f0, f1, f2});
    int b2 = bn(m, "n2", view2);
    int conv_reader = nn_add_concat(m, "conv_reader", 2, (const int[]){f1, f2});
    int c3 = conv(m, "c3", conv_reader, 3);
    int two_bns = nn_add_concat(m, "two_bns", 2, (const int[]){f0, f2});
    int b4 = bn(m, "n4a", two_bns), b4b = bn(m, "n4b", two_bns);
    int read_between = nn_add_concat(m, "read_between", 2, (const int[]){f2, f1});
    int r5 = nn_add_relu(m, "r5", f1);
    int b5 = bn(m, "n5", read_between);
    int kept = nn_add_concat(m, "kept", 2, (const int[]){f1, f0});
    int b6 = bn(m, "n6", kept);
    int inner = nn_add_concat(m, "inner", 2, (const int[]){f0, f2});
    int outer = nn_add_concat(m, "outer", 2, (const int[]){inner, f1});
    int b7 = bn(m, "n7", outer);
    const int heads[] = {b2, c3, b4, b4b, r5, b5, b6, b7};
    int pooled[8];
    char name[32];
    for (int k = 0; k < 8; k++) {
        snprintf(name, sizeof name, "head_relu%d", k);
        const int r = nn_add_relu(m, name, heads[k]);
        snprintf(name, sizeof name, "gap%d", k);
        pooled[k] = nn_add_gap(m, name, r);
    }
    int all = nn_add_concat(m, "pooled", 8, pooled);
    nn_add_dense(m, "logits", all, 3, 1);
    if (nn_model_finalize(m, 5) < 0) {
        nn_model_destroy(m);
        return NULL;
    }
    th_randomize_bn(m, 0.5f, 1.5f);
    return m;
}

typedef struct results {
    float *logits, *dx, *fused_logits, *fused_dx, *train_logits, *train_dx, *grads, *params;
} results_t;

static void free_results(results_t *r)
{
    free(r->logits); free(r->dx); free(r->fused_logits); free(r->fused_dx);
    free(r->train_logits); free(r->train_dx); free(r->grads); free(r->params);
}

/* The passes of an audit and of a training step at batch n. */
static int run_passes(nn_model_t *m, nn_plan_mode mode, int n, const float *x, results_t *r)
{
    const int lid = nn_logits_node(m);
    const size_t classes = nn_node_size(&m->nodes[lid]), in = nn_node_size(&m->nodes[0]);
    const size_t lb = sizeof(float) * n * classes, xb = sizeof(float) * n * in;
    int target[4] = {0, 1, 2, 1};
    for (int b = 0; b < 4; b++)
        target[b] %= (int)classes;
    memset(r, 0, sizeof *r);
    r->logits = malloc(lb); r->fused_logits = malloc(lb); r->train_logits = malloc(lb);
    r->dx = malloc(xb); r->fused_dx = malloc(xb); r->train_dx = malloc(xb);
    r->grads = malloc(sizeof(float) * m->n_params);
    r->params = malloc(sizeof(float) * m->n_params);
    if (nn_model_set_plan(m, mode) < 0 || nn_model_prepare(m, n) < 0)
        return -1;
    nn_backward_opts_t o = {.input_grad = 1};
    if (nn_forward(m, x, n, 0) < 0)
        return -1;
    memcpy(r->logits, nn_node_out(m, lid), lb);
    if (nn_backward_logit(m, target, r->dx, &o) < 0 || nn_forward_fused(m, x, n) < 0)
        return -1;
    memcpy(r->fused_logits, nn_node_out(m, lid), lb);
    if (nn_backward_logit(m, target, r->fused_dx, &o) < 0)
        return -1;
    memset(r->train_logits, 0, lb);
    memset(r->train_dx, 0, xb);
    memset(r->grads, 0, sizeof(float) * m->n_params);
    memcpy(r->params, m->params, sizeof(float) * m->n_params);
    if (mode == NN_PLAN_TRAIN) {
        float *saved = malloc(sizeof(float) * m->n_params);
        memcpy(saved, m->params, sizeof(float) * m->n_params);
        memset(m->grads, 0, sizeof(float) * m->n_params);
        nn_backward_opts_t ot = {.input_grad = 1, .param_grads = 1, .training = 1};
        int rc = nn_forward(m, x, n, 1);
        if (rc == 0)
            memcpy(r->train_logits, nn_node_out(m, lid), lb);
        if (rc == 0)
            rc = nn_backward_logit(m, target, r->train_dx, &ot);
        memcpy(r->grads, m->grads, sizeof(float) * m->n_params);
        memcpy(r->params, m->params, sizeof(float) * m->n_params); /* running statistics moved */
        memcpy(m->params, saved, sizeof(float) * m->n_params);
        m->param_gen++;
        free(saved);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int count_views(const nn_model_t *m)
{
    int views = 0;
    for (int i = 0; i < m->n_nodes; i++)
        views += m->nodes[i].cview;
    return views;
}

/* m (with views) against a copy of it whose every node keeps its buffers. */
static void check_identical(const char *what, nn_model_t *m, nn_model_t *owned, int n)
{
    const size_t in = nn_node_size(&m->nodes[0]);
    const size_t classes = nn_node_size(&m->nodes[nn_logits_node(m)]);
    float *x = malloc(sizeof(float) * n * in);
    th_fill_uniform(x, n * in, 3, "test_concat_view", -1.0f, 1.0f);
    TH_CHECK(nn_model_keep_all(owned) == 0, "keep all");
    for (int mode = NN_PLAN_TRAIN; mode <= NN_PLAN_INFER; mode++) {
        results_t a, b;
        TH_CHECK(run_passes(m, (nn_plan_mode)mode, n, x, &a) == 0, "%s: passes with views", what);
        TH_CHECK(run_passes(owned, (nn_plan_mode)mode, n, x, &b) == 0, "%s: passes, copies",
                 what);
        TH_CHECK(count_views(m) > 0 && count_views(owned) == 0, "%s mode %d: %d views, %d owned",
                 what, mode, count_views(m), count_views(owned));
        const size_t lb = sizeof(float) * n * classes, xb = sizeof(float) * n * in;
        const size_t pb = sizeof(float) * m->n_params;
        TH_CHECK(!memcmp(a.logits, b.logits, lb), "%s mode %d: logits", what, mode);
        TH_CHECK(!memcmp(a.dx, b.dx, xb), "%s mode %d: input gradient", what, mode);
        TH_CHECK(!memcmp(a.fused_logits, b.fused_logits, lb), "%s mode %d: folded logits", what,
                 mode);
        TH_CHECK(!memcmp(a.fused_dx, b.fused_dx, xb), "%s mode %d: folded input gradient", what,
                 mode);
        TH_CHECK(!memcmp(a.train_logits, b.train_logits, lb) && !memcmp(a.train_dx, b.train_dx, xb),
                 "%s mode %d: training logits and input gradient", what, mode);
        TH_CHECK(!memcmp(a.grads, b.grads, pb), "%s mode %d: parameter gradients", what, mode);
        TH_CHECK(!memcmp(a.params, b.params, pb), "%s mode %d: running statistics", what, mode);
        double norm = 0.0, gnorm = 0.0;
        for (size_t i = 0; i < n * in; i++)
            norm += (double)a.dx[i] * a.dx[i];
        for (size_t i = 0; i < m->n_params; i++)
            gnorm += (double)a.grads[i] * a.grads[i];
        TH_CHECK(norm > 0.0 && (mode == NN_PLAN_INFER || gnorm > 0.0),
                 "%s mode %d: zero gradients", what, mode);
        free_results(&a);
        free_results(&b);
    }
    free(x);
}

static void test_small_graph_rules(void)
{
    nn_model_t *m = small_graph();
    TH_CHECK(m != NULL, "small graph");
    if (!m)
        return;
    TH_CHECK(nn_model_keep(m, nn_find(m, "kept")) == 0, "keep");
    TH_CHECK(nn_model_prepare(m, 2) == 0, "prepare");
    static const struct { const char *name; int view; } expect[] = {
        {"view1", 1}, {"view2", 1}, {"conv_reader", 0}, {"two_bns", 0},
        {"read_between", 0}, {"kept", 0}, {"inner", 0}, {"outer", 0}, {"pooled", 0}};
    for (size_t k = 0; k < sizeof expect / sizeof expect[0]; k++) {
        const int id = nn_find(m, expect[k].name);
        TH_CHECK(id > 0 && m->nodes[id].cview == expect[k].view, "%s: view %d, expected %d",
                 expect[k].name, id > 0 ? m->nodes[id].cview : -1, expect[k].view);
        if (id > 0 && expect[k].view)
            TH_CHECK(!m->nodes[id].out && !m->nodes[id].grad, "%s holds buffers",
                     expect[k].name);
    }
    nn_model_destroy(m);
}

static void test_small_graph_identical(void)
{
    nn_model_t *m = small_graph(), *owned = small_graph();
    TH_CHECK(m && owned, "small graph");
    if (m && owned)
        check_identical("small graph", m, owned, 3);
    nn_model_destroy(m);
    nn_model_destroy(owned);
}

static void test_densenet_identical(void)
{
    nn_model_t *m = NULL, *owned = NULL;
    TH_CHECK(zoo_build("densenet121", 32, 2, 9, &m) == 0 &&
                 zoo_build("densenet121", 32, 2, 9, &owned) == 0, "densenet121");
    if (m && owned) {
        th_randomize_bn(m, 0.5f, 1.5f);
        th_randomize_bn(owned, 0.5f, 1.5f);
        /* the copy keeps every value, so its convolutions run without nn/fuse.h's
         * prologue; the prologue gives the same bits, its pool applied first
         * does not (tests/unit/test_fuse.c compares that) */
        nn_fuse_prologue = NN_FUSE_PROLOGUE;
        check_identical("densenet121", m, owned, 2);
        nn_fuse_prologue = NN_FUSE_PROLOGUE_ALL;
    }
    nn_model_destroy(m);
    nn_model_destroy(owned);
}

static void test_zoo_view_counts(void)
{
    static const struct { const char *arch; int size, views; } cases[] = {
        {"densenet121", 32, 58}, {"inceptionv3", 75, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        nn_model_t *m = NULL;
        TH_CHECK(zoo_build(cases[k].arch, cases[k].size, 2, 7, &m) == 0, "%s", cases[k].arch);
        if (!m)
            continue;
        int concats = 0;
        for (int i = 0; i < m->n_nodes; i++)
            concats += m->nodes[i].op == NN_CONCAT;
        for (int mode = NN_PLAN_TRAIN; mode <= NN_PLAN_INFER; mode++) {
            TH_CHECK(nn_model_set_plan(m, (nn_plan_mode)mode) == 0 && nn_model_prepare(m, 2) == 0,
                     "prepare");
            TH_CHECK(count_views(m) == cases[k].views, "%s mode %d: %d views of %d concats, "
                     "expected %d", cases[k].arch, mode, count_views(m), concats, cases[k].views);
        }
        nn_model_destroy(m);
    }
}

/* Training plan of DenseNet-121 with and without views (a kept concat is not
 * a view: keeping them all is the copying layout with the same plan rules). */
static void test_densenet_train_memory(void)
{
    nn_model_t *m = NULL;
    TH_CHECK(zoo_build("densenet121", 64, 2, 7, &m) == 0, "densenet121");
    if (!m)
        return;
    const size_t with_views = nn_model_runtime_bytes(m, 4, NN_PLAN_TRAIN);
    uint8_t *keep = calloc((size_t)m->n_nodes, 1);
    for (int i = 0; i < m->n_nodes; i++)
        keep[i] = m->nodes[i].op == NN_CONCAT;
    TH_CHECK(nn_model_keep_outputs(m, keep) == 0, "keep the concats");
    const size_t copies = nn_model_runtime_bytes(m, 4, NN_PLAN_TRAIN);
    printf("    densenet121 64x64 batch 4, training plan: %.1f MB with views, %.1f MB with "
           "copies\n", with_views / 1e6, copies / 1e6);
    TH_CHECK(with_views > 0 && with_views * 100 < copies * 85,
             "views %zu bytes vs copies %zu: expected at least 15 %% less", with_views, copies);
    free(keep);
    nn_model_destroy(m);
}

int main(void)
{
    sc_log_set_level(SC_LOG_ERROR + 1);
    TH_RUN(test_small_graph_rules);
    TH_RUN(test_small_graph_identical);
    TH_RUN(test_zoo_view_counts);
    TH_RUN(test_densenet_identical);
    TH_RUN(test_densenet_train_memory);
    return th_report();
}
