/* test_infer_gguf.c — `export gguf` parsed back by our own reader: header, llama.* metadata, tokenizer arrays,
 * tensor names/shapes/types, values (F16 exact to rounding, Q8_0 within half a quantization step), the Q/K RoPE
 * row permutation, an untied lm_head, and a truncated file refused with a clear message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/check.h"
#include "host/error.h"
#include "host/fileio.h"
#include "infer/gguf.h"
#include "host/half.h"
#include "host/model.h"


/* a tokenizer.json of V tokens: 3 specials + byte-ish tokens, and two merges (one in the ["a","b"] form) */
static void write_tokenizer(const char *dir, int V) {
    char path[4200];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"added_tokens\":[{\"id\":0,\"content\":\"<|endoftext|>\",\"special\":true},"
               "{\"id\":1,\"content\":\"<fim_prefix>\",\"special\":true},{\"id\":2,\"content\":\"<fim_middle>\",\"special\":true},"
               "{\"id\":3,\"content\":\"<fim_suffix>\",\"special\":true}],"
               "\"model\":{\"type\":\"BPE\",\"vocab\":{");
    for (int i = 0; i < V - 10; i++) fprintf(f, "%s\"t%d\":%d", i ? "," : "", i, i + 4);
    fprintf(f, "},\"merges\":[\"t1 t2\",[\"t3\",\"t4\"]]}}");
    fclose(f);
}

static void check_model(const char *base, int tied) {
    sc_config cfg;
    config_preset(&cfg, "tiny");
    cfg.tie_word_embeddings = tied;
    sc_model m;
    model_create(&m, &cfg);
    model_init_weights(&m, 99, 0.05f);
    char dir[4200], out[4300];
    snprintf(dir, sizeof dir, "%s/model-%d", base, tied);
    if (model_save(&m, dir)) printf("save: %s\n", sc_error()), exit(1);
    write_tokenizer(dir, cfg.vocab_size);
    int types[] = {GGML_F16, GGML_Q8_0};
    for (int ti = 0; ti < 2; ti++) {
        int type = types[ti];
        snprintf(out, sizeof out, "%s/m-%d-%d.gguf", base, tied, type);
        CHECKF(gguf_export(dir, out, type) == 0, "export: %s", sc_error());
        gguf_file g;
        if (gguf_open(&g, out)) {
            CHECKF(0, "open: %s", sc_error());
            continue;
        }
        const gguf_kv *kv = gguf_find_kv(&g, "general.architecture");
        CHECKF(kv && kv->str && strcmp(kv->str, "llama") == 0, "architecture");
        kv = gguf_find_kv(&g, "llama.block_count");
        CHECKF(kv && kv->u == (uint64_t)cfg.num_hidden_layers, "block_count");
        kv = gguf_find_kv(&g, "llama.attention.head_count_kv");
        CHECKF(kv && kv->u == (uint64_t)cfg.num_key_value_heads, "head_count_kv");
        kv = gguf_find_kv(&g, "llama.rope.freq_base");
        CHECKF(kv && fabs(kv->f - cfg.rope_theta) < 1e-3, "rope base");
        kv = gguf_find_kv(&g, "tokenizer.ggml.tokens");
        CHECKF(kv && kv->n == (uint64_t)cfg.vocab_size, "tokens array");
        uint64_t len;
        const char *s = kv ? gguf_kv_str_at(kv, 1, &len) : "";
        CHECKF(kv && len == 12 && memcmp(s, "<fim_prefix>", 12) == 0, "token 1");
        s = kv ? gguf_kv_str_at(kv, 4, &len) : "";
        CHECKF(kv && len == 2 && memcmp(s, "t0", 2) == 0, "token 4");
        kv = gguf_find_kv(&g, "tokenizer.ggml.merges");
        s = kv ? gguf_kv_str_at(kv, 1, &len) : "";
        CHECKF(kv && kv->n == 2 && len == 5 && memcmp(s, "t3 t4", 5) == 0, "merges");
        kv = gguf_find_kv(&g, "tokenizer.ggml.fim_mid_token_id");
        CHECKF(kv && kv->u == 2, "fim_mid id");
        CHECKF(g.nt == (uint64_t)(2 + 9 * cfg.num_hidden_layers + !tied), "tensor count %llu", (unsigned long long)g.nt);
        CHECKF((gguf_find_tensor(&g, "output.weight") == NULL) == tied, "output.weight presence");
        const gguf_tensor *e = gguf_find_tensor(&g, "token_embd.weight");
        const gguf_tensor *q = gguf_find_tensor(&g, "blk.1.attn_q.weight");
        const gguf_tensor *k = gguf_find_tensor(&g, "blk.1.attn_k.weight");
        const gguf_tensor *n = gguf_find_tensor(&g, "blk.0.ffn_norm.weight");
        if (!e || !q || !k || !n) {
            CHECKF(0, "tensors missing");
            gguf_close(&g);
            continue;
        }
        int C = cfg.hidden_size, hd = cfg.head_dim;
        CHECKF(e->ndim == 2 && e->dims[0] == (uint64_t)C && e->dims[1] == (uint64_t)cfg.vocab_size && e->type == (uint32_t)type,
              "token_embd shape/type");
        CHECKF(n->type == GGML_F32 && n->ndim == 1, "norms are F32");
        float tol_rel = type == GGML_F16 ? 1e-3f : 1.0f / 127; /* Q8_0: half a step of amax/127, amax <= |w| max */
        float worst = 0;
        for (int64_t i = 0; i < (int64_t)cfg.vocab_size * C; i += 7)
            worst = fmaxf(worst, fabsf(gguf_tensor_get(e, (uint64_t)i) - m.w.embed[i]));
        CHECKF(worst < tol_rel * 0.3f, "token_embd values off by %g", worst);
        /* RoPE permutation: GGUF row h*hd + 2i + j holds HF row h*hd + j*hd/2 + i */
        const float *wq = m.w.layers[1].wq, *wk = m.w.layers[1].wk;
        worst = 0;
        float worstk = 0;
        for (int h = 0; h < cfg.num_attention_heads; h++)
            for (int i = 0; i < hd / 2; i++)
                for (int j = 0; j < 2; j++)
                    for (int c = 0; c < C; c += 5) {
                        size_t gr = (size_t)h * hd + 2 * i + j, hr = (size_t)h * hd + (size_t)j * hd / 2 + i;
                        worst = fmaxf(worst, fabsf(gguf_tensor_get(q, gr * C + c) - wq[hr * C + c]));
                        if (h < cfg.num_key_value_heads)
                            worstk = fmaxf(worstk, fabsf(gguf_tensor_get(k, gr * C + c) - wk[hr * C + c]));
                    }
        CHECKF(worst < tol_rel * 0.3f && worstk < tol_rel * 0.3f, "Q/K permutation: off by %g / %g", worst, worstk);
        printf("gguf %s tied=%d: %llu tensors, %llu keys, %.0f KiB, max error %.2g\n",
               type == GGML_F16 ? "f16" : "q8_0", tied, (unsigned long long)g.nt, (unsigned long long)g.nkv,
               g.size / 1024.0, worst);
        /* a truncated copy is refused */
        size_t cut = g.size / 2;
        char tpath[4400];
        snprintf(tpath, sizeof tpath, "%s.trunc", out);
        atomic_write_file(tpath, g.image, cut);
        gguf_file b;
        CHECKF(gguf_open(&b, tpath) != 0 && strstr(sc_error(), "past the end"), "truncated file: %s", sc_error());
        gguf_close(&g);
    }
    model_free(&m);
}

int main(void) {
    char base[] = "/tmp/sc_test_gguf.XXXXXX";
    if (!mkdtemp(base)) return 1;
    check_model(base, 1);
    check_model(base, 0);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    if (system(cmd)) printf("could not remove %s\n", base);
    return check_result("test_infer_gguf");
}
