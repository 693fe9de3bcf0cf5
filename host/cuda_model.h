/* cuda_model.h — the whole model forward and backward on a CUDA device, the twin of model_cpu.h: FP16 weights and
 * activations, FP32 statistics, losses and weight gradients, every op from kernels/ and every GEMM through cuBLAS
 * with FP32 accumulation. All device memory comes from one arena sized at open. Activations of every layer are
 * stored (the memory-planned, recomputing trainer is a later step); q|k|v and gate|up are one GEMM each.
 *
 * Gradient scaling: the FP16 activation gradients are (softmax - onehot) * act_grad_scale per token at the
 * logits, i.e. of order one, whatever the number of tokens; weight gradients are FP32 and accumulated with the
 * factor grad_scale / act_grad_scale, so FP16 neither underflows (1/T-sized values) nor overflows. */
#ifndef SC_CUDA_MODEL_H
#define SC_CUDA_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct cuda_model cuda_model;

enum {
    CUDA_MODEL_GRADS = 1,  /* keep an FP32 gradient block and the backward scratch */
    CUDA_MODEL_LOGITS = 2, /* keep a [max_T, V] FP32 logits buffer so steps can return logits */
};

#define CUDA_ACT_GRAD_SCALE 32.0f

/* Opens the current CUDA device for sequences of up to max_T tokens and uploads m's weights (FP32 -> FP16).
 * Returns -1 (sc_error) when there is no device, the shapes are unsupported (head_dim must be 64/72/80/96/128),
 * or the arena does not fit. */
int cuda_model_open(cuda_model **out, const sc_model *m, int max_T, int flags);
/* Re-uploads weights from a parameter-shaped FP32 host block (after an optimizer step on the host). */
int cuda_model_upload(cuda_model *cm, const float *params);
/* Runs ids[0..T-1] (targets[t] < 0 ignored) like model_cpu_step: *loss_sum = sum of per-position losses (in
 * double, token order), *counted = positions with target >= 0. logits_out (host, [T, V]) needs
 * CUDA_MODEL_LOGITS. want_grads ACCUMULATES d(grad_scale * sum of losses)/dparam into the device gradients. */
int cuda_model_step(cuda_model *cm, const int32_t *ids, const int32_t *targets, int T, float *logits_out,
                    int want_grads, float grad_scale, double *loss_sum, int *counted);
/* Copies the FP32 gradient block (nparams floats, the host parameter layout) to host memory. */
int cuda_model_read_grads(cuda_model *cm, float *host);
void cuda_model_zero_grads(cuda_model *cm);
/* Bytes of the device arena and a one-line description of the device. */
size_t cuda_model_device_bytes(const cuda_model *cm);
const char *cuda_model_device_name(const cuda_model *cm);
void cuda_model_close(cuda_model *cm);

#endif
