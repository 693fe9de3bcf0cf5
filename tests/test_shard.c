/* test_shard.c — the *.tok shard format: round trip (u16 and u32 ids), random windows equal the stream,
 * byte-identical rewrites, and bad input: truncation, flipped bytes, wrong magic/version, aborted writes. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/checksum.h"
#include "tests/check.h"
#include "host/error.h"
#include "data/shard.h"


static uint64_t rng_state = 12345;
static uint64_t rnd(void) {
    rng_state += 0x9E3779B97F4A7C15ull;
    uint64_t z = rng_state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static char tmpdir[] = "/tmp/sc_test_shard_XXXXXX";

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

/* Writes ids in uneven appends (so frames straddle append calls) and returns 0 on success. */
static int write_shard(const char *path, const int32_t *ids, size_t n, uint32_t vocab, uint32_t frame_tokens, uint64_t docs) {
    shard_writer *w;
    shard_writer_options o = {.vocab_size = vocab, .tokenizer_hash = 0xfeedface12345678ull, .frame_tokens = frame_tokens};
    if (shard_writer_open(&w, path, &o)) return -1;
    size_t i = 0;
    uint64_t step = 1;
    while (i < n) {
        size_t k = (size_t)(rnd() % (3 * frame_tokens + 7)) + 1;
        if (k > n - i) k = n - i;
        if (shard_writer_append(w, ids + i, k, step++ % 2)) {
            shard_writer_abort(w);
            return -1;
        }
        i += k;
    }
    if (shard_writer_append(w, NULL, 0, docs - (step - 1) / 2)) return -1;
    return shard_writer_close(w);
}

static void test_round_trip(uint32_t vocab, size_t n, uint32_t frame_tokens) {
    char path[256];
    snprintf(path, sizeof path, "%s/rt-%u-%zu.tok", tmpdir, vocab, n);
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)(rnd() % 7 == 0 ? rnd() % vocab : (i * 31) % 300);
    if (n) ids[n - 1] = (int32_t)(vocab - 1);
    CHECKF(write_shard(path, ids, n, vocab, frame_tokens, 17) == 0, "write: %s", sc_error());
    shard_reader *r;
    if (shard_open(&r, path) != 0) {
        CHECKF(0, "open: %s", sc_error());
        free(ids);
        return;
    }
    const shard_header *h = shard_info(r);
    CHECKF(h->token_count == n, "token_count %llu != %zu", (unsigned long long)h->token_count, n);
    CHECKF(h->doc_count == 17, "doc_count %llu", (unsigned long long)h->doc_count);
    CHECKF(h->vocab_size == vocab && h->dtype == (vocab <= 65536 ? 2u : 4u), "dtype %u for vocab %u", h->dtype, vocab);
    CHECKF(h->tokenizer_hash == 0xfeedface12345678ull, "tokenizer hash");
    CHECKF(h->frame_count == (n + frame_tokens - 1) / frame_tokens, "frame_count %u", h->frame_count);
    CHECKF(shard_verify(r) == 0, "verify: %s", sc_error());
    int32_t *all = malloc((n ? n : 1) * sizeof *all);
    CHECKF(shard_read_tokens(r, 0, n, all) == 0 && (n == 0 || memcmp(all, ids, n * sizeof *ids) == 0), "full read differs");
    /* random windows, including ones spanning frames and touching both ends */
    int32_t *win = malloc(4097 * sizeof *win);
    for (int t = 0; t < 300 && n > 0; t++) {
        size_t len = (size_t)(rnd() % 4097) + 1;
        if (len > n) len = n;
        uint64_t start = t == 0 ? 0 : t == 1 ? n - len : rnd() % (n - len + 1);
        if (shard_read_tokens(r, start, len, win) != 0) {
            CHECKF(0, "window read: %s", sc_error());
            break;
        }
        CHECKF(memcmp(win, ids + start, len * sizeof *win) == 0, "window [%llu,+%zu) differs", (unsigned long long)start, len);
    }
    CHECKF(shard_read_tokens(r, n, 1, win) != 0 && strstr(sc_error(), "out of range"), "read past end must fail");
    shard_close(r);
    free(win);
    free(all);
    free(ids);
}

static void test_deterministic_bytes(void) {
    size_t n = 50000;
    int32_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)(rnd() % 1000);
    char a[256], b[256];
    snprintf(a, sizeof a, "%s/det-a.tok", tmpdir);
    snprintf(b, sizeof b, "%s/det-b.tok", tmpdir);
    uint64_t saved = rng_state;
    CHECKF(write_shard(a, ids, n, 1000, 4096, 3) == 0, "%s", sc_error());
    rng_state = saved + 99;  /* different append chunking must not change the bytes */
    CHECKF(write_shard(b, ids, n, 1000, 4096, 3) == 0, "%s", sc_error());
    size_t na, nb;
    unsigned char *ba = slurp(a, &na), *bb = slurp(b, &nb);
    CHECKF(ba && bb && na == nb && memcmp(ba, bb, na) == 0, "same ids, different bytes");
    free(ba);
    free(bb);
    free(ids);
}

/* Opens path, expects failure whose message contains every needle (and the file name). */
static void expect_open_fails(const char *path, const char *needle) {
    shard_reader *r;
    int rc = shard_open(&r, path);
    CHECKF(rc != 0, "%s: open should fail (%s)", path, needle);
    if (rc == 0) {
        shard_close(r);
        return;
    }
    CHECKF(strstr(sc_error(), needle) != NULL, "error '%s' lacks '%s'", sc_error(), needle);
    CHECKF(strstr(sc_error(), path) != NULL, "error '%s' does not name the file", sc_error());
}

static void test_bad_input(void) {
    char good[256], bad[300];
    snprintf(good, sizeof good, "%s/good.tok", tmpdir);
    snprintf(bad, sizeof bad, "%s/bad.tok", tmpdir);
    size_t n = 20000;
    int32_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)(rnd() % 5000);
    CHECKF(write_shard(good, ids, n, 5000, 1024, 1) == 0, "%s", sc_error());
    size_t len;
    unsigned char *b = slurp(good, &len), *c = malloc(len);

    /* truncated anywhere: at the header, mid-frame, mid-index, one byte short */
    size_t cuts[] = {0, 10, 63, 64, 500, len / 2, len - 33, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        spit(bad, b, cuts[i]);
        shard_reader *r;
        CHECKF(shard_open(&r, bad) != 0, "truncated to %zu bytes must fail", cuts[i]);
        CHECKF(strstr(sc_error(), "truncated") || strstr(sc_error(), "does not match"), "cut %zu: %s", cuts[i], sc_error());
    }
    /* a byte flipped in the header fields or in the index: caught by the header/index checksum (or a range check) */
    size_t header_flips[] = {20, 24, 32, 40, 57, 61, len - 10, len - 32 * 5 + 3};
    for (size_t i = 0; i < sizeof header_flips / sizeof header_flips[0]; i++) {
        memcpy(c, b, len);
        c[header_flips[i]] ^= 0x10;
        spit(bad, c, len);
        shard_reader *r;
        CHECKF(shard_open(&r, bad) != 0, "flip at %zu must fail", header_flips[i]);
    }
    memcpy(c, b, len);
    c[40] ^= 1;  /* tokenizer hash: no range check can see this, only the checksum */
    spit(bad, c, len);
    expect_open_fails(bad, "checksum mismatch");
    /* a byte flipped inside a frame: open succeeds (index intact), reading that frame names it */
    memcpy(c, b, len);
    shard_reader *r;
    CHECKF(shard_open(&r, good) == 0, "%s", sc_error());
    const shard_frame *f3 = shard_frame_info(r, 3);
    size_t pos = (size_t)f3->offset + f3->compressed_size / 2;
    shard_close(r);
    c[pos] ^= 0x01;
    spit(bad, c, len);
    if (shard_open(&r, bad) == 0) {
        int32_t *buf = malloc(1024 * sizeof *buf);
        CHECKF(shard_read_frame(r, 2, buf) == 0, "untouched frame 2 must read: %s", sc_error());
        CHECKF(shard_read_frame(r, 3, buf) != 0 && strstr(sc_error(), "frame 3") && strstr(sc_error(), bad),
              "corrupt frame 3: '%s'", sc_error());
        CHECKF(shard_verify(r) != 0, "verify must fail on a corrupt frame");
        free(buf);
        shard_close(r);
    } else {
        CHECKF(0, "flip inside a frame should still open: %s", sc_error());
    }
    /* wrong magic, wrong version */
    memcpy(c, b, len);
    c[0] = 'X';
    spit(bad, c, len);
    expect_open_fails(bad, "bad magic");
    memcpy(c, b, len);
    c[8] = 9;
    spit(bad, c, len);
    expect_open_fails(bad, "version 9");
    expect_open_fails("/nonexistent/dir/x.tok", "cannot open");
    free(c);
    free(b);
    free(ids);
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void test_writer_errors(void) {
    char path[256];
    snprintf(path, sizeof path, "%s/abort.tok", tmpdir);
    int before = count_entries(tmpdir);
    shard_writer *w;
    shard_writer_options o = {.vocab_size = 100, .tokenizer_hash = 1};
    CHECKF(shard_writer_open(&w, path, &o) == 0, "%s", sc_error());
    int32_t ok[3] = {1, 2, 3}, oob[2] = {5, 100};
    CHECKF(shard_writer_append(w, ok, 3, 1) == 0, "%s", sc_error());
    CHECKF(shard_writer_append(w, oob, 2, 0) != 0 && strstr(sc_error(), "100"), "id 100 >= vocab 100 must fail");
    shard_writer_abort(w);
    CHECKF(access(path, F_OK) != 0, "aborted shard must not exist");
    CHECKF(count_entries(tmpdir) == before, "abort left a temporary file behind");
    CHECKF(shard_writer_open(&w, "/nonexistent/dir/x.tok", &o) != 0 && strstr(sc_error(), "/nonexistent/dir/x.tok"),
          "open in a missing dir must fail naming the path");
}

static void test_checksum_vectors(void) {
    /* CRC-32C check value from RFC 3720 / the Castagnoli polynomial catalogue */
    CHECKF(crc32c_update(0, "123456789", 9) == 0xE3069283u, "crc32c('123456789') = %08x", crc32c_update(0, "123456789", 9));
    CHECKF(crc32c_update(crc32c_update(0, "1234", 4), "56789", 5) == 0xE3069283u, "crc32c incremental");
    CHECKF(hash64("abc", 3, 0) != hash64("abd", 3, 0) && hash64("abc", 3, 0) != hash64("abc", 3, 1), "hash64 mixes");
}

int main(void) {
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_checksum_vectors();
    test_round_trip(50000, 100003, 4096);
    test_round_trip(100000, 70001, 1000);   /* u32 ids */
    test_round_trip(65536, 8192, 4096);     /* exact frames, largest u16 vocab */
    test_round_trip(300, 0, 4096);          /* empty shard */
    test_deterministic_bytes();
    test_bad_input();
    test_writer_errors();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", tmpdir);
    return check_result("test_shard");
}
