/*
 * test_bn_relu.c - a ReLU that runs the backward of the BN before it
 * (nn_bn_relu_pair, nn_bn_relu_backward).
 *
 * - Which ReLUs qualify: in a small graph, a ReLU after a BN of a convolution,
 *   after a BN of a concatenation view and after a BN of the input do; a ReLU
 *   whose BN is read by a second node, a ReLU after a convolution, and one
 *   whose BN's gradient is kept (nn_model_keep) do not.
 * - The fused backward changes nothing: input gradients (plain and folded
 *   forward, standard and guided ReLUs, batch 1 and 3) are bit-identical to the
 *   same model with every flag cleared (the ReLU's backward, then the BN's),
 *   with stale values left in every buffer from an earlier pass.
 */
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"
#include "nn/op.h"
#include "rng.h"
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

/* Ids of the ReLUs expected to qualify go to yes[], the others to no[]. */
static nn_model_t *graph(int *yes, int *no)
{
    nn_model_t *m = nn_model_create(3, 9, 7);
    yes[0] = nn_add_relu(m, "input_bn_relu", bn(m, "bn_in", 0));
    int f0 = conv(m, "f0", yes[0], 4);
    yes[1] = nn_add_relu(m, "conv_bn_relu", bn(m, "bn_f0", f0));
    int f1 = conv(m, "f1", yes[1], 3);
    int view = nn_add_concat(m, "view", 2, (const int[]){f0, f1});
    yes[2] = nn_add_relu(m, "view_bn_relu", bn(m, "bn_view", view));
    int f2 = conv(m, "f2", yes[2], 4);
    int shared = bn(m, "bn_shared", f2);
    no[0] = nn_add_relu(m, "shared_bn_relu", shared);
    int also = conv(m, "also_reads_bn", shared, 2);
    no[1] = nn_add_relu(m, "conv_relu", conv(m, "f3", no[0], 2));
    int kept_bn = bn(m, "bn_kept", also);
    no[2] = nn_add_relu(m, "kept_bn_relu", kept_bn);
    int all = nn_add_concat(m, "heads", 2, (const int[]){no[1], no[2]});
    nn_add_dense(m, "logits", nn_add_gap(m, "gap", all), 3, 1);
    if (nn_model_finalize(m, 11) < 0 || nn_model_keep(m, kept_bn) < 0) {
        nn_model_destroy(m);
        return NULL;
    }
    th_randomize_bn(m, -1.5f, 1.5f); /* BN away from its identity initialization */
    return m;
}

/* Input gradient of class 1 for batch n: folded forward or not, guided or not. */
static int input_grad(nn_model_t *m, const float *x, int n, int fused, int guided, float *dx)
{
    int target[3] = {1, 2, 0};
    nn_backward_opts_t o = {.input_grad = 1, .guided_relu = guided};
    int rc = fused ? nn_forward_fused(m, x, n) : nn_forward(m, x, n, 0);
    return rc < 0 ? rc : nn_backward_logit(m, target, dx, &o);
}

static void test_bn_relu_pairs(void)
{
    int yes[3], no[3];
    nn_model_t *m = graph(yes, no);
    TH_CHECK(m != NULL, "graph");
    if (!m)
        return;
    TH_EQ_INT(nn_model_prepare(m, 3), 0);
    int flagged = 0;
    for (int i = 0; i < m->n_nodes; i++)
        flagged += m->nodes[i].bn_relu;
    TH_EQ_INT(flagged, 3);
    for (int k = 0; k < 3; k++) {
        TH_CHECK(m->nodes[yes[k]].bn_relu, "'%s' runs its BN's backward",
                 m->nodes[yes[k]].name);
        TH_CHECK(!m->nodes[no[k]].bn_relu, "'%s' does not", m->nodes[no[k]].name);
    }
    TH_CHECK(m->nodes[m->nodes[yes[2]].in[0] - 1].cview, "the BN of view_bn_relu reads a view");
    nn_model_destroy(m);
}

static void test_bn_relu_identical(void)
{
    int yes[3], no[3];
    nn_model_t *m = graph(yes, no);
    TH_CHECK(m != NULL, "graph");
    if (!m)
        return;
    const size_t in = nn_node_size(&m->nodes[0]);
    float *x = malloc(sizeof(float) * 3 * in);
    float *dx = malloc(sizeof(float) * 3 * in), *dx_ref = malloc(sizeof(float) * 3 * in);
    th_fill_uniform(x, 3 * in, 5, "test_bn_relu", -1.0f, 1.0f);
    TH_EQ_INT(nn_model_prepare(m, 3), 0);
    int differ = 0, cases = 0, nonzero = 0;
    for (int n = 1; n <= 3; n += 2)
        for (int fused = 0; fused < 2; fused++)
            for (int guided = 0; guided < 2; guided++) {
                int flags[64] = {0};
                for (int i = 0; i < m->n_nodes && i < 64; i++)
                    flags[i] = m->nodes[i].bn_relu;
                TH_EQ_INT(input_grad(m, x, n, fused, guided, dx), 0);
                for (int i = 0; i < m->n_nodes && i < 64; i++)
                    m->nodes[i].bn_relu = 0; /* the two-pass backward */
                TH_EQ_INT(input_grad(m, x, n, fused, guided, dx_ref), 0);
                for (int i = 0; i < m->n_nodes && i < 64; i++)
                    m->nodes[i].bn_relu = flags[i];
                cases++;
                differ += memcmp(dx, dx_ref, sizeof(float) * n * in) != 0;
                for (size_t k = 0; k < n * in; k++)
                    nonzero += dx[k] != 0.0f;
            }
    TH_EQ_INT(cases, 8);
    TH_EQ_INT(differ, 0);
    TH_CHECK(nonzero > (int)in, "the gradients are not all zero (%d nonzero)", nonzero);
    free(x);
    free(dx);
    free(dx_ref);
    nn_model_destroy(m);
}

int main(void)
{
    TH_RUN(test_bn_relu_pairs);
    TH_RUN(test_bn_relu_identical);
    return th_report();
}
