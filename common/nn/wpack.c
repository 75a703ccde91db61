/*
 * wpack.c - the cache of packed transposed convolution weights (wpack.h).
 *
 * Owned by common/nn. Entries are laid out once from the graph (one per
 * convolution whose input gradient takes the packed path, the path chosen by
 * the shape and the CPU only) and filled at their first use; the
 * generation logic follows nn/fuse.c's.
 */
#include "nn/wpack.h"

#include <stdlib.h>

#include "nn/conv_packed.h"
#include "nn/conv_wino.h"
#include "nn/fuse.h"
#include "nn/gemm.h"
#include "nn/op.h"
#include "nn/ops/conv_node.h"
#include "sc.h"

/* The floats of node i's entry of one kind, 0 when it has none; lead, next:
 * the sibling groups (nn_fuse_plan_sibs). */
static size_t entry_floats(const nn_model_t *m, int i, int kind, const int *lead, const int *next)
{
    const nn_node_t *nd = &m->nodes[i];
    if (nd->op != NN_CONV)
        return 0;
    conv2d_shape_t s = conv_node_shape(m, nd, 1, 1);
    if (conv2d_shape_init(&s) < 0)
        return 0;
    size_t floats = 0;
    if (kind == NN_WPACK_SIB_WT) {
        if (lead[i] != i)
            return 0;
        int k = 0;
        for (int c = i; c >= 0; c = next[c])
            k += m->nodes[c].out_c;
        floats = nn_gemm_packed_floats(s.c, k);
    } else if (kind == NN_WPACK_WT && conv_packed_wanted(&s, 1) && !conv_wino_wanted(&s, 1) &&
               (!lead || lead[i] < 0)) /* a group's members: its stacked pack instead */
        floats = conv_packed_wt_floats(&s);
    else if (kind == NN_WPACK_WINO_FWD && conv_wino_wanted(&s, 0))
        floats = conv_wino_u_floats(&s, 0);
    else if (kind == NN_WPACK_WINO_BWD && conv_wino_wanted(&s, 1))
        floats = conv_wino_u_floats(&s, 1);
    return (floats + 15) & ~(size_t)15; /* each entry 64-byte aligned in the slab */
}

size_t nn_wpack_bytes(const nn_model_t *m)
{
    if (m->wpack)
        return sizeof(float) * m->wpack->n_floats;
    int *lead = malloc(sizeof(int) * (size_t)m->n_nodes), *next = malloc(sizeof(int) * (size_t)m->n_nodes);
    size_t total = 0;
    if (lead && next) {
        nn_fuse_plan_sibs(m, lead, next);
        for (int i = 1; i < m->n_nodes; i++)
            for (int k = 0; k < NN_WPACK_KINDS; k++)
                total += entry_floats(m, i, k, lead, next);
    }
    free(lead);
    free(next);
    return sizeof(float) * total;
}

void nn_wpack_destroy(nn_wpack_t *w)
{
    if (!w)
        return;
    for (int k = 0; k < NN_WPACK_KINDS; k++) {
        free(w->off[k]);
        free(w->src[k]);
    }
    free(w->dirty);
    free(w->sib_lead);
    sc_free(w->data);
    free(w);
}

static int wpack_create(const nn_model_t *m, nn_wpack_t **out)
{
    int rc = 0;
    const int n = m->n_nodes;
    int *next = NULL;
    nn_wpack_t *w = calloc(1, sizeof *w);
    CHECK_ALLOC(w);
    w->n_nodes = n;
    w->dirty = calloc((size_t)n, 1);
    CHECK_ALLOC(w->dirty);
    w->sib_lead = malloc(sizeof(int) * (size_t)n);
    next = malloc(sizeof(int) * (size_t)n);
    CHECK_ALLOC(w->sib_lead);
    CHECK_ALLOC(next);
    nn_fuse_plan_sibs(m, w->sib_lead, next);
    for (int k = 0; k < NN_WPACK_KINDS; k++) {
        w->off[k] = malloc(sizeof(ptrdiff_t) * (size_t)n);
        w->src[k] = calloc((size_t)n, sizeof(const float *));
        CHECK_ALLOC(w->off[k]);
        CHECK_ALLOC(w->src[k]);
        for (int i = 0; i < n; i++) {
            const size_t floats = i > 0 ? entry_floats(m, i, k, w->sib_lead, next) : 0;
            w->off[k][i] = floats ? (ptrdiff_t)w->n_floats : -1;
            w->n_floats += floats;
        }
    }
    w->data = sc_calloc(w->n_floats ? w->n_floats : 1, sizeof(float));
    CHECK_ALLOC(w->data);
    w->gen = m->param_gen;
    w->dirty_gen = m->param_gen - 1; /* no marking yet */
    *out = w;
    w = NULL;
cleanup:
    free(next);
    nn_wpack_destroy(w);
    return rc;
}

/* Drops the entries the parameter changes since w->gen made stale: the marked
 * ones when only marked nodes changed, else all. */
static void wpack_refresh(nn_wpack_t *w, const nn_model_t *m)
{
    if (w->gen == m->param_gen)
        return;
    const int partial = w->dirty_gen == m->param_gen;
    for (int i = 0; i < w->n_nodes; i++) {
        if (!partial || w->dirty[i])
            for (int k = 0; k < NN_WPACK_KINDS; k++)
                w->src[k][i] = NULL;
        if (partial && w->dirty[i] && w->sib_lead[i] >= 0) /* its group's stacked pack too */
            w->src[NN_WPACK_SIB_WT][w->sib_lead[i]] = NULL;
        w->dirty[i] = 0;
    }
    w->gen = m->param_gen;
}

const float *nn_wpack_get(nn_model_t *m, int id, int kind, const conv2d_shape_t *s,
                          const float *W)
{
    if (!m->wpack) {
        if (id <= 0 || id >= m->n_nodes || kind == NN_WPACK_SIB_WT ||
            entry_floats(m, id, kind, NULL, NULL) == 0)
            return NULL; /* no cache built for a model whose convolutions never use it */
        if (wpack_create(m, &m->wpack) < 0)
            return NULL;
    }
    nn_wpack_t *w = m->wpack;
    if (id <= 0 || id >= w->n_nodes || w->off[kind][id] < 0)
        return NULL;
    wpack_refresh(w, m);
    float *packed = w->data + w->off[kind][id];
    if (w->src[kind][id] != W) {
        if (kind == NN_WPACK_SIB_WT)
            return NULL; /* filled by nn_wpack_sib_wt */
        if (kind == NN_WPACK_WT)
            conv_packed_pack_wt(s, W, packed);
        else if (conv_wino_transform(s, W, kind == NN_WPACK_WINO_BWD, packed) < 0)
            return NULL;
        w->src[kind][id] = W;
    }
    return packed;
}

const float *nn_wpack_wt(nn_model_t *m, int id, const conv2d_shape_t *s, const float *W)
{
    return nn_wpack_get(m, id, NN_WPACK_WT, s, W);
}

void nn_wpack_node_changed(nn_model_t *m, int id)
{
    nn_wpack_t *w = m->wpack;
    if (!w)
        return;
    /* the cache was current, or only marked nodes changed since */
    if (w->gen != m->param_gen && w->dirty_gen != m->param_gen)
        return; /* the next use drops every entry anyway */
    w->dirty[id] = 1;
    const nn_fuse_t *f = m->fuse;
    if (f && f->folded_into[id] >= 0) /* a folded BN or ReLU: its convolution's W' moves */
        w->dirty[f->folded_into[id]] = 1;
    w->dirty_gen = m->param_gen + 1;
}

const float *nn_wpack_sib_wt(nn_model_t *m, int n_mem, const int *ids, const float *const *W)
{
    if (!m->wpack && wpack_create(m, &m->wpack) < 0)
        return NULL;
    nn_wpack_t *w = m->wpack;
    const int lead = ids[0];
    if (n_mem < 2 || lead <= 0 || lead >= w->n_nodes || w->off[NN_WPACK_SIB_WT][lead] < 0)
        return NULL;
    wpack_refresh(w, m);
    float *packed = w->data + w->off[NN_WPACK_SIB_WT][lead];
    if (w->src[NN_WPACK_SIB_WT][lead] != W[0]) {
        int oc[NN_GEMM_MEMBERS];
        for (int q = 0; q < n_mem; q++)
            oc[q] = m->nodes[ids[q]].out_c;
        conv_packed_pack_sib_wt(m->nodes[m->nodes[lead].in[0]].c, n_mem, oc, W, packed);
        w->src[NN_WPACK_SIB_WT][lead] = W[0];
    }
    return packed;
}
