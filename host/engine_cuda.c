/* engine_cuda.c — the CUDA inference engine (engine.h's "cuda" backend). All device memory is one arena sized by
 * running the layout against a sizing arena first (weights, scratch for a chunk of tokens, and the KV caches of
 * n_seqs sessions of n_ctx positions), so what is planned is what is allocated and nothing is allocated per token.
 * Weights: FP16 (FP32 checkpoints converted) or INT8 + FP16 scales per row or per group (INT8 checkpoints as
 * stored, FP32 ones quantized per row at load); q|k|v and gate|up are fused into one matrix each.
 * Prefill (more than GEMV_MAX_T tokens): cuBLAS GEMMs; an INT8 matrix is dequantized into an FP16 scratch matrix
 * first (one matrix at a time: at least 9 tokens share each dequantized weight, tensor cores or FP16 FMA then do
 * the work, and a tiled dp4a GEMM would be a large kernel of its own for a path that is not the bottleneck).
 * Decode: GEMVs (dp4a W8A8 with per-token activation quantization on the device, or FP16 half2), attention of the
 * new rows over the cache, logits in FP32.
 * LoRA adapters (sc_engine_opts.lora) are copied into the arena in FP32 (counted in the plan, shown on the
 * engine's line) and applied without merging: after each fused GEMM/GEMV, each active adapter adds
 * scale * (x A^T) B^T to its target's columns of the output (kernels/lora_apply.cu), the r-dim product first.
 * CUDA graphs: the decode step (one token) is captured once per engine (again when the active adapter set
 * changes: the scales are launch arguments) and replayed for every token and every session: every kernel reads the token id, the position and the session's cache pointers from device memory
 * (ce->ids, ce->step: kn_kv_step), which the host updates with two small copies before each replay, and every
 * buffer lives at a fixed arena address. Attention's launch shape depends on max_ctx (the longest cache) only. */
#ifdef SC_HAVE_KERNELS
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/cuda_arena.h"
#include "host/cuda_check.h"
#include "host/device.h"
#include "host/engine.h"
#include "host/error.h"
#include "host/half.h"
#include "host/pinned.h"
#include "host/device_probe.h"
#include "host/cpu/ops.h"
#include "kernels/kernels.h"

enum {
    CHUNK = 512,      /* tokens per prefill pass */
    GEMV_MAX_T = 8,   /* up to this many rows, GEMV kernels; above, GEMMs */
    BLAS_WS = 4 << 20, /* cuBLAS workspace bytes */
    UPLOAD_ROWS = 1024, /* host staging: rows per copy */
};
/* --precision auto keeps FP16 weights only where their decode can reach this rate: decode reads every weight once
 * per token, so bandwidth / FP16 weight bytes is its ceiling; below it INT8 (half the bytes per token) is taken */
#define AUTO_FP16_MIN_TOK_S 250.0

typedef struct {
    kn_half *h;   /* FP16 [rows, cols], or NULL */
    int8_t *q;    /* INT8 [rows, cols], or NULL */
    kn_half *s;   /* [rows, ng] FP16 scales */
    int rows, cols, group, ng;
} cmat;

typedef struct {
    kn_half *attn_norm, *mlp_norm;
    cmat qkv, o, gu, down;
    kn_half *bqkv, *bo, *bgu, *bdown; /* FP16 biases (qwen2 q/k/v, llama attention_bias/mlp_bias), NULL when none */
} clayer;

typedef struct {
    float *A, *B; /* [r, in], [out, r] FP32, or NULL when the adapter does not target that module */
} clora;

typedef struct {
    int int8, group; /* group: the model's columns per scale (0 = per row) */
    int kv_type, qb; /* the caches: SC_KV_F16, SC_KV_Q8 or SC_KV_Q4 (f32 is kept as f16); qb values per scale */
    int C, F, Q, KV, QKV, nh, nkv, hd, V, L, max_ctx, nseq, chunk, graphs, tied;
    int qkv_bias, o_bias, mlp_bias; /* the config's biases: q|k|v fused like the matrix (zeros where absent) */
    int flash; /* a prompt's first chunk (position 0, > GEMV_MAX_T rows) runs the flash attention kernel */
    float eps, theta;
    cudaStream_t stream;
    kn_blas *blas;
    cuda_arena arena;
    size_t weight_bytes, kv_bytes, lora_bytes;
    size_t layer_bytes, embed_bytes, head_bytes, deq_bytes, act_bytes; /* the plan's rows (engine_cuda_plan_describe) */
    const sc_lora *const *lora; /* the engine's adapters (sc_engine_opts.lora) */
    int nlora, lora_rmax;
    clora *lmat;              /* [nlora][L][LORA_NTARGETS] */
    float *lora_h;            /* [chunk, lora_rmax]: x A^T of the adapter being applied */
    sc_lora_set lora_on;      /* the active set, copied from sc_engine.lora_on at each forward (the caller's
                               * sc_engine may be a copy of the one opened) */
    sc_lora_set graph_lora;   /* the set the captured graph applies */
    clayer *layers;
    cmat embed, lm_head;
    kn_half *final_norm;
    float *inv_freq;
    kn_half *x, *xn, *qkv, *att, *o, *gu, *act, *down, *deq;
    float *rstd, *xs, *logits, *lse; /* lse: flash attention's [nh, chunk] */
    int8_t *xq;
    int32_t *ids;
    kn_kv_step *step;
    void *blas_ws, *gemm_staging; /* gemm_staging: KN_GEMM_STAGING_BYTES (SGEMM copies, GEMM tuning) */
    void *att_ws;                 /* decode attention's split-K partials */
    uint8_t *kv_pool; /* nseq slots of [k | v | k scales | v scales] (kv_carve), each for [L][max_ctx][KV] */
    size_t kv_slot_bytes;
    int *kv_busy;
    cudaGraphExec_t graph;
    int64_t extra_bytes, extra_peak; /* KV caches beyond the preallocated slots */
    size_t free_at_open;             /* cudaMemGetInfo's free bytes before the arena (context already made) */
    /* pinned host staging: truly asynchronous copies (pageable ones are staged by the driver, ~10 us each) */
    kn_kv_step *h_step;
    int32_t *h_ids;
    float *h_logits;
    pinned_buf pin_step, pin_ids, pin_logits; /* pageable when pinning is refused (host/pinned.h) */
} cuda_engine;

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

static void dims(cuda_engine *ce, const sc_config *c, int int8, int group, int n_ctx, int nseq, int chunk,
                 int kv_type, const sc_lora *const *lora, int nlora) {
    ce->int8 = int8, ce->group = group;
    ce->kv_type = kv_type == SC_KV_Q8 || kv_type == SC_KV_Q4 ? kv_type : SC_KV_F16;
    ce->qb = kv_block(c->head_dim);
    ce->C = c->hidden_size, ce->F = c->intermediate_size, ce->hd = c->head_dim, ce->L = c->num_hidden_layers;
    ce->nh = c->num_attention_heads, ce->nkv = c->num_key_value_heads, ce->V = c->vocab_size;
    ce->Q = ce->nh * ce->hd, ce->KV = ce->nkv * ce->hd, ce->QKV = ce->Q + 2 * ce->KV;
    ce->max_ctx = n_ctx > 0 && n_ctx < c->max_position_embeddings ? n_ctx : c->max_position_embeddings;
    ce->nseq = nseq > 0 ? nseq : 1;
    ce->chunk = chunk > 0 && chunk < CHUNK ? chunk : CHUNK;
    if (ce->chunk > ce->max_ctx) ce->chunk = ce->max_ctx;
    ce->eps = (float)c->rms_norm_eps, ce->theta = (float)c->rope_theta;
    ce->tied = c->tie_word_embeddings;
    ce->qkv_bias = c->qkv_bias, ce->o_bias = c->o_bias, ce->mlp_bias = c->mlp_bias;
    /* a quantized cache: every row attends to the quantized keys and values, the prompt's first chunk too (as on the
     * CPU), so the decode kernel over the cache; flash attention would read the chunk's FP16 rows */
    ce->flash = ce->chunk > GEMV_MAX_T && ce->kv_type == SC_KV_F16 &&
                kn_attention_check(ce->hd, ce->nh, ce->nkv, ce->QKV, ce->QKV) == 0;
    ce->layers = sc_calloc((size_t)ce->L, sizeof(clayer));
    ce->lora = lora, ce->nlora = nlora > 0 ? nlora : 0;
    ce->lmat = ce->nlora ? sc_calloc((size_t)ce->nlora * ce->L * LORA_NTARGETS, sizeof(clora)) : NULL;
    for (int i = 0; i < ce->nlora; i++)
        if (lora[i]->rank > ce->lora_rmax) ce->lora_rmax = lora[i]->rank;
}

static void dims_free(cuda_engine *ce) {
    free(ce->layers), free(ce->lmat);
    ce->layers = NULL, ce->lmat = NULL;
}

static void take_mat(cuda_engine *ce, cuda_arena *a, cmat *m, int rows, int cols) {
    m->rows = rows, m->cols = cols;
    m->group = ce->group <= 0 || ce->group > cols ? cols : ce->group;
    m->ng = (cols + m->group - 1) / m->group;
    if (ce->int8) {
        m->q = cuda_arena_alloc(a, (size_t)rows * cols);
        m->s = cuda_arena_alloc(a, (size_t)rows * m->ng * sizeof(kn_half));
    } else {
        m->h = cuda_arena_alloc(a, (size_t)rows * cols * sizeof(kn_half));
    }
}

/* One cache of n_ctx positions (kv_bytes of host/kv_cache.c): k and v data, then (q8, q4) k and v scales; kv_carve
 * sets the pointers of a cache at p. Each part stays aligned for the attention's loads: KV is a multiple of 8, so
 * a part is a multiple of 16 bytes (f16), 8 (q8) or 4 (q4) bytes long; pool slots are 256-byte strides. */
static size_t kv_cache_bytes(const cuda_engine *ce, int n_ctx) {
    size_t n = (size_t)ce->L * n_ctx * ce->KV, b = 2 * kv_data_bytes(ce->kv_type, n);
    if (ce->kv_type != SC_KV_F16) b += 2 * (n / (size_t)ce->qb * sizeof(kn_half));
    return b;
}

static void kv_carve(const cuda_engine *ce, sc_kv *kv, uint8_t *p) {
    size_t n = (size_t)ce->L * kv->n_ctx * ce->KV, db = kv_data_bytes(ce->kv_type, n);
    kv->k = p, kv->v = p + db;
    if (ce->kv_type != SC_KV_F16) {
        size_t sb = n / (size_t)ce->qb * sizeof(kn_half);
        kv->ks = (uint16_t *)(p + 2 * db), kv->vs = (uint16_t *)(p + 2 * db + sb);
    }
}

/* Every device buffer, from arena a (a sizing arena first, then the real one). */
static void layout(cuda_engine *ce, cuda_arena *a) {
#define TAKE(type, n) ((type *)cuda_arena_alloc(a, sizeof(type) * (size_t)(n)))
    size_t T = (size_t)ce->chunk, C = (size_t)ce->C, F = (size_t)ce->F, m0 = cuda_arena_mark(a);
    for (int l = 0; l < ce->L; l++) {
        clayer *y = &ce->layers[l];
        y->attn_norm = TAKE(kn_half, C);
        y->mlp_norm = TAKE(kn_half, C);
        take_mat(ce, a, &y->qkv, ce->QKV, ce->C);
        take_mat(ce, a, &y->o, ce->C, ce->Q);
        take_mat(ce, a, &y->gu, 2 * ce->F, ce->C);
        take_mat(ce, a, &y->down, ce->C, ce->F);
        y->bqkv = ce->qkv_bias ? TAKE(kn_half, ce->QKV) : NULL;
        y->bo = ce->o_bias ? TAKE(kn_half, C) : NULL;
        y->bgu = ce->mlp_bias ? TAKE(kn_half, 2 * F) : NULL;
        y->bdown = ce->mlp_bias ? TAKE(kn_half, C) : NULL;
    }
    size_t m1 = cuda_arena_mark(a);
    take_mat(ce, a, &ce->embed, ce->V, ce->C);
    size_t m2 = cuda_arena_mark(a);
    if (ce->tied) ce->lm_head = ce->embed;
    else take_mat(ce, a, &ce->lm_head, ce->V, ce->C);
    ce->layer_bytes = m1 - m0, ce->embed_bytes = m2 - m1, ce->head_bytes = cuda_arena_mark(a) - m2;
    ce->final_norm = TAKE(kn_half, C);
    ce->inv_freq = TAKE(float, ce->hd / 2);
    ce->weight_bytes = cuda_arena_mark(a);
    for (int i = 0; i < ce->nlora; i++) {
        const sc_lora *ad = ce->lora[i];
        for (int l = 0; l < ce->L; l++)
            for (int t = 0; t < LORA_NTARGETS; t++) {
                if (!(ad->targets >> t & 1)) continue;
                clora *m = &ce->lmat[((size_t)i * ce->L + l) * LORA_NTARGETS + t];
                m->A = TAKE(float, (size_t)ad->rank * ad->in[t]);
                m->B = TAKE(float, (size_t)ad->out[t] * ad->rank);
            }
    }
    ce->lora_h = ce->nlora ? TAKE(float, T * (size_t)ce->lora_rmax) : NULL;
    ce->lora_bytes = cuda_arena_mark(a) - ce->weight_bytes;
    ce->x = TAKE(kn_half, T * C);
    ce->xn = TAKE(kn_half, T * C);
    ce->qkv = TAKE(kn_half, T * ce->QKV);
    ce->att = TAKE(kn_half, T * ce->Q);
    ce->o = TAKE(kn_half, T * C);
    ce->gu = TAKE(kn_half, T * 2 * F);
    ce->act = TAKE(kn_half, T * F);
    ce->down = TAKE(kn_half, T * C);
    ce->rstd = TAKE(float, T);
    ce->act_bytes = cuda_arena_mark(a) - ce->weight_bytes;
    size_t inmax = max_sz(max_sz(C, F), (size_t)ce->Q);
    /* INT8 prefill: the largest matrix dequantized (the lm_head never is: logits are GEMVs) */
    ce->deq = ce->int8 ? TAKE(kn_half, max_sz(max_sz((size_t)ce->QKV * C, 2 * F * C), max_sz(C * F, C * ce->Q)))
                       : NULL;
    ce->deq_bytes = cuda_arena_mark(a) - ce->weight_bytes - ce->act_bytes;
    ce->xq = TAKE(int8_t, GEMV_MAX_T * inmax);
    ce->xs = TAKE(float, GEMV_MAX_T * inmax / 4); /* ngroups <= cols / 4 (groups are multiples of 4) */
    ce->logits = TAKE(float, (size_t)GEMV_MAX_T * ce->V);
    ce->ids = TAKE(int32_t, T);
    ce->step = TAKE(kn_kv_step, 1);
    ce->att_ws = cuda_arena_alloc(a, kn_decode_attention_workspace(ce->chunk, ce->nh, ce->hd));
    ce->lse = ce->flash ? TAKE(float, (size_t)ce->nh * ce->chunk) : NULL;
    ce->blas_ws = cuda_arena_alloc(a, BLAS_WS);
    ce->gemm_staging = cuda_arena_alloc(a, KN_GEMM_STAGING_BYTES);
    size_t before_kv = cuda_arena_mark(a);
    ce->kv_slot_bytes = (kv_cache_bytes(ce, ce->max_ctx) + 255) / 256 * 256;
    ce->kv_pool = TAKE(uint8_t, ce->kv_slot_bytes * ce->nseq);
    ce->kv_bytes = cuda_arena_mark(a) - before_kv;
#undef TAKE
}

/* Lays an engine of these dimensions out against a sizing arena (no device): ce keeps the sizes of its parts;
 * returns the arena's bytes. Every plan below is this one layout, so the plans and the engine cannot disagree. */
static int64_t plan_run(cuda_engine *ce, const sc_config *c, int int8, int group, int n_ctx, int n_seqs, int chunk,
                        int kv_type, const sc_lora *const *lora, int nlora) {
    memset(ce, 0, sizeof *ce);
    dims(ce, c, int8, group, n_ctx, n_seqs, chunk, kv_type, lora, nlora);
    cuda_arena a;
    cuda_arena_sizing(&a);
    layout(ce, &a);
    dims_free(ce);
    return (int64_t)a.high;
}

static int64_t plan_bytes(const sc_config *c, int int8, int group, int n_ctx, int n_seqs, int chunk, int kv_type,
                          const sc_lora *const *lora, int nlora) {
    cuda_engine ce;
    return plan_run(&ce, c, int8, group, n_ctx, n_seqs, chunk, kv_type, lora, nlora);
}

int64_t engine_cuda_plan_bytes(const sc_config *c, int int8, int group, int n_ctx, int n_seqs, int kv_type) {
    return plan_bytes(c, int8, group, n_ctx, n_seqs, 0, kv_type, NULL, 0);
}

int64_t engine_cuda_plan_bytes_lora(const sc_config *c, int int8, int group, int n_ctx, int n_seqs, int kv_type,
                                    const sc_lora *const *lora, int n_lora) {
    return plan_bytes(c, int8, group, n_ctx, n_seqs, 0, kv_type, lora, n_lora);
}

int64_t engine_cuda_plan_describe(const sc_config *c, int int8, int group, int n_ctx, int n_seqs, int kv_type,
                                  char *buf, size_t n) {
    cuda_engine ce;
    int64_t high = plan_run(&ce, c, int8, group, n_ctx, n_seqs, 0, kv_type, NULL, 0);
    double mib = 1048576.0, scratch = (double)(high - (int64_t)ce.weight_bytes - (int64_t)ce.kv_bytes);
    size_t other = ce.weight_bytes - ce.layer_bytes - ce.embed_bytes - ce.head_bytes;
    snprintf(buf, n,
             "  weights (%s%s)        %8.1f MiB: layers %.1f, token embedding %.1f, lm_head %.1f%s, norms + rope %.1f\n"
             "  KV cache (%s)            %8.1f MiB: %d x %d positions x %d layers, %.1f KiB/position\n"
             "  scratch (chunk %d)       %8.1f MiB: activations %.1f, INT8 prefill dequantization %.1f, other %.1f\n"
             "  total (the arena)        %8.1f MiB (the CUDA context, cuBLAS and kernels come on top)\n",
             int8 ? "int8" : "fp16", int8 ? (group > 0 ? ", per group" : ", per row") : "", ce.weight_bytes / mib,
             ce.layer_bytes / mib, ce.embed_bytes / mib, ce.head_bytes / mib, ce.tied ? " (tied)" : "",
             other / mib, kv_type_names[ce.kv_type], ce.kv_bytes / mib, ce.nseq, ce.max_ctx, ce.L,
             2.0 * ce.L * kv_row_bytes(ce.kv_type, ce.nkv, ce.hd) / 1024.0, ce.chunk, scratch / mib,
             ce.act_bytes / mib, ce.deq_bytes / mib, (scratch - ce.act_bytes - ce.deq_bytes) / mib, high / mib);
    return high;
}

void engine_cuda_plan(const sc_config *c, int int8, int group, int n_ctx, int n_seqs, int chunk, int kv_type,
                      const sc_lora *const *lora, int n_lora, sc_engine_plan *p) {
    cuda_engine ce;
    p->total = plan_run(&ce, c, int8, group, n_ctx, n_seqs, chunk, kv_type, lora, n_lora);
    p->weights = (int64_t)ce.weight_bytes, p->lora = (int64_t)ce.lora_bytes;
    p->kv = (int64_t)ce.kv_bytes, p->scratch = p->total - p->weights - p->lora - p->kv;
}

/* bytes of the weights as stored on the device: what one decode step reads */
static int64_t weight_bytes_of(const sc_config *c, int int8, int group) {
    cuda_engine ce;
    plan_run(&ce, c, int8, group, 1, 1, 1, SC_KV_F16, NULL, 0);
    return (int64_t)ce.weight_bytes;
}

int engine_cuda_auto_int8(const sc_config *c, int quantized, int group, int n_ctx, int n_seqs, int chunk,
                          int kv_type, const device_probe_info *dp, char *why, size_t n) {
    int64_t need16 = plan_bytes(c, 0, 0, n_ctx, n_seqs, chunk, kv_type, NULL, 0);
    double ceiling = dp->bandwidth > 0 ? dp->bandwidth / (double)weight_bytes_of(c, 0, 0) : 0.0;
    if (quantized) {
        snprintf(why, n, "auto: an INT8 checkpoint runs as stored");
        return 1;
    }
    if (need16 + DEVICE_RESERVE > dp->free_now) {
        snprintf(why, n, "auto: FP16 weights + KV (%.1f MiB) do not fit the free memory", need16 / 1048576.0);
        return 1;
    }
    if (ceiling > 0 && ceiling < AUTO_FP16_MIN_TOK_S) {
        snprintf(why, n, "auto: FP16 decode could reach at most %.0f tok/s at this card's %.0f GB/s, under %.0f; INT8 "
                 "reads half the bytes per token", ceiling, dp->bandwidth / 1e9, AUTO_FP16_MIN_TOK_S);
        return 1;
    }
    if (ceiling > 0)
        snprintf(why, n, "auto: FP16 fits and its decode ceiling is %.0f tok/s at %.0f GB/s", ceiling, dp->bandwidth / 1e9);
    else
        snprintf(why, n, "auto: FP16 weights + KV fit the free memory (bandwidth unknown)");
    return 0;
}

/* ---- upload ---- */

/* rows of W into m starting at row r_dst (fused matrices take several), converted or quantized as m needs */
static void upload_mat(cuda_engine *ce, cmat *m, int r_dst, const sc_wmat *W) {
    int cols = W->cols;
    float *f = sc_malloc((size_t)UPLOAD_ROWS * cols * sizeof(float));
    uint16_t *h = sc_malloc((size_t)UPLOAD_ROWS * cols * sizeof(uint16_t));
    int8_t *q = sc_malloc((size_t)UPLOAD_ROWS * cols);
    for (int r0 = 0; r0 < W->rows; r0 += UPLOAD_ROWS) {
        int n = W->rows - r0 < UPLOAD_ROWS ? W->rows - r0 : UPLOAD_ROWS;
        size_t off = (size_t)(r_dst + r0) * cols, soff = (size_t)(r_dst + r0) * m->ng;
        if (!ce->int8) {
            wmat_rows_f32(W, r0, r0 + n, f);
            for (size_t i = 0; i < (size_t)n * cols; i++) h[i] = float_to_half(f[i]);
            CU_CHECK(cudaMemcpy(m->h + off, h, (size_t)n * cols * 2, cudaMemcpyHostToDevice));
        } else if (!W->f) { /* INT8 as stored (same group size: the model's) */
            CU_CHECK(cudaMemcpy(m->q + off, W->q.q + (size_t)r0 * cols, (size_t)n * cols, cudaMemcpyHostToDevice));
            const uint8_t *scales = (const uint8_t *)W->q.scale + (size_t)r0 * m->ng * 2; /* bytes: may be unaligned */
            CU_CHECK(cudaMemcpy(m->s + soff, scales, (size_t)n * m->ng * 2, cudaMemcpyHostToDevice));
        } else {
            quant_rows(W->f + (size_t)r0 * cols, n, cols, ce->group, q, h);
            CU_CHECK(cudaMemcpy(m->q + off, q, (size_t)n * cols, cudaMemcpyHostToDevice));
            CU_CHECK(cudaMemcpy(m->s + soff, h, (size_t)n * m->ng * 2, cudaMemcpyHostToDevice));
        }
    }
    free(f), free(h), free(q);
}

static void upload_vec(kn_half *dst, const float *src, int n) {
    uint16_t *h = sc_malloc((size_t)n * 2);
    for (int i = 0; i < n; i++) h[i] = float_to_half(src[i]);
    CU_CHECK(cudaMemcpy(dst, h, (size_t)n * 2, cudaMemcpyHostToDevice));
    free(h);
}

/* biases b0 [n0] and b1 [n1] (either NULL = zeros) into one FP16 vector at dst */
static void upload_bias2(kn_half *dst, const float *b0, int n0, const float *b1, int n1) {
    if (!dst) return;
    float *f = sc_calloc((size_t)(n0 + n1), sizeof(float));
    if (b0) memcpy(f, b0, (size_t)n0 * sizeof(float));
    if (b1) memcpy(f + n0, b1, (size_t)n1 * sizeof(float));
    upload_vec(dst, f, n0 + n1);
    free(f);
}

static void upload(cuda_engine *ce, const sc_weights *w) {
    for (int l = 0; l < ce->L; l++) {
        const sc_wlayer *s = &w->layers[l];
        clayer *y = &ce->layers[l];
        upload_vec(y->attn_norm, s->attn_norm, ce->C);
        upload_vec(y->mlp_norm, s->mlp_norm, ce->C);
        upload_mat(ce, &y->qkv, 0, &s->wq);
        upload_mat(ce, &y->qkv, ce->Q, &s->wk);
        upload_mat(ce, &y->qkv, ce->Q + ce->KV, &s->wv);
        upload_mat(ce, &y->o, 0, &s->wo);
        upload_mat(ce, &y->gu, 0, &s->wgate);
        upload_mat(ce, &y->gu, ce->F, &s->wup);
        upload_mat(ce, &y->down, 0, &s->wdown);
        if (y->bqkv) { /* q | k | v as the fused matrix's rows */
            upload_bias2(y->bqkv, s->bq, ce->Q, s->bk, ce->KV);
            upload_bias2(y->bqkv + ce->Q + ce->KV, s->bv, ce->KV, NULL, 0);
        }
        upload_bias2(y->bo, s->bo, ce->C, NULL, 0);
        upload_bias2(y->bgu, s->bgate, ce->F, s->bup, ce->F);
        upload_bias2(y->bdown, s->bdown, ce->C, NULL, 0);
    }
    upload_mat(ce, &ce->embed, 0, &w->embed);
    if (!ce->tied) upload_mat(ce, &ce->lm_head, 0, &w->lm_head);
    upload_vec(ce->final_norm, w->final_norm, ce->C);
    for (int i = 0; i < ce->nlora; i++) { /* FP32 as loaded */
        const sc_lora *ad = ce->lora[i];
        for (int l = 0; l < ce->L; l++)
            for (int t = 0; t < LORA_NTARGETS; t++) {
                const clora *m = &ce->lmat[((size_t)i * ce->L + l) * LORA_NTARGETS + t];
                if (!m->A) continue;
                CU_CHECK(cudaMemcpy(m->A, lora_a(ad, l, t), sizeof(float) * (size_t)ad->rank * ad->in[t],
                                    cudaMemcpyHostToDevice));
                CU_CHECK(cudaMemcpy(m->B, lora_b(ad, l, t), sizeof(float) * (size_t)ad->out[t] * ad->rank,
                                    cudaMemcpyHostToDevice));
            }
    }
    float inv[512]; /* the CPU engine's frequencies, rope_scaling included (config.c) */
    config_rope_inv_freq(&w->cfg, inv);
    CU_CHECK(cudaMemcpy(ce->inv_freq, inv, sizeof(float) * (size_t)(ce->hd / 2), cudaMemcpyHostToDevice));
}

/* ---- forward ---- */

/* y[T, rows] = x[T, cols] W^T (FP16 out) */
static void linear(cuda_engine *ce, const cmat *W, const kn_half *x, kn_half *y, int T) {
    cudaStream_t s = ce->stream;
    if (ce->int8) {
        if (T <= GEMV_MAX_T) {
            kn_act_quant(ce->xq, ce->xs, x, T, W->cols, W->group, s);
            kn_int8_gemv(y, NULL, ce->xq, ce->xs, W->q, W->s, T, W->rows, W->cols, W->group, s);
        } else {
            kn_int8_dequant(ce->deq, W->q, W->s, W->rows, W->cols, W->group, s);
            kn_matmul_forward(ce->blas, y, x, ce->deq, T, W->cols, W->rows);
        }
    } else if (T <= GEMV_MAX_T) {
        (void)kn_f16_gemv(y, NULL, x, W->h, T, W->rows, W->cols, s); /* even cols: checked at open */
    } else {
        kn_matmul_forward(ce->blas, y, x, W->h, T, W->cols, W->rows);
    }
}

/* the active adapters' side paths of target t in layer l: y (row stride ldy, already offset to the target's columns
 * of a fused output) += scale * (x A^T) B^T */
static void lora_add(cuda_engine *ce, int l, int t, const kn_half *x, kn_half *y, int ldy, int T) {
    for (int i = 0; i < ce->nlora; i++) {
        const sc_lora *ad = ce->lora[i];
        const clora *m = &ce->lmat[((size_t)i * ce->L + l) * LORA_NTARGETS + t];
        float scale = ce->lora_on.scale[i];
        if (scale == 0.0f || !m->A) continue;
        kn_lora_apply(y, ldy, x, m->A, m->B, scale * lora_scaling(ad), T, ad->out[t], ad->in[t], ad->rank,
                      ce->lora_h, ce->stream);
    }
}

/* ce->logits[n, V] (FP32) from n <= GEMV_MAX_T normalized rows */
static void lm_rows(cuda_engine *ce, const kn_half *xn, int n) {
    const cmat *W = &ce->lm_head;
    if (ce->int8) {
        kn_act_quant(ce->xq, ce->xs, xn, n, W->cols, W->group, ce->stream);
        kn_int8_gemv(NULL, ce->logits, ce->xq, ce->xs, W->q, W->s, n, W->rows, W->cols, W->group, ce->stream);
    } else {
        (void)kn_f16_gemv(NULL, ce->logits, xn, W->h, n, W->rows, W->cols, ce->stream);
    }
}

/* The layers for T tokens (ids in ce->ids, position and cache in ce->step), then the final norm of the last
 * out_rows rows into ce->xn. Only kernels and GEMVs when T <= GEMV_MAX_T: that is what the graph captures.
 * pos0: the rows' first position when the host knows it (-1 in the graph). A prompt's first chunk (pos0 = 0, more
 * than GEMV_MAX_T rows) attends only to itself: with an FP16 cache the training flash attention kernel, on q, k, v
 * in the qkv buffer (after RoPE; the cache got its copy); later chunks, decode and every chunk over a q8/q4 cache
 * use the decode kernel over the cache. */
static void enqueue_layers(cuda_engine *ce, int T, int out_rows, int pos0) {
    cudaStream_t s = ce->stream;
    int C = ce->C, F = ce->F;
    if (ce->int8) kn_int8_embedding(ce->x, ce->ids, ce->embed.q, ce->embed.s, T, C, ce->embed.group, s);
    else kn_embedding_forward(ce->x, ce->ids, ce->embed.h, T, C, s);
    for (int l = 0; l < ce->L; l++) {
        const clayer *y = &ce->layers[l];
        /* the previous layer's MLP output joins the residual here (fused add) */
        kn_rmsnorm_forward(ce->x, ce->xn, ce->rstd, ce->x, l ? ce->down : NULL, y->attn_norm, T, C, ce->eps, s);
        linear(ce, &y->qkv, ce->xn, ce->qkv, T);
        kn_bias_forward(ce->qkv, y->bqkv, T, ce->QKV, s); /* before RoPE, as HF: q and k biases are rotated too */
        if (ce->nlora) {
            lora_add(ce, l, LORA_Q, ce->xn, ce->qkv, ce->QKV, T);
            lora_add(ce, l, LORA_K, ce->xn, ce->qkv + ce->Q, ce->QKV, T);
            lora_add(ce, l, LORA_V, ce->xn, ce->qkv + ce->Q + ce->KV, ce->QKV, T);
        }
        kn_rope_kv_store(ce->qkv, ce->step, ce->inv_freq, l, T, ce->nh, ce->nkv, ce->hd, ce->kv_type, ce->qb, s);
        if (pos0 == 0 && T > GEMV_MAX_T && ce->flash)
            kn_attention_forward(ce->att, ce->lse, ce->qkv, ce->qkv + ce->Q, ce->qkv + ce->Q + ce->KV, T, ce->nh,
                                 ce->nkv, ce->hd, ce->QKV, ce->QKV, s);
        else
            kn_decode_attention(ce->att, ce->qkv, ce->step, l, T, ce->nh, ce->nkv, ce->hd, ce->max_ctx, ce->kv_type,
                                ce->qb, ce->att_ws, s);
        linear(ce, &y->o, ce->att, ce->o, T);
        kn_bias_forward(ce->o, y->bo, T, C, s);
        if (ce->nlora) lora_add(ce, l, LORA_O, ce->att, ce->o, C, T);
        kn_rmsnorm_forward(ce->x, ce->xn, ce->rstd, ce->x, ce->o, y->mlp_norm, T, C, ce->eps, s);
        linear(ce, &y->gu, ce->xn, ce->gu, T);
        kn_bias_forward(ce->gu, y->bgu, T, 2 * F, s);
        if (ce->nlora) {
            lora_add(ce, l, LORA_GATE, ce->xn, ce->gu, 2 * F, T);
            lora_add(ce, l, LORA_UP, ce->xn, ce->gu + F, 2 * F, T);
        }
        kn_swiglu_forward(ce->act, ce->gu, ce->gu + F, T, F, 2 * F, s);
        linear(ce, &y->down, ce->act, ce->down, T);
        kn_bias_forward(ce->down, y->bdown, T, C, s);
        if (ce->nlora) lora_add(ce, l, LORA_DOWN, ce->act, ce->down, C, T);
    }
    if (out_rows > 0) {
        size_t r0 = (size_t)(T - out_rows) * C;
        kn_rmsnorm_forward(ce->x + r0, ce->xn + r0, ce->rstd, ce->x + r0, ce->down + r0, ce->final_norm, out_rows, C,
                           ce->eps, s);
    }
}

static void graph_build(cuda_engine *ce) {
    cudaGraph_t g;
    CU_CHECK(cudaStreamBeginCapture(ce->stream, cudaStreamCaptureModeThreadLocal));
    enqueue_layers(ce, 1, 1, -1);
    lm_rows(ce, ce->xn, 1);
    CU_CHECK(cudaStreamEndCapture(ce->stream, &g));
    CU_CHECK(cudaGraphInstantiate(&ce->graph, g, 0));
    CU_CHECK(cudaGraphDestroy(g));
    ce->graph_lora = ce->lora_on;
}

static int cuda_forward(sc_engine *e, sc_kv *kv, const int32_t *ids, int n, float *logits, float *all_logits) {
    cuda_engine *ce = e->impl;
    int V = ce->V;
    if (n <= 0) return sc_fail("forward: no tokens");
    if (kv->owner != ce) return sc_fail("forward: this KV cache was not made by this CUDA engine");
    if (kv->n + n > kv->n_ctx)
        return sc_fail("context full: %d cached + %d new tokens > %d positions", kv->n, n, kv->n_ctx);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V) return sc_fail("token id %d is outside the vocabulary (%d)", ids[i], V);
    cudaStream_t s = ce->stream;
    ce->lora_on = e->lora_on;
    for (int i = 0; i < n; i += ce->chunk) {
        int T = n - i < ce->chunk ? n - i : ce->chunk, last = i + T == n;
        int out_rows = all_logits ? T : last && logits ? 1 : 0;
        /* the staging buffers are reused by the next chunk: every chunk ends with a synchronize */
        *ce->h_step = (kn_kv_step){.pos = kv->n, .n_ctx = kv->n_ctx, .k = kv->k, .v = kv->v, .ks = kv->ks, .vs = kv->vs};
        memcpy(ce->h_ids, ids + i, (size_t)T * sizeof(int32_t));
        CU_CHECK(cudaMemcpyAsync(ce->step, ce->h_step, sizeof *ce->h_step, cudaMemcpyHostToDevice, s));
        CU_CHECK(cudaMemcpyAsync(ce->ids, ce->h_ids, (size_t)T * sizeof(int32_t), cudaMemcpyHostToDevice, s));
        float *dst = all_logits ? all_logits + (size_t)i * V : logits;
        size_t row_bytes = (size_t)V * sizeof(float);
        if (T == 1 && out_rows == 1 && ce->graphs) {
            if (ce->graph && !engine_lora_set_equal(&ce->graph_lora, &ce->lora_on)) { /* other adapters: recapture */
                CU_CHECK(cudaGraphExecDestroy(ce->graph));
                ce->graph = NULL;
            }
            if (!ce->graph) graph_build(ce);
            CU_CHECK(cudaGraphLaunch(ce->graph, s));
            CU_CHECK(cudaMemcpyAsync(ce->h_logits, ce->logits, row_bytes, cudaMemcpyDeviceToHost, s));
            CU_CHECK(cudaStreamSynchronize(s));
            memcpy(dst, ce->h_logits, row_bytes);
        } else {
            enqueue_layers(ce, T, out_rows, kv->n);
            for (int r = 0; r < out_rows; r += GEMV_MAX_T) {
                int nr = out_rows - r < GEMV_MAX_T ? out_rows - r : GEMV_MAX_T;
                lm_rows(ce, ce->xn + (size_t)(T - out_rows + r) * ce->C, nr);
                CU_CHECK(cudaMemcpyAsync(ce->h_logits, ce->logits, nr * row_bytes, cudaMemcpyDeviceToHost, s));
                CU_CHECK(cudaStreamSynchronize(s));
                memcpy(dst + (size_t)r * V, ce->h_logits, nr * row_bytes);
            }
            CU_CHECK(cudaStreamSynchronize(s));
        }
        kv->n += T;
    }
    if (all_logits && logits) memcpy(logits, all_logits + (size_t)(n - 1) * V, (size_t)V * sizeof(float));
    return 0;
}

/* ---- KV caches: the preallocated slots first, then (more sessions than planned) their own cudaMalloc ---- */

static void cuda_kv_release(void *owner, void *p) {
    cuda_engine *ce = owner;
    sc_kv *kv = p;
    uint8_t *k = kv->k;
    if (k >= ce->kv_pool && k < ce->kv_pool + ce->kv_slot_bytes * ce->nseq) {
        ce->kv_busy[(k - ce->kv_pool) / ce->kv_slot_bytes] = 0;
        return;
    }
    CU_CHECK(cudaFree(k));
    ce->extra_bytes -= (int64_t)kv_cache_bytes(ce, kv->n_ctx);
}

static void cuda_kv_create(const sc_engine *e, sc_kv *kv, int n_ctx) {
    cuda_engine *ce = e->impl;
    if (n_ctx > ce->max_ctx) n_ctx = ce->max_ctx;
    *kv = (sc_kv){.n_ctx = n_ctx, .nlayers = ce->L, .nkv = ce->nkv, .hd = ce->hd, .type = ce->kv_type, .qb = ce->qb,
                  .owner = ce, .release = cuda_kv_release};
    size_t bytes = kv_cache_bytes(ce, n_ctx);
    uint8_t *p = NULL;
    for (int i = 0; i < ce->nseq && !p; i++)
        if (!ce->kv_busy[i]) ce->kv_busy[i] = 1, p = ce->kv_pool + ce->kv_slot_bytes * i;
    if (!p) {
        cudaError_t err = cudaMalloc((void **)&p, bytes);
        if (err != cudaSuccess) { /* engine_kv_create cannot fail by contract: the plan was for n_seqs sessions */
            fprintf(stderr, "smallcoder: no device memory for KV cache %d (%.1f MiB; %d were planned): %s\n",
                    ce->nseq + 1, bytes / 1048576.0, ce->nseq, cudaGetErrorString(err));
            exit(1);
        }
        ce->extra_bytes += (int64_t)bytes;
        if (ce->extra_bytes > ce->extra_peak) ce->extra_peak = ce->extra_bytes;
        ((sc_engine *)e)->device_bytes = (int64_t)ce->arena.cap + ce->extra_peak;
    }
    kv_carve(ce, kv, p);
}

static void cuda_close(sc_engine *e) {
    cuda_engine *ce = e->impl;
    if (!ce) return;
    if (ce->graph) CU_CHECK(cudaGraphExecDestroy(ce->graph));
    if (ce->blas) kn_blas_destroy(ce->blas);
    if (ce->stream) CU_CHECK(cudaStreamDestroy(ce->stream));
    cuda_arena_close(&ce->arena);
    pinned_free(&ce->pin_step), pinned_free(&ce->pin_ids), pinned_free(&ce->pin_logits);
    dims_free(ce);
    free(ce->kv_busy), free(ce);
    e->impl = NULL;
}

static const sc_engine_ops cuda_ops = {"cuda", cuda_forward, cuda_close, cuda_kv_create};

int64_t engine_cuda_measured_bytes(const sc_engine *e) {
    const cuda_engine *ce = e->impl;
    size_t free_b = 0, total_b = 0;
    if (e->ops != &cuda_ops || !ce || cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return -1;
    return (int64_t)ce->free_at_open - (int64_t)free_b;
}

int engine_cuda_open(sc_engine *e, const sc_engine_opts *o) {
    const sc_weights *w = e->w;
    const sc_config *c = e->cfg;
    const char *prec = o->precision ? o->precision : "auto";
    int group = w->quantized ? w->group_size : 0, n_ctx = o->n_ctx, nseq = o->n_seqs > 0 ? o->n_seqs : 1;
    device_probe_info dp; /* the context, cuBLAS and every kernel first: what is left is the arena's */
    if (device_probe(c->head_dim, &dp)) return -1;
    size_t free_b = (size_t)dp.free_now;
    /* a draft opened after this engine shares the device: auto decides on what is left for this model */
    int64_t reserve = o->reserve_bytes > 0 ? o->reserve_bytes : 0;
    dp.free_now -= reserve;
    int kvt = o->kv_type;
    int64_t need16 = plan_bytes(c, 0, 0, n_ctx, nseq, o->chunk, kvt, e->lora, e->n_lora);
    int64_t need8 = plan_bytes(c, 1, group, n_ctx, nseq, o->chunk, kvt, e->lora, e->n_lora);
    int int8;
    char why[240] = "asked for";
    if (!strcmp(prec, "fp16")) int8 = 0;
    else if (!strcmp(prec, "int8")) int8 = 1;
    else int8 = engine_cuda_auto_int8(c, w->quantized, group, n_ctx, nseq, o->chunk, kvt, &dp, why, sizeof why);
    if (kvt == SC_KV_F32) fprintf(stderr, "note: the CUDA engine keeps its KV cache in FP16 (--kv f32 is for the CPU)\n");
    cuda_engine *ce = sc_calloc(1, sizeof *ce);
    dims(ce, c, int8, group, n_ctx, nseq, o->chunk, kvt, e->lora, e->n_lora);
    /* checks before anything is allocated: the shapes the kernels take */
    int bad = kn_decode_attention_check(ce->hd, ce->max_ctx);
    const int in_dims[3] = {ce->C, ce->Q, ce->F};
    for (int i = 0; i < 3 && !bad && int8; i++)
        bad = kn_int8_check(in_dims[i], group > 0 && group < in_dims[i] ? group : in_dims[i]);
    if (bad) {
        dims_free(ce), free(ce);
        return sc_fail("CUDA engine: %s (--device cpu runs it)", kn_last_error());
    }
    if (!int8 && (ce->C % 2 || ce->Q % 2 || ce->F % 2)) { /* the FP16 GEMV reads column pairs */
        sc_fail("CUDA engine: FP16 needs even hidden (%d), attention (%d) and FFN (%d) widths (--device cpu runs it)",
                ce->C, ce->Q, ce->F);
        dims_free(ce), free(ce);
        return -1;
    }
    const char *genv = getenv("SMALLCODER_CUDA_GRAPHS"); /* "0": plain launches (bench/gpu-suite compares) */
    ce->graphs = !o->no_graphs && !(genv && !strcmp(genv, "0"));
    ce->free_at_open = free_b;
    e->ops = &cuda_ops;
    e->impl = ce;
    e->kv_type = ce->kv_type;
    e->precision = int8 ? "int8" : "fp16";
    size_t bytes = (size_t)(int8 ? need8 : need16);
    if (reserve > 0 && (int64_t)bytes + reserve > (int64_t)free_b) {
        cuda_close(e);
        return sc_fail("CUDA engine: this model's arena (%s, %.1f MiB) and the draft's (%.1f MiB) need %.1f MiB, "
                       "%.1f MiB are free (--plan shows the rows; a smaller --ctx or an INT8 model fits more)",
                       int8 ? "int8" : "fp16", bytes / 1048576.0, reserve / 1048576.0,
                       ((int64_t)bytes + reserve) / 1048576.0, free_b / 1048576.0);
    }
    if (cuda_arena_open(&ce->arena, bytes)) {
        cuda_close(e);
        return sc_fail("CUDA engine, precision %s: %s", e->precision, sc_error());
    }
    layout(ce, &ce->arena);
    ce->kv_busy = sc_calloc((size_t)ce->nseq, sizeof(int));
    CU_CHECK(cudaStreamCreate(&ce->stream));
    ce->h_step = pinned_alloc(&ce->pin_step, sizeof *ce->h_step, "the engine's staging buffers");
    ce->h_ids = pinned_alloc(&ce->pin_ids, (size_t)ce->chunk * sizeof(int32_t), "the engine's staging buffers");
    ce->h_logits = pinned_alloc(&ce->pin_logits, (size_t)GEMV_MAX_T * ce->V * sizeof(float), "the engine's staging buffers");
    ce->blas = kn_blas_create(ce->stream, ce->blas_ws, BLAS_WS, ce->gemm_staging, KN_GEMM_STAGING_BYTES);
    upload(ce, w);
    CU_CHECK(cudaDeviceSynchronize());
    e->device_bytes = (int64_t)bytes;
    e->weight_bytes = (int64_t)ce->weight_bytes;
    e->lora_bytes = (int64_t)ce->lora_bytes;
    e->context_bytes = dp.overhead;
    char desc[256] = "?", ctx[120];
    device_describe(0, desc, sizeof desc);
    fprintf(stderr,
            "cuda engine: %s; precision %s (%s; FP16 would take %.1f MiB, INT8 %.1f MiB, %.1f MiB free); device "
            "arena %.1f MiB = weights %.1f + LoRA adapters %.1f (%d, FP32) + KV %.1f (%s, %d x %d positions) + "
            "scratch %.1f; CUDA context, cuBLAS, kernels %s; decode graphs %s\n",
            desc, e->precision, why, need16 / 1048576.0, need8 / 1048576.0, free_b / 1048576.0, bytes / 1048576.0,
            ce->weight_bytes / 1048576.0, ce->lora_bytes / 1048576.0, ce->nlora, ce->kv_bytes / 1048576.0,
            kv_type_names[ce->kv_type], ce->nseq, ce->max_ctx,
            (bytes - ce->weight_bytes - ce->lora_bytes - ce->kv_bytes) / 1048576.0,
            device_probe_describe(&dp, ctx, sizeof ctx), ce->graphs ? "on" : "off");
    return 0;
}
#else
typedef int engine_cuda_unused; /* this build has no CUDA kernels: engine.c never calls here */
#endif
