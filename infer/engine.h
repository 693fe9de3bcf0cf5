/* engine.h — the inference backend interface: a model's weights plus one way of running them (CPU now; the CUDA
 * engine plugs in through engine_open's "cuda" branch). A session (sc_kv) is one sequence's KV cache; forward
 * appends tokens to it and returns the logits of the last one. One forward at a time per engine. */
#ifndef SC_INFER_ENGINE_H
#define SC_INFER_ENGINE_H

#include <stdint.h>

#include "kv_cache.h"
#include "weights.h"

typedef struct sc_engine sc_engine;

typedef struct {
    const char *device; /* "cpu", "cuda" or "auto" */
    int kv_f16;         /* 1: FP16 KV cache (default), 0: FP32 */
    int threads;        /* CPU threads per forward (0 = OpenMP's default) */
} sc_engine_opts;

typedef struct {
    const char *name;
    /* runs ids[0..n) at positions kv->n.., stores their keys/values, advances kv->n; logits [V] of the last one
     * (NULL = not needed). all_logits [n, V] optional. */
    int (*forward)(sc_engine *e, sc_kv *kv, const int32_t *ids, int n, float *logits, float *all_logits);
    void (*close)(sc_engine *e);
} sc_engine_ops;

struct sc_engine {
    const sc_engine_ops *ops;
    const sc_weights *w;
    const sc_config *cfg;
    int kv_f16;
    void *impl;
};

/* Opens an engine on loaded weights (which must outlive it). device "auto" = CUDA when built and present. */
int engine_open(sc_engine *e, const sc_weights *w, const sc_engine_opts *o);
void engine_close(sc_engine *e);
/* A KV cache of n_ctx positions for this engine's model (n_ctx <= 0: the model's context). */
void engine_kv_create(const sc_engine *e, sc_kv *kv, int n_ctx);
static inline int engine_forward(sc_engine *e, sc_kv *kv, const int32_t *ids, int n, float *logits) {
    return e->ops->forward(e, kv, ids, n, logits, NULL);
}

/* engine_cpu.c */
int engine_cpu_open(sc_engine *e, int threads);

#endif
