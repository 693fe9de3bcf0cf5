/* engine.h — the inference backend interface: a model's weights plus one way of running them (engine_cpu.c, or
 * engine_cuda.c on a GPU). A session (sc_kv) is one sequence's KV cache, made by engine_kv_create (device memory
 * for the CUDA engine); forward appends tokens to it and returns the logits of the last one. One forward at a time
 * per engine. */
#ifndef SC_INFER_ENGINE_H
#define SC_INFER_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "host/kv_cache.h"
#include "host/lora.h"
#include "host/weights.h"

typedef struct sc_engine sc_engine;

/* LoRA adapters are applied without merging: the engine keeps one base and, for each targeted linear layer and
 * each active adapter i, adds scale_i * scaling_i * (x A_i^T) B_i^T (host/cpu/lora_apply.c, kernels/lora_apply.cu).
 * An sc_lora_set says which of the engine's adapters (sc_engine_opts.lora) a forward applies: scale[i] for
 * adapter i, 0 = off; all zero = the base alone. What a KV cache holds depends on it, so a session's cached prefix
 * is keyed on it (infer/generate.h). */
enum { ENGINE_LORA_MAX = 16 };
typedef struct {
    float scale[ENGINE_LORA_MAX];
} sc_lora_set;

static inline int engine_lora_set_equal(const sc_lora_set *a, const sc_lora_set *b) {
    for (int i = 0; i < ENGINE_LORA_MAX; i++)
        if (a->scale[i] != b->scale[i]) return 0;
    return 1;
}

typedef struct {
    const char *device; /* "cpu", "cuda" or "auto" */
    int kv_type;        /* sc_kv_type (host/kv_cache.h): SC_KV_F16 (0, the default), f32, q8, q4 */
    int threads;        /* CPU threads per forward (0 = OpenMP's default) */
    /* CUDA engine only (the CPU runs the weights as loaded): */
    const char *precision; /* "auto" (NULL), "fp16" or "int8" (engine_precision_names): see engine_cuda.c */
    int n_ctx;             /* positions per session (0 = the model's context) */
    int n_seqs;            /* sessions whose KV caches are preallocated (0 = 1) */
    int no_graphs;         /* 1: decode without CUDA graphs (tests compare the two) */
    int chunk;             /* tokens per prefill pass (0 = 512; tests use small ones to cross chunk borders) */
    int64_t reserve_bytes; /* device bytes another engine of the same plan takes after this one (a speculative
                            * draft's arena): --precision auto and the fit check count them, so both models fit */
    /* LoRA adapters for this base (at most ENGINE_LORA_MAX; they must outlive the engine): the CPU engine reads
     * their FP32 weights where they are, the CUDA engine copies them (FP32) into its arena */
    const sc_lora *const *lora;
    int n_lora;
} sc_engine_opts;

/* --precision as an SC_ARG_ENUM: {ENGINE_PRECISION_AUTO, engine_precision_names}; sc_engine_opts.precision is the
 * chosen name */
enum { ENGINE_PRECISION_AUTO, ENGINE_PRECISION_FP16, ENGINE_PRECISION_INT8 };
extern const char *const engine_precision_names[]; /* "auto", "fp16", "int8", NULL */

typedef struct {
    const char *name;
    /* runs ids[0..n) at positions kv->n.., stores their keys/values, advances kv->n; logits [V] of the last one
     * (NULL = not needed). all_logits [n, V] optional. */
    int (*forward)(sc_engine *e, sc_kv *kv, const int32_t *ids, int n, float *logits, float *all_logits);
    void (*close)(sc_engine *e);
    /* the engine's own KV caches (NULL = kv_create in host memory); kv_free releases them through kv->release */
    void (*kv_create)(const sc_engine *e, sc_kv *kv, int n_ctx);
} sc_engine_ops;

struct sc_engine {
    const sc_engine_ops *ops;
    const sc_weights *w;
    const sc_config *cfg;
    int kv_type;            /* sc_kv_type of the caches engine_kv_create makes */
    const char *precision;  /* what runs: "fp32" or "int8" (CPU, as loaded), "fp16" or "int8" (CUDA) */
    int64_t device_bytes;   /* CUDA: device memory held (weights, scratch, KV caches), its peak; 0 on the CPU */
    int64_t weight_bytes;   /* bytes of matrices (+ scales) as this engine stores them: what decode reads */
    int64_t context_bytes;  /* CUDA: the CUDA context, cuBLAS and loaded kernels (host/device_probe.h); 0 on the CPU */
    int64_t lora_bytes;     /* bytes of the adapters' weights as this engine holds them */
    const sc_lora *const *lora;
    int n_lora;
    sc_lora_set lora_on;    /* what the next forward applies (engine_lora_use); all zero at open */
    void *impl;
};

/* Opens an engine on loaded weights (which must outlive it). device "auto" = CUDA when built and present. */
int engine_open(sc_engine *e, const sc_weights *w, const sc_engine_opts *o);
void engine_close(sc_engine *e);
/* Chooses the adapters the following forwards apply (NULL = none): a non-zero scale for an adapter the engine was
 * not opened with, or one that is not finite, is refused with one line. Under the caller's engine lock when the
 * engine is shared (the server). */
int engine_lora_use(sc_engine *e, const sc_lora_set *set);
/* Checks that adapter ad (loaded from dir) fits base config c: layers and every targeted Linear's shape. */
int engine_lora_check(const sc_lora *ad, const sc_config *c, const char *dir);
/* A KV cache of n_ctx positions for this engine's model (n_ctx <= 0: the model's context). */
void engine_kv_create(const sc_engine *e, sc_kv *kv, int n_ctx);
static inline int engine_forward(sc_engine *e, sc_kv *kv, const int32_t *ids, int n, float *logits) {
    return e->ops->forward(e, kv, ids, n, logits, NULL);
}

/* Speculative verification: runs ids[0..n) at kv->n.. in one batched pass (the prefill path) and writes the logits
 * of every position to all_logits [n, V]. Row i equals what n single-token forwards would give, bit for bit, on
 * the CPU engine with INT8 weights and on the CUDA engine up to engine_verify_max tokens (tests/test_infer_spec.c,
 * tests/gpu/test_infer_spec.c), so greedy speculative decoding emits exactly the target's own tokens. */
static inline int engine_forward_all(sc_engine *e, sc_kv *kv, const int32_t *ids, int n, float *all_logits) {
    return e->ops->forward(e, kv, ids, n, NULL, all_logits);
}
/* Most tokens one verification pass should take so that it stays bit-identical to single steps (CUDA: its GEMV
 * path of up to 8 rows; above, cuBLAS with other rounding). */
int engine_verify_max(const sc_engine *e);
/* Forgets the cached positions [n, kv->n) (rejected drafts): the next forward overwrites them. Fails when n is
 * negative or beyond what is cached. */
int engine_kv_rollback(sc_kv *kv, int n);

/* engine_cpu.c */
int engine_cpu_open(sc_engine *e, int threads);
/* engine_cuda.c (builds with CUDA kernels only) */
int engine_cuda_open(sc_engine *e, const sc_engine_opts *o);
/* Device bytes the CUDA engine would allocate for config c (int8: INT8 weights with `group` columns per scale,
 * 0 = per row; else FP16), n_seqs caches of n_ctx positions of kv_type (f32 counts as f16, what the engine keeps):
 * arithmetic only, no device needed. */
int64_t engine_cuda_plan_bytes(const sc_config *c, int int8, int group, int n_ctx, int n_seqs, int kv_type);
/* The same with LoRA adapters on board (their FP32 weights and the side path's scratch). */
int64_t engine_cuda_plan_bytes_lora(const sc_config *c, int int8, int group, int n_ctx, int n_seqs, int kv_type,
                                    const sc_lora *const *lora, int n_lora);
/* The same plan as printable rows (weights, KV cache, scratch: what each holds), into buf; returns the total bytes. */
int64_t engine_cuda_plan_describe(const sc_config *c, int int8, int group, int n_ctx, int n_seqs, int kv_type,
                                  char *buf, size_t n);
/* The plan by rows as numbers (--plan of complete/serve/infer-bench: infer/spec_plan.c, infer/lora_cli.c): weights
 * (+ scales), LoRA adapters, KV caches, scratch; total = the arena. chunk: tokens per prefill pass (0 = the
 * engine's default). */
typedef struct {
    int64_t weights, lora, kv, scratch, total;
} sc_engine_plan;
void engine_cuda_plan(const sc_config *c, int int8, int group, int n_ctx, int n_seqs, int chunk, int kv_type,
                      const sc_lora *const *lora, int n_lora, sc_engine_plan *p);
/* --precision auto of the CUDA engine on the device dp describes: 1 = INT8, 0 = FP16, why (n bytes) says which
 * rule decided. INT8 when the checkpoint is INT8, when FP16 weights + KV + DEVICE_RESERVE exceed dp->free_now, or
 * when the card's bandwidth / FP16 weight bytes (the ceiling of FP16 decode, which reads every weight per token) is
 * under 250 tok/s: a small or slow card (an MX450's 80 GB/s gives 131 tok/s for 304m in FP16, 262 in INT8). */
typedef struct device_probe_info device_probe_info;
int engine_cuda_auto_int8(const sc_config *c, int quantized, int group, int n_ctx, int n_seqs, int chunk,
                          int kv_type, const device_probe_info *dp, char *why, size_t n);
/* Device memory taken since the CUDA engine opened, by cudaMemGetInfo (its arena, extra KV caches, cuBLAS's and
 * the graph's own allocations; not the CUDA context); -1 for another engine. */
int64_t engine_cuda_measured_bytes(const sc_engine *e);

#endif
