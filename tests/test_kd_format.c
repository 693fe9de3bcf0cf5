/* test_kd_format.c — the .kd writer/reader: a round trip (ids exact, logits to FP16, lse exact, reads across frame
 * boundaries), kd_check_shard accepting its shard and refusing one with other token counts, another tokenizer or
 * another header, and truncated/corrupt files refused at open or read with a clear message. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/checksum.h"
#include "tests/check.h"
#include "host/error.h"
#include "host/half.h"
#include "distill/kd_format.h"
#include "host/rng.h"
#include "data/shard.h"

enum { V = 300, K = 7, FT = 100 };

static int make_shard(const char *path, int n, uint64_t tok_hash, int mul) {
    shard_writer *w;
    shard_writer_options o = {.vocab_size = V, .tokenizer_hash = tok_hash, .frame_tokens = FT};
    if (shard_writer_open(&w, path, &o)) return -1;
    for (int i = 0; i < n; i++) {
        int32_t id = (i * mul) % V;
        if (shard_writer_append(w, &id, 1, 0)) return -1;
    }
    return shard_writer_close(w);
}

/* A .kd for the shard at spath with entry values derived from the position. */
static int make_kd(const char *kpath, const char *spath) {
    shard_reader *s;
    if (shard_open(&s, spath)) return -1;
    const shard_header *sh = shard_info(s);
    kd_header h = {0};
    h.k = K, h.temperature = 1.5f, h.vocab_size = V, h.frame_count = sh->frame_count, h.token_count = sh->token_count;
    h.tokenizer_hash = sh->tokenizer_hash, h.frame_tokens = sh->frame_tokens, h.context = 64, h.overlap = 16;
    strcpy(h.teacher, "unit-teacher");
    kd_writer *w;
    int rc = kd_shard_header_hash(spath, &h.shard_header_hash) || kd_writer_open(&w, kpath, &h, 0);
    int32_t ids[FT * K];
    float lg[FT * K], lse[FT];
    for (uint32_t f = 0; !rc && f < sh->frame_count; f++) {
        const shard_frame *fr = shard_frame_info(s, f);
        for (uint32_t i = 0; i < fr->token_count; i++) {
            uint64_t p = fr->first_token + i;
            for (int j = 0; j < K; j++) ids[i * K + j] = (int32_t)((p * 13 + (uint64_t)j * 31) % V), lg[i * K + j] = 5.0f - j * 0.7f + (float)(p % 11) * 0.01f;
            lse[i] = 6.0f + (float)p * 1e-3f;
        }
        rc = kd_writer_append_frame(w, ids, lg, lse, fr->token_count);
    }
    if (!rc) rc = kd_writer_close(w);
    shard_close(s);
    return rc;
}

int main(void) {
    char dir[] = "/tmp/sc_kd_format.XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char sp[256], sp2[256], sp3[256], kp[256], tp[256];
    snprintf(sp, sizeof sp, "%s/a.tok", dir), snprintf(sp2, sizeof sp2, "%s/b.tok", dir);
    snprintf(sp3, sizeof sp3, "%s/c.tok", dir), snprintf(kp, sizeof kp, "%s/a.kd", dir);
    snprintf(tp, sizeof tp, "%s/t.kd", dir);
    CHECK(make_shard(sp, 350, 0xabcULL, 7) == 0);
    CHECK(make_shard(sp2, 351, 0xabcULL, 7) == 0);   /* other token count */
    CHECK(make_shard(sp3, 350, 0xdefULL, 7) == 0);   /* other tokenizer */
    CHECK(make_kd(kp, sp) == 0);

    kd_reader *r;
    shard_reader *s;
    CHECK(kd_open(&r, kp) == 0 && shard_open(&s, sp) == 0);
    const kd_header *h = kd_info(r);
    CHECK(h->k == K && h->temperature == 1.5f && h->frame_count == 4 && h->token_count == 350);
    CHECK(strcmp(h->teacher, "unit-teacher") == 0 && h->context == 64 && h->overlap == 16);
    CHECK(kd_check_shard(r, s) == 0);
    int32_t ids[120 * K];
    float lg[120 * K], lse[120];
    CHECK(kd_read(r, 90, 120, ids, lg, lse) == 0); /* frames 0, 1 and 2 */
    int bad = 0;
    for (int i = 0; i < 120; i++) {
        uint64_t p = 90 + (uint64_t)i;
        bad += lse[i] != 6.0f + (float)p * 1e-3f;
        for (int j = 0; j < K; j++) {
            float want = half_to_float(float_to_half(5.0f - j * 0.7f + (float)(p % 11) * 0.01f));
            bad += ids[i * K + j] != (int32_t)((p * 13 + (uint64_t)j * 31) % V) || lg[i * K + j] != want;
        }
    }
    CHECK(bad == 0);
    CHECK(kd_verify(r) == 0);
    CHECK_FAILS_WITH(kd_read(r, 300, 51, ids, lg, lse), "past the end");
    shard_close(s);

    CHECK(shard_open(&s, sp2) == 0);
    CHECK_FAILS_WITH(kd_check_shard(r, s), "351 tokens");
    shard_close(s);
    CHECK(shard_open(&s, sp3) == 0);
    CHECK_FAILS_WITH(kd_check_shard(r, s), "same tokenizer");
    shard_close(s);
    /* same counts and tokenizer, other tokens (the header hash covers the frame CRCs through its index CRC) */
    CHECK(make_shard(sp2, 350, 0xabcULL, 11) == 0);
    CHECK(shard_open(&s, sp2) == 0);
    CHECK_FAILS_WITH(kd_check_shard(r, s), "another version of shard");
    shard_close(s);
    kd_close(r);

    /* truncated: every cut of the file is refused at open */
    FILE *in = fopen(kp, "rb");
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    char *bytes = malloc((size_t)size);
    fseek(in, 0, SEEK_SET);
    CHECK(fread(bytes, 1, (size_t)size, in) == (size_t)size);
    fclose(in);
    long cuts[] = {0, 10, 159, 160, size / 2, size - 33, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        FILE *o = fopen(tp, "wb");
        fwrite(bytes, 1, (size_t)cuts[i], o), fclose(o);
        CHECK_FAILS_WITH(kd_open(&r, tp), "t.kd");
    }
    /* a flipped byte inside a frame: open succeeds (header and index intact), the read fails its check */
    bytes[200] ^= 0x55;
    FILE *o = fopen(tp, "wb");
    fwrite(bytes, 1, (size_t)size, o), fclose(o);
    if (kd_open(&r, tp) == 0) {
        CHECK_FAILS_WITH(kd_verify(r), "frame 0");
        kd_close(r);
    } else {
        CHECK(0);
    }
    bytes[200] ^= 0x55, bytes[13] ^= 1; /* header field: the header CRC catches it */
    o = fopen(tp, "wb");
    fwrite(bytes, 1, (size_t)size, o), fclose(o);
    CHECK(kd_open(&r, tp) != 0);
    /* frame_tokens x k beyond KD_MAX_FRAME_ENTRIES, with a CRC that matches: refused before any frame buffer is
     * sized from it (issue 14: 2^24 x 1024 entries asked for ~100 GB) */
    bytes[13] ^= 1;
    uint32_t big_k = 1024, big_frames = 1u << 20, big_vocab = 4096;
    memcpy(bytes + 12, &big_k, 4), memcpy(bytes + 24, &big_vocab, 4), memcpy(bytes + 64, &big_frames, 4);
    uint64_t idx;
    memcpy(&idx, bytes + 56, 8);
    uint32_t crc = crc32c_update(crc32c_update(0, bytes, 156), bytes + idx, (size_t)size - idx);
    memcpy(bytes + 156, &crc, 4);
    o = fopen(tp, "wb");
    fwrite(bytes, 1, (size_t)size, o), fclose(o);
    CHECK_FAILS_WITH(kd_open(&r, tp), "entries per frame");
    free(bytes);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    return check_result("test_kd_format");
}
