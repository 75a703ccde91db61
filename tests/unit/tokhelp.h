/*
 * tokhelp.h - helpers of the token-model tests (test_vit.c, test_swin.c):
 * exporting a torchvision model to ONNX through its reference script, running
 * the script's float64 reference on raw float32 inputs, and the relative L2
 * error of a result against a float64 reference.
 *
 * The scripts (tests/ref/vit_torch_ref.py, tests/ref/swin_torch_ref.py) take
 *   SCRIPT export OUT.onnx SPEC OPSET SEED   (also writes OUT.pt)
 *   SCRIPT ref SPEC OUT.pt INPUT.f32 N TARGET REF.f64
 */
#ifndef TOKHELP_H
#define TOKHELP_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnhelp.h"
#include "testhelp.h"

/* Exports SPEC at opset with the script's weights keyed by seed to
 * th_tmp_dir()/STEM_SPEC_OPSET.onnx, whose path goes to path; 0 or -1. */
static inline int tok_export(const char *script, const char *stem, const char *spec, int opset,
                             int seed, char *path, size_t len)
{
    snprintf(path, len, "%s/%s_%s_%d.onnx", th_tmp_dir(), stem, spec, opset);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s export %s %s %d %d 2>/dev/null", th_python(), script, path,
             spec, opset, seed);
    return system(cmd) == 0 ? 0 : -1;
}

/* Runs the script's float64 reference of SPEC (the .pt beside onnx_path) on
 * n images x (n_floats floats in all) for the logit target, through
 * th_tmp_dir()/STEM_in.f32 and STEM_ref.f64; returns the count doubles it
 * wrote (caller frees), or NULL when it failed or wrote fewer. */
static inline double *tok_reference(const char *script, const char *stem, const char *spec,
                                    const char *onnx_path, const float *x, size_t n_floats, int n,
                                    int target, size_t count)
{
    char pt[512], in[512], out[512], cmd[2048];
    snprintf(pt, sizeof pt, "%.*s.pt", (int)strlen(onnx_path) - 5, onnx_path);
    snprintf(in, sizeof in, "%s/%s_in.f32", th_tmp_dir(), stem);
    snprintf(out, sizeof out, "%s/%s_ref.f64", th_tmp_dir(), stem);
    if (th_write_f32(in, x, n_floats) < 0)
        return NULL;
    snprintf(cmd, sizeof cmd, "%s %s ref %s %s %s %d %d %s", th_python(), script, spec, pt, in, n,
             target, out);
    if (system(cmd) != 0)
        return NULL;
    double *r = malloc(sizeof(double) * count);
    FILE *f = fopen(out, "rb");
    size_t got = f && r ? fread(r, sizeof(double), count, f) : 0;
    if (f)
        fclose(f);
    if (got != count) {
        free(r);
        return NULL;
    }
    return r;
}

/* Relative L2 error of float a against float64 b (the absolute one where b is 0). */
static inline double tok_rel_l2_d(const float *a, const double *b, size_t count)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < count; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* The same for float64 a (PyTorch float32's result, stored as float64). */
static inline double tok_rel_l2_dd(const double *a, const double *b, size_t count)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < count; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

#endif /* TOKHELP_H */
