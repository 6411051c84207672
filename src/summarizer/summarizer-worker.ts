/**
 * The worker thread behind `WorkerSummarizer`: runs the extractive summarizer, whose sentence
 * matching and token counting would otherwise hold the service's event loop for milliseconds per
 * job. It counts tokens with its own counter for the same model, so its counts equal the caller's.
 */
import { setPriority } from "node:os";
import { parentPort, workerData } from "node:worker_threads";
import { adoptVocabulary, type SharedVocabulary, TokenCounter } from "../tokens/index.js";
import type { StoredMessage } from "../types.js";
import { ExtractiveSummarizer, type ExtractiveSummarizerOptions } from "./extractive-summarizer.js";

export interface WorkerInit {
  model: string;
  /** This thread's nice value (Linux). */
  nice: number;
  extractive: ExtractiveSummarizerOptions;
  /** The model's rank table, as the service's thread loaded it: read in place, not loaded again. */
  vocabulary: SharedVocabulary;
}

export interface WorkerRequest {
  id: number;
  previousSummary: string | null;
  messages: readonly StoredMessage[];
  maxSummaryTokens: number;
}

export type WorkerReply =
  | { id: number; ok: true; text: string; inputTokens: number; outputTokens: number; merged: boolean }
  | { id: number; ok: false; message: string };

const init = workerData as WorkerInit;
// On Linux a nice value belongs to a thread, and pid 0 is the calling one; elsewhere it would
// lower the whole process.
if (process.platform === "linux") setPriority(0, init.nice);
adoptVocabulary(init.vocabulary);
const counter = new TokenCounter({ model: init.model, cacheSize: 1000 });
const summarizer = new ExtractiveSummarizer(init.extractive);
const countTokens = (text: string) => counter.countTokens(text);

if (!parentPort) throw new Error("summarizer-worker.js runs as a worker thread (see WorkerSummarizer)");
const port = parentPort;
port.on("message", (request: WorkerRequest) => {
  summarizer
    .summarize({
      previousSummary: request.previousSummary,
      messages: request.messages,
      maxSummaryTokens: request.maxSummaryTokens,
      countTokens,
    })
    .then(
      (result): WorkerReply => ({
        id: request.id,
        ok: true,
        text: result.text,
        inputTokens: result.inputTokens,
        outputTokens: result.outputTokens,
        merged: result.merged,
      }),
      (error: unknown): WorkerReply => ({ id: request.id, ok: false, message: String(error) }),
    )
    .then((reply) => port.postMessage(reply));
});
