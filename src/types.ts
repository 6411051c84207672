/**
 * Public data shapes, inferred from the schemas in `src/schemas/` that the library validates with
 * and the HTTP API validates and documents with: one definition per concept. Method names are
 * camelCase; data objects keep the specification's snake_case field names so that the library's
 * objects and the HTTP API's JSON are the same shapes.
 */
import type { z } from "zod";
import type {
  ChatMessageSchema,
  ContentPartSchema,
  MessageRoleSchema,
  StoredMessageSchema,
  ToolCallSchema,
} from "./schemas/message.js";

export type { SummaryRecord } from "./schemas/summary.js";
export type { SwisperContext } from "./schemas/swisper-context.js";

export type MessageRole = z.infer<typeof MessageRoleSchema>;

/** One part of an array-form message content, as the OpenAI chat API accepts it. */
export type ContentPart = z.infer<typeof ContentPartSchema>;

/** A tool call made by the assistant, as the OpenAI chat API returns it. */
export type ToolCall = z.infer<typeof ToolCallSchema>;

/**
 * A chat message as a caller hands it in: `content` is text, parts, or null when the assistant
 * only makes tool calls; `id` is an idempotency key (a message sent twice with the same id is
 * stored once); `timestamp` is Unix time in seconds, set on write when absent.
 */
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

/**
 * A message as memory holds it: the caller's message plus what the write path assigned: `seq`
 * (its 1-based position in the transcript), `tokens` (exact, with chat framing, for the session's
 * model) and `tokens_estimated` (present and true when `tokens` is a character estimate).
 */
export type StoredMessage = z.infer<typeof StoredMessageSchema>;

/** A token count with a flag for the fallback estimate. */
export interface TokenCount {
  tokens: number;
  /** True when exact counting failed and `tokens` is `ceil(chars / 4)`. */
  estimated: boolean;
}
