/* sizes.h — the kernels' scratch sizes as plain arithmetic (no CUDA types), so a layout that sizes device memory
 * (host/cuda_model_layout.c against a sizing arena) also runs in a CPU-only build: `train --plan` prints the same plan
 * there. kernels.h includes it; the kernels use the same constants. */
#ifndef SC_KERNELS_SIZES_H
#define SC_KERNELS_SIZES_H

#include <stddef.h>
#include <stdint.h>

enum { KN_RMS_ROWS_PER_PART = 128, KN_SUMSQ_CHUNK = 1 << 16 };

/* Device bytes of staging a GEMM handle needs (callers take them from their arena: `train --plan` and the
 * inference plan count them): SGEMM's FP32 blocks and the tuner's scratch output. Here, not in kernels.h, because
 * host/cuda_model_layout.c's layout also runs in a CPU-only build. */
#define KN_GEMM_STAGING_BYTES ((size_t)24 << 20)

/* ints of kn_embedding_plan's host plan for T tokens */
static inline size_t kn_embedding_plan_ints(int T) { return 3 * (size_t)(T > 0 ? T : 0) + 1; }

/* bytes of kn_rmsnorm_backward's workspace: FP32 partial weight gradients per KN_RMS_ROWS_PER_PART rows */
static inline size_t kn_rmsnorm_backward_workspace(int T, int C) {
    size_t nparts = (size_t)(T + KN_RMS_ROWS_PER_PART - 1) / KN_RMS_ROWS_PER_PART;
    return (nparts ? nparts : 1) * (size_t)(C > 0 ? C : 1) * sizeof(float);
}

/* bytes of kn_attention_backward's workspace: one FP32 per head and row */
static inline size_t kn_attention_backward_workspace(int T, int nh) {
    return sizeof(float) * (size_t)(T > 0 ? T : 1) * (size_t)(nh > 0 ? nh : 1);
}

/* bytes of the classifier's workspace: the FP32 logits of `chunk` tokens */
static inline size_t kn_classifier_workspace(int chunk, int V) {
    return sizeof(float) * (size_t)(chunk > 0 ? chunk : 1) * (size_t)(V > 0 ? V : 1);
}

/* bytes of kn_sumsq's workspace: one double per KN_SUMSQ_CHUNK values */
static inline size_t kn_sumsq_workspace(int64_t n) {
    int64_t parts = (n + KN_SUMSQ_CHUNK - 1) / KN_SUMSQ_CHUNK;
    return sizeof(double) * (size_t)(parts > 0 ? parts : 1);
}

#endif
