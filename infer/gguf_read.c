/* gguf_read.c — parses a GGUF v3 file fully into memory and checks every length against the file size, so a
 * truncated or corrupt file gives one clear message instead of a wild read. Every sum and product of numbers read
 * from the file is checked for overflow before it is compared (an offset near 2^64 must not wrap to a small one). */
#include <stdlib.h>
#include <string.h>

#include "host/error.h"
#include "host/fileio.h"
#include "infer/gguf.h"
#include "host/half.h"

typedef struct {
    const uint8_t *p, *end;
    int bad;
} cur;

static int need(cur *c, uint64_t n) {
    if (c->bad || (uint64_t)(c->end - c->p) < n) return c->bad = 1, 0;
    return 1;
}
static uint64_t rd(cur *c, int n) {
    uint64_t v = 0;
    if (!need(c, (uint64_t)n)) return 0;
    memcpy(&v, c->p, (size_t)n);
    c->p += n;
    return v;
}
static char *rd_str(cur *c) {
    uint64_t n = rd(c, 8);
    if (!need(c, n)) return NULL;
    char *s = sc_malloc(n + 1);
    memcpy(s, c->p, n);
    s[n] = 0;
    c->p += n;
    return s;
}
static int type_size(uint32_t t) {
    static const int sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t <= GGUF_T_F64 ? sz[t] : -1;
}
static void skip_value(cur *c, uint32_t t) {
    if (t == GGUF_T_STRING) {
        uint64_t n = rd(c, 8);
        if (need(c, n)) c->p += n;
    } else if (type_size(t) > 0) {
        if (need(c, (uint64_t)type_size(t))) c->p += type_size(t);
    } else c->bad = 1;
}

int gguf_open(gguf_file *g, const char *path) {
    memset(g, 0, sizeof *g);
    char *img;
    size_t size;
    if (file_read_all(path, &img, &size)) return -1;
    g->image = (uint8_t *)img, g->size = size;
    cur c = {g->image, g->image + size, 0};
    if (size < 24 || memcmp(img, "GGUF", 4) != 0) {
        gguf_close(g);
        return sc_fail("%s: not a GGUF file (magic)", path);
    }
    c.p += 4;
    g->version = (uint32_t)rd(&c, 4);
    g->nt = rd(&c, 8), g->nkv = rd(&c, 8);
    if (g->version != 3 || g->nt > 100000 || g->nkv > 100000) {
        gguf_close(g);
        return sc_fail("%s: unsupported GGUF version %u or absurd counts", path, g->version);
    }
    g->kv = sc_calloc(g->nkv + 1, sizeof(gguf_kv));
    g->t = sc_calloc(g->nt + 1, sizeof(gguf_tensor));
    uint64_t align = GGUF_ALIGN;
    for (uint64_t i = 0; i < g->nkv && !c.bad; i++) {
        gguf_kv *kv = &g->kv[i];
        kv->key = rd_str(&c);
        kv->type = (uint32_t)rd(&c, 4);
        kv->n = 1;
        kv->value = c.p;
        if (kv->type == GGUF_T_ARRAY) {
            kv->arr_type = (uint32_t)rd(&c, 4);
            kv->n = rd(&c, 8);
            kv->value = c.p;
            for (uint64_t k = 0; k < kv->n && !c.bad; k++) skip_value(&c, kv->arr_type);
        } else if (kv->type == GGUF_T_STRING) kv->str = rd_str(&c);
        else if (kv->type == GGUF_T_F32) {
            float f;
            uint32_t u = (uint32_t)rd(&c, 4);
            memcpy(&f, &u, 4);
            kv->f = f;
        } else if (kv->type == GGUF_T_F64) {
            uint64_t u = rd(&c, 8);
            memcpy(&kv->f, &u, 8);
        } else if (type_size(kv->type) > 0) kv->u = rd(&c, type_size(kv->type));
        else c.bad = 1;
        if (!c.bad && kv->key && strcmp(kv->key, "general.alignment") == 0) {
            /* the spec: a uint32, a power of two (llama.cpp refuses anything else); 0 would divide by zero */
            if (kv->type != GGUF_T_U32 || kv->u == 0 || (kv->u & (kv->u - 1)) != 0 || kv->u > GGUF_MAX_ALIGN) {
                gguf_close(g);
                return sc_fail("%s: general.alignment must be a uint32 power of two in [1, %d]", path, GGUF_MAX_ALIGN);
            }
            align = kv->u;
        }
    }
    for (uint64_t i = 0; i < g->nt && !c.bad; i++) {
        gguf_tensor *t = &g->t[i];
        t->name = rd_str(&c);
        t->ndim = (uint32_t)rd(&c, 4);
        if (t->ndim < 1 || t->ndim > 4) c.bad = 1;
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->ndim && !c.bad; d++) {
            t->dims[d] = rd(&c, 8);
            /* element counts past 2^48 cannot be in a file we can read; checking here keeps n * 34 from wrapping */
            if (!c.bad && (t->dims[d] == 0 || t->dims[d] > GGUF_MAX_ELEMENTS / n)) {
                sc_fail("%s: tensor %s: dimension %u is %llu (the element count must be in [1, 2^48])", path,
                        t->name ? t->name : "?", d, (unsigned long long)t->dims[d]);
                gguf_close(g); /* after the message: it frees t->name */
                return -1;
            }
            n *= t->dims[d];
        }
        t->type = (uint32_t)rd(&c, 4);
        t->offset = rd(&c, 8);
        t->nbytes = t->type == GGML_F32 ? n * 4 : t->type == GGML_F16 ? n * 2 : t->type == GGML_Q8_0 ? n / QK8_0 * 34 : 0;
        /* Q8_0 blocks run along the innermost dimension, so that one must be a whole number of blocks */
        if (!t->nbytes || (t->type == GGML_Q8_0 && t->dims[0] % QK8_0)) c.bad = 1;
    }
    if (c.bad) {
        gguf_close(g);
        return sc_fail("%s: truncated or corrupt GGUF header", path);
    }
    uint64_t data = ((uint64_t)(c.p - g->image) + align - 1) / align * align; /* align <= 2^16: no wrap */
    for (uint64_t i = 0; i < g->nt; i++) {
        gguf_tensor *t = &g->t[i];
        /* data + offset + nbytes <= size, written so that no sum can wrap */
        if (data > size || t->offset > size - data || t->nbytes > size - data - t->offset) {
            sc_fail("%s: tensor data of %s runs past the end of the file", path, t->name ? t->name : "?");
            gguf_close(g);  /* after the message: it frees t->name */
            return -1;
        }
        t->data = g->image + data + t->offset;
    }
    return 0;
}

void gguf_close(gguf_file *g) {
    for (uint64_t i = 0; g->kv && i < g->nkv; i++) free(g->kv[i].key), free(g->kv[i].str);
    for (uint64_t i = 0; g->t && i < g->nt; i++) free(g->t[i].name);
    free(g->kv), free(g->t), free(g->image);
    memset(g, 0, sizeof *g);
}

const gguf_kv *gguf_find_kv(const gguf_file *g, const char *key) {
    for (uint64_t i = 0; i < g->nkv; i++)
        if (g->kv[i].key && strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name) {
    for (uint64_t i = 0; i < g->nt; i++)
        if (g->t[i].name && strcmp(g->t[i].name, name) == 0) return &g->t[i];
    return NULL;
}

float gguf_tensor_get(const gguf_tensor *t, uint64_t i) {
    if (t->type == GGML_F32) {
        float f;
        memcpy(&f, t->data + i * 4, 4);
        return f;
    }
    if (t->type == GGML_F16) {
        uint16_t h;
        memcpy(&h, t->data + i * 2, 2);
        return half_to_float(h);
    }
    const uint8_t *b = t->data + (i / QK8_0) * 34;
    uint16_t d;
    memcpy(&d, b, 2);
    return half_to_float(d) * (float)(int8_t)b[2 + i % QK8_0];
}

const char *gguf_kv_str_at(const gguf_kv *kv, uint64_t i, uint64_t *len) {
    const uint8_t *p = kv->value;
    for (uint64_t k = 0;; k++) {
        uint64_t n;
        memcpy(&n, p, 8);
        if (k == i) {
            *len = n;
            return (const char *)p + 8;
        }
        p += 8 + n;
    }
}
