/* cmd_init.c — `smallcoder init`: a fresh model directory from a preset with HF's initialisation. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "host/args.h"
#include "model/commands_model.h"
#include "host/error.h"
#include "host/fileio.h"
#include "host/model.h"
#include "host/threads.h"

#define INIT_MIN_VOCAB 262

int cmd_init(int argc, char **argv) {
    const char *preset = NULL, *out = NULL;
    int seed = 0, layers = 0, vocab = 0, force = 0, untied = 0;
    float std = 0.02f;
    sc_arg args[] = {
        {"preset", 'p', SC_ARG_STR, &preset, "model shape: tiny, mini, small or 304m", 1},
        {"out", 'o', SC_ARG_STR, &out, "model directory to create", 1},
        {"seed", 0, SC_ARG_INT, &seed, "random seed for the initial weights", 0},
        {"std", 0, SC_ARG_FLOAT, &std, "standard deviation of the normal initialisation (HF initializer_range)", 0},
        {"layers", 0, SC_ARG_INT, &layers, "override the preset's number of layers (0 = keep)", 0},
        {"vocab-size", 0, SC_ARG_INT, &vocab, "override the preset's vocabulary size, e.g. to match a tokenizer (0 = keep)", 0},
        {"untied", 0, SC_ARG_FLAG, &untied, "separate lm_head.weight instead of tied embeddings", 0},
        {"force", 'f', SC_ARG_FLAG, &force, "overwrite an existing model in --out", 0},
    };
    sc_cli cli = {"smallcoder init", "--preset P --out DIR [options]",
                  "Writes DIR/config.json and DIR/model.safetensors (F32): every matrix drawn from N(0, std),\n"
                  "every norm weight 1, deterministic for a seed.",
                  args, sizeof args / sizeof args[0], 0, 0};
    static const sc_arg_range ranges[] = {{"std", 0, 10}, {"layers", 0, 1024}, {"vocab-size", 0, 4194304}};
    int npos, rc = sc_args_parse(&cli, argc, argv, &npos);
    if (!rc) rc = sc_args_check_ranges(&cli, ranges, (int)(sizeof ranges / sizeof ranges[0]));
    if (rc) return rc == 1 ? 0 : 2;
    sc_config cfg;
    if (config_preset(&cfg, preset)) goto fail;
    if (layers) cfg.num_hidden_layers = layers;
    if (vocab && vocab < INIT_MIN_VOCAB) {
        fprintf(stderr, "smallcoder init: option --vocab-size %d is below %d (a byte-level tokenizer's 6 specials + 256 "
                        "bytes)\n", vocab, INIT_MIN_VOCAB);
        return 2;
    }
    if (vocab) cfg.vocab_size = vocab;
    if (untied) cfg.tie_word_embeddings = 0;
    if (config_validate(&cfg, "--preset/--layers/--vocab-size")) goto fail;
    char path[4096];
    struct stat sb;
    if (!force && stat(path_join(path, sizeof path, out, "model.safetensors"), &sb) == 0) {
        sc_fail("%s already exists (use --force to overwrite)", path);
        goto fail;
    }
    sc_set_threads(0);
    sc_model m;
    model_create(&m, &cfg);
    model_init_weights(&m, (uint64_t)seed, std);
    rc = model_save(&m, out);
    int64_t n = m.nparams;
    model_free(&m);
    if (rc) goto fail;
    printf("wrote %s: preset %s, %lld parameters, seed %d\n", out, preset, (long long)n, seed);
    return 0;
fail:
    fprintf(stderr, "smallcoder init: %s\n", sc_error());
    return 1;
}
