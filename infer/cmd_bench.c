/* cmd_bench.c — `smallcoder infer-bench`: prefill and decode speed of the engine at batch 1 on synthetic ids (no
 * tokenizer needed, so any model shape runs) or a file's tokens (--file), bytes read per decoded token, the tok/s
 * that a given memory bandwidth would allow (default: the MX450's 64 GB/s), and peak memory. With --draft and/or
 * --lookup every repetition decodes twice, plain and speculative, alternating; medians of both, the speedup, the
 * acceptance rate and whether the tokens were identical. bench/infer-bench and bench/spec-bench drive it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "host/clock.h"
#include "host/args.h"
#include "infer/commands_infer.h"
#include "host/engine.h"
#include "host/error.h"
#include "infer/generate.h"
#include "host/rng.h"
#include "host/threads.h"
#include "host/fileio.h"
#include "infer/spec_cli.h"

/* the last *n tokens of a file, tokenized with the model's tokenizer.json (*n shrinks for a shorter file) */
static int bench_file_ids(const char *dir, const char *file, int32_t *ids, int *n) {
    char path[4096], *text;
    size_t len, nt;
    sc_tokenizer *tok;
    int32_t *t;
    if (tokenizer_load(&tok, path_join(path, sizeof path, dir, "tokenizer.json"))) return -1;
    int rc = file_read_all(file, &text, &len) || tokenizer_encode(tok, text, len, &t, &nt);
    tokenizer_free(tok);
    if (rc) return -1;
    free(text);
    if (nt == 0) return free(t), sc_fail("%s: no tokens", file);
    if ((int)nt < *n) *n = (int)nt;
    memcpy(ids, t + nt - *n, (size_t)*n * sizeof(int32_t));
    free(t);
    return 0;
}

/* n_gen greedy tokens after a prefill of ids, plain (sp NULL: one forward per token) or speculative; the decode
 * seconds go to *dec_s, the tokens to out */
static int bench_decode(sc_engine *e, sc_session *s, sc_spec *sp, const int32_t *ids, int np, int n_gen,
                        float *logits, int32_t *out, double *dec_s) {
    sc_sampling g;
    sampling_defaults(&g); /* temperature 0: greedy */
    sc_sampler smp;
    sampler_init(&smp, &g, e->cfg->vocab_size);
    s->kv.n = 0;
    memcpy(s->ids, ids, (size_t)np * sizeof(int32_t));
    int rc = engine_forward(e, &s->kv, ids, np, logits);
    if (!rc && sp) rc = spec_prefill(sp, ids, np);
    double t0 = clock_now();
    int k = 0;
    if (!rc) out[k++] = sampler_sample(&smp, logits, s->ids, s->kv.n);
    if (sp) spec_begin(sp, &g);
    int32_t q[64];
    while (!rc && k < n_gen) {
        if (sp) {
            int m = spec_step(sp, e, s, &smp, out[k - 1], n_gen - k, q);
            if (m < 0) rc = -1;
            for (int i = 0; i < m && k < n_gen; i++) out[k++] = q[i];
            continue;
        }
        s->ids[s->kv.n] = out[k - 1];
        rc = engine_forward(e, &s->kv, &out[k - 1], 1, logits);
        if (!rc) out[k] = sampler_sample(&smp, logits, s->ids, s->kv.n), k++;
    }
    *dec_s = clock_now() - t0;
    sampler_free(&smp);
    return rc;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* --draft / --lookup: reps x (plain, speculative) alternating on one engine; a fresh sc_spec per repetition (its
 * draft cache and adaptation start cold each time, as for a new prompt) */
static int bench_spec(sc_engine *e, sc_spec_cli *sc, const sc_spec_opts *so, const char *dir, const int32_t *ids,
                      int np, int n_gen, int reps, int json, int nthreads) {
    int V = e->cfg->vocab_size, ctx = np + n_gen + 66, rc = 0;
    if (ctx > e->cfg->max_position_embeddings) ctx = e->cfg->max_position_embeddings;
    sc_session s;
    session_create(&s, e, ctx);
    float *logits = sc_malloc((size_t)V * sizeof(float));
    int32_t *a = sc_malloc((size_t)n_gen * sizeof(int32_t)), *b = sc_malloc((size_t)n_gen * sizeof(int32_t));
    double *tp = sc_malloc((size_t)reps * sizeof(double)), *ts = sc_malloc((size_t)reps * sizeof(double));
    int identical = 1, drafted = 0, accepted = 0, kmax = 0;
    for (int rep = 0; rep < reps && !rc; rep++) {
        sc_spec sp;
        if (spec_open(&sp, so, e, ctx)) {
            rc = -1;
            break;
        }
        kmax = sp.kmax;
        rc = bench_decode(e, &s, NULL, ids, np, n_gen, logits, a, &tp[rep]);
        if (!rc) rc = bench_decode(e, &s, &sp, ids, np, n_gen, logits, b, &ts[rep]);
        identical &= !rc && memcmp(a, b, (size_t)n_gen * sizeof(int32_t)) == 0;
        drafted += sp.n_drafted, accepted += sp.n_accepted;
        spec_close(&sp);
    }
    if (!rc) {
        double mp = median(tp, reps), ms = median(ts, reps);
        double plain = (n_gen - 1) / mp, spec = (n_gen - 1) / ms, rate = drafted ? (double)accepted / drafted : 0;
        if (json)
            printf("{\"model\":\"%s\",\"draft\":\"%s\",\"lookup\":%d,\"draft_max\":%d,\"draft_fixed\":%d,"
                   "\"threads\":%d,\"n_prompt\":%d,\"n_gen\":%d,\"reps\":%d,\"decode_tok_s\":%.2f,"
                   "\"spec_decode_tok_s\":%.2f,\"speedup\":%.3f,\"draft_n\":%d,\"draft_n_accepted\":%d,"
                   "\"accept_rate\":%.4f,\"identical\":%s,\"weights\":\"%s\",\"device\":\"%s\"}\n",
                   dir, sc->draft_dir ? sc->draft_dir : "", so->lookup, kmax, so->fixed_k, nthreads, np, n_gen, reps,
                   plain, spec, spec / plain, drafted, accepted, rate, identical ? "true" : "false", e->precision,
                   e->ops->name);
        else
            printf("%s (%s, %d threads), %d prompt tokens, %d decoded, median of %d: plain %.1f tok/s, speculative "
                   "(%s%s%s, K <= %d%s) %.1f tok/s = %.2fx; drafted %d, accepted %d (%.1f%%); tokens %s\n",
                   dir, e->precision, nthreads, np, n_gen, reps, plain, sc->draft_dir ? "draft " : "",
                   sc->draft_dir ? sc->draft_dir : "", so->lookup ? " lookup" : "", kmax,
                   so->fixed_k ? " fixed" : " adaptive", spec, spec / plain, drafted, accepted, 100.0 * rate,
                   identical ? "identical" : "DIFFERENT");
        if (!identical) rc = sc_fail("speculative greedy tokens differ from the plain ones");
    }
    session_free(&s);
    free(logits), free(a), free(b), free(tp), free(ts);
    return rc;
}

/* --perplexity: the engine's own mean NLL of each next token over ids (one pass with every position's logits, so
 * the KV cache type, the prefill chunks and the cache reads are those of generation); prints one line */
static int bench_perplexity(sc_engine *e, const char *dir, const int32_t *ids, int n, int json) {
    int V = e->cfg->vocab_size;
    if (n < 2) return sc_fail("--perplexity needs at least 2 tokens");
    float *all = sc_malloc((size_t)n * V * sizeof(float));
    sc_kv kv;
    engine_kv_create(e, &kv, n);
    int rc = e->ops->forward(e, &kv, ids, n, NULL, all);
    double nll = 0;
    for (int t = 0; !rc && t + 1 < n; t++) {
        const float *l = all + (size_t)t * V;
        double mx = l[0], s = 0;
        for (int v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
        for (int v = 0; v < V; v++) s += exp(l[v] - mx);
        nll += mx + log(s) - l[ids[t + 1]];
    }
    if (!rc) {
        nll /= n - 1;
        if (json)
            printf("{\"model\":\"%s\",\"weights\":\"%s\",\"kv\":\"%s\",\"device\":\"%s\",\"tokens\":%d,"
                   "\"loss\":%.6f,\"perplexity\":%.6f}\n",
                   dir, e->precision, kv_type_names[e->kv_type], e->ops->name, n - 1, nll, exp(nll));
        else
            printf("%s (%s weights, --kv %s, %s engine): loss %.6f, perplexity %.4f over %d predicted tokens\n", dir,
                   e->precision, kv_type_names[e->kv_type], e->ops->name, nll, exp(nll), n - 1);
    }
    kv_free(&kv);
    free(all);
    return rc;
}

int cmd_infer_bench(int argc, char **argv) {
    const char *dir = NULL, *device = "auto", *kvtype = "f16", *precision = "auto";
    int n_prompt = 512, n_gen = 128, threads = 0, reps = 2, json = 0, ppl = 0;
    float bw = 64.0f;
    const char *file = NULL;
    sc_spec_cli sc = SPEC_CLI_DEFAULTS;
    sc_arg args[] = {
        {"model", 'm', SC_ARG_STR, &dir, "model directory (FP32/FP16 or INT8)", 1},
        {"n-prompt", 'p', SC_ARG_INT, &n_prompt, "prompt tokens to prefill", 0},
        {"n-gen", 'n', SC_ARG_INT, &n_gen, "tokens to decode after the prompt", 0},
        {"reps", 'r', SC_ARG_INT, &reps, "repetitions; the best is reported", 0},
        {"bandwidth", 0, SC_ARG_FLOAT, &bw, "GB/s for the projected decode speed (MX450: 64)", 0},
        {"kv", 0, SC_ARG_STR, &kvtype, "KV cache type: f16, f32, q8 or q4 (docs/inference.md)", 0},
        {"device", 0, SC_ARG_STR, &device, "cpu, cuda or auto", 0},
        {"precision", 0, SC_ARG_STR, &precision,
         "CUDA weights: auto (FP16 when it fits the free device memory and the card is fast enough, else INT8), fp16 or int8", 0},
        {"threads", 't', SC_ARG_INT, &threads, "CPU threads (0 = all cores)", 0},
        {"json", 0, SC_ARG_FLAG, &json, "one JSON line on stdout", 0},
        {"file", 'f', SC_ARG_STR, &file, "prompt: the last -p tokens of this file (tokenizer.json of the model)", 0},
        {"perplexity", 0, SC_ARG_FLAG, &ppl,
         "instead of timing: the engine's perplexity on the prompt (--file's last -p tokens), e.g. per --kv type", 0},
        SPEC_CLI_ARGS(sc),
    };
    sc_cli cli = {"smallcoder infer-bench", "--model DIR [-p 512] [-n 128]",
                  "Times a prefill of -p random ids (or --file's tokens) and -n greedy decode steps after it, at\n"
                  "batch 1. --draft/--lookup: also speculatively, alternating, with medians and the speedup.",
                  args, sizeof args / sizeof args[0], 0, 0};
    static const sc_arg_range ranges[] = {SC_RANGE_THREADS, {"bandwidth", 1e-3, 1e6}};
    int npos, rc = sc_args_parse(&cli, argc, argv, &npos);
    if (!rc) rc = sc_args_check_ranges(&cli, ranges, (int)(sizeof ranges / sizeof ranges[0]));
    if (rc) return rc == 1 ? 0 : 2;
    if (n_prompt < 1 || n_gen < 1 || reps < 1) {
        fprintf(stderr, "smallcoder infer-bench: -p, -n and -r must be >= 1\n");
        return 2;
    }
    int kv_type = engine_kv_type(kvtype);
    if (kv_type < 0) {
        fprintf(stderr, "smallcoder infer-bench: %s\n", sc_error());
        return 2;
    }
    int nthreads = sc_set_threads(threads);
    sc_weights w;
    sc_engine e = {0};
    if (weights_load(&w, dir)) goto fail_nw;
    /* speculative decoding needs room for a last verification (pending + up to 63 drafts) */
    int spec_room = spec_cli_wanted(&sc) ? 66 : 0;
    sc_engine_opts o = {.device = device, .kv_type = kv_type, .threads = nthreads,
                        .precision = precision, .n_ctx = n_prompt + n_gen + spec_room, .n_seqs = 1};
    if (engine_open(&e, &w, &o)) goto fail;
    if (n_prompt + n_gen + spec_room > w.cfg.max_position_embeddings) {
        sc_fail("-p + -n = %d exceeds the context (%d%s)", n_prompt + n_gen, w.cfg.max_position_embeddings,
                spec_room ? ", less 66 positions for speculative verification" : "");
        goto fail;
    }
    int V = w.cfg.vocab_size;
    int32_t *ids = sc_malloc((size_t)n_prompt * sizeof(int32_t));
    sc_rng r;
    rng_seed(&r, 1);
    for (int i = 0; i < n_prompt; i++) ids[i] = (int32_t)rng_below(&r, (uint64_t)V);
    if (file && bench_file_ids(dir, file, ids, &n_prompt)) {
        free(ids);
        goto fail;
    }
    if (ppl) {
        int prc = bench_perplexity(&e, dir, ids, n_prompt, json);
        free(ids);
        if (prc) goto fail;
        engine_close(&e);
        weights_free(&w);
        return 0;
    }
    if (spec_cli_wanted(&sc)) {
        sc_spec_opts so;
        int src = spec_cli_open(&sc, dir, NULL, &w, &o, &so) ||
                  bench_spec(&e, &sc, &so, dir, ids, n_prompt, n_gen, reps, json, nthreads);
        free(ids);
        spec_cli_close(&sc);
        if (src) goto fail;
        engine_close(&e);
        weights_free(&w);
        return 0;
    }
    sc_kv kv;
    engine_kv_create(&e, &kv, n_prompt + n_gen);
    float *logits = sc_malloc((size_t)V * sizeof(float));
    double best_pp = 1e30, best_tg = 1e30;
    for (int rep = 0; rep < reps; rep++) {
        kv.n = 0;
        double t0 = clock_now();
        if (e.ops->forward(&e, &kv, ids, n_prompt, logits, NULL)) goto fail;
        double t1 = clock_now();
        for (int i = 0; i < n_gen; i++) {
            int32_t id = 0;
            for (int v = 1; v < V; v++)
                if (logits[v] > logits[id]) id = v;
            if (e.ops->forward(&e, &kv, &id, 1, logits, NULL)) goto fail;
        }
        double t2 = clock_now();
        if (t1 - t0 < best_pp) best_pp = t1 - t0;
        if (t2 - t1 < best_tg) best_tg = t2 - t1;
    }
    /* per decoded token: every matrix and scale once, plus the KV of the positions attended (mean position) */
    double kv_row = 2.0 * w.cfg.num_hidden_layers * (double)kv_row_bytes(e.kv_type, w.cfg.num_key_value_heads, w.cfg.head_dim);
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
               "\"peak_device_mib\":%.1f,\"device_used_mib\":%.1f,\"context_mib\":%.1f}\n",
               dir, e.precision, nthreads, n_prompt, n_gen, pp, tg, bytes, proj, bw,
               bytes * tg / 1e9, kv_bytes(&kv) / 1048576.0, ru.ru_maxrss / 1024.0, quant_kernel_name(), e.ops->name,
               e.device_bytes / 1048576.0, used_mib, e.context_bytes / 1048576.0);
    else
        printf("%s (%s, %d threads): prefill %d tokens %.1f tok/s; decode %d tokens %.1f tok/s; %.1f MB read per "
               "token (%.2f GB/s effective) -> %.0f tok/s at %.0f GB/s; KV %.1f MiB; peak RSS %.1f MiB\n",
               dir, e.precision, nthreads, n_prompt, pp, n_gen, tg, bytes / 1e6, bytes * tg / 1e9,
               proj, bw, kv_bytes(&kv) / 1048576.0, ru.ru_maxrss / 1024.0);
    if (!json && e.device_bytes)
        printf("%s engine: peak device memory %.1f MiB planned (its arena: weights, scratch, KV caches); %.1f MiB "
               "measured by cudaMemGetInfo since it opened (+ cuBLAS, graph); before it, CUDA context, cuBLAS and "
               "kernels %.1f MiB (measured at open, host/device_probe.h)\n",
               e.ops->name, e.device_bytes / 1048576.0, used_mib, e.context_bytes / 1048576.0);
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
