/* backend_cuda_step.h — one training or evaluation sequence on a cuda_model, with the teacher's rows when the
 * backend distils: the step both CUDA backends (backend_cuda.c, backend_lora_cuda.c) run per sequence. */
#pragma once
#include <stdint.h>

#include "train/backend.h"
#include "host/cuda_model.h"

/* Sequence si (targets st, T tokens): with training and kd->next, the distillation step on the teacher's rows for
 * it (taken in order); else plain cross-entropy, with gradients when training. Adds to *loss_sum and *counted;
 * -1 (sc_error) on failure. */
int backend_cuda_seq_step(cuda_model *cm, const train_kd *kd, const int32_t *si, const int32_t *st, int T, int training,
                          float grad_scale, double *loss_sum, int64_t *counted);

/* Fills b from a backend's table of operations (accumulate ... close) and the fields every CUDA backend sets: its
 * name, the model m, FP16 activations (the trainer's dynamic loss scaling) and its state. */
void backend_cuda_bind(train_backend *b, const train_backend *ops, const char *name, sc_model *m, void *impl);
/* The accumulate of an evaluation-only backend: refuses with one line. */
int backend_cuda_eval_only(train_backend *b, const int32_t *ids, const int32_t *targets, int n, int T,
                           float grad_scale, double *loss_sum, int64_t *counted);
