/* test_config.c — presets (exact parameter counts), config.json round trip and every rejected config. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/check.h"
#include "host/config.h"
#include "host/error.h"
#include "host/fileio.h"

static int load_text(const char *text, sc_config *c) {
    atomic_write_file("cfg_test.json", text, strlen(text));
    return config_load(c, "cfg_test.json");
}

int main(void) {
    sc_config c, d;
    CHECK(config_preset(&c, "304m") == 0);
    CHECK(config_param_count(&c) == 304539264LL);
    CHECK(c.head_dim == 72 && c.num_key_value_heads == 4 && c.tie_word_embeddings);
    CHECK(config_preset(&c, "tiny") == 0);
    CHECK(config_param_count(&c) > 100000 && config_param_count(&c) < 1000000);
    CHECK(c.num_attention_heads != c.num_key_value_heads); /* tiny exercises GQA */
    CHECK_FAILS_WITH(config_preset(&c, "huge"), "unknown preset 'huge'");

    /* round trip */
    CHECK(config_preset(&c, "small") == 0);
    c.bos_token_id = 1, c.eos_token_id = 2, c.n_eos = 1, c.eos_ids[0] = 2;
    CHECK(config_save(&c, "cfg_rt.json") == 0);
    CHECK(config_load(&d, "cfg_rt.json") == 0);
    CHECK(memcmp(&c, &d, sizeof c) == 0);
    /* ... and with every variant field set: biases, llama3 rope scaling, an end-id list */
    c.qkv_bias = c.o_bias = c.mlp_bias = 1;
    c.rope_scaling = SC_ROPE_LLAMA3, c.rope_factor = 32, c.rope_low_freq_factor = 1, c.rope_high_freq_factor = 4;
    c.rope_original_max_pos = 8192;
    c.n_eos = 3, c.eos_ids[1] = 5, c.eos_ids[2] = 6;
    CHECK(config_save(&c, "cfg_rt.json") == 0);
    CHECK(config_load(&d, "cfg_rt.json") == 0);
    CHECK(memcmp(&c, &d, sizeof c) == 0);
    unlink("cfg_rt.json");

    /* RoPE scaling: linear divides every frequency; llama3 keeps the high ones, divides the low ones */
    {
        sc_config r;
        CHECK(config_preset(&r, "tiny") == 0);
        int half = r.head_dim / 2;
        float base[512], lin[512], l3[512];
        config_rope_inv_freq(&r, base);
        CHECK(fabsf(base[0] - 1.0f) < 1e-7f && fabsf(base[1] - powf(10000.0f, -2.0f / r.head_dim)) < 1e-6f);
        r.rope_scaling = SC_ROPE_LINEAR, r.rope_factor = 4;
        config_rope_inv_freq(&r, lin);
        for (int i = 0; i < half; i++) CHECK(lin[i] == base[i] / 4);
        r.rope_scaling = SC_ROPE_LLAMA3, r.rope_factor = 8, r.rope_low_freq_factor = 1, r.rope_high_freq_factor = 4;
        r.rope_original_max_pos = 64; /* wavelengths above 64 are divided by 8, below 16 kept, between blended */
        config_rope_inv_freq(&r, l3);
        int kept = 0, divided = 0, blended = 0;
        for (int i = 0; i < half; i++) {
            float wl = 2 * 3.14159265f / base[i];
            if (wl < 16) kept += l3[i] == base[i];
            else if (wl > 64) divided += l3[i] == base[i] / 8;
            else blended += l3[i] < base[i] && l3[i] > base[i] / 8;
        }
        CHECK(kept + divided + blended == half && kept > 0 && divided > 0 && blended > 0);
    }

    /* qwen2: q/k/v biases without a field saying so; mistral with a window as long as the context */
    CHECK(load_text("{\"model_type\": \"qwen2\", \"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 1,"
                    "\"num_attention_heads\": 4, \"vocab_size\": 100, \"sliding_window\": 64, \"use_sliding_window\": false,"
                    "\"max_position_embeddings\": 512}", &c) == 0);
    CHECK(c.qkv_bias && !c.o_bias && !c.mlp_bias && strcmp(c.model_type, "qwen2") == 0);
    CHECK(load_text("{\"model_type\": \"mistral\", \"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 1,"
                    "\"num_attention_heads\": 4, \"vocab_size\": 100, \"sliding_window\": 512,"
                    "\"max_position_embeddings\": 512}", &c) == 0);
    CHECK(!c.qkv_bias && c.sliding_window == 512);
    CHECK(load_text("{\"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 1, \"attention_bias\": true,"
                    "\"num_attention_heads\": 4, \"vocab_size\": 100, \"mlp_bias\": true,"
                    "\"rope_scaling\": {\"type\": \"linear\", \"factor\": 4.0}}", &c) == 0);
    CHECK(c.qkv_bias && c.o_bias && c.mlp_bias && c.rope_scaling == SC_ROPE_LINEAR && c.rope_factor == 4);

    /* HF defaults for optional fields; eos as a list */
    CHECK(load_text("{\"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 1,"
                    "\"num_attention_heads\": 4, \"vocab_size\": 100, \"eos_token_id\": [7, 8]}", &c) == 0);
    CHECK(c.num_key_value_heads == 4 && c.head_dim == 16 && !c.tie_word_embeddings && c.eos_token_id == 7);

    sc_config x;
    CHECK_FAILS_WITH(load_text("{\"hidden_size\": 64,", &x), "invalid JSON");
    CHECK_FAILS_WITH(load_text("[1,2]", &x), "not a JSON object");
    CHECK_FAILS_WITH(load_text("{\"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 1,"
                               "\"num_attention_heads\": 4}", &x), "missing field vocab_size");
    CHECK_FAILS_WITH(load_text("{\"hidden_size\": 64.5, \"intermediate_size\": 128, \"num_hidden_layers\": 1,"
                               "\"num_attention_heads\": 4, \"vocab_size\": 100}", &x), "hidden_size must be an integer");
    CHECK_FAILS_WITH(load_text("{\"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 1,"
                               "\"num_attention_heads\": 4, \"num_key_value_heads\": 3, \"vocab_size\": 100}", &x),
                     "num_key_value_heads (3) must divide");
#define SMALL "\"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"vocab_size\": 100"
    CHECK_FAILS_WITH(load_text("{\"model_type\": \"gemma\", " SMALL "}", &x),
                     "model_type is 'gemma', supported: llama, qwen2, mistral");
    CHECK_FAILS_WITH(load_text("{" SMALL ", \"rope_scaling\": {\"type\": \"linear\"}}", &x),
                     "rope_scaling.factor must be in [1, 1024]");
    CHECK_FAILS_WITH(load_text("{" SMALL ", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}}", &x),
                     "rope_scaling type 'yarn' is not supported (supported: linear, llama3)");
    CHECK_FAILS_WITH(load_text("{" SMALL ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8}}", &x),
                     "missing field original_max_position_embeddings");
    CHECK_FAILS_WITH(load_text("{\"model_type\": \"mistral\", " SMALL ", \"sliding_window\": 4096, "
                               "\"max_position_embeddings\": 32768}", &x),
                     "sliding_window 4096 is smaller than the context (max_position_embeddings 32768)");
    CHECK_FAILS_WITH(load_text("{\"model_type\": \"qwen2\", " SMALL ", \"sliding_window\": 4096, \"use_sliding_window\": true,"
                               "\"max_position_embeddings\": 32768}", &x),
                     "sliding-window attention is not supported");
    CHECK_FAILS_WITH(load_text("{" SMALL ", \"eos_token_id\": [1, \"x\"]}", &x), "eos_token_id must be a token id");
    CHECK_FAILS_WITH(load_text("{" SMALL ", \"eos_token_id\": [1, 100]}", &x), "eos_token_id 100 must be below");
    CHECK_FAILS_WITH(load_text("{\"hidden_size\": -64, \"intermediate_size\": 128, \"num_hidden_layers\": 1,"
                               "\"num_attention_heads\": 4, \"vocab_size\": 100}", &x), "hidden_size must be a positive");
    /* a token id beyond INT_MAX was cast to int unchecked (undefined; issue 14) */
    CHECK_FAILS_WITH(load_text("{\"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 1,"
                               "\"num_attention_heads\": 4, \"vocab_size\": 100, \"bos_token_id\": 1e20}", &x),
                     "bos_token_id must be a token id");
    CHECK_FAILS_WITH(load_text("{\"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 1,"
                               "\"num_attention_heads\": 4, \"vocab_size\": 100, \"eos_token_id\": [2.5]}", &x),
                     "eos_token_id must be a token id");
    CHECK_FAILS_WITH(config_load(&x, "does/not/exist.json"), "does/not/exist.json: cannot open");
    unlink("cfg_test.json");
    return check_result("test_config");
}
