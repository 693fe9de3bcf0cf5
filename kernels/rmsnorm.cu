// rmsnorm.cu — RMSNorm fused with the residual add before it (host/cpu/rmsnorm.c is the twin), forward and
// backward. One block per token row for the row-wise work; the weight gradient, a sum over tokens, is taken in two
// deterministic passes (fixed row ranges into a workspace, then the ranges added in order) instead of atomics.
#include "kernels/common.cuh"

enum { RMS_THREADS = 256, RMS_ROWS_PER_PART = KN_RMS_ROWS_PER_PART, RMS_COLS = 32, RMS_YS = 8 };  // sizes.h

// resid_out = resid_in + delta, rounded to FP16 first: rstd and norm_out use the stored value, which is what
// backward reads. Each element is read and written by the same thread, so resid_out may alias resid_in.
__global__ void __launch_bounds__(RMS_THREADS)
    rmsnorm_forward_kernel(__half *resid_out, __half *norm_out, float *rstd, const __half *resid_in,
                           const __half *delta, const __half *weight, int C, float eps) {
    int64_t row = (int64_t)blockIdx.x * C;
    const __half *a = resid_in + row;
    __half *r = resid_out + row, *o = norm_out + row;
    float ss = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float v = h2f(a[c]);
        if (delta) v += h2f(delta[row + c]);
        __half hv = f2h(v);
        r[c] = hv;
        float vr = h2f(hv);
        ss = fmaf(vr, vr, ss);
    }
    ss = block_sum(ss);
    float rs = rsqrtf(ss / (float)C + eps);
    if (threadIdx.x == 0) rstd[blockIdx.x] = rs;
    for (int c = threadIdx.x; c < C; c += blockDim.x) o[c] = f2h(h2f(weight[c]) * (h2f(r[c]) * rs));
}

// dx_c = rs w_c dy_c - x_c rs^3 / C * sum_k dy_k w_k x_k, plus the residual stream's own gradient.
__global__ void __launch_bounds__(RMS_THREADS)
    rmsnorm_backward_rows_kernel(__half *dresid_total, const __half *dnorm, const __half *dresid,
                                 const __half *resid_out, const float *rstd, const __half *weight, int C) {
    int64_t row = (int64_t)blockIdx.x * C;
    const __half *dy = dnorm + row, *x = resid_out + row;
    float dot = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) dot = fmaf(h2f(dy[c]) * h2f(weight[c]), h2f(x[c]), dot);
    dot = block_sum(dot);
    float rs = rstd[blockIdx.x];
    float k = dot * (rs * rs * rs) / (float)C;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float g = rs * h2f(weight[c]) * h2f(dy[c]) - h2f(x[c]) * k;
        if (dresid) g += h2f(dresid[row + c]);  // read before the write below: same thread, same element
        dresid_total[row + c] = f2h(g);
    }
}

// part[p, c] = sum over rows [p*RMS_ROWS_PER_PART, ...) of dy * x * rstd. Block (32 columns x 8 row lanes):
// lane y takes rows y, y+8, ... in order, then the 8 lanes are added in lane order.
__global__ void __launch_bounds__(RMS_COLS *RMS_YS)
    rmsnorm_dweight_part_kernel(float *part, const __half *dnorm, const __half *resid_out, const float *rstd, int T,
                                int C) {
    __shared__ float acc_s[RMS_YS][RMS_COLS + 1];
    int c = blockIdx.x * RMS_COLS + threadIdx.x;
    int t0 = blockIdx.y * RMS_ROWS_PER_PART, t1 = min(t0 + RMS_ROWS_PER_PART, T);
    float acc = 0.0f;
    if (c < C)
        for (int t = t0 + threadIdx.y; t < t1; t += RMS_YS)
            acc = fmaf(h2f(dnorm[(int64_t)t * C + c]) * h2f(resid_out[(int64_t)t * C + c]), rstd[t], acc);
    acc_s[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float s = 0.0f;
        for (int y = 0; y < RMS_YS; y++) s += acc_s[y][threadIdx.x];
        part[(int64_t)blockIdx.y * C + c] = s;
    }
}

__global__ void rmsnorm_dweight_sum_kernel(float *dweight_acc, float scale, const float *part, int nparts, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float s = 0.0f;
    for (int p = 0; p < nparts; p++) s += part[(int64_t)p * C + c];
    dweight_acc[c] += scale * s;
}

static int rms_threads(int C) { return C >= 1024 ? RMS_THREADS : (C >= 256 ? 128 : 64); }

extern "C" void kn_rmsnorm_forward(kn_half *resid_out, kn_half *norm_out, float *rstd, const kn_half *resid_in,
                                   const kn_half *delta, const kn_half *weight, int T, int C, float eps,
                                   cudaStream_t stream) {
    if (T <= 0 || C <= 0) return;
    rmsnorm_forward_kernel<<<T, rms_threads(C), 0, stream>>>((__half *)resid_out, (__half *)norm_out, rstd,
                                                             (const __half *)resid_in, (const __half *)delta,
                                                             (const __half *)weight, C, eps);
    KN_CHECK_LAUNCH();
}

extern "C" void kn_rmsnorm_backward(kn_half *dresid_total, float *dweight_acc, float dweight_scale,
                                    const kn_half *dnorm, const kn_half *dresid, const kn_half *resid_out,
                                    const float *rstd, const kn_half *weight, int T, int C, void *workspace,
                                    cudaStream_t stream) {
    if (T <= 0 || C <= 0) return;
    if (dweight_acc) {  // reads dnorm, resid_out, rstd only: order against the row kernel does not matter
        int nparts = (T + RMS_ROWS_PER_PART - 1) / RMS_ROWS_PER_PART;
        dim3 grid((C + RMS_COLS - 1) / RMS_COLS, nparts), block(RMS_COLS, RMS_YS);
        rmsnorm_dweight_part_kernel<<<grid, block, 0, stream>>>((float *)workspace, (const __half *)dnorm,
                                                               (const __half *)resid_out, rstd, T, C);
        KN_CHECK_LAUNCH();
        rmsnorm_dweight_sum_kernel<<<(C + 255) / 256, 256, 0, stream>>>(dweight_acc, dweight_scale,
                                                                       (const float *)workspace, nparts, C);
        KN_CHECK_LAUNCH();
    }
    rmsnorm_backward_rows_kernel<<<T, rms_threads(C), 0, stream>>>((__half *)dresid_total, (const __half *)dnorm,
                                                                  (const __half *)dresid,
                                                                  (const __half *)resid_out, rstd,
                                                                  (const __half *)weight, C);
    KN_CHECK_LAUNCH();
}
