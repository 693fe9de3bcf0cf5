/* serve_slots.c — slot assignment for the server. A request takes the free slot whose cached ids share the
 * longest prefix with its prompt (editors resend nearly the same prefix on every keystroke, so this is what makes
 * the prompt cache hit), otherwise waits in a bounded queue. A slot's cache computed under other LoRA adapters
 * shares nothing with the request (its keys and values depend on them). */
#include <stdlib.h>

#include "host/error.h"
#include "infer/serve.h"

int slots_init(serve_state *st, int nslots, int max_queue) {
    pthread_mutex_init(&st->slot_lock, NULL);
    pthread_cond_init(&st->slot_free, NULL);
    pthread_mutex_init(&st->engine_lock, NULL);
    st->nslots = nslots, st->max_queue = max_queue, st->waiting = 0;
    st->slots = sc_calloc((size_t)nslots, sizeof(serve_slot));
    for (int i = 0; i < nslots; i++) session_create(&st->slots[i].s, st->engine, st->n_ctx);
    for (int i = 0; st->spec_opts && i < nslots; i++)
        if (spec_open(&st->slots[i].spec, st->spec_opts, st->engine, st->n_ctx)) {
            slots_free(st);
            return -1;
        }
    return 0;
}

sc_spec *slots_spec(serve_state *st, int slot) { return st->spec_opts ? &st->slots[slot].spec : NULL; }

void slots_free(serve_state *st) {
    for (int i = 0; i < st->nslots; i++) {
        session_free(&st->slots[i].s);
        if (st->slots[i].spec.V) spec_close(&st->slots[i].spec);
    }
    free(st->slots);
    pthread_mutex_destroy(&st->slot_lock);
    pthread_cond_destroy(&st->slot_free);
    pthread_mutex_destroy(&st->engine_lock);
}

int slots_acquire(serve_state *st, const int32_t *ids, int n, const sc_lora_set *lora) {
    pthread_mutex_lock(&st->slot_lock);
    for (;;) {
        int best = -1, best_len = -1;
        for (int i = 0; i < st->nslots; i++) {
            if (st->slots[i].busy) continue;
            int l = session_reusable_prefix(&st->slots[i].s, lora, ids, n); /* 0 under other adapters */
            if (l > best_len) best = i, best_len = l;
        }
        if (best >= 0) {
            st->slots[best].busy = 1;
            st->slots[best].requests++;
            pthread_mutex_unlock(&st->slot_lock);
            return best;
        }
        if (st->waiting >= st->max_queue) {
            pthread_mutex_unlock(&st->slot_lock);
            return -1;
        }
        st->waiting++;
        pthread_cond_wait(&st->slot_free, &st->slot_lock);
        st->waiting--;
    }
}

void slots_release(serve_state *st, int slot) {
    pthread_mutex_lock(&st->slot_lock);
    st->slots[slot].busy = 0;
    pthread_cond_signal(&st->slot_free);
    pthread_mutex_unlock(&st->slot_lock);
}
