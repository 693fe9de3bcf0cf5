/* lora_train.c — see lora_train.h. */
#include "train/lora_train.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/args.h"
#include "host/error.h"
#include "host/lora_cpu.h"

int lora_train_check(const train_cli *o, unsigned *targets) {
    if (o->lora < 1) return sc_fail("--lora must be a rank of at least 1, got %d", o->lora);
    if (o->lora_alpha < 0 || !isfinite(o->lora_alpha)) return sc_fail("--lora-alpha must be positive (0 = 2 x rank)");
    if (!(o->lora_dropout >= 0 && o->lora_dropout < 1))
        return sc_fail("--lora-dropout must be in [0, 1), got %g", (double)o->lora_dropout);
    if (lora_parse_targets(o->lora_targets, "--lora-targets", targets)) return -1;
    static const char *const precisions[] = {"auto", "fp32", "fp16", "int8", NULL};
    if (sc_enum_index("base-precision", precisions, o->base_precision) < 0) return -1;
    if (o->preset) return sc_fail("--lora fine-tunes an existing model: give --model BASE_DIR, not --preset");
    return 0;
}

int lora_train_load_base(sc_model *base, const char *dir, const train_cli *o) {
    if (model_load(base, dir)) return -1;
    const char *p = strcmp(o->base_precision, "auto") ? o->base_precision : "fp32";
    if (lora_base_precision(base, p)) {
        model_free(base);
        return -1;
    }
    return 0;
}

int lora_train_fresh(sc_lora *ad, const sc_model *base, const char *base_dir, const train_cli *o, unsigned targets) {
    char abs[PATH_MAX];
    if (!realpath(base_dir, abs)) snprintf(abs, sizeof abs, "%s", base_dir);
    float alpha = o->lora_alpha > 0 ? o->lora_alpha : 2.0f * (float)o->lora;
    if (lora_create(ad, &base->cfg, o->lora, alpha, targets, o->lora_dropout, abs)) return -1;
    lora_init_weights(ad, (uint64_t)o->seed);
    return 0;
}

int lora_train_base_dir(const char *ckpt, const train_cli *o, int model_given, char *out) {
    if (model_given) {
        snprintf(out, 4096, "%s", o->model);
        return 0;
    }
    int rank;
    float alpha, dropout;
    unsigned targets;
    if (lora_read_config(ckpt, &rank, &alpha, &targets, &dropout, out, 4096)) return -1;
    if (!out[0])
        return sc_fail("%s/adapter_config.json: field base_model_name_or_path is empty: give the base with --model DIR",
                       ckpt);
    return 0;
}

int lora_train_check_resumed(const sc_lora *ad, const train_cli *o, int rank_given, int targets_given,
                             const char *ckpt) {
    if (rank_given && o->lora != ad->rank)
        return sc_fail("--lora %d: the adapter in %s has rank %d; a resumed run keeps its adapter's shape", o->lora,
                       ckpt, ad->rank);
    unsigned t;
    if (targets_given && (lora_parse_targets(o->lora_targets, "--lora-targets", &t) || t != ad->targets)) {
        char buf[128];
        return sc_fail("--lora-targets %s: the adapter in %s adapts %s; a resumed run keeps its adapter's shape",
                       o->lora_targets, ckpt, lora_targets_string(ad->targets, buf, sizeof buf));
    }
    return 0;
}
