/* lora_dropout.c — see lora_dropout.h (the CPU twin of kernels/lora_dropout.cu). */
#include "host/cpu/lora_dropout.h"

#include <stddef.h>

void lora_dropout(float *out, const float *x, const float *add, int64_t n, uint64_t key, int slot, float p) {
    float ks = 1.0f / (1.0f - p);
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] * kn_lora_drop_factor(key, slot, i, p, ks);
        out[i] = add ? add[i] + v : v;
    }
}
