/* model_steps.h — the CUDA model's side of the model tests (test_model, test_model_open, test_model_kd), written
 * once: opening it with a failed check when it cannot be had, and the CE steps whose loss, logits and gradients the
 * tests compare with the CPU model's. */
#ifndef SC_TESTS_GPU_MODEL_STEPS_H
#define SC_TESTS_GPU_MODEL_STEPS_H

#include <stdio.h>

#include "host/cuda_model.h"
#include "host/error.h"
#include "tests/testutil.h"

/* cuda_model_open; when it fails, prints why, fails the check "cuda_model_open" and returns -1 */
static inline int gt_model_open(cuda_model **cm, const sc_model *m, int T, int flags) {
    if (!cuda_model_open(cm, m, T, flags)) return 0;
    printf("cuda_model_open: %s\n", sc_error());
    tu_check("cuda_model_open", 1.0, 0.0);
    return -1;
}

/* On cm (opened with CUDA_MODEL_GRADS | CUDA_MODEL_LOGITS): a forward into glogits with the summed loss *gloss and
 * the counted positions *gcounted, then two gradient steps of gscale * loss from zeroed gradients, read into g1 and
 * g2 (the same run twice: the tests check them bit-identical). Returns 0, or non-zero after printing sc_error(). */
static inline int gt_model_ce_steps(cuda_model *cm, const int32_t *ids, const int32_t *tg, int T, float gscale,
                                    float *glogits, double *gloss, int *gcounted, float *g1, float *g2) {
    double l2 = 0;
    int c2 = 0;
    int rc = cuda_model_step(cm, ids, tg, T, glogits, 0, 0.0f, gloss, gcounted);
    rc |= cuda_model_step(cm, ids, tg, T, NULL, 1, gscale, &l2, &c2);
    rc |= cuda_model_read_grads(cm, g1);
    cuda_model_zero_grads(cm);
    rc |= cuda_model_step(cm, ids, tg, T, NULL, 1, gscale, &l2, &c2);
    rc |= cuda_model_read_grads(cm, g2);
    if (rc) printf("cuda_model_step: %s\n", sc_error());
    return rc;
}

#endif
