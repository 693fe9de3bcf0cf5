/* test_infer_spec.c — the engine API that speculative decoding stands on (CPU engine): K tokens verified in one
 * batched pass give the logits of K single steps, bit for bit, and a KV cache rolled back after rejected drafts
 * continues exactly as one that never saw them. Random tiny model, FP32 and INT8 (per row, group 32). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/error.h"
#include "host/rng.h"
#include "infer/commands_infer.h"
#include "infer/engine.h"
#include "tests/check.h"

enum { P = 21, K = 11 };

static int same_bits(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

static float max_abs_diff(const float *a, const float *b, size_t n) {
    float d = 0;
    for (size_t i = 0; i < n; i++) d = fmaxf(d, fabsf(a[i] - b[i]));
    return d;
}

static void check_engine(const sc_weights *w, int kv_f16, const char *what) {
    sc_engine e;
    sc_engine_opts o = {.device = "cpu", .kv_f16 = kv_f16};
    if (engine_open(&e, w, &o)) printf("engine_open: %s\n", sc_error()), exit(1);
    int V = w->cfg.vocab_size;
    int32_t ids[P + K], wrong[K];
    sc_rng r;
    rng_seed(&r, 11);
    for (int i = 0; i < P + K; i++) ids[i] = (int32_t)rng_below(&r, (uint64_t)V);
    for (int i = 0; i < K; i++) wrong[i] = (int32_t)rng_below(&r, (uint64_t)V);
    float *step = malloc((size_t)K * V * 4), *batch = malloc((size_t)K * V * 4), *again = malloc((size_t)K * V * 4);
    sc_kv kv;
    engine_kv_create(&e, &kv, 64);
    /* reference: the prompt, then K single decode steps */
    CHECK(engine_forward(&e, &kv, ids, P, NULL) == 0);
    for (int i = 0; i < K; i++) CHECK(engine_forward(&e, &kv, ids + P + i, 1, step + (size_t)i * V) == 0);
    /* the same K tokens in one verification pass */
    CHECK(engine_kv_rollback(&kv, P) == 0);
    CHECK(engine_forward_all(&e, &kv, ids + P, K, batch) == 0);
    CHECKF(kv.n == P + K, "%s: kv.n %d after verifying %d", what, kv.n, K);
    int exact = same_bits(step, batch, (size_t)K * V);
    printf("%s: %d tokens in one pass vs %d single steps: %s (max |diff| %.3g)\n", what, K, K,
           exact ? "identical bits" : "differ", max_abs_diff(step, batch, (size_t)K * V));
    CHECKF(exact, "%s: verification logits differ from single steps", what);
    /* drafts rejected: 4 wrong tokens after 3 right ones, rolled back to the 3 right ones, then the rest */
    CHECK(engine_kv_rollback(&kv, P) == 0);
    int32_t mix[7];
    memcpy(mix, ids + P, 3 * sizeof(int32_t));
    memcpy(mix + 3, wrong, 4 * sizeof(int32_t));
    CHECK(engine_forward_all(&e, &kv, mix, 7, again) == 0);
    CHECKF(same_bits(again, step, (size_t)3 * V), "%s: accepted prefix of a draft differs", what);
    CHECK(engine_kv_rollback(&kv, P + 3) == 0);
    CHECK(engine_forward_all(&e, &kv, ids + P + 3, K - 3, again + (size_t)3 * V) == 0);
    CHECKF(same_bits(again + (size_t)3 * V, step + (size_t)3 * V, (size_t)(K - 3) * V),
           "%s: logits after a rollback differ from a cache that never held the rejected tokens", what);
    /* bad rollbacks name what was wrong */
    CHECK_FAILS_WITH(engine_kv_rollback(&kv, kv.n + 1), "cache holds");
    CHECK_FAILS_WITH(engine_kv_rollback(&kv, -1), "rollback");
    kv_free(&kv);
    engine_close(&e);
    free(step), free(batch), free(again);
}

int main(void) {
    sc_config cfg;
    config_preset(&cfg, "tiny");
    cfg.max_position_embeddings = 64;
    sc_model m;
    model_create(&m, &cfg);
    model_init_weights(&m, 99, 0.08f);
    char dir[] = "/tmp/sc_test_spec.XXXXXX", path[4200];
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/fp32", dir);
    if (model_save(&m, path)) return printf("save: %s\n", sc_error()), 1;
    sc_weights w;
    if (weights_load(&w, path)) return printf("load: %s\n", sc_error()), 1;
    check_engine(&w, 1, "fp32 weights, fp16 kv");
    check_engine(&w, 0, "fp32 weights, fp32 kv");
    weights_free(&w);
    int groups[] = {0, 32};
    for (int gi = 0; gi < 2; gi++) {
        snprintf(path, sizeof path, "%s/int8-%d", dir, groups[gi]);
        if (quantize_model(&m, path, groups[gi])) return printf("quantize: %s\n", sc_error()), 1;
        if (weights_load(&w, path)) return printf("load int8: %s\n", sc_error()), 1;
        char what[64];
        snprintf(what, sizeof what, "int8 group %d, fp16 kv", groups[gi]);
        check_engine(&w, 1, what);
        weights_free(&w);
    }
    model_free(&m);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) printf("could not remove %s\n", dir);
    return check_result("test_infer_spec");
}
