/*
 * sal_eigencam.c - Eigen-CAM (Muhammad & Yeasin, IJCNN 2020; docs/methods.md
 * section 4, pytorch-grad-cam's EigenCAM): the activations A [C,h,w] of the
 * CAM node as a matrix X [h*w, C] (one row per position), each channel
 * centred over the positions; the map is X projected on its first right
 * singular vector, X v_1 = s_1 u_1. No gradient, no class: one forward pass.
 *
 * The singular vector's sign is arbitrary (numpy's SVD picks one per LAPACK
 * build): as pytorch-grad-cam's get_2d_projection_with_sign_correction (the
 * rule of Chung & Ying, Seg-Eigen-CAM 2025, Eq. 13) the projection is negated
 * when |min| > |max|, so that the map does not depend on the solver. Then as
 * every CAM: ReLU, divided by its max, bilinear (half-pixel) upsampling.
 *
 * s_1 u_1 comes from the top eigenpair of the smaller Gram matrix, in double
 * precision by LAPACK's dsyevr (OpenBLAS ships LAPACK): X X^T [hw, hw]
 * gives u_1 and s_1^2; X^T X [C, C] gives v_1 and then X v_1. Raw map [1,H,W]
 * in [0,1]; undefined when the ReLU'd projection is zero everywhere (a
 * constant activation).
 *
 * Owned by workers/saliency (one file per method behind saliency.h).
 */
#include <math.h>
#include <string.h>

#include "saliency/saliency.h"
#include "sc.h"

/* LAPACK (Fortran calling convention, hidden string lengths last). */
void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n, double *a,
             const int *lda, const double *vl, const double *vu, const int *il, const int *iu,
             const double *abstol, int *m, double *w, double *z, const int *ldz, int *isuppz,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info,
             size_t len_jobz, size_t len_range, size_t len_uplo);

static double eigencam_cost(const sal_params_t *p, int h, int w) { return 0.5; }

/* Grow the Gram workspace for an n x n problem: a [n*n], eigenvalues [n],
 * eigenvector [n], LAPACK work [26 n]; isuppz [2] and iwork [10 n]. */
static int eigencam_reserve(sal_ws_t *ws, size_t n)
{
    int rc = 0;
    size_t need = n * n + 28 * n, ineed = 10 * n + 2;
    if (need > ws->gram_cap) {
        sc_free(ws->gram);
        ws->gram_cap = 0;
        ws->gram = sc_calloc(need, sizeof(double));
        CHECK_ALLOC(ws->gram);
        ws->gram_cap = need;
    }
    if (ineed > ws->igram_cap) {
        sc_free(ws->igram);
        ws->igram_cap = 0;
        ws->igram = sc_calloc(ineed, sizeof(int));
        CHECK_ALLOC(ws->igram);
        ws->igram_cap = ineed;
    }
cleanup:
    return rc;
}

static int eigencam_compute(const sal_method_t *self, const sal_params_t *p, sal_ws_t *ws,
                            const float *x, int target, const float *gray, sal_key_t key,
                            float *raw_out)
{
    sal_cam_pass_t cp;
    int rc = sal_cam_run(ws, "Eigen-CAM", p->gcam_layer, x, -1, &cp);
    if (rc < 0)
        return rc;
    const sal_cam_layout_t lay = cp.lay;
    const nn_node_t *nd = &ws->model->nodes[cp.id];
    const int C = lay.c;
    const size_t hw = (size_t)lay.h * lay.w, cs = lay.c_stride, ps = lay.pos_stride;
    const int by_position = hw <= (size_t)C; /* Gram over positions (X X^T) or channels */
    const int n = by_position ? (int)hw : C;
    rc = eigencam_reserve(ws, (size_t)n);
    if (rc < 0)
        return rc;
    /* Centre each channel over the positions, in a float copy of A. */
    const float *A = cp.A; /* channel c at A[c * cs + i * ps] */
    float *X = ws->act; /* [C, hw]: channel c's column of X */
    for (int c = 0; c < C; c++) {
        double mean = 0.0;
        for (size_t i = 0; i < hw; i++)
            mean += A[c * cs + i * ps];
        mean /= (double)hw;
        for (size_t i = 0; i < hw; i++)
            X[c * hw + i] = (float)(A[c * cs + i * ps] - mean);
    }
    double *G = ws->gram, *evals = G + (size_t)n * n, *vec = evals + n, *work = vec + n;
    int *isuppz = ws->igram, *iwork = ws->igram + 2;
    for (int r = 0; r < n; r++)
        for (int q = 0; q <= r; q++) {
            double s = 0.0;
            if (by_position)
                for (int c = 0; c < C; c++)
                    s += (double)X[c * hw + r] * X[c * hw + q];
            else
                for (size_t i = 0; i < hw; i++)
                    s += (double)X[r * hw + i] * X[q * hw + i];
            G[(size_t)q * n + r] = s; /* lower triangle, column-major */
        }
    const int lwork = 26 * n, liwork = 10 * n, il = n, iu = n;
    const double vl = 0.0, vu = 0.0, abstol = 0.0;
    int found = 0, info = 0;
    dsyevr_("V", "I", "L", &n, G, &n, &vl, &vu, &il, &iu, &abstol, &found, evals, vec, &n,
            isuppz, work, &lwork, iwork, &liwork, &info, 1, 1, 1);
    if (info != 0 || found != 1) {
        SC_WARN("Eigen-CAM: the eigensolver failed (LAPACK dsyevr info %d) at node '%s': the "
                "map is undefined", info, nd->name);
        sal_fill_nan(raw_out, ws->hw);
        return SC_ERR_UNDEFINED;
    }
    /* The projection X v_1 = s_1 u_1 at every position. */
    float *cam = ws->cam;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < hw; i++) {
        double s = 0.0;
        if (by_position)
            s = sqrt(evals[0] > 0 ? evals[0] : 0.0) * vec[i];
        else
            for (int c = 0; c < C; c++)
                s += (double)X[c * hw + i] * vec[c];
        cam[i] = (float)s;
        lo = s < lo ? s : lo;
        hi = s > hi ? s : hi;
    }
    if (fabs(lo) > fabs(hi))
        for (size_t i = 0; i < hw; i++)
            cam[i] = -cam[i];
    return sal_cam_finish(ws, "Eigen-CAM", cam, lay.h, lay.w, raw_out);
}

const sal_method_t sal_method_eigencam = {
    .name = "eigencam",
    .summary = "Eigen-CAM: first principal component of the CAM node's activations",
    .needs_model = 1,
    .per_channel = 0,
    .post = SAL_POST_P1,
    .cost = eigencam_cost,
    .compute = eigencam_compute,
};
