/* cmd_forward.c — `smallcoder forward`: loss, logits and gradients for a token sequence; how anyone checks this
 * implementation against another (tests/reference/ does, with PyTorch). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/clock.h"
#include "host/args.h"
#include "host/command.h"
#include "model/commands_model.h"
#include "model/cuda_forward.h"
#include "host/device.h"
#include "host/error.h"
#include "host/model.h"
#include "host/lora.h"
#include "host/lora_cpu.h"
#include "host/model_cpu.h"
#include "model/npy.h"
#include "data/token_ids.h"

int cmd_forward(int argc, char **argv) {
    const char *dir = NULL, *ids_path = NULL, *logits_path = NULL, *grads_path = NULL, *lora_dir = NULL;
    sc_enum device = {DEVICE_AUTO, device_names};
    int threads = 0, repeat = 1;
    sc_arg args[] = {
        {"model", 'm', SC_ARG_STR, &dir, "model directory (config.json + model.safetensors)", 1},
        {"ids", 'i', SC_ARG_STR, &ids_path, "file of whitespace-separated token ids (- = stdin)", 1},
        {"logits", 0, SC_ARG_STR, &logits_path, "write the logits [T, vocab] as float32 .npy", 0},
        {"grads", 0, SC_ARG_STR, &grads_path, "write d(mean loss)/d(parameter) as F32 safetensors, HF names (with --lora: the adapter's, PEFT names)", 0},
        {"lora", 0, SC_ARG_STR, &lora_dir, "apply this PEFT LoRA adapter directory (unmerged, CPU)", 0},
        SC_ARG_DEVICE(&device),
        SC_ARG_THREADS(&threads),
        {"repeat", 0, SC_ARG_INT, &repeat, "run the forward this many times and report the best time (benchmarks)", 0},
    };
    sc_cli cli = {"smallcoder forward", "--model DIR --ids FILE [options]",
                  "Runs the model on the ids and prints `loss X`: the mean cross-entropy of predicting ids[t+1]\n"
                  "from ids[0..t] for t < T-1. Timing goes to stderr.",
                  args, sizeof args / sizeof args[0], 0, 0};
    static const sc_arg_range ranges[] = {SC_RANGE_THREADS};
    /* auto stays on the CPU: forward is the FP32 reference that other implementations are checked against */
    sc_command cmd = {.cli = &cli, SC_COMMAND_RANGES(ranges), .device = &device, .threads = &threads};
    if (sc_command_parse(&cmd, argc, argv)) return cmd.status;
    if (lora_dir && device.value == DEVICE_CUDA) {
        fprintf(stderr, "smallcoder forward: --lora runs on the CPU only (--device cpu)\n");
        return 1;
    }
    if (lora_dir) cmd.device = NULL; /* the CPU, whatever auto would pick */
    if (sc_command_setup(&cmd)) return cmd.status;
    int rc = 0, use_cuda = cmd.use_cuda, nthreads = cmd.nthreads;
    if (repeat < 1) repeat = 1;

    sc_model m;
    sc_lora ad = {0};
    lora_acts la = {0};
    if (model_load(&m, dir)) goto fail;
    if (lora_dir && lora_load(&ad, lora_dir, &m.cfg, dir)) {
        model_free(&m);
        goto fail;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    if (token_ids_read(ids_path, m.cfg.vocab_size, &ids, &n)) {
        model_free(&m);
        goto fail;
    }
    if (n < 2 || n > (size_t)m.cfg.max_position_embeddings) {
        sc_fail("%s: %zu ids; expected between 2 and max_position_embeddings (%d)", ids_path, n,
                m.cfg.max_position_embeddings);
        free(ids);
        model_free(&m);
        goto fail;
    }
    int T = (int)n;
    int32_t *targets = sc_malloc(n * sizeof(int32_t));
    for (int t = 0; t < T; t++) targets[t] = t + 1 < T ? ids[t + 1] : -1;
    float *logits = logits_path ? sc_malloc((size_t)T * (size_t)m.cfg.vocab_size * sizeof(float)) : NULL;
    float *grads = grads_path ? sc_calloc((size_t)(lora_dir ? ad.nparams : m.nparams), sizeof(float)) : NULL;
    sc_cpu_acts acts = {0};

    double best = 1e30, loss_sum = 0;
    int counted = 0;
    if (use_cuda) { /* model/cuda_forward.c: same outputs, FP16 on the GPU */
        if (cuda_forward_run(&m, ids, targets, T, logits, grads, repeat, &loss_sum, &counted)) {
            free(logits), free(grads), free(targets), free(ids);
            model_free(&m);
            goto fail;
        }
    } else {
        cpu_acts_create(&acts, &m.cfg, T);
        if (lora_dir) {
            lora_acts_create(&la, &ad, T);
            acts.lora = &la;
        }
        for (int r = 0; r < repeat; r++) {
            double t0 = clock_now();
            loss_sum = model_cpu_step(&m, &acts, ids, targets, T, logits, NULL, 0, &counted);
            double dt = clock_now() - t0;
            if (dt < best) best = dt;
        }
        fprintf(stderr, "forward: %d tokens on cpu, %d threads, %.1f ms (%.1f tok/s)\n", T, nthreads, best * 1e3,
                T / best);
        if (grads) {
            double t0 = clock_now();
            la.grads = lora_dir ? grads : NULL; /* the adapter's gradients; the base is frozen */
            model_cpu_step(&m, &acts, ids, targets, T, NULL, lora_dir ? NULL : grads, 1.0f / (float)counted, &counted);
            fprintf(stderr, "forward+backward: %.1f ms\n", (clock_now() - t0) * 1e3);
        }
    }
    double loss = loss_sum / counted;
    rc = 0;
    if (logits) {
        int64_t shape[2] = {T, m.cfg.vocab_size};
        rc = npy_write_f32(logits_path, logits, shape, 2);
    }
    if (!rc && grads && lora_dir) {
        rc = lora_save_block(&ad, grads, grads_path);
    } else if (!rc && grads) {
        rc = model_save_block(&m, grads, grads_path);
    }
    if (!rc) printf("loss %.6f\n", loss);
    cpu_acts_free(&acts);
    lora_acts_free(&la);
    lora_free(&ad);
    free(logits), free(grads), free(targets), free(ids);
    model_free(&m);
    if (rc) goto fail;
    return 0;
fail:
    return sc_command_fail(&cmd);
}
