/* fuzz_tokenizer.c — tokenizer.json (data/tokenizer_load.c) and, when it loads, encode + decode of a fixed text
 * through the pre-tokenizers, merges and added tokens it defined. */
#include "data/tokenizer.h"
#include "fuzz/fuzz_common.h"

static const char text[] = "def f(x):\n    return x + 1  # 2024 caf\xc3\xa9 <|endoftext|>\n\tif a<b: pass";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sc_tokenizer *t;
    if (tokenizer_load_json(&t, (const char *)data, size, "tokenizer.json") != 0) return 0;
    int32_t *ids;
    size_t n;
    if (tokenizer_encode(t, text, sizeof text - 1, &ids, &n) == 0) {
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= tokenizer_vocab_size(t)) abort();
        char *out;
        size_t len;
        if (tokenizer_decode(t, ids, n, &out, &len) == 0) free(out);
        free(ids);
    }
    (void)tokenizer_hash(t);
    tokenizer_free(t);
    return 0;
}
