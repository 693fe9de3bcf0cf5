/* test_infer_spec.c — speculative decoding on the CPU engine (random tiny models):
 *   - the engine API: K tokens verified in one batched pass give the logits of K single steps, bit for bit, and a
 *     KV cache rolled back after rejected drafts continues exactly as one that never saw them (FP32, INT8);
 *   - greedy: spec_step's tokens equal the target's own greedy tokens, with a draft that agrees often (the target's
 *     INT8 twin), one that does not (another random model), prompt lookup, both, fixed and adaptive K, the
 *     repetition penalty, and a context that runs full;
 *   - sampling: the accept/reject-with-residual rule keeps the target's distribution: the joint frequencies of the
 *     two tokens after a fixed prefix over many seeded runs against the target's exact probabilities, a
 *     chi-square bound (p = 0.001), with temperature, top-k, top-p, min-p and the penalty on both sides; and the
 *     same statistic on the draft's own proposals, which must fail it (the test can tell).
 *   - lookup_draft on a hand-made sequence. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/error.h"
#include "host/rng.h"
#include "infer/quantize.h"
#include "host/engine.h"
#include "infer/generate.h"
#include "infer/lookup.h"
#include "infer/speculative.h"
#include "tests/check.h"
#include "tests/model_dir.h"

enum { P = 21, K = 11 };

static int same_bits(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

static float max_abs_diff(const float *a, const float *b, size_t n) {
    float d = 0;
    for (size_t i = 0; i < n; i++) d = fmaxf(d, fabsf(a[i] - b[i]));
    return d;
}

static void check_engine(const sc_weights *w, int kv_type, const char *what) {
    sc_engine e;
    sc_engine_opts o = {.device = "cpu", .kv_type = kv_type};
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


static sc_engine open_cpu(const sc_weights *w) {
    sc_engine e;
    sc_engine_opts o = {.device = "cpu", .kv_type = SC_KV_F16, .threads = 1}; /* tiny: threads would only wait */
    if (engine_open(&e, w, &o)) printf("engine_open: %s\n", sc_error()), exit(1);
    return e;
}

/* a session of ctx positions holding the prompt; returns the logits after it (malloc'd, [V]) */
static float *prefill(sc_engine *e, sc_session *s, const int32_t *prompt, int np, int ctx) {
    session_create(s, e, ctx);
    float *l = malloc((size_t)e->cfg->vocab_size * 4);
    memcpy(s->ids, prompt, (size_t)np * 4);
    CHECK(engine_forward(e, &s->kv, prompt, np, l) == 0);
    return l;
}

/* the target alone: prefill, then greedy single steps; out[0..n) */
static void greedy_alone(sc_engine *e, const sc_sampling *sp, const int32_t *prompt, int np, int n, int ctx,
                         int32_t *out, int *got) {
    sc_session s;
    float *l = prefill(e, &s, prompt, np, ctx);
    int V = e->cfg->vocab_size;
    sc_sampler smp;
    sampler_init(&smp, sp, V);
    int k = 0;
    for (; k < n; k++) {
        out[k] = sampler_sample(&smp, l, s.ids, s.kv.n);
        if (s.kv.n + 1 >= ctx) {
            k++;
            break;
        }
        s.ids[s.kv.n] = out[k];
        CHECK(engine_forward(e, &s.kv, out + k, 1, l) == 0);
    }
    *got = k;
    sampler_free(&smp);
    free(l);
    session_free(&s);
}

/* the same through spec_step: the first token from the prefill, then steps (as generate does) */
static void greedy_spec(sc_engine *e, sc_spec *sp, const sc_sampling *sa, const int32_t *prompt, int np, int n,
                        int ctx, int32_t *out, int *got) {
    sc_session s;
    float *l = prefill(e, &s, prompt, np, ctx);
    int V = e->cfg->vocab_size;
    CHECK(spec_prefill(sp, prompt, np) == 0);
    sc_sampler smp;
    sampler_init(&smp, sa, V);
    spec_begin(sp, sa);
    int k = 0;
    out[k++] = sampler_sample(&smp, l, s.ids, s.kv.n);
    int32_t q[64];
    while (k < n && s.kv.n + 1 < ctx) {
        int m = spec_step(sp, e, &s, &smp, out[k - 1], n - k, q);
        CHECKF(m >= 1, "spec_step: %s", sc_error());
        if (m < 1) break;
        for (int i = 0; i < m && k < n; i++) out[k++] = q[i];
    }
    *got = k;
    spec_end(sp);
    sampler_free(&smp);
    free(l);
    session_free(&s);
}

static void greedy_case(sc_engine *target, sc_engine *draft, int lookup, int fixed_k, float penalty, int ctx,
                        const char *what) {
    enum { NP = 24, N = 80 };
    int V = target->cfg->vocab_size;
    int32_t prompt[NP], want[N], got[N];
    sc_rng r;
    rng_seed(&r, 5);
    /* a prompt that repeats itself, so lookup finds something */
    for (int i = 0; i < NP; i++) prompt[i] = i < 12 ? (int32_t)rng_below(&r, (uint64_t)V) : prompt[i - 12];
    sc_sampling sa;
    sampling_defaults(&sa);
    sa.repeat_penalty = penalty;
    int nw, ng;
    greedy_alone(target, &sa, prompt, NP, N, ctx, want, &nw);
    sc_spec sp;
    sc_spec_opts o = {.draft = draft, .draft_max = 6, .draft_min_p = 0, .lookup = lookup, .fixed_k = fixed_k};
    CHECK(spec_open(&sp, &o, target, ctx) == 0);
    /* twice on one sc_spec: the draft's cache is reused (synced by common prefix) the second time */
    for (int pass = 0; pass < 2; pass++) {
        greedy_spec(target, &sp, &sa, prompt, NP, N, ctx, got, &ng);
        int same = ng == nw;
        for (int i = 0; same && i < nw; i++) same = got[i] == want[i];
        printf("greedy %s (pass %d): %d tokens, %d drafted, %d accepted: %s\n", what, pass, ng, sp.n_drafted,
               sp.n_accepted, same ? "identical to the target alone" : "DIFFERENT");
        CHECKF(same, "greedy %s: speculative tokens differ from the target's own (%d vs %d tokens)", what, ng, nw);
        if (fixed_k && (draft || lookup)) CHECKF(sp.n_drafted > 0, "%s: nothing drafted", what);
    }
    spec_close(&sp);
}

/* A draft that is always wrong: a model of zeros (all its logits tie, so it always proposes token 0, which this
 * target's greedy continuation never holds: checked at a fixed K, where it drafts every step and nothing is
 * accepted). Adaptive, the draft goes off after SPEC_MISSES (6) steps with nothing accepted at the latest and is
 * then probed with one token after 16, 32, 64 plain steps: at most 6 x 2 + 2 tokens are drafted in 100 (a fixed
 * K = 2 drafts ~200), whatever the timings say; the output stays the target's own. */
static void backoff_case(sc_engine *target, sc_engine *zero) {
    enum { NP = 24, N = 100, CTX = 128 };
    int V = target->cfg->vocab_size;
    int32_t prompt[NP], want[N], got[N];
    sc_rng r;
    rng_seed(&r, 8);
    for (int i = 0; i < NP; i++) prompt[i] = 1 + (int32_t)rng_below(&r, (uint64_t)V - 1);
    sc_sampling sa;
    sampling_defaults(&sa);
    int nw, ng, drafted[2], accepted[2];
    greedy_alone(target, &sa, prompt, NP, N, CTX, want, &nw);
    for (int adaptive = 0; adaptive < 2; adaptive++) {
        sc_spec sp;
        sc_spec_opts o = {.draft = zero, .draft_max = 2, .draft_min_p = 0, .fixed_k = adaptive ? 0 : 2};
        CHECK(spec_open(&sp, &o, target, CTX) == 0);
        greedy_spec(target, &sp, &sa, prompt, NP, N, CTX, got, &ng);
        int same = ng == nw;
        for (int i = 0; same && i < nw; i++) same = got[i] == want[i];
        drafted[adaptive] = sp.n_drafted, accepted[adaptive] = sp.n_accepted;
        printf("always-wrong draft, %s: %d tokens, %d drafted, %d accepted: %s\n", adaptive ? "adaptive K" : "K=2",
               ng, sp.n_drafted, sp.n_accepted, same ? "identical to the target alone" : "DIFFERENT");
        CHECKF(same, "always-wrong draft: speculative tokens differ from the target's own");
        spec_close(&sp);
    }
    CHECKF(accepted[0] == 0 && drafted[0] >= N, "the zero draft is not always wrong here (%d of %d accepted at K=2)",
           accepted[0], drafted[0]);
    CHECKF(drafted[1] >= 1 && drafted[1] <= 6 * 2 + 2,
           "adaptive K with an always-wrong draft drafted %d tokens in %d (expected 1..14: off after 6 steps, "
           "probes after 16 and 32 more)", drafted[1], N);
}

/* chi-square critical value at p = 0.001 (Wilson-Hilferty) */
static double chi2_crit(int df) {
    double z = 3.0902, a = 2.0 / (9.0 * df);
    return df * pow(1 - a + z * sqrt(a), 3);
}

/* chi-square of counts against probabilities, cells with expected < 5 pooled */
static double chi2(const int *count, const double *prob, int n, int total, int *df) {
    double x = 0, pool_e = 0, pool_o = 0;
    int cells = 0;
    for (int i = 0; i < n; i++) {
        double e = prob[i] * total;
        if (e < 5) {
            pool_e += e, pool_o += count[i];
            continue;
        }
        x += (count[i] - e) * (count[i] - e) / e, cells++;
    }
    if (pool_e > 0) x += (pool_o - pool_e) * (pool_o - pool_e) / fmax(pool_e, 1e-9), cells++;
    *df = cells - 1;
    return x;
}

/* the target's exact joint probability of (t1, t2) after prefix + pending, with the sampler's filters */
static void exact_joint(sc_engine *e, const sc_sampling *sa, const int32_t *pre, int np, double *joint) {
    int V = e->cfg->vocab_size;
    float *l = malloc((size_t)V * 4), *d1 = malloc((size_t)V * 4), *d2 = malloc((size_t)V * 4);
    int32_t h[64];
    memcpy(h, pre, (size_t)np * 4);
    sc_sampler smp;
    sampler_init(&smp, sa, V);
    sc_kv kv;
    engine_kv_create(e, &kv, 64);
    CHECK(engine_forward(e, &kv, pre, np, l) == 0);
    sampler_dist(&smp, l, h, np, d1);
    for (int a = 0; a < V; a++) {
        for (int b = 0; b < V; b++) joint[(size_t)a * V + b] = 0;
        if (d1[a] <= 0) continue;
        kv.n = np;
        h[np] = a;
        CHECK(engine_forward(e, &kv, &h[np], 1, l) == 0);
        sampler_dist(&smp, l, h, np + 1, d2);
        for (int b = 0; b < V; b++) joint[(size_t)a * V + b] = (double)d1[a] * d2[b];
    }
    kv_free(&kv);
    sampler_free(&smp);
    free(l), free(d1), free(d2);
}

/* a prefix of period 5 (so prompt lookup proposes the token after the earlier occurrence); for lookup, the first
 * seed whose proposal the target finds likely (p >= 0.2), so that both accepting and rejecting happen */
static void make_prefix(sc_engine *e, const sc_sampling *sa, int lookup, int32_t *pre, int np) {
    int V = e->cfg->vocab_size;
    float *l = malloc((size_t)V * 4), *d = malloc((size_t)V * 4);
    for (uint64_t seed = 21; seed < 400; seed++) {
        sc_rng r;
        rng_seed(&r, seed);
        for (int i = 0; i < np; i++) pre[i] = i < 5 ? (int32_t)rng_below(&r, (uint64_t)V) : pre[i - 5];
        if (!lookup) break;
        sc_kv kv;
        engine_kv_create(e, &kv, 64);
        CHECK(engine_forward(e, &kv, pre, np, l) == 0);
        kv_free(&kv);
        sc_sampler smp;
        sampler_init(&smp, sa, V);
        sampler_dist(&smp, l, pre, np, d);
        sampler_free(&smp);
        if (d[pre[np - 5]] >= 0.2f) break;
    }
    free(l), free(d);
}

static void sampling_case(sc_engine *target, sc_engine *draft, int lookup, const sc_sampling *base, const char *what) {
    enum { NP = 10, RUNS = 2000 };
    int V = target->cfg->vocab_size;
    int32_t pre[NP];
    make_prefix(target, base, lookup, pre, NP);
    double *joint = malloc((size_t)V * V * sizeof(double));
    exact_joint(target, base, pre, NP, joint);
    int *cnt = calloc((size_t)V * V, sizeof(int));
    sc_spec sp;
    sc_spec_opts o = {.draft = draft, .draft_max = 3, .draft_min_p = 0, .lookup = lookup, .fixed_k = 3};
    CHECK(spec_open(&sp, &o, target, 64) == 0);
    sc_session s;
    session_create(&s, target, 64);
    memcpy(s.ids, pre, sizeof pre);
    CHECK(engine_forward(target, &s.kv, pre, NP - 1, NULL) == 0);
    int drafted = 0, accepted = 0;
    for (int run = 0; run < RUNS; run++) {
        sc_sampling sa = *base;
        sa.seed = 1000 + (uint64_t)run;
        sc_sampler smp;
        sampler_init(&smp, &sa, V);
        spec_begin(&sp, &sa);
        s.kv.n = NP - 1;
        int32_t q[16], t[2];
        int k = 0;
        while (k < 2) {
            int m = spec_step(&sp, target, &s, &smp, k == 0 ? pre[NP - 1] : t[0], 3, q);
            if (m < 1) break;
            for (int i = 0; i < m && k < 2; i++) t[k++] = q[i];
        }
        cnt[(size_t)t[0] * V + t[1]]++;
        drafted += sp.n_drafted, accepted += sp.n_accepted;
        spec_end(&sp);
        sampler_free(&smp);
    }
    int df;
    double x = chi2(cnt, joint, V * V, RUNS, &df), crit = chi2_crit(df);
    printf("sampling %s: %d runs, %d drafted, %d accepted (%.0f%%): chi-square %.1f, df %d, bound %.1f (p=0.001)\n",
           what, RUNS, drafted, accepted, 100.0 * accepted / (drafted ? drafted : 1), x, df, crit);
    CHECKF(x < crit, "sampling %s: frequencies differ from the target's distribution (chi2 %.1f > %.1f)", what, x,
           crit);
    CHECKF(drafted > RUNS && accepted > 0 && accepted < drafted,
           "sampling %s: the rule was not exercised (%d drafted, %d accepted)", what, drafted, accepted);
    session_free(&s);
    spec_close(&sp);
    free(joint), free(cnt);
}

/* the control: the draft model's own samples (no verification) against the target's distribution must fail */
static void control_case(sc_engine *target, sc_engine *draft, const sc_sampling *base) {
    enum { NP = 10, RUNS = 2000 };
    int V = target->cfg->vocab_size;
    int32_t pre[NP];
    make_prefix(target, base, 0, pre, NP);
    double *joint = malloc((size_t)V * V * sizeof(double)), *djoint = malloc((size_t)V * V * sizeof(double));
    exact_joint(target, base, pre, NP, joint);
    exact_joint(draft, base, pre, NP, djoint);
    int *cnt = calloc((size_t)V * V, sizeof(int));
    sc_rng g;
    rng_seed(&g, 3);
    /* draws from the draft's exact joint */
    for (int run = 0; run < RUNS; run++) {
        double u = rng_uniform(&g), c = 0;
        size_t pick = 0;
        for (size_t i = 0; i < (size_t)V * V; i++)
            if (djoint[i] > 0 && (c += djoint[i]) > u) {
                pick = i;
                break;
            }
        cnt[pick]++;
    }
    int df;
    double x = chi2(cnt, joint, V * V, RUNS, &df), crit = chi2_crit(df);
    printf("control: the draft's own samples vs the target: chi-square %.1f, df %d, bound %.1f\n", x, df, crit);
    CHECKF(x > crit, "the chi-square test cannot tell the draft from the target (%.1f <= %.1f)", x, crit);
    free(joint), free(djoint), free(cnt);
}

static void lookup_case(void) {
    int32_t ids[] = {5, 6, 7, 8, 9, 1, 2, 6, 7, 3, 4, 6, 7}, out[8];
    /* last 2 = (6, 7): the most recent earlier match is at 7 -> proposes 3, 4, 6 */
    int n = lookup_draft(ids, 13, 2, 3, out);
    CHECKF(n == 3 && out[0] == 3 && out[1] == 4 && out[2] == 6, "lookup 2-gram: %d tokens, first %d", n, out[0]);
    n = lookup_draft(ids, 13, 3, 8, out); /* (4,6,7) never seen before: falls back to (6,7); 3 4 6 7 then again */
    CHECKF(n == 8 && out[0] == 3 && out[3] == 7 && out[4] == 3 && out[7] == 7, "lookup fallback to 2-gram: %d tokens",
           n);
    int32_t run[] = {1, 2, 9, 9, 9}; /* a run: the match (9, 9) one back, continued with period 1 */
    n = lookup_draft(run, 5, 3, 4, out);
    CHECKF(n == 4 && out[0] == 9 && out[3] == 9, "lookup in a run: %d tokens, first %d", n, out[0]);
    int32_t none[] = {1, 2, 3, 4};
    CHECK(lookup_draft(none, 4, 3, 8, out) == 0);
    CHECK(lookup_draft(none, 1, 3, 8, out) == 0);
}

int main(void) {
    sc_model m;
    md_tiny(&m, 128, 99, 0.08f);
    char dir[] = "/tmp/sc_test_spec.XXXXXX", name[16];
    md_mkdtemp(dir);
    sc_weights w, w32;
    md_save_load(&m, dir, "fp32", -1, &w32);
    w = w32;
    check_engine(&w, SC_KV_F16, "fp32 weights, fp16 kv");
    check_engine(&w, SC_KV_F32, "fp32 weights, fp32 kv");
    check_engine(&w, SC_KV_Q8, "fp32 weights, q8 kv"); /* rows quantized one by one: rollback re-stores them */
    check_engine(&w, SC_KV_Q4, "fp32 weights, q4 kv");
    lookup_case();
    int groups[] = {0, 32};
    for (int gi = 0; gi < 2; gi++) {
        snprintf(name, sizeof name, "int8-%d", groups[gi]);
        md_save_load(&m, dir, name, groups[gi], &w);
        char what[64];
        snprintf(what, sizeof what, "int8 group %d, fp16 kv", groups[gi]);
        check_engine(&w, SC_KV_F16, what);
        snprintf(what, sizeof what, "int8 group %d, q4 kv", groups[gi]);
        check_engine(&w, SC_KV_Q4, what);
        if (gi == 0) {
            /* speculative decoding: FP32 target; drafts: its INT8 twin (agrees often), another random model */
            sc_model m2;
            md_tiny(&m2, 128, 555, 0.08f);
            sc_weights wo, wz;
            md_save_load(&m2, dir, "other", -1, &wo);
            model_init_weights(&m2, 1, 0.0f); /* zeros: the always-wrong draft */
            md_save_load(&m2, dir, "zero", -1, &wz);
            model_free(&m2);
            sc_engine et = open_cpu(&w32), etw = open_cpu(&w), eo = open_cpu(&wo), ez = open_cpu(&wz);
            backoff_case(&et, &ez);
            engine_close(&ez);
            weights_free(&wz);
            greedy_case(&et, &etw, 0, 4, 1.0f, 128, "int8-twin draft, K=4");
            greedy_case(&et, &etw, 0, 0, 1.0f, 128, "int8-twin draft, adaptive K");
            greedy_case(&et, &eo, 0, 3, 1.0f, 128, "unrelated draft, K=3");
            greedy_case(&et, NULL, 3, 0, 1.0f, 128, "lookup 3");
            greedy_case(&et, &etw, 3, 5, 1.3f, 128, "lookup 3 + int8-twin draft, K=5, penalty 1.3");
            greedy_case(&etw, &et, 2, 6, 1.0f, 40, "int8 target, fp32 draft, lookup 2, context runs full");
            sc_sampling sa;
            sampling_defaults(&sa);
            sa.temperature = 1.0f, sa.top_k = 8, sa.top_p = 0.97f, sa.min_p = 0.02f, sa.repeat_penalty = 1.2f;
            sampling_case(&et, &eo, 0, &sa, "unrelated draft (T=1, top-k 8, top-p .97, min-p .02, penalty 1.2)");
            sampling_case(&et, &etw, 0, &sa, "int8-twin draft");
            sa.temperature = 0.7f, sa.top_k = 6, sa.top_p = 1.0f, sa.min_p = 0, sa.repeat_penalty = 1.0f;
            sampling_case(&et, NULL, 2, &sa, "lookup 2 (T=0.7, top-k 6)");
            control_case(&et, &eo, &sa);
            engine_close(&et), engine_close(&etw), engine_close(&eo);
            weights_free(&wo);
        }
        weights_free(&w);
    }
    weights_free(&w32);
    model_free(&m);
    md_remove(dir);
    return check_result("test_infer_spec");
}
