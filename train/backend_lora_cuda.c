/* backend_lora_cuda.c — the CUDA LoRA training backend (backend.h) over host/cuda_model.c opened frozen with an
 * adapter (host/cuda_lora.c): the base's FP16 (or INT8) weights on the device get no gradient block and no dW
 * GEMMs; the adapter's FP16 copies, saved A x and FP32 gradients (in the recompute placement two layer slots of
 * them, streamed to a pinned host accumulator) are on the device. The optimizer stays on the
 * host, as in the offload placement of full training: the FP32 master adapter is ad->params and the moments are
 * host blocks, updated by train/adamw.c — the adapter is small (15M parameters for a 1.3B base at rank 16: its
 * gradients cross the bus once per optimizer step, not per sequence), it keeps 3 x 4 bytes per parameter off a
 * 2 GB card, and it makes the update, the checkpoints and a resume the CPU LoRA backend's own arithmetic and files
 * (CPU <-> CUDA checkpoints are interchangeable). FP16 activations: b->fp16 = 1, the trainer's dynamic loss
 * scaling; the gradient norm is taken on the host copy (inf/nan when any is). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/backend.h"
#include "host/cuda_model.h"
#include "host/error.h"
#include "train/plan.h"

int backend_lora_cuda_flags(int int8, int recompute) {
    /* recompute is the small-card placement: the checkpoints in pinned host memory too (a layer's input crosses the
     * bus twice per sequence), an untied model's embedding table on the host (T rows go up per sequence), and the
     * adapter's gradients streamed to a pinned host accumulator layer by layer (two layer slots on the device) */
    return CUDA_MODEL_GRADS | CUDA_MODEL_FROZEN | (int8 ? CUDA_MODEL_INT8 : 0) |
           (recompute ? CUDA_MODEL_RECOMPUTE | CUDA_MODEL_HOST_CKPT | CUDA_MODEL_HOST_EMBED | CUDA_MODEL_STREAM_GRADS
                      : 0);
}

#ifdef SC_HAVE_KERNELS
#include "train/backend_cuda_step.h"

typedef struct {
    cuda_model *cm;
    float *grads, *m, *v; /* host, adapter-shaped: the gradients as last read down, the AdamW moments */
    int grads_current;    /* grads holds the device block as it is now */
    train_kd kd;
    uint64_t seed;
    int64_t seq_step, seq_index; /* the dropout key's counters, as backend_lora.c */
} lcu_impl;

static int lcu_run(train_backend *b, const int32_t *ids, const int32_t *targets, int n, int T, int training,
                   float grad_scale, double *loss_sum, int64_t *counted) {
    lcu_impl *c = b->impl;
    int drop = training && b->lora->dropout > 0;
    double loss = 0;
    int64_t cnt = 0;
    for (int i = 0; i < n; i++) {
        uint64_t key = 0;
        if (training) {
            if (b->step != c->seq_step) c->seq_step = b->step, c->seq_index = 0;
            key = backend_lora_dropout_key(c->seed, b->step, c->seq_index++);
        }
        cuda_model_lora_dropout(c->cm, drop, key);
        if (backend_cuda_seq_step(c->cm, &c->kd, ids + (int64_t)i * T, targets + (int64_t)i * T, T, training,
                                  grad_scale, &loss, &cnt))
            return -1;
    }
    cuda_model_lora_dropout(c->cm, 0, 0);
    if (training) c->grads_current = 0;
    *loss_sum = loss;
    *counted = cnt;
    return 0;
}

static int lcu_accumulate(train_backend *b, const int32_t *ids, const int32_t *targets, int n, int T,
                          float grad_scale, double *loss_sum, int64_t *counted) {
    return lcu_run(b, ids, targets, n, T, 1, grad_scale, loss_sum, counted);
}

static int lcu_evaluate(train_backend *b, const int32_t *ids, const int32_t *targets, int n, int T, double *loss_sum,
                        int64_t *counted) {
    return lcu_run(b, ids, targets, n, T, 0, 0.0f, loss_sum, counted);
}

static float *lcu_host_grads(train_backend *b) {
    lcu_impl *c = b->impl;
    if (!c->grads_current) {
        if (cuda_model_lora_read_grads(c->cm, c->grads)) return NULL;
        c->grads_current = 1;
    }
    return c->grads;
}

static int lcu_grad_sumsq(train_backend *b, double *out) {
    const float *g = lcu_host_grads(b);
    if (!g) return -1;
    *out = grad_sumsq(g, b->lora->nparams);
    return 0;
}

static int lcu_zero_grads(train_backend *b) {
    lcu_impl *c = b->impl;
    cuda_model_lora_zero_grads(c->cm);
    grad_zero(c->grads, b->lora->nparams);
    c->grads_current = 1;
    return 0;
}

static int lcu_apply(train_backend *b, float grad_mul, const adamw_hparams *h) {
    lcu_impl *c = b->impl;
    sc_lora *ad = b->lora;
    const float *g = lcu_host_grads(b);
    if (!g) return -1;
    adamw_step(ad->table, ad->ntensors, ad->params, g, c->m, c->v, grad_mul, h);
    if (cuda_model_lora_upload(c->cm, ad->params)) return -1;
    return lcu_zero_grads(b);
}

static int lcu_read_state(train_backend *b, const float **m, const float **v) {
    lcu_impl *c = b->impl;
    *m = c->m, *v = c->v;
    return 0;
}

/* On resume: the moments, and the adapter's weights (b->lora->params, already loaded) up to the device. */
static int lcu_write_state(train_backend *b, const float *m, const float *v) {
    lcu_impl *c = b->impl;
    size_t bytes = sizeof(float) * (size_t)b->lora->nparams;
    memcpy(c->m, m, bytes);
    memcpy(c->v, v, bytes);
    return cuda_model_lora_upload(c->cm, b->lora->params);
}

static void lcu_close(train_backend *b) {
    lcu_impl *c = b->impl;
    if (!c) return;
    cuda_model_close(c->cm);
    free(c->grads), free(c->m), free(c->v);
    free(c);
    b->impl = NULL;
}

/* b bound to ops over a LoRA model of base m and adapter ad opened with flags; -1 (sc_error) when it does not open. */
static int lcu_open(train_backend *b, const train_backend *ops, const char *name, sc_model *m, sc_lora *ad, int max_T,
                    int flags, uint64_t seed) {
    memset(b, 0, sizeof *b);
    lcu_impl *c = sc_calloc(1, sizeof *c);
    if (cuda_model_open_lora(&c->cm, m, ad, max_T, flags)) {
        free(c);
        return -1;
    }
    c->grads_current = 1; /* open zeroed the device gradients */
    c->seed = seed;
    c->seq_step = -1;
    backend_cuda_bind(b, ops, name, m, c);
    b->lora = ad;
    return 0;
}

/* `smallcoder eval --lora`: the frozen FP16 base and the adapter's FP16 copies, no gradients, no backward buffers
 * (the model opened without CUDA_MODEL_GRADS), so evaluation takes less device memory than training. */
int backend_lora_cuda_open_eval(train_backend *b, sc_model *m, sc_lora *ad, int max_T) {
    static const train_backend ops = {.accumulate = backend_cuda_eval_only, .evaluate = lcu_evaluate, .close = lcu_close};
    return lcu_open(b, &ops, "cuda lora eval", m, ad, max_T, CUDA_MODEL_FROZEN, 0);
}

void backend_lora_cuda_set_kd(train_backend *b, const train_kd *kd) { ((lcu_impl *)b->impl)->kd = *kd; }

void backend_lora_cuda_describe(const train_backend *b, char *buf, size_t n) {
    const lcu_impl *c = b->impl;
    char mem[32];
    snprintf(buf, n, "%s, device arena %s", cuda_model_device_name(c->cm),
             plan_fmt_bytes(mem, sizeof mem, (int64_t)cuda_model_device_bytes(c->cm)));
}

size_t backend_lora_cuda_device_bytes(const train_backend *b) {
    return cuda_model_device_bytes(((const lcu_impl *)b->impl)->cm);
}

int backend_lora_cuda_open(train_backend *b, sc_model *m, sc_lora *ad, int max_T, int int8, int recompute, int kd_k,
                           uint64_t seed) {
    int flags = backend_lora_cuda_flags(int8, recompute);
    if (kd_k > 0) flags |= CUDA_MODEL_KD(kd_k);
    static const train_backend ops = {.accumulate = lcu_accumulate, .evaluate = lcu_evaluate,
                                      .grad_sumsq = lcu_grad_sumsq, .apply = lcu_apply, .zero_grads = lcu_zero_grads,
                                      .read_state = lcu_read_state, .write_state = lcu_write_state,
                                      .host_grads = lcu_host_grads, .close = lcu_close};
    if (lcu_open(b, &ops, int8 ? "cuda lora (int8 base)" : "cuda lora", m, ad, max_T, flags, seed)) return -1;
    lcu_impl *c = b->impl;
    size_t n = (size_t)(ad->nparams ? ad->nparams : 1);
    c->grads = sc_calloc(n, sizeof(float));
    c->m = sc_calloc(n, sizeof(float));
    c->v = sc_calloc(n, sizeof(float));
    return 0;
}
#else
void backend_lora_cuda_set_kd(train_backend *b, const train_kd *kd) { (void)b, (void)kd; }

void backend_lora_cuda_describe(const train_backend *b, char *buf, size_t n) {
    (void)b;
    snprintf(buf, n, "no CUDA");
}

size_t backend_lora_cuda_device_bytes(const train_backend *b) {
    (void)b;
    return 0;
}

int backend_lora_cuda_open(train_backend *b, sc_model *m, sc_lora *ad, int max_T, int int8, int recompute, int kd_k,
                           uint64_t seed) {
    (void)m, (void)ad, (void)max_T, (void)int8, (void)recompute, (void)kd_k, (void)seed;
    memset(b, 0, sizeof *b);
    return sc_fail("this build has no CUDA kernels (built without nvcc); use --device cpu");
}

int backend_lora_cuda_open_eval(train_backend *b, sc_model *m, sc_lora *ad, int max_T) {
    return backend_lora_cuda_open(b, m, ad, max_T, 0, 0, 0, 0);
}
#endif
