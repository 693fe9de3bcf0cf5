/* backend.h — what the training loop needs from a device: accumulate gradients over sequences, evaluate, the
 * gradient norm, the AdamW update, and access to the FP32 state for checkpoints. backend_cpu.c implements it with
 * host/model_cpu.h (FP32 end to end); the CUDA backend (full and offload placements, FP16 + dynamic loss scaling)
 * implements the same table, so train/trainer.c, checkpoints, eval and metrics are shared. */
#ifndef SC_TRAIN_BACKEND_H
#define SC_TRAIN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "train/adamw.h"
#include "host/lora.h"
#include "host/model.h"

typedef struct train_backend train_backend;

struct train_backend {
    const char *name;        /* "cpu", "cuda full", "cuda offload" */
    sc_model *model;         /* FP32 master weights on the host (current after read_state) */
    int fp16;                /* 1: gradients can overflow, the trainer runs dynamic loss scaling */
    sc_lora *lora;           /* LoRA: the trained adapter (model is then the frozen base, and the moments, gradients
                              * and checkpoints are the adapter's); NULL for full training */
    int64_t step;            /* the optimizer step being accumulated (set by the trainer; LoRA dropout masks) */
    void *impl;

    /* Adds d(grad_scale * sum of losses)/dparam over n sequences (ids, targets: [n, T], target < 0 ignored) to
     * the gradient accumulators. *loss_sum gets the unscaled sum of per-token losses, *counted the positions. */
    int (*accumulate)(train_backend *b, const int32_t *ids, const int32_t *targets, int n, int T, float grad_scale,
                      double *loss_sum, int64_t *counted);
    /* Forward only (no gradients touched). */
    int (*evaluate)(train_backend *b, const int32_t *ids, const int32_t *targets, int n, int T, double *loss_sum,
                    int64_t *counted);
    /* Sum of squares of the accumulated gradients (still multiplied by the loss scale); inf/nan when any is. */
    int (*grad_sumsq)(train_backend *b, double *out);
    /* AdamW with gradients * grad_mul (unscale and clip), then zero the gradients. */
    int (*apply)(train_backend *b, float grad_mul, const adamw_hparams *h);
    /* Zero the gradients without updating (a skipped step). */
    int (*zero_grads)(train_backend *b);
    /* Host FP32 views of the AdamW moments for a checkpoint; also brings model->params up to date. The pointers
     * stay valid until the next accumulate/apply. */
    int (*read_state)(train_backend *b, const float **m, const float **v);
    /* On resume: takes weights from model->params and the moments from m, v (nparams floats each). */
    int (*write_state)(train_backend *b, const float *m, const float *v);
    /* Test hook: the raw gradient block on the host when the backend keeps one there (NULL otherwise). */
    float *(*host_grads)(train_backend *b);
    void (*close)(train_backend *b);
};

/* Distillation (distill/kd_train.h provides one): the teacher's rows for each training sequence, asked for in the
 * order accumulate() sees the sequences; ids are the sequence's T input ids (an online teacher runs on them).
 * The rows stay valid until the next call. evaluate() never uses it (validation stays plain cross-entropy). */
typedef struct kd_targets kd_targets;
typedef struct {
    void *ctx;
    int (*next)(void *ctx, const int32_t *ids, int T, kd_targets *out);
} train_kd;

/* The CPU backend over m (not owned), for sequences of up to max_T tokens. training = 0 allocates no gradients
 * or optimizer state (eval only). */
void backend_cpu_open(train_backend *b, sc_model *m, int max_T, int training);
/* Trains with the distillation loss from now on (kd copied; kd->ctx not owned). */
void backend_cpu_set_kd(train_backend *b, const train_kd *kd);

/* The CPU LoRA backend (backend_lora.c): m is the frozen base (no gradients, no optimizer state), ad the adapter
 * that trains (both not owned); b->lora = ad. seed draws the dropout masks. training = 0: evaluation only. */
void backend_lora_open(train_backend *b, sc_model *m, sc_lora *ad, int max_T, int training, uint64_t seed);
void backend_lora_set_kd(train_backend *b, const train_kd *kd);
/* The dropout mask key of training sequence seq_index (counted from 0 within optimizer step `step`): both LoRA
 * backends draw their masks from it (host/cpu/lora_dropout.h), so they drop the same elements and a resumed run
 * draws the masks it would have drawn. */
uint64_t backend_lora_dropout_key(uint64_t seed, int64_t step, int64_t seq_index);

/* The CUDA LoRA backend (backend_lora_cuda.c): the frozen base on the device in FP16, or with int8 = 1 as per-row
 * INT8 + FP16 scales dequantized before each GEMM; the adapter's FP16 copies and FP32 gradients on the device, its
 * FP32 master and AdamW moments on the host (adamw.c, as the CPU LoRA backend, so checkpoints are the same files
 * and the update the same arithmetic). b->fp16 = 1 (dynamic loss scaling). kd_k: as backend_cuda_open. -1 (sc_error)
 * without a device or kernels, or when the arena does not fit. recompute: keep each layer's input only. */
int backend_lora_cuda_open(train_backend *b, sc_model *m, sc_lora *ad, int max_T, int int8, int recompute, int kd_k,
                           uint64_t seed);
/* Evaluation only (`smallcoder eval --lora`): the FP16 base with the adapter applied unmerged, no gradients;
 * evaluate and close only. */
int backend_lora_cuda_open_eval(train_backend *b, sc_model *m, sc_lora *ad, int max_T);
void backend_lora_cuda_set_kd(train_backend *b, const train_kd *kd);
void backend_lora_cuda_describe(const train_backend *b, char *buf, size_t n);
size_t backend_lora_cuda_device_bytes(const train_backend *b);
/* host/cuda_model.h's flags of a CUDA LoRA model: what the backend opens and what the plan lays out. */
int backend_lora_cuda_flags(int int8, int recompute);

/* The CUDA backend (backend_cuda.c) over m (not owned) for sequences of up to max_T tokens; placement is PLAN_FULL
 * or PLAN_OFFLOAD (plan.h). FP16 working weights: b->fp16 = 1. Its device memory is one arena sized at open, with
 * room for distillation targets of up to kd_k teacher logits per position (0 = none); -1 (sc_error) when there is
 * no device, no kernels in this build, or the arena does not fit. */
int backend_cuda_open(train_backend *b, sc_model *m, int max_T, int placement, int kd_k);
/* Trains with the distillation loss from now on (kd copied; kd->ctx not owned); needs kd_k at open. */
void backend_cuda_set_kd(train_backend *b, const train_kd *kd);
/* Evaluation only (`smallcoder eval`): FP16 weights and activations, no gradients; evaluate and close only. */
int backend_cuda_open_eval(train_backend *b, sc_model *m, int max_T);
/* "device name, device arena 1.23 GiB" for the start-up line; the arena's bytes. */
void backend_cuda_describe(const train_backend *b, char *buf, size_t n);
size_t backend_cuda_device_bytes(const train_backend *b);

static inline void backend_close(train_backend *b) {
    if (b && b->close) b->close(b);
}

#endif
