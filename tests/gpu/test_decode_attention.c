/* test_decode_attention.c — kernels/decode_attention.cu (split-K flash-decoding) against its CPU twin
 * decode_attention (host/cpu/decode_attention.c) over an FP16 cache (layer 1 of 2, so the layer offset counts):
 * head_dim 64/72/80/96/128, GQA ratios 1..16 (groups above 8 heads take several blocks), 1..20 new rows (rows above 8 never split), contexts from 1 position to past one split and past
 * the old 12,032-position shared-memory cap; split counts varied through the SM count (SC_EMU_SMS on the
 * emulator). Then one captured CUDA graph replayed at other positions and for another cache, as the engine does.
 * Tolerance 4e-3 relative L2: the FP16 rounding of the output plus a different summation order. */
#include "tests/gpu/gpu_test.h"
#include "host/cpu/ops.h"

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
    kn_decode_attention(out, qkv, st, l, T, nh, nkv, hd, n_ctx, ws, 0);
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
    kn_decode_attention(out, qkv, st, 0, 1, nh, nkv, hd, n_ctx, ws, s);
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
    if (!gt_quick()) {
        att_case(&r, 72, 16, 4, 1, 4095, 4096);
        att_case(&r, 128, 32, 8, 4, 30000, 32768);
    }
    return tu_finish("test_decode_attention");
}
