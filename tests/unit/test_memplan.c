/*
 * test_memplan.c - the memory plan of the engine (nn/memplan.h) and the batch
 * chosen from a per-rank memory budget (saliency.h, sal_budget.c).
 *
 * - Shared buffers change nothing: input and parameter gradients, logits and
 *   the Grad-CAM layer's activation and gradient are bit-identical to a
 *   model whose every node keeps its own buffers (nn_model_keep on all nodes,
 *   the allocation before the plan), for the zoo's ResNet-50, DenseNet-121
 *   and InceptionV3 at small sizes, in the inference and training plans.
 * - Gradients in place over a ReLU's (the add's inputs of a residual join
 *   sharing its buffer where the order of the backward allows) and the ReLU
 *   applied by the add before it: bit-identical to owned buffers on ResNet-50
 *   and on a graph where one input is read again after the join (no sharing
 *   there); a kept add holds a + b.
 * - The plans save what they should: inference < training < every node
 *   owning an output and a gradient.
 * - A model planned for inference refuses parameter gradients.
 * - A budget: in a child process, the batch chosen for the budget keeps the
 *   peak resident size (VmHWM) within 10 % of it while a full batch runs,
 *   and the Integrated Gradients map at that batch is bit-identical to the
 *   map at batch 3.
 * - LRP and DeepLIFT in the budget: a run listing them keeps every node's
 *   buffers (sal_budget_method) and the walk's workspace; the budget counts
 *   both (the planned bytes grow by at least every activation of the batch
 *   and the walk workspace), and in a child process the peak while a full
 *   batch of IG, LRP and DeepLIFT runs stays within 10 % of the budget.
 * - What a method holds once per model is counted only for the methods that
 *   hold it (sal_method_fixed_bytes: Expected Gradients' pool, XRAI's
 *   workspace): a full batch of IG, EG and XRAI peaks within 10 % of the
 *   budget.
 * - An inference-only model (InceptionV3 in a saliency workspace) holds no
 *   parameter gradients, the training plan allocates them and the inference
 *   plan frees them again; building it adds no more than its parameters, and
 *   its peak under a budget (with the run's copy of the base parameters) is
 *   within 10 % of the budget.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checks/check.h"
#include "nn/zoo.h"
#include "rng.h"
#include "saliency/relprop.h"
#include "saliency/saliency.h"
#include "sc.h"
#include "testhelp.h"

static void fill_input(float *x, size_t count, uint64_t seed)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(seed, "test_memplan"), 0, 0, 0);
    for (size_t i = 0; i < count; i++)
        x[i] = (float)(2.0 * rng_stream_uniform(&rs) - 1.0);
}

typedef struct pass_out {
    float *logits, *dx, *act, *agrad, *grads;
} pass_out_t;

/* One forward + backward at batch n: logits, input gradient, the Grad-CAM
 * layer's activation and gradient, and (training plan) parameter gradients. */
static int run_pass(nn_model_t *m, nn_plan_mode mode, int keep_all, int n, const float *x,
                    pass_out_t *po)
{
    const int g = nn_find(m, m->gradcam_layer);
    if (g <= 0 || nn_model_set_plan(m, mode) < 0)
        return -1;
    nn_model_keep(m, g);
    if (keep_all)
        for (int i = 0; i < m->n_nodes; i++)
            nn_model_keep(m, i);
    if (nn_model_prepare(m, n) < 0)
        return -1;
    const int lid = nn_logits_node(m);
    const size_t classes = nn_node_size(&m->nodes[lid]), in = nn_node_size(&m->nodes[0]);
    const size_t gs = (size_t)n * nn_node_size(&m->nodes[g]);
    int targets[4] = {0, 1, 1, 0};
    po->logits = malloc(sizeof(float) * n * classes);
    po->dx = malloc(sizeof(float) * n * in);
    po->act = malloc(sizeof(float) * gs);
    po->agrad = malloc(sizeof(float) * gs);
    po->grads = calloc(m->n_params, sizeof(float));
    /* parameter gradients exist in the training plan only */
    if ((mode == NN_PLAN_TRAIN) != (m->grads != NULL))
        return -2;
    if (m->grads)
        memset(m->grads, 0, sizeof(float) * m->n_params);
    nn_backward_opts_t o = {.input_grad = 1, .param_grads = mode == NN_PLAN_TRAIN};
    if (nn_forward(m, x, n, 0) < 0)
        return -1;
    memcpy(po->logits, nn_node_out(m, lid), sizeof(float) * n * classes);
    if (nn_backward_logit(m, targets, po->dx, &o) < 0)
        return -1;
    memcpy(po->act, nn_node_out(m, g), sizeof(float) * gs);
    memcpy(po->agrad, nn_node_grad(m, g), sizeof(float) * gs);
    if (m->grads)
        memcpy(po->grads, m->grads, sizeof(float) * m->n_params);
    return 0;
}

static void free_pass(pass_out_t *po)
{
    free(po->logits);
    free(po->dx);
    free(po->act);
    free(po->agrad);
    free(po->grads);
}

static void test_shared_buffers_change_nothing(void)
{
    static const struct { const char *arch; int size; } cases[] = {
        {"resnet50", 32}, {"densenet121", 32}, {"inceptionv3", 75}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        for (int mode = NN_PLAN_TRAIN; mode <= NN_PLAN_INFER; mode++) {
            nn_model_t *shared = NULL, *owned = NULL;
            TH_CHECK(zoo_build(cases[k].arch, cases[k].size, 2, 7, &shared) == 0 &&
                         zoo_build(cases[k].arch, cases[k].size, 2, 7, &owned) == 0,
                     "%s", cases[k].arch);
            if (!shared || !owned)
                return;
            const int n = 2;
            const size_t in = nn_node_size(&shared->nodes[0]);
            float *x = malloc(sizeof(float) * n * in);
            fill_input(x, n * in, 11 + k);
            pass_out_t a, b;
            TH_CHECK(run_pass(shared, (nn_plan_mode)mode, 0, n, x, &a) == 0, "shared pass");
            TH_CHECK(run_pass(owned, (nn_plan_mode)mode, 1, n, x, &b) == 0, "owned pass");
            const int g = nn_find(shared, shared->gradcam_layer);
            const size_t gs = (size_t)n * nn_node_size(&shared->nodes[g]);
            const size_t classes = nn_node_size(&shared->nodes[nn_logits_node(shared)]);
            TH_CHECK(!memcmp(a.logits, b.logits, sizeof(float) * n * classes), "%s mode %d logits",
                     cases[k].arch, mode);
            TH_CHECK(!memcmp(a.dx, b.dx, sizeof(float) * n * in), "%s mode %d input gradient",
                     cases[k].arch, mode);
            TH_CHECK(!memcmp(a.act, b.act, sizeof(float) * gs) &&
                         !memcmp(a.agrad, b.agrad, sizeof(float) * gs),
                     "%s mode %d Grad-CAM layer", cases[k].arch, mode);
            TH_CHECK(!memcmp(a.grads, b.grads, sizeof(float) * shared->n_params),
                     "%s mode %d parameter gradients", cases[k].arch, mode);
            /* the gradient is not trivially zero */
            double norm = 0.0;
            for (size_t i = 0; i < n * in; i++)
                norm += (double)a.dx[i] * a.dx[i];
            TH_CHECK(norm > 0.0, "%s: zero input gradient", cases[k].arch);
            /* the plan shares: far less than every node owning its buffers */
            TH_CHECK(shared->runtime_floats * 2 < owned->runtime_floats,
                     "%s mode %d: %zu floats shared vs %zu owned", cases[k].arch, mode,
                     shared->runtime_floats, owned->runtime_floats);
            free_pass(&a);
            free_pass(&b);
            free(x);
            nn_model_destroy(shared);
            nn_model_destroy(owned);
        }
    }
}

/* The residual add's backward inside the ReLU after it (nn_add_relu_pair):
 * found on every ResNet-50 block, and the same input gradients bit for bit
 * as the two passes it replaces, plain and guided, in the inference plan
 * (fused forward) and the training plan. */
static void test_add_relu_pairs(void)
{
    nn_model_t *m = NULL;
    TH_CHECK(zoo_build("resnet50", 32, 2, 5, &m) == 0, "build");
    if (!m)
        return;
    const int n = 2;
    const size_t in = nn_node_size(&m->nodes[0]);
    float *x = malloc(sizeof(float) * n * in);
    float *dx[2][2] = {{malloc(sizeof(float) * n * in), malloc(sizeof(float) * n * in)},
                       {malloc(sizeof(float) * n * in), malloc(sizeof(float) * n * in)}};
    fill_input(x, n * in, 21);
    const int targets[2] = {1, 0};
    for (int mode = NN_PLAN_TRAIN; mode <= NN_PLAN_INFER; mode++) {
        TH_CHECK(nn_model_set_plan(m, (nn_plan_mode)mode) == 0 && nn_model_prepare(m, n) == 0,
                 "prepare");
        int pairs = 0;
        for (int i = 0; i < m->n_nodes; i++)
            pairs += m->nodes[i].add_relu;
        TH_CHECK(pairs == 16, "mode %d: %d add-ReLU pairs, ResNet-50 has 16 blocks", mode, pairs);
        for (int fused = 0; fused < 2; fused++) {    /* 1: the pairs switched off */
            if (fused == 1)
                for (int i = 0; i < m->n_nodes; i++)
                    m->nodes[i].add_relu = 0;
            for (int guided = 0; guided < 2; guided++) {
                nn_backward_opts_t o = {.input_grad = 1, .guided_relu = guided};
                int rc = mode == NN_PLAN_INFER ? nn_forward_fused(m, x, n) : nn_forward(m, x, n, 0);
                TH_CHECK(rc == 0 && nn_backward_logit(m, targets, dx[fused][guided], &o) == 0,
                         "pass");
            }
        }
        for (int guided = 0; guided < 2; guided++) {
            TH_CHECK(!memcmp(dx[0][guided], dx[1][guided], sizeof(float) * n * in),
                     "mode %d guided %d: the paired backward changed the input gradient", mode,
                     guided);
            double norm = 0.0;
            for (size_t i = 0; i < n * in; i++)
                norm += (double)dx[0][guided][i] * dx[0][guided][i];
            TH_CHECK(norm > 0.0, "mode %d guided %d: zero input gradient", mode, guided);
        }
    }
    free(x);
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            free(dx[a][b]);
    nn_model_destroy(m);
}

/* A residual join whose second input feeds another convolution read after
 * the first input's gradient: input 1 (c1) is also read by c3, whose
 * backward adds into c1's gradient after the first ReLU ran the add's
 * backward but before c2 (input 0) read its gradient, so c1 may not compute
 * its gradient in place with c2's. Likewise r (ReLU of the first join) and c3
 * join a second add: r's own backward rewrites its buffer before c3 reads. */
static nn_model_t *two_joins(int ids[8])
{
    nn_model_t *m = nn_model_create(3, 8, 8);
    if (!m)
        return NULL;
    ids[0] = nn_add_conv(m, "c1", 0, 4, 3, 3, 1, 1, NULL, 1, 1);
    ids[1] = nn_add_conv(m, "c2", ids[0], 4, 3, 3, 1, 1, NULL, 1, 1);
    ids[2] = nn_add_conv(m, "c3", ids[0], 4, 1, 1, 1, 1, NULL, 1, 1);
    ids[3] = nn_add_add(m, "s", ids[1], ids[0]);
    ids[4] = nn_add_relu(m, "r", ids[3]);
    ids[5] = nn_add_add(m, "t", ids[4], ids[2]);
    ids[6] = nn_add_relu(m, "r2", ids[5]);
    ids[7] = nn_add_gap(m, "gap", ids[6]);
    nn_add_dense(m, "fc", ids[7], 3, 1);
    if (nn_model_finalize(m, 3) < 0) {
        nn_model_destroy(m);
        return NULL;
    }
    return m;
}

/* Gradients computed in place over a ReLU's (nn/memplan.c groups) and the
 * ReLU applied by the add or BN before it (nn_node_t.relu_fwd) change nothing:
 * input and parameter gradients, plain and guided, and the logits of a
 * training-mode forward, of two_joins, ResNet-50 and DenseNet-121 (whose
 * pre-activation BNs apply their ReLUs) against every node owning its
 * buffers; the groups form where the order allows (both inputs of every
 * ResNet-50 join share the ReLU's buffer) and not where it does not
 * (two_joins); a kept add holds a + b, not its ReLU. */
static void test_relu_gradients_in_place(void)
{
    int ids[8] = {0};
    const int n = 2;
    const int targets[2] = {1, 0};
    for (int arch = 0; arch < 3; arch++) {
        float *res[2][2] = {{NULL, NULL}, {NULL, NULL}}; /* [owned][guided]: dx and grads */
        float *train_logits[2] = {NULL, NULL};
        size_t in = 0, np = 0, classes = 0;
        for (int owned = 0; owned < 2; owned++) {
            nn_model_t *m = NULL;
            if (arch == 0)
                m = two_joins(ids);
            else
                zoo_build(arch == 1 ? "resnet50" : "densenet121", 32, 2, 9, &m);
            TH_CHECK(m != NULL, "arch %d: build", arch);
            if (!m)
                return;
            if (owned)
                for (int i = 0; i < m->n_nodes; i++)
                    nn_model_keep(m, i);
            TH_CHECK(nn_model_set_plan(m, NN_PLAN_TRAIN) == 0 && nn_model_prepare(m, n) == 0,
                     "arch %d: prepare", arch);
            in = nn_node_size(&m->nodes[0]);
            np = m->n_params;
            float *x = malloc(sizeof(float) * n * in);
            fill_input(x, n * in, 31 + arch);
            for (int guided = 0; guided < 2; guided++) {
                float *r = res[owned][guided] = malloc(sizeof(float) * (n * in + np));
                memset(m->grads, 0, sizeof(float) * np);
                nn_backward_opts_t o = {.input_grad = 1, .param_grads = 1, .guided_relu = guided};
                TH_CHECK(nn_forward(m, x, n, 0) == 0 && nn_backward_logit(m, targets, r, &o) == 0,
                         "arch %d: pass", arch);
                memcpy(r + n * in, m->grads, sizeof(float) * np);
            }
            if (arch == 0 && !owned) {
                const nn_node_t *nd = m->nodes;
                TH_CHECK(nd[ids[1]].grad == nd[ids[4]].grad && nd[ids[0]].grad != nd[ids[4]].grad,
                         "first join: c2 in place over r's gradient, c1 apart");
                TH_CHECK(nd[ids[4]].grad == nd[ids[6]].grad && nd[ids[2]].grad != nd[ids[6]].grad,
                         "second join: r in place over r2's gradient, c3 apart");
                TH_CHECK(nd[ids[3]].relu_fwd && nd[ids[5]].relu_fwd, "adds apply their ReLUs");
            }
            if (arch == 1 && !owned) {
                int joins = 0, shared = 0, fwd = 0, last_add = -1;
                for (int i = 0; i < m->n_nodes; i++) {
                    if (!m->nodes[i].add_relu)
                        continue;
                    const nn_node_t *add = &m->nodes[m->nodes[i].in[0]];
                    joins++;
                    fwd += add->relu_fwd;
                    last_add = m->nodes[i].in[0];
                    for (int q = 0; q < 2; q++)
                        shared += m->nodes[add->in[q]].grad == m->nodes[i].grad;
                }
                TH_CHECK(joins == 16 && shared == 32 && fwd == 16,
                         "ResNet-50: %d joins, %d inputs in place, %d adds with their ReLU", joins,
                         shared, fwd);
                /* a kept add owns its output: a + b, negative values included */
                TH_CHECK(last_add > 0 && nn_model_keep(m, last_add) == 0 &&
                             nn_model_prepare(m, n) == 0 && !m->nodes[last_add].relu_fwd &&
                             nn_forward(m, x, n, 0) == 0,
                         "kept add");
                size_t neg = 0;
                for (size_t i = 0; i < n * nn_node_size(&m->nodes[last_add]); i++)
                    neg += m->nodes[last_add].out[i] < 0.0f;
                TH_CHECK(neg > 0, "the kept add holds its ReLU's output, not a + b");
            }
            if (arch == 2 && !owned) {
                int pairs = 0, fwd = 0;
                for (int i = 0; i < m->n_nodes; i++)
                    if (m->nodes[i].bn_relu) {
                        pairs++;
                        fwd += m->nodes[m->nodes[i].in[0]].relu_fwd;
                    }
                TH_CHECK(pairs > 100 && fwd == pairs, "DenseNet-121: %d of %d BNs apply their ReLU",
                         fwd, pairs);
            }
            /* a training-mode forward (batch statistics) with the ReLUs applied as well */
            const int lid = nn_logits_node(m);
            classes = nn_node_size(&m->nodes[lid]);
            train_logits[owned] = malloc(sizeof(float) * n * classes);
            TH_CHECK(nn_forward(m, x, n, 1) == 0, "arch %d: training forward", arch);
            memcpy(train_logits[owned], nn_node_out(m, lid), sizeof(float) * n * classes);
            free(x);
            nn_model_destroy(m);
        }
        TH_CHECK(!memcmp(train_logits[0], train_logits[1], sizeof(float) * n * classes),
                 "arch %d: training-mode logits differ from every node owning its buffers", arch);
        free(train_logits[0]);
        free(train_logits[1]);
        for (int guided = 0; guided < 2; guided++) {
            TH_CHECK(!memcmp(res[0][guided], res[1][guided], sizeof(float) * (n * in + np)),
                     "arch %d guided %d: gradients differ from every node owning its buffers",
                     arch, guided);
            double norm = 0.0;
            for (size_t i = 0; i < n * in; i++)
                norm += (double)res[0][guided][i] * res[0][guided][i];
            TH_CHECK(norm > 0.0, "arch %d guided %d: zero input gradient", arch, guided);
            free(res[0][guided]);
            free(res[1][guided]);
        }
    }
}

static void test_plan_sizes(void)
{
    nn_model_t *m = NULL;
    TH_CHECK(zoo_build("inceptionv3", 299, 2, 1, &m) == 0, "build");
    if (!m)
        return;
    size_t all = 0;
    for (int i = 0; i < m->n_nodes; i++)
        all += 2 * 16 * nn_node_size(&m->nodes[i]) * sizeof(float);
    const size_t infer = nn_model_runtime_bytes(m, 16, NN_PLAN_INFER);
    const size_t train = nn_model_runtime_bytes(m, 16, NN_PLAN_TRAIN);
    printf("    inceptionv3 299 batch 16: every buffer %.0f MB, training plan %.0f MB, "
           "inference plan %.0f MB\n", all / 1048576.0, train / 1048576.0, infer / 1048576.0);
    TH_CHECK(infer > 0 && infer < train && train < all, "infer %zu train %zu all %zu", infer,
             train, all);
    /* the inference plan keeps under a third of every node's output and gradient */
    TH_CHECK(infer * 3 < all, "infer %zu of %zu", infer, all);
    /* linear in the batch, up to the fixed workspace */
    const size_t b1 = nn_model_runtime_bytes(m, 1, NN_PLAN_INFER);
    const size_t b2 = nn_model_runtime_bytes(m, 2, NN_PLAN_INFER);
    TH_CHECK(b2 > b1 && infer > 8 * (b2 - b1) && infer < 24 * (b2 - b1), "b1 %zu b2 %zu b16 %zu",
             b1, b2, infer);
    nn_model_destroy(m);
}

static void test_infer_plan_refuses_param_grads(void)
{
    nn_model_t *m = NULL;
    TH_CHECK(zoo_democnn(&m, 32, 2, 1) == 0, "build");
    if (!m)
        return;
    TH_CHECK(nn_model_set_plan(m, NN_PLAN_INFER) == 0 && nn_model_prepare(m, 1) == 0, "prepare");
    TH_CHECK(m->grads == NULL, "an inference plan holds parameter gradients");
    float x[3 * 32 * 32];
    fill_input(x, sizeof x / sizeof x[0], 3);
    int target = 1;
    nn_backward_opts_t o = {.param_grads = 1};
    TH_CHECK(nn_forward(m, x, 1, 0) == 0, "forward");
    TH_CHECK(nn_backward_logit(m, &target, NULL, &o) == SC_ERR_ARG, "param grads accepted");
    TH_CHECK(nn_model_set_plan(m, NN_PLAN_TRAIN) == 0 && nn_forward(m, x, 1, 0) == 0 &&
                 nn_backward_logit(m, &target, NULL, &o) == 0,
             "training plan refused param grads");
    double gnorm = 0.0;
    for (size_t i = 0; m->grads && i < m->n_params; i++)
        gnorm += fabs(m->grads[i]);
    TH_CHECK(m->grads && gnorm > 0.0, "training plan: no parameter gradient");
    TH_CHECK(nn_model_set_plan(m, NN_PLAN_INFER) == 0 && m->grads == NULL,
             "back to inference: parameter gradients kept");
    nn_model_destroy(m);
}

/* Child side of a measured budget: one process, a fresh peak. */
typedef struct budget_child {
    int batch;
    double start, model, resident, held, planned, peak, params;
    int grads_null;
} budget_child_t;

/* Runs `fn` in a child process and reads back its budget_child_t. */
static int run_child(void (*fn)(budget_child_t *), budget_child_t *r)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        budget_child_t c;
        memset(&c, 0, sizeof c);
        fn(&c);
        ssize_t w = write(fds[1], &c, sizeof c);
        _exit(w == (ssize_t)sizeof c ? 0 : 1);
    }
    close(fds[1]);
    memset(r, 0, sizeof *r);
    ssize_t got = read(fds[0], r, sizeof *r);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return got == (ssize_t)sizeof *r && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* A child's peak against a budget of budget_mb: never 10 % above it, and the estimate
 * (resident + held + planned, with the reserve the batch choice keeps for the BLAS and
 * the run's per-image arrays, sal_reserve_bytes) fills it within 10 % (the fused passes
 * leave some planned pages untouched: the patch matrices of the convolutions they run by
 * Winograd, kept for unfused forwards; so the peak itself only within 30 %). */
static void check_budget_use(const budget_child_t *r, double budget_mb)
{
    const double budget = budget_mb * 1048576.0, reserve = sal_reserve_bytes(budget);
    TH_CHECK(r->peak <= 1.10 * budget, "peak %.0f MB more than 10 %% above the budget %.0f MB",
             r->peak / 1048576.0, budget_mb);
    TH_CHECK(r->resident + r->held + r->planned + reserve >= 0.90 * budget &&
                 r->peak >= 0.70 * budget,
             "resident %.0f + held %.0f + planned %.0f + reserve %.0f MB (peak %.0f MB) leave "
             "more than 10 %% of the budget unused", r->resident / 1048576.0,
             r->held / 1048576.0, r->planned / 1048576.0, reserve / 1048576.0,
             r->peak / 1048576.0);
}


#define EG_BUDGET_MB 256.0
#define EG_SIZE 128

/* A run listing ig, eg and xrai under a budget: the batch from the resident size plus what
 * the methods hold once (the Expected Gradients pool, XRAI's workspace), then one full batch
 * of each; r->batch -1 on failure. */
static void eg_xrai_child(budget_child_t *r)
{
    const char *methods[3] = {"ig", "eg", "xrai"};
    const sal_method_t *table[3] = {&sal_method_ig, &sal_method_eg, &sal_method_xrai};
    nn_model_t *m = NULL;
    sal_ws_t *ws = NULL;
    r->batch = -1;
    if (zoo_democnn(&m, EG_SIZE, 2, 1) < 0)
        return;
    const size_t chw = nn_node_size(&m->nodes[0]);
    sal_params_t p = sal_params_default();
    r->resident = sal_status_bytes("VmRSS");
    for (int k = 0; k < 3; k++)
        r->held += (double)sal_method_fixed_bytes(m, methods[k], &p);
    int batch = 0;
    float *pool = malloc(sizeof(float) * chw * p.eg_pool), *x = malloc(sizeof(float) * chw);
    float *map = malloc(sizeof(float) * chw);
    if (!pool || !x || !map ||
        sal_batch_for_memory(&m, 1, EG_BUDGET_MB * 1048576.0, r->resident + r->held, 4096,
                             "test", &batch) < 0 ||
        sal_ws_create(&ws, m, batch, NULL) < 0)
        goto done;
    r->planned = (double)sal_ws_bytes(m, batch);
    fill_input(pool, chw * p.eg_pool, 21);
    fill_input(x, chw, 22);
    if (sal_ws_set_baselines(ws, pool, p.eg_pool) < 0)
        goto done;
    free(pool); /* the run's staging copy is gone once the workspace holds the pool */
    pool = NULL;
    p.ig_steps = p.eg_samples = p.xrai_steps = batch;
    for (int k = 0; k < 3; k++)
        if (sal_compute(table[k], &p, m, ws, x, 1, NULL, (sal_key_t){0}, map) < 0)
            goto done;
    r->peak = sal_status_bytes("VmHWM");
    r->batch = batch;
done:
    free(pool);
    free(x);
    free(map);
    sal_ws_destroy(ws);
    nn_model_destroy(m);
}

static void test_budget_eg_and_xrai(void)
{
    /* what each method holds once per model */
    nn_model_t *m = NULL;
    TH_CHECK(zoo_democnn(&m, EG_SIZE, 2, 1) == 0, "democnn");
    if (!m)
        return;
    const sal_params_t p = sal_params_default();
    const size_t chw = nn_node_size(&m->nodes[0]);
    TH_CHECK(sal_method_fixed_bytes(m, "ig", &p) == 0 && sal_method_fixed_bytes(m, "grad", &p) == 0,
             "a job without eg or xrai holds a method's fixed bytes");
    TH_CHECK(sal_method_fixed_bytes(m, "eg", &p) == (size_t)p.eg_pool * chw * sizeof(float),
             "eg: pool of %d inputs not counted", p.eg_pool);
    TH_CHECK(sal_method_fixed_bytes(m, "xrai", &p) > 3 * chw * sizeof(float) &&
                 sal_method_fixed_bytes(m, "smprt-xrai", &p) ==
                     sal_method_fixed_bytes(m, "xrai", &p),
             "xrai's workspace not counted");
    nn_model_destroy(m);

    budget_child_t r;
    const double budget = EG_BUDGET_MB * 1048576.0;
    TH_CHECK(run_child(eg_xrai_child, &r) == 0 && r.batch > 0, "child failed (%d)", r.batch);
    printf("    budget %.0f MB with ig, eg, xrai at %d px: batch %d, resident before %.0f MB, "
           "held once %.0f MB, planned workspace %.0f MB, peak %.0f MB (%.1f %% of the budget)\n",
           EG_BUDGET_MB, EG_SIZE, r.batch, r.resident / 1048576.0, r.held / 1048576.0,
           r.planned / 1048576.0, r.peak / 1048576.0, 100.0 * r.peak / budget);
    check_budget_use(&r, EG_BUDGET_MB); /* as test_budget_peak_and_identical_maps */
}

/* An inference-only InceptionV3: no parameter-gradient slab beside its parameters, and the
 * budget's peak within 10 %. */
#define INFER_BUDGET_MB 400.0
static void infer_child(budget_child_t *r)
{
    nn_model_t *m = NULL;
    sal_ws_t *ws = NULL;
    float *x = NULL, *map = NULL;
    r->batch = -1;
    r->start = sal_status_bytes("VmRSS");
    if (zoo_build("inceptionv3", 96, 2, 1, &m) < 0)
        return;
    r->model = sal_status_bytes("VmRSS");
    r->params = sizeof(float) * (double)m->n_params;
    r->resident = r->model;
    r->held = r->params; /* the run's base-parameter copy */
    int batch = 0;
    const size_t chw = nn_node_size(&m->nodes[0]);
    float *base = malloc(sizeof(float) * m->n_params);
    x = malloc(sizeof(float) * chw);
    map = malloc(sizeof(float) * chw);
    if (!base || !x || !map ||
        sal_batch_for_memory(&m, 1, INFER_BUDGET_MB * 1048576.0, r->resident + r->held, 4096,
                             "test", &batch) < 0)
        goto done;
    memcpy(base, m->params, sizeof(float) * m->n_params);
    if (sal_ws_create(&ws, m, batch, NULL) < 0)
        goto done;
    r->planned = (double)sal_ws_bytes(m, batch);
    fill_input(x, chw, 23);
    sal_params_t p = sal_params_default();
    p.ig_steps = batch;
    if (sal_compute(&sal_method_ig, &p, m, ws, x, 1, NULL, (sal_key_t){0}, map) < 0)
        goto done;
    /* Grad-CAM's unfused pass (an all-zero CAM is undefined, not an error) */
    const int cam_rc = sal_compute(&sal_method_gcam, &p, m, ws, x, 1, NULL, (sal_key_t){0}, map);
    if (cam_rc < 0 && cam_rc != SC_ERR_UNDEFINED)
        goto done;
    r->grads_null = m->grads == NULL;
    r->peak = sal_status_bytes("VmHWM");
    r->batch = batch;
done:
    free(base);
    free(x);
    free(map);
    sal_ws_destroy(ws);
    nn_model_destroy(m);
}

static void test_budget_inference_model(void)
{
    budget_child_t r;
    const double budget = INFER_BUDGET_MB * 1048576.0;
    TH_CHECK(run_child(infer_child, &r) == 0 && r.batch > 0, "child failed (%d)", r.batch);
    printf("    inceptionv3 96 px, budget %.0f MB: parameters %.0f MB, the model added %.0f MB "
           "resident; batch %d, planned workspace %.0f MB, peak %.0f MB (%.1f %% of the "
           "budget)\n", INFER_BUDGET_MB, r.params / 1048576.0, (r.model - r.start) / 1048576.0,
           r.batch, r.planned / 1048576.0, r.peak / 1048576.0, 100.0 * r.peak / budget);
    TH_CHECK(r.grads_null, "the saliency model holds parameter gradients");
    /* a gradient slab would double it */
    TH_CHECK(r.model - r.start < 1.3 * r.params, "building the model added %.0f MB for %.0f MB "
             "of parameters", (r.model - r.start) / 1048576.0, r.params / 1048576.0);
    check_budget_use(&r, INFER_BUDGET_MB);
}

#define BUDGET_SIZE 64

/* IG map of x with `batch` inputs per engine call and `steps` steps; map [3, S, S]. */
static int ig_map(nn_model_t *m, int batch, int steps, const float *x, float *map)
{
    sal_ws_t *ws = NULL;
    if (sal_ws_create(&ws, m, batch, NULL) < 0)
        return -1;
    sal_params_t p = sal_params_default();
    p.ig_steps = steps;
    int rc = sal_compute(&sal_method_ig, &p, m, ws, x, 1, NULL, (sal_key_t){0}, map);
    sal_ws_destroy(ws);
    return rc;
}

static void test_budget_peak_and_identical_maps(void)
{
    const double budget = 320.0 * 1048576.0;
    const size_t chw = 3 * BUDGET_SIZE * BUDGET_SIZE;
    float *x = malloc(sizeof(float) * chw);
    fill_input(x, chw, 5);
    int fds[2];
    TH_CHECK(pipe(fds) == 0, "pipe");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        /* child: a fresh peak; choose the batch, run one full batch of IG */
        close(fds[0]);
        struct { int batch; double resident, planned, peak; } r = {0, 0, 0, 0};
        float *map = malloc(sizeof(float) * chw);
        nn_model_t *m = NULL;
        int ok = zoo_democnn(&m, BUDGET_SIZE, 2, 1) == 0;
        r.resident = sal_status_bytes("VmRSS");
        nn_model_t *list[1] = {m};
        ok = ok && sal_batch_for_memory(list, 1, budget, r.resident, 4096, "test", &r.batch) == 0;
        r.planned = ok ? (double)sal_ws_bytes(m, r.batch) : 0.0;
        ok = ok && ig_map(m, r.batch, r.batch, x, map) == 0;
        r.peak = sal_status_bytes("VmHWM");
        if (!ok)
            r.batch = -1;
        ssize_t w1 = write(fds[1], &r, sizeof r);
        ssize_t w2 = write(fds[1], map, sizeof(float) * chw);
        _exit(w1 == (ssize_t)sizeof r && w2 == (ssize_t)(sizeof(float) * chw) ? 0 : 1);
    }
    close(fds[1]);
    struct { int batch; double resident, planned, peak; } r = {0, 0, 0, 0};
    float *child_map = calloc(chw, sizeof(float));
    ssize_t got = read(fds[0], &r, sizeof r);
    size_t off = 0;
    while (got == (ssize_t)sizeof r && off < sizeof(float) * chw) {
        ssize_t g = read(fds[0], (char *)child_map + off, sizeof(float) * chw - off);
        if (g <= 0)
            break;
        off += (size_t)g;
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    TH_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0 && r.batch > 0, "child failed (%d)",
             r.batch);
    printf("    budget %.0f MB: batch %d, resident before %.0f MB, planned workspace %.0f MB, "
           "peak %.0f MB (%.1f %% of the budget)\n", budget / 1048576.0, r.batch,
           r.resident / 1048576.0, r.planned / 1048576.0, r.peak / 1048576.0,
           100.0 * r.peak / budget);
    /* Never above the budget by more than 10 %; the planned total within 10 % of it. The
     * resident peak of IG sits below the plan: its fused passes (nn/fuse.h) never write the
     * folded convolutions' own outputs, whose pages stay untouched, while Grad-CAM's
     * unfused passes in the same workspace need them. */
    TH_CHECK(r.peak <= 1.10 * budget, "peak %.0f MB more than 10 %% above the budget %.0f MB",
             r.peak / 1048576.0, budget / 1048576.0);
    TH_CHECK(r.resident + r.planned >= 0.90 * budget && r.peak >= 0.75 * budget,
             "resident %.0f MB + planned %.0f MB (peak %.0f MB) leave more than 10 %% of the "
             "budget %.0f MB unused", r.resident / 1048576.0, r.planned / 1048576.0,
             r.peak / 1048576.0, budget / 1048576.0);
    TH_CHECK(r.batch > 8, "budget chose batch %d only", r.batch);
    /* the same map at another batch: bit-identical */
    if (r.batch > 0) {
        nn_model_t *m = NULL;
        float *map = malloc(sizeof(float) * chw);
        TH_CHECK(zoo_democnn(&m, BUDGET_SIZE, 2, 1) == 0 && ig_map(m, 3, r.batch, x, map) == 0,
                 "batch-3 map");
        TH_CHECK(off == sizeof(float) * chw && !memcmp(map, child_map, sizeof(float) * chw),
                 "IG map at batch %d differs from batch 3", r.batch);
        double norm = 0.0;
        for (size_t i = 0; i < chw; i++)
            norm += fabs(map[i]);
        TH_CHECK(norm > 0.0, "zero map");
        free(map);
        nn_model_destroy(m);
    }
    /* a budget below batch 1: a clear error */
    nn_model_t *m = NULL;
    zoo_democnn(&m, BUDGET_SIZE, 2, 1);
    nn_model_t *list[1] = {m};
    int batch = 5;
    TH_CHECK(sal_batch_for_memory(list, 1, 64.0 * 1048576.0, 60.0 * 1048576.0, 16, "job.ini",
                                  &batch) == SC_ERR_ARG && batch == 0,
             "a budget below batch 1 accepted (batch %d)", batch);
    nn_model_destroy(m);
    free(child_map);
    free(x);
}

static void test_budget_keep_all(void)
{
    const double budget = 160.0 * 1048576.0;
    const size_t chw = 3 * BUDGET_SIZE * BUDGET_SIZE;
    /* the planned bytes: grad changes nothing, lrp (here its sMPRT form) keeps every node */
    nn_model_t *m = NULL;
    TH_CHECK(zoo_democnn(&m, BUDGET_SIZE, 2, 1) == 0, "democnn");
    if (!m)
        return;
    nn_model_t *list[1] = {m};
    const int b = 8;
    const size_t plain = sal_ws_bytes(m, b);
    TH_CHECK(sal_budget_method(list, 1, "grad") == 0 && sal_ws_bytes(m, b) == plain,
             "grad changed the plan");
    TH_EQ_INT(sal_method_keeps_all("deeplift"), 1);
    TH_EQ_INT(sal_method_keeps_all("smprt-lrp"), 1);
    TH_EQ_INT(sal_method_keeps_all("lrpx"), 0);
    TH_CHECK(sal_budget_method(list, 1, "smprt-lrp") == 0, "keep all");
    const size_t kept = sal_ws_bytes(m, b);
    size_t acts = 0;
    for (int i = 0; i < m->n_nodes; i++)
        acts += nn_node_size(&m->nodes[i]);
    const size_t walk = rp_ws_bytes(m);
    printf("    democnn %d px, batch %d: workspace %.1f MB, with LRP/DeepLIFT %.1f MB (every "
           "activation of the batch %.1f MB, the walk %.1f MB)\n", BUDGET_SIZE, b,
           plain / 1048576.0, kept / 1048576.0, (double)acts * b * 4 / 1048576.0,
           walk / 1048576.0);
    TH_CHECK(walk >= 2 * acts * sizeof(float), "walk workspace %zu below rel + base_out", walk);
    TH_CHECK(kept >= acts * b * sizeof(float) + walk && kept > plain + walk,
             "keep-all workspace %zu not counted (plain %zu)", kept, plain);
    nn_model_destroy(m);

    /* measured: the batch for the budget, then a full batch of IG, LRP and DeepLIFT */
    float *x = malloc(sizeof(float) * chw);
    fill_input(x, chw, 7);
    int fds[2];
    TH_CHECK(pipe(fds) == 0, "pipe");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        struct { int batch, old_batch; double resident, planned, peak; } r = {0};
        nn_model_t *cm = NULL;
        int ok = zoo_democnn(&cm, BUDGET_SIZE, 2, 1) == 0;
        nn_model_t *cl[1] = {cm};
        r.resident = sal_status_bytes("VmRSS");
        /* what the budget chose before it counted the walk */
        ok = ok && sal_batch_for_memory(cl, 1, budget, r.resident, 4096, "test", &r.old_batch) == 0;
        const char *methods[3] = {"ig", "lrp", "deeplift"};
        for (int k = 0; k < 3 && ok; k++)
            ok = sal_budget_method(cl, 1, methods[k]) == 0;
        ok = ok && sal_batch_for_memory(cl, 1, budget, r.resident, 4096, "test", &r.batch) == 0;
        r.planned = ok ? (double)sal_ws_bytes(cm, r.batch) : 0.0;
        sal_ws_t *ws = NULL;
        ok = ok && sal_ws_create(&ws, cm, r.batch, NULL) == 0;
        float *map = malloc(sizeof(float) * chw);
        sal_params_t p = sal_params_default();
        p.ig_steps = r.batch;
        ok = ok && map && sal_compute(&sal_method_ig, &p, cm, ws, x, 1, NULL, (sal_key_t){0}, map) == 0;
        ok = ok && sal_compute(&sal_method_lrp, &p, cm, ws, x, 1, NULL, (sal_key_t){0}, map) == 0;
        ok = ok && sal_compute(&sal_method_deeplift, &p, cm, ws, x, 1, NULL, (sal_key_t){0},
                               map) == 0;
        r.peak = sal_status_bytes("VmHWM");
        if (!ok)
            r.batch = -1;
        ssize_t w1 = write(fds[1], &r, sizeof r);
        _exit(w1 == (ssize_t)sizeof r ? 0 : 1);
    }
    close(fds[1]);
    struct { int batch, old_batch; double resident, planned, peak; } r = {0};
    ssize_t got = read(fds[0], &r, sizeof r);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    TH_CHECK(got == (ssize_t)sizeof r && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
             r.batch > 0, "child failed (%d)", r.batch);
    printf("    budget %.0f MB with ig, lrp, deeplift: batch %d (%d when the walk was not "
           "counted), resident before %.0f MB, planned %.0f MB, peak %.0f MB (%.1f %% of the "
           "budget)\n", budget / 1048576.0, r.batch, r.old_batch, r.resident / 1048576.0,
           r.planned / 1048576.0, r.peak / 1048576.0, 100.0 * r.peak / budget);
    TH_CHECK(r.peak <= 1.10 * budget, "peak %.0f MB more than 10 %% above the budget %.0f MB",
             r.peak / 1048576.0, budget / 1048576.0);
    TH_CHECK(r.batch < r.old_batch, "keeping every node did not lower the batch (%d vs %d)",
             r.batch, r.old_batch);
    free(x);
}

/* Which methods need Expected Gradients' reference pool is the method table's word
 * (needs_pool), not a name: sMPRT's denoised eg needs the pool as eg does, alone in a
 * method list or beside others, and is counted as eg is. */
static void test_pool_need_is_the_methods(void)
{
    const sal_method_t *eg = sal_method_find("eg"), *grad = sal_method_find("grad");
    const sal_method_t *ig = sal_method_find("ig"), *xrai = sal_method_find("xrai");
    TH_CHECK(eg && grad && ig && xrai, "method table");
    if (!eg || !grad || !ig || !xrai)
        return;
    chk_smooth_t sm;
    TH_EQ_INT(chk_smooth_init(&sm, eg, 2, 0.1, 3 * 8 * 8), 0);
    TH_CHECK(!strcmp(sm.method.name, "smprt-eg") && sm.method.needs_pool,
             "%s does not need the pool", sm.method.name);
    const sal_method_t *none[3] = {grad, ig, xrai};
    const sal_method_t *plain[2] = {grad, eg};
    const sal_method_t *denoised[2] = {grad, &sm.method};
    TH_EQ_INT(sal_methods_need_pool(none, 3), 0);
    TH_EQ_INT(sal_methods_need_pool(plain, 2), 1);
    TH_EQ_INT(sal_methods_need_pool(denoised, 2), 1);
    TH_EQ_INT(sal_methods_need_pool(denoised + 1, 1), 1);
    nn_model_t *m = NULL;
    if (zoo_democnn(&m, 16, 2, 1) == 0) {
        const sal_params_t p = sal_params_default();
        TH_CHECK(sal_method_fixed_bytes(m, "smprt-eg", &p) == sal_method_fixed_bytes(m, "eg", &p) &&
                     sal_method_fixed_bytes(m, "eg", &p) ==
                         (size_t)p.eg_pool * nn_node_size(&m->nodes[0]) * sizeof(float),
                 "smprt-eg's pool not counted as eg's");
    }
    nn_model_destroy(m);
    chk_smooth_free(&sm);
}

/* The pages a workspace touches follow the inputs its methods hand the engine, not its
 * batch: IG of 4 steps and SmoothGrad of 4 samples in a workspace of batch 16 grow the
 * process by about sal_ws_bytes at 4 inputs (sal_methods_inputs, what --plan counts),
 * far below the batch's 16. */
#define TOUCH_SIZE 128
#define TOUCH_BATCH 16
static void touched_child(budget_child_t *r)
{
    nn_model_t *m = NULL;
    sal_ws_t *ws = NULL;
    const size_t chw = 3 * TOUCH_SIZE * TOUCH_SIZE;
    float *x = malloc(sizeof(float) * chw), *map = malloc(sizeof(float) * chw);
    r->batch = -1;
    if (!x || !map || zoo_democnn(&m, TOUCH_SIZE, 2, 1) < 0)
        goto done;
    fill_input(x, chw, 31);
    sal_params_t p = sal_params_default();
    p.ig_steps = p.sg_samples = 4;
    /* warm-up at batch 1: the BLAS library's buffers and the model's own arrays */
    if (sal_ws_create(&ws, m, 1, NULL) < 0 ||
        sal_compute(&sal_method_grad, &p, m, ws, x, 1, NULL, (sal_key_t){0}, map) < 0)
        goto done;
    sal_ws_destroy(ws);
    ws = NULL;
    const sal_method_t *list[3] = {&sal_method_grad, &sal_method_ig, &sal_method_sg};
    r->batch = sal_methods_inputs(list, 3, &p, TOUCH_BATCH);
    r->planned = (double)sal_ws_bytes(m, r->batch);
    r->held = (double)sal_ws_bytes(m, TOUCH_BATCH);
    r->resident = sal_status_bytes("VmHWM");
    if (sal_ws_create(&ws, m, TOUCH_BATCH, NULL) < 0) {
        r->batch = -1;
        goto done;
    }
    for (int k = 0; k < 3; k++)
        if (sal_compute(list[k], &p, m, ws, x, 1, NULL, (sal_key_t){0}, map) < 0)
            r->batch = -1;
    r->peak = sal_status_bytes("VmHWM");
done:
    sal_ws_destroy(ws);
    nn_model_destroy(m);
    free(x);
    free(map);
}

static void test_touched_by_inputs(void)
{
    sal_params_t p = sal_params_default();
    p.ig_steps = 7;
    p.sg_samples = 3;
    const sal_method_t *some[3] = {sal_method_find("grad"), sal_method_find("ig"),
                                   sal_method_find("sg")};
    TH_EQ_INT(sal_methods_inputs(some, 3, &p, 16), 7);
    TH_EQ_INT(sal_methods_inputs(some, 3, &p, 5), 5);
    TH_EQ_INT(sal_methods_inputs(some, 1, &p, 16), 1);
    const sal_method_t *unknown[2] = {sal_method_find("grad"), sal_method_find("occlusion")};
    TH_EQ_INT(sal_methods_inputs(unknown, 2, &p, 16), 16); /* occlusion does not say: all */
    budget_child_t r;
    TH_CHECK(run_child(touched_child, &r) == 0 && r.batch == 4, "child failed (%d)", r.batch);
    const double grew = r.peak - r.resident;
    printf("    democnn %d px, batch %d: the maps grew the peak by %.1f MB; counted at %d inputs "
           "%.1f MB (%.2fx), at the batch %.1f MB (%.2fx)\n", TOUCH_SIZE, TOUCH_BATCH,
           grew / 1048576.0, r.batch, r.planned / 1048576.0, r.planned / grew,
           r.held / 1048576.0, r.held / grew);
    /* the warm-up left the folded convolutions and some freed pages resident: above 1x;
     * and these three methods' fused passes never touch the patch matrix that the
     * workspace keeps for unfused forwards of the Winograd shapes (an audit's target
     * forward does); the growth moves by ~2 % with the heap's layout (1.58x-1.61x
     * for the same plan) */
    TH_CHECK(r.planned >= 0.9 * grew && r.planned <= 1.7 * grew,
             "counted at the inputs: %.1f MB for a growth of %.1f MB", r.planned / 1048576.0,
             grew / 1048576.0);
    TH_CHECK(r.held > 1.5 * grew, "the whole batch (%.1f MB) is not above the growth (%.1f MB)",
             r.held / 1048576.0, grew / 1048576.0);
}

int main(void)
{
    sc_log_set_level(SC_LOG_ERROR + 1);
    /* first: the budget's child process starts from a small resident size */
    TH_RUN(test_budget_peak_and_identical_maps);
    TH_RUN(test_budget_keep_all);
    TH_RUN(test_budget_eg_and_xrai);
    TH_RUN(test_pool_need_is_the_methods);
    TH_RUN(test_touched_by_inputs);
    TH_RUN(test_budget_inference_model);
    TH_RUN(test_plan_sizes);
    TH_RUN(test_infer_plan_refuses_param_grads);
    TH_RUN(test_shared_buffers_change_nothing);
    TH_RUN(test_add_relu_pairs);
    TH_RUN(test_relu_gradients_in_place);
    return th_report();
}
