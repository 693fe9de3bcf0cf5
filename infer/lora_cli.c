/* lora_cli.c — see lora_cli.h. */
#include "infer/lora_cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/device_probe.h"
#include "host/error.h"
#include "host/fileio.h"

/* one "[NAME=]DIR[:SCALE]" item into slot c->n (SCALE only for --lora-scaled) */
static int add_item(sc_lora_cli *c, const char *opt, const char *item, size_t len) {
    int scaled = !strcmp(opt, "lora-scaled");
    char buf[4300];
    if (len == 0 || len >= sizeof buf)
        return sc_fail("--%s: expected [NAME=]DIR%s, got '%.*s'", opt, scaled ? ":SCALE" : "", (int)len, item);
    if (c->n >= ENGINE_LORA_MAX) return sc_fail("--%s: at most %d LoRA adapters", opt, ENGINE_LORA_MAX);
    memcpy(buf, item, len);
    buf[len] = 0;
    char *dir = buf, *eq = strchr(buf, '=');
    const char *name = NULL;
    if (eq && !memchr(buf, '/', (size_t)(eq - buf))) *eq = 0, name = buf, dir = eq + 1; /* NAME=DIR */
    float scale = 1.0f;
    if (scaled) {
        char *colon = strrchr(dir, ':'), *end;
        if (!colon) return sc_fail("--lora-scaled %s: expected [NAME=]DIR:SCALE", item);
        *colon = 0;
        errno = 0;
        scale = strtof(colon + 1, &end);
        if (end == colon + 1 || *end || errno || !isfinite(scale))
            return sc_fail("--lora-scaled: '%s' is not a number (expected [NAME=]DIR:SCALE)", colon + 1);
    }
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') dir[--dl] = 0;
    if (!dl) return sc_fail("--%s: an empty directory in '%.*s'", opt, (int)len, item);
    if (!name) { /* the directory's last component */
        const char *slash = strrchr(dir, '/');
        name = slash ? slash + 1 : dir;
    }
    if (!name[0] || strlen(name) >= sizeof c->name[0]) return sc_fail("--%s: bad adapter name '%s'", opt, name);
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->name[i], name))
            return sc_fail("--%s: two adapters are named '%s' (give NAME=DIR)", opt, name);
    if (dl >= sizeof c->dir[0]) return sc_fail("--%s: directory name too long", opt);
    snprintf(c->name[c->n], sizeof c->name[0], "%s", name);
    snprintf(c->dir[c->n], sizeof c->dir[0], "%s", dir);
    c->scales.scale[c->n++] = scale;
    return 0;
}

/* The names the base in model_dir answers to for an adapter's base_model_name_or_path, besides the directory: the
 * name its config.json carries (HF's "_name_or_path": a downloaded model keeps its hub name there) and, for an INT8
 * copy, the directory it was quantized from (quantization_config.quantized_from, written by `quantize`). */
static int base_aliases(const char *model_dir, char names[2][4096]) {
    char p[4200], *text;
    size_t len;
    int n = 0;
    if (file_read_all(path_join(p, sizeof p, model_dir, "config.json"), &text, &len)) return 0;
    cJSON *j = cJSON_ParseWithLength(text, len), *qc = cJSON_GetObjectItemCaseSensitive(j, "quantization_config");
    free(text);
    const cJSON *v[2] = {cJSON_GetObjectItemCaseSensitive(j, "_name_or_path"),
                         cJSON_GetObjectItemCaseSensitive(qc, "quantized_from")};
    for (int i = 0; i < 2; i++)
        if (cJSON_IsString(v[i]) && v[i]->valuestring[0]) snprintf(names[n++], sizeof names[0], "%s", v[i]->valuestring);
    cJSON_Delete(j);
    return n;
}

int lora_cli_open(sc_lora_cli *c, const sc_config *base, const char *model_dir) {
    c->n = 0;
    memset(&c->scales, 0, sizeof c->scales);
    for (int a = 0; a < c->args.n; a++) { /* llama.cpp: comma-separated values too */
        const char *v = c->args.value[a];
        for (const char *p = v;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (add_item(c, c->args.opt[a], p, len)) return -1;
            if (!comma) break;
            p = comma + 1;
        }
    }
    char alias[2][4096];
    int nalias = c->n ? base_aliases(model_dir, alias) : 0;
    for (int i = 0; i < c->n; i++) {
        int rc = lora_load(&c->ad[i], c->dir[i], base, model_dir);
        if (rc && strstr(sc_error(), "trained for another base")) { /* under another of the base's names? */
            char first[1200];
            snprintf(first, sizeof first, "%s", sc_error());
            for (int k = 0; k < nalias && rc; k++) rc = lora_load(&c->ad[i], c->dir[i], base, alias[k]);
            if (rc && strstr(sc_error(), "trained for another base")) sc_fail("%s", first);
        }
        if (rc || engine_lora_check(&c->ad[i], base, c->dir[i])) {
            char why[1024];
            snprintf(why, sizeof why, "%s", sc_error());
            for (int k = 0; k < i; k++) lora_free(&c->ad[k]);
            c->n = 0;
            return sc_fail("--lora %s: %s", c->dir[i], why);
        }
        c->ptr[i] = &c->ad[i];
    }
    return 0;
}

const char *lora_cli_describe(const sc_lora_cli *c, const sc_lora_set *scales, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "%d LoRA adapter%s", c->n, c->n == 1 ? "" : "s");
    for (int i = 0; i < c->n && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s %d %s (%s, rank %d, alpha %g, scale %g)", i ? "," : ":", i,
                              c->name[i], c->dir[i], c->ad[i].rank, (double)c->ad[i].alpha,
                              (double)scales->scale[i]);
    return buf;
}

void lora_cli_plan(const sc_lora_cli *c, const sc_weights *w, const char *model_dir, int n_ctx, int n_seqs,
                   int kv_type) {
    const sc_config *cfg = &w->cfg;
    const double mib = 1048576.0;
    int64_t lora = 0;
    for (int i = 0; i < c->n; i++) lora += c->ad[i].nparams * (int64_t)sizeof(float);
    int64_t kv = 2LL * cfg->num_hidden_layers * (int64_t)kv_row_bytes(kv_type, cfg->num_key_value_heads, cfg->head_dim) *
                 n_ctx * n_seqs;
    printf("plan: %s (%s), %d LoRA adapter%s (%.1f MiB in FP32", model_dir, w->quantized ? "INT8" : "FP32", c->n,
           c->n == 1 ? "" : "s", lora / mib);
    for (int i = 0; i < c->n; i++) printf("%s %s rank %d", i ? "," : ":", c->name[i], c->ad[i].rank);
    printf("), %d session%s x %d positions\n", n_seqs, n_seqs == 1 ? "" : "s", n_ctx);
    printf("  CPU engine: weights %.1f MiB as loaded + LoRA adapters %.1f MiB (FP32, read where loaded) + KV %.1f MiB "
           "(%s) = %.1f MiB host memory besides scratch\n",
           w->weight_bytes / mib, lora / mib, kv / mib, kv_type_names[kv_type], (w->weight_bytes + lora + kv) / mib);
#ifdef SC_HAVE_KERNELS
    device_probe_info dp;
    device_probe_estimate(&dp);
    for (int int8 = 1; int8 >= 0; int8--) {
        sc_engine_plan p;
        engine_cuda_plan(cfg, int8, int8 && w->quantized ? w->group_size : 0, n_ctx, n_seqs, 0, kv_type, c->ptr, c->n,
                         &p);
        printf("  CUDA engine, %s: arena %.1f MiB = weights %.1f + LoRA adapters %.1f (FP32) + KV %.1f + scratch %.1f; "
               "+ CUDA context, cuBLAS, kernels %.0f MiB (estimate) = %.1f MiB of device memory\n",
               int8 ? "--precision int8" : "--precision fp16", p.total / mib, p.weights / mib, p.lora / mib,
               p.kv / mib, p.scratch / mib, dp.overhead / mib, (p.total + dp.overhead) / mib);
    }
#else
    printf("  CUDA engine: not in this build (no CUDA kernels)\n");
#endif
}

void lora_cli_close(sc_lora_cli *c) {
    for (int i = 0; i < c->n; i++) lora_free(&c->ad[i]);
    c->n = 0;
}
