/* test_model_kd.c — cuda_model_step_kd (host/cuda_model.c with kernels/kd_loss.cu) against model_cpu_step_kd:
 * mixed loss, CE part and every parameter's gradient on the tiny preset (tied and untied), forward and reverse KL,
 * two teacher top-k sizes, ignored targets; two runs bit-identical; the offload/recompute layout takes the same
 * classifier path. Refusals: a model opened without CUDA_MODEL_KD, a top-k above the reserved one, a teacher id
 * outside the vocabulary. Tolerances as test_model: mean loss (and mean CE) 2e-3 absolute, each gradient tensor
 * 2e-2 relative L2 (FP16 activations and activation gradients through the network). */
#include "host/config.h"
#include "host/cuda_model.h"
#include "host/error.h"
#include "tests/gpu/gpu_test.h"
#include "tests/gpu/model_steps.h"
#include "host/cpu/kd_loss.h"
#include "host/model.h"
#include "host/model_cpu.h"

/* Teacher rows: random logits ~ N(0, 2) pulled towards the target, top-k descending, FP16-rounded, FP32 lse. */
static void make_teacher(sc_rng *r, int T, int V, int k, const int32_t *tg, int32_t *ids, float *tl, float *lse) {
    double *full = TU_NEW(double, V);
    char *taken = TU_NEW(char, V);
    for (int t = 0; t < T; t++) {
        double mx = -INFINITY, sum = 0;
        for (int v = 0; v < V; v++) {
            full[v] = 2.0 * rng_normal(r) + (v == tg[t] ? 3.0 : 0.0);
            mx = fmax(mx, full[v]);
            taken[v] = 0;
        }
        for (int v = 0; v < V; v++) sum += exp(full[v] - mx);
        lse[t] = (float)(mx + log(sum));
        for (int i = 0; i < k; i++) {
            int best = -1;
            for (int v = 0; v < V; v++)
                if (!taken[v] && (best < 0 || full[v] > full[best])) best = v;
            taken[best] = 1;
            ids[t * k + i] = best;
            tl[t * k + i] = (float)full[best];
        }
    }
    gt_round_half(tl, (int64_t)T * k);
    free(full), free(taken);
}

static void kd_model_case(int T, int k, int reserve_k, int reverse, float alpha, float temp, int untied, int extra,
                          uint64_t seed) {
    char name[200];
    sc_config cfg;
    if (config_preset(&cfg, "tiny")) {
        tu_check("config_preset", 1.0, 0.0);
        return;
    }
    if (untied) cfg.tie_word_embeddings = 0;
    sc_model m;
    sc_rng r;
    gt_model_random(&m, &cfg, seed, 0.05f, &r);
    int V = cfg.vocab_size;
    int32_t *ids, *tg, *kid = TU_NEW(int32_t, (int64_t)T * k);
    float *tl = TU_NEW(float, (int64_t)T * k), *lse = TU_NEW(float, T);
    gt_model_tokens(&r, T, V, &ids, &tg);
    make_teacher(&r, T, V, k, tg, kid, tl, lse);
    if (T > 4) kid[3 * k] = V + 7; /* an ignored position's row is never read, so it may hold anything */
    kd_targets kd = {k, kid, tl, lse, alpha, temp, reverse};

    sc_cpu_acts a;
    cpu_acts_create(&a, &cfg, T);
    float *grads = TU_NEW(float, m.nparams);
    int counted = 0;
    double ce = 0, loss = model_cpu_step_kd(&m, &a, ids, tg, T, &kd, grads, CUDA_MODEL_STATIC_SCALE / (float)(T - 2), &counted, &ce);
    cpu_acts_free(&a);

    int flags = CUDA_MODEL_GRADS | CUDA_MODEL_KD(reserve_k) | extra;
    cuda_model *cm = NULL;
    if (gt_model_open(&cm, &m, T, flags)) return;
    float *g1 = TU_NEW(float, m.nparams), *g2 = TU_NEW(float, m.nparams);
    double gl = 0, gce = 0, l2 = 0;
    int gc = 0, c2 = 0;
    int rc = cuda_model_step_kd(cm, ids, tg, T, &kd, 1, CUDA_MODEL_STATIC_SCALE / (float)(T - 2), &gl, &gce, &gc);
    rc |= cuda_model_read_grads(cm, g1);
    cuda_model_zero_grads(cm);
    rc |= cuda_model_step_kd(cm, ids, tg, T, &kd, 1, CUDA_MODEL_STATIC_SCALE / (float)(T - 2), &l2, NULL, &c2);
    rc |= cuda_model_read_grads(cm, g2);
    if (rc) printf("cuda_model_step_kd: %s\n", sc_error());
    snprintf(name, sizeof name, "model_kd T=%d k=%d/%d %s alpha=%g temp=%g untied=%d flags=%d: counted", T, k,
             reserve_k, reverse ? "reverse" : "forward", alpha, temp, untied, extra);
    tu_check(name, rc || gc != counted || c2 != counted ? 1.0 : 0.0, 0.0);
    snprintf(name, sizeof name, "model_kd k=%d: mean loss (abs; cpu %.6f gpu %.6f)", k, loss / counted, gl / counted);
    tu_check(name, fabs(gl - loss) / counted, 2e-3);
    snprintf(name, sizeof name, "model_kd k=%d: mean CE (abs; cpu %.6f gpu %.6f)", k, ce / counted, gce / counted);
    tu_check(name, fabs(gce - ce) / counted, 2e-3);
    const char *worst_name;
    double worst = gt_worst_grad(&m, g1, grads, 2e-2, &worst_name);
    snprintf(name, sizeof name, "model_kd k=%d: worst gradient tensor (%s)", k, worst_name);
    tu_check(name, worst, 2e-2);
    snprintf(name, sizeof name, "model_kd k=%d: two runs bit-identical (loss and gradients)", k);
    tu_check(name, l2 != gl ? 1.0 : gt_bitdiff(g1, g2, sizeof(float) * (size_t)m.nparams), 0.0);
    /* refusals: top-k above the reserved one, a counted position's teacher id outside the vocabulary */
    if (k > 1) {
        kd_targets big = kd;
        big.k = reserve_k + 1;
        int refused = cuda_model_step_kd(cm, ids, tg, T, &big, 0, 0.0f, &l2, NULL, &c2) != 0;
        int32_t keep = kid[0];
        kid[0] = V;
        refused &= cuda_model_step_kd(cm, ids, tg, T, &kd, 0, 0.0f, &l2, NULL, &c2) != 0;
        kid[0] = keep;
        tu_check("model_kd: top-k above the reserved one, teacher id >= V refused", refused ? 0.0 : 1.0, 0.0);
    }
    cuda_model_close(cm);
    free(ids), free(tg), free(kid), free(tl), free(lse), free(grads), free(g1), free(g2);
    model_free(&m);
}

/* A model opened without CUDA_MODEL_KD refuses to distil; CUDA_MODEL_KD above the vocabulary is refused at open. */
static void kd_model_refusals(void) {
    sc_config cfg;
    if (config_preset(&cfg, "tiny")) return;
    sc_model m;
    model_create(&m, &cfg);
    model_init_weights(&m, 5, 0.02f);
    cuda_model *cm = NULL;
    int refused = cuda_model_open(&cm, &m, 8, CUDA_MODEL_GRADS | CUDA_MODEL_KD(cfg.vocab_size + 1)) != 0;
    if (!refused) cuda_model_close(cm), cm = NULL;
    int rc = cuda_model_open(&cm, &m, 8, CUDA_MODEL_GRADS);
    if (!rc) {
        int32_t ids[8] = {1, 2, 3, 4, 5, 6, 7, 8}, kid[8] = {0, 1, 2, 3, 4, 5, 6, 7};
        float tl[8] = {0}, lse[8] = {3, 3, 3, 3, 3, 3, 3, 3};
        kd_targets kd = {1, kid, tl, lse, 0.5f, 1.0f, 0};
        double l = 0;
        refused &= cuda_model_step_kd(cm, ids, ids, 8, &kd, 1, 1.0f, &l, NULL, NULL) != 0;
        cuda_model_close(cm);
    }
    tu_check("model_kd: open with top-k > V and a step without CUDA_MODEL_KD refused", rc || !refused ? 1.0 : 0.0,
             0.0);
    model_free(&m);
}

int main(void) {
    gt_require_device("test_model_kd");
    kd_model_case(45, 8, 8, 0, 0.5f, 2.0f, 0, 0, 1);
    kd_model_case(33, 32, 64, 1, 0.5f, 1.0f, 1, 0, 2);
    kd_model_case(29, 1, 32, 0, 1.0f, 2.0f, 1, CUDA_MODEL_STREAM_GRADS | CUDA_MODEL_RECOMPUTE, 3);
    kd_model_refusals();
    return tu_finish("test_model_kd");
}
