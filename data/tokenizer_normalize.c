/* tokenizer_normalize.c — the normalizers of an HF tokenizer.json that BPE models use: Unicode NFC/NFD/NFKC/NFKD
 * (Qwen2's NFC; the tables are ICU's, not ours), and the string edits SentencePiece-style tokenizers are built
 * from (Llama-2's Sequence[Prepend("▁"), Replace(" ", "▁")]), plus Strip. They run on each stretch of text
 * between non-normalized added tokens, before the normalized added tokens and the pre-tokenizer, as HF does. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "host/error.h"
#include "data/tokenizer_internal.h"

int tok_is_white_space(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static norm_step *add_norm(sc_tokenizer *t) {
    t->norms = realloc(t->norms, (size_t)(t->nnorms + 1) * sizeof *t->norms);
    if (!t->norms) sc_malloc((size_t)-1);
    norm_step *n = &t->norms[t->nnorms++];
    memset(n, 0, sizeof *n);
    return n;
}

static char *dup_str(const char *s, size_t *len) {
    *len = strlen(s);
    char *d = sc_malloc(*len + 1);
    memcpy(d, s, *len + 1);
    return d;
}

static int norm_bool(const cJSON *o, const char *name, int def, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v || cJSON_IsNull(v)) *out = def;
    else if (cJSON_IsBool(v)) *out = cJSON_IsTrue(v);
    else return sc_fail("normalizer Strip: field '%s' must be true or false", name);
    return 0;
}

int tokenizer_parse_normalizer(sc_tokenizer *t, const void *json) {
    const cJSON *n = json;
    if (!n || cJSON_IsNull(n)) return 0;
    const cJSON *ty = cJSON_GetObjectItemCaseSensitive(n, "type");
    const char *type = cJSON_IsString(ty) ? ty->valuestring : NULL;
    if (!type) return sc_fail("normalizer: missing \"type\"");
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *it, *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        if (!cJSON_IsArray(list)) return sc_fail("normalizer Sequence: \"normalizers\" must be an array");
        cJSON_ArrayForEach(it, list) if (tokenizer_parse_normalizer(t, it)) return -1;
        return 0;
    }
    static const char *forms[] = {"NFC", "NFD", "NFKC", "NFKD"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(type, forms[i]) != 0) continue;
        UErrorCode err = U_ZERO_ERROR;
        const UNormalizer2 *u = i == 0 ? unorm2_getNFCInstance(&err) : i == 1 ? unorm2_getNFDInstance(&err)
                                : i == 2 ? unorm2_getNFKCInstance(&err) : unorm2_getNFKDInstance(&err);
        if (U_FAILURE(err) || !u) return sc_fail("normalizer %s: ICU has no such normalizer (%s)", type, u_errorName(err));
        norm_step *st = add_norm(t);
        st->kind = (norm_kind)(NORM_NFC + i);
        st->icu = u;
        return 0;
    }
    if (strcmp(type, "Prepend") == 0) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(n, "prepend");
        if (!cJSON_IsString(p) || !p->valuestring[0]) return sc_fail("normalizer Prepend: \"prepend\" must be a non-empty string");
        norm_step *st = add_norm(t);
        st->kind = NORM_PREPEND;
        st->a = dup_str(p->valuestring, &st->la);
        t->has_prepend = 1;
        return 0;
    }
    if (strcmp(type, "Replace") == 0) {
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(n, "pattern");
        const cJSON *str = cJSON_GetObjectItemCaseSensitive(pat, "String");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(n, "content");
        if (cJSON_GetObjectItemCaseSensitive(pat, "Regex"))
            return sc_fail("normalizer Replace: a Regex pattern is not supported (only {\"String\": ...})");
        if (!cJSON_IsString(str) || !str->valuestring[0] || !cJSON_IsString(content))
            return sc_fail("normalizer Replace: needs \"pattern\": {\"String\": non-empty} and a string \"content\"");
        norm_step *st = add_norm(t);
        st->kind = NORM_REPLACE;
        st->a = dup_str(str->valuestring, &st->la);
        st->b = dup_str(content->valuestring, &st->lb);
        return 0;
    }
    if (strcmp(type, "Strip") == 0) {
        int l = 1, r = 1;
        if (norm_bool(n, "strip_left", 1, &l) || norm_bool(n, "strip_right", 1, &r)) return -1;
        norm_step *st = add_norm(t);
        st->kind = NORM_STRIP;
        st->left = l, st->right = r;
        return 0;
    }
    return sc_fail("normalizer type '%s' is not supported (NFC, NFD, NFKC, NFKD, Prepend, Replace, Strip or a "
                   "Sequence of them)", type);
}

void tokenizer_norm_free(sc_tokenizer *t) {
    for (int i = 0; i < t->nnorms; i++) {
        free(t->norms[i].a);
        free(t->norms[i].b);
    }
    free(t->norms);
    t->norms = NULL;
    t->nnorms = 0;
}

/* One valid UTF-8 run through an ICU normalizer (UTF-16 inside ICU), appended to out. */
static int icu_run(const UNormalizer2 *u, const char *s, size_t n, byte_buf *out) {
    UErrorCode err = U_ZERO_ERROR;
    int32_t n16 = 0;
    UChar *src = sc_malloc((n + 1) * sizeof *src);
    u_strFromUTF8(src, (int32_t)n + 1, &n16, s, (int32_t)n, &err);
    int32_t cap = n16 * 2 + 16, len = 0;
    UChar *dst = NULL;
    for (int tries = 0; tries < 2 && !U_FAILURE(err); tries++) {
        free(dst);
        dst = sc_malloc((size_t)cap * sizeof *dst);
        err = U_ZERO_ERROR;
        len = unorm2_normalize(u, src, n16, dst, cap, &err);
        if (err == U_BUFFER_OVERFLOW_ERROR) cap = len + 1; /* NFKD of some characters grows 18x */
        else break;
    }
    int32_t n8 = 0;
    if (!U_FAILURE(err)) {
        size_t at = out->len;
        tok_buf_add(out, NULL, (size_t)len * 3); /* room: one UTF-16 unit is at most 3 UTF-8 bytes */
        u_strToUTF8(out->buf + at, len * 3 + 1, &n8, dst, len, &err);
        out->len = at + (U_FAILURE(err) ? 0 : (size_t)n8);
    }
    free(src);
    free(dst);
    if (U_FAILURE(err)) return sc_fail("Unicode normalization failed (ICU: %s)", u_errorName(err));
    return 0;
}

/* text -> out under one of NFC/NFD/NFKC/NFKD. ASCII is unchanged by all four, and bytes that are not UTF-8
 * (HF never sees them: its input is a string) pass through as they are; only the valid runs go to ICU. */
static int unicode_form(const norm_step *st, const char *s, size_t n, byte_buf *out) {
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        int ascii = 1;
        while (j < n) {
            uint32_t cp;
            int l = tok_utf8_decode((const uint8_t *)s + j, n - j, &cp);
            if (!l) break;
            ascii &= l == 1;
            j += (size_t)l;
        }
        if (j > i) {
            if (ascii) tok_buf_add(out, s + i, j - i);
            else if (icu_run(st->icu, s + i, j - i, out)) return -1;
        }
        if (j < n) tok_buf_add(out, s + j, 1), j++;
        i = j;
    }
    return 0;
}

static void replace_all(const norm_step *st, const char *s, size_t n, byte_buf *out) {
    size_t i = 0;
    while (i < n) {
        const char *hit = st->la <= n - i ? memmem(s + i, n - i, st->a, st->la) : NULL;
        if (!hit) break;
        tok_buf_add(out, s + i, (size_t)(hit - (s + i)));
        tok_buf_add(out, st->b, st->lb);
        i = (size_t)(hit - s) + st->la;
    }
    tok_buf_add(out, s + i, n - i);
}

static void strip_ws(const norm_step *st, const char *s, size_t n, byte_buf *out) {
    size_t a = 0, b = n;
    if (st->left)
        while (a < b) {
            uint32_t cp;
            int l = tok_utf8_decode((const uint8_t *)s + a, b - a, &cp);
            if (!l || !tok_is_white_space(cp)) break;
            a += (size_t)l;
        }
    if (st->right)
        while (b > a) {
            size_t k = b - 1;
            while (k > a && b - k < 4 && ((uint8_t)s[k] & 0xC0) == 0x80) k--;
            uint32_t cp;
            int l = tok_utf8_decode((const uint8_t *)s + k, b - k, &cp);
            if (!l || (size_t)l != b - k || !tok_is_white_space(cp)) break;
            b = k;
        }
    tok_buf_add(out, s + a, b - a);
}

int tokenizer_normalize(const sc_tokenizer *t, const char *text, size_t n, int skip_prepend, pretok_scratch *s,
                        const char **out, size_t *out_len) {
    const char *cur = text;
    size_t len = n;
    int w = 0; /* buffer written next; the other one holds cur once a step ran */
    for (int i = 0; i < t->nnorms; i++) {
        const norm_step *st = &t->norms[i];
        byte_buf *b = &s->norm[w];
        b->len = 0;
        tok_buf_add(b, NULL, 0);
        switch (st->kind) {
        case NORM_NFC: case NORM_NFD: case NORM_NFKC: case NORM_NFKD:
            if (unicode_form(st, cur, len, b)) return -1;
            break;
        case NORM_PREPEND: /* HF prepends only to a non-empty string */
            if (len && !skip_prepend) tok_buf_add(b, st->a, st->la);
            tok_buf_add(b, cur, len);
            break;
        case NORM_REPLACE:
            replace_all(st, cur, len, b);
            break;
        case NORM_STRIP:
            strip_ws(st, cur, len, b);
            break;
        }
        cur = b->buf, len = b->len;
        w ^= 1;
    }
    *out = cur;
    *out_len = len;
    return 0;
}
