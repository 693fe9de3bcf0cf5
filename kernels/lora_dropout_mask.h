/* lora_dropout_mask.h — the keep mask of LoRA training's dropout, written once for the CUDA kernel
 * (kernels/lora_dropout.cu) and its CPU twin (host/cpu/lora_dropout.c): element i of (layer, module) slot is kept by
 * a splitmix64 hash of (key, slot, i), so both draw the same masks float for float and backward regenerates them.
 * Plain C that nvcc also compiles for the device; no CUDA types. */
#ifndef SC_KERNELS_LORA_DROPOUT_MASK_H
#define SC_KERNELS_LORA_DROPOUT_MASK_H

#include <stdint.h>

#ifdef __CUDACC__
#define KN_HOST_DEVICE __host__ __device__
#else
#define KN_HOST_DEVICE
#endif

/* 0 (dropped, with probability p) or keep_scale = 1/(1-p) (kept: inverted dropout, as torch.nn.Dropout). */
static inline KN_HOST_DEVICE float kn_lora_drop_factor(uint64_t key, int slot, int64_t i, float p, float keep_scale) {
    uint64_t z = key ^ ((uint64_t)slot << 48) ^ (uint64_t)i;
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    float u = (float)(z >> 40) * (1.0f / 16777216.0f);
    return u < p ? 0.0f : keep_scale;
}

#endif
