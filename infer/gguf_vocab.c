/* gguf_vocab.c — a model directory's tokenizer.json as GGUF's tokenizer.ggml.* keys, the way llama.cpp's
 * convert_hf_to_gguf.py writes them. Byte-level BPE (a ByteLevel pre-tokenizer) is the "gpt2" model: tokens, token
 * types, merges. SentencePiece-style BPE (Llama-2, TinyLlama, CodeLlama, Mistral: no ByteLevel, byte_fallback) is
 * the "llama" model: tokens with their ▁, scores, types (normal, unknown, control, user-defined, byte), no merges.
 * llama.cpp tokenizes that by repeatedly joining the adjacent pair whose joined text is the token of highest score
 * (leftmost on ties), so the score of a token is minus the rank of the first merge that makes it: the order of HF's
 * merges. That is HF's BPE exactly when every two tokens (or characters that are no token) that spell a token are a
 * merge making it and each token's merges are consecutive — true of tokenizer.json files converted from
 * SentencePiece (the published Llama-2-style one: 58980 merges, no exception), checked here; a file where it is
 * not, or a normalizer llama.cpp does not apply, is refused with one line rather than exported to ids that differ.
 * Token types and special ids follow gguf-py's LlamaHfVocab/SpecialVocab (add_bos_token from the post-processor's
 * template); the unk token is UNKNOWN as SentencePiece types it. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"
#include "host/error.h"
#include "host/fileio.h"
#include "infer/gguf_buf.h"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5, TT_BYTE = 6 };
#define SP_SPACE "\xe2\x96\x81" /* ▁ U+2581, llama.cpp's escaped space */

static const char *type_of(const cJSON *o) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* 1 when a normalizer / pre-tokenizer object is, or a Sequence of it contains, the type named */
static int has_type(const cJSON *p, const char *type) {
    const char *t = type_of(p);
    const cJSON *it;
    if (!t) return 0;
    if (strcmp(t, type) == 0) return 1;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(p, "pretokenizers")) if (has_type(it, type)) return 1;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(p, "normalizers")) if (has_type(it, type)) return 1;
    return 0;
}

static const char *str_field(const cJSON *o, const char *name) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

/* A merge as its two halves: "a b" (split at its one space) or ["a", "b"]. 1: a merge; 0: a "#version" line HF
 * skips; -1: neither form. *a and *b point into e (*la / *lb bytes, not NUL-terminated). */
static int merge_halves(const cJSON *e, const char **a, size_t *la, const char **b, size_t *lb) {
    if (cJSON_IsString(e)) {
        const char *s = e->valuestring, *sp = strchr(s, ' ');
        if (strncmp(s, "#version", 8) == 0) return 0;
        if (!sp) return -1;
        *a = s, *la = (size_t)(sp - s), *b = sp + 1, *lb = strlen(sp + 1);
        return 1;
    }
    if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) && cJSON_IsString(e->child->next)) {
        *a = e->child->valuestring, *la = strlen(*a), *b = e->child->next->valuestring, *lb = strlen(*b);
        return 1;
    }
    return -1;
}

/* Id of the token spelled by s[0..n) (model vocabulary or added token), or -1; scratch holds the copy. */
static int token_id_n(const sc_tokenizer *t, const char *s, size_t n, char **scratch, size_t *cap) {
    if (n + 1 > *cap) {
        free(*scratch);
        *scratch = sc_malloc(*cap = (n + 1) * 2);
    }
    memcpy(*scratch, s, n);
    (*scratch)[n] = 0;
    return tokenizer_token_id(t, *scratch);
}

/* bytes of the character at s as llama.cpp splits text into symbols (by the lead byte alone) */
static size_t utf8_char_len(const char *s) {
    uint8_t c = (uint8_t)*s;
    size_t n = c < 0xC0 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4, len = strlen(s);
    return n < len ? n : len;
}

/* s[0..n) for a one-line message: control bytes as \n, \t, \xNN (token texts hold newlines) */
static const char *shown(const char *s, size_t n, char *buf, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        uint8_t c = (uint8_t)s[i];
        if (c == '\n') buf[o++] = '\\', buf[o++] = 'n';
        else if (c == '\t') buf[o++] = '\\', buf[o++] = 't';
        else if (c < 0x20 || c == 0x7f) o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        else buf[o++] = (char)c;
    }
    buf[o] = 0;
    return buf;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The normalizer and pre-tokenizer of a SentencePiece-style file, as llama.cpp's two switches: spaces written as ▁
 * (always, there) and add_space_prefix (a ▁ before the text and after each special token). Accepted: Llama's
 * normalizer Sequence[Prepend("▁"), Replace(" ", "▁")] (or the Replace alone) with no pre-tokenizer, or no
 * normalizer and a Metaspace("▁") pre-tokenizer. */
static int sp_spaces(const char *path, const cJSON *root, int *add_prefix) {
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), *it;
    int escapes = 0;
    *add_prefix = 0;
    if (norm && !cJSON_IsNull(norm)) {
        const char *t = type_of(norm);
        const cJSON *list = t && strcmp(t, "Sequence") == 0 ? cJSON_GetObjectItemCaseSensitive(norm, "normalizers") : NULL;
        int single = !list, k = 0;
        for (it = single ? norm : list->child; it; it = single ? NULL : it->next, k++) {
            const char *nt = type_of(it), *p = str_field(it, "prepend"), *c = str_field(it, "content");
            const char *pat = str_field(cJSON_GetObjectItemCaseSensitive(it, "pattern"), "String");
            if (nt && strcmp(nt, "Prepend") == 0 && p && strcmp(p, SP_SPACE) == 0 && k == 0)
                *add_prefix = 1;
            else if (nt && strcmp(nt, "Replace") == 0 && pat && c && strcmp(pat, " ") == 0 && strcmp(c, SP_SPACE) == 0)
                escapes = 1;
            else
                return sc_fail("%s: normalizer %s is not what llama.cpp's SentencePiece tokenizer (GGUF \"llama\") "
                               "applies (only Prepend(\"▁\") then Replace(\" \", \"▁\")); not exported",
                               path, nt ? nt : "(untyped)");
        }
    }
    if (pre && !cJSON_IsNull(pre)) {
        const char *t = type_of(pre);
        const cJSON *m = pre;
        if (t && strcmp(t, "Sequence") == 0) {
            const cJSON *l = cJSON_GetObjectItemCaseSensitive(pre, "pretokenizers");
            m = cJSON_GetArraySize(l) == 1 ? l->child : NULL;
        }
        const char *mt = m ? type_of(m) : NULL, *rep = m ? str_field(m, "replacement") : NULL;
        if (!mt || strcmp(mt, "Metaspace") != 0)
            return sc_fail("%s: pre-tokenizer %s: llama.cpp's SentencePiece tokenizer (GGUF \"llama\") splits nothing "
                           "(only Metaspace or none); not exported", path, mt ? mt : t ? t : "(untyped)");
        if (escapes || *add_prefix)
            return sc_fail("%s: both a ▁ normalizer and a Metaspace pre-tokenizer; not exported", path);
        if (!rep || strcmp(rep, SP_SPACE) != 0)
            return sc_fail("%s: Metaspace replacement '%s': llama.cpp writes spaces as ▁ only; not exported", path,
                           rep ? rep : "(none)");
        const char *scheme = str_field(m, "prepend_scheme");
        const cJSON *legacy = cJSON_GetObjectItemCaseSensitive(m, "add_prefix_space");
        /* HF: prepend_scheme "always" unless given; older files say add_prefix_space. "first" prepends only at
         * the start of the input where llama.cpp also prepends after each special token: text with specials in
         * it differs there. */
        *add_prefix = scheme ? strcmp(scheme, "never") != 0 : legacy ? cJSON_IsTrue(legacy) : 1;
        escapes = 1;
        const cJSON *split = cJSON_GetObjectItemCaseSensitive(m, "split");
        if (!split || cJSON_IsTrue(split)) *add_prefix |= 2; /* checked against the vocabulary by the caller */
    }
    if (!escapes)
        return sc_fail("%s: spaces are not written as ▁ (no Replace(\" \", \"▁\") normalizer, no Metaspace), as "
                       "llama.cpp's SentencePiece tokenizer (GGUF \"llama\") writes them; not exported", path);
    return 0;
}

/* tokenizer.ggml.* of the "llama" model. tok/tt: every id's text and type (NORMAL / CONTROL / USER_DEFINED so far). */
static int put_llama(gguf_buf *b, uint64_t *nkv, const char *path, const cJSON *root, int V, const sc_config *cfg,
                     const char **tok, int32_t *tt) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges"), *e;
    int add_prefix, rc = -1;
    if (sp_spaces(path, root, &add_prefix)) return -1;
    int meta_split = add_prefix & 2;
    add_prefix &= 1;
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback")))
        return sc_fail("%s: a SentencePiece-style tokenizer without byte_fallback: llama.cpp's (GGUF \"llama\") "
                       "spells a character that is not a token as <0xNN> byte tokens where HF gives unk; not exported",
                       path);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "ignore_merges")))
        return sc_fail("%s: ignore_merges: llama.cpp's SentencePiece tokenizer (GGUF \"llama\") has no such rule; "
                       "not exported", path);
    sc_tokenizer *t;
    if (tokenizer_load(&t, path)) return -1;
    int nm = cJSON_GetArraySize(merges);
    uint64_t *pairs = sc_malloc(((size_t)nm + 1) * sizeof *pairs);
    uint32_t *first = sc_malloc((size_t)V * sizeof *first), *last = sc_calloc((size_t)V, sizeof *last);
    uint32_t *count = sc_calloc((size_t)V, sizeof *count);
    float *score = sc_calloc((size_t)V, sizeof *score);
    char *scratch = NULL;
    size_t cap = 0, np = 0;
    uint32_t rank = 0;
    memset(first, 0xff, (size_t)V * sizeof *first);
    for (int i = 0; i < V; i++) {
        const char *s = tok[i];
        /* LlamaHfVocab's types: <0xNN> is a byte token; the unk token is UNKNOWN as SentencePiece types it */
        if (s && strlen(s) == 6 && strncmp(s, "<0x", 3) == 0 && s[5] == '>' && strchr("0123456789ABCDEFabcdef", s[3]) &&
            strchr("0123456789ABCDEFabcdef", s[4]) && tt[i] == TT_NORMAL)
            tt[i] = TT_BYTE;
        if (meta_split && s && strstr(s + 1, SP_SPACE)) {
            char w[256];
            sc_fail("%s: Metaspace with split: token %d '%s' has a ▁ inside, which HF never forms and llama.cpp (GGUF "
                    "\"llama\", no split) does; not exported", path, i, shown(s, strlen(s), w, sizeof w));
            goto out;
        }
    }
    for (int c = 0; c < 256; c++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", c);
        if (tokenizer_token_id(t, name) < 0) {
            sc_fail("%s: byte token %s is missing: llama.cpp (GGUF \"llama\") needs all 256; not exported", path, name);
            goto out;
        }
    }
    const char *unk = str_field(model, "unk_token");
    int unk_id = unk ? tokenizer_token_id(t, unk) : -1;
    if (unk_id >= 0 && unk_id < V) tt[unk_id] = TT_UNKNOWN;
    cJSON_ArrayForEach(e, merges) {
        const char *l, *r;
        size_t ll, lr;
        int k = merge_halves(e, &l, &ll, &r, &lr);
        if (k <= 0) continue; /* the loader refused malformed merges already */
        int il = token_id_n(t, l, ll, &scratch, &cap), ir = token_id_n(t, r, lr, &scratch, &cap);
        char *cat = sc_malloc(ll + lr + 1);
        memcpy(cat, l, ll), memcpy(cat + ll, r, lr), cat[ll + lr] = 0;
        int in = tokenizer_token_id(t, cat);
        free(cat);
        if (il < 0 || ir < 0 || in < 0 || in >= V) { /* the loader checked: only an id past the model's rows */
            sc_fail("%s: merge %u makes an id outside the model's vocabulary (%d)", path, rank, V);
            goto out;
        }
        pairs[np++] = (uint64_t)il << 32 | (uint32_t)ir;
        if (first[in] == UINT32_MAX) first[in] = rank;
        last[in] = rank, count[in]++, rank++;
    }
    qsort(pairs, np, sizeof *pairs, cmp_u64);
    /* llama.cpp joins any two adjacent tokens whose text is a token: each such pair must be a merge in HF too */
    for (int i = 0; i < V; i++) {
        const char *s = tok[i];
        if (!s || tt[i] == TT_UNUSED) continue;
        score[i] = count[i] ? -(float)first[i] : 0.0f;
        /* specials are cut out of the text before the pairs are joined (llama_tokenize with parse_special), and
         * writing spaces as ▁ can make only those with a ▁ */
        if ((tt[i] == TT_CONTROL || tt[i] == TT_USER_DEFINED || tt[i] == TT_UNKNOWN) && !strstr(s, SP_SPACE)) continue;
        size_t n = strlen(s);
        for (size_t k = 1; k < n; k++) {
            if (((uint8_t)s[k] & 0xC0) == 0x80) continue; /* inside a character: llama.cpp's symbols are characters */
            /* a half is a token, or one character that is none (llama.cpp keeps it a symbol, HF spells its bytes) */
            int il = token_id_n(t, s, k, &scratch, &cap);
            if (il < 0 && k != utf8_char_len(s)) continue;
            int ir = token_id_n(t, s + k, n - k, &scratch, &cap);
            if (ir < 0 && n - k != utf8_char_len(s + k)) continue;
            uint64_t key = (uint64_t)il << 32 | (uint32_t)ir;
            if (il < 0 || ir < 0 || !bsearch(&key, pairs, np, sizeof *pairs, cmp_u64)) {
                char a[128], c[128], w[256];
                sc_fail("%s: tokens '%s' + '%s' spell token %d '%s' but are not a merge: llama.cpp's SentencePiece "
                        "tokenizer (GGUF \"llama\") would join them where HF does not; not exported", path,
                        shown(s, k, a, sizeof a), shown(s + k, n - k, c, sizeof c), i, shown(s, n, w, sizeof w));
                goto out;
            }
        }
        if (count[i] && last[i] - first[i] + 1 != count[i]) {
            char w[256];
            sc_fail("%s: the %u merges making token %d '%s' are not consecutive (ranks %u..%u): llama.cpp's "
                    "SentencePiece tokenizer (GGUF \"llama\") has one score per token; not exported", path, count[i], i,
                    shown(s, n, w, sizeof w), first[i], last[i]);
            goto out;
        }
    }
    gguf_kv_str(b, nkv, "tokenizer.ggml.model", "llama");
    gguf_kv_str(b, nkv, "tokenizer.ggml.pre", "default");
    gguf_kv_array(b, nkv, "tokenizer.ggml.tokens", GGUF_T_STRING, (uint64_t)V);
    for (int i = 0; i < V; i++) {
        char pad[32];
        snprintf(pad, sizeof pad, "[PAD%d]", i);
        gguf_put_str(b, tok[i] ? tok[i] : pad);
    }
    gguf_kv_array(b, nkv, "tokenizer.ggml.scores", GGUF_T_F32, (uint64_t)V);
    gguf_put(b, score, (size_t)V * sizeof *score);
    gguf_kv_array(b, nkv, "tokenizer.ggml.token_type", GGUF_T_I32, (uint64_t)V);
    gguf_put(b, tt, (size_t)V * sizeof *tt);
    /* llama.cpp adds tokenizer.ggml.bos_token_id where add_bos_token says so: the post-processor's BOS (<s> $A) */
    int32_t post_bos = tokenizer_bos_id(t);
    int bos = post_bos >= 0 ? post_bos : cfg->bos_token_id >= 0 ? cfg->bos_token_id : tokenizer_token_id(t, "<s>");
    int eos = cfg->eos_token_id >= 0 ? cfg->eos_token_id : tokenizer_token_id(t, "</s>");
    if (bos >= 0 && bos < V) gguf_kv_u32(b, nkv, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (eos >= 0 && eos < V) gguf_kv_u32(b, nkv, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    if (unk_id >= 0 && unk_id < V) gguf_kv_u32(b, nkv, "tokenizer.ggml.unknown_token_id", (uint32_t)unk_id);
    /* CodeLlama's infilling tokens (convert_hf_to_gguf sets the same four for its 32016 vocabulary) */
    static const struct { const char *tok, *key; } fim[] = {
        {SP_SPACE "<PRE>", "tokenizer.ggml.fim_pre_token_id"}, {SP_SPACE "<SUF>", "tokenizer.ggml.fim_suf_token_id"},
        {SP_SPACE "<MID>", "tokenizer.ggml.fim_mid_token_id"}, {SP_SPACE "<EOT>", "tokenizer.ggml.eot_token_id"},
    };
    for (size_t k = 0; k < sizeof fim / sizeof fim[0]; k++) {
        int id = tokenizer_token_id(t, fim[k].tok);
        if (id >= 0 && id < V) gguf_kv_u32(b, nkv, fim[k].key, (uint32_t)id);
    }
    /* gguf-py's SpecialVocab: BOS is added when the post-processor's template starts with it (Llama's <s> $A);
     * complete and serve prepend the same (data/tokenizer_post.c) */
    gguf_kv_bool(b, nkv, "tokenizer.ggml.add_bos_token", post_bos >= 0);
    gguf_kv_bool(b, nkv, "tokenizer.ggml.add_eos_token", 0);
    gguf_kv_bool(b, nkv, "tokenizer.ggml.add_space_prefix", add_prefix);
    rc = 0;
out:
    free(pairs), free(first), free(last), free(count), free(score), free(scratch);
    tokenizer_free(t);
    return rc;
}

/* 1 when a pre-tokenizer object is, or a Sequence of it contains, a Split whose Regex contains `needle` */
static int has_split_regex(const cJSON *p, const char *needle) {
    const cJSON *it;
    const char *t = type_of(p), *re = str_field(cJSON_GetObjectItemCaseSensitive(p, "pattern"), "Regex");
    if (t && strcmp(t, "Split") == 0 && re && strstr(re, needle)) return 1;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(p, "pretokenizers")) if (has_split_regex(it, needle)) return 1;
    return 0;
}

/* tokenizer.ggml.pre: which split llama.cpp runs before BPE. Qwen2's; Llama-3's ("llama-bpe": the pattern that
 * groups digits by up to three, \p{N}{1,3}, which GPT-2's and Qwen2's do not); else GPT-2's, our own tokenizer's */
static const char *gpt2_pre(const cJSON *root, const sc_config *cfg) {
    if (strcmp(cfg->model_type, "qwen2") == 0) return "qwen2";
    if (has_split_regex(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), "\\p{N}{1,3}")) return "llama-bpe";
    return "gpt-2";
}

/* tokenizer.ggml.* of the "gpt2" model (byte-level BPE): tokens, types, merges as "a b" strings */
static int put_gpt2(gguf_buf *b, uint64_t *nkv, const char *path, const cJSON *root, int V, const sc_config *cfg,
                    const char **tok, int32_t *tt) {
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "model"), "merges");
    const cJSON *e;
    gguf_kv_str(b, nkv, "tokenizer.ggml.model", "gpt2");
    gguf_kv_str(b, nkv, "tokenizer.ggml.pre", gpt2_pre(root, cfg));
    gguf_kv_array(b, nkv, "tokenizer.ggml.tokens", GGUF_T_STRING, (uint64_t)V);
    for (int i = 0; i < V; i++) {
        char pad[32];
        snprintf(pad, sizeof pad, "[PAD%d]", i);
        gguf_put_str(b, tok[i] ? tok[i] : pad);
    }
    gguf_kv_array(b, nkv, "tokenizer.ggml.token_type", GGUF_T_I32, (uint64_t)V);
    gguf_put(b, tt, (size_t)V * 4);
    uint64_t n = 0;
    cJSON_ArrayForEach(e, merges) n += cJSON_IsString(e) && strncmp(e->valuestring, "#version", 8) == 0 ? 0 : 1;
    gguf_kv_array(b, nkv, "tokenizer.ggml.merges", GGUF_T_STRING, n);
    cJSON_ArrayForEach(e, merges) {
        const char *l, *r;
        size_t ll, lr;
        int k = merge_halves(e, &l, &ll, &r, &lr);
        if (k == 0) continue;
        if (k < 0) return sc_fail("%s: a merge is neither \"a b\" nor [a, b]", path);
        gguf_put_u64(b, ll + 1 + lr), gguf_put(b, l, ll), gguf_put(b, " ", 1), gguf_put(b, r, lr);
    }
    /* Llama-3.x <|begin_of_text|> $A, DeepSeek-Coder's BOS: read by the tokenizer where a post-processor can add
     * one (not null, not a bare ByteLevel) */
    int32_t post_bos = -1;
    const cJSON *post = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    if (post && !cJSON_IsNull(post) && !(type_of(post) && strcmp(type_of(post), "ByteLevel") == 0)) {
        sc_tokenizer *t;
        if (tokenizer_load(&t, path)) return -1;
        post_bos = tokenizer_bos_id(t);
        tokenizer_free(t);
    }
    static const struct { const char *tok, *key; } ids[] = {
        {"<|endoftext|>", "tokenizer.ggml.eos_token_id"},   {"<|endoftext|>", "tokenizer.ggml.bos_token_id"},
        {"<fim_prefix>", "tokenizer.ggml.fim_pre_token_id"}, {"<fim_suffix>", "tokenizer.ggml.fim_suf_token_id"},
        {"<fim_middle>", "tokenizer.ggml.fim_mid_token_id"}, {"<fim_pad>", "tokenizer.ggml.fim_pad_token_id"},
        {"<file_sep>", "tokenizer.ggml.fim_sep_token_id"},
    };
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
        int id = -1;
        if (strstr(ids[k].key, "eos") && cfg->eos_token_id >= 0) id = cfg->eos_token_id;
        else if (strstr(ids[k].key, "bos") && post_bos >= 0) id = post_bos;
        else if (strstr(ids[k].key, "bos") && cfg->bos_token_id >= 0) id = cfg->bos_token_id;
        else
            for (int i = 0; i < V; i++)
                if (tok[i] && strcmp(tok[i], ids[k].tok) == 0) id = i;
        if (id >= 0) gguf_kv_u32(b, nkv, ids[k].key, (uint32_t)id);
    }
    /* llama.cpp adds BOS where the tokenizer's post-processor does, as complete and serve do */
    gguf_kv_bool(b, nkv, "tokenizer.ggml.add_bos_token", post_bos >= 0);
    return 0;
}

int gguf_put_tokenizer(gguf_buf *b, uint64_t *nkv, const char *dir, int V, const sc_config *cfg) {
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
    const char *type = type_of(model);
    const char **tok = sc_calloc((size_t)V, sizeof(char *));
    int32_t *tt = sc_calloc((size_t)V, sizeof(int32_t));
    if (!type || strcmp(type, "BPE") || !cJSON_IsObject(vocab) || !cJSON_IsArray(merges)) {
        sc_fail("%s: expected a BPE model with vocab and merges", path);
        goto out;
    }
    cJSON_ArrayForEach(e, vocab) {
        int id = e->valueint;
        if (!cJSON_IsNumber(e) || id < 0) continue;
        if (id >= V) {
            sc_fail("%s: token id %d is outside the model's vocabulary (%d)", path, id, V);
            goto out;
        }
        tok[id] = e->string, tt[id] = TT_NORMAL;
    }
    cJSON_ArrayForEach(e, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id"), *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!cJSON_IsNumber(id) || !cJSON_IsString(c) || id->valueint < 0 || id->valueint >= V) continue;
        tok[id->valueint] = c->valuestring;
        tt[id->valueint] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "special")) ? TT_CONTROL : TT_USER_DEFINED;
    }
    for (int i = 0; i < V; i++)
        if (!tok[i]) tt[i] = TT_UNUSED; /* rows past the tokenizer (padded vocabularies): "[PADi]" */
    /* SentencePiece style: what our loader reads as such (no ByteLevel) and marks it (byte fallback, ▁ written by
     * a normalizer or Metaspace); a bare BPE without either stays "gpt2", as it was exported before */
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (!has_type(pre, "ByteLevel") &&
        (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback")) || has_type(pre, "Metaspace") ||
         has_type(norm, "Prepend") || has_type(norm, "Replace")))
        rc = put_llama(b, nkv, path, root, V, cfg, tok, tt);
    else
        rc = put_gpt2(b, nkv, path, root, V, cfg, tok, tt);
out:
    free(tok), free(tt);
    cJSON_Delete(root);
    return rc;
}
