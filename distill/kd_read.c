/* kd_read.c — opens a *.kd (layout in kd_format.h), validates header and index before anything is read, checks
 * it against its shard, and decodes frames (size, CRC, ids < vocab) into FP32 logits and int ids. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "host/checksum.h"
#include "host/error.h"
#include "host/fileio.h"
#include "host/half.h"
#include "distill/kd_format.h"
#include "distill/kd_internal.h"
#include "host/le.h"

typedef struct {
    uint64_t offset, first_token;
    uint32_t csize, n, crc;
} kd_frame;

struct kd_reader {
    char *path;
    int fd;
    kd_header h;
    kd_frame *frames;
    ZSTD_DCtx *dctx;
    unsigned char *cbuf, *shuf, *raw;
    size_t cbuf_cap, raw_cap;
    int64_t cached;          /* decoded frame in ids/logits/lse, -1 none */
    int32_t *ids;
    float *logits, *lse;
};

static int kd_pread(kd_reader *r, void *buf, size_t n, uint64_t off) {
    return file_pread_all(r->fd, r->path, buf, n, off);
}

static int kd_parse_header(kd_reader *r, const unsigned char *b, uint64_t size) {
    kd_header *h = &r->h;
    const char *p = r->path;
    if (memcmp(b, KD_MAGIC, 8) != 0) return sc_fail("%s: not a teacher-logits file (bad magic)", p);
    h->version = le_get32(b + 8);
    h->k = le_get32(b + 12);
    uint32_t t = le_get32(b + 16);
    memcpy(&h->temperature, &t, 4);
    h->id_bytes = le_get32(b + 20);
    h->vocab_size = le_get32(b + 24);
    h->frame_count = le_get32(b + 28);
    h->token_count = le_get64(b + 32);
    h->tokenizer_hash = le_get64(b + 40);
    h->shard_header_hash = le_get64(b + 48);
    h->index_offset = le_get64(b + 56);
    h->frame_tokens = le_get32(b + 64);
    h->context = le_get32(b + 68);
    h->overlap = le_get32(b + 72);
    memcpy(h->teacher, b + 80, KD_NAME_SIZE);
    h->teacher[KD_NAME_SIZE] = 0;
    if (h->version != KD_VERSION)
        return sc_fail("%s: unsupported .kd version %u (this build reads %d)", p, h->version, KD_VERSION);
    if (h->vocab_size == 0) return sc_fail("%s: header: vocab_size is 0", p);
    if (h->id_bytes != (h->vocab_size <= 65536 ? 2u : 4u))
        return sc_fail("%s: header: id_bytes %u does not match vocab_size %u", p, h->id_bytes, h->vocab_size);
    if (h->k < 1 || h->k > KD_MAX_K || h->k > h->vocab_size)
        return sc_fail("%s: header: k %u out of range [1, min(vocab %u, %d)]", p, h->k, h->vocab_size, KD_MAX_K);
    if (!(h->temperature > 0) || !isfinite(h->temperature))
        return sc_fail("%s: header: temperature %g is not positive", p, h->temperature);
    if (h->frame_tokens == 0 || h->frame_tokens > SHARD_FRAME_TOKENS_MAX)
        return sc_fail("%s: header: frame_tokens %u out of range", p, h->frame_tokens);
    if ((uint64_t)h->frame_tokens * h->k > KD_MAX_FRAME_ENTRIES)
        return sc_fail("%s: header: frame_tokens %u x k %u is more than %llu entries per frame", p, h->frame_tokens,
                       h->k, (unsigned long long)KD_MAX_FRAME_ENTRIES);
    if (h->index_offset < KD_HEADER_SIZE || h->index_offset > size ||
        (size - h->index_offset) != (uint64_t)h->frame_count * KD_INDEX_ENTRY_SIZE)
        return sc_fail("%s: size %llu bytes does not match the header (index at %llu, %u frames): truncated or corrupt",
                       p, (unsigned long long)size, (unsigned long long)h->index_offset, h->frame_count);
    return 0;
}

static int kd_parse_index(kd_reader *r, const unsigned char *ib) {
    const kd_header *h = &r->h;
    uint64_t pos = KD_HEADER_SIZE, tok = 0;
    for (uint32_t i = 0; i < h->frame_count; i++) {
        const unsigned char *e = ib + (size_t)i * KD_INDEX_ENTRY_SIZE;
        kd_frame *f = &r->frames[i];
        f->offset = le_get64(e), f->first_token = le_get64(e + 8);
        f->csize = le_get32(e + 16), f->n = le_get32(e + 20), f->crc = le_get32(e + 24);
        if (f->offset != pos || f->first_token != tok || f->n == 0 || f->n > h->frame_tokens ||
            (i + 1 < h->frame_count && f->n != h->frame_tokens) ||
            f->offset + f->csize > h->index_offset)
            return sc_fail("%s: index entry %u is inconsistent (offset %llu, first token %llu, %u entries)", r->path,
                           i, (unsigned long long)f->offset, (unsigned long long)f->first_token, f->n);
        pos += f->csize, tok += f->n;
    }
    if (pos != h->index_offset || tok != h->token_count)
        return sc_fail("%s: index covers %llu entries / %llu bytes, header says %llu / %llu", r->path,
                       (unsigned long long)tok, (unsigned long long)pos, (unsigned long long)h->token_count,
                       (unsigned long long)h->index_offset);
    return 0;
}

int kd_open(kd_reader **out, const char *path) {
    *out = NULL;
    kd_reader *r = sc_calloc(1, sizeof *r);
    r->path = strdup(path);
    r->cached = -1;
    uint64_t size = 0;
    r->fd = file_open_sized(path, KD_HEADER_SIZE, &size);
    unsigned char hb[KD_HEADER_SIZE], *ib = NULL;
    int rc = r->fd < 0 ? -1 : 0;
    if (!rc) rc = kd_pread(r, hb, sizeof hb, 0);
    if (!rc) rc = kd_parse_header(r, hb, size);
    size_t isz = (size_t)r->h.frame_count * KD_INDEX_ENTRY_SIZE;
    if (!rc) {
        ib = sc_malloc(isz + 1);
        rc = kd_pread(r, ib, isz, r->h.index_offset);
    }
    if (!rc && crc32c_update(crc32c_update(0, hb, 156), ib, isz) != le_get32(hb + 156))
        rc = sc_fail("%s: header checksum mismatch: corrupt header or index", path);
    if (!rc) {
        r->frames = sc_calloc((size_t)r->h.frame_count + 1, sizeof *r->frames);
        rc = kd_parse_index(r, ib);
    }
    free(ib);
    if (!rc) r->dctx = ZSTD_createDCtx();
    if (rc) {
        kd_close(r);
        return -1;
    }
    *out = r;
    return 0;
}

void kd_close(kd_reader *r) {
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    ZSTD_freeDCtx(r->dctx);
    free(r->frames), free(r->cbuf), free(r->shuf), free(r->raw);
    free(r->ids), free(r->logits), free(r->lse), free(r->path), free(r);
}

const kd_header *kd_info(const kd_reader *r) { return &r->h; }

int kd_check_shard(const kd_reader *r, const shard_reader *s) {
    const kd_header *h = &r->h;
    const shard_header *sh = shard_info(s);
    const char *kp = r->path, *sp = shard_path(s);
    if (h->tokenizer_hash != sh->tokenizer_hash)
        return sc_fail("%s: teacher tokenizer hash %016llx differs from the shard's %016llx (%s): the teacher and "
                       "the student must use the same tokenizer", kp, (unsigned long long)h->tokenizer_hash,
                       (unsigned long long)sh->tokenizer_hash, sp);
    if (h->token_count != sh->token_count || h->frame_count != sh->frame_count || h->frame_tokens != sh->frame_tokens)
        return sc_fail("%s: %llu entries in %u frames of %u, but shard %s has %llu tokens in %u frames of %u", kp,
                       (unsigned long long)h->token_count, h->frame_count, h->frame_tokens, sp,
                       (unsigned long long)sh->token_count, sh->frame_count, sh->frame_tokens);
    /* published checkpoints pad the vocabulary past their tokenizer (Qwen2.5: 151936 rows for 151665 tokens), so
     * the teacher's may be larger than the shard's, never smaller (the kd_train check makes it the student's) */
    if (h->vocab_size < sh->vocab_size)
        return sc_fail("%s: teacher vocabulary %u is smaller than shard %s's %u", kp, h->vocab_size, sp, sh->vocab_size);
    for (uint32_t i = 0; i < h->frame_count; i++)
        if (r->frames[i].n != shard_frame_info(s, i)->token_count)
            return sc_fail("%s: frame %u holds %u entries, shard %s's frame holds %u tokens", kp, i, r->frames[i].n, sp,
                           shard_frame_info(s, i)->token_count);
    uint64_t hh;
    if (kd_shard_header_hash(sp, &hh)) return -1;
    if (hh != h->shard_header_hash)
        return sc_fail("%s: was made for another version of shard %s (shard header hash %016llx, recorded %016llx)", kp,
                       sp, (unsigned long long)hh, (unsigned long long)h->shard_header_hash);
    return 0;
}

static int kd_decode(kd_reader *r, uint32_t i) {
    if (r->cached == (int64_t)i) return 0;
    const kd_header *h = &r->h;
    const kd_frame *f = &r->frames[i];
    size_t nk = (size_t)f->n * h->k, bytes = kd_frame_bytes(h, f->n), maxb = kd_frame_bytes(h, h->frame_tokens);
    if (!r->raw) {
        r->raw = sc_malloc(maxb), r->shuf = sc_malloc(maxb), r->raw_cap = maxb;
        r->ids = sc_malloc(sizeof(int32_t) * (size_t)h->frame_tokens * h->k);
        r->logits = sc_malloc(sizeof(float) * (size_t)h->frame_tokens * h->k);
        r->lse = sc_malloc(sizeof(float) * h->frame_tokens);
    }
    if (f->csize > r->cbuf_cap) free(r->cbuf), r->cbuf = sc_malloc(f->csize), r->cbuf_cap = f->csize;
    r->cached = -1;
    if (kd_pread(r, r->cbuf, f->csize, f->offset)) return -1;
    size_t got = ZSTD_decompressDCtx(r->dctx, r->shuf, bytes, r->cbuf, f->csize);
    if (ZSTD_isError(got) || got != bytes)
        return sc_fail("%s: frame %u is corrupt (%s)", r->path, i, ZSTD_isError(got) ? ZSTD_getErrorName(got) : "wrong size");
    size_t ib = nk * h->id_bytes;
    kd_unshuffle(r->raw, r->shuf, nk, (int)h->id_bytes);
    kd_unshuffle(r->raw + ib, r->shuf + ib, nk, 2);
    kd_unshuffle(r->raw + ib + nk * 2, r->shuf + ib + nk * 2, f->n, 4);
    if (crc32c_update(0, r->raw, bytes) != f->crc) return sc_fail("%s: frame %u fails its CRC: corrupt", r->path, i);
    const unsigned char *p = r->raw;
    for (size_t j = 0; j < nk; j++, p += h->id_bytes) {
        uint32_t id = h->id_bytes == 2 ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : le_get32(p);
        if (id >= h->vocab_size) return sc_fail("%s: frame %u: id %u >= vocab %u", r->path, i, id, h->vocab_size);
        r->ids[j] = (int32_t)id;
    }
    for (size_t j = 0; j < nk; j++, p += 2) r->logits[j] = half_to_float((uint16_t)(p[0] | p[1] << 8));
    for (uint32_t j = 0; j < f->n; j++, p += 4) {
        uint32_t v = le_get32(p);
        memcpy(&r->lse[j], &v, 4);
    }
    r->cached = i;
    return 0;
}

int kd_read(kd_reader *r, uint64_t start, size_t n, int32_t *ids, float *logits, float *lse) {
    const kd_header *h = &r->h;
    if (start > h->token_count || n > h->token_count - start)
        return sc_fail("%s: entries [%llu, %llu) past the end (%llu)", r->path, (unsigned long long)start,
                       (unsigned long long)(start + n), (unsigned long long)h->token_count);
    const size_t k = h->k;
    size_t done = 0;
    while (done < n) {
        uint64_t pos = start + done;
        /* frames hold frame_tokens entries each but the last, so the frame is found by division */
        uint32_t fi = (uint32_t)(pos / h->frame_tokens);
        if (kd_decode(r, fi)) return -1;
        const kd_frame *f = &r->frames[fi];
        size_t off = (size_t)(pos - f->first_token), m = f->n - off;
        if (m > n - done) m = n - done;
        if (ids) memcpy(ids + done * k, r->ids + off * k, sizeof(int32_t) * m * k);
        if (logits) memcpy(logits + done * k, r->logits + off * k, sizeof(float) * m * k);
        if (lse) memcpy(lse + done, r->lse + off, sizeof(float) * m);
        done += m;
    }
    return 0;
}

int kd_verify(kd_reader *r) {
    for (uint32_t i = 0; i < r->h.frame_count; i++)
        if (kd_decode(r, i)) return -1;
    return 0;
}
