/* engine.c — picks the backend for engine_open. The CUDA engine (kernels/int8 dp4a decode, CUDA graphs) is not
 * in this build yet: "cuda" says so, "auto" falls back to the CPU. */
#include "engine.h"

#include <string.h>

#include "error.h"

int engine_open(sc_engine *e, const sc_weights *w, const sc_engine_opts *o) {
    memset(e, 0, sizeof *e);
    e->w = w;
    e->cfg = &w->cfg;
    e->kv_f16 = o ? o->kv_f16 : 1;
    const char *dev = o && o->device ? o->device : "auto";
    if (strcmp(dev, "cuda") == 0)
        return sc_fail("--device cuda: the CUDA inference engine is not implemented yet (waits for kernels/); use cpu");
    if (strcmp(dev, "cpu") && strcmp(dev, "auto")) return sc_fail("--device must be cpu, cuda or auto, got '%s'", dev);
    return engine_cpu_open(e, o ? o->threads : 0);
}

void engine_close(sc_engine *e) {
    if (e->ops && e->ops->close) e->ops->close(e);
    memset(e, 0, sizeof *e);
}

void engine_kv_create(const sc_engine *e, sc_kv *kv, int n_ctx) {
    const sc_config *c = e->cfg;
    if (n_ctx <= 0 || n_ctx > c->max_position_embeddings) n_ctx = c->max_position_embeddings;
    kv_create(kv, c->num_hidden_layers, n_ctx, c->num_key_value_heads, c->head_dim, e->kv_f16);
}
