/* smallcoder.c — the entry point: a table of subcommands and nothing else. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "host/cpu_tune.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    int decodes; /* spends its time in token-by-token decode: many short parallel loops (host/cpu_tune.h) */
} command;

#ifdef SC_HAVE_TRAIN
/* `train` with distillation: train/ owns the loss hook (train/loss_hook.h), distill/ provides it; they meet here,
 * where both are visible, so neither stage includes the other. */
static int cmd_train_wired(int argc, char **argv) {
#ifdef SC_HAVE_DISTILL
    return cmd_train(argc, argv, &kd_train_provider);
#else
    return cmd_train(argc, argv, NULL);
#endif
}
#endif

static const command commands[] = {
    {"init", cmd_init, "create a model directory (config.json + model.safetensors) from a preset", 0},
    {"info", cmd_info, "print a model's config, parameter count and memory footprint", 0},
    {"forward", cmd_forward, "run the model on token ids: loss, logits and gradients", 0},
#ifdef SC_HAVE_DATA
    {"shard-info", cmd_shard_info, "print and verify token shards (*.tok), or dump their ids", 0},
    {"tokenize", cmd_tokenize, "turn source files into train/val token shards (zstd, indexed)", 0},
    {"tokenizer", cmd_tokenizer, "train a BPE tokenizer (HF tokenizer.json), encode files, decode ids", 0},
#endif
#ifdef SC_HAVE_TRAIN
    {"train", cmd_train_wired, "train the model on token shards: checkpoints, resume, eval, metrics and plot", 0},
    {"eval", cmd_eval, "validation loss and perplexity of a model on token shards", 0},
    {"lora", cmd_lora, "LoRA adapters (PEFT layout): merge into the base, or init a fresh one", 0},
#endif
#ifdef SC_HAVE_DISTILL
    {"teacher", cmd_teacher, "run a teacher over token shards: top-k logits per position (*.kd) for distillation", 0},
#endif
#ifdef SC_HAVE_INFER
    {"quantize", cmd_quantize, "FP32/FP16 model directory -> INT8 (weight-only, FP16 scales per row or group)", 0},
    {"complete", cmd_complete, "complete code from the command line (fill-in-the-middle with a suffix)", 1},
    {"infer-bench", cmd_infer_bench, "inference speed: prefill and decode tok/s at batch 1, bytes per token", 1},
    {"export", cmd_export, "export a model directory for other runtimes: gguf (llama.cpp; f16 or q8_0)", 0},
    {"serve", cmd_serve, "HTTP completion server (llama.cpp /completion /infill, OpenAI /v1/completions)", 1},
#endif
};

static void usage(FILE *f) {
    fprintf(f, "usage: smallcoder COMMAND [options]   (smallcoder COMMAND --help for its options)\n\n"
               "Train, distil and run a small code-completion model on a 2 GB GPU or the CPU.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

static const command *command_find(const char *name) {
    for (size_t i = 0; name && i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0) return &commands[i];
    return NULL;
}

int main(int argc, char **argv) {
    const command *cmd = argc >= 2 ? command_find(argv[1]) : NULL;
    cpu_tune_startup(argv, cmd && cmd->decodes);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (cmd) return cmd->run(argc - 1, argv + 1);
    fprintf(stderr, "smallcoder: unknown command '%s' (see smallcoder --help)\n", argv[1]);
    return 2;
}
