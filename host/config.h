/* config.h — the model configuration, mirroring HF LlamaConfig (config.json), and the built-in presets. */
#ifndef SC_CONFIG_H
#define SC_CONFIG_H

#include <stdint.h>

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
    int eos_token_id;   /* -1 when absent */
    char torch_dtype[16];  /* "float32", "float16", ... as in config.json (informational) */
} sc_config;

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
