/* test_infer_spec.c — the CUDA engine's part of speculative decoding (infer/engine.h engine_forward_all,
 * engine_kv_rollback): up to engine_verify_max tokens verified in one pass give the logits of single decode steps
 * (graphs on) bit for bit, FP16 and INT8; a cache rolled back after rejected drafts continues with the bits of one
 * that never held them; a longer batch (the cuBLAS prefill path) rolled back and rerun gives its own bits again and
 * stays close to the single steps. Random tiny model, as test_infer_engine. One device plan for a model and its draft
 * (engine_cuda_plan, sc_engine_opts.reserve_bytes): a 304m INT8 model with a mini draft fits a 2 GiB card as the
 * model alone plus the draft's arena; on the device the two engines take exactly their planned arenas, and a pair
 * that does not fit is refused before anything is allocated. */
#include "host/device_probe.h"
#include "host/engine.h"
#include "infer/quantize.h"
#include "host/error.h"
#include "tests/gpu/gpu_test.h"
#include "tests/model_dir.h"
#include "host/model.h"

#include <cuda_runtime_api.h>
#include <string.h>
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

/* 304m INT8 (per row) with a `mini` INT8 draft, 4096 positions, on a 2 GiB card: arithmetic, the numbers of the
 * --plan table (infer/spec_plan.c) */
static void plan_304m_with_draft(void) {
    sc_config big, mini;
    config_preset(&big, "304m"), config_preset(&mini, "mini");
    mini.vocab_size = big.vocab_size; /* a draft shares the model's tokenizer */
    sc_engine_plan t, d;
    engine_cuda_plan(&big, 1, 0, 4096, 1, 0, 0, NULL, 0, &t);
    engine_cuda_plan(&mini, 1, 0, 4096, 1, 0, 0, NULL, 0, &d);
    double mib = 1048576.0, card = (2ll << 30) - DEVICE_CONTEXT_ESTIMATE - DEVICE_RESERVE;
    printf("plan: 304m int8 arena %.1f MiB (weights %.1f, KV %.1f, scratch %.1f) + mini draft %.1f MiB (weights %.1f, "
           "KV %.1f, scratch %.1f) = %.1f MiB of %.1f MiB (2 GiB less the context and the reserve)\n",
           t.total / mib, t.weights / mib, t.kv / mib, t.scratch / mib, d.total / mib, d.weights / mib, d.kv / mib,
           d.scratch / mib, (t.total + d.total) / mib, card / mib);
    tu_check("plan rows add up (model and draft)",
             t.weights + t.kv + t.scratch == t.total && d.weights + d.kv + d.scratch == d.total ? 0.0 : 1.0, 0.0);
    tu_check("304m int8 + mini draft arenas fit a 2 GiB card", (t.total + d.total) <= card ? 0.0 : 1.0, 0.0);
    tu_check("the plan's total is the one engine_cuda_plan_bytes gives", t.total == engine_cuda_plan_bytes(&big, 1, 0, 4096, 1, 0) ? 0.0 : 1.0, 0.0);
}

/* the model (reserving the draft's arena) and the draft on the device: each takes its plan, together their sum */
static void plan_on_device(const sc_weights *w8) {
    sc_engine_plan pl;
    engine_cuda_plan(&w8->cfg, 1, w8->group_size, CTX, 1, 0, 0, NULL, 0, &pl);
    size_t free0, total;
    sc_engine e, d;
    sc_engine_opts o = {.device = "cuda", .precision = "int8", .n_ctx = CTX, .n_seqs = 1, .reserve_bytes = pl.total};
    if (engine_open(&e, w8, &o)) printf("engine_open (model): %s\n", sc_error()), exit(1);
    int64_t after_model = engine_cuda_measured_bytes(&e);
    sc_engine_opts od = o;
    od.reserve_bytes = 0;
    if (engine_open(&d, w8, &od)) printf("engine_open (draft): %s\n", sc_error()), exit(1);
    int64_t both = engine_cuda_measured_bytes(&e);
    printf("device: model arena %lld, draft arena %lld bytes (plan %lld each); measured since the model opened: %lld "
           "after it, %lld after both\n", (long long)e.device_bytes, (long long)d.device_bytes, (long long)pl.total,
           (long long)after_model, (long long)both);
    tu_check("model arena == its plan", e.device_bytes == pl.total ? 0.0 : 1.0, 0.0);
    tu_check("draft arena == its plan", d.device_bytes == pl.total ? 0.0 : 1.0, 0.0);
    tu_check("the draft adds exactly its arena on the device", both - after_model == d.device_bytes ? 0.0 : 1.0, 0.0);
    engine_close(&d);
    engine_close(&e);
    /* a draft bigger than what the model leaves: refused, in one line, before the model's arena exists */
    cudaMemGetInfo(&free0, &total);
    o.reserve_bytes = (int64_t)free0;
    int rc = engine_open(&e, w8, &o);
    size_t free1;
    cudaMemGetInfo(&free1, &total);
    printf("refusal: %s\n", rc ? sc_error() : "(opened)");
    tu_check("a model + draft that do not fit are refused", rc != 0 && strstr(sc_error(), "draft") ? 0.0 : 1.0, 0.0);
    tu_check("nothing is left allocated by the refusal", free1 == free0 ? 0.0 : 1.0, 0.0);
    if (!rc) engine_close(&e);
}

int main(void) {
    gt_require_device("test_infer_spec");
    sc_model m;
    md_tiny(&m, CTX, 4321, 0.08f);
    sc_rng r;
    rng_seed(&r, 17);
    gt_model_random_norms(&m, &r);
    int V = m.cfg.vocab_size;
    int32_t ids[P + K], wrong[4];
    for (int i = 0; i < P + K; i++) ids[i] = (int32_t)rng_below(&r, (uint64_t)V);
    for (int i = 0; i < 4; i++) wrong[i] = (int32_t)rng_below(&r, (uint64_t)V);
    char dir[] = "/tmp/sc_test_cuda_spec.XXXXXX";
    sc_weights w32, w8;
    md_twins(&m, dir, &w32, &w8);
    spec_case(&w32, "fp16", ids, wrong);
    spec_case(&w8, "int8", ids, wrong);
    plan_304m_with_draft();
    plan_on_device(&w8);
    weights_free(&w32), weights_free(&w8);
    model_free(&m);
    md_remove(dir);
    return tu_finish("test_infer_spec");
}
