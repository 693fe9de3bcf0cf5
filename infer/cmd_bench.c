/* cmd_bench.c — `smallcoder infer-bench`: prefill and decode speed of the engine at batch 1 on synthetic ids (no
 * tokenizer needed, so any model shape runs) or a file's tokens (--file), optionally at a context depth the way
 * llama-bench's `-d N` measures it (--depth), bytes read per decoded token, the tok/s
 * that a given memory bandwidth would allow (default: the MX450's 64 GB/s), peak memory and (--membw) the share of
 * the CPU's measured memory read bandwidth that decode used. With --draft and/or
 * --lookup every repetition decodes twice, plain and speculative, alternating; medians of both, the speedup, the
 * acceptance rate and whether the tokens were identical. bench/infer-bench and bench/spec-bench drive it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "host/clock.h"
#include "host/args.h"
#include "host/command.h"
#include "host/kv_cache.h" /* kv_type_names */
#include "host/membw.h"     /* --membw */
#include "infer/commands_infer.h"
#include "infer/engine_cli.h"
#include "host/engine.h"
#include "host/error.h"
#include "infer/generate.h"
#include "host/rng.h"
#include "host/fileio.h"
#include "infer/spec_cli.h"

/* the last *n tokens of a file, tokenized with the model's tokenizer.json (*n shrinks for a shorter file), after
 * the tokens its post-processor prepends (BOS: Llama, DeepSeek-Coder), as complete's prompts and HF perplexity
 * scripts encode text */
static int bench_file_ids(const char *dir, const char *file, int32_t *ids, int *n) {
    char path[4096], *text;
    size_t len, nt;
    sc_tokenizer *tok;
    int32_t *t;
    if (tokenizer_load(&tok, path_join(path, sizeof path, dir, "tokenizer.json"))) return -1;
    int rc = file_read_all(file, &text, &len) || tokenizer_encode(tok, text, len, &t, &nt);
    const int32_t *sp;
    int nsp = rc ? 0 : tokenizer_special_prefix(tok, &sp);
    if (nsp >= *n) nsp = 0; /* a prompt too short for both: the text alone */
    if (nsp) memcpy(ids, sp, (size_t)nsp * sizeof(int32_t));
    tokenizer_free(tok);
    if (rc) return -1;
    free(text);
    if (nt == 0) return free(t), sc_fail("%s: no tokens", file);
    int keep = *n - nsp < (int)nt ? *n - nsp : (int)nt;
    memcpy(ids + nsp, t + nt - keep, (size_t)keep * sizeof(int32_t));
    *n = nsp + keep;
    free(t);
    return 0;
}

/* the process's CPU seconds: on a shared machine wall time mostly measures the other processes (at 1 thread the
 * CPU time still includes the stalls on memory, so it keeps the memory-bound part) */
static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* n_gen greedy tokens after a prefill of ids, plain (sp NULL: one forward per token) or speculative; the decode
 * seconds go to *dec_s (wall) and *dec_cpu (process CPU time), the tokens to out */
static int bench_decode(sc_engine *e, sc_session *s, sc_spec *sp, const int32_t *ids, int np, int n_gen,
                        float *logits, int32_t *out, double *dec_s, double *dec_cpu) {
    sc_sampling g;
    sampling_defaults(&g); /* temperature 0: greedy */
    sc_sampler smp;
    sampler_init(&smp, &g, e->cfg->vocab_size);
    s->kv.n = 0;
    memcpy(s->ids, ids, (size_t)np * sizeof(int32_t));
    int rc = engine_forward(e, &s->kv, ids, np, logits);
    if (!rc && sp) rc = spec_prefill(sp, ids, np);
    double t0 = clock_now(), c0 = cpu_seconds();
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
    *dec_cpu = cpu_seconds() - c0;
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
    double *cp = sc_malloc((size_t)reps * sizeof(double)), *cs = sc_malloc((size_t)reps * sizeof(double));
    int identical = 1, drafted = 0, accepted = 0, kmax = 0;
    for (int rep = 0; rep < reps && !rc; rep++) {
        sc_spec sp;
        if (spec_open(&sp, so, e, ctx)) {
            rc = -1;
            break;
        }
        kmax = sp.kmax;
        rc = bench_decode(e, &s, NULL, ids, np, n_gen, logits, a, &tp[rep], &cp[rep]);
        if (!rc) rc = bench_decode(e, &s, &sp, ids, np, n_gen, logits, b, &ts[rep], &cs[rep]);
        identical &= !rc && memcmp(a, b, (size_t)n_gen * sizeof(int32_t)) == 0;
        drafted += sp.n_drafted, accepted += sp.n_accepted;
        spec_close(&sp);
    }
    if (!rc) {
        double mp = median(tp, reps), ms = median(ts, reps), cpu_speedup = median(cp, reps) / median(cs, reps);
        double plain = (n_gen - 1) / mp, spec = (n_gen - 1) / ms, rate = drafted ? (double)accepted / drafted : 0;
        if (json)
            printf("{\"model\":\"%s\",\"draft\":\"%s\",\"lookup\":%d,\"draft_max\":%d,\"draft_fixed\":%d,"
                   "\"threads\":%d,\"n_prompt\":%d,\"n_gen\":%d,\"reps\":%d,\"decode_tok_s\":%.2f,"
                   "\"spec_decode_tok_s\":%.2f,\"speedup\":%.3f,\"draft_n\":%d,\"draft_n_accepted\":%d,"
                   "\"accept_rate\":%.4f,\"identical\":%s,\"weights\":\"%s\",\"device\":\"%s\","
                   "\"cpu_speedup\":%.3f}\n",
                   dir, sc->draft_dir ? sc->draft_dir : "", so->lookup, kmax, so->fixed_k, nthreads, np, n_gen, reps,
                   plain, spec, spec / plain, drafted, accepted, rate, identical ? "true" : "false", e->precision,
                   e->ops->name, cpu_speedup);
        else
            printf("%s (%s, %d threads), %d prompt tokens, %d decoded, median of %d: plain %.1f tok/s, speculative "
                   "(%s%s%s, K <= %d%s) %.1f tok/s = %.2fx (CPU time %.2fx); drafted %d, accepted %d (%.1f%%); "
                   "tokens %s\n",
                   dir, e->precision, nthreads, np, n_gen, reps, plain, sc->draft_dir ? "draft " : "",
                   sc->draft_dir ? sc->draft_dir : "", so->lookup ? " lookup" : "", kmax,
                   so->fixed_k ? " fixed" : " adaptive", spec, spec / plain, cpu_speedup, drafted, accepted, 100.0 * rate,
                   identical ? "identical" : "DIFFERENT");
        if (!identical) rc = sc_fail("speculative greedy tokens differ from the plain ones");
    }
    session_free(&s);
    free(logits), free(a), free(b), free(tp), free(ts), free(cp), free(cs);
    return rc;
}

/* --verify-cost N: what speculative verification costs on this engine. After the prompt, passes of n = 1..N
 * tokens at the same position (engine_forward_all, as spec_step runs them; the cache rolled back after each),
 * n cycling inside every round so all sizes see the same machine load; the median seconds per size and their
 * ratio to n = 1. A pass that reads each weight once costs little more than a decode step for small n. The process's
 * CPU time is timed too: on a shared machine wall time mostly measures the other processes (at 1 thread the CPU
 * time still includes the stalls on memory, so it keeps the memory-bound part). */

static int bench_verify_cost(sc_engine *e, const int32_t *ids, int np, int nmax, int rounds, int json, int nthreads,
                             const char *dir) {
    int V = e->cfg->vocab_size, rc = 0;
    sc_kv kv;
    engine_kv_create(e, &kv, np + nmax);
    float *all = sc_malloc((size_t)nmax * V * sizeof(float));
    double *t = sc_malloc((size_t)nmax * rounds * sizeof(double)), med[64], cmed[64];
    double *ct = sc_malloc((size_t)nmax * rounds * sizeof(double));
    int32_t next[64];
    for (int i = 0; i < nmax; i++) next[i] = ids[(np - 1 - i + np) % np]; /* any valid ids */
    rc = engine_forward(e, &kv, ids, np, NULL);
    for (int r = 0; r < rounds && !rc; r++)
        for (int n = 1; n <= nmax && !rc; n++) {
            double t0 = clock_now(), c0 = cpu_seconds();
            rc = engine_forward_all(e, &kv, next, n, all);
            t[(size_t)(n - 1) * rounds + r] = clock_now() - t0;
            ct[(size_t)(n - 1) * rounds + r] = cpu_seconds() - c0;
            kv.n = np;
        }
    if (!rc) {
        for (int n = 1; n <= nmax; n++) {
            med[n - 1] = median(t + (size_t)(n - 1) * rounds, rounds);
            cmed[n - 1] = median(ct + (size_t)(n - 1) * rounds, rounds);
        }
        if (json) {
            printf("{\"model\":\"%s\",\"weights\":\"%s\",\"device\":\"%s\",\"threads\":%d,\"n_prompt\":%d,"
                   "\"rounds\":%d,\"pass_ms\":[", dir, e->precision, e->ops->name, nthreads, np, rounds);
            for (int n = 1; n <= nmax; n++) printf("%s%.3f", n > 1 ? "," : "", med[n - 1] * 1e3);
            printf("],\"ratio\":[");
            for (int n = 1; n <= nmax; n++) printf("%s%.3f", n > 1 ? "," : "", med[n - 1] / med[0]);
            printf("],\"cpu_ms\":[");
            for (int n = 1; n <= nmax; n++) printf("%s%.3f", n > 1 ? "," : "", cmed[n - 1] * 1e3);
            printf("],\"cpu_ratio\":[");
            for (int n = 1; n <= nmax; n++) printf("%s%.3f", n > 1 ? "," : "", cmed[n - 1] / cmed[0]);
            printf("]}\n");
        } else {
            printf("%s (%s, %s, %d threads), after %d prompt tokens, median of %d rounds:\n", dir, e->precision,
                   e->ops->name, nthreads, np, rounds);
            for (int n = 1; n <= nmax; n++)
                printf("  verify %d token%s: %8.3f ms = %.2fx a decode step; CPU time %8.3f ms = %.2fx\n", n,
                       n > 1 ? "s" : " ", med[n - 1] * 1e3, med[n - 1] / med[0], cmed[n - 1] * 1e3,
                       cmed[n - 1] / cmed[0]);
        }
    }
    kv_free(&kv);
    free(all), free(t), free(ct);
    return rc;
}

/* Plain timing: reps x (prefill of ids, n_gen greedy single-token steps); the best seconds of each. Without a
 * depth (depth < 0) decode follows the prompt; with one, the depth ids fill the cache once (untimed) and both
 * prefill and decode start at position `depth`, as llama-bench -d restores its cached depth for each test. */
static int bench_plain(sc_engine *e, sc_kv *kv, const int32_t *dids, int depth, const int32_t *ids, int np,
                       int n_gen, int reps, float *logits, double *best_pp, double *best_tg) {
    int V = e->cfg->vocab_size, base = depth > 0 ? depth : 0;
    kv->n = 0;
    if (depth > 0 && e->ops->forward(e, kv, dids, depth, logits, NULL)) return -1;
    for (int rep = 0; rep < reps; rep++) {
        kv->n = base;
        double t0 = clock_now();
        if (e->ops->forward(e, kv, ids, np, logits, NULL)) return -1;
        double t1 = clock_now();
        if (depth >= 0) kv->n = base; /* decode from the depth, not after the prompt */
        for (int i = 0; i < n_gen; i++) {
            int32_t id = 0;
            for (int v = 1; v < V; v++)
                if (logits[v] > logits[id]) id = v;
            if (e->ops->forward(e, kv, &id, 1, logits, NULL)) return -1;
        }
        double t2 = clock_now();
        if (t1 - t0 < *best_pp) *best_pp = t1 - t0;
        if (t2 - t1 < *best_tg) *best_tg = t2 - t1;
    }
    return 0;
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

/* --plan: the CUDA engine's device-memory plan for the model in dir (config.json only: no weights read, no device
 * needed), one row per kind of buffer */
static int bench_plan(const char *dir, const char *prec, int kv_type, int n_ctx) {
#ifdef SC_HAVE_KERNELS
    sc_config c;
    char path[4096], rows[1024];
    int group = 0;
    if (config_load(&c, path_join(path, sizeof path, dir, "config.json"))) return -1;
    int q = quant_config_read(dir, &group);
    if (q < 0 || kv_type_check(kv_type, c.head_dim)) return -1;
    int int8 = !strcmp(prec, "int8") || (!strcmp(prec, "auto") && q == 1);
    if (n_ctx > c.max_position_embeddings) n_ctx = c.max_position_embeddings;
    int64_t b = engine_cuda_plan_describe(&c, int8, int8 ? group : 0, n_ctx, 1, kv_type, rows, sizeof rows);
    printf("%s: CUDA engine device memory plan, %d positions, 1 session, --precision %s%s, --kv %s: %.1f MiB\n%s", dir,
           n_ctx, int8 ? "int8" : "fp16", !strcmp(prec, "auto") ? " (auto without a device: as stored)" : "",
           kv_type_names[kv_type], b / 1048576.0, rows);
    return 0;
#else
    (void)dir, (void)prec, (void)kv_type, (void)n_ctx;
    return sc_fail("--plan: this build has no CUDA engine (no CUDA toolkit at configure time)");
#endif
}

int cmd_infer_bench(int argc, char **argv) {
    const char *dir = NULL;
    sc_engine_cli ec = ENGINE_CLI_DEFAULTS;
    int n_prompt = 512, n_gen = 128, reps = 2, json = 0, depth = -1, ppl = 0, verify_cost = 0, plan_ctx = 0,
        membw = 0;
    float bw = 64.0f;
    const char *file = NULL;
    sc_spec_cli sc = SPEC_CLI_DEFAULTS;
    sc_arg args[] = {
        {"model", 'm', SC_ARG_STR, &dir, "model directory (FP32/FP16 or INT8)", 1},
        {"n-prompt", 'p', SC_ARG_INT, &n_prompt, "prompt tokens to prefill", 0},
        {"n-gen", 'n', SC_ARG_INT, &n_gen, "tokens to decode after the prompt", 0},
        {"reps", 'r', SC_ARG_INT, &reps, "repetitions; the best is reported", 0},
        {"depth", 'd', SC_ARG_INT, &depth,
         "llama-bench's -d: N tokens already in the context (filled once, untimed); prefill and decode are each "
         "timed from there (without it, decode follows the prompt)", 0},
        {"bandwidth", 0, SC_ARG_FLOAT, &bw, "GB/s for the projected decode speed (MX450: 64)", 0},
        ENGINE_CLI_ARGS(ec),
        {"json", 0, SC_ARG_FLAG, &json, "one JSON line on stdout", 0},
        {"membw", 0, SC_ARG_FLAG, &membw,
         "CPU engine: also measure the memory read bandwidth with the same threads (256 MiB, best of 5) and the share "
         "of it that decode used", 0},
        {"file", 'f', SC_ARG_STR, &file, "prompt: the last -p tokens of this file (tokenizer.json of the model)", 0},
        {"verify-cost", 0, SC_ARG_INT, &verify_cost,
         "time passes of 1..N tokens after the prompt (speculative verification), -r rounds, medians (0 = off)", 0},
        {"ctx", 0, SC_ARG_INT, &plan_ctx, "--plan without --draft: positions of the KV cache (0 = -p + -n)", 0},
        {"perplexity", 0, SC_ARG_FLAG, &ppl,
         "instead of timing: the engine's perplexity on the prompt (--file's last -p tokens), e.g. per --kv type", 0},
        SPEC_CLI_ARGS(sc),
    };
    sc_cli cli = {"smallcoder infer-bench", "--model DIR [-p 512] [-n 128]",
                  "Times a prefill of -p random ids (or --file's tokens) and -n greedy decode steps after it, at\n"
                  "batch 1; with --depth N both start after N context tokens, as llama-bench -d N does.\n"
                  "--draft/--lookup: also speculatively, alternating, with medians and the speedup.",
                  args, sizeof args / sizeof args[0], 0, 0};
    static const sc_arg_range ranges[] = {SC_RANGE_THREADS, {"bandwidth", 1e-3, 1e6}, {"verify-cost", 0, 64}};
    sc_command cmd = {.cli = &cli, SC_COMMAND_RANGES(ranges), .threads = &ec.threads};
    if (sc_command_parse(&cmd, argc, argv)) return cmd.status;
    if (n_prompt < 1 || n_gen < 1 || reps < 1) {
        fprintf(stderr, "smallcoder infer-bench: -p, -n and -r must be >= 1\n");
        return 2;
    }
    if (depth < -1 || (depth >= 0 && (spec_cli_wanted(&sc) || ppl || verify_cost))) {
        fprintf(stderr, "smallcoder infer-bench: %s\n",
                depth < -1 ? "--depth must be >= 0"
                           : "--depth is not supported with --draft/--lookup/--perplexity/--verify-cost");
        return 2;
    }
    if (sc.plan && !sc.draft_dir) { /* the model's plan alone, from config.json (no weights read) */
        const char *prec = engine_precision_names[ec.precision.value];
        if (bench_plan(dir, prec, ec.kv.value, plan_ctx > 0 ? plan_ctx : n_prompt + n_gen)) {
            fprintf(stderr, "smallcoder infer-bench: %s\n", sc_error());
            return 1;
        }
        return 0;
    }
    if (sc_command_setup(&cmd)) return cmd.status;
    int nthreads = cmd.nthreads;
    sc_weights w;
    sc_engine e = {0};
    if (weights_load(&w, dir)) goto fail_nw;
    /* speculative decoding needs room for a last verification (pending + up to 63 drafts) */
    int spec_room = spec_cli_wanted(&sc) || verify_cost ? 66 : 0;
    if (ppl) n_gen = 0, spec_room = 0; /* --perplexity runs the prompt only */
    /* positions used: depth mode rewinds to the depth between prefill and decode */
    int need = depth >= 0 ? depth + (n_prompt > n_gen ? n_prompt : n_gen) : n_prompt + n_gen + spec_room;
    sc_engine_opts o = {ENGINE_CLI_OPTS(ec, nthreads), .n_ctx = need, .n_seqs = 1};
    if (sc.plan) { /* the device plan of the model and its draft, then exit */
        if (spec_plan_print(&sc, dir, &w, &o)) goto fail;
        weights_free(&w);
        return 0;
    }
    if (spec_plan_reserve(&sc, &o) || engine_open(&e, &w, &o)) goto fail;
    if (membw && strcmp(e.ops->name, "cpu") != 0) {
        sc_fail("--membw measures the CPU's memory: it needs the CPU engine (--device cpu), this run uses %s", e.ops->name);
        goto fail;
    }
    if (need > w.cfg.max_position_embeddings) {
        if (depth >= 0) sc_fail("--depth + max(-p, -n) = %d exceeds the context (%d)", need, w.cfg.max_position_embeddings);
        else sc_fail("-p + -n = %d exceeds the context (%d%s)", n_prompt + n_gen, w.cfg.max_position_embeddings,
                     spec_room ? ", less 66 positions for speculative verification" : "");
        goto fail;
    }
    int V = w.cfg.vocab_size;
    int32_t *ids = sc_malloc((size_t)n_prompt * sizeof(int32_t));
    sc_rng r;
    rng_seed(&r, 1);
    for (int i = 0; i < n_prompt; i++) ids[i] = (int32_t)rng_below(&r, (uint64_t)V);
    int32_t *dids = sc_malloc((size_t)(depth > 0 ? depth : 1) * sizeof(int32_t));
    for (int i = 0; i < depth; i++) dids[i] = (int32_t)rng_below(&r, (uint64_t)V);
    if (file && bench_file_ids(dir, file, ids, &n_prompt)) {
        free(ids), free(dids);
        goto fail;
    }
    if (verify_cost > 0) {
        int vrc = spec_cli_wanted(&sc) ? sc_fail("--verify-cost times the target alone: no --draft/--lookup")
                                       : bench_verify_cost(&e, ids, n_prompt, verify_cost, reps, json, nthreads, dir);
        free(ids), free(dids);
        if (vrc) goto fail;
        engine_close(&e);
        weights_free(&w);
        return 0;
    }
    if (ppl) {
        int prc = bench_perplexity(&e, dir, ids, n_prompt, json);
        free(ids), free(dids);
        if (prc) goto fail;
        engine_close(&e);
        weights_free(&w);
        return 0;
    }
    if (spec_cli_wanted(&sc)) {
        sc_spec_opts so;
        int src = spec_cli_open(&sc, dir, NULL, &w, &o, &so) ||
                  bench_spec(&e, &sc, &so, dir, ids, n_prompt, n_gen, reps, json, nthreads);
        free(ids), free(dids);
        spec_cli_close(&sc);
        if (src) goto fail;
        engine_close(&e);
        weights_free(&w);
        return 0;
    }
    sc_kv kv;
    engine_kv_create(&e, &kv, need);
    float *logits = sc_malloc((size_t)V * sizeof(float));
    double best_pp = 1e30, best_tg = 1e30;
    int brc = bench_plain(&e, &kv, dids, depth, ids, n_prompt, n_gen, reps, logits, &best_pp, &best_tg);
    free(dids);
    if (brc) {
        free(ids), free(logits);
        kv_free(&kv);
        goto fail;
    }
    /* per decoded token: every matrix and scale once, plus the KV of the positions attended (mean position) */
    double kv_row = 2.0 * w.cfg.num_hidden_layers * (double)kv_row_bytes(e.kv_type, w.cfg.num_key_value_heads, w.cfg.head_dim);
    int dec_from = depth >= 0 ? depth : n_prompt; /* the context length the first decode step sees */
    double bytes = (double)e.weight_bytes + kv_row * (dec_from + n_gen / 2.0);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double pp = n_prompt / best_pp, tg = n_gen / best_tg, proj = bw * 1e9 / bytes, used_mib = -1, mbw = -1;
    if (membw && (mbw = membw_read_gbs(nthreads, (size_t)256 << 20, 5)) < 0) {
        free(ids), free(logits);
        kv_free(&kv);
        goto fail;
    }
#ifdef SC_HAVE_KERNELS
    if (e.device_bytes) used_mib = engine_cuda_measured_bytes(&e) / 1048576.0; /* after the run: all allocated */
#endif
    if (json)
        printf("{\"model\":\"%s\",\"weights\":\"%s\",\"threads\":%d,\"n_prompt\":%d,\"n_gen\":%d,\"depth\":%d,"
               "\"decode_from\":%d,\"prefill_tok_s\":%.2f,"
               "\"decode_tok_s\":%.2f,\"bytes_per_token\":%.0f,\"projected_tok_s\":%.1f,\"bandwidth_gbs\":%.0f,"
               "\"effective_gbs\":%.2f,\"kv_mib\":%.1f,\"peak_rss_mib\":%.1f,\"kernel\":\"%s\",\"device\":\"%s\","
               "\"peak_device_mib\":%.1f,\"device_used_mib\":%.1f,\"context_mib\":%.1f,\"membw_gbs\":%.2f}\n",
               dir, e.precision, nthreads, n_prompt, n_gen, depth > 0 ? depth : 0, dec_from, pp, tg, bytes, proj, bw,
               bytes * tg / 1e9, kv_bytes(&kv) / 1048576.0, ru.ru_maxrss / 1024.0, quant_kernel_name(), e.ops->name,
               e.device_bytes / 1048576.0, used_mib, e.context_bytes / 1048576.0, mbw);
    else
        printf("%s (%s, %d threads): prefill %d tokens %.1f tok/s; decode %d tokens from position %d %.1f tok/s; "
               "%.1f MB read per token (%.2f GB/s effective) -> %.0f tok/s at %.0f GB/s; KV %.1f MiB; peak RSS %.1f "
               "MiB\n",
               dir, e.precision, nthreads, n_prompt, pp, n_gen, dec_from, tg, bytes / 1e6, bytes * tg / 1e9,
               proj, bw, kv_bytes(&kv) / 1048576.0, ru.ru_maxrss / 1024.0);
    if (!json && mbw > 0)
        printf("memory read bandwidth, %d threads: %.1f GB/s (256 MiB, best of 5); decode read %.0f%% of it\n", nthreads,
               mbw, 100.0 * bytes * tg / 1e9 / mbw);
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
    return sc_command_fail(&cmd);
}
