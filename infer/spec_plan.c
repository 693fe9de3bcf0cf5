/* spec_plan.c — one device plan for a model and its speculative draft (spec_cli.h): the draft's CUDA arena is
 * reserved when the model's engine opens, and --plan prints both models' rows, the CUDA context row and the total.
 * Arithmetic from the configs (host/engine.h engine_cuda_plan), so it runs without a device; the context row is
 * measured when one is present (host/device_probe.h). */
#include <stdio.h>
#include <string.h>

#include "host/config.h"
#include "host/device.h"
#include "host/device_probe.h"
#include "host/error.h"
#include "host/fileio.h"
#include "infer/spec_cli.h"

#ifdef SC_HAVE_KERNELS
/* the draft's config and INT8 layout (config.json only: its weights are loaded later, by spec_cli_open) */
static int draft_config(const sc_spec_cli *c, sc_config *cfg, int *quantized, int *group) {
    char path[4096];
    if (config_load(cfg, path_join(path, sizeof path, c->draft_dir, "config.json"))) return -1;
    *group = 0;
    *quantized = quant_config_read(c->draft_dir, group);
    return *quantized < 0 ? -1 : 0;
}

/* INT8 or FP16 for a model as the CUDA engine will take it: --precision as given; auto = INT8 for an INT8
 * checkpoint, else engine_cuda_auto_int8 on what dp leaves after `reserve` */
static int plan_int8(const sc_engine_opts *eo, const sc_config *cfg, int quantized, int group, device_probe_info dp,
                     int64_t reserve, char *why, size_t n) {
    const char *prec = eo->precision ? eo->precision : "auto";
    snprintf(why, n, "--precision %s", prec);
    if (!strcmp(prec, "int8")) return 1;
    if (!strcmp(prec, "fp16")) return 0;
    dp.free_now -= reserve;
    return engine_cuda_auto_int8(cfg, quantized, group, eo->n_ctx, eo->n_seqs, eo->chunk, eo->kv_type, &dp, why, n);
}

/* the draft's arena as reserved for it: an FP32 draft under --precision auto is reserved at FP16 (the larger) */
static int64_t draft_bytes(const sc_engine_opts *eo, const sc_config *cfg, int quantized, int group, int *int8) {
    const char *prec = eo->precision ? eo->precision : "auto";
    *int8 = quantized ? strcmp(prec, "fp16") != 0 : !strcmp(prec, "int8");
    sc_engine_plan p;
    engine_cuda_plan(cfg, *int8, quantized ? group : 0, eo->n_ctx, eo->n_seqs, eo->chunk, eo->kv_type, NULL, 0, &p);
    return p.total;
}
#endif

int spec_plan_reserve(const sc_spec_cli *c, sc_engine_opts *eo) {
    eo->reserve_bytes = 0;
    if (!c->draft_dir) return 0;
#ifdef SC_HAVE_KERNELS
    sc_config cfg;
    int q, g, int8;
    if (draft_config(c, &cfg, &q, &g)) return -1;
    eo->reserve_bytes = draft_bytes(eo, &cfg, q, g, &int8);
#endif
    return 0;
}

#ifdef SC_HAVE_KERNELS
/* scratch column: the engine's scratch and any LoRA adapters it carries */
static void plan_row(const char *who, const char *dir, int int8, const sc_engine_plan *p, const char *why) {
    printf("| %s `%s` | %s | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %s |\n", who, dir, int8 ? "int8" : "fp16",
           p->weights / 1048576.0, p->kv / 1048576.0, (p->scratch + p->lora) / 1048576.0, p->total / 1048576.0, why);
}
#endif

int spec_plan_print(const sc_spec_cli *c, const char *target_dir, const sc_weights *target, const sc_engine_opts *eo) {
#ifndef SC_HAVE_KERNELS
    (void)c, (void)target_dir, (void)target, (void)eo;
    return sc_fail("--plan: this build has no CUDA engine (the CPU engine runs the weights as loaded)");
#else
    device_probe_info dp;
    int dev = device_count() > 0 && strcmp(eo->device ? eo->device : "auto", "cpu") != 0;
    if (!dev) device_probe_estimate(&dp);
    else if (device_probe(target->cfg.head_dim, &dp)) return -1;
    /* the budget for the arenas: --vram-budget; the device's free memory less the reserve; without a device the
     * 2 GiB card DESIGN.md plans for (the estimated context and the reserve taken off) */
    const char *bsrc = "--vram-budget";
    int64_t budget = c->vram_budget;
    if (budget <= 0 && dev) budget = device_probe_budget(&dp), bsrc = "free device memory less 64 MiB";
    if (budget <= 0)
        budget = (2ll << 30) - dp.overhead - DEVICE_RESERVE, bsrc = "no device: a 2 GiB card less the estimated context";
    if (!dev) dp.free_now = budget + DEVICE_RESERVE; /* what --precision auto decides on */
    sc_config dcfg;
    int dq = 0, dg = 0, dint8 = 0;
    int64_t reserve = 0;
    if (c->draft_dir) {
        if (draft_config(c, &dcfg, &dq, &dg)) return -1;
        reserve = draft_bytes(eo, &dcfg, dq, dg, &dint8);
    }
    char why[240];
    int tq = target->quantized, tg = tq ? target->group_size : 0;
    int tint8 = plan_int8(eo, &target->cfg, tq, tg, dp, reserve, why, sizeof why);
    sc_engine_plan tp, dpl = {0};
    engine_cuda_plan(&target->cfg, tint8, tg, eo->n_ctx, eo->n_seqs, eo->chunk, eo->kv_type, eo->lora, eo->n_lora,
                     &tp);
    int n_ctx = eo->n_ctx > 0 && eo->n_ctx < target->cfg.max_position_embeddings ? eo->n_ctx
                                                                                 : target->cfg.max_position_embeddings;
    printf("device plan (CUDA engine): %d positions x %d session(s)%s\n\n", n_ctx, eo->n_seqs > 0 ? eo->n_seqs : 1,
           c->draft_dir ? ", the model and its draft in one plan" : "");
    printf("| arena | precision | weights | KV caches | scratch | total | why |\n|---|---|---|---|---|---|---|\n");
    plan_row("model", target_dir, tint8, &tp, why);
    if (c->draft_dir) {
        engine_cuda_plan(&dcfg, dint8, dq ? dg : 0, eo->n_ctx, eo->n_seqs, eo->chunk, eo->kv_type, NULL, 0,
                         &dpl); /* no LoRA */
        plan_row("draft", c->draft_dir, dint8, &dpl,
                 dq ? "an INT8 checkpoint runs as stored" : "FP32 checkpoint: reserved at the larger FP16 (auto)");
    }
    char ctx[160];
    int64_t arenas = tp.total + dpl.total;
    printf("| arenas | | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | |\n", (tp.weights + dpl.weights) / 1048576.0,
           (tp.kv + dpl.kv) / 1048576.0, (tp.scratch + dpl.scratch) / 1048576.0, arenas / 1048576.0);
    printf("| CUDA context, cuBLAS, kernels | | | | | %.1f MiB | %s |\n", dp.overhead / 1048576.0,
           device_probe_describe(&dp, ctx, sizeof ctx));
    printf("| total | | | | | %.1f MiB | |\n\n", (arenas + dp.overhead) / 1048576.0);
    printf("budget for the arenas: %.1f MiB (%s): %s\n", budget / 1048576.0, bsrc,
           arenas <= budget ? "fits" : "does NOT fit");
    if (arenas > budget)
        return sc_fail("the plan's arenas (%.1f MiB) exceed the budget (%.1f MiB)", arenas / 1048576.0,
                       budget / 1048576.0);
    printf("left: %.1f MiB\n", (budget - arenas) / 1048576.0);
    return 0;
#endif
}
