/* test_train_lora.c — the CUDA LoRA backend (train/backend_lora_cuda.c over host/cuda_model.c + host/cuda_lora.c)
 * against the CPU LoRA backend (train/backend_lora.c) on the tiny preset: (a) for an FP16 and an INT8 base, with
 * and without dropout (the same masks on both sides), the loss of a micro-batch and every adapter gradient tensor
 * track the CPU's (FP16 activations: mean loss within 2e-3, each tensor's gradient within 1e-2 relative L2, the
 * norm floored at 1e-2 of the whole gradient's), also with open-model biases;
 * an untied model in the recompute placement (checkpoints in pinned host memory, the embedding table on the host)
 * too; (b) a fresh adapter (B = 0) gives the base's loss exactly (the CUDA model without an adapter, same bits)
 * when the MLP runs whole, within 1e-4 when it runs in token chunks (no dropout); (c) recompute (layer inputs in
 * host memory, the chunked MLP recomputed chunk by chunk) gives the gradients of every activation kept, bit for bit,
 * with and without dropout; (d) a few
 * AdamW steps, then read_state -> a fresh backend -> write_state continues bit for bit (a resume); (e) the plan of
 * `train --lora --plan` is the arena the backend allocates; (f) distillation through the train_kd hook tracks the
 * CPU's KD loss and gradients. Small T: the emulator is slow. */
#include "train/backend.h"
#include "host/config.h"
#include "host/cuda_model.h"
#include "host/error.h"
#include "host/lora.h"
#include "host/lora_cpu.h"
#include "host/cpu/kd_loss.h"
#include "tests/gpu/fake_teacher.h"
#include "tests/gpu/gpu_test.h"
#include "train/loss_scale.h"
#include "host/model.h"
#include "train/plan.h"

enum { T = 16, B = 2, STEPS = 3, RANK = 4 };

typedef struct {
    int32_t ids[STEPS + 2][B * T], tg[STEPS + 2][B * T];
} batches;

static void make_model(sc_model *m, const sc_model *from, const char *precision) {
    model_create(m, &from->cfg);
    memcpy(m->params, from->params, sizeof(float) * (size_t)from->nparams);
    if (lora_base_precision(m, precision)) printf("lora_base_precision: %s\n", sc_error());
}

/* a fresh adapter (PEFT init) with B drawn small, so A gets gradients too */
static void make_adapter(sc_lora *ad, const sc_config *c, float dropout, int random_b) {
    if (lora_create(ad, c, RANK, 2.0f * RANK, LORA_ALL_TARGETS, dropout, NULL)) printf("lora_create: %s\n", sc_error());
    lora_init_weights(ad, 11);
    sc_rng r;
    rng_seed(&r, 12);
    for (int l = 0; random_b && l < ad->nlayers; l++)
        for (int t = 0; t < LORA_NTARGETS; t++) {
            float *b = lora_b(ad, l, t);
            for (int64_t i = 0; i < (int64_t)ad->out[t] * RANK; i++) b[i] = (float)(0.05 * rng_normal(&r));
        }
}

static void copy_adapter(sc_lora *dst, const sc_lora *src, const sc_config *c) {
    if (lora_create(dst, c, src->rank, src->alpha, src->targets, src->dropout, NULL)) printf("lora_create: %s\n", sc_error());
    memcpy(dst->params, src->params, sizeof(float) * (size_t)src->nparams);
}

static int open_lora_cuda(train_backend *b, sc_model *m, sc_lora *ad, int int8, int recompute) {
    if (backend_lora_cuda_open(b, m, ad, T, int8, recompute, 0, 5)) {
        printf("backend_lora_cuda_open: %s\n", sc_error());
        return -1;
    }
    return 0;
}

static int64_t counted_of(const batches *d, int k) {
    int64_t c = 0;
    for (int i = 0; i < B * T; i++) c += d->tg[k][i] >= 0;
    return c;
}

/* (a) one micro-batch accumulated on the CPU and on CUDA: mean loss, then each adapter tensor's gradient */
static void case_track(const sc_model *m0, const batches *d, int int8, float dropout, int recompute) {
    char name[240];
    const char *prec = int8 ? "int8" : "fp16";
    sc_model mc, mg;
    make_model(&mc, m0, prec), make_model(&mg, m0, prec);
    sc_lora ac, ag;
    make_adapter(&ac, &m0->cfg, dropout, 1), make_adapter(&ag, &m0->cfg, dropout, 1);
    train_backend cpu, gpu;
    backend_lora_open(&cpu, &mc, &ac, T, 1, 5);
    if (open_lora_cuda(&gpu, &mg, &ag, int8, recompute)) {
        tu_check("backend_lora_cuda_open", 1.0, 0.0);
        return;
    }
    const char *how = recompute ? (m0->cfg.tie_word_embeddings ? ", recompute" : ", recompute, untied: embedding on the host")
                                : "";
    tu_check("fp16 flag set (dynamic loss scaling)", gpu.fp16 ? 0.0 : 1.0, 0.0);
    cpu.step = gpu.step = 3;
    int64_t counted = counted_of(d, 0);
    const float scale = LOSS_SCALE_INIT;
    double lc, lg;
    int64_t nc, ng;
    int rc = cpu.accumulate(&cpu, d->ids[0], d->tg[0], B, T, 1.0f / (float)counted, &lc, &nc) |
             gpu.accumulate(&gpu, d->ids[0], d->tg[0], B, T, scale / (float)counted, &lg, &ng);
    if (rc) printf("accumulate: %s\n", sc_error());
    snprintf(name, sizeof name, "%s base, dropout %g%s: mean loss cuda vs cpu (cpu %.6f cuda %.6f)", prec,
             (double)dropout, how, lc / (double)nc, lg / (double)ng);
    tu_check(name, rc || nc != ng ? 1.0 : fabs(lg / (double)ng - lc / (double)nc), 2e-3);
    const float *gc = cpu.host_grads(&cpu), *gg = gpu.host_grads(&gpu);
    /* each tensor relative to its own norm, floored at 1e-2 of the whole gradient's: a tensor whose gradient is
     * thousands of times smaller than the rest (q/k of a layer whose attention is nearly uniform, as the biased
     * model's last layer: ~1e-6 against ~1e-2) carries only FP16 noise, which is then measured on the whole's scale */
    double worst = 0, nonzero = 0, all = 0;
    const char *worst_name = "";
    for (int64_t j = 0; gc && j < ac.nparams; j++) all += (double)gc[j] * gc[j];
    for (int i = 0; gc && gg && i < ac.ntensors; i++) {
        const sc_param *p = &ac.table[i];
        double num = 0, den = 0;
        for (int64_t j = 0; j < p->numel; j++) {
            double ref = gc[p->offset + j], diff = (double)gg[p->offset + j] / scale - ref;
            num += diff * diff, den += ref * ref, nonzero += ref != 0;
        }
        double e = isfinite(num) ? sqrt(num) / fmax(sqrt(den), 1e-2 * sqrt(all)) : INFINITY;
        if (e > worst) worst = e, worst_name = p->name;
    }
    snprintf(name, sizeof name, "%s base, dropout %g%s: every adapter gradient tensor, cuda vs cpu (worst %s)", prec,
             (double)dropout, how, worst_name);
    tu_check(name, gc && gg ? worst : 1.0, 1e-2);
    tu_check("gradients not all zero", nonzero > (double)ac.nparams / 2 ? 0.0 : 1.0, 0.0);
    backend_close(&cpu), backend_close(&gpu);
    lora_free(&ac), lora_free(&ag);
    model_free(&mc), model_free(&mg);
}

/* (b) B = 0: the adapter adds exactly zero, so the loss is the plain CUDA model's, bit for bit when the MLP runs
 * whole as the plain model's does (an adapter with dropout: its masks need whole sequences); without dropout the
 * frozen model runs the MLP in token chunks (other GEMM shapes), within FP16 rounding of it */
static void case_zero_b(const sc_model *m0, const batches *d, float dropout) {
    sc_model m;
    make_model(&m, m0, "fp16");
    sc_lora ad;
    make_adapter(&ad, &m0->cfg, dropout, 0);
    train_backend l, base;
    if (open_lora_cuda(&l, &m, &ad, 0, 0) || backend_cuda_open_eval(&base, &m, T)) {
        printf("open: %s\n", sc_error());
        tu_check("open", 1.0, 0.0);
        return;
    }
    double ll, lb;
    int64_t nl, nb;
    int rc = l.evaluate(&l, d->ids[1], d->tg[1], B, T, &ll, &nl) | base.evaluate(&base, d->ids[1], d->tg[1], B, T, &lb, &nb);
    char name[200];
    if (dropout > 0) {
        snprintf(name, sizeof name, "B = 0, MLP whole: the base's loss exactly (%.9f, %.9f)", ll, lb);
        tu_check(name, rc || ll != lb || nl != nb ? 1.0 : 0.0, 0.0);
    } else {
        snprintf(name, sizeof name, "B = 0, MLP in token chunks: the base's loss (%.9f, %.9f), relative", ll, lb);
        tu_check(name, rc || nl != nb ? 1.0 : fabs(ll - lb) / fabs(lb), 1e-4);
    }
    backend_close(&l), backend_close(&base);
    lora_free(&ad);
    model_free(&m);
}

/* (c) recompute gives the gradients of every activation kept, bit for bit (dropout on: masks regenerated; off:
 * the MLP in token chunks, each recomputed just before its backward) */
static void case_recompute(const sc_model *m0, const batches *d, int int8, float dropout) {
    sc_model m;
    make_model(&m, m0, int8 ? "int8" : "fp16");
    sc_lora a1, a2;
    make_adapter(&a1, &m0->cfg, dropout, 1), make_adapter(&a2, &m0->cfg, dropout, 1);
    train_backend k, r;
    if (open_lora_cuda(&k, &m, &a1, int8, 0) || open_lora_cuda(&r, &m, &a2, int8, 1)) {
        tu_check("open", 1.0, 0.0);
        return;
    }
    double lk, lr;
    int64_t nk, nr;
    int rc = k.accumulate(&k, d->ids[0], d->tg[0], B, T, 1.0f, &lk, &nk) |
             r.accumulate(&r, d->ids[0], d->tg[0], B, T, 1.0f, &lr, &nr);
    const float *gk = k.host_grads(&k), *gr = r.host_grads(&r);
    char name[200];
    snprintf(name, sizeof name, "%s base, dropout %g: recompute = every activation kept (loss and gradient bits)",
             int8 ? "int8" : "fp16", (double)dropout);
    tu_check(name, rc || !gk || !gr || lk != lr ? 1.0 : gt_bitdiff(gk, gr, sizeof(float) * (size_t)a1.nparams), 0.0);
    printf("     device arena: %zu bytes every activation, %zu recompute\n", backend_lora_cuda_device_bytes(&k),
           backend_lora_cuda_device_bytes(&r));
    backend_close(&k), backend_close(&r);
    lora_free(&a1), lora_free(&a2);
    model_free(&m);
}

/* One trainer step by hand (trainer.c's arithmetic). */
static int step(train_backend *b, const batches *d, int k, float scale, double *loss) {
    int64_t counted = counted_of(d, k), cnt;
    double ls, sumsq, norm;
    b->step = k;
    if (b->accumulate(b, d->ids[k], d->tg[k], B, T, scale / (float)counted, &ls, &cnt) || b->grad_sumsq(b, &sumsq))
        return -1;
    float mul = grad_multiplier(sumsq, scale, 1.0f, &norm);
    adamw_hparams h = {1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, k + 1};
    *loss = ls / (double)cnt;
    return b->apply(b, mul, &h);
}

/* (d) STEPS steps, then a fresh backend from read_state: steps STEPS+1 and +2 give the bits of going on */
static void case_resume(const sc_model *m0, const batches *d, int int8) {
    sc_model m;
    make_model(&m, m0, int8 ? "int8" : "fp16");
    sc_lora a1, a2;
    make_adapter(&a1, &m0->cfg, 0.1f, 0);
    train_backend b1, b2;
    if (open_lora_cuda(&b1, &m, &a1, int8, 1)) {
        tu_check("open", 1.0, 0.0);
        return;
    }
    double l, l1[2], l2[2];
    int rc = 0;
    for (int k = 0; k < STEPS; k++) rc |= step(&b1, d, k, LOSS_SCALE_INIT, &l);
    const float *pm, *pv;
    rc |= b1.read_state(&b1, &pm, &pv);
    copy_adapter(&a2, &a1, &m0->cfg);
    float *m_copy = tu_copy(pm, a1.nparams), *v_copy = tu_copy(pv, a1.nparams);
    if (open_lora_cuda(&b2, &m, &a2, int8, 1)) {
        tu_check("open", 1.0, 0.0);
        return;
    }
    rc |= b2.write_state(&b2, m_copy, v_copy);
    for (int k = STEPS; k < STEPS + 2; k++) {
        rc |= step(&b1, d, k, LOSS_SCALE_INIT, &l1[k - STEPS]);
        rc |= step(&b2, d, k, LOSS_SCALE_INIT, &l2[k - STEPS]);
    }
    char name[200];
    snprintf(name, sizeof name, "%s base: %d steps, state to a fresh backend, 2 more: losses and adapter bits (%.6f %.6f)",
             int8 ? "int8" : "fp16", STEPS, l1[1], l2[1]);
    size_t bytes = sizeof(float) * (size_t)a1.nparams;
    tu_check(name, rc || l1[0] != l2[0] || l1[1] != l2[1] ? 1.0 : gt_bitdiff(a1.params, a2.params, bytes), 0.0);
    double bsum = 0; /* B started at zero: the steps must have moved it */
    for (int l = 0; l < a1.nlayers; l++)
        for (int64_t i = 0; i < (int64_t)a1.out[LORA_DOWN] * RANK; i++) bsum += fabs(lora_b(&a1, l, LORA_DOWN)[i]);
    tu_check("the steps trained B (it started at zero)", bsum > 0 ? 0.0 : 1.0, 0.0);
    free(m_copy), free(v_copy);
    backend_close(&b1), backend_close(&b2);
    lora_free(&a1), lora_free(&a2);
    model_free(&m);
}

/* (e) the plan's device rows add up to the arena the backend takes (less the plan's misc slack) */
static void case_plan(const sc_model *m0, int int8, float dropout) {
    sc_model m;
    make_model(&m, m0, int8 ? "int8" : "fp16");
    sc_lora ad;
    make_adapter(&ad, &m0->cfg, dropout, 0);
    for (int rec = 0; rec < 2; rec++) {
        train_backend b;
        if (open_lora_cuda(&b, &m, &ad, int8, rec)) {
            tu_check("open", 1.0, 0.0);
            return;
        }
        train_plan p;
        plan_cuda_lora(&p, &m0->cfg, T, 1, rec ? PLAN_OFFLOAD : PLAN_FULL, RANK, LORA_ALL_TARGETS, dropout, int8);
        /* the plan counts a 32 MiB cuBLAS workspace and PLAN_MISC_SLACK; open takes 4 MiB before Hopper */
        int64_t arena = (int64_t)backend_lora_cuda_device_bytes(&b), planned = p.device_bytes - PLAN_MISC_SLACK;
        int64_t diff = planned - arena;
        char name[200];
        snprintf(name, sizeof name, "%s base, dropout %g, %s: plan %lld bytes = arena %lld + the cuBLAS workspace "
                 "difference", int8 ? "int8" : "fp16", (double)dropout, rec ? "recompute" : "every activation",
                 (long long)planned, (long long)arena);
        tu_check(name, diff == 0 || diff == (28ll << 20) ? 0.0 : 1.0, 0.0);
        backend_close(&b);
    }
    lora_free(&ad);
    model_free(&m);
}

/* (f) distillation through the train_kd hook (tests/gpu/fake_teacher.h: the same rows for both backends): the KD
 * loss and the adapter gradients track the CPU's */
static void case_kd(const sc_model *m0, const batches *d) {
    sc_model mc, mg;
    make_model(&mc, m0, "fp16"), make_model(&mg, m0, "fp16");
    sc_lora ac, ag;
    make_adapter(&ac, &m0->cfg, 0.0f, 1), make_adapter(&ag, &m0->cfg, 0.0f, 1);
    fake_teacher ft = {.V = m0->cfg.vocab_size};
    train_kd kd = {&ft, fake_next};
    train_backend cpu, gpu;
    backend_lora_open(&cpu, &mc, &ac, T, 1, 5);
    if (backend_lora_cuda_open(&gpu, &mg, &ag, T, 0, 1, KD_K, 5)) {
        printf("backend_lora_cuda_open: %s\n", sc_error());
        tu_check("backend_lora_cuda_open with distillation", 1.0, 0.0);
        return;
    }
    backend_lora_set_kd(&cpu, &kd), backend_lora_cuda_set_kd(&gpu, &kd);
    int64_t counted = counted_of(d, 0), nc, ng;
    double lc, lg;
    int rc = cpu.accumulate(&cpu, d->ids[0], d->tg[0], B, T, 1.0f / (float)counted, &lc, &nc) |
             gpu.accumulate(&gpu, d->ids[0], d->tg[0], B, T, LOSS_SCALE_INIT / (float)counted, &lg, &ng);
    char name[200];
    snprintf(name, sizeof name, "kd: mean KD loss cuda vs cpu (cpu %.6f cuda %.6f)", lc / (double)nc, lg / (double)ng);
    tu_check(name, rc || nc != ng ? 1.0 : fabs(lg / (double)ng - lc / (double)nc), 2e-3);
    const float *gc = cpu.host_grads(&cpu), *gg = gpu.host_grads(&gpu);
    float *u = gg ? tu_copy(gg, ac.nparams) : NULL;
    for (int64_t j = 0; u && j < ac.nparams; j++) u[j] /= LOSS_SCALE_INIT;
    tu_check("kd: adapter gradients cuda vs cpu (relative L2)", u && gc ? gt_relerr(u, gc, ac.nparams) : 1.0, 1e-2);
    free(u);
    backend_close(&cpu), backend_close(&gpu);
    lora_free(&ac), lora_free(&ag);
    model_free(&mc), model_free(&mg);
}

int main(void) {
    gt_require_device("test_train_lora");
    sc_config cfg;
    if (config_preset(&cfg, "tiny")) return 1;
    sc_model m0;
    sc_rng r;
    gt_model_random(&m0, &cfg, 7, 0.02f, &r);
    batches *d = TU_NEW(batches, 1);
    for (int k = 0; k < STEPS + 2; k++)
        for (int s = 0; s < B; s++) {
            int32_t w[T + 1];
            for (int t = 0; t <= T; t++) w[t] = (int32_t)rng_below(&r, (uint64_t)(cfg.vocab_size / 4));
            for (int t = 0; t < T; t++) d->ids[k][s * T + t] = w[t], d->tg[k][s * T + t] = w[t + 1];
            d->tg[k][s * T + 5] = -1; /* an ignored position */
        }
    for (int int8 = 0; int8 < 2; int8++) {
        case_track(&m0, d, int8, 0.0f, 0);
        case_track(&m0, d, int8, 0.1f, 0);
        case_recompute(&m0, d, int8, 0.1f);
        case_recompute(&m0, d, int8, 0.0f);
        case_resume(&m0, d, int8);
        case_plan(&m0, int8, 0.1f);
        case_plan(&m0, int8, 0.0f);
    }
    case_zero_b(&m0, d, 0.1f);
    case_zero_b(&m0, d, 0.0f);
    case_kd(&m0, d);
    /* an untied head: recompute with host checkpoints and the embedding table on the host */
    sc_config cu = cfg;
    cu.tie_word_embeddings = 0;
    sc_model mu;
    model_create(&mu, &cu);
    model_init_weights(&mu, 9, 0.02f);
    gt_model_random_norms(&mu, &r);
    case_track(&mu, d, 0, 0.1f, 1);
    case_track(&mu, d, 1, 0.0f, 1);
    model_free(&mu);
    /* open-model biases (q/k/v, o, MLP: their offsets are remapped in the INT8 compact layout), untied */
    cu.qkv_bias = cu.o_bias = cu.mlp_bias = 1;
    model_create(&mu, &cu);
    model_init_weights(&mu, 10, 0.02f);
    for (int i = 0; i < mu.ntensors; i++)
        if (strstr(mu.table[i].name, "bias"))
            for (int64_t j = 0; j < mu.table[i].numel; j++) mu.params[mu.table[i].offset + j] = (float)(0.1 * rng_normal(&r));
    gt_model_random_norms(&mu, &r);
    printf("     biases: q/k/v, o, gate/up/down\n");
    case_track(&mu, d, 1, 0.0f, 1);
    case_track(&mu, d, 0, 0.1f, 0);
    model_free(&mu);
    free(d);
    model_free(&m0);
    return tu_finish("test_train_lora");
}
