/*
 * bench_convpath.c - where one input gradient of a zoo model spends its time,
 * and how close its convolutions come to the FP32 peak of one core.
 *
 *   bench_convpath [--arch name:size,...] [--batch B] [--rounds R] [--each] [--no-siblings]
 *
 * Default architectures: inceptionv3:299, inceptionv3:320, resnet50:224,
 * densenet121:224, at batch 16 (the saliency batch). For each:
 *   - the whole input gradient as saliency's batch passes run it (BN folded,
 *     nn_forward_fused + nn_backward_logit, inference buffer plan): CPU ms per
 *     image and its GFLOPS (convolution and dense FLOPs, the data-gradient
 *     GEMMs counted: 2x the forward);
 *   - the convolutions alone: every convolution node's forward (with its
 *     folded bias and ReLU epilogue when nn/fuse.h folds it) and its input
 *     gradient, on the node's own shapes at the same batch, on the paths the
 *     inference passes take (Winograd for the shapes nn/conv_wino.h takes,
 *     with the model's cached transforms; a sibling group of pointwise
 *     convolutions, nn/fuse.h, as one call at its first member, both ways;
 *     else the GEMM with the cached W^T):
 *     CPU ms and GFLOPS, FLOPs counted as the direct convolution's; on
 *     stderr the same split by kind of convolution (kernel, stride, path):
 *     each kind's share of the convolutions' time and its % of the peak.
 * The peak is measured, not assumed: a loop of independent AVX-512 (or AVX2)
 * FMAs, 2 FLOP per lane, as many accumulators as the FMA latency x pipes needs.
 * The host's speed drifts (20-40 % within minutes on a shared VM), so with
 * AVX-512 each round also measures the peak right before and right after it
 * (about 25 ms each) and its percentages are taken against the mean of the
 * two; the table gives the medians over rounds of those per-round
 * percentages (and the range of the per-round peaks on stderr).
 * CPU time of the process, medians of R rounds. Run with OPENBLAS_NUM_THREADS=1.
 * --grad-only times the whole gradient alone (no convolution-only loop).
 * --each also lists every convolution of the last round on stderr (shape,
 * path, forward and input-gradient ms per image, % of the peak).
 * --no-siblings runs the members of sibling groups alone, in the gradient
 * and in the convolution loop (nn_fuse_siblings = 0).
 * --prologue-ab also times each round's gradient with nn/fuse.h's BN+ReLU
 * prologue (and its pool applied first) off and on, in alternating order, and
 * prints the median ratio; --prologue-ab-bits B: on means nn_fuse_prologue = B.
 *
 *   bench_convpath --gemm [--arch ...] [--rounds R]
 * compares, on the forward GEMM (M = out channels, N = output pixels, K =
 * in channels x kernel taps) of every distinct convolution of each model at
 * batch 1, cblas_sgemm with nn/gemm.h's packed kernel (weights packed
 * beforehand, as once per model state), alternating, medians of R.
 *
 *   bench_convpath --paths [--arch ...] [--batch B] [--rounds R]
 * times every convolution of the model at batch B on both of nn/conv.c's
 * paths, alternating: OpenBLAS per image (conv2d_forward_blas,
 * conv2d_backward_data_blas) and the packed multi-image kernel
 * (nn/conv_packed.h), forward with its folded bias/ReLU and input gradient,
 * summed per output size (pixels per image), medians of R; percentages of the
 * median of the peaks measured before each round.
 */
#include <cblas.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/conv_packed.h"
#include "nn/conv_wino.h"
#include "nn/fuse.h"
#include "nn/gemm.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "nn/wpack.h"
#include "nn/zoo.h"
#include "rng.h"
#include "sc.h"
#include "bench_util.h"

#define ROUNDS_MAX 32
#define KINDS_MAX 24

/* The convolutions' time by kind (kernel, stride, path), summed over rounds. */
typedef struct {
    char name[40];
    double flop, sec; /* per round: direct FLOPs of both directions; CPU s */
    int convs;
} kind_t;

static kind_t *kind_of(kind_t *k, int *nk, const conv2d_shape_t *s, const char *path)
{
    char name[40];
    snprintf(name, sizeof name, "%dx%d stride %d %s", s->kh, s->kw, s->sh, path);
    for (int i = 0; i < *nk; i++)
        if (!strcmp(k[i].name, name))
            return &k[i];
    if (*nk == KINDS_MAX)
        return &k[KINDS_MAX - 1];
    kind_t *e = &k[(*nk)++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    return e;
}

static void fill_random(float *p, size_t count, uint32_t stream)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(7, "bench convpath"), stream, 0, 0);
    for (size_t i = 0; i < count; i++)
        p[i] = (float)(2.0 * rng_stream_uniform(&rs) - 1.0);
}

/* BN statistics from one training-mode pass of random images, as in a trained network. */
static void calibrate_bn(nn_model_t *m, const float *x, int n)
{
    for (int i = 1; i < m->n_nodes; i++)
        if (m->nodes[i].op == NN_BN)
            m->nodes[i].momentum = 1.0f;
    nn_forward(m, x, n, 1);
}

static int prologue_ab; /* --prologue-ab */
static int each;        /* --each */

static int bench_arch(const char *arch, int size, int batch, int rounds, double peak,
                      int grad_only)
{
    int rc = 0;
    nn_model_t *m = NULL;
    float *x = NULL, *dx = NULL, *cx = NULL, *cy = NULL, *cdy = NULL, *cdx = NULL, *ccol = NULL;
    int targets[64];
    double t_grad[ROUNDS_MAX], t_conv[ROUNDS_MAX], t_cfwd[ROUNDS_MAX], t_cbwd[ROUNDS_MAX];
    double peak_r[ROUNDS_MAX];
    const int per_round = __builtin_cpu_supports("avx512f");
    CHECK_RC(zoo_build(arch, size, 2, 1234, &m));
    const size_t image = nn_node_size(&m->nodes[0]);
    x = sc_calloc(image * (size_t)batch, sizeof(float));
    dx = sc_calloc(image * (size_t)batch, sizeof(float));
    CHECK_ALLOC(x);
    CHECK_ALLOC(dx);
    fill_random(x, image * (size_t)batch, 0);
    CHECK_RC(nn_model_prepare(m, 2));
    calibrate_bn(m, x, 2);
    CHECK_RC(nn_model_prepare(m, batch));
    CHECK_RC(nn_model_set_plan(m, NN_PLAN_INFER));
    for (int i = 0; i < batch; i++)
        targets[i] = 1;
    nn_backward_opts_t o = {.input_grad = 1};
    CHECK_RC(nn_forward_fused(m, x, batch)); /* warm-up, builds the fold */
    CHECK_RC(nn_backward_logit(m, targets, dx, &o));

    /* FLOPs and the largest buffers of the convolutions */
    double conv_fwd_flop = 0.0;
    size_t max_in = 1, max_out = 1, max_col = 1;
    int n_conv = 0;
    for (int i = 1; i < m->n_nodes; i++) {
        const nn_node_t *nd = &m->nodes[i];
        if (nd->op != NN_CONV)
            continue;
        const nn_node_t *src = &m->nodes[nd->in[0]];
        conv2d_shape_t s = {.n = 1, .c = src->c, .h = src->h, .w = src->w, .oc = nd->out_c,
                            .kh = nd->kh, .kw = nd->kw, .sh = nd->sh, .sw = nd->sw,
                            .pt = nd->pt, .pb = nd->pb, .pl = nd->pl, .pr = nd->pr};
        conv2d_shape_init(&s);
        conv_fwd_flop += 2.0 * s.oc * s.c * s.kh * s.kw * s.oh * s.ow;
        if (nn_node_size(src) > max_in)
            max_in = nn_node_size(src);
        size_t out_sz = nn_node_size(nd);
        if (m->fuse && nn_fuse_siblings && m->fuse->sib_lead[i] == i) /* the group's outputs */
            for (int c = m->fuse->sib_next[i]; c >= 0; c = m->fuse->sib_next[c])
                out_sz += nn_node_size(&m->nodes[c]);
        if (out_sz > max_out)
            max_out = out_sz;
        if (nn_gemm_bpack_floats() > max_col)
            max_col = nn_gemm_bpack_floats();
        if (conv2d_workspace(&s) > max_col)
            max_col = conv2d_workspace(&s);
        if (conv_wino_wanted(&s, 0) && conv_wino_workspace(&s) > max_col)
            max_col = conv_wino_workspace(&s);
        n_conv++;
    }
    const double grad_flop = 2.0 * nn_forward_flops(m);
    cx = sc_calloc(max_in * (size_t)batch, sizeof(float));
    cdx = sc_calloc(max_in * (size_t)batch, sizeof(float));
    cy = sc_calloc(max_out * (size_t)batch, sizeof(float));
    cdy = sc_calloc(max_out * (size_t)batch, sizeof(float));
    ccol = sc_calloc(max_col, sizeof(float));
    CHECK_ALLOC(cx);
    CHECK_ALLOC(cdx);
    CHECK_ALLOC(cy);
    CHECK_ALLOC(cdy);
    CHECK_ALLOC(ccol);
    fill_random(cx, max_in * (size_t)batch, 1);
    fill_random(cdy, max_out * (size_t)batch, 2);
    const nn_fuse_t *f = m->fuse;

    if (rounds > ROUNDS_MAX)
        rounds = ROUNDS_MAX;
    double t_off[ROUNDS_MAX], peak_sum = 0.0;
    kind_t kinds[KINDS_MAX];
    int n_kinds = 0;
    for (int r = 0; r < rounds; r++) {
        if (prologue_ab) { /* the same gradient without nn/fuse.h's prologue, first or last */
            double d[2];
            for (int k = 0; k < 2; k++) {
                const int on = (k + r) % 2;
                nn_fuse_prologue = on ? prologue_ab : 0;
                const double a = bench_cpu_now();
                CHECK_RC(nn_forward_fused(m, x, batch));
                CHECK_RC(nn_backward_logit(m, targets, dx, &o));
                d[on] = bench_cpu_now() - a;
            }
            nn_fuse_prologue = NN_FUSE_PROLOGUE | NN_FUSE_PROLOGUE_POOL;
            t_off[r] = d[0] / d[1];
        }
        const double p0 = per_round ? bench_fma_peak_short() : peak;
        double c0 = bench_cpu_now();
        CHECK_RC(nn_forward_fused(m, x, batch));
        CHECK_RC(nn_backward_logit(m, targets, dx, &o));
        double c1 = bench_cpu_now();
        double fwd = 0.0, bwd = 0.0;
        for (int i = 1; i < m->n_nodes && !grad_only; i++) {
            const nn_node_t *nd = &m->nodes[i];
            if (nd->op != NN_CONV)
                continue;
            const nn_node_t *src = &m->nodes[nd->in[0]];
            conv2d_shape_t s = {.n = batch, .c = src->c, .h = src->h, .w = src->w,
                                .oc = nd->out_c, .kh = nd->kh, .kw = nd->kw, .sh = nd->sh,
                                .sw = nd->sw, .pt = nd->pt, .pb = nd->pb, .pl = nd->pl,
                                .pr = nd->pr};
            conv2d_shape_init(&s);
            /* a sibling group: all of it at its first member, as the fused passes run it */
            int ids[NN_GEMM_MEMBERS], k_sib = 0;
            if (nn_fuse_siblings && f->sib_lead[i] >= 0) {
                if (f->sib_lead[i] != i)
                    continue;
                for (int c = i; c >= 0 && k_sib < NN_GEMM_MEMBERS; c = f->sib_next[c])
                    ids[k_sib++] = c;
            }
            const int members = k_sib ? k_sib : 1;
            if (!k_sib)
                ids[0] = i;
            const float *Wq[NN_GEMM_MEMBERS], *bq[NN_GEMM_MEMBERS], *dyq[NN_GEMM_MEMBERS];
            float *yq[NN_GEMM_MEMBERS];
            int relu_q[NN_GEMM_MEMBERS], ocq[NN_GEMM_MEMBERS], oc_all = 0;
            const size_t plane = (size_t)s.oh * s.ow * batch;
            for (int q = 0; q < members; q++) {
                const int c = ids[q];
                const int folded = f->bn_of[c] >= 0;
                Wq[q] = folded ? f->params + f->w_off[c] : nn_param(m, c, NN_P_WEIGHT, NULL);
                bq[q] = folded ? f->params + f->b_off[c] : nn_param(m, c, NN_P_BIAS, NULL);
                relu_q[q] = folded && f->relu_of[c] >= 0;
                ocq[q] = m->nodes[c].out_c;
                yq[q] = cy + (size_t)oc_all * plane;
                dyq[q] = cdy + (size_t)oc_all * plane;
                oc_all += ocq[q];
            }
            memset(cdx, 0, sizeof(float) * nn_node_size(src) * (size_t)batch);
            /* the engine's inference paths: Winograd with the cached transforms, else the
             * GEMM with the input gradient's cached W^T (the caches hold them after the
             * fused pass above) */
            const float *uf = !k_sib && conv_wino_wanted(&s, 0)
                                  ? nn_wpack_get(m, i, NN_WPACK_WINO_FWD, &s, Wq[0]) : NULL;
            const float *ub = uf ? nn_wpack_get(m, i, NN_WPACK_WINO_BWD, &s, Wq[0]) : NULL;
            const float *sib_wt = k_sib ? nn_wpack_sib_wt(m, k_sib, ids, Wq) : NULL;
            double a0 = bench_cpu_now();
            if (k_sib)
                conv_packed_forward_sibs(&s, k_sib, ocq, Wq, bq, relu_q, yq, cx, ccol);
            else if (uf)
                conv_wino_forward(&s, uf, cx, bq[0], relu_q[0], cy, ccol);
            else
                conv2d_forward_fused(&s, cx, Wq[0], bq[0], relu_q[0], cy, ccol);
            double a1 = bench_cpu_now();
            if (sib_wt)
                conv_packed_backward_sibs(&s, k_sib, ocq, sib_wt, dyq, cdx, 0, ccol);
            else if (k_sib)
                for (int q = k_sib - 1; q >= 0; q--) {
                    conv2d_shape_t sq = s;
                    sq.oc = ocq[q];
                    conv2d_backward_data_wt(&sq, Wq[q], nn_wpack_wt(m, ids[q], &sq, Wq[q]),
                                            dyq[q], cdx, 0, ccol);
                }
            else if (ub)
                conv_wino_backward_data(&s, ub, cdy, cdx, 0, ccol);
            else
                conv2d_backward_data_wt(&s, Wq[0], nn_wpack_wt(m, i, &s, Wq[0]), cdy, cdx, 0,
                                        ccol);
            double a2 = bench_cpu_now();
            fwd += a1 - a0;
            bwd += a2 - a1;
            const char *path = k_sib ? "GEMM, siblings" : uf ? "Winograd" : "GEMM";
            kind_t *kd = kind_of(kinds, &n_kinds, &s, path);
            kd->sec += a2 - a0;
            const double fl = 2.0 * oc_all * s.c * s.kh * s.kw * (double)s.oh * s.ow;
            if (r == 0) {
                kd->flop += 2.0 * fl;
                kd->convs += members;
            }
            if (each && r == rounds - 1)
                fprintf(stderr, "%s %d: node %3d %4d -> %4d %3dx%-3d %dx%d/%d pad %d,%d,%d,%d "
                        "%-14s fwd %6.3f ms %3.0f %%  dx %6.3f ms %3.0f %%\n", arch, size, i, s.c,
                        oc_all, s.h, s.w, s.kh, s.kw, s.sh, s.pt, s.pb, s.pl, s.pr, path,
                        1e3 * (a1 - a0) / batch, 100.0 * fl * batch / (a1 - a0) * 1e-9 / p0,
                        1e3 * (a2 - a1) / batch, 100.0 * fl * batch / (a2 - a1) * 1e-9 / p0);
        }
        t_grad[r] = (c1 - c0) / batch;
        t_cfwd[r] = fwd / batch;
        t_cbwd[r] = bwd / batch;
        t_conv[r] = (fwd + bwd) / batch;
        peak_r[r] = 0.5 * (p0 + (per_round ? bench_fma_peak_short() : peak));
        peak_sum += peak_r[r];
    }
    if (!grad_only && rounds > 0) {
        double all = 0.0;
        for (int k = 0; k < n_kinds; k++)
            all += kinds[k].sec;
        for (int k = 0; k < n_kinds; k++)
            fprintf(stderr, "%s %d: %-28s %3d convs  %5.1f %% of the convolutions' time  %5.1f "
                    "ms/gradient  %3.0f %% of peak\n", arch, size, kinds[k].name, kinds[k].convs,
                    100.0 * kinds[k].sec / all, 1e3 * kinds[k].sec / rounds / batch,
                    100.0 * kinds[k].flop * batch * rounds / kinds[k].sec * 1e-9 / (peak_sum / rounds));
    }
    double g = bench_median(t_grad, rounds), c = bench_median(t_conv, rounds);
    /* percentages of each round's own peak, then their medians */
    double pct[4][ROUNDS_MAX], pmin = peak_r[0], pmax = peak_r[0];
    for (int r = 0; r < rounds; r++) {
        pct[0][r] = 100 * grad_flop / t_grad[r] * 1e-9 / peak_r[r];
        pct[1][r] = 100 * 2 * conv_fwd_flop / t_conv[r] * 1e-9 / peak_r[r];
        pct[2][r] = 100 * conv_fwd_flop / t_cfwd[r] * 1e-9 / peak_r[r];
        pct[3][r] = 100 * conv_fwd_flop / t_cbwd[r] * 1e-9 / peak_r[r];
        pmin = peak_r[r] < pmin ? peak_r[r] : pmin;
        pmax = peak_r[r] > pmax ? peak_r[r] : pmax;
    }
    const double pg = bench_median(pct[0], rounds), pc = bench_median(pct[1], rounds);
    const double pf = bench_median(pct[2], rounds), pb = bench_median(pct[3], rounds);
    fprintf(stderr, "%s %d: peak per round %.1f-%.1f GFLOPS (before and after each round)\n",
            arch, size, pmin, pmax);
    if (prologue_ab)
        fprintf(stderr, "%s %d: whole gradient without / with the BN+ReLU prologue: %.3f "
                "(median of %d paired rounds)\n", arch, size, bench_median(t_off, rounds), rounds);
    fprintf(stderr, "%s %d: packed W^T cache %.1f MB (nn/wpack.h), folded BN %.1f MB, parameters %.1f MB\n",
            arch, size, nn_wpack_bytes(m) / 1e6, nn_fuse_bytes(m) / 1e6,
            m->n_params * sizeof(float) / 1e6);
    if (grad_only) {
        printf("| %s %d | %d | %d | %.2f | %.1f | %.0f%% | - | - | - | - | - | - |\n", arch, size,
               batch, n_conv, grad_flop * 1e-9, 1e3 * g, pg);
        fflush(stdout);
        goto cleanup;
    }
    printf("| %s %d | %d | %d | %.2f | %.1f | %.0f%% | %.2f | %.1f | %.0f%% | %.0f%% | %.0f%% | %.0f%% |\n",
           arch, size, batch, n_conv, grad_flop * 1e-9, 1e3 * g, pg, 2 * conv_fwd_flop * 1e-9,
           1e3 * c, pc, pf, pb, 100 * c / g);
    fflush(stdout);
cleanup:
    sc_free(x);
    sc_free(dx);
    sc_free(cx);
    sc_free(cy);
    sc_free(cdy);
    sc_free(cdx);
    sc_free(ccol);
    nn_model_destroy(m);
    return rc;
}

/* --gemm: cblas_sgemm against the packed kernel on each distinct forward GEMM of the model. */
static int bench_gemm_shapes(const char *arch, int size, int rounds, double peak)
{
    nn_model_t *m = NULL;
    int rc = zoo_build(arch, size, 2, 1234, &m);
    if (rc < 0)
        return rc;
    double flop_all = 0.0, t_blas_all = 0.0, t_pack_all = 0.0;
    int seen[512][3], n_seen = 0;
    for (int i = 1; i < m->n_nodes; i++) {
        const nn_node_t *nd = &m->nodes[i];
        if (nd->op != NN_CONV)
            continue;
        const int M = nd->out_c, N = nd->h * nd->w;
        const int K = m->nodes[nd->in[0]].c * nd->kh * nd->kw;
        int dup = -1;
        for (int j = 0; j < n_seen; j++)
            if (seen[j][0] == M && seen[j][1] == N && seen[j][2] == K)
                dup = j;
        if (dup >= 0 || n_seen == 512)
            continue;
        seen[n_seen][0] = M, seen[n_seen][1] = N, seen[n_seen][2] = K;
        n_seen++;
        float *A = sc_calloc((size_t)M * K, sizeof(float)), *B = sc_calloc((size_t)K * N, sizeof(float));
        float *C = sc_calloc((size_t)M * N, sizeof(float));
        float *P = sc_calloc(nn_gemm_packed_floats(M, K), sizeof(float));
        float *BP = sc_calloc(nn_gemm_bpack_floats(), sizeof(float));
        fill_random(A, (size_t)M * K, 3);
        fill_random(B, (size_t)K * N, 4);
        nn_gemm_pack_a(M, K, A, K, 0, P);
        double tb[ROUNDS_MAX], tp[ROUNDS_MAX];
        for (int r = 0; r < rounds; r++) {
            double t0 = bench_cpu_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N,
                        0.0f, C, N);
            double t1 = bench_cpu_now();
            nn_gemm_packed(M, N, K, P, B, N, C, N, 0, NULL, 0, BP);
            double t2 = bench_cpu_now();
            tb[r] = t1 - t0;
            tp[r] = t2 - t1;
        }
        const double flop = 2.0 * M * N * K, mb = bench_median(tb, rounds), mp = bench_median(tp, rounds);
        flop_all += flop;
        t_blas_all += mb;
        t_pack_all += mp;
        printf("| %s %d | %d | %d | %d | %.0f%% | %.0f%% | %.2f |\n", arch, size, M, N, K,
               100 * flop / mb * 1e-9 / peak, 100 * flop / mp * 1e-9 / peak, mb / mp);
        sc_free(A);
        sc_free(B);
        sc_free(C);
        sc_free(P);
        sc_free(BP);
    }
    printf("| %s %d | all %d shapes (once each) | | | %.0f%% | %.0f%% | %.2f |\n", arch, size,
           n_seen, 100 * flop_all / t_blas_all * 1e-9 / peak,
           100 * flop_all / t_pack_all * 1e-9 / peak, t_blas_all / t_pack_all);
    fflush(stdout);
    nn_model_destroy(m);
    return 0;
}

/* --paths: both convolution paths on every convolution of the model at the
 * batch, summed per output size. */
static int bench_paths(const char *arch, int size, int batch, int rounds, double peak)
{
    nn_model_t *m = NULL;
    int rc = zoo_build(arch, size, 2, 1234, &m);
    if (rc < 0)
        return rc;
    size_t max_in = 1, max_out = 1, max_ws = 1, max_wt = 1;
    for (int i = 1; i < m->n_nodes; i++) {
        const nn_node_t *nd = &m->nodes[i];
        if (nd->op != NN_CONV)
            continue;
        const nn_node_t *src = &m->nodes[nd->in[0]];
        conv2d_shape_t s = {.n = 1, .c = src->c, .h = src->h, .w = src->w, .oc = nd->out_c,
                            .kh = nd->kh, .kw = nd->kw, .sh = nd->sh, .sw = nd->sw,
                            .pt = nd->pt, .pb = nd->pb, .pl = nd->pl, .pr = nd->pr};
        conv2d_shape_init(&s);
        size_t ws = conv2d_workspace(&s);
        if (conv_packed_workspace(&s) > ws)
            ws = conv_packed_workspace(&s);
        max_in = nn_node_size(src) > max_in ? nn_node_size(src) : max_in;
        max_out = nn_node_size(nd) > max_out ? nn_node_size(nd) : max_out;
        max_ws = ws > max_ws ? ws : max_ws;
        const size_t wt = nn_gemm_packed_floats(s.c * s.kh * s.kw, s.oc);
        max_wt = wt > max_wt ? wt : max_wt;
    }
    float *x = sc_calloc(max_in * (size_t)batch, sizeof(float));
    float *wt = sc_calloc(max_wt, sizeof(float)); /* W^T packed once, as nn/wpack.h keeps it */
    float *dx = sc_calloc(max_in * (size_t)batch, sizeof(float));
    float *y = sc_calloc(max_out * (size_t)batch, sizeof(float));
    float *dy = sc_calloc(max_out * (size_t)batch, sizeof(float));
    float *ws = sc_calloc(max_ws, sizeof(float));
    if (!x || !dx || !y || !dy || !ws || !wt) {
        rc = SC_ERR_NOMEM;
        goto cleanup;
    }
    fill_random(x, max_in * (size_t)batch, 1);
    fill_random(dy, max_out * (size_t)batch, 2);
    enum { NP = 64 };
    int pix[NP], count[NP], n_pix = 0;
    double flop[NP], t[NP][4][ROUNDS_MAX]; /* fwd blas, fwd packed, bwd blas, bwd packed */
    memset(flop, 0, sizeof(flop));
    memset(t, 0, sizeof(t));
    memset(count, 0, sizeof(count));
    if (rounds > ROUNDS_MAX)
        rounds = ROUNDS_MAX;
    double peak_r[ROUNDS_MAX];
    for (int r = 0; r < rounds; r++) {
        peak_r[r] = __builtin_cpu_supports("avx512f") ? bench_fma_peak_short() : peak;
        for (int i = 1; i < m->n_nodes; i++) {
            const nn_node_t *nd = &m->nodes[i];
            if (nd->op != NN_CONV)
                continue;
            const nn_node_t *src = &m->nodes[nd->in[0]];
            conv2d_shape_t s = {.n = batch, .c = src->c, .h = src->h, .w = src->w,
                                .oc = nd->out_c, .kh = nd->kh, .kw = nd->kw, .sh = nd->sh,
                                .sw = nd->sw, .pt = nd->pt, .pb = nd->pb, .pl = nd->pl,
                                .pr = nd->pr};
            conv2d_shape_init(&s);
            const int P = s.oh * s.ow;
            int b = 0;
            while (b < n_pix && pix[b] != P)
                b++;
            if (b == n_pix) {
                if (n_pix == NP)
                    continue;
                pix[n_pix++] = P;
            }
            const float *W = nn_param(m, i, NN_P_WEIGHT, NULL);
            const float *bias = nn_param(m, i, NN_P_BIAS, NULL);
            double c[5];
            nn_gemm_pack_a(s.c * s.kh * s.kw, s.oc, W, s.c * s.kh * s.kw, 1, wt);
            c[0] = bench_cpu_now();
            conv2d_forward_blas(&s, x, W, bias, 1, y, ws);
            c[1] = bench_cpu_now();
            conv_packed_forward(&s, x, W, bias, 1, y, ws);
            c[2] = bench_cpu_now();
            conv2d_backward_data_blas(&s, W, dy, dx, 1, ws);
            c[3] = bench_cpu_now();
            conv_packed_backward_data(&s, W, wt, dy, dx, 1, ws);
            c[4] = bench_cpu_now();
            for (int k = 0; k < 4; k++)
                t[b][k][r] += c[k + 1] - c[k];
            if (r == 0) {
                count[b]++;
                flop[b] += 2.0 * s.oc * s.c * s.kh * s.kw * P * batch;
            }
        }
    }
    /* the percentages against the median of the peaks measured before each round */
    peak = bench_median(peak_r, rounds);
    double all[4] = {0, 0, 0, 0}, flop_all = 0.0;
    for (int b = 0; b < n_pix; b++) {
        double med[4];
        for (int k = 0; k < 4; k++) {
            med[k] = bench_median(t[b][k], rounds);
            all[k] += med[k];
        }
        flop_all += flop[b];
        const double f = flop[b] * 1e-9 / peak * 100;
        printf("| %s %d | %d | %d | %.1f | %.0f%% | %.0f%% | %.2f | %.0f%% | %.0f%% | %.2f |\n",
               arch, size, pix[b], count[b], flop[b] * 1e-9, f / med[0], f / med[1],
               med[0] / med[1], f / med[2], f / med[3], med[2] / med[3]);
    }
    const double f = flop_all * 1e-9 / peak * 100;
    printf("| %s %d | all | | %.1f | %.0f%% | %.0f%% | %.2f | %.0f%% | %.0f%% | %.2f |\n", arch,
           size, flop_all * 1e-9, f / all[0], f / all[1], all[0] / all[1], f / all[2],
           f / all[3], all[2] / all[3]);
    fflush(stdout);
cleanup:
    sc_free(x);
    sc_free(wt);
    sc_free(dx);
    sc_free(y);
    sc_free(dy);
    sc_free(ws);
    nn_model_destroy(m);
    return rc;
}

int main(int argc, char **argv)
{
    bench_blas_core(argv);
    const char *archs = "inceptionv3:299,inceptionv3:320,resnet50:224,densenet121:224";
    int batch = 16, rounds = 5, gemm = 0, grad_only = 0, paths = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--arch") && i + 1 < argc)
            archs = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--gemm"))
            gemm = 1;
        else if (!strcmp(argv[i], "--paths"))
            paths = 1;
        else if (!strcmp(argv[i], "--prologue-ab"))
            prologue_ab = NN_FUSE_PROLOGUE | NN_FUSE_PROLOGUE_POOL;
        else if (!strcmp(argv[i], "--prologue-ab-bits") && i + 1 < argc)
            prologue_ab = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--each"))
            each = 1;
        else if (!strcmp(argv[i], "--no-siblings"))
            nn_fuse_siblings = 0;
        else if (!strcmp(argv[i], "--grad-only"))
            grad_only = 1;
        else {
            fprintf(stderr, "usage: %s [--gemm | --paths | --grad-only | --each | --no-siblings] [--arch name:size,...] [--batch B] "
                    "[--rounds R]\n",
                    argv[0]);
            return 2;
        }
    }
    if (rounds > ROUNDS_MAX)
        rounds = ROUNDS_MAX;
    if (batch < 1 || batch > 64 || rounds < 1) {
        fprintf(stderr, "%s: batch must be 1..64 and rounds >= 1\n", argv[0]);
        return 2;
    }
    const int avx512 = __builtin_cpu_supports("avx512f");
    double ghz = bench_measure_ghz();
    double peak = avx512 ? bench_fma_peak_avx512() : bench_peak_gflops(ghz);
    printf("FP32 peak per core %.1f GFLOPS (%s); clock %.2f GHz by dependent adds -> "
           "clock x 2 pipes x %d lanes x 2 = %.1f; OpenBLAS core %s\n\n",
           peak, avx512 ? "measured, independent AVX-512 FMAs" : "clock x 2 x 8 x 2 (no AVX-512)",
           ghz, bench_fma_lanes(), bench_peak_gflops(ghz), openblas_get_corename());
    if ((gemm || paths) && !nn_gemm_available()) {
        fprintf(stderr, "%s --gemm/--paths: this CPU has no AVX-512\n", argv[0]);
        return 2;
    }
    if (paths)
        printf("| model | pixels per image | convs | GFLOP | fwd OpenBLAS %% of peak | fwd packed "
               "%% | OpenBLAS / packed | dx OpenBLAS %% | dx packed %% | OpenBLAS / packed "
               "|\n|---|---|---|---|---|---|---|---|---|---|\n");
    else if (gemm)
        printf("| model | M | N | K | cblas_sgemm %% of peak | packed kernel %% of peak | "
               "cblas time / packed time |\n|---|---|---|---|---|---|---|\n");
    else
        printf("| model | batch | convs | GFLOP/gradient | ms/gradient | %% of peak | conv GFLOP "
               "| conv ms | conv %% of peak | conv fwd %% | conv dx %% | conv share of gradient "
               "|\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    char list[512];
    snprintf(list, sizeof list, "%s", archs);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        char *colon = strchr(tok, ':');
        int size = colon ? atoi(colon + 1) : 224;
        if (colon)
            *colon = '\0';
        if ((paths  ? bench_paths(tok, size, batch, rounds, peak)
             : gemm ? bench_gemm_shapes(tok, size, rounds, peak)
                    : bench_arch(tok, size, batch, rounds, peak, grad_only)) < 0) {
            fprintf(stderr, "bench_convpath: %s failed\n", tok);
            return 1;
        }
    }
    return 0;
}
