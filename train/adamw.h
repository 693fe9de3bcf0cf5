/* adamw.h — AdamW on FP32 blocks laid out by the model's parameter table (PyTorch's torch.optim.AdamW update:
 * decoupled weight decay, bias-corrected moments), the global gradient norm, and gradient zeroing. Threaded
 * with OpenMP over contiguous chunks; every result is independent of the thread count. The CPU trainer and the
 * CUDA offload placement (AdamW on the host) both use it. */
#ifndef SC_TRAIN_ADAMW_H
#define SC_TRAIN_ADAMW_H

#include <stdint.h>

#include "host/model.h"

typedef struct {
    float lr;
    float beta1, beta2, eps;
    float weight_decay;    /* applied to matrices only: 1-D tensors (RMSNorm weights) are never decayed */
    int64_t t;             /* 1-based number of this update (bias correction); skipped steps do not count */
} adamw_hparams;

/* One tensor: g_eff = g * grad_mul (unscale and clip folded together), then
 *   p *= 1 - lr*wd;  m = b1 m + (1-b1) g_eff;  v = b2 v + (1-b2) g_eff^2;
 *   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps) */
void adamw_update(float *p, const float *g, float *m, float *v, int64_t n, float grad_mul, float wd,
                  const adamw_hparams *h);
/* Every tensor of the table over the parameter-shaped blocks params/grads/m/v; decays tensors with ndim >= 2. */
void adamw_step(const sc_param *table, int ntensors, float *params, const float *grads, float *m, float *v,
                float grad_mul, const adamw_hparams *h);

/* Sum of squares of g[0..n) in double, summed in fixed 64Ki chunks then in chunk order: the same value for any
 * thread count. Non-finite when any element is inf/nan. */
double grad_sumsq(const float *g, int64_t n);
/* g[0..n) = 0, threaded. */
void grad_zero(float *g, int64_t n);

/* The factor the gradients are multiplied by in the update: unscale (1/loss_scale), then clip the global norm
 * to clip (clip <= 0: no clipping). norm is the unscaled global norm, *norm_out receives it. */
float grad_multiplier(double sumsq_scaled, float loss_scale, float clip, double *norm_out);

#endif
