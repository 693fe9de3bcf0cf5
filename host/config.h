/* config.h — the model configuration, mirroring HF LlamaConfig (config.json), and the built-in presets. */
#ifndef SC_CONFIG_H
#define SC_CONFIG_H

#include <stdint.h>

#define SC_MAX_EOS 8

typedef struct {
    int hidden_size;
    int intermediate_size;
    int num_hidden_layers;
    int num_attention_heads;
    int num_key_value_heads;
    int head_dim;
    int max_position_embeddings;
    int vocab_size;
    double rms_norm_eps;
    double rope_theta;
    int tie_word_embeddings;
    int bos_token_id;   /* -1 when absent */
    int eos_token_id;   /* -1 when absent; the first of eos_ids */
    int eos_ids[SC_MAX_EOS]; /* every end id: config.json's eos_token_id (int or list) + generation_config.json's */
    int n_eos;
    char torch_dtype[16];  /* "float32", "float16", ... as in config.json (informational) */
    /* Llama-family variants of published checkpoints. model_type is "llama", "qwen2" or "mistral"; the math is
     * the same Llama block, only the optional biases differ (qwen2: q/k/v; llama attention_bias: q/k/v/o). */
    char model_type[16];
    int qkv_bias, o_bias, mlp_bias;
    int rope_scaling;           /* SC_ROPE_NONE, SC_ROPE_LINEAR or SC_ROPE_LLAMA3 */
    double rope_factor;         /* linear and llama3 */
    double rope_low_freq_factor, rope_high_freq_factor; /* llama3 */
    int rope_original_max_pos;  /* llama3: original_max_position_embeddings */
    int sliding_window;         /* kept for config_save; 0 when absent (never smaller than the context) */
} sc_config;

enum { SC_ROPE_NONE = 0, SC_ROPE_LINEAR = 1, SC_ROPE_LLAMA3 = 2 };

/* RoPE inverse frequencies after rope_scaling, as HF computes them (float32): inv_freq[i] for i < head_dim/2. */
void config_rope_inv_freq(const sc_config *cfg, float *inv_freq);
/* 1 when the model has any bias (q/k/v, o, or the MLP's). */
int config_has_biases(const sc_config *cfg);
/* Fills cfg->eos_ids from dir/generation_config.json (int or list) when that file exists; -1 on a bad file. */
int config_load_generation(sc_config *cfg, const char *dir);

/* Fills cfg from a preset name ("tiny", "mini", "small", "304m"); returns -1 (sc_error) for an unknown name. */
int config_preset(sc_config *cfg, const char *name);
/* Comma-separated list of preset names, for --help. */
const char *config_preset_names(void);

/* Checks internal consistency (heads divide, head_dim even, ...); the message names the field. */
int config_validate(const sc_config *cfg, const char *path);

/* config.json I/O (cJSON). load validates; save writes atomically (temp file + rename). */
int config_load(sc_config *cfg, const char *path);
int config_save(const sc_config *cfg, const char *path);

/* Exact number of parameters (tied embeddings counted once). */
int64_t config_param_count(const sc_config *cfg);

#endif
