/* lora_cpu.h — the LoRA branch of the CPU model (host/model_cpu.c calls it after each targeted projection when
 * sc_cpu_acts.lora is set): forward y += s * B A drop(x), and the backward that gives dA, dB and the input
 * gradient through the adapter (the base's own dx is model_cpu's). The base weights get no gradient. */
#ifndef SC_LORA_CPU_H
#define SC_LORA_CPU_H

#include <stdint.h>

#include "host/lora.h"
#include "host/model.h"

typedef struct lora_acts {
    const sc_lora *ad;
    float *grads;        /* adapter-shaped gradient block (accumulated into), or NULL: forward only */
    int T;               /* capacity in tokens */
    float *u;            /* [nlayers * LORA_NTARGETS][T * rank]: A drop(x), kept for backward */
    float *du, *xd;      /* scratch: [T * rank], [T * widest input] */
    int dropout_on;      /* 1 while training with ad->dropout > 0 */
    uint64_t dropout_key; /* the mask of this sequence: a pure function of (key, layer, module, element), so
                           * backward regenerates it and a resumed run draws the same masks */
} lora_acts;

void lora_acts_create(lora_acts *la, const sc_lora *ad, int T);
void lora_acts_free(lora_acts *la);

/* y[T, out] += s * drop(x)[T, in] A^T B^T for (layer, target); no-op when that module is not targeted. */
void lora_forward(lora_acts *la, int layer, int target, float *y, const float *x, int T);
/* dy = dL/dy of that projection, x its input as in forward: dB += s dy^T u, dA += (s dy B)^T drop(x) (when
 * la->grads), dx_acc += drop'((s dy B) A). */
void lora_backward(lora_acts *la, int layer, int target, float *dx_acc, const float *dy, const float *x, int T);

/* The frozen base as the device would hold it: "fp32" leaves it, "fp16" rounds every weight to FP16, "int8"
 * quantizes each linear layer's rows to INT8 with an FP16 scale (quant_rows) and back, so an adapter trained on
 * the CPU learns against the same base the CUDA path or an INT8 deployment computes with. */
int lora_base_precision(sc_model *m, const char *precision);

#endif
