/* checkpoint.h — training checkpoints: RUN_DIR/ckpt-<step>/ is an HF model directory (config.json,
 * model.safetensors, tokenizer.json when known) plus trainer_state.json and optimizer.safetensors (AdamW m and v,
 * FP32, under the HF names + ".exp_avg" / ".exp_avg_sq"). Saved into a temporary directory, every file fsynced,
 * renamed into place and the parent fsynced, so a crash at any moment leaves either the old set of checkpoints or
 * the new one, never a half-written ckpt-<step>. */
#ifndef SC_TRAIN_CHECKPOINT_H
#define SC_TRAIN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "host/lora.h"
#include "host/model.h"

/* Test hook: SMALLCODER_TEST_SLOW_SAVE=<ms> sleeps that long before each file of a save, so a test can kill the
 * trainer in the middle of one. */
#define CHECKPOINT_SLOW_SAVE_ENV "SMALLCODER_TEST_SLOW_SAVE"

typedef struct {
    const sc_model *model;      /* FP32 weights */
    const float *exp_avg;       /* AdamW m, nparams floats */
    const float *exp_avg_sq;    /* AdamW v */
    const char *state_json;     /* trainer_state.json contents */
    const char *tokenizer;      /* path of a tokenizer.json to copy in, or NULL */
    const sc_lora *lora;        /* LoRA run: the checkpoint holds this adapter in PEFT form (adapter_config.json +
                                 * adapter_model.safetensors, a directory PEFT loads as it is) instead of config.json
                                 * + model.safetensors, and exp_avg/exp_avg_sq are adapter-shaped */
} checkpoint_data;

/* Writes RUN_DIR/ckpt-<step> atomically, then keeps only the newest `keep` checkpoints (keep <= 0: all). A
 * directory already named ckpt-<step> is replaced (renamed aside, then deleted), never kept: a name must not
 * disagree with its content. step must be in [0, 2^40]. out receives the checkpoint's path. */
int checkpoint_save(const char *run_dir, int64_t step, const checkpoint_data *d, int keep, char *out, size_t n);

/* Resolves --resume: a checkpoint directory (has trainer_state.json) or a run directory (its newest ckpt-<step>).
 * ckpt receives the checkpoint path, run_dir (may be NULL) the directory holding it. */
int checkpoint_resolve(const char *path, char *ckpt, size_t n, char *run_dir, size_t rn);

/* The step in a checkpoint directory's last path component "ckpt-<digits>" (trailing slashes allowed), or -1. */
int64_t checkpoint_name_step(const char *path);

/* Steps of the complete checkpoints in run_dir, ascending (malloc'd; *count may be 0). */
int checkpoint_list(const char *run_dir, int64_t **steps, int *count);

/* Loads a checkpoint: the model (validated against its config.json), the moments (malloc'd, nparams floats each,
 * names and shapes checked against the model) and trainer_state.json's text (malloc'd). */
int checkpoint_load(const char *dir, sc_model *m, float **exp_avg, float **exp_avg_sq, char **state_json);

/* Loads a LoRA checkpoint: the adapter (validated against base, see lora_load), its moments (malloc'd, nparams
 * floats each) and trainer_state.json's text (malloc'd). 1 (no error set) when dir holds no adapter_config.json. */
int checkpoint_load_lora(const char *dir, const sc_config *base, const char *base_name, sc_lora *ad, float **exp_avg,
                         float **exp_avg_sq, char **state_json);
/* Whether dir holds adapter_config.json (a LoRA checkpoint). */
int checkpoint_is_lora(const char *dir);

/* Removes leftovers of saves that were interrupted: .tmp-ckpt-* and .trash-* directories, and temporary
 * metrics.jsonl / loss.svg files, in run_dir. */
void checkpoint_clean_temp(const char *run_dir);

/* rm -r of a directory tree (files and directories, no symlink following). */
int checkpoint_remove_tree(const char *path);

#endif
