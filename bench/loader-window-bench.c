/* loader-window-bench.c TOKENIZER.json SHARD_DIR [N] — milliseconds per random 4097-token training window from
 * data/loader.h: no FIM, character-level FIM (rate 0.5, the default) and token-level FIM. Built and run by
 * bench/tokenize-bench against the build's static libraries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/error.h"
#include "data/loader.h"
#include "data/tokenizer.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s TOKENIZER.json SHARD_DIR [WINDOWS]\n", argv[0]);
        return 2;
    }
    int n = argc > 3 ? atoi(argv[3]) : 400;
    sc_tokenizer *tok;
    if (tokenizer_load(&tok, argv[1])) {
        fprintf(stderr, "%s\n", sc_error());
        return 1;
    }
    static const char *names[3] = {"no FIM", "character-level FIM, rate 0.5", "token-level FIM, rate 0.5"};
    for (int mode = 0; mode < 3; mode++) {
        loader_options o;
        memset(&o, 0, sizeof o);
        o.dir = argv[2], o.split = "train", o.seq_len = 4096, o.seed = 1;
        if (mode && fim_options_from_tokenizer(&o.fim, tok, 0.5f)) {
            fprintf(stderr, "%s\n", sc_error());
            return 1;
        }
        if (mode == 2) o.fim.split = FIM_SPLIT_TOKEN;
        loader *l;
        if (loader_open(&l, &o)) {
            fprintf(stderr, "%s\n", sc_error());
            return 1;
        }
        int32_t *w = malloc(4097 * sizeof *w);
        double best = 1e30;
        for (int round = 0; round < 3; round++) {
            double t0 = now();
            for (int i = 0; i < n; i++)
                if (loader_next(l, w)) {
                    fprintf(stderr, "%s\n", sc_error());
                    return 1;
                }
            double dt = (now() - t0) / n;
            if (dt < best) best = dt;
        }
        printf("| %s | %.3f |\n", names[mode], 1e3 * best);
        loader_close(l);
        free(w);
    }
    tokenizer_free(tok);
    return 0;
}
