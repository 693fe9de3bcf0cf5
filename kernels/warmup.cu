// warmup.cu — one launch of every kernel on tiny zero-filled inputs, so that with lazy module loading (the
// default since CUDA 11.7/12.2) every kernel the model will run is loaded before host/device_probe.c reads the free
// memory: what the context, cuBLAS and the loaded kernels take is then measured, not guessed. Results are
// discarded; the attention kernels are instantiated for the model's head_dim on the path kn_tensor_cores() picks,
// and every GEMM candidate of gemm.cu runs once (forced, so nothing is tuned or cached for these shapes).
#include "kernels/common.cuh"

namespace {
struct carve {
    char *base;
    size_t used, cap;
    template <class T> T *take(size_t n) {
        size_t start = (used + 255) / 256 * 256;
        used = start + sizeof(T) * (n ? n : 1);
        if (used > cap) {
            fprintf(stderr, "kn_warmup: scratch of %zu bytes is too small\n", cap);
            exit(1);
        }
        return (T *)(base + start);
    }
};
}  // namespace

extern "C" size_t kn_warmup_scratch_bytes(void) { return (size_t)8 << 20; }

extern "C" void kn_warmup(kn_blas *blas, int hd, void *scratch, cudaStream_t s) {
    const int T = 4, C = hd, F = 64, V = 64, QKV = 3 * hd, KMAX = 16, K = 1;
    const size_t WR = (size_t)(V > C ? V : C); // rows of W: the classifier's V, the [C, C] projection's C
    carve c = {(char *)scratch, 0, kn_warmup_scratch_bytes()};
    KN_CHECK(cudaMemsetAsync(scratch, 0, c.cap, s));
    kn_half *x = c.take<kn_half>(T * C), *y = c.take<kn_half>(T * C), *dx = c.take<kn_half>(T * C);
    kn_half *W = c.take<kn_half>(WR * C), *qkv = c.take<kn_half>(T * QKV), *dqkv = c.take<kn_half>(T * QKV);
    kn_half *gu = c.take<kn_half>(T * 2 * F), *act = c.take<kn_half>(T * F), *dgu = c.take<kn_half>(T * 2 * F);
    kn_half *kvc = c.take<kn_half>(2 * KMAX * C), *kdl = c.take<kn_half>(T * K), *sc = c.take<kn_half>(V);
    float *f = c.take<float>(WR * C), *rstd = c.take<float>(T), *lse = c.take<float>(T), *inv = c.take<float>(hd);
    float *losses = c.take<float>(T), *m = c.take<float>(64), *v = c.take<float>(64), *xs = c.take<float>(T * C);
    int32_t *ids = c.take<int32_t>(T * K), *plan = c.take<int32_t>(kn_embedding_plan_ints(T));
    int *flag = c.take<int>(1);
    double *dsum = c.take<double>(1);
    int8_t *q8 = c.take<int8_t>((size_t)V * C), *xq = c.take<int8_t>(T * C);
    kn_kv_step *st = c.take<kn_kv_step>(1);
    size_t wsb = kn_classifier_workspace(T, V);
    wsb = wsb > kn_rmsnorm_backward_workspace(T, C) ? wsb : kn_rmsnorm_backward_workspace(T, C);
    wsb = wsb > kn_attention_backward_workspace(T, 1) ? wsb : kn_attention_backward_workspace(T, 1);
    wsb = wsb > kn_decode_attention_workspace(1, 1, 128) ? wsb : kn_decode_attention_workspace(1, 1, 128);
    wsb = wsb > kn_sumsq_workspace(64) ? wsb : kn_sumsq_workspace(64);
    void *ws = c.take<char>(wsb);

    // every GEMM candidate once, forced: a warm-up must not tune (and cache) its tiny shapes; the classifier and KD
    // GEMMs below run on the last one forced
    const kn_gemm_algo algos[3] = {KN_GEMM_SGEMM, KN_GEMM_SIMT, KN_GEMM_CUBLAS};
    for (int i = 0; i < 3; i++) {
        kn_blas_force(blas, algos[i]);
        kn_matmul_forward(blas, y, x, W, T, C, C);
        kn_matmul_backward(blas, dx, 0, f, 1.0f, y, x, W, T, C, C);
    }
    kn_bias_forward(y, x, T, C, s);
    kn_bias_backward(f, 1.0f, y, T, C, s);
    kn_embedding_forward(y, ids, W, T, C, s);
    int32_t hid[T] = {0, 0, 0, 0}, hplan[64];
    int nids = kn_embedding_plan(hplan, hid, T, V);
    KN_CHECK(cudaMemcpyAsync(plan, hplan, sizeof(int32_t) * kn_embedding_plan_ints(T), cudaMemcpyHostToDevice, s));
    kn_embedding_backward(f, 1.0f, y, plan, nids, T, C, s);
    kn_rmsnorm_forward(y, x, rstd, y, dx, W, T, C, 1e-5f, s);
    kn_rmsnorm_backward(dx, f, 1.0f, x, dx, y, rstd, W, T, C, ws, s);
    kn_rope_forward(qkv, inv, T, 2, hd, QKV, 0, NULL, s);
    kn_rope_backward(dqkv, inv, T, 2, hd, QKV, 0, NULL, s);
    if (kn_attention_check(hd, 1, 1, QKV, QKV) == 0) {
        kn_attention_forward(y, lse, qkv, qkv + hd, qkv + 2 * hd, T, 1, 1, hd, QKV, QKV, s);
        kn_attention_backward(dqkv, dqkv + hd, dqkv + 2 * hd, dx, qkv, qkv + hd, qkv + 2 * hd, y, lse, T, 1, 1, hd,
                              QKV, QKV, ws, s);
    }
    kn_swiglu_forward(act, gu, gu + F, T, F, 2 * F, s);
    kn_swiglu_backward(dgu, dgu + F, act, gu, gu + F, T, F, 2 * F, s);
    kn_classifier_forward_backward(blas, losses, NULL, dx, f, 1.0f, x, W, ids, T, C, V, 1.0f, T, ws, s);
    kn_kd_classifier_forward_backward(blas, losses, NULL, dx, f, 1.0f, x, W, ids, ids, kdl, lse, K, 0.5f, 1.0f, 0, T,
                                      C, V, 1.0f, T, ws, s);
    kn_f32_to_f16(y, f, T * C, s);
    kn_f16_to_f32(f, y, T * C, s);
    kn_unscale(f, 64, 1.0f, flag, s);
    kn_sumsq(dsum, f, 64, ws, s);
    kn_adamw_update(f, f + 64, m, v, y, 64, 1.0f, 0.1f, 1e-3f, 0.9f, 0.95f, 1e-8f, 1, s);
    kn_f16_gemv(y, NULL, x, W, 1, C, C, s);
    kn_f16_gemv(NULL, losses, x, W, 1, 1, C, s);
    if (kn_int8_check(C, C) == 0) {
        kn_act_quant(xq, xs, x, 1, C, C, s);
        kn_int8_gemv(y, NULL, xq, xs, q8, sc, 1, C, C, C, s);
        kn_int8_gemv(NULL, losses, xq, xs, q8, sc, 1, 1, C, C, s);
        kn_int8_dequant(dx, q8, sc, 1, C, C, s);
        kn_int8_embedding(y, ids, q8, sc, 1, C, C, s);
    }
    kn_kv_step hst = {0, KMAX, kvc, kvc + KMAX * C};
    KN_CHECK(cudaMemcpyAsync(st, &hst, sizeof hst, cudaMemcpyHostToDevice, s));
    if (kn_decode_attention_check(hd, KMAX) == 0) {
        kn_rope_kv_store(qkv, st, inv, 0, 1, 1, 1, hd, KN_KV_F16, 1, s);
        kn_decode_attention(y, qkv, st, 0, 1, 1, 1, hd, KMAX, KN_KV_F16, 1, ws, s);
    }
    // the quantized caches' store and attention (q8, q4: data then scales in kvc, blocks of 8)
    kn_kv_step hq[2];
    for (int i = 0; i < 2 && kn_decode_attention_check(hd, KMAX) == 0; i++) {
        hq[i] = kn_kv_step{0, KMAX, kvc, kvc + KMAX * C / 2, kvc + KMAX * C, kvc + KMAX * C + KMAX * C / 8};
        int kt = i ? KN_KV_Q4 : KN_KV_Q8;
        KN_CHECK(cudaMemcpyAsync(st, &hq[i], sizeof hq[i], cudaMemcpyHostToDevice, s));
        kn_rope_kv_store(qkv, st, inv, 0, 1, 1, 1, hd, kt, 8, s);
        kn_decode_attention(y, qkv, st, 0, 1, 1, 1, hd, KMAX, kt, 8, ws, s);
    }
    KN_CHECK(cudaStreamSynchronize(s));  // hst, hq and hplan are on this stack
}
