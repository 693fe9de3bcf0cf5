/* backend_lora.c — the CPU LoRA training backend: the base model frozen in FP32 host memory (optionally rounded to
 * FP16/INT8 by lora_base_precision), gradients, AdamW moments and updates only for the adapter, which is a few MB.
 * Forward/backward is host/model_cpu.c with the adapter branch of host/lora_cpu.c; the base's weights get no
 * gradient block at all. Deterministic for a given thread count, like the CPU backend. */
#include <stdlib.h>
#include <string.h>

#include "train/backend.h"
#include "host/error.h"
#include "host/cpu/kd_loss.h"
#include "host/lora_cpu.h"
#include "host/model_cpu.h"
#include "host/rng.h"

typedef struct {
    sc_cpu_acts acts;
    lora_acts la;
    float *grads, *m, *v;   /* adapter-shaped; NULL when opened for evaluation only */
    train_kd kd;
    uint64_t seed;
    int64_t seq_step;       /* the step seq_index counts in */
    int64_t seq_index;      /* training sequences seen in that step */
} lora_impl;

uint64_t backend_lora_dropout_key(uint64_t seed, int64_t step, int64_t seq_index) {
    uint64_t x = seed ^ 0x64726f706f7574ull; /* "dropout" */
    uint64_t k = splitmix64(&x) ^ (uint64_t)step * 0x9e3779b97f4a7c15ull;
    k ^= splitmix64(&k) + (uint64_t)seq_index;
    return splitmix64(&k);
}

/* A different dropout mask for every training sequence, the same on a resumed run: (seed, step, sequence). */
static uint64_t dropout_key(lora_impl *c, int64_t step) {
    if (step != c->seq_step) c->seq_step = step, c->seq_index = 0;
    return backend_lora_dropout_key(c->seed, step, c->seq_index++);
}

static int lora_run(train_backend *b, const int32_t *ids, const int32_t *targets, int n, int T, int training,
                    float grad_scale, double *loss_sum, int64_t *counted) {
    lora_impl *c = b->impl;
    if (T > c->acts.T) return sc_fail("lora backend: sequence of %d tokens exceeds the %d it was opened for", T, c->acts.T);
    c->la.grads = training ? c->grads : NULL;
    c->la.dropout_on = training && b->lora->dropout > 0;
    double loss = 0;
    int64_t cnt = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        const int32_t *si = ids + (int64_t)i * T, *st = targets + (int64_t)i * T;
        if (training) c->la.dropout_key = dropout_key(c, b->step);
        if (training && c->kd.next) {
            kd_targets kt;
            if (c->kd.next(c->kd.ctx, si, T, &kt)) return -1;
            loss += model_cpu_step_kd(b->model, &c->acts, si, st, T, &kt, NULL, grad_scale, &k, NULL);
        } else {
            loss += model_cpu_step(b->model, &c->acts, si, st, T, NULL, NULL, grad_scale, &k);
        }
        cnt += k;
    }
    c->la.grads = NULL;
    *loss_sum = loss;
    *counted = cnt;
    return 0;
}

static int lora_accumulate(train_backend *b, const int32_t *ids, const int32_t *targets, int n, int T,
                           float grad_scale, double *loss_sum, int64_t *counted) {
    lora_impl *c = b->impl;
    if (!c->grads) return sc_fail("lora backend: opened for evaluation only");
    return lora_run(b, ids, targets, n, T, 1, grad_scale, loss_sum, counted);
}

static int lora_evaluate(train_backend *b, const int32_t *ids, const int32_t *targets, int n, int T, double *loss_sum,
                         int64_t *counted) {
    return lora_run(b, ids, targets, n, T, 0, 0.0f, loss_sum, counted);
}

static int lora_grad_sumsq(train_backend *b, double *out) {
    *out = grad_sumsq(((lora_impl *)b->impl)->grads, b->lora->nparams);
    return 0;
}

static int lora_apply(train_backend *b, float grad_mul, const adamw_hparams *h) {
    lora_impl *c = b->impl;
    sc_lora *ad = b->lora;
    adamw_step(ad->table, ad->ntensors, ad->params, c->grads, c->m, c->v, grad_mul, h);
    grad_zero(c->grads, ad->nparams);
    return 0;
}

static int lora_zero_grads(train_backend *b) {
    grad_zero(((lora_impl *)b->impl)->grads, b->lora->nparams);
    return 0;
}

static int lora_read_state(train_backend *b, const float **m, const float **v) {
    lora_impl *c = b->impl;
    *m = c->m, *v = c->v;
    return 0;
}

static int lora_write_state(train_backend *b, const float *m, const float *v) {
    lora_impl *c = b->impl;
    size_t bytes = sizeof(float) * (size_t)b->lora->nparams;
    memcpy(c->m, m, bytes);
    memcpy(c->v, v, bytes);
    return 0;
}

static float *lora_host_grads(train_backend *b) { return ((lora_impl *)b->impl)->grads; }

static void lora_close(train_backend *b) {
    lora_impl *c = b->impl;
    if (!c) return;
    cpu_acts_free(&c->acts);
    lora_acts_free(&c->la);
    free(c->grads), free(c->m), free(c->v);
    free(c);
    b->impl = NULL;
}

void backend_lora_set_kd(train_backend *b, const train_kd *kd) { ((lora_impl *)b->impl)->kd = *kd; }

void backend_lora_open(train_backend *b, sc_model *m, sc_lora *ad, int max_T, int training, uint64_t seed) {
    memset(b, 0, sizeof *b);
    lora_impl *c = sc_calloc(1, sizeof *c);
    cpu_acts_create(&c->acts, &m->cfg, max_T);
    lora_acts_create(&c->la, ad, max_T);
    c->acts.lora = &c->la;
    c->seed = seed;
    c->seq_step = -1;
    if (training) {
        size_t n = (size_t)(ad->nparams ? ad->nparams : 1);
        c->grads = sc_calloc(n, sizeof(float));
        c->m = sc_calloc(n, sizeof(float));
        c->v = sc_calloc(n, sizeof(float));
    }
    b->name = "cpu lora";
    b->model = m;
    b->lora = ad;
    b->impl = c;
    b->accumulate = lora_accumulate;
    b->evaluate = lora_evaluate;
    b->grad_sumsq = lora_grad_sumsq;
    b->apply = lora_apply;
    b->zero_grads = lora_zero_grads;
    b->read_state = lora_read_state;
    b->write_state = lora_write_state;
    b->host_grads = lora_host_grads;
    b->close = lora_close;
}
