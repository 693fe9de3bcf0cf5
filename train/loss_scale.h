/* loss_scale.h — dynamic loss scaling for FP16 training (DESIGN.md): the loss gradient is multiplied by `scale`
 * so small FP16 gradients do not flush to zero; a step whose gradients overflowed (inf/nan) is skipped and the
 * scale halved; after `growth_interval` clean steps in a row it doubles. FP32 training uses a static scale of 1,
 * but a non-finite gradient still skips the step instead of poisoning the weights. */
#ifndef SC_TRAIN_LOSS_SCALE_H
#define SC_TRAIN_LOSS_SCALE_H

#include <stdint.h>

#define LOSS_SCALE_INIT 65536.0f
#define LOSS_SCALE_GROWTH_INTERVAL 2000
#define LOSS_SCALE_MIN (1.0f / 65536.0f)
#define LOSS_SCALE_MAX 16777216.0f

typedef struct {
    float scale;
    int dynamic;
    int64_t good_steps;   /* clean steps since the last change */
    int64_t skipped;      /* steps skipped over the whole run */
    int64_t consecutive;  /* steps skipped in a row up to now (0 after a clean step; not in checkpoints) */
} loss_scaler;

void loss_scale_init(loss_scaler *s, int dynamic);
/* Called once per step with whether the gradients were finite. Returns 1 when the update should be applied,
 * 0 when the step is skipped; adjusts the scale for the next step. */
int loss_scale_update(loss_scaler *s, int finite);

#endif
