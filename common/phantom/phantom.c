/*
 * phantom.c - synthetic frontal chest radiographs (see phantom.h).
 *
 * Rendering works in a "density" domain (0 = no attenuation, ~1 = thick soft
 * tissue) on the pixel grid:
 *   1. anatomy, per pixel, from analytic shapes in anatomy coordinates (u, v):
 *      u across (negative = image left = patient's right), v from top (0) to
 *      bottom (1); the acquisition (rotation, scale, shift) maps them to pixels;
 *   2. vessels: branching segments from each hilum, rasterized, inside lungs;
 *   3. opacities (positives): the air of the lung is partly replaced, so
 *      density rises toward soft tissue; their masks are the ground truth;
 *   4. a lead marker (distractor) outside the lungs;
 *   5. blur, tone curve, intensity gradient, noise, 8-bit quantization.
 * Every random number comes from Philox streams keyed by (seed, purpose) with
 * counter (image index, ...): image i depends on (seed, i) only.
 */
#include "phantom/phantom.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/png.h"
#include "rng.h"
#include "sc.h"

#define PH_MAX_SEGMENTS 1024

typedef struct anatomy {
    double cos_r, sin_r, scale, tx, ty; /* (X, Y) = scale * R(rot) (u, v - 0.5) + (tx, ty) */
    double body_hw, neck_hw, shoulder_v;
    double v_apex[2], v_cp[2], a_lat[2], a_c[2], dome_h[2];
    double med_hw, knob, v_knob;
    double heart_u, heart_v, heart_rx, heart_ry, heart_cos, heart_sin;
    double soft, air, bone;
    double rib_v0, rib_dv, rib_p, rib_q, rib_th;
    double ant_v0, ant_dv, ant_slope, ant_th;
    double clav_v, clav_th, clav_len;
    double spine_u, spine_hw;
    double trachea_hw, carina_v;
    double hilum_v, breast, breast_r, bubble;
    double gamma, lo, hi, grad_x, grad_y, noise, blur;
} anatomy_t;

typedef struct segment {
    float x0, y0, x1, y1, width, value; /* pixels */
} segment_t;

struct phantom {
    phantom_config_t cfg;
    int size;
    rng_key_t key_anatomy, key_lesion, key_noise, key_label, key_split, key_marker, key_texture;
    float *dens;    /* [S*S] density without lung air */
    float *air;     /* [S*S] air to subtract (0 outside lungs) */
    float *lung;    /* [S*S] visible lung fraction (soft) */
    float *vessel;  /* [S*S] vessel layer */
    float *opac;    /* [S*S] fraction of air replaced by fluid */
    float *field;   /* [S*S] scratch: lesion field, blur pass */
    float *grid;    /* value-noise lattice */
    int grid_cap;
    uint8_t *lesion_bits; /* [S*S] */
    segment_t *segments;
};

/* ------------------------------------------------------------------ helpers */

static inline double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

static inline double smoothstep(double e0, double e1, double x)
{
    double t = clampd((x - e0) / (e1 - e0), 0.0, 1.0);
    return t * t * (3.0 - 2.0 * t);
}

static inline double uni(rng_stream_t *s, double lo, double hi)
{
    return lo + (hi - lo) * rng_stream_uniform(s);
}

/* Lattice of uniform values [gh][gw] for value noise, from (key, a, b). */
static void noise_lattice(rng_key_t key, uint32_t a, uint32_t b, int gw, int gh, float *grid)
{
    rng_stream_t s;
    rng_stream_init(&s, key, a, b, 0x6e6f6973u);
    for (int i = 0; i < gw * gh; i++)
        grid[i] = (float)(rng_stream_u32(&s) * (1.0 / 4294967296.0));
}

/* Value noise in [0, 1] at (x, y) in lattice units (smooth interpolation). */
static inline float noise_at(const float *grid, int gw, int gh, float x, float y)
{
    int ix = (int)x, iy = (int)y;
    if (ix > gw - 2) ix = gw - 2;
    if (iy > gh - 2) iy = gh - 2;
    if (ix < 0) ix = 0;
    if (iy < 0) iy = 0;
    float fx = x - ix, fy = y - iy;
    fx = fx * fx * (3 - 2 * fx);
    fy = fy * fy * (3 - 2 * fy);
    const float *g = grid + (size_t)iy * gw + ix;
    float top = g[0] + fx * (g[1] - g[0]);
    float bot = g[gw] + fx * (g[gw + 1] - g[gw]);
    return top + fy * (bot - top);
}

/* Distance from (px, py) to the segment (x0, y0)-(x1, y1). */
static inline float seg_dist(float px, float py, float x0, float y0, float x1, float y1)
{
    float dx = x1 - x0, dy = y1 - y0, l2 = dx * dx + dy * dy;
    float t = l2 > 0 ? ((px - x0) * dx + (py - y0) * dy) / l2 : 0.0f;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    float ex = px - (x0 + t * dx), ey = py - (y0 + t * dy);
    return sqrtf(ex * ex + ey * ey);
}

/* ------------------------------------------------------------------ anatomy */

static void anatomy_sample(rng_stream_t *s, anatomy_t *A)
{
    double rot = uni(s, -0.07, 0.07); /* about +-4 degrees */
    A->cos_r = cos(rot);
    A->sin_r = sin(rot);
    A->scale = uni(s, 0.86, 1.02);
    A->tx = uni(s, -0.035, 0.035);
    A->ty = uni(s, -0.03, 0.04);
    A->body_hw = uni(s, 0.40, 0.50);
    A->neck_hw = uni(s, 0.085, 0.11);
    A->shoulder_v = uni(s, 0.10, 0.17);
    double apex = uni(s, 0.09, 0.14), cp = uni(s, 0.76, 0.84);
    double lat = uni(s, 0.33, 0.40);
    for (int side = 0; side < 2; side++) {
        A->v_apex[side] = apex + uni(s, -0.01, 0.01);
        A->a_lat[side] = lat + uni(s, -0.012, 0.012);
        A->a_c[side] = uni(s, 0.15, 0.19);
        A->dome_h[side] = uni(s, 0.07, 0.12);
    }
    double right_higher = uni(s, 0.01, 0.04); /* the patient's right hemidiaphragm is higher */
    A->v_cp[0] = cp - right_higher;
    A->v_cp[1] = cp + uni(s, -0.01, 0.01);
    A->med_hw = uni(s, 0.045, 0.06);
    A->knob = uni(s, 0.015, 0.035);
    A->v_knob = uni(s, 0.27, 0.32);
    A->heart_rx = uni(s, 0.16, 0.20);
    A->heart_ry = uni(s, 0.10, 0.13);
    A->heart_u = uni(s, 0.05, 0.08);
    A->heart_v = A->v_cp[1] - uni(s, 0.09, 0.13);
    double hrot = uni(s, 0.35, 0.6); /* long axis down and to the patient's left */
    A->heart_cos = cos(hrot);
    A->heart_sin = sin(hrot);
    A->soft = uni(s, 0.72, 0.85);
    A->air = uni(s, 0.40, 0.55);
    A->bone = uni(s, 0.09, 0.15);
    A->rib_dv = uni(s, 0.060, 0.072);
    A->rib_v0 = A->v_apex[0] + uni(s, 0.0, 0.02);
    A->rib_p = uni(s, 0.30, 0.42);
    A->rib_q = uni(s, 1.4, 1.9);
    A->rib_th = uni(s, 0.024, 0.031);
    A->ant_v0 = A->v_apex[0] + uni(s, 0.06, 0.10);
    A->ant_dv = uni(s, 0.07, 0.085);
    A->ant_slope = uni(s, 0.45, 0.65);
    A->ant_th = uni(s, 0.016, 0.022);
    A->clav_v = uni(s, 0.15, 0.20);
    A->clav_th = uni(s, 0.022, 0.03);
    A->clav_len = uni(s, 0.28, 0.34);
    A->spine_u = uni(s, -0.01, 0.01);
    A->spine_hw = uni(s, 0.028, 0.036);
    A->trachea_hw = uni(s, 0.014, 0.019);
    A->carina_v = uni(s, 0.32, 0.37);
    A->hilum_v = uni(s, 0.38, 0.44);
    A->breast = rng_stream_uniform(s) < 0.4 ? uni(s, 0.04, 0.10) : 0.0;
    A->breast_r = uni(s, 0.13, 0.18);
    A->bubble = rng_stream_uniform(s) < 0.7 ? uni(s, 0.10, 0.25) : 0.0;
    A->gamma = uni(s, 0.8, 1.25);
    A->lo = uni(s, 0.0, 0.07);
    A->hi = uni(s, 0.86, 1.0);
    A->grad_x = uni(s, -0.08, 0.08);
    A->grad_y = uni(s, -0.08, 0.08);
    A->noise = uni(s, 0.006, 0.022);
    A->blur = uni(s, 0.5, 1.0);
}

/* Anatomy coordinates of image point (X, Y), both centered in [-0.5, 0.5]. */
static inline void to_anatomy(const anatomy_t *A, double X, double Y, double *u, double *v)
{
    double x = (X - A->tx) / A->scale, y = (Y - A->ty) / A->scale;
    *u = A->cos_r * x + A->sin_r * y;
    *v = -A->sin_r * x + A->cos_r * y + 0.5;
}

static inline void to_pixel(const anatomy_t *A, int size, double u, double v, float *px, float *py)
{
    double y = v - 0.5;
    double X = A->scale * (A->cos_r * u - A->sin_r * y) + A->tx;
    double Y = A->scale * (A->sin_r * u + A->cos_r * y) + A->ty;
    *px = (float)((X + 0.5) * size - 0.5);
    *py = (float)((Y + 0.5) * size - 0.5);
}

/* Height of the diaphragm under lateral position a of one side. */
static inline double diaphragm_v(const anatomy_t *A, int side, double a)
{
    double ad = 0.45 * A->a_lat[side], bump;
    if (a >= ad) {
        double z = (a - ad) / (A->a_lat[side] - ad);
        bump = 1.0 - z * z;
    } else {
        double z = (ad - a) / ad;
        bump = 1.0 - 0.3 * z * z;
    }
    return A->v_cp[side] - A->dome_h[side] * (bump > 0 ? bump : 0);
}

/*
 * Lung field of one side (0: image left) at (u, v): soft fraction in [0, 1];
 * *across in [-1, 1] from the medial to the lateral edge, *depth in [0, 1] from
 * the apex down (for the thickness of air).
 */
static double lung_side(const anatomy_t *A, int side, double u, double v, double *across, double *depth)
{
    double a = side ? u : -u;
    double va = A->v_apex[side], vc = A->v_cp[side];
    *across = 0;
    *depth = 0;
    if (v < va - 0.01 || a < 0)
        return 0.0;
    double t = clampd((v - va) / (vc - va), 0.0, 1.0);
    double g = sqrt(1.0 - (1.0 - t) * (1.0 - t));
    double m = A->med_hw;
    if (side == 1)
        m += A->knob * exp(-(v - A->v_knob) * (v - A->v_knob) / (0.045 * 0.045));
    double al = A->a_c[side] + (A->a_lat[side] - A->a_c[side]) * g;
    double am = A->a_c[side] - (A->a_c[side] - m) * g;
    double vd = diaphragm_v(A, side, a);
    double d = fmin(fmin(al - a, a - am), fmin(vd - v, 0.7 * (v - va)));
    if (d < -0.006)
        return 0.0;
    *across = al > am ? clampd(2.0 * (a - am) / (al - am) - 1.0, -1.0, 1.0) : 0.0;
    *depth = t;
    return smoothstep(-0.0035, 0.0035, d);
}

static inline double heart_frac(const anatomy_t *A, double u, double v)
{
    double du = u - A->heart_u, dv = v - A->heart_v;
    double x = A->heart_cos * du + A->heart_sin * dv, y = -A->heart_sin * du + A->heart_cos * dv;
    double q = (x / A->heart_rx) * (x / A->heart_rx) + (y / A->heart_ry) * (y / A->heart_ry);
    return 1.0 - smoothstep(0.9, 1.1, q);
}

/* Density of bones (ribs, clavicles, spine) at (u, v). */
static double bones(const anatomy_t *A, double u, double v, double body, double lung)
{
    double total = 0.0;
    if (body <= 0.0)
        return 0.0;
    /* Ribs stand out against lung air and fade over soft tissue. */
    double contrast = 0.35 + 0.65 * lung;
    for (int side = 0; side < 2; side++) {
        double a = side ? u : -u;
        if (a < 0.02)
            continue;
        double edge = smoothstep(0.0, 0.25, body) * (1.0 - smoothstep(A->a_lat[side] + 0.01,
                                                                        A->a_lat[side] + 0.06, a));
        /* Posterior ribs: arcs rising from the spine, then falling laterally. */
        double base = A->rib_v0 - A->rib_p * a + A->rib_q * a * a;
        int k = (int)floor((v - base) / A->rib_dv + 0.5);
        if (k >= 0 && k <= 9) {
            double th = A->rib_th * (1.0 + 0.5 * a);
            double d = fabs(v - (base + k * A->rib_dv)) / (0.5 * th);
            if (d < 1.2) {
                double profile = (1.0 - smoothstep(0.8, 1.15, d)) * (0.7 + 0.3 * d * d * d * d);
                total += A->bone * profile * smoothstep(0.02, 0.06, a) * edge * contrast;
            }
        }
        /* Anterior ribs: from the lateral wall down toward the sternum, fainter. */
        if (a > 0.10) {
            double lat = A->a_lat[side] + 0.03;
            double base_a = A->ant_v0 + A->ant_slope * (lat - a) * 0.5;
            int j = (int)floor((v - base_a) / A->ant_dv + 0.5);
            if (j >= 0 && j <= 5) {
                double d = fabs(v - (base_a + j * A->ant_dv)) / (0.5 * A->ant_th);
                if (d < 1.2)
                    total += 0.4 * A->bone * (1.0 - smoothstep(0.8, 1.15, d)) *
                             smoothstep(0.10, 0.16, a) * edge * contrast;
            }
        }
        /* Clavicle: from the sternal end (beside the spine) out and up to the
           shoulder, a slight S; rounded medial head. */
        if (a < A->clav_len + 0.02) {
            double s = (a - 0.05) / (A->clav_len - 0.05);
            double vc = A->clav_v - 0.06 * s + 0.015 * sin(2.0 * M_PI * s);
            double d = fabs(v - vc) / (0.5 * A->clav_th * (1.0 + 0.35 * (1.0 - s)));
            if (d < 1.2 && s > -0.08)
                total += 1.4 * A->bone * (1.0 - smoothstep(0.8, 1.15, d)) * (0.75 + 0.25 * d * d) *
                         smoothstep(-0.08, 0.02, s) * (1.0 - smoothstep(0.95, 1.03, s)) *
                         smoothstep(0.0, 0.15, body);
        }
    }
    /* Spine: vertebral bodies with darker disc spaces, faint behind the mediastinum. */
    double ds = fabs(u - A->spine_u) / A->spine_hw;
    if (ds < 1.3) {
        double phase = (v - A->rib_v0) / A->rib_dv;
        phase -= floor(phase);
        double disc = exp(-(phase - 0.5) * (phase - 0.5) / (2 * 0.05 * 0.05));
        total += 0.4 * A->bone * (1.0 - smoothstep(0.85, 1.2, ds)) * (1.0 - 0.45 * disc) *
                 (0.8 + 0.2 * ds * ds);
    }
    return total;
}

/* Air of the trachea and main bronchi (a dark tube down the mediastinum). */
static double airway(const anatomy_t *A, double u, double v)
{
    float pu = (float)u, pv = (float)v;
    float cu = (float)(A->spine_u + 0.004), cv = (float)A->carina_v;
    float d = seg_dist(pu, pv, (float)A->spine_u, -0.1f, cu, cv);
    float hw = (float)A->trachea_hw;
    float dr = seg_dist(pu, pv, cu, cv, cu - 0.065f, cv + 0.065f);
    float dl = seg_dist(pu, pv, cu, cv, cu + 0.085f, cv + 0.05f);
    double t = 1.0 - smoothstep(0.55 * hw, hw, d);
    double b = 1.0 - smoothstep(0.4 * hw, 0.8 * hw, fminf(dr, dl));
    return fmax(t, 0.8 * b);
}

/* --------------------------------------------------------------- rendering */

void phantom_config_default(phantom_config_t *cfg)
{
    cfg->size = 256;
    cfg->seed = 1;
    cfg->positive_fraction = 0.5;
    cfg->marker_fraction = 0.5;
}

phantom_t *phantom_create(const phantom_config_t *cfg)
{
    int rc = SC_OK;
    phantom_t *ph = NULL;
    CHECK(cfg->size >= 32 && cfg->size <= 2048, SC_ERR_ARG, "phantom: image size %d outside 32..2048",
          cfg->size);
    CHECK(cfg->positive_fraction >= 0 && cfg->positive_fraction <= 1, SC_ERR_ARG,
          "phantom: positive fraction %g outside [0, 1]", cfg->positive_fraction);
    CHECK(cfg->marker_fraction >= 0 && cfg->marker_fraction <= 1, SC_ERR_ARG,
          "phantom: marker fraction %g outside [0, 1]", cfg->marker_fraction);
    ph = sc_calloc(1, sizeof *ph);
    CHECK_ALLOC(ph);
    ph->cfg = *cfg;
    ph->size = cfg->size;
    size_t n = (size_t)cfg->size * cfg->size;
    ph->key_anatomy = rng_key(cfg->seed, "phantom-anatomy");
    ph->key_lesion = rng_key(cfg->seed, "phantom-lesion");
    ph->key_noise = rng_key(cfg->seed, "phantom-noise");
    ph->key_label = rng_key(cfg->seed, "phantom-label");
    ph->key_split = rng_key(cfg->seed, "phantom-split");
    ph->key_marker = rng_key(cfg->seed, "phantom-marker");
    ph->key_texture = rng_key(cfg->seed, "phantom-texture");
    ph->dens = sc_calloc(n, sizeof(float));
    ph->air = sc_calloc(n, sizeof(float));
    ph->lung = sc_calloc(n, sizeof(float));
    ph->vessel = sc_calloc(n, sizeof(float));
    ph->opac = sc_calloc(n, sizeof(float));
    ph->field = sc_calloc(n, sizeof(float));
    ph->grid_cap = (cfg->size + 4) * (cfg->size + 4);
    ph->grid = sc_calloc((size_t)ph->grid_cap, sizeof(float));
    ph->lesion_bits = sc_calloc(n, 1);
    ph->segments = sc_calloc(PH_MAX_SEGMENTS, sizeof(segment_t));
    CHECK_ALLOC(ph->dens);
    CHECK_ALLOC(ph->air);
    CHECK_ALLOC(ph->lung);
    CHECK_ALLOC(ph->vessel);
    CHECK_ALLOC(ph->opac);
    CHECK_ALLOC(ph->field);
    CHECK_ALLOC(ph->grid);
    CHECK_ALLOC(ph->lesion_bits);
    CHECK_ALLOC(ph->segments);
cleanup:
    if (rc < 0) {
        phantom_destroy(ph);
        return NULL;
    }
    return ph;
}

void phantom_destroy(phantom_t *ph)
{
    if (!ph)
        return;
    sc_free(ph->dens);
    sc_free(ph->air);
    sc_free(ph->lung);
    sc_free(ph->vessel);
    sc_free(ph->opac);
    sc_free(ph->field);
    sc_free(ph->grid);
    sc_free(ph->lesion_bits);
    sc_free(ph->segments);
    sc_free(ph);
}

int phantom_label(const phantom_config_t *cfg, uint32_t index)
{
    rng_stream_t s;
    rng_stream_init(&s, rng_key(cfg->seed, "phantom-label"), index, 0, 0);
    return rng_stream_uniform(&s) < cfg->positive_fraction;
}

int phantom_split(const phantom_config_t *cfg, uint32_t index)
{
    rng_stream_t s;
    rng_stream_init(&s, rng_key(cfg->seed, "phantom-split"), index, 0, 0);
    double u = rng_stream_uniform(&s);
    return u < 0.70 ? 0 : u < 0.85 ? 1 : 2;
}

void phantom_image_id(uint32_t index, char *buf, size_t size)
{
    snprintf(buf, size, "phantom-%06u", (unsigned)index);
}

/* Pass 1: anatomy densities, lung air and the soft lung field, per pixel. */
static void render_anatomy(phantom_t *ph, const anatomy_t *A, float *parenchyma_grid, int pgw, int pgh,
                           float pcell)
{
    int S = ph->size;
    for (int py = 0; py < S; py++) {
        double Y = (py + 0.5) / S - 0.5;
        for (int px = 0; px < S; px++) {
            double X = (px + 0.5) / S - 0.5, u, v;
            to_anatomy(A, X, Y, &u, &v);
            size_t p = (size_t)py * S + px;
            /* Body outline: neck widening into the shoulders; thickness ~ a cylinder. */
            double hw = A->neck_hw + (A->body_hw - A->neck_hw) * smoothstep(-0.02, A->shoulder_v, v);
            hw *= 1.0 + 0.05 * sin(M_PI * clampd(v, 0.0, 1.0)) - 0.10 * smoothstep(0.4, 1.0, v);
            double r = u / hw, t_body = 1.0 - r * r;
            double body = t_body > 0 ? pow(t_body, 0.6) : 0.0;
            double dens = A->soft * (0.2 + 0.8 * body) * smoothstep(0.0, 0.03, t_body);
            /* Mediastinum and heart: extra soft tissue between the lungs; the heart
               merges with the diaphragm below. */
            double heart = heart_frac(A, u, v);
            double med = 1.0 - smoothstep(A->med_hw, A->med_hw + 0.03, fabs(u - 0.01));
            double below = smoothstep(A->v_cp[1] - 0.10, A->v_cp[1] - 0.02, v);
            dens += 0.07 * fmax(med * smoothstep(0.05, 0.2, v), heart * (1.0 - below));
            /* Lungs. */
            double lung = 0.0, air = 0.0;
            for (int side = 0; side < 2; side++) {
                double across, depth;
                double l = lung_side(A, side, u, v, &across, &depth);
                if (l <= 0.0)
                    continue;
                /* Thin lung at its edges: air fades toward the pleura. */
                double thick = 0.3 + 0.7 * pow(fmax(0.0, 1.0 - across * across), 0.45);
                double apex = 0.7 + 0.3 * smoothstep(0.0, 0.3, depth);
                lung = fmax(lung, l * (1.0 - heart));
                air = fmax(air, A->air * l * thick * apex * (1.0 - 0.85 * heart));
                /* Hilum: vessels and nodes at the medial lung, mid height. */
                double hu = (side ? 1 : -1) * (A->med_hw + 0.045), hv = A->hilum_v + (side ? 0.015 : 0.0);
                double d2 = (u - hu) * (u - hu) + (v - hv) * (v - hv);
                if (d2 < 16 * 0.028 * 0.028)
                    dens += 0.10 * exp(-d2 / (2 * 0.028 * 0.028));
                /* Breast shadows over the lower lung fields. */
                if (A->breast > 0) {
                    double bu = (side ? 1 : -1) * 0.26, bv = A->v_cp[side] - 0.02;
                    double dd = sqrt((u - bu) * (u - bu) + (v - bv) * (v - bv));
                    dens += A->breast * (1.0 - smoothstep(A->breast_r - 0.03, A->breast_r, dd)) *
                            smoothstep(bv - 0.12, bv, v);
                }
            }
            dens += bones(A, u, v, body, lung);
            if (air > 0.0) {
                /* Parenchyma: faint mottled texture of the lung. */
                float n = noise_at(parenchyma_grid, pgw, pgh, px / pcell, py / pcell);
                air *= 0.93 + 0.14 * n;
            }
            if (fabs(u - A->spine_u) < 0.15 && v < A->carina_v + 0.12)
                dens -= 0.12 * airway(A, u, v) * smoothstep(0.0, 0.05, t_body);
            if (A->bubble > 0) {
                double bu = 0.17, bv = diaphragm_v(A, 1, 0.17) + 0.045;
                double q = ((u - bu) / 0.055) * ((u - bu) / 0.055) + ((v - bv) / 0.03) * ((v - bv) / 0.03);
                dens -= A->bubble * (1.0 - smoothstep(0.45, 1.0, q));
            }
            ph->dens[p] = (float)dens;
            ph->air[p] = (float)air;
            ph->lung[p] = (float)lung;
        }
    }
}

/* Pass 2: bronchovascular markings, branching from each hilum. */
static void render_vessels(phantom_t *ph, const anatomy_t *A, rng_stream_t *s)
{
    int S = ph->size, n_seg = 0;
    typedef struct tip { double u, v, angle, width, value; int steps; } tip_t;
    tip_t stack[256];
    for (int side = 0; side < 2; side++) {
        double sgn = side ? 1.0 : -1.0;
        int trunks = 7 + (int)rng_stream_below(s, 4);
        int top = 0;
        for (int k = 0; k < trunks && top < 256; k++) {
            /* Angle from the lateral horizontal, positive downward: spread up, out and down. */
            double ang = -1.2 + 2.5 * (k + uni(s, 0.2, 0.8)) / trunks;
            tip_t t = {sgn * (A->med_hw + 0.04), A->hilum_v + uni(s, -0.03, 0.03), ang,
                       uni(s, 0.005, 0.008), uni(s, 0.8, 1.0), 0};
            stack[top++] = t;
        }
        while (top > 0 && n_seg < PH_MAX_SEGMENTS) {
            tip_t t = stack[--top];
            for (int step = 0; step < 16 && n_seg < PH_MAX_SEGMENTS; step++) {
                double len = uni(s, 0.014, 0.024);
                double nu = t.u + sgn * len * cos(t.angle), nv = t.v + len * sin(t.angle);
                double across, depth;
                double l = lung_side(A, side, nu, nv, &across, &depth);
                if (l < 0.5 && t.steps > 2)
                    break;
                segment_t *sg = &ph->segments[n_seg++];
                to_pixel(A, S, t.u, t.v, &sg->x0, &sg->y0);
                to_pixel(A, S, nu, nv, &sg->x1, &sg->y1);
                sg->width = (float)(t.width * S * A->scale * 0.6);
                sg->value = (float)t.value;
                t.u = nu;
                t.v = nv;
                t.steps++;
                t.angle += uni(s, -0.25, 0.25);
                t.width *= 0.87;
                t.value *= 0.86;
                if (t.width < 0.0012)
                    break;
                if (rng_stream_uniform(s) < 0.3 && top < 256) {
                    tip_t b = t;
                    b.angle += (rng_stream_uniform(s) < 0.5 ? -1 : 1) * uni(s, 0.35, 0.7);
                    b.width *= 0.8;
                    stack[top++] = b;
                }
            }
        }
    }
    memset(ph->vessel, 0, (size_t)S * S * sizeof(float));
    for (int i = 0; i < n_seg; i++) {
        const segment_t *sg = &ph->segments[i];
        float w = sg->width < 0.6f ? 0.6f : sg->width, reach = 2.5f * w + 1.0f;
        int x0 = (int)floorf(fminf(sg->x0, sg->x1) - reach), x1 = (int)ceilf(fmaxf(sg->x0, sg->x1) + reach);
        int y0 = (int)floorf(fminf(sg->y0, sg->y1) - reach), y1 = (int)ceilf(fmaxf(sg->y0, sg->y1) + reach);
        if (x0 < 0) x0 = 0;
        if (y0 < 0) y0 = 0;
        if (x1 > S - 1) x1 = S - 1;
        if (y1 > S - 1) y1 = S - 1;
        /* Thin vessels look fainter, not thinner than a pixel. */
        float value = sg->value * fminf(1.0f, sg->width / 0.8f + 0.3f);
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                float d = seg_dist((float)x, (float)y, sg->x0, sg->y0, sg->x1, sg->y1) / w;
                if (d < 2.5f) {
                    float val = value * expf(-d * d);
                    float *dst = &ph->vessel[(size_t)y * S + x];
                    if (val > *dst)
                        *dst = val;
                }
            }
    }
}

/* Hard lung mask test used for placing findings and markers. */
static inline int in_lung(const phantom_t *ph, int x, int y)
{
    return x >= 0 && y >= 0 && x < ph->size && y < ph->size && ph->lung[(size_t)y * ph->size + x] >= 0.5f;
}

/* Pass 3: opacities. Fills opac, lesion_bits and info->boxes. */
static void render_lesions(phantom_t *ph, uint32_t index, phantom_info_t *info)
{
    int S = ph->size;
    rng_stream_t s;
    rng_stream_init(&s, ph->key_lesion, index, 0, 0);
    memset(ph->opac, 0, (size_t)S * S * sizeof(float));
    memset(ph->lesion_bits, 0, (size_t)S * S);
    info->n_lesions = 0;
    if (!info->label)
        return;
    double pick = rng_stream_uniform(&s);
    int wanted = pick < 0.5 ? 1 : pick < 0.85 ? 2 : 3;
    for (int attempt = 0; attempt < 12 && info->n_lesions < wanted; attempt++) {
        int k = info->n_lesions;
        double r = S * (0.03 + 0.10 * pow(rng_stream_uniform(&s), 1.4));
        int cx = -1, cy = -1;
        int half = (int)(0.5 * r);
        for (int tries = 0; tries < 400; tries++) {
            int x = (int)rng_stream_below(&s, (uint32_t)S), y = (int)rng_stream_below(&s, (uint32_t)S);
            if (in_lung(ph, x, y) && in_lung(ph, x - half, y) && in_lung(ph, x + half, y) &&
                in_lung(ph, x, y - half) && in_lung(ph, x, y + half)) {
                cx = x;
                cy = y;
                break;
            }
        }
        if (cx < 0)
            continue;
        int nb = 2 + (int)rng_stream_below(&s, 3);
        double bx[4], by[4], ca[4], sa[4], irx[4], iry[4];
        for (int b = 0; b < nb; b++) {
            bx[b] = cx + 0.45 * r * rng_stream_normal(&s);
            by[b] = cy + 0.45 * r * rng_stream_normal(&s);
            double ang = uni(&s, 0, M_PI);
            ca[b] = cos(ang);
            sa[b] = sin(ang);
            irx[b] = 1.0 / (r * uni(&s, 0.4, 0.85));
            iry[b] = 1.0 / (r * uni(&s, 0.4, 0.85));
        }
        double amp = uni(&s, 0.35, 0.9);
        /* Region that can hold the lesion; lattices for its lobulation and texture. */
        int reach = (int)ceil(3.2 * r) + 2;
        int x0 = cx - reach, x1 = cx + reach, y0 = cy - reach, y1 = cy + reach;
        if (x0 < 0) x0 = 0;
        if (y0 < 0) y0 = 0;
        if (x1 > S - 1) x1 = S - 1;
        if (y1 > S - 1) y1 = S - 1;
        float lob_cell = (float)fmax(2.0, 0.6 * r), tex_cell = (float)fmax(1.5, r / 3.5);
        int lgw = (int)((x1 - x0 + 1) / lob_cell) + 3, lgh = (int)((y1 - y0 + 1) / lob_cell) + 3;
        int tgw = (int)((x1 - x0 + 1) / tex_cell) + 3, tgh = (int)((y1 - y0 + 1) / tex_cell) + 3;
        if (lgw * lgh + tgw * tgh > ph->grid_cap)
            continue;
        float *lob = ph->grid, *tex = ph->grid + lgw * lgh;
        noise_lattice(ph->key_texture, index, 2u * (uint32_t)attempt, lgw, lgh, lob);
        noise_lattice(ph->key_texture, index, 2u * (uint32_t)attempt + 1, tgw, tgh, tex);
        int bx0 = S, by0 = S, bx1 = -1, by1 = -1;
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                size_t p = (size_t)y * S + x;
                if (ph->lung[p] < 0.5f)
                    continue;
                double f = 0.0;
                for (int b = 0; b < nb; b++) {
                    double dx = x - bx[b], dy = y - by[b];
                    double qx = (ca[b] * dx + sa[b] * dy) * irx[b], qy = (-sa[b] * dx + ca[b] * dy) * iry[b];
                    f += exp(-0.5 * (qx * qx + qy * qy));
                }
                f *= 0.55 + 0.9 * noise_at(lob, lgw, lgh, (x - x0) / lob_cell, (y - y0) / lob_cell);
                if (f <= 0.5)
                    continue;
                double edge = pow(smoothstep(0.5, 1.1, f), 0.8);
                double t = noise_at(tex, tgw, tgh, (x - x0) / tex_cell, (y - y0) / tex_cell);
                double o = amp * edge * (0.55 + 0.45 * t);
                if (o <= 0.0)
                    continue;
                if (o > ph->opac[p])
                    ph->opac[p] = (float)o;
                ph->lesion_bits[p] |= (uint8_t)(1u << k);
                if (x < bx0) bx0 = x;
                if (x > bx1) bx1 = x;
                if (y < by0) by0 = y;
                if (y > by1) by1 = y;
            }
        if (bx1 < 0)
            continue;
        phantom_box_t box = {bx0, by0, bx1 - bx0 + 1, by1 - by0 + 1};
        info->boxes[k] = box;
        info->n_lesions++;
    }
    if (info->n_lesions == 0)
        info->label = 0; /* cannot happen with real lungs; keeps label and boxes consistent */
}

/* 5x7 glyphs of the lead markers, one row per byte (bit 4 = leftmost). */
static const uint8_t glyph_l[7] = {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f};
static const uint8_t glyph_r[7] = {0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11};

/* Pass 4: a lead marker outside the lungs (a distractor), into dens. */
static void render_marker(phantom_t *ph, uint32_t index, phantom_info_t *info)
{
    int S = ph->size;
    rng_stream_t s;
    rng_stream_init(&s, ph->key_marker, index, 0, 0);
    info->marker = 0;
    if (rng_stream_uniform(&s) >= ph->cfg.marker_fraction)
        return;
    const uint8_t *glyph = rng_stream_uniform(&s) < 0.5 ? glyph_l : glyph_r;
    int cell = (int)lround(S * uni(&s, 0.006, 0.010));
    if (cell < 1)
        cell = 1;
    int gw = 5 * cell + 2 * cell, gh = 7 * cell + 2 * cell; /* glyph plus a margin */
    for (int tries = 0; tries < 300; tries++) {
        int x0 = (int)rng_stream_below(&s, (uint32_t)(S - gw)), y0 = (int)rng_stream_below(&s, (uint32_t)(S - gh));
        int clear = 1;
        for (int y = y0 - cell; y < y0 + gh + cell && clear; y++)
            for (int x = x0 - cell; x < x0 + gw + cell && clear; x++)
                if (x >= 0 && y >= 0 && x < S && y < S && ph->lung[(size_t)y * S + x] > 0.0f)
                    clear = 0;
        if (!clear)
            continue;
        float bright = (float)uni(&s, 1.05, 1.3);
        for (int gy = 0; gy < 7; gy++)
            for (int gx = 0; gx < 5; gx++) {
                if (!(glyph[gy] & (0x10 >> gx)))
                    continue;
                for (int y = 0; y < cell; y++)
                    for (int x = 0; x < cell; x++) {
                        size_t p = (size_t)(y0 + cell + gy * cell + y) * S + (x0 + cell + gx * cell + x);
                        ph->dens[p] = bright;
                    }
            }
        info->marker = 1;
        phantom_box_t box = {x0, y0, gw, gh};
        info->marker_box = box;
        return;
    }
}

/* Separable Gaussian blur of buf [S][S] in place (scratch = ph->field). */
static void blur(phantom_t *ph, float *buf, double sigma)
{
    int S = ph->size, radius = (int)ceil(3.0 * sigma);
    if (radius < 1)
        return;
    if (radius > 16)
        radius = 16;
    float kernel[33];
    double sum = 0;
    for (int i = -radius; i <= radius; i++)
        sum += kernel[i + radius] = (float)exp(-0.5 * i * i / (sigma * sigma));
    for (int i = 0; i <= 2 * radius; i++)
        kernel[i] = (float)(kernel[i] / sum);
    float *tmp = ph->field;
    for (int y = 0; y < S; y++) {
        const float *row = buf + (size_t)y * S;
        for (int x = 0; x < S; x++) {
            float acc = 0;
            for (int k = -radius; k <= radius; k++) {
                int xx = x + k < 0 ? 0 : x + k >= S ? S - 1 : x + k;
                acc += kernel[k + radius] * row[xx];
            }
            tmp[(size_t)y * S + x] = acc;
        }
    }
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            float acc = 0;
            for (int k = -radius; k <= radius; k++) {
                int yy = y + k < 0 ? 0 : y + k >= S ? S - 1 : y + k;
                acc += kernel[k + radius] * tmp[(size_t)yy * S + x];
            }
            buf[(size_t)y * S + x] = acc;
        }
}

int phantom_render(phantom_t *ph, uint32_t index, uint8_t *img, phantom_info_t *info,
                   uint8_t *lesion_mask, uint8_t *lung_mask)
{
    int S = ph->size;
    size_t n = (size_t)S * S;
    memset(info, 0, sizeof *info);
    info->label = phantom_label(&ph->cfg, index);
    info->split = phantom_split(&ph->cfg, index);

    anatomy_t A;
    rng_stream_t s;
    rng_stream_init(&s, ph->key_anatomy, index, 0, 0);
    anatomy_sample(&s, &A);

    /* Parenchymal texture lattice: cells of ~2.5 % of the image. */
    float pcell = (float)fmax(2.0, S * 0.025);
    int pgw = (int)(S / pcell) + 3, pgh = pgw;
    noise_lattice(ph->key_texture, index, 0xffffffffu, pgw, pgh, ph->grid);
    render_anatomy(ph, &A, ph->grid, pgw, pgh, pcell);
    rng_stream_t vs;
    rng_stream_init(&vs, ph->key_anatomy, index, 1, 0);
    render_vessels(ph, &A, &vs);
    render_lesions(ph, index, info);

    /* Compose: lung air, partly replaced by fluid in opacities; vessels inside lungs. */
    for (size_t p = 0; p < n; p++) {
        float o = ph->opac[p];
        ph->dens[p] += -ph->air[p] * (1.0f - o) + 0.16f * ph->vessel[p] * ph->air[p] / (float)A.air * (1.0f - 0.6f * o);
    }
    render_marker(ph, index, info);
    blur(ph, ph->dens, A.blur * S / 256.0);

    /* Tone curve (a table over density in [0, 1]), gradient, noise and quantization. */
    enum { TONE_N = 1024 };
    float tone[TONE_N + 1];
    for (int k = 0; k <= TONE_N; k++)
        tone[k] = (float)(A.lo + (A.hi - A.lo) * pow((double)k / TONE_N, A.gamma));
    rng_ctr_t ctr = {{index, 0, 0, 0}};
    uint32_t words[4];
    for (size_t p = 0; p < n; p += 4) {
        ctr.c[2] = (uint32_t)(p >> 2);
        rng_philox(ph->key_noise, ctr, words);
        /* Box-Muller on the 16-bit halves of two words: 4 normals per Philox call. */
        float z[4];
        for (int k = 0; k < 2; k++) {
            float u1 = ((words[k] & 0xffff) + 0.5f) * (1.0f / 65536.0f);
            float u2 = ((words[k] >> 16) + 0.5f) * (1.0f / 65536.0f);
            float rr = sqrtf(-2.0f * logf(u1));
            z[2 * k] = rr * cosf(6.2831853f * u2);
            z[2 * k + 1] = rr * sinf(6.2831853f * u2);
        }
        for (int k = 0; k < 4 && p + k < n; k++) {
            size_t q = p + k;
            int x = (int)(q % S), y = (int)(q / S);
            double d = ph->dens[q], v;
            if (d > 1.0) {
                v = A.hi + (1.0 - A.hi) * clampd(d - 1.0, 0.0, 1.0) * 3.0;
            } else {
                double f = clampd(d, 0.0, 1.0) * TONE_N;
                int k = (int)f;
                if (k > TONE_N - 1)
                    k = TONE_N - 1;
                v = tone[k] + (f - k) * (tone[k + 1] - tone[k]);
            }
            v *= 1.0 + A.grad_x * ((x + 0.5) / S - 0.5) + A.grad_y * ((y + 0.5) / S - 0.5);
            v += A.noise * (0.4 + v) * z[k];
            v = clampd(v, 0.0, 1.0);
            img[q] = (uint8_t)lround(v * 255.0);
        }
    }
    if (lesion_mask)
        memcpy(lesion_mask, ph->lesion_bits, n);
    if (lung_mask)
        for (size_t p = 0; p < n; p++)
            lung_mask[p] = ph->lung[p] >= 0.5f;
    return SC_OK;
}

/* ----------------------------------------------------------- data set files */

typedef struct strbuf {
    char *data;
    size_t len, cap;
} strbuf_t;

static int sb_printf(strbuf_t *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sb_printf(strbuf_t *sb, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = sb->cap - sb->len;
        int n = vsnprintf(sb->data ? sb->data + sb->len : NULL, sb->data ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return SC_ERR_ARG;
        if (sb->data && (size_t)n < room) {
            sb->len += (size_t)n;
            return SC_OK;
        }
        size_t cap = sb->cap ? sb->cap : 4096;
        while (cap < sb->len + (size_t)n + 1)
            cap *= 2;
        char *grown = realloc(sb->data, cap);
        if (!grown)
            return SC_ERR_NOMEM;
        sb->data = grown;
        sb->cap = cap;
    }
}

/* Relative column-major RLE (docs/methods.md section 2) of bit `bit` of mask [S][S]. */
static int rle_append(strbuf_t *sb, const uint8_t *mask, int S, int bit)
{
    int rc = SC_OK;
    long prev_end = 0, run_start = -1, total = (long)S * S;
    int first = 1;
    for (long p = 0; p <= total; p++) {
        int on = 0;
        if (p < total) {
            long x = p / S, y = p % S;
            on = (mask[(size_t)y * S + x] >> bit) & 1;
        }
        if (on && run_start < 0) {
            run_start = p;
        } else if (!on && run_start >= 0) {
            CHECK_RC(sb_printf(sb, first ? "%ld %ld" : " %ld %ld", run_start - prev_end, p - run_start));
            first = 0;
            prev_end = p;
            run_start = -1;
        }
    }
cleanup:
    return rc;
}

int phantom_make_dirs(const char *dir)
{
    char path[4096];
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        SC_ERROR("cannot create directory '%s': %s", dir, strerror(errno));
        return SC_ERR_IO;
    }
    int n = snprintf(path, sizeof path, "%s/images", dir);
    if (n < 0 || (size_t)n >= sizeof path) {
        SC_ERROR("directory name too long: '%s'", dir);
        return SC_ERR_ARG;
    }
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        SC_ERROR("cannot create directory '%s': %s", path, strerror(errno));
        return SC_ERR_IO;
    }
    return SC_OK;
}

int phantom_write_images(const phantom_config_t *cfg, const char *dir, phantom_format_t format,
                         uint32_t begin, uint32_t end, char **rows, size_t *rows_len)
{
    int rc = SC_OK;
    strbuf_t sb = {0};
    phantom_t *ph = NULL;
    uint8_t *img = NULL, *bits = NULL;
    *rows = NULL;
    *rows_len = 0;
    ph = phantom_create(cfg);
    CHECK(ph, SC_ERR_ARG, "phantom: invalid configuration");
    size_t n = (size_t)cfg->size * cfg->size;
    img = sc_calloc(n, 1);
    bits = sc_calloc(n, 1);
    CHECK_ALLOC(img);
    CHECK_ALLOC(bits);
    CHECK_RC(sb_printf(&sb, "%s", "")); /* an empty range still returns a string */
    for (uint32_t i = begin; i < end; i++) {
        phantom_info_t info;
        CHECK_RC(phantom_render(ph, i, img, &info, bits, NULL));
        char id[32], path[4096];
        phantom_image_id(i, id, sizeof id);
        int len = snprintf(path, sizeof path, "%s/images/%s.png", dir, id);
        CHECK(len > 0 && (size_t)len < sizeof path, SC_ERR_ARG, "path too long under '%s'", dir);
        CHECK_RC(png_write_gray8(path, cfg->size, cfg->size, img));
        if (format == PHANTOM_FORMAT_RSNA) {
            if (!info.label)
                CHECK_RC(sb_printf(&sb, "%s,,,,,0\n", id));
            for (int k = 0; k < info.n_lesions; k++)
                CHECK_RC(sb_printf(&sb, "%s,%d,%d,%d,%d,1\n", id, info.boxes[k].x, info.boxes[k].y,
                                   info.boxes[k].w, info.boxes[k].h));
        } else {
            if (!info.label)
                CHECK_RC(sb_printf(&sb, "%s, -1\n", id));
            for (int k = 0; k < info.n_lesions; k++) {
                CHECK_RC(sb_printf(&sb, "%s, ", id));
                CHECK_RC(rle_append(&sb, bits, cfg->size, k));
                CHECK_RC(sb_printf(&sb, "\n"));
            }
        }
    }
    *rows = sb.data;
    *rows_len = sb.len;
    sb.data = NULL;
cleanup:
    free(sb.data);
    sc_free(img);
    sc_free(bits);
    phantom_destroy(ph);
    return rc;
}

static int write_text(const char *path, const char *head, const char *body, size_t body_len)
{
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        SC_ERROR("cannot write '%s': %s", path, strerror(errno));
        return SC_ERR_IO;
    }
    int ok = fputs(head, fp) >= 0 && (body_len == 0 || fwrite(body, 1, body_len, fp) == body_len);
    ok = (fclose(fp) == 0) && ok;
    if (!ok) {
        SC_ERROR("cannot write '%s': %s", path, strerror(errno));
        remove(path);
        return SC_ERR_IO;
    }
    return SC_OK;
}

int phantom_write_csvs(const phantom_config_t *cfg, const char *dir, phantom_format_t format,
                       uint32_t count, const char *rows, size_t rows_len)
{
    int rc = SC_OK;
    strbuf_t sb = {0};
    char path[4096];
    static const char *split_names[3] = {"train", "val", "test"};
    int len = snprintf(path, sizeof path, "%s/%s", dir,
                       format == PHANTOM_FORMAT_RSNA ? "labels.csv" : "train-rle.csv");
    CHECK(len > 0 && (size_t)len < sizeof path, SC_ERR_ARG, "path too long under '%s'", dir);
    CHECK_RC(write_text(path,
                        format == PHANTOM_FORMAT_RSNA ? "patientId,x,y,width,height,Target\n"
                                                      : "ImageId, EncodedPixels\n",
                        rows, rows_len));
    for (uint32_t i = 0; i < count; i++) {
        char id[32];
        phantom_image_id(i, id, sizeof id);
        CHECK_RC(sb_printf(&sb, "%s,%s\n", id, split_names[phantom_split(cfg, i)]));
    }
    snprintf(path, sizeof path, "%s/splits.csv", dir);
    CHECK_RC(write_text(path, "Image_ID,Split\n", sb.data, sb.len));
cleanup:
    free(sb.data);
    return rc;
}

int phantom_write_dataset(const phantom_config_t *cfg, const char *dir, phantom_format_t format,
                          uint32_t count)
{
    int rc = SC_OK;
    char *rows = NULL;
    size_t rows_len = 0;
    CHECK_RC(phantom_make_dirs(dir));
    CHECK_RC(phantom_write_images(cfg, dir, format, 0, count, &rows, &rows_len));
    CHECK_RC(phantom_write_csvs(cfg, dir, format, count, rows, rows_len));
cleanup:
    free(rows);
    return rc;
}
