/* weights.c — loading FP32 and INT8 model directories for inference (see weights.h). INT8 data is used straight
 * from the mapped safetensors file; only scales (to FP32), group sums and norms are copied. */
#include "host/weights.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "host/fileio.h"

int quant_config_read(const char *dir, int *group_size) {
    char path[4096];
    char *text;
    size_t len;
    if (file_read_all(path_join(path, sizeof path, dir, "config.json"), &text, &len)) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return sc_fail("%s: not valid JSON", path);
    int rc = 0;
    const cJSON *qc = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    if (qc) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(qc, "quant_method");
        const cJSON *bits = cJSON_GetObjectItemCaseSensitive(qc, "bits");
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(qc, "group_size");
        if (!cJSON_IsString(m) || strcmp(m->valuestring, "smallcoder-int8") != 0)
            rc = sc_fail("%s: quantization_config.quant_method must be \"smallcoder-int8\"", path);
        else if (!cJSON_IsNumber(bits) || bits->valueint != 8)
            rc = sc_fail("%s: quantization_config.bits must be 8", path);
        else if (!cJSON_IsNumber(g) || g->valueint < 0)
            rc = sc_fail("%s: quantization_config.group_size must be an integer >= 0", path);
        else {
            *group_size = g->valueint;
            rc = 1;
        }
    }
    cJSON_Delete(root);
    return rc;
}

/* binds an INT8 matrix `name` + `name.scale` from the file, checking dtypes and shapes */
static int bind_qmat(sc_weights *w, sc_wmat *dst, const char *name, int rows, int cols) {
    const st_file *f = &w->st;
    char sname[128];
    snprintf(sname, sizeof sname, "%s.scale", name);
    const st_tensor *t = st_find(f, name), *s = st_find(f, sname);
    int ng = quant_ngroups(cols, w->group_size);
    if (!t) return sc_fail("%s: tensor %s is missing", f->path, name);
    if (!s) return sc_fail("%s: tensor %s is missing", f->path, sname);
    if (t->dtype != ST_I8 || t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return sc_fail("%s: tensor %s must be I8 [%d, %d]", f->path, name, rows, cols);
    if (s->dtype != ST_F16 || s->ndim != 2 || s->shape[0] != rows || s->shape[1] != ng)
        return sc_fail("%s: tensor %s must be F16 [%d, %d] (group_size %d)", f->path, sname, rows, ng, w->group_size);
    dst->f = NULL;
    dst->rows = rows, dst->cols = cols;
    dst->q = (sc_qmat){.rows = rows, .cols = cols, .group = w->group_size, .q = t->data, .scale = s->data};
    qmat_prepare(&dst->q);
    w->weight_bytes += (int64_t)t->nbytes + (int64_t)s->nbytes;
    return 0;
}

static int bind_norm(sc_weights *w, const float **dst, float *storage, const char *name, int n) {
    const st_tensor *t = st_find(&w->st, name);
    if (!t || t->ndim != 1 || t->shape[0] != n) return sc_fail("%s: tensor %s must be [%d]", w->st.path, name, n);
    if (st_read_f32(&w->st, t, storage)) return -1;
    *dst = storage;
    return 0;
}

static int load_int8(sc_weights *w, const char *dir) {
    char path[4096];
    if (st_open(&w->st, path_join(path, sizeof path, dir, "model.safetensors"))) return -1;
    const sc_config *c = &w->cfg;
    int C = c->hidden_size, F = c->intermediate_size, hd = c->head_dim, L = c->num_hidden_layers;
    int nq = c->num_attention_heads * hd, nkv = c->num_key_value_heads * hd;
    w->layers = sc_calloc((size_t)L, sizeof(sc_wlayer));
    w->norms = sc_malloc(((size_t)2 * L + 1) * C * sizeof(float));
    char n[128];
    if (bind_qmat(w, &w->embed, "model.embed_tokens.weight", c->vocab_size, C)) return -1;
    if (c->tie_word_embeddings) w->lm_head = w->embed;
    else if (bind_qmat(w, &w->lm_head, "lm_head.weight", c->vocab_size, C)) return -1;
    if (bind_norm(w, &w->final_norm, w->norms + (size_t)2 * L * C, "model.norm.weight", C)) return -1;
    for (int l = 0; l < L; l++) {
        sc_wlayer *y = &w->layers[l];
#define QM(field, nm, r, cc)                                                                                      \
    snprintf(n, sizeof n, "model.layers.%d.%s.weight", l, nm);                                                    \
    if (bind_qmat(w, &y->field, n, r, cc)) return -1
        QM(wq, "self_attn.q_proj", nq, C);
        QM(wk, "self_attn.k_proj", nkv, C);
        QM(wv, "self_attn.v_proj", nkv, C);
        QM(wo, "self_attn.o_proj", C, nq);
        QM(wgate, "mlp.gate_proj", F, C);
        QM(wup, "mlp.up_proj", F, C);
        QM(wdown, "mlp.down_proj", C, F);
#undef QM
        snprintf(n, sizeof n, "model.layers.%d.input_layernorm.weight", l);
        if (bind_norm(w, &y->attn_norm, w->norms + (size_t)(2 * l) * C, n, C)) return -1;
        snprintf(n, sizeof n, "model.layers.%d.post_attention_layernorm.weight", l);
        if (bind_norm(w, &y->mlp_norm, w->norms + (size_t)(2 * l + 1) * C, n, C)) return -1;
    }
    return 0;
}

static sc_wmat fmat(const float *p, int rows, int cols) { return (sc_wmat){.f = p, .rows = rows, .cols = cols}; }

static void bind_fp32(sc_weights *w) {
    const sc_config *c = &w->cfg;
    const sc_view *v = &w->fp.w;
    int C = c->hidden_size, F = c->intermediate_size, hd = c->head_dim;
    int nq = c->num_attention_heads * hd, nkv = c->num_key_value_heads * hd;
    w->embed = fmat(v->embed, c->vocab_size, C);
    w->lm_head = fmat(v->lm_head, c->vocab_size, C);
    w->final_norm = v->final_norm;
    w->layers = sc_calloc((size_t)c->num_hidden_layers, sizeof(sc_wlayer));
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const sc_layer_view *s = &v->layers[l];
        sc_wlayer *y = &w->layers[l];
        y->attn_norm = s->attn_norm, y->mlp_norm = s->mlp_norm;
        y->wq = fmat(s->wq, nq, C), y->wk = fmat(s->wk, nkv, C), y->wv = fmat(s->wv, nkv, C);
        y->wo = fmat(s->wo, C, nq);
        y->wgate = fmat(s->wgate, F, C), y->wup = fmat(s->wup, F, C), y->wdown = fmat(s->wdown, C, F);
    }
    w->weight_bytes = (w->fp.nparams - (int64_t)(2 * c->num_hidden_layers + 1) * C) * 4;
}

int weights_load(sc_weights *w, const char *dir) {
    memset(w, 0, sizeof *w);
    int g = 0, q = quant_config_read(dir, &g);
    if (q < 0) return -1;
    if (!q) {
        if (model_load(&w->fp, dir)) return -1;
        w->cfg = w->fp.cfg;
        bind_fp32(w);
        return 0;
    }
    char cpath[4096];
    if (config_load(&w->cfg, path_join(cpath, sizeof cpath, dir, "config.json"))) return -1;
    w->quantized = 1;
    w->group_size = g;
    if (load_int8(w, dir)) {
        weights_free(w);
        return -1;
    }
    return 0;
}

static void wmat_free(sc_wmat *m) {
    if (!m->f) qmat_free(&m->q);
}

void weights_free(sc_weights *w) {
    if (w->quantized) {
        if (w->layers)
            for (int l = 0; l < w->cfg.num_hidden_layers; l++) {
                sc_wlayer *y = &w->layers[l];
                wmat_free(&y->wq), wmat_free(&y->wk), wmat_free(&y->wv), wmat_free(&y->wo);
                wmat_free(&y->wgate), wmat_free(&y->wup), wmat_free(&y->wdown);
            }
        if (w->lm_head.q.fscale != w->embed.q.fscale) wmat_free(&w->lm_head);
        wmat_free(&w->embed);
        st_close(&w->st);
    } else if (w->fp.params) {
        model_free(&w->fp);
    }
    free(w->layers);
    free(w->norms);
    memset(w, 0, sizeof *w);
}

void wmat_rows_f32(const sc_wmat *w, int r0, int r1, float *out) {
    if (w->f) memcpy(out, w->f + (size_t)r0 * w->cols, (size_t)(r1 - r0) * w->cols * sizeof(float));
    else qmat_dequant_rows(&w->q, r0, r1, out);
}

int infer_model_load(sc_model *m, const char *dir) {
    int g = 0, q = quant_config_read(dir, &g);
    if (q < 0) return -1;
    if (!q) return model_load(m, dir);
    sc_weights w;
    if (weights_load(&w, dir)) return -1;
    model_create(m, &w.cfg);
    const sc_view *v = &m->w;
    const sc_config *c = &w.cfg;
    size_t C = (size_t)c->hidden_size;
    wmat_rows_f32(&w.embed, 0, w.embed.rows, v->embed);
    if (!c->tie_word_embeddings) wmat_rows_f32(&w.lm_head, 0, w.lm_head.rows, v->lm_head);
    memcpy(v->final_norm, w.final_norm, C * sizeof(float));
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const sc_wlayer *y = &w.layers[l];
        const sc_layer_view *s = &v->layers[l];
        memcpy(s->attn_norm, y->attn_norm, C * sizeof(float));
        memcpy(s->mlp_norm, y->mlp_norm, C * sizeof(float));
        wmat_rows_f32(&y->wq, 0, y->wq.rows, s->wq);
        wmat_rows_f32(&y->wk, 0, y->wk.rows, s->wk);
        wmat_rows_f32(&y->wv, 0, y->wv.rows, s->wv);
        wmat_rows_f32(&y->wo, 0, y->wo.rows, s->wo);
        wmat_rows_f32(&y->wgate, 0, y->wgate.rows, s->wgate);
        wmat_rows_f32(&y->wup, 0, y->wup.rows, s->wup);
        wmat_rows_f32(&y->wdown, 0, y->wdown.rows, s->wdown);
    }
    weights_free(&w);
    return 0;
}

int weights_check_vocab(const sc_weights *w, int tokenizer_ids, const char *dir) {
    if (tokenizer_ids <= w->cfg.vocab_size) return 0;
    char p[4096];
    return sc_fail("%s: the tokenizer has %d ids, the model's vocab_size is %d: not this model's tokenizer",
                   path_join(p, sizeof p, dir, "tokenizer.json"), tokenizer_ids, w->cfg.vocab_size);
}
