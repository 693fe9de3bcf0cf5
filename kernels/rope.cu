// rope.cu — HF rotate-half rotary embedding in place (host/cpu/rope.c is the twin), and its inverse for backward.
// The inverse frequencies are a device table owned by the caller (the model uploads rope_inv_freq's float32 values
// once at open), and the angle is the same float32 product inv_freq * pos as the CPU and HF, so only sincosf's
// last-ulp error separates the two. One thread per (token, frequency) computes one sincos and rotates that pair in
// every head of the row. Nothing is copied per launch, so a launch can be captured in a CUDA graph and replayed:
// the table is read at run time, and so is the position offset when it comes from device memory (pos_dev).
#include "kernels/common.cuh"

__global__ void rope_kernel(__half *x, const float *inv_freq, int T, int n_heads, int head_dim, int ld, int pos0,
                            const int *pos_dev, float dir) {
    int half = head_dim / 2;
    int base = pos0 + (pos_dev ? *pos_dev : 0);
    int64_t n = (int64_t)T * half;
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n; idx += (int64_t)gridDim.x * blockDim.x) {
        int t = (int)(idx / half), i = (int)(idx % half);
        float ang = inv_freq[i] * (float)(base + t);  // float32 product, as HF and the CPU twin
        float s, c;
        sincosf(ang, &s, &c);
        s *= dir;
        __half *row = x + (int64_t)t * ld;
        for (int h = 0; h < n_heads; h++) {
            __half *x1 = row + (int64_t)h * head_dim + i, *x2 = x1 + half;
            float a = h2f(*x1), b = h2f(*x2);
            *x1 = f2h(a * c - b * s);
            *x2 = f2h(b * c + a * s);
        }
    }
}

static int rope_launch(kn_half *x, const float *inv_freq, int T, int n_heads, int head_dim, int ld, int pos0,
                       const int *pos_dev, float dir, cudaStream_t stream) {
    if (T <= 0 || n_heads <= 0) return 0;
    if (head_dim < 2 || head_dim % 2) return kn_fail("kn_rope: head_dim %d is not a positive even number", head_dim);
    if (!inv_freq) return kn_fail("kn_rope: no inv_freq table");
    int64_t n = (int64_t)T * (head_dim / 2);
    rope_kernel<<<kn_blocks(n, 256), 256, 0, stream>>>((__half *)x, inv_freq, T, n_heads, head_dim, ld, pos0, pos_dev,
                                                       dir);
    KN_CHECK_LAUNCH();
    return 0;
}

extern "C" int kn_rope_forward(kn_half *x, const float *inv_freq, int T, int n_heads, int head_dim, int ld, int pos0,
                               const int *pos_dev, cudaStream_t stream) {
    return rope_launch(x, inv_freq, T, n_heads, head_dim, ld, pos0, pos_dev, 1.0f, stream);
}

extern "C" int kn_rope_backward(kn_half *dx, const float *inv_freq, int T, int n_heads, int head_dim, int ld,
                                int pos0, const int *pos_dev, cudaStream_t stream) {
    return rope_launch(dx, inv_freq, T, n_heads, head_dim, ld, pos0, pos_dev, -1.0f, stream);
}
