/* cuda_forward.h — the CUDA side of `smallcoder forward`: loss, logits and gradients from host/cuda_model.c,
 * with the CPU path's outputs and timing lines. */
#ifndef SC_CUDA_FORWARD_H
#define SC_CUDA_FORWARD_H

#include <stdint.h>

#include "host/model.h"

/* Runs the forward `repeat` times (best time to stderr), then, when grads is non-NULL, one forward+backward that
 * writes d(mean loss)/dparam into grads (host, nparams floats, zeroed by the caller). logits (host [T, V]) is
 * optional. -1 (sc_error) when there is no usable device or the model does not fit. */
int cuda_forward_run(const sc_model *m, const int32_t *ids, const int32_t *targets, int T, float *logits,
                     float *grads, int repeat, double *loss_sum, int *counted);

#endif
