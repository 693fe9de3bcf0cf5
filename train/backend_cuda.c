/* backend_cuda.c — the CUDA training backend (backend.h) over host/cuda_model.c: FP16 working weights and
 * activations, FP32 weight gradients, dynamic loss scaling in the trainer (fp16 = 1). Two placements (plan.h):
 *   full    — FP32 master weights, gradients and AdamW moments on the device; AdamW by kernels/adamw.cu, which also
 *             rewrites the FP16 working weights; the gradient norm by kn_sumsq (fixed order).
 *   offload — only FP16 weights and activation checkpoints (layer recompute) on the device; each layer's FP32
 *             gradients stream to a pinned host block during backward; norm and AdamW on the host (adamw.c,
 *             threaded) over the FP32 master in model->params, then the FP16 weights go back up.
 * Both accumulate the same FP32 gradients in the same order, so they differ only where AdamW runs. Distillation
 * (backend_cuda_set_kd): the teacher rows of each training sequence go up with it (cuda_model_step_kd). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/backend.h"
#include "host/error.h"
#include "train/plan.h"

#ifdef SC_HAVE_KERNELS
#include "host/cuda_model.h"
#include "host/cpu/kd_loss.h"
#include "train/backend_cuda_step.h"

typedef struct {
    cuda_model *cm;
    int offload;
    int grads_on_host; /* offload: the sink holds the complete gradient block */
    float *m, *v;      /* full: host copies for checkpoints (allocated on first read_state); offload: the moments */
    train_kd kd;       /* kd.next NULL: plain cross-entropy */
} cuda_impl;

int backend_cuda_seq_step(cuda_model *cm, const train_kd *kd, const int32_t *si, const int32_t *st, int T, int training,
                          float grad_scale, double *loss_sum, int64_t *counted) {
    double l = 0;
    int k = 0;
    if (training && kd->next) { /* training with a teacher: its rows for this sequence, in order */
        kd_targets kt;
        if (kd->next(kd->ctx, si, T, &kt) || cuda_model_step_kd(cm, si, st, T, &kt, 1, grad_scale, &l, NULL, &k))
            return -1;
    } else if (cuda_model_step(cm, si, st, T, NULL, training, grad_scale, &l, &k)) {
        return -1;
    }
    *loss_sum += l, *counted += k;
    return 0;
}

static int cu_run(train_backend *b, const int32_t *ids, const int32_t *targets, int n, int T, int want_grads,
                  float grad_scale, double *loss_sum, int64_t *counted) {
    cuda_impl *c = b->impl;
    double loss = 0;
    int64_t cnt = 0;
    for (int i = 0; i < n; i++)
        if (backend_cuda_seq_step(c->cm, &c->kd, ids + (int64_t)i * T, targets + (int64_t)i * T, T, want_grads,
                                  grad_scale, &loss, &cnt))
            return -1;
    if (want_grads) c->grads_on_host = 0;
    *loss_sum = loss;
    *counted = cnt;
    return 0;
}

static int cu_accumulate(train_backend *b, const int32_t *ids, const int32_t *targets, int n, int T, float grad_scale,
                         double *loss_sum, int64_t *counted) {
    return cu_run(b, ids, targets, n, T, 1, grad_scale, loss_sum, counted);
}

static int cu_evaluate(train_backend *b, const int32_t *ids, const int32_t *targets, int n, int T, double *loss_sum,
                       int64_t *counted) {
    return cu_run(b, ids, targets, n, T, 0, 0.0f, loss_sum, counted);
}

/* offload: the embedding/lm_head/final-norm part still on the device joins the streamed layers in the sink */
static float *offload_grads(train_backend *b) {
    cuda_impl *c = b->impl;
    float *sink = cuda_model_grad_sink(c->cm);
    if (!c->grads_on_host) {
        if (cuda_model_read_grads(c->cm, sink)) return NULL;
        c->grads_on_host = 1;
    }
    return sink;
}

static int cu_grad_sumsq(train_backend *b, double *out) {
    cuda_impl *c = b->impl;
    if (!c->offload) return cuda_model_grad_sumsq(c->cm, out);
    const float *g = offload_grads(b);
    if (!g) return -1;
    *out = grad_sumsq(g, b->model->nparams);
    return 0;
}

static int cu_zero_grads(train_backend *b) {
    cuda_impl *c = b->impl;
    cuda_model_zero_grads(c->cm);
    c->grads_on_host = 0;
    return 0;
}

static int cu_apply(train_backend *b, float grad_mul, const adamw_hparams *h) {
    cuda_impl *c = b->impl;
    sc_model *m = b->model;
    if (c->offload) {
        const float *g = offload_grads(b);
        if (!g) return -1;
        adamw_step(m->table, m->ntensors, m->params, g, c->m, c->v, grad_mul, h);
        if (cuda_model_upload(c->cm, m->params)) return -1;
    } else {
        for (int i = 0; i < m->ntensors; i++) {
            const sc_param *t = &m->table[i];
            float wd = t->ndim >= 2 ? h->weight_decay : 0.0f; /* as adamw_step: norms are not decayed */
            cuda_model_adamw(c->cm, t->offset, t->numel, grad_mul, wd, h->lr, h->beta1, h->beta2, h->eps, h->t);
        }
    }
    return cu_zero_grads(b);
}

static int cu_read_state(train_backend *b, const float **m, const float **v) {
    cuda_impl *c = b->impl;
    if (!c->offload) {
        size_t n = (size_t)b->model->nparams;
        if (!c->m) c->m = sc_malloc(sizeof(float) * n), c->v = sc_malloc(sizeof(float) * n);
        if (cuda_model_get_master(c->cm, b->model->params, c->m, c->v)) return -1;
    }
    *m = c->m, *v = c->v;
    return 0;
}

static int cu_write_state(train_backend *b, const float *m, const float *v) {
    cuda_impl *c = b->impl;
    if (!c->offload) return cuda_model_set_master(c->cm, b->model->params, m, v);
    size_t bytes = sizeof(float) * (size_t)b->model->nparams;
    memcpy(c->m, m, bytes);
    memcpy(c->v, v, bytes);
    return cuda_model_upload(c->cm, b->model->params);
}

static float *cu_host_grads(train_backend *b) {
    cuda_impl *c = b->impl;
    return c->offload ? offload_grads(b) : NULL;
}

static void cu_close(train_backend *b) {
    cuda_impl *c = b->impl;
    if (!c) return;
    cuda_model_close(c->cm);
    free(c->m), free(c->v);
    free(c);
    b->impl = NULL;
}

void backend_cuda_set_kd(train_backend *b, const train_kd *kd) { ((cuda_impl *)b->impl)->kd = *kd; }

int backend_cuda_open(train_backend *b, sc_model *m, int max_T, int placement, int kd_k) {
    memset(b, 0, sizeof *b);
    if (placement != PLAN_FULL && placement != PLAN_OFFLOAD)
        return sc_fail("cuda backend: placement must be full or offload");
    int offload = placement == PLAN_OFFLOAD;
    int flags = plan_cuda_flags(placement); /* the flags the plan laid out */
    if (kd_k > 0) flags |= CUDA_MODEL_KD(kd_k);
    cuda_impl *c = sc_calloc(1, sizeof *c);
    c->offload = offload;
    if (cuda_model_open(&c->cm, m, max_T, flags)) {
        free(c);
        return -1;
    }
    if (offload) {
        c->m = sc_calloc((size_t)m->nparams, sizeof(float));
        c->v = sc_calloc((size_t)m->nparams, sizeof(float));
    } else if (cuda_model_set_master(c->cm, m->params, NULL, NULL)) {
        cuda_model_close(c->cm);
        free(c);
        return -1;
    }
    static const train_backend ops = {.accumulate = cu_accumulate, .evaluate = cu_evaluate, .grad_sumsq = cu_grad_sumsq,
                                      .apply = cu_apply, .zero_grads = cu_zero_grads, .read_state = cu_read_state,
                                      .write_state = cu_write_state, .host_grads = cu_host_grads, .close = cu_close};
    backend_cuda_bind(b, &ops, offload ? "cuda offload" : "cuda full", m, c);
    return 0;
}

void backend_cuda_bind(train_backend *b, const train_backend *ops, const char *name, sc_model *m, void *impl) {
    *b = *ops;
    b->name = name, b->model = m, b->fp16 = 1, b->impl = impl;
}

int backend_cuda_eval_only(train_backend *b, const int32_t *ids, const int32_t *targets, int n, int T,
                           float grad_scale, double *loss_sum, int64_t *counted) {
    (void)ids, (void)targets, (void)n, (void)T, (void)grad_scale, (void)loss_sum, (void)counted;
    return sc_fail("%s backend: opened for evaluation only", b->name);
}

int backend_cuda_open_eval(train_backend *b, sc_model *m, int max_T) {
    memset(b, 0, sizeof *b);
    cuda_impl *c = sc_calloc(1, sizeof *c);
    if (cuda_model_open(&c->cm, m, max_T, 0)) {
        free(c);
        return -1;
    }
    static const train_backend ops = {.accumulate = backend_cuda_eval_only, .evaluate = cu_evaluate, .close = cu_close};
    backend_cuda_bind(b, &ops, "cuda eval", m, c);
    return 0;
}

void backend_cuda_describe(const train_backend *b, char *buf, size_t n) {
    const cuda_impl *c = b->impl;
    char mem[32];
    snprintf(buf, n, "%s, device arena %s", cuda_model_device_name(c->cm),
             plan_fmt_bytes(mem, sizeof mem, (int64_t)cuda_model_device_bytes(c->cm)));
}

size_t backend_cuda_device_bytes(const train_backend *b) {
    return cuda_model_device_bytes(((const cuda_impl *)b->impl)->cm);
}
#else
void backend_cuda_set_kd(train_backend *b, const train_kd *kd) { (void)b, (void)kd; }

int backend_cuda_open_eval(train_backend *b, sc_model *m, int max_T) {
    return backend_cuda_open(b, m, max_T, 0, 0);
}

int backend_cuda_open(train_backend *b, sc_model *m, int max_T, int placement, int kd_k) {
    (void)m, (void)max_T, (void)placement, (void)kd_k;
    memset(b, 0, sizeof *b);
    return sc_fail("this build has no CUDA kernels (built without nvcc); use --device cpu");
}

void backend_cuda_describe(const train_backend *b, char *buf, size_t n) {
    (void)b;
    snprintf(buf, n, "no CUDA");
}

size_t backend_cuda_device_bytes(const train_backend *b) {
    (void)b;
    return 0;
}
#endif
