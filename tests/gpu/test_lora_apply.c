/* test_lora_apply.c — LoRA adapters applied unmerged on the CUDA engine (kernels/lora_apply.cu, host/engine_cuda.c):
 *   - the kernel against its CPU twin (host/cpu/lora_apply.c) on the same FP16 input: odd shapes, an output with a
 *     row stride and a column offset (a target inside the fused q|k|v output), several ranks; K rows at once give
 *     the bits of K single rows; scale 0 leaves y untouched;
 *   - the engine: FP16 and INT8 bases with two adapters against the CPU engine with the same adapters (prefill of
 *     every row and 16 decode steps, relative L2 and greedy agreement); the adapters move the logits far more than
 *     that error; an adapter with B = 0 gives the CUDA base's bits; CUDA graphs on vs off give the same bits with
 *     adapters on; a decode that switches adapter sets between steps (graph recaptured) equals runs that keep one;
 *     8 tokens verified in one pass equal 8 single steps (speculative decoding); the arena holds the adapters. */
#include "host/engine.h"
#include "host/cpu/ops.h"
#include "host/error.h"
#include "host/lora.h"
#include "host/model.h"
#include "infer/quantize.h"
#include "tests/gpu/gpu_test.h"
#include "tests/model_dir.h"

enum { P = 20, G = 16, CTX = 64 };

static void kernel_case(sc_rng *r, int T, int rows, int cols, int rank, int ldy, int off) {
    float *x = gt_randn_half(r, (int64_t)T * cols, 1.0);
    float *A = TU_NEW(float, (size_t)rank * cols), *B = TU_NEW(float, (size_t)rows * rank);
    for (int i = 0; i < rank * cols; i++) A[i] = (float)(0.1 * rng_normal(r));
    for (int i = 0; i < rows * rank; i++) B[i] = (float)(0.1 * rng_normal(r));
    float *y0 = gt_randn_half(r, (int64_t)T * ldy, 1.0), *ref = TU_NEW(float, (size_t)T * ldy);
    float *got = TU_NEW(float, (size_t)T * ldy), *h = TU_NEW(float, (size_t)T * rank);
    memcpy(ref, y0, sizeof(float) * (size_t)T * ldy);
    lora_apply_forward(ref + off, ldy, x, A, B, 0.75f, T, rows, cols, rank, h);
    gt_round_half(ref, (int64_t)T * ldy);
    kn_half *d_x = gt_up_half(x, (int64_t)T * cols), *d_y = gt_up_half(y0, (int64_t)T * ldy);
    float *d_A = gt_up_f32(A, (int64_t)rank * cols), *d_B = gt_up_f32(B, (int64_t)rows * rank);
    float *d_h = gt_alloc(sizeof(float) * (size_t)T * rank);
    kn_lora_apply(d_y + off, ldy, d_x, d_A, d_B, 0.75f, T, rows, cols, rank, d_h, 0);
    gt_down_half(got, d_y, (int64_t)T * ldy);
    char what[160];
    snprintf(what, sizeof what, "lora_apply T %d, [%d x %d] rank %d, ldy %d + %d vs the twin (rel L2)", T, rows, cols,
             rank, ldy, off);
    tu_check(what, gt_relerr(got, ref, (int64_t)T * ldy), 2e-3);
    /* the columns outside [off, off + rows) are untouched */
    int outside = 0;
    for (int t = 0; t < T; t++)
        for (int c = 0; c < ldy; c++)
            if ((c < off || c >= off + rows) && got[(size_t)t * ldy + c] != y0[(size_t)t * ldy + c]) outside++;
    snprintf(what, sizeof what, "lora_apply T %d: values outside the target's columns changed", T);
    tu_check(what, outside, 0);
    /* row by row: the same bits (batch invariance) */
    float *one = TU_NEW(float, (size_t)T * ldy);
    kn_half *d_y1 = gt_up_half(y0, (int64_t)T * ldy);
    for (int t = 0; t < T; t++)
        kn_lora_apply(d_y1 + (size_t)t * ldy + off, ldy, d_x + (size_t)t * cols, d_A, d_B, 0.75f, 1, rows, cols, rank,
                      d_h, 0);
    gt_down_half(one, d_y1, (int64_t)T * ldy);
    snprintf(what, sizeof what, "lora_apply T %d at once == %d single rows (bits)", T, T);
    tu_check(what, gt_bitdiff(one, got, sizeof(float) * (size_t)T * ldy), 0.0);
    kn_lora_apply(d_y1, ldy, d_x, d_A, d_B, 0.0f, T, rows, cols, rank, d_h, 0);
    gt_down_half(got, d_y1, (int64_t)T * ldy);
    tu_check("lora_apply scale 0 changes nothing", gt_bitdiff(one, got, sizeof(float) * (size_t)T * ldy), 0.0);
    GT_FREE(d_x), GT_FREE(d_y), GT_FREE(d_A), GT_FREE(d_B), GT_FREE(d_h), GT_FREE(d_y1);
    free(x), free(A), free(B), free(y0), free(ref), free(got), free(h), free(one);
}

typedef struct {
    const char *device, *precision;
    int no_graphs;
    const sc_lora *const *lora;
    int n_lora;
} run_opts;

/* prefill logits [P, V], then G decode steps fed seq (the sets[g % nsets] active at step g) */
static void run(const sc_weights *w, const run_opts *ro, const sc_lora_set *sets, int nsets, const int32_t *prompt,
                const int32_t *seq, float *pre, float *dec, int64_t *lora_bytes) {
    sc_engine e;
    sc_engine_opts o = {.device = ro->device, .kv_type = !strcmp(ro->device, "cuda") ? SC_KV_F16 : SC_KV_F32, .precision = ro->precision,
                        .n_ctx = CTX, .no_graphs = ro->no_graphs, .lora = ro->lora, .n_lora = ro->n_lora};
    if (engine_open(&e, w, &o)) printf("engine_open: %s\n", sc_error()), exit(1);
    if (lora_bytes) *lora_bytes = e.lora_bytes;
    sc_kv kv;
    engine_kv_create(&e, &kv, CTX);
    int V = w->cfg.vocab_size;
    if (engine_lora_use(&e, &sets[0]) || e.ops->forward(&e, &kv, prompt, P, NULL, pre))
        printf("prefill: %s\n", sc_error()), exit(1);
    for (int g = 0; g < G; g++)
        if (engine_lora_use(&e, &sets[g % nsets]) || engine_forward(&e, &kv, &seq[g], 1, dec + (size_t)g * V))
            printf("decode: %s\n", sc_error()), exit(1);
    kv_free(&kv);
    engine_close(&e);
}

int main(void) {
    gt_require_device("test_lora_apply");
    unsetenv("SMALLCODER_CUDA_GRAPHS");
    sc_rng kr;
    rng_seed(&kr, 3);
    kernel_case(&kr, 1, 33, 64, 4, 33, 0);
    kernel_case(&kr, 5, 40, 70, 3, 128, 56); /* inside a fused output: stride 128, columns 56..95 */
    kernel_case(&kr, 12, 96, 128, 8, 96, 0);
    kernel_case(&kr, 3, 200, 352, 16, 448, 248);

    sc_model m;
    md_tiny(&m, CTX, 4321, 0.08f);
    sc_config cfg = m.cfg;
    sc_rng r;
    rng_seed(&r, 17);
    gt_model_random_norms(&m, &r);
    char dir[] = "/tmp/sc_test_cuda_lora.XXXXXX";
    sc_weights w32, w8;
    md_twins(&m, dir, &w32, &w8);
    sc_lora a, b, z; /* B drawn from seed + 77 */
    md_adapter(&a, &cfg, dir, "a", 1, 78, 0.2, LORA_ALL_TARGETS, 4, NULL);
    md_adapter(&b, &cfg, dir, "b", 2, 79, 0.2, (1u << LORA_K) | (1u << LORA_O) | (1u << LORA_UP), 8, NULL);
    md_adapter(&z, &cfg, dir, "z", 3, 80, 0.0, LORA_ALL_TARGETS, 4, NULL);
    const sc_lora *ab[2] = {&a, &b}, *zs[1] = {&z};
    int V = cfg.vocab_size;
    int32_t prompt[P], seq[G];
    for (int i = 0; i < P; i++) prompt[i] = (int32_t)rng_below(&r, (uint64_t)V);
    for (int i = 0; i < G; i++) seq[i] = (int32_t)rng_below(&r, (uint64_t)V);
    float *pre[4], *dec[4];
    for (int i = 0; i < 4; i++) pre[i] = TU_NEW(float, (size_t)P * V), dec[i] = TU_NEW(float, (size_t)G * V);
    sc_lora_set both = {{1.0f, 0.5f}}, only_a = {{1.0f}}, only_b = {{0.0f, 1.0f}}, none = {{0}};
    char what[200];
    for (int q = 0; q < 2; q++) {
        const sc_weights *w = q ? &w8 : &w32;
        const char *prec = q ? "int8" : "fp16";
        run_opts cpu = {"cpu", NULL, 0, ab, 2}, gpu = {"cuda", prec, 0, ab, 2};
        int64_t lb = 0;
        run(w, &cpu, &both, 1, prompt, seq, pre[0], dec[0], NULL);
        run(w, &gpu, &both, 1, prompt, seq, pre[1], dec[1], &lb);
        run(w, &gpu, &none, 1, prompt, seq, pre[2], dec[2], NULL);
        double ep = gt_relerr(pre[1], pre[0], (int64_t)P * V), ed = gt_relerr(dec[1], dec[0], (int64_t)G * V);
        double moved = gt_relerr(pre[2], pre[1], (int64_t)P * V);
        int agree = md_argmax_agreement(dec[1], dec[0], G, V);
        printf("%s base + 2 adapters (scales 1, 0.5): CUDA vs CPU rel L2 prefill %.2e, decode %.2e, greedy %d/%d; "
               "adapters vs none %.3f; adapters in the arena %.1f KiB\n", prec, ep, ed, agree, G, moved, lb / 1024.0);
        snprintf(what, sizeof what, "%s + adapters: CUDA vs CPU prefill logits rel L2", prec);
        tu_check(what, ep, q ? 6e-2 : 1e-2); /* INT8: W8A16 prefill vs the CPU's W8A8, as test_infer_engine */
        snprintf(what, sizeof what, "%s + adapters: CUDA vs CPU decode logits rel L2", prec);
        tu_check(what, ed, q ? 6e-2 : 1e-2);
        snprintf(what, sizeof what, "%s + adapters: the adapters move the logits (1 - min(moved / 0.2, 1))", prec);
        tu_check(what, 1.0 - fmin(moved / 0.2, 1.0), 0.0);
        snprintf(what, sizeof what, "%s: the arena holds the adapters' FP32 weights", prec);
        tu_check(what, lb >= (a.nparams + b.nparams) * 4 ? 0.0 : 1.0, 0.0);
        /* B = 0: the CUDA base's bits */
        run_opts gz = {"cuda", prec, 0, zs, 1};
        run(w, &gz, &only_a, 1, prompt, seq, pre[3], dec[3], NULL);
        snprintf(what, sizeof what, "%s: an adapter with B = 0 gives the base's bits", prec);
        tu_check(what, gt_bitdiff(pre[3], pre[2], sizeof(float) * (size_t)P * V) +
                           gt_bitdiff(dec[3], dec[2], sizeof(float) * (size_t)G * V), 0.0);
        /* graphs off: the same bits */
        run_opts gn = {"cuda", prec, 1, ab, 2};
        run(w, &gn, &both, 1, prompt, seq, pre[3], dec[3], NULL);
        snprintf(what, sizeof what, "%s + adapters: CUDA graphs on == off (bits)", prec);
        tu_check(what, gt_bitdiff(dec[3], dec[1], sizeof(float) * (size_t)G * V), 0.0);
        /* switching sets every step (graph recaptured) == runs that keep each set, step by step */
        sc_lora_set alt[3] = {only_a, only_b, none};
        run(w, &gpu, alt, 3, prompt, seq, pre[3], dec[3], NULL);
        /* reference: the same schedule with plain launches (they read the scales at each step) */
        run(w, &gn, alt, 3, prompt, seq, pre[2], dec[2], NULL);
        int diff = memcmp(dec[3], dec[2], sizeof(float) * (size_t)G * V) != 0;
        snprintf(what, sizeof what, "%s: adapters switched every decode step, graphs (recaptured) == plain launches",
                 prec);
        tu_check(what, diff, 0.0);
        /* and a switched step really used its set: step 1 (only b) differs from the same step with a */
        run(w, &gpu, &only_a, 1, prompt, seq, pre[2], dec[2], NULL);
        snprintf(what, sizeof what, "%s: a step under b differs from it under a (the switch took effect)", prec);
        tu_check(what, memcmp(dec[3] + V, dec[2] + V, sizeof(float) * V) ? 0.0 : 1.0, 0.0);
        /* speculative verification: 8 tokens in one pass == 8 single steps, adapters on */
        {
            sc_engine e;
            sc_engine_opts o = {.device = "cuda", .kv_type = SC_KV_F16, .precision = prec, .n_ctx = CTX, .lora = ab, .n_lora = 2};
            if (engine_open(&e, w, &o) || engine_lora_use(&e, &both)) return printf("%s\n", sc_error()), 1;
            sc_kv kv;
            engine_kv_create(&e, &kv, CTX);
            float *one = TU_NEW(float, (size_t)8 * V), *all = TU_NEW(float, (size_t)8 * V);
            engine_forward(&e, &kv, prompt, P, NULL);
            for (int i = 0; i < 8; i++) engine_forward(&e, &kv, &seq[i], 1, one + (size_t)i * V);
            engine_kv_rollback(&kv, P);
            engine_forward_all(&e, &kv, seq, 8, all);
            snprintf(what, sizeof what, "%s + adapters: 8 tokens verified at once == 8 single steps (bits)", prec);
            tu_check(what, gt_bitdiff(one, all, sizeof(float) * (size_t)8 * V), 0.0);
            kv_free(&kv);
            engine_close(&e);
            free(one), free(all);
        }
    }
    /* the plan counts the adapters */
    int64_t p0 = engine_cuda_plan_bytes(&cfg, 1, 0, CTX, 1, SC_KV_F16);
    int64_t p2 = engine_cuda_plan_bytes_lora(&cfg, 1, 0, CTX, 1, SC_KV_F16, ab, 2);
    printf("plan, tiny INT8 at %d positions: %.1f KiB, with the two adapters %.1f KiB\n", CTX, p0 / 1024.0, p2 / 1024.0);
    tu_check("the device plan grows by at least the adapters' FP32 bytes",
             p2 - p0 >= (a.nparams + b.nparams) * 4 ? 0.0 : 1.0, 0.0);
    /* what serving a rank-16 all-linear adapter adds to a DeepSeek-Coder-1.3B-shaped INT8 base (printed) */
    {
        sc_config c;
        config_preset(&c, "304m");
        c.hidden_size = 2048, c.intermediate_size = 5504, c.num_hidden_layers = 24, c.num_attention_heads = 16;
        c.num_key_value_heads = 16, c.head_dim = 128, c.vocab_size = 32256, c.tie_word_embeddings = 0;
        sc_lora big;
        if (lora_create(&big, &c, 16, 32.0f, LORA_ALL_TARGETS, 0.0f, NULL)) return printf("%s\n", sc_error()), 1;
        const sc_lora *bp[1] = {&big};
        sc_engine_plan pl;
        engine_cuda_plan(&c, 1, 0, 2048, 1, 0, SC_KV_F16, bp, 1, &pl);
        printf("plan: deepseek-coder-1.3b shape, INT8 per row, 2048 positions, one rank-16 adapter on every linear "
               "layer: arena %.1f MiB = weights %.1f + adapter %.1f (FP32) + KV %.1f + scratch %.1f\n",
               pl.total / 1048576.0, pl.weights / 1048576.0, pl.lora / 1048576.0, pl.kv / 1048576.0,
               pl.scratch / 1048576.0);
        tu_check("1.3b plan: the adapter's part is its FP32 weights + scratch (MiB over the weights)",
                 (pl.lora - big.nparams * 4) / 1048576.0, 1.0);
        lora_free(&big);
    }
    for (int i = 0; i < 4; i++) free(pre[i]), free(dec[i]);
    lora_free(&a), lora_free(&b), lora_free(&z);
    weights_free(&w32), weights_free(&w8);
    model_free(&m);
    md_remove(dir);
    return tu_finish("test_lora_apply");
}
