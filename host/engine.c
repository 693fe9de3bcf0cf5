/* engine.c — picks the backend for engine_open: "cuda" = the CUDA engine (engine_cuda.c, builds with kernels only),
 * "auto" = CUDA when this build has kernels and a device is visible, else the CPU. */
#include "host/engine.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "host/args.h"
#include "host/device.h"
#include "host/error.h"

const char *const engine_precision_names[] = {"auto", "fp16", "int8", NULL};

int engine_lora_check(const sc_lora *ad, const sc_config *c, const char *dir) {
    if (ad->nlayers != c->num_hidden_layers)
        return sc_fail("LoRA adapter %s: %d layers, the model has %d (an adapter for another base)", dir, ad->nlayers,
                       c->num_hidden_layers);
    int q = c->num_attention_heads * c->head_dim, kv = c->num_key_value_heads * c->head_dim;
    int C = c->hidden_size, F = c->intermediate_size;
    const int in[LORA_NTARGETS] = {C, C, C, q, C, C, F}, out[LORA_NTARGETS] = {q, kv, kv, C, F, F, C};
    for (int t = 0; t < LORA_NTARGETS; t++)
        if ((ad->targets >> t & 1) && (ad->in[t] != in[t] || ad->out[t] != out[t]))
            return sc_fail("LoRA adapter %s: %s is [%d, %d] (out, in), the model's is [%d, %d] (an adapter for "
                           "another base)", dir, lora_module_names[t], ad->out[t], ad->in[t], out[t], in[t]);
    return 0;
}

int engine_lora_use(sc_engine *e, const sc_lora_set *set) {
    static const sc_lora_set none;
    if (!set) set = &none;
    for (int i = 0; i < ENGINE_LORA_MAX; i++) {
        if (!isfinite(set->scale[i])) return sc_fail("LoRA adapter %d: scale %g is not finite", i, set->scale[i]);
        if (set->scale[i] != 0.0f && i >= e->n_lora)
            return sc_fail("LoRA adapter %d: no such adapter (%d loaded)", i, e->n_lora);
    }
    e->lora_on = *set;
    for (int i = 0; i < ENGINE_LORA_MAX; i++) /* -0 and 0 are one key */
        if (e->lora_on.scale[i] == 0.0f) e->lora_on.scale[i] = 0.0f;
    return 0;
}

int engine_open(sc_engine *e, const sc_weights *w, const sc_engine_opts *o) {
    memset(e, 0, sizeof *e);
    e->w = w;
    e->cfg = &w->cfg;
    if (o && o->n_lora > 0) {
        if (o->n_lora > ENGINE_LORA_MAX)
            return sc_fail("%d LoRA adapters; at most %d can be loaded at once", o->n_lora, ENGINE_LORA_MAX);
        for (int i = 0; i < o->n_lora; i++) {
            char what[32];
            snprintf(what, sizeof what, "%d", i);
            if (engine_lora_check(o->lora[i], &w->cfg, what)) return -1;
        }
        e->lora = o->lora, e->n_lora = o->n_lora;
    }
    e->kv_type = o ? o->kv_type : SC_KV_F16;
    if (kv_type_check(e->kv_type, w->cfg.head_dim)) return -1;
    const char *dev = o && o->device ? o->device : "auto";
    const char *prec = o && o->precision ? o->precision : "auto";
    if (sc_enum_index("precision", engine_precision_names, prec) < 0) return -1; /* callers other than the CLIs */
#ifdef SC_HAVE_KERNELS
    int cuda = device_resolve(dev, 1);
    if (cuda < 0) return -1;
    if (cuda) {
        sc_engine_opts d = {.device = dev, .kv_type = SC_KV_F16};
        if (!engine_cuda_open(e, o ? o : &d)) return 0;
        if (strcmp(dev, "auto")) return -1;
        /* auto: a model or context the CUDA engine cannot take (or memory it cannot get) still runs, on the CPU */
        fprintf(stderr, "note: --device auto: %s; running on the CPU\n", sc_error());
        e->ops = NULL, e->impl = NULL, e->precision = NULL, e->device_bytes = e->weight_bytes = e->lora_bytes = 0;
        e->kv_type = o ? o->kv_type : SC_KV_F16;
    }
#else
    if (device_resolve(dev, 0) < 0) return -1;
#endif
    if (strcmp(prec, "auto"))
        fprintf(stderr, "note: --precision %s applies to the CUDA engine; the CPU engine runs the weights as loaded "
                        "(%s)\n", prec, w->quantized ? "INT8" : "FP32");
    return engine_cpu_open(e, o ? o->threads : 0);
}

void engine_close(sc_engine *e) {
    if (e->ops && e->ops->close) e->ops->close(e);
    memset(e, 0, sizeof *e);
}

void engine_kv_create(const sc_engine *e, sc_kv *kv, int n_ctx) {
    const sc_config *c = e->cfg;
    if (n_ctx <= 0 || n_ctx > c->max_position_embeddings) n_ctx = c->max_position_embeddings;
    if (e->ops->kv_create) {
        e->ops->kv_create(e, kv, n_ctx);
        return;
    }
    kv_create(kv, c->num_hidden_layers, n_ctx, c->num_key_value_heads, c->head_dim, e->kv_type);
}

int engine_verify_max(const sc_engine *e) {
    /* the CUDA engine's decode GEMVs take up to 8 rows (engine_cuda.c GEMV_MAX_T) and are batch-invariant; the CPU
     * engine's INT8 dot products and attention are per row up to its chunk (256 tokens), its FP32 ones up to 16 */
    if (strcmp(e->ops->name, "cuda") == 0) return 8;
    return e->w->quantized ? 64 : 16; /* FP32: engine_cpu.c F32_SMALL_T */
}

int engine_kv_rollback(sc_kv *kv, int n) {
    if (n < 0 || n > kv->n) return sc_fail("KV rollback to %d positions: the cache holds %d", n, kv->n);
    kv->n = n;
    return 0;
}
