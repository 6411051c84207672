/**
 * Token counting benchmark: `npm run bench:tokens`.
 *
 * For o200k_base (gpt-4o) and cl100k_base (gpt-4): a ~40-token message, a ~4k-token text, a
 * 30-message batch cold (fresh counter, empty cache) and cached, and 256 KiB single-piece inputs
 * (one repeated character or short pattern, plus a non-repeating one for the exact merge). Each row
 * is warmed up, then timed; fast operations are timed in groups and divided, so p50/p95 are per call.
 * Counters in the rows marked "cache off" have the content cache disabled, so every call counts.
 * For reference, tiktoken (WASM) and raw gpt-tokenizer on the same 4k text.
 */
import { encode as gptTokenizerCl100k } from "gpt-tokenizer/encoding/cl100k_base";
import { encode as gptTokenizerO200k } from "gpt-tokenizer/encoding/o200k_base";
import { get_encoding } from "tiktoken";
import { getEncoder, TokenCounter } from "../src/tokens/index.js";
import type { ChatMessage } from "../src/types.js";

interface Timing {
  p50: number;
  p95: number;
  samples: number;
}

/**
 * Milliseconds per call of `run`: `samples` samples after `warmup` calls, each sample the mean of
 * `group` calls, stopping early once `budgetMs` is spent (at least 5 samples).
 */
function time(run: () => unknown, { warmup = 20, samples = 200, group = 1, budgetMs = 2500 } = {}): Timing {
  for (let i = 0; i < warmup; i++) run();
  const durations: number[] = [];
  const deadline = performance.now() + budgetMs;
  while (durations.length < samples && (durations.length < 5 || performance.now() < deadline)) {
    const start = performance.now();
    for (let i = 0; i < group; i++) run();
    durations.push((performance.now() - start) / group);
  }
  durations.sort((a, b) => a - b);
  const at = (quantile: number): number =>
    durations[Math.min(durations.length - 1, Math.floor(quantile * durations.length))]!;
  return { p50: at(0.5), p95: at(0.95), samples: durations.length };
}

function seededText(seed: number, minChars: number): string {
  const words =
    "the memory manager keeps recent messages in a buffer and folds older history into summaries while the token counter stays exact for every model".split(
      " ",
    );
  const code = [
    "const total = messages.reduce((sum, message) => sum + message.tokens, 0);\n",
    "if (buffer.tokens >= config.summary_trigger_tokens) {\n  await queue.add(sessionId);\n}\n",
    "export async function getContext(sessionId: string): Promise<Context> {\n",
  ];
  let state = seed;
  const next = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  let text = "";
  while (text.length < minChars) {
    const roll = next();
    if (roll < 0.08) text += `\n${code[Math.floor(next() * code.length)]}`;
    else if (roll < 0.12) text += ". ";
    else if (roll < 0.14) text += `${Math.floor(next() * 10_000)} `;
    else text += `${words[Math.floor(next() * words.length)]} `;
  }
  return text;
}

const KIB = 1024;
const rows: Array<Record<string, string | number>> = [];
const format = (ms: number, unit: "µs" | "ms"): string =>
  unit === "µs" ? (ms * 1000).toFixed(2) : ms.toFixed(3);
function record(encoding: string, label: string, unit: "µs" | "ms", timing: Timing, note = ""): void {
  rows.push({
    encoding,
    case: label,
    unit,
    p50: format(timing.p50, unit),
    p95: format(timing.p95, unit),
    samples: timing.samples,
    note,
  });
}

const ENCODINGS = [
  { model: "gpt-4o", encoding: "o200k_base" },
  { model: "gpt-4", encoding: "cl100k_base" },
] as const;
const text = seededText(2, 19_000);
const benchStart = performance.now();
const loadMs = new Map<string, number>();
for (const { encoding } of ENCODINGS) {
  const start = performance.now();
  getEncoder(encoding).count("warm up");
  loadMs.set(encoding, performance.now() - start);
}

// Everyday sizes first, before the large inputs below fill the heap.
for (const { model, encoding } of ENCODINGS) {
  const exact = new TokenCounter({ model, cacheSize: 0 });
  const message: ChatMessage = { role: "user", content: seededText(1, 150).slice(0, 170) };
  const messageTokens = exact.countMessageTokens(message);
  record(
    encoding,
    `message (${messageTokens} tokens, cache off)`,
    "µs",
    time(() => exact.countMessageTokens(message), { group: 200 }),
  );
  const textTokens = exact.countTokens(text);
  record(
    encoding,
    `text (${textTokens} tokens, cache off)`,
    "ms",
    time(() => exact.countTokens(text), { samples: 400 }),
  );

  const batch: ChatMessage[] = Array.from({ length: 30 }, (_, index) => ({
    role: index % 2 === 0 ? "user" : "assistant",
    content: seededText(100 + index, 150).slice(0, 170),
  }));
  record(
    encoding,
    "30-message batch, cold (new counter)",
    "ms",
    time(() => new TokenCounter({ model }).countBatchTokens(batch), { samples: 300 }),
  );
  const cached = new TokenCounter({ model });
  cached.countBatchTokens(batch);
  record(
    encoding,
    "30-message batch, cached",
    "ms",
    time(() => cached.countBatchTokens(batch), { group: 200 }),
  );
}

for (const { model, encoding } of ENCODINGS) {
  const exact = new TokenCounter({ model, cacheSize: 0 });
  const reference = get_encoding(encoding);
  const tiktoken = time(() => reference.encode_ordinary(text).length, { samples: 100 });
  reference.free();
  const gptTokenizer = encoding === "o200k_base" ? gptTokenizerO200k : gptTokenizerCl100k;
  const raw = time(() => gptTokenizer(text, { disallowedSpecial: new Set() }).length, { samples: 300 });
  const ours = time(() => exact.countTokens(text), { samples: 300 });
  const ratio = (other: Timing): string =>
    `${(other.p50 / ours.p50).toFixed(1)}x our p50 (${format(ours.p50, "ms")})`;
  record(encoding, "reference: tiktoken WASM, same text", "ms", tiktoken, ratio(tiktoken));
  record(encoding, "reference: raw gpt-tokenizer, same text", "ms", raw, ratio(raw));
  const load = loadMs.get(encoding)!;
  record(encoding, "first use: rank table + Unicode tables", "ms", { p50: load, p95: load, samples: 1 });
}

const hostile: Array<[string, string]> = [
  ["' ' x 262144 chars", " ".repeat(256 * KIB)],
  ["'x' x 262144 chars", "x".repeat(256 * KIB)],
  ["'中' x 262144 chars", "中".repeat(256 * KIB)],
  ["'Ж' x 262144 chars", "Ж".repeat(256 * KIB)],
  ["'ab' x 131072 (262144 chars)", "ab".repeat(128 * KIB)],
  ["'<>' x 131072 (262144 chars)", "<>".repeat(128 * KIB)],
  ["'🙂' x 131072 (262144 chars)", "🙂".repeat(128 * KIB)],
];
let cjk = "";
for (let i = 0; cjk.length < 86 * KIB; i++) cjk += String.fromCodePoint(0x4e00 + ((i * 7919) % 20_000));
for (const { model, encoding } of ENCODINGS) {
  for (const [label, input] of hostile) {
    const fresh = new TokenCounter({ model, cacheSize: 0 });
    const firstStart = performance.now();
    fresh.countTokens(input);
    const firstMs = performance.now() - firstStart;
    record(
      encoding,
      `${label} (cache off)`,
      "ms",
      time(() => fresh.countTokens(input), { warmup: 3, samples: 30 }),
      `first call ${firstMs.toFixed(1)} ms`,
    );
  }
  const exact = new TokenCounter({ model, cacheSize: 0 });
  record(
    encoding,
    "258 KB non-repeating CJK, one piece (cache off)",
    "ms",
    time(() => exact.countTokens(cjk), { warmup: 1, samples: 5 }),
    "general O(n log n) merge",
  );
}

console.log(`Node ${process.version} (Unicode ${process.versions.unicode}), ${new Date().toISOString()}`);
console.table(rows);
console.log(`total ${((performance.now() - benchStart) / 1000).toFixed(1)} s`);
