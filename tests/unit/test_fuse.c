/*
 * test_fuse.c - batch normalization folded into convolutions (nn/fuse.h):
 * nn_forward_fused and the backward after it against the unfolded passes
 * (logits, input gradients, guided gradients), the fold plan, the folded
 * cache following every parameter change, and determinism; a ReLU taken
 * into a convolution without a BN, average pools commuted with the 1x1
 * convolutions after them, sibling groups (the same bits as each member
 * alone, whole passes, partial ones, after a member's weights change), and
 * the GELU applied while a pointwise convolution packs its input.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv_packed.h"
#include "nn/fuse.h"
#include "nn/model.h"
#include "nn/op.h"
#include "nn/zoo.h"
#include "nnhelp.h"
#include "rng.h"
#include "sc.h"
#include "testhelp.h"

static void fill_normal(float *x, size_t count, uint64_t seed)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(seed, "fuse"), 0, 0, 0);
    for (size_t i = 0; i < count; i++)
        x[i] = (float)rng_stream_normal(&rs);
}

typedef struct pass_out {
    float *logits, *dx;
} pass_out_t;

/* Logits and input gradient of target class 0 for a batch of n; fused or not. */
static int run_pass(nn_model_t *m, const float *x, int n, int fused, int guided, pass_out_t *r)
{
    int targets[8] = {0};
    nn_backward_opts_t o = {.input_grad = 1, .guided_relu = guided};
    int rc = fused ? nn_forward_fused(m, x, n) : nn_forward(m, x, n, 0);
    if (rc < 0)
        return rc;
    const int lid = nn_logits_node(m);
    memcpy(r->logits, nn_node_out(m, lid), sizeof(float) * n * nn_node_size(&m->nodes[lid]));
    return nn_backward_logit(m, targets, r->dx, &o);
}

static void pass_alloc(nn_model_t *m, int n, pass_out_t *r)
{
    r->logits = calloc((size_t)n * m->num_classes, sizeof(float));
    r->dx = calloc((size_t)n * nn_node_size(&m->nodes[0]), sizeof(float));
}

static void pass_free(pass_out_t *r)
{
    free(r->logits);
    free(r->dx);
}

/* Fused against unfused for one architecture: values within float rounding
 * (the input gradient too unless grads is 0). */
static void check_arch_grads(const char *arch, int size, int expect_relu_folds, int grads)
{
    nn_model_t *m = NULL;
    const int n = 3;
    TH_CHECK(zoo_build(arch, size, 2, 7, &m) == 0, "build %s", arch);
    if (!m)
        return;
    th_perturb_bn(m, 11);
    TH_CHECK(nn_model_prepare(m, n) == 0, "prepare");
    const size_t in = nn_node_size(&m->nodes[0]);
    float *x = calloc((size_t)n * in, sizeof(float));
    fill_normal(x, (size_t)n * in, 3);
    pass_out_t ref, fused;
    pass_alloc(m, n, &ref);
    pass_alloc(m, n, &fused);
    for (int guided = 0; guided <= 1; guided++) {
        TH_CHECK(run_pass(m, x, n, 0, guided, &ref) == 0, "%s unfused pass", arch);
        TH_CHECK(run_pass(m, x, n, 1, guided, &fused) == 0, "%s fused pass", arch);
        double el = th_rel_err(fused.logits, ref.logits, (size_t)n * m->num_classes);
        double eg = th_rel_err(fused.dx, ref.dx, (size_t)n * in);
        TH_CHECK(el < 2e-5, "%s guided=%d: fused logits differ by %g", arch, guided, el);
        TH_CHECK(eg < 2e-4 || !grads, "%s guided=%d: fused input gradient differs by %g", arch,
                 guided, eg);
        TH_CHECK(el > 0 || eg > 0 || guided, "%s: fused equals unfused bit for bit: nothing folded?",
                 arch);
    }
    int with_relu = 0, folds = nn_fuse_count(m->fuse, &with_relu);
    int convs = 0;
    for (int i = 0; i < m->n_nodes; i++)
        convs += m->nodes[i].op == NN_CONV;
    TH_CHECK(folds == convs, "%s: %d of %d convolutions folded", arch, folds, convs);
    TH_CHECK(with_relu == expect_relu_folds, "%s: %d folds with a ReLU, expected %d", arch,
             with_relu, expect_relu_folds);
    pass_free(&ref);
    pass_free(&fused);
    free(x);
    nn_model_destroy(m);
}

static void check_arch(const char *arch, int size, int expect_relu_folds)
{
    check_arch_grads(arch, size, expect_relu_folds, 1);
}

static int count_commuted(const nn_model_t *m)
{
    int k = 0;
    for (int i = 0; i < m->n_nodes; i++)
        k += nn_fuse_commuted(m, i) >= 0;
    return k;
}

static void test_fused_matches_unfused(void)
{
    /* ResNet-18: 20 convolutions, each followed by BN; the last BN of each of the
     * 8 blocks and the 3 downsample BNs feed an add, the other 9 a ReLU. */
    check_arch("resnet18", 64, 9);
    /* democnn: conv -> BN -> ReLU throughout */
    nn_model_t *m = NULL;
    TH_CHECK(zoo_democnn(&m, 32, 2, 8) == 0, "build democnn");
    int convs = 0;
    for (int i = 0; m && i < m->n_nodes; i++)
        convs += m->nodes[i].op == NN_CONV;
    nn_model_destroy(m);
    check_arch("democnn", 32, convs);
    /* InceptionV3 (Keras layout): 94 conv -> BN -> ReLU chains, its 9 pool branches
     * commuted. Logits only: through 94 ReLUs of random weights at 75 px any change
     * of rounding flips ReLUs whose inputs are near 0 (the fused input gradient
     * differs by 2.8e-2 relative with or without the commuted pools); the
     * gradients of commuted pairs are checked on pool_graph below, and against
     * PyTorch by test_flat's full tier (make test-parity). */
    check_arch_grads("inceptionv3", 75, 94, 0);
    m = NULL;
    TH_CHECK(zoo_build("inceptionv3", 75, 2, 7, &m) == 0, "build inceptionv3");
    float *x = m ? calloc(nn_node_size(&m->nodes[0]), sizeof(float)) : NULL;
    if (m && x && nn_model_prepare(m, 1) == 0 && nn_forward_fused(m, x, 1) == 0)
        TH_EQ_INT(count_commuted(m), 9);
    else
        TH_CHECK(0, "fused pass of inceptionv3");
    free(x);
    nn_model_destroy(m);
}

/* A graph as exporters write it (conv with bias -> ReLU, BN folded away) with
 * pool branches that commute (PyTorch's and Keras's count modes, with a BN)
 * and ones that must not (more output channels, no ReLU or BN after the conv,
 * a stride-2 pool, a kept pool). */
static nn_model_t *pool_graph(int *p_torch, int *p_keras)
{
    nn_model_t *m = nn_model_create(3, 21, 19);
    int a = nn_add_conv(m, "a", 0, 24, 3, 3, 1, 1, NULL, 1, 1);
    int ar = nn_add_relu(m, "a_relu", a);
    int p1 = nn_add_avgpool(m, "p1", ar, 3, 3, 1, 1, NULL, 1, 0, 1); /* torchvision */
    int c1 = nn_add_conv(m, "c1", p1, 8, 1, 1, 1, 1, NULL, 0, 1);
    int r1 = nn_add_relu(m, "r1", c1);
    int p2 = nn_add_avgpool(m, "p2", ar, 3, 3, 1, 1, NULL, 1, 0, 0); /* Keras: in-image count */
    int c2 = nn_add_conv(m, "c2", p2, 6, 1, 1, 1, 1, NULL, 0, 0);
    int b2 = nn_add_bn(m, "c2_bn", c2, 1e-3f, 0.01f, 0, 1);
    int r2 = nn_add_relu(m, "r2", b2);
    int p3 = nn_add_avgpool(m, "p3", ar, 3, 3, 1, 1, NULL, 1, 0, 1);
    int c3 = nn_add_conv(m, "c3", p3, 30, 1, 1, 1, 1, NULL, 0, 1); /* widens: not commuted */
    int r3 = nn_add_relu(m, "r3", c3);
    int p4 = nn_add_avgpool(m, "p4", ar, 3, 3, 1, 1, NULL, 1, 0, 1);
    int c4 = nn_add_conv(m, "c4", p4, 5, 1, 1, 1, 1, NULL, 0, 1); /* nothing after: not fused */
    int cat = nn_add_concat(m, "cat", 4, (int[]){r1, r2, r3, c4});
    int p5 = nn_add_avgpool(m, "p5", ar, 2, 2, 2, 2, NULL, 0, 0, 1); /* halves the map */
    int c5 = nn_add_conv(m, "c5", p5, 4, 1, 1, 1, 1, NULL, 0, 1);
    int r5 = nn_add_relu(m, "r5", c5);
    int g = nn_add_concat(m, "g", 2, (int[]){nn_add_gap(m, "gap1", cat), nn_add_gap(m, "gap2", r5)});
    nn_add_dense(m, "fc", nn_add_flatten(m, "flat", g), 4, 1);
    if (nn_model_finalize(m, 5) < 0) {
        nn_model_destroy(m);
        return NULL;
    }
    th_perturb_bn(m, 5);
    *p_torch = p1;
    *p_keras = p2;
    return m;
}

static void test_pool_commuted(void)
{
    int p1 = -1, p2 = -1;
    nn_model_t *m = pool_graph(&p1, &p2);
    TH_CHECK(m != NULL, "build the pool graph");
    if (!m)
        return;
    const int n = 3;
    TH_CHECK(nn_model_prepare(m, n) == 0, "prepare");
    const size_t in = nn_node_size(&m->nodes[0]);
    float *x = calloc((size_t)n * in, sizeof(float));
    fill_normal(x, (size_t)n * in, 21);
    for (size_t i = 0; i < in; i++) /* sample 1 with a black border, as radiographs have */
        if (i % 19 < 3 || (i / 19) % 21 < 2)
            x[in + i] = 0.0f;
    pass_out_t ref, fused, one;
    pass_alloc(m, n, &ref);
    pass_alloc(m, n, &fused);
    pass_alloc(m, n, &one);
    for (int guided = 0; guided <= 1; guided++) {
        TH_CHECK(run_pass(m, x, n, 0, guided, &ref) == 0, "unfused pass");
        TH_CHECK(run_pass(m, x, n, 1, guided, &fused) == 0, "fused pass");
        const double el = th_rel_err(fused.logits, ref.logits, (size_t)n * 4);
        const double eg = th_rel_err(fused.dx, ref.dx, (size_t)n * in);
        TH_CHECK(el < 2e-5 && el > 0, "guided=%d: commuted logits differ by %g", guided, el);
        TH_CHECK(eg < 2e-4, "guided=%d: commuted input gradient differs by %g", guided, eg);
    }
    TH_EQ_INT(count_commuted(m), 2);
    const nn_fuse_t *f = m->fuse;
    TH_CHECK(f->pool_of[p1 + 1] == p1 && f->pool_of[p2 + 1] == p2, "the two pool branches");
    TH_CHECK(f->relu_of[1] == 2 && f->bn_of[1] < 0, "conv -> ReLU without BN taken");

    /* a sample alone gives the bits it gives in a batch */
    run_pass(m, x, n, 1, 0, &fused);
    run_pass(m, x + in, 1, 1, 0, &one);
    TH_CHECK(!memcmp(one.dx, fused.dx + in, sizeof(float) * in), "sample 1 alone differs");
    TH_CHECK(!memcmp(one.logits, fused.logits + 4, sizeof(float) * 4), "logits of sample 1 alone");

    /* a backward stopped at the pool leaves the pool's own gradient */
    const size_t psz = (size_t)n * nn_node_size(&m->nodes[p1]);
    float *g_ref = calloc(psz, sizeof(float));
    const int lid = nn_logits_node(m);
    float *dy = calloc((size_t)n * 4, sizeof(float));
    for (int b = 0; b < n; b++)
        dy[b * 4 + b % 4] = 1.0f;
    nn_backward_opts_t stop = {.down_to = p1};
    nn_forward(m, x, n, 0);
    TH_CHECK(nn_backward(m, lid, dy, NULL, &stop) == 0, "unfused backward to the pool");
    memcpy(g_ref, nn_node_grad(m, p1), sizeof(float) * psz);
    nn_forward_fused(m, x, n);
    TH_CHECK(nn_backward(m, lid, dy, NULL, &stop) == 0, "fused backward to the pool");
    const double ep = th_rel_err(nn_node_grad(m, p1), g_ref, psz);
    TH_CHECK(ep < 2e-5, "gradient at the commuted pool differs by %g", ep);

    /* a kept pool is computed as it is, and holds its values */
    TH_CHECK(nn_model_keep(m, p1) == 0, "keep p1");
    nn_forward(m, x, n, 0);
    float *p_ref = malloc(sizeof(float) * psz);
    memcpy(p_ref, nn_node_out(m, p1), sizeof(float) * psz);
    nn_forward_fused(m, x, n);
    TH_EQ_INT(count_commuted(m), 1);
    TH_CHECK(!memcmp(nn_node_out(m, p1), p_ref, sizeof(float) * psz), "kept pool's values");
    TH_CHECK(run_pass(m, x, n, 1, 0, &fused) == 0 && run_pass(m, x, n, 0, 0, &ref) == 0, "passes");
    TH_CHECK(th_rel_err(fused.dx, ref.dx, (size_t)n * in) < 2e-4, "input gradient, pool kept");
    free(p_ref);
    free(g_ref);
    free(dy);
    pass_free(&ref);
    pass_free(&fused);
    pass_free(&one);
    free(x);
    nn_model_destroy(m);
}

/* A block boundary between a convolution and its ReLU (no BN): a cascade state
 * starting at the ReLU keeps the convolution's output and reads it, so the
 * ReLU is not taken into that convolution while it is kept, and a forward
 * from the ReLU does not move back to the convolution (whose input is gone).
 * The same logits as a whole fused pass, bit for bit, after the ReLU's block
 * is re-initialized. */
static void test_relu_after_block_boundary(void)
{
    nn_model_t *m = nn_model_create(3, 16, 16);
    nn_set_block(m, "stem");
    int c0 = nn_add_conv(m, "c0", 0, 8, 3, 3, 1, 1, NULL, 1, 1);
    int r0 = nn_add_relu(m, "r0", c0);
    /* a pool: its output is read by no backward, so its buffer may be reused after ca */
    int p0 = nn_add_maxpool(m, "p0", r0, 3, 3, 1, 1, NULL, 1, 0);
    int ca = nn_add_conv(m, "ca", p0, 8, 3, 3, 1, 1, NULL, 1, 1);
    nn_set_block(m, "top");
    int ra = nn_add_relu(m, "ra", ca);
    int cb = nn_add_conv(m, "cb", ra, 8, 3, 3, 1, 1, NULL, 1, 1);
    int rb = nn_add_relu(m, "rb", cb);
    nn_add_dense(m, "fc", nn_add_flatten(m, "flat", nn_add_gap(m, "gap", rb)), 3, 1);
    TH_CHECK(nn_model_finalize(m, 2) == 0, "finalize");
    const int n = 2;
    uint8_t keep[16] = {0};
    keep[ca] = 1; /* what sal_cascade_keeps marks for a state starting at "top" */
    TH_CHECK(nn_model_keep_outputs(m, keep) == 0 && nn_model_prepare(m, n) == 0, "prepare");
    const size_t in = nn_node_size(&m->nodes[0]);
    float *x = calloc((size_t)n * in, sizeof(float));
    fill_normal(x, (size_t)n * in, 41);
    const int lid = nn_logits_node(m);
    float whole[6], from[6];
    TH_CHECK(nn_forward_fused(m, x, n) == 0, "fused pass");
    TH_CHECK(m->fuse->relu_of[c0] == r0 && m->fuse->relu_of[ca] == ra, "both ReLUs planned");
    TH_CHECK(nn_fuse_taken(m, r0) == c0 && nn_fuse_taken(m, ra) < 0,
             "the ReLU after the kept convolution runs as it is");
    TH_CHECK(nn_model_reinit_block(m, "top", 77, 1) == 0, "re-initialize top");
    TH_CHECK(nn_forward_fused(m, x, n) == 0, "fused pass");
    memcpy(whole, nn_node_out(m, lid), sizeof whole);
    /* p0's output is dead after ca: its buffer may hold anything by now */
    float *dead = m->nodes[p0].out;
    for (size_t i = 0; i < (size_t)n * nn_node_size(&m->nodes[p0]); i++)
        dead[i] = 1e30f;
    TH_CHECK(nn_model_reinit_block(m, "top", 77, 1) == 0, "re-initialize top again");
    TH_CHECK(nn_forward_fused_from(m, ra, n) == 0, "forward from the ReLU");
    memcpy(from, nn_node_out(m, lid), sizeof from);
    TH_CHECK(!memcmp(whole, from, sizeof whole), "a forward from the ReLU differs from a whole pass");
    (void)cb;
    free(x);
    nn_model_destroy(m);
}

static int count_prologues(const nn_model_t *m)
{
    int k = 0;
    for (int i = 0; i < m->n_nodes; i++)
        k += nn_fuse_pre(m, i) >= 0;
    return k;
}

/* Fused passes with the prologue on and off: logits and input gradients
 * (plain and guided) the same bits; the prologues that ran. */
static void check_prologue_bits(nn_model_t *m, int n, const float *x, int expect, const char *what)
{
    pass_out_t on, off;
    pass_alloc(m, n, &on);
    pass_alloc(m, n, &off);
    const size_t nl = (size_t)n * m->num_classes, nx = (size_t)n * nn_node_size(&m->nodes[0]);
    for (int guided = 0; guided <= 1; guided++) {
        nn_fuse_prologue = 0;
        TH_CHECK(run_pass(m, x, n, 1, guided, &off) == 0, "%s: pass without the prologue", what);
        TH_EQ_INT(count_prologues(m), 0);
        nn_fuse_prologue = NN_FUSE_PROLOGUE; /* without its pool (other bits) */
        TH_CHECK(run_pass(m, x, n, 1, guided, &on) == 0, "%s: pass with the prologue", what);
        TH_CHECK(count_prologues(m) == expect, "%s: %d prologues ran, expected %d", what,
                 count_prologues(m), expect);
        TH_CHECK(!memcmp(on.logits, off.logits, sizeof(float) * nl),
                 "%s guided=%d: logits differ with the prologue (%g)", what, guided,
                 th_rel_err(on.logits, off.logits, nl));
        TH_CHECK(!memcmp(on.dx, off.dx, sizeof(float) * nx),
                 "%s guided=%d: input gradient differs with the prologue (%g)", what, guided,
                 th_rel_err(on.dx, off.dx, nx));
    }
    nn_fuse_prologue = NN_FUSE_PROLOGUE_ALL;
    pass_free(&on);
    pass_free(&off);
}

static int count_pooled(const nn_model_t *m)
{
    int k = 0;
    for (int i = 0; i < m->n_nodes; i++)
        k += nn_fuse_pre_pool(m, i) >= 0;
    return k;
}

/* The prologue's pool applied first against after the convolution: logits
 * (and input gradients unless grad_tol is 0) within the tolerances. */
static void check_prologue_pool(nn_model_t *m, int n, const float *x, int expect, double grad_tol,
                                const char *what)
{
    pass_out_t pooled, after;
    pass_alloc(m, n, &pooled);
    pass_alloc(m, n, &after);
    const size_t nl = (size_t)n * m->num_classes, nx = (size_t)n * nn_node_size(&m->nodes[0]);
    for (int guided = 0; guided <= 1; guided++) {
        nn_fuse_prologue = NN_FUSE_PROLOGUE;
        TH_CHECK(run_pass(m, x, n, 1, guided, &after) == 0, "%s: pool after", what);
        TH_EQ_INT(count_pooled(m), 0);
        nn_fuse_prologue = NN_FUSE_PROLOGUE_ALL;
        TH_CHECK(run_pass(m, x, n, 1, guided, &pooled) == 0, "%s: pool first", what);
        TH_CHECK(count_pooled(m) == expect, "%s: %d pools applied first, expected %d", what,
                 count_pooled(m), expect);
        const double el = th_rel_err(pooled.logits, after.logits, nl);
        const double eg = th_rel_err(pooled.dx, after.dx, nx);
        TH_CHECK(el < 1e-5, "%s guided=%d: logits differ by %g with the pool first", what, guided,
                 el);
        TH_CHECK(grad_tol == 0 || eg < grad_tol,
                 "%s guided=%d: input gradient differs by %g with the pool first", what, guided, eg);
        TH_CHECK(el > 0 || eg > 0, "%s: the pool first changed no bit: not applied?", what);
        printf("    %s guided=%d: pool first against after: logits %.1e, input gradient %.1e\n",
               what, guided, el, eg);
    }
    pass_free(&pooled);
    pass_free(&after);
}

/* DenseNet's pre-activation BN and ReLU applied by the 1x1 convolution after
 * them while it packs its input (nn/fuse.h's prologue): the bits of the BN+ReLU
 * pass then the convolution, through the concatenation views, in any batch;
 * kept values and a backward that stops at the ReLU computed as without it. */
static void test_prologue(void)
{
    nn_model_t *m = NULL;
    const int n = 3;
    TH_CHECK(zoo_build("densenet121", 64, 2, 7, &m) == 0, "build densenet121");
    if (!m)
        return;
    th_perturb_bn(m, 13);
    /* the inference plan, as saliency runs: the BN inputs' buffers are then
     * reused once the last reader is done with them (nn/memplan.h) */
    TH_CHECK(nn_model_set_plan(m, NN_PLAN_INFER) == 0 && nn_model_prepare(m, n) == 0, "prepare");
    const size_t in = nn_node_size(&m->nodes[0]);
    float *x = calloc((size_t)n * in, sizeof(float));
    fill_normal(x, (size_t)n * in, 5);
    /* 58 dense layers' conv1 and the 3 transitions' convolutions */
    check_prologue_bits(m, n, x, 61, "densenet121");
    /* the 3 transitions' pools applied first; the gradient through 120 ReLUs of
     * random weights is not compared (near-ties), the small graph's below is */
    check_prologue_pool(m, n, x, 3, 0, "densenet121");
    /* each image alone: the bits it has in the batch */
    pass_out_t all, one;
    pass_alloc(m, n, &all);
    pass_alloc(m, 1, &one);
    TH_CHECK(run_pass(m, x, n, 1, 0, &all) == 0, "batch pass");
    for (int i = 0; i < n; i++) {
        TH_CHECK(run_pass(m, x + (size_t)i * in, 1, 1, 0, &one) == 0, "single pass");
        TH_CHECK(!memcmp(one.dx, all.dx + (size_t)i * in, sizeof(float) * in),
                 "image %d alone differs from the batch", i);
    }
    /* a backward stopped at a prologue's ReLU: the ReLU's gradient as without it */
    int conv = -1;
    for (int i = 0; i < m->n_nodes && conv < 0; i++)
        if (m->fuse && m->fuse->pre_of[i] >= 0)
            conv = i;
    TH_CHECK(conv > 0, "a prologue planned");
    if (conv > 0) {
        const int relu = m->nodes[conv].in[0];
        const size_t count = (size_t)n * nn_node_size(&m->nodes[relu]);
        float *g[2] = {malloc(sizeof(float) * count), malloc(sizeof(float) * count)};
        int targets[3] = {0, 1, 0};
        for (int on = 0; on <= 1; on++) {
            nn_fuse_prologue = on ? NN_FUSE_PROLOGUE : 0;
            nn_backward_opts_t o = {.down_to = relu};
            TH_CHECK(nn_forward_fused(m, x, n) == 0 && nn_backward_logit(m, targets, NULL, &o) == 0,
                     "backward to the ReLU");
            memcpy(g[on], m->nodes[relu].grad, sizeof(float) * count);
        }
        TH_CHECK(!memcmp(g[0], g[1], sizeof(float) * count),
                 "a backward stopped at the ReLU differs with the prologue");
        free(g[0]);
        free(g[1]);
    }
    nn_fuse_prologue = NN_FUSE_PROLOGUE_ALL;
    pass_free(&all);
    pass_free(&one);
    free(x);
    nn_model_destroy(m);

    /* ResNet-50's conv2 -> BN -> ReLU -> 1x1 conv3 stays a folded chain (a
     * prologue of conv3 would read conv2's output, which the chain never writes) */
    m = NULL;
    TH_CHECK(zoo_build("resnet50", 32, 2, 7, &m) == 0, "build resnet50");
    if (m) {
        th_perturb_bn(m, 13);
        TH_CHECK(nn_model_set_plan(m, NN_PLAN_INFER) == 0 && nn_model_prepare(m, 2) == 0,
                 "prepare");
        const size_t in50 = nn_node_size(&m->nodes[0]);
        float *x50 = calloc(2 * in50, sizeof(float));
        fill_normal(x50, 2 * in50, 9);
        check_prologue_bits(m, 2, x50, 0, "resnet50");
        free(x50);
        nn_model_destroy(m);
    }

    /* a small graph: a concatenation view into BN -> ReLU -> 1x1 conv (BN and
     * ReLU after it folded), a transition-like 1x1 conv without one, and the
     * same with the ReLU's values kept (a state starting at the convolution) */
    for (int kept = 0; kept <= 1; kept++) {
        m = nn_model_create(3, 12, 10);
        int c0 = nn_add_conv(m, "c0", 0, 8, 3, 3, 1, 1, NULL, 1, 1);
        int r0 = nn_add_relu(m, "r0", c0);
        int c1 = nn_add_conv(m, "c1", r0, 5, 3, 3, 1, 1, NULL, 1, 0);
        int cat_in[2] = {r0, c1};
        int cat = nn_add_concat(m, "cat", 2, cat_in);
        int b1 = nn_add_bn(m, "b1", cat, 1e-5f, 0.1f, 1, 1);
        int rr1 = nn_add_relu(m, "rr1", b1);
        nn_set_block(m, "top");
        int p1 = nn_add_conv(m, "p1", rr1, 7, 1, 1, 1, 1, NULL, 0, 0);
        int b2 = nn_add_bn(m, "b2", p1, 1e-5f, 0.1f, 1, 1);
        int r2 = nn_add_relu(m, "r2", b2);
        int c2 = nn_add_conv(m, "c2", r2, 6, 3, 3, 1, 1, NULL, 1, 0);
        int cat2_in[3] = {r0, c1, c2};
        int cat2 = nn_add_concat(m, "cat2", 3, cat2_in);
        int b3 = nn_add_bn(m, "b3", cat2, 1e-5f, 0.1f, 1, 1);
        int r3 = nn_add_relu(m, "r3", b3);
        int p2 = nn_add_conv(m, "p2", r3, 9, 1, 1, 1, 1, NULL, 0, 1);
        int a2 = nn_add_avgpool(m, "a2", p2, 2, 2, 2, 2, NULL, 0, 0, 1);
        nn_add_dense(m, "fc", nn_add_flatten(m, "flat", nn_add_gap(m, "gap", a2)), 3, 1);
        TH_CHECK(nn_model_finalize(m, 2) == 0, "finalize");
        th_perturb_bn(m, 17);
        uint8_t keep[32] = {0};
        keep[rr1] = (uint8_t)kept;
        TH_CHECK(nn_model_keep_outputs(m, keep) == 0 && nn_model_set_plan(m, NN_PLAN_INFER) == 0 &&
                     nn_model_prepare(m, n) == 0,
                 "prepare");
        const size_t in2 = nn_node_size(&m->nodes[0]);
        float *x2 = calloc((size_t)n * in2, sizeof(float));
        fill_normal(x2, (size_t)n * in2, 23 + (uint64_t)kept);
        check_prologue_bits(m, n, x2, kept ? 1 : 2, kept ? "small graph, ReLU kept" : "small graph");
        check_prologue_pool(m, n, x2, 1, 1e-5, kept ? "small graph, ReLU kept" : "small graph");
        if (kept) { /* a forward from the kept ReLU: the whole pass's logits */
            float whole[9], from[9];
            const int lid = nn_logits_node(m);
            TH_CHECK(nn_forward_fused(m, x2, n) == 0, "fused pass");
            memcpy(whole, nn_node_out(m, lid), sizeof whole);
            TH_CHECK(nn_forward_fused_from(m, p1, n) == 0, "forward from the convolution");
            memcpy(from, nn_node_out(m, lid), sizeof from);
            TH_CHECK(!memcmp(whole, from, sizeof whole), "a forward from p1 differs");
        }
        TH_CHECK(m->nodes[cat].cview && m->nodes[cat2].cview, "both concatenations are views");
        free(x2);
        nn_model_destroy(m);
    }
}

/* The folded cache follows the parameters: re-initialized blocks, direct
 * writes announced by nn_model_params_changed, training-mode forwards. */
static void test_cache_follows_parameters(void)
{
    nn_model_t *m = NULL;
    const int n = 2;
    TH_CHECK(zoo_build("resnet18", 64, 2, 5, &m) == 0, "build");
    if (!m)
        return;
    th_perturb_bn(m, 3);
    nn_model_prepare(m, n);
    const size_t in = nn_node_size(&m->nodes[0]);
    float *x = calloc((size_t)n * in, sizeof(float));
    fill_normal(x, (size_t)n * in, 9);
    pass_out_t before, ref, fused;
    pass_alloc(m, n, &before);
    pass_alloc(m, n, &ref);
    pass_alloc(m, n, &fused);
    run_pass(m, x, n, 1, 0, &before);

    /* 1. cascading randomization: the top blocks re-initialized (BN statistics kept) */
    const char *blocks[64];
    int nb = zoo_blocks_top_down(m, blocks, 64);
    TH_CHECK(nb >= 3, "blocks");
    for (int b = 0; b < 3 && b < nb; b++)
        nn_model_reinit_block(m, blocks[b], 99, 1);
    run_pass(m, x, n, 0, 0, &ref);
    run_pass(m, x, n, 1, 0, &fused);
    TH_CHECK(th_rel_err(ref.dx, before.dx, n * in) > 1e-2, "re-initialization changed nothing");
    TH_CHECK(th_rel_err(fused.dx, ref.dx, n * in) < 2e-4,
             "after nn_model_reinit_block the fused gradient is stale (%g)",
             th_rel_err(fused.dx, ref.dx, n * in));

    /* 2. a direct write of BN statistics, announced */
    int bn = -1;
    for (int i = 0; i < m->n_nodes && bn < 0; i++)
        if (m->nodes[i].op == NN_BN && m->fuse->folded_into[i] >= 0)
            bn = i;
    size_t count;
    float *var = nn_param(m, bn, NN_P_VAR, &count);
    for (size_t k = 0; k < count; k++)
        var[k] *= 4.0f;
    nn_model_params_changed(m);
    run_pass(m, x, n, 0, 0, &ref);
    run_pass(m, x, n, 1, 0, &fused);
    TH_CHECK(th_rel_err(fused.dx, ref.dx, n * in) < 2e-4,
             "after nn_model_params_changed the fused gradient is stale (%g)",
             th_rel_err(fused.dx, ref.dx, n * in));

    /* 3. a training-mode forward moves the running statistics */
    nn_forward(m, x, n, 1);
    run_pass(m, x, n, 0, 0, &ref);
    run_pass(m, x, n, 1, 0, &fused);
    TH_CHECK(th_rel_err(fused.logits, ref.logits, (size_t)n * m->num_classes) < 2e-5,
             "after a training forward the fused logits are stale (%g)",
             th_rel_err(fused.logits, ref.logits, (size_t)n * m->num_classes));

    /* 4. parameter gradients are refused after a fused forward */
    nn_forward_fused(m, x, n);
    int targets[2] = {0, 1};
    nn_backward_opts_t o = {.param_grads = 1, .input_grad = 1};
    TH_CHECK(nn_backward_logit(m, targets, fused.dx, &o) == SC_ERR_ARG,
             "parameter gradients after a fused forward");
    pass_free(&before);
    pass_free(&ref);
    pass_free(&fused);
    free(x);
    nn_model_destroy(m);
}

/* Deterministic: the same bits on a repeat, and a sample's result does not
 * depend on the batch it is in (the GEMM runs image by image). */
static void test_fused_is_deterministic(void)
{
    nn_model_t *m = NULL;
    const int n = 3;
    TH_CHECK(zoo_build("resnet18", 64, 2, 1, &m) == 0, "build");
    if (!m)
        return;
    th_perturb_bn(m, 4);
    nn_model_prepare(m, n);
    const size_t in = nn_node_size(&m->nodes[0]);
    float *x = calloc((size_t)n * in, sizeof(float));
    fill_normal(x, (size_t)n * in, 2);
    pass_out_t a, b, one;
    pass_alloc(m, n, &a);
    pass_alloc(m, n, &b);
    pass_alloc(m, n, &one);
    run_pass(m, x, n, 1, 0, &a);
    run_pass(m, x, n, 1, 0, &b);
    TH_CHECK(!memcmp(a.dx, b.dx, sizeof(float) * n * in), "two fused passes differ");
    run_pass(m, x + in, 1, 1, 0, &one);
    TH_CHECK(!memcmp(one.dx, a.dx + in, sizeof(float) * in),
             "sample 1 alone differs from sample 1 in a batch of 3");
    TH_CHECK(!memcmp(one.logits, a.logits + m->num_classes, sizeof(float) * m->num_classes),
             "logits of sample 1 alone differ");
    pass_free(&a);
    pass_free(&b);
    pass_free(&one);
    free(x);
    nn_model_destroy(m);
}

/* The GELU prologue (nn/fuse.h: ConvNeXt's 1x1 -> GELU -> 1x1, the GELU
 * applied while the second convolution packs its input): logits and input
 * gradients the same bits as with the GELU's own pass, both GELU forms, the
 * second convolution plain, with a layer scale folded (a BN after it) and with
 * a ReLU; an odd plane (5 x 7) and channel counts, so that the GELU's own loop
 * ends in a partial vector; not when the GELU's values are kept. */
static void test_gelu_prologue(void)
{
    static const nn_op ops[2] = {NN_GELU, NN_GELU_TANH};
    const int n = 3;
    for (int v = 0; v < 6; v++) {
        nn_model_t *m = nn_model_create(3, 5, 7);
        const int a = nn_add_conv(m, "a", 0, 13, 3, 3, 1, 1, NULL, 1, 1);
        const int c1 = nn_add_conv(m, "pw1", a, 37, 1, 1, 1, 1, NULL, 0, 1);
        const int g = nn_add_node(m, "gelu", ops[v % 2], 1, &c1, NULL);
        int c2 = nn_add_conv(m, "pw2", g, 11, 1, 1, 1, 1, NULL, 0, v < 2);
        if (v >= 2 && v < 4)
            c2 = nn_add_bn(m, "scale", c2, 1e-3f, 0.01f, 1, 0);
        if (v >= 4)
            c2 = nn_add_relu(m, "pw2_relu", c2);
        const int sum = nn_add_add(m, "res", c2, nn_add_conv(m, "skip", a, 11, 1, 1, 1, 1, NULL, 0, 1));
        nn_add_dense(m, "fc", nn_add_flatten(m, "flat", nn_add_gap(m, "gap", sum)), 4, 1);
        TH_CHECK(nn_model_finalize(m, 9 + v) == 0 && nn_model_prepare(m, n) == 0, "build %d", v);
        th_perturb_bn(m, 2);
        const size_t in = nn_node_size(&m->nodes[0]), nl = (size_t)n * m->num_classes;
        float *x = calloc((size_t)n * in, sizeof(float));
        fill_normal(x, (size_t)n * in, 30 + v);
        int pw2 = -1;
        for (int i = 0; i < m->n_nodes; i++)
            if (m->nodes[i].op == NN_CONV && m->nodes[i].in[0] == g)
                pw2 = i;
        pass_out_t on, off;
        pass_alloc(m, n, &on);
        pass_alloc(m, n, &off);
        nn_fuse_prologue = NN_FUSE_PROLOGUE_ALL & ~NN_FUSE_PROLOGUE_GELU;
        TH_CHECK(run_pass(m, x, n, 1, 0, &off) == 0, "variant %d: pass without", v);
        TH_CHECK(nn_fuse_gelu(m, pw2) < 0, "variant %d: the prologue ran", v);
        nn_fuse_prologue = NN_FUSE_PROLOGUE_ALL;
        TH_CHECK(run_pass(m, x, n, 1, 0, &on) == 0, "variant %d: pass with", v);
        TH_CHECK(pw2 > 0 && nn_fuse_gelu(m, pw2) == g, "variant %d: no GELU prologue", v);
        TH_CHECK(nn_fuse_hides(m, g), "variant %d: the GELU's output shows", v);
        TH_CHECK(!memcmp(on.logits, off.logits, sizeof(float) * nl),
                 "variant %d: logits differ with the GELU prologue (%g)", v,
                 th_rel_err(on.logits, off.logits, nl));
        TH_CHECK(!memcmp(on.dx, off.dx, sizeof(float) * n * in),
                 "variant %d: input gradient differs with the GELU prologue (%g)", v,
                 th_rel_err(on.dx, off.dx, n * in));
        /* kept: the GELU runs as it is and its output is there */
        uint8_t *keep = calloc((size_t)m->n_nodes, 1);
        keep[g] = 1;
        nn_model_keep_outputs(m, keep);
        TH_CHECK(run_pass(m, x, n, 1, 0, &on) == 0 && nn_fuse_gelu(m, pw2) < 0 &&
                     !memcmp(on.logits, off.logits, sizeof(float) * nl),
                 "variant %d: with the GELU kept", v);
        free(keep);
        pass_free(&on);
        pass_free(&off);
        free(x);
        nn_model_destroy(m);
    }
}

/* Logits, input gradient and (when keep_id > 0) node keep_id's gradient of a
 * fused pass with nn_fuse_prologue = bits, the backward stopping at down_to. */
static void mlp_pass(nn_model_t *m, const float *x, int n, int bits, int down_to, int keep_id,
                     pass_out_t *r, float *kept)
{
    int targets[8] = {0};
    nn_backward_opts_t o = {.input_grad = down_to == 0, .down_to = down_to};
    nn_fuse_prologue = bits;
    TH_CHECK(nn_forward_fused(m, x, n) == 0, "fused forward");
    const int lid = nn_logits_node(m);
    memcpy(r->logits, nn_node_out(m, lid), sizeof(float) * n * nn_node_size(&m->nodes[lid]));
    TH_CHECK(nn_backward_logit(m, targets, r->dx, &o) == 0, "backward");
    if (keep_id > 0)
        memcpy(kept, m->nodes[keep_id].grad, sizeof(float) * n * nn_node_size(&m->nodes[keep_id]));
    nn_fuse_prologue = NN_FUSE_PROLOGUE_ALL;
}

/* Do node i's buffer and node j's share memory (each its gradient when the
 * flag is set, else its output)? */
static int buffers_overlap(const nn_model_t *m, int n, int i, int grad_i, int j, int grad_j)
{
    const float *p = grad_i ? m->nodes[i].grad : m->nodes[i].out;
    const float *q = grad_j ? m->nodes[j].grad : m->nodes[j].out;
    const size_t np = (size_t)n * nn_node_size(&m->nodes[i]), nq = (size_t)n * nn_node_size(&m->nodes[j]);
    return p && q && p < q + nq && q < p + np;
}

/* The MLP pair (nn/fuse.h: ConvNeXt's 1x1 -> GELU -> 1x1 on images of at
 * least CONV_PACKED_MLP_MIN_PIXELS pixels, a slice of columns at a time):
 * logits and input gradients the same bits as the three passes alone, both
 * GELU forms, the second convolution plain, with a BN folded and with a
 * ReLU, the pair's input read by another convolution before or after it in
 * the backward (its gradient assigned or accumulated), under both memory
 * plans; two slices per image (the last one partial and not a multiple of
 * 32 columns). The pair stands aside, with the same bits, for a backward
 * that stops at its first convolution (whose gradient is then complete), for
 * a kept GELU (its gradient readable), and for a forward from the GELU (the
 * second convolution computed alone over garbage in its output). */
static void test_mlp_pair(void)
{
    static const nn_op ops[2] = {NN_GELU, NN_GELU_TANH};
    const int n = 2, hidden = 400, h = 24, w = 30;
    TH_CHECK(conv_packed_mlp_columns(h * w, hidden) == 384, "two slices of 384 and 336 columns");
    TH_CHECK(conv_packed_mlp_columns(CONV_PACKED_MLP_MIN_PIXELS - 1, hidden) == 0,
             "no pair under the pixel minimum");
    for (int v = 0; v < 12; v++) {
        const int tanh_form = v % 2, tail = v / 2 % 3, skip_first = v / 6;
        nn_model_t *m = nn_model_create(3, h, w);
        const int a = nn_add_conv(m, "a", 0, 5, 3, 3, 1, 1, NULL, 1, 1);
        int skip = skip_first ? nn_add_conv(m, "skip", a, 5, 3, 3, 1, 1, NULL, 1, 1) : -1;
        const int c1 = nn_add_conv(m, "pw1", a, hidden, 1, 1, 1, 1, NULL, 0, 1);
        const int g = nn_add_node(m, "gelu", ops[tanh_form], 1, &c1, NULL);
        const int c2 = nn_add_conv(m, "pw2", g, 5, 1, 1, 1, 1, NULL, 0, tail == 0);
        int top = c2;
        if (tail == 1)
            top = nn_add_bn(m, "scale", c2, 1e-3f, 0.01f, 1, 0);
        if (tail == 2)
            top = nn_add_relu(m, "pw2_relu", c2);
        if (!skip_first)
            skip = nn_add_conv(m, "skip", a, 5, 3, 3, 1, 1, NULL, 1, 1);
        const int sum = nn_add_add(m, "res", top, skip);
        nn_add_dense(m, "fc", nn_add_flatten(m, "flat", nn_add_gap(m, "gap", sum)), 4, 1);
        TH_CHECK(nn_model_finalize(m, 40 + v) == 0 && nn_model_prepare(m, n) == 0, "build %d", v);
        th_perturb_bn(m, 3);
        if (v % 4 != 0)
            nn_model_set_plan(m, NN_PLAN_INFER);
        const size_t in = nn_node_size(&m->nodes[0]), nl = (size_t)n * m->num_classes;
        const size_t nx = (size_t)n * in, nh = (size_t)n * nn_node_size(&m->nodes[c1]);
        float *x = calloc(nx, sizeof(float)), *ka = calloc(nh, sizeof(float)),
              *kb = calloc(nh, sizeof(float));
        fill_normal(x, nx, 60 + v);
        TH_CHECK(nn_fuse_mlp_plan(m, c2) == c1, "variant %d: no pair planned", v);
        pass_out_t on, off;
        pass_alloc(m, n, &on);
        pass_alloc(m, n, &off);
        const int without = NN_FUSE_PROLOGUE_ALL & ~NN_FUSE_MLP;
        mlp_pass(m, x, n, without, 0, 0, &off, NULL);
        nn_fuse_prologue = without;
        TH_CHECK(nn_fuse_mlp(m, c1) < 0, "variant %d: the pair ran when off", v);
        nn_fuse_prologue = NN_FUSE_PROLOGUE_ALL;
        mlp_pass(m, x, n, NN_FUSE_PROLOGUE_ALL, 0, 0, &on, NULL);
        const nn_backward_opts_t o = {.input_grad = 1};
        TH_CHECK(nn_fuse_mlp(m, c1) == c2 && nn_fuse_mlp_bwd(m, c2, &o) == c1,
                 "variant %d: the pair did not run", v);
        /* the pair's input gradient, written at the second's backward, shares no
         * memory with what that backward reads (nn/memplan.c): the same bits would
         * not show it, since each slice is read before it is written */
        const int dy_node = tail == 1 ? top : c2;
        TH_CHECK(!buffers_overlap(m, n, a, 1, dy_node, 1) && !buffers_overlap(m, n, a, 1, c1, 0),
                 "variant %d: the pair's input gradient shares memory with its reads", v);
        /* and the second's output, written at the first's step, none with the first's input */
        TH_CHECK(!buffers_overlap(m, n, top, 0, a, 0) && !buffers_overlap(m, n, top, 0, c1, 0),
                 "variant %d: the pair's output shares memory with the first's input", v);
        TH_CHECK(!memcmp(on.logits, off.logits, sizeof(float) * nl),
                 "variant %d: logits differ with the pair (%g)", v,
                 th_rel_err(on.logits, off.logits, nl));
        TH_CHECK(!memcmp(on.dx, off.dx, sizeof(float) * nx),
                 "variant %d: input gradient differs with the pair (%g)", v,
                 th_rel_err(on.dx, off.dx, nx));
        double mag = 0;
        for (size_t i = 0; i < nx; i++)
            mag += fabs(on.dx[i]);
        TH_CHECK(mag > 0, "variant %d: zero input gradient", v);
        /* a forward from the GELU, what it reads below kept: the second convolution
         * computes its output */
        uint8_t *keep = calloc((size_t)m->n_nodes, 1);
        keep[a] = keep[c1] = keep[skip] = 1;
        nn_model_keep_outputs(m, keep);
        free(keep);
        TH_CHECK(nn_forward_fused(m, x, n) == 0, "variant %d: forward", v);
        const int lid = nn_logits_node(m);
        memcpy(on.logits, nn_node_out(m, lid), sizeof(float) * nl);
        float *dst = nn_fuse_dst(m, c2);
        for (size_t i = 0; i < (size_t)n * nn_node_size(&m->nodes[c2]); i++)
            dst[i] = 1e3f;
        TH_CHECK(nn_forward_fused_from(m, g, n) == 0 &&
                     !memcmp(on.logits, nn_node_out(m, lid), sizeof(float) * nl),
                 "variant %d: a forward from the GELU differs", v);
        /* a backward that stops at the first convolution: its gradient complete */
        nn_model_keep(m, c1);
        mlp_pass(m, x, n, without, c1, c1, &off, ka);
        mlp_pass(m, x, n, NN_FUSE_PROLOGUE_ALL, c1, c1, &on, kb);
        TH_CHECK(!memcmp(ka, kb, sizeof(float) * nh),
                 "variant %d: the first convolution's gradient differs when the backward "
                 "stops there (%g)", v, th_rel_err(ka, kb, nh));
        /* the GELU's gradient kept */
        nn_model_keep(m, g);
        mlp_pass(m, x, n, without, 0, g, &off, ka);
        mlp_pass(m, x, n, NN_FUSE_PROLOGUE_ALL, 0, g, &on, kb);
        TH_CHECK(nn_fuse_mlp_bwd(m, c2, &o) < 0, "variant %d: the pair ran with the GELU kept", v);
        TH_CHECK(!memcmp(ka, kb, sizeof(float) * nh) && !memcmp(on.dx, off.dx, sizeof(float) * nx),
                 "variant %d: the kept GELU's gradient or the input gradient differs (%g)", v,
                 th_rel_err(ka, kb, nh));
        pass_free(&on);
        pass_free(&off);
        free(x);
        free(ka);
        free(kb);
        nn_model_destroy(m);
    }
}

/* The first members of the sibling groups computed together in the last fused pass. */
static int count_sib_groups(const nn_model_t *m)
{
    int k = 0, ids[8];
    for (int i = 0; i < m->n_nodes; i++)
        k += nn_fuse_sibs(m, i, ids) > 0 && ids[0] == i;
    return k;
}

/* Fused passes with sibling groups on and off, logits and input gradients
 * (plain and guided) the same bits. */
static void check_sibs_bits(nn_model_t *m, int n, const float *x, const char *what)
{
    pass_out_t on, off;
    pass_alloc(m, n, &on);
    pass_alloc(m, n, &off);
    const size_t nl = (size_t)n * m->num_classes, nx = (size_t)n * nn_node_size(&m->nodes[0]);
    for (int guided = 0; guided <= 1; guided++) {
        nn_fuse_siblings = 0;
        TH_CHECK(run_pass(m, x, n, 1, guided, &off) == 0, "%s: pass without sibling groups", what);
        TH_EQ_INT(count_sib_groups(m), 0);
        nn_fuse_siblings = 1;
        TH_CHECK(run_pass(m, x, n, 1, guided, &on) == 0, "%s: pass with sibling groups", what);
        TH_CHECK(!memcmp(on.logits, off.logits, sizeof(float) * nl),
                 "%s guided=%d: logits differ with sibling groups (%g)", what, guided,
                 th_rel_err(on.logits, off.logits, nl));
        TH_CHECK(!memcmp(on.dx, off.dx, sizeof(float) * nx),
                 "%s guided=%d: input gradient differs with sibling groups (%g)", what, guided,
                 th_rel_err(on.dx, off.dx, nx));
    }
    pass_free(&on);
    pass_free(&off);
}

/* The gradient of the input from node `from` (upstream gradient all ones),
 * after a fused pass, sibling groups on or off. */
static void grad_from(nn_model_t *m, const float *x, int n, int from, int on, float *dx)
{
    const size_t sz = (size_t)n * nn_node_size(&m->nodes[from]);
    float *dy = malloc(sizeof(float) * sz);
    for (size_t i = 0; i < sz; i++)
        dy[i] = 1.0f;
    nn_fuse_siblings = on;
    nn_backward_opts_t o = {.input_grad = 1};
    TH_CHECK(nn_forward_fused(m, x, n) == 0 && nn_backward(m, from, dy, dx, &o) == 0,
             "backward from node %d", from);
    nn_fuse_siblings = 1;
    free(dy);
}

/* Sibling groups (nn/fuse.h: the pointwise convolutions of an Inception
 * block reading the same input, one product forward, one backward): the same
 * bits as each member alone in InceptionV3 of both layouts (Keras's conv ->
 * BN -> ReLU, exporters' conv with bias -> ReLU), over the whole pass, from a
 * node one member alone feeds (the first member's backward then runs the
 * others' alone), forward again from a member, and after one member's
 * weights change (the stacked pack follows). */
static void test_siblings(void)
{
    nn_model_t *m = NULL;
    const int n = 2;
    TH_CHECK(zoo_build("inceptionv3", 107, 2, 7, &m) == 0, "build inceptionv3");
    if (!m)
        return;
    th_perturb_bn(m, 5);
    TH_CHECK(nn_model_prepare(m, n) == 0, "prepare");
    const size_t in = nn_node_size(&m->nodes[0]);
    float *x = calloc((size_t)n * in, sizeof(float));
    fill_normal(x, (size_t)n * in, 8);
    check_sibs_bits(m, n, x, "inceptionv3");
    /* mixed0..mixed10 of Keras's layout: 3 members in 9 blocks, 2 in mixed8's
     * reduction; none in mixed3 (a 3x3 stride-2 first) */
    TH_EQ_INT(count_sib_groups(m), 10);
    int lead = -1, ids[8] = {0}, k = 0;
    for (int i = 0; i < m->n_nodes && lead < 0; i++)
        if ((k = nn_fuse_sibs(m, i, ids)) == 3)
            lead = i;
    TH_CHECK(lead > 0, "no group of 3");
    if (lead > 0) {
        /* from the ReLU after the second member's next convolution: one member live */
        int from = -1;
        for (int i = ids[1] + 1; i < m->n_nodes && from < 0; i++)
            if (m->nodes[i].op == NN_CONV && m->nodes[i].in[0] != m->nodes[ids[1]].in[0])
                from = m->fuse->relu_of[i];
        const size_t nx = (size_t)n * in;
        float *a = calloc(nx, sizeof(float)), *b = calloc(nx, sizeof(float));
        TH_CHECK(from > ids[1], "the second member's next ReLU");
        if (from > 0) {
            grad_from(m, x, n, from, 0, a);
            grad_from(m, x, n, from, 1, b);
            TH_CHECK(!memcmp(a, b, sizeof(float) * nx) && th_rel_err(a, b, nx) == 0,
                     "gradient from node %d differs with sibling groups", from);
            double mag = 0;
            for (size_t i = 0; i < nx; i++)
                mag += fabs(a[i]);
            TH_CHECK(mag > 0, "gradient from node %d is zero", from);
        }
        /* forward again from the second member, and from the first */
        const int lid = nn_logits_node(m);
        const size_t nl = (size_t)n * m->num_classes;
        float *ref = malloc(sizeof(float) * nl);
        nn_forward_fused(m, x, n);
        memcpy(ref, nn_node_out(m, lid), sizeof(float) * nl);
        for (int q = 1; q >= 0; q--) {
            memset(m->nodes[lid].out, 0, sizeof(float) * nl);
            /* the member's output as garbage: the forward from it must compute it */
            float *dst = nn_fuse_dst(m, ids[q]);
            for (size_t i = 0; i < (size_t)n * nn_node_size(&m->nodes[ids[q]]); i++)
                dst[i] = 1e3f;
            TH_CHECK(nn_forward_fused_from(m, ids[q], n) == 0, "forward from member %d", q);
            TH_CHECK(!memcmp(ref, nn_node_out(m, lid), sizeof(float) * nl),
                     "logits of a forward from member %d differ", q);
        }
        free(ref);
        /* one member's weights change, announced node by node as a cascade does */
        size_t count;
        float *W = nn_param(m, ids[2], NN_P_WEIGHT, &count);
        for (size_t i = 0; i < count; i++)
            W[i] *= -1.5f;
        nn_model_node_params_changed(m, ids[2]);
        pass_out_t on, off;
        pass_alloc(m, n, &on);
        pass_alloc(m, n, &off);
        run_pass(m, x, n, 1, 0, &on); /* the stacked pack of the group is refilled */
        nn_fuse_siblings = 0;
        run_pass(m, x, n, 1, 0, &off);
        nn_fuse_siblings = 1;
        TH_CHECK(!memcmp(on.dx, off.dx, sizeof(float) * nx),
                 "after a member's weights changed the group's gradient is stale (%g)",
                 th_rel_err(on.dx, off.dx, nx));
        pass_free(&on);
        pass_free(&off);
        free(a);
        free(b);
    }
    free(x);
    nn_model_destroy(m);
    /* the exporters' layout (conv with bias -> ReLU) mixed with a BN chain, a
     * member without a ReLU after it and one whose output another convolution
     * reads; the pool branch after the members ends the group */
    m = nn_model_create(3, 23, 21);
    const int a = nn_add_conv(m, "a", 0, 24, 3, 3, 1, 1, NULL, 1, 1);
    const int xr = nn_add_relu(m, "a_relu", a);
    const int c1 = nn_add_relu(m, "r1", nn_add_conv(m, "c1", xr, 16, 1, 1, 1, 1, NULL, 0, 1));
    const int c2 = nn_add_relu(m, "r2", nn_add_bn(m, "c2_bn", nn_add_conv(m, "c2", xr, 11, 1, 1, 1,
                                                                        1, NULL, 0, 0),
                                                  1e-3f, 0.01f, 0, 1));
    const int c3 = nn_add_conv(m, "c3", xr, 9, 1, 1, 1, 1, NULL, 0, 1);
    const int c4 = nn_add_relu(m, "r4", nn_add_conv(m, "c4", xr, 40, 1, 1, 1, 1, NULL, 0, 1));
    const int c5 = nn_add_relu(m, "r5", nn_add_conv(m, "c5", c4, 8, 3, 3, 1, 1, NULL, 1, 1));
    const int p = nn_add_avgpool(m, "p", xr, 3, 3, 1, 1, NULL, 1, 0, 1);
    const int c6 = nn_add_conv(m, "c6", p, 8, 1, 1, 1, 1, NULL, 0, 1);
    const int cat = nn_add_concat(m, "cat", 5, (int[]){c1, c2, c3, c5, c6});
    nn_add_dense(m, "fc", nn_add_flatten(m, "flat", nn_add_gap(m, "gap", cat)), 4, 1);
    if (nn_model_finalize(m, 5) == 0 && nn_model_prepare(m, n) == 0) {
        th_perturb_bn(m, 6);
        const size_t sz = nn_node_size(&m->nodes[0]);
        float *xg = calloc((size_t)n * sz, sizeof(float));
        fill_normal(xg, (size_t)n * sz, 12);
        check_sibs_bits(m, n, xg, "exporter graph");
        TH_EQ_INT(count_sib_groups(m), 1);
        int g[8];
        TH_EQ_INT(nn_fuse_sibs(m, c3, g), 4);
        free(xg);
    } else {
        TH_CHECK(0, "build the exporter graph");
    }
    nn_model_destroy(m);
}

int main(void)
{
    TH_RUN(test_fused_matches_unfused);
    TH_RUN(test_pool_commuted);
    TH_RUN(test_relu_after_block_boundary);
    TH_RUN(test_prologue);
    TH_RUN(test_cache_follows_parameters);
    TH_RUN(test_fused_is_deterministic);
    TH_RUN(test_siblings);
    TH_RUN(test_gelu_prologue);
    TH_RUN(test_mlp_pair);
    return th_report();
}
