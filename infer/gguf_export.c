/* gguf_export.c — a model directory -> llama.cpp GGUF (`llama` architecture, or `qwen2` for model_type qwen2).
 * Names and metadata follow llama.cpp's convert_hf_to_gguf.py: token_embd / blk.N.attn_q ... / output_norm; for
 * `llama`, Q and K rows (and their biases) permuted from HF's rotate-half RoPE to llama.cpp's interleaved pairs
 * (qwen2 uses rotate-half in llama.cpp too: no permutation); biases as blk.N.attn_q.bias ...; rope_scaling linear
 * as rope.scaling.*, llama3 as the rope_freqs.weight tensor of per-frequency divisors; the tokenizer as
 * tokenizer.ggml.* ("gpt2" BPE: tokens, token types, merges, special ids). Matrices F16 or Q8_0 (blocks of 32:
 * FP16 scale + 32 int8), norms and biases F32. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "host/fileio.h"
#include "infer/gguf.h"
#include "host/half.h"
#include "host/weights.h"

typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *d, size_t n) {
    if (!n) return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 4096;
        b->p = realloc(b->p, b->cap);
        if (!b->p) sc_malloc((size_t)-1);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_strn(buf *b, const char *s, size_t n) { put_u64(b, n), put(b, s, n); }
static void put_str(buf *b, const char *s) { put_strn(b, s, strlen(s)); }
static void kv_u32(buf *b, uint64_t *nkv, const char *k, uint32_t v) { put_str(b, k), put_u32(b, GGUF_T_U32), put_u32(b, v), ++*nkv; }
static void kv_f32(buf *b, uint64_t *nkv, const char *k, float v) { put_str(b, k), put_u32(b, GGUF_T_F32), put(b, &v, 4), ++*nkv; }
static void kv_str(buf *b, uint64_t *nkv, const char *k, const char *v) { put_str(b, k), put_u32(b, GGUF_T_STRING), put_str(b, v), ++*nkv; }
static void kv_bool(buf *b, uint64_t *nkv, const char *k, int v) {
    uint8_t x = (uint8_t)(v != 0);
    put_str(b, k), put_u32(b, GGUF_T_BOOL), put(b, &x, 1), ++*nkv;
}

void gguf_permute_rope_rows(const float *src, float *dst, int nheads, int hd, int cols) {
    for (int h = 0; h < nheads; h++)
        for (int i = 0; i < hd / 2; i++)
            for (int j = 0; j < 2; j++)
                memcpy(dst + ((size_t)h * hd + 2 * i + j) * cols, src + ((size_t)h * hd + (size_t)j * hd / 2 + i) * cols,
                       (size_t)cols * sizeof(float));
}

/* 1 when a normalizer / pre-tokenizer object is, or a Sequence of it contains, the type named */
static int has_type(const cJSON *p, const char *type) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "type"), *it;
    if (!cJSON_IsString(t)) return 0;
    if (strcmp(t->valuestring, type) == 0) return 1;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(p, "pretokenizers")) if (has_type(it, type)) return 1;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(p, "normalizers")) if (has_type(it, type)) return 1;
    return 0;
}

/* tokenizer.json -> tokenizer.ggml.*; V = the model's vocabulary (rows beyond the tokenizer are unused tokens) */
static int put_tokenizer(buf *b, uint64_t *nkv, const char *dir, int V, const sc_config *cfg) {
    char path[4096], *text;
    size_t len;
    if (file_read_all(path_join(path, sizeof path, dir, "tokenizer.json"), &text, &len)) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return sc_fail("%s: not valid JSON", path);
    int rc = -1;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), *e;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(model, "type");
    char **tok = sc_calloc((size_t)V, sizeof(char *));
    int32_t *tt = sc_calloc((size_t)V, sizeof(int32_t));
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "BPE") || !cJSON_IsObject(vocab) || !cJSON_IsArray(merges)) {
        sc_fail("%s: expected a BPE model with vocab and merges", path);
        goto out;
    }
    /* GGUF's "gpt2" tokenizer is byte-level BPE; a SentencePiece-style one (Llama-2, TinyLlama, CodeLlama) would
     * need llama.cpp's "llama" tokenizer with scores and byte tokens, which is not written */
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback")) ||
        has_type(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), "Metaspace") ||
        has_type(cJSON_GetObjectItemCaseSensitive(root, "normalizer"), "Prepend")) {
        sc_fail("%s: a SentencePiece-style tokenizer (byte_fallback, Metaspace or Prepend) is not exported to GGUF "
                "(only byte-level BPE, GGUF's \"gpt2\")", path);
        goto out;
    }
    cJSON_ArrayForEach(e, vocab) {
        int id = e->valueint;
        if (!cJSON_IsNumber(e) || id < 0) continue;
        if (id >= V) {
            sc_fail("%s: token id %d is outside the model's vocabulary (%d)", path, id, V);
            goto out;
        }
        tok[id] = e->string, tt[id] = 1; /* NORMAL */
    }
    cJSON_ArrayForEach(e, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id"), *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(e, "special");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(c) || id->valueint < 0 || id->valueint >= V) continue;
        tok[id->valueint] = c->valuestring, tt[id->valueint] = cJSON_IsTrue(sp) ? 3 : 4; /* CONTROL : USER_DEFINED */
    }
    kv_str(b, nkv, "tokenizer.ggml.model", "gpt2");
    kv_str(b, nkv, "tokenizer.ggml.pre", strcmp(cfg->model_type, "qwen2") == 0 ? "qwen2" : "gpt-2");
    put_str(b, "tokenizer.ggml.tokens"), put_u32(b, GGUF_T_ARRAY), put_u32(b, GGUF_T_STRING), put_u64(b, (uint64_t)V);
    for (int i = 0; i < V; i++) {
        char pad[32];
        if (!tok[i]) snprintf(pad, sizeof pad, "[PAD%d]", i), tt[i] = 5; /* UNUSED */
        put_str(b, tok[i] ? tok[i] : pad);
    }
    ++*nkv;
    put_str(b, "tokenizer.ggml.token_type"), put_u32(b, GGUF_T_ARRAY), put_u32(b, GGUF_T_I32), put_u64(b, (uint64_t)V);
    put(b, tt, (size_t)V * 4);
    ++*nkv;
    put_str(b, "tokenizer.ggml.merges"), put_u32(b, GGUF_T_ARRAY), put_u32(b, GGUF_T_STRING);
    put_u64(b, (uint64_t)cJSON_GetArraySize(merges));
    cJSON_ArrayForEach(e, merges) {
        if (cJSON_IsString(e)) put_str(b, e->valuestring);
        else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2) { /* newer tokenizers: ["a", "b"] */
            const char *l = cJSON_GetArrayItem(e, 0)->valuestring, *r = cJSON_GetArrayItem(e, 1)->valuestring;
            size_t n = strlen(l) + strlen(r) + 1;
            char *m = sc_malloc(n + 1);
            snprintf(m, n + 1, "%s %s", l, r);
            put_str(b, m);
            free(m);
        } else {
            sc_fail("%s: a merge is neither \"a b\" nor [a, b]", path);
            goto out;
        }
    }
    ++*nkv;
    static const struct { const char *tok, *key; } ids[] = {
        {"<|endoftext|>", "tokenizer.ggml.eos_token_id"},   {"<|endoftext|>", "tokenizer.ggml.bos_token_id"},
        {"<fim_prefix>", "tokenizer.ggml.fim_pre_token_id"}, {"<fim_suffix>", "tokenizer.ggml.fim_suf_token_id"},
        {"<fim_middle>", "tokenizer.ggml.fim_mid_token_id"}, {"<fim_pad>", "tokenizer.ggml.fim_pad_token_id"},
        {"<file_sep>", "tokenizer.ggml.fim_sep_token_id"},
    };
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
        int id = -1;
        if (strstr(ids[k].key, "eos") && cfg->eos_token_id >= 0) id = cfg->eos_token_id;
        else if (strstr(ids[k].key, "bos") && cfg->bos_token_id >= 0) id = cfg->bos_token_id;
        else
            for (int i = 0; i < V; i++)
                if (tok[i] && strcmp(tok[i], ids[k].tok) == 0) id = i;
        if (id >= 0) kv_u32(b, nkv, ids[k].key, (uint32_t)id);
    }
    kv_bool(b, nkv, "tokenizer.ggml.add_bos_token", 0); /* training adds no BOS */
    rc = 0;
out:
    free(tok), free(tt);
    cJSON_Delete(root);
    return rc;
}

typedef struct {
    char name[64];
    const float *src; /* FP32 [rows, cols] */
    int rows, cols, type;
    uint64_t offset, nbytes;
    int permute_heads; /* > 0: Q/K rows permuted with this many heads */
} out_tensor;

static uint64_t tensor_bytes(int type, int rows, int cols) {
    uint64_t n = (uint64_t)rows * cols;
    return type == GGML_F32 ? n * 4 : type == GGML_F16 ? n * 2 : n / QK8_0 * 34;
}

static int write_tensor(FILE *f, const out_tensor *t, int hd, const char *path) {
    const float *w = t->src;
    float *perm = NULL;
    if (t->permute_heads) {
        perm = sc_malloc((size_t)t->rows * t->cols * sizeof(float));
        gguf_permute_rope_rows(t->src, perm, t->permute_heads, hd, t->cols);
        w = perm;
    }
    size_t n = (size_t)t->rows * t->cols;
    uint8_t *out = sc_malloc(t->nbytes);
    if (t->type == GGML_F32) memcpy(out, w, n * 4);
    else if (t->type == GGML_F16)
        for (size_t i = 0; i < n; i++) {
            uint16_t h = float_to_half(w[i]);
            memcpy(out + 2 * i, &h, 2);
        }
    else
        for (size_t blk = 0; blk < n / QK8_0; blk++) { /* as ggml's quantize_row_q8_0_ref */
            const float *x = w + blk * QK8_0;
            float amax = 0;
            for (int i = 0; i < QK8_0; i++) amax = fmaxf(amax, fabsf(x[i]));
            float d = amax / 127.0f, id = d ? 1.0f / d : 0;
            uint16_t h = float_to_half(d);
            uint8_t *o = out + blk * 34;
            memcpy(o, &h, 2);
            for (int i = 0; i < QK8_0; i++) o[2 + i] = (uint8_t)(int8_t)roundf(x[i] * id);
        }
    size_t wr = fwrite(out, 1, t->nbytes, f);
    int e = errno;
    free(out), free(perm);
    return wr == t->nbytes ? 0 : sc_fail("%s: write failed (%s)", path, strerror(e));
}

int gguf_export(const char *dir, const char *outpath, int type) {
    sc_model m;
    if (infer_model_load(&m, dir)) return -1;
    const sc_config *c = &m.cfg;
    const sc_view *v = &m.w;
    int C = c->hidden_size, F = c->intermediate_size, hd = c->head_dim, L = c->num_hidden_layers, V = c->vocab_size;
    int nh = c->num_attention_heads, nkv = c->num_key_value_heads, rc = -1;
    if (type == GGML_Q8_0 && (C % QK8_0 || F % QK8_0 || (nh * hd) % QK8_0)) {
        model_free(&m);
        return sc_fail("%s: q8_0 needs every matrix's columns divisible by 32 (hidden %d, ffn %d)", dir, C, F);
    }
    const char *arch = strcmp(c->model_type, "qwen2") == 0 ? "qwen2" : "llama";
    int permute = strcmp(arch, "llama") == 0; /* llama.cpp's llama graph rotates interleaved pairs, qwen2 halves */
    int nt = 0, k = 0, cap = 3 + 16 * L + 1;
    out_tensor *t = sc_calloc((size_t)cap, sizeof(out_tensor));
    /* permuted copies of the q/k biases (1-D, so write_tensor's row permutation does not apply), and llama3's
     * per-frequency divisors */
    float *extra = sc_calloc((size_t)L * (nh + nkv) * hd + (size_t)hd / 2 + 1, sizeof(float));
    float *bias_perm = extra, *rope_freqs = extra + (size_t)L * (nh + nkv) * hd;
#define T(nm, p, r, cc, ty, ph) t[k++] = (out_tensor){.src = p, .rows = r, .cols = cc, .type = ty, .permute_heads = (ph) && permute ? (ph) : 0}, \
                                snprintf(t[k - 1].name, sizeof t[k - 1].name, "%s", nm)
    char n[64];
    T("token_embd.weight", v->embed, V, C, type, 0);
    for (int l = 0; l < L; l++) {
        const sc_layer_view *y = &v->layers[l];
#define TL(suffix, p, r, cc, ty, ph) snprintf(n, sizeof n, "blk.%d.%s", l, suffix), T(n, p, r, cc, ty, ph)
        TL("attn_norm.weight", y->attn_norm, 1, C, GGML_F32, 0);
        TL("attn_q.weight", y->wq, nh * hd, C, type, nh);
        TL("attn_k.weight", y->wk, nkv * hd, C, type, nkv);
        TL("attn_v.weight", y->wv, nkv * hd, C, type, 0);
        TL("attn_output.weight", y->wo, C, nh * hd, type, 0);
        TL("ffn_norm.weight", y->mlp_norm, 1, C, GGML_F32, 0);
        TL("ffn_gate.weight", y->wgate, F, C, type, 0);
        TL("ffn_up.weight", y->wup, F, C, type, 0);
        TL("ffn_down.weight", y->wdown, C, F, type, 0);
        if (y->bq) {
            float *bq = bias_perm + (size_t)l * (nh + nkv) * hd, *bk = bq + (size_t)nh * hd;
            if (permute) {
                gguf_permute_rope_rows(y->bq, bq, nh, hd, 1);
                gguf_permute_rope_rows(y->bk, bk, nkv, hd, 1);
            } else {
                memcpy(bq, y->bq, (size_t)nh * hd * sizeof(float));
                memcpy(bk, y->bk, (size_t)nkv * hd * sizeof(float));
            }
            TL("attn_q.bias", bq, 1, nh * hd, GGML_F32, 0);
            TL("attn_k.bias", bk, 1, nkv * hd, GGML_F32, 0);
            TL("attn_v.bias", y->bv, 1, nkv * hd, GGML_F32, 0);
        }
        if (y->bo) TL("attn_output.bias", y->bo, 1, C, GGML_F32, 0);
        if (y->bgate) {
            TL("ffn_gate.bias", y->bgate, 1, F, GGML_F32, 0);
            TL("ffn_up.bias", y->bup, 1, F, GGML_F32, 0);
            TL("ffn_down.bias", y->bdown, 1, C, GGML_F32, 0);
        }
#undef TL
    }
    T("output_norm.weight", v->final_norm, 1, C, GGML_F32, 0);
    if (!c->tie_word_embeddings) T("output.weight", v->lm_head, V, C, type, 0);
    if (c->rope_scaling == SC_ROPE_LLAMA3) {
        /* llama.cpp divides each frequency by rope_freqs[i] (convert_hf_to_gguf's llama3 rope factors) */
        sc_config plain = *c;
        plain.rope_scaling = SC_ROPE_NONE;
        float base[512], scaled[512];
        config_rope_inv_freq(&plain, base);
        config_rope_inv_freq(c, scaled);
        for (int i = 0; i < hd / 2; i++) rope_freqs[i] = base[i] / scaled[i];
        T("rope_freqs.weight", rope_freqs, 1, hd / 2, GGML_F32, 0);
    }
#undef T
    nt = k;
    buf h = {0}, meta = {0};
    uint64_t nkvs = 0;
    const char *slash = strrchr(dir, '/');
    char key[96];
#define AK(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
    kv_str(&meta, &nkvs, "general.architecture", arch);
    kv_str(&meta, &nkvs, "general.name", slash && slash[1] ? slash + 1 : dir);
    kv_u32(&meta, &nkvs, "general.file_type", type == GGML_F16 ? 1 : 7);
    kv_u32(&meta, &nkvs, "general.alignment", GGUF_ALIGN);
    kv_u32(&meta, &nkvs, AK("context_length"), (uint32_t)c->max_position_embeddings);
    kv_u32(&meta, &nkvs, AK("embedding_length"), (uint32_t)C);
    kv_u32(&meta, &nkvs, AK("block_count"), (uint32_t)L);
    kv_u32(&meta, &nkvs, AK("feed_forward_length"), (uint32_t)F);
    kv_u32(&meta, &nkvs, AK("attention.head_count"), (uint32_t)nh);
    kv_u32(&meta, &nkvs, AK("attention.head_count_kv"), (uint32_t)nkv);
    kv_u32(&meta, &nkvs, AK("attention.key_length"), (uint32_t)hd);
    kv_u32(&meta, &nkvs, AK("attention.value_length"), (uint32_t)hd);
    kv_u32(&meta, &nkvs, AK("rope.dimension_count"), (uint32_t)hd);
    kv_f32(&meta, &nkvs, AK("rope.freq_base"), (float)c->rope_theta);
    if (c->rope_scaling == SC_ROPE_LINEAR) {
        kv_str(&meta, &nkvs, AK("rope.scaling.type"), "linear");
        kv_f32(&meta, &nkvs, AK("rope.scaling.factor"), (float)c->rope_factor);
    }
    kv_f32(&meta, &nkvs, AK("attention.layer_norm_rms_epsilon"), (float)c->rms_norm_eps);
    kv_u32(&meta, &nkvs, AK("vocab_size"), (uint32_t)V);
#undef AK
    if (put_tokenizer(&meta, &nkvs, dir, V, c)) goto out;
    put(&h, "GGUF", 4);
    put_u32(&h, 3);
    put_u64(&h, (uint64_t)nt);
    put_u64(&h, nkvs);
    put(&h, meta.p, meta.n);
    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        t[i].nbytes = tensor_bytes(t[i].type, t[i].rows, t[i].cols);
        t[i].offset = off;
        off += (t[i].nbytes + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN;
        put_str(&h, t[i].name);
        int nd = t[i].rows == 1 ? 1 : 2;
        put_u32(&h, (uint32_t)nd);
        put_u64(&h, (uint64_t)t[i].cols);
        if (nd == 2) put_u64(&h, (uint64_t)t[i].rows);
        put_u32(&h, (uint32_t)t[i].type);
        put_u64(&h, t[i].offset);
    }
    static const uint8_t zeros[GGUF_ALIGN];
    put(&h, zeros, (GGUF_ALIGN - h.n % GGUF_ALIGN) % GGUF_ALIGN);
    sc_atomic_file af;
    if (atomic_open(&af, outpath)) goto out;
    rc = fwrite(h.p, 1, h.n, af.f) == h.n ? 0 : sc_fail("%s: write failed (%s)", outpath, strerror(errno));
    for (int i = 0; i < nt && !rc; i++) {
        rc = write_tensor(af.f, &t[i], hd, outpath);
        size_t pad = (size_t)((GGUF_ALIGN - t[i].nbytes % GGUF_ALIGN) % GGUF_ALIGN);
        if (!rc && fwrite(zeros, 1, pad, af.f) != pad) rc = sc_fail("%s: write failed (%s)", outpath, strerror(errno));
    }
    if (rc) atomic_abort(&af);
    else rc = atomic_commit(&af);
out:
    free(h.p), free(meta.p), free(t), free(extra);
    model_free(&m);
    return rc;
}
