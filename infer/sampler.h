/* sampler.h — next-token choice from logits: greedy, or temperature with top-k, top-p, min-p; a repetition
 * penalty over the last tokens; a seeded RNG so a request reproduces. */
#ifndef SC_INFER_SAMPLER_H
#define SC_INFER_SAMPLER_H

#include <stdint.h>

#include "host/rng.h"

typedef struct {
    float temperature;    /* <= 0: greedy */
    int top_k;            /* <= 0: off */
    float top_p;          /* >= 1: off */
    float min_p;          /* <= 0: off; keep tokens with p >= min_p * p_max */
    float repeat_penalty; /* 1: off; logits of recent tokens: divided if > 0, multiplied if < 0 (CTRL) */
    int repeat_last_n;    /* how many recent tokens the penalty looks at */
    uint64_t seed;
} sc_sampling;

typedef struct {
    sc_sampling p;
    sc_rng rng;
    int V;
    int32_t *idx; /* scratch [V] */
    float *prob;  /* scratch [V] */
} sc_sampler;

void sampling_defaults(sc_sampling *p);
void sampler_init(sc_sampler *s, const sc_sampling *p, int V);
void sampler_free(sc_sampler *s);
/* Picks the next id; logits [V] is modified (penalty, temperature). history = the ids so far. */
int32_t sampler_sample(sc_sampler *s, float *logits, const int32_t *history, int n_history);
/* The distribution sampler_sample draws from (penalty and filters applied, renormalised) as dense dist [V];
 * returns its most likely id. logits is modified. Speculative decoding compares target and draft with it. */
int32_t sampler_dist(sc_sampler *s, float *logits, const int32_t *history, int n_history, float *dist);
/* One draw from a (not necessarily normalised) dense distribution [V], with this sampler's RNG. */
int32_t sampler_draw(sc_sampler *s, const float *dist);
/* A uniform draw in [0, 1) from this sampler's RNG. */
double sampler_uniform(sc_sampler *s);

#endif
