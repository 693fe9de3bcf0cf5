/* cuda_forward.c — see cuda_forward.h. */
#include "model/cuda_forward.h"

#include <stdio.h>
#include <time.h>

#include "host/clock.h"
#include "host/error.h"

#ifdef SC_HAVE_KERNELS
#include "host/cuda_model.h"

int cuda_forward_run(const sc_model *m, const int32_t *ids, const int32_t *targets, int T, float *logits,
                     float *grads, int repeat, double *loss_sum, int *counted) {
    cuda_model *cm;
    int flags = (grads ? CUDA_MODEL_GRADS : 0) | (logits ? CUDA_MODEL_LOGITS : 0);
    if (cuda_model_open(&cm, m, T, flags)) return -1;
    double best = 1e30;
    int rc = 0;
    for (int r = 0; r < repeat && !rc; r++) {
        double t0 = clock_now();
        rc = cuda_model_step(cm, ids, targets, T, logits, 0, 0.0f, loss_sum, counted);
        double dt = clock_now() - t0;
        if (dt < best) best = dt;
    }
    if (!rc)
        fprintf(stderr, "forward: %d tokens on cuda (%s), %.1f ms (%.1f tok/s), device arena %.1f MiB\n", T,
                cuda_model_device_name(cm), best * 1e3, T / best, cuda_model_device_bytes(cm) / 1048576.0);
    if (!rc && grads) {
        double t0 = clock_now(), loss2 = 0;
        int n2 = 0;
        rc = cuda_model_step(cm, ids, targets, T, NULL, 1, CUDA_MODEL_STATIC_SCALE / (float)*counted, &loss2, &n2);
        if (!rc) rc = cuda_model_read_grads(cm, grads);
        for (int64_t i = 0; !rc && i < m->nparams; i++) grads[i] *= 1.0f / CUDA_MODEL_STATIC_SCALE;
        if (!rc) fprintf(stderr, "forward+backward: %.1f ms\n", (clock_now() - t0) * 1e3);
    }
    cuda_model_close(cm);
    return rc;
}
#else
int cuda_forward_run(const sc_model *m, const int32_t *ids, const int32_t *targets, int T, float *logits,
                     float *grads, int repeat, double *loss_sum, int *counted) {
    (void)m, (void)ids, (void)targets, (void)T, (void)logits, (void)grads, (void)repeat, (void)loss_sum, (void)counted;
    return sc_fail("--device cuda: this build has no CUDA backend");
}
#endif
