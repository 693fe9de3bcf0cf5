/* cuda_lora.h — a LoRA adapter on the CUDA training model: the device side of host/lora_cpu.h. host/cuda_model*.c
 * lays its buffers out in the model's arena (so `train --lora --plan` shows them) and calls it after each targeted
 * projection: forward y += s * B A drop(x), backward dB += s dy^T u, dA += (s dy B)^T drop(x), dx += drop'(s dy B A).
 * A and B live on the device as FP16 copies of the FP32 host adapter (the master, updated by AdamW on the host);
 * their gradients accumulate in FP32 on the device (GEMMs with beta = 1 over the tokens: deterministic). The saved
 * u = A drop(x) is FP16, one [T, r] block per adapted module (of one layer only when the model recomputes each layer
 * before its backward: the recompute writes it again). With streamed gradients (the small-card placement) the
 * device holds two layer slots instead of the whole FP32 block: a layer's slot starts from the pinned host
 * accumulator (zero on a step's first sequence), takes that layer's backward, and is copied down on a second stream
 * while the next layers' backward goes on (as full training's offload placement does with the base's gradients).
 * Dropout masks come from host/cpu/lora_dropout.h's
 * hash (kernels/lora_dropout.cu), so the CPU and CUDA trainers drop the same elements. */
#ifndef SC_CUDA_LORA_H
#define SC_CUDA_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "host/cuda_arena.h"
#include "host/lora.h"
#include "host/pinned.h"

typedef struct cuda_lora {
    const sc_lora *ad; /* shape and hyperparameters (not owned) */
    int T;             /* tokens per sequence, at most */
    int training;      /* gradients (FP32) and the backward scratch */
    float scale;       /* lora_scaling(ad) */
    uint16_t *w;       /* [nparams] FP16 A and B, the adapter's table layout (device) */
    float *g;          /* [nparams] FP32 gradients (device; training) */
    uint16_t *u;       /* [nlayers (1 with shared_u) * LORA_NTARGETS][T * r] FP16 saved A drop(x) (device) */
    int shared_u;      /* the model recomputes each layer before its backward: one layer's u is enough */
    /* streamed gradients (stream_grads; g is NULL): two device slots of one layer's gradients (layer_numel floats:
     * the adapter's layers are equal and contiguous), the pinned host accumulator sink [nparams], sink_clean = it
     * counts as zero (a step's first sequence) */
    int stream_grads, sink_clean;
    int64_t layer_numel;
    float *slot[2], *sink;
    pinned_buf sink_buf;
    void *copy, *computed[2], *copied[2]; /* cudaStream_t and cudaEvent_t (device builds) */
    uint16_t *du;      /* [T * r] s dy B (device; training) */
    uint16_t *xd;      /* [T * widest input] drop(x), and backward's du A before its mask (device; dropout > 0) */
    uint16_t *h16;     /* [nparams] host staging of the FP16 upload */
    int dropout_on;    /* this sequence trains with dropout */
    uint64_t dropout_key;
} cuda_lora;

/* Fills the shape fields (no memory): ad not owned, T tokens, training = gradients wanted, shared_u = the model
 * recomputes layers, stream_grads = the gradients stream to the host per layer (with training). */
void cuda_lora_init(cuda_lora *cl, const sc_lora *ad, int T, int training, int shared_u, int stream_grads);
/* Takes the device buffers from arena a (a sizing arena first, then the real one), named for the plan. */
void cuda_lora_layout(cuda_lora *cl, cuda_arena *a);
void cuda_lora_free(cuda_lora *cl);
/* Host bytes of the pinned gradient accumulator (0 without streamed gradients), for the plan. */
size_t cuda_lora_host_bytes(const cuda_lora *cl);

#ifdef SC_HAVE_KERNELS
#include "kernels/kernels.h"
/* After the layout in the real arena: the copy stream, events and pinned accumulator of streamed gradients. */
void cuda_lora_start(cuda_lora *cl);
/* Around the adapter's backward of one layer (the layer's slot in from the accumulator / out to it); nothing
 * without streamed gradients. cuda_lora_grads_done after the whole backward, once the step's stream is idle. */
void cuda_lora_layer_begin(cuda_lora *cl, int layer, cudaStream_t s);
void cuda_lora_layer_end(cuda_lora *cl, int layer, cudaStream_t s);
void cuda_lora_grads_done(cuda_lora *cl);
/* FP32 host adapter block (ad->params layout) -> the FP16 device copies (synchronous on stream). */
void cuda_lora_upload(cuda_lora *cl, const float *params, cudaStream_t stream);
/* The FP32 gradient block to host (nparams floats) / zeroed. */
void cuda_lora_read_grads(cuda_lora *cl, float *host, cudaStream_t stream);
void cuda_lora_zero_grads(cuda_lora *cl, cudaStream_t stream);
/* y[T, out] (row stride ldy) += s drop(x)[T, in] A^T B^T for (layer, target); no-op when not targeted. The T
 * tokens are tokens [t0, t0 + T) of the sequence (a chunk of the MLP; their saved A x goes there); with dropout
 * only whole sequences (t0 = 0: the masks are indexed from the sequence's first element). */
void cuda_lora_forward(cuda_lora *cl, kn_blas *b, cudaStream_t s, int layer, int target, kn_half *y, int ldy,
                       const kn_half *x, int T, int t0);
/* dy (row stride ldy) = dL/dy of that projection, x its input as in forward: the adapter's gradients (training)
 * and dx_acc[T, in] += its input gradient. */
void cuda_lora_backward(cuda_lora *cl, kn_blas *b, cudaStream_t s, int layer, int target, kn_half *dx_acc,
                        const kn_half *dy, int ldy, const kn_half *x, int T, int t0);
#endif

#endif
