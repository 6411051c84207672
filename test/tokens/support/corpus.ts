/**
 * A deterministic corpus for exactness tests: the same seed always yields the same strings, so a
 * failure is reproducible by its index.
 */

/** Small seeded PRNG (xorshift32 with a multiplicative output step). */
export class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0 || 0x9e3779b9;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let x = this.#state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#state = x >>> 0;
    return (Math.imul(this.#state, 0x9e3779b1) >>> 0) / 2 ** 32;
  }

  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }
}

const WORDS: Readonly<Record<string, readonly string[]>> = {
  english: [
    "the",
    "memory",
    "manager",
    "keeps",
    "recent",
    "messages",
    "and",
    "summaries",
    "laptop",
    "budget",
    "don't",
    "it's",
    "we're",
    "they'll",
    "I'm",
    "you've",
    "she'd",
    "THE",
    "Token",
    "counting",
    "exact",
    "OpenAI",
  ],
  german: [
    "Grüße",
    "aus",
    "Zürich",
    "Straße",
    "Äpfel",
    "öffnen",
    "Übermaß",
    "größer",
    "Fußgänger",
    "schön",
    "Mädchen",
    "heißt",
    "Weißwurst",
  ],
  french: [
    "élève",
    "garçon",
    "être",
    "à",
    "côté",
    "où",
    "naïve",
    "cœur",
    "Noël",
    "l'été",
    "qu'il",
    "déjà",
    "français",
    "ÇA",
  ],
  russian: [
    "Привет",
    "мир",
    "память",
    "сообщение",
    "ЖУРНАЛ",
    "ёлка",
    "съешь",
    "ещё",
    "этих",
    "мягких",
    "французских",
    "булок",
  ],
  arabic: ["مرحبا", "بالعالم", "الذاكرة", "رسالة", "كتاب", "السلام", "عليكم", "ٱلْحَمْدُ", "٣٤٥"],
  hindi: ["नमस्ते", "दुनिया", "स्मृति", "संदेश", "क्षत्रिय", "हिन्दी", "॥", "१२३", "ज़िंदगी"],
  japanese: [
    "こんにちは",
    "世界",
    "メモリ",
    "メッセージ",
    "東京",
    "ありがとう",
    "ｶﾀｶﾅ",
    "。",
    "、",
    "「引用」",
  ],
  chinese: ["你好", "世界", "记忆", "管理器", "消息", "摘要", "中文", "測試", "，", "！"],
  korean: ["안녕하세요", "세계", "메모리", "메시지", "한국어", "ㄱㄴㄷ", "각"],
};

const CODE_SNIPPETS = [
  "function {id}(a, b) {\n  return a + b;\n}\n",
  "const {id} = await redis.eval(script, { keys: [key], arguments: [String(seq)] });\n",
  "def {id}(self, x: int) -> int:\n\treturn x ** 2  # square\n",
  "SELECT {id}, count(*) FROM messages WHERE session_id = $1 GROUP BY 1;\r\n",
  "if (x !== null && y >= 10) { {id}++; } else { {id}--; }\n",
  "    for (let i = 0; i < n; i++) {\n        sum += arr[i] * 0.5e-3;\n    }\n",
  '#include <stdio.h>\nint main(void) { printf("%d\\n", {id}); }\n',
  "export type {id} = Readonly<Record<string, number[]>>;\n",
  "// TODO(alice): handle the {id} case -> see https://example.com/a/b?c=1&d=2\n",
  '<div class="{id}">&nbsp;<span>{{ value }}</span></div>\n',
];

const EMOJI = ["🙂", "👍🏽", "👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇨🇭", "❤️", "🧑🏿‍🚀", "✈︎", "1️⃣", "🫠", "👁️‍🗨️"];
const SPECIAL_TOKENS = [
  "<|endoftext|>",
  "<|im_start|>",
  "<|im_end|>",
  "<|im_sep|>",
  "<|fim_prefix|>",
  "<|fim_middle|>",
  "<|fim_suffix|>",
  "<|endofprompt|>",
  "<|start|>",
  "<|message|>",
  "<|end|>",
];
const WHITESPACE = [
  " ",
  "  ",
  "\t",
  "\n",
  "\r\n",
  "\r",
  "\u00a0",
  "\u3000",
  "\u2028",
  "\u0085",
  "\u000b",
  "\u000c",
  "\u2009",
  "\u202f",
];
const ODD_CHARS = [
  "\ufeff",
  "\u0085",
  "\u00a0",
  "\u200b",
  "\u200d",
  "\u00ad",
  "\u0301",
  "\u20dd",
  "\ufffd",
  "ſ",
  "ǅ",
  "ª",
  "Ⅻ",
  "²",
  "½",
  "\u{1d400}",
  "\u{10400}",
  "\u{323b0}",
  "\u{16ea0}",
  "\u{11db0}",
  "\u0000",
  "\u001b",
];
const CONTRACTION_CASES = [
  "'s",
  "'S",
  "'ſ",
  "'t",
  "'T",
  "'re",
  "'RE",
  "'Re",
  "'ve",
  "'m",
  "'ll",
  "'LL",
  "'d",
  "'D",
  "’s",
  "''s",
];

function word(random: Random, language: string): string {
  const list = WORDS[language]!;
  const base = random.pick(list);
  if (random.chance(0.1)) return base.toUpperCase();
  if (random.chance(0.1)) return base.charAt(0).toUpperCase() + base.slice(1);
  return base;
}

function prose(random: Random): string {
  const language = random.pick(Object.keys(WORDS));
  const separator = language === "japanese" || language === "chinese" ? "" : " ";
  const parts: string[] = [];
  for (let i = random.int(1, 25); i > 0; i--) {
    parts.push(word(random, language));
    if (random.chance(0.08)) parts.push(random.pick([",", ".", "!", "?", ";", ":", "…", " -", "—"]));
    if (random.chance(0.05)) parts.push(String(random.int(0, 1_000_000)));
    if (random.chance(0.04)) parts.push(random.pick(CONTRACTION_CASES));
  }
  return parts.join(separator);
}

function identifier(random: Random): string {
  const pieces = ["user", "Id", "token", "count", "_", "get", "Memory", "buffer", "x", "2", "HTTP", "json"];
  let name = random.pick(["a", "b", "my", "the", "_"]);
  for (let i = random.int(0, 4); i > 0; i--) name += random.pick(pieces);
  return name;
}

function code(random: Random): string {
  let text = "";
  for (let i = random.int(1, 4); i > 0; i--) {
    const indent = random.pick(["", "  ", "    ", "\t", "\t\t", "        "]);
    text += indent + random.pick(CODE_SNIPPETS).replaceAll("{id}", identifier(random));
  }
  return text;
}

function jsonValue(random: Random, depth: number): unknown {
  const kind = random.int(0, depth > 2 ? 3 : 5);
  if (kind === 0) return random.int(-1e6, 1e6) / random.pick([1, 10, 1000]);
  if (kind === 1) return prose(random).slice(0, random.int(0, 40));
  if (kind === 2) return random.chance(0.5);
  if (kind === 3) return null;
  if (kind === 4) return Array.from({ length: random.int(0, 4) }, () => jsonValue(random, depth + 1));
  const object: Record<string, unknown> = {};
  for (let i = random.int(0, 4); i > 0; i--) object[identifier(random)] = jsonValue(random, depth + 1);
  return object;
}

function json(random: Random): string {
  const value = jsonValue(random, 0);
  return JSON.stringify(value, null, random.pick([undefined, 2, "\t"])) ?? "null";
}

function emoji(random: Random): string {
  let text = "";
  for (let i = random.int(1, 12); i > 0; i--) {
    text += random.pick(EMOJI);
    if (random.chance(0.3)) text += random.pick([" ", "", "\u200d", "!", "a"]);
  }
  return text;
}

function cjk(random: Random): string {
  let text = "";
  const length = random.chance(0.2) ? random.int(60, 1500) : random.int(1, 60);
  for (let i = 0; i < length; i++) {
    const roll = random.next();
    if (roll < 0.55) text += String.fromCodePoint(random.int(0x4e00, 0x9fff));
    else if (roll < 0.7) text += String.fromCodePoint(random.int(0x3041, 0x30ff));
    else if (roll < 0.8) text += String.fromCodePoint(random.int(0xac00, 0xd7a3));
    else if (roll < 0.85) text += String.fromCodePoint(random.int(0x20000, 0x2a6df));
    else if (roll < 0.9) text += random.pick(["。", "、", "！", "？", "（", "）", "・", "ー"]);
    else text += random.pick(["\u{323b0}", "\u{31350}", "\u3000", " ", "\n"]);
  }
  return text;
}

function whitespaceRun(random: Random): string {
  let text = random.chance(0.5) ? "x" : "";
  for (let i = random.int(1, 80); i > 0; i--) text += random.pick(WHITESPACE);
  if (random.chance(0.6)) text += random.pick(["y", "Z", "1", "!", "é", "中", "\ufeff"]);
  return text;
}

function loneSurrogates(random: Random): string {
  let text = "";
  for (let i = random.int(1, 8); i > 0; i--) {
    text += random.pick(["a", " ", "中", "🙂", "'s", "1"]);
    text += String.fromCharCode(random.chance(0.5) ? random.int(0xd800, 0xdbff) : random.int(0xdc00, 0xdfff));
  }
  return text;
}

/** Inserts U+FEFF (the BOM) at the start, end, and random places, between and inside words. */
function byteOrderMarks(random: Random): string {
  const base = random.pick([prose, code, json, whitespaceRun])(random);
  let text = random.chance(0.5) ? "\ufeff" : "";
  for (const char of base) {
    text += char;
    if (random.chance(0.08)) text += "\ufeff".repeat(random.int(1, 3));
  }
  if (random.chance(0.5)) text += "\ufeff";
  return text;
}

function oddCharacters(random: Random): string {
  let text = "";
  for (let i = random.int(1, 20); i > 0; i--) {
    text += random.pick(ODD_CHARS);
    if (random.chance(0.5)) text += random.pick(["a", "A", " ", "1", "'s", "\n", "."]);
  }
  return text;
}

function specialTokens(random: Random): string {
  let text = "";
  for (let i = random.int(1, 4); i > 0; i--) {
    text += random.pick(SPECIAL_TOKENS);
    if (random.chance(0.5)) text += random.pick([" ", "\n", "hello", "", "<|", "|>"]);
  }
  return text;
}

function randomCodePoints(random: Random): string {
  let text = "";
  for (let i = random.int(1, 30); i > 0; i--) {
    const block = random.pick([
      [0x20, 0x7e],
      [0xa0, 0x24f],
      [0x300, 0x36f],
      [0x370, 0x52f],
      [0x590, 0x6ff],
      [0x900, 0xdff],
      [0x1e00, 0x1fff],
      [0x2000, 0x2bff],
      [0xa640, 0xa7ff],
      [0xff00, 0xffef],
      [0x10000, 0x1ffff],
      [0x1f300, 0x1faff],
    ] as const);
    text += String.fromCodePoint(random.int(block[0], block[1]));
  }
  return text;
}

/** One long piece: exercises the O(n log n) merge (pieces above 96 bytes). */
function longPiece(random: Random): string {
  const alphabet = random.pick([
    "abcdefghijklmnopqrstuvwxyz",
    "qxzjvkw",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabc",
    "!@#$%^&*()_+-=[]{};:,.<>",
    "абвгдежзийклмнопрстуфхцчшщъыьэюя",
  ]);
  const chars = [...alphabet];
  let text = random.chance(0.3) ? " " : "";
  for (let i = random.int(40, 600); i > 0; i--) text += random.pick(chars);
  return text;
}

function digits(random: Random): string {
  let text = "";
  for (let i = random.int(1, 40); i > 0; i--)
    text += random.pick(["0", "1", "7", "9", "٣", "१", "½", ",", ".", " "]);
  return text;
}

const GENERATORS = [
  prose,
  prose,
  prose,
  code,
  json,
  emoji,
  cjk,
  whitespaceRun,
  loneSurrogates,
  byteOrderMarks,
  byteOrderMarks,
  oddCharacters,
  specialTokens,
  randomCodePoints,
  longPiece,
  digits,
];

/** `size` strings, each one to four fragments from the generators above, glued together. */
export function generateCorpus(seed: number, size: number): string[] {
  const random = new Random(seed);
  const corpus: string[] = [];
  for (let i = 0; i < size; i++) {
    let text = "";
    for (let fragments = random.int(1, 4); fragments > 0; fragments--) {
      text += random.pick(GENERATORS)(random);
      if (random.chance(0.3)) text += random.pick(WHITESPACE);
    }
    corpus.push(text);
  }
  return corpus;
}
