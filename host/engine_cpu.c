/* engine_cpu.c — the CPU engine. Prefill (many tokens) goes through sgemm: FP32 matrices directly, INT8 ones
 * dequantized one matrix at a time into a scratch buffer. Decode (few tokens) on INT8 weights quantizes each
 * activation row to INT8 and runs INT8 x INT8 dot products (quant.c); FP32 weights use sgemv. Work is chunked so
 * scratch stays bounded whatever the prompt length. Active LoRA adapters add their low-rank side path to each
 * targeted linear layer's output (host/cpu/lora_apply.c), reading the adapters' FP32 weights where they are. */
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "host/engine.h"
#include "host/error.h"
#include "host/cpu/ops.h"
#include "host/threads.h"

enum {
    CHUNK = 256,      /* tokens per prefill pass */
    INT8_MAX_T = 256,   /* up to this many rows, INT8 matrices use the INT8 dot products; above, dequant + sgemm */
    F32_SMALL_T = 16,   /* up to this many rows, FP32 matrices use f32_matmul_small (batch-invariant); above, sgemm */
};

typedef struct {
    float *x, *xn, *q, *k, *v, *att, *tmp, *gate, *up, *rstd, *deq, *scores, *xs;
    float *lora_h; /* [CHUNK, largest adapter rank]: x A^T of the adapter being applied (NULL without adapters) */
    uint8_t *xq;
    size_t deq_floats;
    int nthreads; /* OpenMP threads per forward: set on every call, because the server calls from threads that
                   * libmicrohttpd created, which do not inherit the main thread's omp_set_num_threads */
    sc_pool *pool; /* decode steps' threads (threads.h): they spin through a step, sleep between steps */
} cpu_scratch;

static void *scratch_alloc(const sc_config *c, const sc_weights *w, cpu_scratch *s) {
    size_t C = c->hidden_size, F = c->intermediate_size, hd = c->head_dim, T = CHUNK;
    size_t nq = (size_t)c->num_attention_heads * hd, nkv = (size_t)c->num_key_value_heads * hd;
    size_t inmax = F > nq ? F : nq;
    if (C > inmax) inmax = C;
    s->x = sc_malloc(T * C * 4), s->xn = sc_malloc(T * C * 4), s->tmp = sc_malloc(T * C * 4);
    s->q = sc_malloc(T * nq * 4), s->att = sc_malloc(T * nq * 4);
    s->k = sc_malloc(T * nkv * 4), s->v = sc_malloc(T * nkv * 4);
    s->gate = sc_malloc(T * F * 4), s->up = sc_malloc(T * F * 4), s->rstd = sc_malloc(T * 4);
    s->deq = NULL; /* allocated on first use: the dequantize + sgemm path */
    s->deq_floats = w->quantized ? (F * C > nq * C ? F * C : nq * C) : 0;
    size_t att_ws = kv_attention_scratch(c->num_attention_heads, c->num_key_value_heads, (int)hd, s->nthreads);
    s->scores = sc_malloc(att_ws * sizeof(float));
    s->xq = sc_malloc(INT8_MAX_T * inmax), s->xs = sc_malloc(INT8_MAX_T * inmax * 4);
    return s;
}

static void scratch_free(cpu_scratch *s) {
    free(s->x), free(s->xn), free(s->tmp), free(s->q), free(s->att), free(s->k), free(s->v);
    free(s->gate), free(s->up), free(s->rstd), free(s->deq), free(s->scores), free(s->xq), free(s->xs);
    free(s->lora_h);
    sc_pool_free(s->pool);
}

/* a dot product whose rounding depends only on n (fixed lanes, fixed reduction order) */
static float dot_fixed(const float *a, const float *b, int n) {
    int i = 0;
    float s = 0;
#ifdef __AVX2__
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc0 = _mm256_add_ps(acc0, acc1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    s = _mm_cvtss_f32(h);
#endif
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

typedef struct {
    const float *W, *x;
    float *y;
    int rows, cols, T;
    sc_split split; /* blocks of 16 rows */
} f32_small;

static void f32_matmul_small_part(void *arg, int t, int nt) {
    f32_small *a = arg;
    (void)nt;
    for (int b; (b = sc_split_next(&a->split, t)) >= 0;) {
        int r0 = b * 16, r1 = r0 + 16 < a->rows ? r0 + 16 : a->rows;
        for (int i = 0; i < a->T; i++)
            for (int r = r0; r < r1; r++)
                a->y[(size_t)i * a->rows + r] = dot_fixed(a->W + (size_t)r * a->cols, a->x + (size_t)i * a->cols, a->cols);
    }
}

/* FP32 y[T, rows] = x[T, cols] W^T for a few tokens, one fixed-order dot product per output: row t comes out the
 * same whatever T is, so verifying K drafted tokens in one pass gives the logits of K single steps bit for bit
 * (sgemm and sgemv round differently). Blocks of 16 weight rows stay in cache while every token passes; one run of
 * blocks per thread (sc_split), on the decode pool when held (threads.h), else OpenMP. */
static void f32_matmul_small(const float *W, int rows, int cols, const float *x, float *y, int T) {
    f32_small a = {.W = W, .x = x, .y = y, .rows = rows, .cols = cols, .T = T};
    int nt = sc_par_threads();
    sc_split_init(&a.split, (rows + 15) / 16, nt);
    sc_par(f32_matmul_small_part, &a);
}

/* y[T, rows] = x[T, cols] W^T */
static void linear(cpu_scratch *s, const sc_wmat *W, const float *x, float *y, int T) {
    if (W->f) {
        if (T <= F32_SMALL_T) f32_matmul_small(W->f, W->rows, W->cols, x, y, T);
        else matmul_forward(y, x, W->f, T, W->cols, W->rows);
        return;
    }
    if (T <= INT8_MAX_T) {
        for (int t = 0; t < T; t++)
            act_quant(x + (size_t)t * W->cols, W->cols, W->q.group, s->xq + (size_t)t * W->cols,
                      s->xs + (size_t)t * W->q.ngroups);
        qmat_matmul(&W->q, s->xq, s->xs, y, T);
        return;
    }
    if (!s->deq) s->deq = sc_malloc(s->deq_floats * sizeof(float));
    qmat_dequant_rows(&W->q, 0, W->rows, s->deq);
    matmul_forward(y, x, s->deq, T, W->cols, W->rows);
}

/* y[i] = x W[i]^T for matrices that share the input x (q, k, v; gate, up). A decode step on INT8 weights
 * quantizes x once and runs all of them in one parallel region (quant.h); anything else goes matrix by matrix. */
static void linear_shared(cpu_scratch *s, const sc_wmat *const *W, int n, const float *x, float *const *y, int T) {
    int same = T == 1 && n <= QMULTI_MAX;
    for (int i = 0; i < n && same; i++)
        same = !W[i]->f && W[i]->q.cols == W[0]->q.cols && W[i]->q.group == W[0]->q.group;
    if (!same) {
        for (int i = 0; i < n; i++) linear(s, W[i], x, y[i], T);
        return;
    }
    const sc_qmat *m[QMULTI_MAX];
    for (int i = 0; i < n; i++) m[i] = &W[i]->q;
    act_quant(x, m[0]->cols, m[0]->group, s->xq, s->xs);
    qmat_matvec_multi(m, n, s->xq, s->xs, y);
}

/* y[T, out] += the active adapters' side paths of target t (LORA_Q...) in layer l, x [T, in] its input */
static void lora_add(const sc_engine *e, cpu_scratch *s, int l, int t, const float *x, float *y, int T) {
    for (int i = 0; i < e->n_lora; i++) {
        const sc_lora *ad = e->lora[i];
        float scale = e->lora_on.scale[i];
        if (scale == 0.0f || !(ad->targets >> t & 1)) continue;
        lora_apply_forward(y, ad->out[t], x, lora_a(ad, l, t), lora_b(ad, l, t), scale * lora_scaling(ad), T,
                           ad->out[t], ad->in[t], ad->rank, s->lora_h);
    }
}

static int cpu_forward_chunk(sc_engine *e, sc_kv *kv, const int32_t *ids, int T, float *logits, float *all_logits) {
    const sc_weights *w = e->w;
    const sc_config *c = e->cfg;
    cpu_scratch *s = e->impl;
    int C = c->hidden_size, F = c->intermediate_size, hd = c->head_dim, nh = c->num_attention_heads;
    int nkvh = c->num_key_value_heads, pos0 = kv->n;
    float eps = (float)c->rms_norm_eps;
    float inv_freq[hd / 2 > 0 ? hd / 2 : 1];
    config_rope_inv_freq(c, inv_freq);
    for (int t = 0; t < T; t++) wmat_rows_f32(&w->embed, ids[t], ids[t] + 1, s->x + (size_t)t * C);
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const sc_wlayer *y = &w->layers[l];
        rmsnorm_forward(s->x, s->xn, s->rstd, s->x, NULL, y->attn_norm, T, C, eps);
        linear_shared(s, (const sc_wmat *[]){&y->wq, &y->wk, &y->wv}, 3, s->xn, (float *[]){s->q, s->k, s->v}, T);
        lora_add(e, s, l, LORA_Q, s->xn, s->q, T);
        lora_add(e, s, l, LORA_K, s->xn, s->k, T);
        lora_add(e, s, l, LORA_V, s->xn, s->v, T);
        bias_forward(s->q, y->bq, T, y->wq.rows);
        bias_forward(s->k, y->bk, T, y->wk.rows);
        bias_forward(s->v, y->bv, T, y->wv.rows);
        rope_forward_freqs(s->q, T, nh, hd, pos0, inv_freq);
        rope_forward_freqs(s->k, T, nkvh, hd, pos0, inv_freq);
        kv_store(kv, l, pos0, T, s->k, s->v);
        kv_attention(kv, l, s->att, s->q, T, pos0, nh, s->scores);
        linear(s, &y->wo, s->att, s->tmp, T);
        lora_add(e, s, l, LORA_O, s->att, s->tmp, T);
        bias_forward(s->tmp, y->bo, T, C);
        rmsnorm_forward(s->x, s->xn, s->rstd, s->x, s->tmp, y->mlp_norm, T, C, eps);
        linear_shared(s, (const sc_wmat *[]){&y->wgate, &y->wup}, 2, s->xn, (float *[]){s->gate, s->up}, T);
        lora_add(e, s, l, LORA_GATE, s->xn, s->gate, T);
        lora_add(e, s, l, LORA_UP, s->xn, s->up, T);
        bias_forward(s->gate, y->bgate, T, F);
        bias_forward(s->up, y->bup, T, F);
        swiglu_forward(s->gate, s->gate, s->up, (int64_t)T * F);
        linear(s, &y->wdown, s->gate, s->tmp, T);
        lora_add(e, s, l, LORA_DOWN, s->gate, s->tmp, T);
        bias_forward(s->tmp, y->bdown, T, C);
        for (size_t i = 0; i < (size_t)T * C; i++) s->x[i] += s->tmp[i];
    }
    kv->n = pos0 + T;
    if (all_logits) {
        rmsnorm_forward(s->x, s->xn, s->rstd, s->x, NULL, w->final_norm, T, C, eps);
        /* up to F32_SMALL_T rows per call: the lm_head is read once for a verification pass, and each row's
         * logits stay those of a single-token call (both small-batch paths are batch-invariant) */
        for (int t = 0; t < T; t += F32_SMALL_T)
            linear(s, &w->lm_head, s->xn + (size_t)t * C, all_logits + (size_t)t * c->vocab_size,
                   T - t < F32_SMALL_T ? T - t : F32_SMALL_T);
        if (logits) memcpy(logits, all_logits + (size_t)(T - 1) * c->vocab_size, (size_t)c->vocab_size * 4);
    } else if (logits) {
        const float *last = s->x + (size_t)(T - 1) * C;
        rmsnorm_forward(s->tmp, s->xn, s->rstd, last, NULL, w->final_norm, 1, C, eps);
        linear(s, &w->lm_head, s->xn, logits, 1);
    }
    return 0;
}

static int engine_cpu_lora_active(const sc_engine *e) {
    for (int i = 0; i < e->n_lora; i++)
        if (e->lora_on.scale[i] != 0.0f) return 1;
    return 0;
}

static int cpu_forward(sc_engine *e, sc_kv *kv, const int32_t *ids, int n, float *logits, float *all_logits) {
    if (n <= 0) return sc_fail("forward: no tokens");
    if (kv->n + n > kv->n_ctx)
        return sc_fail("context full: %d cached + %d new tokens > %d positions", kv->n, n, kv->n_ctx);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= e->cfg->vocab_size)
            return sc_fail("token id %d is outside the vocabulary (%d)", ids[i], e->cfg->vocab_size);
    cpu_scratch *s = e->impl;
    omp_set_num_threads(s->nthreads);
    /* A decode step runs its parallel regions on the pool, whose workers spin from one to the next. Not with
     * LoRA: lora_apply's regions are OpenMP ones, and an OpenMP worker would share a core with a spinning one. */
    int pooled = n == 1 && !engine_cpu_lora_active(e) && sc_pool_hold(s->pool, 1);
    int rc = 0;
    for (int i = 0; i < n && !rc; i += CHUNK) {
        int T = n - i < CHUNK ? n - i : CHUNK, last = i + T == n;
        float *al = all_logits ? all_logits + (size_t)i * e->cfg->vocab_size : NULL;
        rc = cpu_forward_chunk(e, kv, ids + i, T, last ? logits : NULL, al);
    }
    if (pooled) sc_pool_hold(s->pool, 0);
    return rc;
}

static void cpu_close(sc_engine *e) {
    if (e->impl) scratch_free(e->impl);
    free(e->impl);
}

static const sc_engine_ops cpu_ops = {"cpu", cpu_forward, cpu_close, NULL};

int engine_cpu_open(sc_engine *e, int threads) {
    e->ops = &cpu_ops;
    e->precision = e->w->quantized ? "int8" : "fp32";
    e->weight_bytes = e->w->weight_bytes;
    cpu_scratch *s = sc_calloc(1, sizeof *s);
    s->nthreads = threads > 0 ? threads : omp_get_max_threads();
    scratch_alloc(e->cfg, e->w, s);
    int rmax = 0;
    for (int i = 0; i < e->n_lora; i++) {
        const sc_lora *ad = e->lora[i];
        if (ad->rank > rmax) rmax = ad->rank;
        e->lora_bytes += ad->nparams * (int64_t)sizeof(float);
    }
    s->lora_h = rmax ? sc_malloc((size_t)CHUNK * rmax * sizeof(float)) : NULL;
    /* spinning workers past the cores this process may use would only take turns with the ones that work (the
     * results do not depend on the thread count); -t 1 or one CPU: no pool, decode runs on the caller alone */
    int cpus = sc_cpus_available();
    s->pool = sc_pool_create(s->nthreads < cpus ? s->nthreads : cpus);
    e->impl = s;
    return 0;
}
