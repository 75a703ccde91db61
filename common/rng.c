/*
 * rng.c - Philox4x32-10 (Salmon et al., SC'11) and the stream helpers (see rng.h).
 */
#include "rng.h"

#include <math.h>

uint64_t rng_hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

rng_key_t rng_key(uint64_t seed, const char *purpose)
{
    /* Mix seed and purpose with splitmix64 so nearby seeds give distant keys. */
    uint64_t z = seed ^ rng_hash_str(purpose);
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    rng_key_t k = {{(uint32_t)z, (uint32_t)(z >> 32)}};
    return k;
}

static inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

void rng_philox(rng_key_t key, rng_ctr_t ctr, uint32_t out[4])
{
    uint32_t c0 = ctr.c[0], c1 = ctr.c[1], c2 = ctr.c[2], c3 = ctr.c[3];
    uint32_t k0 = key.k[0], k1 = key.k[1];
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo(0xD2511F53u, c0, &hi0);
        uint32_t lo1 = mulhilo(0xCD9E8D57u, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

void rng_stream_init(rng_stream_t *s, rng_key_t key, uint32_t a, uint32_t b, uint32_t c)
{
    s->key = key;
    s->a = a; s->b = b; s->c = c;
    s->index = 0;
    s->avail = 0;
    s->has_spare = 0;
    s->spare = 0.0;
}

uint32_t rng_stream_u32(rng_stream_t *s)
{
    if (s->avail == 0) {
        rng_ctr_t ctr = {{s->a, s->b, s->c, s->index++}};
        rng_philox(s->key, ctr, s->buf);
        s->avail = 4;
    }
    return s->buf[4 - s->avail--];
}

double rng_stream_uniform(rng_stream_t *s)
{
    uint64_t hi = rng_stream_u32(s) >> 5, lo = rng_stream_u32(s) >> 6;
    return (double)(hi * 67108864ULL + lo) * (1.0 / 9007199254740992.0);
}

double rng_stream_normal(rng_stream_t *s)
{
    if (s->has_spare) {
        s->has_spare = 0;
        return s->spare;
    }
    double u1 = rng_stream_uniform(s), u2 = rng_stream_uniform(s);
    if (u1 < 1e-300)
        u1 = 1e-300;
    double r = sqrt(-2.0 * log(u1)), t = 2.0 * M_PI * u2;
    s->spare = r * sin(t);
    s->has_spare = 1;
    return r * cos(t);
}

uint32_t rng_stream_below(rng_stream_t *s, uint32_t n)
{
    if (n <= 1)
        return 0;
    uint32_t limit = UINT32_MAX - UINT32_MAX % n;
    uint32_t x;
    do
        x = rng_stream_u32(s);
    while (x >= limit);
    return x % n;
}
