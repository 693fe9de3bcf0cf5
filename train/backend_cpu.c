/* backend_cpu.c — the CPU training backend: FP32 weights, gradients and AdamW moments in host memory,
 * forward/backward by host/model_cpu.c one sequence at a time (a micro-batch reuses one set of activations), the
 * update by adamw.c. Deterministic for a given thread count. */
#include <stdlib.h>
#include <string.h>

#include "train/backend.h"
#include "host/error.h"
#include "host/cpu/kd_loss.h"
#include "host/model_cpu.h"

typedef struct {
    sc_cpu_acts acts;
    float *grads, *m, *v;   /* NULL when opened for evaluation only */
    train_kd kd;            /* kd.next NULL: plain cross-entropy */
} cpu_impl;

static int cpu_run(train_backend *b, const int32_t *ids, const int32_t *targets, int n, int T, float *grads,
                   float grad_scale, double *loss_sum, int64_t *counted) {
    cpu_impl *c = b->impl;
    if (T > c->acts.T) return sc_fail("cpu backend: sequence of %d tokens exceeds the %d it was opened for", T, c->acts.T);
    double loss = 0;
    int64_t cnt = 0;
    for (int i = 0; i < n; i++) {
        int k = 0;
        const int32_t *si = ids + (int64_t)i * T, *st = targets + (int64_t)i * T;
        if (grads && c->kd.next) { /* training with a teacher */
            kd_targets kt;
            if (c->kd.next(c->kd.ctx, si, T, &kt)) return -1;
            loss += model_cpu_step_kd(b->model, &c->acts, si, st, T, &kt, grads, grad_scale, &k, NULL);
        } else {
            loss += model_cpu_step(b->model, &c->acts, si, st, T, NULL, grads, grad_scale, &k);
        }
        cnt += k;
    }
    *loss_sum = loss;
    *counted = cnt;
    return 0;
}

static int cpu_accumulate(train_backend *b, const int32_t *ids, const int32_t *targets, int n, int T,
                          float grad_scale, double *loss_sum, int64_t *counted) {
    cpu_impl *c = b->impl;
    if (!c->grads) return sc_fail("cpu backend: opened for evaluation only");
    return cpu_run(b, ids, targets, n, T, c->grads, grad_scale, loss_sum, counted);
}

static int cpu_evaluate(train_backend *b, const int32_t *ids, const int32_t *targets, int n, int T, double *loss_sum,
                        int64_t *counted) {
    return cpu_run(b, ids, targets, n, T, NULL, 0.0f, loss_sum, counted);
}

static int cpu_grad_sumsq(train_backend *b, double *out) {
    cpu_impl *c = b->impl;
    *out = grad_sumsq(c->grads, b->model->nparams);
    return 0;
}

static int cpu_apply(train_backend *b, float grad_mul, const adamw_hparams *h) {
    cpu_impl *c = b->impl;
    sc_model *m = b->model;
    adamw_step(m->table, m->ntensors, m->params, c->grads, c->m, c->v, grad_mul, h);
    grad_zero(c->grads, m->nparams);
    return 0;
}

static int cpu_zero_grads(train_backend *b) {
    cpu_impl *c = b->impl;
    grad_zero(c->grads, b->model->nparams);
    return 0;
}

static int cpu_read_state(train_backend *b, const float **m, const float **v) {
    cpu_impl *c = b->impl;
    *m = c->m, *v = c->v;
    return 0;
}

static int cpu_write_state(train_backend *b, const float *m, const float *v) {
    cpu_impl *c = b->impl;
    size_t bytes = sizeof(float) * (size_t)b->model->nparams;
    memcpy(c->m, m, bytes);
    memcpy(c->v, v, bytes);
    return 0;
}

static float *cpu_host_grads(train_backend *b) { return ((cpu_impl *)b->impl)->grads; }

static void cpu_close(train_backend *b) {
    cpu_impl *c = b->impl;
    if (!c) return;
    cpu_acts_free(&c->acts);
    free(c->grads), free(c->m), free(c->v);
    free(c);
    b->impl = NULL;
}

void backend_cpu_set_kd(train_backend *b, const train_kd *kd) { ((cpu_impl *)b->impl)->kd = *kd; }

void backend_cpu_open(train_backend *b, sc_model *m, int max_T, int training) {
    memset(b, 0, sizeof *b);
    cpu_impl *c = sc_calloc(1, sizeof *c);
    cpu_acts_create(&c->acts, &m->cfg, max_T);
    if (training) {
        size_t n = (size_t)m->nparams;
        c->grads = sc_calloc(n, sizeof(float));
        c->m = sc_calloc(n, sizeof(float));
        c->v = sc_calloc(n, sizeof(float));
    }
    b->name = "cpu";
    b->model = m;
    b->impl = c;
    b->accumulate = cpu_accumulate;
    b->evaluate = cpu_evaluate;
    b->grad_sumsq = cpu_grad_sumsq;
    b->apply = cpu_apply;
    b->zero_grads = cpu_zero_grads;
    b->read_state = cpu_read_state;
    b->write_state = cpu_write_state;
    b->host_grads = cpu_host_grads;
    b->close = cpu_close;
}
