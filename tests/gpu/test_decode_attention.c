/* test_decode_attention.c — kernels/decode_attention.cu (split-K flash-decoding) against its CPU twin
 * decode_attention (host/cpu/decode_attention.c) over an FP16 cache (layer 1 of 2, so the layer offset counts):
 * head_dim 64/72/80/96/128, GQA ratios 1..16 (groups above 8 heads take several blocks), 1..20 new rows (rows above 8 never split), contexts from 1 position to past one split and past
 * the old 12,032-position shared-memory cap; split counts varied through the SM count (SC_EMU_SMS on the
 * emulator). Then one captured CUDA graph replayed at other positions and for another cache, as the engine does.
 * Tolerance 4e-3 relative L2: the FP16 rounding of the output plus a different summation order.
 * Quantized caches (q8, q4): the store kernel's integers and scales against host/kv_cache.c kv_quant_block on the
 * same FP16 rows, and the attention over a cache quantized on the host against the twin on its dequantized values
 * (kv_dequant_row): head_dim 64/72/80/128 (blocks of 32/24/16/32), GQA, 1..12 rows, split or not. */
#include "tests/gpu/gpu_test.h"
#include "host/cpu/ops.h"
#include "host/kv_cache.h"

typedef struct {
    int n_ctx, nkv, hd;
    float *kf, *vf;  /* [L][n_ctx][nkv*hd], values rounded to FP16: what the twin reads */
    kn_half *k, *v;  /* the same values on the device */
} dcache;

static void dcache_make(dcache *c, sc_rng *r, int L, int n_ctx, int nkv, int hd) {
    int64_t n = (int64_t)L * n_ctx * nkv * hd;
    c->n_ctx = n_ctx, c->nkv = nkv, c->hd = hd;
    c->kf = gt_randn_half(r, n, 1.0), c->vf = gt_randn_half(r, n, 1.0);
    c->k = gt_up_half(c->kf, n), c->v = gt_up_half(c->vf, n);
}

static void dcache_free(dcache *c) {
    free(c->kf), free(c->vf);
    GT_FREE(c->k), GT_FREE(c->v);
}

/* out[T, nh*hd] on the CPU for q rows [T, nh*hd] at positions pos.. of layer l */
static float *cpu_ref(const dcache *c, int l, const float *q, int T, int pos, int nh) {
    float *out = TU_NEW(float, (int64_t)T * nh * c->hd);
    int64_t off = (int64_t)l * c->n_ctx * c->nkv * c->hd;
    decode_attention(out, q, c->kf + off, c->vf + off, T, pos, nh, c->nkv, c->hd);
    return out;
}

/* qkv [T, (nh + 2 nkv) hd] with random q (the k|v part is not read by the attention) and its q part alone */
static kn_half *make_qkv(sc_rng *r, int T, int nh, int nkv, int hd, float **q_out) {
    int ld = (nh + 2 * nkv) * hd;
    float *qkv = gt_randn_half(r, (int64_t)T * ld, 1.5), *q = TU_NEW(float, (int64_t)T * nh * hd);
    for (int t = 0; t < T; t++) memcpy(q + (int64_t)t * nh * hd, qkv + (int64_t)t * ld, sizeof(float) * nh * hd);
    kn_half *d = gt_up_half(qkv, (int64_t)T * ld);
    free(qkv);
    *q_out = q;
    return d;
}

static kn_kv_step *up_step(const dcache *c, int pos) {
    kn_kv_step h = {.pos = pos, .n_ctx = c->n_ctx, .k = c->k, .v = c->v};
    kn_kv_step *d = gt_alloc(sizeof h);
    GT_CHECK(cudaMemcpy(d, &h, sizeof h, cudaMemcpyHostToDevice));
    return d;
}

static void att_case(sc_rng *r, int hd, int nh, int nkv, int T, int pos, int n_ctx) {
    char name[160];
    const int L = 2, l = 1;
    if (kn_decode_attention_check(hd, n_ctx)) {
        snprintf(name, sizeof name, "decode attention hd=%d accepted (%s)", hd, kn_last_error());
        tu_check(name, 1.0, 0.0);
        return;
    }
    dcache c;
    dcache_make(&c, r, L, n_ctx, nkv, hd);
    float *q;
    kn_half *qkv = make_qkv(r, T, nh, nkv, hd, &q);
    float *ref = cpu_ref(&c, l, q, T, pos, nh);
    kn_kv_step *st = up_step(&c, pos);
    int64_t n = (int64_t)T * nh * hd;
    kn_half *out = gt_alloc(sizeof(kn_half) * (size_t)n);
    void *ws = gt_alloc(kn_decode_attention_workspace(T, nh, hd));
    kn_decode_attention(out, qkv, st, l, T, nh, nkv, hd, n_ctx, KN_KV_F16, 1, ws, 0);
    GT_CHECK(cudaDeviceSynchronize());
    float *got = TU_NEW(float, n);
    gt_down_half(got, out, n);
    snprintf(name, sizeof name, "decode attention hd=%d nh=%d nkv=%d T=%d pos=%d n_ctx=%d", hd, nh, nkv, T, pos, n_ctx);
    tu_check(name, gt_relerr(got, ref, n), 4e-3);
    GT_FREE(out), GT_FREE(ws), GT_FREE(st), GT_FREE(qkv);
    free(got), free(ref), free(q);
    dcache_free(&c);
}

/* One graph captured at position p0 over cache a, replayed after the step (in device memory) moved to other
 * positions and to cache b, as host/engine_cuda.c replays its decode graph. */
static void graph_case(sc_rng *r, int hd, int nh, int nkv, int n_ctx) {
    const int L = 1, pos[4] = {0, 70, n_ctx / 2, n_ctx - 1};
    dcache a, b;
    dcache_make(&a, r, L, n_ctx, nkv, hd);
    dcache_make(&b, r, L, n_ctx, nkv, hd);
    float *q;
    kn_half *qkv = make_qkv(r, 1, nh, nkv, hd, &q);
    kn_kv_step *st = up_step(&a, 5);
    kn_half *out = gt_alloc(sizeof(kn_half) * (size_t)nh * hd);
    void *ws = gt_alloc(kn_decode_attention_workspace(1, nh, hd));
    cudaStream_t s;
    GT_CHECK(cudaStreamCreate(&s));
    cudaGraph_t g;
    cudaGraphExec_t ge;
    GT_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    kn_decode_attention(out, qkv, st, 0, 1, nh, nkv, hd, n_ctx, KN_KV_F16, 1, ws, s);
    GT_CHECK(cudaStreamEndCapture(s, &g));
    GT_CHECK(cudaGraphInstantiate(&ge, g, 0));
    float *got = TU_NEW(float, (int64_t)nh * hd);
    for (int i = 0; i < 8; i++) {
        dcache *c = i % 2 ? &b : &a;
        kn_kv_step h = {.pos = pos[i / 2], .n_ctx = n_ctx, .k = c->k, .v = c->v};
        GT_CHECK(cudaMemcpyAsync(st, &h, sizeof h, cudaMemcpyHostToDevice, s));
        GT_CHECK(cudaGraphLaunch(ge, s));
        GT_CHECK(cudaStreamSynchronize(s));
        gt_down_half(got, out, (int64_t)nh * hd);
        float *ref = cpu_ref(c, 0, q, 1, h.pos, nh);
        char name[128];
        snprintf(name, sizeof name, "decode attention graph replay hd=%d cache %c pos=%d", hd, i % 2 ? 'b' : 'a',
                 h.pos);
        tu_check(name, gt_relerr(got, ref, (int64_t)nh * hd), 4e-3);
        free(ref);
    }
    GT_CHECK(cudaGraphExecDestroy(ge));
    GT_CHECK(cudaGraphDestroy(g));
    GT_CHECK(cudaStreamDestroy(s));
    GT_FREE(out), GT_FREE(ws), GT_FREE(st), GT_FREE(qkv);
    free(got), free(q);
    dcache_free(&a), dcache_free(&b);
}

/* a q8/q4 cache quantized on the host (kv_store of host/kv_cache.c), its dequantized values as the twin's FP32 k/v,
 * uploaded; the attention kernel against the twin */
static void qatt_case(sc_rng *r, int type, int hd, int nh, int nkv, int T, int pos, int n_ctx) {
    const int L = 2, l = 1;
    int64_t row = (int64_t)nkv * hd, n = (int64_t)L * n_ctx * row;
    sc_kv kv;
    kv_create(&kv, L, n_ctx, nkv, hd, type);
    float *kf = tu_randn(r, n, 1.0), *vf = tu_randn(r, n, 1.0);
    for (int li = 0; li < L; li++)
        kv_store(&kv, li, 0, n_ctx, kf + (int64_t)li * n_ctx * row, vf + (int64_t)li * n_ctx * row);
    kv_layer_f32(&kv, l, 0, n_ctx, kf), kv_layer_f32(&kv, l, 1, n_ctx, vf); /* layer l, dequantized */
    size_t db = kv_data_bytes(type, (size_t)n), sb = (size_t)n / kv.qb * 2;
    void *dk = gt_alloc(db), *dv = gt_alloc(db);
    kn_half *dks = gt_alloc(sb), *dvs = gt_alloc(sb);
    GT_CHECK(cudaMemcpy(dk, kv.k, db, cudaMemcpyHostToDevice));
    GT_CHECK(cudaMemcpy(dv, kv.v, db, cudaMemcpyHostToDevice));
    GT_CHECK(cudaMemcpy(dks, kv.ks, sb, cudaMemcpyHostToDevice));
    GT_CHECK(cudaMemcpy(dvs, kv.vs, sb, cudaMemcpyHostToDevice));
    float *q;
    kn_half *qkv = make_qkv(r, T, nh, nkv, hd, &q);
    float *ref = TU_NEW(float, (int64_t)T * nh * hd);
    decode_attention(ref, q, kf, vf, T, pos, nh, nkv, hd);
    kn_kv_step h = {.pos = pos, .n_ctx = n_ctx, .k = dk, .v = dv, .ks = dks, .vs = dvs};
    kn_kv_step *st = gt_alloc(sizeof h);
    GT_CHECK(cudaMemcpy(st, &h, sizeof h, cudaMemcpyHostToDevice));
    int64_t no = (int64_t)T * nh * hd;
    kn_half *out = gt_alloc(sizeof(kn_half) * (size_t)no);
    void *ws = gt_alloc(kn_decode_attention_workspace(T, nh, hd));
    kn_decode_attention(out, qkv, st, l, T, nh, nkv, hd, n_ctx, type, kv.qb, ws, 0);
    GT_CHECK(cudaDeviceSynchronize());
    float *got = TU_NEW(float, no);
    gt_down_half(got, out, no);
    char name[160];
    snprintf(name, sizeof name, "decode attention %s hd=%d nh=%d nkv=%d T=%d pos=%d n_ctx=%d vs twin on dequantized",
             kv_type_names[type], hd, nh, nkv, T, pos, n_ctx);
    tu_check(name, gt_relerr(got, ref, no), 4e-3);
    GT_FREE(dk), GT_FREE(dv), GT_FREE(dks), GT_FREE(dvs), GT_FREE(qkv), GT_FREE(st), GT_FREE(out), GT_FREE(ws);
    free(kf), free(vf), free(q), free(ref), free(got);
    kv_free(&kv);
}

/* the store kernel: T rows of k and v from qkv into a q8/q4 cache at pos (layer 1 of 2), against kv_store on the
 * same FP16 values: scales equal bit for bit, integers within one step (a product rounded otherwise), nothing else
 * of the cache touched */
static void qstore_case(sc_rng *r, int type, int hd, int nh, int nkv, int T, int pos, int n_ctx) {
    const int L = 2, l = 1;
    int ld = (nh + 2 * nkv) * hd;
    int64_t row = (int64_t)nkv * hd, n = (int64_t)L * n_ctx * row;
    float *qkv = gt_randn_half(r, (int64_t)T * ld, 2.0);
    float *k = TU_NEW(float, T * row), *v = TU_NEW(float, T * row);
    for (int t = 0; t < T; t++) {
        memcpy(k + t * row, qkv + (int64_t)t * ld + (int64_t)nh * hd, sizeof(float) * row);
        memcpy(v + t * row, qkv + (int64_t)t * ld + (int64_t)(nh + nkv) * hd, sizeof(float) * row);
    }
    sc_kv kv;
    kv_create(&kv, L, n_ctx, nkv, hd, type);
    size_t db = kv_data_bytes(type, (size_t)n), sb = (size_t)n / kv.qb * 2;
    memset(kv.k, 0x5a, db), memset(kv.v, 0x5a, db), memset(kv.ks, 0x5a, sb), memset(kv.vs, 0x5a, sb);
    void *dk = gt_alloc(db), *dv = gt_alloc(db);
    kn_half *dks = gt_alloc(sb), *dvs = gt_alloc(sb);
    GT_CHECK(cudaMemcpy(dk, kv.k, db, cudaMemcpyHostToDevice));
    GT_CHECK(cudaMemcpy(dv, kv.v, db, cudaMemcpyHostToDevice));
    GT_CHECK(cudaMemcpy(dks, kv.ks, sb, cudaMemcpyHostToDevice));
    GT_CHECK(cudaMemcpy(dvs, kv.vs, sb, cudaMemcpyHostToDevice));
    kv_store(&kv, l, pos, T, k, v);
    kn_half *dqkv = gt_up_half(qkv, (int64_t)T * ld);
    kn_kv_step h = {.pos = pos, .n_ctx = n_ctx, .k = dk, .v = dv, .ks = dks, .vs = dvs};
    kn_kv_step *st = gt_alloc(sizeof h);
    GT_CHECK(cudaMemcpy(st, &h, sizeof h, cudaMemcpyHostToDevice));
    kn_kv_quant_store(dqkv, st, l, T, nh, nkv, hd, type, kv.qb, 0);
    GT_CHECK(cudaDeviceSynchronize());
    uint8_t *gk = TU_NEW(uint8_t, db), *gv = TU_NEW(uint8_t, db);
    uint8_t *gks = TU_NEW(uint8_t, sb), *gvs = TU_NEW(uint8_t, sb);
    GT_CHECK(cudaMemcpy(gk, dk, db, cudaMemcpyDeviceToHost));
    GT_CHECK(cudaMemcpy(gv, dv, db, cudaMemcpyDeviceToHost));
    GT_CHECK(cudaMemcpy(gks, dks, sb, cudaMemcpyDeviceToHost));
    GT_CHECK(cudaMemcpy(gvs, dvs, sb, cudaMemcpyDeviceToHost));
    int scale_bad = memcmp(gks, kv.ks, sb) != 0 || memcmp(gvs, kv.vs, sb) != 0, maxd = 0;
    int64_t differ = 0;
    for (size_t i = 0; i < db; i++)
        for (int w = 0; w < 2; w++) {
            uint8_t a = (w ? gv : gk)[i], b = ((const uint8_t *)(w ? kv.v : kv.k))[i];
            int d = type == SC_KV_Q8 ? abs((int)(int8_t)a - (int)(int8_t)b)
                                     : abs((a & 15) - (b & 15)) > abs((a >> 4) - (b >> 4)) ? abs((a & 15) - (b & 15))
                                                                                           : abs((a >> 4) - (b >> 4));
            differ += d != 0;
            if (d > maxd) maxd = d;
        }
    char name[160];
    snprintf(name, sizeof name, "kv store %s hd=%d nkv=%d T=%d pos=%d: scales as kv_quant_block (bits)",
             kv_type_names[type], hd, nkv, T, pos);
    tu_check(name, scale_bad, 0.0);
    snprintf(name, sizeof name, "kv store %s hd=%d nkv=%d T=%d pos=%d: largest integer difference (%lld bytes differ)",
             kv_type_names[type], hd, nkv, T, pos, (long long)differ);
    tu_check(name, maxd, 1.0);
    GT_FREE(dk), GT_FREE(dv), GT_FREE(dks), GT_FREE(dvs), GT_FREE(dqkv), GT_FREE(st);
    free(qkv), free(k), free(v), free(gk), free(gv), free(gks), free(gvs);
    kv_free(&kv);
}

int main(void) {
    gt_require_device("test_decode_attention");
    sc_rng r;
    rng_seed(&r, 31);
    /* unsupported head dims are refused with a message, not run */
    tu_check("decode attention refuses hd=70", kn_decode_attention_check(70, 64) ? 0.0 : 1.0, 0.0);
    tu_check("decode attention refuses hd=256", kn_decode_attention_check(256, 64) ? 0.0 : 1.0, 0.0);
    /* 304m's shape (16 heads over 4 KV heads, head_dim 72) at lengths around the tile and split sizes */
    const int lens[] = {0, 1, 62, 63, 64, 65, 127, 128, 300, 1000};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) att_case(&r, 72, 16, 4, 1, lens[i], 1024);
    /* head dims and GQA ratios (1, 2, 8, 16: two blocks per KV head), several rows, split or not */
    att_case(&r, 64, 4, 2, 1, 200, 256);
    att_case(&r, 80, 2, 2, 3, 150, 512);
    att_case(&r, 96, 8, 1, 2, 333, 400);
    att_case(&r, 128, 16, 1, 1, 129, 160);
    att_case(&r, 72, 16, 4, 8, 90, 256);   /* the most rows that split */
    att_case(&r, 64, 4, 1, 20, 40, 128);   /* a prefill chunk: one split per row */
    att_case(&r, 64, 6, 3, 9, 0, 64);      /* from position 0 */
    att_case(&r, 64, 2, 2, 1, 0, 16);      /* the first token: its own value */
    att_case(&r, 64, 4, 2, 7, 0, 16);      /* a prefill chunk into an empty cache */
    att_case(&r, 128, 4, 1, 3, 9, 32);
    /* other SM counts: other split counts for the same shapes (only the emulator reads SC_EMU_SMS) */
    setenv("SC_EMU_SMS", "1", 1);
    att_case(&r, 72, 16, 4, 1, 700, 1024);
    setenv("SC_EMU_SMS", "132", 1);
    att_case(&r, 72, 16, 4, 1, 700, 1024);
    att_case(&r, 72, 16, 4, 2, 4000, 4096);
    unsetenv("SC_EMU_SMS");
    /* past the old 12,032-position cap on shared memory */
    att_case(&r, 64, 2, 1, 1, 13000, 13001);
    graph_case(&r, 72, 8, 2, 300);
    /* quantized caches */
    for (int type = SC_KV_Q8; type <= SC_KV_Q4; type++) {
        qstore_case(&r, type, 64, 4, 2, 3, 5, 16);
        qstore_case(&r, type, 72, 16, 4, 1, 15, 16);
        qstore_case(&r, type, 80, 2, 2, 12, 0, 16);
        qatt_case(&r, type, 72, 16, 4, 1, 700, 1024); /* 304m's heads, split */
        qatt_case(&r, type, 64, 4, 2, 3, 200, 256);
        qatt_case(&r, type, 80, 2, 2, 12, 40, 64);    /* a prefill chunk: one split per row */
        qatt_case(&r, type, 128, 16, 16, 1, 300, 512); /* deepseek-coder-1.3b's heads */
        qatt_case(&r, type, 64, 2, 2, 1, 0, 16);      /* the first token */
    }
    if (!gt_quick()) {
        att_case(&r, 72, 16, 4, 1, 4095, 4096);
        att_case(&r, 128, 32, 8, 4, 30000, 32768);
    }
    return tu_finish("test_decode_attention");
}
