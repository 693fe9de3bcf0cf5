/* generate.h — one completion: reuse the cached prefix of a session, prefill the rest of the prompt, then sample
 * token by token until an end token, a stop string, max tokens, a full context or cancellation. Text is streamed
 * through a callback without ever splitting a UTF-8 character or leaking the start of a stop string. */
#ifndef SC_INFER_GENERATE_H
#define SC_INFER_GENERATE_H

#include <pthread.h>
#include <stddef.h>

#include "host/engine.h"
#include "infer/sampler.h"
#include "infer/speculative.h"
#include "data/tokenizer.h"

/* A sequence's KV cache and the ids it holds (ids[0..kv.n)), kept between requests as the prompt cache. The keys
 * and values depend on the LoRA adapters that computed them, so the cache is keyed on that set too. */
typedef struct sc_session {
    sc_kv kv;
    int32_t *ids;     /* [kv.n_ctx] */
    sc_lora_set lora; /* the adapters (and scales) the cached positions were computed with */
} sc_session;

void session_create(sc_session *s, const sc_engine *e, int n_ctx);
void session_free(sc_session *s);
/* Length of the common prefix of the session's ids and a prompt. */
int session_common_prefix(const sc_session *s, const int32_t *ids, int n);
/* The part of that prefix a request with adapters `lora` (NULL = none) may reuse: 0 when the session's cache was
 * computed with another adapter set. */
int session_reusable_prefix(const sc_session *s, const sc_lora_set *lora, const int32_t *ids, int n);

typedef struct {
    int max_tokens;
    const char *const *stop; /* stop strings (not included in the output) */
    int nstop;
    sc_sampling sampling;
    /* called with each new piece of text; return non-zero to cancel. May be NULL. */
    int (*on_text)(void *ctx, const char *text, size_t len);
    void *ctx;
    pthread_mutex_t *lock; /* held around each engine call when engines are shared (server); may be NULL */
    sc_spec *spec;         /* speculative decoding (draft model and/or prompt lookup), or NULL */
    const sc_lora_set *lora; /* the target's LoRA adapters and scales (engine.h), NULL = the base alone */
} sc_gen_params;

typedef struct {
    char *text; /* malloc'd, NUL-terminated, stop string removed */
    size_t len;
    int n_prompt, n_cached, n_generated;
    const char *stop_reason; /* "eos", "stop", "length", "context", "cancelled" */
    const char *stop_word;   /* the stop string that matched, or NULL */
    double prefill_s, decode_s;
    int n_drafted, n_accepted; /* speculative decoding: tokens drafted, and of them accepted by the target */
} sc_gen_result;

int generate(sc_engine *e, sc_session *s, const sc_tokenizer *tok, const int32_t *prompt, int n,
             const sc_gen_params *p, sc_gen_result *r);
void gen_result_free(sc_gen_result *r);

/* Prompt for fill-in-the-middle in the family's format (infer/fim_format.h; format NULL = found from the
 * tokenizer): e.g. <fim_prefix> prefix <fim_suffix> suffix <fim_middle>, as training builds it. Without a suffix
 * (NULL) it is the plain prefix. Either way it starts with the tokens the tokenizer's post-processor prepends
 * (the BOS of Llama, DeepSeek-Coder, CodeLlama; nothing for Qwen2, SmolLM, ours). *ids malloc'd. */
int fim_prompt(const sc_tokenizer *tok, const char *format, const char *prefix, const char *suffix, int32_t **ids,
               int *n);


#endif
