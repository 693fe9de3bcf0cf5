/* serve_request.c — the three request dialects (llama.cpp /completion and /infill, OpenAI /v1/completions) parsed
 * into one job, and their replies; llama.cpp's LoRA adapter list (the 'lora' request field, /lora-adapters). Every
 * field is type-checked; an error names the field. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/error.h"
#include "infer/fim_format.h"
#include "infer/serve.h"

static int get_num(const cJSON *root, const char *name, double lo, double hi, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v)) return sc_fail("field '%s' must be a number", name);
    if (!(v->valuedouble >= lo && v->valuedouble <= hi))
        return sc_fail("field '%s' must be between %g and %g, got %g", name, lo, hi, v->valuedouble);
    *out = v->valuedouble;
    return 0;
}

static int get_str(const cJSON *root, const char *name, const char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v)) return sc_fail("field '%s' must be a string", name);
    *out = v->valuestring;
    return 0;
}

static int get_bool(const cJSON *root, const char *name, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsBool(v)) return sc_fail("field '%s' must be true or false", name);
    *out = cJSON_IsTrue(v);
    return 0;
}

static int get_stop(const cJSON *root, serve_job *job) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "stop");
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsString(v)) {
        job->stop = sc_calloc(1, sizeof(char *));
        if (v->valuestring[0]) job->stop[job->nstop++] = strdup(v->valuestring);
        return 0;
    }
    if (!cJSON_IsArray(v)) return sc_fail("field 'stop' must be a string or an array of strings");
    int n = cJSON_GetArraySize(v);
    if (n > 16) return sc_fail("field 'stop' has %d strings; at most 16", n);
    job->stop = sc_calloc((size_t)n + 1, sizeof(char *));
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsString(e)) return sc_fail("field 'stop' must contain only strings");
        if (e->valuestring[0]) job->stop[job->nstop++] = strdup(e->valuestring);
    }
    return 0;
}

/* appends the tokens of text (or the ids of an array of token ids) to the job's prompt */
static int append_text(serve_state *st, serve_job *job, const char *text) {
    int32_t *ids;
    size_t n;
    if (tokenizer_encode(st->tok, text, strlen(text), &ids, &n)) return -1;
    job->ids = realloc(job->ids, (job->n + n + 1) * sizeof(int32_t));
    memcpy(job->ids + job->n, ids, n * sizeof(int32_t));
    job->n += (int)n;
    free(ids);
    return 0;
}

static void append_id(serve_job *job, int32_t id) {
    job->ids = realloc(job->ids, (job->n + 1) * sizeof(int32_t));
    job->ids[job->n++] = id;
}

/* the tokens the tokenizer's post-processor prepends (BOS of Llama, DeepSeek-Coder, CodeLlama): llama.cpp's
 * server adds BOS to a text prompt where the model's add_bos says so */
static void append_special_prefix(serve_state *st, serve_job *job) {
    const int32_t *sp;
    int n = tokenizer_special_prefix(st->tok, &sp);
    for (int i = 0; i < n; i++) append_id(job, sp[i]);
}

/* a text prompt (not token ids: those are taken as given, as llama.cpp does) */
static int append_prompt_text(serve_state *st, serve_job *job, const char *text) {
    append_special_prefix(st, job);
    return append_text(st, job, text);
}

static int parse_prompt(serve_state *st, serve_job *job, const cJSON *p, int required) {
    if (!p || cJSON_IsNull(p)) return required ? sc_fail("field 'prompt' is required") : 0;
    if (cJSON_IsString(p)) return append_prompt_text(st, job, p->valuestring);
    if (cJSON_IsArray(p)) { /* token ids (llama.cpp) or one string in an array (OpenAI) */
        const cJSON *e;
        int V = st->engine->cfg->vocab_size;
        if (cJSON_GetArraySize(p) == 1 && cJSON_IsString(cJSON_GetArrayItem(p, 0)))
            return append_prompt_text(st, job, cJSON_GetArrayItem(p, 0)->valuestring);
        cJSON_ArrayForEach(e, p) {
            if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= V || e->valuedouble != floor(e->valuedouble))
                return sc_fail("field 'prompt' as an array must hold token ids in [0, %d) or a single string", V);
            append_id(job, (int32_t)e->valueint);
        }
        return 0;
    }
    return sc_fail("field 'prompt' must be a string or an array");
}

static int parse_infill(serve_state *st, serve_job *job, const cJSON *root) {
    const char *prefix = "", *suffix = "", *prompt = "";
    if (get_str(root, "input_prefix", &prefix) || get_str(root, "input_suffix", &suffix) ||
        get_str(root, "prompt", &prompt))
        return -1;
    fim_format f;
    if (fim_format_find(st->tok, st->fim_format, &f)) {
        char why[512];
        snprintf(why, sizeof why, "%s", sc_error());
        return sc_fail("/infill is unavailable: %s", why);
    }
    int sep = f.file_sep;
    append_special_prefix(st, job); /* deepseek, codellama: the sequence starts with BOS, before any context */
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(root, "input_extra"), *e;
    if (extra && !cJSON_IsNull(extra)) { /* other files as context: <file_sep>name\ntext, before the FIM prompt */
        if (!cJSON_IsArray(extra)) return sc_fail("field 'input_extra' must be an array of {filename, text}");
        cJSON_ArrayForEach(e, extra) {
            const char *fn = "", *tx = "";
            if (!cJSON_IsObject(e) || get_str(e, "filename", &fn) || get_str(e, "text", &tx))
                return sc_fail("field 'input_extra' must be an array of {filename: string, text: string}");
            if (sep >= 0) append_id(job, sep);
            if (append_text(st, job, fn) || append_text(st, job, "\n") || append_text(st, job, tx)) return -1;
        }
    }
    append_id(job, f.pre);
    if (append_text(st, job, prefix)) return -1;
    append_id(job, f.suf);
    if (append_text(st, job, suffix)) return -1;
    append_id(job, f.mid);
    return append_text(st, job, prompt); /* llama.cpp: the prompt continues the middle */
}

int lora_list_parse(const serve_state *st, const void *json_array, const char *field, sc_lora_set *out) {
    const cJSON *v = json_array, *e;
    int n = st->lora ? st->lora->n : 0;
    memset(out, 0, sizeof *out);
    if (!cJSON_IsArray(v)) return sc_fail("field '%s' must be an array of {\"id\": N, \"scale\": S}", field);
    int seen[ENGINE_LORA_MAX] = {0};
    cJSON_ArrayForEach(e, v) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id"), *sc = cJSON_GetObjectItemCaseSensitive(e, "scale");
        if (!cJSON_IsObject(e) || !cJSON_IsNumber(id) || !cJSON_IsNumber(sc))
            return sc_fail("field '%s' must be an array of {\"id\": N, \"scale\": S}", field);
        if (id->valuedouble != floor(id->valuedouble) || id->valuedouble < 0 || id->valuedouble >= n)
            return sc_fail("field '%s': id %g is not a loaded adapter (%d loaded: GET /lora-adapters)", field,
                           id->valuedouble, n);
        if (!(fabs(sc->valuedouble) <= 1e4))
            return sc_fail("field '%s': scale %g of adapter %d must be between -10000 and 10000", field,
                           sc->valuedouble, id->valueint);
        if (seen[id->valueint]++) return sc_fail("field '%s': adapter %d is listed twice", field, id->valueint);
        out->scale[id->valueint] = (float)sc->valuedouble;
    }
    return 0;
}

int job_parse(serve_state *st, api_kind kind, const char *body, size_t len, serve_job *job) {
    memset(job, 0, sizeof *job);
    job->kind = kind;
    sampling_defaults(&job->sampling);
    job->sampling.temperature = kind == API_OPENAI ? 1.0f : 0.8f;
    job->sampling.seed = (uint64_t)time(NULL);
    /* the error position comes back through end: cJSON_GetErrorPtr() is one global shared by every connection's
     * thread, so it could point into another request's body */
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) return sc_fail("the body is not valid JSON (near byte %zu)",
                              end && end >= body && end <= body + len ? (size_t)(end - body) : (size_t)0);
    int rc = -1;
    double n_predict = kind == API_OPENAI ? 16 : 128, temp = job->sampling.temperature, top_k = job->sampling.top_k;
    double top_p = job->sampling.top_p, min_p = job->sampling.min_p, rp = job->sampling.repeat_penalty, seed = -1;
    if (!cJSON_IsObject(root)) {
        sc_fail("the body must be a JSON object");
        goto out;
    }
    if (get_num(root, kind == API_OPENAI ? "max_tokens" : "n_predict", -1, 1 << 20, &n_predict) ||
        get_num(root, "temperature", 0, 100, &temp) || get_num(root, "top_k", -1, 1 << 30, &top_k) ||
        get_num(root, "top_p", 0, 1, &top_p) || get_num(root, "min_p", 0, 1, &min_p) ||
        get_num(root, "repeat_penalty", 0, 100, &rp) || get_num(root, "seed", -1, 4294967295.0, &seed) ||
        get_bool(root, "stream", &job->stream) || get_stop(root, job))
        goto out;
    const cJSON *lora = cJSON_GetObjectItemCaseSensitive(root, "lora");
    if (lora && !cJSON_IsNull(lora)) { /* llama.cpp: the adapters not listed get scale 0 */
        if (lora_list_parse(st, lora, "lora", &job->lora)) goto out;
    } else {
        pthread_mutex_lock(&st->slot_lock);
        job->lora = st->lora_global;
        pthread_mutex_unlock(&st->slot_lock);
    }
    if (kind == API_OPENAI) {
        const char *model = NULL, *suffix = NULL;
        if (get_str(root, "model", &model) || get_str(root, "suffix", &suffix)) goto out;
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
        if (suffix && suffix[0]) { /* OpenAI's insert mode = fill in the middle */
            if (!cJSON_IsString(p)) {
                sc_fail("field 'prompt' must be a string when 'suffix' is given");
                goto out;
            }
            int32_t *ids;
            int n;
            if (fim_prompt(st->tok, st->fim_format, p->valuestring, suffix, &ids, &n)) goto out;
            job->ids = ids, job->n = n;
        } else if (parse_prompt(st, job, p, 1)) goto out;
    } else if (kind == API_INFILL) {
        if (parse_infill(st, job, root)) goto out;
    } else if (parse_prompt(st, job, cJSON_GetObjectItemCaseSensitive(root, "prompt"), 1)) goto out;
    if (job->n == 0) {
        sc_fail("the prompt is empty");
        goto out;
    }
    if (n_predict < 0) n_predict = st->n_ctx; /* llama.cpp: -1 = until the context is full */
    if (job->n >= st->n_ctx) {
        sc_fail("the prompt has %d tokens; the context holds %d", job->n, st->n_ctx);
        goto out;
    }
    job->max_tokens = (int)n_predict;
    job->sampling.temperature = (float)temp, job->sampling.top_k = (int)top_k, job->sampling.top_p = (float)top_p;
    job->sampling.min_p = (float)min_p, job->sampling.repeat_penalty = (float)rp;
    if (seed >= 0) job->sampling.seed = (uint64_t)seed;
    rc = 0;
out:
    cJSON_Delete(root);
    if (rc) job_free(job);
    return rc;
}

void job_free(serve_job *job) {
    free(job->ids);
    for (int i = 0; i < job->nstop; i++) free(job->stop[i]);
    free(job->stop);
    memset(job, 0, sizeof *job);
}

static char *print_free(cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when it is not one (NUL, overlong, surrogate,
 * above U+10FFFF, truncated or a stray continuation byte). */
static size_t utf8_valid_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t k = c && c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (k == 0 || k > n) return 0;
    unsigned cp = k == 1 ? c : k == 2 ? c & 0x1f : k == 3 ? c & 0x0f : c & 0x07;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    static const unsigned min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return k;
}

size_t serve_utf8_clean(const char *text, size_t len, char *out) {
    char *w = out;
    const unsigned char *u = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_valid_len(u + i, len - i);
        if (k) {
            memcpy(w, u + i, k), w += k, i += k;
        } else {
            memcpy(w, "\xEF\xBF\xBD", 3), w += 3, i++;
        }
    }
    *w = 0;
    return (size_t)(w - out);
}

/* cJSON wants NUL-terminated strings, and JSON clients want valid UTF-8 (serve.h serve_utf8_clean) */
static void add_text(cJSON *o, const char *name, const char *text, size_t len) {
    char *t = sc_malloc(3 * len + 1);
    serve_utf8_clean(text, len, t);
    cJSON_AddStringToObject(o, name, t);
    free(t);
}

static const char *finish_reason(const sc_gen_result *r) {
    return strcmp(r->stop_reason, "length") == 0 || strcmp(r->stop_reason, "context") == 0 ? "length" : "stop";
}

/* The OpenAI text_completion envelope of o with its one choice (text, index, logprobs); returns the choice for
 * its finish_reason. */
static cJSON *openai_choice(cJSON *o, const serve_state *st, long id, const char *text, size_t len) {
    char cid[32];
    snprintf(cid, sizeof cid, "cmpl-%ld", id);
    cJSON_AddStringToObject(o, "id", cid);
    cJSON_AddStringToObject(o, "object", "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)time(NULL));
    add_text(o, "model", st->model_name, strlen(st->model_name));
    cJSON *ch = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    add_text(c, "text", text, len);
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddItemToArray(ch, c);
    return c;
}

/* llama.cpp's timings object; with speculative decoding also its draft_n and draft_n_accepted */
static void add_timings(cJSON *o, const serve_state *st, const sc_gen_result *r) {
    cJSON *t = cJSON_AddObjectToObject(o, "timings");
    int np = r->n_prompt - r->n_cached;
    cJSON_AddNumberToObject(t, "prompt_n", np);
    cJSON_AddNumberToObject(t, "prompt_ms", r->prefill_s * 1e3);
    cJSON_AddNumberToObject(t, "prompt_per_second", r->prefill_s > 0 ? np / r->prefill_s : 0);
    cJSON_AddNumberToObject(t, "predicted_n", r->n_generated);
    cJSON_AddNumberToObject(t, "predicted_ms", r->decode_s * 1e3);
    cJSON_AddNumberToObject(t, "predicted_per_second", r->decode_s > 0 ? r->n_generated / r->decode_s : 0);
    if (st->spec_opts) {
        cJSON_AddNumberToObject(t, "draft_n", r->n_drafted);
        cJSON_AddNumberToObject(t, "draft_n_accepted", r->n_accepted);
    }
}

char *reply_final(const serve_state *st, const serve_job *job, const sc_gen_result *r, long id, int streamed) {
    cJSON *o = cJSON_CreateObject();
    if (job->kind == API_OPENAI) {
        cJSON *c = openai_choice(o, st, id, streamed ? "" : r->text, streamed ? 0 : r->len);
        cJSON_AddStringToObject(c, "finish_reason", finish_reason(r));
        cJSON *u = cJSON_AddObjectToObject(o, "usage");
        cJSON_AddNumberToObject(u, "prompt_tokens", r->n_prompt);
        cJSON_AddNumberToObject(u, "completion_tokens", r->n_generated);
        cJSON_AddNumberToObject(u, "total_tokens", r->n_prompt + r->n_generated);
        add_timings(o, st, r);
        return print_free(o);
    }
    add_text(o, "content", streamed ? "" : r->text, streamed ? 0 : r->len);
    cJSON_AddNumberToObject(o, "id_slot", job->slot);
    cJSON_AddBoolToObject(o, "stop", 1);
    add_text(o, "model", st->model_name, strlen(st->model_name));
    cJSON_AddNumberToObject(o, "tokens_predicted", r->n_generated);
    cJSON_AddNumberToObject(o, "tokens_evaluated", r->n_prompt);
    cJSON_AddNumberToObject(o, "tokens_cached", r->n_cached);
    const char *st_type = strcmp(r->stop_reason, "eos") == 0 ? "eos" : strcmp(r->stop_reason, "stop") == 0 ? "word" : "limit";
    cJSON_AddStringToObject(o, "stop_type", st_type);
    cJSON_AddStringToObject(o, "stopping_word", r->stop_word ? r->stop_word : "");
    cJSON_AddBoolToObject(o, "truncated", 0);
    add_timings(o, st, r);
    return print_free(o);
}

char *reply_chunk(const serve_state *st, const serve_job *job, const char *text, size_t len, long id) {
    cJSON *o = cJSON_CreateObject();
    if (job->kind == API_OPENAI) {
        cJSON_AddNullToObject(openai_choice(o, st, id, text, len), "finish_reason");
        return print_free(o);
    }
    add_text(o, "content", text, len);
    cJSON_AddBoolToObject(o, "stop", 0);
    return print_free(o);
}

char *reply_models(const serve_state *st) {
    cJSON *o = cJSON_CreateObject(), *m = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "data"), m);
    /* a path or alias may hold '"', '\\' or bytes that are not UTF-8: cJSON escapes, add_text cleans */
    add_text(m, "id", st->model_name, strlen(st->model_name));
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", 0);
    cJSON_AddStringToObject(m, "owned_by", "smallcoder");
    return print_free(o);
}

char *reply_lora_adapters(serve_state *st) {
    cJSON *a = cJSON_CreateArray();
    pthread_mutex_lock(&st->slot_lock);
    for (int i = 0; st->lora && i < st->lora->n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", i);
        add_text(o, "path", st->lora->dir[i], strlen(st->lora->dir[i]));
        cJSON_AddNumberToObject(o, "scale", st->lora_global.scale[i]);
        add_text(o, "name", st->lora->name[i], strlen(st->lora->name[i]));
        cJSON_AddNumberToObject(o, "rank", st->lora->ad[i].rank);
        cJSON_AddNumberToObject(o, "alpha", st->lora->ad[i].alpha);
        cJSON_AddItemToArray(a, o);
    }
    pthread_mutex_unlock(&st->slot_lock);
    return print_free(a);
}

int lora_adapters_post(serve_state *st, const char *body, size_t len) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) return sc_fail("the body is not valid JSON");
    sc_lora_set set;
    int rc = lora_list_parse(st, root, "body", &set);
    cJSON_Delete(root);
    if (rc) return -1;
    pthread_mutex_lock(&st->slot_lock);
    st->lora_global = set;
    pthread_mutex_unlock(&st->slot_lock);
    return 0;
}

char *reply_error(int code, const char *message) {
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddNumberToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", code == 401 ? "authentication_error" : code == 503 ? "unavailable_error"
                                       : code >= 500 ? "server_error" : "invalid_request_error");
    return print_free(o);
}
