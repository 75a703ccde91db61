/*
 * chk_random_logit.c - the random-logit test (Sixt et al., ICML 2020;
 * Quantus RandomLogit): the method explains a class other than the
 * explained one, drawn uniformly from the others (with two classes, the
 * other class), and the score is the SSIM (the paper's convention, as every
 * map-to-map similarity here) between the two post-processed maps. Lower is
 * better: a map that does not change with the class explains the image, not
 * the decision. Undefined (NaN) for a single-logit model.
 *
 * Owned by workers/checks (check.h).
 */
#include "checks/check.h"

#include <math.h>

#include "metrics/similarity.h"
#include "rng.h"
#include "sc.h"

static double rl_cost(const chk_params_t *p, int h, int w, double method_cost)
{
    (void)p, (void)h, (void)w;
    return method_cost;
}

/* The other class: uniform over the classes but `target`, from the stream
 * (seed, "random_logit"), counters (variant, image, method). */
int chk_random_logit_class(sal_key_t key, uint32_t method_index, int classes, int target)
{
    if (classes < 2)
        return -1;
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(key.seed, "random_logit"), key.variant, key.image, method_index);
    int other = (int)rng_stream_below(&rs, (uint32_t)(classes - 1));
    return other >= target ? other + 1 : other;
}

static int rl_compute(const chk_check_t *self, const chk_params_t *p, chk_ws_t *cw,
                      const chk_input_t *in, double *values)
{
    (void)self, (void)p;
    values[0] = NAN;
    cw->curve_len[0] = cw->curve_len[1] = 0;
    int other = chk_random_logit_class(in->key, in->method_index, in->ws->classes, in->target);
    if (other < 0)
        return SC_ERR_UNDEFINED;
    int rc = sal_compute(in->method, in->sp, in->model, in->ws, in->x, other, in->gray, in->key,
                         cw->raw);
    if (rc == 0)
        rc = sal_postprocess(in->method, in->ws, cw->raw, cw->map2);
    if (rc < 0)
        return rc;
    sim_ssim_opts_t o;
    sim_ssim_opts_default(&o);
    return sim_ssim(cw->mws, in->map, cw->map2, &o, &values[0]);
}

const chk_check_t chk_check_random_logit = {
    .name = "random_logit",
    .summary = "SSIM between the maps of the explained class and of another class (lower is better)",
    .n_out = 1,
    .out = {"random_logit"},
    .cost = rl_cost,
    .compute = rl_compute,
};
