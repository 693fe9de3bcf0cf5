/* serve_http.c — libmicrohttpd glue for `smallcoder serve`: one thread per connection; bodies collected up to the
 * size limit (413 beyond); bearer-key check (401); routing; non-streamed replies generated in the connection's
 * thread (cancelled when the client's socket closes), streamed ones (SSE) by a worker thread that feeds the
 * response callback and stops when libmicrohttpd reports the client gone. */
#if defined(__has_include) && __has_include(<microhttpd.h>)
#define SC_HAVE_MHD 1
#include <microhttpd.h>
#endif
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "host/error.h"
#include "infer/serve.h"
#include "infer/serve_http.h"

#ifdef SC_HAVE_MHD

typedef struct {
    char *body;
    size_t len;
    int too_big;
} upload;

/* queues r with the CORS header every reply carries, and lets go of it (libmicrohttpd keeps it until sent) */
static enum MHD_Result send_response(struct MHD_Connection *c, unsigned code, struct MHD_Response *r) {
    MHD_add_response_header(r, "Access-Control-Allow-Origin", "*");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_body(struct MHD_Connection *c, unsigned code, char *body) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json; charset=utf-8");
    return send_response(c, code, r);
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned code, const char *msg) {
    return send_body(c, code, reply_error((int)code, msg));
}

/* ---- streaming ---- */
typedef struct {
    serve_state *st;
    serve_job job;
    int slot;
    long id;
    pthread_mutex_t m;
    pthread_cond_t cv;
    char *buf;
    size_t len, cap, off;
    int done, cancelled, refs;
} stream_ctx;

static void stream_unref(stream_ctx *s) { /* called with s->m held; frees on the last reference */
    if (--s->refs > 0) {
        pthread_mutex_unlock(&s->m);
        return;
    }
    pthread_mutex_unlock(&s->m);
    pthread_mutex_destroy(&s->m);
    pthread_cond_destroy(&s->cv);
    job_free(&s->job);
    free(s->buf);
    free(s);
}

static void stream_push(stream_ctx *s, const char *a, const char *b, const char *c) {
    size_t n = strlen(a) + strlen(b) + strlen(c);
    pthread_mutex_lock(&s->m);
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->buf = realloc(s->buf, s->cap);
        if (!s->buf) sc_malloc((size_t)-1);
    }
    s->len += (size_t)sprintf(s->buf + s->len, "%s%s%s", a, b, c);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->m);
}

static int stream_piece(void *ctx, const char *text, size_t len) {
    stream_ctx *s = ctx;
    pthread_mutex_lock(&s->m);
    int cancelled = s->cancelled;
    pthread_mutex_unlock(&s->m);
    if (cancelled) return 1;
    char *j = reply_chunk(s->st, &s->job, text, len, s->id);
    stream_push(s, "data: ", j, "\n\n");
    free(j);
    return 0;
}

static void *stream_worker(void *arg) {
    stream_ctx *s = arg;
    serve_state *st = s->st;
    sc_gen_params gp = {.max_tokens = s->job.max_tokens, .stop = (const char *const *)s->job.stop,
                        .nstop = s->job.nstop, .sampling = s->job.sampling, .on_text = stream_piece, .ctx = s,
                        .lock = &st->engine_lock, .spec = slots_spec(st, s->slot), .lora = &s->job.lora};
    sc_gen_result r;
    if (generate(st->engine, &st->slots[s->slot].s, st->tok, s->job.ids, s->job.n, &gp, &r) == 0) {
        if (strcmp(r.stop_reason, "cancelled") != 0) {
            char *j = reply_final(st, &s->job, &r, s->id, 1);
            stream_push(s, "data: ", j, "\n\n");
            free(j);
            if (s->job.kind == API_OPENAI) stream_push(s, "data: [DONE]", "", "\n\n");
        } else serve_log("serve: request %ld cancelled after %d tokens (client gone)", s->id, r.n_generated);
        gen_result_free(&r);
    } else {
        char *j = reply_error(500, sc_error());
        stream_push(s, "data: ", j, "\n\n");
        free(j);
    }
    slots_release(st, s->slot);
    pthread_mutex_lock(&s->m);
    s->done = 1;
    pthread_cond_signal(&s->cv);
    stream_unref(s);
    return NULL;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    stream_ctx *s = cls;
    pthread_mutex_lock(&s->m);
    while (s->off == s->len && !s->done) pthread_cond_wait(&s->cv, &s->m);
    ssize_t n;
    if (s->off < s->len) {
        n = (ssize_t)(s->len - s->off < max ? s->len - s->off : max);
        memcpy(buf, s->buf + s->off, (size_t)n);
        s->off += (size_t)n;
    } else n = MHD_CONTENT_READER_END_OF_STREAM;
    pthread_mutex_unlock(&s->m);
    return n;
}

static void stream_free(void *cls) { /* libmicrohttpd is done with the response: finished or client gone */
    stream_ctx *s = cls;
    pthread_mutex_lock(&s->m);
    s->cancelled = 1;
    stream_unref(s);
}

/* ---- non-streamed ---- */
static int client_gone(void *ctx, const char *text, size_t len) {
    int fd = *(int *)ctx;
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return 1;
    char c;
    return (p.revents & POLLIN) && recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static enum MHD_Result run_job(serve_state *st, struct MHD_Connection *c, api_kind kind, upload *u) {
    serve_job job;
    if (job_parse(st, kind, u->body ? u->body : "", u->len, &job)) return send_error(c, 400, sc_error());
    int slot = slots_acquire(st, job.ids, job.n, &job.lora);
    if (slot < 0) {
        job_free(&job);
        return send_error(c, 503, "the server is busy: every slot is in use and the queue is full");
    }
    job.slot = slot;
    pthread_mutex_lock(&st->slot_lock);
    long id = ++st->next_id;
    pthread_mutex_unlock(&st->slot_lock);
    if (job.stream) {
        stream_ctx *s = sc_calloc(1, sizeof *s);
        s->st = st, s->job = job, s->slot = slot, s->id = id, s->refs = 2;
        pthread_mutex_init(&s->m, NULL);
        pthread_cond_init(&s->cv, NULL);
        pthread_t th;
        pthread_create(&th, NULL, stream_worker, s);
        pthread_detach(th);
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, stream_free);
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        return send_response(c, 200, r);
    }
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    int fd = ci ? ci->connect_fd : -1;
    sc_gen_params gp = {.max_tokens = job.max_tokens, .stop = (const char *const *)job.stop, .nstop = job.nstop,
                        .sampling = job.sampling, .on_text = fd >= 0 ? client_gone : NULL, .ctx = &fd,
                        .lock = &st->engine_lock, .spec = slots_spec(st, slot), .lora = &job.lora};
    sc_gen_result r;
    int rc = generate(st->engine, &st->slots[slot].s, st->tok, job.ids, job.n, &gp, &r);
    slots_release(st, slot);
    enum MHD_Result ret;
    if (rc) ret = send_error(c, 500, sc_error());
    else if (strcmp(r.stop_reason, "cancelled") == 0) {
        serve_log("serve: request %ld cancelled after %d tokens (client gone)", id, r.n_generated);
        ret = MHD_NO; /* nobody to answer */
    } else ret = send_body(c, 200, reply_final(st, &job, &r, id, 0));
    if (!rc) gen_result_free(&r);
    job_free(&job);
    return ret;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *data, size_t *data_size, void **con_cls) {
    serve_state *st = cls;
    upload *u = *con_cls;
    if (!u) {
        u = sc_calloc(1, sizeof *u);
        *con_cls = u;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > st->max_body) u->too_big = 1;
        return MHD_YES;
    }
    if (*data_size) {
        if (!u->too_big && u->len + *data_size > st->max_body) u->too_big = 1;
        if (!u->too_big) {
            u->body = realloc(u->body, u->len + *data_size + 1);
            if (!u->body) sc_malloc((size_t)-1);
            memcpy(u->body + u->len, data, *data_size);
            u->len += *data_size;
            u->body[u->len] = 0;
        }
        *data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "OPTIONS") == 0) { /* CORS preflight */
        struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(r, "Access-Control-Allow-Headers", "Content-Type, Authorization");
        MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
        return send_response(c, 204, r);
    }
    if (u->too_big) {
        char m[128];
        snprintf(m, sizeof m, "the request body is larger than the limit of %zu bytes", st->max_body);
        return send_error(c, 413, m);
    }
    int is_get = strcmp(method, "GET") == 0, is_post = strcmp(method, "POST") == 0;
    if (strcmp(url, "/health") == 0) {
        if (!is_get) return send_error(c, 405, "use GET /health");
        return send_body(c, 200, strdup("{\"status\":\"ok\"}"));
    }
    if (st->api_key) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!auth || strncmp(auth, "Bearer ", 7) != 0 || strcmp(auth + 7, st->api_key) != 0)
            return send_error(c, 401, "invalid or missing API key (Authorization: Bearer KEY)");
    }
    if (strcmp(url, "/v1/models") == 0 || strcmp(url, "/models") == 0) {
        if (!is_get) return send_error(c, 405, "use GET /v1/models");
        return send_body(c, 200, reply_models(st));
    }
    if (strcmp(url, "/lora-adapters") == 0) { /* llama.cpp's: list, or set the global scales */
        if (is_get) return send_body(c, 200, reply_lora_adapters(st));
        if (!is_post) return send_error(c, 405, "use GET or POST /lora-adapters");
        if (lora_adapters_post(st, u->body ? u->body : "", u->len)) return send_error(c, 400, sc_error());
        return send_body(c, 200, strdup("{\"success\":true}"));
    }
    api_kind kind;
    if (strcmp(url, "/completion") == 0 || strcmp(url, "/completions") == 0) kind = API_COMPLETION;
    else if (strcmp(url, "/infill") == 0) kind = API_INFILL;
    else if (strcmp(url, "/v1/completions") == 0) kind = API_OPENAI;
    else return send_error(c, 404, "no such endpoint");
    if (!is_post) return send_error(c, 405, "use POST");
    return run_job(st, c, kind, u);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    upload *u = *con_cls;
    if (u) free(u->body), free(u);
    *con_cls = NULL;
}

/* libmicrohttpd's own messages (accept failures, the connection limit reached) go through the rate-limited log:
 * under a connection flood it reports every refused connection */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    char msg[400];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    serve_log("serve: http: %s", msg);
}

/* The connection limit keeps descriptors for the model, the log and the listening socket (cmd_serve sizes it
 * below ulimit -n); at the limit libmicrohttpd closes each new connection at once, and the idle timeout frees the
 * slots of clients that send nothing, so /health is answered again within it. The timeout does not cut a long
 * generation: measured with --timeout 1, a 7 s plain and a 3.7 s streamed completion of 600 tokens both finished. */
struct MHD_Daemon *serve_http_start(serve_state *st, const struct sockaddr *addr, int *port) {
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG,
        (uint16_t)*port, NULL, NULL, handler, st, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, addr,
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)st->idle_timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)st->max_connections, MHD_OPTION_END);
    if (!d) {
        sc_fail("cannot listen on port %d (in use, or no permission)", *port);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (di) *port = di->port;
    return d;
}

void serve_http_stop(struct MHD_Daemon *d) { MHD_stop_daemon(d); }
#else
struct MHD_Daemon *serve_http_start(serve_state *st, const struct sockaddr *addr, int *port) {
    sc_fail("this build has no libmicrohttpd (install libmicrohttpd-dev and rebuild)");
    return NULL;
}
void serve_http_stop(struct MHD_Daemon *d) {}
#endif
