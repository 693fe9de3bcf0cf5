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

const [sc, modules, work] = process.argv.slice(2);
const tk = require(path.join(modules, 'tokenizers'));
let failures = 0, checks = 0;
const t0 = Date.now();
const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);

// ---- corpus: real files (python stdlib, C headers; the repo's own sources as a fallback) ----
function walk(dir, re, out, limit) {
  let entries;
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch (e) { return; }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (out.length >= limit || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, re, out, limit);
    else if (e.isFile() && re.test(e.name)) {
      const st = fs.statSync(p);
      if (st.size > 0 && st.size < 200000) out.push(p);
    }
  }
}
function isUtf8(buf) {
  try { new TextDecoder('utf-8', { fatal: true }).decode(buf); return buf.indexOf(0) < 0; } catch (e) { return false; }
}
const pyDirs = fs.readdirSync('/usr/lib').filter((d) => /^python3\.\d+$/.test(d)).map((d) => '/usr/lib/' + d);
let py = [], hdr = [];
for (const d of pyDirs) walk(d, /\.py$/, py, 6000);
walk('/usr/include', /\.h$/, hdr, 3000);
const every = (list, n) => list.filter((_, i) => i % Math.max(1, Math.floor(list.length / n)) === 0).slice(0, n);
let real = every(py, 220).concat(every(hdr, 120));
if (real.length < 50) walk(path.resolve(__dirname, '../..'), /\.(c|h|sh|md|txt|js)$/, real, 400);
real = real.filter((f) => isUtf8(fs.readFileSync(f)));

// ---- generated files: the inputs where tokenizers disagree if anything is off ----
const gen = path.join(work, 'gen');
fs.mkdirSync(gen, { recursive: true });
const tricky = [];
function put(name, text) {
  const p = path.join(gen, name);
  fs.writeFileSync(p, text);
  tricky.push(p);
}
put('identifiers.py', [
  'def größe(maß, ñandú=1):\n    return maß * ñandú  # größer\n',
  'λ = lambda α, β: α + β\nπ₁ = 3.14159\nx² = 4\n',
  '变量 = "值"\n函数名 = lambda 参数: 参数\nпеременная = 42\nимя_функции()\n',
  'ｆｕｌｌ＿ｗｉｄｔｈ = １２３  # fullwidth\n変数 = "日本語テキスト"\n변수 = "한국어"\n',
  'שלום = "עולם"\nمرحبا = "بالعالم"\nनमस्ते = "दुनिया"  # combining marks\n',
  'café = "cafe\u0301"  # combining acute\nzw = "a\u200bb\u200cc\u200dd"\nⅫ = 12; ½ = 0.5; ³ = 3\n',
  'ſ = "long s"; K = "kelvin"; İ = "dotted"; ß = "sharp"; ǅ = "titlecase"\n',
].join(''));
put('emoji.js', [
  '// 🎉 party\nconst greet = (name) => `👋 Hello, ${name}! 🚀`;\n',
  'const family = "👨‍👩‍👧‍👦"; const flag = "🇩🇪🇯🇵"; const skin = "👍🏽👍🏿";\n',
  'console.log("✅ done ❌ failed ⚠️ warn 🔥🔥🔥");\n/* 😀😃😄😁😆😅😂🤣 */ let 𝒳 = "math 𝔸𝕓";\n',
  'const keycap = "1️⃣#️⃣"; const tag = "🏴󠁧󠁢󠁳󠁣󠁴󠁿"; // 𝟘𝟙𝟚 digits\n',
].join(''));
put('tabs.c', '#include <stdio.h>\n\nint main(void)\n{\n\tint x = 1;\n\t\tif (x) {\n\t\t\tprintf("tab\\there\\n");\n' +
  '\t \t  \t}\n    \treturn 0;\t\t\n}\n\t\n\t\t\t\n');
put('crlf.py', 'import os\r\n\r\ndef f(x):\r\n    return x\r\n\r\n\r\nclass A:\r\n    pass\r\n \r\n\t\r\nlone\rcarriage\r\r\n');
put('whitespace.txt', 'a' + ' '.repeat(1000) + 'b\n' + '\n'.repeat(3000) + 'c' + ' \t'.repeat(500) + '\n' +
  '\u00a0\u00a0x\u3000\u3000y\u2028z\u2029w\u0085v\u180ev\u2003\u2009\u202f\u205f.\u000b\u000c\n' +
  ' '.repeat(70) + '\n' + '    \n'.repeat(200) + '   ');
put('long_line.js', 'var data = [' + Array.from({ length: 12000 }, (_, i) => `${i * 7919 % 100003}, "k${i}"`).join(', ') + '];\n' +
  'x'.repeat(20000) + '\n' + '='.repeat(5000) + '\n' + '9'.repeat(3000) + '\n' +
  Buffer.from(Array.from({ length: 30000 }, (_, i) => (i * 131) % 256)).toString('base64') + '\n');
put('contractions.py', "# don't won't I'll you're we've he's I'd I'm they'LL IT'S 's 't 're 've 'm 'll 'd\n" +
  "s = 'it''s'; t = \"'s\" + 'S' + '''ſ''' # ''' ' '' '''''\n");
put('specials.txt', 'a<|endoftext|>b <|endoftext|> c<|endoftext|><|endoftext|>\n<fim_prefix>def f():<fim_suffix>\n' +
  '<fim_middle>return 1<fim_pad><file_sep>x.py\n<|endoftext <fim_prefix <fim_middle>> <<fim_suffix>>\n' +
  '<|begin_of_text|>hi<|eot_id|> <mask> xx<mask>  yy TODO todo xTODO TODO_x FIXME   z\n');
{
  // every assigned-looking code point (BMP, SMP, SIP and TIP, tags and variation selectors), in runs broken by
  // spaces, digits and newlines, so each character is seen next to letters, numbers and whitespace
  let s = '', k = 0;
  const ranges = [[0x01, 0xd7ff], [0xe000, 0xfffd], [0x10000, 0x1fbff], [0x20000, 0x2a6df], [0x30000, 0x3134f], [0xe0000, 0xe01ef]];
  for (const [a, b] of ranges)
    for (let c = a; c <= b; c++) {
      if (c === 0) continue;
      s += String.fromCodePoint(c);
      k++;
      if (k % 7 === 0) s += ' ';
      if (k % 13 === 0) s += 'a1';
      if (k % 61 === 0) s += '\n';
    }
  put('codepoints.txt', s);
}
put('unicode_ws.py', Array.from([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x180e,
  0x2000, 0x2001, 0x2002, 0x2007, 0x200a, 0x200b, 0x2028, 0x2029, 0x202f, 0x205f, 0x2060, 0x3000, 0xfeff],
  (c) => `x${String.fromCodePoint(c)}y${String.fromCodePoint(c, c)}1 ${String.fromCodePoint(c)}!\n`).join(''));
put('bom.py', '\ufeffimport sys\n');
put('empty.txt', '');
put('one_space.txt', ' ');

// ---- helpers ----
function ours(json, files) {
  const out = execFileSync(sc, ['tokenizer', 'encode', '-t', json, ...files], { maxBuffer: 1 << 30 }).toString();
  const lines = out.split('\n');
  lines.pop();
  if (lines.length !== files.length) throw new Error(`smallcoder printed ${lines.length} lines for ${files.length} files`);
  return lines.map((l) => (l.length ? l.split(' ').map(Number) : []));
}
async function compare(name, json, files) {
  const hf = tk.Tokenizer.fromFile(json);
  const mine = ours(json, files);
  let bad = 0, tokens = 0, bytes = 0;
  for (let i = 0; i < files.length; i++) {
    const text = fs.readFileSync(files[i], 'utf8');
    bytes += Buffer.byteLength(text);
    const ids = (await hf.encode(text, null, { addSpecialTokens: false })).getIds();
    tokens += ids.length;
    checks++;
    const a = mine[i];
    let j = 0;
    while (j < a.length && j < ids.length && a[j] === ids[j]) j++;
    if (j === a.length && j === ids.length) continue;
    bad++;
    if (bad <= 5) {
      const show = (v) => v.slice(Math.max(0, j - 3), j + 4).map((id) => `${id}:${JSON.stringify(hf.idToToken(id))}`).join(' ');
      console.log(`MISMATCH ${name} ${files[i]} at token ${j} (ours ${a.length} tokens, HF ${ids.length})\n  ours: ${show(a)}\n  HF:   ${show(ids)}`);
    }
  }
  failures += bad;
  log(`${name}: ${files.length - bad}/${files.length} files identical (${tokens} tokens, ${(bytes / 1e6).toFixed(2)} MB)`);
  return hf;
}
async function roundtrip(name, json, files) {
  const hf = tk.Tokenizer.fromFile(json);
  const mine = ours(json, files);
  let bad = 0;
  for (let i = 0; i < files.length; i++) {
    const raw = fs.readFileSync(files[i]);
    const idsPath = path.join(work, 'ids.txt');
    fs.writeFileSync(idsPath, mine[i].join(' '));
    const back = execFileSync(sc, ['tokenizer', 'decode', '-t', json, idsPath], { maxBuffer: 1 << 30 });
    const hfText = await hf.decode(mine[i], false);
    checks += 2;
    if (!back.equals(raw)) { bad++; console.log(`ROUNDTRIP ${name} ${files[i]}: decode(encode(x)) != x (${back.length} vs ${raw.length} bytes)`); }
    if (hfText !== raw.toString('utf8')) { bad++; console.log(`HF DECODE ${name} ${files[i]}: HF's decode of our ids differs from the text`); }
  }
  failures += bad;
  log(`${name}: decode(encode(x)) == x and HF decode agrees on ${files.length * 2 - bad}/${files.length * 2}`);
}
const writeJson = (name, obj) => { const p = path.join(work, name); fs.writeFileSync(p, JSON.stringify(obj)); return p; };

(async () => {
  log(`${real.length} real files, ${tricky.length} generated files`);
  // 1. our trainer, HF loads it
  const oursJson = path.join(work, 'ours.json');
  const trainFiles = real.filter((_, i) => i % 2 === 0).concat(tricky);
  execFileSync(sc, ['tokenizer', 'train', '--vocab-size', '3000', '--min-frequency', '2', '--ext', '*', '-q', '--out', oursJson,
    ...trainFiles], { stdio: ['ignore', 'inherit', 'inherit'] });
  const hfOurs = await compare('smallcoder-trained', oursJson, real.concat(tricky));
  const want = { '<|endoftext|>': 0, '<fim_prefix>': 1, '<fim_middle>': 2, '<fim_suffix>': 3, '<fim_pad>': 4, '<file_sep>': 5 };
  for (const [t, id] of Object.entries(want)) {
    checks++;
    if (hfOurs.tokenToId(t) !== id) { failures++; console.log(`HF sees ${t} as id ${hfOurs.tokenToId(t)}, expected ${id}`); }
  }
  checks++;
  if (hfOurs.getVocabSize(true) !== 3000) { failures++; console.log(`HF vocab size ${hfOurs.getVocabSize(true)}, expected 3000`); }
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

  const secs = (Date.now() - t0) / 1000;
  console.log(`${checks - failures} passed, ${failures} failed (${secs.toFixed(1)} s)`);
  process.exit(failures ? 1 : 0);
})().catch((e) => { console.log('ERROR', e.stack || e); process.exit(1); });
