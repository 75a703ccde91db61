/*
 * bn.c - batch normalization forward/backward, inference and training modes (layers.h).
 *
 * Training mode normalizes with the batch mean and biased variance over
 * (n, h, w) per channel; the running variance is updated with the unbiased
 * estimate (PyTorch; TensorFlow's fused kernel does the same).
 */
#include <math.h>
#include <string.h>

#include "nn/layers.h"

/* Channel ch's inference map x * scale + shift, the one arithmetic every
 * inference pass uses (bn_infer_affine). */
static void bn_affine(const bn_params_t *p, int ch, float *scale, float *shift)
{
    const float inv = 1.0f / sqrtf(p->running_var[ch] + p->eps);
    *scale = (p->gamma ? p->gamma[ch] : 1.0f) * inv;
    *shift = (p->beta ? p->beta[ch] : 0.0f) - p->running_mean[ch] * *scale;
}

void bn_infer_affine(const bn_params_t *p, float *scale, float *shift)
{
    for (int ch = 0; ch < p->c; ch++)
        bn_affine(p, ch, &scale[ch], &shift[ch]);
}

static void bn_infer_pass(const bn_params_t *p, int n, int hw, const bn_chans_t *x, float *y,
                          int relu)
{
    for (int ch = 0; ch < p->c; ch++) {
        float scale, shift;
        bn_affine(p, ch, &scale, &shift);
        for (int i = 0; i < n; i++) {
            const float *xs = x->x[ch] + (size_t)i * x->step[ch];
            float *ys = y + ((size_t)i * p->c + ch) * hw;
            if (relu)
                for (int k = 0; k < hw; k++) {
                    const float v = xs[k] * scale + shift;
                    ys[k] = v > 0.0f ? v : 0.0f;
                }
            else
                for (int k = 0; k < hw; k++)
                    ys[k] = xs[k] * scale + shift;
        }
    }
}

void bn_forward_infer(const bn_params_t *p, int n, int hw, const bn_chans_t *x, float *y)
{
    bn_infer_pass(p, n, hw, x, y, 0);
}

void bn_relu_forward_infer(const bn_params_t *p, int n, int hw, const bn_chans_t *x, float *y)
{
    bn_infer_pass(p, n, hw, x, y, 1);
}

void bn_backward_infer(const bn_params_t *p, int n, int hw, const float *dy, const bn_chans_t *x,
                       float *dgamma, float *dbeta, int assign)
{
    for (int ch = 0; ch < p->c; ch++) {
        float inv = 1.0f / sqrtf(p->running_var[ch] + p->eps);
        float scale = (p->gamma ? p->gamma[ch] : 1.0f) * inv;
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int i = 0; i < n; i++) {
            const float *d = dy + ((size_t)i * p->c + ch) * hw;
            const float *xs = x->x[ch] + (size_t)i * x->step[ch];
            float *dxs = x->dx ? x->dx[ch] + (size_t)i * x->step[ch] : NULL;
            if (dxs && assign)
                for (int k = 0; k < hw; k++)
                    dxs[k] = d[k] * scale;
            else if (dxs)
                for (int k = 0; k < hw; k++)
                    dxs[k] += d[k] * scale;
            if (!dgamma && !dbeta)
                continue;
            for (int k = 0; k < hw; k++) {
                sum_dy += d[k];
                sum_dy_xhat += (double)d[k] * (xs[k] - p->running_mean[ch]) * inv;
            }
        }
        if (dgamma)
            dgamma[ch] += (float)sum_dy_xhat;
        if (dbeta)
            dbeta[ch] += (float)sum_dy;
    }
}

void bn_relu_backward_infer(const bn_params_t *p, int n, int hw, const float *y_relu,
                            const float *dy, const bn_chans_t *x, int guided, int assign)
{
    for (int ch = 0; ch < p->c; ch++) {
        float scale, shift;
        bn_affine(p, ch, &scale, &shift);
        for (int i = 0; i < n; i++) {
            const size_t at = ((size_t)i * p->c + ch) * hw;
            const float *d = dy + at, *y = y_relu + at;
            float *dxs = x->dx[ch] + (size_t)i * x->step[ch];
            /* the ReLU's gradient g, then the BN's: g * scale */
            if (guided && assign)
                for (int k = 0; k < hw; k++)
                    dxs[k] = ((y[k] > 0.0f && d[k] > 0.0f) ? d[k] : 0.0f) * scale;
            else if (guided)
                for (int k = 0; k < hw; k++)
                    dxs[k] += ((y[k] > 0.0f && d[k] > 0.0f) ? d[k] : 0.0f) * scale;
            else if (assign)
                for (int k = 0; k < hw; k++)
                    dxs[k] = (y[k] > 0.0f ? d[k] : 0.0f) * scale;
            else
                for (int k = 0; k < hw; k++)
                    dxs[k] += (y[k] > 0.0f ? d[k] : 0.0f) * scale;
        }
    }
}

void bn_forward_train(const bn_params_t *p, int n, int hw, const bn_chans_t *x, float *y,
                      float *mean, float *invstd, int update_running,
                      bn_sums_hook_fn hook, void *hook_ctx, double *scratch)
{
    double *sum = scratch, *sumsq = scratch + p->c;
    double count = (double)n * hw;
    for (int ch = 0; ch < p->c; ch++) {
        double s = 0.0, s2 = 0.0;
        for (int i = 0; i < n; i++) {
            const float *xs = x->x[ch] + (size_t)i * x->step[ch];
            for (int k = 0; k < hw; k++) {
                s += xs[k];
                s2 += (double)xs[k] * xs[k];
            }
        }
        sum[ch] = s;
        sumsq[ch] = s2;
    }
    if (hook)
        hook(sum, sumsq, p->c, &count, hook_ctx);
    for (int ch = 0; ch < p->c; ch++) {
        double m = sum[ch] / count;
        double var = sumsq[ch] / count - m * m;
        if (var < 0.0)
            var = 0.0;
        mean[ch] = (float)m;
        invstd[ch] = (float)(1.0 / sqrt(var + p->eps));
        if (update_running) {
            double unbiased = count > 1.0 ? var * count / (count - 1.0) : var;
            p->running_mean[ch] = (float)((1.0 - p->momentum) * p->running_mean[ch] + p->momentum * m);
            p->running_var[ch] =
                (float)((1.0 - p->momentum) * p->running_var[ch] + p->momentum * unbiased);
        }
        /* (x - mean) * scale + beta, as PyTorch: folding the mean into the shift,
         * x * scale + (beta - mean * scale), loses float32 digits to cancellation
         * where |mean| is large against the spread (small maps, small batches) */
        float g = p->gamma ? p->gamma[ch] : 1.0f, b = p->beta ? p->beta[ch] : 0.0f;
        const float scale = g * invstd[ch], mu = mean[ch];
        for (int i = 0; i < n; i++) {
            const float *xs = x->x[ch] + (size_t)i * x->step[ch];
            float *ys = y + ((size_t)i * p->c + ch) * hw;
            for (int k = 0; k < hw; k++)
                ys[k] = (xs[k] - mu) * scale + b;
        }
    }
}

void bn_backward_train(const bn_params_t *p, int n, int hw, const bn_chans_t *x, const float *dy,
                       const float *mean, const float *invstd, float *dgamma,
                       float *dbeta, bn_sums_hook_fn hook, void *hook_ctx, double *scratch,
                       int assign)
{
    double *sum_dy = scratch, *sum_dy_xhat = scratch + p->c;
    double count = (double)n * hw;
    for (int ch = 0; ch < p->c; ch++) {
        double s = 0.0, s2 = 0.0;
        for (int i = 0; i < n; i++) {
            const float *d = dy + ((size_t)i * p->c + ch) * hw;
            const float *xs = x->x[ch] + (size_t)i * x->step[ch];
            for (int k = 0; k < hw; k++) {
                s += d[k];
                s2 += (double)d[k] * (xs[k] - mean[ch]) * invstd[ch];
            }
        }
        sum_dy[ch] = s;
        sum_dy_xhat[ch] = s2;
    }
    /* Parameter gradients are per-rank sums (the optimizer's allreduce sums them);
     * the input gradient needs the global sums. */
    for (int ch = 0; ch < p->c; ch++) {
        if (dgamma)
            dgamma[ch] += (float)sum_dy_xhat[ch];
        if (dbeta)
            dbeta[ch] += (float)sum_dy[ch];
    }
    if (!x->dx)
        return;
    if (hook)
        hook(sum_dy, sum_dy_xhat, p->c, &count, hook_ctx);
    for (int ch = 0; ch < p->c; ch++) {
        float g = p->gamma ? p->gamma[ch] : 1.0f;
        double k = g * invstd[ch];
        double mdy = sum_dy[ch] / count, mdyx = sum_dy_xhat[ch] / count;
        for (int i = 0; i < n; i++) {
            const float *d = dy + ((size_t)i * p->c + ch) * hw;
            const float *xs = x->x[ch] + (size_t)i * x->step[ch];
            float *dxs = x->dx[ch] + (size_t)i * x->step[ch];
            for (int j = 0; j < hw; j++) {
                double xhat = (xs[j] - mean[ch]) * invstd[ch];
                float g = (float)(k * (d[j] - mdy - xhat * mdyx));
                dxs[j] = assign ? g : dxs[j] + g;
            }
        }
    }
}
