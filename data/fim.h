/* fim.h — fill-in-the-middle transform of training windows, after Bavarian et al. 2022 ("Efficient Training of
 * Language Models to Fill in the Middle") as StarCoder applies it (bigcode Megatron-LM `permute`):
 *
 *   every document inside a window (the pieces between end-of-text tokens, including the cut-off pieces at
 *   the window's ends; a BOS that opens a document stays in front of it) is, with probability rate, split at
 *   two uniformly random points into prefix / middle / suffix and laid out as
 *     PSM  <fim_prefix> prefix <fim_suffix> suffix <fim_middle> middle
 *     SPM  <fim_prefix> <fim_suffix> suffix <fim_middle> prefix middle     (probability spm_rate)
 *   SPM is the paper's "variant 2" (appendix), the one StarCoder uses: the prefix sentinel stays first, so PSM
 *   and SPM share the <fim_prefix> <fim_suffix> opening and prefix+middle stay contiguous text in SPM.
 *   Each document keeps its token length, so the window stays T+1 long: the suffix is truncated by the tokens
 *   the transform added (3 sentinels + retokenisation) or padded with <fim_pad> when it got shorter; when the
 *   suffix is too short to absorb the growth the document is left as it was (StarCoder does the same), and so
 *   is one that got shorter under a family without a pad token (DeepSeek-Coder, CodeLlama: rare, as the three
 *   sentinels come on top).
 *   The tokens are each family's (data/fim_family.h): a DeepSeek-Coder document becomes
 *   <bos> <｜fim▁begin｜> prefix <｜fim▁hole｜> suffix <｜fim▁end｜> middle, the prompt its model card documents.
 *
 * Splitting is character-level by default (FIM_SPLIT_CHAR): the document's tokens are decoded, the two split
 * points are drawn among UTF-8 character boundaries, and the three pieces are re-encoded. This is what the paper
 * recommends and StarCoder does: at inference the cursor sits anywhere, often inside what would be one token
 * (`self.na|me`), and a model trained only on token-aligned spans is poor at such completions. The cost is a
 * decode + three encodes per transformed document (+0.3-0.7 ms per 4097-token window at rate 0.5) and the need for
 * the tokenizer. FIM_SPLIT_TOKEN splits between tokens (cheaper, no tokenizer; then the output minus the
 * sentinels is exactly a permutation of the input's tokens minus the truncated tail). See docs/data.md. */
#ifndef SC_FIM_H
#define SC_FIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t prefix, middle, suffix, pad, eot;  /* <fim_prefix> <fim_middle> <fim_suffix> <fim_pad> <|endoftext|>
                                                  or the family's; pad -1 = none */
} fim_tokens;

typedef enum { FIM_SPLIT_CHAR = 0, FIM_SPLIT_TOKEN = 1 } fim_split;

/* Decode/encode used by character-level splitting; both return malloc'd buffers, 0 or -1 with sc_error().
 * fim_tokenizer.c builds one from an sc_tokenizer; tests plug in toy codecs. */
typedef struct {
    void *ctx;
    int (*decode)(void *ctx, const int32_t *ids, size_t n, char **text, size_t *len);
    int (*encode)(void *ctx, const char *text, size_t len, int32_t **ids, size_t *n);
} fim_codec;

typedef struct {
    float rate;        /* probability that a document is transformed (StarCoder: 0.5); 0 disables FIM */
    float spm_rate;    /* probability of SPM among transformed documents (StarCoder: 0.5) */
    fim_split split;
    fim_tokens ids;
    fim_codec codec;   /* required for FIM_SPLIT_CHAR */
    int32_t bos;       /* a document's leading BOS (the tokenizer's post-processor adds one), kept in place; -1 none */
} fim_options;

typedef struct {
    uint64_t documents;     /* non-empty pieces seen */
    uint64_t transformed;   /* laid out PSM or SPM */
    uint64_t spm;           /* of which SPM */
    uint64_t too_short;     /* drawn for FIM but the suffix could not absorb the growth, or it shrank and there
                               is no pad token: left unchanged */
    uint64_t not_utf8;      /* character-level only: piece did not decode to valid UTF-8 (window cut inside a
                               character); left unchanged */
} fim_stats;

typedef struct sc_tokenizer sc_tokenizer;
/* A codec over a loaded tokenizer (fim_tokenizer.c); the tokenizer must outlive its use. */
fim_codec fim_codec_from_tokenizer(const sc_tokenizer *tok);
/* Defaults (spm_rate 0.5, character-level) with the given rate, the sentinel ids of the tokenizer's family
 * (fim_family.h), its end-of-text token, the BOS its post-processor adds and its codec. Fails with one line when
 * the tokenizer has no family's FIM tokens or no end-of-text token. The usual way to enable FIM:
 *   loader_options lo = {...}; fim_options_from_tokenizer(&lo.fim, tok, 0.5f); */
int fim_options_from_tokenizer(fim_options *o, const sc_tokenizer *tok, float rate);

/* Fills o with the defaults (rate 0.5, spm_rate 0.5, character-level, no BOS) and the given token ids. */
void fim_options_default(fim_options *o, fim_tokens ids);
int fim_options_check(const fim_options *o);

/* Transforms window[0..n) in place; the randomness is a pure function of key (callers derive it from the seed
 * and the window's position), so a window is reproduced exactly on resume. stats may be NULL. */
int fim_apply(const fim_options *o, int32_t *window, size_t n, uint64_t key, fim_stats *stats);

/* Lays out already-split pieces (PSM or SPM) with npad <fim_pad> after the suffix; writes and returns
 * npre + nmid + nsuf + npad + 3 ids.
 * Exposed for tests; fim_apply uses it. */
size_t fim_layout(const fim_tokens *t, int spm, const int32_t *pre, size_t npre, const int32_t *mid, size_t nmid,
                  const int32_t *suf, size_t nsuf, size_t npad, int32_t *out);

#endif
