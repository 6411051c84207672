/**
 * Summarizer benchmark: `npm run bench:summarizer`.
 *
 * The extractive summarizer's cost per fold, as the service pays it (on the summarizer worker):
 * 40 sessions of the chat workload, each folded whenever ~1,500 new tokens have arrived (what the
 * default config folds: a 3,000-token trigger keeping 1,500 recent), into a rolling summary of at
 * most 500 tokens counted for gpt-4o. The first session's folds warm the code up and are not
 * timed. Prints p50/p95/mean milliseconds per fold and the folds per second one core sustains.
 */
import { ExtractiveSummarizer } from "../src/summarizer/extractive-summarizer.js";
import { TokenCounter } from "../src/tokens/index.js";
import type { StoredMessage } from "../src/types.js";
import { chatTurn, ms, seeded, summarize } from "./workload.js";

const SESSIONS = 40;
const TURNS = 60;
const FOLD_TOKENS = 1500;
const MAX_SUMMARY_TOKENS = 500;

const counter = new TokenCounter({ model: "gpt-4o" });
const summarizer = new ExtractiveSummarizer();
const countTokens = (text: string) => counter.countTokens(text);
const durations: number[] = [];
let seq = 0;
for (let session = 0; session <= SESSIONS; session++) {
  const random = seeded(session + 1);
  let summary: string | null = null;
  let pending: StoredMessage[] = [];
  let pendingTokens = 0;
  for (let turn = 0; turn < TURNS; turn++) {
    for (const message of chatTurn(random, turn)) {
      const tokens = counter.countMessageTokens(message);
      pending.push({ ...message, seq: ++seq, tokens, timestamp: 0 });
      pendingTokens += tokens;
    }
    if (pendingTokens < FOLD_TOKENS) continue;
    const started = performance.now();
    const result = await summarizer.summarize({
      previousSummary: summary,
      messages: pending,
      maxSummaryTokens: MAX_SUMMARY_TOKENS,
      countTokens,
    });
    if (session > 0) durations.push(performance.now() - started);
    summary = result.text;
    pending = [];
    pendingTokens = 0;
  }
}
const { p50, p95, n } = summarize(durations);
const mean = durations.reduce((sum, value) => sum + value, 0) / n;
console.log(
  `Extractive summarizer, chat workload, ${FOLD_TOKENS}-token folds into a ${MAX_SUMMARY_TOKENS}-token summary (gpt-4o); Node ${process.version}`,
);
console.table([
  {
    folds: n,
    "p50 ms": ms(p50),
    "p95 ms": ms(p95),
    "mean ms": ms(mean),
    "folds/s on one core": Math.round(1000 / mean),
  },
]);
