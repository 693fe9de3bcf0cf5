// int8_gemv.cu — the INT8 side of inference (host/cpu/int8_gemv.c is the CPU twin, host/quant.c the fast CPU
// path): per-token activation quantization, the W8A8 matrix-vector product of decode with __dp4a (sm_61+: four
// int8 products summed into an int32 in one instruction, the MX450's best integer path), and dequantization to
// FP16 for the prefill GEMMs and the embedding.
// Activations are signed here (dp4a takes s8 x s8), so the CPU's +128 offset and its sum-of-weights correction
// are not needed: the integers multiplied are the same.
#include "kernels/common.cuh"

enum { Q_THREADS = 128, GEMV_WARPS = 4 };

extern "C" int kn_int8_check(int cols, int group) {
    if (cols % 4 || group % 4 || group <= 0 || group > cols)
        return kn_fail("INT8 on CUDA needs columns (%d) and group size (%d) that are multiples of 4", cols, group);
    return 0;
}

// One block per (group, token). Same float expressions as act_quant in host/quant.c.
__global__ void __launch_bounds__(Q_THREADS)
    act_quant_kernel(int8_t *xq, float *xs, const __half *x, int cols, int group, int ng) {
    int g = blockIdx.x, t = blockIdx.y, c0 = g * group, c1 = c0 + group < cols ? c0 + group : cols;
    const __half *xr = x + (int64_t)t * cols;
    float amax = 0.0f;
    for (int c = c0 + threadIdx.x; c < c1; c += blockDim.x) amax = fmaxf(amax, fabsf(h2f(xr[c])));
    amax = block_max(amax);
    float s = amax / 127.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
    if (threadIdx.x == 0) xs[(int64_t)t * ng + g] = s;
    for (int c = c0 + threadIdx.x; c < c1; c += blockDim.x)
        xq[(int64_t)t * cols + c] = (int8_t)(int)rintf(h2f(xr[c]) * inv);
}

// One warp per output row, GEMV_WARPS rows per block, blockIdx.y = token. Lane i takes 4-byte words i, i + 32, ...
// (coalesced); the int32 partial of a group is scaled into a float as soon as the lane's words leave the group
// (the group index is only recomputed then: per row, never). A lane's integer partial stays far below 2^24, so
// its float conversion is exact.
__global__ void __launch_bounds__(32 * GEMV_WARPS)
    int8_gemv_kernel(__half *y, float *yf, const int *xq, const float *xs, const int *W, const __half *scale, int rows,
                     int cols, int group, int ng) {
    int lane = threadIdx.x & 31, r = blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5), t = blockIdx.y;
    int nw = cols >> 2, gw = group >> 2;
    float acc = 0.0f;
    if (r < rows) {  // no early return: the whole warp takes part in warp_sum below
        const int *wr = W + (int64_t)r * nw, *xr = xq + (int64_t)t * nw;
        const __half *sr = scale + (int64_t)r * ng;
        const float *xsr = xs + (int64_t)t * ng;
        int p = 0, g = lane / gw, gend = (g + 1) * gw;
        for (int i = lane; i < nw; i += 32) {
            if (i >= gend) {
                acc += h2f(sr[g]) * xsr[g] * (float)p;
                p = 0, g = i / gw, gend = (g + 1) * gw;
            }
            p = __dp4a(wr[i], xr[i], p);
        }
        if (lane < nw) acc += h2f(sr[g]) * xsr[g] * (float)p;
    }
    acc = warp_sum(acc);
    if (lane == 0 && r < rows) {
        if (y) y[(int64_t)t * rows + r] = f2h(acc);
        else yf[(int64_t)t * rows + r] = acc;
    }
}

// Rows [r0, r0 + n / nc) and columns [c0, c0 + nc) of W [*, cols], times their scales, into out [n / nc, nc]:
// the whole matrix (r0 = c0 = 0, nc = cols) or one tile of it, so a GEMM over an INT8 matrix needs an FP16 scratch
// of one tile only (host/cuda_model_step.c's frozen base). The same float expression as the CPU twin.
__global__ void int8_dequant_kernel(__half *out, const int8_t *W, const __half *scale, int64_t n, int cols, int group,
                                    int ng, int64_t r0, int c0, int nc) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = r0 + i / nc;
        int c = c0 + (int)(i % nc);
        out[i] = f2h((float)W[r * cols + c] * h2f(scale[r * ng + c / group]));
    }
}

__global__ void int8_embedding_kernel(__half *out, const int32_t *ids, const int8_t *W, const __half *scale, int C,
                                      int group, int ng) {
    int t = blockIdx.x;
    int64_t r = ids[t];
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        out[(int64_t)t * C + c] = f2h((float)W[r * C + c] * h2f(scale[r * ng + c / group]));
}

static int ngroups(int cols, int group) { return (cols + group - 1) / group; }

extern "C" void kn_act_quant(int8_t *xq, float *xs, const kn_half *x, int T, int cols, int group,
                             cudaStream_t stream) {
    if (T <= 0) return;
    act_quant_kernel<<<dim3(ngroups(cols, group), T), Q_THREADS, 0, stream>>>(xq, xs, (const __half *)x, cols, group,
                                                                              ngroups(cols, group));
    KN_CHECK_LAUNCH();
}

extern "C" void kn_int8_gemv(kn_half *y, float *y_f32, const int8_t *xq, const float *xs, const int8_t *W,
                             const kn_half *scale, int T, int rows, int cols, int group, cudaStream_t stream) {
    if (T <= 0 || rows <= 0) return;
    dim3 grid((rows + GEMV_WARPS - 1) / GEMV_WARPS, T);
    int8_gemv_kernel<<<grid, 32 * GEMV_WARPS, 0, stream>>>((__half *)y, y_f32, (const int *)xq, xs, (const int *)W,
                                                           (const __half *)scale, rows, cols, group,
                                                           ngroups(cols, group));
    KN_CHECK_LAUNCH();
}

extern "C" void kn_int8_dequant_tile(kn_half *out, const int8_t *W, const kn_half *scale, int cols, int group,
                                     int64_t r0, int nr, int c0, int nc, cudaStream_t stream) {
    int64_t n = (int64_t)nr * nc;
    if (n <= 0) return;
    int8_dequant_kernel<<<kn_blocks(n, 256), 256, 0, stream>>>((__half *)out, W, (const __half *)scale, n, cols, group,
                                                               ngroups(cols, group), r0, c0, nc);
    KN_CHECK_LAUNCH();
}

extern "C" void kn_int8_dequant(kn_half *out, const int8_t *W, const kn_half *scale, int rows, int cols, int group,
                                cudaStream_t stream) {
    kn_int8_dequant_tile(out, W, scale, cols, group, 0, rows, 0, cols, stream);
}

extern "C" void kn_int8_embedding(kn_half *out, const int32_t *ids, const int8_t *W, const kn_half *scale, int T,
                                  int C, int group, cudaStream_t stream) {
    if (T <= 0) return;
    int8_embedding_kernel<<<T, 256, 0, stream>>>((__half *)out, ids, W, (const __half *)scale, C, group,
                                                 ngroups(C, group));
    KN_CHECK_LAUNCH();
}
