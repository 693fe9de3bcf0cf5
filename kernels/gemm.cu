// gemm.cu — the model's linear layers through cuBLAS: FP16 inputs, FP32 accumulation (CUBLAS_COMPUTE_32F), FP16
// activations out and FP32 weight gradients out. Row-major y = x W^T with W in HF [out, in] layout is, to
// column-major cuBLAS, y^T = W x^T: the transposes below are that translation, nothing more.
#include "kernels/common.cuh"
#include "kernels/gemm.cuh"

extern "C" kn_blas *kn_blas_create(cudaStream_t stream, void *workspace, size_t bytes) {
    kn_blas *b = (kn_blas *)calloc(1, sizeof *b);
    if (!b) {
        fprintf(stderr, "kn_blas_create: out of memory\n");
        exit(1);
    }
    KN_CUBLAS(cublasCreate(&b->handle));
    KN_CUBLAS(cublasSetStream(b->handle, stream));
    if (workspace && bytes) KN_CUBLAS(cublasSetWorkspace(b->handle, workspace, bytes));
    b->stream = stream;
    return b;
}

extern "C" void kn_blas_destroy(kn_blas *b) {
    if (!b) return;
    KN_CUBLAS(cublasDestroy(b->handle));
    free(b);
}

void kn_gemm(kn_blas *b, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const void *A,
             int lda, const void *B, int ldb, float beta, void *C, int c_fp32, int ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {  // empty sum: C = beta C; only beta = 0 occurs in this code base
        if (beta == 0.0f)
            KN_CHECK(cudaMemset2DAsync(C, (size_t)ldc * (c_fp32 ? 4 : 2), 0, (size_t)m * (c_fp32 ? 4 : 2), (size_t)n,
                                       b->stream));
        return;
    }
    KN_CUBLAS(cublasGemmEx(b->handle, ta, tb, m, n, k, &alpha, A, CUDA_R_16F, lda, B, CUDA_R_16F, ldb, &beta, C,
                           c_fp32 ? CUDA_R_32F : CUDA_R_16F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

extern "C" void kn_matmul_forward(kn_blas *b, kn_half *y, const kn_half *x, const kn_half *W, int T, int in, int out) {
    // y^T[out, T] = W[out, in] x^T: W's row-major storage is W^T column-major, hence op(A) = T.
    kn_gemm(b, CUBLAS_OP_T, CUBLAS_OP_N, out, T, in, 1.0f, W, in, x, in, 0.0f, y, 0, out);
}

extern "C" void kn_matmul_backward(kn_blas *b, kn_half *dx, int dx_accumulate, float *dW_acc, float dW_scale,
                                   const kn_half *dy, const kn_half *x, const kn_half *W, int T, int in, int out) {
    if (T <= 0 || in <= 0 || out <= 0) return;
    // dx^T[in, T] = W^T[in, out] dy^T[out, T]
    if (dx) kn_gemm(b, CUBLAS_OP_N, CUBLAS_OP_N, in, T, out, 1.0f, W, in, dy, out, dx_accumulate ? 1.0f : 0.0f, dx, 0, in);
    // dW^T[in, out] += x^T[in, T] dy[T, out]; the token sum is cuBLAS's k, never split across outputs
    if (dW_acc) kn_gemm(b, CUBLAS_OP_N, CUBLAS_OP_T, in, out, T, dW_scale, x, in, dy, out, 1.0f, dW_acc, 1, in);
}
