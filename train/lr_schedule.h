/* lr_schedule.h — the learning rate of each optimizer step: linear warmup from lr/warmup to lr, then a cosine
 * decay to min_lr at the last step. A pure function of the step, so a resumed run needs only the step number. */
#ifndef SC_TRAIN_LR_SCHEDULE_H
#define SC_TRAIN_LR_SCHEDULE_H

#include <stdint.h>

typedef struct {
    float lr;            /* peak */
    float min_lr;        /* reached at the last step */
    int64_t warmup;      /* steps of linear warmup */
    int64_t total;       /* total optimizer steps of the run */
} lr_schedule;

/* LR for step (0-based): (step+1)/warmup * lr during warmup, then min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2
 * with p going from 0 after warmup to 1 at the last step. Steps past the end stay at min_lr. */
float lr_at(const lr_schedule *s, int64_t step);

#endif
