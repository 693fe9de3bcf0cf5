// lora_dropout.cu — LoRA training's dropout on the adapter's input (host/cpu/lora_dropout.c is the twin): the keep
// mask of element i is a hash of (key, slot, i), so backward regenerates it instead of storing it and the CPU and
// CUDA trainers draw the same masks (the same splitmix64 finaliser, float for float). One thread per element.
#include "kernels/common.cuh"

#ifdef SC_CUDA_EMULATION  // the emulator's host compiler does not contract a * b + c: plain operators round the same
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
#endif

// 0 (dropped) or keep_scale (kept): the arithmetic of host/cpu/lora_dropout.c lora_drop_factor
__device__ __forceinline__ float drop_factor(uint64_t key, int slot, int64_t i, float p, float keep_scale) {
    uint64_t z = key ^ ((uint64_t)slot << 48) ^ (uint64_t)i;
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    float u = (float)(z >> 40) * (1.0f / 16777216.0f);
    return u < p ? 0.0f : keep_scale;
}

__global__ void lora_dropout_kernel(__half *out, const __half *x, const __half *add, int64_t n, uint64_t key, int slot,
                                    float p, float keep_scale) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float v = __fmul_rn(h2f(x[i]), drop_factor(key, slot, i, p, keep_scale));  // no FMA: the twin's rounding
        if (add) v = __fadd_rn(h2f(add[i]), v);
        out[i] = f2h(v);
    }
}

extern "C" void kn_lora_dropout(kn_half *out, const kn_half *x, const kn_half *add, int64_t n, uint64_t key, int slot,
                                float p, cudaStream_t stream) {
    if (n <= 0) return;
    lora_dropout_kernel<<<kn_blocks(n, 256), 256, 0, stream>>>((__half *)out, (const __half *)x, (const __half *)add,
                                                               n, key, slot, p, 1.0f / (1.0f - p));
    KN_CHECK_LAUNCH();
}
