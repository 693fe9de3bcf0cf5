/* swiglu.c — the Llama MLP activation out = silu(gate) * up, elementwise, and its backward in one pass.
 * silu(g) = g * sigmoid(g), written as g / (1 + exp(-g)) like PyTorch; for g -> -inf exp overflows to inf and the
 * quotient is -0, which is the right limit, so no clamping is needed. */
#include <math.h>

#include "ops.h"

void swiglu_forward(float *out, const float *gate, const float *up, int64_t n) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

/* d silu(g)/dg = s + g s (1 - s) with s = sigmoid(g) */
void swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i], u = up[i], d = dout[i];
        float s = 1.0f / (1.0f + expf(-g));
        float silu = g * s;
        dgate[i] = d * u * (s + silu * (1.0f - s));
        dup[i] = d * silu;
    }
}
