/*
 * activation.c - ReLU (standard and guided backward), softmax, sigmoid (layers.h).
 */
#include <math.h>

#include "nn/layers.h"
#include "nn/vmath.h"

void relu_forward(size_t count, const float *x, float *y)
{
    for (size_t i = 0; i < count; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward(size_t count, const float *y, const float *dy, float *dx, int guided,
                   int assign)
{
    if (assign) {
        if (guided)
            for (size_t i = 0; i < count; i++)
                dx[i] = (y[i] > 0.0f && dy[i] > 0.0f) ? dy[i] : 0.0f;
        else
            for (size_t i = 0; i < count; i++)
                dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    } else if (guided) {
        for (size_t i = 0; i < count; i++)
            if (y[i] > 0.0f && dy[i] > 0.0f)
                dx[i] += dy[i];
    } else {
        for (size_t i = 0; i < count; i++)
            if (y[i] > 0.0f)
                dx[i] += dy[i];
    }
}

void softmax_forward(int n, int classes, const float *x, float *y)
{
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * classes;
        float *yi = y + (size_t)i * classes;
        float mx = xi[0];
        for (int k = 1; k < classes; k++)
            mx = xi[k] > mx ? xi[k] : mx;
        double total = 0.0;
        for (int k = 0; k < classes; k++) {
            yi[k] = expf(xi[k] - mx);
            total += yi[k];
        }
        for (int k = 0; k < classes; k++)
            yi[k] = (float)(yi[k] / total);
    }
}

/* dx_k += y_k (dy_k - sum_j dy_j y_j) */
void softmax_backward(int n, int classes, const float *y, const float *dy, float *dx)
{
    for (int i = 0; i < n; i++) {
        const float *yi = y + (size_t)i * classes, *di = dy + (size_t)i * classes;
        float *dxi = dx + (size_t)i * classes;
        double dot = 0.0;
        for (int k = 0; k < classes; k++)
            dot += (double)di[k] * yi[k];
        for (int k = 0; k < classes; k++)
            dxi[k] += (float)(yi[k] * (di[k] - dot));
    }
}

NN_WIDE_VECTORS void sigmoid_forward(size_t count, const float *x, float *y)
{
    for (size_t i = 0; i < count; i++)
        y[i] = nn_sigmoidf(x[i]);
}

NN_WIDE_VECTORS void sigmoid_backward(size_t count, const float *y, const float *dy, float *dx)
{
    for (size_t i = 0; i < count; i++)
        dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}
