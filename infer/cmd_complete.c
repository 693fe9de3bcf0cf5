/* cmd_complete.c — `smallcoder complete`: one completion from the command line; fill-in-the-middle when there is
 * text after the cursor. The completion goes to stdout (streamed with --stream); speed and memory to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "host/clock.h"
#include "host/args.h"
#include "host/command.h"
#include "infer/commands_infer.h"
#include "infer/engine_cli.h"
#include "host/error.h"
#include "host/fileio.h"
#include "infer/generate.h"
#include "infer/lora_cli.h"
#include "infer/spec_cli.h"

static int print_piece(void *ctx, const char *text, size_t len) {
    (void)ctx;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return 0;
}

/* splits text at 1-based LINE:COL (COL counts bytes; past the end of a line = its end) */
static int split_at_cursor(char *text, const char *cursor, char **suffix) {
    int line, col;
    char extra;
    if (sscanf(cursor, "%d:%d%c", &line, &col, &extra) != 2 || line < 1 || col < 1)
        return sc_fail("--cursor must be LINE:COL (1-based), got '%s'", cursor);
    char *p = text;
    for (int l = 1; l < line; l++) {
        char *nl = strchr(p, '\n');
        if (!nl) return sc_fail("--cursor %s: the file has only %d lines", cursor, l);
        p = nl + 1;
    }
    char *eol = strchr(p, '\n');
    size_t ll = eol ? (size_t)(eol - p) : strlen(p);
    p += (size_t)(col - 1) < ll ? (size_t)(col - 1) : ll;
    *suffix = strdup(p);
    *p = 0;
    return 0;
}

static char *unescape(const char *s) { /* "\n" and "\t" in --stop */
    char *o = sc_malloc(strlen(s) + 1), *d = o;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] == 'n') *d++ = '\n', s++;
        else if (s[0] == '\\' && s[1] == 't') *d++ = '\t', s++;
        else *d++ = *s;
    }
    *d = 0;
    return o;
}

int cmd_complete(int argc, char **argv) {
    const char *dir = NULL, *prompt = NULL, *file = NULL, *cursor = NULL, *prefix = NULL, *suffix = NULL;
    const char *fim_format = NULL;
    const char *stop = NULL;
    sc_engine_cli ec = ENGINE_CLI_DEFAULTS;
    int n_predict = 128, stream = 0, ctx = 0, print_tokens = 0;
    sc_sampling sp;
    sampling_defaults(&sp);
    int seed = 0;
    sc_spec_cli sc = SPEC_CLI_DEFAULTS;
    sc_spec spec = {0};
    sc_spec_opts so;
    static sc_lora_cli lc; /* static: a few hundred KiB of names and paths */
    memset(&lc, 0, sizeof lc);
    sc_arg args[] = {
        {"model", 'm', SC_ARG_STR, &dir, "model directory (FP32/FP16 or INT8)", 1},
        {"prompt", 'p', SC_ARG_STR, &prompt, "complete this text", 0},
        {"file", 'f', SC_ARG_STR, &file, "complete this file (at --cursor, else at its end)", 0},
        {"cursor", 0, SC_ARG_STR, &cursor, "LINE:COL (1-based) in --file: fill in the middle there", 0},
        {"prefix", 0, SC_ARG_STR, &prefix, "text before the cursor", 0},
        {"suffix", 0, SC_ARG_STR, &suffix, "text after the cursor (fill in the middle)", 0},
        {"n-predict", 'n', SC_ARG_INT, &n_predict, "maximum tokens to generate", 0},
        {"stream", 0, SC_ARG_FLAG, &stream, "print tokens as they are generated", 0},
        {"temperature", 0, SC_ARG_FLOAT, &sp.temperature, "0 = greedy", 0},
        {"top-k", 0, SC_ARG_INT, &sp.top_k, "keep the k most likely tokens (0 = off)", 0},
        {"top-p", 0, SC_ARG_FLOAT, &sp.top_p, "nucleus sampling (1 = off)", 0},
        {"min-p", 0, SC_ARG_FLOAT, &sp.min_p, "drop tokens below min-p x the top probability (0 = off)", 0},
        {"repeat-penalty", 0, SC_ARG_FLOAT, &sp.repeat_penalty, "penalty on recent tokens (1 = off)", 0},
        {"seed", 0, SC_ARG_INT, &seed, "sampling seed", 0},
        {"stop", 0, SC_ARG_STR, &stop, "stop string (\\n and \\t understood)", 0},
        {"ctx", 'c', SC_ARG_INT, &ctx, "context positions to allocate (0 = the model's)", 0},
        ENGINE_CLI_ARGS(ec),
        SPEC_CLI_ARGS(sc),
        LORA_CLI_ARGS(lc),
        {"fim-format", 0, SC_ARG_STR, &fim_format,
         "FIM prompt layout: auto (from the tokenizer's tokens), starcoder, qwen, deepseek or codellama", 0},
        {"print-tokens", 0, SC_ARG_FLAG, &print_tokens, "print the prompt's token ids on stderr", 0},
    };
    sc_cli cli = {"smallcoder complete",
                  "--model DIR (--prompt TEXT | --file F [--cursor LINE:COL] | --prefix P [--suffix S]) [-n 128]",
                  "Generates a completion. With a suffix the prompt is the family's FIM layout (StarCoder/SmolLM\n"
                  "<fim_prefix>P<fim_suffix>S<fim_middle>, Qwen2.5-Coder <|fim_prefix|>..., DeepSeek-Coder\n"
                  "<｜fim▁begin｜>P<｜fim▁hole｜>S<｜fim▁end｜>, CodeLlama ▁<PRE>P▁<SUF>S▁<MID>) and the output is the\n"
                  "middle. The prompt starts with the BOS the tokenizer's post_processor adds (Llama,\n"
                  "DeepSeek-Coder, CodeLlama). Prefill and decode speed and peak memory are printed on stderr. --draft and --lookup\n"
                  "decode speculatively: the output is the same (greedy) or has the same distribution. --lora\n"
                  "applies PEFT LoRA adapters to the model without merging them.",
                  args, sizeof args / sizeof args[0], 0, 0};
    /* the same bounds as the server's request fields (serve_request.c) */
    static const sc_arg_range ranges[] = {SC_RANGE_THREADS,       {"n-predict", 0, 1 << 20}, {"temperature", 0, 100},
                                          {"top-k", 0, 1 << 30},  {"top-p", 0, 1},           {"min-p", 0, 1},
                                          {"repeat-penalty", 0, 100}, {"ctx", 0, 1 << 20}};
    sc_command cmd = {.cli = &cli, SC_COMMAND_RANGES(ranges), .threads = &ec.threads};
    if (sc_command_parse(&cmd, argc, argv)) return cmd.status;
    if (!sc.plan && (prompt != NULL) + (file != NULL) + (prefix != NULL) != 1) {
        fprintf(stderr, "smallcoder complete: give exactly one of --prompt, --file, --prefix\n");
        return 2;
    }
    if ((cursor && !file) || (suffix && !prefix)) {
        fprintf(stderr, "smallcoder complete: --cursor goes with --file, --suffix with --prefix\n");
        return 2;
    }
    sp.seed = (uint64_t)seed;
    if (sc_command_setup(&cmd)) return cmd.status;
    int rc, nthreads = cmd.nthreads;
    char *owned_prefix = NULL, *owned_suffix = NULL, *stopu = stop ? unescape(stop) : NULL;
    sc_weights w = {0};
    sc_engine e = {0};
    sc_tokenizer *tok = NULL;
    sc_session s = {0};
    int32_t *ids = NULL;
    int n = 0;
    sc_gen_result r = {0};
    char path[4096];
    if (file) {
        size_t len;
        if (file_read_all(file, &owned_prefix, &len)) goto fail;
        if (cursor && split_at_cursor(owned_prefix, cursor, &owned_suffix)) goto fail;
        prefix = owned_prefix, suffix = owned_suffix;
    } else if (prompt) prefix = prompt;
    if (tokenizer_load(&tok, path_join(path, sizeof path, dir, "tokenizer.json"))) goto fail;
    double t0 = clock_now();
    if (weights_load(&w, dir) || weights_check_vocab(&w, tokenizer_vocab_size(tok), dir)) goto fail;
    if (lora_cli_open(&lc, &w.cfg, dir)) goto fail;
    if (sc.plan && lc.n > 0 && !sc.draft_dir) { /* base + adapters: the CPU engine's and both CUDA precisions' */
        lora_cli_plan(&lc, &w, dir, ctx > 0 && ctx < w.cfg.max_position_embeddings ? ctx : w.cfg.max_position_embeddings,
                      1, ec.kv.value);
        rc = 0;
        goto done;
    }
    if (fim_prompt(tok, fim_format, prefix, suffix, &ids, &n)) goto fail;
    if (print_tokens) {
        fprintf(stderr, "complete: prompt ids:");
        for (int i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    if (n_predict < 0) n_predict = 0;
    if (ctx <= 0) ctx = n + n_predict + 1 < w.cfg.max_position_embeddings ? n + n_predict + 1 : 0;
    /* the context is known before the engine opens: the CUDA engine sizes its KV cache (and --precision auto
     * its choice) by it */
    sc_engine_opts o = {ENGINE_CLI_OPTS(ec, nthreads), .n_ctx = ctx, .n_seqs = 1, .lora = lc.ptr, .n_lora = lc.n};
    if (sc.plan) { /* the device plan of the model and its draft, then exit */
        if (spec_plan_print(&sc, dir, &w, &o)) goto fail;
        rc = 0;
        goto done;
    }
    if (spec_plan_reserve(&sc, &o) || engine_open(&e, &w, &o)) goto fail;
    if (spec_cli_wanted(&sc)) {
        if (spec_cli_open(&sc, dir, tok, &w, &o, &so) || spec_open(&spec, &so, &e, ctx)) goto fail;
    }
    session_create(&s, &e, ctx);
    fprintf(stderr, "complete: %s model, %s engine (%s int8 kernel), %d threads, KV %s %.1f MiB for %d positions, "
                    "loaded in %.2fs\n",
            w.quantized ? "INT8" : "FP32", e.ops->name, quant_kernel_name(), nthreads, kv_type_names[ec.kv.value],
            kv_bytes(&s.kv) / 1048576.0, s.kv.n_ctx, clock_now() - t0);
    if (lc.n) {
        char desc[2048];
        fprintf(stderr, "complete: %s, unmerged (%.1f MiB)\n", lora_cli_describe(&lc, &lc.scales, desc, sizeof desc),
                e.lora_bytes / 1048576.0);
    }
    const char *const stops[] = {stopu};
    sc_gen_params gp = {.max_tokens = n_predict, .stop = stops, .nstop = stopu ? 1 : 0, .sampling = sp,
                        .on_text = stream ? print_piece : NULL, .spec = spec_cli_wanted(&sc) ? &spec : NULL,
                        .lora = &lc.scales};
    if (generate(&e, &s, tok, ids, n, &gp, &r)) goto fail;
    if (!stream) fwrite(r.text, 1, r.len, stdout);
    printf("\n");
    fflush(stdout);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr, "complete: prompt %d tokens%s: prefill %.1f tok/s (%.3fs); generated %d tokens: decode %.1f tok/s "
                    "(%.3fs); stop: %s; peak memory %.1f MiB\n",
            n, suffix ? " (FIM)" : "", r.prefill_s > 0 ? n / r.prefill_s : 0, r.prefill_s, r.n_generated,
            r.decode_s > 0 ? r.n_generated / r.decode_s : 0, r.decode_s, r.stop_reason, ru.ru_maxrss / 1024.0);
    if (spec_cli_wanted(&sc))
        fprintf(stderr, "complete: speculative (%s%s%s): drafted %d, accepted %d (%.1f%%)\n",
                sc.draft_dir ? "draft " : "", sc.draft_dir ? sc.draft_dir : "", !sc.lookup ? "" : sc.draft_dir ? ", lookup" : "lookup",
                r.n_drafted, r.n_accepted, r.n_drafted ? 100.0 * r.n_accepted / r.n_drafted : 0.0);
    rc = 0;
    goto done;
fail:
    rc = sc_command_fail(&cmd);
done:
    gen_result_free(&r);
    free(ids);
    session_free(&s);
    if (spec.V) spec_close(&spec);
    spec_cli_close(&sc);
    engine_close(&e);
    lora_cli_close(&lc);
    weights_free(&w);
    if (tok) tokenizer_free(tok);
    free(owned_prefix), free(owned_suffix), free(stopu);
    return rc;
}
