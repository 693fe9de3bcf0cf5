/* swiglu.c — the Llama MLP activation out = silu(gate) * up, elementwise, and its backward in one pass.
 * silu(g) = g * sigmoid(g), written as g / (1 + exp(-g)) like PyTorch. vexp saturates at ~2e38 instead of inf, so
 * for g -> -inf the quotient is a tiny negative number (the limit is 0) and nothing becomes NaN. */
#include "host/cpu/ops.h"
#include "host/cpu/par.h"
#include "host/cpu/vexp.h"

void swiglu_forward(float *out, const float *gate, const float *up, int64_t n) {
#pragma omp parallel for simd schedule(static) if (PAR(n))
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + vexp(-g)) * up[i];
    }
}

/* d silu(g)/dg = s + g s (1 - s) with s = sigmoid(g) */
void swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n) {
#pragma omp parallel for simd schedule(static) if (PAR(n))
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i], u = up[i], d = dout[i];
        float s = 1.0f / (1.0f + vexp(-g));
        float silu = g * s;
        dgate[i] = d * u * (s + silu * (1.0f - s));
        dup[i] = d * silu;
    }
}
