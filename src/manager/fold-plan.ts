// biome-ignore-all lint/style/noNonNullAssertion: reads of messages at indexes the loop bounds keep in range
import type { StoredMessage } from "../types.js";
import type { SessionConfig } from "./session-config.js";

/** Why a job runs: the buffer reached its trigger, or the session went idle and is finalized. */
export type FoldMode = "trigger" | "final";

/**
 * Decides which of the oldest unsummarized messages a job folds into the summary.
 *
 * - `final`: all of them.
 * - the window was cut short (more unsummarized messages than one job reads): all of the window.
 * - the buffer (the newest messages within the caps) reached `summary_trigger_tokens`: all but the
 *   newest `keep_recent_tokens`, which stay verbatim.
 * - otherwise only what the caps already pushed out of the buffer, if anything.
 *
 * A tool call is never split from its results: a boundary that would leave tool results without
 * their calling message moves past them (they are folded together).
 *
 * Returns how many messages of `window` (oldest first) to fold; 0 means nothing to do.
 */
export function planFold(
  window: readonly StoredMessage[],
  windowIsComplete: boolean,
  config: SessionConfig,
  mode: FoldMode,
): number {
  if (window.length === 0) return 0;
  if (mode === "final") return window.length;
  if (!windowIsComplete) return keepToolCallsTogether(window, window.length, true);

  const bufferStart = cappedSuffixStart(window, config.max_buffer_messages, config.max_buffer_tokens);
  const bufferTokens = sumTokens(window, bufferStart);
  let end: number;
  if (bufferTokens >= config.summary_trigger_tokens) {
    end = window.length;
    let kept = 0;
    while (end > 0 && kept + window[end - 1]!.tokens <= config.keep_recent_tokens) {
      kept += window[end - 1]!.tokens;
      end--;
    }
  } else {
    end = bufferStart;
  }
  return keepToolCallsTogether(window, end, false);
}

/** Start of the longest newest run within both caps (at least the newest message). */
export function cappedSuffixStart(
  messages: readonly StoredMessage[],
  maxMessages: number,
  maxTokens: number,
): number {
  let start = messages.length;
  let tokens = 0;
  while (start > 0) {
    const next = messages[start - 1]!.tokens;
    const count = messages.length - start + 1;
    if (count > maxMessages || (tokens + next > maxTokens && count > 1)) break;
    tokens += next;
    start--;
  }
  return start;
}

function sumTokens(messages: readonly StoredMessage[], from: number): number {
  let total = 0;
  for (let i = from; i < messages.length; i++) total += messages[i]!.tokens;
  return total;
}

function keepToolCallsTogether(window: readonly StoredMessage[], end: number, windowCut: boolean): number {
  let boundary = end;
  // Results right after the boundary belong to a call inside the fold: fold them too.
  while (boundary > 0 && boundary < window.length && window[boundary]!.role === "tool") boundary++;
  // At the end of a cut window the results may not have been read yet: leave the call for the
  // next job, unless it is the only message.
  if (windowCut && boundary === window.length && boundary > 1 && window[boundary - 1]!.tool_calls?.length) {
    boundary--;
  }
  return boundary;
}
