/* cmd_bench.c — `smallcoder infer-bench`: prefill and decode speed of the engine at batch 1 on synthetic ids (no
 * tokenizer needed, so any model shape runs), bytes read per decoded token, the tok/s that a given memory
 * bandwidth would allow (default: the MX450's 64 GB/s), and peak memory. bench/infer-bench drives it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "host/args.h"
#include "infer/commands_infer.h"
#include "host/engine.h"
#include "host/error.h"
#include "infer/generate.h"
#include "host/rng.h"
#include "host/threads.h"

int cmd_infer_bench(int argc, char **argv) {
    const char *dir = NULL, *device = "auto", *kvtype = "f16", *precision = "auto";
    int n_prompt = 512, n_gen = 128, threads = 0, reps = 2, json = 0;
    float bw = 64.0f;
    sc_arg args[] = {
        {"model", 'm', SC_ARG_STR, &dir, "model directory (FP32/FP16 or INT8)", 1},
        {"n-prompt", 'p', SC_ARG_INT, &n_prompt, "prompt tokens to prefill", 0},
        {"n-gen", 'n', SC_ARG_INT, &n_gen, "tokens to decode after the prompt", 0},
        {"reps", 'r', SC_ARG_INT, &reps, "repetitions; the best is reported", 0},
        {"bandwidth", 0, SC_ARG_FLOAT, &bw, "GB/s for the projected decode speed (MX450: 64)", 0},
        {"kv", 0, SC_ARG_STR, &kvtype, "KV cache type: f16 or f32", 0},
        {"device", 0, SC_ARG_STR, &device, "cpu, cuda or auto", 0},
        {"precision", 0, SC_ARG_STR, &precision,
         "CUDA weights: auto (FP16 when it fits the free device memory, else INT8), fp16 or int8", 0},
        {"threads", 't', SC_ARG_INT, &threads, "CPU threads (0 = all cores)", 0},
        {"json", 0, SC_ARG_FLAG, &json, "one JSON line on stdout", 0},
    };
    sc_cli cli = {"smallcoder infer-bench", "--model DIR [-p 512] [-n 128]",
                  "Times a prefill of -p random ids and -n greedy decode steps after it, at batch 1.",
                  args, sizeof args / sizeof args[0], 0, 0};
    static const sc_arg_range ranges[] = {SC_RANGE_THREADS, {"bandwidth", 1e-3, 1e6}};
    int npos, rc = sc_args_parse(&cli, argc, argv, &npos);
    if (!rc) rc = sc_args_check_ranges(&cli, ranges, (int)(sizeof ranges / sizeof ranges[0]));
    if (rc) return rc == 1 ? 0 : 2;
    if (n_prompt < 1 || n_gen < 1 || reps < 1) {
        fprintf(stderr, "smallcoder infer-bench: -p, -n and -r must be >= 1\n");
        return 2;
    }
    int kv_f16 = engine_kv_f16(kvtype);
    if (kv_f16 < 0) {
        fprintf(stderr, "smallcoder infer-bench: %s\n", sc_error());
        return 2;
    }
    int nthreads = sc_set_threads(threads);
    sc_weights w;
    sc_engine e = {0};
    if (weights_load(&w, dir)) goto fail_nw;
    sc_engine_opts o = {.device = device, .kv_f16 = kv_f16, .threads = nthreads,
                        .precision = precision, .n_ctx = n_prompt + n_gen, .n_seqs = 1};
    if (engine_open(&e, &w, &o)) goto fail;
    if (n_prompt + n_gen > w.cfg.max_position_embeddings) {
        sc_fail("-p + -n = %d exceeds the context (%d)", n_prompt + n_gen, w.cfg.max_position_embeddings);
        goto fail;
    }
    sc_kv kv;
    engine_kv_create(&e, &kv, n_prompt + n_gen);
    int V = w.cfg.vocab_size;
    int32_t *ids = sc_malloc((size_t)n_prompt * sizeof(int32_t));
    float *logits = sc_malloc((size_t)V * sizeof(float));
    sc_rng r;
    rng_seed(&r, 1);
    for (int i = 0; i < n_prompt; i++) ids[i] = (int32_t)rng_below(&r, (uint64_t)V);
    double best_pp = 1e30, best_tg = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        kv.n = 0;
        double t0 = gen_now();
        if (e.ops->forward(&e, &kv, ids, n_prompt, logits, NULL)) goto fail;
        double t1 = gen_now();
        for (int i = 0; i < n_gen; i++) {
            int32_t id = 0;
            for (int v = 1; v < V; v++)
                if (logits[v] > logits[id]) id = v;
            if (e.ops->forward(&e, &kv, &id, 1, logits, NULL)) goto fail;
        }
        double t2 = gen_now();
        if (t1 - t0 < best_pp) best_pp = t1 - t0;
        if (t2 - t1 < best_tg) best_tg = t2 - t1;
    }
    /* per decoded token: every matrix and scale once, plus the KV of the positions attended (mean position) */
    double kv_row = 2.0 * w.cfg.num_hidden_layers * w.cfg.num_key_value_heads * w.cfg.head_dim * (e.kv_f16 ? 2 : 4);
    double bytes = (double)e.weight_bytes + kv_row * (n_prompt + n_gen / 2.0);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double pp = n_prompt / best_pp, tg = n_gen / best_tg, proj = bw * 1e9 / bytes, used_mib = -1;
#ifdef SC_HAVE_KERNELS
    if (e.device_bytes) used_mib = engine_cuda_measured_bytes(&e) / 1048576.0; /* after the run: all allocated */
#endif
    if (json)
        printf("{\"model\":\"%s\",\"weights\":\"%s\",\"threads\":%d,\"n_prompt\":%d,\"n_gen\":%d,\"prefill_tok_s\":%.2f,"
               "\"decode_tok_s\":%.2f,\"bytes_per_token\":%.0f,\"projected_tok_s\":%.1f,\"bandwidth_gbs\":%.0f,"
               "\"effective_gbs\":%.2f,\"kv_mib\":%.1f,\"peak_rss_mib\":%.1f,\"kernel\":\"%s\",\"device\":\"%s\","
               "\"peak_device_mib\":%.1f,\"device_used_mib\":%.1f}\n",
               dir, e.precision, nthreads, n_prompt, n_gen, pp, tg, bytes, proj, bw,
               bytes * tg / 1e9, kv_bytes(&kv) / 1048576.0, ru.ru_maxrss / 1024.0, quant_kernel_name(), e.ops->name,
               e.device_bytes / 1048576.0, used_mib);
    else
        printf("%s (%s, %d threads): prefill %d tokens %.1f tok/s; decode %d tokens %.1f tok/s; %.1f MB read per "
               "token (%.2f GB/s effective) -> %.0f tok/s at %.0f GB/s; KV %.1f MiB; peak RSS %.1f MiB\n",
               dir, e.precision, nthreads, n_prompt, pp, n_gen, tg, bytes / 1e6, bytes * tg / 1e9,
               proj, bw, kv_bytes(&kv) / 1048576.0, ru.ru_maxrss / 1024.0);
    if (!json && e.device_bytes)
        printf("%s engine: peak device memory %.1f MiB planned (its arena: weights, scratch, KV caches); %.1f MiB "
               "measured by cudaMemGetInfo since it opened (+ cuBLAS, graph; the CUDA context not included)\n",
               e.ops->name, e.device_bytes / 1048576.0, used_mib);
    free(ids), free(logits);
    kv_free(&kv);
    engine_close(&e);
    weights_free(&w);
    return 0;
fail:
    engine_close(&e);
    weights_free(&w);
fail_nw:
    fprintf(stderr, "smallcoder infer-bench: %s\n", sc_error());
    return 1;
}
