/* test_config.c — presets (exact parameter counts), config.json round trip and every rejected config. */
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
    c.bos_token_id = 1, c.eos_token_id = 2;
    CHECK(config_save(&c, "cfg_rt.json") == 0);
    CHECK(config_load(&d, "cfg_rt.json") == 0);
    CHECK(memcmp(&c, &d, sizeof c) == 0);
    unlink("cfg_rt.json");

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
    CHECK_FAILS_WITH(load_text("{\"model_type\": \"qwen2\", \"hidden_size\": 64}", &x), "only 'llama'");
    CHECK_FAILS_WITH(load_text("{\"hidden_size\": 64, \"intermediate_size\": 128, \"num_hidden_layers\": 1,"
                               "\"num_attention_heads\": 4, \"vocab_size\": 100, \"rope_scaling\": {\"type\": \"linear\"}}", &x),
                     "rope_scaling");
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
