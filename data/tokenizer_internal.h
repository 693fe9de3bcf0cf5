/* tokenizer_internal.h — the sc_tokenizer structure and the helpers shared by tokenizer_*.c (byte mapping,
 * hash maps, pre-tokenizer pipeline, BPE). Not part of the public API: include tokenizer.h instead. */
#ifndef SC_TOKENIZER_INTERNAL_H
#define SC_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer.h"

/* ---- byte-level mapping (GPT-2 bytes_to_unicode) ---- */

/* Code point that byte b is written as in a byte-level token string. */
uint32_t bytelevel_char(uint8_t b);
/* Byte a code point stands for, or -1 when cp is not one of the 256 byte-level characters. */
int bytelevel_byte(uint32_t cp);
/* Decodes one UTF-8 sequence at s[0..n): returns its length (1..4) and the code point, or 0 when invalid. */
int tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
/* Writes cp as UTF-8 into out (4 bytes room); returns the length. */
int tok_utf8_encode(uint32_t cp, char *out);
/* Byte-level string -> raw bytes. Returns the byte count, or -1 when a character is not byte-level. */
long bytelevel_to_bytes(const char *s, size_t n, uint8_t *out);
/* Raw bytes -> byte-level string (up to 2 UTF-8 bytes per input byte); returns the length written. */
size_t bytes_to_bytelevel(const uint8_t *s, size_t n, char *out);

/* ---- Unicode categories as HF's Oniguruma has them (tokenizer_unicode.c, generated) ---- */

typedef struct {
    uint32_t lo, hi;
} tok_unicode_range;

typedef struct {
    const char *name; /* "L", "Lu", "N", ... */
    const tok_unicode_range *ranges;
    int n;
} tok_unicode_category;

extern const tok_unicode_category tok_unicode_categories[]; /* ends with a NULL name */

/* ---- hashing and a byte-string -> id map (open addressing, built once, read-only afterwards) ---- */

uint64_t tok_hash_bytes(const void *p, size_t n);

typedef struct {
    uint32_t *slots;   /* index+1 into keys, 0 = empty */
    uint32_t mask;
    uint32_t count;
    /* keys live in one blob: key i is blob[off[i] .. off[i]+len[i]) */
    char *blob;
    size_t blob_len, blob_cap;
    uint64_t *off;
    uint32_t *len;
    int32_t *val;
    uint32_t cap;
} tok_strmap;

void strmap_init(tok_strmap *m, uint32_t expected);
void strmap_free(tok_strmap *m);
/* Inserts or overwrites; returns 1 if the key was new. */
int strmap_put(tok_strmap *m, const void *key, size_t n, int32_t val);
/* The value, or -1. */
int32_t strmap_get(const tok_strmap *m, const void *key, size_t n);

/* Pair of ids -> (rank, new id). */
typedef struct {
    uint64_t *keys;    /* (a << 32 | b) + 1, 0 = empty */
    uint32_t *rank;
    int32_t *new_id;
    uint64_t mask;
    uint64_t count;
} tok_pairmap;

void pairmap_init(tok_pairmap *m, uint64_t expected);
void pairmap_free(tok_pairmap *m);
void pairmap_put(tok_pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t new_id);
/* Returns 1 and fills rank/new_id when the pair is a merge. */
static inline int pairmap_get(const tok_pairmap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *new_id) {
    uint64_t k = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    uint64_t h = (k * 0x9E3779B97F4A7C15ull) >> 17;
    for (uint64_t i = h & m->mask;; i = (i + 1) & m->mask) {
        if (m->keys[i] == k) {
            *rank = m->rank[i];
            *new_id = m->new_id[i];
            return 1;
        }
        if (!m->keys[i]) return 0;
    }
}

/* ---- pre-tokenizer pipeline ---- */

typedef enum { PRE_SPLIT, PRE_BYTELEVEL, PRE_METASPACE } pre_kind;
/* HF Metaspace PrependScheme */
typedef enum { META_ALWAYS, META_FIRST, META_NEVER } meta_scheme;
/* HF SplitDelimiterBehavior */
typedef enum { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS } split_behavior;

typedef struct {
    pre_kind kind;
    pcre2_code *re;          /* SPLIT, and BYTELEVEL with use_regex (the GPT-2 pattern) */
    int jit;                 /* re was JIT-compiled */
    split_behavior behavior; /* SPLIT; BYTELEVEL's regex split is ISOLATED */
    int invert;              /* SPLIT */
    int add_prefix_space;    /* BYTELEVEL */
    char meta_rep[8];        /* METASPACE: the replacement character (UTF-8, NUL-terminated); re splits on it */
    meta_scheme meta_prepend; /* METASPACE */
    char *desc;              /* canonical description, part of tokenizer_hash() */
} pre_step;

typedef struct {
    char *buf;
    size_t len, cap;
} byte_buf;

#define PRETOK_MAX_STEPS 16

/* Per-thread scratch for pre-tokenization. */
typedef struct {
    byte_buf prefixed[PRETOK_MAX_STEPS]; /* per step: a piece with ByteLevel's prefix space / Metaspace's rewrite */
    byte_buf norm[2];                    /* the normalizers' output and their scratch */
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
} pretok_scratch;

typedef void (*tok_piece_fn)(void *arg, const uint8_t *w, size_t n);
typedef void (*tok_added_fn)(void *arg, int32_t id);

extern const char *const TOK_GPT2_PATTERN;

/* Compiles an (Oniguruma-syntax, as in tokenizer.json) regex with PCRE2 UTF+UCP, JIT when available. */
int pretok_compile(const char *pattern, size_t len, int literal, pre_step *st);
void pretok_step_free(pre_step *st);
void pretok_scratch_init(pretok_scratch *s);
void pretok_scratch_free(pretok_scratch *s);
/* Runs the steps over text[0..n); piece() gets every resulting pre-token, in order. first: PRETOK_FIRST when
 * the text starts the input (Metaspace's prepend_scheme "first" prepends only there), | PRETOK_NO_PREFIX when
 * the caller wants no Metaspace prefix there (tokenizer_encode_cont). */
#define PRETOK_FIRST 1
#define PRETOK_NO_PREFIX 2
int pretok_run(const pre_step *steps, int nsteps, const char *text, size_t n, int first, pretok_scratch *s,
               tok_piece_fn piece, void *arg);
void tok_buf_add(byte_buf *b, const char *s, size_t n);

/* ---- normalizers (tokenizer_normalize.c): NFC/NFD/NFKC/NFKD (ICU), Prepend, Replace(String), Strip ---- */

typedef enum { NORM_NFC, NORM_NFD, NORM_NFKC, NORM_NFKD, NORM_PREPEND, NORM_REPLACE, NORM_STRIP } norm_kind;

typedef struct {
    norm_kind kind;
    char *a, *b;             /* PREPEND: a = the prefix; REPLACE: a -> b */
    size_t la, lb;
    int left, right;         /* STRIP */
    const void *icu;         /* NFC...: the ICU UNormalizer2 (owned by ICU) */
} norm_step;

/* Appends the steps of one normalizer object (flattening Sequence); null or absent adds none. */
int tokenizer_parse_normalizer(sc_tokenizer *t, const void *json);
/* Normalizes text[0..n) into a buffer of s (valid until the next call); at_start: the text begins the input and
 * the caller asked for no prefix there (tokenizer_encode_cont), so a Prepend is skipped. */
int tokenizer_normalize(const sc_tokenizer *t, const char *text, size_t n, int skip_prepend, pretok_scratch *s,
                        const char **out, size_t *out_len);
void tokenizer_norm_free(sc_tokenizer *t);
/* Unicode White_Space (Rust's char::is_whitespace, Oniguruma's \s) */
int tok_is_white_space(uint32_t c);

/* ---- the tokenizer ---- */

typedef struct {
    char *content;   /* UTF-8 */
    size_t len;
    int32_t id;
    int single_word, lstrip, rstrip, normalized, special;
} added_token;

struct sc_tokenizer {
    int vocab_size;            /* max id + 1 */
    char **id_str;             /* token text as in tokenizer.json (NULL for an unused id) */
    uint8_t **id_bytes;        /* what decode writes for the id (byte-level decoded, or the raw text) */
    uint32_t *id_nbytes;
    tok_strmap str_to_id;      /* token text (as in the JSON) -> id, model vocab and added tokens */
    tok_strmap bytes_to_id;    /* raw byte string -> id, for the byte-level model vocabulary */
    int32_t byte_id[256];      /* id of each single byte's token, -1 if absent */
    tok_pairmap merges;
    uint32_t nmerges;
    int ignore_merges;
    int32_t unk_id;            /* -1: unknown bytes are dropped, as HF does without unk_token */
    /* bytelevel 1: a ByteLevel pre-tokenizer, BPE symbols are bytes (GPT-2 style). 0: SentencePiece style (no
     * ByteLevel), symbols are characters of the text itself and a character not in the vocabulary becomes its
     * <0xNN> byte tokens (byte_fallback) or unk. bytes_to_id then maps the token text itself. */
    int bytelevel;
    int byte_fallback;
    int32_t fallback_id[256];  /* <0xNN> of each byte, -1 if absent */
    norm_step *norms;
    int nnorms;
    /* non-ByteLevel decoders: each id's text with Replace / ByteFallback / Metaspace applied is id_bytes; then
     * Strip removes up to strip_start leading and strip_stop trailing strip_char of the whole text, and a
     * Metaspace decoder drops the replacement character from the first token (meta_first) */
    char strip_char[8];
    int strip_start, strip_stop;
    char meta_first[8];        /* "" when off */
    int fuse_unk;
    added_token *added;
    int nadded;
    /* the two added-token passes (non-normalized, then normalized): the tokens of pass p that start with byte
     * b are added[by_first[p][bucket[p][b]] .. by_first[p][bucket[p][b + 1]] - 1] */
    int *by_first[2];
    int bucket[2][257];
    pre_step *steps;
    int nsteps;
    /* the post_processor's single-sequence template (tokenizer_post.c): ids before and after the text */
    int32_t *post_pre, *post_suf;
    int npost_pre, npost_suf;
    uint64_t hash;
    uint64_t serial;           /* unique per loaded tokenizer: keys the per-thread BPE cache */
};

/* BPE of one pre-token (raw bytes): appends ids to *out (growing it). Uses the calling thread's cache. */
typedef struct {
    int32_t *v;
    size_t n, cap;
} id_vec;
void idvec_push(id_vec *v, int32_t id);
void tokenizer_bpe_word(const sc_tokenizer *tok, const uint8_t *w, size_t n, id_vec *out);
/* The same merge loop without the cache (also used by tests to check the cache). */
void tokenizer_bpe_merge(const sc_tokenizer *tok, const uint8_t *w, size_t n, id_vec *out);

/* Added-token split + pre-tokenizer pipeline over text: piece() gets each pre-token's raw bytes (valid only
 * during the call), added() each added token's id, in text order. Encode and training both use it. */
int tokenizer_pretokenize(const sc_tokenizer *tok, const char *text, size_t len, tok_piece_fn piece,
                          tok_added_fn added, void *arg);

/* Parses the post_processor object (null or absent: nothing is added); refuses unknown types by name. */
int tokenizer_parse_post(sc_tokenizer *t, const void *json);

/* Allocates a fresh unique serial. */
uint64_t tokenizer_next_serial(void);

#endif
