/*
 * chk_sensitivity.c - max- and average-sensitivity (Yeh et al., NeurIPS
 * 2019; Quantus MaxSensitivity, AvgSensitivity): N perturbed inputs
 * x + d, d ~ U(-r, r) independently per input value (Quantus: N = 200,
 * r = 0.2), each explained again (same class, the method's own noise
 * unchanged) and post-processed; the score is the largest (max_sensitivity)
 * or the mean (avg_sensitivity) over the draws of
 *     || e(x + d) - e(x) ||_2 / || e(x) ||_2.
 * Lower is better. Quantus divides by ||x|| in some versions; the relative
 * form used here does not depend on the input's scale. The gray image that
 * the model-free controls read is not perturbed (sobel scores 0). A draw
 * whose map is undefined makes both values undefined.
 *
 * Owned by workers/checks (check.h).
 */
#include "checks/check.h"

#include <math.h>

#include "rng.h"
#include "sc.h"

static double sens_cost(const chk_params_t *p, int h, int w, double method_cost)
{
    (void)h, (void)w;
    return p->sens_samples * method_cost;
}

/* Draw s of the perturbation: count values U(-r, r) from the stream
 * (seed, "sensitivity"), counters (variant, image, s): the same for every method. */
void chk_sensitivity_noise(sal_key_t key, int s, double radius, size_t count, float *out)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(key.seed, "sensitivity"), key.variant, key.image, (uint32_t)s);
    for (size_t i = 0; i < count; i++)
        out[i] = (float)(radius * (2.0 * rng_stream_uniform(&rs) - 1.0));
}

static int sens_compute(const chk_check_t *self, const chk_params_t *p, chk_ws_t *cw,
                        const chk_input_t *in, double *values)
{
    (void)self;
    values[0] = values[1] = NAN;
    cw->curve_len[0] = cw->curve_len[1] = 0;
    double den = 0.0;
    for (size_t i = 0; i < cw->hw; i++)
        den += (double)in->map[i] * in->map[i];
    if (!(den > 0) || p->sens_samples < 1)
        return SC_ERR_UNDEFINED;
    den = sqrt(den);
    double mx = 0.0, sum = 0.0;
    for (int s = 0; s < p->sens_samples; s++) {
        chk_sensitivity_noise(in->key, s, p->sens_radius, cw->chw, cw->xp);
        for (size_t i = 0; i < cw->chw; i++)
            cw->xp[i] += in->x[i];
        int rc = sal_compute(in->method, in->sp, in->model, in->ws, cw->xp, in->target, in->gray,
                             in->key, cw->raw);
        if (rc == 0)
            rc = sal_postprocess(in->method, in->ws, cw->raw, cw->map2);
        if (rc < 0)
            return rc;
        double num = 0.0;
        for (size_t i = 0; i < cw->hw; i++) {
            double d = (double)cw->map2[i] - in->map[i];
            num += d * d;
        }
        double ratio = sqrt(num) / den;
        mx = ratio > mx ? ratio : mx;
        sum += ratio;
    }
    values[0] = mx;
    values[1] = sum / p->sens_samples;
    return 0;
}

const chk_check_t chk_check_sensitivity = {
    .name = "sensitivity",
    .summary = "largest and mean relative change of the map under small uniform input noise",
    .n_out = 2,
    .out = {"max_sensitivity", "avg_sensitivity"},
    .cost = sens_cost,
    .compute = sens_compute,
};
