/* shard_read.c — opens a *.tok shard (layout in shard.h), validates header and index up front, and reads
 * frames or token ranges with pread, checking each frame's size, CRC and ids as it is decompressed. */
#include "data/shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "host/checksum.h"
#include "host/error.h"
#include "host/fileio.h"
#include "host/le.h"

struct shard_reader {
    char *path;
    int fd;
    shard_header h;
    shard_frame *frames;
    ZSTD_DCtx *dctx;
    void *cbuf;               /* compressed bytes of one frame */
    size_t cbuf_cap;
    unsigned char *raw;       /* decompressed bytes of one frame */
    int32_t *cache;           /* ids of frame cached_frame */
    int64_t cached_frame;     /* -1: none */
};

static int read_exact(shard_reader *r, void *buf, size_t n, uint64_t off) {
    return file_pread_all(r->fd, r->path, buf, n, off);
}

/* Checks the header fields that do not need the index; file_size comes from fstat. */
static int check_header(const char *path, const unsigned char *b, shard_header *h, uint64_t file_size) {
    if (memcmp(b, SHARD_MAGIC, 8) != 0) return sc_fail("%s: not a token shard (bad magic)", path);
    h->version = le_get32(b + 8);
    h->dtype = le_get32(b + 12);
    h->vocab_size = le_get32(b + 16);
    h->frame_count = le_get32(b + 20);
    h->token_count = le_get64(b + 24);
    h->doc_count = le_get64(b + 32);
    h->tokenizer_hash = le_get64(b + 40);
    h->index_offset = le_get64(b + 48);
    h->frame_tokens = le_get32(b + 56);
    if (h->version != SHARD_VERSION)
        return sc_fail("%s: unsupported shard version %u (this build reads version %d)", path, h->version, SHARD_VERSION);
    if (h->vocab_size == 0) return sc_fail("%s: header: vocab_size is 0", path);
    uint32_t want = h->vocab_size <= 65536 ? 2 : 4;
    if (h->dtype != want)
        return sc_fail("%s: header: dtype %u bytes does not match vocab_size %u (expected %u)", path, h->dtype, h->vocab_size, want);
    if (h->frame_tokens == 0 || h->frame_tokens > SHARD_FRAME_TOKENS_MAX)
        return sc_fail("%s: header: frame_tokens %u out of range [1, %u]", path, h->frame_tokens, SHARD_FRAME_TOKENS_MAX);
    if (h->index_offset < SHARD_HEADER_SIZE || h->index_offset > file_size ||
        (file_size - h->index_offset) / SHARD_INDEX_ENTRY_SIZE != h->frame_count ||
        (file_size - h->index_offset) % SHARD_INDEX_ENTRY_SIZE != 0)
        return sc_fail("%s: size %llu bytes does not match the header (index at %llu, %u frames): truncated or corrupt",
                       path, (unsigned long long)file_size, (unsigned long long)h->index_offset, h->frame_count);
    if (h->frame_count == 0 && h->token_count != 0)
        return sc_fail("%s: header: %llu tokens but no frames", path, (unsigned long long)h->token_count);
    return 0;
}

/* Every entry must lie between the header and the index, frames must be back to back in file and token
 * order, and sizes must add up: then no read can go out of bounds whatever the contents. */
static int check_index(shard_reader *r) {
    const shard_header *h = &r->h;
    uint64_t pos = SHARD_HEADER_SIZE, tok = 0;
    for (uint32_t i = 0; i < h->frame_count; i++) {
        const shard_frame *f = &r->frames[i];
        if (f->offset != pos)
            return sc_fail("%s: index: frame %u starts at %llu, expected %llu", r->path, i, (unsigned long long)f->offset, (unsigned long long)pos);
        if (f->compressed_size == 0 || f->offset + f->compressed_size > h->index_offset)
            return sc_fail("%s: index: frame %u (%u bytes at %llu) runs past the frame area", r->path, i, f->compressed_size, (unsigned long long)f->offset);
        if (f->first_token != tok)
            return sc_fail("%s: index: frame %u first token %llu, expected %llu", r->path, i, (unsigned long long)f->first_token, (unsigned long long)tok);
        if (f->token_count == 0 || f->token_count > h->frame_tokens || (i + 1 < h->frame_count && f->token_count != h->frame_tokens))
            return sc_fail("%s: index: frame %u holds %u tokens (frame size %u)", r->path, i, f->token_count, h->frame_tokens);
        pos += f->compressed_size;
        tok += f->token_count;
    }
    if (pos != h->index_offset)
        return sc_fail("%s: index: frames end at %llu but the index starts at %llu", r->path, (unsigned long long)pos, (unsigned long long)h->index_offset);
    if (tok != h->token_count)
        return sc_fail("%s: index: frames hold %llu tokens, header says %llu", r->path, (unsigned long long)tok, (unsigned long long)h->token_count);
    return 0;
}

int shard_open(shard_reader **out, const char *path) {
    *out = NULL;
    shard_reader *r = sc_calloc(1, sizeof *r);
    r->path = strdup(path);
    r->cached_frame = -1;
    uint64_t size;
    r->fd = file_open_sized(path, SHARD_HEADER_SIZE, &size);
    if (r->fd < 0) goto fail;
    unsigned char hb[SHARD_HEADER_SIZE];
    if (read_exact(r, hb, sizeof hb, 0) || check_header(path, hb, &r->h, size)) goto fail;
    size_t index_bytes = (size_t)r->h.frame_count * SHARD_INDEX_ENTRY_SIZE;
    unsigned char *index = sc_malloc(index_bytes ? index_bytes : 1);
    if (read_exact(r, index, index_bytes, r->h.index_offset)) {
        free(index);
        goto fail;
    }
    uint32_t crc = crc32c_update(crc32c_update(0, hb, 60), index, index_bytes);
    if (crc != le_get32(hb + 60)) {
        free(index);
        sc_fail("%s: header/index checksum mismatch (stored %08x, computed %08x): file is corrupt", path, le_get32(hb + 60), crc);
        goto fail;
    }
    r->frames = sc_calloc(r->h.frame_count ? r->h.frame_count : 1, sizeof *r->frames);
    for (uint32_t i = 0; i < r->h.frame_count; i++) {
        const unsigned char *e = index + (size_t)i * SHARD_INDEX_ENTRY_SIZE;
        r->frames[i].offset = le_get64(e);
        r->frames[i].first_token = le_get64(e + 8);
        r->frames[i].compressed_size = le_get32(e + 16);
        r->frames[i].token_count = le_get32(e + 20);
        r->frames[i].crc = le_get32(e + 24);
    }
    free(index);
    if (check_index(r)) goto fail;
    r->dctx = ZSTD_createDCtx();
    if (!r->dctx) {
        sc_fail("%s: cannot create a zstd decompression context", path);
        goto fail;
    }
    *out = r;
    return 0;
fail:
    shard_close(r);
    return -1;
}

void shard_close(shard_reader *r) {
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    ZSTD_freeDCtx(r->dctx);
    free(r->frames);
    free(r->cbuf);
    free(r->raw);
    free(r->cache);
    free(r->path);
    free(r);
}

const shard_header *shard_info(const shard_reader *r) { return &r->h; }
const char *shard_path(const shard_reader *r) { return r->path; }
const shard_frame *shard_frame_info(const shard_reader *r, uint32_t i) {
    return i < r->h.frame_count ? &r->frames[i] : NULL;
}

int shard_read_frame(shard_reader *r, uint32_t i, int32_t *out) {
    if (i >= r->h.frame_count) return sc_fail("%s: frame %u out of range (%u frames)", r->path, i, r->h.frame_count);
    const shard_frame *f = &r->frames[i];
    if (f->compressed_size > r->cbuf_cap) {
        free(r->cbuf);
        r->cbuf_cap = f->compressed_size;
        r->cbuf = sc_malloc(r->cbuf_cap);
    }
    if (!r->raw) r->raw = sc_malloc((size_t)r->h.frame_tokens * r->h.dtype);
    if (read_exact(r, r->cbuf, f->compressed_size, f->offset)) return -1;
    size_t want = (size_t)f->token_count * r->h.dtype;
    unsigned long long content = ZSTD_getFrameContentSize(r->cbuf, f->compressed_size);
    if (content != want || ZSTD_findFrameCompressedSize(r->cbuf, f->compressed_size) != f->compressed_size)
        return sc_fail("%s: frame %u is corrupt (not one zstd frame of %zu bytes)", r->path, i, want);
    size_t got = ZSTD_decompressDCtx(r->dctx, r->raw, want, r->cbuf, f->compressed_size);
    if (ZSTD_isError(got)) return sc_fail("%s: frame %u is corrupt: zstd: %s", r->path, i, ZSTD_getErrorName(got));
    if (got != want) return sc_fail("%s: frame %u decompressed to %zu bytes, expected %zu", r->path, i, got, want);
    uint32_t crc = crc32c_update(0, r->raw, want);
    if (crc != f->crc)
        return sc_fail("%s: frame %u checksum mismatch (stored %08x, computed %08x): file is corrupt", r->path, i, f->crc, crc);
    for (uint32_t k = 0; k < f->token_count; k++) {
        const unsigned char *p = r->raw + (size_t)k * r->h.dtype;
        uint32_t id = r->h.dtype == 2 ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : le_get32(p);
        if (id >= r->h.vocab_size) return sc_fail("%s: frame %u: token id %u >= vocab size %u", r->path, i, id, r->h.vocab_size);
        out[k] = (int32_t)id;
    }
    return 0;
}

/* Binary search: the frame holding token t (t < token_count). */
static uint32_t frame_of_token(const shard_reader *r, uint64_t t) {
    uint32_t lo = 0, hi = r->h.frame_count - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        if (r->frames[mid].first_token <= t) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

int shard_read_tokens(shard_reader *r, uint64_t start, size_t n, int32_t *out) {
    if (start > r->h.token_count || n > r->h.token_count - start)
        return sc_fail("%s: tokens [%llu, %llu) out of range (%llu tokens)", r->path, (unsigned long long)start,
                       (unsigned long long)(start + n), (unsigned long long)r->h.token_count);
    if (!r->cache) r->cache = sc_malloc((size_t)r->h.frame_tokens * sizeof(int32_t));
    while (n > 0) {
        uint32_t fi = frame_of_token(r, start);
        if (r->cached_frame != (int64_t)fi) {
            r->cached_frame = -1;
            if (shard_read_frame(r, fi, r->cache)) return -1;
            r->cached_frame = fi;
        }
        const shard_frame *f = &r->frames[fi];
        uint64_t off = start - f->first_token;
        size_t k = f->token_count - off < n ? (size_t)(f->token_count - off) : n;
        memcpy(out, r->cache + off, k * sizeof(int32_t));
        out += k;
        start += k;
        n -= k;
    }
    return 0;
}

int shard_verify(shard_reader *r) {
    int32_t *buf = sc_malloc((size_t)r->h.frame_tokens * sizeof(int32_t));
    int rc = 0;
    for (uint32_t i = 0; i < r->h.frame_count && rc == 0; i++) rc = shard_read_frame(r, i, buf);
    free(buf);
    return rc;
}
