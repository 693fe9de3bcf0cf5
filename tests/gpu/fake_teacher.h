/* fake_teacher.h — a distillation teacher for the CUDA trainers' tests (test_train_backend.c, test_train_lora.c),
 * plugged into the train_kd hook: top-KD_K rows drawn from a hash of the sequence's ids, so every backend gets the
 * same rows for the same sequence; logits rounded to FP16 (what the device stores) and an lse with a fifth of the
 * mass in the tail. Sequences of up to FAKE_TEACHER_MAX_T tokens; the vocabulary must exceed 37 * KD_K. */
#ifndef SC_TESTS_FAKE_TEACHER_H
#define SC_TESTS_FAKE_TEACHER_H

#include <math.h>
#include <stdint.h>

#include "host/cpu/kd_loss.h"
#include "host/half.h"
#include "host/rng.h"

enum { KD_K = 8, FAKE_TEACHER_MAX_T = 64 };
typedef struct {
    int V;
    int32_t ids[FAKE_TEACHER_MAX_T * KD_K];
    float logits[FAKE_TEACHER_MAX_T * KD_K], lse[FAKE_TEACHER_MAX_T];
} fake_teacher;

static int fake_next(void *ctx, const int32_t *ids, int n, kd_targets *out) {
    fake_teacher *f = ctx;
    uint64_t h = 1469598103934665603ull;
    for (int t = 0; t < n; t++) h = (h ^ (uint64_t)ids[t]) * 1099511628211ull;
    sc_rng r;
    rng_seed(&r, h);
    for (int t = 0; t < n && t < FAKE_TEACHER_MAX_T; t++) {
        double z = 0;
        for (int i = 0; i < KD_K; i++) {
            f->ids[t * KD_K + i] = (ids[t] + 1 + 37 * i) % f->V; /* distinct: 37 * KD_K < V */
            f->logits[t * KD_K + i] = half_to_float(float_to_half((float)(2.0 * rng_normal(&r))));
            z += exp(f->logits[t * KD_K + i]);
        }
        f->lse[t] = (float)log(z * 1.25); /* a fifth of the mass in the tail */
    }
    *out = (kd_targets){KD_K, f->ids, f->logits, f->lse, 0.7f, 2.0f, 0};
    return n <= FAKE_TEACHER_MAX_T ? 0 : -1;
}

#endif
