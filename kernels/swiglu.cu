// swiglu.cu — the Llama MLP activation out = silu(gate) * up and both gradients in one pass (host/cpu/swiglu.c is
// the twin). Rows may be strided so that gate and up can be the two halves of one fused gate|up GEMM output.
// silu(g) = g / (1 + exp(-g)) as in PyTorch; for g -> -inf, exp overflows to inf and the quotient is -0, not NaN.
#include "kernels/common.cuh"

__global__ void swiglu_forward_kernel(__half *out, const __half *gate, const __half *up, int rows, int cols,
                                      int ld_in) {
    int64_t n = (int64_t)rows * cols;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i % cols, j = r * ld_in + c;
        float g = h2f(gate[j]);
        out[i] = f2h(g / (1.0f + expf(-g)) * h2f(up[j]));
    }
}

// d silu(g)/dg = s + g s (1 - s), s = sigmoid(g). Each element is read before it is written by the same thread,
// so dgate/dup may alias gate/up.
__global__ void swiglu_backward_kernel(__half *dgate, __half *dup, const __half *dout, const __half *gate,
                                       const __half *up, int rows, int cols, int ld_in) {
    int64_t n = (int64_t)rows * cols;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i % cols, j = r * ld_in + c;
        float g = h2f(gate[j]), u = h2f(up[j]), d = h2f(dout[i]);
        float s = 1.0f / (1.0f + expf(-g));
        float silu = g * s;
        dgate[j] = f2h(d * u * (s + silu * (1.0f - s)));
        dup[j] = f2h(d * silu);
    }
}

extern "C" void kn_swiglu_forward(kn_half *out, const kn_half *gate, const kn_half *up, int rows, int cols,
                                  int ld_in, cudaStream_t stream) {
    int64_t n = (int64_t)rows * cols;
    if (n <= 0) return;
    swiglu_forward_kernel<<<kn_blocks(n, 256), 256, 0, stream>>>((__half *)out, (const __half *)gate,
                                                                (const __half *)up, rows, cols, ld_in);
    KN_CHECK_LAUNCH();
}

extern "C" void kn_swiglu_backward(kn_half *dgate, kn_half *dup, const kn_half *dout, const kn_half *gate,
                                   const kn_half *up, int rows, int cols, int ld_in, cudaStream_t stream) {
    int64_t n = (int64_t)rows * cols;
    if (n <= 0) return;
    swiglu_backward_kernel<<<kn_blocks(n, 256), 256, 0, stream>>>((__half *)dgate, (__half *)dup,
                                                                 (const __half *)dout, (const __half *)gate,
                                                                 (const __half *)up, rows, cols, ld_in);
    KN_CHECK_LAUNCH();
}
