/* test_infer_engine.c — the CUDA inference engine (host/engine_cuda.c) against the CPU engine on a random tiny
 * model (norm weights drawn around 1, weights rounded to FP16 first so both engines see the same values):
 *   - the kernels: dp4a GEMV + activation quantization against quant.c on the same integers (odd shapes, per row
 *     and groups, a partial last group), FP16 GEMV, INT8 dequantization;
 *   - FP16 engine vs CPU FP32 (FP32 KV), INT8 engine vs CPU INT8 on the same INT8 directory (per row, group 32):
 *     logits of a 20-token prefill (every row) and of 32 decode steps fed the CPU's greedy tokens, relative L2,
 *     and the greedy (argmax) agreement over those 32 steps. The CUDA INT8 prefill runs dequantized weights in
 *     FP16 GEMMs (activations not quantized: W8A16) where the CPU quantizes activations (W8A8), hence the wider
 *     INT8 tolerances; the test also checks that the W8A16 prefill is at least as close to FP32 as the CPU's;
 *   - an FP32 checkpoint run with --precision int8 (quantized at load) gives the bits of the INT8 directory;
 *   - CUDA graphs on vs off: bit-identical logits; sessions interleaved on one engine (two preallocated KV caches
 *     and one beyond the plan) each give the bits of a session run alone (the graph reads the cache pointers);
 *   - KV cache reuse: prefill then 3-token and 1-token steps equals one long prefill; a prefill in chunks of 16
 *     equals one pass;
 *   - errors (foreign cache, full context, a context too long for --device cuda, which auto then runs on the
 *     CPU), --precision auto's choice, and the 304m device-memory plan;
 *   - --precision auto on a small slow card (a simulated MX450 on the emulator) takes INT8 for 304m. */
#include "host/engine.h"
#include "infer/quantize.h"
#include "host/error.h"
#include "tests/gpu/gpu_test.h"
#include "tests/model_dir.h"
#include "host/device_probe.h"
#include "host/model.h"

#include <unistd.h>

enum { P = 20, G = 32, CTX = 64 };

/* the KV cache type of every engine the cases below open (the CPU reference: FP32 for f16, else the same type) */
static int g_kv = SC_KV_F16;

static void open_or_die(sc_engine *e, const sc_weights *w, const sc_engine_opts *o) {
    if (engine_open(e, w, o)) {
        printf("engine_open(%s, %s): %s\n", o->device, o->precision ? o->precision : "auto", sc_error());
        exit(1);
    }
}

static void fwd(sc_engine *e, sc_kv *kv, const int32_t *ids, int n, float *logits, float *all) {
    if (e->ops->forward(e, kv, ids, n, logits, all)) {
        printf("forward: %s\n", sc_error());
        exit(1);
    }
}

/* CPU reference: prefill logits [P, V], then G greedy steps: tokens seq[G] chosen from the logits, dec [G, V] */
static void cpu_run(const sc_weights *w, const int32_t *prompt, float *pre, float *dec, int32_t *seq) {
    sc_engine e;
    sc_engine_opts o = {.device = "cpu", .kv_type = g_kv == SC_KV_F16 ? SC_KV_F32 : g_kv};
    open_or_die(&e, w, &o);
    sc_kv kv;
    engine_kv_create(&e, &kv, CTX);
    int V = w->cfg.vocab_size;
    fwd(&e, &kv, prompt, P, NULL, pre);
    int32_t id = md_argmax(pre + (size_t)(P - 1) * V, V);
    for (int g = 0; g < G; g++) {
        seq[g] = id;
        fwd(&e, &kv, &id, 1, dec + (size_t)g * V, NULL);
        id = md_argmax(dec + (size_t)g * V, V);
    }
    kv_free(&kv);
    engine_close(&e);
}

/* the CUDA engine on the same prompt, fed the CPU's tokens seq (teacher forcing) */
static void cuda_run(const sc_weights *w, const char *prec, int no_graphs, const int32_t *prompt, const int32_t *seq,
                     float *pre, float *dec, char *chosen) {
    sc_engine e;
    sc_engine_opts o = {.device = "cuda", .kv_type = g_kv, .precision = prec, .n_ctx = CTX, .no_graphs = no_graphs};
    open_or_die(&e, w, &o);
    if (chosen) snprintf(chosen, 16, "%s", e.precision);
    sc_kv kv;
    engine_kv_create(&e, &kv, CTX);
    int V = w->cfg.vocab_size;
    fwd(&e, &kv, prompt, P, NULL, pre);
    for (int g = 0; g < G; g++) fwd(&e, &kv, &seq[g], 1, dec + (size_t)g * V, NULL);
    kv_free(&kv);
    engine_close(&e);
}

typedef struct {
    float *pre, *dec;
} run_out;

static run_out run_alloc(int V) { return (run_out){TU_NEW(float, (size_t)P * V), TU_NEW(float, (size_t)G * V)}; }
static void run_free(run_out r) { free(r.pre), free(r.dec); }

/* compares a CUDA run with the CPU's; returns nothing, records checks */
static void compare(const char *name, const run_out *gpu, const run_out *cpu, const int32_t *seq, int V, double tol_pre,
                    double tol_dec, double min_agree) {
    char what[160];
    snprintf(what, sizeof what, "%s: prefill logits [%d x %d] rel L2", name, P, V);
    tu_check(what, gt_relerr(gpu->pre, cpu->pre, (int64_t)P * V), tol_pre);
    snprintf(what, sizeof what, "%s: decode logits, %d steps, rel L2", name, G);
    tu_check(what, gt_relerr(gpu->dec, cpu->dec, (int64_t)G * V), tol_dec);
    int agree = md_argmax(gpu->pre + (size_t)(P - 1) * V, V) == seq[0];
    for (int g = 0; g + 1 < G; g++) agree += md_argmax(gpu->dec + (size_t)g * V, V) == seq[g + 1];
    snprintf(what, sizeof what, "%s: greedy agreement %d/%d (err = 1 - rate)", name, agree, G);
    tu_check(what, 1.0 - (double)agree / G, 1.0 - min_agree);
}

/* the CUDA INT8 prefill (W8A16) is at least as close to the FP32 logits as the CPU's (W8A8) */
static void w8a16_vs_w8a8(const char *name, const run_out *gpu, const run_out *cpu, const run_out *ref32, int V) {
    double eg = gt_relerr(gpu->pre, ref32->pre, (int64_t)P * V), ec = gt_relerr(cpu->pre, ref32->pre, (int64_t)P * V);
    char what[160];
    printf("%s: prefill logits vs FP32: CUDA (W8A16) %.4f, CPU (W8A8) %.4f rel L2\n", name, eg, ec);
    snprintf(what, sizeof what, "%s: CUDA prefill error vs FP32 / the CPU's", name);
    tu_check(what, eg / ec, 1.0);
}

/* one long prefill equals a prefill + a 3-token step + single steps (the cache reuse path), within tol (the long
 * prefill takes the GEMM path, the steps the GEMV path: for INT8 that is W8A16 vs W8A8); the 3-token step gives
 * the bits of 3 single steps (same kernels, rows independent) */
static void kv_reuse_case(const sc_weights *w, const char *prec, const int32_t *ids, int n, double tol) {
    int V = w->cfg.vocab_size;
    sc_engine e;
    sc_engine_opts o = {.device = "cuda", .kv_type = g_kv, .precision = prec, .n_ctx = CTX};
    open_or_die(&e, w, &o);
    float *all = TU_NEW(float, (size_t)n * V), *inc = TU_NEW(float, (size_t)n * V);
    float *singles = TU_NEW(float, (size_t)n * V);
    sc_kv kv;
    engine_kv_create(&e, &kv, CTX);
    fwd(&e, &kv, ids, n, NULL, all);
    kv.n = 0; /* the same cache reused from the start, as the server's prompt cache does */
    int split = n - 8;
    fwd(&e, &kv, ids, split, NULL, inc);
    fwd(&e, &kv, ids + split, 3, NULL, inc + (size_t)split * V);
    for (int t = split + 3; t < n; t++) fwd(&e, &kv, ids + t, 1, inc + (size_t)t * V, NULL);
    kv.n = split;
    for (int t = split; t < n; t++) fwd(&e, &kv, ids + t, 1, singles + (size_t)t * V, NULL);
    char what[160];
    snprintf(what, sizeof what, "%s, kv %s: prefill %d + 3 + 1 x 5 vs one prefill of %d (rel L2, last 8)", prec,
             kv_type_names[g_kv], split, n);
    tu_check(what, gt_relerr(inc + (size_t)split * V, all + (size_t)split * V, (int64_t)8 * V), tol);
    snprintf(what, sizeof what, "%s, kv %s: a 3-token step == 3 single steps (bits)", prec, kv_type_names[g_kv]);
    tu_check(what, gt_bitdiff(inc + (size_t)split * V, singles + (size_t)split * V, sizeof(float) * 8 * (size_t)V),
             0.0);
    snprintf(what, sizeof what, "%s: kv->n after the steps", prec);
    tu_check(what, kv.n == n ? 0.0 : 1.0, 0.0);
    /* errors: a full context, and a cache from another engine */
    int32_t one = ids[0];
    kv.n = kv.n_ctx;
    tu_check("forward past the context fails", e.ops->forward(&e, &kv, &one, 1, inc, NULL) == -1 ? 0.0 : 1.0, 0.0);
    sc_kv host;
    kv_create(&host, w->cfg.num_hidden_layers, CTX, w->cfg.num_key_value_heads, w->cfg.head_dim, SC_KV_F16);
    tu_check("forward on a host KV cache fails", e.ops->forward(&e, &host, &one, 1, inc, NULL) == -1 ? 0.0 : 1.0,
             0.0);
    kv_free(&host);
    kv_free(&kv);
    engine_close(&e);
    free(all), free(inc), free(singles);
}

/* a prefill crossing chunk borders (chunks of 16: 16 + 16 + 16) equals one 48-token pass, up to the GEMMs' shapes
 * (FP32 sums in another order, an FP16 rounding flipped here and there); INT8 more, as a flipped FP16 activation can
 * move one activation integer of the W8A8 lm_head */
static void chunk_case(const sc_weights *w, const char *prec, const int32_t *ids, double tol) {
    int V = w->cfg.vocab_size, n = 48;
    float *one = TU_NEW(float, (size_t)n * V), *chunked = TU_NEW(float, (size_t)n * V);
    for (int pass = 0; pass < 2; pass++) {
        sc_engine e;
        sc_engine_opts o = {.device = "cuda", .kv_type = g_kv, .precision = prec, .n_ctx = CTX, .chunk = pass ? 16 : 0};
        open_or_die(&e, w, &o);
        sc_kv kv;
        engine_kv_create(&e, &kv, CTX);
        fwd(&e, &kv, ids, n, NULL, pass ? chunked : one);
        kv_free(&kv);
        engine_close(&e);
    }
    char what[160];
    snprintf(what, sizeof what, "%s: prefill of %d in chunks of 16 vs one pass (rel L2, all rows)", prec, n);
    tu_check(what, gt_relerr(chunked, one, (int64_t)n * V), tol);
    free(one), free(chunked);
}

/* sessions interleaved on one graph-using engine, each against the same session run alone */
static void sessions_case(const sc_weights *w, const char *prec, const int32_t *ids) {
    int V = w->cfg.vocab_size, S = 3, n0 = 6, steps = 5;
    float *solo = TU_NEW(float, (size_t)S * steps * V), *mix = TU_NEW(float, (size_t)S * steps * V);
    for (int pass = 0; pass < 2; pass++) {
        sc_engine e;
        sc_engine_opts o = {.device = "cuda", .kv_type = g_kv, .precision = prec, .n_ctx = CTX, .n_seqs = 2};
        open_or_die(&e, w, &o);
        sc_kv kv[3];
        float *out = pass ? mix : solo;
        if (pass == 0)
            for (int s = 0; s < S; s++) { /* alone: one session at a time, its cache freed before the next */
                engine_kv_create(&e, &kv[s], CTX);
                fwd(&e, &kv[s], ids + 7 * s, n0, NULL, NULL);
                for (int t = 0; t < steps; t++)
                    fwd(&e, &kv[s], ids + 7 * s + n0 + t, 1, out + ((size_t)s * steps + t) * V, NULL);
                kv_free(&kv[s]);
            }
        else {
            for (int s = 0; s < S; s++) engine_kv_create(&e, &kv[s], CTX); /* the third is beyond the plan */
            for (int s = 0; s < S; s++) fwd(&e, &kv[s], ids + 7 * s, n0, NULL, NULL);
            for (int t = 0; t < steps; t++)
                for (int s = 0; s < S; s++)
                    fwd(&e, &kv[s], ids + 7 * s + n0 + t, 1, out + ((size_t)s * steps + t) * V, NULL);
            int64_t planned = engine_cuda_plan_bytes(&w->cfg, !strcmp(e.precision, "int8"), w->group_size, CTX, 2,
                                                     e.kv_type);
            tu_check("device_bytes = plan + the third cache",
                     e.device_bytes == planned + kv_bytes(&kv[2]) ? 0.0 : 1.0, 0.0);
            for (int s = 0; s < S; s++) kv_free(&kv[s]);
        }
        engine_close(&e);
    }
    char what[160];
    snprintf(what, sizeof what, "%s, kv %s: 3 interleaved sessions (2 planned) == each alone (bits)", prec,
             kv_type_names[g_kv]);
    tu_check(what, gt_bitdiff(mix, solo, sizeof(float) * (size_t)S * steps * V), 0.0);
    free(solo), free(mix);
}

/* the kernels alone against host/quant.c on the same values */
static void kernel_case(int rows, int cols, int group, int T, sc_rng *r) {
    int ng = quant_ngroups(cols, group);
    float *w = tu_randn(r, (int64_t)rows * cols, 0.05), *x = gt_randn_half(r, (int64_t)T * cols, 1.0);
    int8_t *q = TU_NEW(int8_t, (size_t)rows * cols);
    uint16_t *sc = TU_NEW(uint16_t, (size_t)rows * ng);
    quant_rows(w, rows, cols, group, q, sc);
    sc_qmat m = {.rows = rows, .cols = cols, .group = group, .q = q, .scale = sc};
    qmat_prepare(&m);
    uint8_t *xq = TU_NEW(uint8_t, (size_t)T * cols);
    float *xs = TU_NEW(float, (size_t)T * ng), *ref = TU_NEW(float, (size_t)T * rows);
    float *got = TU_NEW(float, (size_t)T * rows);
    for (int t = 0; t < T; t++) {
        act_quant(x + (size_t)t * cols, cols, group, xq + (size_t)t * cols, xs + (size_t)t * ng);
        qmat_matvec(&m, xq + (size_t)t * cols, xs + (size_t)t * ng, ref + (size_t)t * rows);
    }
    int8_t *d_q = gt_alloc((size_t)rows * cols), *d_xq = gt_alloc((size_t)T * cols);
    kn_half *d_s = gt_alloc((size_t)rows * ng * 2), *d_x = gt_up_half(x, (int64_t)T * cols);
    float *d_xs = gt_alloc((size_t)T * ng * 4), *d_y = gt_alloc((size_t)T * rows * 4);
    GT_CHECK(cudaMemcpy(d_q, q, (size_t)rows * cols, cudaMemcpyHostToDevice));
    GT_CHECK(cudaMemcpy(d_s, sc, (size_t)rows * ng * 2, cudaMemcpyHostToDevice));
    kn_act_quant(d_xq, d_xs, d_x, T, cols, m.group, 0);
    kn_int8_gemv(NULL, d_y, d_xq, d_xs, d_q, d_s, T, rows, cols, m.group, 0);
    gt_down_f32(got, d_y, (int64_t)T * rows);
    int8_t *gxq = TU_NEW(int8_t, (size_t)T * cols);
    float *gxs = TU_NEW(float, (size_t)T * ng);
    GT_CHECK(cudaMemcpy(gxq, d_xq, (size_t)T * cols, cudaMemcpyDeviceToHost));
    GT_CHECK(cudaMemcpy(gxs, d_xs, (size_t)T * ng * 4, cudaMemcpyDeviceToHost));
    int bad = 0;
    for (int i = 0; i < T * cols; i++) bad += gxq[i] != (int)xq[i] - 128;
    bad += memcmp(gxs, xs, (size_t)T * ng * 4) != 0;
    char what[160];
    snprintf(what, sizeof what, "act_quant %dx%d group %d: integers and scales as quant.c", T, cols, group);
    tu_check(what, bad, 0);
    snprintf(what, sizeof what, "dp4a gemv %dx%d x %d group %d vs qmat_matvec (rel L2)", rows, cols, T, group);
    tu_check(what, gt_relerr(got, ref, (int64_t)T * rows), 1e-5);
    /* dequantization (prefill) and the FP16 GEMV on the dequantized matrix */
    float *deq = TU_NEW(float, (size_t)rows * cols), *gdeq = TU_NEW(float, (size_t)rows * cols);
    qmat_dequant_rows(&m, 0, rows, deq);
    kn_half *d_deq = gt_alloc((size_t)rows * cols * 2);
    kn_int8_dequant(d_deq, d_q, d_s, rows, cols, m.group, 0);
    gt_down_half(gdeq, d_deq, (int64_t)rows * cols);
    snprintf(what, sizeof what, "int8 dequant %dx%d group %d (rel L2, FP16 rounding)", rows, cols, group);
    tu_check(what, gt_relerr(gdeq, deq, (int64_t)rows * cols), 5e-4);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < rows; i++) {
            double acc = 0;
            for (int c = 0; c < cols; c++) acc += (double)gdeq[(size_t)i * cols + c] * x[(size_t)t * cols + c];
            ref[(size_t)t * rows + i] = (float)acc;
        }
    kn_f16_gemv(NULL, d_y, d_x, d_deq, T, rows, cols, 0);
    gt_down_f32(got, d_y, (int64_t)T * rows);
    snprintf(what, sizeof what, "fp16 gemv %dx%d x %d vs double (rel L2)", rows, cols, T);
    tu_check(what, gt_relerr(got, ref, (int64_t)T * rows), 1e-5);
    qmat_free(&m);
    GT_FREE(d_q), GT_FREE(d_xq), GT_FREE(d_s), GT_FREE(d_x), GT_FREE(d_xs), GT_FREE(d_y), GT_FREE(d_deq);
    free(w), free(x), free(q), free(sc), free(xq), free(xs), free(ref), free(got), free(gxq), free(gxs), free(deq),
        free(gdeq);
}

/* a context past the old shared-memory cap of the decode attention (12,032 positions): split-K flash-decoding has
 * none, so --device cuda opens it and auto stays on CUDA */
static void long_context_case(sc_weights *w) {
    int saved = w->cfg.max_position_embeddings;
    w->cfg.max_position_embeddings = 20000;
    sc_engine e;
    sc_engine_opts o = {.device = "cuda", .kv_type = SC_KV_F16};
    int rc = engine_open(&e, w, &o);
    printf("--device cuda, 20000 positions: %s\n", rc ? sc_error() : "(opened)");
    tu_check("--device cuda with a 20000-position context opens", rc == 0 ? 0.0 : 1.0, 0.0);
    if (!rc) engine_close(&e);
    o.device = "auto";
    rc = engine_open(&e, w, &o);
    tu_check("--device auto with a 20000-position context runs on CUDA",
             rc == 0 && !strcmp(e.ops->name, "cuda") ? 0.0 : 1.0, 0.0);
    if (!rc) engine_close(&e);
    w->cfg.max_position_embeddings = saved;
}

/* issue 17: an open-model-shaped checkpoint on the CUDA engine. llama3 rope_scaling + an untied head run (the
 * scaled frequencies go to the engine's inv_freq table) and match the CPU engine; qwen2 (q/k/v biases) and llama
 * attention_bias + mlp_bias models match the CPU engine in FP16 and INT8. */
static void open_variant_case(const char *dir) {
    sc_config cfg;
    config_preset(&cfg, "tiny");
    cfg.max_position_embeddings = CTX, cfg.tie_word_embeddings = 0;
    cfg.rope_scaling = SC_ROPE_LLAMA3, cfg.rope_factor = 8, cfg.rope_low_freq_factor = 1;
    cfg.rope_high_freq_factor = 4, cfg.rope_original_max_pos = 16, cfg.rope_theta = 500000;
    sc_model m;
    sc_rng r;
    gt_model_random(&m, &cfg, 77, 0.08f, &r);
    sc_weights w;
    md_save_load(&m, dir, "llama3", -1, &w);
    int V = cfg.vocab_size;
    int32_t prompt[64], seq[G];
    for (int i = 0; i < 64; i++) prompt[i] = (int32_t)rng_below(&r, (uint64_t)V);
    run_out gpu = run_alloc(V), cpu = run_alloc(V);
    cpu_run(&w, prompt, cpu.pre, cpu.dec, seq);
    cuda_run(&w, "fp16", 0, prompt, seq, gpu.pre, gpu.dec, NULL);
    compare("llama3 rope_scaling + untied, fp16", &gpu, &cpu, seq, V, 1e-2, 1e-2, 0.9);
    /* the scaling is not a no-op here: the unscaled model's logits differ */
    sc_weights plain = w;
    plain.cfg.rope_scaling = SC_ROPE_NONE;
    run_out base = run_alloc(V);
    cuda_run(&plain, "fp16", 0, prompt, seq, base.pre, base.dec, NULL);
    tu_check("llama3 scaling changes the logits (1 - min(rel L2 / 1e-2, 1))",
             1.0 - fmin(gt_relerr(base.pre, gpu.pre, (int64_t)P * V) / 1e-2, 1.0), 0.0);
    run_free(gpu), run_free(cpu), run_free(base);
    weights_free(&w);
    model_free(&m);

    /* biases on the CUDA engine (kn_bias_forward): qwen2 (q/k/v) and llama attention_bias + mlp_bias (all seven),
     * FP16 and INT8 weights, against the CPU engine on the same directory */
    for (int variant = 0; variant < 2; variant++) {
        config_preset(&cfg, "tiny");
        cfg.max_position_embeddings = CTX, cfg.qkv_bias = 1;
        if (variant) cfg.o_bias = cfg.mlp_bias = 1;
        snprintf(cfg.model_type, sizeof cfg.model_type, "%s", variant ? "llama" : "qwen2");
        model_create(&m, &cfg);
        model_init_weights(&m, 79 + variant, 0.08f);
        gt_model_random_norms(&m, &r);
        for (int i = 0; i < m.ntensors; i++) /* biases large enough to matter (init leaves them at zero) */
            if (strstr(m.table[i].name, ".bias"))
                for (int64_t j = 0; j < m.table[i].numel; j++)
                    m.params[m.table[i].offset + j] = (float)rng_normal(&r) * 0.3f;
        char name[96];
        snprintf(name, sizeof name, "bias%d", variant);
        md_save_load(&m, dir, name, -1, &w);
        snprintf(name, sizeof name, "bias%d-int8", variant);
        sc_weights w8;
        md_save_load(&m, dir, name, 0, &w8);
        run_out g = run_alloc(V), c = run_alloc(V), nob = run_alloc(V);
        cpu_run(&w, prompt, c.pre, c.dec, seq);
        cuda_run(&w, "fp16", 0, prompt, seq, g.pre, g.dec, NULL);
        snprintf(name, sizeof name, "%s biases, fp16", variant ? "llama attention+mlp" : "qwen2 q/k/v");
        compare(name, &g, &c, seq, V, 1e-2, 1e-2, 0.9);
        /* the biases are not a no-op: the same model with them zeroed gives other logits */
        for (int i = 0; i < m.ntensors; i++)
            if (strstr(m.table[i].name, ".bias")) memset(m.params + m.table[i].offset, 0, sizeof(float) * m.table[i].numel);
        snprintf(name, sizeof name, "bias%d-zero", variant);
        sc_weights wz;
        md_save_load(&m, dir, name, -1, &wz);
        cuda_run(&wz, "fp16", 0, prompt, seq, nob.pre, nob.dec, NULL);
        snprintf(name, sizeof name, "%s: zeroed biases change the logits (1 - min(rel L2 / 1e-2, 1))",
                 variant ? "llama" : "qwen2");
        tu_check(name, 1.0 - fmin(gt_relerr(nob.pre, g.pre, (int64_t)P * V) / 1e-2, 1.0), 0.0);
        weights_free(&wz);
        cpu_run(&w8, prompt, c.pre, c.dec, seq);
        cuda_run(&w8, "int8", 0, prompt, seq, g.pre, g.dec, NULL);
        snprintf(name, sizeof name, "%s biases, int8", variant ? "llama attention+mlp" : "qwen2 q/k/v");
        compare(name, &g, &c, seq, V, 6e-2, 6e-2, 0.85);
        run_free(g), run_free(c), run_free(nob);
        weights_free(&w), weights_free(&w8);
        model_free(&m);
    }
}

/* issue 17 item 5: a DeepSeek-Coder-1.3B-shaped INT8 model (24 layers, hidden 2048, 16 heads of 128, ffn 5504,
 * vocab 32256, untied) on the CUDA engine at 4096 positions: what the arena plan holds, printed; the goal is
 * <= 1.6 GiB including the KV cache. */
static void plan_deepseek_1_3b(void) {
    sc_config c;
    config_preset(&c, "304m");
    c.hidden_size = 2048, c.intermediate_size = 5504, c.num_hidden_layers = 24, c.num_attention_heads = 16;
    c.num_key_value_heads = 16, c.head_dim = 128, c.vocab_size = 32256, c.tie_word_embeddings = 0;
    c.max_position_embeddings = 16384, c.rope_scaling = SC_ROPE_LINEAR, c.rope_factor = 4;
    double mib = 1048576.0;
    char rows[1024];
    int64_t plan[3];
    const int types[3] = {SC_KV_F16, SC_KV_Q8, SC_KV_Q4};
    for (int i = 0; i < 3; i++) {
        plan[i] = engine_cuda_plan_describe(&c, 1, 0, 4096, 1, types[i], rows, sizeof rows);
        printf("deepseek-coder-1.3b shape, INT8 per row, 4096 positions, --kv %s:\n%s", kv_type_names[types[i]], rows);
    }
    printf("deepseek-coder-1.3b shape at 4096: f16 %.1f MiB, q8 %.1f MiB, q4 %.1f MiB; goal 1638.4 MiB (1.6 GiB)\n",
           plan[0] / mib, plan[1] / mib, plan[2] / mib);
    tu_check("deepseek-1.3b INT8 + q4 KV plan at 4096 positions MiB <= 1638.4 (1.6 GiB)", plan[2] / mib, 1638.4);
    tu_check("q8 KV plan < f16 KV plan", plan[1] < plan[0] ? 0.0 : 1.0, 0.0);
}

static void plan_304m(void) {
    sc_config c;
    config_preset(&c, "304m");
    double mib = 1048576.0;
    int64_t i8 = engine_cuda_plan_bytes(&c, 1, 0, 4096, 1, SC_KV_F16);
    int64_t i8g = engine_cuda_plan_bytes(&c, 1, 64, 4096, 1, SC_KV_F16);
    int64_t f16 = engine_cuda_plan_bytes(&c, 0, 0, 4096, 1, SC_KV_F16);
    printf("304m, 4096 positions, 1 session: device arena INT8 per row %.1f MiB, INT8 group 64 %.1f MiB, FP16 %.1f "
           "MiB (the CUDA context and cuBLAS's own allocations come on top)\n",
           i8 / mib, i8g / mib, f16 / mib);
    tu_check("304m INT8 (per row) arena MiB <= 450", i8 / mib, 450);
    tu_check("304m INT8 (group 64) arena MiB <= 450", i8g / mib, 450);
    tu_check("304m FP16 arena MiB <= 750", f16 / mib, 750);
}

/* --precision auto's rule (engine.h engine_cuda_auto_int8) on an MX450-like card: 80 GB/s, 1.7 GiB free. 304m in
 * FP16 would fit but decode at most ~131 tok/s, so INT8; tiny stays FP16. On the emulator the same through the
 * probe of its simulated MX450 (EMU_DEVICE=mx450: 2 GiB, 300 MiB context, 80 GB/s). */
static void auto_precision_small_card(void) {
    sc_config big, tiny;
    config_preset(&big, "304m"), config_preset(&tiny, "tiny");
    device_probe_info dp = {.measured = 1, .total = 2ll << 30, .free_now = 1700ll << 20, .bandwidth = 80e9};
    char why[240];
    int i8 = engine_cuda_auto_int8(&big, 0, 0, 4096, 1, 0, SC_KV_F16, &dp, why, sizeof why);
    printf("304m on 80 GB/s, 1.7 GiB free: %s (%s)\n", i8 ? "int8" : "fp16", why);
    tu_check("auto on a small slow card: 304m -> int8 (FP16 fits but reads twice the bytes)", i8 == 1 ? 0.0 : 1.0, 0.0);
    tu_check("auto on a small slow card: tiny -> fp16",
             engine_cuda_auto_int8(&tiny, 0, 0, 256, 1, 0, SC_KV_F16, &dp, why, sizeof why),
             0.0);
    dp.bandwidth = 900e9;
    tu_check("auto on a fast card with room: 304m -> fp16",
             engine_cuda_auto_int8(&big, 0, 0, 4096, 1, 0, SC_KV_F16, &dp, why, sizeof why),
             0.0);
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess || !strstr(prop.name, "emulator")) return;
    setenv("EMU_DEVICE", "mx450", 1);
    device_probe_forget();
    device_probe_info m;
    int rc = device_probe(big.head_dim, &m);
    i8 = engine_cuda_auto_int8(&big, 0, 0, 4096, 1, 0, SC_KV_F16, &m, why, sizeof why);
    printf("emulated MX450: total %.0f MiB, context+cuBLAS+kernels %.1f MiB, free %.1f MiB, %.0f GB/s; 304m: %s (%s)\n",
           m.total / 1048576.0, m.overhead / 1048576.0, m.free_now / 1048576.0, m.bandwidth / 1e9, i8 ? "int8" : "fp16",
           why);
    tu_check("emulated MX450: probe measures 2 GiB, 300 MiB context, 80 GB/s",
             !rc && m.measured && m.total == 2ll << 30 && m.overhead == 300ll << 20 && m.bandwidth == 80e9 ? 0.0 : 1.0, 0.0);
    tu_check("emulated MX450: complete --precision auto picks int8 for 304m", i8 == 1 ? 0.0 : 1.0, 0.0);
    unsetenv("EMU_DEVICE");
    device_probe_forget();
}

int main(void) {
    gt_require_device("test_infer_engine");
    unsetenv("SMALLCODER_CUDA_GRAPHS"); /* "0" would turn graphs off in both runs of the graphs on/off check */
    auto_precision_small_card();
    plan_304m();
    plan_deepseek_1_3b();
    sc_rng kr;
    rng_seed(&kr, 5);
    kernel_case(37, 352, 0, 3, &kr);
    kernel_case(37, 352, 32, 1, &kr);
    kernel_case(21, 352, 128, 2, &kr); /* groups of 128, 128, 96 */
    kernel_case(64, 1152, 64, 1, &kr);
    kernel_case(5, 64, 32, 2, &kr); /* fewer words per row than lanes */
    sc_model m;
    md_tiny(&m, CTX, 1234, 0.08f);
    sc_rng r;
    rng_seed(&r, 99);
    gt_model_random_norms(&m, &r);
    int V = m.cfg.vocab_size;
    int32_t prompt[64];
    for (int i = 0; i < 64; i++) prompt[i] = (int32_t)rng_below(&r, (uint64_t)V);

    char dir[] = "/tmp/sc_test_cuda_infer.XXXXXX";
    sc_weights w32, w8, w8g;
    md_twins(&m, dir, &w32, &w8);
    md_save_load(&m, dir, "int8g32", 32, &w8g);
    int32_t seq[G];
    char chosen[16];
    run_out gpu = run_alloc(V), other = run_alloc(V), ref32 = run_alloc(V), cpu;

    /* FP16 engine vs the FP32 CPU engine; auto picks FP16 here (the emulator reports 8 GiB free) */
    cpu_run(&w32, prompt, ref32.pre, ref32.dec, seq);
    cpu = ref32;
    cuda_run(&w32, NULL, 0, prompt, seq, gpu.pre, gpu.dec, chosen);
    tu_check("precision auto on an FP32 checkpoint with room = fp16", strcmp(chosen, "fp16") ? 1.0 : 0.0, 0.0);
    compare("fp16", &gpu, &cpu, seq, V, 1e-2, 1e-2, 0.9);
    cuda_run(&w32, "fp16", 1, prompt, seq, other.pre, other.dec, NULL);
    tu_check("fp16: graphs off == graphs on (bits)", gt_bitdiff(other.dec, gpu.dec, sizeof(float) * (size_t)G * V),
             0.0);
    kv_reuse_case(&w32, "fp16", prompt, 40, 2e-3);
    long_context_case(&w32);
    chunk_case(&w32, "fp16", prompt, 3e-3);
    sessions_case(&w32, "fp16", prompt);

    /* INT8 per row: the CPU engine on the same directory */
    cpu = run_alloc(V);
    cpu_run(&w8, prompt, cpu.pre, cpu.dec, seq);
    cuda_run(&w8, NULL, 0, prompt, seq, gpu.pre, gpu.dec, chosen);
    tu_check("precision auto on an INT8 checkpoint = int8", strcmp(chosen, "int8") ? 1.0 : 0.0, 0.0);
    compare("int8 per row", &gpu, &cpu, seq, V, 6e-2, 6e-2, 0.85);
    w8a16_vs_w8a8("int8 per row", &gpu, &cpu, &ref32, V);
    cuda_run(&w8, "int8", 1, prompt, seq, other.pre, other.dec, NULL);
    tu_check("int8: graphs off == graphs on (bits)", gt_bitdiff(other.dec, gpu.dec, sizeof(float) * (size_t)G * V),
             0.0);
    /* the FP32 checkpoint quantized at load: the same bits as the INT8 directory */
    cuda_run(&w32, "int8", 0, prompt, seq, other.pre, other.dec, NULL);
    tu_check("fp32 checkpoint with --precision int8 == int8 directory (bits)",
             gt_bitdiff(other.pre, gpu.pre, sizeof(float) * (size_t)P * V) +
                 gt_bitdiff(other.dec, gpu.dec, sizeof(float) * (size_t)G * V),
             0.0);
    kv_reuse_case(&w8, "int8", prompt, 40, 6e-2);
    chunk_case(&w8, "int8", prompt, 2e-2);
    sessions_case(&w8, "int8", prompt);

    /* INT8, group 32 */
    cpu_run(&w8g, prompt, cpu.pre, cpu.dec, seq);
    cuda_run(&w8g, "int8", 0, prompt, seq, gpu.pre, gpu.dec, NULL);
    compare("int8 group 32", &gpu, &cpu, seq, V, 6e-2, 6e-2, 0.85);
    w8a16_vs_w8a8("int8 group 32", &gpu, &cpu, &ref32, V);

    /* quantized KV caches: the CUDA engine (FP16 weights) against the CPU engine with the same cache type; graphs
     * on/off, a 3-token step == 3 single steps and a cache reused from an earlier position (rollback), sessions.
     * The CUDA engine quantizes FP16 rows, the CPU FP32 ones: an integer here and there lands one step apart, which
     * at 4 bits is a sixteenth of the block's range, hence the wider q4 tolerance. */
    const int qt[2] = {SC_KV_Q8, SC_KV_Q4};
    const double qtol[2] = {1e-2, 5e-2}; /* measured 0.005 and 0.018 */
    for (int i = 0; i < 2; i++) {
        char name[64];
        g_kv = qt[i];
        snprintf(name, sizeof name, "fp16 weights, --kv %s", kv_type_names[g_kv]);
        cpu_run(&w32, prompt, cpu.pre, cpu.dec, seq);
        cuda_run(&w32, "fp16", 0, prompt, seq, gpu.pre, gpu.dec, NULL);
        compare(name, &gpu, &cpu, seq, V, qtol[i], qtol[i], 0.85);
        printf("%s: CUDA vs CPU prefill %.4f, decode %.4f rel L2; the CPU's prefill vs its FP32 KV %.4f\n", name,
               gt_relerr(gpu.pre, cpu.pre, (int64_t)P * V), gt_relerr(gpu.dec, cpu.dec, (int64_t)G * V),
               gt_relerr(cpu.pre, ref32.pre, (int64_t)P * V));
        cuda_run(&w32, "fp16", 1, prompt, seq, other.pre, other.dec, NULL);
        snprintf(name, sizeof name, "--kv %s: graphs off == graphs on (bits)", kv_type_names[g_kv]);
        tu_check(name, gt_bitdiff(other.dec, gpu.dec, sizeof(float) * (size_t)G * V), 0.0);
        kv_reuse_case(&w32, "fp16", prompt, 40, 2e-3);
        sessions_case(&w32, "fp16", prompt);
    }
    g_kv = SC_KV_F16;

    run_free(cpu), run_free(gpu), run_free(other), run_free(ref32);
    weights_free(&w32), weights_free(&w8), weights_free(&w8g);
    open_variant_case(dir);
    model_free(&m);
    md_remove(dir);
    return tu_finish("test_infer_engine");
}
