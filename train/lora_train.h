/* lora_train.h — the LoRA side of `smallcoder train --lora RANK`: checking the LoRA options, loading the frozen
 * base (at --base-precision) and a fresh or resumed adapter. cmd_train.c calls these; everything after (trainer,
 * checkpoints, metrics) is shared with full training through the backend table (backend_lora.c). */
#ifndef SC_TRAIN_LORA_TRAIN_H
#define SC_TRAIN_LORA_TRAIN_H

#include "host/lora.h"
#include "host/model.h"
#include "train/train_options.h"

/* Checks the LoRA options of a run (rank, alpha, dropout, targets, base precision) before anything is loaded. */
int lora_train_check(const train_cli *o, unsigned *targets);
/* Loads the frozen base from dir and rounds it to --base-precision. */
int lora_train_load_base(sc_model *base, const char *dir, const train_cli *o);
/* A fresh adapter for base: PEFT's init from o->seed; base_dir is recorded as base_model_name_or_path (absolute). */
int lora_train_fresh(sc_lora *ad, const sc_model *base, const char *base_dir, const train_cli *o, unsigned targets);
/* --resume of a LoRA checkpoint: the base directory is --model when given, else the adapter's
 * base_model_name_or_path (out, 4096 bytes). */
int lora_train_base_dir(const char *ckpt, const train_cli *o, int model_given, char *out);
/* After the options are restored: refuses a --lora/--lora-targets on the command line that contradicts the
 * checkpoint's adapter (a run cannot change its adapter's shape). */
int lora_train_check_resumed(const sc_lora *ad, const train_cli *o, int rank_given, int targets_given,
                             const char *ckpt);

#endif
