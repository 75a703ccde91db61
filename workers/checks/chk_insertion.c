/*
 * chk_insertion.c - insertion (Petsiuk et al. 2018, RISE's CausalMetric
 * 'ins'): starting from a substrate (RISE: the input blurred by an 11 x 11
 * Gaussian, sigma 5), the original pixels are put back in the order of the
 * map, most salient first, with deletion's steps; the area under the
 * explained class's probability is the score. Higher is better.
 *
 * Owned by workers/checks (check.h).
 */
#include "checks/check.h"

#include <string.h>

static double ins_cost(const chk_params_t *p, int h, int w, double method_cost)
{
    (void)method_cost;
    size_t hw = (size_t)h * w, step = (hw + (size_t)p->del_steps - 1) / (size_t)p->del_steps;
    return 0.5 * (double)((hw + step - 1) / step + 1);
}

static int ins_compute(const chk_check_t *self, const chk_params_t *p, chk_ws_t *cw,
                       const chk_input_t *in, double *values)
{
    (void)self;
    chk_order(cw, in->map);
    chk_substrate(cw, p->ins_start, in->x, in->ws->black, cw->start);
    memcpy(cw->finish, in->x, sizeof(float) * cw->chw);
    return chk_curve(cw, p, in, &values[0]);
}

const chk_check_t chk_check_insertion = {
    .name = "insertion",
    .summary = "area under the probability as the most salient pixels are restored (higher is better)",
    .n_out = 1,
    .out = {"insertion"},
    .cost = ins_cost,
    .compute = ins_compute,
};
