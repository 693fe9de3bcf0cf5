/* llamacpp_check.c — llama.cpp's side of bench/llamacpp-tokenizer, built by that script against a llama.cpp build
 * (libllama, its C API only; not part of SmallCoder's build).
 *   llamacpp_check tokenize MODEL.gguf FILE...   one line of ids per file (no BOS, special tokens parsed)
 *   llamacpp_check greedy MODEL.gguf N FILE...   per prompt file: the prompt as llama.cpp tokenizes it for
 *                                                generation (BOS when add_bos_token), N greedy tokens; prints
 *                                                "ids: ..." and the generated text's bytes in hex, one line each */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

static void quiet(enum ggml_log_level level, const char *text, void *user) {
    (void)user;
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static char *slurp(const char *path, int *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    if (fread(s, 1, (size_t)len, f) != (size_t)len) len = 0;
    fclose(f);
    s[len] = 0;
    *n = (int)len;
    return s;
}

static llama_token *tokenize(const struct llama_vocab *v, const char *s, int n, int add_special, int *nt) {
    int k = -llama_tokenize(v, s, n, NULL, 0, add_special, 1);
    llama_token *t = malloc(((size_t)k + 1) * sizeof *t);
    *nt = llama_tokenize(v, s, n, t, k, add_special, 1);
    return t;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: llamacpp_check tokenize MODEL FILE... | greedy MODEL N FILE...\n");
        return 2;
    }
    int greedy = strcmp(argv[1], "greedy") == 0, first = greedy ? 4 : 3, steps = greedy ? atoi(argv[3]) : 0;
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = !greedy;
    struct llama_model *model = llama_model_load_from_file(argv[2], mp);
    if (!model) {
        fprintf(stderr, "llamacpp_check: cannot load %s\n", argv[2]);
        return 1;
    }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    for (int i = first; i < argc; i++) {
        int n, nt;
        char *text = slurp(argv[i], &n);
        if (!text) {
            fprintf(stderr, "llamacpp_check: cannot read %s\n", argv[i]);
            return 1;
        }
        llama_token *t = tokenize(vocab, text, n, greedy, &nt);
        if (!greedy) {
            for (int k = 0; k < nt; k++) printf(k ? " %d" : "%d", t[k]);
            putchar('\n');
        } else {
            struct llama_context_params cp = llama_context_default_params();
            cp.n_ctx = (uint32_t)(nt + steps + 8);
            cp.n_batch = cp.n_ctx;
            cp.n_threads = cp.n_threads_batch = 2;
            struct llama_context *ctx = llama_init_from_model(model, cp);
            struct llama_batch batch = llama_batch_get_one(t, nt);
            llama_token next;
            printf("ids:");
            char hex[8192] = "";
            size_t hl = 0;
            for (int s = 0; s < steps; s++) {
                if (llama_decode(ctx, batch)) {
                    fprintf(stderr, "llamacpp_check: decode failed\n");
                    return 1;
                }
                const float *logits = llama_get_logits_ith(ctx, -1);
                int nv = llama_vocab_n_tokens(vocab), best = 0;
                for (int k = 1; k < nv; k++)
                    if (logits[k] > logits[best]) best = k;
                next = best;
                printf(" %d", next);
                if (llama_vocab_is_eog(vocab, next)) break;
                char piece[256];
                int pn = llama_token_to_piece(vocab, next, piece, sizeof piece, 0, 1);
                for (int k = 0; k < pn && hl + 3 < sizeof hex; k++) hl += (size_t)sprintf(hex + hl, "%02x", (unsigned char)piece[k]);
                batch = llama_batch_get_one(&next, 1);
            }
            printf("\ntext: %s\n", hex);
            llama_free(ctx);
        }
        free(t), free(text);
    }
    llama_model_free(model);
    return 0;
}
