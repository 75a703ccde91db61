/*
 * sal_budget.c - the batch size of the saliency workspaces from a per-rank
 * memory budget (`[job] memory_per_rank`), and the memory those workspaces
 * hold (saliency.h).
 *
 * Owned by workers/saliency. The model's buffers come from its memory plan
 * (nn_model_runtime_bytes, inference plan, as sal_ws_create prepares it); the
 * workspace adds its batch copies of the input and gradient and per-image
 * arrays. `salcheck run` and `salcheck run --plan` both choose the batch and
 * report the memory with these functions. LRP and DeepLIFT read every node's
 * activation after the pass: a run that lists them keeps every node's buffers
 * (sal_budget_method, before the budget is computed) and holds their walk
 * workspace (rp_ws_bytes), and both are counted. With cascade reuse, one
 * randomization's states run in lockstep per rank, each in a workspace of its
 * own (sal_cascade_bytes): the largest such item is counted too. What a
 * method holds once per model whatever the batch (Expected Gradients' pool)
 * comes from sal_method_fixed_bytes, which the run adds to its resident size.
 * Every model's workspace lives from the start of a run to its end, but a
 * method touches the batch's pages only as far as it fills them: `--plan`
 * counts the workspaces at sal_methods_inputs (each method's inputs per engine
 * call, the method table's inputs()); the budget keeps counting the whole batch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/fuse.h"
#include "nn/wpack.h"
#include "saliency/relprop.h"
#include "saliency/sal_cascade.h"
#include "saliency/saliency.h"
#include "saliency/xrai.h"
#include "sc.h"

/* 1 when every node of m keeps its buffers (nn_model_keep_all). */
static int keeps_all(const nn_model_t *m)
{
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i].keep != NN_KEEP_ALL)
            return 0;
    return 1;
}

int sal_method_keeps_all(const char *name)
{
    if (!strncmp(name, "smprt-", 6))
        name += 6;
    return !strcmp(name, "lrp") || !strcmp(name, "deeplift");
}

int sal_budget_method(nn_model_t *const *models, int n_models, const char *method)
{
    if (!sal_method_keeps_all(method))
        return 0;
    for (int j = 0; j < n_models; j++) {
        int rc = nn_model_keep_all(models[j]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

size_t sal_ws_bytes(const nn_model_t *m, int batch)
{
    size_t runtime = nn_model_runtime_bytes(m, batch, NN_PLAN_INFER);
    if (!runtime)
        return 0;
    const size_t chw = nn_node_size(&m->nodes[0]);
    const size_t hw = (size_t)m->nodes[0].h * m->nodes[0].w;
    size_t act_cap = 0, cam_cap = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        const size_t size = nn_node_size(&m->nodes[i]);
        const size_t plane = (size_t)m->nodes[i].h * m->nodes[i].w;
        act_cap = size > act_cap ? size : act_cap;
        cam_cap = plane > cam_cap ? plane : cam_cap;
    }
    /* xb, gb per batch input; acc, acc2, xn, base, map_a, map_b, avgmask per
     * image; accd in double; planes, counts; the Score-CAM activation copy;
     * the one-hot targets. The Expected Gradients pool only exists when a run
     * lists eg: sal_method_fixed_bytes. */
    size_t floats = 2 * (size_t)batch * chw + 7 * chw + 2 * chw + 4 * hw + cam_cap + act_cap;
    /* a kept-all model runs LRP or DeepLIFT: their walk workspace (batch 1) */
    const size_t walk = keeps_all(m) ? rp_ws_bytes(m) : 0;
    /* the folded convolutions of the fused passes (nn/fuse.h) and the packed W^T of the
     * input gradients (nn/wpack.h) */
    return runtime + nn_fuse_bytes(m) + nn_wpack_bytes(m) + walk + floats * sizeof(float) +
           (size_t)m->num_classes * batch * sizeof(float);
}

size_t sal_method_fixed_bytes(const nn_model_t *m, const char *method, const sal_params_t *p)
{
    if (!strncmp(method, "smprt-", 6)) /* sMPRT's maps are the method's own */
        method += 6;
    /* the run loads the pool into the model's workspace when a method needs it (one copy
     * per model, which the cascade's states borrow) */
    const sal_method_t *me = sal_method_find(method);
    if (me && me->needs_pool && p->eg_pool >= 1)
        return (size_t)p->eg_pool * nn_node_size(&m->nodes[0]) * sizeof(float);
    /* XRAI's segmentation workspace, created at the workspace's first XRAI map */
    if (!strcmp(method, "xrai"))
        return xrai_ws_bytes(m->nodes[0].h, m->nodes[0].w, m->nodes[0].c, &p->xrai);
    return 0;
}

int sal_inputs_one(const sal_params_t *p) { return 1; }
int sal_inputs_none(const sal_params_t *p) { return 0; }

int sal_methods_inputs(const sal_method_t *const *methods, int n, const sal_params_t *p,
                       int batch)
{
    int most = 1; /* the target's forward pass */
    for (int k = 0; k < n; k++) {
        const int in = methods[k]->inputs ? methods[k]->inputs(p) : batch;
        most = in > most ? in : most;
    }
    return most < batch ? most : batch;
}

int sal_methods_need_pool(const sal_method_t *const *methods, int n)
{
    for (int k = 0; k < n; k++)
        if (methods[k] && methods[k]->needs_pool)
            return 1;
    return 0;
}

/* What the n models' workspaces hold at `batch`, with the largest cascade item's states
 * (cascade_states[j] states of model j's randomization run in lockstep; one item at a time
 * per rank) when cascade_states is not NULL. */
static size_t need_bytes(nn_model_t *const *models, int n_models, const int *cascade_states,
                         int batch)
{
    size_t need = 0, cascade = 0;
    for (int j = 0; j < n_models; j++) {
        need += sal_ws_bytes(models[j], batch);
        if (cascade_states && cascade_states[j] > 1) {
            const size_t c = sal_cascade_bytes(models[j], batch, cascade_states[j]);
            cascade = c > cascade ? c : cascade;
        }
    }
    return need + cascade;
}

static int fit_batch(nn_model_t *const *models, int n_models, const int *cascade_states,
                     size_t budget_bytes, int max_batch)
{
    int lo = 0, hi = max_batch; /* the largest batch in 0..max_batch that fits */
    while (lo < hi) {
        const int mid = lo + (hi - lo + 1) / 2;
        if (need_bytes(models, n_models, cascade_states, mid) <= budget_bytes)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

int sal_batch_for_budget(nn_model_t *const *models, int n_models, size_t budget_bytes,
                         int max_batch)
{
    return fit_batch(models, n_models, NULL, budget_bytes, max_batch);
}

int sal_suggest_batch(const nn_model_t *m, size_t budget_bytes, int max_batch)
{
    nn_model_t *const list[1] = {(nn_model_t *)m};
    const int fit = sal_batch_for_budget(list, 1, budget_bytes, max_batch);
    return fit > 0 ? fit : 1;
}

double sal_status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0.0;
    const size_t len = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, len) && line[len] == ':')
            kb = atof(line + len + 1);
    if (f)
        fclose(f);
    return kb * 1024.0;
}

double sal_resident_bytes(void)
{
    return sal_status_bytes("VmRSS");
}

double sal_reserve_bytes(double budget_bytes)
{
    /* the BLAS library's packing buffers and the per-image arrays of the run (maps,
     * metrics, the image cache) */
    return 16.0 * 1048576.0 + 0.02 * (budget_bytes > 0 ? budget_bytes : 0.0);
}

int sal_batch_for_memory(nn_model_t *const *models, int n_models, double budget_bytes,
                         double resident_bytes, int max_batch, const char *what, int *batch)
{
    return sal_batch_for_memory_cascade(models, n_models, NULL, budget_bytes, resident_bytes,
                                        max_batch, what, batch);
}

int sal_batch_for_memory_cascade(nn_model_t *const *models, int n_models,
                                 const int *cascade_states, double budget_bytes,
                                 double resident_bytes, int max_batch, const char *what,
                                 int *batch)
{
    const double reserve = sal_reserve_bytes(budget_bytes);
    const double avail = budget_bytes - resident_bytes - reserve;
    *batch = avail > 0 ? fit_batch(models, n_models, cascade_states, (size_t)avail, max_batch)
                       : 0;
    if (*batch >= 1)
        return 0;
    const size_t one = need_bytes(models, n_models, cascade_states, 1);
    SC_ERROR("%s: memory_per_rank = %.0f MB is too small: even batch 1 needs %.0f MB per rank "
             "(the models, data and plan already hold %.0f MB, the %d model workspace%s%s %.0f MB "
             "at batch 1, and %.0f MB are kept in reserve)",
             what, budget_bytes / 1048576.0,
             (resident_bytes + reserve + (double)one) / 1048576.0, resident_bytes / 1048576.0,
             n_models, n_models > 1 ? "s" : "",
             cascade_states ? " with a randomization's states in lockstep" : "",
             (double)one / 1048576.0, reserve / 1048576.0);
    return SC_ERR_ARG;
}
