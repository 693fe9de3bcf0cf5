/* test_infer_gguf.c — `export gguf` parsed back by our own reader: header, llama.* metadata, tokenizer arrays,
 * tensor names/shapes/types, values (F16 exact to rounding, Q8_0 within half a quantization step), the Q/K RoPE
 * row permutation, an untied lm_head, and a truncated file refused with a clear message. Hand-made hostile files:
 * general.alignment 0 (divided by), a tensor offset that wraps data + offset + nbytes past 2^64, dimensions whose
 * product wraps the byte count, a Q8_0 row that is not whole blocks: each refused with a message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/check.h"
#include "tests/model_dir.h"
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

/* issue 17: qwen2 (architecture qwen2, q/k/v biases as they are, no permutation, linear rope scaling keys) and
 * llama with attention_bias + mlp_bias + llama3 scaling (q/k biases permuted like their rows, rope_freqs) */
static void check_open_variant(const char *base, int qwen) {
    sc_config cfg;
    config_preset(&cfg, "tiny");
    if (qwen) {
        snprintf(cfg.model_type, sizeof cfg.model_type, "qwen2");
        cfg.qkv_bias = 1, cfg.rope_scaling = SC_ROPE_LINEAR, cfg.rope_factor = 4;
    } else {
        cfg.qkv_bias = cfg.o_bias = cfg.mlp_bias = 1;
        cfg.rope_scaling = SC_ROPE_LLAMA3, cfg.rope_factor = 8, cfg.rope_low_freq_factor = 1;
        cfg.rope_high_freq_factor = 4, cfg.rope_original_max_pos = 64;
    }
    sc_model m;
    model_create(&m, &cfg);
    model_init_weights(&m, 7, 0.05f);
    for (int i = 0; i < m.ntensors; i++) /* distinct bias values, so a permutation shows */
        if (strstr(m.table[i].name, ".bias"))
            for (int64_t j = 0; j < m.table[i].numel; j++) m.params[m.table[i].offset + j] = (float)(j % 97) * 0.01f;
    char dir[4200], out[4300];
    snprintf(dir, sizeof dir, "%s/open-%d", base, qwen);
    if (model_save(&m, dir)) printf("save: %s\n", sc_error()), exit(1);
    write_tokenizer(dir, cfg.vocab_size);
    snprintf(out, sizeof out, "%s/open-%d.gguf", base, qwen);
    CHECKF(gguf_export(dir, out, GGML_F16) == 0, "export: %s", sc_error());
    gguf_file g;
    if (gguf_open(&g, out)) {
        CHECKF(0, "open: %s", sc_error());
        model_free(&m);
        return;
    }
    const char *arch = qwen ? "qwen2" : "llama";
    char key[64];
    const gguf_kv *kv = gguf_find_kv(&g, "general.architecture");
    CHECKF(kv && kv->str && strcmp(kv->str, arch) == 0, "architecture %s", arch);
    snprintf(key, sizeof key, "%s.block_count", arch);
    CHECKF(gguf_find_kv(&g, key) != NULL, "%s", key);
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    kv = gguf_find_kv(&g, key);
    CHECKF(qwen ? kv && kv->str && strcmp(kv->str, "linear") == 0 : kv == NULL, "rope.scaling.type");
    int L = cfg.num_hidden_layers, hd = cfg.head_dim, nh = cfg.num_attention_heads, C = cfg.hidden_size;
    int64_t want = 2 + 9 * L + 3 * L + (qwen ? 0 : 4 * L + 1); /* q/k/v biases; o + 3 MLP biases, rope_freqs */
    CHECKF(g.nt == (uint64_t)want, "tensor count %llu, want %lld", (unsigned long long)g.nt, (long long)want);
    const gguf_tensor *bq = gguf_find_tensor(&g, "blk.1.attn_q.bias"), *wq = gguf_find_tensor(&g, "blk.1.attn_q.weight");
    if (!bq || !wq) CHECKF(0, "attn_q bias/weight missing");
    else {
        float worst = 0, worstw = 0;
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < hd / 2; i++)
                for (int j = 0; j < 2; j++) {
                    size_t gr = (size_t)h * hd + 2 * i + j, hr = (size_t)h * hd + (size_t)j * hd / 2 + i;
                    size_t src = qwen ? gr : hr; /* qwen2: GGUF row r is HF row r */
                    worst = fmaxf(worst, fabsf(gguf_tensor_get(bq, gr) - m.w.layers[1].bq[src]));
                    worstw = fmaxf(worstw, fabsf(gguf_tensor_get(wq, gr * C + 3) - m.w.layers[1].wq[src * C + 3]));
                }
        CHECKF(worst == 0 && worstw < 1e-3f, "q bias/rows %s: off by %g / %g", qwen ? "unpermuted" : "permuted", worst,
               worstw);
    }
    if (!qwen) {
        const gguf_tensor *rf = gguf_find_tensor(&g, "rope_freqs.weight");
        CHECKF(rf && rf->ndim == 1 && rf->dims[0] == (uint64_t)hd / 2, "rope_freqs.weight [hd/2]");
        if (rf) CHECKF(gguf_tensor_get(rf, 0) == 1.0f && fabsf(gguf_tensor_get(rf, (uint64_t)hd / 2 - 1) - 8) < 1e-4f,
                       "rope_freqs: first %g (want 1), last %g (want 8)", gguf_tensor_get(rf, 0),
                       gguf_tensor_get(rf, (uint64_t)hd / 2 - 1));
        CHECKF(gguf_find_tensor(&g, "blk.0.ffn_down.bias") && gguf_find_tensor(&g, "blk.0.attn_output.bias"),
               "MLP and o biases");
    }
    printf("gguf %s with biases: %llu tensors ok\n", arch, (unsigned long long)g.nt);
    gguf_close(&g);
    model_free(&m);
}

/* ---- hand-made hostile files (issue 14): a GGUF image is built field by field ---- */
typedef struct {
    uint8_t b[4096];
    size_t n;
} img;

static void put(img *m, const void *p, size_t n) {
    memcpy(m->b + m->n, p, n);
    m->n += n;
}
static void put32(img *m, uint32_t v) { put(m, &v, 4); }
static void put64(img *m, uint64_t v) { put(m, &v, 8); }
static void putstr(img *m, const char *s) {
    put64(m, strlen(s));
    put(m, s, strlen(s));
}

/* One tensor "w" of type `type` with dims d0 x d1 at `offset`, after one u32 key (NULL: none); data_bytes bytes
 * of data follow the header padded to `pad`. */
static int open_hostile(const char *base, const char *key, uint32_t key_value, uint32_t type, uint64_t d0, uint64_t d1,
                        uint64_t offset, size_t pad, size_t data_bytes) {
    img m = {.n = 0};
    put(&m, "GGUF", 4);
    put32(&m, 3);
    put64(&m, 1);           /* tensors */
    put64(&m, key ? 1 : 0); /* keys */
    if (key) {
        putstr(&m, key);
        put32(&m, GGUF_T_U32);
        put32(&m, key_value);
    }
    putstr(&m, "w");
    put32(&m, 2);
    put64(&m, d0);
    put64(&m, d1);
    put32(&m, type);
    put64(&m, offset);
    while (m.n % pad) m.b[m.n++] = 0;
    memset(m.b + m.n, 0, data_bytes);
    m.n += data_bytes;
    char path[4200];
    snprintf(path, sizeof path, "%s/hostile.gguf", base);
    FILE *f = fopen(path, "wb");
    fwrite(m.b, 1, m.n, f);
    fclose(f);
    gguf_file g;
    int rc = gguf_open(&g, path);
    if (rc == 0) gguf_close(&g);
    return rc;
}

static void check_hostile(const char *base) {
    /* a sane one first, so the refusals below are for the reason named */
    CHECKF(open_hostile(base, "general.alignment", 32, GGML_F32, 4, 2, 0, 32, 32) == 0, "sane file: %s", sc_error());
    CHECK_FAILS_WITH(open_hostile(base, "general.alignment", 0, GGML_F32, 4, 2, 0, 32, 32), "general.alignment");
    CHECK_FAILS_WITH(open_hostile(base, "general.alignment", 24, GGML_F32, 4, 2, 0, 32, 32), "general.alignment");
    /* data + offset + nbytes wraps to a small number: 32 + (2^64 - 32) + 32 = 32 */
    CHECK_FAILS_WITH(open_hostile(base, NULL, 0, GGML_F32, 4, 2, (uint64_t)0 - 32, 32, 64), "past the end");
    /* 2^62 + 1 elements of F32 are 4 bytes after the multiplication wraps */
    CHECK_FAILS_WITH(open_hostile(base, NULL, 0, GGML_F32, ((uint64_t)1 << 62) + 1, 1, 0, 32, 32), "element count");
    CHECK_FAILS_WITH(open_hostile(base, NULL, 0, GGML_F32, (uint64_t)1 << 32, (uint64_t)1 << 32, 0, 32, 32),
                     "element count");
    /* Q8_0 rows of 16 (not whole 32-blocks), 2 rows = 32 elements: the count alone would pass */
    CHECKF(open_hostile(base, NULL, 0, GGML_Q8_0, 16, 2, 0, 32, 64) != 0, "Q8_0 with a 16-wide row was accepted");
}

int main(void) {
    char base[] = "/tmp/sc_test_gguf.XXXXXX";
    md_mkdtemp(base);
    check_model(base, 1);
    check_model(base, 0);
    check_open_variant(base, 1);
    check_open_variant(base, 0);
    check_hostile(base);
    md_remove(base);
    return check_result("test_infer_gguf");
}
