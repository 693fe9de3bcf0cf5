// gemm.cuh — the one cuBLAS entry the kernel files share (gemm.cu implements it): a column-major GEMM with FP16
// A and B, FP16 or FP32 C, and FP32 accumulation (CUBLAS_COMPUTE_32F), on the handle's stream.
#ifndef SC_KERNELS_GEMM_CUH
#define SC_KERNELS_GEMM_CUH

#include <cublas_v2.h>

#include "kernels/kernels.h"

struct kn_blas {
    cublasHandle_t handle;
    cudaStream_t stream;
};

// C[m,n] = alpha op(A) op(B) + beta C, column-major as cuBLAS sees it; c_fp32 selects the type of C.
void kn_gemm(kn_blas *b, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const void *A,
             int lda, const void *B, int ldb, float beta, void *C, int c_fp32, int ldc);

#endif
