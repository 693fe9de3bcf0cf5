/* tokenizer.c — encode and decode with a loaded tokenizer: added/special tokens are cut out first (HF's two
 * passes: non-normalized tokens, then normalized ones; leftmost-longest), the rest goes through the
 * pre-tokenizer pipeline and BPE. Scratch and the BPE cache are per thread, so one tokenizer serves many. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "data/tokenizer_internal.h"

/* ---- per-thread pre-tokenizer scratch ---- */

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static pre_step word_re; /* Unicode \w as Rust's regex has it (single_word added tokens), HF's tables */

static void scratch_destroy(void *p) {
    pretok_scratch_free(p);
    free(p);
}

static void scratch_key_create(void) {
    pthread_key_create(&scratch_key, scratch_destroy);
    const char *pat = "\\A[\\p{L}\\p{M}\\p{Nd}\\p{Nl}\\p{Pc}\\x{200C}\\x{200D}]";
    if (pretok_compile(pat, strlen(pat), 0, &word_re)) word_re.re = NULL; /* then: ASCII word characters only */
}

static pretok_scratch *thread_scratch(void) {
    pthread_once(&scratch_once, scratch_key_create);
    pretok_scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = sc_malloc(sizeof *s);
        pretok_scratch_init(s);
        pthread_setspecific(scratch_key, s);
    }
    return s;
}

/* ---- added tokens ---- */

/* Unicode White_Space (Rust's \s), for lstrip / rstrip. */
static int is_white_space(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static int is_word_char_at(const char *s, size_t n, pretok_scratch *sc) {
    if (!n) return 0;
    if ((unsigned char)s[0] < 0x80) return s[0] == '_' || (s[0] >= '0' && s[0] <= '9') || ((s[0] | 32) >= 'a' && (s[0] | 32) <= 'z');
    return word_re.re && pcre2_match(word_re.re, (PCRE2_SPTR)s, n < 4 ? n : 4, 0, 0, sc->md, NULL) >= 0;
}

/* Start of the last UTF-8 character of s[0..n). */
static size_t last_char(const char *s, size_t n) {
    size_t i = n - 1;
    while (i > 0 && n - i < 4 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    return i;
}

/* Longest added token of this pass (normalized or not) that starts at s[0..n), or NULL. */
static const added_token *added_at(const sc_tokenizer *t, int pass, const char *s, size_t n) {
    const added_token *best = NULL;
    uint8_t b = (uint8_t)s[0];
    for (int k = t->bucket[pass][b]; k < t->bucket[pass][b + 1]; k++) {
        const added_token *a = &t->added[t->by_first[pass][k]];
        if (a->len > n || (a->len > 1 && a->content[1] != s[1])) continue;
        if ((!best || a->len > best->len) && memcmp(a->content, s, a->len) == 0) best = a;
    }
    return best;
}

typedef struct {
    const sc_tokenizer *tok;
    pretok_scratch *sc;
    tok_piece_fn piece;
    tok_added_fn added;
    void *arg;
} encode_ctx;

static int encode_plain(encode_ctx *c, const char *s, size_t n) {
    if (!n) return 0;
    return pretok_run(c->tok->steps, c->tok->nsteps, s, n, c->sc, c->piece, c->arg);
}

/* HF AddedVocabulary::find_matches for one pass; the gaps go to the next pass, then to the model. */
static int encode_pass(encode_ctx *c, int pass, const char *s, size_t n) {
    const sc_tokenizer *t = c->tok;
    if (pass == 2) return encode_plain(c, s, n);
    const int *bucket = t->bucket[pass];
    size_t start_offset = 0, pos = 0;
    while (pos < n) {
        uint8_t b = (uint8_t)s[pos];
        if (bucket[b] == bucket[b + 1]) {
            pos++;
            continue;
        }
        const added_token *a = added_at(t, pass, s + pos, n - pos);
        if (!a) {
            pos++;
            continue;
        }
        size_t start = pos, stop = pos + a->len;
        pos = stop; /* the next search starts after the raw match, whatever stripping does */
        if (a->single_word) {
            int start_space = start == 0 || !is_word_char_at(s + last_char(s, start), start - last_char(s, start), c->sc);
            int stop_space = stop == n || !is_word_char_at(s + stop, n - stop, c->sc);
            if (!start_space || !stop_space) continue;
        }
        if (a->lstrip) { /* back over the whitespace that ends s[0..start), not before the last match */
            size_t ws = 0, i = 0;
            while (i < start) {
                uint32_t cp;
                int l = tok_utf8_decode((const uint8_t *)s + i, start - i, &cp);
                if (!l) l = 1, cp = 0xFFFD;
                if (!is_white_space(cp)) ws = i + (size_t)l;
                i += (size_t)l;
            }
            start = ws > start_offset ? ws : start_offset;
        }
        if (a->rstrip) {
            while (stop < n) {
                uint32_t cp;
                int l = tok_utf8_decode((const uint8_t *)s + stop, n - stop, &cp);
                if (!l || !is_white_space(cp)) break;
                stop += (size_t)l;
            }
        }
        if (start_offset < start && encode_pass(c, pass + 1, s + start_offset, start - start_offset)) return -1;
        c->added(c->arg, a->id);
        start_offset = stop;
    }
    return start_offset < n ? encode_pass(c, pass + 1, s + start_offset, n - start_offset) : 0;
}

int tokenizer_pretokenize(const sc_tokenizer *tok, const char *text, size_t len, tok_piece_fn piece,
                          tok_added_fn added, void *arg) {
    encode_ctx c = {tok, thread_scratch(), piece, added, arg};
    return encode_pass(&c, 0, text, len);
}

typedef struct {
    const sc_tokenizer *tok;
    id_vec *out;
} bpe_arg;

static void bpe_piece(void *arg, const uint8_t *w, size_t n) {
    bpe_arg *a = arg;
    tokenizer_bpe_word(a->tok, w, n, a->out);
}

static void bpe_added(void *arg, int32_t id) { idvec_push(((bpe_arg *)arg)->out, id); }

int tokenizer_encode(const sc_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n) {
    id_vec out = {0};
    bpe_arg a = {tok, &out};
    if (tokenizer_pretokenize(tok, text, len, bpe_piece, bpe_added, &a)) {
        free(out.v);
        *ids = NULL;
        *n = 0;
        return -1;
    }
    if (!out.v) out.v = sc_malloc(sizeof *out.v);
    *ids = out.v;
    *n = out.n;
    return 0;
}

int tokenizer_decode(const sc_tokenizer *tok, const int32_t *ids, size_t n, char **out, size_t *len) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tok->vocab_size || !tok->id_bytes[ids[i]]) {
            *out = NULL;
            *len = 0;
            return sc_fail("token id %d (position %zu) is not in the vocabulary (size %d)", ids[i], i,
                           tok->vocab_size);
        }
        total += tok->id_nbytes[ids[i]];
    }
    char *buf = sc_malloc(total + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(buf + k, tok->id_bytes[ids[i]], tok->id_nbytes[ids[i]]);
        k += tok->id_nbytes[ids[i]];
    }
    buf[k] = 0;
    *out = buf;
    *len = k;
    return 0;
}

int tokenizer_vocab_size(const sc_tokenizer *tok) { return tok->vocab_size; }

int tokenizer_token_id(const sc_tokenizer *tok, const char *token) {
    return strmap_get(&tok->str_to_id, token, strlen(token));
}

uint64_t tokenizer_hash(const sc_tokenizer *tok) { return tok->hash; }

void tokenizer_free(sc_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->vocab_size; i++) {
        if (t->id_str) free(t->id_str[i]);
        if (t->id_bytes) free(t->id_bytes[i]);
    }
    free(t->id_str);
    free(t->id_bytes);
    free(t->id_nbytes);
    strmap_free(&t->str_to_id);
    strmap_free(&t->bytes_to_id);
    pairmap_free(&t->merges);
    for (int i = 0; i < t->nadded; i++) free(t->added[i].content);
    free(t->added);
    free(t->by_first[0]);
    free(t->by_first[1]);
    for (int i = 0; i < t->nsteps; i++) pretok_step_free(&t->steps[i]);
    free(t->steps);
    free(t);
}
