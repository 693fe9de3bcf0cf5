/* rng.h — small deterministic random numbers (splitmix64 + xoshiro256**), so initialisation, data order and
 * tests reproduce bit for bit from a seed on every machine. */
#ifndef SC_RNG_H
#define SC_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} sc_rng;

static inline uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline void rng_seed(sc_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rng_next(sc_rng *r) {
    uint64_t *s = r->s, result = ((s[1] * 5) << 7 | (s[1] * 5) >> 57) * 9, t = s[1] << 17;
    s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3], s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

/* uniform in [0, 1) with 53 bits */
static inline double rng_uniform(sc_rng *r) { return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0); }

/* uniform integer in [0, n) without modulo bias worth caring about (n << 2^64) */
static inline uint64_t rng_below(sc_rng *r, uint64_t n) { return n ? rng_next(r) % n : 0; }

/* standard normal (Box-Muller; one value per call keeps the stream simple to reason about) */
static inline double rng_normal(sc_rng *r) {
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
