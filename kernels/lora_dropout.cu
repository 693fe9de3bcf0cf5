// lora_dropout.cu — LoRA training's dropout on the adapter's input (host/cpu/lora_dropout.c is the twin): the keep
// mask of element i is a hash of (key, slot, i), so backward regenerates it instead of storing it and the CPU and
// CUDA trainers draw the same masks (the same splitmix64 finaliser, float for float). One thread per element.
#include "kernels/common.cuh"
#include "kernels/lora_dropout_mask.h" // kn_lora_drop_factor: the mask, shared with the CPU twin

#ifdef SC_CUDA_EMULATION  // the emulator's host compiler does not contract a * b + c: plain operators round the same
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
#endif

__global__ void lora_dropout_kernel(__half *out, const __half *x, const __half *add, int64_t n, uint64_t key, int slot,
                                    float p, float keep_scale) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float v = __fmul_rn(h2f(x[i]), kn_lora_drop_factor(key, slot, i, p, keep_scale));  // no FMA: as the twin
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
