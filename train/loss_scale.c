/* loss_scale.c — see loss_scale.h. */
#include "train/loss_scale.h"

void loss_scale_init(loss_scaler *s, int dynamic) {
    s->dynamic = dynamic;
    s->scale = dynamic ? LOSS_SCALE_INIT : 1.0f;
    s->good_steps = 0;
    s->skipped = 0;
    s->consecutive = 0;
}

int loss_scale_update(loss_scaler *s, int finite) {
    if (!finite) {
        s->skipped++;
        s->consecutive++;
        s->good_steps = 0;
        if (s->dynamic && s->scale * 0.5f >= LOSS_SCALE_MIN) s->scale *= 0.5f;
        return 0;
    }
    s->consecutive = 0;
    if (s->dynamic && ++s->good_steps >= LOSS_SCALE_GROWTH_INTERVAL) {
        s->good_steps = 0;
        if (s->scale * 2.0f <= LOSS_SCALE_MAX) s->scale *= 2.0f;
    }
    return 1;
}
