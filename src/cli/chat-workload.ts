/**
 * The chat workload the benchmarks replay (`swisper-memory bench`, `npm run bench`, `bench:http`):
 * 50-ish sessions of turns with a user message of about 40 tokens and a reply of about 220, some
 * of them German, Japanese or with code, plus the percentile arithmetic they report with.
 */
import type { ChatMessage } from "../types.js";

/** Deterministic pseudo-random numbers (mulberry32), so that every run replays the same chat. */
export function seededRandom(initial: number): () => number {
  let state = initial >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ENGLISH =
  "the laptop should be light enough to carry every day and the battery must last a full day of lectures " +
  "I would prefer a good keyboard and a matte screen because I write a lot and the price should stay under budget " +
  "the ThinkPad X1 Carbon weighs about one kilogram and costs around 1399 CHF while the Dell XPS 13 is slightly cheaper";
const GERMAN =
  "Ich suche ein leichtes Notebook für das Studium, höchstens 1500 Franken, mit guter Tastatur und langer Akkulaufzeit";
const JAPANESE = "大学の授業で使うノートパソコンを探しています。軽くてバッテリーが長持ちするものが良いです。";
const CODE =
  "```python\ndef total(prices: list[float]) -> float:\n    return round(sum(p * 1.077 for p in prices), 2)\n```";

function words(random: () => number, source: string, count: number): string {
  const pool = source.split(" ");
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(pool[Math.floor(random() * pool.length)] ?? "");
  return out.join(" ");
}

/** One chat turn: a user message of ~40 tokens and an assistant reply of ~220. */
export function chatTurn(random: () => number, turn: number): [ChatMessage, ChatMessage] {
  const flavour = random();
  const user =
    flavour < 0.1 ? GERMAN : flavour < 0.15 ? JAPANESE : `${words(random, ENGLISH, 30)}? (turn ${turn})`;
  let assistant = words(random, ENGLISH, 170);
  if (random() < 0.15) assistant += `\n${CODE}`;
  return [
    { role: "user", content: user },
    { role: "assistant", content: assistant },
  ];
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)] ?? Number.NaN;
}

export function summarize(samples: number[]): { p50: number; p95: number; p99: number; n: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    n: sorted.length,
  };
}

export const ms = (value: number) => value.toFixed(3);
