/* test_infer_spec.c — the CUDA engine's part of speculative decoding (infer/engine.h engine_forward_all,
 * engine_kv_rollback): up to engine_verify_max tokens verified in one pass give the logits of single decode steps
 * (graphs on) bit for bit, FP16 and INT8; a cache rolled back after rejected drafts continues with the bits of one
 * that never held them; a longer batch (the cuBLAS prefill path) rolled back and rerun gives its own bits again and
 * stays close to the single steps. Random tiny model, as test_infer_engine. */
#include "host/engine.h"
#include "infer/quantize.h"
#include "host/error.h"
#include "tests/gpu/gpu_test.h"
#include "host/model.h"

#include <unistd.h>

enum { P = 20, K = 12, CTX = 64 };

static void fwd_all(sc_engine *e, sc_kv *kv, const int32_t *ids, int n, float *all) {
    if (engine_forward_all(e, kv, ids, n, all)) printf("forward: %s\n", sc_error()), exit(1);
}

static void rollback(sc_kv *kv, int n) {
    if (engine_kv_rollback(kv, n)) printf("rollback: %s\n", sc_error()), exit(1);
}

static double rel_l2(const float *a, const float *b, size_t n) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) d += (double)(a[i] - b[i]) * (a[i] - b[i]), s += (double)b[i] * b[i];
    return sqrt(d / (s + 1e-30));
}

static void spec_case(const sc_weights *w, const char *prec, const int32_t *ids, const int32_t *wrong) {
    sc_engine e;
    sc_engine_opts o = {.device = "cuda", .precision = prec, .n_ctx = CTX, .n_seqs = 1};
    if (engine_open(&e, w, &o)) printf("engine_open: %s\n", sc_error()), exit(1);
    int V = w->cfg.vocab_size, vmax = engine_verify_max(&e);
    char name[160];
    tu_check("cuda verify max = the GEMV rows (8)", vmax == 8 ? 0.0 : 1.0, 0.0);
    float *step = TU_NEW(float, (size_t)K * V), *got = TU_NEW(float, (size_t)K * V);
    sc_kv kv;
    engine_kv_create(&e, &kv, CTX);
    if (engine_forward(&e, &kv, ids, P, NULL)) printf("prefill: %s\n", sc_error()), exit(1);
    for (int i = 0; i < K; i++)
        if (engine_forward(&e, &kv, ids + P + i, 1, step + (size_t)i * V)) printf("step: %s\n", sc_error()), exit(1);
    /* vmax tokens in one pass */
    rollback(&kv, P);
    fwd_all(&e, &kv, ids + P, vmax, got);
    snprintf(name, sizeof name, "%s: %d tokens verified in one pass == single steps (bits)", prec, vmax);
    tu_check(name, gt_bitdiff(got, step, sizeof(float) * (size_t)vmax * V), 0.0);
    /* 3 accepted + 4 rejected drafts, rolled back to the accepted ones, then the rest one verify at a time */
    rollback(&kv, P);
    int32_t mix[7];
    memcpy(mix, ids + P, 3 * sizeof(int32_t));
    memcpy(mix + 3, wrong, 4 * sizeof(int32_t));
    fwd_all(&e, &kv, mix, 7, got);
    snprintf(name, sizeof name, "%s: the accepted prefix of a rejected draft == single steps (bits)", prec);
    tu_check(name, gt_bitdiff(got, step, sizeof(float) * 3 * V), 0.0);
    rollback(&kv, P + 3);
    fwd_all(&e, &kv, ids + P + 3, 5, got + (size_t)3 * V);
    fwd_all(&e, &kv, ids + P + 8, K - 8, got + (size_t)8 * V);
    snprintf(name, sizeof name, "%s: after a rollback == a cache that never held the rejected tokens (bits)", prec);
    tu_check(name, gt_bitdiff(got, step, sizeof(float) * (size_t)K * V), 0.0);
    /* more than vmax: the prefill path (cuBLAS); close to the steps, and a rerun after rollback repeats its bits */
    rollback(&kv, P);
    float *big = TU_NEW(float, (size_t)K * V);
    fwd_all(&e, &kv, ids + P, K, big);
    rollback(&kv, P);
    fwd_all(&e, &kv, ids + P, K, got);
    snprintf(name, sizeof name, "%s: %d-token verify (prefill path) rerun after rollback (bits)", prec, K);
    tu_check(name, gt_bitdiff(got, big, sizeof(float) * (size_t)K * V), 0.0);
    double d = rel_l2(big, step, (size_t)K * V);
    snprintf(name, sizeof name, "%s: %d-token verify (prefill path) vs single steps, rel. L2", prec, K);
    tu_check(name, d, strcmp(prec, "int8") ? 2e-3 : 6e-2);
    snprintf(name, sizeof name, "%s: rollback beyond the cache is refused", prec);
    tu_check(name, engine_kv_rollback(&kv, kv.n + 1) == 0 ? 1.0 : 0.0, 0.0);
    free(big), free(step), free(got);
    kv_free(&kv);
    engine_close(&e);
}

int main(void) {
    gt_require_device("test_infer_spec");
    sc_config cfg;
    config_preset(&cfg, "tiny");
    cfg.max_position_embeddings = CTX;
    sc_model m;
    model_create(&m, &cfg);
    model_init_weights(&m, 4321, 0.08f);
    sc_rng r;
    rng_seed(&r, 17);
    gt_model_random_norms(&m, &r);
    int V = cfg.vocab_size;
    int32_t ids[P + K], wrong[4];
    for (int i = 0; i < P + K; i++) ids[i] = (int32_t)rng_below(&r, (uint64_t)V);
    for (int i = 0; i < 4; i++) wrong[i] = (int32_t)rng_below(&r, (uint64_t)V);
    char dir[] = "/tmp/sc_test_cuda_spec.XXXXXX", p32[4200], p8[4200];
    if (!mkdtemp(dir)) return 1;
    snprintf(p32, sizeof p32, "%s/fp32", dir);
    snprintf(p8, sizeof p8, "%s/int8", dir);
    if (model_save(&m, p32) || quantize_model(&m, p8, 0)) printf("writing the models: %s\n", sc_error()), exit(1);
    sc_weights w32, w8;
    if (weights_load(&w32, p32) || weights_load(&w8, p8)) printf("weights_load: %s\n", sc_error()), exit(1);
    spec_case(&w32, "fp16", ids, wrong);
    spec_case(&w8, "int8", ids, wrong);
    weights_free(&w32), weights_free(&w8);
    model_free(&m);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) printf("note: could not remove %s\n", dir);
    return tu_finish("test_infer_spec");
}
