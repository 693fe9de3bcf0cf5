// rope.cu — HF rotate-half rotary embedding in place (host/cpu/rope.c is the twin), and its inverse for backward.
// The inverse frequencies are computed on the host with the same float expression as the CPU (and HF), and the
// angle is the same float32 product inv_freq * pos, so only sincosf's last-ulp error separates the two. One
// thread per (token, frequency) computes one sincos and rotates that pair in every head of the row.
#include <math.h>

#include "kernels/common.cuh"

enum { ROPE_MAX_HALF = 512 };  // head_dim up to 1024, the config's limit

// inv_freq[i] for the call being launched; written by a stream-ordered copy just before each launch, so a kernel
// queued earlier with another head_dim or theta still reads its own table.
__constant__ float rope_inv_freq[ROPE_MAX_HALF];

__global__ void rope_kernel(__half *x, int T, int n_heads, int head_dim, int ld, int pos0, float dir) {
    int half = head_dim / 2;
    int64_t n = (int64_t)T * half;
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; idx < n; idx += (int64_t)gridDim.x * blockDim.x) {
        int t = (int)(idx / half), i = (int)(idx % half);
        float ang = rope_inv_freq[i] * (float)(pos0 + t);  // float32 product, as HF and the CPU twin
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

static int rope_launch(kn_half *x, int T, int n_heads, int head_dim, int ld, int pos0, float theta, float dir,
                       cudaStream_t stream) {
    if (T <= 0 || n_heads <= 0 || head_dim < 2) return 0;
    if (head_dim / 2 > ROPE_MAX_HALF) return kn_fail("kn_rope: head_dim %d exceeds %d", head_dim, 2 * ROPE_MAX_HALF);
    float f[ROPE_MAX_HALF];
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) f[i] = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);  // as rope.c
    // from pageable memory the copy is staged before this returns, so f may go out of scope
    KN_CHECK(cudaMemcpyToSymbolAsync(rope_inv_freq, f, sizeof(float) * (size_t)half, 0, cudaMemcpyHostToDevice, stream));
    int64_t n = (int64_t)T * half;
    rope_kernel<<<kn_blocks(n, 256), 256, 0, stream>>>((__half *)x, T, n_heads, head_dim, ld, pos0, dir);
    KN_CHECK_LAUNCH();
    return 0;
}

extern "C" int kn_rope_forward(kn_half *x, int T, int n_heads, int head_dim, int ld, int pos0, float theta,
                                cudaStream_t stream) {
    return rope_launch(x, T, n_heads, head_dim, ld, pos0, theta, 1.0f, stream);
}

extern "C" int kn_rope_backward(kn_half *dx, int T, int n_heads, int head_dim, int ld, int pos0, float theta,
                                 cudaStream_t stream) {
    return rope_launch(dx, T, n_heads, head_dim, ld, pos0, theta, -1.0f, stream);
}
