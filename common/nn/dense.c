/*
 * dense.c - fully connected layer and the classification losses (layers.h).
 */
#include <cblas.h>
#include <math.h>

#include "nn/layers.h"

void dense_forward(int n, int in, int out, const float *x, const float *W, const float *b, float *y)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, W, in, 0.0f, y,
                out);
    if (b)
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out; o++)
                y[(size_t)i * out + o] += b[o];
}

void dense_backward(int n, int in, int out, const float *x, const float *W, const float *dy,
                    float *dx, float *dW, float *db)
{
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dy, out, W, in,
                    1.0f, dx, in);
    if (dW)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.0f, dy, out, x, in,
                    1.0f, dW, in);
    if (db)
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out; o++)
                db[o] += dy[(size_t)i * out + o];
}

double loss_softmax_ce(int n, int classes, const float *logits, const int *labels, float *dlogits)
{
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        const float *z = logits + (size_t)i * classes;
        double mx = z[0];
        for (int k = 1; k < classes; k++)
            mx = z[k] > mx ? z[k] : mx;
        double sum = 0.0;
        for (int k = 0; k < classes; k++)
            sum += exp(z[k] - mx);
        double lse = mx + log(sum);
        total += lse - z[labels[i]];
        if (dlogits)
            for (int k = 0; k < classes; k++)
                dlogits[(size_t)i * classes + k] =
                    (float)((exp(z[k] - lse) - (k == labels[i] ? 1.0 : 0.0)) / n);
    }
    return total / n;
}

double loss_bce_logits(int n, const float *logits, const float *targets, float *dlogits)
{
    double total = 0.0;
    for (int i = 0; i < n; i++) {
        double z = logits[i], t = targets[i];
        /* log(1+exp(-|z|)) + max(z,0) - z*t */
        total += log1p(exp(-fabs(z))) + (z > 0 ? z : 0) - z * t;
        if (dlogits) {
            double sig = z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
            dlogits[i] = (float)((sig - t) / n);
        }
    }
    return total / n;
}
