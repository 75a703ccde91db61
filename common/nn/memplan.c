/*
 * memplan.c - the memory plan of a prepared model: which activation and
 * gradient buffers share memory (memplan.h).
 *
 * Owned by common/nn. One forward followed by one backward is a timeline of
 * 2N steps for N nodes: the forward of node i at step i, its backward at step
 * 2N-1-i. A node's output lives from its forward to the last forward that
 * reads it, or to the end of the backward when a backward reads it (as the op
 * table declares: nn_op_def_t.bwd_reads; kept to the end, so that several
 * backward passes may follow one forward); its gradient lives from the backward of its
 * last consumer (the first to accumulate into it) to its own backward. Buffers
 * whose lifetimes do not overlap share one allocation (greedy, best fit, over
 * the intervals in order of their start); an op that computes elementwise
 * (nn_op_def_t.inplace) writes over its input when that input dies at it.
 * Pinned nodes (the input, the output, the logits and those nn_model_keep
 * named) own their buffers, which hold their values after the pass; a node
 * named by nn_model_keep_outputs owns its output buffer only (its gradient
 * is planned as any other).
 *
 * The plan also serves nn_forward_fused (nn/fuse.h): there a convolution
 * writes its BN's (or ReLU's) output at its own step, so those outputs live
 * from the convolution's step, and the backward that skips the BN reads the
 * BN's gradient at the convolution's backward, so that gradient lives until
 * then. A convolution with a BN+ReLU prologue reads the BN's input in its
 * forward and its backward and adds into that input's gradients there: the
 * input lives to the end, its gradient from that backward (the BN+ReLU output
 * it replaces keeps its buffer for unfused passes). A pool that such a
 * convolution applies first is written at the convolution's step and its
 * gradient read at the convolution's backward. The pointwise convolutions of
 * a sibling group (nn/fuse.h) write their outputs at the first member's step
 * and read their output gradients at its backward: those live from and until
 * then.
 *
 * A concat whose only reader is a BN (nn/concat_view.h) gets no buffers: its
 * reader reads the concat's inputs, which live until that reader is done with
 * them, and adds into their gradients, which live from that reader's backward.
 */
#include "nn/memplan.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/concat_view.h"
#include "nn/fuse.h"
#include "nn/op.h"
#include "sc.h"

/* What node kind op's backward reads, with unknown taken as everything. */
static unsigned reads_of(nn_op op)
{
    unsigned r = nn_op_def(op)->bwd_reads;
    return r ? r : NN_READS_INPUTS | NN_READS_OUTPUT | NN_READS_INPUTS_PARAM;
}

int nn_memplan_pinned(const nn_model_t *m, int id)
{
    return id == 0 || id == m->output || id == nn_logits_node(m) || m->nodes[id].keep;
}

int nn_memplan_pinned_grad(const nn_model_t *m, int id)
{
    return id == 0 || id == m->output || id == nn_logits_node(m) ||
           m->nodes[id].keep == NN_KEEP_ALL;
}

typedef struct interval {
    int start, end;  /* steps, inclusive */
    size_t floats;
    int node, grad;  /* whose buffer: node's output (grad 0) or gradient (grad 1) */
} interval_t;

static int cmp_start(const void *a, const void *b)
{
    const interval_t *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->grad != y->grad)
        return x->grad - y->grad;
    return x->node - y->node;
}

static size_t round16(size_t floats) { return (floats + 15) & ~(size_t)15; }

/* The largest id of a node that adds into node x's gradient in a backward pass,
 * other than node `skip` and the ReLU `relu`: x's readers (through concat
 * views), the ReLUs that run the backward of a BN or an add reading x; -1 when
 * none. */
static int other_writer_max(const nn_model_t *m, const uint8_t *view, const int *pre_by, int x,
                            int skip, int relu)
{
    int w = -1;
    for (int c = 1; c < m->n_nodes; c++) {
        const nn_node_t *nd = &m->nodes[c];
        for (int k = 0; k < nd->n_in; k++) {
            const nn_node_t *via = view[nd->in[k]] ? &m->nodes[nd->in[k]] : NULL;
            for (int q = 0; q < (via ? via->n_in : 1); q++) {
                if ((via ? via->in[q] : nd->in[k]) != x || c == skip)
                    continue;
                w = c > w ? c : w;
                /* the convolution after a BN and its ReLU may write x's gradient */
                if (pre_by[c] > w)
                    w = pre_by[c];
                /* the ReLU after it may write x's gradient in its place */
                for (int r = c + 1; r < m->n_nodes; r++)
                    if (r != relu && m->nodes[r].op == NN_RELU && m->nodes[r].in[0] == c &&
                        (nn_bn_relu_pair(m, r) || nn_add_relu_pair(m, r)))
                        w = r > w ? r : w;
            }
        }
    }
    return w;
}

/* The smallest id whose backward reads node x's gradient: x, or the
 * convolution a BN is folded into (fused passes read it there). */
static int grad_reader(const nn_model_t *m, const nn_fuse_t *fuse, int x)
{
    return fuse->folded_into[x] >= 0 && m->nodes[x].op == NN_BN ? fuse->folded_into[x] : x;
}

static int group_root(int *parent, int i)
{
    while (parent[i] != i)
        i = parent[i] = parent[parent[i]];
    return i;
}

/* The largest id whose backward changes node x's gradient after the ReLU
 * `relu` wrote it (running the backward of the add `add`): another writer, or
 * x itself when its own backward computes other gradients in place over it
 * (leads[x]); -1 when none. */
static int changed_at(const nn_model_t *m, const uint8_t *view, const int *pre_by,
                      const uint8_t *leads, int x, int add, int relu)
{
    const int w = other_writer_max(m, view, pre_by, x, add, relu);
    return leads[x] && x > w ? x : w;
}

int nn_memplan_build(const nn_model_t *m, int batch, nn_plan_mode mode, nn_memplan_t *plan)
{
    int rc = 0;
    nn_fuse_t *fuse = NULL;
    const int N = m->n_nodes, T = 2 * N;
    memset(plan, 0, sizeof *plan);
    int *out_end = malloc(sizeof(int) * (size_t)N);
    int *max_cons = malloc(sizeof(int) * (size_t)N);
    interval_t *iv = malloc(sizeof *iv * (size_t)N * 2);
    size_t *buf_size = malloc(sizeof(size_t) * (size_t)N * 2);
    int *buf_busy = malloc(sizeof(int) * (size_t)N * 2);
    uint8_t *view = malloc((size_t)N);
    int *group = malloc(sizeof(int) * (size_t)N);
    uint8_t *leads = malloc((size_t)N);
    int *pre_by = malloc(sizeof(int) * (size_t)N); /* BN id -> the convolution of its prologue */
    interval_t *g_iv = malloc(sizeof *g_iv * (size_t)N);
    plan->out_buf = malloc(sizeof(int) * (size_t)N);
    plan->grad_buf = malloc(sizeof(int) * (size_t)N);
    CHECK_ALLOC(out_end);
    CHECK_ALLOC(max_cons);
    CHECK_ALLOC(iv);
    CHECK_ALLOC(buf_size);
    CHECK_ALLOC(buf_busy);
    CHECK_ALLOC(view);
    CHECK_ALLOC(group);
    CHECK_ALLOC(leads);
    CHECK_ALLOC(pre_by);
    CHECK_ALLOC(g_iv);
    CHECK_ALLOC(plan->out_buf);
    CHECK_ALLOC(plan->grad_buf);
    for (int i = 0; i < N; i++) {
        out_end[i] = i;
        max_cons[i] = -1;
        if (reads_of(m->nodes[i].op) & NN_READS_OUTPUT)
            out_end[i] = T - 1;
    }
    for (int i = 0; i < N; i++)
        view[i] = (uint8_t)nn_cview_eligible(m, i);
    for (int j = 1; j < N; j++) {
        const nn_node_t *nd = &m->nodes[j];
        const unsigned r = reads_of(nd->op);
        const int reads_in = (r & NN_READS_INPUTS) ||
                             (mode == NN_PLAN_TRAIN && (r & NN_READS_INPUTS_PARAM));
        for (int k = 0; k < nd->n_in; k++) {
            /* a reader of a view reads (and adds gradients into) the view's inputs */
            const nn_node_t *via = view[nd->in[k]] ? &m->nodes[nd->in[k]] : NULL;
            for (int q = 0; q < (via ? via->n_in : 1); q++) {
                const int src = via ? via->in[q] : nd->in[k];
                if (j > out_end[src])
                    out_end[src] = j;
                if (reads_in)
                    out_end[src] = T - 1;
                if (j > max_cons[src])
                    max_cons[src] = j;
            }
        }
    }
    /* a ReLU that runs its BN's backward (nn_bn_relu_pair) adds into the BN's
     * input gradients at its own step */
    for (int j = 1; j < N; j++) {
        if (!nn_bn_relu_pair(m, j))
            continue;
        const int src = m->nodes[j - 1].in[0];
        const nn_node_t *via = view[src] ? &m->nodes[src] : NULL;
        for (int q = 0; q < (via ? via->n_in : 1); q++) {
            const int s = via ? via->in[q] : src;
            if (j > max_cons[s])
                max_cons[s] = j;
        }
    }
    /* a pointwise convolution that applies a BN and its ReLU while packing its
     * input (nn/fuse.h's prologue) reads the BN's input in its forward and
     * backward and adds into its gradients at its own backward */
    for (int j = 0; j < N; j++)
        pre_by[j] = -1;
    for (int j = 1; j < N; j++) {
        const int bn = nn_fuse_pre_plan(m, j);
        if (bn < 0)
            continue;
        pre_by[bn] = j;
        const int src = m->nodes[bn].in[0];
        const nn_node_t *via = view[src] ? &m->nodes[src] : NULL;
        for (int q = 0; q < (via ? via->n_in : 1); q++) {
            const int x = via ? via->in[q] : src;
            out_end[x] = T - 1;
            if (j > max_cons[x])
                max_cons[x] = j;
        }
    }
    /* a pointwise convolution that applies a GELU while packing (nn/fuse.h) reads
     * the GELU's input at its own step */
    for (int j = 1; j < N; j++) {
        const int g = nn_fuse_gelu_plan(m, j);
        if (g >= 0 && out_end[m->nodes[g].in[0]] < j)
            out_end[m->nodes[g].in[0]] = j;
    }
    /* an MLP pair's second convolution writes the pair's input gradient at its
     * own backward (nn/fuse.h) */
    for (int j = 1; j < N; j++) {
        const int c1 = nn_fuse_mlp_plan(m, j);
        if (c1 >= 0 && j > max_cons[m->nodes[c1].in[0]])
            max_cons[m->nodes[c1].in[0]] = j;
    }
    /* a ReLU that runs its add's backward (nn_add_relu_pair) writes the add's
     * input gradients at its own step */
    for (int j = 1; j < N; j++) {
        if (!nn_add_relu_pair(m, j))
            continue;
        const nn_node_t *add = &m->nodes[m->nodes[j].in[0]];
        for (int q = 0; q < 2; q++)
            if (j > max_cons[add->in[q]])
                max_cons[add->in[q]] = j;
    }
    CHECK_RC(nn_fuse_create(m, &fuse));
    /* Gradients computed in place over a ReLU's gradient, which dies at the
     * ReLU's backward: its input's (the first gradient written into it), or,
     * for a ReLU that runs its add's backward, one or both of the add's
     * inputs' (both only when neither changes before the other's last
     * reader: they hold the same values until then). Such
     * gradients share one buffer (a group, its lifetime the union), which a
     * chain of residual blocks carries from block to block. */
    for (int i = 0; i < N; i++)
        group[i] = i;
    memset(leads, 0, (size_t)N);
    for (int j = 1; j < N; j++) {
        const nn_node_t *nd = &m->nodes[j];
        if (nd->op != NN_RELU || nd->n_in != 1 || view[j] || nn_memplan_pinned_grad(m, j))
            continue;
        int cand[2], n_cand = 0;
        if (nn_add_relu_pair(m, j)) {
            const nn_node_t *add = &m->nodes[nd->in[0]];
            for (int q = 0; q < 2; q++)
                cand[n_cand++] = add->in[q];
        } else {
            cand[n_cand++] = nd->in[0];
        }
        int joined = -1; /* the candidate that joined the ReLU's group */
        for (int q = 0; q < n_cand; q++) {
            const int x = cand[q];
            if (x < 1 || view[x] || nn_memplan_pinned_grad(m, x) || max_cons[x] != j ||
                group[x] != x || nn_node_size(&m->nodes[x]) != nn_node_size(nd))
                continue;
            if (joined >= 0 && (changed_at(m, view, pre_by, leads, x, nd->in[0], j) >=
                                    grad_reader(m, fuse, joined) ||
                                changed_at(m, view, pre_by, leads, joined, nd->in[0], j) >=
                                    grad_reader(m, fuse, x)))
                continue; /* both inputs of the add: one changes before the other is read */
            group[x] = group_root(group, j);
            leads[j] = 1;
            joined = x;
        }
    }
    int n_iv = 0;
    for (int i = 0; i < N; i++) {
        if (view[i]) { /* no buffers of its own */
            plan->out_buf[i] = plan->grad_buf[i] = -1;
            continue;
        }
        const size_t floats = round16((size_t)batch * nn_node_size(&m->nodes[i]));
        const int pinned = nn_memplan_pinned(m, i), pinned_grad = nn_memplan_pinned_grad(m, i);
        /* the convolution that writes this node's output in a fused pass, else -1 */
        const int by = fuse->folded_into[i] >= 0 ? fuse->folded_into[i] : fuse->pool_pre[i];
        /* a sibling group's outputs are all written at its first member's step */
        int start = by >= 0 ? by : i;
        if (fuse->sib_lead[start] >= 0)
            start = fuse->sib_lead[start];
        /* an MLP pair's second convolution's output is written at the first's step */
        if (fuse->mlp_into[start] >= 0)
            start = fuse->mlp_into[start];
        iv[n_iv++] = (interval_t){start, pinned ? T : out_end[i], floats, i, 0};
        const int g_start = max_cons[i] >= 0 ? T - 1 - max_cons[i] : T - 1 - i;
        /* a folded BN's gradient, or a pool's applied first, is read by the convolution;
         * a sibling group's output gradients by its first member's backward */
        int reader = by >= 0 && (m->nodes[i].op == NN_BN || fuse->pool_pre[i] >= 0) ? by : i;
        if (fuse->sib_lead[reader] >= 0)
            reader = fuse->sib_lead[reader];
        const int g_end = T - 1 - reader;
        g_iv[i] = (interval_t){pinned_grad ? 0 : g_start, pinned_grad ? T : g_end, floats, i, 1};
    }
    for (int i = 0; i < N; i++) /* a group's lifetime: the union of its members' */
        if (!view[i] && group_root(group, i) != i) {
            interval_t *r = &g_iv[group_root(group, i)];
            const interval_t *x = &g_iv[i];
            r->start = x->start < r->start ? x->start : r->start;
            r->end = x->end > r->end ? x->end : r->end;
            r->floats = x->floats > r->floats ? x->floats : r->floats;
        }
    for (int i = 0; i < N; i++)
        if (!view[i] && group_root(group, i) == i)
            iv[n_iv++] = g_iv[i];
    qsort(iv, (size_t)n_iv, sizeof *iv, cmp_start);
    int n_buf = 0;
    for (int v = 0; v < n_iv; v++) {
        const interval_t *it = &iv[v];
        const nn_node_t *nd = &m->nodes[it->node];
        int pick = -1;
        const int pinned = it->grad ? nn_memplan_pinned_grad(m, it->node)
                                    : nn_memplan_pinned(m, it->node);
        if (!it->grad && !pinned && it->node > 0 && nn_op_def(nd->op)->inplace) {
            /* Write over input 0 when it dies here and no other input shares its memory. */
            const int src = nd->in[0];
            const int b = plan->out_buf[src];
            int shared = 0;
            for (int k = 1; k < nd->n_in; k++)
                shared |= plan->out_buf[nd->in[k]] == b;
            if (!nn_memplan_pinned(m, src) && out_end[src] == it->node && !shared &&
                nn_node_size(&m->nodes[src]) == nn_node_size(nd))
                pick = b;
        }
        if (pick < 0 && !pinned) {
            int best_fit = -1, largest = -1;
            for (int b = 0; b < n_buf; b++) {
                if (buf_busy[b] >= it->start)
                    continue;
                if (buf_size[b] >= it->floats &&
                    (best_fit < 0 || buf_size[b] < buf_size[best_fit]))
                    best_fit = b;
                if (largest < 0 || buf_size[b] > buf_size[largest])
                    largest = b;
            }
            pick = best_fit >= 0 ? best_fit : largest;
        }
        if (pick < 0) {
            pick = n_buf++;
            buf_size[pick] = 0;
        }
        if (buf_size[pick] < it->floats)
            buf_size[pick] = it->floats;
        buf_busy[pick] = pinned ? 2 * T + 2 : it->end; /* a pinned buffer is never free again */
        (it->grad ? plan->grad_buf : plan->out_buf)[it->node] = pick;
    }
    for (int i = 0; i < N; i++)
        if (!view[i])
            plan->grad_buf[i] = plan->grad_buf[group_root(group, i)];
    plan->n_bufs = n_buf;
    plan->buf_floats = malloc(sizeof(size_t) * (size_t)(n_buf ? n_buf : 1));
    CHECK_ALLOC(plan->buf_floats);
    plan->total_floats = 0;
    for (int b = 0; b < n_buf; b++) {
        plan->buf_floats[b] = buf_size[b];
        plan->total_floats += buf_size[b];
    }
cleanup:
    nn_fuse_destroy(fuse);
    free(out_end);
    free(max_cons);
    free(iv);
    free(buf_size);
    free(buf_busy);
    free(view);
    free(pre_by);
    free(group);
    free(leads);
    free(g_iv);
    if (rc < 0)
        nn_memplan_free(plan);
    return rc;
}

void nn_memplan_free(nn_memplan_t *plan)
{
    free(plan->out_buf);
    free(plan->grad_buf);
    free(plan->buf_floats);
    memset(plan, 0, sizeof *plan);
}

void *nn_alloc_floats(size_t floats)
{
    /* Not zeroed: every output is written by its forward before it is read, every
     * gradient zeroed or overwritten on its first use in a pass (nn_grad_acc,
     * nn_grad_dst); zeroing here would touch every page before the first pass. */
    void *p = NULL;
    size_t bytes = (floats ? floats : 16) * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, bytes) != 0)
        return NULL;
    return p;
}

size_t nn_model_runtime_bytes(const nn_model_t *m, int batch, nn_plan_mode mode)
{
    nn_memplan_t plan;
    if (batch < 1 || nn_memplan_build(m, batch, mode, &plan) < 0)
        return 0;
    size_t bytes = plan.total_floats * sizeof(float);
    nn_memplan_free(&plan);
    size_t ws = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const nn_node_t *nd = &m->nodes[i];
        const nn_op_def_t *def = nn_op_def(nd->op);
        const size_t hw = (size_t)nd->h * nd->w;
        if (def->pc == NN_PC_IMAGE || def->pc == NN_PC_WINDOW || def->pc == NN_PC_COMBINE)
            bytes += (size_t)batch * (hw * sizeof(int32_t) + 1);
        if (nd->op == NN_MAXPOOL)
            bytes += (size_t)batch * nn_node_size(nd) * sizeof(int32_t);
        if (nd->op == NN_BN)
            bytes += 2 * (size_t)nd->c * sizeof(float);
        if (nd->op == NN_LAYERNORM) /* ops/layernorm.c's statistics */
            bytes += (size_t)batch * nn_layernorm_positions(nd) * 2 * sizeof(double);
        if (def->workspace) {
            size_t need = def->workspace(m, nd);
            ws = need > ws ? need : ws;
        }
    }
    return bytes + ws * sizeof(float);
}
