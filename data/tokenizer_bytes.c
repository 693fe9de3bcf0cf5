/* tokenizer_bytes.c — the GPT-2 byte<->unicode mapping, UTF-8 helpers and the two read-mostly hash maps the
 * tokenizer uses (byte string -> id, id pair -> merge). Small and dependency-free so every part shares them. */
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "data/tokenizer_internal.h"

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to 256+n in byte
 * order, so every byte becomes a visible character and token strings stay printable. */
static uint16_t byte_to_cp[256];
static int16_t cp_to_byte[324];
static int bytelevel_ready;

static void bytelevel_init(void) {
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_to_cp[b] = (uint16_t)(printable ? b : 256 + n++);
    }
    for (int i = 0; i < 324; i++) cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) cp_to_byte[byte_to_cp[b]] = (int16_t)b;
    __atomic_store_n(&bytelevel_ready, 1, __ATOMIC_RELEASE);
}

static inline void bytelevel_ensure(void) {
    /* idempotent: racing threads compute the same tables */
    if (!__atomic_load_n(&bytelevel_ready, __ATOMIC_ACQUIRE)) bytelevel_init();
}

uint32_t bytelevel_char(uint8_t b) {
    bytelevel_ensure();
    return byte_to_cp[b];
}

int bytelevel_byte(uint32_t cp) {
    bytelevel_ensure();
    return cp < 324 ? cp_to_byte[cp] : -1;
}

int tok_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    if (!n) return 0;
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v, min;
    if ((c & 0xE0) == 0xC0) len = 2, v = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, v = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, v = c & 0x07, min = 0x10000;
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

int tok_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

long bytelevel_to_bytes(const char *s, size_t n, uint8_t *out) {
    size_t i = 0;
    long k = 0;
    while (i < n) {
        uint32_t cp;
        int l = tok_utf8_decode((const uint8_t *)s + i, n - i, &cp);
        if (!l) return -1;
        int b = bytelevel_byte(cp);
        if (b < 0) return -1;
        out[k++] = (uint8_t)b;
        i += (size_t)l;
    }
    return k;
}

size_t bytes_to_bytelevel(const uint8_t *s, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += (size_t)tok_utf8_encode(bytelevel_char(s[i]), out + k);
    return k;
}

/* ---- hashing ---- */

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 32;
    x *= 0xD6E8FEB86659FD93ull;
    x ^= x >> 32;
    x *= 0xD6E8FEB86659FD93ull;
    x ^= x >> 32;
    return x;
}

/* 8 bytes at a time; keys are short pre-tokens, so this beats byte-wise FNV by a wide margin. */
uint64_t tok_hash_bytes(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xA0761D6478BD642Full);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = mix64(h ^ w) + 0x2545F4914F6CDD1Dull;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    return mix64(h ^ w ^ ((uint64_t)n << 56));
}

/* ---- byte string -> id ---- */

void strmap_init(tok_strmap *m, uint32_t expected) {
    memset(m, 0, sizeof *m);
    uint32_t size = 16;
    while (size < expected * 2 + 16) size *= 2;
    m->slots = sc_calloc(size, sizeof *m->slots);
    m->mask = size - 1;
    m->cap = expected + 16;
    m->off = sc_malloc(m->cap * sizeof *m->off);
    m->len = sc_malloc(m->cap * sizeof *m->len);
    m->val = sc_malloc(m->cap * sizeof *m->val);
    m->blob_cap = 1024;
    m->blob = sc_malloc(m->blob_cap);
}

void strmap_free(tok_strmap *m) {
    free(m->slots);
    free(m->off);
    free(m->len);
    free(m->val);
    free(m->blob);
    memset(m, 0, sizeof *m);
}

static void strmap_grow(tok_strmap *m) {
    uint32_t size = (m->mask + 1) * 2;
    uint32_t *slots = sc_calloc(size, sizeof *slots);
    for (uint32_t i = 0; i < m->count; i++) {
        uint64_t h = tok_hash_bytes(m->blob + m->off[i], m->len[i]);
        uint32_t j = (uint32_t)h & (size - 1);
        while (slots[j]) j = (j + 1) & (size - 1);
        slots[j] = i + 1;
    }
    free(m->slots);
    m->slots = slots;
    m->mask = size - 1;
}

int strmap_put(tok_strmap *m, const void *key, size_t n, int32_t val) {
    uint64_t h = tok_hash_bytes(key, n);
    uint32_t j = (uint32_t)h & m->mask;
    for (; m->slots[j]; j = (j + 1) & m->mask) {
        uint32_t i = m->slots[j] - 1;
        if (m->len[i] == n && memcmp(m->blob + m->off[i], key, n) == 0) {
            m->val[i] = val;
            return 0;
        }
    }
    if (m->count == m->cap) {
        m->cap *= 2;
        m->off = realloc(m->off, m->cap * sizeof *m->off);
        m->len = realloc(m->len, m->cap * sizeof *m->len);
        m->val = realloc(m->val, m->cap * sizeof *m->val);
        if (!m->off || !m->len || !m->val) sc_malloc((size_t)-1); /* reports and exits */
    }
    while (m->blob_len + n > m->blob_cap) {
        m->blob_cap *= 2;
        m->blob = realloc(m->blob, m->blob_cap);
        if (!m->blob) sc_malloc((size_t)-1);
    }
    uint32_t i = m->count++;
    memcpy(m->blob + m->blob_len, key, n);
    m->off[i] = m->blob_len;
    m->len[i] = (uint32_t)n;
    m->val[i] = val;
    m->blob_len += n;
    m->slots[j] = i + 1;
    if (m->count * 2 > m->mask) strmap_grow(m);
    return 1;
}

int32_t strmap_get(const tok_strmap *m, const void *key, size_t n) {
    if (!m->slots) return -1;
    uint64_t h = tok_hash_bytes(key, n);
    for (uint32_t j = (uint32_t)h & m->mask; m->slots[j]; j = (j + 1) & m->mask) {
        uint32_t i = m->slots[j] - 1;
        if (m->len[i] == n && memcmp(m->blob + m->off[i], key, n) == 0) return m->val[i];
    }
    return -1;
}

/* ---- id pair -> merge ---- */

void pairmap_init(tok_pairmap *m, uint64_t expected) {
    uint64_t size = 16;
    while (size < expected * 2 + 16) size *= 2;
    m->keys = sc_calloc(size, sizeof *m->keys);
    m->rank = sc_malloc(size * sizeof *m->rank);
    m->new_id = sc_malloc(size * sizeof *m->new_id);
    m->mask = size - 1;
    m->count = 0;
}

void pairmap_free(tok_pairmap *m) {
    free(m->keys);
    free(m->rank);
    free(m->new_id);
    memset(m, 0, sizeof *m);
}

/* Sized for all merges up front (pairmap_init), so it never grows; a later duplicate overwrites the earlier
 * entry, as HF's HashMap collect does. */
void pairmap_put(tok_pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t new_id) {
    uint64_t k = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    uint64_t h = (k * 0x9E3779B97F4A7C15ull) >> 17;
    uint64_t i = h & m->mask;
    while (m->keys[i] && m->keys[i] != k) i = (i + 1) & m->mask;
    if (!m->keys[i]) m->count++;
    m->keys[i] = k;
    m->rank[i] = rank;
    m->new_id[i] = new_id;
}
