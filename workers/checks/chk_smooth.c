/*
 * chk_smooth.c - the denoised explanations of sMPRT (Hedström et al. 2023,
 * "Sanity checks revisited"; Quantus SmoothMPRT): a wrapper method
 * "smprt-<method>" whose raw map is the mean of the base method's raw maps
 * over N copies x + e, e ~ N(0, s^2) per input value with s = noise (max(x)
 * - min(x)), the last copy noise-free (Quantus: N = 50, noise 0.1). Listed
 * beside the methods, its maps go through the same post-processing and the
 * same randomization pairs, so the cascading experiment's Spearman rank
 * correlation between original and randomized model is sMPRT itself.
 * Quantus normalizes by the second moment and takes |.| before comparing;
 * here the paper's post-processing (sum of |channels|, p99 clip) does that
 * part, and Spearman is invariant to the scaling.
 *
 * Owned by workers/checks (check.h).
 */
#include "checks/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "sc.h"

static double smooth_cost(const sal_params_t *p, int h, int w)
{
    (void)p, (void)h, (void)w;
    return 0.0; /* set per wrapper: chk_smooth_cost */
}

double chk_smooth_cost(const chk_smooth_t *s, const sal_params_t *p, int h, int w)
{
    return s->samples * sal_cost(s->base, p, h, w);
}

static int smooth_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                          const float *x, int target, const float *gray, sal_key_t key,
                          float *raw_out)
{
    const chk_smooth_t *s = (const chk_smooth_t *)self;
    const size_t chw = ws->chw;
    const size_t out_n = (size_t)sal_raw_channels(s->base, ws) * ws->hw;
    float *xn = s->xn, *one = s->one;
    double *acc = s->acc;
    int rc = 0;
    if (chw > s->chw || out_n > s->chw)
        return SC_ERR_ARG;
    memset(acc, 0, sizeof(double) * out_n);
    float lo = x[0], hi = x[0];
    for (size_t i = 1; i < chw; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    const double sigma = s->noise * ((double)hi - lo);
    for (int n = 0; n < s->samples; n++) {
        if (n == s->samples - 1) {
            memcpy(xn, x, sizeof(float) * chw); /* Quantus: the last copy is x itself */
        } else {
            rng_stream_t rs;
            rng_stream_init(&rs, rng_key(key.seed, "smprt"), key.variant, key.image, (uint32_t)n);
            for (size_t i = 0; i < chw; i++)
                xn[i] = (float)(x[i] + sigma * rng_stream_normal(&rs));
        }
        rc = s->base->compute(s->base, p, ws, xn, target, gray, key, one);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < out_n; i++)
            acc[i] += one[i];
    }
    for (size_t i = 0; i < out_n; i++)
        raw_out[i] = (float)(acc[i] / s->samples);
    return rc;
}

int chk_smooth_init(chk_smooth_t *s, const sal_method_t *base, int samples, double noise,
                    size_t chw)
{
    memset(s, 0, sizeof *s);
    if (!base || !base->needs_model || samples < 1 || !(noise >= 0) || chw == 0)
        return SC_ERR_ARG;
    s->chw = chw;
    s->xn = sc_calloc(chw, sizeof(float));
    s->one = sc_calloc(chw, sizeof(float));
    s->acc = sc_calloc(chw, sizeof(double));
    if (!s->xn || !s->one || !s->acc) {
        chk_smooth_free(s);
        return SC_ERR_NOMEM;
    }
    snprintf(s->name, sizeof s->name, "smprt-%s", base->name);
    s->base = base;
    s->samples = samples;
    s->noise = noise;
    s->method = *base;
    s->method.name = s->name;
    s->method.summary = "sMPRT's denoised explanation: the mean map over noisy copies";
    s->method.cost = smooth_cost;
    s->method.compute = smooth_compute;
    return 0;
}

void chk_smooth_free(chk_smooth_t *s)
{
    sc_free(s->xn);
    sc_free(s->one);
    sc_free(s->acc);
    s->xn = s->one = NULL;
    s->acc = NULL;
}
