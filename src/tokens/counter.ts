import { ValidationError } from "../errors.js";
import type { ChatMessage, TokenCount } from "../types.js";
import { contentHash } from "./content-hash.js";
import { getEncoder, type TokenEncoder } from "./encoder.js";
import { LruCache } from "./lru-cache.js";
import { encodingForModel } from "./models.js";
import type { EncodingName } from "./vocabulary.js";

/** Framing tokens per message: `<|start|>{role}<|message|>{content}<|end|>` around role and content. */
export const TOKENS_PER_MESSAGE = 3;
/** Extra token for a message that carries a `name`, on top of the name's own tokens. */
export const TOKENS_PER_NAME = 1;
/** Tokens that prime the assistant's reply (`<|start|>assistant<|message|>`), once per request. */
export const REPLY_PRIMING_TOKENS = 3;
/**
 * Tokens per tool call on top of its id, function name and arguments. OpenAI does not document tool
 * call rendering; 3 is what was measured for the older `function_call` field (hmarr/openai-chat-tokens).
 */
export const TOKENS_PER_TOOL_CALL = 3;
/**
 * An `image_url` part: OpenAI's documented base cost of one image for gpt-4o, gpt-4.1 and the
 * o-series, which is the whole cost at `detail: "low"`. Higher detail costs more per 512 px tile and
 * gpt-4o-mini charges more per image; the image itself is never fetched, so this is a lower bound.
 */
export const IMAGE_PART_TOKENS = 85;

const DEFAULT_MODEL = "gpt-4o";
const DEFAULT_CACHE_SIZE = 10_000;
/** Texts up to this many UTF-16 code units are their own cache key; longer ones are keyed by hash. */
const MAX_VERBATIM_KEY_LENGTH = 256;
const CHARS_PER_ESTIMATED_TOKEN = 4;
/** Roles get a small fixed table so that the content cache holds only content. */
const KNOWN_ROLES: ReadonlySet<string> = new Set([
  "system",
  "developer",
  "user",
  "assistant",
  "tool",
  "function",
]);

export interface TokenCounterOptions {
  /**
   * OpenAI model to count for; it selects the encoding (see `encodingForModel`). Case-insensitive;
   * fine-tuned names (`ft:gpt-4o-mini:org::id`) count as their base model.
   * @default "gpt-4o" (o200k_base)
   */
  model?: string;
  /**
   * Maximum number of distinct texts (message contents, names, JSON of contexts) whose token counts
   * are remembered; the least recently used is evicted first. Counted in entries: a text of up to 256
   * characters is its own key (at most 512 bytes), a longer text is keyed by a 53-bit hash, so the
   * cache stays under about cacheSize x 600 bytes. 0 disables caching.
   * @default 10000
   */
  cacheSize?: number;
  /**
   * Tokenizer to count with instead of the built-in exact encoder for the model's encoding. Meant for
   * tests and custom tokenizers; it must implement the model's encoding for counts to be exact.
   * @default the shared exact encoder of `encodingForModel(model)`
   */
  encoder?: TokenEncoder;
  /**
   * Called with the error whenever exact counting fails and a character estimate is returned
   * instead, for logging and metrics. Must not throw.
   * @default none
   */
  onEstimate?: (error: unknown) => void;
}

export interface CacheStats {
  /** Lookups answered from the cache since the counter was created. */
  hits: number;
  /** Lookups that had to count (including every lookup when the cache is disabled). */
  misses: number;
  /** Entries held now (at most `cacheSize`). */
  size: number;
  /** hits / (hits + misses); 0 before the first lookup. */
  hit_ratio: number;
}

/**
 * A SwisperContext, or anything shaped like it: `conversation_history` is counted as a batch of chat
 * messages, every other field (session_id, current_state, product_query, preferences, constraints,
 * selected_product, search_results, metadata, extra fields) as one compact JSON object.
 */
export interface SwisperContextLike {
  conversation_history?: readonly ChatMessage[];
  [field: string]: unknown;
}

/**
 * Exact OpenAI token counts for texts, chat messages, batches and contexts, with OpenAI's chat
 * framing, a content cache, and a `ceil(chars / 4)` estimate when exact counting fails.
 */
export class TokenCounter {
  /** The model this counter counts for, as given (default "gpt-4o"). */
  readonly model: string;
  /** The model's encoding. */
  readonly encoding: EncodingName;
  readonly #encoder: TokenEncoder;
  readonly #cache: LruCache<string | number, number>;
  readonly #roleTokens = new Map<string, number>();
  readonly #onEstimate: ((error: unknown) => void) | undefined;
  #hits = 0;
  #misses = 0;

  /** @throws ValidationError for an unknown model or an invalid cacheSize. */
  constructor(options: TokenCounterOptions = {}) {
    const { model = DEFAULT_MODEL, cacheSize = DEFAULT_CACHE_SIZE, encoder, onEstimate } = options;
    if (!Number.isSafeInteger(cacheSize) || cacheSize < 0) {
      throw new ValidationError("cacheSize", "must be a non-negative integer");
    }
    this.model = model;
    this.encoding = encodingForModel(model);
    this.#encoder = encoder ?? getEncoder(this.encoding);
    this.#cache = new LruCache(cacheSize);
    this.#onEstimate = onEstimate;
  }

  /** Tokens in `text` as ordinary text (`<|endoftext|>` is 7 tokens of text, never a special token). */
  countTokens(text: string): number {
    return this.measureText(text).tokens;
  }

  /** Like countTokens, saying whether the result is the fallback estimate. */
  measureText(text: string): TokenCount {
    try {
      return { tokens: this.#countText(requireString(text, "text")), estimated: false };
    } catch (error) {
      return this.#estimate(error, estimateChars(text));
    }
  }

  /**
   * Tokens one message costs in a chat request: 3 + role + content, plus name + 1 when `name` is
   * set, plus tool calls and `tool_call_id` (see src/tokens/README.md for what parts and tool calls
   * count).
   */
  countMessageTokens(message: ChatMessage): number {
    return this.measureMessage(message).tokens;
  }

  /** Like countMessageTokens, saying whether the result is the fallback estimate. */
  measureMessage(message: ChatMessage): TokenCount {
    try {
      return { tokens: this.#messageTokens(message), estimated: false };
    } catch (error) {
      return this.#estimate(error, messageChars(message));
    }
  }

  /** Tokens a request with these messages costs: the messages plus 3 reply-priming tokens; 0 for none. */
  countBatchTokens(messages: readonly ChatMessage[]): number {
    return this.measureBatch(messages).tokens;
  }

  /** Like countBatchTokens; `estimated` is true when any message was estimated. */
  measureBatch(messages: readonly ChatMessage[]): TokenCount {
    if (!Array.isArray(messages)) {
      return this.#estimate(new TypeError("messages must be an array"), estimateChars(messages));
    }
    if (messages.length === 0) return { tokens: 0, estimated: false };
    let tokens = REPLY_PRIMING_TOKENS;
    let estimated = false;
    for (const message of messages) {
      const count = this.measureMessage(message);
      tokens += count.tokens;
      estimated ||= count.estimated;
    }
    return { tokens, estimated };
  }

  /**
   * Whether the batch has reached the summarization threshold (`countBatchTokens >= threshold`).
   * @param threshold tokens; default 3000 (the `summary_trigger_tokens` default)
   * @throws ValidationError for a negative or non-finite threshold
   */
  shouldTriggerSummary(messages: readonly ChatMessage[], threshold = 3000): boolean {
    requireTokenLimit(threshold, "threshold");
    return this.countBatchTokens(messages) >= threshold;
  }

  /**
   * The oldest messages to remove so that the remaining newest ones fit: the shortest prefix of
   * `messages` (order kept) after which `countBatchTokens(rest) <= maxTokens`. All messages when not
   * even the newest alone fits; none when everything fits.
   * @param maxTokens tokens; default 4000 (the `max_buffer_tokens` default)
   * @throws ValidationError for a negative or non-finite maxTokens
   */
  getOverflowMessages<M extends ChatMessage>(messages: readonly M[], maxTokens = 4000): M[] {
    requireTokenLimit(maxTokens, "maxTokens");
    const counts = messages.map((message) => this.measureMessage(message).tokens);
    let remaining = counts.reduce((sum, tokens) => sum + tokens, 0);
    let removed = 0;
    while (removed < messages.length && remaining + REPLY_PRIMING_TOKENS > maxTokens) {
      remaining -= counts[removed] ?? 0;
      removed++;
    }
    return messages.slice(0, removed);
  }

  /**
   * Tokens of a SwisperContext: `conversation_history` as a batch (countBatchTokens), plus the
   * compact JSON text (`JSON.stringify`, no spaces, the object's key order) of all other fields
   * together, when there are any. A `conversation_history` that is not an array is part of the JSON.
   */
  estimateContextTokens(context: SwisperContextLike): number {
    try {
      if (context === null || typeof context !== "object") throw new TypeError("context must be an object");
      const { conversation_history: history, ...rest } = context;
      let tokens = 0;
      if (Array.isArray(history)) tokens += this.countBatchTokens(history);
      else if (history !== undefined) rest.conversation_history = history;
      if (Object.keys(rest).length > 0) tokens += this.#countText(JSON.stringify(rest));
      return tokens;
    } catch (error) {
      return this.#estimate(error, estimateChars(context)).tokens;
    }
  }

  /** Content-cache counters since this counter was created. */
  cacheStats(): CacheStats {
    const lookups = this.#hits + this.#misses;
    return {
      hits: this.#hits,
      misses: this.#misses,
      size: this.#cache.size,
      hit_ratio: lookups === 0 ? 0 : this.#hits / lookups,
    };
  }

  #messageTokens(message: ChatMessage): number {
    if (message === null || typeof message !== "object") throw new TypeError("message must be an object");
    let tokens =
      TOKENS_PER_MESSAGE + this.#roleTokenCount(message.role) + this.#contentTokens(message.content);
    if (isSet(message.name)) tokens += this.#countText(requireString(message.name, "name")) + TOKENS_PER_NAME;
    if (isSet(message.tool_call_id))
      tokens += this.#countText(requireString(message.tool_call_id, "tool_call_id"));
    if (isSet(message.tool_calls)) {
      if (!Array.isArray(message.tool_calls)) throw new TypeError("tool_calls must be an array");
      for (const call of message.tool_calls) tokens += this.#toolCallTokens(call);
    }
    return tokens;
  }

  #roleTokenCount(role: unknown): number {
    const text = requireString(role, "role");
    if (!KNOWN_ROLES.has(text)) return this.#countText(text);
    let tokens = this.#roleTokens.get(text);
    if (tokens === undefined) {
      tokens = this.#checkedCount(text);
      this.#roleTokens.set(text, tokens);
    }
    return tokens;
  }

  #contentTokens(content: unknown): number {
    if (content === null || content === undefined) return 0;
    if (typeof content === "string") return this.#countText(content);
    if (!Array.isArray(content)) {
      throw new TypeError(`content must be a string, an array of parts or null, not ${typeof content}`);
    }
    let tokens = 0;
    for (const part of content) tokens += this.#partTokens(part);
    return tokens;
  }

  #partTokens(part: unknown): number {
    if (part === null || typeof part !== "object") throw new TypeError("a content part must be an object");
    const fields = part as Record<string, unknown>;
    switch (fields.type) {
      case "text":
        return this.#countText(requireString(fields.text, "content[].text"));
      case "refusal":
        return this.#countText(requireString(fields.refusal, "content[].refusal"));
      case "image_url":
        return IMAGE_PART_TOKENS;
      default:
        // Audio, files and unknown parts: their JSON text, a deliberate over-estimate (see README).
        return this.#countText(JSON.stringify(part));
    }
  }

  #toolCallTokens(call: unknown): number {
    if (call === null || typeof call !== "object") throw new TypeError("a tool call must be an object");
    const { id, function: fn } = call as Record<string, unknown>;
    if (fn === null || typeof fn !== "object") throw new TypeError("a tool call needs a function");
    const { name, arguments: args } = fn as Record<string, unknown>;
    let tokens = TOKENS_PER_TOOL_CALL;
    tokens += this.#countText(requireString(name, "tool_calls[].function.name"));
    tokens += this.#countText(requireString(args, "tool_calls[].function.arguments"));
    if (isSet(id)) tokens += this.#countText(requireString(id, "tool_calls[].id"));
    return tokens;
  }

  /** Cached exact count. Short texts are keys themselves (no hashing on the hot path). */
  #countText(text: string): number {
    if (text.length === 0) return 0;
    if (this.#cache.capacity === 0) {
      this.#misses++;
      return this.#checkedCount(text);
    }
    const key = text.length <= MAX_VERBATIM_KEY_LENGTH ? text : contentHash(text);
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      this.#hits++;
      return cached;
    }
    this.#misses++;
    const tokens = this.#checkedCount(text);
    this.#cache.set(key, tokens);
    return tokens;
  }

  #checkedCount(text: string): number {
    const tokens = this.#encoder.count(text);
    if (!Number.isSafeInteger(tokens) || tokens < 0) {
      throw new RangeError(`encoder ${this.#encoder.encoding} returned ${tokens} tokens`);
    }
    return tokens;
  }

  #estimate(error: unknown, chars: number): TokenCount {
    this.#onEstimate?.(error);
    return { tokens: Math.ceil(chars / CHARS_PER_ESTIMATED_TOKEN), estimated: true };
  }
}

function isSet<T>(value: T | null | undefined): value is T {
  return value !== undefined && value !== null;
}

function requireString(value: unknown, field: string): string {
  if (typeof value !== "string") throw new TypeError(`${field} must be a string, not ${typeof value}`);
  return value;
}

function requireTokenLimit(value: number, field: string): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new ValidationError(field, "must be a finite number of tokens >= 0");
  }
}

/** Characters of a message's text fields, for the estimate; never throws. */
function messageChars(message: unknown): number {
  if (message === null || typeof message !== "object") return estimateChars(message);
  const {
    role,
    content,
    name,
    tool_call_id: toolCallId,
    tool_calls: toolCalls,
  } = message as Record<string, unknown>;
  let chars =
    estimateChars(role) + estimateChars(name) + estimateChars(toolCallId) + estimateChars(toolCalls);
  if (Array.isArray(content)) {
    for (const part of content) {
      const text =
        part !== null && typeof part === "object" ? (part as Record<string, unknown>).text : undefined;
      chars += typeof text === "string" ? text.length : estimateChars(part);
    }
  } else {
    chars += estimateChars(content);
  }
  return chars;
}

/** Length of a string, or of any other value's JSON (cycles and BigInts tolerated); never throws. */
function estimateChars(value: unknown): number {
  if (typeof value === "string") return value.length;
  if (value === null || value === undefined) return 0;
  const seen = new WeakSet<object>();
  try {
    const json = JSON.stringify(value, (_key, inner: unknown) => {
      if (typeof inner === "bigint") return inner.toString();
      if (inner !== null && typeof inner === "object") {
        if (seen.has(inner)) return undefined;
        seen.add(inner);
      }
      return inner;
    });
    return json?.length ?? 0;
  } catch {
    return 0;
  }
}
