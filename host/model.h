/* model.h — the SmallCoder/Llama parameters: one contiguous FP32 block laid out by a table of HF-named tensors
 * (the same layout serves gradients and optimizer state), loading from and saving to an HF model directory. */
#ifndef SC_MODEL_H
#define SC_MODEL_H

#include <stdint.h>

#include "host/config.h"
#include "host/safetensors.h"
#include "host/safetensors_set.h"

typedef struct {
    char name[80];     /* HF name, e.g. model.layers.3.self_attn.q_proj.weight */
    int ndim;
    int64_t shape[2];
    int64_t offset;    /* in floats from the start of the block */
    int64_t numel;
} sc_param;

/* Pointers into a parameter-shaped block (weights, gradients, Adam moments ...). */
typedef struct {
    float *attn_norm, *wq, *wk, *wv, *wo, *mlp_norm, *wgate, *wup, *wdown;
    /* biases ([rows] of their matrix), NULL when the config has none (qkv_bias, o_bias, mlp_bias) */
    float *bq, *bk, *bv, *bo, *bgate, *bup, *bdown;
} sc_layer_view;

typedef struct {
    float *embed;       /* [V, C] */
    float *lm_head;     /* [V, C]; == embed when tied */
    float *final_norm;  /* [C] */
    sc_layer_view *layers;
    int nlayers;
} sc_view;

typedef struct {
    sc_config cfg;
    sc_param *table;
    int ntensors;
    int64_t nparams;   /* floats in the block */
    float *params;
    sc_view w;
} sc_model;

/* The tensor table of a config, in HF order; *table is malloc'd. Returns the number of tensors. The first
 * 3 + 9 * layers entries are always embed, per layer (attn_norm q k v o mlp_norm gate up down), final norm,
 * [lm_head]; the biases of configs that have them come after, layer by layer, so those positions never move. */
int model_param_table(const sc_config *cfg, sc_param **table, int64_t *total);
/* Sets v's pointers into base (a block of model->nparams floats). v->layers is malloc'd: view_free. */
void model_view(const sc_model *m, float *base, sc_view *v);
void view_free(sc_view *v);

/* Allocates parameters for cfg (zeroed). */
void model_create(sc_model *m, const sc_config *cfg);
/* HF initialisation: every matrix N(0, std), norms 1. Deterministic for a seed. */
void model_init_weights(sc_model *m, uint64_t seed, float std);
/* Loads dir/config.json (+ generation_config.json's end ids) and dir/model.safetensors or its shards
 * (F32/F16/BF16, converted tensor by tensor from the mappings), validating names and shapes. */
int model_load(sc_model *m, const char *dir);
/* dir/config.json + dir/generation_config.json (when present); cpath (optional, 4096 bytes) gets the config path. */
int model_config_load(sc_config *cfg, const char *dir, char *cpath);
/* Checks that the set holds exactly cfg's tensors with the right shapes; cpath names the config. */
int model_check_set(const sc_config *cfg, const st_set *s, const char *cpath);
/* Writes dir/config.json and dir/model.safetensors (F32), creating dir. */
int model_save(const sc_model *m, const char *dir);
/* Writes any parameter-shaped block (e.g. gradients) as a safetensors file under the HF names. */
int model_save_block(const sc_model *m, const float *block, const char *path);
void model_free(sc_model *m);

#endif
