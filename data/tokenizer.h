/* tokenizer.h — BPE compatible with HF tokenizer.json: byte-level (GPT-2, Llama-3, Qwen2, DeepSeek, StarCoder) and
 * SentencePiece style (Llama-2, TinyLlama, CodeLlama, Mistral: byte_fallback): load, encode, decode.
 * Training lives in tokenizer_train.h. Encode is thread-safe on a shared tokenizer (scratch is per call). */
#ifndef SC_TOKENIZER_H
#define SC_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct sc_tokenizer sc_tokenizer;

/* Loads an HF tokenizer.json: model BPE with a ByteLevel pre-tokenizer (alone or after Split/Digits) and decoder,
 * or SentencePiece-style BPE (no pre-tokenizer or Metaspace; byte_fallback; Replace/ByteFallback/Fuse/Strip or
 * Metaspace decoder); normalizers NFC/NFD/NFKC/NFKD/Prepend/Replace/Strip in any Sequence. Anything else
 * (Unigram, WordPiece, other normalizers...) is refused by name. Returns 0 or -1 with sc_error() set. */
int tokenizer_load(sc_tokenizer **out, const char *path);
void tokenizer_free(sc_tokenizer *tok);
/* The same from a tokenizer.json held in memory; name is used in error messages. */
int tokenizer_load_json(sc_tokenizer **out, const char *json, size_t len, const char *name);

/* Encodes len bytes of text. Added/special tokens appearing literally in the text are matched first (as HF
 * does); nothing is prepended or appended. *ids is malloc'd (caller frees), *n its length. */
int tokenizer_encode(const sc_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n);
/* The same for text that continues earlier text (a FIM suffix): a SentencePiece tokenizer's prefix "▁" (Prepend
 * normalizer, Metaspace) is not added at its start, as CodeLlama's infilling encodes the suffix. Identical to
 * tokenizer_encode for byte-level tokenizers. */
int tokenizer_encode_cont(const sc_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n);

/* The tokens the tokenizer.json post_processor puts around a single sequence (HF `tokenizer(text)`,
 * add_special_tokens=True): TemplateProcessing's "single" (Llama-2/TinyLlama/CodeLlama `<s> $A`, Llama-3.x
 * `<|begin_of_text|> $A`, DeepSeek-Coder `<｜begin▁of▁sentence｜> $A`), RobertaProcessing/BertProcessing
 * (cls $A sep), Sequence of those; ByteLevel and null add nothing (Qwen2, SmolLM, ours). Return the count and
 * point *ids at them (owned by the tokenizer). */
int tokenizer_special_prefix(const sc_tokenizer *tok, const int32_t **ids);
int tokenizer_special_suffix(const sc_tokenizer *tok, const int32_t **ids);
/* The BOS the post-processor prepends when it prepends exactly one token (llama.cpp's add_bos), else -1. */
int32_t tokenizer_bos_id(const sc_tokenizer *tok);
/* tokenizer_encode with the post-processor's tokens around the text: HF's encode(text, add_special_tokens=True). */
int tokenizer_encode_special(const sc_tokenizer *tok, const char *text, size_t len, int32_t **ids, size_t *n);

/* Decodes ids to bytes as the tokenizer's decoder does (special tokens are written as their text; <0xNN> byte
 * tokens as raw bytes, so a run that is not UTF-8 comes back as it was where HF writes U+FFFD). *out is malloc'd
 * and NUL-terminated, *len excludes the NUL. Ids outside the vocabulary are an error naming the id. */
int tokenizer_decode(const sc_tokenizer *tok, const int32_t *ids, size_t n, char **out, size_t *len);
/* The same for ids that continue earlier output (generation, one token at a time): the decoder's Strip of the
 * leading space and Metaspace's first-token rule are not applied, so the pieces concatenate to the text. */
int tokenizer_decode_cont(const sc_tokenizer *tok, const int32_t *ids, size_t n, char **out, size_t *len);

/* Number of ids (vocabulary + added tokens = max id + 1). */
int tokenizer_vocab_size(const sc_tokenizer *tok);
/* The text of id as tokenizer.json spells it (e.g. "<s>"), or NULL when id is not a token. */
const char *tokenizer_token_text(const sc_tokenizer *tok, int32_t id);
/* Id of a token given by its exact string (e.g. "<|endoftext|>", "<fim_prefix>"), or -1. */
int tokenizer_token_id(const sc_tokenizer *tok, const char *token);
/* 64-bit FNV-1a hash of the tokenizer's vocabulary, merges and added tokens in id order, and of its
 * pre-tokenizer pipeline and BPE options: identifies a tokenizer independently of JSON formatting; shards and
 * teacher logits carry it. */
uint64_t tokenizer_hash(const sc_tokenizer *tok);

/* The special tokens SmallCoder's own tokenizers carry (`smallcoder tokenizer train`), as ids 0..5 in this
 * order, before the 256 byte tokens (6..261) and the merges: HF's BpeTrainer and StarCoder put specials first
 * too, and <|endoftext|> = 0 whatever the vocabulary size. Look them up with tokenizer_token_id(). */
#define SC_TOK_ENDOFTEXT "<|endoftext|>"
#define SC_TOK_FIM_PREFIX "<fim_prefix>"
#define SC_TOK_FIM_MIDDLE "<fim_middle>"
#define SC_TOK_FIM_SUFFIX "<fim_suffix>"
#define SC_TOK_FIM_PAD "<fim_pad>"
#define SC_TOK_FILE_SEP "<file_sep>"

#endif
