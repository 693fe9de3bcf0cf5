/* kernels.h — the C API of the CUDA kernels (kernels/<op>.cu), callable from C. Every op mirrors its CPU twin in
 * host/cpu/ops.h: same argument order and meaning, same row-major layouts ([T, C], [T, nh*hd], lse [nh, T]), and
 * the same "ACCUMULATE into *_acc, overwrite the rest" rule. Differences, all deliberate:
 *   - storage is FP16 (kn_half = IEEE half bits) for weights and activations; statistics (rstd, lse, losses),
 *     weight gradients and optimizer state are FP32; all arithmetic is FP32;
 *   - the loss ops take a loss_scale that multiplies the FP16 dlogits, so every activation gradient downstream
 *     carries it, and weight-gradient accumulations take a scale (dW += scale * ...; the model passes 1 and the
 *     trainer unscales the finished FP32 gradients once: docs/cuda.md "Gradient scaling");
 *   - strided views (ld = row stride in elements) where the model fuses projections (q|k|v and gate|up are one
 *     GEMM each), and a workspace argument where an op needs scratch (size from the *_workspace function).
 * Every pointer is device memory unless its name ends in _host. All work is queued on `stream`; CUDA errors are
 * fatal and printed with file:line (kernels/common.cuh). Functions returning int give 0, or -1 with a message in
 * kn_last_error() for unsupported shapes. Deterministic: no float atomics anywhere. */
#ifndef SC_KERNELS_H
#define SC_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h> /* cudaStream_t */

#include "kernels/sizes.h" /* the *_workspace sizes and kn_embedding_plan_ints: plain arithmetic */

#ifdef __cplusplus
extern "C" {
#endif

typedef uint16_t kn_half; /* FP16 bits; __half on the device */

/* ---- device.cu: path selection and errors ---- */
/* 1 when the current device has usable tensor cores, decided by what the card does, not by its name: a short probe
 * times mma.sync.m16n8k8 (FP32 accumulate) against paired FP16 FMAs (__hfma2) on the same device; tensor cores make
 * the mma at least 1.5x faster, while Turing parts without them (TU116/TU117: GTX 16xx, MX450, T400-T1200) run it
 * on the FP16 ALUs, no faster. Measured once per device (kn_blas_create does it, before any graph capture) and kept
 * in the GEMM cache file with the GEMM choices; compute capability below 7.5 has no mma.sync and is never probed. */
int kn_device_has_tensor_cores(void);
/* -1 = automatic (device, unless SMALLCODER_NO_TENSOR_CORES=1 is set), 0 = force the FP32-FMA path, 1 = force
 * the mma.sync path. Tests use it to run both paths in one process. */
void kn_set_tensor_cores(int mode);
/* The path the attention kernels take now: 1 = tensor cores (mma.sync), 0 = FP32 FMA. */
int kn_tensor_cores(void);
const char *kn_last_error(void);

/* ---- gemm.cu: every GEMM of the model (training forward, dX, dW with beta = 1, classifier chunks, KD, prefill).
 * FP16 A and B, FP32 accumulation, FP16 or FP32 C. Three candidates: cuBLAS GemmEx (FP16 in, CUBLAS_COMPUTE_32F);
 * cuBLAS SGEMM on FP32 copies staged in the handle's staging buffer; our own SIMT kernel (gemm_simt.cu). On first
 * use of a shape on a device each candidate is timed (cudaEvents, a few repetitions; never during CUDA graph
 * capture), the fastest is kept for the process and in the user's cache directory ($XDG_CACHE_HOME/smallcoder or
 * ~/.cache/smallcoder, one file per GPU UUID, written atomically) and named once on stderr.
 * SMALLCODER_GEMM=auto|cublas|sgemm|simt forces one; SMALLCODER_NO_TENSOR_CORES=1 leaves cuBLAS GemmEx (which may
 * use tensor cores) out of the measurement. ---- */
typedef enum {
    KN_GEMM_AUTO = 0,
    KN_GEMM_CUBLAS = 1,  /* cublasGemmEx, FP16 in, FP32 compute */
    KN_GEMM_SGEMM = 2,   /* cublasSgemm on FP32 copies (conversion kernels, staging buffer) */
    KN_GEMM_SIMT = 3,    /* gemm_simt.cu: FP16 loads, FP32 shared-memory tiles, FP32 FMA */
    KN_GEMM_SIMT_H2 = 4, /* the SIMT kernel with paired FP16 FMAs folded into FP32 every 8 k: measured, less
                          * accurate (docs/cuda.md), never chosen by auto; only kn_blas_force selects it */
    KN_GEMM_NALGO = 5
} kn_gemm_algo;
/* KN_GEMM_STAGING_BYTES (kernels/sizes.h): the staging a handle needs, taken from the caller's arena */
typedef struct kn_blas kn_blas;
/* One cuBLAS handle bound to stream, using workspace (bytes; NULL/0 = cuBLAS's own) and staging (at least
 * KN_GEMM_STAGING_BYTES; NULL = cudaMalloc'd here), so nothing is allocated later. Reads SMALLCODER_GEMM (a bad
 * value is a one-line error and exit 1) and runs the tensor-core probe of the device. */
kn_blas *kn_blas_create(cudaStream_t stream, void *workspace, size_t bytes, void *staging, size_t staging_bytes);
void kn_blas_destroy(kn_blas *b);
/* Force a candidate for every GEMM of this handle (KN_GEMM_AUTO = measure); overrides SMALLCODER_GEMM. */
void kn_blas_force(kn_blas *b, kn_gemm_algo algo);
const char *kn_gemm_algo_name(int algo);
/* Parses "auto", "cublas", "sgemm", "simt" (and "simt-h2"); -1 when s is none of them. */
int kn_gemm_algo_parse(const char *s);
/* C[m,n] = alpha op(A) op(B) + beta C, column-major (cuBLAS's convention: op(A) is m x k, trans_a = 1 means A is
 * stored k x m), C FP16 or FP32 (c_fp32); beta = 0 does not read C. The path the model's GEMMs take. */
void kn_gemm_cm(kn_blas *b, int trans_a, int trans_b, int m, int n, int k, float alpha, const kn_half *A, int lda,
                const kn_half *B, int ldb, float beta, void *C, int c_fp32, int ldc);
/* What kn_gemm_cm would run for this shape now (tunes it when needed, as the first call would). */
kn_gemm_algo kn_gemm_choice(kn_blas *b, int trans_a, int trans_b, int m, int n, int k, const kn_half *A, int lda,
                            const kn_half *B, int ldb, float beta, int c_fp32);
/* Tests: a fake timer replaces cudaEvent timing for the tuner and the tensor-core probe: returns the time in ms of
 * `what` ("gemm <algo> <ta><tb> m n k" or "probe mma" / "probe hfma2"); NULL restores the events. */
void kn_set_fake_timer(double (*fn)(void *ctx, const char *what), void *ctx);
/* Tests: forget every choice and probe result made or read in this process (the cache files stay). */
void kn_gemm_cache_reset(void);
/* y[T,out] = x[T,in] W[out,in]^T, y in FP16. */
void kn_matmul_forward(kn_blas *b, kn_half *y, const kn_half *x, const kn_half *W, int T, int in, int out);
/* y[T,out] += b[out] (FP16 y and b, the sum in FP32); nothing when b is NULL. */
void kn_bias_forward(kn_half *y, const kn_half *b, int T, int out, cudaStream_t stream);
/* db[out] += db_scale * sum_t dy[t, :] (FP16 dy, the sum in FP32 over tokens in a fixed order: no atomics, the
 * same bits every run); nothing when db_acc is NULL. The bias gradient of the training model. */
void kn_bias_backward(float *db_acc, float db_scale, const kn_half *dy, int T, int out, cudaStream_t stream);
/* dx[T,in] = dy W (dx_accumulate = 0) or += (1), skipped when dx is NULL; dW[out,in] += dW_scale * dy^T x in FP32,
 * skipped when dW_acc is NULL. */
void kn_matmul_backward(kn_blas *b, kn_half *dx, int dx_accumulate, float *dW_acc, float dW_scale, const kn_half *dy,
                        const kn_half *x, const kn_half *W, int T, int in, int out);

/* ---- embedding.cu ---- */
/* out[T,C] = table[ids[t]] */
void kn_embedding_forward(kn_half *out, const int32_t *ids, const kn_half *table, int T, int C, cudaStream_t stream);
/* Host side of the deterministic backward: sorts token positions by id (stable, so each id's tokens stay in token
 * order) into plan_host (kn_embedding_plan_ints(T) ints); ids outside [0, V) are dropped. Returns the number of
 * distinct ids. Upload the plan, then call kn_embedding_backward with that count. */
int kn_embedding_plan(int32_t *plan_host, const int32_t *ids_host, int T, int V);
/* dtable[id] += scale * dout[t] for every token t of each id, in token order: one block per distinct id, so no
 * two threads ever add to the same row (no atomics; same bits every run). */
void kn_embedding_backward(float *dtable_acc, float scale, const kn_half *dout, const int32_t *plan, int nids, int T,
                           int C, cudaStream_t stream);

/* ---- rmsnorm.cu: fused residual add + RMSNorm (host/cpu/rmsnorm.c) ----
 * resid_out = resid_in + delta (delta NULL = none; resid_out may alias resid_in), norm_out = resid_out * rstd * w.
 * rstd is computed from resid_out as stored (FP16), so backward sees exactly what forward normalised. */
void kn_rmsnorm_forward(kn_half *resid_out, kn_half *norm_out, float *rstd, const kn_half *resid_in,
                        const kn_half *delta, const kn_half *weight, int T, int C, float eps, cudaStream_t stream);
/* dresid_total = dresid (NULL = 0) + rmsnorm's input gradient (may alias dresid);
 * dweight += dweight_scale * sum_t dnorm * resid_out * rstd (FP32, summed in a fixed order). */
void kn_rmsnorm_backward(kn_half *dresid_total, float *dweight_acc, float dweight_scale, const kn_half *dnorm,
                         const kn_half *dresid, const kn_half *resid_out, const float *rstd, const kn_half *weight,
                         int T, int C, void *workspace, cudaStream_t stream);

/* ---- rope.cu: HF rotate-half RoPE in place on x[T, ld] (heads [0, n_heads) of head_dim each, row t at position
 * pos0 + *pos_dev + t; pos_dev NULL = 0). inv_freq: the device table [head_dim/2] of host/cpu/ops.h rope_inv_freq,
 * owned by the caller (uploaded once). Nothing is copied per launch, so launches are graph-safe; pos_dev lets a
 * replayed graph rotate at the position the host wrote before the replay. The q|k part of a fused qkv buffer is
 * rotated by one call: n_heads = nh + nkv, ld = row stride. -1 (kn_last_error) when head_dim is odd or
 * inv_freq is NULL. ---- */
int kn_rope_forward(kn_half *x, const float *inv_freq, int T, int n_heads, int head_dim, int ld, int pos0,
                    const int *pos_dev, cudaStream_t stream);
int kn_rope_backward(kn_half *dx, const float *inv_freq, int T, int n_heads, int head_dim, int ld, int pos0,
                     const int *pos_dev, cudaStream_t stream);

/* ---- attention.cu: causal GQA flash attention, scale 1/sqrt(hd); host/cpu/attention.c's contract.
 * q rows have stride ldq, k and v rows stride ldkv (a fused qkv buffer: q = qkv, k = qkv + nh*hd,
 * v = k + nkv*hd, ldq = ldkv = (nh + 2 nkv) hd); out/dout are [T, nh*hd]; lse [nh, T] FP32 (natural log).
 * hd must be 64, 72, 80, 96 or 128, nkv must divide nh, pointers 4-byte aligned and ld even. ---- */
/* 0 when these shapes are supported, else -1 and kn_last_error() says why. */
int kn_attention_check(int hd, int nh, int nkv, int ldq, int ldkv);
int kn_attention_forward(kn_half *out, float *lse, const kn_half *q, const kn_half *k, const kn_half *v, int T,
                         int nh, int nkv, int hd, int ldq, int ldkv, cudaStream_t stream);
/* dq (stride ldq), dk, dv (stride ldkv) are overwritten; probabilities recomputed tile by tile from lse. */
int kn_attention_backward(kn_half *dq, kn_half *dk, kn_half *dv, const kn_half *dout, const kn_half *q,
                          const kn_half *k, const kn_half *v, const kn_half *out, const float *lse, int T, int nh,
                          int nkv, int hd, int ldq, int ldkv, void *workspace, cudaStream_t stream);

/* ---- swiglu.cu: out[r, c] = silu(gate[r, c]) * up[r, c] over rows x cols; gate/up/dgate/dup rows have stride
 * ld_in (gate|up fused: gate = gu, up = gu + F, ld_in = 2F), out/dout are contiguous [rows, cols]. ---- */
void kn_swiglu_forward(kn_half *out, const kn_half *gate, const kn_half *up, int rows, int cols, int ld_in,
                       cudaStream_t stream);
void kn_swiglu_backward(kn_half *dgate, kn_half *dup, const kn_half *dout, const kn_half *gate, const kn_half *up,
                        int rows, int cols, int ld_in, cudaStream_t stream);

/* ---- classifier.cu: logits = x W^T in chunks of `chunk` tokens (cuBLAS into an FP32 chunk buffer), softmax
 * cross-entropy, dlogits written in place over the chunk as FP16, then dx = dlogits W and dW += dW_scale *
 * dlogits^T x. Never a T x V buffer (unless logits_out is asked for). losses[t] = -log p(target) (0 when the
 * target is outside [0, V)); dlogits = (softmax - onehot) * loss_scale for counted rows. dx NULL = forward only;
 * logits_out [T, V] FP32 optional. The caller sums losses (deterministically, on the host). ---- */
void kn_classifier_forward_backward(kn_blas *b, float *losses, float *logits_out, kn_half *dx, float *dW_acc,
                                    float dW_scale, const kn_half *x, const kn_half *W, const int32_t *targets, int T,
                                    int C, int V, float loss_scale, int chunk, void *workspace, cudaStream_t stream);

/* An INT8 matrix [rows, cols] (infer/quant.h's format: FP16 scales per row, group = cols, or per group of columns)
 * read by GEMMs through scratch, an FP16 buffer of `tile` halves (at least max(rows, cols)) that one tile of it is
 * dequantized into right before each GEMM on it (kn_int8_dequant_tile): a frozen INT8 lm_head costs its INT8 bytes
 * and one tile, never an FP16 copy of the whole matrix. */
typedef struct {
    const int8_t *q;
    const kn_half *scale;
    int group;
    kn_half *scratch;
    int64_t tile;
} kn_int8_mat;
/* kn_classifier_forward_backward with W [V, C] as INT8 (frozen: no dW): the logits GEMM runs over row tiles of W
 * (vocabulary slices of the chunk's FP32 logits), dx = dlogits W over column tiles (each a slice of dx's columns,
 * the sum over V whole in one GEMM). */
void kn_classifier_forward_backward_q8(kn_blas *b, float *losses, float *logits_out, kn_half *dx, const kn_half *x,
                                       const kn_int8_mat *W, const int32_t *targets, int T, int C, int V,
                                       float loss_scale, int chunk, void *workspace, cudaStream_t stream);

/* ---- kd_loss.cu: the classifier fused with the distillation loss (host/cpu/kd_loss.h is the twin): the chunk
 * loop of kn_classifier_forward_backward (same workspace: kn_classifier_workspace(chunk, V)) with, per row,
 * losses[t] = alpha * T^2 * KL + (1 - alpha) * CE, the KL over the teacher's top-k ids + one tail bucket at
 * temperature T, forward KL(teacher || student) or reverse (reverse = 1); ce[t] (optional) = the CE part. Both are
 * 0 where the target is outside [0, V), and the teacher's row is not read there. Teacher rows, device memory:
 * kd_ids int32 [T, k] (distinct, each in [0, V): not checked here), kd_logits FP16 [T, k] (already divided by the
 * teacher's writing temperature, as in a .kd), kd_lse FP32 [T]. dlogits = d(loss)/dlogits * loss_scale, dx NULL =
 * forward only. Returns -1 (kn_last_error) unless 1 <= k <= min(V, KN_KD_MAX_TOPK) and temperature > 0. ---- */
#define KN_KD_MAX_TOPK 1024
int kn_kd_classifier_forward_backward(kn_blas *b, float *losses, float *ce, kn_half *dx, float *dW_acc,
                                      float dW_scale, const kn_half *x, const kn_half *W, const int32_t *targets,
                                      const int32_t *kd_ids, const kn_half *kd_logits, const float *kd_lse, int k,
                                      float alpha, float temperature, int reverse, int T, int C, int V,
                                      float loss_scale, int chunk, void *workspace, cudaStream_t stream);
/* The same with W as INT8 (kn_classifier_forward_backward_q8's tiles; no dW). */
int kn_kd_classifier_forward_backward_q8(kn_blas *b, float *losses, float *ce, kn_half *dx, const kn_half *x,
                                         const kn_int8_mat *W, const int32_t *targets, const int32_t *kd_ids,
                                         const kn_half *kd_logits, const float *kd_lse, int k, float alpha,
                                         float temperature, int reverse, int T, int C, int V, float loss_scale,
                                         int chunk, void *workspace, cudaStream_t stream);

/* ---- amp.cu: mixed-precision helpers ---- */
void kn_f32_to_f16(kn_half *dst, const float *src, int64_t n, cudaStream_t stream);
void kn_f16_to_f32(float *dst, const kn_half *src, int64_t n, cudaStream_t stream);
/* g *= mul; *found_nonfinite (an int on the device, zero it first) is set to 1 if any value is inf/nan. */
void kn_unscale(float *g, int64_t n, float mul, int *found_nonfinite, cudaStream_t stream);
/* *result (a double on the device) = sum of g^2 in double: fixed 64Ki chunks (as train/adamw.c grad_sumsq), each
 * and then the chunk sums reduced in a fixed tree, so the same value every run; inf/nan when any g is. */
void kn_sumsq(double *result, const float *g, int64_t n, void *workspace, cudaStream_t stream);

/* ---- adamw.cu: train/adamw.c adamw_update on the device (the "full" placement); p16 (optional) receives the
 * updated weights in FP16 for the next forward. ---- */
void kn_adamw_update(float *p, const float *g, float *m, float *v, kn_half *p16, int64_t n, float grad_mul, float wd,
                     float lr, float beta1, float beta2, float eps, int64_t t, cudaStream_t stream);

/* ---- inference (host/engine_cuda.c). The position of the new rows and the session's KV cache are read from
 * device memory (kn_kv_step), not passed by value, so one captured CUDA graph of the decode step replays at every
 * position and for every session. KV cache layout [layer][n_ctx][nkv*hd] as host/kv_cache.h: FP16, or (q8, q4)
 * int8 / packed 4-bit values with FP16 scales per block of qb values in ks, vs [layer][n_ctx][nkv*hd/qb]. ---- */
typedef struct {
    int32_t pos;      /* position of the first new row; row t is at pos + t */
    int32_t n_ctx;    /* positions per layer in this cache */
    void *k, *v;      /* the session's cache */
    kn_half *ks, *vs; /* q8, q4: its scales */
} kn_kv_step;
/* the cache types the kernels take: the values of host/kv_cache.h's sc_kv_type (f32 is CPU-only) */
enum { KN_KV_F16 = 0, KN_KV_Q8 = 2, KN_KV_Q4 = 3 };

/* int8_gemv.cu: W8A8 with FP16 scales per row or per group of columns (infer/quant.h's format, signed activations:
 * the same integers as the CPU's +128-offset form). cols and group must be multiples of 4 (kn_int8_check). */
int kn_int8_check(int cols, int group);
/* xq[T, cols] = round(x / xs), xs[T, ng] = max|x in group| / 127 (per token, per group) */
void kn_act_quant(int8_t *xq, float *xs, const kn_half *x, int T, int cols, int group, cudaStream_t stream);
/* y[T, rows] = sum_g scale[r,g] xs[t,g] dot(xq[t], W[r]) over group g, by __dp4a; written to y (FP16) or, when y is
 * NULL, to y_f32 (FP32, the logits). */
void kn_int8_gemv(kn_half *y, float *y_f32, const int8_t *xq, const float *xs, const int8_t *W, const kn_half *scale,
                  int T, int rows, int cols, int group, cudaStream_t stream);
/* out[rows, cols] FP16 = W * scale (the prefill GEMMs' operand) */
void kn_int8_dequant(kn_half *out, const int8_t *W, const kn_half *scale, int rows, int cols, int group,
                     cudaStream_t stream);
/* out[nr, nc] FP16 = the tile rows [r0, r0 + nr) x columns [c0, c0 + nc) of W [*, cols] times its scales: a GEMM
 * over an INT8 matrix through an FP16 scratch of one tile (the frozen LoRA base, the INT8 lm_head) */
void kn_int8_dequant_tile(kn_half *out, const int8_t *W, const kn_half *scale, int cols, int group, int64_t r0, int nr,
                          int c0, int nc, cudaStream_t stream);
/* out[T, C] = dequantized rows ids[t] of W */
void kn_int8_embedding(kn_half *out, const int32_t *ids, const int8_t *W, const kn_half *scale, int T, int C,
                       int group, cudaStream_t stream);

/* f16_gemv.cu: y[T, rows] = x[T, cols] W^T for a few rows of x (decode), FP32 accumulation; y FP16 or, when NULL,
 * y_f32. cols must be even: else -1 (kn_last_error), nothing launched. */
int kn_f16_gemv(kn_half *y, float *y_f32, const kn_half *x, const kn_half *W, int T, int rows, int cols,
                cudaStream_t stream);

/* lora_apply.cu: a LoRA adapter's side path on a linear layer's output, applied without merging:
 * y[t * ldy + i] += scale * sum_j h[t, j] B[i, j] (i < rows) with h[T, r] = x[T, cols] A^T (FP32 scratch, the r-dim
 * product first); A [r, cols], B [rows, r] FP32. Fixed-order sums: row t the same bits whatever T. scale 0: no launch. */
void kn_lora_apply(kn_half *y, int ldy, const kn_half *x, const float *A, const float *B, float scale, int T,
                   int rows, int cols, int r, float *h, cudaStream_t stream);

/* lora_dropout.cu: LoRA training's dropout on the adapter input (host/cpu/lora_dropout.h is the twin, same hash):
 * out[i] = (add ? add[i] : 0) + x[i] * keep(key, slot, i) with keep = 0 (probability p) or 1/(1-p), in FP32, then
 * rounded to FP16; out may alias add. Forward: out = drop(x); backward: dx += drop'(dxd) with add = out = dx. */
void kn_lora_dropout(kn_half *out, const kn_half *x, const kn_half *add, int64_t n, uint64_t key, int slot, float p,
                     cudaStream_t stream);

/* decode_attention.cu */
/* qkv [T, (nh + 2 nkv) hd] (q | k | v per row): rotates q and k in place (HF rotate-half, row t at st->pos + t,
 * inv_freq [hd/2] on the device), then stores k and v rows at positions st->pos.. of layer `layer` (kv_type KN_KV_*:
 * FP16 as they are; q8/q4 quantized per block of qb values by kn_kv_quant_store, qkv keeping the FP16 rows). */
void kn_rope_kv_store(kn_half *qkv, const kn_kv_step *st, const float *inv_freq, int layer, int T, int nh, int nkv,
                      int hd, int kv_type, int qb, cudaStream_t stream);
/* Quantizes the k and v rows of qkv [T, (nh + 2 nkv) hd] (after RoPE) into a q8/q4 cache at st->pos..: one thread
 * per block of qb values, the float operations of host/kv_cache.c kv_quant_block. kn_rope_kv_store calls it. */
void kn_kv_quant_store(const kn_half *qkv, const kn_kv_step *st, int layer, int T, int nh, int nkv, int hd,
                       int kv_type, int qb, cudaStream_t stream);
/* 0 when attention with this head_dim (a multiple of 8, at most 128) over max_ctx positions is supported, else -1.
 * Any context length: nothing is sized by max_ctx but the launch's split count. */
int kn_decode_attention_check(int hd, int max_ctx);
/* Bytes of device workspace kn_decode_attention needs for up to T rows (split-K partials; rows above 8 never split). */
size_t kn_decode_attention_workspace(int T, int nh, int hd);
/* out[T, nh*hd] = causal GQA attention of the q rows of qkv over the cached positions [0, st->pos + t] of layer
 * `layer` (split-K flash-decoding: partials in workspace, then a combine pass). max_ctx >= every cache's n_ctx: the
 * launch shape depends on T, max_ctx and the SM count only, so one captured graph fits every position and session. */
void kn_decode_attention(kn_half *out, const kn_half *qkv, const kn_kv_step *st, int layer, int T, int nh, int nkv,
                         int hd, int max_ctx, int kv_type, int qb, void *workspace, cudaStream_t stream);

/* ---- warmup.cu: one launch of every kernel (and every GEMM candidate through b, which is left forced to cuBLAS)
 * on tiny zero-filled inputs in scratch (kn_warmup_scratch_bytes(), device memory), attention at head_dim hd;
 * synchronises. With lazy module loading that loads every kernel the model runs, so host/device_probe.c can
 * measure what the context and the kernels take. */
size_t kn_warmup_scratch_bytes(void);
void kn_warmup(kn_blas *b, int hd, void *scratch, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
