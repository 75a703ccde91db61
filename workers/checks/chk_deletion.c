/*
 * chk_deletion.c - deletion (Petsiuk et al. 2018, RISE's CausalMetric 'del'):
 * starting from the input, the pixels are replaced by a substrate in the
 * order of the map, most salient first, `step` = ceil(HW / K) pixels per
 * step (all channels of a pixel together); the explained class's
 * probability after each step gives a curve of ceil(HW / step) + 1 points
 * on [0, 1], and its area by the trapezoid rule is the score. Lower is
 * better: a faithful map names the pixels the model needs. Substrate:
 * del.fill (RISE: zero in the normalized input space).
 *
 * Owned by workers/checks (check.h).
 */
#include "checks/check.h"

#include <string.h>

static double del_cost(const chk_params_t *p, int h, int w, double method_cost)
{
    (void)method_cost;
    size_t hw = (size_t)h * w, step = (hw + (size_t)p->del_steps - 1) / (size_t)p->del_steps;
    return 0.5 * (double)((hw + step - 1) / step + 1);
}

static int del_compute(const chk_check_t *self, const chk_params_t *p, chk_ws_t *cw,
                       const chk_input_t *in, double *values)
{
    (void)self;
    chk_order(cw, in->map);
    memcpy(cw->start, in->x, sizeof(float) * cw->chw);
    chk_substrate(cw, p->del_fill, in->x, in->ws->black, cw->finish);
    return chk_curve(cw, p, in, &values[0]);
}

const chk_check_t chk_check_deletion = {
    .name = "deletion",
    .summary = "area under the probability as the most salient pixels are removed (lower is better)",
    .n_out = 1,
    .out = {"deletion"},
    .cost = del_cost,
    .compute = del_compute,
};
