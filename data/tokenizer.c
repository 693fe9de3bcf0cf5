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
#define is_white_space tok_is_white_space

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
    const char *input; /* the text encoded; cont: it continues earlier text (no SentencePiece prefix at its start) */
    int cont;
    const char *seg;   /* the normalized stretch being encoded, and whether it starts the input */
    int seg_first;
} encode_ctx;

static int encode_pass(encode_ctx *c, int pass, const char *s, size_t n);

static int encode_plain(encode_ctx *c, const char *s, size_t n) {
    if (!n) return 0;
    int first = c->seg_first && s == c->seg ? PRETOK_FIRST | (c->cont ? PRETOK_NO_PREFIX : 0) : 0;
    return pretok_run(c->tok->steps, c->tok->nsteps, s, n, first, c->sc, c->piece, c->arg);
}

/* A stretch between non-normalized added tokens: normalized (HF normalizes each such stretch on its own, so a
 * Prepend applies after every special token), then the normalized added tokens are cut out of it. */
static int encode_normalized(encode_ctx *c, const char *s, size_t n) {
    int first = s == c->input;
    if (c->tok->nnorms) {
        if (tokenizer_normalize(c->tok, s, n, first && c->cont, c->sc, &s, &n)) return -1;
        if (!n) return 0;
    }
    c->seg = s, c->seg_first = first;
    return encode_pass(c, 1, s, n);
}

/* HF AddedVocabulary::find_matches for one pass; the gaps go to the next pass, then to the model. */
static int encode_pass(encode_ctx *c, int pass, const char *s, size_t n) {
    const sc_tokenizer *t = c->tok;
    if (pass == 2) return encode_plain(c, s, n);
    int (*next)(encode_ctx *, const char *, size_t) = pass == 0 ? encode_normalized : NULL;
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
        if (start_offset < start && (next ? next(c, s + start_offset, start - start_offset)
                                          : encode_pass(c, pass + 1, s + start_offset, start - start_offset)))
            return -1;
        c->added(c->arg, a->id);
        start_offset = stop;
    }
    if (start_offset >= n) return 0;
    return next ? next(c, s + start_offset, n - start_offset) : encode_pass(c, pass + 1, s + start_offset, n - start_offset);
}

static int pretokenize(const sc_tokenizer *tok, const char *text, size_t len, int cont, tok_piece_fn piece,
                       tok_added_fn added, void *arg) {
    encode_ctx c = {tok, thread_scratch(), piece, added, arg, text, cont, NULL, 0};
    return encode_pass(&c, 0, text, len);
}

int tokenizer_pretokenize(const sc_tokenizer *tok, const char *text, size_t len, tok_piece_fn piece,
                          tok_added_fn added, void *arg) {
    return pretokenize(tok, text, len, 0, piece, added, arg);
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

static int encode(const sc_tokenizer *tok, const char *text, size_t len, int cont, int32_t **ids, size_t *n) {
    id_vec out = {0};
    bpe_arg a = {tok, &out};
    if (pretokenize(tok, text, len, cont, bpe_piece, bpe_added, &a)) {
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

int tokenizer_encode(const sc_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n) {
    return encode(tok, text, len, 0, ids, n);
}

int tokenizer_encode_cont(const sc_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n) {
    return encode(tok, text, len, 1, ids, n);
}

/* Metaspace decoder, first token: its text with every replacement character dropped (HF drops them all, not
 * only a leading one). Returns the length written to out (room: the token's text). */
static size_t meta_first_token(const sc_tokenizer *tok, int32_t id, char *out) {
    const char *s = tok->id_str[id], *rep = tok->meta_first;
    size_t lr = strlen(rep), k = 0;
    for (size_t i = 0; s[i];) {
        if (strncmp(s + i, rep, lr) == 0) i += lr;
        else out[k++] = s[i++];
    }
    return k;
}

static int decode(const sc_tokenizer *tok, const int32_t *ids, size_t n, int cont, char **out, size_t *len) {
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
    size_t first_len = n && tok->id_str[ids[0]] ? strlen(tok->id_str[ids[0]]) : 0;
    char *buf = sc_malloc(total + first_len + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 && !cont && tok->meta_first[0] && tok->id_str[ids[0]] && strstr(tok->id_str[ids[0]], tok->meta_first)) {
            k += meta_first_token(tok, ids[0], buf);
            continue;
        }
        memcpy(buf + k, tok->id_bytes[ids[i]], tok->id_nbytes[ids[i]]);
        k += tok->id_nbytes[ids[i]];
    }
    size_t a = 0, lc = strlen(tok->strip_char);
    if (!cont && lc) { /* HF Strip after Fuse: up to start copies of the character off the front, stop off the end */
        for (int r = 0; r < tok->strip_start && k - a >= lc && memcmp(buf + a, tok->strip_char, lc) == 0; r++) a += lc;
        for (int r = 0; r < tok->strip_stop && k - a >= lc && memcmp(buf + k - lc, tok->strip_char, lc) == 0; r++) k -= lc;
        if (a) memmove(buf, buf + a, k - a);
        k -= a;
    }
    buf[k] = 0;
    *out = buf;
    *len = k;
    return 0;
}

int tokenizer_decode(const sc_tokenizer *tok, const int32_t *ids, size_t n, char **out, size_t *len) {
    return decode(tok, ids, n, 0, out, len);
}

int tokenizer_decode_cont(const sc_tokenizer *tok, const int32_t *ids, size_t n, char **out, size_t *len) {
    return decode(tok, ids, n, 1, out, len);
}

int tokenizer_vocab_size(const sc_tokenizer *tok) { return tok->vocab_size; }

const char *tokenizer_token_text(const sc_tokenizer *tok, int32_t id) {
    return id >= 0 && id < tok->vocab_size ? tok->id_str[id] : NULL;
}

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
    free(t->post_pre);
    free(t->post_suf);
    tokenizer_norm_free(t);
    free(t);
}
