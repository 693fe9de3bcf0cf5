/* loss_hook.h — how distillation plugs into `smallcoder train` while train/ knows nothing of it: a provider opens,
 * for one run, a source of teacher rows that the backends pull through train_kd (backend.h). distill/ provides
 * one (distill/kd_provider.h); the command layer (smallcoder.c) hands it to cmd_train. So the edge runs one way,
 * distill -> train, through this interface train/ owns. */
#ifndef SC_TRAIN_LOSS_HOOK_H
#define SC_TRAIN_LOSS_HOOK_H

#include <stdint.h>

#include "train/backend.h"
#include "train/batch.h"

typedef struct {
    float alpha, temperature;
    int reverse; /* --kd-loss reverse */
    int top_k;   /* online teacher only: logits kept per position */
} train_kd_options;

typedef struct train_kd_provider {
    /* --teacher-logits KD_DIR: teacher rows read from files aligned with data_dir's train shards; wraps train (a
     * data_source over data_dir, without FIM), whose windows it remembers by stream position. *out is the
     * provider's own state (NULL on failure; -1 and sc_error then). */
    int (*open_logits)(void **out, batch_source *train, const char *data_dir, const char *kd_dir, int student_vocab,
                       const train_kd_options *o);
    /* --teacher DIR: a teacher model computing the rows on the fly (tok_hash: the shards' tokenizer). */
    int (*open_teacher)(void **out, const char *teacher_dir, int student_vocab, uint64_t tok_hash, int seq,
                        const train_kd_options *o);
    train_kd (*hook)(void *k);               /* what the backend calls, per sequence */
    const char *(*describe)(const void *k);  /* the teacher, for the log */
    int (*top_k)(const void *k);             /* logits per position: what a device backend reserves */
    void (*close)(void *k);                  /* NULL is fine */
} train_kd_provider;

#endif
