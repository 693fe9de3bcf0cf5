/* gguf_buf.h — the growing byte buffer and the typed key/value writers that gguf_export.c (header, tensor infos)
 * and gguf_vocab.c (tokenizer.ggml.*) fill; GGUF writes everything little-endian, as this host stores it. */
#ifndef SC_INFER_GGUF_BUF_H
#define SC_INFER_GGUF_BUF_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/config.h"
#include "host/error.h"
#include "infer/gguf.h"

typedef struct {
    uint8_t *p;
    size_t n, cap;
} gguf_buf;

static inline void gguf_put(gguf_buf *b, const void *d, size_t n) {
    if (!n) return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 4096;
        b->p = realloc(b->p, b->cap);
        if (!b->p) sc_malloc((size_t)-1); /* reports out of memory and exits, as every allocation here */
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static inline void gguf_put_u32(gguf_buf *b, uint32_t v) { gguf_put(b, &v, 4); }
static inline void gguf_put_u64(gguf_buf *b, uint64_t v) { gguf_put(b, &v, 8); }
static inline void gguf_put_strn(gguf_buf *b, const char *s, size_t n) { gguf_put_u64(b, n), gguf_put(b, s, n); }
static inline void gguf_put_str(gguf_buf *b, const char *s) { gguf_put_strn(b, s, strlen(s)); }
static inline void gguf_kv_u32(gguf_buf *b, uint64_t *nkv, const char *k, uint32_t v) {
    gguf_put_str(b, k), gguf_put_u32(b, GGUF_T_U32), gguf_put_u32(b, v), ++*nkv;
}
static inline void gguf_kv_f32(gguf_buf *b, uint64_t *nkv, const char *k, float v) {
    gguf_put_str(b, k), gguf_put_u32(b, GGUF_T_F32), gguf_put(b, &v, 4), ++*nkv;
}
static inline void gguf_kv_str(gguf_buf *b, uint64_t *nkv, const char *k, const char *v) {
    gguf_put_str(b, k), gguf_put_u32(b, GGUF_T_STRING), gguf_put_str(b, v), ++*nkv;
}
static inline void gguf_kv_bool(gguf_buf *b, uint64_t *nkv, const char *k, int v) {
    uint8_t x = (uint8_t)(v != 0);
    gguf_put_str(b, k), gguf_put_u32(b, GGUF_T_BOOL), gguf_put(b, &x, 1), ++*nkv;
}
/* the header of an array key: name, ARRAY, element type, count (the elements follow) */
static inline void gguf_kv_array(gguf_buf *b, uint64_t *nkv, const char *k, uint32_t elem, uint64_t n) {
    gguf_put_str(b, k), gguf_put_u32(b, GGUF_T_ARRAY), gguf_put_u32(b, elem), gguf_put_u64(b, n), ++*nkv;
}

/* tokenizer.json of dir -> tokenizer.ggml.* (gguf_vocab.c): "gpt2" for byte-level BPE, "llama" for
 * SentencePiece-style BPE; V = the model's vocabulary (rows past the tokenizer become unused "[PADi]" tokens). */
int gguf_put_tokenizer(gguf_buf *b, uint64_t *nkv, const char *dir, int V, const sc_config *cfg);

#endif
