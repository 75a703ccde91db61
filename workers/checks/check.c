/*
 * check.c - the check table, the checks' parameters and workspace, and what
 * several checks share: the pixel order of a map, the explained probability,
 * the substrates (RISE's blur among them) and the deletion/insertion curve
 * (check.h; definitions in docs/methods.md, "Checks beyond the paper").
 *
 * Owned by workers/checks.
 */
#include "checks/check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/outputs.h"
#include "sc.h"

extern const chk_check_t chk_check_deletion, chk_check_insertion, chk_check_road,
    chk_check_random_logit, chk_check_sensitivity;

static const chk_check_t *const table[] = {&chk_check_deletion, &chk_check_insertion,
                                           &chk_check_road, &chk_check_random_logit,
                                           &chk_check_sensitivity, NULL};

const chk_check_t *const *chk_checks(void) { return table; }

const chk_check_t *chk_find_output(const char *name, int *out_index)
{
    for (size_t i = 0; table[i]; i++)
        for (int k = 0; k < table[i]->n_out; k++)
            if (!strcmp(table[i]->out[k], name)) {
                if (out_index)
                    *out_index = k;
                return table[i];
            }
    return NULL;
}

chk_params_t chk_params_default(void)
{
    chk_params_t p;
    memset(&p, 0, sizeof p);
    p.del_steps = 224; /* RISE: 224 pixels per step at 224 x 224, i.e. 224 steps */
    p.del_fill = CHK_FILL_ZERO;
    p.ins_start = CHK_FILL_BLUR;
    p.prob = CHK_PROB_HEAD;
    for (int k = 0; k < 9; k++)
        p.road_percent[k] = 10 * (k + 1);
    p.road_n_percent = 9;
    p.road_noise = 0.01;
    p.sens_samples = 200;
    p.sens_radius = 0.2;
    return p;
}

static const char *const fill_names[CHK_FILL_COUNT] = {"zero", "black", "blur", "mean"};

int chk_fill_parse(const char *name)
{
    for (int i = 0; i < CHK_FILL_COUNT; i++)
        if (!strcmp(name, fill_names[i]))
            return i;
    return -1;
}

const char *chk_fill_name(chk_fill_t f) { return (unsigned)f < CHK_FILL_COUNT ? fill_names[f] : "?"; }

int chk_prob_parse(const char *name)
{
    if (!strcmp(name, "softmax"))
        return CHK_PROB_SOFTMAX;
    if (!strcmp(name, "sigmoid"))
        return CHK_PROB_SIGMOID;
    if (!strcmp(name, "head"))
        return CHK_PROB_HEAD;
    return -1;
}

const char *chk_prob_name(chk_prob_t p)
{
    return p == CHK_PROB_SIGMOID ? "sigmoid" : p == CHK_PROB_HEAD ? "head" : "softmax";
}

chk_prob_t chk_prob_for_model(chk_prob_t p, const nn_model_t *m)
{
    if (p != CHK_PROB_HEAD)
        return p;
    return nn_outputs_head(m) == NN_HEAD_SIGMOID ? CHK_PROB_SIGMOID : CHK_PROB_SOFTMAX;
}

/* RISE's kernel: scipy.ndimage.gaussian_filter (sigma 5, truncate 4, mode
 * 'reflect') of an 11 x 11 unit impulse at the centre. Separable: each axis
 * gets the 1-D filter of a centred impulse, whose taps reach past the 11
 * samples and fold back by half-sample reflection. */
static void rise_kernel(float *k)
{
    const int len = 11, centre = 5, radius = 20;
    const double sigma = 5.0;
    double w[41], sum = 0.0, r[11] = {0};
    for (int t = -radius; t <= radius; t++) {
        w[t + radius] = exp(-0.5 * t * t / (sigma * sigma));
        sum += w[t + radius];
    }
    for (int i = 0; i < len; i++)
        for (int t = -radius; t <= radius; t++) {
            int j = i + t, period = 2 * len;
            int m = ((j % period) + period) % period;
            int src = m < len ? m : period - 1 - m;
            if (src == centre)
                r[i] += w[t + radius] / sum;
        }
    for (int y = 0; y < len; y++)
        for (int x = 0; x < len; x++)
            k[y * len + x] = (float)(r[y] * r[x]);
}

chk_ws_t *chk_ws_create(int c, int h, int w, const chk_params_t *p)
{
    int rc = 0;
    chk_ws_t *cw = NULL;
    CHECK(c > 0 && h > 0 && w > 0 && p && p->del_steps >= 1 && p->road_n_percent >= 0 &&
              p->road_n_percent <= CHK_MAX_PERCENT,
          SC_ERR_ARG, "checks workspace: bad size %d x %d x %d or parameters", c, h, w);
    cw = sc_calloc(1, sizeof *cw);
    CHECK_ALLOC(cw);
    cw->c = c;
    cw->h = h;
    cw->w = w;
    cw->hw = (size_t)h * w;
    cw->chw = cw->hw * c;
    int curve_cap = p->del_steps > p->road_n_percent ? p->del_steps : p->road_n_percent;
    if ((size_t)curve_cap > cw->hw)
        curve_cap = (int)cw->hw;
    cw->order = sc_calloc(cw->hw, sizeof(int32_t));
    cw->sort_key = sc_calloc(cw->hw, sizeof(double));
    cw->start = sc_calloc(cw->chw, sizeof(float));
    cw->finish = sc_calloc(cw->chw, sizeof(float));
    cw->fill = sc_calloc(cw->chw, sizeof(float));
    for (int o = 0; o < CHK_MAX_OUT; o++) {
        cw->curves[o] = sc_calloc((size_t)curve_cap + 2, sizeof(double));
        CHECK_ALLOC(cw->curves[o]);
    }
    cw->removed = sc_calloc(cw->hw, 1);
    cw->var_of = sc_calloc(cw->hw, sizeof(int32_t));
    cw->pix_of = sc_calloc(cw->hw, sizeof(int32_t));
    for (int k = 0; k < 5; k++) {
        cw->cg[k] = sc_calloc(cw->hw, sizeof(double));
        CHECK_ALLOC(cw->cg[k]);
    }
    cw->pyr_v = sc_calloc(2 * cw->hw + 64, sizeof(double));
    cw->pyr_w = sc_calloc(2 * cw->hw + 64, sizeof(double));
    CHECK_ALLOC(cw->pyr_v);
    CHECK_ALLOC(cw->pyr_w);
    cw->noise = sc_calloc(cw->chw, sizeof(float));
    cw->max_percent = p->road_n_percent > 0 ? p->road_n_percent : 1;
    cw->imputed = sc_calloc((size_t)cw->max_percent * cw->chw, sizeof(float));
    cw->raw = sc_calloc(cw->chw, sizeof(float));
    cw->map2 = sc_calloc(cw->hw, sizeof(float));
    cw->xp = sc_calloc(cw->chw, sizeof(float));
    cw->mws = metrics_ws_create(h, w);
    CHECK_ALLOC(cw->order);
    CHECK_ALLOC(cw->sort_key);
    CHECK_ALLOC(cw->start);
    CHECK_ALLOC(cw->finish);
    CHECK_ALLOC(cw->fill);
    CHECK_ALLOC(cw->removed);
    CHECK_ALLOC(cw->var_of);
    CHECK_ALLOC(cw->pix_of);
    CHECK_ALLOC(cw->noise);
    CHECK_ALLOC(cw->imputed);
    CHECK_ALLOC(cw->raw);
    CHECK_ALLOC(cw->map2);
    CHECK_ALLOC(cw->xp);
    CHECK_ALLOC(cw->mws);
    rise_kernel(cw->kernel);
    return cw;
cleanup:
    (void)rc;
    chk_ws_destroy(cw);
    return NULL;
}

void chk_ws_destroy(chk_ws_t *cw)
{
    if (!cw)
        return;
    sc_free(cw->order);
    sc_free(cw->sort_key);
    sc_free(cw->start);
    sc_free(cw->finish);
    sc_free(cw->fill);
    for (int o = 0; o < CHK_MAX_OUT; o++)
        sc_free(cw->curves[o]);
    sc_free(cw->removed);
    sc_free(cw->var_of);
    sc_free(cw->pix_of);
    for (int k = 0; k < 5; k++)
        sc_free(cw->cg[k]);
    sc_free(cw->noise);
    sc_free(cw->pyr_v);
    sc_free(cw->pyr_w);
    sc_free(cw->imputed);
    sc_free(cw->raw);
    sc_free(cw->map2);
    sc_free(cw->xp);
    metrics_ws_destroy(cw->mws);
    sc_free(cw);
}

const double *chk_last_curve(const chk_ws_t *cw, int out, int *count)
{
    *count = out >= 0 && out < CHK_MAX_OUT ? cw->curve_len[out] : 0;
    return *count ? cw->curves[out] : NULL;
}

int chk_curve_len(const chk_check_t *ck, int out, const chk_params_t *p, int h, int w)
{
    if (!strcmp(ck->name, "deletion") || !strcmp(ck->name, "insertion")) {
        size_t hw = (size_t)h * w, step = (hw + (size_t)p->del_steps - 1) / (size_t)p->del_steps;
        return out == 0 ? (int)((hw + step - 1) / step) + 1 : 0;
    }
    if (!strcmp(ck->name, "road"))
        return out < 2 ? p->road_n_percent : 0;
    return 0;
}

/* Order for qsort_r-free sorting: merge sort of indices by (key desc, index asc). */
static void merge_order(int32_t *a, int32_t *tmp, size_t n, const double *key)
{
    if (n < 2)
        return;
    size_t mid = n / 2;
    merge_order(a, tmp, mid, key);
    merge_order(a + mid, tmp, n - mid, key);
    size_t i = 0, j = mid, k = 0;
    while (i < mid && j < n) {
        /* stable: on equal keys the left (smaller index) goes first */
        if (key[a[j]] > key[a[i]])
            tmp[k++] = a[j++];
        else
            tmp[k++] = a[i++];
    }
    while (i < mid)
        tmp[k++] = a[i++];
    while (j < n)
        tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

void chk_order(chk_ws_t *cw, const float *map)
{
    for (size_t i = 0; i < cw->hw; i++) {
        cw->order[i] = (int32_t)i;
        cw->sort_key[i] = map[i];
    }
    /* var_of is free scratch outside ROAD's solve */
    merge_order(cw->order, cw->var_of, cw->hw, cw->sort_key);
}

double chk_probability(chk_prob_t p, const float *logits, int classes, int target)
{
    if (p == CHK_PROB_SIGMOID)
        return 1.0 / (1.0 + exp(-(double)logits[target]));
    double mx = logits[0];
    for (int k = 1; k < classes; k++)
        mx = logits[k] > mx ? logits[k] : mx;
    double sum = 0.0;
    for (int k = 0; k < classes; k++)
        sum += exp((double)logits[k] - mx);
    return exp((double)logits[target] - mx) / sum;
}

void chk_substrate(chk_ws_t *cw, chk_fill_t f, const float *x, const float *black, float *dst)
{
    const int H = cw->h, W = cw->w;
    for (int ch = 0; ch < cw->c; ch++) {
        const float *xc = x + (size_t)ch * cw->hw;
        float *d = dst + (size_t)ch * cw->hw;
        switch (f) {
        case CHK_FILL_ZERO:
            memset(d, 0, sizeof(float) * cw->hw);
            break;
        case CHK_FILL_BLACK: {
            float b = black[ch < 4 ? ch : 3];
            for (size_t i = 0; i < cw->hw; i++)
                d[i] = b;
            break;
        }
        case CHK_FILL_MEAN: {
            double s = 0.0;
            for (size_t i = 0; i < cw->hw; i++)
                s += xc[i];
            float mean = (float)(s / (double)cw->hw);
            for (size_t i = 0; i < cw->hw; i++)
                d[i] = mean;
            break;
        }
        case CHK_FILL_BLUR:
        default:
            /* conv2d with RISE's kernel, zero padding 5 (torch's conv2d) */
            for (int y = 0; y < H; y++)
                for (int xx = 0; xx < W; xx++) {
                    double acc = 0.0;
                    for (int ky = 0; ky < 11; ky++) {
                        int sy = y + ky - 5;
                        if (sy < 0 || sy >= H)
                            continue;
                        for (int kx = 0; kx < 11; kx++) {
                            int sx = xx + kx - 5;
                            if (sx < 0 || sx >= W)
                                continue;
                            acc += (double)cw->kernel[ky * 11 + kx] * xc[(size_t)sy * W + sx];
                        }
                    }
                    d[(size_t)y * W + xx] = (float)acc;
                }
            break;
        }
    }
}

typedef struct curve_ctx {
    chk_ws_t *cw;
    const chk_params_t *p;
    const chk_input_t *in;
    size_t step;
    int classes;
} curve_ctx_t;

static void curve_fill(void *vctx, int k, float *dst)
{
    const curve_ctx_t *c = vctx;
    chk_ws_t *cw = c->cw;
    memcpy(dst, cw->start, sizeof(float) * cw->chw);
    size_t upto = (size_t)k * c->step;
    if (upto > cw->hw)
        upto = cw->hw;
    for (size_t q = 0; q < upto; q++) {
        size_t pix = (size_t)cw->order[q];
        for (int ch = 0; ch < cw->c; ch++)
            dst[(size_t)ch * cw->hw + pix] = cw->finish[(size_t)ch * cw->hw + pix];
    }
}

static void curve_consume(void *vctx, int k, const float *logits)
{
    const curve_ctx_t *c = vctx;
    c->cw->curves[0][k] = chk_probability(chk_prob_for_model(c->p->prob, c->in->model), logits,
                                          c->classes, c->in->target);
}

int chk_curve(chk_ws_t *cw, const chk_params_t *p, const chk_input_t *in, double *auc)
{
    /* RISE: `step` pixels per step, n = ceil(HW / step) steps, n + 1 probabilities */
    size_t step = (cw->hw + (size_t)p->del_steps - 1) / (size_t)p->del_steps;
    int n = (int)((cw->hw + step - 1) / step);
    curve_ctx_t c = {cw, p, in, step, in->ws->classes};
    int rc = sal_batch_logits(in->ws, n + 1, curve_fill, curve_consume, &c);
    if (rc < 0)
        return rc;
    cw->curve_len[0] = n + 1;
    cw->curve_len[1] = 0;
    const double *cv = cw->curves[0];
    double s = 0.0;
    for (int k = 0; k <= n; k++)
        s += cv[k];
    *auc = (s - 0.5 * cv[0] - 0.5 * cv[n]) / n;
    return 0;
}
