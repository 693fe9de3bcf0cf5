// lora_apply.cu — a LoRA adapter applied without merging (host/engine_cuda.c): y += scale * (x A^T) B^T on one
// linear layer's FP16 output, A [r, cols] and B [rows, r] in FP32 on the device. Two small kernels: the down
// projection h = x A^T (r-dim, FP32) with one warp per (row, rank) output, and the up projection adding scale * h B^T
// into y, one thread per output. Each output is a fixed-order sum that does not depend on T, so K rows verified at
// once give the bits of K single rows (speculative decoding), and decode steps replay in a CUDA graph.
#include "kernels/common.cuh"

enum { DOWN_WARPS = 4, UP_THREADS = 128 };

__global__ void __launch_bounds__(32 * DOWN_WARPS)
    lora_down_kernel(float *h, const __half *x, const float *A, int r, int cols) {
    int lane = threadIdx.x & 31, j = blockIdx.x * DOWN_WARPS + (threadIdx.x >> 5), t = blockIdx.y;
    float acc = 0.0f;
    if (j < r) {  // no early return: the whole warp takes part in warp_sum
        const __half *xr = x + (int64_t)t * cols;
        const float *ar = A + (int64_t)j * cols;
        for (int i = lane; i < cols; i += 32) acc = fmaf(h2f(xr[i]), ar[i], acc);
    }
    acc = warp_sum(acc);
    if (lane == 0 && j < r) h[(int64_t)t * r + j] = acc;
}

__global__ void lora_up_kernel(__half *y, int ldy, const float *h, const float *B, float scale, int rows, int r) {
    int i = blockIdx.x * blockDim.x + threadIdx.x, t = blockIdx.y;
    if (i >= rows) return;
    const float *ht = h + (int64_t)t * r, *bi = B + (int64_t)i * r;
    float acc = 0.0f;
    for (int j = 0; j < r; j++) acc = fmaf(ht[j], bi[j], acc);
    __half *yp = y + (int64_t)t * ldy + i;
    *yp = f2h(h2f(*yp) + scale * acc);
}

extern "C" void kn_lora_apply(kn_half *y, int ldy, const kn_half *x, const float *A, const float *B, float scale,
                              int T, int rows, int cols, int r, float *h, cudaStream_t stream) {
    if (T <= 0 || r <= 0 || rows <= 0 || scale == 0.0f) return;
    dim3 gd((r + DOWN_WARPS - 1) / DOWN_WARPS, T), gu((rows + UP_THREADS - 1) / UP_THREADS, T);
    lora_down_kernel<<<gd, 32 * DOWN_WARPS, 0, stream>>>(h, (const __half *)x, A, r, cols);
    KN_CHECK_LAUNCH();
    lora_up_kernel<<<gu, UP_THREADS, 0, stream>>>((__half *)y, ldy, h, B, scale, rows, r);
    KN_CHECK_LAUNCH();
}
