/* test_train_backend.c — the CUDA training backend (train/backend_cuda.c) on the tiny preset against the CPU
 * backend and against itself: (a) losses and gradient norms of a few AdamW steps track the FP32 CPU backend
 * (FP16 activations: first-step mean loss within 2e-3, later steps 5e-3, norms 2e-2 relative); (b) the full and
 * offload placements end with the same master weights and moments (bit-identical on the emulator, where the
 * device AdamW is the host's C; 1e-5 relative on a GPU, whose compiler fuses AdamW's multiply-adds); the
 * recompute + streamed-gradient model gives the non-recompute gradients bit for bit; (c) an inf gradient makes
 * grad_sumsq non-finite, the step is skipped (scale halved, weights untouched) and zero_grads clears it; (d)
 * read_state -> write_state into a fresh backend round-trips and the next step matches; (e) distillation through
 * the train_kd hook: losses track the CPU backend's KD losses (same tolerances) and full = offload; (f) the
 * offload placement's chunked host-side FP16 upload gives the device conversion's weights (small preset); (g) a planted
 * FP16 overflow in an activation gradient mid-backward skips its step, halves the scale, and the run goes on
 * exactly as one without that step; at scale 2^24 the activation gradients overflow and halving until finite gives
 * the norm of a moderate scale. Small T: the emulator is slow. */
#include "train/backend.h"
#include "host/config.h"
#include "host/cuda_model.h"
#include "host/error.h"
#include "tests/gpu/fake_teacher.h"
#include "tests/gpu/gpu_test.h"
#include "host/cpu/kd_loss.h"
#include "train/loss_scale.h"
#include "host/model.h"
#include "train/plan.h"

enum { T = 16, B = 2, STEPS = 3 };

typedef struct {
    int32_t ids[STEPS + 2][B * T], tg[STEPS + 2][B * T];
} batches;

static int on_emulator(void) {
    struct cudaDeviceProp p;
    return cudaGetDeviceProperties(&p, 0) == cudaSuccess && strstr(p.name, "emulator") != NULL;
}

/* full vs offload: the same bits on the emulator; on a GPU, after the first update, within what the device AdamW's
 * fused multiply-adds change (1e-5 relative) */
static double placements_differ(double full, double off, int step, int emu) {
    if (emu || step == 0) return full == off ? 0.0 : 1.0;
    return fabs(off - full) / fabs(full) <= 1e-5 ? 0.0 : 1.0;
}

static void make_model(sc_model *m, const sc_model *from) {
    model_create(m, &from->cfg);
    memcpy(m->params, from->params, sizeof(float) * (size_t)from->nparams);
}

/* One trainer step by hand (trainer.c's arithmetic): accumulate at grad_scale = scale / counted, norm, AdamW. */
static int step(train_backend *b, const batches *d, int k, float scale, float clip, double *loss, double *norm) {
    int64_t counted = 0;
    for (int i = 0; i < B * T; i++) counted += d->tg[k][i] >= 0;
    double ls;
    int64_t cnt;
    if (b->accumulate(b, d->ids[k], d->tg[k], B, T, scale / (float)counted, &ls, &cnt)) return -1;
    double sumsq;
    if (b->grad_sumsq(b, &sumsq)) return -1;
    float mul = grad_multiplier(sumsq, scale, clip, norm);
    adamw_hparams h = {1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, k + 1};
    *loss = ls / (double)cnt;
    return b->apply(b, mul, &h);
}

static int open_cuda(train_backend *b, sc_model *m, int placement) {
    if (backend_cuda_open(b, m, T, placement, 0)) {
        printf("backend_cuda_open: %s\n", sc_error());
        return -1;
    }
    return 0;
}

/* (a) and (b): STEPS steps on the CPU, full and offload from the same weights */
static void case_track(const sc_model *m0, const batches *d) {
    char name[200];
    sc_model mc, mf, mo;
    make_model(&mc, m0), make_model(&mf, m0), make_model(&mo, m0);
    train_backend cpu, full, off;
    backend_cpu_open(&cpu, &mc, T, 1);
    if (open_cuda(&full, &mf, PLAN_FULL) || open_cuda(&off, &mo, PLAN_OFFLOAD)) {
        tu_check("backend_cuda_open", 1.0, 0.0);
        return;
    }
    tu_check("fp16 flag set (the trainer runs dynamic loss scaling)", full.fp16 && off.fp16 ? 0.0 : 1.0, 0.0);
    const float scale = LOSS_SCALE_INIT; /* what the trainer starts the CUDA backends with */
    for (int k = 0; k < STEPS; k++) {
        double lc, lf, lo, nc, nf, no;
        int rc = step(&cpu, d, k, 1.0f, 0.0f, &lc, &nc) | step(&full, d, k, scale, 0.0f, &lf, &nf) |
                 step(&off, d, k, scale, 0.0f, &lo, &no);
        if (rc) printf("step: %s\n", sc_error());
        snprintf(name, sizeof name, "step %d: mean loss full vs cpu (cpu %.6f full %.6f offload %.6f)", k + 1, lc, lf, lo);
        tu_check(name, rc ? 1.0 : fabs(lf - lc), k == 0 ? 2e-3 : 5e-3);
        snprintf(name, sizeof name, "step %d: mean loss offload = full (%s)", k + 1, on_emulator() || !k ? "bits" : "1e-5");
        tu_check(name, placements_differ(lf, lo, k, on_emulator()), 0.0);
        snprintf(name, sizeof name, "step %d: unscaled grad norm vs cpu, relative (cpu %.5f full %.5f offload %.5f)",
                 k + 1, nc, nf, no);
        tu_check(name, fmax(fabs(nf - nc), fabs(no - nc)) / nc, 2e-2);
    }
    const float *fm, *fv, *om, *ov, *cm_, *cv;
    int rc = full.read_state(&full, &fm, &fv) | off.read_state(&off, &om, &ov) | cpu.read_state(&cpu, &cm_, &cv);
    tu_check("read_state", rc ? 1.0 : 0.0, 0.0);
    int64_t n = m0->nparams;
    float *du_c = tu_sub(mc.params, m0->params, n), *du_f = tu_sub(mf.params, m0->params, n);
    snprintf(name, sizeof name, "weight update after %d steps, full vs cpu (relative L2; AdamW ~ sign of FP16 grads)",
             STEPS);
    tu_check(name, gt_relerr(du_f, du_c, n), 0.1);
    int emu = on_emulator();
    double tol = emu ? 0.0 : 1e-5;
    snprintf(name, sizeof name, "full vs offload: master weights after %d steps (%s)", STEPS,
             emu ? "bits, emulator" : "relative");
    tu_check(name, emu ? gt_bitdiff(mf.params, mo.params, sizeof(float) * (size_t)n) : gt_relerr(mo.params, mf.params, n),
             tol);
    snprintf(name, sizeof name, "full vs offload: AdamW m and v (%s)", emu ? "bits" : "relative");
    tu_check(name, emu ? gt_bitdiff(fm, om, sizeof(float) * (size_t)n) + gt_bitdiff(fv, ov, sizeof(float) * (size_t)n)
                       : fmax(gt_relerr(om, fm, n), gt_relerr(ov, fv, n)),
             tol);
    free(du_c), free(du_f);
    backend_close(&cpu), backend_close(&full), backend_close(&off);
    model_free(&mc), model_free(&mf), model_free(&mo);
}

/* recompute + streamed gradients vs every activation kept and one device block: two sequences accumulated */
static void case_recompute(const sc_model *m0, const batches *d) {
    cuda_model *a = NULL, *r = NULL;
    if (cuda_model_open(&a, m0, T, CUDA_MODEL_GRADS) ||
        cuda_model_open(&r, m0, T, CUDA_MODEL_GRADS | CUDA_MODEL_RECOMPUTE | CUDA_MODEL_STREAM_GRADS)) {
        printf("cuda_model_open: %s\n", sc_error());
        tu_check("cuda_model_open", 1.0, 0.0);
        return;
    }
    int64_t n = m0->nparams;
    float *ga = TU_NEW(float, n), *gr = TU_NEW(float, n);
    double la = 0, lr = 0, l;
    int rc = 0;
    for (int s = 0; s < 2; s++) {
        rc |= cuda_model_step(a, d->ids[0] + s * T, d->tg[0] + s * T, T, NULL, 1, 0.01f, &l, NULL), la += l;
        rc |= cuda_model_step(r, d->ids[0] + s * T, d->tg[0] + s * T, T, NULL, 1, 0.01f, &l, NULL), lr += l;
    }
    rc |= cuda_model_read_grads(a, ga) | cuda_model_read_grads(r, gr);
    tu_check("recompute: losses bit-identical", rc || la != lr ? 1.0 : 0.0, 0.0);
    tu_check("recompute + streamed grads: gradients of 2 sequences bit-identical", gt_bitdiff(ga, gr, sizeof(float) * (size_t)n), 0.0);
    double nz = 0;
    for (int64_t i = 0; i < n; i++) nz += ga[i] != 0;
    tu_check("gradients not all zero", nz > n / 2 ? 0.0 : 1.0, 0.0);
    printf("     device arena: %zu bytes all activations, %zu recompute + streamed\n", cuda_model_device_bytes(a),
           cuda_model_device_bytes(r));
    tu_check("recompute + streamed arena smaller", cuda_model_device_bytes(r) < cuda_model_device_bytes(a) ? 0.0 : 1.0, 0.0);
    free(ga), free(gr);
    cuda_model_close(a), cuda_model_close(r);
}

/* (c) an inf gradient, (d) state round trip, for one placement */
static void case_skip_and_state(const sc_model *m0, const batches *d, int placement) {
    char name[200];
    const char *pn = plan_placement_name(placement);
    sc_model m, m2;
    make_model(&m, m0);
    train_backend b, b2;
    if (open_cuda(&b, &m, placement)) {
        tu_check("backend_cuda_open", 1.0, 0.0);
        return;
    }
    double loss, norm, s1, s2, sinf;
    int rc = step(&b, d, 0, LOSS_SCALE_INIT, 1.0f, &loss, &norm);
    /* the gradient of batch 1, then an inf injected through the loss scale, then batch 1 again */
    double ls;
    int64_t cnt;
    rc |= b.accumulate(&b, d->ids[1], d->tg[1], B, T, 1.0f, &ls, &cnt) | b.grad_sumsq(&b, &s1) | b.zero_grads(&b);
    const float *pm, *pv;
    rc |= b.read_state(&b, &pm, &pv);
    float *before = tu_copy(m.params, m.nparams);
    rc |= b.accumulate(&b, d->ids[1], d->tg[1], B, T, INFINITY, &ls, &cnt) | b.grad_sumsq(&b, &sinf);
    loss_scaler sc;
    loss_scale_init(&sc, b.fp16);
    int applied = loss_scale_update(&sc, isfinite(sinf));
    if (applied) rc |= b.apply(&b, 1.0f, &(adamw_hparams){1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 2});
    else rc |= b.zero_grads(&b);
    snprintf(name, sizeof name, "%s: inf gradient -> grad_sumsq non-finite (%g), step skipped, scale %g -> %g", pn,
             sinf, (double)LOSS_SCALE_INIT, (double)sc.scale);
    tu_check(name, !isfinite(sinf) && !applied && sc.scale == LOSS_SCALE_INIT / 2 ? 0.0 : 1.0, 0.0);
    rc |= b.read_state(&b, &pm, &pv);
    snprintf(name, sizeof name, "%s: weights untouched by the skipped step", pn);
    tu_check(name, gt_bitdiff(before, m.params, sizeof(float) * (size_t)m.nparams), 0.0);
    rc |= b.accumulate(&b, d->ids[1], d->tg[1], B, T, 1.0f, &ls, &cnt) | b.grad_sumsq(&b, &s2) | b.zero_grads(&b);
    snprintf(name, sizeof name, "%s: zero_grads clears the inf: same sumsq as before (%.9g, %.9g)", pn, s1, s2);
    tu_check(name, rc || !(s1 == s2 && s1 > 0) ? 1.0 : 0.0, 0.0);

    /* (d) a fresh backend from read_state's weights and moments continues bit for bit */
    rc |= b.read_state(&b, &pm, &pv);
    make_model(&m2, &m);
    if (open_cuda(&b2, &m2, placement)) {
        tu_check("backend_cuda_open", 1.0, 0.0);
        return;
    }
    rc |= b2.write_state(&b2, pm, pv);
    const float *qm, *qv;
    rc |= b2.read_state(&b2, &qm, &qv);
    size_t bytes = sizeof(float) * (size_t)m.nparams;
    snprintf(name, sizeof name, "%s: write_state -> read_state round trip (weights, m, v bits)", pn);
    tu_check(name, rc ? 1.0 : gt_bitdiff(m.params, m2.params, bytes) + gt_bitdiff(pm, qm, bytes) + gt_bitdiff(pv, qv, bytes),
             0.0);
    double l1, l2, n1, n2;
    rc |= step(&b, d, 2, LOSS_SCALE_INIT, 1.0f, &l1, &n1) | step(&b2, d, 2, LOSS_SCALE_INIT, 1.0f, &l2, &n2);
    rc |= b.read_state(&b, &pm, &pv) | b2.read_state(&b2, &qm, &qv);
    snprintf(name, sizeof name, "%s: resumed backend's next step: same loss and weights (bits)", pn);
    tu_check(name, rc || l1 != l2 ? 1.0 : gt_bitdiff(m.params, m2.params, bytes) + gt_bitdiff(pm, qm, bytes), 0.0);
    free(before);
    backend_close(&b), backend_close(&b2);
    model_free(&m), model_free(&m2);
}

/* One trainer step with the trainer's loss scaling (trainer.c): accumulate at scale / counted, skip and halve on a
 * non-finite sumsq, else unscale + AdamW with t = updates + 1. */
static int scaled_step(train_backend *b, const batches *d, int k, loss_scaler *sc, int64_t *updates, double *sumsq,
                       int *applied) {
    int64_t counted = 0;
    for (int i = 0; i < B * T; i++) counted += d->tg[k][i] >= 0;
    double ls, norm;
    int64_t cnt;
    float scale = sc->scale;
    if (b->accumulate(b, d->ids[k], d->tg[k], B, T, scale / (float)counted, &ls, &cnt) || b->grad_sumsq(b, sumsq))
        return -1;
    float mul = grad_multiplier(isfinite(*sumsq) ? *sumsq : 0.0, scale, 1.0f, &norm);
    *applied = loss_scale_update(sc, isfinite(*sumsq));
    if (!*applied) return b->zero_grads(b);
    adamw_hparams h = {1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, ++*updates};
    return b->apply(b, mul, &h);
}

/* A planted FP16 overflow (+inf written into the residual gradient halfway through backward, SMALLCODER_TEST_OVERFLOW
 * = backward pass 3, the first sequence of step 2) reaches the FP32 gradients: step 2 is skipped, the scale halves,
 * and step 3 ends with the weights and moments of a run that never saw step 2 (step 1, then batch 3 at half the
 * scale): bit for bit, since the skipped step leaves nothing behind. */
static void case_planted_overflow(const sc_model *m0, const batches *d, int placement) {
    char name[240];
    const char *pn = plan_placement_name(placement);
    sc_model ma, mb;
    make_model(&ma, m0), make_model(&mb, m0);
    train_backend a, b;
    setenv("SMALLCODER_TEST_OVERFLOW", "3", 1);
    int bad = open_cuda(&a, &ma, placement);
    unsetenv("SMALLCODER_TEST_OVERFLOW");
    if (bad || open_cuda(&b, &mb, placement)) {
        tu_check("backend_cuda_open", 1.0, 0.0);
        return;
    }
    loss_scaler sa, sb;
    loss_scale_init(&sa, 1), loss_scale_init(&sb, 1);
    int64_t ua = 0, ub = 0;
    double s1, s2, s3, t1, t3;
    int ap1, ap2, ap3, bp1, bp3;
    int rc = scaled_step(&a, d, 0, &sa, &ua, &s1, &ap1);
    float before = sa.scale;
    rc |= scaled_step(&a, d, 1, &sa, &ua, &s2, &ap2);
    float after = sa.scale;
    rc |= scaled_step(&a, d, 2, &sa, &ua, &s3, &ap3);
    rc |= scaled_step(&b, d, 0, &sb, &ub, &t1, &bp1);
    sb.scale *= 0.5f; /* what the skipped step did to the scale, without the step */
    rc |= scaled_step(&b, d, 2, &sb, &ub, &t3, &bp3);
    if (rc) printf("step: %s\n", sc_error());
    snprintf(name, sizeof name, "%s: planted inf in an activation gradient -> sumsq %g, step skipped, scale %g -> %g", pn,
             s2, (double)before, (double)after);
    tu_check(name, !rc && ap1 && !isfinite(s2) && !ap2 && after == before / 2 && ap3 ? 0.0 : 1.0, 0.0);
    const float *am, *av, *bm, *bv;
    rc |= a.read_state(&a, &am, &av) | b.read_state(&b, &bm, &bv);
    size_t bytes = sizeof(float) * (size_t)m0->nparams;
    snprintf(name, sizeof name, "%s: the step after the skip equals a run without step 2 (sumsq %.9g vs %.9g; weights, "
             "m, v bits)", pn, s3, t3);
    tu_check(name, rc || s3 != t3 || !bp1 || !bp3 || ua != ub ? 1.0
                   : gt_bitdiff(ma.params, mb.params, bytes) + gt_bitdiff(am, bm, bytes) + gt_bitdiff(av, bv, bytes),
             0.0);
    /* the scale reaches the FP16 activation gradients: at 2^24 the dlogits alone (2^24 / 30 counted) overflow FP16,
     * so the step is non-finite; halving until it is finite gives the unscaled norm of a moderate scale (2^10) */
    loss_scaler sc;
    loss_scale_init(&sc, 1);
    sc.scale = LOSS_SCALE_MAX;
    int64_t counted = 0;
    for (int i = 0; i < B * T; i++) counted += d->tg[1][i] >= 0;
    double ls, sq = NAN, sq_ref = NAN, n_hi, n_ref;
    int64_t cnt;
    int halvings = 0;
    for (; halvings < 24 && !rc; halvings++) {
        rc |= b.accumulate(&b, d->ids[1], d->tg[1], B, T, sc.scale / (float)counted, &ls, &cnt) | b.grad_sumsq(&b, &sq) |
              b.zero_grads(&b);
        if (loss_scale_update(&sc, isfinite(sq))) break;
    }
    float found = sc.scale;
    rc |= b.accumulate(&b, d->ids[1], d->tg[1], B, T, 1024.0f / (float)counted, &ls, &cnt) | b.grad_sumsq(&b, &sq_ref) |
          b.zero_grads(&b);
    grad_multiplier(sq, found, 0.0f, &n_hi), grad_multiplier(sq_ref, 1024.0f, 0.0f, &n_ref);
    snprintf(name, sizeof name, "%s: loss scale 2^24 overflows the FP16 activation gradients; %d halvings to %g give the "
             "norm of scale 1024 (%.9g vs %.9g, relative)", pn, halvings, (double)found, n_hi, n_ref);
    tu_check(name, rc || halvings < 1 ? 1.0 : fabs(n_hi - n_ref) / n_ref, 1e-6);
    backend_close(&a), backend_close(&b);
    model_free(&ma), model_free(&mb);
}

/* The offload placement uploads weights converted on the host in 4Mi-half chunks; the full placement converts on
 * the device. On `small` (12.6M parameters: three chunks, the last one partial) both must hold the same FP16
 * weights, seen through the loss of one forward pass. */
static void case_upload_chunks(void) {
    sc_config cfg;
    if (config_preset(&cfg, "small")) return;
    sc_model m, m2;
    model_create(&m, &cfg);
    model_init_weights(&m, 11, 0.02f);
    make_model(&m2, &m);
    train_backend full, off;
    if (open_cuda(&full, &m, PLAN_FULL) || open_cuda(&off, &m2, PLAN_OFFLOAD)) {
        tu_check("backend_cuda_open (small)", 1.0, 0.0);
        return;
    }
    int32_t ids[T], tg[T];
    for (int t = 0; t < T; t++) ids[t] = (int32_t)((t * 977 + 5) % cfg.vocab_size), tg[t] = (int32_t)((t * 131 + 7) % cfg.vocab_size);
    double lf, lo;
    int64_t cf, co;
    int rc = full.evaluate(&full, ids, tg, 1, T, &lf, &cf) | off.evaluate(&off, ids, tg, 1, T, &lo, &co);
    char name[200];
    snprintf(name, sizeof name, "small (%lld params): host-converted chunked upload = device conversion (loss %.9f, %.9f)",
             (long long)m.nparams, lf, lo);
    tu_check(name, rc || lf != lo || !(lf > 0) ? 1.0 : 0.0, 0.0);
    backend_close(&full), backend_close(&off);
    model_free(&m), model_free(&m2);
}

/* `train --plan` (train/plan.c) prints the record of the arena host/cuda_model_layout.c lays out (cuda_model_plan): on
 * `small` at 256 tokens, for both placements' flags, the plan less its misc slack (PLAN_MISC_SLACK: teacher rows
 * when distilling) equals the arena cuda_model_open allocates, to the byte. The cuBLAS workspace is 32 MiB in both
 * here (the emulator reports sm_90; a pre-Hopper GPU takes 4 MiB, 28 MiB under the plan). */
static void case_plan_matches_arena(void) {
    sc_config cfg;
    if (config_preset(&cfg, "small")) return;
    sc_model m;
    model_create(&m, &cfg);
    model_init_weights(&m, 3, 0.02f);
    const int TP = 256;
    for (int off = 0; off < 2; off++) {
        train_plan p;
        plan_cuda(&p, &cfg, TP, 2, off ? PLAN_OFFLOAD : PLAN_FULL, 1);
        int flags = CUDA_MODEL_GRADS | (off ? CUDA_MODEL_STREAM_GRADS | CUDA_MODEL_RECOMPUTE : CUDA_MODEL_MASTER);
        cuda_model *cm;
        if (cuda_model_open(&cm, &m, TP, flags)) {
            tu_check("cuda_model_open for the plan check", 1.0, 0.0);
            continue;
        }
        double arena = (double)cuda_model_device_bytes(cm), planned = (double)(p.device_bytes - PLAN_MISC_SLACK);
        char name[200];
        snprintf(name, sizeof name, "plan = arena, small T=%d %s: %.0f vs %.0f bytes (abs diff)", TP,
                 off ? "offload" : "full", planned, arena);
        tu_check(name, fabs(planned - arena), 0.0);
        cuda_model_close(cm);
    }
    model_free(&m);
}

/* (e)'s teacher: tests/gpu/fake_teacher.h (the same rows for every backend) */
static void case_kd(const sc_model *m0, const batches *d) {
    char name[200];
    fake_teacher ft = {.V = m0->cfg.vocab_size};
    train_kd kd = {&ft, fake_next};
    sc_model mc, mf, mo;
    make_model(&mc, m0), make_model(&mf, m0), make_model(&mo, m0);
    train_backend cpu, full, off;
    backend_cpu_open(&cpu, &mc, T, 1);
    if (backend_cuda_open(&full, &mf, T, PLAN_FULL, KD_K) || backend_cuda_open(&off, &mo, T, PLAN_OFFLOAD, KD_K)) {
        printf("backend_cuda_open: %s\n", sc_error());
        tu_check("backend_cuda_open with distillation", 1.0, 0.0);
        return;
    }
    backend_cpu_set_kd(&cpu, &kd), backend_cuda_set_kd(&full, &kd), backend_cuda_set_kd(&off, &kd);
    for (int k = 0; k < 2; k++) {
        double lc, lf, lo, nc, nf, no;
        int rc = step(&cpu, d, k, 1.0f, 0.0f, &lc, &nc) | step(&full, d, k, LOSS_SCALE_INIT, 0.0f, &lf, &nf) |
                 step(&off, d, k, LOSS_SCALE_INIT, 0.0f, &lo, &no);
        if (rc) printf("step: %s\n", sc_error());
        snprintf(name, sizeof name, "kd step %d: mean KD loss full vs cpu (cpu %.6f full %.6f offload %.6f)", k + 1, lc,
                 lf, lo);
        tu_check(name, rc ? 1.0 : fabs(lf - lc), k == 0 ? 2e-3 : 5e-3);
        snprintf(name, sizeof name, "kd step %d: offload = full (loss, %s)", k + 1, on_emulator() || !k ? "bits" : "1e-5");
        tu_check(name, placements_differ(lf, lo, k, on_emulator()), 0.0);
        snprintf(name, sizeof name, "kd step %d: grad norm vs cpu, relative (cpu %.5f full %.5f)", k + 1, nc, nf);
        tu_check(name, fmax(fabs(nf - nc), fabs(no - nc)) / nc, 2e-2);
    }
    const float *fm, *fv, *om, *ov;
    int rc = full.read_state(&full, &fm, &fv) | off.read_state(&off, &om, &ov);
    int emu = on_emulator();
    snprintf(name, sizeof name, "kd: full vs offload master weights after 2 steps (%s)", emu ? "bits" : "relative");
    tu_check(name, rc ? 1.0 : emu ? gt_bitdiff(mf.params, mo.params, sizeof(float) * (size_t)m0->nparams)
                                 : gt_relerr(mo.params, mf.params, m0->nparams),
             emu ? 0.0 : 1e-5);
    backend_close(&cpu), backend_close(&full), backend_close(&off);
    model_free(&mc), model_free(&mf), model_free(&mo);
}

int main(void) {
    gt_require_device("test_train_backend");
    sc_config cfg;
    if (config_preset(&cfg, "tiny")) return 1;
    sc_model m0;
    model_create(&m0, &cfg);
    model_init_weights(&m0, 7, 0.02f);
    gt_round_half(m0.params, m0.nparams); /* the CPU starts from the weights the GPU holds */
    sc_rng r;
    rng_seed(&r, 8);
    batches *d = TU_NEW(batches, 1);
    for (int k = 0; k < STEPS + 2; k++)
        for (int s = 0; s < B; s++) {
            int32_t w[T + 1];
            for (int t = 0; t <= T; t++) w[t] = (int32_t)rng_below(&r, (uint64_t)(cfg.vocab_size / 4)); /* some repeats */
            for (int t = 0; t < T; t++) d->ids[k][s * T + t] = w[t], d->tg[k][s * T + t] = w[t + 1];
            d->tg[k][s * T + 5] = -1; /* an ignored position */
        }
    case_recompute(&m0, d);
    case_track(&m0, d);
    case_skip_and_state(&m0, d, PLAN_FULL);
    case_skip_and_state(&m0, d, PLAN_OFFLOAD);
    case_planted_overflow(&m0, d, PLAN_FULL);
    case_planted_overflow(&m0, d, PLAN_OFFLOAD);
    case_kd(&m0, d);
    case_upload_chunks();
    case_plan_matches_arena();
    free(d);
    model_free(&m0);
    return tu_finish("test_train_backend");
}
