/*
 * chk_road.c - ROAD, RemOve And Debias (Rong et al., ICML 2022): for each
 * percentage p (the paper's 10, 20, ..., 90) the floor(p HW / 100) most
 * salient pixels (MoRF) or least salient pixels (LeRF, the end of the same
 * order) are removed and refilled by noisy linear imputation; the scores are
 * the mean over p of the explained class's probability, road_morf (lower is
 * better) and road_lerf (higher is better).
 *
 * Noisy linear imputation (the authors' NoisyLinearImputer): each removed
 * pixel takes the weighted mean of its in-image 8-neighbours, weight 1/6 for
 * the four direct and 1/12 for the four diagonal ones, removed neighbours
 * being unknowns themselves; per channel this is one sparse linear system
 * over the removed pixels,
 *     s_i v_i - sum_{j removed} w_ij v_j = sum_{j kept} w_ij x_j,
 * s_i the sum of the in-image weights of pixel i. The matrix is symmetric
 * and (every group of removed pixels touching a kept one) positive definite,
 * so conjugate gradients solve it (relative residual 1e-8 in double, where
 * the authors call a sparse direct solver), started from a pull-push fill
 * of the holes (averages over a pyramid of 2 x 2 blocks of the kept pixels):
 * large holes are smooth there already, which saves most of the iterations
 * CG would spend on their low frequencies. Then Gaussian noise of std
 * road.noise (0.01) is added to every imputed value.
 *
 * Owned by workers/checks (check.h).
 */
#include "checks/check.h"

#include <math.h>
#include <string.h>

#include "rng.h"
#include "sc.h"

static const int nb_dy[8] = {1, 0, -1, 1, 0, -1, 1, -1};
static const int nb_dx[8] = {1, 1, 1, -1, -1, -1, 0, 0};
static const double nb_w[8] = {1.0 / 12, 1.0 / 6, 1.0 / 12, 1.0 / 12, 1.0 / 6, 1.0 / 12, 1.0 / 6,
                               1.0 / 6};

static double road_cost(const chk_params_t *p, int h, int w, double method_cost)
{
    (void)h, (void)w, (void)method_cost;
    return 0.5 * 2.0 * p->road_n_percent;
}

void chk_road_noise(sal_key_t key, uint32_t method_index, int lerf, int k, double std, size_t count,
                    float *out)
{
    rng_stream_t rs;
    rng_stream_init(&rs, rng_key(key.seed, "road"), key.variant, key.image,
                    method_index * 64u + (uint32_t)lerf * 32u + (uint32_t)k);
    for (size_t i = 0; i < count; i++)
        out[i] = (float)(std * rng_stream_normal(&rs));
}

/* y = A v over the unknowns (A as in the file comment). */
static void road_apply(const chk_ws_t *cw, int n, const double *v, double *y)
{
    const int H = cw->h, W = cw->w;
    for (int k = 0; k < n; k++) {
        int pix = cw->pix_of[k], py = pix / W, px = pix % W;
        double s = 0.0, off = 0.0;
        for (int q = 0; q < 8; q++) {
            int ny = py + nb_dy[q], nx = px + nb_dx[q];
            if (ny < 0 || ny >= H || nx < 0 || nx >= W)
                continue;
            s += nb_w[q];
            int j = cw->var_of[ny * W + nx];
            if (j >= 0)
                off += nb_w[q] * v[j];
        }
        y[k] = s * v[k] - off;
    }
}

/* Pull-push fill of channel xc where cw->removed is set: level 0 holds the
 * kept values with weight 1; each coarser level averages 2 x 2 blocks by
 * weight (weight min(1, sum)); going back down, a pixel of weight w < 1
 * takes w v + (1 - w) v(parent). Leaves level 0's values in cw->pyr_v. */
static void road_pull_push(chk_ws_t *cw, const float *xc)
{
    int hs[32], ws[32], n_lev = 0;
    size_t off[32];
    double *v = cw->pyr_v, *w = cw->pyr_w;
    hs[0] = cw->h;
    ws[0] = cw->w;
    off[0] = 0;
    for (size_t i = 0; i < cw->hw; i++) {
        w[i] = cw->removed[i] ? 0.0 : 1.0;
        v[i] = cw->removed[i] ? 0.0 : xc[i];
    }
    n_lev = 1;
    while ((hs[n_lev - 1] > 1 || ws[n_lev - 1] > 1) && n_lev < 32) {
        int ph = hs[n_lev - 1], pw = ws[n_lev - 1];
        int h = (ph + 1) / 2, wd = (pw + 1) / 2;
        off[n_lev] = off[n_lev - 1] + (size_t)ph * pw;
        hs[n_lev] = h;
        ws[n_lev] = wd;
        for (int y = 0; y < h; y++)
            for (int xx = 0; xx < wd; xx++) {
                double sw = 0.0, sv = 0.0;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) {
                        int sy = 2 * y + dy, sx = 2 * xx + dx;
                        if (sy >= ph || sx >= pw)
                            continue;
                        size_t q = off[n_lev - 1] + (size_t)sy * pw + sx;
                        sw += w[q];
                        sv += w[q] * v[q];
                    }
                size_t q = off[n_lev] + (size_t)y * wd + xx;
                v[q] = sw > 0 ? sv / sw : 0.0;
                w[q] = sw < 1.0 ? sw : 1.0;
            }
        n_lev++;
    }
    for (int l = n_lev - 2; l >= 0; l--)
        for (int y = 0; y < hs[l]; y++)
            for (int xx = 0; xx < ws[l]; xx++) {
                size_t q = off[l] + (size_t)y * ws[l] + xx;
                if (w[q] >= 1.0)
                    continue;
                double parent = v[off[l + 1] + (size_t)(y / 2) * ws[l + 1] + xx / 2];
                v[q] = w[q] * v[q] + (1.0 - w[q]) * parent;
                w[q] = 1.0;
            }
}

int chk_road_impute(chk_ws_t *cw, const float *x, int lerf, int percent, const float *noise,
                    float *out)
{
    const int H = cw->h, W = cw->w;
    const size_t hw = cw->hw;
    size_t count = (size_t)floor((double)percent * (double)hw / 100.0);
    memset(cw->removed, 0, hw);
    for (size_t q = 0; q < count; q++)
        cw->removed[cw->order[lerf ? hw - 1 - q : q]] = 1;
    int n = 0;
    for (size_t i = 0; i < hw; i++) {
        cw->var_of[i] = cw->removed[i] ? n : -1;
        if (cw->removed[i])
            cw->pix_of[n++] = (int32_t)i;
    }
    memcpy(out, x, sizeof(float) * cw->chw);
    if (n == 0)
        return 0;
    double *v = cw->cg[0], *r = cw->cg[1], *d = cw->cg[2], *ad = cw->cg[3], *b = cw->cg[4];
    for (int ch = 0; ch < cw->c; ch++) {
        const float *xc = x + (size_t)ch * hw;
        /* a gray image copied to every channel: the same system, the same solution */
        if (ch > 0 && !memcmp(xc, xc - hw, sizeof(float) * hw)) {
            float *oc = out + (size_t)ch * hw;
            const float *nc = noise ? noise + (size_t)ch * hw : NULL;
            for (int k = 0; k < n; k++) {
                int pix = cw->pix_of[k];
                oc[pix] = (float)(v[k] + (nc ? nc[pix] : 0.0f));
            }
            continue;
        }
        double bnorm = 0.0;
        road_pull_push(cw, xc);
        for (int k = 0; k < n; k++) {
            int pix = cw->pix_of[k], py = pix / W, px = pix % W;
            double rhs = 0.0;
            for (int q = 0; q < 8; q++) {
                int ny = py + nb_dy[q], nx = px + nb_dx[q];
                if (ny < 0 || ny >= H || nx < 0 || nx >= W || cw->removed[ny * W + nx])
                    continue;
                rhs += nb_w[q] * xc[ny * W + nx];
            }
            b[k] = rhs;
            bnorm += rhs * rhs;
            v[k] = cw->pyr_v[pix];
        }
        road_apply(cw, n, v, ad);
        double rr = 0.0, tol = 1e-16 * (bnorm > 0 ? bnorm : 1.0);
        for (int k = 0; k < n; k++) {
            r[k] = b[k] - ad[k];
            d[k] = r[k];
            rr += r[k] * r[k];
        }
        for (int it = 0; it < 20 * n + 100 && rr > tol; it++, cw->cg_iterations++) {
            road_apply(cw, n, d, ad);
            double dad = 0.0;
            for (int k = 0; k < n; k++)
                dad += d[k] * ad[k];
            if (!(dad > 0))
                break;
            double alpha = rr / dad, rr_new = 0.0;
            for (int k = 0; k < n; k++) {
                v[k] += alpha * d[k];
                r[k] -= alpha * ad[k];
                rr_new += r[k] * r[k];
            }
            double beta = rr_new / rr;
            rr = rr_new;
            for (int k = 0; k < n; k++)
                d[k] = r[k] + beta * d[k];
        }
        float *oc = out + (size_t)ch * hw;
        const float *nc = noise ? noise + (size_t)ch * hw : NULL;
        for (int k = 0; k < n; k++) {
            int pix = cw->pix_of[k];
            oc[pix] = (float)(v[k] + (nc ? nc[pix] : 0.0f));
        }
    }
    return 0;
}

typedef struct road_ctx {
    chk_ws_t *cw;
    const chk_params_t *p;
    int target, classes;
    double *probs;
    chk_prob_t prob; /* softmax or sigmoid (chk_prob_for_model) */
} road_ctx_t;

static void road_fill(void *vctx, int k, float *dst)
{
    const road_ctx_t *c = vctx;
    memcpy(dst, c->cw->imputed + (size_t)k * c->cw->chw, sizeof(float) * c->cw->chw);
}

static void road_consume(void *vctx, int k, const float *logits)
{
    const road_ctx_t *c = vctx;
    c->probs[k] = chk_probability(c->prob, logits, c->classes, c->target);
}

static int road_compute(const chk_check_t *self, const chk_params_t *p, chk_ws_t *cw,
                        const chk_input_t *in, double *values)
{
    (void)self;
    const int P = p->road_n_percent;
    if (P < 1 || P > cw->max_percent)
        return SC_ERR_ARG;
    chk_order(cw, in->map);
    for (int lerf = 0; lerf < 2; lerf++) {
        for (int k = 0; k < P; k++) {
            chk_road_noise(in->key, in->method_index, lerf, k, p->road_noise, cw->chw, cw->noise);
            int rc = chk_road_impute(cw, in->x, lerf, p->road_percent[k], cw->noise,
                                     cw->imputed + (size_t)k * cw->chw);
            if (rc < 0)
                return rc;
        }
        road_ctx_t c = {cw, p, in->target, in->ws->classes, cw->curves[lerf],
                        chk_prob_for_model(p->prob, in->model)};
        int rc = sal_batch_logits(in->ws, P, road_fill, road_consume, &c);
        if (rc < 0)
            return rc;
        double s = 0.0;
        for (int k = 0; k < P; k++)
            s += cw->curves[lerf][k];
        values[lerf] = s / P;
        cw->curve_len[lerf] = P;
    }
    return 0;
}

const chk_check_t chk_check_road = {
    .name = "road",
    .summary = "ROAD: probability after removing the most (MoRF) or least (LeRF) salient pixels, "
               "refilled by noisy linear imputation",
    .n_out = 2,
    .out = {"road_morf", "road_lerf"},
    .cost = road_cost,
    .compute = road_compute,
};
