/* cmd_quantize.c — `smallcoder quantize`: an FP32/FP16 model directory -> an INT8 one (weight-only, symmetric,
 * FP16 scales per row or per group; embeddings and lm_head too). Format: docs/inference.md. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/args.h"
#include "host/command.h"
#include "infer/commands_infer.h"
#include "infer/quantize.h"
#include "host/error.h"
#include "host/fileio.h"
#include "host/half.h"
#include "host/model.h"
#include "host/quant.h"
#include "host/weights.h"

static int copy_file(const char *src, const char *dst) {
    char *data;
    size_t len;
    if (file_read_all(src, &data, &len)) return -1;
    int rc = atomic_write_file(dst, data, len);
    free(data);
    return rc;
}

/* Whether paths a and b name one directory (symlinks, "D/." and other spellings included): quantizing into the
 * model's own directory would replace the FP32 weights it reads. */
static int same_dir(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* A failed quantize leaves nothing: the files it writes and the directory when it made it. */
/* Records in out/config.json where the INT8 copy came from: quantization_config.quantized_from = the source
 * directory's absolute path, and the source's HF "_name_or_path" when it has one. A LoRA adapter names its base by
 * path (base_model_name_or_path); `--lora` accepts it on this copy under either name (infer/lora_cli.c). */
static int record_source(const char *dir, const char *out) {
    char p[4200], abs[4096], *text;
    size_t len;
    const char *from = realpath(dir, abs) ? abs : dir;
    char *name = NULL;
    if (file_read_all(path_join(p, sizeof p, dir, "config.json"), &text, &len) == 0) {
        cJSON *j = cJSON_ParseWithLength(text, len);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "_name_or_path");
        if (cJSON_IsString(v) && v->valuestring[0]) name = strdup(v->valuestring);
        cJSON_Delete(j);
        free(text);
    }
    if (file_read_all(path_join(p, sizeof p, out, "config.json"), &text, &len)) return free(name), -1;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    cJSON *qc = cJSON_GetObjectItemCaseSensitive(j, "quantization_config");
    if (!qc) {
        cJSON_Delete(j), free(name);
        return sc_fail("%s: no quantization_config after quantizing", p);
    }
    cJSON_AddStringToObject(qc, "quantized_from", from);
    if (name) cJSON_AddStringToObject(j, "_name_or_path", name);
    char *o = cJSON_Print(j);
    int rc = atomic_write_file(p, o, strlen(o));
    free(o), free(name);
    cJSON_Delete(j);
    return rc;
}

static void remove_output(const char *out, int made) {
    static const char *const files[] = {"model.safetensors", "config.json", "tokenizer.json", NULL};
    char p[4096];
    if (!made) return;
    for (int i = 0; files[i]; i++) unlink(path_join(p, sizeof p, out, files[i]));
    rmdir(out);
}

int cmd_quantize(int argc, char **argv) {
    const char *dir = NULL, *out = NULL;
    int group = 0, threads = 0;
    sc_arg args[] = {
        {"model", 'm', SC_ARG_STR, &dir, "FP32/FP16 model directory", 1},
        {"out", 'o', SC_ARG_STR, &out, "INT8 model directory to write", 1},
        {"group-size", 'g', SC_ARG_INT, &group, "columns per FP16 scale: 0 (per row), 32, 64 or 128", 0},
        SC_ARG_THREADS(&threads),
    };
    sc_cli cli = {"smallcoder quantize", "--model DIR --out DIR8 [--group-size 0|32|64|128]",
                  "Weight-only symmetric INT8: every matrix (embeddings and lm_head included) becomes I8 with FP16\n"
                  "scales in \"<name>.scale\" [rows, groups]; norms stay FP32; config.json gets quantization_config;\n"
                  "tokenizer.json is copied.",
                  args, sizeof args / sizeof args[0], 0, 0};
    static const sc_arg_range ranges[] = {SC_RANGE_THREADS};
    sc_command cmd = {.cli = &cli, SC_COMMAND_RANGES(ranges), .threads = &threads};
    if (sc_command_parse(&cmd, argc, argv)) return cmd.status;
    if (group != 0 && group != 32 && group != 64 && group != 128) {
        fprintf(stderr, "smallcoder quantize: --group-size must be 0, 32, 64 or 128, got %d\n", group);
        return 2;
    }
    if (same_dir(dir, out)) {
        fprintf(stderr, "smallcoder quantize: --out %s is the model directory %s: it would replace the weights being "
                        "read; choose another --out\n", out, dir);
        return 2;
    }
    if (sc_command_setup(&cmd)) return cmd.status;
    int rc, g0, made = 0;
    int isq = quant_config_read(dir, &g0);
    if (isq > 0) {
        sc_fail("%s is already quantized (group_size %d)", dir, g0);
        goto fail;
    }
    sc_model m;
    if (isq < 0 || model_load(&m, dir)) goto fail;
    if (mkdir(out, 0755) == 0) made = 1;
    rc = quantize_model(&m, out, group);
    int64_t np = m.nparams;
    model_free(&m);
    if (rc || record_source(dir, out)) goto fail;
    char src[4096], dst[4096];
    path_join(src, sizeof src, dir, "tokenizer.json");
    struct stat st;
    if (stat(src, &st) == 0 && copy_file(src, path_join(dst, sizeof dst, out, "tokenizer.json"))) goto fail;
    path_join(dst, sizeof dst, out, "model.safetensors");
    if (stat(dst, &st) == 0)
        fprintf(stderr, "quantize: %lld parameters -> %s (%.1f MiB, group size %d)\n", (long long)np, out,
                st.st_size / 1048576.0, group);
    return 0;
fail:
    remove_output(out, made);
    return sc_command_fail(&cmd);
}
