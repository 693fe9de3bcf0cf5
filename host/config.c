/* config.c — presets, validation and config.json I/O for the Llama configuration (HF LlamaConfig fields). */
#include "host/config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    return 0;
}

int64_t config_param_count(const sc_config *c) {
    int64_t C = c->hidden_size, F = c->intermediate_size, V = c->vocab_size;
    int64_t q = (int64_t)c->num_attention_heads * c->head_dim, kv = (int64_t)c->num_key_value_heads * c->head_dim;
    int64_t layer = C * q + 2 * C * kv + q * C + 3 * C * F + 2 * C;
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

/* eos_token_id may be an int or a list of ints in HF configs; we keep the first. */
static int get_token_id(const cJSON *root, const char *key, int *out, const char *path) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = -1;
    if (!it || cJSON_IsNull(it)) return 0;
    if (cJSON_IsArray(it)) it = cJSON_GetArrayItem(it, 0);
    if (!it) return 0;
    /* bounded before the cast: a double beyond INT_MAX converted to int is undefined behaviour */
    if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0 && it->valuedouble <= 2147483647.0) ||
        it->valuedouble != floor(it->valuedouble))
        return sc_fail("%s: field %s must be a token id (an integer >= 0)", path, key);
    *out = (int)it->valuedouble;
    return 0;
}

/* Refuses configs whose architecture features we do not implement, rather than computing something else. */
static int check_unsupported(const cJSON *root, const char *path) {
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (mt && !(cJSON_IsString(mt) && (strcmp(mt->valuestring, "llama") == 0 || strcmp(mt->valuestring, "mistral") == 0)))
        return sc_fail("%s: field model_type is '%s', only 'llama' is supported", path,
                       cJSON_IsString(mt) ? mt->valuestring : "?");
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (act && !(cJSON_IsString(act) && strcmp(act->valuestring, "silu") == 0))
        return sc_fail("%s: field hidden_act must be \"silu\"", path);
    const char *must_be_false[] = {"attention_bias", "mlp_bias"};
    for (int i = 0; i < 2; i++) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(root, must_be_false[i]);
        if (b && cJSON_IsTrue(b)) return sc_fail("%s: field %s=true is not supported", path, must_be_false[i]);
    }
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (rs && !cJSON_IsNull(rs)) return sc_fail("%s: field rope_scaling is not supported (must be null)", path);
    const cJSON *sw = cJSON_GetObjectItemCaseSensitive(root, "sliding_window");
    if (sw && !cJSON_IsNull(sw)) return sc_fail("%s: field sliding_window is not supported (must be null)", path);
    return 0;
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
    int rc = check_unsupported(root, path);
    if (!rc) rc = get_int(root, "hidden_size", &cfg->hidden_size, 1, path);
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
    if ((rc = get_token_id(root, "bos_token_id", &cfg->bos_token_id, path)) < 0) goto done;
    if ((rc = get_token_id(root, "eos_token_id", &cfg->eos_token_id, path)) < 0) goto done;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(root, "torch_dtype");
    snprintf(cfg->torch_dtype, sizeof cfg->torch_dtype, "%s", cJSON_IsString(dt) ? dt->valuestring : "float32");
    rc = config_validate(cfg, path);
done:
    cJSON_Delete(root);
    return rc < 0 ? -1 : 0;
}

int config_save(const sc_config *c, const char *path) {
    cJSON *root = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(root, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("LlamaForCausalLM"));
    cJSON_AddStringToObject(root, "model_type", "llama");
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
    cJSON_AddNullToObject(root, "rope_scaling");
    cJSON_AddBoolToObject(root, "attention_bias", 0);
    cJSON_AddBoolToObject(root, "mlp_bias", 0);
    cJSON_AddNumberToObject(root, "initializer_range", 0.02);
    if (c->bos_token_id >= 0) cJSON_AddNumberToObject(root, "bos_token_id", c->bos_token_id);
    if (c->eos_token_id >= 0) cJSON_AddNumberToObject(root, "eos_token_id", c->eos_token_id);
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
