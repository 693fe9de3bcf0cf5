/* test_model_open.c — the CUDA training model (host/cuda_model.c) on open-model-shaped configs (issue 17) against
 * the FP32 CPU model (host/model_cpu.c, itself checked against PyTorch by reference_open_models): a qwen2 shape
 * (q/k/v biases, rope_scaling linear x4, tied) and a Llama shape with every bias (attention_bias q/k/v/o, mlp_bias
 * gate/up/down), llama3 scaling, an untied lm_head and an explicit head_dim (num_heads * head_dim != hidden).
 * Biases are drawn N(0, 0.3), norms N(1, 0.2), all rounded to FP16 so both sides start from the GPU's weights.
 * Checked as test_model.c does: mean loss 2e-3 absolute, logits 1e-2 relative L2, every gradient tensor (biases
 * included) 2e-2 relative L2, two runs bit-identical; then the offload model (recompute + streamed gradients)
 * gives the same gradient bits, and the features are proven to matter: the CPU model with the biases zeroed, or
 * with rope_scaling off, gives logits farther than twice the logits tolerance from the CUDA ones (so a CUDA model
 * that ignored either would fail the logits check). */
#include "host/config.h"
#include "host/cuda_model.h"
#include "host/error.h"
#include "tests/gpu/gpu_test.h"
#include "tests/gpu/model_steps.h"
#include "host/model.h"
#include "host/model_cpu.h"

typedef struct {
    const char *name;
    int qkv_bias, o_bias, mlp_bias, untied, heads, kv_heads, rope;
    double theta, factor;
} family;

/* the CPU model's loss sum and logits (and, with grads, d(S * mean loss)) */
static double cpu_run(const sc_model *m, const int32_t *ids, const int32_t *tg, int T, float *logits, float *grads,
                      float gscale, int *counted) {
    sc_cpu_acts a;
    cpu_acts_create(&a, &m->cfg, T);
    double loss = model_cpu_step(m, &a, ids, tg, T, logits, grads, gscale, counted);
    cpu_acts_free(&a);
    return loss;
}

static void family_case(const family *f, int T, uint64_t seed) {
    char name[200];
    sc_config cfg;
    if (config_preset(&cfg, "tiny")) {
        tu_check("config_preset", 1.0, 0.0);
        return;
    }
    snprintf(cfg.model_type, sizeof cfg.model_type, "%s", f->qkv_bias && !f->o_bias ? "qwen2" : "llama");
    cfg.qkv_bias = f->qkv_bias, cfg.o_bias = f->o_bias, cfg.mlp_bias = f->mlp_bias;
    cfg.tie_word_embeddings = !f->untied;
    cfg.num_attention_heads = f->heads, cfg.num_key_value_heads = f->kv_heads, cfg.head_dim = 64;
    cfg.rope_theta = f->theta, cfg.rope_scaling = f->rope, cfg.rope_factor = f->factor;
    /* llama3: a short original context, so that at T <= 64 positions each band (kept, blended, slowed) turns */
    cfg.rope_low_freq_factor = 1.0, cfg.rope_high_freq_factor = 4.0, cfg.rope_original_max_pos = 64;
    if (config_validate(&cfg, f->name)) {
        printf("config: %s\n", sc_error());
        tu_check("config_validate", 1.0, 0.0);
        return;
    }
    sc_model m;
    sc_rng r;
    gt_model_random(&m, &cfg, seed, 0.05f, &r);
    int nbias = 0;
    for (int i = 0; i < m.ntensors; i++) {
        if (!strstr(m.table[i].name, ".bias")) continue;
        nbias++;
        for (int64_t j = 0; j < m.table[i].numel; j++)
            m.params[m.table[i].offset + j] = half_to_float(float_to_half((float)(0.3 * rng_normal(&r))));
    }
    int V = cfg.vocab_size;
    int32_t *ids, *tg;
    gt_model_tokens(&r, T, V, &ids, &tg);

    float *logits = TU_NEW(float, (int64_t)T * V), *grads = TU_NEW(float, m.nparams);
    int counted = 0;
    double loss = cpu_run(&m, ids, tg, T, logits, NULL, 0, &counted);
    const float S = CUDA_MODEL_STATIC_SCALE; /* both sides: d(S * mean loss), compared relative */
    cpu_run(&m, ids, tg, T, NULL, grads, S / (float)counted, &counted);

    cuda_model *cm = NULL;
    if (gt_model_open(&cm, &m, T, CUDA_MODEL_GRADS | CUDA_MODEL_LOGITS)) return;
    float *glogits = TU_NEW(float, (int64_t)T * V), *g1 = TU_NEW(float, m.nparams), *g2 = TU_NEW(float, m.nparams);
    double gloss = 0;
    int gcounted = 0;
    int rc = gt_model_ce_steps(cm, ids, tg, T, S / (float)counted, glogits, &gloss, &gcounted, g1, g2);
    cuda_model_close(cm);
    snprintf(name, sizeof name, "%s T=%d (%d bias tensors): counted positions", f->name, T, nbias);
    tu_check(name, rc || gcounted != counted ? 1.0 : 0.0, 0.0);
    snprintf(name, sizeof name, "%s: mean loss (abs; cpu %.6f gpu %.6f)", f->name, loss / counted, gloss / counted);
    tu_check(name, fabs(gloss - loss) / counted, 2e-3);
    snprintf(name, sizeof name, "%s: logits", f->name);
    double lerr = gt_relerr(glogits, logits, (int64_t)T * V);
    tu_check(name, lerr, 1e-2);
    const char *worst_name, *bias_name;
    double worst = gt_worst_grad(&m, g1, grads, 2e-2, &worst_name);
    double worst_bias = gt_worst_grad_in(&m, ".bias", g1, grads, 0, &bias_name); /* printed above */
    snprintf(name, sizeof name, "%s: worst gradient tensor (%s)", f->name, worst_name);
    tu_check(name, worst, 2e-2);
    snprintf(name, sizeof name, "%s: worst bias gradient tensor", f->name);
    tu_check(name, nbias ? worst_bias : 1.0, 2e-2);
    snprintf(name, sizeof name, "%s: gradients of two runs bit-identical", f->name);
    tu_check(name, gt_bitdiff(g1, g2, sizeof(float) * (size_t)m.nparams), 0.0);

    /* the offload placement's model: layers recomputed, layer gradients streamed, bias gradients in the tail */
    double l2 = 0;
    int c2 = 0;
    rc = cuda_model_open(&cm, &m, T, CUDA_MODEL_GRADS | CUDA_MODEL_STREAM_GRADS | CUDA_MODEL_RECOMPUTE);
    if (!rc) {
        rc |= cuda_model_step(cm, ids, tg, T, NULL, 1, S / (float)counted, &l2, &c2);
        rc |= cuda_model_read_grads(cm, g2);
        cuda_model_close(cm);
    }
    if (rc) printf("offload model: %s\n", sc_error());
    snprintf(name, sizeof name, "%s: recompute + streamed gradients bit-identical", f->name);
    tu_check(name, rc ? 1.0 : gt_bitdiff(g1, g2, sizeof(float) * (size_t)m.nparams), 0.0);

    /* the features matter: without them the CPU model is far from what the CUDA model computed */
    float *plain = TU_NEW(float, (int64_t)T * V);
    sc_model z;
    model_create(&z, &cfg);
    memcpy(z.params, m.params, sizeof(float) * (size_t)m.nparams);
    for (int i = 0; i < z.ntensors; i++)
        if (strstr(z.table[i].name, ".bias")) memset(z.params + z.table[i].offset, 0, sizeof(float) * (size_t)z.table[i].numel);
    cpu_run(&z, ids, tg, T, plain, NULL, 0, &c2);
    snprintf(name, sizeof name, "%s: zeroed biases move the logits (relerr %.3g, > 2e-2)", f->name,
             gt_relerr(glogits, plain, (int64_t)T * V));
    tu_check(name, gt_relerr(glogits, plain, (int64_t)T * V) > 2e-2 ? 0.0 : 1.0, 0.0);
    model_free(&z);
    sc_config nos = cfg;
    nos.rope_scaling = SC_ROPE_NONE;
    model_create(&z, &nos);
    memcpy(z.params, m.params, sizeof(float) * (size_t)m.nparams);
    cpu_run(&z, ids, tg, T, plain, NULL, 0, &c2);
    snprintf(name, sizeof name, "%s: rope_scaling off moves the logits (relerr %.3g, > 2e-2)", f->name,
             gt_relerr(glogits, plain, (int64_t)T * V));
    tu_check(name, gt_relerr(glogits, plain, (int64_t)T * V) > 2e-2 ? 0.0 : 1.0, 0.0);
    model_free(&z);
    free(plain);
    free(ids), free(tg), free(logits), free(grads), free(glogits), free(g1), free(g2);
    model_free(&m);
}

int main(void) {
    gt_require_device("test_model_open");
    const family qwen2 = {"qwen2 q/k/v biases + linear x4", 1, 0, 0, 0, 2, 1, SC_ROPE_LINEAR, 1e6, 4.0};
    const family llama = {"llama all biases + llama3 x32 + untied + head_dim 64 x 4 heads", 1, 1, 1, 1, 4, 2,
                          SC_ROPE_LLAMA3, 5e5, 32.0};
    family_case(&qwen2, 45, 11);
    family_case(&llama, gt_quick() ? 61 : 64, 12);
    return tu_finish("test_model_open");
}
