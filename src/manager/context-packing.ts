// biome-ignore-all lint/style/noNonNullAssertion: reads of buffered messages at indexes the loop bounds keep in range
import type { z } from "zod";
import type { ModelMessageSchema } from "../schemas/message.js";
import type { ChatMessage, StoredMessage, SummaryRecord } from "../types.js";

/** An OpenAI chat message: what `getContext` hands a model. */
export type ModelMessage = z.infer<typeof ModelMessageSchema>;

/** Counts chat messages the way OpenAI bills them (the TokenCounter for the target model). */
export interface ChatTokenCounter {
  countMessageTokens(message: ModelMessage): number;
}

/** Text that introduces the summary to the model. */
export const SUMMARY_PREAMBLE = "Summary of the earlier conversation:\n";

/** Reply priming OpenAI adds to every request (see TokenCounter.countBatchTokens). */
const REPLY_PRIMING_TOKENS = 3;

export interface PackedContext {
  messages: ModelMessage[];
  /** Exact tokens of `messages` as one request: `countBatchTokens(messages)`. */
  tokens: number;
}

/**
 * Packs the summary (as a system message) and the newest buffered messages into `maxTokens`.
 * Messages are taken newest first without skipping any (the conversation stays contiguous); the
 * summary goes in when it fits. A tool result is never sent without the assistant message that
 * called it, which the chat API would reject.
 *
 * `storedTokens` says whether `StoredMessage.tokens` are for the target model, so that packing
 * for the session's own model does not count anything again.
 */
export function packContext(
  summary: SummaryRecord | null,
  buffered: readonly StoredMessage[],
  maxTokens: number,
  counter: ChatTokenCounter,
  storedTokens: boolean,
): PackedContext {
  let used = REPLY_PRIMING_TOKENS;
  let summaryMessage: ModelMessage | null = null;
  if (summary) {
    const candidate: ModelMessage = { role: "system", content: SUMMARY_PREAMBLE + summary.summary_text };
    const tokens = counter.countMessageTokens(candidate);
    if (used + tokens <= maxTokens) {
      summaryMessage = candidate;
      used += tokens;
    }
  }
  let start = buffered.length;
  while (start > 0) {
    const message = buffered[start - 1]!;
    const tokens = storedTokens ? message.tokens : counter.countMessageTokens(toModelMessage(message));
    if (used + tokens > maxTokens) break;
    used += tokens;
    start--;
  }
  // Drop leading tool results whose calling assistant message did not fit.
  while (start < buffered.length && buffered[start]!.role === "tool") {
    const message = buffered[start]!;
    used -= storedTokens ? message.tokens : counter.countMessageTokens(toModelMessage(message));
    start++;
  }
  const messages = buffered.slice(start).map(toModelMessage);
  if (summaryMessage) messages.unshift(summaryMessage);
  return { messages, tokens: messages.length === 0 ? 0 : used };
}

export function toModelMessage(message: ChatMessage): ModelMessage {
  const model: ModelMessage = { role: message.role, content: message.content };
  if (message.name !== undefined) model.name = message.name;
  if (message.tool_call_id !== undefined) model.tool_call_id = message.tool_call_id;
  if (message.tool_calls !== undefined) model.tool_calls = message.tool_calls;
  return model;
}
