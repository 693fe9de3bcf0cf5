// amp.cu — mixed-precision helpers: FP32 <-> FP16 casts (round to nearest even), gradient unscaling with an
// inf/nan flag, and the deterministic sum of squares behind the global gradient norm.
#include "kernels/common.cuh"

enum { SUMSQ_CHUNK = KN_SUMSQ_CHUNK, SUMSQ_THREADS = 256 };  // kn_sumsq_workspace: kernels/sizes.h

__global__ void f32_to_f16_kernel(__half *dst, const float *src, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = f2h(src[i]);
}

__global__ void f16_to_f32_kernel(float *dst, const __half *src, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = h2f(src[i]);
}

// Every thread that sees a non-finite value stores the same 1: a benign race, no atomics needed.
__global__ void unscale_kernel(float *g, int64_t n, float mul, int *flag) {
    int bad = 0;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float v = g[i] * mul;
        g[i] = v;
        bad |= !isfinite(v);
    }
    if (bad) *flag = 1;
}

// part[b] = sum of squares of chunk b, in double
__global__ void __launch_bounds__(SUMSQ_THREADS) sumsq_part_kernel(double *part, const float *g, int64_t n) {
    int64_t a = (int64_t)blockIdx.x * SUMSQ_CHUNK, b = a + SUMSQ_CHUNK < n ? a + SUMSQ_CHUNK : n;
    double s = 0.0;
    for (int64_t i = a + threadIdx.x; i < b; i += SUMSQ_THREADS) {
        double v = g[i];
        s += v * v;
    }
    s = block_sum_d(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

// One block: thread i sums chunks i, i + 256, ... in order, then the fixed block tree.
__global__ void __launch_bounds__(SUMSQ_THREADS) sumsq_final_kernel(double *result, const double *part, int64_t nparts) {
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < nparts; i += SUMSQ_THREADS) s += part[i];
    s = block_sum_d(s);
    if (threadIdx.x == 0) *result = s;
}

extern "C" void kn_f32_to_f16(kn_half *dst, const float *src, int64_t n, cudaStream_t stream) {
    if (n <= 0) return;
    f32_to_f16_kernel<<<kn_blocks(n, 256), 256, 0, stream>>>((__half *)dst, src, n);
    KN_CHECK_LAUNCH();
}

extern "C" void kn_f16_to_f32(float *dst, const kn_half *src, int64_t n, cudaStream_t stream) {
    if (n <= 0) return;
    f16_to_f32_kernel<<<kn_blocks(n, 256), 256, 0, stream>>>(dst, (const __half *)src, n);
    KN_CHECK_LAUNCH();
}

extern "C" void kn_unscale(float *g, int64_t n, float mul, int *found_nonfinite, cudaStream_t stream) {
    if (n <= 0) return;
    unscale_kernel<<<kn_blocks(n, 256), 256, 0, stream>>>(g, n, mul, found_nonfinite);
    KN_CHECK_LAUNCH();
}

extern "C" void kn_sumsq(double *result, const float *g, int64_t n, void *workspace, cudaStream_t stream) {
    int64_t parts = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
    if (parts > 0) {
        sumsq_part_kernel<<<(unsigned)parts, SUMSQ_THREADS, 0, stream>>>((double *)workspace, g, n);
        KN_CHECK_LAUNCH();
    }
    sumsq_final_kernel<<<1, SUMSQ_THREADS, 0, stream>>>(result, (const double *)workspace, parts);
    KN_CHECK_LAUNCH();
}
