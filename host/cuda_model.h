/* cuda_model.h — the whole model forward and backward on a CUDA device, the twin of model_cpu.h: FP16 weights and
 * activations, FP32 statistics, losses and weight gradients, every op from kernels/ and every GEMM through cuBLAS
 * with FP32 accumulation. All device memory comes from one arena sized at open. Activations of every layer are
 * stored, or with CUDA_MODEL_RECOMPUTE only each layer's input (the layer is recomputed in backward); q|k|v and
 * gate|up are one GEMM each. The training backend (train/backend_cuda.c) adds the optimizer state
 * (CUDA_MODEL_MASTER) or streams the layer gradients to pinned host memory (CUDA_MODEL_STREAM_GRADS).
 *
 * Gradient scaling: grad_scale (the trainer passes loss scale / counted positions) enters at the loss gradient,
 * dlogits = grad_scale * (softmax - onehot) in FP16, so every FP16 activation gradient carries the loss scale and
 * an overflow anywhere in backward becomes inf/nan in the FP32 weight gradients (which accumulate with factor 1);
 * the trainer unscales once, when the gradients are finished (docs/cuda.md "Gradient scaling"). */
#ifndef SC_CUDA_MODEL_H
#define SC_CUDA_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "host/cuda_arena.h"
#include "host/lora.h"
#include "host/model.h"

typedef struct cuda_model cuda_model;

enum {
    CUDA_MODEL_GRADS = 1,  /* keep an FP32 gradient block and the backward scratch */
    CUDA_MODEL_LOGITS = 2, /* keep a [max_T, V] FP32 logits buffer so steps can return logits */
    CUDA_MODEL_MASTER = 4, /* with GRADS: FP32 master weights and AdamW moments on the device ("full") */
    /* with GRADS: only the embedding/final-norm/lm_head gradients stay on the device; each layer's FP32 gradients
     * live in one of two device slots during its backward and are copied (on a second stream, while backward goes
     * on) into a pinned host block in the parameter layout ("offload") */
    CUDA_MODEL_STREAM_GRADS = 8,
    CUDA_MODEL_RECOMPUTE = 16, /* keep each layer's input only; recompute the layer in backward (same bits) */
    /* LoRA (cuda_model_open_lora): the base is frozen, so GRADS keeps only the backward scratch (no gradient block,
     * no dW GEMMs, no norm or embedding gradients); the adapter's gradients are host/cuda_lora.h's */
    CUDA_MODEL_FROZEN = 32,
    /* with FROZEN: the base's linear layers (*_proj) as per-row INT8 + FP16 scales (`smallcoder quantize`'s format,
     * host/lora_cpu.h lora_base_precision "int8"), each dequantized into one FP16 scratch matrix right before its
     * GEMM; embedding, norms and lm_head stay FP16 */
    CUDA_MODEL_INT8 = 64,
    /* with RECOMPUTE: the layers' inputs (the activation checkpoints) live in pinned host memory, copied down after
     * each layer's forward and up before its recompute; the device keeps one [T, C] buffer for them */
    CUDA_MODEL_HOST_CKPT = 128,
    /* with FROZEN and an untied lm_head: the embedding table stays in host memory (FP16); each step's rows are
     * gathered on the host and copied up (T x C halves), so the device holds no V x C table for the input side */
    CUDA_MODEL_HOST_EMBED = 256,
};
/* flags | CUDA_MODEL_KD(k): reserve device space for teacher rows of up to k top-k entries per position (1..1024,
 * at most the vocabulary) so cuda_model_step_kd can run. */
#define CUDA_MODEL_KD(k) ((int)(k) << 16)

/* A static loss scale for callers outside the trainer (forward --device cuda, the tests): they ask for
 * d(CUDA_MODEL_STATIC_SCALE * mean loss) so FP16 activation gradients keep their precision (1/T-sized values
 * would fall into FP16's subnormals), then multiply the gradients by its inverse, a power of two (exact). */
#define CUDA_MODEL_STATIC_SCALE 1024.0f

/* The device arena cuda_model_open(m, max_T, flags) would take for config c, laid out against a sizing arena a (no
 * device, no weights; a CPU-only build has it too): a->used is the total and a->items the named parts in layout
 * order, which `train --plan` prints. blas_ws_bytes: cuBLAS's workspace (open takes 32 MiB on sm_90+, 4 MiB before).
 * fp32 = 1: the what-if of FP32 weights and activations (no such model opens; --precision fp32's plan). */
int cuda_model_plan(cuda_arena *a, const sc_config *c, int max_T, int flags, size_t blas_ws_bytes, int fp32);
/* The same for a LoRA model (cuda_model_open_lora with adapter ad's shape; its weights are not read). */
int cuda_model_plan_lora(cuda_arena *a, const sc_config *c, const sc_lora *ad, int max_T, int flags,
                         size_t blas_ws_bytes);

/* Opens the current CUDA device for sequences of up to max_T tokens and uploads m's weights (FP32 -> FP16).
 * Returns -1 (sc_error) when there is no device, the shapes are unsupported (head_dim must be 64/72/80/96/128),
 * or the arena does not fit. */
int cuda_model_open(cuda_model **out, const sc_model *m, int max_T, int flags);
/* A LoRA model: m is the frozen base (flags must hold CUDA_MODEL_FROZEN; CUDA_MODEL_INT8 for an INT8 base), ad the
 * adapter (shape, hyperparameters and weights; not owned, must outlive the model) applied after every targeted
 * projection by host/cuda_lora.c. GRADS: the adapter's FP32 gradients accumulate on the device. */
int cuda_model_open_lora(cuda_model **out, const sc_model *m, const sc_lora *ad, int max_T, int flags);
/* The adapter's FP32 host weights (ad->params layout) up as the FP16 device copies (after an AdamW step). */
int cuda_model_lora_upload(cuda_model *cm, const float *params);
/* The adapter's gradient block (ad->nparams floats) down to host / zeroed. */
int cuda_model_lora_read_grads(cuda_model *cm, float *host);
void cuda_model_lora_zero_grads(cuda_model *cm);
/* Dropout of the next steps' adapter inputs: on with the mask key of the sequence (host/cpu/lora_dropout.h), or off. */
void cuda_model_lora_dropout(cuda_model *cm, int on, uint64_t key);
/* Re-uploads weights from a parameter-shaped FP32 host block (after an optimizer step on the host). */
int cuda_model_upload(cuda_model *cm, const float *params);
/* Runs ids[0..T-1] (targets[t] < 0 ignored) like model_cpu_step: *loss_sum = sum of per-position losses (in
 * double, token order), *counted = positions with target >= 0. logits_out (host, [T, V]) needs
 * CUDA_MODEL_LOGITS. want_grads ACCUMULATES d(grad_scale * sum of losses)/dparam into the device gradients. */
int cuda_model_step(cuda_model *cm, const int32_t *ids, const int32_t *targets, int T, float *logits_out,
                    int want_grads, float grad_scale, double *loss_sum, int *counted);
/* cuda_model_step with the distillation loss in place of cross-entropy, the twin of model_cpu_step_kd: kd holds
 * the teacher's rows for these T positions in host memory (host/cpu/kd_loss.h; logits are rounded to FP16 on the
 * way up, exact for rows read from a .kd) and is uploaded; kernels/kd_loss.cu computes alpha T^2 KL + (1 - alpha)
 * CE per position. *loss_sum = sum of the mixed losses, *ce_sum (optional) = sum of their CE parts. Needs
 * CUDA_MODEL_KD(k) at open with k >= kd->k; ids of counted positions must lie in [0, V) (checked) and be
 * distinct within a position (not checked). No logits out. */
typedef struct kd_targets kd_targets;
int cuda_model_step_kd(cuda_model *cm, const int32_t *ids, const int32_t *targets, int T, const kd_targets *kd,
                       int want_grads, float grad_scale, double *loss_sum, double *ce_sum, int *counted);
/* Copies the FP32 gradient block (nparams floats, the host parameter layout) to host memory. With
 * CUDA_MODEL_STREAM_GRADS host may be cuda_model_grad_sink(cm) itself (the device part is then copied into it). */
int cuda_model_read_grads(cuda_model *cm, float *host);
void cuda_model_zero_grads(cuda_model *cm);
/* Test hook: backward passes first..last (counted from 1 since open; steps without gradients do not count) write
 * +inf into the residual-stream activation gradient after the MLP backward of layer L/2, the planted FP16 overflow
 * of tests/gpu/test_train_backend.c. The environment variable SMALLCODER_TEST_OVERFLOW=N (pass N) or N+ (N on)
 * sets it at open, for the CLI tests. first <= 0: off. */
void cuda_model_test_overflow(cuda_model *cm, int64_t first, int64_t last);
/* CUDA_MODEL_STREAM_GRADS: the pinned host block (nparams floats) the layer gradients accumulate in; complete only
 * after cuda_model_read_grads(cm, sink). NULL otherwise. */
float *cuda_model_grad_sink(cuda_model *cm);
/* Sum of squares of the device gradient block (kn_sumsq: fixed order, inf/nan when any is); not with STREAM_GRADS. */
int cuda_model_grad_sumsq(cuda_model *cm, double *out);
/* CUDA_MODEL_MASTER: AdamW (kn_adamw_update) on parameters [off, off + n) of the master weights with their
 * gradients and moments; the FP16 working weights are rewritten from the result. */
void cuda_model_adamw(cuda_model *cm, int64_t off, int64_t n, float grad_mul, float wd, float lr, float beta1,
                      float beta2, float eps, int64_t t);
/* CUDA_MODEL_MASTER: copies master weights and moments down (any pointer may be NULL) / up (m, v NULL = zeros;
 * the FP16 working weights are refreshed from params). */
int cuda_model_get_master(cuda_model *cm, float *params, float *m, float *v);
int cuda_model_set_master(cuda_model *cm, const float *params, const float *m, const float *v);
/* Bytes of the device arena and a one-line description of the device. */
size_t cuda_model_device_bytes(const cuda_model *cm);
const char *cuda_model_device_name(const cuda_model *cm);
void cuda_model_close(cuda_model *cm);

#endif
