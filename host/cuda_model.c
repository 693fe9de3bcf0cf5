/* cuda_model.c — see cuda_model.h. A layer is the CPU model's layer (host/model_cpu.c) with the projections
 * fused: norm1(+add) -> qkv GEMM -> RoPE on q|k -> flash attention -> o GEMM -> norm2(+add) -> gate|up GEMM ->
 * SwiGLU -> down GEMM, the down output being added in the next norm. Open-model biases (qwen2 q/k/v, Llama
 * attention_bias/mlp_bias) are added after their GEMM (q/k before RoPE, as HF), and RoPE reads the config's
 * inverse frequencies (rope_scaling linear/llama3), as the CPU model does. The fused GEMMs read the weights in place:
 * q, k, v (and gate, up) are consecutive in the parameter table, so together they are one [rows, C] matrix.
 * Recompute (CUDA_MODEL_RECOMPUTE): every layer keeps its own x (the norm1 output residual, i.e. the layer's input);
 * the rest of the activations are one shared set, refilled for layer l by running layer l's forward again from x
 * just before its backward. The kernels are deterministic, so the refill has the bits of the first forward. */
#include "host/cuda_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/cuda_arena.h"
#include "host/cuda_lora.h"
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

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

enum { UPLOAD_CHUNK = 1 << 22 }; /* halves per pinned upload chunk (8 MiB) */

static size_t take_size(const cuda_model *cm, size_t size) {
    return size == sizeof(kn_half) && cm->half_bytes ? cm->half_bytes : size;
}

/* Every device buffer, from arena a (a sizing arena first, then the real one), each part named for the record
 * that `train --plan` prints (cuda_model_plan): the plan is this layout, not a second derivation of it. */
static void cuda_model_layout(cuda_model *cm, cuda_arena *a) {
    size_t T = (size_t)cm->max_T;
    /* frozen (LoRA): STREAM_GRADS streams the adapter's gradients (host/cuda_lora.c), the base has none */
    int grads = cm->flags & CUDA_MODEL_GRADS, frozen = cm->flags & CUDA_MODEL_FROZEN;
    int stream = grads && (cm->flags & CUDA_MODEL_STREAM_GRADS) && !frozen;
    int recompute = cm->flags & CUDA_MODEL_RECOMPUTE;
#define TAKE(type, n) ((type *)cuda_arena_alloc(a, take_size(cm, sizeof(type)) * (size_t)(n)))
    cuda_arena_name(a, "weights");
    cm->w = TAKE(kn_half, cm->w_numel);
    if (cm->flags & CUDA_MODEL_INT8) {
        cuda_arena_name(a, "INT8 weights");
        cm->w8 = TAKE(int8_t, cm->n8);
        cm->s8 = TAKE(kn_half, cm->nrows8);
        cuda_arena_name(a, "dequant scratch");
        cm->deq = TAKE(kn_half, cm->deq_numel);
    }
    if (cm->lora) cuda_lora_layout(cm->lora, a);
    cuda_arena_name(a, "gradients");
    cm->g = grads && !stream && !frozen ? TAKE(float, cm->nparams) : NULL;
    if (stream) {
        cuda_arena_name(a, "embedding grads");
        cm->g_embed = TAKE(float, cm->offs[0].attn_norm);
        cm->g_tail = TAKE(float, cm->nparams - cm->final_norm_off);
        cuda_arena_name(a, "layer grads");
        cm->g_slot[0] = TAKE(float, cm->layer_numel);
        cm->g_slot[1] = TAKE(float, cm->layer_numel);
    }
    if (grads && (cm->flags & CUDA_MODEL_MASTER)) {
        cuda_arena_name(a, "master weights");
        cm->master = cm->half_bytes == sizeof(float) ? NULL : TAKE(float, cm->nparams); /* FP32 what-if: w is it */
        cuda_arena_name(a, "AdamW m, v");
        cm->mom1 = TAKE(float, cm->nparams);
        cm->mom2 = TAKE(float, cm->nparams);
    }
    for (int l = 0; l < cm->L; l++) {
        cuda_layer_acts *A = &cm->acts[l];
        cuda_arena_name(a, recompute ? "activation checkpoints" : "activations");
        /* host checkpoints: one device buffer for the layer being computed */
        A->x = l > 0 && recompute && (cm->flags & CUDA_MODEL_HOST_CKPT) ? cm->acts[0].x : TAKE(kn_half, T * cm->C);
        if ((cm->flags & CUDA_MODEL_RECOMPUTE) && l > 0) { /* layer 0's set is everyone's workspace */
            kn_half *x = A->x;
            *A = cm->acts[0];
            A->x = x;
            continue;
        }
        cuda_arena_name(a, recompute ? "layer workspace" : "activations");
        A->xn1 = TAKE(kn_half, T * cm->C);
        A->qkv = TAKE(kn_half, T * cm->QKV);
        A->att = TAKE(kn_half, T * cm->Q);
        A->xmid = TAKE(kn_half, T * cm->C);
        A->xn2 = TAKE(kn_half, T * cm->C);
        size_t Tm = recompute ? (size_t)cm->mlp_chunk : T; /* recompute: the MLP's chunk only */
        A->gu = TAKE(kn_half, Tm * 2 * cm->F);
        A->act = TAKE(kn_half, Tm * cm->F);
        A->rstd1 = TAKE(float, T);
        A->rstd2 = TAKE(float, T);
        A->lse = TAKE(float, T * cm->nh);
    }
    /* frozen with gradients: the embedding output, the o projection's and the MLP's outputs are forward-only
     * values and share the backward's dx, d(att) and d(qkv) (see below) */
    int share = frozen && grads;
    cuda_arena_name(a, "model buffers");
    cm->sumsq = grads ? TAKE(double, 1) : NULL;
    cm->emb = share ? NULL : TAKE(kn_half, T * cm->C);
    cm->o = share ? NULL : TAKE(kn_half, T * cm->C);
    cm->down = share ? NULL : TAKE(kn_half, T * cm->C);
    cm->xfinal = TAKE(kn_half, T * cm->C);
    cm->xnf = TAKE(kn_half, T * cm->C);
    cm->rstdf = TAKE(float, T);
    cm->losses = TAKE(float, T);
    cuda_arena_name(a, "logits");
    cm->logits = (cm->flags & CUDA_MODEL_LOGITS) ? TAKE(float, T * cm->V) : NULL;
    cuda_arena_name(a, "model buffers");
    cm->inv_freq = TAKE(float, cm->hd / 2);
    cm->ids = TAKE(int32_t, T);
    cm->targets = TAKE(int32_t, T);
    cm->plan = grads ? TAKE(int32_t, kn_embedding_plan_ints(cm->max_T)) : NULL;
    if (cm->kd_k) {
        cuda_arena_name(a, "teacher rows");
        cm->kd_ids = TAKE(int32_t, T * cm->kd_k);
        cm->kd_logits = TAKE(kn_half, T * cm->kd_k);
        cm->kd_lse = TAKE(float, T);
        cm->kd_ce = TAKE(float, T);
    }
    if (grads) {
        cuda_arena_name(a, "backward scratch");
        cm->dx = TAKE(kn_half, T * cm->C);
        cm->dxn = TAKE(kn_half, T * cm->C);
        cm->datt = TAKE(kn_half, T * (size_t)(share && cm->C > cm->Q ? cm->C : cm->Q));
        cm->dqkv = TAKE(kn_half, T * (size_t)(share && cm->C > cm->QKV ? cm->C : cm->QKV));
        if (share) {
            /* emb is read by layer 0's first norm only (a recompute starts from the stored x), before backward
             * writes dx; o is written and read within a layer's forward, d(att) within a layer's backward; down
             * is read by the next layer's (or the final) norm in forward, and in backward only written (a chunk's
             * recompute), before that layer's attention backward fills d(qkv) and after the layer above used it */
            cm->emb = cm->dx, cm->o = cm->datt, cm->down = cm->dqkv;
        }
        /* frozen: d(gate|up) overwrites the layer's gate|up in place (kn_swiglu_backward allows it; with no dW
         * GEMM nothing reads gate|up after it), one [T, 2F] buffer less */
        cm->dgu = (cm->flags & CUDA_MODEL_FROZEN) ? NULL : TAKE(kn_half, T * 2 * cm->F);
        cm->dact = TAKE(kn_half, (size_t)cm->mlp_chunk * cm->F);
    }
    /* one workspace for whichever op runs: they run one after another on one stream; also the FP32 staging
     * buffer of uploads (at least 1 Mi floats) */
    size_t ws = kn_classifier_workspace(cm->chunk, cm->V);
    ws = max_sz(ws, kn_rmsnorm_backward_workspace(cm->max_T, cm->C));
    ws = max_sz(ws, kn_attention_backward_workspace(cm->max_T, cm->nh));
    ws = max_sz(ws, kn_sumsq_workspace(cm->nparams));
    ws = max_sz(ws, (size_t)1 << 22);
    cm->ws_bytes = ws;
    cuda_arena_name(a, "classifier");
    cm->ws = cuda_arena_alloc(a, ws);
    cuda_arena_name(a, "cuBLAS workspace");
    cm->blas_ws = cuda_arena_alloc(a, cm->blas_ws_bytes);
    cuda_arena_name(a, "GEMM staging");
    cm->gemm_staging = cuda_arena_alloc(a, KN_GEMM_STAGING_BYTES);
    cuda_arena_name(a, NULL);
#undef TAKE
}

/* The biases of each layer, in the order model_param_table adds them after the 9-per-layer matrices (model_view).
 * Their gradients live in the tail (from final_norm_off on), so streamed gradients keep them on the device. */
static int bias_offsets(cuda_model *cm, const sc_model *m) {
    const sc_config *c = &m->cfg;
    const sc_param *t = m->table;
    int k = 2 + 9 * cm->L + !c->tie_word_embeddings;
    for (int l = 0; l < cm->L; l++) {
        cuda_layer_offs *o = &cm->offs[l];
        o->bqkv = o->bo = o->bgu = o->bdown = -1;
        if (c->qkv_bias) {
            if (t[k + 1].offset != t[k].offset + t[k].numel || t[k + 2].offset != t[k + 1].offset + t[k + 1].numel)
                return sc_fail("cuda backend: layer %d: the q/k/v biases are not contiguous in the parameter table", l);
            o->bqkv = t[k].offset;
            k += 3;
        }
        if (c->o_bias) o->bo = t[k++].offset;
        if (c->mlp_bias) {
            if (t[k + 1].offset != t[k].offset + t[k].numel)
                return sc_fail("cuda backend: layer %d: the gate/up biases are not contiguous in the parameter table", l);
            o->bgu = t[k].offset, o->bdown = t[k + 2].offset;
            k += 3;
        }
    }
    return k == m->ntensors ? 0 : sc_fail("cuda backend: %d tensors in the parameter table, %d expected", m->ntensors, k);
}

static int layer_offsets(cuda_model *cm, const sc_model *m) {
    const sc_param *t = m->table;
    cm->offs = sc_calloc((size_t)cm->L, sizeof(cuda_layer_offs));
    cm->embed_off = t[0].offset;
    for (int l = 0; l < cm->L; l++) {
        const sc_param *p = &t[1 + 9 * l]; /* attn_norm q k v o mlp_norm gate up down */
        if (p[2].offset != p[1].offset + p[1].numel || p[3].offset != p[2].offset + p[2].numel ||
            p[7].offset != p[6].offset + p[6].numel)
            return sc_fail("cuda backend: layer %d: q/k/v or gate/up are not contiguous in the parameter table", l);
        cuda_layer_offs *o = &cm->offs[l];
        o->attn_norm = p[0].offset, o->wqkv = p[1].offset, o->wo = p[4].offset;
        o->mlp_norm = p[5].offset, o->wgu = p[6].offset, o->wdown = p[8].offset;
    }
    cm->final_norm_off = t[1 + 9 * cm->L].offset;
    cm->lm_head_off = m->cfg.tie_word_embeddings ? cm->embed_off : t[2 + 9 * cm->L].offset;
    if (bias_offsets(cm, m)) return -1;
    const sc_param *last = &t[9 * cm->L];
    cm->layer_numel = cm->L ? last->offset + last->numel - cm->offs[cm->L - 1].attn_norm : 0;
    if ((cm->flags & CUDA_MODEL_STREAM_GRADS) && !(cm->flags & CUDA_MODEL_FROZEN)) { /* slots and the sink
                                                                * addressing assume the table's usual order */
        int ok = cm->embed_off == 0 && cm->L > 0 && cm->offs[0].attn_norm == t[0].numel &&
                 cm->final_norm_off == cm->offs[0].attn_norm + cm->L * cm->layer_numel;
        for (int l = 1; l < cm->L && ok; l++) ok = cm->offs[l].attn_norm == cm->offs[l - 1].attn_norm + cm->layer_numel;
        if (!ok) return sc_fail("cuda backend: streamed gradients need embedding, equal contiguous layers, then the rest");
    }
    return 0;
}

/* A weight CUDA_MODEL_INT8 keeps as INT8 (lora_base_precision's rule): the linear projections and an untied
 * lm_head (a tied one is the embedding table, which stays FP16). */
static int is_int8(const sc_param *p) {
    return p->ndim == 2 && (strstr(p->name, "_proj.weight") != NULL || strcmp(p->name, "lm_head.weight") == 0);
}

/* The FP16 scratch an INT8 GEMM dequantizes one tile into: at most 8 MiB and a quarter of the largest matrix (so the
 * tiled path is the one every INT8 model runs, small test models included), at least one row and one column of
 * every matrix (rows, cols: the largest of each). */
static int64_t dequant_tile(int64_t largest, int64_t rows, int64_t cols) {
    int64_t t = (largest + 3) / 4;
    if (t > ((int64_t)4 << 20)) t = (int64_t)4 << 20;
    if (t < rows) t = rows;
    return t < cols ? cols : t;
}

/* The index of the tensor at parameter offset off in m's table (-1: none, or off < 0). */
static int tensor_at(const sc_model *m, int64_t off) {
    for (int i = 0; off >= 0 && i < m->ntensors; i++)
        if (m->table[i].offset == off) return i;
    return -1;
}

/* CUDA_MODEL_INT8 / HOST_EMBED (a frozen model: no gradient block needs the host layout): the device's FP16 block w
 * holds only what stays FP16 on the device, compact, in table order; every offset the layer code reads (offs with their biases,
 * embed_off, final_norm_off, lm_head_off) is rewritten to its place there, and each layer's fused INT8 matrices get
 * their INT8 element and scale-row offsets in q8. */
static void compact_shape(cuda_model *cm, const sc_model *m) {
    int int8 = cm->flags & CUDA_MODEL_INT8;
    int64_t *map = sc_malloc(sizeof(int64_t) * (size_t)m->ntensors);  /* compact FP16 or INT8 offset, -1: host */
    int64_t *srow = sc_malloc(sizeof(int64_t) * (size_t)m->ntensors); /* INT8: first scale row */
    cm->w_numel = cm->n8 = cm->nrows8 = 0;
    for (int i = 0; i < m->ntensors; i++) {
        const sc_param *p = &m->table[i];
        map[i] = srow[i] = -1;
        if (i == 0 && cm->emb_on_host) continue;
        if (int8 && is_int8(p)) {
            map[i] = cm->n8, srow[i] = cm->nrows8;
            cm->n8 += p->numel, cm->nrows8 += p->shape[0];
        } else {
            map[i] = cm->w_numel;
            cm->w_numel += p->numel;
        }
    }
#define REMAP(field) ((field) = tensor_at(m, field) >= 0 ? map[tensor_at(m, field)] : -1)
    cm->q8 = sc_calloc((size_t)cm->L * LIN_N, sizeof(cuda_int8_mat));
    int64_t largest = 1, maxr = 1, maxc = 1;
    for (int l = 0; l < cm->L; l++) {
        cuda_layer_offs *o = &cm->offs[l];
        const int64_t lin_off[LIN_N] = {o->wqkv, o->wo, o->wgu, o->wdown};
        const int rows[LIN_N] = {cm->QKV, cm->C, 2 * cm->F, cm->C}, cols[LIN_N] = {cm->C, cm->Q, cm->C, cm->F};
        for (int k = 0; k < LIN_N; k++) {
            cuda_int8_mat *q = &cm->q8[l * LIN_N + k];
            int i = tensor_at(m, lin_off[k]);
            q->q = map[i], q->s = srow[i], q->rows = rows[k], q->cols = cols[k];
            if ((int64_t)rows[k] * cols[k] > largest) largest = (int64_t)rows[k] * cols[k];
            maxr = rows[k] > maxr ? rows[k] : maxr, maxc = cols[k] > maxc ? cols[k] : maxc;
        }
        REMAP(o->attn_norm), REMAP(o->wqkv), REMAP(o->wo), REMAP(o->mlp_norm), REMAP(o->wgu), REMAP(o->wdown);
        REMAP(o->bqkv), REMAP(o->bo), REMAP(o->bgu), REMAP(o->bdown); /* biases stay FP16, after the tail */
    }
    int head = tensor_at(m, cm->lm_head_off);
    cm->head_int8 = int8 && cm->lm_head_off != cm->embed_off && is_int8(&m->table[head]);
    if (cm->head_int8) { /* the classifier reads it tile by tile from the same scratch */
        cm->head8.q = map[head], cm->head8.s = srow[head], cm->head8.rows = cm->V, cm->head8.cols = cm->C;
        if ((int64_t)cm->V * cm->C > largest) largest = (int64_t)cm->V * cm->C;
        maxr = cm->V > maxr ? cm->V : maxr, maxc = cm->C > maxc ? cm->C : maxc;
        cm->lm_head_off = -1;
    }
    cm->deq_numel = int8 ? dequant_tile(largest, maxr, maxc) : 1;
    REMAP(cm->embed_off), REMAP(cm->final_norm_off);
    if (!cm->head_int8) REMAP(cm->lm_head_off);
#undef REMAP
    free(map), free(srow);
    cm->table = sc_malloc(sizeof(sc_param) * (size_t)m->ntensors);
    memcpy(cm->table, m->table, sizeof(sc_param) * (size_t)m->ntensors);
    cm->ntensors = m->ntensors;
}

/* The shapes, offsets and flags of a model over m (its table; params are not read), no device needed: what the
 * layout reads. NULL (sc_error) when the parameter table is not laid out as the layout assumes. */
static cuda_model *model_shape(const sc_model *m, int max_T, int flags) {
    const sc_config *c = &m->cfg;
    cuda_model *cm = sc_calloc(1, sizeof *cm);
    cm->cfg = *c;
    cm->max_T = max_T, cm->flags = flags, cm->kd_k = flags >> 16;
    cm->C = c->hidden_size, cm->F = c->intermediate_size, cm->nh = c->num_attention_heads;
    cm->nkv = c->num_key_value_heads, cm->hd = c->head_dim, cm->V = c->vocab_size, cm->L = c->num_hidden_layers;
    cm->Q = cm->nh * cm->hd, cm->KV = cm->nkv * cm->hd, cm->QKV = cm->Q + 2 * cm->KV;
    cm->nparams = m->nparams;
    /* classifier chunk: at most 16 MiB of FP32 logits, never more tokens than a step has */
    cm->chunk = (int)((16u << 20) / (4u * (unsigned)cm->V));
    if (cm->chunk < 1) cm->chunk = 1;
    if (cm->chunk > max_T) cm->chunk = max_T;
    if (layer_offsets(cm, m)) {
        free(cm->offs), free(cm);
        return NULL;
    }
    cm->w_numel = cm->nparams;
    if ((flags & (CUDA_MODEL_INT8 | CUDA_MODEL_HOST_EMBED)) && !(flags & CUDA_MODEL_FROZEN)) {
        free(cm->offs), free(cm);
        sc_fail("cuda backend: an INT8 or host-side embedding base trains adapters only (frozen)");
        return NULL;
    }
    /* the embedding can stay on the host only when lm_head is a matrix of its own */
    cm->emb_on_host = (flags & CUDA_MODEL_HOST_EMBED) && cm->lm_head_off != cm->embed_off;
    if ((flags & CUDA_MODEL_INT8) || cm->emb_on_host) compact_shape(cm, m);
    cm->acts = sc_calloc((size_t)cm->L, sizeof(cuda_layer_acts));
    cm->mlp_chunk = max_T;
    return cm;
}

/* The adapter's device side (host/cuda_lora.c) as the model's flags want it: one layer's saved A x when layers are
 * recomputed, and the gradients streamed per layer to the host with STREAM_GRADS (the small-card placement). */
static void lora_init(cuda_model *cm, const sc_lora *ad) {
    int f = cm->flags;
    cm->lora = sc_malloc(sizeof(cuda_lora));
    cuda_lora_init(cm->lora, ad, cm->max_T, f & CUDA_MODEL_GRADS, (f & CUDA_MODEL_RECOMPUTE) != 0,
                   (f & CUDA_MODEL_STREAM_GRADS) != 0);
    /* a frozen base: the MLP in 8 chunks (no dW GEMM wants the whole sequence); not with dropout, whose masks are
     * indexed over the whole sequence (host/cpu/lora_dropout.h) */
    if ((f & CUDA_MODEL_FROZEN) && !(ad->dropout > 0)) cm->mlp_chunk = (cm->max_T + 7) / 8;
}

static void model_free_shape(cuda_model *cm) {
    if (cm->lora) cuda_lora_free(cm->lora);
    free(cm->lora), free(cm->q8), free(cm->table), free(cm->acts), free(cm->offs), free(cm);
}

static int plan_layout(cuda_arena *a, const sc_config *c, const sc_lora *ad, int max_T, int flags, size_t blas_ws_bytes,
                       int fp32) {
    sc_model m;
    memset(&m, 0, sizeof m);
    m.cfg = *c;
    m.ntensors = model_param_table(c, &m.table, &m.nparams);
    cuda_model *cm = max_T > 0 ? model_shape(&m, max_T, flags) : NULL;
    free(m.table);
    if (!cm) return max_T > 0 ? -1 : sc_fail("cuda plan: max_T must be positive, got %d", max_T);
    cm->blas_ws_bytes = blas_ws_bytes;
    cm->half_bytes = fp32 ? sizeof(float) : 0;
    if (ad) lora_init(cm, ad);
    cuda_arena_sizing(a);
    cuda_model_layout(cm, a);
    model_free_shape(cm);
    return 0;
}

int cuda_model_plan(cuda_arena *a, const sc_config *c, int max_T, int flags, size_t blas_ws_bytes, int fp32) {
    return plan_layout(a, c, NULL, max_T, flags, blas_ws_bytes, fp32);
}

int cuda_model_plan_lora(cuda_arena *a, const sc_config *c, const sc_lora *ad, int max_T, int flags,
                         size_t blas_ws_bytes) {
    return plan_layout(a, c, ad, max_T, flags, blas_ws_bytes, 0);
}

#ifdef SC_HAVE_KERNELS
static int model_open(cuda_model **out, const sc_model *m, const sc_lora *ad, int max_T, int flags) {
    *out = NULL;
    const sc_config *c = &m->cfg;
    if (device_count() <= 0) return sc_fail("cuda backend: no CUDA device is visible");
    if (kn_attention_check(c->head_dim, c->num_attention_heads, c->num_key_value_heads,
                           (c->num_attention_heads + 2 * c->num_key_value_heads) * c->head_dim,
                           (c->num_attention_heads + 2 * c->num_key_value_heads) * c->head_dim))
        return sc_fail("cuda backend: %s", kn_last_error());
    if (max_T < 1) return sc_fail("cuda backend: max_T must be positive, got %d", max_T);
    int kd_k = flags >> 16;
    if (kd_k > KN_KD_MAX_TOPK || kd_k > c->vocab_size)
        return sc_fail("cuda backend: distillation top-k %d is above %d or the vocabulary (%d)", kd_k, KN_KD_MAX_TOPK,
                       c->vocab_size);
    cuda_model *cm = model_shape(m, max_T, flags);
    if (!cm) return -1;
    if (ad) lora_init(cm, ad);
    int dev = 0, major = 0;
    CU_CHECK(cudaGetDevice(&dev));
    CU_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    cm->blas_ws_bytes = (size_t)(major >= 9 ? 32 : 4) << 20; /* NVIDIA's advice: 32 MiB on Hopper */
    if (device_describe(dev, cm->device, sizeof cm->device)) snprintf(cm->device, sizeof cm->device, "cuda:%d", dev);

    cuda_arena sizing;
    cuda_arena_sizing(&sizing);
    cuda_model_layout(cm, &sizing);
    if (cuda_arena_open(&cm->arena, sizing.used)) {
        sc_fail_prefix("cuda backend (%d tokens, %s)", max_T, cm->device);
        model_free_shape(cm);
        return -1;
    }
    cuda_model_layout(cm, &cm->arena);
    if (cm->lora) cuda_lora_start(cm->lora);
    CU_CHECK(cudaStreamCreate(&cm->stream));
    cm->blas = kn_blas_create(cm->stream, cm->blas_ws, cm->blas_ws_bytes, cm->gemm_staging, KN_GEMM_STAGING_BYTES);
    cm->h_losses = sc_malloc(sizeof(float) * (size_t)max_T);
    cm->h_plan = (flags & CUDA_MODEL_GRADS) ? sc_malloc(sizeof(int32_t) * kn_embedding_plan_ints(max_T)) : NULL;
    cm->h_ce = kd_k ? sc_malloc(sizeof(float) * (size_t)max_T) : NULL;
    cm->h_kd16 = kd_k ? sc_malloc(sizeof(uint16_t) * (size_t)max_T * (size_t)kd_k) : NULL;
    if (cm->g_slot[0]) {
        CU_CHECK(cudaStreamCreate(&cm->copy));
        for (int i = 0; i < 2; i++) {
            CU_CHECK(cudaEventCreate(&cm->computed[i]));
            CU_CHECK(cudaEventCreate(&cm->copied[i]));
        }
        /* pageable when pinning is refused (pinned.h): correct, only the copies stop overlapping */
        for (int i = 0; i < 2; i++) {
            CU_CHECK(cudaEventCreate(&cm->up_done[i]));
            cm->up16[i] = pinned_alloc(&cm->up_buf[i], sizeof(uint16_t) * UPLOAD_CHUNK, "weight uploads");
        }
        cm->sink = pinned_alloc(&cm->sink_buf, sizeof(float) * (size_t)cm->nparams, "the gradient accumulators");
    }
    if (cm->emb_on_host) {
        cm->emb_host = sc_malloc(sizeof(uint16_t) * (size_t)cm->V * (size_t)cm->C);
        cm->emb_stage = pinned_alloc(&cm->emb_stage_buf, sizeof(uint16_t) * (size_t)max_T * (size_t)cm->C,
                                     "the embedding rows");
    }
    if ((flags & CUDA_MODEL_HOST_CKPT) && (flags & CUDA_MODEL_RECOMPUTE))
        cm->ckpt = pinned_alloc(&cm->ckpt_buf, sizeof(uint16_t) * (size_t)cm->L * (size_t)max_T * (size_t)cm->C,
                                "the activation checkpoints");
    float inv[512]; /* head_dim <= 1024 (config.c); rope_scaling included, as the CPU model's */
    config_rope_inv_freq(c, inv);
    CU_CHECK(cudaMemcpy(cm->inv_freq, inv, sizeof(float) * (size_t)(cm->hd / 2), cudaMemcpyHostToDevice));
    const char *ovf = getenv("SMALLCODER_TEST_OVERFLOW");
    if (ovf && *ovf) { /* "N": backward pass N only; "N+": from pass N on */
        long long first = atoll(ovf);
        cuda_model_test_overflow(cm, first, strchr(ovf, '+') ? INT64_MAX : first);
    }
    if (flags & CUDA_MODEL_GRADS) cuda_model_zero_grads(cm);
    *out = cm;
    if (cm->lora) {
        cuda_lora_zero_grads(cm->lora, cm->stream);
        cuda_lora_upload(cm->lora, ad->params, cm->stream);
    }
    return cuda_model_upload(cm, m->params);
}

int cuda_model_open(cuda_model **out, const sc_model *m, int max_T, int flags) {
    return model_open(out, m, NULL, max_T, flags);
}

int cuda_model_open_lora(cuda_model **out, const sc_model *m, const sc_lora *ad, int max_T, int flags) {
    if (!(flags & CUDA_MODEL_FROZEN)) return sc_fail("cuda backend: a LoRA base must be opened frozen");
    if (ad->nlayers != m->cfg.num_hidden_layers) return sc_fail("cuda backend: the adapter has %d layers, the base %d",
                                                                  ad->nlayers, m->cfg.num_hidden_layers);
    return model_open(out, m, ad, max_T, flags);
}

/* FP32 -> FP16 on the host (round to nearest even, as kn_f32_to_f16), chunk by chunk into the pinned buffers. */
static void upload_pinned(cuda_model *cm, const float *params) {
    int b = 0;
    for (int64_t off = 0; off < cm->nparams; off += UPLOAD_CHUNK, b ^= 1) {
        int64_t n = cm->nparams - off < UPLOAD_CHUNK ? cm->nparams - off : UPLOAD_CHUNK;
        CU_CHECK(cudaEventSynchronize(cm->up_done[b])); /* its previous copy has left the buffer */
        uint16_t *dst = cm->up16[b];
        const float *src = params + off;
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) dst[i] = float_to_half(src[i]);
        CU_CHECK(cudaMemcpyAsync(cm->w + off, dst, sizeof(uint16_t) * (size_t)n, cudaMemcpyHostToDevice, cm->stream));
        CU_CHECK(cudaEventRecord(cm->up_done[b], cm->stream));
    }
    CU_CHECK(cudaStreamSynchronize(cm->stream));
}

/* The compact layout (compact_shape): each tensor of the host parameter block to its place, linear layers quantized
 * per row with CUDA_MODEL_INT8 (host quant_rows, as `smallcoder quantize`), the embedding into the host FP16 table
 * with HOST_EMBED, the rest rounded to FP16 on the device; one tensor at a time through host staging. */
static int upload_compact(cuda_model *cm, const float *params) {
    int64_t q8 = 0, s8 = 0, w16 = 0; /* the table's order is compact_shape's, so running sums are the offsets */
    for (int i = 0; i < cm->ntensors; i++) {
        const sc_param *p = &cm->table[i];
        int64_t n = p->numel;
        if (i == 0 && cm->emb_on_host) {
            for (int64_t j = 0; j < n; j++) cm->emb_host[j] = float_to_half(params[p->offset + j]);
        } else if (cm->w8 && is_int8(p)) {
            int rows = (int)p->shape[0], cols = (int)p->shape[1];
            int8_t *q = sc_malloc((size_t)n);
            uint16_t *sc = sc_malloc(sizeof(uint16_t) * (size_t)rows);
            quant_rows(params + p->offset, rows, cols, 0, q, sc);
            CU_CHECK(cudaMemcpy(cm->w8 + q8, q, (size_t)n, cudaMemcpyHostToDevice));
            CU_CHECK(cudaMemcpy(cm->s8 + s8, sc, sizeof(uint16_t) * (size_t)rows, cudaMemcpyHostToDevice));
            q8 += n, s8 += rows;
            free(q), free(sc);
        } else {
            uint16_t *h = sc_malloc(sizeof(uint16_t) * (size_t)n);
            for (int64_t j = 0; j < n; j++) h[j] = float_to_half(params[p->offset + j]);
            CU_CHECK(cudaMemcpy(cm->w + w16, h, sizeof(uint16_t) * (size_t)n, cudaMemcpyHostToDevice));
            w16 += n;
            free(h);
        }
    }
    return 0;
}

int cuda_model_upload(cuda_model *cm, const float *params) {
    if (cm->table) return upload_compact(cm, params);
    if (cm->up16[0]) {
        upload_pinned(cm, params);
        return 0;
    }
    /* through the workspace in chunks: FP32 up, cast to FP16 on the device */
    int64_t chunk = (int64_t)(cm->ws_bytes / sizeof(float));
    for (int64_t off = 0; off < cm->nparams; off += chunk) {
        int64_t n = cm->nparams - off < chunk ? cm->nparams - off : chunk;
        CU_CHECK(cudaMemcpyAsync(cm->ws, params + off, sizeof(float) * (size_t)n, cudaMemcpyHostToDevice, cm->stream));
        kn_f32_to_f16(cm->w + off, (const float *)cm->ws, n, cm->stream);
    }
    CU_CHECK(cudaStreamSynchronize(cm->stream));
    return 0;
}

void cuda_model_zero_grads(cuda_model *cm) {
    if (cm->g) CU_CHECK(cudaMemsetAsync(cm->g, 0, sizeof(float) * (size_t)cm->nparams, cm->stream));
    if (cm->g_slot[0]) {
        CU_CHECK(cudaMemsetAsync(cm->g_embed, 0, sizeof(float) * (size_t)cm->offs[0].attn_norm, cm->stream));
        CU_CHECK(cudaMemsetAsync(cm->g_tail, 0, sizeof(float) * (size_t)(cm->nparams - cm->final_norm_off), cm->stream));
        cm->sink_clean = 1;
    }
}

/* Where the gradient of parameter offset off (of layer l, or l < 0 for the embedding/final norm/lm_head) lives. */
static float *grad_of(const cuda_model *cm, int l, int64_t off) {
    if (cm->flags & CUDA_MODEL_FROZEN) return NULL; /* LoRA: the base takes no gradient */
    if (!cm->g_slot[0]) return cm->g + off;
    if (l >= 0) return cm->g_slot[l & 1] + (off - cm->offs[l].attn_norm);
    return off < cm->offs[0].attn_norm ? cm->g_embed + off : cm->g_tail + (off - cm->final_norm_off);
}

/* STREAM_GRADS around layer l's backward: the slot starts from what the sink holds (zero on a step's first
 * sequence), so gradients add in the same order as in one device block; its copy down runs on the copy stream
 * while the next layers' backward goes on; a slot is reused only after its previous copy finished. */
static void grad_slot_begin(cuda_model *cm, int l) {
    int s = l & 1;
    size_t bytes = sizeof(float) * (size_t)cm->layer_numel;
    CU_CHECK(cudaStreamWaitEvent(cm->stream, cm->copied[s], 0));
    if (cm->sink_clean) CU_CHECK(cudaMemsetAsync(cm->g_slot[s], 0, bytes, cm->stream));
    else CU_CHECK(cudaMemcpyAsync(cm->g_slot[s], cm->sink + cm->offs[l].attn_norm, bytes, cudaMemcpyHostToDevice, cm->stream));
}

static void grad_slot_end(cuda_model *cm, int l) {
    int s = l & 1;
    CU_CHECK(cudaEventRecord(cm->computed[s], cm->stream));
    CU_CHECK(cudaStreamWaitEvent(cm->copy, cm->computed[s], 0));
    CU_CHECK(cudaMemcpyAsync(cm->sink + cm->offs[l].attn_norm, cm->g_slot[s], sizeof(float) * (size_t)cm->layer_numel,
                             cudaMemcpyDeviceToHost, cm->copy));
    CU_CHECK(cudaEventRecord(cm->copied[s], cm->copy));
}

/* A layer's FP16 bias (NULL: none, kn_bias_forward adds nothing) and its gradient: the column sums of the output
 * gradient dy, into the tail of the gradients (biases come after the final norm in the parameter table). */
static const kn_half *bias_of(const cuda_model *cm, int64_t off) { return off >= 0 ? cm->w + off : NULL; }

static void bias_grad(cuda_model *cm, int64_t off, const kn_half *dy, int T, int n, float gs) {
    float *g = off >= 0 ? grad_of(cm, -1, off) : NULL; /* NULL too when the base is frozen (LoRA) */
    if (g) kn_bias_backward(g, gs, dy, T, n, cm->stream);
}

/* The input and output widths of a layer's fused linear matrix LIN_*. */
static int lin_in(const cuda_model *cm, int which) { return which == LIN_O ? cm->Q : which == LIN_DOWN ? cm->F : cm->C; }
static int lin_out(const cuda_model *cm, int which) {
    return which == LIN_QKV ? cm->QKV : which == LIN_GU ? 2 * cm->F : cm->C;
}

/* y[T, out] = x[T, in] W^T for a layer's fused linear matrix (LIN_*, at parameter offset off): FP16 in place, or
 * with CUDA_MODEL_INT8 one tile of rows (output features) at a time dequantized into the scratch, each GEMM writing
 * its columns of y (stream-ordered: a tile's GEMM runs before the next dequantization overwrites the scratch). */
static void lin_forward(cuda_model *cm, int l, int which, int64_t off, kn_half *y, const kn_half *x, int T) {
    int in = lin_in(cm, which), out = lin_out(cm, which);
    if (!cm->w8) {
        kn_matmul_forward(cm->blas, y, x, cm->w + off, T, in, out);
        return;
    }
    const cuda_int8_mat *q = &cm->q8[l * LIN_N + which];
    int rows = (int)(cm->deq_numel / in);
    for (int r0 = 0; r0 < out; r0 += rows) {
        int nr = out - r0 < rows ? out - r0 : rows;
        kn_int8_dequant_tile(cm->deq, cm->w8 + q->q, cm->s8 + q->s, in, in, r0, nr, 0, in, cm->stream);
        kn_gemm_cm(cm->blas, 1, 0, nr, T, in, 1.0f, cm->deq, in, x, in, 0.0f, y + r0, 0, out);
    }
}

/* dx[T, in] = dy[T, out] W and, with a gradient block, dW += gs dy^T x (kn_matmul_backward); with CUDA_MODEL_INT8 one tile of columns (input features)
 * at a time, each GEMM summing over every output feature and writing its columns of dx. */
static void lin_backward(cuda_model *cm, int l, int which, int64_t off, kn_half *dx, const kn_half *dy, int T,
                         float *dW, float gs, const kn_half *x) {
    int in = lin_in(cm, which), out = lin_out(cm, which);
    if (!cm->w8) {
        kn_matmul_backward(cm->blas, dx, 0, dW, gs, dy, x, cm->w + off, T, in, out);
        return;
    }
    const cuda_int8_mat *q = &cm->q8[l * LIN_N + which];
    int cols = (int)(cm->deq_numel / out);
    for (int c0 = 0; c0 < in; c0 += cols) {
        int nc = in - c0 < cols ? in - c0 : cols;
        kn_int8_dequant_tile(cm->deq, cm->w8 + q->q, cm->s8 + q->s, in, in, 0, out, c0, nc, cm->stream);
        kn_gemm_cm(cm->blas, 0, 0, nc, T, out, 1.0f, cm->deq, nc, dy, out, 0.0f, dx + c0, 0, in);
    }
}

/* LoRA: the adapter's branch of projection `target` of layer l (host/cuda_lora.c); nothing without an adapter. */
static void lora_fwd(cuda_model *cm, int l, int target, kn_half *y, int ldy, const kn_half *x, int T, int t0) {
    if (cm->lora) cuda_lora_forward(cm->lora, cm->blas, cm->stream, l, target, y, ldy, x, T, t0);
}

static void lora_bwd(cuda_model *cm, int l, int target, kn_half *dx, const kn_half *dy, int ldy, const kn_half *x,
                     int T, int t0) {
    if (cm->lora) cuda_lora_backward(cm->lora, cm->blas, cm->stream, l, target, dx, dy, ldy, x, T, t0);
}

/* The MLP runs in chunks of mlp_chunk tokens (a frozen base without dropout: tokens are independent there), so
 * with recompute its widest activations (gate|up, act, d(act): [T, 2F], [T, F], [T, F]) exist for one chunk only.
 * Layer l's gate|up and act of the chunk at token t0: their place in the stored activations (every layer kept: the
 * whole sequence is stored), or the one chunk-sized workspace (recompute). */
static kn_half *mlp_gu(cuda_model *cm, int l, int t0) {
    return cm->acts[l].gu + ((cm->flags & CUDA_MODEL_RECOMPUTE) ? 0 : (size_t)t0 * 2 * (size_t)cm->F);
}
static kn_half *mlp_act(cuda_model *cm, int l, int t0) {
    return cm->acts[l].act + ((cm->flags & CUDA_MODEL_RECOMPUTE) ? 0 : (size_t)t0 * (size_t)cm->F);
}

/* Tokens [t0, t0 + n) of layer l's MLP: gate|up GEMM -> SwiGLU -> down GEMM into down's rows t0.. (the adapter's
 * branches saved at t0 too). */
static void mlp_forward(cuda_model *cm, int l, int t0, int n) {
    cudaStream_t s = cm->stream;
    int C = cm->C, F = cm->F;
    const cuda_layer_offs *o = &cm->offs[l];
    const kn_half *xn2 = cm->acts[l].xn2 + (size_t)t0 * C;
    kn_half *gu = mlp_gu(cm, l, t0), *act = mlp_act(cm, l, t0), *down = cm->down + (size_t)t0 * C;
    lin_forward(cm, l, LIN_GU, o->wgu, gu, xn2, n);
    lora_fwd(cm, l, LORA_GATE, gu, 2 * F, xn2, n, t0);
    lora_fwd(cm, l, LORA_UP, gu + F, 2 * F, xn2, n, t0);
    kn_bias_forward(gu, bias_of(cm, o->bgu), n, 2 * F, s);
    kn_swiglu_forward(act, gu, gu + F, n, F, 2 * F, s);
    lin_forward(cm, l, LIN_DOWN, o->wdown, down, act, n);
    lora_fwd(cm, l, LORA_DOWN, down, C, act, n, t0);
    kn_bias_forward(down, bias_of(cm, o->bdown), n, C, s);
}

/* The backward of mlp_forward for its tokens, from dy = d(down) (cm->dx's rows) to d(xn2) in cm->dxn's rows;
 * recompute = run the chunk's forward first (its gate|up and act are not stored). */
static void mlp_backward(cuda_model *cm, int l, int t0, int n, float gs, int recompute) {
    cudaStream_t s = cm->stream;
    int C = cm->C, F = cm->F;
    const cuda_layer_offs *o = &cm->offs[l];
    const kn_half *xn2 = cm->acts[l].xn2 + (size_t)t0 * C, *dy = cm->dx + (size_t)t0 * C;
    kn_half *gu = mlp_gu(cm, l, t0), *act = mlp_act(cm, l, t0), *dxn = cm->dxn + (size_t)t0 * C;
    if (recompute) mlp_forward(cm, l, t0, n);
    lin_backward(cm, l, LIN_DOWN, o->wdown, cm->dact, dy, n, grad_of(cm, l, o->wdown), gs, act);
    lora_bwd(cm, l, LORA_DOWN, cm->dact, dy, C, act, n, t0);
    kn_half *dgu = cm->dgu ? cm->dgu : gu; /* frozen: in place (nothing reads gate|up after it) */
    kn_swiglu_backward(dgu, dgu + F, cm->dact, gu, gu + F, n, F, 2 * F, s);
    bias_grad(cm, o->bgu, dgu, n, 2 * F, gs);
    lin_backward(cm, l, LIN_GU, o->wgu, dxn, dgu, n, grad_of(cm, l, o->wgu), gs, xn2);
    lora_bwd(cm, l, LORA_GATE, dxn, dgu, 2 * F, xn2, n, t0);
    lora_bwd(cm, l, LORA_UP, dxn, dgu + F, 2 * F, xn2, n, t0);
}

/* Layer l from its input: resid_in + delta (delta NULL: resid_in is the stored x, as when recomputing); mlp = 0
 * stops after the second norm (the recompute before backward: mlp_backward recomputes the MLP chunk by chunk). */
static void layer_forward(cuda_model *cm, int l, int T, const kn_half *resid_in, const kn_half *delta, int mlp) {
    cudaStream_t s = cm->stream;
    float eps = (float)cm->cfg.rms_norm_eps;
    int C = cm->C, Q = cm->Q, KV = cm->KV, QKV = cm->QKV;
    const cuda_layer_offs *o = &cm->offs[l];
    cuda_layer_acts *A = &cm->acts[l];
    kn_rmsnorm_forward(A->x, A->xn1, A->rstd1, resid_in, delta, cm->w + o->attn_norm, T, C, eps, s);
    lin_forward(cm, l, LIN_QKV, o->wqkv, A->qkv, A->xn1, T);
    lora_fwd(cm, l, LORA_Q, A->qkv, QKV, A->xn1, T, 0);
    lora_fwd(cm, l, LORA_K, A->qkv + Q, QKV, A->xn1, T, 0);
    lora_fwd(cm, l, LORA_V, A->qkv + Q + KV, QKV, A->xn1, T, 0);
    kn_bias_forward(A->qkv, bias_of(cm, o->bqkv), T, QKV, s); /* before RoPE, as HF: q and k biases are rotated */
    (void)kn_rope_forward(A->qkv, cm->inv_freq, T, cm->nh + cm->nkv, cm->hd, QKV, 0, NULL, s); /* q|k in one call */
    /* shapes were checked at open, so this cannot fail */
    kn_attention_forward(A->att, A->lse, A->qkv, A->qkv + Q, A->qkv + Q + KV, T, cm->nh, cm->nkv, cm->hd, QKV, QKV, s);
    lin_forward(cm, l, LIN_O, o->wo, cm->o, A->att, T);
    lora_fwd(cm, l, LORA_O, cm->o, C, A->att, T, 0);
    kn_bias_forward(cm->o, bias_of(cm, o->bo), T, C, s);
    kn_rmsnorm_forward(A->xmid, A->xn2, A->rstd2, A->x, cm->o, cm->w + o->mlp_norm, T, C, eps, s);
    for (int t0 = 0; mlp && t0 < T; t0 += cm->mlp_chunk) mlp_forward(cm, l, t0, T - t0 < cm->mlp_chunk ? T - t0 : cm->mlp_chunk);
}

/* CUDA_MODEL_HOST_CKPT: layer l's input down to pinned host memory after its forward (dir 0), or back up before
 * its recompute (dir 1); on the compute stream, so the one device buffer is never overwritten early. */
static void ckpt_copy(cuda_model *cm, int l, int T, int up) {
    if (!cm->ckpt) return;
    size_t bytes = sizeof(kn_half) * (size_t)T * (size_t)cm->C;
    uint16_t *h = cm->ckpt + (size_t)l * (size_t)cm->max_T * (size_t)cm->C;
    if (up) CU_CHECK(cudaMemcpyAsync(cm->acts[l].x, h, bytes, cudaMemcpyHostToDevice, cm->stream));
    else CU_CHECK(cudaMemcpyAsync(h, cm->acts[l].x, bytes, cudaMemcpyDeviceToHost, cm->stream));
}

/* CUDA_MODEL_HOST_EMBED: the rows of ids gathered from the host table into pinned staging and copied up to emb
 * (an id outside the vocabulary gives a zero row); the copy is done before the step's end synchronises. */
static void embed_on_host(cuda_model *cm, const int32_t *ids, int T) {
    size_t row = sizeof(uint16_t) * (size_t)cm->C;
    for (int t = 0; t < T; t++) {
        uint16_t *dst = cm->emb_stage + (size_t)t * (size_t)cm->C;
        if (ids[t] >= 0 && ids[t] < cm->V) memcpy(dst, cm->emb_host + (size_t)ids[t] * (size_t)cm->C, row);
        else memset(dst, 0, row);
    }
    CU_CHECK(cudaMemcpyAsync(cm->emb, cm->emb_stage, row * (size_t)T, cudaMemcpyHostToDevice, cm->stream));
}

static void forward(cuda_model *cm, int T) {
    if (!cm->emb_on_host) kn_embedding_forward(cm->emb, cm->ids, cm->w + cm->embed_off, T, cm->C, cm->stream);
    const kn_half *resid_in = cm->emb, *delta = NULL;
    for (int l = 0; l < cm->L; l++) {
        layer_forward(cm, l, T, resid_in, delta, 1);
        ckpt_copy(cm, l, T, 0);
        resid_in = cm->acts[l].xmid;
        delta = cm->down;
    }
    kn_rmsnorm_forward(cm->xfinal, cm->xnf, cm->rstdf, resid_in, delta, cm->w + cm->final_norm_off, T, cm->C,
                       (float)cm->cfg.rms_norm_eps, cm->stream);
}

/* cm->dxn holds dL/dxnf of the scaled loss (grad_scale entered at the logits), so every FP16 activation
 * gradient below carries the loss scale; weight gradients accumulate in FP32 with the factor gs = 1 (the trainer
 * unscales them once, when they are finished: train/adamw.c grad_multiplier). */
static void backward(cuda_model *cm, int T, float gs, int nids) {
    cudaStream_t s = cm->stream;
    int C = cm->C, Q = cm->Q, KV = cm->KV, QKV = cm->QKV;
    kn_rmsnorm_backward(cm->dx, grad_of(cm, -1, cm->final_norm_off), gs, cm->dxn, NULL, cm->xfinal, cm->rstdf,
                        cm->w + cm->final_norm_off, T, C, cm->ws, s);
    for (int l = cm->L - 1; l >= 0; l--) {
        const cuda_layer_offs *o = &cm->offs[l];
        cuda_layer_acts *A = &cm->acts[l];
        /* the last layer's activations are still in the shared set (its MLP's too when it ran in one chunk) */
        int recompute = (cm->flags & CUDA_MODEL_RECOMPUTE) && l < cm->L - 1;
        if (recompute) {
            ckpt_copy(cm, l, T, 1);
            layer_forward(cm, l, T, A->x, NULL, 0);
        }
        int mlp_recompute = (cm->flags & CUDA_MODEL_RECOMPUTE) && (recompute || cm->mlp_chunk < T);
        if (cm->g_slot[0]) grad_slot_begin(cm, l);
        if (cm->lora) cuda_lora_layer_begin(cm->lora, l, s);
        /* MLP branch: its output was added to the stream, so its gradient is dx */
        bias_grad(cm, o->bdown, cm->dx, T, C, gs);
        for (int t0 = 0; t0 < T; t0 += cm->mlp_chunk)
            mlp_backward(cm, l, t0, T - t0 < cm->mlp_chunk ? T - t0 : cm->mlp_chunk, gs, mlp_recompute);
        kn_rmsnorm_backward(cm->dx, grad_of(cm, l, o->mlp_norm), gs, cm->dxn, cm->dx, A->xmid, A->rstd2, cm->w + o->mlp_norm,
                            T, C, cm->ws, s);
        if (l == cm->L / 2 && cm->backwards >= cm->ovf_first && cm->backwards <= cm->ovf_last) {
            static const uint16_t inf16 = 0x7c00; /* an FP16 overflow in the residual gradient, mid-backward */
            CU_CHECK(cudaMemcpyAsync(cm->dx, &inf16, sizeof inf16, cudaMemcpyHostToDevice, s));
        }
        /* attention branch */
        bias_grad(cm, o->bo, cm->dx, T, C, gs);
        lin_backward(cm, l, LIN_O, o->wo, cm->datt, cm->dx, T, grad_of(cm, l, o->wo), gs, A->att);
        lora_bwd(cm, l, LORA_O, cm->datt, cm->dx, C, A->att, T, 0);
        kn_attention_backward(cm->dqkv, cm->dqkv + Q, cm->dqkv + Q + KV, cm->datt, A->qkv, A->qkv + Q,
                              A->qkv + Q + KV, A->att, A->lse, T, cm->nh, cm->nkv, cm->hd, QKV, QKV, cm->ws, s);
        (void)kn_rope_backward(cm->dqkv, cm->inv_freq, T, cm->nh + cm->nkv, cm->hd, QKV, 0, NULL, s);
        bias_grad(cm, o->bqkv, cm->dqkv, T, QKV, gs); /* the gradient before RoPE, where the bias was added */
        lin_backward(cm, l, LIN_QKV, o->wqkv, cm->dxn, cm->dqkv, T, grad_of(cm, l, o->wqkv), gs, A->xn1);
        lora_bwd(cm, l, LORA_Q, cm->dxn, cm->dqkv, QKV, A->xn1, T, 0);
        lora_bwd(cm, l, LORA_K, cm->dxn, cm->dqkv + Q, QKV, A->xn1, T, 0);
        lora_bwd(cm, l, LORA_V, cm->dxn, cm->dqkv + Q + KV, QKV, A->xn1, T, 0);
        kn_rmsnorm_backward(cm->dx, grad_of(cm, l, o->attn_norm), gs, cm->dxn, cm->dx, A->x, A->rstd1, cm->w + o->attn_norm,
                            T, C, cm->ws, s);
        if (cm->g_slot[0]) grad_slot_end(cm, l);
        if (cm->lora) cuda_lora_layer_end(cm->lora, l, s);
    }
    if (!(cm->flags & CUDA_MODEL_FROZEN)) /* a frozen embedding: nothing to add */
        kn_embedding_backward(grad_of(cm, -1, cm->embed_off), gs, cm->dx, cm->plan, nids, T, C, s);
}

/* Uploads the teacher's rows of a step (kd != NULL) after checking them against what open reserved. */
static int upload_kd(cuda_model *cm, const int32_t *targets, int T, const kd_targets *kd) {
    int k = kd->k;
    if (k < 1 || k > cm->kd_k)
        return cm->kd_k ? sc_fail("cuda backend: teacher top-k %d; this model was opened for 1 to %d", k, cm->kd_k)
                        : sc_fail("cuda backend: opened without CUDA_MODEL_KD, cannot distil");
    if (!(kd->temperature > 0.0f)) return sc_fail("cuda backend: distillation temperature %g", (double)kd->temperature);
    for (int t = 0; t < T; t++)
        for (int i = 0; targets[t] >= 0 && targets[t] < cm->V && i < k; i++)
            if (kd->ids[(int64_t)t * k + i] < 0 || kd->ids[(int64_t)t * k + i] >= cm->V)
                return sc_fail("cuda backend: teacher id %d at position %d is outside the vocabulary (%d)",
                               kd->ids[(int64_t)t * k + i], t, cm->V);
    size_t n = (size_t)T * (size_t)k;
    for (size_t i = 0; i < n; i++) cm->h_kd16[i] = float_to_half(kd->logits[i]);
    cudaStream_t s = cm->stream;
    CU_CHECK(cudaMemcpyAsync(cm->kd_ids, kd->ids, sizeof(int32_t) * n, cudaMemcpyHostToDevice, s));
    CU_CHECK(cudaMemcpyAsync(cm->kd_logits, cm->h_kd16, sizeof(kn_half) * n, cudaMemcpyHostToDevice, s));
    CU_CHECK(cudaMemcpyAsync(cm->kd_lse, kd->lse, sizeof(float) * (size_t)T, cudaMemcpyHostToDevice, s));
    return 0;
}

/* The step of cuda_model_step and cuda_model_step_kd: kd NULL = cross-entropy. */
static int model_step(cuda_model *cm, const int32_t *ids, const int32_t *targets, int T, float *logits_out,
                      const kd_targets *kd, int want_grads, float grad_scale, double *loss_sum, double *ce_sum,
                      int *counted) {
    if (T < 1 || T > cm->max_T)
        return sc_fail("cuda backend: a sequence of %d tokens; this model was opened for 1 to %d", T, cm->max_T);
    if (want_grads && !(cm->flags & CUDA_MODEL_GRADS)) return sc_fail("cuda backend: opened without gradients");
    if (logits_out && !cm->logits) return sc_fail("cuda backend: opened without a logits buffer");
    if (kd && upload_kd(cm, targets, T, kd)) return -1;
    cudaStream_t s = cm->stream;
    CU_CHECK(cudaMemcpyAsync(cm->ids, ids, sizeof(int32_t) * (size_t)T, cudaMemcpyHostToDevice, s));
    CU_CHECK(cudaMemcpyAsync(cm->targets, targets, sizeof(int32_t) * (size_t)T, cudaMemcpyHostToDevice, s));
    int nids = 0;
    if (want_grads) {
        nids = kn_embedding_plan(cm->h_plan, ids, T, cm->V);
        CU_CHECK(cudaMemcpyAsync(cm->plan, cm->h_plan, sizeof(int32_t) * kn_embedding_plan_ints(T),
                                 cudaMemcpyHostToDevice, s));
    }
    if (cm->emb_on_host) embed_on_host(cm, ids, T);
    forward(cm, T);
    /* the whole scale enters at the loss gradient: dlogits = d(grad_scale * loss)/dlogits in FP16 */
    const float gs = 1.0f;
    if (want_grads) cm->backwards++;
    kn_int8_mat head8 = {cm->head_int8 ? cm->w8 + cm->head8.q : NULL, cm->head_int8 ? cm->s8 + cm->head8.s : NULL,
                         cm->C, cm->deq, cm->deq_numel};
    if (kd && cm->head_int8)
        kn_kd_classifier_forward_backward_q8(cm->blas, cm->losses, cm->kd_ce, want_grads ? cm->dxn : NULL, cm->xnf,
                                             &head8, cm->targets, cm->kd_ids, cm->kd_logits, cm->kd_lse, kd->k,
                                             kd->alpha, kd->temperature, kd->reverse, T, cm->C, cm->V, grad_scale,
                                             cm->chunk, cm->ws, s);
    else if (kd) /* arguments were checked by upload_kd, so it cannot fail */
        kn_kd_classifier_forward_backward(cm->blas, cm->losses, cm->kd_ce, want_grads ? cm->dxn : NULL,
                                          want_grads ? grad_of(cm, -1, cm->lm_head_off) : NULL, gs, cm->xnf,
                                          cm->w + cm->lm_head_off, cm->targets, cm->kd_ids, cm->kd_logits, cm->kd_lse,
                                          kd->k, kd->alpha, kd->temperature, kd->reverse, T, cm->C, cm->V,
                                          grad_scale, cm->chunk, cm->ws, s);
    else if (cm->head_int8)
        kn_classifier_forward_backward_q8(cm->blas, cm->losses, logits_out ? cm->logits : NULL,
                                          want_grads ? cm->dxn : NULL, cm->xnf, &head8, cm->targets, T, cm->C, cm->V,
                                          grad_scale, cm->chunk, cm->ws, s);
    else
        kn_classifier_forward_backward(cm->blas, cm->losses, logits_out ? cm->logits : NULL,
                                       want_grads ? cm->dxn : NULL, want_grads ? grad_of(cm, -1, cm->lm_head_off) : NULL,
                                       gs, cm->xnf, cm->w + cm->lm_head_off, cm->targets, T, cm->C, cm->V,
                                       grad_scale, cm->chunk, cm->ws, s);
    if (want_grads) backward(cm, T, gs, nids);
    CU_CHECK(cudaMemcpyAsync(cm->h_losses, cm->losses, sizeof(float) * (size_t)T, cudaMemcpyDeviceToHost, s));
    if (kd) CU_CHECK(cudaMemcpyAsync(cm->h_ce, cm->kd_ce, sizeof(float) * (size_t)T, cudaMemcpyDeviceToHost, s));
    if (logits_out)
        CU_CHECK(cudaMemcpyAsync(logits_out, cm->logits, sizeof(float) * (size_t)T * (size_t)cm->V,
                                 cudaMemcpyDeviceToHost, s));
    CU_CHECK(cudaStreamSynchronize(s));
    if (want_grads && cm->g_slot[0]) {
        CU_CHECK(cudaStreamSynchronize(cm->copy));
        cm->sink_clean = 0;
    }
    if (want_grads && cm->lora) cuda_lora_grads_done(cm->lora);
    double total = 0.0;
    int n = 0;
    for (int t = 0; t < T; t++) {
        total += cm->h_losses[t]; /* ignored positions hold 0 */
        n += targets[t] >= 0;
    }
    *loss_sum = total;
    if (counted) *counted = n;
    if (ce_sum) {
        double ce = 0.0;
        for (int t = 0; kd && t < T; t++) ce += cm->h_ce[t];
        *ce_sum = kd ? ce : total;
    }
    return 0;
}

int cuda_model_step(cuda_model *cm, const int32_t *ids, const int32_t *targets, int T, float *logits_out,
                    int want_grads, float grad_scale, double *loss_sum, int *counted) {
    return model_step(cm, ids, targets, T, logits_out, NULL, want_grads, grad_scale, loss_sum, NULL, counted);
}

int cuda_model_step_kd(cuda_model *cm, const int32_t *ids, const int32_t *targets, int T, const kd_targets *kd,
                       int want_grads, float grad_scale, double *loss_sum, double *ce_sum, int *counted) {
    return model_step(cm, ids, targets, T, NULL, kd, want_grads, grad_scale, loss_sum, ce_sum, counted);
}

int cuda_model_read_grads(cuda_model *cm, float *host) {
    if (!(cm->flags & CUDA_MODEL_GRADS)) return sc_fail("cuda backend: opened without gradients");
    if (cm->g) {
        CU_CHECK(cudaMemcpyAsync(host, cm->g, sizeof(float) * (size_t)cm->nparams, cudaMemcpyDeviceToHost, cm->stream));
        CU_CHECK(cudaStreamSynchronize(cm->stream));
        return 0;
    }
    int64_t e = cm->offs[0].attn_norm, tail = cm->nparams - cm->final_norm_off;
    CU_CHECK(cudaMemcpyAsync(host, cm->g_embed, sizeof(float) * (size_t)e, cudaMemcpyDeviceToHost, cm->stream));
    CU_CHECK(cudaMemcpyAsync(host + cm->final_norm_off, cm->g_tail, sizeof(float) * (size_t)tail,
                             cudaMemcpyDeviceToHost, cm->stream));
    CU_CHECK(cudaStreamSynchronize(cm->stream));
    CU_CHECK(cudaStreamSynchronize(cm->copy));
    size_t layer_bytes = sizeof(float) * (size_t)(cm->final_norm_off - e);
    if (cm->sink_clean) memset(host + e, 0, layer_bytes);
    else if (host != cm->sink) memcpy(host + e, cm->sink + e, layer_bytes);
    return 0;
}

float *cuda_model_grad_sink(cuda_model *cm) { return cm->sink; }

void cuda_model_test_overflow(cuda_model *cm, int64_t first, int64_t last) {
    cm->ovf_first = first > 0 ? first : 1, cm->ovf_last = first > 0 ? last : 0;
}

int cuda_model_grad_sumsq(cuda_model *cm, double *out) {
    if (!cm->g) return sc_fail("cuda backend: no device gradient block to take the norm of");
    kn_sumsq(cm->sumsq, cm->g, cm->nparams, cm->ws, cm->stream);
    CU_CHECK(cudaMemcpyAsync(out, cm->sumsq, sizeof(double), cudaMemcpyDeviceToHost, cm->stream));
    CU_CHECK(cudaStreamSynchronize(cm->stream));
    return 0;
}

void cuda_model_adamw(cuda_model *cm, int64_t off, int64_t n, float grad_mul, float wd, float lr, float beta1,
                      float beta2, float eps, int64_t t) {
    kn_adamw_update(cm->master + off, cm->g + off, cm->mom1 + off, cm->mom2 + off, cm->w + off, n, grad_mul, wd, lr,
                    beta1, beta2, eps, t, cm->stream);
}

int cuda_model_get_master(cuda_model *cm, float *params, float *m, float *v) {
    if (!cm->master) return sc_fail("cuda backend: no master weights on the device");
    size_t bytes = sizeof(float) * (size_t)cm->nparams;
    if (params) CU_CHECK(cudaMemcpyAsync(params, cm->master, bytes, cudaMemcpyDeviceToHost, cm->stream));
    if (m) CU_CHECK(cudaMemcpyAsync(m, cm->mom1, bytes, cudaMemcpyDeviceToHost, cm->stream));
    if (v) CU_CHECK(cudaMemcpyAsync(v, cm->mom2, bytes, cudaMemcpyDeviceToHost, cm->stream));
    CU_CHECK(cudaStreamSynchronize(cm->stream));
    return 0;
}

int cuda_model_set_master(cuda_model *cm, const float *params, const float *m, const float *v) {
    if (!cm->master) return sc_fail("cuda backend: no master weights on the device");
    size_t bytes = sizeof(float) * (size_t)cm->nparams;
    CU_CHECK(cudaMemcpyAsync(cm->master, params, bytes, cudaMemcpyHostToDevice, cm->stream));
    if (m) CU_CHECK(cudaMemcpyAsync(cm->mom1, m, bytes, cudaMemcpyHostToDevice, cm->stream));
    else CU_CHECK(cudaMemsetAsync(cm->mom1, 0, bytes, cm->stream));
    if (v) CU_CHECK(cudaMemcpyAsync(cm->mom2, v, bytes, cudaMemcpyHostToDevice, cm->stream));
    else CU_CHECK(cudaMemsetAsync(cm->mom2, 0, bytes, cm->stream));
    kn_f32_to_f16(cm->w, cm->master, cm->nparams, cm->stream);
    CU_CHECK(cudaStreamSynchronize(cm->stream));
    return 0;
}

size_t cuda_model_device_bytes(const cuda_model *cm) { return cm->arena.high; }

const char *cuda_model_device_name(const cuda_model *cm) { return cm->device; }

void cuda_model_close(cuda_model *cm) {
    if (!cm) return;
    CU_CHECK(cudaStreamSynchronize(cm->stream));
    kn_blas_destroy(cm->blas);
    CU_CHECK(cudaStreamDestroy(cm->stream));
    if (cm->copy) {
        CU_CHECK(cudaStreamSynchronize(cm->copy));
        for (int i = 0; i < 2; i++) {
            CU_CHECK(cudaEventDestroy(cm->computed[i]));
            CU_CHECK(cudaEventDestroy(cm->copied[i]));
            CU_CHECK(cudaEventDestroy(cm->up_done[i]));
            pinned_free(&cm->up_buf[i]);
        }
        CU_CHECK(cudaStreamDestroy(cm->copy));
    }
    pinned_free(&cm->sink_buf);
    pinned_free(&cm->ckpt_buf);
    pinned_free(&cm->emb_stage_buf);
    free(cm->emb_host);
    cuda_arena_close(&cm->arena);
    free(cm->h_losses), free(cm->h_plan), free(cm->h_ce), free(cm->h_kd16);
    model_free_shape(cm);
}

/* ---- LoRA (cuda_model_open_lora): the adapter's own buffers live in host/cuda_lora.c ---- */
int cuda_model_lora_upload(cuda_model *cm, const float *params) {
    if (!cm->lora) return sc_fail("cuda backend: opened without an adapter");
    cuda_lora_upload(cm->lora, params, cm->stream);
    return 0;
}

int cuda_model_lora_read_grads(cuda_model *cm, float *host) {
    if (!cm->lora || !cm->lora->training) return sc_fail("cuda backend: no adapter gradients");
    cuda_lora_read_grads(cm->lora, host, cm->stream);
    return 0;
}

void cuda_model_lora_zero_grads(cuda_model *cm) {
    if (cm->lora) cuda_lora_zero_grads(cm->lora, cm->stream);
}

void cuda_model_lora_dropout(cuda_model *cm, int on, uint64_t key) {
    if (!cm->lora) return;
    cm->lora->dropout_on = on;
    cm->lora->dropout_key = key;
}
#endif
