/* train_options.h — the options of `smallcoder train`: the table behind --help, the size-dependent defaults
 * (resolved once and recorded in trainer_state.json), and restoring a run's options on --resume, where options
 * given on the command line override the recorded ones. */
#ifndef SC_TRAIN_OPTIONS_H
#define SC_TRAIN_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "host/args.h"
#include "host/config.h"

typedef struct cJSON cJSON;

typedef struct {
    const char *data, *out, *preset, *model, *resume;
    const char *device, *placement, *precision, *tokenizer;
    int seq, micro_batch, grad_accum, warmup;
    float lr, min_lr, weight_decay, clip, fim_rate;
    int64_t steps, tokens, eval_tokens, vram_budget, stop_at;
    int eval_every, save_every, keep, seed, threads, plan, quiet, max_skips;
    const char *teacher_logits, *teacher, *kd_loss;   /* distillation (train/loss_hook.h) */
    float kd_alpha, kd_temperature;
    int kd_top_k;
    int lora;                                          /* LoRA rank (0 = full training) */
    float lora_alpha, lora_dropout;                    /* alpha 0 = 2 x rank */
    const char *lora_targets, *base_precision;
} train_cli;

enum { TRAIN_MAX_ARGS = 48 };

/* Largest step count (and step-like option) a run may have: 2^40, far beyond any real run, small enough that
 * every count stays exact in a double and in the ckpt-<step> names --keep parses. */
#define TRAIN_STEPS_MAX 1099511627776.0

typedef struct {
    sc_arg args[TRAIN_MAX_ARGS];
    int nargs;
    char given[TRAIN_MAX_ARGS];     /* option i appeared on the command line */
    char restored[TRAIN_MAX_ARGS];  /* option i was taken from state_path's "options" on --resume */
    char state_path[4200];          /* the trainer_state.json restored from ("" for a fresh run) */
} train_args;

/* Fills defaults and the option table; the sentinels (0 or -1 = "auto") are resolved by train_options_resolve. */
void train_options_init(train_cli *o, train_args *a);
/* Parses argv (records which options were given first: the parser compacts argv). 0 proceed, 1 help, 2 usage. */
int train_options_parse(train_cli *o, train_args *a, int argc, char **argv);
int train_option_given(const train_args *a, const char *name);
/* How an error names option `name`: "--lr" when typed, "RUN/ckpt-N/trainer_state.json: options.lr" when it
 * came from the checkpoint (so the user is not told to fix a flag they never gave). */
const char *train_option_where(const train_args *a, const char *name, char *buf, size_t n);

/* Resolves the automatic values for a model of cfg with train_tokens tokens in the train split:
 * seq = the model's context, grad-accum to the target tokens per step (train_tokens_per_step_target), lr by size,
 * min-lr = lr/10, steps = --tokens or one epoch, warmup = 5% of steps (at most 2000). */
int train_options_resolve(train_cli *o, const train_args *a, const sc_config *cfg, uint64_t train_tokens);
/* The documented default tokens per optimizer step for a model of nparams parameters. */
int64_t train_tokens_per_step_target(int64_t nparams);
/* LoRA runs: tokens per optimizer step and peak learning rate by default (a fine-tune on one repository) */
#define TRAIN_LORA_TOKENS_PER_STEP 16384
#define TRAIN_LORA_LR 1e-3f
float train_default_lr(int64_t nparams);

/* The options that define the run, as JSON (resolved values). */
cJSON *train_options_to_json(const train_cli *o, const train_args *a);
/* On resume: every recorded option that was not given on the command line is taken from j, within the bounds of
 * its flag (an error names path and the field). */
int train_options_restore(train_cli *o, train_args *a, const cJSON *j, const char *path);

#endif
