/* plan.h — the training memory planner: every buffer the trainer will allocate, computed from the model config,
 * sequence length and micro-batch before anything is allocated (DESIGN.md "Memory plan"). Pure arithmetic, so it
 * is unit-tested, printed by `train --plan`, and is the contract the CUDA backend allocates its one arena from. */
#ifndef SC_TRAIN_PLAN_H
#define SC_TRAIN_PLAN_H

#include <stdint.h>
#include <stdio.h>

#include "host/config.h"

typedef enum { PLAN_CPU, PLAN_FULL, PLAN_OFFLOAD } plan_placement;
typedef enum { PLAN_DEVICE, PLAN_HOST } plan_where;

#define PLAN_MAX_ITEMS 24
#define PLAN_CLASSIFIER_CHUNK 128          /* tokens per logits chunk on the GPU (never T x V) */
#define PLAN_CUBLAS_WORKSPACE (32ll << 20) /* cuBLAS/cuBLASLt workspace */
#define PLAN_MISC_SLACK (8ll << 20)        /* reduction scratch, kernel parameters, alignment padding */

typedef struct {
    char name[48];
    char note[112];
    int64_t bytes;
    plan_where where;
} plan_item;

typedef struct {
    plan_placement placement;
    int fp16;        /* device storage: 1 = FP16 weights/activations (FP32 accumulation), 0 = FP32 */
    int recompute;   /* activation checkpointing: keep each layer's input only, recompute the layer in backward */
    int seq, micro_batch;
    int lora;        /* a LoRA plan: nparams counts the adapter */
    int64_t nparams;
    plan_item items[PLAN_MAX_ITEMS];
    int n;
    int64_t device_bytes, host_bytes;
    /* outside the arena, taken before it: the CUDA context, cuBLAS and the loaded kernels (host/device_probe.h),
     * measured on the open device or the documented estimate; 0 = not known (not printed) */
    int64_t context_bytes;
    char context_note[200];
} train_plan;

/* The CUDA plan for a placement (PLAN_FULL or PLAN_OFFLOAD). full keeps master weights, gradients and AdamW state
 * on the device and every activation (no recompute); offload keeps only the working weights on the device,
 * streams gradients to pinned host FP32 accumulators and recomputes each layer in backward. The sequences of a
 * micro-batch run one after another, so the device total does not depend on micro_batch. The device rows are
 * host/cuda_model_layout.c's own layout against a sizing arena (cuda_model_plan, cuBLAS workspace PLAN_CUBLAS_WORKSPACE)
 * plus PLAN_MISC_SLACK; the CUDA context and cuBLAS's own allocations come on top. fp16 = 0 is the what-if of FP32
 * storage (the CUDA backend trains in FP16 only). */
void plan_cuda(train_plan *p, const sc_config *cfg, int seq, int micro_batch, plan_placement placement, int fp16);
/* host/cuda_model.h's flags for a placement: what the CUDA backend opens with and what the plan lays out. */
int plan_cuda_flags(plan_placement placement);
/* The CPU trainer's plan (FP32 everywhere, every activation of one sequence kept; micro-batch sequences run one
 * after another through the same buffers). threads sizes the per-thread attention scratch. */
void plan_cpu(train_plan *p, const sc_config *cfg, int seq, int micro_batch, int threads);

/* The CPU LoRA trainer's plan (backend_lora.c): the frozen FP32 base without gradients or moments, the adapter of
 * rank r on the modules of targets (host/lora.h bits) with its gradients and AdamW state, the same activations as
 * plan_cpu plus the adapter's saved A x per module and its scratch. */
void plan_cpu_lora(train_plan *p, const sc_config *cfg, int seq, int micro_batch, int threads, int rank,
                   unsigned targets);

/* The CUDA LoRA trainer's plan (backend_lora_cuda.c): the frozen base in FP16 (int8 = 1: linear layers INT8 with
 * a dequant scratch), the adapter's FP16 copies, FP32 gradients and saved A x on the device, its FP32 master and
 * moments on the host. PLAN_FULL keeps every activation, PLAN_OFFLOAD each layer's input only (layer recompute).
 * The device rows are host/cuda_model_layout.c's layout (cuda_model_plan_lora) plus PLAN_MISC_SLACK. */
void plan_cuda_lora(train_plan *p, const sc_config *cfg, int seq, int micro_batch, plan_placement placement, int rank,
                    unsigned targets, float dropout, int int8);

/* Sets the context row of a CUDA plan (plan_print shows it under the arena's total, with the total of both). */
void plan_set_context(train_plan *p, int64_t bytes, const char *note);
/* Prints the table and totals; budget > 0 adds a "fits / over by" line for the device total (the arena: the budget
 * is what is free once the context exists). */
void plan_print(FILE *f, const train_plan *p, int64_t budget);
const char *plan_placement_name(plan_placement p);
/* "1.23 GiB" / "456.7 MiB" / "12.0 KiB" into buf. */
const char *plan_fmt_bytes(char *buf, size_t n, int64_t bytes);

/* When p does not fit budget: writes into buf what to lower (another placement, fp16, a shorter --seq)
 * with the sizes those choices would need. Returns buf. */
const char *plan_advice(char *buf, size_t n, const sc_config *cfg, const train_plan *p, int64_t budget);

#endif
