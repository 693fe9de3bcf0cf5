/* test_lora_format.c — the PEFT adapter layout: target lists, PEFT tensor names and shapes, save/load round trip
 * (bit-exact), adapter_config.json fields, and one-line refusals of an adapter for another base (shape, depth,
 * base name) or with features we do not implement. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/error.h"
#include "host/fileio.h"
#include "host/lora.h"
#include "tests/check.h"

static void write_text(const char *path, const char *text) {
    CHECK(atomic_write_file(path, text, strlen(text)) == 0);
}

/* rewrites one field of dir/adapter_config.json to the JSON value text */
static void set_field(const char *dir, const char *field, const char *value) {
    char p[4200], *text;
    size_t len;
    path_join(p, sizeof p, dir, "adapter_config.json");
    CHECK(file_read_all(p, &text, &len) == 0);
    cJSON *j = cJSON_Parse(text);
    free(text);
    cJSON_DeleteItemFromObject(j, field);
    cJSON_AddItemToObject(j, field, cJSON_Parse(value));
    char *out = cJSON_Print(j);
    write_text(p, out);
    free(out);
    cJSON_Delete(j);
}

int main(void) {
    unsigned mask;
    char buf[128];
    CHECK(lora_parse_targets("q,v", "--lora-targets", &mask) == 0 && mask == ((1u << LORA_Q) | (1u << LORA_V)));
    CHECK(lora_parse_targets("gate_proj,down", "--lora-targets", &mask) == 0 &&
          mask == ((1u << LORA_GATE) | (1u << LORA_DOWN)));
    CHECK(lora_parse_targets("all", "--lora-targets", &mask) == 0 && mask == LORA_ALL_TARGETS);
    CHECK(!strcmp(lora_targets_string(LORA_ALL_TARGETS, buf, sizeof buf), "q,k,v,o,gate,up,down"));
    CHECK_FAILS_WITH(lora_parse_targets("q,lm_head", "--lora-targets", &mask), "lm_head");

    sc_config cfg;
    CHECK(config_preset(&cfg, "tiny") == 0);
    sc_lora ad;
    CHECK(lora_create(&ad, &cfg, 4, 8.0f, LORA_ALL_TARGETS, 0.05f, "models/tiny-base") == 0);
    CHECK(ad.ntensors == 2 * 7 * cfg.num_hidden_layers);
    CHECK(!strcmp(ad.table[0].name, "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
    CHECK(!strcmp(ad.table[1].name, "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"));
    CHECK(!strcmp(ad.table[13].name, "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight"));
    /* A [r, in], B [out, r] */
    CHECK(ad.table[0].shape[0] == 4 && ad.table[0].shape[1] == cfg.hidden_size);
    CHECK(ad.table[13].shape[0] == cfg.hidden_size && ad.table[13].shape[1] == 4);
    CHECK(ad.table[12].shape[1] == cfg.intermediate_size);
    CHECK(lora_scaling(&ad) == 2.0f);
    lora_init_weights(&ad, 7);
    /* A uniform within 1/sqrt(in), not all zero; B zero */
    float bound = 1.0f / sqrtf((float)cfg.hidden_size), amax = 0;
    const float *A = lora_a(&ad, 1, LORA_K), *B = lora_b(&ad, 1, LORA_K);
    for (int i = 0; i < 4 * cfg.hidden_size; i++) amax = fabsf(A[i]) > amax ? fabsf(A[i]) : amax;
    CHECKF(amax > 0.5f * bound && amax <= bound, "max |A| %g, bound %g", (double)amax, (double)bound);
    int bzero = 1;
    for (int i = 0; i < ad.out[LORA_K] * 4; i++) bzero &= B[i] == 0.0f;
    CHECK(bzero);
    for (int64_t i = 0; i < ad.nparams; i++) ad.params[i] += 0.001f * (float)(i % 97); /* B non-zero too */

    char dir[] = "lora_format_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    CHECK(lora_save(&ad, dir) == 0);
    sc_lora back;
    CHECK(lora_load(&back, dir, &cfg, "/elsewhere/tiny-base/") == 0);
    CHECK(back.rank == 4 && back.alpha == 8.0f && back.targets == LORA_ALL_TARGETS && back.dropout == 0.05f);
    CHECK(!strcmp(back.base, "models/tiny-base"));
    CHECK(back.nparams == ad.nparams && !memcmp(back.params, ad.params, sizeof(float) * (size_t)ad.nparams));
    lora_free(&back);

    /* the PEFT fields as PEFT writes them */
    char p[4200], *text;
    size_t len;
    CHECK(file_read_all(path_join(p, sizeof p, dir, "adapter_config.json"), &text, &len) == 0);
    cJSON *j = cJSON_Parse(text);
    free(text);
    CHECK(!strcmp(cJSON_GetObjectItem(j, "peft_type")->valuestring, "LORA"));
    CHECK(!strcmp(cJSON_GetObjectItem(j, "task_type")->valuestring, "CAUSAL_LM"));
    CHECK(!strcmp(cJSON_GetObjectItem(j, "bias")->valuestring, "none"));
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(j, "fan_in_fan_out")) && cJSON_IsFalse(cJSON_GetObjectItem(j, "use_rslora")));
    CHECK(cJSON_GetObjectItem(j, "r")->valueint == 4 && cJSON_GetObjectItem(j, "lora_alpha")->valuedouble == 8.0);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "target_modules")) == 7);
    cJSON_Delete(j);

    /* another base: a different base name, a wider model, a shallower model */
    CHECK_FAILS_WITH(lora_load(&back, dir, &cfg, "models/other-base"), "base_model_name_or_path");
    sc_config wide = cfg;
    wide.intermediate_size += 32;
    CHECK_FAILS_WITH(lora_load(&back, dir, &wide, NULL), "the base needs");
    sc_config shallow = cfg;
    shallow.num_hidden_layers = 1;
    CHECK_FAILS_WITH(lora_load(&back, dir, &shallow, NULL), "layers.1.");
    CHECK(strchr(sc_error(), '\n') == NULL);

    /* features that change the math are refused by field name */
    set_field(dir, "use_dora", "true");
    CHECK_FAILS_WITH(lora_load(&back, dir, &cfg, NULL), "use_dora");
    set_field(dir, "use_dora", "false");
    set_field(dir, "rank_pattern", "{\"q_proj\": 8}");
    CHECK_FAILS_WITH(lora_load(&back, dir, &cfg, NULL), "rank_pattern");
    set_field(dir, "rank_pattern", "{}");
    set_field(dir, "target_modules", "[\"q_proj\", \"lm_head\"]");
    CHECK_FAILS_WITH(lora_load(&back, dir, &cfg, NULL), "lm_head");
    /* fewer targets in the config than tensors in the file: the extra tensors are refused */
    set_field(dir, "target_modules", "[\"q_proj\"]");
    CHECK_FAILS_WITH(lora_load(&back, dir, &cfg, NULL), "not a LoRA weight of this base");
    set_field(dir, "target_modules", "\"all-linear\"");
    set_field(dir, "use_rslora", "true");
    CHECK(lora_load(&back, dir, &cfg, NULL) == 0);
    CHECK(back.use_rslora && lora_scaling(&back) == 4.0f); /* 8 / sqrt(4) */
    lora_free(&back);
    set_field(dir, "peft_type", "\"IA3\"");
    CHECK_FAILS_WITH(lora_load(&back, dir, &cfg, NULL), "peft_type");

    unlink(path_join(p, sizeof p, dir, "adapter_config.json"));
    unlink(path_join(p, sizeof p, dir, "adapter_model.safetensors"));
    rmdir(dir);
    lora_free(&ad);
    return check_result("test_lora_format");
}
