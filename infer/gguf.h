/* gguf.h — GGUF v3 files (llama.cpp's format): the writer behind `smallcoder export gguf` and a reader that
 * parses a file back (tests; `export` re-reads what it wrote). Layout: "GGUF", version, tensor and metadata
 * counts, typed key/values, tensor infos (name, dims innermost first, type, offset), padding, aligned data. */
#ifndef SC_INFER_GGUF_H
#define SC_INFER_GGUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum {
    GGUF_T_U8 = 0, GGUF_T_I8, GGUF_T_U16, GGUF_T_I16, GGUF_T_U32, GGUF_T_I32, GGUF_T_F32, GGUF_T_BOOL,
    GGUF_T_STRING, GGUF_T_ARRAY, GGUF_T_U64, GGUF_T_I64, GGUF_T_F64
};
enum { GGML_F32 = 0, GGML_F16 = 1, GGML_Q8_0 = 8 };
#define GGUF_ALIGN 32
#define GGUF_MAX_ALIGN 65536                    /* the reader's bound on general.alignment */
#define GGUF_MAX_ELEMENTS ((uint64_t)1 << 48)   /* the reader's bound on a tensor's element count */
#define QK8_0 32

/* ---- reader ---- */
typedef struct {
    char *key;
    uint32_t type, arr_type;
    uint64_t n;           /* array length (1 for scalars) */
    const uint8_t *value; /* points into the file image */
    uint64_t u;           /* integer/bool scalars */
    double f;             /* float scalars */
    char *str;            /* string scalars (malloc'd copy) */
} gguf_kv;

typedef struct {
    char *name;
    uint32_t ndim, type;
    uint64_t dims[4];
    uint64_t offset;      /* from the start of the data section */
    const uint8_t *data;
    uint64_t nbytes;
} gguf_tensor;

typedef struct {
    uint8_t *image; size_t size;
    uint32_t version;
    gguf_kv *kv; uint64_t nkv;
    gguf_tensor *t; uint64_t nt;
} gguf_file;

int gguf_open(gguf_file *g, const char *path);
void gguf_close(gguf_file *g);
const gguf_kv *gguf_find_kv(const gguf_file *g, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);
/* Element i of a tensor as float (F32, F16, Q8_0). */
float gguf_tensor_get(const gguf_tensor *t, uint64_t i);
/* Array of strings: element i (not NUL-terminated: *len). */
const char *gguf_kv_str_at(const gguf_kv *kv, uint64_t i, uint64_t *len);

/* ---- export (gguf_export.c) ---- */
/* Writes the model directory dir (FP32 or INT8) as a llama.cpp `llama` GGUF with type GGML_F16 or GGML_Q8_0 for
 * the matrices (norms F32), tokenizer included. Atomic (temp file + rename). */
int gguf_export(const char *dir, const char *out, int type);
/* HF rotate-half rows -> llama.cpp's interleaved RoPE rows, per head: new row 2i+j <- old row j*hd/2+i. */
void gguf_permute_rope_rows(const float *src, float *dst, int nheads, int hd, int cols);

#endif
