/* ops.h — the CPU reference ops, FP32. One op per host/cpu/<op>.c (the same name as its kernels/<op>.cu twin),
 * forward and backward. Row-major everywhere; T = tokens, C = hidden size. Weights use HF Linear layout
 * [out_features, in_features], so y = x W^T.
 *
 * Backward functions ACCUMULATE (+=) into weight gradients and into input gradients whose name says so
 * ("dinp_acc"); plain outputs ("dq", "dx") are overwritten. Every function is deterministic for a given thread
 * count (no float atomics; reductions over tokens happen in a fixed order). */
#ifndef SC_CPU_OPS_H
#define SC_CPU_OPS_H

#include <stdint.h>

/* ---- matmul.c: y[T,out] = x[T,in] W[out,in]^T (cblas sgemm) ---- */
void matmul_forward(float *y, const float *x, const float *W, int T, int in, int out);
/* dx[T,in] += dy W (skipped when dx is NULL); dW[out,in] += dy^T x. */
void matmul_backward(float *dx_acc, float *dW_acc, const float *dy, const float *x, const float *W, int T, int in,
                     int out);
/* Bias of a linear layer (HF nn.Linear bias=True): y[t, :] += b; backward db += sum_t dy[t, :] (serial over t,
 * so it is deterministic). No-ops when b / db is NULL, so callers pass a layer's bias pointer as it is. */
void bias_forward(float *y, const float *b, int T, int out);
void bias_backward(float *db_acc, const float *dy, int T, int out);

/* ---- embedding.c ---- */
/* out[T,C] = table[ids[t]] */
void embedding_forward(float *out, const int32_t *ids, const float *table, int T, int C);
/* dtable[ids[t]] += dout[t], tokens in order (deterministic). */
void embedding_backward(float *dtable_acc, const float *dout, const int32_t *ids, int T, int C);

/* ---- rmsnorm.c: RMSNorm fused with the residual add that precedes it ----
 * resid_out = resid_in + delta (delta may be NULL: resid_out = resid_in, and then resid_out may alias resid_in)
 * norm_out  = resid_out * rstd * weight,   rstd[t] = 1 / sqrt(mean(resid_out[t]^2) + eps) */
void rmsnorm_forward(float *resid_out, float *norm_out, float *rstd, const float *resid_in, const float *delta,
                     const float *weight, int T, int C, float eps);
/* Given dnorm = dL/dnorm_out and dresid = dL/dresid_out from the residual stream's later uses (NULL = zero),
 * writes dresid_total = dresid + (rmsnorm's input gradient) into dresid_total (which may alias dresid). That is
 * also the gradient of resid_in and delta. dweight += sum_t dnorm * resid_out * rstd (skipped when NULL). */
void rmsnorm_backward(float *dresid_total, float *dweight_acc, const float *dnorm, const float *dresid,
                      const float *resid_out, const float *rstd, const float *weight, int T, int C);

/* ---- rope.c: HF rotate-half RoPE, in place on x[T, n_heads*head_dim]; position of row t is pos0 + t.
 * Pairs (i, i + head_dim/2) with inv_freq[i] = theta^(-2i/head_dim). */
void rope_forward(float *x, int T, int n_heads, int head_dim, int pos0, float theta);
/* out[i] = 1 / theta^(2i / head_dim), i < head_dim/2, in float32 as HF computes it: the one table every RoPE
 * (CPU, kernels/rope.cu through the model's device copy, the CUDA engine) rotates by */
void rope_inv_freq(float *out, int head_dim, float theta);
/* The inverse rotation: turns dL/d(rotated) into dL/d(unrotated), in place. */
void rope_backward(float *dx, int T, int n_heads, int head_dim, int pos0, float theta);
/* The same with the inverse frequencies given (inv_freq[head_dim/2], e.g. config_rope_inv_freq after
 * rope_scaling); rope_forward(theta) is this with 1/theta^(2i/hd). */
void rope_forward_freqs(float *x, int T, int n_heads, int head_dim, int pos0, const float *inv_freq);
void rope_backward_freqs(float *dx, int T, int n_heads, int head_dim, int pos0, const float *inv_freq);

/* ---- attention.c: causal GQA attention, scale 1/sqrt(head_dim).
 * q[T, nh*hd], k[T, nkv*hd], v[T, nkv*hd], out[T, nh*hd]; query head h reads kv head h / (nh/nkv).
 * lse[nh, T] = logsumexp of each query row's scaled, masked scores (kept for backward). Never stores T x T:
 * works in blocks of query rows. */
void attention_forward(float *out, float *lse, const float *q, const float *k, const float *v, int T, int nh,
                       int nkv, int hd);
/* dq[T,nh*hd], dk[T,nkv*hd], dv[T,nkv*hd] are overwritten; recomputes probabilities from q, k and lse. */
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                        const float *v, const float *out, const float *lse, int T, int nh, int nkv, int hd);

/* ---- swiglu.c: out = silu(gate) * up, elementwise over n values ---- */
void swiglu_forward(float *out, const float *gate, const float *up, int64_t n);
/* dgate and dup overwritten from dout in one pass. */
void swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up, int64_t n);

/* ---- classifier.c: logits = x W^T over the vocabulary (W = the tied embedding or lm_head), softmax
 * cross-entropy against targets (target < 0 = ignored), computed in chunks of tokens so no T x V buffer is
 * needed. losses[t] = -log p(target) (0 for ignored). Returns the sum of losses over counted positions.
 * When dx is non-NULL it also runs backward with dloss[t] = loss_scale for each counted position:
 * dx[T,C] = dlogits W (overwritten), dW[V,C] += dlogits^T x. logits_out [T,V] is optional (NULL = not kept). */
double classifier_forward_backward(float *losses, float *logits_out, float *dx, float *dW_acc, const float *x,
                                   const float *W, const int32_t *targets, int T, int C, int V, float loss_scale);

/* ---- inference ops: the twins of kernels/int8_gemv.cu, f16_gemv.cu and decode_attention.cu, as plain loops ---- */
/* int8_gemv.c: W8A8 with FP16 scales per row or per group of `group` columns (group <= 0 or > cols: per row),
 * signed as dp4a takes them (host/quant.c is the fast CPU path, +128-offset form: the same integers).
 * xq[T, cols] = round(x / xs), xs[T, ng] = max|x in group| / 127 per token and group (0 when all are 0). */
void int8_act_quant(int8_t *xq, float *xs, const float *x, int T, int cols, int group);
/* y[T, rows] = sum over groups g of scale[r, g] * xs[t, g] * (integer dot of xq[t] and W[r] over g); scale [rows,
 * ng] FP16 bits. */
void int8_gemv(float *y, const int8_t *xq, const float *xs, const int8_t *W, const uint16_t *scale, int T, int rows,
               int cols, int group);
/* out[nr, nc] FP16 bits = rows [r0, r0 + nr) x columns [c0, c0 + nc) of W [*, cols] times their scales (the twin of
 * kn_int8_dequant_tile and, with the whole matrix, kn_int8_dequant). */
void int8_dequant_tile(uint16_t *out, const int8_t *W, const uint16_t *scale, int cols, int group, int64_t r0, int nr,
                       int c0, int nc);
/* f16_gemv.c: y[T, rows] = x[T, cols] W[rows, cols]^T with x and W as FP16 bits, FP32 accumulation. */
void f16_gemv(float *y, const uint16_t *x, const uint16_t *W, int T, int rows, int cols);
/* decode_attention.c: the attention of T new rows over a KV cache. q [T, nh*hd], row t at position pos + t, attends
 * (causal GQA, scale 1/sqrt(hd)) over cache positions [0, pos + t] of k, v [positions, nkv*hd]; out [T, nh*hd]. */
void decode_attention(float *out, const float *q, const float *k, const float *v, int T, int pos, int nh, int nkv,
                      int hd);

/* lora_apply.c: a LoRA adapter's side path, y[t * ldy + i] += scale * sum_j (x[t] . A[j]) B[i, j] for rows i < rows,
 * A [r, cols], B [rows, r], h scratch [T, r] (x A^T, the r-dim product first). Up to LORA_SMALL_T rows each output
 * is a fixed-order sum (row t the same bits whatever T), above two sgemms. scale 0 does nothing. */
#define LORA_SMALL_T 64
void lora_apply_forward(float *y, int ldy, const float *x, const float *A, const float *B, float scale, int T,
                        int rows, int cols, int r, float *h);

#endif
