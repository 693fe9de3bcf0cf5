// common.cuh — what every kernels/*.cu shares: the check macros (CUDA and cuBLAS errors are fatal and name the
// file and line), FP16 load/store helpers, and deterministic warp/block reductions (fixed shuffle trees, partials
// summed in a fixed order: the same bits on every run).
#ifndef SC_KERNELS_COMMON_CUH
#define SC_KERNELS_COMMON_CUH

#include <cuda_fp16.h>  // __half, conversions
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/kernels.h"

// Prints "file:line: CUDA error <name>: <text> in <call>" and a hint, then exits: a failed launch or an illegal
// address leaves the context unusable, so there is nothing sensible to return to.
void kn_cuda_fail(cudaError_t err, const char *call, const char *file, int line);
void kn_cublas_fail(int status, const char *call, const char *file, int line);
// Records a message for kn_last_error() and returns -1.
int kn_fail(const char *fmt, ...);

#define KN_CHECK(call)                                                                                             \
    do {                                                                                                           \
        cudaError_t kn_err_ = (call);                                                                              \
        if (kn_err_ != cudaSuccess) kn_cuda_fail(kn_err_, #call, __FILE__, __LINE__);                              \
    } while (0)

// After every launch: catches bad configurations at once (asynchronous faults surface at the next sync).
#define KN_CHECK_LAUNCH() KN_CHECK(cudaGetLastError())

#define KN_CUBLAS(call)                                                                                            \
    do {                                                                                                           \
        int kn_st_ = (int)(call);                                                                                  \
        if (kn_st_ != 0) kn_cublas_fail(kn_st_, #call, __FILE__, __LINE__);                                        \
    } while (0)

static inline int kn_blocks(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    return (int)(b < 1 ? 1 : (b > 65535 * 8 ? 65535 * 8 : b));  // grid-stride loops cover the rest
}

__device__ __forceinline__ float h2f(__half h) { return __half2float(h); }
__device__ __forceinline__ __half f2h(float f) { return __float2half_rn(f); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ double warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024). Every thread gets the same value: the warp
// partials are added in warp order by each thread. Contains __syncthreads: call from uniform control flow.
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float part[32];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    if (lane == 0) part[w] = v;
    __syncthreads();
    float r = 0.0f;
    for (int i = 0; i < nw; i++) r += part[i];
    __syncthreads();  // part is reused by the next call
    return r;
}
__device__ __forceinline__ float block_max(float v) {
    __shared__ float part[32];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    if (lane == 0) part[w] = v;
    __syncthreads();
    float r = part[0];
    for (int i = 1; i < nw; i++) r = fmaxf(r, part[i]);
    __syncthreads();
    return r;
}
__device__ __forceinline__ double block_sum_d(double v) {
    __shared__ double part[32];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum_d(v);
    if (lane == 0) part[w] = v;
    __syncthreads();
    double r = 0.0;
    for (int i = 0; i < nw; i++) r += part[i];
    __syncthreads();
    return r;
}

#endif
