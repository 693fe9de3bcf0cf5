/* cmd_export.c — `smallcoder export gguf`: a model directory (FP32 or INT8) as a llama.cpp GGUF file. */
#include <stdio.h>
#include <string.h>

#include "host/args.h"
#include "host/command.h"
#include "infer/commands_infer.h"
#include "host/error.h"
#include "infer/gguf.h"

/* --type: the matrix types gguf_export writes, by name (an SC_ARG_ENUM) and as GGML type ids */
static const char *const export_type_names[] = {"f16", "q8_0", NULL};
static const int export_type_ggml[] = {GGML_F16, GGML_Q8_0};

int cmd_export(int argc, char **argv) {
    const char *dir = NULL, *out = NULL;
    sc_enum type = {0, export_type_names};
    sc_arg args[] = {
        {"model", 'm', SC_ARG_STR, &dir, "model directory (FP32/FP16 or INT8; INT8 is dequantized first)", 1},
        {"out", 'o', SC_ARG_STR, &out, "GGUF file to write", 1},
        {"type", 0, SC_ARG_ENUM, &type, "matrix type", 0},
    };
    sc_cli cli = {"smallcoder export", "gguf --model DIR --out F.gguf [--type f16|q8_0]",
                  "Writes a llama.cpp GGUF (architecture `llama`, tokenizer included) that llama.cpp loads.",
                  args, sizeof args / sizeof args[0], 1, 1};
    static const int all_cores = 0;
    sc_command cmd = {.cli = &cli, .threads = &all_cores};
    if (sc_command_parse(&cmd, argc, argv)) return cmd.status;
    if (strcmp(argv[0], "gguf") != 0) {
        fprintf(stderr, "smallcoder export: the only format is gguf, got '%s'\n", argv[0]);
        return 2;
    }
    sc_command_setup(&cmd); /* no device: it cannot fail */
    int t = export_type_ggml[type.value];
    gguf_file g;
    if (gguf_export(dir, out, t) || gguf_open(&g, out)) return sc_command_fail(&cmd); /* parse back what was written */
    fprintf(stderr, "export: %s: GGUF v%u, %llu tensors, %llu metadata keys, %.1f MiB (%s)\n", out, g.version,
            (unsigned long long)g.nt, (unsigned long long)g.nkv, g.size / 1048576.0, export_type_names[type.value]);
    gguf_close(&g);
    return 0;
}
