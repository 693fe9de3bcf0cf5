/* sampler.c — see sampler.h. Filters apply in llama.cpp's order: penalty, top-k, then softmax at temperature,
 * top-p, min-p, and a draw from what is left (renormalised). */
#include "infer/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"

void sampling_defaults(sc_sampling *p) {
    *p = (sc_sampling){.temperature = 0, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1.0f,
                       .repeat_last_n = 64, .seed = 0};
}

void sampler_init(sc_sampler *s, const sc_sampling *p, int V) {
    s->p = *p;
    s->V = V;
    rng_seed(&s->rng, p->seed);
    s->idx = sc_malloc((size_t)V * sizeof(int32_t));
    s->prob = sc_malloc((size_t)V * sizeof(float));
}

void sampler_free(sc_sampler *s) {
    free(s->idx);
    free(s->prob);
    s->idx = NULL, s->prob = NULL;
}

static const float *cmp_logits;
static int cmp_desc(const void *a, const void *b) {
    float x = cmp_logits[*(const int32_t *)a], y = cmp_logits[*(const int32_t *)b];
    return x < y ? 1 : x > y ? -1 : (*(const int32_t *)a - *(const int32_t *)b);
}

/* Applies the penalty and the filters: candidates idx[0..n) with unnormalised probabilities prob[0..n) (sorted
 * by logit, *tot their sum); greedy leaves the single argmax. What sampler_sample draws from and what speculative
 * verification compares (sampler_dist), so both sides of a draft see one distribution. */
static int sampler_filter(sc_sampler *s, float *logits, const int32_t *history, int n_history, double *tot) {
    const sc_sampling *p = &s->p;
    int V = s->V;
    if (p->repeat_penalty != 1.0f && p->repeat_penalty > 0) {
        int from = n_history - p->repeat_last_n;
        if (from < 0) from = 0;
        /* each distinct recent id once: mark with the sign bit of idx scratch */
        for (int i = from; i < n_history; i++) s->idx[history[i]] = -1;
        for (int i = from; i < n_history; i++) {
            int32_t id = history[i];
            if (s->idx[id] != -1) continue;
            s->idx[id] = 0;
            logits[id] = logits[id] > 0 ? logits[id] / p->repeat_penalty : logits[id] * p->repeat_penalty;
        }
    }
    if (p->temperature <= 0) {
        int32_t best = 0;
        for (int v = 1; v < V; v++)
            if (logits[v] > logits[best]) best = v;
        s->idx[0] = best, s->prob[0] = 1.0f, *tot = 1.0;
        return 1;
    }
    /* candidates sorted by logit; top-k caps how many are sorted at all */
    int n = V;
    for (int v = 0; v < V; v++) s->idx[v] = v;
    cmp_logits = logits; /* qsort has no context argument in C11; sampling runs under the engine lock */
    qsort(s->idx, (size_t)V, sizeof(int32_t), cmp_desc);
    if (p->top_k > 0 && p->top_k < n) n = p->top_k;
    float mx = logits[s->idx[0]];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (s->prob[i] = expf((logits[s->idx[i]] - mx) / p->temperature));
    for (int i = 0; i < n; i++) s->prob[i] = (float)(s->prob[i] / sum);
    if (p->top_p < 1.0f) {
        double c = 0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            c += s->prob[i];
            if (c >= p->top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
    }
    if (p->min_p > 0) {
        int keep = 1;
        while (keep < n && s->prob[keep] >= p->min_p * s->prob[0]) keep++;
        n = keep;
    }
    double t = 0;
    for (int i = 0; i < n; i++) t += s->prob[i];
    *tot = t;
    return n;
}

int32_t sampler_sample(sc_sampler *s, float *logits, const int32_t *history, int n_history) {
    double tot;
    int n = sampler_filter(s, logits, history, n_history, &tot);
    if (s->p.temperature <= 0) return s->idx[0]; /* greedy draws nothing: the RNG stays where it was */
    double u = rng_uniform(&s->rng) * tot, c = 0;
    for (int i = 0; i < n; i++) {
        c += s->prob[i];
        if (u < c) return s->idx[i];
    }
    return s->idx[n - 1];
}

int32_t sampler_dist(sc_sampler *s, float *logits, const int32_t *history, int n_history, float *dist) {
    double tot;
    int n = sampler_filter(s, logits, history, n_history, &tot);
    memset(dist, 0, (size_t)s->V * sizeof(float));
    for (int i = 0; i < n; i++) dist[s->idx[i]] = (float)(s->prob[i] / tot);
    return s->idx[0];
}

int32_t sampler_draw(sc_sampler *s, const float *dist) {
    double tot = 0;
    int last = 0;
    for (int v = 0; v < s->V; v++)
        if (dist[v] > 0) tot += dist[v], last = v;
    double u = rng_uniform(&s->rng) * tot, c = 0;
    for (int v = 0; v < s->V; v++) {
        c += dist[v];
        if (dist[v] > 0 && u < c) return v;
    }
    return last;
}

double sampler_uniform(sc_sampler *s) { return rng_uniform(&s->rng); }
