/* lora_test_adapter.c — writes a random LoRA adapter in the PEFT layout (host/lora.c's writer) for a model
 * directory, for the script tests until `train --lora` makes real ones:
 *     lora_test_adapter MODEL_DIR OUT_DIR SEED [B_STD] [TARGETS] [RANK] [BASE_NAME]
 * A is PEFT's init from SEED, B ~ N(0, B_STD^2) (0 = PEFT's zero B: the base exactly); TARGETS as --lora-targets
 * (default all), RANK default 4 (alpha = 2 * rank), BASE_NAME default MODEL_DIR. OUT_DIR is created. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "host/config.h"
#include "host/error.h"
#include "host/fileio.h"
#include "host/lora.h"
#include "host/rng.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: lora_test_adapter MODEL_DIR OUT_DIR SEED [B_STD] [TARGETS] [RANK] [BASE_NAME]\n");
        return 2;
    }
    sc_config cfg;
    char path[4200];
    if (config_load(&cfg, path_join(path, sizeof path, argv[1], "config.json"))) {
        fprintf(stderr, "lora_test_adapter: %s\n", sc_error());
        return 1;
    }
    uint64_t seed = strtoull(argv[3], NULL, 10);
    double bstd = argc > 4 ? atof(argv[4]) : 0.0;
    unsigned targets = LORA_ALL_TARGETS;
    if (argc > 5 && lora_parse_targets(argv[5], "TARGETS", &targets)) {
        fprintf(stderr, "lora_test_adapter: %s\n", sc_error());
        return 2;
    }
    int rank = argc > 6 ? atoi(argv[6]) : 4;
    sc_lora ad;
    if (lora_create(&ad, &cfg, rank, 2.0f * rank, targets, 0.0f, argc > 7 ? argv[7] : argv[1])) {
        fprintf(stderr, "lora_test_adapter: %s\n", sc_error());
        return 1;
    }
    lora_init_weights(&ad, seed);
    sc_rng r;
    rng_seed(&r, seed * 7919 + 1);
    for (int l = 0; l < ad.nlayers; l++)
        for (int t = 0; t < LORA_NTARGETS; t++) {
            float *b = lora_b(&ad, l, t);
            for (int64_t i = 0; b && i < (int64_t)ad.out[t] * ad.rank; i++) b[i] = (float)(bstd * rng_normal(&r));
        }
    mkdir(argv[2], 0755);
    int rc = lora_save(&ad, argv[2]);
    if (rc) fprintf(stderr, "lora_test_adapter: %s\n", sc_error());
    lora_free(&ad);
    return rc ? 1 : 0;
}
