/**
 * The HTTP API's shapes, in zod. Request schemas validate requests (see `validation.ts`) and,
 * with the response schemas, generate `/openapi.json`: one definition for both. They are never
 * stricter than the library, which checks the rest (sizes, role rules) with the same field paths.
 */
import { z } from "zod";
import { DEFAULT_SESSION_CONFIG } from "../manager/session-config.js";

const ROLE = z.enum(["system", "user", "assistant", "tool"]);

const ContentPart = z
  .looseObject({ type: z.string().min(1) })
  .describe('A content part: {"type":"text","text":...} or {"type":"image_url","image_url":{"url":...}}');

const ToolCall = z
  .object({
    id: z.string().min(1).max(256),
    type: z.literal("function"),
    function: z.object({ name: z.string().min(1).max(256), arguments: z.string() }),
  })
  .meta({ id: "ToolCall" });

export const ChatMessageSchema = z
  .strictObject({
    role: ROLE,
    content: z
      .union([z.string(), z.array(ContentPart), z.null()], {
        error: "must be a string, an array of parts, or null",
      })
      .describe("Text, parts, or null on an assistant message that only makes tool calls; at most 256 KiB"),
    name: z.string().min(1).max(256).optional(),
    tool_call_id: z.string().min(1).max(256).optional().describe("Required on tool messages"),
    tool_calls: z.array(ToolCall).optional().describe("Only on assistant messages"),
    id: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe("Idempotency key: a message sent again with the same id is stored once"),
    timestamp: z.number().min(0).optional().describe("Unix time in seconds; set on write when absent"),
    metadata: z.record(z.string(), z.unknown()).optional(),
  })
  .meta({ id: "ChatMessage", description: "A chat message in the OpenAI shape" });

export const MessageBatchSchema = z
  .strictObject({ messages: z.array(ChatMessageSchema).min(1).max(1000) })
  .meta({ id: "MessageBatch", description: "1 to 1000 messages, stored in order" });

export const AddMessagesBodySchema = z.union([ChatMessageSchema, MessageBatchSchema]);

export const StoredMessageSchema = ChatMessageSchema.extend({
  seq: z.number().int().describe("Position in the session's transcript, 1-based"),
  tokens: z.number().int().describe("Exact tokens of this message with chat framing"),
  timestamp: z.number(),
  tokens_estimated: z.boolean().optional(),
}).meta({ id: "StoredMessage" });

export const AppendResultSchema = z
  .object({
    session_id: z.string(),
    messages: z.array(
      z.object({
        seq: z
          .number()
          .int()
          .nullable()
          .describe("The message's seq in the transcript; null while provisional"),
        duplicate: z.boolean().describe("True when the id was stored before: nothing new was written"),
        provisional: z
          .literal(true)
          .optional()
          .describe(
            "PostgreSQL was away: the message is held durably in the Redis outbox and takes its seq, in acknowledgement order, when the outbox is replayed",
          ),
      }),
    ),
  })
  .meta({ id: "AppendResult" });

const positive = (maximum: number) => z.number().int().min(1).max(maximum);

export const SessionConfigSchema = z
  .object({
    summary_trigger_tokens: positive(1_000_000).describe("Buffer tokens at which summarization is queued"),
    max_buffer_tokens: positive(1_000_000).describe("Hard cap on the buffer's tokens"),
    max_buffer_messages: positive(10_000).describe("Hard cap on the buffer's messages"),
    buffer_ttl_seconds: positive(30 * 24 * 3600).describe("Seconds an idle buffer stays in Redis"),
    max_summary_tokens: positive(100_000).describe("Budget of one summary"),
    keep_recent_tokens: positive(1_000_000).describe("Newest tokens a summary leaves verbatim"),
  })
  .meta({ id: "SessionConfig", examples: [{ ...DEFAULT_SESSION_CONFIG }] });

export const SessionConfigPatchSchema = SessionConfigSchema.partial().strict().meta({
  id: "SessionConfigPatch",
  description: "Keys left out keep their values; the trigger must stay below max_buffer_tokens",
});

export const SummaryRecordSchema = z
  .object({
    version: z.number().int(),
    summary_text: z.string(),
    first_seq: z.number().int(),
    last_seq: z.number().int().describe("The summary stands for [1..last_seq]"),
    tokens: z.number().int(),
    created_at: z.string(),
    metadata: z.record(z.string(), z.unknown()),
  })
  .meta({ id: "SummaryRecord" });

export const BufferInfoSchema = z
  .object({
    message_count: z.number().int(),
    total_tokens: z.number().int(),
    last_updated: z.string().nullable(),
    ttl_remaining: z.number().nullable(),
    max_messages: z.number().int(),
    max_tokens: z.number().int(),
    summary_trigger_tokens: z.number().int(),
    first_seq: z.number().int(),
    last_seq: z.number().int(),
    estimated_messages: z.number().int(),
    source: z.enum(["redis", "database"]),
  })
  .meta({ id: "BufferInfo" });

const ModelMessageSchema = z
  .object({
    role: ROLE,
    content: z.union([z.string(), z.array(ContentPart), z.null()]),
    name: z.string().optional(),
    tool_call_id: z.string().optional(),
    tool_calls: z.array(ToolCall).optional(),
  })
  .meta({ id: "ModelMessage" });

export const MemoryContextSchema = z
  .object({
    session_id: z.string(),
    buffer_messages: z.array(StoredMessageSchema),
    current_summary: z.string().nullable(),
    summary: SummaryRecordSchema.nullable(),
    buffer_info: BufferInfoSchema,
    total_tokens: z.number().int(),
    message_count: z.number().int(),
    messages: z
      .array(ModelMessageSchema)
      .optional()
      .describe("With max_tokens: the summary as a system message, then the newest messages that fit"),
    context_tokens: z.number().int().optional(),
  })
  .meta({ id: "MemoryContext" });

export const ContextQuerySchema = z.strictObject({
  max_tokens: z.coerce
    .number()
    .int()
    .min(1)
    .max(10_000_000)
    .optional()
    .describe("Budget for `messages`, in tokens of `model`"),
  model: z.string().min(1).max(128).optional().describe("Model the budget is counted for (needs max_tokens)"),
});

export const SummariesQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(10).describe("Newest versions to return (1-100)"),
});

export const SummaryHistorySchema = z
  .object({ session_id: z.string(), summaries: z.array(SummaryRecordSchema) })
  .meta({ id: "SummaryHistory" });

const BreakerSnapshotSchema = z
  .object({
    name: z.string(),
    state: z.enum(["closed", "open", "half_open"]),
    failures: z.number().int(),
    opened_at: z.string().nullable(),
    retry_after_ms: z.number(),
    last_error: z.string().nullable(),
    last_transition_at: z.string().nullable(),
    total_failures: z.number().int(),
    total_successes: z.number().int(),
    rejections: z.number().int(),
  })
  .meta({ id: "CircuitBreakerSnapshot" });

const MonitorHealthSchema = z.object({
  status: z.enum(["up", "degraded", "down"]),
  components: z.record(
    z.string(),
    z.object({
      status: z.enum(["up", "degraded", "down"]),
      last_error: z.string().nullable(),
      last_error_at: z.string().nullable(),
      last_transition_at: z.string(),
      breaker: BreakerSnapshotSchema.optional(),
    }),
  ),
});

export const MemoryStatsSchema = z
  .object({
    session_id: z.string(),
    buffer: BufferInfoSchema,
    summary: z.object({
      summary_count: z.number().int(),
      current_version: z.number().int(),
      covered_seq: z.number().int(),
      current_tokens: z.number().int(),
      merge_count: z.number().int(),
      first_summary_at: z.string().nullable(),
      last_summary_at: z.string().nullable(),
    }),
    redis: z.object({
      available: z.boolean(),
      used_memory: z.number().nullable(),
      evicted_keys: z.number().nullable(),
      expired_keys: z.number().nullable(),
      keyspace_hits: z.number().nullable(),
      keyspace_misses: z.number().nullable(),
      hit_ratio: z.number().nullable(),
    }),
    session_config: SessionConfigSchema,
    token_cache: z.object({
      hits: z.number(),
      misses: z.number(),
      size: z.number(),
      hit_ratio: z.number(),
    }),
    available: z.boolean(),
    health: MonitorHealthSchema.optional().describe("Every component's state and its breaker"),
  })
  .meta({ id: "MemoryStats" });

export const SwisperContextSchema = z
  .looseObject({
    session_id: z.string().optional().describe("Set to the path's session id when absent; must equal it"),
    user_id: z.string().nullable().optional(),
    current_state: z.string().nullable().optional(),
    product_query: z.string().nullable().optional(),
    preferences: z.record(z.string(), z.unknown()).optional(),
    constraints: z.record(z.string(), z.unknown()).optional(),
    selected_product: z.record(z.string(), z.unknown()).nullable().optional(),
    search_results: z.array(z.unknown()).optional(),
    conversation_history: z.array(z.unknown()).optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
  })
  .meta({
    id: "SwisperContext",
    description: "The orchestrator's session state; extra fields are kept; at most 1 MiB",
  });

export const SessionParamsSchema = z.strictObject({
  session_id: z.string().min(1).max(256).describe("1-256 printable characters (URL-encode them)"),
});

export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z
        .string()
        .describe(
          "invalid_input, unauthorized, not_found, payload_too_large, unsupported_media_type, rate_limited, storage_unavailable, internal",
        ),
      message: z.string(),
      field: z.string().optional().describe("Dotted path of the offending input"),
    }),
  })
  .meta({ id: "Error" });

const ComponentHealthSchema = z.object({
  status: z.enum(["up", "degraded", "down", "disabled"]),
  kind: z.string().optional(),
  latency_ms: z.number().optional(),
  error: z.string().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});

export const HealthReportSchema = z
  .object({
    status: z.enum(["up", "degraded", "down"]),
    available: z.boolean(),
    components: z.record(z.string(), ComponentHealthSchema),
    breakers: z.record(z.string(), BreakerSnapshotSchema),
  })
  .meta({ id: "Health" });

export const LiveSchema = z.object({ live: z.literal(true) }).meta({ id: "Live" });

export const ReadySchema = z
  .object({ ready: z.boolean(), reason: z.string().optional() })
  .meta({ id: "Ready" });

/** The error responses a /v1 route can give, for the documentation. */
export function errorResponses(...statusCodes: number[]): Record<number, typeof ErrorBodySchema> {
  return Object.fromEntries(statusCodes.map((code) => [code, ErrorBodySchema]));
}
