/* model_cpu.h — the FP32 reference forward and backward of the whole model on the CPU, built from the ops in
 * host/cpu/. Every activation backward needs is kept (the CPU has the memory; the GPU path recomputes). */
#ifndef SC_MODEL_CPU_H
#define SC_MODEL_CPU_H

#include <stdint.h>

#include "host/model.h"

typedef struct {
    float *x;           /* [T,C] residual stream entering the layer (resid_out of input_layernorm) */
    float *xn1, *rstd1; /* [T,C], [T] */
    float *q, *k, *v;   /* [T,nh*hd], [T,nkv*hd] x2 (q, k after RoPE) */
    float *att, *lse;   /* [T,nh*hd], [nh,T] */
    float *xmid;        /* [T,C] residual after attention */
    float *xn2, *rstd2; /* [T,C], [T] */
    float *gate, *up, *act; /* [T,F] each */
} sc_layer_acts;

typedef struct {
    int T;              /* capacity in tokens */
    float *block;       /* everything below points into it */
    sc_layer_acts *layers;
    float *xfinal, *xnf, *rstdf; /* final norm: input stream, output, rstd */
    float *losses;      /* [T] */
    /* backward scratch */
    float *dx, *dxn, *datt, *dq, *dk, *dv, *dgate, *dup, *dact, *tmp;
    /* LoRA (host/lora_cpu.h): NULL for the plain model. When set, every targeted projection adds its adapter
     * branch, and a step whose grads block is NULL still runs backward when lora->grads is set: the adapter gets
     * its gradients, the frozen base none. */
    struct lora_acts *lora;
} sc_cpu_acts;

void cpu_acts_create(sc_cpu_acts *a, const sc_config *cfg, int T);
void cpu_acts_free(sc_cpu_acts *a);

/* Runs the model on ids[0..T-1]; targets[t] is the id to predict at t (< 0 = ignored). Returns the sum of the
 * per-position cross-entropies over counted positions (*counted gets their number). logits_out [T,V] is
 * optional. When grads (a parameter-shaped block) is non-NULL, ACCUMULATES d(grad_scale * sum of losses)/dparam
 * into it: pass grad_scale = 1/counted for the gradient of the mean loss. */
double model_cpu_step(const sc_model *m, sc_cpu_acts *a, const int32_t *ids, const int32_t *targets, int T,
                      float *logits_out, float *grads, float grad_scale, int *counted);

/* The same step with the distillation loss of host/cpu/kd_loss.h (alpha*T^2*KL to the teacher's top-k + tail,
 * + (1-alpha)*CE) in place of plain cross-entropy; kd holds the teacher's rows for these T positions. Returns the
 * sum of the mixed per-position losses; *ce_sum (optional) gets the sum of their cross-entropies. */
typedef struct kd_targets kd_targets;
double model_cpu_step_kd(const sc_model *m, sc_cpu_acts *a, const int32_t *ids, const int32_t *targets, int T,
                         const kd_targets *kd, float *grads, float grad_scale, int *counted, double *ce_sum);

#endif
