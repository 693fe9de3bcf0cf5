/* lora_dropout.h — the CPU twin of kernels/lora_dropout.cu: LoRA training's dropout on the adapter's input. The
 * keep mask of element i of (layer, module) slot is a hash of (key, slot, i), so backward regenerates it instead
 * of storing it, a resumed run draws the same masks, and the CPU (host/lora_cpu.c) and CUDA (host/cuda_lora.c)
 * trainers drop the same elements. */
#ifndef SC_CPU_LORA_DROPOUT_H
#define SC_CPU_LORA_DROPOUT_H

#include <stdint.h>

/* 0 (dropped, with probability p) or keep_scale = 1/(1-p) (kept: inverted dropout, as torch.nn.Dropout). */
static inline float lora_drop_factor(uint64_t key, int slot, int64_t i, float p, float keep_scale) {
    uint64_t z = key ^ ((uint64_t)slot << 48) ^ (uint64_t)i;
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    float u = (float)(z >> 40) * (1.0f / 16777216.0f);
    return u < p ? 0.0f : keep_scale;
}

/* out[i] = (add ? add[i] : 0) + x[i] * lora_drop_factor(key, slot, i, p, 1/(1-p)) for i < n (out may alias add):
 * forward drop(x) with add NULL, backward dx += drop'(dxd) with add = out = dx. */
void lora_dropout(float *out, const float *x, const float *add, int64_t n, uint64_t key, int slot, float p);

#endif
