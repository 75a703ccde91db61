/*
 * plan_cascade.c - work items that hold every state of one randomization
 * (plan.h, plan_cascade_items), so that a worker computes the layers below
 * the re-initialized blocks once per input batch for all of them
 * (workers/saliency/sal_cascade.h; driver/run_cascade.c runs such items).
 *
 * Owned by driver. A group is a run of consecutive variants of one model and
 * one kind of randomization, as plan_build adds them: the top-down cascading
 * states, the bottom-up ones (named ".../cascading/upK:..."), the
 * independent ones. The cells of a group item that are done stay done: the
 * worker computes only the others (resume at cell granularity).
 */
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "sc.h"

/* The randomization a variant belongs to: 0 none, 1 top-down, 2 bottom-up, 3 independent. */
static int group_kind(const plan_variant_t *v)
{
    if (v->kind == PLAN_INDEPENDENT)
        return 3;
    if (v->kind != PLAN_CASCADING)
        return 0;
    return strstr(v->name, "/cascading/up") ? 2 : 1;
}

int plan_cascade_group(const plan_t *p, int v)
{
    const plan_variant_t *pv = &p->variants[v];
    const int kind = group_kind(pv);
    if (!kind || (v > 0 && group_kind(&p->variants[v - 1]) == kind &&
                  p->variants[v - 1].model == pv->model))
        return 1; /* not a randomization, or not its first state */
    int nv = 1;
    while (v + nv < p->n_variants && group_kind(&p->variants[v + nv]) == kind &&
           p->variants[v + nv].model == pv->model && p->variants[v + nv].n_images == pv->n_images)
        nv++;
    return nv;
}

static int cmp_cost(const void *a, const void *b)
{
    const plan_item_t *x = a, *y = b;
    if (x->cost != y->cost)
        return x->cost < y->cost ? 1 : -1;
    if (x->v != y->v)
        return x->v - y->v;
    return x->i0 - y->i0;
}

int plan_cascade_items(const plan_t *p, const uint8_t *done, int block, plan_item_t **items,
                       int *count)
{
    int rc = 0, n_single = 0;
    const size_t cells = (size_t)p->n_variants * p->n_images;
    plan_item_t *single = NULL, *list = NULL;
    uint8_t *skip = malloc(cells + 1);
    CHECK_ALLOC(skip);
    if (done)
        memcpy(skip, done, cells);
    else
        memset(skip, 0, cells);
    if (block < 1)
        block = 1;
    /* the grouped variants' cells are left out of the single items */
    for (int v = 0; v < p->n_variants;) {
        const int nv = plan_cascade_group(p, v);
        if (nv > 1)
            memset(skip + (size_t)v * p->n_images, 1, (size_t)nv * p->n_images);
        v += nv;
    }
    CHECK_RC(plan_items(p, skip, block, &single, &n_single));
    size_t cap = (size_t)n_single + cells + 1;
    list = calloc(cap, sizeof *list);
    CHECK_ALLOC(list);
    int n = 0;
    for (int q = 0; q < n_single; q++) {
        list[n] = single[q];
        list[n++].nv = 1;
    }
    for (int v = 0; v < p->n_variants;) {
        const int nv = plan_cascade_group(p, v);
        if (nv > 1) {
            const int n_img = p->variants[v].n_images;
            for (int i0 = 0; i0 < n_img; i0 += block) {
                const int i1 = i0 + block < n_img ? i0 + block : n_img;
                double cost = 0.0;
                for (int s = v; s < v + nv; s++)
                    for (int i = i0; i < i1; i++)
                        if (!(done && done[(size_t)s * p->n_images + i]))
                            cost += p->variants[s].cost;
                if (cost > 0)
                    list[n++] = (plan_item_t){v, i0, i1, cost, nv};
            }
        }
        v += nv;
    }
    qsort(list, (size_t)n, sizeof *list, cmp_cost);
    *items = list;
    *count = n;
    list = NULL;
cleanup:
    free(skip);
    free(single);
    free(list);
    return rc;
}

int plan_block_fits(double max, double total, int workers)
{
    return workers <= 1 || max * PLAN_BLOCK_SHARE * workers <= total;
}

int plan_block_auto(const plan_t *p, const uint8_t *done, int lockstep, int workers, int *block)
{
    const int tries[3] = {PLAN_BLOCK_DEFAULT, 2, 1};
    *block = 1;
    for (int t = 0; t < 3; t++) {
        plan_item_t *items = NULL;
        int n = 0;
        int rc = lockstep ? plan_cascade_items(p, done, tries[t], &items, &n)
                          : plan_items(p, done, tries[t], &items, &n);
        if (rc < 0)
            return rc;
        double max = 0.0, total = 0.0;
        for (int q = 0; q < n; q++) {
            total += items[q].cost;
            max = items[q].cost > max ? items[q].cost : max;
        }
        free(items);
        if (plan_block_fits(max, total, workers)) {
            *block = tries[t];
            return 0;
        }
    }
    return 0;
}
