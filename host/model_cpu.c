/* model_cpu.c — whole-model forward and backward from the CPU ops (see model_cpu.h). The residual add before
 * each norm is fused into rmsnorm_forward, so a layer is: norm1(+add) -> qkv -> rope -> attention -> o_proj ->
 * norm2(+add) -> gate/up -> swiglu -> down, and the down projection is added in the next norm. */
#include "host/model_cpu.h"
#include "host/cpu/kd_loss.h"

#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "host/cpu/ops.h"
#include "host/lora_cpu.h"

typedef struct {
    int C, F, Q, KV, nh, nkv, hd, V, L;
} dims;

static dims dims_of(const sc_config *c) {
    return (dims){c->hidden_size, c->intermediate_size, c->num_attention_heads * c->head_dim,
                  c->num_key_value_heads * c->head_dim, c->num_attention_heads, c->num_key_value_heads,
                  c->head_dim, c->vocab_size, c->num_hidden_layers};
}

/* Lays every buffer out from base and returns the floats used; run once with base = NULL to size the block, so
 * the size and the layout can never disagree. */
static int64_t acts_layout(sc_cpu_acts *a, const sc_config *cfg, int T, float *base) {
    dims d = dims_of(cfg);
    int64_t t = T, used = 0;
#define TAKE(n) (used += (n), base ? base + used - (n) : NULL)
    for (int l = 0; l < d.L; l++) {
        sc_layer_acts *la = &a->layers[l];
        la->x = TAKE(t * d.C);
        la->xn1 = TAKE(t * d.C);
        la->rstd1 = TAKE(t);
        la->q = TAKE(t * d.Q);
        la->k = TAKE(t * d.KV);
        la->v = TAKE(t * d.KV);
        la->att = TAKE(t * d.Q);
        la->lse = TAKE(t * d.nh);
        la->xmid = TAKE(t * d.C);
        la->xn2 = TAKE(t * d.C);
        la->rstd2 = TAKE(t);
        la->gate = TAKE(t * d.F);
        la->up = TAKE(t * d.F);
        la->act = TAKE(t * d.F);
    }
    a->xfinal = TAKE(t * d.C);
    a->xnf = TAKE(t * d.C);
    a->rstdf = TAKE(t);
    a->losses = TAKE(t);
    a->dx = TAKE(t * d.C);
    a->dxn = TAKE(t * d.C);
    a->datt = TAKE(t * d.Q);
    a->dq = TAKE(t * d.Q);
    a->dk = TAKE(t * d.KV);
    a->dv = TAKE(t * d.KV);
    a->dgate = TAKE(t * d.F);
    a->dup = TAKE(t * d.F);
    a->dact = TAKE(t * d.F);
    a->tmp = TAKE(t * d.C);
#undef TAKE
    return used;
}

void cpu_acts_create(sc_cpu_acts *a, const sc_config *cfg, int T) {
    memset(a, 0, sizeof *a);
    a->T = T;
    a->layers = sc_calloc((size_t)cfg->num_hidden_layers, sizeof(sc_layer_acts));
    int64_t total = acts_layout(a, cfg, T, NULL);
    a->block = sc_calloc((size_t)total, sizeof(float));
    acts_layout(a, cfg, T, a->block);
}

void cpu_acts_free(sc_cpu_acts *a) {
    free(a->block);
    free(a->layers);
    memset(a, 0, sizeof *a);
}

static void forward_layers(const sc_model *m, sc_cpu_acts *a, const int32_t *ids, int T) {
    const sc_config *c = &m->cfg;
    dims d = dims_of(c);
    float eps = (float)c->rms_norm_eps;
    float inv_freq[d.hd / 2 > 0 ? d.hd / 2 : 1];
    config_rope_inv_freq(c, inv_freq);
    float *emb = a->tmp;  /* the embedding output is only the first layer's resid_in */
    embedding_forward(emb, ids, m->w.embed, T, d.C);
    const float *resid_in = emb, *delta = NULL;
    for (int l = 0; l < d.L; l++) {
        const sc_layer_view *w = &m->w.layers[l];
        sc_layer_acts *la = &a->layers[l];
        rmsnorm_forward(la->x, la->xn1, la->rstd1, resid_in, delta, w->attn_norm, T, d.C, eps);
        matmul_forward(la->q, la->xn1, w->wq, T, d.C, d.Q);
        matmul_forward(la->k, la->xn1, w->wk, T, d.C, d.KV);
        matmul_forward(la->v, la->xn1, w->wv, T, d.C, d.KV);
        if (a->lora) {
            lora_forward(a->lora, l, LORA_Q, la->q, la->xn1, T);
            lora_forward(a->lora, l, LORA_K, la->k, la->xn1, T);
            lora_forward(a->lora, l, LORA_V, la->v, la->xn1, T);
        }
        bias_forward(la->q, w->bq, T, d.Q); /* HF: the projection's bias comes before RoPE */
        bias_forward(la->k, w->bk, T, d.KV);
        bias_forward(la->v, w->bv, T, d.KV);
        rope_forward_freqs(la->q, T, d.nh, d.hd, 0, inv_freq);
        rope_forward_freqs(la->k, T, d.nkv, d.hd, 0, inv_freq);
        attention_forward(la->att, la->lse, la->q, la->k, la->v, T, d.nh, d.nkv, d.hd);
        float *o = a->dx;  /* scratch: the projection output is consumed at once by the fused add */
        matmul_forward(o, la->att, w->wo, T, d.Q, d.C);
        if (a->lora) lora_forward(a->lora, l, LORA_O, o, la->att, T);
        bias_forward(o, w->bo, T, d.C);
        rmsnorm_forward(la->xmid, la->xn2, la->rstd2, la->x, o, w->mlp_norm, T, d.C, eps);
        matmul_forward(la->gate, la->xn2, w->wgate, T, d.C, d.F);
        matmul_forward(la->up, la->xn2, w->wup, T, d.C, d.F);
        if (a->lora) {
            lora_forward(a->lora, l, LORA_GATE, la->gate, la->xn2, T);
            lora_forward(a->lora, l, LORA_UP, la->up, la->xn2, T);
        }
        bias_forward(la->gate, w->bgate, T, d.F);
        bias_forward(la->up, w->bup, T, d.F);
        swiglu_forward(la->act, la->gate, la->up, (int64_t)T * d.F);
        float *down = a->tmp;
        matmul_forward(down, la->act, w->wdown, T, d.F, d.C);
        if (a->lora) lora_forward(a->lora, l, LORA_DOWN, down, la->act, T);
        bias_forward(down, w->bdown, T, d.C);
        resid_in = la->xmid;
        delta = down;
    }
    rmsnorm_forward(a->xfinal, a->xnf, a->rstdf, resid_in, delta, m->w.final_norm, T, d.C, eps);
}

static void backward_layers(const sc_model *m, sc_cpu_acts *a, const int32_t *ids, int T, sc_view *g) {
    const sc_config *c = &m->cfg;
    dims d = dims_of(c);
    float inv_freq[d.hd / 2 > 0 ? d.hd / 2 : 1];
    config_rope_inv_freq(c, inv_freq);
    /* a->dxn holds dL/dxnf on entry; turn it into dL/d(residual stream) in a->dx */
    rmsnorm_backward(a->dx, g->final_norm, a->dxn, NULL, a->xfinal, a->rstdf, m->w.final_norm, T, d.C);
    for (int l = d.L - 1; l >= 0; l--) {
        const sc_layer_view *w = &m->w.layers[l];
        sc_layer_view *gw = &g->layers[l];
        sc_layer_acts *la = &a->layers[l];
        /* MLP branch: the down projection's output was added to the stream */
        memset(a->dact, 0, sizeof(float) * (size_t)T * d.F);
        bias_backward(gw->bdown, a->dx, T, d.C);
        matmul_backward(a->dact, gw->wdown, a->dx, la->act, w->wdown, T, d.F, d.C);
        if (a->lora) lora_backward(a->lora, l, LORA_DOWN, a->dact, a->dx, la->act, T);
        swiglu_backward(a->dgate, a->dup, a->dact, la->gate, la->up, (int64_t)T * d.F);
        bias_backward(gw->bgate, a->dgate, T, d.F);
        bias_backward(gw->bup, a->dup, T, d.F);
        memset(a->dxn, 0, sizeof(float) * (size_t)T * d.C);
        matmul_backward(a->dxn, gw->wgate, a->dgate, la->xn2, w->wgate, T, d.C, d.F);
        matmul_backward(a->dxn, gw->wup, a->dup, la->xn2, w->wup, T, d.C, d.F);
        if (a->lora) {
            lora_backward(a->lora, l, LORA_GATE, a->dxn, a->dgate, la->xn2, T);
            lora_backward(a->lora, l, LORA_UP, a->dxn, a->dup, la->xn2, T);
        }
        rmsnorm_backward(a->dx, gw->mlp_norm, a->dxn, a->dx, la->xmid, la->rstd2, w->mlp_norm, T, d.C);
        /* attention branch */
        memset(a->datt, 0, sizeof(float) * (size_t)T * d.Q);
        bias_backward(gw->bo, a->dx, T, d.C);
        matmul_backward(a->datt, gw->wo, a->dx, la->att, w->wo, T, d.Q, d.C);
        if (a->lora) lora_backward(a->lora, l, LORA_O, a->datt, a->dx, la->att, T);
        attention_backward(a->dq, a->dk, a->dv, a->datt, la->q, la->k, la->v, la->att, la->lse, T, d.nh, d.nkv, d.hd);
        rope_backward_freqs(a->dq, T, d.nh, d.hd, 0, inv_freq);
        rope_backward_freqs(a->dk, T, d.nkv, d.hd, 0, inv_freq);
        bias_backward(gw->bq, a->dq, T, d.Q);
        bias_backward(gw->bk, a->dk, T, d.KV);
        bias_backward(gw->bv, a->dv, T, d.KV);
        memset(a->dxn, 0, sizeof(float) * (size_t)T * d.C);
        matmul_backward(a->dxn, gw->wq, a->dq, la->xn1, w->wq, T, d.C, d.Q);
        matmul_backward(a->dxn, gw->wk, a->dk, la->xn1, w->wk, T, d.C, d.KV);
        matmul_backward(a->dxn, gw->wv, a->dv, la->xn1, w->wv, T, d.C, d.KV);
        if (a->lora) {
            lora_backward(a->lora, l, LORA_Q, a->dxn, a->dq, la->xn1, T);
            lora_backward(a->lora, l, LORA_K, a->dxn, a->dk, la->xn1, T);
            lora_backward(a->lora, l, LORA_V, a->dxn, a->dv, la->xn1, T);
        }
        rmsnorm_backward(a->dx, gw->attn_norm, a->dxn, a->dx, la->x, la->rstd1, w->attn_norm, T, d.C);
    }
    if (g->embed) embedding_backward(g->embed, a->dx, ids, T, d.C); /* NULL: a frozen base (LoRA) */
}

double model_cpu_step(const sc_model *m, sc_cpu_acts *a, const int32_t *ids, const int32_t *targets, int T,
                      float *logits_out, float *grads, float grad_scale, int *counted) {
    const sc_config *c = &m->cfg;
    forward_layers(m, a, ids, T);
    int n = 0;
    for (int t = 0; t < T; t++) n += targets[t] >= 0;
    if (counted) *counted = n;
    sc_view g = {0};
    int backward = grads || (a->lora && a->lora->grads);
    if (grads) model_view(m, grads, &g);
    else if (backward) g.layers = sc_calloc((size_t)c->num_hidden_layers, sizeof(sc_layer_view)); /* all NULL */
    double loss = classifier_forward_backward(a->losses, logits_out, backward ? a->dxn : NULL, grads ? g.lm_head : NULL,
                                              a->xnf, m->w.lm_head, targets, T, c->hidden_size, c->vocab_size,
                                              grad_scale);
    if (backward) {
        backward_layers(m, a, ids, T, &g);
        view_free(&g);
    }
    return loss;
}

double model_cpu_step_kd(const sc_model *m, sc_cpu_acts *a, const int32_t *ids, const int32_t *targets, int T,
                         const kd_targets *kd, float *grads, float grad_scale, int *counted, double *ce_sum) {
    const sc_config *c = &m->cfg;
    forward_layers(m, a, ids, T);
    int n = 0;
    for (int t = 0; t < T; t++) n += targets[t] >= 0;
    if (counted) *counted = n;
    sc_view g = {0};
    int backward = grads || (a->lora && a->lora->grads);
    if (grads) model_view(m, grads, &g);
    else if (backward) g.layers = sc_calloc((size_t)c->num_hidden_layers, sizeof(sc_layer_view)); /* all NULL */
    float *ce = ce_sum ? sc_malloc(sizeof(float) * (size_t)T) : NULL;
    double loss = kd_classifier_forward_backward(a->losses, ce, backward ? a->dxn : NULL, grads ? g.lm_head : NULL, a->xnf,
                                                 m->w.lm_head, targets, kd, T, c->hidden_size, c->vocab_size, grad_scale);
    if (ce_sum) {
        double s = 0;
        for (int t = 0; t < T; t++) s += ce[t];
        *ce_sum = s;
        free(ce);
    }
    if (backward) {
        backward_layers(m, a, ids, T, &g);
        view_free(&g);
    }
    return loss;
}
