/* model_dir.h — the set-up the model and engine tests (CPU ones and tests/gpu) made alike, each with its copy: a
 * random tiny model, a scratch directory (removed with all it holds at the end), a model written there as it is or
 * quantized to INT8 and loaded back as engine weights, random PEFT adapters written and read back, and argmax. A
 * set-up step that fails prints why and exits 1: no check after it would mean anything. */
#ifndef SC_TESTS_MODEL_DIR_H
#define SC_TESTS_MODEL_DIR_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "host/error.h"
#include "host/lora.h"
#include "host/model.h"
#include "host/rng.h"
#include "host/weights.h"
#include "infer/quantize.h"

/* the tiny preset with ctx positions (0: the preset's), its weights from model_init_weights(seed, std) */
static inline void md_tiny(sc_model *m, int ctx, uint64_t seed, float std) {
    sc_config cfg;
    config_preset(&cfg, "tiny");
    if (ctx > 0) cfg.max_position_embeddings = ctx;
    model_create(m, &cfg);
    model_init_weights(m, seed, std);
}

/* mkdtemp on tmpl ("/tmp/sc_test_x.XXXXXX"), or exit */
static inline char *md_mkdtemp(char *tmpl) {
    if (!mkdtemp(tmpl)) {
        perror(tmpl);
        exit(1);
    }
    return tmpl;
}

/* rm -rf dir; only a note when it cannot (the checks' result stands) */
static inline void md_remove(const char *dir) {
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) printf("note: could not remove %s\n", dir);
}

/* m written to dir/name, as it is (group < 0) or quantized to INT8 (group 0 = per row, else the group size), and
 * loaded into w (when w is not NULL) */
static inline void md_save_load(const sc_model *m, const char *dir, const char *name, int group, sc_weights *w) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if ((group < 0 ? model_save(m, path) : quantize_model(m, path, group)) || (w && weights_load(w, path))) {
        printf("writing and loading %s: %s\n", path, sc_error());
        exit(1);
    }
}

/* the scratch directory made from dir (a mkdtemp template), m written there as fp32/ and int8/ (per row) and
 * loaded into w32 and w8: the two checkpoints most engine tests compare */
static inline void md_twins(const sc_model *m, char *dir, sc_weights *w32, sc_weights *w8) {
    md_mkdtemp(dir);
    md_save_load(m, dir, "fp32", -1, w32);
    md_save_load(m, dir, "int8", 0, w8);
}

/* A random adapter for cfg (rank, alpha 2 x rank, lora_init_weights(seed)) whose B is drawn N(0, bstd^2) from
 * bseed, so that it moves the logits (PEFT starts B at 0), written to dir/name and read back into out; base_name:
 * the base it names (NULL: none). */
static inline void md_adapter(sc_lora *out, const sc_config *cfg, const char *dir, const char *name, uint64_t seed,
                              uint64_t bseed, double bstd, unsigned targets, int rank, const char *base_name) {
    sc_lora ad;
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    if (lora_create(&ad, cfg, rank, 2.0f * rank, targets, 0.0f, base_name)) printf("%s\n", sc_error()), exit(1);
    lora_init_weights(&ad, seed);
    sc_rng r;
    rng_seed(&r, bseed);
    for (int l = 0; l < ad.nlayers; l++)
        for (int t = 0; t < LORA_NTARGETS; t++) {
            float *b = lora_b(&ad, l, t);
            for (int64_t i = 0; b && i < (int64_t)ad.out[t] * ad.rank; i++) b[i] = (float)(bstd * rng_normal(&r));
        }
    mkdir(p, 0755);
    if (lora_save(&ad, p) || lora_load(out, p, cfg, base_name)) printf("adapter %s: %s\n", p, sc_error()), exit(1);
    lora_free(&ad);
}

/* the first index of the largest x[i] */
static inline int md_argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* rows t of [T, V] logits whose argmax is the same in a and b */
static inline int md_argmax_agreement(const float *a, const float *b, int T, int V) {
    int agree = 0;
    for (int t = 0; t < T; t++) agree += md_argmax(a + (size_t)t * V, V) == md_argmax(b + (size_t)t * V, V);
    return agree;
}

#endif
