/*
 * sal_cascade.c - cascading randomization states computed in lockstep, the
 * layers below the re-initialized blocks once per input batch (sal_cascade.h).
 *
 * Owned by workers/saliency. The coordinator (the caller of sal_cascade_run)
 * and one thread per state pass a baton: `turn` names the one that may run
 * (-1: the coordinator). A state's thread gives the baton back when it
 * reaches an engine batch (sal_cascade_batch) or finishes; the coordinator
 * then resumes the next ready state, or, when none is ready, computes every
 * waiting batch (compute_waiting) and marks them ready again.
 */
#include "saliency/sal_cascade.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nn/fuse.h"
#include "nn/memplan.h"
#include "nn/wpack.h"
#include "sc.h"

typedef enum task_status { TASK_READY = 0, TASK_WAITING, TASK_DONE } task_status_t;

typedef struct task {
    pthread_t thread;
    int started;
    int state;
    task_status_t status;
    int rc;                  /* the state's return when done; the batch's rc when answered */
    int n, guided, logits;   /* the waiting batch */
    struct sal_cascade *cs;
} task_t;

struct sal_cascade {
    nn_model_t *m;
    int n_states;
    const float *base;       /* the caller's */
    float *randomized;
    uint8_t *random_node;    /* [n_states * n_nodes] */
    int *first;              /* [n_states] first re-initialized node */
    uint8_t *cur;            /* [n_nodes] node holds randomized values now */
    int cur_state;           /* -1: mixed or unknown */
    sal_ws_t **ws;           /* [n_states] */
    /* the run in progress */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int turn;
    task_t *tasks;
    int n_tasks, reuse;
    sal_cascade_fn fn;
    void *ctx;
    long n_reused, n_total;
    /* the state whose workspace made the last single-input forward (sal_cascade_forward;
     * its input and the model's act_gen after it are in that workspace), or -1 */
    int last_state;
    long n_fwd_reused, n_fwd_total;
    /* XRAI's segmentation of the image, the same for every state (sal_cascade_xrai) */
    xrai_ws_t *xrai;
    xrai_params_t xrai_params;
    float *xrai_image;       /* [chw] the image its masks are of */
    int xrai_ready;
    long n_seg, n_seg_used;
};

void sal_cascade_destroy(sal_cascade_t *cs)
{
    if (!cs)
        return;
    if (cs->ws)
        for (int k = 0; k < cs->n_states; k++)
            sal_ws_destroy(cs->ws[k]);
    free(cs->ws);
    sc_free(cs->randomized);
    free(cs->random_node);
    free(cs->first);
    free(cs->cur);
    xrai_ws_destroy(cs->xrai);
    free(cs->xrai_image);
    pthread_mutex_destroy(&cs->mu);
    pthread_cond_destroy(&cs->cv);
    free(cs);
}

int sal_cascade_create(sal_cascade_t **out, nn_model_t *m, int batch, const char *normalize,
                       const float *base, const float *randomized, int n_states,
                       const uint8_t *random_node)
{
    int rc = 0;
    *out = NULL;
    CHECK(m && m->finalized && n_states >= 1, SC_ERR_ARG, "cascade: no model or no state");
    const int N = m->n_nodes;
    sal_cascade_t *cs = calloc(1, sizeof *cs);
    CHECK_ALLOC(cs);
    pthread_mutex_init(&cs->mu, NULL);
    pthread_cond_init(&cs->cv, NULL);
    cs->m = m;
    cs->n_states = n_states;
    cs->cur_state = -1;
    cs->last_state = -1;
    cs->base = base;
    cs->randomized = sc_calloc(m->n_params, sizeof(float));
    cs->random_node = malloc((size_t)n_states * N);
    cs->first = malloc(sizeof(int) * (size_t)n_states);
    cs->cur = malloc((size_t)N);
    cs->ws = calloc((size_t)n_states, sizeof *cs->ws);
    cs->xrai_image = malloc(sizeof(float) * nn_node_size(&m->nodes[0]));
    if (!cs->randomized || !cs->random_node || !cs->first || !cs->cur || !cs->ws ||
        !cs->xrai_image) {
        sal_cascade_destroy(cs);
        CHECK_ALLOC(NULL);
    }
    memcpy(cs->randomized, randomized, sizeof(float) * m->n_params);
    memcpy(cs->random_node, random_node, (size_t)n_states * N);
    memset(cs->cur, 2, (size_t)N); /* unknown: the first switch copies every node */
    for (int k = 0; k < n_states; k++) {
        cs->first[k] = N;
        for (int i = N - 1; i >= 0; i--)
            if (random_node[(size_t)k * N + i])
                cs->first[k] = i;
    }
    for (int k = 0; k < n_states && rc >= 0; k++) {
        rc = sal_ws_create(&cs->ws[k], m, batch, normalize);
        if (rc >= 0) {
            cs->ws[k]->cascade = cs;
            cs->ws[k]->cascade_slot = -1; /* not running under sal_cascade_run */
        }
    }
    /* Keep the outputs below each state's first re-initialized node that nodes from it on
     * read: the next state's forward starts there and reads them (nn_forward_fused_from).
     * Their gradients are planned as any other's: the backward runs in full every time. */
    if (rc >= 0) {
        uint8_t *keep = malloc((size_t)N);
        rc = keep ? 0 : SC_ERR_NOMEM;
        if (keep) {
            sal_cascade_keeps(m, n_states, random_node, keep);
            rc = nn_model_keep_outputs(m, keep);
        }
        free(keep);
    }
    if (rc < 0) {
        sal_cascade_destroy(cs);
        return rc;
    }
    *out = cs;
cleanup:
    return rc;
}

sal_ws_t *sal_cascade_ws(sal_cascade_t *cs, int k) { return cs->ws[k]; }

int sal_cascade_first_node(const sal_cascade_t *cs, int k) { return cs->first[k]; }

void sal_cascade_counts(const sal_cascade_t *cs, long *reused, long *total)
{
    *reused = cs->n_reused;
    *total = cs->n_total;
}

void sal_cascade_forward_counts(const sal_cascade_t *cs, long *reused, long *total)
{
    *reused = cs->n_fwd_reused;
    *total = cs->n_fwd_total;
}

void sal_cascade_keeps(const nn_model_t *m, int n_states, const uint8_t *random_node,
                       uint8_t *keep)
{
    const int N = m->n_nodes;
    memset(keep, 0, (size_t)N);
    for (int k = 0; k < n_states; k++) {
        int s = N;
        for (int i = N - 1; i >= 0; i--)
            if (random_node[(size_t)k * N + i])
                s = i;
        for (int j = s; j < N; j++)
            for (int q = 0; q < m->nodes[j].n_in; q++)
                if (m->nodes[j].in[q] < s)
                    keep[m->nodes[j].in[q]] = 1;
    }
}

size_t sal_cascade_bytes(const nn_model_t *m, int batch, int n_states)
{
    const size_t whole = sal_ws_bytes(m, batch);
    const size_t runtime = nn_model_runtime_bytes(m, batch, NN_PLAN_INFER);
    if (!whole || whole < runtime)
        return 0;
    /* a state's workspace without the model's buffers and folded convolutions (the states
     * borrow the Expected Gradients pool from the model's own workspace:
     * sal_method_fixed_bytes) */
    const size_t fused = nn_fuse_bytes(m) + nn_wpack_bytes(m); /* and the packed W^T (nn/wpack.h) */
    const size_t own = whole - runtime > fused ? whole - runtime - fused : 0;
    return (size_t)n_states * own + m->n_params * sizeof(float);
}

void sal_cascade_use(sal_cascade_t *cs, int k)
{
    if (cs->cur_state == k)
        return;
    nn_model_t *m = cs->m;
    const uint8_t *want = cs->random_node + (size_t)k * m->n_nodes;
    /* the first switch after sal_cascade_run started: every tensor copied, every chain
     * refolded; later ones refold only the chains of the nodes they copy (nn/fuse.h) */
    const int all = cs->cur_state < 0;
    int changed = 0;
    for (int i = 0; i < m->n_nodes; i++) {
        if (cs->cur[i] == want[i])
            continue;
        const float *src = want[i] ? cs->randomized : cs->base;
        const nn_node_t *nd = &m->nodes[i];
        int copied = 0;
        for (int p = 0; p < NN_P_KINDS; p++)
            if (nd->p_off[p] >= 0) {
                memcpy(m->params + nd->p_off[p], src + nd->p_off[p],
                       sizeof(float) * nd->p_count[p]);
                copied = 1;
            }
        cs->cur[i] = want[i];
        changed = 1;
        if (!all && copied)
            nn_model_node_params_changed(m, i);
    }
    if (changed && all)
        nn_model_params_changed(m);
    cs->cur_state = k;
}

/* ---- the states' side ---- */

/* Give the baton to the coordinator and wait until it is ours again. Holds cs->mu. */
static void yield_locked(sal_cascade_t *cs, int slot)
{
    cs->turn = -1;
    pthread_cond_broadcast(&cs->cv);
    while (cs->turn != slot)
        pthread_cond_wait(&cs->cv, &cs->mu);
}

static void *task_main(void *arg)
{
    task_t *t = arg;
    sal_cascade_t *cs = t->cs;
    const int slot = (int)(t - cs->tasks);
    pthread_mutex_lock(&cs->mu);
    while (cs->turn != slot)
        pthread_cond_wait(&cs->cv, &cs->mu);
    pthread_mutex_unlock(&cs->mu);
    int rc = cs->fn(cs->ctx, t->state, cs->ws[t->state]);
    pthread_mutex_lock(&cs->mu);
    t->rc = rc;
    t->status = TASK_DONE;
    cs->turn = -1;
    pthread_cond_broadcast(&cs->cv);
    pthread_mutex_unlock(&cs->mu);
    return NULL;
}

/* The model's last pass was ws's single-input forward of x of this kind, and
 * nothing moved the activations since (a later backward does not: the
 * outputs a backward reads live to its end, memplan.c). */
static int same_pass(const sal_ws_t *ws, const nn_model_t *m, const float *x, int fused)
{
    return ws->fwd_valid && m->act_gen == ws->fwd_gen && m->fused_pass == fused && m->batch == 1 &&
           !memcmp(ws->fwd_x, x, sizeof(float) * ws->chw);
}

static void note_pass(sal_ws_t *ws, const nn_model_t *m, const float *x, int fused, int rc)
{
    ws->fwd_valid = rc >= 0;
    ws->fwd_gen = m->act_gen;
    ws->fwd_params = m->param_gen;
    if (ws->fwd_x != x)
        memcpy(ws->fwd_x, x, sizeof(float) * ws->chw);
}

int sal_cascade_forward(sal_ws_t *ws, const float *x, int fused)
{
    nn_model_t *m = ws->model;
    sal_cascade_t *cs = ws->cascade;
    if (!cs || ws->cascade_slot < 0) {
        if (same_pass(ws, m, x, fused) && m->param_gen == ws->fwd_params)
            return 0; /* the target's forward, again for the map */
        const int rc = fused ? nn_forward_fused(m, x, 1) : nn_forward(m, x, 1, 0);
        note_pass(ws, m, x, fused, rc);
        if (cs) /* a state's workspace outside a run: whatever parameters the model held */
            cs->last_state = -1;
        return rc;
    }
    /* the baton holder's parameters are in the model (resume switched them in) */
    const int N = m->n_nodes, state = cs->tasks[ws->cascade_slot].state, s = cs->first[state];
    cs->n_fwd_total++;
    /* this state's own last pass: its parameters were switched out and back in at most */
    if (cs->reuse && cs->last_state == state && same_pass(ws, m, x, fused)) {
        cs->n_fwd_reused++;
        return 0;
    }
    /* the last pass was one of these, on the same input, with the trained parameters up to
     * at least this state's first re-initialized node, and nothing moved the activations
     * since (another pass, a re-plan): the nodes below s hold this state's values */
    const int below = cs->last_state >= 0 ? cs->first[cs->last_state] : -1;
    const sal_ws_t *last = cs->last_state >= 0 ? cs->ws[cs->last_state] : NULL;
    const int from =
        cs->reuse && last && below >= s && same_pass(last, m, x, fused) ? (s < N ? s : N - 1) : 0;
    int rc;
    if (fused)
        rc = from > 0 ? nn_forward_fused_from(m, from, 1) : nn_forward_fused(m, x, 1);
    else
        rc = from > 0 ? nn_forward_from(m, from, 1) : nn_forward(m, x, 1, 0);
    cs->n_fwd_reused += from > 0;
    cs->last_state = rc < 0 ? -1 : state;
    note_pass(ws, m, x, fused, rc);
    return rc;
}

void sal_cascade_xrai_counts(const sal_cascade_t *cs, long *segmented, long *used)
{
    *segmented = cs->n_seg;
    *used = cs->n_seg_used;
}

int sal_cascade_xrai(sal_ws_t *ws, const xrai_params_t *p, const float *image, xrai_ws_t **out)
{
    int rc = 0;
    sal_cascade_t *cs = ws->cascade;
    const size_t n = (size_t)ws->hw * ws->c;
    *out = NULL;
    if (!cs->xrai || memcmp(&cs->xrai_params, p, sizeof *p)) {
        xrai_ws_destroy(cs->xrai);
        cs->xrai = NULL;
        cs->xrai_ready = 0;
        CHECK_RC(xrai_ws_create(&cs->xrai, ws->h, ws->w, ws->c, p));
        cs->xrai_params = *p;
    }
    if (!cs->reuse || !cs->xrai_ready || memcmp(cs->xrai_image, image, sizeof(float) * n)) {
        cs->xrai_ready = 0;
        cs->n_seg++;
        rc = xrai_compute_masks(cs->xrai, image);
        if (rc < 0)
            return rc; /* SC_ERR_UNDEFINED for a constant image, as xrai_map says */
        memcpy(cs->xrai_image, image, sizeof(float) * n);
        cs->xrai_ready = 1;
    }
    cs->n_seg_used++;
    *out = cs->xrai;
cleanup:
    return rc;
}

int sal_cascade_batch(sal_ws_t *ws, int n, int guided, int logits)
{
    sal_cascade_t *cs = ws->cascade;
    const int slot = ws->cascade_slot;
    task_t *t = &cs->tasks[slot];
    pthread_mutex_lock(&cs->mu);
    t->n = n;
    t->guided = guided;
    t->logits = logits;
    t->status = TASK_WAITING;
    yield_locked(cs, slot);
    int rc = t->rc;
    pthread_mutex_unlock(&cs->mu);
    return rc;
}

/* ---- the coordinator's side ---- */

/* Resume task `slot` with its state's parameters; returns when it yields or finishes. */
static void resume(sal_cascade_t *cs, int slot)
{
    sal_cascade_use(cs, cs->tasks[slot].state);
    pthread_mutex_lock(&cs->mu);
    cs->turn = slot;
    pthread_cond_broadcast(&cs->cv);
    while (cs->turn != -1)
        pthread_cond_wait(&cs->cv, &cs->mu);
    pthread_mutex_unlock(&cs->mu);
}

/* The batch of a waiting task: forward (from node `from` when > 0), then its
 * input gradients or logits into its workspace's gb. */
static int compute_batch(sal_cascade_t *cs, task_t *t, int from)
{
    nn_model_t *m = cs->m;
    sal_ws_t *ws = cs->ws[t->state];
    sal_cascade_use(cs, t->state);
    int rc = from > 0 ? nn_forward_fused_from(m, from, t->n) : nn_forward_fused(m, ws->xb, t->n);
    if (rc < 0)
        return rc;
    if (t->logits) {
        memcpy(ws->gb, nn_node_out(m, ws->logits_id), sizeof(float) * t->n * ws->classes);
        return 0;
    }
    nn_backward_opts_t o = {.guided_relu = t->guided, .input_grad = 1};
    return nn_backward_logit(m, ws->targets, ws->gb, &o);
}

/* Every waiting batch, from the least to the most randomized state (the first
 * re-initialized node moving down): a batch whose inputs equal those of the
 * batch computed just before starts at its state's first re-initialized node. */
static void compute_waiting(sal_cascade_t *cs, const int *order)
{
    const task_t *prev = NULL;
    for (int q = 0; q < cs->n_tasks; q++) {
        task_t *t = &cs->tasks[order[q]];
        if (t->status != TASK_WAITING)
            continue;
        int from = 0;
        const int s = cs->first[t->state];
        if (cs->reuse && prev && prev->n == t->n && cs->first[prev->state] >= s &&
            !memcmp(cs->ws[prev->state]->xb, cs->ws[t->state]->xb,
                    sizeof(float) * (size_t)t->n * cs->ws[t->state]->chw))
            from = s < cs->m->n_nodes ? s : cs->m->n_nodes - 1;
        t->rc = compute_batch(cs, t, from);
        cs->n_total++;
        cs->n_reused += from > 0;
        prev = t->rc < 0 ? NULL : t;
        t->status = TASK_READY;
    }
}

int sal_cascade_run(sal_cascade_t *cs, const int *states, int n, int reuse, sal_cascade_fn fn,
                    void *ctx, int *rcs)
{
    int rc = 0;
    task_t *tasks = calloc((size_t)(n > 0 ? n : 1), sizeof *tasks);
    int *order = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    CHECK_ALLOC(tasks);
    CHECK_ALLOC(order);
    cs->tasks = tasks;
    cs->n_tasks = n;
    /* the model's parameters may have been written since (another variant): copy every node */
    memset(cs->cur, 2, (size_t)cs->m->n_nodes);
    cs->cur_state = -1;
    cs->last_state = -1; /* no single-input forward of this run yet */
    cs->reuse = reuse;
    cs->fn = fn;
    cs->ctx = ctx;
    cs->turn = -1;
    /* compute order: the first re-initialized node descending (least randomized first) */
    for (int q = 0; q < n; q++)
        order[q] = q;
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0; b--) {
            const int x = order[b - 1], y = order[b];
            const int fx = cs->first[states[x]], fy = cs->first[states[y]];
            if (fx > fy || (fx == fy && states[x] < states[y]))
                break;
            order[b - 1] = y;
            order[b] = x;
        }
    for (int q = 0; q < n; q++) {
        tasks[q].state = states[q];
        tasks[q].cs = cs;
        tasks[q].status = TASK_READY;
        cs->ws[states[q]]->cascade_slot = q;
    }
    for (int q = 0; q < n; q++) {
        if (pthread_create(&tasks[q].thread, NULL, task_main, &tasks[q]) != 0) {
            SC_ERROR("cascade: cannot start a thread for state %d", states[q]);
            tasks[q].status = TASK_DONE;
            tasks[q].rc = SC_ERR_NOMEM;
            rc = SC_ERR_NOMEM;
            continue;
        }
        tasks[q].started = 1;
    }
    for (;;) {
        /* resume the ready states from the least randomized up, as the batches are
         * computed: a single-input forward (a target, a vanilla gradient, a CAM) starts
         * at the state's first re-initialized node after the one of the state before it
         * (sal_cascade_forward); the parameter switches between neighbours copy one block */
        int live = 0;
        for (int q = 0; q < n; q++) {
            task_t *t = &tasks[order[q]];
            if (t->status == TASK_READY)
                resume(cs, order[q]);
            live += t->status != TASK_DONE;
        }
        if (!live)
            break;
        compute_waiting(cs, order);
    }
    for (int q = 0; q < n; q++) {
        if (tasks[q].started)
            pthread_join(tasks[q].thread, NULL);
        if (rcs)
            rcs[q] = tasks[q].rc;
        if (tasks[q].rc < 0 && rc == 0 && tasks[q].rc != SC_ERR_UNDEFINED)
            rc = tasks[q].rc;
        cs->ws[states[q]]->cascade_slot = -1;
    }
cleanup:
    cs->tasks = NULL;
    cs->n_tasks = 0;
    free(tasks);
    free(order);
    return rc;
}
