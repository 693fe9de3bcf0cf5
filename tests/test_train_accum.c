/* test_train_accum.c — gradient accumulation is exact: K micro-batches of B give the gradient of the mean loss
 * over all K*B windows (grad_scale = 1/(counted tokens of the whole step)), equal to one batch of K*B and to an
 * independent per-window reference, also when windows carry different numbers of counted targets. Also: an
 * injected inf skips the step, leaves the weights alone and halves the dynamic loss scale. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/check.h"
#include "host/config.h"
#include "host/error.h"
#include "host/model.h"
#include "host/model_cpu.h"
#include "host/threads.h"
#include "tests/train_synth.h"
#include "train/trainer.h"

enum { T = 24, WINDOWS = 8, IGNORE = 5 };

typedef struct {
    float *grads;  /* copy of the accumulated gradients of step 0 */
    int64_t n;
    int64_t poison_step;
} hook_ctx;

static void capture(void *c, train_backend *b, int64_t step) {
    hook_ctx *h = c;
    float *g = b->host_grads(b);
    if (step == 0 && h->grads) memcpy(h->grads, g, sizeof(float) * (size_t)h->n);
    if (step == h->poison_step) g[h->n / 2] = INFINITY;
}

static train_config base_config(int B, int K) {
    train_config c;
    memset(&c, 0, sizeof c);
    c.seq = T, c.micro_batch = B, c.grad_accum = K;
    c.sched = (lr_schedule){1e-3f, 1e-4f, 0, 10};
    c.weight_decay = 0.1f, c.clip = 1.0f, c.beta1 = 0.9f, c.beta2 = 0.95f, c.eps = 1e-8f;
    return c;
}

/* What a trainer of these tests runs on: model m (weights from wseed), its CPU backend b and the synthetic windows
 * of dseed (targets equal to ignore are not counted) */
static void accum_setup(const sc_config *cfg, uint64_t wseed, uint64_t dseed, int32_t ignore, sc_model *m,
                        train_backend *b, batch_source *src) {
    model_create(m, cfg);
    model_init_weights(m, wseed, 0.05f);
    backend_cpu_open(b, m, T, 1);
    synth_open(src, dseed, T, (uint32_t)cfg->vocab_size, ignore);
}

/* One step with (B, K) from the same windows; returns the captured gradients and the loss. */
static float *step_grads(const sc_config *cfg, int B, int K, double *loss, float **params_after) {
    sc_model m;
    train_backend b;
    batch_source src;
    accum_setup(cfg, 7, 3, IGNORE, &m, &b, &src);
    hook_ctx h = {sc_malloc(sizeof(float) * (size_t)m.nparams), m.nparams, -1};
    train_config c = base_config(B, K);
    c.after_accumulate = capture, c.hook_ctx = &h;
    trainer t;
    CHECK(trainer_open(&t, &b, &src, NULL, &c, NULL) == 0);
    CHECK(trainer_step(&t) == 0);
    *loss = t.st.loss;
    *params_after = sc_malloc(sizeof(float) * (size_t)m.nparams);
    memcpy(*params_after, m.params, sizeof(float) * (size_t)m.nparams);
    trainer_close(&t);
    batch_source_close(&src);
    backend_close(&b);
    model_free(&m);
    return h.grads;
}

static double max_abs(const float *a, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

static double max_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static void test_accumulation(void) {
    sc_config cfg = synth_config();
    sc_model m;
    model_create(&m, &cfg);
    model_init_weights(&m, 7, 0.05f);
    int64_t n = m.nparams;
    /* independent reference: per-window gradient of the loss SUM, added in double, divided by the total count */
    batch_source src;
    synth_open(&src, 3, T, (uint32_t)cfg.vocab_size, IGNORE);
    int32_t w[T + 1], ids[T], tg[T];
    double *ref = calloc((size_t)n, sizeof(double)), loss_sum = 0;
    float *g = sc_calloc((size_t)n, sizeof(float));
    float *per_mb = sc_calloc((size_t)n, sizeof(float)); /* the wrong normalisation: mean per window, averaged */
    sc_cpu_acts acts;
    cpu_acts_create(&acts, &cfg, T);
    int64_t total = 0, counts[WINDOWS];
    for (int i = 0; i < WINDOWS; i++) {
        src.next(src.ctx, w);
        counts[i] = batch_split(w, 1, T, IGNORE, ids, tg);
        total += counts[i];
        memset(g, 0, sizeof(float) * (size_t)n);
        int k;
        loss_sum += model_cpu_step(&m, &acts, ids, tg, T, NULL, g, 1.0f, &k);
        CHECK(k == counts[i]);
        for (int64_t j = 0; j < n; j++) ref[j] += g[j], per_mb[j] += g[j] / (float)counts[i] / WINDOWS;
    }
    int differ = 0;
    for (int i = 1; i < WINDOWS; i++) differ |= counts[i] != counts[0];
    CHECK(differ); /* otherwise the test could not tell the normalisations apart */
    float *reff = sc_malloc(sizeof(float) * (size_t)n);
    for (int64_t j = 0; j < n; j++) reff[j] = (float)(ref[j] / (double)total);
    double scale = max_abs(reff, n);
    CHECK(scale > 0);
    CHECK(max_diff(per_mb, reff, n) > 1e-3 * scale); /* the wrong one is detectably wrong */

    const int shapes[][2] = {{1, 8}, {8, 1}, {2, 4}, {4, 2}};
    float *p0 = NULL;
    for (int s = 0; s < 4; s++) {
        double loss;
        float *params;
        float *gs = step_grads(&cfg, shapes[s][0], shapes[s][1], &loss, &params);
        double d = max_diff(gs, reff, n);
        if (d > 1e-5 * scale)
            fprintf(stderr, "B=%d K=%d: gradient differs from the reference by %g (scale %g)\n", shapes[s][0],
                    shapes[s][1], d, scale);
        CHECK(d <= 1e-5 * scale);
        CHECK(fabs(loss - loss_sum / (double)total) < 1e-6 * fabs(loss));
        if (!p0) p0 = params;
        else {
            CHECK(max_diff(params, p0, n) < 1e-6);
            free(params);
        }
        free(gs);
    }
    free(p0), free(ref), free(g), free(per_mb), free(reff);
    cpu_acts_free(&acts);
    batch_source_close(&src);
    model_free(&m);
}

static void test_inf_skips_and_halves(void) {
    sc_config cfg = synth_config();
    sc_model m;
    train_backend b;
    batch_source src;
    accum_setup(&cfg, 1, 5, -1, &m, &b, &src);
    hook_ctx h = {NULL, m.nparams, 2};
    train_config c = base_config(2, 2);
    c.dynamic_loss_scale = 1;
    c.after_accumulate = capture, c.hook_ctx = &h;
    trainer t;
    CHECK(trainer_open(&t, &b, &src, NULL, &c, NULL) == 0);
    CHECK(t.st.scaler.scale == 65536.0f);
    float *before = sc_malloc(sizeof(float) * (size_t)m.nparams);
    for (int s = 0; s < 4; s++) {
        memcpy(before, m.params, sizeof(float) * (size_t)m.nparams);
        CHECK(trainer_step(&t) == 0);
        int same = memcmp(before, m.params, sizeof(float) * (size_t)m.nparams) == 0;
        if (s == 2) {
            CHECK(t.st.skipped == 1);
            CHECK(same);
            CHECK(t.st.scaler.scale == 32768.0f);
            CHECK(t.st.scaler.skipped == 1);
            CHECK(t.st.updates == 2);
            CHECK(isinf(t.st.grad_norm));
        } else {
            CHECK(t.st.skipped == 0);
            CHECK(!same);
            CHECK(isfinite(t.st.loss));
        }
    }
    CHECK(t.st.updates == 3 && t.st.step == 4);
    /* the gradients of the skipped step did not leak into the next one: they were zeroed */
    float *g = b.host_grads(&b);
    CHECK(max_abs(g, m.nparams) == 0);
    free(before);
    trainer_close(&t);
    batch_source_close(&src);
    backend_close(&b);
    model_free(&m);
}

/* A loss-scaled step gives the same update as an unscaled one (scale is a power of two: exact in FP32). */
static void test_scaled_equals_unscaled(void) {
    sc_config cfg = synth_config();
    float *res[2];
    for (int dyn = 0; dyn < 2; dyn++) {
        sc_model m;
        train_backend b;
        batch_source src;
        accum_setup(&cfg, 9, 11, -1, &m, &b, &src);
        train_config c = base_config(1, 3);
        c.dynamic_loss_scale = dyn;
        trainer t;
        CHECK(trainer_open(&t, &b, &src, NULL, &c, NULL) == 0);
        for (int s = 0; s < 3; s++) CHECK(trainer_step(&t) == 0);
        res[dyn] = sc_malloc(sizeof(float) * (size_t)m.nparams);
        memcpy(res[dyn], m.params, sizeof(float) * (size_t)m.nparams);
        int64_t n = m.nparams;
        trainer_close(&t);
        batch_source_close(&src);
        backend_close(&b);
        model_free(&m);
        if (dyn) {
            CHECK(max_diff(res[0], res[1], n) < 1e-6);
            free(res[0]), free(res[1]);
        }
    }
}

int main(void) {
    sc_set_threads(2);
    test_accumulation();
    test_inf_skips_and_halves();
    test_scaled_equals_unscaled();
    return check_result("test_train_accum");
}
