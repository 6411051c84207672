import { ValidationError } from "../errors.js";
import type { StoredMessage } from "../types.js";
import { SummarizerAbortedError } from "./errors.js";

export type SummarizerName = "extractive" | "openai";

export interface SummarizeRequest {
  /** The current rolling summary, or null before the first one. */
  previousSummary: string | null;
  /** The messages to fold in, oldest first. */
  messages: readonly StoredMessage[];
  /** Budget of the returned summary in tokens (counted with `countTokens`). */
  maxSummaryTokens: number;
  /** Exact token counter for the session's model. */
  countTokens(text: string): number;
  /** Aborts the call (job cancelled / shutdown). */
  signal?: AbortSignal;
}

export interface SummarizeResult {
  /** The new rolling summary: replaces the previous one, non-empty, within `maxSummaryTokens`. */
  text: string;
  summarizer: SummarizerName;
  /** Model that wrote the summary (openai), null for extractive. */
  model: string | null;
  /** Tokens sent to the model (openai: `usage.prompt_tokens` when returned, else counted); extractive: the previous summary's tokens plus the messages' stored counts. */
  inputTokens: number;
  /** Tokens of `text`, counted with the request's `countTokens`. */
  outputTokens: number;
  /** True when the previous summary plus the new material exceeded the budget and was compressed (the specification's "merge"). */
  merged: boolean;
  /** Wall time of the call in milliseconds. */
  latencyMs: number;
}

export interface Summarizer {
  readonly name: SummarizerName;
  /** Folds `messages` into `previousSummary`. Failures are `SummarizerError`s (see errors.ts). */
  summarize(request: SummarizeRequest): Promise<SummarizeResult>;
}

/** Rejects requests no summarizer can satisfy, before any work or network call. */
export function validateSummarizeRequest(request: SummarizeRequest): void {
  if (!Number.isSafeInteger(request.maxSummaryTokens) || request.maxSummaryTokens < 1) {
    throw new ValidationError("maxSummaryTokens", "must be a positive integer");
  }
  if (request.messages.length === 0 && !request.previousSummary?.trim()) {
    throw new ValidationError("messages", "nothing to summarize: no messages and no previous summary");
  }
  throwIfAborted(request.signal);
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new SummarizerAbortedError({ cause: signal.reason });
}
