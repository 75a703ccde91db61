/*
 * model.c - graph construction, parameter slab, forward and backward (model.h).
 *
 * Owned by common/nn. Walks the graph and calls each node's op table entry
 * (nn/op.h); what an op computes lives in its file common/nn/ops/<op>.c.
 */
#include "nn/model.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nn/fuse.h"
#include "nn/wpack.h"
#include "nn/memplan.h"
#include "nn/op.h"
#include "nn/gemm.h"
#include "nn/posclass.h"
#include "rng.h"
#include "sc.h"

static const char *kind_names[NN_P_KINDS] = {"weight", "bias", "gamma", "beta",
                                             "running_mean", "running_var"};

const char *nn_param_kind_name(nn_param_kind k) { return k < NN_P_KINDS ? kind_names[k] : "?"; }
int nn_param_trainable(nn_param_kind k) { return k != NN_P_MEAN && k != NN_P_VAR; }

size_t nn_node_size(const nn_node_t *node) { return (size_t)node->c * node->h * node->w; }

nn_model_t *nn_model_create(int c, int h, int w)
{
    nn_model_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cap_nodes = 64;
    m->nodes = calloc((size_t)m->cap_nodes, sizeof *m->nodes);
    if (!m->nodes) {
        free(m);
        return NULL;
    }
    strcpy(m->cur_block, "input");
    strcpy(m->normalize, "unit");
    nn_node_t *in = &m->nodes[0];
    strcpy(in->name, "input");
    strcpy(in->block, "input");
    in->op = NN_INPUT;
    in->c = c;
    in->h = h;
    in->w = w;
    for (int k = 0; k < NN_P_KINDS; k++)
        in->p_off[k] = -1;
    m->n_nodes = 1;
    m->output = 0;
    return m;
}

static void free_runtime(nn_model_t *m)
{
    for (int i = 0; i < m->n_nodes; i++) {
        nn_node_t *nd = &m->nodes[i];
        sc_free(nd->argmax);
        sc_free(nd->bn_mean);
        sc_free(nd->bn_invstd);
        sc_free(nd->ln_stats);
        nd->ln_stats = NULL;
        nd->out = nd->grad = nd->bn_mean = nd->bn_invstd = NULL;
        nd->argmax = NULL;
        if (nd->pc_owned) {
            sc_free(nd->pc_rep);
            sc_free(nd->pc_dup);
        }
        nd->pc_rep = NULL;
        nd->pc_dup = NULL;
        nd->pc_owned = 0;
    }
    for (int b = 0; b < m->n_bufs; b++)
        sc_free(m->bufs[b]);
    free(m->bufs);
    m->bufs = NULL;
    m->n_bufs = 0;
    m->runtime_floats = 0;
    sc_free(m->pc_table);
    m->pc_table = NULL;
    sc_free(m->pc_same);
    m->pc_same = NULL;
    sc_free(m->workspace);
    sc_free(m->scratch);
    sc_free(m->onehot);
    m->workspace = NULL;
    m->scratch = NULL;
    m->onehot = NULL;
    m->max_batch = 0;
}

/* SALCHECK_NODE_PROFILE: where a model's passes spend their time, node by
 * node (the thread's CPU time around each node's forward and backward; in a
 * fused pass a convolution's time includes the BN and ReLU it computes). */
static const char *prof_file(void)
{
    static int read;
    static const char *path;
    if (!read) {
        path = getenv("SALCHECK_NODE_PROFILE");
        path = path && *path ? path : NULL;
        read = 1;
    }
    return path;
}

static double prof_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void prof_start(nn_model_t *m)
{
    if (!m->prof && prof_file())
        m->prof = calloc((size_t)m->n_nodes * 4, sizeof(double));
}

static void prof_add(nn_model_t *m, int id, int backward, double t0, int n)
{
    m->prof[4 * id + 2 * backward] += prof_now() - t0;
    m->prof[4 * id + 2 * backward + 1] += n;
}

/* One block per model: a comment line, then a line per node that ran:
 * id, name, op, output c h w, first input's c, kernel kh kw, stride sh sw,
 * groups, forward seconds, forward samples, backward seconds, backward
 * samples (tab-separated; bench/node_profile.py sums them up). The block is
 * built in memory and appended with one write, so that the ranks of a run
 * sharing the file do not interleave their lines. */
static void prof_write(const nn_model_t *m)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return;
    fprintf(f, "# model %s, %d nodes, input %dx%dx%d, process %ld\n", m->arch[0] ? m->arch : "-",
            m->n_nodes, m->nodes[0].c, m->nodes[0].h, m->nodes[0].w, (long)getpid());
    for (int i = 0; i < m->n_nodes; i++) {
        const nn_node_t *nd = &m->nodes[i];
        const double *p = m->prof + 4 * i;
        if (p[1] == 0 && p[3] == 0)
            continue;
        fprintf(f, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.6f\t%.0f\t%.6f\t%.0f\n", i,
                nd->name, nn_op_name(nd->op), nd->c, nd->h, nd->w,
                nd->n_in > 0 ? m->nodes[nd->in[0]].c : 0, nd->kh, nd->kw, nd->sh, nd->sw,
                nd->groups > 0 ? nd->groups : 1, p[0], p[1], p[2], p[3]);
    }
    if (fclose(f) != 0) {
        free(buf);
        return;
    }
    const int fd = open(prof_file(), O_WRONLY | O_APPEND | O_CREAT, 0644);
    size_t done = 0;
    while (fd >= 0 && done < len) {
        const ssize_t w = write(fd, buf + done, len - done);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    if (fd < 0 || done < len)
        SC_WARN("node profile: cannot append to %s", prof_file());
    if (fd >= 0)
        close(fd);
    free(buf);
}

void nn_model_destroy(nn_model_t *m)
{
    if (!m)
        return;
    if (m->prof)
        prof_write(m);
    free(m->prof);
    free_runtime(m);
    nn_fuse_destroy(m->fuse);
    nn_wpack_destroy(m->wpack);
    for (int i = 0; i < m->n_nodes; i++)
        free(m->nodes[i].in);
    free(m->nodes);
    sc_free(m->params);
    sc_free(m->grads);
    free(m);
}

void nn_set_block(nn_model_t *m, const char *block)
{
    snprintf(m->cur_block, sizeof m->cur_block, "%s", block);
}

int nn_find(const nn_model_t *m, const char *name)
{
    for (int i = 0; i < m->n_nodes; i++)
        if (!strcmp(m->nodes[i].name, name))
            return i;
    return -1;
}

static void copy_attrs(nn_node_t *nd, const nn_node_t *a)
{
    nd->out_c = a->out_c; nd->kh = a->kh; nd->kw = a->kw; nd->sh = a->sh; nd->sw = a->sw;
    nd->pt = a->pt; nd->pb = a->pb; nd->pl = a->pl; nd->pr = a->pr;
    nd->has_bias = a->has_bias;
    nd->ceil_mode = a->ceil_mode;
    nd->count_include_pad = a->count_include_pad;
    nd->eps = a->eps;
    nd->momentum = a->momentum;
    nd->bn_scale = a->bn_scale;
    nd->bn_center = a->bn_center;
    nd->init = a->init;
    nd->groups = a->groups;
    nd->ch_start = a->ch_start;
    nd->rank = a->rank;
    memcpy(nd->dims, a->dims, sizeof nd->dims);
    nd->axis = a->axis; nd->start = a->start; nd->end = a->end;
    memcpy(nd->perm, a->perm, sizeof nd->perm);
    nd->alpha = a->alpha;
}

int nn_add_node(nn_model_t *m, const char *name, nn_op op, int n_in, const int *in,
                const nn_node_t *attrs)
{
    const nn_op_def_t *def = nn_op_def(op);
    if (m->finalized) {
        SC_ERROR("model is finalized; cannot add node '%s'", name);
        return SC_ERR_ARG;
    }
    if (!def || op == NN_INPUT || n_in < 1) {
        SC_ERROR("node '%s': not a node kind that takes inputs, or no inputs", name);
        return SC_ERR_ARG;
    }
    if (strlen(name) >= NN_NAME_MAX || nn_find(m, name) >= 0) {
        SC_ERROR("node name '%s' is too long or already used", name);
        return SC_ERR_ARG;
    }
    for (int i = 0; i < n_in; i++) {
        if (in[i] < 0 || in[i] >= m->n_nodes) {
            SC_ERROR("node '%s': input %d is not an existing node", name, in[i]);
            return SC_ERR_ARG;
        }
    }
    if (m->n_nodes == m->cap_nodes) {
        nn_node_t *grown = realloc(m->nodes, sizeof *grown * (size_t)m->cap_nodes * 2);
        if (!grown)
            return SC_ERR_NOMEM;
        memset(grown + m->cap_nodes, 0, sizeof *grown * (size_t)m->cap_nodes);
        m->nodes = grown;
        m->cap_nodes *= 2;
    }
    nn_node_t *nd = &m->nodes[m->n_nodes];
    memset(nd, 0, sizeof *nd);
    nd->in = malloc(sizeof(int) * (size_t)n_in);
    if (!nd->in)
        return SC_ERR_NOMEM;
    memcpy(nd->in, in, sizeof(int) * (size_t)n_in);
    nd->n_in = n_in;
    snprintf(nd->name, sizeof nd->name, "%s", name);
    snprintf(nd->block, sizeof nd->block, "%s", m->cur_block);
    nd->op = op;
    for (int k = 0; k < NN_P_KINDS; k++)
        nd->p_off[k] = -1;
    if (attrs)
        copy_attrs(nd, attrs);
    const nn_node_t *src = &m->nodes[in[0]];
    nd->c = src->c;
    nd->h = src->h;
    nd->w = src->w;
    if (!nd->rank) { /* general shape from the attributes (reshape), else input 0's */
        nd->rank = src->rank;
        memcpy(nd->dims, src->dims, sizeof nd->dims);
    }
    int rc = def->infer ? def->infer(m, nd) : 0;
    if (rc < 0) {
        free(nd->in);
        nd->in = NULL;
        return rc;
    }
    if (nd->rank && (nd->h != 1 || nd->w != 1 || (size_t)nd->c != nn_dims_count(nd->rank, nd->dims)))
        nd->rank = 0; /* an op of the c x h x w view changed the shape */
    m->output = m->n_nodes;
    return m->n_nodes++;
}

void nn_resolve_pad(const int *pad, int same, int h, int w, int kh, int kw, int sh, int sw,
                    int *pt, int *pb, int *pl, int *pr)
{
    if (pad) {
        *pt = pad[0]; *pb = pad[1]; *pl = pad[2]; *pr = pad[3];
    } else if (same) {
        pad_same(h, kh, sh, pt, pb);
        pad_same(w, kw, sw, pl, pr);
    } else {
        *pt = *pb = *pl = *pr = 0;
    }
}

int nn_logits_node(const nn_model_t *m)
{
    int id = m->output;
    if (nn_op_def(m->nodes[id].op)->squashes_logits)
        id = m->nodes[id].in[0];
    return id;
}

/* ---- parameters ---- */

static void node_param_counts(const nn_model_t *m, const nn_node_t *nd, size_t count[NN_P_KINDS])
{
    const nn_op_def_t *def = nn_op_def(nd->op);
    for (int k = 0; k < NN_P_KINDS; k++) {
        size_t dims[4];
        int rank = def->param_shape ? def->param_shape(m, nd, (nn_param_kind)k, dims) : 0;
        count[k] = rank > 0 ? 1 : 0;
        for (int d = 0; d < rank; d++)
            count[k] *= dims[d];
    }
}

float *nn_param(nn_model_t *m, int id, nn_param_kind kind, size_t *count)
{
    const nn_node_t *nd = &m->nodes[id];
    if (count)
        *count = nd->p_off[kind] >= 0 ? nd->p_count[kind] : 0;
    return nd->p_off[kind] >= 0 ? m->params + nd->p_off[kind] : NULL;
}

float *nn_param_grad(nn_model_t *m, int id, nn_param_kind kind)
{
    const nn_node_t *nd = &m->nodes[id];
    return nd->p_off[kind] >= 0 && m->grads ? m->grads + nd->p_off[kind] : NULL;
}

void nn_init_weights(float *W, size_t count, nn_init kind, double fan_in, double fan_out,
                     rng_stream_t *rs)
{
    if (kind == NN_INIT_DEFAULT)
        kind = NN_INIT_GLOROT_UNIFORM;
    double limit = sqrt(6.0 / (fan_in + fan_out)), std = sqrt(2.0 / fan_in);
    for (size_t i = 0; i < count; i++) {
        switch (kind) {
        case NN_INIT_HE_NORMAL: W[i] = (float)(std * rng_stream_normal(rs)); break;
        case NN_INIT_ZEROS: W[i] = 0.0f; break;
        case NN_INIT_ONES: W[i] = 1.0f; break;
        default: W[i] = (float)(limit * (2.0 * rng_stream_uniform(rs) - 1.0)); break;
        }
    }
}

/* Initialize one node's parameters from (seed, node name): REFERENCE section 6. */
static void init_node(nn_model_t *m, int id, uint64_t seed, int keep_bn_stats)
{
    const nn_op_def_t *def = nn_op_def(m->nodes[id].op);
    if (!def->init)
        return;
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(seed, m->nodes[id].name), 0, 0, 0);
    def->init(m, id, &rs, keep_bn_stats);
}

/* The parameter slab and its layout; the initializers when init. */
static int model_finalize(nn_model_t *m, uint64_t seed, int init)
{
    int rc = 0;
    size_t total = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        nn_node_t *nd = &m->nodes[i];
        node_param_counts(m, nd, nd->p_count);
        for (int k = 0; k < NN_P_KINDS; k++) {
            nd->p_off[k] = nd->p_count[k] ? (ptrdiff_t)total : -1;
            total += (nd->p_count[k] + 15) & ~(size_t)15; /* 64-byte aligned tensors */
        }
    }
    m->n_params = total;
    m->params = sc_calloc(total, sizeof(float));
    CHECK_ALLOC(m->params);
    /* m->grads: allocated by nn_model_prepare in the training plan only */
    m->finalized = 1;
    m->param_gen++;
    if (m->num_classes == 0)
        m->num_classes = m->nodes[nn_logits_node(m)].c;
    for (int i = 0; init && i < m->n_nodes; i++)
        init_node(m, i, seed, 0);
cleanup:
    return rc;
}

int nn_model_finalize(nn_model_t *m, uint64_t seed)
{
    return model_finalize(m, seed, 1);
}

int nn_model_finalize_uninit(nn_model_t *m)
{
    return model_finalize(m, 0, 0);
}

int nn_model_reinit_block(nn_model_t *m, const char *block, uint64_t seed, int keep_bn_stats)
{
    int found = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        if (block && strcmp(m->nodes[i].block, block))
            continue;
        init_node(m, i, seed, keep_bn_stats);
        found = 1;
    }
    m->param_gen++;
    if (!found) {
        SC_ERROR("no block named '%s' in this model", block ? block : "(all)");
        return SC_ERR_ARG;
    }
    return 0;
}

size_t nn_count_trainable(const nn_model_t *m)
{
    size_t total = 0;
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < NN_P_KINDS; k++)
            if (nn_param_trainable((nn_param_kind)k) && m->nodes[i].p_off[k] >= 0)
                total += m->nodes[i].p_count[k];
    return total;
}

int nn_blocks(const nn_model_t *m, const char **names, int max)
{
    int count = 0;
    for (int i = 1; i < m->n_nodes; i++) {
        const char *b = m->nodes[i].block;
        int seen = 0;
        for (int j = 0; j < count; j++)
            if (!strcmp(names[j], b))
                seen = 1;
        if (!seen && count < max)
            names[count++] = b;
    }
    return count;
}

double nn_forward_flops(const nn_model_t *m)
{
    double flops = 0.0;
    for (int i = 1; i < m->n_nodes; i++) {
        const nn_op_def_t *def = nn_op_def(m->nodes[i].op);
        if (def->flops)
            flops += def->flops(m, &m->nodes[i]);
    }
    return flops;
}

/* ---- runtime ---- */

/* Position classes of node i for its n samples (after its forward), by the
 * rule its op declares; GEMM outputs take their class representative's value,
 * so equal receptive fields hold equal values whatever the GEMM kernel did
 * (the rule of nn/posclass.h). */
static void pc_forward(nn_model_t *m, int i, int n)
{
    nn_node_t *nd = &m->nodes[i];
    if (!nd->pc_owned)
        return;
    const nn_op_def_t *def = nn_op_def(nd->op);
    const int hw = nd->h * nd->w;
    for (int b = 0; b < n; b++) {
        int32_t *rep = nd->pc_rep + (size_t)b * hw;
        int dup = 0;
        const int same = def->pc == NN_PC_IMAGE ? b : m->pc_same[b];
        if (same != b) {
            /* an earlier sample's input has these classes: so has every map */
            dup = nd->pc_dup[same];
            if (dup)
                memcpy(rep, nd->pc_rep + (size_t)same * hw, sizeof(int32_t) * (size_t)hw);
        } else if (def->pc == NN_PC_IMAGE) {
            dup = posclass_input(nd->c, hw, nd->out + (size_t)b * nn_node_size(nd), rep,
                                 m->pc_table);
        } else if (def->pc == NN_PC_COMBINE) {
            /* Inputs broadcast from one position (a per-channel gate) are
             * equal at every position and leave the classes as they are. */
            int in_dup[nd->n_in], k_full = 0;
            const int32_t *in_rep[nd->n_in];
            for (int k = 0; k < nd->n_in; k++) {
                const nn_node_t *in = &m->nodes[nd->in[k]];
                if (in->h * in->w != hw)
                    continue;
                in_dup[k_full] = in->pc_rep ? in->pc_dup[b] : 0;
                in_rep[k_full++] = in->pc_rep ? in->pc_rep + (size_t)b * hw : NULL;
            }
            dup = posclass_combine(k_full, in_dup, in_rep, hw, rep, m->pc_table);
        } else { /* NN_PC_WINDOW */
            const nn_node_t *src = &m->nodes[nd->in[0]];
            const int in_dup = src->pc_rep ? src->pc_dup[b] : 0;
            const int32_t *in_rep = src->pc_rep ? src->pc_rep + (size_t)b * src->h * src->w : NULL;
            dup = posclass_window(in_dup, in_rep, src->h, src->w, nd->kh, nd->kw, nd->sh, nd->sw,
                                  nd->pt, nd->pl, nd->h, nd->w, rep, m->pc_table);
        }
        if (dup && def->pc_canonical && nn_fuse_pre_pool(m, i) < 0)
            posclass_apply(nn_fuse_dst(m, i) + (size_t)b * nn_node_size(nd), nd->c, hw, rep,
                           m->pc_table);
        nd->pc_dup[b] = (uint8_t)dup;
    }
    if (def->pc == NN_PC_IMAGE) /* the input: which samples share their classes */
        for (int b = 0; b < n; b++) {
            m->pc_same[b] = b;
            for (int e = 0; e < b; e++)
                if (m->pc_same[e] == e && nd->pc_dup[e] == nd->pc_dup[b] &&
                    (!nd->pc_dup[b] || !memcmp(nd->pc_rep + (size_t)e * hw,
                                               nd->pc_rep + (size_t)b * hw,
                                               sizeof(int32_t) * (size_t)hw))) {
                    m->pc_same[b] = e;
                    break;
                }
        }
}

int nn_model_prepare(nn_model_t *m, int max_batch)
{
    int rc = 0;
    if (!m->finalized || max_batch < 1)
        return SC_ERR_ARG;
    if (m->max_batch == max_batch)
        return 0;
    m->act_gen++; /* new buffers: no activation survives */
    free_runtime(m);
    if (m->plan_mode == NN_PLAN_TRAIN && !m->grads) {
        /* parameter gradients exist only where a plan can compute them */
        m->grads = sc_calloc(m->n_params, sizeof(float));
        CHECK_ALLOC(m->grads);
    }
    nn_memplan_t plan;
    CHECK_RC(nn_memplan_build(m, max_batch, (nn_plan_mode)m->plan_mode, &plan));
    m->bufs = calloc((size_t)(plan.n_bufs ? plan.n_bufs : 1), sizeof *m->bufs);
    if (!m->bufs) {
        nn_memplan_free(&plan);
        CHECK_ALLOC(m->bufs);
    }
    m->n_bufs = plan.n_bufs;
    for (int b = 0; b < plan.n_bufs; b++) {
        m->bufs[b] = nn_alloc_floats(plan.buf_floats[b]);
        if (!m->bufs[b]) {
            nn_memplan_free(&plan);
            CHECK_ALLOC(m->bufs[b]);
        }
    }
    for (int i = 0; i < m->n_nodes; i++) {
        m->nodes[i].cview = plan.out_buf[i] < 0; /* nn/concat_view.h */
        m->nodes[i].out = m->nodes[i].cview ? NULL : m->bufs[plan.out_buf[i]];
        m->nodes[i].grad = m->nodes[i].cview ? NULL : m->bufs[plan.grad_buf[i]];
        m->nodes[i].bn_relu = nn_bn_relu_pair(m, i);
        m->nodes[i].add_relu = nn_add_relu_pair(m, i);
        m->nodes[i].relu_fwd = 0;
    }
    for (int i = 0; i < m->n_nodes; i++) /* the add or BN computes the ReLU over its own output */
        if ((m->nodes[i].add_relu || m->nodes[i].bn_relu) &&
            m->nodes[m->nodes[i].in[0]].out == m->nodes[i].out)
            m->nodes[m->nodes[i].in[0]].relu_fwd = 1;
    m->runtime_floats = plan.total_floats;
    nn_memplan_free(&plan);
    size_t ws = 0, pc_hw = 0;
    int max_c = 1;
    for (int i = 0; i < m->n_nodes; i++) {
        nn_node_t *nd = &m->nodes[i];
        const nn_op_def_t *def = nn_op_def(nd->op);
        if (def->pc == NN_PC_IMAGE || def->pc == NN_PC_WINDOW || def->pc == NN_PC_COMBINE) {
            size_t hw = (size_t)nd->h * nd->w;
            /* calloc: large blocks come zeroed from the kernel, untouched until used */
            nd->pc_rep = calloc((size_t)max_batch * hw, sizeof(int32_t));
            nd->pc_dup = calloc((size_t)max_batch, 1);
            nd->pc_owned = 1;
            CHECK_ALLOC(nd->pc_rep);
            CHECK_ALLOC(nd->pc_dup);
            pc_hw = hw > pc_hw ? hw : pc_hw;
        } else if (def->pc == NN_PC_BORROW) {
            nd->pc_rep = m->nodes[nd->in[0]].pc_rep;
            nd->pc_dup = m->nodes[nd->in[0]].pc_dup;
        }
        if (nd->c > max_c)
            max_c = nd->c;
        if (def->workspace) {
            size_t need = def->workspace(m, nd);
            ws = need > ws ? need : ws;
        }
        if (def->prepare)
            CHECK_RC(def->prepare(m, nd, max_batch));
    }
    m->workspace = nn_alloc_floats(ws); /* scratch: every op writes before it reads */
    m->pc_table = sc_calloc(posclass_table_size(pc_hw), sizeof(int32_t));
    CHECK_ALLOC(m->pc_table);
    m->pc_same = sc_calloc((size_t)max_batch, sizeof(int32_t));
    CHECK_ALLOC(m->pc_same);
    for (int b = 0; b < max_batch; b++)
        m->pc_same[b] = b; /* nothing shared until an input pass says so */
    m->scratch = sc_calloc((size_t)max_c * 2, sizeof(double));
    CHECK_ALLOC(m->workspace);
    CHECK_ALLOC(m->scratch);
    m->onehot = sc_calloc((size_t)max_batch * nn_node_size(&m->nodes[nn_logits_node(m)]),
                          sizeof(float));
    CHECK_ALLOC(m->onehot);
    m->ws_floats = ws;
    m->max_batch = max_batch;
cleanup:
    if (rc < 0)
        free_runtime(m);
    return rc;
}

/* Re-plan the buffers of a prepared model for its batch size. */
static int replan(nn_model_t *m)
{
    const int batch = m->max_batch;
    if (batch < 1)
        return 0;
    m->max_batch = 0;
    return nn_model_prepare(m, batch);
}

int nn_model_set_plan(nn_model_t *m, nn_plan_mode mode)
{
    if (m->plan_mode == (int)mode)
        return 0;
    m->plan_mode = (int)mode;
    if (mode == NN_PLAN_INFER) { /* an inference plan computes no parameter gradient */
        sc_free(m->grads);
        m->grads = NULL;
    }
    return replan(m);
}

int nn_model_keep(nn_model_t *m, int id)
{
    if (id < 0 || id >= m->n_nodes)
        return SC_ERR_ARG;
    if (m->nodes[id].keep == NN_KEEP_ALL)
        return 0;
    m->nodes[id].keep = NN_KEEP_ALL;
    return replan(m);
}

int nn_model_keep_outputs(nn_model_t *m, const uint8_t *keep)
{
    int changed = 0;
    for (int i = 0; i < m->n_nodes; i++)
        if (keep[i] && !m->nodes[i].keep) {
            m->nodes[i].keep = NN_KEEP_OUT;
            changed = 1;
        }
    return changed ? replan(m) : 0;
}

int nn_model_keep_all(nn_model_t *m)
{
    int changed = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        changed |= m->nodes[i].keep != NN_KEEP_ALL;
        m->nodes[i].keep = NN_KEEP_ALL;
    }
    return changed ? replan(m) : 0;
}

/* One forward pass; fused: BN folded into convolutions (nn/fuse.h), the
 * BN and ReLU nodes a convolution computes are skipped. */
static int forward_pass(nn_model_t *m, const float *x, int n, int training, int fused, int from)
{
    if (n < 1 || n > m->max_batch) {
        SC_ERROR("forward: batch %d outside 1..%d (nn_model_prepare sets the maximum)", n,
                 m->max_batch);
        return SC_ERR_ARG;
    }
    m->batch = n;
    m->fused_pass = fused;
    m->act_gen++;
    if (training)
        m->param_gen++; /* the running statistics move */
    if (from < 1) {
        memcpy(m->nodes[0].out, x, sizeof(float) * n * nn_node_size(&m->nodes[0]));
        pc_forward(m, 0, n);
        from = 1;
    }
    prof_start(m);
    for (int i = from; i < m->n_nodes; i++) {
        if (fused && (nn_fuse_taken(m, i) >= 0 || nn_fuse_pre_taken(m, i) >= 0 ||
                      nn_fuse_gelu_taken(m, i) >= 0))
            continue;
        const nn_op_def_t *def = nn_op_def(m->nodes[i].op);
        nn_forward_fn fn = training && def->forward_train ? def->forward_train : def->forward;
        if (!fn)
            return SC_ERR_UNSUPPORTED;
        const double t0 = m->prof ? prof_now() : 0.0;
        int rc = fn(m, i, n);
        if (rc < 0)
            return rc;
        pc_forward(m, i, n);
        if (m->prof)
            prof_add(m, i, 0, t0, n);
    }
    return 0;
}

int nn_forward(nn_model_t *m, const float *x, int n, int training)
{
    return forward_pass(m, x, n, training, 0, 0);
}

int nn_forward_fused(nn_model_t *m, const float *x, int n)
{
    if (!m->fuse) {
        int rc = nn_fuse_create(m, &m->fuse);
        if (rc < 0)
            return rc;
    }
    nn_fuse_refresh(m->fuse, m);
    return forward_pass(m, x, n, 0, 1, 0);
}

int nn_fused_shows(nn_model_t *m, int id)
{
    if (!m->fuse && nn_fuse_create(m, &m->fuse) < 0)
        return 0;
    return !nn_fuse_hides(m, id);
}

int nn_forward_fused_from(nn_model_t *m, int from, int n)
{
    if (from < 1 || from >= m->n_nodes || !m->fuse || !m->fused_pass || m->batch != n) {
        SC_ERROR("forward from node %d: needs a fused pass of the same batch (%d) before it",
                 from, n);
        return SC_ERR_ARG;
    }
    nn_fuse_refresh(m->fuse, m);
    for (int i = from; i < m->n_nodes; i++) /* a chain is computed by its convolution */
        if (nn_fuse_taken(m, i) >= 0 && nn_fuse_taken(m, i) < from)
            from = nn_fuse_taken(m, i);
    return forward_pass(m, NULL, n, 0, 1, from);
}

int nn_forward_from(nn_model_t *m, int from, int n)
{
    if (from < 1 || from >= m->n_nodes || m->fused_pass || m->batch != n || m->max_batch < n) {
        SC_ERROR("forward from node %d: needs an unfused pass of the same batch (%d) before it",
                 from, n);
        return SC_ERR_ARG;
    }
    return forward_pass(m, NULL, n, 0, 0, from);
}

float *nn_grad_dst(nn_model_t *m, int id, int *assign)
{
    nn_node_t *nd = &m->nodes[id];
    *assign = !nd->grad_live;
    nd->grad_live = 1;
    return nd->grad;
}

float *nn_grad_acc(nn_model_t *m, int id)
{
    nn_node_t *nd = &m->nodes[id];
    if (!nd->grad_live) {
        memset(nd->grad, 0, sizeof(float) * (size_t)m->batch * nn_node_size(nd));
        nd->grad_live = 1;
    }
    return nd->grad;
}

/* Is node i the first member of a sibling group (nn/fuse.h) with a live
 * output gradient among its members? Its backward computes theirs. */
static int sib_grad_live(const nn_model_t *m, int i)
{
    int ids[NN_GEMM_MEMBERS];
    const int k = nn_fuse_sibs(m, i, ids);
    if (!k || ids[0] != i)
        return 0;
    for (int q = 0; q < k; q++) {
        const int g = m->fuse->bn_of[ids[q]] >= 0 ? m->fuse->bn_of[ids[q]] : ids[q];
        if (m->nodes[g].grad_live)
            return 1;
    }
    return 0;
}

int nn_backward(nn_model_t *m, int from, const float *dy, float *dx, const nn_backward_opts_t *o)
{
    const int n = m->batch;
    if (from < 1 || from >= m->n_nodes || n < 1 || m->nodes[from].cview)
        return SC_ERR_ARG;
    if (m->plan_mode == NN_PLAN_INFER && (o->param_grads || o->training)) {
        SC_ERROR("backward: parameter gradients or training mode on a model planned for "
                 "inference (nn_model_set_plan(NN_PLAN_TRAIN) first)");
        return SC_ERR_ARG;
    }
    for (int i = 0; i < m->n_nodes; i++)
        m->nodes[i].grad_live = 0;
    prof_start(m);
    int fresh;
    memcpy(nn_grad_dst(m, from, &fresh), dy, sizeof(float) * n * nn_node_size(&m->nodes[from]));
    const nn_fuse_t *fuse = m->fused_pass ? m->fuse : NULL;
    if (fuse && (o->param_grads || o->training)) {
        SC_ERROR("backward: parameter gradients need nn_forward, not nn_forward_fused");
        return SC_ERR_ARG;
    }
    if (o->down_to < 0 || o->down_to >= from || (o->down_to > 0 && o->input_grad)) {
        SC_ERROR("backward: stop node %d outside 1..%d, or with an input gradient", o->down_to,
                 from - 1);
        return SC_ERR_ARG;
    }
    if (fuse && nn_fuse_hides(m, from)) {
        SC_ERROR("backward: node '%s' was folded by nn_forward_fused; use nn_forward",
                 m->nodes[from].name);
        return SC_ERR_ARG;
    }
    for (int i = from; i >= 1 && i > o->down_to; i--) {
        /* after a fused forward a folded BN is skipped: its convolution takes
         * the BN's upstream gradient with the folded weights */
        if (fuse && m->nodes[i].op == NN_BN && fuse->folded_into[i] >= 0)
            continue;
        int gsrc = fuse && fuse->bn_of[i] >= 0 ? fuse->bn_of[i] : i;
        /* a prologue's pool applied first: its convolution reads the pool's gradient */
        if (fuse && nn_fuse_pre_pool(m, i) >= 0 && o->down_to < nn_fuse_pre(m, i))
            gsrc = nn_fuse_pre_pool(m, i);
        if (!m->nodes[gsrc].grad_live && !(fuse && sib_grad_live(m, i)))
            continue;
        const nn_op_def_t *def = nn_op_def(m->nodes[i].op);
        nn_backward_fn fn = def->backward;
        if (o->training && def->backward_train)
            fn = def->backward_train;
        else if (o->guided_relu && def->backward_guided)
            fn = def->backward_guided;
        if (!fn)
            return SC_ERR_UNSUPPORTED;
        const double t0 = m->prof ? prof_now() : 0.0;
        int rc = fn(m, i, n, o);
        if (rc < 0)
            return rc;
        if (m->prof)
            prof_add(m, i, 1, t0, n);
    }
    if (o->input_grad && dx) {
        size_t sz = (size_t)n * nn_node_size(&m->nodes[0]);
        if (m->nodes[0].grad_live)
            memcpy(dx, m->nodes[0].grad, sizeof(float) * sz);
        else
            memset(dx, 0, sizeof(float) * sz);
    }
    return 0;
}

int nn_backward_logit(nn_model_t *m, const int *target, float *dx, const nn_backward_opts_t *o)
{
    int id = nn_logits_node(m);
    size_t classes = nn_node_size(&m->nodes[id]);
    memset(m->onehot, 0, sizeof(float) * (size_t)m->batch * classes);
    for (int b = 0; b < m->batch; b++) {
        int t = target[b];
        if (t < 0 || (size_t)t >= classes) {
            SC_ERROR("target class %d outside 0..%zu", t, classes - 1);
            return SC_ERR_ARG;
        }
        m->onehot[b * classes + t] = 1.0f;
    }
    return nn_backward(m, id, m->onehot, dx, o);
}
