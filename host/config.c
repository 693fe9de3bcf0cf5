/* config.c — presets, validation and config.json I/O for the Llama configuration (HF LlamaConfig fields). */
#include "host/config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/error.h"
#include "host/fileio.h"

typedef struct {
    const char *name;
    int hidden, ffn, layers, heads, kv_heads, ctx, vocab;
} preset;

/* tiny: tests (GQA 2:1, head_dim 64 so the CUDA kernels take it too). mini/small: the demo on a CPU or a small
 * GPU. 304m: the product model. head_dim = hidden / heads in all of them. */
static const preset presets[] = {
    {"tiny", 128, 352, 2, 2, 1, 512, 512},
    {"mini", 256, 704, 4, 4, 2, 512, 4096},
    {"small", 384, 1024, 6, 6, 2, 1024, 8192},
    {"304m", 1152, 3328, 18, 16, 4, 4096, 32768},
};

const char *config_preset_names(void) { return "tiny, mini, small, 304m"; }

int config_preset(sc_config *cfg, const char *name) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        const preset *p = &presets[i];
        if (strcmp(name, p->name) != 0) continue;
        memset(cfg, 0, sizeof *cfg);
        cfg->hidden_size = p->hidden;
        cfg->intermediate_size = p->ffn;
        cfg->num_hidden_layers = p->layers;
        cfg->num_attention_heads = p->heads;
        cfg->num_key_value_heads = p->kv_heads;
        cfg->head_dim = p->hidden / p->heads;
        cfg->max_position_embeddings = p->ctx;
        cfg->vocab_size = p->vocab;
        cfg->rms_norm_eps = 1e-5;
        cfg->rope_theta = 10000.0;
        cfg->tie_word_embeddings = 1;
        cfg->bos_token_id = -1;
        cfg->eos_token_id = -1;
        snprintf(cfg->torch_dtype, sizeof cfg->torch_dtype, "float32");
        snprintf(cfg->model_type, sizeof cfg->model_type, "llama");
        return 0;
    }
    return sc_fail("unknown preset '%s' (expected one of: %s)", name, config_preset_names());
}

int config_validate(const sc_config *c, const char *path) {
#define REQUIRE_POSITIVE(field)                                                                                   \
    if (c->field <= 0) return sc_fail("%s: field " #field " must be a positive integer, got %d", path, c->field)
    REQUIRE_POSITIVE(hidden_size);
    REQUIRE_POSITIVE(intermediate_size);
    REQUIRE_POSITIVE(num_hidden_layers);
    REQUIRE_POSITIVE(num_attention_heads);
    REQUIRE_POSITIVE(num_key_value_heads);
    REQUIRE_POSITIVE(head_dim);
    REQUIRE_POSITIVE(max_position_embeddings);
    REQUIRE_POSITIVE(vocab_size);
#undef REQUIRE_POSITIVE
    if (c->num_attention_heads % c->num_key_value_heads)
        return sc_fail("%s: field num_key_value_heads (%d) must divide num_attention_heads (%d)", path,
                       c->num_key_value_heads, c->num_attention_heads);
    if (c->head_dim % 2) return sc_fail("%s: field head_dim must be even for RoPE, got %d", path, c->head_dim);
    if (!(c->rms_norm_eps > 0) || !isfinite(c->rms_norm_eps))
        return sc_fail("%s: field rms_norm_eps must be positive, got %g", path, c->rms_norm_eps);
    if (!(c->rope_theta > 0) || !isfinite(c->rope_theta))
        return sc_fail("%s: field rope_theta must be positive, got %g", path, c->rope_theta);
    /* guard the int64 products used for buffer sizes against absurd values */
    if (c->hidden_size > 65536 || c->intermediate_size > 262144 || c->num_hidden_layers > 1024 ||
        c->vocab_size > 4194304 || c->max_position_embeddings > 1048576 || c->head_dim > 1024 ||
        c->num_attention_heads > 1024)
        return sc_fail("%s: sizes are beyond what SmallCoder supports (hidden %d, ffn %d, layers %d, vocab %d)", path,
                       c->hidden_size, c->intermediate_size, c->num_hidden_layers, c->vocab_size);
    if (c->bos_token_id >= c->vocab_size || c->eos_token_id >= c->vocab_size)
        return sc_fail("%s: bos_token_id/eos_token_id must be below vocab_size %d", path, c->vocab_size);
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] < 0 || c->eos_ids[i] >= c->vocab_size)
            return sc_fail("%s: eos_token_id %d must be below vocab_size %d", path, c->eos_ids[i], c->vocab_size);
    if (c->rope_scaling != SC_ROPE_NONE && !(c->rope_factor >= 1 && c->rope_factor <= 1024))
        return sc_fail("%s: field rope_scaling.factor must be in [1, 1024], got %g", path, c->rope_factor);
    if (c->rope_scaling == SC_ROPE_LLAMA3 &&
        !(c->rope_low_freq_factor > 0 && c->rope_high_freq_factor > c->rope_low_freq_factor &&
          c->rope_original_max_pos > 0))
        return sc_fail("%s: rope_scaling llama3 needs low_freq_factor > 0, high_freq_factor > low_freq_factor and "
                       "original_max_position_embeddings > 0", path);
    return 0;
}

void config_rope_inv_freq(const sc_config *c, float *inv_freq) {
    int hd = c->head_dim;
    float theta = (float)c->rope_theta, factor = (float)c->rope_factor;
    for (int i = 0; i < hd / 2; i++) {
        /* HF: 1 / base^(arange(0, d, 2).float() / d), all in float32 */
        float f = 1.0f / powf(theta, (float)(2 * i) / (float)hd);
        if (c->rope_scaling == SC_ROPE_LINEAR) f = f / factor;
        else if (c->rope_scaling == SC_ROPE_LLAMA3) {
            /* HF _compute_llama3_parameters: long wavelengths slowed by factor, short ones kept, a smooth blend
             * between (wavelength thresholds original_max_pos / low and / high freq factor) */
            float old = (float)c->rope_original_max_pos, lo = (float)c->rope_low_freq_factor,
                  hi = (float)c->rope_high_freq_factor;
            float wavelen = 2.0f * 3.14159265358979f / f;
            float low_wl = old / lo, high_wl = old / hi;
            if (wavelen > low_wl) f = f / factor;
            else if (!(wavelen < high_wl)) {
                float smooth = (old / wavelen - lo) / (hi - lo);
                f = (1 - smooth) * f / factor + smooth * f;
            }
        }
        inv_freq[i] = f;
    }
}

int config_has_biases(const sc_config *c) { return c->qkv_bias || c->o_bias || c->mlp_bias; }

int64_t config_param_count(const sc_config *c) {
    int64_t C = c->hidden_size, F = c->intermediate_size, V = c->vocab_size;
    int64_t q = (int64_t)c->num_attention_heads * c->head_dim, kv = (int64_t)c->num_key_value_heads * c->head_dim;
    int64_t layer = C * q + 2 * C * kv + q * C + 3 * C * F + 2 * C;
    layer += (c->qkv_bias ? q + 2 * kv : 0) + (c->o_bias ? C : 0) + (c->mlp_bias ? 2 * F + C : 0);
    return V * C * (c->tie_word_embeddings ? 1 : 2) + c->num_hidden_layers * layer + C;
}

/* ---- config.json ---- */

static int get_int(const cJSON *root, const char *key, int *out, int required, const char *path) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it)) {
        if (required) return sc_fail("%s: missing field %s", path, key);
        return 1;
    }
    if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) || fabs(it->valuedouble) > 2147483647.0)
        return sc_fail("%s: field %s must be an integer", path, key);
    *out = (int)it->valuedouble;
    return 0;
}

static int get_double(const cJSON *root, const char *key, double *out, const char *path) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it)) return 1;
    if (!cJSON_IsNumber(it)) return sc_fail("%s: field %s must be a number", path, key);
    *out = it->valuedouble;
    return 0;
}

/* bos/eos_token_id may be an int or a list of ints in HF configs: *out gets the first, list (optional) all of
 * them that are not there yet (up to SC_MAX_EOS). */
static int get_token_id(const cJSON *root, const char *key, int *out, int *list, int *nlist, const char *path) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = -1;
    if (!it || cJSON_IsNull(it)) return 0;
    const cJSON *first = cJSON_IsArray(it) ? it->child : it;
    for (const cJSON *e = first; e; e = cJSON_IsArray(it) ? e->next : NULL) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > 2147483647.0 ||
            e->valuedouble != floor(e->valuedouble))
            return sc_fail("%s: field %s must be a token id or a list of token ids", path, key);
        int id = (int)e->valuedouble, seen = 0;
        if (*out < 0) *out = id;
        if (!list) continue;
        for (int k = 0; k < *nlist; k++) seen |= list[k] == id;
        if (!seen && *nlist < SC_MAX_EOS) list[(*nlist)++] = id;
    }
    return 0;
}

static int get_bool(const cJSON *root, const char *key, int *out, const char *path) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it || cJSON_IsNull(it)) return 0;
    if (!cJSON_IsBool(it)) return sc_fail("%s: field %s must be true or false", path, key);
    *out = cJSON_IsTrue(it);
    return 0;
}

/* rope_scaling: null, or {"rope_type" (or the older "type"): "linear" | "llama3", "factor", ...}. Other types
 * (dynamic, yarn, longrope, su, ...) change the math in ways not implemented here: refused by name. */
static int get_rope_scaling(const cJSON *root, sc_config *c, const char *path) {
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (!rs || cJSON_IsNull(rs)) return 0;
    if (!cJSON_IsObject(rs)) return sc_fail("%s: field rope_scaling must be null or an object", path);
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(rs, "rope_type");
    if (!ty) ty = cJSON_GetObjectItemCaseSensitive(rs, "type");
    if (!cJSON_IsString(ty)) return sc_fail("%s: field rope_scaling has no rope_type", path);
    if (strcmp(ty->valuestring, "default") == 0) return 0;
    if (strcmp(ty->valuestring, "linear") == 0) c->rope_scaling = SC_ROPE_LINEAR;
    else if (strcmp(ty->valuestring, "llama3") == 0) c->rope_scaling = SC_ROPE_LLAMA3;
    else
        return sc_fail("%s: rope_scaling type '%s' is not supported (supported: linear, llama3)", path,
                       ty->valuestring);
    c->rope_factor = 0;
    if (get_double(rs, "factor", &c->rope_factor, path) < 0) return -1;
    if (c->rope_scaling == SC_ROPE_LLAMA3) {
        if (get_double(rs, "low_freq_factor", &c->rope_low_freq_factor, path) < 0 ||
            get_double(rs, "high_freq_factor", &c->rope_high_freq_factor, path) < 0 ||
            get_int(rs, "original_max_position_embeddings", &c->rope_original_max_pos, 1, path) < 0)
            return -1;
    }
    return 0;
}

/* The architecture variants: model_type llama, qwen2 (q/k/v biases) or mistral; biases; sliding window. Anything
 * we do not implement is refused rather than computed as something else. Runs after the sizes are read. */
static int get_architecture(const cJSON *root, sc_config *c, const char *path) {
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const char *type = mt ? (cJSON_IsString(mt) ? mt->valuestring : "?") : "llama";
    if (strcmp(type, "llama") && strcmp(type, "qwen2") && strcmp(type, "mistral"))
        return sc_fail("%s: field model_type is '%s', supported: llama, qwen2, mistral", path, type);
    snprintf(c->model_type, sizeof c->model_type, "%s", type);
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (act && !(cJSON_IsString(act) && strcmp(act->valuestring, "silu") == 0))
        return sc_fail("%s: field hidden_act must be \"silu\"", path);
    int attn_bias = 0;
    if (get_bool(root, "attention_bias", &attn_bias, path) || get_bool(root, "mlp_bias", &c->mlp_bias, path))
        return -1;
    if (strcmp(type, "qwen2") == 0) {
        /* HF Qwen2Attention: q/k/v with bias, o_proj without; the config has no switch for it */
        c->qkv_bias = 1;
        if (attn_bias || c->mlp_bias) return sc_fail("%s: attention_bias/mlp_bias are not qwen2 fields", path);
    } else if (strcmp(type, "mistral") == 0) {
        if (attn_bias || c->mlp_bias) return sc_fail("%s: attention_bias/mlp_bias are not mistral fields", path);
    } else {
        c->qkv_bias = c->o_bias = attn_bias;
    }
    /* sliding window: mistral uses it whenever set; qwen2 only with use_sliding_window. A window at least as long
     * as the context never masks anything, so it is the plain causal attention computed here. */
    int use_sw = strcmp(type, "mistral") == 0;
    if (strcmp(type, "qwen2") == 0 && get_bool(root, "use_sliding_window", &use_sw, path)) return -1;
    int sw = 0;
    if (get_int(root, "sliding_window", &sw, 0, path) < 0) return -1;
    if (use_sw && sw > 0 && sw < c->max_position_embeddings)
        return sc_fail("%s: field sliding_window %d is smaller than the context (max_position_embeddings %d): "
                       "sliding-window attention is not supported", path, sw, c->max_position_embeddings);
    c->sliding_window = use_sw && sw > 0 ? sw : 0;
    return get_rope_scaling(root, c, path);
}

int config_load(sc_config *cfg, const char *path) {
    char *text;
    size_t len;
    if (file_read_all(path, &text, &len)) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return sc_fail("%s: not a JSON object (invalid JSON)", path);
    }
    memset(cfg, 0, sizeof *cfg);
    int rc = get_int(root, "hidden_size", &cfg->hidden_size, 1, path);
    if (!rc) rc = get_int(root, "intermediate_size", &cfg->intermediate_size, 1, path);
    if (!rc) rc = get_int(root, "num_hidden_layers", &cfg->num_hidden_layers, 1, path);
    if (!rc) rc = get_int(root, "num_attention_heads", &cfg->num_attention_heads, 1, path);
    if (!rc) rc = get_int(root, "vocab_size", &cfg->vocab_size, 1, path);
    if (rc < 0) goto done;
    /* optional fields take HF LlamaConfig's defaults */
    cfg->num_key_value_heads = cfg->num_attention_heads;
    cfg->head_dim = cfg->num_attention_heads > 0 ? cfg->hidden_size / cfg->num_attention_heads : 0;
    cfg->max_position_embeddings = 2048;
    cfg->rms_norm_eps = 1e-6;
    cfg->rope_theta = 10000.0;
    if ((rc = get_int(root, "num_key_value_heads", &cfg->num_key_value_heads, 0, path)) < 0) goto done;
    if ((rc = get_int(root, "head_dim", &cfg->head_dim, 0, path)) < 0) goto done;
    if ((rc = get_int(root, "max_position_embeddings", &cfg->max_position_embeddings, 0, path)) < 0) goto done;
    if ((rc = get_double(root, "rms_norm_eps", &cfg->rms_norm_eps, path)) < 0) goto done;
    if ((rc = get_double(root, "rope_theta", &cfg->rope_theta, path)) < 0) goto done;
    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(root, "tie_word_embeddings");
    if (tie && !cJSON_IsBool(tie)) {
        rc = sc_fail("%s: field tie_word_embeddings must be true or false", path);
        goto done;
    }
    cfg->tie_word_embeddings = tie ? cJSON_IsTrue(tie) : 0; /* HF LlamaConfig default: untied */
    if ((rc = get_architecture(root, cfg, path)) < 0) goto done;
    if ((rc = get_token_id(root, "bos_token_id", &cfg->bos_token_id, NULL, NULL, path)) < 0) goto done;
    if ((rc = get_token_id(root, "eos_token_id", &cfg->eos_token_id, cfg->eos_ids, &cfg->n_eos, path)) < 0) goto done;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(root, "torch_dtype");
    snprintf(cfg->torch_dtype, sizeof cfg->torch_dtype, "%s", cJSON_IsString(dt) ? dt->valuestring : "float32");
    rc = config_validate(cfg, path);
done:
    cJSON_Delete(root);
    return rc < 0 ? -1 : 0;
}

int config_save(const sc_config *c, const char *path) {
    cJSON *root = cJSON_CreateObject();
    const char *type = c->model_type[0] ? c->model_type : "llama";
    cJSON *arch = cJSON_AddArrayToObject(root, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString(strcmp(type, "qwen2") == 0     ? "Qwen2ForCausalLM"
                                                  : strcmp(type, "mistral") == 0 ? "MistralForCausalLM"
                                                                                 : "LlamaForCausalLM"));
    cJSON_AddStringToObject(root, "model_type", type);
    cJSON_AddStringToObject(root, "hidden_act", "silu");
    cJSON_AddNumberToObject(root, "hidden_size", c->hidden_size);
    cJSON_AddNumberToObject(root, "intermediate_size", c->intermediate_size);
    cJSON_AddNumberToObject(root, "num_hidden_layers", c->num_hidden_layers);
    cJSON_AddNumberToObject(root, "num_attention_heads", c->num_attention_heads);
    cJSON_AddNumberToObject(root, "num_key_value_heads", c->num_key_value_heads);
    cJSON_AddNumberToObject(root, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(root, "max_position_embeddings", c->max_position_embeddings);
    cJSON_AddNumberToObject(root, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(root, "rms_norm_eps", c->rms_norm_eps);
    cJSON_AddNumberToObject(root, "rope_theta", c->rope_theta);
    cJSON_AddBoolToObject(root, "tie_word_embeddings", c->tie_word_embeddings);
    if (c->rope_scaling == SC_ROPE_NONE) cJSON_AddNullToObject(root, "rope_scaling");
    else {
        cJSON *rs = cJSON_AddObjectToObject(root, "rope_scaling");
        cJSON_AddStringToObject(rs, "rope_type", c->rope_scaling == SC_ROPE_LINEAR ? "linear" : "llama3");
        cJSON_AddNumberToObject(rs, "factor", c->rope_factor);
        if (c->rope_scaling == SC_ROPE_LLAMA3) {
            cJSON_AddNumberToObject(rs, "low_freq_factor", c->rope_low_freq_factor);
            cJSON_AddNumberToObject(rs, "high_freq_factor", c->rope_high_freq_factor);
            cJSON_AddNumberToObject(rs, "original_max_position_embeddings", c->rope_original_max_pos);
        }
    }
    if (strcmp(type, "llama") == 0) {
        cJSON_AddBoolToObject(root, "attention_bias", c->o_bias);
        cJSON_AddBoolToObject(root, "mlp_bias", c->mlp_bias);
    }
    if (c->sliding_window > 0) {
        cJSON_AddNumberToObject(root, "sliding_window", c->sliding_window);
        if (strcmp(type, "qwen2") == 0) cJSON_AddBoolToObject(root, "use_sliding_window", 1);
    }
    cJSON_AddNumberToObject(root, "initializer_range", 0.02);
    if (c->bos_token_id >= 0) cJSON_AddNumberToObject(root, "bos_token_id", c->bos_token_id);
    if (c->n_eos > 1) {
        cJSON *ids = cJSON_AddArrayToObject(root, "eos_token_id");
        for (int i = 0; i < c->n_eos; i++) cJSON_AddItemToArray(ids, cJSON_CreateNumber(c->eos_ids[i]));
    } else if (c->eos_token_id >= 0)
        cJSON_AddNumberToObject(root, "eos_token_id", c->eos_token_id);
    cJSON_AddStringToObject(root, "torch_dtype", c->torch_dtype[0] ? c->torch_dtype : "float32");
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    size_t n = strlen(text);
    char *withnl = sc_malloc(n + 2);
    memcpy(withnl, text, n);
    withnl[n] = '\n';
    cJSON_free(text);
    int rc = atomic_write_file(path, withnl, n + 1);
    free(withnl);
    return rc;
}

int config_load_generation(sc_config *cfg, const char *dir) {
    char path[4096];
    path_join(path, sizeof path, dir, "generation_config.json");
    if (access(path, F_OK) != 0) return 0;
    char *text;
    size_t len;
    if (file_read_all(path, &text, &len)) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    int first, rc = 0;
    if (!root || !cJSON_IsObject(root)) rc = sc_fail("%s: not a JSON object (invalid JSON)", path);
    else rc = get_token_id(root, "eos_token_id", &first, cfg->eos_ids, &cfg->n_eos, path);
    cJSON_Delete(root);
    if (rc < 0) return -1;
    if (cfg->eos_token_id < 0 && cfg->n_eos > 0) cfg->eos_token_id = cfg->eos_ids[0];
    return config_validate(cfg, path);
}
