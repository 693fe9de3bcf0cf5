/* test_infer_lora.c — LoRA adapters served unmerged by the CPU engine (random tiny model, random adapters written
 * and read back in the PEFT layout through host/lora.c):
 *   - an adapter with B = 0 gives the base's logits bit for bit (FP32 and INT8 bases, prefill and decode);
 *   - unmerged = merged: logits of the base + adapter(s) at given scales against a model whose weights were merged
 *     in C (lora_merge_into, B pre-scaled for scales other than 1), a prefill above the side path's small-T limit
 *     (sgemm) and decode steps (fixed-order sums); two adapters at once;
 *   - K tokens verified in one pass give the bits of K single steps with an adapter on (speculative decoding);
 *   - switching the active set between forwards leaks nothing: adapter A again gives A's bits;
 *   - a session's cached prefix is not reusable under another adapter set (and is under the same one);
 *   - refusals, one line each: an adapter for another base (shape, layer count, base name), a scale for an adapter
 *     that is not loaded, a non-finite scale. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/engine.h"
#include "host/error.h"
#include "host/lora.h"
#include "host/rng.h"
#include "infer/generate.h"
#include "infer/quantize.h"
#include "tests/check.h"
#include "tests/model_dir.h"

enum { P = 90, D = 6, K = 11, CTX = 128 };

static double rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += (double)(a[i] - b[i]) * (a[i] - b[i]), den += (double)b[i] * b[i];
    return sqrt(num / (den > 0 ? den : 1));
}

/* prefill logits [P, V] of ids, then D decode steps [D, V] fed ids[P..] */
static void run(const sc_weights *w, const sc_lora *const *ads, int n, const sc_lora_set *set, const int32_t *ids,
                float *pre, float *dec) {
    sc_engine e;
    sc_engine_opts o = {.device = "cpu", .kv_type = SC_KV_F32, .lora = ads, .n_lora = n};
    if (engine_open(&e, w, &o)) printf("engine_open: %s\n", sc_error()), exit(1);
    CHECK(engine_lora_use(&e, set) == 0);
    sc_kv kv;
    engine_kv_create(&e, &kv, CTX);
    int V = w->cfg.vocab_size;
    CHECK(engine_forward_all(&e, &kv, ids, P, pre) == 0);
    for (int d = 0; d < D; d++) CHECK(engine_forward(&e, &kv, ids + P + d, 1, dec + (size_t)d * V) == 0);
    kv_free(&kv);
    engine_close(&e);
}

static int same_bits(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

/* a copy of ad with B scaled by s (merging at scale s) */
static void scaled_copy(sc_lora *dst, const sc_lora *src, const sc_config *cfg, float s) {
    CHECK(lora_create(dst, cfg, src->rank, src->alpha, src->targets, 0.0f, NULL) == 0);
    memcpy(dst->params, src->params, (size_t)src->nparams * sizeof(float));
    for (int l = 0; l < dst->nlayers; l++)
        for (int t = 0; t < LORA_NTARGETS; t++) {
            float *b = lora_b(dst, l, t);
            for (int64_t i = 0; b && i < (int64_t)dst->out[t] * dst->rank; i++) b[i] *= s;
        }
}

static void verify_case(const sc_weights *w, const sc_lora *const *ads, const sc_lora_set *set, const int32_t *ids,
                        const char *what) {
    sc_engine e;
    sc_engine_opts o = {.device = "cpu", .kv_type = SC_KV_F16, .lora = ads, .n_lora = 1};
    if (engine_open(&e, w, &o)) printf("engine_open: %s\n", sc_error()), exit(1);
    CHECK(engine_lora_use(&e, set) == 0);
    int V = w->cfg.vocab_size;
    float *step = malloc((size_t)K * V * 4), *batch = malloc((size_t)K * V * 4);
    sc_kv kv;
    engine_kv_create(&e, &kv, CTX);
    CHECK(engine_forward(&e, &kv, ids, 20, NULL) == 0);
    for (int i = 0; i < K; i++) CHECK(engine_forward(&e, &kv, ids + 20 + i, 1, step + (size_t)i * V) == 0);
    CHECK(engine_kv_rollback(&kv, 20) == 0);
    CHECK(engine_forward_all(&e, &kv, ids + 20, K, batch) == 0);
    int exact = same_bits(step, batch, (size_t)K * V);
    printf("%s: %d tokens verified in one pass with an adapter vs single steps: %s\n", what, K,
           exact ? "identical bits" : "differ");
    CHECKF(exact, "%s: batched verification differs from single steps with an adapter", what);
    kv_free(&kv);
    engine_close(&e);
    free(step), free(batch);
}

int main(void) {
    sc_model m;
    md_tiny(&m, CTX, 99, 0.08f);
    sc_config cfg = m.cfg;
    char dir[] = "/tmp/sc_test_lora.XXXXXX", base[4200], path[4200];
    md_mkdtemp(dir);
    snprintf(base, sizeof base, "%s/base", dir);
    sc_weights w, w8;
    md_save_load(&m, dir, "base", -1, &w);
    md_save_load(&m, dir, "base-int8", 0, &w8);
    int V = cfg.vocab_size;
    int32_t ids[P + D];
    sc_rng r;
    rng_seed(&r, 5);
    for (int i = 0; i < P + D; i++) ids[i] = (int32_t)rng_below(&r, (uint64_t)V);

    sc_lora a, b, z;
    md_adapter(&a, &cfg, dir, "a", 1, 1001, 0.3, LORA_ALL_TARGETS, 4, base);
    md_adapter(&b, &cfg, dir, "b", 2, 1002, 0.3, (1u << LORA_Q) | (1u << LORA_V) | (1u << LORA_DOWN), 2, base);
    md_adapter(&z, &cfg, dir, "zero", 3, 1003, 0.0, LORA_ALL_TARGETS, 8, base);
    const sc_lora *ab[2] = {&a, &b}, *zs[1] = {&z};
    float *pre0 = malloc((size_t)P * V * 4), *dec0 = malloc((size_t)D * V * 4);
    float *pre1 = malloc((size_t)P * V * 4), *dec1 = malloc((size_t)D * V * 4);
    float *pre2 = malloc((size_t)P * V * 4), *dec2 = malloc((size_t)D * V * 4);
    sc_lora_set on0 = {{1.0f}}, none = {{0}};

    /* B = 0: the base, bit for bit (FP32 and INT8 bases) */
    for (int q = 0; q < 2; q++) {
        const sc_weights *wb = q ? &w8 : &w;
        run(wb, NULL, 0, NULL, ids, pre0, dec0);
        run(wb, zs, 1, &on0, ids, pre1, dec1);
        CHECKF(same_bits(pre0, pre1, (size_t)P * V) && same_bits(dec0, dec1, (size_t)D * V),
               "%s base: an adapter with B = 0 changed the logits", q ? "INT8" : "FP32");
        printf("%s base + adapter with B = 0: %s the base's logits\n", q ? "INT8" : "FP32",
               same_bits(pre0, pre1, (size_t)P * V) && same_bits(dec0, dec1, (size_t)D * V) ? "identical to" : "DIFFER from");
    }

    /* unmerged = merged, at scale 1, at 0.5 and with both adapters */
    run(&w, NULL, 0, NULL, ids, pre0, dec0);
    struct { sc_lora_set set; float sa, sb; } cases[] = {{{{1.0f, 0.0f}}, 1.0f, 0.0f},
                                                       {{{0.5f, 0.0f}}, 0.5f, 0.0f},
                                                       {{{1.0f, 2.0f}}, 1.0f, 2.0f}};
    for (int c = 0; c < 3; c++) {
        run(&w, ab, 2, &cases[c].set, ids, pre1, dec1);
        sc_model mm;
        model_create(&mm, &cfg);
        memcpy(mm.params, m.params, (size_t)m.nparams * sizeof(float));
        sc_lora sa, sb;
        scaled_copy(&sa, &a, &cfg, cases[c].sa);
        scaled_copy(&sb, &b, &cfg, cases[c].sb);
        CHECK(lora_merge_into(&sa, &mm) == 0 && lora_merge_into(&sb, &mm) == 0);
        snprintf(path, sizeof path, "%s/merged%d", dir, c);
        sc_weights wm;
        if (model_save(&mm, path) || weights_load(&wm, path)) return printf("merged: %s\n", sc_error()), 1;
        run(&wm, NULL, 0, NULL, ids, pre2, dec2);
        double ep = rel_l2(pre1, pre2, (size_t)P * V), ed = rel_l2(dec1, dec2, (size_t)D * V);
        double moved = rel_l2(pre1, pre0, (size_t)P * V);
        printf("scales a %g b %g: unmerged vs merged rel L2 prefill (%d tokens) %.2e, decode %.2e; vs the base %.3f\n",
               cases[c].sa, cases[c].sb, P, ep, ed, moved);
        CHECKF(ep < 1e-5 && ed < 1e-5, "unmerged differs from merged: %g %g", ep, ed);
        CHECKF(moved > 1e-2, "the adapters hardly changed the logits (%g): the test cannot tell", moved);
        weights_free(&wm);
        model_free(&mm);
        lora_free(&sa), lora_free(&sb);
    }

    /* speculative verification stays bit-exact with an adapter on */
    const sc_lora *as[1] = {&a};
    verify_case(&w, as, &on0, ids, "FP32 base");
    verify_case(&w8, as, &on0, ids, "INT8 base");

    /* switching sets: a, then b, then a again gives a's bits */
    {
        sc_engine e;
        sc_engine_opts o = {.device = "cpu", .kv_type = SC_KV_F32, .lora = ab, .n_lora = 2};
        CHECK(engine_open(&e, &w, &o) == 0);
        sc_lora_set sa = {{1.0f, 0.0f}}, sb = {{0.0f, 1.0f}};
        float *l1 = malloc((size_t)V * 4), *l2 = malloc((size_t)V * 4), *l3 = malloc((size_t)V * 4);
        sc_kv kv;
        engine_kv_create(&e, &kv, CTX);
        CHECK(engine_lora_use(&e, &sa) == 0 && engine_forward(&e, &kv, ids, 30, l1) == 0);
        kv.n = 0;
        CHECK(engine_lora_use(&e, &sb) == 0 && engine_forward(&e, &kv, ids, 30, l2) == 0);
        kv.n = 0;
        CHECK(engine_lora_use(&e, &sa) == 0 && engine_forward(&e, &kv, ids, 30, l3) == 0);
        CHECK(same_bits(l1, l3, (size_t)V) && !same_bits(l1, l2, (size_t)V));
        /* refusals */
        sc_lora_set bad = {{0}};
        bad.scale[2] = 1.0f;
        CHECK_FAILS_WITH(engine_lora_use(&e, &bad), "no such adapter");
        bad.scale[2] = 0.0f, bad.scale[0] = NAN;
        CHECK_FAILS_WITH(engine_lora_use(&e, &bad), "not finite");

        /* the prompt cache is keyed on the adapter set (generate reuses session_reusable_prefix) */
        sc_session s;
        session_create(&s, &e, CTX);
        memcpy(s.ids, ids, 40 * sizeof(int32_t));
        s.kv.n = 40, s.lora = sa;
        CHECK(session_reusable_prefix(&s, &sa, ids, 40) == 40);
        CHECK(session_reusable_prefix(&s, &sb, ids, 40) == 0);
        CHECK(session_reusable_prefix(&s, NULL, ids, 40) == 0);
        s.lora = none;
        CHECK(session_reusable_prefix(&s, NULL, ids, 40) == 40);
        kv_free(&kv);
        session_free(&s);
        engine_close(&e);
        free(l1), free(l2), free(l3);
    }

    /* an adapter for another base: another shape, another depth, another base name */
    sc_config c2 = cfg;
    c2.intermediate_size += 32;
    sc_lora o1, x;
    CHECK(lora_create(&o1, &c2, 4, 8.0f, LORA_ALL_TARGETS, 0.0f, base) == 0);
    snprintf(path, sizeof path, "%s/other-shape", dir);
    mkdir(path, 0755);
    CHECK(lora_save(&o1, path) == 0);
    CHECK_FAILS_WITH(lora_load(&x, path, &cfg, base), "shape");
    CHECK_FAILS_WITH(engine_lora_check(&o1, &cfg, path), "another base");
    printf("another shape: %s\n", sc_error());
    const sc_lora *os[1] = {&o1};
    sc_engine e;
    sc_engine_opts o = {.device = "cpu", .lora = os, .n_lora = 1};
    CHECK_FAILS_WITH(engine_open(&e, &w, &o), "another base");
    lora_free(&o1);
    c2 = cfg;
    c2.num_hidden_layers += 1;
    CHECK(lora_create(&o1, &c2, 4, 8.0f, LORA_ALL_TARGETS, 0.0f, base) == 0);
    CHECK_FAILS_WITH(engine_lora_check(&o1, &cfg, "deeper"), "layers");
    lora_free(&o1);
    CHECK(lora_create(&o1, &cfg, 4, 8.0f, LORA_ALL_TARGETS, 0.0f, "/models/some-other-model") == 0);
    snprintf(path, sizeof path, "%s/other-name", dir);
    mkdir(path, 0755);
    CHECK(lora_save(&o1, path) == 0);
    CHECK_FAILS_WITH(lora_load(&x, path, &cfg, base), "another base");
    printf("another base name: %s\n", sc_error());
    CHECK(strchr(sc_error(), '\n') == NULL);
    lora_free(&o1);

    lora_free(&a), lora_free(&b), lora_free(&z);
    weights_free(&w), weights_free(&w8);
    model_free(&m);
    free(pre0), free(dec0), free(pre1), free(dec1), free(pre2), free(dec2);
    md_remove(dir);
    return check_result("test_infer_lora");
}
