/* serve.h — the HTTP server's shared state: one engine and tokenizer, N slots (each a session whose KV is the
 * prompt cache of its last request), a bounded wait queue for slots, and the parsed form of a request. */
#ifndef SC_INFER_SERVE_H
#define SC_INFER_SERVE_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>

#include "infer/generate.h"
#include "infer/lora_cli.h"

typedef enum { API_COMPLETION, API_INFILL, API_OPENAI } api_kind;

typedef struct {
    sc_session s;
    sc_spec spec; /* speculative decoding state (its own draft cache), when serve_state.spec_opts is set */
    int busy;
    long requests;
} serve_slot;

typedef struct {
    sc_engine *engine;
    const sc_tokenizer *tok;
    const char *model_name;
    const char *fim_format; /* --fim-format: NULL = found from the tokenizer */
    const char *api_key;   /* NULL = no auth */
    size_t max_body;       /* bytes; larger bodies get 413 */
    int max_connections;   /* open connections at most (libmicrohttpd stops accepting beyond; below ulimit -n) */
    int idle_timeout_s;    /* a connection idle this long is closed */
    int n_ctx;
    const sc_spec_opts *spec_opts; /* --draft / --lookup: every slot decodes speculatively; NULL = off */
    const sc_lora_cli *lora;       /* the adapters loaded with --lora (lora->n may be 0) */
    sc_lora_set lora_global;       /* their scales for requests without a 'lora' field (POST /lora-adapters sets
                                    * them); read and written under slot_lock */
    pthread_mutex_t engine_lock;
    /* slots and queue */
    pthread_mutex_t slot_lock;
    pthread_cond_t slot_free;
    serve_slot *slots;
    int nslots, waiting, max_queue;
    long next_id;
} serve_state;

/* A validated request. */
typedef struct {
    api_kind kind;
    int32_t *ids;
    int n;
    int max_tokens;
    sc_sampling sampling;
    char **stop;
    int nstop;
    int stream;
    sc_lora_set lora; /* the request's 'lora' field, else the server's global scales */
    int slot; /* set when a slot is taken */
} serve_job;

/* serve_log.c: one log line (ended by '\n' when the format does not), rate-limited to a burst per second, dropped instead of blocking
 * when stderr cannot take it; dropped lines are counted and reported once the rate allows. */
void serve_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void serve_logv(const char *fmt, va_list ap);
/* tests: log to fd instead of stderr; lines dropped so far */
void serve_log_set_fd(int fd);
long serve_log_dropped(void);

/* serve_slots.c: takes the free slot sharing the longest prefix with ids; waits when all are busy unless max_queue
 * requests already wait (returns -1: the caller answers 503). */
int slots_acquire(serve_state *st, const int32_t *ids, int n, const sc_lora_set *lora);
void slots_release(serve_state *st, int slot);
int slots_init(serve_state *st, int nslots, int max_queue);
/* the slot's speculative state for generate (NULL when off) */
sc_spec *slots_spec(serve_state *st, int slot);
void slots_free(serve_state *st);

/* serve_request.c: body -> job; on a bad request returns -1 with sc_error() saying what was wrong (400). */
int job_parse(serve_state *st, api_kind kind, const char *body, size_t len, serve_job *job);
void job_free(serve_job *job);
/* JSON bodies of replies (malloc'd strings). final: the whole result; chunk: one streamed piece. */
char *reply_final(const serve_state *st, const serve_job *job, const sc_gen_result *r, long id, int streamed);
char *reply_chunk(const serve_state *st, const serve_job *job, const char *text, size_t len, long id);
char *reply_error(int code, const char *message);
/* GET /v1/models: the one model, under its alias or directory */
char *reply_models(const serve_state *st);
/* llama.cpp's adapter list [{"id": 0, "scale": 0.5}, ...] (a JSON array, text of len bytes) into *out: listed
 * adapters get their scale, the others 0; an id that is not loaded, a duplicate or a bad scale is refused (field
 * names the request field, e.g. "lora"). */
int lora_list_parse(const serve_state *st, const void *json_array, const char *field, sc_lora_set *out);
/* GET /lora-adapters: [{"id", "path", "scale", "name"}] with the global scales; POST /lora-adapters sets them */
char *reply_lora_adapters(serve_state *st);
int lora_adapters_post(serve_state *st, const char *body, size_t len);
/* Copies len bytes of text to out (room for 3 * len + 1) as valid UTF-8, NUL-terminated: a byte-level model can
 * emit byte tokens that are not UTF-8 (a lone continuation byte), and strict JSON clients reject those; each byte
 * that does not start a valid sequence becomes U+FFFD. Returns the bytes written. */
size_t serve_utf8_clean(const char *text, size_t len, char *out);

#endif
