/* kd_loss.h — the output layer fused with the knowledge-distillation loss (CPU twin of a future
 * kernels/kd_loss.cu): per position  alpha * T^2 * KL over (teacher top-k + one tail bucket) at temperature T
 * + (1 - alpha) * cross-entropy, computed in chunks of tokens like classifier.c so no T x V buffer exists. */
#ifndef SC_CPU_KD_LOSS_H
#define SC_CPU_KD_LOSS_H

#include <stdint.h>

/* Teacher targets for T positions: the top-k ids and logits (already divided by the teacher's writing
 * temperature, as stored in a .kd) and the logsumexp of the teacher's full distribution. */
typedef struct kd_targets {
    int k;
    const int32_t *ids;   /* [T*k], distinct within a position, each < V */
    const float *logits;  /* [T*k] */
    const float *lse;     /* [T] */
    float alpha;          /* weight of the KD term; 1 - alpha goes to cross-entropy */
    float temperature;    /* KD temperature T (> 0) */
    int reverse;          /* 0: KL(teacher || student) (forward), 1: KL(student || teacher) (reverse) */
} kd_targets;

/* Buckets: the teacher's k ids, and the tail (every other id) as one bucket. The student's bucket probabilities
 * at temperature T are exact (its full softmax). The teacher's tail mass at T = 1 is exact (1 - sum of its top-k
 * probabilities); at T != 1 the tail logits are taken as equal (mass spread uniformly over the V - k ids), the
 * one assumption top-k storage forces; the tail is floored at 1e-8 so both KL directions stay finite.
 * losses[t] = alpha*T^2*KL + (1-alpha)*CE (0 where targets[t] < 0), ce_out[t] (optional) = the CE alone.
 * Returns the sum of losses. Backward as classifier_forward_backward: with dx non-NULL, dloss[t] = loss_scale for
 * counted positions; dx[T,C] = dlogits W (overwritten), dW[V,C] += dlogits^T x. */
double kd_classifier_forward_backward(float *losses, float *ce_out, float *dx, float *dW_acc, const float *x,
                                      const float *W, const int32_t *targets, const kd_targets *kd, int T, int C,
                                      int V, float loss_scale);

#endif
