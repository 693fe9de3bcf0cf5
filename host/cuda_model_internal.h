/* cuda_model_internal.h — private to host/cuda_model*.c: the struct behind host/cuda_model.h's handle and the
 * functions its files share. cuda_model_layout.c: shapes, offsets and the device layout (also in a CPU-only build,
 * for `train --plan`); cuda_model_step.c: forward, backward and the loss of one sequence; cuda_model.c: open,
 * uploads, gradients, optimizer state, close. */
#ifndef SC_CUDA_MODEL_INTERNAL_H
#define SC_CUDA_MODEL_INTERNAL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/cuda_arena.h"
#include "host/cuda_lora.h"
#include "host/cuda_model.h"
#include "host/error.h"
#include "host/pinned.h"
#ifdef SC_HAVE_KERNELS
#include "host/cuda_check.h"
#include "host/device.h"
#include "host/half.h"
#include "host/cpu/kd_loss.h"
#include "host/cpu/ops.h"
#include "host/quant.h"
#include "kernels/kernels.h"
#else
/* A CPU-only build runs the layout alone (cuda_model_plan, for `train --plan`); these stand in for the CUDA types
 * the struct names. */
#include "kernels/sizes.h"
typedef uint16_t kn_half;
typedef void *cudaStream_t, *cudaEvent_t;
typedef struct kn_blas kn_blas;
#endif

typedef struct {
    kn_half *x, *xn1, *qkv, *att, *xmid, *xn2, *gu, *act; /* [T,C] [T,C] [T,QKV] [T,Q] [T,C] [T,C] [T,2F] [T,F] */
    float *rstd1, *rstd2, *lse;                           /* [T] [T] [nh,T] */
} cuda_layer_acts;

/* CUDA_MODEL_INT8: one fused linear matrix of a layer (qkv, o, gate|up, down) as INT8 rows at w8 + q with FP16
 * scales at s8 + s. */
typedef struct {
    int64_t q, s;
    int rows, cols;
} cuda_int8_mat;
enum { LIN_QKV, LIN_O, LIN_GU, LIN_DOWN, LIN_N };

/* Offsets (elements) of one layer's tensors in the parameter block; the same for weights and gradients. The
 * biases (-1 when the config has none) sit after the final norm and lm_head (model_param_table), q|k|v and gate|up
 * consecutive like their matrices, so a fused bias is one vector too. */
typedef struct {
    int64_t attn_norm, wqkv, wo, mlp_norm, wgu, wdown;
    int64_t bqkv, bo, bgu, bdown;
} cuda_layer_offs;

struct cuda_model {
    sc_config cfg;
    int max_T, flags, chunk;
    int mlp_chunk; /* tokens per MLP chunk (mlp_forward); max_T = the whole sequence at once */
    int C, F, Q, KV, QKV, nh, nkv, hd, V, L;
    int64_t nparams, embed_off, final_norm_off, lm_head_off;
    cuda_layer_offs *offs;
    char device[160];
    size_t half_bytes; /* sizing only: bytes per kn_half (4 = the FP32-storage what-if of cuda_model_plan) */
    cudaStream_t stream;
    kn_blas *blas;
    cuda_arena arena;
    /* device memory, all from the arena */
    kn_half *w;  /* [nparams] FP16 weights */
    float *g;    /* [nparams] FP32 gradients (CUDA_MODEL_GRADS without STREAM_GRADS) */
    float *master, *mom1, *mom2; /* [nparams] FP32 each (CUDA_MODEL_MASTER) */
    double *sumsq;               /* kn_sumsq's result */
    /* CUDA_MODEL_STREAM_GRADS: embedding rows [0, offs[0].attn_norm), the tail from final_norm_off on, and two
     * layer slots; sink = pinned host block in the parameter layout; sink_clean = its layer part counts as zero */
    float *g_embed, *g_tail, *g_slot[2], *sink;
    pinned_buf sink_buf;
    int64_t layer_numel;
    int sink_clean;
    cudaStream_t copy;
    cudaEvent_t computed[2], copied[2];
    /* STREAM_GRADS (the offload placement uploads every step): two pinned FP16 chunks, filled on the host while
     * the other one is copied up, so only half the bytes cross the bus and at pinned speed */
    uint16_t *up16[2];
    pinned_buf up_buf[2];
    cudaEvent_t up_done[2];
    cuda_layer_acts *acts;
    kn_half *emb, *o, *down, *xfinal, *xnf;
    float *rstdf, *losses, *logits;
    float *inv_freq; /* [hd/2] RoPE inverse frequencies, uploaded once at open (graph-safe: no per-launch copy) */
    int32_t *ids, *targets, *plan;
    /* test hook (cuda_model_test_overflow / SMALLCODER_TEST_OVERFLOW): backward passes [ovf_first, ovf_last] (1-based
     * count of backward passes since open) write +inf into an activation gradient halfway through the layers */
    int64_t backwards, ovf_first, ovf_last;
    /* CUDA_MODEL_KD(kd_k): the teacher's rows of a step, [T, kd_k] / [T], and the per-position CE parts */
    int kd_k;
    int32_t *kd_ids;
    kn_half *kd_logits;
    float *kd_lse, *kd_ce;
    kn_half *dx, *dxn, *datt, *dqkv, *dgu, *dact;
    void *ws, *blas_ws, *gemm_staging; /* gemm_staging: KN_GEMM_STAGING_BYTES (SGEMM copies, GEMM tuning) */
    size_t ws_bytes, blas_ws_bytes;
    /* host scratch */
    float *h_losses;
    int32_t *h_plan;
    float *h_ce;      /* [max_T] (CUDA_MODEL_KD) */
    uint16_t *h_kd16; /* [max_T, kd_k] FP16 staging of the teacher's logits (CUDA_MODEL_KD) */
    /* LoRA (cuda_model_open_lora): the adapter, applied after each targeted projection (host/cuda_lora.c) */
    cuda_lora *lora;
    /* CUDA_MODEL_INT8: the linear layers' (and an untied lm_head's: head8) INT8 rows and FP16 scales
     * (q8[LIN_N l + LIN_*]) and the FP16 scratch of deq_numel halves that one tile of a matrix is dequantized into
     * right before each GEMM on it (lin_forward, lin_backward, the classifier); w then holds the other parameters
     * only (w_numel, compact: offs, embed_off, final_norm_off, lm_head_off point into it); table: the host parameter
     * table, for uploads */
    int64_t w_numel, n8, nrows8, deq_numel;
    int8_t *w8;
    kn_half *s8, *deq;
    cuda_int8_mat *q8, head8;
    int head_int8;
    sc_param *table;
    int ntensors;
    /* CUDA_MODEL_HOST_EMBED with an untied head: the FP16 embedding table on the host, pinned row staging */
    int emb_on_host;
    uint16_t *emb_host, *emb_stage;
    pinned_buf emb_stage_buf;
    /* CUDA_MODEL_HOST_CKPT: every layer's input [L, T, C] FP16 in pinned host memory */
    uint16_t *ckpt;
    pinned_buf ckpt_buf;
};

static inline size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

enum { UPLOAD_CHUNK = 1 << 22 }; /* halves per pinned upload chunk (8 MiB) */

/* cuda_model_layout.c */
/* Every device buffer, from arena a (a sizing arena first, then the real one), each part named for the plan. */
void cuda_model_layout(cuda_model *cm, cuda_arena *a);
/* The shapes, offsets and flags of a model over m's table (params not read); NULL (sc_error) when the table is not
 * laid out as the layout assumes. */
cuda_model *cuda_model_shape(const sc_model *m, int max_T, int flags);
/* cm->lora for adapter ad, as the model's flags want it (saved A x, streamed gradients, the MLP's chunks). */
void cuda_model_attach_lora(cuda_model *cm, const sc_lora *ad);
void cuda_model_free_shape(cuda_model *cm);
/* A weight CUDA_MODEL_INT8 keeps as INT8. */
int cuda_model_is_int8(const sc_param *p);

#ifdef SC_HAVE_KERNELS
/* cuda_model_step.c: the step of cuda_model_step and cuda_model_step_kd (kd NULL = cross-entropy). */
int cuda_model_run_step(cuda_model *cm, const int32_t *ids, const int32_t *targets, int T, float *logits_out,
                        const kd_targets *kd, int want_grads, float grad_scale, double *loss_sum, double *ce_sum,
                        int *counted);
#endif

#endif
