// common.js — what the HF compatibility tests share: the corpus (real Python/C files from this machine, and
// generated files holding the inputs where tokenizers disagree if anything is off) and the comparisons (our ids
// against HF's, decode(encode(x)) == x, HF's decode of our ids). Used by hf_compat.js and published.js.
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

function corpus(work) {
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
  return { real, tricky };
}

// counts checks and failures across the comparisons of one test run
function checker(sc, tk, work) {
  let failures = 0, checks = 0;
  const t0 = Date.now();
  const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
  // ---- helpers ----
  function ours(json, files, flags = []) {
    const out = execFileSync(sc, ['tokenizer', 'encode', ...flags, '-t', json, ...files], { maxBuffer: 1 << 30 }).toString();
    const lines = out.split('\n');
    lines.pop();
    if (lines.length !== files.length) throw new Error(`smallcoder printed ${lines.length} lines for ${files.length} files`);
    return lines.map((l) => (l.length ? l.split(' ').map(Number) : []));
  }
  // special: with the post_processor's tokens (HF add_special_tokens=True, `tokenizer encode --special`)
  async function compare(name, json, files, special = false) {
    const hf = tk.Tokenizer.fromFile(json);
    const mine = ours(json, files, special ? ['--special'] : []);
    let bad = 0, tokens = 0, bytes = 0;
    for (let i = 0; i < files.length; i++) {
      const text = fs.readFileSync(files[i], 'utf8');
      bytes += Buffer.byteLength(text);
      const ids = (await hf.encode(text, null, { addSpecialTokens: special })).getIds();
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
  // exact: decode(encode(x)) must be x (false where a normalizer changes the text, e.g. NFC); HF's decode of our
  // ids must equal ours either way
  async function roundtrip(name, json, files, exact = true) {
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
      if (exact && !back.equals(raw)) { bad++; console.log(`ROUNDTRIP ${name} ${files[i]}: decode(encode(x)) != x (${back.length} vs ${raw.length} bytes)`); }
      if (exact && hfText !== raw.toString('utf8')) { bad++; console.log(`HF DECODE ${name} ${files[i]}: HF's decode of our ids differs from the text`); }
      if (!exact && hfText !== back.toString('utf8')) { bad++; console.log(`DECODE ${name} ${files[i]}: our decode differs from HF's`); }
      if (!exact) checks--;
    }
    failures += bad;
    const n = files.length * (exact ? 2 : 1);
    log(`${name}: ${exact ? 'decode(encode(x)) == x and HF decode agrees' : 'our decode == HF decode'} on ${n - bad}/${n}`);
  }
  const writeJson = (name, obj) => { const p = path.join(work, name); fs.writeFileSync(p, JSON.stringify(obj)); return p; };
  const check = (ok, msg) => { checks++; if (!ok) { failures++; console.log(msg); } };
  const done = () => {
    const secs = (Date.now() - t0) / 1000;
    console.log(`${checks - failures} passed, ${failures} failed (${secs.toFixed(1)} s)`);
    process.exit(failures ? 1 : 0);
  };
  return { ours, compare, roundtrip, writeJson, log, check, done, fail: (n) => { failures += n; } };
}

module.exports = { corpus, checker };
