/* lora_cpu.c — the LoRA branch on the CPU (see lora_cpu.h). Every product is one OpenBLAS sgemm; sums over tokens
 * are an sgemm's K dimension, which OpenBLAS never splits, so gradients are deterministic for a thread count. */
#include "host/lora_cpu.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "host/cpu/lora_dropout.h"
#include "host/half.h"
#include "host/quant.h"

void lora_acts_create(lora_acts *la, const sc_lora *ad, int T) {
    memset(la, 0, sizeof *la);
    la->ad = ad;
    la->T = T;
    int widest = 1;
    for (int t = 0; t < LORA_NTARGETS; t++) widest = ad->in[t] > widest ? ad->in[t] : widest;
    size_t per = (size_t)T * (size_t)ad->rank;
    la->u = sc_calloc(per * (size_t)ad->nlayers * LORA_NTARGETS, sizeof(float));
    la->du = sc_calloc(per, sizeof(float));
    la->xd = sc_calloc((size_t)T * (size_t)widest, sizeof(float));
}

void lora_acts_free(lora_acts *la) {
    free(la->u), free(la->du), free(la->xd);
    memset(la, 0, sizeof *la);
}

static float *saved_u(lora_acts *la, int layer, int target) {
    return la->u + ((size_t)layer * LORA_NTARGETS + (size_t)target) * (size_t)la->T * (size_t)la->ad->rank;
}

/* The adapter's input: x itself, or drop(x) in la->xd while training with dropout. */
static const float *adapter_input(lora_acts *la, int layer, int target, const float *x, int T) {
    float p = la->ad->dropout;
    if (!la->dropout_on || !(p > 0)) return x;
    int in = la->ad->in[target], slot = layer * LORA_NTARGETS + target;
    lora_dropout(la->xd, x, NULL, (int64_t)T * in, la->dropout_key, slot, p);
    return la->xd;
}

void lora_forward(lora_acts *la, int layer, int target, float *y, const float *x, int T) {
    const sc_lora *ad = la->ad;
    const float *A = lora_a(ad, layer, target), *B = lora_b(ad, layer, target);
    if (!A || T <= 0) return;
    int r = ad->rank, in = ad->in[target], out = ad->out[target];
    float *u = saved_u(la, layer, target);
    const float *xin = adapter_input(la, layer, target, x, T);
    /* u[T, r] = drop(x) A^T;  y[T, out] += s u B^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, r, in, 1.0f, xin, in, A, in, 0.0f, u, r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, out, r, lora_scaling(ad), u, r, B, r, 1.0f, y, out);
}

void lora_backward(lora_acts *la, int layer, int target, float *dx_acc, const float *dy, const float *x, int T) {
    const sc_lora *ad = la->ad;
    const float *A = lora_a(ad, layer, target), *B = lora_b(ad, layer, target);
    if (!A || T <= 0) return;
    int r = ad->rank, in = ad->in[target], out = ad->out[target];
    float s = lora_scaling(ad);
    const float *u = saved_u(la, layer, target);
    if (la->grads) { /* dB[out, r] += s dy^T u */
        float *dB = lora_block_b(ad, la->grads, layer, target);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, r, T, s, dy, out, u, r, 1.0f, dB, r);
    }
    /* du[T, r] = s dy B */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, r, out, s, dy, out, B, r, 0.0f, la->du, r);
    int dropping = la->dropout_on && ad->dropout > 0;
    if (la->grads) { /* dA[r, in] += du^T drop(x) (drop(x) regenerated into xd) */
        const float *xin = adapter_input(la, layer, target, x, T);
        float *dA = lora_block_a(ad, la->grads, layer, target);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, in, T, 1.0f, la->du, r, xin, in, 1.0f, dA, in);
    }
    if (!dx_acc) return;
    if (!dropping) { /* dx[T, in] += du A */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, in, r, 1.0f, la->du, r, A, in, 1.0f, dx_acc, in);
        return;
    }
    /* through the dropout: d(drop(x))/dx is the same mask */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, in, r, 1.0f, la->du, r, A, in, 0.0f, la->xd, in);
    lora_dropout(dx_acc, la->xd, dx_acc, (int64_t)T * in, la->dropout_key, layer * LORA_NTARGETS + target, ad->dropout);
}

int lora_base_precision(sc_model *m, const char *precision) {
    if (!strcmp(precision, "fp32")) return 0;
    if (!strcmp(precision, "fp16")) {
        for (int64_t i = 0; i < m->nparams; i++) m->params[i] = half_to_float(float_to_half(m->params[i]));
        return 0;
    }
    if (strcmp(precision, "int8")) return sc_fail("--base-precision must be fp32, fp16 or int8, got '%s'", precision);
    /* per-row INT8 of the linear layers and an untied lm_head (what `smallcoder quantize` stores; the CUDA base
     * keeps them so, host/cuda_model_layout.c); the embedding (a tied lm_head with it) and norms as FP16 */
    for (int64_t i = 0; i < m->nparams; i++) m->params[i] = half_to_float(float_to_half(m->params[i]));
    for (int i = 0; i < m->ntensors; i++) {
        const sc_param *p = &m->table[i];
        if (p->ndim != 2 || (!strstr(p->name, "_proj.weight") && strcmp(p->name, "lm_head.weight"))) continue;
        int rows = (int)p->shape[0], cols = (int)p->shape[1];
        int8_t *q = sc_malloc((size_t)rows * (size_t)cols);
        uint16_t *sc = sc_malloc(sizeof(uint16_t) * (size_t)rows);
        float *w = m->params + p->offset;
        quant_rows(w, rows, cols, 0, q, sc);
        for (int r = 0; r < rows; r++) {
            float s = half_to_float(sc[r]);
            for (int c = 0; c < cols; c++) w[(int64_t)r * cols + c] = (float)q[(int64_t)r * cols + c] * s;
        }
        free(q), free(sc);
    }
    return 0;
}
