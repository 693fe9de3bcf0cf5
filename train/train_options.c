/* train_options.c — see train_options.h. Defaults suit an MX450 (2 GiB): micro-batch 1 and gradient accumulation
 * to about 0.5M tokens per step for the 304m model; smaller models take smaller steps (docs/training.md). */
#include "train/train_options.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "host/error.h"

/* options that are part of a run (recorded, restored on --resume); the rest are per invocation */
static const char *const recorded[] = {"data", "seq", "micro-batch", "grad-accum", "lr", "min-lr", "warmup",
                                       "weight-decay", "clip", "steps", "eval-every", "eval-tokens", "save-every",
                                       "keep", "seed", "precision", "placement", "tokenizer", "fim-rate",
                                       "teacher-logits", "teacher", "kd-alpha", "kd-temperature", "kd-loss",
                                       "kd-top-k", "lora", "lora-alpha", "lora-targets", "lora-dropout",
                                       "base-precision", NULL};

/* Bounds of the numeric options, for the command line and for the values restored from trainer_state.json */
static const sc_arg_range ranges[] = {
    {"fim-rate", -1, 1},          {"seq", 0, 1 << 20},           {"micro-batch", 1, 1 << 16},
    {"grad-accum", 0, 1 << 20},   {"lr", 0, 10},                 {"min-lr", -1, 10},
    {"warmup", -1, TRAIN_STEPS_MAX}, {"weight-decay", 0, 10},     {"clip", 0, 1e9},
    {"steps", 0, TRAIN_STEPS_MAX}, {"tokens", 0, 1e18},           {"eval-every", 0, TRAIN_STEPS_MAX},
    {"eval-tokens", 0, 1e15},     {"save-every", 0, TRAIN_STEPS_MAX}, {"keep", 0, 1e6},
    {"stop-at", 0, TRAIN_STEPS_MAX}, {"vram-budget", 0, 1e15},    SC_RANGE_THREADS,
    {"kd-alpha", 0, 1},           {"kd-temperature", 1e-3, 1e3}, {"kd-top-k", 1, 1 << 16},
    {"lora", 0, 65536},           {"lora-alpha", 0, 1e6},        {"lora-dropout", 0, 0.999},
};
#define NRANGES ((int)(sizeof ranges / sizeof ranges[0]))

void train_options_init(train_cli *o, train_args *a) {
    memset(o, 0, sizeof *o);
    memset(a, 0, sizeof *a);
    o->device = "auto", o->placement = "auto", o->precision = "auto";
    o->micro_batch = 1, o->min_lr = -1, o->fim_rate = -1, o->warmup = -1, o->weight_decay = 0.1f, o->clip = 1.0f;
    o->eval_every = 100, o->eval_tokens = 65536, o->save_every = 100, o->keep = 3;
    o->max_skips = 20;
    o->kd_alpha = 0.5f, o->kd_temperature = 2.0f, o->kd_loss = "forward", o->kd_top_k = 32;
    o->lora_targets = "q,k,v,o,gate,up,down", o->base_precision = "auto";
    const sc_arg t[] = {
        {"data", 'd', SC_ARG_STR, &o->data, "shard directory: train-*.tok (and val-*.tok for evaluation)", 0},
        {"out", 'o', SC_ARG_STR, &o->out, "run directory: checkpoints, metrics.jsonl, loss.svg", 0},
        {"preset", 'p', SC_ARG_STR, &o->preset, "start from fresh weights of a preset: tiny, mini, small, 304m", 0},
        {"model", 'm', SC_ARG_STR, &o->model, "start from an HF model directory (continued pretraining)", 0},
        {"tokenizer", 0, SC_ARG_STR, &o->tokenizer, "the shards' tokenizer.json: checked against them, copied into every checkpoint, used by FIM (default: DATA/tokenizer.json, which tokenize writes; else the model's or checkpoint's)", 0},
        {"fim-rate", 0, SC_ARG_FLOAT, &o->fim_rate, "fraction of documents rearranged for fill-in-the-middle (-1 = 0.5 when the tokenizer has FIM tokens, else 0)", 0},
        {"resume", 0, SC_ARG_STR, &o->resume, "continue a run: a run directory (newest ckpt-N) or a ckpt-N directory", 0},
        {"seq", 0, SC_ARG_INT, &o->seq, "tokens per training window (0 = the model's context length)", 0},
        {"micro-batch", 0, SC_ARG_INT, &o->micro_batch, "windows per forward/backward pass", 0},
        {"grad-accum", 0, SC_ARG_INT, &o->grad_accum, "micro-batches per optimizer step (0 = reach the model's tokens-per-step target)", 0},
        {"lr", 0, SC_ARG_FLOAT, &o->lr, "peak learning rate (0 = 3e-4 for >= 100M parameters, 1e-3 below)", 0},
        {"min-lr", 0, SC_ARG_FLOAT, &o->min_lr, "learning rate at the last step of the cosine (-1 = lr/10)", 0},
        {"warmup", 0, SC_ARG_INT, &o->warmup, "linear warmup steps (-1 = 5% of the steps, at most 2000)", 0},
        {"weight-decay", 0, SC_ARG_FLOAT, &o->weight_decay, "AdamW decoupled weight decay (matrices only, not norms)", 0},
        {"clip", 0, SC_ARG_FLOAT, &o->clip, "clip the global gradient norm to this (0 = off)", 0},
        {"steps", 0, SC_ARG_I64, &o->steps, "optimizer steps (0 = from --tokens, else one pass over the train split)", 0},
        {"tokens", 0, SC_ARG_I64, &o->tokens, "train on this many tokens (sets --steps; k/M/G suffixes)", 0},
        {"eval-every", 0, SC_ARG_INT, &o->eval_every, "validation loss every N steps (0 = never)", 0},
        {"eval-tokens", 0, SC_ARG_I64, &o->eval_tokens, "tokens of the val split per evaluation", 0},
        {"save-every", 0, SC_ARG_INT, &o->save_every, "checkpoint every N steps (0 = only at the end)", 0},
        {"keep", 0, SC_ARG_INT, &o->keep, "keep the newest N checkpoints (0 = all)", 0},
        {"stop-at", 0, SC_ARG_I64, &o->stop_at, "stop after this step with a checkpoint, keeping the schedule of --steps", 0},
        {"max-skipped-steps", 0, SC_ARG_INT, &o->max_skips, "stop with a checkpoint after N steps in a row skipped for inf/nan gradients (0 = never)", 0},
        {"device", 0, SC_ARG_STR, &o->device, "cpu, cuda or auto", 0},
        {"placement", 0, SC_ARG_STR, &o->placement, "CUDA memory placement: auto, full or offload", 0},
        {"precision", 0, SC_ARG_STR, &o->precision, "fp16 (CUDA mixed precision) or fp32 (auto = fp16 on CUDA, fp32 on the CPU)", 0},
        {"vram-budget", 0, SC_ARG_BYTES, &o->vram_budget, "device memory the plan must fit, e.g. 1.75GiB (0 = the free memory)", 0},
        {"plan", 0, SC_ARG_FLAG, &o->plan, "print the memory plan (CUDA full and offload, and CPU) and exit", 0},
        {"seed", 0, SC_ARG_INT, &o->seed, "seed of the initial weights and the data order", 0},
        SC_ARG_THREADS(&o->threads),
        {"quiet", 'q', SC_ARG_FLAG, &o->quiet, "no progress line", 0},
        {"teacher-logits", 0, SC_ARG_STR, &o->teacher_logits, "distil: directory of .kd teacher logits for the train shards (smallcoder teacher)", 0},
        {"teacher", 0, SC_ARG_STR, &o->teacher, "distil from a teacher model computed on the fly (CPU)", 0},
        {"kd-alpha", 0, SC_ARG_FLOAT, &o->kd_alpha, "distillation: loss = alpha*T^2*KL + (1-alpha)*CE", 0},
        {"kd-temperature", 0, SC_ARG_FLOAT, &o->kd_temperature, "distillation temperature T", 0},
        {"kd-loss", 0, SC_ARG_STR, &o->kd_loss, "forward = KL(teacher||student), reverse = KL(student||teacher)", 0},
        {"kd-top-k", 0, SC_ARG_INT, &o->kd_top_k, "teacher logits per position for --teacher", 0},
        {"lora", 0, SC_ARG_INT, &o->lora, "LoRA fine-tune of --model with adapters of this rank (0 = full training); checkpoints are PEFT adapter directories", 0},
        {"lora-alpha", 0, SC_ARG_FLOAT, &o->lora_alpha, "LoRA alpha: the adapter is scaled by alpha/rank (0 = 2 x rank)", 0},
        {"lora-targets", 0, SC_ARG_STR, &o->lora_targets, "linear layers that get adapters: q,k,v,o,gate,up,down (or all)", 0},
        {"lora-dropout", 0, SC_ARG_FLOAT, &o->lora_dropout, "dropout on the adapters' input while training", 0},
        {"base-precision", 0, SC_ARG_STR, &o->base_precision, "the frozen LoRA base: fp32, fp16 or int8 (per-row, dequantized) (auto = fp32 on the CPU, fp16 on CUDA; CUDA takes fp16 or int8)", 0},
    };
    a->nargs = (int)(sizeof t / sizeof t[0]);
    memcpy(a->args, t, sizeof t);
}

int train_options_parse(train_cli *o, train_args *a, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--") == 0) break;
        for (int k = 0; k < a->nargs; k++) {
            const sc_arg *g = &a->args[k];
            size_t n = strlen(g->name);
            if ((s[0] == '-' && s[1] == '-' && strncmp(s + 2, g->name, n) == 0 && (s[2 + n] == 0 || s[2 + n] == '=')) ||
                (g->shortname && s[0] == '-' && s[1] == g->shortname && s[2] == 0))
                a->given[k] = 1;
        }
    }
    sc_cli cli = {"smallcoder train", "--data SHARD_DIR --out RUN_DIR (--preset P | --model DIR) [options]\n"
                                      "       smallcoder train --resume RUN_DIR [options]",
                  "Trains the model on token shards (smallcoder tokenize) and writes RUN_DIR/ckpt-<step>/ (HF model\n"
                  "directory + trainer_state.json + optimizer.safetensors), RUN_DIR/metrics.jsonl and RUN_DIR/loss.svg.\n"
                  "A step trains on micro-batch x grad-accum windows of seq tokens; Ctrl-C saves a checkpoint and\n"
                  "exits, --resume continues with the identical loss sequence. FP32 on the CPU. docs/training.md.",
                  a->args, a->nargs, 0, 0};
    int npos;
    (void)o;
    int rc = sc_args_parse(&cli, argc, argv, &npos);
    return rc ? rc : sc_args_check_ranges(&cli, ranges, NRANGES);
}

int train_option_given(const train_args *a, const char *name) {
    for (int k = 0; k < a->nargs; k++)
        if (strcmp(a->args[k].name, name) == 0) return a->given[k];
    return 0;
}

static int was_restored(const train_args *a, const char *name) {
    for (int k = 0; k < a->nargs; k++)
        if (strcmp(a->args[k].name, name) == 0) return a->restored[k];
    return 0;
}

const char *train_option_where(const train_args *a, const char *name, char *buf, size_t n) {
    if (was_restored(a, name)) snprintf(buf, n, "%s: options.%s", a->state_path, name);
    else snprintf(buf, n, "--%s", name);
    return buf;
}

int64_t train_tokens_per_step_target(int64_t nparams) {
    if (nparams >= 100000000) return 524288; /* 0.5M: GPT-3/Llama practice at this size */
    if (nparams >= 10000000) return 65536;
    if (nparams >= 1000000) return 16384;
    return 4096;
}

float train_default_lr(int64_t nparams) { return nparams >= 100000000 ? 3e-4f : 1e-3f; }

int train_options_resolve(train_cli *o, const train_args *a, const sc_config *cfg, uint64_t train_tokens) {
    int64_t np = config_param_count(cfg);
    char w1[4300];
    if (o->seq <= 0) o->seq = cfg->max_position_embeddings;
    if (o->seq > cfg->max_position_embeddings)
        return sc_fail("%s %d is longer than the model's context (max_position_embeddings %d)",
                       train_option_where(a, "seq", w1, sizeof w1), o->seq, cfg->max_position_embeddings);
    if (o->micro_batch < 1)
        return sc_fail("%s must be at least 1, got %d", train_option_where(a, "micro-batch", w1, sizeof w1), o->micro_batch);
    int64_t per_pass = (int64_t)o->seq * o->micro_batch;
    if (o->grad_accum <= 0) {
        int64_t target = o->lora > 0 ? TRAIN_LORA_TOKENS_PER_STEP : train_tokens_per_step_target(np);
        int64_t k = (target + per_pass - 1) / per_pass;
        o->grad_accum = (int)(k < 1 ? 1 : k);
    }
    int64_t per_step = per_pass * o->grad_accum;
    if (o->lr <= 0) o->lr = o->lora > 0 ? TRAIN_LORA_LR : train_default_lr(np);
    if (o->min_lr < 0) o->min_lr = o->lr / 10;
    if (o->min_lr > o->lr) { /* the file named once, in front, when either value came from it */
        int rm = was_restored(a, "min-lr"), rl = was_restored(a, "lr");
        snprintf(w1, sizeof w1, "%s%s", rm || rl ? a->state_path : "", rm || rl ? ": " : "");
        return sc_fail("%s%smin-lr %g is above %slr %g", w1, rm ? "options." : "--", (double)o->min_lr,
                       rl ? "options." : "--", (double)o->lr);
    }
    if (o->steps <= 0) {
        int64_t tok = o->tokens > 0 ? o->tokens : (int64_t)train_tokens;
        o->steps = (tok + per_step - 1) / per_step;
        if (o->steps < 1) o->steps = 1;
        if ((double)o->steps > TRAIN_STEPS_MAX)
            return sc_fail("%lld steps of %lld tokens is over the limit of 2^40 steps", (long long)o->steps,
                           (long long)per_step);
    }
    if (o->warmup < 0) {
        int64_t w = o->steps / 20;
        o->warmup = (int)(w > 2000 ? 2000 : w);
    }
    if (o->weight_decay < 0 || o->clip < 0) return sc_fail("--weight-decay and --clip must not be negative");
    if (o->eval_every < 0 || o->save_every < 0 || o->keep < 0)
        return sc_fail("--eval-every, --save-every and --keep must not be negative");
    return 0;
}

static int is_recorded(const char *name) {
    for (int i = 0; recorded[i]; i++)
        if (strcmp(recorded[i], name) == 0) return 1;
    return 0;
}

cJSON *train_options_to_json(const train_cli *o, const train_args *a) {
    (void)o;
    cJSON *j = cJSON_CreateObject();
    for (int k = 0; k < a->nargs; k++) {
        const sc_arg *g = &a->args[k];
        if (!is_recorded(g->name)) continue;
        switch (g->type) {
        case SC_ARG_INT: cJSON_AddNumberToObject(j, g->name, *(int *)g->dst); break;
        case SC_ARG_I64:
        case SC_ARG_BYTES: cJSON_AddNumberToObject(j, g->name, (double)*(int64_t *)g->dst); break;
        case SC_ARG_FLOAT: cJSON_AddNumberToObject(j, g->name, (double)*(float *)g->dst); break;
        case SC_ARG_STR:
            if (*(const char **)g->dst) cJSON_AddStringToObject(j, g->name, *(const char **)g->dst);
            break;
        case SC_ARG_FLAG: cJSON_AddBoolToObject(j, g->name, *(int *)g->dst); break;
        case SC_ARG_ENUM: { /* by name, so a run's options read the same if the choices are reordered */
            const sc_enum *e = g->dst;
            cJSON_AddStringToObject(j, g->name, e->names[e->value]);
            break;
        }
        case SC_ARG_LIST: break; /* no repeatable option is recorded */
        }
    }
    return j;
}

/* The values option g may take: its flag's bounds, within what its C type holds (no out-of-range cast). */
static void restore_bounds(const sc_arg *g, double *lo, double *hi) {
    switch (g->type) {
    case SC_ARG_INT: *lo = -2147483647.0, *hi = 2147483647.0; break;
    case SC_ARG_FLOAT: *lo = -3.4e38, *hi = 3.4e38; break;
    default: *lo = -9007199254740992.0, *hi = 9007199254740992.0; break; /* int64: exact doubles only */
    }
    const sc_arg_range *r = sc_arg_range_find(ranges, NRANGES, g->name);
    if (r) {
        if (r->min > *lo) *lo = r->min;
        if (r->max < *hi) *hi = r->max;
    }
}

int train_options_restore(train_cli *o, train_args *a, const cJSON *j, const char *path) {
    (void)o;
    snprintf(a->state_path, sizeof a->state_path, "%s", path);
    for (int k = 0; k < a->nargs; k++) {
        const sc_arg *g = &a->args[k];
        if (!is_recorded(g->name) || a->given[k]) continue;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, g->name);
        if (!v) continue;
        if (g->type == SC_ARG_STR) {
            if (!cJSON_IsString(v)) return sc_fail("%s: options.%s is not a string", path, g->name);
            *(const char **)g->dst = v->valuestring; /* j outlives the run */
            a->restored[k] = 1;
            continue;
        }
        if (g->type == SC_ARG_ENUM) {
            sc_enum *e = g->dst;
            int i = cJSON_IsString(v) ? sc_enum_index(g->name, e->names, v->valuestring) : -1;
            if (i < 0) return sc_fail("%s: options.%s is not one of its choices", path, g->name);
            e->value = i;
            a->restored[k] = 1;
            continue;
        }
        if (g->type == SC_ARG_FLAG) {
            if (!cJSON_IsBool(v)) return sc_fail("%s: options.%s is not true or false", path, g->name);
            *(int *)g->dst = cJSON_IsTrue(v);
            a->restored[k] = 1;
            continue;
        }
        if (!cJSON_IsNumber(v)) return sc_fail("%s: options.%s is not a number", path, g->name);
        double lo, hi, x = v->valuedouble;
        restore_bounds(g, &lo, &hi);
        if (!(x >= lo && x <= hi))
            return sc_fail("%s: options.%s %.17g is out of range [%.15g, %.15g]", path, g->name, x, lo, hi);
        if (g->type != SC_ARG_FLOAT && x != floor(x))
            return sc_fail("%s: options.%s %.17g is not an integer", path, g->name, x);
        a->restored[k] = 1;
        switch (g->type) {
        case SC_ARG_INT: *(int *)g->dst = (int)v->valuedouble; break;
        case SC_ARG_I64:
        case SC_ARG_BYTES: *(int64_t *)g->dst = (int64_t)v->valuedouble; break;
        case SC_ARG_FLOAT: *(float *)g->dst = (float)v->valuedouble; break;
        default: break;
        }
    }
    return 0;
}
