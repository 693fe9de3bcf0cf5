/* cmd_eval.c — `smallcoder eval`: a model's mean loss and perplexity on a split of a shard directory, over
 * sequential windows (the same windows every time, the same ones `train --eval-every` uses). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "host/clock.h"
#include "host/args.h"
#include "host/command.h"
#include "train/backend.h"
#include "train/commands_train.h"
#include "train/data_source.h"
#include "host/device.h"
#include "host/error.h"
#include "host/model.h"
#include "train/trainer.h"
#ifdef SC_HAVE_INFER
#include "host/weights.h" /* infer_model_load: INT8 model directories are dequantized to FP32 */
#endif

int cmd_eval(int argc, char **argv) {
    const char *dir = NULL, *data = NULL, *split = "val", *lora_dir = NULL;
    sc_enum device = {DEVICE_AUTO, device_names};
    int seq = 0, micro_batch = 1, threads = 0, json = 0;
    int64_t max_tokens = 0;
    sc_arg args[] = {
        {"model", 'm', SC_ARG_STR, &dir, "model directory (config.json + model.safetensors), e.g. a ckpt-N", 1},
        {"data", 'd', SC_ARG_STR, &data, "shard directory", 1},
        {"split", 0, SC_ARG_STR, &split, "which shards: DATA/<split>-*.tok", 0},
        {"max-tokens", 0, SC_ARG_I64, &max_tokens, "evaluate at most this many tokens (0 = the whole split)", 0},
        {"seq", 0, SC_ARG_INT, &seq, "tokens per window (0 = the model's context length)", 0},
        {"micro-batch", 0, SC_ARG_INT, &micro_batch, "windows per forward pass", 0},
        SC_ARG_DEVICE(&device),
        SC_ARG_THREADS(&threads),
        {"json", 0, SC_ARG_FLAG, &json, "print one JSON object instead of text", 0},
        {"lora", 0, SC_ARG_STR, &lora_dir, "apply this PEFT LoRA adapter (e.g. a LoRA run's ckpt-N) unmerged", 0},
    };
    sc_cli cli = {"smallcoder eval", "--model DIR --data SHARD_DIR [--split val] [--max-tokens N]",
                  "Prints the mean cross-entropy (nats/token) and perplexity of the model on consecutive windows of\n"
                  "the split, each token predicted from the window before it.",
                  args, sizeof args / sizeof args[0], 0, 0};
    static const sc_arg_range ranges[] = {SC_RANGE_THREADS, {"max-tokens", 0, 1e15}, {"seq", 0, 1 << 20},
                                          {"micro-batch", 1, 1 << 16}};
    sc_command cmd = {.cli = &cli, SC_COMMAND_RANGES(ranges), .device = &device, .auto_prefers_cuda = 1,
                      .threads = &threads};
    if (sc_command_parse(&cmd, argc, argv)) return cmd.status;
    if (sc_command_setup(&cmd)) return cmd.status;
    int use_cuda = cmd.use_cuda, nthreads = cmd.nthreads;
    sc_model m;
    sc_lora ad = {0};
    batch_source src = {0};
    train_backend b = {0};
#ifdef SC_HAVE_INFER
    if (infer_model_load(&m, dir)) goto fail_nomodel;
#else
    if (model_load(&m, dir)) goto fail_nomodel;
#endif
    if (lora_dir && lora_load(&ad, lora_dir, &m.cfg, dir)) goto fail;
    if (seq <= 0) seq = m.cfg.max_position_embeddings;
    if (seq > m.cfg.max_position_embeddings) {
        sc_fail("--seq %d is longer than the model's context (%d)", seq, m.cfg.max_position_embeddings);
        goto fail;
    }
    if (data_source_open(&src, data, split, seq, 0, 0, 0, NULL)) goto fail;
    if (src.vocab_size > (uint32_t)m.cfg.vocab_size) {
        sc_fail("%s: the shards use %u token ids, the model's vocabulary has %d", data, src.vocab_size, m.cfg.vocab_size);
        goto fail;
    }
    if (use_cuda && lora_dir) { /* the FP16 base and the adapter's branch on the device (docs/lora.md) */
        if (backend_lora_cuda_open_eval(&b, &m, &ad, seq)) goto fail;
    } else if (use_cuda) {
        if (backend_cuda_open_eval(&b, &m, seq)) goto fail;
    } else if (lora_dir) {
        backend_lora_open(&b, &m, &ad, seq, 0, 0);
    } else {
        backend_cpu_open(&b, &m, seq, 0);
    }
    double loss, t0 = clock_now();
    int64_t tokens;
    if (trainer_evaluate(&b, &src, micro_batch, max_tokens, &loss, &tokens)) goto fail;
    double dt = clock_now() - t0;
    if (json)
        printf("{\"loss\":%.9g,\"perplexity\":%.9g,\"tokens\":%lld,\"seq\":%d,\"split\":\"%s\"}\n", loss, exp(loss),
               (long long)tokens, seq, split);
    else
        printf("%s loss %.4f, perplexity %.3f over %lld tokens (windows of %d)\n", split, loss, exp(loss),
               (long long)tokens, seq);
    char where[400];
    if (use_cuda && lora_dir) backend_lora_cuda_describe(&b, where, sizeof where);
    else if (use_cuda) backend_cuda_describe(&b, where, sizeof where);
    else snprintf(where, sizeof where, "cpu, %d threads", nthreads);
    fprintf(stderr, "eval: %.1fs on %s (%.0f tok/s)\n", dt, where, dt > 0 ? tokens / dt : 0.0);
    backend_close(&b);
    batch_source_close(&src);
    lora_free(&ad);
    model_free(&m);
    return 0;
fail:
    backend_close(&b);
    batch_source_close(&src);
    lora_free(&ad);
    model_free(&m);
fail_nomodel:
    return sc_command_fail(&cmd);
}
