/*
 * posclass.c - position classes of feature maps (posclass.h).
 *
 * Every function walks the positions in scan order and inserts each into an
 * open-addressing hash table keyed by a hash of the position's tuple (input
 * values, window cell classes, or the inputs' classes). A hash match is
 * confirmed by comparing the tuples themselves, so a class never joins two
 * positions whose tuples differ. The first position inserted for a tuple is
 * the class representative, which makes rep[p] the first position of p's
 * class in scan order.
 */
#include "nn/posclass.h"

#include <string.h>

#define POSCLASS_EMPTY (-1)

size_t posclass_table_size(size_t hw)
{
    size_t cap = 16;
    while (cap < 2 * hw)
        cap *= 2;
    return cap;
}

static inline uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 31);
}

/* Callbacks of one tuple kind: hash of position p, equality of positions p and q. */
typedef struct tuple_kind {
    uint64_t (*hash)(const void *ctx, int p);
    int (*equal)(const void *ctx, int p, int q);
    const void *ctx;
} tuple_kind_t;

/* Fills rep[0..hw) and returns 1 when some class has two or more positions. */
static int classify(const tuple_kind_t *t, int hw, int32_t *rep, int32_t *table)
{
    const size_t cap = posclass_table_size((size_t)hw), mask = cap - 1;
    memset(table, 0xff, sizeof(int32_t) * cap); /* POSCLASS_EMPTY everywhere */
    int dup = 0;
    for (int p = 0; p < hw; p++) {
        size_t slot = (size_t)t->hash(t->ctx, p) & mask;
        for (;;) {
            int32_t q = table[slot];
            if (q == POSCLASS_EMPTY) {
                table[slot] = p;
                rep[p] = p;
                break;
            }
            if (t->equal(t->ctx, q, p)) {
                rep[p] = q;
                dup = 1;
                break;
            }
            slot = (slot + 1) & mask;
        }
    }
    return dup;
}

/* ---- input image: the c values at a position ---- */

typedef struct input_ctx {
    int c, hw;
    const float *x;
} input_ctx_t;

static uint64_t input_hash(const void *vctx, int p)
{
    const input_ctx_t *k = vctx;
    uint64_t h = 0;
    for (int ch = 0; ch < k->c; ch++) {
        float v = k->x[(size_t)ch * k->hw + p];
        uint32_t bits;
        if (v == 0.0f)
            v = 0.0f; /* -0 and +0 are one value */
        memcpy(&bits, &v, sizeof bits);
        h = mix(h, bits);
    }
    return h;
}

static int input_equal(const void *vctx, int p, int q)
{
    const input_ctx_t *k = vctx;
    for (int ch = 0; ch < k->c; ch++)
        if (!(k->x[(size_t)ch * k->hw + p] == k->x[(size_t)ch * k->hw + q]))
            return 0;
    return 1;
}

int posclass_input(int c, int hw, const float *x, int32_t *rep, int32_t *table)
{
    input_ctx_t k = {.c = c, .hw = hw, .x = x};
    tuple_kind_t t = {.hash = input_hash, .equal = input_equal, .ctx = &k};
    return classify(&t, hw, rep, table);
}

/* ---- windowed layers: the classes of the kh x kw input cells, -1 for padding ---- */

typedef struct window_ctx {
    const int32_t *in_rep;
    int h, w, kh, kw, sh, sw, pt, pl, ow;
} window_ctx_t;

static inline int32_t window_cell(const window_ctx_t *k, int oy, int ox, int ky, int kx)
{
    int iy = oy * k->sh - k->pt + ky, ix = ox * k->sw - k->pl + kx;
    if (iy < 0 || iy >= k->h || ix < 0 || ix >= k->w)
        return -1;
    return k->in_rep[iy * k->w + ix];
}

static uint64_t window_hash(const void *vctx, int p)
{
    const window_ctx_t *k = vctx;
    int oy = p / k->ow, ox = p % k->ow;
    uint64_t h = 0;
    for (int ky = 0; ky < k->kh; ky++)
        for (int kx = 0; kx < k->kw; kx++)
            h = mix(h, (uint64_t)(uint32_t)window_cell(k, oy, ox, ky, kx));
    return h;
}

static int window_equal(const void *vctx, int p, int q)
{
    const window_ctx_t *k = vctx;
    int py = p / k->ow, px = p % k->ow, qy = q / k->ow, qx = q % k->ow;
    for (int ky = 0; ky < k->kh; ky++)
        for (int kx = 0; kx < k->kw; kx++)
            if (window_cell(k, py, px, ky, kx) != window_cell(k, qy, qx, ky, kx))
                return 0;
    return 1;
}

int posclass_window(int in_dup, const int32_t *in_rep, int h, int w, int kh, int kw, int sh,
                    int sw, int pt, int pl, int oh, int ow, int32_t *out_rep, int32_t *table)
{
    /* With distinct input positions two windows can only be equal when both
     * lie wholly in the padding; such outputs see no input at all. */
    if (!in_dup)
        return 0;
    window_ctx_t k = {.in_rep = in_rep, .h = h, .w = w, .kh = kh, .kw = kw, .sh = sh,
                      .sw = sw, .pt = pt, .pl = pl, .ow = ow};
    tuple_kind_t t = {.hash = window_hash, .equal = window_equal, .ctx = &k};
    return classify(&t, oh * ow, out_rep, table);
}

/* ---- position-wise combination of k maps ---- */

typedef struct combine_ctx {
    int k;
    const int32_t *const *in_rep;
} combine_ctx_t;

static uint64_t combine_hash(const void *vctx, int p)
{
    const combine_ctx_t *k = vctx;
    uint64_t h = 0;
    for (int i = 0; i < k->k; i++)
        h = mix(h, (uint64_t)(uint32_t)k->in_rep[i][p]);
    return h;
}

static int combine_equal(const void *vctx, int p, int q)
{
    const combine_ctx_t *k = vctx;
    for (int i = 0; i < k->k; i++)
        if (k->in_rep[i][p] != k->in_rep[i][q])
            return 0;
    return 1;
}

int posclass_combine(int k, const int *in_dup, const int32_t *const *in_rep, int hw,
                     int32_t *out_rep, int32_t *table)
{
    /* One input with distinct positions makes every tuple distinct. */
    for (int i = 0; i < k; i++)
        if (!in_dup[i])
            return 0;
    if (k == 1) {
        memcpy(out_rep, in_rep[0], sizeof(int32_t) * (size_t)hw);
        return 1;
    }
    combine_ctx_t c = {.k = k, .in_rep = in_rep};
    tuple_kind_t t = {.hash = combine_hash, .equal = combine_equal, .ctx = &c};
    return classify(&t, hw, out_rep, table);
}

void posclass_apply(float *y, int c, int hw, const int32_t *rep, int32_t *scratch)
{
    /* runs [start, start + len) of duplicates sharing one representative (a
     * flat region's row): scratch[2 r], scratch[2 r + 1]; at most hw runs */
    int runs = 0;
    for (int p = 0; p < hw;) {
        if (rep[p] == p) {
            p++;
            continue;
        }
        const int start = p, r = rep[p];
        while (p < hw && rep[p] == r)
            p++;
        scratch[2 * runs] = start;
        scratch[2 * runs + 1] = p - start;
        runs++;
    }
    /* a representative is never a duplicate, so no fill reads a filled value */
    for (int ch = 0; ch < c; ch++) {
        float *plane = y + (size_t)ch * hw;
        for (int k = 0; k < runs; k++) {
            float *dst = plane + scratch[2 * k];
            const float v = plane[rep[scratch[2 * k]]];
            for (int q = 0, len = scratch[2 * k + 1]; q < len; q++)
                dst[q] = v;
        }
    }
}
