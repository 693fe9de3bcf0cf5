// gemm.cuh — the GEMM entry the kernel files share (gemm.cu) and what its parts share among themselves: the
// candidates (cuBLAS GemmEx, cuBLAS SGEMM on staged FP32 copies, our SIMT kernel in gemm_simt.cu), the per-device
// choice cache (gemm_cache.cu) and the device facts both need. Column-major, as cuBLAS sees it.
#ifndef SC_KERNELS_GEMM_CUH
#define SC_KERNELS_GEMM_CUH

#include <cublas_v2.h>

#include "kernels/kernels.h"

struct kn_blas {
    cublasHandle_t handle;
    cudaStream_t stream;
    void *staging;        // KN_GEMM_STAGING_BYTES or more: SGEMM's FP32 copies, the tuner's scratch output
    size_t staging_bytes;
    int own_staging;      // staging came from cudaMalloc in kn_blas_create
    int forced;           // a kn_gemm_algo other than KN_GEMM_AUTO: every GEMM of this handle takes it
    int sm_count;
};

// C[m,n] = alpha op(A) op(B) + beta C, column-major as cuBLAS sees it; c_fp32 selects the type of C. The
// candidate is the handle's forced one, else the measured fastest for this shape on this device.
void kn_gemm(kn_blas *b, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha, const void *A,
             int lda, const void *B, int ldb, float beta, void *C, int c_fp32, int ldc);

// One GEMM by the named candidate (KN_GEMM_CUBLAS, _SGEMM with `stage` floats of FP32 staging, _SIMT, _SIMT_H2).
void kn_gemm_run(kn_blas *b, int algo, int ta, int tb, int m, int n, int k, float alpha, const __half *A, int lda,
                 const __half *B, int ldb, float beta, void *C, int c_fp32, int ldc, float *stage, size_t stage_floats);
// gemm_simt.cu: the SIMT kernels; h2 = paired FP16 FMAs over short k-runs folded into FP32.
void kn_gemm_simt(kn_blas *b, int ta, int tb, int m, int n, int k, float alpha, const __half *A, int lda,
                  const __half *B, int ldb, float beta, void *C, int c_fp32, int ldc, int h2);

// ---- the current device as the caches key it (gemm_cache.cu) ----
struct kn_dev_info {
    int ordinal, sm_count, cc;
    char uuid[48];  // "GPU-xxxxxxxx-xxxx-...", "" when the device reports none (then nothing is written to disk)
    char name[256];
};
const kn_dev_info *kn_dev_current(void);

// A shape as the tuner keys it: everything that changes which candidate is fastest.
struct kn_gemm_key {
    int ta, tb, m, n, k, c_fp32, beta1, vec;  // beta1: beta != 0; vec: A and B allow 16-byte loads
};
struct kn_gemm_pick {
    int algo;
    float ms[KN_GEMM_NALGO];  // measured times, 0 = not measured
};
// 1 and *out when this device has a choice for key (from this process or the cache file), else 0.
int kn_cache_get_gemm(const kn_dev_info *d, const kn_gemm_key *key, kn_gemm_pick *out);
// Records a choice and rewrites the device's cache file (atomically) when the device has a UUID.
void kn_cache_put_gemm(const kn_dev_info *d, const kn_gemm_key *key, const kn_gemm_pick *c);
int kn_cache_get_tc(const kn_dev_info *d, int *tc);
void kn_cache_put_tc(const kn_dev_info *d, int tc);
// The cache file of a device ("" when it has no UUID or no cache directory can be named).
const char *kn_cache_path(const kn_dev_info *d, char *buf, size_t n);

// The test hook of kn_set_fake_timer: 1 and *ms when a fake timer is set.
int kn_fake_time(const char *what, double *ms);

#endif
