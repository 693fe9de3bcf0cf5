/* kd_write.c — writes a *.kd file (layout in kd_format.h): planes of ids, FP16 logits and FP32 lse per frame,
 * byte-shuffled and zstd-compressed, then the index and the header with its CRC; temp name + rename, so a crash
 * or an error never leaves a half-written .kd where a reader (or a resumed `teacher` run) would take it as done. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "host/checksum.h"
#include "host/error.h"
#include "host/fileio.h"
#include "host/half.h"
#include "distill/kd_format.h"
#include "distill/kd_internal.h"
#include "host/le.h"

struct kd_writer {
    sc_atomic_file af;
    kd_header h;
    ZSTD_CCtx *cctx;
    int level;
    unsigned char *raw, *shuf, *cbuf;
    size_t raw_cap, cbuf_cap;
    unsigned char *index;  /* frame_count entries */
    uint32_t frames;
    uint64_t pos, tokens;
};

size_t kd_frame_bytes(const kd_header *h, uint32_t n) {
    return (size_t)n * h->k * (h->id_bytes + 2) + (size_t)n * 4;
}

void kd_shuffle(unsigned char *dst, const unsigned char *src, size_t count, int es) {
    for (int b = 0; b < es; b++)
        for (size_t i = 0; i < count; i++) dst[(size_t)b * count + i] = src[i * (size_t)es + (size_t)b];
}

void kd_unshuffle(unsigned char *dst, const unsigned char *src, size_t count, int es) {
    for (int b = 0; b < es; b++)
        for (size_t i = 0; i < count; i++) dst[i * (size_t)es + (size_t)b] = src[(size_t)b * count + i];
}

void kd_header_pack(unsigned char *b, const kd_header *h) {
    memset(b, 0, KD_HEADER_SIZE);
    memcpy(b, KD_MAGIC, 8);
    le_put32(b + 8, h->version);
    le_put32(b + 12, h->k);
    uint32_t t;
    memcpy(&t, &h->temperature, 4);
    le_put32(b + 16, t);
    le_put32(b + 20, h->id_bytes);
    le_put32(b + 24, h->vocab_size);
    le_put32(b + 28, h->frame_count);
    le_put64(b + 32, h->token_count);
    le_put64(b + 40, h->tokenizer_hash);
    le_put64(b + 48, h->shard_header_hash);
    le_put64(b + 56, h->index_offset);
    le_put32(b + 64, h->frame_tokens);
    le_put32(b + 68, h->context);
    le_put32(b + 72, h->overlap);
    memcpy(b + 80, h->teacher, strnlen(h->teacher, KD_NAME_SIZE));
}

int kd_shard_header_hash(const char *shard_path, uint64_t *out) {
    FILE *f = fopen(shard_path, "rb");
    if (!f) return sc_fail("%s: cannot open: %s", shard_path, strerror(errno));
    unsigned char b[SHARD_HEADER_SIZE];
    size_t got = fread(b, 1, sizeof b, f);
    fclose(f);
    if (got != sizeof b) return sc_fail("%s: truncated: no complete %d-byte header", shard_path, SHARD_HEADER_SIZE);
    *out = hash64(b, sizeof b, 0x5c6bd15711a7ULL);
    return 0;
}

int kd_writer_open(kd_writer **out, const char *path, const kd_header *h, int zstd_level) {
    *out = NULL;
    if (h->k < 1 || h->k > KD_MAX_K || h->k > h->vocab_size)
        return sc_fail("%s: top-k %u must be in [1, min(vocab size %u, %d)]", path, h->k, h->vocab_size, KD_MAX_K);
    if ((uint64_t)h->frame_tokens * h->k > KD_MAX_FRAME_ENTRIES) /* what readers refuse is never written */
        return sc_fail("%s: shard frames of %u tokens x top-k %u exceed %llu entries per frame: use a smaller --top-k "
                       "or shards with smaller --frame-tokens", path, h->frame_tokens, h->k,
                       (unsigned long long)KD_MAX_FRAME_ENTRIES);
    kd_writer *w = sc_calloc(1, sizeof *w);
    w->h = *h;
    w->h.version = KD_VERSION;
    w->h.id_bytes = h->vocab_size <= 65536 ? 2 : 4;
    w->level = zstd_level > 0 ? zstd_level : 9;
    w->cctx = ZSTD_createCCtx();
    w->index = sc_calloc((size_t)h->frame_count + 1, KD_INDEX_ENTRY_SIZE);
    if (atomic_open(&w->af, path)) {
        ZSTD_freeCCtx(w->cctx), free(w->index), free(w);
        return -1;
    }
    unsigned char zero[KD_HEADER_SIZE] = {0};
    if (!w->cctx || fwrite(zero, 1, sizeof zero, w->af.f) != sizeof zero) {
        kd_writer_abort(w);
        return sc_fail("%s: cannot write the header", path);
    }
    w->pos = KD_HEADER_SIZE;
    *out = w;
    return 0;
}

int kd_writer_append_frame(kd_writer *w, const int32_t *ids, const float *logits, const float *lse, uint32_t n) {
    const kd_header *h = &w->h;
    if (w->frames >= h->frame_count)
        return sc_fail("%s: more frames than the %u announced", w->af.path, h->frame_count);
    size_t nk = (size_t)n * h->k, bytes = kd_frame_bytes(h, n);
    if (bytes > w->raw_cap) {
        free(w->raw), free(w->shuf);
        w->raw = sc_malloc(bytes), w->shuf = sc_malloc(bytes);
        w->raw_cap = bytes;
    }
    unsigned char *p = w->raw;
    for (size_t i = 0; i < nk; i++, p += h->id_bytes) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= h->vocab_size)
            return sc_fail("%s: teacher id %d out of range [0, %u)", w->af.path, ids[i], h->vocab_size);
        if (h->id_bytes == 2) p[0] = (unsigned char)ids[i], p[1] = (unsigned char)(ids[i] >> 8);
        else le_put32(p, (uint32_t)ids[i]);
    }
    for (size_t i = 0; i < nk; i++, p += 2) {
        uint16_t v = float_to_half(logits[i]);
        p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
    }
    for (uint32_t i = 0; i < n; i++, p += 4) {
        uint32_t v;
        memcpy(&v, &lse[i], 4);
        le_put32(p, v);
    }
    uint32_t crc = crc32c_update(0, w->raw, bytes);
    size_t ib = nk * h->id_bytes;
    kd_shuffle(w->shuf, w->raw, nk, (int)h->id_bytes);
    kd_shuffle(w->shuf + ib, w->raw + ib, nk, 2);
    kd_shuffle(w->shuf + ib + nk * 2, w->raw + ib + nk * 2, n, 4);
    size_t cap = ZSTD_compressBound(bytes);
    if (cap > w->cbuf_cap) free(w->cbuf), w->cbuf = sc_malloc(cap), w->cbuf_cap = cap;
    size_t c = ZSTD_compressCCtx(w->cctx, w->cbuf, cap, w->shuf, bytes, w->level);
    if (ZSTD_isError(c)) return sc_fail("%s: zstd: %s", w->af.path, ZSTD_getErrorName(c));
    if (fwrite(w->cbuf, 1, c, w->af.f) != c) return sc_fail("%s: write failed: %s", w->af.path, strerror(errno));
    unsigned char *e = w->index + (size_t)w->frames * KD_INDEX_ENTRY_SIZE;
    le_put64(e, w->pos);
    le_put64(e + 8, w->tokens);
    le_put32(e + 16, (uint32_t)c);
    le_put32(e + 20, n);
    le_put32(e + 24, crc);
    w->pos += c, w->tokens += n, w->frames++;
    return 0;
}

uint64_t kd_writer_bytes(const kd_writer *w) { return w->pos; }

static void kd_writer_free(kd_writer *w) {
    ZSTD_freeCCtx(w->cctx);
    free(w->raw), free(w->shuf), free(w->cbuf), free(w->index), free(w);
}

int kd_writer_close(kd_writer *w) {
    kd_header *h = &w->h;
    if (w->frames != h->frame_count || w->tokens != h->token_count) {
        sc_fail("%s: %u frames / %llu entries written, the shard has %u / %llu", w->af.path, w->frames,
                (unsigned long long)w->tokens, h->frame_count, (unsigned long long)h->token_count);
        kd_writer_abort(w);
        return -1;
    }
    h->index_offset = w->pos;
    size_t ib = (size_t)h->frame_count * KD_INDEX_ENTRY_SIZE;
    unsigned char hb[KD_HEADER_SIZE];
    kd_header_pack(hb, h);
    uint32_t crc = crc32c_update(crc32c_update(0, hb, 156), w->index, ib);
    le_put32(hb + 156, crc);
    int ok = fwrite(w->index, 1, ib, w->af.f) == ib && fseek(w->af.f, 0, SEEK_SET) == 0 &&
             fwrite(hb, 1, sizeof hb, w->af.f) == sizeof hb;
    if (!ok) {
        sc_fail("%s: write failed: %s", w->af.path, strerror(errno));
        kd_writer_abort(w);
        return -1;
    }
    int rc = atomic_commit(&w->af);
    kd_writer_free(w);
    return rc;
}

void kd_writer_abort(kd_writer *w) {
    if (!w) return;
    atomic_abort(&w->af);
    kd_writer_free(w);
}
