/* test_cpu_lora.c — the LoRA branch op (host/lora_cpu.c) against central finite differences, with and without
 * dropout: dA, dB and the input gradient of L = sum(y * R) for y = s * B A drop(x); the dropout mask is the same
 * in forward and backward and changes with the key; the base-precision rounding (fp16, int8) stays within its
 * quantization step. (The whole model with an adapter is checked against PyTorch in reference_lora.) */
#include "host/lora.h"
#include "host/lora_cpu.h"
#include "tests/testutil.h"

enum { T = 5, IN_C = 24 };

typedef struct {
    lora_acts *la;
    float *x, *R, *y;
    int layer, target;
} ctx_t;

static double loss_of(void *p) {
    ctx_t *c = p;
    int out = c->la->ad->out[c->target];
    memset(c->y, 0, sizeof(float) * (size_t)T * (size_t)out);
    lora_forward(c->la, c->layer, c->target, c->y, c->x, T);
    return tu_dot(c->y, c->R, (int64_t)T * out);
}

static void check_case(float dropout, int target) {
    sc_config cfg;
    config_preset(&cfg, "tiny");
    cfg.hidden_size = IN_C, cfg.num_attention_heads = 2, cfg.num_key_value_heads = 1, cfg.head_dim = 12;
    cfg.intermediate_size = 40;
    sc_lora ad;
    if (lora_create(&ad, &cfg, 3, 6.0f, LORA_ALL_TARGETS, dropout, NULL)) {
        tu_check("lora_create", 1, 0);
        return;
    }
    sc_rng r;
    rng_seed(&r, 42 + (uint64_t)target);
    for (int64_t i = 0; i < ad.nparams; i++) ad.params[i] = (float)(0.5 * rng_normal(&r));
    float *grads = TU_NEW(float, ad.nparams);
    lora_acts la;
    lora_acts_create(&la, &ad, T);
    la.dropout_on = dropout > 0;
    la.dropout_key = 0x1234;
    int in = ad.in[target], out = ad.out[target], layer = 1;
    float *x = tu_randn(&r, (int64_t)T * in, 1.0), *R = tu_randn(&r, (int64_t)T * out, 1.0);
    float *y = TU_NEW(float, (int64_t)T * out), *dx = TU_NEW(float, (int64_t)T * in);
    ctx_t c = {&la, x, R, y, layer, target};
    loss_of(&c);
    la.grads = grads;
    lora_backward(&la, layer, target, dx, R, x, T);
    la.grads = NULL;

    char what[96];
    double *fd = TU_NEW(double, (int64_t)T * (in > out ? in : out) * 4);
    float *A = lora_a(&ad, layer, target), *B = lora_b(&ad, layer, target);
    tu_fd_grad(fd, A, (int64_t)ad.rank * in, 1e-2f, loss_of, &c);
    snprintf(what, sizeof what, "%s dropout %.1f: dA", lora_module_names[target], (double)dropout);
    tu_check(what, tu_relerr(lora_block_a(&ad, grads, layer, target), fd, (int64_t)ad.rank * in), 2e-3);
    tu_fd_grad(fd, B, (int64_t)out * ad.rank, 1e-2f, loss_of, &c);
    snprintf(what, sizeof what, "%s dropout %.1f: dB", lora_module_names[target], (double)dropout);
    tu_check(what, tu_relerr(lora_block_b(&ad, grads, layer, target), fd, (int64_t)out * ad.rank), 2e-3);
    tu_fd_grad(fd, x, (int64_t)T * in, 1e-2f, loss_of, &c);
    snprintf(what, sizeof what, "%s dropout %.1f: dx (through the adapter)", lora_module_names[target], (double)dropout);
    tu_check(what, tu_relerr(dx, fd, (int64_t)T * in), 2e-3);
    /* other modules' gradients untouched */
    double other = 0;
    for (int t = 0; t < LORA_NTARGETS; t++)
        for (int l = 0; l < ad.nlayers; l++)
            if (t != target || l != layer) {
                const float *g = lora_block_a(&ad, grads, l, t);
                for (int64_t i = 0; i < (int64_t)ad.rank * ad.in[t]; i++) other += fabs(g[i]);
            }
    tu_check("no gradient reaches other modules", other, 0);

    if (dropout > 0) { /* the mask drops about p of the inputs and moves with the key */
        float *y1 = tu_copy(y, (int64_t)T * out);
        la.dropout_key = 0x5678;
        loss_of(&c);
        tu_check("another key gives another mask", tu_maxabs_diff(y, y1, (int64_t)T * out) > 0 ? 0 : 1, 0);
        la.dropout_on = 0;
        loss_of(&c);
        tu_check("evaluation has no dropout", tu_maxabs_diff(y, y1, (int64_t)T * out) > 0 ? 0 : 1, 0);
        free(y1);
    }
    free(fd), free(x), free(R), free(y), free(dx), free(grads);
    lora_acts_free(&la);
    lora_free(&ad);
}

static void check_base_precision(void) {
    sc_config cfg;
    config_preset(&cfg, "tiny");
    sc_model m, q;
    model_create(&m, &cfg);
    model_init_weights(&m, 3, 0.02f);
    model_create(&q, &cfg);
    memcpy(q.params, m.params, sizeof(float) * (size_t)m.nparams);
    tu_check("int8 base precision", lora_base_precision(&q, "int8"), 0);
    /* per-row INT8: each weight within half a step (max|row| / 127 / 2), plus the FP16 rounding of the weight before
     * quantizing and of the scale (each up to 127 * 2^-11 = 0.06 steps): under 0.65 steps. A per-tensor scale or a
     * wrong row would exceed it. */
    const float *w = m.w.layers[0].wq, *wq = q.w.layers[0].wq;
    double worst = 0;
    for (int r = 0; r < cfg.hidden_size; r++) {
        float mx = 0;
        for (int c = 0; c < cfg.hidden_size; c++) mx = fmaxf(mx, fabsf(w[r * cfg.hidden_size + c]));
        for (int c = 0; c < cfg.hidden_size; c++)
            worst = fmax(worst, fabs(w[r * cfg.hidden_size + c] - wq[r * cfg.hidden_size + c]) / (mx / 127.0));
    }
    tu_check("int8 base: |w - deq(q(w))| in steps of max|row|/127", worst, 0.65);
    tu_check("int8 base: the weights did change", tu_maxabs_diff(w, wq, cfg.hidden_size) > 0 ? 0 : 1, 0);
    float *before = tu_copy(m.params, m.nparams);
    tu_check("fp16 base precision", lora_base_precision(&m, "fp16"), 0);
    double rel = 0; /* FP16 keeps 11 significant bits: round to nearest is within 2^-11 relative (normal range) */
    for (int64_t i = 0; i < m.nparams; i++)
        if (fabsf(before[i]) > 1e-4f) rel = fmax(rel, fabs((double)m.params[i] - before[i]) / fabs(before[i]));
    tu_check("fp16 base: relative rounding", rel, 1.0 / 2048);
    tu_check("fp16 base: the weights did change", tu_maxabs_diff(m.params, before, m.nparams) > 0 ? 0 : 1, 0);
    free(before);
    model_free(&m);
    model_free(&q);
}

int main(void) {
    for (int t = 0; t < LORA_NTARGETS; t++) check_case(0.0f, t);
    check_case(0.3f, LORA_V);
    check_case(0.3f, LORA_DOWN);
    check_base_precision();
    return tu_finish("test_cpu_lora");
}
