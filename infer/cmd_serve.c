/* cmd_serve.c — `smallcoder serve`: loads a model once and answers llama.cpp-style (/completion, /infill) and
 * OpenAI-style (/v1/completions, /v1/models) requests over HTTP until SIGINT/SIGTERM. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "host/args.h"
#include "host/command.h"
#include "infer/commands_infer.h"
#include "infer/engine_cli.h"
#include "host/error.h"
#include "host/fileio.h"
#include "infer/serve_http.h"
#include "infer/spec_cli.h"

int cmd_serve(int argc, char **argv) {
    const char *dir = NULL, *host = "127.0.0.1", *api_key = NULL, *alias = NULL;
    sc_engine_cli ec = ENGINE_CLI_DEFAULTS;
    const char *fim_format = NULL;
    int port = 8080, parallel = 1, queue = 32, ctx = 0, max_conn = 0, timeout = 30;
    int64_t max_body = 1 << 20;
    sc_spec_cli sc = SPEC_CLI_DEFAULTS;
    sc_spec_opts so;
    static sc_lora_cli lc; /* static: a few hundred KiB of names and paths */
    memset(&lc, 0, sizeof lc);
    int lora_off = 0;
    sc_arg args[] = {
        {"model", 'm', SC_ARG_STR, &dir, "model directory (FP32/FP16 or INT8)", 1},
        {"host", 0, SC_ARG_STR, &host, "IPv4 address to listen on", 0},
        {"port", 0, SC_ARG_INT, &port, "TCP port (0 = any free port; the one taken is printed)", 0},
        {"parallel", 'P', SC_ARG_INT, &parallel, "slots: requests generated at the same time, each with its KV cache", 0},
        {"queue", 0, SC_ARG_INT, &queue, "requests that may wait for a slot; beyond that 503", 0},
        {"api-key", 0, SC_ARG_STR, &api_key, "require Authorization: Bearer KEY (not on /health)", 0},
        {"max-body", 0, SC_ARG_BYTES, &max_body, "largest request body; beyond that 413", 0},
        {"max-connections", 0, SC_ARG_INT, &max_conn,
         "open connections at most; beyond it new ones are closed at once (0 = min(512, ulimit -n minus 32))", 0},
        {"timeout", 0, SC_ARG_INT, &timeout, "seconds a connection may stay idle before it is closed (1..3600)", 0},
        {"ctx", 'c', SC_ARG_INT, &ctx, "context positions per slot (0 = the model's)", 0},
        {"alias", 0, SC_ARG_STR, &alias, "model name in replies and /v1/models (default: the directory)", 0},
        ENGINE_CLI_ARGS(ec),
        SPEC_CLI_ARGS(sc),
        LORA_CLI_ARGS(lc),
        {"lora-init-without-apply", 0, SC_ARG_FLAG, &lora_off,
         "load the --lora adapters with scale 0: only requests that list them ('lora' field) apply them", 0},
        {"fim-format", 0, SC_ARG_STR, &fim_format,
         "FIM layout for /infill and suffix: auto (from the tokenizer), starcoder, qwen, deepseek or codellama", 0},
    };
    sc_cli cli = {"smallcoder serve", "--model DIR [--host 127.0.0.1] [--port 8080] [--parallel N] [--api-key K]",
                  "HTTP completion server: POST /completion, /infill (llama.cpp), /v1/completions (OpenAI), GET\n"
                  "/v1/models, /health. Each slot keeps the KV of its last request and reuses the common prefix.\n"
                  "--lora NAME=DIR (repeatable) loads PEFT LoRA adapters next to the one base, unmerged; a request\n"
                  "picks them with llama.cpp's field \"lora\": [{\"id\": 0, \"scale\": 1.0}], GET /lora-adapters\n"
                  "lists them and POST /lora-adapters sets the scales of requests that do not say.",
                  args, sizeof args / sizeof args[0], 0, 0};
    static const sc_arg_range ranges[] = {SC_RANGE_THREADS, {"ctx", 0, 1 << 20}};
    sc_command cmd = {.cli = &cli, SC_COMMAND_RANGES(ranges), .threads = &ec.threads};
    if (sc_command_parse(&cmd, argc, argv)) return cmd.status;
    if (parallel < 1 || parallel > 64 || queue < 0 || port < 0 || port > 65535 || max_body < 1) {
        fprintf(stderr, "smallcoder serve: --parallel must be 1..64, --queue >= 0, --port 0..65535, --max-body > 0\n");
        return 2;
    }
    /* each connection holds a descriptor (and a thread): the limit stays below ulimit -n, leaving FD_RESERVE for
     * the model, the log and libmicrohttpd itself, so a flood of idle clients cannot starve the process */
    enum { FD_RESERVE = 32, AUTO_MAX_CONN = 512 };
    struct rlimit rl;
    long fd_room = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (long)rl.rlim_cur - FD_RESERVE
                                                                                      : 65536;
    if (fd_room < 1) {
        fprintf(stderr, "smallcoder serve: ulimit -n %ld leaves no descriptor for connections (the server keeps %d)\n",
                fd_room + FD_RESERVE, FD_RESERVE);
        return 2;
    }
    if (max_conn == 0) max_conn = fd_room < AUTO_MAX_CONN ? (int)fd_room : AUTO_MAX_CONN;
    if (max_conn < 1 || max_conn > fd_room) {
        fprintf(stderr, "smallcoder serve: --max-connections must be 1..%ld here (ulimit -n %ld minus %d descriptors "
                        "the server keeps for itself), got %d\n", fd_room, fd_room + FD_RESERVE, FD_RESERVE, max_conn);
        return 2;
    }
    if (timeout < 1 || timeout > 3600) {
        fprintf(stderr, "smallcoder serve: --timeout must be 1..3600 seconds, got %d\n", timeout);
        return 2;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "smallcoder serve: --host must be an IPv4 address, got '%s'\n", host);
        return 2;
    }
    if (sc_command_setup(&cmd)) return cmd.status;
    int nthreads = cmd.nthreads;
    /* block the stop signals before any thread starts so that only sigwait below sees them */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    sc_weights w = {0};
    sc_engine e = {0};
    sc_tokenizer *tok = NULL;
    serve_state st = {0};
    char path[4096];
    if (tokenizer_load(&tok, path_join(path, sizeof path, dir, "tokenizer.json"))) goto fail;
    if (weights_load(&w, dir) || weights_check_vocab(&w, tokenizer_vocab_size(tok), dir)) goto fail;
    if (lora_cli_open(&lc, &w.cfg, dir)) goto fail;
    st.n_ctx = ctx > 0 && ctx < w.cfg.max_position_embeddings ? ctx : w.cfg.max_position_embeddings;
    sc_engine_opts o = {ENGINE_CLI_OPTS(ec, nthreads), .n_ctx = st.n_ctx, .n_seqs = parallel, .lora = lc.ptr,
                        .n_lora = lc.n};
    if (sc.plan && lc.n > 0 && !sc.draft_dir) { /* base + adapters: the CPU engine's and both CUDA precisions' */
        lora_cli_plan(&lc, &w, dir, st.n_ctx, parallel, ec.kv.value);
        lora_cli_close(&lc);
        weights_free(&w);
        tokenizer_free(tok);
        return 0;
    }
    if (sc.plan) { /* the device plan of the model (its slots) and the draft, then exit */
        if (spec_plan_print(&sc, dir, &w, &o)) goto fail;
        weights_free(&w);
        tokenizer_free(tok);
        return 0;
    }
    if (spec_plan_reserve(&sc, &o) || engine_open(&e, &w, &o)) goto fail;
    st.engine = &e, st.tok = tok, st.api_key = api_key, st.max_body = (size_t)max_body;
    st.max_connections = max_conn, st.idle_timeout_s = timeout;
    st.model_name = alias ? alias : dir;
    st.fim_format = fim_format;
    st.lora = &lc;
    if (!lora_off) st.lora_global = lc.scales; /* llama.cpp: --lora adapters apply at their scale by default */
    if (spec_cli_wanted(&sc)) {
        if (spec_cli_open(&sc, dir, tok, &w, &o, &so)) goto fail;
        st.spec_opts = &so;
    }
    if (slots_init(&st, parallel, queue)) goto fail;
    struct MHD_Daemon *d = serve_http_start(&st, (const struct sockaddr *)&sa, &port);
    if (!d) {
        slots_free(&st);
        goto fail;
    }
    fprintf(stderr, "serve: %s model %s, %s engine, %d slot(s) x %d positions (KV %s, %.1f MiB each), queue %d, "
                    "%d threads, %d connections at most (idle timeout %d s)\nserve: listening on http://%s:%d\n",
            w.quantized ? "INT8" : "FP32", dir, e.ops->name, parallel, st.n_ctx, kv_type_names[ec.kv.value],
            kv_bytes(&st.slots[0].s.kv) / 1048576.0, queue, nthreads, max_conn, timeout, host, port);
    if (st.spec_opts)
        fprintf(stderr, "serve: speculative decoding:%s%s%s (K <= %d, adaptive)\n", sc.draft_dir ? " draft " : "",
                sc.draft_dir ? sc.draft_dir : "", sc.lookup ? " + prompt lookup" : "", st.slots[0].spec.kmax);
    if (lc.n) {
        char desc[2048];
        fprintf(stderr, "serve: %s, unmerged (%.1f MiB); requests choose with \"lora\": [{\"id\", \"scale\"}]\n",
                lora_cli_describe(&lc, &st.lora_global, desc, sizeof desc), e.lora_bytes / 1048576.0);
    }
    int sig;
    sigwait(&stop, &sig);
    fprintf(stderr, "serve: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    serve_http_stop(d);
    slots_free(&st);
    spec_cli_close(&sc);
    engine_close(&e);
    lora_cli_close(&lc);
    weights_free(&w);
    tokenizer_free(tok);
    return 0;
fail:
    sc_command_fail(&cmd);
    spec_cli_close(&sc);
    engine_close(&e);
    lora_cli_close(&lc);
    weights_free(&w);
    if (tok) tokenizer_free(tok);
    return 1;
}
