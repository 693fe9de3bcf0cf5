// f16_gemv.cu — the FP16 matrix-vector product of decode (y = x W^T for one or a few tokens): at batch 1 a GEMM
// library call is mostly overhead and cuBLAS's small-n kernels are not graph-friendly everywhere, while this is a
// plain bandwidth-bound loop. One warp per output row, half2 loads (coalesced), FP32 accumulation.
#include "kernels/common.cuh"

enum { GEMV_WARPS = 4 };

__global__ void __launch_bounds__(32 * GEMV_WARPS)
    f16_gemv_kernel(__half *y, float *yf, const __half2 *x, const __half2 *W, int rows, int cols) {
    int lane = threadIdx.x & 31, r = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5), t = blockIdx.y;
    int nw = cols >> 1;
    float acc = 0.0f;
    if (r < rows) {  // no early return: the whole warp takes part in warp_sum
        const __half2 *wr = W + (int64_t)r * nw, *xr = x + (int64_t)t * nw;
        for (int i = lane; i < nw; i += 32) {
            float2 w = __half22float2(wr[i]), v = __half22float2(xr[i]);
            acc = fmaf(w.x, v.x, acc);
            acc = fmaf(w.y, v.y, acc);
        }
    }
    acc = warp_sum(acc);
    if (lane == 0 && r < rows) {
        if (y) y[(int64_t)t * rows + r] = f2h(acc);
        else yf[(int64_t)t * rows + r] = acc;
    }
}

extern "C" int kn_f16_gemv(kn_half *y, float *y_f32, const kn_half *x, const kn_half *W, int T, int rows, int cols,
                           cudaStream_t stream) {
    if (T <= 0 || rows <= 0) return 0;
    if (cols % 2) return kn_fail("kn_f16_gemv: cols %d must be even", cols);
    dim3 grid((rows + GEMV_WARPS - 1) / GEMV_WARPS, T);
    f16_gemv_kernel<<<grid, 32 * GEMV_WARPS, 0, stream>>>((__half *)y, y_f32, (const __half2 *)x, (const __half2 *)W,
                                                          rows, cols);
    KN_CHECK_LAUNCH();
    return 0;
}
