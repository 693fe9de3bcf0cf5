/* kd_train.h — distillation for `smallcoder train`: the teacher rows of each training sequence, either read from
 * .kd files (--teacher-logits, aligned with the train shards by stream position) or computed on the fly by a
 * teacher model on the CPU (--teacher). Either one plugs into training through train/loss_hook.h (kd_provider.c). */
#ifndef SC_KD_TRAIN_H
#define SC_KD_TRAIN_H

#include <stdint.h>

#include "train/loss_hook.h"

typedef struct kd_train kd_train;

typedef train_kd_options kd_train_options; /* alpha, temperature, reverse, top_k (train/loss_hook.h) */

/* Offline: opens KD_DIR/<shard>.kd for every train shard of data_dir and checks each against its shard (counts,
 * tokenizer, header hash) and the student (vocabulary). Wraps train (a data_source over data_dir, without FIM):
 * every window it serves is remembered by stream position, in order, for the backend to fetch. */
int kd_train_open_logits(kd_train **out, batch_source *train, const char *data_dir, const char *kd_dir,
                         int student_vocab, const kd_train_options *o);
/* Online: loads the teacher model (same vocabulary; its tokenizer.json, when present, must hash to tok_hash). */
int kd_train_open_teacher(kd_train **out, const char *teacher_dir, int student_vocab, uint64_t tok_hash, int seq,
                          const kd_train_options *o);
/* The hook for backend_cpu_set_kd. */
train_kd kd_train_hook(kd_train *k);
/* A line describing the teacher for the log. */
const char *kd_train_describe(const kd_train *k);
/* Teacher logits per position (the .kd files' k, or --kd-top-k): what a device backend reserves room for. */
int kd_train_top_k(const kd_train *k);
void kd_train_close(kd_train *k);

#endif
