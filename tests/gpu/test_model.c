/* test_model.c — the whole model on CUDA (host/cuda_model.c) against the FP32 CPU model (host/model_cpu.c): loss,
 * logits and every parameter's gradient, on the tiny preset and on 304m shapes cut to 2 layers, tied and untied,
 * both attention paths; norm weights drawn around 1 so a misapplied norm weight shows. Weights are rounded to FP16
 * first, so the CPU sees the GPU's weights. Tolerances: mean loss 2e-3 absolute, logits 1e-2 relative L2, each
 * gradient tensor 2e-2 relative L2 (FP16 activations and activation gradients through the whole network), and
 * the gradients of two runs bit-identical. */
#include "host/config.h"
#include "model/cuda_forward.h"
#include "host/cuda_model.h"
#include "host/error.h"
#include "tests/gpu/gpu_test.h"
#include "tests/gpu/model_steps.h"
#include "host/model.h"
#include "host/model_cpu.h"

static void model_case(const char *preset, int layers, int T, float std, uint64_t seed, int untied, int tc) {
    char name[200];
    sc_config cfg;
    if (config_preset(&cfg, preset)) {
        tu_check("config_preset", 1.0, 0.0);
        return;
    }
    if (layers) cfg.num_hidden_layers = layers;
    if (untied) cfg.tie_word_embeddings = 0;
    sc_model m;
    sc_rng r;
    gt_model_random(&m, &cfg, seed, std, &r);
    int V = cfg.vocab_size;
    int32_t *ids, *tg;
    gt_model_tokens(&r, T, V, &ids, &tg);

    sc_cpu_acts a;
    cpu_acts_create(&a, &cfg, T);
    float *logits = TU_NEW(float, (int64_t)T * V), *grads = TU_NEW(float, m.nparams);
    int counted = 0;
    double loss = model_cpu_step(&m, &a, ids, tg, T, logits, NULL, 0, &counted);
    const float S = CUDA_MODEL_STATIC_SCALE; /* both sides: d(S * mean loss), compared relative */
    model_cpu_step(&m, &a, ids, tg, T, NULL, grads, S / (float)counted, &counted);
    cpu_acts_free(&a);

    kn_set_tensor_cores(tc);
    cuda_model *cm = NULL;
    if (gt_model_open(&cm, &m, T, CUDA_MODEL_GRADS | CUDA_MODEL_LOGITS)) return;
    float *glogits = TU_NEW(float, (int64_t)T * V), *g1 = TU_NEW(float, m.nparams), *g2 = TU_NEW(float, m.nparams);
    double gloss = 0;
    int gcounted = 0;
    int rc = gt_model_ce_steps(cm, ids, tg, T, S / (float)counted, glogits, &gloss, &gcounted, g1, g2);
    const char *path = tc ? "tc" : "fma";
    snprintf(name, sizeof name, "model %s L=%d T=%d std=%g untied=%d %s: counted positions", preset,
             cfg.num_hidden_layers, T, std, untied, path);
    tu_check(name, rc || gcounted != counted ? 1.0 : 0.0, 0.0);
    snprintf(name, sizeof name, "model %s %s: mean loss (abs; cpu %.6f gpu %.6f)", preset, path, loss / counted,
             gloss / counted);
    tu_check(name, fabs(gloss - loss) / counted, 2e-3);
    snprintf(name, sizeof name, "model %s %s: logits", preset, path);
    tu_check(name, gt_relerr(glogits, logits, (int64_t)T * V), 1e-2);
    const char *worst_name;
    double worst = gt_worst_grad(&m, g1, grads, 2e-2, &worst_name);
    snprintf(name, sizeof name, "model %s %s: worst gradient tensor (%s)", preset, path, worst_name);
    tu_check(name, worst, 2e-2);
    snprintf(name, sizeof name, "model %s %s: gradients of two runs bit-identical", preset, path);
    tu_check(name, gt_bitdiff(g1, g2, sizeof(float) * (size_t)m.nparams), 0.0);
    cuda_model_close(cm);
    /* `smallcoder forward --device cuda` goes through cuda_forward_run: same loss, logits and gradients */
    double fl = 0;
    int fc = 0;
    float *fg = TU_NEW(float, m.nparams);
    rc = cuda_forward_run(&m, ids, tg, T, glogits, fg, 1, &fl, &fc);
    for (int64_t i = 0; i < m.nparams; i++) fg[i] *= S; /* it unscaled by 1/S: exact, a power of two */
    snprintf(name, sizeof name, "model %s %s: cuda_forward_run loss, counted and gradients as the step's", preset, path);
    tu_check(name, rc || fc != counted || fabs(fl - gloss) > 1e-9 ? 1.0 : gt_relerr(fg, g1, m.nparams), 0.0);
    free(fg);
    kn_set_tensor_cores(-1);
    free(ids), free(tg), free(logits), free(grads), free(glogits), free(g1), free(g2);
    model_free(&m);
}

int main(void) {
    gt_require_device("test_model");
    int quick = gt_quick();
    for (int tc = 1; tc >= 0; tc--) {
        model_case("tiny", 0, 77, 0.02f, 1, 0, tc);
        model_case("tiny", 0, 61, 0.08f, 2, 1, tc); /* sharper attention, untied lm_head */
        model_case("304m", 2, quick ? 33 : 257, 0.02f, 3, 0, tc);
    }
    return tu_finish("test_model");
}
