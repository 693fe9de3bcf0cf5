/* spec_cli.h — the speculative-decoding options shared by complete, serve and infer-bench (--draft DIR,
 * --draft-max K, --draft-min-p P, --draft-threads N, --lookup N) and the loading of a draft model: its tokenizer
 * must be the target's (same hash), else one line says so. */
#ifndef SC_INFER_SPEC_CLI_H
#define SC_INFER_SPEC_CLI_H

#include "data/tokenizer.h"
#include "host/engine.h"
#include "infer/speculative.h"

typedef struct {
    const char *draft_dir;
    int draft_max, lookup, fixed_k;
    int draft_threads; /* CPU threads of the draft's forwards (0 = the model's --threads) */
    float draft_min_p;
    int plan;            /* --plan: print the device plan (target and draft) and exit */
    int64_t vram_budget; /* --vram-budget: device bytes the arenas must fit (0 = free memory, less the reserve) */
    sc_weights w;
    sc_engine e;
    int loaded;
} sc_spec_cli;

#define SPEC_CLI_DEFAULTS {.draft_max = 8, .draft_min_p = 0, .draft_threads = 1}
#define SPEC_CLI_ARGS(c)                                                                                           \
    {"draft", 0, SC_ARG_STR, &(c).draft_dir, "draft model directory (same tokenizer): speculative decoding", 0},    \
    {"draft-max", 0, SC_ARG_INT, &(c).draft_max, "most tokens drafted per step (adapts below it; default 8)", 0},  \
    {"draft-min-p", 0, SC_ARG_FLOAT, &(c).draft_min_p,                                                           \
     "the draft model stops when its top token is less probable than this (0: the adaptive K decides)", 0},         \
    {"lookup", 0, SC_ARG_INT, &(c).lookup, "draft by prompt lookup of the last N..1 tokens (0 = off)", 0},          \
    {"draft-fixed", 0, SC_ARG_INT, &(c).fixed_k, "always draft this many tokens: no adaptation (K sweeps)", 0},   \
    {"draft-threads", 0, SC_ARG_INT, &(c).draft_threads,                                                         \
     "CPU threads of the draft model's forwards (0 = --threads; 1: a small draft's forward is shorter than "    \
     "waking a second thread)", 0},                                                                         \
    {"plan", 0, SC_ARG_FLAG, &(c).plan, "print the CUDA device plan (the model's and the draft's rows) and exit", 0}, \
    {"vram-budget", 0, SC_ARG_BYTES, &(c).vram_budget,                                                           \
     "device memory the plan's arenas must fit, e.g. 1.75GiB (0 = the free memory less 64 MiB)", 0}

/* 1 when --draft or --lookup was given. */
int spec_cli_wanted(const sc_spec_cli *c);
/* Checks the options, loads and opens the draft model (when --draft) with the target's engine options, and fills
 * o. tok: the target's tokenizer (NULL: compare the draft's tokenizer.json with target_dir's when both exist, and
 * the vocabulary size always). */
int spec_cli_open(sc_spec_cli *c, const char *target_dir, const sc_tokenizer *tok, const sc_weights *target,
                  const sc_engine_opts *eo, sc_spec_opts *o);
void spec_cli_close(sc_spec_cli *c);

/* spec_plan.c: one device plan for the model and its draft. Before the model's engine opens: the draft's CUDA
 * arena (its plan at eo's context and sessions) goes to eo->reserve_bytes, so that the model's CUDA engine decides
 * --precision auto on what the draft leaves and refuses, in one line, a pair that does not fit. No-op without
 * --draft; -1 when the draft's config cannot be read. */
int spec_plan_reserve(const sc_spec_cli *c, sc_engine_opts *eo);
/* --plan: prints the plan's rows (each model's precision, weights, KV caches, scratch, arena; the CUDA context;
 * the total) against --vram-budget, or the device's free memory, or without a device the 2 GiB card DESIGN.md
 * plans for. 0 when it fits; -1 (sc_error) when it does not, or in a build without CUDA. */
int spec_plan_print(const sc_spec_cli *c, const char *target_dir, const sc_weights *target, const sc_engine_opts *eo);

#endif
