/* lora_dropout.h — the CPU twin of kernels/lora_dropout.cu: LoRA training's dropout on the adapter's input. The
 * keep mask of element i of (layer, module) slot is a hash of (key, slot, i), so backward regenerates it instead
 * of storing it, a resumed run draws the same masks, and the CPU (host/lora_cpu.c) and CUDA (host/cuda_lora.c)
 * trainers drop the same elements. */
#ifndef SC_CPU_LORA_DROPOUT_H
#define SC_CPU_LORA_DROPOUT_H

#include <stdint.h>

#include "kernels/lora_dropout_mask.h" /* kn_lora_drop_factor: the mask, shared with the kernel */

/* out[i] = (add ? add[i] : 0) + x[i] * kn_lora_drop_factor(key, slot, i, p, 1/(1-p)) for i < n (out may alias add):
 * forward drop(x) with add NULL, backward dx += drop'(dxd) with add = out = dx. */
void lora_dropout(float *out, const float *x, const float *add, int64_t n, uint64_t key, int slot, float p);

#endif
