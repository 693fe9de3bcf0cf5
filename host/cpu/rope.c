/* rope.c — HF Llama rotary position embedding (rotate-half: pairs (i, i + hd/2)), in place, and its inverse for
 * backward. The cos/sin table reproduces PyTorch's float32 rounding: HF computes inv_freq = 1/theta^(2i/hd) in
 * float32 and the angle inv_freq * pos as a float32 product, so we do the same; cos/sin of that float angle are
 * then taken in double and rounded once, which is within an ulp of torch's float32 cos/sin. (Computing the angle
 * itself in double would be "more exact" but differs from the HF model by ~2e-4 at position 4096.) */
#include <math.h>
#include <stdlib.h>

#include "host/error.h"
#include "host/cpu/ops.h"
#include "host/cpu/par.h"

void rope_inv_freq(float *out, int head_dim, float theta) {
    for (int i = 0; i < head_dim / 2; i++) out[i] = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
}

/* cs[t*half + i] = cos, cs[T*half + t*half + i] = sin of angle(pos0 + t, i) */
static float *rope_table(int T, int head_dim, int pos0, float theta) {
    int half = head_dim / 2;
    float *cs = sc_malloc(sizeof(float) * 2 * (size_t)T * (size_t)(half > 0 ? half : 1));
    float *sn = cs + (int64_t)T * half;
    float inv_freq[half > 0 ? half : 1];
    rope_inv_freq(inv_freq, head_dim, theta);
#pragma omp parallel for schedule(static) if (PAR((int64_t)T * half * 16)) /* sin+cos: ~16x a multiply-add */
    for (int t = 0; t < T; t++) {
        float pos = (float)(pos0 + t);
        for (int i = 0; i < half; i++) {
            double ang = (double)(inv_freq[i] * pos); /* float32 product, as in HF */
            cs[(int64_t)t * half + i] = (float)cos(ang);
            sn[(int64_t)t * half + i] = (float)sin(ang);
        }
    }
    return cs;
}

/* dir = +1 rotates by +angle (forward), -1 by -angle (the transpose, i.e. backward) */
static void rope_apply(float *x, int T, int n_heads, int head_dim, int pos0, float theta, float dir) {
    if (T <= 0 || n_heads <= 0 || head_dim < 2) return;
    int half = head_dim / 2;
    float *cs = rope_table(T, head_dim, pos0, theta);
    const float *sn = cs + (int64_t)T * half;
    int64_t row = (int64_t)n_heads * head_dim;
#pragma omp parallel for schedule(static) if (PAR(T * row))
    for (int t = 0; t < T; t++) {
        const float *c = cs + (int64_t)t * half, *s = sn + (int64_t)t * half;
        for (int h = 0; h < n_heads; h++) {
            float *x1 = x + t * row + (int64_t)h * head_dim, *x2 = x1 + half;
#pragma omp simd
            for (int i = 0; i < half; i++) {
                float a = x1[i], b = x2[i], si = dir * s[i];
                /* HF: x * cos + rotate_half(x) * sin, rotate_half(x) = cat(-x2, x1) */
                x1[i] = a * c[i] - b * si;
                x2[i] = b * c[i] + a * si;
            }
        }
    }
    free(cs);
}

void rope_forward(float *x, int T, int n_heads, int head_dim, int pos0, float theta) {
    rope_apply(x, T, n_heads, head_dim, pos0, theta, 1.0f);
}

void rope_backward(float *dx, int T, int n_heads, int head_dim, int pos0, float theta) {
    rope_apply(dx, T, n_heads, head_dim, pos0, theta, -1.0f);
}
