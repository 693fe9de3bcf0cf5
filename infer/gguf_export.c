/* gguf_export.c — a model directory -> llama.cpp GGUF (`llama` architecture, or `qwen2` for model_type qwen2).
 * Names and metadata follow llama.cpp's convert_hf_to_gguf.py: token_embd / blk.N.attn_q ... / output_norm; for
 * `llama`, Q and K rows (and their biases) permuted from HF's rotate-half RoPE to llama.cpp's interleaved pairs
 * (qwen2 uses rotate-half in llama.cpp too: no permutation); biases as blk.N.attn_q.bias ...; rope_scaling linear
 * as rope.scaling.*, llama3 as the rope_freqs.weight tensor of per-frequency divisors; the tokenizer as
 * tokenizer.ggml.* (gguf_vocab.c: "gpt2" or "llama"). Matrices F16 or Q8_0 (blocks of 32: FP16 scale + 32 int8),
 * norms and biases F32. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "host/fileio.h"
#include "infer/gguf.h"
#include "host/half.h"
#include "host/weights.h"
#include "infer/gguf_buf.h"

void gguf_permute_rope_rows(const float *src, float *dst, int nheads, int hd, int cols) {
    for (int h = 0; h < nheads; h++)
        for (int i = 0; i < hd / 2; i++)
            for (int j = 0; j < 2; j++)
                memcpy(dst + ((size_t)h * hd + 2 * i + j) * cols, src + ((size_t)h * hd + (size_t)j * hd / 2 + i) * cols,
                       (size_t)cols * sizeof(float));
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
    gguf_buf h = {0}, meta = {0};
    uint64_t nkvs = 0;
    const char *slash = strrchr(dir, '/');
    char key[96];
#define AK(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
    gguf_kv_str(&meta, &nkvs, "general.architecture", arch);
    gguf_kv_str(&meta, &nkvs, "general.name", slash && slash[1] ? slash + 1 : dir);
    gguf_kv_u32(&meta, &nkvs, "general.file_type", type == GGML_F16 ? 1 : 7);
    gguf_kv_u32(&meta, &nkvs, "general.alignment", GGUF_ALIGN);
    gguf_kv_u32(&meta, &nkvs, AK("context_length"), (uint32_t)c->max_position_embeddings);
    gguf_kv_u32(&meta, &nkvs, AK("embedding_length"), (uint32_t)C);
    gguf_kv_u32(&meta, &nkvs, AK("block_count"), (uint32_t)L);
    gguf_kv_u32(&meta, &nkvs, AK("feed_forward_length"), (uint32_t)F);
    gguf_kv_u32(&meta, &nkvs, AK("attention.head_count"), (uint32_t)nh);
    gguf_kv_u32(&meta, &nkvs, AK("attention.head_count_kv"), (uint32_t)nkv);
    gguf_kv_u32(&meta, &nkvs, AK("attention.key_length"), (uint32_t)hd);
    gguf_kv_u32(&meta, &nkvs, AK("attention.value_length"), (uint32_t)hd);
    gguf_kv_u32(&meta, &nkvs, AK("rope.dimension_count"), (uint32_t)hd);
    gguf_kv_f32(&meta, &nkvs, AK("rope.freq_base"), (float)c->rope_theta);
    if (c->rope_scaling == SC_ROPE_LINEAR) {
        gguf_kv_str(&meta, &nkvs, AK("rope.scaling.type"), "linear");
        gguf_kv_f32(&meta, &nkvs, AK("rope.scaling.factor"), (float)c->rope_factor);
    }
    gguf_kv_f32(&meta, &nkvs, AK("attention.layer_norm_rms_epsilon"), (float)c->rms_norm_eps);
    gguf_kv_u32(&meta, &nkvs, AK("vocab_size"), (uint32_t)V);
#undef AK
    if (gguf_put_tokenizer(&meta, &nkvs, dir, V, c)) goto out;
    gguf_put(&h, "GGUF", 4);
    gguf_put_u32(&h, 3);
    gguf_put_u64(&h, (uint64_t)nt);
    gguf_put_u64(&h, nkvs);
    gguf_put(&h, meta.p, meta.n);
    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        t[i].nbytes = tensor_bytes(t[i].type, t[i].rows, t[i].cols);
        t[i].offset = off;
        off += (t[i].nbytes + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN;
        gguf_put_str(&h, t[i].name);
        int nd = t[i].rows == 1 ? 1 : 2;
        gguf_put_u32(&h, (uint32_t)nd);
        gguf_put_u64(&h, (uint64_t)t[i].cols);
        if (nd == 2) gguf_put_u64(&h, (uint64_t)t[i].rows);
        gguf_put_u32(&h, (uint32_t)t[i].type);
        gguf_put_u64(&h, t[i].offset);
    }
    static const uint8_t zeros[GGUF_ALIGN];
    gguf_put(&h, zeros, (GGUF_ALIGN - h.n % GGUF_ALIGN) % GGUF_ALIGN);
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
