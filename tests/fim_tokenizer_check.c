/* fim_tokenizer_check.c TOKENIZER.json SHARD_DIR — character-level FIM with a real tokenizer over real shards
 * (run by tokenize_test.sh, and by open_models_published.sh on a CodeLlama-style SentencePiece tokenizer whose
 * documents start with <s> and end with </s>): every window keeps T+1 tokens and its end-of-text positions (and
 * a document's BOS where it was); every transformed document holds exactly one of each of its family's
 * sentinels in PSM or SPM order, and its pieces decode back to the document's text (all of it when the suffix
 * was padded, a prefix of it when the suffix was truncated). Prints the family's ids it used. */
#include <stdlib.h>
#include <string.h>

#include "tests/check.h"
#include "host/error.h"
#include "data/fim.h"
#include "data/loader.h"
#include "data/tokenizer.h"

enum { T = 256 };

static char *decode(const sc_tokenizer *tok, const int32_t *ids, size_t n, size_t *len) {
    char *s = NULL;
    if (tokenizer_decode_cont(tok, ids, n, &s, len)) { /* pieces of a stream: no Strip of a leading space */
        fprintf(stderr, "decode: %s\n", sc_error());
        exit(1);
    }
    return s;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s TOKENIZER.json SHARD_DIR\n", argv[0]);
        return 2;
    }
    sc_tokenizer *tok;
    if (tokenizer_load(&tok, argv[1])) {
        fprintf(stderr, "%s\n", sc_error());
        return 1;
    }
    loader_options o;
    memset(&o, 0, sizeof o);
    o.dir = argv[2], o.split = "train", o.seq_len = T, o.order = LOADER_RANDOM, o.seed = 11;
    o.tokenizer_hash = tokenizer_hash(tok);
    CHECK(fim_options_from_tokenizer(&o.fim, tok, 1.0f) == 0);
    const fim_tokens ft = o.fim.ids;
    const int32_t bos = o.fim.bos;
    fprintf(stderr, "fim_tokenizer_check: prefix %d, suffix %d, middle %d, pad %d, end of text %d, bos %d\n", ft.prefix,
            ft.suffix, ft.middle, ft.pad, ft.eot, bos);
    loader *l, *plain;
    if (loader_open(&l, &o)) {
        fprintf(stderr, "%s\n", sc_error());
        return 1;
    }
    loader_options po = o;
    po.fim.rate = 0;
    CHECK(loader_open(&plain, &po) == 0);
    int32_t w[T + 1], orig[T + 1];
    int bad_layout = 0, bad_text = 0, bad_eot = 0, padded = 0, truncated = 0, bos_kept = 0;
    uint64_t n = loader_windows_per_epoch(l) < 300 ? loader_windows_per_epoch(l) : 300;
    for (uint64_t p = 0; p < n; p++) {
        CHECK(loader_next(l, w) == 0 && loader_next(plain, orig) == 0);
        size_t s = 0;
        for (size_t i = 0; i <= T + 1; i++) {
            if (i <= T && orig[i] != ft.eot) continue;
            if (i <= T && w[i] != ft.eot) bad_eot++;
            if (bos >= 0 && s < i && orig[s] == bos) { /* the BOS opens the document in both, then its layout */
                if (w[s] != bos) bad_eot++;
                else bos_kept++;
                s++;
            }
            size_t len = i - s;
            const int32_t *d = w + s;
            if (len > 0 && memcmp(d, orig + s, len * sizeof *d) != 0) {
                size_t ip = len, is = len, im = len, cp = 0, cs = 0, cm = 0, npad = 0;
                for (size_t q = 0; q < len; q++) {
                    if (d[q] == ft.prefix) ip = q, cp++;
                    if (d[q] == ft.suffix) is = q, cs++;
                    if (d[q] == ft.middle) im = q, cm++;
                    npad += d[q] == ft.pad;
                }
                if (cp != 1 || cs != 1 || cm != 1 || ip != 0 || is > im) {
                    bad_layout++;
                } else {
                    int spm = is == 1;
                    /* pieces in document order: prefix, middle, suffix (pads follow the suffix) */
                    size_t pre0 = spm ? im + 1 : 1, pre1 = spm ? len : is;   /* SPM: prefix+middle together */
                    size_t mid0 = spm ? len : im + 1, mid1 = len;
                    size_t suf0 = is + 1, suf1 = im - npad;
                    size_t la, lb, lc, lo;
                    char *a = decode(tok, d + pre0, pre1 - pre0, &la), *b = decode(tok, d + mid0, mid1 - mid0, &lb);
                    char *c = decode(tok, d + suf0, suf1 - suf0, &lc), *od = decode(tok, orig + s, len, &lo);
                    char *re = malloc(la + lb + lc + 1);
                    memcpy(re, a, la), memcpy(re + la, b, lb), memcpy(re + la + lb, c, lc);
                    size_t lr = la + lb + lc;
                    if (npad ? (lr != lo || memcmp(re, od, lo) != 0) : (lr > lo || memcmp(re, od, lr) != 0)) bad_text++;
                    npad ? padded++ : truncated++;
                    free(a), free(b), free(c), free(od), free(re);
                }
            }
            s = i + 1;
        }
    }
    const fim_stats *st = loader_fim_stats(l);
    fprintf(stderr, "fim_tokenizer_check: %llu windows, %llu documents, %llu transformed (%llu SPM, %d padded, %d truncated), "
            "%llu too short, %llu cut characters; %d documents opened by the BOS\n", (unsigned long long)n,
            (unsigned long long)st->documents, (unsigned long long)st->transformed, (unsigned long long)st->spm, padded,
            truncated, (unsigned long long)st->too_short, (unsigned long long)st->not_utf8, bos_kept);
    CHECK(bad_layout == 0);
    CHECK(bad_text == 0);
    CHECK(bad_eot == 0);
    CHECK(bos < 0 || bos_kept > 0);
    CHECK(st->transformed > 0 && st->transformed + st->too_short + st->not_utf8 == st->documents);
    loader_close(l);
    loader_close(plain);
    tokenizer_free(tok);
    return check_result("fim_tokenizer_check");
}
