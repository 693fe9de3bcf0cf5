/* fuzz_int8_dir.c — INT8 model directories as `smallcoder quantize` writes them (host/weights.c weights_load:
 * config.json with quantization_config, model.safetensors with I8 matrices and F16 "<name>.scale" tensors).
 * Input: a 4-byte little-endian length L, L bytes of config.json, the rest model.safetensors. A directory that
 * loads has every scale read (qmat_prepare at load) and the first and last row of each matrix dequantized. */
#include "fuzz/fuzz_common.h"
#include "host/error.h"
#include "host/weights.h"

static void touch(const sc_wmat *m, float *row) {
    wmat_rows_f32(m, 0, 1, row);
    wmat_rows_f32(m, m->rows - 1, m->rows, row);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    uint32_t L = fuzz_le32(data);
    if (L > size - 4) return 0;
    char cfg[1100], st[1100];
    snprintf(cfg, sizeof cfg, "%s", fuzz_path("config.json"));
    snprintf(st, sizeof st, "%s", fuzz_path("model.safetensors"));
    fuzz_write(cfg, data + 4, L);
    fuzz_write(st, data + 4 + L, size - 4 - L);
    sc_weights w;
    if (weights_load(&w, fuzz_dir()) != 0) return 0;
    const sc_config *c = &w.cfg;
    int widest = c->hidden_size > c->intermediate_size ? c->hidden_size : c->intermediate_size;
    if (c->num_attention_heads * c->head_dim > widest) widest = c->num_attention_heads * c->head_dim;
    float *row = malloc((size_t)widest * sizeof(float));
    if (!row) abort();
    touch(&w.embed, row);
    for (int l = 0; l < c->num_hidden_layers; l++) {
        const sc_wlayer *y = &w.layers[l];
        touch(&y->wq, row), touch(&y->wk, row), touch(&y->wv, row), touch(&y->wo, row);
        touch(&y->wgate, row), touch(&y->wup, row), touch(&y->wdown, row);
    }
    free(row);
    weights_free(&w);
    return 0;
}
