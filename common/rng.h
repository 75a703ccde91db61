/*
 * rng.h - the counter-based random generator (Philox4x32-10).
 *
 * Every random draw in salcheck is a pure function of a key and a counter:
 * key = (job seed, purpose), counter = (variant, image, sample, index). The
 * same draw is therefore made on any rank, in any order, so maps and
 * re-initialized weights do not depend on the rank count (docs/design.md,
 * "Determinism"). Purposes are strings hashed with rng_hash_str.
 */
#ifndef RNG_H
#define RNG_H

#include <stdint.h>

typedef struct rng_key { uint32_t k[2]; } rng_key_t;
typedef struct rng_ctr { uint32_t c[4]; } rng_ctr_t;

/* FNV-1a 64-bit hash of a string (e.g. a node name or a purpose). */
uint64_t rng_hash_str(const char *s);

/* Key from a seed and a purpose string. */
rng_key_t rng_key(uint64_t seed, const char *purpose);

/* Philox4x32-10: four independent 32-bit words for (key, counter). */
void rng_philox(rng_key_t key, rng_ctr_t ctr, uint32_t out[4]);

/*
 * A stream: a key, three fixed counter words (a, b, c) and a running index.
 * rng_stream_* draws consume the stream in order; the i-th draw is the same
 * whatever was drawn from other streams.
 */
typedef struct rng_stream {
    rng_key_t key;
    uint32_t a, b, c; /* e.g. variant, image, sample */
    uint32_t index;   /* next block of 4 words */
    uint32_t buf[4];
    int avail;        /* words left in buf */
    int has_spare;    /* Box-Muller second value */
    double spare;
} rng_stream_t;

void rng_stream_init(rng_stream_t *s, rng_key_t key, uint32_t a, uint32_t b, uint32_t c);
uint32_t rng_stream_u32(rng_stream_t *s);
/* Uniform in [0, 1) with 53 random bits. */
double rng_stream_uniform(rng_stream_t *s);
/* Standard normal (Box-Muller). */
double rng_stream_normal(rng_stream_t *s);
/* Uniform integer in [0, n) without modulo bias. */
uint32_t rng_stream_below(rng_stream_t *s, uint32_t n);

#endif
