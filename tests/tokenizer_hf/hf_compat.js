// hf_compat.js SMALLCODER NODE_MODULES WORKDIR — our tokenizer against HF tokenizers (its Node binding) on real
// files and generated tricky ones: the ids must be identical, decode(encode(x)) must give x back byte for byte.
// Tokenizers compared: one trained by `smallcoder tokenizer train`, one trained by HF itself (tuple merges,
// only the bytes it saw), and hand-built variants of it in the styles we claim to load (GPT-2 with prefix
// space, Llama-3 / Qwen2 Split + ByteLevel(use_regex=false) + ignore_merges, StarCoder Digits, every Split
// behaviour, added tokens with lstrip/rstrip/single_word/normalized).
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { corpus, checker } = require('./common.js');

const [sc, modules, work] = process.argv.slice(2);
const tk = require(path.join(modules, 'tokenizers'));
const { real, tricky } = corpus(work);
const { compare, roundtrip, writeJson, log, check, done } = checker(sc, tk, work);

(async () => {
  log(`${real.length} real files, ${tricky.length} generated files`);
  // 1. our trainer, HF loads it
  const oursJson = path.join(work, 'ours.json');
  const trainFiles = real.filter((_, i) => i % 2 === 0).concat(tricky);
  execFileSync(sc, ['tokenizer', 'train', '--vocab-size', '3000', '--min-frequency', '2', '--ext', '*', '-q', '--out', oursJson,
    ...trainFiles], { stdio: ['ignore', 'inherit', 'inherit'] });
  const hfOurs = await compare('smallcoder-trained', oursJson, real.concat(tricky));
  const want = { '<|endoftext|>': 0, '<fim_prefix>': 1, '<fim_middle>': 2, '<fim_suffix>': 3, '<fim_pad>': 4, '<file_sep>': 5 };
  for (const [t, id] of Object.entries(want))
    check(hfOurs.tokenToId(t) === id, `HF sees ${t} as id ${hfOurs.tokenToId(t)}, expected ${id}`);
  check(hfOurs.getVocabSize(true) === 3000, `HF vocab size ${hfOurs.getVocabSize(true)}, expected 3000`);
  await roundtrip('smallcoder-trained', oursJson, tricky.concat(real.slice(0, 10)));

  // 2. a tokenizer trained by HF (tuple merges, vocabulary of only the bytes it saw: the rest is dropped by both)
  const hfTrained = new tk.Tokenizer(tk.BPE.empty());
  hfTrained.setPreTokenizer(tk.byteLevelPreTokenizer(false, true));
  hfTrained.train(real.filter((_, i) => i % 6 === 1));
  const hfPath = path.join(work, 'hf-trained.json');
  hfTrained.save(hfPath, false);
  const base = JSON.parse(fs.readFileSync(hfPath, 'utf8'));
  base.decoder = { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true };
  // the variants differ in structure, not in Unicode tables: the big code point file runs on three of them
  const subset = tricky.concat(real.filter((_, i) => i % 8 === 3));
  const small = subset.filter((f) => !f.endsWith('codepoints.txt'));
  const V = Object.keys(base.model.vocab).length;
  const variant = (name, edit) => { const o = JSON.parse(JSON.stringify(base)); edit(o); return writeJson(name + '.json', o); };
  await compare('hf-trained', variant('hf-trained', () => {}), subset);

  // 3. the styles of tokenizer.json we claim to load, built on HF's vocabulary and merges
  const byteLevel = (aps, useRegex) => ({ type: 'ByteLevel', add_prefix_space: aps, trim_offsets: true, use_regex: useRegex });
  const special = (content, id, extra = {}) => Object.assign({ id, content, single_word: false, lstrip: false, rstrip: false,
    normalized: false, special: true }, extra);
  const llama3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const qwen2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  await compare('gpt2-prefix-space', variant('gpt2', (o) => {
    o.pre_tokenizer = byteLevel(true, true);
    o.added_tokens = [special('<|endoftext|>', V)];
  }), small);
  await compare('llama3-style', variant('llama3', (o) => {
    o.pre_tokenizer = { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: llama3 }, behavior: 'Isolated', invert: false }, byteLevel(false, false)] };
    o.model.ignore_merges = true;
    o.added_tokens = [special('<|begin_of_text|>', V), special('<|eot_id|>', V + 1), special('<|endoftext|>', V + 2)];
  }), subset);
  await compare('qwen2-style', variant('qwen2', (o) => {
    o.pre_tokenizer = { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: qwen2 }, behavior: 'Isolated', invert: false }, byteLevel(false, false)] };
    o.added_tokens = [special('<|endoftext|>', V), special('<|im_start|>', V + 1)];
  }), small);
  await compare('starcoder-digits', variant('starcoder', (o) => {
    o.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(false, true)] };
    o.added_tokens = [special('<|endoftext|>', V), special('<fim_prefix>', V + 1), special('<fim_middle>', V + 2)];
  }), small);
  await compare('split-behaviours', variant('splits', (o) => {
    o.pre_tokenizer = { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { String: ' ' }, behavior: 'MergedWithNext', invert: false },
      { type: 'Split', pattern: { Regex: '\\d+' }, behavior: 'MergedWithPrevious', invert: false },
      { type: 'Split', pattern: { Regex: '[,;]' }, behavior: 'Removed', invert: false },
      { type: 'Split', pattern: { Regex: '\\w+' }, behavior: 'Contiguous', invert: true },
      { type: 'Split', pattern: { String: '(' }, behavior: 'Isolated', invert: false },
      { type: 'Digits', individual_digits: false },
      byteLevel(true, false)] };
  }), small);
  await compare('empty-matches', variant('empty', (o) => {
    o.pre_tokenizer = { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: '(?=#)' }, behavior: 'Isolated', invert: false },
      { type: 'Split', pattern: { Regex: ' ?x*' }, behavior: 'MergedWithNext', invert: false },
      { type: 'Split', pattern: { Regex: '\\d*' }, behavior: 'Contiguous', invert: true },
      { type: 'Split', pattern: { Regex: 'e*' }, behavior: 'MergedWithPrevious', invert: false },
      byteLevel(false, true)] };
  }), small.slice(0, 30));
  await compare('added-token-options', variant('added', (o) => {
    o.added_tokens = [special('<|endoftext|>', V), special('<mask>', V + 1, { lstrip: true }),
      special('FIXME', V + 2, { rstrip: true }), special('TODO', V + 3, { single_word: true, normalized: true, special: false }),
      special('<fim_prefix>', V + 4, { normalized: true, special: false }), special('<fim_prefix', V + 5)];
  }), small);

  done();
})().catch((e) => { console.log('ERROR', e.stack || e); process.exit(1); });
