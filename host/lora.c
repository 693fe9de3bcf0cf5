/* lora.c — the LoRA adapter: layout, PEFT initialisation, adapter_config.json + adapter_model.safetensors I/O
 * with validation against the base, and merging into a base (see lora.h). */
#include "host/lora.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "host/fileio.h"
#include "host/rng.h"
#include "host/safetensors.h"

const char *const lora_module_names[LORA_NTARGETS] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                      "gate_proj", "up_proj", "down_proj"};
static const char *const short_names[LORA_NTARGETS] = {"q", "k", "v", "o", "gate", "up", "down"};
static const char *const module_parent[LORA_NTARGETS] = {"self_attn", "self_attn", "self_attn", "self_attn",
                                                         "mlp", "mlp", "mlp"};

#define ADAPTER_CONFIG "adapter_config.json"
#define ADAPTER_WEIGHTS "adapter_model.safetensors"

static int target_index(const char *s, size_t n) {
    for (int t = 0; t < LORA_NTARGETS; t++) {
        if ((strlen(short_names[t]) == n && strncmp(s, short_names[t], n) == 0) ||
            (strlen(lora_module_names[t]) == n && strncmp(s, lora_module_names[t], n) == 0))
            return t;
    }
    return -1;
}

int lora_parse_targets(const char *list, const char *what, unsigned *mask) {
    *mask = 0;
    if (!strcmp(list, "all") || !strcmp(list, "all-linear")) {
        *mask = LORA_ALL_TARGETS;
        return 0;
    }
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int t = target_index(p, n);
        if (t < 0)
            return sc_fail("%s: unknown module '%.*s' (expected q,k,v,o,gate,up,down, their *_proj names, or all)",
                           what, (int)n, p);
        *mask |= 1u << t;
        p += n + (e ? 1 : 0);
    }
    if (!*mask) return sc_fail("%s: no module given (expected e.g. q,k,v,o,gate,up,down)", what);
    return 0;
}

char *lora_targets_string(unsigned mask, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    for (int t = 0; t < LORA_NTARGETS; t++)
        if (mask & (1u << t)) k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "%s%s", k ? "," : "", short_names[t]);
    return buf;
}

static void target_dims(const sc_config *c, int in[LORA_NTARGETS], int out[LORA_NTARGETS]) {
    int C = c->hidden_size, F = c->intermediate_size, Q = c->num_attention_heads * c->head_dim,
        KV = c->num_key_value_heads * c->head_dim;
    int i[LORA_NTARGETS] = {C, C, C, Q, C, C, F}, o[LORA_NTARGETS] = {Q, KV, KV, C, F, F, C};
    memcpy(in, i, sizeof i);
    memcpy(out, o, sizeof o);
}

static void module_name(char *buf, size_t n, int layer, int t, char ab) {
    snprintf(buf, n, "base_model.model.model.layers.%d.%s.%s.lora_%c.weight", layer, module_parent[t],
             lora_module_names[t], ab);
}

int lora_create(sc_lora *ad, const sc_config *base, int rank, float alpha, unsigned targets, float dropout,
                const char *base_name) {
    memset(ad, 0, sizeof *ad);
    if (rank < 1 || rank > 65536) return sc_fail("LoRA rank must be between 1 and 65536, got %d", rank);
    if (!(alpha > 0) || !isfinite(alpha)) return sc_fail("lora_alpha must be positive, got %g", (double)alpha);
    if (!(dropout >= 0 && dropout < 1)) return sc_fail("lora_dropout must be in [0, 1), got %g", (double)dropout);
    if (!targets || (targets & ~LORA_ALL_TARGETS)) return sc_fail("LoRA: no valid target module");
    ad->rank = rank, ad->alpha = alpha, ad->dropout = dropout, ad->targets = targets;
    ad->nlayers = base->num_hidden_layers;
    snprintf(ad->base, sizeof ad->base, "%s", base_name ? base_name : "");
    target_dims(base, ad->in, ad->out);
    int slots = ad->nlayers * LORA_NTARGETS;
    ad->a_off = sc_malloc(sizeof(int64_t) * (size_t)slots);
    ad->b_off = sc_malloc(sizeof(int64_t) * (size_t)slots);
    ad->table = sc_calloc((size_t)(2 * slots), sizeof(sc_param));
    int64_t off = 0;
    for (int l = 0; l < ad->nlayers; l++) {
        for (int t = 0; t < LORA_NTARGETS; t++) {
            int s = l * LORA_NTARGETS + t;
            ad->a_off[s] = ad->b_off[s] = -1;
            if (!(targets & (1u << t))) continue;
            for (int ab = 0; ab < 2; ab++) {
                sc_param *p = &ad->table[ad->ntensors++];
                module_name(p->name, sizeof p->name, l, t, ab ? 'B' : 'A');
                p->ndim = 2;
                p->shape[0] = ab ? ad->out[t] : rank;
                p->shape[1] = ab ? rank : ad->in[t];
                p->numel = p->shape[0] * p->shape[1];
                p->offset = off;
                (ab ? ad->b_off : ad->a_off)[s] = off;
                off += p->numel;
            }
        }
    }
    ad->nparams = off;
    ad->params = sc_calloc((size_t)(off ? off : 1), sizeof(float));
    return 0;
}

void lora_init_weights(sc_lora *ad, uint64_t seed) {
    sc_rng r;
    rng_seed(&r, seed ^ 0x4c6f5241ull); /* "LoRA": a stream of its own, apart from the base's initialisation */
    memset(ad->params, 0, sizeof(float) * (size_t)ad->nparams);
    for (int l = 0; l < ad->nlayers; l++) {
        for (int t = 0; t < LORA_NTARGETS; t++) {
            float *a = lora_a(ad, l, t);
            if (!a) continue;
            /* torch.nn.init.kaiming_uniform_(A, a=sqrt(5)): gain sqrt(2/(1+5)), bound gain*sqrt(3/fan_in) */
            double bound = 1.0 / sqrt((double)ad->in[t]);
            int64_t n = (int64_t)ad->rank * ad->in[t];
            for (int64_t i = 0; i < n; i++) a[i] = (float)((2.0 * rng_uniform(&r) - 1.0) * bound);
        }
    }
}

float lora_scaling(const sc_lora *ad) {
    return ad->use_rslora ? (float)(ad->alpha / sqrt((double)ad->rank)) : ad->alpha / (float)ad->rank;
}

float *lora_block_a(const sc_lora *ad, float *block, int layer, int target) {
    int64_t o = ad->a_off[layer * LORA_NTARGETS + target];
    return o < 0 ? NULL : block + o;
}

float *lora_block_b(const sc_lora *ad, float *block, int layer, int target) {
    int64_t o = ad->b_off[layer * LORA_NTARGETS + target];
    return o < 0 ? NULL : block + o;
}

void lora_free(sc_lora *ad) {
    free(ad->table), free(ad->params), free(ad->a_off), free(ad->b_off);
    memset(ad, 0, sizeof *ad);
}

/* ---- adapter_config.json ---- */

static cJSON *config_json(const sc_lora *ad) {
    cJSON *j = cJSON_CreateObject();
    /* PEFT's LoraConfig fields (as its save_pretrained writes them), so PeftModel.from_pretrained takes it */
    cJSON_AddItemToObject(j, "alpha_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(j, "auto_mapping");
    if (ad->base[0]) cJSON_AddStringToObject(j, "base_model_name_or_path", ad->base);
    else cJSON_AddNullToObject(j, "base_model_name_or_path");
    cJSON_AddStringToObject(j, "bias", "none");
    cJSON_AddBoolToObject(j, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(j, "inference_mode", 1);
    cJSON_AddBoolToObject(j, "init_lora_weights", 1);
    cJSON_AddNullToObject(j, "layer_replication");
    cJSON_AddNullToObject(j, "layers_pattern");
    cJSON_AddNullToObject(j, "layers_to_transform");
    cJSON_AddItemToObject(j, "loftq_config", cJSON_CreateObject());
    cJSON_AddNumberToObject(j, "lora_alpha", ad->alpha);
    cJSON_AddNumberToObject(j, "lora_dropout", ad->dropout);
    cJSON_AddNullToObject(j, "megatron_config");
    cJSON_AddStringToObject(j, "megatron_core", "megatron.core");
    cJSON_AddNullToObject(j, "modules_to_save");
    cJSON_AddStringToObject(j, "peft_type", "LORA");
    cJSON_AddNumberToObject(j, "r", ad->rank);
    cJSON_AddItemToObject(j, "rank_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(j, "revision");
    cJSON *tm = cJSON_AddArrayToObject(j, "target_modules");
    for (int t = 0; t < LORA_NTARGETS; t++)
        if (ad->targets & (1u << t)) cJSON_AddItemToArray(tm, cJSON_CreateString(lora_module_names[t]));
    cJSON_AddStringToObject(j, "task_type", "CAUSAL_LM");
    cJSON_AddBoolToObject(j, "use_dora", 0);
    cJSON_AddBoolToObject(j, "use_rslora", ad->use_rslora);
    return j;
}

int lora_save(const sc_lora *ad, const char *dir) {
    char p[4200];
    cJSON *j = config_json(ad);
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return sc_fail("out of memory writing %s", ADAPTER_CONFIG);
    size_t len = strlen(text);
    text = realloc(text, len + 2);
    if (!text) return sc_fail("out of memory writing %s", ADAPTER_CONFIG);
    text[len] = '\n', text[len + 1] = 0;
    int rc = atomic_write_file(path_join(p, sizeof p, dir, ADAPTER_CONFIG), text, len + 1);
    free(text);
    if (rc) return -1;
    return lora_save_block(ad, ad->params, path_join(p, sizeof p, dir, ADAPTER_WEIGHTS));
}

int lora_save_block(const sc_lora *ad, const float *block, const char *path) {
    st_entry *e = sc_calloc((size_t)(ad->ntensors ? ad->ntensors : 1), sizeof(st_entry));
    for (int i = 0; i < ad->ntensors; i++) {
        const sc_param *q = &ad->table[i];
        e[i] = (st_entry){.name = q->name, .dtype = ST_F32, .ndim = 2, .data = block + q->offset};
        e[i].shape[0] = q->shape[0];
        e[i].shape[1] = q->shape[1];
    }
    static const char *const metadata[] = {"format", "pt", NULL}; /* what PEFT's save_pretrained writes */
    int rc = st_write(path, e, ad->ntensors, metadata);
    free(e);
    return rc;
}

/* The last path component of a model name or path ("deepseek-ai/x/" -> "x"), for comparing bases that were moved
 * or named by their hub id on one side and a local directory on the other. */
static void last_component(const char *s, char *out, size_t n) {
    size_t k = strlen(s);
    while (k > 1 && s[k - 1] == '/') k--;
    size_t b = k;
    while (b > 0 && s[b - 1] != '/') b--;
    snprintf(out, n, "%.*s", (int)(k - b), s + b);
}

static int json_is_empty(const cJSON *v) {
    return !v || cJSON_IsNull(v) || (cJSON_IsFalse(v)) || ((cJSON_IsObject(v) || cJSON_IsArray(v)) && !v->child);
}

/* Parses the text of adapter_config.json into the hyperparameters (targets as a mask); path for messages. */
static int parse_config(const char *text, const char *path, int *rank, float *alpha, unsigned *targets,
                        float *dropout, int *rslora, char *base, size_t base_n) {
    cJSON *j = cJSON_Parse(text);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return sc_fail("%s: not a JSON object", path);
    }
    int rc = -1;
    const cJSON *v;
#define BAD(...) do { sc_fail(__VA_ARGS__); goto done; } while (0)
    v = cJSON_GetObjectItemCaseSensitive(j, "peft_type");
    if (!cJSON_IsString(v) || strcmp(v->valuestring, "LORA"))
        BAD("%s: field peft_type must be \"LORA\"%s", path, cJSON_IsString(v) ? ", this adapter is another kind" : "");
    v = cJSON_GetObjectItemCaseSensitive(j, "r");
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 65536 || v->valuedouble != (int)v->valuedouble)
        BAD("%s: field r must be an integer in [1, 65536]", path);
    *rank = (int)v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(j, "lora_alpha");
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0)) BAD("%s: field lora_alpha must be a positive number", path);
    *alpha = (float)v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(j, "lora_dropout");
    *dropout = 0;
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < 1))
            BAD("%s: field lora_dropout must be a number in [0, 1)", path);
        *dropout = (float)v->valuedouble;
    }
    v = cJSON_GetObjectItemCaseSensitive(j, "target_modules");
    *targets = 0;
    if (cJSON_IsString(v) && !strcmp(v->valuestring, "all-linear")) {
        *targets = LORA_ALL_TARGETS;
    } else if (cJSON_IsArray(v)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, v) {
            int t = cJSON_IsString(it) ? target_index(it->valuestring, strlen(it->valuestring)) : -1;
            if (t < 0)
                BAD("%s: field target_modules names '%s', not one of the Llama linear layers (q_proj k_proj v_proj "
                    "o_proj gate_proj up_proj down_proj)", path, cJSON_IsString(it) ? it->valuestring : "?");
            *targets |= 1u << t;
        }
    }
    if (!*targets) BAD("%s: field target_modules must be a list of module names (or \"all-linear\")", path);
    v = cJSON_GetObjectItemCaseSensitive(j, "bias");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsString(v) && !strcmp(v->valuestring, "none")))
        BAD("%s: field bias must be \"none\" (trained biases are not supported)", path);
    /* features that change the math or the layout: refused rather than silently ignored */
    static const char *const unsupported[] = {"fan_in_fan_out", "use_dora", "rank_pattern", "alpha_pattern",
                                              "modules_to_save", "layers_to_transform", "layer_replication", NULL};
    for (int i = 0; unsupported[i]; i++)
        if (!json_is_empty(cJSON_GetObjectItemCaseSensitive(j, unsupported[i])))
            BAD("%s: field %s is set; only plain LoRA on every layer is supported", path, unsupported[i]);
    v = cJSON_GetObjectItemCaseSensitive(j, "use_rslora");
    *rslora = cJSON_IsTrue(v);
    v = cJSON_GetObjectItemCaseSensitive(j, "base_model_name_or_path");
    if (base) snprintf(base, base_n, "%s", cJSON_IsString(v) ? v->valuestring : "");
    rc = 0;
#undef BAD
done:
    cJSON_Delete(j);
    return rc;
}

int lora_read_config(const char *dir, int *rank, float *alpha, unsigned *targets, float *dropout, char *base,
                     size_t base_n) {
    char p[4200], *text;
    size_t len;
    int rslora;
    if (file_read_all(path_join(p, sizeof p, dir, ADAPTER_CONFIG), &text, &len)) return -1;
    int rc = parse_config(text, p, rank, alpha, targets, dropout, &rslora, base, base_n);
    free(text);
    return rc;
}

int lora_load(sc_lora *ad, const char *dir, const sc_config *base, const char *base_name) {
    memset(ad, 0, sizeof *ad);
    char p[4200], *text, bname[4096];
    size_t len;
    int rank, rslora;
    float alpha, dropout;
    unsigned targets;
    path_join(p, sizeof p, dir, ADAPTER_CONFIG);
    if (file_read_all(p, &text, &len)) return -1;
    int rc = parse_config(text, p, &rank, &alpha, &targets, &dropout, &rslora, bname, sizeof bname);
    free(text);
    if (rc) return -1;
    if (base_name && bname[0]) {
        char a[1024], b[1024];
        last_component(bname, a, sizeof a);
        last_component(base_name, b, sizeof b);
        if (strcmp(a, b))
            return sc_fail("%s: field base_model_name_or_path is \"%s\", this adapter was trained for another base "
                           "than %s", p, bname, base_name);
    }
    if (lora_create(ad, base, rank, alpha, targets, dropout, bname)) return sc_fail_prefix("%s", p);
    ad->use_rslora = rslora;
    st_file f;
    if (st_open(&f, path_join(p, sizeof p, dir, ADAPTER_WEIGHTS))) {
        lora_free(ad);
        return -1;
    }
    rc = 0;
    for (int i = 0; i < f.ntensors && !rc; i++) {
        const st_tensor *t = &f.tensors[i];
        const sc_param *q = NULL;
        for (int k = 0; k < ad->ntensors && !q; k++)
            if (!strcmp(ad->table[k].name, t->name)) q = &ad->table[k];
        if (!q) {
            /* a module this base lacks (a deeper model) or one target_modules does not list */
            rc = sc_fail("%s: tensor %s is not a LoRA weight of this base (%d layers, target_modules %s)", f.path,
                         t->name, base->num_hidden_layers, lora_targets_string(targets, bname, sizeof bname));
        } else if (t->ndim != 2 || t->shape[0] != q->shape[0] || t->shape[1] != q->shape[1]) {
            rc = sc_fail("%s: tensor %s has shape [%lld, %lld], the base needs [%lld, %lld]", f.path, t->name,
                         (long long)t->shape[0], t->ndim > 1 ? (long long)t->shape[1] : 0LL, (long long)q->shape[0],
                         (long long)q->shape[1]);
        } else {
            rc = st_read_f32(&f, t, ad->params + q->offset);
        }
    }
    for (int k = 0; k < ad->ntensors && !rc; k++)
        if (!st_find(&f, ad->table[k].name)) rc = sc_fail("%s: missing tensor %s", f.path, ad->table[k].name);
    st_close(&f);
    if (rc) lora_free(ad);
    return rc;
}

int lora_merge_into(const sc_lora *ad, sc_model *m) {
    if (m->cfg.num_hidden_layers != ad->nlayers) return sc_fail("merge: the adapter has %d layers, the model %d",
                                                                ad->nlayers, m->cfg.num_hidden_layers);
    int in[LORA_NTARGETS], out[LORA_NTARGETS];
    target_dims(&m->cfg, in, out);
    if (memcmp(in, ad->in, sizeof in) || memcmp(out, ad->out, sizeof out))
        return sc_fail("merge: the adapter's layer shapes are not the model's");
    float s = lora_scaling(ad);
    for (int l = 0; l < ad->nlayers; l++) {
        sc_layer_view *w = &m->w.layers[l];
        float *W[LORA_NTARGETS] = {w->wq, w->wk, w->wv, w->wo, w->wgate, w->wup, w->wdown};
        for (int t = 0; t < LORA_NTARGETS; t++) {
            const float *A = lora_a(ad, l, t), *B = lora_b(ad, l, t);
            if (!A) continue;
            /* W[out, in] += s * B[out, r] A[r, in] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, ad->out[t], ad->in[t], ad->rank, s, B, ad->rank, A,
                        ad->in[t], 1.0f, W[t], ad->in[t]);
        }
    }
    return 0;
}
