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
    sc_param *t = sc_calloc((size_t)(16 * L + 3), sizeof(sc_param));
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
    for (int l = 0; l < L; l++) {
#define BIAS(on, suffix, rows)                                                                                     \
    if (on) {                                                                                                      \
        snprintf(name, sizeof name, "model.layers.%d.%s", l, suffix);                                              \
        add_param(t, &n, &off, name, rows, 0);                                                                     \
    }
        BIAS(c->qkv_bias, "self_attn.q_proj.bias", q);
        BIAS(c->qkv_bias, "self_attn.k_proj.bias", kv);
        BIAS(c->qkv_bias, "self_attn.v_proj.bias", kv);
        BIAS(c->o_bias, "self_attn.o_proj.bias", C);
        BIAS(c->mlp_bias, "mlp.gate_proj.bias", F);
        BIAS(c->mlp_bias, "mlp.up_proj.bias", F);
        BIAS(c->mlp_bias, "mlp.down_proj.bias", C);
#undef BIAS
    }
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
    /* biases follow in the order model_param_table adds them */
    const sc_config *c = &m->cfg;
    int k = 2 + 9 * L + !c->tie_word_embeddings;
    for (int l = 0; l < L; l++) {
        sc_layer_view *lv = &v->layers[l];
        if (c->qkv_bias) lv->bq = base + t[k++].offset, lv->bk = base + t[k++].offset, lv->bv = base + t[k++].offset;
        if (c->o_bias) lv->bo = base + t[k++].offset;
        if (c->mlp_bias)
            lv->bgate = base + t[k++].offset, lv->bup = base + t[k++].offset, lv->bdown = base + t[k++].offset;
    }
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
        if (p->ndim == 1) { /* norms 1, biases 0 (HF's init) */
            float v = strstr(p->name, ".bias") ? 0.0f : 1.0f;
            for (int64_t j = 0; j < p->numel; j++) w[j] = v;
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

/* Checks that the set holds exactly the tensors of cfg with the right shapes (message names file, tensor,
 * shapes). */
int model_check_set(const sc_config *cfg, const st_set *set, const char *cpath) {
    sc_param *table;
    int64_t total;
    int nt = model_param_table(cfg, &table, &total), rc = 0;
    const char *path = set->desc;
    for (int i = 0; i < nt && !rc; i++) {
        const sc_param *p = &table[i];
        const st_file *f = NULL;
        const st_tensor *t = st_set_find(set, p->name, &f);
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
            rc = sc_fail("%s: tensor %s has shape [%s], config says [%s]", f->path, p->name, got, want);
        }
    }
    for (int i = 0; i < set->ntensors && !rc; i++) {
        const char *name = st_set_tensor(set, i)->name;
        int known = ignorable_tensor(name);
        for (int j = 0; j < nt && !known; j++) known = strcmp(table[j].name, name) == 0;
        /* an INT8 directory (smallcoder quantize): "<matrix>.scale" F16 beside each I8 matrix */
        size_t len = strlen(name);
        for (int j = 0; j < nt && !known && len > 6 && strcmp(name + len - 6, ".scale") == 0; j++) {
            const st_tensor *w = st_set_find(set, table[j].name, NULL);
            known = table[j].ndim == 2 && strlen(table[j].name) == len - 6 && strncmp(table[j].name, name, len - 6) == 0 &&
                    w && w->dtype == ST_I8;
        }
        if (!known) {
            if (strcmp(name, "lm_head.weight") == 0)
                rc = sc_fail("%s: tensor lm_head.weight is present but %s says tie_word_embeddings=true", path, cpath);
            else if (strstr(name, ".bias"))
                rc = sc_fail("%s: unexpected tensor %s (%s declares no such bias: attention_bias/mlp_bias)", path,
                             name, cpath);
            else
                rc = sc_fail("%s: unexpected tensor %s (not part of a Llama model with this config)", path, name);
        }
    }
    free(table);
    return rc;
}

int model_config_load(sc_config *cfg, const char *dir, char *cpath) {
    char buf[4096];
    if (!cpath) cpath = buf;
    if (config_load(cfg, path_join(cpath, 4096, dir, "config.json"))) return -1;
    return config_load_generation(cfg, dir);
}

int model_load(sc_model *m, const char *dir) {
    char cpath[4096];
    sc_config cfg;
    if (model_config_load(&cfg, dir, cpath)) return -1;
    st_set s;
    if (st_set_open(&s, dir)) return -1;
    int rc = model_check_set(&cfg, &s, cpath);
    for (int i = 0; i < s.ntensors && !rc; i++)
        if (st_set_tensor(&s, i)->dtype == ST_I8)
            rc = sc_fail("%s: an INT8 model directory (smallcoder quantize): this command reads FP32/FP16 weights; eval, "
                         "complete, serve and infer-bench read INT8", dir);
    if (!rc) {
        /* one tensor at a time from the mappings: the resident cost is the FP32 block plus page cache */
        model_create(m, &cfg);
        for (int i = 0; i < m->ntensors && !rc; i++) {
            const st_file *f;
            const st_tensor *t = st_set_find(&s, m->table[i].name, &f);
            rc = st_read_f32(f, t, m->params + m->table[i].offset);
            st_release(f, t);
        }
        if (rc) model_free(m);
    }
    st_set_close(&s);
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
