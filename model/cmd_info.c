/* cmd_info.c — `smallcoder info DIR`: the config, the exact parameter count and what the weights weigh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/args.h"
#include "model/commands_model.h"
#include "host/error.h"
#include "host/fileio.h"
#include "host/model.h"
#include "host/safetensors.h"

/* 304539264 -> "304,539,264" */
static const char *grouped(int64_t v, char *buf, size_t size) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)v), k = 0;
    for (int i = 0; i < n && (size_t)k + 2 < size; i++) {
        if (i && (n - i) % 3 == 0 && digits[i - 1] != '-') buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = 0;
    return buf;
}

static void print_size(const char *label, double bytes) {
    printf("  %-34s %10.1f MiB\n", label, bytes / 1048576.0);
}

int cmd_info(int argc, char **argv) {
    const char *dir = NULL;
    sc_arg args[] = {{"model", 'm', SC_ARG_STR, &dir, "model directory (or give it as the argument)", 0}};
    sc_cli cli = {"smallcoder info", "DIR",
                  "Prints DIR/config.json, the exact parameter count and the memory the weights take in\n"
                  "FP32, FP16 and INT8 (per-row FP16 scales), and checks DIR/model.safetensors against the config.",
                  args, 1, 0, 1};
    int npos, rc = sc_args_parse(&cli, argc, argv, &npos);
    if (rc) return rc == 1 ? 0 : 2;
    if (npos) dir = argv[0];
    if (!dir) {
        fprintf(stderr, "smallcoder info: missing model directory (see smallcoder info --help)\n");
        return 2;
    }
    char path[4096], buf[32];
    sc_config c;
    if (config_load(&c, path_join(path, sizeof path, dir, "config.json"))) goto fail;
    printf("%s\n", dir);
    printf("  hidden_size %d, intermediate_size %d, num_hidden_layers %d\n", c.hidden_size, c.intermediate_size,
           c.num_hidden_layers);
    printf("  num_attention_heads %d, num_key_value_heads %d (GQA %d:1), head_dim %d\n", c.num_attention_heads,
           c.num_key_value_heads, c.num_attention_heads / c.num_key_value_heads, c.head_dim);
    printf("  vocab_size %d, max_position_embeddings %d, tie_word_embeddings %s\n", c.vocab_size,
           c.max_position_embeddings, c.tie_word_embeddings ? "true" : "false");
    printf("  rms_norm_eps %g, rope_theta %g, bos %d, eos %d\n", c.rms_norm_eps, c.rope_theta, c.bos_token_id,
           c.eos_token_id);

    sc_param *table;
    int64_t total;
    int nt = model_param_table(&c, &table, &total);
    int64_t matrix_rows = 0, vector_params = 0;
    for (int i = 0; i < nt; i++) {
        if (table[i].ndim == 2) matrix_rows += table[i].shape[0];
        else vector_params += table[i].numel;
    }
    free(table);
    printf("parameters: %s (%d tensors)\n", grouped(total, buf, sizeof buf), nt);
    printf("weights in memory:\n");
    print_size("FP32", 4.0 * (double)total);
    print_size("FP16", 2.0 * (double)total);
    /* INT8: one byte per matrix weight, an FP16 scale per row, norm weights kept in FP16 */
    print_size("INT8 (per-row FP16 scales)", (double)(total - vector_params) + 2.0 * (double)matrix_rows +
                                                 2.0 * (double)vector_params);
    int64_t kv_per_token = 2LL * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * 2;
    printf("  %-34s %10.1f KiB/token, %.1f MiB at %d tokens\n", "FP16 KV cache", kv_per_token / 1024.0,
           (double)kv_per_token * c.max_position_embeddings / 1048576.0, c.max_position_embeddings);

    char cpath[4096];
    path_join(cpath, sizeof cpath, dir, "config.json");
    st_file f;
    if (st_open(&f, path_join(path, sizeof path, dir, "model.safetensors"))) goto fail;
    rc = model_check_file(&c, &f, cpath);
    int int8 = 0;
    for (int i = 0; i < f.ntensors; i++) int8 |= f.tensors[i].dtype == ST_I8;
    if (!rc) printf("file: %s, %d tensors, %.1f MiB, dtype %s, matches the config\n", path, f.ntensors,
                    f.map_len / 1048576.0, int8 ? "I8 (INT8 matrices, F16 scales)"
                                                : f.ntensors ? st_dtype_name(f.tensors[0].dtype) : "-");
    st_close(&f);
    if (rc) goto fail;
    return 0;
fail:
    fprintf(stderr, "smallcoder info: %s\n", sc_error());
    return 1;
}
