/* test_loader.c — windows from a shard directory: sequential windows equal the concatenated stream, random
 * windows are slices of it and tile each epoch exactly once, same seed -> same windows, saved state (through
 * JSON) continues identically, FIM keeps the window length, and bad directories are refused clearly. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/check.h"
#include "host/error.h"
#include "data/loader.h"
#include "host/rng.h"
#include "data/shard.h"

enum { EOT = 1, PRE = 2, MID = 3, SUF = 4, PAD = 5, VOCAB = 32768, T = 96 };
static char dir[] = "/tmp/sc_test_loader_XXXXXX";
static int32_t *stream;
static size_t stream_n;

static int write_shard(const char *name, const int32_t *ids, size_t n, uint64_t docs, uint64_t hash) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    shard_writer *w;
    shard_writer_options o = {.vocab_size = VOCAB, .tokenizer_hash = hash, .frame_tokens = 500};
    if (shard_writer_open(&w, path, &o)) return -1;
    if (shard_writer_append(w, ids, n, docs)) {
        shard_writer_abort(w);
        return -1;
    }
    return shard_writer_close(w);
}

/* Three train shards (one of them empty) and a val shard; documents of random length end with EOT. */
static void make_corpus(void) {
    sc_rng r;
    rng_seed(&r, 1);
    stream_n = 60000;
    stream = malloc(stream_n * sizeof *stream);
    uint64_t docs = 0;
    for (size_t i = 0; i < stream_n; i++) {
        int end = rng_below(&r, 300) == 0 || i == stream_n - 1;
        stream[i] = end ? EOT : (int32_t)(10 + rng_below(&r, VOCAB - 10));
        docs += end;
    }
    CHECK(write_shard("train-00000.tok", stream, 25000, 10, 0xabc) == 0);
    CHECK(write_shard("train-00001.tok", stream + 25000, 0, 0, 0xabc) == 0);
    CHECK(write_shard("train-00002.tok", stream + 25000, stream_n - 25000, docs - 10, 0xabc) == 0);
    CHECK(write_shard("val-00000.tok", stream, 5000, 3, 0xabc) == 0);
    CHECK(write_shard("unrelated.tok", stream, 100, 1, 0xdef) == 0);  /* not a train-/val- name: ignored */
}

static loader_options base_options(loader_order order, uint64_t seed) {
    loader_options o;
    memset(&o, 0, sizeof o);
    o.dir = dir, o.split = "train", o.seq_len = T, o.order = order, o.seed = seed;
    return o;
}

static void test_sequential(void) {
    loader_options o = base_options(LOADER_SEQUENTIAL, 0);
    loader *l;
    if (loader_open(&l, &o)) {
        CHECK(0);
        fprintf(stderr, "%s\n", sc_error());
        return;
    }
    CHECK(loader_total_tokens(l) == stream_n && loader_shard_count(l) == 3);
    uint64_t W = loader_windows_per_epoch(l);
    CHECK(W == (stream_n - 1) / T);
    int32_t win[T + 1];
    int bad = 0;
    for (uint64_t p = 0; p < W + 3; p++) {
        CHECK(loader_next(l, win) == 0);
        uint64_t start = (p % W) * T;
        bad += memcmp(win, stream + start, sizeof win) != 0;
    }
    CHECK(bad == 0);
    loader_close(l);
    o.split = "val";
    CHECK(loader_open(&l, &o) == 0 && loader_total_tokens(l) == 5000 && loader_documents(l) == 3);
    loader_close(l);
}

static void test_random(void) {
    loader_options o = base_options(LOADER_RANDOM, 42);
    loader *l, *l2, *l3;
    CHECK(loader_open(&l, &o) == 0);
    CHECK(loader_open(&l2, &o) == 0);
    o.seed = 43;
    CHECK(loader_open(&l3, &o) == 0);
    uint64_t W = loader_windows_per_epoch(l), slack = (stream_n - 1) - W * T;
    char *seen = calloc(W, 1);
    int32_t a[T + 1], b[T + 1], c[T + 1];
    int bad_slice = 0, bad_same = 0, same_other = 0, bad_cover = 0;
    uint64_t first_epoch_order[3] = {0, 0, 0}, shift0 = 0;
    for (uint64_t p = 0; p < 2 * W; p++) {
        uint64_t start = loader_window_start(l, p);
        CHECK(loader_next(l, a) == 0 && loader_next(l2, b) == 0 && loader_next(l3, c) == 0);
        bad_slice += start + T + 1 > stream_n || memcmp(a, stream + start, sizeof a) != 0;
        bad_same += memcmp(a, b, sizeof a) != 0;
        same_other += memcmp(a, c, sizeof a) == 0;
        if (p < W) {
            /* one epoch: every window index exactly once, one shift for the whole epoch */
            if (p == 0) shift0 = start % T;
            if (start % T != shift0 || start / T >= W || seen[start / T]) bad_cover++;
            else seen[start / T] = 1;
            if (p < 3) first_epoch_order[p] = start;
        } else if (p < W + 3) {
            same_other += first_epoch_order[p - W] == start;  /* epoch 2 is shuffled differently */
        }
    }
    CHECK(shift0 <= slack);
    CHECK(bad_slice == 0 && bad_same == 0 && bad_cover == 0);
    CHECK(same_other < 3);
    free(seen);
    loader_close(l), loader_close(l2), loader_close(l3);
}

/* Runs k steps, saves the state through a JSON string, restores into a fresh loader (opened with another seed)
 * and checks the next m windows match the original loader's. */
static void test_resume(int fim) {
    loader_options o = base_options(LOADER_RANDOM, 7);
    if (fim) {
        fim_tokens ids = {PRE, MID, SUF, PAD, EOT};
        fim_options_default(&o.fim, ids);
        o.fim.split = FIM_SPLIT_TOKEN;
    }
    loader *l, *m;
    CHECK(loader_open(&l, &o) == 0);
    int32_t a[T + 1], b[T + 1];
    for (int i = 0; i < 37; i++) CHECK(loader_next(l, a) == 0);
    loader_state st = loader_get_state(l);
    cJSON *j = loader_state_to_json(&st);
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    o.seed = 999;
    CHECK(loader_open(&m, &o) == 0);
    cJSON *parsed = cJSON_Parse(text);
    loader_state st2;
    CHECK(loader_state_from_json(parsed, &st2) == 0 && loader_set_state(m, &st2) == 0);
    int differ = 0;
    for (int i = 0; i < 50; i++) {
        CHECK(loader_next(l, a) == 0 && loader_next(m, b) == 0);
        differ += memcmp(a, b, sizeof a) != 0;
    }
    CHECK(differ == 0);
    if (fim) CHECK(loader_fim_stats(l)->transformed > 0);
    /* a state for other data or another window length is refused */
    loader_state wrong = st2;
    wrong.total_tokens++;
    CHECK_FAILS_WITH(loader_set_state(m, &wrong), "not the same shards");
    wrong = st2;
    wrong.seq_len = T * 2;
    CHECK_FAILS_WITH(loader_set_state(m, &wrong), "windows of");
    cJSON_DeleteItemFromObject(parsed, "position");
    CHECK_FAILS_WITH(loader_state_from_json(parsed, &wrong), "position");
    cJSON_Delete(parsed);
    free(text);
    loader_close(l), loader_close(m);
}

static void test_fim_windows(void) {
    loader_options o = base_options(LOADER_RANDOM, 5);
    fim_tokens ids = {PRE, MID, SUF, PAD, EOT};
    fim_options_default(&o.fim, ids);
    o.fim.split = FIM_SPLIT_TOKEN;
    o.fim.rate = 1.0f;
    loader *l;
    CHECK(loader_open(&l, &o) == 0);
    int32_t w[T + 1];
    int bad = 0;
    for (int i = 0; i < 200; i++) {
        uint64_t start = loader_window_start(l, (uint64_t)i);
        CHECK(loader_next(l, w) == 0);
        /* per document: untouched, or exactly one of each sentinel; EOTs stay in place */
        size_t s = 0;
        for (size_t k = 0; k <= T + 1; k++) {
            if (k <= T && stream[start + k] != EOT) continue;
            if (k <= T && w[k] != EOT) bad++;
            int np = 0, ns = 0, nm = 0;
            for (size_t q = s; q < k; q++) np += w[q] == PRE, ns += w[q] == SUF, nm += w[q] == MID;
            int same = memcmp(w + s, stream + start + s, (k - s) * sizeof *w) == 0;
            if (!same && !(np == 1 && ns == 1 && nm == 1)) bad++;
            s = k + 1;
        }
    }
    CHECK(bad == 0);
    CHECK(loader_fim_stats(l)->transformed > 100);
    loader_close(l);
    /* character-level FIM without a codec is refused up front */
    o.fim.split = FIM_SPLIT_CHAR;
    CHECK_FAILS_WITH(loader_open(&l, &o), "tokenizer");
}

static void test_bad_dirs(void) {
    loader_options o = base_options(LOADER_RANDOM, 1);
    loader *l;
    o.tokenizer_hash = 0x123;
    CHECK_FAILS_WITH(loader_open(&l, &o), "this model's tokenizer");
    o.tokenizer_hash = 0;
    o.split = "test";
    CHECK_FAILS_WITH(loader_open(&l, &o), "no test-*.tok shards");
    o.split = "val";
    o.seq_len = 5000;
    CHECK_FAILS_WITH(loader_open(&l, &o), "fewer than one window");
    o.seq_len = T;
    o.dir = "/nonexistent/shards";
    CHECK_FAILS_WITH(loader_open(&l, &o), "/nonexistent/shards");
    /* a directory mixing tokenizers */
    o.dir = dir;
    o.split = "mixed";
    CHECK(write_shard("mixed-00000.tok", stream, 1000, 1, 0xabc) == 0);
    CHECK(write_shard("mixed-00001.tok", stream, 1000, 1, 0xdef) == 0);
    CHECK_FAILS_WITH(loader_open(&l, &o), "must share a tokenizer");
    CHECK(strstr(sc_error(), "mixed-00001.tok") && strstr(sc_error(), "mixed-00000.tok"));
    /* a corrupt shard is named */
    char path[300];
    snprintf(path, sizeof path, "%s/bad-00000.tok", dir);
    CHECK(write_shard("bad-00000.tok", stream, 1000, 1, 0xabc) == 0);
    CHECK(truncate(path, 100) == 0);
    o.split = "bad";
    CHECK_FAILS_WITH(loader_open(&l, &o), "bad-00000.tok");
}

int main(void) {
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    make_corpus();
    test_sequential();
    test_random();
    test_resume(0);
    test_resume(1);
    test_fim_windows();
    test_bad_dirs();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    free(stream);
    return check_result("test_loader");
}
