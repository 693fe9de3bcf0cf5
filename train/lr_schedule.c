/* lr_schedule.c — see lr_schedule.h. Computed in double and rounded once, so every backend and every resumed run
 * gets the same float for the same step. */
#include "train/lr_schedule.h"

#include <math.h>

float lr_at(const lr_schedule *s, int64_t step) {
    if (step < 0) step = 0;
    if (s->warmup > 0 && step < s->warmup) return (float)((double)s->lr * (double)(step + 1) / (double)s->warmup);
    int64_t decay = s->total - s->warmup - 1; /* steps from the first after warmup to the last */
    if (decay <= 0) return s->lr; /* at most one step after warmup: nothing to decay over */
    double p = (double)(step - s->warmup) / (double)decay;
    if (p > 1) p = 1;
    return (float)((double)s->min_lr + ((double)s->lr - (double)s->min_lr) * 0.5 * (1.0 + cos(M_PI * p)));
}
