/* fuzz_serve_request.c — the HTTP request bodies of `smallcoder serve` (infer/serve_request.c job_parse) in all
 * three dialects, without sockets; the first input byte picks the dialect. A request that parses must be one the
 * generator can run (ids in the vocabulary, a prompt shorter than the context, bounded sampling values), and its
 * error replies must be valid JSON. The tokenizer is the 256 byte tokens plus FIM specials, built here. */
#include <cjson/cJSON.h>
#include <math.h>

#include "data/tokenizer.h"
#include "data/tokenizer_internal.h"
#include "fuzz/fuzz_common.h"
#include "host/error.h"
#include "host/engine.h"
#include "infer/serve.h"

static serve_state st;
static sc_engine engine;
static sc_config cfg;

static void build_tokenizer(void) {
    static const char *specials[] = {SC_TOK_ENDOFTEXT, SC_TOK_FIM_PREFIX, SC_TOK_FIM_MIDDLE, SC_TOK_FIM_SUFFIX,
                                     SC_TOK_FILE_SEP};
    size_t cap = 16384, n = 0;
    char *j = malloc(cap);
    n += (size_t)snprintf(j + n, cap - n, "{\"added_tokens\":[");
    for (int i = 0; i < 5; i++)
        n += (size_t)snprintf(j + n, cap - n, "%s{\"id\":%d,\"content\":\"%s\",\"special\":true}", i ? "," : "",
                              256 + i, specials[i]);
    n += (size_t)snprintf(j + n, cap - n, "],\"model\":{\"type\":\"BPE\",\"merges\":[],\"vocab\":{");
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        char s[8];
        s[bytes_to_bytelevel(&byte, 1, s)] = 0;
        const char *esc = b == '"' ? "\\\"" : b == '\\' ? "\\\\" : s;
        n += (size_t)snprintf(j + n, cap - n, "%s\"%s\":%d", b ? "," : "", esc, b);
    }
    n += (size_t)snprintf(j + n, cap - n, "}},\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false},"
                                          "\"decoder\":{\"type\":\"ByteLevel\"}}");
    sc_tokenizer *tok;
    if (tokenizer_load_json(&tok, j, n, "fuzz tokenizer")) {
        fprintf(stderr, "fuzz_serve_request: %s\n", sc_error());
        abort();
    }
    free(j);
    st.tok = tok;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    config_preset(&cfg, "tiny");
    cfg.vocab_size = 261;
    engine.cfg = &cfg;
    st.engine = &engine;
    st.model_name = "fuzz \"model\" \\ dir";
    st.n_ctx = 64;
    st.max_body = 1 << 20;
    build_tokenizer();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    api_kind kind = data[0] % 3 == 0 ? API_COMPLETION : data[0] % 3 == 1 ? API_INFILL : API_OPENAI;
    serve_job job;
    if (job_parse(&st, kind, (const char *)data + 1, size - 1, &job) != 0) {
        char *e = reply_error(400, sc_error());
        cJSON *back = cJSON_Parse(e);
        if (!back) abort();
        cJSON_Delete(back);
        free(e);
        return 0;
    }
    if (job.n < 1 || job.n >= st.n_ctx || job.max_tokens < 0) abort();
    for (int i = 0; i < job.n; i++)
        if (job.ids[i] < 0 || job.ids[i] >= cfg.vocab_size) abort();
    const sc_sampling *s = &job.sampling;
    if (!(s->temperature >= 0) || !isfinite(s->temperature) || !(s->top_p >= 0 && s->top_p <= 1) ||
        !(s->min_p >= 0 && s->min_p <= 1) || !(s->repeat_penalty >= 0) || !isfinite(s->repeat_penalty))
        abort();
    for (int i = 0; i < job.nstop; i++)
        if (!job.stop[i] || !job.stop[i][0]) abort();
    char text[] = "x\xff"; /* not UTF-8: the reply must still be valid JSON */
    sc_gen_result r = {.text = text, .len = 2, .stop_reason = "stop", .stop_word = job.nstop ? job.stop[0] : NULL};
    char *reply = reply_final(&st, &job, &r, 1, 0);
    cJSON *back = cJSON_Parse(reply);
    if (!back) abort();
    cJSON_Delete(back);
    free(reply);
    job_free(&job);
    return 0;
}
