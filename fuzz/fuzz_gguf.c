/* fuzz_gguf.c — the GGUF reader (infer/gguf_read.c gguf_open): a file it accepts must be safe to read through
 * its own accessors: every tensor's first and last element, every string of every string array. */
#include "fuzz/fuzz_common.h"
#include "infer/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path("model.gguf");
    fuzz_write(path, data, size);
    gguf_file g;
    if (gguf_open(&g, path) != 0) return 0;
    volatile float sink = 0;
    for (uint64_t i = 0; i < g.nt; i++) {
        const gguf_tensor *t = &g.t[i];
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->ndim; d++) n *= t->dims[d];
        if (n) sink += gguf_tensor_get(t, 0) + gguf_tensor_get(t, n - 1);
        (void)gguf_find_tensor(&g, t->name ? t->name : "");
    }
    for (uint64_t i = 0; i < g.nkv; i++) {
        const gguf_kv *kv = &g.kv[i];
        if (kv->type == GGUF_T_ARRAY && kv->arr_type == GGUF_T_STRING && kv->n) {
            uint64_t len;
            const char *s = gguf_kv_str_at(kv, kv->n - 1, &len);
            if (len) sink += (float)(unsigned char)s[len - 1];
        }
    }
    (void)gguf_find_kv(&g, "general.architecture");
    (void)sink;
    gguf_close(&g);
    return 0;
}
