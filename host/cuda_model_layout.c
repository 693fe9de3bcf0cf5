/* cuda_model_layout.c — the shape of a CUDA model (offsets of every tensor in the parameter block, the compact
 * FP16/INT8 layout of a frozen base, the adapter's options) and its device layout against an arena: what open
 * allocates and, run against a sizing arena with no device, what `train --plan` prints (cuda_model_plan). */
#include "host/cuda_model_internal.h"

static size_t take_size(const cuda_model *cm, size_t size) {
    return size == sizeof(kn_half) && cm->half_bytes ? cm->half_bytes : size;
}

/* Every device buffer, from arena a (a sizing arena first, then the real one), each part named for the record
 * that `train --plan` prints (cuda_model_plan): the plan is this layout, not a second derivation of it. */
void cuda_model_layout(cuda_model *cm, cuda_arena *a) {
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
int cuda_model_is_int8(const sc_param *p) {
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
        if (int8 && cuda_model_is_int8(p)) {
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
    cm->head_int8 = int8 && cm->lm_head_off != cm->embed_off && cuda_model_is_int8(&m->table[head]);
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
cuda_model *cuda_model_shape(const sc_model *m, int max_T, int flags) {
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
void cuda_model_attach_lora(cuda_model *cm, const sc_lora *ad) {
    int f = cm->flags;
    cm->lora = sc_malloc(sizeof(cuda_lora));
    cuda_lora_init(cm->lora, ad, cm->max_T, f & CUDA_MODEL_GRADS, (f & CUDA_MODEL_RECOMPUTE) != 0,
                   (f & CUDA_MODEL_STREAM_GRADS) != 0);
    /* a frozen base: the MLP in 8 chunks (no dW GEMM wants the whole sequence); not with dropout, whose masks are
     * indexed over the whole sequence (host/cpu/lora_dropout.h) */
    if ((f & CUDA_MODEL_FROZEN) && !(ad->dropout > 0)) cm->mlp_chunk = (cm->max_T + 7) / 8;
}

void cuda_model_free_shape(cuda_model *cm) {
    if (cm->lora) cuda_lora_free(cm->lora);
    free(cm->lora), free(cm->q8), free(cm->table), free(cm->acts), free(cm->offs), free(cm);
}

static int plan_layout(cuda_arena *a, const sc_config *c, const sc_lora *ad, int max_T, int flags, size_t blas_ws_bytes,
                       int fp32) {
    sc_model m;
    memset(&m, 0, sizeof m);
    m.cfg = *c;
    m.ntensors = model_param_table(c, &m.table, &m.nparams);
    cuda_model *cm = max_T > 0 ? cuda_model_shape(&m, max_T, flags) : NULL;
    free(m.table);
    if (!cm) return max_T > 0 ? -1 : sc_fail("cuda plan: max_T must be positive, got %d", max_T);
    cm->blas_ws_bytes = blas_ws_bytes;
    cm->half_bytes = fp32 ? sizeof(float) : 0;
    if (ad) cuda_model_attach_lora(cm, ad);
    cuda_arena_sizing(a);
    cuda_model_layout(cm, a);
    cuda_model_free_shape(cm);
    return 0;
}

int cuda_model_plan(cuda_arena *a, const sc_config *c, int max_T, int flags, size_t blas_ws_bytes, int fp32) {
    return plan_layout(a, c, NULL, max_T, flags, blas_ws_bytes, fp32);
}

int cuda_model_plan_lora(cuda_arena *a, const sc_config *c, const sc_lora *ad, int max_T, int flags,
                         size_t blas_ws_bytes) {
    return plan_layout(a, c, ad, max_T, flags, blas_ws_bytes, 0);
}
