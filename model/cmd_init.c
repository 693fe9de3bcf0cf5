/* cmd_init.c — `smallcoder init`: a fresh model directory from a preset with HF's initialisation, optionally
 * on another model's tokenizer (a student for that teacher: same ids, so its logits distil). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host/args.h"
#include "host/command.h"
#include "model/commands_model.h"
#include "host/error.h"
#include "host/fileio.h"
#include "host/model.h"

/* The vocabulary a tokenizer.json needs: 1 + the largest id in model.vocab and added_tokens (read here with cJSON:
 * only the ids are needed, not the BPE). *eos gets the id of a special end token when there is one. */
static int tokenizer_vocab_size(const char *path, int *vocab, int *eos) {
    char *text;
    size_t len;
    if (file_read_all(path, &text, &len)) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *model = root ? cJSON_GetObjectItemCaseSensitive(root, "model") : NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(model, "vocab"), *e;
    if (!cJSON_IsObject(v)) {
        cJSON_Delete(root);
        return sc_fail("%s: not a tokenizer.json with model.vocab", path);
    }
    int top = -1;
    *eos = -1;
    cJSON_ArrayForEach(e, v) if (cJSON_IsNumber(e) && e->valuedouble > top && e->valuedouble < 1e8) top = (int)e->valuedouble;
    static const char *const ends[] = {"<|endoftext|>", "<｜end▁of▁sentence｜>", "<|end_of_text|>", "</s>"};
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "added_tokens")) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id"), *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble >= 1e8) continue;
        if (id->valuedouble > top) top = (int)id->valuedouble;
        for (size_t k = 0; k < sizeof ends / sizeof ends[0] && cJSON_IsString(c); k++)
            if (*eos < 0 && strcmp(c->valuestring, ends[k]) == 0) *eos = (int)id->valuedouble;
    }
    cJSON_Delete(root);
    if (top < 0) return sc_fail("%s: the tokenizer has no tokens", path);
    *vocab = top + 1;
    return 0;
}

#define INIT_MIN_VOCAB 262

int cmd_init(int argc, char **argv) {
    const char *preset = NULL, *out = NULL, *tokenizer = NULL;
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
        {"tokenizer", 0, SC_ARG_STR, &tokenizer,
         "build on this tokenizer.json, or on a teacher model DIR's (its tokenizer.json and vocab_size, padded rows "
         "included, so its logits distil): copied into --out",
         0},
        {"force", 'f', SC_ARG_FLAG, &force, "overwrite an existing model in --out", 0},
    };
    sc_cli cli = {"smallcoder init", "--preset P --out DIR [options]",
                  "Writes DIR/config.json and DIR/model.safetensors (F32): every matrix drawn from N(0, std),\n"
                  "every norm weight 1, deterministic for a seed. --tokenizer T.json sizes the vocabulary to T and\n"
                  "copies it, so the model can be distilled from a teacher that uses T.",
                  args, sizeof args / sizeof args[0], 0, 0};
    static const sc_arg_range ranges[] = {{"std", 0, 10}, {"layers", 0, 1024}, {"vocab-size", 0, 4194304}};
    static const int all_cores = 0;
    sc_command cmd = {.cli = &cli, SC_COMMAND_RANGES(ranges), .threads = &all_cores};
    if (sc_command_parse(&cmd, argc, argv)) return cmd.status;
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
    int tok_vocab = 0, tok_eos = -1;
    char tpath[4096];
    struct stat tsb;
    sc_config teacher;
    int from_model = tokenizer && stat(tokenizer, &tsb) == 0 && S_ISDIR(tsb.st_mode);
    if (from_model) { /* a teacher directory: its vocabulary size (checkpoints pad it past the tokenizer) */
        if (model_config_load(&teacher, tokenizer, NULL)) goto fail;
        tokenizer = path_join(tpath, sizeof tpath, tokenizer, "tokenizer.json");
    }
    if (tokenizer) {
        if (tokenizer_vocab_size(tokenizer, &tok_vocab, &tok_eos)) goto fail;
        if (from_model && teacher.vocab_size < tok_vocab) {
            sc_fail("%s needs %d ids but the teacher's vocab_size is %d", tokenizer, tok_vocab, teacher.vocab_size);
            goto fail;
        }
        if (from_model) tok_vocab = teacher.vocab_size;
        if (vocab && vocab < tok_vocab) {
            sc_fail("--vocab-size %d is smaller than %s needs (%d)", vocab, tokenizer, tok_vocab);
            goto fail;
        }
        if (!vocab) cfg.vocab_size = tok_vocab;
        cfg.eos_token_id = tok_eos;
        if (tok_eos >= 0) cfg.n_eos = 1, cfg.eos_ids[0] = tok_eos;
        if (from_model) { /* the teacher's end and start ids, which its tokenizer's names may not reveal */
            cfg.bos_token_id = teacher.bos_token_id, cfg.eos_token_id = teacher.eos_token_id, cfg.n_eos = teacher.n_eos;
            memcpy(cfg.eos_ids, teacher.eos_ids, sizeof cfg.eos_ids);
        }
    }
    if (config_validate(&cfg, "--preset/--layers/--vocab-size")) goto fail;
    char path[4096];
    struct stat sb;
    if (!force && stat(path_join(path, sizeof path, out, "model.safetensors"), &sb) == 0) {
        sc_fail("%s already exists (use --force to overwrite)", path);
        goto fail;
    }
    sc_command_setup(&cmd); /* no device: it cannot fail */
    sc_model m;
    model_create(&m, &cfg);
    model_init_weights(&m, (uint64_t)seed, std);
    int rc = model_save(&m, out);
    int64_t n = m.nparams;
    model_free(&m);
    if (!rc && tokenizer) { /* byte for byte, so its hash (checked by distillation) is the teacher's */
        char *text;
        size_t len;
        rc = file_read_all(tokenizer, &text, &len);
        if (!rc) {
            rc = atomic_write_file(path_join(path, sizeof path, out, "tokenizer.json"), text, len);
            free(text);
        }
    }
    if (rc) goto fail;
    printf("wrote %s: preset %s, %lld parameters, seed %d%s%s (vocabulary %d)\n", out, preset, (long long)n, seed,
           tokenizer ? ", tokenizer " : "", tokenizer ? tokenizer : "", cfg.vocab_size);
    return 0;
fail:
    return sc_command_fail(&cmd);
}
