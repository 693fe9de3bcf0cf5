/* train_make_shards.c — test helper: writes DIR/train-000.tok and DIR/val-000.tok holding a learnable synthetic
 * corpus (documents from a fixed random bigram chain: every token has 4 likely successors), so training tests
 * can watch the loss fall without a tokenizer. Usage: train_make_shards DIR VOCAB TRAIN_TOKENS VAL_TOKENS [SEED] */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "host/error.h"
#include "host/fileio.h"
#include "host/rng.h"
#include "data/shard.h"

static int write_split(const char *path, int vocab, long n, uint64_t seed, const int32_t *succ) {
    shard_writer *w;
    shard_writer_options o = {.vocab_size = (uint32_t)vocab, .tokenizer_hash = 0x5eed5eed5eedull, .frame_tokens = 4096};
    if (shard_writer_open(&w, path, &o)) return -1;
    sc_rng r;
    rng_seed(&r, seed);
    int32_t buf[1024];
    int32_t cur = 1 + (int32_t)rng_below(&r, (uint64_t)vocab - 1);
    long done = 0;
    uint64_t docs = 0;
    while (done < n) {
        int k = 0;
        for (; k < 1024 && done + k < n; k++) {
            if (rng_below(&r, 200) == 0) { /* end of document: <|endoftext|> = 0 */
                buf[k] = 0;
                docs++;
                cur = 1 + (int32_t)rng_below(&r, (uint64_t)vocab - 1);
                continue;
            }
            buf[k] = cur;
            /* 4 successors, probabilities 1/2, 1/4, 1/8, 1/8 */
            uint64_t u = rng_below(&r, 8);
            int j = u < 4 ? 0 : u < 6 ? 1 : u < 7 ? 2 : 3;
            cur = succ[cur * 4 + j];
        }
        if (shard_writer_append(w, buf, (size_t)k, 0)) {
            shard_writer_abort(w);
            return -1;
        }
        done += k;
    }
    if (shard_writer_append(w, buf, 0, docs)) {
        shard_writer_abort(w);
        return -1;
    }
    return shard_writer_close(w);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s DIR VOCAB TRAIN_TOKENS VAL_TOKENS [SEED]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int vocab = atoi(argv[2]);
    long ntrain = atol(argv[3]), nval = atol(argv[4]);
    uint64_t seed = argc > 5 ? strtoull(argv[5], NULL, 10) : 1;
    if (vocab < 8) return fprintf(stderr, "vocab must be >= 8\n"), 2;
    mkdir(dir, 0755);
    int32_t *succ = sc_malloc(sizeof(int32_t) * 4 * (size_t)vocab);
    sc_rng r;
    rng_seed(&r, 12345); /* the chain is the same for every split and seed: val measures the same language */
    for (int i = 0; i < 4 * vocab; i++) succ[i] = 1 + (int32_t)rng_below(&r, (uint64_t)vocab - 1);
    char p[4096];
    int rc = write_split(path_join(p, sizeof p, dir, "train-000.tok"), vocab, ntrain, seed, succ);
    if (!rc && nval > 0) rc = write_split(path_join(p, sizeof p, dir, "val-000.tok"), vocab, nval, seed + 1000, succ);
    free(succ);
    if (rc) {
        fprintf(stderr, "train_make_shards: %s\n", sc_error());
        return 1;
    }
    return 0;
}
