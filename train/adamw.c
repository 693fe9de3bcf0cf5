/* adamw.c — see adamw.h. Loops are plain elementwise code over restrict pointers so the compiler vectorises them;
 * OpenMP splits them statically, which changes nothing numerically (every element is independent). */
#include "train/adamw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"

enum { SUMSQ_CHUNK = 1 << 16 };

void adamw_update(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, int64_t n,
                  float grad_mul, float wd, const adamw_hparams *h) {
    const float b1 = h->beta1, b2 = h->beta2, eps = h->eps;
    const double bc1 = 1.0 - pow((double)b1, (double)h->t), bc2 = 1.0 - pow((double)b2, (double)h->t);
    const float step_size = (float)((double)h->lr / bc1), inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    const float decay = 1.0f - h->lr * wd, c1 = 1.0f - b1, c2 = 1.0f - b2;
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i] * grad_mul;
        float mi = b1 * m[i] + c1 * gi;
        float vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi, v[i] = vi;
        float denom = sqrtf(vi) * inv_sqrt_bc2 + eps;
        p[i] = p[i] * decay - step_size * mi / denom;
    }
}

void adamw_step(const sc_param *table, int ntensors, float *params, const float *grads, float *m, float *v,
                float grad_mul, const adamw_hparams *h) {
    for (int i = 0; i < ntensors; i++) {
        const sc_param *t = &table[i];
        float wd = t->ndim >= 2 ? h->weight_decay : 0.0f;
        adamw_update(params + t->offset, grads + t->offset, m + t->offset, v + t->offset, t->numel, grad_mul, wd, h);
    }
}

double grad_sumsq(const float *g, int64_t n) {
    int64_t nchunks = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
    double *part = sc_malloc(sizeof(double) * (size_t)(nchunks ? nchunks : 1));
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t a = c * SUMSQ_CHUNK, b = a + SUMSQ_CHUNK < n ? a + SUMSQ_CHUNK : n;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = a; i < b; i++) s += (double)g[i] * (double)g[i];
        part[c] = s;
    }
    double total = 0.0;
    for (int64_t c = 0; c < nchunks; c++) total += part[c];
    free(part);
    return total;
}

void grad_zero(float *g, int64_t n) {
    int64_t nchunks = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t a = c * SUMSQ_CHUNK, b = a + SUMSQ_CHUNK < n ? a + SUMSQ_CHUNK : n;
        memset(g + a, 0, sizeof(float) * (size_t)(b - a));
    }
}

float grad_multiplier(double sumsq_scaled, float loss_scale, float clip, double *norm_out) {
    double norm = sqrt(sumsq_scaled) / (double)loss_scale;
    if (norm_out) *norm_out = norm;
    double mul = 1.0 / (double)loss_scale;
    if (clip > 0 && norm > clip) mul *= (double)clip / (norm + 1e-6);
    return (float)mul;
}
