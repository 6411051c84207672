/**
 * Public data shapes. Method names are camelCase; data objects keep the specification's snake_case field
 * names so that the library's objects and the HTTP API's JSON are the same shapes.
 */

export type MessageRole = "system" | "user" | "assistant" | "tool";

/** One part of an array-form message content, as the OpenAI chat API accepts it. */
export type ContentPart =
  | { type: "text"; text: string }
  | { type: "image_url"; image_url: { url: string; detail?: "auto" | "low" | "high" } }
  | { type: string; [field: string]: unknown };

/** A tool call made by the assistant, as the OpenAI chat API returns it. */
export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** A chat message as a caller hands it in. */
export interface ChatMessage {
  role: MessageRole;
  /** Text, an array of parts, or null when the assistant only makes tool calls. */
  content: string | ContentPart[] | null;
  name?: string;
  tool_call_id?: string;
  tool_calls?: ToolCall[];
  /** Idempotency key: a message sent twice with the same id is stored once. */
  id?: string;
  /** Unix time in seconds (the specification's `int(time.time())`); set on write when absent. */
  timestamp?: number;
  metadata?: Record<string, unknown>;
}

/** A message as memory holds it: the caller's message plus what the write path assigned. */
export interface StoredMessage extends ChatMessage {
  /** Position in the session's transcript, 1-based, assigned by the system of record. */
  seq: number;
  /** Exact token count of this message with chat framing, for the session's model. */
  tokens: number;
  timestamp: number;
  /** Present and true when `tokens` is a character estimate because exact counting failed. */
  tokens_estimated?: boolean;
}

/** A token count with a flag for the fallback estimate. */
export interface TokenCount {
  tokens: number;
  /** True when exact counting failed and `tokens` is `ceil(chars / 4)`. */
  estimated: boolean;
}

/** One committed summary version. Versions cover `[1..last_seq]` together, with no gap or overlap. */
export interface SummaryRecord {
  /** 1 for the first summary of the session, then 2, 3, ... */
  version: number;
  summary_text: string;
  /** First transcript seq this version folded in (the previous version's last_seq + 1). */
  first_seq: number;
  /** Last transcript seq this version covers: the whole summary stands for `[1..last_seq]`. */
  last_seq: number;
  /** Exact token count of `summary_text` for the session's model. */
  tokens: number;
  /** ISO 8601 time of the commit. */
  created_at: string;
  metadata: Record<string, unknown>;
}

/**
 * The orchestrator's session state (spec: `SwisperContext`), saved as a snapshot that loads back
 * equal. It is application state: it never enters the LLM buffer. Extra fields are kept.
 */
export interface SwisperContext {
  session_id: string;
  user_id?: string | null;
  current_state?: string | null;
  product_query?: string | null;
  preferences?: Record<string, unknown>;
  constraints?: Record<string, unknown>;
  selected_product?: Record<string, unknown> | null;
  search_results?: unknown[];
  conversation_history?: unknown[];
  metadata?: Record<string, unknown>;
  [extra: string]: unknown;
}
