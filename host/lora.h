/* lora.h — a LoRA adapter over the linear layers of a Llama base, and its PEFT layout on disk
 * (adapter_config.json + adapter_model.safetensors), so adapters move between SmallCoder and PyTorch/PEFT.
 *
 * For a targeted projection y = x W^T (W [out, in]) the adapted layer is
 *     y = x W^T + scaling * dropout(x) A^T B^T,   A [r, in] ("lora_A"), B [out, r] ("lora_B"),
 *     scaling = lora_alpha / r   (PEFT's default; lora_alpha / sqrt(r) when use_rslora is true).
 * Dropout applies to the adapter's input only and only while training. A fresh adapter is PEFT's init: A
 * kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in)), B zero, so it starts as the base exactly.
 *
 * Tensor names are PEFT's saved names (the adapter name "default" removed):
 *     base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_{A,B}.weight
 *     base_model.model.model.layers.{i}.mlp.{gate,up,down}_proj.lora_{A,B}.weight
 * The weights live in one FP32 block laid out by an sc_param table under those names, so AdamW, gradient norms and
 * the optimizer file work on an adapter exactly as on a model. */
#ifndef SC_LORA_H
#define SC_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "host/config.h"
#include "host/model.h"

enum { LORA_Q, LORA_K, LORA_V, LORA_O, LORA_GATE, LORA_UP, LORA_DOWN, LORA_NTARGETS };
#define LORA_ALL_TARGETS ((1u << LORA_NTARGETS) - 1u)

/* "q_proj", ..., "down_proj": PEFT's target_modules names, indexed by LORA_Q... */
extern const char *const lora_module_names[LORA_NTARGETS];

typedef struct {
    int rank;                 /* r */
    float alpha;              /* lora_alpha */
    float dropout;            /* lora_dropout (training only) */
    int use_rslora;           /* scaling alpha/sqrt(r) instead of alpha/r */
    unsigned targets;         /* bit LORA_Q ... LORA_DOWN */
    char base[4096];          /* base_model_name_or_path ("" when unknown) */
    int nlayers;
    int in[LORA_NTARGETS], out[LORA_NTARGETS]; /* each target's Linear shape in the base */
    sc_param *table;          /* A then B for each (layer, targeted module), layers in order */
    int ntensors;
    int64_t nparams;
    float *params;
    int64_t *a_off, *b_off;   /* [nlayers * LORA_NTARGETS] offsets into a block, -1 when not targeted */
} sc_lora;

/* Parses a --lora-targets list: comma-separated short names (q,k,v,o,gate,up,down), PEFT names (q_proj, ...) or
 * "all" / "all-linear". The message names `what` (e.g. "--lora-targets"). */
int lora_parse_targets(const char *list, const char *what, unsigned *mask);
/* "q,k,v,o,gate,up,down" style list of a mask (short names). */
char *lora_targets_string(unsigned mask, char *buf, size_t n);

/* Lays out an adapter for base (zeroed weights). rank >= 1, targets != 0; base_name may be NULL. */
int lora_create(sc_lora *ad, const sc_config *base, int rank, float alpha, unsigned targets, float dropout,
                const char *base_name);
/* PEFT's initialisation: A ~ U(-1/sqrt(in), 1/sqrt(in)) from the seed, B = 0. */
void lora_init_weights(sc_lora *ad, uint64_t seed);
float lora_scaling(const sc_lora *ad);
/* A [rank, in] / B [out, rank] of (layer, target) in block (ad->params or any adapter-shaped block), or NULL when
 * that module is not targeted. */
float *lora_block_a(const sc_lora *ad, float *block, int layer, int target);
float *lora_block_b(const sc_lora *ad, float *block, int layer, int target);
static inline float *lora_a(const sc_lora *ad, int layer, int target) { return lora_block_a(ad, ad->params, layer, target); }
static inline float *lora_b(const sc_lora *ad, int layer, int target) { return lora_block_b(ad, ad->params, layer, target); }

/* Writes dir/adapter_config.json and dir/adapter_model.safetensors (F32), each atomically; dir must exist. */
int lora_save(const sc_lora *ad, const char *dir);
/* Writes any adapter-shaped block (weights, gradients) as one F32 safetensors file under the PEFT names. */
int lora_save_block(const sc_lora *ad, const float *block, const char *path);
/* Reads a PEFT adapter directory and checks it against the base config: every targeted module of every layer must
 * be there with the base's shapes, nothing else (no bias, DoRA, rank/alpha patterns or modules_to_save). When
 * base_name is given and the adapter names a base, their last path components must agree. Each refusal is one line
 * naming the file and the field or tensor. */
int lora_load(sc_lora *ad, const char *dir, const sc_config *base, const char *base_name);
/* Only adapter_config.json's hyperparameters (no weights, nothing laid out): for --plan and messages. */
int lora_read_config(const char *dir, int *rank, float *alpha, unsigned *targets, float *dropout, char *base,
                     size_t base_n);
void lora_free(sc_lora *ad);

/* W += scaling * B A for every targeted module of m (the merge; m must be the adapter's base shape). */
int lora_merge_into(const sc_lora *ad, sc_model *m);

#endif
