/* shard_write.c — writes a *.tok shard (layout in shard.h): ids are buffered into frames of frame_tokens,
 * each compressed as an independent zstd frame; index and header go last, then fsync + rename. */
#include "data/shard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "host/checksum.h"
#include "host/error.h"
#include "host/fileio.h"
#include "host/le.h"

struct shard_writer {
    char *path;
    sc_atomic_file af;        /* bytes go to a temporary name until shard_writer_close renames them */
    FILE *f;                  /* af.f */
    shard_writer_options opt;
    uint32_t dtype;
    unsigned char *raw;       /* current frame, little-endian ids */
    size_t raw_tokens;
    void *cbuf;
    size_t cbuf_cap;
    ZSTD_CCtx *cctx;
    shard_frame *frames;
    uint32_t n_frames, cap_frames;
    uint64_t tokens, docs, file_pos;
};

int shard_writer_open(shard_writer **out, const char *path, const shard_writer_options *opt) {
    *out = NULL;
    if (opt->vocab_size == 0) return sc_fail("%s: vocab_size must be > 0", path);
    shard_writer *w = sc_calloc(1, sizeof *w);
    w->opt = *opt;
    if (!w->opt.frame_tokens) w->opt.frame_tokens = SHARD_FRAME_TOKENS_DEFAULT;
    if (w->opt.frame_tokens > SHARD_FRAME_TOKENS_MAX) {
        free(w);
        return sc_fail("%s: frame_tokens %u exceeds the maximum %u", path, opt->frame_tokens, SHARD_FRAME_TOKENS_MAX);
    }
    if (!w->opt.zstd_level) w->opt.zstd_level = 3;
    w->dtype = opt->vocab_size <= 65536 ? 2 : 4;
    if (atomic_open(&w->af, path)) {
        free(w);
        return -1;
    }
    w->f = w->af.f;
    w->path = strdup(path);
    w->raw = sc_malloc((size_t)w->opt.frame_tokens * w->dtype);
    w->cbuf_cap = ZSTD_compressBound((size_t)w->opt.frame_tokens * w->dtype);
    w->cbuf = sc_malloc(w->cbuf_cap);
    w->cctx = ZSTD_createCCtx();
    /* the header is written last; reserve its space now */
    unsigned char zero[SHARD_HEADER_SIZE] = {0};
    w->file_pos = SHARD_HEADER_SIZE;
    *out = w;
    if (!w->cctx || fwrite(zero, 1, sizeof zero, w->f) != sizeof zero) {
        int e = errno;
        shard_writer_abort(w);
        *out = NULL;
        return sc_fail("%s: write failed: %s", path, strerror(e));
    }
    return 0;
}

static int writer_flush_frame(shard_writer *w) {
    if (w->raw_tokens == 0) return 0;
    size_t raw_bytes = w->raw_tokens * w->dtype;
    size_t c = ZSTD_compressCCtx(w->cctx, w->cbuf, w->cbuf_cap, w->raw, raw_bytes, w->opt.zstd_level);
    if (ZSTD_isError(c)) return sc_fail("%s: zstd compression failed: %s", w->path, ZSTD_getErrorName(c));
    if (fwrite(w->cbuf, 1, c, w->f) != c) return sc_fail("%s: write failed: %s", w->path, strerror(errno));
    if (w->n_frames == w->cap_frames) {
        w->cap_frames = w->cap_frames ? 2 * w->cap_frames : 64;
        shard_frame *nf = sc_malloc(w->cap_frames * sizeof *nf);
        if (w->n_frames) memcpy(nf, w->frames, w->n_frames * sizeof *nf);
        free(w->frames);
        w->frames = nf;
    }
    shard_frame *fr = &w->frames[w->n_frames++];
    fr->offset = w->file_pos;
    fr->first_token = w->tokens - w->raw_tokens;
    fr->compressed_size = (uint32_t)c;
    fr->token_count = (uint32_t)w->raw_tokens;
    fr->crc = crc32c_update(0, w->raw, raw_bytes);
    w->file_pos += c;
    w->raw_tokens = 0;
    return 0;
}

int shard_writer_append(shard_writer *w, const int32_t *ids, size_t n, uint64_t n_docs) {
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (uint32_t)ids[i] >= w->opt.vocab_size)
            return sc_fail("%s: token id %d out of range for vocab size %u", w->path, ids[i], w->opt.vocab_size);
        unsigned char *p = w->raw + w->raw_tokens * w->dtype;
        if (w->dtype == 2) p[0] = (unsigned char)ids[i], p[1] = (unsigned char)(ids[i] >> 8);
        else le_put32(p, (uint32_t)ids[i]);
        w->raw_tokens++;
        w->tokens++;
        if (w->raw_tokens == w->opt.frame_tokens && writer_flush_frame(w)) return -1;
    }
    w->docs += n_docs;
    return 0;
}

uint64_t shard_writer_tokens(const shard_writer *w) { return w->tokens; }

static void writer_free(shard_writer *w) {
    ZSTD_freeCCtx(w->cctx);
    free(w->raw);
    free(w->cbuf);
    free(w->frames);
    free(w->path);
    free(w);
}

void shard_writer_abort(shard_writer *w) {
    if (!w) return;
    atomic_abort(&w->af);
    writer_free(w);
}

int shard_writer_close(shard_writer *w) {
    if (writer_flush_frame(w)) goto fail;
    size_t index_bytes = (size_t)w->n_frames * SHARD_INDEX_ENTRY_SIZE;
    unsigned char *index = sc_calloc(1, index_bytes ? index_bytes : 1);
    for (uint32_t i = 0; i < w->n_frames; i++) {
        unsigned char *e = index + (size_t)i * SHARD_INDEX_ENTRY_SIZE;
        le_put64(e, w->frames[i].offset);
        le_put64(e + 8, w->frames[i].first_token);
        le_put32(e + 16, w->frames[i].compressed_size);
        le_put32(e + 20, w->frames[i].token_count);
        le_put32(e + 24, w->frames[i].crc);
    }
    unsigned char h[SHARD_HEADER_SIZE] = {0};
    memcpy(h, SHARD_MAGIC, 8);
    le_put32(h + 8, SHARD_VERSION);
    le_put32(h + 12, w->dtype);
    le_put32(h + 16, w->opt.vocab_size);
    le_put32(h + 20, w->n_frames);
    le_put64(h + 24, w->tokens);
    le_put64(h + 32, w->docs);
    le_put64(h + 40, w->opt.tokenizer_hash);
    le_put64(h + 48, w->file_pos);
    le_put32(h + 56, w->opt.frame_tokens);
    le_put32(h + 60, crc32c_update(crc32c_update(0, h, 60), index, index_bytes));
    int ok = fwrite(index, 1, index_bytes, w->f) == index_bytes && fseek(w->f, 0, SEEK_SET) == 0 &&
             fwrite(h, 1, sizeof h, w->f) == sizeof h;
    free(index);
    if (!ok) {
        sc_fail("%s: write failed: %s", w->path, strerror(errno));
        goto fail;
    }
    int rc = atomic_commit(&w->af);  /* fsync, rename, fsync dir; removes the temporary file on failure */
    writer_free(w);
    return rc;
fail:
    shard_writer_abort(w);
    return -1;
}
