/* model.c — parameter table, views, HF initialisation, and model directory I/O (see model.h). */
#include "host/model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host/error.h"
#include "host/fileio.h"
#include "host/rng.h"
#include "host/safetensors.h"

static void add_param(sc_param *t, int *n, int64_t *off, const char *name, int64_t rows, int64_t cols) {
    sc_param *p = &t[(*n)++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = cols ? 2 : 1;
    p->shape[0] = rows;
    p->shape[1] = cols;
    p->numel = rows * (cols ? cols : 1);
    p->offset = *off;
    *off += p->numel;
}

int model_param_table(const sc_config *c, sc_param **out, int64_t *total) {
    int L = c->num_hidden_layers, n = 0;
    int64_t C = c->hidden_size, F = c->intermediate_size, V = c->vocab_size, off = 0;
    int64_t q = (int64_t)c->num_attention_heads * c->head_dim, kv = (int64_t)c->num_key_value_heads * c->head_dim;
    sc_param *t = sc_calloc((size_t)(9 * L + 3), sizeof(sc_param));
    char name[80];
    add_param(t, &n, &off, "model.embed_tokens.weight", V, C);
    for (int l = 0; l < L; l++) {
#define LAYER(suffix, rows, cols)                                                                                  \
    snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix);                                                  \
    add_param(t, &n, &off, name, rows, cols)
        LAYER("input_layernorm.weight", C, 0);
        LAYER("self_attn.q_proj.weight", q, C);
        LAYER("self_attn.k_proj.weight", kv, C);
        LAYER("self_attn.v_proj.weight", kv, C);
        LAYER("self_attn.o_proj.weight", C, q);
        LAYER("post_attention_layernorm.weight", C, 0);
        LAYER("mlp.gate_proj.weight", F, C);
        LAYER("mlp.up_proj.weight", F, C);
        LAYER("mlp.down_proj.weight", C, F);
#undef LAYER
    }
    add_param(t, &n, &off, "model.norm.weight", C, 0);
    if (!c->tie_word_embeddings) add_param(t, &n, &off, "lm_head.weight", V, C);
    *out = t;
    *total = off;
    return n;
}

void model_view(const sc_model *m, float *base, sc_view *v) {
    const sc_param *t = m->table;
    int L = m->cfg.num_hidden_layers;
    v->nlayers = L;
    v->layers = sc_calloc((size_t)L, sizeof(sc_layer_view));
    v->embed = base + t[0].offset;
    for (int l = 0; l < L; l++) {
        const sc_param *p = &t[1 + 9 * l];
        sc_layer_view *lv = &v->layers[l];
        float **slots[9] = {&lv->attn_norm, &lv->wq, &lv->wk, &lv->wv, &lv->wo,
                            &lv->mlp_norm,  &lv->wgate, &lv->wup, &lv->wdown};
        for (int i = 0; i < 9; i++) *slots[i] = base + p[i].offset;
    }
    v->final_norm = base + t[1 + 9 * L].offset;
    v->lm_head = m->cfg.tie_word_embeddings ? v->embed : base + t[2 + 9 * L].offset;
}

void view_free(sc_view *v) {
    free(v->layers);
    v->layers = NULL;
}

void model_create(sc_model *m, const sc_config *cfg) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->ntensors = model_param_table(cfg, &m->table, &m->nparams);
    m->params = sc_calloc((size_t)m->nparams, sizeof(float));
    model_view(m, m->params, &m->w);
}

void model_free(sc_model *m) {
    free(m->params);
    free(m->table);
    view_free(&m->w);
    memset(m, 0, sizeof *m);
}

/* Each tensor is filled in chunks with their own seeds derived from (seed, tensor, chunk), so the result is the
 * same for any thread count. */
void model_init_weights(sc_model *m, uint64_t seed, float std) {
    const int64_t chunk = 1 << 20;
    for (int i = 0; i < m->ntensors; i++) {
        const sc_param *p = &m->table[i];
        float *w = m->params + p->offset;
        if (p->ndim == 1) {
            for (int64_t j = 0; j < p->numel; j++) w[j] = 1.0f;
            continue;
        }
        int64_t nchunks = (p->numel + chunk - 1) / chunk;
#pragma omp parallel for schedule(static)
        for (int64_t c = 0; c < nchunks; c++) {
            uint64_t s = seed * 0x9e3779b97f4a7c15ull ^ ((uint64_t)i << 40) ^ (uint64_t)c;
            sc_rng r;
            rng_seed(&r, s);
            int64_t end = (c + 1) * chunk < p->numel ? (c + 1) * chunk : p->numel;
            for (int64_t j = c * chunk; j < end; j++) w[j] = (float)(rng_normal(&r) * std);
        }
    }
}

static int ignorable_tensor(const char *name) {
    /* old HF checkpoints store RoPE's inverse frequencies as a buffer; they are recomputed */
    return strstr(name, "rotary_emb.inv_freq") != NULL;
}

/* Checks that f holds exactly the tensors of cfg with the right shapes (message names file, tensor, shapes). */
int model_check_file(const sc_config *cfg, const st_file *f, const char *cpath) {
    sc_param *table;
    int64_t total;
    int nt = model_param_table(cfg, &table, &total), rc = 0;
    const char *path = f->path;
    for (int i = 0; i < nt && !rc; i++) {
        const sc_param *p = &table[i];
        const st_tensor *t = st_find(f, p->name);
        if (!t) {
            rc = sc_fail("%s: missing tensor %s (config %s)", path, p->name, cpath);
            break;
        }
        int same = t->ndim == p->ndim && t->shape[0] == p->shape[0] && (p->ndim == 1 || t->shape[1] == p->shape[1]);
        if (!same) {
            char got[128] = "", want[64];
            int k = 0;
            for (int d = 0; d < t->ndim; d++)
                k += snprintf(got + k, sizeof got - (size_t)k, d ? ", %lld" : "%lld", (long long)t->shape[d]);
            if (p->ndim == 1) snprintf(want, sizeof want, "%lld", (long long)p->shape[0]);
            else snprintf(want, sizeof want, "%lld, %lld", (long long)p->shape[0], (long long)p->shape[1]);
            rc = sc_fail("%s: tensor %s has shape [%s], config says [%s]", path, p->name, got, want);
        }
    }
    for (int i = 0; i < f->ntensors && !rc; i++) {
        const char *name = f->tensors[i].name;
        int known = ignorable_tensor(name);
        for (int j = 0; j < nt && !known; j++) known = strcmp(table[j].name, name) == 0;
        /* an INT8 directory (smallcoder quantize): "<matrix>.scale" F16 beside each I8 matrix */
        size_t len = strlen(name);
        for (int j = 0; j < nt && !known && len > 6 && strcmp(name + len - 6, ".scale") == 0; j++) {
            const st_tensor *w = st_find(f, table[j].name);
            known = table[j].ndim == 2 && strlen(table[j].name) == len - 6 && strncmp(table[j].name, name, len - 6) == 0 &&
                    w && w->dtype == ST_I8;
        }
        if (!known) {
            if (strcmp(name, "lm_head.weight") == 0)
                rc = sc_fail("%s: tensor lm_head.weight is present but %s says tie_word_embeddings=true", path, cpath);
            else
                rc = sc_fail("%s: unexpected tensor %s (not part of a Llama model with this config)", path, name);
        }
    }
    free(table);
    return rc;
}

int model_load(sc_model *m, const char *dir) {
    char path[4096], cpath[4096];
    sc_config cfg;
    if (config_load(&cfg, path_join(cpath, sizeof cpath, dir, "config.json"))) return -1;
    st_file f;
    if (st_open(&f, path_join(path, sizeof path, dir, "model.safetensors"))) return -1;
    int rc = model_check_file(&cfg, &f, cpath);
    for (int i = 0; i < f.ntensors && !rc; i++)
        if (f.tensors[i].dtype == ST_I8)
            rc = sc_fail("%s: an INT8 model directory (smallcoder quantize): this command reads FP32/FP16 weights; eval, "
                         "complete, serve and infer-bench read INT8", dir);
    if (!rc) {
        model_create(m, &cfg);
        for (int i = 0; i < m->ntensors && !rc; i++)
            rc = st_read_f32(&f, st_find(&f, m->table[i].name), m->params + m->table[i].offset);
        if (rc) model_free(m);
    }
    st_close(&f);
    return rc;
}

int model_save_block(const sc_model *m, const float *block, const char *path) {
    st_entry *e = sc_calloc((size_t)m->ntensors, sizeof(st_entry));
    for (int i = 0; i < m->ntensors; i++) {
        const sc_param *p = &m->table[i];
        e[i] = (st_entry){.name = p->name, .dtype = ST_F32, .ndim = p->ndim, .data = block + p->offset};
        e[i].shape[0] = p->shape[0];
        e[i].shape[1] = p->shape[1];
    }
    static const char *const metadata[] = {"format", "pt", NULL};
    int rc = st_write(path, e, m->ntensors, metadata);
    free(e);
    return rc;
}

int model_save(const sc_model *m, const char *dir) {
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return sc_fail("%s: cannot create directory (%s)", dir, strerror(errno));
    char path[4096];
    if (model_save_block(m, m->params, path_join(path, sizeof path, dir, "model.safetensors"))) return -1;
    return config_save(&m->cfg, path_join(path, sizeof path, dir, "config.json"));
}
