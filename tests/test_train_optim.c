/* test_train_optim.c — AdamW against a naive double-precision transcription of torch.optim.AdamW, no decay on
 * 1-D tensors, bias correction, the warmup + cosine schedule, the thread-independent gradient norm, clipping and
 * the loss scaler's rules. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "train/adamw.h"
#include "tests/check.h"
#include "host/config.h"
#include "host/error.h"
#include "train/loss_scale.h"
#include "train/lr_schedule.h"
#include "host/model.h"
#include "host/rng.h"

static void test_adamw_matches_reference(void) {
    enum { N = 1000, STEPS = 5 };
    float p[N], g[N], m[N] = {0}, v[N] = {0};
    double rp[N], rm[N] = {0}, rv[N] = {0};
    sc_rng r;
    rng_seed(&r, 1);
    for (int i = 0; i < N; i++) p[i] = (float)rng_normal(&r), rp[i] = p[i];
    adamw_hparams h = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 0};
    float mul = 0.5f;
    for (int s = 1; s <= STEPS; s++) {
        for (int i = 0; i < N; i++) g[i] = (float)rng_normal(&r) * (i % 7 == 0 ? 1e-4f : 1.0f);
        h.t = s;
        adamw_update(p, g, m, v, N, mul, h.weight_decay, &h);
        /* torch.optim.AdamW (foreach=False): p *= 1-lr*wd; m, v; p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps) */
        double lr = h.lr, b1 = h.beta1, b2 = h.beta2, eps = h.eps, wd = h.weight_decay;
        double bc1 = 1 - pow(b1, s), bc2 = 1 - pow(b2, s);
        for (int i = 0; i < N; i++) {
            double gi = (double)g[i] * mul;
            rp[i] *= 1 - lr * wd;
            rm[i] = b1 * rm[i] + (1 - b1) * gi;
            rv[i] = b2 * rv[i] + (1 - b2) * gi * gi;
            rp[i] -= lr / bc1 * rm[i] / (sqrt(rv[i]) / sqrt(bc2) + eps);
        }
    }
    double worst = 0;
    for (int i = 0; i < N; i++) worst = fmax(worst, fabs(p[i] - rp[i]) / (fabs(rp[i]) + 1e-3));
    if (worst > 2e-6) fprintf(stderr, "adamw vs reference: relative error %g\n", worst);
    CHECK(worst <= 2e-6);
}

static void test_first_step_and_decay_mask(void) {
    sc_config cfg;
    config_preset(&cfg, "tiny");
    cfg.num_hidden_layers = 1, cfg.vocab_size = 64;
    sc_model mdl;
    model_create(&mdl, &cfg);
    model_init_weights(&mdl, 3, 0.02f);
    int64_t n = mdl.nparams;
    float *before = sc_malloc(sizeof(float) * (size_t)n), *zero = sc_calloc((size_t)n, sizeof(float));
    float *m = sc_calloc((size_t)n, sizeof(float)), *v = sc_calloc((size_t)n, sizeof(float));
    memcpy(before, mdl.params, sizeof(float) * (size_t)n);
    /* zero gradient: only the decoupled decay moves weights, and only matrices */
    adamw_hparams h = {0.01f, 0.9f, 0.95f, 1e-8f, 0.5f, 1};
    adamw_step(mdl.table, mdl.ntensors, mdl.params, zero, m, v, 1.0f, &h);
    for (int i = 0; i < mdl.ntensors; i++) {
        const sc_param *t = &mdl.table[i];
        float want = t->ndim >= 2 ? 1.0f - 0.01f * 0.5f : 1.0f;
        int ok = 1;
        for (int64_t j = 0; j < t->numel; j++) ok &= mdl.params[t->offset + j] == before[t->offset + j] * want;
        if (!ok) fprintf(stderr, "%s: wrong decay\n", t->name);
        CHECK(ok);
    }
    /* first step with bias correction: every weight moves by lr * sign(g) (m_hat / sqrt(v_hat) = g / |g|) */
    float *g = sc_malloc(sizeof(float) * (size_t)n);
    for (int64_t j = 0; j < n; j++) g[j] = (j % 3 ? 1.0f : -1.0f) * (float)(1 + j % 5) * 1e-3f;
    memset(m, 0, sizeof(float) * (size_t)n), memset(v, 0, sizeof(float) * (size_t)n);
    memcpy(before, mdl.params, sizeof(float) * (size_t)n);
    h.weight_decay = 0;
    adamw_step(mdl.table, mdl.ntensors, mdl.params, g, m, v, 1.0f, &h);
    double worst = 0;
    for (int64_t j = 0; j < n; j++) {
        double step = (double)before[j] - mdl.params[j];
        worst = fmax(worst, fabs(step - (g[j] > 0 ? 0.01 : -0.01)));
    }
    CHECK(worst < 1e-5);
    free(before), free(zero), free(m), free(v), free(g);
    model_free(&mdl);
}

static void test_lr_schedule(void) {
    lr_schedule s = {1e-3f, 1e-4f, 10, 110};
    CHECK(fabsf(lr_at(&s, 0) - 1e-4f) < 1e-9f);           /* 1/10 of the peak */
    CHECK(fabsf(lr_at(&s, 4) - 5e-4f) < 1e-9f);
    CHECK(lr_at(&s, 9) == 1e-3f);                          /* warmup ends at the peak */
    CHECK(lr_at(&s, 10) == 1e-3f);                         /* cosine starts at the peak */
    CHECK(fabsf(lr_at(&s, 109) - 1e-4f) < 1e-10f);         /* and ends at min_lr */
    CHECK(fabs(lr_at(&s, 10 + 99 / 2) - (1e-3 + 1e-4) / 2) < 1e-5);
    for (int64_t i = 11; i < 110; i++) CHECK(lr_at(&s, i) <= lr_at(&s, i - 1));
    CHECK(lr_at(&s, 500) == lr_at(&s, 109));
    lr_schedule one = {1e-3f, 0, 0, 1};
    CHECK(lr_at(&one, 0) == 1e-3f);
    lr_schedule nowarm = {2e-3f, 0, 0, 3};
    CHECK(lr_at(&nowarm, 0) == 2e-3f && lr_at(&nowarm, 2) == 0.0f);
}

static void test_grad_norm(void) {
    int64_t n = 300000;
    float *g = sc_malloc(sizeof(float) * (size_t)n);
    sc_rng r;
    rng_seed(&r, 9);
    double naive = 0;
    for (int64_t i = 0; i < n; i++) g[i] = (float)rng_normal(&r), naive += (double)g[i] * g[i];
    omp_set_num_threads(1);
    double one = grad_sumsq(g, n);
    omp_set_num_threads(2);
    double two = grad_sumsq(g, n);
    omp_set_num_threads(3);
    double three = grad_sumsq(g, n);
    CHECK(one == two && two == three); /* bit-identical for any thread count */
    CHECK(fabs(one - naive) < 1e-9 * naive);
    g[n - 1] = NAN;
    CHECK(!isfinite(grad_sumsq(g, n)));
    g[n - 1] = INFINITY;
    CHECK(!isfinite(grad_sumsq(g, n)));
    grad_zero(g, n);
    CHECK(grad_sumsq(g, n) == 0);
    free(g);
    /* clipping after unscaling: norm 10 at scale 4 (sumsq of scaled grads = 1600) */
    double norm;
    float mul = grad_multiplier(1600.0, 4.0f, 1.0f, &norm);
    CHECK(fabs(norm - 10.0) < 1e-12);
    CHECK(fabs(mul - 1.0 / 4.0 / 10.0) < 1e-7);
    mul = grad_multiplier(1600.0, 4.0f, 0.0f, &norm); /* no clipping */
    CHECK(mul == 0.25f);
    mul = grad_multiplier(0.25, 1.0f, 1.0f, &norm); /* norm 0.5 < clip: untouched */
    CHECK(mul == 1.0f);
}

static void test_loss_scaler(void) {
    loss_scaler s;
    loss_scale_init(&s, 1);
    CHECK(s.scale == 65536.0f);
    CHECK(loss_scale_update(&s, 0) == 0 && s.scale == 32768.0f && s.skipped == 1);
    for (int i = 0; i < LOSS_SCALE_GROWTH_INTERVAL - 1; i++) CHECK(loss_scale_update(&s, 1) == 1);
    CHECK(s.scale == 32768.0f);
    CHECK(loss_scale_update(&s, 1) == 1 && s.scale == 65536.0f && s.good_steps == 0);
    for (int i = 0; i < 100; i++) loss_scale_update(&s, 0);
    CHECK(s.scale >= LOSS_SCALE_MIN && s.scale > 0);
    loss_scale_init(&s, 0); /* FP32: static scale 1, an inf still skips */
    CHECK(s.scale == 1.0f);
    CHECK(loss_scale_update(&s, 0) == 0 && s.scale == 1.0f && s.skipped == 1);
    for (int i = 0; i < 3000; i++) loss_scale_update(&s, 1);
    CHECK(s.scale == 1.0f);
}

int main(void) {
    test_adamw_matches_reference();
    test_first_step_and_decay_mask();
    test_lr_schedule();
    test_grad_norm();
    test_loss_scaler();
    return check_result("test_train_optim");
}
