/* cmd_info.c — `smallcoder info DIR`: the config, the exact parameter count and what the weights weigh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/args.h"
#include "host/command.h"
#include "model/commands_model.h"
#include "host/error.h"
#include "host/fileio.h"
#include "host/model.h"
#include "host/safetensors_set.h"

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
    sc_command cmd = {.cli = &cli};
    if (sc_command_parse(&cmd, argc, argv)) return cmd.status;
    int rc = 0;
    if (cmd.npos) dir = argv[0];
    if (!dir) {
        fprintf(stderr, "smallcoder info: missing model directory (see smallcoder info --help)\n");
        return 2;
    }
    char buf[32];
    sc_config c;
    if (model_config_load(&c, dir, NULL)) goto fail;
    printf("%s\n", dir);
    printf("  hidden_size %d, intermediate_size %d, num_hidden_layers %d\n", c.hidden_size, c.intermediate_size,
           c.num_hidden_layers);
    printf("  num_attention_heads %d, num_key_value_heads %d (GQA %d:1), head_dim %d\n", c.num_attention_heads,
           c.num_key_value_heads, c.num_attention_heads / c.num_key_value_heads, c.head_dim);
    printf("  vocab_size %d, max_position_embeddings %d, tie_word_embeddings %s\n", c.vocab_size,
           c.max_position_embeddings, c.tie_word_embeddings ? "true" : "false");
    printf("  rms_norm_eps %g, rope_theta %g, bos %d, eos", c.rms_norm_eps, c.rope_theta, c.bos_token_id);
    for (int i = 0; i < c.n_eos; i++) printf("%s%d", i ? "," : " ", c.eos_ids[i]);
    printf("%s\n", c.n_eos ? "" : " -1");
    printf("  model_type %s, biases: q/k/v %s, o %s, mlp %s\n", c.model_type, c.qkv_bias ? "yes" : "no",
           c.o_bias ? "yes" : "no", c.mlp_bias ? "yes" : "no");
    if (c.rope_scaling == SC_ROPE_LINEAR) printf("  rope_scaling linear, factor %g\n", c.rope_factor);
    if (c.rope_scaling == SC_ROPE_LLAMA3)
        printf("  rope_scaling llama3, factor %g, low/high freq factor %g/%g, original context %d\n", c.rope_factor,
               c.rope_low_freq_factor, c.rope_high_freq_factor, c.rope_original_max_pos);

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
    st_set f;
    if (st_set_open(&f, dir)) goto fail;
    rc = model_check_set(&c, &f, cpath);
    int int8 = 0;
    for (int i = 0; i < f.ntensors; i++) int8 |= st_set_tensor(&f, i)->dtype == ST_I8;
    if (!rc) printf("file: %s, %d tensors, %.1f MiB, dtype %s, matches the config\n", f.desc, f.ntensors,
                    f.bytes / 1048576.0, int8 ? "I8 (INT8 matrices, F16 scales)"
                                         : f.ntensors ? st_dtype_name(st_set_tensor(&f, 0)->dtype) : "-");
    st_set_close(&f);
    if (rc) goto fail;
    return 0;
fail:
    fprintf(stderr, "smallcoder info: %s\n", sc_error());
    return 1;
}
