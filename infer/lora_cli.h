/* lora_cli.h — the LoRA options of complete and serve, as llama.cpp spells them: --lora [NAME=]DIR (scale 1) and
 * --lora-scaled [NAME=]DIR:SCALE, each repeatable (or comma-separated); adapter i is the i-th given. The adapters
 * (PEFT directories, host/lora.h) are loaded and checked against the base, then handed to the engine unmerged. */
#ifndef SC_INFER_LORA_CLI_H
#define SC_INFER_LORA_CLI_H

#include "host/args.h"
#include "host/engine.h"

typedef struct {
    sc_arg_list args;             /* --lora and --lora-scaled values, in command-line order */
    int n;                        /* adapters loaded */
    sc_lora ad[ENGINE_LORA_MAX];
    const sc_lora *ptr[ENGINE_LORA_MAX]; /* &ad[i]: what sc_engine_opts.lora takes */
    char name[ENGINE_LORA_MAX][128];
    char dir[ENGINE_LORA_MAX][4096];
    sc_lora_set scales;           /* 1 for --lora, SCALE for --lora-scaled */
} sc_lora_cli;

#define LORA_CLI_ARGS(c)                                                                                           \
    {"lora", 0, SC_ARG_LIST, &(c).args,                                                                            \
     "LoRA adapter directory (PEFT), applied unmerged at scale 1; [NAME=]DIR, repeatable", 0},                     \
    {"lora-scaled", 0, SC_ARG_LIST, &(c).args, "LoRA adapter at scale SCALE: [NAME=]DIR:SCALE, repeatable", 0}

/* Loads every adapter given (none: nothing to do) for the base of config c in model_dir (its name checked against
 * the adapter's base_model_name_or_path when the adapter names one). One line on an error, nothing left loaded. */
int lora_cli_open(sc_lora_cli *c, const sc_config *base, const char *model_dir);
/* "2 LoRA adapters: a (DIR, scale 1), b (DIR, scale 0.5)" into buf, for the commands' summary line */
const char *lora_cli_describe(const sc_lora_cli *c, const sc_lora_set *scales, char *buf, size_t n);
void lora_cli_close(sc_lora_cli *c);
/* --plan of complete and serve: the memory of base + adapters + KV (n_seqs caches of n_ctx positions) on the CPU
 * engine and, in a build with CUDA kernels, the CUDA engine's arena for INT8 and FP16 weights, printed to stdout;
 * no device is opened. */
void lora_cli_plan(const sc_lora_cli *c, const sc_weights *w, const char *model_dir, int n_ctx, int n_seqs,
                   int kv_type);

#endif
