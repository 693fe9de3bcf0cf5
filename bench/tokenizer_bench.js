// tokenizer_bench.js NODE_MODULES TOKENIZER.json FILELIST ROUNDS — HF tokenizers' Node binding encoding the same
// files as `smallcoder tokenizer encode --stats`: one file at a time (single-threaded) and encodeBatch (its
// rayon pool, all cores). Prints one JSON line per mode: bytes, tokens, best wall and CPU seconds.
'use strict';
const fs = require('fs');
const path = require('path');
const [modules, tokPath, list, roundsArg] = process.argv.slice(2);
const tk = require(path.join(modules, 'tokenizers'));
const rounds = Number(roundsArg || 2);
const files = fs.readFileSync(list, 'utf8').split('\n').filter((l) => l);
const texts = files.map((f) => fs.readFileSync(f, 'utf8'));
const bytes = texts.reduce((a, s) => a + Buffer.byteLength(s), 0);
const tok = tk.Tokenizer.fromFile(tokPath);
const opts = { addSpecialTokens: false };
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };

async function time(run) {
  let wall = Infinity, cpus = Infinity, tokens = 0;
  for (let r = 0; r < rounds; r++) {
    const w0 = process.hrtime.bigint(), c0 = cpu();
    tokens = await run();
    wall = Math.min(wall, Number(process.hrtime.bigint() - w0) / 1e9);
    cpus = Math.min(cpus, cpu() - c0);
  }
  return { bytes, tokens, wall, cpu: cpus };
}

(async () => {
  const single = await time(async () => {
    let n = 0;
    for (const s of texts) n += (await tok.encode(s, null, opts)).getLength();
    return n;
  });
  console.log(JSON.stringify(Object.assign({ mode: 'single' }, single)));
  const batch = await time(async () => (await tok.encodeBatch(texts, opts)).reduce((a, e) => a + e.getLength(), 0));
  console.log(JSON.stringify(Object.assign({ mode: 'batch' }, batch)));
})();
